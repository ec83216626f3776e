"""``infer-runtime registry ...``: argument definitions (import-light) and the command.

:func:`add_parser` only touches argparse, so building the CLI's parser imports nothing of the
registry's machinery; :func:`main` imports it when a registry command actually runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import Deployment, ModelVersion, Resolution, VerifyReport

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Adds the ``registry`` command and its subcommands to the CLI's subparsers."""
    reg = sub.add_parser(
        "registry",
        help="manage the model registry: register, promote, rollback, inspect (exit 0 ok, 1 failure, 2 usage)",
        description="Manage a model registry file: versions, environments, promote and rollback. "
        "Give the file with --db, or take the [registry] path of a spec with --spec.",
    )
    where = reg.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", metavar="PATH", help="the registry file (created by register when missing)")
    where.add_argument("--spec", metavar="SPEC", help="use the spec's registry.path (relative to the spec file)")
    reg.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="override one key of --spec (repeatable)")
    cmds = reg.add_subparsers(dest="registry_command", metavar="SUBCOMMAND", required=True)

    def read_format(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")

    register = cmds.add_parser("register", help="copy an artifact into the registry as a new version")
    register.add_argument("name", metavar="NAME")
    register.add_argument("file", metavar="FILE")
    register.add_argument("--version", dest="model_version", help="version, starting with a digit (default: the next integer)")
    register.add_argument("--backend", help="backend that serves it (default from the suffix: .onnx → onnxruntime, .toml → rules)")
    register.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE", help="metadata entry (repeatable; VALUE parsed as JSON when it is JSON, else kept as text)")
    register.add_argument("--promote", metavar="ENV", help="also deploy the new version to ENV")
    register.add_argument("--note", help="note recorded with --promote")

    lst = cmds.add_parser("list", help="list registered versions and where they are deployed")
    lst.add_argument("name", metavar="NAME", nargs="?")
    read_format(lst)

    show = cmds.add_parser("show", help="resolve a reference (name, name@version, name@environment) and show it")
    show.add_argument("ref", metavar="REF")
    read_format(show)

    promote = cmds.add_parser("promote", help="deploy NAME@VERSION to ENV")
    promote.add_argument("ref", metavar="NAME@VERSION")
    promote.add_argument("environment", metavar="ENV")
    promote.add_argument("--note", help="recorded with the deployment")

    rollback = cmds.add_parser("rollback", help="return NAME in ENV to the deployment before the current one")
    rollback.add_argument("name", metavar="NAME")
    rollback.add_argument("environment", metavar="ENV")
    rollback.add_argument("--note", help="recorded with the deployment")

    history = cmds.add_parser("history", help="deployments of NAME, oldest first")
    history.add_argument("name", metavar="NAME")
    history.add_argument("--env", metavar="ENV", help="only this environment")
    read_format(history)

    verify = cmds.add_parser("verify", help="check the database and every artifact's size and sha256 (exit 1 on a problem)")
    read_format(verify)
    return reg


def _usage(message: str) -> int:
    print(f"infer-runtime registry: {message}", file=sys.stderr)
    return EXIT_USAGE


def _registry_path(args: argparse.Namespace) -> Path | int:
    if args.db is not None:
        if args.set:
            return _usage("--set applies to --spec only")
        return Path(args.db)
    from infer_runtime.spec import check_spec

    result = check_spec(args.spec, sets=args.set)
    if not result.ok or result.effective is None:
        for issue in result.issues:
            print(issue.format(), file=sys.stderr)
        return EXIT_USAGE
    section = result.effective.get("registry")
    if not section:
        return _usage(f"{args.spec} has no [registry] section; add one or use --db")
    path = Path(section["path"])
    return path if path.is_absolute() else Path(args.spec).resolve().parent / path


def _meta(items: list[str]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            return None
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def configure_quiet_logging() -> None:
    """Logs errors only, to stderr: a command's stdout is its output (tables, JSON)."""
    from infer_runtime.monitoring.logging import configure_logging

    configure_logging("error", "console")


def main(args: argparse.Namespace) -> int:
    """Runs ``infer-runtime registry ...``; returns the exit code."""
    from .errors import InvalidReferenceError, RegistryError

    configure_quiet_logging()
    path = _registry_path(args)
    if isinstance(path, int):
        return path
    try:
        return _dispatch(args, path)
    except InvalidReferenceError as exc:
        return _usage(str(exc))
    except RegistryError as exc:
        print(f"infer-runtime registry: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        raise  # the CLI's main treats a closed pipe (`| head`) as success
    except OSError as exc:  # e.g. stdout closed, a file vanishing mid-command
        print(f"infer-runtime registry: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _dispatch(args: argparse.Namespace, path: Path) -> int:
    from .refs import parse_reference
    from .sync import SyncRegistry

    command: str = args.registry_command
    writes = command in ("register", "promote", "rollback")
    if command == "promote":
        ref = parse_reference(args.ref)
        if ref.version is None:
            return _usage(f"promote takes NAME@VERSION (got {args.ref!r})")
        version: str = ref.version
    if command == "register" and (meta := _meta(args.meta)) is None:
        return _usage("--meta takes KEY=VALUE")
    with SyncRegistry(path, create=writes) as reg:
        if command == "register":
            model = reg.register(args.name, args.file, version=args.model_version, backend=args.backend, metadata=meta)
            print(f"registered {model.reference} ({model.backend}, {_size(model.size)}, sha256 {model.sha256[:12]}) from {args.file}")
            if args.promote:
                _print_deployment(reg.promote(model.name, model.version, args.promote, args.note))
            return EXIT_OK
        if command == "promote":
            _print_deployment(reg.promote(ref.name, version, args.environment, args.note))
            return EXIT_OK
        if command == "rollback":
            _print_deployment(reg.rollback(args.name, args.environment, args.note))
            return EXIT_OK
        if command == "list":
            return _list(reg.list(args.name), reg.current(args.name), path, args.format)
        if command == "show":
            return _show(reg.resolve(args.ref), reg.current(parse_reference(args.ref).name), args.format)
        if command == "history":
            return _history(args.name, args.env, reg.history(args.name, args.env), args.format)
        return _verify(reg.verify(), path, args.format)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _when(d: Any) -> str:
    return f"{d:%Y-%m-%d %H:%M:%S}"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _print_deployment(d: Deployment) -> None:
    verb = "promoted" if d.action == "promote" else "rolled back"
    print(f"{verb} {d.name}@{d.version} in {d.environment} (deployment #{d.id})")


def _deployed_in(current: list[Deployment]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for d in current:
        out.setdefault((d.name, d.version), []).append(d.environment)
    return out


def _list(models: list[ModelVersion], current: list[Deployment], path: Path, fmt: str) -> int:
    deployed = _deployed_in(current)
    if fmt == "json":
        items = [{**m.as_dict(), "deployed": deployed.get((m.name, m.version), [])} for m in models]
        print(json.dumps({"registry": str(path), "models": items}, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not models:
        print(f"no models registered in {path}", file=sys.stderr)
        return EXIT_OK
    rows = [[m.name, m.version, m.backend, _size(m.size), m.sha256[:12], _when(m.created_at), ",".join(deployed.get((m.name, m.version), [])) or "-"] for m in models]
    _table(["NAME", "VERSION", "BACKEND", "SIZE", "SHA256", "CREATED (UTC)", "DEPLOYED"], rows)
    return EXIT_OK


def _show(res: Resolution, current: list[Deployment], fmt: str) -> int:
    deployed = _deployed_in(current).get((res.model.name, res.model.version), [])
    if fmt == "json":
        print(json.dumps({**res.as_dict(), "deployed": deployed}, indent=2, ensure_ascii=False))
        return EXIT_OK
    m = res.model
    lines = [
        ("reference", res.reference),
        ("name", m.name),
        ("version", m.version),
        ("environment", res.environment or "-"),
        ("deployment", f"#{res.deployment.id} {res.deployment.action} at {_when(res.deployment.deployed_at)} UTC by {res.deployment.user}@{res.deployment.host}" if res.deployment else "-"),
        ("deployed in", ", ".join(deployed) or "-"),
        ("backend", m.backend),
        ("format", m.format),
        ("artifact", str(m.artifact)),
        ("size", f"{m.size} ({_size(m.size)})"),
        ("sha256", m.sha256),
        ("created (UTC)", _when(m.created_at)),
        ("metadata", json.dumps(dict(m.metadata), ensure_ascii=False, sort_keys=True)),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")
    return EXIT_OK


def _history(name: str, env: str | None, deployments: list[Deployment], fmt: str) -> int:
    if fmt == "json":
        print(json.dumps({"name": name, "environment": env, "deployments": [d.as_dict() for d in deployments]}, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not deployments:
        print(f"{name} has never been deployed" + (f" in {env}" if env else ""), file=sys.stderr)
        return EXIT_OK
    rows = [[f"#{d.id}", _when(d.deployed_at), d.environment, d.action, d.version, f"#{d.replaced}" if d.replaced else "-", f"{d.user}@{d.host}", d.note or ""] for d in deployments]
    _table(["ID", "WHEN (UTC)", "ENV", "ACTION", "VERSION", "REPLACED", "BY", "NOTE"], rows)
    return EXIT_OK


def _verify(report: VerifyReport, path: Path, fmt: str) -> int:
    if fmt == "json":
        print(json.dumps({"registry": str(path), **report.as_dict()}, indent=2, ensure_ascii=False))
    else:
        print(f"database: {report.integrity}")
        for p in report.problems:
            print(f"{p.model.reference}: {p.problem}")
        print(f"{report.checked - len(report.problems)} of {report.checked} artifact(s) verified")
    return EXIT_OK if report.ok else EXIT_FAILURE

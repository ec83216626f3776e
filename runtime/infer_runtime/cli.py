"""The ``infer-runtime`` command line.

Kept import-light: ``validate``, ``schema`` and ``config`` never import numpy, pydantic's
models, onnxruntime or the native engine, so the pre-commit hook starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="infer-runtime", description="Embedded model-serving runtime: validate, inspect and serve spec files.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = sub.add_parser("validate", help="check spec files (exit 0 valid, 1 invalid, 2 usage)", description="Check spec files against the schema and the semantic rules; every problem is reported as FILE:LINE:COL: error: KEY.PATH: message.")
    validate.add_argument("files", nargs="+", metavar="FILE", help="spec files (.toml, .yaml, .yml)")
    validate.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    validate.add_argument("--check-files", action="store_true", help="also check that referenced files (model paths, plugin sources) exist")
    validate.add_argument("--env", action="store_true", help="apply INFER_RUNTIME_* overrides from the environment (off by default: hooks run on developer machines)")
    validate.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="override one key (repeatable)")

    schema = sub.add_parser("schema", help="print the JSON Schema of the spec language")
    schema.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")

    run = sub.add_parser("run", help="serve a spec over HTTP and gRPC (KServe v2) until SIGTERM/SIGINT", description="Serve every model of SPEC with the KServe v2 / Open Inference Protocol over HTTP (with Triton's binary tensor extension) and gRPC, with Prometheus metrics at /metrics. SIGTERM drains in-flight work for server.shutdown_timeout_s; a second signal exits at once.")
    run.add_argument("spec", metavar="SPEC", nargs="?", help="the spec file (default: $INFER_RUNTIME_SPEC)")
    run.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="override one key (repeatable; beats the environment)")
    run.add_argument("--host", help="shorthand for --set server.host=HOST")
    run.add_argument("--http-port", type=int, help="shorthand for --set server.http_port=PORT")
    run.add_argument("--grpc-port", type=int, help="shorthand for --set server.grpc_port=PORT (0 = off)")

    config = sub.add_parser("config", help="print the effective spec after defaults and overrides")
    config.add_argument("spec", metavar="SPEC")
    config.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="override one key (repeatable; beats the environment)")
    config.add_argument("--sources", action="store_true", help="show where every leaf came from: default, FILE:LINE, variable or flag")
    config.add_argument("--format", choices=("toml", "json"), default="toml", help="output format (default: toml)")
    config.add_argument("--no-env", action="store_true", help="ignore INFER_RUNTIME_* variables")

    from infer_runtime.registry.cli import add_parser as add_registry_parser  # argparse only

    add_registry_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``infer-runtime`` console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from infer_runtime import __version__

        print(f"infer-runtime {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from infer_runtime.registry.cli import main as _registry

    handler = {"validate": _validate, "schema": _schema, "config": _config, "run": _run, "registry": _registry}[args.command]
    try:
        return handler(args)
    except BrokenPipeError:  # e.g. piped into head
        return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from infer_runtime.rules import check_rules, is_rules_document, looks_like_rules
    from infer_runtime.spec import check_spec
    from infer_runtime.spec.sources import ParseError, read_document

    def check_one(name: str) -> Any:
        # A file whose top level says `kind = "rules"` is a rules file (DESIGN §10), checked
        # against its own schema; overrides (--set, --env) apply to specs only.
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return check_spec(name, use_env=args.env, sets=args.set, check_files=args.check_files)
        if looks_like_rules(text):
            try:
                if is_rules_document(read_document(name, text).data):
                    return check_rules(name, text=text)
            except ParseError:
                pass
        return check_spec(name, use_env=args.env, sets=args.set, check_files=args.check_files, text=text)

    results = [check_one(f) for f in args.files]
    if args.format == "json":
        payload = {
            "valid": all(r.ok for r in results),
            "files": [{"file": r.file, "valid": r.ok, "issues": [i.as_dict() for i in r.issues]} for r in results],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for result in results:
            for issue in result.issues:
                print(issue.format())
        bad = [r for r in results if not r.ok]
        if bad:
            problems = sum(len(r.issues) for r in bad)
            print(f"{len(bad)} of {len(results)} spec file(s) invalid, {problems} problem(s)", file=sys.stderr)
    return EXIT_OK if all(r.ok for r in results) else EXIT_INVALID


def _schema(args: argparse.Namespace) -> int:
    from infer_runtime.spec.schema import generate_schema, render_schema

    text = render_schema(generate_schema())
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _config(args: argparse.Namespace) -> int:
    from infer_runtime.spec import check_spec, format_path

    result = check_spec(args.spec, use_env=not args.no_env, sets=args.set)
    if not result.ok or result.effective is None:
        for issue in result.issues:
            print(issue.format(), file=sys.stderr)
        return EXIT_INVALID
    if args.sources:
        sources = result.sources()
        leaves = {path: _get(result.effective, path) for path in sources}
        if args.format == "json":
            print(json.dumps({format_path(p): {"value": leaves[p], "source": s} for p, s in sources.items()}, indent=2, ensure_ascii=False))
        else:
            width = max((len(f"{format_path(p)} = {_toml_value(leaves[p])}") for p in sources), default=0)
            for path, source in sources.items():
                line = f"{format_path(path)} = {_toml_value(leaves[path])}"
                print(f"{line.ljust(width)}  # {source}")
        return EXIT_OK
    if args.format == "json":
        print(json.dumps(result.effective, indent=2, ensure_ascii=False))
    else:
        import tomli_w

        sys.stdout.write(tomli_w.dumps(result.effective))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    import os

    from infer_runtime.errors import SpecError
    from infer_runtime.spec import load_spec

    spec = args.spec or os.environ.get("INFER_RUNTIME_SPEC")
    if not spec:
        print("infer-runtime run: give a SPEC or set INFER_RUNTIME_SPEC", file=sys.stderr)
        return EXIT_USAGE
    sets = list(args.set)
    for flag, key in ((args.host, "server.host"), (args.http_port, "server.http_port"), (args.grpc_port, "server.grpc_port")):
        if flag is not None:
            sets.append(f"{key}={flag}")
    try:
        loaded = load_spec(spec, sets=sets)
    except SpecError as exc:
        for issue in exc.issues:
            print(issue.format(), file=sys.stderr)
        return EXIT_USAGE
    from infer_runtime.server.app import main_serve

    return main_serve(loaded)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and not value:
        return "{}"
    return json.dumps(value, ensure_ascii=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

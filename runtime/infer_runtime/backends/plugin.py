"""The ``plugin`` backend's build step: a spec's ``library = ...`` or ``sources = [...]`` made into
the path of a shared library the engine loads (csrc/backends/plugin.cpp does the loading).

Sources compile with the flags build.py uses for the engine (C++17, -O2, -fPIC, -shared,
-fvisibility=hidden, the installed contract header on the include path) into a cache keyed by
the sha256 of everything that decides the result: each source's and each local header's content,
the flags and libraries, the compiler's version and IRB_ABI_VERSION. A start finding its key in
the cache compiles nothing. Processes starting at once serialize on a lock file per key, and the
compiler writes to a temporary file that is renamed into place, so no process ever sees a
half-written library.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from infer_runtime import get_include
from infer_runtime.errors import ModelLoadError
from infer_runtime.spec.models import PluginOptions

log = structlog.get_logger("infer_runtime.backends.plugin")

# The engine's own flags (build.py), plus -Wl,--no-undefined: a symbol the plugin uses but does
# not link is an error here, with its name, not a dlopen failure at load.
BASE_FLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-pthread", "-Wl,--no-undefined")
CACHE_ENV = "INFER_RUNTIME_PLUGIN_CACHE"
HEADER = "infer_runtime_backend.h"
COMPILE_TIMEOUT_S = 600.0
_KEY_FORMAT = "infer-runtime plugin cache 1"  # bumped when what goes into the key changes
_ERROR_LINE = re.compile(r"^\S.*?:\d+(?::\d+)?: (?:fatal )?error: |undefined reference to |^\S*ld: .*(?:cannot find|undefined)")
_MAX_QUOTED = 20


def _env() -> dict[str, str]:
    """The compiler's environment: ours, in the C locale, so its messages (and quotes) are plain ASCII."""
    return {**os.environ, "LC_ALL": "C"}


def default_cache_dir() -> Path:
    """``$INFER_RUNTIME_PLUGIN_CACHE``, else ``$XDG_CACHE_HOME/infer-runtime/plugins`` (that is,
    ``~/.cache/infer-runtime/plugins`` by default)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "infer-runtime" / "plugins"


def compiler() -> list[str]:
    """The C++ compiler command: ``$CXX`` (which may carry arguments, e.g. ``ccache g++``) or ``c++``."""
    return shlex.split(os.environ.get("CXX") or "c++")


@functools.lru_cache(maxsize=8)
def compiler_version(command: tuple[str, ...]) -> str:
    """The first line of ``<compiler> --version``; ModelLoadError when there is no compiler."""
    try:
        done = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60, check=False, env=_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelLoadError(f"no working C++ compiler ({shlex.join(command)}: {exc}); install g++ or set CXX") from exc
    if done.returncode != 0 or not done.stdout.strip():
        raise ModelLoadError(f"the C++ compiler {shlex.join(command)} does not answer --version: {done.stderr.strip()[:300]}")
    return done.stdout.strip().splitlines()[0]


def abi_version(include_dir: str | None = None) -> int:
    """IRB_ABI_VERSION as the installed header defines it."""
    header = Path(include_dir or get_include()) / HEADER
    match = re.search(r"^#define IRB_ABI_VERSION (\d+)\s*$", header.read_text(encoding="utf-8"), re.MULTILINE)
    if match is None:
        raise ModelLoadError(f"{header}: no IRB_ABI_VERSION definition (a broken installation)")
    return int(match.group(1))


def build_plugin(model: str, options: PluginOptions, spec_dir: Path, cache_dir: Path | None = None) -> Path:
    """The plugin library for ``model``: ``options.library`` (relative to ``spec_dir``) as it is,
    or ``options.sources`` compiled into ``cache_dir`` (default :func:`default_cache_dir`), or
    found there from an earlier start. Raises ModelLoadError for a missing file, a failed
    compile (quoting the compiler's error lines) or a missing compiler."""
    if options.library is not None:
        library = (spec_dir / options.library).resolve()
        if not library.is_file():
            raise ModelLoadError(f"model '{model}': plugin library {library} not found")
        return library
    if not options.sources:
        raise ModelLoadError(f"model '{model}': the plugin backend needs `library` or `sources`")
    return _Build(model, options, spec_dir, cache_dir or default_cache_dir()).library()


class _Build:
    """One ``sources`` build: its command, its cache key and the locked compile."""

    def __init__(self, model: str, options: PluginOptions, spec_dir: Path, cache_dir: Path) -> None:
        self.model = model
        self.sources = [(spec_dir / s).resolve() for s in options.sources or ()]
        for source in self.sources:
            if not source.is_file():
                raise ModelLoadError(f"model '{model}': plugin source {source} not found")
        self.include = get_include()
        self.cflags = list(options.cflags)
        self.libs = [_lib_flag(lib, spec_dir) for lib in options.libs]
        self.compiler = compiler()
        self.cache_dir = cache_dir
        self.spec_dir = spec_dir

    def command(self, output: Path) -> list[str]:
        return [*self.compiler, *BASE_FLAGS, f"-I{self.include}", *self.cflags, *map(str, self.sources), "-o", str(output), *self.libs]

    def key(self) -> str:
        """sha256 of the compiler's version, IRB_ABI_VERSION, the flags and libraries, and the
        content of every source and of every non-system header they include."""
        digest = hashlib.sha256()

        def put(label: str, value: bytes) -> None:  # length-prefixed: no two inputs collide by concatenation
            digest.update(f"{label}:{len(value)}:".encode())
            digest.update(value)

        put("format", _KEY_FORMAT.encode())
        put("compiler", compiler_version(tuple(self.compiler)).encode())
        put("abi", str(abi_version(self.include)).encode())
        for flag in [*BASE_FLAGS, *self.cflags, "--libs--", *self.libs]:
            put("flag", flag.encode())
        for source in self.sources:
            put("source", source.read_bytes())
        for header in self._headers():
            put("header", header.name.encode() + b"\0" + header.read_bytes())
        return digest.hexdigest()

    def _headers(self) -> list[Path]:
        """The local headers the sources include (the compiler's -MM list), so that editing one
        misses the cache; empty when preprocessing fails (the compile then reports why)."""
        cmd = [*self.compiler, "-std=c++17", f"-I{self.include}", *self.cflags, "-MM", *map(str, self.sources)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.spec_dir, timeout=COMPILE_TIMEOUT_S, check=False, env=_env())
        except (OSError, subprocess.TimeoutExpired):
            return []
        if done.returncode != 0:
            return []
        words = done.stdout.replace("\\\n", " ").replace("\\ ", "\0").split()
        sources = set(self.sources)
        found = {(self.spec_dir / w.replace("\0", " ")).resolve() for w in words if not w.endswith(":")}
        return sorted(p for p in found if p not in sources and p.is_file())

    def library(self) -> Path:
        key = self.key()
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", self.sources[0].stem)[:40] or "plugin"
        target = self.cache_dir / f"lib{stem}-{key[:24]}.so"
        if target.is_file():
            log.info("plugin reused from cache", model=self.model, library=str(target))
            return target
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelLoadError(f"model '{self.model}': cannot create the plugin cache {self.cache_dir}: {exc} (set {CACHE_ENV})") from exc
        with _locked(target.with_name(target.name + ".lock")):
            if target.is_file():  # another process built it while we waited for the lock
                log.info("plugin reused from cache", model=self.model, library=str(target), waited_for="another process")
                return target
            self._compile(target)
        return target

    def _compile(self, target: Path) -> None:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.cache_dir)
        os.close(fd)
        temp = Path(temp_name)
        cmd = self.command(temp)
        started = time.perf_counter()
        try:
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.spec_dir, timeout=COMPILE_TIMEOUT_S, check=False, env=_env())
            except subprocess.TimeoutExpired as exc:
                raise ModelLoadError(f"model '{self.model}': compiling the plugin took over {COMPILE_TIMEOUT_S:.0f} s; gave up") from exc
            except OSError as exc:
                raise ModelLoadError(f"model '{self.model}': cannot run the C++ compiler {shlex.join(self.compiler)}: {exc}") from exc
            if done.returncode != 0:
                raise ModelLoadError(f"model '{self.model}': the plugin sources failed to compile:\n{quote_errors(done.stderr)}")
            os.chmod(temp, 0o755)
            os.replace(temp, target)  # atomic: other processes see no file or the whole library
        finally:
            temp.unlink(missing_ok=True)
        seconds = time.perf_counter() - started
        warnings = [line for line in done.stderr.splitlines() if ": warning: " in line]
        log.info("plugin compiled", model=self.model, library=str(target), seconds=round(seconds, 3), command=shlex.join(cmd),
                 warnings=warnings[:_MAX_QUOTED])


def quote_errors(output: str) -> str:
    """The compiler's ``file:line:col: error: ...`` lines (and linker errors), indented; the
    last lines of the output when none matches."""
    lines = [line for line in output.splitlines() if _ERROR_LINE.search(line)]
    if not lines:
        lines = [line for line in output.splitlines() if line.strip()][-_MAX_QUOTED:] or ["(the compiler printed nothing)"]
    more = len(lines) - _MAX_QUOTED
    quoted = [f"  {line}" for line in lines[:_MAX_QUOTED]]
    return "\n".join(quoted + ([f"  ... and {more} more"] if more > 0 else []))


def _lib_flag(lib: str, spec_dir: Path) -> str:
    """``m`` → ``-lm``; a flag (``-l...``, ``-L...``) as it is; a path (relative to the spec) resolved."""
    if lib.startswith("-"):
        return lib
    if "/" in lib or lib.endswith((".so", ".a")) or ".so." in lib:
        return str((spec_dir / lib).resolve())
    return f"-l{lib}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive fcntl lock on ``path`` (created if absent), released on exit or process death."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


__all__ = ["BASE_FLAGS", "CACHE_ENV", "abi_version", "build_plugin", "compiler", "compiler_version", "default_cache_dir", "quote_errors"]

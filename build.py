"""cffi (API mode) builder for the infer-runtime engine: produces ``infer_runtime._native._ir``.

* The cdef is read from the marked region of ``csrc/include/infer_runtime.h`` (one source of
  truth for the declarations; ``tests/test_abi.py`` checks that every prototype there is
  reachable from Python).
* Every ``*.cpp`` under ``csrc/`` is compiled as C++17 with ``-O2`` into the extension.
* ``IR_SANITIZE=address,undefined python build.py`` builds with sanitizers (``-O1 -g``).
* ``python build.py`` builds in place (into ``runtime/infer_runtime/_native/``) for
  development; ``pip install .`` runs the same builder through the ``setup.py`` shim,
  because setuptools has no pyproject key for ``cffi_modules``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent
HEADER = ROOT / "csrc" / "include" / "infer_runtime.h"
MODULE = "infer_runtime._native._ir"
_CDEF_REGION = re.compile(r"/\* IR_CDEF_BEGIN \*/(.*?)/\* IR_CDEF_END \*/", re.DOTALL)


def cdef_text(header: Path = HEADER) -> str:
    """The cdef-clean declarations between the IR_CDEF markers of the public header."""
    match = _CDEF_REGION.search(header.read_text(encoding="utf-8"))
    if match is None:
        raise RuntimeError(f"{header}: IR_CDEF_BEGIN/IR_CDEF_END markers not found")
    return match.group(1)


def cpp_sources(absolute: bool = False) -> list[str]:
    """All C++ sources; relative to the project root unless ``absolute`` (setuptools wants
    relative paths, while ``FFI.compile`` runs from its temporary directory)."""
    files = sorted((ROOT / "csrc").rglob("*.cpp"))
    return [str(p if absolute else p.relative_to(ROOT)) for p in files]


def _flags() -> tuple[list[str], list[str]]:
    compile_args = ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    link_args: list[str] = ["-lstdc++", "-pthread", "-ldl"]
    sanitize = os.environ.get("IR_SANITIZE", "").strip()
    if sanitize:
        if not re.fullmatch(r"[a-z]+(,[a-z]+)*", sanitize):
            raise SystemExit(f"IR_SANITIZE must look like 'address,undefined' (got {sanitize!r})")
        compile_args += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-O1", "-g"]
        compile_args += ["-fno-sanitize-recover=undefined"] if "undefined" in sanitize else []
        link_args += [f"-fsanitize={sanitize}"]
    else:
        compile_args += ["-O2"]
    return compile_args, link_args


def make_ffibuilder(absolute: bool = False) -> FFI:
    """The configured FFI builder (also used by setuptools through ``cffi_modules``)."""
    builder = FFI()
    builder.cdef(cdef_text())
    compile_args, link_args = _flags()
    builder.set_source(
        MODULE,
        '#include "infer_runtime.h"\n',
        source_extension=".cpp",
        sources=cpp_sources(absolute),
        include_dirs=[str((ROOT if absolute else Path()) / "csrc" / "include")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        language="c++",
    )
    return builder


ffibuilder = make_ffibuilder()  # setuptools runs builders from the project root


def build_in_place() -> Path:
    """Compiles the extension and copies it next to ``infer_runtime/_native/__init__.py``."""
    tmpdir = ROOT / "build" / "cffi"
    builder = make_ffibuilder(absolute=True)
    built = Path(builder.compile(tmpdir=str(tmpdir), verbose=bool(os.environ.get("IR_VERBOSE"))))
    dest_dir = ROOT / "runtime" / "infer_runtime" / "_native"
    for stale in dest_dir.glob("_ir.*.so"):
        stale.unlink()
    dest = dest_dir / built.name
    shutil.copy2(built, dest)
    return dest


if __name__ == "__main__":
    print(f"built {build_in_place().relative_to(ROOT)}", file=sys.stderr)

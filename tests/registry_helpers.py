"""Helpers shared by the registry tests: artifacts, the C++ resolver through cffi."""

from __future__ import annotations

from pathlib import Path


def artifact(directory: Path, content: bytes | str, name: str = "model.onnx") -> Path:
    """Writes a small file to register (content stands in for a model)."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


FIELDS = ("name", "version", "environment", "artifact", "filename", "format", "backend", "sha256", "size", "created_at", "metadata")


def native_resolve(db: Path, reference: str) -> dict[str, str] | tuple[str, str]:
    """ir_registry_resolve: the entry's fields, or (code name, message) on error."""
    from infer_runtime._native import ffi, lib

    out = ffi.new("ir_registry_entry**")
    err = lib.ir_registry_resolve(str(db).encode(), reference.encode(), out)
    if err != ffi.NULL:
        try:
            return ffi.string(lib.ir_code_name(lib.ir_error_code(err))).decode(), ffi.string(lib.ir_error_message(err)).decode()
        finally:
            lib.ir_error_free(err)
    entry = out[0]
    try:
        fields = {k: ffi.string(lib.ir_registry_entry_field(entry, k.encode())).decode() for k in FIELDS}
        assert lib.ir_registry_entry_field(entry, b"no-such-field") == ffi.NULL
        return fields
    finally:
        lib.ir_registry_entry_free(entry)

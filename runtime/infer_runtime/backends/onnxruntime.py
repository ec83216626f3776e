"""The ``onnxruntime`` backend: one session per instance, providers in order of preference,
the model's signature read from the file and checked against the spec.

Two hosts run the sessions. The native host (the default for CPU) opens them in the engine
through ONNX Runtime's C library, so batches run on the engine's threads and never touch the
interpreter: measured here, a Python thread running sessions beside the event loop loses
most of its time waiting for the GIL (bench/README.md). The Python host uses onnxruntime's
Python API, one pull thread per instance, and serves every execution provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import structlog

from infer_runtime.engine import ModelSignature, TensorSignature, open_backend
from infer_runtime.errors import InferRuntimeError, ModelLoadError, UnavailableError

from .base import Arrays, LoadedBackend, served_signature

log = structlog.get_logger("infer_runtime.backends.onnxruntime")

_ORT_TYPES = {
    "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64, "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(float16)": np.float16, "tensor(float)": np.float32, "tensor(double)": np.float64,
}
_CPU = "CPUExecutionProvider"
_NATIVE_LEVELS = {"disable": 0, "basic": 1, "extended": 2, "all": 99}
_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


class _Session:
    def __init__(self, session: Any, output_names: list[str]) -> None:
        self._session = session
        self._outputs = output_names

    def run(self, inputs: Arrays) -> Arrays:
        results = self._session.run(self._outputs, inputs)
        return dict(zip(self._outputs, results))

    def close(self) -> None:
        self._session = None


def _tensor(node: Any) -> TensorSignature:
    kind = _ORT_TYPES.get(node.type)
    if kind is None:
        raise ModelLoadError(f"tensor '{node.name}' has type {node.type}; the onnxruntime backend does not map it yet (string tensors included)")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in node.shape)
    return TensorSignature(node.name, np.dtype(kind), shape)


def load(model: str, path: Path, options: Any, declared: ModelSignature, instances: int) -> LoadedBackend:
    """Opens ``instances`` sessions on ``path``, natively or through the Python API
    (``options.host``), and checks the file's signature against the spec's.

    Raises:
        ModelLoadError: the file cannot be loaded or disagrees with the spec.
    """
    import onnxruntime as ort

    if not path.is_file():
        raise ModelLoadError(f"model '{model}': file not found: {path}")
    providers = choose_providers(model, list(options.providers), ort.get_available_providers())
    host, why = choose_host(options.host, providers, native_library())
    if host == "native":
        try:
            return _load_native(model, path, options, declared, instances)
        except UnavailableError as exc:
            if options.host == "native":
                raise ModelLoadError(f"model '{model}': host = \"native\" but {exc}") from exc
            why = str(exc)
    if options.host == "native":
        raise ModelLoadError(f"model '{model}': host = \"native\" is not possible: {why}")
    if options.host == "auto":
        log.info("onnxruntime runs through its Python API", model=model, reason=why)
    return _load_python(model, path, options, declared, instances, providers)


def choose_providers(model: str, wanted: list[str], available: list[str]) -> list[str]:
    """The requested providers that are installed, in order; CPU when none is (warned)."""
    providers = [p for p in wanted if p in available]
    skipped = [p for p in wanted if p not in available]
    if skipped:
        log.warning("providers unavailable, skipped", model=model, skipped=skipped, available=available)
    if not providers:
        providers = [_CPU]
        log.warning("no requested provider is available; falling back", model=model, fallback=_CPU)
    return providers


def choose_host(requested: str, providers: list[str], library: Path | None) -> tuple[str, str]:
    """``("native" | "python", why)``: native serves the CPU provider only, and needs the
    ONNX Runtime shared library; ``requested = "python"`` always gets python."""
    if requested == "python":
        return "python", "host = \"python\""
    if providers != [_CPU]:
        return "python", f"providers {providers} need the Python API (the native host runs CPUExecutionProvider only)"
    if library is None:
        return "python", "the onnxruntime package ships no shared library (capi/libonnxruntime.*)"
    return "native", ""


def native_library() -> Path | None:
    """The ONNX Runtime C library inside the installed onnxruntime package, if any."""
    import onnxruntime as ort

    capi = Path(ort.__file__).parent / "capi"
    found = sorted(p for pattern in ("libonnxruntime.so*", "libonnxruntime*.dylib") for p in capi.glob(pattern))
    return found[-1] if found else None


def _load_native(model: str, path: Path, options: Any, declared: ModelSignature, instances: int) -> LoadedBackend:
    library = native_library()
    assert library is not None  # choose_host made sure
    try:
        config = {"library": str(library), "model_path": str(path), "intra_op_threads": options.intra_op_threads,
                  "inter_op_threads": options.inter_op_threads, "graph_optimization_level": _NATIVE_LEVELS[options.graph_optimization_level],
                  "parallel_execution": options.execution_mode == "parallel"}
        native = open_backend("onnxruntime", model, config, instances=instances, max_batch_rows=declared.max_batch_size)
    except UnavailableError:
        raise
    except InferRuntimeError as exc:
        raise ModelLoadError(f"model '{model}': {exc}") from exc
    try:
        signature = served_signature(model, declared, native.tensors(outputs=False) or (), native.tensors(outputs=True) or (), "the file")
    except ModelLoadError:
        native.free()
        raise
    details: dict[str, object] = {"host": "native", "providers": [_CPU], "runner": native.info, "path": str(path)}
    return LoadedBackend(signature=signature, details=details, native=native)


def _load_python(model: str, path: Path, options: Any, declared: ModelSignature, instances: int, providers: list[str]) -> LoadedBackend:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[options.graph_optimization_level])
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL if options.execution_mode == "parallel" else ort.ExecutionMode.ORT_SEQUENTIAL
    sessions = []
    try:
        for _ in range(instances):
            sessions.append(ort.InferenceSession(str(path), sess_options=so, providers=providers))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"model '{model}': onnxruntime cannot load {path}: {exc}") from exc
    first = sessions[0]
    found_in = tuple(_tensor(n) for n in first.get_inputs())
    found_out = tuple(_tensor(n) for n in first.get_outputs())
    signature = served_signature(model, declared, found_in, found_out, "the file")
    output_names = [t.name for t in found_out]
    return LoadedBackend(
        signature=signature,
        details={"host": "python", "providers": first.get_providers(), "path": str(path)},
        instances=[_Session(s, output_names) for s in sessions],
    )

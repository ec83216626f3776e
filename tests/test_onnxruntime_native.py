"""The native ONNX Runtime host (C++ sessions on engine threads) against its Python
reference, onnxruntime's own Python API: the same signature read from every model, the same
results on generated inputs, and explicit failures (bad library, bad model, a batch that
fails at run time, a signature the engine would not serve)."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper, save
from structlog.testing import capture_logs

from infer_runtime import Runtime
from infer_runtime._native import lib
from infer_runtime.backends.onnxruntime import _tensor, choose_host, native_library
from infer_runtime.engine import Engine, ModelSignature, open_backend
from infer_runtime.errors import (
    BackendError,
    InvalidInputError,
    ModelLoadError,
    ModelNotFoundError,
    UnavailableError,
)

LIBRARY = native_library()
pytestmark = pytest.mark.skipif(LIBRARY is None, reason="this onnxruntime wheel ships no C library")

# (input name, ONNX type, numpy dtype, shape after N, op, output name)
_MIXED = [
    ("i32", TensorProto.INT32, np.int32, [2], "Add", "i32_twice"),
    ("f64", TensorProto.DOUBLE, np.float64, [], "Mul", "f64_squared"),
    ("flag", TensorProto.BOOL, np.bool_, [3], "Not", "flag_not"),
    ("u8", TensorProto.UINT8, np.uint8, [], "Identity", "u8_same"),
    ("half", TensorProto.FLOAT16, np.float16, [2], "Neg", "half_neg"),
    ("i64", TensorProto.INT64, np.int64, ["W"], "Identity", "i64_same"),
]


def mixed_model(path: Path) -> Path:
    """Every carried dtype class in one graph, one symbolic inner dimension included."""
    nodes, inputs, outputs = [], [], []
    for name, onnx_type, _, tail, op, out in _MIXED:
        inputs.append(helper.make_tensor_value_info(name, onnx_type, ["N", *tail]))
        outputs.append(helper.make_tensor_value_info(out, onnx_type, ["N", *tail]))
        operands = [name, name] if op in ("Add", "Mul") else [name]
        nodes.append(helper.make_node(op, operands, [out]))
    graph = helper.make_graph(nodes, "mixed", inputs, outputs)
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def gather_model(path: Path) -> Path:
    """Looks rows up in a 5-entry table: an index out of range fails inside ONNX Runtime."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [5], [0.0, 1.0, 2.0, 3.0, 4.0])
    graph = helper.make_graph([helper.make_node("Gather", ["table", "index"], ["value"])], "gather",
                              [helper.make_tensor_value_info("index", TensorProto.INT64, ["N"])],
                              [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N"])], initializer=[table])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def string_model(path: Path) -> Path:
    graph = helper.make_graph([helper.make_node("Identity", ["s"], ["t"])], "strings",
                              [helper.make_tensor_value_info("s", TensorProto.STRING, ["N"])],
                              [helper.make_tensor_value_info("t", TensorProto.STRING, ["N"])])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def open_native(model: Path, instances: int = 1, library: Path | None = None) -> Any:
    config = {"library": str(library or LIBRARY), "model_path": str(model), "intra_op_threads": 1, "inter_op_threads": 1, "graph_optimization_level": 99}
    return open_backend("onnxruntime", "m", config, instances=instances, max_batch_rows=0)


def spec(tmp_path: Path, model: Path, host: str = "native", batching: str = "max_batch_size = 16\nmax_queue_delay_us = 500") -> Path:
    path = tmp_path / "native.toml"
    path.write_text(f'[models.m]\nbackend = "onnxruntime"\npath = "{model}"\ninstances = 2\n'
                    f'[models.m.onnxruntime]\nhost = "{host}"\n[models.m.batching]\n{batching}\n')
    return path


@pytest.mark.parametrize("name", ["demo/digits.onnx", "bench/mlp_64_256_256_10.onnx", "mixed"])
def test_signature_equals_the_python_api(tmp_path: Path, models_dir: Path, name: str) -> None:
    model = mixed_model(tmp_path / "mixed.onnx") if name == "mixed" else models_dir / name
    session = ort.InferenceSession(str(model))
    native = open_native(model)
    try:
        assert native.tensors(outputs=False) == tuple(_tensor(n) for n in session.get_inputs())
        assert native.tensors(outputs=True) == tuple(_tensor(n) for n in session.get_outputs())
        assert native.info == f"onnxruntime {ort.__version__} (CPUExecutionProvider)"
    finally:
        native.free()


def _mixed_requests() -> st.SearchStrategy[list[dict[str, np.ndarray]]]:
    def request(rows: int, width: int) -> st.SearchStrategy[dict[str, np.ndarray]]:
        fields = {}
        for name, _, dtype, tail, *_ in _MIXED:
            shape = (rows, *[width if d == "W" else d for d in tail])
            elements = hnp.from_dtype(np.dtype(dtype), allow_nan=False, allow_infinity=False, min_value=-100, max_value=100) if dtype not in (np.bool_, np.uint8) else hnp.from_dtype(np.dtype(dtype))
            fields[name] = hnp.arrays(dtype, shape, elements=elements)
        return st.fixed_dictionaries(fields)

    one = st.tuples(st.integers(1, 4), st.integers(0, 3)).flatmap(lambda rw: request(*rw))
    return st.lists(one, min_size=1, max_size=12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(requests=_mixed_requests(), concurrency=st.integers(1, 6))
def test_native_results_equal_the_python_api_exactly(tmp_path: Path, requests: list[dict[str, np.ndarray]], concurrency: int) -> None:
    model = mixed_model(tmp_path / "mixed.onnx")
    session = ort.InferenceSession(str(model))
    results: list[Any] = [None] * len(requests)

    async def main() -> None:
        async with Runtime.from_spec(spec(tmp_path, model), environ={}) as rt:
            async def client(start: int) -> None:
                for i in range(start, len(requests), concurrency):
                    results[i] = await rt.infer("m", requests[i])

            await asyncio.gather(*(client(c) for c in range(concurrency)))

    asyncio.run(main())
    names = [out for *_, out in _MIXED]
    for request, got in zip(requests, results):
        for name, expected in zip(names, session.run(names, request)):
            assert got[name].dtype == expected.dtype and got[name].shape == expected.shape, name
            np.testing.assert_array_equal(got[name], expected, err_msg=name)


async def test_the_runtime_reports_which_host_runs_the_model(tmp_path: Path, models_dir: Path) -> None:
    model = models_dir / "demo" / "digits.onnx"
    for host in ("auto", "native", "python"):
        with capture_logs() as logs:
            async with Runtime.from_spec(spec(tmp_path, model, host), environ={}) as rt:
                await rt.infer("m", {"input": np.zeros((1, 64), np.float32)})
        (event,) = [e for e in logs if e["event"] == "model assembled"]
        assert event["host"] == ("python" if host == "python" else "native")
        assert event["providers"] == ["CPUExecutionProvider"]


def test_host_choice() -> None:
    lib_path = Path("/x/libonnxruntime.so.1")
    assert choose_host("auto", ["CPUExecutionProvider"], lib_path) == ("native", "")
    assert choose_host("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], lib_path)[0] == "python"
    assert choose_host("native", ["CPUExecutionProvider"], None)[0] == "python"
    assert choose_host("python", ["CPUExecutionProvider"], lib_path)[0] == "python"


async def test_host_native_that_cannot_be_honoured_is_a_load_error(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import infer_runtime.backends.onnxruntime as backend

    monkeypatch.setattr(backend, "native_library", lambda: None)
    with pytest.raises(ModelLoadError, match='host = "native" is not possible: the onnxruntime package ships no shared library'):
        await Runtime.from_spec(spec(tmp_path, models_dir / "demo" / "digits.onnx"), environ={}).start()
    with capture_logs() as logs:  # auto falls back to the Python API, and says why
        async with Runtime.from_spec(spec(tmp_path, models_dir / "demo" / "digits.onnx", "auto"), environ={}) as rt:
            await rt.infer("m", {"input": np.zeros((2, 64), np.float32)})
    assert any(e["event"] == "onnxruntime runs through its Python API" for e in logs)


async def test_a_batch_that_fails_in_onnxruntime_fails_alone(tmp_path: Path) -> None:
    model = gather_model(tmp_path / "gather.onnx")
    async with Runtime.from_spec(spec(tmp_path, model, batching="max_batch_size = 8\nmax_queue_delay_us = 0"), environ={}) as rt:
        with pytest.raises(BackendError, match="onnxruntime: .*out of bounds|onnxruntime: .*indices"):
            await rt.infer("m", {"index": np.array([1, 7], np.int64)})
        out = await rt.infer("m", {"index": np.array([4, 0, 2], np.int64)})
        np.testing.assert_array_equal(out["value"], np.array([4.0, 0.0, 2.0], np.float32))
        stats = rt.stats("m")
    assert stats.failed_backend == 1 and stats.succeeded >= 2  # the warmup request counts too


async def test_outputs_outlive_the_runtime(tmp_path: Path, models_dir: Path) -> None:
    model = models_dir / "demo" / "digits.onnx"
    x = np.load(models_dir / "demo" / "digits_test.npz")["x"][:3]
    async with Runtime.from_spec(spec(tmp_path, model), environ={}) as rt:
        outs = await asyncio.gather(*(rt.infer("m", {"input": x[i : i + 1]}) for i in range(3)))
    gc.collect()  # sessions are gone; the adopted output tensors must still be readable
    expected = ort.InferenceSession(str(model)).run(None, {"input": x})
    np.testing.assert_array_equal(np.concatenate([o["label"] for o in outs]), expected[0])
    # rows may run in batches of another size than the reference's 3, which reorders GEMM sums
    np.testing.assert_allclose(np.concatenate([o["probabilities"] for o in outs]), expected[1], rtol=1e-5, atol=1e-12)
    del outs
    gc.collect()


def test_open_errors_are_explicit(tmp_path: Path, models_dir: Path) -> None:
    model = models_dir / "demo" / "digits.onnx"
    with pytest.raises(ModelNotFoundError, match="onnxruntime library not found"):
        open_native(model, library=tmp_path / "libonnxruntime.so")
    (tmp_path / "fake.so").write_bytes(b"\x7fELF not really")
    with pytest.raises(UnavailableError, match="cannot load the onnxruntime library"):
        open_native(model, library=tmp_path / "fake.so")
    with pytest.raises(ModelNotFoundError, match="model file not found"):
        open_native(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(InvalidInputError, match="onnxruntime cannot load"):
        open_native(tmp_path / "junk.onnx")
    with pytest.raises(InvalidInputError, match=r"input 's': has ONNX element type 8.*string tensors"):
        open_native(string_model(tmp_path / "strings.onnx"))


def test_add_model_checks_the_backend_and_takes_it_only_on_success(models_dir: Path) -> None:
    model = models_dir / "demo" / "digits.onnx"
    engine = Engine()
    try:
        native = open_native(model, instances=2)
        good = ModelSignature(native.tensors(outputs=False), native.tensors(outputs=True), 8)
        renamed = ModelSignature(tuple(t.__class__("pixels", t.dtype, t.shape) for t in good.inputs or ()), good.outputs, 8)
        with pytest.raises(InvalidInputError, match="does not match the backend's 'input'"):
            engine.add_model("a", lib.IR_BACKEND_NATIVE, renamed, instances=2, batching=None, native=native)
        with pytest.raises(InvalidInputError, match="opened for 2 instance"):
            engine.add_model("b", lib.IR_BACKEND_NATIVE, good, instances=1, batching=None, native=native)
        engine.add_model("c", lib.IR_BACKEND_NATIVE, good, instances=2, batching=None, native=native)  # refused twice, still ours: now taken
        with pytest.raises(RuntimeError, match="handed to a model already"):
            native.tensors(outputs=False)
        native.free()  # harmless once taken
    finally:
        engine.stop(1.0)
        engine.destroy()


def test_warming_a_backend_runs_every_instance(tmp_path: Path) -> None:
    """ir_backend_warm: one request on each instance of an opened backend, outputs dropped;
    a failure is the backend's (here ONNX Runtime's) error, so a broken version is refused
    before it is swapped in."""
    backend = open_native(gather_model(tmp_path / "gather.onnx"), instances=2)
    try:
        backend.warm({"index": np.array([1, 2], np.int64)})
        with pytest.raises(BackendError, match="onnxruntime"):
            backend.warm({"index": np.array([99], np.int64)})
    finally:
        backend.free()

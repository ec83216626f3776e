"""End to end: for every backend, results through the engine under random concurrency,
request sizes and batching configs equal the backend run on each request alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infer_runtime import Runtime


@st.composite
def workloads(draw: st.DrawFn, max_rows_cap: int = 16) -> dict[str, Any]:
    max_batch = draw(st.integers(1, max_rows_cap))
    batching = draw(st.booleans())
    sizes = draw(st.lists(st.integers(1, max_batch if batching else 3), min_size=1, max_size=24))
    return {
        "batching": batching,
        "max_batch": max_batch,
        "delay_us": draw(st.sampled_from([0, 200, 2000])),
        "preferred": sorted(draw(st.sets(st.integers(1, max_batch), max_size=2))),
        "instances": draw(st.integers(1, 2)),
        "sizes": sizes,
        "concurrency": draw(st.integers(1, 8)),
        "seed": draw(st.integers(0, 2**16)),
    }


def spec_text(name: str, body: str, w: dict[str, Any]) -> str:
    text = f"[models.{name}]\ninstances = {w['instances']}\n{body}\n"
    if w["batching"]:
        text += f"[models.{name}.batching]\nmax_batch_size = {w['max_batch']}\nmax_queue_delay_us = {w['delay_us']}\npreferred_batch_sizes = {w['preferred']}\n"
    return text


async def run_workload(path: Path, name: str, requests: list[dict[str, np.ndarray]], concurrency: int) -> list[dict[str, np.ndarray]]:
    results: list[Any] = [None] * len(requests)
    async with Runtime.from_spec(path, environ={}) as rt:
        async def client(start: int) -> None:
            for i in range(start, len(requests), concurrency):
                results[i] = await rt.infer(name, requests[i])

        await asyncio.gather(*(client(c) for c in range(concurrency)))
    return results


def make_requests(w: dict[str, Any], width: int, dtype: Any) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(w["seed"])
    return [{"x": rng.standard_normal((k, width)).astype(dtype)} for k in w["sizes"]]


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(w=workloads())
def test_identity_is_bit_exact(tmp_path: Path, w: dict[str, Any]) -> None:
    path = tmp_path / "identity.toml"
    path.write_text(spec_text("m", 'backend = "identity"\ninputs = [{ name = "x", dtype = "float64", shape = [-1, 5] }]', w))
    requests = make_requests(w, 5, np.float64)
    for req, out in zip(requests, asyncio.run(run_workload(path, "m", requests, w["concurrency"]))):
        np.testing.assert_array_equal(out["x"], req["x"])


@SETTINGS
@given(w=workloads())
def test_python_backend_is_exact(tmp_path: Path, w: dict[str, Any]) -> None:
    path = tmp_path / "python.toml"
    body = 'backend = "python"\ninputs = [{ name = "x", dtype = "float32", shape = [-1, 3] }]\npython = { entrypoint = "ir_test_backends:Affine", config = { scale = 3.0, shift = -1.0, name = "consistency" } }'
    path.write_text(spec_text("m", body, w))
    requests = make_requests(w, 3, np.float32)
    for req, out in zip(requests, asyncio.run(run_workload(path, "m", requests, w["concurrency"]))):
        np.testing.assert_array_equal(out["y"], (req["x"] * 3.0 - 1.0).astype(np.float32))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(w=workloads(), host=st.sampled_from(["native", "python"]))
def test_onnxruntime_matches_the_session_within_tolerance(tmp_path: Path, models_dir: Path, w: dict[str, Any], host: str) -> None:
    model = models_dir / "bench" / "mlp_64_256_256_10.onnx"
    path = tmp_path / "ort.toml"
    path.write_text(spec_text("m", f'backend = "onnxruntime"\npath = "{model}"\nwarmup = false\nonnxruntime = {{ host = "{host}" }}', w))
    requests = [{"input": r["x"]} for r in make_requests(w, 64, np.float32)]
    session = ort.InferenceSession(str(model))
    for req, out in zip(requests, asyncio.run(run_workload(path, "m", requests, w["concurrency"]))):
        (expected,) = session.run(None, req)
        np.testing.assert_allclose(out["logits"], expected, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(w=workloads(), data=st.data())
def test_bytes_rows_are_exact_through_identity_and_python(tmp_path: Path, w: dict[str, Any], data: st.DataObject) -> None:
    identity = spec_text("ids", 'backend = "identity"\ninputs = [{ name = "s", dtype = "bytes", shape = [-1, 2] }]', w)
    python = spec_text("up", 'backend = "python"\ninputs = [{ name = "s", dtype = "bytes", shape = [-1, 2] }]\npython = { entrypoint = "ir_test_backends:Upper" }', w)
    path = tmp_path / "bytes.toml"
    path.write_text(identity + python)
    element = st.binary(max_size=12)
    requests = []
    for k in w["sizes"]:
        array = np.empty((k, 2), dtype=object)
        for index in np.ndindex(k, 2):
            array[index] = data.draw(element)
        requests.append({"s": array})
    for req, out in zip(requests, asyncio.run(run_workload(path, "ids", requests, w["concurrency"]))):
        assert out["s"].shape == req["s"].shape and out["s"].tolist() == req["s"].tolist()
    for req, out in zip(requests, asyncio.run(run_workload(path, "up", requests, w["concurrency"]))):
        assert out["upper"].tolist() == [[v.upper() for v in row] for row in req["s"].tolist()]
        np.testing.assert_array_equal(out["length"], np.vectorize(len)(req["s"]).astype(np.int32))

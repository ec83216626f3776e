"""Pipelines run inside the engine and are called like models: answers, nested pipelines,
BYTES, SyncRuntime, failing steps, cancellation, graceful stop, load failures, the engine's
own graph checks, and the v2 surface (HTTP and gRPC with tritonclient)."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import ir_test_backends
from infer_runtime import Runtime, SyncRuntime
from infer_runtime.engine import Engine, ModelSignature, Runner, TensorSignature
from infer_runtime.errors import (
    BackendError,
    InvalidInputError,
    ModelNotFoundError,
    UnavailableError,
)
from server_helpers import http_status, running

SPEC = """
version = 1
[runtime]
name = "pipelines"
[models.first]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
outputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
[models.first.batching]
max_batch_size = 16
max_queue_delay_us = 2000
adaptive = false  # the full window: a later burst joins the batch (test_a_burst_...)
[models.affine]
backend = "python"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
outputs = [{ name = "y", dtype = "float32", shape = [-1, 4] }]
python = { entrypoint = "ir_test_backends:Affine", config = { scale = 3.0, shift = 0.5, name = "pipe-affine" } }
[models.affine.batching]
max_batch_size = 16
max_queue_delay_us = 200
[models.last]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
outputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
[models.picky]
backend = "python"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
outputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
python = { entrypoint = "ir_test_backends:Failing" }  # no batching: a failure is its request's alone
[models.held]
backend = "python"
warmup = false
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
outputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
python = { entrypoint = "ir_test_backends:Gated", config = { name = "pipe-held" } }
[models.upper]
backend = "python"
inputs = [{ name = "s", dtype = "bytes", shape = [-1] }]
outputs = [{ name = "upper", dtype = "bytes", shape = [-1] }, { name = "length", dtype = "int32", shape = [-1] }]
python = { entrypoint = "ir_test_backends:Upper" }
[models.upper.batching]
max_batch_size = 8

[pipelines.chain]
steps = [
  { model = "first", inputs = { x = "request.x" } },
  { model = "affine", inputs = { x = "first.x" } },
  { model = "last", inputs = { x = "affine.y" } },
]
outputs = { y = "last.x", mid = "first.x" }

[pipelines.fan]
steps = [
  { model = "affine", inputs = { x = "request.x" } },
  { model = "first", name = "left", inputs = { x = "affine.y" } },
  { model = "last", name = "right", inputs = { x = "affine.y" } },
]
outputs = { left = "left.x", right = "right.x", echo = "request.x" }

[pipelines.tail]
steps = [
  { model = "first", inputs = { x = "request.x" } },
  { model = "affine", inputs = { x = "first.x" } },
]
outputs = { y = "affine.y" }

[pipelines.side]
steps = [
  { model = "first", inputs = { x = "request.x" } },
  { model = "affine", inputs = { x = "first.x" } },
  { model = "last", inputs = { x = "first.x" } },
]
outputs = { y = "affine.y" }

[pipelines.nested]
steps = [
  { model = "chain", name = "inner", inputs = { x = "request.z" } },
  { model = "affine", inputs = { x = "inner.y" } },
]
outputs = { out = "affine.y", mid = "inner.mid" }

[pipelines.checked]
steps = [
  { model = "first", inputs = { x = "request.x" } },
  { model = "picky", inputs = { x = "first.x" } },
]
outputs = { x = "picky.x" }

[pipelines.gated]
steps = [
  { model = "first", inputs = { x = "request.x" } },
  { model = "held", inputs = { x = "first.x" } },
]
outputs = { x = "held.x" }

[pipelines.text]
steps = [{ model = "upper", inputs = { s = "request.s" } }]
outputs = { upper = "upper.upper", length = "upper.length" }
"""


def affine(x: np.ndarray) -> np.ndarray:
    return (x * 3.0 + 0.5).astype(np.float32)


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "pipelines.toml"
    path.write_text(SPEC)
    return path


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


async def test_a_pipeline_answers_like_its_steps_called_one_by_one(spec_path: Path) -> None:
    async with Runtime.from_spec(spec_path) as rt:
        xs = [rows(1 + i % 3, seed=i) for i in range(40)]
        answers = await asyncio.gather(*[rt.infer("chain", {"x": x}) for x in xs])
        for x, answer in zip(xs, answers):
            first = (await rt.infer("first", {"x": x}))["x"]
            middle = (await rt.infer("affine", {"x": first}))["y"]
            last = (await rt.infer("last", {"x": middle}))["x"]
            assert set(answer) == {"y", "mid"}
            np.testing.assert_array_equal(answer["y"], last)
            np.testing.assert_array_equal(answer["mid"], first)
        stats = rt.stats("chain")
        assert stats.succeeded == 40 and stats.in_flight == 0
        steps = rt.step_stats("chain")
        assert list(steps) == ["first", "affine", "last"]
        assert all(s.submitted == s.succeeded == 40 and s.failed == 0 for s in steps.values())
        assert rt.signature("chain") == ModelSignature(
            (TensorSignature("x", np.dtype(np.float32), (-1, 4)),),
            (TensorSignature("y", np.dtype(np.float32), (-1, 4)), TensorSignature("mid", np.dtype(np.float32), (-1, 4))),
            0,  # `last` does not batch
        )
        assert "chain" in rt.model_names and rt.pipeline_names == ["chain", "fan", "tail", "side", "nested", "checked", "gated", "text"]


async def test_a_burst_is_admitted_together_and_answered_from_shared_batches(spec_path: Path) -> None:
    """Concurrent callers' requests are joined into one engine call, and the answers that
    come from one batch of the final step are views of that batch's outputs (no copy)."""
    async with Runtime.from_spec(spec_path) as rt:
        xs = [np.full((1 + i % 2, 4), i, np.float32) for i in range(64)]
        answers = await asyncio.gather(*[rt.infer("tail", {"x": x}) for x in xs])
        for x, answer in zip(xs, answers):
            np.testing.assert_array_equal(answer["y"], affine(x))
        shared = sum(a["y"].base is not None and a["y"].base is b["y"].base for a, b in itertools.pairwise(answers))
        assert shared > 0  # neighbours answered from one batch are views of one array over its buffer
        batches = rt.stats("affine").batches
        assert batches < 64  # the burst was batched, not run one by one
        assert rt.stats("tail").succeeded == 64 and rt.stats("tail").in_flight == 0
        # Answers whose run finished after a side step (not in the final step's row order)
        # are still each their own, and no batch stays cached in the delivery.
        for _ in range(5):
            xs = [np.full((1 + i % 3, 4), i, np.float32) for i in range(96)]
            answers = await asyncio.gather(*[rt.infer("side", {"x": x}) for x in xs])
            for x, answer in zip(xs, answers):
                np.testing.assert_array_equal(answer["y"], affine(x))
        assert not rt._delivery._batches
        # A model's batch shared by direct callers and a pipeline's step: each direct caller
        # gets its rows, and the delivery does not wait for the rows that went to the step.
        for _ in range(5):
            direct = [np.full((1, 4), 1000 + i, np.float32) for i in range(40)]  # not whole batches: the last waits
            piped = [np.full((1, 4), i, np.float32) for i in range(48)]
            calls = [asyncio.ensure_future(rt.infer("first", {"x": x})) for x in direct]
            await asyncio.sleep(0)  # the direct burst is admitted first; the pipeline's joins its batch
            calls += [asyncio.ensure_future(rt.infer("tail", {"x": x})) for x in piped]
            answers = await asyncio.gather(*calls)
            for x, answer in zip(direct, answers[:40]):
                np.testing.assert_array_equal(answer["x"], x)
            for x, answer in zip(piped, answers[40:]):
                np.testing.assert_array_equal(answer["y"], affine(x))
        assert not rt._delivery._batches


async def test_independent_steps_share_a_source_and_request_values_pass_through(spec_path: Path) -> None:
    async with Runtime.from_spec(spec_path) as rt:
        x = rows(3, seed=7)
        out = await rt.infer("fan", {"x": x})
        np.testing.assert_array_equal(out["left"], affine(x))
        np.testing.assert_array_equal(out["right"], affine(x))
        np.testing.assert_array_equal(out["echo"], x)
        x[:] = 0  # the pass-through output is the engine's copy, not the caller's array
        assert out["echo"].any()


async def test_a_nested_pipeline_is_inlined(spec_path: Path) -> None:
    async with Runtime.from_spec(spec_path) as rt:
        z = rows(2, seed=3)
        out = await rt.infer("nested", {"z": z})
        np.testing.assert_allclose(out["out"], affine(affine(z)), rtol=1e-6)
        np.testing.assert_array_equal(out["mid"], z)
        assert rt.pipeline_steps("nested") == [("inner/first", "first"), ("inner/affine", "affine"), ("inner/last", "last"), ("affine", "affine")]


async def test_bytes_flow_through_a_pipeline(spec_path: Path) -> None:
    async with Runtime.from_spec(spec_path) as rt:
        texts = [np.array([b"ab", b"xyz"], dtype=object), np.array([b"q"], dtype=object)]
        outs = await asyncio.gather(*[rt.infer("text", {"s": t}) for t in texts])
        assert outs[0]["upper"].tolist() == [b"AB", b"XYZ"] and outs[0]["length"].tolist() == [2, 3]
        assert outs[1]["upper"].tolist() == [b"Q"] and outs[1]["length"].tolist() == [1]


def test_sync_runtime_calls_a_pipeline(spec_path: Path) -> None:
    with SyncRuntime.from_spec(spec_path) as rt:
        x = rows(2)
        np.testing.assert_array_equal(rt.infer("chain", {"x": x})["y"], affine(x))
        with pytest.raises(InvalidInputError, match="pipeline 'chain'"):
            rt.infer("chain", {"x": np.zeros((2, 3), np.float32)})


async def test_a_failing_step_fails_only_its_request_naming_the_step_and_model(spec_path: Path) -> None:
    async with Runtime.from_spec(spec_path) as rt:
        good, bad = rows(2, seed=1), -np.abs(rows(1, seed=2)) - 1
        results = await asyncio.gather(*[rt.infer("checked", {"x": v}) for v in (good, bad, good)], return_exceptions=True)
        assert isinstance(results[1], BackendError)
        message = str(results[1])
        assert "pipeline 'checked'" in message and "step 'picky'" in message and "model 'picky'" in message and "negative input" in message
        for ok in (results[0], results[2]):
            assert isinstance(ok, dict)
            np.testing.assert_array_equal(ok["x"], good)
        steps = rt.step_stats("checked")
        assert steps["picky"].failed >= 1 and steps["first"].failed == 0
        stats = rt.stats("checked")
        assert stats.failed_backend == 1 and stats.succeeded == 2 and stats.in_flight == 0


async def test_cancelling_the_caller_cancels_the_queued_steps(spec_path: Path) -> None:
    gate = ir_test_backends.gate("pipe-held")
    gate.clear()
    ir_test_backends.entered("pipe-held").clear()
    async with Runtime.from_spec(spec_path) as rt:
        running_one = asyncio.ensure_future(rt.infer("gated", {"x": rows(1)}))
        assert await asyncio.to_thread(ir_test_backends.entered("pipe-held").wait, 10)
        queued = asyncio.ensure_future(rt.infer("gated", {"x": rows(1, seed=5)}))
        for _ in range(200):  # until the second request reaches `held`'s queue
            if rt.stats("held").queue_depth:
                break
            await asyncio.sleep(0.005)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        gate.set()
        await running_one
        for _ in range(200):
            if rt.stats("gated").in_flight == 0:
                break
            await asyncio.sleep(0.005)
        stats = rt.stats("gated")
        assert stats.cancelled == 1 and stats.succeeded == 1 and stats.in_flight == 0
        assert rt.stats("held").cancelled == 1  # the queued step never ran


async def test_stop_lets_admitted_pipeline_requests_finish_their_steps(spec_path: Path) -> None:
    gate = ir_test_backends.gate("pipe-held")
    gate.clear()
    ir_test_backends.entered("pipe-held").clear()
    rt = await Runtime.from_spec(spec_path).start()
    x = rows(1, seed=9)
    pending = [asyncio.ensure_future(rt.infer("gated", {"x": x})) for _ in range(3)]
    assert await asyncio.to_thread(ir_test_backends.entered("pipe-held").wait, 10)
    threading.Timer(0.3, gate.set).start()
    started = time.monotonic()
    cancelled = await rt.stop(10)
    assert cancelled == 0 and time.monotonic() - started < 5
    for fut in pending:
        np.testing.assert_array_equal((await fut)["x"], x)


async def test_a_pipeline_over_a_model_that_failed_to_load_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("""
version = 1
[server]
exit_on_error = false
[models.ok]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
[models.broken]
backend = "python"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
python = { entrypoint = "ir_test_backends:BrokenInit" }
[pipelines.p]
steps = [{ model = "ok", inputs = { x = "request.x" } }, { model = "broken", inputs = { x = "ok.x" } }]
outputs = { x = "broken.x" }
""")
    async with Runtime.from_spec(path) as rt:
        assert "p" in rt.failed_models and "broken" in rt.failed_models["p"]
        with pytest.raises(UnavailableError, match="pipeline 'p' is not available"):
            await rt.infer("p", {"x": rows(1)})
        with pytest.raises(ModelNotFoundError, match="no model or pipeline named 'q'"):
            await rt.infer("q", {"x": rows(1)})


def test_the_engine_checks_a_pipeline_graph() -> None:
    engine = Engine()
    try:
        sig = ModelSignature((TensorSignature("x", np.dtype(np.float32), (-1, 4)),), None, 8)
        engine.add_model("m", Runner.IDENTITY, sig, instances=1, batching=None)
        with pytest.raises(ModelNotFoundError, match="step 's': no model named 'nope'"):
            engine.add_pipeline("p", sig, [("s", "nope", {"x": (-1, "x")})], {"y": (0, "x")}, priority_levels=1)
        with pytest.raises(InvalidInputError, match="does not run before it"):
            engine.add_pipeline("p", sig, [("s", "m", {"x": (0, "x")})], {"y": (0, "x")}, priority_levels=1)
        with pytest.raises(InvalidInputError, match="has no input 'z'"):
            engine.add_pipeline("p", sig, [("s", "m", {"z": (-1, "x")})], {"y": (0, "x")}, priority_levels=1)
        with pytest.raises(InvalidInputError, match="does not take"):
            engine.add_pipeline("p", sig, [("s", "m", {"x": (-1, "w")})], {"y": (0, "x")}, priority_levels=1)
        with pytest.raises(InvalidInputError, match="duplicate"):
            engine.add_pipeline("m", sig, [("s", "m", {"x": (-1, "x")})], {"y": (0, "x")}, priority_levels=1)
        with pytest.raises(InvalidInputError, match="two steps are named"):
            engine.add_pipeline("p", sig, [("s", "m", {"x": (-1, "x")}), ("s", "m", {"x": (0, "x")})], {"y": (1, "x")}, priority_levels=1)
        engine.add_pipeline("p", sig, [("s", "m", {"x": (-1, "x")})], {"y": (0, "x")}, priority_levels=1)
    finally:
        engine.stop(1)
        engine.destroy()


@pytest.mark.slow
def test_a_pipeline_over_http_and_grpc_with_tritonclient(spec_path: Path) -> None:
    with running(spec_path) as server:
        http = httpclient.InferenceServerClient(server.url)
        grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        x = rows(2, seed=11)
        for client, module in ((http, httpclient), (grpc, grpcclient)):
            assert client.is_model_ready("chain")
            meta = client.get_model_metadata("chain")
            inputs = meta["inputs"] if isinstance(meta, dict) else [{"name": t.name, "shape": list(t.shape)} for t in meta.inputs]
            assert inputs[0]["name"] == "x" and list(inputs[0]["shape"]) == [-1, 4]
            tensor = module.InferInput("x", [2, 4], "FP32")
            tensor.set_data_from_numpy(x)
            result = client.infer("chain", [tensor])
            np.testing.assert_array_equal(result.as_numpy("y"), affine(x))
            np.testing.assert_array_equal(result.as_numpy("mid"), x)
            bad = module.InferInput("x", [1, 4], "FP32")
            bad.set_data_from_numpy(-np.ones((1, 4), np.float32))
            with pytest.raises(InferenceServerException, match="step 'picky'"):
                client.infer("checked", [bad])
        status, body = http_status(f"{server.base}/v2/models/chain/config")
        config = json.loads(body)
        assert status == 200 and config["platform"] == "ensemble"
        assert [s["model_name"] for s in config["ensemble_scheduling"]["step"]] == ["first", "affine", "last"]
        status, body = http_status(f"{server.base}/v2/models/chain/stats")
        assert status == 200 and json.loads(body)["model_stats"][0]["inference_stats"]["success"]["count"] == 2
        status, body = http_status(f"{server.base}/metrics")
        text = body.decode()
        assert 'infer_runtime_pipeline_step_requests_total{model="affine",outcome="success",pipeline="chain",step="affine"} 2.0' in text
        assert 'infer_runtime_model_ready{model="chain"} 1.0' in text
        status, body = http_status(f"{server.base}/v2/models/chain/infer", "POST", b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}')
        assert status == 400 and b"pipeline 'chain'" in body


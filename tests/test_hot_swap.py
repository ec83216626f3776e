"""Zero-downtime hot swap from the registry: a running runtime follows its environment's
deployments (promote, rollback) with no failed request, and every answer names the version
that computed it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, save

from infer_runtime import Runtime
from infer_runtime.registry import SyncRegistry


def version_model(path: Path, version: float) -> Path:
    """y = x * 0 + version: a model that answers its own version number."""
    const = helper.make_tensor("v", TensorProto.FLOAT, [1], [version])
    zero = helper.make_tensor("z", TensorProto.FLOAT, [1], [0.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "z"], ["xz"]), helper.make_node("Add", ["xz", "v"], ["y"])], "versioned",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])], initializer=[const, zero])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


SPEC = """
[registry]
path = "registry.db"
environment = "production"
poll_interval_s = {poll}
[models.m]
backend = "onnxruntime"
registry = "m@production"
instances = 2
[models.m.batching]
max_batch_size = 16
max_queue_delay_us = 200
"""


@pytest.fixture
def registry(tmp_path: Path) -> SyncRegistry:
    reg = SyncRegistry(tmp_path / "registry.db")
    for v in (1, 2, 3):
        reg.register("m", version_model(tmp_path / f"m{v}.onnx", float(v)), version=str(v), backend="onnxruntime")
    reg.promote("m", "1", "production")
    return reg


async def test_swaps_follow_promote_and_rollback_with_no_failed_request(tmp_path: Path, registry: SyncRegistry) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(poll=0.05))
    failures: list[BaseException] = []
    answers: list[tuple[float, str]] = []
    stop = asyncio.Event()
    async with Runtime.from_spec(spec, environ={}) as rt:
        assert rt.version("m") == "1"

        async def client() -> None:
            x = np.ones((1, 1), np.float32)
            while not stop.is_set():
                try:
                    out, version = await rt.infer_with_version("m", {"x": x})
                except Exception as exc:  # noqa: BLE001 - recorded: the test asserts there are none
                    failures.append(exc)
                    continue
                answers.append((float(out["y"][0, 0]), version))

        async def wait_for(version: str) -> float:
            started = time.monotonic()
            while rt.version("m") != version and time.monotonic() - started < 10:
                await asyncio.sleep(0.01)
            assert rt.version("m") == version
            return time.monotonic() - started

        tasks = [asyncio.ensure_future(client()) for _ in range(32)]
        await asyncio.sleep(0.3)
        await asyncio.to_thread(registry.promote, "m", "2", "production")
        seen_2 = await wait_for("2")
        await asyncio.sleep(0.3)
        await asyncio.to_thread(registry.promote, "m", "3", "production")
        await wait_for("3")
        await asyncio.sleep(0.3)
        await asyncio.to_thread(registry.rollback, "m", "production")
        await wait_for("2")
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*tasks)
        assert rt.swap_counts == {("m", "success"): 3}
    assert failures == []
    assert len(answers) > 100
    assert all(value == float(version) for value, version in answers), "an answer named a version that did not compute it"
    assert {version for _, version in answers} == {"1", "2", "3"}
    assert seen_2 < 5.0  # poll interval + load time, with a wide margin for a loaded machine


async def test_a_tampered_new_version_leaves_the_old_one_serving(tmp_path: Path, registry: SyncRegistry) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(poll=0))
    async with Runtime.from_spec(spec, environ={}) as rt:
        stored = registry.get("m", "2").artifact  # the content-addressed copy the registry verifies
        Path(stored).write_bytes(b"not the registered bytes")
        registry.promote("m", "2", "production")
        with pytest.raises(Exception, match="sha256|size|does not match"):
            await rt.reload_model("m")
        assert rt.version("m") == "1"
        out = await rt.infer("m", {"x": np.ones((1, 1), np.float32)})
        assert float(out["y"][0, 0]) == 1.0
        assert rt.swap_counts == {("m", "failure"): 1}


async def test_reload_resolves_the_reference_again(tmp_path: Path, registry: SyncRegistry) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(poll=0))  # no polling: only an explicit reload swaps
    async with Runtime.from_spec(spec, environ={}) as rt:
        registry.promote("m", "3", "production")
        await asyncio.sleep(0.1)
        assert rt.version("m") == "1"
        await rt.reload_model("m")
        assert rt.version("m") == "3"
        out, version = await rt.infer_with_version("m", {"x": np.ones((2, 1), np.float32)})
        assert version == "3" and out["y"].tolist() == [[3.0], [3.0]]

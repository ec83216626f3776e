"""The onnxruntime backend: results, signature checks, provider fallback, batching."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from structlog.testing import capture_logs

from infer_runtime import Runtime
from infer_runtime.errors import InvalidInputError, ModelLoadError


def spec_for(tmp_path: Path, model: Path, extra: str = "") -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(f"""
[models.digits]
backend = "onnxruntime"
path = "{model}"
{extra}
[models.digits.batching]
max_batch_size = 32
max_queue_delay_us = 1000
preferred_batch_sizes = [8, 16]
[models.digits.onnxruntime]
providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
""")
    return path


async def test_digits_through_the_engine_equal_the_session(tmp_path: Path, models_dir: Path) -> None:
    model = models_dir / "demo" / "digits.onnx"
    test = np.load(models_dir / "demo" / "digits_test.npz")
    direct_labels, direct_probs = ort.InferenceSession(str(model)).run(None, {"input": test["x"]})
    with capture_logs() as logs:
        async with Runtime.from_spec(spec_for(tmp_path, model), environ={}) as rt:
            outs = await asyncio.gather(*(rt.infer("digits", {"input": test["x"][i : i + 1]}) for i in range(len(test["x"]))))
            sig = rt.signature("digits")
            stats = rt.stats("digits")
    labels = np.concatenate([o["label"] for o in outs])
    probs = np.concatenate([o["probabilities"] for o in outs])
    np.testing.assert_array_equal(labels, direct_labels)
    np.testing.assert_allclose(probs, direct_probs, rtol=1e-5, atol=1e-6)
    assert np.mean(labels == test["y"]) > 0.9
    assert [t.describe() for t in sig.inputs or ()] == ["input: float32[-1, 64]"]
    assert [t.describe() for t in sig.outputs or ()] == ["label: int64[-1]", "probabilities: float32[-1, 10]"]
    assert stats.batches < len(outs)  # batched
    assembled = [e for e in logs if e["event"] == "model assembled"]
    assert assembled and assembled[0]["providers"] == ["CPUExecutionProvider"]
    assert any(e["event"] == "providers unavailable, skipped" and e["skipped"] == ["CUDAExecutionProvider"] for e in logs)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ('inputs = [{ name = "pixels", dtype = "float32", shape = [-1, 64] }]', "declared inputs ['pixels'] but the file has ['input']"),
        ('inputs = [{ name = "input", dtype = "float64", shape = [-1, 64] }]', "input 'input' is declared float64 but the file says float32"),
        ('inputs = [{ name = "input", dtype = "float32", shape = [-1, 32] }]', "input 'input' is declared [-1, 32] but the file says [-1, 64]"),
        ('outputs = [{ name = "label", dtype = "int64", shape = [-1] }]', "declared outputs ['label'] but the file has ['label', 'probabilities']"),
    ],
)
async def test_declared_signature_must_match_the_file(tmp_path: Path, models_dir: Path, declared: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        await Runtime.from_spec(spec_for(tmp_path, models_dir / "demo" / "digits.onnx", declared), environ={}).start()


async def test_a_file_that_is_not_onnx_fails_to_load(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="onnxruntime cannot load"):
        await Runtime.from_spec(spec_for(tmp_path, junk), environ={}).start()


async def test_inputs_checked_against_the_file_signature(tmp_path: Path, models_dir: Path) -> None:
    async with Runtime.from_spec(spec_for(tmp_path, models_dir / "demo" / "digits.onnx"), environ={}) as rt:
        with pytest.raises(InvalidInputError, match=r"input 'input' must have shape \[-1, 64\], got \[1, 63\]"):
            await rt.infer("digits", {"input": np.zeros((1, 63), np.float32)})

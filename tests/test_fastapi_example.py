"""examples/fastapi_app.py: the runtime embedded in a FastAPI lifespan, called over HTTP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient


def test_fastapi_app_predicts_digits(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFER_RUNTIME_SPEC", str(Path(__file__).resolve().parent.parent / "specs" / "demo.toml"))
    monkeypatch.setenv("INFER_RUNTIME_MODELS__DIGITS__PATH", str(models_dir / "demo" / "digits.onnx"))
    import fastapi_app

    test = np.load(models_dir / "demo" / "digits_test.npz")
    with TestClient(fastapi_app.app) as client:
        correct = 0
        for x, y in zip(test["x"][:40], test["y"][:40]):
            response = client.post("/predict", json={"pixels": x.tolist()})
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
            correct += body["label"] == y
        assert correct >= 34
        assert client.post("/predict", json={"pixels": [0] * 63}).status_code == 422
        assert client.get("/stats").json()["requests"] >= 40
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        served = [line for line in metrics.text.splitlines() if line.startswith('infer_runtime_requests_total{model="digits",version="1",outcome="success"}')]
        assert served == ['infer_runtime_requests_total{model="digits",version="1",outcome="success"} 40.0']  # warmup excluded
        assert 'infer_runtime_model_ready{model="digits"} 1.0' in metrics.text

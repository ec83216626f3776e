"""Embedding infer-runtime in a FastAPI service: the runtime lives in the app's lifespan.

Run:  uvicorn examples.fastapi_app:app --port 8080   (after `python examples/build_models.py`)
      curl -s localhost:8080/predict -H 'content-type: application/json' \\
           -d '{"pixels": [0, 0, 5, 13, 9, 1, 0, 0, ...64 numbers]}'
      curl -s localhost:8080/metrics     # the runtime's Prometheus metrics, as `infer-runtime run` serves them
The spec is INFER_RUNTIME_SPEC (default specs/demo.toml); INFER_RUNTIME_* overrides apply.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, Field

from infer_runtime import Runtime
from infer_runtime.errors import (
    DeadlineExceededError,
    InvalidInputError,
    QueueFullError,
    UnavailableError,
)
from infer_runtime.monitoring.metrics import make_registry, render

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "specs" / "demo.toml"


class Digit(BaseModel):
    pixels: list[float] = Field(min_length=64, max_length=64, description="8x8 image, row-major, values 0..16")


class Prediction(BaseModel):
    label: int
    probabilities: list[float]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with Runtime.from_spec(os.environ.get("INFER_RUNTIME_SPEC", str(DEFAULT_SPEC))) as rt:
        app.state.rt = rt
        app.state.metrics = make_registry(rt)  # after start: warmup requests are not counted
        yield


app = FastAPI(title="digits", lifespan=lifespan)


@app.post("/predict", response_model=Prediction)
async def predict(digit: Digit, request: Request) -> Prediction:
    rt: Runtime = request.app.state.rt
    x = np.asarray(digit.pixels, dtype=np.float32).reshape(1, 64)
    try:
        out = await rt.infer("digits", {"input": x}, timeout_ms=500)
    except InvalidInputError as exc:
        raise HTTPException(400, str(exc)) from exc
    except (QueueFullError, DeadlineExceededError, UnavailableError) as exc:
        raise HTTPException(503, str(exc)) from exc
    return Prediction(label=int(out["label"][0]), probabilities=[float(p) for p in out["probabilities"][0]])


@app.get("/stats")
async def stats(request: Request) -> dict[str, float]:
    s = request.app.state.rt.stats("digits")
    return {"requests": s.succeeded, "batches": s.batches, "mean_batch_rows": s.mean_batch_rows}


@app.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus exposition of the embedded runtime (engine counters read now)."""
    body, content_type = render(request.app.state.metrics)
    return Response(content=body, media_type=content_type)

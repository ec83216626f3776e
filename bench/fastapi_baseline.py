"""The peer to beat over HTTP: a plain FastAPI + uvicorn app that runs
``InferenceSession.run`` once per request, speaking enough of the v2 protocol (JSON and
Triton's binary extension) for the same load generator and payloads.

Run: BASELINE_MODEL=var/bench/mlp_256_1024_1024_10.onnx uvicorn bench.fastapi_baseline:app --port 8100
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request, Response

so = ort.SessionOptions()
so.intra_op_num_threads = 1
session = ort.InferenceSession(os.environ["BASELINE_MODEL"], sess_options=so, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
width = session.get_inputs()[0].shape[1]
output_width = session.get_outputs()[0].shape[1]
app = FastAPI()


# Metadata and configuration, as little of the v2 protocol as Triton's perf_analyzer needs
# to drive this app (no batching: max_batch_size 0, the batch dimension is part of the shape).
@app.get("/v2")
async def server_metadata() -> dict[str, object]:
    return {"name": "fastapi-baseline", "version": "1", "extensions": []}


@app.get("/v2/models/{model}")
async def metadata(model: str) -> dict[str, object]:
    return {"name": model, "versions": ["1"], "platform": "onnxruntime_onnx",
            "inputs": [{"name": input_name, "datatype": "FP32", "shape": [-1, width]}],
            "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, output_width]}]}


@app.get("/v2/models/{model}/config")
async def config(model: str) -> dict[str, object]:
    return {"name": model, "platform": "onnxruntime_onnx", "max_batch_size": 0,
            "input": [{"name": input_name, "data_type": "TYPE_FP32", "dims": [-1, width]}],
            "output": [{"name": "logits", "data_type": "TYPE_FP32", "dims": [-1, output_width]}]}


@app.post("/v2/models/{model}/infer")
async def infer_raw(model: str, request: Request) -> Response:
    body = await request.body()
    split = request.headers.get("inference-header-content-length")
    header = json.loads(body[: int(split)] if split else body)
    spec = header["inputs"][0]
    shape = spec["shape"]
    if split:
        x = np.frombuffer(body, dtype=np.float32, offset=int(split)).reshape(shape)
    else:
        x = np.asarray(spec["data"], dtype=np.float32).reshape(shape)
    (logits,) = await _run(x)
    if split or (header.get("parameters") or {}).get("binary_data_output"):
        raw = logits.tobytes()
        head = json.dumps({"model_name": model, "outputs": [{"name": "logits", "datatype": "FP32", "shape": list(logits.shape), "parameters": {"binary_data_size": len(raw)}}]}).encode()
        return Response(head + raw, media_type="application/octet-stream", headers={"Inference-Header-Content-Length": str(len(head))})
    return Response(json.dumps({"model_name": model, "outputs": [{"name": "logits", "datatype": "FP32", "shape": list(logits.shape), "data": logits.ravel().tolist()}]}), media_type="application/json")


async def _run(x: np.ndarray) -> list[np.ndarray]:
    # What a FastAPI user writes: the blocking call goes to the thread pool.
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(session.run, None, {input_name: x})  # type: ignore[no-any-return]

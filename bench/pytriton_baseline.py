"""The batching peer over HTTP: PyTriton (NVIDIA's Triton server with a Python model) serving
the same ONNX model with Triton's dynamic batcher and the same settings as ours
(``max_batch_size = 64``, ``max_queue_delay_us = 500``), ``InferenceSession.run`` per batch.

PyTriton ships the Triton server binary and pins its own dependencies: install it in a
separate environment (``python -m venv .pt && .pt/bin/pip install nvidia-pytriton
onnxruntime numpy``) and point ``http_bench.py --pytriton-python .pt/bin/python`` at it.

Run: BASELINE_MODEL=var/bench/mlp_64_256_256_10.onnx python bench/pytriton_baseline.py --http-port 8200
"""

from __future__ import annotations

import argparse
import os
import sysconfig

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, default=0, help="0: the HTTP port + 1")
    parser.add_argument("--metrics-port", type=int, default=0, help="0: the HTTP port + 2")
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as our spec and the FastAPI baseline
    session = ort.InferenceSession(os.environ["BASELINE_MODEL"], sess_options=options, providers=["CPUExecutionProvider"])
    width = session.get_inputs()[0].shape[1]

    @batch
    def infer(input: np.ndarray) -> dict[str, np.ndarray]:
        (logits,) = session.run(None, {"input": input})
        return {"logits": logits}

    # Triton's Python stub links libpython3.x dynamically: give it this interpreter's (the
    # system's may be another patch release, whose C modules mismatch this standard library).
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH", "")) if p)
    config = TritonConfig(http_address="127.0.0.1", http_port=args.http_port, grpc_address="127.0.0.1",
                          grpc_port=args.grpc_port or args.http_port + 1, metrics_port=args.metrics_port or args.http_port + 2,
                          log_verbose=0)
    with Triton(config=config) as triton:
        triton.bind(model_name="mlp", infer_func=infer,
                    inputs=[Tensor(name="input", dtype=np.float32, shape=(width,))],
                    outputs=[Tensor(name="logits", dtype=np.float32, shape=(-1,))],
                    config=ModelConfig(max_batch_size=64, batcher=DynamicBatcher(max_queue_delay_microseconds=500)))
        triton.serve()


if __name__ == "__main__":
    main()

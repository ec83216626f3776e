"""The embedded quick start: serve specs/demo.toml in-process and classify the held-out
digits through ``await rt.infer``, concurrently, so the dynamic batcher has work to do.

Usage: python examples/demo.py [--spec specs/demo.toml] [--concurrency 32]
Builds the demo model on first run (examples/build_models.py; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from build_models import ensure_demo_models

import infer_runtime
from infer_runtime.monitoring.logging import configure_logging


async def classify(rt: infer_runtime.Runtime, images: np.ndarray, concurrency: int) -> tuple[np.ndarray, list[float]]:
    labels = np.empty(len(images), dtype=np.int64)
    latencies: list[float] = []
    next_index = 0

    async def client() -> None:
        nonlocal next_index
        while next_index < len(images):
            i = next_index
            next_index += 1
            start = time.perf_counter()
            out = await rt.infer("digits", {"input": images[i : i + 1]})
            latencies.append(time.perf_counter() - start)
            labels[i] = out["label"][0]

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return labels, latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(ROOT / "specs" / "demo.toml"))
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    paths = ensure_demo_models()
    test = np.load(paths["digits"].with_name("digits_test.npz"))
    images, truth = test["x"], test["y"]

    loaded = infer_runtime.spec.load_spec(args.spec)
    configure_logging(loaded.spec.monitoring.log_level, loaded.spec.monitoring.log_format)
    async with infer_runtime.Runtime.from_spec(loaded) as rt:
        print(f"serving {rt.model_names}; digits signature: {[t.describe() for t in rt.signature('digits').inputs or ()]}")
        start = time.perf_counter()
        labels, latencies = await classify(rt, images, args.concurrency)
        elapsed = time.perf_counter() - start
        stats = rt.stats("digits")
    latencies.sort()
    print(f"classified {len(images)} held-out digits one request each, {args.concurrency} at a time")
    print(f"  accuracy   {np.mean(labels == truth):.3f}")
    print(f"  throughput {len(images) / elapsed:,.0f} requests/s")
    print(f"  latency    p50 {latencies[len(latencies) // 2] * 1e6:,.0f} us   p99 {latencies[int(len(latencies) * 0.99)] * 1e6:,.0f} us   mean {statistics.mean(latencies) * 1e6:,.0f} us")
    print(f"  batching   {stats.batches} batches, {stats.mean_batch_rows:.1f} rows on average "
          f"(dispatched: {stats.batches_full} full, {stats.batches_preferred} preferred size, {stats.batches_delay} delay expired, {stats.batches_early} early: no arrival expected)")


if __name__ == "__main__":
    import infer_runtime.spec

    asyncio.run(main())

"""Dynamic batching on a real model: an MLP 256 → 1024 → 1024 → 10 (ONNX Runtime, one
intra-op thread, one instance), single-row requests at concurrency 1, 8 and 64.

Compared in one run (configurations interleaved over --rounds, median round reported):
  (a) InferenceSession.run once per request, sequentially (no batching);
  (b) InferenceSession.run on full batches of 64 rows (the ceiling);
  (c) the naive asyncio batcher (take what is waiting, run in a thread, split);
  ours: await rt.infer, max_queue_delay_us 0 (take what is waiting, like (c)), sessions run
        by the native host (C++ threads), max_batch_size 32: two batches are in flight, so
        the event loop resubmits one while the model runs the other. Also measured at
        concurrency 64: max_batch_size 64 (the loop and the model take turns) and the
        Python host (sessions on a Python thread, contending for the GIL).
Targets at concurrency 64 (issue 3): ≥ 8x (a), ≥ 0.8x (b), ≥ 1.2x (c).

Run: python bench/batching.py [--requests 6000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ROOT, NaiveBatcher, Result, closed_loop, median_result, mlp_spec, ort_session, print_table, ratio, save, summarize

import infer_runtime
from build_models import build_mlp



OURS = "infer-runtime rt.infer"


def timed_runs(session: object, x: np.ndarray, n: int) -> tuple[float, list[float]]:
    """``n`` back-to-back ``session.run`` calls on ``x``: elapsed seconds and each call's."""
    run = session.run  # type: ignore[attr-defined]
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        run(None, {"input": x})
        latencies.append(time.perf_counter() - t)
    return time.perf_counter() - start, latencies


def sequential(session: object, x: np.ndarray, n: int) -> Result:
    elapsed, latencies = timed_runs(session, x, n)
    return summarize("(a) session.run per request, sequential", 1, elapsed, latencies)


def full_batches(session: object, x64: np.ndarray, n_batches: int) -> Result:
    elapsed, latencies = timed_runs(session, x64, n_batches)
    r = summarize("(b) session.run, full batches of 64 (rows/s)", 64, elapsed, latencies)
    return Result(r.name, 64, n_batches * 64, elapsed, r.p50_us, r.p99_us)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "batching.json")
    args = parser.parse_args()
    model = ROOT / "var" / "bench" / "mlp_256_1024_1024_10.onnx"
    if not model.exists():
        build_mlp(model)
    folder = Path(tempfile.mkdtemp())
    configs = {  # name → (spec, concurrencies)
        OURS: (mlp_spec(model, max_batch_size=32, host="native"), (1, 8, 64)),
        "infer-runtime, max_batch_size 64": (mlp_spec(model, max_batch_size=64, host="native"), (64,)),
        "infer-runtime, Python host": (mlp_spec(model, max_batch_size=32, host="python"), (64,)),
    }
    session = ort_session(model)
    x = np.random.default_rng(0).standard_normal((1, 256)).astype(np.float32)
    x64 = np.repeat(x, 64, axis=0)
    for _ in range(50):
        session.run(None, {"input": x64})
    rounds: dict[tuple[str, int], list[Result]] = {}
    batch_rows: dict[str, float] = {}

    def keep(r: Result) -> None:
        rounds.setdefault((r.name, r.concurrency), []).append(r)

    for _ in range(args.rounds):
        keep(sequential(session, x, args.requests // 2))
        keep(full_batches(session, x64, args.requests // 64))
        for name, (text, concurrencies) in configs.items():
            spec = folder / "batching.toml"
            spec.write_text(text)
            async with infer_runtime.Runtime.from_spec(spec, environ={}) as rt:
                inputs = {"input": x}
                for conc in concurrencies:
                    await closed_loop(lambda: rt.infer("mlp", inputs), conc, 0)  # warm up
                    before = rt.stats("mlp")
                    elapsed, lat = await closed_loop(lambda: rt.infer("mlp", inputs), conc, args.requests, warmup=0)
                    after = rt.stats("mlp")
                    keep(summarize(name, conc, elapsed, lat))
                batch_rows[name] = (after.batched_rows - before.batched_rows) / max(after.batches - before.batches, 1)
        async with NaiveBatcher(session, "input") as naive:
            for conc in (1, 8, 64):
                elapsed, lat = await closed_loop(lambda: naive.infer(x), conc, args.requests)
                keep(summarize("(c) naive asyncio batcher", conc, elapsed, lat))
    results = [median_result(r) for r in rounds.values()]
    print_table(results, unit="rows/s")
    by = {(r.name, r.concurrency): r for r in results}
    ours = by[(OURS, 64)]
    a = by[("(a) session.run per request, sequential", 1)]
    b = by[("(b) session.run, full batches of 64 (rows/s)", 64)]
    c = by[("(c) naive asyncio batcher", 64)]
    means = ", ".join(f"{name}: {rows:.1f}" for name, rows in batch_rows.items())
    print(f"\n(median of {args.rounds} interleaved rounds; mean rows per batch at concurrency 64, last round: {means})")
    print(f"concurrency 64: {ours.throughput:,.0f} rows/s = {ratio(ours.throughput, a.throughput)} (a) [≥ 8x], "
          f"{ratio(ours.throughput, b.throughput)} (b) [≥ 0.8x], {ratio(ours.throughput, c.throughput)} (c) [≥ 1.2x]")
    save(results, args.json, {"bench": "batching", "rounds": args.rounds, "requests": args.requests})


if __name__ == "__main__":
    asyncio.run(main())

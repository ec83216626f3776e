"""A pipeline run inside the engine against the same three steps chained in Python.

Three small ONNX MLPs (16→64→16, Gemm+Relu+Gemm, seeded weights; native ORT host, one
intra-op thread, one instance each, batching up to 64 rows taking what is waiting), single-
row float32 [1, 16] requests, one Runtime serving the three models and the pipeline
``chain3`` (s1 → s2 → s3). Measured on that same Runtime:

- pipeline: ``await rt.infer("chain3", {"input": x})``: one submission, the steps hand their
  outputs on in C++.
- chain: ``await rt.infer("s1", ...)``, then s2 on its output, then s3: what a user writes
  without pipelines (three submissions, three trips through the event loop).
- each step alone at concurrency 1 (``await rt.infer("s<i>", ...)``).

Targets (issue 12): at concurrency 64 the pipeline's throughput ≥ 1.5× the chain's; at
concurrency 1 the pipeline's p50 within 20 µs of the sum of the three steps' own p50s.
Both are judged per round (each round measures everything back to back, alternating which
side goes first) and the median of the per-round figures is reported, as overhead.py does:
the shared VM's speed drifts by up to 2x between rounds.

Run: python bench/pipeline.py [--requests 20000] [--rounds 7] [--delay-us 0]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, Result, closed_loop, median_result, print_table, save, summarize
from build_models import build_mlp

import infer_runtime

STEPS = ("s1", "s2", "s3")
SIZES = (16, 64, 16)

MODEL = """
[models.{name}]
backend = "onnxruntime"
path = "{path}"
[models.{name}.batching]
max_batch_size = 64
max_queue_delay_us = {delay}
max_queue_size = 4096
[models.{name}.onnxruntime]
intra_op_threads = 1
inter_op_threads = 1
"""

PIPELINE = """
[pipelines.chain3]
steps = [
  { model = "s1", inputs = { input = "request.input" } },
  { model = "s2", inputs = { input = "s1.logits" } },
  { model = "s3", inputs = { input = "s2.logits" } },
]
outputs = { logits = "s3.logits" }
"""

PIPE = "pipeline chain3 (in the engine)"
CHAIN = "three awaits chained in Python"


def write_spec(folder: Path, delay_us: int) -> Path:
    """Three seeded MLPs and the pipeline over them."""
    text = '[monitoring]\nlog_level = "warning"\n'
    for seed, name in enumerate(STEPS):
        path = folder / f"{name}.onnx"
        build_mlp(path, SIZES, seed=seed)
        text += MODEL.format(name=name, path=path, delay=delay_us)
    spec = folder / "pipeline.toml"
    spec.write_text(text + PIPELINE)
    return spec


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--delay-us", type=int, default=0, help="max_queue_delay_us of the three models (adaptive, the default)")
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "pipeline.json")
    args = parser.parse_args()
    x = np.random.default_rng(0).standard_normal((1, SIZES[0])).astype(np.float32)
    spec = write_spec(Path(tempfile.mkdtemp()), args.delay_us)
    rounds: dict[tuple[str, int], list[Result]] = {}

    async def measure(name: str, call: Callable[[], Awaitable[Any]], conc: int, requests: int) -> Result:
        elapsed, lat = await closed_loop(call, conc, requests)
        result = summarize(name, conc, elapsed, lat)
        rounds.setdefault((name, conc), []).append(result)
        return result

    c64_ratios: list[float] = []
    c1_gaps: list[float] = []  # pipeline p50 - (s1 + s2 + s3 p50), µs
    c1_chain_gaps: list[float] = []
    async with infer_runtime.Runtime.from_spec(spec, environ={}) as rt:
        # Same answers both ways before anything is timed.
        chained = await chain(rt, x)
        np.testing.assert_array_equal((await rt.infer("chain3", {"input": x}))["logits"], chained)
        for r in range(args.rounds):
            pair: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                (PIPE, lambda: rt.infer("chain3", {"input": x})),
                (CHAIN, lambda: chain(rt, x)),
            ]
            if r % 2:
                pair.reverse()
            at64 = {name: await measure(name, call, 64, args.requests) for name, call in pair}
            c64_ratios.append(at64[PIPE].throughput / at64[CHAIN].throughput)
            at1 = {name: await measure(name, call, 1, args.requests // 4) for name, call in pair}
            steps = [await measure(f"step {s} alone", step_call(rt, s, x), 1, args.requests // 4) for s in (STEPS if r % 2 == 0 else STEPS[::-1])]
            step_sum = sum(s.p50_us for s in steps)
            c1_gaps.append(at1[PIPE].p50_us - step_sum)
            c1_chain_gaps.append(at1[CHAIN].p50_us - step_sum)
            print(f"round {r + 1}: c=64 ratio {c64_ratios[-1]:.2f}x; c=1 pipeline p50 {at1[PIPE].p50_us:.1f} us vs steps' sum {step_sum:.1f} us "
                  f"({c1_gaps[-1]:+.1f}); chain {at1[CHAIN].p50_us:.1f} us", flush=True)
        stats = rt.step_stats("chain3")
    results = [median_result(r) for r in rounds.values()]
    print_table(results)
    by = {(r.name, r.concurrency): r for r in results}
    ratio, gap = median(c64_ratios), median(c1_gaps)
    print(f"\n(median of {args.rounds} rounds; {args.requests} requests per configuration at c=64, {args.requests // 4} at c=1; "
          f"max_queue_delay_us = {args.delay_us})")
    print(f"concurrency 64: pipeline {by[(PIPE, 64)].throughput:,.0f} req/s vs chain {by[(CHAIN, 64)].throughput:,.0f}; "
          f"per-round ratio median {ratio:.2f}x (range {min(c64_ratios):.2f}-{max(c64_ratios):.2f}; target ≥ 1.50x)")
    print(f"concurrency 1:  pipeline p50 minus the sum of the steps' p50s: median {gap:+.1f} us "
          f"(range {min(c1_gaps):+.1f} to {max(c1_gaps):+.1f}; target ≤ +20 us); the chain's: median {median(c1_chain_gaps):+.1f} us")
    print("steps (pipeline requests): " + ", ".join(f"{name} {s.succeeded:,} ok, mean {s.step_ns_sum / max(1, s.succeeded) / 1000:.1f} us"
                                                    for name, s in stats.items()))
    save(results, args.json, {"bench": "pipeline", "rounds": args.rounds, "requests": args.requests, "delay_us": args.delay_us,
                              "c64_ratios": c64_ratios, "c1_gaps_us": c1_gaps, "c1_chain_gaps_us": c1_chain_gaps})


async def chain(rt: infer_runtime.Runtime, x: np.ndarray) -> np.ndarray:
    """The three steps awaited one after the other, each fed the previous one's output."""
    a = await rt.infer("s1", {"input": x})
    b = await rt.infer("s2", {"input": a["logits"]})
    return (await rt.infer("s3", {"input": b["logits"]}))["logits"]


def step_call(rt: infer_runtime.Runtime, step: str, x: np.ndarray) -> Callable[[], Awaitable[Any]]:
    return lambda: rt.infer(step, {"input": x})


if __name__ == "__main__":
    asyncio.run(main())

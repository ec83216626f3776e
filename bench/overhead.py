"""Runtime overhead on an identity model, float32 [1, 16]: the `await rt.infer` round trip
at concurrency 1 (p50, p99) and throughput at concurrency 64, beside the naive asyncio
batcher running an ONNX Identity model through InferenceSession.run in a thread.

Targets (issue 3): p50 ≤ 30 us at concurrency 1; throughput ≥ the naive batcher's at 64.
Both sides take what is waiting (our max_queue_delay_us = 0, like the naive batcher).
Configurations are interleaved over --rounds rounds and the median round is reported; the
c=64 comparison is the median of per-round ratios, each round running ours and the naive
batcher back to back (alternating which goes first), since the VM's speed drifts by up to
2x between rounds.

Run: python bench/overhead.py [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    ROOT,
    NaiveBatcher,
    closed_loop,
    identity_onnx,
    median_result,
    ort_session,
    print_table,
    save,
    summarize,
)

import infer_runtime

SPEC = """
[runtime]
idle_spin_us = {spin}
[models.echo]
backend = "identity"
inputs = [{{ name = "x", dtype = "float32", shape = [-1, 16] }}]
[models.echo.batching]
max_batch_size = 64
max_queue_delay_us = 0
max_queue_size = 4096
"""


OURS = "infer-runtime identity (idle_spin_us=50)"
OURS_NO_SPIN = "infer-runtime identity (idle_spin_us=0)"
NAIVE = "naive asyncio batcher + ORT Identity"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "overhead.json")
    args = parser.parse_args()
    x = np.ones((1, 16), np.float32)
    inputs = {"x": x}
    tmp = Path(tempfile.mkdtemp())
    session = ort_session(identity_onnx(tmp / "identity.onnx"))
    specs = {}
    for spin in (50, 0):
        specs[spin] = tmp / f"overhead_{spin}.toml"
        specs[spin].write_text(SPEC.format(spin=spin))
    rounds: dict[tuple[str, int], list] = {}

    async def measure(name: str, call: Any, conc: int) -> None:
        elapsed, lat = await closed_loop(call, conc, args.requests)
        rounds.setdefault((name, conc), []).append(summarize(name, conc, elapsed, lat))

    for r in range(args.rounds):
        # Ours and the naive batcher back to back at each concurrency, first one then the
        # other in alternate rounds: the ratio of each round compares neighbours in time.
        async with infer_runtime.Runtime.from_spec(specs[50], environ={}) as rt, NaiveBatcher(session, "x") as naive:
            pair = [(OURS, lambda: rt.infer("echo", inputs)), (NAIVE, lambda: naive.infer(x))]
            for conc in (64, 1):
                for name, call in pair if r % 2 == 0 else reversed(pair):
                    await measure(name, call, conc)
        async with infer_runtime.Runtime.from_spec(specs[0], environ={}) as rt:
            for conc in (64, 1):
                await measure(OURS_NO_SPIN, lambda: rt.infer("echo", inputs), conc)
    results = [median_result(r) for r in rounds.values()]
    print_table(results)
    by = {(r.name, r.concurrency): r for r in results}
    ratios = sorted(o.throughput / n.throughput for o, n in zip(rounds[(OURS, 64)], rounds[(NAIVE, 64)]))
    median_ratio = ratios[len(ratios) // 2]
    print(f"\n(median of {args.rounds} interleaved rounds of {args.requests} requests)")
    print(f"concurrency 1:  p50 {by[(OURS, 1)].p50_us:.1f} us (target ≤ 30; naive {by[(NAIVE, 1)].p50_us:.1f} us)")
    print(f"concurrency 64: {by[(OURS, 64)].throughput:,.0f} req/s vs the naive batcher's {by[(NAIVE, 64)].throughput:,.0f}; "
          f"per-round ratio median {median_ratio:.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}; target ≥ 1.00x)")
    save(results, args.json, {"bench": "overhead", "rounds": args.rounds, "requests": args.requests, "c64_ratios": ratios})


if __name__ == "__main__":
    asyncio.run(main())

"""Runtime overhead on an identity model, float32 [1, 16]: the `await rt.infer` round trip
at concurrency 1 (p50, p99) and throughput at concurrency 64, beside the naive asyncio
batcher running an ONNX Identity model through InferenceSession.run in a thread.

Targets (issue 3): p50 ≤ 30 us at concurrency 1; throughput ≥ the naive batcher's at 64.
Both sides take what is waiting (our max_queue_delay_us = 0, like the naive batcher).
Configurations are interleaved over --rounds rounds and the median round is reported.

Run: python bench/overhead.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import numpy as np
from _common import ROOT, NaiveBatcher, closed_loop, identity_onnx, median_result, ort_session, print_table, ratio, save, summarize

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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=ROOT / "var" / "bench" / "overhead.json")
    args = parser.parse_args()
    x = np.ones((1, 16), np.float32)
    tmp = Path(tempfile.mkdtemp())
    session = ort_session(identity_onnx(tmp / "identity.onnx"))
    rounds: dict[tuple[str, int], list] = {}
    for _ in range(args.rounds):
        for spin in (50, 0):
            spec = tmp / f"overhead_{spin}.toml"
            spec.write_text(SPEC.format(spin=spin))
            async with infer_runtime.Runtime.from_spec(spec, environ={}) as rt:
                inputs = {"x": x}
                for conc in (1, 64):
                    name = f"infer-runtime identity (idle_spin_us={spin})"
                    elapsed, lat = await closed_loop(lambda: rt.infer("echo", inputs), conc, args.requests)
                    rounds.setdefault((name, conc), []).append(summarize(name, conc, elapsed, lat))
        async with NaiveBatcher(session, "x") as naive:
            for conc in (1, 64):
                name = "naive asyncio batcher + ORT Identity"
                elapsed, lat = await closed_loop(lambda: naive.infer(x), conc, args.requests)
                rounds.setdefault((name, conc), []).append(summarize(name, conc, elapsed, lat))
    results = [median_result(r) for r in rounds.values()]
    print_table(results)
    by = {(r.name, r.concurrency): r for r in results}
    ours1 = by[("infer-runtime identity (idle_spin_us=50)", 1)]
    ours64 = by[("infer-runtime identity (idle_spin_us=50)", 64)]
    naive1 = by[("naive asyncio batcher + ORT Identity", 1)]
    naive64 = by[("naive asyncio batcher + ORT Identity", 64)]
    print(f"\\n(median of {args.rounds} interleaved rounds of {args.requests} requests)")
    print(f"concurrency 1:  p50 {ours1.p50_us:.1f} us (target ≤ 30; naive {naive1.p50_us:.1f} us)")
    print(f"concurrency 64: {ours64.throughput:,.0f} req/s = {ratio(ours64.throughput, naive64.throughput)} the naive batcher (target ≥ 1.00x)")
    save(results, args.json, {"bench": "overhead", "rounds": args.rounds, "requests": args.requests})


if __name__ == "__main__":
    asyncio.run(main())

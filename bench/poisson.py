"""The adaptive queue delay against the fixed window (issue 14), in process.

The MLP 64 → 256 → 256 → 10 (built with onnx.helper; ONNX Runtime's native host, one
intra-op thread, one instance), `max_batch_size = 64`, `max_queue_delay_us = 500`, served by
an embedded `Runtime`, single-row requests:

1. Capacity, measured first: (a) the bare model on full batches (InferenceSession.run, 64
   rows), and through the runtime: 64-row requests (closed loop, c=2); single-row requests
   closed loop at c=128; and (c) single-row requests through the open-loop generator below,
   offered 4x what it can take (the queue stays deep, every batch is full). Single-row
   requests come from Python, so (c), not (a), is the ceiling of the load generator: the
   open-loop rates are fractions of (c).
2. Open-loop Poisson arrivals at 10%, 50% and 90% of (c): p50 and p99 from each request's
   scheduled arrival to its result, adaptive on vs off (Triton's fixed window). The same
   arrival schedule for both; configurations interleaved over --rounds, median reported.
3. Concurrency 1, closed loop: p50 with adaptive on vs `max_queue_delay_us = 0`; and
   concurrency 64, closed loop: throughput with adaptive on vs the fixed window.
4. The policy alone on the virtual clock (`ir_batcher_simulate`) at 10/50/90% of (a), with
   the batch cost E(rows) = a + b*rows fitted to the bare model's timings: what the policy
   does at rates a Python load generator cannot reach.
5. The same open-loop comparison at the model's own rates, with no Python in the process:
   bench/native/poisson.cpp (built here with the engine's sources, g++), one driver thread
   submitting through the C ABI and draining without blocking; the rates are fractions of
   the full-batch capacity for single-row requests, measured again before every round.

Run: python bench/poisson.py [--requests 4000] [--rounds 3] [--native-requests 100000 | 0 to skip]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import mlp_spec, ort_session
from build_models import build_mlp

from infer_runtime import Runtime
from infer_runtime._native import check, ffi, lib

ROOT = Path(__file__).resolve().parent.parent
NATIVE_DRIVER = ROOT / "bench" / "native" / "poisson.cpp"
RATES = (0.1, 0.5, 0.9)
MAX_BATCH = 64
DELAY_US = 500


def spec(model: Path, adaptive: bool, delay_us: int = DELAY_US) -> str:
    """One instance of the MLP on the native ONNX Runtime host, batching as in issue 14."""
    return mlp_spec(model, delay_us, MAX_BATCH, "native", max_queue_size=65536, adaptive=adaptive)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def closed_loop(rt: Runtime, x: np.ndarray, concurrency: int, requests: int) -> tuple[float, list[float]]:
    """Elapsed seconds and latencies of `requests` calls from `concurrency` clients."""
    latencies: list[float] = []
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        perf = time.perf_counter
        while remaining > 0:
            remaining -= 1
            start = perf()
            await rt.infer("mlp", {"input": x})
            latencies.append(perf() - start)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


async def open_loop(rt: Runtime, x: np.ndarray, arrivals: np.ndarray) -> list[float]:
    """Submits one request at each arrival time (seconds from now) and returns each one's
    latency from its scheduled arrival. A timer thread sleeps until each arrival and hands
    what is due to the event loop (call_soon_threadsafe), so the loop sleeps in epoll between
    arrivals instead of polling (asyncio's own timers have millisecond granularity). Any lag
    the generator adds counts against the system, alike for every configuration."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    finished: asyncio.Future[None] = loop.create_future()
    perf = time.perf_counter
    n = len(arrivals)

    async def one(due: float) -> None:
        await rt.infer("mlp", {"input": x})
        latencies.append(perf() - due)
        if len(latencies) == n:
            finished.set_result(None)

    def fire(dues: list[float]) -> None:
        for due in dues:
            loop.create_task(one(due))

    def timer(due_times: list[float]) -> None:
        i = 0
        while i < n:
            now = perf()
            if due_times[i] > now:
                time.sleep(min(due_times[i] - now, 0.002))
                continue
            j = i
            while j < n and due_times[j] <= now:
                j += 1
            loop.call_soon_threadsafe(fire, due_times[i:j])
            i = j

    start = perf() + 0.001
    thread = threading.Thread(target=timer, args=([start + float(t) for t in arrivals],), daemon=True)
    thread.start()
    await finished
    thread.join()
    return latencies


def hist_pct(before: tuple[int, ...], after: tuple[int, ...], q: float) -> float:
    """Quantile (s) of the engine's submit-to-completion histogram between two snapshots
    (buckets up to 1 us * 2^i), interpolated linearly inside its bucket."""
    counts = [b - a for a, b in zip(before, after)]
    target = q * sum(counts)
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c >= target:
            low = 0.0 if i == 0 else 2.0 ** (i - 1)
            if i == len(counts) - 1:
                return low * 1e-6
            return (low + (2.0**i - low) * (target - seen) / c) * 1e-6
        seen += c
    return 0.0


def fit_cost(model: Path) -> tuple[float, float, float]:
    """Median seconds of the bare session on 1 and 64 rows: a + b*rows through both points,
    and the full-batch capacity in rows/s."""
    session = ort_session(model)
    times = {}
    for rows in (1, MAX_BATCH):
        x = np.random.default_rng(0).standard_normal((rows, 64)).astype(np.float32)
        for _ in range(50):
            session.run(None, {"input": x})
        samples = []
        for _ in range(400):
            t = time.perf_counter()
            session.run(None, {"input": x})
            samples.append(time.perf_counter() - t)
        times[rows] = statistics.median(samples)
    b = (times[MAX_BATCH] - times[1]) / (MAX_BATCH - 1)
    a = times[1] - b
    return a, b, MAX_BATCH / times[MAX_BATCH]


def simulate(adaptive: bool, arrivals_ns: np.ndarray, a_ns: int, b_ns: int) -> list[float]:
    """Latencies (s) of single-row requests on the virtual clock, one instance."""
    cfg = ffi.new("ir_model_config*")
    cfg.struct_size = ffi.sizeof("ir_model_config")
    cfg.batching = 1
    cfg.max_batch_size = MAX_BATCH
    cfg.max_queue_delay_us = DELAY_US
    cfg.max_queue_size = len(arrivals_ns) + 1
    cfg.priority_levels = 1
    cfg.adaptive = int(adaptive)
    n = len(arrivals_ns)
    reqs = ffi.new("ir_sim_request[]", n)
    for i, t in enumerate(arrivals_ns.tolist()):
        reqs[i] = {"id": i, "arrival_ns": t, "rows": 1, "priority": 0, "deadline_ns": -1, "shape_class": 0}
    out = ffi.new("ir_sim_event[]", n)
    n_out = ffi.new("size_t*")
    check(lib.ir_batcher_simulate(cfg, reqs, n, 1, a_ns, b_ns, out, n, n_out))
    rows: dict[int, int] = {}
    for i in range(n_out[0]):
        rows[out[i].batch] = rows.get(out[i].batch, 0) + 1
    return [(out[i].time_ns + a_ns + b_ns * rows[out[i].batch] - arrivals_ns[out[i].request_id]) / 1e9 for i in range(n_out[0])]


def native_driver() -> Path:
    """build/poisson_native, compiled from the driver and the engine's sources when older."""
    binary = ROOT / "build" / "poisson_native"
    engine = sorted((ROOT / "csrc").rglob("*.cpp"))
    headers = [*(ROOT / "csrc").rglob("*.hpp"), *(ROOT / "csrc").rglob("*.h")]
    if binary.exists() and binary.stat().st_mtime >= max(p.stat().st_mtime for p in [NATIVE_DRIVER, *engine, *headers]):
        return binary
    compiler = os.environ.get("CXX") or shutil.which("g++") or "c++"
    binary.parent.mkdir(exist_ok=True)
    subprocess.run([compiler, "-O2", "-std=c++17", f"-I{ROOT / 'csrc' / 'include'}", *map(str, engine), str(NATIVE_DRIVER), "-o", str(binary), "-pthread", "-ldl"], check=True)
    return binary


def run_native(model: Path, requests: int, rounds: int) -> None:
    """Section 5: the native driver's report, as it prints it."""
    from infer_runtime.backends.onnxruntime import native_library

    library = native_library()
    if library is None:
        print("\nnative driver: skipped (the onnxruntime package ships no shared library)")
        return
    print(f"\nno Python in the process (bench/native/poisson.cpp), MLP on the native ONNX Runtime host, {requests:,} requests per run:")
    out = subprocess.run([str(native_driver()), str(library), str(model), str(requests), str(rounds)], check=False, capture_output=True, text=True)
    print(out.stdout, end="")
    if out.returncode:
        raise SystemExit(f"the native driver failed ({out.returncode}): {out.stderr.strip()}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000, help="requests per open-loop run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--native-requests", type=int, default=100_000, help="requests per run of the native driver (0: skip it)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="poisson-"))
    model = work / "mlp_64_256_256_10.onnx"
    build_mlp(model, (64, 256, 256, 10))
    for name, adaptive, delay in (("adaptive", True, DELAY_US), ("fixed", False, DELAY_US), ("delay0", False, 0)):
        (work / f"{name}.toml").write_text(spec(model, adaptive, delay))
    one = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    full = np.random.default_rng(2).standard_normal((MAX_BATCH, 64)).astype(np.float32)

    a, b, bare_capacity = fit_cost(model)
    async with Runtime.from_spec(work / "adaptive.toml", environ={}) as rt_adaptive, \
            Runtime.from_spec(work / "fixed.toml", environ={}) as rt_fixed, \
            Runtime.from_spec(work / "delay0.toml", environ={}) as rt_zero:
        runtimes = {"adaptive": rt_adaptive, "fixed": rt_fixed, "delay0": rt_zero}
        for rt in runtimes.values():  # warm-up: sessions, allocators, the cost model
            await closed_loop(rt, one, 8, 500)
        elapsed, _ = await closed_loop(rt_fixed, full, 2, 400)
        engine_full = 400 * MAX_BATCH / elapsed
        elapsed, _ = await closed_loop(rt_fixed, one, 128, 6000)
        closed = 6000 / elapsed
        print(f"bare model, full batches:                 {bare_capacity:10,.0f} rows/s  (E(rows) = {a * 1e6:.1f} us + {b * 1e6:.2f} us/row)")
        print(f"engine, 64-row requests (closed, c=2):    {engine_full:10,.0f} rows/s")
        print(f"rt.infer, single rows (closed, c=128):    {closed:10,.0f} req/s")

        async def open_loop_capacity() -> float:
            """What this open-loop path sustains: offered far more than it can take, the queue
            stays deep and every batch is full; completions per second. Measured again before
            every round (this VM's speed drifts by a fifth within a minute)."""
            offered = np.cumsum(np.random.default_rng(5).exponential(1.0 / (4 * closed), args.requests * 2))
            start = time.perf_counter()
            await open_loop(rt_fixed, one, offered)
            return len(offered) / (time.perf_counter() - start)

        results: dict[tuple[float, str], list[tuple[float, float]]] = {}
        c1: dict[str, list[float]] = {"adaptive": [], "delay0": [], "fixed": []}
        c64: dict[str, list[float]] = {"adaptive": [], "fixed": []}
        rng = np.random.default_rng(7)
        capacities = []
        for _ in range(args.rounds):
            capacities.append(capacity := await open_loop_capacity())
            for rate in RATES:
                arrivals = np.cumsum(rng.exponential(1.0 / (rate * capacity), args.requests))
                for name in ("adaptive", "fixed"):
                    before = runtimes[name].stats("mlp").request_ns_buckets
                    lat = await open_loop(runtimes[name], one, arrivals)
                    after = runtimes[name].stats("mlp").request_ns_buckets
                    results.setdefault((rate, name), []).append(
                        (pct(lat, 0.5), pct(lat, 0.99), hist_pct(before, after, 0.5), hist_pct(before, after, 0.99)))
            for name in ("adaptive", "delay0", "fixed"):
                _, lat = await closed_loop(runtimes[name], one, 1, 2000)
                c1[name].append(pct(lat, 0.5))
            for name in ("adaptive", "fixed"):
                elapsed, _ = await closed_loop(runtimes[name], one, 64, 6000)
                c64[name].append(6000 / elapsed)
        stats = {name: rt.stats("mlp") for name, rt in runtimes.items()}

    capacity = statistics.median(capacities)
    print(f"rt.infer, single rows (open loop, full):  {capacity:10,.0f} req/s (median; per round: {', '.join(f'{c:,.0f}' for c in capacities)})"
          "  <- the capacity: each round's rates are fractions of its own")
    print(f"\nopen-loop Poisson, single-row requests, median of {args.rounds} rounds, us; end to end = from the scheduled")
    print("arrival to the result in Python; engine = submit to completion (ir_model_stats histogram, interpolated)")
    print(f"{'rate':>14s} | {'end to end p50':>14s} {'p99':>15s} | {'engine p50':>14s} {'p99':>15s}")
    print(f"{'':14s} | {'adapt / fixed':>14s} {'adapt / fixed':>15s} | {'adapt / fixed':>14s} {'adapt / fixed':>15s}")
    for rate in RATES:
        ad = results[(rate, "adaptive")]
        fx = results[(rate, "fixed")]
        cells = []
        for k in range(4):
            pair = [statistics.median(x[k] for x in series) * 1e6 for series in (ad, fx)]
            cells.append(f"{pair[0]:6.0f} / {pair[1]:6.0f}")
        print(f"{rate:5.0%} {rate * capacity:6,.0f}/s | {cells[0]:>14s} {cells[1]:>15s} | {cells[2]:>14s} {cells[3]:>15s}")
    p50 = {k: statistics.median(v) * 1e6 for k, v in c1.items()}
    print(f"\nconcurrency 1, closed loop, p50: adaptive {p50['adaptive']:.1f} us, max_queue_delay_us=0 {p50['delay0']:.1f} us "
          f"(ratio {p50['adaptive'] / p50['delay0']:.2f}), fixed window {p50['fixed']:.1f} us")
    tput = {k: statistics.median(v) for k, v in c64.items()}
    print(f"concurrency 64, closed loop: adaptive {tput['adaptive']:,.0f} req/s, fixed window {tput['fixed']:,.0f} req/s "
          f"(ratio {tput['adaptive'] / tput['fixed']:.2f})")
    for name, s in stats.items():
        print(f"{name:8s} runtime: {s.batches:7d} batches, {s.batched_rows / max(s.batches, 1):5.1f} rows each, {s.batches_delay} by delay")

    a_ns, b_ns = int(a * 1e9), int(b * 1e9)
    print(f"\nvirtual clock (ir_batcher_simulate), E(rows) = {a_ns / 1e3:.1f} us + {b_ns / 1e3:.2f} us/row, rates of the bare model's full-batch capacity")
    print(f"{'rate':>14s} {'adaptive p50':>13s} {'fixed p50':>10s} {'adaptive p99':>13s} {'fixed p99':>10s}")
    sim_capacity = MAX_BATCH / ((a_ns + b_ns * MAX_BATCH) / 1e9)
    for rate in RATES:
        arrivals_ns = np.cumsum(np.random.default_rng(3).exponential(1e9 / (rate * sim_capacity), 20000)).astype(np.int64)
        ad_lat, fx_lat = simulate(True, arrivals_ns, a_ns, b_ns), simulate(False, arrivals_ns, a_ns, b_ns)
        print(f"{rate:5.0%} {rate * sim_capacity:6,.0f}/s {pct(ad_lat, 0.5) * 1e6:13.1f} {pct(fx_lat, 0.5) * 1e6:10.1f} "
              f"{pct(ad_lat, 0.99) * 1e6:13.1f} {pct(fx_lat, 0.99) * 1e6:10.1f}")
    if args.native_requests > 0:
        run_native(model, args.native_requests, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())

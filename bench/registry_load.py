"""Model load time through the registry: from ``promote`` to a loaded, warmed ONNX session.

For the demo digits model and a 256→1024→1024→10 MLP (both built by
examples/build_models.py, no downloads), each round:

1. ``promote``: SyncRegistry.promote of the next version (a committed write);
2. ``detect``: a RegistryWatcher (poll_interval_s = --poll) reports the new deployment, with
   the artifact's sha256 and size verified (measured from the promote's return); with
   ``--poll 0`` the watcher does not poll and ``check_now()`` runs right after the promote
   (what Triton's ``POST /v2/repository/index`` triggers);
3. ``resolve``: resolve_source of ``name@production`` (read-only open, resolve, verify);
4. ``native``: the C++ reader's ir_registry_resolve of the same reference (no verification);
5. ``session``: onnxruntime.InferenceSession on the resolved path;
6. ``warm``: the first inference on a batch of one.

``total`` = promote + detect + session + warm: promote to serving for a runtime watching
with that poll interval (detect includes waiting for the next poll, half an interval on
average). Seed 000 asks < 1 s. Medians and maxima over --rounds rounds.

Run: python bench/registry_load.py [--rounds 10] [--poll 0.1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "runtime"))

STEPS = ("promote", "detect", "resolve", "native", "session", "warm", "total")


def _native_resolve(db: Path, ref: str) -> str:
    from infer_runtime._native import ffi, lib

    out = ffi.new("ir_registry_entry**")
    err = lib.ir_registry_resolve(str(db).encode(), ref.encode(), out)
    if err != ffi.NULL:
        message = ffi.string(lib.ir_error_message(err)).decode()
        lib.ir_error_free(err)
        raise RuntimeError(message)
    try:
        return str(ffi.string(lib.ir_registry_entry_field(out[0], b"artifact")).decode())
    finally:
        lib.ir_registry_entry_free(out[0])


async def measure(db: Path, name: str, files: list[Path], input_name: str, width: int, rounds: int, poll_s: float) -> dict[str, list[float]]:
    import onnxruntime as ort

    from infer_runtime.registry import (
        RegistryWatcher,
        ResolvedArtifact,
        SyncRegistry,
        resolve_source,
    )

    times: dict[str, list[float]] = {step: [] for step in STEPS}
    with SyncRegistry(db) as reg:
        versions = [reg.register(name, f).version for f in files]  # distinct bytes: two versions
        reg.promote(name, versions[0], "production")
    seen: asyncio.Queue[ResolvedArtifact] = asyncio.Queue()

    async def on_change(changed: dict[str, ResolvedArtifact]) -> None:
        if name in changed:
            seen.put_nowait(changed[name])

    async with RegistryWatcher(db, "production", poll_s, on_change) as watcher:
        for r in range(rounds):
            version = versions[(r + 1) % len(versions)]
            t0 = time.perf_counter()
            with SyncRegistry(db) as reg:
                reg.promote(name, version, "production")
            t1 = time.perf_counter()
            if poll_s == 0:  # no polling: re-read at once, as POST /v2/repository/index does
                await watcher.check_now()
            got = await asyncio.wait_for(seen.get(), 30)
            t2 = time.perf_counter()
            assert got.version == version
            resolved = resolve_source(db, f"{name}@production", "production")
            t3 = time.perf_counter()
            assert _native_resolve(db, f"{name}@production") == str(resolved.path)
            t4 = time.perf_counter()
            session = ort.InferenceSession(str(got.path), providers=["CPUExecutionProvider"])
            t5 = time.perf_counter()
            session.run(None, {input_name: np.zeros((1, width), np.float32)})
            t6 = time.perf_counter()
            for step, value in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, (t1 - t0) + (t2 - t1) + (t5 - t4) + (t6 - t5))):
                times[step].append(value * 1000)
    return times


def _variant(src: Path, out: Path) -> Path:
    """A second version with different bytes (a doc string), so promotions alternate files."""
    import onnx

    model = onnx.load(str(src))
    model.doc_string = "registry_load variant"
    out.write_bytes(model.SerializeToString())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Registry model load time (promote → warmed ONNX session).")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.1, help="watcher poll interval in seconds (default 0.1; 0 = check_now after each promote)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)

    from build_models import build_digits, build_mlp

    from infer_runtime.registry.cli import configure_quiet_logging

    configure_quiet_logging()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        build_digits(tmp / "digits.onnx")
        build_mlp(tmp / "mlp.onnx")
        models = {"digits": ("input", 64), "mlp": ("input", 256)}
        for name, (input_name, width) in models.items():
            src = tmp / f"{name}.onnx"
            files = [src, _variant(src, tmp / f"{name}-b.onnx")]
            times = asyncio.run(measure(tmp / "registry.db", name, files, input_name, width, args.rounds, args.poll))
            results[name] = {"size_bytes": src.stat().st_size, **{s: {"median_ms": statistics.median(v), "max_ms": max(v)} for s, v in times.items()}}

    print(f"registry load time, poll_interval_s = {args.poll}, {args.rounds} rounds (median / max, ms)")
    header = f"{'model':8} {'size':>10} " + " ".join(f"{s:>15}" for s in STEPS)
    print(header)
    for name, r in results.items():
        cells = " ".join(f"{r[s]['median_ms']:7.2f}/{r[s]['max_ms']:7.2f}" for s in STEPS)
        print(f"{name:8} {r['size_bytes']:>10} {cells}")
    if args.json:
        args.json.write_text(json.dumps({"poll_interval_s": args.poll, "rounds": args.rounds, "models": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wall time of `infer-runtime validate specs/prod.toml` as a process (pre-commit budget).

Run: python bench/validate_speed.py [--runs 20]. Target: median ≤ 0.3 s on the 2-core box.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("spec", nargs="?", default="specs/prod.toml")
    args = parser.parse_args()
    script = shutil.which("infer-runtime", path=os.path.dirname(sys.executable)) or shutil.which("infer-runtime")
    commands = {"console script": [script, "validate", args.spec]} if script else {}
    commands["python -m"] = [sys.executable, "-m", "infer_runtime", "validate", args.spec]
    commands["python -c pass (floor)"] = [sys.executable, "-c", "pass"]
    for label, cmd in commands.items():
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
            times.append(time.perf_counter() - start)
            if proc.returncode != 0:
                sys.exit(f"{label}: exit {proc.returncode}: {proc.stdout.decode()}{proc.stderr.decode()}")
        print(f"{label:24s} median {statistics.median(times) * 1000:6.1f} ms   min {min(times) * 1000:6.1f} ms   max {max(times) * 1000:6.1f} ms   ({args.runs} runs)")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Builds the engine in place with ASan + UBSan (LeakSanitizer on) and runs the C++-facing
# tests against that build. Usage: tests/sanitizers/run.sh [pytest args, default: the ABI
# and engine tests]. Rebuild normally afterwards with `python build.py`.
set -euo pipefail
cd "$(dirname "$0")/../.."
IR_SANITIZE=address,undefined python build.py
export PYTHONPATH="$PWD/runtime${PYTHONPATH:+:$PYTHONPATH}"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=1
export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if [ "$#" -eq 0 ]; then
  set -- $(ls tests/test_abi.py tests/test_engine*.py 2>/dev/null)
fi
python -m pytest -q -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Sanitizer checks of the engine.
#  1. C++ drivers of the C ABI (tests/native/*.cpp), built with ASan + UBSan and run with
#     LeakSanitizer and no suppressions: no Python in the process, so every leak is ours
#     (the ONNX Runtime driver loads the uninstrumented library the onnxruntime wheel ships).
#  2. The Python-facing engine tests (native ONNX Runtime host included: our code around
#     the uninstrumented ONNX Runtime library) against an in-place ASan + UBSan build of the
#     cffi module; the HTTP tests' server subprocess inherits the preload, so a sanitizer
#     report there kills the server and fails the tests. Leak detection is off there: CPython keeps allocations alive until exit, and
#     LSan suppressions match any frame of a stack, so suppressing the interpreter would
#     also hide engine leaks reached from Python.
# Usage: tests/sanitizers/run.sh [pytest args]. Afterwards rebuild with `python build.py`.
set -euo pipefail
cd "$(dirname "$0")/../.."
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
OUT=build/sanitize
mkdir -p "$OUT"
mapfile -t ENGINE < <(find csrc -name '*.cpp' | sort)
# The native ONNX Runtime driver needs the library the onnxruntime wheel ships and a model.
export IR_TEST_ORT_LIBRARY="$(python -c "import onnxruntime, pathlib; print(next(iter(sorted((pathlib.Path(onnxruntime.__file__).parent / 'capi').glob('libonnxruntime.so*'))), ''))")"
export IR_TEST_ORT_MODEL="$PWD/$OUT/mlp_16_32_4.onnx"
python -c "import sys; sys.path.insert(0, 'examples'); from build_models import build_mlp; from pathlib import Path; build_mlp(Path(sys.argv[1]), (16, 32, 4))" "$IR_TEST_ORT_MODEL"
for driver in tests/native/test_*.cpp; do
  exe="$OUT/$(basename "${driver%.cpp}")"
  g++ -std=c++17 $SAN -Wall -Wextra -Icsrc/include "${ENGINE[@]}" "$driver" -o "$exe" -pthread -ldl
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$exe"
done

IR_SANITIZE=address,undefined python build.py
export PYTHONPATH="$PWD/runtime${PYTHONPATH:+:$PYTHONPATH}"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if [ "$#" -eq 0 ]; then
  set -- tests/test_abi.py tests/test_batching_policy.py tests/test_runtime.py tests/test_bursts.py tests/test_engine_consistency.py \
    tests/test_onnxruntime_native.py tests/test_onnxruntime_backend.py tests/test_server_http.py tests/test_model_table.py \
    tests/test_reliability_engine.py tests/test_plugins.py tests/test_registry_consistency.py tests/test_rules_consistency.py tests/test_json_reader.py tests/test_pipelines.py tests/test_pipeline_dag.py \
    tests/test_http_front.py tests/test_http_head.py
fi
python -m pytest -q -p no:cacheprovider "$@"

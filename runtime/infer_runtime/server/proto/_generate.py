"""Regenerates the gRPC stubs from inference.proto (developers only; needs grpcio-tools).

    python -m infer_runtime.server.proto._generate

The generated message module is rewritten to build its descriptors in a private pool:
tritonclient (and other KServe clients) register the same ``inference.*`` names in
protobuf's default pool, and a process importing both would fail on duplicate symbols.
tests/test_grpc_proto.py regenerates into a temporary directory and compares.
"""

from __future__ import annotations

import ast
import re
import sys
import tempfile
from pathlib import Path

PROTO = Path(__file__).with_name("inference.proto")
RUNTIME_DIR = PROTO.parents[3]  # .../runtime
RELATIVE = PROTO.relative_to(RUNTIME_DIR)


def generate(out_dir: Path) -> dict[str, str]:
    """Runs protoc into ``out_dir``; returns {file name: text} of the two stubs."""
    from grpc_tools import protoc

    code = protoc.main(["protoc", f"-I{RUNTIME_DIR}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", str(RELATIVE)])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    generated = out_dir / RELATIVE.parent
    pb2 = (generated / "inference_pb2.py").read_text()
    pb2 = pb2.replace("_descriptor_pool.Default().AddSerializedFile(", "_POOL.AddSerializedFile(")
    pb2 = pb2.replace("# @@protoc_insertion_point(imports)\n", "# @@protoc_insertion_point(imports)\n\n_POOL = _descriptor_pool.DescriptorPool()  # private: see _generate.py\n", 1)
    grpc_stub = (generated / "inference_pb2_grpc.py").read_text()
    return {"inference_pb2.py": pb2, "inference_pb2_grpc.py": grpc_stub}


def serialized_descriptor(pb2_text: str) -> bytes:
    """The serialized FileDescriptorProto embedded in a generated module (version-independent)."""
    match = re.search(r"AddSerializedFile\((b'.*?')\)\n", pb2_text, re.DOTALL)
    if match is None:
        raise ValueError("no serialized descriptor found")
    value = ast.literal_eval(match.group(1))  # a bytes literal written by protoc
    if not isinstance(value, bytes):
        raise TypeError("the serialized descriptor is not a bytes literal")
    return value


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in generate(Path(tmp)).items():
            (PROTO.parent / name).write_text(text)
            print(f"wrote {PROTO.parent / name}", file=sys.stderr)

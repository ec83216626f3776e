"""`infer-runtime run` over gRPC: conformance with tritonclient.grpc, raw outputs, status
codes, message limits, and the standard health service."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from server_helpers import running
from test_server_http import DTYPES, V2, sample

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = tmp_path_factory.mktemp("grpc") / "spec.toml"
    spec.write_text("""
[runtime]
name = "grpc-conformance"
[server]
grpc_max_message_bytes = 65536
[models.any]
backend = "identity"
[models.echo]
backend = "identity"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 4] }]
[models.echo.batching]
max_batch_size = 8
[models.picky]
backend = "python"
inputs = [{ name = "x", dtype = "float32", shape = [-1, 2] }]
python = { entrypoint = "ir_test_backends:Failing" }
""")
    with running(spec) as s:
        yield s


def client(server) -> grpcclient.InferenceServerClient:  # type: ignore[no-untyped-def]
    return grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")


def test_health_and_metadata(server) -> None:  # type: ignore[no-untyped-def]
    c = client(server)
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("echo") and c.is_model_ready("echo", "1")
    meta = c.get_server_metadata()
    assert meta.name == "grpc-conformance" and "binary_tensor_data" in meta.extensions
    model = c.get_model_metadata("echo")
    assert model.inputs[0].name == "x" and list(model.inputs[0].shape) == [-1, 4]
    with pytest.raises(InferenceServerException) as info:
        c.get_model_metadata("nope")
    assert info.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException) as info:
        c.get_model_repository_index()  # a Triton-only RPC we do not serve
    assert info.value.status() == "StatusCode.UNIMPLEMENTED"
    config = c.get_model_config("echo", as_json=True)["config"]  # Triton's model configuration extension
    assert config["name"] == "echo" and config["input"][0]["data_type"] == "TYPE_FP32" and config["input"][0]["dims"] == ["4"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: V2[d])
def test_every_datatype_round_trips_raw(server, dtype) -> None:  # type: ignore[no-untyped-def]
    x = sample(dtype, (3, 2))
    inp = grpcclient.InferInput("t", list(x.shape), V2[dtype])
    inp.set_data_from_numpy(x)
    result = client(server).infer("any", [inp], request_id="g-1")
    got = result.as_numpy("t")
    assert got.shape == x.shape
    if dtype is np.object_:
        assert got.tolist() == x.tolist()
    else:
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, x)
    assert result.get_response().id == "g-1"


def test_status_codes(server) -> None:  # type: ignore[no-untyped-def]
    c = client(server)
    bad = grpcclient.InferInput("x", [1, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3), np.float32))
    with pytest.raises(InferenceServerException) as info:
        c.infer("echo", [bad])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT" and "must have shape [-1, 4]" in info.value.message()
    fail = grpcclient.InferInput("x", [1, 2], "FP32")
    fail.set_data_from_numpy(-np.ones((1, 2), np.float32))
    with pytest.raises(InferenceServerException) as info:
        c.infer("picky", [fail])
    assert info.value.status() == "StatusCode.INTERNAL" and "ValueError" in info.value.message() and "negative input" not in info.value.message()
    big = grpcclient.InferInput("t", [1, 40000], "FP32")
    big.set_data_from_numpy(np.zeros((1, 40000), np.float32))  # 160 kB > grpc_max_message_bytes
    with pytest.raises(InferenceServerException) as info:
        c.infer("any", [big])
    assert info.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert c.is_server_live()


def test_standard_health_service(server) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            assert stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == health_pb2.HealthCheckResponse.SERVING


def test_generated_stubs_match_the_proto(tmp_path: Path) -> None:
    from infer_runtime.server.proto import _generate

    fresh = _generate.generate(tmp_path)
    committed = Path(_generate.PROTO).parent
    for name, text in fresh.items():
        assert _generate.serialized_descriptor((committed / name).read_text()) == _generate.serialized_descriptor(text) if name.endswith("pb2.py") else True
    stub = (committed / "inference_pb2_grpc.py").read_text()
    for method in ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"):
        assert f"/inference.GRPCInferenceService/{method}" in stub

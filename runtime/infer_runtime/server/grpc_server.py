"""KServe v2 gRPC (``inference.GRPCInferenceService``) and the standard gRPC health service.

Outputs always go in ``raw_output_contents`` (tritonclient reads only those for numeric
types). Inputs may be raw or typed contents. Message size limits come from the spec.
Errors carry the same messages as REST with the matching status codes; every exception
maps to a proper status (a bug is INTERNAL, never UNKNOWN) and is logged once. A call the
client cancels cancels its pending inference. The health service turns NOT_SERVING as soon
as the drain begins (``begin_drain``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from infer_runtime.errors import InvalidInputError

from . import protocol
from .proto import inference_pb2 as pb
from .proto import inference_pb2_grpc as pb_grpc
from .protocol import ProtocolError
from .v2 import (
    EXTENSIONS,
    SERVER_VERSION,
    client_message,
    grpc_code,
    is_expected,
    new_request_id,
    parse_priority,
    parse_timeout_ms,
    status_for,
)

if TYPE_CHECKING:
    from .state import ServingState

log = structlog.get_logger("infer_runtime.server.grpc")

_TYPED = {
    "BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}


def _param(params: Any, key: str) -> Any:
    if key not in params:
        return None
    p = params[key]
    which = p.WhichOneof("parameter_choice")
    return None if which is None else getattr(p, which)


def decode_request(request: pb.ModelInferRequest) -> dict[str, np.ndarray]:
    """The request's inputs as arrays (raw contents are viewed, not copied)."""
    if not request.inputs:
        raise ProtocolError("the request needs at least one input")
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise ProtocolError(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs")
    out: dict[str, np.ndarray] = {}
    for i, t in enumerate(request.inputs):
        protocol.check_name(t.name)
        if t.name in out:
            raise ProtocolError(f"input '{t.name}' appears twice")
        dtype = protocol.dtype_of(t.name, t.datatype)
        shape = protocol.check_shape(t.name, list(t.shape))
        if raw:
            out[t.name] = protocol.tensor_from_bytes(t.name, dtype, shape, raw[i], 0, len(raw[i]))
            continue
        field = _TYPED.get(t.datatype)
        if field is None:
            raise ProtocolError(f"input '{t.name}': {t.datatype} must be sent in raw_input_contents")
        contents = getattr(t.contents, field)
        expected = protocol.elements(shape)
        if t.datatype == "BYTES":
            if expected > protocol.MAX_BYTES_ELEMENTS:
                raise ProtocolError(f"input '{t.name}': BYTES tensor of {expected} elements exceeds the limit of {protocol.MAX_BYTES_ELEMENTS}")
            values = list(contents)
            array = np.empty(len(values), dtype=object)
            array[:] = values
            if len(values) != expected:
                raise ProtocolError(f"input '{t.name}': shape {list(shape)} needs {expected} elements, bytes_contents has {len(values)}")
            out[t.name] = array.reshape(shape)
            continue
        if len(contents) != expected:
            raise ProtocolError(f"input '{t.name}': shape {list(shape)} needs {expected} elements, contents has {len(contents)}")
        out[t.name] = protocol.tensor_from_json(t.name, dtype, shape, np.asarray(contents))
    return out


@dataclass
class GrpcServer:
    """A started gRPC server."""

    server: Any
    port: int
    health: Any

    async def begin_drain(self) -> None:
        """Health turns NOT_SERVING (probes take us out of rotation while we drain)."""
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stops accepting and ends open calls after ``grace_s``."""
        await self.begin_drain()
        await self.server.stop(grace_s)


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]  # generated, untyped base
    """The six calls of the Open Inference Protocol."""

    def __init__(self, state: ServingState) -> None:
        self.state = state

    async def _fail(self, context: Any, exc: BaseException, request_id: str | None = None) -> None:
        """Ends the call with ``exc``'s status, logged once (traceback only for our bugs)."""
        status = status_for(exc)
        if status < 500:
            log.info("request failed", status=status, error=str(exc))
        elif is_expected(exc):
            log.error("request failed", status=status, error=str(exc))
        else:
            log.error("request failed: internal error", status=status, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        await context.abort(grpc_code(exc), client_message(exc, request_id))

    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.state.live)

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.state.not_ready_reason() is None)

    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=self.state.name, version=SERVER_VERSION, extensions=EXTENSIONS)

    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:
        try:
            self._check(request.name, request.version)
            return pb.ModelReadyResponse(ready=self.state.model_not_ready_reason(request.name) is None)
        except Exception as exc:  # every error gets its status
            await self._fail(context, exc)
            raise

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        try:
            self._check(request.name, request.version)
            meta = self.state.metadata(request.name)
        except Exception as exc:
            await self._fail(context, exc)
            raise

        def tensors(ts: list[dict[str, Any]]) -> list[Any]:
            return [pb.ModelMetadataResponse.TensorMetadata(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in ts]

        return pb.ModelMetadataResponse(name=meta["name"], versions=meta["versions"], platform=meta["platform"], inputs=tensors(meta["inputs"]), outputs=tensors(meta["outputs"]))

    async def ModelStatistics(self, request: Any, context: Any) -> pb.ModelStatisticsResponse:
        try:
            if request.name:
                self._check(request.name, request.version)
                entries = [self.state.statistics(request.name)]
            else:
                entries = [self.state.statistics(m) for m in self.state.serving_models()]
            return pb.ModelStatisticsResponse(model_stats=[pb.ModelStatistics(**e) for e in entries])
        except Exception as exc:
            await self._fail(context, exc)
            raise

    async def ModelConfig(self, request: Any, context: Any) -> pb.ModelConfigResponse:
        try:
            self._check(request.name, request.version)
            cfg = self.state.config(request.name)
        except Exception as exc:
            await self._fail(context, exc)
            raise
        config = pb.ModelConfig(
            name=cfg["name"], platform=cfg["platform"], backend=cfg["backend"], max_batch_size=cfg["max_batch_size"],
            input=[pb.ModelInput(name=t["name"], data_type=pb.DataType.Value(t["data_type"]), dims=t["dims"]) for t in cfg["input"]],
            output=[pb.ModelOutput(name=t["name"], data_type=pb.DataType.Value(t["data_type"]), dims=t["dims"]) for t in cfg["output"]],
            instance_group=[pb.ModelInstanceGroup(name=f"{cfg['name']}_{i}", count=g["count"], kind=pb.ModelInstanceGroup.KIND_CPU) for i, g in enumerate(cfg["instance_group"])],
        )
        batching = cfg.get("dynamic_batching")
        if batching:
            config.dynamic_batching.CopyFrom(pb.ModelDynamicBatching(
                preferred_batch_size=batching["preferred_batch_size"], max_queue_delay_microseconds=batching["max_queue_delay_microseconds"],
                priority_levels=batching["priority_levels"]))
        return pb.ModelConfigResponse(config=config)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        model = request.model_name
        rid = request.id or new_request_id()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid, model=model[:128])
        try:
            self._check(model, request.model_version)
            if request.id:
                protocol.check_name(request.id, "request id")
            inputs = decode_request(request)
            priority = parse_priority(_param(request.parameters, "priority"))
            timeout_ms = parse_timeout_ms(_param(request.parameters, "timeout"), self.state.default_timeout_ms(model))
            results, version = await self.state.runtime.infer_with_version(model, inputs, priority=priority, timeout_ms=timeout_ms)
            self.state.answered(model)
            wanted = [protocol.RequestedOutput(protocol.check_name(o.name, "requested output"), True) for o in request.outputs] or None
            selected = protocol.select_outputs(results, wanted, True)
            response = pb.ModelInferResponse(model_name=model, model_version=version, id=request.id)
            for name, array, _ in selected:
                response.outputs.add(name=name, datatype=protocol.v2_datatype(array.dtype), shape=list(array.shape))
                response.raw_output_contents.append(protocol.to_raw(array))
            return response
        except Exception as exc:
            await self._fail(context, exc, rid)
            raise
        finally:
            structlog.contextvars.clear_contextvars()

    def _check(self, model: str, version: str) -> None:
        if not model:
            raise InvalidInputError("a model name is required")
        self.state.check_model(model)
        self.state.check_version(model, version)


async def start(state: ServingState, host: str, port: int, max_message_bytes: int) -> GrpcServer:
    """Starts the gRPC server; raises StartupError when the port cannot be bound."""
    from .state import StartupError

    options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes), ("grpc.so_reuseport", 0)]
    server = grpc.aio.server(options=options)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(state), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:
        raise StartupError(f"cannot listen on {host}:{port} (gRPC): {exc}") from exc
    if bound == 0:
        raise StartupError(f"cannot listen on {host}:{port} (gRPC): the port is in use or not allowed")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("inference.GRPCInferenceService", health_pb2.HealthCheckResponse.SERVING)
    return GrpcServer(server, bound, health_servicer)

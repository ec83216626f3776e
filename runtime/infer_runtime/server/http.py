"""KServe v2 REST (with Triton's binary tensor extension) on aiohttp.

Every error is ``{"error": "..."}`` with Triton's status mapping: bad input 400, unknown
model 404, overload / queue timeout / shutting down 503, backend failure and internal 500 —
including the framework's own 404/405/413. The request size cap is enforced from
``Content-Length`` before the body is read, and while reading when it is absent.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiohttp import web

from infer_runtime import __version__
from infer_runtime.errors import (
    DeadlineExceededError,
    InferRuntimeError,
    InvalidInputError,
    ModelNotFoundError,
    QueueFullError,
    RequestCancelledError,
    UnavailableError,
)

from . import protocol
from .protocol import ProtocolError

if TYPE_CHECKING:
    from .app import ServingState

log = structlog.get_logger("infer_runtime.server.http")

EXTENSIONS = ["binary_tensor_data", "schedule_policy", "statistics", "model_configuration"]
MODEL_VERSION = "1"  # one version per model until the registry serves several


def status_for(exc: BaseException) -> int:
    """Triton's HTTP status for an error."""
    if isinstance(exc, (ProtocolError, InvalidInputError)):
        return 400
    if isinstance(exc, ModelNotFoundError):
        return 404
    if isinstance(exc, (QueueFullError, DeadlineExceededError, UnavailableError, RequestCancelledError)):
        return 503
    return 500


def error_response(status: int, message: str) -> web.Response:
    """A JSON error body, always."""
    return web.Response(status=status, body=orjson.dumps({"error": message}), content_type="application/json")


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def _loads(raw: bytes | memoryview) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:  # the standard library also reads NaN and Infinity, which v2 clients may send
        return json.loads(bytes(raw))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"the request is not valid JSON: {exc}") from None


def _has_non_finite(entries: list[dict[str, Any]]) -> bool:
    for entry in entries:
        data = entry.get("data")
        if data and isinstance(data[0], float) and not all(math.isfinite(v) for v in data):
            return True
    return False


@web.middleware
async def json_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Turns every error, the framework's included, into Triton's JSON error shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        if exc.status == 413:
            reason = f"request body exceeds the limit of {request.app['state'].max_request_bytes} bytes"
        return error_response(exc.status, reason or "error")
    except (ProtocolError, InferRuntimeError) as exc:
        status = status_for(exc)
        if status >= 500:
            log.error("request failed", status=status, error=str(exc), path=request.path)
        return error_response(status, str(exc))


def build_app(state: ServingState) -> web.Application:
    """The aiohttp application serving ``state``'s runtime."""
    app = web.Application(client_max_size=state.max_request_bytes, middlewares=[json_errors], handler_args={"max_field_size": 65536})
    app["state"] = state
    h = _Handlers(state)
    app.router.add_get("/v2/health/live", h.live)
    app.router.add_get("/v2/health/ready", h.ready)
    app.router.add_get("/v2", h.server_metadata)
    app.router.add_get("/v2/models/stats", h.all_stats)
    for prefix in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        app.router.add_get(prefix, h.model_metadata)
        app.router.add_get(prefix + "/ready", h.model_ready)
        app.router.add_post(prefix + "/infer", h.infer)
        app.router.add_get(prefix + "/config", h.model_config)
        app.router.add_get(prefix + "/stats", h.model_stats)
    app.router.add_get("/metrics", h.metrics)
    return app


class _Handlers:
    def __init__(self, state: ServingState) -> None:
        self.state = state

    async def live(self, request: web.Request) -> web.Response:
        return web.Response(status=200) if self.state.live else error_response(503, "not live")

    async def ready(self, request: web.Request) -> web.Response:
        reason = self.state.not_ready_reason()
        return web.Response(status=200) if reason is None else error_response(503, reason)

    async def server_metadata(self, request: web.Request) -> web.Response:
        return _json({"name": self.state.name, "version": __version__, "extensions": EXTENSIONS})

    def _model(self, request: web.Request) -> str:
        model = request.match_info["model"]
        version = request.match_info.get("version")
        self.state.check_model(model)
        if version is not None and version != MODEL_VERSION:
            raise ModelNotFoundError(f"model '{model}' has no version '{version}' (versions: {MODEL_VERSION})")
        return model

    async def model_metadata(self, request: web.Request) -> web.Response:
        model = self._model(request)
        return _json(self.state.metadata(model))

    async def model_ready(self, request: web.Request) -> web.Response:
        model = self._model(request)
        reason = self.state.model_not_ready_reason(model)
        return web.Response(status=200) if reason is None else error_response(503, reason)

    async def model_config(self, request: web.Request) -> web.Response:
        return _json(self.state.config(self._model(request)))

    async def model_stats(self, request: web.Request) -> web.Response:
        return _json({"model_stats": [self.state.statistics(self._model(request))]})

    async def all_stats(self, request: web.Request) -> web.Response:
        return _json({"model_stats": [self.state.statistics(m) for m in self.state.serving_models()]})

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.state.metrics_text()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def infer(self, request: web.Request) -> web.Response:
        model = self._model(request)
        declared = request.content_length
        if declared is not None and declared > self.state.max_request_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=self.state.max_request_bytes, actual_size=declared)
        body = await request.read()
        header_length = request.headers.get("Inference-Header-Content-Length")
        if header_length is None:
            header, binary = _loads(body), None
        else:
            try:
                split = int(header_length)
            except ValueError:
                raise ProtocolError(f"Inference-Header-Content-Length must be an integer (got {header_length!r})") from None
            if not 0 < split <= len(body):
                raise ProtocolError(f"Inference-Header-Content-Length {split} is outside the body of {len(body)} bytes")
            view = memoryview(body)
            header, binary = _loads(view[:split]), view[split:]
        if not isinstance(header, dict):
            raise ProtocolError("the request must be a JSON object")
        request_id = header.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise ProtocolError("'id' must be a string")
        rid = request_id or request.headers.get("X-Request-ID") or uuid.uuid4().hex
        with structlog.contextvars.bound_contextvars(request_id=rid, model=model):
            try:
                return await self._infer(model, header, binary, request_id)
            except (ProtocolError, InferRuntimeError) as exc:
                status = status_for(exc)
                (log.error if status >= 500 else log.info)("inference failed", status=status, error=str(exc))
                raise

    async def _infer(self, model: str, header: dict[str, Any], binary: memoryview | None, request_id: str | None) -> web.Response:
        inputs = protocol.decode_inputs(header, binary)
        params = header.get("parameters")
        priority = protocol.parameter(params, "priority")
        timeout_us = protocol.parameter(params, "timeout")
        if priority is not None and type(priority) is not int:
            raise ProtocolError("parameter 'priority' must be an integer")
        if timeout_us is not None and (type(timeout_us) is not int or timeout_us < 0):
            raise ProtocolError("parameter 'timeout' must be a non-negative integer (microseconds)")
        binary_default = protocol.parameter(params, "binary_data_output") is True
        requested = protocol.requested_outputs(header)
        results = await self.state.runtime.infer(model, inputs, priority=priority or 0, timeout_ms=(timeout_us / 1000) if timeout_us else None)
        entries, chunks = protocol.encode_outputs(protocol.select_outputs(results, requested, binary_default))
        response: dict[str, Any] = {"model_name": model, "model_version": MODEL_VERSION, "outputs": entries}
        if request_id is not None:
            response["id"] = request_id
        payload = json.dumps(response).encode() if _has_non_finite(entries) else orjson.dumps(response)
        if not chunks:
            return web.Response(body=payload, content_type="application/json")
        return web.Response(
            body=b"".join([payload, *chunks]),
            headers={"Inference-Header-Content-Length": str(len(payload)), "Content-Type": "application/octet-stream"},
        )


__all__ = ["EXTENSIONS", "MODEL_VERSION", "build_app", "error_response", "status_for"]

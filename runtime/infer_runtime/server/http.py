"""KServe v2 REST (with Triton's binary tensor extension) on aiohttp.

Every error is ``{"error": "..."}`` with Triton's status mapping: bad input 400, unknown
model 404, unsupported ``Content-Encoding`` 415, overload / queue timeout / shutting down
503, backend failure and internal 500 — including the framework's own 404/405/413 and, behind
the specific handlers, a catch-all for our own bugs. Each failure is logged once: client
errors at INFO without a traceback, a backend failure at ERROR without one, a bug at ERROR
with its traceback; every log event of a request carries its request id, and a 5xx answer
names it. The request size cap is enforced from ``Content-Length`` before the body is read,
and while reading when it is absent. When the client disconnects while its inference is
pending, the handler is cancelled (``handler_cancellation``), and the runtime cancels the
request.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web_protocol import RequestPayloadError

from . import protocol
from .protocol import ProtocolError
from .transport import guard_of
from .v2 import (
    EXTENSIONS,
    SERVER_VERSION,
    UnsupportedMediaError,
    client_message,
    is_expected,
    new_request_id,
    parse_priority,
    parse_timeout_ms,
    status_for,
)

if TYPE_CHECKING:
    from .state import ServingState

log = structlog.get_logger("infer_runtime.server.http")

DECODED_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
"""Content-Encodings aiohttp decodes for us (brotli and zstd only with extra packages)."""
OFF_LOOP_BYTES = 1 << 20
"""Bodies larger than this are decoded on a worker thread, so /live keeps answering."""
OFF_LOOP_ELEMENTS = 1 << 16
"""Responses with more BYTES elements (or 64-byte units of other data) than this are
encoded on a worker thread."""


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
    import json  # the standard library also reads NaN and Infinity, which v2 clients may send

    try:
        return json.loads(bytes(raw))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"the request is not valid JSON: {exc}") from None


def _log_failure(exc: BaseException, status: int) -> None:
    """One event per failure: INFO for the client's, ERROR for ours (traceback only for bugs)."""
    if status < 500:
        log.info("request failed", status=status, error=str(exc))
    elif is_expected(exc):
        log.error("request failed", status=status, error=str(exc))
    else:
        log.error("request failed: internal error", status=status, error=f"{type(exc).__name__}: {exc}", exc_info=exc)


@web.middleware
async def json_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Turns every error, the framework's and our own bugs included, into Triton's JSON error
    shape; binds the request id to the request's log events."""
    guard = guard_of(request)
    if guard is not None and request.method in ("GET", "HEAD", "OPTIONS"):
        guard.read_done()  # no body to wait for: the rest of the time is ours
    rid = request.headers.get("X-Request-ID") or new_request_id()
    if not rid.isascii() or len(rid) > 128:
        rid = new_request_id()
    request["request_id"] = rid
    # A keep-alive connection's requests share one context: bind, then reset to what was.
    # The model is bound here too (... = unbound, structlog), once per request: binding is a
    # measurable part of a small inference's cost on the loop.
    tokens = structlog.contextvars.bind_contextvars(request_id=rid, model=request.match_info.get("model", ...))
    try:
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            # The client went away (handler cancellation) or the server is stopping: the
            # runtime cancels the pending request; one event, no traceback.
            log.info("request cancelled: the client disconnected", path=request.path)
            raise
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            reason = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
            if exc.status == 413:
                reason = f"request body exceeds the limit of {request.app['state'].max_request_bytes} bytes"
            log.info("request failed", status=exc.status, error=reason, path=request.path)
            response = error_response(exc.status, reason or "error")
        except Exception as exc:  # noqa: BLE001 - the catch-all: every error answers JSON
            status = status_for(exc)
            _log_failure(exc, status)
            response = error_response(status, client_message(exc, request.get("request_id", rid)))
        if request.app["keepalive_off"] or request.get("force_close") or response.status == 413:
            response.force_close()
        return response
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
        if guard is not None:
            guard.request_done()


def build_app(state: ServingState, *, keepalive: bool = True) -> web.Application:
    """The aiohttp application serving ``state``'s runtime."""
    app = web.Application(client_max_size=state.max_request_bytes, middlewares=[json_errors], handler_args={"max_field_size": 65536})
    app["state"] = state
    app["keepalive_off"] = not keepalive
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
    app.router.add_post("/v2/repository/index", h.repository_index)
    app.router.add_post("/v2/repository/models/{model}/load", h.repository_load)
    return app


def _split(body: bytes, header_length: str | None) -> tuple[Any, memoryview | None]:
    """The JSON header and the binary part of a request body."""
    if header_length is None:
        return _loads(body), None
    try:
        split = int(header_length)
    except ValueError:
        raise ProtocolError(f"Inference-Header-Content-Length must be an integer (got {header_length[:40]!r})") from None
    if not 0 < split <= len(body):
        raise ProtocolError(f"Inference-Header-Content-Length {split} is outside the body of {len(body)} bytes")
    view = memoryview(body)
    return _loads(view[:split]), view[split:]


def _decode(body: bytes, header_length: str | None) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(header, inputs, request id) of an inference request body."""
    header, binary = _split(body, header_length)
    if not isinstance(header, dict):
        raise ProtocolError("the request must be a JSON object")
    request_id = header.get("id")
    if request_id is not None:
        if not isinstance(request_id, str):
            raise ProtocolError("'id' must be a string")
        if request_id:
            protocol.check_name(request_id, "request id")
    return header, protocol.decode_inputs(header, binary), request_id


class _Handlers:
    def __init__(self, state: ServingState) -> None:
        self.state = state

    async def live(self, request: web.Request) -> web.Response:
        return web.Response(status=200) if self.state.live else error_response(503, "not live")

    async def ready(self, request: web.Request) -> web.Response:
        reason = self.state.not_ready_reason()
        return web.Response(status=200) if reason is None else error_response(503, reason)

    async def server_metadata(self, request: web.Request) -> web.Response:
        return _json({"name": self.state.name, "version": SERVER_VERSION, "extensions": EXTENSIONS})

    def _model(self, request: web.Request) -> str:
        model = request.match_info["model"]
        version = request.match_info.get("version")
        self.state.check_model(model)
        self.state.check_version(model, version)
        return model

    async def repository_index(self, request: web.Request) -> web.Response:
        """Triton's repository index: checks the registry for new deployments now (swapping
        them in), then lists every model with its serving version and state."""
        await self.state.runtime.refresh_registry()
        return _json(self.state.repository_index())

    async def repository_load(self, request: web.Request) -> web.Response:
        """Triton's model load: resolves the model's source again and swaps in what it names
        (the old version keeps serving if the new one fails to load)."""
        model = request.match_info["model"]
        self.state.check_model(model)
        if model in self.state.runtime.model_names:
            await self.state.runtime.reload_model(model)
        return _json({})

    async def model_metadata(self, request: web.Request) -> web.Response:
        return _json(self.state.metadata(self._model(request)))

    async def model_ready(self, request: web.Request) -> web.Response:
        reason = self.state.model_not_ready_reason(self._model(request))
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

    async def _read(self, request: web.Request) -> bytes:
        declared = request.content_length
        if declared is not None and declared > self.state.max_request_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=self.state.max_request_bytes, actual_size=declared)
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in DECODED_ENCODINGS:
            request["force_close"] = True  # the body stays unread
            raise UnsupportedMediaError(f"Content-Encoding {encoding[:40]!r} is not supported (use gzip, deflate or none)")
        try:
            body = await request.read()
        except (ContentEncodingError, RequestPayloadError, zlib.error) as exc:
            request["force_close"] = True  # the stream is broken: never reuse the connection
            message = " ".join(str(exc).split())[:200]
            raise ProtocolError(f"the request body cannot be read (Content-Encoding {encoding or 'identity'}): {message}") from None
        guard = guard_of(request)
        if guard is not None:
            guard.read_done()
        return body

    async def infer(self, request: web.Request) -> web.Response:
        model = self._model(request)
        body = await self._read(request)
        header_length = request.headers.get("Inference-Header-Content-Length")
        if len(body) > OFF_LOOP_BYTES:
            header, inputs, request_id = await asyncio.to_thread(_decode, body, header_length)
        else:
            header, inputs, request_id = _decode(body, header_length)
        if request_id:
            structlog.contextvars.bind_contextvars(request_id=request_id)
            request["request_id"] = request_id
        params = header.get("parameters")
        priority = parse_priority(protocol.parameter(params, "priority"))
        timeout_ms = parse_timeout_ms(protocol.parameter(params, "timeout"), self.state.default_timeout_ms(model))
        binary_default = protocol.parameter(params, "binary_data_output") is True
        requested = protocol.requested_outputs(header)
        results, version = await self.state.runtime.infer_with_version(model, inputs, priority=priority, timeout_ms=timeout_ms)
        self.state.answered(model)
        selected = protocol.select_outputs(results, requested, binary_default)
        if sum(a.size if a.dtype.kind == "O" else a.nbytes // 64 for _, a, _ in selected) > OFF_LOOP_ELEMENTS:
            return await asyncio.to_thread(_encode, model, version, request_id, selected)
        return _encode(model, version, request_id, selected)


def _encode(model: str, version: str, request_id: str | None, selected: list[tuple[str, Any, bool]]) -> web.Response:
    """The response to an inference (JSON, or JSON and binary tensors), naming the version
    that served it."""
    entries, chunks = protocol.encode_outputs(selected)
    response: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": entries}
    if request_id is not None:
        response["id"] = request_id
    payload = protocol.dump_json(response)
    if not chunks:
        return web.Response(body=payload, content_type="application/json")
    return web.Response(
        body=b"".join([payload, *chunks]),
        headers={"Inference-Header-Content-Length": str(len(payload)), "Content-Type": "application/octet-stream"},
    )


__all__ = ["build_app", "error_response"]

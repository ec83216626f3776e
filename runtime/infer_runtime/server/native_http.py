"""The engine's own HTTP front end (``csrc/server/http_front.hpp``) on the server's listener.

The listener accepts each connection and hands it to the engine, which answers v2 inference
requests to plain models in C++ (no Python per request). The engine hands a connection back
at the first request it does not take whole (another endpoint, anything to explain in an
error, an unusual header or parameter): the listener then serves it with aiohttp, starting
from the bytes the engine had read. Errors the engine answers itself (a full queue, a
deadline, a backend failure) come back as events and are logged here, in the server's log
shape, one event per failure. docs/http-front.md has the whole contract.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Any

import structlog

from infer_runtime._native import ffi, lib, take_error
from infer_runtime.runtime import Runtime

log = structlog.get_logger("infer_runtime.server.http")

_POLL = 64


class NativeHttp:
    """One ``ir_http`` front end over ``runtime``'s engine."""

    def __init__(self, runtime: Runtime, *, max_request_bytes: int, read_timeout_s: float, keepalive_timeout_s: float) -> None:
        self.runtime = runtime
        engine = runtime.engine_handle()
        if engine is None:
            raise RuntimeError("the runtime is not running")
        options = ffi.new("ir_http_options*")
        options.max_request_bytes = max_request_bytes
        options.read_timeout_ms = max(1, int(read_timeout_s * 1000))
        options.keepalive_timeout_ms = int(keepalive_timeout_s * 1000)
        out = ffi.new("ir_http**")
        err = take_error(lib.ir_http_create(engine, options, out))
        if err is not None:
            raise err
        self._handle: Any = out[0]
        self._events = ffi.new("ir_http_event[]", _POLL)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_handoff: Callable[[int, bytes], None] | None = None
        self._on_closed: Callable[[], None] | None = None
        self._read_timeout_s = read_timeout_s
        for name in runtime.model_names:
            self.route(name)
        runtime.on_swap(self.route)
        runtime.on_engine_stopped(self.close)

    def route(self, name: str) -> None:
        """Routes ``name``'s inference requests to the version serving now (pipelines and
        unknown names stay the Python server's)."""
        if self._handle is None:
            return
        handle = self.runtime.engine_model_handle(name)
        if handle is None:
            lib.ir_http_unroute(self._handle, name.encode())
            return
        err = take_error(lib.ir_http_route(self._handle, name.encode(), self.runtime.version(name).encode(), handle))
        if err is not None:
            raise err

    def start(self, on_handoff: Callable[[int, bytes], None], on_closed: Callable[[], None]) -> None:
        """Starts delivering events on the running loop: ``on_handoff(fd, bytes_read)`` for a
        connection the Python server takes over, ``on_closed()`` for one the engine closed."""
        self._loop = asyncio.get_running_loop()
        self._on_handoff = on_handoff
        self._on_closed = on_closed
        self._loop.add_reader(lib.ir_http_event_fd(self._handle), self._drain)

    def adopt(self, sock: socket.socket) -> bool:
        """Hands an accepted connection to the engine (False: it refused; ``sock`` is intact)."""
        if self._handle is None:
            return False
        fd = sock.fileno()
        err = take_error(lib.ir_http_adopt(self._handle, fd))
        if err is not None:
            log.warning("the engine's HTTP front end refused a connection", error=str(err))
            return False
        sock.detach()  # the engine owns the descriptor now
        return True

    def set_admitting(self, admitting: bool) -> None:
        """While False, the engine hands every new request to the Python server (draining)."""
        if self._handle is not None:
            lib.ir_http_set_admitting(self._handle, int(admitting))

    def last_inference_ms(self, name: str) -> int:
        """Wall-clock ms of the last inference the engine answered for ``name`` (0: none)."""
        return 0 if self._handle is None else int(lib.ir_http_last_inference_ms(self._handle, name.encode()))

    @property
    def counts(self) -> tuple[int, int]:
        """(requests the engine answered, requests it handed to the Python server)."""
        if self._handle is None:
            return (0, 0)
        return int(lib.ir_http_served(self._handle)), int(lib.ir_http_handed_off(self._handle))

    def _drain(self) -> None:
        if self._handle is None:
            return
        while True:
            n = lib.ir_http_poll(self._handle, self._events, _POLL)
            for i in range(n):
                self._deliver(self._events[i])
            if n < _POLL:
                return

    def _deliver(self, event: Any) -> None:
        kind = event.kind
        if kind == lib.IR_HTTP_HANDOFF:
            data = bytes(ffi.buffer(event.data, event.size)) if event.size else b""
            if self._on_handoff is None:
                os.close(event.fd)
            else:
                self._on_handoff(event.fd, data)
        elif kind == lib.IR_HTTP_CLOSED:
            if self._on_closed is not None:
                self._on_closed()
        elif kind == lib.IR_HTTP_FAILED:
            status = int(event.status)
            fields = {
                "status": status,
                "error": ffi.string(event.data, event.size).decode("utf-8", "replace"),
                "request_id": ffi.string(event.request_id).decode("utf-8", "replace"),
                "model": ffi.string(event.model).decode("utf-8", "replace"),
            }
            if status < 500:
                log.info("request failed", **fields)
            else:
                log.error("request failed", **fields)
        elif kind == lib.IR_HTTP_CANCELLED:
            log.info("request cancelled: the client disconnected", model=ffi.string(event.model).decode("utf-8", "replace"),
                     request_id=ffi.string(event.request_id).decode("utf-8", "replace") or None)
        elif kind == lib.IR_HTTP_TIMED_OUT:
            log.info("closing a connection that did not send its request in time", timeout_s=self._read_timeout_s)
        elif kind == lib.IR_HTTP_STALLED:
            log.info("closing a connection that stopped reading its answer", timeout_s=self._read_timeout_s)

    def close(self) -> None:
        """Stops the front end: its connections close, events still waiting are delivered
        (hand-offs included). Idempotent; the runtime calls it once the engine stopped."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(lib.ir_http_event_fd(handle))
        # Events first: a connection handed back must reach its new owner.
        self._handle = handle
        self._drain()
        self._handle = None
        lib.ir_http_destroy(handle)


__all__ = ["NativeHttp"]

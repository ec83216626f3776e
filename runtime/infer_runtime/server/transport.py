"""The HTTP listener: aiohttp's protocol with slow-client defences and a connection cap.

- ``read_timeout_s``: a request's headers, and its body when the handler reads it, must
  arrive within this many seconds of its first byte, or the connection is closed (slow
  header and slow body clients hold nothing for long).
- ``keepalive_timeout_s``: an idle keep-alive connection is closed after this long (0:
  one request per connection).
- ``max_connections``: at most this many connections are open; the listener stops
  accepting while at the cap, so further clients wait in the kernel's listen backlog.
- Errors aiohttp's parser raises before any handler runs (a malformed request line, bad
  headers) are answered in the protocol's JSON error shape, as every other error.

The listener runs its own accept loop (``loop.sock_accept`` + ``connect_accepted_socket``),
which works alike on asyncio's and uvloop's event loops. With the engine's HTTP front end on
(``server.native_http``), each accepted connection goes to the engine first; the ones it hands
back are served here from the bytes it had read (``native_http.py``, docs/http-front.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

if TYPE_CHECKING:
    from .native_http import NativeHttp

log = structlog.get_logger("infer_runtime.server.http")


class GuardedRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol with a read deadline and JSON parser errors."""

    def __init__(self, manager: web.Server, *, read_timeout_s: float, on_close: Any, prefix: bytes = b"", **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._read_timeout_s = read_timeout_s
        self._on_close = on_close
        self._prefix = prefix  # bytes the engine's front end read before handing the connection over
        self._read_timer: asyncio.TimerHandle | None = None
        self._between_requests = True

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        # A connection must start (and send) its first request in time: an idle connection
        # that never sends a byte would otherwise hold a slot of max_connections forever.
        self._between_requests = False
        self._read_timer = self._loop.call_later(self._read_timeout_s, self._read_timed_out)
        if self._prefix:
            prefix, self._prefix = self._prefix, b""
            self.data_received(prefix)

    def data_received(self, data: bytes) -> None:
        if self._between_requests and data:  # the first byte of a request starts its clock
            self._between_requests = False
            self._read_timer = self._loop.call_later(self._read_timeout_s, self._read_timed_out)
        super().data_received(data)

    def read_done(self) -> None:
        """The handler has what it needs from the client (headers, and its body if read)."""
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def request_done(self) -> None:
        """The response is written: the next byte starts a new request's clock."""
        self.read_done()
        self._between_requests = True

    def _read_timed_out(self) -> None:
        self._read_timer = None
        log.info("closing a connection that did not send its request in time", timeout_s=self._read_timeout_s)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.read_done()
        try:
            super().connection_lost(exc)
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp's own failures outside the handlers (a body the client broke while it was
        being drained, a reset): the client's doing, one line without a traceback; anything
        else is ours and keeps its traceback."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, (RequestPayloadError, HttpProcessingError, ConnectionError, asyncio.CancelledError)):
            log.info("connection failed", error=f"{type(exc).__name__}: {str(exc).strip()}"[:300])
            return
        log.error("connection failed: internal error", error=str(args[0] if args else ""), exc_info=exc if isinstance(exc, BaseException) else True)

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None) -> StreamResponse:
        """Parser-level errors (and anything aiohttp catches outside the handlers) answer
        JSON; a 4xx is the client's doing and is logged without a traceback."""
        if status >= 500:
            log.error("request failed outside the handlers", status=status, error=f"{type(exc).__name__}: {exc}" if exc else message)
            text = "internal server error; details are in the server log"
        else:
            log.info("bad request", status=status, error=str(message or exc))
            text = str(message or exc or "bad request").splitlines()[0][:300]
        response = web.Response(status=status, body=orjson.dumps({"error": text}), content_type="application/json")
        response.force_close()
        return response


def guard_of(request: web.Request) -> GuardedRequestHandler | None:
    """The guarded protocol serving ``request`` (None under a plain aiohttp server)."""
    protocol = request.protocol
    return protocol if isinstance(protocol, GuardedRequestHandler) else None


class Listener:
    """Accepts HTTP connections for ``runner`` on ``host:port``, at most ``max_connections``
    at once."""

    def __init__(self, runner: web.AppRunner, *, read_timeout_s: float, max_connections: int) -> None:
        self.runner = runner
        self.read_timeout_s = read_timeout_s
        self.max_connections = max_connections
        self.open_connections = 0
        self.native: NativeHttp | None = None  # the engine's front end, which takes each connection first
        self._slots = asyncio.Semaphore(max_connections)
        self._handoffs: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        """Binds and starts accepting; returns the port. Raises OSError when it cannot bind."""
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(min(socket.SOMAXCONN, 1024))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._task = asyncio.get_running_loop().create_task(self._accept_loop(sock), name="http-accept")
        return int(sock.getsockname()[1])

    def _closed(self) -> None:
        self.open_connections -= 1
        self._slots.release()

    def _protocol(self, prefix: bytes = b"") -> GuardedRequestHandler:
        server = self.runner.server
        assert server is not None
        return GuardedRequestHandler(server, loop=asyncio.get_running_loop(), read_timeout_s=self.read_timeout_s, on_close=self._closed, prefix=prefix,
                                     **server._kwargs)

    def serve_native(self, native: NativeHttp) -> None:
        """Hands every accepted connection to the engine's front end first; the ones it hands
        back are served here, from the bytes it had read."""
        self.native = native
        native.start(on_handoff=self._take_over, on_closed=self._closed)

    def _take_over(self, fd: int, prefix: bytes) -> None:
        conn = socket.socket(fileno=fd)
        task = asyncio.get_running_loop().create_task(self._serve(conn, prefix), name="http-handoff")
        self._handoffs.add(task)
        task.add_done_callback(self._handoffs.discard)

    async def _serve(self, conn: socket.socket, prefix: bytes = b"") -> None:
        """Serves one connection (its slot is taken) with aiohttp until it closes."""
        made: list[GuardedRequestHandler] = []

        def factory() -> GuardedRequestHandler:
            made.append(self._protocol(prefix))
            return made[-1]

        try:
            await asyncio.get_running_loop().connect_accepted_socket(factory, conn)
        except OSError as exc:  # the client left before we set it up
            log.debug("connection setup failed", error=str(exc))
            conn.close()
            if not made:  # else the protocol's connection_lost frees the slot
                self._closed()

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:  # EMFILE and friends: back off instead of spinning
                self._slots.release()
                log.warning("accept failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            except BaseException:
                self._slots.release()
                raise
            self.open_connections += 1
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # the client already left: setting it up below fails and says so
                pass
            if self.native is not None and self.native.adopt(conn):
                continue  # the engine serves it; its slot frees on IR_HTTP_CLOSED or hand-off
            await self._serve(conn)

    async def stop(self) -> None:
        """Stops accepting (open connections are closed by the runner's cleanup)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

"""The process lifecycle of `infer-runtime run`: startup → serve → graceful shutdown.

Startup loads and warms up every model before readiness turns true (a model that fails is
unready with its reason, or fails startup when ``server.exit_on_error``), then binds HTTP
and gRPC (a port in use is a clear startup error). SIGTERM/SIGINT: readiness goes false and
gRPC health NOT_SERVING at once, new requests get 503, queued and running work drains for up
to ``server.shutdown_timeout_s``, what is left is cancelled, exit 0 (1 when requests had to
be cancelled). A second signal exits at once. The server runs on uvloop where installed
(``IR_EVENT_LOOP=asyncio`` forces asyncio's loop).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import structlog

from infer_runtime.errors import InferRuntimeError
from infer_runtime.runtime import Runtime
from infer_runtime.spec import LoadedSpec

from . import loop as loop_mod
from .state import ServingState, StartupError

log = structlog.get_logger("infer_runtime.server")

EXIT_OK = 0
EXIT_FAILED = 1

__all__ = ["EXIT_FAILED", "EXIT_OK", "ServingState", "StartupError", "main_serve", "serve"]


async def serve(loaded: LoadedSpec, *, on_ready: Any = None) -> int:
    """Runs the server until a signal; returns the process exit code."""
    from aiohttp import web

    from . import grpc_server
    from .http import build_app
    from .transport import Listener

    server_spec = loaded.spec.server
    runtime = Runtime(loaded)
    state = ServingState(loaded, runtime)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals: list[int] = []
    native: list[Any] = []  # the engine's HTTP front end, once started

    def on_signal(signum: int) -> None:
        signals.append(signum)
        if len(signals) > 1:
            log.warning("second signal: exiting at once", signal=signal.Signals(signum).name)
            os._exit(EXIT_FAILED)
        log.info("shutdown requested", signal=signal.Signals(signum).name)
        state.phase = "draining"  # readiness false and new requests refused from now on
        for front in native:
            front.set_admitting(False)  # new requests go to the Python server, which refuses them
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    started = time.perf_counter()
    log.info("starting", runtime=loaded.spec.runtime.name, spec=str(loaded.path), models=list(loaded.spec.models), event_loop=loop_mod.running_loop_name())
    # A signal while models load stops startup at once: loading threads cannot be interrupted,
    # so the process leaves them behind instead of waiting for them (main_serve exits hard).
    starting = asyncio.ensure_future(runtime.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        # Loading threads cannot be interrupted, and the event loop's shutdown would wait for
        # them: leave at once, after saying so.
        log.warning("signal during startup: stopping before the models finished loading")
        print("infer-runtime: startup stopped: a signal arrived while the models were loading", file=sys.stderr, flush=True)
        os._exit(EXIT_FAILED)
    stopping.cancel()
    try:
        starting.result()
    except InferRuntimeError as exc:
        log.error("startup failed", error=str(exc))
        raise StartupError(str(exc)) from exc
    state.started()

    runner = web.AppRunner(
        build_app(state, keepalive=server_spec.keepalive_timeout_s > 0),
        access_log=None if not server_spec.access_log else log_access(),
        handle_signals=False,
        handler_cancellation=True,  # a client that went away cancels its pending inference
        keepalive_timeout=server_spec.keepalive_timeout_s or 1.0,
        lingering_time=min(2.0, server_spec.read_timeout_s),
    )
    await runner.setup()
    listener = Listener(runner, read_timeout_s=server_spec.read_timeout_s, max_connections=server_spec.max_connections)
    if server_spec.native_http and not server_spec.access_log:
        from .native_http import NativeHttp

        front = NativeHttp(runtime, max_request_bytes=state.max_request_bytes, read_timeout_s=server_spec.read_timeout_s,
                           keepalive_timeout_s=server_spec.keepalive_timeout_s)
        native.append(front)
        listener.serve_native(front)
        state.native_last_inference = front.last_inference_ms
        if stop.is_set():
            front.set_admitting(False)
    grpc = None
    try:
        try:
            http_port = await listener.start(server_spec.host, server_spec.http_port)
        except OSError as exc:
            raise StartupError(f"cannot listen on {server_spec.host}:{server_spec.http_port} (HTTP): {exc.strerror or exc}") from exc
        grpc_port = None
        if server_spec.grpc_port:
            grpc = await grpc_server.start(state, server_spec.host, server_spec.grpc_port, server_spec.grpc_max_message_bytes)
            grpc_port = grpc.port
        if not stop.is_set():  # a signal during startup keeps the server draining
            state.phase = "serving"
        log.info("serving", http=f"http://{server_spec.host}:{http_port}", grpc=f"{server_spec.host}:{grpc_port}" if grpc_port else None,
                 models=runtime.model_names, failed=sorted(runtime.failed_models), startup_s=round(time.perf_counter() - started, 3),
                 event_loop=loop_mod.running_loop_name(), native_http=bool(native))
        if on_ready is not None:
            on_ready(http_port, grpc_port)
        await stop.wait()
    except BaseException:
        await _shutdown(state, runtime, runner, listener, grpc, 0)
        raise
    return await _shutdown(state, runtime, runner, listener, grpc, server_spec.shutdown_timeout_s)


async def _shutdown(state: ServingState, runtime: Runtime, runner: Any, listener: Any, grpc: Any, timeout_s: float) -> int:
    state.phase = "draining"
    if listener.native is not None:
        listener.native.set_admitting(False)
    if grpc is not None:
        await grpc.begin_drain()
    log.info("draining", timeout_s=timeout_s)
    abandoned = await runtime.stop(timeout_s)  # in-flight and queued work finishes or is cancelled
    state.phase = "stopped"
    if grpc is not None:
        await grpc.stop()
    await listener.stop()
    await runner.cleanup()
    state.live = False
    if abandoned:
        log.warning("stopped with requests abandoned at the drain timeout", abandoned=abandoned)
        return EXIT_FAILED
    log.info("stopped")
    return EXIT_OK


def log_access() -> Any:
    """An aiohttp access logger writing one structured event per request."""
    from aiohttp.abc import AbstractAccessLogger

    class _Access(AbstractAccessLogger):
        def log(self, request: Any, response: Any, elapsed: float) -> None:
            log.info("request", method=request.method, path=request.path, status=response.status, duration_s=round(elapsed, 6))

    return _Access


def main_serve(loaded: LoadedSpec) -> int:
    """Blocking entry point for the CLI."""
    from infer_runtime.monitoring.logging import configure_logging

    configure_logging(loaded.spec.monitoring.log_level, loaded.spec.monitoring.log_format)

    def announce(http_port: int, grpc_port: int | None) -> None:
        host = loaded.spec.server.host
        where = f"http://{host}:{http_port}" + (f" and grpc {host}:{grpc_port}" if grpc_port else "")
        print(f"infer-runtime serving {', '.join(loaded.spec.models)} on {where} (Ctrl-C to stop)", file=sys.stderr, flush=True)

    try:
        return loop_mod.run(lambda: serve(loaded, on_ready=announce), use_uvloop=os.environ.get("IR_EVENT_LOOP", "") != "asyncio")
    except StartupError as exc:
        print(f"infer-runtime: startup failed: {exc}", file=sys.stderr)
        return EXIT_FAILED

"""The process lifecycle of `infer-runtime run`: startup → serve → graceful shutdown.

Startup loads and warms up every model before readiness turns true (a model that fails is
unready with its reason, or fails startup when ``server.exit_on_error``), then binds HTTP
and gRPC (a port in use is a clear startup error). SIGTERM/SIGINT: readiness goes false at
once, new requests get 503, queued and running work drains for up to
``server.shutdown_timeout_s``, what is left is cancelled, exit 0 (1 when requests had to be
cancelled). A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import structlog

from infer_runtime.engine import ModelStats
from infer_runtime.errors import InferRuntimeError, ModelNotFoundError, UnavailableError
from infer_runtime.runtime import Runtime
from infer_runtime.spec import LoadedSpec

from . import metrics as metrics_mod
from .protocol import v2_datatype

log = structlog.get_logger("infer_runtime.server")

EXIT_OK = 0
EXIT_FAILED = 1


class StartupError(InferRuntimeError):
    """The server could not start (a model failed with exit_on_error, a port in use, ...)."""


class ServingState:
    """What the protocol front-ends need from the runtime, and the server's own state."""

    def __init__(self, loaded: LoadedSpec, runtime: Runtime) -> None:
        self.loaded = loaded
        self.runtime = runtime
        self.name = loaded.spec.runtime.name
        self.max_request_bytes = loaded.spec.server.max_request_bytes
        self.phase = "starting"  # starting → serving → draining → stopped
        self.live = True
        self.load_seconds: dict[str, float] = {}
        self.registry = metrics_mod.make_registry(self)

    # -- health --------------------------------------------------------------------------
    def not_ready_reason(self) -> str | None:
        """Why the server is not ready (strict: every model must serve), or None."""
        if self.phase != "serving":
            return f"the server is {self.phase}"
        failed = self.runtime.failed_models
        if failed:
            return "model(s) not ready: " + "; ".join(f"{m}: {why}" for m, why in failed.items())
        return None

    def check_model(self, model: str) -> None:
        """Raises ModelNotFoundError unless the spec declares ``model``."""
        if model not in self.loaded.spec.models:
            raise ModelNotFoundError(f"unknown model '{model}' (models: {', '.join(self.loaded.spec.models)})")

    def model_not_ready_reason(self, model: str) -> str | None:
        """Why ``model`` cannot serve now, or None."""
        self.check_model(model)
        if self.phase != "serving":
            return f"the server is {self.phase}"
        failed = self.runtime.failed_models.get(model)
        return None if failed is None else f"model '{model}' failed to load: {failed}"

    def all_models(self) -> list[str]:
        """Every model of the spec, serving or not."""
        return list(self.loaded.spec.models)

    def serving_models(self) -> list[str]:
        """Models that loaded."""
        return self.runtime.model_names if self.phase != "starting" else []

    def model_stats(self) -> dict[str, ModelStats]:
        """Counters of the models that loaded (empty while starting and once stopped)."""
        if self.phase in ("starting", "stopped"):
            return {}
        try:
            return {m: self.runtime.stats(m) for m in self.runtime.model_names}
        except UnavailableError:  # the engine went away between the phase check and the read
            return {}

    # -- metadata ------------------------------------------------------------------------
    def _signature(self, model: str) -> Any:
        self.check_model(model)
        if model not in self.runtime.model_names:
            raise UnavailableError(f"model '{model}' is not available: {self.runtime.failed_models.get(model, 'not loaded')}")
        return self.runtime.signature(model)

    def metadata(self, model: str) -> dict[str, Any]:
        """KServe v2 model metadata; variable dimensions are -1."""
        sig = self._signature(model)
        backend = self.loaded.spec.models[model].backend

        def tensors(ts: Any) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": v2_datatype(t.dtype), "shape": list(t.shape)} for t in ts or ()]

        return {"name": model, "versions": ["1"], "platform": f"infer-runtime_{backend}", "inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}

    def config(self, model: str) -> dict[str, Any]:
        """A Triton-style model configuration (what Triton tooling reads)."""
        meta = self.metadata(model)
        spec = self.loaded.spec.models[model]
        batching = spec.batching
        def dims(shape: list[int]) -> list[int]:
            return shape[1:] if batching else shape

        cfg: dict[str, Any] = {
            "name": model,
            "platform": meta["platform"],
            "backend": spec.backend,
            "max_batch_size": batching.max_batch_size if batching else 0,
            "input": [{"name": t["name"], "data_type": "TYPE_" + t["datatype"], "dims": dims(t["shape"])} for t in meta["inputs"]],
            "output": [{"name": t["name"], "data_type": "TYPE_" + t["datatype"], "dims": dims(t["shape"])} for t in meta["outputs"]],
            "instance_group": [{"count": spec.instances, "kind": "KIND_CPU"}],
        }
        if batching:
            cfg["dynamic_batching"] = {
                "preferred_batch_size": batching.preferred_batch_sizes,
                "max_queue_delay_microseconds": batching.max_queue_delay_us,
                "default_queue_policy": {"max_queue_size": batching.max_queue_size, "default_timeout_microseconds": batching.default_timeout_ms * 1000},
                "priority_levels": batching.priority_levels,
            }
        return cfg

    def statistics(self, model: str) -> dict[str, Any]:
        """Triton-style inference statistics from the engine's counters."""
        self._signature(model)
        s = self.runtime.stats(model)
        failed = s.failed_invalid + s.rejected_queue_full + s.timed_out + s.failed_backend + s.cancelled
        return {
            "name": model,
            "version": "1",
            "inference_count": s.batched_rows,
            "execution_count": s.batches,
            "inference_stats": {
                "success": {"count": s.succeeded, "ns": s.request_ns_sum},
                "fail": {"count": failed, "ns": 0},
                "queue": {"count": s.succeeded, "ns": s.queue_ns_sum},
                "compute_infer": {"count": s.batches, "ns": s.compute_ns_sum},
            },
            "batch_stats": [],
        }

    def metrics_text(self) -> tuple[bytes, str]:
        """The Prometheus exposition (engine counters read now)."""
        return metrics_mod.render(self.registry)


async def serve(loaded: LoadedSpec, *, on_ready: Any = None) -> int:
    """Runs the server until a signal; returns the process exit code."""
    from aiohttp import web

    from . import grpc_server
    from .http import build_app

    server_spec = loaded.spec.server
    runtime = Runtime(loaded)
    state = ServingState(loaded, runtime)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals: list[int] = []

    def on_signal(signum: int) -> None:
        signals.append(signum)
        if len(signals) > 1:
            log.warning("second signal: exiting at once", signal=signal.Signals(signum).name)
            os._exit(EXIT_FAILED)
        log.info("shutdown requested", signal=signal.Signals(signum).name)
        state.phase = "draining"  # readiness false and new requests refused from now on
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    started = time.perf_counter()
    log.info("starting", runtime=loaded.spec.runtime.name, spec=str(loaded.path), models=list(loaded.spec.models))
    try:
        await runtime.start()
    except InferRuntimeError as exc:
        log.error("startup failed", error=str(exc))
        raise StartupError(str(exc)) from exc
    state.load_seconds = runtime.load_seconds

    runner = web.AppRunner(build_app(state), access_log=None if not server_spec.access_log else log_access(), handle_signals=False)
    await runner.setup()
    grpc = None
    try:
        site = web.TCPSite(runner, server_spec.host, server_spec.http_port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {server_spec.host}:{server_spec.http_port} (HTTP): {exc.strerror or exc}") from exc
        http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        grpc_port = None
        if server_spec.grpc_port:
            grpc = await grpc_server.start(state, server_spec.host, server_spec.grpc_port, server_spec.grpc_max_message_bytes)
            grpc_port = grpc.port
        if not stop.is_set():  # a signal during startup keeps the server draining
            state.phase = "serving"
        log.info("serving", http=f"http://{server_spec.host}:{http_port}", grpc=f"{server_spec.host}:{grpc_port}" if grpc_port else None,
                 models=runtime.model_names, failed=runtime.failed_models, startup_s=round(time.perf_counter() - started, 3))
        if on_ready is not None:
            on_ready(http_port, grpc_port)
        await stop.wait()
    except BaseException:
        await _shutdown(state, runtime, runner, grpc, 0)
        raise
    return await _shutdown(state, runtime, runner, grpc, server_spec.shutdown_timeout_s)


async def _shutdown(state: ServingState, runtime: Runtime, runner: Any, grpc: Any, timeout_s: float) -> int:
    state.phase = "draining"
    log.info("draining", timeout_s=timeout_s)
    abandoned = await runtime.stop(timeout_s)  # in-flight and queued work finishes or is cancelled
    state.phase = "stopped"
    if grpc is not None:
        await grpc.stop()
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
        return asyncio.run(serve(loaded, on_ready=announce))
    except StartupError as exc:
        print(f"infer-runtime: startup failed: {exc}", file=sys.stderr)
        return EXIT_FAILED

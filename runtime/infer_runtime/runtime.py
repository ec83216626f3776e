"""The embedding API: ``Runtime`` (asyncio) and ``SyncRuntime`` (blocking callers).

    async with Runtime.from_spec("specs/demo.toml") as rt:
        out = await rt.infer("digits", {"input": x})

Both share one core: the spec is assembled into an engine; a request is checked against
the model's signature in Python (nothing is enqueued on bad input), submitted with
borrowed pointers to the arrays (kept alive here until completion), and completed by the
engine. ``Runtime`` holds the small requests of a burst (those arriving while others are
in flight) and submits them together, one engine call per model, when the burst ends.
``Runtime`` learns of completions from the engine's eventfd in the event loop (one wake-up
drains everything finished); ``SyncRuntime`` from one thread blocked in ``ir_engine_wait``
without the GIL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

import numpy as np
import structlog

from infer_runtime._native.executor import PullExecutor
from infer_runtime.assemble import (
    Artifact,
    AssembledModel,
    AssembledPipeline,
    Assembly,
    Prepared,
    assemble,
    install,
    prepare_within,
)
from infer_runtime.engine import Delivery, Engine, ModelSignature, ModelStats, StepStats
from infer_runtime.errors import (
    ModelLoadError,
    ModelNotFoundError,
    UnavailableError,
)
from infer_runtime.pipelines import FlatPipeline, replacement_problem
from infer_runtime.spec import LoadedSpec, load_spec

log = structlog.get_logger("infer_runtime.runtime")

_NO_WAITER: tuple[Any, Any] = (None, None)  # pending.pop default: the caller is gone
_NO_LOCK = contextlib.nullcontext()

Arrays = dict[str, np.ndarray]


class _Core:
    """Spec → engine → models, plus the bookkeeping of requests in flight."""

    def __init__(self, loaded: LoadedSpec) -> None:
        self.loaded = loaded
        self.engine: Engine | None = None
        self.assembly = Assembly()
        self.pending: dict[int, tuple[Any, list[Any]]] = {}  # cookie → (waiter, kept alive)
        self._next_cookie = 1
        self.closing = False
        self.stuck = False  # an executor thread did not return: the engine must outlive it
        self.swaps: dict[tuple[str, str], int] = {}  # (model, outcome) → hot swaps
        self._retired_executors: list[PullExecutor] = []  # of replaced models, joined lazily

    def open(self) -> None:
        """Creates the engine and assembles every model (blocking: loads files)."""
        self.engine = Engine()
        self.assembly = assemble(self.loaded, self.engine)
        if self.assembly.failures and self.loaded.spec.server.exit_on_error:
            reasons = "; ".join(str(e) for e in self.assembly.failures.values())
            self.close(0)
            raise ModelLoadError(f"{len(self.assembly.failures)} model(s) failed to load: {reasons}")

    def model(self, name: str) -> AssembledModel | AssembledPipeline:
        """The running model or pipeline called ``name``."""
        found: AssembledModel | AssembledPipeline | None = self.assembly.models.get(name) or self.assembly.pipelines.get(name)
        if found is not None:
            return found
        if name in self.assembly.failures:
            kind = "pipeline" if name in self.loaded.spec.pipelines else "model"
            raise UnavailableError(f"{kind} '{name}' is not available: {self.assembly.failures[name]}")
        known = sorted([*self.loaded.spec.models, *self.loaded.spec.pipelines])
        raise ModelNotFoundError(f"no model or pipeline named '{name}' (serving: {', '.join(known)})")

    def pipeline(self, name: str) -> AssembledPipeline:
        """The running pipeline called ``name``."""
        found = self.model(name)
        if not isinstance(found, AssembledPipeline):
            raise ModelNotFoundError(f"'{name}' is a model, not a pipeline")
        return found

    def submit(self, name: str, inputs: Mapping[str, Any], priority: int, timeout_ms: float | None, waiter: Any, wake: bool = True) -> Any:
        """Checks and submits one request; ``waiter`` is resolved by the front-end.
        Returns the engine model (for a later wake when ``wake`` is false)."""
        if self.closing or self.engine is None:
            raise UnavailableError("the runtime is not running")
        model = self.model(name).engine_model
        cookie = self._next_cookie
        self._next_cookie = cookie + 1
        # Completions are drained on the submitting thread (Runtime) or under the same lock
        # as submission (SyncRuntime), so registering after ir_model_submit cannot miss one.
        self.pending[cookie] = (waiter, model.submit(cookie, inputs, priority, timeout_ms, wake))
        return model

    def flush(self, model: Any) -> None:
        """Submits what ``model`` holds from :meth:`stage` (its cookies are taken here)."""
        self._next_cookie += model.flush(self._next_cookie, self.pending)

    def deliver(self, delivery: Delivery, n: int, lock: AbstractContextManager[Any] = _NO_LOCK) -> None:
        """Resolves the waiters of the first ``n`` completions in ``delivery``'s buffer;
        their entries leave ``pending`` under ``lock`` (SyncRuntime's submission lock)."""
        if not n:
            return
        columns = delivery.columns(n)
        pop = self.pending.pop
        with lock:
            waiters = [pop(cookie, _NO_WAITER)[0] for cookie in columns.cookies]
        delivery.resolve(columns, waiters)

    def warmup_inputs(self) -> list[tuple[str, Arrays]]:
        """One small request per model that asks for warmup and has a known signature
        without BYTES inputs (no empty string is a valid input in general; a hot swap's
        warmup skips them too)."""
        out = []
        for name, model in self.assembly.models.items():
            sig = model.signature
            if not self.loaded.spec.models[name].warmup or sig.inputs is None or any(t.dtype.kind == "O" for t in sig.inputs):
                continue
            out.append((name, {t.name: _warmup_tensor(t) for t in sig.inputs}))
        return out

    def prepare(self, name: str, artifact: Artifact | None = None) -> Prepared:
        """Loads model ``name`` anew (from ``artifact``, else from its spec) beside the one
        serving, and warms it when its spec asks (every instance, native or Python-hosted,
        runs one small request; blocking: files, sessions). Raises, changing nothing, when the
        new version fails to load or warm."""
        if self.engine is None or self.closing:
            raise UnavailableError("the runtime is not running")
        if name not in self.loaded.spec.models:
            what = "a pipeline (its steps' models swap one by one)" if name in self.loaded.spec.pipelines else "not a model of the spec"
            raise ModelNotFoundError(f"'{name}' is {what}")
        spec = self.loaded.spec.models[name]
        prepared = prepare_within(self.loaded, name, spec, self.loaded.spec.runtime.load_timeout_s, artifact)
        self._check_pipelines(prepared)
        inputs = prepared.backend.signature.inputs
        if spec.warmup and inputs is not None and all(t.dtype.kind != "O" for t in inputs):
            warm = {t.name: _warmup_tensor(t) for t in inputs}
            try:
                if prepared.backend.native is not None:
                    prepared.backend.native.warm(warm)
                for instance in prepared.backend.instances:
                    instance.run(warm)
            except Exception as exc:
                _discard(prepared)
                raise ModelLoadError(f"model '{name}': the new version failed its warmup: {type(exc).__name__}: {exc}") from exc
        return prepared

    def _check_pipelines(self, prepared: Prepared) -> None:
        """Refuses (discarding it) a new version that would break a pipeline running its model."""
        models = {name: model.signature for name, model in self.assembly.models.items()}
        for pipeline in self.assembly.pipelines.values():
            if prepared.name not in pipeline.flat.models:
                continue
            problem = replacement_problem(pipeline.flat, prepared.name, models, prepared.backend.signature)
            if problem is not None:
                _discard(prepared)
                raise ModelLoadError(f"model '{prepared.name}': the new version would break pipeline '{pipeline.name}': {problem}; the old version keeps serving")

    def swap(self, prepared: Prepared) -> AssembledModel:
        """Puts a prepared model in service (fast): new requests go to it at once, requests
        already admitted finish on the old version, whose executor threads end once it has
        drained. Call where submissions are serialised with it (the event loop, or under
        SyncRuntime's lock), then publish the model to the submitting side."""
        if self.engine is None or self.closing:
            raise UnavailableError("the runtime is not running")
        name = prepared.name
        old = self.assembly.models.get(name)
        new = install(self.engine, prepared, replace=old is not None, idle_spin_us=self.loaded.spec.runtime.idle_spin_us)
        self.assembly.models[name] = new
        self.assembly.failures.pop(name, None)
        if old is not None and old.executor is not None:
            self._retired_executors.append(old.executor)
        self._retired_executors = [e for e in self._retired_executors if not e.reap()]
        self.engine.release_retired()
        return new

    def close(self, timeout_s: float) -> None:
        """Stops admission, drains up to ``timeout_s``, then gives executor threads still
        inside a batch a short grace to return (blocking). A thread that does not is left
        running, and the engine with it (``stuck``)."""
        self.closing = True
        if self.engine is None:
            return
        self.engine.stop(timeout_s)
        deadline = time.monotonic() + _EXECUTOR_GRACE_S
        for executor in [*self.assembly.executors(), *self._retired_executors]:
            if not executor.join(max(0.0, deadline - time.monotonic())):
                self.stuck = True

    def cancelled_total(self) -> int:
        """Requests cancelled by the engine so far, over every model."""
        return sum(m.engine_model.stats().cancelled for m in self.assembly.models.values()) if self.engine else 0

    def destroy(self) -> None:
        """Frees the engine (after close and the last drain) -- unless a backend thread is
        still inside it, which would then touch freed memory: that engine is left alone."""
        if self.engine is not None:
            if self.stuck:
                log.error("a backend did not return from its batch; the engine is left running with it")
            else:
                self.engine.destroy()
            self.engine = None

    def abandon_pending(self) -> int:
        """Fails every request still waiting (the runtime stopped under it); returns how many."""
        abandoned = 0
        for waiter, _ in self.pending.values():
            if not waiter.done():
                waiter.set_exception(UnavailableError("the runtime stopped before this request completed"))
                abandoned += 1
        self.pending.clear()
        return abandoned


def _discard(prepared: Prepared) -> None:
    """Frees a prepared model that will not be installed."""
    if prepared.backend.native is not None:
        prepared.backend.native.free()
    for instance in prepared.backend.instances:
        try:
            instance.close()
        except Exception:
            log.exception("closing an unused backend instance failed", model=prepared.name)


def _warmup_tensor(t: Any) -> np.ndarray:
    """One small input: zeros, or empty byte strings for BYTES; variable dims become 1."""
    shape = tuple(1 if d == -1 else d for d in t.shape)
    return np.full(shape, b"", dtype=object) if t.dtype.kind == "O" else np.zeros(shape, dtype=t.dtype)


class _Common:
    """What both front-ends offer besides infer: names, signatures, statistics."""

    _core: _Core

    @property
    def spec(self) -> LoadedSpec:
        """The loaded spec this runtime was built from."""
        return self._core.loaded

    @property
    def model_names(self) -> list[str]:
        """Models, then pipelines, that are serving, in spec order (a pipeline is called
        like a model)."""
        return [*self._core.assembly.models, *self._core.assembly.pipelines]

    @property
    def pipeline_names(self) -> list[str]:
        """Pipelines that are serving, in spec order."""
        return list(self._core.assembly.pipelines)

    def pipeline_steps(self, name: str) -> list[tuple[str, str]]:
        """A serving pipeline's steps as (step, model), in the order they can run (a nested
        pipeline's steps are named ``<step>/<inner step>``)."""
        return [(step.name, step.model) for step in self._core.pipeline(name).flat.steps]

    def pipeline_graph(self, name: str) -> FlatPipeline:
        """The graph a serving pipeline runs (nested pipelines inlined)."""
        return self._core.pipeline(name).flat

    def step_stats(self, name: str) -> dict[str, StepStats]:
        """A snapshot of each step's counters for pipeline ``name``, by step name.

        Raises:
            UnavailableError: the runtime has stopped.
        """
        pipeline = self._core.pipeline(name)
        if self._core.engine is None:
            raise UnavailableError("the runtime is not running: its statistics are gone")
        return pipeline.engine_model.step_stats()

    @property
    def failed_models(self) -> dict[str, str]:
        """Models that failed to load (with ``exit_on_error = false``) and why."""
        return {name: str(exc) for name, exc in self._core.assembly.failures.items()}

    def signature(self, name: str) -> ModelSignature:
        """Inputs and outputs of a serving model."""
        return self._core.model(name).signature

    def version(self, name: str) -> str:
        """The version of model ``name`` serving now ("1" for a plain file; the registry's
        version for a registry source). Changes when a new version is swapped in."""
        return self._core.model(name).version

    @property
    def swap_counts(self) -> dict[tuple[str, str], int]:
        """Hot swaps so far by (model, outcome): "success", or "failure" (the old version kept
        serving)."""
        return dict(self._core.swaps)

    @property
    def load_seconds(self) -> dict[str, float]:
        """How long loading and assembling took, per model (failed ones included)."""
        return dict(self._core.assembly.load_seconds)

    def stats(self, name: str) -> ModelStats:
        """A snapshot of the engine's counters for one model.

        Raises:
            UnavailableError: the runtime has stopped (its engine, and the counters, are gone).
        """
        model = self._core.model(name)
        if self._core.engine is None:
            raise UnavailableError("the runtime is not running: its statistics are gone")
        return model.engine_model.stats()


def _load(spec: str | os.PathLike[str] | LoadedSpec, overrides: Mapping[str, Any] | None, sets: Sequence[str], environ: Mapping[str, str] | None) -> LoadedSpec:
    if isinstance(spec, LoadedSpec):
        return spec
    return load_spec(Path(spec), overrides=overrides, sets=sets, environ=environ)


class Runtime(_Common):
    """An asyncio runtime serving the models of one spec.

    Use ``async with Runtime.from_spec(path) as rt`` (or ``await rt.start()`` and
    ``await rt.stop()``). All calls must come from the event loop that started it.
    """

    def __init__(self, loaded: LoadedSpec) -> None:
        self._core = _Core(loaded)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._state = "new"
        self._delivery = Delivery(_DRAIN_BATCH, _MAX_OUTPUTS)
        self._quiet: set[Any] = set()  # models with requests admitted without a wake
        self._doorbell_scheduled = False
        # Lone requests poll briefly for their completion (see _catch_lone).
        self._poll_us = loaded.spec.runtime.idle_spin_us
        self._poll_skip = 0  # lone requests left to the eventfd before the next poll
        self._poll_backoff = 1  # the next skip after a miss (doubles per miss, to a cap)
        self._answered: weakref.ref[asyncio.Task[Any]] | None = None  # the task that got the last answer
        self._serving: dict[str, Any] = {}  # model name → EngineModel, for the hot path
        self._swap_listeners: list[Callable[[str], None]] = []
        self._close_listeners: list[Callable[[], None]] = []
        self._watcher: Any = None  # the registry watcher (hot swap), when the spec polls

    @classmethod
    def from_spec(cls, spec: str | os.PathLike[str] | LoadedSpec, *, overrides: Mapping[str, Any] | None = None, sets: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> Runtime:
        """A runtime for ``spec`` (validated now; started by ``start`` or ``async with``).

        Raises:
            SpecError: the spec or its overrides are invalid.
        """
        return cls(_load(spec, overrides, sets, environ))

    async def start(self) -> Self:
        """Assembles the engine, loads and warms up every model. Returns self."""
        if self._state != "new":
            raise UnavailableError(f"runtime cannot start: it is {self._state}")
        self._state = "starting"
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._core.open)
        except BaseException:
            self._state = "stopped"
            raise
        assert self._core.engine is not None
        assembly = self._core.assembly
        self._serving = {name: model.engine_model for name, model in assembly.models.items()}
        self._serving.update((name, pipeline.engine_model) for name, pipeline in assembly.pipelines.items())
        self._fd = self._core.engine.event_fd()
        self._loop.add_reader(self._fd, self._on_completions)
        self._state = "running"
        try:
            for name, inputs in self._core.warmup_inputs():
                await self.infer(name, inputs)
        except BaseException:
            await self.stop(0)
            raise
        try:
            await self._start_watcher()
        except BaseException:
            await self.stop(0)
            raise
        log.info("runtime started", runtime=self._core.loaded.spec.runtime.name, models=self.model_names, failed=sorted(self._core.assembly.failures))
        return self

    async def stop(self, timeout_s: float | None = None) -> int:
        """Stops admission, lets queued and running requests finish for up to ``timeout_s``
        (default: the spec's ``server.shutdown_timeout_s``), cancels the rest, frees all.
        Returns how many admitted requests had to be cancelled (0 = a clean drain)."""
        if self._state in ("stopped", "stopping", "new"):
            self._state = "stopped" if self._state == "new" else self._state
            return 0
        self._ring_doorbell()  # requests accepted before stop() are admitted, then drained
        self._state = "stopping"
        if self._watcher is not None:
            await self._watcher.stop()
            self._watcher = None
        timeout = self._core.loaded.spec.server.shutdown_timeout_s if timeout_s is None else timeout_s
        before = self._core.cancelled_total()
        abandoned = 0
        try:
            await asyncio.to_thread(self._core.close, timeout)
            abandoned = self._core.cancelled_total() - before
        finally:
            if self._loop is not None and self._fd >= 0:
                self._on_completions()
                self._loop.remove_reader(self._fd)
                self._fd = -1
            if not self._core.stuck:
                for listener in self._close_listeners:
                    listener()
            self._close_listeners.clear()
            self._core.destroy()
            abandoned += self._core.abandon_pending()
            self._state = "stopped"
            log.info("runtime stopped", runtime=self._core.loaded.spec.runtime.name)
        return abandoned

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def infer(self, model: str, inputs: Mapping[str, Any], *, priority: int = 0, timeout_ms: float | None = None) -> Arrays:
        """Runs one request and returns its outputs (numpy arrays over engine memory).

        Args:
            model: a model name.
            inputs: tensor name → array (the exact dtypes of the signature; with batching
                each carries its own leading batch dimension).
            priority: 0 (default) to ``priority_levels - 1``; larger runs first.
            timeout_ms: fail with DeadlineExceededError if still queued after this long
                (may only shorten the model's ``default_timeout_ms``).

        Raises:
            InvalidInputError, ModelNotFoundError, QueueFullError, DeadlineExceededError,
            UnavailableError, BackendError, RequestCancelledError.
        """
        if self._state != "running":
            raise UnavailableError(f"the runtime is {self._state}")
        waiter = self._loop.create_future()  # type: ignore[union-attr]
        # A lone request wakes the engine at once: no added latency. When others are in
        # flight, or callers resumed by one drain are resubmitting, the loop runs a burst:
        # admit quietly and ring the doorbell once after it, so the engine sees the burst as
        # one batch instead of picking requests off singly (measured: a worker that took the
        # first resumed caller alone split a 64-caller cohort into batches of ~16 rows).
        # The burst's small requests are held in Python and submitted by the doorbell in one
        # engine call per model (one concatenation per input instead of one ABI crossing and
        # descriptor set per request).
        if self._core.pending or self._doorbell_scheduled:
            engine_model = self._serving.get(model)
            if engine_model is None or not engine_model.stage(inputs, priority, timeout_ms, waiter):
                engine_model = self._core.submit(model, inputs, priority, timeout_ms, waiter, wake=False)
            self._quiet.add(engine_model)
            self._schedule_doorbell()
        else:
            self._core.submit(model, inputs, priority, timeout_ms, waiter)
            if self._poll_us:
                self._catch_lone(waiter)
        try:
            return await waiter  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            self._cancel(model, waiter)  # the caller went away: its queued request need not run
            raise
        finally:
            # See _catch_lone; a weak reference, since ids of freed tasks are reused at once.
            # The explicit loop: a pending call closed after its loop stopped must not raise.
            task = asyncio.current_task(self._loop)
            self._answered = None if task is None else weakref.ref(task)
            del task

    async def infer_with_version(self, model: str, inputs: Mapping[str, Any], *, priority: int = 0, timeout_ms: float | None = None) -> tuple[Arrays, str]:
        """Like :meth:`infer`, and also the version of the model that served the request
        (exact: versions are swapped on the event loop, between submissions)."""
        version = self.version(model)
        return await self.infer(model, inputs, priority=priority, timeout_ms=timeout_ms), version

    def _cancel(self, model: str, waiter: asyncio.Future[Any]) -> None:
        """Cancels the engine request behind ``waiter`` if it is still queued (it then
        completes as CANCELLED, counted as cancelled, and never runs)."""
        engine_model = self._serving.get(model)
        if engine_model is None or self._core.engine is None:
            return
        for cookie, (pending, _) in self._core.pending.items():
            if pending is waiter:
                engine_model.cancel(cookie)
                return

    async def reload_model(self, name: str) -> AssembledModel:
        """Resolves model ``name``'s source again (a registry reference is looked up anew)
        and swaps in what it names now, as :meth:`replace_model` does; counted in
        :attr:`swap_counts`. What ``POST /v2/repository/models/{m}/load`` does."""
        return await self._swap_counted(name, None)

    async def refresh_registry(self) -> list[str]:
        """Checks the registry for new deployments now (as the poll would) and swaps them in;
        returns the models swapped. What ``POST /v2/repository/index`` does."""
        if self._watcher is None:
            return []
        changed = await self._watcher.check_now()
        return sorted(changed)

    async def _swap_counted(self, name: str, artifact: Artifact | None) -> AssembledModel:
        try:
            model = await self.replace_model(name, artifact)
        except Exception as exc:
            key = (name, "failure")
            self._core.swaps[key] = self._core.swaps.get(key, 0) + 1
            log.error("hot swap failed; the old version keeps serving", model=name, error=str(exc))
            raise
        key = (name, "success")
        self._core.swaps[key] = self._core.swaps.get(key, 0) + 1
        return model

    async def _on_registry_change(self, changed: Mapping[str, Any]) -> None:
        """The watcher's callback: every model whose registry reference follows a changed
        deployment gets the new version (a failure leaves the old one serving)."""
        for name, model in list(self._core.assembly.models.items()):
            spec = self._core.loaded.spec.models[name]
            if spec.registry is None:
                continue
            registry_name = spec.registry.partition("@")[0]
            resolved = changed.get(registry_name)
            if resolved is None or not resolved.watched or (model.version == str(resolved.version)):
                continue
            with contextlib.suppress(Exception):  # counted and logged by _swap_counted
                await self._swap_counted(name, Artifact(Path(resolved.path), str(resolved.version), resolved))

    async def _start_watcher(self) -> None:
        registry = self._core.loaded.spec.registry
        if registry is None or registry.poll_interval_s <= 0:
            return
        baseline = [m_art for m_art in (self._artifact_source(n) for n in self._core.assembly.models) if m_art is not None and m_art.watched]
        if not baseline:
            return
        from infer_runtime.registry import RegistryWatcher

        self._watcher = RegistryWatcher(self._core.loaded.resolve_path(registry.path), registry.environment, registry.poll_interval_s,
                                        self._on_registry_change, models=[a.name for a in baseline], baseline=baseline)
        await self._watcher.start()

    def _artifact_source(self, name: str) -> Any:
        return self._core.assembly.models[name].artifact_source

    async def replace_model(self, name: str, artifact: Artifact | None = None) -> AssembledModel:
        """Loads model ``name`` anew (from ``artifact``: a path and the version it is, or from
        the spec again) beside the running one and swaps it in: new requests go to it at once,
        requests already admitted finish on the old version; no request fails. If the new
        version fails to load, the old one keeps serving and the error is raised.

        Internal for now: the registry's hot swap and ``POST /v2/repository/models/{m}/load``
        build on it.
        """
        if self._state != "running":
            raise UnavailableError(f"the runtime is {self._state}")
        prepared = await asyncio.to_thread(self._core.prepare, name, artifact)
        if self._state != "running":
            _discard(prepared)
            raise UnavailableError(f"the runtime is {self._state}")
        self._ring_doorbell()  # requests held for a burst go to the version they were accepted for
        new = self._core.swap(prepared)  # on the loop: no submission sees half a swap
        self._serving[name] = new.engine_model
        for listener in self._swap_listeners:
            listener(name)
        return new

    def engine_handle(self) -> Any:
        """The engine's handle (``ir_engine*``) while the runtime runs, else None: what the
        native HTTP front end is created on."""
        return None if self._core.engine is None else self._core.engine.handle

    def engine_model_handle(self, name: str) -> Any:
        """The engine's handle (``ir_model*``) on model ``name`` serving now, or None for a
        pipeline or an unknown name: what the native HTTP front end routes to."""
        from infer_runtime._native.engine import EnginePipeline

        engine_model = self._serving.get(name)
        if engine_model is None or isinstance(engine_model, EnginePipeline):
            return None
        return engine_model.handle

    def on_swap(self, listener: Callable[[str], None]) -> None:
        """Calls ``listener(name)`` on the loop after a new version of ``name`` is swapped in."""
        self._swap_listeners.append(listener)

    def on_engine_stopped(self, listener: Callable[[], None]) -> None:
        """Calls ``listener()`` once the engine has stopped (every request completed), just
        before it is freed; not called when a stuck backend keeps the engine alive."""
        self._close_listeners.append(listener)

    def _catch_lone(self, waiter: asyncio.Future[Any]) -> None:
        """A lone request: nothing else is in flight, so the loop would sleep in epoll until
        the eventfd wakes it. When the model answers within the idle spin (identity, tiny
        models), busy-wait for the completion in C instead and resolve the waiter before
        awaiting it: no sleep, no wake-up, no extra loop iteration.

        Only for a closed loop: the task that got the last answer asking again (a client's
        loop), so the loop most likely has nothing else to do meanwhile. Requests from other
        tasks (open-loop arrivals, the HTTP and gRPC servers' task per request) would queue
        behind the spinning loop instead: with Poisson arrivals at 50-90% of the host's
        capacity, polling every lone request made the adaptive window's p99 worse than the
        fixed window's (bench/README.md).

        Adaptive, with backoff: after a poll that missed (a model slower than the spin, or an
        engine still busy with a burst), the next 1, 2, 4, ... up to 128 closed-loop lone
        requests go the eventfd way before one polls again; a hit resets it. A slow model thus costs one wasted spin per 128
        requests, and a fast one is polled again soon after a burst. (Re-arming once a lone
        request's eventfd round trip fitted in the spin never happened on a slow VM: that
        round trip includes the loop's own wake-up.)"""
        task = asyncio.current_task()
        if task is None or self._answered is None or self._answered() is not task:
            return
        if self._poll_skip:
            self._poll_skip -= 1
            return
        engine = self._core.engine
        assert engine is not None
        self._deliver_all(engine.poll_into(self._delivery.buffer, _DRAIN_BATCH, self._poll_us))
        if waiter.done():
            self._poll_backoff = 1
        else:
            self._poll_skip = self._poll_backoff
            self._poll_backoff = min(2 * self._poll_backoff, _POLL_BACKOFF_MAX)

    def _schedule_doorbell(self) -> None:
        if not self._doorbell_scheduled:
            self._doorbell_scheduled = True
            self._loop.call_soon(self._ring_doorbell)  # type: ignore[union-attr]

    def _ring_doorbell(self) -> None:
        """Submits the burst's held requests and wakes the models it went to."""
        self._doorbell_scheduled = False
        quiet, self._quiet = self._quiet, set()
        if self._core.engine is not None:
            for engine_model in quiet:
                self._core.flush(engine_model)
                engine_model.wake()

    def _on_completions(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            pass
        self._drain()

    def _drain(self) -> None:
        engine = self._core.engine
        if engine is None:
            return
        delivered = 0
        while True:
            n = engine.drain_into(self._delivery.buffer, _DRAIN_BATCH)
            self._deliver_all(n)
            delivered += n
            if n < _DRAIN_BATCH:
                break
        if delivered > 1:
            # Several callers resume next: their wake-ups are queued ahead of the doorbell,
            # so it rings once they have all resubmitted. A single caller (concurrency 1)
            # wakes the engine itself, while an idle worker is still polling.
            self._schedule_doorbell()

    def _deliver_all(self, n: int) -> None:
        """Resolves the waiters of the first ``n`` completions in the drain buffer."""
        self._core.deliver(self._delivery, n)


class SyncRuntime(_Common):
    """A blocking runtime for non-async services; ``infer`` may be called from any thread.

    Use ``with SyncRuntime.from_spec(path) as rt: rt.infer(...)``.
    """

    def __init__(self, loaded: LoadedSpec) -> None:
        self._core = _Core(loaded)
        self._lock = threading.Lock()  # submission: descriptors are reused per model
        self._delivery = Delivery(_DRAIN_BATCH, _MAX_OUTPUTS)  # the dispatcher's, then stop()'s
        self._dispatcher: threading.Thread | None = None
        self._running = False

    @classmethod
    def from_spec(cls, spec: str | os.PathLike[str] | LoadedSpec, *, overrides: Mapping[str, Any] | None = None, sets: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> SyncRuntime:
        """A runtime for ``spec`` (validated now; started by ``start`` or ``with``)."""
        return cls(_load(spec, overrides, sets, environ))

    def start(self) -> Self:
        """Assembles, loads and warms up every model. Returns self."""
        if self._running or self._dispatcher is not None:
            raise UnavailableError("runtime already started")
        self._core.open()
        self._dispatcher = threading.Thread(target=self._dispatch, name="ir-completions", daemon=True)
        self._dispatcher.start()
        self._running = True
        try:
            for name, inputs in self._core.warmup_inputs():
                self.infer(name, inputs)
        except BaseException:
            self.stop(0)
            raise
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Like :meth:`Runtime.stop`."""
        if not self._running:
            return
        self._running = False
        timeout = self._core.loaded.spec.server.shutdown_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            self._core.closing = True
        self._core.close(timeout)
        if self._dispatcher is not None:
            self._dispatcher.join()
        # The dispatcher returns once the stopped engine has nothing queued, which can be
        # before a batch still running at the drain timeout completes; close() waited for
        # those, so deliver what they published before freeing the engine.
        self._deliver_ready()
        self._core.destroy()
        with self._lock:
            self._core.abandon_pending()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def infer(self, model: str, inputs: Mapping[str, Any], *, priority: int = 0, timeout_ms: float | None = None) -> Arrays:
        """Like :meth:`Runtime.infer`, blocking the calling thread."""
        if not self._running:
            raise UnavailableError("the runtime is not running")
        waiter: concurrent.futures.Future[Arrays] = concurrent.futures.Future()
        with self._lock:
            self._core.submit(model, inputs, priority, timeout_ms, waiter)
        return waiter.result()

    def _dispatch(self) -> None:
        engine = self._core.engine
        assert engine is not None
        while True:
            n = engine.wait(None, self._delivery.buffer)
            if n == 0:  # only when the engine has stopped and nothing is left
                return
            self._core.deliver(self._delivery, n, self._lock)

    def _deliver_ready(self) -> None:
        """Delivers every completion waiting now (after the dispatcher has returned)."""
        engine = self._core.engine
        while engine is not None and (n := engine.drain_into(self._delivery.buffer, _DRAIN_BATCH)):
            self._core.deliver(self._delivery, n, self._lock)


_DRAIN_BATCH = 256
_EXECUTOR_GRACE_S = 1.0
"""After the drain timeout, how long a Python backend still inside a batch may take to return
before its thread is left behind (and its requests fail as abandoned)."""
_POLL_BACKOFF_MAX = 128
_MAX_OUTPUTS = 64

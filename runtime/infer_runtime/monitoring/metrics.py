"""Prometheus metrics of a runtime, read from the engine's counters at scrape time.

Nothing is recorded per request in Python: :class:`RuntimeCollector` turns each model's
``ir_model_stats`` snapshot into ``infer_runtime_*`` families when the registry is
collected. It takes a :class:`~infer_runtime.Runtime`, so a service that embeds the
runtime (examples/fastapi_app.py) exports the same metrics as `infer-runtime run`.
Base units (seconds), ``_total`` counters, labels model/outcome/reason only. Warmup
requests are not counted (see :mod:`infer_runtime.monitoring.counters`).

    registry = make_registry(rt)          # after ``await rt.start()``
    body, content_type = render(registry)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from infer_runtime import __version__
from infer_runtime.engine import BATCH_BOUNDS, DURATION_BOUNDS_S
from infer_runtime.errors import InferRuntimeError

from .counters import StatsView

if TYPE_CHECKING:
    from infer_runtime.runtime import Runtime


def _histogram(family: HistogramMetricFamily, labels: list[str], bounds: tuple[float, ...], buckets: tuple[int, ...], total: float) -> None:
    cumulative = 0
    points = []
    for bound, count in zip(bounds, buckets):
        cumulative += count
        points.append((repr(float(bound)), cumulative))
    cumulative += buckets[-1]
    points.append(("+Inf", cumulative))
    family.add_metric(labels, points, total)


class RuntimeCollector:
    """Yields a runtime's metric families from the engine's counters.

    Args:
        runtime: a started runtime (or one about to start: models appear once loaded).
        view: the warmup-excluding counters to read (default: a view rebased now).
        model_ready: whether a model can serve (default: it loaded and the runtime runs);
            the server passes its own, which also knows about draining.
    """

    def __init__(self, runtime: Runtime, *, view: StatsView | None = None, model_ready: Callable[[str], bool] | None = None) -> None:
        self.runtime = runtime
        if view is None:
            view = StatsView(runtime)
            view.rebase()
        self.view = view
        self.model_ready = model_ready or (lambda model: model in runtime.model_names)

    def describe(self) -> list[Any]:
        return []  # families are produced at scrape time only

    def collect(self) -> Iterator[Any]:
        runtime = self.runtime
        requests = CounterMetricFamily("infer_runtime_requests", "Requests by model and outcome.", labels=["model", "version", "outcome"])
        batches = CounterMetricFamily("infer_runtime_batches", "Batches executed, by why they were dispatched.", labels=["model", "version", "reason"])
        rows = CounterMetricFamily("infer_runtime_inferences", "Rows (items) executed in batches.", labels=["model", "version"])
        request_s = HistogramMetricFamily("infer_runtime_request_duration_seconds", "Admission to completion in the engine, successful requests.", labels=["model", "version"])
        queue_s = HistogramMetricFamily("infer_runtime_queue_duration_seconds", "Time requests waited in the queue before their batch ran.", labels=["model", "version"])
        compute_s = HistogramMetricFamily("infer_runtime_compute_duration_seconds", "Batch execution time (gather, backend, scatter).", labels=["model", "version"])
        batch_size = HistogramMetricFamily("infer_runtime_batch_size", "Rows per executed batch.", labels=["model", "version"])
        depth = GaugeMetricFamily("infer_runtime_queue_depth", "Requests waiting in the model's queue.", labels=["model", "version"])
        in_flight = GaugeMetricFamily("infer_runtime_inflight_requests", "Requests admitted and not yet completed.", labels=["model", "version"])
        unhealthy = GaugeMetricFamily("infer_runtime_unhealthy_instances", "Instances out of service: a batch ran past execution_timeout_ms and has not returned.", labels=["model", "version"])
        timeouts = CounterMetricFamily("infer_runtime_execution_timeouts", "Batches failed for running past execution_timeout_ms.", labels=["model", "version"])
        ready = GaugeMetricFamily("infer_runtime_model_ready", "1 when the model can serve.", labels=["model"])
        load = GaugeMetricFamily("infer_runtime_model_load_duration_seconds", "How long loading (and assembling) the model took.", labels=["model"])
        info = GaugeMetricFamily("infer_runtime_build_info", "Version information (value 1).", labels=["version"])
        info.add_metric([__version__], 1)
        load_seconds = runtime.load_seconds
        for model in [*runtime.spec.spec.models, *runtime.spec.spec.pipelines]:
            ready.add_metric([model], 1.0 if self.model_ready(model) else 0.0)
            if model in load_seconds:
                load.add_metric([model], load_seconds[model])
        swaps = CounterMetricFamily("infer_runtime_model_swaps", "Hot swaps of a model's version, by outcome (failure: the old version kept serving).", labels=["model", "outcome"])
        for (model, outcome), count in runtime.swap_counts.items():
            swaps.add_metric([model, outcome], count)
        pipelines = set(runtime.pipeline_names)
        for model, s in self.view.all().items():
            version = runtime.version(model)
            outcomes = {
                "success": s.succeeded,
                "invalid": s.failed_invalid,
                "queue_full": s.rejected_queue_full,
                "timeout": s.timed_out,
                "error": s.failed_backend,
                "cancelled": s.cancelled,
            }
            for outcome, value in outcomes.items():
                requests.add_metric([model, version, outcome], value)
            labels = [model, version]
            _histogram(request_s, labels, DURATION_BOUNDS_S, s.request_ns_buckets, s.request_ns_sum / 1e9)
            in_flight.add_metric(labels, s.in_flight)
            if model in pipelines:  # batches, queues and instances are its steps' (see _step_families)
                continue
            reasons = (("full", s.batches_full), ("preferred", s.batches_preferred), ("delay", s.batches_delay), ("early", s.batches_early))
            for reason, value in reasons:
                batches.add_metric([model, version, reason], value)
            rows.add_metric(labels, s.batched_rows)
            _histogram(queue_s, labels, DURATION_BOUNDS_S, s.queue_ns_buckets, s.queue_ns_sum / 1e9)
            _histogram(compute_s, labels, DURATION_BOUNDS_S, s.compute_ns_buckets, s.compute_ns_sum / 1e9)
            _histogram(batch_size, labels, tuple(float(b) for b in BATCH_BOUNDS), s.batch_rows_buckets, float(s.batched_rows))
            depth.add_metric(labels, s.queue_depth)
            unhealthy.add_metric(labels, s.unhealthy_instances)
            timeouts.add_metric(labels, s.execution_timeouts)
        yield from (requests, batches, rows, request_s, queue_s, compute_s, batch_size, depth, in_flight, unhealthy, timeouts, swaps, ready, load, info)
        yield from _step_families(runtime)


def _step_families(runtime: Runtime) -> Iterator[Any]:
    """Per pipeline step: its requests by outcome and its duration (submitted to done)."""
    steps = CounterMetricFamily("infer_runtime_pipeline_step_requests", "Step requests of a pipeline, by outcome.", labels=["pipeline", "step", "model", "outcome"])
    step_s = HistogramMetricFamily("infer_runtime_pipeline_step_duration_seconds", "A step's submission to its completion, successful steps.", labels=["pipeline", "step", "model"])
    for pipeline in runtime.pipeline_names:
        try:
            stats = runtime.step_stats(pipeline)
        except InferRuntimeError:  # stopped meanwhile
            return
        models = dict(runtime.pipeline_steps(pipeline))
        for step, s in stats.items():
            steps.add_metric([pipeline, step, models[step], "success"], s.succeeded)
            steps.add_metric([pipeline, step, models[step], "failure"], s.failed)
            _histogram(step_s, [pipeline, step, models[step]], DURATION_BOUNDS_S, s.step_ns_buckets, s.step_ns_sum / 1e9)
    yield from (steps, step_s)


def make_registry(runtime: Runtime, *, view: StatsView | None = None, model_ready: Callable[[str], bool] | None = None, process: bool = True) -> CollectorRegistry:
    """A fresh registry with the runtime's collector (and, with ``process``, the process and
    platform collectors). Create it after ``await runtime.start()`` so warmup is excluded."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(runtime, view=view, model_ready=model_ready))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``registry`` and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


__all__ = ["RuntimeCollector", "make_registry", "render"]

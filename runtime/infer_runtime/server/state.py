"""``ServingState``: what the protocol front-ends need from the runtime, and the server's
own state (phase, liveness, statistics baseline, metrics registry)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from infer_runtime.engine import ModelStats
from infer_runtime.errors import InferRuntimeError, ModelNotFoundError, UnavailableError
from infer_runtime.monitoring.counters import StatsView
from infer_runtime.monitoring.metrics import make_registry, render
from infer_runtime.runtime import Runtime
from infer_runtime.spec import LoadedSpec

from . import statistics
from .protocol import v2_datatype
from .v2 import MODEL_VERSION, redact


def _config_type(datatype: str) -> str:
    """Triton's model-configuration name of a v2 datatype (BYTES is TYPE_STRING there)."""
    return "TYPE_STRING" if datatype == "BYTES" else "TYPE_" + datatype


class StartupError(InferRuntimeError):
    """The server could not start (a model failed with exit_on_error, a port in use, ...)."""


class ServingState:
    """The runtime as the front-ends see it. ``phase``: starting → serving → draining →
    stopped; ``live`` turns false once stopped."""

    def __init__(self, loaded: LoadedSpec, runtime: Runtime) -> None:
        self.loaded = loaded
        self.runtime = runtime
        self.name = loaded.spec.runtime.name
        self.max_request_bytes = loaded.spec.server.max_request_bytes
        self.phase = "starting"
        self.live = True
        self.view = StatsView(runtime)
        self.registry = make_registry(runtime, view=self.view, model_ready=lambda m: self.model_not_ready_reason(m) is None)
        self.last_inference_ms: dict[str, int] = {}
        self.native_last_inference: Callable[[str], int] | None = None  # the engine's HTTP front end's
        self._default_timeout_ms = {name: (m.batching.default_timeout_ms if m.batching else 0) for name, m in loaded.spec.models.items()}

    def started(self) -> None:
        """The runtime has started and warmed up: counters from here on are the users'."""
        self.view.rebase()

    def answered(self, model: str) -> None:
        """Records that an inference for ``model`` was answered now (``last_inference``)."""
        self.last_inference_ms[model] = time.time_ns() // 1_000_000

    def _last_inference(self, model: str) -> int:
        native = self.native_last_inference(model) if self.native_last_inference is not None else 0
        return max(self.last_inference_ms.get(model, 0), native)

    def default_timeout_ms(self, model: str) -> int:
        """The model's ``default_timeout_ms`` (0 = none)."""
        return self._default_timeout_ms.get(model, 0)

    # -- health --------------------------------------------------------------------------
    def not_ready_reason(self) -> str | None:
        """Why the server is not ready (strict: every model must serve), or None."""
        if self.phase != "serving":
            return f"the server is {self.phase}"
        failed = self.runtime.failed_models
        if failed:
            return "model(s) not ready: " + ", ".join(sorted(failed))
        return None

    def check_model(self, model: str) -> None:
        """Raises ModelNotFoundError unless the spec declares ``model`` (without listing the
        models: this answers unauthenticated clients)."""
        if model not in self.loaded.spec.models and model not in self.loaded.spec.pipelines:
            raise ModelNotFoundError(f"unknown model '{model}'")

    def model_not_ready_reason(self, model: str) -> str | None:
        """Why ``model`` cannot serve now (paths redacted), or None."""
        self.check_model(model)
        if self.phase != "serving":
            return f"the server is {self.phase}"
        failed = self.runtime.failed_models.get(model)
        if failed is not None:
            return redact(f"model '{model}' failed to load: {failed}")
        return self._instances_reason(model)

    def _instances_reason(self, model: str) -> str | None:
        """Why a loaded model cannot serve: every instance is out of service (each ran a batch
        past execution_timeout_ms and its backend has not returned)."""
        if model not in self.runtime.model_names:
            return None
        if model in self.loaded.spec.pipelines:  # ready when every step's model is
            for _step, step_model in self.runtime.pipeline_steps(model):
                reason = self._instances_reason(step_model)
                if reason is not None:
                    return f"pipeline '{model}': {reason}"
            return None
        try:
            stats = self.runtime.stats(model)
        except InferRuntimeError:
            return None
        instances = self.loaded.spec.models[model].instances
        if stats.unhealthy_instances >= instances:
            return f"model '{model}': every instance is out of service (a batch ran past execution_timeout_ms and has not returned)"
        return None

    def all_models(self) -> list[str]:
        """Every model and pipeline of the spec, serving or not."""
        return [*self.loaded.spec.models, *self.loaded.spec.pipelines]

    def serving_models(self) -> list[str]:
        """Models that loaded."""
        return self.runtime.model_names if self.phase != "starting" else []

    def model_stats(self) -> dict[str, ModelStats]:
        """Counters of the models that loaded, warmup excluded (empty while starting and
        once stopped)."""
        if self.phase in ("starting", "stopped"):
            return {}
        return self.view.all()

    # -- metadata ------------------------------------------------------------------------
    def _signature(self, model: str) -> Any:
        self.check_model(model)
        if model not in self.runtime.model_names:
            raise UnavailableError(redact(f"model '{model}' is not available: {self.runtime.failed_models.get(model, 'not loaded')}"))
        return self.runtime.signature(model)

    def serving_version(self, model: str) -> str:
        """The version of ``model`` serving now (the registry's, or "1" for a file)."""
        try:
            return self.runtime.version(model)
        except InferRuntimeError:
            return MODEL_VERSION

    def check_version(self, model: str, version: str | None) -> None:
        """Raises ModelNotFoundError unless ``version`` (when given) is the serving one."""
        if version:
            serving = self.serving_version(model)
            if version != serving:
                raise ModelNotFoundError(f"model '{model}' has no version '{version[:40]}' (serving: {serving})")

    def repository_index(self) -> list[dict[str, str]]:
        """Triton's repository index: every model of the spec, its serving version and state."""
        out = []
        for model in self.all_models():
            ready = self.model_not_ready_reason(model) is None
            entry = {"name": model, "version": self.serving_version(model), "state": "READY" if ready else "UNAVAILABLE"}
            if not ready:
                entry["reason"] = "not ready"
            out.append(entry)
        return out

    def metadata(self, model: str) -> dict[str, Any]:
        """KServe v2 model metadata; variable dimensions are -1."""
        sig = self._signature(model)
        platform = "ensemble" if model in self.loaded.spec.pipelines else f"infer-runtime_{self.loaded.spec.models[model].backend}"

        def tensors(ts: Any) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": v2_datatype(t.dtype), "shape": list(t.shape)} for t in ts or ()]

        return {"name": model, "versions": [self.serving_version(model)], "platform": platform, "inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}

    def config(self, model: str) -> dict[str, Any]:
        """A Triton-style model configuration (what Triton tooling reads)."""
        meta = self.metadata(model)
        if model in self.loaded.spec.pipelines:
            return self._pipeline_config(model, meta)
        spec = self.loaded.spec.models[model]
        batching = spec.batching

        def dims(shape: list[int]) -> list[int]:
            return shape[1:] if batching else shape

        cfg: dict[str, Any] = {
            "name": model,
            "platform": meta["platform"],
            "backend": spec.backend,
            "max_batch_size": batching.max_batch_size if batching else 0,
            "input": [{"name": t["name"], "data_type": _config_type(t["datatype"]), "dims": dims(t["shape"])} for t in meta["inputs"]],
            "output": [{"name": t["name"], "data_type": _config_type(t["datatype"]), "dims": dims(t["shape"])} for t in meta["outputs"]],
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

    def _pipeline_config(self, name: str, meta: dict[str, Any]) -> dict[str, Any]:
        """Triton's configuration of an ensemble: its steps with their input and output maps
        (a value is named ``<step>.<tensor>``, or the pipeline's own tensor name)."""
        max_batch = self.runtime.signature(name).max_batch_size

        def dims(shape: list[int]) -> list[int]:
            return shape[1:] if max_batch else shape

        steps = self.runtime.pipeline_steps(name)
        flat = {step.name: step for step in self.runtime.pipeline_graph(name).steps}
        outputs_of: dict[str, dict[str, str]] = {step: {} for step, _ in steps}
        for tensor, source in self.runtime.pipeline_graph(name).outputs.items():
            if source.step is not None:
                outputs_of[source.step][source.tensor] = tensor
        for flat_step in flat.values():
            for source in flat_step.inputs.values():
                if source.step is not None:
                    outputs_of[source.step].setdefault(source.tensor, f"{source.step}.{source.tensor}")
        schedule = []
        for step, model in steps:
            inputs = {tensor: (src.tensor if src.step is None else outputs_of[src.step].get(src.tensor, f"{src.step}.{src.tensor}")) for tensor, src in flat[step].inputs.items()}
            schedule.append({"model_name": model, "model_version": -1, "input_map": inputs, "output_map": outputs_of[step]})
        return {
            "name": name,
            "platform": "ensemble",
            "max_batch_size": max_batch,
            "input": [{"name": t["name"], "data_type": _config_type(t["datatype"]), "dims": dims(t["shape"])} for t in meta["inputs"]],
            "output": [{"name": t["name"], "data_type": _config_type(t["datatype"]), "dims": dims(t["shape"])} for t in meta["outputs"]],
            "ensemble_scheduling": {"step": schedule},
        }

    def statistics(self, model: str) -> dict[str, Any]:
        """Triton's statistics extension for one model (see :mod:`.statistics`)."""
        self._signature(model)
        try:
            s = self.view.stats(model)
        except InferRuntimeError as exc:
            raise UnavailableError(f"statistics of model '{model}' are not available: the server is {self.phase}") from exc
        return statistics.model_statistics(model, self.serving_version(model), s, self._last_inference(model))

    def metrics_text(self) -> tuple[bytes, str]:
        """The Prometheus exposition (engine counters read now)."""
        return render(self.registry)

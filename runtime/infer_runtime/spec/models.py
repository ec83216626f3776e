"""The spec language as frozen pydantic models: the single source of truth.

``schemas/infer-runtime.schema.json`` is generated from these classes (see
:mod:`infer_runtime.spec.schema`); field names, bounds, defaults and descriptions live here
only. Cross-field rules (path xor registry, references, cycles, ...) are in
:mod:`infer_runtime.spec.semantic`, which reports them all at once with locations.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .models_meta import ARTIFACT_BACKENDS, OPTION_TABLES

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
"""Model, pipeline and step names: lower-case letters, digits, '_' and '-'."""

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=128)]

Backend = Literal["onnxruntime", "tensorrt", "rules", "python", "identity", "plugin"]
BACKENDS: tuple[str, ...] = ("onnxruntime", "tensorrt", "rules", "python", "identity", "plugin")

DType = Literal[
    "bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
    "float16", "float32", "float64", "bytes",
]

REGISTRY_REF_PATTERN = r"^[a-z0-9][a-z0-9_-]*(@[A-Za-z0-9][A-Za-z0-9._-]*)?$"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)


class RuntimeSection(_Section):
    """Process-wide settings of the runtime."""

    name: str = Field("infer-runtime", min_length=1, description="Name reported in logs, metrics and server metadata.")
    worker_threads: int = Field(2, ge=1, le=1024, description="Thread budget of the C++ scheduler and native instance workers.")
    python_path: list[str] = Field(default_factory=list, description="Folders, relative to the spec file, put at the front of `sys.path` before any `python` backend's entrypoint is imported, so a spec's own Python steps import without the user editing `sys.path`.", json_schema_extra={"default": []})
    load_timeout_s: float = Field(300.0, gt=0, description="Longest one model may take to load and warm up; a model still loading then fails to load (ModelLoadError) and startup goes on without it or stops, as `server.exit_on_error` says.")
    idle_spin_us: int = Field(50, ge=0, le=10000, description="An idle instance polls for new work this long before sleeping, and the event loop polls this long for the result of a lone request from a closed loop (the task that got the previous answer) before sleeping: each saves a thread wake-up per request while it pays (both adapt: they stop polling after polls that missed), at the cost of some CPU; 0 = never poll.")


class RegistrySection(_Section):
    """The SQLite model registry that `registry = "name@..."` model sources resolve against."""

    path: str = Field("var/registry.db", min_length=1, description="SQLite file of the registry, relative to the spec file; created on first use.")
    environment: str = Field("production", min_length=1, description="The deployment environment whose models this runtime serves (`name@environment`).")
    poll_interval_s: float = Field(30.0, ge=0, description="Seconds between checks for new deployments (hot reload); 0 turns polling off.")


class MonitoringSection(_Section):
    """Logging and metrics."""

    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Lowest log level emitted.")
    log_format: Literal["json", "console"] = Field("json", description="`json` for machines (production), `console` for humans.")
    metrics: bool = Field(True, description="Expose Prometheus metrics at /metrics.")


class ServerSection(_Section):
    """The KServe v2 HTTP/gRPC server started by `infer-runtime run`."""

    host: str = Field("127.0.0.1", min_length=1, description="Address to listen on.")
    http_port: int = Field(8000, ge=0, le=65535, description="HTTP port; 0 picks a free port.")
    grpc_port: int = Field(8001, ge=0, le=65535, description="gRPC port; 0 turns gRPC off.")
    shutdown_timeout_s: float = Field(30.0, ge=0, description="On SIGTERM, seconds to drain in-flight and queued work before exiting.")
    max_request_bytes: int = Field(67108864, ge=1, description="Requests larger than this are refused before their body is parsed (HTTP 413).")
    grpc_max_message_bytes: int = Field(67108864, ge=1, description="Largest gRPC message accepted or sent.")
    exit_on_error: bool = Field(True, description="Fail startup when a model fails to load; false serves the others and reports that model unready.")
    access_log: bool = Field(False, description="Log one event per request.")
    read_timeout_s: float = Field(30.0, gt=0, description="A client must send a whole request (headers and body) within this many seconds, or its connection is closed (slow-client defence).")
    keepalive_timeout_s: float = Field(15.0, ge=0, description="An idle keep-alive connection is closed after this many seconds; 0 closes connections after each response.")
    max_connections: int = Field(1024, ge=1, description="Most client connections open at once over HTTP; further ones wait in the listen backlog.")
    native_http: bool = Field(True, description="The engine answers v2 inference requests to models over HTTP itself, in C++, without the Python interpreter; any other request, and any it does not fully understand, is served by the Python server (docs/http-front.md). Off while access_log is on.")


class TensorSpec(_Section):
    """A declared input or output tensor; checked against the model at startup."""

    name: str = Field(..., min_length=1, description="Tensor name as the model knows it.")
    dtype: DType = Field(..., description="Element type.")
    shape: list[Annotated[int, Field(ge=-1)]] = Field(..., description="Dimensions; -1 is variable (the leading -1 is the batch dimension when the model batches).", examples=[[-1, 64]])


class BatchingSection(_Section):
    """Dynamic batching: present = the scheduler packs requests into batches."""

    max_batch_size: int = Field(32, ge=1, le=65536, description="Most rows in one batch; requests carry their own leading batch dimension.")
    max_queue_delay_us: int = Field(500, ge=0, le=60_000_000, description="Longest the oldest queued request waits for a batch to fill, in microseconds.")
    preferred_batch_sizes: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, description="Batch sizes dispatched as soon as they are reached when waiting would not reach a larger one; ascending, each ≤ max_batch_size.", json_schema_extra={"default": []})
    max_queue_size: int = Field(1024, ge=1, description="Queued requests beyond this are rejected at once (RESOURCE_EXHAUSTED, HTTP 503).")
    default_timeout_ms: int = Field(0, ge=0, description="A request queued longer than this fails with DEADLINE_EXCEEDED and never runs; 0 = no timeout.")
    priority_levels: int = Field(1, ge=1, le=16, description="Number of priority levels; requests with a higher priority are served first.")
    adaptive: bool = Field(True, description="`max_queue_delay_us` is a bound, not a wait: a batch is dispatched as soon as more arrivals within the window are not expected to lower the waiting requests' latency (docs/batching.md). `false` waits out the whole window, as Triton does.")


class OnnxRuntimeOptions(_Section):
    """Options of the `onnxruntime` backend."""

    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1, description="Execution providers in order of preference; unavailable ones are skipped with a warning.", json_schema_extra={"default": ["CPUExecutionProvider"]})
    intra_op_threads: int = Field(1, ge=0, description="Threads inside one operator; 0 lets ONNX Runtime choose.")
    inter_op_threads: int = Field(1, ge=0, description="Threads across operators (parallel execution mode only); 0 lets ONNX Runtime choose.")
    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = Field("all", description="ONNX Runtime graph optimisation level.")
    execution_mode: Literal["sequential", "parallel"] = Field("sequential", description="Operator execution mode.")
    host: Literal["auto", "native", "python"] = Field("auto", description="Who runs the sessions. `native`: the engine's C++ instance threads, through the ONNX Runtime C library the onnxruntime wheel ships (no Python on the hot path; CPU execution provider only). `python`: onnxruntime's Python API on one Python thread per instance (any provider). `auto`: native when the providers chosen are just the CPU one and the library loads, else python.")


class TensorRTOptions(_Section):
    """Options of the `tensorrt` backend (GPU only, extra `[gpu]`)."""

    precision: Literal["fp32", "fp16", "int8"] = Field("fp16", description="Engine precision.")
    workspace_bytes: int = Field(1 << 30, ge=1, description="Builder workspace limit in bytes.")
    cache_dir: str = Field("var/tensorrt-cache", min_length=1, description="Where built plans are cached, keyed by model hash, TensorRT version and GPU.")
    device_id: int = Field(0, ge=0, description="CUDA device ordinal.")


class RulesOptions(_Section):
    """Options of the `rules` backend (the C++ forward-chaining engine)."""

    max_iterations: int = Field(1000, ge=1, description="Most rule firings per row; a row with activations left after that fails with an error naming the limit.")
    bindings: dict[str, str] = Field(default_factory=dict, description="Input tensor name → fact predicate: row r of the input becomes the fact `predicate(v0, ..., vk-1)`.", json_schema_extra={"default": {}})
    outputs: dict[str, str] = Field(default_factory=dict, description="Output tensor name → predicate: row r of the output is the first argument of the newest such fact.", json_schema_extra={"default": {}})
    defaults: dict[str, str | float] = Field(default_factory=dict, description="Output tensor name → value used for a row with no fact of its predicate.", json_schema_extra={"default": {}})
    explain: bool = Field(False, description="Add a BYTES output `_fired`: the names of the rules fired for the row, in order, comma-separated.")
    trace: bool = Field(False, description="Add a BYTES output `_facts`: the row's final working memory as a JSON array of facts in creation order (for debugging a policy).")


class PythonOptions(_Section):
    """Options of the `python` backend."""

    entrypoint: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$", description="`package.module:Class`; the class is constructed with `config` and called with a dict of batched numpy arrays.", examples=["my_models.scoring:Scorer"])
    config: dict[str, Any] = Field(default_factory=dict, description="Free-form table passed to the class constructor.", json_schema_extra={"default": {}})


class PluginOptions(_Section):
    """Options of the `plugin` backend (a shared library exporting the plugin ABI)."""

    library: str | None = Field(None, min_length=1, description="Path of a built plugin library (.so), relative to the spec file. Exactly one of `library` and `sources`.")
    sources: list[str] | None = Field(None, min_length=1, description="C/C++ sources compiled and cached at startup. Exactly one of `library` and `sources`.")
    cflags: list[str] = Field(default_factory=list, description="Extra compiler arguments for `sources` (after the built-in C++17, -O2, -fPIC, -shared and the plugin header's folder).", json_schema_extra={"default": []})
    libs: list[str] = Field(default_factory=list, description="Libraries to link `sources` with (`m` for -lm), or paths of library files.", json_schema_extra={"default": []})
    config: dict[str, Any] = Field(default_factory=dict, description="Free-form table passed to the plugin at initialisation.", json_schema_extra={"default": {}})


class ModelSpec(_Section):
    """One served model."""

    backend: Backend = Field(..., description="What runs the model: onnxruntime, tensorrt, rules, python, identity or plugin.")
    path: str | None = Field(None, min_length=1, description="Artifact file, relative to the spec file. Exactly one of `path` and `registry` for onnxruntime, tensorrt and rules.")
    registry: str | None = Field(None, pattern=REGISTRY_REF_PATTERN, description="Registry source: `name@environment`, `name@1.2.0`, or `name` for the latest version. Needs a [registry] section.", examples=["scorer@production", "scorer@1.2.0"])
    instances: int = Field(1, ge=1, le=256, description="Instances (workers) running batches concurrently.")
    warmup: bool = Field(True, description="Run one request before the model reports ready.")
    execution_timeout_ms: int = Field(0, ge=0, description="A batch running longer than this fails its requests (DEADLINE_EXCEEDED) and its instance is marked unhealthy: replaced where the backend allows, else the model goes unready; 0 = no limit.")
    inputs: list[TensorSpec] | None = Field(None, description="Declared inputs, checked against the model; optional for backends that describe themselves.")
    outputs: list[TensorSpec] | None = Field(None, description="Declared outputs, checked against the model.")
    batching: BatchingSection | None = Field(None, description="Dynamic batching; absent = requests run one at a time per instance.")
    onnxruntime: OnnxRuntimeOptions | None = Field(None, description="Options for backend = onnxruntime.")
    tensorrt: TensorRTOptions | None = Field(None, description="Options for backend = tensorrt.")
    rules: RulesOptions | None = Field(None, description="Options for backend = rules.")
    python: PythonOptions | None = Field(None, description="Options for backend = python (required there: `entrypoint`).")
    plugin: PluginOptions | None = Field(None, description="Options for backend = plugin (required there: `library` or `sources`).")


class PipelineStep(_Section):
    """One step of a pipeline: a model (or another pipeline) fed from earlier values."""

    model: Name = Field(..., description="The model or pipeline this step runs.")
    name: Name | None = Field(None, description="Step name used in references (`<step>.<output>`); defaults to the model name. Needed when a model appears twice.")
    inputs: dict[str, str] = Field(default_factory=dict, description="Step input tensor → source: `request.<tensor>` or `<step>.<output>`.", json_schema_extra={"default": {}})


class PipelineSpec(_Section):
    """A graph of steps called exactly like a model."""

    steps: list[PipelineStep] = Field(..., min_length=1, description="Steps; they run as soon as their inputs are available.")
    outputs: dict[str, str] = Field(..., min_length=1, description="Pipeline output tensor → source `<step>.<output>` (or `request.<tensor>`).")


class Spec(_Section):
    """One runtime: its models, pipelines, registry, monitoring and server."""

    version: Literal[1] = Field(1, description="Spec language version.")
    runtime: RuntimeSection = Field(RuntimeSection(), description="Process-wide settings.")
    registry: RegistrySection | None = Field(None, description="The model registry; needed when any model uses `registry = ...`.")
    monitoring: MonitoringSection = Field(MonitoringSection(), description="Logging and metrics.")
    server: ServerSection = Field(ServerSection(), description="The HTTP/gRPC server of `infer-runtime run`.")
    models: dict[Name, ModelSpec] = Field(..., min_length=1, description="Served models by name.")
    pipelines: dict[Name, PipelineSpec] = Field(default_factory=dict, description="Pipelines by name; called like models.", json_schema_extra={"default": {}})

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_not_a_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # Literal[1] alone accepts True, since True == 1
            raise ValueError("expected the integer 1")  # noqa: TRY004 - pydantic reports ValueError as a validation issue
        return value


__all__ = [
    "ARTIFACT_BACKENDS",
    "BACKENDS",
    "NAME_PATTERN",
    "OPTION_TABLES",
    "BatchingSection",
    "ModelSpec",
    "MonitoringSection",
    "OnnxRuntimeOptions",
    "PipelineSpec",
    "PipelineStep",
    "PluginOptions",
    "PythonOptions",
    "RegistrySection",
    "RulesOptions",
    "RuntimeSection",
    "ServerSection",
    "Spec",
    "TensorRTOptions",
    "TensorSpec",
]

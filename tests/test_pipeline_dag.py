"""Pipelines run inside the engine and answer exactly what their steps answer one by one.

The property: for random DAGs of identity, Python and plugin steps (random batching, random
step order in the spec, nested pipelines), a pipeline's answer equals a reference that calls
the step models one by one with ``rt.infer`` in topological order -- also for several
requests at once, so that batches mix requests of the pipeline. Then, through steps: a
failing step names the step and model and leaves other requests alone; deadlines run from
submission and fire on time at any step; priorities order an inner step's queue; a full
inner queue fails fast with nothing stranded; a step model swapped mid-flight never mixes
versions within one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline_steps as ps
from infer_runtime import Runtime, SyncRuntime
from infer_runtime.backends.plugin import build_plugin
from infer_runtime.errors import (
    BackendError,
    DeadlineExceededError,
    InvalidInputError,
    QueueFullError,
    UnavailableError,
)
from infer_runtime.spec.models import PluginOptions

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
Arrays = dict[str, np.ndarray]
Spec = dict[str, Any]


# ---- plugins, built once per session -----------------------------------------------------------


@pytest.fixture(scope="session")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The identity and scaler plugins, compiled once for the whole session (specs then name
    the built library, so no example pays for a compile or even a cache lookup)."""
    cache = tmp_path_factory.mktemp("plugin-cache")
    return {
        "identity": str(build_plugin("identity", PluginOptions(sources=["identity_plugin.cpp"]), TESTS / "plugins", cache)),
        "scaler": str(build_plugin("scaler", PluginOptions(sources=["scaler.cpp"]), ROOT / "examples" / "plugins", cache)),
    }


# ---- the reference: steps one by one --------------------------------------------------------


def topological(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps in an order where every step comes after the steps it reads from (the spec
    may list them in any order)."""
    label = {id(s): s.get("name") or s["model"] for s in steps}
    done: set[str] = {"request"}
    ordered: list[dict[str, Any]] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if all(ref.partition(".")[0] in done for ref in s.get("inputs", {}).values())]
        assert ready, "the generated steps form a cycle"
        for s in ready:
            ordered.append(s)
            done.add(label[id(s)])
            pending.remove(s)
    return ordered


async def reference(call: Callable[[str, Arrays], Any], pipelines: Mapping[str, Any], name: str, inputs: Arrays) -> Arrays:
    """What pipeline ``name`` must answer: each step's model called with ``call`` (an
    awaitable ``rt.infer``) in topological order; a step naming a pipeline recurses."""
    values: dict[str, np.ndarray] = {f"request.{k}": v for k, v in inputs.items()}
    for step in topological(pipelines[name]["steps"]):
        label = step.get("name") or step["model"]
        args = {tensor: values[ref] for tensor, ref in step.get("inputs", {}).items()}
        if step["model"] in pipelines:
            out = await reference(call, pipelines, step["model"], args)
        else:
            out = await call(step["model"], args)
        values.update({f"{label}.{k}": np.array(v, copy=True) for k, v in out.items()})
    return {k: values[ref] for k, ref in pipelines[name]["outputs"].items()}


def contributing(pipelines: Mapping[str, Any], name: str, prefix: str = "") -> set[str]:
    """Names of the steps, as the engine reports them (a nested pipeline's steps as
    ``<step>/<inner step>``), that pipeline ``name``'s outputs depend on, directly or not."""
    pipeline = pipelines[name]
    by_label = {s.get("name") or s["model"]: s for s in pipeline["steps"]}

    def needed_by(refs: list[str], inner_wanted: dict[str, set[str]]) -> None:
        frontier = list(refs)
        while frontier:
            label, _, tensor = frontier.pop().partition(".")
            if label == "request":
                continue
            step = by_label[label]
            if step["model"] in pipelines:  # only the inner outputs used count
                if tensor in inner_wanted.setdefault(label, set()):
                    continue
                inner_wanted[label].add(tensor)
                inner = pipelines[step["model"]]
                frontier.extend(step["inputs"][t] for t in _request_reads(pipelines, step["model"], [inner["outputs"][tensor]]))
            elif label not in needed:
                needed.add(label)
                frontier.extend(step.get("inputs", {}).values())

    needed: set[str] = set()
    wanted: dict[str, set[str]] = {}
    needed_by(list(pipeline["outputs"].values()), wanted)
    names = {prefix + label for label in needed}
    for label, tensors in wanted.items():
        inner_name = by_label[label]["model"]
        sub = {**pipelines, "_": {**pipelines[inner_name], "outputs": {t: pipelines[inner_name]["outputs"][t] for t in tensors}}}
        names |= contributing(sub, "_", prefix + label + "/")
    return names


def _request_reads(pipelines: Mapping[str, Any], name: str, refs: list[str]) -> set[str]:
    """The request tensors of pipeline ``name`` that the values ``refs`` depend on."""
    by_label = {s.get("name") or s["model"]: s for s in pipelines[name]["steps"]}
    reads: set[str] = set()
    seen: set[str] = set()
    frontier = list(refs)
    while frontier:
        label, _, tensor = frontier.pop().partition(".")
        if label == "request":
            reads.add(tensor)
        elif label not in seen:
            seen.add(label)
            frontier.extend(by_label[label]["inputs"].values())
    return reads


# ---- random DAGs ------------------------------------------------------------------------------


@dataclass
class Plan:
    """A generated spec (JSON, which is YAML) and what the test needs to drive it."""

    spec: Spec
    pipeline: str  # the outer pipeline
    request: list[str]  # the request tensors it takes
    width: int  # every tensor is float32 [rows, width]
    max_rows: int  # rows per request the smallest batching step accepts
    seed: int
    concurrency: int


def _tensor(name: str, width: int) -> dict[str, Any]:
    return {"name": name, "dtype": "float32", "shape": [-1, width]}


@st.composite
def model_specs(draw: st.DrawFn, width: int, plugins: dict[str, str]) -> tuple[Spec, list[str], list[str]]:
    """One step model: its spec table, its input names and its output names."""
    kind = draw(st.sampled_from(["identity", "python", "plugin-identity", "plugin-scaler"]))
    spec: Spec
    if kind == "identity":
        names = ["a", "b"][: draw(st.integers(1, 2))]
        spec = {"backend": "identity", "inputs": [_tensor(n, width) for n in names], "outputs": [_tensor(n, width) for n in names]}
        ins, outs = names, names
    elif kind == "python":
        ins = ["x0", "x1", "x2"][: draw(st.integers(1, 3))]
        outs = ["z"]
        config = {"inputs": ins, "output": "z", "scale": draw(st.sampled_from([0.5, 1.0, -2.0, 3.0])),
                  "shift": draw(st.sampled_from([0.0, 1.0, -0.25]))}
        spec = {"backend": "python", "inputs": [_tensor(n, width) for n in ins], "outputs": [_tensor("z", width)],
                "python": {"entrypoint": "pipeline_steps:Affine", "config": config}}
    elif kind == "plugin-identity":
        names = ["p", "q"][: draw(st.integers(1, 2))]
        mode = draw(st.sampled_from(["copy", "alloc", "adopt"]))
        spec = {"backend": "plugin", "inputs": [_tensor(n, width) for n in names], "outputs": [_tensor(n, width) for n in names],
                "plugin": {"library": plugins["identity"], "config": {"mode": mode}}}
        ins, outs = names, names
    else:
        ins, outs = ["x"], ["y"]
        config = {"mean": [float(i) - 1.0 for i in range(width)], "std": [0.5 + i for i in range(width)], "clip": 4.0}
        spec = {"backend": "plugin", "inputs": [_tensor("x", width)], "outputs": [_tensor("y", width)],
                "plugin": {"library": plugins["scaler"], "config": config}}
    spec["warmup"] = draw(st.booleans())
    spec["instances"] = draw(st.integers(1, 2))
    if draw(st.booleans()):
        spec["batching"] = {"max_batch_size": draw(st.integers(1, 16)), "max_queue_delay_us": draw(st.integers(0, 500)),
                            "adaptive": draw(st.booleans())}
    return spec, ins, outs


@st.composite
def dags(draw: st.DrawFn, plugins: dict[str, str]) -> Plan:
    """A spec with 2 to 6 steps over fresh models (a model may serve two steps), sources drawn
    from the request and earlier steps, 1 to 3 outputs, the steps listed in a random order;
    sometimes one step is itself a small pipeline."""
    width = draw(st.integers(1, 4))
    models: dict[str, Spec] = {}
    signatures: dict[str, tuple[list[str], list[str]]] = {}  # model or pipeline → (inputs, outputs)
    pipelines: dict[str, Any] = {}
    request_pool = ["r0", "r1", "r2"]

    def new_model() -> str:
        name = f"m{len(models)}"
        spec, ins, outs = draw(model_specs(width, plugins))
        models[name] = spec
        signatures[name] = (ins, outs)
        return name

    def build(n_steps: int, nested: str | None) -> dict[str, Any]:
        steps: list[dict[str, Any]] = []
        sources = [f"request.{r}" for r in request_pool]
        used_request: set[str] = set()
        nested_at = draw(st.integers(0, n_steps - 1)) if nested is not None else -1
        for i in range(n_steps):
            label = f"s{i}"
            if i == nested_at:
                assert nested is not None
                target = nested
            elif models and draw(st.integers(0, 4)) == 0:
                target = draw(st.sampled_from(sorted(models)))  # the same model as another step
            else:
                target = new_model()
            ins, outs = signatures[target]
            wiring = {t: draw(st.sampled_from(sources)) for t in ins}
            used_request.update(ref.partition(".")[2] for ref in wiring.values() if ref.startswith("request."))
            steps.append({"model": target, "name": label, "inputs": wiring})
            sources += [f"{label}.{o}" for o in outs]
        step_outputs = [s for s in sources if not s.startswith("request.")]
        passthrough = [f"request.{r}" for r in sorted(used_request)]
        n_out = draw(st.integers(1, 3))
        outputs = {f"o{k}": draw(st.sampled_from(step_outputs + passthrough if draw(st.integers(0, 5)) == 0 else step_outputs))
                   for k in range(n_out)}
        order = draw(st.permutations(steps))
        return {"steps": list(order), "outputs": outputs}

    nested: str | None = None
    if draw(st.integers(0, 2)) == 0:
        inner = build(draw(st.integers(1, 2)), None)
        pipelines["inner"] = inner
        used = sorted({ref.partition(".")[2] for s in inner["steps"] for ref in s["inputs"].values() if ref.startswith("request.")})
        signatures["inner"] = (used, list(inner["outputs"]))
        nested = "inner"
    outer = build(draw(st.integers(2, 6)), nested)
    pipelines["flow"] = outer

    def request_tensors(name: str) -> set[str]:
        return {ref.partition(".")[2] for s in pipelines[name]["steps"] for ref in s["inputs"].values() if ref.startswith("request.")}

    batch_limits = [m["batching"]["max_batch_size"] for m in models.values() if "batching" in m]
    spec = {"version": 1, "runtime": {"python_path": [str(TESTS)]}, "monitoring": {"log_level": "warning"},
            "models": models, "pipelines": pipelines}
    return Plan(spec=spec, pipeline="flow", request=sorted(request_tensors("flow")), width=width,
                max_rows=min([4, *batch_limits]), seed=draw(st.integers(0, 2**32 - 1)), concurrency=draw(st.integers(2, 8)))


def write_spec(spec: Spec, folder: Path) -> Path:
    """JSON is YAML: the spec file the runtime loads."""
    path = folder / "spec.yaml"
    path.write_text(json.dumps(spec, indent=1))
    return path


def random_inputs(rng: np.random.Generator, plan: Plan) -> Arrays:
    rows = int(rng.integers(1, plan.max_rows + 1))
    return {r: rng.standard_normal((rows, plan.width)).astype(np.float32) for r in plan.request}


def assert_same(got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for name, expected in want.items():
        actual = np.asarray(got[name])
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, (name, actual.dtype, actual.shape, expected.shape)
        np.testing.assert_array_equal(actual, expected, err_msg=f"output {name!r}")


async def run_plan(plan: Plan, folder: Path) -> None:
    rng = np.random.default_rng(plan.seed)
    pipelines = plan.spec["pipelines"]
    async with Runtime.from_spec(write_spec(plan.spec, folder), environ={}) as rt:
        assert rt.model_names == [*plan.spec["models"], *pipelines]
        assert rt.pipeline_names == list(pipelines)
        sig = rt.signature(plan.pipeline)
        assert sig.inputs is not None and sorted(t.name for t in sig.inputs) == plan.request
        assert all(t.dtype == np.float32 and t.shape == (-1, plan.width) for t in sig.inputs)
        assert sig.outputs is not None and sorted(t.name for t in sig.outputs) == sorted(pipelines[plan.pipeline]["outputs"])
        assert all(t.dtype == np.float32 for t in sig.outputs)

        one = random_inputs(rng, plan)
        got = await rt.infer(plan.pipeline, one)
        assert_same(got, await reference(rt.infer, pipelines, plan.pipeline, one))

        # Several at once: a step's batch mixes rows of different pipeline requests.
        many = [random_inputs(rng, plan) for _ in range(plan.concurrency)]
        answers = await asyncio.gather(*(rt.infer(plan.pipeline, x) for x in many))
        for x, answer in zip(many, answers):
            assert_same(answer, await reference(rt.infer, pipelines, plan.pipeline, x))

        requests = 1 + plan.concurrency
        stats = rt.stats(plan.pipeline)
        assert (stats.submitted, stats.succeeded, stats.in_flight, stats.queue_depth) == (requests, requests, 0, 0)
        step_stats = rt.step_stats(plan.pipeline)
        assert contributing(pipelines, plan.pipeline) <= set(step_stats)
        for label in contributing(pipelines, plan.pipeline):
            assert (step_stats[label].submitted, step_stats[label].succeeded, step_stats[label].failed) == (requests, requests, 0), label


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_pipeline_answers_what_its_steps_answer_one_by_one(plugins: dict[str, str], data: st.DataObject) -> None:
    plan = data.draw(dags(plugins))
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run_plan(plan, Path(folder)))


# ---- hand-written pipelines -------------------------------------------------------------------

X1 = _tensor("x", 1)


def identity(name: str, batching: Mapping[str, Any] | None = None, **extra: Any) -> Spec:
    spec: Spec = {"backend": "identity", "inputs": [X1], "outputs": [X1], **extra}
    if batching is not None:
        spec["batching"] = dict(batching)
    return spec


def python(entrypoint: str, config: Mapping[str, Any], batching: Mapping[str, Any] | None = None, *, out: str = "y", **extra: Any) -> Spec:
    spec: Spec = {"backend": "python", "warmup": False, "inputs": [X1], "outputs": [_tensor(out, 1)],
                  "python": {"entrypoint": f"pipeline_steps:{entrypoint}", "config": dict(config)}, **extra}
    if batching is not None:
        spec["batching"] = dict(batching)
    return spec


def chain_spec(models: Mapping[str, Spec], chain: list[tuple[str, str, str]], output: str) -> Spec:
    """A spec whose pipeline ``flow`` runs ``chain``: (step, model, source of its input x)."""
    steps = [{"name": step, "model": model, "inputs": {"x": source}} for step, model, source in chain]
    return {"version": 1, "runtime": {"python_path": [str(TESTS)]}, "monitoring": {"log_level": "warning"},
            "models": dict(models), "pipelines": {"flow": {"steps": steps, "outputs": {"out": output}}}}


@contextlib.asynccontextmanager
async def serving(spec: Spec, folder: Path) -> AsyncIterator[Runtime]:
    """A running runtime for ``spec``; every gate opens before it stops, even on failure."""
    async with Runtime.from_spec(write_spec(spec, folder), environ={}) as rt:
        try:
            yield rt
        finally:
            ps.open_all()


def col(*values: float) -> np.ndarray:
    return np.array(values, np.float32).reshape(-1, 1)


async def wait_until(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def settled(rt: Runtime, names: list[str]) -> None:
    """Waits until no model or pipeline in ``names`` holds a request (nothing stranded)."""
    await wait_until(lambda: all(rt.stats(n).in_flight == 0 and rt.stats(n).queue_depth == 0 for n in names))


async def test_a_failing_step_names_step_and_model_and_spares_the_others(tmp_path: Path) -> None:
    """A diamond: the marked request fails at ``check`` (model ``picky``); the side branch
    it also took finishes without completing it twice; the join never runs for it; the other
    requests, batched with it at the other steps, all succeed."""
    spec = chain_spec({
        "pre": identity("pre", {"max_batch_size": 16, "max_queue_delay_us": 2000, "adaptive": False}),
        "picky": python("Picky", {"marker": -999.0}),  # unbatched: the marked request fails alone
        "side": python("Affine", {"inputs": ["x"], "output": "y", "scale": 2.0, "shift": 0.0}, {"max_batch_size": 16}),
        "join": {**python("Affine", {"inputs": ["x", "w"], "output": "y", "scale": 1.0, "shift": 0.5}, {"max_batch_size": 16}),
                 "inputs": [X1, _tensor("w", 1)]},
    }, [("pre", "pre", "request.x"), ("check", "picky", "pre.x"), ("side", "side", "pre.x")], "join.y")
    spec["pipelines"]["flow"]["steps"].append({"name": "join", "model": "join", "inputs": {"x": "check.y", "w": "side.y"}})
    async with serving(spec, tmp_path) as rt:
        xs = [col(float(i), float(i) + 0.5) for i in range(7)] + [col(3.0, -999.0)]
        results = await asyncio.gather(*(rt.infer("flow", {"x": x}) for x in xs), return_exceptions=True)
        for x, result in zip(xs[:-1], results[:-1]):
            assert not isinstance(result, BaseException), result
            np.testing.assert_array_equal(result["out"], x + 2 * x + np.float32(0.5))
        error = results[-1]
        assert isinstance(error, BackendError), repr(error)
        message = str(error)
        assert "step 'check'" in message and "model 'picky'" in message and "marked input -999 refused" in message
        await settled(rt, ["flow", "pre", "picky", "side", "join"])
        stats, steps = rt.stats("flow"), rt.step_stats("flow")
        assert (stats.submitted, stats.succeeded, stats.failed_backend) == (8, 7, 1)
        assert (steps["check"].submitted, steps["check"].succeeded, steps["check"].failed) == (8, 7, 1)
        # The failed request's side branch either finished or was cancelled while queued.
        assert steps["side"].submitted == 8 and steps["side"].succeeded + steps["side"].failed == 8
        assert steps["join"].submitted == 7  # nothing runs downstream of a failed step
        again = await rt.infer("flow", {"x": col(1.0)})  # still serving
        np.testing.assert_array_equal(again["out"], col(3.5))


async def test_a_deadline_fires_on_time_while_queued_at_an_inner_step(tmp_path: Path) -> None:
    ps.reset("deadline")
    spec = chain_spec({"pre": identity("pre"), "hold": python("Gated", {"name": "deadline"}, {"max_batch_size": 1}), "post": identity("post")},
                      [("pre", "pre", "request.x"), ("hold", "hold", "pre.x"), ("post", "post", "hold.y")], "post.x")
    async with serving(spec, tmp_path) as rt:
        running = asyncio.ensure_future(rt.infer("flow", {"x": col(1.0)}))
        await asyncio.to_thread(ps.entered("deadline").wait, 10)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError, match="step 'hold'") as caught:
            await asyncio.wait_for(rt.infer("flow", {"x": col(2.0)}, timeout_ms=100), 5)
        elapsed = time.monotonic() - started
        assert isinstance(caught.value, TimeoutError)
        assert 0.09 <= elapsed < 0.4, f"the 100 ms deadline fired after {elapsed * 1000:.0f} ms"
        assert not running.done()
        ps.gate("deadline").set()
        np.testing.assert_array_equal((await running)["out"], col(1.0))
        assert ps.SEEN["deadline"] == [1.0]  # the expired request never ran at the held step
        await settled(rt, ["flow", "pre", "hold", "post"])
        assert rt.stats("flow").timed_out == 1
        assert rt.step_stats("flow")["post"].submitted == 1


async def test_the_deadline_runs_from_submission_across_steps(tmp_path: Path) -> None:
    """300 ms for the whole pipeline: 200 ms spent in the first step count, so the request
    fails at ~300 ms while queued at the second step, not 300 ms after reaching it."""
    ps.reset("across")
    spec = chain_spec({"slow": python("Slow", {"seconds": 0.2}), "hold": python("Gated", {"name": "across"}, {"max_batch_size": 1})},
                      [("slow", "slow", "request.x"), ("hold", "hold", "slow.y")], "hold.y")
    async with serving(spec, tmp_path) as rt:
        blocker = asyncio.ensure_future(rt.infer("hold", {"x": col(0.0)}))  # occupies the second step's model
        await asyncio.to_thread(ps.entered("across").wait, 10)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await asyncio.wait_for(rt.infer("flow", {"x": col(1.0)}, timeout_ms=300), 5)
        elapsed = time.monotonic() - started
        assert 0.28 <= elapsed < 0.6, f"the 300 ms deadline fired after {elapsed * 1000:.0f} ms"
        ps.gate("across").set()
        await blocker
        assert ps.SEEN["across"] == [0.0]
        await settled(rt, ["flow", "slow", "hold"])


async def test_priority_carries_through_to_a_busy_inner_step(tmp_path: Path) -> None:
    """The first step has one priority level (priority clamps to 0 there); the busy step has
    three: requests queued behind its blocker run by priority, then in arrival order."""
    ps.reset("prio")
    spec = chain_spec({"pre": identity("pre", {"max_batch_size": 4}),
                       "hold": python("Gated", {"name": "prio"}, {"max_batch_size": 1, "priority_levels": 3}),
                       "post": identity("post")},
                      [("pre", "pre", "request.x"), ("hold", "hold", "pre.x"), ("post", "post", "hold.y")], "post.x")
    async with serving(spec, tmp_path) as rt:
        done: list[float] = []

        def request(value: float, priority: int) -> asyncio.Future[Any]:
            fut = asyncio.ensure_future(rt.infer("flow", {"x": col(value)}, priority=priority))
            fut.add_done_callback(lambda _: done.append(value))
            return fut

        first = request(0, 0)
        await asyncio.to_thread(ps.entered("prio").wait, 10)
        rest = []
        for value, priority in [(1, 0), (2, 2), (3, 1), (4, 2), (5, 0)]:
            rest.append(request(value, priority))
            await asyncio.sleep(0.01)  # arrival order is the order written here
        await wait_until(lambda: rt.stats("hold").queue_depth == 5)
        ps.gate("prio").set()
        outs = await asyncio.gather(first, *rest)
        assert [float(o["out"][0, 0]) for o in outs] == [0, 1, 2, 3, 4, 5]
        assert ps.SEEN["prio"] == [0.0, 2.0, 4.0, 3.0, 1.0, 5.0]
        assert done.index(2) < done.index(1) and done.index(4) < done.index(3) < done.index(5)
        with pytest.raises(InvalidInputError, match="priority"):  # the pipeline has 3 levels: its steps' most
            await rt.infer("flow", {"x": col(9.0)}, priority=3)


async def test_a_cancelled_pipeline_request_never_runs_its_queued_steps(tmp_path: Path) -> None:
    ps.reset("cancel")
    spec = chain_spec({"pre": identity("pre"), "hold": python("Gated", {"name": "cancel"}, {"max_batch_size": 1}), "post": identity("post")},
                      [("pre", "pre", "request.x"), ("hold", "hold", "pre.x"), ("post", "post", "hold.y")], "post.x")
    async with serving(spec, tmp_path) as rt:
        running = asyncio.ensure_future(rt.infer("flow", {"x": col(1.0)}))
        await asyncio.to_thread(ps.entered("cancel").wait, 10)
        queued = asyncio.ensure_future(rt.infer("flow", {"x": col(2.0)}))
        await wait_until(lambda: rt.stats("hold").queue_depth == 1)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        ps.gate("cancel").set()
        np.testing.assert_array_equal((await running)["out"], col(1.0))
        await settled(rt, ["flow", "pre", "hold", "post"])
        assert ps.SEEN["cancel"] == [1.0]
        assert rt.stats("flow").cancelled == 1
        assert rt.step_stats("flow")["post"].submitted == 1


async def test_a_full_inner_queue_fails_fast_and_strands_nothing(tmp_path: Path) -> None:
    """The held step's queue holds 2; a pipeline request finding it full fails at once with
    QueueFullError -- while its other branch (1 s) is still running -- and every count
    returns to zero once the rest has drained."""
    ps.reset("full")
    spec = chain_spec({
        "pre": identity("pre"),
        "hold": python("Gated", {"name": "full"}, {"max_batch_size": 1, "max_queue_size": 2}),
        "side": python("Slow", {"seconds": 1.0}, instances=2),
        "join": {**python("Affine", {"inputs": ["x", "w"], "output": "y"}), "inputs": [X1, _tensor("w", 1)]},
    }, [("pre", "pre", "request.x"), ("hold", "hold", "pre.x"), ("side", "side", "pre.x")], "join.y")
    spec["pipelines"]["flow"]["steps"].append({"name": "join", "model": "join", "inputs": {"x": "hold.y", "w": "side.y"}})
    async with serving(spec, tmp_path) as rt:
        blocker = asyncio.ensure_future(rt.infer("hold", {"x": col(0.0)}))
        await asyncio.to_thread(ps.entered("full").wait, 10)
        queued = [asyncio.ensure_future(rt.infer("flow", {"x": col(v)})) for v in (1.0, 2.0)]
        await wait_until(lambda: rt.stats("hold").queue_depth == 2)
        started = time.monotonic()
        with pytest.raises(QueueFullError, match="step 'hold'"):
            await asyncio.wait_for(rt.infer("flow", {"x": col(3.0)}), 5)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, f"the full queue was reported after {elapsed * 1000:.0f} ms (the side branch takes 1 s)"
        ps.gate("full").set()
        await blocker
        for value, fut in zip((1.0, 2.0), queued):
            np.testing.assert_array_equal((await fut)["out"], col(2 * value))
        await settled(rt, ["flow", "pre", "hold", "side", "join"])
        stats = rt.stats("flow")
        assert (stats.submitted, stats.succeeded, stats.rejected_queue_full) == (3, 2, 1)
        assert rt.stats("hold").rejected_queue_full == 1
        assert rt.step_stats("flow")["join"].submitted == 2
        assert 3.0 not in ps.SEEN["full"]


async def test_a_swapped_step_model_serves_new_requests_while_admitted_ones_finish_on_the_old(tmp_path: Path) -> None:
    """``ver`` (y = x + version) is swapped while one request runs inside it and two wait in
    its queue: those three finish on version 1, requests after the swap get version 2. Then
    swaps under 16 clients: no request fails, every answer is x + (a version)."""
    ps.reset("swap")
    version_file = tmp_path / "version"
    version_file.write_text("1")
    spec = chain_spec({
        "pre": identity("pre", {"max_batch_size": 8}),
        "ver": python("Versioned", {"version_file": str(version_file), "gate": "swap"}, {"max_batch_size": 1}),
        "post": identity("post"),
    }, [("pre", "pre", "request.x"), ("ver", "ver", "pre.x"), ("post", "post", "ver.y")], "post.x")
    async with serving(spec, tmp_path) as rt:
        before = [asyncio.ensure_future(rt.infer("flow", {"x": col(float(v))})) for v in range(3)]
        await asyncio.to_thread(ps.entered("swap").wait, 10)
        await wait_until(lambda: rt.stats("ver").queue_depth == 2)
        version_file.write_text("2")
        await rt.replace_model("ver")
        after = [asyncio.ensure_future(rt.infer("flow", {"x": col(float(v))})) for v in range(10, 13)]
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in before + after)
        ps.gate("swap").set()
        for v, fut in zip(range(3), before):
            np.testing.assert_array_equal((await fut)["out"], col(v + 1.0))
        for v, fut in zip(range(10, 13), after):
            np.testing.assert_array_equal((await fut)["out"], col(v + 2.0))

        answers: list[float] = []
        stop = asyncio.Event()

        async def client(i: int) -> None:
            while not stop.is_set():
                answers.append(float((await rt.infer("flow", {"x": col(float(i))}))["out"][0, 0]) - i)

        clients = [asyncio.ensure_future(client(i)) for i in range(16)]
        for version in (3, 4):
            await asyncio.sleep(0.15)
            version_file.write_text(str(version))
            await rt.replace_model("ver")
        await asyncio.sleep(0.15)
        stop.set()
        await asyncio.gather(*clients)  # any failure raises here
        assert len(answers) > 50
        assert set(answers) <= {2.0, 3.0, 4.0} and 4.0 in answers, sorted(set(answers))
        await settled(rt, ["flow", "pre", "ver", "post"])


async def test_a_swap_never_mixes_versions_within_one_request(tmp_path: Path) -> None:
    """``ver`` serves two steps of one pipeline (y = x + version each) and is swapped while
    requests wait between them: each request must be computed by one version (x + 2 or
    x + 4), never by both (x + 3) -- the registry's promote is atomic per request."""
    ps.reset("between")
    version_file = tmp_path / "version"
    version_file.write_text("1")
    spec = chain_spec({
        "ver": python("Versioned", {"version_file": str(version_file)}, {"max_batch_size": 4}),
        "hold": python("Gated", {"name": "between"}, {"max_batch_size": 8}),
    }, [("first", "ver", "request.x"), ("hold", "hold", "first.y"), ("second", "ver", "hold.y")], "second.y")
    async with serving(spec, tmp_path) as rt:
        before = [asyncio.ensure_future(rt.infer("flow", {"x": col(float(v))})) for v in range(4)]
        await wait_until(lambda: rt.step_stats("flow")["first"].succeeded == 4)  # all held between the two steps
        version_file.write_text("2")
        await rt.replace_model("ver")
        ps.gate("between").set()
        got = [float((await fut)["out"][0, 0]) - v for v, fut in enumerate(before)]
        assert got == [2.0] * 4, got
        np.testing.assert_array_equal((await rt.infer("flow", {"x": col(0.0)}))["out"], col(4.0))

        # Swaps under 32 clients: every answer is x + 2 * (one version), none fails.
        answers: list[float] = []
        stop = asyncio.Event()

        async def client(i: int) -> None:
            while not stop.is_set():
                answers.append(float((await rt.infer("flow", {"x": col(float(i))}))["out"][0, 0]) - i)

        clients = [asyncio.ensure_future(client(i)) for i in range(32)]
        for version in range(3, 7):
            await asyncio.sleep(0.05)
            version_file.write_text(str(version))
            await rt.replace_model("ver")
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*clients)
        assert len(answers) > 50
        assert {a / 2 for a in answers} <= {2.0, 3.0, 4.0, 5.0, 6.0} and 12.0 in answers, sorted(set(answers))
        await settled(rt, ["flow", "ver", "hold"])


@pytest.mark.parametrize("shape", ["chain", "model-twice"])
async def test_many_concurrent_callers_each_get_their_own_answer(tmp_path: Path, shape: str) -> None:
    """48 callers (more than a batch) each loop on requests carrying their own number: every
    answer is the caller's. (Answers from batches finished while the event loop was still
    admitting a burst once went to other callers: a freed batch's address was reused.)"""
    steps = [("s1", "a", "request.x"), ("s2", "b", "s1.x")] + ([("s3", "a", "s2.x")] if shape == "model-twice" else [])
    spec = chain_spec({m: identity(m, {"max_batch_size": 8, "max_queue_delay_us": 100}) for m in ("a", "b")}, steps, f"{steps[-1][0]}.x")
    async with serving(spec, tmp_path) as rt:
        wrong: list[tuple[int, float]] = []

        async def caller(i: int) -> None:
            for _ in range(150):
                out = await rt.infer("flow", {"x": col(float(i))})
                if out["out"][0, 0] != i:
                    wrong.append((i, float(out["out"][0, 0])))

        await asyncio.gather(*(caller(i) for i in range(48)))
        assert wrong == [], f"{len(wrong)} answers went to the wrong caller, e.g. {wrong[:5]}"
        assert rt.stats("flow").succeeded == 48 * 150


async def test_a_nested_pipeline_runs_as_a_step(tmp_path: Path) -> None:
    spec = chain_spec({
        "double": python("Affine", {"inputs": ["x"], "output": "y", "scale": 2.0}, {"max_batch_size": 8}),
        "inc": python("Affine", {"inputs": ["x"], "output": "y", "shift": 1.0}),
    }, [("a", "double", "request.x"), ("b", "inc", "a.y")], "b.y")
    spec["pipelines"] = {"inner": spec["pipelines"]["flow"],
                         "outer": {"steps": [{"name": "twice", "model": "inner", "inputs": {"x": "request.v"}},
                                             {"name": "again", "model": "inner", "inputs": {"x": "twice.out"}},
                                             {"name": "last", "model": "double", "inputs": {"x": "again.out"}}],
                                   "outputs": {"result": "last.y", "mid": "twice.out"}}}
    async with serving(spec, tmp_path) as rt:
        assert rt.pipeline_names == ["inner", "outer"]
        assert rt.model_names == ["double", "inc", "inner", "outer"]
        sig = rt.signature("outer")
        assert sig.inputs is not None and [(t.name, t.dtype, t.shape) for t in sig.inputs] == [("v", np.dtype(np.float32), (-1, 1))]
        assert sig.outputs is not None and sorted(t.name for t in sig.outputs) == ["mid", "result"]
        v = col(0.0, 1.0, -2.5)
        out = await rt.infer("outer", {"v": v})
        np.testing.assert_array_equal(out["mid"], 2 * v + 1)
        np.testing.assert_array_equal(out["result"], 2 * (2 * (2 * v + 1) + 1))
        assert_same(out, await reference(rt.infer, spec["pipelines"], "outer", {"v": v}))
        assert rt.stats("outer").succeeded == 1
        assert set(rt.step_stats("outer")) == {"twice/a", "twice/b", "again/a", "again/b", "last"}


def test_sync_runtime_serves_pipelines(tmp_path: Path) -> None:
    spec = chain_spec({"pre": identity("pre", {"max_batch_size": 4}),
                       "aff": python("Affine", {"inputs": ["x"], "output": "y", "scale": 3.0, "shift": -1.0}, {"max_batch_size": 4})},
                      [("pre", "pre", "request.x"), ("aff", "aff", "pre.x")], "aff.y")
    with SyncRuntime.from_spec(write_spec(spec, tmp_path), environ={}) as rt:
        x = col(1.0, 2.0)
        np.testing.assert_array_equal(rt.infer("flow", {"x": x})["out"], 3 * x - 1)
        assert "flow" in rt.model_names and rt.pipeline_names == ["flow"]
        assert rt.stats("flow").succeeded == 1


async def test_bad_pipeline_inputs_are_refused_before_any_step_runs(tmp_path: Path) -> None:
    spec = chain_spec({"pre": identity("pre", {"max_batch_size": 8}), "aff": python("Affine", {"inputs": ["x"], "output": "y"}, {"max_batch_size": 2})},
                      [("pre", "pre", "request.x"), ("aff", "aff", "pre.x")], "aff.y")
    async with serving(spec, tmp_path) as rt:
        before = {m: rt.stats(m).submitted for m in ("pre", "aff")}  # warmup counts
        with pytest.raises(InvalidInputError, match="missing input.*'x'"):
            await rt.infer("flow", {"y": col(1.0)})  # no input x
        with pytest.raises(InvalidInputError):
            await rt.infer("flow", {"x": np.ones((1, 1), np.float64)})  # wrong dtype
        with pytest.raises(InvalidInputError):
            await rt.infer("flow", {"x": np.ones((1, 2), np.float32)})  # wrong shape
        assert rt.signature("flow").max_batch_size == 2  # the smallest of its batching steps'
        with pytest.raises(InvalidInputError, match="max_batch_size"):
            await rt.infer("flow", {"x": col(1.0, 2.0, 3.0)})  # more rows than aff's max_batch_size
        await settled(rt, ["flow", "pre", "aff"])
        assert {m: rt.stats(m).submitted for m in ("pre", "aff")} == before
        assert rt.stats("flow").failed_invalid == 4
        np.testing.assert_array_equal((await rt.infer("flow", {"x": col(1.0, 2.0)}))["out"], col(1.0, 2.0))


async def test_independent_branches_run_at_once(tmp_path: Path) -> None:
    """Two 0.3 s steps on separate models, both fed by the request, then a join: the request
    takes about one step's time, not two."""
    spec = chain_spec({
        "left": python("Slow", {"seconds": 0.3}),
        "right": python("Slow", {"seconds": 0.3}),
        "join": {**python("Affine", {"inputs": ["x", "w"], "output": "y", "scale": 2.0}), "inputs": [X1, _tensor("w", 1)]},
    }, [("left", "left", "request.x"), ("right", "right", "request.x")], "join.y")
    spec["pipelines"]["flow"]["steps"].append({"name": "join", "model": "join", "inputs": {"x": "left.y", "w": "right.y"}})
    async with serving(spec, tmp_path) as rt:
        started = time.monotonic()
        out = await rt.infer("flow", {"x": col(1.0, 2.0)})
        elapsed = time.monotonic() - started
        np.testing.assert_array_equal(out["out"], col(3.0, 6.0))
        assert 0.29 <= elapsed < 0.5, f"two 0.3 s branches took {elapsed * 1000:.0f} ms together"


async def test_stop_drains_pipeline_requests_through_their_later_steps(tmp_path: Path) -> None:
    """Requests admitted before stop() finish through every step (the later steps' models
    stay open for them); the stop reports a clean drain."""
    ps.reset("drain")
    spec = chain_spec({"hold": python("Gated", {"name": "drain"}, {"max_batch_size": 2}),
                       "post": python("Affine", {"inputs": ["x"], "output": "y", "shift": 10.0}, {"max_batch_size": 4})},
                      [("hold", "hold", "request.x"), ("post", "post", "hold.y")], "post.y")
    rt = await Runtime.from_spec(write_spec(spec, tmp_path), environ={}).start()
    try:
        inflight = [asyncio.ensure_future(rt.infer("flow", {"x": col(float(v))})) for v in range(5)]
        await asyncio.to_thread(ps.entered("drain").wait, 10)
        stopping = asyncio.ensure_future(rt.stop(timeout_s=10))
        await asyncio.sleep(0.1)
        assert not stopping.done()
        ps.gate("drain").set()
        assert await asyncio.wait_for(stopping, 10) == 0
        for v, fut in enumerate(inflight):
            np.testing.assert_array_equal((await fut)["out"], col(v + 10.0))
    finally:
        ps.open_all()
        await rt.stop()


async def test_a_pipeline_whose_step_model_failed_to_load_is_unavailable(tmp_path: Path) -> None:
    spec = chain_spec({"pre": identity("pre"), "broken": python("NoSuchClass", {})},
                      [("pre", "pre", "request.x"), ("broken", "broken", "pre.x")], "broken.y")
    spec["server"] = {"exit_on_error": False}
    async with serving(spec, tmp_path) as rt:
        assert rt.model_names == ["pre"] and rt.pipeline_names == []
        assert set(rt.failed_models) == {"broken", "flow"}
        assert "broken" in rt.failed_models["flow"]
        with pytest.raises(UnavailableError, match="pipeline 'flow'"):
            await rt.infer("flow", {"x": col(1.0)})
        np.testing.assert_array_equal((await rt.infer("pre", {"x": col(1.0)}))["x"], col(1.0))  # the rest serves


async def test_a_storm_of_mixed_outcomes_strands_nothing(tmp_path: Path) -> None:
    """Waves of requests through a diamond whose inner queues are small: successes, full
    queues at inner steps, deadlines, batches failed by a marked row, callers cancelling.
    Every answer that arrives is right, every error names its step, the pipeline's counts
    add up to what was submitted, and nothing stays in flight or queued anywhere."""
    spec = chain_spec({
        "pre": identity("pre", {"max_batch_size": 16, "max_queue_delay_us": 200}),
        "mid": python("Picky", {"marker": -999.0}, {"max_batch_size": 4, "max_queue_size": 8}, instances=2),
        "side": python("Affine", {"inputs": ["x"], "output": "y", "scale": 2.0}, {"max_batch_size": 8, "max_queue_size": 16}),
        "join": {**python("Affine", {"inputs": ["x", "w"], "output": "y"}, {"max_batch_size": 16}), "inputs": [X1, _tensor("w", 1)]},
    }, [("pre", "pre", "request.x"), ("mid", "mid", "pre.x"), ("side", "side", "pre.x")], "join.y")
    spec["pipelines"]["flow"]["steps"].append({"name": "join", "model": "join", "inputs": {"x": "mid.y", "w": "side.y"}})
    rng = np.random.default_rng(7)
    outcomes: dict[str, int] = {}
    async with serving(spec, tmp_path) as rt:
        for _ in range(6):
            futs = []
            for i in range(int(rng.integers(20, 160))):
                x = np.full((int(rng.integers(1, 5)), 1), -999.0 if rng.random() < 0.05 else float(i), np.float32)
                options: dict[str, Any] = {"timeout_ms": float(rng.choice([0.5, 2.0, 20.0]))} if rng.random() < 0.2 else {}
                futs.append((x, asyncio.ensure_future(rt.infer("flow", {"x": x}, **options))))
            await asyncio.sleep(0)  # every task has submitted its request
            for k in rng.choice(len(futs), size=len(futs) // 20, replace=False):
                futs[int(k)][1].cancel()
            for x, fut in futs:
                try:
                    np.testing.assert_array_equal((await fut)["out"], 3 * x)
                    key = "ok"
                except asyncio.CancelledError:
                    key = "cancelled"
                except QueueFullError as exc:
                    assert "step '" in str(exc), exc
                    key = "full"
                except DeadlineExceededError as exc:
                    assert "step '" in str(exc), exc
                    key = "deadline"
                except BackendError as exc:
                    assert "step 'mid'" in str(exc) and "marked input" in str(exc), exc  # a marked row fails its whole batch
                    key = "failed"
                outcomes[key] = outcomes.get(key, 0) + 1
        await settled(rt, ["flow", "pre", "mid", "side", "join"])
        stats = rt.stats("flow")
        assert stats.submitted == sum(outcomes.values())
        assert stats.succeeded + stats.rejected_queue_full + stats.timed_out + stats.failed_backend + stats.cancelled == stats.submitted
        # A caller that cancelled may have been too late to stop its request.
        assert outcomes.get("ok", 0) <= stats.succeeded <= outcomes.get("ok", 0) + outcomes.get("cancelled", 0)
        print(f"\nstorm outcomes seen by callers: {outcomes}")
        assert outcomes.get("ok", 0) > 0 and outcomes.get("full", 0) > 0, outcomes
        for name, step in rt.step_stats("flow").items():
            assert step.submitted == step.succeeded + step.failed, name


async def test_answers_never_alias_the_callers_inputs(tmp_path: Path) -> None:
    """The caller may reuse its input arrays once answered: a pipeline output taken from the
    request itself, or from a step that got the request's memory, is the engine's own."""
    spec = chain_spec({"echo": identity("echo", {"max_batch_size": 8}),
                       "plug": python("Affine", {"inputs": ["x"], "output": "y"}, {"max_batch_size": 8})},
                      [("echo", "echo", "request.x"), ("plug", "plug", "echo.x")], "plug.y")
    spec["pipelines"]["flow"]["outputs"] = {"same": "request.x", "echoed": "echo.x", "out": "plug.y"}
    async with serving(spec, tmp_path) as rt:
        xs = [col(float(i), float(i) + 0.5) for i in range(6)]
        outs = await asyncio.gather(*(rt.infer("flow", {"x": x}) for x in xs))
        expected = [x.copy() for x in xs]
        for x in xs:
            x[:] = -1.0  # the caller reuses its buffers
        for want, out in zip(expected, outs):
            for name in ("same", "echoed", "out"):
                np.testing.assert_array_equal(out[name], want, err_msg=name)


def add_model(path: Path, output: str, add: float) -> Path:
    """An ONNX model ``output = x + add`` over float32 [N, 1]."""
    from onnx import TensorProto, helper, save

    const = helper.make_tensor("c", TensorProto.FLOAT, [1], [add])
    graph = helper.make_graph([helper.make_node("Add", ["x", "c"], [output])], "add",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", 1])], initializer=[const])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


async def test_a_swap_that_would_break_a_pipeline_is_refused(tmp_path: Path) -> None:
    """Version 2 of ``m`` names its output ``z``; the pipeline reads ``m.y``. Swapping it in
    must fail like any failed swap (the old version keeps serving), not break the pipeline."""
    from infer_runtime.assemble import Artifact

    spec = chain_spec({"m": {"backend": "onnxruntime", "path": str(add_model(tmp_path / "m1.onnx", "y", 1.0)), "batching": {"max_batch_size": 8}},
                       "post": {"backend": "identity", "inputs": [_tensor("y", 1)], "outputs": [_tensor("y", 1)]}},
                      [("m", "m", "request.x")], "post.y")
    spec["pipelines"]["flow"]["steps"].append({"name": "post", "model": "post", "inputs": {"y": "m.y"}})
    async with serving(spec, tmp_path) as rt:
        np.testing.assert_array_equal((await rt.infer("flow", {"x": col(1.0)}))["out"], col(2.0))
        with pytest.raises(Exception, match="flow"):
            await rt.replace_model("m", Artifact(add_model(tmp_path / "m2.onnx", "z", 2.0), "2"))
        assert rt.version("m") == "1"
        np.testing.assert_array_equal((await rt.infer("flow", {"x": col(1.0)}))["out"], col(2.0))

"""Cross-language: the C++ batcher (on a virtual clock) and the Python reference agree
exactly on which batches form, when, why, and which requests expire or are rejected, with
the fixed window and with the adaptive queue delay; and the adaptive policy's promises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from infer_runtime._native import check, ffi, lib
from reference.batching import (
    BATCH,
    DELAY,
    EARLY,
    EXPIRED,
    FULL,
    PREFERRED,
    REJECTED,
    CostModel,
    Policy,
    SimRequest,
    simulate,
)


def c_simulate(policy: Policy, requests: list[SimRequest], instances: int, base_ns: int, per_row_ns: int,
               host_ns: int = 0) -> list[tuple[int, int, int, int, int, int]]:
    cfg = ffi.new("ir_model_config*")
    cfg.struct_size = ffi.sizeof("ir_model_config")
    cfg.batching = int(policy.batching)
    cfg.max_batch_size = policy.max_batch_size
    cfg.max_queue_delay_us = policy.max_queue_delay_ns // 1000
    preferred = ffi.new("int64_t[]", list(policy.preferred) or [0])
    cfg.preferred_batch_sizes = preferred
    cfg.n_preferred = len(policy.preferred)
    cfg.max_queue_size = policy.max_queue_size
    cfg.priority_levels = policy.priority_levels
    cfg.adaptive = int(policy.adaptive)
    reqs = ffi.new("ir_sim_request[]", max(len(requests), 1))
    for i, r in enumerate(requests):
        reqs[i] = {"id": r.id, "arrival_ns": r.arrival_ns, "rows": r.rows, "priority": r.priority, "deadline_ns": r.deadline_ns, "shape_class": r.shape_class}
    capacity = 4 * len(requests) + 4
    out = ffi.new("ir_sim_event[]", capacity)
    n_out = ffi.new("size_t*")
    if host_ns:
        check(lib.ir_batcher_simulate_host(cfg, reqs, len(requests), instances, base_ns, per_row_ns, host_ns, out, capacity, n_out))
    else:
        check(lib.ir_batcher_simulate(cfg, reqs, len(requests), instances, base_ns, per_row_ns, out, capacity, n_out))
    assert n_out[0] <= capacity
    return [(e.time_ns, e.kind, e.request_id, e.batch, e.reason, e.instance) for e in (out[i] for i in range(n_out[0]))]


def arrival_times(draw: st.DrawFn, n: int) -> list[int]:
    """Uniform scatter, or a stream: steady gaps with bursts (same instant) and pauses, which
    is what moves the adaptive policy's estimates."""
    if draw(st.booleans()):
        return [draw(st.integers(0, 400_000)) for _ in range(n)]
    times, t = [], draw(st.integers(0, 1_000))
    gap = draw(st.sampled_from([500, 5_000, 10_000, 20_000, 40_000, 80_000]))
    for _ in range(n):
        t += draw(st.sampled_from([0, gap, gap, gap, 2 * gap, 10 * gap]))
        times.append(t)
    return times


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Policy, list[SimRequest], int, int, int, int]:
    batching = draw(st.booleans())
    max_batch = draw(st.integers(1, 16))
    preferred = tuple(sorted(draw(st.sets(st.integers(1, max_batch), max_size=3)))) if batching else ()
    policy = Policy(
        batching=batching,
        max_batch_size=max_batch if batching else 1,
        max_queue_delay_ns=draw(st.sampled_from([0, 1_000, 50_000, 200_000])),
        preferred=preferred,
        max_queue_size=draw(st.integers(1, 40)),
        priority_levels=draw(st.integers(1, 3)),
        adaptive=draw(st.booleans()),
    )
    n = draw(st.integers(0, 40))
    # Mixed shapes and large requests block or fill batches at once; single rows of one shape
    # leave the timing decisions (delay, early) to the policy.
    max_rows = draw(st.sampled_from([1, max_batch if batching else 3]))
    classes = draw(st.sampled_from([0, 2]))
    requests = []
    for i, arrival in enumerate(arrival_times(draw, n)):
        deadline = draw(st.one_of(st.just(-1), st.integers(arrival, arrival + 300_000)))
        requests.append(SimRequest(
            id=i,
            arrival_ns=arrival,
            rows=draw(st.integers(1, max_rows)),
            priority=draw(st.integers(0, policy.priority_levels - 1)),
            deadline_ns=deadline,
            shape_class=draw(st.integers(0, classes)),
        ))
    instances = draw(st.integers(1, 3))
    base = draw(st.sampled_from([1, 10_000, 100_000, 300_000]))
    per_row = draw(st.sampled_from([0, 1_000, 5_000, 20_000]))
    host = draw(st.sampled_from([0, 0, 20_000, 150_000, 600_000]))
    return policy, requests, instances, base, per_row, host


@settings(max_examples=600, deadline=None)
@given(scenario=scenarios())
def test_cpp_batcher_agrees_with_python_reference(scenario) -> None:  # type: ignore[no-untyped-def]
    policy, requests, instances, base, per_row, host = scenario
    assert c_simulate(policy, requests, instances, base, per_row, host) == simulate(policy, requests, instances, base, per_row, host)


@st.composite
def long_streams(draw: st.DrawFn) -> tuple[Policy, list[SimRequest], int, int, int, int]:
    """Phases long enough for a batch size to go unfed for 128 batches and come back: full
    batches, a long run of lone requests, full batches again (the cost model's freshness)."""
    max_batch = draw(st.integers(4, 16))
    policy = Policy(True, max_batch, draw(st.sampled_from([50_000, 200_000])), (), 400, 1, adaptive=True)
    base = draw(st.integers(1, 200_000))
    per_row = draw(st.integers(0, 20_000))
    lone_gap = base + per_row + draw(st.integers(1, 400_000))  # each lone request runs alone
    t, times, rows = 0, [], []
    for phase in range(3):
        if phase == 1:
            for _ in range(draw(st.integers(120, 260))):
                t += lone_gap
                times.append(t)
                rows.append(1)
        else:
            for _ in range(draw(st.integers(1, 6))):
                t += draw(st.integers(0, 2_000))
                times.append(t)
                rows.append(max_batch)
        t += lone_gap
    requests = [SimRequest(i, at, r, 0, -1, 0) for i, (at, r) in enumerate(zip(times, rows))]
    return policy, requests, 1, base, per_row, draw(st.sampled_from([0, 50_000]))


@settings(max_examples=40, deadline=None)
@given(scenario=long_streams())
def test_long_streams_agree_with_python_reference(scenario) -> None:  # type: ignore[no-untyped-def]
    policy, requests, instances, base, per_row, host = scenario
    assert c_simulate(policy, requests, instances, base, per_row, host) == simulate(policy, requests, instances, base, per_row, host)


def test_a_stale_size_comes_back_without_its_old_average() -> None:
    # One slow single-row batch (a first run), then 150 batches of 8 rows: the single-row
    # bucket drops out of the fit; when single rows come back, their bucket starts afresh
    # instead of averaging in the old 20 ms.
    cost = CostModel()
    cost.observe(1, 20_000_000)
    for _ in range(150):
        cost.observe(8, 100_000)
    assert (cost.fixed, cost.per_row) == (100_000, 0)  # one fresh size: all of it fixed
    cost.observe(1, 50_000)
    assert cost.estimate(1) == 50_000  # the line through (1, 50 us) and (8, 100 us)
    assert 99_000 <= cost.estimate(8) <= 100_000


@st.composite
def adaptive_streams(draw: st.DrawFn) -> tuple[Policy, list[SimRequest], int, int, int, int]:
    """Streams of one shape and priority, without deadlines: every dispatch is a timing
    decision of the adaptive policy, and the cost model sees many batch sizes."""
    max_batch = draw(st.integers(2, 16))
    policy = Policy(True, max_batch, draw(st.sampled_from([50_000, 200_000, 1_000_000])), (), 200, 1, adaptive=True)
    max_rows = draw(st.sampled_from([1, 2, max_batch]))
    arrivals = arrival_times(draw, draw(st.integers(1, 80)))
    requests = [SimRequest(i, t, draw(st.integers(1, max_rows)), 0, -1, 0) for i, t in enumerate(arrivals)]
    base = draw(st.integers(1, 400_000))
    per_row = draw(st.integers(0, 30_000))
    host = draw(st.one_of(st.just(0), st.integers(1, 800_000)))
    return policy, requests, draw(st.integers(1, 3)), base, per_row, host


@settings(max_examples=300, deadline=None)
@given(scenario=adaptive_streams())
def test_adaptive_streams_agree_with_python_reference(scenario) -> None:  # type: ignore[no-untyped-def]
    policy, requests, instances, base, per_row, host = scenario
    assert c_simulate(policy, requests, instances, base, per_row, host) == simulate(policy, requests, instances, base, per_row, host)


def _policy(**kw) -> Policy:  # type: ignore[no-untyped-def]
    base = {"batching": True, "max_batch_size": 8, "max_queue_delay_ns": 100_000, "preferred": (), "max_queue_size": 100, "priority_levels": 1}
    base.update(kw)
    return Policy(**base)


def _req(i: int, t: int, rows: int = 1, prio: int = 0, deadline: int = -1, cls: int = 0) -> SimRequest:
    return SimRequest(i, t, rows, prio, deadline, cls)


def test_full_batch_dispatches_at_once() -> None:
    events = c_simulate(_policy(max_batch_size=4), [_req(i, 0) for i in range(4)], 1, 1000, 0)
    assert {(e[0], e[1], e[3], e[4]) for e in events} == {(0, BATCH, 0, FULL)}


def test_partial_batch_waits_for_the_delay() -> None:
    events = c_simulate(_policy(), [_req(0, 0), _req(1, 30_000)], 1, 1000, 0)
    assert [(e[0], e[2], e[4]) for e in events] == [(100_000, 0, DELAY), (100_000, 1, DELAY)]


def test_a_preferred_size_dispatches_at_once() -> None:
    # Request 0 arrives alone: no preferred size (2 or 3) can form, so it waits; at t=10
    # two are queued (a preferred size) and go at once, without waiting for the delay.
    events = c_simulate(_policy(preferred=(2, 3)), [_req(0, 0), _req(1, 10), _req(2, 200_000)], 1, 1000, 0)
    assert [(e[0], e[2], e[4]) for e in events] == [(10, 0, PREFERRED), (10, 1, PREFERRED), (300_000, 2, DELAY)]


def test_the_longest_preferred_prefix_goes_and_the_rest_waits() -> None:
    events = c_simulate(_policy(preferred=(2, 4)), [_req(i, 0) for i in range(5)], 2, 1000, 0)
    batches = [(e[0], e[2], e[3], e[4]) for e in events]
    assert batches[:4] == [(0, i, 0, PREFERRED) for i in range(4)]
    assert batches[4] == (100_000, 4, 1, DELAY)


def test_incompatible_shapes_never_share_a_batch() -> None:
    events = c_simulate(_policy(), [_req(0, 0, cls=1), _req(1, 0, cls=2)], 1, 1000, 0)
    batches = {e[2]: e[3] for e in events}
    assert batches[0] != batches[1]
    assert events[0][4] == FULL  # blocked by the next request: waiting cannot grow it


def test_higher_priority_runs_first() -> None:
    events = c_simulate(_policy(max_batch_size=1, priority_levels=2), [_req(0, 0), _req(1, 0, prio=1), _req(2, 5)], 1, 100, 0)
    assert [e[2] for e in events if e[1] == BATCH] == [1, 0, 2]


def test_expired_requests_never_run_and_overload_is_rejected() -> None:
    # All four arrive at t=0 and are admitted before anything runs: a queue of 2 rejects two.
    requests = [_req(0, 0), _req(1, 0, deadline=50), _req(2, 0), _req(3, 0), _req(4, 500)]
    events = c_simulate(_policy(max_batch_size=1, max_queue_size=2), requests, 1, 1000, 0)
    assert [(e[0], e[1], e[2]) for e in events] == [
        (0, REJECTED, 2), (0, REJECTED, 3), (0, BATCH, 0),
        (1000, EXPIRED, 1),  # its deadline passed while the only instance was busy
        (1000, BATCH, 4),
    ]


# ---- The adaptive queue delay -------------------------------------------------------------


def _batches(events: list[tuple[int, int, int, int, int, int]]) -> list[tuple[int, int, int]]:
    """(dispatch time, rows, reason) per batch, in order (single-row requests)."""
    out: dict[int, list[int]] = {}
    for time_ns, kind, _, batch, reason, _ in events:
        if kind == BATCH:
            out.setdefault(batch, [time_ns, 0, reason])[1] += 1
    return [(t, rows, reason) for t, rows, reason in out.values()]


def test_adaptive_sends_a_lone_request_at_once_when_no_arrival_is_expected() -> None:
    # One request a millisecond, a 500 us window, batches of 50 us: the fixed window holds
    # each request 500 us for companions that never come; adaptive sends each at once.
    requests = [_req(i, i * 1_000_000) for i in range(6)]
    fixed = c_simulate(_policy(max_queue_delay_ns=500_000), requests, 1, 50_000, 1_000)
    adaptive = c_simulate(_policy(max_queue_delay_ns=500_000, adaptive=True), requests, 1, 50_000, 1_000)
    assert [(e[0], e[4]) for e in fixed] == [(i * 1_000_000 + 500_000, DELAY) for i in range(6)]
    assert [(e[0], e[4]) for e in adaptive] == [(i * 1_000_000, EARLY) for i in range(6)]
    assert adaptive == simulate(_policy(max_queue_delay_ns=500_000, adaptive=True), requests, 1, 50_000, 1_000)


def test_adaptive_waits_when_an_arrival_will_pay_for_it() -> None:
    # Arrivals every 5 us and batches costing 200 us + 1 us/row: a lone request waits for the
    # next arrival (they share the fixed cost) instead of leaving early.
    policy = _policy(max_batch_size=64, max_queue_delay_ns=1_000_000, adaptive=True)
    requests = [_req(i, i * 5_000) for i in range(40)]
    batches = _batches(c_simulate(policy, requests, 1, 200_000, 1_000))
    assert batches[0] == (0, 1, EARLY)  # nothing known yet: no arrival is expected
    # the instance is busy until 201 us; then everything queued goes, and the next batches
    # wait for companions: none is a single request.
    assert all(rows > 1 for _, rows, _ in batches[1:])


def test_a_steady_stream_still_forms_full_batches() -> None:
    # Arrivals every 10 us; batches of 8 cost 100 us: the stream keeps the queue ahead of the
    # instance: once the cost model has seen a batch (the first, sent at once: no rate known
    # yet), adaptive forms the fixed window's full batches.
    requests = [_req(i, i * 10_000) for i in range(300)]
    fixed = _batches(c_simulate(_policy(max_queue_delay_ns=500_000), requests, 1, 60_000, 5_000))
    adaptive = _batches(c_simulate(_policy(max_queue_delay_ns=500_000, adaptive=True), requests, 1, 60_000, 5_000))
    assert adaptive[:2] == [(0, 1, EARLY), (65_000, 6, EARLY)]  # what queued while the first ran
    assert all(rows == 8 and reason == FULL for _, rows, reason in adaptive[2:-1])
    assert all(rows == 8 and reason == FULL for _, rows, reason in fixed[:-1])
    # At 95% of the full-batch capacity (8 rows / 140 us) batches stay nearly full.
    requests = [_req(i, i * 18_500) for i in range(400)]
    near_capacity = _batches(c_simulate(_policy(max_queue_delay_ns=500_000, adaptive=True), requests, 1, 100_000, 5_000))
    rows = [r for _, r, _ in near_capacity[20:]]
    assert sum(rows) / len(rows) >= 7


def test_another_idle_instance_means_no_wait() -> None:
    # With a second instance idle, a newcomer would start at once: waiting never pays.
    policy = _policy(max_batch_size=64, max_queue_delay_ns=1_000_000, adaptive=True)
    requests = [_req(i, i * 5_000) for i in range(3)]
    events = c_simulate(policy, requests, 2, 200_000, 1_000)
    assert [(e[0], e[4], e[5]) for e in events] == [(0, EARLY, 0), (5_000, EARLY, 1), (201_000, EARLY, 0)]


def test_a_lagging_host_makes_adaptive_batch_more() -> None:
    # A steady stream every 40 us into batches of 20 us + 1 us/row: the instance keeps up
    # alone, so without a host every request leaves at once. A host that spends 150 us per
    # batch cannot keep up with single-request batches: its lag grows, and adaptive answers
    # by holding requests for companions (never past the delay), which the host can absorb.
    policy = _policy(max_batch_size=64, max_queue_delay_ns=500_000, adaptive=True)
    requests = [_req(i, i * 40_000) for i in range(400)]
    alone = _batches(c_simulate(policy, requests, 1, 20_000, 1_000))
    hosted = _batches(c_simulate(policy, requests, 1, 20_000, 1_000, host_ns=150_000))
    assert hosted == _batches(simulate(policy, requests, 1, 20_000, 1_000, host_ns=150_000))
    assert all(rows == 1 and reason == EARLY for _, rows, reason in alone)
    steady = hosted[len(hosted) // 4:]
    assert sum(rows for _, rows, _ in steady) / len(steady) >= 3
    # ... enough that the host keeps up: over the steady part, batches come no faster than
    # the host takes them (150 us each), on average
    assert (steady[-1][0] - steady[0][0]) / (len(steady) - 1) >= 150_000 * 0.9
    assert c_simulate(policy, requests, 1, 20_000, 1_000, host_ns=0) == c_simulate(policy, requests, 1, 20_000, 1_000)


def _first_idle(batches: list[tuple[int, int, int]], instances: int, at: int) -> int:
    """The first moment >= `at` when some instance runs none of `batches` (start, end, instance)."""
    best = None
    for i in range(instances):
        t = at
        for start, end, _ in sorted(b for b in batches if b[2] == i):
            if start <= t < end:
                t = end
        best = t if best is None else min(best, t)
    assert best is not None
    return best


@settings(max_examples=200, deadline=None)
@given(scenario=adaptive_streams())
def test_adaptive_never_waits_past_the_delay_while_an_instance_is_idle(scenario) -> None:  # type: ignore[no-untyped-def]
    policy, requests, instances, base, per_row, host = scenario
    arrival = {r.id: r.arrival_ns for r in requests}
    rows = {r.id: r.rows for r in requests}
    events = c_simulate(policy, requests, instances, base, per_row, host)
    batches: dict[int, list[int]] = {}
    for time_ns, _, rid, batch, reason, instance in events:
        b = batches.setdefault(batch, [time_ns, 0, instance, reason, arrival[rid]])
        b[1] += rows[rid]
        b[4] = min(b[4], arrival[rid])
    ran: list[tuple[int, int, int]] = []
    for start, batch_rows, instance, reason, oldest in batches.values():
        due = oldest + policy.max_queue_delay_ns
        if reason == EARLY:
            assert start < due
        # one shape, one priority: the oldest waiting request heads the queue, so it leaves
        # by its delay, or the moment an instance frees up after it
        assert start <= max(due, _first_idle([b for b in ran if b[0] < start], instances, due))
        ran.append((start, start + base + per_row * batch_rows, instance))

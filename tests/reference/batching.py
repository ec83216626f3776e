"""Pure-Python reference of the dynamic batching policy and of the simulation loop of
``ir_batcher_simulate`` (csrc/abi/sim_api.cpp + csrc/engine/batcher.cpp). Written from the
policy's description in docs/batching.md, independently of the C++ code; the hypothesis
test requires both to produce exactly the same events.

The adaptive policy ("The adaptive queue delay" in docs/batching.md) is integer arithmetic
throughout, so the two agree exactly on every EARLY decision too."""

from __future__ import annotations

from dataclasses import dataclass, field

NEVER = 2**63 - 1
FULL, PREFERRED, DELAY, EARLY = 1, 2, 3, 4
BATCH, EXPIRED, REJECTED = 1, 2, 3


@dataclass(frozen=True, slots=True)
class Policy:
    batching: bool
    max_batch_size: int
    max_queue_delay_ns: int
    preferred: tuple[int, ...]
    max_queue_size: int
    priority_levels: int
    adaptive: bool = False


@dataclass(frozen=True, slots=True)
class Load:
    """The instances as the scheduler sees them when it asks for a batch."""

    idle: int = 1  # idle instances, counting the one asking
    busy_until_ns: int = NEVER  # earliest expected end of a running batch; NEVER: none
    host_lag_ns: int = 0  # how long finished batches lately waited for the host to take them


def ewma8(average: int, sample: int) -> int:
    """Integer EWMA with weight 1/8 (both arguments are non-negative)."""
    return (7 * average + sample) // 8


@dataclass(slots=True)
class CostModel:
    """E(rows) = fixed + per_row * rows, from the smallest and largest batch sizes fed within
    the last 128 batches (per power-of-two bucket of rows: EWMAs of rows x256 and of
    execution time)."""

    cells: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # bucket -> (rows x256, exec ns, fed at)
    observed: int = 0  # batches fed so far
    fixed: int = 0
    per_row: int = 0

    def observe(self, rows: int, exec_ns: int) -> None:
        if rows < 1:
            return
        rows = min(rows, 2**40)
        exec_ns = min(max(exec_ns, 0), 2**40)
        bucket = min(rows.bit_length() - 1, 23)
        self.observed += 1
        if bucket in self.cells and self.observed - self.cells[bucket][2] <= 128:
            r, e, _ = self.cells[bucket]
            self.cells[bucket] = (ewma8(r, rows * 256), ewma8(e, exec_ns), self.observed)
        else:  # new, or not fed within the last 128 batches: its old average says nothing
            self.cells[bucket] = (rows * 256, exec_ns, self.observed)
        # only the sizes fed within the last 128 batches: a size seen once (a slow first run) fades
        fresh = [b for b, (_, _, fed) in self.cells.items() if self.observed - fed < 128]
        (r_lo, e_lo, _), (r_hi, e_hi, _) = self.cells[min(fresh)], self.cells[max(fresh)]
        self.per_row = (e_hi - e_lo) * 256 // (r_hi - r_lo) if e_hi > e_lo else 0
        self.fixed = max(0, e_lo - self.per_row * r_lo // 256)

    def estimate(self, rows: int) -> int:
        return min(self.fixed + self.per_row * max(rows, 0), 2**62)


@dataclass(frozen=True, slots=True)
class SimRequest:
    id: int
    arrival_ns: int
    rows: int
    priority: int
    deadline_ns: int  # -1: none
    shape_class: int


@dataclass(slots=True)
class Queue:
    policy: Policy
    levels: list[list[SimRequest]] = field(default_factory=list)
    cost: CostModel = field(default_factory=CostModel)
    last_arrival: int = NEVER
    gap: int = NEVER  # EWMA of inter-arrival gaps; NEVER until two arrivals

    def __post_init__(self) -> None:
        self.levels = [[] for _ in range(self.policy.priority_levels)]

    def order(self) -> list[SimRequest]:
        """Queue order: highest priority first, FIFO within a priority."""
        return [r for level in reversed(self.levels) for r in level]

    def size(self) -> int:
        return sum(len(level) for level in self.levels)

    def push(self, r: SimRequest) -> bool:
        if self.size() >= self.policy.max_queue_size:
            return False
        self.levels[r.priority].append(r)
        if self.policy.adaptive:
            if self.last_arrival == NEVER:
                self.last_arrival = r.arrival_ns
            else:
                sample = min(max(r.arrival_ns - self.last_arrival, 0), 8 * self.policy.max_queue_delay_ns)
                self.gap = sample if self.gap == NEVER else ewma8(self.gap, sample)
                self.last_arrival = max(self.last_arrival, r.arrival_ns)
        return True

    def worth_waiting(self, chosen: list[SimRequest], now: int, load: Load) -> bool:
        """Waiting for one more arrival costs each waiting request the expected gap tau (and
        the batch grows by b per row for all of them); it spares the newcomer the wait D for
        an instance or for the host, whichever is longer. Pays iff
        (n + 1) * tau + 2 * b * rows < D."""
        if self.gap == NEVER:
            return False
        rows = sum(r.rows for r in chosen)
        d = 0  # another instance is idle: the newcomer would not wait for one
        if load.idle <= 1:
            d = self.cost.estimate(rows)
            if load.busy_until_ns != NEVER:
                d = min(d, max(load.busy_until_ns - now, 0))
        # a batch of its own waits its turn at a host that lags behind
        d = max(d, load.host_lag_ns)
        tau = max(self.gap, now - self.last_arrival)
        return (len(chosen) + 1) * tau + 2 * self.cost.per_row * rows < d

    def remove(self, gone: list[SimRequest]) -> None:
        ids = {r.id for r in gone}
        self.levels = [[r for r in level if r.id not in ids] for level in self.levels]

    def expire(self, now: int) -> list[SimRequest]:
        dead = [r for r in self.order() if r.deadline_ns >= 0 and r.deadline_ns <= now]
        self.remove(dead)
        return dead

    def candidate(self) -> tuple[list[SimRequest], bool]:
        """The longest compatible prefix that fits, and whether the next request blocks it."""
        chosen: list[SimRequest] = []
        rows = 0
        for r in self.order():
            if chosen and (not self.policy.batching or rows + r.rows > self.policy.max_batch_size or r.shape_class != chosen[0].shape_class):
                return chosen, True
            chosen.append(r)
            rows += r.rows
            if not self.policy.batching or rows >= self.policy.max_batch_size:
                return chosen, False
        return chosen, False

    def form(self, now: int, load: Load = Load()) -> tuple[int, list[SimRequest]]:
        if self.size() == 0:
            return 0, []
        chosen, blocked = self.candidate()
        rows = sum(r.rows for r in chosen)
        oldest = min(r.arrival_ns for r in chosen)
        prefix_rows = [sum(r.rows for r in chosen[: i + 1]) for i in range(len(chosen))]
        preferred_prefixes = [i + 1 for i, total in enumerate(prefix_rows) if total in self.policy.preferred]
        if not self.policy.batching or rows >= self.policy.max_batch_size or blocked:
            reason = FULL
        elif preferred_prefixes:
            reason = PREFERRED
            chosen = chosen[: max(preferred_prefixes)]
        elif now - oldest >= self.policy.max_queue_delay_ns:
            reason = DELAY
        elif self.policy.adaptive and not self.worth_waiting(chosen, now, load):
            reason = EARLY
        else:
            return 0, []
        self.remove(chosen)
        return reason, chosen

    def next_event(self, now: int, load: Load) -> int:
        if self.size() == 0:
            return NEVER
        deadlines = [r.deadline_ns for r in self.order() if r.deadline_ns >= 0]
        nearest = min(deadlines, default=NEVER)
        if not self.policy.batching:
            return min(nearest, 0)
        chosen, blocked = self.candidate()
        due = min(r.arrival_ns for r in chosen) + self.policy.max_queue_delay_ns
        bound = min(nearest, due)
        rows = sum(r.rows for r in chosen)
        preferred = any(sum(r.rows for r in chosen[: i + 1]) in self.policy.preferred for i in range(len(chosen)))
        if not self.policy.adaptive or blocked or rows >= self.policy.max_batch_size or preferred or now >= due:
            return bound
        if not self.worth_waiting(chosen, now, load):
            return min(bound, now)
        # The rule is monotone in time (the silence grows, busy instances near their end):
        # the first moment it stops paying, by bisection, at most the delay.
        lo, hi = now, due
        while hi - lo > 1:
            mid = lo + (hi - lo) // 2
            if self.worth_waiting(chosen, mid, load):
                lo = mid
            else:
                hi = mid
        return min(bound, hi)


def simulate(policy: Policy, requests: list[SimRequest], instances: int, base_ns: int, per_row_ns: int,
             host_ns: int = 0) -> list[tuple[int, int, int, int, int, int]]:
    """Events (time, kind, request id, batch index, reason, instance) in order.

    Ended batches are reported to the cost model when the clock passes their end (earliest
    first, then by instance), before that moment's arrivals; every decision sees the load of
    that moment; with adaptive, time also stops at the end of a busy instance's batch while
    another is idle and work is queued.

    The host: a single consumer takes the ended batches in the order they were reported,
    ``host_ns`` each; a batch that ended at e is taken at max(e, when the host finished the
    one before). Once the clock reaches that moment, the wait (capped at 1 s) enters the
    host's lag, an EWMA of weight 1/8 that every later decision sees."""
    queue = Queue(policy)
    host_free = 0
    host_takes: list[tuple[int, int]] = []  # (taken at, lag), not yet reached by the clock
    host_lag = 0
    order = sorted(requests, key=lambda r: (r.arrival_ns, r.id))
    free_at = [0] * instances
    expected_end = [0] * instances
    running_rows = [0] * instances
    events: list[tuple[int, int, int, int, int, int]] = []
    nxt = 0
    batch_index = 0
    t = order[0].arrival_ns if order else 0

    def load_at(now: int) -> Load:
        busy = [expected_end[i] for i in range(instances) if free_at[i] > now]
        return Load(idle=instances - len(busy), busy_until_ns=min(busy, default=NEVER), host_lag_ns=host_lag)

    while nxt < len(order) or queue.size():
        for i in sorted((i for i in range(instances) if running_rows[i] and free_at[i] <= t), key=lambda i: (free_at[i], i)):
            queue.cost.observe(running_rows[i], base_ns + per_row_ns * running_rows[i])
            running_rows[i] = 0
            taken = max(free_at[i], host_free)
            host_free = taken + host_ns
            host_takes.append((taken, taken - free_at[i]))
        while host_takes and host_takes[0][0] <= t:
            host_lag = (7 * host_lag + min(host_takes.pop(0)[1], 10**9)) // 8
        while nxt < len(order) and order[nxt].arrival_ns <= t:
            if not queue.push(order[nxt]):
                events.append((t, REJECTED, order[nxt].id, -1, 0, -1))
            nxt += 1
        idle = [i for i, f in enumerate(free_at) if f <= t]
        if idle:
            events.extend((t, EXPIRED, r.id, -1, 0, -1) for r in queue.expire(t))
            while idle:
                reason, chosen = queue.form(t, load_at(t))
                if not reason:
                    break
                slot = idle.pop(0)
                events.extend((t, BATCH, r.id, batch_index, reason, slot) for r in chosen)
                batch_index += 1
                rows = sum(r.rows for r in chosen)
                expected_end[slot] = t + queue.cost.estimate(rows)
                running_rows[slot] = rows
                free_at[slot] = t + base_ns + per_row_ns * rows
                idle = [i for i, f in enumerate(free_at) if f <= t]
        upcoming = order[nxt].arrival_ns if nxt < len(order) else NEVER
        if queue.size():
            if any(f <= t for f in free_at):
                upcoming = min(upcoming, queue.next_event(t, load_at(t)))
                if policy.adaptive:
                    upcoming = min([upcoming] + [f for f in free_at if f > t])
            else:
                upcoming = min(upcoming, min(free_at))
        if upcoming == NEVER:
            break
        t = max(upcoming, t + 1)
    return events

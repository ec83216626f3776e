"""Pure-Python reference of the dynamic batching policy and of the simulation loop of
``ir_batcher_simulate`` (csrc/abi/sim_api.cpp + csrc/engine/batcher.cpp). Written from the
policy's description in docs/batching.md, independently of the C++ code; the hypothesis
test requires both to produce exactly the same events."""

from __future__ import annotations

from dataclasses import dataclass, field

NEVER = 2**63 - 1
FULL, PREFERRED, DELAY = 1, 2, 3
BATCH, EXPIRED, REJECTED = 1, 2, 3


@dataclass(frozen=True, slots=True)
class Policy:
    batching: bool
    max_batch_size: int
    max_queue_delay_ns: int
    preferred: tuple[int, ...]
    max_queue_size: int
    priority_levels: int


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
        return True

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

    def form(self, now: int) -> tuple[int, list[SimRequest]]:
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
        else:
            return 0, []
        self.remove(chosen)
        return reason, chosen

    def next_event(self) -> int:
        if self.size() == 0:
            return NEVER
        deadlines = [r.deadline_ns for r in self.order() if r.deadline_ns >= 0]
        nearest = min(deadlines, default=NEVER)
        if not self.policy.batching:
            return min(nearest, 0)
        chosen, _ = self.candidate()
        return min(nearest, min(r.arrival_ns for r in chosen) + self.policy.max_queue_delay_ns)


def simulate(policy: Policy, requests: list[SimRequest], instances: int, base_ns: int, per_row_ns: int) -> list[tuple[int, int, int, int, int, int]]:
    """Events (time, kind, request id, batch index, reason, instance) in order."""
    queue = Queue(policy)
    order = sorted(requests, key=lambda r: (r.arrival_ns, r.id))
    free_at = [0] * instances
    events: list[tuple[int, int, int, int, int, int]] = []
    nxt = 0
    batch_index = 0
    t = order[0].arrival_ns if order else 0
    while nxt < len(order) or queue.size():
        while nxt < len(order) and order[nxt].arrival_ns <= t:
            if not queue.push(order[nxt]):
                events.append((t, REJECTED, order[nxt].id, -1, 0, -1))
            nxt += 1
        idle = [i for i, f in enumerate(free_at) if f <= t]
        if idle:
            events.extend((t, EXPIRED, r.id, -1, 0, -1) for r in queue.expire(t))
            while idle:
                reason, chosen = queue.form(t)
                if not reason:
                    break
                slot = idle.pop(0)
                events.extend((t, BATCH, r.id, batch_index, reason, slot) for r in chosen)
                batch_index += 1
                free_at[slot] = t + base_ns + per_row_ns * sum(r.rows for r in chosen)
                idle = [i for i, f in enumerate(free_at) if f <= t]
        upcoming = order[nxt].arrival_ns if nxt < len(order) else NEVER
        if queue.size():
            if any(f <= t for f in free_at):
                upcoming = min(upcoming, queue.next_event())
            else:
                upcoming = min(upcoming, min(free_at))
        if upcoming == NEVER:
            break
        t = max(upcoming, t + 1)
    return events

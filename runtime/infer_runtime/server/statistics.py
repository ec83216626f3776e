"""Triton's statistics extension (``/v2/models/{m}/stats`` and gRPC ``ModelStatistics``)
from the engine's counters.

What is exact and what is approximated (docs/serving.md says the same):

- ``success``, ``fail``, ``queue``, ``inference_count`` (rows), ``execution_count``
  (batches) are the engine's counters, warmup excluded.
- ``compute_infer`` is per request, as Triton's: ``count`` = successful requests, ``ns`` =
  their admission-to-completion time minus their queue time (gather, backend and scatter of
  the batch each ran in). The engine times gather and scatter as part of the batch, so
  ``compute_input`` and ``compute_output`` carry the same count and 0 ns (perf_analyzer
  requires the three counts to be equal).
- ``batch_stats`` comes from the engine's batch-size histogram, whose buckets are powers of
  two: sizes 1 and 2 are exact; a bucket (2^(k-1), 2^k] is reported under batch size 2^k.
  Its compute ``ns`` is the model's mean batch compute time times the bucket's batches.
- ``last_inference`` (ms since the epoch) is when the server last answered an inference for
  the model (requests through the embedding API of the same process are not seen).
"""

from __future__ import annotations

from typing import Any

from infer_runtime.engine import BATCH_BOUNDS, ModelStats

_ZERO = {"count": 0, "ns": 0}


def _duration(count: int, ns: int) -> dict[str, int]:
    return {"count": count, "ns": ns}


def batch_stats(s: ModelStats) -> list[dict[str, Any]]:
    """Triton ``batch_stats`` entries, one per non-empty batch-size bucket."""
    out = []
    mean_ns = s.compute_ns_sum // s.batches if s.batches else 0
    bounds = [*BATCH_BOUNDS, 2 * BATCH_BOUNDS[-1]]  # the +Inf bucket is reported at twice the last bound
    for size, count in zip(bounds, s.batch_rows_buckets):
        if count:
            out.append({
                "batch_size": size,
                "compute_input": _duration(count, 0),
                "compute_infer": _duration(count, mean_ns * count),
                "compute_output": _duration(count, 0),
            })
    return out


def model_statistics(model: str, version: str, s: ModelStats, last_inference_ms: int) -> dict[str, Any]:
    """One model's entry of Triton's ``model_stats`` list (JSON form; the gRPC message has
    the same fields)."""
    failed = s.failed_invalid + s.rejected_queue_full + s.timed_out + s.failed_backend + s.cancelled
    compute_ns = max(0, s.request_ns_sum - s.queue_ns_sum)
    return {
        "name": model,
        "version": version,
        "last_inference": last_inference_ms,
        "inference_count": s.batched_rows,
        "execution_count": s.batches,
        "inference_stats": {
            "success": _duration(s.succeeded, s.request_ns_sum),
            "fail": _duration(failed, 0),
            "queue": _duration(s.succeeded, s.queue_ns_sum),
            "compute_input": _duration(s.succeeded, 0),
            "compute_infer": _duration(s.succeeded, compute_ns),
            "compute_output": _duration(s.succeeded, 0),
            "cache_hit": dict(_ZERO),
            "cache_miss": dict(_ZERO),
        },
        "batch_stats": batch_stats(s),
    }

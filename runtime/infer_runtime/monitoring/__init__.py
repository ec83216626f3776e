"""Logging, metrics and statistics of a runtime, for the server and for embedding services
alike (:mod:`.metrics` for Prometheus, :mod:`.counters` for warmup-free counters)."""

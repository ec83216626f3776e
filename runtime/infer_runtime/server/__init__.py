"""Serving over the network: KServe v2 / Open Inference Protocol over HTTP and gRPC,
Prometheus metrics, health, and the process lifecycle of `infer-runtime run`."""

"""Python-hosted backends (onnxruntime, python) and the executor that feeds them batches."""

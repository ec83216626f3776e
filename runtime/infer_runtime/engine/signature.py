"""Model signatures: what a model takes and returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class TensorSignature:
    """One tensor of a signature; -1 in ``shape`` is a variable dimension."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]

    def describe(self) -> str:
        """``features: float32[-1, 64]``."""
        kind = "bytes" if self.dtype.kind == "O" else self.dtype.name
        return f"{self.name}: {kind}[{', '.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True, slots=True)
class ModelSignature:
    """Inputs and outputs of a served model or pipeline. ``inputs`` is None when the model
    accepts any tensors (an identity or python model without declared inputs);
    ``outputs`` is None when they are not known before the first response."""

    inputs: tuple[TensorSignature, ...] | None
    outputs: tuple[TensorSignature, ...] | None
    max_batch_size: int  # 0 when the model does not batch

    @property
    def batching(self) -> bool:
        """Whether requests carry a leading batch dimension that the engine batches on."""
        return self.max_batch_size > 0

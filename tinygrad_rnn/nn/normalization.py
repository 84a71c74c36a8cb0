"""``LayerNorm``, as ``torch.nn.LayerNorm``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ..checks import as_flag, as_nonnegative, check_sizes
from . import functional as F
from .module import Module, Parameter


class LayerNorm(Module):
    """Normalise over the trailing dims ``normalized_shape`` to mean 0 and variance 1
    (the biased variance, plus ``eps``), then scale by ``weight`` (ones) and shift by
    ``bias`` (zeros), both of shape ``normalized_shape`` if ``elementwise_affine``."""

    def __init__(self, normalized_shape: int | tuple, eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, dtype: Any = None,
                 backend: str | None = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else \
            tuple(normalized_shape)
        check_sizes(**{f"normalized_shape[{i}]": n for i, n in enumerate(shape)})
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = as_nonnegative(eps, "LayerNorm: eps")
        self.elementwise_affine = as_flag(elementwise_affine, "LayerNorm: elementwise_affine")
        dtype = np.dtype(dtype or np.float32)
        self.weight = self.bias = None
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype), dtype=dtype,
                                    backend=backend)
            if as_flag(bias, "LayerNorm: bias"):
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype), dtype=dtype,
                                      backend=backend)

    def forward(self, input: Tensor) -> Tensor:
        """(..., *normalized_shape) -> the same shape."""
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        """``normalized_shape, eps=..., elementwise_affine=...``."""
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")

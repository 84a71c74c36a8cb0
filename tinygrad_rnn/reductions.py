"""Reductions beyond ``sum``/``mean``/``max``: ``var``, ``std``, ``logsumexp`` and
``cumsum``, with torch's arguments (``dim``, ``keepdim``, ``correction``). Each is a
primitive: :class:`ops.Var` and :class:`ops.StdRoot` give torch's gradients where the
deviation is 0 or N <= correction, :class:`ops.LogSumExp` is stable, :class:`ops.CumSum`
one pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import dtypes
from .autograd import Node
from .checks import as_flag, dim_alias, is_real, normalize_axes, normalize_dim
from .ops import CumSum, LogSumExp, StdRoot, Var

if TYPE_CHECKING:
    from ._tensor import Tensor

Dims = int | Sequence[int] | None


def _tensor(x: Any, fn: str) -> Tensor:
    if not isinstance(x, Node):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(x).__name__}")
    return x


def _correction(unbiased: Any, correction: Any, fn: str) -> float:
    if unbiased is not None and correction is not None:
        raise TypeError(f"{fn} takes unbiased or correction, not both")
    if unbiased is not None:
        return 1.0 if as_flag(unbiased, f"{fn}: unbiased") else 0.0
    if correction is None:
        return 1.0
    if not is_real(correction):
        raise TypeError(f"{fn}: correction must be a number, got {correction!r}")
    return float(correction)


def var(input: Tensor, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False,
        *, correction: float | None = None, axis: Dims = None) -> Tensor:
    """Variance over ``dim`` (all dims for None): ``Σ (x - mean)² / (N - correction)``,
    ``correction=1`` (Bessel's, torch's default; ``unbiased=False`` is 0). N - correction
    <= 0 gives inf or NaN, as in torch. Float tensors only."""
    input = _tensor(input, "var")
    if isinstance(dim, (bool, np.bool_)):  # torch's var(x, unbiased) overload
        dim, unbiased = None, dim if unbiased is None else unbiased
    return _var(input, dim_alias(dim, axis, "var"), _correction(unbiased, correction, "var"),
                as_flag(keepdim, "var: keepdim"), "var")


def _var(x: Tensor, dim: Dims, correction: float, keepdim: bool, fn: str) -> Tensor:
    if x.dtype.kind != "f":
        raise TypeError(f"{fn} needs a float tensor, got {x.dtype} (as torch; use .astype())")
    return Var.apply(x, axes=normalize_axes(dim, x.ndim), correction=correction,
                     keepdims=keepdim)


def std(input: Tensor, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False,
        *, correction: float | None = None, axis: Dims = None) -> Tensor:
    """Standard deviation, the square root of :func:`var` (same arguments); where the
    deviation is 0 its gradient is 0, as torch's (not the inf · 0 of a plain sqrt)."""
    input = _tensor(input, "std")
    if isinstance(dim, (bool, np.bool_)):
        dim, unbiased = None, dim if unbiased is None else unbiased
    v = _var(input, dim_alias(dim, axis, "std"), _correction(unbiased, correction, "std"),
             as_flag(keepdim, "std: keepdim"), "std")
    return StdRoot.apply(v)


def logsumexp(input: Tensor, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None
              ) -> Tensor:
    """``log Σ exp(x)`` over ``dim`` (required, as in torch; an int or a tuple), stable
    for any magnitude (shifted by the max); integer tensors give float32."""
    input = _tensor(input, "logsumexp")
    dim = dim_alias(dim, axis, "logsumexp")
    if dim is None:
        raise TypeError("logsumexp() missing the required argument dim (an int or a tuple)")
    x = input._floats()
    return LogSumExp.apply(x, axes=normalize_axes(dim, x.ndim),
                           keepdims=as_flag(keepdim, "logsumexp: keepdim"))


def cumsum(input: Tensor, dim: int | None = None, *, dtype: Any = None, axis: int | None = None
           ) -> Tensor:
    """Running sums along ``dim`` (``torch.cumsum``), same shape; integers and bools sum
    in int64 (torch's), unless ``dtype`` says otherwise. Backward: the reversed running
    sum of the gradient."""
    input = _tensor(input, "cumsum")
    dim = dim_alias(dim, axis, "cumsum")
    if dim is None:
        raise TypeError("cumsum() missing the required argument dim (an int)")
    d = normalize_dim(dim, input.ndim)
    if dtype is not None:
        dtype = dtypes.checked(dtype)
    elif input.dtype.kind != "f":
        dtype = np.dtype(np.int64)
    else:
        dtype = input.dtype
    x = input if dtype.kind != "f" or input.dtype == dtype else input.astype(dtype)
    if x.ndim == 0:
        return CumSum.apply(x.reshape(1), axis=0, dtype=dtype).reshape(())
    return CumSum.apply(x, axis=d, dtype=dtype)

"""``where``, ``maximum``, ``minimum`` and ``pow`` with a tensor exponent: elementwise
ops of several tensors (``torch.where`` ...), each checked, cast to one dtype, then one
primitive of :mod:`ops`.

Numbers take their dtype beside the tensors as :func:`dtypes.of_scalar` says (``where(c,
x, 0.0)`` keeps x's dtype); two tensors take :func:`functions.cast_operands`' (an int
with a float: the float's; a 0-d tensor weak), then NumPy's common dtype (float32 with
float64: float64).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import dtypes
from .autograd import Node
from .backends import read_back_allowed
from .checks import check_broadcast
from .functions import cast_operands
from .ops import Maximum, Minimum, Pow, TensorPow, Where

if TYPE_CHECKING:
    from ._tensor import Tensor


def _is_number(x: Any) -> bool:
    return isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating))


def _operand(x: Any, like: Tensor, fn: str, what: str) -> Tensor:
    """``x`` as a tensor beside ``like``: a Tensor as it is (same backend), a number lifted."""
    if isinstance(x, Node):
        like._check_same_backend(x, fn)
        return x
    if _is_number(x):
        return like._lift(x)
    raise TypeError(f"{fn}: {what} must be a Tensor or a number, got {type(x).__name__}")


def common_dtype(a: Tensor, b: Tensor, scalar: bool = False) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` cast to one dtype: :func:`functions.cast_operands`' (torch's rules,
    a 0-d tensor weak; ``scalar``: one is a lifted number), then, where two floats or two
    ints still differ, NumPy's common dtype. A float tensor's cast is recorded."""
    a, b = cast_operands(a, b, scalar)
    if a.dtype != b.dtype:
        dtype = np.result_type(a.dtype, b.dtype)
        a = a if a.dtype == dtype else a.astype(dtype)
        b = b if b.dtype == dtype else b.astype(dtype)
    return a, b


def where(condition: Tensor, input: Any = None, other: Any = None) -> Tensor | tuple:
    """``input`` where ``condition`` is True, else ``other`` (``torch.where``); the three
    broadcast. ``input``/``other`` may be numbers. The gradient selects (a NaN or inf in
    the branch not taken does not leak). ``where(condition)`` alone is
    ``condition.nonzero(as_tuple=True)``: a tuple of int64 index tensors, no gradient."""
    if not isinstance(condition, Node):
        raise TypeError(f"where: condition must be a bool Tensor, got {type(condition).__name__}")
    if condition.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {condition.dtype} (compare "
                        "first, e.g. x > 0)")
    if input is None and other is None:
        xp = condition._backend.xp
        return tuple(condition._new(xp.asarray(i, dtype=np.int64))
                     for i in xp.nonzero(condition.data))
    if input is None or other is None:
        raise TypeError("where takes condition alone, or condition, input and other")
    ref = input if isinstance(input, Node) else other if isinstance(other, Node) else condition
    a = _operand(input, ref, "where", "input")
    b = _operand(other, ref, "where", "other")
    condition._check_same_backend(ref, "where")
    check_broadcast(condition.shape, check_broadcast(a.shape, b.shape, "where"), "where")
    a, b = common_dtype(a, b, scalar=not (isinstance(input, Node) and isinstance(other, Node)))
    return Where.apply(condition, a, b)


def _binary(op: Any, input: Any, other: Any, fn: str) -> Tensor:
    if not isinstance(input, Node):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(input).__name__}")
    b = _operand(other, input, fn, "other")
    check_broadcast(input.shape, b.shape, fn)
    return op.apply(*common_dtype(input, b, scalar=not isinstance(other, Node)))


def maximum(input: Tensor, other: Any) -> Tensor:
    """Elementwise max of two tensors that broadcast (``torch.maximum``); NaN propagates.
    At a tie each side gets half the gradient, as in torch. (``other`` may also be a
    number here; torch asks for a tensor.)"""
    return _binary(Maximum, input, other, "maximum")


def minimum(input: Tensor, other: Any) -> Tensor:
    """Elementwise min (``torch.minimum``); ties split the gradient as :func:`maximum`."""
    return _binary(Minimum, input, other, "minimum")


def pow(input: Any, exponent: Any) -> Tensor:  # noqa: A001 - torch's name
    """``input ** exponent`` (``torch.pow``): either may be a number, the other a tensor,
    or both tensors (broadcasting; gradient w.r.t. both, torch's at 0 ** 0 and for a
    negative base). Integer tensors to negative integer powers are refused (NumPy's
    rule; torch gives 0 for |base| > 1), when the values can be read."""
    if not isinstance(exponent, Node):
        if not isinstance(input, Node):
            raise TypeError(f"pow: input or exponent must be a Tensor, got "
                            f"{type(input).__name__} and {type(exponent).__name__}")
        if not _is_number(exponent):
            raise TypeError(f"pow: exponent must be a Tensor or a number, got "
                            f"{type(exponent).__name__}")
        dtype = dtypes.of_power(input.dtype, exponent)
        base = input if dtype == input.dtype else input.astype(dtype)
        exponent = float(exponent) if isinstance(exponent, (float, np.floating)) else int(exponent)
        return Pow.apply(base, exponent=exponent)
    base = _operand(input, exponent, "pow", "input")
    check_broadcast(base.shape, exponent.shape, "pow")
    base, exponent = common_dtype(base, exponent, scalar=not isinstance(input, Node))
    if base.dtype.kind != "f" and exponent.dtype.kind in "iu" and exponent.numel() and (
            read_back_allowed() or exponent._backend.xp is np):
        if bool(exponent._backend.xp.any(exponent.data < 0)):
            raise ValueError("pow: integers to negative integer powers are not allowed (as in "
                             "NumPy); make the base float first")
    return TensorPow.apply(base, exponent)

"""The Tensor-level functions: arguments checked, dtype rules applied, then one op.

``a + b``, ``a @ b``, ``x[i]``, ``tg.cat`` and ``tg.stack`` come here from
``Tensor``'s methods (or from the user): each checks its arguments, casts the
operands as :mod:`dtypes` says, and calls the primitive :class:`~ops.Function`'s
``apply`` (the one entry to every op). Like :mod:`ops`, this module knows tensors
only through :class:`autograd.Node` and their methods, so it never imports
``_tensor.py``, which imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import dtypes
from .autograd import Node
from .checks import check_broadcast, dim_alias, normalize_axes
from .indexing import backend_index
from .ops import Binary, Cat, Div, GetItem, MatMul, Stack, Sub

if TYPE_CHECKING:
    from ._tensor import Tensor


def _cast_operands(a: Tensor, b: Tensor, divide: bool = False, zero_d_weak: bool = True
                   ) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` cast to :func:`dtypes.of_operands`' dtypes (integer operands
    carry no gradient, so the cast records nothing). A 0-d tensor beside one with dims is
    weak (PyTorch's rule) unless ``zero_d_weak`` is False: a number already placed by
    :func:`dtypes.of_scalar`."""
    da, db = dtypes.of_operands(a._data.dtype, b._data.dtype, divide,
                                a_weak=zero_d_weak and a.ndim == 0 < b.ndim,
                                b_weak=zero_d_weak and b.ndim == 0 < a.ndim)
    if da != a._data.dtype:
        a = a._new(a._data.astype(da)) if da.kind != "f" or a.dtype.kind != "f" else a.astype(da)
    if db != b._data.dtype:
        b = b._new(b._data.astype(db)) if db.kind != "f" or b.dtype.kind != "f" else b.astype(db)
    return a, b


def cast_operands(a: Tensor, b: Tensor, scalar: bool = False) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` in the dtypes an elementwise op of them computes in (``scalar``: one
    is a number lifted to a 0-d tensor, its dtype already chosen)."""
    return _cast_operands(a, b, zero_d_weak=not scalar)


def elementwise(op: type[Binary], a: Tensor, b: Tensor, scalar: bool = False) -> Tensor:
    """``op`` (``Add``, ``Sub``, ``Mul``, ``Div``) of two tensors whose shapes broadcast;
    ``scalar``: one of them is a Python or NumPy number, its dtype already chosen."""
    if a.shape != b.shape:  # (the message is built only when it is needed)
        check_broadcast(a.shape, b.shape, f"{op.__name__} ({op.symbol})")
    if op is Sub and (a._data.dtype.kind == "b" or b._data.dtype.kind == "b"):
        raise TypeError("subtraction (-) with a bool tensor is not supported (as in PyTorch); "
                        "to invert a mask use ~mask or mask.logical_not()")
    if a._data.dtype is not b._data.dtype or op is Div:
        a, b = _cast_operands(a, b, divide=op is Div, zero_d_weak=not scalar)
    return op.apply(a, b)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` with NumPy's rules; 1-D operands are promoted and squeezed, as in NumPy."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: scalar operand (shapes {a.shape} and {b.shape}); use *")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align "
            f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})"
        )
    if a.ndim == 1:  # (k,) @ (..., k, m) -> (..., m); (k,) @ (k,) -> ()
        out_shape = b.shape[:-2] + b.shape[-1:] if b.ndim > 1 else ()
        return matmul(a.reshape(1, -1), b).reshape(out_shape)
    if b.ndim == 1:
        return matmul(a, b.reshape(-1, 1)).reshape(a.shape[:-1])
    if a.ndim > 2 or b.ndim > 2:
        check_broadcast(a.shape[:-2], b.shape[:-2], "matmul batch axes")
    if a._data.dtype is not b._data.dtype:
        a, b = _cast_operands(a, b)
    return MatMul.apply(a, b)


def getitem(t: Tensor, index: Any) -> Tensor:
    """Index ``t`` with ints, slices, None, Ellipsis and integer/bool arrays or tensors."""
    if type(index) is int:  # x[t], a time step: nothing to convert (and bool is not int)
        return GetItem.apply(t, index=index, advanced=False)
    index, advanced = backend_index(t, index)
    return GetItem.apply(t, index=index, advanced=advanced)


def _tensor_list(tensors: Sequence[Tensor], what: str) -> list[Tensor]:
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, Node):
            raise TypeError(f"{what}() takes tensors, but item {i} is a {type(t).__name__}; "
                            "wrap it in tg.Tensor(...)")
    return tensors


def cat(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None
        ) -> Tensor:
    """Join tensors along an existing dim (``torch.cat``; ``axis=`` is an alias of
    ``dim=``); shapes must agree elsewhere."""
    axis = dim_alias(dim, axis, "cat")
    axis = 0 if axis is None else axis
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    floats = dtypes.of_joined([t.dtype for t in tensors])
    if floats is not None:
        tensors = [t if t.dtype.kind == "f" else t.astype(floats) for t in tensors]
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("cat() cannot join 0-d tensors; use stack()")
    ax = normalize_axes(axis, first.ndim)[0]
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(
                i != ax and m != n for i, (m, n) in enumerate(zip(t.shape, first.shape))):
            raise ValueError(
                f"cat along dim {axis}: shapes {first.shape} and {t.shape} differ off that axis")
    return Cat.apply(*tensors, axis=ax)


def stack(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None
        ) -> Tensor:
    """Join same-shaped tensors along a new dim (``torch.stack``): one op, not ``cat`` of
    reshaped tensors (a composed RNN stacks its T states: T + 1 graph nodes become 1)."""
    axis = dim_alias(dim, axis, "stack")
    axis = 0 if axis is None else axis
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise ValueError("stack() needs at least one tensor")
    shape = tensors[0].shape
    for t in tensors[1:]:
        if t.shape != shape:
            raise ValueError(f"stack: shapes {shape} and {t.shape} differ")
    ax = normalize_axes(axis, len(shape) + 1)[0]
    floats = dtypes.of_joined([t.dtype for t in tensors])  # cat's dtype rule
    if floats is not None:
        tensors = [t if t.dtype.kind == "f" else t.astype(floats) for t in tensors]
    return Stack.apply(*tensors, axis=ax)

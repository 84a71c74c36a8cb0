"""Picking and placing elements by index: ``gather``, ``scatter``, ``scatter_add``,
``index_select``, ``masked_fill`` (and ``masked_fill_``, ``scatter_``), as torch's.

``gather`` and ``index_select`` are indexing (:class:`ops.GetItem`, whose backward
scatter-adds); ``scatter`` is :class:`ops.Scatter`; ``masked_fill`` is ``where``. An
index is checked to lie in range where its values can be read (always on the host; on a
GPU one read-back, none within :func:`tinygrad_rnn.backends.no_read_back`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .autograd import Node
from .backends import read_back_allowed
from .checks import as_flag, check_broadcast, dim_alias, normalize_dim
from .elementwise import _is_number, where
from .functions import getitem
from .ops import GetItem, Scatter

if TYPE_CHECKING:
    from ._tensor import Tensor


def _tensor(x: Any, fn: str, what: str) -> Tensor:
    if not isinstance(x, Node):
        raise TypeError(f"{fn}: {what} must be a Tensor, got {type(x).__name__}")
    return x


def _index(index: Any, like: Tensor, fn: str) -> Tensor:
    """``index`` checked to be an integer tensor on ``like``'s backend."""
    index = _tensor(index, fn, "index")
    like._check_same_backend(index, fn)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{fn}: index must be an integer tensor (int64), got {index.dtype}")
    return index


def _check_range(index: Tensor, size: int, fn: str, dim: int) -> None:
    """Every value of ``index`` in [0, size), else an IndexError (as torch, no negatives)."""
    data, be = index.data, index._backend
    if not data.size or not (read_back_allowed() or be.xp is np):
        return
    bounds = be.to_numpy(be.xp.stack((data.min(), data.max())))
    low, high = int(bounds[0]), int(bounds[1])
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise IndexError(f"{fn}: index {bad} is out of bounds for dimension {dim} with size "
                         f"{size}")


def _grid(index: Any, dim: int, xp: Any) -> tuple:
    """The advanced index that picks, for each position p of ``index``, the element at
    p with p[dim] replaced by ``index[p]``: aranges elsewhere (they broadcast)."""
    n = index.ndim
    return tuple(index.astype(np.intp) if k == dim else
                 xp.arange(index.shape[k]).reshape([-1 if j == k else 1 for j in range(n)])
                 for k in range(n))


def _check_like(index: Tensor, input: Tensor, dim: int, fn: str, src: Tensor | None = None
                ) -> None:
    if index.ndim != max(input.ndim, 1) and not (index.ndim == 0 and input.ndim <= 1):
        raise ValueError(f"{fn}: index must have as many dimensions as input ({input.ndim}), "
                         f"got {index.ndim}")
    ishape = input.shape or (1,)
    for d, n in enumerate(index.shape):
        if d != dim and n > ishape[d]:
            raise ValueError(f"{fn}: index of shape {index.shape} is larger than input of "
                             f"shape {input.shape} at dimension {d}")
        if src is not None and n > (src.shape or (1,))[d]:
            raise ValueError(f"{fn}: index of shape {index.shape} is larger than src of shape "
                             f"{src.shape} at dimension {d}")


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False,
           axis: int | None = None) -> Tensor:
    """``out[p] = input[p with p[dim] = index[p]]`` (``torch.gather``): ``index`` has
    input's ndim and is no larger than input off ``dim``; the output has index's shape.
    The backward scatter-adds (an element picked twice gets both gradients)."""
    input = _tensor(input, "gather", "input")
    dim = normalize_dim(dim_alias(dim, axis, "gather"), input.ndim)
    index = _index(index, input, "gather")
    as_flag(sparse_grad, "gather: sparse_grad")
    _check_like(index, input, dim, "gather")
    _check_range(index, (input.shape or (1,))[dim], "gather", dim)
    x = input.reshape(1) if input.ndim == 0 else input
    idx = index.data.reshape(1) if index.ndim == 0 else index.data
    out = GetItem.apply(x, index=_grid(idx, dim, x._backend.xp), advanced=True)
    return out.reshape(index.shape) if index.ndim == 0 else out


def _scatter(input: Tensor, dim: Any, index: Tensor, src: Any, add: bool, fn: str,
             axis: Any = None) -> Tensor:
    input = _tensor(input, fn, "input")
    dim = normalize_dim(dim_alias(dim, axis, fn), input.ndim)
    index = _index(index, input, fn)
    xp = input._backend.xp
    if isinstance(src, Node):
        input._check_same_backend(src, fn)
        if src.dtype != input.dtype:
            raise TypeError(f"{fn}: src ({src.dtype}) must have input's dtype ({input.dtype})")
        if src.ndim != index.ndim:
            raise ValueError(f"{fn}: src must have as many dimensions as index ({index.ndim}), "
                             f"got {src.ndim}")
        _check_like(index, input, dim, fn, src)
        src = getitem(src, tuple(slice(0, n) for n in index.shape))  # the part index covers
    elif _is_number(src) and not add:
        _check_like(index, input, dim, fn)
        src = input._new(xp.full(index.shape, src, dtype=input.dtype))
    else:
        raise TypeError(f"{fn}: src must be a Tensor{'' if add else ' or a number'}, got "
                        f"{type(src).__name__}")
    _check_range(index, (input.shape or (1,))[dim], fn, dim)
    if input.ndim == 0:
        out = _scatter(input.reshape(1), 0, index.reshape(1), src.reshape(1), add, fn)
        return out.reshape(())
    return Scatter.apply(input, src, index=_grid(index.data, dim, xp), add=add)


def scatter(input: Tensor, dim: int, index: Tensor, src: Any = None, *, value: Any = None,
            reduce: str | None = None, axis: int | None = None) -> Tensor:
    """A copy of ``input`` with ``out[p with p[dim] = index[p]] = src[p]`` for each p of
    ``index`` (``torch.scatter``, out of place); ``src`` a tensor (of input's dtype, at
    least index's size) or a number (``value=``, as torch's other overload). Where an
    index repeats, one of the values lands, unspecified which (as torch). Gradient: src
    gets the output's gradient at the positions written; input, the rest."""
    if reduce is not None:
        raise NotImplementedError("scatter(reduce=...) is not supported; use scatter_add")
    if (src is None) == (value is None):
        raise TypeError("scatter takes src or value (one of them)")
    return _scatter(input, dim, index, src if value is None else value, False, "scatter", axis)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor, *,
                axis: int | None = None) -> Tensor:
    """A copy of ``input`` with ``src[p]`` added at ``p with p[dim] = index[p]`` for each
    p of ``index`` (``torch.scatter_add``); repeated indices accumulate."""
    return _scatter(input, dim, index, src, True, "scatter_add", axis)


def index_select(input: Tensor, dim: int, index: Tensor, *, axis: int | None = None) -> Tensor:
    """The slices of ``input`` at ``index`` (1-D or 0-d int) along ``dim``
    (``torch.index_select``): shape ``input.shape`` with ``dim`` of size ``len(index)``."""
    input = _tensor(input, "index_select", "input")
    dim = normalize_dim(dim_alias(dim, axis, "index_select"), input.ndim)
    index = _index(index, input, "index_select")
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D or 0-d, got shape {index.shape}")
    _check_range(index, (input.shape or (1,))[dim], "index_select", dim)
    x = input.reshape(1) if input.ndim == 0 else input
    rows = index.data.reshape(-1).astype(np.intp)  # an own copy
    # along dim 0, the bare array: the backends' scatter-add has a fast path for rows
    parts = rows if dim == 0 else (slice(None),) * dim + (rows,)
    out = GetItem.apply(x, index=parts, advanced=True)
    return out.reshape(()) if input.ndim == 0 and index.ndim == 0 else out


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """``value`` where ``mask`` (bool, broadcasting with input) is True, else ``input``
    (``torch.masked_fill``, out of place); ``value`` a number or a 0-d tensor. The
    gradient is input's where the mask is False, 0 where it is True (a select)."""
    input = _tensor(input, "masked_fill", "input")
    mask = _tensor(mask, "masked_fill", "mask")
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got {mask.dtype}")
    if isinstance(value, Node):
        if value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got a "
                             f"tensor of shape {value.shape}")
        value = value if value.dtype == input.dtype else value.astype(input.dtype)
    elif not _is_number(value):
        raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got "
                        f"{type(value).__name__}")
    else:
        value = input._new(input._backend.asarray(value, dtype=input.dtype))
    return where(mask, value, input)


# ------------------------------------------------------------------ in place
def masked_fill_(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """``input[mask] = value`` in place (``Tensor.masked_fill_``), under the rules of
    ``x[i] = y`` (refused while a graph records through ``input``; the version count
    moves, so a graph that saved ``input`` refuses its backward). ``mask`` broadcasts to
    input's shape."""
    input = _tensor(input, "masked_fill_", "input")
    mask = _tensor(mask, "masked_fill_", "mask")
    input._check_same_backend(mask, "masked_fill_")
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill_: mask must be a bool tensor, got {mask.dtype}")
    if check_broadcast(input.shape, mask.shape, "masked_fill_") != input.shape:
        raise ValueError(f"masked_fill_: mask of shape {mask.shape} must broadcast to the "
                         f"input's shape {input.shape} (in place, the input cannot grow)")
    if isinstance(value, Node) and value.ndim != 0:
        raise ValueError(f"masked_fill_: value must be a number or a 0-d tensor, got a "
                         f"tensor of shape {value.shape}")
    if not isinstance(value, Node) and not _is_number(value):
        raise TypeError(f"masked_fill_: value must be a number or a 0-d tensor, got "
                        f"{type(value).__name__}")
    full = mask._new(mask._backend.xp.broadcast_to(mask.data, input.shape))
    input[full] = value
    return input


def scatter_(input: Tensor, dim: int, index: Tensor, src: Any = None, *, value: Any = None,
             reduce: str | None = None) -> Tensor:
    """:func:`scatter` in place (``Tensor.scatter_``), under the rules of ``x[i] = y``:
    e.g. ``zeros(N, C).scatter_(1, labels[:, None], 1.0)`` for one-hot rows."""
    if reduce is not None:
        raise NotImplementedError("scatter_(reduce=...) is not supported")
    if (src is None) == (value is None):
        raise TypeError("scatter_ takes src or value (one of them)")
    src = src if value is None else value
    input = _tensor(input, "scatter_", "input")
    dim = normalize_dim(dim, input.ndim)
    index = _index(index, input, "scatter_")
    if isinstance(src, Node):
        input._check_same_backend(src, "scatter_")
        if src.dtype != input.dtype:
            raise TypeError(f"scatter_: src ({src.dtype}) must have input's dtype "
                            f"({input.dtype})")
        if src.ndim != index.ndim:
            raise ValueError(f"scatter_: src must have as many dimensions as index "
                             f"({index.ndim}), got {src.ndim}")
        _check_like(index, input, dim, "scatter_", src)
        src = src.detach()[tuple(slice(0, n) for n in index.shape)]
    elif _is_number(src):
        _check_like(index, input, dim, "scatter_")
    else:
        raise TypeError(f"scatter_: src must be a Tensor or a number, got {type(src).__name__}")
    _check_range(index, (input.shape or (1,))[dim], "scatter_", dim)
    if input.ndim == 0:
        input.reshape(1)[0] = src if _is_number(src) else src.reshape(())
        return input
    grid = _grid(index.data, dim, input._backend.xp)
    input[tuple(input._new(g) for g in grid)] = src
    return input


def scatter_add_(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """:func:`scatter_add` in place (``Tensor.scatter_add_``): repeated indices
    accumulate. Refused while a graph records through ``input`` or ``src`` (as ``x += y``
    is); the version count moves, so a graph that saved ``input`` refuses its backward."""
    input = _tensor(input, "scatter_add_", "input")
    src = _tensor(src, "scatter_add_", "src")
    dim = normalize_dim(dim, input.ndim)
    index = _index(index, input, "scatter_add_")
    input._check_same_backend(src, "scatter_add_")
    if src.dtype != input.dtype:
        raise TypeError(f"scatter_add_: src ({src.dtype}) must have input's dtype "
                        f"({input.dtype})")
    if src.ndim != index.ndim:
        raise ValueError(f"scatter_add_: src must have as many dimensions as index "
                         f"({index.ndim}), got {src.ndim}")
    _check_like(index, input, dim, "scatter_add_", src)
    _check_range(index, (input.shape or (1,))[dim], "scatter_add_", dim)
    input._check_writable("scatter_add_()", src.requires_grad, "use x = x.scatter_add(...)")
    data = input.data.reshape(1) if input.ndim == 0 else input.data
    idx = index.data.reshape(1) if index.ndim == 0 else index.data
    part = src.data[tuple(slice(0, n) for n in idx.shape)] if src.ndim else src.data.reshape(1)
    input._backend.xp.add.at(data, _grid(idx, dim if input.ndim else 0, input._backend.xp),
                             part)
    input._version.count += 1
    return input

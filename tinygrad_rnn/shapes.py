"""Shape ops beyond ``reshape``/``transpose``/``flatten``, as torch's: ``expand``,
``expand_as``, ``view``, ``permute``, ``clone``, ``repeat``, ``chunk``, ``split``. All
composed (views where torch gives views), except ``expand`` (:class:`ops.Expand`, a
broadcast view) and ``clone`` (:class:`ops.Clone`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .autograd import Node
from .checks import DimError, as_int, dim_alias, normalize_dim
from .functions import getitem
from .ops import Clone, Expand, Transpose

if TYPE_CHECKING:
    from ._tensor import Tensor


def _tensor(x: Any, fn: str) -> Tensor:
    if not isinstance(x, Node):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(x).__name__}")
    return x


def _dim(dim: Any, axis: Any, fn: str) -> Any:
    """``dim`` or its alias ``axis`` (:func:`checks.dim_alias`), 0 if neither is given."""
    dim = dim_alias(dim, axis, fn)
    return 0 if dim is None else dim


def sizes_of(sizes: tuple, fn: str) -> tuple[int, ...]:
    """Sizes given as ints or as one tuple/list (``x.expand(2, 3)`` or ``x.expand((2, 3))``)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    return tuple(as_int(s, f"{fn}'s sizes") for s in sizes)


def expand(input: Tensor, *sizes: int | Sequence[int]) -> Tensor:
    """A broadcast view of ``input`` with shape ``sizes`` (``Tensor.expand``): -1 keeps a
    dim, a dim of size 1 may grow, new dims go in front. No copy (writes to it are
    refused); the gradient sums over the copies."""
    input = _tensor(input, "expand")
    shape = sizes_of(sizes, "expand")
    lead = len(shape) - input.ndim
    if lead < 0:
        raise ValueError(f"expand: the number of sizes ({len(shape)}) must be at least the "
                         f"tensor's number of dims ({input.ndim})")
    out = []
    for i, n in enumerate(shape):
        old = input.shape[i - lead] if i >= lead else None
        if n == -1:
            if old is None:
                raise ValueError(f"expand: size -1 is not allowed in a new leading dim ({i})")
            n = old
        elif n < 0:
            raise ValueError(f"expand: sizes must be >= 0 or -1, got {n}")
        elif old is not None and old != 1 and old != n:
            raise ValueError(f"expand: the expanded size ({n}) must match the existing size "
                             f"({old}) at non-singleton dim {i}; shape {input.shape} to {shape}")
        out.append(n)
    return Expand.apply(input, shape=tuple(out))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    """``input.expand(other.shape)``."""
    return expand(input, _tensor(other, "expand_as").shape)


def view(input: Tensor, *shape: int | Sequence[int]) -> Tensor:
    """The same data seen in ``shape`` (one -1 inferred), always a view (``Tensor.view``):
    where the layout needs a copy it raises, as torch, and ``reshape`` is the answer."""
    input = _tensor(input, "view")
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
        raise TypeError(f"view takes sizes (ints), got {shape[0]!r} (view(dtype) is not "
                        "supported; use .astype())")
    out = input.reshape(sizes_of(shape, "view"))
    if input.numel() and not input._backend.xp.may_share_memory(out.data, input.data):
        raise RuntimeError(f"view: shape {out.shape} is not compatible with the layout of "
                           f"this tensor (shape {input.shape}, not contiguous); use "
                           ".reshape(...) instead")
    return out


def permute(input: Tensor, *dims: int | Sequence[int]) -> Tensor:
    """A view with the dims reordered (``torch.permute``): ``dims`` a permutation of all
    dims (ints or one tuple; negatives count from the end)."""
    input = _tensor(input, "permute")
    dims = sizes_of(dims, "permute")
    if len(dims) != input.ndim:
        raise ValueError(f"permute: {len(dims)} dims given for a tensor with {input.ndim}")
    axes = tuple(normalize_dim(d, input.ndim) for d in dims)
    if len(set(axes)) != len(axes):
        raise DimError(f"permute: dims {dims} repeat a dim")
    return Transpose.apply(input, axes=axes) if input.ndim else input.reshape(())


def clone(input: Tensor, *, memory_format: Any = None) -> Tensor:
    """A copy that keeps the graph (``torch.clone``): the gradient passes through."""
    return Clone.apply(_tensor(input, "clone"))


def repeat(input: Tensor, *sizes: int | Sequence[int]) -> Tensor:
    """``input`` tiled ``sizes[i]`` times along each dim (``Tensor.repeat``, NumPy's
    ``tile``); more sizes than dims add leading dims. Composed: a view with a size-1 dim
    before each, expanded, reshaped (one copy); the gradient sums over the tiles."""
    input = _tensor(input, "repeat")
    reps = sizes_of(sizes, "repeat")
    if len(reps) < input.ndim:
        raise ValueError(f"repeat: the number of sizes ({len(reps)}) can not be smaller than "
                         f"the tensor's number of dims ({input.ndim})")
    if any(r < 0 for r in reps):
        raise ValueError(f"repeat: sizes must be >= 0, got {reps}")
    shape = (1,) * (len(reps) - input.ndim) + input.shape
    spread = tuple(n for s in shape for n in (1, s))
    tiled = tuple(n for r, s in zip(reps, shape) for n in (r, s))
    return expand(input.reshape(spread), tiled).reshape(
        tuple(r * s for r, s in zip(reps, shape)))


def split(tensor: Tensor, split_size_or_sections: int | Sequence[int], dim: int | None = None,
          *, axis: int | None = None) -> tuple[Tensor, ...]:
    """Views of ``tensor`` along ``dim`` (``torch.split``): pieces of size
    ``split_size_or_sections`` (the last may be smaller), or of the listed sizes, which
    must add up to the dim's size. ``dim`` defaults to 0 (``axis=`` is its alias)."""
    tensor = _tensor(tensor, "split")
    if tensor.ndim == 0:
        raise ValueError("split: a 0-d tensor cannot be split")
    d = normalize_dim(_dim(dim, axis, "split"), tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [as_int(s, "split's sizes") for s in split_size_or_sections]
        if any(s < 0 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} must be >= 0 and add up to the size of dim "
                             f"{d}, {n}")
    else:
        size = as_int(split_size_or_sections, "split_size_or_sections")
        if size <= 0 and not (size == 0 and n == 0):
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - i) for i in range(0, n, size)] if n else [0]
    out, start = [], 0
    for s in sizes:
        out.append(getitem(tensor, (slice(None),) * d + (slice(start, start + s),)))
        start += s
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int | None = None, *, axis: int | None = None
          ) -> tuple[Tensor, ...]:
    """``input`` split into ``chunks`` views along ``dim`` of ``ceil(n / chunks)`` each
    (``torch.chunk``), so there may be fewer than ``chunks``; ``dim`` defaults to 0."""
    input = _tensor(input, "chunk")
    chunks = as_int(chunks, "chunk's chunks")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    if input.ndim == 0:
        raise ValueError("chunk: a 0-d tensor cannot be chunked")
    d = normalize_dim(_dim(dim, axis, "chunk"), input.ndim)
    n = input.shape[d]
    return split(input, -(-n // chunks) if n else 0, d)

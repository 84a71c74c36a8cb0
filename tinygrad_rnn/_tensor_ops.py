"""Tensor methods for the everyday ops beyond the core (``where``, ``maximum``,
``var``, ``gather``, the activations, …), each a thin call into :mod:`elementwise`,
:mod:`reductions`, :mod:`selection`, :mod:`shapes` or :mod:`nn.functional`.

A mixin of :class:`~tinygrad_rnn.Tensor` (``_tensor.py`` keeps the core).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import elementwise, reductions, selection, shapes

Dims = int | Sequence[int] | None


class OpsMixin:
    """Tensor methods of the ops beyond the core."""

    __slots__ = ()

    # ------------------------------------------------------------- elementwise
    def where(self, condition: Any, other: Any) -> Any:
        """``self`` where ``condition``, else ``other`` (``Tensor.where``)."""
        return elementwise.where(condition, self, other)

    def maximum(self, other: Any) -> Any:
        """Elementwise max with ``other``; ties split the gradient (torch)."""
        return elementwise.maximum(self, other)

    def minimum(self, other: Any) -> Any:
        """Elementwise min with ``other``; ties split the gradient (torch)."""
        return elementwise.minimum(self, other)

    def pow(self, exponent: Any) -> Any:
        """``self ** exponent``, a number or a tensor (:func:`tinygrad_rnn.pow`)."""
        return elementwise.pow(self, exponent)

    def __rpow__(self, base: Any) -> Any:
        """``number ** tensor``."""
        return elementwise.pow(base, self)

    # -------------------------------------------------------------- reductions
    def var(self, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None, axis: Dims = None) -> Any:
        """Variance over ``dim`` (``correction=1``, torch's default)."""
        return reductions.var(self, dim, unbiased, keepdim, correction=correction, axis=axis)

    def std(self, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None, axis: Dims = None) -> Any:
        """Standard deviation over ``dim`` (``correction=1``, torch's default)."""
        return reductions.std(self, dim, unbiased, keepdim, correction=correction, axis=axis)

    def logsumexp(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None) -> Any:
        """``log Σ exp`` over ``dim`` (required), stable."""
        return reductions.logsumexp(self, dim, keepdim, axis=axis)

    def cumsum(self, dim: int | None = None, *, dtype: Any = None, axis: int | None = None
               ) -> Any:
        """Running sums along ``dim``."""
        return reductions.cumsum(self, dim, dtype=dtype, axis=axis)

    # --------------------------------------------------------------- selection
    def gather(self, dim: int, index: Any, *, sparse_grad: bool = False) -> Any:
        """``torch.gather(self, dim, index)``."""
        return selection.gather(self, dim, index, sparse_grad=sparse_grad)

    def scatter(self, dim: int, index: Any, src: Any = None, *, value: Any = None,
                reduce: str | None = None) -> Any:
        """``torch.scatter(self, dim, index, src)``, out of place."""
        return selection.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self, dim: int, index: Any, src: Any) -> Any:
        """``torch.scatter_add(self, dim, index, src)``, out of place."""
        return selection.scatter_add(self, dim, index, src)

    def index_select(self, dim: int, index: Any) -> Any:
        """The slices at ``index`` along ``dim``."""
        return selection.index_select(self, dim, index)

    def masked_fill(self, mask: Any, value: Any) -> Any:
        """``value`` where ``mask``, else self (out of place)."""
        return selection.masked_fill(self, mask, value)

    def masked_fill_(self, mask: Any, value: Any) -> Any:
        """``self[mask] = value`` in place (the rules of ``x[i] = y``); returns self."""
        return selection.masked_fill_(self, mask, value)

    def scatter_(self, dim: int, index: Any, src: Any = None, *, value: Any = None,
                 reduce: str | None = None) -> Any:
        """:meth:`scatter` in place (the rules of ``x[i] = y``); returns self."""
        return selection.scatter_(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add_(self, dim: int, index: Any, src: Any) -> Any:
        """:meth:`scatter_add` in place (refused while a graph records); returns self."""
        return selection.scatter_add_(self, dim, index, src)

    # ------------------------------------------------------------------ shapes
    def expand(self, *sizes: int | Sequence[int]) -> Any:
        """A broadcast view of shape ``sizes`` (-1 keeps a dim)."""
        return shapes.expand(self, *sizes)

    def expand_as(self, other: Any) -> Any:
        """``self.expand(other.shape)``."""
        return shapes.expand_as(self, other)

    def view(self, *shape: int | Sequence[int]) -> Any:
        """The same data in ``shape``; a view or an error, never a copy."""
        return shapes.view(self, *shape)

    def view_as(self, other: Any) -> Any:
        """``self.view(other.shape)``."""
        return shapes.view(self, other.shape)

    def permute(self, *dims: int | Sequence[int]) -> Any:
        """A view with the dims reordered."""
        return shapes.permute(self, *dims)

    def clone(self, *, memory_format: Any = None) -> Any:
        """A copy that keeps the graph."""
        return shapes.clone(self)

    def repeat(self, *sizes: int | Sequence[int]) -> Any:
        """Tiled ``sizes[i]`` times along each dim."""
        return shapes.repeat(self, *sizes)

    def split(self, split_size: int | Sequence[int], dim: int | None = None, *,
              axis: int | None = None) -> Any:
        """Views along ``dim`` (default 0) of the given size(s)."""
        return shapes.split(self, split_size, dim, axis=axis)

    def chunk(self, chunks: int, dim: int | None = None, *, axis: int | None = None) -> Any:
        """``chunks`` views along ``dim`` (default 0; maybe fewer)."""
        return shapes.chunk(self, chunks, dim, axis=axis)

    # ---------------------------------------------------------- softmax family
    def softmax(self, dim: int) -> Any:
        """``tg.nn.functional.softmax(self, dim)``."""
        from .nn.functional import softmax
        return softmax(self, dim)

    def log_softmax(self, dim: int) -> Any:
        """``tg.nn.functional.log_softmax(self, dim)``."""
        from .nn.functional import log_softmax
        return log_softmax(self, dim)

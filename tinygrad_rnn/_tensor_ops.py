"""Tensor methods for the everyday ops beyond the core (``where``, ``maximum``,
``var``, ``gather``, the activations, …), each a thin call into :mod:`functions`.

A mixin of :class:`~tinygrad_rnn.Tensor` (``_tensor.py`` keeps the core).
"""

from __future__ import annotations


class OpsMixin:
    """Tensor methods of the ops beyond the core."""

    __slots__ = ()

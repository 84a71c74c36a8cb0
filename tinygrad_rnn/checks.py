"""Argument checks shared by the framework and the programs built on it.

Each turns a value into what the caller needs (an int, a flag, a tuple of axes) or
raises one clear error naming the argument: a ``TypeError`` for a value of the wrong
type, a ``ValueError`` for one out of range. None of them knows about tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def check_broadcast(a: tuple, b: tuple, op: str) -> tuple:
    """The broadcast shape of ``a`` and ``b``, or a ValueError naming both.

    NumPy's rule, written out: every op of a composed RNN step comes here, and
    ``np.broadcast_shapes`` (which builds arrays to find out) costs 1.4 µs a call
    against a few hundred ns for this loop over at most a handful of dims."""
    if a == b:
        return tuple(a)
    a, b = tuple(a), tuple(b)
    if len(a) < len(b):
        a, b = b, a
    lead = len(a) - len(b)
    out = list(a)
    for i, n in enumerate(b):
        m = a[lead + i]
        if n != m:
            if m == 1:
                out[lead + i] = n
            elif n != 1:
                raise ValueError(f"{op}: shapes {a} and {b} cannot be broadcast together")
    return tuple(out)


def as_int(value: Any, what: str) -> int:
    """``value`` as a Python int, or a TypeError naming ``what``: an int or NumPy integer,
    not a bool, a float or a string (``int()`` would silently truncate or parse them)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {value!r}")
    return int(value)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number: an int or a float (Python or NumPy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def as_nonnegative(value: Any, what: str) -> float:
    """``value`` as a float if it is a finite number >= 0 (a spread, a decay, a momentum),
    else a TypeError or ValueError naming ``what``: a NaN or inf would spread silently."""
    if not is_real(value):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{what} must be a finite number >= 0, got {value}")
    return float(value)


def as_flag(value: Any, what: str) -> bool:
    """``value`` if it is True or False, else a TypeError naming ``what``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return bool(value)


class DimError(IndexError, ValueError):
    """A dim out of range: an ``IndexError`` (what torch raises) and a ``ValueError``
    (what NumPy's ``AxisError`` also is), so either ``except`` catches it."""


def dim_alias(dim: Any, axis: Any, what: str) -> Any:
    """The one dim given as torch's ``dim=`` or NumPy's ``axis=`` (torch accepts both
    names too); a TypeError naming ``what`` if both are given."""
    if axis is None:
        return dim
    if dim is not None:
        raise TypeError(f"{what} takes dim or axis (the same argument), not both")
    return axis


def normalize_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes (all axes for ``None``).

    As torch, a 0-d tensor accepts dims 0 and -1 (it has "one" dim of size 1): they
    name no axis, so the result is ``()``. A dim out of range raises :class:`DimError`.
    """
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, (int, np.integer, Sequence)) or isinstance(axis, (bool, str)):
        raise TypeError(f"dim must be an int or a sequence of ints, got {axis!r}")
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, (bool, np.bool_)):
            raise TypeError(f"dim must be an int or a sequence of ints, got {axis!r}")
        out.append(normalize_dim(a, ndim))
    if len(set(out)) != len(out):
        raise ValueError(f"dim {axis} repeats a dim")
    return tuple(sorted(a for a in out if ndim > 0))


def normalize_dim(dim: Any, ndim: int) -> int:
    """One dim as a non-negative int below ``max(ndim, 1)`` (a 0-d tensor takes 0 and
    -1, both giving 0, as in torch), or a :class:`DimError` naming the dim and the ndim."""
    dim = as_int(dim, "dim")
    span = max(ndim, 1)
    if not -span <= dim < span:
        raise DimError(f"dim {dim} is out of range for a tensor with {ndim} dimensions "
                       f"(expected a dim in [{-span}, {span - 1}])")
    return dim % span


def check_sizes(**sizes: Any) -> None:
    """Each size must be a positive int (``Linear(in_features=0)`` is refused by name)."""
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

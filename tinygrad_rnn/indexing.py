"""Indexing's preparation: an index made of the tensor's backend arrays, and the
layouts refused.

``x[index]`` itself is the op :class:`ops.GetItem`; this module only turns the index
into arrays of the tensor's backend (own copies, so a later change to the caller's
index cannot change a saved one) and refuses the indexes whose result NumPy and
PyTorch lay out differently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .autograd import Node

if TYPE_CHECKING:
    from ._tensor import Tensor


def describe_index(index: Any) -> str:
    """``index`` as text for error messages, arrays by their shape: ``[array(3,), 0]``."""
    parts = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(f"array{tuple(p.shape)}" if hasattr(p, "shape") else repr(p)
                           for p in parts) + "]"


def backend_index(t: Tensor, index: Any, check_layout: bool = True) -> tuple[Any, bool]:
    """``index`` with tensors, lists, tuples and ranges in it as ``t``'s backend arrays
    (own copies: a caller changing theirs later must not change a saved index), and
    whether it is an advanced index. ``check_layout``: refuse an index whose result
    NumPy and PyTorch lay out differently (:func:`_check_layout`)."""
    parts = index if isinstance(index, tuple) else (index,)
    converted, advanced = [], False
    for p in parts:
        if isinstance(p, Node):  # a Tensor
            t._check_same_backend(p, "indexing")
            if p.dtype.kind not in "iub":
                raise TypeError(f"index tensors must be integer or bool, got {p.dtype}")
            p, advanced = p.data.copy(), True
        elif not isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis))):
            # lists, tuples, ranges, arrays (NumPy's, the backend's, array.array ...):
            # NumPy indexes with all of them as arrays, so the backward must scatter-add
            if isinstance(p, (list, tuple, range)) and len(p) == 0:
                p = np.zeros(0, np.intp)  # NumPy reads [] as float: an empty selection
            given, p = p, t._backend.asarray(p)
            if p is given:
                p = p.copy()
            if p.dtype.kind not in "iub":
                raise TypeError(f"index arrays must be integer or bool, got {p.dtype}")
            advanced = True
        converted.append(p)
    if advanced and check_layout and len(converted) > 1:  # one part: a single block
        _check_layout(converted, t.ndim)
    index = tuple(converted) if isinstance(index, tuple) or len(converted) != 1 else converted[0]
    return index, advanced


def _check_layout(parts: list, ndim: int) -> None:
    """Refuse an index whose result NumPy and PyTorch lay out differently.

    Both put the axes of the index arrays (broadcast together) in one block: where the
    first array stood if the arrays are side by side, else first. They differ in what
    parts them. NumPy counts an int (or a 0-d array) as one of the arrays and any ``...``
    as a separator; PyTorch applies the ints first, and a ``...`` that stands for no axis
    separates nothing. So ``x[0, :, [0, 1]]`` is (2, 3) in NumPy for x of shape (2, 3, 4)
    and (3, 2) in PyTorch. Either reading would surprise someone, so neither is guessed.
    """
    kinds: list[Any] = []  # per part: "int", "array", a basic part's result axes, or ...
    consumed = 0  # axes of x the parts use up (the Ellipsis takes the rest)
    for p in parts:
        is_mask = hasattr(p, "dtype") and p.dtype.kind == "b"
        if p is None or isinstance(p, (bool, np.bool_)) or (is_mask and p.ndim == 0):
            kinds.append(1)  # a new axis
        elif isinstance(p, (int, np.integer)) or getattr(p, "ndim", None) == 0:
            kinds.append("int")
            consumed += 1
        elif hasattr(p, "dtype"):
            kinds.append("array")
            consumed += p.ndim if is_mask else 1
        elif isinstance(p, slice):
            kinds.append(1)
            consumed += 1
        else:
            kinds.append(p)  # the Ellipsis, sized once all is counted
    sizes = [max(ndim - consumed, 0) if k is Ellipsis else k for k in kinds]

    def block_position(members: list[int], separates: Any) -> int:
        """Where the arrays' block lands: after the basic axes before it, or first."""
        inside = range(members[0], members[-1] + 1)
        if any(i not in members and separates(i) for i in inside):
            return 0
        return sum(n for n in sizes[:members[0]] if isinstance(n, int))

    arrays = [i for i, k in enumerate(kinds) if k == "array"]
    ints = [i for i, k in enumerate(kinds) if k == "int"]
    if not arrays:  # ints and 0-d arrays alone make no block
        return
    numpy_at = block_position(sorted(arrays + ints), lambda i: kinds[i] not in ("int", "array"))
    torch_at = block_position(arrays, lambda i: isinstance(sizes[i], int) and sizes[i] > 0)
    if numpy_at != torch_at:
        raise IndexError(
            "NumPy and PyTorch order the axes of this index's result differently (an int, "
            "or a ..., between index arrays and the other axes, as in x[0, :, [0, 1]]); "
            "index in two steps to say which, e.g. x[0][:, [0, 1]]")

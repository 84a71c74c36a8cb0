"""``einsum``: Einstein summation over tensors (``torch.einsum``), one primitive
(:class:`ops.Einsum`, NumPy's/CuPy's ``einsum`` both ways).

Here the equation is spelled out before the op: ``...`` becomes letters of its own
(right-aligned, so ``'...ij,...jk->...ik'`` batches), an implicit output (no ``->``)
becomes the letters that appear once, in alphabetical order, after the ``...`` dims
(torch's and NumPy's rule), and a dim of size 1 where another operand has n under the
same letter is expanded (broadcast, as torch does).
"""

from __future__ import annotations

import string
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from . import dtypes
from .autograd import Node
from .ops import Einsum
from .shapes import expand

if TYPE_CHECKING:
    from ._tensor import Tensor

LETTERS = string.ascii_letters


def einsum(equation: str, *operands: Tensor | Any) -> Tensor:
    """``einsum('ij,jk->ik', a, b)`` and every form with letters, ``...``, repeated
    letters (``'ii->i'``, a diagonal; ``'ii'``, the trace) and an implicit output.
    The operands may also come as one list. Integers with floats compute in the floats'
    dtype; the gradient of each operand is the einsum of the others with the output's."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: equation must be a str, got {type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: needs at least one operand")
    for i, t in enumerate(operands):
        if not isinstance(t, Node):
            raise TypeError(f"einsum: operand {i} must be a Tensor, got {type(t).__name__}")
        operands[0]._check_same_backend(t, "einsum")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: the equation {equation!r} has {len(inputs)} operands' "
                         f"subscripts, but {len(operands)} operands were given")
    bad = set(eq) - set(LETTERS) - set(",->.")
    if bad or eq.replace("...", "").count(".") or any(c in lhs + rhs for c in "->"):
        raise ValueError(f"einsum: invalid equation {equation!r} (subscripts are letters, "
                         "'...', ',' and one '->')")
    free = iter(c for c in LETTERS if c not in eq)
    ranks = []
    for s, t in zip(inputs, operands):
        named = len(s.replace("...", ""))
        if "..." in s and s.count("...") == 1 and t.ndim >= named:
            ranks.append(t.ndim - named)
        elif "..." not in s and t.ndim == named:
            ranks.append(0)
        else:
            raise ValueError(f"einsum: subscripts {s!r} do not fit an operand with {t.ndim} "
                             "dims")
    ellipsis = "".join(next(free) for _ in range(max(ranks)))
    inputs = [s.replace("...", ellipsis[len(ellipsis) - r:]) for s, r in zip(inputs, ranks)]
    if arrow:
        if rhs.count("...") > 1:
            raise ValueError(f"einsum: invalid output subscripts {rhs!r}")
        output = rhs.replace("...", ellipsis)
        for c in output:
            if c not in "".join(inputs):
                raise ValueError(f"einsum: output subscript {c!r} appears in no operand")
        if len(set(output)) != len(output):
            raise ValueError(f"einsum: output subscripts {rhs!r} repeat a letter")
    else:
        counts = Counter("".join(inputs))
        output = ellipsis + "".join(sorted(c for c in counts if counts[c] == 1
                                           and c not in ellipsis))
    size: dict[str, int] = {}
    for s, t in zip(inputs, operands):
        for c, n in zip(s, t.shape):
            if size.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"einsum: subscript {c!r} has size {size[c]} in one operand "
                                 f"and {n} in another")
            if n != 1 or c not in size:
                size[c] = n
    ops = []
    for s, t in zip(inputs, operands):
        want = tuple(size[c] for c in s)
        if t.shape != want and len(set(s)) == len(s):
            t = expand(t, want)
        elif t.shape != want:
            raise ValueError(f"einsum: a repeated subscript in {s!r} cannot broadcast")
        ops.append(t)
    dts = [t.dtype for t in ops]
    common = dtypes.of_joined(dts) or np.result_type(*dts)
    ops = [t if t.dtype == common else t.astype(common) for t in ops]
    return Einsum.apply(*ops, inputs=inputs, output=output)

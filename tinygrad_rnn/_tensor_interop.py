"""How a Tensor meets the rest of Python: NumPy's ``__array__``, DLPack, ``format``,
``float``/``int``/``bool``/``index`` (the rules are torch's).

A mixin of :class:`~tinygrad_rnn.Tensor` (``_tensor.py`` keeps the core); it uses only
the tensor's own attributes.
"""

from __future__ import annotations


class InteropMixin:
    """Tensor methods for interoperation with NumPy, DLPack and Python's builtins."""

    __slots__ = ()

"""How a Tensor meets the rest of Python: NumPy's ``__array__``, DLPack, ``format``,
``float``/``int``/``bool``/``index``, ``item``, ``tolist`` (the rules are torch's).

A mixin of :class:`~tinygrad_rnn.Tensor` (``_tensor.py`` keeps the core); it uses only
the tensor's own attributes. ``tg.from_dlpack`` (the other way) is in :mod:`creation`.

=====================================  ==============================================
``np.asarray(t)``, ``np.array(t)``     the values (the tensor's own memory on a CPU
                                       backend, as torch's); refused, as torch does,
                                       for a tensor that requires grad, and as CuPy
                                       does for one on the GPU (use ``.numpy()``)
``np.sin(t)`` and other ufuncs         computed by NumPy on the values; the result is
                                       a tensor (no graph), as torch's
``t.__dlpack__()``                     the tensor's memory, zero-copy; refused for a
                                       tensor that requires grad (BufferError, torch's)
``f"{t:.3f}"``                         a 0-d tensor formats as its number; others only
                                       with an empty spec (as ``str``), as torch
``float(t) int(t) complex(t)``         one-element tensors only (ValueError)
``t.item()``, ``bool(t)``              one element only (an error that is both torch's
                                       RuntimeError and NumPy's ValueError)
``operator.index(t)``, ``x[t]``        one-element integer (or bool) tensors only
``t.tolist()``                         nested lists of Python numbers
=====================================  ==============================================
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ScalarConversionError(RuntimeError, ValueError):
    """A tensor of other than one element asked for its one value (``item()``,
    ``bool()``): a RuntimeError, as torch raises, and a ValueError, as NumPy raises."""


_GRAD_MESSAGE = ("{what} of a tensor that requires grad, as in torch: the result "
                 "would not be part of the graph; use tensor.detach(){instead}")


class InteropMixin:
    """Tensor methods for interoperation with NumPy, DLPack and Python's builtins."""

    __slots__ = ()

    # ------------------------------------------------------------ to Python
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """A NumPy copy of the data (copied back from a GPU where needed).

        Unlike torch's ``numpy()`` it is always a copy, so it also works for a tensor
        that requires grad and on the GPU (torch's ``force=True``); for the tensor's own
        memory use ``np.asarray(t)``.
        """
        return self._backend.to_numpy(self.data)

    def item(self) -> bool | int | float:
        """The one element as a Python number (of any shape with one element)."""
        if self.numel() != 1:
            raise ScalarConversionError(
                f"item() needs a tensor with one element, got shape {self.shape} "
                f"({self.numel()} elements)")
        return self.numpy().reshape(()).item()

    def tolist(self) -> Any:
        """The data as nested Python lists (a Python number for a 0-d tensor)."""
        return self.numpy().tolist()

    def _one_number(self, what: str) -> bool | int | float:
        if self.numel() != 1:
            raise ValueError(f"{what}: only one-element tensors can be converted to Python "
                             f"scalars, got shape {self.shape}")
        return self.item()

    def __float__(self) -> float:
        return float(self._one_number("float()"))

    def __int__(self) -> int:
        """The one element truncated toward zero (NaN: ValueError; inf: OverflowError)."""
        return int(self._one_number("int()"))

    def __index__(self) -> int:
        """The one element as an index: integer or bool tensors only, as torch."""
        if self.dtype.kind not in "iub" or self.numel() != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to "
                            f"an index, got a {self.dtype} tensor of shape {self.shape}")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.numel() != 1:
            state = "no values" if self.numel() == 0 else "more than one value"
            raise ScalarConversionError(
                f"the truth value of a tensor with {state} (shape {self.shape}) is "
                "ambiguous; use .any() / .all() or compare .item()")
        return bool(self.item())

    def __format__(self, format_spec: str) -> str:
        """``f"{loss:.3f}"``: a 0-d tensor formats as its number; any other only with an
        empty spec (as ``str``), else a TypeError, as torch does."""
        if self.ndim == 0:
            return format(self.item(), format_spec)
        return object.__format__(self, format_spec)

    # ---------------------------------------------------------------- NumPy
    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The values for NumPy (``np.asarray(t)``): the tensor's own array on a CPU
        backend (a write to it shows in the tensor, as torch's); a cast or a copy when
        NumPy asks (NumPy 2's ``copy=``: False refuses to copy, True always copies)."""
        if self.requires_grad:
            raise RuntimeError(_GRAD_MESSAGE.format(
                what="NumPy conversion", instead=" first (np.asarray(t.detach()))"))
        data = self.data
        if not isinstance(data, np.ndarray):  # the GPU: CuPy's own refusal, in our words
            raise TypeError("Implicit conversion to a NumPy array is not allowed. Please "
                            "use `.numpy()` to construct a NumPy array explicitly.")
        if dtype is not None and np.dtype(dtype) != data.dtype:
            if copy is False:
                raise ValueError(f"np.asarray(tensor, copy=False): a {data.dtype} tensor "
                                 f"cannot be seen as {np.dtype(dtype)} without a copy")
            return data.astype(dtype)
        return data.copy() if copy else data

    def __array_wrap__(self, array: np.ndarray, context: Any = None,
                       return_scalar: bool = False) -> Any:
        """A ufunc's result (``np.sin(t)``) as a tensor on this backend, no graph, as
        torch's; a dtype a tensor cannot hold (complex, object) stays an array."""
        if isinstance(array, np.ndarray) and array.dtype.kind in "fiub":
            return self._new(array)
        return array

    # --------------------------------------------------------------- DLPack
    def __dlpack__(self, *, stream: Any = None, max_version: tuple[int, int] | None = None,
                   dl_device: Any = None, copy: bool | None = None) -> Any:
        """The data as a DLPack capsule, zero-copy (``np.from_dlpack(t)``,
        ``torch.from_dlpack(t)``, ``cupy.from_dlpack(t)``); refused (BufferError, as
        torch's) for a tensor that requires grad."""
        if self.requires_grad:
            raise BufferError(_GRAD_MESSAGE.format(what="DLPack export", instead=""))
        given = {"stream": stream, "max_version": max_version, "dl_device": dl_device,
                 "copy": copy}  # only what was given: older exporters take fewer keywords
        return self.data.__dlpack__(**{k: v for k, v in given.items() if v is not None})

    def __dlpack_device__(self) -> tuple[Any, int]:
        """The DLPack device (type, id) of the data: (1, 0) for the CPU, (2, n) for CUDA."""
        return self.data.__dlpack_device__()

"""Every dtype rule of the framework, one function per question.

Tensors hold float, integer or bool NumPy dtypes. Where NumPy's promotion and
PyTorch's differ, PyTorch's rule is taken (a user's code comes from there):

========================================  ==========================  ====================
question                                  answer                      function
========================================  ==========================  ====================
a new tensor from data                    float data: float32;        :func:`of_data`
                                          ints, bools: their own;
                                          ``dtype=`` wins
a Python int beside a tensor              a float tensor's dtype;     :func:`of_scalar`
                                          an int tensor's if it fits
                                          (``i32 * 2`` is int32), else
                                          int64 / uint64 / float64
a Python float beside an int tensor       float32                     :func:`of_scalar`
a NumPy scalar or a bool beside an int    its own                     :func:`of_scalar`
two tensors (``+ - *``, ``@``)            int with float: the float   :func:`of_operands`
                                          dtype; else NumPy's
two tensors divided                       as above, ints: float32     :func:`of_operands`
``exp log tanh sigmoid softmax`` of ints  float32                     :func:`of_float_function`
``x ** p``                                float p, int x: float32;    :func:`of_power`
                                          negative int p, int x:
                                          refused
``cat`` of several                        ints with floats: the       :func:`of_joined`
                                          floats' dtype
``x op= y``                               x's own; refused where the  :func:`check_in_place`
                                          result would not cast to it
                                          ``same_kind``
``x[i] = y``                              x's own; refused where y's  :func:`check_assignable`
                                          would not
``clamp(x, lo, hi)``                      x's; float32 for ints with  :func:`of_clamp`
                                          a float bound; an int bound
                                          that does not fit: refused
========================================  ==========================  ====================

Integer tensors carry no gradient, so a cast these rules ask for records nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT32 = np.dtype(np.float32)


def checked(dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy dtype a tensor can hold (float, int, bool), or a TypeError."""
    dt = np.dtype(dtype)
    if dt.kind not in "fiub":
        raise TypeError(f"unsupported tensor dtype {dt}; use a float, int or bool dtype")
    return dt


def of_data(data: Any, dtype: Any) -> np.dtype | None:
    """The dtype a new tensor of ``data`` gets: as asked, else float32 for any float data,
    else None (ints and bools keep NumPy's dtype).

    The data's own kind is checked either way: ``None`` or a string cast to float
    would be NaN or a parsed number, not an error.
    """
    kind = getattr(getattr(data, "dtype", None), "kind", None)
    if kind is None:
        kind = np.asarray(data).dtype.kind
    if kind not in "fiub":
        raise TypeError(
            f"cannot make a tensor from data of kind {kind!r} ({type(data).__name__}); "
            "give numbers, nested lists of numbers or a numeric array")
    if dtype is not None:
        return checked(dtype)
    return FLOAT32 if kind == "f" else None


def of_scalar(value: Any, beside: np.dtype) -> np.dtype | None:
    """The dtype a Python or NumPy scalar takes beside a tensor of dtype ``beside``.

    Beside a float tensor any number takes its dtype; beside an integer or bool tensor
    a float is float32, a Python int the tensor's own dtype if it fits (int32 * 2 is
    int32, as in PyTorch and NumPy 2), else the narrowest of int64, uint64 and float64
    that holds it (so ``u8 / 256`` and ``u8 == 300`` come out right instead of
    wrapping), and a NumPy scalar or a bool keeps its own (None).
    """
    if beside.kind == "f":
        return beside
    if isinstance(value, (float, np.floating)):
        return FLOAT32
    if isinstance(value, int) and not isinstance(value, bool):
        if beside.kind in "iu" and np.iinfo(beside).min <= value <= np.iinfo(beside).max:
            return beside
        for dtype in (np.int64, np.uint64):
            if np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
                return np.dtype(dtype)
        return np.dtype(np.float64)
    return None


def of_operands(a: np.dtype, b: np.dtype, divide: bool = False) -> tuple[np.dtype, np.dtype]:
    """The dtypes two tensors are cast to before an elementwise op or ``@``: an integer or
    bool operand takes the float operand's dtype (NumPy makes float32 and int64 float64),
    and integers divided are float32. Other mixes keep their dtypes (NumPy's rules)."""
    if a.kind == "f" and b.kind != "f":
        return a, a
    if b.kind == "f" and a.kind != "f":
        return b, b
    if divide and a.kind != "f":
        return FLOAT32, FLOAT32
    return a, b


def of_float_function(dtype: np.dtype) -> np.dtype:
    """The dtype of ``exp``, ``log``, ``tanh``, ``sigmoid``, ``softmax``, ``sqrt`` of a
    tensor: its own if float, else float32 (PyTorch's; NumPy's would be float64)."""
    return dtype if dtype.kind == "f" else FLOAT32


def of_power(dtype: np.dtype, exponent: Any) -> np.dtype:
    """The dtype ``x ** exponent`` computes in, for a number ``exponent``: a float power
    makes floats (:func:`of_float_function`); an integer power keeps x's dtype, and is
    refused for integers when negative, as in PyTorch."""
    if isinstance(exponent, (float, np.floating)):
        return of_float_function(dtype)
    if dtype.kind != "f" and exponent < 0:
        raise ValueError("integers to negative integer powers are not allowed (as in "
                         "PyTorch); make the tensor float first, or use a float exponent")
    return dtype


def of_joined(dtypes: list[np.dtype]) -> np.dtype | None:
    """The dtype every tensor is cast to before ``cat``: where floats and integers meet,
    the floats' common dtype (PyTorch's rule, as for ``+``); else None (NumPy's rules)."""
    floats = [d for d in dtypes if d.kind == "f"]
    if not floats or len(floats) == len(dtypes):
        return None
    return np.result_type(*floats)


def check_in_place(target: np.dtype, other: np.dtype, what: str, divide: bool = False
                   ) -> None:
    """Refuse ``x op= y`` where the result (NumPy's rule; integers divided are float64)
    would not cast ``same_kind`` to x's dtype: float into int would truncate silently."""
    result = np.result_type(target, other)
    if divide and result.kind != "f":
        result = np.dtype(np.float64)
    if not np.can_cast(result, target, "same_kind"):
        raise TypeError(f"{what}: a {result} result cannot be stored in a {target} tensor")


def check_assignable(target: np.dtype, value: np.dtype, what: str) -> None:
    """Refuse ``x[i] = y`` where y's dtype would not cast ``same_kind`` to x's."""
    if not np.can_cast(value, target, "same_kind"):
        raise TypeError(f"{what}: a {value} value cannot be stored in a {target} tensor")


def of_clamp(dtype: np.dtype, low: Any, high: Any) -> np.dtype:
    """The dtype ``clamp(x, low, high)`` computes in (either bound may be None): x's, or
    float32 for an integer x with a float bound (:func:`of_float_function`). An integer
    bound that does not fit an integer x's dtype is refused, not wrapped."""
    bounds = [b for b in (low, high) if b is not None]
    if any(isinstance(b, (float, np.floating)) for b in bounds):
        return of_float_function(dtype)
    if any(of_scalar(int(b), dtype) != dtype for b in bounds):
        raise OverflowError(f"clamp's bounds {low}, {high} do not fit this tensor's dtype "
                            f"{dtype}; convert the tensor with .astype() first")
    return dtype


# ------------------------------------------------------------------ creation
# ``tg.tensor`` and the factories (:mod:`creation`) take torch's inference, which
# differs from NumPy's: a Python float is the default float dtype (NumPy: float64), and
# where floats meet integers the floats' dtype wins (NumPy: int64 and float32 make
# float64).

BOOL, INT64 = np.dtype(np.bool_), np.dtype(np.int64)


def get_default_dtype() -> np.dtype:
    """The dtype of Python floats in new tensors and of the float factories (``zeros``,
    ``rand``, ``linspace``, ...): float32, as torch's default. Fixed: there is no
    ``set_default_dtype`` (pass ``dtype=`` instead)."""
    return FLOAT32


def of_python_scalar(value: Any) -> np.dtype:
    """The dtype torch gives a number in new data (``tg.tensor(2.5)``, ``full``'s
    ``fill_value``, ``arange``'s bounds): a bool is bool, an int (Python or NumPy) int64,
    a float (Python or NumPy) the default float dtype. A TypeError for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return BOOL
    if isinstance(value, (int, np.integer)):
        return INT64
    if isinstance(value, (float, np.floating)):
        return get_default_dtype()
    raise TypeError(f"expected a real number (bool, int or float), got "
                    f"{type(value).__name__} {value!r}")


def of_elements(found: set[np.dtype]) -> np.dtype:
    """The dtype of ``tg.tensor(data)`` whose elements have the dtypes ``found`` (a
    Python float counted as the default float dtype, an int as int64; an array or a
    NumPy scalar as its own), as torch's ``promote_types``: any floats give the floats'
    common dtype (``[np.float64(1), 2.0]`` is float64, ``[1, 2.0]`` float32), else the
    integers' (``uint8`` with ``int8`` is int16), else bool; no elements: the default."""
    for kinds in ("f", "iu", "b"):
        among = [d for d in found if d.kind in kinds]
        if among:
            result = np.result_type(*among)
            if kinds == "iu" and result.kind == "f":  # uint64 with a signed one
                raise TypeError(f"cannot make one tensor of the integer dtypes "
                                f"{sorted(map(str, among))}: no integer dtype holds them all")
            return result
    return get_default_dtype()

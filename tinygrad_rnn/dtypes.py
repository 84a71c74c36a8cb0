"""Every dtype rule of the framework, one function per question.

Tensors hold float, integer or bool NumPy dtypes. The rules are PyTorch's (a user's
code comes from there); the one deliberate difference is marked ≠ (the table in
``docs/from-pytorch.md`` is this one, with the reasons):

========================================  ==========================  ====================
question                                  answer                      function
========================================  ==========================  ====================
a new tensor from data                    float data: float32;        :func:`of_data`
                                          ints, bools: their own;
                                          ``dtype=`` wins
a Python or NumPy number beside a tensor  weak: a float tensor's      :func:`of_scalar`
                                          dtype; beside ints a float
                                          is float32, an int the
                                          tensor's dtype; ≠ an int
                                          that does not fit widens
                                          (``u8 + 300`` is int64 301,
                                          PyTorch wraps to uint8 45)
a 0-d tensor beside one with dims         weak within its category    :func:`of_operands`
                                          (bool < int < float):
                                          ``f32 + tensor(1., f64)`` is
                                          float32, ``i8 + tensor(1)``
                                          int8
two tensors (``+ - *``, ``@``)            int with float: the float   :func:`of_operands`
                                          dtype; else promoted
two tensors divided                       as above, ints: float32     :func:`of_operands`
``-`` with a bool tensor                  refused (use ``~mask``)     :func:`functions.elementwise`
``exp log tanh sigmoid softmax`` of ints  float32                     :func:`of_float_function`
``x ** p``                                float p, int x: float32;    :func:`of_power`
                                          bool x, int p: int64;
                                          negative int p or one that
                                          does not fit, int x: refused
``sum`` of ints and bools                 int64                       :func:`of_sum`
``mean`` of ints and bools                refused (``x.float()``)     :func:`of_mean`
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

# torch's dtype names (``tg.float32``, ``tg.long``): NumPy dtypes, so ``x.dtype == tg.float32``
bool_, uint8, int8, int16, int32, int64 = (np.dtype(t) for t in (
    np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64))
float16, float32, float64 = np.dtype(np.float16), FLOAT32, np.dtype(np.float64)
long, double, half = int64, float64, float16


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

    As in PyTorch, a scalar is "weak": it never widens a tensor of its own kind or of a
    higher one. Beside a float tensor any number takes its dtype; beside an integer or
    bool tensor a float is float32, an int the tensor's own dtype if it fits (int32 * 2
    is int32) and a bool its own. NumPy scalars count as the Python number they hold
    (``f32 * np.float64(2)`` is float32, as in PyTorch). Deliberately unlike PyTorch,
    an int that does not fit an integer tensor's dtype takes the narrowest of int64,
    uint64 and float64 that holds it, so ``u8 + 300`` is 301 (int64) where PyTorch
    wraps to 45 (uint8), and ``u8 == 300`` is False.
    """
    if beside.kind == "f":
        return beside
    if isinstance(value, (float, np.floating)):
        return FLOAT32
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if beside.kind in "iu" and np.iinfo(beside).min <= value <= np.iinfo(beside).max:
            return beside
        for dtype in (np.int64, np.uint64):
            if np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
                return np.dtype(dtype)
        return np.dtype(np.float64)
    return None


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def of_operands(a: np.dtype, b: np.dtype, divide: bool = False, a_weak: bool = False,
                b_weak: bool = False) -> tuple[np.dtype, np.dtype]:
    """The dtypes two tensors are cast to before an elementwise op or ``@``.

    An integer or bool operand takes the float operand's dtype (NumPy makes float32 and
    int64 float64), and integers divided are float32. A *weak* operand (a 0-d tensor
    beside one with dims, PyTorch's rule) takes the other's dtype when its category
    (bool < integer < float) is not higher: ``f32 + tensor(2.0, float64)`` is float32,
    ``i8 + tensor(2)`` int8. Other mixes keep their dtypes (NumPy's rules).
    """
    if a_weak != b_weak and a != b:
        weak, strong = (a, b) if a_weak else (b, a)
        if _CATEGORY[weak.kind] <= _CATEGORY[strong.kind]:
            a = b = strong
    if a.kind == "f" and b.kind != "f":
        return a, a
    if b.kind == "f" and a.kind != "f":
        return b, b
    if divide and a.kind != "f" and b.kind != "f":
        return FLOAT32, FLOAT32
    return a, b


def of_float_function(dtype: np.dtype) -> np.dtype:
    """The dtype of ``exp``, ``log``, ``tanh``, ``sigmoid``, ``softmax``, ``sqrt`` of a
    tensor: its own if float, else float32 (PyTorch's; NumPy's would be float64)."""
    return dtype if dtype.kind == "f" else FLOAT32


def of_power(dtype: np.dtype, exponent: Any) -> np.dtype:
    """The dtype ``x ** exponent`` computes in, for a number ``exponent`` (PyTorch's):
    a float power makes floats (:func:`of_float_function`); an int power keeps an
    integer x's dtype (refused when negative, or when it does not fit that dtype, as
    PyTorch refuses both) and makes a bool x int64; a bool power keeps x's dtype."""
    if isinstance(exponent, (float, np.floating)):
        return of_float_function(dtype)
    if dtype.kind == "f" or isinstance(exponent, (bool, np.bool_)):
        return dtype
    if exponent < 0:
        raise ValueError("integers to negative integer powers are not allowed (as in "
                         "PyTorch); make the tensor float first, or use a float exponent")
    if dtype.kind == "b":
        return np.dtype(np.int64)
    if exponent > np.iinfo(dtype).max:
        raise OverflowError(f"the exponent {exponent} does not fit this tensor's dtype "
                            f"{dtype} (PyTorch refuses it too); convert the tensor first")
    return dtype


def of_sum(dtype: np.dtype) -> np.dtype:
    """The dtype of a sum (or product) of a tensor: its own if float, else int64 (PyTorch's;
    NumPy sums uint8 to uint64)."""
    return dtype if dtype.kind == "f" else np.dtype(np.int64)


def of_mean(dtype: np.dtype) -> np.dtype:
    """The dtype of a mean, var or std: the tensor's own; integers and bools are refused,
    as PyTorch refuses them (its message: "could not infer output dtype")."""
    if dtype.kind != "f":
        raise TypeError(f"mean of a {dtype} tensor: the result dtype is ambiguous (as in "
                        "PyTorch); convert first, e.g. x.float().mean()")
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

"""Making tensors as torch does: ``tg.tensor(data)`` and the factories.

==========================================  =============================================
``tensor(data)``                            a copy of ``data``; dtype inferred as torch's
``zeros ones empty (*size)``                the default float dtype (float32)
``full(size, fill_value)``                  ``fill_value``'s dtype (bool, int64, float32)
``arange(start=0, end, step=1)``            int64 for ints, float32 if any is a float
``linspace(start, end, steps)``             float32; both ends included
``eye(n, m=None)``                          float32, ones on the diagonal
``rand randn (*size)``                      U[0, 1), N(0, 1); float32
``normal(mean, std, size)``                 N(mean, std²); float32
``randint(low=0, high, size)``              uniform integers in [low, high); int64
``*_like(input)``                           input's shape, dtype and backend
``from_dlpack(x)``                          x's memory (zero-copy) on the matching backend
==========================================  =============================================

Every factory takes ``dtype=``, ``requires_grad=`` and ``backend=`` (a name such as
``"numpy"``, or a Backend; default: the current one) or, the same, torch's ``device=``
(``"cpu"``, ``"cuda"``, a ``tg.device``: :mod:`devices`); the random ones take
``generator=`` (a :class:`~tinygrad_rnn.Generator`). A size is ``*size`` ints, one
tuple/list of them or the keyword ``size=``, as torch's. torch's ``out=``,
``layout=``, ``pin_memory=`` and ``memory_format=`` are absent. Every argument is checked before
anything is allocated: a negative or float size, ``steps < 0``, ``step == 0``, a size
too large for the backend's memory raise one error naming the argument.

Random numbers are drawn on the host by NumPy's PCG64 (:mod:`tinygrad_rnn.random`) and
moved to the backend: the same seed gives the same values on every backend, but not
torch's values (the distributions are the same).
"""

from __future__ import annotations

import functools
import math
import operator
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backends as _backends
from . import checks, dtypes
from . import devices as _devices
from . import random as _random
from ._tensor import Tensor
from .random import Generator

#: NumPy's limit on the number of axes.
MAX_NDIM = 64
#: DLPack's device types (``__dlpack_device__()[0]``).
_DLPACK_CPU, _DLPACK_CUDA, _DLPACK_CUDA_MANAGED = 1, 2, 13


# ---------------------------------------------------------------- the checks
def _backend(backend: Any, device: Any = None, what: str = "",
             current: _backends.Backend | None = None) -> _backends.Backend:
    """The backend named by ``backend=`` or by torch's ``device=`` (``"cpu"``, ``"cuda"``,
    a ``tg.device``: :func:`devices.as_backend`), not both; else ``current`` (default:
    the current backend)."""
    if device is not None:
        if backend is not None:
            raise TypeError(f"{what}: give backend= or device= (the same argument), not both")
        return _devices.as_backend(device, current)
    if backend is None:
        return current or _backends.get_backend()
    return _devices.as_backend(backend, current)


def _dtype(dtype: Any, default: np.dtype) -> np.dtype:
    return default if dtype is None else dtypes.checked(dtype)


def _grad_flag(requires_grad: Any, dtype: np.dtype, what: str) -> bool:
    """``requires_grad`` checked (a bool; True only for a float dtype) before allocating."""
    flag = checks.as_flag(requires_grad, f"{what}: requires_grad")
    if flag and dtype.kind != "f":
        raise TypeError(f"{what}: requires_grad=True needs a floating-point dtype, got "
                        f"{dtype}; integer tensors (indices, labels) have no gradient")
    return flag


def _dim(n: Any, what: str, shape: Any) -> int:
    """One size as an int >= 0 (an int, a NumPy integer or a one-element integer tensor;
    not a bool or a float, which torch refuses too)."""
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"{what}: size must be ints, got {n!r} in {shape!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{what}: size must be ints or one tuple of ints, got "
                        f"{type(n).__name__} {n!r} in {shape!r}") from None
    if n < 0:
        raise ValueError(f"{what}: size {shape!r} has a negative dimension {n}")
    return n


def _shape(size: Any, what: str) -> tuple[int, ...]:
    """A size given as one sequence (``full``'s, ``randint``'s), as a tuple of ints."""
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"{what}: size must be a tuple of ints, got {type(size).__name__} "
                        f"{size!r} (write ({size!r},) for one dimension)")
    shape = tuple(_dim(n, what, tuple(size)) for n in size)
    if len(shape) > MAX_NDIM:
        raise ValueError(f"{what}: size has {len(shape)} dimensions; at most {MAX_NDIM}")
    return shape


def _sizes(size: tuple, what: str, keyword: Any = None) -> tuple[int, ...]:
    """torch's ``*size``: ints, or one tuple/list of ints (``zeros(2, 3)``,
    ``zeros((2, 3))``; ``zeros(())`` is 0-d), or the keyword ``size=(2, 3)``."""
    if keyword is not None:
        if size:
            raise TypeError(f"{what}() got the size twice: positionally and as size=")
        return _shape(keyword, what)
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return _shape(size[0], what)
    if not size:
        raise TypeError(f"{what}() missing its size (ints, or one tuple: {what}(()) is 0-d)")
    return _shape(size, what)


@functools.cache
def _memory(backend: _backends.Backend) -> int | None:
    """The bytes of memory behind ``backend``: the host's RAM for NumPy arrays, the
    device's for CuPy's; None where it cannot be told."""
    try:
        if backend.xp is np:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(backend.xp.cuda.Device().mem_info[1])
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None


def _check_room(shape: tuple[int, ...], dtype: np.dtype, backend: _backends.Backend,
                what: str) -> None:
    """Refuse, before allocating, an array larger than the backend's whole memory (it
    could not succeed: NumPy would raise a MemoryError from deep inside)."""
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    limit = _memory(backend)
    if nbytes >= 2 ** 63 or (limit is not None and nbytes > limit):
        room = "" if limit is None else f", more than the {limit / 2 ** 30:.3g} GiB of memory"
        raise ValueError(f"{what}: size {shape} is {count:.4g} elements of {dtype} "
                         f"({nbytes / 2 ** 30:.4g} GiB){room} on backend {backend.name!r}")


def _number(value: Any, what: str, allow_bool: bool = True) -> bool | int | float:
    """``value`` as a Python number: a bool, int or float (Python or NumPy) or a 0-d
    tensor (torch takes one as its number); a TypeError naming ``what`` otherwise."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise TypeError(f"{what} must be a number or a 0-d tensor, got a tensor of "
                            f"shape {value.shape}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        if not allow_bool:
            raise TypeError(f"{what} must be an int or a float, got {value!r}")
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise TypeError(f"{what} must be a real number, got {type(value).__name__} {value!r}")


def _integer(value: Any, what: str) -> int:
    """An int (Python or NumPy) or a one-element integer tensor, not a bool or a float."""
    if isinstance(value, (bool, np.bool_, float, np.floating)):
        raise TypeError(f"{what} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}"
                        ) from None


def _fits(value: int | float, dtype: np.dtype, what: str) -> None:
    """An OverflowError naming ``what`` unless ``value`` is representable in ``dtype``
    (NaN and inf only in floats; a float into an integer dtype is truncated, as torch)."""
    if dtype.kind == "b":
        return
    if dtype.kind == "f":
        if math.isfinite(value) and abs(value) > float(np.finfo(dtype).max):
            raise OverflowError(f"{what} {value!r} is out of range for {dtype}")
        return
    if not math.isfinite(value):
        raise OverflowError(f"{what} {value!r} cannot be stored in {dtype}")
    info = np.iinfo(dtype)
    if not info.min <= int(value) <= info.max:
        raise OverflowError(f"{what} {value!r} is out of range for {dtype} "
                            f"[{info.min}, {info.max}]")


def _made(array: Any, backend: _backends.Backend, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(array, backend)
    return t.requires_grad_(True) if requires_grad else t


# -------------------------------------------------------------------- tensor()
def _refuse(x: Any) -> None:
    if isinstance(x, (complex, np.complexfloating)):
        raise TypeError(f"tensor(): complex numbers are not supported, got {x!r}")
    if hasattr(x, "dtype"):
        raise TypeError(f"tensor(): unsupported data dtype {x.dtype} ({type(x).__name__}); "
                        "tensors hold float, int or bool dtypes")
    raise TypeError(f"tensor(): data must be numbers, (nested) lists or tuples of "
                    f"numbers, arrays or tensors; got {type(x).__name__} {x!r:.60}")


def _element_dtypes(data: Any) -> tuple[set[np.dtype], list[int], bool]:
    """Walk nested lists/tuples: the dtypes of the elements (a Python float as the
    default float dtype, an int as int64), the Python ints' extremes (they must fit
    int64), and whether a Tensor is inside (NumPy would call its ``__array__``)."""
    found: set[np.dtype] = set()
    extremes: list[int] = []
    has_tensor = False
    default = dtypes.get_default_dtype()
    stack = [data]
    while stack:
        x = stack.pop()
        kind = type(x)
        if kind is list or kind is tuple:
            types = set(map(type, x))
            if types == {float}:  # the common flat cases, without a loop in Python
                found.add(default)
            elif types == {int}:
                found.add(dtypes.INT64)
                extremes += [min(x), max(x)]
            else:
                stack.extend(x)
        elif kind is float:
            found.add(default)
        elif kind is int:
            found.add(dtypes.INT64)
            extremes.append(x)
        elif kind is bool:
            found.add(dtypes.BOOL)
        elif isinstance(x, Tensor):
            found.add(x.dtype)
            has_tensor = True
        elif isinstance(x, (np.ndarray, np.generic)):
            if x.dtype.kind not in "fiub":
                _refuse(x)
            found.add(x.dtype)
        elif isinstance(x, (bool, int, float)):  # subclasses (an IntEnum, say)
            found.add(dtypes.of_python_scalar(x))
        elif x is None or isinstance(x, (str, bytes, complex, dict, set)):
            _refuse(x)
        elif isinstance(x, Sequence):
            stack.extend(x)
        elif isinstance(getattr(x, "dtype", None), np.dtype):  # a CuPy array, say
            if x.dtype.kind not in "fiub":
                _refuse(x)
            found.add(x.dtype)
        else:  # another array (a torch tensor, a memoryview): NumPy's reading of it
            try:
                dtype = np.asarray(x).dtype
            except TypeError as e:  # e.g. a CuPy array for a host backend
                raise TypeError(f"tensor(): cannot read {type(x).__module__}."
                                f"{type(x).__name__} on the host ({e}); pass backend= "
                                "naming the backend the data lives on") from None
            if dtype.kind not in "fiub":
                _refuse(x)
            found.add(dtype)
    return found, extremes, has_tensor


def _foreign(x: Any, be: _backends.Backend) -> Any:
    """Another library's array (a torch tensor, a CuPy array) read through DLPack: a
    NumPy view for CPU memory, the backend's own array for device memory."""
    if int(x.__dlpack_device__()[0]) == _DLPACK_CPU:
        try:
            return np.from_dlpack(x)
        except BufferError:  # torch exports no tensor that requires grad; we copy it
            if not hasattr(x, "detach"):
                raise
            return np.from_dlpack(x.detach())
    if be.xp is np:
        raise TypeError(f"tensor(): {type(x).__module__}.{type(x).__name__} data is in "
                        f"device memory; pass backend= naming a backend there (cupy)")
    return be.xp.from_dlpack(x)


def _untensored(x: Any) -> Any:
    """``x`` with each Tensor inside replaced by a NumPy copy of its values."""
    if isinstance(x, Tensor):
        return x.numpy()
    if isinstance(x, (list, tuple)):
        return [_untensored(e) for e in x]
    return x


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False,
           backend: str | _backends.Backend | None = None, *, device: Any = None
           ) -> Tensor:
    """A new leaf tensor holding a copy of ``data``, as ``torch.tensor``.

    ``data``: a number, (nested) lists or tuples of numbers, a NumPy or backend array, a
    tensor. Without ``dtype`` the dtype is torch's: an array or NumPy scalar keeps its
    own (float64 stays float64, unlike ``tg.Tensor``), a Python float is float32 (the
    default), an int int64, a bool bool; mixed elements promote as torch's
    ``promote_types`` (``[1, 2.0]``: float32; ``[np.float64(1), 2.0]``: float64;
    :func:`dtypes.of_elements`). A tensor given is copied (torch warns and advises
    ``clone().detach()``; here it is just copied), keeping its backend unless
    ``backend`` names another. A value that does not fit ``dtype`` (``300`` as uint8,
    NaN as an int) raises an OverflowError, as torch does.
    """
    if isinstance(data, Tensor):
        be = _backend(backend, device, "tensor()", current=data._backend)
        dt = _dtype(dtype, data.dtype)
        flag = _grad_flag(requires_grad, dt, "tensor()")
        source = data.data if be is data._backend else be.asarray(data.numpy())
        return _made(be.xp.array(source, dtype=dt, copy=True), be, flag)
    be = _backend(backend, device, "tensor()")
    extremes: list[int] = []
    if not isinstance(data, (list, tuple, np.ndarray, np.generic)) and hasattr(
            data, "__dlpack__") and not be.is_array(data):
        data = _foreign(data, be)
    if be.is_array(data) or isinstance(data, (np.ndarray, np.generic)):
        if data.dtype.kind not in "fiub":
            _refuse(data)
        found = data.dtype
    else:
        elements, extremes, has_tensor = _element_dtypes(data)
        found = dtypes.of_elements(elements)
        if has_tensor:
            data = _untensored(data)
    dt = _dtype(dtype, found)
    flag = _grad_flag(requires_grad, dt, "tensor()")
    if dtype is None and extremes:
        _fits(min(extremes), dt, "tensor(): the Python int")
        _fits(max(extremes), dt, "tensor(): the Python int")
    try:
        array = be.xp.array(data, dtype=found, copy=True)
    except OverflowError as e:  # NumPy 2: a Python int out of the dtype's range
        raise OverflowError(f"tensor(): data does not fit {found} ({e})") from None
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"tensor(): data must be rectangular (every row as long as the "
                         f"others): {e}") from None
    if dt.kind in "iu" and found != dt and array.size:
        # NumPy casts silently: 300 would wrap to uint8's 44, NaN become INT_MIN
        info = np.iinfo(dt)
        if found.kind == "f":  # truncated toward zero, as torch: (min - 1, max + 1) fits
            fits = be.xp.isfinite(array).all() and (array > info.min - 1).all() and (
                array < info.max + 1).all()
        else:
            fits = int(array.min()) >= info.min and int(array.max()) <= info.max
        if not bool(fits):
            raise OverflowError(f"tensor(): data has values (NaN, inf or out of range) "
                                f"that {dt} cannot hold")
    if found != dt:
        array = array.astype(dt)
    return _made(array, be, flag)


# ------------------------------------------------------------------ factories
def _filled(shape: tuple[int, ...], fill: Any, dtype: Any, default: np.dtype,
            requires_grad: bool, backend: Any, what: str) -> Tensor:
    dt = _dtype(dtype, default)
    flag = _grad_flag(requires_grad, dt, what)
    be = _backend(backend)
    _check_room(shape, dt, be, what)
    xp = be.xp
    array = xp.empty(shape, dtype=dt) if fill is None else xp.full(shape, fill, dtype=dt)
    return _made(array, be, flag)


def zeros(*sizes: int | Sequence[int], size: Sequence[int] | None = None,
          dtype: Any = None, requires_grad: bool = False,
          backend: str | _backends.Backend | None = None, device: Any = None) -> Tensor:
    """A tensor of zeros of shape ``size`` (ints or one tuple), float32 by default."""
    be = _backend(backend, device, "zeros")
    return _filled(_sizes(sizes, "zeros", size), 0, dtype,
                   dtypes.get_default_dtype(), requires_grad, be, "zeros")


def ones(*sizes: int | Sequence[int], size: Sequence[int] | None = None,
         dtype: Any = None, requires_grad: bool = False,
         backend: str | _backends.Backend | None = None, device: Any = None) -> Tensor:
    """A tensor of ones of shape ``size`` (ints or one tuple), float32 by default."""
    be = _backend(backend, device, "ones")
    return _filled(_sizes(sizes, "ones", size), 1, dtype,
                   dtypes.get_default_dtype(), requires_grad, be, "ones")


def empty(*sizes: int | Sequence[int], size: Sequence[int] | None = None,
          dtype: Any = None, requires_grad: bool = False,
          backend: str | _backends.Backend | None = None, device: Any = None) -> Tensor:
    """An uninitialised tensor of shape ``size`` (its values are whatever the memory
    held), float32 by default."""
    be = _backend(backend, device, "empty")
    return _filled(_sizes(sizes, "empty", size), None, dtype,
                   dtypes.get_default_dtype(), requires_grad, be, "empty")


def _fill_value(value: Any, dtype: np.dtype, what: str) -> Any:
    """``value`` (a Python number) as ``dtype``'s scalar, or an OverflowError."""
    _fits(value, dtype, what)
    if dtype.kind in "iu":
        value = int(value)  # a float is truncated toward zero, as torch does
    return np.asarray(value).astype(dtype)[()]


def full(size: Sequence[int], fill_value: Any, *, dtype: Any = None,
         requires_grad: bool = False, backend: str | _backends.Backend | None = None,
         device: Any = None) -> Tensor:
    """A tensor of shape ``size`` (a tuple, as torch's) filled with ``fill_value``, whose
    dtype it takes by default: bool, int64 for an int, float32 for a float."""
    shape = _shape(size, "full")
    value = _number(fill_value, "full(): fill_value")
    dt = _dtype(dtype, dtypes.of_python_scalar(value))
    return _filled(shape, _fill_value(value, dt, "full(): fill_value"), dt, dt,
                   requires_grad, _backend(backend, device, "full"), "full")


def arange(start: Any = 0, end: Any = None, step: Any = 1, *, dtype: Any = None,
           requires_grad: bool = False, backend: str | _backends.Backend | None = None,
           device: Any = None) -> Tensor:
    """``[start, start + step, ...]`` up to ``end`` (excluded), as ``torch.arange``:
    ``arange(end)``, ``arange(start, end)``, ``arange(start, end, step)``.

    int64 when all three are ints, else float32; ``ceil((end - start) / step)``
    elements, each ``start + i * step`` computed in float64 and rounded once (torch's
    vectorised kernel rounds in float32 within blocks: float32 values may differ from
    torch's in the last bit). For an
    integer ``dtype`` the bounds are truncated to ints first, as torch does; unlike
    torch, values that do not fit the dtype raise an OverflowError instead of wrapping.
    """
    if end is None:
        start, end = 0, start
    start, end, step = (_number(v, f"arange(): {name}", allow_bool=False)
                        for v, name in ((start, "start"), (end, "end"), (step, "step")))
    inferred = dtypes.get_default_dtype() if any(
        isinstance(v, float) for v in (start, end, step)) else dtypes.INT64
    dt = _dtype(dtype, inferred)
    if dt.kind == "b":
        raise TypeError("arange(): dtype bool is not supported (as in torch)")
    flag = _grad_flag(requires_grad, dt, "arange")
    if not all(math.isfinite(v) for v in (start, end, step)):
        raise ValueError(f"arange(): unsupported range {start} -> {end} step {step}: "
                         "each must be finite")
    if dt.kind in "iu":  # torch computes integer ranges in integers
        start, end, step = int(start), int(end), int(step)
    if step == 0:
        raise ValueError("arange(): step must be nonzero")
    if not (step > 0 and end >= start or step < 0 and end <= start):
        raise ValueError(f"arange(): end {end} and start {start} are inconsistent with "
                         f"step {step}'s sign")
    if dt.kind in "iu":
        sign = 1 if step > 0 else -1
        n = (end - start + step - sign) // step
    else:
        length = (end - start) / step
        if not math.isfinite(length):  # e.g. arange(0, 1e308, 1e-300)
            raise ValueError(f"arange(): [{start}, {end}) in steps of {step} has too many "
                             "elements to count")
        n = math.ceil(length)
    be = _backend(backend, device, "arange")
    _check_room((n,), dt, be, "arange")
    xp = be.xp
    if dt.kind in "iu":
        for v, name in ((start, "start"), (start + (n - 1) * step, "the last value")):
            _fits(v, dt, f"arange(): {name}")
        values = (xp.arange(n, dtype=np.int64) * step + start).astype(dt)
    else:
        values = (xp.arange(n, dtype=np.float64) * step + start).astype(dt)
    return _made(values, be, flag)


def linspace(start: Any, end: Any, steps: int, *, dtype: Any = None,
             requires_grad: bool = False, backend: str | _backends.Backend | None = None,
             device: Any = None) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included, float32
    by default, as ``torch.linspace``: the first half counted from ``start``, the second
    back from ``end`` (so both ends are exact); computed in float64, then cast (torch
    computes a float32 result in float32: values may differ in the last bit)."""
    start = _number(start, "linspace(): start", allow_bool=False)
    end = _number(end, "linspace(): end", allow_bool=False)
    steps = _integer(steps, "linspace(): steps")
    if steps < 0:
        raise ValueError(f"linspace(): steps must be non-negative, got {steps}")
    dt = _dtype(dtype, dtypes.get_default_dtype())
    flag = _grad_flag(requires_grad, dt, "linspace")
    if dt.kind in "iu":  # torch converts the ends to the dtype first
        for v, name in ((start, "start"), (end, "end")):
            _fits(v, dt, f"linspace(): {name}")
        start, end = int(start), int(end)
    be = _backend(backend, device, "linspace")
    _check_room((steps,), dt, be, "linspace")
    xp = be.xp
    i = xp.arange(steps, dtype=np.float64)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    values = xp.where(i < max(steps // 2, 1), start + step * i, end - step * (steps - 1 - i))
    return _made(values.astype(dt), be, flag)


def eye(n: int, m: int | None = None, *, dtype: Any = None, requires_grad: bool = False,
        backend: str | _backends.Backend | None = None, device: Any = None) -> Tensor:
    """The (n, m) identity (ones on the diagonal; ``m`` defaults to ``n``), float32 by
    default."""
    rows = _dim(_integer(n, "eye(): n"), "eye(): n", n)
    cols = rows if m is None else _dim(_integer(m, "eye(): m"), "eye(): m", m)
    dt = _dtype(dtype, dtypes.get_default_dtype())
    flag = _grad_flag(requires_grad, dt, "eye")
    be = _backend(backend, device, "eye")
    _check_room((rows, cols), dt, be, "eye")
    return _made(be.xp.eye(rows, cols, dtype=dt), be, flag)


# ---------------------------------------------------------------- random
def _float_dtype(dtype: Any, what: str) -> np.dtype:
    dt = _dtype(dtype, dtypes.get_default_dtype())
    if dt.kind != "f":
        raise TypeError(f"{what}: dtype must be a floating-point dtype, got {dt}")
    return dt


def _drawn(draw: Any, shape: tuple[int, ...], dtype: np.dtype, generator: Any,
           requires_grad: bool, backend: Any, what: str) -> Tensor:
    flag = _grad_flag(requires_grad, dtype, what)
    rng = _random.resolve(generator, what)
    be = _backend(backend)
    _check_room(shape, dtype, be, what)
    return _made(be.asarray(draw(rng, shape, dtype)), be, flag)


def _uniform(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """U[0, 1) in ``dtype``: NumPy's float32/float64 draws; for float16 the multiples
    of 2**-11 (float16's precision just below 1, so rounding cannot reach 1.0)."""
    if dtype in (np.float32, np.float64):
        return rng.random(shape, dtype=dtype)
    bits = np.finfo(dtype).nmant + 1
    return (np.floor(rng.random(shape) * 2 ** bits) / 2 ** bits).astype(dtype)


def _normal(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    if dtype in (np.float32, np.float64):
        return rng.standard_normal(shape, dtype=dtype)
    return rng.standard_normal(shape, dtype=np.float32).astype(dtype)


def rand(*sizes: int | Sequence[int], size: Sequence[int] | None = None,
         generator: Generator | None = None, dtype: Any = None,
         requires_grad: bool = False, backend: str | _backends.Backend | None = None,
         device: Any = None) -> Tensor:
    """A tensor of shape ``size`` from the uniform distribution on [0, 1), float32 by
    default. The values are NumPy's PCG64 stream, not torch's (same distribution)."""
    be = _backend(backend, device, "rand")
    return _drawn(_uniform, _sizes(sizes, "rand", size), _float_dtype(dtype, "rand"),
                  generator, requires_grad, be, "rand")


def randn(*sizes: int | Sequence[int], size: Sequence[int] | None = None,
          generator: Generator | None = None, dtype: Any = None,
          requires_grad: bool = False, backend: str | _backends.Backend | None = None,
          device: Any = None) -> Tensor:
    """A tensor of shape ``size`` from the standard normal N(0, 1), float32 by default.
    The values are NumPy's PCG64 stream, not torch's (same distribution)."""
    be = _backend(backend, device, "randn")
    return _drawn(_normal, _sizes(sizes, "randn", size), _float_dtype(dtype, "randn"),
                  generator, requires_grad, be, "randn")


def normal(mean: Any, std: Any, size: Sequence[int] | None = None, *,
           generator: Generator | None = None, dtype: Any = None,
           requires_grad: bool = False, backend: str | _backends.Backend | None = None,
           device: Any = None) -> Tensor:
    """A tensor of shape ``size`` from N(mean, std²), float32 by default: torch's form
    ``normal(mean, std, size)`` of two numbers (D2L's ``torch.normal(0, 0.01, size=(2,
    1), requires_grad=True)``). torch's forms with a tensor ``mean`` or ``std`` are
    absent: write ``mean + std * tg.randn_like(mean)`` (which differentiates). The values
    are NumPy's PCG64 stream, not torch's (same distribution)."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        raise TypeError("normal(): mean and std must be numbers here (torch's tensor forms "
                        "are absent); write mean + std * tg.randn_like(mean)")
    mean = _number(mean, "normal(): mean", allow_bool=False)
    std = checks.as_nonnegative(_number(std, "normal(): std", allow_bool=False),
                                "normal(): std")
    if not math.isfinite(mean):
        raise ValueError(f"normal(): mean must be finite, got {mean}")
    if size is None:
        raise TypeError("normal() missing its size (a tuple of ints) for numbers mean, std")
    dt = _float_dtype(dtype, "normal")

    def draw(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
        return (mean + std * rng.standard_normal(shape)).astype(dtype)
    return _drawn(draw, _shape(size, "normal"), dt, generator, requires_grad,
                  _backend(backend, device, "normal"), "normal")


def _integers(low: int, high: int, dtype: np.dtype, what: str) -> Any:
    """A draw of uniform integers in [low, high) as ``dtype``, bounds checked."""
    if low >= high:
        raise ValueError(f"{what}: low must be less than high, got low={low}, high={high}")
    for v, name in ((low, "low"), (high - 1, "high - 1")):
        if dtype.kind == "b" and v not in (0, 1):
            raise OverflowError(f"{what}: {name} = {v} is out of range for bool [0, 1]")
        _fits(v, dtype, f"{what}: {name} =")
    if low < -2 ** 63 or high > 2 ** 64:
        raise OverflowError(f"{what}: [{low}, {high}) does not fit a 64-bit integer")
    drawn_as = np.int64 if high <= 2 ** 63 else np.uint64

    def draw(rng: np.random.Generator, shape: tuple, _: np.dtype) -> np.ndarray:
        return rng.integers(low, high, size=shape, dtype=drawn_as).astype(dtype)
    return draw


def randint(low: Any = 0, high: Any = None, size: Sequence[int] | None = None, *,
            generator: Generator | None = None, dtype: Any = None,
            requires_grad: bool = False, backend: str | _backends.Backend | None = None,
            device: Any = None) -> Tensor:
    """A tensor of shape ``size`` (a tuple) of integers uniform in [low, high), int64 by
    default, as ``torch.randint``: ``randint(high, size)``, ``randint(low, high, size)``.
    The values are NumPy's PCG64 stream, not torch's (same distribution)."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    elif size is None and high is not None:
        raise TypeError(f"randint(): size must be a tuple of ints, got {type(high).__name__} "
                        f"{high!r} (randint(high, size) or randint(low, high, size))")
    elif high is None:  # randint(high, size=...)
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing its size (a tuple of ints)")
    low, high = _integer(low, "randint(): low"), _integer(high, "randint(): high")
    shape = _shape(size, "randint")
    dt = _dtype(dtype, dtypes.INT64)
    return _drawn(_integers(low, high, dt, "randint()"), shape, dt, generator,
                  requires_grad, _backend(backend, device, "randint"), "randint")


# ---------------------------------------------------------------- *_like
def _like(input: Any, dtype: Any, backend: Any, device: Any, what: str
          ) -> tuple[tuple[int, ...], np.dtype, _backends.Backend]:
    if not isinstance(input, Tensor):
        raise TypeError(f"{what}: input must be a Tensor, got {type(input).__name__}")
    return input.shape, _dtype(dtype, input.dtype), _backend(backend, device, what,
                                                             current=input._backend)


def zeros_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False,
               backend: str | _backends.Backend | None = None,
               device: Any = None) -> Tensor:
    """Zeros of ``input``'s shape, dtype and backend (unless given)."""
    shape, dt, be = _like(input, dtype, backend, device, "zeros_like")
    return _filled(shape, 0, dt, dt, requires_grad, be, "zeros_like")


def ones_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False,
              backend: str | _backends.Backend | None = None,
              device: Any = None) -> Tensor:
    """Ones of ``input``'s shape, dtype and backend (unless given)."""
    shape, dt, be = _like(input, dtype, backend, device, "ones_like")
    return _filled(shape, 1, dt, dt, requires_grad, be, "ones_like")


def empty_like(input: Tensor, *, dtype: Any = None, requires_grad: bool = False,
               backend: str | _backends.Backend | None = None,
               device: Any = None) -> Tensor:
    """An uninitialised tensor of ``input``'s shape, dtype and backend (unless given)."""
    shape, dt, be = _like(input, dtype, backend, device, "empty_like")
    return _filled(shape, None, dt, dt, requires_grad, be, "empty_like")


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None,
              requires_grad: bool = False, backend: str | _backends.Backend | None = None,
              device: Any = None) -> Tensor:
    """``fill_value`` in ``input``'s shape, dtype (not ``fill_value``'s, as torch) and
    backend (unless given)."""
    shape, dt, be = _like(input, dtype, backend, device, "full_like")
    value = _number(fill_value, "full_like(): fill_value")
    return _filled(shape, _fill_value(value, dt, "full_like(): fill_value"), dt, dt,
                   requires_grad, be, "full_like")


def rand_like(input: Tensor, *, generator: Generator | None = None, dtype: Any = None,
              requires_grad: bool = False, backend: str | _backends.Backend | None = None,
              device: Any = None) -> Tensor:
    """U[0, 1) in ``input``'s shape, dtype (a float one) and backend (unless given)."""
    shape, dt, be = _like(input, dtype, backend, device, "rand_like")
    return rand(shape, generator=generator, dtype=dt, requires_grad=requires_grad,
                backend=be)


def randn_like(input: Tensor, *, generator: Generator | None = None, dtype: Any = None,
               requires_grad: bool = False, backend: str | _backends.Backend | None = None,
               device: Any = None) -> Tensor:
    """N(0, 1) in ``input``'s shape, dtype (a float one) and backend (unless given)."""
    shape, dt, be = _like(input, dtype, backend, device, "randn_like")
    return randn(shape, generator=generator, dtype=dt, requires_grad=requires_grad,
                 backend=be)


def randint_like(input: Tensor, low: Any = 0, high: Any = None, *,
                 generator: Generator | None = None, dtype: Any = None,
                 requires_grad: bool = False,
                 backend: str | _backends.Backend | None = None,
                 device: Any = None) -> Tensor:
    """Integers uniform in [low, high) in ``input``'s shape, dtype and backend (unless
    given): ``randint_like(input, high)`` or ``randint_like(input, low, high)``."""
    shape, dt, be = _like(input, dtype, backend, device, "randint_like")
    if high is None:
        low, high = 0, low
    return randint(low, high, shape, generator=generator, dtype=dt,
                   requires_grad=requires_grad, backend=be)


# ---------------------------------------------------------------- DLPack
def from_dlpack(ext_tensor: Any) -> Tensor:
    """A tensor sharing ``ext_tensor``'s memory (zero-copy: a write through one shows in
    the other), as ``torch.from_dlpack``: any object with ``__dlpack__`` and
    ``__dlpack_device__`` (a NumPy >= 2 or CuPy array, a torch tensor, a tensor of
    this library). CPU memory lands on the current backend if it computes on NumPy
    arrays (numpy, numba), else on ``numpy``; CUDA memory on ``cupy``. The result is a
    leaf; a torch tensor that requires grad must be ``detach()``-ed first (torch
    refuses to export it)."""
    if not (hasattr(ext_tensor, "__dlpack__") and hasattr(ext_tensor, "__dlpack_device__")):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and "
                        f"__dlpack_device__ (an array or tensor), got "
                        f"{type(ext_tensor).__name__}")
    device = int(ext_tensor.__dlpack_device__()[0])
    if device == _DLPACK_CPU:
        current = _backends.get_backend()
        be = current if current.xp is np else _backends.get("numpy")
        array = np.from_dlpack(ext_tensor)
    elif device in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED):
        be = _backends.get("cupy")
        array = be.xp.from_dlpack(ext_tensor)
    else:
        raise TypeError(f"from_dlpack: DLPack device type {device} is not supported "
                        "(CPU: 1 and CUDA: 2 are)")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"from_dlpack: unsupported dtype {array.dtype}; tensors hold "
                        "float, int or bool dtypes")
    return Tensor._wrap(array, be)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing ``ndarray``'s memory, as ``torch.from_numpy``: a write through
    one shows in the other; the dtype is kept (float64 stays float64). On the current
    backend if it computes on NumPy arrays (numpy, numba), else on ``numpy``."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: unsupported dtype {ndarray.dtype}; tensors hold float, "
                        "int or bool dtypes")
    current = _backends.get_backend()
    return Tensor._wrap(ndarray, current if current.xp is np else _backends.get("numpy"))

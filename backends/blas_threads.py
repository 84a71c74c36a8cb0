"""The thread count of SciPy's OpenBLAS, the BLAS that Numba's ``np.dot`` calls: process policy.

Numba's ``np.dot`` calls SciPy's OpenBLAS, while NumPy's ``@`` calls NumPy's own copy,
so a process can hold two OpenBLAS thread pools whose idle workers spin-wait. On a
machine with few cores a GEMM then waits on a worker that cannot get a core while the
other pool spins (measured here, 2 cores: the fused RNN layer at h=32 took 14 ms
instead of 0.5 ms). So only one pool ever has threads: the Numba backend runs small
products in SciPy's BLAS on ONE thread, the caller's (inside :func:`one_scipy_blas_thread`),
and large ones in NumPy's BLAS on ``OPENBLAS_NUM_THREADS`` threads, which was faster
for them (measured here: 32×512 by 512×512, 212 against 234 µs; the step at h=256
and 512 5-8% faster). Where "small" ends is ``NumbaBackend.single_thread_below``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Callable, Iterator


@functools.cache
def scipy_blas_threads() -> tuple[Callable, Callable] | None:
    """``(get, set)`` of the thread count of the BLAS that Numba's ``np.dot`` calls, or None.

    That is the library behind ``scipy.linalg.cython_blas``. Symbols are looked up
    through that module's handle, which searches it and its dependencies only, so
    NumPy's OpenBLAS is never touched even where both export the same names. A BLAS
    that is not OpenBLAS (MKL, Accelerate): None, and nothing is changed.
    """
    try:
        import scipy.linalg.cython_blas as cython_blas

        lib = ctypes.CDLL(cython_blas.__file__)
    except (ImportError, OSError):
        return None
    return _thread_control(lib, [("scipy_openblas", ""), ("openblas", "")])


@contextlib.contextmanager
def _one_thread(control: tuple[Callable, Callable] | None) -> Iterator[None]:
    """The BLAS behind ``control`` (``(get, set)``, or None) on one thread within the
    block; its count is restored after. Nothing changes where there is no such control
    (not OpenBLAS) or it already runs on one thread."""
    previous = control[0]() if control else None
    if previous is None or previous == 1:
        yield
        return
    control[1](1)
    try:
        yield
    finally:
        control[1](previous)


def one_scipy_blas_thread() -> contextlib.AbstractContextManager:
    """SciPy's BLAS on one thread within the block; the thread count is restored after."""
    return _one_thread(scipy_blas_threads())


@functools.cache
def numpy_blas_threads() -> tuple[Callable, Callable] | None:
    """``(get, set)`` of the thread count of NumPy's own OpenBLAS (behind ``@``), or None.

    Looked up through the handle of NumPy's ``_multiarray_umath``, as
    :func:`scipy_blas_threads` does through SciPy's, so SciPy's copy is never touched.
    """
    try:
        import numpy._core._multiarray_umath as umath

        lib = ctypes.CDLL(umath.__file__)
    except (ImportError, OSError):
        return None
    return _thread_control(lib, [("scipy_openblas", "64_"), ("scipy_openblas", ""),
                                 ("openblas", "64_"), ("openblas", "")])


def _thread_control(lib: ctypes.CDLL, names: list[tuple[str, str]]
                    ) -> tuple[Callable, Callable] | None:
    """``(get, set)`` of OpenBLAS's thread count in ``lib``, by the first of the
    ``(prefix, suffix)`` symbol spellings it exports, or None (not OpenBLAS)."""
    for prefix, suffix in names:
        try:
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}")
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}")
        except AttributeError:
            continue
        get.restype, get.argtypes = ctypes.c_int, []
        set_.restype, set_.argtypes = None, [ctypes.c_int]
        return get, set_
    return None


def one_numpy_blas_thread() -> contextlib.AbstractContextManager:
    """NumPy's OpenBLAS on one thread (the caller's) within the block, for every thread of
    the process; the count is restored after. Nothing changes where it is not OpenBLAS."""
    return _one_thread(numpy_blas_threads())

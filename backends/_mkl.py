"""Intel MKL's GEMM, called through ctypes, for the Numba backend where MKL is installed.

Why: the recurrences' per-step product ``H_{t-1} W_hh`` is small in one dimension (the
batch, 32) and large in the others (h by G·h), a shape on which NumPy's OpenBLAS spends
much of each call packing the same ``W_hh`` again. MKL can pack a matrix once and reuse
it for every step (``cblas_?gemm_pack`` / ``cblas_?gemm_compute``). Measured here (2-core
AMD EPYC Zen 4, float32, 32×256 by 256×1024, the LSTM's step at h = 256): OpenBLAS 0.3.31
200 µs on one thread and 128 µs on two; MKL 2026.2 packed 115 µs and 65 µs. On a 2-core
AMD EPYC Zen 3 (AVX2 only) the two GEMMs are within 7% (OpenBLAS 237 µs, MKL 252 µs, one
thread), yet the char-LM LSTM step at h = 256 still ran 9% faster with MKL than without
(32.6 against 35.5 ms, measured interleaved).

On a 2-core AMD EPYC Zen 5 (AVX-512) it is the other way round: MKL runs its generic
kernels there (it loads ``libmkl_def``, not ``libmkl_avx512``), and NumPy's OpenBLAS was
faster on every product of the LSTM step at h = 256 (per-step 108 against 141 µs packed,
one thread; the whole step 10-15% faster, interleaved). So the backend times the two
on the first large product of the process and keeps the faster (:func:`preferred`).

MKL is an optional extra (``pip install 'tinygrad_rnn[mkl]'``, PyPI's ``mkl`` wheel, which
puts ``libmkl_rt`` in ``<prefix>/lib``); without it, or with ``TINYGRAD_RNN_MKL=0`` in the
environment, :func:`available` is False and the backend keeps NumPy's BLAS;
``TINYGRAD_RNN_MKL=1`` takes MKL without timing it.

Threads: MKL runs on the GNU OpenMP runtime (the system's ``libgomp``) with as many
threads as NumPy's BLAS is given (``OPENBLAS_NUM_THREADS``, else ``OMP_NUM_THREADS``,
else the cores this process may use), or sequentially where that runtime is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS, _PACKED, _B_MATRIX = 101, 111, 112, 151, 162
_SEQUENTIAL, _GNU = 1, 3  # MKL_Set_Threading_Layer's codes
_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}
_SCALAR = {"s": ctypes.c_float, "d": ctypes.c_double}


def _candidates() -> list[str]:
    """Where libmkl_rt may be: the environment's lib folder (the ``mkl`` wheel's), then
    the loader's search path."""
    found = sorted(Path(sys.prefix, "lib").glob("libmkl_rt.so*"), reverse=True)
    name = ctypes.util.find_library("mkl_rt")
    return [str(p) for p in found] + ([name] if name else [])


def _thread_count() -> int:
    for var in ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.cache
def _library() -> ctypes.CDLL | None:
    """MKL's single dynamic library, set up (threading layer, thread count), or None."""
    if os.environ.get("TINYGRAD_RNN_MKL", "1") == "0":
        return None
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            lib.cblas_sgemm_pack_get_size.restype = ctypes.c_size_t
        except (OSError, AttributeError):
            continue
        # The layer must be chosen before MKL's first call; GNU OpenMP needs libgomp.
        layer = _GNU if ctypes.util.find_library("gomp") else _SEQUENTIAL
        if lib.MKL_Set_Threading_Layer(ctypes.c_int(layer)) < 0:
            lib.MKL_Set_Threading_Layer(ctypes.c_int(_SEQUENTIAL))
        lib.MKL_Set_Num_Threads(ctypes.c_int(_thread_count()))
        lib.cblas_dgemm_pack_get_size.restype = ctypes.c_size_t
        return lib
    return None


def threads() -> int:
    """The thread count MKL was given (:func:`_thread_count`), 1 where it is not loaded."""
    return _thread_count() if available() else 1


@contextlib.contextmanager
def one_local_thread() -> Iterator[None]:
    """MKL on one thread for the calls the current thread makes within the block
    (``mkl_set_num_threads_local``: other threads keep theirs)."""
    lib = _library()
    if lib is None:
        yield
        return
    previous = lib.MKL_Set_Num_Threads_Local(ctypes.c_int(1))
    try:
        yield
    finally:
        lib.MKL_Set_Num_Threads_Local(ctypes.c_int(previous))


def available() -> bool:
    """Whether MKL is installed and enabled (see the module's docstring)."""
    return _library() is not None


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _rows_contiguous(a: np.ndarray) -> bool:
    """Whether ``a`` (2-D) has unit stride along its rows (any row pitch)."""
    return a.ndim == 2 and a.strides[1] == a.itemsize and a.strides[0] >= a.shape[1] * a.itemsize


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray, *, trans_a: bool = False,
         trans_b: bool = False, beta: float = 0.0) -> np.ndarray:
    """``out = op(a) @ op(b) + beta · out``, op = transpose where asked; a, b, out 2-D of one
    dtype (float32 or float64) with contiguous rows, as stored (``a`` (K, M) if trans_a)."""
    lib = _library()
    p = _PREFIX[out.dtype]
    M, N = out.shape
    K = a.shape[0] if trans_a else a.shape[1]
    scalar = _SCALAR[p]
    getattr(lib, f"cblas_{p}gemm")(
        _ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS,
        M, N, K, scalar(1.0),
        _ptr(a), a.strides[0] // a.itemsize, _ptr(b), b.strides[0] // b.itemsize, scalar(beta),
        _ptr(out), out.strides[0] // out.itemsize)
    return out


class PackedRight:
    """``out = A @ W`` (or ``A @ Wᵀ`` with ``transpose``) for many ``A`` of ``rows`` rows and
    one ``W``, packed once: the per-step GEMM of a recurrence. W (K, N) as stored ((N, K)
    if ``transpose``), with contiguous rows, float32 or float64."""

    def __init__(self, W: np.ndarray, rows: int, transpose: bool = False) -> None:
        lib = _library()
        self._p = p = _PREFIX[W.dtype]
        self.K, self.N = W.shape[::-1] if transpose else W.shape
        self.rows = rows
        size = getattr(lib, f"cblas_{p}gemm_pack_get_size")(_B_MATRIX, rows, self.N, self.K)
        raw = np.empty(size + 64, np.uint8)  # 64-byte aligned, as MKL recommends
        offset = (-raw.ctypes.data) % 64
        self._buffer = raw[offset:offset + size]
        self._compute = getattr(lib, f"cblas_{p}gemm_compute")
        self._zero = _SCALAR[p](0.0)
        getattr(lib, f"cblas_{p}gemm_pack")(
            _ROW_MAJOR, _B_MATRIX, _TRANS if transpose else _NO_TRANS, rows, self.N, self.K,
            _SCALAR[p](1.0), _ptr(W), W.strides[0] // W.itemsize, _ptr(self._buffer))
        self._buffer_address = self._buffer.ctypes.data
        # Declared, so that plain ints pass as pointers: ``a.ctypes.data`` costs ~2-7 µs
        # (measured), three times a step and twice per step of the sequence, more than
        # the rest of the call's Python; :meth:`at` takes addresses computed once.
        self._compute.argtypes = [ctypes.c_int] * 6 + [
            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, _SCALAR[p],
            ctypes.c_void_p, ctypes.c_int]

    def __call__(self, A: Any, out: np.ndarray) -> np.ndarray:
        """out (rows, N) = A (rows, K) @ W; A and out with contiguous rows."""
        self.at(A.ctypes.data, A.strides[0] // A.itemsize, out.ctypes.data,
                out.strides[0] // out.itemsize)
        return out

    def at(self, a: int, lda: int, out: int, ldo: int) -> None:
        """:meth:`__call__` on raw addresses: A (rows, K) at ``a`` with row pitch ``lda``
        elements, out (rows, N) at ``out`` with pitch ``ldo``."""
        self._compute(_ROW_MAJOR, _NO_TRANS, _PACKED, self.rows, self.N, self.K, a, lda,
                      self._buffer_address, self.N, self._zero, out, ldo)


def usable(*arrays: np.ndarray) -> bool:
    """Whether MKL is available and can take these 2-D arrays as they are (one float
    dtype, contiguous rows)."""
    return (available() and arrays[0].dtype in _PREFIX
            and all(a.dtype == arrays[0].dtype and _rows_contiguous(a) for a in arrays))


# The process's one choice between MKL and NumPy's OpenBLAS for its large products, made
# at the first of them (:func:`preferred`): one library for all of them, because the
# two thread pools spin after each call and, on two cores, slowed each other 3x.
_choice: dict[str, bool] = {}


def _fastest_round(fn: Callable[[], Any], reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def preferred(run_mkl: Callable[[], Any], run_openblas: Callable[[], Any]) -> bool:
    """Whether this process runs its large products in MKL rather than NumPy's OpenBLAS.

    Decided once, on the first call: ``run_mkl`` and ``run_openblas`` (the same product
    both ways, into a scratch or the real output, which the caller then computes again)
    are timed in turns, 7 rounds of about 2 ms each (~30 ms once), and MKL is kept unless OpenBLAS's
    fastest round is at least 5% faster than MKL's (the minimum, since other processes
    only ever add time). ``TINYGRAD_RNN_MKL=1`` takes MKL without timing. Either way the
    results agree to rounding (a sum's order); :func:`choice` tells which one runs.
    """
    if "mkl" not in _choice:
        if not available():
            return False
        if os.environ.get("TINYGRAD_RNN_MKL") == "1":
            _choice["mkl"] = True
        else:
            once = [_fastest_round(f, 1) for f in (run_mkl, run_openblas, run_mkl, run_openblas)]
            reps = max(1, int(2e-3 / max(min(once), 1e-6)))
            best_mkl = best_openblas = float("inf")
            for _ in range(7):
                best_mkl = min(best_mkl, _fastest_round(run_mkl, reps))
                best_openblas = min(best_openblas, _fastest_round(run_openblas, reps))
            _choice["mkl"] = best_openblas >= 0.95 * best_mkl
            _choice["timings"] = (best_mkl, best_openblas)  # type: ignore[assignment]
    return bool(_choice["mkl"])


def choice() -> str | None:
    """"mkl" or "openblas" once :func:`preferred` has chosen, else None (not yet asked)."""
    if "mkl" not in _choice:
        return None
    return "mkl" if _choice["mkl"] else "openblas"

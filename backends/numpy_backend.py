"""The reference backend: NumPy arrays and the plain-namespace kernels of :class:`Backend`."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .base import Backend
from .blas_threads import one_numpy_blas_thread

#: Products of fewer multiply-adds than this run on one BLAS thread (see below): 2**28,
#: ~4 ms on one core here, long enough for a lost time slice (~3 ms) not to make two
#: threads slower than one.
SMALL_GEMM = 1 << 28


def _one_blas_thread(name: str):
    """:class:`Backend`'s kernel ``name`` with NumPy's BLAS on the calling thread only
    while it runs (looked up at each call, so a patched ``Backend`` is seen)."""

    @functools.wraps(getattr(Backend, name))
    def on_one_thread(self, *args, **kwargs):
        with one_numpy_blas_thread():
            return getattr(Backend, name)(self, *args, **kwargs)

    return on_one_thread


class NumpyBackend(Backend):
    """NumPy on the CPU. Every other backend is tested against this one.

    The kernels are :class:`Backend`'s, unchanged; only the BLAS's thread count is set
    around some of them. A GEMM split between threads waits for all of them, and on a
    shared machine for one that another process has descheduled: with two threads on
    two busy cores the char-LM LSTM step at h = 256 ran at 2,232 tokens/s against
    15,777 on one (load average ~5); with only the output layer's three products of 8M
    multiply-adds left on two threads, still 11,951 against 30,111. So the recurrences
    (their per-step products: 2·T small GEMMs a sequence, each a wait) and every product
    of fewer than :data:`SMALL_GEMM` multiply-adds run on one thread, the caller's, as
    does the clip's ``vdot`` (OpenBLAS threads long dot products too); larger products
    keep ``OPENBLAS_NUM_THREADS``. Thread counts do not change OpenBLAS's sums
    (each output element is summed by one thread, in one order).
    """

    name = "numpy"
    xp = np

    def matmul(self, a: Any, b: Any) -> Any:
        if (getattr(a, "ndim", 0) == 2 and getattr(b, "ndim", 0) == 2
                and a.shape[0] * a.shape[1] * b.shape[1] < SMALL_GEMM):
            with one_numpy_blas_thread():
                return super().matmul(a, b)
        return super().matmul(a, b)

    rnn_forward = _one_blas_thread("rnn_forward")
    rnn_backward = _one_blas_thread("rnn_backward")
    gru_forward = _one_blas_thread("gru_forward")
    gru_backward = _one_blas_thread("gru_backward")
    lstm_forward = _one_blas_thread("lstm_forward")
    lstm_backward = _one_blas_thread("lstm_backward")
    global_norm_sq = _one_blas_thread("global_norm_sq")  # vdot: BLAS's threaded dot

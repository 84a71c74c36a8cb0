"""NumPy arrays plus Numba-compiled kernels for the hot paths.

Each override checks that its inputs are what the compiled kernel handles (NumPy
arrays of one float dtype, float32 or float64, of the expected ranks and shapes,
non-empty) and otherwise defers to the plain-NumPy kernel of :class:`Backend`, which
defines the semantics (dtype promotion, error messages, negative indices). Inputs
are made C-contiguous and writable first where that is a cheap copy, so each kernel
compiles once per float dtype; the kernels live in :mod:`._numba_kernels`.

BLAS: products of fewer than ``NumbaBackend.single_thread_below`` multiply-adds run
in SciPy's BLAS (Numba's ``np.dot``) on ONE thread (inside the compiled RNN kernels,
whole sequence per call), larger ones in NumPy's BLAS on ``OPENBLAS_NUM_THREADS``
threads, so only one of the two OpenBLAS thread pools ever has threads; why, and the
thread-count control, in :mod:`.blas_threads`. For large h the time loop of the RNN, GRU
and LSTM is therefore Python here (``_rnn_forward_steps``, ``_gru_forward_steps``, ...),
a GEMM and one compiled elementwise kernel per step. Where MKL is installed (the ``mkl``
extra, :mod:`._mkl`) and is the faster of the two here (timed once, on the process's first
large product: :func:`._mkl.preferred`), those GEMMs and every large ``matmul`` are MKL's,
``W_hh`` packed once per sequence, and NumPy's BLAS is left idle: its workers spin after
each call and, on two cores, slowed MKL's threads 3x (measured). Otherwise NumPy's BLAS
(and MKL idle), which is slower with a transposed operand, so the backward's per-step
GEMM gets a contiguous copy of ``W_hhᵀ``.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import _mkl
from . import _numba_kernels as K
from .base import common_float_dtype, rnn_shapes_ok
from .blas_threads import numpy_blas_threads, one_numpy_blas_thread, one_scipy_blas_thread
from .numpy_backend import SMALL_GEMM, NumpyBackend


def _float_dtype(*arrays: Any) -> np.dtype | None:
    """The dtype shared by ``arrays`` if all are non-empty float32/float64 ndarrays, else None."""
    return common_float_dtype(np.ndarray, *arrays)


def _c(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    """``a`` as a C-contiguous, writable, aligned array (of ``dtype`` if given).

    Returns ``a`` itself when it already is one (the kernels only read it). A
    read-only or unaligned array is copied because Numba types it differently and
    would compile a second specialization for it.
    """
    a = np.ascontiguousarray(a, dtype=dtype)
    if not (a.flags.writeable and a.flags.aligned):
        a = a.copy()
    return a


def _int_index(index: Any, n: int) -> np.ndarray | None:
    """``index`` as a contiguous int64 array if it is an integer ndarray within [0, n), else None.

    Negative or out-of-range entries return None, leaving them to NumPy's rules and errors.
    """
    if not isinstance(index, np.ndarray) or index.dtype.kind not in "iu":
        return None
    if index.size and (index.min() < 0 or index.max() >= n):
        return None
    return _c(index.ravel(), np.int64)


def _relu_flag(nonlinearity: str) -> bool | None:
    """The kernels' flag for ``nonlinearity`` (True = relu), None if unknown."""
    return {"tanh": False, "relu": True}.get(nonlinearity)


class NumbaBackend(NumpyBackend):
    """NumPy for everything except the kernels overridden here with ``@njit`` code."""

    name = "numba"
    #: GEMMs of fewer multiply-adds than this run in SciPy's BLAS on ONE thread (the
    #: RNN's whole sequence in one compiled call), larger ones in NumPy's BLAS on
    #: ``OPENBLAS_NUM_THREADS`` (the RNN's time loop in Python, a GEMM per step).
    #: Waking a second thread costs more than it saves on small products, and on a
    #: busy machine each wake-up can wait for a descheduled thread (measured, 2 cores:
    #: the char-LM step at h=32 ran at half speed with two threads). With 2**21 the
    #: per-step GEMMs (N·h·h, batch 32) of h <= 128 and every GEMM of h = 32 run on one
    #: thread; h = 256's per-step GEMMs (exactly 2**21) gain from two (measured:
    #: 125-148k against 98-111k tokens/s).
    single_thread_below: int = 1 << 21

    def _blas_scope(self, work: int) -> contextlib.AbstractContextManager:
        """SciPy's BLAS on one thread within the block if one GEMM of ``work`` multiply-adds
        is small (see ``single_thread_below``); the thread count is restored after."""
        if work < self.single_thread_below:
            return one_scipy_blas_thread()
        return contextlib.nullcontext()

    # ------------------------------------------------------------- fused RNN
    def rnn_forward(self, Zx: Any, H0: Any, W_hh: Any, nonlinearity: str) -> Any:
        """Zx (T, N, h), H0 (N, h), W_hh (h, h) -> H (T, N, h), all T steps in one call.

        For φ = tanh the kernels use their own (Cephes) tanh, not ``np.tanh`` as the
        composed path does (``ops.Tanh``): Numba's ``np.tanh`` is a scalar libm call, 40x
        slower. The two are under 3 ulp apart, within the tolerance of the tests that
        compare fused and composed (see :func:`._numba_kernels._add_tanh`).
        """
        relu = _relu_flag(nonlinearity)
        if relu is None or not rnn_shapes_ok(Zx, H0, W_hh) or _float_dtype(Zx, H0, W_hh) is None:
            return super().rnn_forward(Zx, H0, W_hh, nonlinearity)
        N, h = H0.shape
        if N * h * h >= self.single_thread_below:  # large GEMMs: NumPy's BLAS, step by step
            return _by_rows(_rnn_forward_steps, _c(Zx), _c(H0), _c(W_hh), relu)
        with self._blas_scope(N * h * h):
            return K.rnn_forward(_c(Zx), _c(H0), _c(W_hh), relu)

    def rnn_backward(
        self, dH: Any, H: Any, H0: Any, W_hh: Any, nonlinearity: str
    ) -> tuple[Any, Any, Any]:
        """dH, H (T, N, h), H0 (N, h), W_hh (h, h) -> (dZx (T, N, h), dH0 (N, h), dW_hh (h, h))."""
        relu = _relu_flag(nonlinearity)
        if (
            relu is None
            or not rnn_shapes_ok(H, H0, W_hh)
            or getattr(dH, "shape", None) != H.shape
            or _float_dtype(dH, H, H0, W_hh) is None
        ):
            return super().rnn_backward(dH, H, H0, W_hh, nonlinearity)
        N, h = H0.shape
        if N * h * h >= self.single_thread_below:
            return _by_rows(_rnn_backward_steps, _c(dH), _c(H), _c(H0), _c(W_hh), relu)
        with self._blas_scope(N * h * h):
            return K.rnn_backward(_c(dH), _c(H), _c(H0), _c(W_hh), relu)

    # ------------------------------------------------------ fused GRU and LSTM
    def _whole_or_by_step(self, work: int, whole: Any, by_step: Any, *arrays: np.ndarray):
        """``whole(*arrays)``, the sequence in one compiled call, if a step's GEMM of
        ``work`` multiply-adds is small (SciPy's BLAS on one thread), else ``by_step``: the
        time loop in Python, MKL's or NumPy's BLAS (see ``single_thread_below``), its batch
        rows split between the BLAS's threads (:func:`_by_rows`) where it has several."""
        arrays = tuple(_c(a) for a in arrays)
        if work >= self.single_thread_below:
            return _by_rows(by_step, *arrays)
        with self._blas_scope(work):
            return whole(*arrays)

    def gru_forward(self, Zx: Any, H0: Any, W_hh: Any, b_hh: Any) -> tuple[Any, Any, Any]:
        """Zx (T, N, 3h), H0 (N, h), W_hh (h, 3h), b_hh (3h,) -> (H (T, N, h), gates
        (T, N, 3h), hn (T, N, h)): one compiled call, or a step loop for large h
        (:meth:`_whole_or_by_step`); σ and tanh are the kernels' own (:mod:`._numba_math`),
        a few ulps from NumPy's."""
        dims = _gate_dims(Zx, 3)
        if dims is None or _float_dtype(Zx, H0, W_hh, b_hh) is None:
            return super().gru_forward(Zx, H0, W_hh, b_hh)
        _, N, h = dims
        if not _shapes_are((H0, (N, h)), (W_hh, (h, 3 * h)), (b_hh, (3 * h,))):
            return super().gru_forward(Zx, H0, W_hh, b_hh)
        return self._whole_or_by_step(N * h * 3 * h, K.gru_forward, _gru_forward_steps,
                                      Zx, H0, W_hh, b_hh)

    def gru_backward(self, dH: Any, H: Any, gates: Any, hn: Any, H0: Any,
                     W_hh: Any) -> tuple[Any, Any, Any, Any]:
        """dH, H, hn (T, N, h), gates (T, N, 3h), H0 (N, h), W_hh (h, 3h) -> (dZx (T, N, 3h),
        dH0 (N, h), dW_hh (h, 3h), db_hh (3h,))."""
        dims = _gate_dims(gates, 3)
        if dims is None or _float_dtype(dH, H, gates, hn, H0, W_hh) is None:
            return super().gru_backward(dH, H, gates, hn, H0, W_hh)
        T, N, h = dims
        if not _shapes_are(
            (dH, (T, N, h)), (H, (T, N, h)), (hn, (T, N, h)), (H0, (N, h)), (W_hh, (h, 3 * h))
        ):
            return super().gru_backward(dH, H, gates, hn, H0, W_hh)
        return self._whole_or_by_step(N * h * 3 * h, K.gru_backward, _gru_backward_steps,
                                      dH, H, gates, hn, H0, W_hh)

    def lstm_forward(self, Zx: Any, H0: Any, C0: Any, W_hh: Any) -> tuple[Any, Any, Any]:
        """Zx (T, N, 4h), H0, C0 (N, h), W_hh (h, 4h) -> (H, C (T, N, h), gates (T, N, 4h)),
        as :meth:`gru_forward` does its steps."""
        dims = _gate_dims(Zx, 4)
        if dims is None or _float_dtype(Zx, H0, C0, W_hh) is None:
            return super().lstm_forward(Zx, H0, C0, W_hh)
        _, N, h = dims
        if not _shapes_are((H0, (N, h)), (C0, (N, h)), (W_hh, (h, 4 * h))):
            return super().lstm_forward(Zx, H0, C0, W_hh)
        return self._whole_or_by_step(N * h * 4 * h, K.lstm_forward, _lstm_forward_steps,
                                      Zx, H0, C0, W_hh)

    def lstm_backward(self, dH: Any, dC_T: Any, H: Any, C: Any, gates: Any, H0: Any, C0: Any,
                      W_hh: Any) -> tuple[Any, Any, Any, Any]:
        """dH, H, C (T, N, h), dC_T, H0, C0 (N, h), gates (T, N, 4h), W_hh (h, 4h)
        -> (dZx (T, N, 4h), dH0, dC0 (N, h), dW_hh (h, 4h))."""
        dims = _gate_dims(gates, 4)
        if dims is None or _float_dtype(dH, dC_T, H, C, gates, H0, C0, W_hh) is None:
            return super().lstm_backward(dH, dC_T, H, C, gates, H0, C0, W_hh)
        T, N, h = dims
        if not _shapes_are(
            (dH, (T, N, h)), (H, (T, N, h)), (C, (T, N, h)),
            (dC_T, (N, h)), (H0, (N, h)), (C0, (N, h)), (W_hh, (h, 4 * h)),
        ):
            return super().lstm_backward(dH, dC_T, H, C, gates, H0, C0, W_hh)
        return self._whole_or_by_step(N * h * 4 * h, K.lstm_backward, _lstm_backward_steps,
                                      dH, dC_T, H, C, gates, H0, C0, W_hh)

    # -------------------------------------------------- softmax cross-entropy
    def softmax_cross_entropy(self, logits: Any, targets: Any) -> tuple[Any, Any]:
        """logits (N, C), int targets (N,) -> (loss (N,), probs (N, C))."""
        if getattr(logits, "ndim", 0) != 2 or _float_dtype(logits) is None:
            return super().softmax_cross_entropy(logits, targets)
        t = _targets(targets, logits.shape)
        if t is None:
            return super().softmax_cross_entropy(logits, targets)
        return K.softmax_cross_entropy(_c(logits), t)

    def softmax_cross_entropy_backward(self, probs: Any, targets: Any, grad: Any) -> Any:
        """probs (N, C), int targets (N,), grad (N,) -> dlogits (N, C)."""
        if (
            getattr(probs, "ndim", 0) != 2
            or getattr(grad, "shape", None) != probs.shape[:1]
            or _float_dtype(probs, grad) is None
        ):
            return super().softmax_cross_entropy_backward(probs, targets, grad)
        t = _targets(targets, probs.shape)
        if t is None:
            return super().softmax_cross_entropy_backward(probs, targets, grad)
        return K.softmax_cross_entropy_backward(_c(probs), t, _c(grad))

    # ------------------------------------------------------------ elementwise
    def tanh_backward(self, y: Any, grad: Any) -> Any:
        """``grad * (1 - y*y)`` for y, grad of one shape (any rank), computed raveled."""
        if (
            _float_dtype(y, grad) is None
            or y.shape != grad.shape
            or not (y.flags.c_contiguous and grad.flags.c_contiguous)
        ):
            # A broadcast gradient (stride 0) would need a full copy: NumPy is as fast.
            return super().tanh_backward(y, grad)
        return K.tanh_backward(_c(y.ravel()), _c(grad.ravel())).reshape(y.shape)

    # ------------------------------------------------------------------- GEMM
    def matmul(self, a: Any, b: Any) -> Any:
        """2-D ``a @ b``: small products in SciPy's BLAS on one thread, large ones in NumPy's.

        A transposed operand (the backward's ``W.T``) is F-contiguous and goes to BLAS
        with the transpose flag, uncopied; any other layout is made C-contiguous.
        """
        if getattr(a, "ndim", 0) != 2 or getattr(b, "ndim", 0) != 2 or _float_dtype(a, b) is None:
            return super().matmul(a, b)
        work = a.shape[0] * a.shape[1] * b.shape[1]
        if work >= self.single_thread_below:  # MKL, else NumPy's BLAS: faster than SciPy's
            out = np.empty((a.shape[0], b.shape[1]), dtype=_float_dtype(a, b))
            # The backward's transposed operands go to MKL uncopied, with the flag.
            ta, tb = not _mkl.usable(a), not _mkl.usable(b)
            a_, b_ = a.T if ta else a, b.T if tb else b

            def mkl() -> np.ndarray:
                return _mkl.gemm(a_, b_, out, trans_a=ta, trans_b=tb)

            def openblas() -> np.ndarray:
                return np.matmul(a, b, out=out)

            # Below SMALL_GEMM (2**28, ~4 ms on one core) on one thread even where the BLAS
            # has more: a product split between threads waits for all of them, and on a
            # shared machine for a descheduled one (the output layer's products at
            # h = 256 take 0.1-0.3 ms, a lost time slice ~3 ms). Larger ones keep them.
            scope = one_blas_thread() if work < SMALL_GEMM else contextlib.nullcontext()
            with scope:
                return mkl() if _mkl_runs(mkl, openblas, a_, b_, out) else openblas()
        with self._blas_scope(work):
            return K.matmul(_gemm_operand(a), _gemm_operand(b))

    def sum_leading_axes(self, grad: Any, n: int) -> Any:
        """A bias gradient: ``grad`` (A_1..A_n, *rest) summed to ``rest``, as column sums.

        Row after row, as NumPy sums over axis 0, so the same bits; 4-8x faster than
        NumPy for rows of 28-128 (its loop pays per row). A single column would be
        summed pairwise by NumPy, so it stays there.
        """
        if _float_dtype(grad) is None or grad.size == 0 or not grad.flags.c_contiguous:
            return super().sum_leading_axes(grad, n)
        rest = grad.shape[n:]
        width = math.prod(rest)
        if width < 2:
            return super().sum_leading_axes(grad, n)
        return K.column_sums(grad.reshape(-1, width)).reshape(rest)

    def global_norm_sq(self, arrays: list) -> Any:
        """Σ‖a‖² in float64 without NumPy's BLAS (``vdot`` would wake its thread pool)."""
        total = 0.0
        for a in arrays:
            if _float_dtype(a) is None:
                return super().global_norm_sq(arrays)
            total += K.sum_of_squares(_c(a).reshape(-1))
        return np.asarray(total)

    # ------------------------------------------------------------ scatter-add
    def scatter_add(self, shape: tuple, index: Any, values: Any) -> Any:
        """``zeros(shape)``, ``out[index[k]] += values[k]``: the embedding / row-gather backward.

        Compiled when ``index`` is one integer array (any shape) of in-range rows and
        ``values`` has shape ``index.shape + shape[1:]``; tuples, slices, bool masks
        and negative indices go to ``np.add.at``.
        """
        shape = tuple(shape)
        if (
            not shape
            or _float_dtype(values) is None
            or getattr(index, "shape", None) is None
            or values.shape != index.shape + shape[1:]
        ):
            return super().scatter_add(shape, index, values)
        idx = _int_index(index, shape[0])
        if idx is None:
            return super().scatter_add(shape, index, values)
        rows = _c(values).reshape(idx.size, -1)
        return K.scatter_add_rows(shape[0], idx, rows).reshape(shape)


def _gemm_operand(a: np.ndarray) -> np.ndarray:
    """``a`` as is when C- or F-contiguous (and writable, aligned), else a C copy."""
    if (a.flags.c_contiguous or a.flags.f_contiguous) and a.flags.writeable and a.flags.aligned:
        return a
    return _c(a)



def _right_product(W: np.ndarray, rows: int, transpose: bool = False):
    """``f(A, a, out, o)``: ``out = A @ W`` (``A @ Wᵀ`` with ``transpose``) for the ``A``
    (rows, ·) of every step, ``a`` and ``o`` the addresses of ``A`` and ``out`` (see
    :func:`_steps`): MKL's GEMM on ``W`` packed once where MKL is installed and the faster
    here (:func:`._mkl.preferred`), which reads the addresses (``ndarray.ctypes`` costs more
    than the rest of a call's Python), else NumPy's BLAS, which reads the arrays, given a
    contiguous ``Wᵀ`` (it is slower with a transposed operand)."""
    packed = None
    if _mkl.usable(W) and _mkl.choice() != "openblas":
        packed = _mkl.PackedRight(W, rows, transpose)
    if packed is not None and _mkl.choice() is None:  # the process's first large product
        W_c = K.transposed(W) if transpose else W
        A0 = np.zeros((rows, packed.K), W.dtype)
        out0 = np.empty((rows, packed.N), W.dtype)
        _mkl.preferred(lambda: packed(A0, out0), lambda: np.matmul(A0, W_c, out=out0))
    if packed is not None and _mkl.choice() == "mkl":

        def mkl_product(A: np.ndarray, a: int, out: np.ndarray, o: int) -> None:
            packed.at(a, A.strides[0] // A.itemsize, o, out.strides[0] // out.itemsize)

        return mkl_product
    W = K.transposed(W) if transpose else W

    def product(A: np.ndarray, a: int, out: np.ndarray, o: int) -> None:
        np.matmul(A, W, out=out)

    return product


def _steps(a: np.ndarray) -> tuple[int, int]:
    """(address of ``a[0]``, bytes between steps) of a (T, ...) array: step t's address is
    ``base + t * pitch``, plain integer arithmetic in the time loops."""
    return a.ctypes.data, a.strides[0]


def _prev_times(H: np.ndarray, H0: np.ndarray, dA: np.ndarray, out: np.ndarray | None = None,
                cols: slice = slice(None), H_prev: np.ndarray | None = None) -> np.ndarray:
    """``dW_hh = Σ_t H_{t-1}ᵀ dA_t`` (h, G·h) for H (T, N, h), H0 (N, h), dA (T, N, G·h): one
    GEMM over the T·N rows (MKL: two, H0's and H[:-1]'s, instead of stacking them).

    Only the columns ``cols`` of ``out`` where given (the row split's second round, each
    core a block of columns); ``H_prev``: :func:`K.stack_prev` of H, H0 if already made.
    """
    T, N, h = H.shape
    G = dA.shape[2]
    out = np.empty((h, G), dtype=dA.dtype) if out is None else out
    dA_rows, o = dA.reshape(T * N, G)[:, cols], out[:, cols]

    def mkl() -> np.ndarray:
        _mkl.gemm(H0, dA_rows[:N], o, trans_a=True)
        if T > 1:
            _mkl.gemm(H[:-1].reshape((T - 1) * N, h), dA_rows[N:], o, trans_a=True, beta=1.0)
        return out

    def openblas() -> np.ndarray:
        prev = K.stack_prev(H, H0) if H_prev is None else H_prev
        np.matmul(prev.T, dA_rows, out=o)
        return out

    return mkl() if _mkl_runs(mkl, openblas, H0, dA_rows, o) else openblas()


def _mkl_runs(run_mkl: Any, run_openblas: Any, *arrays: np.ndarray) -> bool:
    """Whether a large product on ``arrays`` runs in MKL: it can take them, and it is the
    process's choice (timed on the first large product, :func:`._mkl.preferred`)."""
    return _mkl.usable(*arrays) and _mkl.preferred(run_mkl, run_openblas)


# The time loops below: per step one GEMM and one compiled elementwise kernel, nothing
# allocated; ``*_at`` are the (base, pitch) addresses of :func:`_steps`.
def _rnn_forward_steps(Zx: np.ndarray, H0: np.ndarray, W_hh: np.ndarray, relu: bool,
                       out: np.ndarray | None = None):
    """:func:`K.rnn_forward` with each step's GEMM in MKL or NumPy's BLAS: the time loop
    in Python, the fused add+φ compiled; two calls a step, nothing allocated in the loop.
    ``out``: H to write into (a view of a whole batch's, for the row split)."""
    T, N, h = Zx.shape
    H = np.empty_like(Zx) if out is None else out
    hw = np.empty((N, h), dtype=Zx.dtype)
    times_W_hh = _right_product(W_hh, N)
    (H_at, H_pitch), hw_at = _steps(H), hw.ctypes.data
    prev, prev_at = H0, H0.ctypes.data
    for t in range(T):
        times_W_hh(prev, prev_at, hw, hw_at)
        K.add_activate(Zx[t], hw, H[t], relu)
        prev, prev_at = H[t], H_at + t * H_pitch
    return H


def _rnn_backward_steps(dH: np.ndarray, H: np.ndarray, H0: np.ndarray, W_hh: np.ndarray,
                        relu: bool, out: np.ndarray | None = None, weights: bool = True
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`K.rnn_backward` with its GEMMs in MKL or NumPy's BLAS (as the forward);
    ``out``: dZ to write into, ``weights=False``: dW_hh left to the caller (None)."""
    T, N, h = H.shape
    dZ = np.empty_like(H) if out is None else out
    carry = np.zeros_like(H0)
    times_W_hh_T = _right_product(W_hh, N, transpose=True)
    (dZ_at, dZ_pitch), carry_at = _steps(dZ), carry.ctypes.data
    for t in range(T - 1, -1, -1):
        K.local_grad(dH[t], carry, H[t], dZ[t], relu)
        times_W_hh_T(dZ[t], dZ_at + t * dZ_pitch, carry, carry_at)  # carry was consumed
    return dZ, carry, (_prev_times(H, H0, dZ) if weights else None)


def _gate_dims(gates: Any, n_gates: int) -> tuple[int, int, int] | None:
    """(T, N, h) of a (T, N, n_gates·h) array of gate blocks, None if it is not one."""
    shape = getattr(gates, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] % n_gates:
        return None
    T, N, width = shape
    return T, N, width // n_gates


def _shapes_are(*pairs: tuple[Any, tuple]) -> bool:
    """Whether each ``(array, shape)`` pair's array has that shape."""
    return all(getattr(a, "shape", None) == shape for a, shape in pairs)


def _gru_forward_steps(Zx: np.ndarray, H0: np.ndarray, W_hh: np.ndarray, b_hh: np.ndarray,
                       out: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`K.gru_forward` with each step's GEMM in MKL or NumPy's BLAS (as
    :func:`_rnn_forward_steps`): a GEMM and a compiled :func:`K.gru_step` per step.

    ``out``: (H, gates, hn) to write into (views of a whole batch's, for the row split);
    every array here is only indexed by step, so (T, n, ·) views with a row pitch do."""
    T, N, G = Zx.shape
    h = H0.shape[1]
    if out is None:
        out = (np.empty((T, N, h), dtype=Zx.dtype), np.empty_like(Zx),
               np.empty((T, N, h), dtype=Zx.dtype))
    H, gates, hn = out
    gh = np.empty((N, G), dtype=Zx.dtype)
    times_W_hh = _right_product(W_hh, N)
    (H_at, H_pitch), gh_at = _steps(H), gh.ctypes.data
    prev, prev_at = H0, H0.ctypes.data
    for t in range(T):
        times_W_hh(prev, prev_at, gh, gh_at)
        K.gru_step(Zx[t], gh, b_hh, prev, H[t], gates[t], hn[t])
        prev, prev_at = H[t], H_at + t * H_pitch
    return H, gates, hn


def _gru_backward_steps(dH: np.ndarray, H: np.ndarray, gates: np.ndarray, hn: np.ndarray,
                        H0: np.ndarray, W_hh: np.ndarray, out: tuple | None = None,
                        weights: bool = True) -> tuple[np.ndarray, ...]:
    """:func:`K.gru_backward` with its GEMMs in MKL or NumPy's BLAS; ``out``: (dZx, dGh) to
    write into (views, as :func:`_gru_forward_steps`); ``weights=False`` leaves dW_hh and
    db_hh (None) to the caller, who has the whole batch's dGh."""
    T, N, h = H.shape
    G = gates.shape[2]
    dZx, dGh = (np.empty_like(gates), np.empty_like(gates)) if out is None else out
    gz = np.zeros_like(H0)
    hw = np.zeros_like(H0)
    times_W_hh_T = _right_product(W_hh, N, transpose=True)
    (dGh_at, dGh_pitch), hw_at = _steps(dGh), hw.ctypes.data
    for t in range(T - 1, -1, -1):
        prev = H0 if t == 0 else H[t - 1]
        K.gru_local_grad(dH[t], gz, hw, prev, gates[t], hn[t], dZx[t], dGh[t])
        times_W_hh_T(dGh[t], dGh_at + t * dGh_pitch, hw, hw_at)  # hw was consumed above
    if not weights:
        return dZx, gz + hw, None, None
    dW_hh = _prev_times(H, H0, dGh)
    return dZx, gz + hw, dW_hh, K.column_sums(dGh.reshape(T * N, G))


def _lstm_forward_steps(Zx: np.ndarray, H0: np.ndarray, C0: np.ndarray, W_hh: np.ndarray,
                        out: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`K.lstm_forward` with each step's GEMM in MKL or NumPy's BLAS: a GEMM and a
    compiled :func:`K.lstm_step` per step; ``out``: (H, C, gates) to write into, as
    :func:`_gru_forward_steps`."""
    T, N, G = Zx.shape
    h = H0.shape[1]
    if out is None:
        out = (np.empty((T, N, h), dtype=Zx.dtype), np.empty((T, N, h), dtype=Zx.dtype),
               np.empty_like(Zx))
    H, C, gates = out
    aw = np.empty((N, G), dtype=Zx.dtype)
    times_W_hh = _right_product(W_hh, N)
    (H_at, H_pitch), aw_at = _steps(H), aw.ctypes.data
    prev_h, prev_at, prev_c = H0, H0.ctypes.data, C0
    for t in range(T):
        times_W_hh(prev_h, prev_at, aw, aw_at)
        K.lstm_step(Zx[t], aw, prev_c, C[t], H[t], gates[t])
        prev_h, prev_at, prev_c = H[t], H_at + t * H_pitch, C[t]
    return H, C, gates


def _lstm_backward_steps(dH: np.ndarray, dC_T: np.ndarray, H: np.ndarray, C: np.ndarray,
                         gates: np.ndarray, H0: np.ndarray, C0: np.ndarray,
                         W_hh: np.ndarray, out: np.ndarray | None = None,
                         weights: bool = True) -> tuple[np.ndarray, ...]:
    """:func:`K.lstm_backward` with its GEMMs in MKL or NumPy's BLAS; ``out``: dA to write
    into, ``weights=False``: dW_hh left to the caller (None), as :func:`_gru_backward_steps`."""
    T, N = H.shape[:2]
    dA = np.empty_like(gates) if out is None else out
    carry_h = np.zeros_like(H0)
    carry_c = dC_T.copy()  # updated in place: the caller's dC_T stays as it was
    times_W_hh_T = _right_product(W_hh, N, transpose=True)
    (dA_at, dA_pitch), carry_at = _steps(dA), carry_h.ctypes.data
    for t in range(T - 1, -1, -1):
        prev_c = C0 if t == 0 else C[t - 1]
        K.lstm_local_grad(dH[t], carry_h, carry_c, C[t], prev_c, gates[t], dA[t])
        times_W_hh_T(dA[t], dA_at + t * dA_pitch, carry_h, carry_at)  # carry_h was consumed
    return dA, carry_h, carry_c, (_prev_times(H, H0, dA) if weights else None)


# ------------------------------------------------- the batch split between cores
# Rows of a batch never meet in a recurrence: row n of H_t needs only row n of H_{t-1}
# (the CUDA kernels run one block per row for the same reason). So with two BLAS threads
# the step loops run on two halves of the batch at once, each on one core with its BLAS
# on that one thread, for the whole sequence, and meet once at the end. Splitting each
# step's GEMM between two threads instead (what BLAS threading does) makes both threads
# wait for each other 2·T times a sequence: on a shared 2-core machine, whenever another
# process holds one core, every step waits for a descheduled thread (measured, LSTM
# h = 256, load ~5: 1,509 tokens/s on two threads against 13,687 on one; PyTorch's
# nn.LSTM 746 against 22,160). Split by rows, a core lost to another process costs at
# most the time of its half.
_workers: ThreadPoolExecutor | None = None
_worker_count = 0
_workers_lock = threading.Lock()


def _forget_workers() -> None:
    """In a forked child the pool's threads are gone: make a new pool on first use (the
    old one would queue tasks that no thread runs)."""
    global _workers, _worker_count, _workers_lock
    _workers, _worker_count, _workers_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def _blas_threads() -> int:
    """The threads the large products' BLAS has (MKL's where it is the choice, else NumPy's)."""
    if _mkl.choice() == "mkl":
        return _mkl.threads()
    control = numpy_blas_threads()
    return control[0]() if control else 1


def _on_cores(tasks: list) -> None:
    """Run the callables at once: the first on the caller's thread, the others on worker
    threads, every BLAS call on the thread that makes it (NumPy's OpenBLAS on one thread
    for the duration, MKL on one for each task). The kernels and the GEMMs release the
    GIL; only the loops' Python between them takes turns."""
    global _workers, _worker_count
    with _workers_lock:
        if _workers is None or _worker_count < len(tasks) - 1:
            _worker_count = len(tasks) - 1
            _workers = ThreadPoolExecutor(max_workers=_worker_count,
                                          thread_name_prefix="tinygrad_rnn-rows")
        pool = _workers

    def single(task):
        with _mkl.one_local_thread():  # MKL's count is per thread, OpenBLAS's global
            task()

    with one_numpy_blas_thread():
        futures = [pool.submit(single, task) for task in tasks[1:]]
        try:
            single(tasks[0])
        finally:
            for f in futures:  # every part has finished (or failed) before the BLAS is reset
                f.exception()
        for f in futures:
            f.result()  # re-raises a worker's exception here


#: The fewest batch rows a part of the row split gets: each part streams all of W_hh
#: every step, so parts of a few rows would be bound by that (not measured beyond two
#: cores: a guess that keeps many-core machines from splitting a batch of 32 sixteen ways).
_MIN_ROWS = 8


def _row_parts(N: int) -> list[slice]:
    """Contiguous ranges of the N batch rows, one per BLAS thread, of at least
    :data:`_MIN_ROWS` rows each (one range where N is smaller)."""
    parts = max(1, min(_blas_threads(), N // _MIN_ROWS))
    bounds = [N * k // parts for k in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def _by_rows(by_step: Any, *arrays: np.ndarray):
    """``by_step(*arrays)``, one of the step loops below, on the batch rows split between
    the BLAS's threads (:func:`_on_cores`), or whole where it has one thread."""
    N = arrays[0].shape[1]
    parts = _row_parts(N) if os.environ.get("TINYGRAD_RNN_SPLIT_ROWS", "1") != "0" else [0]
    if len(parts) < 2 or by_step not in _ROW_SPLITS:
        return by_step(*arrays)
    if _mkl.usable(arrays[0]) and _mkl.choice() is None:
        # The process's first large product: the BLAS is chosen (timed) first, on one
        # thread and one part's rows, as the parts will run it.
        with one_blas_thread():
            _right_product(_RECURRENT_WEIGHT[by_step](arrays), N // len(parts))
    return _ROW_SPLITS[by_step](by_step, parts, *arrays)


@contextlib.contextmanager
def one_blas_thread():
    """Both BLAS of the large products (NumPy's OpenBLAS, MKL) on the calling thread only,
    within the block."""
    with one_numpy_blas_thread(), _mkl.one_local_thread():
        yield


def _targets(targets: Any, shape: tuple) -> np.ndarray | None:
    """Class ``targets`` for logits of ``shape`` (N, C) as int64 (N,), or None to fall back."""
    if getattr(targets, "shape", None) != shape[:1]:
        return None
    return _int_index(targets, shape[1])


def _split_forward(by_step: Any, parts: list[slice], Zx: np.ndarray, H0: np.ndarray,
                   *rest: np.ndarray) -> tuple[np.ndarray, ...]:
    """A forward step loop (LSTM: ``rest`` = (C0, W_hh); GRU: (W_hh, b_hh)) per range of
    rows, each reading and writing its rows of the whole batch's arrays in place."""
    T, N = Zx.shape[:2]
    h = H0.shape[1]
    lstm = by_step is _lstm_forward_steps
    if lstm:  # H, C, gates
        shapes = ((T, N, h), (T, N, h), Zx.shape)
    else:  # GRU: H, gates, hn
        shapes = ((T, N, h), Zx.shape, (T, N, h))
    outputs = tuple(np.empty(shape, Zx.dtype) for shape in shapes)

    def part(r: slice):
        state = (H0[r], rest[0][r]) if lstm else (H0[r],)
        return lambda: by_step(Zx[:, r], *state, *rest[len(state) - 1:],
                               out=tuple(o[:, r] for o in outputs))

    _on_cores([part(r) for r in parts])
    return outputs


def _split_backward(by_step: Any, parts: list[slice], *arrays: np.ndarray
                    ) -> tuple[np.ndarray, ...]:
    """A backward step loop per range of rows (each its rows of the whole batch's arrays,
    in place), then dW_hh in a second round, each core a block of its columns (one GEMM
    over all T·N rows each); the GRU's db_hh after that, as column sums."""
    W_hh = arrays[-1]
    lstm = by_step is _lstm_backward_steps
    T, N = arrays[0].shape[:2]
    G = W_hh.shape[1]  # G·h: the gate blocks side by side
    grads = (np.empty((T, N, G), W_hh.dtype),) if lstm else (
        np.empty((T, N, G), W_hh.dtype), np.empty((T, N, G), W_hh.dtype))  # dZx, dGh
    carries: list[tuple | None] = [None] * len(parts)

    def rows(a: np.ndarray, r: slice) -> np.ndarray:
        return a[:, r] if a.ndim == 3 else a[r]

    def part(k: int, r: slice):
        def task() -> None:
            out = grads[0][:, r] if lstm else tuple(g[:, r] for g in grads)
            got = by_step(*(rows(a, r) for a in arrays[:-1]), W_hh, out=out, weights=False)
            carries[k] = got[1:3] if lstm else got[1:2]

        return task

    _on_cores([part(k, r) for k, r in enumerate(parts)])
    dA = grads[0] if lstm else grads[1]  # the gradient of the recurrent pre-activations
    H, H0 = (arrays[2], arrays[5]) if lstm else (arrays[1], arrays[4])
    dW = _prev_times_by_columns(H, H0, dA, len(parts))
    carry = [np.concatenate([c[j] for c in carries]) for j in range(len(carries[0]))]
    if lstm:  # dA, dH0, dC0, dW_hh
        return grads[0], carry[0], carry[1], dW
    return grads[0], carry[0], dW, K.column_sums(grads[1].reshape(T * N, G))


def _prev_times_by_columns(H: np.ndarray, H0: np.ndarray, dA: np.ndarray,
                           parts: int) -> np.ndarray:
    """:func:`_prev_times` (dW_hh) on ``parts`` cores at once, each a block of columns:
    one GEMM over all T·N rows each, no partial sums to add."""
    G = dA.shape[2]
    H_prev = K.stack_prev(H, H0) if _mkl.choice() != "mkl" else None
    dW = np.empty((H.shape[2], G), dtype=dA.dtype)
    bounds = [G * k // parts for k in range(parts + 1)]
    _on_cores([(lambda c: lambda: _prev_times(H, H0, dA, dW, c, H_prev))(slice(a, b))
               for a, b in zip(bounds, bounds[1:], strict=False)])
    return dW


def _split_rnn_forward(by_step: Any, parts: list[slice], Zx: np.ndarray, H0: np.ndarray,
                       W_hh: np.ndarray, relu: bool) -> np.ndarray:
    """:func:`_rnn_forward_steps` per range of rows, into the whole batch's H."""
    H = np.empty_like(Zx)

    def part(r: slice):
        return lambda: by_step(Zx[:, r], H0[r], W_hh, relu, out=H[:, r])

    _on_cores([part(r) for r in parts])
    return H


def _split_rnn_backward(by_step: Any, parts: list[slice], dH: np.ndarray, H: np.ndarray,
                        H0: np.ndarray, W_hh: np.ndarray, relu: bool
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_rnn_backward_steps` per range of rows (dZ into the whole batch's), then
    dW_hh by columns, as :func:`_split_backward`."""
    dZ = np.empty_like(H)
    carries: list[np.ndarray | None] = [None] * len(parts)

    def part(k: int, r: slice):
        def task() -> None:
            carries[k] = by_step(dH[:, r], H[:, r], H0[r], W_hh, relu, out=dZ[:, r],
                                 weights=False)[1]
        return task

    _on_cores([part(k, r) for k, r in enumerate(parts)])
    return dZ, np.concatenate(carries), _prev_times_by_columns(H, H0, dZ, len(parts))


_ROW_SPLITS = {
    _lstm_forward_steps: _split_forward, _gru_forward_steps: _split_forward,
    _lstm_backward_steps: _split_backward, _gru_backward_steps: _split_backward,
    _rnn_forward_steps: _split_rnn_forward, _rnn_backward_steps: _split_rnn_backward,
}
_RECURRENT_WEIGHT = {  # where W_hh is among each step loop's arguments
    _lstm_forward_steps: lambda a: a[3], _gru_forward_steps: lambda a: a[2],
    _lstm_backward_steps: lambda a: a[7], _gru_backward_steps: lambda a: a[5],
    _rnn_forward_steps: lambda a: a[2], _rnn_backward_steps: lambda a: a[3],
}

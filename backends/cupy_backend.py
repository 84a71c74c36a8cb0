"""CuPy on an NVIDIA GPU: CuPy arrays as the namespace, cuBLAS GEMMs, CUDA kernels for hot paths.

Importing this module never imports CuPy; creating the backend does, and says
exactly what is missing (the package, the driver, or a device) when it cannot run.

Every override checks that its inputs are what its kernel handles (CuPy arrays of
one float dtype, float32 or float64, of the expected ranks and shapes, non-empty)
and otherwise defers to the plain kernel of :class:`Backend`, written against
``self.xp`` (here CuPy), which defines the semantics. At D2L's sizes a training step
costs launches, not arithmetic (each CuPy call is some 20 µs of host time), so the
kernels do as much as they can per launch:

* the recurrence, ``"rows"`` (the default up to h = 512): the whole sequence in one
  launch each way, a thread block per batch row, since row n of H_t needs only row n
  of H_{t-1}; ``"loop"``: per step one cuBLAS GEMM and one fused ``ElementwiseKernel``
  (the cell), two launches a step. ``dW_hh`` is one GEMM over all steps either way;
* the GRU and the LSTM: per step one GEMM and one kernel of ``gates.cu`` (the gates'
  elementwise work, fused), each way; ``dW_hh`` one GEMM over all steps;
* softmax-cross-entropy's forward, one thread block per row (a templated
  ``RawModule``), and its backward, tanh′, as ``ElementwiseKernel`` objects;
* the global-norm clip and the SGD update over all parameters at once (up to 8 arrays
  per launch, their buffers passed as kernel arguments): one launch for Σ g² in
  float64, one for the scaling, one for ``p -= lr·g``;
* cuBLAS through ``cupy.matmul`` for every GEMM, except while a CUDA graph records
  (CuPy allows no cuBLAS call then): there a tiled GEMM of our own, ``tg_gemm``;
* ``cupy.add.at`` (atomic adds) for the backward of indexing and of the embedding.

All are built on first use and compiled once per dtype (CuPy caches the binaries in
``~/.cupy/kernel_cache``). No kernel here waits for the GPU: each call only queues
work on the current stream, so nothing in a step synchronises with the host except
what the caller reads back. CuPy compiles with ``-ftz``: float32 subnormals become 0.

``record_graph`` records a whole training step as a CUDA graph, replayed in one launch
(:mod:`tinygrad_rnn.cuda_graph`; what ``train`` does on this backend by default).

This module is the dispatch. The kernels' CUDA C++ is in ``backends/cuda/*.cu``,
loaded and cached by :mod:`._cupy_kernels`; the tiled GEMM's driver is
:mod:`._cupy_gemm`, the graph capture :mod:`._cupy_graph`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _cupy_graph
from ._cupy_gemm import TiledGemm
from ._cupy_kernels import LIST, MAX_GRID_X, Kernels, blocks, chunks, list_args
from .base import Backend, BackendUnavailable, common_float_dtype, rnn_shapes_ok

INSTALL_HINT = (
    "install CuPy for your CUDA version: pip install 'tinygrad_rnn[cuda12]' "
    "(CUDA 12) or 'tinygrad_rnn[cuda13]' (CUDA 13)"
)

_MAX_SMEM = 48 * 1024  # shared memory a block gets without opting in
_ROWS_UP_TO = 512  # the widest recurrence run as "rows" unless asked (see rnn_plan)


def _import_cupy() -> Any:
    try:
        import cupy
    except ImportError as e:
        raise BackendUnavailable(
            f"backend 'cupy' needs the CuPy package ({e}); {INSTALL_HINT}"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver, or driver too old for this CuPy
        raise BackendUnavailable(
            f"backend 'cupy': CuPy is installed but the CUDA driver is not usable ({e}); "
            "check `nvidia-smi` and that the CuPy package matches the driver's CUDA version"
        ) from None
    if count < 1:
        raise BackendUnavailable(
            "backend 'cupy': CuPy and the driver are present but no GPU device was found"
        )
    return cupy


def _group_size(h: int) -> int:
    """Threads that take one slice of the rows kernel's k sum: whole warps, at most 1024."""
    return min(1024, -(-h // 32) * 32)


class CupyBackend(Backend):
    """CuPy arrays on the current CUDA device."""

    name = "cupy"
    records_graphs = True
    #: How the recurrence runs: ``"rows"`` (the whole sequence in one launch, a block
    #: per batch row) or ``"loop"`` (per step a cuBLAS GEMM and a fused elementwise
    #: kernel). None: ``"rows"`` up to h = 512 where a row of H fits in a block's
    #: shared memory (:meth:`rnn_plan`). ``benchmarks/gpu_rnn.py`` compares the two.
    rnn_strategy: str | None = None
    #: Slices of the k sum per column in ``"rows"`` (None: as many as fit in 1024
    #: threads, each at least 32 long).
    rnn_row_split: int | None = None
    #: Unrolling of the k loop in ``"rows"`` (loads of W_hh in flight per thread).
    rnn_row_unroll: int = 8

    def __init__(self) -> None:
        self.xp = _import_cupy()
        # While record_graph runs its body, GEMMs go to tg_gemm instead of cuBLAS. The
        # flag is the backend's, not the thread's: another thread's GEMMs meanwhile
        # take tg_gemm too, which gives the same product to rounding.
        self._recording = False

    def rnn_plan(self, N: int, h: int, dtype: Any) -> str:
        """The strategy a recurrence of batch ``N`` and width ``h`` runs with.

        ``rows`` by default up to h = 512: there its one launch beats the loop's 2·T
        (an H100, ``benchmarks/gpu_rnn.py``); at h = 1024 each block streams 4 MB of
        W_hh per step and the loop of cuBLAS GEMMs is faster.
        """
        split = self._row_split(h)
        rows_fit = (1 + split) * h * np.dtype(dtype).itemsize <= _MAX_SMEM and N <= MAX_GRID_X
        wanted = self.rnn_strategy == "rows" or (self.rnn_strategy is None and h <= _ROWS_UP_TO)
        return "rows" if rows_fit and wanted else "loop"

    def _row_split(self, h: int) -> int:
        most = 1024 // _group_size(h)  # groups of whole warps in 1024 threads
        return max(1, min(most, self.rnn_row_split or max(1, h // 32)))

    def _launch_rows(self, way: str, nonlinearity: str, arrays: tuple, T: int, N: int, h: int):
        """One block per batch row, ``split`` groups of threads, a thread per column each."""
        kernel = self._k.rnn_rows(way, arrays[0].dtype, nonlinearity, self.rnn_row_unroll)
        split = self._row_split(h)
        threads = split * _group_size(h)
        sizes = (np.int32(T), np.int32(N), np.int32(h), np.int32(split))
        smem = (1 + split) * h * arrays[0].itemsize  # the row of H, the slices' sums
        kernel((N,), (threads,), arrays + sizes, shared_mem=smem)

    @functools.cached_property
    def _k(self) -> Kernels:
        return Kernels(self.xp)

    # ----------------------------------------------------------------- arrays
    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """``data`` as a CuPy array on the current device (no copy when it already is one)."""
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        """A NumPy copy of ``array``, copied from the GPU (the host waits for it)."""
        return self.xp.asnumpy(array)

    def is_array(self, obj: Any) -> bool:
        """Whether ``obj`` is a CuPy array."""
        return isinstance(obj, self.xp.ndarray)

    def synchronize(self) -> None:
        """Wait for the work queued on the current CUDA stream."""
        self.xp.cuda.get_current_stream().synchronize()

    def record_graph(self, body: Callable[[], None]) -> Callable[[], None]:
        """Record the kernels ``body`` queues as a CUDA graph; return its replay.

        ``body`` runs once, on a stream of its own in capture mode, so its kernels are
        recorded and not run: it must not wait for the GPU, read anything back or
        upload host data (CuPy stages an upload in pinned memory and waits on an
        event). The memory it allocates comes from a pool kept for this graph alone,
        since every replay writes to those same blocks. Replays queue on the current
        stream, in order with the work before and after them.
        """
        self._tiled_gemm.prepare()

        def recorded() -> None:
            self._recording = True
            try:
                body()
            finally:
                self._recording = False

        return _cupy_graph.record(self.xp, recorded)

    def _float_dtype(self, *arrays: Any) -> np.dtype | None:
        """The dtype shared by ``arrays`` if all are non-empty float32/float64 CuPy arrays."""
        return common_float_dtype(self.xp.ndarray, *arrays)

    # ------------------------------------------------------------------- GEMM
    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` by ``cupy.matmul``: cuBLAS for float operands (transposes uncopied);
        by :meth:`tiled_matmul` while a CUDA graph records."""
        return self._gemm(a, b)

    def _gemm(self, a: Any, b: Any, out: Any = None) -> Any:
        if self._recording:
            return self.tiled_matmul(a, b, out)
        return self.xp.matmul(a, b, out=out)

    def tiled_matmul(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a @ b`` by ``tg_gemm``, batch axes broadcast as in NumPy: the GEMM a CUDA
        graph records, since CuPy refuses cuBLAS calls on a capturing stream.

        ``a`` (..., M, K) and ``b`` (..., K, N) of one float dtype; ``out``, if given,
        a C-contiguous array of the result's shape and dtype.
        """
        return self._tiled_gemm(a, b, out)

    @functools.cached_property
    def _tiled_gemm(self) -> TiledGemm:
        return TiledGemm(self.xp, self._k)

    # -------------------------------------------------------------- fused RNN
    def rnn_forward(self, Zx: Any, H0: Any, W_hh: Any, nonlinearity: str) -> Any:
        """Zx (T, N, h), H0 (N, h), W_hh (h, h) -> H (T, N, h): per step one GEMM, one kernel."""
        step = self._k.rnn_step.get(nonlinearity)
        if (
            step is None
            or not rnn_shapes_ok(Zx, H0, W_hh)
            or self._float_dtype(Zx, H0, W_hh) is None
        ):
            return super().rnn_forward(Zx, H0, W_hh, nonlinearity)
        xp, matmul = self.xp, self._gemm
        T, N, h = Zx.shape
        H = xp.empty((T, N, h), dtype=Zx.dtype)
        if self.rnn_plan(N, h, Zx.dtype) == "rows":  # a RawKernel sees buffers, not strides
            args = tuple(xp.ascontiguousarray(a) for a in (Zx, H0, W_hh)) + (H,)
            self._launch_rows("forward", nonlinearity, args, T, N, h)
            return H
        hw = xp.empty((N, h), dtype=Zx.dtype)  # H_{t-1} W_hh, reused by every step
        prev = H0
        for t in range(T):
            matmul(prev, W_hh, out=hw)
            step(Zx[t], hw, H[t])  # H_t = φ(Zx_t + hw), written in place
            prev = H[t]
        return H

    def rnn_backward(
        self, dH: Any, H: Any, H0: Any, W_hh: Any, nonlinearity: str
    ) -> tuple[Any, Any, Any]:
        """BPTT: per step one kernel and one GEMM, then ``dW_hh`` as one GEMM over all steps."""
        step = self._k.bptt_step.get(nonlinearity)
        if (
            step is None
            or not rnn_shapes_ok(H, H0, W_hh)
            or getattr(dH, "shape", None) != H.shape
            or self._float_dtype(dH, H, H0, W_hh) is None
        ):
            return super().rnn_backward(dH, H, H0, W_hh, nonlinearity)
        xp, matmul = self.xp, self._gemm
        T, N, h = H.shape
        dZ = xp.empty((T, N, h), dtype=H.dtype)
        if self.rnn_plan(N, h, H.dtype) == "rows":
            carry = xp.empty((N, h), dtype=H.dtype)  # dH0
            dH, H, W_hh_T = (xp.ascontiguousarray(a) for a in (dH, H, W_hh.T))
            self._launch_rows("backward", nonlinearity, (dH, H, W_hh_T, dZ, carry), T, N, h)
        else:
            carry = xp.zeros((N, h), dtype=H.dtype)  # dZ_{t+1} W_hhᵀ: what H_t gets from t+1
            W_hh_T = W_hh.T
            for t in range(T - 1, -1, -1):
                step(dH[t], carry, H[t], dZ[t])
                matmul(dZ[t], W_hh_T, out=carry)
        H_prev = xp.concatenate((H0[None], H[:-1]), axis=0).reshape(T * N, h)
        dW_hh = matmul(H_prev.T, dZ.reshape(T * N, h))
        return dZ, carry, dW_hh

    # ------------------------------------------------------ fused GRU and LSTM
    # Per step one GEMM (cuBLAS, or tg_gemm while a graph records) and one kernel of
    # gates.cu for the rest of the step; the weight gradient is one GEMM over all steps.
    def _gate_step(self, cell: str, way: str, arrays: tuple, N: int, h: int) -> None:
        """Launch ``gates.cu``'s step kernel on C-contiguous ``arrays``, a thread per element
        of the (N, h) state (a grid-stride loop past 1024 blocks)."""
        kernel = self._k.gate_step(cell, way, arrays[0].dtype)
        grid = max(1, min(1024, -(-N * h // 256)))
        kernel((grid,), (256,), arrays + (np.int32(N), np.int32(h)))

    def _gated_ok(self, G: int, *arrays: Any) -> tuple[int, int, int] | None:
        """(T, N, h) if ``arrays[0]`` is (T, N, G·h) and all are CuPy arrays of one float dtype."""
        shape = getattr(arrays[0], "shape", ())
        if len(shape) != 3 or shape[2] % G or self._float_dtype(*arrays) is None:
            return None
        return shape[0], shape[1], shape[2] // G

    def gru_forward(self, Zx: Any, H0: Any, W_hh: Any, b_hh: Any) -> tuple[Any, Any, Any]:
        """Zx (T, N, 3h), H0 (N, h), W_hh (h, 3h), b_hh (3h,) -> (H, gates, hn), as the base."""
        dims = self._gated_ok(3, Zx, H0, W_hh, b_hh)
        if dims is None or (H0.shape, W_hh.shape, b_hh.shape) != (
                (dims[1], dims[2]), (dims[2], 3 * dims[2]), (3 * dims[2],)):
            return super().gru_forward(Zx, H0, W_hh, b_hh)
        xp, (T, N, h) = self.xp, dims
        Zx, H0, b_hh = (xp.ascontiguousarray(a) for a in (Zx, H0, b_hh))
        H, hn = xp.empty((T, N, h), Zx.dtype), xp.empty((T, N, h), Zx.dtype)
        gates, gh = xp.empty_like(Zx), xp.empty((N, 3 * h), Zx.dtype)
        prev = H0
        for t in range(T):
            self._gemm(prev, W_hh, out=gh)
            self._gate_step("gru", "forward", (Zx[t], gh, b_hh, prev, H[t], gates[t], hn[t]), N, h)
            prev = H[t]
        return H, gates, hn

    def gru_backward(self, dH: Any, H: Any, gates: Any, hn: Any, H0: Any,
                     W_hh: Any) -> tuple[Any, Any, Any, Any]:
        """-> (dZx (T, N, 3h), dH0 (N, h), dW_hh (h, 3h), db_hh (3h,)), as the base."""
        dims = self._gated_ok(3, gates, dH, H, hn, H0, W_hh)
        if dims is None or not all(a.shape == (dims[0], dims[1], dims[2]) for a in (dH, H, hn)) \
                or (H0.shape, W_hh.shape) != ((dims[1], dims[2]), (dims[2], 3 * dims[2])):
            return super().gru_backward(dH, H, gates, hn, H0, W_hh)
        xp, (T, N, h) = self.xp, dims
        dH, H, gates, hn, H0 = (xp.ascontiguousarray(a) for a in (dH, H, gates, hn, H0))
        dZx, dGh = xp.empty_like(gates), xp.empty_like(gates)
        gz, hw = xp.zeros((N, h), H.dtype), xp.zeros((N, h), H.dtype)
        W_hh_T = W_hh.T
        for t in range(T - 1, -1, -1):
            prev = H0 if t == 0 else H[t - 1]
            self._gate_step("gru", "backward",
                            (dH[t], gz, hw, prev, gates[t], hn[t], dZx[t], dGh[t]), N, h)
            self._gemm(dGh[t], W_hh_T, out=hw)
        rows = dGh.reshape(T * N, 3 * h)
        H_prev = xp.concatenate((H0[None], H[:-1]), axis=0).reshape(T * N, h)
        return dZx, gz + hw, self._gemm(H_prev.T, rows), rows.sum(axis=0)

    def lstm_forward(self, Zx: Any, H0: Any, C0: Any, W_hh: Any) -> tuple[Any, Any, Any]:
        """Zx (T, N, 4h), H0, C0 (N, h), W_hh (h, 4h) -> (H, C, gates), as the base."""
        dims = self._gated_ok(4, Zx, H0, C0, W_hh)
        if dims is None or (H0.shape, C0.shape, W_hh.shape) != (
                (dims[1], dims[2]), (dims[1], dims[2]), (dims[2], 4 * dims[2])):
            return super().lstm_forward(Zx, H0, C0, W_hh)
        xp, (T, N, h) = self.xp, dims
        Zx, H0, C0 = (xp.ascontiguousarray(a) for a in (Zx, H0, C0))
        H, C = xp.empty((T, N, h), Zx.dtype), xp.empty((T, N, h), Zx.dtype)
        gates, aw = xp.empty_like(Zx), xp.empty((N, 4 * h), Zx.dtype)
        prev_h, prev_c = H0, C0
        for t in range(T):
            self._gemm(prev_h, W_hh, out=aw)
            self._gate_step("lstm", "forward", (Zx[t], aw, prev_c, C[t], H[t], gates[t]), N, h)
            prev_h, prev_c = H[t], C[t]
        return H, C, gates

    def lstm_backward(self, dH: Any, dC_T: Any, H: Any, C: Any, gates: Any, H0: Any, C0: Any,
                      W_hh: Any) -> tuple[Any, Any, Any, Any]:
        """-> (dZx (T, N, 4h), dH0, dC0 (N, h), dW_hh (h, 4h)), as the base."""
        dims = self._gated_ok(4, gates, dH, dC_T, H, C, H0, C0, W_hh)
        state = (dims[1], dims[2]) if dims else None
        if dims is None or not all(a.shape == (dims[0], *state) for a in (dH, H, C)) \
                or not all(a.shape == state for a in (dC_T, H0, C0)) \
                or W_hh.shape != (dims[2], 4 * dims[2]):
            return super().lstm_backward(dH, dC_T, H, C, gates, H0, C0, W_hh)
        xp, (T, N, h) = self.xp, dims
        dH, H, C, gates, H0, C0 = (xp.ascontiguousarray(a) for a in (dH, H, C, gates, H0, C0))
        dA = xp.empty_like(gates)
        carry_h = xp.zeros((N, h), H.dtype)
        carry_c = dC_T.astype(H.dtype, order="C", copy=True)  # updated in place
        W_hh_T = W_hh.T
        for t in range(T - 1, -1, -1):
            prev_c = C0 if t == 0 else C[t - 1]
            self._gate_step("lstm", "backward",
                            (dH[t], carry_h, carry_c, C[t], prev_c, gates[t], dA[t]), N, h)
            self._gemm(dA[t], W_hh_T, out=carry_h)
        H_prev = xp.concatenate((H0[None], H[:-1]), axis=0).reshape(T * N, h)
        return dA, carry_h, carry_c, self._gemm(H_prev.T, dA.reshape(T * N, 4 * h))

    # -------------------------------------------------- softmax cross-entropy
    def softmax_cross_entropy(self, logits: Any, targets: Any) -> tuple[Any, Any]:
        """logits (N, C), int targets (N,) -> (loss (N,), probs (N, C)): one block per row."""
        dtype = self._float_dtype(logits) if getattr(logits, "ndim", 0) == 2 else None
        t = self._targets(targets, logits.shape) if dtype is not None else None
        if t is None or logits.shape[0] > MAX_GRID_X or logits.shape[1] > MAX_GRID_X:
            return super().softmax_cross_entropy(logits, targets)
        xp = self.xp
        N, C = logits.shape
        logits = xp.ascontiguousarray(logits)  # a RawKernel sees the buffer, not the strides
        loss = xp.empty(N, dtype=dtype)
        probs = xp.empty((N, C), dtype=dtype)
        threads = min(256, max(32, 1 << (C - 1).bit_length()))
        self._k.xent_forward(dtype)((N,), (threads,), (logits, t, loss, probs, np.int32(C)))
        return loss, probs

    def softmax_cross_entropy_backward(self, probs: Any, targets: Any, grad: Any) -> Any:
        """probs (N, C), int targets (N,), grad (N,) -> dlogits (N, C): one elementwise kernel."""
        if getattr(probs, "ndim", 0) != 2 or getattr(grad, "shape", None) != probs.shape[:1]:
            return super().softmax_cross_entropy_backward(probs, targets, grad)
        t = self._targets(targets, probs.shape)
        if t is None or self._float_dtype(probs, grad) is None:
            return super().softmax_cross_entropy_backward(probs, targets, grad)
        return self._k.xent_backward(probs, t[:, None], grad[:, None], probs.shape[1])

    def _targets(self, targets: Any, shape: tuple) -> Any:
        """Integer CuPy ``targets`` of shape (N,) as contiguous int64, or None to fall back."""
        if (
            not isinstance(targets, self.xp.ndarray)
            or targets.dtype.kind not in "iu"
            or targets.shape != shape[:1]
        ):
            return None
        return self.xp.ascontiguousarray(targets, dtype=np.int64)

    # ------------------------------------------------------------ elementwise
    def tanh_backward(self, y: Any, grad: Any) -> Any:
        """``grad * (1 - y*y)`` in one kernel (broadcasting as NumPy does)."""
        if self._float_dtype(y, grad) is None:
            return super().tanh_backward(y, grad)
        return self._k.tanh_backward(y, grad)

    # -------------------------------------------------------------- reductions
    def global_norm_sq(self, arrays: list) -> Any:
        """Σ‖a‖² in float64 as a 0-d CuPy array: one single-block kernel per 8 arrays,
        its additions in a fixed order (the same sum on every run), no host sync."""
        dtype = self._float_dtype(*arrays) if arrays else None
        if dtype is None:
            return super().global_norm_sq(arrays)
        arrays = [self.xp.ascontiguousarray(a) for a in arrays]
        total = self.xp.empty((), dtype=np.float64)
        kernel = self._k.multi("tg_sum_squares", dtype)
        for i, chunk in enumerate(chunks(arrays)):
            kernel((1,), (1024,), list_args(chunk) + (np.int32(i > 0), total))
        return total

    def clip_by_global_norm(self, grads: list, max_norm: float) -> Any:
        """The global-norm clip in two launches per 8 arrays: the sum of squares, then
        one kernel that takes the norm, the factor and scales every array."""
        dtype = self._float_dtype(*grads) if grads else None
        if dtype is None or not all(g.flags.c_contiguous for g in grads):
            return super().clip_by_global_norm(grads, max_norm)
        total = self.global_norm_sq(grads)
        norm = self.xp.empty((), dtype=np.float64)
        kernel = self._k.multi("tg_clip_scale", dtype)
        for chunk in chunks(grads):
            args = list_args(chunk) + (total, np.float64(max_norm), norm)
            kernel((blocks(chunk),), (256,), args)
        return norm

    def sgd_update(self, params: list, grads: list, lr: float) -> None:
        """``p -= lr * g`` for all pairs in one launch per 8 (the multiply rounded alone)."""
        dtype = self._float_dtype(*params, *grads) if params else None
        if dtype is None or not all(a.flags.c_contiguous for a in (*params, *grads)) or any(
            p.shape != g.shape for p, g in zip(params, grads, strict=True)
        ):
            return super().sgd_update(params, grads, lr)
        kernel = self._k.multi("tg_sgd", dtype)
        for ps, gs in zip(chunks(params), chunks(grads), strict=True):
            pointers = list_args(ps)  # p0..p7, then g0..g7, then the sizes
            args = pointers[:LIST] + list_args(gs)[:LIST] + pointers[LIST:]
            kernel((blocks(ps),), (256,), args + (dtype.type(lr),))

    # ------------------------------------------------------------ scatter-add
    def scatter_add(self, shape: tuple, index: Any, values: Any) -> Any:
        """``zeros(shape)``, ``out[index] += values`` by ``cupy.add.at`` (atomic adds).

        Repeated indices accumulate, as with ``numpy.add.at``; the order of the atomic
        adds varies, so float sums may differ between runs in the last bits.
        """
        if self._float_dtype(values) is None:
            return super().scatter_add(shape, index, values)
        out = self.xp.zeros(shape, dtype=values.dtype)
        self.xp.add.at(out, index, values)
        return out

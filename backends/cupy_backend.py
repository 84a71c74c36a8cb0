"""CuPy on an NVIDIA GPU: CuPy arrays as the namespace, cuBLAS GEMMs, CUDA kernels for hot paths.

Importing this module never imports CuPy; creating the backend does, and says
exactly what is missing (the package, the driver, or a device) when it cannot run.

Every override checks that its inputs are what its kernel handles (CuPy arrays of
one float dtype, float32 or float64, of the expected ranks and shapes, non-empty)
and otherwise defers to the plain kernel of :class:`Backend`, written against
``self.xp`` (here CuPy), which defines the semantics. The kernels themselves:

* ``ElementwiseKernel`` with the type placeholder ``T``: the fused RNN cell of each
  time step, forward and backward, tanh′, and softmax-cross-entropy's backward;
* one templated ``RawModule`` (``float`` and ``double`` instantiations, picked by
  ``name_expressions``): softmax-cross-entropy's forward, one thread block per row;
* a ``ReductionKernel``: the sum of squares behind the global-norm clip, in float64;
* cuBLAS through ``cupy.matmul`` for every GEMM, and ``cupyx.scatter_add`` (atomic
  adds) for the backward of indexing and of the embedding.

All of them are built on first use, and CuPy compiles each once per dtype (and caches
the binary on disk, ``~/.cupy/kernel_cache``). No kernel here waits for the GPU: each
call only queues work on the current stream, so the time loops never synchronise with
the host. ``global_norm_sq`` returns a 0-d device array; ``optim.clip_grad_norm``
reads it back once per step, not once per parameter.

The recurrence runs its time loop in Python, one cuBLAS GEMM plus one fused
elementwise kernel per step (two launches, no allocation, no host sync); the
weight gradient ``dW_hh`` is one GEMM over all steps after the loop. Recording the
loop once as a CUDA graph and replaying it would save the per-step launch cost; that
is not done here.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .base import Backend, BackendUnavailable, rnn_shapes_ok

INSTALL_HINT = (
    "install CuPy for your CUDA version: pip install 'tinygrad_rnn[cuda12]' "
    "(CUDA 12) or 'tinygrad_rnn[cuda13]' (CUDA 13)"
)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_MAX_GRID_X = 2**31 - 1


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


# ------------------------------------------------------------------ CUDA sources
# Softmax cross-entropy, forward: one thread block per row of logits (N, C). The block
# size is a power of two from 32 to 256, so it is whole warps; every thread ends with
# the block's max and sum (a butterfly of shuffles, then one value per warp through
# shared memory), bit-identical across threads since a + b == b + a in IEEE arithmetic.
# The formulas are the base kernel's: shifted = x - max, log_norm = log Σ exp(shifted),
# loss = log_norm - shifted[target], probs = exp(shifted - log_norm). A target outside
# [-C, C) gives a NaN loss (checking it on the host would cost a synchronisation;
# cross_entropy has already checked the range).
_XENT_SOURCE = r"""
__device__ __forceinline__ float tg_nan(float) { return __int_as_float(0x7fffffff); }
__device__ __forceinline__ double tg_nan(double) {
    return __longlong_as_double(0x7ff8000000000000LL);
}

template <typename T>
__device__ __forceinline__ T tg_warp_max(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        const T other = __shfl_xor_sync(0xffffffffu, v, offset);
        v = other > v ? other : v;
    }
    return v;
}

template <typename T>
__device__ __forceinline__ T tg_warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    }
    return v;
}

template <typename T>
__device__ __forceinline__ T tg_block_max(T v, T* partial) {
    v = tg_warp_max(v);
    const int warps = blockDim.x >> 5;
    if (warps > 1) {
        const int lane = threadIdx.x & 31;
        if (lane == 0) partial[threadIdx.x >> 5] = v;
        __syncthreads();
        v = tg_warp_max(partial[lane < warps ? lane : 0]);
        __syncthreads();  // partial is reused by the next reduction
    }
    return v;
}

template <typename T>
__device__ __forceinline__ T tg_block_sum(T v, T* partial) {
    v = tg_warp_sum(v);
    const int warps = blockDim.x >> 5;
    if (warps > 1) {
        const int lane = threadIdx.x & 31;
        if (lane == 0) partial[threadIdx.x >> 5] = v;
        __syncthreads();
        v = tg_warp_sum(lane < warps ? partial[lane] : T(0));
        __syncthreads();
    }
    return v;
}

template <typename T>
__global__ void tg_softmax_xent(const T* __restrict__ logits,
                                const long long* __restrict__ targets,
                                T* __restrict__ loss, T* __restrict__ probs,
                                const int n_cols) {
    __shared__ T partial[32];
    const long long row = blockIdx.x;
    const T* x = logits + row * n_cols;
    T* p = probs + row * n_cols;

    T m = x[0];
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) m = x[j] > m ? x[j] : m;
    m = tg_block_max(m, partial);

    T s = T(0);
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) s += exp(x[j] - m);
    const T log_norm = log(tg_block_sum(s, partial));

    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) p[j] = exp((x[j] - m) - log_norm);
    if (threadIdx.x == 0) {
        long long t = targets[row];
        if (t < 0) t += n_cols;
        loss[row] = (0 <= t && t < n_cols) ? log_norm - (x[t] - m) : tg_nan(m);
    }
}
"""


class _Kernels:
    """The backend's kernels, built when the backend first needs one."""

    def __init__(self, cupy: Any) -> None:
        ew = cupy.ElementwiseKernel
        # One step of the recurrence, after the GEMM hw = H_{t-1} W_hh: h = φ(zx + hw).
        # relu keeps NaN (NaN < 0 is false), as NumPy's maximum(z, 0) does.
        self.rnn_step = {
            "tanh": ew("T zx, T hw", "T h", "h = tanh(zx + hw)", "tinygrad_rnn_step_tanh"),
            "relu": ew(
                "T zx, T hw",
                "T h",
                "const T z = zx + hw; h = z < T(0) ? T(0) : z",
                "tinygrad_rnn_step_relu",
            ),
        }
        # One step of BPTT, before the GEMM carry = dz W_hhᵀ: dz = (dh + carry) φ'(z),
        # with φ' from the output y = φ(z). relu multiplies by 0 or 1 as the base
        # kernel's g * (y > 0), so an infinite gradient still gives NaN where y <= 0.
        self.bptt_step = {
            "tanh": ew(
                "T dh, T carry, T y",
                "T dz",
                "dz = (dh + carry) * (T(1) - y * y)",
                "tinygrad_rnn_bptt_tanh",
            ),
            "relu": ew(
                "T dh, T carry, T y",
                "T dz",
                "dz = (dh + carry) * (y > T(0) ? T(1) : T(0))",
                "tinygrad_rnn_bptt_relu",
            ),
        }
        self.tanh_backward = ew(
            "T y, T g", "T out", "out = g * (T(1) - y * y)", "tinygrad_rnn_tanh_backward"
        )
        # (probs - one_hot(target)) * grad; t and g arrive broadcast from (N, 1), and
        # i is the C-order index into (N, C), so i % c is the column.
        self.xent_backward = ew(
            "T p, int64 t, T g, int64 c",
            "T dx",
            "const long long col = i % c; "
            "const long long target = t < 0 ? t + c : t; "
            "dx = (col == target ? p - T(1) : p) * g",
            "tinygrad_rnn_xent_backward",
        )
        self.sum_sq = cupy.ReductionKernel(
            "T x",
            "float64 y",
            "static_cast<double>(x) * static_cast<double>(x)",
            "a + b",
            "y = a",
            "0",
            "tinygrad_rnn_sum_sq",
            reduce_type="float64",
        )
        self._xent_module = cupy.RawModule(
            code=_XENT_SOURCE, name_expressions=[f"tg_softmax_xent<{c}>" for c in _CTYPES.values()]
        )
        self._xent: dict[np.dtype, Any] = {}

    def xent_forward(self, dtype: np.dtype) -> Any:
        """The softmax-cross-entropy kernel for ``dtype`` (the module compiles on first use)."""
        if dtype not in self._xent:
            self._xent[dtype] = self._xent_module.get_function(f"tg_softmax_xent<{_CTYPES[dtype]}>")
        return self._xent[dtype]


class CupyBackend(Backend):
    """CuPy arrays on the current CUDA device."""

    name = "cupy"

    def __init__(self) -> None:
        self.xp = _import_cupy()
        import cupyx

        self._cupyx = cupyx

    @functools.cached_property
    def _k(self) -> _Kernels:
        return _Kernels(self.xp)

    # ----------------------------------------------------------------- arrays
    def asarray(self, data: Any, dtype: Any = None) -> Any:
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        return self.xp.asnumpy(array)

    def is_array(self, obj: Any) -> bool:
        return isinstance(obj, self.xp.ndarray)

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()

    def _float_dtype(self, *arrays: Any) -> np.dtype | None:
        """The dtype shared by ``arrays`` if all are non-empty float32/float64 CuPy arrays."""
        if not all(isinstance(a, self.xp.ndarray) for a in arrays):
            return None
        dtype = arrays[0].dtype
        if dtype not in _FLOATS or any(a.dtype != dtype or a.size == 0 for a in arrays):
            return None
        return dtype

    # ------------------------------------------------------------------- GEMM
    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` by ``cupy.matmul``: cuBLAS for float operands (transposes uncopied)."""
        return self.xp.matmul(a, b)

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
        xp, matmul = self.xp, self.xp.matmul
        T, N, h = Zx.shape
        H = xp.empty((T, N, h), dtype=Zx.dtype)
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
        xp, matmul = self.xp, self.xp.matmul
        T, N, h = H.shape
        dZ = xp.empty((T, N, h), dtype=H.dtype)
        carry = xp.zeros((N, h), dtype=H.dtype)  # dZ_{t+1} W_hhᵀ: what H_t gets from step t+1
        W_hh_T = W_hh.T
        for t in range(T - 1, -1, -1):
            step(dH[t], carry, H[t], dZ[t])
            matmul(dZ[t], W_hh_T, out=carry)
        H_prev = xp.concatenate((H0[None], H[:-1]), axis=0).reshape(T * N, h)
        dW_hh = matmul(H_prev.T, dZ.reshape(T * N, h))
        return dZ, carry, dW_hh

    # -------------------------------------------------- softmax cross-entropy
    def softmax_cross_entropy(self, logits: Any, targets: Any) -> tuple[Any, Any]:
        """logits (N, C), int targets (N,) -> (loss (N,), probs (N, C)): one block per row."""
        dtype = self._float_dtype(logits) if getattr(logits, "ndim", 0) == 2 else None
        t = self._targets(targets, logits.shape) if dtype is not None else None
        if t is None or logits.shape[0] > _MAX_GRID_X or logits.shape[1] > _MAX_GRID_X:
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
        """Σ‖a‖² in float64 as a 0-d CuPy array: one reduction per array, no host sync."""
        if not arrays or any(self._float_dtype(a) is None for a in arrays):
            return super().global_norm_sq(arrays)
        total = self._k.sum_sq(arrays[0])
        for a in arrays[1:]:
            total = total + self._k.sum_sq(a)
        return total

    # ------------------------------------------------------------ scatter-add
    def scatter_add(self, shape: tuple, index: Any, values: Any) -> Any:
        """``zeros(shape)``, ``out[index] += values`` by ``cupyx.scatter_add`` (atomic adds).

        Repeated indices accumulate, as with ``numpy.add.at``; the order of the atomic
        adds varies, so float sums may differ between runs in the last bits.
        """
        if self._float_dtype(values) is None:
            return super().scatter_add(shape, index, values)
        out = self.xp.zeros(shape, dtype=values.dtype)
        self._cupyx.scatter_add(out, index, values)
        return out


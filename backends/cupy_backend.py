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
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import (
    FLOAT_DTYPES,
    Backend,
    BackendError,
    BackendUnavailable,
    common_float_dtype,
    no_read_back,
    rnn_shapes_ok,
)

INSTALL_HINT = (
    "install CuPy for your CUDA version: pip install 'tinygrad_rnn[cuda12]' "
    "(CUDA 12) or 'tinygrad_rnn[cuda13]' (CUDA 13)"
)

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_MAX_GRID_X = 2**31 - 1
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


_RNN_SOURCE = r"""
// The whole recurrence in one launch. Shapes (all C-contiguous): Zx, H, dH, dZ (T, N, h);
// H0, dH0 (N, h); W = W_hh (h, h), row k holding W[k, :]. RELU picks φ: 0 tanh, 1 relu.

template <typename T, int RELU>
__device__ __forceinline__ T tg_phi(T z) { return RELU ? (z < T(0) ? T(0) : z) : tanh(z); }

// dφ/dz from the output y = φ(z), times the incoming gradient g (as the base kernel).
template <typename T, int RELU>
__device__ __forceinline__ T tg_dphi(T y, T g) {
    return RELU ? g * (y > T(0) ? T(1) : T(0)) : g * (T(1) - y * y);
}

// ---------------------------------------------------------------------- rows
#ifndef TG_UNROLL
#define TG_UNROLL 8
#endif
constexpr int tg_unroll = TG_UNROLL;  // the k loop's unrolling (-DTG_UNROLL=n; 1: none)
// One block per batch row n: the rows of the batch never meet, H_t[n] needs only
// H_{t-1}[n]. The block keeps that row in shared memory (x below) and multiplies it
// by M (h, h), read column-wise, coalesced across a warp. The loop over k waits on
// loads of M from L2, so the k range is cut into `split` slices, each summed by its
// own group of threads (split times the loads in flight); part[s, j] holds slice s's
// sum for column j, and the caller adds the slices up, in order, after a barrier.
// blockDim.x == split * group, group a multiple of 32.
template <typename T>
__device__ __forceinline__ void tg_partial_vec_mat(const T* x, const T* __restrict__ M,
                                                   T* part, const int h, const int split) {
    const int group = blockDim.x / split;
    const int s = threadIdx.x / group, jt = threadIdx.x - s * group;
    const int k0 = (int)((long long)h * s / split), k1 = (int)((long long)h * (s + 1) / split);
    for (int j = jt; j < h; j += group) {
        T acc = T(0);
#pragma unroll tg_unroll
        for (int k = k0; k < k1; ++k) acc = fma(x[k], M[(long long)k * h + j], acc);
        part[s * h + j] = acc;
    }
}

template <typename T>
__device__ __forceinline__ T tg_sum_slices(const T* part, const int h, const int split,
                                           const int j) {
    T acc = part[j];
    for (int s = 1; s < split; ++s) acc += part[s * h + j];
    return acc;
}

// H_t = φ(Zx_t + H_{t-1} W) for t = 1..T, row n = blockIdx.x.
template <typename T, int RELU>
__global__ void tg_rnn_rows_forward(const T* __restrict__ Zx, const T* __restrict__ H0,
                                    const T* __restrict__ W, T* __restrict__ H,
                                    const int steps, const int batch, const int h,
                                    const int split) {
    extern __shared__ __align__(16) unsigned char tg_smem[];
    T* prev = reinterpret_cast<T*>(tg_smem);  // H_{t-1}[n, :]
    T* part = prev + h;                       // (split, h)
    const long long n = blockIdx.x;
    for (int j = threadIdx.x; j < h; j += blockDim.x) prev[j] = H0[n * h + j];
    __syncthreads();
    for (int t = 0; t < steps; ++t) {
        const long long row = ((long long)t * batch + n) * h;
        tg_partial_vec_mat(prev, W, part, h, split);
        __syncthreads();  // all of prev has been read, all of part written
        for (int j = threadIdx.x; j < h; j += blockDim.x) {
            const T y = tg_phi<T, RELU>(Zx[row + j] + tg_sum_slices(part, h, split, j));
            H[row + j] = y;
            prev[j] = y;
        }
        __syncthreads();  // part has been read, prev is H_t
    }
}

// BPTT, row n = blockIdx.x: dZ_t = (dH_t + dZ_{t+1} W^T) φ'(Z_t), walking back from t = T
// (where dZ_{T+1} = 0); then dH0 = dZ_1 W^T. Wt = W^T, contiguous, so the columns of
// W^T are read coalesced as those of W are in the forward.
template <typename T, int RELU>
__global__ void tg_rnn_rows_backward(const T* __restrict__ dH, const T* __restrict__ H,
                                     const T* __restrict__ Wt, T* __restrict__ dZ,
                                     T* __restrict__ dH0, const int steps, const int batch,
                                     const int h, const int split) {
    extern __shared__ __align__(16) unsigned char tg_smem[];
    T* next = reinterpret_cast<T*>(tg_smem);  // dZ_{t+1}[n, :]
    T* part = next + h;
    const long long n = blockIdx.x;
    for (int j = threadIdx.x; j < h; j += blockDim.x) next[j] = T(0);
    __syncthreads();
    for (int t = steps - 1; t >= 0; --t) {
        const long long row = ((long long)t * batch + n) * h;
        tg_partial_vec_mat(next, Wt, part, h, split);
        __syncthreads();
        for (int j = threadIdx.x; j < h; j += blockDim.x) {
            const T g = dH[row + j] + tg_sum_slices(part, h, split, j);
            const T dz = tg_dphi<T, RELU>(H[row + j], g);
            dZ[row + j] = dz;
            next[j] = dz;
        }
        __syncthreads();
    }
    tg_partial_vec_mat(next, Wt, part, h, split);
    __syncthreads();
    for (int j = threadIdx.x; j < h; j += blockDim.x) {
        dH0[n * h + j] = tg_sum_slices(part, h, split, j);
    }
}
"""


_MULTI_SOURCE = r"""
// Kernels over a list of up to 8 arrays at once (the parameters or gradients of a
// model), so that the global-norm clip and the SGD update cost one launch each, not
// one or two per parameter. a0..a7 are the arrays' buffers; end[s] is the running
// total of their sizes, so element i of the concatenation is a_s[i - end[s - 1]].
#define TG_LIST(T, a) T a##0, T a##1, T a##2, T a##3, T a##4, T a##5, T a##6, T a##7
#define TG_ENDS long long e0, long long e1, long long e2, long long e3, long long e4, \
                long long e5, long long e6, long long e7
#define TG_UNPACK(T, a) T a[8] = {a##0, a##1, a##2, a##3, a##4, a##5, a##6, a##7}; \
    const long long end[8] = {e0, e1, e2, e3, e4, e5, e6, e7}

__device__ __forceinline__ float tg_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double tg_mul_rn(double a, double b) { return __dmul_rn(a, b); }

// Σ x² over all elements of all arrays, in float64, by one block (a fixed order of
// additions, so the same sum on every run); out[0] = the sum (+ out[0] if accumulate).
template <typename T>
__global__ void tg_sum_squares(TG_LIST(const T*, a), TG_ENDS, const int count,
                               const int accumulate, double* out) {
    TG_UNPACK(const T*, a);
    __shared__ double partial[32];
    double acc = 0.0;
    int s = 0;
    for (long long i = threadIdx.x; i < end[count - 1]; i += blockDim.x) {
        while (i >= end[s]) ++s;  // i only grows, so s only moves forward
        const double v = (double)a[s][i - (s ? end[s - 1] : 0)];
        acc += v * v;
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        acc += __shfl_xor_sync(0xffffffffu, acc, offset);
    }
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (int w = 0; w < (int)(blockDim.x >> 5); ++w) total += partial[w];
        out[0] = accumulate ? out[0] + total : total;
    }
}

// g ← g · θ / max(‖g‖, θ) for every array (NaN-safe: a NaN norm leaves g as it is);
// norm_out[0] = ‖g‖ = sqrt(total[0]).
template <typename T>
__global__ void tg_clip_scale(TG_LIST(T*, a), TG_ENDS, const int count,
                              const double* total, const double max_norm, double* norm_out) {
    TG_UNPACK(T*, a);
    const double norm = sqrt(total[0]);
    const T factor = (T)(norm > max_norm ? max_norm / norm : 1.0);
    if (blockIdx.x == 0 && threadIdx.x == 0) norm_out[0] = norm;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < end[count - 1];
         i += stride) {
        int s = 0;
        while (i >= end[s]) ++s;
        T* p = a[s] + (i - (s ? end[s - 1] : 0));
        *p = tg_mul_rn(*p, factor);
    }
}

// p ← p − lr · g for every (parameter, gradient) pair: the multiply rounded on its
// own, as NumPy does it, never fused into the subtraction.
template <typename T>
__global__ void tg_sgd(TG_LIST(T*, p), TG_LIST(const T*, g), TG_ENDS, const int count,
                       const T lr) {
    TG_UNPACK(T*, p);
    const T* gs[8] = {g0, g1, g2, g3, g4, g5, g6, g7};
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < end[count - 1];
         i += stride) {
        int s = 0;
        while (i >= end[s]) ++s;
        const long long k = i - (s ? end[s - 1] : 0);
        p[s][k] = p[s][k] - tg_mul_rn(lr, gs[s][k]);
    }
}
"""


# A GEMM of our own, for what a CUDA graph records: CuPy refuses every cuBLAS call
# while a stream is being captured. C = A @ B for one matrix pair per batch index: A
# (M, K) and B (K, N) at any element strides, so transposed views are read in place;
# C (M, N) contiguous. A block of 256 threads computes a 64 x 64 tile of C, each thread
# a 4 x 4 grid of it (rows ty + 16i, columns tx + 16j, so a warp's stores are
# contiguous), stepping through K 16 at a time in shared memory; each tile is loaded
# along whichever of its strides is 1, so the loads coalesce. Where the tiles of C are
# too few to fill the GPU (dW_hh = H_prevᵀ dZ at D2L's sizes: K = T·N = 1120 but C only
# h x h), K is split into `splits` chunks: blockIdx.z = batch index · splits + chunk,
# each chunk writes its own partial C, and tg_sum_splits adds the partials in chunk
# order. So the sums are deterministic, but not in cuBLAS's order: the two agree to
# rounding (about K ulp of the terms' scale), not bit for bit.
_GEMM_SOURCE = r"""
template <typename T>
__global__ void tg_gemm(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C,
                        const int M, const int N, const int K,
                        const long long sam, const long long sak, const long long sab,
                        const long long sbk, const long long sbn, const long long sbb,
                        const int splits, const long long k_chunk) {
    constexpr int TM = 64, TN = 64, TK = 16, THREADS = 256;
    __shared__ T As[TK][TM + 1];  // A's tile transposed: a thread reads along m
    __shared__ T Bs[TK][TN + 1];
    const long long z = blockIdx.z, batch = z / splits;
    A += batch * sab;
    B += batch * sbb;
    C += z * M * N;  // with splits > 1, the partial C of this chunk
    const long long k_begin = (z % splits) * k_chunk;  // 64-bit: K may be near 2^31
    const long long k_end = min((long long)K, k_begin + k_chunk);
    const int row0 = blockIdx.y * TM, col0 = blockIdx.x * TN;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const bool a_along_k = sak == 1, b_along_n = sbn == 1;
    T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
    }
    for (long long k0 = k_begin; k0 < k_end; k0 += TK) {
        for (int e = threadIdx.x; e < TM * TK; e += THREADS) {
            const int m = a_along_k ? e / TK : e % TM;
            const int k = a_along_k ? e % TK : e / TM;
            const int gm = row0 + m;
            const long long gk = k0 + k;
            As[k][m] = gm < M && gk < k_end ? A[gm * sam + gk * sak] : T(0);
        }
        for (int e = threadIdx.x; e < TK * TN; e += THREADS) {
            const int n = b_along_n ? e % TN : e / TK;
            const int k = b_along_n ? e / TN : e % TK;
            const int gn = col0 + n;
            const long long gk = k0 + k;
            Bs[k][n] = gk < k_end && gn < N ? B[gk * sbk + gn * sbn] : T(0);
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < TK; ++k) {
            T a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[k][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int m = row0 + ty + 16 * i, n = col0 + tx + 16 * j;
            if (m < M && n < N) C[(long long)m * N + n] = acc[i][j];
        }
    }
}

// C[b, i] = sum over s of P[b, s, i], s in order: the partial products of a split K.
template <typename T>
__global__ void tg_sum_splits(const T* __restrict__ P, T* __restrict__ C,
                              const long long mn, const long long total, const int splits) {
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const T* p = P + (e / mn) * splits * mn + e % mn;
        T sum = p[0];
        for (int s = 1; s < splits; ++s) sum += p[s * mn];
        C[e] = sum;
    }
}
"""
_GEMM_TILE = 64  # rows and columns of C per block
_MAX_GRID_YZ = 65535


# ElementwiseKernel specs, (in_params, out_params, operation, name); CuPy builds one
# kernel per dtype of T on first use.
# One step of the recurrence, after the GEMM hw = H_{t-1} W_hh: h = φ(zx + hw).
# relu keeps NaN (NaN < 0 is false), as NumPy's maximum(z, 0) does.
_RNN_STEP = {
    "tanh": ("T zx, T hw", "T h", "h = tanh(zx + hw)", "tinygrad_rnn_step_tanh"),
    "relu": (
        "T zx, T hw",
        "T h",
        "const T z = zx + hw; h = z < T(0) ? T(0) : z",
        "tinygrad_rnn_step_relu",
    ),
}
# One step of BPTT, before the GEMM carry = dz W_hhᵀ: dz = (dh + carry) φ'(z), with
# φ' from the output y = φ(z). relu multiplies by 0 or 1 as the base kernel's
# g * (y > 0), so an infinite gradient still gives NaN where y <= 0.
_BPTT_STEP = {
    "tanh": (
        "T dh, T carry, T y",
        "T dz",
        "dz = (dh + carry) * (T(1) - y * y)",
        "tinygrad_rnn_bptt_tanh",
    ),
    "relu": (
        "T dh, T carry, T y",
        "T dz",
        "dz = (dh + carry) * (y > T(0) ? T(1) : T(0))",
        "tinygrad_rnn_bptt_relu",
    ),
}
_TANH_BACKWARD = ("T y, T g", "T out", "out = g * (T(1) - y * y)", "tinygrad_rnn_tanh_backward")
# (probs - one_hot(target)) * grad; t and g arrive broadcast from (N, 1), and i is the
# C-order index into (N, C), so i % c is the column.
_XENT_BACKWARD = (
    "T p, int64 t, T g, int64 c",
    "T dx",
    "const long long col = i % c; "
    "const long long target = t < 0 ? t + c : t; "
    "dx = (col == target ? p - T(1) : p) * g",
    "tinygrad_rnn_xent_backward",
)
ELEMENTWISE_SPECS = (*_RNN_STEP.values(), *_BPTT_STEP.values(), _TANH_BACKWARD, _XENT_BACKWARD)

# The template instances each RawModule compiles (its name_expressions).
_XENT_KERNELS = [f"tg_softmax_xent<{c}>" for c in _CTYPES.values()]
_RNN_KERNELS = [
    f"tg_rnn_rows_{way}<{c}, {relu}>"
    for way in ("forward", "backward")
    for c in _CTYPES.values()
    for relu in (0, 1)
]
_MULTI_KERNELS = [
    f"{name}<{c}>"
    for name in ("tg_sum_squares", "tg_clip_scale", "tg_sgd")
    for c in _CTYPES.values()
]
_GEMM_KERNELS = [f"{name}<{c}>" for name in ("tg_gemm", "tg_sum_splits")
                 for c in _CTYPES.values()]
#: Each RawModule's CUDA source with the template instances the backend compiles.
RAW_MODULES = {
    "gemm": (_GEMM_SOURCE, _GEMM_KERNELS),
    "softmax_xent": (_XENT_SOURCE, _XENT_KERNELS),
    "rnn_rows": (_RNN_SOURCE, _RNN_KERNELS),
    "multi": (_MULTI_SOURCE, _MULTI_KERNELS),
}


_LIST = 8  # arrays per launch of the _MULTI_SOURCE kernels


def _describe(x: Any) -> str:
    return f"{type(x).__name__} {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}".strip()


def _chunks(arrays: list) -> list:
    return [arrays[i : i + _LIST] for i in range(0, len(arrays), _LIST)]


def _list_args(arrays: list) -> tuple:
    """The kernel arguments a0..a7, e0..e7, count for up to 8 contiguous arrays."""
    pointers = [np.uint64(a.data.ptr) for a in arrays] + [np.uint64(0)] * (_LIST - len(arrays))
    ends = np.cumsum([a.size for a in arrays]).tolist()
    ends += [ends[-1]] * (_LIST - len(arrays))  # past the last array, nothing to find
    return tuple(pointers) + tuple(np.int64(e) for e in ends) + (np.int32(len(arrays)),)


def _group_size(h: int) -> int:
    """Threads that take one slice of the rows kernel's k sum: whole warps, at most 1024."""
    return min(1024, -(-h // 32) * 32)


def _blocks(arrays: list) -> int:
    """Blocks of 256 threads for a grid-stride loop over all elements (at most 1024)."""
    return max(1, min(1024, -(-sum(a.size for a in arrays) // 256)))


class _Kernels:
    """The backend's kernels, built when the backend first needs one."""

    def __init__(self, cupy: Any) -> None:
        ew = cupy.ElementwiseKernel
        self.rnn_step = {phi: ew(*spec) for phi, spec in _RNN_STEP.items()}
        self.bptt_step = {phi: ew(*spec) for phi, spec in _BPTT_STEP.items()}
        self.tanh_backward = ew(*_TANH_BACKWARD)
        self.xent_backward = ew(*_XENT_BACKWARD)
        self._multi_module = cupy.RawModule(code=_MULTI_SOURCE, name_expressions=_MULTI_KERNELS)
        self._xent_module = cupy.RawModule(code=_XENT_SOURCE, name_expressions=_XENT_KERNELS)
        self._gemm_module = cupy.RawModule(code=_GEMM_SOURCE, name_expressions=_GEMM_KERNELS)
        self._xent: dict[np.dtype, Any] = {}
        self._cupy = cupy
        self._rnn_modules: dict[int, Any] = {}  # by unrolling of the k loop
        self._rnn: dict[tuple, Any] = {}

    def multi(self, name: str, dtype: np.dtype) -> Any:
        """The kernel ``name`` (over lists of arrays) for ``dtype``."""
        return self._multi_module.get_function(f"{name}<{_CTYPES[dtype]}>")

    def gemm(self, name: str, dtype: np.dtype) -> Any:
        """``tg_gemm`` or ``tg_sum_splits`` for ``dtype`` (the module compiles on first use)."""
        return self._gemm_module.get_function(f"{name}<{_CTYPES[dtype]}>")

    def rnn_rows(self, way: str, dtype: np.dtype, nonlinearity: str, unroll: int) -> Any:
        """The whole-sequence kernel ``tg_rnn_rows_{way}`` for ``dtype`` and φ."""
        key = (way, dtype, nonlinearity, unroll)
        if key not in self._rnn:
            if unroll not in self._rnn_modules:
                self._rnn_modules[unroll] = self._cupy.RawModule(
                    code=_RNN_SOURCE,
                    options=(f"-DTG_UNROLL={unroll}",),
                    name_expressions=_RNN_KERNELS,
                )
            relu = int(nonlinearity == "relu")
            self._rnn[key] = self._rnn_modules[unroll].get_function(
                f"tg_rnn_rows_{way}<{_CTYPES[dtype]}, {relu}>"
            )
        return self._rnn[key]

    def xent_forward(self, dtype: np.dtype) -> Any:
        """The softmax-cross-entropy kernel for ``dtype`` (the module compiles on first use)."""
        if dtype not in self._xent:
            self._xent[dtype] = self._xent_module.get_function(f"tg_softmax_xent<{_CTYPES[dtype]}>")
        return self._xent[dtype]


class _Replay:
    """A recorded CUDA graph, and the memory pool its kernels read and write."""

    def __init__(self, graph: Any, pool: Any) -> None:
        self.graph, self.pool = graph, pool  # the pool lives as long as the graph

    def __call__(self) -> None:
        self.graph.launch()


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
        rows_fit = (1 + split) * h * np.dtype(dtype).itemsize <= _MAX_SMEM and N <= _MAX_GRID_X
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
    def _k(self) -> _Kernels:
        return _Kernels(self.xp)

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
        cupy = self.xp
        for dtype in FLOAT_DTYPES:  # compiled and loaded now, not while the stream records
            for name in ("tg_gemm", "tg_sum_splits"):
                self._k.gemm(name, dtype)
        _ = self._sm_count  # a device query: made now, not while the stream records
        pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=True)  # the legacy default stream cannot capture
        with cupy.cuda.using_allocator(pool.malloc), stream:
            stream.begin_capture()
            self._recording = True
            try:
                with no_read_back():
                    body()
            except BaseException as e:  # Ctrl-C too must end the capture
                try:
                    stream.end_capture()
                except cupy.cuda.runtime.CUDARuntimeError:
                    pass  # the failure above invalidated the capture; its error is the one to see
                if not isinstance(e, Exception):
                    raise
                raise BackendError(
                    f"recording a CUDA graph failed: {type(e).__name__}: {e} (the recorded code "
                    "must only queue GPU work: no read-back, no upload, no synchronisation)"
                ) from e
            finally:
                self._recording = False
            graph = stream.end_capture()
        return _Replay(graph, pool)

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
        xp = self.xp
        dtype = a.dtype if isinstance(a, xp.ndarray) and isinstance(b, xp.ndarray) else None
        if dtype not in FLOAT_DTYPES or b.dtype != dtype or a.ndim < 2 or b.ndim < 2:
            raise BackendError(
                "a recorded CUDA graph multiplies CuPy float32/float64 matrices of one dtype "
                f"(CuPy allows no cuBLAS call while it records); got {_describe(a)} @ "
                f"{_describe(b)}")
        (M, K), (K_b, N) = a.shape[-2:], b.shape[-2:]
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if K_b != K:
            raise BackendError(f"matmul: shapes {a.shape} and {b.shape} do not align")
        shape = (*batch, M, N)
        if out is None:
            out = xp.empty(shape, dtype=dtype)
        elif out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
            raise BackendError(
                f"tiled_matmul: out must be C-contiguous {dtype} of shape {shape}, "
                f"got {_describe(out)}")
        count = int(np.prod(batch, dtype=np.int64))
        if out.size == 0:
            return out
        if K == 0:
            out.fill(0)
            return out
        if batch:  # one stride per operand for the whole batch: flatten it (a copy if need be)
            a = xp.broadcast_to(a, (*batch, M, K)).reshape(count, M, K)
            b = xp.broadcast_to(b, (*batch, K, N)).reshape(count, K, N)
        else:
            a, b = a[None], b[None]
        tiles = -(-N // _GEMM_TILE), -(-M // _GEMM_TILE)
        # K in chunks of 4 or more k-steps of 16, until the blocks fill the GPU twice
        steps = -(-K // 16)
        splits = max(1, min(steps // 4, -(-2 * self._sm_count // (tiles[0] * tiles[1] * count))))
        chunk = -(-steps // splits) * 16
        splits = -(-K // chunk)  # no chunk left empty
        grid = (*tiles, count * splits)
        if max(grid[1:]) > _MAX_GRID_YZ or max(N, K) > _MAX_GRID_X:  # and int32 sizes
            raise BackendError(
                f"tiled_matmul: {shape} is too large for one launch (grid {grid})")
        a_strides = [np.int64(s // dtype.itemsize) for s in a.strides]
        b_strides = [np.int64(s // dtype.itemsize) for s in b.strides]
        sizes = (np.int32(M), np.int32(N), np.int32(K))
        strides = (*a_strides[1:], a_strides[0], *b_strides[1:], b_strides[0])
        target = out if splits == 1 else xp.empty((count * splits, M, N), dtype=dtype)
        self._k.gemm("tg_gemm", dtype)(
            grid, (256,), (a, b, target, *sizes, *strides, np.int32(splits), np.int64(chunk)))
        if splits > 1:
            self._k.gemm("tg_sum_splits", dtype)(
                (max(1, min(1024, -(-out.size // 256))),), (256,),
                (target, out, np.int64(M * N), np.int64(out.size), np.int32(splits)))
        return out

    @functools.cached_property
    def _sm_count(self) -> int:
        return int(self.xp.cuda.Device().attributes["MultiProcessorCount"])

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
        """Σ‖a‖² in float64 as a 0-d CuPy array: one single-block kernel per 8 arrays,
        its additions in a fixed order (the same sum on every run), no host sync."""
        dtype = self._float_dtype(*arrays) if arrays else None
        if dtype is None:
            return super().global_norm_sq(arrays)
        arrays = [self.xp.ascontiguousarray(a) for a in arrays]
        total = self.xp.empty((), dtype=np.float64)
        kernel = self._k.multi("tg_sum_squares", dtype)
        for i, chunk in enumerate(_chunks(arrays)):
            kernel((1,), (1024,), _list_args(chunk) + (np.int32(i > 0), total))
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
        for chunk in _chunks(grads):
            args = _list_args(chunk) + (total, np.float64(max_norm), norm)
            kernel((_blocks(chunk),), (256,), args)
        return norm

    def sgd_update(self, params: list, grads: list, lr: float) -> None:
        """``p -= lr * g`` for all pairs in one launch per 8 (the multiply rounded alone)."""
        dtype = self._float_dtype(*params, *grads) if params else None
        if dtype is None or not all(a.flags.c_contiguous for a in (*params, *grads)) or any(
            p.shape != g.shape for p, g in zip(params, grads, strict=True)
        ):
            return super().sgd_update(params, grads, lr)
        kernel = self._k.multi("tg_sgd", dtype)
        for ps, gs in zip(_chunks(params), _chunks(grads), strict=True):
            pointers = _list_args(ps)  # p0..p7, then g0..g7, then the sizes
            args = pointers[:_LIST] + _list_args(gs)[:_LIST] + pointers[_LIST:]
            kernel((_blocks(ps),), (256,), args + (dtype.type(lr),))

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

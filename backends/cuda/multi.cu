// Kernels over a list of up to 8 arrays at once (the parameters or gradients of a
// model), so that the global-norm clip and the SGD update cost one launch each, not
// one or two per parameter. a0..a7 are the arrays' buffers; end[s] is the running
// total of their sizes, so element i of the concatenation is a_s[i - end[s - 1]].
#include "block_reduce.cuh"

#define TG_LIST(T, a) T a##0, T a##1, T a##2, T a##3, T a##4, T a##5, T a##6, T a##7
#define TG_ENDS long long e0, long long e1, long long e2, long long e3, long long e4, \
                long long e5, long long e6, long long e7
#define TG_UNPACK(T, a) T a[8] = {a##0, a##1, a##2, a##3, a##4, a##5, a##6, a##7}; \
    const long long end[8] = {e0, e1, e2, e3, e4, e5, e6, e7}

__device__ __forceinline__ float tg_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double tg_mul_rn(double a, double b) { return __dmul_rn(a, b); }

// Σ x² over all elements of all arrays, in float64, by one block (a fixed order of
// additions, so the same sum on every run: each thread's elements in index order, a
// butterfly per warp, then thread 0 adds the warps' sums in warp order, TG_THREAD_0);
// out[0] = the sum (+ out[0] if accumulate).
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
    const double total = tg_block_reduce<TG_THREAD_0>(acc, partial, tg_sum());
    if (threadIdx.x == 0) out[0] = accumulate ? out[0] + total : total;
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

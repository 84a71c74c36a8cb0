// Softmax cross-entropy, forward: one thread block per row of logits (N, C). The block
// size is a power of two from 32 to 256, so it is whole warps; every thread ends with
// the block's max and sum (tg_block_reduce, TG_EVERY_THREAD). The formulas are the
// base kernel's: shifted = x - max, log_norm = log Σ exp(shifted),
// loss = log_norm - shifted[target], probs = exp(shifted - log_norm). A target outside
// [-C, C) gives a NaN loss (checking it on the host would cost a synchronisation;
// cross_entropy has already checked the range).
#include "block_reduce.cuh"

__device__ __forceinline__ float tg_nan(float) { return __int_as_float(0x7fffffff); }
__device__ __forceinline__ double tg_nan(double) {
    return __longlong_as_double(0x7ff8000000000000LL);
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
    m = tg_block_reduce<TG_EVERY_THREAD>(m, partial, tg_max());

    T s = T(0);
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) s += exp(x[j] - m);
    const T log_norm = log(tg_block_reduce<TG_EVERY_THREAD>(s, partial, tg_sum()));

    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) p[j] = exp((x[j] - m) - log_norm);
    if (threadIdx.x == 0) {
        long long t = targets[row];
        if (t < 0) t += n_cols;
        loss[row] = (0 <= t && t < n_cols) ? log_norm - (x[t] - m) : tg_nan(m);
    }
}

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

// A GEMM of our own, for what a CUDA graph records: CuPy refuses every cuBLAS call
// while a stream is being captured. C = A @ B for one matrix pair per batch index: A
// (M, K) and B (K, N) at any element strides, so transposed views are read in place;
// C (M, N) contiguous. A block of 256 threads computes a 64 x 64 tile of C, each thread
// a 4 x 4 grid of it (rows ty + 16i, columns tx + 16j, so a warp's stores are
// contiguous), stepping through K 16 at a time in shared memory; each tile is loaded
// along whichever of its strides is 1, so the loads coalesce. Where the tiles of C are
// too few to fill the GPU (dW_hh = H_prevᵀ dZ at D2L's sizes: K = T·N = 1120 but C only
// h x h), K is split into `splits` chunks: blockIdx.z = batch index · splits + chunk,
// each chunk writes its own partial C, and tg_sum_splits adds the partials in chunk
// order. So the sums are deterministic, but not in cuBLAS's order: the two agree to
// rounding (about K ulp of the terms' scale), not bit for bit. The launch: _cupy_gemm.py.
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

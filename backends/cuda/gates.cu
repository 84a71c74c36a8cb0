// One step of the GRU and of the LSTM, forward and backward, everything but the step's
// GEMM: a thread per element (n, j) of the (N, h) state, a grid-stride loop. Gate
// blocks lie side by side on the last axis (GRU r|z|n, LSTM i|f|g|o), each h wide, as
// in Backend.gru_forward / lstm_forward, whose operations these do in the same order.
// All arrays C-contiguous; `_t` arrays are one step's (N, ·) slice.

// 1 / (1 + exp(-x)) without overflow, as Backend.sigmoid: exp(-|x|) <= 1.
template <typename T>
__device__ __forceinline__ T tg_sigmoid(T x) {
    const T e = exp(-fabs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// After gh = H_{t-1} W_hh (N, 3h): Gh = gh + b_hh; r, z = σ(Zx_t + Gh) (blocks r, z);
// n = tanh(Zx_n + r ⊙ Gh_n); H_t = (1 - z) ⊙ n + z ⊙ H_{t-1}. Writes H_t (N, h), the
// gates [r|z|n] (N, 3h) and hn_t = Gh_n (N, h), what the backward reads.
template <typename T>
__global__ void tg_gru_step_forward(const T* __restrict__ Zx_t, const T* __restrict__ gh,
                                    const T* __restrict__ b_hh, const T* __restrict__ prev,
                                    T* __restrict__ H_t, T* __restrict__ gates_t,
                                    T* __restrict__ hn_t, const int batch, const int h) {
    const long long total = (long long)batch * h;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const long long n = e / h, j = e - n * h, row = n * 3 * h;
        const T r = tg_sigmoid(Zx_t[row + j] + (gh[row + j] + b_hh[j]));
        const T z = tg_sigmoid(Zx_t[row + h + j] + (gh[row + h + j] + b_hh[h + j]));
        const T ghn = gh[row + 2 * h + j] + b_hh[2 * h + j];
        const T c = tanh(Zx_t[row + 2 * h + j] + r * ghn);
        H_t[e] = (T(1) - z) * c + z * prev[e];
        gates_t[row + j] = r;
        gates_t[row + h + j] = z;
        gates_t[row + 2 * h + j] = c;
        hn_t[e] = ghn;
    }
}

// Before hw = dGh_t W_hhᵀ: g = dH_t + gz + hw, where gz = g_{t+1} ⊙ z_{t+1} and hw are
// what H_t gets from step t+1; dn = g (1 - z)(1 - n²), dz = g (H_{t-1} - n) z(1 - z),
// dr = dn Gh_n r(1 - r). Writes dZx_t = [dr|dz|dn], dGh_t = [dr|dz|dn ⊙ r] (N, 3h) and
// gz = g ⊙ z in place (each element reads its own gz first).
template <typename T>
__global__ void tg_gru_step_backward(const T* __restrict__ dH_t, T* __restrict__ gz,
                                     const T* __restrict__ hw, const T* __restrict__ prev,
                                     const T* __restrict__ gates_t, const T* __restrict__ hn_t,
                                     T* __restrict__ dZx_t, T* __restrict__ dGh_t,
                                     const int batch, const int h) {
    const long long total = (long long)batch * h;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const long long n = e / h, j = e - n * h, row = n * 3 * h;
        const T r = gates_t[row + j], z = gates_t[row + h + j], c = gates_t[row + 2 * h + j];
        const T g = dH_t[e] + gz[e] + hw[e];
        const T dn = g * (T(1) - z) * (T(1) - c * c);
        const T dz = g * (prev[e] - c) * (z * (T(1) - z));
        const T dr = dn * hn_t[e] * (r * (T(1) - r));
        dZx_t[row + j] = dr;
        dZx_t[row + h + j] = dz;
        dZx_t[row + 2 * h + j] = dn;
        dGh_t[row + j] = dr;
        dGh_t[row + h + j] = dz;
        dGh_t[row + 2 * h + j] = dn * r;
        gz[e] = g * z;
    }
}

// After aw = H_{t-1} W_hh (N, 4h): A = Zx_t + aw; i, f, o = σ(A_i, A_f, A_o), g = tanh(A_g);
// C_t = f ⊙ C_{t-1} + i ⊙ g, H_t = o ⊙ tanh(C_t). Writes C_t, H_t (N, h), gates (N, 4h).
template <typename T>
__global__ void tg_lstm_step_forward(const T* __restrict__ Zx_t, const T* __restrict__ aw,
                                     const T* __restrict__ prev_c, T* __restrict__ C_t,
                                     T* __restrict__ H_t, T* __restrict__ gates_t,
                                     const int batch, const int h) {
    const long long total = (long long)batch * h;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const long long n = e / h, j = e - n * h, row = n * 4 * h;
        const T i = tg_sigmoid(Zx_t[row + j] + aw[row + j]);
        const T f = tg_sigmoid(Zx_t[row + h + j] + aw[row + h + j]);
        const T g = tanh(Zx_t[row + 2 * h + j] + aw[row + 2 * h + j]);
        const T o = tg_sigmoid(Zx_t[row + 3 * h + j] + aw[row + 3 * h + j]);
        const T c = f * prev_c[e] + i * g;
        C_t[e] = c;
        H_t[e] = o * tanh(c);
        gates_t[row + j] = i;
        gates_t[row + h + j] = f;
        gates_t[row + 2 * h + j] = g;
        gates_t[row + 3 * h + j] = o;
    }
}

// Before carry_h = dA_t W_hhᵀ: dh = dH_t + carry_h, dc = carry_c + dh o (1 - tanh²C_t);
// dA_t = [dc g i(1-i) | dc C_{t-1} f(1-f) | dc i (1-g²) | dh tanh C_t o(1-o)] (N, 4h),
// and carry_c = dc ⊙ f in place. tanh C_t is recomputed (the forward keeps only C).
template <typename T>
__global__ void tg_lstm_step_backward(const T* __restrict__ dH_t, const T* __restrict__ carry_h,
                                      T* __restrict__ carry_c, const T* __restrict__ C_t,
                                      const T* __restrict__ prev_c,
                                      const T* __restrict__ gates_t, T* __restrict__ dA_t,
                                      const int batch, const int h) {
    const long long total = (long long)batch * h;
    for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < total;
         e += (long long)gridDim.x * blockDim.x) {
        const long long n = e / h, j = e - n * h, row = n * 4 * h;
        const T i = gates_t[row + j], f = gates_t[row + h + j];
        const T g = gates_t[row + 2 * h + j], o = gates_t[row + 3 * h + j];
        const T tanh_c = tanh(C_t[e]);
        const T dh = dH_t[e] + carry_h[e];
        const T dc = carry_c[e] + dh * o * (T(1) - tanh_c * tanh_c);
        dA_t[row + j] = dc * g * (i * (T(1) - i));
        dA_t[row + h + j] = dc * prev_c[e] * (f * (T(1) - f));
        dA_t[row + 2 * h + j] = dc * i * (T(1) - g * g);
        dA_t[row + 3 * h + j] = dh * tanh_c * (o * (T(1) - o));
        carry_c[e] = dc * f;
    }
}

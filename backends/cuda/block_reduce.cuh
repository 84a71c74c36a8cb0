// One block reduction for the kernels that reduce a value over a whole thread block
// (softmax_xent.cu: the row's max and sum; multi.cu: the sum of squares). A block is
// whole warps (blockDim.x a multiple of 32, at most 1024). Each warp first reduces its
// 32 values by a butterfly of shuffles (every lane ends with the warp's result), then
// lane 0 of each warp leaves it in `partial` (shared, 32 entries), and the warps'
// results are combined in one of two orders, fixed by the kernel (see tg_reduce_mode),
// so a kernel's additions happen in the same order on every run.
#ifndef TG_BLOCK_REDUCE_CUH
#define TG_BLOCK_REDUCE_CUH

// The operations: op(a, b), and a value `neutral` that leaves op's result as it is
// (max: any warp's own value, since max(x, x) == x; sum: 0).
struct tg_max {
    template <typename T>
    __device__ __forceinline__ T operator()(T a, T b) const { return b > a ? b : a; }
    template <typename T>
    __device__ __forceinline__ static T neutral(const T* partial) { return partial[0]; }
};

struct tg_sum {
    template <typename T>
    __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
    template <typename T>
    __device__ __forceinline__ static T neutral(const T*) { return T(0); }
};

// Who gets a block reduction's result, and in which order the warps' results combine.
enum tg_reduce_mode {
    // Every thread: the warps' results reduced by one more butterfly, bit-identical in
    // every thread since op(a, b) == op(b, a) in IEEE arithmetic. A block of one warp
    // skips shared memory. Ends with a barrier, so `partial` can serve the next one.
    TG_EVERY_THREAD,
    // Thread 0 alone (the others return their warp's result): the warps' results
    // folded in warp order, op(...op(op(neutral, w0), w1)..., w_last). No barrier at
    // the end: for a kernel's last reduction.
    TG_THREAD_0,
};

template <typename T, typename Op>
__device__ __forceinline__ T tg_warp_reduce(T v, Op op) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
    }
    return v;
}

template <tg_reduce_mode MODE, typename T, typename Op>
__device__ __forceinline__ T tg_block_reduce(T v, T* partial, Op op) {
    v = tg_warp_reduce(v, op);
    const int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
    if (MODE == TG_EVERY_THREAD) {
        if (warps > 1) {
            if (lane == 0) partial[threadIdx.x >> 5] = v;
            __syncthreads();
            v = tg_warp_reduce(lane < warps ? partial[lane] : op.neutral(partial), op);
            __syncthreads();  // partial is reused by the next reduction
        }
        return v;
    }
    if (lane == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        T total = op.neutral(partial);
        for (int w = 0; w < warps; ++w) total = op(total, partial[w]);
        v = total;
    }
    return v;
}

#endif  // TG_BLOCK_REDUCE_CUH

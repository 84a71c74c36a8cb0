"""Raw ``@njit`` kernels of the Numba backend; :mod:`numba_backend` checks their inputs.

Every kernel expects C-contiguous, writable, aligned arrays of ONE float dtype
(float32 or float64), so each compiles at most twice; the nonlinearity is a bool
(``relu``), a run-time flag rather than a third specialization. Constants are made
with ``dtype.type(...)`` because a bare Python literal (``1.0``) is float64 to
Numba and would silently upcast float32 arithmetic.

Inputs are only read; every returned array is allocated here.
"""

from __future__ import annotations

import numba
import numpy as np

from ._numba_math import JIT_OPTIONS, exp_nonpositive, tanh

_jit = numba.njit(**JIT_OPTIONS)


# ------------------------------------------------------------------- RNN forward
@_jit
def _add_tanh(zx, hw, out):
    """``out = tanh(zx + hw)`` for 1-D arrays of one length; LLVM vectorizes the loop.

    The tanh is :func:`._numba_math.tanh` (Cephes' polynomials), not ``np.tanh``: Numba
    compiles that to a scalar libm call per element, 40x slower in float32. So the fused
    RNN and the composed path (``ops.Tanh``, NumPy's SIMD ``np.tanh``) differ in the last
    bits: against long-double tanh this one is at most 1.48 ulp off (float32) and 1.47
    (float64), NumPy's 1.37 and 1.18, so the two are under 3 ulp (3·ε relative) apart.
    The tests comparing them allow for that: float32 2·(d + h + 4 + T·N)·ε32 times the
    terms' magnitudes in ``tests/test_rnn.py`` and ``tests/test_parity.py`` (the ``+ 4``
    for φ and the adds is 8·ε32 alone), float64 1e-9 in ``tests/test_rnn.py``, and
    4·terms·ε (terms >= T·h) in ``tests/test_numba_kernels.py``.
    """
    for k in range(out.size):
        out[k] = tanh(zx[k] + hw[k])


@_jit
def add_activate(zx, hw, out, relu):
    """``out = φ(zx + hw)`` elementwise for (N, h) arrays; φ = relu if ``relu`` else tanh.

    tanh is the kernels' own, not NumPy's: a few ulps from the composed path's (see
    :func:`_add_tanh`).
    """
    if relu:
        zero = out.dtype.type(0)
        N, h = out.shape
        for i in range(N):
            for j in range(h):
                z = zx[i, j] + hw[i, j]
                out[i, j] = zero if z < zero else z  # NaN passes through, as np.maximum
    else:
        _add_tanh(zx.reshape(zx.size), hw.reshape(hw.size), out.reshape(out.size))


@_jit
def rnn_forward(Zx, H0, W_hh, relu):
    """``H_t = φ(Zx_t + H_{t-1} W_hh)`` for t = 1..T.

    Zx (T, N, h), H0 (N, h), W_hh (h, h) -> H (T, N, h). One GEMM per step into a
    preallocated buffer (``np.dot(a, b, out)`` is BLAS gemm), then a fused add+φ loop:
    nothing is allocated inside the time loop.
    """
    T, N, h = Zx.shape
    H = np.empty_like(Zx)
    hw = np.empty((N, h), dtype=Zx.dtype)
    prev = H0
    for t in range(T):
        np.dot(prev, W_hh, hw)
        add_activate(Zx[t], hw, H[t], relu)
        prev = H[t]
    return H


# ------------------------------------------------------------------ RNN backward
@_jit
def local_grad(dH_t, carry, H_t, out, relu):
    """``out = (dH_t + carry) ⊙ φ'(H_t)`` for (N, h) arrays, φ' from the output alone.

    Written as ``g * (1 - y*y)`` and ``g * (y > 0)`` in the base backend's operation
    order, so only the GEMMs' summation order makes the two backends differ.
    """
    one, zero = out.dtype.type(1), out.dtype.type(0)
    N, h = out.shape
    if relu:
        for i in range(N):
            for j in range(h):
                g = dH_t[i, j] + carry[i, j]
                out[i, j] = g * (one if H_t[i, j] > zero else zero)
    else:
        for i in range(N):
            for j in range(h):
                g = dH_t[i, j] + carry[i, j]
                y = H_t[i, j]
                out[i, j] = g * (one - y * y)


@_jit
def transposed(a):
    """``a.T`` (n, m) -> (m, n) as a new C-contiguous array, in 16×16 tiles.

    W_hhᵀ for the backward's per-step GEMMs. Tiles keep both the rows read and the rows
    written in cache; NumPy's ``ascontiguousarray(a.T)`` walks a column of 512 floats
    at a 2 KiB stride and took 3x longer (512×512: 575 against 180 µs).
    """
    n, m = a.shape
    out = np.empty((m, n), dtype=a.dtype)
    for i0 in range(0, n, 16):
        for j0 in range(0, m, 16):
            for j in range(j0, min(j0 + 16, m)):
                for i in range(i0, min(i0 + 16, n)):
                    out[j, i] = a[i, j]
    return out


@_jit
def stack_prev(H, H0):
    """H_prev = [H0, H_1 .. H_{T-1}] as one (T·N, h) array: the inputs of each step."""
    T, N, h = H.shape
    H_prev = np.empty((T * N, h), dtype=H.dtype)
    # Plain loops, not ``H_prev[:N] = H0``: Numba takes seconds to compile slice
    # assignment and a fraction of that for these loops, which run as fast.
    for i in range(N):
        for j in range(h):
            H_prev[i, j] = H0[i, j]
    for t in range(T - 1):
        for i in range(N):
            for j in range(h):
                H_prev[(t + 1) * N + i, j] = H[t, i, j]
    return H_prev


@_jit
def rnn_backward(dH, H, H0, W_hh, relu):
    """BPTT of :func:`rnn_forward`: returns ``(dZx (T, N, h), dH0 (N, h), dW_hh (h, h))``.

    dH (T, N, h) is dL/dH_t from outside the recurrence. Walking t = T-1 .. 0,
    ``dZ_t = (dH_t + carry) ⊙ φ'(H_t)`` and ``carry = dZ_t W_hhᵀ``, the gradient
    H_t sends to H_{t-1}; the final carry is dH0. ``dW_hh = H_prevᵀ dZ`` is one
    GEMM over all T·N rows at the end: a single large GEMM keeps BLAS far busier
    than T small rank-N updates inside the loop.
    """
    T, N, h = H.shape
    dZ = np.empty_like(H)
    carry = np.zeros_like(H0)
    # A C copy, not the F-ordered view .T: with the transpose flag SciPy's BLAS ran these
    # small per-step GEMMs 1.5-1.7x slower (measured, h = 32-128).
    W_hh_T = transposed(W_hh)
    for t in range(T - 1, -1, -1):
        local_grad(dH[t], carry, H[t], dZ[t], relu)
        np.dot(dZ[t], W_hh_T, carry)  # carry was consumed above, so overwrite it in place
    dW_hh = np.dot(stack_prev(H, H0).T, dZ.reshape(T * N, h))
    return dZ, carry, dW_hh


# ------------------------------------------------------------ softmax cross-entropy
@_jit
def softmax_cross_entropy(logits, targets):
    """Rows of logits (N, C) against int64 targets (N,) -> ``(loss (N,), probs (N, C))``.

    Log-sum-exp shifted by the row max: ``e = exp(x - max)``, ``s = Σ e``,
    ``probs = e / s``, ``loss = log s - (x_target - max)``. The exponentials run as
    one loop over all N·C shifted logits, call-free, which LLVM vectorizes whole (per
    row, a vocabulary of 28 leaves a short loop and a scalar tail: 1.5x slower); the
    sums run apart because a float reduction would pin a loop to scalar code (without
    fastmath's reordering).
    """
    N, C = logits.shape
    loss = np.empty(N, dtype=logits.dtype)
    probs = np.empty_like(logits)
    shift = np.empty(N, dtype=logits.dtype)
    for i in range(N):
        m = logits[i, 0]
        for j in range(1, C):
            if logits[i, j] > m:
                m = logits[i, j]
        shift[i] = m
        for j in range(C):
            probs[i, j] = logits[i, j] - m
    flat = probs.reshape(N * C)
    for k in range(N * C):
        flat[k] = exp_nonpositive(flat[k])
    for i in range(N):
        s = 0.0  # float64: a float32 running sum loses 1e-3 over a million classes
        for j in range(C):
            s += probs[i, j]
        total = logits.dtype.type(s)  # log and 1/x in the logits' dtype: f64 ones cost 15%
        inv = logits.dtype.type(1) / total
        for j in range(C):
            probs[i, j] *= inv
        loss[i] = np.log(total) - (logits[i, targets[i]] - shift[i])
    return loss, probs


@_jit
def softmax_cross_entropy_backward(probs, targets, grad):
    """``(probs - one_hot(targets)) * grad[:, None]``: probs (N, C), targets (N,), grad (N,)."""
    N, C = probs.shape
    one = probs.dtype.type(1)
    dlogits = np.empty_like(probs)
    for i in range(N):
        g = grad[i]
        for j in range(C):
            dlogits[i, j] = probs[i, j] * g
        t = targets[i]
        dlogits[i, t] = (probs[i, t] - one) * g
    return dlogits


# ------------------------------------------------------------------- elementwise
@_jit
def tanh_backward(y, grad):
    """``grad * (1 - y*y)`` for 1-D y, grad of one length (callers ravel)."""
    one = y.dtype.type(1)
    out = np.empty_like(y)
    for k in range(y.shape[0]):
        out[k] = grad[k] * (one - y[k] * y[k])
    return out


# ------------------------------------------------------------------ scatter-add
@_jit
def scatter_add_rows(n_rows, index, values):
    """``out[index[k]] += values[k]`` into zeros (n_rows, R): index (K,) int64, values (K, R).

    Sequential over k, so repeated rows accumulate in the same order as ``np.add.at``
    (bitwise-equal results); callers guarantee ``0 <= index < n_rows``.
    """
    K, R = values.shape
    out = np.zeros((n_rows, R), dtype=values.dtype)
    for k in range(K):
        r = index[k]
        for j in range(R):
            out[r, j] += values[k, j]
    return out


# ----------------------------------------------------------------------- GEMM
@_jit
def matmul(a, b):
    """``a @ b`` for 2-D arrays of one float dtype, through the BLAS the RNN kernels use.

    Routing every GEMM of a step here keeps the process on ONE OpenBLAS thread
    pool (SciPy's); see ``numba_backend`` for why two pools fight on few cores.
    """
    return np.dot(a, b)


@_jit
def column_sums(a):
    """Σ over the rows of a (R, C) array -> (C,), row after row: NumPy's order for axis 0."""
    R, C = a.shape
    out = np.zeros(C, dtype=a.dtype)
    for r in range(R):
        for j in range(C):
            out[j] += a[r, j]
    return out


@_jit
def sum_of_squares(a):
    """Σ a² of a contiguous 1-D array, accumulated in float64.

    Four running sums (k mod 4), added at the end: one sum would wait on each add's
    latency (4x slower); the order is fixed, so the result is the same on every run.
    """
    s0 = s1 = s2 = s3 = 0.0
    n4 = a.size - a.size % 4
    for k in range(0, n4, 4):
        x0, x1 = np.float64(a[k]), np.float64(a[k + 1])
        x2, x3 = np.float64(a[k + 2]), np.float64(a[k + 3])
        s0 += x0 * x0
        s1 += x1 * x1
        s2 += x2 * x2
        s3 += x3 * x3
    for k in range(n4, a.size):
        x = np.float64(a[k])
        s0 += x * x
    return (s0 + s1) + (s2 + s3)

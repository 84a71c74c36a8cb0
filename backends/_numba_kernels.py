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

from ._numba_math import EXACT_JIT_OPTIONS, JIT_OPTIONS, exp_nonpositive, sigmoid, tanh

# Kernels with tanh, σ or exp (the gate steps, softmax) may fuse multiply-adds (see
# ``_numba_math.MATH_OPTIONS``); the others round every operation as NumPy does, so
# those documented as NumPy's bits stay so.
_jit = numba.njit(**EXACT_JIT_OPTIONS)
_fma_jit = numba.njit(**JIT_OPTIONS)


# ------------------------------------------------------------------- RNN forward
@_fma_jit
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


@_fma_jit
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


# ------------------------------------------------------------------- GRU and LSTM
# Gate blocks side by side on the last axis (GRU r|z|n, LSTM i|f|g|o), each h wide, as in
# ``Backend.gru_forward``; the step kernels do the formulas of the base backend's
# docstrings, so only the GEMMs' summation order, the grouping of a few products (the
# NumPy backward forms the gate factors for all steps first), fused multiply-adds and the
# kernels' tanh and sigmoid (within 1.5 and 2.5 ulp, :mod:`._numba_math`) make the two
# backends differ, each by an ulp or so per operation.
# Each kernel writes a row's gate blocks through 1-D views of their own (``gates_t[i, :h]``
# ...): storing to ``gates_t[i, k*h + j]`` for three or four k in one loop, LLVM's vectorized
# loop was never taken (its overlap checks failed) and the step ran 10-15x slower (measured).
@_fma_jit
def gru_step(Zx_t, gh, b_hh, prev, H_t, gates_t, hn_t):
    """One GRU step after its GEMM ``gh = H_{t-1} W_hh`` (N, 3h): everything else, fused.

    ``Gh = gh + b_hh``; ``r, z = σ(Zx_t + Gh)`` (blocks r, z), ``n = tanh(Zx_n + r ⊙ Gh_n)``,
    ``H_t = (1 - z) ⊙ n + z ⊙ H_{t-1}``; writes H_t (N, h), gates_t [r|z|n] (N, 3h) and
    hn_t = Gh_n (N, h). Zx_t (N, 3h), b_hh (3h,), prev = H_{t-1} (N, h).
    """
    one = H_t.dtype.type(1)
    N, h = H_t.shape
    for i in range(N):
        r_out, z_out, n_out = gates_t[i, :h], gates_t[i, h:2 * h], gates_t[i, 2 * h:]
        for j in range(h):
            r = sigmoid(Zx_t[i, j] + (gh[i, j] + b_hh[j]))
            z = sigmoid(Zx_t[i, h + j] + (gh[i, h + j] + b_hh[h + j]))
            ghn = gh[i, 2 * h + j] + b_hh[2 * h + j]
            n = tanh(Zx_t[i, 2 * h + j] + r * ghn)
            H_t[i, j] = (one - z) * n + z * prev[i, j]
            r_out[j], z_out[j], n_out[j] = r, z, n
            hn_t[i, j] = ghn


@_jit
def gru_forward(Zx, H0, W_hh, b_hh):
    """PyTorch's GRU over T steps: Zx (T, N, 3h), H0 (N, h), W_hh (h, 3h), b_hh (3h,)
    -> ``(H (T, N, h), gates (T, N, 3h), hn (T, N, h))`` as ``Backend.gru_forward``.

    One GEMM per step into a preallocated buffer, then :func:`gru_step`.
    """
    T, N, G = Zx.shape
    h = H0.shape[1]
    H = np.empty((T, N, h), dtype=Zx.dtype)
    gates = np.empty_like(Zx)
    hn = np.empty((T, N, h), dtype=Zx.dtype)
    gh = np.empty((N, G), dtype=Zx.dtype)
    prev = H0
    for t in range(T):
        np.dot(prev, W_hh, gh)
        gru_step(Zx[t], gh, b_hh, prev, H[t], gates[t], hn[t])
        prev = H[t]
    return H, gates, hn


@_fma_jit
def gru_local_grad(dH_t, gz, hw, prev, gates_t, hn_t, dZx_t, dGh_t):
    """The local gradient of one GRU step, fused; ``gz`` (N, h) is overwritten.

    The carry into the step is ``gz + hw``: ``g ⊙ z`` and ``dGh W_hhᵀ`` of the step after
    it, added here rather than in a loop of their own. With ``g = dH_t + carry``:
    ``dn = g ⊙ (1 - z) ⊙ (1 - n²)``, ``dz = g ⊙ (H_{t-1} - n) ⊙ z(1 - z)``,
    ``dr = dn ⊙ Gh_n ⊙ r(1 - r)``; writes dZx_t = [dr|dz|dn], dGh_t = [dr|dz|dn ⊙ r]
    (N, 3h), and ``gz = g ⊙ z`` for the step before.
    """
    one = gz.dtype.type(1)
    N, h = gz.shape
    for i in range(N):
        dr_x, dz_x, dn_x = dZx_t[i, :h], dZx_t[i, h:2 * h], dZx_t[i, 2 * h:]
        dr_h, dz_h, dn_h = dGh_t[i, :h], dGh_t[i, h:2 * h], dGh_t[i, 2 * h:]
        for j in range(h):
            g = dH_t[i, j] + (gz[i, j] + hw[i, j])
            r, z, n = gates_t[i, j], gates_t[i, h + j], gates_t[i, 2 * h + j]
            dn = g * (one - z) * (one - n * n)
            dz = g * (prev[i, j] - n) * (z * (one - z))
            dr = dn * hn_t[i, j] * (r * (one - r))
            dr_x[j], dz_x[j], dn_x[j] = dr, dz, dn
            dr_h[j], dz_h[j], dn_h[j] = dr, dz, dn * r
            gz[i, j] = g * z


@_jit
def gru_backward(dH, H, gates, hn, H0, W_hh):
    """BPTT of :func:`gru_forward` -> ``(dZx (T, N, 3h), dH0 (N, h), dW_hh (h, 3h),
    db_hh (3h,))`` as ``Backend.gru_backward``.

    Per step :func:`gru_local_grad`, then ``hw = dGh_t W_hhᵀ`` into its buffer; after the
    loop ``dW_hh = H_prevᵀ dGh`` is one GEMM over all T·N rows and ``db_hh`` the column
    sums of dGh, in NumPy's order.
    """
    T, N, h = H.shape
    G = gates.shape[2]
    dZx = np.empty_like(gates)
    dGh = np.empty_like(gates)
    gz = np.zeros_like(H0)
    hw = np.zeros_like(H0)
    W_hh_T = transposed(W_hh)
    for t in range(T - 1, -1, -1):
        prev = H0 if t == 0 else H[t - 1]
        gru_local_grad(dH[t], gz, hw, prev, gates[t], hn[t], dZx[t], dGh[t])
        np.dot(dGh[t], W_hh_T, hw)  # hw was consumed above
    dGh_rows = dGh.reshape(T * N, G)
    dW_hh = np.dot(stack_prev(H, H0).T, dGh_rows)
    return dZx, gz + hw, dW_hh, column_sums(dGh_rows)


@_fma_jit
def lstm_step(Zx_t, aw, prev_c, C_t, H_t, gates_t):
    """One LSTM step after its GEMM ``aw = H_{t-1} W_hh`` (N, 4h): everything else, fused.

    ``A = Zx_t + aw``; ``i, f, o = σ(A_i), σ(A_f), σ(A_o)``, ``g = tanh(A_g)``,
    ``C_t = f ⊙ C_{t-1} + i ⊙ g``, ``H_t = o ⊙ tanh(C_t)``; writes C_t, H_t (N, h) and
    gates_t [i|f|g|o] (N, 4h). Zx_t (N, 4h), prev_c = C_{t-1} (N, h).
    """
    N, h = H_t.shape
    for k in range(N):
        i_out, f_out = gates_t[k, :h], gates_t[k, h:2 * h]
        g_out, o_out = gates_t[k, 2 * h:3 * h], gates_t[k, 3 * h:]
        for j in range(h):
            i = sigmoid(Zx_t[k, j] + aw[k, j])
            f = sigmoid(Zx_t[k, h + j] + aw[k, h + j])
            g = tanh(Zx_t[k, 2 * h + j] + aw[k, 2 * h + j])
            o = sigmoid(Zx_t[k, 3 * h + j] + aw[k, 3 * h + j])
            c = f * prev_c[k, j] + i * g
            C_t[k, j] = c
            H_t[k, j] = o * tanh(c)
            i_out[j], f_out[j], g_out[j], o_out[j] = i, f, g, o


@_jit
def lstm_forward(Zx, H0, C0, W_hh):
    """PyTorch's LSTM over T steps: Zx (T, N, 4h), H0, C0 (N, h), W_hh (h, 4h)
    -> ``(H, C (T, N, h), gates (T, N, 4h))`` as ``Backend.lstm_forward``.

    One GEMM per step into a preallocated buffer, then :func:`lstm_step`.
    """
    T, N, G = Zx.shape
    h = H0.shape[1]
    H = np.empty((T, N, h), dtype=Zx.dtype)
    C = np.empty_like(H)
    gates = np.empty_like(Zx)
    aw = np.empty((N, G), dtype=Zx.dtype)
    prev_h, prev_c = H0, C0
    for t in range(T):
        np.dot(prev_h, W_hh, aw)
        lstm_step(Zx[t], aw, prev_c, C[t], H[t], gates[t])
        prev_h, prev_c = H[t], C[t]
    return H, C, gates


@_fma_jit
def lstm_local_grad(dH_t, carry_h, carry_c, C_t, prev_c, gates_t, dA_t):
    """The local gradient of one LSTM step, fused; ``carry_c`` (N, h) is updated in place.

    ``tanh C_t`` is recomputed (the forward keeps only C). With ``dh = dH_t + carry_h``,
    ``dc = carry_c + dh ⊙ o ⊙ (1 - tanh²C_t)``; writes ``dA_t = [dc ⊙ g ⊙ i(1-i) |
    dc ⊙ C_{t-1} ⊙ f(1-f) | dc ⊙ i ⊙ (1-g²) | dh ⊙ tanh C_t ⊙ o(1-o)]`` (N, 4h) and
    ``carry_c = dc ⊙ f``.
    """
    one = carry_c.dtype.type(1)
    N, h = carry_c.shape
    for k in range(N):
        di, df = dA_t[k, :h], dA_t[k, h:2 * h]
        dg, do = dA_t[k, 2 * h:3 * h], dA_t[k, 3 * h:]
        for j in range(h):
            i, f = gates_t[k, j], gates_t[k, h + j]
            g, o = gates_t[k, 2 * h + j], gates_t[k, 3 * h + j]
            tanh_c = tanh(C_t[k, j])
            dh = dH_t[k, j] + carry_h[k, j]
            dc = carry_c[k, j] + dh * o * (one - tanh_c * tanh_c)
            di[j] = dc * g * (i * (one - i))
            df[j] = dc * prev_c[k, j] * (f * (one - f))
            dg[j] = dc * i * (one - g * g)
            do[j] = dh * tanh_c * (o * (one - o))
            carry_c[k, j] = dc * f


@_jit
def lstm_backward(dH, dC_T, H, C, gates, H0, C0, W_hh):
    """BPTT of :func:`lstm_forward` -> ``(dZx (T, N, 4h), dH0, dC0 (N, h), dW_hh (h, 4h))``
    as ``Backend.lstm_backward``.

    Per step :func:`lstm_local_grad`, then ``carry_h = dA_t W_hhᵀ`` in place; after the
    loop ``dW_hh = H_prevᵀ dA`` is one GEMM over all T·N rows.
    """
    T, N, h = H.shape
    G = gates.shape[2]
    dA = np.empty_like(gates)
    carry_h = np.zeros_like(H0)
    carry_c = dC_T.copy()  # updated in place: the caller's dC_T stays as it was
    W_hh_T = transposed(W_hh)
    for t in range(T - 1, -1, -1):
        prev_c = C0 if t == 0 else C[t - 1]
        lstm_local_grad(dH[t], carry_h, carry_c, C[t], prev_c, gates[t], dA[t])
        np.dot(dA[t], W_hh_T, carry_h)  # carry_h was consumed above
    dW_hh = np.dot(stack_prev(H, H0).T, dA.reshape(T * N, G))
    return dA, carry_h, carry_c, dW_hh


# ------------------------------------------------------------ softmax cross-entropy
@_fma_jit
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

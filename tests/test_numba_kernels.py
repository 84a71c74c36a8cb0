"""The Numba backend's compiled kernels against the NumPy reference, kernel by kernel.

Tolerances come from rounding-error reasoning, not from what happens to pass. An
output that is a sum of L rounded terms is off by at most about L·ε·Σ|terms|
(Higham's γ_L; ε = machine epsilon), and the two backends do round differently:
NumPy's ``@`` and Numba's ``np.dot`` are two OpenBLAS builds with different
summation orders, and the kernels' tanh (Cephes-style) and NumPy's each lie within
1.5 ulp of the true value. So ``close`` allows 4·L·ε relative and 4·L·ε times
the output's scale absolute: for float64 and L ≈ 100 that is ~1e-13; for float32,
~5e-5 (and ~3e-6 for the short softmax rows). Kernels that do exactly NumPy's
elementwise operations in NumPy's order (tanh backward, the softmax backward,
scatter-add) must agree bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from helpers import EPS32, close_to_ulps, kernel_calls, rnn_inputs
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import float_dtypes, nonlinearities, rnn_kernel_cases, seeds
from tinygrad_rnn.backends import _numba_kernels as K
from tinygrad_rnn.backends import numba_backend
from tinygrad_rnn.backends._numba_math import sigmoid
from tinygrad_rnn.backends.base import Backend
from tinygrad_rnn.backends.numba_backend import NumbaBackend

import tinygrad_rnn as tg

nb = tg.backends.get("numba")
ref = tg.backends.get("numpy")

rnn_shapes = rnn_kernel_cases(max_h=9)


# ------------------------------------------------------------------------------- RNN
@given(**rnn_shapes)
def test_rnn_forward_matches_numpy(T, N, h, dtype, nl, seed, scale):
    Zx, H0, W = rnn_inputs(T, N, h, dtype, seed, scale)
    close_to_ulps(nb.rnn_forward(Zx, H0, W, nl), ref.rnn_forward(Zx, H0, W, nl), terms=T * h)


@given(**rnn_shapes)
def test_rnn_backward_matches_numpy(T, N, h, dtype, nl, seed, scale):
    Zx, H0, W = rnn_inputs(T, N, h, dtype, seed, scale)
    H = ref.rnn_forward(Zx, H0, W, nl)
    dH = np.random.default_rng(seed + 1).normal(size=H.shape).astype(dtype)
    got, want = nb.rnn_backward(dH, H, H0, W, nl), ref.rnn_backward(dH, H, H0, W, nl)
    for a, b in zip(got, want, strict=True):  # dZx, dH0, dW_hh: dW sums T·N rows of carried sums
        close_to_ulps(a, b, terms=T * (h + N))


def test_tanh_kernel_is_within_two_ulps():
    """The kernels' own tanh (Cephes) against long-double tanh, edges included."""
    from tinygrad_rnn.backends._numba_kernels import _add_tanh

    rng = np.random.default_rng(0)
    special = [
        0.0,
        -0.0,
        1e-30,
        -1e-8,
        0.625,
        -0.625,
        np.nextafter(0.625, 0),
        9.0,
        19.1,
        -25.0,
        400.0,
        np.inf,
        -np.inf,
    ]
    for dtype in (np.float32, np.float64):
        x = np.concatenate(
            [
                special,
                rng.normal(0, 2, 20000),
                rng.uniform(-0.7, 0.7, 20000),
                10.0 ** rng.uniform(-20, 1, 5000),
            ]
        ).astype(dtype)
        out = np.empty_like(x)
        _add_tanh(x, np.full_like(x, -0.0), out)  # x + (-0.0) is x, even for x = -0.0
        exact = np.tanh(x.astype(np.longdouble))
        ulps = np.abs(out - exact) / np.spacing(np.abs(exact).astype(dtype))
        assert ulps.max() <= 2, (dtype, x[np.argmax(ulps)])
        assert np.array_equal(np.signbit(out), np.signbit(x))  # tanh(-0.0) = -0.0
        nan, nan_out = np.array([np.nan], dtype), np.empty(1, dtype)
        _add_tanh(nan, np.full_like(nan, -0.0), nan_out)
        assert np.isnan(nan_out).all()


def test_pow2_from_exponent_bits_is_exact_and_keeps_its_dtype():
    """2**n written into the exponent field, over the whole range exp and tanh use."""
    import numba
    from tinygrad_rnn.backends._numba_math import _pow2_neg

    @numba.njit
    def powers(ns):
        out = np.empty_like(ns)
        for k in range(ns.size):
            out[k] = _pow2_neg(ns[k])
        return out

    @numba.njit
    def one_power(n):
        return _pow2_neg(n)

    for dtype in (np.float32, np.float64):
        ns = np.arange(-126, 1).astype(dtype)
        assert np.array_equal(powers(ns), np.ldexp(np.ones_like(ns), ns.astype(int)))
        one_power(ns[0])
        # an int64 bit pattern for float32 would make a float64 (and upcast exp with it)
        returned = {sig.return_type for sig in one_power.nopython_signatures}
        assert numba.from_dtype(np.dtype(dtype)) in returned


# ------------------------------------------------------------------------ GRU and LSTM
# A second Numba backend whose every size takes the Python step loop (NumPy's GEMMs and
# one compiled step kernel per step) that D2L's batch takes from h = 256 on (N·h·G·h >=
# single_thread_below); ``nb`` runs these small sizes as one compiled call.
nb_steps = NumbaBackend()
nb_steps.single_thread_below = 0
gated_shapes = {k: v for k, v in rnn_kernel_cases(max_h=9).items() if k != "nl"}
gated_shapes["steps"] = st.booleans()

# Per step the forward adds a length-h dot product and about a dozen roundings in its gates
# (the bias and input adds; σ and tanh, whose two versions are up to 6 and 3 ulp apart; the
# cell update); the backward a length-G·h dot product (the carry through W_hhᵀ) and as many
# in its local gradient, and dW_hh, db_hh sum T·N rows.
GATE_ROUNDINGS = 12


def gated_inputs(T, N, h, n_gates, dtype, seed, scale):
    """Zx (T, N, G·h), H0, C0 (N, h), W_hh (h, G·h) with blocks of spectral radius ≈ ``scale``,
    b_hh (G·h,) for G = ``n_gates``."""
    rng = np.random.default_rng(seed)
    G = n_gates * h
    Zx = rng.normal(0, 1.5, (T, N, G)).astype(dtype)  # |a| on both sides of tanh's 0.625 cut
    H0, C0 = rng.uniform(-1, 1, (2, N, h)).astype(dtype)
    W = rng.normal(0, scale / np.sqrt(h), (h, G)).astype(dtype)
    b = rng.normal(0, 0.5, G).astype(dtype)
    return Zx, H0, C0, W, b


@given(**gated_shapes)
def test_gru_forward_matches_numpy(T, N, h, dtype, seed, scale, steps):
    Zx, H0, _, W, b = gated_inputs(T, N, h, 3, dtype, seed, scale)
    got = (nb_steps if steps else nb).gru_forward(Zx, H0, W, b)
    for a, e in zip(got, ref.gru_forward(Zx, H0, W, b), strict=True):  # H, gates, hn
        close_to_ulps(a, e, terms=T * (h + GATE_ROUNDINGS))


@given(**gated_shapes)
def test_gru_backward_matches_numpy(T, N, h, dtype, seed, scale, steps):
    Zx, H0, _, W, b = gated_inputs(T, N, h, 3, dtype, seed, scale)
    H, gates, hn = ref.gru_forward(Zx, H0, W, b)
    dH = np.random.default_rng(seed + 1).normal(size=H.shape).astype(dtype)
    got = (nb_steps if steps else nb).gru_backward(dH, H, gates, hn, H0, W)
    want = ref.gru_backward(dH, H, gates, hn, H0, W)
    for a, e in zip(got, want, strict=True):  # dZx, dH0, dW_hh, db_hh
        close_to_ulps(a, e, terms=T * (3 * h + N + GATE_ROUNDINGS))


@given(**gated_shapes)
def test_lstm_forward_matches_numpy(T, N, h, dtype, seed, scale, steps):
    Zx, H0, C0, W, _ = gated_inputs(T, N, h, 4, dtype, seed, scale)
    got = (nb_steps if steps else nb).lstm_forward(Zx, H0, C0, W)
    for a, e in zip(got, ref.lstm_forward(Zx, H0, C0, W), strict=True):  # H, C, gates
        close_to_ulps(a, e, terms=T * (h + GATE_ROUNDINGS))


@given(**gated_shapes)
def test_lstm_backward_matches_numpy(T, N, h, dtype, seed, scale, steps):
    Zx, H0, C0, W, _ = gated_inputs(T, N, h, 4, dtype, seed, scale)
    H, C, gates = ref.lstm_forward(Zx, H0, C0, W)
    rng = np.random.default_rng(seed + 1)
    dH, dC_T = rng.normal(size=H.shape).astype(dtype), rng.normal(size=H0.shape).astype(dtype)
    got = (nb_steps if steps else nb).lstm_backward(dH, dC_T, H, C, gates, H0, C0, W)
    want = ref.lstm_backward(dH, dC_T, H, C, gates, H0, C0, W)
    for a, e in zip(got, want, strict=True):  # dZx, dH0, dC0, dW_hh
        close_to_ulps(a, e, terms=T * (4 * h + N + GATE_ROUNDINGS))


def test_sigmoid_kernel_is_within_three_ulps():
    """The kernels' sigmoid against long-double sigmoid (measured at most 2.41 ulp off),
    edges included; below exp's floor (-87, -708) it is flushed to 0 from a subnormal."""

    @numba.njit
    def sigmoids(x):
        out = np.empty_like(x)
        for k in range(x.size):
            out[k] = sigmoid(x[k])
        return out

    rng = np.random.default_rng(0)
    for dtype, floor in ((np.float32, -87.0), (np.float64, -708.0)):
        special = [0.0, -0.0, 1e-30, -1e-8, 1.0, -1.0, 17.0, -17.0, 40.0, -40.0, floor, -floor]
        x = np.concatenate(
            [special, rng.normal(0, 4, 20000), rng.uniform(floor, -floor, 20000)]
        ).astype(dtype)
        out = sigmoids(x)
        exact = 1 / (1 + np.exp(-x.astype(np.longdouble)))
        ulps = np.abs(out - exact) / np.spacing(exact.astype(dtype))
        assert ulps.max() <= 3, (dtype, x[np.argmax(ulps)])
        edges = np.array([np.inf, -np.inf, np.nan, floor - 1, -1e4], dtype)
        got = sigmoids(edges)
        assert got[0] == 1 and got[1] == 0 and np.isnan(got[2])
        assert (got[3:] == 0).all()  # NumPy: subnormal or 0, under the smallest normal float


GATED_KERNELS = ("gru_forward", "gru_backward", "lstm_forward", "lstm_backward")


@pytest.fixture
def paths(monkeypatch):
    """The path each GRU/LSTM kernel call took while the test runs: "base ..." (the NumPy
    fallback), "sequence ..." (one compiled call) or "step ..." (the Python step loop).

    Only Python-level functions are replaced: a compiled kernel that calls a replaced
    one (``K.gru_step`` from ``K.gru_forward``) would fail to compile."""
    seen = []

    def record(owner, name, label):
        original = getattr(owner, name)

        def recorded(*args):
            seen.append(label)
            return original(*args)

        monkeypatch.setattr(owner, name, recorded)

    for name in GATED_KERNELS:
        record(Backend, name, f"base {name}")
        record(K, name, f"sequence {name}")
        record(numba_backend, f"_{name}_steps", f"step {name}")
    return seen


def gated_calls(backend, dtype, T=3, N=2, h=4):
    """(name, call) of the four GRU/LSTM kernels of ``backend`` on well-formed inputs."""
    Zg, H0, C0, Wg, bg = gated_inputs(T, N, h, 3, dtype, 0, 0.9)
    Zl, _, _, Wl, _ = gated_inputs(T, N, h, 4, dtype, 1, 0.9)
    gru, lstm = ref.gru_forward(Zg, H0, Wg, bg), ref.lstm_forward(Zl, H0, C0, Wl)
    dH = np.ones_like(gru[0])
    return [
        ("gru_forward", lambda: backend.gru_forward(Zg, H0, Wg, bg)),
        ("gru_backward", lambda: backend.gru_backward(dH, *gru, H0, Wg)),
        ("lstm_forward", lambda: backend.lstm_forward(Zl, H0, C0, Wl)),
        ("lstm_backward", lambda: backend.lstm_backward(dH, C0, *lstm, H0, C0, Wl)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gated_kernels_take_the_compiled_paths(paths, dtype):
    """Well-formed inputs never reach the fallback, so the property tests above compare
    compiled code with NumPy: one compiled call (small GEMMs), or the step loop."""
    for name, call in gated_calls(nb, dtype):
        paths.clear()
        call()
        assert paths == [f"sequence {name}"]
    for name, call in gated_calls(nb_steps, dtype):
        paths.clear()
        call()
        assert paths == [f"step {name}"]


def test_gated_kernels_fall_back_on_what_they_do_not_compile(paths):
    """Mixed dtypes, integer arrays, an empty batch and shapes off the kernels' (a
    broadcast b_hh) go to the base kernel, which defines their result."""
    Zx, H0, C0, W, b = gated_inputs(3, 2, 4, 3, np.float32, 0, 0.9)
    cases = [
        ("gru_forward", (Zx, H0, W.astype(np.float64), b)),  # mixed: the base promotes
        ("gru_forward", (Zx, H0, W, b[:1])),  # b_hh (1,) broadcasts
        ("gru_forward", (Zx[:, :0], H0[:0], W, b)),  # empty batch
        ("lstm_forward", (np.ones((3, 2, 8), int), np.ones((2, 2), int), np.ones((2, 2), int),
                          np.ones((2, 8), int))),  # integers
    ]
    for name, args in cases:
        want = getattr(ref, name)(*args)
        paths.clear()
        got = getattr(nb, name)(*args)
        assert paths == [f"base {name}"]
        for a, e in zip(got, want, strict=True):
            assert a.dtype == e.dtype
            np.testing.assert_array_equal(a, e)
    H, gates, hn = ref.gru_forward(Zx, H0, W, b)
    Zl, _, _, Wl, _ = gated_inputs(3, 2, 4, 4, np.float32, 0, 0.9)
    Hl, C, lgates = ref.lstm_forward(Zl, H0, C0, Wl)
    backward_cases = [
        ("gru_backward", (H, H, gates, hn, H0, W.astype(np.float64))),  # mixed
        ("lstm_backward", (Hl, C0[:1], Hl, C, lgates, H0, C0, Wl)),  # dC_T (1, h) broadcasts
    ]
    for name, args in backward_cases:
        want = getattr(ref, name)(*args)
        paths.clear()
        got = getattr(nb, name)(*args)
        assert paths == [f"base {name}"]
        for a, e in zip(got, want, strict=True):
            assert a.dtype == e.dtype
            np.testing.assert_array_equal(a, e)


def test_gated_kernels_copy_odd_layouts_and_match_numpy(paths):
    """Transposed, reversed, read-only and broadcast (stride-0) inputs are copied to C order
    for the compiled kernels: the same numbers as NumPy's."""
    Zx, H0, C0, W, _ = gated_inputs(3, 2, 4, 4, np.float32, 2, 0.9)
    Zx_t = np.ascontiguousarray(Zx.transpose(1, 0, 2)).transpose(1, 0, 2)
    W_ro = W.copy()
    W_ro.flags.writeable = False
    Zg, _, _, Wg, bg = gated_inputs(3, 2, 4, 3, np.float32, 3, 0.9)
    H, C, gates = ref.lstm_forward(Zx, H0, C0, W)
    Hg, gates_g, hn = ref.gru_forward(Zg[:, ::-1], H0, Wg, bg[::-1])
    ones, minus = np.broadcast_to(np.float32(1), H.shape), np.broadcast_to(np.float32(-1), C0.shape)
    compiled = [  # (call on nb, NumPy's result, terms of the tolerance)
        (lambda: nb.lstm_forward(Zx_t, H0, C0, W_ro), (H, C, gates), 4),
        (lambda: nb.lstm_backward(ones, minus, H, C, gates, H0, C0, W),
         ref.lstm_backward(ones, minus, H, C, gates, H0, C0, W), 16 + 2),
        (lambda: nb.gru_forward(Zg[:, ::-1], H0.T.copy().T, Wg, bg[::-1]), (Hg, gates_g, hn), 4),
        (lambda: nb.gru_backward(ones, Hg, gates_g, hn, H0, Wg),
         ref.gru_backward(ones, Hg, gates_g, hn, H0, Wg), 12 + 2),
    ]
    paths.clear()
    for call, want, per_step in compiled:
        for a, e in zip(call(), want, strict=True):
            close_to_ulps(a, e, terms=3 * (per_step + GATE_ROUNDINGS))
    assert not any(p.startswith("base") for p in paths), paths

# ----------------------------------------------------------------- softmax + xent
@given(
    N=st.integers(1, 5),
    C=st.integers(1, 7),
    dtype=float_dtypes,
    seed=seeds,
    scale=st.sampled_from([1.0, 30.0, 1000.0]),
)
def test_softmax_cross_entropy_matches_numpy(N, C, dtype, seed, scale):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(N, C)) * scale).astype(dtype)
    targets = rng.integers(0, C, N)
    (loss, probs), (loss_r, probs_r) = (
        nb.softmax_cross_entropy(logits, targets),
        ref.softmax_cross_entropy(logits, targets),
    )
    assert np.isfinite(loss).all() and np.isfinite(probs).all()
    # loss = -(x_t - max) + log Σ exp: C terms, each |x - max| up to 2·max|x|
    close_to_ulps(loss, loss_r, terms=2 * C)
    close_to_ulps(probs, probs_r, terms=2 * C)
    grad = rng.normal(size=N).astype(dtype)
    np.testing.assert_array_equal(
        nb.softmax_cross_entropy_backward(probs, targets, grad),
        ref.softmax_cross_entropy_backward(probs, targets, grad),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_extreme_logits_stay_finite(dtype):
    logits = np.array(
        [[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, -1000.0]], dtype
    )
    targets = np.array([1, 2, 0])
    loss, probs = nb.softmax_cross_entropy(logits, targets)
    assert loss.dtype == probs.dtype == dtype
    np.testing.assert_allclose(loss, [2000.0, np.log(3), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    dlogits = nb.softmax_cross_entropy_backward(probs, targets, np.ones(3, dtype))
    assert np.isfinite(dlogits).all()
    np.testing.assert_allclose(dlogits[0], [1, -1, 0], atol=1e-6)


# --------------------------------------------------------------------- tanh backward
@given(
    shape=st.lists(st.integers(1, 6), min_size=0, max_size=3).map(tuple),
    dtype=float_dtypes,
    seed=seeds,
)
def test_tanh_backward_is_bitwise_numpy(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    y = np.tanh(rng.normal(size=shape)).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    out = nb.tanh_backward(y, g)
    assert out.shape == shape and out.dtype == dtype
    np.testing.assert_array_equal(out, ref.tanh_backward(y, g))
    # a transposed (non-contiguous) gradient takes the NumPy path, same values
    if len(shape) >= 2:
        np.testing.assert_array_equal(nb.tanh_backward(y.T, g.T), ref.tanh_backward(y.T, g.T))


# ------------------------------------------------------------------ bias gradients
@given(
    lead=st.lists(st.integers(1, 40), min_size=1, max_size=3).map(tuple),
    rest=st.lists(st.integers(1, 30), min_size=0, max_size=2).map(tuple),
    dtype=float_dtypes,
    seed=seeds,
)
def test_sum_leading_axes_is_bitwise_numpy(lead, rest, dtype, seed):
    """Column sums in NumPy's own order (row after row), so equal to the bit."""
    rng = np.random.default_rng(seed)
    # magnitudes over six decades, so a different summation order would show
    g = (rng.normal(size=lead + rest) * 10.0 ** rng.uniform(-3, 3, lead + rest)).astype(dtype)
    axes = tuple(range(len(lead)))
    out = nb.sum_leading_axes(g, len(lead))
    assert out.shape == rest and out.dtype == dtype
    np.testing.assert_array_equal(out, g.sum(axis=axes))
    # a non-contiguous gradient takes the NumPy path, same values
    if g.ndim >= 2:
        np.testing.assert_array_equal(nb.sum_leading_axes(g[::2], len(lead)), g[::2].sum(axis=axes))


@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=4), dtype=float_dtypes, seed=seeds)
def test_global_norm_sq_sums_in_float64(sizes, dtype, seed):
    """Σ‖a‖² over arrays of any length (the four running sums' tail included): squares
    of float32/64 values are exact in float64 or nearly, so the only error is the
    float64 summation's, under n·2⁻⁵³ relative for n terms."""
    import math

    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=n).astype(dtype) for n in sizes]
    got = nb.global_norm_sq(arrays)
    exact = math.fsum(float(x) ** 2 for a in arrays for x in a)
    assert got.dtype == np.float64
    assert abs(float(got) - exact) <= 2 * sum(sizes) * 2.0**-53 * exact


@given(n=st.integers(1, 40), m=st.integers(1, 40), dtype=float_dtypes, seed=seeds)
def test_tiled_transpose_is_exact(n, m, dtype, seed):
    """W_hhᵀ for BPTT, in 16×16 tiles: sizes off the tile grid included."""
    from tinygrad_rnn.backends._numba_kernels import transposed

    a = np.random.default_rng(seed).normal(size=(n, m)).astype(dtype)
    out = transposed(a)
    assert out.flags.c_contiguous and out.dtype == dtype
    np.testing.assert_array_equal(out, a.T)


# ----------------------------------------------------------------------- scatter-add
@given(
    V=st.integers(1, 6),
    rest=st.lists(st.integers(1, 4), max_size=2).map(tuple),
    index_shape=st.lists(st.integers(1, 5), min_size=0, max_size=2).map(tuple),
    index_dtype=st.sampled_from([np.int64, np.int32, np.uint8]),
    dtype=float_dtypes,
    seed=seeds,
)
def test_scatter_add_is_bitwise_numpy(V, rest, index_shape, index_dtype, dtype, seed):
    rng = np.random.default_rng(seed)
    index = rng.integers(0, V, index_shape).astype(index_dtype)  # repeats are likely
    values = rng.normal(size=index_shape + rest).astype(dtype)
    out = nb.scatter_add((V,) + rest, index, values)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref.scatter_add((V,) + rest, index, values))


def test_scatter_add_accumulates_repeated_rows():
    values = np.arange(8, dtype=np.float32).reshape(4, 2)
    out = nb.scatter_add((3, 2), np.array([2, 0, 2, 2]), values)
    np.testing.assert_array_equal(out, [[2, 3], [0, 0], [0 + 4 + 6, 1 + 5 + 7]])


@pytest.mark.parametrize(
    "index",
    [
        np.array([-1, 0, -1]),  # negative: NumPy wraps
        (np.array([0, 1, 1]), np.array([1, 0, 0])),  # a tuple of arrays: 2-D scatter
        np.array([True, False, True]),  # a boolean mask
    ],
    ids=["negative", "tuple", "bool"],
)
def test_scatter_add_other_indices_fall_back_to_numpy(index):
    shape = (3, 2)
    values = np.ones(np.zeros(shape)[index].shape, np.float32)
    np.testing.assert_array_equal(
        nb.scatter_add(shape, index, values), ref.scatter_add(shape, index, values)
    )


def test_scatter_add_out_of_range_raises_like_numpy():
    with pytest.raises(IndexError):
        nb.scatter_add((3, 2), np.array([0, 3]), np.ones((2, 2), np.float32))


# ------------------------------------------------- contracts shared by every kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_keep_dtype_never_mutate_and_return_fresh_arrays(dtype):
    for name, call, inputs in kernel_calls(nb, dtype):
        before = [x.copy() for x in inputs]
        result = call(*inputs)
        outputs = result if isinstance(result, tuple) else (result,)
        for x, x0 in zip(inputs, before, strict=True):
            np.testing.assert_array_equal(x, x0, err_msg=f"{name} mutated an input")
        for out in outputs:
            if name != "global_norm_sq":  # that one is float64 by definition
                assert out.dtype == dtype, name  # float32 in -> float32 out, no upcast
            assert not any(np.shares_memory(out, x) for x in inputs), f"{name} aliases an input"
        for a, b in zip(outputs[:-1], outputs[1:], strict=True):
            assert not np.shares_memory(a, b), name


def test_unusual_inputs_fall_back_or_convert_and_match_numpy():
    Zx, H0, W = rnn_inputs(3, 2, 4, np.float32, 1, 0.8)
    # mixed dtypes: the base kernel decides (float64 products, stored in Zx's float32)
    mixed = nb.rnn_forward(Zx, H0, W.astype(np.float64), "tanh")
    expected = ref.rnn_forward(Zx, H0, W.astype(np.float64), "tanh")
    assert mixed.dtype == expected.dtype
    np.testing.assert_array_equal(mixed, expected)
    # non-contiguous and read-only inputs are copied to C order, same values
    Zx_t = np.ascontiguousarray(Zx.transpose(1, 0, 2)).transpose(1, 0, 2)
    W_ro = W.copy()
    W_ro.flags.writeable = False
    got = nb.rnn_forward(Zx_t, H0, W_ro, "relu")
    close_to_ulps(got, ref.rnn_forward(Zx, H0, W, "relu"), terms=12)
    # a broadcast (stride-0) upstream gradient, as from outputs.sum().backward()
    H = ref.rnn_forward(Zx, H0, W, "tanh")
    dH = np.broadcast_to(np.float32(1), H.shape)
    for a, b in zip(
        nb.rnn_backward(dH, H, H0, W, "tanh"), ref.rnn_backward(dH, H, H0, W, "tanh"), strict=True
    ):
        close_to_ulps(a, b, terms=3 * 6)
    # empty batch (0-size) and integer logits: NumPy's path
    empty = np.zeros((3, 0, 4), np.float32)
    assert nb.rnn_forward(empty, H0[:0], W, "tanh").shape == (3, 0, 4)
    loss, _ = nb.softmax_cross_entropy(np.array([[1, 2]]), np.array([1]))
    np.testing.assert_allclose(loss, np.log1p(np.exp(-1.0)))


def test_blas_thread_count_is_restored(monkeypatch):
    from tinygrad_rnn.backends.blas_threads import scipy_blas_threads

    monkeypatch.setattr(nb, "single_thread_below", 1 << 30)  # every GEMM is "small"

    control = scipy_blas_threads()
    if control is None:
        pytest.skip("SciPy's BLAS is not OpenBLAS here")
    before = control[0]()
    control[1](2)  # a known count above 1: a scope that left 1 behind must show
    try:
        if control[0]() != 2:
            pytest.skip("this OpenBLAS cannot run 2 threads")
        nb.rnn_forward(*rnn_inputs(2, 2, 3, np.float64, 0, 1.0), "tanh")
        assert control[0]() == 2
    finally:
        control[1](before)


@pytest.mark.parametrize("nl", ["tanh", "relu"])
def test_the_large_h_step_path_matches_numpy(monkeypatch, nl):
    """Batches with N·h² >= single_thread_below (batch 32 at h >= 256) run the step loop
    with multi-threaded GEMMs instead of the one-kernel recurrence: the same numbers."""
    monkeypatch.setattr(nb, "single_thread_below", 0)  # every size takes the step loop
    rng = np.random.default_rng(0)
    Zx, H0, W = rng.normal(size=(4, 3, 5)), rng.normal(size=(3, 5)), rng.normal(0, 0.5, (5, 5))
    dH = rng.normal(size=(4, 3, 5))
    H = ref.rnn_forward(Zx, H0, W, nl)
    # float64, 5-term dot products over 4 steps: ~1e-15 apart (summation order differs)
    np.testing.assert_allclose(nb.rnn_forward(Zx, H0, W, nl), H, rtol=1e-12, atol=1e-12)
    for got, want in zip(nb.rnn_backward(dH, H, H0, W, nl), ref.rnn_backward(dH, H, H0, W, nl),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_relu_kernel_passes_nan_through_like_np_maximum():
    args = (np.array([[[np.nan, -1.0, 1.0]]]), np.zeros((1, 3)), np.eye(3), "relu")
    np.testing.assert_array_equal(nb.rnn_forward(*args), ref.rnn_forward(*args))


@pytest.mark.parametrize("backend", [ref, nb], ids=["numpy", "numba"])
def test_softmax_cross_entropy_refuses_a_target_past_the_last_class(backend):
    """The compiled kernel would read past the row; the backend checks the range first."""
    with pytest.raises(IndexError):
        backend.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))


# ---------------------------------------------------------- the fused layer end to end
@given(
    T=st.integers(1, 8),
    N=st.integers(1, 5),
    d=st.integers(1, 6),
    h=st.integers(1, 9),
    dtype=float_dtypes,
    nl=nonlinearities,
    tokens=st.booleans(),
    seed=seeds,
)
def test_fused_numba_rnn_layer_matches_composed_numpy(T, N, d, h, dtype, nl, tokens, seed):
    rng = np.random.default_rng(seed)
    state = {
        "W_ih_l0": rng.normal(0, 1 / np.sqrt(d), (d, h)),
        "W_hh_l0": rng.normal(0, 0.9 / np.sqrt(h), (h, h)),
        "b_ih_l0": rng.normal(0, 0.5, h),
    }
    X = rng.integers(0, d, (T, N)) if tokens else rng.normal(size=(T, N, d))
    H0, G = rng.normal(0, 0.5, (N, h)), rng.normal(size=(T, N, h))
    state["b_hh_l0"] = rng.normal(0, 0.5, h)  # PyTorch's second bias, beside b_ih
    results = []
    for backend, fused in (("numba", True), ("numpy", False)):
        rnn = tg.nn.RNN(d, h, nonlinearity=nl, fused=fused, dtype=dtype, backend=backend)
        rnn.load_state_dict(state)
        x = tg.Tensor(X, backend=backend, dtype=None if tokens else dtype, requires_grad=not tokens)
        h0 = tg.Tensor(H0[None], dtype=dtype, backend=backend, requires_grad=True)
        outputs, H_T = rnn(x, h0)
        (outputs * tg.Tensor(G, dtype=dtype, backend=backend)).sum().backward()
        params = (rnn.W_ih_l0, rnn.W_hh_l0, rnn.b_ih_l0, rnn.b_hh_l0)
        grads = [p.grad.numpy() for p in (*params, h0)]
        results.append(
            [outputs.numpy(), H_T.numpy(), *grads] + ([] if tokens else [x.grad.numpy()])
        )
    if nl == "relu":
        # relu' jumps at 0: a pre-activation within rounding of 0 may land on opposite
        # sides in the two backends and legitimately change a gradient entry by O(1).
        Xf = np.eye(d)[X] if tokens else X
        H_prev = np.concatenate([H0[None], results[1][0][:-1]]).astype(np.float64)
        b = state["b_ih_l0"] + state["b_hh_l0"]
        Z = Xf @ state["W_ih_l0"] + H_prev @ state["W_hh_l0"] + b
        assume(np.abs(Z).min() > 1e-3)
    # each step adds a length-(d + h) dot product; gradients also sum T·N rows
    for got, want in zip(*results, strict=True):
        close_to_ulps(got, want, terms=T * (d + h + N))


def test_softmax_cross_entropy_sums_a_million_classes_in_float64():
    """Each float32 exponential is within ~1.2 ulp, and all are positive, so their sum,
    taken in float64, is within ~1.2 ulp of float32 too; log of it and the float32
    rounding of a loss near log(2**20) ≈ 14 keep the loss within 4 ulp relative. A float32
    running sum over 2**20 terms drifts far past that (1.3e-6 relative, measured)."""
    C = 2**20
    logits = np.random.default_rng(0).normal(0, 0.1, (2, C)).astype(np.float32)
    targets = np.array([0, 1])
    loss, probs = nb.softmax_cross_entropy(logits, targets)
    x = logits.astype(np.float64)
    shifted = x - x.max(axis=1, keepdims=True)
    exact = np.log(np.exp(shifted).sum(axis=1)) - shifted[[0, 1], targets]
    np.testing.assert_allclose(loss, exact, rtol=4 * EPS32)
    np.testing.assert_allclose(probs.astype(np.float64).sum(axis=1), 1.0, rtol=4 * EPS32)

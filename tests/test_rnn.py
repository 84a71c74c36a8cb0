"""``tg.nn.RNN``: fused kernel vs composed ops vs a NumPy reference, and gradcheck.

Weights are drawn with std 0.5 (not D2L's 0.01) so the recurrence is genuinely
non-linear and H_{t-1} W_hh matters. Tolerances:

* float64: every path does O(T·(d+h)) roundings of O(1..10) numbers: 1e-9 absolute
  (≫ 1e-13 expected, ≪ any real discrepancy).
* float32: per step a reduction of length d + h, so ``(d+h)·ε32`` relative to the sum
  of the absolute terms (not to the result, which can cancel); an error made at step s
  is carried forward through φ'·W_hh. ``helpers.np_rnn_magnitudes`` propagates those
  absolute sums through the recurrence and BPTT, elementwise; the weight gradients add
  a reduction over all T·N (step, sequence) pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_within_f32, np_rnn, np_rnn_magnitudes
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import rnn_layer_cases, seeds

import tinygrad_rnn as tg
from tinygrad_rnn.nn import functional as F

F64_TOL = 1e-9
STD = 0.5


#: The layer's parameter names -> the book's, as the helpers' NumPy reference calls them
#: (``b_h`` is ``b_ih``; ``b_hh`` is the second bias, added beside it).
BOOK_NAMES = {"W_ih_l0": "W_xh", "W_hh_l0": "W_hh", "b_ih_l0": "b_h", "b_hh_l0": "b_hh"}


def _make(d, h, nonlinearity, fused, dtype, backend, seed):
    tg.manual_seed(seed)  # same parameters for every variant built with this seed
    rnn = tg.nn.RNN(d, h, nonlinearity=nonlinearity, fused=fused, dtype=dtype, backend=backend)
    rnn.reset_parameters(std=STD)  # weights N(0, STD²), biases zero
    return rnn


def _book_params(rnn):
    """The layer's parameters under the book's names, float64, with ``b_h`` the sum of
    both biases (what the forward adds)."""
    p = {BOOK_NAMES[k]: q.numpy().astype(np.float64) for k, q in rnn.named_parameters()}
    p["b_h"] = p["b_h"] + p.pop("b_hh")
    return p


def _assume_off_relu_kink(nonlinearity, X, H0, params, margin):
    """For relu, skip draws with a pre-activation within ``margin`` of 0: there the two
    paths' rounding could pick different sides of the kink, or a finite difference
    straddle it."""
    if nonlinearity == "relu":
        _, Z = np_rnn(X, H0, params["W_xh"], params["W_hh"], params["b_h"], "relu")
        assume(np.abs(Z).min() > margin)


def _run(rnn, X, H0, U, use, backend, dtype):
    """Forward, a loss from outputs and/or H_T with upstream weights U, backward.
    Returns (outputs, H_T, grads by name)."""
    tokens = X.dtype.kind == "i"
    Xt = tg.Tensor(X, backend=backend, dtype=None if tokens else dtype, requires_grad=not tokens)
    H0t = None if H0 is None else tg.Tensor(H0, dtype=dtype, backend=backend, requires_grad=True)
    out, h_n = rnn(Xt, None if H0t is None else H0t[None])
    assert h_n.shape == (1,) + out.shape[1:]
    H_T = h_n[0]
    assert out.dtype == np.dtype(dtype) and H_T.dtype == np.dtype(dtype)
    assert out.backend == backend
    loss = None
    if use in ("outputs", "both"):
        loss = (out * tg.Tensor(U, dtype=dtype, backend=backend)).sum()
    if use in ("H_T", "both"):
        term = (H_T * tg.Tensor(U[-1], dtype=dtype, backend=backend)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    grads = {BOOK_NAMES[k]: p.grad.numpy() for k, p in rnn.named_parameters()}
    if H0t is not None:
        grads["H0"] = H0t.grad.numpy()
    if not tokens:
        grads["X"] = Xt.grad.numpy()
    return out.numpy(), H_T.numpy(), grads


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("given_h0", [True, False], ids=["H0", "default-H0"])
@pytest.mark.parametrize("use", ["outputs", "H_T", "both"])
@given(**rnn_layer_cases())
def test_fused_equals_composed(backend, dtype, nonlinearity, given_h0, use, T, N, d, h, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, N, d))
    H0 = rng.standard_normal((N, h)) if given_h0 else None
    U = rng.standard_normal((T, N, h))
    fused = _make(d, h, nonlinearity, True, dtype, backend, seed)
    composed = _make(d, h, nonlinearity, False, dtype, backend, seed)
    params = _book_params(fused)
    H0_ref = np.zeros((N, h)) if H0 is None else H0
    _assume_off_relu_kink(nonlinearity, X, H0_ref, params, 1e-3)

    res_f = _run(fused, X, H0, U, use, backend, dtype)
    res_c = _run(composed, X, H0, U, use, backend, dtype)

    if dtype == "float64":
        # the independent NumPy reference pins the values down, not just agreement
        H_ref, _ = np_rnn(X, H0_ref, params["W_xh"], params["W_hh"], params["b_h"], nonlinearity)
        np.testing.assert_allclose(res_f[0], H_ref, rtol=F64_TOL, atol=F64_TOL)

    # float32: elementwise bounds from the sums of absolute terms (helpers.np_rnn_magnitudes);
    # each step is a reduction of length d + h plus a few roundings (add, φ), and the
    # weight gradients sum over T·N (step, sequence) pairs
    U_out = U if use in ("outputs", "both") else np.zeros_like(U)
    U_last = U[-1] if use in ("H_T", "both") else np.zeros_like(U[-1])
    mags = np_rnn_magnitudes(
        X, H0_ref, params["W_xh"], params["W_hh"], params["b_h"], nonlinearity, U_out, U_last
    )
    length = d + h + 4 + T * N

    mags["b_hh"] = mags["b_h"]  # the two biases get the same gradient

    def close(a, b, what):
        if dtype == "float64":
            np.testing.assert_allclose(a, b, rtol=F64_TOL, atol=F64_TOL, err_msg=what)
        else:
            assert_within_f32(a, b, mags[what], length, what)

    close(res_f[0], res_c[0], "outputs")
    close(res_f[1], res_c[1], "H_T")
    np.testing.assert_array_equal(res_f[1], res_f[0][-1])  # H_T is the last output
    assert res_f[2].keys() == res_c[2].keys()
    for k in res_f[2]:
        close(res_f[2][k], res_c[2][k], k)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@given(**rnn_layer_cases())
def test_token_ids_equal_one_hot(backend, fused, nonlinearity, T, N, d, h, seed):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, d, (T, N))
    H0 = rng.standard_normal((N, h))
    U = rng.standard_normal((T, N, h))
    one_hot = np.eye(d)[tokens]
    res = []
    for X in (tokens, one_hot):
        rnn = _make(d, h, nonlinearity, fused, "float64", backend, seed)
        if X is tokens:
            params = _book_params(rnn)
            _assume_off_relu_kink(nonlinearity, one_hot, H0, params, 1e-6)
        res.append(_run(rnn, X, H0, U, "both", backend, "float64"))
    (o_t, h_t, g_t), (o_1, h_1, g_1) = res
    np.testing.assert_allclose(o_t, o_1, rtol=F64_TOL, atol=F64_TOL)
    np.testing.assert_allclose(h_t, h_1, rtol=F64_TOL, atol=F64_TOL)
    g_1.pop("X")
    assert g_t.keys() == g_1.keys()
    for k in g_t:
        np.testing.assert_allclose(g_t[k], g_1[k], rtol=F64_TOL, atol=F64_TOL, err_msg=k)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@given(**rnn_layer_cases(T=3, N=2, d=3, h=3))
def test_rnn_gradcheck(backend, fused, nonlinearity, T, N, d, h, seed):
    """All parameters, H0 and X against finite differences (float64, small sizes)."""
    rng = np.random.default_rng(seed)
    rnn = _make(d, h, nonlinearity, fused, "float64", backend, seed)
    X = rng.standard_normal((T, N, d))
    H0 = rng.standard_normal((N, h))
    params = _book_params(rnn)
    b_ih, b_hh = rng.normal(0, STD, h), rng.normal(0, STD, h)  # non-zero biases, so their
    params["b_h"] = b_ih + b_hh                                  # gradient paths are exercised
    # gradcheck's step is 1e-6: a pre-activation 1e-4 from 0 cannot cross the kink
    _assume_off_relu_kink(nonlinearity, X, H0, params, 1e-4)

    def fn(X, H0, W_ih, W_hh, b_ih, b_hh):
        # plain tensors swapped in, past Module.__setattr__ (which wants Parameters)
        vars(rnn).update(W_ih_l0=W_ih, W_hh_l0=W_hh, b_ih_l0=b_ih, b_hh_l0=b_hh)
        out, h_n = rnn(X, H0[None])
        return out.sum(axis=0) * 0.5 + h_n[0].tanh()  # outputs and h_n both reach the loss

    inputs = [
        tg.Tensor(a, dtype="float64", backend=backend, requires_grad=True)
        for a in (X, H0, params["W_xh"], params["W_hh"], b_ih, b_hh)
    ]
    assert tg.gradcheck(fn, inputs, seed=seed % 2**31)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@given(
    T=st.integers(1, 4), N=st.integers(1, 3), v=st.integers(2, 6), h=st.integers(1, 4), seed=seeds
)
def test_char_lm_step_loss_matches_numpy(backend, fused, T, N, v, h, seed):
    """D2L's language-model loss: tokens -> RNN -> Linear -> cross-entropy over all steps."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, v, (T, N))
    Y = rng.integers(0, v, (T, N))
    rnn = _make(v, h, "tanh", fused, "float64", backend, seed)
    head = tg.nn.Linear(h, v, dtype="float64", backend=backend)
    out, _ = rnn(tg.Tensor(X, backend=backend))
    logits = head(out).reshape(-1, v)
    loss = F.cross_entropy(logits, tg.Tensor(Y.reshape(-1), backend=backend))
    p = _book_params(rnn)
    H, _ = np_rnn(np.eye(v)[X], np.zeros((N, h)), p["W_xh"], p["W_hh"], p["b_h"], "tanh")
    L = H.reshape(-1, h) @ head.W.numpy() + head.b.numpy()
    shifted = L - L.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(T * N), Y.reshape(-1)].mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=F64_TOL, atol=F64_TOL)
    loss.backward()
    for k, q in rnn.named_parameters():
        assert q.grad is not None and np.isfinite(q.grad.numpy()).all(), k


@pytest.mark.parametrize("fused", [True, False])
def test_an_empty_batch_runs(fused):
    rnn = tg.nn.RNN(3, 4, fused=fused)
    outputs, h_n = rnn(np.zeros((5, 0), dtype=np.int64))
    assert outputs.shape == (5, 0, 4) and h_n.shape == (1, 0, 4)

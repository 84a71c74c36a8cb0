"""Backend parity: the same float32 program on another backend matches ``numpy``.

Same seed, same data; values and gradients must agree within float32 rounding. A
backend may sum in another order, fuse, use other BLAS or its own ``exp``/``tanh``,
so each result may be off by up to ~K·ε32 times the *sum of the absolute terms*
behind it (K the reduction length, Higham §3.1), which can be much larger than the
result itself when terms cancel. Each test computes those sums elementwise in
float64 from the inputs (``magnitude`` arrays below) and checks
``|other - numpy| ≤ 2·L·ε32·magnitude`` (``helpers.assert_within_f32``).
"""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from helpers import EPS32, assert_within_f32, f32_tol, np_rnn, np_rnn_magnitudes
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import rnn_layer_cases, seeds

import tinygrad_rnn as tg
from tinygrad_rnn.nn import functional as F


def assert_close32(
    actual: tg.Tensor | np.ndarray, expected: tg.Tensor | np.ndarray, lengths, what: str = ""
) -> None:
    """For results with no cancellation (norms, parameters after a few small steps):
    the result's own magnitude (at least 1) bounds the absolute terms."""
    a = actual.numpy() if isinstance(actual, tg.Tensor) else actual
    e = expected.numpy() if isinstance(expected, tg.Tensor) else expected
    assert a.shape == e.shape and a.dtype == e.dtype, what
    scale = float(np.abs(e).max(initial=0.0))
    tol = f32_tol(lengths, scale)
    np.testing.assert_allclose(a, e, rtol=0, atol=tol, err_msg=what)


def run_on(backend: str, program, *arrays):
    """``program`` on float32 tensors (requiring grad) of ``arrays`` on ``backend``:
    returns (output, grads) as NumPy arrays."""
    with tg.use_backend(backend):
        ts = [tg.Tensor(a, requires_grad=True) for a in arrays]
        out = program(*ts)
        assert out.backend == backend and out.dtype == np.float32
        out.backward()
        assert all(t.grad.backend == backend for t in ts)
        return out.numpy(), [t.grad.numpy() for t in ts]


class MLP(tg.nn.Module):
    def __init__(self, d: int, hidden: int, classes: int, backend: str) -> None:
        super().__init__()
        self.l1 = tg.nn.Linear(d, hidden, backend=backend)
        self.l2 = tg.nn.Linear(hidden, classes, backend=backend)

    def forward(self, X):
        return self.l2(self.l1(X).relu())


def _mlp_magnitudes(X, y, params, classes):
    """Sums of absolute terms behind the MLP's loss and gradients (see module docstring).

    An error in a logit moves softmax p_j by at most 2·p_j·max|ΔZ|, hence the factor
    (1 + 2·max A2) on dlogits. Also returns the pre-activations and their bounds, for
    the relu-kink check."""
    W1, b1, W2, b2 = (params[k] for k in ("l1.W", "l1.b", "l2.W", "l2.b"))
    n = X.shape[0]
    Z1 = X @ W1 + b1
    A1 = np.abs(X) @ np.abs(W1) + np.abs(b1)
    H1 = np.maximum(Z1, 0)
    Z2 = H1 @ W2 + b2
    A2 = (np.abs(H1) + A1) @ np.abs(W2) + np.abs(b2)
    shifted = Z2 - Z2.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    lse = Z2.max(axis=1) + np.log(np.exp(shifted).sum(axis=1))
    onehot = np.eye(classes)[y]
    m2 = A2.max(axis=1, keepdims=True)
    D2 = (p + onehot) * (1 + 2 * m2) / n
    dZ1 = (D2 @ np.abs(W2).T) * (Z1 > 0)
    return (
        {
            "loss": np.mean(np.abs(lse) + np.abs(Z2[np.arange(n), y]) + 2 * m2[:, 0]),
            "l2.W": (np.abs(H1) + A1).T @ D2,
            "l2.b": D2.sum(axis=0),
            "l1.W": np.abs(X).T @ dZ1,
            "l1.b": dZ1.sum(axis=0),
            "X": dZ1 @ np.abs(W1).T,
        },
        Z1,
        A1,
    )


@given(
    n=st.integers(1, 8),
    d=st.integers(1, 6),
    hidden=st.integers(1, 8),
    classes=st.integers(2, 5),
    seed=seeds,
)
def test_mlp_loss_and_gradients(other_backend, n, d, hidden, classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, d)).astype(np.float32)
    y = rng.integers(0, classes, n)
    length = d + hidden + classes + n + 4  # the GEMMs, the softmax sum, the batch sum
    b1 = rng.normal(0, 0.5, hidden).astype(np.float32)  # non-zero biases: their paths
    b2 = rng.normal(0, 0.5, classes).astype(np.float32)  # matter too
    results = {}
    for be in ("numpy", other_backend):
        tg.manual_seed(seed)  # the same initial parameters on both
        model = MLP(d, hidden, classes, be)
        model.load_state_dict({**model.state_dict(), "l1.b": b1, "l2.b": b2})
        if be == "numpy":
            params = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
            mags, Z1, A1 = _mlp_magnitudes(X.astype(np.float64), y, params, classes)
            # a pre-activation within rounding of 0 may take either side of relu's kink
            assume(np.all(np.abs(Z1) > 4 * length * EPS32 * A1))
        Xt = tg.Tensor(X, backend=be, requires_grad=True)
        loss = F.cross_entropy(model(Xt), tg.Tensor(y, backend=be))
        loss.backward()
        assert loss.backend == be and model.backend == be
        grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
        grads["X"] = Xt.grad.numpy()
        results[be] = (loss.numpy(), grads)
    (l_ref, g_ref), (l_other, g_other) = results["numpy"], results[other_backend]
    assert_within_f32(l_other, l_ref, mags["loss"], length, "loss")
    assert g_ref.keys() == g_other.keys() == mags.keys() - {"loss"}
    for k in g_ref:
        assert_within_f32(g_other[k], g_ref[k], mags[k], length, k)


@given(data=st.data(), seed=seeds)
def test_indexing_and_embedding(other_backend, data, seed):
    v, h = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((v, h)).astype(np.float32)
    idx = data.draw(
        hnp.arrays(np.int64, (data.draw(st.integers(1, 12)),), elements=st.integers(0, v - 1))
    )  # repeats are likely: the scatter-add must accumulate them
    weights = rng.standard_normal((len(idx), h)).astype(np.float32)

    def program(w):
        rows = F.embedding(tg.Tensor(idx, backend=w.backend), w)
        picked = w[idx[::-1]] * tg.Tensor(weights, backend=w.backend)
        return (rows * picked).sum() + w[1:, ::-1].sum() + w[-1].max()

    out_ref, (g_ref,) = run_on("numpy", program, W)
    out, (g,) = run_on(other_backend, program, W)
    # magnitudes: the absolute value of every term summed into the value / each gradient
    W64, w64 = np.abs(W.astype(np.float64)), np.abs(weights.astype(np.float64))
    rows, picked = W64[idx], W64[idx[::-1]] * w64
    value_mag = (rows * picked).sum() + W64[1:].sum() + W64[-1].max()
    grad_mag = np.ones_like(W64)  # the slice-sum and max contributions (≤ 1 each)
    grad_mag[-1] += 1
    np.add.at(grad_mag, idx, picked)
    np.add.at(grad_mag, idx[::-1], rows * w64)
    length = 2 * len(idx) * h + v * h + 4
    assert_within_f32(out, out_ref, value_mag, length, "value")
    assert_within_f32(g, g_ref, grad_mag, length, "grad")


@given(data=st.data(), seed=seeds)
def test_reductions_and_softmax(other_backend, data, seed):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=3, max_side=5))
    rng = np.random.default_rng(seed)
    A = rng.uniform(-3, 3, shape).astype(np.float32)
    U = rng.standard_normal(shape).astype(np.float32)

    def program(a):
        u = tg.Tensor(U, backend=a.backend)
        s = (F.softmax(a, axis=-1) * u).sum() + (F.log_softmax(a, axis=0) * u).mean()
        return s + a.mean(axis=(0, -1)).tanh().sum() + a.amax(axis=1).sigmoid().sum()

    out_ref, (g_ref,) = run_on("numpy", program, A)
    out, (g,) = run_on(other_backend, program, A)

    a, u = A.astype(np.float64), np.abs(U.astype(np.float64))
    size, k_mean = a.size, shape[0] * shape[-1]
    p = np.exp(a - a.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p0 = np.exp(a - a.max(0, keepdims=True))
    p0 /= p0.sum(0, keepdims=True)
    lse0 = np.log(np.exp(a - a.max(0, keepdims=True)).sum(0, keepdims=True))
    lsm_mag = np.abs(a) + np.abs(a).max(0, keepdims=True) + lse0  # x - max - log Σ
    n_tanh, n_sig = size // k_mean, size // shape[1]
    # tanh of a mean of values ≤ 3 in size: value ≤ 1, argument error ≤ K·ε·3
    value_mag = (p * u).sum() + (lsm_mag * u).sum() / size + 4 * n_tanh + n_sig
    grad_mag = (
        p * (u + (p * u).sum(-1, keepdims=True))  # softmax: p(u - <p, u>)
        + (u + p0 * u.sum(0, keepdims=True)) / size  # log_softmax, then the mean
        + (1 + 2 * 3) / k_mean  # tanh'(mean) / K, tanh' off by ≤ 2·|Δ mean|
        + 0.5  # sigmoid' ≤ 1/4 at the maxima
    )
    length = size + max(shape) + 8
    assert_within_f32(out, out_ref, value_mag, length, "value")
    assert_within_f32(g, g_ref, grad_mag, length, "grad")


#: ``tg.nn.RNN``'s parameter names -> the book's, as ``helpers.np_rnn_magnitudes`` names them.
RNN_MAG_NAMES = {"W_ih_l0": "W_xh", "W_hh_l0": "W_hh", "b_ih_l0": "b_h", "b_hh_l0": "b_h"}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("tokens", [False, True], ids=["float-input", "token-ids"])
@given(**rnn_layer_cases())
def test_rnn(other_backend, fused, nonlinearity, tokens, T, N, d, h, seed):
    rng = np.random.default_rng(seed)
    X = (rng.integers(0, d, (T, N)) if tokens else rng.standard_normal((T, N, d))).astype(
        np.int64 if tokens else np.float32
    )
    H0 = rng.standard_normal((N, h)).astype(np.float32)
    U = rng.standard_normal((T, N, h)).astype(np.float32)
    X_float = np.eye(d)[X] if tokens else X.astype(np.float64)
    length = d + h + 4 + T * N  # per step d + h, φ and adds; weight gradients sum T·N pairs
    results = {}
    for be in ("numpy", other_backend):
        tg.manual_seed(seed)
        rnn = tg.nn.RNN(d, h, nonlinearity=nonlinearity, fused=fused, backend=be)
        rnn.reset_parameters(std=0.5)  # weights N(0, 0.25), biases zero: non-linear recurrence
        if be == "numpy":
            params = {k: v.astype(np.float64) for k, v in rnn.state_dict().items()}
            b_h = params["b_ih_l0"] + params["b_hh_l0"]  # the forward adds both biases
            args = (X_float, H0.astype(np.float64), params["W_ih_l0"], params["W_hh_l0"], b_h)
            mags = np_rnn_magnitudes(*args, nonlinearity, U.astype(np.float64), np.ones((N, h)))
            # the layer's names; both biases get the gradient the book's b_h gets
            for ours, book in RNN_MAG_NAMES.items():
                mags[ours] = mags[book]
            if nonlinearity == "relu":  # off the kink by more than the rounding bound
                _, Z = np_rnn(*args, "relu")
                assume(np.all(np.abs(Z) > 4 * length * EPS32 * mags["outputs"]))
        Xt = tg.Tensor(X, backend=be, requires_grad=not tokens)
        H0t = tg.Tensor(H0, backend=be, requires_grad=True)
        out, h_n = rnn(Xt, H0t[None])
        assert h_n.shape == (1, N, h)
        H_T = h_n[0]
        loss = (out * tg.Tensor(U, backend=be)).sum() + H_T.sum()
        loss.backward()
        grads = {k: p.grad.numpy() for k, p in rnn.named_parameters()}
        grads["H0"] = H0t.grad.numpy()
        if not tokens:
            grads["X"] = Xt.grad.numpy()
        results[be] = {"outputs": out.numpy(), "H_T": H_T.numpy(), **grads}
    ref, other = results["numpy"], results[other_backend]
    assert ref.keys() == other.keys()
    for k in ref:
        assert_within_f32(other[k], ref[k], mags[k], length, k)


@given(seed=seeds, n=st.integers(1, 6))
def test_clip_grad_norm_and_optimizers(other_backend, seed, n):
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((n, 3)).astype(np.float32)
    G = (rng.standard_normal((n, 3)) * 10).astype(np.float32)
    out = {}
    for be in ("numpy", other_backend):
        p = tg.Tensor(P, backend=be, requires_grad=True)
        q = tg.Tensor(P[:1], backend=be, requires_grad=True)
        opt = tg.optim.Adam([p, q], lr=0.01)
        norms = []
        for _ in range(3):
            (p * tg.Tensor(G, backend=be)).sum().backward()
            (q * q).sum().backward()
            norms.append(float(tg.optim.clip_grad_norm([p, q], 1.0)))
            opt.step()
            opt.zero_grad()
        out[be] = (np.array(norms), p.numpy(), q.numpy())
    k = 3 * n + 3
    for a, e in zip(out[other_backend], out["numpy"], strict=True):
        assert_close32(a.astype(np.float32), e.astype(np.float32), [k, k, k])

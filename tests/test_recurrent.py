"""``nn.RNN``, ``nn.GRU``, ``nn.LSTM`` (multi-layer, bidirectional) and the cells:
fused = composed in values and every gradient, gradcheck, the interface's shapes and
errors, inter-layer dropout, and weight exchange with PyTorch.

Tolerance: float64 throughout. Each value is a sum of O(T·L·(d + H)) products of
numbers of magnitude <= 10 (inputs N(0, 1), weights U(±1/√H), gates in [0, 1]), so
the two paths' different summation orders leave differences near 1e-13; 1e-9 is far
above that and far below any real discrepancy (a wrong gate, a missed bias term,
a gradient sent to the wrong step is O(1e-2) or more). The float32 kernels are held
to the reference in ulps by ``test_numba_kernels.py`` / ``test_cupy.py``; PyTorch
(when installed) is held to the same 1e-9 in ``test_torch_oracle.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import seeds

import tinygrad_rnn as tg
from tinygrad_rnn import nn

TOL = 1e-9
KINDS = ["RNN", "RNN-relu", "GRU", "LSTM"]


def make(kind, d, H, fused=True, backend="numpy", seed=0, **kw):
    """A float64 layer of ``kind``, its parameters drawn from ``seed``."""
    tg.manual_seed(seed)
    if kind == "RNN-relu":
        return nn.RNN(d, H, nonlinearity="relu", fused=fused, dtype="float64", backend=backend,
                      **kw)
    return getattr(nn, kind)(d, H, fused=fused, dtype="float64", backend=backend, **kw)


def run(layer, X, hx, U, backend):
    """Forward; a loss weighting output and every state by fixed arrays; backward.
    -> dict of arrays: output, states, and the gradients of parameters, X and hx."""
    lstm = isinstance(layer, nn.LSTM)
    tokens = X.dtype.kind == "i"
    Xt = tg.Tensor(X, backend=backend) if tokens else \
        tg.Tensor(X, dtype="float64", backend=backend, requires_grad=True)
    hxs = None if hx is None else [tg.Tensor(a, dtype="float64", backend=backend,
                                             requires_grad=True) for a in hx]
    out, states = layer(Xt, None if hxs is None else (tuple(hxs) if lstm else hxs[0]))
    states = states if lstm else (states,)
    loss = (out * tg.Tensor(U[0], dtype="float64", backend=backend)).sum()
    for s, u in zip(states, U[1:], strict=False):
        loss = loss + (s * tg.Tensor(u, dtype="float64", backend=backend)).sum()
    layer.zero_grad()
    loss.backward()
    res = {"output": out.numpy()}
    res.update({f"state{i}": s.numpy() for i, s in enumerate(states)})
    res.update({name: p.grad.numpy() for name, p in layer.named_parameters()})
    if not tokens:
        res["dX"] = Xt.grad.numpy()
    for i, h in enumerate(hxs or []):
        res[f"dhx{i}"] = h.grad.numpy()
    return res


def case_arrays(rng, kind, T, N, d, H, L, D, tokens, given_hx, batch_first):
    X = rng.integers(0, d, (T, N)) if tokens else rng.standard_normal((T, N, d))
    if batch_first:
        X = X.swapaxes(0, 1).copy()
    n_states = 2 if kind == "LSTM" else 1
    hx = [rng.standard_normal((D * L, N, H)) for _ in range(n_states)] if given_hx else None
    out_shape = (N, T, D * H) if batch_first else (T, N, D * H)
    U = [rng.standard_normal(out_shape)] + [rng.standard_normal((D * L, N, H))
                                            for _ in range(n_states)]
    return X, hx, U


def assert_same(a, b, what=""):
    assert a.keys() == b.keys(), what
    for k in a:
        assert a[k].shape == b[k].shape, (what, k)
        np.testing.assert_allclose(a[k], b[k], rtol=TOL, atol=TOL, err_msg=f"{what} {k}")


@pytest.mark.parametrize("kind", KINDS)
@given(T=st.integers(1, 4), N=st.integers(1, 3), d=st.integers(1, 4), H=st.integers(1, 4),
       L=st.integers(1, 2), bidirectional=st.booleans(), batch_first=st.booleans(),
       bias=st.booleans(), tokens=st.booleans(), given_hx=st.booleans(), seed=seeds)
def test_fused_equals_composed(backend, kind, T, N, d, H, L, bidirectional, batch_first, bias,
                               tokens, given_hx, seed):
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    X, hx, U = case_arrays(rng, kind, T, N, d, H, L, D, tokens, given_hx, batch_first)
    kw = dict(num_layers=L, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    fused = run(make(kind, d, H, True, backend, seed, **kw), X, hx, U, backend)
    composed = run(make(kind, d, H, False, backend, seed, **kw), X, hx, U, backend)
    assert fused["output"].shape == U[0].shape
    assert fused["state0"].shape == (D * L, N, H)
    # relu: a pre-activation within ~1e-16 of its kink could take different sides in
    # the two paths; with continuous random draws that has probability ~1e-15
    assert_same(fused, composed, f"{kind} fused vs composed")


@pytest.mark.parametrize("kind", KINDS)
@given(T=st.integers(1, 3), N=st.integers(1, 2), d=st.integers(2, 4), H=st.integers(1, 3),
       L=st.integers(1, 2), bidirectional=st.booleans(), seed=seeds)
def test_token_ids_equal_one_hot(backend, kind, T, N, d, H, L, bidirectional, seed):
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    ids, hx, U = case_arrays(rng, kind, T, N, d, H, L, D, True, True, False)
    kw = dict(num_layers=L, bidirectional=bidirectional)
    for fused in (True, False):
        by_ids = run(make(kind, d, H, fused, backend, seed, **kw), ids, hx, U, backend)
        by_one_hot = run(make(kind, d, H, fused, backend, seed, **kw), np.eye(d)[ids], hx, U,
                         backend)
        by_one_hot.pop("dX")
        assert_same(by_ids, by_one_hot, f"fused={fused}")


@pytest.mark.parametrize("kind", ["GRU", "LSTM", "RNN"])
@settings(max_examples=3)  # ~200 parameters, two forward passes each
@given(seed=seeds)
def test_gradcheck(backend, kind, seed):
    """Input, initial state(s) and every parameter of a 2-layer bidirectional fused layer
    against finite differences (the composed path equals it: test_fused_equals_composed)."""
    fused = True
    rng = np.random.default_rng(seed)
    T, N, d, H = 3, 2, 2, 2
    layer = make(kind, d, H, fused, backend, seed, num_layers=2, bidirectional=True)
    names = [n for n, _ in layer.named_parameters()]
    n_states = 2 if kind == "LSTM" else 1

    def fn(X, *rest):
        states, params = rest[:n_states], rest[n_states:]
        vars(layer).update(zip(names, params, strict=True))  # past Module.__setattr__
        out, hn = layer(X, tuple(states) if kind == "LSTM" else states[0])
        hn = hn if kind == "LSTM" else (hn,)
        return out.sum() * 0.5 + sum((s * s).sum() for s in hn)

    arrays = [rng.standard_normal((T, N, d))] + [rng.standard_normal((4, N, H))
                                                 for _ in range(n_states)]
    arrays += [p.numpy() for p in layer.parameters()]
    inputs = [tg.Tensor(a, dtype="float64", backend=backend, requires_grad=True) for a in arrays]
    assert tg.gradcheck(fn, inputs, seed=seed % 2**31)


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_a_5000_step_sequence_fused_equals_composed_without_recursion(kind):
    T = 5000
    X = np.random.default_rng(1).standard_normal((T, 1, 2))
    U = [np.ones((T, 1, 2)), np.ones((1, 1, 2)), np.ones((1, 1, 2))]
    fused = run(make(kind, 2, 2, True), X, None, U, "numpy")
    composed = run(make(kind, 2, 2, False), X, None, U, "numpy")
    assert np.abs(fused["dX"][0]).max() > 0  # the first step gets a gradient
    assert_same(fused, composed)


# ------------------------------------------------------------------- interface
@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_shapes_batch_first_and_unbatched(kind):
    layer = make(kind, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    X = np.random.default_rng(0).standard_normal((5, 7, 3))  # (N, T, d)
    out, hn = layer(X)
    h_n = hn[0] if kind == "LSTM" else hn
    assert out.shape == (5, 7, 8) and h_n.shape == (4, 5, 4)
    if kind == "LSTM":
        assert hn[1].shape == (4, 5, 4)
    # unbatched (T, d): the same as a batch of one, without the N axis
    layer.batch_first = False
    one, hn1 = layer(X[0])
    full, hn_full = layer(X[:1].swapaxes(0, 1))
    assert one.shape == (7, 8)
    np.testing.assert_allclose(one.numpy(), full.numpy()[:, 0], rtol=TOL, atol=TOL)
    h1 = hn1[0] if kind == "LSTM" else hn1
    hf = hn_full[0] if kind == "LSTM" else hn_full
    assert h1.shape == (4, 4)
    np.testing.assert_allclose(h1.numpy(), hf.numpy()[:, 0], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_h_n_orders_layer_times_directions_and_output_is_forward_then_backward(kind):
    """output[..., :H] ends in h_n[last layer, forward] at t = T-1; output[..., H:] is
    the backward direction, whose final state is its output at t = 0."""
    H = 3
    layer = make(kind, 2, H, num_layers=2, bidirectional=True)
    out, hn = layer(np.random.default_rng(0).standard_normal((4, 2, 2)))
    h_n = (hn[0] if kind == "LSTM" else hn).numpy()
    out = out.numpy()
    np.testing.assert_array_equal(h_n[2], out[-1, :, :H])  # layer 1, forward
    np.testing.assert_array_equal(h_n[3], out[0, :, H:])   # layer 1, backward


def test_pytorch_attributes_and_positional_order():
    rnn = nn.RNN(3, 4, 2, "relu", False, True, 0.25, True)
    assert (rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.nonlinearity, rnn.bias,
            rnn.batch_first, rnn.dropout, rnn.bidirectional) == (3, 4, 2, "relu", False, True,
                                                                 0.25, True)
    gru = nn.GRU(3, 4, 2, False, True, 0.0, True)
    assert (gru.num_layers, gru.bias, gru.batch_first, gru.bidirectional) == (2, False, True,
                                                                             True)
    assert [n for n, _ in nn.LSTM(3, 4, 2).named_parameters()] == [
        "W_ih_l0", "W_hh_l0", "b_ih_l0", "b_hh_l0", "W_ih_l1", "W_hh_l1", "b_ih_l1", "b_hh_l1"]
    assert nn.LSTM(3, 4).W_ih_l0.shape == (3, 16) and nn.GRU(3, 4).W_hh_l0.shape == (4, 12)
    assert nn.GRU(3, 4, bidirectional=True).W_ih_l0_reverse.shape == (3, 12)
    assert nn.RNN(3, 4, 2, bidirectional=True).W_ih_l1.shape == (8, 4)


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_default_init_is_pytorch_uniform(kind):
    H = 64
    layer = getattr(nn, kind)(32, H)
    k = 1 / np.sqrt(H)
    for name, p in layer.named_parameters():
        a = p.numpy()
        assert np.abs(a).max() <= k, name
        # std of U(-k, k) is k/√3; the sample std of n draws is within 5 standard errors
        # (k/√3 · 0.9/√n for a uniform's fourth moment) but for chance 1e-6
        n = a.size
        assert abs(a.std() - k / np.sqrt(3)) < 5 * 0.9 * k / np.sqrt(3) / np.sqrt(n), name
    layer.reset_parameters(std=0.01)
    assert (layer.b_ih_l0.numpy() == 0).all() and (layer.b_hh_l0.numpy() == 0).all()
    w = layer.W_ih_l0.numpy()
    assert abs(w.std() / 0.01 - 1) < 5 / np.sqrt(2 * w.size)


def test_dropout_between_layers_only_in_training():
    tg.manual_seed(0)
    lstm = nn.LSTM(3, 5, 2, dropout=0.5, dtype="float64")
    X = np.random.default_rng(0).standard_normal((4, 2, 3))
    out1, (h1, c1) = lstm(X)
    out2, (h2, c2) = lstm(X)
    assert not np.allclose(out1.numpy(), out2.numpy())  # a fresh mask per call
    lstm.eval()
    out_e, (h_e, c_e) = lstm(X)
    out_e2, _ = lstm(X)
    np.testing.assert_array_equal(out_e.numpy(), out_e2.numpy())
    # the first layer's states come before any dropout: the same in training and eval
    np.testing.assert_array_equal(h1.numpy()[0], h_e.numpy()[0])
    np.testing.assert_array_equal(c1.numpy()[0], c_e.numpy()[0])
    assert lstm.training is False and lstm.train().training is True


def test_dropout_module_and_function():
    x = tg.Tensor(np.ones((200, 500)), requires_grad=True)
    drop = nn.Dropout(0.3)
    assert drop.training
    y = drop(x)
    a = y.numpy()
    kept = a != 0
    assert y.dtype == np.float32
    np.testing.assert_array_equal(a[kept], np.float32(1) * np.float32(1 / 0.7))
    # the fraction dropped of 1e5 draws: within 5 standard errors of 0.3
    assert abs(1 - kept.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / a.size)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), a)  # gradient = mask · scale
    assert not np.array_equal(drop(x).numpy(), a)
    drop.eval()
    assert drop(x) is x
    assert (nn.functional.dropout(x, 1.0).numpy() == 0).all()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_embedding_accumulates_repeated_ids():
    emb = nn.Embedding(5, 3, dtype="float64")
    ids = np.array([[1, 1], [4, 1]])
    out = emb(ids)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[ids])
    out.sum().backward()
    g = emb.weight.grad.numpy()
    np.testing.assert_array_equal(g[:, 0], [0, 3, 0, 0, 1])
    with pytest.raises(IndexError, match="out of range"):
        emb(np.array([5]))


# ------------------------------------------------------------------------- cells
@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_equals_one_step_of_the_layer(kind, bias):
    cell = getattr(nn, kind + "Cell")(3, 4, bias, dtype="float64")
    layer = getattr(nn, kind)(3, 4, bias=bias, dtype="float64")
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3))
    h = rng.standard_normal((2, 4))
    c = rng.standard_normal((2, 4))
    hx = (tg.Tensor(h, dtype="float64"), tg.Tensor(c, dtype="float64"))
    if kind == "LSTM":
        h1, c1 = cell(x, hx)
        _, (h_n, c_n) = layer(x[None], (hx[0][None], hx[1][None]))
        np.testing.assert_allclose(c1.numpy(), c_n.numpy()[0], rtol=TOL, atol=TOL)
    else:
        h1 = cell(x, hx[0])
        _, h_n = layer(x[None], hx[0][None])
    np.testing.assert_allclose(h1.numpy(), h_n.numpy()[0], rtol=TOL, atol=TOL)
    # unbatched and with the default zero state
    one = cell(x[0])
    one = one[0] if kind == "LSTM" else one
    batch = cell(x[:1])
    batch = batch[0] if kind == "LSTM" else batch
    assert one.shape == (4,)
    np.testing.assert_array_equal(one.numpy(), batch.numpy()[0])


def test_cell_errors():
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        nn.LSTMCell(3, 4)(np.zeros((2, 3), np.float32), tg.Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        nn.GRUCell(3, 4)(np.zeros((2, 3), np.float32), tg.Tensor(np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        nn.RNNCell(3, 4)(np.zeros((2, 5), np.float32))


# ------------------------------------------------------------------- bad input
def test_bad_arguments_get_one_clear_error():
    with pytest.raises(ValueError, match="num_layers must be at least 1"):
        nn.GRU(3, 4, 0)
    with pytest.raises(TypeError, match="nonlinearity='relu'"):
        nn.RNN(3, 4, "relu")
    with pytest.raises(TypeError, match="num_layers must be an int"):
        nn.LSTM(3, 4, 1.5)
    for p in (-0.1, 1.0, float("nan"), "0.5"):
        with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
            nn.LSTM(3, 4, 2, dropout=p)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        nn.GRU(3, 2.5)
    with pytest.raises(ValueError, match="input_size must be a positive integer"):
        nn.LSTM(0, 4)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.warns(UserWarning, match="no effect with num_layers=1"):
        nn.GRU(3, 4, dropout=0.2)


def test_bad_states_and_inputs_get_one_clear_error():
    lstm = nn.LSTM(3, 4, 2, bidirectional=True)
    X = np.zeros((5, 2, 3), np.float32)
    h = tg.Tensor(np.zeros((4, 2, 4)))
    with pytest.raises(TypeError, match=r"tuple \(h0, c0\).*\(4, 2, 4\)"):
        lstm(X, h)
    with pytest.raises(ValueError, match=r"c0 must have shape \(4, 2, 4\)"):
        lstm(X, (h, tg.Tensor(np.zeros((2, 2, 4)))))
    gru = nn.GRU(3, 4)
    with pytest.raises(ValueError, match=r"hx must have shape \(1, 2, 4\)"):
        gru(X, tg.Tensor(np.zeros((2, 4))))
    with pytest.raises(TypeError, match="hx is float64 but the weights are float32"):
        gru(X, tg.Tensor(np.zeros((1, 2, 4)), dtype="float64"))
    with pytest.raises(TypeError, match="input is float64 but the weights are float32"):
        gru(tg.Tensor(X, dtype="float64"))
    with pytest.raises(ValueError, match=r"input must have shape \(T, N, 3\)"):
        gru(np.zeros((5, 2, 2), np.float32))
    with pytest.raises(IndexError, match=r"token ids out of range.*\[0, 2\]"):
        gru(np.array([[0, 3]]))
    with pytest.raises(ValueError, match="no time steps"):
        gru(np.zeros((0, 2, 3), np.float32))


# ------------------------------------------------------------ PyTorch's names
@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_torch_state_dict_round_trips_exactly(kind):
    a = getattr(nn, kind)(3, 4, 2, bidirectional=True)
    sd = a.torch_state_dict()
    G = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    assert list(sd)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert list(sd)[4] == "weight_ih_l0_reverse" and len(sd) == 16
    assert sd["weight_ih_l1"].shape == (G * 4, 8) and sd["weight_ih_l1"].flags.c_contiguous
    np.testing.assert_array_equal(sd["weight_hh_l1_reverse"], a.W_hh_l1_reverse.numpy().T)
    b = getattr(nn, kind)(3, 4, 2, bidirectional=True)
    b.load_torch_state_dict(sd)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    assert all(v is None for v in a.torch_state_dict(grad=True).values())
    with pytest.raises(KeyError, match="missing"):
        b.load_torch_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l1"})
    with pytest.raises(KeyError, match="unexpected"):
        b.load_torch_state_dict({**sd, "weight_ih_l2": sd["weight_ih_l1"]})
    with pytest.raises(ValueError, match="weight_ih_l0.*shape"):
        b.load_torch_state_dict({**sd, "weight_ih_l0": sd["weight_ih_l0"].T})

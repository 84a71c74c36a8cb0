"""The layers of issue 20: ``Identity``, ``Flatten``, the activation modules,
``Softmax``/``LogSoftmax`` and ``LayerNorm``, against torch.nn's, with parity and
finite-difference gradients for ``LayerNorm``."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_gradients
from hypothesis import given, settings
from strategies import seeds

import tinygrad_rnn as tg

X = np.random.default_rng(0).normal(0, 2, (2, 3, 4))


@pytest.mark.parametrize("name,args,kwargs", [
    ("Identity", (3,), {"unused": 1}),
    ("Flatten", (), {}),
    ("Flatten", (0, 1), {}),
    ("Sigmoid", (), {}),
    ("GELU", (), {}),
    ("GELU", (), {"approximate": "tanh"}),
    ("SiLU", (), {}),
    ("LeakyReLU", (0.2,), {}),
    ("LeakyReLU", (), {"negative_slope": 0.05}),
    ("ELU", (), {"alpha": 0.5}),
    ("Softplus", (), {"beta": 2.0}),
    ("Softmax", (), {"dim": 1}),
    ("LogSoftmax", (-1,), {}),
    ("Softmax", (), {"dim": -1}),
])
def test_modules_against_torch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    ours_m = getattr(tg.nn, name)(*args, **kwargs)
    theirs_m = getattr(torch.nn, name)(*args, **kwargs)
    x = tg.Tensor(X, dtype=np.float64, requires_grad=True)
    xt = torch.tensor(X, requires_grad=True)
    out, ref = ours_m(x), theirs_m(xt)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-14, atol=1e-15)
    u = np.random.default_rng(1).standard_normal(out.shape)
    if name == "Identity":
        assert out is x
        return
    out.backward(u)
    ref.backward(torch.tensor(u))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-13, atol=1e-14)
    assert repr(ours_m).startswith(name)


def test_softmax_dim_none_is_the_last_dim():
    """A documented difference: torch's deprecated implicit dim is 0 for a 3-d input."""
    x = tg.Tensor(X)
    np.testing.assert_array_equal(tg.nn.Softmax()(x).numpy(), tg.nn.Softmax(-1)(x).numpy())
    np.testing.assert_array_equal(tg.nn.functional.log_softmax(x).numpy(),
                                  tg.nn.functional.log_softmax(x, dim=2).numpy())
    np.testing.assert_array_equal(tg.nn.functional.softmax(x, axis=1).numpy(),
                                  tg.nn.functional.softmax(x, dim=1).numpy())
    assert tg.nn.functional.softmax(tg.Tensor([1, 2]), 0, dtype="float64").dtype == np.float64
    with pytest.raises(TypeError, match="dim or axis"):
        tg.nn.functional.softmax(x, 1, axis=1)


def test_inplace_flag_computes_out_of_place():
    """``inplace=True`` is accepted (D2L-style code passes it) and gives the same values;
    the input is left as it was (the graph records no in-place ops: a documented
    difference)."""
    x = tg.Tensor([-1.0, 2.0])
    out = tg.nn.LeakyReLU(0.5, inplace=True)(x)
    np.testing.assert_array_equal(out.numpy(), [-0.5, 2.0])
    np.testing.assert_array_equal(x.numpy(), [-1.0, 2.0])


@pytest.mark.parametrize("shape,kwargs", [((4,), {}), ((3, 4), {"eps": 1e-3}),
                                          (4, {"bias": False}),
                                          ((4,), {"elementwise_affine": False})])
def test_layer_norm_against_torch(shape, kwargs):
    torch = pytest.importorskip("torch")
    ours, theirs = tg.nn.LayerNorm(shape, dtype=np.float64, **kwargs), torch.nn.LayerNorm(
        shape, dtype=torch.float64, **kwargs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    rng = np.random.default_rng(2)
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        v = rng.normal(size=p.shape)
        p.data[...] = v
        with torch.no_grad():
            q.copy_(torch.tensor(v))
    x = tg.Tensor(X, dtype=np.float64, requires_grad=True)
    xt = torch.tensor(X, requires_grad=True)
    out, ref = ours(x), theirs(xt)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-10)


@settings(max_examples=8)
@given(seed=seeds)
def test_layer_norm_finite_differences(seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=4)]
    check_gradients(lambda x, w, b: tg.nn.functional.layer_norm(x, 4, w, b), arrays,
                    "numpy", seed, use_gradcheck=False)


def test_layer_norm_parity(other_backend):
    outs = []
    for be in ("numpy", other_backend):
        ln = tg.nn.LayerNorm(4, backend=be)
        x = tg.Tensor(X.astype(np.float32), requires_grad=True, backend=be)
        y = ln(x)
        (y * y).sum().backward()
        outs.append((y.numpy(), x.grad.numpy(), ln.weight.grad.numpy()))
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_sequential_mlp_with_new_layers_trains():
    """Flatten -> Linear -> GELU -> LayerNorm -> Linear, CrossEntropyLoss: loss falls."""
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Flatten(), tg.nn.Linear(6, 8), tg.nn.GELU(),
                             tg.nn.LayerNorm(8), tg.nn.Linear(8, 3))
    rng = np.random.default_rng(0)
    X_, y = rng.normal(size=(16, 2, 3)).astype(np.float32), rng.integers(0, 3, 16)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = tg.nn.CrossEntropyLoss(label_smoothing=0.05)
    losses = []
    for _ in range(30):
        loss = loss_fn(model(tg.Tensor(X_)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("call,error,match", [
    (lambda: tg.nn.GELU("fast"), ValueError, "approximate"),
    (lambda: tg.nn.LeakyReLU("a"), TypeError, "negative_slope"),
    (lambda: tg.nn.LeakyReLU(inplace=1), TypeError, "inplace"),
    (lambda: tg.nn.Softmax(3)(tg.Tensor(X)), IndexError, "out of range"),
    (lambda: tg.nn.LayerNorm(0), ValueError, "positive"),
    (lambda: tg.nn.LayerNorm(4, eps=-1.0), ValueError, "eps"),
    (lambda: tg.nn.LayerNorm(5)(tg.Tensor(X)), ValueError, "normalized_shape"),
    (lambda: tg.nn.Flatten(0, 5)(tg.Tensor(X)), IndexError, "out of range"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()

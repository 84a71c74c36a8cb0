"""Losses of issue 20 beyond the op table (``op_cases.py``): cross_entropy's and
nll_loss's options against torch over drawn cases, the loss modules, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_gradients
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import seeds

import tinygrad_rnn as tg
from tinygrad_rnn.nn import functional as F


@st.composite
def ce_cases(draw):
    """A cross_entropy call: logits of shape (N, C) or (N, C, d), targets with some
    ignored, and the options drawn."""
    N, C = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    extra = draw(st.sampled_from([(), (2,)]))
    rng = np.random.default_rng(draw(seeds))
    logits = rng.normal(0, 2, (N, C) + extra)
    ignore = draw(st.sampled_from([-100, 0, 1]))
    targets = rng.integers(0, C, (N,) + extra)
    targets[rng.random(targets.shape) < 0.3] = ignore
    kw = dict(reduction=draw(st.sampled_from(["mean", "sum", "none"])),
              label_smoothing=draw(st.sampled_from([0.0, 0.25])), ignore_index=ignore)
    weight = rng.uniform(0.5, 2, C) if draw(st.booleans()) else None
    return logits, targets, weight, kw


@settings(max_examples=30)
@given(case=ce_cases())
def test_cross_entropy_options_against_torch(case):
    torch = pytest.importorskip("torch")
    logits, targets, weight, kw = case
    if kw["reduction"] == "mean" and np.all(targets == kw["ignore_index"]):
        return  # 0 / 0: NaN both sides, tested apart
    x = tg.Tensor(logits, dtype=np.float64, requires_grad=True)
    w = None if weight is None else tg.Tensor(weight, dtype=np.float64)
    out = F.cross_entropy(x, tg.Tensor(targets), w, **kw)
    xt = torch.tensor(logits, requires_grad=True)
    wt = None if weight is None else torch.tensor(weight)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(targets), wt, **kw)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    u = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(u)
    ref.backward(torch.tensor(u))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    # and nll_loss of log_softmax is cross_entropy without smoothing
    if kw["label_smoothing"] == 0:
        nll = F.nll_loss(F.log_softmax(x, 1), tg.Tensor(targets), w,
                         ignore_index=kw["ignore_index"], reduction=kw["reduction"])
        np.testing.assert_allclose(nll.numpy(), out.numpy(), rtol=1e-12, atol=1e-12)


@settings(max_examples=8)
@given(case=ce_cases())
def test_cross_entropy_options_finite_differences(case):
    logits, targets, weight, kw = case
    if kw["reduction"] == "mean" and np.all(targets == kw["ignore_index"]):
        return
    w = None if weight is None else tg.Tensor(weight, dtype=np.float64)
    check_gradients(lambda x: F.cross_entropy(x, tg.Tensor(targets), w, **kw), [logits],
                    "numpy", 0, use_gradcheck=False)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_default_path_values_unchanged(backend, reduction):
    """The fused kernel's value and gradient are what the composed path gives (the same
    mathematics), on every backend: the fast path is a pure speed-up."""
    rng = np.random.default_rng(1)
    logits, targets = rng.normal(0, 3, (6, 5)).astype(np.float32), rng.integers(0, 5, 6)
    x1 = tg.Tensor(logits, requires_grad=True, backend=backend)
    x2 = tg.Tensor(logits, requires_grad=True, backend=backend)
    fused = F.cross_entropy(x1, targets, reduction=reduction)
    composed = F.cross_entropy(x2, targets, reduction=reduction, label_smoothing=0.0,
                               weight=tg.Tensor(np.ones(5, np.float32), backend=backend))
    assert type(fused._ctx).__name__ == "SoftmaxCrossEntropy"
    assert type(composed._ctx).__name__ != "SoftmaxCrossEntropy"
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=2e-6, atol=2e-6)
    fused.sum().backward()
    composed.sum().backward()
    np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=2e-6, atol=2e-6)


def test_legacy_size_average_and_reduce_as_torch():
    torch = pytest.importorskip("torch")
    logits, targets = np.random.default_rng(2).normal(size=(3, 4)), np.array([0, 3, 1])
    for size_average, reduce in [(False, None), (None, False), (True, True), (False, True)]:
        ours = F.cross_entropy(tg.Tensor(logits, dtype=np.float64), targets,
                               size_average=size_average, reduce=reduce)
        with pytest.warns(UserWarning):
            theirs = torch.nn.functional.cross_entropy(
                torch.tensor(logits), torch.tensor(targets), size_average=size_average,
                reduce=reduce)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


# --------------------------------------------------------------------- modules
@pytest.mark.parametrize("name,kwargs,make_target", [
    ("CrossEntropyLoss", {}, lambda rng: rng.integers(0, 3, 4)),
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "reduction": "sum", "ignore_index": 1},
     lambda rng: rng.integers(0, 3, 4)),
    ("NLLLoss", {"reduction": "none"}, lambda rng: rng.integers(0, 3, 4)),
    ("MSELoss", {}, lambda rng: rng.normal(size=(4, 3))),
    ("L1Loss", {"reduction": "sum"}, lambda rng: rng.normal(size=(4, 3))),
    ("BCELoss", {}, lambda rng: rng.uniform(0, 1, (4, 3))),
    ("BCEWithLogitsLoss", {}, lambda rng: rng.uniform(0, 1, (4, 3))),
])
def test_loss_modules_against_torch(name, kwargs, make_target):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.uniform(0.05, 0.95, (4, 3)) if name == "BCELoss" else rng.normal(size=(4, 3))
    t = make_target(rng)
    ours = getattr(tg.nn, name)(**kwargs)(tg.Tensor(x, dtype=np.float64),
                                          tg.Tensor(t, dtype=t.dtype))
    theirs = getattr(torch.nn, name)(**kwargs)(torch.tensor(x), torch.tensor(t))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)
    assert f"reduction={kwargs.get('reduction', 'mean')!r}" in repr(getattr(tg.nn, name)(**kwargs))


def test_weighted_loss_modules_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, t, w = rng.normal(size=(5, 3)), rng.integers(0, 3, 5), rng.uniform(0.5, 2, 3)
    ours = tg.nn.CrossEntropyLoss(weight=tg.Tensor(w, dtype=np.float64))(
        tg.Tensor(x, dtype=np.float64), t)
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w))(torch.tensor(x), torch.tensor(t))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    y = rng.uniform(0, 1, (5, 3))
    ours = tg.nn.BCEWithLogitsLoss(pos_weight=tg.Tensor(w, dtype=np.float64))(
        tg.Tensor(x, dtype=np.float64), tg.Tensor(y, dtype=np.float64))
    theirs = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w))(torch.tensor(x),
                                                                     torch.tensor(y))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_one_hot_as_torch():
    torch = pytest.importorskip("torch")
    for data, n in [([0, 3, 1], -1), ([[1, 0], [2, 2]], 4), ([], 3)]:
        a = np.asarray(data, dtype=np.int64)
        ours = F.one_hot(tg.Tensor(a), n)
        theirs = torch.nn.functional.one_hot(torch.tensor(a), n)
        assert ours.dtype == np.int64 and ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert F.one_hot([1], 2, "float32").dtype == np.float32  # the dtype extension


# --------------------------------------------------------------------- bad input
L = tg.Tensor(np.zeros((3, 4)), requires_grad=True)


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.cross_entropy(L, [0, 1, 2], reduction="avg"), ValueError, "reduction must be"),
    (lambda: F.cross_entropy(L, [0, 1, 2], label_smoothing=1.5), ValueError, "between 0.0"),
    (lambda: F.cross_entropy(L, [0, 1, 2], label_smoothing="a"), TypeError, "number"),
    (lambda: F.cross_entropy(L, [0, 1, 2], "mean"), TypeError, "weight as a Tensor"),
    (lambda: F.cross_entropy(L, [0, 1, 2], tg.Tensor(np.ones(3))), ValueError,
     r"weight must have shape \(4,\)"),
    (lambda: F.cross_entropy(L, [0, 1, 2], tg.Tensor([1, 1, 1, 1])), TypeError,
     "weight must be a float"),
    (lambda: F.cross_entropy(L, [0, -100, 7]), IndexError, "target 7"),
    (lambda: F.cross_entropy(L, [0, 1, 2], ignore_index=1.5), TypeError, "ignore_index"),
    (lambda: F.cross_entropy(L, tg.Tensor(np.zeros((3, 3)))), TypeError, "probabilities"),
    (lambda: F.cross_entropy(tg.Tensor(0.0), [0]), ValueError, "0-d"),
    (lambda: F.cross_entropy(L, [0, 1, 2], size_average=1), TypeError, "size_average"),
    (lambda: F.nll_loss(L, [0, 1]), ValueError, "targets of shape"),
    (lambda: F.nll_loss(L, [0, 1, 4]), IndexError, "target 4"),
    (lambda: F.nll_loss(tg.Tensor([[1, 2]]), [0]), TypeError, "float"),
    (lambda: F.nll_loss(L, [0.0, 1.0, 2.0]), TypeError, "integer"),
    (lambda: F.l1_loss(L, np.zeros(5)), ValueError, "broadcast"),
    (lambda: F.l1_loss([1.0], L), TypeError, "Tensor"),
    (lambda: F.binary_cross_entropy(L + 2, L), ValueError, "input should be between 0 and 1"),
    (lambda: F.binary_cross_entropy(L, L + 2), ValueError, "target should be between"),
    (lambda: F.binary_cross_entropy(L, np.zeros(4)), ValueError, "input's shape"),
    (lambda: F.binary_cross_entropy_with_logits(L, L, pos_weight=tg.Tensor(np.ones(5))),
     ValueError, "broadcast"),
    (lambda: F.binary_cross_entropy_with_logits(L, L, pos_weight=tg.Tensor(np.ones((2, 3, 4)))),
     ValueError, "pos_weight of shape"),
    (lambda: F.one_hot(tg.Tensor(np.zeros(0, np.int64))), ValueError, "empty"),
    (lambda: F.one_hot(tg.Tensor([0.5])), TypeError, "integer"),
    (lambda: F.one_hot(tg.Tensor([3]), 2), IndexError, "out of range"),
    (lambda: F.one_hot(tg.Tensor([1]), -2), ValueError, "num_classes"),
    (lambda: tg.nn.CrossEntropyLoss(weight=[1.0]), TypeError, "weight must be a Tensor"),
    (lambda: tg.nn.MSELoss(reduction="all"), ValueError, "reduction"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()

"""Every recurrent layer and cell against PyTorch (skipped where torch is not installed):
the same weights through ``torch_state_dict``, the same input and state, the same loss;
outputs, final states and every gradient agree.

float64 on both sides: the two libraries sum in different orders, leaving
differences near 1e-13 (see ``test_recurrent.py``'s tolerance note); 1e-9 catches any
real difference of maths, gate order, bias placement or gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn

torch = pytest.importorskip("torch")

TOL = 1e-9
CASES = [(kind, L, bidi, batch_first, bias)
         for kind in ("RNN", "RNN-relu", "GRU", "LSTM")
         for L, bidi, batch_first, bias in ((1, False, False, True), (2, True, False, True),
                                            (2, False, True, False), (1, True, True, True))]


def layers(kind, d, H, L, bidi, batch_first, bias, fused, backend):
    name = "RNN" if kind.startswith("RNN") else kind
    kw = dict(num_layers=L, bidirectional=bidi, batch_first=batch_first, bias=bias)
    extra = {"nonlinearity": "relu"} if kind == "RNN-relu" else {}
    ours = getattr(nn, name)(d, H, **kw, **extra, fused=fused, dtype="float64", backend=backend)
    theirs = getattr(torch.nn, name)(d, H, **kw, **extra, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.torch_state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize(("kind", "L", "bidi", "batch_first", "bias"), CASES)
def test_layer_matches_torch(backend, kind, L, bidi, batch_first, bias, fused):
    T, N, d, H = 5, 3, 4, 3
    D = 2 if bidi else 1
    ours, theirs = layers(kind, d, H, L, bidi, batch_first, bias, fused, backend)
    assert list(ours.torch_state_dict()) == list(theirs.state_dict())  # keys and order
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, T, d) if batch_first else (T, N, d))
    n_states = 2 if kind == "LSTM" else 1
    hx = [rng.standard_normal((D * L, N, H)) for _ in range(n_states)]
    U = rng.standard_normal((N, T, D * H) if batch_first else (T, N, D * H))
    V = [rng.standard_normal((D * L, N, H)) for _ in range(n_states)]

    Xt = tg.Tensor(X, dtype="float64", backend=backend, requires_grad=True)
    hxt = [tg.Tensor(a, dtype="float64", backend=backend, requires_grad=True) for a in hx]
    out, st = ours(Xt, tuple(hxt) if kind == "LSTM" else hxt[0])
    st = st if kind == "LSTM" else (st,)
    loss = (out * tg.Tensor(U, dtype="float64", backend=backend)).sum()
    for s, v in zip(st, V, strict=True):
        loss = loss + (s * tg.Tensor(v, dtype="float64", backend=backend)).sum()
    loss.backward()

    Xq = torch.tensor(X, requires_grad=True)
    hxq = [torch.tensor(a, requires_grad=True) for a in hx]
    outq, stq = theirs(Xq, tuple(hxq) if kind == "LSTM" else hxq[0])
    stq = stq if kind == "LSTM" else (stq,)
    lossq = (outq * torch.from_numpy(U)).sum()
    for s, v in zip(stq, V, strict=True):
        lossq = lossq + (s * torch.from_numpy(v)).sum()
    lossq.backward()

    close = lambda a, b, what: np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL,  # noqa: E731
                                                           err_msg=what)
    close(out.numpy(), outq.detach().numpy(), "output")
    for i, (s, q) in enumerate(zip(st, stq, strict=True)):
        close(s.numpy(), q.detach().numpy(), f"state {i}")
    close(Xt.grad.numpy(), Xq.grad.numpy(), "d input")
    for i, (a, q) in enumerate(zip(hxt, hxq, strict=True)):
        close(a.grad.numpy(), q.grad.numpy(), f"d hx {i}")
    grads = ours.torch_state_dict(grad=True)
    for name, p in theirs.named_parameters():
        close(grads[name], p.grad.numpy(), f"d {name}")


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_cell_matches_torch(kind):
    ours = getattr(nn, kind + "Cell")(4, 3, dtype="float64")
    theirs = getattr(torch.nn, kind + "Cell")(4, 3, dtype=torch.float64)
    sd = ours.torch_state_dict()
    assert list(sd) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    rng = np.random.default_rng(0)
    x, h, c = rng.standard_normal((2, 4)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    hx = (tg.Tensor(h, dtype="float64"), tg.Tensor(c, dtype="float64"))
    hq = (torch.from_numpy(h), torch.from_numpy(c))
    got = ours(x, hx if kind == "LSTM" else hx[0])
    want = theirs(torch.from_numpy(x), hq if kind == "LSTM" else hq[0])
    got, want = (got, want) if kind == "LSTM" else ((got,), (want,))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=TOL, atol=TOL)


def test_torch_weights_load_into_ours():
    """The other direction: torch's own initial weights, loaded by name, give torch's output."""
    torch.manual_seed(0)
    theirs = torch.nn.GRU(3, 4, 2, bidirectional=True, dtype=torch.float64)
    ours = nn.GRU(3, 4, 2, bidirectional=True, dtype="float64")
    ours.load_torch_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    X = np.random.default_rng(0).standard_normal((6, 2, 3))
    np.testing.assert_allclose(ours(X)[0].numpy(), theirs(torch.from_numpy(X))[0].detach().numpy(),
                               rtol=TOL, atol=TOL)

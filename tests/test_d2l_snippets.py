"""D2L's PyTorch code (chapters 2-9), run with only the import changed.

Each test is a passage of the book as written for PyTorch, with ``import torch`` turned
into ``import tinygrad_rnn as torch`` (and ``from torch import nn`` into ``from
tinygrad_rnn import nn``); its values are checked against NumPy arithmetic of the same
data, or against the identity the book states. What is not here is in
``docs/from-pytorch.md``.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import tinygrad_rnn as torch
from tinygrad_rnn import nn
from tinygrad_rnn.nn import functional as F


def test_2_1_data_manipulation():
    x = torch.arange(12, dtype=torch.float32)
    assert x.numel() == 12 and x.shape == (12,)
    X = x.reshape(3, 4)
    assert X.shape == (3, 4) and x.reshape(-1, 4).shape == (3, 4)
    assert torch.zeros((2, 3, 4)).sum().item() == 0 and torch.ones((2, 3, 4)).sum().item() == 24
    assert torch.randn(3, 4).shape == (3, 4)
    t = torch.tensor([[2, 1, 4, 3], [1, 2, 3, 4], [4, 3, 2, 1]])
    assert t.dtype == torch.int64
    assert X[-1].tolist() == [8.0, 9.0, 10.0, 11.0] and X[1:3].shape == (2, 4)
    X[1, 2] = 17
    X[:2, :] = 12
    assert X.tolist()[0] == [12.0] * 4 and X[2, 0].item() == 8.0
    # X is a view of x (as in PyTorch): the book's output of exp(x) shows 162754.7969 = e**12
    changed = np.r_[np.full(8, 12.0), np.arange(8.0, 12.0)]
    np.testing.assert_allclose(torch.exp(x).numpy(), np.exp(changed), rtol=1e-6)
    x = torch.tensor([1.0, 2, 4, 8])
    y = torch.tensor([2, 2, 2, 2])
    assert (x + y).tolist() == [3, 4, 6, 10] and (x ** y).tolist() == [1, 4, 16, 64]
    assert (x / y).tolist() == [0.5, 1, 2, 4] and (x - y).dtype == torch.float32
    X = torch.arange(12, dtype=torch.float32).reshape((3, 4))
    Y = torch.tensor([[2.0, 1, 4, 3], [1, 2, 3, 4], [4, 3, 2, 1]])
    assert torch.cat((X, Y), dim=0).shape == (6, 4) and torch.cat((X, Y), dim=1).shape == (3, 8)
    assert (X == Y).sum().item() == 2 and X.sum().item() == 66
    a = torch.arange(3).reshape((3, 1))
    b = torch.arange(2).reshape((1, 2))
    assert (a + b).tolist() == [[0, 1], [1, 2], [2, 3]]
    Z = torch.zeros_like(Y)
    Z[:] = X + Y
    assert Z.tolist() == (X + Y).tolist()
    A = X.numpy()
    B = torch.from_numpy(A)
    assert type(A) is np.ndarray and isinstance(B, torch.Tensor)
    a = torch.tensor([3.5])
    assert (a.item(), float(a), int(a)) == (3.5, 3.5, 3)


def test_2_3_linear_algebra():
    x = torch.arange(3)
    assert x[2].item() == 2 and len(x) == 3 and x.shape == (3,)
    A = torch.arange(6).reshape(3, 2)
    assert A.T.shape == (2, 3)
    A = torch.tensor([[1, 2, 3], [2, 0, 4], [3, 4, 5]])
    assert (A == A.T).all()
    A = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    B = A.clone()
    assert (A + B).tolist() == (2 * A).tolist() and (A * B).sum().item() == 55
    assert A.sum(axis=0).shape == (3,) and A.sum(axis=1).shape == (2,)
    assert A.sum(axis=[0, 1]).item() == A.sum().item() == 15
    assert A.mean().item() == pytest.approx(A.sum().item() / A.numel())
    assert A.mean(axis=0).tolist() == (A.sum(axis=0) / A.shape[0]).tolist()
    sum_A = A.sum(axis=1, keepdims=True)
    assert sum_A.shape == (2, 1) and (A / sum_A).shape == (2, 3)
    assert A.cumsum(axis=0).tolist() == [[0, 1, 2], [3, 5, 7]]
    y = torch.ones(3, dtype=torch.float32)
    x = torch.arange(3, dtype=torch.float32)
    assert torch.dot(x, y).item() == torch.sum(x * y).item() == 3
    assert torch.mv(A, x).tolist() == (A @ x).tolist() == [5, 14]
    B = torch.ones(3, 4)
    assert torch.mm(A, B).shape == (2, 4) and (A @ B).tolist() == torch.mm(A, B).tolist()
    u = torch.tensor([3.0, -4.0])
    assert torch.norm(u).item() == 5.0 and torch.abs(u).sum().item() == 7.0
    assert torch.norm(torch.ones((4, 9))).item() == 6.0


def test_2_5_automatic_differentiation():
    x = torch.arange(4.0)
    x.requires_grad_(True)
    assert x.grad is None
    y = 2 * torch.dot(x, x)
    y.backward()
    assert (x.grad == 4 * x).all()
    x.grad.zero_()
    y = x.sum()
    y.backward()
    assert x.grad.tolist() == [1.0] * 4
    x.grad.zero_()
    y = x * x
    y.backward(gradient=torch.ones(len(y)))
    assert x.grad.tolist() == [0.0, 2.0, 4.0, 6.0]
    x.grad.zero_()
    y = x * x
    u = y.detach()
    z = u * x
    z.sum().backward()
    assert (x.grad == u).all()

    def f(a):
        b = a * 2
        while b.norm() < 1000:
            b = b * 2
        if b.sum() > 0:
            c = b
        else:
            c = 100 * b
        return c

    a = torch.randn(size=(), requires_grad=True)
    d = f(a)
    d.backward()
    assert (a.grad == d / a).item()


def synthetic_data(w, b, num_examples):
    """D2L §3.3 (d2l.synthetic_data)."""
    X = torch.normal(0, 1, (num_examples, len(w)))
    y = torch.matmul(X, w) + b
    y += torch.normal(0, 0.01, y.shape)
    return X, y.reshape((-1, 1))


def test_3_linear_regression_from_scratch_and_concise():
    torch.manual_seed(0)
    random.seed(0)
    true_w = torch.tensor([2, -3.4])
    true_b = 4.2
    features, labels = synthetic_data(true_w, true_b, 1000)

    def data_iter(batch_size, features, labels):
        num_examples = len(features)
        indices = list(range(num_examples))
        random.shuffle(indices)
        for i in range(0, num_examples, batch_size):
            batch_indices = torch.tensor(indices[i: min(i + batch_size, num_examples)])
            yield features[batch_indices], labels[batch_indices]

    w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)

    def linreg(X, w, b):
        return torch.matmul(X, w) + b

    def squared_loss(y_hat, y):
        return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2

    def sgd(params, lr, batch_size):
        with torch.no_grad():
            for param in params:
                param -= lr * param.grad / batch_size
                param.grad.zero_()

    lr, num_epochs, batch_size = 0.03, 3, 10
    for _ in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            loss = squared_loss(linreg(X, w, b), y)
            loss.sum().backward()
            sgd([w, b], lr, batch_size)
        with torch.no_grad():
            train_l = squared_loss(linreg(features, w, b), labels)
            assert f"{float(train_l.mean()):f}"
    assert float(train_l.mean()) < 1e-3
    assert (true_w - w.reshape(true_w.shape)).abs().max().item() < 0.01
    assert abs(true_b - b.item()) < 0.01

    # §3.5, concise: nn.Sequential, nn.MSELoss, optim.SGD
    net = nn.Sequential(nn.Linear(2, 1))
    loss = nn.MSELoss()
    trainer = torch.optim.SGD(net.parameters(), lr=0.03)
    for _ in range(3):
        for i in range(0, 1000, 10):
            X, y = features[i:i + 10], labels[i:i + 10]
            l = loss(net(X), y)  # noqa: E741 (the book's name)
            trainer.zero_grad()
            l.backward()
            trainer.step()
    assert loss(net(features), labels).item() < 1e-3


def test_4_softmax_regression_and_mlp_from_scratch():
    torch.manual_seed(1)
    X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert X.sum(0, keepdim=True).shape == (1, 3) and X.sum(1, keepdim=True).shape == (2, 1)

    def softmax(X):
        X_exp = torch.exp(X)
        partition = X_exp.sum(1, keepdim=True)
        return X_exp / partition

    X = torch.rand((2, 5))
    X_prob = softmax(X)
    np.testing.assert_allclose(X_prob.sum(1).numpy(), [1.0, 1.0], rtol=1e-6)
    y = torch.tensor([0, 2])
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    assert y_hat[[0, 1], y].tolist() == pytest.approx([0.1, 0.5])

    def cross_entropy(y_hat, y):
        return -torch.log(y_hat[range(len(y_hat)), y])

    assert cross_entropy(y_hat, y).tolist() == pytest.approx([-math.log(0.1), -math.log(0.5)])

    def accuracy(y_hat, y):
        if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
            y_hat = y_hat.argmax(axis=1)
        cmp = y_hat.type(y.dtype) == y
        return float(cmp.type(y.dtype).sum())

    assert accuracy(y_hat, y) / len(y) == 0.5

    def relu(X):
        a = torch.zeros_like(X)
        return torch.max(X, a)

    X = torch.tensor([[-1.0, 2.0], [0.5, -3.0]], requires_grad=True)
    relu(X).sum().backward()
    assert relu(X).tolist() == [[0.0, 2.0], [0.5, 0.0]] and X.grad.tolist() == [[0, 1], [1, 0]]
    W1 = nn.Parameter(torch.randn(4, 8) * 0.01)
    b1 = nn.Parameter(torch.zeros(8))
    assert (relu(torch.ones(2, 4) @ W1 + b1)).shape == (2, 8)

    def dropout_layer(X, dropout):
        assert 0 <= dropout <= 1
        if dropout == 1:
            return torch.zeros_like(X)
        mask = (torch.rand(X.shape) > dropout).float()
        return mask * X / (1.0 - dropout)

    X = torch.arange(16, dtype=torch.float32).reshape((2, 8))
    assert dropout_layer(X, 0).tolist() == X.tolist()
    assert dropout_layer(X, 1.0).sum().item() == 0
    kept = dropout_layer(X, 0.5)
    assert set(np.unique(kept.numpy() / np.maximum(X.numpy(), 1))) <= {0.0, 2.0}

    def l2_penalty(w):
        return torch.sum(w.pow(2)) / 2

    assert l2_penalty(torch.tensor([3.0, 4.0])).item() == 12.5


def test_4_mlp_concise_with_init_weights():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    seen = []

    def init_weights(m):
        if type(m) is nn.Linear:
            seen.append(m)

    net.apply(init_weights)
    assert len(seen) == 2
    X = torch.rand(size=(2, 1, 28, 28))
    y = torch.tensor([3, 7])
    loss = nn.CrossEntropyLoss(reduction="none")
    trainer = torch.optim.SGD(net.parameters(), lr=0.1)
    ls = loss(net(X), y)
    assert ls.shape == (2,)
    trainer.zero_grad()
    ls.mean().backward()
    trainer.step()
    assert net(X).argmax(axis=1).shape == (2,)


def test_8_rnn_from_scratch_pieces():
    """§8.5: one-hot inputs, the state, the step, gradient clipping, perplexity."""
    torch.manual_seed(3)
    assert F.one_hot(torch.tensor([0, 2]), 28).shape == (2, 28)
    X = torch.arange(10).reshape((2, 5))
    assert F.one_hot(X.T, 28).shape == (5, 2, 28)
    device = torch.device("cpu")
    num_inputs = num_outputs = vocab_size = 28
    num_hiddens, batch_size = 32, 2

    def normal(shape):
        return torch.randn(size=shape, device=device) * 0.01

    W_xh, W_hh = normal((num_inputs, num_hiddens)), normal((num_hiddens, num_hiddens))
    b_h = torch.zeros(num_hiddens, device=device)
    W_hq, b_q = normal((num_hiddens, num_outputs)), torch.zeros(num_outputs, device=device)
    params = [W_xh, W_hh, b_h, W_hq, b_q]
    for param in params:
        param.requires_grad_(True)

    def init_rnn_state(batch_size, num_hiddens, device):
        return (torch.zeros((batch_size, num_hiddens), device=device), )

    def rnn(inputs, state, params):
        W_xh, W_hh, b_h, W_hq, b_q = params
        H, = state
        outputs = []
        for X in inputs:
            H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
            Y = torch.mm(H, W_hq) + b_q
            outputs.append(Y)
        return torch.cat(outputs, dim=0), (H,)

    state = init_rnn_state(batch_size, num_hiddens, device)
    Y, new_state = rnn(F.one_hot(X.T, vocab_size).type(torch.float32), state, params)
    assert Y.shape == (10, 28) and len(new_state) == 1 and new_state[0].shape == (2, 32)
    y = X.T.reshape(-1)
    loss = nn.CrossEntropyLoss()
    l = loss(Y, y.long()).mean()  # noqa: E741
    l.backward()

    def grad_clipping(params, theta):
        norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
        if norm > theta:
            for param in params:
                param.grad[:] *= theta / norm
        return norm

    norm = grad_clipping(params, 1e-4)
    clipped = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
    assert float(norm) > 1e-4 and clipped == pytest.approx(1e-4, rel=1e-4)
    metric = [float(l) * y.numel(), y.numel()]
    assert math.exp(metric[0] / metric[1]) == pytest.approx(28, rel=0.05)  # near-uniform
    outputs = [3]
    get_input = lambda: torch.tensor([outputs[-1]], device=device).reshape((1, 1))  # noqa: E731
    assert get_input().shape == (1, 1) and int(Y[:1].argmax(dim=1).reshape(1)) >= 0


def test_9_gru_and_lstm_from_scratch_and_concise():
    """§9.1-9.2: the gated steps as the book writes them, and nn.GRU / nn.LSTM."""
    torch.manual_seed(4)
    num_inputs, num_hiddens, batch_size = 5, 4, 3
    X = torch.randn(batch_size, num_inputs)
    H = torch.zeros((batch_size, num_hiddens))

    def three():
        return (torch.randn(num_inputs, num_hiddens) * 0.01,
                torch.randn(num_hiddens, num_hiddens) * 0.01, torch.zeros(num_hiddens))

    (W_xz, W_hz, b_z), (W_xr, W_hr, b_r), (W_xh, W_hh, b_h) = three(), three(), three()
    Z = torch.sigmoid((X @ W_xz) + (H @ W_hz) + b_z)
    R = torch.sigmoid((X @ W_xr) + (H @ W_hr) + b_r)
    H_tilde = torch.tanh((X @ W_xh) + ((R * H) @ W_hh) + b_h)
    H = Z * H + (1 - Z) * H_tilde
    assert H.shape == (3, 4)
    C = torch.zeros((batch_size, num_hiddens))
    (W_xi, W_hi, b_i), (W_xf, W_hf, b_f), (W_xo, W_ho, b_o), (W_xc, W_hc, b_c) = (
        three(), three(), three(), three())
    I = torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i)  # noqa: E741
    F_ = torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f)
    O = torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)  # noqa: E741
    C_tilde = torch.tanh((X @ W_xc) + (H @ W_hc) + b_c)
    C = F_ * C + I * C_tilde
    H = O * torch.tanh(C)
    assert H.shape == C.shape == (3, 4) and float(H.abs().max()) < 1

    gru = nn.GRU(num_inputs, num_hiddens)
    lstm = nn.LSTM(num_inputs, num_hiddens, 2)
    inputs = torch.randn(7, batch_size, num_inputs)
    out, h_n = gru(inputs)
    assert out.shape == (7, 3, 4) and h_n.shape == (1, 3, 4)
    out, (h_n, c_n) = lstm(inputs)
    assert out.shape == (7, 3, 4) and h_n.shape == c_n.shape == (2, 3, 4)
    state = (h_n, c_n)
    if isinstance(state, tuple):
        for s in state:
            s.detach_()
    updater = torch.optim.SGD(lstm.parameters(), 1)
    updater.zero_grad()
    lstm(inputs)[0].sum().backward()
    updater.step()


def test_8_1_sequence_model():
    """§8.1: a sine with noise, the features of the last tau values, an MLP, MSE, Adam."""
    torch.manual_seed(5)
    T, tau = 200, 4
    time = torch.arange(1, T + 1, dtype=torch.float32)
    x = torch.sin(0.01 * time) + torch.normal(0, 0.2, (T,))
    features = torch.zeros((T - tau, tau))
    for i in range(tau):
        features[:, i] = x[i: T - tau + i]
    labels = x[tau:].reshape((-1, 1))

    def init_weights(m):
        if type(m) is nn.Linear:
            nn.init.xavier_uniform_(m.W)  # the book: m.weight (torch's (out, in) layout)

    net = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 1))
    net.apply(init_weights)
    loss = nn.MSELoss(reduction="none")
    trainer = torch.optim.Adam(net.parameters(), 0.01)
    first = float(loss(net(features), labels).mean())
    for _ in range(5):
        for i in range(0, T - tau, 16):
            X, y = features[i:i + 16], labels[i:i + 16]
            trainer.zero_grad()
            l = loss(net(X), y)  # noqa: E741
            l.sum().backward()
            trainer.step()
    assert float(loss(net(features), labels).mean()) < first

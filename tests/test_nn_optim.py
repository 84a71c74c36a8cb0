"""Modules, parameters, initialisers, optimizers, clipping and ``tg.gradcheck`` itself."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from helpers import EPS32, EPS64
from hypothesis import given
from hypothesis import strategies as st
from strategies import f64_arrays, seeds, shapes

import tinygrad_rnn as tg
from tinygrad_rnn.autograd import Function


class Head(tg.nn.Module):
    def __init__(self, h, v):
        super().__init__()
        self.proj = tg.nn.Linear(h, v)


class Net(tg.nn.Module):
    def __init__(self, v=5, h=4):
        super().__init__()
        self.rnn = tg.nn.RNN(v, h)
        self.head = Head(h, v)
        self.scale = tg.nn.Parameter(np.ones(1))


# ------------------------------------------------------------------------- Module
def test_named_parameters_dotted_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "rnn.W_ih_l0", "rnn.W_hh_l0", "rnn.b_ih_l0", "rnn.b_hh_l0",
                     "head.proj.W", "head.proj.b"]
    assert [id(p) for p in net.parameters()] == [id(p) for _, p in net.named_parameters()]
    assert all(isinstance(p, tg.nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_modules()] == ["", "rnn", "head", "head.proj"]
    net.head = Head(4, 5)  # reassignment replaces, does not duplicate
    assert len(list(net.named_parameters())) == 7
    # a prefix goes in front with a dot, as in PyTorch
    assert [n for n, _ in net.named_parameters(prefix="net")][:2] == [
        "net.scale", "net.rnn.W_ih_l0"]
    assert [n for n, _ in net.named_modules(prefix="net")] == [
        "net", "net.rnn", "net.head", "net.head.proj"]


def test_a_sub_module_slot_takes_only_a_module_or_none():
    """As PyTorch: a list over a sub-module would silently drop its parameters."""
    net = Net()
    with pytest.raises(TypeError, match="cannot assign a list to sub-module 'head' of Net"):
        net.head = [Head(4, 5)]
    assert [n for n, _ in net.named_parameters()][-2:] == ["head.proj.W", "head.proj.b"]
    net.head = None
    assert len(net.parameters()) == 5  # scale and the RNN's four
    with pytest.raises(TypeError, match="train\\(mode\\) must be True or False, got 'False'"):
        net.train("False")


def test_load_state_dict_reports_what_did_not_match():
    net = Net()
    assert net.load_state_dict(Net().state_dict()) == ([], [])
    state = {"head.weight": np.zeros((4, 5)), "scale": np.full(1, 7.0)}  # a PyTorch-style name
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert unexpected == ["head.weight"] and "head.proj.W" in missing and "scale" not in missing
    assert net.scale.numpy()[0] == 7.0


def test_a_frozen_parameter_is_accepted_and_left_as_it_is():
    """As PyTorch: the optimizer takes it and skips it, having no gradient."""
    lin = tg.nn.Linear(2, 1)
    lin.W.requires_grad = False
    opt = tg.optim.SGD(lin.parameters(), lr=0.5)
    W, b = lin.W.numpy(), lin.b.numpy()
    lin(tg.Tensor([[1.0, 2.0]])).sum().backward()
    opt.step()
    assert lin.W.grad is None
    np.testing.assert_array_equal(lin.W.numpy(), W)
    np.testing.assert_array_equal(lin.b.numpy(), b - 0.5)


def test_state_dict_is_numpy_copies(backend):
    net = Net().to(backend)
    state = net.state_dict()
    assert list(state) == [n for n, _ in net.named_parameters()]
    for name, p in net.named_parameters():
        assert isinstance(state[name], np.ndarray) and state[name].dtype == p.dtype
        np.testing.assert_array_equal(state[name], p.numpy())
        state[name][...] = 42.0
        assert not (p.numpy() == 42.0).all()


def test_load_state_dict_casts_and_round_trips(backend):
    tg.manual_seed(1)
    a = Net().to(backend)
    tg.manual_seed(2)
    b = Net().to(backend)
    state64 = {k: v.astype(np.float64) for k, v in a.state_dict().items()}
    b.load_state_dict(state64)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert pb.dtype == np.float32 and pb.backend == backend, name
        np.testing.assert_array_equal(pb.numpy(), pa.numpy())
    X = tg.Tensor(np.random.default_rng(0).integers(0, 5, (3, 2)), backend=backend)
    out_a, _ = a.rnn(X)
    out_b, _ = b.rnn(X)
    np.testing.assert_array_equal(out_a.numpy(), out_b.numpy())
    tensors = {k: tg.Tensor(v, backend=backend) for k, v in a.state_dict().items()}
    b.load_state_dict(tensors)  # Tensor values work too
    lin64 = tg.nn.Linear(3, 2, dtype="float64")
    lin64.load_state_dict({k: v.astype(np.float32) for k, v in lin64.state_dict().items()})
    assert lin64.W.dtype == np.float64


def test_module_to_moves_parameters(other_backend):
    net = Net()
    before = net.state_dict()
    ids = [id(p) for p in net.parameters()]
    assert net.to(other_backend) is net
    assert net.backend == other_backend
    assert [id(p) for p in net.parameters()] == ids  # same objects (optimizers keep them)
    for name, p in net.named_parameters():
        assert p.backend == other_backend
        np.testing.assert_array_equal(p.numpy(), before[name])
    out, h_n = net.rnn(tg.Tensor([[0, 1]], backend=other_backend))
    out.sum().backward()
    assert net.rnn.W_ih_l0.grad.backend == other_backend
    net.to("numpy")
    assert all(p.backend == "numpy" and p.grad is None for p in net.parameters())


@given(
    n=st.integers(1, 4),
    d_in=st.integers(1, 4),
    d_out=st.integers(1, 4),
    lead=st.lists(st.integers(1, 3), max_size=2),
    seed=seeds,
)
def test_linear_is_xw_plus_b(backend, n, d_in, d_out, lead, seed):
    lin = tg.nn.Linear(d_in, d_out, dtype="float64", backend=backend)
    assert lin.W.shape == (d_in, d_out) and lin.b.shape == (d_out,)
    rng = np.random.default_rng(seed)
    lin.load_state_dict({"W": rng.standard_normal((d_in, d_out)), "b": rng.standard_normal(d_out)})
    X = rng.standard_normal((*lead, n, d_in))
    Y = lin(tg.Tensor(X, dtype="float64", backend=backend))
    expected = X @ lin.W.numpy() + lin.b.numpy()
    np.testing.assert_allclose(Y.numpy(), expected, rtol=1e-12, atol=d_in * 16 * EPS64 * 9)
    no_bias = tg.nn.Linear(d_in, d_out, bias=False)
    assert no_bias.b is None and [k for k, _ in no_bias.named_parameters()] == ["W"]


# ------------------------------------------------------------------------------ init
def test_normal_init_std():
    """n = 40,000 draws: the sample std has relative standard error 1/sqrt(2n) ≈ 0.35%,
    the mean standard error std/sqrt(n) = 5e-5; 5 standard errors each."""
    n_side = 200
    p = tg.nn.init.normal((n_side, n_side))
    w = p.numpy().astype(np.float64)
    n = w.size
    assert p.dtype == np.float32 and p.requires_grad
    assert abs(w.mean()) < 5 * 0.01 / math.sqrt(n)
    assert abs(w.std() / 0.01 - 1) < 5 / math.sqrt(2 * n)


def test_rnn_default_init_is_pytorchs_uniform():
    """PyTorch's rule: every parameter from U(-k, k), k = 1/sqrt(H), whose std is
    k/sqrt(3) = 1/sqrt(3H). For n draws of U(-k, k) the sample variance has relative
    standard error sqrt((μ4/σ⁴ - 1)/n) = sqrt((9/5 - 1)/n) = sqrt(0.8/n), so the sample
    std has sqrt(0.2/n); the mean has standard error σ/sqrt(n); 5 standard errors each.
    Each weight is n = 40,000 draws; the two biases pool 400."""
    H = 200
    k = 1 / math.sqrt(H)
    sigma = 1 / math.sqrt(3 * H)
    rnn = tg.nn.RNN(200, H)
    W_ih, W_hh = rnn.W_ih_l0.numpy(), rnn.W_hh_l0.numpy()
    b = np.concatenate([rnn.b_ih_l0.numpy(), rnn.b_hh_l0.numpy()])
    for what, w in (("W_ih_l0", W_ih), ("W_hh_l0", W_hh), ("biases", b)):
        w = w.astype(np.float64)
        n = w.size
        # the bounds, up to float32 rounding (a normal of this std puts 8.3% beyond ±k)
        assert np.abs(w).max() <= k * (1 + EPS32), what
        assert abs(w.mean()) < 5 * sigma / math.sqrt(n), what
        assert abs(w.std() / sigma - 1) < 5 * math.sqrt(0.2 / n), what
    # P(all 40,000 draws fall in (1-δ)·k) = (1-δ)^n ≈ e^-40 for δ = 1e-3: the range is ±k
    assert np.abs(W_ih).max() > k * (1 - 1e-3) and np.abs(W_hh).max() > k * (1 - 1e-3)
    assert not np.array_equal(rnn.b_ih_l0.numpy(), rnn.b_hh_l0.numpy())  # two draws


def test_rnn_reset_parameters_std_is_d2ls_normal():
    """``reset_parameters(std=0.01)``: D2L's scratch init, weights N(0, 0.01²) (n = 40,000
    draws each: relative s.e. of the std 1/sqrt(2n), of the mean 0.01/sqrt(n); 5 s.e.),
    biases exactly zero; ``reset_parameters()`` goes back to U(±1/sqrt(H))."""
    rnn = tg.nn.RNN(200, 200)
    rnn.reset_parameters(std=0.01)
    for w in (rnn.W_ih_l0.numpy(), rnn.W_hh_l0.numpy()):
        w = w.astype(np.float64)
        n = w.size
        assert abs(w.mean()) < 5 * 0.01 / math.sqrt(n)
        assert abs(w.std() / 0.01 - 1) < 5 / math.sqrt(2 * n)
    assert (rnn.b_ih_l0.numpy() == 0).all() and (rnn.b_hh_l0.numpy() == 0).all()
    assert all(p.dtype == np.float32 and p.requires_grad for p in rnn.parameters())
    rnn.reset_parameters()
    k = 1 / math.sqrt(200)
    for p in rnn.parameters():
        assert np.abs(p.numpy()).max() <= k * (1 + EPS32)
    assert (rnn.b_ih_l0.numpy() != 0).any()  # biases are drawn again, not left at zero


def test_xavier_uniform_bound():
    fan_in, fan_out = 120, 80
    bound = math.sqrt(6 / (fan_in + fan_out))
    w = tg.nn.init.xavier_uniform((fan_in, fan_out)).numpy().astype(np.float64)
    n = w.size
    assert np.abs(w).max() <= bound * (1 + EPS32)
    # P(all n draws fall in (1-δ)·bound) = (1-δ)^n ≈ e^-9.6 for δ = 1e-3
    assert np.abs(w).max() > bound * (1 - 1e-3)
    # Var U(-a, a) = a²/3; the sample variance's relative s.e. is sqrt(0.8/n)
    assert abs(w.var() / (bound**2 / 3) - 1) < 5 * math.sqrt(0.8 / n)
    lin = tg.nn.Linear(fan_in, fan_out)
    assert np.abs(lin.W.numpy()).max() <= bound * (1 + EPS32)
    assert (lin.b.numpy() == 0).all()


def test_manual_seed_reproduces_parameters():
    tg.manual_seed(123)
    a = tg.nn.RNN(3, 4).state_dict()
    tg.manual_seed(123)
    b = tg.nn.RNN(3, 4).state_dict()
    tg.manual_seed(124)
    c = tg.nn.RNN(3, 4).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["W_ih_l0"], c["W_ih_l0"])


# ------------------------------------------------------------------------ optimizers
@given(a=f64_arrays(shapes(min_dims=1)), lr=st.floats(1e-3, 1.0), seed=seeds)
def test_sgd_step(backend, a, lr, seed):
    g = np.random.default_rng(seed).standard_normal(a.shape).astype(np.float32)
    p = tg.Tensor(a, backend=backend, requires_grad=True)
    p.grad = tg.Tensor(g, backend=backend)
    p32 = a.astype(np.float32)
    tg.optim.SGD([p], lr=lr).step()
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p.numpy(), p32 - np.float32(lr) * g)
    np.testing.assert_array_equal(p.grad.numpy(), g)  # step leaves the gradient


def test_sgd_skips_parameters_without_grad():
    p = tg.Tensor([1.0, 2.0], requires_grad=True)
    tg.optim.SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(p.numpy(), [1.0, 2.0])


@given(seed=seeds, n=st.integers(1, 5))
def test_adam_first_step_is_lr_sign(backend, seed, n):
    """Bias correction makes step 1 exactly lr·g/(|g| + eps) ≈ lr·sign(g)."""
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(n)
    g = rng.standard_normal(n) + np.sign(rng.standard_normal(n)) * 0.1
    p = tg.Tensor(p0, dtype="float64", backend=backend, requires_grad=True)
    p.grad = tg.Tensor(g, dtype="float64", backend=backend)
    tg.optim.Adam([p], lr=0.01, eps=1e-8).step()
    np.testing.assert_allclose(
        p.numpy(), p0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=16 * EPS64, atol=16 * EPS64
    )


@given(seed=seeds)
def test_adam_reduces_a_quadratic(backend, seed):
    rng = np.random.default_rng(seed)
    target = rng.uniform(-3, 3, 6)
    p = tg.Tensor(np.zeros(6), backend=backend, requires_grad=True)
    c = tg.Tensor(target, backend=backend)
    opt = tg.optim.Adam([p], lr=0.1)

    def loss():
        return ((p - c) ** 2).sum()

    initial = loss().item()
    for _ in range(200):
        opt.zero_grad()
        ell = loss()
        ell.backward()
        opt.step()
    final = loss().item()
    # Adam's steps are ≈ lr in size, so it settles within ~lr of the minimum:
    # a loss ≤ 6·lr² = 0.06, against an initial Σ target² (≥ 0 but typically ~18)
    assert final < 6 * 0.1**2 and final < initial


@given(seed=seeds, scale=st.floats(0.01, 100.0), max_norm=st.floats(0.1, 10.0))
def test_clip_grad_norm(backend, seed, scale, max_norm):
    rng = np.random.default_rng(seed)
    shapes_ = [(3, 4), (4,), (2, 2, 2)]
    grads = [(rng.standard_normal(s) * scale).astype(np.float32) for s in shapes_]
    params = [tg.Tensor(np.zeros(s), backend=backend, requires_grad=True) for s in shapes_]
    for p, g in zip(params, grads, strict=True):
        p.grad = tg.Tensor(g, backend=backend)
    no_grad = tg.Tensor([1.0], backend=backend, requires_grad=True)  # skipped: no .grad
    exact = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    n = sum(g.size for g in grads)
    norm = tg.optim.clip_grad_norm(tuple([*params, no_grad]), max_norm)
    assert isinstance(norm, tg.Tensor) and norm.shape == () and norm.dtype == np.float64
    assert norm.backend == backend and not norm.requires_grad
    norm = float(norm)
    # the squared norm is summed in float32: relative error ≤ n·ε32
    assert abs(norm - exact) <= n * EPS32 * exact
    after = math.sqrt(sum(float((p.grad.numpy().astype(np.float64) ** 2).sum()) for p in params))
    if norm > max_norm:
        # each element scaled by one float32 factor: relative error ≤ 2ε32, plus the norm's
        assert abs(after - max_norm) <= (n + 2) * EPS32 * max_norm
        for p, g in zip(params, grads, strict=True):  # the direction is kept
            np.testing.assert_allclose(
                p.grad.numpy(), g * np.float32(max_norm / norm), rtol=4 * EPS32
            )
    else:
        for p, g in zip(params, grads, strict=True):
            np.testing.assert_array_equal(p.grad.numpy(), g)
    assert float(tg.optim.clip_grad_norm([no_grad], 1.0)) == 0.0


def test_clip_grad_norm_to_infinity_or_of_nan_scales_nothing(backend):
    """θ = inf never rescales (exercise 3's unclipped run); a NaN norm leaves g as it is."""
    for g, theta in (([2.0, -3.0], math.inf), ([np.nan, 1.0], 1.0), ([0.0, 0.0], 1.0)):
        p = tg.Tensor(np.zeros(2), backend=backend, requires_grad=True)
        p.grad = tg.Tensor(np.array(g), backend=backend)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no divide-by-zero or invalid-value warning
            norm = float(tg.optim.clip_grad_norm([p], theta))
        np.testing.assert_array_equal(p.grad.numpy(), g)
        assert norm == math.hypot(*g) or (math.isnan(norm) and math.isnan(g[0]))


def test_clip_grad_norm_both_branches_exercised():
    """Both branches with exact expectations: norm 2·scale, clipped to 1.0 or kept."""
    for scale, clipped in ((100.0, True), (1e-3, False)):
        p = tg.Tensor(np.zeros(4), requires_grad=True)
        p.grad = tg.Tensor(np.full(4, scale))
        norm = float(tg.optim.clip_grad_norm([p], 1.0))
        assert norm == pytest.approx(2 * scale, rel=4 * EPS32)
        expected = np.full(4, 0.5) if clipped else np.full(4, scale)
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=4 * EPS32)


def test_optimizer_state_dict_round_trip():
    p = tg.Tensor([1.0, -1.0], requires_grad=True)
    opt = tg.optim.Adam([p], lr=0.05)
    for _ in range(3):
        p.grad = tg.Tensor([0.5, -2.0])
        opt.step()
    q = tg.Tensor(p.numpy(), requires_grad=True)
    opt2 = tg.optim.Adam([q], lr=1.0)
    opt2.load_state_dict(opt.state_dict())
    for o, t in ((opt, p), (opt2, q)):
        t.grad = tg.Tensor([0.1, 0.3])
        o.step()
    np.testing.assert_array_equal(p.numpy(), q.numpy())


# ----------------------------------------------------------------- gradcheck itself
class WrongSquare(Function):
    """x² with a backward that forgets the factor 2."""

    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, g):
        return (g * self.a,)


class WrongAtOneElement(Function):
    """a * b whose gradient w.r.t. b is off by 1 at a single element ``bad``."""

    bad = (1, 2)

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        gb = g * self.a
        gb[self.bad] += 1.0
        return g * self.b, gb


def test_gradcheck_catches_wrong_backward(backend):
    x = tg.Tensor(np.linspace(0.5, 2.0, 4), backend=backend, requires_grad=True)
    with pytest.raises(tg.GradcheckError, match=r"input 0 \(shape \(4,\)\) at element \(\d+,\)"):
        tg.gradcheck(lambda t: WrongSquare.apply(t), [x])
    assert tg.gradcheck(lambda t: t * t, [x])  # the correct op passes


def test_gradcheck_names_input_and_element(backend):
    rng = np.random.default_rng(0)
    a = tg.Tensor(rng.standard_normal((2, 3)), backend=backend, requires_grad=True)
    b = tg.Tensor(rng.standard_normal((2, 3)), backend=backend, requires_grad=True)
    with pytest.raises(tg.GradcheckError, match=r"input 1 \(shape \(2, 3\)\) at element \(1, 2\)"):
        tg.gradcheck(lambda s, t: WrongAtOneElement.apply(s, t), [a, b])
    assert issubclass(tg.GradcheckError, AssertionError)
    with pytest.raises(ValueError, match="no input has requires_grad"):
        tg.gradcheck(lambda s: s * 2, [tg.Tensor([1.0])])


class NaNBackward(Function):
    def forward(self, a):
        return a * 2

    def backward(self, g):
        return (g * np.nan,)


def test_gradcheck_fails_nan_gradients_and_a_cut_graph(backend):
    x = tg.Tensor([0.5, 1.0], backend=backend, requires_grad=True)
    with pytest.raises(tg.GradcheckError, match="autograd nan"):
        tg.gradcheck(lambda t: NaNBackward.apply(t), [x])
    with pytest.raises(tg.GradcheckError, match="autograd 0, finite difference 2"):
        tg.gradcheck(lambda t: (t.detach() * 2).sum(), [x])  # the gradient never reaches x


class ClaimsThree(Function):
    """2a, whose backward claims 3."""

    def forward(self, a):
        return a * 2

    def backward(self, g):
        return (g * 3,)


def test_gradcheck_reports_a_scalar_outputs_gradient_unweighted_and_checks_arguments(backend):
    x = tg.Tensor([1.0, 2.0], backend=backend, requires_grad=True)
    with pytest.raises(tg.GradcheckError, match=r"autograd 3, finite difference 2\b"):
        tg.gradcheck(lambda t: ClaimsThree.apply(t).sum(), x)  # a lone tensor is fine
    with pytest.raises(TypeError, match="fn must return one Tensor, got tuple"):
        tg.gradcheck(lambda t: (t, t), [x])
    with pytest.raises(TypeError, match="input 0 is a ndarray, not a Tensor"):
        tg.gradcheck(lambda t: t, [np.ones(2)])
    rng = np.random.default_rng(0)
    with pytest.raises(tg.GradcheckError, match="different values for the same inputs"):
        tg.gradcheck(lambda t: (t * float(rng.standard_normal())).sum(), x)


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_gradcheck_names_a_non_finite_output(backend):
    x = tg.Tensor([-1.0, 2.0], backend=backend, requires_grad=True)
    with pytest.raises(tg.GradcheckError, match="fn's output is nan at these inputs"):
        tg.gradcheck(lambda t: t.log().sum(), [x])


@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
def test_adam_with_defaults_matches_the_reference_over_several_steps(backend, weight_decay):
    p = tg.Tensor([1.0, -2.0, 0.5], dtype="float64", requires_grad=True, backend=backend)
    opt = tg.optim.Adam([p], weight_decay=weight_decay)
    x, m, v = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3)
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8  # PyTorch's defaults
    rng = np.random.default_rng(0)
    for t in range(1, 6):
        g = rng.standard_normal(3) * 1e-4  # small: eps is visible
        p.grad = tg.Tensor(g, dtype="float64", backend=backend)
        opt.step()
        g = g + weight_decay * x  # PyTorch's L2 penalty, on the gradient
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        x = x - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(p.numpy(), x, rtol=1e-12, atol=0)


def pytorch_sgd(x, grads, lr, momentum, weight_decay, nesterov):
    """PyTorch's SGD as its documentation writes it (dampening 0): the first step's
    buffer is a copy of the gradient, not a zero buffer updated."""
    buf = None
    for g in grads:
        if g is None:
            continue
        d = g + weight_decay * x if weight_decay else g
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + d
            d = d + momentum * buf if nesterov else buf
        x = x - lr * d
    return x


@given(
    seed=seeds,
    lr=st.floats(1e-3, 1.0),
    momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    weight_decay=st.sampled_from([0.0, 1e-4, 0.1]),
    nesterov=st.booleans(),
    skipped=st.integers(0, 4),
)
def test_sgd_momentum_and_weight_decay_follow_pytorchs_algorithm(
    backend, seed, lr, momentum, weight_decay, nesterov, skipped
):
    """Five steps, one of them without a gradient (the buffer must then stay as it is),
    against PyTorch's update rule in float64: a few roundings per step."""
    nesterov = nesterov and momentum > 0
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(4)
    grads = [None if k == skipped else rng.standard_normal(4) for k in range(5)]
    p = tg.Tensor(x0, dtype="float64", requires_grad=True, backend=backend)
    opt = tg.optim.SGD([p], lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    for g in grads:
        p.grad = None if g is None else tg.Tensor(g, dtype="float64", backend=backend)
        opt.step()
    expected = pytorch_sgd(x0, grads, lr, momentum, weight_decay, nesterov)
    np.testing.assert_allclose(p.numpy(), expected, rtol=64 * EPS64, atol=64 * EPS64)


def sgd_run(steps, momentum=0.9, state=None, **kwargs):
    """``steps`` SGD steps on a fixed Linear(3, 2) problem, starting from ``state``
    (parameters, optimizer) if given; returns the new (parameters, optimizer state)."""
    tg.manual_seed(0)
    model = tg.nn.Linear(3, 2)
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=momentum, **kwargs)
    if state is not None:
        model.load_state_dict(state[0])
        opt.load_state_dict(state[1])
    X = tg.Tensor(np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32))
    for _ in range(steps):
        opt.zero_grad()
        (model(X) ** 2).sum().backward()
        opt.step()
    return model.state_dict(), opt.state_dict()


def assert_same_state(got, want):
    """Two optimizer state dicts hold the same entries, arrays bit for bit."""
    got, want = tg.optim.flatten_state_dict(got), tg.optim.flatten_state_dict(want)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_sgd_momentum_resumes_from_its_state_dict_exactly():
    """2 steps, save, load into a fresh optimizer, 2 more == 4 steps in one go."""
    whole = sgd_run(4, weight_decay=0.01, nesterov=True)
    resumed = sgd_run(2, state=sgd_run(2, weight_decay=0.01, nesterov=True), momentum=0.0)
    assert resumed[1]["param_groups"][0]["nesterov"]  # momentum, nesterov came from the state
    for key in whole[0]:
        np.testing.assert_array_equal(resumed[0][key], whole[0][key])
    assert_same_state(resumed[1], whole[1])


def test_sgd_loads_plain_sgd_state_with_momentum_starting_afresh():
    """A state without momentum buffers (plain SGD's) starts them at the next gradient."""
    plain = sgd_run(2, momentum=0.0)
    flat = {**tg.optim.flatten_state_dict(plain[1]), "param_groups.0.momentum": 0.5}
    _, state = sgd_run(2, state=(plain[0], flat))
    assert state["param_groups"][0]["momentum"] == 0.5 and state["state"][0][
        "momentum_buffer"].any()
    tg.manual_seed(0)
    model = tg.nn.Linear(3, 2)
    opt = tg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01,
                       nesterov=True)
    for _ in range(2):  # buffers that are not zero
        model.zero_grad()
        (model(tg.Tensor(np.ones((1, 3)))) ** 2).sum().backward()
        opt.step()
    assert opt.state[model.W]["momentum_buffer"].any()
    opt.load_state_dict({"lr": np.asarray(0.5)})  # a checkpoint from before momentum
    # the state's lr, this optimizer's momentum, weight decay and Nesterov setting
    assert (opt.lr, opt.momentum, opt.weight_decay, opt.nesterov) == (0.5, 0.9, 0.01, True)
    assert opt.state == {}


def test_sgd_argument_and_state_errors():
    p = [tg.Tensor([1.0], requires_grad=True)]
    with pytest.raises(ValueError, match=r"Invalid momentum value: -0.1 \(SGD momentum must "
                                         r"be a finite number >= 0\)"):
        tg.optim.SGD(p, lr=0.1, momentum=-0.1)
    with pytest.raises(ValueError, match="Invalid weight_decay value: inf"):
        tg.optim.SGD(p, lr=0.1, weight_decay=float("inf"))
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero "
                                         "dampening"):
        tg.optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        tg.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(TypeError, match="nesterov must be True or False, got 'yes'"):
        tg.optim.SGD(p, lr=0.1, momentum=0.9, nesterov="yes")
    opt = tg.optim.SGD(p, lr=0.1, momentum=0.9)
    p[0].grad = tg.Tensor([1.0])
    opt.step()
    state = opt.state_dict()
    before = opt.state[p[0]]["momentum_buffer"]
    bad = {"state": {0: {"momentum_buffer": np.zeros(2)}},
           "param_groups": [{**state["param_groups"][0], "lr": 5.0}]}
    with pytest.raises(ValueError, match=r"SGD state for parameter 0: momentum_buffer has "
                                         r"shape \(2,\), the parameter has \(1,\)"):
        opt.load_state_dict(bad)
    assert opt.lr == 0.1 and opt.state[p[0]]["momentum_buffer"] is before  # nothing changed
    adam = tg.optim.Adam(p, lr=0.1)
    with pytest.raises(ValueError, match="Adam state has no 'v.0' for parameter 0"):
        adam.load_state_dict({"lr": 0.1, "t": 1, "m.0": np.zeros(1)})  # an old, flat one
    groups = [{**adam.state_dict()["param_groups"][0], "betas": (0.9, 2.0), "lr": 5.0}]
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 1: 2.0 \(Adam betas "
                                         r"must be two numbers in \[0, 1\)\)"):
        adam.load_state_dict({"state": {}, "param_groups": groups})
    assert adam.lr == 0.1  # a bad state changes nothing


def test_adam_load_state_dict_restores_every_hyper_parameter():
    p = tg.Tensor([1.0], requires_grad=True)
    state = tg.optim.Adam([p], lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1,
                          amsgrad=True).state_dict()
    q = tg.optim.Adam([p])
    q.load_state_dict(state)
    assert q.param_groups[0] == {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-3,
                                 "weight_decay": 0.1, "amsgrad": True, "maximize": False,
                                 "decoupled_weight_decay": False, "params": [p]}


def test_load_state_dict_drops_stale_gradients():
    m = tg.nn.Linear(2, 1)
    state = m.state_dict()
    m(tg.Tensor([[1.0, 2.0]])).sum().backward()
    m.load_state_dict(state)
    assert all(p.grad is None for p in m.parameters())


def test_reassigning_a_parameter_attribute_unregisters_it():
    m = tg.nn.Linear(2, 1)
    m.b = None
    assert [n for n, _ in m.named_parameters()] == ["W"]
    assert list(m.state_dict()) == ["W"]


class _FlipWrong(Function):
    saves_inputs = False
    def forward(self, a):
        return a[::-1].copy()
    def backward(self, g):
        return (g,)  # wrong: should be g[::-1]


def test_gradcheck_weights_output_elements_unequally(backend):
    x = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True, backend=backend)
    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(lambda a: _FlipWrong.apply(a), [x])


class _SlightlyOff(Function):
    def forward(self, a):
        self.a = a
        return a * a
    def backward(self, g):
        return (g * 2 * self.a * 1.002,)  # 0.2% too large: outside rtol=1e-3


def test_gradcheck_default_tolerance_is_tight(backend):
    x = tg.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    with pytest.raises(tg.GradcheckError):
        tg.gradcheck(lambda a: _SlightlyOff.apply(a).sum(), [x])


def test_clip_grad_norm_without_gradients_is_a_float64_zero():
    norm = tg.optim.clip_grad_norm([tg.Tensor([1.0], requires_grad=True)], 1.0)
    assert norm.dtype == np.float64 and norm.shape == () and float(norm) == 0.0


def test_sequential_registers_its_layers_and_applies_them_in_order():
    tg.manual_seed(0)
    net = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.ReLU(), tg.nn.Linear(4, 2), tg.nn.Tanh())
    assert [n for n, _ in net.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert list(net.state_dict()) == ["0.W", "0.b", "2.W", "2.b"]
    X = tg.Tensor(np.random.default_rng(0).standard_normal((5, 3)))
    first, last = net[0], net[-2]
    np.testing.assert_array_equal(net(X).numpy(), last(first(X).relu()).tanh().numpy())
    net(X).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_module_list_holds_modules_by_index():
    layers = tg.nn.ModuleList([tg.nn.Linear(2, 2) for _ in range(3)])
    layers.append(tg.nn.Linear(2, 1))
    assert len(layers) == 4 and len(layers.parameters()) == 8 and layers[-1].out_features == 1
    with pytest.raises(IndexError, match="index 4 is out of range for 4 modules"):
        layers[4]
    with pytest.raises(TypeError, match="ModuleList holds Modules, got Tensor"):
        layers.append(tg.Tensor([1.0]))


def test_train_and_eval_set_the_flag_everywhere():
    net = tg.nn.Sequential(tg.nn.Linear(2, 2), tg.nn.Sequential(tg.nn.Linear(2, 2)))
    assert net.training and net[1][0].training
    assert net.eval() is net and not any(m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())
    assert list(net.children()) == [net[0], net[1]]


def test_clip_grad_norm_has_pytorchs_name_too():
    assert tg.optim.clip_grad_norm_ is tg.nn.utils.clip_grad_norm_
    assert tg.nn.utils.clip_grad_norm is tg.optim.clip_grad_norm


def test_optimizer_state_edge_cases():
    """Loaded buffers take the parameter's dtype; a momentum step counts as an in-place
    change; a state with nesterov but no momentum, or a bad buffer, changes nothing; Adam
    keeps its weight decay when an old state has none, and per-parameter step counts."""
    p = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = tg.optim.SGD([p], lr=0.1, momentum=0.9)
    opt.load_state_dict({"lr": np.asarray(0.1), "momentum": np.asarray(0.9),
                         "momentum_buffer.0": np.ones(3)})  # float64, from an old checkpoint
    assert opt.state_dict()["state"][0]["momentum_buffer"].dtype == np.float32
    p.grad = tg.Tensor(np.ones(3, np.float32))
    before = p._version.count
    opt.step()
    assert p._version.count == before + 1

    plain = tg.optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        plain.load_state_dict({"lr": 0.1, "momentum": 0.0, "nesterov": True})
    with pytest.raises(ValueError, match=r"momentum_buffer has shape \(4,\)"):
        plain.load_state_dict({"lr": 0.1, "momentum": 0.9, "momentum_buffer.0": np.zeros(4)})
    assert plain.momentum == 0.0 and plain.state == {}
    plain.step()  # still plain SGD

    tg.optim.Adam([p], eps=0.0)  # as PyTorch allows
    adam = tg.optim.Adam([p], weight_decay=0.1)
    state = adam.state_dict()
    del state["param_groups"][0]["weight_decay"]
    adam.load_state_dict(state)  # a group without it takes the default, as torch's
    assert adam.param_groups[0]["weight_decay"] == 0.1

    q = tg.Tensor(np.ones(2), requires_grad=True)
    two = tg.optim.Adam([p, q])
    two.step()  # p has a .grad, q has none
    again = tg.optim.Adam([p, q])
    again.load_state_dict(two.state_dict())
    assert again.steps == [1, 0] and list(two.state_dict()["state"]) == [0]


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_global_norm_sq_is_a_0d_array(name):
    total = tg.backends.get(name).global_norm_sq([np.ones(3, np.float32), np.ones(2)])
    assert isinstance(total, np.ndarray) and total.shape == () and float(total) == 5.0


def test_a_module_list_entry_is_replaced_in_place_and_a_linear_output_takes_plus_equals():
    layers = tg.nn.Sequential(tg.nn.Linear(2, 3), tg.nn.ReLU(), tg.nn.Linear(3, 1))
    new = tg.nn.Linear(3, 1)
    layers[-1] = new
    assert layers[2] is new and list(layers.state_dict())[-2:] == ["2.W", "2.b"]
    with pytest.raises(TypeError, match="holds Modules, got list"):
        layers[0] = []
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        layers[3] = new
    X = tg.Tensor(np.ones((4, 2)))
    out = layers[0](X)
    out += X @ tg.Tensor(np.ones((2, 3)))  # PyTorch's out += identity, while recording
    out.sum().backward()
    np.testing.assert_array_equal(layers[0].b.grad.numpy(), [4.0, 4.0, 4.0])


def test_module_list_setitem_replaces_the_attribute_too():
    ml = tg.nn.ModuleList([tg.nn.Linear(2, 2), tg.nn.Linear(2, 2)])
    new = tg.nn.Linear(2, 3)
    ml[-2] = new
    assert getattr(ml, "0") is new and ml[0] is new
    assert [n for n, _ in ml.named_modules()] == ["", "0", "1"]


def test_linear_on_3d_input_is_the_2d_product_of_its_rows():
    """One (T·N, d) @ (d, h) product, not a batched one: the same bits as the rows alone."""
    lin = tg.nn.Linear(256, 33)
    X = np.random.default_rng(0).standard_normal((8, 35, 256)).astype(np.float32)
    np.testing.assert_array_equal(lin(tg.Tensor(X)).numpy().reshape(-1, 33),
                                  lin(tg.Tensor(X.reshape(-1, 256))).numpy())

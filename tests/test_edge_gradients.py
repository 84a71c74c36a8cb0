"""Values and gradients at the edges — ±0, ±inf, NaN, denormals, huge — as PyTorch's.

Two kinds of check. ``EXPECTED`` writes down, case by case, what PyTorch gives (and
what the maths says: relu'(0) = 0, a mask that selects rather than multiplies, so
``sqrt(relu(x))`` has gradient 0 at x < 0, not ``0 · ∞ = NaN``); those run without
torch. With torch installed, every op is also compared with it over a grid of
special values and over hypothesis draws mixing special and ordinary numbers.

"The same" here (:func:`assert_same`): NaN where PyTorch has NaN, the same infinities,
zeros with the same sign, and finite values within a few float ulps (NumPy's and
PyTorch's libm round exp/tanh/pow differently in the last bit).

Deliberate differences, not compared (docs/autograd.md, section 8): ``number /
tensor`` here divides (PyTorch multiplies by the reciprocal, which overflows for a
denormal); ``min``'s gradient is composed as ``-max(-x)``, so its zeros may be -0.0
where PyTorch's are +0.0 (equal, as numbers).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg

INF, NAN = math.inf, math.nan
DENORMAL = {"float32": 1e-40, "float64": 1e-310}  # below the smallest normal number
HUGE = {"float32": 3e38, "float64": 1e308}
DTYPES = ("float32", "float64")

# inf - inf, 0 * inf and the like are what these tests are about
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def assert_same(actual, expected, what: str, ulps: int = 4) -> None:
    """NaN, ±inf and signed zeros exactly; finite values within ``ulps`` ulps."""
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=actual.dtype)
    assert actual.shape == expected.shape, what
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), \
        f"{what}: NaN {actual} vs {expected}"
    real = ~np.isnan(expected)
    a, e = actual[real], expected[real]
    assert np.array_equal(np.isinf(a), np.isinf(e)) and np.array_equal(
        a[np.isinf(a)], e[np.isinf(e)]), f"{what}: infinities {actual} vs {expected}"
    assert np.array_equal(np.signbit(a), np.signbit(e)), f"{what}: signs {actual} vs {expected}"
    finite = np.isfinite(e)
    eps = np.finfo(actual.dtype).eps
    ok = np.abs(a[finite] - e[finite]) <= ulps * eps * np.abs(e[finite])
    assert ok.all(), f"{what}: {actual} vs {expected}"


def value_and_grad(f, x, dtype, backend="numpy"):
    t = tg.Tensor(np.asarray(x, dtype=dtype), dtype=dtype, backend=backend, requires_grad=True)
    y = f(t)
    y.sum().backward()
    return y.numpy(), t.grad.numpy()


# ------------------------------------------------------- written-down expectations
D = "denormal"  # placeholders, replaced per dtype
H = "huge"
NEG_D, NEG_H = "-denormal", "-huge"


def _real(v, dtype):
    table = {D: DENORMAL[dtype], NEG_D: -DENORMAL[dtype], H: HUGE[dtype], NEG_H: -HUGE[dtype]}
    return table.get(v, v) if isinstance(v, str) else v


FUNCTIONS = {
    "relu": lambda x: x.relu(),
    "abs": lambda x: x.abs(),
    "sqrt": lambda x: x.sqrt(),
    "x ** 0.5": lambda x: x ** 0.5,
    "x ** 0": lambda x: x ** 0,
    "x ** 2": lambda x: x ** 2,
    "x ** -1": lambda x: x ** -1,
    "sqrt(relu(x))": lambda x: x.relu().sqrt(),
    "log(clamp(x, 0))": lambda x: x.clamp(0).log(),
    "1 / relu(x)": lambda x: tg.Tensor(np.ones((), x.dtype), dtype=x.dtype,
                                       backend=x.backend) / x.relu(),
    "clamp(x, -1, 1)": lambda x: x.clamp(-1, 1),
    "clamp(x, min=0)": lambda x: x.clamp(min=0),
    "log": lambda x: x.log(),
    "exp": lambda x: x.exp(),
    "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(),
}

# (function, x, value, gradient): PyTorch 2's results, each also what the rules say
EXPECTED = [
    # relu: 0 at and below 0 (relu'(0) = 0), NaN passes value and gradient on,
    # relu(-0.0) is -0.0 (the input at the tie)
    ("relu", -INF, 0.0, 0.0), ("relu", -2.0, 0.0, 0.0), ("relu", -0.0, -0.0, 0.0),
    ("relu", 0.0, 0.0, 0.0), ("relu", D, D, 1.0), ("relu", 2.0, 2.0, 1.0),
    ("relu", H, H, 1.0), ("relu", INF, INF, 1.0), ("relu", NAN, NAN, 1.0),
    # abs: sign(x), 0 at ±0 (the subgradient PyTorch picks) and at NaN
    ("abs", -INF, INF, -1.0), ("abs", NEG_D, D, -1.0), ("abs", -0.0, 0.0, 0.0),
    ("abs", 0.0, 0.0, 0.0), ("abs", 3.0, 3.0, 1.0), ("abs", NAN, NAN, 0.0),
    # sqrt: IEEE's sqrt(-0.0) = -0.0, so sqrt'(-0.0) = 1 / (2 · -0.0) = -inf
    ("sqrt", -0.0, -0.0, -INF), ("sqrt", 0.0, 0.0, INF), ("sqrt", 4.0, 2.0, 0.25),
    ("sqrt", -1.0, NAN, NAN), ("sqrt", -INF, NAN, NAN), ("sqrt", INF, INF, 0.0),
    ("sqrt", NAN, NAN, NAN), ("x ** 0.5", -0.0, -0.0, -INF), ("x ** 0.5", -INF, NAN, NAN),
    # x ** 0 is constant: gradient 0 everywhere, NaN included (no 0 · x ** -1)
    ("x ** 0", 0.0, 1.0, 0.0), ("x ** 0", NAN, 1.0, 0.0), ("x ** 0", INF, 1.0, 0.0),
    ("x ** 2", -0.0, 0.0, -0.0), ("x ** 2", -INF, INF, -INF), ("x ** 2", H, INF, INF),
    ("x ** -1", -0.0, -INF, -INF), ("x ** -1", 0.0, INF, -INF), ("x ** -1", INF, 0.0, -0.0),
    # a mask selects: no 0 · inf = NaN behind sqrt, log or 1/x at 0
    ("sqrt(relu(x))", -1.0, 0.0, 0.0), ("sqrt(relu(x))", -INF, 0.0, 0.0),
    ("sqrt(relu(x))", 0.0, 0.0, 0.0), ("sqrt(relu(x))", -0.0, -0.0, 0.0),
    ("sqrt(relu(x))", 4.0, 2.0, 0.25), ("sqrt(relu(x))", NAN, NAN, NAN),
    ("log(clamp(x, 0))", -1.0, -INF, 0.0), ("log(clamp(x, 0))", -INF, -INF, 0.0),
    ("log(clamp(x, 0))", 0.0, -INF, INF), ("log(clamp(x, 0))", -0.0, -INF, -INF),
    ("log(clamp(x, 0))", NAN, NAN, 0.0),
    ("1 / relu(x)", -1.0, INF, 0.0), ("1 / relu(x)", 0.0, INF, 0.0),
    ("1 / relu(x)", -0.0, -INF, 0.0), ("1 / relu(x)", 2.0, 0.5, -0.25),
    ("1 / relu(x)", NAN, NAN, NAN),
    # clamp: the gradient passes at the bounds themselves, not outside; NaN: none
    ("clamp(x, -1, 1)", -1.0, -1.0, 1.0), ("clamp(x, -1, 1)", 1.0, 1.0, 1.0),
    ("clamp(x, -1, 1)", -2.0, -1.0, 0.0), ("clamp(x, -1, 1)", INF, 1.0, 0.0),
    ("clamp(x, -1, 1)", -INF, -1.0, 0.0), ("clamp(x, -1, 1)", NAN, NAN, 0.0),
    ("clamp(x, min=0)", -0.0, -0.0, 1.0), ("clamp(x, min=0)", NEG_D, 0.0, 0.0),
    # the smooth ones at their limits
    ("log", 0.0, -INF, INF), ("log", -0.0, -INF, -INF), ("log", INF, INF, 0.0),
    ("log", -1.0, NAN, -1.0), ("log", D, None, None),
    ("exp", -INF, 0.0, 0.0), ("exp", INF, INF, INF), ("exp", H, INF, INF), ("exp", NAN, NAN, NAN),
    ("tanh", INF, 1.0, 0.0), ("tanh", -INF, -1.0, 0.0), ("tanh", NEG_H, -1.0, 0.0),
    ("tanh", -0.0, -0.0, 1.0), ("tanh", NAN, NAN, NAN),
    ("sigmoid", INF, 1.0, 0.0), ("sigmoid", -INF, 0.0, 0.0), ("sigmoid", H, 1.0, 0.0),
    ("sigmoid", NEG_H, 0.0, 0.0), ("sigmoid", NAN, NAN, NAN),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "x", "value", "grad"), EXPECTED,
                         ids=[f"{c[0]}@{c[1]}" for c in EXPECTED])
def test_expected_edge_values_and_gradients(backend, dtype, name, x, value, grad):
    x = _real(x, dtype)
    v, g = value_and_grad(FUNCTIONS[name], [x], dtype, backend)
    if value is None:  # log at a denormal: finite, and 1/x overflows only in float32
        assert np.isfinite(v).all() and g[0] == np.asarray(1 / np.asarray(x, dtype))
        return
    assert_same(v, [_real(value, dtype)], f"{name}({x}) value")
    assert_same(g, [_real(grad, dtype)], f"{name}'({x})")


@pytest.mark.parametrize("dtype", DTYPES)
def test_division_by_a_denormal(backend, dtype):
    """``a / b``'s gradient for b is PyTorch's ``-g · ((a / b) / b)``: it neither squares
    b (0 for a denormal) nor forms g / b first, so 0 / denormal gives -0, not NaN."""
    d = DENORMAL[dtype]
    for a, b, grad_a, grad_b in ((0.0, d, 1 / np.asarray(d, dtype), -0.0),
                                 (1.0, d, INF, -INF), (-0.0, d, 1 / np.asarray(d, dtype), 0.0),
                                 (0.0, 0.0, INF, NAN), (1.0, -0.0, -INF, -INF),
                                 (d, d, 1 / np.asarray(d, dtype), -1 / np.asarray(d, dtype))):
        A = tg.Tensor(np.asarray(a, dtype), dtype=dtype, backend=backend, requires_grad=True)
        B = tg.Tensor(np.asarray(b, dtype), dtype=dtype, backend=backend, requires_grad=True)
        (A / B).backward()
        assert_same(A.grad.numpy(), grad_a, f"d({a}/{b})/da")
        assert_same(B.grad.numpy(), grad_b, f"d({a}/{b})/db")


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_ties_and_nan_share_as_torch(backend, dtype):
    def grad_of(f, rows):
        return value_and_grad(f, rows, dtype, backend)[1]

    rows = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]
    # max(): one value, shared by its two ties; along an axis: each row's ties share
    assert_same(grad_of(lambda x: x.max(), rows), [[0, .5, .5], [0, 0, 0]], "max() ties")
    third = 1 / np.asarray(3.0, dtype)
    assert_same(grad_of(lambda x: x.amax(1), rows), [[0, .5, .5], [third] * 3], "amax ties")
    assert_same(grad_of(lambda x: x.amax(1, keepdims=True), rows), [[0, .5, .5], [third] * 3],
                "amax keepdims")
    assert np.array_equal(grad_of(lambda x: x.min(), rows), [[1, 0, 0], [0, 0, 0]])
    # NaN: max() is NaN and the NaNs share its gradient; a row with a NaN along an axis
    # gets NaN everywhere (PyTorch's amax: g / 0 · 0)
    nans = [[1.0, NAN, 3.0], [NAN, 2.0, 2.0]]
    assert_same(grad_of(lambda x: x.max(), nans), [[0, .5, 0], [.5, 0, 0]], "max() NaN")
    assert_same(grad_of(lambda x: x.amax(1), [[1.0, 3.0, 3.0], [NAN, 2.0, 2.0]]),
                [[0, .5, .5], [NAN] * 3], "amax NaN row")
    infs = [[INF, INF, 3.0], [-INF, -INF, -INF]]
    assert_same(grad_of(lambda x: x.amax(1), infs), [[.5, .5, 0], [third] * 3], "amax ±inf")


def test_hot_ops_keep_a_finite_gradient_finite():
    """Mul, Add, Tanh, Sigmoid, MatMul unchanged: with finite inputs their gradients
    are finite and what the formula gives."""
    x = np.array([[-3.0, -1e-3, 0.0, 2.0]])
    t = tg.Tensor(x, dtype="float64", requires_grad=True)
    ((t * t + t).tanh().sigmoid() @ tg.Tensor(np.ones((4, 1)), dtype="float64")).sum().backward()
    s = 1 / (1 + np.exp(-np.tanh(x * x + x)))
    expected = s * (1 - s) * (1 - np.tanh(x * x + x) ** 2) * (2 * x + 1)
    assert np.allclose(t.grad.numpy(), expected, rtol=1e-12, atol=0)


# ---------------------------------------------------------------- masks, as properties
SPECIALS = [-INF, -1e30, -2.0, -1.0, -1e-40, -0.0, 0.0, 1e-40, 0.5, 1.0, 2.0, 1e30, INF, NAN]
special_or_plain = st.one_of(st.sampled_from(SPECIALS),
                             st.floats(-1e6, 1e6, allow_nan=False, width=32))
arrays = st.lists(special_or_plain, min_size=1, max_size=8)


@given(arrays)
def test_masked_gradients_are_never_nan_where_the_mask_is_off(values):
    """Where the mask of relu / clamp is off, the gradient is exactly 0 whatever comes
    from downstream (inf from sqrt', log' or (1/x)' at 0), and 1 where it is on."""
    x = np.array(values, dtype=np.float32)
    off = ~(x > 0)  # relu: x <= 0; NaN passes
    for f in (lambda t: t.relu().sqrt(), lambda t: 1 / t.relu()):
        g = value_and_grad(f, x, "float32")[1]
        assert (g[off & ~np.isnan(x)] == 0).all()
    g = value_and_grad(lambda t: t.clamp(0).log(), x, "float32")[1]
    assert (g[(x < 0) | np.isnan(x)] == 0).all()
    g = value_and_grad(lambda t: t.relu(), x, "float32")[1]
    assert np.array_equal(g, np.where(x <= 0, 0, 1).astype(np.float32))
    g = value_and_grad(lambda t: t.clamp(-1, 1), x, "float32")[1]
    assert np.array_equal(g, ((x >= -1) & (x <= 1)).astype(np.float32))
    g = value_and_grad(lambda t: t.abs(), x, "float32")[1]
    assert np.array_equal(g, np.nan_to_num(np.sign(x), nan=0.0))


# ------------------------------------------------------------------ PyTorch as oracle
def torch_value_and_grad(f, x, dtype):
    torch = pytest.importorskip("torch")
    t = torch.tensor(np.asarray(x, dtype=dtype), requires_grad=True)
    y = f(t)
    y.sum().backward()
    return y.detach().numpy(), t.grad.numpy()


def _torch_fns():
    torch = pytest.importorskip("torch")
    return {
        "relu": torch.relu, "abs": torch.abs, "sqrt": torch.sqrt,
        "x ** 0.5": lambda x: x ** 0.5, "x ** 0": lambda x: x ** 0, "x ** 2": lambda x: x ** 2,
        "x ** -1": lambda x: x ** -1,
        "sqrt(relu(x))": lambda x: torch.sqrt(torch.relu(x)),
        "log(clamp(x, 0))": lambda x: torch.log(torch.clamp(x, 0)),
        "1 / relu(x)": lambda x: torch.ones((), dtype=x.dtype) / torch.relu(x),
        "clamp(x, -1, 1)": lambda x: x.clamp(-1, 1), "clamp(x, min=0)": lambda x: x.clamp(min=0),
        "log": torch.log, "exp": torch.exp, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    }


MORE = {  # beyond FUNCTIONS: powers and reductions
    "x ** 3": (lambda x: x ** 3, lambda x: x ** 3),
    "x ** -2": (lambda x: x ** -2, lambda x: x ** -2),
    "x ** -0.5": (lambda x: x ** -0.5, lambda x: x ** -0.5),
    "x ** 1.5": (lambda x: x ** 1.5, lambda x: x ** 1.5),
    "x ** 1": (lambda x: x ** 1, lambda x: x ** 1),
    "max()": (lambda x: x.max(), lambda x: x.max()),
    "sum": (lambda x: x.sum(), lambda x: x.sum()),
    "x * x": (lambda x: x * x, lambda x: x * x),
    "x / x": (lambda x: x / x, lambda x: x / x),
    "neg": (lambda x: -x, lambda x: -x),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FUNCTIONS) + list(MORE))
def test_special_values_match_torch(name, dtype):
    torch_fns = _torch_fns()
    ours, theirs = MORE[name] if name in MORE else (FUNCTIONS[name], torch_fns[name])
    x = [_real(v, dtype) for v in (-INF, NEG_H, -2.0, -1.0, NEG_D, -0.0, 0.0, D, 0.5, 1.0,
                                   2.0, H, INF, NAN)]
    v, g = value_and_grad(ours, x, dtype)
    tv, tgr = torch_value_and_grad(theirs, x, dtype)
    assert_same(v, tv, f"{name} value")
    assert_same(g, tgr, f"{name} gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_binary_ops_at_special_pairs_match_torch(op, dtype):
    torch = pytest.importorskip("torch")
    specials = [_real(v, dtype) for v in (-INF, -1.0, NEG_D, -0.0, 0.0, D, 1.0, H, INF, NAN)]
    a = np.repeat(np.array(specials, dtype), len(specials))
    b = np.tile(np.array(specials, dtype), len(specials))
    fn = {"+": lambda p, q: p + q, "-": lambda p, q: p - q, "*": lambda p, q: p * q,
          "/": lambda p, q: p / q}[op]
    A, B = (tg.Tensor(v, dtype=dtype, requires_grad=True) for v in (a, b))
    fn(A, B).sum().backward()
    tA, tB = (torch.tensor(v, requires_grad=True) for v in (a, b))
    out = fn(tA, tB)
    out.sum().backward()
    assert_same(fn(A, B).numpy(), out.detach().numpy(), f"a {op} b")
    assert_same(A.grad.numpy(), tA.grad.numpy(), f"d(a {op} b)/da")
    assert_same(B.grad.numpy(), tB.grad.numpy(), f"d(a {op} b)/db")


@pytest.mark.parametrize("name", ["relu", "abs", "sqrt(relu(x))", "log(clamp(x, 0))",
                                  "1 / relu(x)", "clamp(x, -1, 1)", "x ** 0.5", "x ** 2", "max()"])
@given(values=arrays)
def test_special_draws_match_torch(name, values):
    torch_fns = _torch_fns()
    ours, theirs = MORE[name] if name in MORE else (FUNCTIONS[name], torch_fns[name])
    v, g = value_and_grad(ours, values, "float32")
    tv, tgr = torch_value_and_grad(theirs, values, "float32")
    assert_same(v, tv, f"{name} value at {values}")
    assert_same(g, tgr, f"{name} gradient at {values}")


@pytest.mark.parametrize("dim", [None, 0, 1])
@given(rows=st.lists(st.lists(st.sampled_from([-INF, -1.0, 0.0, 1.0, 2.0, INF, NAN]),
                              min_size=3, max_size=3), min_size=1, max_size=3))
def test_max_with_ties_and_nan_matches_torch(dim, rows):
    torch = pytest.importorskip("torch")
    x = np.array(rows, dtype=np.float32)
    ours = (lambda t: t.max()) if dim is None else (lambda t: t.amax(dim))
    theirs = (lambda t: t.max()) if dim is None else (lambda t: torch.amax(t, dim))
    v, g = value_and_grad(ours, x, "float32")
    tv, tgr = torch_value_and_grad(theirs, x, "float32")
    assert_same(v, tv, "max value")
    assert_same(g, tgr, "max gradient")
    if dim is not None:  # max(dim): (values, indices), the gradient to the index picked
        v, g = value_and_grad(lambda t: t.max(dim).values, x, "float32")
        tv, tgr = torch_value_and_grad(lambda t: t.max(dim).values, x, "float32")
        assert_same(v, tv, "max(dim) value")
        assert_same(g, tgr, "max(dim) gradient")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_select_keeps_g_where_the_mask_is_on_and_gives_plus_zero_elsewhere(dtype):
    from tinygrad_rnn.ops import select

    g = np.array([INF, -INF, NAN, -0.0, 1.5, -2.0, DENORMAL["float64"]], dtype=dtype)
    mask = np.array([False, True, True, True, False, True, False])
    out = select(mask, g)
    expected = np.where(mask, g, np.zeros((), dtype))
    assert out.dtype == g.dtype
    assert np.array_equal(out, expected, equal_nan=True)
    assert np.array_equal(np.signbit(out), np.signbit(expected))
    wide = np.broadcast_to(np.asarray(INF, dtype), (2, 3))  # a read-only broadcast view
    assert np.array_equal(select(np.array([True, False, True]), wide),
                          np.where([True, False, True], wide, 0))

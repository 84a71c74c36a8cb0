"""The ops of issue 20 (``where``, ``maximum``, ``einsum``, the activations, the losses,
...; the table is ``op_cases.py``): values and gradients against PyTorch in float64,
gradients against float64 finite differences (hypothesis), numpy-vs-numba parity,
torch's choices at ties and special values, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import check_gradients
from hypothesis import given, settings
from hypothesis import strategies as st
from op_cases import CASES
from strategies import axis_args, f64_arrays, floats, pair_shapes, seeds, shapes

import tinygrad_rnn as tg
from tinygrad_rnn.nn import functional as F


def _draw_inputs(case, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(case.lo, case.hi, s) for s in case.shapes]


def _run(m, case, arrays, dtype, backend="numpy"):
    """``case`` on tensors of ``m`` (tg or torch): (value, grads) as float64 NumPy."""
    if m is tg:
        xs = [tg.Tensor(a, dtype=dtype, backend=backend, requires_grad=True) for a in arrays]
    else:
        xs = [m.tensor(a, dtype=getattr(m, np.dtype(dtype).name), requires_grad=True)
              for a in arrays]
    out = case.fn(m, *xs)
    u = np.random.default_rng(1).standard_normal(tuple(out.shape))
    if m is tg:
        out.backward(u)
        return out.numpy(), [x.grad.numpy() if x.grad is not None else None for x in xs]
    out.backward(m.tensor(u, dtype=out.dtype))
    return (out.detach().numpy(),
            [x.grad.numpy() if x.grad is not None else None for x in xs])


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_against_torch(case):
    """Values and gradients equal torch's in float64 (to a few hundred roundings) and in
    float32 (to float32 rounding), with the same dtype."""
    torch = pytest.importorskip("torch")
    arrays = _draw_inputs(case, 0)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 2e-5)):
        value, grads = _run(tg, case, arrays, dtype)
        t_value, t_grads = _run(torch, case, arrays, dtype)
        assert value.dtype == t_value.dtype and value.shape == t_value.shape
        np.testing.assert_allclose(value, t_value, rtol=tol, atol=tol)
        for i, (g, tg_) in enumerate(zip(grads, t_grads)):
            assert (g is None) == (tg_ is None), f"input {i}"
            if g is not None:
                np.testing.assert_allclose(g, tg_, rtol=tol, atol=tol, err_msg=f"input {i}")


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_gradient_finite_differences(case):
    """Every op's gradient against float64 central finite differences, on values
    hypothesis draws inside the op's smooth domain."""

    @settings(max_examples=4)
    @given(seed=seeds)
    def check(seed):
        arrays = _draw_inputs(case, seed)
        check_gradients(lambda *xs: case.fn(tg, *xs), arrays, "numpy", seed,
                        use_gradcheck=False)

    check()


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_numba_parity(case, other_backend):
    """The same float32 program on numba (or cupy) gives numpy's values and gradients
    (all plain ``xp`` code: float32 rounding at most)."""
    arrays = _draw_inputs(case, 3)
    value, grads = _run(tg, case, arrays, np.float32, "numpy")
    o_value, o_grads = _run(tg, case, arrays, np.float32, other_backend)
    np.testing.assert_allclose(o_value, value, rtol=1e-5, atol=1e-5)
    for g, og in zip(grads, o_grads):
        np.testing.assert_allclose(og, g, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------ ties and special values
def _both(fn, *arrays, dtype=np.float64):
    """fn(m, *tensors) on tg and torch: [(value, grads) for each]."""
    torch = pytest.importorskip("torch")
    out = []
    for m in (tg, torch):
        if m is tg:
            xs = [tg.Tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
        else:
            xs = [torch.tensor(a, dtype=getattr(torch, np.dtype(dtype).name),
                               requires_grad=True) for a in arrays]
        y = fn(m, *xs)
        y.sum().backward()
        val = y.numpy() if m is tg else y.detach().numpy()
        out.append((val, [x.grad.numpy() if x.grad is not None else None for x in xs]))
    return out


def _assert_same(ours, theirs, rtol=0.0):
    """Equal (NaN where torch has NaN, the same infinities), to ``rtol``."""
    np.testing.assert_allclose(ours[0], theirs[0], rtol=rtol, atol=0)
    for g, tg_ in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(g, tg_, rtol=rtol, atol=0)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-310, 50.0, -50.0])


@pytest.mark.parametrize("name,fn", [
    ("maximum", lambda m, x, y: m.maximum(x, y)),
    ("minimum", lambda m, x, y: m.minimum(x, y)),
    ("pow", lambda m, x, y: x ** y),
    ("where", lambda m, x, y: m.where(x > y, x, y)),
])
def test_binary_special_values_as_torch(name, fn):
    """Every pair of special values (ties, ±0, ±inf, NaN, a denormal): values and
    gradients torch's (ties split exactly in half; 0 ** 0 = 1 with torch's gradients;
    a negative base to a fractional power is NaN), to an ulp where ``a ** (b - 1)`` rounds
    differently."""
    a, b = np.meshgrid(np.concatenate([SPECIAL, [2.0, 0.5, -2.5]]),
                       np.concatenate([SPECIAL, [2.0, 0.5, -2.5]]))
    with np.errstate(all="ignore"):
        ours, theirs = _both(fn, a.ravel(), b.ravel())
    _assert_same(ours, theirs, rtol=0 if name != "pow" else 4e-16)


@pytest.mark.parametrize("name,fn", [
    ("leaky_relu", lambda m, x: m.nn.functional.leaky_relu(x, 0.2)),
    ("elu", lambda m, x: m.nn.functional.elu(x, 0.7)),
    ("softplus", lambda m, x: m.nn.functional.softplus(x)),
    ("softplus_threshold", lambda m, x: m.nn.functional.softplus(x, 2.0, 1.0)),
    ("logsigmoid", lambda m, x: m.nn.functional.logsigmoid(x)),
    ("silu", lambda m, x: m.nn.functional.silu(x)),
    ("gelu", lambda m, x: m.nn.functional.gelu(x)),
    ("gelu_tanh", lambda m, x: m.nn.functional.gelu(x, approximate="tanh")),
])
def test_activation_special_values_as_torch(name, fn):
    """At 0 (the kinks: leaky_relu'(0) is the slope, elu'(0) is alpha), at the softplus
    threshold, ±inf, NaN, ±50: torch's values and gradients (to an ulp or two where
    the formulas' roundings differ)."""
    x = np.concatenate([SPECIAL, [0.5, 10.0, 0.5 - 1e-9, 0.5 + 1e-9]])
    with np.errstate(all="ignore"):
        ours, theirs = _both(fn, x)
    _assert_same(ours, theirs, rtol=1e-15)


def test_logsumexp_special_values_as_torch():
    """Rows with +inf, -inf, all -inf (value -inf, NaN gradient, as torch), NaN and ±1000."""
    x = np.array([[0.0, np.inf, 1.0], [-np.inf, 0.0, 1.0], [-np.inf] * 3, [np.nan, 0.0, 1.0],
                  [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -999.0]])
    with np.errstate(invalid="ignore"):  # the test's sum of +inf and -inf rows
        ours, theirs = _both(lambda m, t: m.logsumexp(t, 1), x)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-15)
    np.testing.assert_allclose(ours[1][0], theirs[1][0], rtol=1e-15)


def test_where_gradient_is_a_select_not_a_product():
    """An infinite upstream gradient on the branch taken gives the other branch 0, not
    0 * inf = NaN."""
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = tg.Tensor([3.0, 4.0], requires_grad=True)
    out = tg.where(tg.Tensor([True, False]), x, y)
    out.backward(np.array([np.inf, 1.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [np.inf, 0.0])
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 1.0])


def test_bce_at_zero_and_one_as_torch():
    """Probabilities of exactly 0 and 1: the loss is 100 (torch's log clamp), the
    gradients torch's (the 1e-12 floor), no inf or NaN."""
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-20])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.3, 1.0])
    ours, theirs = _both(lambda m, a, b: m.nn.functional.binary_cross_entropy(
        a, b, reduction="none"), x, t)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-15)
    for g, tg_ in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(g, tg_, rtol=1e-15)


def test_bce_with_logits_large_logits_as_torch():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    ours, theirs = _both(lambda m, a, b: m.nn.functional.binary_cross_entropy_with_logits(
        a, b, reduction="none"), x, t)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-15)
    for g, tg_ in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(g, tg_, rtol=1e-15, atol=1e-300)


def test_var_std_edge_cases_as_torch():
    """One element with correction 1 (0/0: NaN), constant rows (std's gradient: NaN)."""
    torch = pytest.importorskip("torch")
    for fn in (lambda m, x: x.var(), lambda m, x: x.std(1), lambda m, x: x.var(1, correction=2)):
        for data in (np.array([[2.0]]), np.array([[1.0, 1.0], [0.0, 3.0]])):
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # torch: "degrees of freedom"
                ours, theirs = _both(fn, data)
            np.testing.assert_allclose(ours[0], theirs[0])
            np.testing.assert_allclose(ours[1][0], theirs[1][0])
    del torch


def test_int_inputs_dtypes_as_torch():
    """Integer inputs: argmin, cumsum (int64), one_hot (int64), logsumexp (float32),
    maximum/where keep torch's result dtypes."""
    torch = pytest.importorskip("torch")
    a = np.array([[3, 1, 2], [0, 5, 5]], dtype=np.int32)
    x, t = tg.Tensor(a), torch.tensor(a)
    pairs = [
        (x.argmin(1), t.argmin(1)), (x.argmin(), t.argmin()),
        (x.argmin(0, keepdim=True), t.argmin(0, keepdim=True)),
        (x.cumsum(1), t.cumsum(1)), (tg.maximum(x, x), torch.maximum(t, t)),
        (x.logsumexp(1), t.logsumexp(1)),
        (F.one_hot(tg.Tensor(a.astype(np.int64))), torch.nn.functional.one_hot(
            t.to(torch.int64))),
        (F.one_hot(tg.Tensor([0, 2]), 4), torch.nn.functional.one_hot(torch.tensor([0, 2]), 4)),
        (tg.where(x > 1, x, 0), torch.where(t > 1, t, 0)),
        (tg.where(x > 1, 1.0, 2), torch.where(t > 1, 1.0, 2)),
        (tg.Tensor([2, 3]) ** tg.Tensor([3, 2]), torch.tensor([2, 3]) ** torch.tensor([3, 2])),
    ]
    for ours, theirs in pairs:
        assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch.")), (ours, theirs)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_argmin_ties_and_nan_as_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 0.0, 0.0], [np.nan, -1.0, np.nan], [2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(tg.Tensor(a).argmin(1).numpy(),
                                  torch.tensor(a).argmin(1).numpy())


def test_default_cross_entropy_keeps_the_fused_path():
    """The char-LM's call: one SoftmaxCrossEntropy node, the values it always gave."""
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    y = rng.integers(0, 4, 5)
    loss = F.cross_entropy(x, y)
    assert type(loss._ctx).__name__ == "SoftmaxCrossEntropy"
    direct = tg.ops.SoftmaxCrossEntropy.apply(x, tg.Tensor(y), reduction="mean")
    np.testing.assert_array_equal(loss.numpy(), direct.numpy())
    for kw in ({"reduction": "sum"}, {"reduction": "none"}, {"ignore_index": -1}):
        assert type(F.cross_entropy(x, y, **kw)._ctx).__name__ == "SoftmaxCrossEntropy"
    # ignore_index among the targets, weights, smoothing: the composed path
    assert type(F.cross_entropy(x, np.where(y == 0, -100, y))._ctx).__name__ != \
        "SoftmaxCrossEntropy"


def test_cross_entropy_all_ignored_is_nan_as_torch():
    torch = pytest.importorskip("torch")
    x = np.zeros((2, 3))
    with np.errstate(invalid="ignore"):  # 0 / 0
        ours = F.cross_entropy(tg.Tensor(x, dtype=np.float64), [-100, -100]).item()
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor([-100, -100]))
    assert np.isnan(ours) and np.isnan(theirs.item())


def test_einsum_against_numpy_random_forms():
    """Values of einsum forms against NumPy's own einsum (float64)."""
    rng = np.random.default_rng(0)
    for eq, sizes in [("ij,jk->ki", [(2, 3), (3, 4)]), ("bii->b", [(2, 3, 3)]),
                       ("iij->j", [(2, 2, 3)]), ("...i,i->...", [(2, 3, 4), (4,)]),
                       ("ab,cd->abcd", [(2, 1), (1, 3)]), ("i->", [(5,)])]:
        arrays = [rng.standard_normal(s) for s in sizes]
        out = tg.einsum(eq, *[tg.Tensor(a, dtype=np.float64) for a in arrays])
        np.testing.assert_allclose(out.numpy(), np.einsum(eq, *arrays), rtol=1e-12)


@settings(max_examples=10)
@given(seed=seeds, eq=st.sampled_from(["iij->j", "bii->bi", "ij,ij->", "ijk,ik->j"]))
def test_einsum_repeated_and_summed_letters_gradients(seed, eq):
    """Diagonals and letters summed inside one operand: finite differences."""
    sizes = {"iij->j": [(2, 2, 3)], "bii->bi": [(2, 3, 3)], "ij,ij->": [(2, 3), (2, 3)],
             "ijk,ik->j": [(2, 3, 2), (2, 2)]}[eq]
    rng = np.random.default_rng(seed)
    check_gradients(lambda *xs: tg.einsum(eq, *xs), [rng.standard_normal(s) for s in sizes],
                    "numpy", seed, reference=lambda *a: np.einsum(eq, *a))


@settings(max_examples=10)
@given(x=f64_arrays((3, 4)), y=f64_arrays((3, 4), floats(-1, 1)), seed=seeds)
def test_where_maximum_random_ties(x, y, seed):
    """Drawn values collide (hypothesis likes equal numbers): maximum/minimum's split
    gradient still sums to the upstream gradient."""
    a, b = tg.Tensor(x, dtype=np.float64, requires_grad=True), tg.Tensor(
        np.where(np.arange(12).reshape(3, 4) % 2 == 0, x, y), dtype=np.float64,
        requires_grad=True)
    u = np.random.default_rng(seed).standard_normal((3, 4))
    for fn in (tg.maximum, tg.minimum):
        a.grad = b.grad = None
        fn(a, b).backward(u)
        np.testing.assert_allclose(a.grad.numpy() + b.grad.numpy(), u, rtol=1e-15)


def test_in_place_change_of_saved_input_is_refused():
    """A saved input changed in place before backward() is refused (the version counter)."""
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = tg.Tensor([0.5, 3.0])
    out = tg.maximum(x, y)
    with tg.no_grad():
        y += 1
    with pytest.raises(RuntimeError, match="changed in place"):
        out.sum().backward()


def test_expand_is_a_read_only_view_and_view_refuses_a_copy():
    x = tg.Tensor(np.arange(3.0))
    e = x.expand(2, 3)
    assert np.shares_memory(e.data, x.data)
    with pytest.raises(ValueError, match="read-only"):
        e[0, 0] = 5.0
    t = tg.Tensor(np.arange(6.0).reshape(2, 3)).permute(1, 0)
    with pytest.raises(RuntimeError, match="reshape"):
        t.view(6)
    assert t.reshape(6).shape == (6,)


# ------------------------------------------------------------------------ bad input
X = tg.Tensor(np.zeros((2, 3)))
I = tg.Tensor(np.zeros((2, 1), dtype=np.int64))


@pytest.mark.parametrize("call,error,match", [
    (lambda: tg.where(X, X, X), TypeError, "condition must be a bool"),
    (lambda: tg.where(X > 0, X, "a"), TypeError, "other must be a Tensor or a number"),
    (lambda: tg.where(X > 0, X, tg.Tensor(np.zeros(4))), ValueError, "broadcast"),
    (lambda: tg.maximum(X, tg.Tensor(np.zeros(4))), ValueError, "maximum.*broadcast"),
    (lambda: tg.maximum([1.0], X), TypeError, "maximum: input must be a Tensor"),
    (lambda: tg.pow(X, "2"), TypeError, "exponent"),
    (lambda: tg.Tensor([2]) ** tg.Tensor([-1]), ValueError, "negative integer powers"),
    (lambda: X.expand(3, 3), ValueError, "expanded size"),
    (lambda: X.expand(3), ValueError, "number of sizes"),
    (lambda: X.expand(-1, 2, 3), ValueError, "-1 is not allowed"),
    (lambda: X.var(2), IndexError, "dim 2 is out of range"),
    (lambda: X.var(0, dim=1), TypeError, "got multiple values|not both"),
    (lambda: X.var(0, axis=1), TypeError, "dim or axis"),
    (lambda: tg.Tensor([1, 2]).var(), TypeError, "float tensor"),
    (lambda: X.std(correction="1"), TypeError, "correction must be a number"),
    (lambda: X.var(0, keepdim=1), TypeError, "keepdim must be True or False"),
    (lambda: X.logsumexp(), TypeError, "required argument dim"),
    (lambda: X.logsumexp(-3), IndexError, "out of range"),
    (lambda: X.cumsum(), TypeError, "dim"),
    (lambda: X.cumsum(1.5), TypeError, "dim must be an int"),
    (lambda: X.argmin(5), IndexError, "out of range"),
    (lambda: X.argmin((0, 1)), TypeError, "one dim"),
    (lambda: X.gather(1, tg.Tensor([[0.0]])), TypeError, "index must be an integer"),
    (lambda: X.gather(1, tg.Tensor([[3]])), IndexError, "index 3 is out of bounds"),
    (lambda: X.gather(1, tg.Tensor([[-1]])), IndexError, "index -1 is out of bounds"),
    (lambda: X.gather(1, tg.Tensor([0])), ValueError, "as many dimensions"),
    (lambda: X.gather(1, tg.Tensor(np.zeros((3, 1), np.int64))), ValueError, "larger than"),
    (lambda: X.gather(2, I), IndexError, "dim 2"),
    (lambda: X.gather(1, [[0]]), TypeError, "index must be a Tensor"),
    (lambda: X.scatter(1, I, tg.Tensor(np.zeros((2, 1)), dtype=np.float64)), TypeError,
     "dtype"),
    (lambda: X.scatter(1, I, "x"), TypeError, "src must be"),
    (lambda: X.scatter(1, I), TypeError, "src or value"),
    (lambda: X.scatter_add(1, I, 1.0), TypeError, "src must be a Tensor"),
    (lambda: X.scatter(1, I, tg.Tensor(np.zeros(2, np.float32))), ValueError, "dimensions"),
    (lambda: X.index_select(0, tg.Tensor([[0]])), ValueError, "1-D"),
    (lambda: X.index_select(0, tg.Tensor([2])), IndexError, "out of bounds"),
    (lambda: X.masked_fill(X, 1.0), TypeError, "mask must be a bool"),
    (lambda: X.masked_fill(X > 0, X), ValueError, "0-d tensor"),
    (lambda: X.masked_fill(X > 0, "a"), TypeError, "value must be"),
    (lambda: X.flatten(1, 0), ValueError, "start_dim"),
    (lambda: X.flatten(0, 4), IndexError, "out of range"),
    (lambda: X.view(4, 2), ValueError, "cannot reshape"),
    (lambda: X.permute(0), ValueError, "1 dims given"),
    (lambda: X.permute(0, 0), IndexError, "repeat"),
    (lambda: X.permute(0, 2), IndexError, "out of range"),
    (lambda: X.repeat(2), ValueError, "can not be smaller"),
    (lambda: X.repeat(2, -1), ValueError, ">= 0"),
    (lambda: X.chunk(0), ValueError, "chunks must be positive"),
    (lambda: X.split(0), ValueError, "split_size must be positive"),
    (lambda: X.split([1, 1], 1), ValueError, "add up"),
    (lambda: X.split(1, 3), IndexError, "out of range"),
    (lambda: tg.einsum("ij,jk", X), ValueError, "2 operands' subscripts"),
    (lambda: tg.einsum("ijk", X), ValueError, "do not fit"),
    (lambda: tg.einsum("ij,jk->ik", X, X), ValueError, "size 3 in one operand and 2"),
    (lambda: tg.einsum("ij->k", X), ValueError, "appears in no operand"),
    (lambda: tg.einsum("i1", X), ValueError, "invalid equation"),
    (lambda: tg.einsum("i>j->i", X), ValueError, "invalid equation"),
    (lambda: tg.einsum("ij->i->j", X), ValueError, "invalid equation"),
    (lambda: tg.einsum("ij", np.zeros((2, 3))), TypeError, "operand 0 must be a Tensor"),
    (lambda: F.gelu(X, approximate="fast"), ValueError, "approximate"),
    (lambda: F.leaky_relu(X, "a"), TypeError, "negative_slope must be a number"),
    (lambda: F.softplus(X, beta=0), ValueError, "beta must be nonzero"),
    (lambda: F.elu([1.0]), TypeError, "Tensor"),
    (lambda: F.layer_norm(X, 2), ValueError, "normalized_shape"),
    (lambda: F.layer_norm(X, 3, weight=tg.Tensor(np.ones(2))), ValueError, "weight of shape"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------- drawn shapes, dims and indices
@settings(max_examples=15)
@given(shapes=pair_shapes, data=st.data(), seed=seeds,
       op=st.sampled_from(["where", "maximum", "minimum", "pow"]))
def test_broadcasting_binary_ops_finite_differences(shapes, data, seed, op):
    (sa, sb), _ = shapes.input_shapes, shapes.result_shape
    lo = 0.5 if op == "pow" else -3.0
    a = data.draw(f64_arrays(sa, floats(lo, 3.0)))
    b = data.draw(f64_arrays(sb, floats(-2.0, 2.0)))
    cond = np.random.default_rng(seed).random(shapes.result_shape) < 0.5
    fns = {"where": lambda x, y: tg.where(tg.Tensor(cond), x, y),
           "maximum": tg.maximum, "minimum": tg.minimum, "pow": lambda x, y: x ** y}
    refs = {"where": lambda x, y: np.where(cond, x, y), "maximum": np.maximum,
            "minimum": np.minimum, "pow": np.power}
    if op in ("maximum", "minimum"):  # finite differences need no tie within the step
        assume_far = np.abs(np.subtract(a, b)) > 1e-4
        if not np.all(assume_far):
            return
    check_gradients(fns[op], [a, b], "numpy", seed, reference=refs[op], use_gradcheck=False)


@settings(max_examples=20)
@given(data=st.data(), seed=seeds, op=st.sampled_from(["var", "std", "logsumexp", "cumsum"]),
       keepdim=st.booleans())
def test_reductions_drawn_dims_finite_differences(data, seed, op, keepdim):
    shape = data.draw(shapes(min_dims=0, max_dims=3, min_side=2))
    x = data.draw(f64_arrays(shape))
    ndim = len(shape)
    if op == "cumsum":
        dim = data.draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1))
        fn = lambda t: t.cumsum(dim)  # noqa: E731
        ref = lambda a: np.cumsum(a.reshape(a.shape or (1,)), axis=dim).reshape(a.shape)  # noqa: E731
    else:
        dim = data.draw(axis_args(ndim))
        if dim is None:
            dim = tuple(range(ndim)) if op == "logsumexp" else None
        axes = None if dim is None else tuple(np.atleast_1d(dim) % max(ndim, 1)) if ndim else ()
        if op == "logsumexp":
            fn = lambda t: t.logsumexp(dim, keepdim)  # noqa: E731
            ref = lambda a: np.log(np.exp(a).sum(axis=axes, keepdims=keepdim))  # noqa: E731
        else:
            fn = lambda t: getattr(t, op)(dim, keepdim=keepdim)  # noqa: E731
            np_fn = {"var": np.var, "std": np.std}[op]
            ref = lambda a: np_fn(a, axis=axes, ddof=1, keepdims=keepdim)  # noqa: E731
            if np.prod([shape[i] for i in (axes if axes is not None else range(ndim))]) < 2:
                return  # N - 1 = 0: no finite value to differentiate
            if op == "std" and np.min(np.var(x, axis=axes)) < 1e-3:
                return  # near a zero deviation the square root's curvature is huge
    check_gradients(fn, [x], "numpy", seed, reference=ref, use_gradcheck=False)


@settings(max_examples=15)
@given(data=st.data(), seed=seeds, op=st.sampled_from(["gather", "scatter_add",
                                                        "index_select"]))
def test_indexing_ops_drawn_indices_finite_differences(data, seed, op):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1))
    ndim = len(shape)
    dim = data.draw(st.integers(-ndim, ndim - 1))
    d = dim % ndim
    rng = np.random.default_rng(seed)
    x = data.draw(f64_arrays(shape))
    if op == "index_select":
        idx = rng.integers(0, shape[d], data.draw(st.integers(0, 4)))
        check_gradients(lambda t: t.index_select(dim, tg.Tensor(idx)), [x], "numpy", seed,
                        reference=lambda a: np.take(a, idx, axis=d), use_gradcheck=False)
        return
    ishape = tuple(rng.integers(1, n + 1) if i != d else rng.integers(1, 4)
                   for i, n in enumerate(shape))
    idx = rng.integers(0, shape[d], ishape)
    if op == "gather":
        def ref(a):
            sliced = a[tuple(slice(0, n) if i != d else slice(None) for i, n in enumerate(ishape))]
            return np.take_along_axis(sliced, idx, axis=d)
        check_gradients(lambda t: t.gather(dim, tg.Tensor(idx)), [x], "numpy", seed,
                        reference=ref, use_gradcheck=False)
    else:
        src = rng.normal(size=ishape)

        def ref(a, s):
            out = a.copy()
            grid = np.indices(ishape, sparse=True)
            grid = tuple(idx if i == d else g for i, g in enumerate(grid))
            np.add.at(out, grid, s)
            return out
        check_gradients(lambda t, s: t.scatter_add(dim, tg.Tensor(idx), s), [x, src], "numpy",
                        seed, reference=ref, use_gradcheck=False)


# ------------------------------------------------------------------------ in place
def test_in_place_variants_as_torch():
    torch = pytest.importorskip("torch")
    a = np.arange(12.0).reshape(3, 4)
    idx = np.array([[1], [3], [0]])
    ours = tg.Tensor(a, dtype=np.float64)
    theirs = torch.tensor(a)
    assert ours.masked_fill_(tg.Tensor(np.array([True, False, False, True])), -1.0) is ours
    theirs.masked_fill_(torch.tensor([True, False, False, True]), -1.0)
    ours.scatter_(1, tg.Tensor(idx), 7.0)
    theirs.scatter_(1, torch.tensor(idx), 7.0)
    src = np.full((3, 2), 5.0)
    ours.scatter_(0, tg.Tensor(idx[:1].repeat(2, axis=1)), tg.Tensor(src, dtype=np.float64))
    theirs.scatter_(0, torch.tensor(idx[:1].repeat(2, axis=1)), torch.tensor(src))
    rep = np.array([[0, 0, 2], [1, 1, 1]])  # repeats accumulate
    add = np.arange(6.0).reshape(2, 3) + 0.5
    assert ours.scatter_add_(1, tg.Tensor(rep), tg.Tensor(add, dtype=np.float64)) is ours
    theirs.scatter_add_(1, torch.tensor(rep), torch.tensor(add))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_in_place_variants_keep_autograd_safe():
    """Refused on a tensor that takes part in a graph; under no_grad the version count
    moves, so a graph that saved the tensor refuses its backward."""
    w = tg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="autograd"):
        w.masked_fill_(tg.Tensor([True, False]), 0.0)
    with pytest.raises(RuntimeError, match="autograd"):
        w.scatter_(0, tg.Tensor([0]), 0.0)
    with pytest.raises(RuntimeError, match="autograd"):
        w.scatter_add_(0, tg.Tensor([0]), tg.Tensor([1.0]))
    with pytest.raises(RuntimeError, match="autograd"):  # src in a graph: refused too
        tg.Tensor([0.0, 0.0]).scatter_add_(0, tg.Tensor([0]), w[:1] * 2)
    x = tg.Tensor([1.0, 2.0])
    loss = (w * x).sum()  # Mul saves x
    x.masked_fill_(tg.Tensor([True, False]), 5.0)
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()
    with pytest.raises(ValueError, match="cannot grow"):
        x.masked_fill_(tg.Tensor(np.ones((2, 2), bool)), 0.0)


def test_numpy_axis_is_an_alias_of_dim():
    """``axis=`` gives what ``dim=`` gives (checks.dim_alias); both at once is refused."""
    x = tg.Tensor(np.random.default_rng(0).normal(size=(3, 4)), dtype=np.float64)
    i = tg.Tensor([2, 0])
    pairs = [(x.var(axis=1), x.var(dim=1)), (x.std(axis=0, keepdim=True), x.std(0, keepdim=True)),
             (x.logsumexp(axis=-1), x.logsumexp(-1)), (x.cumsum(axis=0), x.cumsum(0)),
             (x.argmin(axis=1), x.argmin(1)), (tg.index_select(x, None, i, axis=1),
                                               x.index_select(1, i)),
             (x.split(2, axis=1)[1], x.split(2, 1)[1]), (x.chunk(3, axis=0)[2], x.chunk(3)[2])]
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for call in (lambda: x.cumsum(0, axis=0), lambda: x.split(2, 1, axis=1),
                 lambda: tg.gather(x, 1, tg.Tensor([[0]]), axis=1)):
        with pytest.raises(TypeError, match="dim or axis"):
            call()


def test_einsum_large_operands_take_the_blas_path_with_the_same_results():
    """Past 4096 elements einsum contracts through BLAS (optimize=True): the same values
    and gradients as matmul, and a diagonal's gradient still the identity."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 24, 24)), rng.standard_normal((8, 24, 24))
    ta, tb = (tg.Tensor(v, dtype=np.float64, requires_grad=True) for v in (a, b))
    u = rng.standard_normal((8, 24, 24))
    y = tg.einsum("bij,bjk->bik", ta, tb)
    y.backward(u)
    np.testing.assert_allclose(y.numpy(), a @ b, rtol=1e-12)
    np.testing.assert_allclose(ta.grad.numpy(), u @ b.transpose(0, 2, 1), rtol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), a.transpose(0, 2, 1) @ u, rtol=1e-12)
    d = tg.Tensor(rng.standard_normal((70, 70)), dtype=np.float64, requires_grad=True)
    tg.einsum("ii", d).backward()
    np.testing.assert_array_equal(d.grad.numpy(), np.eye(70))


def test_l1_loss_at_a_zero_difference_as_torch():
    """|x - t|' at x = t is 0 (torch's sign(0)), for each element that ties."""
    x = np.array([1.0, 2.0, -0.0, 3.0])
    t = np.array([1.0, 1.0, 0.0, 4.0])
    ours, theirs = _both(lambda m, a, b: m.nn.functional.l1_loss(a, b, reduction="none"), x, t)
    _assert_same(ours, theirs)

"""Every differentiable op: autograd gradient == float64 central finite differences.

Each test draws shapes and values with hypothesis, runs on every backend (the
``backend`` fixture), checks the forward value against NumPy in float64, passes a
random upstream gradient to ``backward`` and compares every input's gradient with
finite differences and with ``tg.gradcheck`` (see ``helpers.check_gradients``).
"""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from helpers import EPS64, check_gradients, np_log_softmax, np_logsumexp, t64
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    away_from_zero,
    axis_args,
    basic_indices,
    cat_case,
    distinct_arrays,
    f64_arrays,
    floats,
    pair_shapes,
    seeds,
    shapes,
)

import tinygrad_rnn as tg
from tinygrad_rnn.nn import functional as F

# ------------------------------------------------------------------ binary arithmetic
BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
}


@pytest.mark.parametrize("op", sorted(BINARY))
@given(data=st.data(), seed=seeds)
def test_binary_broadcast(backend, op, data, seed):
    (sa, sb), _ = data.draw(pair_shapes)
    a = data.draw(f64_arrays(sa))
    # keep denominators away from 0: d/db (a/b) = -a/b² stays bounded
    b = data.draw(f64_arrays(sb, away_from_zero(0.5) if op == "div" else None))
    fn, ref = BINARY[op]
    check_gradients(fn, [a, b], backend, seed, reference=ref)


@pytest.mark.parametrize("op", sorted(BINARY))
@given(data=st.data(), seed=seeds)
def test_binary_with_python_scalar(backend, op, data, seed):
    """``x op c`` and ``c op x`` (the reflected operators) lift the number to x's dtype."""
    a = data.draw(f64_arrays(data.draw(shapes()), away_from_zero(0.5)))
    c = data.draw(away_from_zero(0.5))
    fn, ref = BINARY[op]
    check_gradients(lambda x: fn(x, c), [a], backend, seed, reference=lambda x: ref(x, c))
    check_gradients(lambda x: fn(c, x), [a], backend, seed, reference=lambda x: ref(c, x))


@given(data=st.data(), seed=seeds)
def test_neg(backend, data, seed):
    a = data.draw(f64_arrays(data.draw(shapes())))
    check_gradients(lambda x: -x, [a], backend, seed, reference=np.negative)


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5])
@given(data=st.data(), seed=seeds)
def test_pow_scalar_exponent(backend, exponent, data, seed):
    integral = float(exponent).is_integer()
    # non-integer powers need a positive base; negative powers a base away from 0
    elements = away_from_zero(0.3) if integral else floats(0.3, 3.0)
    a = data.draw(f64_arrays(data.draw(shapes()), elements))
    check_gradients(
        lambda x: x**exponent, [a], backend, seed, reference=lambda x: np.power(x, float(exponent))
    )


# ------------------------------------------------------------------------------ matmul
@given(data=st.data(), seed=seeds)
def test_matmul_numpy_rules(backend, data, seed):
    """2-D, batched N-D with broadcast batch axes, and 1-D operands, as ``np.matmul``."""
    (sa, sb), result = data.draw(
        hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=3)
    )
    a, b = data.draw(f64_arrays(sa)), data.draw(f64_arrays(sb))
    out = check_gradients(lambda x, y: x @ y, [a, b], backend, seed, reference=np.matmul)
    assert out.shape == result


@given(n=st.integers(1, 4), k=st.integers(1, 4), m=st.integers(1, 4), data=st.data(), seed=seeds)
def test_matmul_2d(backend, n, k, m, data, seed):
    a, b = data.draw(f64_arrays((n, k))), data.draw(f64_arrays((k, m)))
    check_gradients(lambda x, y: x @ y, [a, b], backend, seed, reference=np.matmul)


# -------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("name", ["sum", "mean"])
@given(data=st.data(), keepdims=st.booleans(), seed=seeds)
def test_sum_mean(backend, name, data, keepdims, seed):
    shape = data.draw(shapes())
    a = data.draw(f64_arrays(shape))
    axis = data.draw(axis_args(len(shape)))
    ref = getattr(np, name)
    check_gradients(
        lambda x: getattr(x, name)(axis=axis, keepdims=keepdims),
        [a],
        backend,
        seed,
        reference=lambda x: ref(x, axis=axis, keepdims=keepdims),
    )


@given(data=st.data(), keepdims=st.booleans(), seed=seeds)
def test_max_distinct_values(backend, data, keepdims, seed):
    shape = data.draw(shapes())
    a = data.draw(distinct_arrays(shape))  # no ties, and ±FD_STEP cannot reorder them
    axis = data.draw(axis_args(len(shape)))
    check_gradients(
        lambda x: x.amax(axis=axis, keepdims=keepdims),
        [a],
        backend,
        seed,
        reference=lambda x: np.max(x, axis=axis, keepdims=keepdims),
    )


@given(n=st.integers(2, 5), seed=seeds)
def test_max_ties_share_gradient(backend, n, seed):
    """Not differentiable at a tie; the documented choice splits the gradient equally."""
    a = np.full((n,), np.random.default_rng(seed).standard_normal())
    x = t64(a, backend)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(n, 1.0 / n), rtol=4 * EPS64)


# ---------------------------------------------------------------------------- unaries
UNARY = {
    "exp": (floats(), np.exp),
    "log": (floats(0.1, 3.0), np.log),  # positive inputs only
    "tanh": (floats(), np.tanh),
    "sigmoid": (floats(), lambda x: 1 / (1 + np.exp(-x))),
    "relu": (away_from_zero(1e-3), lambda x: np.maximum(x, 0)),  # |x| > 1e-3: off the kink
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data(), seed=seeds)
def test_unary(backend, name, data, seed):
    elements, ref = UNARY[name]
    a = data.draw(f64_arrays(data.draw(shapes()), elements))
    check_gradients(lambda x: getattr(x, name)(), [a], backend, seed, reference=ref)


# ------------------------------------------------------------------------------ shapes
@given(data=st.data(), seed=seeds)
def test_reshape(backend, data, seed):
    shape = data.draw(shapes())
    a = data.draw(f64_arrays(shape))
    new = list(data.draw(st.permutations(shape)))  # same size, other layout
    if new and data.draw(st.booleans()):
        new[data.draw(st.integers(0, len(new) - 1))] = -1
    new = tuple(new) + (1,) * data.draw(st.integers(0, 1))
    check_gradients(
        lambda x: x.reshape(new), [a], backend, seed, reference=lambda x: x.reshape(new)
    )
    check_gradients(lambda x: x.reshape(-1), [a], backend, seed, reference=lambda x: x.ravel())


@given(data=st.data(), seed=seeds)
def test_transpose(backend, data, seed):
    shape = data.draw(shapes(min_dims=1, max_dims=4))
    a = data.draw(f64_arrays(shape))
    d0, d1 = (data.draw(st.integers(-len(shape), len(shape) - 1)) for _ in range(2))
    check_gradients(lambda x: x.transpose(d0, d1), [a], backend, seed,
                    reference=lambda x: np.swapaxes(x, d0, d1))
    check_gradients(lambda x: x.T, [a], backend, seed, reference=lambda x: x.T)


@given(data=st.data(), seed=seeds)
def test_getitem_basic(backend, data, seed):
    shape = data.draw(shapes(min_dims=1))
    a = data.draw(f64_arrays(shape))
    index = data.draw(basic_indices(shape))
    check_gradients(lambda x: x[index], [a], backend, seed, reference=lambda x: x[index])


@given(data=st.data(), seed=seeds, as_tensor=st.booleans())
def test_getitem_integer_arrays_accumulate(backend, data, seed, as_tensor):
    """Repeated indices: the backward must add every copy's gradient, not keep one."""
    shape = data.draw(shapes(min_dims=1))
    a = data.draw(f64_arrays(shape))
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    idx_shape = data.draw(shapes(min_dims=1, max_dims=2, max_side=4))
    idx = data.draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(-n, n - 1)))
    index = (slice(None),) * axis + (tg.Tensor(idx, backend=backend) if as_tensor else idx,)
    np_index = (slice(None),) * axis + (idx,)
    check_gradients(lambda x: x[index], [a], backend, seed, reference=lambda x: x[np_index])


@given(n=st.integers(1, 4), repeats=st.integers(2, 5), seed=seeds)
def test_getitem_repeated_index_sums(backend, n, repeats, seed):
    """x[[i, i, ..., i]].sum() has gradient ``repeats`` at i, 0 elsewhere."""
    i = seed % n
    x = t64(np.zeros(n), backend)
    x[[i] * repeats].sum().backward()
    expected = np.zeros(n)
    expected[i] = repeats
    np.testing.assert_array_equal(x.grad.numpy(), expected)


@pytest.mark.parametrize("dtype, rows", [
    (np.uint8, [20, 3, 20]),  # 20 * width wraps in uint8
    (np.int8, [100, -3]),  # -3 % 200 does not fit int8
    (np.int16, [1000, 5]),
    (np.uint16, [1000, 999]),
    (np.uint64, [1, 3]),
])
def test_row_gather_gradient_with_small_or_unsigned_index_dtypes(backend, dtype, rows):
    """The backward of W[rows] (an embedding lookup) lands on exactly the rows picked,
    whatever the index dtype: row * width must not be computed in it."""
    V, width = 2000, 100
    W = tg.Tensor(np.zeros((V, width)), backend=backend, requires_grad=True)
    W[np.array(rows, dtype=dtype)].sum().backward()
    want = np.zeros((V, width))
    np.add.at(want, np.array(rows), 1.0)
    np.testing.assert_array_equal(W.grad.numpy(), want)


@given(case=cat_case(), data=st.data(), seed=seeds)
def test_cat(backend, case, data, seed):
    shape_list, axis = case
    arrays = [data.draw(f64_arrays(s)) for s in shape_list]
    check_gradients(
        lambda *xs: tg.cat(xs, axis=axis),
        arrays,
        backend,
        seed,
        reference=lambda *xs: np.concatenate(xs, axis=axis),
    )


@given(data=st.data(), count=st.integers(1, 3), seed=seeds)
def test_stack(backend, data, count, seed):
    shape = data.draw(shapes(max_dims=2))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    arrays = [data.draw(f64_arrays(shape)) for _ in range(count)]
    check_gradients(
        lambda *xs: tg.stack(xs, axis=axis),
        arrays,
        backend,
        seed,
        reference=lambda *xs: np.stack(xs, axis=axis),
    )


# -------------------------------------------------------------------- nn.functional
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data(), seed=seeds)
def test_softmax_family(backend, name, data, seed):
    shape = data.draw(shapes(min_dims=1))
    a = data.draw(f64_arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    fn = getattr(F, name)

    def ref(x):
        out = np_log_softmax(x, axis)
        return np.exp(out) if name == "softmax" else out

    check_gradients(lambda x: fn(x, axis=axis), [a], backend, seed, reference=ref)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(n=st.integers(1, 4), c=st.integers(1, 4), data=st.data(), seed=seeds)
def test_cross_entropy(backend, reduction, n, c, data, seed):
    logits = data.draw(f64_arrays((n, c)))
    targets = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))

    def ref(x):
        per_row = np_logsumexp(x, 1) - x[np.arange(n), targets]
        return {"mean": per_row.mean(), "sum": per_row.sum(), "none": per_row}[reduction]

    target_t = tg.Tensor(targets, backend=backend)
    check_gradients(
        lambda x: F.cross_entropy(x, target_t, reduction=reduction),
        [logits],
        backend,
        seed,
        reference=ref,
    )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(n=st.integers(1, 40), c=st.integers(1, 30), seed=seeds)
def test_cross_entropy_reduction_is_sum_and_div_to_the_bit(backend, reduction, dtype, n, c,
                                                            seed):
    """The reduction inside the fused op rounds exactly as ``loss.sum()`` (and ``/ N``)."""
    rng = np.random.default_rng(seed)
    logits, targets = rng.normal(size=(n, c)) * 3, rng.integers(0, c, n)
    results = []
    for fused in (True, False):
        x = tg.Tensor(logits, dtype=dtype, backend=backend, requires_grad=True)
        if fused:
            loss = F.cross_entropy(x, targets, reduction=reduction)
        else:
            rows = F.cross_entropy(x, targets, reduction="none")
            loss = rows.sum() if reduction == "sum" else rows.mean()
        loss.backward()
        results.append((loss.numpy(), x.grad.numpy()))
    (fused_loss, fused_grad), (loss, grad) = results
    assert fused_loss.shape == () and fused_loss.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(fused_loss, loss)
    np.testing.assert_array_equal(fused_grad, grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data(), seed=seeds)
def test_mse_loss(backend, reduction, data, seed):
    shape = data.draw(shapes())
    pred, target = data.draw(f64_arrays(shape)), data.draw(f64_arrays(shape))

    def ref(p, t):
        sq = (p - t) ** 2
        return {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]

    check_gradients(
        lambda p, t: F.mse_loss(p, t, reduction=reduction),
        [pred, target],
        backend,
        seed,
        reference=ref,
    )


@given(v=st.integers(1, 5), h=st.integers(1, 3), data=st.data(), seed=seeds)
def test_embedding(backend, v, h, data, seed):
    weight = data.draw(f64_arrays((v, h)))
    idx = data.draw(
        hnp.arrays(
            np.int64, data.draw(shapes(max_dims=2, max_side=4)), elements=st.integers(0, v - 1)
        )
    )
    idx_t = tg.Tensor(idx, backend=backend)
    check_gradients(
        lambda w: F.embedding(idx_t, w), [weight], backend, seed, reference=lambda w: w[idx]
    )


# ------------------------------------------------------------------------------ astype
@given(data=st.data(), seed=seeds)
def test_astype_round_trip_finite_differences(backend, data, seed):
    """float64 -> float32 -> float64, then a smooth function.

    The float32 round trip moves each input by up to ε32/2 relative, so central
    differences need a larger step. Perturbing element i changes only term i of
    ``sum(f * u)``: its rounding error ≤ |u_i|·|d tanh|·z²·ε32/2 ≤ 9·6e-8·|u_i| per
    evaluation, i.e. ≤ 5.4e-4·|u_i| after dividing two of them by 2h (h = 1e-3);
    truncation h²/6·|f'''| ≲ 1e-5·|u_i|. Hence atol = 1e-3·(1 + max|u|).
    """
    a = data.draw(f64_arrays(data.draw(shapes())))
    x = t64(a, backend)
    out = (x.astype(np.float32).astype(np.float64) * x).tanh()
    assert out.dtype == np.float64
    u = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(u)
    assert x.grad.dtype == np.float64
    step = 1e-3
    numeric = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        plus, minus = a.copy(), a.copy()
        plus[idx] += step
        minus[idx] -= step
        f = lambda z: np.sum(np.tanh(z.astype(np.float32).astype(np.float64) * z) * u)  # noqa: E731
        numeric[idx] = (f(plus) - f(minus)) / (2 * step)
    np.testing.assert_allclose(
        x.grad.numpy(), numeric, rtol=1e-3, atol=1e-3 * (1 + float(np.abs(u).max(initial=0.0)))
    )


@pytest.mark.parametrize(("src", "dst"), [("float32", "float64"), ("float64", "float32")])
@given(data=st.data(), seed=seeds)
def test_astype_gradient_is_upstream_cast_back(backend, src, dst, data, seed):
    """A cast's Jacobian is the identity: the gradient is the upstream one in the input dtype."""
    a = data.draw(f64_arrays(data.draw(shapes())))
    x = tg.Tensor(a, dtype=src, backend=backend, requires_grad=True)
    y = x.astype(dst)
    assert y.dtype == np.dtype(dst) and y.requires_grad
    want = a.astype(src).astype(dst)
    if backend == "cupy":  # CuPy compiles with -ftz: float32 subnormals become zeros
        as32 = np.abs(a.astype(np.float32))
        want = np.where((as32 > 0) & (as32 < np.finfo(np.float32).tiny), 0, want)
    np.testing.assert_array_equal(y.numpy(), want)
    u = np.random.default_rng(seed).standard_normal(y.shape).astype(dst)
    y.backward(u)
    assert x.grad.dtype == np.dtype(src)
    np.testing.assert_array_equal(x.grad.numpy(), u.astype(src))


# ----------------------------------------------------------------------- composition
@given(data=st.data(), seed=seeds)
def test_composite_expression(backend, data, seed):
    """A small graph mixing broadcasting, matmul, reductions and a node used twice."""
    a = data.draw(f64_arrays((3, 2)))
    w = data.draw(f64_arrays((2, 4)))
    b = data.draw(f64_arrays((4,)))

    def fn(x, W, c):
        z = (x @ W + c).tanh()
        return (z * z).sum(axis=0) - z.mean(axis=1, keepdims=True).exp()

    def ref(x, W, c):
        z = np.tanh(x @ W + c)
        return (z * z).sum(axis=0) - np.exp(z.mean(axis=1, keepdims=True))

    check_gradients(fn, [a, w, b], backend, seed, reference=ref)


# -------------------------------------------------------------------- extreme inputs
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_extreme_logits(backend, dtype, reduction):
    logits = np.array(
        [[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0], [-1000.0, -1000.0, -1000.0]]
    )
    targets = np.array([0, 2, 1])
    x = tg.Tensor(logits, dtype=dtype, backend=backend, requires_grad=True)
    loss = F.cross_entropy(x, tg.Tensor(targets, backend=backend), reduction=reduction)
    per_row = np.array([0.0, np.log(2.0), np.log(3.0)])  # exact: shifts cancel
    expected = {"mean": per_row.mean(), "sum": per_row.sum(), "none": per_row}[reduction]
    tol = 8 * float(np.finfo(dtype).eps)  # a handful of roundings of O(1) values
    np.testing.assert_allclose(loss.numpy(), expected, rtol=tol, atol=tol)
    upstream = np.ones(loss.shape)
    loss.backward(upstream)
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    onehot = np.eye(3)[targets]
    weight = 1 / 3 if reduction == "mean" else 1.0
    grad = x.grad.numpy()
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, (probs - onehot) * weight, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_confident_correct_logit_has_zero_loss(backend, dtype):
    x = tg.Tensor([[1000.0, -1000.0]], dtype=dtype, backend=backend, requires_grad=True)
    loss = F.cross_entropy(x, tg.Tensor([0], backend=backend))
    loss.backward()
    # log(1 + e^-2000) underflows to exactly 0 in either precision
    assert loss.item() == 0.0
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((1, 2)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_extreme(backend, dtype, name):
    a = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -999.0]])
    x = tg.Tensor(a, dtype=dtype, backend=backend, requires_grad=True)
    out = getattr(F, name)(x)
    expected = np_log_softmax(a)  # the float64 reference is exact at these values
    if name == "softmax":
        expected = np.exp(expected)
    values = out.numpy()
    assert np.isfinite(values).all()
    eps = float(np.finfo(dtype).eps)
    # a few roundings each; log-softmax values up to 2000 are covered by rtol
    np.testing.assert_allclose(values, expected, rtol=8 * eps, atol=8 * eps)
    u = np.random.default_rng(0).standard_normal(a.shape)
    out.backward(u.astype(dtype))
    grad = x.grad.numpy()
    assert np.isfinite(grad).all()
    p = np.exp(np_log_softmax(a))
    if name == "softmax":  # J^T u = p * (u - <p, u>)
        expected_grad = p * (u - (p * u).sum(axis=1, keepdims=True))
    else:  # u - p * sum(u)
        expected_grad = u - p * u.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad, expected_grad, rtol=16 * eps, atol=16 * eps * 4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_extreme(backend, dtype):
    x = tg.Tensor([100.0, -100.0], dtype=dtype, backend=backend, requires_grad=True)
    y = x.sigmoid()
    y.sum().backward()
    values, grad = y.numpy(), x.grad.numpy()
    assert np.isfinite(values).all() and np.isfinite(grad).all()
    assert values[0] == 1.0  # 1 - e^-100 rounds to 1 in float32 and float64
    assert grad[0] == 0.0  # σ(1-σ) with σ == 1 exactly
    # σ(-100) = e^-100 / (1 + e^-100) ≈ 3.72e-44: a float32 subnormal, so compare absolutely
    if dtype == "float64":
        np.testing.assert_allclose(values[1], np.exp(-100.0), rtol=4 * EPS64)
    elif backend == "cupy":  # CuPy compiles its kernels with -ftz: subnormals flush to 0
        assert values[1] in (0.0, np.float32(np.exp(-100.0)))
    else:  # float32 subnormal spacing is 1.4e-45
        np.testing.assert_allclose(values[1], np.exp(-100.0), rtol=0, atol=2e-45)
    assert 0.0 <= grad[1] <= values[1]


@pytest.mark.parametrize("name", ["abs", "clamp", "min", "shape_views"])
def test_composed_pytorch_ops(backend, name):
    """abs, clamp, min and the reshaping views, built from primitives: their values are
    NumPy's, their gradients pass gradcheck away from kinks (float64), and at a kink they
    take PyTorch's choice."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    a[np.abs(a) < 0.05] = 0.3  # gradcheck's step of 1e-6 must not cross a kink
    x = tg.Tensor(a, dtype="float64", backend=backend, requires_grad=True)
    fns = {
        "abs": (lambda t: t.abs(), np.abs(a)),
        "clamp": (lambda t: t.clamp(-0.5, 0.5), np.clip(a, -0.5, 0.5)),
        "min": (lambda t: t.amin(axis=1), a.min(axis=1)),
        "shape_views": (lambda t: t.unsqueeze(1).squeeze(1).unsqueeze(-1).squeeze().flatten(),
                        a.reshape(-1)),
    }
    fn, want = fns[name]
    np.testing.assert_array_equal(fn(x).numpy(), want)
    assert tg.gradcheck(fn, [x])
    kink = tg.Tensor([0.0, -0.5, 0.5, 2.0], backend=backend, requires_grad=True)
    (kink.abs() + kink.clamp(-0.5, 0.5)).sum().backward()
    np.testing.assert_array_equal(kink.grad.numpy(), [1.0, 0.0, 2.0, 1.0])


def test_squeeze_of_a_dim_not_of_size_1_leaves_it_as_torch_does():
    x = tg.Tensor(np.zeros((2, 1)))
    assert x.squeeze(0).shape == (2, 1) and x.squeeze((0, 1)).shape == (2,)


def test_clamp_lands_exactly_on_its_bounds(backend):
    """float32 values far from a bound are clipped to the bound itself (a composed
    ``x + relu(lo - x)`` rounds: -1 + (1e-8 + 1) is 0 in float32), infinities included."""
    x = tg.Tensor(np.array([-1.0, -3.7, 1e8, np.inf, -np.inf, 0.05], np.float32),
                  backend=backend)
    np.testing.assert_array_equal(x.clamp(0.1, 0.2).numpy(),
                                  np.float32([0.1, 0.1, 0.2, 0.2, 0.1, 0.1]))
    assert x.clamp(min=1e-8).numpy()[0] == np.float32(1e-8)
    with pytest.raises(ValueError, match="clamp needs min, max or both"):
        x.clamp()


def test_integer_min_abs_clamp_do_not_wrap(backend):
    u = tg.Tensor(np.array([0, 5, 3], np.uint8), backend=backend)
    i = tg.Tensor(np.array([-2**31, 0, 7], np.int32), backend=backend)
    assert int(u.min()) == 0 and u.abs().numpy().tolist() == [0, 5, 3]
    assert int(i.min()) == -2**31 and i.min().dtype == np.int32
    assert i.clamp(0, 5).numpy().tolist() == [0, 0, 5] and i.clamp(0, 5).dtype == np.int32
    assert not bool(tg.Tensor([True, False], backend=backend).min())


def test_squeeze_takes_a_tuple_and_unsqueeze_one_axis():
    x = tg.Tensor(np.zeros((1, 2, 1)))
    assert x.squeeze((0, 2)).shape == (2,) and x.squeeze(-1).shape == (1, 2)
    with pytest.raises(TypeError, match="unsqueeze's dim must be an int, got \\(0, 1\\)"):
        x.unsqueeze((0, 1))

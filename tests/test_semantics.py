"""Autograd semantics and the ``Tensor`` API."""

from __future__ import annotations

import time

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from helpers import EPS64, t64
from hypothesis import given
from hypothesis import strategies as st
from strategies import f64_arrays, seeds, shapes

import tinygrad_rnn as tg
from tinygrad_rnn.nn import functional as F


# ----------------------------------------------------------------- accumulation
@given(a=f64_arrays(shapes()), seed=seeds)
def test_gradients_accumulate_until_zero_grad(backend, a, seed):
    w = np.random.default_rng(seed).standard_normal(a.shape)
    x = t64(a, backend)
    W = t64(w, backend, requires_grad=False)
    (x * W).sum().backward()
    first = x.grad.numpy()
    np.testing.assert_array_equal(first, w)
    (x * x * W).sum().backward()  # second backward: adds 2·x·w
    np.testing.assert_allclose(x.grad.numpy(), w + 2 * a * w, rtol=4 * EPS64, atol=4 * EPS64)
    x.zero_grad()
    assert x.grad is None
    (x * W).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), w)


def test_same_graph_backward_twice_doubles(backend):
    """As PyTorch's ``retain_graph=True`` does; the argument is accepted, and checked."""
    x = tg.Tensor([1.0, -2.0, 3.0], backend=backend, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * (2 * x.numpy()))
    for wrong in ("yes", 0):
        with pytest.raises(TypeError, match=f"retain_graph must be True or False, got {wrong!r}"):
            y.backward(retain_graph=wrong)
    np.testing.assert_array_equal(x.grad.numpy(), 2 * (2 * x.numpy()))


def test_module_and_optimizer_zero_grad(backend):
    lin = tg.nn.Linear(3, 2, backend=backend)
    opt = tg.optim.SGD(lin.parameters(), lr=0.1)
    lin(tg.Tensor(np.ones((4, 3)), backend=backend)).sum().backward()
    assert all(p.grad is not None for p in lin.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in lin.parameters())
    lin(tg.Tensor(np.ones((4, 3)), backend=backend)).sum().backward()
    lin.zero_grad()
    assert all(p.grad is None for p in lin.parameters())


# ------------------------------------------------------------------------ graphs
@given(a=f64_arrays(shapes(min_dims=1)))
def test_no_grad_records_nothing(backend, a):
    x = t64(a, backend)
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = (x * 2).exp().sum()
        with tg.enable_grad():
            z = (x * 3).sum()
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad and not z.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    np.testing.assert_allclose(y.item(), np.exp(2 * a).sum(), rtol=4 * a.size * EPS64)


def test_no_grad_restored_after_exception():
    with pytest.raises(ZeroDivisionError), tg.no_grad():
        raise ZeroDivisionError
    assert tg.is_grad_enabled()


@given(a=f64_arrays(shapes(min_dims=1)), seed=seeds)
def test_detach_cuts_the_graph(backend, a, seed):
    x = t64(a, backend)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), 2 * a)
    # only the direct path reaches x: d/dx (x * const) = const
    y = (x * d).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * a)


@given(a=f64_arrays(shapes()), seed=seeds)
def test_diamond_graph_sums_both_paths(backend, a, seed):
    """y = f(x) used by two branches that meet again: dL/dy is the sum of both."""
    u = np.random.default_rng(seed).standard_normal(a.shape)
    x = t64(a, backend)
    y = x.tanh()  # one node, two consumers
    out = y * 3.0 + y * y
    out.backward(u)
    expected = u * (3.0 + 2 * np.tanh(a)) * (1 - np.tanh(a) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=16 * EPS64, atol=16 * EPS64)
    x2 = t64(a, backend)
    (x2 + x2 + x2).backward(u)  # the same leaf three times in one expression
    np.testing.assert_allclose(x2.grad.numpy(), 3 * u, rtol=4 * EPS64)


@given(data=st.data(), seed=seeds)
def test_backward_does_not_mutate_inputs_or_upstream(backend, data, seed):
    """Inputs' data and the array passed to backward(grad) are left as they were,
    through the fused kernels too (cross-entropy, RNN, tanh, scatter-add)."""
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 4))
    rng = np.random.default_rng(seed)
    arrays = {
        "logits": rng.standard_normal((n, c)),
        "W": rng.standard_normal((c, c)),
        "X": rng.standard_normal((3, n, c)),
    }
    targets = rng.integers(0, c, n)
    snapshot = {k: v.copy() for k, v in arrays.items()}
    ts = {k: t64(v, backend) for k, v in arrays.items()}
    rnn = tg.nn.RNN(c, c, fused=True, dtype="float64", backend=backend)
    rnn.reset_parameters(std=0.5)
    outs = {
        "ce": F.cross_entropy(
            ts["logits"] @ ts["W"], tg.Tensor(targets, backend=backend), reduction="none"
        ),
        "rnn": rnn(ts["X"])[0],
        "index": ts["logits"][[0, 0, n - 1]].tanh(),
    }
    for out in outs.values():
        g = rng.standard_normal(out.shape)
        g_copy = g.copy()
        out.backward(g)
        np.testing.assert_array_equal(g, g_copy)
        gt = tg.Tensor(g, dtype="float64", backend=backend)
        out.backward(gt)  # a Tensor upstream gradient too
        np.testing.assert_array_equal(gt.numpy(), g_copy)
    for k, t in ts.items():
        np.testing.assert_array_equal(t.numpy(), snapshot[k])
        np.testing.assert_array_equal(arrays[k], snapshot[k])


def test_leaf_grad_is_owned_copy_of_upstream(backend):
    """A leaf's .grad must not alias the caller's upstream array (optimizers write .grad)."""
    x = tg.Tensor(np.zeros(3), dtype="float64", backend=backend, requires_grad=True)
    g = np.arange(3.0)
    x.backward(g)
    x.grad.data *= 2  # what clip_grad_norm does
    np.testing.assert_array_equal(g, np.arange(3.0))


def test_long_composed_rnn_backward_without_recursion(backend):
    """5,000 composed steps: ~35,000 graph nodes, walked iteratively in backward."""
    T, h = 5000, 2
    rng = np.random.default_rng(0)
    X = rng.standard_normal((T, 1, 2))
    grads = {}
    start = time.perf_counter()
    for fused in (False, True):
        rnn = tg.nn.RNN(2, h, fused=fused, dtype="float64", backend=backend)
        rnn.reset_parameters(std=0.5)
        if not fused:
            state = rnn.state_dict()
        else:
            rnn.load_state_dict(state)
        out, h_n = rnn(tg.Tensor(X, dtype="float64", backend=backend))
        assert h_n.shape == (1, 1, h)
        (out.sum() + h_n[0].sum()).backward()
        grads[fused] = {k: p.grad.numpy() for k, p in rnn.named_parameters()}
    assert time.perf_counter() - start < 30
    for k in grads[True]:
        g = grads[True][k]
        assert np.isfinite(g).all()
        # float64 BPTT over 5,000 steps: each gradient is a sum of ~5,000 step terms
        np.testing.assert_allclose(
            grads[False][k], g, rtol=1e-9, atol=T * 64 * EPS64 * (1 + np.abs(g).max())
        )


# ---------------------------------------------------------------------- Tensor API
def test_grad_is_a_tensor(backend):
    x = tg.Tensor([1.0, 2.0], backend=backend, requires_grad=True)
    (x * x).sum().backward()
    assert isinstance(x.grad, tg.Tensor)
    assert x.grad.backend == backend and x.grad.dtype == x.dtype
    assert not x.grad.requires_grad


@given(a=hnp.arrays(np.float32, shapes(), elements=st.floats(-3, 3, width=32)))
def test_numpy_is_a_copy(backend, a):
    original = a.copy()
    x = tg.Tensor(a, backend=backend)
    n1 = x.numpy()
    assert isinstance(n1, np.ndarray)
    np.testing.assert_array_equal(n1, original)
    n1[...] = 7
    np.testing.assert_array_equal(x.numpy(), original)
    a[...] = 9  # nor does the tensor alias the array it was made from
    np.testing.assert_array_equal(x.numpy(), original)


def test_constructor_copies_its_array(backend):
    a = np.array([1.0, 2.0], dtype=np.float32)
    x = tg.Tensor(a, backend=backend, requires_grad=True)
    x.grad = tg.Tensor([1.0, 1.0], backend=backend)
    tg.optim.SGD([x], lr=1.0).step()
    np.testing.assert_array_equal(a, [1.0, 2.0])
    np.testing.assert_array_equal(x.numpy(), [0.0, 1.0])


def test_item_and_metadata(backend):
    x = tg.Tensor([[1.5, -2.0, 3.0]], backend=backend, requires_grad=True)
    assert x.shape == (1, 3) and x.ndim == 2 and x.numel() == 3 and len(x) == 1
    assert x.size() == (1, 3) and x.size(-1) == 3 and x.size(dim=0) == 1
    assert x.dtype == np.float32 and x.backend == backend and x.requires_grad
    assert x[0, 1].item() == -2.0 and isinstance(x[0, 1].item(), float)
    assert tg.Tensor(7, backend=backend).item() == 7
    assert isinstance(tg.Tensor(7, backend=backend).item(), int)
    with pytest.raises(ValueError, match=r"one element.*\(1, 3\)"):
        x.item()


def test_dtypes():
    assert tg.Tensor([1.0, 2.0]).dtype == np.float32
    assert tg.Tensor(np.zeros(2, dtype=np.float64)).dtype == np.float32
    assert tg.Tensor(1.0).dtype == np.float32
    assert tg.Tensor([1.0], dtype="float64").dtype == np.float64
    assert tg.Tensor([1.0], dtype=np.float64).dtype == np.float64
    assert tg.Tensor([1, 2]).dtype.kind == "i"
    assert tg.Tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32
    assert tg.Tensor([True, False]).dtype == np.bool_
    x64 = tg.Tensor([1.0], dtype="float64", requires_grad=True)
    assert (x64 * 2).dtype == np.float64 and (2.5 * x64).dtype == np.float64
    assert (tg.Tensor([1.0]) * 2.5).dtype == np.float32  # a Python float takes the tensor's
    assert (tg.Tensor([1, 2]) + 1).dtype.kind == "i"  # ints stay ints
    assert (tg.Tensor([3, 4]) ** 2).dtype.kind == "i"
    np.testing.assert_allclose((tg.Tensor([4, 9]) ** 0.5).numpy(), [2.0, 3.0])


def test_to_moves_between_backends(other_backend):
    x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
    y = x.to(other_backend)
    assert y.backend == other_backend and x.backend == "numpy"
    assert y.requires_grad and y.is_leaf and y.dtype == x.dtype
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    (y * y).sum().backward()
    assert y.grad.backend == other_backend and x.grad is None  # .to() makes a new leaf
    assert x.to("numpy") is x


def test_repr(backend):
    x = tg.Tensor([1.5, 2.0], backend=backend, requires_grad=True)
    r = repr(x)
    assert r.startswith("Tensor(") and "1.5" in r and "float32" in r
    assert f"backend={backend!r}" in r and "requires_grad=True" in r
    assert "requires_grad" not in repr(tg.Tensor([1], backend=backend))


@given(a=f64_arrays(shapes()), b=st.floats(-3, 3))
def test_comparisons_are_bool_without_grad(backend, a, b):
    x = t64(a, backend)
    for op, ref in (
        ("__lt__", np.less),
        ("__le__", np.less_equal),
        ("__gt__", np.greater),
        ("__ge__", np.greater_equal),
        ("__eq__", np.equal),
        ("__ne__", np.not_equal),
    ):
        r = getattr(x, op)(b)
        assert r.dtype == np.bool_ and not r.requires_grad and r.backend == backend
        np.testing.assert_array_equal(r.numpy(), ref(a, np.float64(b)))
    both = x > t64(a[..., ::-1] if a.ndim else a, backend)
    assert both.dtype == np.bool_ and not both.requires_grad


def test_bool_of_tensor(backend):
    assert bool(tg.Tensor([2.0], backend=backend) > 1)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(tg.Tensor([1.0, 2.0], backend=backend))


def test_use_backend_and_set_backend(other_backend):
    with tg.use_backend(other_backend):
        assert tg.Tensor([1.0]).backend == other_backend
        assert tg.get_backend().name == other_backend
    assert tg.Tensor([1.0]).backend == "numpy"
    tg.set_backend(other_backend)
    assert tg.nn.Linear(2, 2).backend == other_backend


def test_grad_dtype_is_the_leaf_dtype(backend):
    """Mixed-dtype ops and max's tie shares must not turn a float32 .grad into float64,
    on the first backward or when a second one accumulates."""
    x = tg.Tensor([1.0, 3.0, 3.0], backend=backend, requires_grad=True)
    w = tg.Tensor([1.0, 2.0, 3.0], dtype="float64", backend=backend)
    for _ in range(2):
        ((x * w).sum() + x.max()).backward()
        assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([1.0, 2.5, 3.5]), rtol=EPS64)


def test_cast_to_integer_ends_the_graph(backend):
    x = tg.Tensor([1.7, -2.2], backend=backend, requires_grad=True)
    i = x.astype(np.int64)
    assert i.dtype == np.int64 and not i.requires_grad
    np.testing.assert_array_equal(i.numpy(), [1, -2])
    with pytest.raises(RuntimeError, match="does not require grad"):
        i.sum().backward()


def test_tensor_from_tensor_is_a_copy(backend):
    x = tg.Tensor([1.0, 2.0], backend=backend, requires_grad=True)
    y = tg.Tensor(x)
    assert y.backend == backend and not y.requires_grad and y.is_leaf
    y.data[...] = 5
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])


def test_a_refused_backward_changes_no_gradient(backend):
    """Every saved array is checked before any .grad is touched: retrying after the fix
    does not count the first part twice."""
    a = tg.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    b = tg.Tensor([3.0, 4.0], requires_grad=True, backend=backend)
    h = b * 2
    loss = (a * 1.0).sum() + (h * h).sum()
    with tg.no_grad():
        h += 1
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()
    assert a.grad is None and b.grad is None


def test_requires_grad_false_on_a_result_is_refused():
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    with pytest.raises(RuntimeError, match=r"would cut the graph silently; use .detach\(\)"):
        y.requires_grad_(False)
    assert y.requires_grad and x.requires_grad_(False) is x and not x.requires_grad


def test_backward_from_two_threads_into_one_leaf_loses_nothing():
    import threading

    x = tg.Tensor(np.ones(1000), dtype="float64", requires_grad=True)

    def work():
        for _ in range(200):
            (x * 1.0).sum().backward()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(1000, 400.0))


def test_plus_equals_stays_refused_after_many_dropped_views():
    """The counter prunes its dead holders now and then; a live view must survive that."""
    w = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = w * 2
    kept = y[0:2]
    for _ in range(40):
        y.reshape(3)
    with pytest.raises(RuntimeError, match="shares its data with a view"):
        y += w
    with pytest.raises(RuntimeError, match="shares its data with a view"):
        kept += 1


@pytest.mark.parametrize("flag", [0, np.False_])
def test_requires_grad_true_on_a_result_is_allowed_any_false_refused(flag):
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    assert y.requires_grad_() is y and y.requires_grad  # as PyTorch allows
    with pytest.raises(RuntimeError, match="would cut the graph silently"):
        y.requires_grad_(flag)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_no_grad_on_a_generator_holds_while_it_runs_not_between_its_yields():
    """As PyTorch's decorator: the generator's own code records nothing; the caller's
    code between two next() calls keeps its own mode; send() and return values pass."""
    x = tg.Tensor([1.0], requires_grad=True)

    @tg.no_grad()
    def doubled(n):
        for _ in range(n):
            got = yield x * 2, tg.is_grad_enabled()
            assert got is None or got == "ping"
        return "done"

    for y, inside in doubled(2):
        assert y._ctx is None and not inside and tg.is_grad_enabled()
    gen = doubled(3)
    next(gen)
    assert gen.send("ping")[1] is False
    gen.close()
    assert tg.is_grad_enabled()

    def outer():
        return (yield from doubled(1))

    steps = outer()
    next(steps)
    with pytest.raises(StopIteration) as stop:
        next(steps)
    assert stop.value.value == "done"

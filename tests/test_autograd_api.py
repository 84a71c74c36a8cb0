"""The autograd surface as PyTorch's: ``grad_fn`` and ``next_functions``, ``is_leaf``,
``retain_grad``, ``register_hook``, ``tg.autograd.grad`` and ``backward(inputs=)``.

Each rule is checked on its own (so it runs without torch), and where torch is
installed the same snippet runs in both and the results are compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from strategies import f64_arrays

import tinygrad_rnn as tg

autograd = tg.autograd


def leaf(values, backend="numpy", requires_grad=True, dtype="float64"):
    return tg.Tensor(np.asarray(values, dtype=dtype), dtype=dtype, backend=backend,
                     requires_grad=requires_grad)


def walk(root):
    """Every node reachable from ``root.grad_fn`` through next_functions, once each
    (by identity), and the leaves' variables, as one walks a graph in PyTorch."""
    seen, leaves, stack = {}, [], [root.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen[id(node)] = node
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        stack.extend(n for n, _ in node.next_functions)
    return list(seen.values()), leaves


# --------------------------------------------------------------------- grad_fn
def test_grad_fn_is_none_for_leaves_and_names_the_op(backend):
    x, w = leaf([1.0, 2.0], backend), leaf([3.0, 4.0], backend, requires_grad=False)
    assert x.grad_fn is None and w.grad_fn is None
    y = x * w
    assert y.grad_fn is y.grad_fn and y.grad_fn.name() == "MulBackward0"
    assert "MulBackward0" in repr(y.grad_fn)
    assert (w * 2).grad_fn is None  # no input requires grad: nothing recorded
    with tg.no_grad():
        assert (x * w).grad_fn is None
    names = {"+": (x + w).grad_fn.name(), "sum": y.sum().grad_fn.name(),
             "sum(0)": y.sum(0).grad_fn.name(), "tanh": x.tanh().grad_fn.name(),
             "relu": x.relu().grad_fn.name(), "max()": x.max().grad_fn.name(),
             "@": (x.reshape(1, 2) @ w.reshape(2, 1)).grad_fn.name(),
             "[0]": x[0].grad_fn.name(), "[:1]": x[:1].grad_fn.name()}
    assert names == {"+": "AddBackward0", "sum": "SumBackward0", "sum(0)": "SumBackward1",
                     "tanh": "TanhBackward0", "relu": "ReluBackward0", "max()": "MaxBackward1",
                     "@": "MmBackward0", "[0]": "SelectBackward0", "[:1]": "SliceBackward0"}


def test_next_functions_lead_to_the_inputs(backend):
    x, w = leaf([1.0, 2.0], backend), leaf([3.0, 4.0], backend, requires_grad=False)
    h = (x * w).tanh()
    loss = (h * x).sum()
    (mul,) = loss.grad_fn.next_functions
    assert mul == (loss.grad_fn.inputs[0].grad_fn, 0) and mul[0].name() == "MulBackward0"
    tanh_edge, x_edge = mul[0].next_functions
    assert tanh_edge[0] is h.grad_fn
    acc = x_edge[0]
    assert type(acc).__name__ == "AccumulateGrad" and acc.name() == "AccumulateGrad"
    assert acc.variable is x and acc.next_functions == ()
    inner_x, inner_w = h.grad_fn.next_functions[0][0].next_functions
    assert inner_x[0] is acc  # one accumulator per leaf: a walk sees x once
    assert inner_w == (None, 0)  # w needs no gradient
    nodes, leaves = walk(loss)
    assert len(nodes) == 5 and leaves == [x]  # sum, mul, tanh, mul, x's accumulator


def test_walking_a_layer_finds_every_parameter():
    tg.manual_seed(0)
    rnn = tg.nn.RNN(3, 4, fused=False, dtype="float64")
    out, _ = rnn(tg.Tensor(np.ones((2, 1, 3)), dtype="float64"))
    _, leaves = walk(out.sum())
    assert {id(p) for p in leaves} == {id(p) for p in rnn.parameters()}


def test_grad_fn_names_along_a_graph_match_torch():
    torch = pytest.importorskip("torch")

    def names(lib, x, w):
        y = ((x * w).tanh() + x).relu().sum()
        out, node = [], y.grad_fn
        while node is not None and node.next_functions:
            out.append(node.name())
            node = node.next_functions[0][0]
        return out, type(node).__name__, len(y.grad_fn.next_functions[0][0].next_functions)

    ours = names(tg, leaf([1.0, -2.0]), leaf([0.5, 3.0], requires_grad=False))
    theirs = names(torch, torch.tensor([1.0, -2.0], requires_grad=True), torch.tensor([0.5, 3.0]))
    assert ours == theirs


# --------------------------------------------------------------------- is_leaf
def test_is_leaf_follows_torchs_rule(backend):
    x = leaf([1.0], backend)
    c = leaf([1.0], backend, requires_grad=False)
    with tg.no_grad():
        under_no_grad = x * 2
    cases = {"made": x.is_leaf, "constant": c.is_leaf, "constant result": (c * 2).is_leaf,
             "result": (x * 2).is_leaf, "detached": (x * 2).detach().is_leaf,
             "no_grad": under_no_grad.is_leaf}
    assert cases == {"made": True, "constant": True, "constant result": True,
                     "result": False, "detached": True, "no_grad": True}
    torch = pytest.importorskip("torch")
    tx, tc = torch.ones(1, requires_grad=True), torch.ones(1)
    with torch.no_grad():
        t_no_grad = tx * 2
    assert cases == {"made": tx.is_leaf, "constant": tc.is_leaf,
                     "constant result": (tc * 2).is_leaf, "result": (tx * 2).is_leaf,
                     "detached": (tx * 2).detach().is_leaf, "no_grad": t_no_grad.is_leaf}


# ----------------------------------------------------------------- retain_grad
def test_a_result_has_no_grad_unless_it_retains_it(backend):
    x = leaf([1.0, 2.0], backend)
    y, z = x * 3, x * 4
    y.retain_grad()
    assert y.retains_grad and not z.retains_grad and not x.retains_grad
    ((y * y).sum() + z.sum()).backward()
    assert np.array_equal(y.grad.numpy(), 2 * y.numpy()) and z.grad is None
    assert np.array_equal(x.grad.numpy(), 18 * x.numpy() + 4)
    ((y * y).sum()).backward()  # accumulates, as a leaf's .grad does
    assert np.array_equal(y.grad.numpy(), 4 * y.numpy())


def test_retain_grad_on_a_leaf_changes_nothing_and_needs_requires_grad():
    x = leaf([1.0])
    x.retain_grad()
    assert not x.retains_grad
    (x * 2).sum().backward()
    assert x.grad.numpy()[0] == 2
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        leaf([1.0], requires_grad=False).retain_grad()


# --------------------------------------------------------------- register_hook
def test_a_hook_sees_the_summed_gradient_and_may_replace_it(backend):
    x = leaf([1.0, 2.0], backend)
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()))  # returns None: keeps g
    y.register_hook(lambda g: g * 10)  # then this one replaces it
    (y * 3 + y * 4).sum().backward()  # y used twice: one call, with the sum
    assert len(seen) == 1 and np.array_equal(seen[0], [7.0, 7.0])
    assert np.array_equal(x.grad.numpy(), [140.0, 140.0])


def test_hooks_run_in_order_and_retain_grad_sees_their_result():
    x = leaf([1.0])
    y = x * 1
    order = []
    y.register_hook(lambda g: order.append("first") or g + 1)
    y.retain_grad()
    y.register_hook(lambda g: order.append(("second", g.item())) or g * 2)
    y.sum().backward()
    assert order == ["first", ("second", 2.0)]
    assert y.grad.item() == 4.0 and x.grad.item() == 4.0  # retain_grad: after every hook


def test_a_leaf_hook_runs_before_accumulation_and_can_be_removed():
    x = leaf([1.0, 2.0])
    (x * 1).sum().backward()  # .grad = 1
    handle = x.register_hook(lambda g: g * 3)
    (x * 1).sum().backward()  # the hook's 3, added to the 1 already there
    assert np.array_equal(x.grad.numpy(), [4.0, 4.0])
    handle.remove()
    handle.remove()  # a second remove does nothing
    (x * 1).sum().backward()
    assert np.array_equal(x.grad.numpy(), [5.0, 5.0])
    with x.register_hook(lambda g: g * 0):  # a handle is a context manager too
        (x * 1).sum().backward()
    (x * 1).sum().backward()
    assert np.array_equal(x.grad.numpy(), [6.0, 6.0])


def test_hooks_match_torch():
    torch = pytest.importorskip("torch")

    def run(lib, make):
        x = make([1.0, -2.0, 3.0])
        y = (x * x).tanh()
        y.retain_grad()
        y.register_hook(lambda g: g * 2)
        x.register_hook(lambda g: g + 1)
        (y * make([1.0, 2.0, 3.0]).detach()).sum().backward()
        return x.grad.numpy().copy(), y.grad.numpy().copy()

    ours = run(tg, lambda v: leaf(v))
    theirs = run(torch, lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True))
    for a, b in zip(ours, theirs, strict=True):
        assert np.allclose(a, b, rtol=1e-14, atol=0)


def test_bad_hooks_fail_by_name_and_leave_grad_alone():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        leaf([1.0], requires_grad=False).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="callable"):
        x.register_hook(3)
    for hook, error, words in ((lambda g: g.sum(), RuntimeError, "changed the size"),
                               (lambda g: g.astype("float32"), RuntimeError, "changed the type"),
                               (lambda g: 3.0, TypeError, "returned a float"),
                               (lambda g: 1 / 0, ZeroDivisionError, "division")):
        handle = x.register_hook(hook)
        with pytest.raises(error, match=words):
            (x * 2).sum().backward()
        assert x.grad is None  # the pass failed: no .grad changed
        handle.remove()


# ------------------------------------------------------------- autograd.grad
def test_grad_returns_a_tuple_and_touches_no_grad(backend):
    x, w = leaf([1.0, 2.0], backend), leaf([0.5, -1.0], backend)
    w.grad = tg.Tensor(np.array([7.0, 7.0]), dtype="float64", backend=backend)
    loss = (x * w).tanh().sum()
    gx, gw = autograd.grad(loss, [x, w])
    assert x.grad is None and np.array_equal(w.grad.numpy(), [7.0, 7.0])
    w.grad = None
    loss.backward()
    assert np.array_equal(gx.numpy(), x.grad.numpy()) and np.array_equal(gw.numpy(), w.grad.numpy())
    (only,) = autograd.grad(loss, x)  # one tensor in, a 1-tuple out
    assert np.array_equal(only.numpy(), gx.numpy())
    assert gx.grad_fn is None and not gx.requires_grad and gx.dtype == x.dtype


@given(f64_arrays((2, 3)), f64_arrays((3,)))
def test_grad_equals_what_backward_accumulates(a, b):
    x, w = leaf(a), leaf(b)
    h = x * w + x.sum(0)  # broadcasting, a reduction and a leaf used twice
    loss = (h.tanh() * h).sum() + (w * w).sum()
    gx, gw, gh = autograd.grad(loss, [x, w, h])
    loss.backward()
    assert np.array_equal(gx.numpy(), x.grad.numpy()) and np.array_equal(gw.numpy(), w.grad.numpy())
    t = np.tanh(h.numpy())
    assert np.allclose(gh.numpy(), t + h.numpy() * (1 - t * t), rtol=1e-13, atol=1e-15)


def test_grad_of_several_outputs_with_grad_outputs(backend):
    x = leaf([1.0, 2.0, 3.0], backend)
    y, z = x * x, x.sum()
    v = tg.Tensor(np.array([1.0, 0.0, 2.0]), dtype="float64", backend=backend)
    (g,) = autograd.grad([y, z], [x], grad_outputs=[v, None])  # summed over the outputs
    assert np.array_equal(g.numpy(), 2 * x.numpy() * v.numpy() + 1)
    (g,) = autograd.grad(y, x, grad_outputs=v)
    assert np.array_equal(g.numpy(), 2 * x.numpy() * v.numpy())


def test_grad_walks_only_what_leads_to_the_inputs():
    calls = []

    class Counted(tg.Function):
        def forward(self, a):
            return a * 1

        def backward(self, g):
            calls.append(1)
            return g

    x, other = leaf([1.0]), leaf([2.0])
    loss = (x * 2).sum() + Counted.apply(other).sum()
    autograd.grad(loss, x)
    assert calls == []
    autograd.grad(loss, other)
    assert calls == [1]


def test_grad_unused_inputs_and_materialize_grads():
    x, unused = leaf([1.0, 2.0]), leaf([5.0])
    loss = (x * x).sum()
    with pytest.raises(RuntimeError, match="index 1 appears to not have been used"):
        autograd.grad(loss, [x, unused])
    gx, gu = autograd.grad(loss, [x, unused], allow_unused=True)
    assert gu is None and np.array_equal(gx.numpy(), [2.0, 4.0])
    _, gu = autograd.grad(loss, [x, unused], materialize_grads=True)
    assert np.array_equal(gu.numpy(), [0.0])
    with pytest.raises(ValueError, match="allow_unused"):
        autograd.grad(loss, [x, unused], allow_unused=False, materialize_grads=True)


def test_grad_errors_are_torchs():
    x = leaf([1.0, 2.0])
    c = leaf([1.0], requires_grad=False)
    cases = [
        (lambda: autograd.grad(x * 2, x), RuntimeError, "only for scalar outputs"),
        (lambda: autograd.grad((x * 2).sum(), c), RuntimeError, "does not require grad"),
        (lambda: autograd.grad(c.sum(), x), RuntimeError, "element 0 of outputs"),
        (lambda: autograd.grad(x * 2, x, grad_outputs=leaf([1.0, 1.0, 1.0])), RuntimeError,
         "Mismatch in shape"),
        (lambda: autograd.grad(x * 2, x, grad_outputs=[1.0]), TypeError, "Tensors or None"),
        (lambda: autograd.grad((x * 2).sum(), []), RuntimeError, "cannot be empty"),
        (lambda: autograd.grad((x * 2).sum(), 3), TypeError, "inputs must be a Tensor"),
        (lambda: autograd.grad([(x * 2).sum()] * 2, x, grad_outputs=[None]), ValueError,
         "grad_outputs has 1 entries for 2 outputs"),
        (lambda: autograd.grad((x * 2).sum(), x, create_graph=True), NotImplementedError,
         "higher-order"),
        (lambda: autograd.grad((x * 2).sum(), x, retain_graph="yes"), TypeError, "retain_graph"),
        (lambda: (x * 2).sum().backward(create_graph=True), NotImplementedError, "higher-order"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words):
            call()


def test_grad_with_hooks_and_retain_grad_matches_torch():
    """PyTorch's details: a result's gradient is captured as it arrives (before its own
    hooks), a leaf's after its hooks; a result that retain_grad()s gets its .grad."""
    torch = pytest.importorskip("torch")

    def run(make):
        x = make([1.0, 2.0])
        y = x * 2
        y.retain_grad()
        y.register_hook(lambda g: g * 10)
        x.register_hook(lambda g: g + 1)
        gx, gy = (tg.autograd if isinstance(x, tg.Tensor) else torch.autograd).grad(
            (y * y).sum(), [x, y])
        return gx.numpy().copy(), gy.numpy().copy(), y.grad.numpy().copy(), x.grad

    ours = run(lambda v: leaf(v))
    theirs = run(lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True))
    for a, b in zip(ours[:3], theirs[:3], strict=True):
        assert np.array_equal(a, b)
    assert ours[3] is None and theirs[3] is None


def test_grad_of_an_mlp_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X, W1, W2 = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=(5, 2))
    ours = [leaf(a) for a in (W1, W2)]
    h = (tg.Tensor(X, dtype="float64") @ ours[0]).relu()
    mine = autograd.grad(((h @ ours[1]).sigmoid() ** 2).mean(), [ours[0], ours[1], h])
    theirs = [torch.tensor(a, requires_grad=True) for a in (W1, W2)]
    th = (torch.tensor(X) @ theirs[0]).relu()
    ref = torch.autograd.grad(((th @ theirs[1]).sigmoid() ** 2).mean(), [*theirs, th])
    for a, b in zip(mine, ref, strict=True):
        assert np.allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------- backward(inputs=)
def test_backward_inputs_accumulates_only_into_them():
    a, c = leaf([1.0, 2.0]), leaf([3.0])
    (a * c).sum().backward(inputs=[c])
    assert a.grad is None and c.grad.item() == 3.0
    m = a * 2
    (m * 3).sum().backward(inputs=m)  # a result: its .grad, as PyTorch's
    assert np.array_equal(m.grad.numpy(), [3.0, 3.0]) and a.grad is None
    (a * c).sum().backward(inputs=[c, c])  # once each
    assert c.grad.item() == 6.0
    with pytest.raises(RuntimeError, match="does not require grad"):
        (a * c).sum().backward(inputs=[leaf([1.0], requires_grad=False)])
    with pytest.raises(TypeError, match="inputs must be"):
        (a * c).sum().backward(inputs=[])


def test_backward_accepts_torchs_argument_name():
    x = leaf(np.random.default_rng(0).normal(size=3))
    (x * 2).backward(gradient=tg.Tensor(np.array([1.0, 2.0, 3.0]), dtype="float64"))
    assert np.array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_backward_inputs_with_hooks_matches_torch():
    """backward(inputs=[result]) fills its .grad after its hooks, as PyTorch's (where
    grad() returns the result's gradient as it arrived, before them)."""
    torch = pytest.importorskip("torch")

    def run(make):
        x = make([1.0, 2.0])
        y = x * 2
        y.register_hook(lambda g: g * 3)
        (y * y).sum().backward(inputs=[y])
        return y.grad.numpy().copy(), x.grad

    ours, theirs = run(leaf), run(lambda v: torch.tensor(v, dtype=torch.float64,
                                                         requires_grad=True))
    assert np.array_equal(ours[0], theirs[0]) and ours[1] is None and theirs[1] is None


def test_autograd_backward_of_several_tensors_matches_torch():
    torch = pytest.importorskip("torch")

    def run(lib, make):
        a = make([1.0, 2.0])
        b = make([3.0])
        lib.autograd.backward([(a * a).sum(), a * b], [None, make([1.0, -1.0]).detach()])
        lib.autograd.backward((a * b).sum(), inputs=[b])  # only b's .grad
        return a.grad.numpy().copy(), b.grad.numpy().copy()

    ours = run(tg, leaf)
    theirs = run(torch, lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True))
    for x, y in zip(ours, theirs, strict=True):
        assert np.array_equal(x, y)


def test_autograd_backward_errors():
    x = leaf([1.0, 2.0])
    for call, error, words in (
            (lambda: autograd.backward(x * 2), RuntimeError, "only for scalar outputs"),
            (lambda: autograd.backward(leaf([1.0], requires_grad=False)), RuntimeError,
             "element 0 of tensors does not require grad"),
            (lambda: autograd.backward((x * 2).sum(), inputs=[]), RuntimeError, "cannot be empty"),
            (lambda: autograd.backward([]), RuntimeError, "cannot be empty"),
            (lambda: autograd.backward(x.sum(), create_graph=True), NotImplementedError,
             "higher-order"),
            (lambda: autograd.backward(x.sum(), leaf(1.0), grad_variables=leaf(1.0)), ValueError,
             "not both")):
        with pytest.raises(error, match=words):
            call()
    assert x.grad is None

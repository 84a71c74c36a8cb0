"""Where PyTorch users expect PyTorch's behaviour and NumPy's would differ: in-place
updates (D2L's ``sgd``), tied parameters, dtype promotion, per-thread grad mode,
per-parameter Adam step counts, and nested-tuple indices."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import EPS32, EPS64, adam_steps_moving

import tinygrad_rnn as tg

# --------------------------------------------------------------- in-place updates


def test_d2l_sgd_updates_parameters_in_place(backend):
    """D2L §3.2's ``sgd``: ``param -= lr * param.grad; param.grad.zero_()`` under no_grad."""
    lin = tg.nn.Linear(3, 2, backend=backend)
    before = {n: p.numpy() for n, p in lin.named_parameters()}
    X = tg.Tensor(np.arange(12.0).reshape(4, 3), backend=backend)
    (lin(X) ** 2).sum().backward()
    grads = {n: p.grad.numpy() for n, p in lin.named_parameters()}
    params = lin.parameters()
    with tg.no_grad():
        for p in params:
            p -= 0.1 * p.grad
            p.grad.zero_()
    for (name, p), q in zip(lin.named_parameters(), params, strict=True):
        assert p is q  # updated where it is, not rebound to a new tensor
        want = before[name] - np.float32(0.1) * grads[name]
        np.testing.assert_allclose(p.numpy(), want, rtol=EPS32, atol=EPS32 * np.abs(want).max())
        np.testing.assert_array_equal(p.grad.numpy(), 0)


@pytest.mark.parametrize(("op", "fn"), [("+=", np.add), ("-=", np.subtract),
                                        ("*=", np.multiply), ("/=", np.divide)])
def test_in_place_operators_match_numpy(backend, op, fn):
    a = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], dtype=np.float32)
    b = np.array([2.0, -4.0, 8.0], dtype=np.float32)  # broadcast along the rows
    x = tg.Tensor(a, backend=backend)
    same = x
    exec(f"x {op} tg.Tensor(b, backend=backend)", {"x": x, "tg": tg, "b": b, "backend": backend})
    assert x is same and x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), fn(a, b))


def test_in_place_while_recording_is_a_new_node_or_refused_on_a_parameter(backend):
    w = tg.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    with pytest.raises(RuntimeError, match=r"in-place -= .*no_grad"):
        w -= 1.0  # a leaf that requires grad: PyTorch refuses it too
    with pytest.raises(RuntimeError, match="zero_"):
        w.zero_()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    x = tg.Tensor([1.0, 2.0], backend=backend)
    before = x
    x += w  # recorded as x = x + w: a new node, the old x untouched
    assert x is not before and x.requires_grad
    np.testing.assert_array_equal(before.numpy(), [1.0, 2.0])
    x.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


def test_accumulating_losses_with_plus_equals(backend):
    """PyTorch's ``total += loss`` over minibatches, then one backward()."""
    w = tg.Tensor([1.0, -1.0], requires_grad=True, backend=backend)
    total = 0
    for scale in (1.0, 2.0, 3.0):
        total += (w * scale).sum()
    total /= 3
    total.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


def test_in_place_refuses_a_result_that_does_not_fit(backend):
    x = tg.Tensor([1.0, 2.0], backend=backend)
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*shape \(2,\)"):
        x += tg.Tensor([[1.0], [2.0]], backend=backend)
    i = tg.Tensor([1, 2], backend=backend)
    with pytest.raises(TypeError, match="float.* cannot be stored in a int"):
        i += 0.5
    with pytest.raises(TypeError, match="cannot be stored"):
        i /= 2
    i += 3
    np.testing.assert_array_equal(i.numpy(), [4, 5])


def test_backward_after_an_in_place_change_is_refused(backend):
    x = tg.Tensor([1.0, 2.0], backend=backend)
    w = tg.Tensor([3.0, 4.0], requires_grad=True, backend=backend)
    y = (w * x).sum()  # Mul saved x for w's gradient
    x *= 10
    with pytest.raises(RuntimeError, match=r"input 1 of Mul, .*changed in place"):
        y.backward()
    (w * x).sum().backward()  # a graph made after the change is fine
    np.testing.assert_array_equal(w.grad.numpy(), [10.0, 20.0])


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_an_optimizer_step_between_forward_and_backward_is_refused(backend, optimizer):
    w = tg.Tensor([3.0, 4.0], requires_grad=True, backend=backend)
    loss = (w * w).sum()
    w.grad = tg.Tensor([1.0, 1.0], backend=backend)
    getattr(tg.optim, optimizer)([w], lr=0.5).step()
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()


# -------------------------------------------------------------- tied parameters


class _Tied(tg.nn.Module):
    def __init__(self, backend: str) -> None:
        super().__init__()
        self.a = tg.nn.Linear(2, 2, backend=backend)
        self.b = tg.nn.Linear(2, 2, backend=backend)
        self.b.W = self.a.W  # weight tying: one parameter, two layers


def test_a_shared_parameter_is_listed_stepped_and_clipped_once(backend):
    m = _Tied(backend)
    assert [n for n, _ in m.named_parameters()] == ["a.W", "a.b", "b.b"]
    assert len(m.parameters()) == 3
    W0 = m.a.W.numpy()
    g = np.array([[3.0, 0.0], [0.0, 4.0]], dtype=np.float32)  # ‖g‖ = 5
    m.a.W.grad = tg.Tensor(g, backend=backend)
    norm = tg.optim.clip_grad_norm([m.a.W, m.b.W], max_norm=2.5)  # the same tensor twice
    np.testing.assert_allclose(float(norm), 5.0, rtol=EPS32)
    np.testing.assert_allclose(m.a.W.grad.numpy(), g / 2, rtol=EPS32)
    tg.optim.SGD(m.parameters(), lr=1.0).step()
    np.testing.assert_allclose(m.b.W.numpy(), W0 - g / 2, rtol=EPS32, atol=EPS32)
    with pytest.raises(ValueError, match="same parameter twice"):
        tg.optim.SGD([m.a.W, m.b.W], lr=1.0)


# ---------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("int_dtype", [np.int32, np.int64, np.bool_])
def test_integers_meeting_floats_take_the_float_dtype(backend, int_dtype):
    f = tg.Tensor([1.0, 2.0], backend=backend)  # float32
    i = tg.Tensor(np.array([1, 0], dtype=int_dtype), backend=backend)
    for result in (f + i, i * f, i / tg.Tensor([2.0, 4.0], backend=backend), i * 0.5, i + 1.5):
        assert result.dtype == np.float32
    if int_dtype is np.bool_:  # PyTorch refuses - with a bool tensor ("use ~mask")
        with pytest.raises(TypeError, match=r"subtraction \(-\) with a bool tensor"):
            f - i
    else:
        assert (f - i).dtype == np.float32
    np.testing.assert_array_equal((f + i).numpy(), [2.0, 2.0])
    assert (i / 2).dtype == np.float32  # true division of integers: PyTorch's float32
    np.testing.assert_array_equal((i / 2).numpy(), np.array([1, 0]) / 2)
    f64 = tg.Tensor([1.0, 2.0], dtype="float64", backend=backend)
    assert (f64 * i).dtype == np.float64


@pytest.mark.parametrize("int_dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_a_python_int_keeps_an_integer_tensors_dtype(backend, int_dtype):
    """As in PyTorch and NumPy 2: ``int32 * 2`` is int32, both ways round, in place too."""
    i = tg.Tensor(np.array([1, 2, 3], dtype=int_dtype), backend=backend)
    for result in (i * 2, 2 * i, i + 1, 10 - i, i ** 2, i + True, i.max(), -i):
        assert result.dtype == int_dtype
    np.testing.assert_array_equal((10 - i).numpy(), np.array([9, 8, 7], dtype=int_dtype))
    with tg.no_grad():
        i += 1
    assert i.dtype == int_dtype
    top = int(np.iinfo(int_dtype).max)  # one past it does not fit: it widens, never wraps
    if top < np.iinfo(np.int64).max:  # (past int64, NumPy's int64 + uint64 is float64)
        assert (i + (top + 1)).numpy().tolist() == [top + 3, top + 4, top + 5]
    assert ((i == top + 1).numpy() == [False] * 3).all() and (i < top + 1).all()
    assert (i / (top + 1)).dtype == np.float32 and (i > -1).all()
    assert (i + np.int64(1)).dtype == int_dtype  # a NumPy scalar is weak too, as in PyTorch
    b = tg.Tensor([True, False], backend=backend)
    assert (b + 1).dtype == np.int64  # bool meets int: the default int, as in PyTorch
    assert (b * True).dtype == np.bool_
    i = tg.Tensor(np.array([1], dtype=int_dtype), backend=backend)
    assert (i * int(np.iinfo(int_dtype).max)).dtype == int_dtype  # the largest that fits


def test_a_linear_layer_on_integer_input_stays_float32(backend):
    lin = tg.nn.Linear(3, 2, backend=backend)
    X = tg.Tensor(np.arange(6).reshape(2, 3), backend=backend)
    out = lin(X)
    assert out.dtype == np.float32
    want = np.arange(6, dtype=np.float32).reshape(2, 3) @ lin.W.numpy() + lin.b.numpy()
    np.testing.assert_allclose(out.numpy(), want, rtol=4 * EPS32,
                               atol=4 * EPS32 * np.abs(want).max())


# ------------------------------------------------------------------- grad mode


def test_no_grad_in_one_thread_leaves_another_recording():
    inside, release = threading.Event(), threading.Event()

    def evaluate():
        with tg.no_grad():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=evaluate)
    thread.start()
    try:
        assert inside.wait(10)
        assert tg.is_grad_enabled()
        x = tg.Tensor([1.0, 2.0], requires_grad=True)
        assert (x * x).sum().requires_grad
    finally:
        release.set()
        thread.join()
    assert tg.is_grad_enabled()


def test_a_no_grad_object_can_be_entered_again_and_nested():
    ctx = tg.no_grad()
    for _ in range(2):
        with ctx:
            assert not tg.is_grad_enabled()
            with ctx:
                assert not tg.is_grad_enabled()
            assert not tg.is_grad_enabled()
        assert tg.is_grad_enabled()

    @tg.no_grad()
    def evaluate(x):
        return x * 2

    assert not evaluate(tg.Tensor([1.0], requires_grad=True)).requires_grad
    assert tg.is_grad_enabled()


# ------------------------------------------------------------------------ Adam


def test_adam_counts_steps_per_parameter(backend):
    a = tg.Tensor([1.0, 2.0], requires_grad=True, dtype="float64", backend=backend)
    b = tg.Tensor([3.0, 4.0], requires_grad=True, dtype="float64", backend=backend)
    opt = tg.optim.Adam([a, b], lr=0.1)
    a.grad = tg.Tensor([1.0, 1.0], dtype="float64", backend=backend)
    opt.step()  # b has no gradient yet: its count stays 0
    a.grad = tg.Tensor([1.0, 1.0], dtype="float64", backend=backend)
    b.grad = tg.Tensor([1.0, -1.0], dtype="float64", backend=backend)
    opt.step()
    # b's first step: bias-corrected m / sqrt(v) = sign(g), so it moves by lr (less eps)
    np.testing.assert_allclose(b.numpy(), [2.9, 4.1], rtol=0, atol=1e-7 + 8 * EPS64)
    assert [float(opt.state_dict()["state"][i]["step"]) for i in (0, 1)] == [2.0, 1.0]


def test_adam_loads_a_single_step_count_and_checks_betas():
    p = tg.Tensor([1.0], requires_grad=True)
    opt = tg.optim.Adam([p], lr=0.1)
    state = {"lr": np.asarray(0.1), "betas": np.asarray([0.9, 0.999]), "eps": np.asarray(1e-8),
             "m.0": np.zeros(1), "v.0": np.zeros(1)}  # a checkpoint's, before param groups
    state["t"] = np.asarray(7)  # the format of checkpoints before per-parameter counts
    opt.load_state_dict(state)
    assert opt.steps == [7]
    state["t"] = np.asarray([1, 2])
    with pytest.raises(ValueError, match="step counts for 2 parameters.* has 1"):
        opt.load_state_dict(state)
    for betas in [(1.0, 0.999), (0.9, -0.1), (0.9,)]:
        with pytest.raises(ValueError, match="betas"):
            tg.optim.Adam([p], betas=betas)


# -------------------------------------------------------------------- indexing


@pytest.mark.parametrize("index", [(slice(None), (0, 0, 2)), ((1, 1),), (range(2), 1),
                                   (slice(None), [])])
def test_a_tuple_or_range_inside_an_index_scatter_adds_its_repeats(backend, index):
    index_as_numpy(np.arange(6.0).reshape(2, 3), index, backend)


def index_as_numpy(data: np.ndarray, index, backend) -> tg.Tensor:
    """``x[index]`` has NumPy's values, and its gradient adds 1 wherever an element was
    picked, once per pick (repeats included); returns ``x[index]``."""
    x = tg.Tensor(data, dtype="float64", requires_grad=True, backend=backend)
    y = x[index]
    np.testing.assert_array_equal(y.numpy(), data[index])
    y.sum().backward()
    want = np.zeros_like(data)
    np.add.at(want, index, 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), want)
    return y


# --------------------------------------------------------------------- edges


def test_pow_zero_has_zero_gradient_at_zero(backend):
    x = tg.Tensor([0.0, 1.0, -2.0], requires_grad=True, backend=backend)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


def test_tensor_copies_a_memmap_instead_of_writing_to_its_file(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "w.npy", mode="w+", dtype=np.float32, shape=(3,))
    mm[:] = 1.0
    mm.flush()
    p = tg.nn.Parameter(np.load(tmp_path / "w.npy", mmap_mode="r"))  # read-only map
    q = tg.nn.Parameter(mm)
    for t in (p, q):
        t.grad = tg.Tensor([1.0, 1.0, 1.0])
    tg.optim.SGD([p, q], lr=0.5).step()
    np.testing.assert_array_equal(p.numpy(), 0.5)
    np.testing.assert_array_equal(q.numpy(), 0.5)
    np.testing.assert_array_equal(mm, 1.0)
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), 1.0)


def test_the_global_norm_sums_in_float64_on_every_backend(backend):
    """float16 squares of 300 overflow float16 (max 65504); the norm, 300·√3, does not."""
    p = tg.Tensor(np.zeros(3), dtype="float16", requires_grad=True, backend=backend)
    p.grad = tg.Tensor(np.full(3, 300.0), dtype="float16", backend=backend)
    norm = tg.optim.clip_grad_norm([p], max_norm=1.0)
    np.testing.assert_allclose(float(norm), 300 * np.sqrt(3), rtol=1e-12)
    # the factor 1/(300√3) is rounded to float16 before the multiply (eps 2^-10)
    np.testing.assert_allclose(p.grad.numpy().astype(np.float64), 1 / np.sqrt(3), rtol=2 ** -9)


# ------------------------------------------------- saved outputs, views, setitem


@pytest.mark.parametrize("op", [lambda x: x.exp(), lambda x: x.tanh(), lambda x: x.sigmoid(),
                                lambda x: x.max(keepdims=True), lambda x: x.amax(axis=0)])
def test_changing_an_output_that_the_backward_reads_is_refused(backend, op):
    x = tg.Tensor([0.5, 1.0, -2.0], requires_grad=True, backend=backend)
    y = op(x)
    with tg.no_grad():
        y += 1
    with pytest.raises(RuntimeError, match="the output of .*changed in place"):
        y.sum().backward()


def test_changing_an_output_that_the_backward_does_not_read_is_fine(backend):
    x = tg.Tensor([0.5, 1.0], requires_grad=True, backend=backend)
    y = x * 3.0  # Mul reads its inputs, not its output
    with tg.no_grad():
        y += 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


@pytest.mark.parametrize("view", [lambda x: x.detach(), lambda x: x.reshape(2, 2),
                                  lambda x: x.T, lambda x: x[0], lambda x: x[:, 1:]])
def test_a_change_through_a_view_is_seen(backend, view):
    x = tg.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, backend=backend)
    loss = (x * x).sum()
    with tg.no_grad():
        v = view(x)
        v += 10  # changes x itself
    with pytest.raises(RuntimeError, match="input . of Mul, .*changed in place"):
        loss.backward()


def _rnn_grads_after(backend, fused, loss_of, touch=None):
    """A seeded ``RNN(3, 4)`` on a fixed (5, 2, 3) input: ``touch(output, h_n)`` (an
    in-place change, or None) between the forward and ``loss_of(output).backward()``;
    -> the parameters' gradients by name."""
    tg.manual_seed(0)
    rnn = tg.nn.RNN(3, 4, fused=fused, backend=backend)
    X = tg.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)), backend=backend)
    Y, h_n = rnn(X)
    loss = loss_of(Y)
    if touch is not None:
        touch(Y, h_n)
    loss.backward()
    return {k: p.grad.numpy() for k, p in rnn.named_parameters()}


def _zero_last_step(Y, h_n):
    Y[-1].detach().zero_()  # the final state as a view of the outputs


def _zero_h_n(Y, h_n):
    h_n.detach().zero_()


@pytest.mark.parametrize("fused", [True, False])
def test_resetting_a_detached_rnn_state_before_backward_is_refused(backend, fused):
    """The final step of the outputs, ``output[-1]``, is a view of what the backward reads
    (the loss's Mul; the fused BPTT's saved H): zeroing its detached copy in place would
    corrupt the gradients without a word, so backward refuses. ``h_n`` is stacked, a copy
    nothing's backward reads: zeroing it leaves the gradients those of an untouched run."""
    def loss_of(Y):
        return (Y * Y).sum()

    with pytest.raises(RuntimeError, match="changed in place"):
        _rnn_grads_after(backend, fused, loss_of, _zero_last_step)
    clean = _rnn_grads_after(backend, fused, loss_of)
    touched = _rnn_grads_after(backend, fused, loss_of, _zero_h_n)
    assert touched.keys() == clean.keys()
    for k in clean:
        np.testing.assert_array_equal(touched[k], clean[k], err_msg=k)


def test_item_assignment_and_augmented_item_assignment(backend):
    x = tg.Tensor(np.ones((2, 3)), backend=backend)
    x[0] += 1  # Python: x[0] = x[0].__iadd__(1)
    x[1, 2] = 7
    x[tg.Tensor([1, 1], backend=backend), tg.Tensor([0, 1], backend=backend)] = -1
    np.testing.assert_array_equal(x.numpy(), [[2, 2, 2], [-1, -1, 7]])
    v = tg.Tensor([5.0, 6.0], backend=backend)
    v[0] += 1  # a 1-D tensor: x[0] is 0-d
    np.testing.assert_array_equal(v.numpy(), [6.0, 6.0])
    s = v.sum()  # a full reduction is a 0-d array, writable like any other
    s += 1
    assert s.item() == 13.0
    with pytest.raises(ValueError, match=r"item assignment .*value of shape \(2,\) does not "
                                         r"fit x\[0\] of a tensor of shape \(2, 3\)"):
        x[0] = tg.Tensor([1.0, 2.0], backend=backend)
    with pytest.raises(TypeError, match="float32 value cannot be stored in a int"):
        tg.Tensor([1, 2], backend=backend)[0] = 0.5
    with pytest.raises(IndexError, match=r"item assignment .*: index \[5\] into shape \(2, 3\)"):
        x[5] = 0


def test_item_assignment_follows_the_in_place_rules(backend):
    W = tg.Tensor(np.ones((2, 2)), requires_grad=True, backend=backend)
    with pytest.raises(RuntimeError, match="item assignment .*no_grad"):
        W[0] = 0.0
    loss = (W * W).sum()
    with tg.no_grad():
        W[0] -= 1  # as an update would: bumps W's count
    np.testing.assert_array_equal(W.numpy(), [[0, 0], [1, 1]])
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()


def test_an_index_changed_after_use_does_not_change_the_gradient(backend):
    x = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True, backend=backend)
    idx = tg.Tensor([0, 0], backend=backend)
    raw = np.array([2])
    y = x[idx] + x[raw]
    idx += 1
    raw[0] = 1
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 2.0])


def test_one_no_grad_object_shared_by_threads_restores_each_threads_mode():
    shared = tg.no_grad()
    a_inside, b_inside, a_left = threading.Event(), threading.Event(), threading.Event()
    modes = {}

    def thread_a():  # grad on; enters first, leaves first
        with shared:
            a_inside.set()
            b_inside.wait(10)
        modes["a"] = tg.is_grad_enabled()
        a_left.set()

    def thread_b():  # inside its own no_grad; enters second, leaves last
        with tg.no_grad():
            a_inside.wait(10)
            with shared:
                b_inside.set()
                a_left.wait(10)
            modes["b"] = tg.is_grad_enabled()

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert modes == {"a": True, "b": False}


def test_a_shared_parameter_keeps_both_names_in_the_state_dict(backend):
    m = _Tied(backend)
    state = m.state_dict()
    assert sorted(state) == ["a.W", "a.b", "b.W", "b.b"]  # as PyTorch writes it
    other = _Tied(backend)
    other.load_state_dict(state)
    assert other.b.W is other.a.W
    np.testing.assert_array_equal(other.a.W.numpy(), m.a.W.numpy())


# ------------------------------------------------------------- layers' edges


def test_softmax_of_an_empty_batch_is_empty(backend):
    x = tg.Tensor(np.zeros((0, 3)), backend=backend)
    for f in (tg.nn.functional.softmax, tg.nn.functional.log_softmax):
        assert f(x).shape == (0, 3)
    with pytest.raises(ValueError, match=r"max over an empty axis .*\(0, 3\)"):
        x.amax(axis=0)


def test_the_rnn_state_must_be_a_tensor_of_the_weights_dtype(backend):
    rnn = tg.nn.RNN(2, 3, backend=backend)
    X = tg.Tensor(np.ones((4, 1, 2)), backend=backend)
    with pytest.raises(TypeError,
                       match=r"RNN: hx must be a Tensor of shape \(1, 1, 3\), got ndarray"):
        rnn(X, np.zeros((1, 1, 3), np.float32))
    with pytest.raises(TypeError, match="RNN: hx is float64 but the weights are float32"):
        rnn(X, tg.Tensor(np.zeros((1, 1, 3)), dtype="float64", backend=backend))


def test_functional_arguments_of_the_wrong_type_are_named():
    with pytest.raises(TypeError, match="num_classes must be an int, got 2.5"):
        tg.nn.functional.one_hot([1], 2.5)
    with pytest.raises(TypeError, match="logits as a Tensor, got ndarray"):
        tg.nn.functional.cross_entropy(np.zeros((2, 3)), [0, 1])


def test_numba_cross_entropy_keeps_small_float64_probabilities():
    """exp(-100) is 3.7e-44: far below float32's range, well inside float64's."""
    grads = {}
    for be in ("numpy", "numba"):
        x = tg.Tensor([[0.0, -100.0, -700.0]], dtype="float64", requires_grad=True, backend=be)
        tg.nn.functional.cross_entropy(x, [0]).backward()
        grads[be] = x.grad.numpy()
    assert grads["numba"][0, 1] > 0 and grads["numba"][0, 2] > 0
    np.testing.assert_allclose(grads["numba"], grads["numpy"], rtol=8 * EPS64, atol=0)


def test_changing_an_input_the_backward_does_not_read_is_fine(backend):
    w = tg.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    x = tg.Tensor([3.0, 4.0], backend=backend)
    loss = (w + x).sum()  # Add reads neither input in its backward
    with tg.no_grad():
        x += 1
    loss.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])
    y = tg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, backend=backend)
    loss = (y * y).sum()
    with tg.no_grad():
        flat = y.T.reshape(-1)  # not contiguous: reshape copies, so y is not changed
        flat *= 2
    loss.backward()
    np.testing.assert_array_equal(y.grad.numpy(), 2 * np.arange(6.0).reshape(2, 3))


def test_a_single_element_of_a_vector_is_a_view(backend):
    x = tg.Tensor([1.0, 2.0], backend=backend)
    v = x[0]
    v += 1
    np.testing.assert_array_equal(x.numpy(), [2.0, 2.0])  # as in PyTorch (and for 2-D x)


def test_changed_targets_are_seen(backend):
    logits = tg.Tensor([[1.0, 2.0, 3.0]], requires_grad=True, backend=backend)
    Y = tg.Tensor(np.array([0]), backend=backend)
    loss = tg.nn.functional.cross_entropy(logits, Y)
    Y[:] = 2  # refilling a target buffer before backward()
    with pytest.raises(RuntimeError, match="input 1 of SoftmaxCrossEntropy"):
        loss.backward()


def test_a_gradient_clipped_after_use_is_seen(backend):
    w = tg.Tensor([3.0, 4.0], requires_grad=True, backend=backend)
    (w * w).sum().backward()
    penalty = (w * w.grad).sum()  # a graph that reads w.grad
    tg.optim.clip_grad_norm([w], 1.0)  # scales w.grad in place
    w.grad = None
    with pytest.raises(RuntimeError, match="input 1 of Mul"):
        penalty.backward()


def test_a_state_dict_with_one_name_of_a_shared_parameter_loads(backend):
    m = _Tied(backend)
    state = m.state_dict()
    del state["b.W"]  # as written before every name was kept
    other = _Tied(backend)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.b.W.numpy(), m.a.W.numpy())
    del state["a.W"]
    with pytest.raises(KeyError, match=r"missing \['a.W', 'b.W'\]"):
        other.load_state_dict(state)


def test_while_recording_plus_equals_on_a_view_is_refused(backend):
    w = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True, backend=backend)
    y = w * 2
    v = y[0:2]  # its base y would not see a rebinding
    with pytest.raises(RuntimeError, match=r"in-place \+= .*shares its data with a view"):
        v += 1
    with pytest.raises(RuntimeError, match=r"in-place \+= .*shares its data with a view"):
        y += w  # nor would the view v see y's
    base = w * 1.0
    d = base.detach()
    with pytest.raises(RuntimeError, match=r"in-place \+= .*or a detach\(\)ed copy"):
        d += w  # base, still alive, would not see it
    m = tg.Tensor(np.ones((2, 3)), requires_grad=True, backend=backend).amax(0)
    m += 1  # a result NumPy happens to hold as a view of its own scratch array: no alias
    assert m.numpy().tolist() == [2.0, 2.0, 2.0] and m._ctx is not None
    with pytest.raises(RuntimeError, match="item assignment .*tg.cat, or blend with a mask"):
        y[0] = 5.0
    with pytest.raises(RuntimeError, match="zero_.*use x \\* 0 instead"):
        y.zero_()
    with pytest.raises(RuntimeError, match=r"in-place -= .*`with tg.no_grad\(\):`"):
        w -= 1


def test_while_recording_plus_equals_after_a_view_has_gone_rebinds(backend):
    """Only a live alias stops x += y: logging a running total through detach(), or a
    view taken and dropped, leaves nothing that could miss the change."""
    w = tg.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    total = 0
    for _ in range(3):
        total += (w * w).sum()
        float(total.detach().numpy())  # a detached copy, gone at once
    total.reshape(1)  # a view, gone at once
    total += w.sum()
    total.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [7.0, 13.0])  # 3 * 2w + 1


def test_any_array_like_index_scatter_adds(backend):
    import array

    x = tg.Tensor(np.arange(3.0), requires_grad=True, backend=backend)
    x[array.array("l", [0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="index arrays must be integer or bool, got float64"):
        x[1.5]


# ------------------------------------------------------------ PyTorch idioms


def test_assigning_a_tensor_to_data_is_refused(backend):
    p = tg.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    p.grad = tg.Tensor([1.0, 1.0], backend=backend)
    # NumPy's -= defers to the Tensor, whose .data setter refuses; CuPy's refuses itself
    with pytest.raises(TypeError, match=r"\.data holds the backend's raw array.*p -= lr"
                                        r"|Unsupported type"):
        p.data -= 0.5 * p.grad  # old PyTorch's idiom: the right side is a Tensor here
    np.testing.assert_array_equal(p.numpy(), [1.0, 2.0])
    p.data = p.data - 0.5  # a raw array is fine
    np.testing.assert_array_equal(p.numpy(), [0.5, 1.5])


def test_iteration_int_argmax_and_detach_in_place(backend):
    X = tg.Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True, backend=backend)
    rows = list(X)
    assert len(rows) == 3 and all(r.shape == (2,) for r in rows)
    sum(r.sum() for r in rows).backward()
    np.testing.assert_array_equal(X.grad.numpy(), np.ones((3, 2)))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(tg.Tensor(2.0, backend=backend))
    assert int(tg.Tensor([7], backend=backend)) == 7
    y = tg.Tensor([[0.1, 0.7, 0.2], [0.5, 0.4, 0.1]], backend=backend)
    assert y.argmax(axis=1).tolist() == [1, 0] and y.argmax().item() == 1
    assert y.argmax(axis=-1, keepdims=True).shape == (2, 1)
    state = X * 2
    assert state.detach_() is state and not state.requires_grad and state.is_leaf


def test_argmax_takes_one_axis_and_optimizers_a_list(backend):
    X = tg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, backend=backend)
    with pytest.raises(TypeError, match=r"argmax takes one dim \(an int\) or None, got \(0, 1\)"):
        X.argmax((0, 1))
    with pytest.raises(TypeError, match=r"got one Tensor; wrap it: \[p\]"):
        tg.optim.SGD(X, lr=0.1)
    X.grad = tg.Tensor(np.full((2, 3), 2.0), backend=backend)
    norm = tg.optim.clip_grad_norm(X, 1.0)  # one tensor, as PyTorch allows
    np.testing.assert_allclose(float(norm), np.sqrt(24.0), rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(X.grad.numpy()), 1.0, rtol=4 * EPS32)


def test_relu_gradient_at_zero_is_zero(backend):
    x = tg.Tensor([-1.0, 0.0, 2.0], requires_grad=True, backend=backend)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])


def test_cast_backward_rounds_the_gradient_to_the_input_dtype_at_the_cast(backend):
    rng = np.random.default_rng(0)
    a = tg.Tensor(rng.standard_normal(512), requires_grad=True, backend=backend)  # float32
    b = tg.Tensor(rng.standard_normal(512), backend=backend)
    u = rng.standard_normal(512)  # float64
    (a * b).astype("float64").backward(u)
    np.testing.assert_array_equal(a.grad.numpy(), u.astype(np.float32) * b.numpy())


def test_backward_casts_a_given_gradient_to_the_outputs_dtype(backend):
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal(512), requires_grad=True, backend=backend)
    w = tg.Tensor(rng.standard_normal(512), backend=backend)
    u = rng.standard_normal(512)  # float64 given
    (x * w).backward(u)
    np.testing.assert_array_equal(x.grad.numpy(), u.astype(np.float32) * w.numpy())


def test_backward_of_a_one_element_tensor_needs_no_gradient(backend):
    x = tg.Tensor([[3.0]], requires_grad=True, backend=backend)
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[6.0]])


@pytest.mark.parametrize("make", [lambda ps, lr: tg.optim.SGD(ps, lr=lr),
                                  lambda ps, lr: tg.optim.Adam(ps, lr=lr)])
def test_a_negative_learning_rate_is_refused_and_zero_taken_as_torch_does(make):
    with pytest.raises(ValueError, match="Invalid learning rate: -0.5"):
        make([tg.Tensor([1.0], requires_grad=True)], -0.5)
    assert make([tg.Tensor([1.0], requires_grad=True)], 0.0).lr == 0.0  # a schedule's end


@pytest.mark.parametrize("op", [lambda a, b: a / b, lambda a, b: a @ b.reshape(2, 1)])
def test_changing_an_input_that_the_backward_reads_is_refused(backend, op):
    a = tg.Tensor([[1.0, 2.0]], requires_grad=True, backend=backend)
    b = tg.Tensor([2.0, 4.0], backend=backend)
    y = op(a, b).sum()
    b *= 10  # b takes no part in autograd: a plain in-place change
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


@pytest.mark.parametrize("fused", [True, False])
def test_resetting_a_state_that_only_the_rnn_backward_reads_is_refused(backend, fused):
    """Sum's backward reads nothing, so only the recurrence's can read the outputs: the
    fused RNNRecurrence saves them (its output H is ``output``) and refuses a change of
    ``output[-1]``; the composed path's outputs are a stacked copy of what its Tanh ops
    saved, so there zeroing them, like zeroing ``h_n``, leaves the gradients exact."""
    def loss_of(Y):
        return Y.sum()

    clean = _rnn_grads_after(backend, fused, loss_of)
    touches = [_zero_h_n]
    if fused:
        with pytest.raises(RuntimeError, match="output of RNNRecurrence.*changed in place"):
            _rnn_grads_after(backend, fused, loss_of, _zero_last_step)
    else:
        touches.append(_zero_last_step)
    for touch in touches:
        touched = _rnn_grads_after(backend, fused, loss_of, touch)
        assert touched.keys() == clean.keys()
        for k in clean:
            np.testing.assert_array_equal(touched[k], clean[k], err_msg=f"{touch.__name__}: {k}")


def test_an_update_of_w_hh_before_backward_is_refused(backend):
    rnn = tg.nn.RNN(3, 4, backend=backend)
    X = tg.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)), backend=backend)
    Y, _ = rnn(X)
    loss = Y.sum()
    with tg.no_grad():
        rnn.W_hh_l0 *= 2.0
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()


def test_each_node_backward_runs_once_per_pass(monkeypatch):
    from tinygrad_rnn import ops
    calls = []
    original = ops.Tanh.backward
    monkeypatch.setattr(ops.Tanh, "backward", lambda self, g: calls.append(1) or original(self, g))
    x = tg.Tensor([0.5], requires_grad=True)
    h = x.tanh()
    (h + h * 2.0).sum().backward()
    assert len(calls) == 1


@pytest.mark.parametrize("op", [lambda x: x ** 3.0, lambda x: x.log(), lambda x: x / 2.0 * x])
def test_a_parameter_updated_before_backward_is_refused(backend, op):
    x = tg.Tensor([1.0, 2.0], requires_grad=True, backend=backend)
    y = op(x).sum()
    with tg.no_grad():
        x += 1  # as an optimizer step would
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_a_plain_tensor_cannot_take_a_parameters_place():
    """As in PyTorch: the tensor would silently drop out of parameters() and state_dict."""
    m = tg.nn.Linear(3, 2)
    with pytest.raises(TypeError, match="cannot assign a Tensor to parameter 'W' of Linear"):
        m.W = m.W.to("numba")
    with pytest.raises(TypeError, match="cannot assign a ndarray to parameter 'b'"):
        m.b = np.zeros(2)
    assert [name for name, _ in m.named_parameters()] == ["W", "b"]
    m.W = tg.nn.Parameter(np.ones((3, 2)))  # a Parameter may replace it
    assert m.W.numpy().sum() == 6 and m.parameters()[0] is m.W  # in its place, first


class _Marked(np.ndarray):
    """The arrays of a stand-in for a device backend: NumPy arrays, told apart by type."""


class _MarkedBackend(tg.backends.get("numpy").__class__):
    name = "marked"

    def asarray(self, data, dtype=None):
        return np.asarray(data, dtype=dtype).view(_Marked)


def test_adam_moments_follow_a_module_moved_after_the_optimizer_was_made(monkeypatch):
    """Two runs of three Adam steps, one moving the model to another backend after the
    first: the moments move with it (as they must to a GPU), and the numbers agree."""
    monkeypatch.setattr(tg.backends, "_registered", dict(tg.backends._registered))
    monkeypatch.setattr(tg.backends, "_instances", dict(tg.backends._instances))
    tg.backends.register("marked", _MarkedBackend)

    (model, opt), (moved, moved_opt) = adam_steps_moving(None), adam_steps_moving("marked")
    assert all(isinstance(m, _Marked) for m in moved_opt.m + moved_opt.v)
    params, state = model.state_dict(), tg.optim.flatten_state_dict(opt.state_dict())
    moved_params = moved.state_dict()
    moved_state = tg.optim.flatten_state_dict(moved_opt.state_dict())
    for key in params:  # the same NumPy arithmetic on both: bit for bit
        np.testing.assert_array_equal(moved_params[key], params[key])
    for key in state:
        np.testing.assert_array_equal(moved_state[key], state[key])


def test_swapaxes_is_pytorchs_transpose_and_transpose_hints_at_it(backend):
    x = tg.Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True, backend=backend)
    y = x.swapaxes(1, -1)
    np.testing.assert_array_equal(y.numpy(), np.arange(24.0).reshape(2, 3, 4).swapaxes(1, 2))
    (y * tg.Tensor(np.arange(24.0).reshape(2, 4, 3), backend=backend)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(24.0).reshape(2, 4, 3).swapaxes(1, 2))
    np.testing.assert_array_equal(x.transpose(1, -1).numpy(), y.numpy())  # torch's transpose
    with pytest.raises(IndexError, match="dim 3 is out of range for a tensor with 3 dim"):
        x.swapaxes(0, 3)


def test_cat_of_integers_and_floats_takes_the_float_dtype_like_plus():
    ints, floats = tg.Tensor([1, 2]), tg.Tensor([0.5], requires_grad=True)
    joined = tg.cat([ints, floats])
    assert joined.dtype == (ints + floats).dtype == np.float32
    np.testing.assert_array_equal(joined.numpy(), [1.0, 2.0, 0.5])
    joined.sum().backward()
    np.testing.assert_array_equal(floats.grad.numpy(), [1.0])
    assert tg.cat([ints, tg.Tensor([0.5], dtype="float64")]).dtype == np.float64
    assert tg.cat([ints, ints]).dtype == np.int64


@pytest.mark.parametrize("fused", [True, False])
def test_the_rnn_takes_lists_and_arrays(fused):
    rnn = tg.nn.RNN(4, 3, fused=fused)
    ids = [[0, 1], [2, 3]]
    np.testing.assert_array_equal(rnn(ids)[0].numpy(), rnn(tg.Tensor(ids))[0].numpy())
    X = np.random.default_rng(0).standard_normal((2, 2, 4))
    out, _ = rnn(X.tolist())
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), rnn(tg.Tensor(X))[0].numpy())


def test_containers_slice_extend_and_forget_deleted_layers():
    net = tg.nn.Sequential(tg.nn.Linear(2, 3), tg.nn.ReLU(), tg.nn.Linear(3, 1))
    head = net[1:]
    assert isinstance(head, tg.nn.Sequential) and len(head) == 2 and head[1] is net[2]
    X = tg.Tensor(np.ones((4, 2)))
    np.testing.assert_array_equal(net(X).numpy(), head(net[0](X)).numpy())
    layers = tg.nn.ModuleList().extend([tg.nn.Linear(1, 1), tg.nn.Linear(1, 1)])
    assert isinstance(layers[:1], tg.nn.ModuleList) and len(layers[:1]) == 1


def test_a_deleted_or_none_parameter_or_layer_leaves_the_registry():
    class Net(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = tg.nn.Linear(2, 2)
            self.head = tg.nn.Linear(2, 1)

    net = Net()
    del net.head
    assert [n for n, _ in net.named_parameters()] == ["body.W", "body.b"]
    assert list(net.state_dict()) == ["body.W", "body.b"]
    lin = tg.nn.Linear(2, 1)
    lin.W = None  # as PyTorch's `bias = None`: registered as None, out of parameters()
    assert [n for n, _ in lin.named_parameters()] == ["b"]
    lin.W = tg.nn.Parameter(np.ones((2, 1)))  # back in its old place, first
    assert [n for n, _ in lin.named_parameters()] == ["W", "b"]


# ------------------------------------------------------ found by fuzzing against PyTorch
S = slice(None)


@pytest.mark.parametrize("index", [
    (0, S, [0, 1]),  # NumPy (2, 3, 2), PyTorch (3, 2, 2)
    (0, Ellipsis, [0, 1]),
    (0, S, [[0], [1]]),
    (S, 0, S, [0, 1]),
    (S, S, [1, 0], Ellipsis, [1, 0]),  # a ... of no axes parts arrays in NumPy only
    (S, 0, S, Ellipsis, [1, 0]),
    (0, Ellipsis, np.ones((4, 2), bool)),  # NumPy (8, 3), PyTorch (3, 8)
])
def test_an_index_numpy_and_pytorch_lay_out_differently_is_refused(backend, index):
    """x[0, :, [0, 1]]: the int counts as an index array in NumPy, which then finds the
    arrays apart and puts their axis first; PyTorch applies the int first. Refused, so
    neither reading is guessed; in an assignment too, unless one value goes everywhere."""
    x = tg.Tensor(np.arange(48.0).reshape(2, 3, 4, 2), backend=backend)
    with pytest.raises(IndexError, match=r"index in two steps to say which, e.g. x\[0\]"):
        x[index]
    with pytest.raises(IndexError, match="NumPy and PyTorch order the axes"):
        x[index] = tg.Tensor(np.zeros(x.numpy()[index].shape), backend=backend)
    x[index] = 7.0  # one value: where it goes does not depend on the order
    assert (x.numpy()[index] == 7.0).all()
    thin = tg.Tensor(np.zeros((2, 1, 4)), backend=backend)
    with pytest.raises(IndexError, match="NumPy and PyTorch order the axes"):
        thin[0, :, [0, 1]] = np.ones((2, 1))  # two values: their order matters


@pytest.mark.parametrize("index, shape", [
    (([0, 1], S, 0), (2, 3, 2)),  # both put the array's axis first
    ((S, 0, [0, 1]), (2, 2, 2)),  # int and array side by side
    ((0, [0, 1]), (2, 4, 2)),
    ((None, 0, [0, 1]), (1, 2, 4, 2)),
    (([0, 1], 0, [0, 1]), (2, 2)),
    ((S, [0, 1], S), (2, 2, 4, 2)),
    ((0, S, S, np.int64(1)), (3, 4)),  # no index array: nothing to lay out
    ((S, np.array(1), [0, 1]), (2, 2, 2)),  # a 0-d array is an int to both
    ((Ellipsis, 0, [1, 0]), (2, 3, 2)),  # the ... stands for two axes, before the block
    ((S, Ellipsis, np.ones((4, 2), bool)), (2, 3, 8)),  # a 2-d mask uses up two axes
    ((np.array(True), S, [0, 1]), (2, 2, 4, 2)),  # a 0-d mask is not an int
])
def test_int_and_array_indices_where_numpy_and_pytorch_agree(backend, index, shape):
    """Shapes from PyTorch 2.13, which NumPy gives too; the values are NumPy's."""
    assert index_as_numpy(np.arange(48.0).reshape(2, 3, 4, 2), index, backend).shape == shape


def test_float_functions_of_integer_tensors_are_float32_as_in_pytorch(backend):
    i = tg.Tensor(np.array([1, 2, 3], dtype=np.int32), backend=backend)
    for name in ("exp", "log", "tanh", "sigmoid", "sqrt"):
        out = getattr(i, name)()
        assert out.dtype == np.float32, name
        want = getattr(np, name)(np.float32([1, 2, 3])) if name != "sigmoid" else \
            1 / (1 + np.exp(-np.float32([1, 2, 3])))
        # CUDA's and NumPy's float32 exp/log/tanh are each within 2 ulp; sigmoid adds a
        # sum and a division: 16 ulp bounds the difference between any two backends
        np.testing.assert_allclose(out.numpy(), want, rtol=16 * EPS32)
    for fn in (tg.nn.functional.softmax, tg.nn.functional.log_softmax):
        assert fn(i).dtype == np.float32
    assert (i ** 2.0).dtype == np.float32 and (i ** 2).dtype == np.int32
    np.testing.assert_array_equal((i ** 2.0).numpy(), [1.0, 4.0, 9.0])
    with pytest.raises(ValueError, match="integers to negative integer powers are not allowed"):
        i ** -1
    assert (i ** -1.0).dtype == np.float32
    assert (i ** 0).dtype == np.int32 and (i ** 0).numpy().tolist() == [1, 1, 1]
    f = tg.Tensor([2.0, 3.0], backend=backend)
    assert (f ** np.True_).numpy().tolist() == [2.0, 3.0]  # a bool exponent is 1, as in NumPy
    for fn in (tg.nn.functional.softmax, tg.nn.functional.log_softmax):
        assert fn(tg.Tensor([[True, False]], backend=backend)).dtype == np.float32


def test_clamp_keeps_the_tensors_dtype_and_takes_only_numbers(backend):
    x = tg.Tensor([0.25, 2.0], backend=backend)  # float32
    assert x.clamp(np.float64(0.5)).dtype == np.float32  # as x + np.float64(0.5)
    i = tg.Tensor(np.array([1, 5], dtype=np.int32), backend=backend)
    assert i.clamp(np.int64(0), 3).dtype == np.int32
    with pytest.raises(OverflowError, match="bounds -1, None do not fit this tensor's dtype uint8"):
        tg.Tensor(np.array([1], dtype=np.uint8), backend=backend).clamp(-1)
    np.testing.assert_array_equal(i.clamp(0, 3).numpy(), [1, 3])
    clipped = i.clamp(1.5)  # a float bound makes floats, as in PyTorch
    assert clipped.dtype == np.float32
    np.testing.assert_array_equal(clipped.numpy(), [1.5, 5.0])
    mixed = tg.Tensor([0, 1, 2], backend=backend).clamp(0, 1.5)  # either bound a float
    assert mixed.dtype == np.float32 and mixed.numpy().tolist() == [0.0, 1.0, 1.5]
    for bound in (tg.Tensor([0.5, 3.0], backend=backend), "a", True):
        with pytest.raises(TypeError, match="clamp's bounds must be numbers"):
            x.clamp(bound)


def test_as_tensor_shares_an_array_of_its_backend_and_dtype_and_converts_the_rest():
    a = np.arange(3, dtype=np.float64)
    t = tg.as_tensor(a, backend="numpy")
    assert t.dtype == np.float64 and t.data is a  # shared, float64 kept (as torch.as_tensor)
    a[0] = 7
    assert t.tolist() == [7.0, 1.0, 2.0]
    assert tg.as_tensor(t) is t and tg.as_tensor(t, dtype="float64") is t
    cast = tg.as_tensor(a, dtype="float32", backend="numpy")
    assert cast.dtype == np.float32 and not np.shares_memory(cast.data, a)
    assert tg.as_tensor([1.0, 2.0], backend="numpy").dtype == np.float32  # as Tensor(...)
    assert tg.as_tensor(np.array([1, 2], np.int16), backend="numpy").dtype == np.int16
    with pytest.raises(TypeError, match="kind 'U'"):
        tg.as_tensor(np.array(["a"]), backend="numpy")

"""Errors name the problem: each message is checked for the facts a user needs."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.autograd import Function
from tinygrad_rnn.nn import functional as F


def shape_re(shape: tuple) -> str:
    return re.escape(str(tuple(shape)))


# -------------------------------------------------------------------------- backends
def test_unknown_backend_lists_available():
    for call in (
        lambda: tg.set_backend("nope"),
        lambda: tg.Tensor([1.0], backend="nope"),
        lambda: tg.backends.get("nope"),
    ):
        with pytest.raises(ValueError, match="unknown backend 'nope'") as info:
            call()
        message = str(info.value)
        for name in tg.backends.available():
            assert name in message
        assert "numpy" in message and "numba" in message
    assert tg.get_backend().name == "numpy"  # a failed set_backend changes nothing


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cupy_without_cupy_says_what_to_install():
    with pytest.raises(tg.backends.BackendUnavailable, match=r"CuPy.*pip install") as info:
        tg.set_backend("cupy")
    assert "cupy-cuda" in str(info.value) or "tinygrad_rnn[cuda" in str(info.value)
    assert tg.get_backend().name == "numpy"
    assert "cupy" not in tg.backends.available()


def _pair(other):
    a = tg.Tensor([[1.0, 2.0]], backend="numpy", requires_grad=True)
    b = tg.Tensor([[3.0, 4.0]], backend=other, requires_grad=True)
    return a, b


@pytest.mark.parametrize(
    "op",
    [
        "add",
        "mul",
        "sub",
        "div",
        "matmul",
        "cat",
        "compare",
        "index",
        "backward",
        "cross_entropy",
        "rnn_h0",
    ],
)
def test_mixing_backends_names_both(other_backend, op):
    a, b = _pair(other_backend)
    calls = {
        "add": lambda: a + b,
        "mul": lambda: b * a,
        "sub": lambda: a - b,
        "div": lambda: a / b,
        "matmul": lambda: a @ b.T,
        "cat": lambda: tg.cat([a, b]),
        "compare": lambda: a < b,
        "index": lambda: a[tg.Tensor([0], backend=other_backend)],
        "backward": lambda: (a * a).backward(tg.Tensor([[1.0, 1.0]], backend=other_backend)),
        "cross_entropy": lambda: F.cross_entropy(a, tg.Tensor([0], backend=other_backend)),
        "rnn_h0": lambda: tg.nn.RNN(2, 2, backend="numpy")(
            tg.Tensor(np.ones((1, 1, 2))), tg.Tensor(np.zeros((1, 1, 2)), backend=other_backend)
        ),
    }
    with pytest.raises(tg.BackendMismatchError) as info:
        calls[op]()
    message = str(info.value)
    assert "'numpy'" in message and f"'{other_backend}'" in message
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    ("sa", "sb"), [((2, 3), (4, 5)), ((3,), (4,)), ((2, 2, 3), (2, 4, 1)), ((5,), (2, 3))]
)
def test_matmul_mismatch_names_both_shapes(sa, sb):
    with pytest.raises(ValueError, match=f"{shape_re(sa)}.*{shape_re(sb)}"):
        tg.Tensor(np.ones(sa)) @ tg.Tensor(np.ones(sb))


def test_matmul_batch_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        tg.Tensor(np.ones((2, 1, 2))) @ tg.Tensor(np.ones((3, 2, 1)))


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "<"])
@pytest.mark.parametrize(("sa", "sb"), [((2, 3), (4,)), ((2, 1, 3), (4, 2)), ((3,), (2,))])
def test_broadcast_mismatch_names_both_shapes(op, sa, sb):
    a, b = tg.Tensor(np.ones(sa)), tg.Tensor(np.ones(sb))
    fn = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "/": lambda: a / b,
        "<": lambda: a < b,
    }[op]
    with pytest.raises(ValueError, match=f"{shape_re(sa)}.*{shape_re(sb)}"):
        fn()


def test_cat_and_stack_mismatch_name_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        tg.cat([tg.Tensor(np.ones((2, 3))), tg.Tensor(np.ones((2, 4)))], axis=0)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 3\)"):
        tg.stack([tg.Tensor(np.ones((2, 3))), tg.Tensor(np.ones((3, 3)))])


def test_reshape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        tg.Tensor(np.ones((2, 3))).reshape(4, 2)


# ---------------------------------------------------------------------------- autograd
def test_backward_non_scalar_needs_grad():
    x = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"non-scalar.*\(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        (x * 2).backward(np.ones(3))


def test_backward_without_grad_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.Tensor([1.0]).sum().backward()


@pytest.mark.parametrize("data", [[1, 2], np.arange(3, dtype=np.int32), [True]])
def test_requires_grad_on_integer_data(data):
    with pytest.raises(TypeError, match="floating-point") as info:
        tg.Tensor(data, requires_grad=True)
    assert str(np.asarray(data).dtype) in str(info.value)
    with pytest.raises(TypeError, match="floating-point"):
        tg.Tensor(data).requires_grad_()


def test_pow_with_tensor_exponent():
    x = tg.Tensor([2.0], requires_grad=True)
    with pytest.raises(TypeError, match="Python number exponent.*Tensor"):
        x ** tg.Tensor([2.0])
    with pytest.raises(TypeError, match="Python number exponent"):
        x ** np.array([2.0])


# ------------------------------------------------------------------- cross-entropy
def test_cross_entropy_targets_out_of_range():
    logits = tg.Tensor(np.zeros((3, 4)), requires_grad=True)
    with pytest.raises(IndexError, match=r"out of range.*\[0, 3\]"):
        F.cross_entropy(logits, tg.Tensor([0, 4, 1]))
    with pytest.raises(IndexError, match=r"out of range.*-1"):
        F.cross_entropy(logits, [0, -1, 1])


def test_cross_entropy_targets_wrong_shape():
    logits = tg.Tensor(np.zeros((3, 4)), requires_grad=True)
    for targets in ([0, 1], [[0, 1, 2]], np.zeros((3, 1), dtype=np.int64)):
        with pytest.raises(ValueError, match=r"targets of shape.*\(3, 4\).*\(3,\)"):
            F.cross_entropy(logits, targets)
    with pytest.raises(ValueError, match=r"\(N, C\).*\(2, 3, 4\)"):
        F.cross_entropy(tg.Tensor(np.zeros((2, 3, 4))), [0, 1])


def test_cross_entropy_float_targets():
    with pytest.raises(TypeError, match="integer.*float"):
        F.cross_entropy(tg.Tensor(np.zeros((2, 3))), tg.Tensor([0.0, 1.0]))


def test_cross_entropy_bad_reduction():
    with pytest.raises(ValueError, match="reduction.*'avg'"):
        F.cross_entropy(tg.Tensor(np.zeros((2, 3))), [0, 1], reduction="avg")


# ----------------------------------------------------------------------------- RNN
@pytest.mark.parametrize("fused", [True, False])
def test_rnn_input_of_wrong_shape(fused):
    rnn = tg.nn.RNN(3, 4, fused=fused)
    # float input is (T, N, d) or, as in PyTorch, unbatched (T, d): other ranks are refused
    for shape in ((3,), (2, 1, 1, 3)):
        with pytest.raises(ValueError, match=r"\(T, N, 3\) or \(T, 3\) \(unbatched\).*"
                                             + re.escape(str(shape))):
            rnn(tg.Tensor(np.ones(shape)))
    out, h_n = rnn(tg.Tensor(np.ones((2, 3))))  # unbatched: runs, without the N axis
    assert out.shape == (2, 4) and h_n.shape == (1, 4)
    with pytest.raises(ValueError, match=r"\(T, N, 3\).*\(2, 1, 5\)"):
        rnn(tg.Tensor(np.ones((2, 1, 5))))  # wrong feature size
    with pytest.raises(ValueError, match=r"\(T, N, 3\).*\(2, 5\)"):
        rnn(tg.Tensor(np.ones((2, 5))))  # wrong feature size, unbatched
    with pytest.raises(ValueError, match=r"token ids.*\(T, N\).*\(2, 1, 1\)"):
        rnn(tg.Tensor(np.zeros((2, 1, 1), dtype=np.int64)))
    # hx is (D·num_layers, N, H), (D·num_layers, H) for unbatched input
    with pytest.raises(ValueError, match=r"hx.*\(1, 1, 4\).*\(1, 1, 3\)"):
        rnn(tg.Tensor(np.ones((2, 1, 3))), tg.Tensor(np.zeros((1, 1, 3))))
    with pytest.raises(ValueError, match=r"hx.*\(1, 1, 4\).*\(1, 4\)"):
        rnn(tg.Tensor(np.ones((2, 1, 3))), tg.Tensor(np.zeros((1, 4))))  # (N, H): no layer axis
    with pytest.raises(ValueError, match=r"hx.*\(1, 4\).*\(1, 1, 4\)"):
        rnn(tg.Tensor(np.ones((2, 3))), tg.Tensor(np.zeros((1, 1, 4))))  # unbatched input
    with pytest.raises(IndexError, match="out of range"):
        rnn(tg.Tensor(np.array([[3]])))  # token id 3 with input_size 3
    with pytest.raises(ValueError, match="T = 0"):
        rnn(tg.Tensor(np.ones((0, 1, 3))))


def test_rnn_bad_constructor_arguments():
    with pytest.raises(ValueError, match="nonlinearity.*'sigmoid'"):
        tg.nn.RNN(2, 2, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size.*0"):
        tg.nn.RNN(2, 0)


# --------------------------------------------------------------------- state dicts
def _model():
    return tg.nn.Linear(3, 2)


def test_load_state_dict_missing_entry():
    m = _model()
    before = m.state_dict()
    with pytest.raises(KeyError, match=r"missing \['b'\]"):
        m.load_state_dict({"W": np.zeros((3, 2))})
    np.testing.assert_array_equal(m.W.numpy(), before["W"])  # nothing was changed


def test_load_state_dict_unexpected_entry():
    m = _model()
    state = m.state_dict()
    state["extra.weight"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"unexpected \['extra.weight'\]"):
        m.load_state_dict(state)
    m.load_state_dict(state, strict=False)  # allowed when not strict


def test_load_state_dict_mis_shaped_entry():
    m = _model()
    before = m.state_dict()
    state = {"W": np.ones((3, 2)), "b": np.ones((3,))}
    with pytest.raises(ValueError, match=r"'b'.*\(3,\).*\(2,\)"):
        m.load_state_dict(state)
    for k, v in before.items():  # W (which was valid) was not loaded either
        np.testing.assert_array_equal(m.state_dict()[k], v)


# ------------------------------------------------------------------------- misc
def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="learning rate.*-0.1"):
        tg.optim.SGD([tg.Tensor([1.0], requires_grad=True)], lr=-0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        tg.optim.Adam([])
    with pytest.raises(ValueError, match="a tensor computed from others"):
        tg.optim.SGD([tg.Tensor([1.0], requires_grad=True) * 2], lr=0.1)
    with pytest.raises(TypeError, match="must be tensors, got a ndarray"):
        tg.optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="max_norm.*0"):
        tg.optim.clip_grad_norm([tg.Tensor([1.0], requires_grad=True)], 0)


def test_index_errors_name_index_and_shape():
    x = tg.Tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        x[5]
    with pytest.raises(TypeError, match="integer or bool.*float"):
        x[np.array([0.5])]
    with pytest.raises(IndexError, match="dim 2.*2 dimensions"):
        x.sum(axis=2)


def test_foreign_array_type_names_the_backend_to_use():
    """Data of a library the backend can't read (a CuPy array on 'numpy', say) is refused
    with a message that names the backend and says to pass backend=, not NumPy's error."""

    class DeviceArray:
        def __array__(self, *args, **kwargs):
            raise TypeError("Implicit conversion to a NumPy array is not allowed")

    with pytest.raises(TypeError, match=r"backend 'numpy'.*pass backend="):
        tg.Tensor(DeviceArray())


def test_ragged_or_non_numeric_data_is_refused_by_the_tensor():
    with pytest.raises(ValueError, match="cannot make a tensor from this list: "):
        tg.Tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(TypeError, match="cannot make a tensor from data of kind 'U'"):
        tg.Tensor(["a", "b"])


@pytest.mark.parametrize("other", [None, "2", b"2", [None, 1.0]])
def test_combining_a_tensor_with_a_non_number_is_a_type_error(other):
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    for combine in (lambda: x + other, lambda: other * x, lambda: x == other):
        with pytest.raises(TypeError, match="tensor|kind"):
            combine()
    with pytest.raises(TypeError, match="kind 'O'"):
        tg.Tensor(None, dtype="float32")


def test_bad_axes_dtypes_and_list_items_are_named():
    y = tg.Tensor(np.zeros((2, 3, 4)))
    for dims in [(0, 5), (3, 2), (1, -7)]:
        bad = dims[0] if dims[0] == 3 else dims[1]
        with pytest.raises(IndexError, match=rf"dim {bad} is out of range .* 3 dimensions"):
            y.transpose(*dims)
    with pytest.raises(TypeError, match="dim must be an int.*1.5"):
        y.sum(1.5)
    for dtype in ["U3", "complex64"]:
        with pytest.raises(TypeError, match=f"unsupported tensor dtype {np.dtype(dtype)}"):
            y.astype(dtype)
    for join in (tg.cat, tg.stack):
        with pytest.raises(TypeError, match=r"takes tensors, but item 1 is a ndarray"):
            join([y, np.zeros((2, 3, 4))])


class _Square(Function):
    """x², with a backward that returns whatever the test gives it."""

    result: object = None

    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, g):
        return type(self).result(self.a, g)


def test_a_custom_backward_may_return_one_bare_gradient():
    """With one input, PyTorch lets backward return the gradient alone: so may we."""
    x = tg.Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    _Square.result = staticmethod(lambda a, g: 2 * a * g)
    _Square.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 4.0, 6.0]])


@pytest.mark.parametrize("result,error,message", [
    (lambda a, g: (2 * (a * g).sum(axis=1),), ValueError,  # (1,) for a (1, 3) input
     r"_Square.backward returned a gradient of shape \(1,\) for input 0 of shape \(1, 3\)"),
    (lambda a, g: (np.ones((5,)),), ValueError, r"gradient of shape \(5,\) for input 0"),
    (lambda a, g: (2 * a * g, None), ValueError, "returned 2 gradients for 1 inputs"),
    (lambda a, g: (tg.Tensor(2 * a * g),), TypeError,
     "must return arrays .numpy backend. or None; gradient 0 is a Tensor"),
])
def test_a_custom_backward_with_the_wrong_gradients_is_refused(result, error, message):
    x = tg.Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    _Square.result = staticmethod(result)
    y = _Square.apply(x).sum()
    with pytest.raises(error, match=message):
        y.backward()
    assert x.grad is None


def test_a_gradient_of_the_broadcast_shape_is_still_summed_down():
    x = tg.Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    _Square.result = staticmethod(lambda a, g: (np.broadcast_to(2 * a * g, (4, 1, 3)),))
    _Square.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[8.0, 16.0, 24.0]])


def test_function_apply_takes_tensors():
    with pytest.raises(TypeError, match=r"_Square.apply takes Tensors; input 0 is of type ndarray"):
        _Square.apply(np.ones(3))


# ------------------------------------------------ arguments found loose by fuzzing
@pytest.mark.parametrize("call, message", [
    (lambda x: x.reshape(3.5, 2), "reshape's sizes must be an int, got 3.5"),
    (lambda x: x.reshape("2", 3), "reshape's sizes must be an int, got '2'"),
    (lambda x: x.transpose(True, False), "transpose's dims must be an int, got True"),
    (lambda x: x.swapaxes(1.5, 0), "transpose's dims must be an int, got 1.5"),
    (lambda x: x.sum(0, keepdims="yes"), "keepdim must be True or False, got 'yes'"),
    (lambda x: x.max(keepdims=None), "keepdim must be True or False, got None"),
    (lambda x: x * np.complex128(1j), "complex numbers are not supported"),
    (lambda x: (x * 2).backward([[None] * 2] * 3), "the gradient must be real numbers"),
    (lambda x: F.softmax(x.numpy()), "softmax expects x as a Tensor, got ndarray"),
    (lambda x: F.mse_loss(x.numpy(), x), "mse_loss expects pred as a Tensor, got ndarray"),
    (lambda x: F.embedding([0], x.numpy()), "embedding expects weight as a Tensor"),
    (lambda x: tg.optim.clip_grad_norm([x.numpy()], 1.0), "takes tensors .* got a ndarray"),
    (lambda x: tg.optim.SGD([x], lr="0.1"), "learning rate must be a number, got '0.1'"),
    (lambda x: tg.optim.Adam([x], betas=0.9), r"betas must be two numbers in \[0, 1\)"),
    (lambda x: tg.optim.Adam([x], betas=(0.9, 0.99, 0.5)), "betas must be two numbers"),
    (lambda x: tg.optim.SGD([x], lr=True), "learning rate must be a number, got True"),
    (lambda x: tg.optim.SGD([x], lr=0.1, momentum=True), "SGD momentum must be a number"),
    (lambda x: tg.optim.SGD([x], lr=0.1, weight_decay=np.True_), "weight_decay must be a num"),
    (lambda x: x.sum(0, keepdims=1), "keepdim must be True or False, got 1"),
    (lambda x: x.argmax(0, keepdims="yes"), "keepdim must be True or False, got 'yes'"),
    (lambda x: tg.Tensor(np.ones((3, 2), np.int32)).min(0, keepdims=1), "keepdim must be"),
    (lambda x: (x * 2).backward(np.ones((3, 2), np.complex64)), "must be real numbers"),
])
def test_loose_arguments_get_a_clear_error(call, message):
    x = tg.Tensor(np.ones((3, 2)), requires_grad=True)
    with pytest.raises((TypeError, ValueError), match=message):
        call(x)


def test_min_and_argmax_of_an_empty_integer_tensor_name_the_problem():
    empty = tg.Tensor(np.ones((0, 3), dtype=np.int64))
    with pytest.raises(IndexError, match=r"min\(dim=0\) of a tensor of shape \(0, 3\)"):
        empty.min(0)
    with pytest.raises(ValueError, match=r"min over an empty dim of a tensor of shape \(0, 3\)"):
        empty.amin(0)
    assert empty.min(1).values.shape == (0,)  # an empty batch of rows is fine
    assert empty.amin(1).shape == (0,)
    with pytest.raises(ValueError, match=r"argmax of an empty tensor of shape \(0, 3\)"):
        tg.Tensor(np.ones((0, 3))).argmax()


@pytest.mark.parametrize("make, message", [
    (lambda: tg.nn.init.normal((2, 2), -1.0), "normal: std must be a finite number >= 0"),
    (lambda: tg.nn.init.normal((2, 2), float("nan")), "std must be a finite number >= 0, got nan"),
    (lambda: tg.nn.init.xavier_uniform((0, 0)), r"shape \(0, 0\) has no fan"),
    (lambda: tg.nn.init.xavier_uniform((2, 2), gain=-1.0), "gain must be a finite number"),
])
def test_initialisers_refuse_a_spread_that_is_not_one(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_layers_and_containers_name_a_wrong_argument_type():
    seq = tg.nn.Sequential(tg.nn.RNN(5, 4), tg.nn.Linear(4, 2))
    with pytest.raises(TypeError, match=r"Linear expects a Tensor, got tuple \(an RNN returns"):
        seq(np.zeros((3, 2), dtype=np.int64))
    lin = tg.nn.Linear(2, 1)
    np.testing.assert_allclose(lin([[1.0, 2.0]]).numpy(),  # a list, as the RNN takes it
                               lin(tg.Tensor([[1.0, 2.0]])).numpy())
    with pytest.raises(TypeError, match="Sequential index must be an int, got '0'"):
        seq["0"]
    with pytest.raises(TypeError, match="Sequential index must be an int, got 1.0"):
        seq[1.0] = tg.nn.Linear(4, 2)

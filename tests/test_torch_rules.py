"""PyTorch's dim and dtype rules (issue 20, items 3 and 4): the table of ``dtypes`` checked
case by case, and against ``torch`` itself where it is installed (never a dependency)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.checks import DimError

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float32", "float64"]


def ones(dtype: str, shape: tuple) -> tg.Tensor:
    return tg.Tensor(np.ones(shape, dtype=dtype), dtype=dtype)


# ------------------------------------------------------------------ dtypes, no torch
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int32", "bool"])
def test_integer_and_bool_sums_are_int64(dtype):
    x = ones(dtype, (3, 2))
    assert x.sum().dtype == np.int64 and x.sum(0).dtype == np.int64
    assert x.sum().item() == 6 and x.sum(dim=1, keepdim=True).shape == (3, 1)
    big = tg.Tensor(np.full(300, 200, np.uint8))  # NumPy's uint8 sum would be uint64
    assert big.sum().item() == 60_000 and big.sum().dtype == np.int64


def test_zero_d_tensors_are_weak_within_their_category():
    f32, i8, b = ones("float32", (2,)), ones("int8", (2,)), ones("bool", (2,))
    f64_0d, i64_0d = tg.Tensor(2.0, dtype="float64"), tg.Tensor(np.int64(3))
    assert (f32 + f64_0d).dtype == np.float32 and (f64_0d * f32).dtype == np.float32
    assert (i8 + i64_0d).dtype == np.int8 and (i64_0d - i8).dtype == np.int8
    assert (i8 + f64_0d).dtype == np.float64  # a higher category wins, at its own width
    assert (b + i64_0d).dtype == np.int64
    assert (f64_0d + tg.Tensor(1.0)).dtype == np.float64  # two 0-d tensors: promoted
    # a weak float64 operand still gets its gradient, cast back to float64
    w = tg.Tensor(2.0, dtype="float64", requires_grad=True)
    (f32 * w).sum().backward()
    assert w.grad.dtype == np.float64 and w.grad.item() == 2.0


def test_numpy_scalars_are_weak_like_python_numbers():
    i8, f32 = ones("int8", (2,)), ones("float32", (2,))
    assert (i8 + np.int64(1)).dtype == np.int8 and (np.int64(1) + i8).dtype == np.int8
    assert (f32 * np.float64(2)).dtype == np.float32 and (i8 * np.float64(2)).dtype == np.float32


def test_an_int_too_big_for_the_dtype_widens_instead_of_wrapping():
    """The one deliberate difference: PyTorch gives uint8 45 for u8 + 300."""
    u8 = tg.Tensor(np.array([1, 2], np.uint8))
    assert (u8 + 300).tolist() == [301, 302] and (u8 + 300).dtype == np.int64
    assert not (u8 == 257).any()


def test_powers_and_bool_arithmetic():
    b, i8 = tg.Tensor([True, False]), ones("int8", (2,))
    assert (b ** 2).dtype == np.int64 and (b ** 2).tolist() == [1, 0]
    assert (b ** True).tolist() == [True, False] and (b ** False).tolist() == [True, True]
    assert (b + b).dtype == np.bool_ and (b * 3).dtype == np.int64
    with pytest.raises(OverflowError, match="exponent 200 does not fit .* int8"):
        i8 ** 200
    with pytest.raises(ValueError, match="negative integer powers"):
        i8 ** -1
    for bad in (lambda: b - b, lambda: 1 - b, lambda: -b, lambda: ones("float32", (2,)) - True):
        with pytest.raises(TypeError, match=r"\(-\)|-\) of a bool|with a bool"):
            bad()


def test_mean_of_integers_is_refused_and_dtype_converts_first():
    i = tg.Tensor([1, 2, 4])
    with pytest.raises(TypeError, match=r"mean of a int64 tensor.*x\.float\(\)\.mean\(\)"):
        i.mean()
    assert i.float().mean().item() == pytest.approx(7 / 3)
    assert i.mean(dtype="float64").dtype == np.float64
    assert i.sum(dtype="float32").dtype == np.float32


# -------------------------------------------------------------------- dims, no torch
def test_a_0d_tensor_takes_dims_0_and_minus_1():
    x = tg.Tensor(3.0, requires_grad=True)
    for dim in (0, -1, (0,), [-1]):
        assert x.sum(dim).shape == () and x.sum(dim).item() == 3.0
        assert x.amax(dim).item() == 3.0
    assert x.squeeze(0).shape == () and x.unsqueeze(0).shape == (1,)
    v, i = x.max(0)
    assert v.item() == 3.0 and i.item() == 0 and i.dtype == np.int64
    assert x.argmax(0).item() == 0 and x.flatten().shape == (1,)
    assert tg.nn.functional.softmax(x, -1).item() == 1.0
    for bad in (1, -2):
        with pytest.raises(DimError, match=rf"dim {bad} is out of range .* 0 dimensions"):
            x.sum(bad)


@pytest.mark.parametrize("call", [
    lambda x: x.sum(3), lambda x: x.mean(dim=-4), lambda x: x.amax((0, 3)),
    lambda x: x.max(3), lambda x: x.argmax(3), lambda x: x.squeeze(3),
    lambda x: x.unsqueeze(5), lambda x: x.transpose(0, 3), lambda x: x.flatten(0, 3),
    lambda x: tg.cat([x, x], 3), lambda x: tg.nn.functional.softmax(x, 3),
])
def test_a_dim_out_of_range_is_an_index_error_and_a_value_error(call):
    x = tg.Tensor(np.ones((2, 3, 4)))
    with pytest.raises(IndexError, match=r"dim -?\d is out of range for a tensor with \d dim"):
        call(x)
    with pytest.raises(ValueError):  # NumPy's AxisError is both, and so is DimError
        call(x)


def test_dim_and_axis_are_one_argument():
    x = tg.Tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(dim=1).tolist() == x.sum(axis=1).tolist() == [3.0, 12.0]
    assert x.sum(1, keepdims=True).shape == x.sum(1, keepdim=True).shape == (2, 1)
    with pytest.raises(TypeError, match="dim or axis .* not both"):
        x.sum(dim=0, axis=1)
    with pytest.raises(TypeError, match="keepdim must be True or False, got None"):
        x.sum(0, keepdims=None)


def test_max_with_a_dim_gives_values_and_indices_and_the_first_maximum_its_gradient():
    x = tg.Tensor([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]], dtype="float64", requires_grad=True)
    out = x.max(dim=1)
    assert out.values.tolist() == [5.0, 7.0] and out.indices.tolist() == [1, 0]
    values, indices = x.min(1, keepdim=True)
    assert values.shape == indices.shape == (2, 1) and indices.tolist() == [[0], [1]]
    out.values.sum().backward()
    assert x.grad.tolist() == [[0, 1, 0], [1, 0, 0]]
    x.grad = None
    x.max().backward()  # the full max: ties share it (torch's too)
    assert x.grad.tolist() == [[0, 0, 0], [0.5, 0, 0.5]]
    assert x.amax(dim=(0, 1)).item() == 7.0 and x.amin(1).tolist() == [1.0, 2.0]


def test_squeeze_transpose_flatten_as_torch():
    x = tg.Tensor(np.arange(24.0).reshape(2, 1, 3, 4))
    assert x.squeeze(0).shape == (2, 1, 3, 4) and x.squeeze(1).shape == (2, 3, 4)
    assert x.squeeze((0, 1)).shape == (2, 3, 4) and x.squeeze().shape == (2, 3, 4)
    assert x.transpose(0, -1).shape == (4, 1, 3, 2) and x.swapdims(2, 3).shape == (2, 1, 4, 3)
    np.testing.assert_array_equal(x.transpose(2, 3).numpy(), x.numpy().swapaxes(2, 3))
    assert x.flatten(1).shape == (2, 12) and x.flatten(1, 2).shape == (2, 3, 4)
    assert x.flatten(-2).shape == (2, 1, 12) and x.mT.shape == (2, 1, 4, 3)
    assert x.T.shape == (4, 3, 1, 2) and x.dim() == 4 and x.numel() == 24
    with pytest.raises(ValueError, match="start_dim 2 comes after end_dim 1"):
        x.flatten(2, 1)


def test_conversions_by_method_and_by_to():
    x = tg.Tensor([1.7, -1.7], requires_grad=True)
    assert x.long().tolist() == [1, -1] and x.int().dtype == np.int32
    assert x.double().dtype == np.float64 and x.float() is x and x.bool().tolist() == [True, True]
    assert x.to("float64").dtype == np.float64 and x.to(np.float64).dtype == np.float64
    assert x.to(tg.Tensor([1], dtype="int8")).dtype == np.int8
    assert x.to("cpu") is x and x.to("numba").backend == "numba"
    assert x.to("numba", dtype="float64").dtype == np.float64
    assert x.to(copy=True) is not x and x.type() == "float32" and x.type("int64").dtype == np.int64
    x.double().sum().backward()  # a float cast is recorded: the gradient comes back
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [1.0, 1.0]


def test_any_and_all_are_tensors_with_a_dim():
    m = tg.Tensor([[True, False], [True, True]])
    assert m.any().item() is True and m.all().item() is False
    assert m.all(1).tolist() == [False, True] and m.any(0, keepdim=True).shape == (1, 2)


# -------------------------------------------------------------- against torch itself
def _torch():
    return pytest.importorskip("torch")


def test_result_types_match_torch_result_type():
    """Every pair of dtypes, each operand with dims or 0-d, for + * /; and each dtype
    beside in-range Python numbers. The widening of out-of-range ints is not compared
    (the documented difference)."""
    torch = _torch()
    ops = {"+": lambda a, b: a + b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}
    mismatches = []
    for (da, sa), (db, sb) in itertools.product(itertools.product(DTYPES, [(2,), ()]), repeat=2):
        for name, op in ops.items():
            want = op(torch.ones(sa, dtype=getattr(torch, da)),
                      torch.ones(sb, dtype=getattr(torch, db))).dtype
            got = op(ones(da, sa), ones(db, sb)).dtype
            if str(want).removeprefix("torch.") != str(got):
                mismatches.append((da, sa, name, db, sb, want, got))
        for number in (2, -1, 2.5, True, np.int64(3), np.float64(0.5)):
            if da == "uint8" and number == -1:
                continue  # out of range for uint8: the documented widening
            for name, op in ops.items():
                want = op(torch.ones(sa, dtype=getattr(torch, da)), number).dtype
                got = op(ones(da, sa), number).dtype
                if str(want).removeprefix("torch.") != str(got):
                    mismatches.append((da, sa, name, repr(number), want, got))
    assert mismatches == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_dtypes_match_torch(dtype):
    torch = _torch()
    t, x = torch.ones((2, 3), dtype=getattr(torch, dtype)), ones(dtype, (2, 3))
    assert str(t.sum().dtype).removeprefix("torch.") == str(x.sum().dtype)
    assert str(t.sum(1).dtype).removeprefix("torch.") == str(x.sum(1).dtype)
    assert str(t.amax(0).dtype).removeprefix("torch.") == str(x.amax(0).dtype)
    if dtype != "bool":  # torch has no argmax of bools (here: int64 indices, as NumPy)
        assert str(t.argmax(1).dtype).removeprefix("torch.") == str(x.argmax(1).dtype)
        assert str((t ** 2).dtype).removeprefix("torch.") == str((x ** 2).dtype)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 1, 4)])
def test_dims_match_torch(shape):
    torch = _torch()
    rng = np.random.default_rng(len(shape))
    a = rng.integers(-3, 4, size=shape).astype(np.float64)  # ties on purpose
    t, x = torch.tensor(a), tg.Tensor(a, dtype="float64")
    ndim = max(len(shape), 1)
    for dim in range(-ndim, ndim):
        for keep in (False, True):
            np.testing.assert_array_equal(x.sum(dim, keep).numpy(), t.sum(dim, keep).numpy())
            np.testing.assert_array_equal(x.amax(dim, keep).numpy(), t.amax(dim, keep).numpy())
            tv, ti = t.max(dim, keep)
            xv, xi = x.max(dim, keep)
            np.testing.assert_array_equal(xv.numpy(), tv.numpy())
            np.testing.assert_array_equal(xi.numpy(), ti.numpy())
            tv, ti = t.min(dim, keep)
            np.testing.assert_array_equal(x.min(dim, keep).indices.numpy(), ti.numpy())
            np.testing.assert_array_equal(x.argmax(dim, keep).numpy(), t.argmax(dim, keep).numpy())
            np.testing.assert_array_equal(x.argmin(dim, keep).numpy(), t.argmin(dim, keep).numpy())
        assert x.squeeze(dim).shape == tuple(t.squeeze(dim).shape)
        assert x.unsqueeze(dim).shape == tuple(t.unsqueeze(dim).shape)
    for keep in (False, True):
        assert x.argmax(keepdim=keep).shape == tuple(t.argmax(keepdim=keep).shape)
    if len(shape) >= 2:
        assert x.transpose(0, -1).shape == tuple(t.transpose(0, -1).shape)
        assert x.flatten(1).shape == tuple(t.flatten(1).shape)


def test_max_gradients_match_torch_at_ties():
    torch = _torch()
    a = np.array([[1.0, 5.0, 5.0], [7.0, 2.0, 7.0]])
    for reduce in (lambda v: v.max(1)[0], lambda v: v.min(0)[0], lambda v: v.max(),
                   lambda v: v.amax(1), lambda v: v.amin((0, 1))):
        t = torch.tensor(a, requires_grad=True)
        x = tg.Tensor(a, dtype="float64", requires_grad=True)
        reduce(t).sum().backward()
        reduce(x).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_masks_combine_with_bitwise_operators():
    x = tg.Tensor([0.5, -1.0, 2.0])
    inside = (x > 0) & (x < 1)
    assert inside.tolist() == [True, False, False] and (~inside).tolist() == [False, True, True]
    assert ((x < 0) | (x > 1)).tolist() == [False, True, True]
    assert (inside ^ True).tolist() == [False, True, True] and (True & inside).dtype == np.bool_
    assert (tg.Tensor(np.array([6, 3], np.int8)) & 3).tolist() == [2, 3]
    assert inside.logical_not().tolist() == (~inside).tolist()
    with pytest.raises(TypeError, match=r"& needs bool or integer tensors, got float32"):
        x & inside
    with pytest.raises(TypeError, match="~ needs a bool or integer tensor"):
        x.__invert__()

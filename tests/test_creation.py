"""``tg.tensor`` and the factories (``tinygrad_rnn.creation``): torch's signatures, dtype
inference and argument forms, each bad argument refused by name before allocating.

Where torch is installed it is the oracle (dtype, shape and values of the same call);
the tests without it check the documented rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg

F32, F64, I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)


def torch_or_skip():
    return pytest.importorskip("torch")


def same_as_torch(ours: tg.Tensor, theirs, exact: bool = True) -> None:
    """Same shape, dtype (by name) and values as a torch tensor."""
    assert ours.shape == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (ours.dtype,
                                                                       theirs.dtype)
    if exact:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ------------------------------------------------------------------ tensor()
# (data, the dtype torch's rules give): the table of tensor()'s docstring
INFERENCE = [
    ([1.0, 2.0], F32), ([1, 2.0], F32), ([True, 1], I64), ([True, 1.0], F32),
    ([np.float64(1.0), 2.0], F64), ([np.float32(1.0), 2.0], F32), ([np.int32(1), 2], I64),
    ([np.float16(1.0), 2], np.dtype(np.float16)), ([], F32), ([[]], F32), (1, I64),
    (2.5, F32), (True, np.dtype(np.bool_)), (np.float64(1.0), F64), (np.int8(3),
                                                                   np.dtype(np.int8)),
    ([np.array([1.0, 2.0])], F64), ([np.array([1, 2], dtype=np.int32), [3, 4]], I64),
    ([np.uint8(1), np.int8(1)], np.dtype(np.int16)), ([[1, 2], (3, 4)], I64),
    (np.arange(3, dtype=np.int32), np.dtype(np.int32)), (np.ones((2, 2)), F64),
    ([2 ** 63 - 1, -2 ** 63], I64), ((1.5, 2), F32), ([[True], [False]], np.dtype(bool)),
]


@pytest.mark.parametrize("data, dtype", INFERENCE, ids=[repr(d)[:30] for d, _ in INFERENCE])
def test_tensor_infers_torchs_dtype(data, dtype):
    """catches: NumPy's inference (float64 for Python floats, int/float mixes widened),
    a NumPy array's dtype lost (``tg.Tensor`` makes float64 float32)."""
    t = tg.tensor(data)
    assert t.dtype == dtype
    expected = np.array(data)
    assert t.shape == expected.shape
    np.testing.assert_array_equal(t.numpy(), expected.astype(dtype))


@pytest.mark.filterwarnings("ignore:Creating a tensor from a list of numpy")
@pytest.mark.parametrize("data, dtype", INFERENCE, ids=[repr(d)[:30] for d, _ in INFERENCE])
def test_tensor_matches_torch(data, dtype):
    """catches: the table above wrong about torch (the oracle decides)."""
    torch = torch_or_skip()
    same_as_torch(tg.tensor(data), torch.tensor(data))


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")
def test_tensor_of_tensors_and_torch_tensors():
    """catches: a list of 0-d tensors becoming an object array or losing float64; a torch
    tensor read as float32, or requiring grad refused."""
    torch = torch_or_skip()
    t = tg.tensor([tg.tensor(1.0, dtype="float64"), 2.0])
    assert t.dtype == F64 and t.tolist() == [1.0, 2.0]
    x = torch.arange(4, dtype=torch.float64).reshape(2, 2)
    same_as_torch(tg.tensor(x), x)
    same_as_torch(tg.tensor(x.requires_grad_()), torch.tensor(x.detach()))
    t = tg.tensor([tg.tensor([1.0], requires_grad=True), [2.0]])  # torch allows it too
    assert t.tolist() == [[1.0], [2.0]] and not t.requires_grad


def test_tensor_copies_its_data(backend):
    """catches: tensor() aliasing the caller's array or tensor (torch.tensor copies)."""
    a = np.arange(3.0)
    t = tg.tensor(a, backend=backend)
    a[0] = 7.0
    assert t.tolist() == [0.0, 1.0, 2.0] and t.dtype == F64 and t.backend == backend
    u = tg.tensor(t)
    u[1] = 5.0
    assert t.tolist() == [0.0, 1.0, 2.0] and u.tolist() == [0.0, 5.0, 2.0]
    assert u.backend == backend and u.is_leaf


def test_tensor_takes_dtype_requires_grad_and_backend(backend):
    """catches: dtype= ignored, requires_grad= not making a leaf that requires grad."""
    t = tg.tensor([1, 2], dtype="float64", requires_grad=True, backend=backend)
    assert t.dtype == F64 and t.requires_grad and t.is_leaf and t.backend == backend
    (t * t).sum().backward()
    assert t.grad.tolist() == [2.0, 4.0]
    assert tg.tensor([1.7, -1.7], dtype="int64").tolist() == [1, -1]  # truncated, as torch
    g = tg.tensor(tg.ones(2, requires_grad=True))
    assert not g.requires_grad and g.is_leaf


@pytest.mark.parametrize("data, dtype, error, match", [
    ("a", None, TypeError, "data must be numbers"),
    ([1, None], None, TypeError, "NoneType"),
    ([1, "a"], None, TypeError, "str"),
    (1 + 2j, None, TypeError, "complex"),
    ([[1, 2], [3]], None, ValueError, "rectangular"),
    (2 ** 63, None, OverflowError, "Python int"),
    ([300], "uint8", OverflowError, "uint8"),
    (np.array([300]), "uint8", OverflowError, "uint8"),
    ([-1], "uint8", OverflowError, "uint8"),
    ([float("nan")], "int64", OverflowError, "NaN"),
    ([float("inf")], "int32", OverflowError, "inf"),
    ([1.0], "complex64", TypeError, "unsupported tensor dtype"),
    (np.array(["a"]), None, TypeError, "unsupported data dtype <U1"),
    ([np.array([1j])], None, TypeError, "unsupported data dtype complex128"),
    ([1], None, TypeError, "requires_grad"),
])
def test_tensor_refuses_bad_data(data, dtype, error, match):
    """catches: NumPy's object arrays, wraps (300 as uint8 is 44), NaN cast to INT_MIN."""
    grad = match == "requires_grad"
    with pytest.raises(error, match=match):
        tg.tensor(data, dtype=dtype, requires_grad=grad)


# ------------------------------------------------------------------ sizes
@pytest.mark.parametrize("factory", ["zeros", "ones", "empty", "rand", "randn"])
@pytest.mark.parametrize("size, shape", [((2, 3), (2, 3)), (((2, 3),), (2, 3)),
                                         (([2, 3],), (2, 3)), (((),), ()), ((0,), (0,)),
                                         ((np.int64(2),), (2,))])
def test_sizes_as_ints_or_one_tuple(factory, size, shape, backend):
    """catches: ``zeros((2, 3))`` and ``zeros(2, 3)`` differing, ``zeros(())`` not 0-d."""
    t = getattr(tg, factory)(*size, backend=backend)
    assert t.shape == shape and t.dtype == F32 and t.backend == backend
    if factory in ("zeros", "ones"):
        assert (t.numpy() == (factory == "ones")).all()


@pytest.mark.parametrize("factory", ["zeros", "ones", "empty", "rand", "randn"])
@pytest.mark.parametrize("size, error, match", [
    ((2.0,), TypeError, "size must be ints"), ((-1,), ValueError, "negative dimension -1"),
    ((2, -3), ValueError, "negative"), ((True,), TypeError, "size must be ints"),
    (((2,), (3,)), TypeError, "size must be ints"), (("2",), TypeError, "size"),
    ((), TypeError, "missing its size"), (((1,) * 65,), ValueError, "at most 64"),
    ((10 ** 6, 10 ** 6), ValueError, "elements of"), ((2 ** 62, 2 ** 62), ValueError, "size"),
])
def test_bad_sizes_are_refused_before_allocating(factory, size, error, match, monkeypatch):
    """catches: a MemoryError (or NumPy's ValueError) from deep inside; the refusal
    coming after the allocation (the allocators here raise if reached)."""
    def never(*args, **kwargs):
        raise AssertionError("allocated before checking")
    for name in ("zeros", "ones", "empty", "full"):
        monkeypatch.setattr(np, name, never)
    for name in ("_uniform", "_normal"):  # the draws of rand and randn
        monkeypatch.setattr(tg.creation, name, never)
    with pytest.raises(error, match=match):
        getattr(tg, factory)(*size)


def test_huge_sizes_of_every_factory_are_refused():
    """catches: a factory without the memory check (arange, linspace, eye, full,
    randint, the _like ones all reach NumPy's allocator with 10**12 elements)."""
    for make in (lambda: tg.arange(10 ** 12), lambda: tg.arange(0.0, 1.0, 1e-12),
                 lambda: tg.linspace(0, 1, 10 ** 12), lambda: tg.eye(10 ** 6),
                 lambda: tg.full((10 ** 12,), 1.0), lambda: tg.randint(5, (10 ** 12,))):
        with pytest.raises(ValueError, match="GiB"):
            make()


def test_requires_grad_of_the_factories(backend):
    """catches: requires_grad= dropped, or allowed for an integer dtype."""
    for t in (tg.zeros(2, requires_grad=True, backend=backend),
              tg.rand(2, requires_grad=True, backend=backend),
              tg.full((2,), 1.0, requires_grad=True, backend=backend),
              tg.arange(3.0, requires_grad=True, backend=backend)):
        assert t.requires_grad and t.is_leaf
    with pytest.raises(TypeError, match="requires_grad=True needs a floating-point"):
        tg.zeros(2, dtype="int64", requires_grad=True)
    with pytest.raises(TypeError, match="requires_grad=True needs a floating-point"):
        tg.randint(3, (2,), requires_grad=True)
    with pytest.raises(TypeError, match="requires_grad must be True or False"):
        tg.ones(2, requires_grad=1)


# ------------------------------------------------------------------ full
@pytest.mark.parametrize("fill, dtype", [(1, I64), (1.5, F32), (True, np.dtype(bool)),
                                         (np.float64(2.0), F32), (np.int32(3), I64),
                                         (tg.tensor(1.0, dtype="float64"), F32)])
def test_full_infers_dtype_from_fill_value(fill, dtype):
    """catches: full's dtype always float32, or NumPy's (np.float64 stays float64)."""
    t = tg.full((2, 1), fill)
    assert t.dtype == dtype and t.shape == (2, 1)
    assert t.tolist() == [[float(fill) if dtype.kind == "f" else fill.item()
                           if isinstance(fill, tg.Tensor) else fill]] * 2
    torch = pytest.importorskip("torch")
    theirs = fill.item() if isinstance(fill, tg.Tensor) else fill
    same_as_torch(t, torch.full((2, 1), theirs))


def test_full_bad_arguments():
    """catches: an int size accepted silently (torch refuses), fill values wrapping."""
    with pytest.raises(TypeError, match="size must be a tuple"):
        tg.full(2, 1.0)
    with pytest.raises(TypeError, match="fill_value must be a real number"):
        tg.full((2,), "a")
    with pytest.raises(TypeError, match="fill_value"):
        tg.full((2,), tg.ones(2))
    with pytest.raises(OverflowError, match="fill_value 300"):
        tg.full((2,), 300, dtype="uint8")
    with pytest.raises(OverflowError, match="fill_value nan"):
        tg.full((2,), float("nan"), dtype="int64")
    with pytest.raises(OverflowError, match="fill_value 1e"):
        tg.full((2,), 1e300)
    assert tg.full((2,), 1.5, dtype="int64").tolist() == [1, 1]  # truncated, as torch
    assert tg.full((1,), float("inf")).tolist() == [math.inf]


# ------------------------------------------------------------------ arange
@pytest.mark.parametrize("args, kwargs", [
    ((5,), {}), ((1, 5), {}), ((0, 1, 0.3), {}), ((0.0, 5), {}), ((5, 0, -1), {}),
    ((0, 0), {}), ((np.int32(3),), {}), ((1, 2.5, 0.5), {}), ((0, 1, 0.1), {}),
    ((0, 1, 0.3), {"dtype": "int64"}), ((0.5, 5.7), {"dtype": "int64"}),
    ((-2.5, 3, 1.5), {"dtype": "int64"}), ((5,), {"dtype": "float64"}),
    ((0, 300, 100), {"dtype": "uint8"}), ((), {"start": 1, "end": 4}), ((), {"end": 4}),
    ((-3, 7, 3), {}), ((10, -10, -7), {}), ((0.0, -1.0, -0.25), {}),
])
def test_arange_matches_torch(args, kwargs):
    """catches: numpy's float64 for ints, an accumulated step, a length off by one."""
    torch = torch_or_skip()
    if kwargs.get("dtype") == "int64" and args == (0, 1, 0.3):
        with pytest.raises(ValueError, match="step must be nonzero"):  # 0.3 -> 0, as torch
            tg.arange(*args, **kwargs)
        return
    ours = tg.arange(*args, **kwargs)
    theirs = torch.arange(*args, **{k: getattr(torch, v) if k == "dtype" else v
                                    for k, v in kwargs.items()})
    exact = ours.dtype.kind != "f"  # floats: within 3 eps M (test_float_arange_matches_torch)
    same_as_torch(ours, theirs, exact=exact)
    if not exact:
        bound = max(abs(float(v)) for v in (*args, *kwargs.values()) if not isinstance(v, str))
        tol = 3 * np.finfo(ours.dtype).eps * bound
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=tol)


@given(st.integers(-50, 50), st.integers(-50, 50), st.integers(-7, 7).filter(bool))
def test_arange_length_and_values_of_ints(start, end, step):
    """catches: the length rule ceil((end - start) / step) wrong for negative steps."""
    if (end - start) * step < 0:
        with pytest.raises(ValueError, match="inconsistent"):
            tg.arange(start, end, step)
        return
    t = tg.arange(start, end, step)
    assert t.dtype == I64 and t.tolist() == list(range(start, end, step))


@given(st.floats(-100, 100), st.floats(-100, 100), st.floats(0.01, 10), st.booleans())
def test_arange_of_floats(start, end, step, down):
    """catches: values accumulated (start + step + step ...) instead of start + i step;
    the length not ceil((end - start) / step)."""
    step = -step if down else step
    if (end - start) * step < 0:
        with pytest.raises(ValueError, match="inconsistent"):
            tg.arange(start, end, step)
        return
    t = tg.arange(start, end, step, dtype="float64")
    n = math.ceil((end - start) / step)
    assert t.shape == (n,)
    # each element one rounding from start + i * step: |error| <= eps64 |value| + tiny
    expected = [start + i * step for i in range(n)]
    np.testing.assert_allclose(t.numpy(), expected, rtol=4e-16, atol=1e-300)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((0, 5, 0), {}, ValueError, "step must be nonzero"),
    ((0, 5, -1), {}, ValueError, "inconsistent with step"),
    ((0, float("nan")), {}, ValueError, "unsupported range"),
    ((0, float("inf")), {}, ValueError, "unsupported range"),
    (("5",), {}, TypeError, "end must be a real number"),
    ((True,), {}, TypeError, "end must be an int or a float"),
    ((5,), {"dtype": "bool"}, TypeError, "bool"),
    ((0, 1e308, 1e-300), {}, ValueError, "too many elements"),
    ((0, 300), {"dtype": "uint8"}, OverflowError, "last value 299"),
    ((5,), {"dtype": "int64", "requires_grad": True}, TypeError, "requires_grad"),
])
def test_arange_bad_arguments(args, kwargs, error, match):
    """catches: an infinite loop or NumPy's error for step 0; uint8 wrapping (torch's
    arange(0, 300, dtype=uint8) ends in 43: refused here, see the docstring)."""
    with pytest.raises(error, match=match):
        tg.arange(*args, **kwargs)


# ------------------------------------------------------------------ linspace
@pytest.mark.parametrize("args, kwargs", [
    ((0, 1, 5), {}), ((0, 10, 5), {}), ((0, 1, 1), {}), ((0, 1, 0), {}), ((1, 0, 3), {}),
    ((np.float64(0), 1, 3), {}), ((0, 10, 4), {"dtype": "int64"}),
    ((-3.5, 7.25, 101), {}), ((-1e6, 1e6, 7), {"dtype": "float64"}), ((2, 2, 4), {}),
])
def test_linspace_matches_torch(args, kwargs):
    """catches: numpy's float64 default, ends not exact, an integer dtype rounding where
    torch truncates. Float32 values: torch computes in float32, here in float64 then
    rounds once; both within 3 eps32 * max(|start|, |end|) of exact (step's two
    roundings, i * step's and the sum's), so they may differ by that much."""
    torch = torch_or_skip()
    ours = tg.linspace(*args, **kwargs)
    theirs = torch.linspace(*args, **{k: getattr(torch, v) for k, v in kwargs.items()})
    same_as_torch(ours, theirs, exact=False)
    scale = max(abs(float(args[0])), abs(float(args[1])))
    tol = 0 if ours.dtype.kind != "f" else 3 * np.finfo(ours.dtype).eps * scale
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=tol)
    if args[2] >= 2 and ours.dtype.kind == "f":  # both ends exact
        assert ours[0].item() == np.float32(args[0]) and ours[-1].item() == np.float32(
            args[1])


def test_linspace_bad_arguments():
    """catches: a float steps truncated, a negative one giving an empty tensor."""
    with pytest.raises(ValueError, match="steps must be non-negative, got -1"):
        tg.linspace(0, 1, -1)
    with pytest.raises(TypeError, match="steps must be an int"):
        tg.linspace(0, 1, 2.0)
    with pytest.raises(TypeError, match="start must be a real number"):
        tg.linspace("0", 1, 2)
    assert np.isnan(tg.linspace(0, float("nan"), 3).numpy()).all()  # as torch


# ------------------------------------------------------------------ eye
@pytest.mark.parametrize("args, kwargs", [((2,), {}), ((2, 3), {}), ((0,), {}),
                                          ((2,), {"dtype": "int64"}), ((2,), {"m": 1})])
def test_eye(args, kwargs, backend):
    """catches: m ignored, a dtype other than float32 by default."""
    t = tg.eye(*args, **kwargs, backend=backend)
    n = args[0]
    m = args[1] if len(args) > 1 else kwargs.get("m", n)
    assert t.shape == (n, m) and t.dtype == np.dtype(kwargs.get("dtype", "float32"))
    np.testing.assert_array_equal(t.numpy(), np.eye(n, m))
    with pytest.raises(ValueError, match="negative"):
        tg.eye(-1)
    with pytest.raises(TypeError, match="n must be an int"):
        tg.eye(2.0)


# ------------------------------------------------------------------ randint
@pytest.mark.parametrize("args, kwargs, low, high, shape", [
    ((10, (3,)), {}, 0, 10, (3,)), ((3, 10, (2, 2)), {}, 3, 10, (2, 2)),
    ((3, 10), {"size": (2,)}, 3, 10, (2,)), ((), {"high": 10, "size": (4,)}, 0, 10, (4,)),
    ((), {"low": -2, "high": 2, "size": (5,)}, -2, 2, (5,)),
    ((10,), {"size": [3]}, 0, 10, (3,)),
])
def test_randint_argument_forms(args, kwargs, low, high, shape):
    """catches: randint(high, size) read as randint(low=high, high=size)."""
    t = tg.randint(*args, **kwargs)
    assert t.shape == shape and t.dtype == I64
    assert ((low <= t.numpy()) & (t.numpy() < high)).all()


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((5, 5, (2,)), {}, ValueError, "low must be less than high"),
    ((10, 3), {}, TypeError, "size must be a tuple"),
    ((10,), {}, TypeError, "missing its size"),
    ((2.5, (3,)), {}, TypeError, "high must be an int"),
    ((0, 300, (2,)), {"dtype": "uint8"}, OverflowError, "high - 1 = 299"),
    ((-5, 0, (2,)), {"dtype": "uint8"}, OverflowError, "low = -5"),
    ((0, 3, (2,)), {"dtype": "bool"}, OverflowError, "bool"),
    ((0, 3, (2,)), {"generator": 3}, TypeError, "generator must be a tg.Generator"),
])
def test_randint_bad_arguments(args, kwargs, error, match):
    """catches: an empty range drawing anyway, bounds wrapping in a small dtype."""
    with pytest.raises(error, match=match):
        tg.randint(*args, **kwargs)


def test_randint_dtypes():
    """catches: dtype= ignored, or floats refused (torch allows them)."""
    assert tg.randint(0, 2, (50,), dtype="bool").dtype == np.dtype(bool)
    f = tg.randint(0, 10, (50,), dtype="float32", requires_grad=True)
    assert f.dtype == F32 and f.requires_grad and (f.numpy() == np.floor(f.numpy())).all()
    big = tg.randint(2 ** 63, 2 ** 64, (50,), dtype="uint64")
    assert (big.numpy() >= 2 ** 63).all()


# ------------------------------------------------------------------ random dtypes
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_rand_and_randn_dtypes(dtype, backend):
    """catches: rand's float16 rounding up to 1.0, dtype= ignored."""
    u = tg.rand(20000, dtype=dtype, backend=backend).numpy()
    assert u.dtype == dtype and u.min() >= 0 and u.max() < 1
    assert tg.randn(3, dtype=dtype).dtype == dtype


def test_rand_refuses_integer_dtypes():
    """catches: integer "uniform" draws of all zeros (torch refuses too)."""
    for make in (tg.rand, tg.randn):
        with pytest.raises(TypeError, match="floating-point dtype, got int64"):
            make(2, dtype="int64")


def test_the_same_seed_gives_the_same_values_on_every_backend(other_backend):
    """catches: a backend drawing with its own generator (the parity tests need one
    stream, drawn on the host)."""
    values = {}
    for be in ("numpy", other_backend):
        tg.manual_seed(3)
        values[be] = [tg.rand(4, backend=be).numpy(), tg.randn(4, backend=be).numpy(),
                      tg.randint(9, (4,), backend=be).numpy()]
    for a, b in zip(values["numpy"], values[other_backend]):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ *_like
def test_likes_take_shape_dtype_and_backend(backend):
    """catches: a *_like with the default dtype, or on the current backend."""
    x = tg.ones(2, 3, dtype="int32", backend=backend)
    for t, value in ((tg.zeros_like(x), 0), (tg.ones_like(x), 1), (tg.full_like(x, 2.7), 2),
                     (tg.empty_like(x), None), (tg.randint_like(x, 5), None),
                     (tg.randint_like(x, 2, 5), None)):
        assert t.shape == (2, 3) and t.dtype == np.int32 and t.backend == backend
        if value is not None:
            assert (t.numpy() == value).all()
    r = tg.randint_like(x, 2, 5).numpy()
    assert ((2 <= r) & (r < 5)).all()
    y = tg.zeros_like(x, dtype="float64", requires_grad=True)
    assert y.dtype == F64 and y.requires_grad
    f = tg.ones(4, dtype="float64", backend=backend)
    for t in (tg.rand_like(f), tg.randn_like(f, generator=tg.Generator())):
        assert t.shape == (4,) and t.dtype == F64 and t.backend == backend
    assert not tg.zeros_like(tg.ones(2, requires_grad=True)).requires_grad  # as torch


def test_likes_bad_arguments():
    """catches: an array accepted as input (torch wants a tensor), int rand_like."""
    with pytest.raises(TypeError, match="input must be a Tensor"):
        tg.zeros_like(np.ones(2))
    with pytest.raises(TypeError, match="floating-point dtype"):
        tg.rand_like(tg.ones(2, dtype="int32"))
    with pytest.raises(OverflowError, match="fill_value"):
        tg.full_like(tg.ones(2, dtype="int32"), 2 ** 40)


def test_likes_match_torch():
    """catches: a dtype rule of the _like functions other than torch's."""
    torch = torch_or_skip()
    x, tx = tg.ones(2, 3, dtype="int32"), torch.ones(2, 3, dtype=torch.int32)
    same_as_torch(tg.full_like(x, 2.7), torch.full_like(tx, 2.7))
    same_as_torch(tg.zeros_like(x, dtype="float64"), torch.zeros_like(tx,
                                                                      dtype=torch.float64))
    same_as_torch(tg.ones_like(x), torch.ones_like(tx))


# ------------------------------------------------------------------ torch, at random
SCALARS = st.one_of(st.booleans(), st.integers(-2 ** 40, 2 ** 40),
                    st.floats(-1e30, 1e30, allow_nan=False))


@given(st.lists(st.lists(SCALARS, min_size=2, max_size=2), max_size=4))
def test_tensor_of_mixed_python_numbers_matches_torch(rows):
    """catches: a promotion rule of mixed bools, ints and floats other than torch's."""
    torch = torch_or_skip()
    same_as_torch(tg.tensor(rows), torch.tensor(rows))


@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3),
       st.floats(1e-2, 1e2).map(lambda s: round(s, 3)).filter(bool), st.booleans())
def test_float_arange_matches_torch(start, end, step, down):
    """catches: a length or value rule of float arange other than torch's. The values
    here are start + i step rounded once; torch's vectorised kernel adds i * float32(step)
    to a rounded base in float32 within blocks of 8 or 16, so they may differ by its
    roundings: eps32/2 each of the base, the step, the product and the sum, with
    |i step| <= |end - start| <= 2M, M = max(|start|, |end|): within 3 eps32 M."""
    torch = torch_or_skip()
    step = -step if down else step
    if (end - start) * step < 0:
        return
    ours, theirs = tg.arange(start, end, step), torch.arange(start, end, step)
    same_as_torch(ours, theirs, exact=False)
    tol = 3 * np.finfo(np.float32).eps * max(abs(start), abs(end))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=tol)


# ------------------------------------------------------------------ device= and size=
def test_device_and_size_keywords_as_torch(backend):
    """catches: D2L's ``torch.randn(size=shape, device=device)`` refused; device= and
    backend= both given taken silently."""
    tg.set_backend(backend)
    for make in (tg.zeros, tg.ones, tg.empty, tg.rand, tg.randn):
        t = make(size=(2, 3), device="cpu")
        assert t.shape == (2, 3) and t.backend == backend  # cpu: the CPU backend in use
        with pytest.raises(TypeError, match="size twice"):
            make(2, size=(2, 3))
    others = [tg.tensor([1.0], device=tg.device("cpu")), tg.full((2,), 1.0, device="cpu"),
              tg.arange(3, device="cpu"), tg.linspace(0, 1, 3, device="cpu"),
              tg.eye(2, device="cpu"), tg.randint(3, (2,), device="cpu"),
              tg.zeros_like(tg.ones(2), device="cpu"), tg.rand_like(tg.ones(2), device="cpu")]
    assert {t.backend for t in others} == {backend}
    with pytest.raises(TypeError, match="backend= or device="):
        tg.zeros(2, backend="numpy", device="cpu")
    with pytest.raises(ValueError, match="unknown device type 'tpu'"):
        tg.ones(2, device="tpu")


def test_a_like_on_the_cpu_keeps_its_cpu_backend():
    """catches: device="cpu" moving a numba tensor's like onto numpy."""
    x = tg.ones(2, backend="numba")
    assert tg.zeros_like(x, device="cpu").backend == "numba"
    assert tg.zeros_like(x, backend="numpy").backend == "numpy"


def test_from_numpy_shares_memory_and_keeps_the_dtype():
    a = np.arange(3.0)
    t = tg.from_numpy(a)
    assert t.dtype == np.float64 and t.backend in ("numpy", "numba")
    a[0] = 7.0
    assert t[0].item() == 7.0
    with pytest.raises(TypeError, match="from_numpy expects a numpy.ndarray, got list"):
        tg.from_numpy([1.0])
    with pytest.raises(TypeError, match="unsupported dtype complex128"):
        tg.from_numpy(np.zeros(2, complex))

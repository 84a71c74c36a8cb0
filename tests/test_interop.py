"""A tensor meeting NumPy, DLPack and Python's builtins (``_tensor_interop.py``,
``tg.from_dlpack``): values, dtypes and shapes through ``np.asarray``, shared memory
through DLPack both ways, and torch's rules for ``format``, ``float``, ``int``,
``bool``, ``index``, ``item`` and for a tensor that requires grad."""

from __future__ import annotations

import math
import operator
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tg

DTYPES = ["float32", "float64", "int32", "int64", "uint8", "bool"]


# ---------------------------------------------------------------- NumPy
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0, 2)])
def test_asarray_gives_the_values_dtype_and_shape(dtype, shape, backend):
    """catches: an object array of 0-d tensors (NumPy's reading of __len__/__iter__),
    a dtype changed on the way."""
    if backend == "cupy":
        pytest.skip("a CuPy tensor refuses implicit conversion (tested below)")
    values = (np.arange(math.prod(shape)) % 3).reshape(shape).astype(dtype)
    t = tg.tensor(values, backend=backend)
    a = np.asarray(t)
    assert type(a) is np.ndarray and a.dtype == dtype and a.shape == shape
    np.testing.assert_array_equal(a, values)
    assert np.array(t).dtype == dtype and np.asarray([t, t]).shape == (2, *shape)


def test_asarray_shares_memory_and_follows_numpys_copy_protocol():
    """catches: np.asarray copying (torch's shares), np.array not copying, copy=False
    silently copying for a cast (NumPy 2's protocol says: raise)."""
    t = tg.tensor([1.0, 2.0, 3.0])
    a = np.asarray(t)
    a[0] = 9.0
    assert t.tolist() == [9.0, 2.0, 3.0]
    b = np.array(t)  # copy=True
    b[1] = 7.0
    assert t.tolist() == [9.0, 2.0, 3.0]
    assert np.shares_memory(np.asarray(t, copy=False), a)
    c = np.asarray(t, dtype=np.float64)
    assert c.dtype == np.float64 and c.tolist() == [9.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(t, dtype=np.float64, copy=False)


def test_asarray_of_a_tensor_that_requires_grad_is_refused_as_in_torch():
    """catches: the values leaving the graph silently (torch raises RuntimeError)."""
    t = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad.*detach"):
        np.asarray(t)
    with pytest.raises(RuntimeError, match="requires grad"):
        np.sin(t)
    np.testing.assert_array_equal(np.asarray(t.detach()), [1.0, 1.0])
    assert t.numpy().tolist() == [1.0, 1.0]  # numpy() is a copy here: allowed
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        np.asarray(torch.ones(2, requires_grad=True))


def test_ufuncs_compute_on_the_values_and_return_tensors(backend):
    """catches: np.sin(t) an object array (sin of each 0-d tensor) or an error; the
    result not a tensor (torch's __array_wrap__ makes one)."""
    if backend == "cupy":
        pytest.skip("NumPy ufuncs need host memory")
    x = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    t = tg.tensor(x, backend=backend)
    for out, expected in ((np.sin(t), np.sin(x)), (np.add(t, 1), x + 1),
                          (np.maximum(x, t), x), (np.greater(t, 0), x > 0)):
        assert isinstance(out, tg.Tensor) and out.backend == backend
        assert out.dtype == expected.dtype and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), expected)
    assert isinstance(np.float64(2.0) * t, tg.Tensor)  # operators still defer to ours
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():  # torch's __array_wrap__ is NumPy 1's: NumPy 2 warns
        warnings.simplefilter("ignore", DeprecationWarning)
        assert isinstance(np.sin(torch.ones(2)), torch.Tensor)


class _DeviceArray:
    """Stands for a CuPy array: an array that is not in host memory."""

    dtype, shape, ndim, size = np.dtype(np.float32), (2,), 1, 2


def test_a_device_tensor_refuses_implicit_conversion_as_cupy_does():
    """catches: a device array copied to the host silently (CuPy raises TypeError)."""
    t = tg.Tensor._wrap(_DeviceArray(), tg.backends.get("numpy"))
    with pytest.raises(TypeError, match=r"Implicit conversion to a NumPy array is not "
                                         r"allowed. Please use `\.numpy\(\)`"):
        np.asarray(t)


@pytest.mark.cupy
def test_a_cupy_tensor_refuses_implicit_conversion():
    """catches: the refusal missing on the real GPU backend (CuPy's own message names
    ``.get()``; ours ``.numpy()``)."""
    cupy = pytest.importorskip("cupy")
    try:
        t = tg.ones(2, backend="cupy")
    except tg.backends.BackendUnavailable as e:
        pytest.skip(str(e))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(t)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(cupy.ones(2))
    shared = cupy.from_dlpack(t)
    shared[0] = 5
    assert t.tolist() == [5.0, 1.0]
    back = tg.from_dlpack(cupy.arange(3.0))
    assert back.backend == "cupy" and back.tolist() == [0.0, 1.0, 2.0]


# ---------------------------------------------------------------- DLPack
# NumPy before 2.3 marks every array it imports by DLPack read-only (from 2.3 on it reads
# the exporter's flag): there the write that shows sharing goes through the other side.
WRITABLE_DLPACK_IMPORTS = np.lib.NumpyVersion(np.__version__) >= "2.3.0"


def test_dlpack_with_numpy_both_ways_shares_memory():
    """catches: a copy on either way (a write through one must show in the other)."""
    t = tg.tensor([1.0, 2.0, 3.0])
    a = np.from_dlpack(t)
    assert a.flags.writeable == WRITABLE_DLPACK_IMPORTS
    if WRITABLE_DLPACK_IMPORTS:
        a[0] = 5.0
    else:
        with tg.no_grad():
            t[0] = 5.0
    assert t.tolist() == [5.0, 2.0, 3.0] and a.tolist() == [5.0, 2.0, 3.0]
    assert t.__dlpack_device__() == (1, 0)
    n = np.arange(4, dtype=np.int32)
    u = tg.from_dlpack(n)
    assert u.dtype == np.int32 and u.backend == "numpy" and u.is_leaf
    n[1] = 7
    if WRITABLE_DLPACK_IMPORTS:
        u[2] = 9
    else:
        n[2] = 9
    assert u.tolist() == [0, 7, 9, 3] and n.tolist() == [0, 7, 9, 3]


def test_dlpack_with_torch_both_ways_shares_memory():
    """catches: a copy, a dtype lost, torch's call of __dlpack__ (with max_version)
    refused by our signature."""
    torch = pytest.importorskip("torch")
    t = tg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64")
    shared = torch.from_dlpack(t)
    assert shared.dtype == torch.float64 and tuple(shared.shape) == (2, 2)
    shared[0, 0] = 8.0
    assert t.tolist() == [[8.0, 2.0], [3.0, 4.0]]
    x = torch.arange(6, dtype=torch.int64).reshape(2, 3)
    u = tg.from_dlpack(x)
    assert u.dtype == np.int64 and u.shape == (2, 3)
    x[0, 0] = 42
    u[1, 2] = -1
    assert u.tolist() == x.tolist() == [[42, 1, 2], [3, 4, -1]]
    assert tg.from_dlpack(x.T).tolist() == x.T.tolist()  # strides kept


def test_dlpack_of_a_tensor_that_requires_grad_is_refused_as_in_torch():
    """catches: an export escaping the graph (torch raises BufferError)."""
    t = tg.ones(2, requires_grad=True)
    with pytest.raises(BufferError, match="requires grad.*detach"):
        t.__dlpack__()
    with pytest.raises(BufferError):
        np.from_dlpack(t)
    assert np.from_dlpack(t.detach()).tolist() == [1.0, 1.0]
    torch = pytest.importorskip("torch")
    with pytest.raises(BufferError):
        torch.ones(2, requires_grad=True).__dlpack__()


def test_from_dlpack_lands_on_the_current_cpu_backend():
    """catches: CPU memory put on numpy while numba (NumPy arrays too) is current."""
    tg.set_backend("numba")
    u = tg.from_dlpack(np.ones(2))
    assert u.backend == "numba"
    with pytest.raises(TypeError, match="__dlpack__"):
        tg.from_dlpack([1.0, 2.0])
    with pytest.raises(TypeError, match="unsupported dtype complex128"):
        tg.from_dlpack(np.ones(2, dtype=complex))


# ---------------------------------------------------------------- builtins
def test_format_as_torch():
    """catches: f"{loss:.3f}" raising, or a 1-d tensor formatted as a number where torch
    raises (torch formats only 0-d tensors as numbers)."""
    loss = tg.tensor(1.23456, requires_grad=True)
    assert f"{loss:.3f}" == "1.235" and f"{tg.tensor(7):>4}" == "   7"
    t = tg.tensor([1.5])
    assert f"{t}" == str(t) and format(tg.tensor(2.5)) == "2.5"
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{t:.3f}"
    torch = pytest.importorskip("torch")
    assert f"{torch.tensor(1.23456):.3f}" == f"{tg.tensor(1.23456):.3f}"
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{torch.tensor([1.5]):.3f}"


CONVERSIONS = [
    ("float", [[2.5]], "float32"), ("float", [1.0, 2.0], "float32"), ("float", [], "float32"),
    ("int", 2.7, "float32"), ("int", -2.7, "float32"), ("int", [3], "int64"),
    ("int", [1, 2], "int64"), ("int", float("nan"), "float32"),
    ("int", float("inf"), "float32"), ("bool", [0.0], "float32"), ("bool", [1, 2], "int64"),
    ("bool", [], "float32"), ("item", [[5]], "int32"), ("item", [1.0, 2.0], "float32"),
    ("index", [3], "int64"), ("index", True, "bool"), ("index", 3.0, "float32"),
    ("index", [3, 4], "int64"), ("complex", 2.0, "float32"), ("tolist", [[1, 2]], "int64"),
    ("tolist", 2.5, "float32"), ("tolist", [True], "bool"),
]


def _convert(how, t):
    return {"float": float, "int": int, "bool": bool, "item": lambda x: x.item(),
            "index": operator.index, "complex": complex,
            "tolist": lambda x: x.tolist()}[how](t)


def _outcome(how, t):
    try:
        return _convert(how, t)
    except Exception as e:  # noqa: BLE001 (the type of the error is what is compared)
        return type(e)


@pytest.mark.parametrize("how, data, dtype", CONVERSIONS,
                         ids=[f"{h}-{d}-{t}" for h, d, t in CONVERSIONS])
def test_conversions_as_torch(how, data, dtype):
    """catches: a rule of torch's broken: float() of a 2-element tensor (ValueError),
    int() not truncating, index() of a float tensor (TypeError), bool() of many
    (RuntimeError in torch: ours is also a RuntimeError)."""
    torch = pytest.importorskip("torch")
    ours = _outcome(how, tg.tensor(data, dtype=dtype))
    theirs = _outcome(how, torch.tensor(data, dtype=getattr(torch, dtype)))
    if isinstance(theirs, type):
        assert isinstance(ours, type) and issubclass(ours, theirs), (ours, theirs)
    else:
        assert ours == theirs and type(ours) is type(theirs)


def test_conversion_errors_name_the_problem():
    """catches: NumPy's words, or torch's RuntimeError alone (the project's and NumPy's
    is ValueError: both catch)."""
    with pytest.raises(ValueError, match=r"only one-element tensors.*\(2,\)"):
        float(tg.ones(2))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(tg.ones(2))
    with pytest.raises(ValueError, match="no values"):
        bool(tg.ones(0))
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        operator.index(tg.ones(1))
    assert [10, 20, 30][tg.tensor(1)] == 20 and list(range(tg.tensor([3]))) == [0, 1, 2]
    assert isinstance(tg.tensor([[7]], dtype="uint8").item(), int)
    assert float(tg.ones(1, requires_grad=True)) == 1.0  # as torch (it only warns)


def test_conversions_moved_out_of_the_core():
    """catches: a second definition left in _tensor.py shadowing the mixin's."""
    from tinygrad_rnn._tensor_interop import InteropMixin
    for name in ("numpy", "item", "tolist", "__float__", "__int__", "__bool__",
                 "__index__", "__format__", "__array__", "__dlpack__"):
        assert name in vars(InteropMixin) and name not in vars(tg.Tensor), name

"""``Tensor``: an array on some backend, plus what autograd needs to differentiate it.

The module is ``_tensor`` (as PyTorch's ``torch/_tensor.py``): ``tg.Tensor`` is the
class, and the name ``tensor`` is left free for a factory function. A Tensor is the
:class:`autograd.Node` that adds the user's API; its methods check their arguments,
take their dtypes from :mod:`dtypes` and call :mod:`functions` or :mod:`ops`, which
never import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import autograd, checks, dtypes, functions, indexing, ops, random
from . import backends as _backends
from . import devices as _device
from ._tensor_interop import InteropMixin
from ._tensor_ops import OpsMixin
from .autograd import Node
from .backends import BackendMismatchError

Number = int | float

#: The operator ``x op= y`` falls back to while a graph is recorded.
_OUT_OF_PLACE = {"add": "__add__", "subtract": "__sub__", "multiply": "__mul__",
                 "true_divide": "__truediv__"}


def as_tensor(data: Any, dtype: Any = None, backend: str | _backends.Backend | None = None
              ) -> Tensor:
    """``data`` as a tensor, sharing its memory where it can, as ``torch.as_tensor``.

    An array already on ``backend`` (default: the current one; for a tensor, its own)
    whose dtype is ``dtype`` (default: its own, float64 included) is used as it is: a
    change to one shows in the other. Anything else is converted, as ``Tensor(data,
    dtype=dtype, backend=backend)`` converts it, except that an array keeps its dtype.
    """
    be = None if backend is None else _backends.get(backend)
    if isinstance(data, Tensor):
        if (be is None or be is data._backend) and (
                dtype is None or dtypes.checked(dtype) == data.dtype):
            return data
        return Tensor(data, dtype=data.dtype if dtype is None else dtype, backend=be)
    be = be or _backends.get_backend()
    if be.is_array(data) and data.dtype.kind in "fiub":
        if dtype is None or dtypes.checked(dtype) == data.dtype:
            return Tensor._wrap(data, be)
    if dtype is None and getattr(getattr(data, "dtype", None), "kind", "") == "f":
        dtype = data.dtype  # Tensor() would make float data float32
    return Tensor(data, dtype=dtype, backend=be)


class MinMax(NamedTuple):
    """What ``x.max(dim)`` and ``x.min(dim)`` return, as torch's ``torch.return_types``."""

    values: Tensor
    indices: Tensor


_NOT_GIVEN: Any = object()  # NumPy's keepdims= not passed (None is an error, as in torch)


def _is_number(x: Any) -> bool:
    """Whether ``x`` is a Python or NumPy number (weak beside a tensor: dtypes.of_scalar)."""
    return isinstance(x, (bool, int, float, np.number, np.bool_))


class Tensor(Node, InteropMixin, OpsMixin):
    """An n-dimensional array with reverse-mode autograd.

    ``Tensor(data, requires_grad=False, dtype=None, backend=None)``: float data
    becomes float32 unless ``dtype`` says otherwise (e.g. ``"float64"``); integer
    data keeps its dtype and cannot require grad. ``backend`` is a name such as
    ``"numpy"`` or ``"numba"``; by default the current one (``tg.set_backend``).
    """

    # _version counts in-place changes (``x += y``), shared by views of one array, so
    # backward() can refuse a graph whose saved arrays changed since (autograd.apply)
    __slots__ = ()  # the fields are autograd.Node's
    __array_priority__ = 1000  # numpy scalars on the left defer to our __radd__ etc.

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 backend: str | _backends.Backend | None = None) -> None:
        if isinstance(data, Tensor):
            source = data._backend
            data = data.data
        else:
            source = None
        given = data  # the caller's array (or the other tensor's): never aliased below
        be = _backends.get(backend) if backend is not None else (
            source or _backends.get_backend())
        if source is not None and source is not be:
            data = source.to_numpy(data)
        if source is None and not be.is_array(data) and not isinstance(data, np.ndarray):
            try:
                data = np.asarray(data)  # nested lists: let NumPy parse, then move once
            except TypeError as e:  # e.g. a CuPy array given to the numpy backend
                raise TypeError(
                    f"cannot put {type(data).__module__}.{type(data).__name__} data on backend "
                    f"{be.name!r} ({e}); pass backend= naming the backend the data lives on"
                ) from None
            except ValueError as e:  # ragged nested lists
                raise ValueError(
                    f"cannot make a tensor from this {type(data).__name__}: {e}") from None
        self.data = be.asarray(data, dtype=dtypes.of_data(data, dtype))
        if self.data is given or (isinstance(given, np.ndarray) and isinstance(
                self.data, np.ndarray) and np.may_share_memory(self.data, given)):
            # own the data: in-place updates (optimizers) must not write to the caller's
            # array, nor to the file behind a memmap (asarray of a subclass is a view)
            self.data = self.data.copy()
        self._backend = be
        self.grad: Tensor | None = None
        self._ctx: autograd.Function | None = None
        self._version = autograd.VersionCounter()
        self._meta = None  # hooks, retain_grad: autograd.AutogradMeta once asked for
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array: Any, backend: Any, requires_grad: bool = False) -> Tensor:
        """A tensor around an array already on ``backend`` (no checks, no copy)."""
        t = cls.__new__(cls)
        t._data, t._backend, t.requires_grad = array, backend, requires_grad
        t.grad, t._ctx, t._version, t._meta = None, None, autograd.VersionCounter(), None
        return t

    def _new(self, array: Any, requires_grad: bool = False) -> Tensor:
        """A Tensor (never a subclass such as Parameter) around ``array``, on this
        tensor's backend: how ops and functions make their results."""
        return Tensor._wrap(array, self._backend, requires_grad)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self; only float tensors can require
        grad, and only a leaf's flag can change (a result's follows from its inputs)."""
        if self._ctx is not None and not flag:
            raise RuntimeError("requires_grad_(False) on a tensor computed from others would "
                               "cut the graph silently; use .detach() for a copy without one")
        if flag and self.dtype.kind != "f":
            raise TypeError(
                f"requires_grad=True needs a floating-point tensor, but this one is {self.dtype}; "
                "integer tensors (indices, labels) have no gradient"
            )
        self.requires_grad = flag
        return self

    # ---------------------------------------------------------------- metadata
    @property
    def data(self) -> Any:
        """The backend's raw array (NumPy or CuPy): no autograd, no checks."""
        return self._data

    @data.setter
    def data(self, array: Any) -> None:
        if isinstance(array, Tensor):  # e.g. ``p.data -= lr * p.grad``: the right side is a Tensor
            raise TypeError(
                ".data holds the backend's raw array, not a Tensor; to update a parameter in "
                "place write `with tg.no_grad(): p -= lr * p.grad` (or assign p.grad.data)")
        self._data = array

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints."""
        return tuple(self._data.shape)

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self._data.ndim

    def size(self, dim: int | None = None) -> Any:
        """torch's: the shape (a tuple) for no ``dim``, else that dim's length; the number
        of elements is :meth:`numel`."""
        if dim is None:
            return self.shape
        if self.ndim == 0:
            raise checks.DimError(f"size({dim}): a 0-d tensor has no dims")
        return self.shape[checks.normalize_dim(dim, self.ndim)]

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the data."""
        return np.dtype(self._data.dtype)

    @property
    def backend(self) -> str:
        """The name of the backend holding the data."""
        return self._backend.name

    @property
    def device(self) -> _device.device:
        """``device("cuda")`` on the cupy backend, else ``device("cpu")`` (the backend
        itself is :attr:`backend`)."""
        return _device.device("cuda" if self._backend.name == "cupy" else "cpu")

    @property
    def is_leaf(self) -> bool:
        """Whether no recorded op made this tensor, PyTorch's rule: a tensor that does not
        require grad is a leaf (made directly, detached, or computed under ``no_grad`` or
        from inputs that need no gradient); a result of ops on inputs that require grad
        is not. Only leaves get ``.grad`` from backward() (and results that
        :meth:`retain_grad`)."""
        return self._ctx is None

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}, backend={self.backend!r}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # ------------------------------------------------------------- conversion
    def __iter__(self) -> Any:
        """The sub-tensors along the first axis (as PyTorch): ``for X_t in X``."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def detach(self) -> Tensor:
        """The same data, cut from the graph: no gradient flows back through it.

        The array is shared, not copied (as in PyTorch), and so is its count of in-place
        changes: ``h.detach().zero_()`` changes ``h``, which a graph may still need.
        """
        t = Tensor._wrap(self.data, self._backend)
        autograd.share_version(self, t)
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from its graph in place (D2L: ``state.detach_()``).

        Graphs hold tensors, not PyTorch's graph nodes, so this also cuts it out of
        graphs already built that use it: call it after their backward(), as D2L does
        when the next minibatch starts.
        """
        self._ctx = None
        self.requires_grad = False
        return self

    def to(self, *args: Any, dtype: Any = None, backend: Any = None, copy: bool = False
           ) -> Tensor:
        """This tensor on another backend and/or in another dtype, as torch's ``to``:
        ``x.to("numba")``, ``x.to(np.float64)``, ``x.to(other)`` (other's backend and dtype),
        ``x.to("cuda")`` or ``x.to(tg.device("cuda"))`` (the cupy backend), ``x.to("cpu")``
        (this backend if it is on the CPU, else numpy). Itself when nothing changes and
        ``copy`` is False; a move to another backend is a copy and a leaf, a cast records
        the graph (:meth:`astype`)."""
        for arg in args:
            if isinstance(arg, Tensor):
                backend, dtype = backend or arg._backend, dtype or arg.dtype
            elif isinstance(arg, (_backends.Backend, _device.device)) or (isinstance(arg, str) and (
                    arg in _backends.names() or arg.partition(":")[0] in ("cpu", "cuda"))):
                backend = backend or arg
            else:
                dtype = dtype or arg
        out = self
        if backend is not None:
            target = _device.as_backend(backend, self._backend)
            if target is not self._backend:
                out = Tensor._wrap(target.asarray(self.numpy()), target)
                out.requires_grad = self.requires_grad
        if dtype is not None and dtypes.checked(dtype) != out.dtype:
            out = out.astype(dtype)
        return Tensor(out, dtype=out.dtype) if copy and out is self else out

    def astype(self, dtype: Any) -> Tensor:
        """A copy cast to ``dtype``; a cast to an int or bool dtype ends the graph."""
        dtype = dtypes.checked(dtype)
        if dtype.kind != "f":  # integers carry no gradient: the cast ends the graph
            return Tensor._wrap(self.data.astype(dtype), self._backend)
        return ops.Cast.apply(self, dtype=dtype)

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient: Tensor | Any | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Tensor | Sequence[Tensor] | None = None
                 ) -> None:
        """Accumulate the gradient of this tensor into ``.grad`` of every leaf it depends on
        (and of the results that called :meth:`retain_grad`).

        ``gradient`` (same shape as this tensor) is required unless this is a scalar.
        ``inputs`` (a tensor or a sequence): accumulate into those tensors' ``.grad``
        only, leaves or not, as PyTorch's. The graph is always kept (it goes with its
        tensors), so PyTorch's ``retain_graph`` is accepted and changes nothing;
        ``create_graph=True`` raises NotImplementedError (no higher-order gradients:
        see :func:`tinygrad_rnn.autograd.grad`).
        """
        if retain_graph is not None:
            checks.as_flag(retain_graph, "backward(): retain_graph")
        if checks.as_flag(create_graph, "backward(): create_graph"):
            raise NotImplementedError(
                "backward(create_graph=True): higher-order gradients are not supported; each "
                "op's backward computes arrays outside the graph, so .grad has no grad_fn")
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else inputs
            if not isinstance(inputs, (list, tuple)) or not inputs or not all(
                    isinstance(t, Tensor) for t in inputs):
                raise TypeError("backward(): inputs must be a Tensor or a non-empty sequence "
                                f"of Tensors, got {inputs!r}")
            for t in inputs:
                if not t.requires_grad:
                    raise RuntimeError("backward(): One of the differentiated Tensors in "
                                       "inputs does not require grad")
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: none of its "
                "inputs had requires_grad=True, or it was made under no_grad()"
            )
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(
                    f"backward() on a non-scalar tensor of shape {self.shape} needs a gradient "
                    "argument of that shape (e.g. loss.sum().backward() for a scalar)"
                )
            g = self._backend.xp.ones(self.data.shape, dtype=self.data.dtype)
        else:
            if isinstance(gradient, Tensor):
                self._check_same_backend(gradient, "backward")
                gradient = gradient.data
            dtype = gradient.dtype if self._backend.is_array(gradient) else np.asarray(
                gradient).dtype
            if dtype.kind not in "biuf":  # None would pass as NaN, complex lose a part
                raise TypeError(
                    f"backward(): the gradient must be real numbers, got {gradient!r}")
            g = self._backend.asarray(gradient, dtype=self.data.dtype)
            if tuple(g.shape) != self.shape:
                raise ValueError(
                    f"backward(): gradient of shape {tuple(g.shape)} does not match the "
                    f"tensor's shape {self.shape}"
                )
        autograd.run_backward([self], [g], inputs)

    def zero_grad(self) -> None:
        """Drop the gradient: ``.grad = None``."""
        self.grad = None

    @property
    def grad_fn(self) -> autograd.Function | None:
        """The op that computed this tensor while recording (its graph node), None for a
        leaf. As PyTorch's: ``grad_fn.name()`` is e.g. ``"MulBackward0"`` and
        ``grad_fn.next_functions`` leads to the inputs' nodes (see
        :class:`~tinygrad_rnn.autograd.Function`). Differs from PyTorch: the node is this
        project's op, so ``type(t.grad_fn).__name__`` is ``"Mul"``; its ``inputs`` are
        the tensors it was applied to."""
        return self._ctx

    @property
    def retains_grad(self) -> bool:
        """Whether :meth:`retain_grad` was called on this non-leaf."""
        return self._meta is not None and self._meta.retains_grad

    def retain_grad(self) -> None:
        """Let backward() fill this non-leaf's ``.grad`` too (accumulating, after its
        hooks ran, as PyTorch's); on a leaf nothing changes (leaves get it anyway)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._ctx is not None:
            autograd.meta_of(self).retains_grad = True

    def register_hook(self, hook: Any) -> autograd.RemovableHandle:
        """Call ``hook(grad)`` each time a gradient for this tensor has been computed
        (summed over its uses), as PyTorch's: ``grad`` is a tensor; a tensor returned
        (same shape and dtype) replaces it, for the backward pass beyond and for
        ``.grad``; None keeps it. Hooks run in the order registered; on a leaf, before
        its gradient is added to ``.grad``. Returns a handle: ``handle.remove()``."""
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return autograd.RemovableHandle(autograd.meta_of(self).hooks, hook)

    def _check_same_backend(self, other: Tensor, what: str) -> None:
        if other._backend is not self._backend:
            raise BackendMismatchError(
                f"{what} got tensors on two backends, {self.backend!r} and {other.backend!r}; "
                f"move one with .to({self.backend!r})"
            )

    # ---------------------------------------------------------- lifting scalars
    def _lift(self, other: Any) -> Tensor:
        """``other`` as a tensor on this backend; a number takes the dtype
        :func:`dtypes.of_scalar` gives it beside this tensor (int32 * 2 is int32)."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (complex, np.complexfloating)):
            raise TypeError(f"complex numbers are not supported, got {other!r}")
        if isinstance(other, (bool, int, float, np.number)):
            dtype = dtypes.of_scalar(other, self.dtype)
            return Tensor._wrap(self._backend.asarray(other, dtype=dtype), self._backend)
        if other is None or isinstance(other, (str, bytes)):
            raise TypeError(f"cannot combine a tensor with {type(other).__name__} {other!r}")
        return Tensor(other, dtype=self.dtype if self.dtype.kind == "f" else None,
                      backend=self._backend)

    # ----------------------------------------------------------------- in place
    def _in_place(self, other: Any, ufunc_name: str, symbol: str) -> Tensor:
        """``self <symbol>= other`` on the data itself, as D2L's ``sgd`` does:
        ``with no_grad(): param -= lr * param.grad``.

        While a graph is being recorded through either operand, the graph has no
        in-place ops: ``x += y`` becomes ``x = x + y``, a new node bound to the name x
        (so ``total += loss`` and ``out += identity`` work). Unlike PyTorch, other
        references to the old tensor do not see the change, so it is refused on a view
        (whose base would not see it) and on a leaf that requires grad (a parameter).
        A graph made earlier that saved ``self``, or a view of the same array, notices
        the change (``_version``, shared by views) and refuses to run backward().
        """
        other = self._lift(other)
        what = f"in-place {symbol}="
        self._check_same_backend(other, what)
        shape = checks.check_broadcast(self.shape, other.shape, what)
        if shape != self.shape:
            raise ValueError(
                f"{what}: the result has shape {shape}, which does not fit this tensor's "
                f"shape {self.shape}")
        recording = autograd.is_grad_enabled() and (self.requires_grad or other.requires_grad)
        if recording and not (self.is_leaf and self.requires_grad) and not autograd.has_alias(self):
            return getattr(self, _OUT_OF_PLACE[ufunc_name])(other)
        self._check_writable(what, other.requires_grad, f"write x = x {symbol} y")
        dtypes.check_in_place(self.dtype, other.dtype, what, divide=ufunc_name == "true_divide")
        getattr(self._backend.xp, ufunc_name)(self.data, other.data, out=self.data)
        self._version.count += 1
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self._in_place(other, "add", "+")

    def __isub__(self, other: Any) -> Tensor:
        return self._in_place(other, "subtract", "-")

    def __imul__(self, other: Any) -> Tensor:
        return self._in_place(other, "multiply", "*")

    def __itruediv__(self, other: Any) -> Tensor:
        return self._in_place(other, "true_divide", "/")

    def zero_(self) -> Tensor:
        """Set every element to 0 in place (D2L: ``param.grad.zero_()``)."""
        self._check_writable("zero_()", False, "use x * 0")
        self.data[...] = 0
        self._version.count += 1
        return self

    def _write(self, array: Any, what: str) -> Tensor:
        """Overwrite every element with ``array`` (broadcast), under ``x[...] = y``'s rules:
        refused on a tensor that takes part in autograd unless under ``no_grad()`` (as
        torch's init functions run)."""
        self._check_writable(what, False, "build a new tensor")
        self.data[...] = array
        self._version.count += 1
        return self

    def fill_(self, value: Any) -> Tensor:
        """Set every element to ``value`` in place (D2L: ``bias.data.fill_(0)``)."""
        if not checks.is_real(value) and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"fill_ takes a number, got {value!r}")
        if self.dtype.kind != "f" and isinstance(value, (float, np.floating)):
            raise TypeError(f"fill_: a float {value} cannot be stored in a {self.dtype} tensor")
        return self._write(self._backend.asarray(value, dtype=self.dtype), "fill_()")

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator: Any = None
                ) -> Tensor:
        """Refill in place from N(mean, std²), drawn on the host (tg.Generator or the
        default one)."""
        std = checks.as_nonnegative(std, "normal_: std")
        if not checks.is_real(mean) or not np.isfinite(mean):
            raise ValueError(f"normal_: mean must be a finite number, got {mean!r}")
        self._floats_only("normal_")
        rng = random.resolve(generator, "normal_")
        draw = mean + self._backend.random_normal(rng, self.shape, std, self.dtype)
        return self._write(draw, "normal_()")

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Tensor:
        """Refill in place from U(a, b)."""
        if not (checks.is_real(a) and checks.is_real(b) and np.isfinite(a) and np.isfinite(b)
                and a <= b):
            raise ValueError(f"uniform_: need finite a <= b, got {a!r}, {b!r}")
        self._floats_only("uniform_")
        rng = random.resolve(generator, "uniform_")
        return self._write(self._backend.random_uniform(rng, self.shape, a, b, self.dtype),
                           "uniform_()")

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src``'s values in (broadcast to this shape, cast to this dtype)."""
        src = self._lift(src)
        self._check_same_backend(src, "copy_")
        if checks.check_broadcast(self.shape, src.shape, "copy_") != self.shape:
            raise ValueError(f"copy_: shape {src.shape} does not broadcast to {self.shape}")
        return self._write(src.data.astype(self.dtype, copy=False), "copy_()")

    def add_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """``self += alpha * other`` in place."""
        return self._in_place(other if alpha == 1 else alpha * other, "add", "+")

    def sub_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """``self -= alpha * other`` in place."""
        return self._in_place(other if alpha == 1 else alpha * other, "subtract", "-")

    def mul_(self, other: Any) -> Tensor:
        """``self *= other`` in place."""
        return self._in_place(other, "multiply", "*")

    def div_(self, other: Any) -> Tensor:
        """``self /= other`` in place."""
        return self._in_place(other, "true_divide", "/")

    def _floats_only(self, what: str) -> None:
        if self.dtype.kind != "f":
            raise TypeError(f"{what} draws floats; this tensor is {self.dtype}")

    def _check_writable(self, what: str, other_requires_grad: bool, instead: str) -> None:
        if autograd.is_grad_enabled() and (self.requires_grad or other_requires_grad):
            if self.is_leaf and self.requires_grad:  # a parameter: updates go outside the graph
                advice = "wrap it in `with tg.no_grad():`, as an optimizer step does"
            elif autograd.has_alias(self):  # x += y would rebind x, unseen by its aliases
                advice = ("it shares its data with a view or a detach()ed copy, which would "
                          f"not see the change; {instead} instead")
            else:  # a result while recording: the graph has no in-place ops
                advice = f"the graph records no in-place change; {instead} instead"
            raise RuntimeError(f"{what} on a tensor that takes part in autograd: {advice}")
        if not getattr(getattr(self.data, "flags", None), "writeable", True):
            raise ValueError(f"{what}: this tensor's data is a read-only view")

    # --------------------------------------------------------------- operators
    def __add__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Add, self, self._lift(other), _is_number(other))

    def __radd__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Add, self._lift(other), self, _is_number(other))

    def __sub__(self, other: Any) -> Tensor:
        if isinstance(other, (bool, np.bool_)):  # functions.elementwise refuses bool tensors
            raise TypeError("subtraction (-) with a bool is not supported (as in PyTorch)")
        return functions.elementwise(ops.Sub, self, self._lift(other), _is_number(other))

    def __rsub__(self, other: Any) -> Tensor:
        if isinstance(other, (bool, np.bool_)):  # functions.elementwise refuses bool tensors
            raise TypeError("subtraction (-) with a bool is not supported (as in PyTorch)")
        return functions.elementwise(ops.Sub, self._lift(other), self, _is_number(other))

    def __mul__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Mul, self, self._lift(other), _is_number(other))

    def __rmul__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Mul, self._lift(other), self, _is_number(other))

    def __truediv__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Div, self, self._lift(other), _is_number(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Div, self._lift(other), self, _is_number(other))

    def __neg__(self) -> Tensor:
        if self.dtype.kind == "b":
            raise TypeError("negation (-) of a bool tensor is not supported (as in PyTorch); "
                            "to invert a mask use ~mask or mask.logical_not()")
        return ops.Neg.apply(self)

    def __pow__(self, exponent: Number | Tensor) -> Tensor:
        if isinstance(exponent, Tensor):  # elementwise.pow: tensor exponents (issue 20)
            from .elementwise import pow as tensor_pow
            return tensor_pow(self, exponent)
        if not isinstance(
                exponent, (int, float, np.integer, np.floating, np.bool_)):
            raise TypeError(
                f"tensor ** exponent needs a Python number exponent, got {type(exponent).__name__}"
            )
        dtype = dtypes.of_power(self.dtype, exponent)
        if dtype.kind == "b":  # bool ** bool: x ** True is x, x ** False is all True
            return self.detach() if exponent else self._new(self._backend.xp.ones_like(self.data))
        base = self if dtype == self.dtype else self.astype(dtype)
        exponent = float(exponent) if isinstance(exponent, (float, np.floating)) else int(exponent)
        return ops.Pow.apply(base, exponent=exponent)

    def __matmul__(self, other: Any) -> Tensor:
        return functions.matmul(self, self._lift(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return functions.matmul(self._lift(other), self)

    def _compare(self, other: Any, op: str) -> Tensor:
        other = self._lift(other)
        self._check_same_backend(other, f"comparison {op}")
        xp = self._backend.xp
        fn = {"<": xp.less, "<=": xp.less_equal, ">": xp.greater, ">=": xp.greater_equal,
              "==": xp.equal, "!=": xp.not_equal}[op]
        checks.check_broadcast(self.shape, other.shape, op)
        return Tensor._wrap(fn(self.data, other.data), self._backend)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, "<")

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, "<=")

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, ">")

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, ">=")

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, "==")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, "!=")

    # ----------------------------------------------------- masks (no gradient)
    def _bitwise(self, other: Any, name: str, symbol: str) -> Tensor:
        other = self._lift(other)
        self._check_same_backend(other, f"bitwise {symbol}")
        for t in (self, other):
            if t.dtype.kind not in "biu":
                raise TypeError(f"{symbol} needs bool or integer tensors, got {t.dtype} (as in "
                                "PyTorch); compare first, e.g. (x > 0) & (x < 1)")
        checks.check_broadcast(self.shape, other.shape, symbol)
        a, b = functions.cast_operands(self, other, scalar=not isinstance(other, Tensor))
        return Tensor._wrap(getattr(self._backend.xp, name)(a.data, b.data), self._backend)

    def __and__(self, other: Any) -> Tensor:
        return self._bitwise(other, "bitwise_and", "&")

    def __or__(self, other: Any) -> Tensor:
        return self._bitwise(other, "bitwise_or", "|")

    def __xor__(self, other: Any) -> Tensor:
        return self._bitwise(other, "bitwise_xor", "^")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> Tensor:
        """``~mask``: logical not of a bool tensor, bitwise not of an integer one."""
        if self.dtype.kind not in "biu":
            raise TypeError(f"~ needs a bool or integer tensor, got {self.dtype}")
        return Tensor._wrap(self._backend.xp.invert(self.data), self._backend)

    def logical_not(self) -> Tensor:
        """A bool tensor: True where this one is zero."""
        return Tensor._wrap(self._backend.xp.logical_not(self.data), self._backend)

    def logical_and(self, other: Any) -> Tensor:
        """A bool tensor: True where both are nonzero."""
        other = self._lift(other)
        return Tensor._wrap(self._backend.xp.logical_and(self.data, other.data), self._backend)

    def logical_or(self, other: Any) -> Tensor:
        """A bool tensor: True where either is nonzero."""
        other = self._lift(other)
        return Tensor._wrap(self._backend.xp.logical_or(self.data, other.data), self._backend)

    __hash__ = object.__hash__  # identity, as for any mutable object with __eq__

    def __getitem__(self, index: Any) -> Tensor:
        return functions.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        """``x[index] = value`` in place, under the rules of ``x += y`` (so ``x[i] += v``,
        which Python runs as ``x[i] = x[i] + v`` through a view, works too)."""
        value = self._lift(value)
        what = "item assignment x[...] = y"
        self._check_same_backend(value, what)
        self._check_writable(what, value.requires_grad,
                             "build the tensor with tg.cat, or blend with a mask")
        dtypes.check_assignable(self.dtype, value.dtype, what)
        # one value written everywhere: the order of the result's axes does not matter
        index, _ = indexing.backend_index(self, index, check_layout=value.numel() != 1)
        try:
            self.data[index] = value.data
        except ValueError as e:  # NumPy's and CuPy's words differ: say it in ours
            raise ValueError(
                f"{what}: a value of shape {value.shape} does not fit "
                f"x{indexing.describe_index(index)} of a tensor of shape {self.shape} ({e})"
            ) from None
        except IndexError as e:
            raise IndexError(f"{what}: index {indexing.describe_index(index)} into shape "
                             f"{self.shape}: {e}") from None
        self._version.count += 1

    # --------------------------------------------------------------- reductions
    # torch's names (dim, keepdim) with NumPy's (axis, keepdims) accepted as aliases, as
    # torch accepts them; a dim is an int or a tuple of ints, None meaning all.
    def _reduction_args(self, dim: Any, axis: Any, keepdim: bool, keepdims: Any, what: str
                        ) -> tuple[Any, bool]:
        dim = checks.dim_alias(dim, axis, what)
        keep = checks.as_flag(keepdim if keepdims is _NOT_GIVEN else keepdims, "keepdim")
        checks.normalize_axes(dim, self.ndim)  # an out-of-range dim: one DimError, here
        return dim, keep

    def sum(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
            dtype: Any = None, axis: Any = None, keepdims: Any = _NOT_GIVEN) -> Tensor:
        """Sum over ``dim`` (all dims if None); ``keepdim`` keeps them as size 1. Integer
        and bool tensors sum to int64 (as torch); ``dtype`` casts first."""
        dim, keep = self._reduction_args(dim, axis, keepdim, keepdims, "sum")
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind != "f":  # no gradient: sum directly, in int64
            axes = checks.normalize_axes(dim, x.ndim)
            out = x._backend.xp.sum(x.data, axis=axes, keepdims=keep, dtype=dtypes.of_sum(x.dtype))
            return Tensor._wrap(x._backend.xp.asarray(out), x._backend)
        return ops.Sum.apply(x, axis=dim, keepdims=keep)

    def mean(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
             dtype: Any = None, axis: Any = None, keepdims: Any = _NOT_GIVEN) -> Tensor:
        """Mean over ``dim`` (all dims if None): ``sum / count``. Integer tensors are refused
        (as torch refuses them): ``x.float().mean()``, or pass ``dtype``."""
        dim, keep = self._reduction_args(dim, axis, keepdim, keepdims, "mean")
        x = self if dtype is None else self.astype(dtype)
        dtypes.of_mean(x.dtype)
        count = 1
        for a in checks.normalize_axes(dim, x.ndim):
            count *= x.shape[a]
        return x.sum(dim, keep) / count

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
        """The vector p-norm over ``dim`` (all dims if None): ``p`` 2 or "fro" (the
        default), 1, inf or another number > 0. The 2-norm's gradient at 0 is 0 (torch's)."""
        dim, keep = self._reduction_args(dim, None, keepdim, _NOT_GIVEN, "norm")
        x = self._floats()
        if p in ("fro", 2, 2.0):
            return ops.Norm2.apply(x, axis=dim, keepdims=keep)
        if p in (1, 1.0):
            return x.abs().sum(dim, keep)
        if p == float("inf"):
            return x.abs().amax(dim, keep)
        if not checks.is_real(p) or not p > 0:
            raise ValueError(f"norm: p must be 'fro', inf or a number > 0, got {p!r}")
        return (x.abs() ** float(p)).sum(dim, keep) ** (1.0 / p)

    def pow(self, exponent: Any) -> Tensor:
        """``self ** exponent``."""
        return self ** exponent

    def square(self) -> Tensor:
        """``self * self``."""
        return self * self

    def _values_indices(self, dim: int, keep: bool, largest: bool) -> MinMax:
        """``max(dim)``/``min(dim)``: the values and int64 indices of the first extreme
        along ``dim``; the gradient goes to that one element, as torch's does."""
        xp, d = self._backend.xp, checks.normalize_dim(dim, self.ndim)
        if self.ndim == 0:
            return MinMax(self.reshape(()) * 1, Tensor._wrap(xp.zeros((), xp.int64), self._backend))
        if self.shape[d] == 0:
            raise checks.DimError(f"{'max' if largest else 'min'}(dim={dim}) of a tensor of shape "
                             f"{self.shape}: the dim is empty")
        find = xp.argmax if largest else xp.argmin
        idx = xp.expand_dims(find(self.data, axis=d), d).astype(xp.int64)
        grids = list(xp.ogrid[tuple(slice(n) for n in idx.shape)])
        grids[d] = idx
        values = self[tuple(Tensor._wrap(g, self._backend) for g in grids)]
        if not keep:
            values, idx = values.squeeze(d), idx.squeeze(d)
        return MinMax(values, Tensor._wrap(idx, self._backend))

    def max(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
            keepdims: Any = _NOT_GIVEN) -> Tensor | MinMax:
        """As torch: ``x.max()`` the largest element (ties share the gradient equally);
        ``x.max(dim)`` a named tuple ``(values, indices)`` along one dim (the gradient
        goes to the first maximum); ``x.max(other)`` the elementwise :meth:`maximum`."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        dim, keep = self._reduction_args(dim, axis, keepdim, keepdims, "max")
        if dim is None:  # torch's max(): tied maxima share the gradient (NaNs too)
            if self.dtype.kind != "f":
                return self._extreme_of_ints(None, keep, "max")
            return ops.Max.apply(self, axis=None, keepdims=keep)
        return self._values_indices(dim, keep, largest=True)

    def min(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
            keepdims: Any = _NOT_GIVEN) -> Tensor | MinMax:
        """As :meth:`max`, for the smallest: ``x.min()``, ``x.min(dim)`` -> ``(values,
        indices)``, ``x.min(other)`` the elementwise :meth:`minimum`."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        dim, keep = self._reduction_args(dim, axis, keepdim, keepdims, "min")
        if dim is None:
            if self.dtype.kind != "f":
                return self._extreme_of_ints(None, keep, "min")
            return -ops.Max.apply(-self, axis=None, keepdims=keep)
        return self._values_indices(dim, keep, largest=False)

    def amax(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
             axis: Any = None, keepdims: Any = _NOT_GIVEN) -> Tensor:
        """The largest values over ``dim`` (all if None); tied maxima share the gradient
        equally (torch's ``amax``)."""
        dim, keep = self._reduction_args(dim, axis, keepdim, keepdims, "amax")
        if self.dtype.kind != "f":  # no gradient: directly (-x would wrap for unsigned)
            return self._extreme_of_ints(dim, keep, "max")
        # all dims named: amax's rule at NaN (axis=None is max()'s, ops.Max says)
        axes = tuple(range(self.ndim)) if dim is None else dim
        return ops.Max.apply(self, axis=axes, keepdims=keep)

    def amin(self, dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
             axis: Any = None, keepdims: Any = _NOT_GIVEN) -> Tensor:
        """The smallest values over ``dim``: for floats ``-amax(-x)`` (exact; ties share
        the gradient equally); integers and bools directly, since ``-x`` would wrap."""
        dim, keep = self._reduction_args(dim, axis, keepdim, keepdims, "amin")
        if self.dtype.kind != "f":
            return self._extreme_of_ints(dim, keep, "min")
        return -(-self).amax(dim, keep)

    def _extreme_of_ints(self, dim: Any, keep: bool, which: str) -> Tensor:
        axes = checks.normalize_axes(dim, self.ndim)
        if any(self.shape[i] == 0 for i in axes) or (self.numel() == 0 and not axes and self.ndim):
            raise ValueError(f"{which} over an empty dim of a tensor of shape {self.shape}")
        out = getattr(self._backend.xp, which)(self.data, axis=axes, keepdims=keep)
        return Tensor._wrap(self._backend.xp.asarray(out), self._backend)

    def argmax(self, dim: int | None = None, keepdim: bool = False, *, axis: Any = None,
               keepdims: Any = _NOT_GIVEN) -> Tensor:
        """Indices (int64) of the first maxima along ``dim`` (of the flattened tensor for
        None); no gradient."""
        return self._arg_extreme(dim, keepdim, axis, keepdims, "argmax")

    def argmin(self, dim: int | None = None, keepdim: bool = False, *, axis: Any = None,
               keepdims: Any = _NOT_GIVEN) -> Tensor:
        """Indices (int64) of the first minima along ``dim`` (flattened for None)."""
        return self._arg_extreme(dim, keepdim, axis, keepdims, "argmin")

    def _arg_extreme(self, dim: Any, keepdim: bool, axis: Any, keepdims: Any, what: str
                     ) -> Tensor:
        dim = checks.dim_alias(dim, axis, what)
        keep = checks.as_flag(keepdim if keepdims is _NOT_GIVEN else keepdims, "keepdim")
        xp = self._backend.xp
        if dim is not None:
            if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
                raise TypeError(f"{what} takes one dim (an int) or None, got {dim!r}")
            dim = checks.normalize_dim(dim, self.ndim)
        if self.ndim == 0:
            return Tensor._wrap(xp.zeros((), xp.int64), self._backend)
        if (self.numel() if dim is None else self.shape[dim]) == 0:
            where = "" if dim is None else f" along dim {dim}"
            raise ValueError(f"{what} of an empty tensor of shape {self.shape}{where}")
        out = getattr(xp, what)(self.data, axis=dim, keepdims=keep and dim is not None)
        if keep and dim is None:  # torch: keepdim without a dim keeps every dim as 1
            out = out.reshape((1,) * self.ndim)
        return Tensor._wrap(xp.asarray(out).astype(xp.int64, copy=False), self._backend)

    def any(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Whether any element (along ``dim``) is nonzero: a bool tensor, as torch's."""
        axes = checks.normalize_axes(dim, self.ndim)
        keep = checks.as_flag(keepdim, "keepdim")
        out = self._backend.xp.any(self.data, axis=axes, keepdims=keep)
        return Tensor._wrap(self._backend.xp.asarray(out), self._backend)

    def all(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Whether every element (along ``dim``) is nonzero: a bool tensor, as torch's."""
        axes = checks.normalize_axes(dim, self.ndim)
        keep = checks.as_flag(keepdim, "keepdim")
        out = self._backend.xp.all(self.data, axis=axes, keepdims=keep)
        return Tensor._wrap(self._backend.xp.asarray(out), self._backend)

    def _floats(self) -> Tensor:
        """This tensor in :func:`dtypes.of_float_function`'s dtype: itself if float, else
        a float32 copy (PyTorch's dtype for ``exp`` of an int tensor)."""
        dtype = dtypes.of_float_function(self.dtype)
        return self if dtype == self.dtype else self.astype(dtype)

    def exp(self) -> Tensor:
        """Elementwise ``e ** x``, same shape (float32 for an integer tensor)."""
        return ops.Exp.apply(self._floats())

    def log(self) -> Tensor:
        """Elementwise natural log, same shape (float32 for an integer tensor)."""
        return ops.Log.apply(self._floats())

    def sin(self) -> Tensor:
        """Elementwise sine, same shape (float32 for an integer tensor)."""
        return ops.Sin.apply(self._floats())

    def cos(self) -> Tensor:
        """Elementwise cosine, same shape (float32 for an integer tensor)."""
        return ops.Cos.apply(self._floats())

    def tanh(self) -> Tensor:
        """Elementwise tanh, same shape (float32 for an integer tensor)."""
        return ops.Tanh.apply(self._floats())

    def sigmoid(self) -> Tensor:
        """Elementwise ``1 / (1 + e ** -x)``, same shape (float32 for an integer tensor)."""
        return ops.Sigmoid.apply(self._floats())

    def relu(self) -> Tensor:
        """Elementwise ``max(x, 0)``, same shape."""
        return ops.ReLU.apply(self)

    def abs(self) -> Tensor:
        """Elementwise ``|x|``: for floats composed, ``relu(x) + relu(-x)`` (exact: one term
        is 0; gradient 0 at 0, as PyTorch's); integers (no gradient) directly."""
        if self.dtype.kind != "f":  # -x would wrap for unsigned and the smallest int
            return Tensor._wrap(self._backend.xp.abs(self.data), self._backend)
        return self.relu() + (-self).relu()

    def clamp(self, min: Number | None = None, max: Number | None = None) -> Tensor:
        """Elementwise clip into ``[min, max]`` (either may be None, not both); the
        gradient is 1 inside the range, its ends included (as PyTorch's), 0 outside."""
        if min is None and max is None:
            raise ValueError("clamp needs min, max or both")
        bounds = [b for b in (min, max) if b is not None]
        for b in bounds:
            if not checks.is_real(b):
                raise TypeError(f"clamp's bounds must be numbers, got {b!r} (for a bound "
                                "per element, compose: x - (x - hi).relu())")
        dtype = dtypes.of_clamp(self.dtype, min, max)
        x = self if dtype == self.dtype else self.astype(dtype)
        # each bound as a 0-d array of x's dtype, which of_clamp has checked it fits
        lo = None if min is None else x._backend.asarray(min, dtype=dtype)
        hi = None if max is None else x._backend.asarray(max, dtype=dtype)
        return ops.Clip.apply(x, lo=lo, hi=hi)

    def sqrt(self) -> Tensor:
        """Elementwise square root, as ``x ** 0.5`` (integer tensors give float32)."""
        return self ** 0.5

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """This tensor's elements in shape ``shape`` (ints or one tuple; one -1 is
        inferred): a view where the layout allows, else a copy, as PyTorch's reshape."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=tuple(checks.as_int(s, "reshape's sizes")
                                                    for s in shape))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """A view with dims ``start_dim..end_dim`` (inclusive) merged into one, as torch's;
        ``flatten()`` gives shape ``(size,)`` (a 0-d tensor gives ``(1,)``)."""
        if self.ndim == 0:
            return self.reshape(1)
        s, e = (checks.normalize_dim(checks.as_int(d, "flatten's dims"), self.ndim)
                for d in (start_dim, end_dim))
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1:]) if self.numel() else \
            self.reshape(self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:])

    def unsqueeze(self, dim: int) -> Tensor:
        """A view with a new dim of size 1 at ``dim`` (``-1``: last)."""
        d = checks.normalize_dim(checks.as_int(dim, "unsqueeze's dim"), self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim: int | Sequence[int] | None = None) -> Tensor:
        """A view without the size-1 dims among ``dim`` (an int or a tuple; all if None);
        a named dim whose size is not 1 is left as it is (torch's rule)."""
        dims = range(self.ndim) if dim is None else checks.normalize_axes(dim, self.ndim)
        drop = {d for d in dims if self.shape[d] == 1}
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in drop))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """A view with dims ``dim0`` and ``dim1`` exchanged (torch's ``transpose``; NumPy's
        all-axes permutation is :meth:`permute`, ``.T`` reverses every dim)."""
        d0, d1 = (checks.normalize_dim(checks.as_int(d, "transpose's dims"), self.ndim)
                  for d in (dim0, dim1))
        axes = list(range(self.ndim))
        axes[d0], axes[d1] = axes[d1], axes[d0]
        return ops.Transpose.apply(self, axes=tuple(axes)) if self.ndim else self

    swapaxes = swapdims = transpose

    @property
    def T(self) -> Tensor:
        """Every dim reversed; (N, d) -> (d, N). (torch deprecates ``.T`` beyond 2-D; it
        reverses all dims here, as NumPy's.)"""
        return ops.Transpose.apply(self, axes=None)

    @property
    def mT(self) -> Tensor:
        """The last two dims exchanged (a batch of matrices transposed)."""
        if self.ndim < 2:
            raise ValueError(f"mT needs at least 2 dims, got shape {self.shape}")
        return self.transpose(-2, -1)

    # ---------------------------------------------------------------- shape, dtype
    def dim(self) -> int:
        """The number of dims (torch's ``dim()``; also ``ndim``)."""
        return self.ndim

    def numel(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    def float(self) -> Tensor:
        """A float32 copy (itself if already float32), as torch's ``.float()``."""
        return self.to(dtype=np.float32)

    def double(self) -> Tensor:
        """A float64 copy (itself if already float64)."""
        return self.to(dtype=np.float64)

    def long(self) -> Tensor:
        """An int64 copy (itself if already int64); floats truncate toward 0, as torch's."""
        return self.to(dtype=np.int64)

    def int(self) -> Tensor:
        """An int32 copy (itself if already int32)."""
        return self.to(dtype=np.int32)

    def bool(self) -> Tensor:
        """A bool copy (itself if already bool): nonzero is True."""
        return self.to(dtype=np.bool_)

    def type(self, dtype: Any = None) -> Any:
        """``type()`` names the dtype (e.g. ``'float32'``); ``type(dtype)`` converts."""
        return str(self.dtype) if dtype is None else self.to(dtype=dtype)

    def type_as(self, other: Tensor) -> Tensor:
        """This tensor in ``other``'s dtype."""
        return self.to(dtype=other.dtype)

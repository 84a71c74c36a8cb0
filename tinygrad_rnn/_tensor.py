"""``Tensor``: an array on some backend, plus what autograd needs to differentiate it.

The module is ``_tensor`` (as PyTorch's ``torch/_tensor.py``): ``tg.Tensor`` is the
class, and the name ``tensor`` is left free for a factory function. A Tensor is the
:class:`autograd.Node` that adds the user's API; its methods check their arguments,
take their dtypes from :mod:`dtypes` and call :mod:`functions` or :mod:`ops`, which
never import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import autograd, checks, dtypes, functions, indexing, ops
from . import backends as _backends
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
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return int(self.data.size)

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the data."""
        return np.dtype(self.data.dtype)

    @property
    def backend(self) -> str:
        """The name of the backend holding the data."""
        return self._backend.name

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
    def numpy(self) -> np.ndarray:
        """A NumPy copy of the data (copied back from a GPU where needed)."""
        return self._backend.to_numpy(self.data)

    def item(self) -> Number:
        """The one element as a Python number; the tensor must have size 1."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __iter__(self) -> Any:
        """The sub-tensors along the first axis (as PyTorch): ``for X_t in X``."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def tolist(self) -> Any:
        """The data as nested Python lists (a Python number for a 0-d tensor)."""
        return self.numpy().tolist()

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

    def to(self, backend: str) -> Tensor:
        """This tensor on another backend (a copy; the result is a leaf)."""
        target = _backends.get(backend)
        if target is self._backend:
            return self
        moved = Tensor._wrap(target.asarray(self.numpy()), target)
        moved.requires_grad = self.requires_grad
        return moved

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
            if self.size != 1:
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
        return functions.elementwise(ops.Add, self, self._lift(other))

    def __radd__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Add, self._lift(other), self)

    def __sub__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Sub, self, self._lift(other))

    def __rsub__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Sub, self._lift(other), self)

    def __mul__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Mul, self, self._lift(other))

    def __rmul__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Mul, self._lift(other), self)

    def __truediv__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Div, self, self._lift(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        return functions.elementwise(ops.Div, self._lift(other), self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pow__(self, exponent: Number) -> Tensor:
        if isinstance(exponent, Tensor) or not isinstance(
                exponent, (int, float, np.integer, np.floating, np.bool_)):
            raise TypeError(
                f"tensor ** exponent needs a Python number exponent, got {type(exponent).__name__}"
            )
        dtype = dtypes.of_power(self.dtype, exponent)
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

    __hash__ = object.__hash__  # identity, as for any mutable object with __eq__

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() / .all() or compare .item()"
            )
        return bool(self.item())

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
        index, _ = indexing.backend_index(self, index, check_layout=value.size != 1)
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

    # ------------------------------------------------------------------ methods
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes if None); ``keepdims`` keeps them as size 1."""
        return ops.Sum.apply(self, axis=axis, keepdims=checks.as_flag(keepdims, "keepdims"))

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes if None): ``sum / count``; integer tensors give float32."""
        count = 1
        for a in checks.normalize_axes(axis, self.ndim):
            count *= self.shape[a]
        return self.sum(axis, keepdims) / count

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Max over ``axis`` (all axes if None); tied maxima share the gradient equally."""
        return ops.Max.apply(self, axis=axis, keepdims=checks.as_flag(keepdims, "keepdims"))

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Min over ``axis`` (all axes if None): for floats composed, ``-max(-x)`` (exact);
        integers and bools (no gradient) directly, since ``-x`` would wrap."""
        if self.dtype.kind != "f":  # the same argument errors as max's
            axes = checks.normalize_axes(axis, self.ndim)
            if any(self.shape[i] == 0 for i in axes):
                raise ValueError(f"min over an empty axis of a tensor of shape {self.shape}")
            keepdims = checks.as_flag(keepdims, "keepdims")
            out = self._backend.xp.min(self.data, axis=axes, keepdims=keepdims)
            return Tensor._wrap(self._backend.xp.asarray(out), self._backend)
        return -(-self).max(axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Indices of the maxima along ``axis`` (of the flattened tensor for None), int64;
        no gradient."""
        keepdims = checks.as_flag(keepdims, "keepdims")
        if axis is not None:
            if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
                raise TypeError(f"argmax takes one axis (an int) or None, got {axis!r}")
            axis = checks.normalize_axes(axis, self.ndim)[0]
        if (self.size if axis is None else self.shape[axis]) == 0:
            where = "" if axis is None else f" along axis {axis}"
            raise ValueError(f"argmax of an empty tensor of shape {self.shape}{where}")
        out = self._backend.xp.argmax(self.data, axis=axis, keepdims=keepdims)
        return Tensor._wrap(self._backend.xp.asarray(out), self._backend)

    def any(self) -> bool:
        """Whether any element is nonzero, as a Python bool (no graph)."""
        return bool(self._backend.xp.any(self.data))

    def all(self) -> bool:
        """Whether every element is nonzero, as a Python bool (no graph)."""
        return bool(self._backend.xp.all(self.data))

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

    def flatten(self) -> Tensor:
        """A view of all elements in one axis, shape ``(size,)``."""
        return self.reshape(-1)

    def unsqueeze(self, axis: int) -> Tensor:
        """A view with a new axis of size 1 at ``axis`` (``-1``: last)."""
        ax = checks.normalize_axes(checks.as_int(axis, "unsqueeze's axis"), self.ndim + 1)[0]
        return self.reshape(self.shape[:ax] + (1,) + self.shape[ax:])

    def squeeze(self, axis: int | Sequence[int] | None = None) -> Tensor:
        """A view without the size-1 axes ``axis`` (an int or a tuple; all if None)."""
        axes = [i for i, n in enumerate(self.shape) if n == 1] if axis is None else \
            checks.normalize_axes(axis, self.ndim)
        for ax in axes:
            if self.shape[ax] != 1:
                raise ValueError(f"squeeze: axis {ax} of shape {self.shape} is not of size 1")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if i not in axes))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """A view with axes permuted by ``axes`` (ints, or one tuple); reversed if none given."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = tuple(checks.as_int(ax, "transpose's axes") for ax in axes)
        return ops.Transpose.apply(self, axes=axes or None)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """A view with two axes exchanged (PyTorch's ``transpose(i, j)``)."""
        axes = list(range(self.ndim))
        axis1, axis2 = (checks.as_int(ax, "swapaxes' axes") for ax in (axis1, axis2))
        for ax in (axis1, axis2):
            if not -self.ndim <= ax < self.ndim:
                raise ValueError(f"swapaxes: axis {ax} is out of range for shape {self.shape}")
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return self.transpose(axes)

    @property
    def T(self) -> Tensor:
        """The transpose, all axes reversed: ``x.transpose()``; (N, d) -> (d, N)."""
        return self.transpose()


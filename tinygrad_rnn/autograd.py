"""Reverse-mode automatic differentiation: ``Function`` nodes and the backward pass.

Each op is a :class:`Function` with a ``forward`` on raw arrays and a ``backward``
that maps the output's gradient to one gradient per input (micrograd / Chainer
style). Calling ``Fn.apply(*tensors)`` runs ``forward`` and, when a gradient is
needed, remembers the inputs: the output tensor's ``_ctx`` is the Function that
made it. ``backward`` walks that graph once, in reverse topological order,
without recursion, so a 5,000-step unrolled RNN is no problem.

Tensor and Function need each other: a Function makes tensors, a tensor's methods
call Functions. The need is cut here, one way: this module knows a tensor only as a
:class:`Node` (its array, backend, gradient, the Function that made it, its version
count), and ``Tensor`` (``_tensor.py``) is the Node that adds the user's API. So
``_tensor.py`` imports this module, ``ops.py`` and ``functions.py``; none of them
imports ``_tensor.py``.
"""

from __future__ import annotations

import functools
import inspect
import operator
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .backends.base import BackendMismatchError

if TYPE_CHECKING:
    from .backends import Backend

F = TypeVar("F", bound=Callable[..., Any])


class _GradState(threading.local):
    """Grad mode is per thread, as in PyTorch: one thread's ``no_grad`` block must not
    switch off recording in another thread that is training."""

    def __init__(self) -> None:  # runs once in each thread that uses it
        self.enabled = True
        self.previous: list[bool] = []  # the modes to restore, innermost block last


_state = _GradState()
_GRAD_LOCK = threading.Lock()  # leaves' .grad sums, across threads


def is_grad_enabled() -> bool:
    """Whether ops record a graph in this thread now (False inside ``no_grad``)."""
    return _state.enabled


class _GradMode:
    """A context manager (and decorator) that sets grad mode, then restores it.

    A class, not a generator: one object may be entered again, nested, and shared by
    threads (what to restore is kept per thread).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> None:
        _state.previous.append(_state.enabled)
        _state.enabled = self.enabled

    def __exit__(self, *exc_info: Any) -> None:
        _state.enabled = _state.previous.pop()

    def __call__(self, fn: F) -> F:
        if inspect.isgeneratorfunction(fn):
            return self._wrap_generator(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _wrap_generator(self, fn: F) -> F:
        """A generator runs in this mode each time it resumes, and the caller's code
        between two ``next()`` calls in its own: wrapping only the call that makes the
        generator would set the mode before any of its code runs."""

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            gen = fn(*args, **kwargs)
            try:
                with _GradMode(self.enabled):
                    value = next(gen)
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        with _GradMode(self.enabled):
                            gen.close()
                        raise
                    except BaseException as e:  # thrown in by the caller: pass it on
                        with _GradMode(self.enabled):
                            value = gen.throw(e)
                    else:
                        with _GradMode(self.enabled):
                            value = gen.send(sent)
            except StopIteration as done:
                return done.value

        return generator  # type: ignore[return-value]


def no_grad() -> _GradMode:
    """Within the block no graph is recorded (evaluation, optimizer steps).

    Also a decorator: ``@tg.no_grad()``.
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Within the block graphs are recorded again (inside a ``no_grad`` block)."""
    return _GradMode(True)


class VersionCounter:
    """How many times an array was changed in place (``x += y``, ``x.zero_()``, an
    optimizer step). Views of one array (``detach``, ``reshape``, basic indexing) share
    one counter, as in PyTorch: changing a view changes the array it looks into.
    ``holders`` (weak references, None until a second tensor shares the counter) are
    the tensors that do, so ``x += y`` can tell whether another one is still alive."""

    __slots__ = ("count", "holders")

    def __init__(self) -> None:
        self.count = 0
        self.holders: list[weakref.ref] | None = None


class Node:
    """A tensor as autograd sees it; :class:`tinygrad_rnn.Tensor` is the one subclass.

    ``_data``: the backend's array; ``_backend``: the backend it is on;
    ``requires_grad``; ``grad`` (a tensor, or None); ``_ctx``: the :class:`Function`
    that computed it while recording, None for a leaf; ``_version``: its array's
    :class:`VersionCounter`. ``_new`` makes a result tensor, so this module never
    needs to name the Tensor class.
    """

    __slots__ = ("_data", "_backend", "requires_grad", "grad", "_ctx", "_version",
                 "__weakref__")

    def _new(self, array: Any, requires_grad: bool = False) -> Node:
        """A new tensor around ``array``, already on this one's backend (no checks, no copy)."""
        raise NotImplementedError  # abstract: Tensor defines it (no ABC: isinstance stays fast)

    def _accumulate_grad(self, g: Any) -> None:
        """Add the array ``g`` (of this tensor's shape) to ``.grad``."""
        if self.grad is None:
            # An owned, contiguous copy: the upstream gradient may be a broadcast view
            # or the caller's own array, and optimizers update .grad in place.
            self.grad = self._new(
                self._backend.xp.array(g, dtype=self._data.dtype, order="C", copy=True))
        else:
            # cast: a gradient from a mixed-dtype op must not change .grad's dtype
            self.grad._data = self.grad._data + g.astype(self._data.dtype, copy=False)


def share_version(base: Node, view: Node) -> None:
    """``view`` looks into ``base``'s array: it takes ``base``'s counter, and both are
    noted as its holders."""
    counter = view._version = base._version
    if counter.holders is None:
        counter.holders = [weakref.ref(base)]
    elif len(counter.holders) > 16:  # a tensor viewed at every step: drop the dead
        counter.holders = [ref for ref in counter.holders if ref() is not None]
    counter.holders.append(weakref.ref(view))


def has_alias(t: Node) -> bool:
    """Whether another live tensor shares ``t``'s array (a view, its base, a detach())."""
    return any(other is not None and other is not t
               for other in (ref() for ref in t._version.holders or ()))


_counter = operator.attrgetter("_version")  # a tensor's VersionCounter (C speed: every op)
_count = operator.attrgetter("count")


class Function(ABC):
    """One differentiable operation.

    Subclasses implement ``forward(*arrays, **params)`` and ``backward(grad)``;
    ``backward`` returns one gradient (or ``None``) per tensor input, each of the
    output's broadcast shape or the input's own: broadcasting is undone centrally,
    in :func:`backward`, not in every op.
    """

    inputs: tuple[Node, ...] = ()
    #: The VersionCounters of what backward() reads, and their counts when it was saved:
    #: backward() refuses to run if any count has moved (an in-place change since).
    counters: tuple[VersionCounter, ...] = ()
    versions: tuple[int, ...] = ()
    #: The output may be a view of the first input (reshape, transpose, basic indexing).
    view_of_input = False
    #: backward() reads the inputs' arrays (Mul, MatMul, ...): their changes are watched.
    saves_inputs = True
    #: backward() reads the output's array (Exp, Tanh, ...), so it is watched too.
    saves_output = False

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.xp = backend.xp

    @abstractmethod
    def forward(self, *arrays: Any, **params: Any) -> Any:
        """Compute the output array from the input arrays."""

    @abstractmethod
    def backward(self, grad: Any) -> tuple[Any, ...]:
        """Gradients w.r.t. each input, given the gradient w.r.t. the output."""

    @classmethod
    def apply(cls, *inputs: Node, **params: Any) -> Node:
        """Run ``forward`` on the inputs' arrays; the output tensor's ``_ctx`` is the
        Function (holding the inputs) when any input requires grad and grad is on."""
        for i, t in enumerate(inputs):
            if not isinstance(t, Node):
                raise TypeError(f"{cls.__name__}.apply takes Tensors; input {i} is of type "
                                f"{type(t).__name__} (wrap it in tg.Tensor)")
        backend = inputs[0]._backend
        for other in inputs[1:]:
            if other._backend is not backend:
                raise BackendMismatchError(
                    f"{cls.__name__} got tensors on two backends, {backend.name!r} and "
                    f"{other._backend.name!r}; move one with .to({backend.name!r})"
                )
        fn = cls(backend)
        out = fn.forward(*(t._data for t in inputs), **params)
        if isinstance(out, np.generic):  # NumPy reduces to an immutable scalar
            out = np.asarray(out)
        needs_grad = _state.enabled and any(t.requires_grad for t in inputs)
        result = inputs[0]._new(out, needs_grad)
        if fn.view_of_input and fn.xp.may_share_memory(out, inputs[0]._data):
            share_version(inputs[0], result)
        if needs_grad:
            fn.inputs = inputs
            # backward() reads these arrays as they are now: an in-place change made
            # later (``x += 1``) bumps a counter, and backward() refuses the stale graph
            fn.counters = tuple(map(_counter, inputs)) if fn.saves_inputs else ()
            if fn.saves_output:
                fn.counters += (result._version,)
            fn.versions = tuple(map(_count, fn.counters))
            result._ctx = fn
        return result


def unbroadcast(backend: Backend, grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1,
    so the gradient of every copy flows back to the one original: sum over those axes.
    """
    extra = grad.ndim - len(shape)
    if extra:
        grad = backend.sum_leading_axes(grad, extra)
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def topological_order(root: Node, grad_only: bool = True, first_input_first: bool = False
                      ) -> list[Node]:
    """``root`` and the tensors it was computed from, each after all of its inputs
    (an iterative depth-first search: no recursion limit, even for a 5,000-step
    unrolled RNN). ``grad_only``: only the tensors that require grad, which is what
    :func:`backward` visits; else every tensor, inputs and constants too (what a
    picture of the graph shows, :mod:`tinygrad_rnn.viz`). A Function's last input is
    visited first (that order fixes the order in which backward() adds up a tensor's
    gradients from its several uses), its first input first with ``first_input_first``
    (a picture numbers them as they are written)."""
    order: list[Node] = []
    visited: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            inputs = node._ctx.inputs
            # the stack pops the last input pushed first
            stack.extend((t, False) for t in (reversed(inputs) if first_input_first else inputs)
                         if (t.requires_grad or not grad_only) and id(t) not in visited)
    return order


def backward(root: Node, grad: Any) -> None:
    """Accumulate d root / d leaf into ``leaf.grad`` for every leaf that requires grad.

    ``grad`` is the gradient flowing into ``root`` (an array of root's shape). The
    chain rule runs once per node, in reverse topological order, so each node's
    gradient is complete (summed over all its uses) before it is passed on.
    """
    grads: dict[int, Any] = {id(root): grad}
    leaves: list[tuple[Node, Any]] = []
    for node in reversed(topological_order(root)):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if node._ctx is None:
            leaves.append((node, g))
            continue
        fn = node._ctx
        _check_versions(fn)
        for inp, g_in in zip(fn.inputs, _checked(fn, fn.backward(g)), strict=True):
            if g_in is None or not inp.requires_grad:
                continue
            if g_in.shape != inp._data.shape:
                g_in = unbroadcast(fn.backend, g_in, inp._data.shape)
            key = id(inp)
            # ``+`` makes a new array: an upstream gradient may be shared, never mutated.
            grads[key] = g_in if key not in grads else grads[key] + g_in
    # .grad changes only once the whole pass has got through: a refused graph (or an
    # error in a backward) leaves it as it was; the lock keeps two threads' sums whole
    with _GRAD_LOCK:
        for leaf, g in leaves:
            leaf._accumulate_grad(g)


def _checked(fn: Function, grads: Any) -> tuple[Any, ...]:
    """``fn.backward``'s result, checked: one array (or None) per input, each of the
    input's shape or one it broadcast to. A custom Function's mistake fails here, by
    name, rather than as a wrong ``.grad`` or an error deep in NumPy."""
    if type(grads) is not tuple:
        if isinstance(grads, list):
            grads = tuple(grads)
        elif len(fn.inputs) == 1:
            grads = (grads,)  # one input: a bare gradient, as PyTorch allows
        else:
            raise TypeError(f"{type(fn).__name__}.backward must return a tuple of "
                            f"{len(fn.inputs)} gradients, one per input; got a "
                            f"{type(grads).__name__}")
    if len(grads) != len(fn.inputs):
        raise ValueError(f"{type(fn).__name__}.backward returned {len(grads)} gradients for "
                         f"{len(fn.inputs)} inputs")
    for i, (inp, g) in enumerate(zip(fn.inputs, grads)):
        # the common case costs one comparison: an array of exactly the input's shape
        if g is not None and (isinstance(g, Node)
                              or getattr(g, "shape", None) != inp._data.shape):
            _check_one(fn, i, inp, g)
    return grads


def _check_one(fn: Function, i: int, inp: Node, g: Any) -> None:
    """Gradient ``i`` is not an array of input ``i``'s shape: fine if it is one of a shape
    the input was broadcast to (or the input needs no gradient), else an error."""
    name = f"{type(fn).__name__}.backward"
    if not inp.requires_grad:
        return
    if isinstance(g, Node) or not hasattr(g, "shape"):
        raise TypeError(f"{name} must return arrays ({fn.backend.name} backend) or None; "
                        f"gradient {i} is a {type(g).__name__}")
    shape = tuple(inp._data.shape)
    lead = g.ndim - len(shape)  # broadcasting adds leading axes and stretches 1s
    if lead < 0 or any(n not in (1, m) for n, m in zip(shape, g.shape[lead:])):
        raise ValueError(f"{name} returned a gradient of shape {tuple(g.shape)} for input "
                         f"{i} of shape {shape}")


def _check_versions(fn: Function) -> None:
    now = tuple(map(_count, fn.counters))
    if now == fn.versions:
        return
    i = next(i for i, (a, b) in enumerate(zip(now, fn.versions)) if a != b)
    what = f"input {i}" if fn.saves_inputs and i < len(fn.inputs) else "the output"
    raise RuntimeError(
        f"backward(): {what} of {type(fn).__name__}, which its backward reads, was changed "
        "in place after it was computed (directly or through a view such as detach()), so "
        "the gradient would be wrong; compute the loss again after the change, or write "
        "x = x + y instead of x += y. (A graph that reaches back into an earlier minibatch "
        "through an RNN state carried over without state.detach() meets the optimizer's "
        "update of the weights this way.)")


"""Reverse-mode automatic differentiation: ``Function`` nodes and the backward pass.

Each op is a :class:`Function` with a ``forward`` on raw arrays and a ``backward``
that maps the output's gradient to one gradient per input (micrograd / Chainer
style). Calling ``Fn.apply(*tensors)`` runs ``forward`` and, when a gradient is
needed, remembers the inputs: the output tensor's ``_ctx`` is the Function that
made it. ``backward`` walks that graph once, in reverse topological order,
without recursion, so a 5,000-step unrolled RNN is no problem.
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

if TYPE_CHECKING:
    from .backends import Backend
    from .tensor import Tensor

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


def share_version(base: Tensor, view: Tensor) -> None:
    """``view`` looks into ``base``'s array: it takes ``base``'s counter, and both are
    noted as its holders."""
    counter = view._version = base._version
    if counter.holders is None:
        counter.holders = [weakref.ref(base)]
    elif len(counter.holders) > 16:  # a tensor viewed at every step: drop the dead
        counter.holders = [ref for ref in counter.holders if ref() is not None]
    counter.holders.append(weakref.ref(view))


def has_alias(t: Tensor) -> bool:
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

    inputs: tuple[Tensor, ...] = ()
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
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays; the output tensor's ``_ctx`` is the
        Function (holding the inputs) when any input requires grad and grad is on."""
        for i, t in enumerate(inputs):
            if not isinstance(t, _tensor.Tensor):
                raise TypeError(f"{cls.__name__}.apply takes Tensors; input {i} is of type "
                                f"{type(t).__name__} (wrap it in tg.Tensor)")
        backend = inputs[0]._backend
        for other in inputs[1:]:
            if other._backend is not backend:
                raise _tensor.BackendMismatchError(
                    f"{cls.__name__} got tensors on two backends, {backend.name!r} and "
                    f"{other._backend.name!r}; move one with .to({backend.name!r})"
                )
        fn = cls(backend)
        out = fn.forward(*(t._data for t in inputs), **params)
        if isinstance(out, np.generic):  # NumPy reduces to an immutable scalar
            out = np.asarray(out)
        needs_grad = _state.enabled and any(t.requires_grad for t in inputs)
        result = _tensor.Tensor._wrap(out, backend, needs_grad)
        if fn.view_of_input and fn.xp.may_share_memory(out, inputs[0].data):
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


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors that need a gradient, each after all of its inputs (iterative DFS)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
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
            stack.extend((t, False) for t in node._ctx.inputs
                         if t.requires_grad and id(t) not in visited)
    return order


def backward(root: Tensor, grad: Any) -> None:
    """Accumulate d root / d leaf into ``leaf.grad`` for every leaf that requires grad.

    ``grad`` is the gradient flowing into ``root`` (an array of root's shape). The
    chain rule runs once per node, in reverse topological order, so each node's
    gradient is complete (summed over all its uses) before it is passed on.
    """
    grads: dict[int, Any] = {id(root): grad}
    leaves: list[tuple[Tensor, Any]] = []
    for node in reversed(_topological_order(root)):
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
            if g_in.shape != inp.shape:
                g_in = unbroadcast(fn.backend, g_in, inp.shape)
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
        if g is not None and (isinstance(g, _tensor.Tensor)
                              or getattr(g, "shape", None) != inp._data.shape):
            _check_one(fn, i, inp, g)
    return grads


def _check_one(fn: Function, i: int, inp: Tensor, g: Any) -> None:
    """Gradient ``i`` is not an array of input ``i``'s shape: fine if it is one of a shape
    the input was broadcast to (or the input needs no gradient), else an error."""
    name = f"{type(fn).__name__}.backward"
    if not inp.requires_grad:
        return
    if isinstance(g, _tensor.Tensor) or not hasattr(g, "shape"):
        raise TypeError(f"{name} must return arrays ({fn.backend.name} backend) or None; "
                        f"gradient {i} is a {type(g).__name__}")
    lead = g.ndim - inp.ndim  # broadcasting adds leading axes and stretches 1s
    if lead < 0 or any(n not in (1, m) for n, m in zip(inp.shape, g.shape[lead:])):
        raise ValueError(f"{name} returned a gradient of shape {tuple(g.shape)} for input "
                         f"{i} of shape {inp.shape}")


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


from . import tensor as _tensor  # noqa: E402  (tensor.py builds on this module)

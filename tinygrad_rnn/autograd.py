"""Reverse-mode automatic differentiation: ``Function`` nodes and the backward pass.

Each op is a :class:`Function` with a ``forward`` on raw arrays and a ``backward``
that maps the output's gradient to one gradient per input (micrograd / Chainer
style). Calling ``Fn.apply(*tensors)`` runs ``forward`` and, when a gradient is
needed, remembers the inputs: the output tensor's ``_ctx`` is the Function that
made it. ``backward`` walks that graph once, in reverse topological order,
without recursion, so a 5,000-step unrolled RNN is no problem.

PyTorch's surface over the same graph: a result's ``grad_fn`` is its Function, whose
``name()`` and ``next_functions`` read as PyTorch's nodes (a leaf's node is an
:class:`AccumulateGrad`); ``register_hook`` and ``retain_grad`` live in a tensor's
:class:`AutogradMeta`; :func:`grad` returns gradients without touching ``.grad``.

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
import itertools
import operator
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from . import checks
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

    __slots__ = ("count", "holders", "prune_at")

    def __init__(self) -> None:
        self.count = 0
        self.holders: list[weakref.ref] | None = None
        self.prune_at = 16  # drop dead holders when the list reaches this length


class Node:
    """A tensor as autograd sees it; :class:`tinygrad_rnn.Tensor` is the one subclass.

    ``_data``: the backend's array; ``_backend``: the backend it is on;
    ``requires_grad``; ``grad`` (a tensor, or None); ``_ctx``: the :class:`Function`
    that computed it while recording, None for a leaf; ``_version``: its array's
    :class:`VersionCounter`; ``_meta``: its :class:`AutogradMeta` (hooks,
    ``retain_grad``), None for almost every tensor. ``_new`` makes a result tensor, so
    this module never needs to name the Tensor class.
    """

    __slots__ = ("_data", "_backend", "requires_grad", "grad", "_ctx", "_version",
                 "_meta", "__weakref__")

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


class AutogradMeta:
    """What a few tensors carry beyond a graph (PyTorch's name): the hooks of
    ``register_hook``, whether ``retain_grad()`` was called, and the
    :class:`AccumulateGrad` that ``grad_fn.next_functions`` shows for a leaf. A tensor
    has one only once it is asked for, so backward() pays one attribute read per node."""

    __slots__ = ("hooks", "retains_grad", "accumulator")

    def __init__(self) -> None:
        self.hooks: dict[int, Callable[[Any], Any]] = {}  # in the order registered
        self.retains_grad = False
        self.accumulator: AccumulateGrad | None = None


def meta_of(t: Node) -> AutogradMeta:
    """``t``'s :class:`AutogradMeta`, made on first use."""
    if t._meta is None:
        t._meta = AutogradMeta()
    return t._meta


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook off again
    (also as a context manager: ``with t.register_hook(fn): ...``), as PyTorch's."""

    _ids = itertools.count()

    def __init__(self, hooks: dict[int, Any], fn: Callable[[Any], Any]) -> None:
        self.id = next(RemovableHandle._ids)
        self._hooks = hooks
        hooks[self.id] = fn

    def remove(self) -> None:
        """Take the hook off (a second call does nothing)."""
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.remove()


def share_version(base: Node, view: Node) -> None:
    """``view`` looks into ``base``'s array: it takes ``base``'s counter, and both are
    noted as its holders."""
    counter = view._version = base._version
    if counter.holders is None:
        counter.holders = [weakref.ref(base)]
    elif len(counter.holders) >= counter.prune_at:  # a tensor viewed at every step
        counter.holders = [ref for ref in counter.holders if ref() is not None]
        # twice the live ones: pruning stays O(1) a view, even with thousands alive
        counter.prune_at = 2 * len(counter.holders) + 16
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

    #: What :meth:`name` says, PyTorch's name for its node; None: the class's name
    #: followed by ``Backward0`` (``Mul`` -> ``MulBackward0``).
    grad_fn_name: str | None = None

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.xp = backend.xp

    # ------------------------------------------- the graph as PyTorch shows it
    # A result's ``grad_fn`` is the Function that made it; these read it as PyTorch's
    # graph nodes are read, and cost nothing until they are asked for.
    def name(self) -> str:
        """The node's name as PyTorch prints it: ``"MulBackward0"``, ``"SumBackward0"``."""
        return self.grad_fn_name or f"{type(self).__name__}Backward0"

    @property
    def next_functions(self) -> tuple[tuple[Function | AccumulateGrad | None, int], ...]:
        """One ``(node, 0)`` per input, as PyTorch's: the input's ``grad_fn``, an
        :class:`AccumulateGrad` for a leaf that requires grad, None for an input that
        needs no gradient (a constant). Walking them from ``loss.grad_fn`` visits the
        whole graph down to the parameters."""
        return tuple((_edge(t), 0) for t in self.inputs)

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

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
        # one pass over the inputs: every op of a composed RNN step runs this loop
        backend, needs_grad = None, False
        for t in inputs:
            if not isinstance(t, Node):
                i = next(i for i, t in enumerate(inputs) if not isinstance(t, Node))
                raise TypeError(f"{cls.__name__}.apply takes Tensors; input {i} is of type "
                                f"{type(t).__name__} (wrap it in tg.Tensor)")
            if backend is None:
                backend = t._backend
            elif t._backend is not backend:
                raise BackendMismatchError(
                    f"{cls.__name__} got tensors on two backends, {backend.name!r} and "
                    f"{t._backend.name!r}; move one with .to({backend.name!r})"
                )
            needs_grad = needs_grad or t.requires_grad
        fn = cls(backend)
        out = fn.forward(*[t._data for t in inputs], **params)
        if isinstance(out, np.generic):  # NumPy reduces to an immutable scalar
            out = np.asarray(out)
        needs_grad = needs_grad and _state.enabled
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


class AccumulateGrad:
    """The graph node of a leaf that requires grad, as PyTorch's: where a gradient ends,
    added to ``.grad``. ``variable`` is the leaf; one per leaf (kept in its
    :class:`AutogradMeta`), so a walk can tell a leaf met twice."""

    next_functions: tuple = ()

    def __init__(self, variable: Node) -> None:
        self._variable = weakref.ref(variable)  # weak: the leaf holds this node

    @property
    def variable(self) -> Node | None:
        """The leaf (None once it is gone)."""
        return self._variable()

    def name(self) -> str:
        """``"AccumulateGrad"`` (PyTorch: ``"torch::autograd::AccumulateGrad"``)."""
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


def _edge(t: Node) -> Function | AccumulateGrad | None:
    """The node a gradient for ``t`` goes to: its Function, its leaf's accumulator, or
    None for a tensor that needs no gradient."""
    if t._ctx is not None:
        return t._ctx
    if not t.requires_grad:
        return None
    meta = meta_of(t)
    # (a copy.deepcopy'd tensor carries its original's accumulator: make its own)
    if meta.accumulator is None or meta.accumulator.variable is not t:
        meta.accumulator = AccumulateGrad(t)
    return meta.accumulator


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
            for t in reversed(inputs) if first_input_first else inputs:
                if (t.requires_grad or not grad_only) and id(t) not in visited:
                    stack.append((t, False))
    return order


def run_backward(roots: Sequence[Node], grads: Sequence[Any],
                 inputs: Sequence[Node] | None = None) -> None:
    """Accumulate d root / d leaf into ``leaf.grad`` for every leaf that requires grad
    (with ``inputs``, into those tensors' ``.grad`` only, as PyTorch's
    ``backward(inputs=...)``); what ``Tensor.backward`` and :func:`backward` run.

    ``grads`` are the gradients flowing into ``roots`` (arrays of their shapes). The
    chain rule runs once per node, in reverse topological order (:func:`propagate`),
    so each node's gradient is complete (summed over all its uses) before it is
    passed on.
    """
    if inputs is None:
        updates, _ = propagate(roots, grads)
    else:
        inputs = list({id(t): t for t in inputs}.values())  # each one's .grad once
        retained, found = propagate(roots, grads, capture=inputs)
        updates = retained + [(t, g) for t, g in zip(inputs, found) if g is not None]
    # .grad changes only once the whole pass has got through: a refused graph (or an
    # error in a backward) leaves it as it was; the lock keeps two threads' sums whole
    with _GRAD_LOCK:
        for t, g in updates:
            t._accumulate_grad(g)


def propagate(roots: Sequence[Node], grads: Sequence[Any], capture: Sequence[Node] | None = None,
              as_arrived: bool = False) -> tuple[list[tuple[Node, Any]], list[Any]]:
    """The backward pass from ``roots``, each seeded with its array in ``grads``.

    Returns ``(updates, captured)``: ``updates`` are the ``(tensor, g)`` to add to
    ``.grad`` (every leaf reached, and the tensors that ``retain_grad()``);
    ``captured``, for :func:`grad`, the gradient reaching each tensor of ``capture``
    (None where none does), after its hooks ran (a result's before them with
    ``as_arrived``, as PyTorch's ``grad()`` takes it). With ``capture`` no leaf is in
    ``updates``, and only the nodes that lead to a captured tensor are visited.
    """
    order = topological_order(roots[0]) if len(roots) == 1 else _joint_order(roots)
    grads_of: dict[int, Any] = {}
    for r, g in zip(roots, grads):
        key = id(r)
        grads_of[key] = g if key not in grads_of else grads_of[key] + g
    wanted = None if capture is None else dict.fromkeys(map(id, capture))
    needed = None if wanted is None else _leading_to(order, wanted)
    updates: list[tuple[Node, Any]] = []
    for node in reversed(order):
        g = grads_of.pop(id(node), None)
        if g is None or (needed is not None and id(node) not in needed):
            continue
        fn = node._ctx
        if wanted is not None and id(node) in wanted:
            wanted[id(node)] = g
        if node._meta is not None:  # register_hook, retain_grad: rare
            g = _run_hooks(node, node._meta.hooks, g)
            if node._meta.retains_grad and fn is not None:
                updates.append((node, g))
            if wanted is not None and id(node) in wanted and (fn is None or not as_arrived):
                wanted[id(node)] = g
        if fn is None:  # a leaf: its gradient ends here
            if wanted is None:
                updates.append((node, g))
            continue
        if fn.counters and tuple(map(_count, fn.counters)) != fn.versions:
            _check_versions(fn)  # raises: an input was changed in place since
        grads_in = fn.backward(g)
        if type(grads_in) is not tuple or len(grads_in) != len(fn.inputs):
            grads_in = _checked(fn, grads_in)  # a bare array for one input, or an error
        for i, (inp, g_in) in enumerate(zip(fn.inputs, grads_in)):
            if g_in is None or not inp.requires_grad:
                continue
            shape = inp._data.shape
            # the common case costs one comparison: an array of exactly the input's shape
            if isinstance(g_in, Node) or getattr(g_in, "shape", None) != shape:
                _check_one(fn, i, inp, g_in)  # a custom Function's mistake fails by name
                g_in = unbroadcast(fn.backend, g_in, shape)
            key = id(inp)
            # ``+`` makes a new array: an upstream gradient may be shared, never mutated.
            grads_of[key] = g_in if key not in grads_of else grads_of[key] + g_in
    return updates, [] if wanted is None else [wanted[id(t)] for t in capture]


def backward(tensors: Node | Sequence[Node],
             grad_tensors: Node | Sequence[Node | None] | None = None,
             retain_graph: bool | None = None, create_graph: bool = False,
             grad_variables: Node | Sequence[Node | None] | None = None,
             inputs: Node | Sequence[Node] | None = None) -> None:
    """``torch.autograd.backward``: the gradients of ``tensors`` (one pass for all, each
    seeded with its ``grad_tensors`` entry, None for a one-element tensor: 1) added to
    the ``.grad`` of the leaves, as ``sum(t.backward(g))`` would. ``inputs``: into
    those tensors' ``.grad`` only. ``grad_variables`` is the old name of
    ``grad_tensors``; ``retain_graph`` changes nothing; ``create_graph=True`` raises
    NotImplementedError, as in :func:`grad`.
    """
    if grad_variables is not None:
        if grad_tensors is not None:
            raise ValueError("backward(): give grad_tensors or grad_variables (its old name), "
                             "not both")
        grad_tensors = grad_variables
    _check_flags("backward()", retain_graph, create_graph)
    roots, seeds = _start("backward()", tensors, grad_tensors, "tensors", "grad_tensors")
    if inputs is not None:
        inputs = _tensors(inputs, "backward()", "inputs")
        if not inputs:
            raise RuntimeError("backward(): `inputs` cannot be empty")
        _check_inputs("backward()", inputs, roots)
    run_backward(roots, seeds, inputs)


def grad(outputs: Node | Sequence[Node], inputs: Node | Sequence[Node],
         grad_outputs: Node | Sequence[Node | None] | None = None,
         retain_graph: bool | None = None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused: bool | None = None,
         is_grads_batched: bool = False, materialize_grads: bool = False
         ) -> tuple[Node | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, as ``torch.autograd.grad``:
    a tuple with one tensor per input, and no ``.grad`` changed (a result that called
    ``retain_grad()`` still gets its ``.grad``, as in PyTorch).

    ``outputs``, ``inputs``: a tensor or a sequence of them; the inputs may be leaves
    or results. ``grad_outputs``: the gradient flowing into each output (a tensor of
    its shape, or None for a one-element output: 1). The outputs' gradients are summed.
    An input the outputs do not depend on is an error unless ``allow_unused`` (its
    gradient is then None) or ``materialize_grads`` (zeros). ``retain_graph`` changes
    nothing (the graph is always kept); ``only_inputs`` is ignored, as in PyTorch.

    Differs from PyTorch: ``create_graph=True`` (and ``is_grads_batched``) raise
    NotImplementedError. A backward here maps arrays to arrays, outside any graph, so
    a gradient cannot be differentiated again (no higher-order gradients).
    """
    _check_flags("grad()", retain_graph, create_graph)
    if checks.as_flag(is_grads_batched, "grad(): is_grads_batched"):
        raise NotImplementedError("grad(is_grads_batched=True) is not supported; call grad() "
                                  "once per row of grad_outputs")
    if checks.as_flag(materialize_grads, "grad(): materialize_grads") and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    outputs, seeds = _start("grad()", outputs, grad_outputs, "outputs", "grad_outputs")
    inputs = _tensors(inputs, "grad()", "inputs")
    if not inputs:
        raise RuntimeError("grad(): `inputs` cannot be empty")
    _check_inputs("grad()", inputs, outputs)
    retained, found = propagate(outputs, seeds, capture=inputs, as_arrived=True)
    with _GRAD_LOCK:  # PyTorch's grad() too fills the .grad of results that retain_grad()
        for t, g in retained:
            t._accumulate_grad(g)
    result: list[Node | None] = []
    for i, (t, g) in enumerate(zip(inputs, found)):
        xp = t._backend.xp
        if g is None:
            if materialize_grads:
                result.append(t._new(xp.zeros_like(t._data)))
                continue
            if not allow_unused:
                raise RuntimeError(
                    f"grad(): The differentiated Tensor at index {i} appears to not have "
                    "been used in the graph. Set allow_unused=True if this is the desired "
                    "behavior.")
            result.append(None)
            continue
        # an owned copy of the input's dtype: g may be a broadcast view or shared
        result.append(t._new(xp.array(g, dtype=t._data.dtype, order="C", copy=True)))
    return tuple(result)


def _check_flags(what: str, retain_graph: Any, create_graph: Any) -> None:
    if retain_graph is not None:
        checks.as_flag(retain_graph, f"{what}: retain_graph")
    if checks.as_flag(create_graph, f"{what}: create_graph"):
        raise NotImplementedError(
            f"{what} with create_graph=True: higher-order gradients are not supported; each "
            "op's backward computes arrays outside the graph, so a gradient has no grad_fn")


def _tensors(x: Any, what: str, name: str) -> list[Node]:
    """A tensor or a sequence of them, as a list (the outputs and inputs of grad())."""
    items = [x] if isinstance(x, Node) else x
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, Node) for t in items):
        raise TypeError(f"{what}: {name} must be a Tensor or a sequence of Tensors, got "
                        f"{type(x).__name__}")
    return list(items)


def _check_inputs(what: str, inputs: list[Node], outputs: list[Node]) -> None:
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(f"{what}: One of the differentiated Tensors does not require grad")
        if t._backend is not outputs[0]._backend:
            raise BackendMismatchError(f"{what}: inputs on backend {t._backend.name!r} for "
                                       f"outputs on {outputs[0]._backend.name!r}")


def _start(what: str, outputs: Any, grads: Any, name: str, grads_name: str
           ) -> tuple[list[Node], list[Any]]:
    """The roots of a backward pass (``outputs``, checked) and the array each starts
    from (``grads``: a tensor per output, or None for a one-element output: ones)."""
    outputs = _tensors(outputs, what, name)
    if not outputs:
        raise RuntimeError(f"{what}: {name} cannot be empty")
    if grads is None or isinstance(grads, Node):
        grads = [grads] * len(outputs) if grads is None else [grads]
    elif not isinstance(grads, (list, tuple)):
        raise TypeError(f"{what}: {grads_name} must be a Tensor, a sequence of Tensors (or "
                        f"None) or None, got {type(grads).__name__}")
    if len(grads) != len(outputs):
        raise ValueError(f"{what}: {grads_name} has {len(grads)} entries for "
                         f"{len(outputs)} {name}")
    seeds = []
    for i, (t, g) in enumerate(zip(outputs, grads)):
        if not t.requires_grad:
            raise RuntimeError(f"{what}: element {i} of {name} does not require grad and "
                               "does not have a grad_fn")
        seeds.append(_seed(what, t, g, f"{grads_name}[{i}]", f"{name}[{i}]"))
    return outputs, seeds


def _seed(what: str, t: Node, g: Node | None, g_name: str, t_name: str) -> Any:
    """The array that starts the backward pass at ``t``, from ``g`` (None: ones)."""
    if g is None:
        if t._data.size != 1:
            raise RuntimeError(f"{what}: grad can be implicitly created only for scalar "
                               f"outputs; {t_name} has shape {tuple(t._data.shape)}, so "
                               f"pass {g_name.split('[')[0]}")
        return t._backend.xp.ones(t._data.shape, dtype=t._data.dtype)
    if not isinstance(g, Node):
        raise TypeError(f"{what}: gradients can be either Tensors or None, but got "
                        f"{type(g).__name__}")
    if g._backend is not t._backend:
        raise BackendMismatchError(f"{what}: {g_name} is on backend {g._backend.name!r}, "
                                   f"{t_name} on {t._backend.name!r}")
    if g._data.shape != t._data.shape:
        raise RuntimeError(f"{what}: Mismatch in shape: {g_name} has a shape of "
                           f"{tuple(g._data.shape)} and {t_name} has a shape of "
                           f"{tuple(t._data.shape)}.")
    if g._data.dtype.kind not in "biuf":
        raise TypeError(f"{what}: {g_name} must be real numbers, got {g._data.dtype}")
    return g._data.astype(t._data.dtype, copy=False)


def _joint_order(roots: Sequence[Node]) -> list[Node]:
    """One topological order for several roots: each root's order, less what an
    earlier one holds (a node's inputs still come before it)."""
    order, seen = [], set()
    for root in roots:
        for node in topological_order(root):
            if id(node) not in seen:
                seen.add(id(node))
                order.append(node)
    return order


def _leading_to(order: list[Node], targets: dict[int, Any]) -> set[int]:
    """The ids of the nodes of ``order`` (inputs first) that are a target or were
    computed from one: the only ones a gradient for the targets passes through."""
    needed: set[int] = set()
    for node in order:
        if id(node) in targets or (node._ctx is not None and any(
                id(t) in needed for t in node._ctx.inputs)):
            needed.add(id(node))
    return needed


def _run_hooks(node: Node, hooks: dict[int, Callable[[Any], Any]], g: Any) -> Any:
    """``g`` through ``node``'s hooks in the order registered: each gets the gradient
    as a tensor, and what one returns (a tensor of the same shape and dtype) replaces
    it, as in PyTorch."""
    for hook in list(hooks.values()):  # a hook may remove itself
        out = hook(node._new(g))
        if out is None:
            continue
        what = f"hook {getattr(hook, '__name__', repr(hook))!r}"
        if not isinstance(out, Node):
            raise TypeError(f"{what} returned a {type(out).__name__}; a hook returns the new "
                            "gradient as a Tensor, or None to keep it")
        if out._backend is not node._backend:
            raise BackendMismatchError(f"{what} returned a tensor on backend "
                                       f"{out._backend.name!r}, not {node._backend.name!r}")
        if out._data.shape != g.shape:
            raise RuntimeError(f"{what} has changed the size of value: {tuple(g.shape)} "
                               f"to {tuple(out._data.shape)}")
        if out._data.dtype not in (g.dtype, node._data.dtype):
            raise RuntimeError(f"{what} has changed the type of value (was {g.dtype}, got "
                               f"{out._data.dtype})")
        g = out._data
    return g


def _checked(fn: Function, grads: Any) -> tuple[Any, ...]:
    """``fn.backward``'s result as a tuple of one gradient (or None) per input, or an
    error naming the Function: a custom Function's mistake fails here, by name, rather
    than as a wrong ``.grad`` or an error deep in NumPy. (Each gradient's type and shape
    :func:`propagate` checks as it passes it on, by :func:`_check_one`.)"""
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


"""Optimizers and gradient clipping (``tg.optim``).

Updates run on the raw arrays, outside the graph, in place: parameters keep their
identity (and their backend), so a model and its optimizer stay in step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from . import backends as _backends
from ._tensor import Tensor
from .checks import as_flag, as_nonnegative, is_real


def _param_list(params: Iterable[Tensor]) -> list[Tensor]:
    if isinstance(params, Tensor):  # iterating it would give its rows, not parameters
        raise TypeError("optimizer parameters must be a list of tensors (e.g. "
                        "model.parameters()), got one Tensor; wrap it: [p]")
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"optimizer parameters must be tensors, got a {type(p).__name__}")
        if not p.is_leaf:  # its .grad is never filled: stepping it would do nothing
            raise ValueError("optimizer got a tensor computed from others (not a leaf); pass "
                             "the leaves it came from, e.g. model.parameters()")
    # a frozen parameter (requires_grad False) is accepted and, having no .grad, skipped
    if len({id(p) for p in params}) != len(params):
        raise ValueError(
            "optimizer got the same parameter twice, so it would step it twice; pass "
            "model.parameters(), which lists a shared parameter once")
    return params


class Optimizer:
    """Base class: holds parameters; ``step()`` updates those that have a ``.grad``.

    An optimizer that keeps arrays per parameter (Adam's moments, SGD's momentum) names
    them in ``buffers``: each is a list with one array per parameter, of its shape, on
    its backend, saved by ``state_dict`` as ``<name>.<i>``.
    """

    buffers: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        if not is_real(lr):
            raise TypeError(f"learning rate must be a number, got {lr!r}")
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.params = _param_list(params)
        self.lr = float(lr)
        self._zero_buffers()

    def zero_grad(self) -> None:
        """Set each parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def _zero_buffers(self) -> None:
        for name in self.buffers:
            setattr(self, name, [p._backend.xp.zeros_like(p.data) for p in self.params])
        self._buffer_backends = [p._backend for p in self.params]  # where each one's live

    def _buffers_of(self, i: int) -> tuple[Any, ...]:
        """Parameter i's buffers, on its backend: ``Module.to()`` may have moved the
        parameter since they were made (PyTorch's optimizer state follows it too)."""
        p, old = self.params[i], self._buffer_backends[i]
        lists = [getattr(self, name) for name in self.buffers]
        if p._backend is not old:
            for arrays in lists:
                arrays[i] = p._backend.asarray(old.to_numpy(arrays[i]))
            self._buffer_backends[i] = p._backend
        return tuple(arrays[i] for arrays in lists)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Hyper-parameters and per-parameter buffers as NumPy arrays (checkpointable)."""
        state = {"lr": np.asarray(self.lr)}
        for i, p in enumerate(self.params):
            for name, array in zip(self.buffers, self._buffers_of(i), strict=True):
                state[f"{name}.{i}"] = p._backend.to_numpy(array)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``lr`` and the buffers from a ``state_dict``."""
        self._restore(state, self.buffers)

    def _restore(self, state: dict[str, Any], buffers: tuple[str, ...]) -> None:
        """Set ``lr`` and the ``buffers`` named from ``state``, all checked first, so a
        bad state changes nothing."""
        staged = {name: [self._buffer_in(state, name, i) for i in range(len(self.params))]
                  for name in buffers}
        self.lr = float(state["lr"])
        self.buffers = buffers
        for name, arrays in staged.items():
            setattr(self, name, arrays)
        self._buffer_backends = [p._backend for p in self.params]

    def _buffer_in(self, state: dict[str, Any], name: str, i: int) -> Any:
        p, key = self.params[i], f"{name}.{i}"
        if key not in state:
            raise ValueError(f"{type(self).__name__} state has no {key!r} for parameter {i}")
        value = np.asarray(state[key])
        if value.shape != p.shape:
            raise ValueError(f"{type(self).__name__} state {key} has shape {value.shape}, "
                             f"parameter has {p.shape}")
        return p._backend.asarray(value.astype(p.dtype))


class SGD(Optimizer):
    """Stochastic gradient descent: ``p ← p − lr · grad`` (D2L's ``sgd``; the loss is
    already a mean), with PyTorch's optional weight decay and (Nesterov) momentum:

        g ← grad + weight_decay · p
        b ← momentum · b + g                  (b starts at 0, so the first b is g)
        p ← p − lr · (g + momentum · b  if nesterov else  b)
    """

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        self.momentum = as_nonnegative(momentum, "SGD momentum")
        self.weight_decay = as_nonnegative(weight_decay, "SGD weight_decay")
        self.nesterov = as_flag(nesterov, "SGD nesterov")
        if self.nesterov and not self.momentum:
            raise ValueError("SGD nesterov=True needs a momentum > 0")
        self.buffers = ("momentum_buffer",) if self.momentum else ()
        super().__init__(params, lr)

    def step(self) -> None:
        """One update, in place, of each parameter that has a ``.grad``."""
        if self.momentum or self.weight_decay:  # the fused sgd_update has neither
            self._step_with_momentum_or_decay()
            return
        by_backend: dict = {}  # one backend call for all parameters (one GPU launch)
        for p in self.params:
            if p.grad is not None:
                params, grads = by_backend.setdefault(p._backend, ([], []))
                params.append(p.data)
                grads.append(p.grad.data)
                p._version.count += 1  # a graph made before the step saw the old values
        for backend, (params, grads) in by_backend.items():
            backend.sgd_update(params, grads, self.lr)

    def _step_with_momentum_or_decay(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.data
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if self.momentum:
                (b,) = self._buffers_of(i)
                b *= self.momentum
                b += g
                g = g + self.momentum * b if self.nesterov else b
            p.data -= (self.lr * g).astype(p.data.dtype, copy=False)
            p._version.count += 1

    def state_dict(self) -> dict[str, np.ndarray]:
        """``lr``, ``momentum``, ``weight_decay``, ``nesterov`` and, with momentum, the
        buffers ``momentum_buffer.i``, all as NumPy arrays."""
        return {**super().state_dict(), "momentum": np.asarray(self.momentum),
                "weight_decay": np.asarray(self.weight_decay),
                "nesterov": np.asarray(self.nesterov)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; one of plain SGD from before momentum existed has only
        ``lr``, and keeps this optimizer's momentum, weight decay and Nesterov setting."""
        momentum = as_nonnegative(float(state.get("momentum", self.momentum)), "SGD momentum")
        weight_decay = as_nonnegative(
            float(state.get("weight_decay", self.weight_decay)), "SGD weight_decay")
        nesterov = bool(state.get("nesterov", self.nesterov))
        if nesterov and not momentum:
            raise ValueError("SGD state has nesterov=True but no momentum")
        if momentum and "momentum_buffer.0" not in state:  # momentum starts afresh, as in PyTorch
            state = {**state, **{f"momentum_buffer.{i}": np.zeros(p.shape)
                                 for i, p in enumerate(self.params)}}
        self._restore(state, ("momentum_buffer",) if momentum else ())
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov


def _adam_betas(betas: Any) -> tuple[float, float]:
    pair = tuple(betas) if isinstance(betas, (tuple, list, np.ndarray)) else ()
    if len(pair) != 2 or not all(is_real(b) and 0 <= b < 1 for b in pair):
        raise ValueError(f"Adam betas must be two numbers in [0, 1), got {betas!r}")
    return float(pair[0]), float(pair[1])


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments ``m``, ``v``;
    ``weight_decay`` adds ``weight_decay · p`` to the gradient first (PyTorch's L2 penalty).

    Each parameter counts its own steps (as PyTorch does): one that had no ``.grad``
    for a while gets a full-size, bias-corrected first update when it does.
    """

    buffers = ("m", "v")

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.weight_decay = as_nonnegative(weight_decay, "Adam weight_decay")
        (self.beta1, self.beta2), self.eps = _adam_betas(betas), as_nonnegative(eps, "Adam eps")
        self.steps = [0] * len(self.params)

    def step(self) -> None:
        """One bias-corrected Adam update, in place, of each parameter that has a ``.grad``."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            m, v = self._buffers_of(i)
            self.steps[i] += 1
            c1 = 1 - self.beta1 ** self.steps[i]
            c2 = 1 - self.beta2 ** self.steps[i]
            g = p.grad.data
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * (g * g)
            step = (self.lr / c1) * m / (p._backend.xp.sqrt(v / c2) + self.eps)
            p.data -= step.astype(p.data.dtype, copy=False)
            p._version.count += 1

    def state_dict(self) -> dict[str, np.ndarray]:
        """``lr``, step counts ``t`` (one per parameter), ``betas``, ``eps``, ``weight_decay``
        and the moments ``m.i``, ``v.i`` of parameter i, all as NumPy arrays."""
        return {**super().state_dict(), "t": np.asarray(self.steps, dtype=np.int64),
                "betas": np.asarray([self.beta1, self.beta2]), "eps": np.asarray(self.eps),
                "weight_decay": np.asarray(self.weight_decay)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``; its ``t`` is one step count per parameter (or one
        count for all, as checkpoints before per-parameter counts stored it)."""
        steps = np.asarray(state["t"], dtype=np.int64)
        if steps.ndim == 0:
            steps = np.full(len(self.params), steps)
        if steps.shape != (len(self.params),):
            raise ValueError(
                f"Adam state has step counts for {steps.size} parameters, this optimizer "
                f"has {len(self.params)}")
        weight_decay = as_nonnegative(
            float(state.get("weight_decay", self.weight_decay)), "Adam weight_decay")
        betas, eps = _adam_betas(state["betas"]), as_nonnegative(float(state["eps"]), "Adam eps")
        super().load_state_dict(state)  # checks all it reads before it changes anything
        (self.beta1, self.beta2), self.eps, self.weight_decay = betas, eps, weight_decay
        self.steps = [int(t) for t in steps]


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> Tensor:
    """Scale all gradients by ``min(1, max_norm / ‖g‖)``, ``‖g‖`` the global L2 norm.

    D2L §8.5.5: ``g ← min(1, θ/‖g‖) g`` over the gradients of all parameters at
    once, so the update's direction is kept. Returns the norm before clipping as a
    0-d tensor (``float(norm)`` reads it), as PyTorch's ``clip_grad_norm_`` does; here
    it is float64, the dtype the squares are summed in.
    The factor is computed where the gradients live: on a GPU nothing is read back,
    so the host never waits for the backward to finish.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    if isinstance(params, Tensor):  # one tensor, as PyTorch accepts (not its rows)
        params = [params]
    params = list({id(p): p for p in params}.values())  # once each, even if shared
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"clip_grad_norm takes tensors (e.g. model.parameters()), got a "
                            f"{type(p).__name__}")
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        backend = params[0]._backend if params else _backends.get_backend()
        return Tensor._wrap(backend.xp.zeros((), dtype=np.float64), backend)
    backend = with_grad[0]._backend
    norm = backend.clip_by_global_norm([p.grad.data for p in with_grad], float(max_norm))
    for p in with_grad:  # scaled in place: a graph that used a .grad must see it
        p.grad._version.count += 1
    return Tensor._wrap(norm, backend)


#: PyTorch's name (``torch.nn.utils.clip_grad_norm_``): it too clips in place.
clip_grad_norm_ = clip_grad_norm

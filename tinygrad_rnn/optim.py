"""Optimizers and gradient clipping (``tg.optim``).

Updates run on the raw arrays, outside the graph, in place: parameters keep their
identity (and their backend), so a model and its optimizer stay in step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from . import backends as _backends
from .tensor import Tensor


def _param_list(params: Iterable[Tensor]) -> list[Tensor]:
    if isinstance(params, Tensor):  # iterating it would give its rows, not parameters
        raise TypeError("optimizer parameters must be a list of tensors (e.g. "
                        "model.parameters()), got one Tensor; wrap it: [p]")
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    for p in params:
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise TypeError("optimizer parameters must be tensors with requires_grad=True")
    if len({id(p) for p in params}) != len(params):
        raise ValueError(
            "optimizer got the same parameter twice, so it would step it twice; pass "
            "model.parameters(), which lists a shared parameter once")
    return params


class Optimizer:
    """Base class: holds parameters; ``step()`` updates those that have a ``.grad``."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.params = _param_list(params)
        self.lr = float(lr)

    def zero_grad(self) -> None:
        """Set each parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Hyper-parameters and per-parameter state as NumPy arrays (checkpointable)."""
        return {"lr": np.asarray(self.lr)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``lr`` from a ``state_dict``."""
        self.lr = float(state["lr"])


class SGD(Optimizer):
    """``p ← p − lr · grad`` (D2L's ``sgd``; the loss is already a mean)."""

    def step(self) -> None:
        """``p -= lr * p.grad`` in place for each parameter with a ``.grad`` (one backend call)."""
        by_backend: dict = {}  # one backend call for all parameters (one GPU launch)
        for p in self.params:
            if p.grad is not None:
                params, grads = by_backend.setdefault(p._backend, ([], []))
                params.append(p.data)
                grads.append(p.grad.data)
                p._version.count += 1  # a graph made before the step saw the old values
        for backend, (params, grads) in by_backend.items():
            backend.sgd_update(params, grads, self.lr)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments.

    Each parameter counts its own steps (as PyTorch does): one that had no ``.grad``
    for a while gets a full-size, bias-corrected first update when it does.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam betas must be two numbers in [0, 1), got {betas}")
        if not eps >= 0:
            raise ValueError(f"Adam eps must be >= 0, got {eps}")
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.steps = [0] * len(self.params)
        self.m = [p._backend.xp.zeros_like(p.data) for p in self.params]
        self.v = [p._backend.xp.zeros_like(p.data) for p in self.params]
        self._where = [p._backend for p in self.params]  # where m.i and v.i live

    def _moments(self, i: int) -> tuple[Any, Any]:
        """``m``, ``v`` of parameter i, on its backend: ``Module.to()`` may have moved
        the parameter since this optimizer was made (PyTorch's state follows it too)."""
        p, old = self.params[i], self._where[i]
        if p._backend is not old:
            self.m[i] = p._backend.asarray(old.to_numpy(self.m[i]))
            self.v[i] = p._backend.asarray(old.to_numpy(self.v[i]))
            self._where[i] = p._backend
        return self.m[i], self.v[i]

    def step(self) -> None:
        """One bias-corrected Adam update, in place, of each parameter that has a ``.grad``."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            m, v = self._moments(i)
            self.steps[i] += 1
            c1 = 1 - self.beta1 ** self.steps[i]
            c2 = 1 - self.beta2 ** self.steps[i]
            g = p.grad.data
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * (g * g)
            step = (self.lr / c1) * m / (p._backend.xp.sqrt(v / c2) + self.eps)
            p.data -= step.astype(p.data.dtype, copy=False)
            p._version.count += 1

    def state_dict(self) -> dict[str, np.ndarray]:
        """``lr``, step counts ``t`` (one per parameter), ``betas``, ``eps`` and the moments
        ``m.i``, ``v.i`` of parameter i, all as NumPy arrays."""
        state = {"lr": np.asarray(self.lr), "t": np.asarray(self.steps, dtype=np.int64),
                 "betas": np.asarray([self.beta1, self.beta2]), "eps": np.asarray(self.eps)}
        for i, p in enumerate(self.params):
            m, v = self._moments(i)
            state[f"m.{i}"] = p._backend.to_numpy(m)
            state[f"v.{i}"] = p._backend.to_numpy(v)
        return state

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
        staged = []
        for i, p in enumerate(self.params):
            for name in ("m", "v"):
                value = np.asarray(state[f"{name}.{i}"])
                if value.shape != p.shape:
                    raise ValueError(
                        f"Adam state {name}.{i} has shape {value.shape}, parameter has {p.shape}")
                staged.append(p._backend.asarray(value.astype(p.dtype)))
        self.lr = float(state["lr"])
        self.beta1, self.beta2 = (float(b) for b in state["betas"])
        self.eps = float(state["eps"])
        self.steps = [int(t) for t in steps]
        self.m, self.v = staged[0::2], staged[1::2]
        self._where = [p._backend for p in self.params]


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

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
    params = list(params)
    if not params:
        raise ValueError("optimizer got an empty parameter list")
    for p in params:
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise TypeError("optimizer parameters must be tensors with requires_grad=True")
    return params


class Optimizer:
    """Base class: holds parameters; ``step()`` updates those that have a ``.grad``."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.params = _param_list(params)
        self.lr = float(lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Hyper-parameters and per-parameter state as NumPy arrays (checkpointable)."""
        return {"lr": np.asarray(self.lr)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr = float(state["lr"])


class SGD(Optimizer):
    """``p ← p − lr · grad`` (D2L's ``sgd``; the loss is already a mean)."""

    def step(self) -> None:
        by_backend: dict = {}  # one backend call for all parameters (one GPU launch)
        for p in self.params:
            if p.grad is not None:
                params, grads = by_backend.setdefault(p._backend, ([], []))
                params.append(p.data)
                grads.append(p.grad.data)
        for backend, (params, grads) in by_backend.items():
            backend.sgd_update(params, grads, self.lr)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = [p._backend.xp.zeros_like(p.data) for p in self.params]
        self.v = [p._backend.xp.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        self.t += 1
        c1 = 1 - self.beta1 ** self.t
        c2 = 1 - self.beta2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad.data
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * (g * g)
            step = (self.lr / c1) * m / (p._backend.xp.sqrt(v / c2) + self.eps)
            p.data -= step.astype(p.data.dtype, copy=False)

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {"lr": np.asarray(self.lr), "t": np.asarray(self.t),
                 "betas": np.asarray([self.beta1, self.beta2]), "eps": np.asarray(self.eps)}
        for i, (p, m, v) in enumerate(zip(self.params, self.m, self.v)):
            state[f"m.{i}"] = p._backend.to_numpy(m)
            state[f"v.{i}"] = p._backend.to_numpy(v)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lr, self.t = float(state["lr"]), int(state["t"])
        self.beta1, self.beta2 = (float(b) for b in state["betas"])
        self.eps = float(state["eps"])
        for i, p in enumerate(self.params):
            for name, buf in (("m", self.m), ("v", self.v)):
                value = np.asarray(state[f"{name}.{i}"])
                if value.shape != p.shape:
                    raise ValueError(
                        f"Adam state {name}.{i} has shape {value.shape}, parameter has {p.shape}")
                buf[i] = p._backend.asarray(value.astype(p.dtype))


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> Tensor:
    """Scale all gradients by ``min(1, max_norm / ‖g‖)``, ``‖g‖`` the global L2 norm.

    D2L §8.5.5: ``g ← min(1, θ/‖g‖) g`` over the gradients of all parameters at
    once, so the update's direction is kept. Returns the norm before clipping as a
    0-d float64 tensor (``float(norm)`` reads it), as PyTorch's ``clip_grad_norm_`` does.
    The factor is computed where the gradients live: on a GPU nothing is read back,
    so the host never waits for the backward to finish.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    params = list(params)  # a tuple or generator is iterated twice below
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        backend = params[0]._backend if params else _backends.get_backend()
        return Tensor._wrap(backend.xp.zeros((), dtype=np.float64), backend)
    backend = with_grad[0]._backend
    norm = backend.clip_by_global_norm([p.grad.data for p in with_grad], float(max_norm))
    return Tensor._wrap(norm, backend)

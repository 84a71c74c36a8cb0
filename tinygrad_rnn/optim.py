"""Optimizers and gradient clipping (``tg.optim``).

Updates run on the raw arrays, outside the graph, in place: parameters keep their
identity (and their backend), so a model and its optimizer stay in step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

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
        for p in self.params:
            if p.grad is not None:
                p.data -= p.data.dtype.type(self.lr) * p.grad.data


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


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients by ``min(1, max_norm / ‖g‖)``, ``‖g‖`` the global L2 norm.

    D2L §8.5.5: ``g ← min(1, θ/‖g‖) g`` over the gradients of all parameters at
    once, so the update's direction is kept. Returns the norm before clipping.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    params = list(params)  # a tuple or generator is iterated twice below
    grads = [p.grad.data for p in params if p.grad is not None]
    if not grads:
        return 0.0
    backend = next(p for p in params if p.grad is not None)._backend
    norm = math.sqrt(float(backend.global_norm_sq(grads)))
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads:
            g *= g.dtype.type(scale)
    return norm

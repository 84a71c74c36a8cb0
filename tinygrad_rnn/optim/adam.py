"""Adam (with AMSGrad) and AdamW, torch's algorithms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..checks import is_real
from .optimizer import Optimizer, check_flag, check_number


def lerp_(a: Any, b: Any, weight: float) -> None:
    """``a ← a + weight · (b − a)`` in place, as ``torch.lerp_`` rounds it: from the
    nearer end (for weight ≥ 0.5, ``b − (b − a)(1 − weight)``)."""
    if abs(weight) < 0.5:
        a += weight * (b - a)
    else:
        a[...] = b - (b - a) * (1 - weight)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), ``torch.optim.Adam``'s algorithm. Per parameter at
    step t, ``g`` its gradient (``-g`` with ``maximize``):

        g ← g + weight_decay · p                (decoupled: p ← p · (1 − lr · weight_decay))
        m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
        v̂ ← max(v̂, v) with amsgrad, else v
        p ← p − lr / (1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)

    Each parameter counts its own steps (as torch's): one that had no ``.grad`` for a
    while gets a full-size, bias-corrected first update when it does. State:
    ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq`` (amsgrad).
    """

    _LEGACY_BUFFERS = {"m": "exp_avg", "v": "exp_avg_sq"}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        super()._check_group(group)
        check_number(name, group, "eps")
        check_number(name, group, "weight_decay")
        for flag in ("amsgrad", "maximize", "decoupled_weight_decay"):
            check_flag(name, group, flag)
        betas = group["betas"]
        pair = tuple(betas) if isinstance(betas, (tuple, list, np.ndarray)) else ()
        rule = f"{name} betas must be two numbers in [0, 1)"
        if len(pair) != 2 or not all(is_real(b) for b in pair):
            raise ValueError(f"{rule}, got {betas!r}")
        for i, b in enumerate(pair):
            if not 0 <= b < 1:
                raise ValueError(f"Invalid beta parameter at index {i}: {b} ({rule})")
        group["betas"] = (float(pair[0]), float(pair[1]))

    def _legacy_needs(self, group: dict[str, Any]) -> bool:
        return True  # an Adam state without its moments is not one

    def step(self) -> None:
        """One bias-corrected update, in place, of each parameter that has a ``.grad``."""
        for group in self.param_groups:
            (beta1, beta2), lr, eps = group["betas"], group["lr"], group["eps"]
            weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
            for p, g, state in self._with_grad(group):
                if "step" not in state:
                    state.update(step=0, exp_avg=self._zeros(p), exp_avg_sq=self._zeros(p))
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = self._zeros(p)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                if weight_decay:
                    if group["decoupled_weight_decay"]:
                        p.data *= 1 - lr * weight_decay
                    else:
                        g = g + weight_decay * p.data
                lerp_(m, g, 1 - beta1)
                v *= beta2
                v += (1 - beta2) * g * g
                if amsgrad:
                    v = state["max_exp_avg_sq"]
                    p._backend.xp.maximum(v, state["exp_avg_sq"], out=v)
                denom = p._backend.xp.sqrt(v) / (1 - beta2 ** t) ** 0.5 + eps
                p.data -= ((lr / (1 - beta1 ** t)) * m / denom).astype(p.data.dtype, copy=False)

    # what code before parameter groups read: per parameter, in ``params`` order
    @property
    def steps(self) -> list[int]:
        """Each parameter's step count (0 before its first step)."""
        return [self.state.get(p, {}).get("step", 0) for p in self.params]

    @property
    def m(self) -> list[Any]:
        """Each parameter's first moment ``exp_avg`` (zeros before its first step)."""
        return [self._moment(p, "exp_avg") for p in self.params]

    @property
    def v(self) -> list[Any]:
        """Each parameter's second moment ``exp_avg_sq`` (zeros before its first step)."""
        return [self._moment(p, "exp_avg_sq") for p in self.params]

    def _moment(self, p: Tensor, key: str) -> Any:
        return self._state_of(p)[key] if key in self.state.get(p, {}) else self._zeros(p)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), ``torch.optim.AdamW``:
    ``p ← p · (1 − lr · weight_decay)`` before the Adam update, which sees the plain
    gradient. Default ``weight_decay=1e-2``."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

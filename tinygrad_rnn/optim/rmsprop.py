"""RMSprop, torch's algorithm (with its momentum and centered variants)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._tensor import Tensor
from .adam import lerp_
from .optimizer import Optimizer, check_flag, check_number


class RMSprop(Optimizer):
    """RMSprop (Hinton), ``torch.optim.RMSprop``'s algorithm. Per parameter, ``g`` its
    gradient (``-g`` with ``maximize``):

        g ← g + weight_decay · p
        s ← α s + (1 − α) g²                       (square_avg)
        d ← √(s − ḡ²) + eps  with ḡ ← α ḡ + (1 − α) g  if centered,  else  √s + eps
        b ← momentum · b + g / d,  p ← p − lr · b   if momentum > 0,  else  p ← p − lr · g / d
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                                  "centered": centered, "weight_decay": weight_decay,
                                  "maximize": maximize})

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for key in ("eps", "momentum", "weight_decay", "alpha"):
            check_number("RMSprop", group, key)
        check_flag("RMSprop", group, "centered")
        check_flag("RMSprop", group, "maximize")

    def step(self) -> None:
        """One update, in place, of each parameter that has a ``.grad``."""
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            momentum, weight_decay = group["momentum"], group["weight_decay"]
            for p, g, state in self._with_grad(group):
                if "step" not in state:
                    state.update(step=0, square_avg=self._zeros(p))
                if momentum > 0 and "momentum_buffer" not in state:
                    state["momentum_buffer"] = self._zeros(p)
                if group["centered"] and "grad_avg" not in state:
                    state["grad_avg"] = self._zeros(p)
                state["step"] += 1
                if weight_decay:
                    g = g + weight_decay * p.data
                s = state["square_avg"]
                s *= alpha
                s += (1 - alpha) * g * g
                if group["centered"]:
                    mean = state["grad_avg"]
                    lerp_(mean, g, 1 - alpha)
                    avg = p._backend.xp.sqrt(s - mean * mean) + eps
                else:
                    avg = p._backend.xp.sqrt(s) + eps
                if momentum > 0:
                    b = state["momentum_buffer"]
                    b *= momentum
                    b += g / avg
                    p.data -= (lr * b).astype(p.data.dtype, copy=False)
                else:
                    p.data -= (lr * g / avg).astype(p.data.dtype, copy=False)

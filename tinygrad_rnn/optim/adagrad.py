"""Adagrad, torch's algorithm."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._tensor import Tensor
from .optimizer import Optimizer, check_flag, check_number


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), ``torch.optim.Adagrad``'s algorithm. Per parameter
    at step t, ``g`` its gradient (``-g`` with ``maximize``):

        g ← g + weight_decay · p
        s ← s + g²                 (``sum``, starting at initial_accumulator_value)
        p ← p − lr / (1 + (t − 1) · lr_decay) · g / (√s + eps)

    As torch's, every parameter's state is made with the optimizer (``step`` 0, ``sum``).
    """

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-2,
                 lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *,
                 maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "maximize": maximize})

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_number("Adagrad", group, key)
        check_flag("Adagrad", group, "maximize")

    def _init_group(self, group: dict[str, Any]) -> None:
        for p in group["params"]:
            state = self._state_of(p)
            state.setdefault("step", 0)
            state.setdefault("sum", self._zeros(p, group["initial_accumulator_value"]))

    def step(self) -> None:
        """One update, in place, of each parameter that has a ``.grad``."""
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            for p, g, state in self._with_grad(group):
                state["step"] += 1
                if group["weight_decay"]:
                    g = g + group["weight_decay"] * p.data
                clr = lr / (1 + (state["step"] - 1) * lr_decay)
                s = state["sum"]
                s += g * g
                p.data -= (clr * g / (p._backend.xp.sqrt(s) + eps)).astype(p.data.dtype,
                                                                          copy=False)

"""SGD with torch's momentum, dampening, Nesterov momentum, weight decay and maximize."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._tensor import Tensor
from .optimizer import Optimizer, check_flag, check_number


class SGD(Optimizer):
    """Stochastic gradient descent, ``torch.optim.SGD``'s algorithm (D2L's ``sgd`` is
    the plain case; the loss is already a mean). Per parameter, with ``g`` its gradient
    (``-g`` with ``maximize``):

        g ← g + weight_decay · p
        b ← g  at the first step, then  momentum · b + (1 − dampening) · g
        g ← g + momentum · b  if nesterov  else  b          (only with momentum > 0)
        p ← p − lr · g

    Plain SGD (no momentum, no weight decay) runs as one backend call for all
    parameters of a group (one GPU launch: the update the CUDA graph replays).
    """

    _LEGACY_BUFFERS = {"momentum_buffer": "momentum_buffer"}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3,
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_number("SGD", group, "momentum")
        check_number("SGD", group, "dampening", "finite")
        check_number("SGD", group, "weight_decay")
        check_flag("SGD", group, "maximize")
        if check_flag("SGD", group, "nesterov") and (
                group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening (SGD "
                             f"nesterov=True has momentum={group['momentum']}, "
                             f"dampening={group['dampening']})")

    def step(self) -> None:
        """One update, in place, of each parameter that has a ``.grad``."""
        for group in self.param_groups:
            if group["momentum"] or group["weight_decay"]:
                self._step_group(group)
                continue
            # one backend call for all parameters (one GPU launch); maximize: p += lr·g
            lr = -group["lr"] if group["maximize"] else group["lr"]
            by_backend: dict = {}
            for p in group["params"]:
                if p.grad is not None:
                    params, grads = by_backend.setdefault(p._backend, ([], []))
                    params.append(p.data)
                    grads.append(p.grad.data)
                    p._version.count += 1  # a graph made before the step saw the old values
            for backend, (params, grads) in by_backend.items():
                backend.sgd_update(params, grads, lr)

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        for p, g, state in self._with_grad(group):
            if weight_decay:
                g = g + weight_decay * p.data
            if momentum:
                b = state.get("momentum_buffer")
                if b is None:  # torch starts the buffer at the first gradient, undamped
                    b = state["momentum_buffer"] = g.copy()
                else:
                    b *= momentum
                    b += g if dampening == 0 else (1 - dampening) * g
                g = g + momentum * b if nesterov else b
            p.data -= (lr * g).astype(p.data.dtype, copy=False)

    # what the CUDA graph (and code before parameter groups) reads: over all groups
    @property
    def momentum(self) -> float:
        """The largest group momentum (0 only if no group has momentum)."""
        return max(g["momentum"] for g in self.param_groups)

    @property
    def weight_decay(self) -> float:
        """The largest group weight decay (0 only if no group decays)."""
        return max(g["weight_decay"] for g in self.param_groups)

    @property
    def nesterov(self) -> bool:
        """Whether any group uses Nesterov momentum."""
        return any(g["nesterov"] for g in self.param_groups)

"""Gradient clipping: D2L's global-norm clip and torch's ``clip_grad_norm_``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import backends as _backends
from .._tensor import Tensor
from ..checks import is_real


def _with_grad(params: Iterable[Tensor] | Tensor, who: str) -> tuple[list[Tensor], list[Tensor]]:
    """(the tensors once each, even if shared; those of them that have a ``.grad``)."""
    if isinstance(params, Tensor):  # one tensor, as torch accepts (not its rows)
        params = [params]
    params = list({id(p): p for p in params}.values())
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{who} takes tensors (e.g. model.parameters()), got a "
                            f"{type(p).__name__}")
    return params, [p for p in params if p.grad is not None]


def _nonfinite(norm_type: float) -> RuntimeError:
    """torch's error for a NaN or infinite total norm, word for word."""
    return RuntimeError(
        f"The total norm of order {float(norm_type)} for gradients from `parameters` is "
        "non-finite, so it cannot be clipped. To disable this error and scale the "
        "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")


def clip_grad_norm(params: Iterable[Tensor] | Tensor, max_norm: float,
                   error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients by ``min(1, max_norm / ‖g‖)``, ``‖g‖`` the global L2 norm.

    D2L §8.5.5: ``g ← min(1, θ/‖g‖) g`` over the gradients of all parameters at
    once, so the update's direction is kept. Returns the norm before clipping as a
    0-d tensor (``float(norm)`` reads it); here it is float64, the dtype the squares
    are summed in. Unlike torch's :func:`clip_grad_norm_` the factor has no ``+ 1e-6``
    (so a norm at θ is left exactly as it is) and a NaN norm scales nothing.
    The factor is computed where the gradients live: on a GPU nothing is read back,
    so the host never waits for the backward to finish. With ``error_if_nonfinite=True``
    (torch's argument) a NaN or infinite norm raises torch's RuntimeError before any
    gradient is touched; that reads the norm back (a GPU waits) and sums it twice.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    params, with_grad = _with_grad(params, "clip_grad_norm")
    if not with_grad:
        backend = params[0]._backend if params else _backends.get_backend()
        return Tensor._wrap(backend.xp.zeros((), dtype=np.float64), backend)
    backend = with_grad[0]._backend
    if error_if_nonfinite and not bool(backend.xp.isfinite(
            backend.global_norm_sq([p.grad.data for p in with_grad]))):
        raise _nonfinite(2.0)  # before scaling: the gradients stay as backward left them
    norm = backend.clip_by_global_norm([p.grad.data for p in with_grad], float(max_norm))
    for p in with_grad:  # scaled in place: a graph that used a .grad must see it
        p.grad._version.count += 1
    return Tensor._wrap(norm, backend)


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """``torch.nn.utils.clip_grad_norm_``: scale the gradients in place by
    ``min(1, max_norm / (total_norm + 1e-6))``, ``total_norm`` the ``norm_type``-norm of
    all of them together (``inf``: the largest magnitude). Returns ``total_norm`` as a
    0-d tensor in the gradients' dtype (0.0 when none has a gradient).

    A NaN or infinite norm scales the gradients by NaN or 0, as torch's does, or with
    ``error_if_nonfinite=True`` raises a RuntimeError (that check reads the norm back
    from a GPU). Deliberately unlike torch, a negative or NaN ``max_norm`` (which would
    flip or poison every gradient) is a ValueError.
    """
    if not is_real(max_norm):
        raise TypeError(f"clip_grad_norm_ max_norm must be a number, got {max_norm!r}")
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_ max_norm must be >= 0, got {max_norm}")
    if isinstance(norm_type, str) and norm_type.lower() in ("inf", "infinity"):
        norm_type = math.inf  # torch takes 'inf' too
    if not is_real(norm_type) or not norm_type > 0:
        raise ValueError(f"clip_grad_norm_ norm_type must be a number > 0 or inf, got "
                         f"{norm_type!r}")
    params, with_grad = _with_grad(parameters, "clip_grad_norm_")
    if not with_grad:
        backend = params[0]._backend if params else _backends.get_backend()
        return Tensor._wrap(backend.xp.zeros((), dtype=np.float32), backend)
    backend = with_grad[0]._backend
    xp, grads = backend.xp, [p.grad.data for p in with_grad]
    dtype = np.result_type(*(g.dtype for g in grads))
    if norm_type == 2:  # the sum of squares in float64 (a float32 one overflows early)
        total = xp.sqrt(backend.global_norm_sq(grads))
    elif norm_type == math.inf:
        total = xp.max(xp.stack([xp.max(xp.abs(g)) if g.size else xp.zeros((), g.dtype)
                                 for g in grads]))
    else:
        p = float(norm_type)
        total = sum(xp.sum(xp.abs(g.astype(np.float64)) ** p) for g in grads) ** (1 / p)
    total = xp.asarray(total, dtype=dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise _nonfinite(norm_type)
    factor = xp.minimum(max_norm / (total + 1e-6), 1.0)
    with np.errstate(invalid="ignore", over="ignore"):  # inf · 0 is NaN here, as in torch
        for p, g in zip(with_grad, grads, strict=True):
            g *= factor.astype(g.dtype)
            p.grad._version.count += 1  # scaled in place: a graph that used a .grad sees it
    return Tensor._wrap(total, backend)

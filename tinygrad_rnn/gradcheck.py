"""``gradcheck``: compare autograd's gradients with central finite differences in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._tensor import Tensor
from .autograd import no_grad


class GradcheckError(AssertionError):
    """Autograd and finite differences disagree; the message names input and element."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor] | Tensor, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check ``fn``'s gradients w.r.t. every input that requires grad.

    The inputs are copied to float64 (float32 finite differences carry ~1e-3
    relative error at any step size). A non-scalar output is reduced as
    ``sum(fn(*inputs) * v)`` with a fixed random ``v``, so every output element
    contributes with a different weight (the values reported are that sum's
    gradients); a scalar output is checked as it is. Each element ``x_i`` is
    perturbed by ``±eps``: ``(L(x + eps e_i) - L(x - eps e_i)) / 2 eps``.

    Returns True, or raises :class:`GradcheckError` naming the input and the
    worst element (index, analytic and numeric values); a NaN or infinite
    gradient on either side fails.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(t).__name__}, not a Tensor")
    xs = [Tensor(t.numpy().astype(np.float64), dtype=np.float64, backend=t._backend)
          if t.dtype.kind == "f" else t for t in inputs]
    for x, t in zip(xs, inputs):
        if t.requires_grad:
            x.requires_grad_(True)
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")

    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return one Tensor, got {type(out).__name__}")
    v = np.random.default_rng(seed).standard_normal(out.shape) if out.numel() != 1 else np.ones(
        out.shape)
    weight = Tensor(v, dtype=np.float64, backend=out._backend)
    hint = "" if out.dtype == np.float64 else (
        f"; fn's output is {out.dtype}: finite differences need float64 throughout")

    def objective() -> float:
        with no_grad():  # finite differences need values only
            return float((fn(*xs) * weight).sum().item())

    first, second = objective(), objective()
    if not np.isfinite(first):
        raise GradcheckError(f"gradcheck: fn's output is {first} at these inputs (outside "
                             "its domain?); finite differences need finite values")
    if first != second:
        raise GradcheckError("gradcheck: fn gives different values for the same inputs (is it "
                             "random?); finite differences need a deterministic fn")
    if out.requires_grad:  # else the graph was cut (detach, no_grad): autograd gives 0
        (out * weight).sum().backward()
    for i in checked:
        x = xs[i]
        analytic = x.grad.numpy() if x.grad is not None else np.zeros(x.shape)
        base = x.numpy()
        numeric = np.zeros_like(base)
        try:
            for idx in np.ndindex(base.shape):
                shifted = base.copy()
                shifted[idx] = base[idx] + eps
                x.data = x._backend.asarray(shifted)
                plus = objective()
                shifted[idx] = base[idx] - eps
                x.data = x._backend.asarray(shifted)
                minus = objective()
                numeric[idx] = (plus - minus) / (2 * eps)
        finally:
            x.data = x._backend.asarray(base)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        bad = ~(err <= 0)  # NaN compares False: a NaN on either side fails
        if bad.any():
            worst = np.unravel_index(np.argmax(np.where(np.isnan(err), np.inf, err)), err.shape)
            where = tuple(int(w) for w in worst)
            raise GradcheckError(
                f"gradcheck failed for input {i} (shape {x.shape}) at element {where}: "
                f"autograd {analytic[worst]:.8g}, finite difference {numeric[worst]:.8g} "
                f"(atol={atol}, rtol={rtol}, eps={eps}){hint}"
            )
    return True

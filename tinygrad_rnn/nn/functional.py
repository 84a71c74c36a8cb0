"""Stateless functions: encodings, softmax family and losses (``tg.nn.functional``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ..backends import read_back_allowed
from ..checks import as_flag, is_real
from ..functions import getitem
from ..ops import SoftmaxCrossEntropy
from ..random import generator


def _expect_tensor(x: Any, fn: str, what: str) -> Tensor:
    """``x`` if it is a Tensor, else a TypeError naming the function and the argument."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn} expects {what} as a Tensor, got {type(x).__name__}; wrap it "
                        "in tg.Tensor(...)")
    return x


def _as_indices(indices: Any, n: int, what: str, like: Tensor | None = None) -> Tensor:
    """Integer ``indices`` as a tensor (on ``like``'s backend), each checked to lie in [0, n).

    Host data (a list, a NumPy array) is checked before it moves, which costs nothing;
    a tensor already on a GPU is checked there, with one read-back of its min and max
    (none within :func:`tinygrad_rnn.backends.no_read_back`).
    """
    if isinstance(indices, Tensor):
        if like is not None:
            like._check_same_backend(indices, what)
        data, backend = indices.data, indices._backend
    else:
        data, backend = np.asarray(indices), None
    if data.dtype.kind not in "iu":
        raise TypeError(f"{what} must be an integer tensor, got {data.dtype}")
    if data.size and (backend is None or read_back_allowed()):
        if backend is None:
            low, high = int(data.min()), int(data.max())
        else:  # one array: one read-back from a GPU, not two
            bounds = backend.to_numpy(backend.xp.stack((data.min(), data.max())))
            low, high = int(bounds[0]), int(bounds[1])
        if low < 0 or high >= n:
            raise IndexError(
                f"{what} out of range: values span [{low}, {high}] but must lie in [0, {n - 1}]")
    if isinstance(indices, Tensor):
        return indices
    return Tensor(data, backend=like._backend if like is not None else None)


def one_hot(indices: Any, num_classes: int, dtype: Any = np.float32) -> Tensor:
    """``indices`` (...) -> (..., num_classes) with a 1 at each index (no gradient)."""
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool):
        raise TypeError(f"one_hot: num_classes must be an int, got {num_classes!r}")
    return _one_hot(_as_indices(indices, num_classes, "one_hot indices"), num_classes, dtype)


def _one_hot(indices: Tensor, num_classes: int, dtype: Any) -> Tensor:
    """:func:`one_hot` of integer indices already checked to lie in [0, num_classes)."""
    classes = indices._backend.xp.arange(num_classes)
    return Tensor._wrap((indices.data[..., None] == classes).astype(dtype), indices._backend)


def embedding(indices: Any, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (V, h) picked by integer ``indices`` (...) -> (..., h).

    Equal to ``one_hot(indices, V) @ weight`` without building the one-hot matrix;
    the backward scatter-adds into the picked rows.
    """
    weight = _expect_tensor(weight, "embedding", "weight")
    indices = _as_indices(indices, weight.shape[0], "embedding indices", like=weight)
    return getitem(weight, indices)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` (in
    ``x``'s dtype), so the expectation is ``x``; a fresh mask per call, drawn from
    ``tg.manual_seed``'s generator. Identity when not ``training`` or ``p = 0``."""
    x = _expect_tensor(x, "dropout", "x")
    if not is_real(p) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p!r}")
    if not as_flag(training, "dropout: training") or p == 0:
        return x
    if x.dtype.kind != "f":
        raise TypeError(f"dropout expects a float tensor, got {x.dtype}")
    be = x._backend
    if p == 1:
        mask = be.xp.zeros(x.shape, dtype=x.dtype)
    else:
        keep = be.random_uniform(generator(), x.shape, 0.0, 1.0, np.float64) >= p
        mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - p))
    return x * Tensor._wrap(mask, be)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``x - logsumexp(x)`` along ``axis``, shifted by the (detached) max so it cannot overflow."""
    x = _expect_tensor(x, "log_softmax", "x")._floats()
    shifted = x - x.amax(axis=axis, keepdims=True).detach()
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably."""
    x = _expect_tensor(x, "softmax", "x")._floats()
    e = (x - x.amax(axis=axis, keepdims=True).detach()).exp()
    return e / e.sum(axis=axis, keepdims=True)


def cross_entropy(logits: Tensor, targets: Any, reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``logits`` (N, C) against integer class ``targets`` (N,).

    ``reduction``: ``'mean'`` (D2L's loss; perplexity = exp of it), ``'sum'`` or
    ``'none'`` (per-row, shape (N,)). One fused backend kernel each way.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    logits = _expect_tensor(logits, "cross_entropy", "logits")
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got {logits.shape}")
    if logits.dtype.kind != "f":
        raise TypeError(f"cross_entropy expects float logits, got {logits.dtype}")
    targets = _as_indices(targets, logits.shape[1], "cross_entropy targets", like=logits)
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"cross_entropy: targets of shape {targets.shape} do not match logits "
            f"{logits.shape}; expected ({logits.shape[0]},)")
    # targets go in as a tensor input: a change made to them before backward() is seen
    return SoftmaxCrossEntropy.apply(logits, targets, reduction=reduction)


def mse_loss(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error ``(pred - target)²``, averaged (``'mean'``), summed or per element."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    pred = _expect_tensor(pred, "mse_loss", "pred")
    target = pred._lift(target)
    if target.shape != pred.shape:
        raise ValueError(
            f"mse_loss: pred shape {pred.shape} and target shape {target.shape} differ")
    sq = (pred - target) ** 2
    return sq if reduction == "none" else (sq.sum() if reduction == "sum" else sq.mean())

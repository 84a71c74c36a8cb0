"""Stateless functions: encodings, softmax family and losses (``tg.nn.functional``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ..backends import read_back_allowed
from ..checks import (
    as_flag,
    as_int,
    check_broadcast,
    dim_alias,
    is_real,
    normalize_axes,
    normalize_dim,
)
from ..elementwise import where
from ..functions import getitem
from ..ops import (
    ELU,
    GELU,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    LogSigmoid,
    SoftmaxCrossEntropy,
    Softplus,
)
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


def one_hot(tensor: Any, num_classes: int = -1, dtype: Any = None) -> Tensor:
    """``tensor`` of class indices (...) -> (..., num_classes) with a 1 at each index,
    int64 as torch's (no gradient); ``num_classes=-1`` takes the largest index + 1.
    ``dtype`` (an extension; torch has none) makes it another dtype in one step, e.g.
    float32 for ``one_hot(X, V, "float32") @ W``."""
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool):
        raise TypeError(f"one_hot: num_classes must be an int, got {num_classes!r}")
    dtype = np.dtype(np.int64) if dtype is None else np.dtype(dtype)
    if num_classes == -1:
        data = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
        if data.dtype.kind not in "iu":
            raise TypeError(f"one_hot indices must be an integer tensor, got {data.dtype}")
        if data.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass it")
        if isinstance(tensor, Tensor) and not (read_back_allowed()
                                               or tensor._backend.xp is np):
            raise RuntimeError("one_hot: num_classes=-1 reads the largest index back from "
                               "the device, which no_read_back() forbids; pass num_classes")
        num_classes = int(data.max()) + 1
    elif num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be >= 0 or -1, got {num_classes}")
    return _one_hot(_as_indices(tensor, num_classes, "one_hot indices"), num_classes, dtype)


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


def _softmax_args(input: Any, dim: Any, axis: Any, dtype: Any, fn: str) -> tuple[Tensor, int]:
    """The input (cast to ``dtype`` if given, else to floats) and the one dim: torch's
    ``dim=`` or NumPy's ``axis=``; neither means the last dim (torch's deprecated implicit
    choice would take dim 0 of a 0-, 1- or 3-d input: here it is always -1)."""
    x = _expect_tensor(input, fn, "x")
    x = x._floats() if dtype is None else x.astype(dtype)
    dim = dim_alias(dim, axis, fn)
    return x, normalize_dim(-1 if dim is None else dim, x.ndim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: Any = None, *, axis: int | None = None) -> Tensor:
    """``x - logsumexp(x)`` along ``dim`` (the last if None), shifted by the (detached)
    max so it cannot overflow; ``dtype`` casts the input first, as torch's."""
    x, d = _softmax_args(input, dim, axis, dtype, "log_softmax")
    shifted = x - x.amax(d, True).detach()
    return shifted - shifted.exp().sum(d, True).log()


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None,
            *, axis: int | None = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim`` (the last if None), computed stably;
    ``dtype`` casts the input first, as torch's."""
    x, d = _softmax_args(input, dim, axis, dtype, "softmax")
    e = (x - x.amax(d, True).detach()).exp()
    return e / e.sum(d, True)


def cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None,
                  size_average: bool | None = None, ignore_index: int = -100,
                  reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits ``input`` (N, C), (C,) or (N, C, d1, ...) against class
    indices ``target`` (N,), () or (N, d1, ...) — or class probabilities of input's
    shape (``torch.nn.functional.cross_entropy``).

    ``reduction``: ``'mean'`` (D2L's loss; perplexity = exp of it; with ``weight``, the
    weighted mean ``Σ w[t_i] l_i / Σ w[t_i]``), ``'sum'`` or ``'none'``. Targets equal
    to ``ignore_index`` add nothing and count for nothing. ``label_smoothing`` mixes
    the one-hot target with the uniform distribution, as torch (the same formula).

    The default call (logits (N, C), class indices, no weight, no smoothing, every
    target in [0, C)) is one fused backend kernel each way; the other cases are
    composed from ``log_softmax`` and :func:`nll_loss`.
    """
    reduction = _reduction(size_average, reduce, reduction)
    logits = _expect_tensor(input, "cross_entropy", "logits")
    if logits.dtype.kind != "f":
        raise TypeError(f"cross_entropy expects float logits, got {logits.dtype}")
    if logits.ndim == 0:
        raise ValueError("cross_entropy expects logits of shape (N, C), (C,) or "
                         "(N, C, d1, ...), got a 0-d tensor")
    smoothing = _label_smoothing(label_smoothing)
    ignore_index = as_int(ignore_index, "cross_entropy: ignore_index")
    C = logits.shape[1 if logits.ndim > 1 else 0]
    weight = _class_weight(weight, C, logits, "cross_entropy")
    t_data = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t_data.dtype.kind == "f":
        if tuple(t_data.shape) != logits.shape:
            raise TypeError(
                f"cross_entropy targets must be an integer tensor of class indices, or float "
                f"probabilities of the logits' shape {logits.shape}; got float targets of "
                f"shape {tuple(t_data.shape)}")
        return _cross_entropy_probs(logits, logits._lift(target), weight, reduction, smoothing)
    expected = logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()
    if tuple(t_data.shape) != expected:
        raise ValueError(
            f"cross_entropy: logits (N, C) or (N, C, d1, ...) take targets (N,) or "
            f"(N, d1, ...); targets of shape {tuple(t_data.shape)} do not match logits "
            f"{logits.shape}; expected {expected}")
    if logits.ndim == 2 and weight is None and smoothing == 0 and not 0 <= ignore_index < C:
        try:  # the fused path, with the one range check (read-back) it always had
            targets = _as_indices(target, C, "cross_entropy targets", like=logits)
        except IndexError:
            if not _any_equal(target, ignore_index):
                raise
        else:  # targets go in as a tensor input: a change made before backward() is seen
            return SoftmaxCrossEntropy.apply(logits, targets, reduction=reduction)
    targets = _targets(target, C, ignore_index, logits, "cross_entropy")
    log_probs = log_softmax(logits, 1 if logits.ndim > 1 else 0)
    loss = _nll(log_probs, targets, weight, ignore_index, reduction)
    if smoothing == 0:
        return loss
    class_dim = 1 if logits.ndim > 1 else 0
    weighted = log_probs if weight is None else log_probs * weight.reshape(
        (C,) + (1,) * (logits.ndim - class_dim - 1))
    keep = targets != ignore_index
    smooth = where(keep, -weighted.sum(class_dim), 0.0)
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        if weight is None:
            smooth = smooth.sum() / keep.astype(logits.dtype).sum()
        else:
            picked = getitem(weight, _safe(targets, ignore_index))
            smooth = smooth.sum() / where(keep, picked, 0.0).sum()
    return loss * (1 - smoothing) + smooth * (smoothing / C)


def _reduction(size_average: Any, reduce: Any, reduction: str) -> str:
    """torch's ``reduction``, or the one its deprecated ``size_average``/``reduce`` give."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else as_flag(size_average, "size_average")
        reduce = True if reduce is None else as_flag(reduce, "reduce")
        reduction = "none" if not reduce else "mean" if size_average else "sum"
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _label_smoothing(value: Any) -> float:
    if not is_real(value):
        raise TypeError(f"label_smoothing must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {value}")
    return float(value)


def _class_weight(weight: Any, C: int, like: Tensor, fn: str) -> Tensor | None:
    """``weight`` (C,) as a tensor of the logits' dtype, or None."""
    if weight is None:
        return None
    weight = _expect_tensor(weight, fn, "weight")
    like._check_same_backend(weight, fn)
    if weight.shape != (C,):
        raise ValueError(f"{fn}: weight must have shape ({C},) (one per class), got "
                         f"{weight.shape}")
    if weight.dtype.kind != "f":
        raise TypeError(f"{fn}: weight must be a float tensor, got {weight.dtype}")
    return weight if weight.dtype == like.dtype else weight.astype(like.dtype)


def _any_equal(target: Any, value: int) -> bool:
    data = target.data if isinstance(target, Tensor) else np.asarray(target)
    if isinstance(target, Tensor) and not (read_back_allowed() or target._backend.xp is np):
        return False
    return bool((data == value).any())


def _targets(target: Any, C: int, ignore_index: int, like: Tensor, fn: str) -> Tensor:
    """Integer class ``target`` as a tensor on like's backend, each in [0, C) or equal to
    ``ignore_index``, else an IndexError naming the bad value."""
    if isinstance(target, Tensor):
        like._check_same_backend(target, fn)
        t = target
    else:
        t = Tensor(np.asarray(target), backend=like._backend)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fn} targets must be an integer tensor, got {t.dtype}")
    if t.numel() and (read_back_allowed() or t._backend.xp is np):
        xp = t._backend.xp
        bad = ((t.data < 0) | (t.data >= C)) & (t.data != ignore_index)
        if bool(xp.any(bad)):
            value = int(t._backend.to_numpy(t.data[bad].reshape(-1)[:1])[0])
            raise IndexError(f"{fn} targets out of range: target {value} is not in [0, {C - 1}]"
                             f" (nor ignore_index={ignore_index})")
    return t


def _safe(targets: Tensor, ignore_index: int) -> Tensor:
    """``targets`` with ``ignore_index`` replaced by 0, as indices (its rows are masked)."""
    xp = targets._backend.xp
    return Tensor._wrap(xp.where(targets.data == ignore_index, 0, targets.data).astype(
        np.intp), targets._backend)


def _nll(log_probs: Tensor, targets: Tensor, weight: Tensor | None, ignore_index: int,
         reduction: str) -> Tensor:
    """:func:`nll_loss` of checked arguments: ``-w[t] log_probs[t]`` per target."""
    class_dim = 1 if log_probs.ndim > 1 else 0
    C = log_probs.shape[class_dim]
    rows = log_probs.reshape(1, C) if class_dim == 0 else log_probs
    if rows.ndim > 2:  # (N, C, d1, ...) -> (N * d1 * ..., C)
        rows = rows.permute(0, *range(2, rows.ndim), 1).reshape(-1, C)
    safe = _safe(targets, ignore_index)
    flat = safe.reshape(-1)
    xp = flat._backend.xp
    picked = getitem(rows, (Tensor._wrap(xp.arange(flat.shape[0]), flat._backend), flat))
    keep = (targets != ignore_index).reshape(-1)
    w = None if weight is None else getitem(weight, flat)
    loss = -picked if w is None else -(picked * w)
    loss = where(keep, loss, 0.0)
    if reduction == "none":
        return loss.reshape(targets.shape)
    if reduction == "sum":
        return loss.sum()
    count = keep.astype(loss.dtype) if w is None else where(keep, w, 0.0)
    return loss.sum() / count.sum()  # all ignored: 0 / 0 = NaN, as in torch


def _cross_entropy_probs(logits: Tensor, target: Tensor, weight: Tensor | None,
                         reduction: str, smoothing: float) -> Tensor:
    """Cross-entropy against class probabilities ``target`` (the logits' shape)."""
    class_dim = 1 if logits.ndim > 1 else 0
    C = logits.shape[class_dim]
    if smoothing:
        target = target * (1 - smoothing) + smoothing / C
    terms = log_softmax(logits, class_dim) * target
    if weight is not None:
        terms = terms * weight.reshape((C,) + (1,) * (logits.ndim - class_dim - 1))
    loss = -terms.sum(class_dim)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / max(logits.numel() // C, 1)


def nll_loss(input: Tensor, target: Any, weight: Tensor | None = None,
             size_average: bool | None = None, ignore_index: int = -100,
             reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C), (C,) or (N, C, d1,
    ...) at class indices ``target`` (N,), () or (N, d1, ...)
    (``torch.nn.functional.nll_loss``): ``-weight[t] * input[t]``, reduced as
    :func:`cross_entropy` (the weighted mean by default; targets equal to
    ``ignore_index`` are left out; all of them left out gives NaN, as torch)."""
    reduction = _reduction(size_average, reduce, reduction)
    x = _expect_tensor(input, "nll_loss", "input")
    if x.dtype.kind != "f":
        raise TypeError(f"nll_loss expects float log-probabilities, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError("nll_loss expects input of shape (N, C), (C,) or (N, C, d1, ...), "
                         "got a 0-d tensor")
    C = x.shape[1 if x.ndim > 1 else 0]
    weight = _class_weight(weight, C, x, "nll_loss")
    ignore_index = as_int(ignore_index, "nll_loss: ignore_index")
    targets = _targets(target, C, ignore_index, x, "nll_loss")
    expected = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    if targets.shape != expected:
        raise ValueError(f"nll_loss: targets of shape {targets.shape} do not match input "
                         f"{x.shape}; expected {expected}")
    return _nll(x, targets, weight, ignore_index, reduction)


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


# ------------------------------------------------------------- more losses (issue 20)
def _pair(input: Any, target: Any, fn: str, same_shape: bool = False) -> tuple[Tensor, Tensor]:
    """``input`` (a float Tensor) and ``target`` as a tensor of input's dtype."""
    x = _expect_tensor(input, fn, "input")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn} expects a float input, got {x.dtype}")
    t = x._lift(target)
    x._check_same_backend(t, fn)
    if t.dtype != x.dtype:
        t = t.astype(x.dtype)
    if same_shape and t.shape != x.shape:
        raise ValueError(f"{fn}: target of shape {t.shape} must have the input's shape "
                         f"{x.shape}")
    if not same_shape:
        check_broadcast(x.shape, t.shape, fn)
    return x, t


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def _elementwise_weight(weight: Any, like: Tensor, fn: str, what: str = "weight") -> Any:
    if weight is None:
        return None
    weight = _expect_tensor(weight, fn, what)
    like._check_same_backend(weight, fn)
    check_broadcast(like.shape, weight.shape, f"{fn} {what}")
    return weight if weight.dtype == like.dtype else weight.astype(like.dtype)


def l1_loss(input: Tensor, target: Any, size_average: bool | None = None,
            reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """``|input - target|`` (broadcasting), averaged, summed or per element
    (``torch.nn.functional.l1_loss``); the gradient at a zero difference is 0, as torch."""
    reduction = _reduction(size_average, reduce, reduction)
    x, t = _pair(input, target, "l1_loss")
    return _reduce((x - t).abs(), reduction)


def binary_cross_entropy(input: Tensor, target: Any, weight: Tensor | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """``-w (t log x + (1 - t) log(1 - x))`` for probabilities ``input`` in [0, 1] and
    ``target`` of its shape, each log clamped at -100 as torch
    (``torch.nn.functional.binary_cross_entropy``); ``weight`` broadcasts."""
    reduction = _reduction(size_average, reduce, reduction)
    x, t = _pair(input, target, "binary_cross_entropy", same_shape=True)
    be = x._backend
    if x.numel() and (read_back_allowed() or be.xp is np):
        for name, v in (("input", x), ("target", t)):
            if bool(be.xp.any((v.data < 0) | (v.data > 1))):
                raise ValueError(f"binary_cross_entropy: all elements of {name} should be "
                                 "between 0 and 1")
    loss = BinaryCrossEntropy.apply(x, t)
    w = _elementwise_weight(weight, x, "binary_cross_entropy")
    return _reduce(loss if w is None else loss * w, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Tensor | None = None,
                                     size_average: bool | None = None,
                                     reduce: bool | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of ``sigmoid(input)``, computed from the logits stably
    (torch's formula: ``(1 - t) x - (1 + (p - 1) t) log σ(x)``), with ``pos_weight``
    ``p`` (broadcast along the last dim: one per class; no gradient, as torch) and
    ``weight``."""
    fn = "binary_cross_entropy_with_logits"
    reduction = _reduction(size_average, reduce, reduction)
    x, t = _pair(input, target, fn, same_shape=True)
    p = _elementwise_weight(pos_weight, x, fn, "pos_weight")
    if p is not None and check_broadcast(x.shape, p.shape, fn) != x.shape:
        raise ValueError(f"{fn}: pos_weight of shape {p.shape} must broadcast to the input's "
                         f"shape {x.shape}")
    loss = BinaryCrossEntropyWithLogits.apply(x, t, pos_weight=None if p is None else p.data)
    w = _elementwise_weight(weight, x, fn)
    return _reduce(loss if w is None else loss * w, reduction)


# ------------------------------------------------------------------ activations
def _float_input(x: Any, fn: str) -> Tensor:
    return _expect_tensor(x, fn, "input")._floats()


def _number(value: Any, fn: str, what: str) -> float:
    if not is_real(value):
        raise TypeError(f"{fn}: {what} must be a number, got {value!r}")
    return float(value)


def _inplace(inplace: Any, fn: str) -> None:
    """``inplace=True`` is accepted and computes out of place (a documented difference:
    the graph records no in-place ops); the result is the same."""
    as_flag(inplace, f"{fn}: inplace")


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` for x > 0, else ``negative_slope * x`` (a select: the gradient at 0 is the
    slope, as torch's). ``inplace=True`` computes out of place."""
    _inplace(inplace, "leaky_relu")
    x = _float_input(input, "leaky_relu")
    slope = _number(negative_slope, "leaky_relu", "negative_slope")
    return where(x > 0, x, x * slope)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x Φ(x)`` with the normal CDF Φ (``approximate='none'``) or torch's tanh form
    (``'tanh'``); one primitive each way."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_float_input(input, "gelu"), approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x σ(x)`` (swish), composed."""
    _inplace(inplace, "silu")
    x = _float_input(input, "silu")
    return x * x.sigmoid()


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` for x > 0, else ``alpha (e^x - 1)``; the gradient at 0 is ``alpha``, as torch."""
    _inplace(inplace, "elu")
    return ELU.apply(_float_input(input, "elu"), alpha=_number(alpha, "elu", "alpha"))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + e^(βx)) / β``, and ``x`` itself where ``βx > threshold`` (as torch)."""
    beta = _number(beta, "softplus", "beta")
    if beta == 0:
        raise ValueError("softplus: beta must be nonzero")
    return Softplus.apply(_float_input(input, "softplus"), beta=beta,
                          threshold=_number(threshold, "softplus", "threshold"))


def logsigmoid(input: Tensor) -> Tensor:
    """``log σ(x)``, finite for any finite x (``torch.nn.functional.logsigmoid``)."""
    return LogSigmoid.apply(_float_input(input, "logsigmoid"))


def layer_norm(input: Tensor, normalized_shape: int | tuple, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the trailing dims
    ``normalized_shape`` (the biased variance, as torch); composed."""
    x = _expect_tensor(input, "layer_norm", "input")
    if x.dtype.kind != "f":
        raise TypeError(f"layer_norm expects a float input, got {x.dtype}")
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(
        normalized_shape)
    shape = tuple(as_int(n, "layer_norm: normalized_shape") for n in shape)
    if not shape or x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} must be the last dims of the "
                         f"input's shape {x.shape}")
    axes = normalize_axes(tuple(range(x.ndim - len(shape), x.ndim)), x.ndim)
    n = int(np.prod(shape))
    centred = x - x.sum(axes, True) / n
    var = (centred * centred).sum(axes, True) / n
    out = centred * (var + _number(eps, "layer_norm", "eps")) ** -0.5
    for p, what in ((weight, "weight"), (bias, "bias")):
        if p is not None and _expect_tensor(p, "layer_norm", what).shape != shape:
            raise ValueError(f"layer_norm: {what} of shape {p.shape} must be of shape {shape}")
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out

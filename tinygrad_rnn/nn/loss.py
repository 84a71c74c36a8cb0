"""Loss modules, as ``torch.nn``'s: each holds its options and calls its function of
:mod:`.functional` (``loss_fn(input, target)``)."""

from __future__ import annotations

from typing import Any

from .._tensor import Tensor
from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, size_average: Any = None, reduce: Any = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = F._reduction(size_average, reduce, reduction)

    def extra_repr(self) -> str:
        """``reduction='...'``."""
        return f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    """A loss with a per-class ``weight`` tensor (kept as a plain attribute: torch keeps
    it as a buffer, which moves with the module; here move it yourself)."""

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(f"weight must be a Tensor or None, got {type(weight).__name__}")
        self.weight = weight


class CrossEntropyLoss(_WeightedLoss):
    """``F.cross_entropy(input, target, weight, ignore_index=..., reduction=...,
    label_smoothing=...)``."""

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = F._label_smoothing(label_smoothing)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Logits (N, C) and class indices (N,) (or probabilities (N, C))."""
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """``F.nll_loss(input, target, weight, ignore_index=..., reduction=...)``."""

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 ignore_index: int = -100, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Log-probabilities (N, C) and class indices (N,)."""
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """``F.mse_loss(input, target, reduction=...)``."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Same shapes."""
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """``F.l1_loss(input, target, reduction=...)``."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Shapes that broadcast."""
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """``F.binary_cross_entropy(input, target, weight, reduction=...)``."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Probabilities in [0, 1] and targets of the same shape."""
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """``F.binary_cross_entropy_with_logits(input, target, weight, reduction=...,
    pos_weight=...)``."""

    def __init__(self, weight: Tensor | None = None, size_average: Any = None,
                 reduce: Any = None, reduction: str = "mean",
                 pos_weight: Tensor | None = None) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if pos_weight is not None and not isinstance(pos_weight, Tensor):
            raise TypeError(f"pos_weight must be a Tensor or None, got "
                            f"{type(pos_weight).__name__}")
        self.pos_weight = pos_weight

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """Logits and targets of the same shape."""
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)

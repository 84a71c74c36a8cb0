"""Activation and shape layers, as ``torch.nn``'s: ``Identity``, ``Flatten``,
``Sigmoid``, ``GELU``, ``SiLU``, ``LeakyReLU``, ``ELU``, ``Softplus``, ``Softmax``,
``LogSoftmax`` (``ReLU`` and ``Tanh`` are in :mod:`.layers`). Each is its function
of :mod:`.functional` (or the Tensor method) as a layer, for ``Sequential``."""

from __future__ import annotations

from typing import Any

from .._tensor import Tensor
from ..checks import as_flag
from . import functional as F
from .module import Module


class Identity(Module):
    """Returns its input; takes (and ignores) any arguments, as torch's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        """``input`` itself."""
        return input


class Flatten(Module):
    """``input.flatten(start_dim, end_dim)``; by default (``start_dim=1``) every dim but
    the batch dim: (N, *) -> (N, prod(*))."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        """(N, d1, ..., dk) -> (N, d1 * ... * dk) by default."""
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        """``start_dim=..., end_dim=...``."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sigmoid(Module):
    """``1 / (1 + e^-x)`` elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        """Same shape."""
        return input.sigmoid()


class GELU(Module):
    """``x Φ(x)``; ``approximate='tanh'`` for torch's tanh form."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        """Same shape."""
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        """``approximate='...'``."""
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """``x σ(x)``. ``inplace=True`` computes out of place (the same values)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = as_flag(inplace, "SiLU: inplace")

    def forward(self, input: Tensor) -> Tensor:
        """Same shape."""
        return F.silu(input)


class LeakyReLU(Module):
    """``x`` for x > 0, else ``negative_slope * x``. ``inplace=True`` computes out of place."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = F._number(negative_slope, "LeakyReLU", "negative_slope")
        self.inplace = as_flag(inplace, "LeakyReLU: inplace")

    def forward(self, input: Tensor) -> Tensor:
        """Same shape."""
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        """``negative_slope=...``."""
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """``x`` for x > 0, else ``alpha (e^x - 1)``. ``inplace=True`` computes out of place."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = F._number(alpha, "ELU", "alpha")
        self.inplace = as_flag(inplace, "ELU: inplace")

    def forward(self, input: Tensor) -> Tensor:
        """Same shape."""
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        """``alpha=...``."""
        return f"alpha={self.alpha}"


class Softplus(Module):
    """``log(1 + e^(βx)) / β``, linear where ``βx > threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = F._number(beta, "Softplus", "beta")
        self.threshold = F._number(threshold, "Softplus", "threshold")

    def forward(self, input: Tensor) -> Tensor:
        """Same shape."""
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        """``beta=..., threshold=...``."""
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """``softmax`` along ``dim`` (each slice sums to 1); ``dim=None`` is the last dim
    (torch's deprecated implicit choice differs for 0-, 1- and 3-d inputs)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """Same shape."""
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        """``dim=...``."""
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log_softmax`` along ``dim`` (the last if None, as :class:`Softmax`)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """Same shape."""
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        """``dim=...``."""
        return f"dim={self.dim}"

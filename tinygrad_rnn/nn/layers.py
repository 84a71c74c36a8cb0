"""``Linear``, ``Embedding``, ``Dropout`` and activation layers (D2L's ``X @ W``, W (in, out));
the recurrent layers are in :mod:`.recurrent` and :mod:`.cells`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ..checks import check_sizes, is_real
from . import init
from .functional import dropout, embedding
from .module import Module


class Linear(Module):
    """``Y = X W + b`` with ``W`` (in_features, out_features) and ``b`` (out_features,).

    ``X`` may have leading batch axes (..., in_features); they are flattened into
    one GEMM. ``W`` starts Xavier-uniform, ``b`` at zero.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None,
                 backend: str | None = None) -> None:
        super().__init__()
        check_sizes(in_features=in_features, out_features=out_features)
        dtype = np.dtype(dtype or np.float32)
        self.in_features, self.out_features = in_features, out_features
        self.W = init.xavier_uniform((in_features, out_features), dtype=dtype, backend=backend)
        self.b = init.zeros((out_features,), dtype=dtype, backend=backend) if bias else None

    def forward(self, X: Tensor) -> Tensor:
        """X (..., in_features) -> ``X W + b``, shape (..., out_features)."""
        if isinstance(X, tuple) and any(isinstance(x, Tensor) for x in X):
            raise TypeError("Linear expects a Tensor, got tuple (an RNN returns "
                            "(outputs, H_T): pass on outputs)")
        if not isinstance(X, Tensor):  # a list or an array, as the RNN takes them
            X = Tensor(X, dtype=self.W.dtype, backend=self.W._backend)
        if X.ndim == 0 or X.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}) expects input of shape "
                f"(..., {self.in_features}), got {X.shape}")
        flat = X if X.ndim == 2 else X.reshape(-1, self.in_features)
        Y = flat @ self.W
        if self.b is not None:
            Y = Y + self.b
        # (N, out) as it is: a reshaped view would make ``out += identity`` refused
        return Y if X.ndim == 2 else Y.reshape(X.shape[:-1] + (self.out_features,))

    def extra_repr(self) -> str:
        """``in_features, out_features, bias=...``, shown in the repr."""
        return f"{self.in_features}, {self.out_features}, bias={self.b is not None}"


class ReLU(Module):
    """``max(x, 0)`` as a layer, for ``Sequential``; same shape."""

    def forward(self, X: Tensor) -> Tensor:
        """Elementwise ``X.relu()``."""
        return X.relu()


class Tanh(Module):
    """``tanh(x)`` as a layer, for ``Sequential``; same shape."""

    def forward(self, X: Tensor) -> Tensor:
        """Elementwise ``X.tanh()``."""
        return X.tanh()


class Embedding(Module):
    """``torch.nn.Embedding(num_embeddings, embedding_dim)``: one ``weight`` (V, E) from
    N(0, 1) as PyTorch's; ``emb(ids)`` with integer ids (...) -> (..., E). A row picked
    several times gets the sum of its gradients."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, dtype: Any = None,
                 backend: str | None = None) -> None:
        super().__init__()
        check_sizes(num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.weight = init.normal((num_embeddings, embedding_dim), 1.0,
                                  dtype=np.dtype(dtype or np.float32), backend=backend)

    def forward(self, ids: Any) -> Tensor:
        """Integer ids (...) in [0, num_embeddings) -> rows of ``weight``, (..., E)."""
        return embedding(ids, self.weight)

    def extra_repr(self) -> str:
        """``num_embeddings, embedding_dim``."""
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """``torch.nn.Dropout(p=0.5)``: in training, zero each element with probability ``p``
    and scale the rest by ``1/(1-p)`` (a fresh mask per call); in ``eval()``, identity."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not is_real(p) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
        self.p = float(p)

    def forward(self, X: Tensor) -> Tensor:
        """Same shape as ``X``."""
        return dropout(X, self.p, self.training)

    def extra_repr(self) -> str:
        """``p=...``."""
        return f"p={self.p}"

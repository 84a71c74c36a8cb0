"""``Linear`` and ``RNN`` with D2L's names and shape convention (``X @ W``, W is (in, out))."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ..backends.base import NONLINEARITIES
from ..checks import check_sizes
from ..functions import getitem, stack
from ..ops import RNNRecurrence
from . import init
from .functional import _as_indices, _one_hot
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


class RNN(Module):
    """One recurrent layer, D2L §8.4.2: ``H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h)``.

    Parameters ``W_xh`` (d, h), ``W_hh`` (h, h), ``b_h`` (h,), the same at every step;
    weights start from N(0, 0.01²) as in D2L, ``b_h`` at zero.

    ``outputs, H_T = rnn(X, H0=None)``: ``X`` (T, N, d) float, or integer token ids
    (T, N) meaning one-hot vectors of size d (then ``X_t W_xh`` is a row lookup);
    ``H0`` (N, h), zeros by default; ``outputs`` (T, N, h) stacks H_1 .. H_T.

    ``fused=True`` computes ``X W_xh + b_h`` for all steps in one GEMM and runs the
    recurrence in the backend's whole-sequence kernel with hand-written BPTT;
    ``fused=False`` composes primitive ops step by step, and autograd derives BPTT.
    The two agree in values and gradients.
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh",
                 fused: bool = True, dtype: Any = None, backend: str | None = None,
                 std: float = init.D2L_STD) -> None:
        super().__init__()
        check_sizes(input_size=input_size, hidden_size=hidden_size)
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
        dtype = np.dtype(dtype or np.float32)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.nonlinearity, self.fused = nonlinearity, fused
        self.W_xh = init.normal((input_size, hidden_size), std, dtype=dtype, backend=backend)
        self.W_hh = init.normal((hidden_size, hidden_size), std, dtype=dtype, backend=backend)
        self.b_h = init.zeros((hidden_size,), dtype=dtype, backend=backend)

    def begin_state(self, batch_size: int) -> Tensor:
        """The zero state H_0, shape (batch_size, h), on the layer's backend and dtype."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 0:  # 0 is an empty batch, which runs
            raise ValueError(f"batch_size must be an integer >= 0, got {batch_size!r}")
        xp = self.W_hh._backend.xp
        return Tensor._wrap(xp.zeros((batch_size, self.hidden_size), dtype=self.W_hh.dtype),
                            self.W_hh._backend)

    def forward(self, X: Tensor, H0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """X (T, N, d) floats or (T, N) int token ids, H0 (N, h) or None for zeros
        -> (outputs (T, N, h), H_T (N, h)). H0 must have the weights' dtype; H_T is outputs[-1]."""
        if not isinstance(X, Tensor):  # a list or an array: ids stay on the host (checked
            X = np.asarray(X)          # there), floats become a tensor like the weights
            if X.dtype.kind not in "iu":
                X = Tensor(X, dtype=self.W_xh.dtype, backend=self.W_xh._backend)
        tokens = X.dtype.kind in "iu"
        _, N = self._check_input(X, tokens)
        if tokens:  # ids from the host are checked there, before they move (no GPU wait)
            X = _as_indices(X, self.input_size, "RNN token ids", like=self.W_xh)
        H0 = self.begin_state(N) if H0 is None else H0
        if not isinstance(H0, Tensor):
            raise TypeError(f"RNN: the state H0 must be a Tensor of shape ({N}, "
                            f"{self.hidden_size}), got {type(H0).__name__}")
        if H0.dtype != self.W_hh.dtype:  # else fused and composed give different dtypes
            raise TypeError(f"RNN: H0 is {H0.dtype} but the weights are {self.W_hh.dtype}; "
                            f"cast it with H0.astype({str(self.W_hh.dtype)!r})")
        if H0.shape != (N, self.hidden_size):
            raise ValueError(f"RNN: H0 must have shape ({N}, {self.hidden_size}), got {H0.shape}")
        if self.fused:
            outputs = self._forward_fused(X, H0, tokens)
            return outputs, outputs[-1]
        return self._forward_composed(X, H0, tokens)

    def _forward_fused(self, X: Tensor, H0: Tensor, tokens: bool) -> Tensor:
        T, N = X.shape[:2]
        if tokens:  # one_hot(X) @ W_xh picks rows of W_xh: an embedding lookup
            Zx = getitem(self.W_xh, X) + self.b_h
        else:
            Zx = (X.reshape(T * N, self.input_size) @ self.W_xh + self.b_h).reshape(
                T, N, self.hidden_size)
        return RNNRecurrence.apply(Zx, H0, self.W_hh, nonlinearity=self.nonlinearity)

    def _forward_composed(self, X: Tensor, H0: Tensor, tokens: bool) -> tuple[Tensor, Tensor]:
        if tokens:
            X = _one_hot(X, self.input_size, self.W_xh.dtype)  # X was checked in forward
        H, outputs = H0, []
        for t in range(X.shape[0]):
            Z = X[t] @ self.W_xh + H @ self.W_hh + self.b_h
            H = Z.tanh() if self.nonlinearity == "tanh" else Z.relu()
            outputs.append(H)
        return stack(outputs), H

    def _check_input(self, X: Tensor, tokens: bool) -> tuple[int, int]:
        if tokens:
            if X.ndim != 2:
                raise ValueError(f"RNN: token ids must have shape (T, N), got {X.shape}")
        elif X.ndim != 3 or X.shape[2] != self.input_size:
            raise ValueError(
                f"RNN: input must have shape (T, N, {self.input_size}) (steps, batch, features) "
                f"or be integer token ids (T, N); got {X.shape}")
        if X.shape[0] == 0:
            raise ValueError("RNN: input has no time steps (T = 0)")
        return X.shape[0], X.shape[1]

    def extra_repr(self) -> str:
        """``input_size, hidden_size, nonlinearity=..., fused=...``, shown in the repr."""
        return (f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}, "
                f"fused={self.fused}")


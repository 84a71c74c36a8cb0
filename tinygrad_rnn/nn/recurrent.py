"""``RNN``, ``GRU``, ``LSTM``: multi-layer, bidirectional recurrent layers with PyTorch's
interface (D2L §8.6, §9.1-9.4), each run two ways that agree in values and gradients:

- fused (``fused=True``, the default): per layer and direction, the input projection
  of all T steps is one GEMM (a row gather for token ids), and the recurrence runs in
  the backend's whole-sequence kernel with a hand-written BPTT
  (:class:`~tinygrad_rnn.ops.RNNRecurrence`, ``GRURecurrence``, ``LSTMRecurrence``);
- composed (``fused=False``): the book's equations step by step
  (:func:`.cells.rnn_step`, ``gru_step``, ``lstm_step``); autograd derives BPTT.

Shapes, as PyTorch's: input (T, N, d) (``batch_first``: (N, T, d)), or unbatched (T, d);
integer token ids (T, N) mean one-hot vectors of size ``input_size``. ``hx`` is
(D·L, N, H) (LSTM: a tuple ``(h0, c0)``), D = 2 if bidirectional else 1, L =
``num_layers``; ``output`` is (T, N, D·H) with the last axis ``[forward, backward]``,
``h_n`` (D·L, N, H) ordered ``layer·D + direction``. Parameter names are
``W_ih_l{k}``, ``W_hh_l{k}``, ``b_ih_l{k}``, ``b_hh_l{k}`` (``_reverse`` for the
backward direction), laid out as :mod:`.cells` describes; ``torch_state_dict`` gives
PyTorch's names and layout.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..checks import as_flag, as_int, is_real
from ..functions import cat, getitem, stack
from ..ops import GRURecurrence, LSTMRecurrence, RNNRecurrence
from .cells import RecurrentParameters, gru_step, lstm_step, rnn_step
from .functional import _as_indices, _one_hot
from .functional import dropout as _dropout


class RNNBase(RecurrentParameters):
    """The layer machinery shared by :class:`RNN`, :class:`GRU` and :class:`LSTM`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, nonlinearity: str = "tanh", fused: bool = True,
                 dtype: Any = None, backend: str | None = None) -> None:
        super().__init__()
        if isinstance(num_layers, str):
            raise TypeError(f"{type(self).__name__}: the third argument is num_layers, an "
                            f"int; got {num_layers!r} (pass nonlinearity={num_layers!r} "
                            "by keyword)")
        self._setup(input_size, hidden_size, bias, nonlinearity, dtype, backend)
        self.num_layers = as_int(num_layers, "num_layers")
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if not is_real(dropout) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        if dropout > 0 and self.num_layers == 1:
            warnings.warn(f"dropout={dropout} has no effect with num_layers=1: it applies "
                          "between layers, as in PyTorch", UserWarning, stacklevel=2)
        self.dropout = float(dropout)
        self.batch_first = as_flag(batch_first, "batch_first")
        self.bidirectional = as_flag(bidirectional, "bidirectional")
        self.fused = as_flag(fused, "fused")
        D = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else D * self.hidden_size
            for direction in range(D):
                self._add_group(_suffix(layer, direction), in_size)

    @property
    def num_directions(self) -> int:
        """D: 2 if bidirectional else 1."""
        return 2 if self.bidirectional else 1

    def begin_state(self, batch_size: int) -> Tensor | tuple[Tensor, Tensor]:
        """Zeros of shape (D·L, batch_size, H) on the layer's backend and dtype (an LSTM:
        a tuple ``(h0, c0)``), D2L's ``begin_state``."""
        batch_size = as_int(batch_size, "batch_size")
        if batch_size < 0:  # 0 is an empty batch, which runs
            raise ValueError(f"batch_size must be >= 0, got {batch_size}")
        zeros = self._zeros((self.num_directions * self.num_layers, batch_size))
        return (zeros, self._zeros(zeros.shape[:2])) if self.kind == "LSTM" else zeros

    def _zeros(self, lead: tuple[int, ...]) -> Tensor:
        W = self.W_hh_l0
        return Tensor._wrap(W._backend.xp.zeros(lead + (self.hidden_size,), dtype=W.dtype),
                            W._backend)

    # ------------------------------------------------------------------ forward
    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Any]:
        """input (T, N, d) / (N, T, d) / (T, d) floats or token ids (T, N) / (N, T) / (T,),
        hx (D·L, N, H) or None (zeros; LSTM: ``(h0, c0)``) -> ``(output (T, N, D·H),
        h_n (D·L, N, H))``, an LSTM ``(output, (h_n, c_n))``; ``batch_first`` gives
        output as (N, T, D·H), unbatched input drops the N axis."""
        X, tokens, batched = self._prepare_input(input)
        T, N = X.shape[0], X.shape[1]
        h0, c0 = self._prepare_state(hx, N, batched)
        D = self.num_directions
        layer_input, h_n, c_n = X, [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(D):
                k = layer * D + direction
                xs = layer_input if direction == 0 else layer_input[::-1]
                H, h_T, c_T = self._run(_suffix(layer, direction), xs, tokens and layer == 0,
                                        h0[k] if h0 is not None else self._zeros((N,)),
                                        None if self.kind != "LSTM" else
                                        (c0[k] if c0 is not None else self._zeros((N,))))
                outputs.append(H if direction == 0 else H[::-1])
                h_n.append(h_T)
                c_n.append(c_T)
            layer_input = outputs[0] if D == 1 else cat(outputs, axis=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = _dropout(layer_input, self.dropout)
        output = layer_input
        if self.batch_first:
            output = output.swapaxes(0, 1)
        states = [stack(h_n)] + ([stack(c_n)] if self.kind == "LSTM" else [])
        if not batched:
            output = output.reshape(T, D * self.hidden_size)
            states = [s.reshape(D * self.num_layers, self.hidden_size) for s in states]
        return (output, tuple(states)) if self.kind == "LSTM" else (output, states[0])

    def _run(self, suffix: str, X: Tensor, tokens: bool, H0: Tensor, C0: Tensor | None
             ) -> tuple[Tensor, Tensor, Tensor | None]:
        """One layer-direction over the sequence: -> (H (T, N, H), h_T, c_T or None)."""
        if self.fused:
            return self._run_fused(suffix, X, tokens, H0, C0)
        if tokens:
            X = _one_hot(X, self.input_size, H0.dtype)  # the ids were checked in forward
        Wx, Wh, bx, bh = self._split(suffix)
        H, C, outputs = H0, C0, []
        for t in range(X.shape[0]):
            if self.kind == "RNN":
                H = rnn_step(X[t], H, Wx, Wh, bx, bh, self.nonlinearity)
            elif self.kind == "GRU":
                H = gru_step(X[t], H, Wx, Wh, bx, bh)
            else:
                H, C = lstm_step(X[t], H, C, Wx, Wh, bx, bh)
            outputs.append(H)
        return stack(outputs), H, C

    def _run_fused(self, suffix: str, X: Tensor, tokens: bool, H0: Tensor, C0: Tensor | None
                   ) -> tuple[Tensor, Tensor, Tensor | None]:
        W_ih, W_hh, b_ih, b_hh = self._group(suffix)
        T, N = X.shape[0], X.shape[1]
        if self.kind == "GRU" and b_ih is None:  # the kernel always adds a b_hh
            b_hh = Tensor._wrap(W_hh._backend.xp.zeros((self.gate_size,), W_hh.dtype),
                                W_hh._backend)
        # Added to every step's pre-activation: b_ih, and for RNN and LSTM b_hh too (the
        # GRU's b_hh stays apart: r multiplies W_hn h + b_hn).
        bias = None if b_ih is None else b_ih if self.kind == "GRU" else b_ih + b_hh
        if tokens:  # one_hot(X) @ W_ih picks rows of W_ih: an embedding lookup
            if bias is not None and W_ih.shape[0] <= T * N:
                Zx = getitem(W_ih + bias, X)  # the same sums, over V rows rather than T·N
            else:
                Zx = getitem(W_ih, X) if bias is None else getitem(W_ih, X) + bias
        else:
            Zx = (X.reshape(T * N, X.shape[2]) @ W_ih).reshape(T, N, self.gate_size)
            Zx = Zx if bias is None else Zx + bias
        if self.kind == "GRU":
            H = GRURecurrence.apply(Zx, H0, W_hh, b_hh)
            return H, H[T - 1], None
        if self.kind == "RNN":
            H = RNNRecurrence.apply(Zx, H0, W_hh, nonlinearity=self.nonlinearity)
            return H, H[T - 1], None
        HC = LSTMRecurrence.apply(Zx, H0, C0, W_hh)  # H_1 .. H_T, then C_T
        return HC[:T], HC[T - 1], HC[T]

    # --------------------------------------------------------------- checking
    def _prepare_input(self, input: Any) -> tuple[Tensor, bool, bool]:
        """-> (X time-major, whether it is token ids, whether it was batched)."""
        name, W = type(self).__name__, self.W_hh_l0
        if not isinstance(input, Tensor):  # a list or an array: ids stay on the host (checked
            input = np.asarray(input)      # there), floats become a tensor like the weights
            if input.dtype.kind not in "iu":
                input = Tensor(input, dtype=W.dtype, backend=W._backend)
        tokens = input.dtype.kind in "iu"
        if tokens:
            if input.ndim not in (1, 2):
                raise ValueError(f"{name}: token ids must have shape "
                                 f"{'(N, T)' if self.batch_first else '(T, N)'} or (T,), "
                                 f"got {input.shape}")
        else:
            if input.dtype != W.dtype:
                raise TypeError(f"{name}: input is {input.dtype} but the weights are "
                                f"{W.dtype}; cast it with .astype({str(W.dtype)!r})")
            if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
                layout = "(N, T, {0})" if self.batch_first else "(T, N, {0})"
                raise ValueError(
                    f"{name}: input must have shape {layout.format(self.input_size)} or "
                    f"(T, {self.input_size}) (unbatched), or be integer token ids; got "
                    f"{input.shape}")
        batched = input.ndim == (2 if tokens else 3)
        if not batched:
            input = input.reshape((input.shape[0], 1) + input.shape[1:])
        elif self.batch_first:
            input = input.swapaxes(0, 1)
        if input.shape[0] == 0:
            raise ValueError(f"{name}: input has no time steps (T = 0)")
        if tokens:  # ids from the host are checked there, before they move (no GPU wait)
            input = _as_indices(input, self.input_size, f"{name} token ids", like=W)
        return input, tokens, batched

    def _prepare_state(self, hx: Any, N: int, batched: bool
                       ) -> tuple[Tensor | None, Tensor | None]:
        """``hx`` checked and made (D·L, N, H): -> (h0, c0), None for zeros."""
        name, W = type(self).__name__, self.W_hh_l0
        DL = self.num_directions * self.num_layers
        want = (DL, N, self.hidden_size) if batched else (DL, self.hidden_size)
        if hx is None:
            return None, None
        if self.kind == "LSTM":
            if not (isinstance(hx, tuple) and len(hx) == 2):
                raise TypeError(f"{name}: hx must be a tuple (h0, c0) of two Tensors of shape "
                                f"{want}, got {type(hx).__name__}")
            parts, what = hx, ("h0", "c0")
        else:
            parts, what = (hx,), ("hx",)
        out = []
        for s, label in zip(parts, what, strict=True):
            if not isinstance(s, Tensor):
                raise TypeError(f"{name}: {label} must be a Tensor of shape {want}, got "
                                f"{type(s).__name__}")
            if s.shape != want:
                raise ValueError(f"{name}: {label} must have shape {want} (D·num_layers, "
                                 f"{'N, ' if batched else ''}hidden_size), got {s.shape}")
            if s.dtype != W.dtype:
                raise TypeError(f"{name}: {label} is {s.dtype} but the weights are "
                                f"{W.dtype}; cast it with .astype({str(W.dtype)!r})")
            W._check_same_backend(s, label)
            out.append(s if batched else s.reshape(DL, 1, self.hidden_size))
        return (out[0], out[1] if len(out) == 2 else None)


def _suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction else "")


class RNN(RNNBase):
    """Elman RNN, ``H_t = φ(X_t W_ih + b_ih + H_{t-1} W_hh + b_hh)`` (D2L §8.4, §8.6), as
    ``torch.nn.RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)``, plus ``fused``, ``dtype``,
    ``backend`` keywords. ``rnn(input, hx=None)`` -> ``(output, h_n)``; shapes in
    :mod:`.recurrent`."""

    kind = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, fused: bool = True,
                 dtype: Any = None, backend: str | None = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, nonlinearity=nonlinearity, fused=fused, dtype=dtype,
                         backend=backend)


class GRU(RNNBase):
    """Gated recurrent unit (D2L §9.1) with PyTorch's maths and interface,
    ``torch.nn.GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False)``: gates r, z, n, with ``n = tanh(X W_in + b_in +
    r ⊙ (H W_hn + b_hn))`` (:func:`.cells.gru_step`). ``gru(input, hx=None)`` ->
    ``(output, h_n)``."""

    kind = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, fused: bool = True, dtype: Any = None,
                 backend: str | None = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, fused=fused, dtype=dtype, backend=backend)


class LSTM(RNNBase):
    """Long short-term memory (D2L §9.2) with PyTorch's maths and interface,
    ``torch.nn.LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False)``: gates i, f, g, o (:func:`.cells.lstm_step`).
    ``lstm(input, (h0, c0)=None)`` -> ``(output, (h_n, c_n))``."""

    kind = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, fused: bool = True, dtype: Any = None,
                 backend: str | None = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, fused=fused, dtype=dtype, backend=backend)

"""One step of each recurrent cell, composed from primitive ops as the book writes it,
and the cells ``RNNCell``, ``GRUCell``, ``LSTMCell`` (PyTorch's interface) built on them.

Parameters, here and in :mod:`.recurrent`: ``W_ih`` (input_size, G·H), ``W_hh``
(H, G·H), ``b_ih``, ``b_hh`` (G·H,), with the G gate blocks side by side in PyTorch's
order (RNN: one block; GRU: r, z, n; LSTM: i, f, g, o). The orientation is D2L's,
``X @ W``; PyTorch stores the transposes (``weight_ih`` is (G·H, input_size)). Two
biases, as PyTorch has: for RNN and LSTM only their sum matters to the forward, but
each gets the full gradient, which counts twice in the global norm that clipping
uses; for the GRU, ``b_hn`` sits inside ``r ⊙ (·)`` and differs from ``b_in``.

The step functions take the blocks already split (``Wx = (W_xr, W_xz, W_xh)``...), so
each line below is one of D2L's equations (§8.4, §9.1, §9.2) with PyTorch's bias
placement; autograd derives their backward (BPTT, when a loop calls them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..backends.base import NONLINEARITIES
from ..checks import as_flag, check_sizes
from . import init
from .module import Module

#: Gate blocks per cell kind.
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}

Blocks = Sequence[Tensor]


def rnn_step(X: Tensor, H: Tensor, Wx: Blocks, Wh: Blocks, bx: Blocks, bh: Blocks,
             nonlinearity: str = "tanh") -> Tensor:
    """D2L (8.4.5): ``H_t = φ(X_t W_xh + b_ih + H_{t-1} W_hh + b_hh)``; X (N, d), H (N, H)."""
    (W_xh,), (W_hh,), (b_xh,), (b_hh,) = Wx, Wh, bx, bh
    Z = X @ W_xh + b_xh + H @ W_hh + b_hh
    return Z.tanh() if nonlinearity == "tanh" else Z.relu()


def gru_step(X: Tensor, H: Tensor, Wx: Blocks, Wh: Blocks, bx: Blocks, bh: Blocks) -> Tensor:
    """D2L (9.1.1)-(9.1.3) with PyTorch's reset placement: ``r`` multiplies ``H W_hh + b_hh``
    (the book: ``(R ⊙ H) W_hh``). X (N, d), H (N, H) -> H_t (N, H)."""
    (W_xr, W_xz, W_xh), (W_hr, W_hz, W_hh), (b_xr, b_xz, b_xh), (b_hr, b_hz, b_hh) = \
        Wx, Wh, bx, bh
    R = (X @ W_xr + b_xr + H @ W_hr + b_hr).sigmoid()
    Z = (X @ W_xz + b_xz + H @ W_hz + b_hz).sigmoid()
    H_tilde = (X @ W_xh + b_xh + R * (H @ W_hh + b_hh)).tanh()
    return (1 - Z) * H_tilde + Z * H


def lstm_step(X: Tensor, H: Tensor, C: Tensor, Wx: Blocks, Wh: Blocks, bx: Blocks,
              bh: Blocks) -> tuple[Tensor, Tensor]:
    """D2L (9.2.1)-(9.2.4), PyTorch's gate order i, f, g (= C̃), o.
    X (N, d), H, C (N, H) -> (H_t, C_t)."""
    (W_xi, W_xf, W_xc, W_xo), (W_hi, W_hf, W_hc, W_ho) = Wx, Wh
    (b_xi, b_xf, b_xc, b_xo), (b_hi, b_hf, b_hc, b_ho) = bx, bh
    I = (X @ W_xi + b_xi + H @ W_hi + b_hi).sigmoid()  # noqa: E741 (the book's name)
    F = (X @ W_xf + b_xf + H @ W_hf + b_hf).sigmoid()
    O = (X @ W_xo + b_xo + H @ W_ho + b_ho).sigmoid()  # noqa: E741
    C_tilde = (X @ W_xc + b_xc + H @ W_hc + b_hc).tanh()
    C = F * C + I * C_tilde
    return O * C.tanh(), C


def blocks(W: Tensor, G: int) -> list[Tensor]:
    """The G gate blocks of ``W`` (..., G·H) along its last axis, as views (autograd sees
    each as an indexing op, so each block's gradient lands in its columns of ``W``); one
    block is ``W`` itself."""
    if G == 1:
        return [W]
    H = W.shape[-1] // G
    return [W[..., k * H:(k + 1) * H] for k in range(G)]


class RecurrentParameters(Module):
    """What RNN/GRU/LSTM layers and cells share: the parameter groups, PyTorch's
    initialisation, and the exchange of weights with PyTorch (``torch_state_dict``).

    Subclasses register each group's ``W_ih{s}, W_hh{s}[, b_ih{s}, b_hh{s}]`` with
    :meth:`_add_group` (suffix ``s``: ``_l0``, ``_l0_reverse``... for layers, ``""`` for
    a cell) and say in ``_torch_prefix`` how PyTorch names them (``weight_ih_l0``...).
    """

    kind: str = "RNN"

    def _setup(self, input_size: Any, hidden_size: Any, bias: Any, nonlinearity: str,
               dtype: Any, backend: str | None) -> None:
        check_sizes(input_size=input_size, hidden_size=hidden_size)
        if self.kind == "RNN" and nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: dtype must be a float dtype, got {dtype}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.bias = as_flag(bias, "bias")
        if self.kind == "RNN":
            self.nonlinearity = nonlinearity
        self._dtype, self._backend_name = dtype, backend
        self._groups: list[str] = []

    @property
    def gate_size(self) -> int:
        """G·H: the width of each stacked weight (PyTorch's ``weight_ih`` has G·H rows)."""
        return GATES[self.kind] * self.hidden_size

    def _add_group(self, suffix: str, in_size: int) -> None:
        """Register ``W_ih``, ``W_hh`` (and both biases) for one layer-direction, drawn
        from U(-1/√H, 1/√H) as PyTorch's ``reset_parameters`` does."""
        k = 1.0 / math.sqrt(self.hidden_size)
        shapes = [("W_ih", (in_size, self.gate_size)), ("W_hh", (self.hidden_size, self.gate_size))]
        if self.bias:
            shapes += [("b_ih", (self.gate_size,)), ("b_hh", (self.gate_size,))]
        for name, shape in shapes:
            setattr(self, name + suffix, init.uniform(shape, -k, k, dtype=self._dtype,
                                                      backend=self._backend_name))
        self._groups.append(suffix)

    def reset_parameters(self, std: float | None = None) -> None:
        """Draw every parameter again: from U(-1/√H, 1/√H) as PyTorch (``std=None``), or
        the weights from N(0, std²) with zero biases, as D2L's scratch models
        (``std=0.01``)."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for name, p in list(self._parameters.items()):
            if std is None:
                new = init.uniform(p.shape, -k, k, dtype=p.dtype, backend=p.backend)
            elif name.startswith("W_"):
                new = init.normal(p.shape, std, dtype=p.dtype, backend=p.backend)
            else:
                new = init.zeros(p.shape, dtype=p.dtype, backend=p.backend)
            p.data, p.grad = new.data, None

    def _group(self, suffix: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``(W_ih, W_hh, b_ih, b_hh)`` of one group; biases None without ``bias``."""
        get = self.__dict__.get
        return (get("W_ih" + suffix), get("W_hh" + suffix), get("b_ih" + suffix),
                get("b_hh" + suffix))

    def _split(self, suffix: str) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """One group as gate blocks ``(Wx, Wh, bx, bh)`` for the step functions; without
        ``bias`` the biases are zero constants, so the equations read the same."""
        W_ih, W_hh, b_ih, b_hh = self._group(suffix)
        G = GATES[self.kind]
        if b_ih is None:
            zero = Tensor._wrap(W_hh._backend.xp.zeros((self.hidden_size,), dtype=W_hh.dtype),
                                W_hh._backend)
            bx = bh = [zero] * G
        else:
            bx, bh = blocks(b_ih, G), blocks(b_hh, G)
        return blocks(W_ih, G), blocks(W_hh, G), bx, bh

    # ----------------------------------------------------------- PyTorch's names
    def _torch_names(self) -> dict[str, str]:
        """PyTorch's name -> ours, in PyTorch's order (per group: weights, then biases)."""
        names = {}
        for suffix in self._groups:
            torch_suffix = self._torch_suffix(suffix)
            kinds = ["ih", "hh"] + (["ih", "hh"] if self.bias else [])
            for i, kind in enumerate(kinds):
                ours, theirs = ("W_", "weight_") if i < 2 else ("b_", "bias_")
                names[theirs + kind + torch_suffix] = ours + kind + suffix
        return names

    def _torch_suffix(self, suffix: str) -> str:
        return suffix

    def torch_state_dict(self, grad: bool = False) -> dict[str, np.ndarray | None]:
        """PyTorch's state dict of the same layer, as NumPy arrays: exactly its keys
        (``weight_ih_l0``, ``bias_hh_l1_reverse``...), weights transposed to its (G·H, in)
        layout. ``torch_layer.load_state_dict({k: torch.from_numpy(v) ...})`` takes it.
        ``grad=True``: the gradients under the same names (None where there is none yet)."""
        out: dict[str, np.ndarray | None] = {}
        for theirs, ours in self._torch_names().items():
            p = self._parameters[ours]
            src = p if not grad else p.grad
            if src is None:
                out[theirs] = None
                continue
            a = src.numpy() if isinstance(src, Tensor) else p._backend.to_numpy(src)
            out[theirs] = np.ascontiguousarray(a.T) if a.ndim == 2 else a
        return out

    def load_torch_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> Any:
        """Load PyTorch's weights (NumPy arrays, or anything ``np.asarray`` takes, under
        PyTorch's names): the inverse of :meth:`torch_state_dict`, and as strict as
        ``load_state_dict`` (missing or unexpected names, wrong shapes: KeyError,
        ValueError; nothing changes unless everything checks out)."""
        names = self._torch_names()
        ours: dict[str, Any] = {}
        unexpected = sorted(set(state) - set(names))
        for theirs, value in state.items():
            if theirs not in names:
                continue
            a = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
            if a.dtype.kind not in "fiu":
                raise TypeError(f"load_torch_state_dict: {theirs!r} is a {a.dtype} array, "
                                "not real numbers")
            p = self._parameters[names[theirs]]
            want = tuple(reversed(p.shape)) if p.ndim == 2 else p.shape
            if a.shape != want:
                raise ValueError(f"load_torch_state_dict: {theirs!r} has shape {a.shape}, "
                                 f"PyTorch's layer of this size has {want}")
            ours[names[theirs]] = a.T if a.ndim == 2 else a
        if strict and unexpected:
            raise KeyError(f"load_torch_state_dict for {type(self).__name__}: unexpected "
                           f"{unexpected} (expected {list(names)})")
        return self.load_state_dict(ours, strict=strict)

    def extra_repr(self) -> str:
        """Sizes and the options that differ from PyTorch's defaults."""
        text = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("num_layers", 1), ("nonlinearity", "tanh"), ("bias", True),
                              ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("fused", True)):
            value = getattr(self, name, default)
            if value != default:
                text += f", {name}={value!r}"
        return text


class _Cell(RecurrentParameters):
    """A single step, ``cell(x, hx=None)``: x (N, input_size) or unbatched (input_size,)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, dtype: Any = None,
                 backend: str | None = None) -> None:
        super().__init__()
        self._setup(input_size, hidden_size, bias, nonlinearity, dtype, backend)
        self._add_group("", self.input_size)

    def _prepare(self, x: Any, hx: Any, what: str) -> tuple[Tensor, Tensor | None, bool]:
        W = self.W_hh
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x), dtype=W.dtype, backend=W._backend)
        if x.dtype != W.dtype:
            raise TypeError(f"{type(self).__name__}: input is {x.dtype} but the weights are "
                            f"{W.dtype}; cast it with .astype({str(W.dtype)!r})")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input must have shape (N, "
                             f"{self.input_size}) or ({self.input_size},), got {x.shape}")
        batched = x.ndim == 2
        if not batched:
            x = x.reshape(1, self.input_size)
        N = x.shape[0]
        states = hx if self.kind == "LSTM" and hx is not None else (hx,)
        checked = []
        for s in states:
            if s is None:
                checked.append(None)
                continue
            if not isinstance(s, Tensor):
                raise TypeError(f"{type(self).__name__}: {what} must be Tensors, got "
                                f"{type(s).__name__}")
            want = (N, self.hidden_size) if batched else (self.hidden_size,)
            if s.shape != want:
                raise ValueError(f"{type(self).__name__}: {what} must have shape {want}, "
                                 f"got {s.shape}")
            if s.dtype != W.dtype:
                raise TypeError(f"{type(self).__name__}: {what} is {s.dtype} but the "
                                f"weights are {W.dtype}")
            checked.append(s if batched else s.reshape(1, self.hidden_size))
        return x, checked, batched

    def _zeros(self, N: int) -> Tensor:
        W = self.W_hh
        return Tensor._wrap(W._backend.xp.zeros((N, self.hidden_size), dtype=W.dtype),
                            W._backend)


class RNNCell(_Cell):
    """``h' = φ(x W_ih + b_ih + h W_hh + b_hh)``, as ``torch.nn.RNNCell(input_size,
    hidden_size, bias=True, nonlinearity='tanh')``. ``cell(x, h=None)`` -> h' (N, H)."""

    kind = "RNN"

    def forward(self, x: Any, hx: Tensor | None = None) -> Tensor:
        """x (N, d) or (d,), hx like the output or None (zeros) -> h' (N, H) or (H,)."""
        x, (h,), batched = self._prepare(x, hx, "hx")
        h = self._zeros(x.shape[0]) if h is None else h
        out = rnn_step(x, h, *self._split(""), nonlinearity=self.nonlinearity)
        return out if batched else out.reshape(self.hidden_size)


class GRUCell(_Cell):
    """One GRU step, as ``torch.nn.GRUCell(input_size, hidden_size, bias=True)``;
    the maths in :func:`gru_step`. ``cell(x, h=None)`` -> h' (N, H)."""

    kind = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 dtype: Any = None, backend: str | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, dtype=dtype, backend=backend)

    def forward(self, x: Any, hx: Tensor | None = None) -> Tensor:
        """x (N, d) or (d,), hx like the output or None (zeros) -> h' (N, H) or (H,)."""
        x, (h,), batched = self._prepare(x, hx, "hx")
        h = self._zeros(x.shape[0]) if h is None else h
        out = gru_step(x, h, *self._split(""))
        return out if batched else out.reshape(self.hidden_size)


class LSTMCell(_Cell):
    """One LSTM step, as ``torch.nn.LSTMCell(input_size, hidden_size, bias=True)``;
    the maths in :func:`lstm_step`. ``cell(x, (h, c)=None)`` -> (h', c'), each (N, H)."""

    kind = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 dtype: Any = None, backend: str | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, dtype=dtype, backend=backend)

    def forward(self, x: Any, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, Tensor]:
        """x (N, d) or (d,), hx = (h, c) or None (zeros) -> (h', c')."""
        if hx is not None and not (isinstance(hx, tuple) and len(hx) == 2):
            raise TypeError("LSTMCell: hx must be a tuple (h, c) of two Tensors, got "
                            f"{type(hx).__name__}")
        x, states, batched = self._prepare(x, hx, "hx (h, c)")
        N = x.shape[0]
        h, c = (self._zeros(N), self._zeros(N)) if hx is None else states
        h, c = lstm_step(x, h, c, *self._split(""))
        if not batched:
            h, c = h.reshape(self.hidden_size), c.reshape(self.hidden_size)
        return h, c

"""The primitive differentiable ops: one :class:`Function` each, its backward right
under its forward.

Arrays here are the backend's (``self.xp`` is NumPy or CuPy), already checked and of
the dtypes the rules give (:mod:`functions` and ``Tensor``'s methods do both before
calling ``Fn.apply``). Gradients may come back in the output's broadcast shape:
:func:`autograd.unbroadcast` sums them down. Composite ops (``mean``, ``stack``,
``softmax``, ``log_softmax``, the composed RNN) are built from these in Python and
need no backward of their own.
"""

from __future__ import annotations

import math

import numpy as np

from .autograd import Function
from .checks import normalize_axes
from .indexing import describe_index


# --------------------------------------------------------------- arithmetic
class Binary(Function):
    """Elementwise op of two arrays that broadcast together, of the dtypes
    :func:`dtypes.of_operands` gives (see :func:`functions.elementwise`)."""

    symbol = "?"  # for error messages: "Add (+)"


class Add(Binary):
    """``a + b`` (broadcasting); backward: ``(g, g)``."""

    symbol, saves_inputs = "+", False

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Binary):
    """``a - b`` (broadcasting); backward: ``(g, -g)``."""

    symbol, saves_inputs = "-", False

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, -g


class Mul(Binary):
    """``a * b`` (broadcasting); backward: ``(g * b, g * a)``."""

    symbol = "*"

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return g * self.b, g * self.a


class Div(Binary):
    """``a / b`` (integers give float32); backward: ``(g / b, -g * ((a / b) / b))``.

    ``(a / b) / b`` is PyTorch's order, from the saved output ``a / b``: it neither
    squares ``b`` (which underflows for a denormal) nor forms ``g / b`` first (which
    overflows), so ``0 / 1e-40`` gives -0 for ``b``'s gradient, not NaN, as in PyTorch.
    """

    symbol, saves_output = "/", True

    def forward(self, a, b):
        self.b = b
        self.out = a / b
        return self.out

    def backward(self, g):
        return g / self.b, -g * (self.out / self.b)


class Neg(Function):
    """``-a``; backward: ``-g``."""

    saves_inputs = False

    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Pow(Function):
    """``a ** p`` for a constant number ``p``; backward: ``g * (p * a ** (p - 1))``.

    Both powers are :func:`power`'s, PyTorch's: ``a ** 0.5`` is ``sqrt(a)``, so
    ``sqrt(-0.0)`` is -0.0, ``sqrt(-inf)`` NaN and ``sqrt'(-0.0)`` -inf, as
    ``torch.sqrt`` gives.
    """

    def forward(self, a, exponent: int | float):
        self.a, self.p = a, exponent
        return power(self.xp, a, exponent)

    def backward(self, g):
        if self.p == 0:  # a ** 0 is constant; p * a ** -1 would be 0 * inf = NaN at a = 0
            return (self.xp.zeros_like(self.a),)
        return (g * (self.a.dtype.type(self.p) * power(self.xp, self.a, self.p - 1)),)


def power(xp, a, p: int | float):
    """``a ** p`` as PyTorch computes it for a float tensor: the exponents 0.5 and -0.5
    by ``sqrt`` (which keeps -0.0 and gives NaN at -inf, where C's ``pow`` gives +0
    and +inf), -1 as a reciprocal, 2, 3 and -2 by products; any other by ``pow``."""
    if a.dtype.kind != "f":
        return a ** a.dtype.type(p)
    if p == 0.5:
        return xp.sqrt(a)
    if p == -0.5:
        return 1 / xp.sqrt(a)
    if p == -1:
        return 1 / a
    if p == 2:
        return a * a
    if p == 3:
        return a * a * a
    if p == -2:
        return 1 / (a * a)
    return a ** a.dtype.type(p)


class MatMul(Function):
    """``a @ b`` for a, b with ndim >= 2 (leading axes broadcast as batch axes)."""

    def name(self) -> str:
        return "MmBackward0" if self.a.ndim == 2 == self.b.ndim else "BmmBackward0"

    def forward(self, a, b):
        self.a, self.b = a, b
        return self.backend.matmul(a, b)

    def backward(self, g):
        a, b, mm = self.a, self.b, self.backend.matmul
        if a.ndim == 2 == b.ndim:  # .T: a view, without np.swapaxes' ~1 µs of Python
            bT, aT = b.T, a.T
        else:
            bT, aT = self.xp.swapaxes(b, -1, -2), self.xp.swapaxes(a, -1, -2)
        # an input that needs no gradient (X_t of a composed RNN) costs no GEMM
        x, w = self.inputs
        return (mm(g, bT) if x.requires_grad else None,
                mm(aT, g) if w.requires_grad else None)


class Cast(Function):
    """``a.astype(dtype)`` to a float dtype; backward: ``g`` cast back to a's dtype."""

    saves_inputs, grad_fn_name = False, "ToCopyBackward0"

    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return (g.astype(self.in_dtype),)


# --------------------------------------------------------------- elementwise
class Exp(Function):
    """``exp(a)``; backward: ``g * exp(a)``, from the saved output."""

    saves_inputs, saves_output = False, True

    def forward(self, a):
        self.out = self.xp.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    """``log(a)``; backward: ``g / a``."""

    def forward(self, a):
        self.a = a
        return self.xp.log(a)

    def backward(self, g):
        return (g / self.a,)


class Sin(Function):
    """``sin(a)``; backward: ``g * cos(a)``."""

    def forward(self, a):
        self.a = a
        return self.xp.sin(a)

    def backward(self, g):
        return (g * self.xp.cos(self.a),)


class Cos(Function):
    """``cos(a)``; backward: ``-g * sin(a)``."""

    def forward(self, a):
        self.a = a
        return self.xp.cos(a)

    def backward(self, g):
        return (-g * self.xp.sin(self.a),)


class Tanh(Function):
    """``tanh(a)``; backward: ``g * (1 - y²)`` from the saved output y.

    On the numba backend the fused RNN (``nn.RNN(fused=True)``) does not come through
    here: its kernel uses its own branch-free Cephes tanh (``backends/_numba_math.py``),
    because Numba compiles ``np.tanh`` to a scalar libm call, 40x slower. Each is
    within 1.5 ulp of the true tanh, so the two are under 3 ulp apart, which the
    fused-vs-composed tests (``tests/test_rnn.py``, ``tests/test_parity.py``) allow for.
    """

    saves_inputs, saves_output = False, True

    def forward(self, a):
        self.out = self.xp.tanh(a)
        return self.out

    def backward(self, g):
        return (self.backend.tanh_backward(self.out, g),)


class Sigmoid(Function):
    """``1 / (1 + exp(-a))``, overflow-free; backward: ``g * s * (1 - s)`` from the output s."""

    saves_inputs, saves_output = False, True

    def forward(self, a):
        # exp(-|a|) never overflows: 1/(1+e) for a >= 0 and e/(1+e) for a < 0
        e = self.xp.exp(-self.xp.abs(a))
        self.out = self.xp.where(a >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


def select(mask, g):
    """``g`` where ``mask``, else +0.0: ``xp.where(mask, g, 0)``, as PyTorch's masked
    backwards select. Not ``g * mask``: an infinite ``g`` times a 0 of the mask is NaN.
    Not ``xp.where`` either: NumPy's costs a branch per element, 10x a product on a
    random mask; ANDing g's bits with all ones (keep) or all zeros (+0.0) does the same
    select without one, on any backend."""
    bits = np.dtype(f"u{g.dtype.itemsize}")
    return (g.view(bits) & (mask * bits.type(np.iinfo(bits).max))).view(g.dtype)


class ReLU(Function):
    """``max(a, 0)``; backward: ``g`` except where ``a <= 0``, where 0 (PyTorch's rule:
    relu'(0) = 0, and a NaN input passes its gradient on).

    The backward selects (:func:`select`), not multiplies: an infinite ``g`` (from
    ``sqrt`` or ``1 / x`` at 0 downstream) times a 0 of the mask would be NaN.
    ``maximum(0, a)`` returns its second operand at a tie, so ``relu(-0.0)`` is -0.0,
    as PyTorch's.
    """

    saves_inputs = False  # it keeps a mask of its own
    grad_fn_name = "ReluBackward0"

    def forward(self, a):
        self.kept = ~(a <= 0)  # NaN compares False: its gradient passes, as in PyTorch
        return self.xp.maximum(0, a)

    def backward(self, g):
        return (select(self.kept, g),)


class Clip(Function):
    """``a`` clipped into ``[lo, hi]`` (either may be None); backward: ``g`` where
    ``lo <= a <= hi``, ends included (as PyTorch's clamp), else 0. A primitive, not
    composed from relu: ``a + relu(lo - a)`` would round, and miss ``lo`` in float32."""

    saves_inputs = False  # it keeps a mask of its own
    grad_fn_name = "ClampBackward1"

    def forward(self, a, lo=None, hi=None):
        # the bound first: at a tie maximum/minimum return their second operand, so
        # clamp(-0.0, 0) is -0.0 (the input, as PyTorch's); a NaN on either side is NaN
        out, inside = a, self.xp.ones(a.shape, dtype=bool)
        if lo is not None:
            out, inside = self.xp.maximum(lo, out), inside & (a >= lo)
        if hi is not None:
            out, inside = self.xp.minimum(hi, out), inside & (a <= hi)
        self.inside = inside  # NaN compares False: no gradient, as in PyTorch
        return out

    def backward(self, g):
        # select, not multiply: inf * 0 would be NaN (log(clamp(x, 0)) at x < 0)
        return (select(self.inside, g),)


# ---------------------------------------------------------------- reductions
class Sum(Function):
    """``a.sum(axis, keepdims)``; backward: ``g`` broadcast back to a's shape."""

    saves_inputs = False

    def name(self) -> str:  # PyTorch's: sum() and sum(dim)
        return "SumBackward0" if self.full else "SumBackward1"

    def forward(self, a, axis=None, keepdims=False):
        self.in_shape, self.full = a.shape, axis is None
        self.axes = normalize_axes(axis, a.ndim)
        self.keepdims = keepdims
        return a.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        if not self.keepdims:
            g = g.reshape(_kept_shape(self.in_shape, self.axes))
        return (self.xp.broadcast_to(g, self.in_shape),)


class Max(Function):
    """Max over axes; ties share the gradient equally, as PyTorch's ``max()`` (``axis``
    None) and ``amax(dim)`` (axes given) do. The two differ at NaN, and so does this:
    ``max()`` of a tensor holding NaN gives the NaNs the gradient, shared; along given
    axes a row holding NaN gets a NaN gradient everywhere (``amax``'s ``g / 0 * 0``)."""

    saves_output = True  # the output is (a view of) kept_max

    def name(self) -> str:  # PyTorch's: max() and amax(dim)
        return "MaxBackward1" if self.full else "AmaxBackward0"

    def forward(self, a, axis=None, keepdims=False):
        self.a, self.full = a, axis is None
        self.axes = normalize_axes(axis, a.ndim)
        if any(a.shape[i] == 0 for i in self.axes):  # an empty batch of rows is fine
            raise ValueError(f"max over an empty axis of a tensor of shape {a.shape}")
        self.keepdims = keepdims
        self.kept_max = a.max(axis=self.axes, keepdims=True)
        return self.kept_max if keepdims else self.kept_max.reshape(
            tuple(n for i, n in enumerate(a.shape) if i not in self.axes))

    def backward(self, g):
        xp = self.xp
        if not self.keepdims:
            g = g.reshape(_kept_shape(self.a.shape, self.axes))
        mask = self.a == self.kept_max
        if self.full:  # where max() is NaN the NaNs share it (no host sync: a select)
            mask = xp.where(xp.isnan(self.kept_max), xp.isnan(self.a), mask)
        # PyTorch's order: g / count, then the mask (a count cast: int would make float64)
        share = g / mask.sum(axis=self.axes, keepdims=True).astype(g.dtype)
        return (xp.where(mask, share, 0) if self.full else share * mask,)


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Norm2(Function):
    """``sqrt(sum(a ** 2))`` over axes; backward ``g * a / norm``, 0 where the norm is 0
    (torch's subgradient there, where the composed ``sqrt`` would give 0 * inf = NaN)."""

    saves_output = True

    def forward(self, a, axis=None, keepdims=False):
        self.a, self.axes, self.keepdims = a, normalize_axes(axis, a.ndim), keepdims
        self.kept = self.xp.sqrt((a * a).sum(axis=self.axes, keepdims=True))
        return self.kept if keepdims else self.kept.reshape(
            tuple(n for i, n in enumerate(a.shape) if i not in self.axes))

    def backward(self, g):
        if not self.keepdims:
            g = g.reshape(_kept_shape(self.a.shape, self.axes))
        safe = self.xp.where(self.kept == 0, 1, self.kept)
        return (self.xp.where(self.kept == 0, 0, g / safe) * self.a,)


# ------------------------------------------------------------------- shapes
class Reshape(Function):
    """``a.reshape(shape)``, a view; backward: ``g`` reshaped to a's shape."""

    view_of_input, saves_inputs, grad_fn_name = True, False, "ViewBackward0"

    def forward(self, a, shape):
        self.in_shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {a.shape} into {shape}") from None

    def backward(self, g):
        return (g.reshape(self.in_shape),)


class Transpose(Function):
    """``a`` with axes permuted (reversed if None), a view; backward: the inverse permutation."""

    view_of_input, saves_inputs, grad_fn_name = True, False, "PermuteBackward0"

    def forward(self, a, axes=None):
        if axes is not None and not all(-a.ndim <= ax < a.ndim for ax in axes):
            raise ValueError(f"transpose: axes {axes} are out of range for shape {a.shape}")
        self.axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(
            ax % a.ndim for ax in axes)
        if sorted(self.axes) != list(range(a.ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation for shape {a.shape} (transpose "
                "takes a permutation of all axes, as NumPy's does; to swap two axes, as "
                "PyTorch's transpose(i, j) does, use swapaxes(i, j))")
        return self.xp.transpose(a, self.axes)

    def backward(self, g):
        return (self.xp.transpose(g, tuple(np.argsort(self.axes))),)


class GetItem(Function):
    """``a[index]``; the backward scatter-adds, so repeated indices accumulate."""

    saves_inputs = False  # the index is its own copy

    def name(self) -> str:  # PyTorch's nodes for x[idx], x[i, j] and x[i:j]
        if self.advanced:
            return "IndexBackward0"
        index = self.index if isinstance(self.index, tuple) else (self.index,)
        plain = all(isinstance(i, (int, np.integer)) or i is Ellipsis for i in index)
        return "SelectBackward0" if plain else "SliceBackward0"

    def forward(self, a, index, advanced):
        self.in_shape, self.index, self.advanced = a.shape, index, advanced
        self.view_of_input = not advanced  # basic indexing gives a view
        try:
            out = a[index]
        except IndexError as e:
            raise IndexError(f"index {describe_index(index)} into shape {a.shape}: {e}") from None
        if isinstance(out, np.generic):  # NumPy copies a single element out: take a 0-d view
            out = a[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        return out

    def backward(self, g):
        if self.advanced:
            return (self.backend.scatter_add(self.in_shape, self.index, g),)
        out = self.xp.zeros(self.in_shape, dtype=g.dtype)
        out[self.index] = g  # basic indexing selects each element at most once
        return (out,)


class Cat(Function):
    """``concatenate(arrays, axis)``; backward: ``g`` split along ``axis`` at the inputs' sizes."""

    saves_inputs = False

    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return self.xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        edges = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(self.xp.split(g, edges, axis=self.axis))


class Stack(Function):
    """``stack(arrays, axis)`` of same-shaped arrays along a new axis; backward: ``g``'s
    slices along that axis (views, as ``Cat``'s split)."""

    saves_inputs = False

    def forward(self, *arrays, axis=0):
        self.axis = axis
        return self.xp.stack(arrays, axis=axis)

    def backward(self, g):
        lead = (slice(None),) * self.axis
        return tuple(g[lead + (i,)] for i in range(g.shape[self.axis]))


# ------------------------------------------------------------- fused kernels
class SoftmaxCrossEntropy(Function):
    """Cross-entropy of logits (N, C) against int targets (N,): per row, shape (N,), or
    their ``"sum"`` or ``"mean"`` (0-d) by ``reduction``.

    Fused (one backend kernel each way): the gradient ``softmax - one_hot`` needs
    no division by a probability, so it stays exact for logits of ±1000. The sum and
    the mean are computed here, as ``Sum`` and ``Div`` would (the same roundings), so
    a training step's graph is one node shorter on each side. The count N divides as
    a scalar of the loss's dtype (a kernel argument on a GPU), not as a 0-d array
    made first: one launch fewer each way.
    """

    def forward(self, logits, targets, reduction="none"):
        self.targets, self.reduction = targets, reduction
        loss, self.probs = self.backend.softmax_cross_entropy(logits, targets)
        if reduction == "none":
            return loss
        total = loss.sum()
        if reduction == "mean":
            total = total / loss.dtype.type(loss.shape[0])
        return total  # a NumPy scalar becomes a 0-d array in Function.apply

    def backward(self, g):
        if self.reduction != "none":  # each row's loss enters the sum once (/N: the mean)
            n = self.probs.shape[0]
            if self.reduction == "mean":
                g = g / g.dtype.type(n)
            g = self.xp.broadcast_to(g, (n,))
        return self.backend.softmax_cross_entropy_backward(self.probs, self.targets, g), None


class RNNRecurrence(Function):
    """``H_t = φ(Zx_t + H_{t-1} W_hh)`` for all T steps in one backend kernel.

    Inputs ``Zx`` (T, N, h) = X W_xh + b_h for every step, ``H0`` (N, h), ``W_hh``
    (h, h); output (T, N, h). The backward is the hand-written BPTT of
    :meth:`Backend.rnn_backward`.
    """

    saves_output = True  # the BPTT reads every H_t

    def forward(self, Zx, H0, W_hh, nonlinearity):
        self.H0, self.W_hh, self.nonlinearity = H0, W_hh, nonlinearity
        self.H = self.backend.rnn_forward(Zx, H0, W_hh, nonlinearity)
        return self.H

    def backward(self, g):
        return self.backend.rnn_backward(g, self.H, self.H0, self.W_hh, self.nonlinearity)


class GRURecurrence(Function):
    """PyTorch's GRU for all T steps in one backend kernel (:meth:`Backend.gru_forward`).

    Inputs ``Zx`` (T, N, 3H) = X W_ih + b_ih, blocks [r|z|n]; ``H0`` (N, H); ``W_hh``
    (H, 3H); ``b_hh`` (3H,), which stays apart from ``b_ih`` because ``r`` multiplies
    ``W_hn h + b_hn``. Output ``H`` (T, N, H); the backward is the hand-written BPTT of
    :meth:`Backend.gru_backward`, reading the saved gate activations.
    """

    saves_output = True  # the BPTT reads every H_t

    def forward(self, Zx, H0, W_hh, b_hh):
        self.H0, self.W_hh = H0, W_hh
        self.H, self.gates, self.hn = self.backend.gru_forward(Zx, H0, W_hh, b_hh)
        return self.H

    def backward(self, g):
        return self.backend.gru_backward(g, self.H, self.gates, self.hn, self.H0, self.W_hh)


class LSTMRecurrence(Function):
    """PyTorch's LSTM for all T steps in one backend kernel (:meth:`Backend.lstm_forward`).

    Inputs ``Zx`` (T, N, 4H) = X W_ih + b_ih + b_hh, blocks [i|f|g|o]; ``H0``, ``C0``
    (N, H); ``W_hh`` (H, 4H). One output (a Function has one) of shape (T + 1, N, H):
    ``H_1 .. H_T`` and then ``C_T``, so that a loss on ``c_n`` reaches the backward. The
    other cell states stay inside; the backward is :meth:`Backend.lstm_backward`.
    """

    saves_output = True

    def forward(self, Zx, H0, C0, W_hh):
        self.H0, self.C0, self.W_hh = H0, C0, W_hh
        self.H, self.C, self.gates = self.backend.lstm_forward(Zx, H0, C0, W_hh)
        return self.xp.concatenate([self.H, self.C[-1:]], axis=0)

    def backward(self, g):
        T = self.H.shape[0]
        return self.backend.lstm_backward(g[:T], g[T], self.H, self.C, self.gates, self.H0,
                                          self.C0, self.W_hh)


# ===================================================== the ops beyond the core (issue 20)
# Each backward is PyTorch's formula (torch/csrc/autograd/FunctionsManual.cpp and
# derivatives.yaml), so ties, kinks and special values get torch's gradients. A mask
# selects with ``where``, never multiplies: an infinite or NaN gradient of the branch
# not taken must not become ``0 * inf = NaN``.


def _zero(g):
    """A 0 of ``g``'s dtype (a Python 0 in ``where`` could promote on older NumPy)."""
    return g.dtype.type(0)


class Where(Function):
    """``where(cond, a, b)``: ``a`` where ``cond``, else ``b`` (the three broadcast).

    Backward: ``(None, where(cond, g, 0), where(cond, 0, g))``, a select, so a NaN or
    infinite gradient on the branch not taken cannot leak into the other."""

    def forward(self, cond, a, b):
        self.cond = cond
        return self.xp.where(cond, a, b)

    def backward(self, g):
        xp, zero = self.xp, _zero(g)
        return None, xp.where(self.cond, g, zero), xp.where(self.cond, zero, g)


class Maximum(Binary):
    """``maximum(a, b)`` elementwise (NaN propagates); ties split the gradient equally,
    as torch: ``where(a == b, g / 2, g)``, zeroed for a where ``a < b`` (for b where
    ``a > b``). A NaN on either side compares False: both get the whole ``g``, as in torch."""

    symbol = "maximum"

    def forward(self, a, b):
        self.a, self.b = a, b
        return self.xp.maximum(a, b)

    def backward(self, g):
        xp, zero = self.xp, _zero(g)
        half = xp.where(self.a == self.b, g / 2, g)
        return xp.where(self.a < self.b, zero, half), xp.where(self.a > self.b, zero, half)


class Minimum(Binary):
    """``minimum(a, b)`` elementwise (NaN propagates); ties split as in :class:`Maximum`."""

    symbol = "minimum"

    def forward(self, a, b):
        self.a, self.b = a, b
        return self.xp.minimum(a, b)

    def backward(self, g):
        xp, zero = self.xp, _zero(g)
        half = xp.where(self.a == self.b, g / 2, g)
        return xp.where(self.a > self.b, zero, half), xp.where(self.a < self.b, zero, half)


class TensorPow(Binary):
    """``a ** b`` for two tensors (broadcasting; 0 ** 0 = 1, a negative base to a
    non-integer power is NaN, as in torch). Backward, torch's: d/da =
    ``where(b == 0, 0, g b a^(b-1))``, d/db = ``where(a == 0 & b >= 0, 0, g a^b log a)``."""

    symbol, saves_output = "**", True

    def forward(self, a, b):
        self.a, self.b = a, b
        with np.errstate(all="ignore"):  # NaN for a negative base is the answer, not a slip
            self.out = a ** b
        return self.out

    def backward(self, g):
        xp, zero, a, b = self.xp, _zero(g), self.a, self.b
        with np.errstate(all="ignore"):
            g_a = xp.where(b == 0, zero, g * b * a ** (b - 1))
            g_b = xp.where((a == 0) & (b >= 0), zero, g * self.out * xp.log(a))
        return g_a, g_b


class Expand(Function):
    """``a`` broadcast to ``shape`` (a read-only view, as NumPy's ``broadcast_to``);
    backward: ``g`` as it is, which :func:`autograd.unbroadcast` sums back to a's shape."""

    view_of_input, saves_inputs = True, False

    def forward(self, a, shape):
        return self.xp.broadcast_to(a, shape)

    def backward(self, g):
        return (g,)


class Clone(Function):
    """A copy of ``a`` (``Tensor.clone``); backward: ``g``."""

    saves_inputs = False

    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return (g,)


class LogSumExp(Function):
    """``log(sum(exp(a), axes))``, shifted by the max (an infinite max by 0, as torch),
    so ±1000 stays finite; backward: ``g * exp(a - out)`` (torch's: NaN for a row of
    all -inf, as there)."""

    saves_output = True

    def forward(self, a, axes, keepdims):
        xp = self.xp
        self.a, self.axes, self.keepdims = a, axes, keepdims
        kept = _kept_shape(a.shape, axes)
        if a.size == 0:
            m = xp.zeros(kept, dtype=a.dtype)
        else:
            m = a.max(axis=axes, keepdims=True)
            m = xp.where(xp.isinf(m), _zero(m), m)
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, NaN rows
            self.out = xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True)) + m
        return self.out if keepdims else self.out.reshape(
            tuple(n for i, n in enumerate(a.shape) if i not in axes))

    def backward(self, g):
        g = g.reshape(self.out.shape)
        with np.errstate(invalid="ignore"):
            return (g * self.xp.exp(self.a - self.out),)


class CumSum(Function):
    """Running sum along ``axis`` in ``dtype``; backward: the reversed running sum of ``g``."""

    saves_inputs = False

    def forward(self, a, axis, dtype):
        self.axis, self.in_dtype = axis, a.dtype
        return self.xp.cumsum(a, axis=axis, dtype=dtype)

    def backward(self, g):
        flip = self.xp.flip
        back = flip(self.xp.cumsum(flip(g, self.axis), axis=self.axis), self.axis)
        return (back.astype(self.in_dtype, copy=False),)


class Scatter(Function):
    """``a`` with ``src`` written (``add``: added) at ``index``, an advanced-index tuple
    whose arrays broadcast to src's shape (``Tensor.scatter`` / ``scatter_add``).

    Backward: src gets ``g[index]``; a gets ``g``, zeroed where ``src`` overwrote it
    (with ``add``, all of ``g``). Repeated indices: ``add`` accumulates; a plain scatter
    keeps one of the values written there, unspecified which, as in torch.
    """

    saves_inputs = False  # the index is the caller's own copy

    def forward(self, a, src, index, add=False):
        self.index, self.add = index, add
        if add:
            return a + self.backend.scatter_add(a.shape, index, src.astype(a.dtype))
        out = a.copy()
        out[index] = src
        return out

    def backward(self, g):
        g_src = g[self.index]
        if self.add:
            return g, g_src
        g_a = g.copy()
        g_a[self.index] = 0
        return g_a, g_src


def _einsum(xp, equation, *arrays):
    """``xp.einsum`` with its contraction through BLAS (``optimize=True``) once the
    operands are big enough for that to pay: 9x quicker for a (32, 64, 64) batched
    product on NumPy, but ~30 µs of planning, 6x slower, for a (2, 3, 3) one."""
    big = len(arrays) > 1 and sum(a.size for a in arrays) > 4096
    return xp.einsum(equation, *arrays, optimize=big)


class Einsum(Function):
    """``einsum`` of the arrays with letter subscripts ``inputs`` (one string each, no
    ``...``: :mod:`tinygrad_rnn.einsum` spells it out) and ``output``.

    Backward for operand i: the einsum of ``g`` with the other operands onto i's
    letters; a letter only i has (summed inside it) is broadcast back, and a letter i
    repeats (a diagonal, as in ``'ii->'``) is put back with an identity matrix."""

    def forward(self, *arrays, inputs, output):
        self.arrays, self.subs, self.output = arrays, inputs, output
        return _einsum(self.xp, ",".join(inputs) + "->" + output, *arrays)

    def backward(self, g):
        return tuple(self._grad(i, g) if t.requires_grad else None
                     for i, t in enumerate(self.inputs))

    def _grad(self, i, g):
        xp, subs = self.xp, self.subs[i]
        size = {c: n for s, a in zip(self.subs, self.arrays) for c, n in zip(s, a.shape)}
        others = [self.output] + [s for j, s in enumerate(self.subs) if j != i]
        operands = [g] + [a for j, a in enumerate(self.arrays) if j != i]
        seen = set("".join(others))
        unique = "".join(dict.fromkeys(subs))
        reached = "".join(c for c in unique if c in seen)
        grad = _einsum(xp, ",".join(others) + "->" + reached, *operands)
        if reached != unique:  # letters summed inside operand i alone: d/dx of a sum is 1
            grad = xp.broadcast_to(
                grad.reshape([size[c] if c in seen else 1 for c in unique]),
                [size[c] for c in unique])
        if unique != subs:  # a repeated letter: back onto the diagonal
            free = iter(c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        if c not in size)
            renamed, eyes, eye_subs, first = "", [], [], set()
            for c in subs:
                if c in first:
                    new = next(free)
                    eyes.append(xp.eye(size[c], dtype=g.dtype))
                    eye_subs.append(c + new)
                    renamed += new
                else:
                    first.add(c)
                    renamed += c
            grad = _einsum(xp, ",".join([unique] + eye_subs) + "->" + renamed, grad, *eyes)
        return grad


# ------------------------------------------------------------------ activations
def _erf(xp, a):
    """The error function of a backend array (SciPy's on the host, CuPy's on a GPU)."""
    if xp is np:
        from scipy.special import erf
    else:  # pragma: no cover - needs a GPU
        from cupyx.scipy.special import erf
    return erf(a)


class GELU(Function):
    """``x Φ(x)`` (``approximate='none'``, Φ by erf) or torch's tanh approximation
    ``0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))``; backward: torch's derivative of each."""

    def forward(self, a, approximate="none"):
        self.a, self.approximate = a, approximate
        if approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (a + 0.044715 * a * a * a)
            self.t = self.xp.tanh(inner)
            return 0.5 * a * (1 + self.t)
        self.cdf = 0.5 * (1 + _erf(self.xp, a * math.sqrt(0.5)))
        return a * self.cdf

    def backward(self, g):
        a = self.a
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)  # Python floats: NumPy 2 keeps a's dtype
            right = 0.5 * a * (1 - self.t * self.t) * k * (1 + 3 * 0.044715 * a * a)
            return (g * (0.5 * (1 + self.t) + right),)
        pdf = self.xp.exp(-0.5 * a * a) * (1 / math.sqrt(2 * math.pi))
        return (g * (self.cdf + a * pdf),)


class ELU(Function):
    """``x`` for x > 0, else ``alpha (e^x - 1)``; backward (torch's): ``g`` for x > 0,
    else ``g alpha e^x``. ``exp`` sees ``min(x, 0)``: no overflow in the branch not taken."""

    def forward(self, a, alpha):
        self.a, self.alpha = a, a.dtype.type(alpha)
        # torch tests x <= 0, which a NaN fails: NaN out, and the linear branch's
        # gradient g (not NaN) in the backward
        return self.xp.where(a <= 0, self.alpha * self.xp.expm1(self.xp.minimum(a, 0)), a)

    def backward(self, g):
        xp = self.xp
        return (xp.where(self.a <= 0, g * self.alpha * xp.exp(xp.minimum(self.a, 0)), g),)


class Softplus(Function):
    """``log(1 + e^(βx)) / β``, and ``x`` itself where ``βx > threshold`` (torch's
    softplus); backward: ``g`` there, else ``g σ(βx)``."""

    def forward(self, a, beta, threshold):
        xp = self.xp
        self.a, self.beta, self.threshold = a, a.dtype.type(beta), threshold
        bx = a * self.beta
        self.linear = bx > threshold
        soft = xp.log1p(xp.exp(xp.minimum(bx, threshold))) / self.beta
        return xp.where(self.linear, a, soft)

    def backward(self, g):
        z = self.xp.exp(self.xp.minimum(self.a * self.beta, self.threshold))
        return (self.xp.where(self.linear, g, g * z / (z + 1)),)


class LogSigmoid(Function):
    """``log σ(x) = min(x, 0) - log(1 + e^-|x|)``, finite for any finite x; backward,
    torch's: ``g (1 - z / (1 + z))`` for x < 0, else ``g z / (1 + z)``, ``z = e^-|x|``."""

    def forward(self, a):
        xp = self.xp
        self.a = a
        self.z = xp.exp(-xp.abs(a))
        return xp.minimum(a, 0) - xp.log1p(self.z)

    def backward(self, g):
        negative = self.a < 0
        share = self.z / (1 + self.z)
        return (g * self.xp.where(negative, 1 - share, share),)


class BinaryCrossEntropy(Function):
    """Per element ``-(t log x + (1 - t) log(1 - x))``, each log clamped at -100, as in
    torch (so x = 0 or 1 gives 100, not inf). Backward, torch's: for x
    ``g (x - t) / max(x (1 - x), 1e-12)``; for t ``-g logit(x)`` (not clamped)."""

    def forward(self, x, t):
        xp = self.xp
        self.x, self.t = x, t
        with np.errstate(divide="ignore"):
            self.log_x = xp.maximum(xp.log(x), -100)
            self.log_1mx = xp.maximum(xp.log1p(-x), -100)
        return (t - 1) * self.log_1mx - t * self.log_x

    def backward(self, g):
        x, t = self.x, self.t
        # torch's floor is the float 1e-12f, also in float64 (so 1 / 9.9999999600419e-13)
        g_x = g * (x - t) / self.xp.maximum((1 - x) * x, x.dtype.type(np.float32(1e-12)))
        with np.errstate(divide="ignore", invalid="ignore"):  # ±inf at x = 0 or 1, as torch
            return g_x, g * -self.xp.log(x / (1 - x))  # torch's: -logit(x)


def _sigmoid(xp, a):
    """``1 / (1 + e^-a)`` without overflow (as :class:`Sigmoid`)."""
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e))


class BinaryCrossEntropyWithLogits(Function):
    """Per element, torch's ``(1 - t) x - (1 + (p - 1) t) log σ(x)`` for logits x,
    targets t and ``pos_weight`` p (an array broadcasting to x's shape, or None; no
    gradient, as in torch). Backward, torch's: for x ``g (σ(x) - t)`` (with p:
    ``g ((1 + p t - t) σ(x) - p t)``), which stays exact where ``σ(x)`` is tiny; for t
    ``-g x`` (with p: ``g (log σ(-x) - p log σ(x))``)."""

    def forward(self, x, t, pos_weight=None):
        xp = self.xp
        self.x, self.t, self.p = x, t, pos_weight
        self.log_sig = xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))  # as LogSigmoid
        if pos_weight is None:
            return (1 - t) * x - self.log_sig
        return (1 - t) * x - ((pos_weight - 1) * t + 1) * self.log_sig

    def backward(self, g):
        xp, x, t, p = self.xp, self.x, self.t, self.p
        sig = _sigmoid(xp, x)
        if p is None:
            return g * (sig - t), g * -x
        pt = p * t
        log_sig_neg = self.log_sig - x  # log σ(-x) = log σ(x) - x
        return g * ((pt + 1 - t) * sig - pt), g * (log_sig_neg - p * self.log_sig)


class StdRoot(Function):
    """``sqrt(v)`` of a variance, with torch's ``std`` gradient: ``g / (2 sqrt(v))``, and
    0 where the deviation is 0 (torch masks there; a plain sqrt would give inf · 0 = NaN)."""

    saves_inputs, saves_output = False, True

    def forward(self, v):
        self.out = self.xp.sqrt(v)
        return self.out

    def backward(self, g):
        zero = _zero(g)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.xp.where(self.out == 0, zero, g / (2 * self.out)),)


class Var(Function):
    """``Σ (a - mean)² / max(N - correction, 0)`` over ``axes``; backward, torch's:
    ``g · 2 / (N - correction) · (a - mean)`` (the divisor unclamped there, as in torch)."""

    saves_inputs = False  # it keeps the centred values

    def forward(self, a, axes, correction, keepdims):
        self.axes, self.keepdims = axes, keepdims
        self.n = int(np.prod([a.shape[i] for i in axes], dtype=np.int64))
        self.correction = correction
        with np.errstate(divide="ignore", invalid="ignore"):  # N - correction <= 0: inf/NaN
            self.centred = a - a.sum(axis=axes, keepdims=True) / max(self.n, 1)
            return (self.centred * self.centred).sum(axis=axes, keepdims=keepdims) / max(
                self.n - correction, 0)

    def backward(self, g):
        if not self.keepdims:
            g = g.reshape(_kept_shape(self.centred.shape, self.axes))
        d = self.n - self.correction
        scale = 2 / d if d else float("inf")
        with np.errstate(invalid="ignore"):
            return (g * scale * self.centred,)

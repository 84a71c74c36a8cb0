"""The backend interface: an array namespace and a small table of kernels.

Every kernel here has a plain-namespace fallback written only against ``self.xp``
(the NumPy API, which CuPy mirrors), so a new backend needs nothing but ``xp`` to
work and overrides just the kernels it can do faster. This is the one seam where
NumPy, Numba and CuPy meet (Chainer calls it ``get_array_module``).

Shapes in the RNN kernels follow D2L §8.4.2: ``T`` steps, ``N`` batch, ``h`` hidden.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from types import ModuleType
from typing import Any

import numpy as np


class BackendError(RuntimeError):
    """A tensor operation met a backend problem (mixing two backends, say)."""


class BackendMismatchError(BackendError, ValueError):
    """An op was given tensors that live on two different backends."""


class BackendUnavailable(BackendError):
    """A known backend cannot run on this machine; the message says what is missing."""


NONLINEARITIES = ("tanh", "relu")
#: The dtypes the compiled kernels (Numba, CUDA) are built for; others use the fallbacks.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _by_name(name: str) -> Backend:
    """The registry's backend ``name`` (how a pickled Backend is restored)."""
    from . import get  # the registry imports this module: resolve it at call time

    return get(name)


_NO_READ_BACK: ContextVar[bool] = ContextVar("no_read_back", default=False)


@contextlib.contextmanager
def no_read_back() -> Iterator[None]:
    """Within: nothing reads device data back to the host, so the host never waits for
    the device. The framework's checks of device data that would need a read-back
    (token ids in range) are skipped: the caller has checked that data on the host
    before copying it over. A CUDA graph's recording runs within it (nothing may wait
    then), and so does a step meant to be recorded. Per thread (a context variable)."""
    token = _NO_READ_BACK.set(True)
    try:
        yield
    finally:
        _NO_READ_BACK.reset(token)


def read_back_allowed() -> bool:
    """False within :func:`no_read_back`."""
    return not _NO_READ_BACK.get()


def common_float_dtype(array_type: type, *arrays: Any) -> np.dtype | None:
    """The dtype shared by ``arrays`` if all are non-empty ``array_type`` arrays of one
    dtype, float32 or float64 (what a compiled kernel takes), else None (fall back)."""
    if not all(isinstance(a, array_type) for a in arrays):
        return None
    dtype = arrays[0].dtype
    if dtype not in FLOAT_DTYPES or any(a.dtype != dtype or a.size == 0 for a in arrays):
        return None
    return dtype


def rnn_shapes_ok(H: Any, H0: Any, W_hh: Any) -> bool:
    """Whether H (T, N, h), H0 (N, h), W_hh (h, h) fit together.

    Compiled RNN kernels check this and leave anything else to the base version.
    """
    try:
        T, N, h = H.shape
        return H0.shape == (N, h) and W_hh.shape == (h, h)
    except (AttributeError, ValueError):
        return False


class Backend:
    """Array namespace plus kernels. Subclasses set ``name`` and ``xp``."""

    name: str = "abstract"
    xp: ModuleType = np
    #: Whether ``record_graph(body)`` can record a step once and replay it (a CUDA
    #: graph, ``cupy``); see :mod:`tinygrad_rnn.cuda_graph`.
    records_graphs: bool = False

    # One instance per name: a copied or unpickled tensor must land on the same backend
    # object, or it could not be combined with the tensors already there.
    def __reduce__(self) -> tuple:
        return (_by_name, (self.name,))

    def __deepcopy__(self, memo: dict) -> Backend:
        return self

    # ------------------------------------------------------------------ arrays
    def asarray(self, data: Any, dtype: Any = None) -> Any:
        """``data`` as an array of this backend (no copy when it already is one)."""
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        """A NumPy copy of ``array`` (from device memory where needed)."""
        return np.array(array, copy=True)

    def is_array(self, obj: Any) -> bool:
        """Whether ``obj`` is an array this backend computes on."""
        return isinstance(obj, np.ndarray)

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU); benchmarks call it."""

    # ---------------------------------------------------------- random numbers
    # Drawn on the host from a NumPy Generator, then moved: the same seed gives
    # the same parameters on every backend, which the parity tests rely on.
    def random_normal(self, rng: np.random.Generator, shape: tuple, std: float, dtype) -> Any:
        """An array of ``shape`` from N(0, std²), drawn by ``rng`` on the host, as ``dtype``."""
        return self.asarray(rng.normal(0.0, std, size=shape).astype(dtype))

    def random_uniform(self, rng: np.random.Generator, shape: tuple, low: float, high: float,
                       dtype) -> Any:
        """An array of ``shape`` from U(low, high), drawn by ``rng`` on the host, as ``dtype``."""
        return self.asarray(rng.uniform(low, high, size=shape).astype(dtype))

    # ------------------------------------------------------------------- GEMM
    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` with NumPy's rules: the GEMM behind ``MatMul`` and its backward."""
        return a @ b

    # ------------------------------------------------------------- scatter-add
    def scatter_add(self, shape: tuple, index: Any, values: Any) -> Any:
        """``zeros(shape)`` with ``values`` added at ``index``; repeated indices accumulate.

        The backward of indexing (``x[index]``) and of ``embedding``.
        """
        xp = self.xp
        out = xp.zeros(shape, dtype=values.dtype)
        if not (self.is_array(index) and index.dtype.kind in "iu" and index.size
                and values.shape == index.shape + tuple(shape[1:])):
            xp.add.at(out, index, values)
            return out
        # Rows picked by one integer array (embedding, x[idx]): scatter element by
        # element through a flat 1-D index, which NumPy's add.at runs on a fast path
        # (~10x quicker than with row indices), in the same order, so the same sums.
        n = shape[0]
        rows = index.ravel()
        if int(rows.min()) < -n or int(rows.max()) >= n:
            xp.add.at(out, index, values)  # raises NumPy's IndexError
            return out
        width = out.size // n
        rows = rows.astype(np.int64, copy=False)  # row * width would wrap in int8 or uint16
        flat = (rows % n)[:, None] * width + xp.arange(width)
        xp.add.at(out.reshape(-1), flat.reshape(-1), values.reshape(-1))
        return out

    # ------------------------------------------------------------- elementwise
    def tanh_backward(self, y: Any, grad: Any) -> Any:
        """``grad * (1 - y**2)`` where ``y = tanh(x)``: dtanh/dx from the output alone."""
        return grad * (1 - y * y)

    # --------------------------------------------------- softmax cross-entropy
    def softmax_cross_entropy(self, logits: Any, targets: Any) -> tuple[Any, Any]:
        """Per-row cross-entropy of ``logits`` (N, C) against int ``targets`` (N,).

        Returns ``(loss (N,), probs (N, C))``. Uses the log-sum-exp shift, so
        logits of ±1000 stay finite; ``probs`` is kept for the backward.
        """
        xp = self.xp
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_norm = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_norm
        rows = xp.arange(logits.shape[0])
        loss = -log_probs[rows, targets]
        return loss, xp.exp(log_probs)

    def softmax_cross_entropy_backward(self, probs: Any, targets: Any, grad: Any) -> Any:
        """d loss_i / d logits = ``(softmax - one_hot(target)) * grad_i``; shapes as above."""
        xp = self.xp
        dlogits = probs.copy()
        dlogits[xp.arange(probs.shape[0]), targets] -= 1
        dlogits *= grad[:, None]
        return dlogits

    # --------------------------------------------------------- fused RNN (BPTT)
    def rnn_forward(self, Zx: Any, H0: Any, W_hh: Any, nonlinearity: str) -> Any:
        """The recurrence of D2L (8.4.5) over all steps.

        ``H_t = φ(Zx_t + H_{t-1} W_hh)`` with ``Zx_t = X_t W_xh + b_h`` precomputed for
        every step at once (one GEMM, the cuDNN layout). Shapes: ``Zx`` (T, N, h),
        ``H0`` (N, h), ``W_hh`` (h, h). Returns ``H`` (T, N, h) = H_1 .. H_T.
        """
        xp = self.xp
        H = xp.empty_like(Zx)
        prev = H0
        for t in range(Zx.shape[0]):
            Z = Zx[t] + prev @ W_hh
            H[t] = xp.tanh(Z) if nonlinearity == "tanh" else xp.maximum(Z, 0)
            prev = H[t]
        return H

    def rnn_backward(self, dH: Any, H: Any, H0: Any, W_hh: Any,
                     nonlinearity: str) -> tuple[Any, Any, Any]:
        """Back-propagation through time for :meth:`rnn_forward`.

        ``dH`` (T, N, h) is dL/dH_t from outside the recurrence (the outputs). Walking
        back, the gradient reaching ``H_t`` is ``dH_t`` plus what ``H_{t+1}`` sends through
        ``W_hh``: ``dZ_t = (dH_t + dZ_{t+1} W_hhᵀ) ⊙ φ'(Z_t)``. Then
        ``dW_hh = Σ_t H_{t-1}ᵀ dZ_t`` is one GEMM over the stacked steps.
        Returns ``(dZx (T, N, h), dH0 (N, h), dW_hh (h, h))``.
        """
        xp = self.xp
        T, N, h = H.shape
        dZ = xp.empty_like(H)
        carry = xp.zeros_like(H0)
        W_hh_T = W_hh.T
        for t in range(T - 1, -1, -1):
            g = dH[t] + carry
            if nonlinearity == "tanh":
                dZ[t] = self.tanh_backward(H[t], g)
            else:
                dZ[t] = g * (H[t] > 0)
            carry = dZ[t] @ W_hh_T
        H_prev = xp.concatenate([H0[None], H[:-1]], axis=0).reshape(T * N, h)
        dW_hh = H_prev.T @ dZ.reshape(T * N, h)
        return dZ, carry, dW_hh

    # -------------------------------------------------- fused GRU and LSTM (BPTT)
    # Gate blocks lie side by side along the last axis in PyTorch's order (GRU r, z, n;
    # LSTM i, f, g, o), each H wide; weights are (in, G·H), as X @ W wants them.
    # Plain NumPy without allocation in the time loops: each step writes through
    # ``out=`` into buffers made once per sequence, and whatever does not depend on the
    # carried gradient (the gates' derivatives, tanh C_t) is computed for all T steps at
    # once before the backward's loop, which is left the products with the carry: at
    # h = 32 a step's cost is its count of NumPy calls (~1 µs each), not its arithmetic.
    def sigmoid(self, x: Any) -> Any:
        """``1 / (1 + exp(-x))`` without overflow (``exp(-|x|)`` never overflows)."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))

    def _sigmoid_into(self, x: Any, out: Any, tmp: Any) -> Any:
        """``out = σ(x)``, the same numbers as :meth:`sigmoid`, through the buffers ``out``
        and ``tmp`` of x's shape: ``(1 or e) / (1 + e)`` with ``e = exp(-|x|)``, the
        numerator picked as ``max(e, x >= 0)`` (e <= 1), not by ``where``: NumPy's
        ``where`` and masked ``copyto`` took 3-4 ns an element, more than ``exp``."""
        xp = self.xp
        # Not np.negative in place: NumPy 2.4.6 gets it wrong on a float32 column of
        # stride > 1 (an (N, 1) gate block at h = 1; measured), multiply by -1 is right.
        e = xp.exp(xp.multiply(xp.abs(x, out=out), -1, out=out), out=out)
        numerator = xp.maximum(e, xp.greater_equal(x, 0, out=tmp), out=tmp)  # NaN stays NaN
        return xp.divide(numerator, xp.add(e, 1, out=out), out=out)

    def gru_forward(self, Zx: Any, H0: Any, W_hh: Any, b_hh: Any) -> tuple[Any, Any, Any]:
        """PyTorch's GRU over all T steps; ``Zx`` (T, N, 3H) = X W_ih + b_ih, blocks [r|z|n].

        Per step, with ``Gh = H_{t-1} W_hh + b_hh`` (N, 3H):
        ``r = σ(Zx_r + Gh_r)``, ``z = σ(Zx_z + Gh_z)``, ``n = tanh(Zx_n + r ⊙ Gh_n)``,
        ``H_t = (1 - z) ⊙ n + z ⊙ H_{t-1}``. ``H0`` (N, H), ``W_hh`` (H, 3H), ``b_hh``
        (3H,). Returns ``H`` (T, N, H), the activated ``gates`` [r|z|n] (T, N, 3H) and
        ``Gh_n`` (T, N, H): what the backward reads.
        """
        xp = self.xp
        T, N, G = Zx.shape
        h = G // 3
        work = xp.result_type(Zx, H0, W_hh, b_hh, 0.0)  # the buffers' (integers: float64)
        dtype = xp.result_type(Zx, 0.0)  # the results': Zx's if it is floats
        H = xp.empty((T, N, h), dtype=dtype)
        gates = xp.empty((T, N, G), dtype=dtype)
        hn = xp.empty((T, N, h), dtype=dtype)
        Gh = xp.empty((N, G), dtype=work)
        a_rz, tmp = xp.empty((N, 2 * h), dtype=work), xp.empty((N, 2 * h), dtype=work)
        a_n = xp.empty((N, h), dtype=work)
        prev = H0
        for t in range(T):
            r, z, n = gates[t, :, :h], gates[t, :, h:2 * h], gates[t, :, 2 * h:]
            Gh_n = Gh[:, 2 * h:]
            xp.matmul(prev, W_hh, out=Gh)
            Gh += b_hh
            xp.add(Zx[t, :, :2 * h], Gh[:, :2 * h], out=a_rz)
            self._sigmoid_into(a_rz, gates[t, :, :2 * h], tmp)  # r and z
            xp.multiply(r, Gh_n, out=a_n)
            xp.tanh(xp.add(Zx[t, :, 2 * h:], a_n, out=a_n), out=n)
            hn[t] = Gh_n
            xp.multiply(xp.subtract(1, z, out=a_n), n, out=a_n)  # (1 - z) ⊙ n
            xp.multiply(z, prev, out=H[t])
            H[t] += a_n
            prev = H[t]
        return H, gates, hn

    def gru_backward(self, dH: Any, H: Any, gates: Any, hn: Any, H0: Any,
                     W_hh: Any) -> tuple[Any, Any, Any, Any]:
        """BPTT of :meth:`gru_forward`. ``dH`` (T, N, H) is dL/dH_t from outside.

        Walking back, ``g = dH_t + carry``; ``dn = g ⊙ (1 - z) ⊙ (1 - n²)``,
        ``dz = g ⊙ (H_{t-1} - n) ⊙ z(1 - z)``, ``dr = dn ⊙ Gh_n ⊙ r(1 - r)``. The input
        side gets ``dZx_t = [dr|dz|dn]``, the hidden side ``dGh_t = [dr|dz|dn ⊙ r]``, and
        ``carry = g ⊙ z + dGh_t W_hhᵀ``. ``dW_hh = Σ_t H_{t-1}ᵀ dGh_t`` and
        ``db_hh = Σ dGh`` over the stacked steps. Returns ``(dZx (T, N, 3H), dH0 (N, H),
        dW_hh (H, 3H), db_hh (3H,))``.
        """
        xp = self.xp
        T, N, h = H.shape
        r, z, n = gates[..., :h], gates[..., h:2 * h], gates[..., 2 * h:]
        H_prev = xp.concatenate([H0[None], H[:-1]], axis=0)  # H_{t-1} for every t
        # The factors that multiply g (or dn) at each step, for all steps at once.
        dn_dg = (1 - z) * (1 - n * n)
        dz_dg = (H_prev - n) * (z * (1 - z))
        dr_dn = hn * (r * (1 - r))
        dZx = xp.empty_like(gates)
        dGh = xp.empty_like(gates)
        work = xp.result_type(dH, H, gates, hn, H0, W_hh)
        carry, g = xp.zeros((N, h), dtype=work), xp.empty((N, h), dtype=work)
        W_hh_T = W_hh.T
        for t in range(T - 1, -1, -1):
            dn = dZx[t, :, 2 * h:]
            xp.add(dH[t], carry, out=g)
            xp.multiply(g, dn_dg[t], out=dn)
            xp.multiply(dn, dr_dn[t], out=dGh[t, :, :h])  # dr
            xp.multiply(g, dz_dg[t], out=dGh[t, :, h:2 * h])  # dz
            xp.multiply(dn, r[t], out=dGh[t, :, 2 * h:])
            xp.matmul(dGh[t], W_hh_T, out=carry)
            carry += xp.multiply(g, z[t], out=g)
        dZx[..., :2 * h] = dGh[..., :2 * h]  # dr, dz: the same on both sides
        rows = dGh.reshape(T * N, 3 * h)
        dW_hh = H_prev.reshape(T * N, h).T @ rows
        return dZx, carry, dW_hh, rows.sum(axis=0)

    def lstm_forward(self, Zx: Any, H0: Any, C0: Any, W_hh: Any) -> tuple[Any, Any, Any]:
        """PyTorch's LSTM over all T steps; ``Zx`` (T, N, 4H) = X W_ih + b_ih + b_hh,
        blocks [i|f|g|o] (both biases sit outside the recurrence, so they are added once).

        Per step, with ``A = Zx_t + H_{t-1} W_hh``: ``i, f, o = σ(A_i), σ(A_f), σ(A_o)``,
        ``g = tanh(A_g)``, ``C_t = f ⊙ C_{t-1} + i ⊙ g``, ``H_t = o ⊙ tanh(C_t)``.
        ``H0``, ``C0`` (N, H), ``W_hh`` (H, 4H). Returns ``H``, ``C`` (T, N, H) and the
        activated ``gates`` (T, N, 4H).
        """
        xp = self.xp
        T, N, G = Zx.shape
        h = G // 4
        work = xp.result_type(Zx, H0, C0, W_hh, 0.0)  # the buffers' (integers: float64)
        dtype = xp.result_type(Zx, 0.0)  # the results': Zx's if it is floats
        H = xp.empty((T, N, h), dtype=dtype)
        C = xp.empty_like(H)
        gates = xp.empty((T, N, G), dtype=dtype)
        A, tmp = xp.empty((N, G), dtype=work), xp.empty((N, G), dtype=work)
        ig = xp.empty((N, h), dtype=work)
        prev_h, prev_c = H0, C0
        for t in range(T):
            i, f, g, o = (gates[t, :, k * h:(k + 1) * h] for k in range(4))
            xp.matmul(prev_h, W_hh, out=A)
            A += Zx[t]
            self._sigmoid_into(A[:, :2 * h], gates[t, :, :2 * h], tmp[:, :2 * h])  # i, f
            self._sigmoid_into(A[:, 3 * h:], o, tmp[:, 3 * h:])
            xp.tanh(A[:, 2 * h:3 * h], out=g)
            xp.multiply(f, prev_c, out=C[t])
            C[t] += xp.multiply(i, g, out=ig)
            xp.tanh(C[t], out=H[t])
            H[t] *= o
            prev_h, prev_c = H[t], C[t]
        return H, C, gates

    def lstm_backward(self, dH: Any, dC_T: Any, H: Any, C: Any, gates: Any, H0: Any, C0: Any,
                      W_hh: Any) -> tuple[Any, Any, Any, Any]:
        """BPTT of :meth:`lstm_forward`. ``dH`` (T, N, H) is dL/dH_t from outside, ``dC_T``
        (N, H) dL/dC_T (through ``c_n``).

        Walking back, ``dh = dH_t + carry_h``, ``dc = carry_c + dh ⊙ o ⊙ (1 - tanh²C_t)``;
        ``dA = [dc ⊙ g ⊙ i(1-i) | dc ⊙ C_{t-1} ⊙ f(1-f) | dc ⊙ i ⊙ (1-g²) |
        dh ⊙ tanh C_t ⊙ o(1-o)]``, ``carry_c = dc ⊙ f``, ``carry_h = dA W_hhᵀ``.
        Returns ``(dZx (T, N, 4H), dH0, dC0 (N, H), dW_hh (H, 4H))``; ``dZx`` is also
        the gradient of both biases, summed over steps and batch.
        """
        xp = self.xp
        T, N, h = H.shape
        i, f, g, o = (gates[..., k * h:(k + 1) * h] for k in range(4))
        tanh_C = xp.tanh(C)
        # dA starts as each block's factor for all steps (of dc for i, f, g; of dh for o);
        # the loop multiplies step t's by its dc and dh.
        dA = xp.empty_like(gates)
        xp.multiply(g, i * (1 - i), out=dA[..., :h])
        xp.multiply(xp.concatenate([C0[None], C[:-1]], axis=0), f * (1 - f),
                    out=dA[..., h:2 * h])
        xp.multiply(i, 1 - g * g, out=dA[..., 2 * h:3 * h])
        xp.multiply(tanh_C, o * (1 - o), out=dA[..., 3 * h:])
        dc_dh = o * (1 - tanh_C * tanh_C)
        work = xp.result_type(dH, dC_T, H, C, gates, H0, C0, W_hh)
        carry_h, dh = xp.zeros((N, h), dtype=work), xp.empty((N, h), dtype=work)
        carry_c, dc = xp.empty((N, h), dtype=work), xp.empty((N, h), dtype=work)
        carry_c[...] = dC_T
        W_hh_T = W_hh.T
        for t in range(T - 1, -1, -1):
            xp.add(dH[t], carry_h, out=dh)
            xp.multiply(dh, dc_dh[t], out=dc)
            dc += carry_c
            dA[t].reshape(N, 4, h)[:, :3] *= dc[:, None]  # the i, f and g blocks
            dA[t, :, 3 * h:] *= dh
            xp.multiply(dc, f[t], out=carry_c)
            xp.matmul(dA[t], W_hh_T, out=carry_h)
        H_prev = xp.concatenate([H0[None], H[:-1]], axis=0).reshape(T * N, h)
        dW_hh = H_prev.T @ dA.reshape(T * N, 4 * h)
        return dA, carry_h, carry_c, dW_hh

    # -------------------------------------------------------------- reductions
    def sum_leading_axes(self, grad: Any, n: int) -> Any:
        """``grad`` summed over its first ``n`` axes: (A_1..A_n, *rest) -> rest.

        The adjoint of broadcasting along new leading axes, e.g. the gradient of a bias
        ``b`` (h,) added to every row of ``X W`` (N, h) or of ``Zx`` (T, N, h).
        """
        return grad.sum(axis=tuple(range(n)))

    def global_norm_sq(self, arrays: list) -> Any:
        """Σ‖a‖² over ``arrays`` as a 0-d float64 array of this backend (no host round
        trip). Summed in float64: squares of float32 (or float16) gradients overflow
        their own dtype long before the norm does."""
        xp = self.xp
        total = xp.zeros((), dtype=np.float64)
        for a in arrays:
            a = a.ravel().astype(np.float64, copy=False)
            total = total + xp.vdot(a, a)
        return xp.asarray(total)  # NumPy's 0-d + scalar is a scalar, not an array

    # ------------------------------------------------- updates of many arrays
    def clip_by_global_norm(self, grads: list, max_norm: float) -> Any:
        """Scale ``grads`` in place by ``θ / max(‖g‖, θ)``; return ``‖g‖`` (0-d float64).

        ``‖g‖`` is the L2 norm of all of ``grads`` together (D2L §8.5.5). The factor is
        exactly 1 when ``‖g‖ ≤ θ``, and also when it is NaN (nothing to scale by); it
        is rounded to each array's dtype before the multiply.
        """
        xp = self.xp
        norm = xp.asarray(xp.sqrt(self.global_norm_sq(grads)), dtype=np.float64)
        scale = norm > max_norm  # False for a NaN norm, and always for θ = inf
        factor = xp.where(scale, max_norm / xp.where(scale, norm, 1.0), 1.0)
        by_dtype: dict = {}
        for g in grads:
            if g.dtype not in by_dtype:
                by_dtype[g.dtype] = factor.astype(g.dtype)
            g *= by_dtype[g.dtype]
        return norm

    def sgd_update(self, params: list, grads: list, lr: float) -> None:
        """``p -= lr * g`` in place for each pair, ``lr`` rounded to ``p``'s dtype."""
        for p, g in zip(params, grads, strict=True):
            p -= p.dtype.type(lr) * g

    def __repr__(self) -> str:
        return f"<backend {self.name!r}>"

"""Shared test helpers: float64 finite differences, reasoned tolerances.

The hypothesis strategies are in ``strategies``.

Tolerances, worked out once here rather than tuned per test:

* Finite differences (float64, central, step ``FD_STEP = 1e-6``). The scalar probed
  is ``L(x) = sum(f(x) * u)`` for a random upstream gradient ``u``. Its error has two
  parts: truncation ``h²/6 · |L'''|`` (≤ 1e-12/6 · 1e3 ≈ 2e-10 for the bounded,
  singularity-free inputs the strategies draw) and rounding ``k·ε64·S / h`` where
  ``S = Σ|f_i u_i|`` bounds the magnitude of the terms summed into ``L`` and ``k``
  (≤ 64) the number of roundings each passes through; ``64 · 2.2e-16 / 1e-6 ≈ 1.4e-8``
  per unit of ``S``. So ``FD_ATOL_PER_UNIT = 1e-7`` per unit of ``1 + S`` leaves a
  margin of ~5x over the sum of both, while a wrong gradient is off by O(1).
* Float64 forward values against a NumPy float64 reference: both sides do at most
  a few hundred roundings of O(1..1e3) quantities, so ``rtol = atol = 1e-9`` is
  ~1e4 times the error bound yet catches any real mistake.
* Float32: a reduction of length ``K`` has error at most ``γ_K ≈ K·ε32`` times the
  sum of the absolute terms (Higham, *Accuracy and Stability*, §3.1).
  :func:`f32_tol` turns a chain of such reductions into an absolute tolerance.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.charlm.data import DataError, time_machine_path

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
FD_STEP = 1e-6
FD_ATOL_PER_UNIT = 1e-7
F64_VALUE_TOL = 1e-9

# ------------------------------------------------------------------------- the book
def book_path() -> str:
    """*The Time Machine* through the package's own lookup (``$TINYGRAD_RNN_DATA``, then
    the cache), never downloading: a test skips, with the lookup's message, without it."""
    try:
        return str(time_machine_path(download=False))
    except DataError as e:
        pytest.skip(f"The Time Machine not found: {e}")


# ----------------------------------------------------------------- the install
REPO = Path(__file__).resolve().parents[1]


def installed_package() -> tuple[Path, Path, bool]:
    """(package folder, its backends folder, editable?) of the installed distribution.

    PEP 610's ``direct_url.json`` says whether the install is editable: then they are
    the repository's ``tinygrad_rnn/`` and ``backends/``; else the copies a wheel put in
    site-packages (``tinygrad_rnn/backends/`` inside the package)."""
    # not the metadata a source build leaves in the repository (tinygrad_rnn.egg-info),
    # which is found first when the repository root is on sys.path
    dist = next(d for d in importlib.metadata.distributions(name="tinygrad_rnn")
                if Path(str(d.locate_file(""))).resolve() != REPO.resolve())
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        return REPO / "tinygrad_rnn", REPO / "backends", True
    package = Path(str(dist.locate_file("tinygrad_rnn")))
    return package, package / "backends", False


# ----------------------------------------------------------------- tensor helpers
def t64(array, backend: str, requires_grad: bool = True) -> tg.Tensor:
    return tg.Tensor(
        np.asarray(array, dtype=np.float64),
        dtype=np.float64,
        backend=backend,
        requires_grad=requires_grad,
    )


def assert_values64(actual, expected) -> None:
    np.testing.assert_allclose(actual, expected, rtol=F64_VALUE_TOL, atol=F64_VALUE_TOL)


def numeric_grad(
    loss: Callable[[list[np.ndarray]], float],
    arrays: Sequence[np.ndarray],
    i: int,
    step: float = FD_STEP,
) -> np.ndarray:
    """Central finite differences of the scalar ``loss(arrays)`` w.r.t. ``arrays[i]``."""
    arrays = [np.array(a, dtype=np.float64, copy=True) for a in arrays]
    x = arrays[i]
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        orig = x[idx]
        x[idx] = orig + step
        plus = loss(arrays)
        x[idx] = orig - step
        minus = loss(arrays)
        x[idx] = orig
        grad[idx] = (plus - minus) / (2 * step)
    return grad


def check_gradients(
    fn: Callable[..., tg.Tensor],
    arrays: Sequence[np.ndarray],
    backend: str,
    seed: int,
    reference: Callable[..., np.ndarray] | None = None,
    use_gradcheck: bool = True,
) -> tg.Tensor:
    """Autograd's gradient of ``fn`` against float64 central finite differences.

    ``fn`` maps float64 tensors (one per array, all requiring grad) to a tensor.
    The forward value is compared with ``reference`` (NumPy, float64) when given.
    A random upstream gradient ``u`` is passed to ``backward(u)``; every input's
    ``.grad`` must equal the finite-difference gradient of ``sum(fn(x) * u)``.
    With ``use_gradcheck``, ``tg.gradcheck`` (its own random weights, seeded by
    ``seed``) must agree as well. Returns the output tensor.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    inputs = [t64(a, backend) for a in arrays]
    out = fn(*inputs)
    assert out.backend == backend
    assert out.dtype == np.float64, f"float64 inputs gave a {out.dtype} output"
    assert out.requires_grad
    if reference is not None:
        expected = np.asarray(reference(*arrays), dtype=np.float64)
        assert out.shape == expected.shape
        assert_values64(out.numpy(), expected)

    rng = np.random.default_rng(seed)
    upstream = rng.standard_normal(out.shape)
    upstream_copy = upstream.copy()
    out.backward(upstream)
    np.testing.assert_array_equal(upstream, upstream_copy)  # backward must not mutate it

    def loss(current: list[np.ndarray]) -> float:
        with tg.no_grad():
            y = fn(*(t64(a, backend, requires_grad=False) for a in current)).numpy()
        return float(np.sum(y * upstream))

    scale = float(np.sum(np.abs(out.numpy() * upstream)))
    for i, (t, a) in enumerate(zip(inputs, arrays, strict=True)):
        assert t.grad is not None, f"input {i} got no gradient"
        assert t.grad.shape == a.shape and t.grad.dtype == np.float64
        np.testing.assert_array_equal(t.numpy(), a)  # backward must not mutate inputs
        numeric = numeric_grad(loss, arrays, i)
        np.testing.assert_allclose(
            t.grad.numpy(),
            numeric,
            rtol=1e-6,
            atol=FD_ATOL_PER_UNIT * (1 + scale),
            err_msg=f"gradient of input {i}",
        )
    if use_gradcheck:
        assert tg.gradcheck(fn, [t64(a, backend) for a in arrays], seed=seed % 2**31)
    return out


def f32_tol(reduction_lengths: Sequence[int], scale: float = 1.0) -> float:
    """Absolute tolerance for float32 results after a chain of reductions.

    Each reduction of length ``K`` contributes at most ``K·ε32`` relative error of the
    sum of its absolute terms (``scale`` bounds that sum); errors of a chain of
    1-Lipschitz stages add. A factor 2 covers the two programs compared each rounding
    independently.
    """
    return 2 * sum(reduction_lengths) * EPS32 * max(scale, 1.0)


# ------------------------------------------------------------------------ references
def np_logsumexp(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    out = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


def np_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    # (x - m) - log Σ exp(x - m): exact for |x| ~ 1e3, unlike x - logsumexp(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_rnn(X, H0, W_xh, W_hh, b_h, nonlinearity: str):
    """D2L (8.4.5) in NumPy float64: returns (H (T, N, h), Z (T, N, h) pre-activations)."""
    H, Hs, Zs = H0, [], []
    for t in range(X.shape[0]):
        Z = X[t] @ W_xh + H @ W_hh + b_h
        H = np.tanh(Z) if nonlinearity == "tanh" else np.maximum(Z, 0)
        Zs.append(Z)
        Hs.append(H)
    return np.stack(Hs), np.stack(Zs)


def np_rnn_magnitudes(X, H0, W_xh, W_hh, b_h, nonlinearity: str, U, U_last):
    """Elementwise bounds on the sums of absolute terms behind every RNN output and gradient.

    For the loss ``sum(U * outputs) + sum(U_last * H_T)``. Float32 rounding error in a
    result is at most a small multiple of ε32 times the sum of the absolute values of
    the terms that produced it (not of the result, which may cancel). These are those
    sums, propagated with |·| through the recurrence (|φ'| ≤ 1):

    * forward: ``E_t = |X_t||W_xh| + |H_{t-1}||W_hh| + |b| + E_{t-1}|W_hh|`` (an error
      at step t-1 reaches step t through W_hh);
    * backward: ``D_t = (|U_t| + [t = T]|U_last| + D_{t+1}|W_hh|ᵀ)·(1 + 2E_t)``, the factor
      covering φ'(Z) = 1 - H² evaluated from an H that carries the forward error;
      then ``|X_t|ᵀD_t`` summed over t for dW_xh, and so on;
    * dW_hh sums ``H_{t-1}ᵀ dZ_t``, and ``H_{t-1}`` carries the forward error of its own
      step, up to ε32 times ``E_{t-1}``, which can far exceed ``|H_{t-1}|`` when Z
      cancels to near 0: its terms are ``(|H_{t-1}| + E_{t-1})ᵀ D_t``.

    Returns a dict with ``outputs``, ``H_T``, ``W_xh``, ``W_hh``, ``b_h``, ``H0``, ``X``.
    """
    H, _ = np_rnn(X, H0, W_xh, W_hh, b_h, nonlinearity)
    aX, aWx, aWh, ab = np.abs(X), np.abs(W_xh), np.abs(W_hh), np.abs(b_h)
    prev_H = np.concatenate([np.abs(H0)[None], np.abs(H[:-1])], axis=0)
    E = np.zeros_like(H)
    carry = np.zeros_like(H0)
    for t in range(X.shape[0]):
        E[t] = aX[t] @ aWx + prev_H[t] @ aWh + ab + carry @ aWh
        carry = E[t]
    D = np.zeros_like(H)
    back = np.zeros_like(H0)
    for t in range(X.shape[0] - 1, -1, -1):
        dH = np.abs(U[t]) + back @ aWh.T
        if t == X.shape[0] - 1:
            dH = dH + np.abs(U_last)
        D[t] = dH * (1 + 2 * E[t])
        back = D[t]
    prev_E = np.concatenate([np.zeros_like(H0)[None], E[:-1]], axis=0)  # H0 is exact
    return {
        "outputs": E,
        "H_T": E[-1],
        "W_xh": np.einsum("tni,tnj->ij", aX, D),
        "W_hh": np.einsum("tni,tnj->ij", prev_H + prev_E, D),
        "b_h": D.sum(axis=(0, 1)),
        "H0": D[0] @ aWh.T,
        "X": D @ aWx.T,
    }


def assert_within_f32(actual, expected, magnitude, length: int, what: str = "") -> None:
    """|actual - expected| ≤ 2·length·ε32·magnitude elementwise (two float32 programs,
    each within length·ε32 of the exact value; ``magnitude`` bounds the absolute terms)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, what
    bound = 2 * length * EPS32 * np.broadcast_to(magnitude, expected.shape)
    err = np.abs(actual - expected)
    if err.size and not (err <= bound).all():
        worst = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{what}: |difference| {err[worst]:.3g} exceeds the float32 bound "
            f"{bound[worst]:.3g} at {tuple(map(int, worst))} (values {actual[worst]!r} vs "
            f"{expected[worst]!r})"
        )


def close_to_ulps(actual, expected, terms: int) -> None:
    """``actual`` equals ``expected`` (same dtype and shape) to 4·terms·ε.

    Each of ``terms`` rounding steps (a sum's length, a recurrence's depth) adds at most
    about one ε of relative error, times a safety factor of 4; absolute for results near 0.
    """
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    tol = 4 * terms * np.finfo(expected.dtype).eps
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def rnn_inputs(T, N, h, dtype, seed, scale):
    """Zx (T, N, h), H0 (N, h), W_hh (h, h) with spectral radius ≈ ``scale``."""
    rng = np.random.default_rng(seed)
    Zx = rng.normal(0, 1.5, (T, N, h)).astype(dtype)  # |z| on both sides of tanh's 0.625 cut
    H0 = rng.uniform(-1, 1, (N, h)).astype(dtype)
    W = (rng.normal(0, scale / np.sqrt(h), (h, h))).astype(dtype)
    return Zx, H0, W


def kernel_calls(backend, dtype) -> list[tuple[str, Callable, tuple]]:
    """(name, kernel-calling function, inputs on ``backend``) for each array kernel of the
    backend table: what the contract tests call (dtype kept, inputs untouched, fresh
    outputs, no host wait)."""
    ref = tg.backends.get("numpy")
    rng = np.random.default_rng(7)
    Zx, H0, W = rnn_inputs(4, 3, 5, dtype, 7, 0.9)
    H = ref.rnn_forward(Zx, H0, W, "tanh")
    dH = rng.normal(size=H.shape).astype(dtype)
    logits, targets = rng.normal(size=(3, 4)).astype(dtype), np.array([0, 3, 3])
    probs, grad = ref.softmax_cross_entropy(logits, targets)[1], rng.normal(size=3).astype(dtype)
    index, values = np.array([[1, 1], [0, 2]]), rng.normal(size=(2, 2, 5)).astype(dtype)
    # GRU (3 gate blocks of 5) and LSTM (4), on the RNN's H0 and dH
    Zg, Wg = rng.normal(size=(4, 3, 15)).astype(dtype), rng.normal(0, 0.4, (5, 15)).astype(dtype)
    bg, C0 = rng.normal(size=15).astype(dtype), rng.uniform(-1, 1, (3, 5)).astype(dtype)
    Zl, Wl = rng.normal(size=(4, 3, 20)).astype(dtype), rng.normal(0, 0.4, (5, 20)).astype(dtype)
    dC = rng.normal(size=(3, 5)).astype(dtype)
    gru, lstm = ref.gru_forward(Zg, H0, Wg, bg), ref.lstm_forward(Zl, H0, C0, Wl)
    b, c = backend, backend.asarray
    return [
        ("matmul", b.matmul, (c(H[0]), c(W))),
        ("rnn_forward", lambda *a: b.rnn_forward(*a, "relu"), (c(Zx), c(H0), c(W))),
        ("rnn_backward", lambda *a: b.rnn_backward(*a, "tanh"), (c(dH), c(H), c(H0), c(W))),
        ("softmax_cross_entropy", b.softmax_cross_entropy, (c(logits), c(targets))),
        (
            "softmax_cross_entropy_backward",
            b.softmax_cross_entropy_backward,
            (c(probs), c(targets), c(grad)),
        ),
        ("tanh_backward", b.tanh_backward, (c(H), c(dH))),
        ("scatter_add", lambda *a: b.scatter_add((3, 5), *a), (c(index), c(values))),
        ("global_norm_sq", lambda *a: b.global_norm_sq(list(a)), (c(H), c(W))),  # float64
        ("sum_leading_axes", lambda a: b.sum_leading_axes(a, 2), (c(dH),)),
        ("gru_forward", b.gru_forward, (c(Zg), c(H0), c(Wg), c(bg))),
        ("gru_backward", b.gru_backward, (c(dH), *map(c, gru), c(H0), c(Wg))),
        ("lstm_forward", b.lstm_forward, (c(Zl), c(H0), c(C0), c(Wl))),
        ("lstm_backward", b.lstm_backward, (c(dH), c(dC), *map(c, lstm), c(H0), c(C0), c(Wl))),
    ]


def adam_steps_moving(to: str | None, clamp: bool = False) -> tuple:
    """Three Adam steps on a Linear(4, 3), the model moved to backend ``to`` after the
    first (None: never); returns the model and its optimizer."""
    tg.manual_seed(0)
    model = tg.nn.Linear(4, 3)
    opt = tg.optim.Adam(model.parameters(), lr=0.1)
    X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for step in range(3):
        if to is not None and step == 1:
            model.to(to)
        opt.zero_grad()
        out = model(tg.Tensor(X, backend=model.backend))
        ((out.clamp(-0.5, 0.5) if clamp else out) ** 2).sum().backward()
        opt.step()
    return model, opt

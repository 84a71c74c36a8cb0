"""MKL's GEMM for the Numba backend (backends/_mkl.py): against NumPy's, in both float
dtypes and every transpose the backend asks for, and the backend's fallback without it."""

from __future__ import annotations

import numpy as np
import pytest
from tinygrad_rnn.backends import _mkl, numba_backend
from tinygrad_rnn.backends.numpy_backend import NumpyBackend

needs_mkl = pytest.mark.skipif(not _mkl.available(), reason="MKL is not installed "
                               "(pip install 'tinygrad_rnn[mkl]') or TINYGRAD_RNN_MKL=0")
DTYPES = (np.float32, np.float64)


def tolerance(dtype, K: int) -> float:
    """Two sums of K products in different orders: each within K·ε of the exact one, in
    units of the sum of |terms| (the inputs below are O(1), so that is about K)."""
    return 2 * K * np.finfo(dtype).eps * K


@needs_mkl
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)])
def test_gemm_matches_numpy(dtype, trans_a, trans_b):
    rng = np.random.default_rng(0)
    M, K, N = 7, 33, 5
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    out = np.full((M, N), np.nan, dtype)
    _mkl.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b)
    expected = (a.T if trans_a else a) @ (b.T if trans_b else b)
    assert np.abs(out - expected).max() <= tolerance(dtype, K)


@needs_mkl
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_beta_accumulates_and_takes_row_pitch(dtype):
    rng = np.random.default_rng(1)
    big = rng.standard_normal((6, 10)).astype(dtype)
    a = big[:, :4]  # rows of 4 at a pitch of 10
    b = rng.standard_normal((4, 3)).astype(dtype)
    out = rng.standard_normal((6, 3)).astype(dtype)
    expected = a @ b + out
    _mkl.gemm(a, b, out, beta=1.0)
    assert np.abs(out - expected).max() <= tolerance(dtype, 5)


@needs_mkl
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transpose", [False, True])
def test_packed_product_is_reusable(dtype, transpose):
    rng = np.random.default_rng(2)
    rows, K, N = 4, 9, 12
    W = rng.standard_normal((N, K) if transpose else (K, N)).astype(dtype)
    product = _mkl.PackedRight(W, rows, transpose)
    W_before = W.copy()
    for seed in range(3):  # one packing, several products
        A = np.random.default_rng(seed).standard_normal((rows, K)).astype(dtype)
        out = np.full((rows, N), np.nan, dtype)
        product(A, out)
        assert np.abs(out - A @ (W.T if transpose else W)).max() <= tolerance(dtype, K)
    assert np.array_equal(W, W_before)


def test_usable_refuses_what_mkl_cannot_take():
    f32 = np.zeros((3, 4), np.float32)
    assert not _mkl.usable(np.zeros((3, 4), np.int64))
    assert not _mkl.usable(f32, np.zeros((4, 2), np.float64))  # mixed dtypes
    assert not _mkl.usable(f32[:, ::2])  # strided rows
    assert not _mkl.usable(np.asfortranarray(np.zeros((3, 4), np.float32)))
    assert _mkl.usable(f32) == _mkl.available()


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("use_mkl", [True, False])
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_step_loops_match_the_reference_with_and_without_mkl(monkeypatch, use_mkl, kind,
                                                             threads):
    """The Numba backend's per-step loops (large h) agree with the NumPy reference
    whichever BLAS they use, and with the batch's rows split between 2 or 3 threads
    (N = 3: one row each); float64, so only summation order differs."""
    if use_mkl and not _mkl.available():
        pytest.skip("MKL is not installed")
    monkeypatch.setattr(numba_backend, "_blas_threads", lambda: threads)
    monkeypatch.setattr(numba_backend, "_MIN_ROWS", 1)
    if not use_mkl:
        monkeypatch.setattr(_mkl, "usable", lambda *arrays: False)
        monkeypatch.setattr(_mkl, "available", lambda: False)
    else:  # whichever BLAS this machine times faster, the MKL path runs here
        monkeypatch.setitem(_mkl._choice, "mkl", True)
    numba, ref = numba_backend.NumbaBackend(), NumpyBackend()
    monkeypatch.setattr(numba, "single_thread_below", 0)  # always the step loops
    rng = np.random.default_rng(3)
    T, N, h = 4, 3, 5
    G = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    Zx, dH = rng.standard_normal((T, N, G * h)), rng.standard_normal((T, N, h))
    H0, C0, dC = (rng.standard_normal((N, h)) for _ in range(3))
    W, b = 0.5 * rng.standard_normal((h, G * h)), rng.standard_normal(G * h)
    if kind == "rnn":
        pairs = [(numba.rnn_forward(Zx, H0, W, "tanh"), ref.rnn_forward(Zx, H0, W, "tanh"))]
        H = pairs[0][1]
        pairs.append((numba.rnn_backward(dH, H, H0, W, "tanh"),
                      ref.rnn_backward(dH, H, H0, W, "tanh")))
    elif kind == "gru":
        fwd = ref.gru_forward(Zx, H0, W, b)
        pairs = [(numba.gru_forward(Zx, H0, W, b), fwd),
                 (numba.gru_backward(dH, fwd[0], fwd[1], fwd[2], H0, W),
                  ref.gru_backward(dH, fwd[0], fwd[1], fwd[2], H0, W))]
    else:
        fwd = ref.lstm_forward(Zx, H0, C0, W)
        pairs = [(numba.lstm_forward(Zx, H0, C0, W), fwd),
                 (numba.lstm_backward(dH, dC, *fwd[:2], fwd[2], H0, C0, W),
                  ref.lstm_backward(dH, dC, *fwd[:2], fwd[2], H0, C0, W))]
    for got, expected in pairs:
        got = got if isinstance(got, tuple) else (got,)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


@needs_mkl
def test_preferred_times_once_and_keeps_its_choice(monkeypatch):
    """The process's choice between MKL and OpenBLAS is made once, by timing, and kept;
    TINYGRAD_RNN_MKL=1 takes MKL without timing."""
    monkeypatch.setattr(_mkl, "_choice", {})
    calls = []
    assert _mkl.choice() is None
    first = _mkl.preferred(lambda: calls.append("mkl"), lambda: calls.append("openblas"))
    assert set(calls) == {"mkl", "openblas"} and _mkl.choice() in ("mkl", "openblas")
    assert first == (_mkl.choice() == "mkl")
    calls.clear()
    assert _mkl.preferred(lambda: calls.append("mkl"), lambda: calls.append("openblas")) == first
    assert calls == []  # decided already: nothing timed again
    monkeypatch.setattr(_mkl, "_choice", {})
    monkeypatch.setenv("TINYGRAD_RNN_MKL", "1")
    assert _mkl.preferred(lambda: calls.append("mkl"), lambda: calls.append("openblas"))
    assert calls == [] and _mkl.choice() == "mkl"


@pytest.mark.parametrize("use_mkl", [True, False])
def test_large_matmul_matches_numpy_with_either_choice(monkeypatch, use_mkl):
    """The backend's large products (and the transposed operands of a backward) agree with
    NumPy's whichever BLAS the process chose."""
    if use_mkl and not _mkl.available():
        pytest.skip("MKL is not installed")
    monkeypatch.setitem(_mkl._choice, "mkl", use_mkl)
    numba = numba_backend.NumbaBackend()
    monkeypatch.setattr(numba, "single_thread_below", 0)
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((6, 5)), rng.standard_normal((5, 7))
    for x, y in ((a, b), (a.T.copy().T, b), (a, b.T.copy().T), (b.T, a.T)):
        np.testing.assert_allclose(numba.matmul(x, y), x @ y, rtol=1e-12, atol=1e-12)


def test_a_failing_part_raises_and_restores_the_blas_threads(monkeypatch):
    """An exception in one part of a row split reaches the caller, after every part has
    finished, with NumPy's BLAS thread count as it was."""
    from tinygrad_rnn.backends.blas_threads import numpy_blas_threads

    control = numpy_blas_threads()
    before = control[0]() if control else None
    done = []

    def fails():
        raise ValueError("part 1")

    with pytest.raises(ValueError, match="part 1"):
        numba_backend._on_cores([lambda: done.append(0), fails, lambda: done.append(2)])
    assert sorted(done) == [0, 2]
    assert (control[0]() if control else None) == before


def test_row_parts_keep_enough_rows_each(monkeypatch):
    """The batch is split into at most one part per BLAS thread, each of at least
    ``_MIN_ROWS`` rows, covering every row once, in order."""
    for threads, N, expected in ((2, 32, 2), (16, 32, 4), (2, 8, 1), (2, 15, 1), (3, 100, 3)):
        monkeypatch.setattr(numba_backend, "_blas_threads", lambda t=threads: t)
        parts = numba_backend._row_parts(N)
        assert len(parts) == expected
        assert [i for r in parts for i in range(N)[r]] == list(range(N))

"""The CuPy backend: discovery and its errors everywhere; kernels, moves and training on a GPU.

The first part runs everywhere: the core never imports CuPy, ``available()`` lists
``cupy`` exactly when it can run, and the three ways it can fail (no package, no
usable driver, no device) are simulated and must each be named in the error.

The second part is marked ``cupy`` and skips with the backend's own reason where
there is no GPU. Each kernel is held to the NumPy reference (float32 and float64)
with tolerances from rounding-error reasoning, as in ``test_numba_kernels.py``: a
result that sums L rounded terms is off by at most about L·ε·Σ|terms|, and the GPU
rounds differently (cuBLAS sums in another order; CUDA's ``tanhf``/``expf`` are within
2 ulp, ``logf`` within 1; ``1 - y*y`` may become one fused multiply-add). So ``close``
allows 4·L·ε relative and 4·L·ε times the output's scale absolute.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from helpers import (
    adam_steps_moving,
    close_to_ulps,
    kernel_calls,
    rnn_inputs,
)
from hypothesis import given
from hypothesis import strategies as st
from strategies import float_dtypes, rnn_kernel_cases, seeds

import tinygrad_rnn as tg
from tinygrad_rnn import BackendMismatchError
from tinygrad_rnn.charlm import cli

Backend, BackendUnavailable = tg.backends.Backend, tg.backends.BackendUnavailable


def _why_unavailable() -> str | None:
    try:
        tg.backends.get("cupy")
    except BackendUnavailable as e:
        return str(e)
    return None


REASON = _why_unavailable()


def needs_gpu(test):
    """Mark ``test`` ``cupy`` and skip it, with the backend's reason, where CuPy cannot run."""
    return pytest.mark.cupy(pytest.mark.skipif(REASON is not None, reason=str(REASON))(test))


# ====================================================================== everywhere
KERNELS = [
    "matmul",
    "scatter_add",
    "tanh_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "rnn_forward",
    "rnn_backward",
    "global_norm_sq",
    "clip_by_global_norm",
    "sgd_update",
]


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernels_override_the_base_with_the_same_signature(kernel):
    from tinygrad_rnn.backends.cupy_backend import CupyBackend as cls  # needs no CuPy

    assert kernel in vars(cls), f"CupyBackend does not override {kernel}"
    assert inspect.signature(getattr(cls, kernel)) == inspect.signature(getattr(Backend, kernel))


def test_core_never_imports_cupy():
    """Importing the package, the CuPy backend's module, and training on NumPy: no CuPy."""
    code = (
        "import sys, numpy as np\n"
        "import tinygrad_rnn as tg\n"
        "from tinygrad_rnn.backends import cupy_backend\n"
        "from tinygrad_rnn import optim\n"
        "from tinygrad_rnn.charlm.model import RNNLM\n"
        "from tinygrad_rnn.nn.functional import cross_entropy\n"
        "tg.backends.names()\n"
        "m = RNNLM(10, 8, backend='numpy')\n"
        "logits, _ = m(np.zeros((2, 3), dtype=np.int64))\n"
        "cross_entropy(logits, np.zeros(6, dtype=np.int64)).backward()\n"
        "optim.clip_grad_norm(m.parameters(), 1.0)\n"
        "print(sorted(k for k in sys.modules if k == 'cupy' or k.startswith(('cupy.', 'cupyx'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_available_lists_cupy_exactly_when_it_can_run():
    assert ("cupy" in tg.backends.available()) == (REASON is None)
    assert "cupy" in tg.backends.names()  # known either way


def _no_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError


def _fake_cupy(monkeypatch, get_device_count):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    monkeypatch.setitem(sys.modules, "cupy", fake)


def _driver_error(monkeypatch):
    def fails():
        raise RuntimeError(
            "cudaErrorInsufficientDriver: CUDA driver version is insufficient "
            "for CUDA runtime version"
        )

    _fake_cupy(monkeypatch, fails)


def _no_device(monkeypatch):
    _fake_cupy(monkeypatch, lambda: 0)


MISSING = {
    # case: (simulate it, what the message must say)
    "no-package": (
        _no_package,
        ["needs the CuPy package", "pip install", "tinygrad_rnn[cuda12]", "tinygrad_rnn[cuda13]"],
    ),
    "driver": (
        _driver_error,
        ["CUDA driver is not usable", "cudaErrorInsufficientDriver", "nvidia-smi"],
    ),
    "no-device": (_no_device, ["no GPU device was found"]),
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_unusable_cupy_says_what_is_missing(case, monkeypatch, corpus, capsys):
    simulate, phrases = MISSING[case]
    monkeypatch.delitem(tg.backends._instances, "cupy", raising=False)  # a GPU machine's cache
    simulate(monkeypatch)

    with pytest.raises(BackendUnavailable) as info:
        tg.set_backend("cupy")
    message = str(info.value)
    for phrase in phrases:
        assert phrase in message, (phrase, message)
    assert tg.get_backend().name == "numpy"  # the failed switch changed nothing

    # get() re-raises the backend's own error, not a wrapped "failed to load"
    with pytest.raises(BackendUnavailable) as again:
        tg.backends.get("cupy")
    assert str(again.value) == message and "failed to load" not in message
    with pytest.raises(BackendUnavailable, match="backend 'cupy'"):
        tg.Tensor([1.0], backend="cupy")
    assert "cupy" not in tg.backends.available()
    assert {"numpy", "numba"} <= set(tg.backends.available())

    # the command line: one line naming the reason, exit status 2
    code = cli.main(
        [
            "train",
            "--backend",
            "cupy",
            "--data",
            corpus,
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("tinygrad-rnn: error: backend 'cupy'")
    assert phrases[0] in err


# ====================================================================== on a GPU
@pytest.fixture
def gpu():
    return tg.backends.get("cupy")


STRATEGIES = ["loop", "rows"]


@pytest.fixture(params=[("loop", None), ("rows", None), ("rows", 1)], ids=str)
def rnn_gpu(request, gpu):
    """The cupy backend with its recurrence forced to each strategy in turn (rows with
    its k sums split over thread groups, and not)."""
    gpu.rnn_strategy, gpu.rnn_row_split = request.param
    yield gpu
    gpu.rnn_strategy = gpu.rnn_row_split = None


def close(actual, expected, terms: int) -> None:
    """``actual`` (CuPy) equals ``expected`` (NumPy, same dtype and shape) to 4·terms·ε."""
    import cupy

    assert isinstance(actual, cupy.ndarray), type(actual)
    close_to_ulps(cupy.asnumpy(actual), expected, terms)


ref = tg.backends.get("numpy")


# --------------------------------------------------------------------------- RNN
@needs_gpu
@given(**rnn_kernel_cases(max_h=100))  # rows splits k from h = 64
def test_rnn_forward_matches_numpy(rnn_gpu, T, N, h, dtype, nl, seed, scale):
    gpu = rnn_gpu
    Zx, H0, W = rnn_inputs(T, N, h, dtype, seed, scale)
    got = gpu.rnn_forward(gpu.asarray(Zx), gpu.asarray(H0), gpu.asarray(W), nl)
    close(got, ref.rnn_forward(Zx, H0, W, nl), terms=T * h)


@needs_gpu
@given(**rnn_kernel_cases(max_h=100))  # rows splits k from h = 64
def test_rnn_backward_matches_numpy(rnn_gpu, T, N, h, dtype, nl, seed, scale):
    # Both sides get the same H, so relu's mask (y > 0) is the same on both.
    gpu = rnn_gpu
    Zx, H0, W = rnn_inputs(T, N, h, dtype, seed, scale)
    H = ref.rnn_forward(Zx, H0, W, nl)
    dH = np.random.default_rng(seed + 1).normal(size=H.shape).astype(dtype)
    got = gpu.rnn_backward(*(gpu.asarray(a) for a in (dH, H, H0, W)), nl)
    want = ref.rnn_backward(dH, H, H0, W, nl)
    for a, b in zip(got, want, strict=True):  # dZx, dH0, dW_hh (sums over T·N rows)
        close(a, b, terms=T * (h + N))


# ------------------------------------------------------------------ GRU and LSTM
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T,N,h", [(1, 1, 1), (5, 3, 7), (35, 32, 256)])
def test_gru_and_lstm_kernels_match_numpy(gpu, dtype, T, N, h):
    """gates.cu's steps with cuBLAS's GEMMs against the reference kernels (the same
    check runs on the CPU, without a GPU, in test_cuda_on_cpu.py)."""
    rng = np.random.default_rng(T + N + h)
    dev = gpu.asarray
    H0, C0, dC = (rng.standard_normal((N, h)).astype(dtype) for _ in range(3))
    dH = rng.standard_normal((T, N, h)).astype(dtype)
    Zx = rng.standard_normal((T, N, 3 * h)).astype(dtype)
    W = (rng.standard_normal((h, 3 * h)) / np.sqrt(h)).astype(dtype)
    b = rng.standard_normal(3 * h).astype(dtype)
    want = ref.gru_forward(Zx, H0, W, b)
    for a, e in zip(gpu.gru_forward(dev(Zx), dev(H0), dev(W), dev(b)), want, strict=True):
        close(a, e, terms=T * h)
    H, gates, hn = want
    got = gpu.gru_backward(*(dev(a) for a in (dH, H, gates, hn, H0, W)))
    for a, e in zip(got, ref.gru_backward(dH, H, gates, hn, H0, W), strict=True):
        close(a, e, terms=T * (h + N))
    Zx = rng.standard_normal((T, N, 4 * h)).astype(dtype)
    W = (rng.standard_normal((h, 4 * h)) / np.sqrt(h)).astype(dtype)
    want = ref.lstm_forward(Zx, H0, C0, W)
    for a, e in zip(gpu.lstm_forward(dev(Zx), dev(H0), dev(C0), dev(W)), want, strict=True):
        close(a, e, terms=T * h)
    H, C, gates = want
    got = gpu.lstm_backward(*(dev(a) for a in (dH, dC, H, C, gates, H0, C0, W)))
    for a, e in zip(got, ref.lstm_backward(dH, dC, H, C, gates, H0, C0, W), strict=True):
        close(a, e, terms=T * (h + N))


@needs_gpu
@pytest.mark.parametrize("h", [31, 64, 200, 1100])
def test_rnn_strategies_run_as_planned(rnn_gpu, h):
    """Each forced strategy runs as itself (odd h: a partial warp; h > 1024: threads
    that take two columns each in ``rows``)."""
    gpu = rnn_gpu
    assert gpu.rnn_plan(32, h, np.float32) == gpu.rnn_strategy
    Zx, H0, W = rnn_inputs(3, 32, h, np.float32, h, 0.9)
    H = ref.rnn_forward(Zx, H0, W, "tanh")
    close(gpu.rnn_forward(*(gpu.asarray(a) for a in (Zx, H0, W)), "tanh"), H, terms=3 * h)
    dH = np.random.default_rng(h).normal(size=H.shape).astype(np.float32)
    got = gpu.rnn_backward(*(gpu.asarray(a) for a in (dH, H, H0, W)), "tanh")
    for a, b in zip(got, ref.rnn_backward(dH, H, H0, W, "tanh"), strict=True):
        close(a, b, terms=3 * (h + 32))


def test_rnn_plan_picks_rows_up_to_512_and_where_it_fits():
    """The plan is host logic: checked here on a backend object that never met CuPy."""
    from tinygrad_rnn.backends.cupy_backend import CupyBackend

    plan = object.__new__(CupyBackend)  # no __init__: no CuPy, no GPU needed
    assert plan.rnn_plan(32, 1, np.float32) == plan.rnn_plan(32, 512, np.float64) == "rows"
    assert plan.rnn_plan(32, 513, np.float32) == "loop"  # measured: the loop wins at 1024
    plan.rnn_strategy = "rows"  # asked for: wherever a row of H and its sums fit in 48 KiB
    assert plan.rnn_plan(32, 6 * 1024, np.float32) == "rows"
    assert plan.rnn_plan(32, 6 * 1024 + 1, np.float32) == "loop"
    assert plan.rnn_plan(32, 3 * 1024, np.float64) == "rows"
    assert plan.rnn_plan(32, 3 * 1024 + 1, np.float64) == "loop"
    plan.rnn_strategy = "loop"
    assert plan.rnn_plan(32, 64, np.float32) == "loop"
    # the k sums: slices of at least 32, in at most 1024 threads of whole warps
    plan.rnn_strategy = None
    assert [plan._row_split(h) for h in (5, 32, 64, 128, 200, 512, 1024, 1100)] == [
        1, 1, 2, 4, 4, 2, 1, 1]
    plan.rnn_row_split = 1
    assert plan._row_split(512) == 1


@needs_gpu
def test_rnn_at_the_d2l_shape(rnn_gpu):
    """Batch 32, 35 steps, h = 512 (D2L §8.5), float32, a broadcast upstream gradient."""
    gpu = rnn_gpu
    Zx, H0, W = rnn_inputs(35, 32, 512, np.float32, 0, 0.9)
    H = ref.rnn_forward(Zx, H0, W, "tanh")
    close(
        gpu.rnn_forward(gpu.asarray(Zx), gpu.asarray(H0), gpu.asarray(W), "tanh"), H, terms=35 * 512
    )
    import cupy

    dH = cupy.broadcast_to(cupy.ones((), np.float32), H.shape)  # as from outputs.sum().backward()
    got = gpu.rnn_backward(dH, *(gpu.asarray(a) for a in (H, H0, W)), "tanh")
    want = ref.rnn_backward(np.broadcast_to(np.float32(1), H.shape), H, H0, W, "tanh")
    for a, b in zip(got, want, strict=True):
        close(a, b, terms=35 * (512 + 32))


# ------------------------------------------------------- softmax cross-entropy
@needs_gpu
@given(
    N=st.integers(1, 6),
    C=st.integers(1, 600),
    dtype=float_dtypes,
    seed=seeds,
    scale=st.sampled_from([1.0, 30.0, 1000.0]),
)
def test_softmax_cross_entropy_matches_numpy(gpu, N, C, dtype, seed, scale):
    """C up to 600 runs blocks of 32 to 256 threads, one to several elements each."""
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(N, C)) * scale).astype(dtype)
    targets = rng.integers(-C, C, N)  # negative targets count from the end, as in NumPy
    loss, probs = gpu.softmax_cross_entropy(gpu.asarray(logits), gpu.asarray(targets))
    loss_r, probs_r = ref.softmax_cross_entropy(logits, targets)
    # loss = log Σ exp(x - max) - (x_t - max): C terms, each |x - max| up to 2·max|x|
    close(loss, loss_r, terms=2 * C)
    close(probs, probs_r, terms=2 * C)
    grad = rng.normal(size=N).astype(dtype)
    got = gpu.softmax_cross_entropy_backward(probs, gpu.asarray(targets), gpu.asarray(grad))
    close(got, ref.softmax_cross_entropy_backward(gpu.to_numpy(probs), targets, grad), terms=1)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_extreme_logits_stay_finite(gpu, dtype):
    logits = np.array(
        [[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, -1000.0]], dtype
    )
    targets = np.array([1, 2, 0])
    loss, probs = gpu.softmax_cross_entropy(gpu.asarray(logits), gpu.asarray(targets))
    loss, probs = gpu.to_numpy(loss), gpu.to_numpy(probs)
    assert loss.dtype == probs.dtype == dtype
    np.testing.assert_allclose(loss, [2000.0, np.log(3), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)


@needs_gpu
def test_softmax_cross_entropy_at_the_d2l_shape(gpu):
    """35·32 rows of the 28-letter vocabulary: one warp per row."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1120, 28)).astype(np.float32)
    targets = rng.integers(0, 28, 1120)
    loss, probs = gpu.softmax_cross_entropy(gpu.asarray(logits), gpu.asarray(targets))
    loss_r, probs_r = ref.softmax_cross_entropy(logits, targets)
    close(loss, loss_r, terms=56)
    close(probs, probs_r, terms=56)


# ---------------------------------------------------------- the other kernels
@needs_gpu
@given(
    shape=st.lists(st.integers(1, 6), min_size=0, max_size=3).map(tuple),
    dtype=float_dtypes,
    seed=seeds,
    broadcast=st.booleans(),
)
def test_tanh_backward_matches_numpy(gpu, shape, dtype, seed, broadcast):
    rng = np.random.default_rng(seed)
    y = np.tanh(rng.normal(size=shape)).astype(dtype)
    g = rng.normal(size=shape[1:] if broadcast and shape else shape).astype(dtype)
    close(gpu.tanh_backward(gpu.asarray(y), gpu.asarray(g)), ref.tanh_backward(y, g), terms=2)


@needs_gpu
@given(
    V=st.integers(1, 6),
    rest=st.lists(st.integers(1, 4), max_size=2).map(tuple),
    index_shape=st.lists(st.integers(1, 5), min_size=1, max_size=2).map(tuple),
    dtype=float_dtypes,
    seed=seeds,
)
def test_scatter_add_matches_numpy(gpu, V, rest, index_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    index = rng.integers(-V, V, index_shape)  # repeats are likely; negatives wrap
    values = rng.normal(size=index_shape + rest).astype(dtype)
    got = gpu.scatter_add((V,) + rest, gpu.asarray(index), gpu.asarray(values))
    # atomic adds in any order: each sum of up to index.size terms
    close(got, ref.scatter_add((V,) + rest, index, values), terms=index.size)


@needs_gpu
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=5), dtype=float_dtypes, seed=seeds)
def test_global_norm_sq_is_a_float64_device_scalar(gpu, sizes, dtype, seed):
    import cupy

    rng = np.random.default_rng(seed)
    arrays = [(rng.normal(size=n) * 10).astype(dtype) for n in sizes]
    got = gpu.global_norm_sq([gpu.asarray(a) for a in arrays])
    assert isinstance(got, cupy.ndarray) and got.shape == () and got.dtype == np.float64
    # the reference sums each array in its own dtype; this kernel sums in float64
    want = float(ref.global_norm_sq(arrays))
    np.testing.assert_allclose(float(got), want, rtol=4 * sum(sizes) * np.finfo(dtype).eps)


@needs_gpu
@given(
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=11),  # > 8: two launches
    dtype=float_dtypes,
    seed=seeds,
    max_norm=st.floats(0.1, 100.0),
)
def test_clip_by_global_norm_matches_numpy(gpu, sizes, dtype, seed, max_norm):
    import cupy

    rng = np.random.default_rng(seed)
    grads = [(rng.normal(size=n) * 3).astype(dtype) for n in sizes]
    on_gpu = [gpu.asarray(g) for g in grads]
    norm = gpu.clip_by_global_norm(on_gpu, max_norm)
    want = ref.clip_by_global_norm(grads, max_norm)  # scales `grads` in place
    assert isinstance(norm, cupy.ndarray) and norm.shape == () and norm.dtype == np.float64
    # NumPy sums the squares in the arrays' dtype, the kernel in float64: n·ε apart,
    # and so are the two factors θ/‖g‖
    terms = sum(sizes)
    np.testing.assert_allclose(float(norm), float(want), rtol=4 * terms * np.finfo(dtype).eps)
    for got, g in zip(on_gpu, grads, strict=True):
        close(got, g, terms=terms)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_by_global_norm_leaves_nan_gradients_and_non_contiguous_ones(gpu, dtype):
    grads = [np.array([np.nan, 1.0], dtype), np.array([3.0, 4.0], dtype)]
    on_gpu = [gpu.asarray(g) for g in grads]
    assert np.isnan(float(gpu.clip_by_global_norm(on_gpu, 1.0)))
    assert np.isnan(float(ref.clip_by_global_norm(grads, 1.0)))
    for got, g in zip(on_gpu, grads, strict=True):  # a NaN norm scales nothing, as on NumPy
        np.testing.assert_array_equal(gpu.to_numpy(got), g)
    base = gpu.asarray(np.array([3.0, 9.0, 4.0, 9.0], dtype))
    view = base[::2]  # not contiguous: the plain kernel, in place through the view
    assert float(gpu.clip_by_global_norm([view], 1.0)) == 5.0
    want = [0.6, 9.0, 0.8, 9.0]
    np.testing.assert_allclose(gpu.to_numpy(base), want, rtol=4 * np.finfo(dtype).eps)


@needs_gpu
@given(
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=11),
    dtype=float_dtypes,
    seed=seeds,
    lr=st.floats(1e-3, 10.0),
)
def test_sgd_update_matches_numpy_exactly(gpu, sizes, dtype, seed, lr):
    """One rounded multiply and one rounded subtraction on both sides (no fused
    multiply-add on the GPU), so the parameters agree bit for bit."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=n).astype(dtype) for n in sizes]
    grads = [rng.normal(size=n).astype(dtype) for n in sizes]
    on_gpu = [gpu.asarray(p) for p in params]
    gpu.sgd_update(on_gpu, [gpu.asarray(g) for g in grads], lr)
    ref.sgd_update(params, grads, lr)
    for got, want in zip(on_gpu, params, strict=True):
        np.testing.assert_array_equal(gpu.to_numpy(got), want)


@needs_gpu
@given(
    n=st.integers(1, 6),
    k=st.integers(1, 70),
    m=st.integers(1, 6),
    dtype=float_dtypes,
    seed=seeds,
    transpose=st.booleans(),
)
def test_matmul_matches_numpy(gpu, n, k, m, dtype, seed, transpose):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, k)).astype(dtype)
    b = rng.normal(size=(m, k) if transpose else (k, m)).astype(dtype)
    gb = gpu.asarray(b).T if transpose else gpu.asarray(b)  # the backward's W.T
    close(gpu.matmul(gpu.asarray(a), gb), ref.matmul(a, b.T if transpose else b), terms=k)


@needs_gpu
def test_unusual_inputs_fall_back_and_match_numpy(gpu):
    Zx, H0, W = rnn_inputs(3, 2, 4, np.float32, 1, 0.8)
    # mixed dtypes: the base kernel decides, as on NumPy
    got = gpu.rnn_forward(gpu.asarray(Zx), gpu.asarray(H0), gpu.asarray(W, np.float64), "tanh")
    want = ref.rnn_forward(Zx, H0, W.astype(np.float64), "tanh")
    assert got.dtype == want.dtype
    close(got, want, terms=12)
    # float16 and integer inputs: the plain kernels
    y = np.tanh(np.linspace(-2, 2, 7)).astype(np.float16)
    got = gpu.tanh_backward(gpu.asarray(y), gpu.asarray(y))
    assert got.dtype == np.float16
    loss, _ = gpu.softmax_cross_entropy(gpu.asarray(np.array([[1, 2]])), gpu.asarray([1]))
    np.testing.assert_allclose(gpu.to_numpy(loss), np.log1p(np.exp(-1.0)))


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_keep_dtype_never_mutate_and_return_fresh_arrays(gpu, dtype):
    import cupy

    for name, call, inputs in kernel_calls(gpu, dtype):
        before = [cupy.asnumpy(x) for x in inputs]
        result = call(*inputs)
        outputs = result if isinstance(result, tuple) else (result,)
        for x, x0 in zip(inputs, before, strict=True):
            np.testing.assert_array_equal(cupy.asnumpy(x), x0, err_msg=f"{name} mutated an input")
        for out in outputs:
            assert isinstance(out, cupy.ndarray), name
            if name != "global_norm_sq":  # that one is float64 by definition
                assert out.dtype == dtype, name
            assert not any(cupy.may_share_memory(out, x) for x in inputs), name
        for a, b in zip(outputs[:-1], outputs[1:], strict=True):
            assert not cupy.may_share_memory(a, b), name


@needs_gpu
def test_kernels_never_wait_for_the_gpu(gpu):
    """Each kernel call returns while the GPU is still busy with work queued before it.

    An event recorded after ~0.3 s of queued GEMMs must still be pending when the call
    returns: had the call synchronised with the host (a copy to the host, a ``float()``,
    a stream sync), it would have waited for that work first.
    """
    import cupy

    calls = kernel_calls(gpu, np.float32)
    Zx, H0, W = rnn_inputs(35, 32, 256, np.float32, 0, 0.9)
    big = (gpu.asarray(Zx), gpu.asarray(H0), gpu.asarray(W))
    H = gpu.rnn_forward(*big, "tanh")
    calls += [
        ("rnn_forward T=35", lambda *a: gpu.rnn_forward(*a, "tanh"), big),
        (
            "rnn_backward T=35",
            lambda *a: gpu.rnn_backward(*a, "tanh"),
            (cupy.ones_like(H), H, big[1], big[2]),
        ),
    ]
    grads = [cupy.ones((300, 7), np.float32), cupy.ones(5, np.float32)]
    calls += [
        ("clip_by_global_norm", lambda *a: gpu.clip_by_global_norm(list(a), 1.0), grads),
        ("sgd_update", lambda *a: gpu.sgd_update(list(a[:2]), list(a[2:]), 0.1), grads + grads),
    ]
    for _, call, inputs in calls:  # compile, and fill the memory pool, first
        call(*inputs)
    a = cupy.ones((4096, 4096), dtype=np.float32)
    out = cupy.empty_like(a)
    start = time.perf_counter()
    for _ in range(5):
        cupy.matmul(a, a, out=out)
    gpu.synchronize()
    per_gemm = (time.perf_counter() - start) / 5
    # ~0.3 s of GEMMs, but at most 500 launches: a full launch queue would block the host
    busy = min(500, max(20, int(0.3 / max(per_gemm, 1e-5))))
    for name, call, inputs in calls:
        for _ in range(busy):
            cupy.matmul(a, a, out=out)
        marker = cupy.cuda.Event()
        marker.record()
        call(*inputs)
        pending = not marker.done
        gpu.synchronize()
        assert pending, f"{name} waited for the GPU (a host synchronisation)"


# -------------------------------------------------------------- tensors, modules
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_tensor_to_cupy_and_back(dtype):
    import cupy

    a = np.arange(6).reshape(2, 3).astype(dtype)
    t = tg.Tensor(a, dtype=dtype, requires_grad=dtype != np.int64)
    g = t.to("cupy")
    assert g.backend == "cupy" and isinstance(g.data, cupy.ndarray)
    assert g.dtype == dtype and g.requires_grad == t.requires_grad and g.is_leaf
    assert g.to("cupy") is g
    back = g.numpy()
    assert type(back) is np.ndarray and back.dtype == dtype
    np.testing.assert_array_equal(back, a)
    back[0, 0] = 99  # a copy: the device data is untouched
    assert g.numpy()[0, 0] == a[0, 0]
    home = g.to("numpy")
    assert home.backend == "numpy" and type(home.data) is np.ndarray
    np.testing.assert_array_equal(home.numpy(), a)


@needs_gpu
def test_module_to_cupy_and_back():
    from tinygrad_rnn.charlm.model import RNNLM

    model = RNNLM(12, 16, dtype="float64")
    tokens = np.random.default_rng(0).integers(0, 12, (3, 5))
    want, _ = model(tokens)
    assert model.to("cupy") is model and model.backend == "cupy"
    assert all(p.backend == "cupy" for p in model.parameters())
    got, state = model(tokens)
    assert got.backend == state.backend == "cupy"
    # float64: ~16 + 12 roundings per value along the 5 steps
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-14)
    assert all(type(v) is np.ndarray for v in model.state_dict().values())
    model.to("numpy")
    assert model.backend == "numpy"
    np.testing.assert_allclose(model(tokens)[0].numpy(), want.numpy(), rtol=0, atol=0)


@needs_gpu
def test_mixing_cupy_and_numpy_tensors_names_both():
    from tinygrad_rnn.nn import functional as F

    gpu_t = tg.Tensor([[1.0, 2.0]], backend="cupy", requires_grad=True)
    cpu_t = tg.Tensor([[3.0, 4.0]], backend="numpy", requires_grad=True)
    for op in (
        lambda: gpu_t + cpu_t,
        lambda: cpu_t * gpu_t,
        lambda: gpu_t @ cpu_t.T,
        lambda: F.cross_entropy(gpu_t, tg.Tensor([1], backend="numpy")),
    ):
        with pytest.raises(BackendMismatchError) as info:
            op()
        assert "'cupy'" in str(info.value) and "'numpy'" in str(info.value)
        assert ".to(" in str(info.value)


# ----------------------------------------------------------- checkpoints, training
@needs_gpu
def test_checkpoint_from_the_gpu_loads_on_the_cpu_and_back(corpus, tmp_path):
    from tinygrad_rnn.charlm.train import TrainConfig, Trainer, load_model

    # float64, so that the logits of the two backends agree to 1e-9 (a few hundred
    # roundings of O(1) values) and any difference in the restored state would show
    config = TrainConfig(
        num_hiddens=32,
        num_epochs=2,
        batch_size=8,
        num_steps=10,
        max_tokens=2000,
        optimizer="adam",
        lr=0.01,
        dtype="float64",
    )
    on_gpu = Trainer.create(config, corpus, "cupy")
    on_gpu.train_epoch()
    path = on_gpu.save(tmp_path / "gpu.npz")

    model, vocab = load_model(path, backend="numpy")
    assert model.backend == "numpy" and vocab.idx_to_token == on_gpu.vocab.idx_to_token
    for name, value in on_gpu.model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], value, err_msg=name)

    on_cpu = Trainer.resume(path, corpus, backend="numpy")
    assert on_cpu.model.backend == "numpy" and on_cpu.epoch == 1
    for a, b in zip(on_cpu.optimizer.m, on_gpu.optimizer.m, strict=True):
        np.testing.assert_array_equal(a, b.get())
    on_cpu.train_epoch()
    path2 = on_cpu.save(tmp_path / "cpu.npz")

    again = Trainer.resume(path2, corpus, backend="cupy")
    assert again.model.backend == "cupy" and again.epoch == 2
    for name, value in on_cpu.model.state_dict().items():
        np.testing.assert_array_equal(again.model.state_dict()[name], value, err_msg=name)
    for a, b in zip(again.optimizer.v, on_cpu.optimizer.v, strict=True):
        np.testing.assert_array_equal(a.get(), b)
    tokens = np.random.default_rng(0).integers(0, len(vocab), (2, 7))
    np.testing.assert_allclose(
        again.model(tokens)[0].numpy(), on_cpu.model(tokens)[0].numpy(), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@needs_gpu
def test_training_steps_match_numpy(dtype):
    """Three SGD steps of the char-LM (lr 1, clipped to norm 1) on cupy and on numpy.

    float64: every value passes through at most a few thousand roundings of O(1)
    quantities, so 1e-9 is far above the error and far below any real mistake.
    float32: per step the gradients are sums of L ≈ T·(V + h + N) terms (the
    recurrence, the output layer, the batch), clipped to norm ≤ 1; parameters move by
    lr·grad, so after k steps they differ by at most ~2·k·L·ε32 (``f32_tol``).
    """
    from tinygrad_rnn import optim
    from tinygrad_rnn.charlm.model import RNNLM
    from tinygrad_rnn.nn.functional import cross_entropy

    V, h, N, T, steps = 28, 32, 4, 10, 3
    rng = np.random.default_rng(0)
    batches = [(rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))) for _ in range(steps)]
    results = {}
    for backend in ("numpy", "cupy"):
        tg.manual_seed(0)
        model = RNNLM(V, h, dtype=dtype, backend=backend)
        opt = optim.SGD(model.parameters(), lr=1.0)
        losses, norms, state = [], [], None
        for X, Y in batches:
            state = model.begin_state(N) if state is None else state.detach()
            logits, state = model(X, state)
            loss = cross_entropy(logits, Y.T.reshape(-1))
            opt.zero_grad()
            loss.backward()
            norms.append(float(optim.clip_grad_norm(model.parameters(), 1.0)))
            opt.step()
            losses.append(loss.item())
        results[backend] = (np.array(losses), np.array(norms), model.state_dict())
    (l_ref, n_ref, p_ref), (l_gpu, n_gpu, p_gpu) = results["numpy"], results["cupy"]
    if dtype == "float64":
        rtol = atol = 1e-9
    else:
        rtol, atol = 0.0, 2 * steps * T * (V + h + N) * np.finfo(np.float32).eps
    np.testing.assert_allclose(l_gpu, l_ref, rtol=rtol, atol=atol * max(1.0, l_ref.max()))
    np.testing.assert_allclose(n_gpu, n_ref, rtol=rtol, atol=atol * max(1.0, n_ref.max()))
    for name, value in p_ref.items():
        np.testing.assert_allclose(
            p_gpu[name], value, rtol=rtol, atol=atol * max(1.0, np.abs(value).max()), err_msg=name
        )


@needs_gpu
@pytest.mark.parametrize("flags", [["--no-cuda-graph"], []], ids=["eager", "cuda-graph"])
def test_cli_trains_on_cupy(corpus, capsys, flags):
    code = cli.main(["train", "--backend", "cupy", *flags, "--data", corpus, "--epochs", "2",
                     "--hidden", "16", "--batch-size", "4", "--num-steps", "8",
                     "--max-tokens", "600", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "tokens/sec on cupy" in out


@needs_gpu
def test_adam_and_clamp_after_moving_a_model_to_the_gpu():
    """An optimizer made on the CPU keeps working after ``model.to('cupy')`` (its moments
    follow), and the same steps give numpy's numbers; clamp (xp.maximum/minimum) too."""
    want = adam_steps_moving(None, clamp=True)[0].state_dict()
    got = adam_steps_moving("cupy", clamp=True)[0].state_dict()
    for key in want:  # cuBLAS may sum in another order: float32, 4-term products
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)


@needs_gpu
@pytest.mark.parametrize("make", [lambda ps: tg.optim.Adam(ps, lr=0.1),
                                  lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9)])
def test_optimizer_state_loaded_after_moving_the_model_to_the_gpu(make):
    """Made on the CPU, the model moved to the GPU, then a state loaded: the buffers go
    where the parameters now are, and a step runs there."""
    model = tg.nn.Linear(3, 2)
    opt = make(model.parameters())
    state = opt.state_dict()
    model.to("cupy")
    opt.load_state_dict(state)
    model(tg.Tensor(np.ones((4, 3)), backend="cupy")).sum().backward()
    opt.step()
    assert all(p.backend == "cupy" for p in opt.params)
    assert all(isinstance(b, tg.backends.get("cupy").xp.ndarray)
               for name in opt.buffers for b in getattr(opt, name))

"""The GRU and LSTM step kernels of ``backends/cuda/gates.cu`` run, on the CPU, inside the
CuPy backend's own dispatch, and agree with the NumPy reference.

Without a GPU the CuPy tests skip and nvcc only compiles the kernels
(``test_cuda_sources.py``). Here the same source, as the backend reads it, is compiled
by the host C++ compiler with CUDA's keywords defined away and a grid of one thread
(so each kernel's grid-stride loop walks every element); ``CupyBackend``'s
``gru_forward``/``gru_backward``/``lstm_forward``/``lstm_backward`` then run with NumPy
standing in for CuPy and those compiled kernels for its launches. That checks the
kernels' arithmetic and the dispatch around them (argument order, in-place carries, the
GEMMs); what it cannot check (launch configuration, the GPU's math library) is
``test_cupy.py``'s, on a GPU.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest
from tinygrad_rnn.backends import cupy_backend
from tinygrad_rnn.backends._cupy_kernels import cuda_source
from tinygrad_rnn.backends.numpy_backend import NumpyBackend

CXX = shutil.which("c++") or shutil.which("g++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler (c++ or g++) on PATH")

SHIM = """
#include <cmath>
#include <cstddef>
using std::exp; using std::fabs; using std::tanh;
struct tg_dim3 { unsigned x, y, z; };
static const tg_dim3 blockIdx{0, 0, 0}, threadIdx{0, 0, 0}, blockDim{1, 1, 1}, gridDim{1, 1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
"""
KERNEL = re.compile(r"__global__ void (\w+)\(([^)]*)\)")
CTYPE = {"float": np.float32, "double": np.float64}


def wrappers(source: str) -> tuple[str, dict[str, int]]:
    """``extern "C"`` functions ``<kernel>_<float|double>`` calling each template kernel,
    and each kernel's parameter count."""
    text, counts = [], {}
    for name, params in KERNEL.findall(source):
        params = [" ".join(p.split()) for p in params.split(",")]
        counts[name] = len(params)
        names = [p.split()[-1] for p in params]
        for c in CTYPE:
            typed = ", ".join(re.sub(r"\bT\b", c, p) for p in params)
            call = f"{name}<{c}>({', '.join(names)});"
            text.append(f'extern "C" void {name}_{c}({typed}) {{ {call} }}')
    return "\n".join(text), counts


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    source = cuda_source("gates.cu")
    extra, counts = wrappers(source)
    assert set(counts) == {f"tg_{c}_step_{w}" for c in ("gru", "lstm")
                           for w in ("forward", "backward")}
    folder = tmp_path_factory.mktemp("gates")
    cpp, lib = folder / "gates.cpp", folder / "gates.so"
    cpp.write_text(SHIM + source + "\n" + extra)
    run = subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-std=c++17", "-Wall", "-Werror",
                          str(cpp), "-o", str(lib)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return ctypes.CDLL(str(lib)), counts


class HostKernels:
    """What ``CupyBackend._k`` gives ``_gate_step``, over the CPU build of gates.cu."""

    def __init__(self, lib: ctypes.CDLL, counts: dict[str, int]) -> None:
        self.lib, self.counts, self.launches = lib, counts, 0

    def gate_step(self, cell: str, way: str, dtype: np.dtype):
        name = f"tg_{cell}_step_{way}"
        function = getattr(self.lib, f"{name}_{'float' if dtype == np.float32 else 'double'}")

        def launch(grid, block, args):
            assert len(args) == self.counts[name], f"{name}: {len(args)} arguments"
            *arrays, N, h = args
            for a in arrays:
                assert a.dtype == dtype and a.flags.c_contiguous, f"{name}: {a.dtype} {a.flags}"
            assert isinstance(N, np.int32) and isinstance(h, np.int32)
            self.launches += 1
            function(*[ctypes.c_void_p(a.ctypes.data) for a in arrays], ctypes.c_int(N),
                     ctypes.c_int(h))

        return launch


@pytest.fixture
def backend(kernels):
    b = object.__new__(cupy_backend.CupyBackend)  # no CuPy: NumPy plays its part
    b.xp, b._recording = np, False
    b._k = HostKernels(*kernels)
    return b


def tolerance(dtype, terms: int) -> float:
    """The two differ in GEMM summation order (and libm's exp/tanh against NumPy's): a
    few ε per term along the dependency chain; the inputs are O(1)."""
    return 8 * terms * np.finfo(dtype).eps


def close(got, expected, dtype, terms):
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        scale = max(1.0, float(np.abs(e).max()))
        assert np.abs(g - e).max() <= tolerance(dtype, terms) * scale


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T,N,h", [(1, 1, 1), (3, 2, 5), (6, 4, 3)])
def test_gru_kernels_match_the_reference(backend, dtype, T, N, h):
    rng = np.random.default_rng(T * 100 + N * 10 + h)
    ref = NumpyBackend()
    Zx = rng.standard_normal((T, N, 3 * h)).astype(dtype)
    H0 = rng.standard_normal((N, h)).astype(dtype)
    W = (rng.standard_normal((h, 3 * h)) / np.sqrt(h)).astype(dtype)
    b = rng.standard_normal(3 * h).astype(dtype)
    dH = rng.standard_normal((T, N, h)).astype(dtype)
    expected = ref.gru_forward(Zx, H0, W, b)
    close(backend.gru_forward(Zx, H0, W, b), expected, dtype, T * h)
    assert backend._k.launches == T
    H, gates, hn = expected
    close(backend.gru_backward(dH, H, gates, hn, H0, W),
          ref.gru_backward(dH, H, gates, hn, H0, W), dtype, T * T * N * h)
    assert backend._k.launches == 2 * T


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T,N,h", [(1, 1, 1), (3, 2, 5), (6, 4, 3)])
def test_lstm_kernels_match_the_reference(backend, dtype, T, N, h):
    rng = np.random.default_rng(T * 100 + N * 10 + h + 1)
    ref = NumpyBackend()
    Zx = rng.standard_normal((T, N, 4 * h)).astype(dtype)
    H0, C0, dC = (rng.standard_normal((N, h)).astype(dtype) for _ in range(3))
    W = (rng.standard_normal((h, 4 * h)) / np.sqrt(h)).astype(dtype)
    dH = rng.standard_normal((T, N, h)).astype(dtype)
    expected = ref.lstm_forward(Zx, H0, C0, W)
    close(backend.lstm_forward(Zx, H0, C0, W), expected, dtype, T * h)
    H, C, gates = expected
    dC_before = dC.copy()
    close(backend.lstm_backward(dH, dC, H, C, gates, H0, C0, W),
          ref.lstm_backward(dH, dC, H, C, gates, H0, C0, W), dtype, T * T * N * h)
    assert np.array_equal(dC, dC_before), "the caller's dC_T was changed"
    assert backend._k.launches == 2 * T


def test_other_inputs_go_to_the_reference(backend):
    """A shape the kernels do not take (W_hh of the wrong width) falls back to the base
    kernels, which raise NumPy's own error; no launch happens."""
    Zx, H0 = np.zeros((2, 1, 6)), np.zeros((1, 2))
    with pytest.raises(ValueError):
        backend.gru_forward(Zx, H0, np.zeros((2, 3)), np.zeros(6))
    assert backend._k.launches == 0

"""The CUDA kernels of the CuPy backend, and their cache; :mod:`cupy_backend` checks their inputs.

The ``RawModule`` sources are real files, ``backends/cuda/*.cu`` (shipped as package
data), one per module: ``softmax_xent.cu`` (the forward of softmax-cross-entropy),
``rnn_rows.cu`` (the whole recurrence in one launch each way), ``gates.cu`` (one step of
the GRU and of the LSTM, each way, after or before its GEMM), ``multi.cu`` (the sum of
squares, the clip and the SGD update over up to 8 arrays per launch), ``gemm.cu`` (the
tiled GEMM a CUDA graph records, driven by :mod:`._cupy_gemm`). ``block_reduce.cuh`` is
the one block reduction that ``softmax_xent.cu`` and ``multi.cu`` use.

A file's ``#include "block_reduce.cuh"`` is replaced here by the header's text
(:func:`cuda_source`), not left to the compiler, because CuPy caches each binary
under a hash of the source string it is given: an included header's edits would not
reach that hash, and a stale binary would run. Each part of the string starts with a
``#line`` directive naming its file, so a compiler error names the real file and
line. Every file also compiles on its own with ``nvcc -I backends/cuda``.

The ``ElementwiseKernel`` bodies are one-line expressions, kept here as strings: CuPy
writes the kernel around them. Every kernel compiles on first use, once per dtype;
``tests/test_cuda_sources.py`` compiles each of them with nvcc, warnings as errors.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
MAX_GRID_X = 2**31 - 1
LIST = 8  # arrays per launch of the kernels in multi.cu

_INCLUDE = re.compile(r'#include "([\w.]+)"')


@functools.cache
def cuda_source(name: str) -> str:
    """The text of ``cuda/<name>`` with each ``#include "file"`` of ``cuda/`` replaced by
    that file's text, every part under a ``#line`` directive naming its file and line."""
    path = CUDA_DIR / name
    where = path.as_posix()
    lines = [f'#line 1 "{where}"']
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        included = _INCLUDE.fullmatch(line.strip())
        if included:
            lines += [cuda_source(included[1]), f'#line {number + 1} "{where}"']
        else:
            lines.append(line)
    return "\n".join(lines)


#: Each RawModule (its source: ``cuda_source(name + ".cu")``) and the template
#: instances the backend compiles from it (its ``name_expressions``).
RAW_MODULES = {
    "gemm": [f"{name}<{c}>" for name in ("tg_gemm", "tg_sum_splits") for c in CTYPES.values()],
    "softmax_xent": [f"tg_softmax_xent<{c}>" for c in CTYPES.values()],
    "rnn_rows": [
        f"tg_rnn_rows_{way}<{c}, {relu}>"
        for way in ("forward", "backward")
        for c in CTYPES.values()
        for relu in (0, 1)
    ],
    "multi": [
        f"{name}<{c}>"
        for name in ("tg_sum_squares", "tg_clip_scale", "tg_sgd")
        for c in CTYPES.values()
    ],
    "gates": [
        f"tg_{cell}_step_{way}<{c}>"
        for cell in ("gru", "lstm")
        for way in ("forward", "backward")
        for c in CTYPES.values()
    ],
}


# ElementwiseKernel specs, (in_params, out_params, operation, name); CuPy builds one
# kernel per dtype of T on first use.
# One step of the recurrence, after the GEMM hw = H_{t-1} W_hh: h = φ(zx + hw).
# relu keeps NaN (NaN < 0 is false), as NumPy's maximum(z, 0) does.
RNN_STEP = {
    "tanh": ("T zx, T hw", "T h", "h = tanh(zx + hw)", "tinygrad_rnn_step_tanh"),
    "relu": (
        "T zx, T hw",
        "T h",
        "const T z = zx + hw; h = z < T(0) ? T(0) : z",
        "tinygrad_rnn_step_relu",
    ),
}
# One step of BPTT, before the GEMM carry = dz W_hhᵀ: dz = (dh + carry) φ'(z), with
# φ' from the output y = φ(z). relu multiplies by 0 or 1 as the base kernel's
# g * (y > 0), so an infinite gradient still gives NaN where y <= 0.
BPTT_STEP = {
    "tanh": (
        "T dh, T carry, T y",
        "T dz",
        "dz = (dh + carry) * (T(1) - y * y)",
        "tinygrad_rnn_bptt_tanh",
    ),
    "relu": (
        "T dh, T carry, T y",
        "T dz",
        "dz = (dh + carry) * (y > T(0) ? T(1) : T(0))",
        "tinygrad_rnn_bptt_relu",
    ),
}
TANH_BACKWARD = ("T y, T g", "T out", "out = g * (T(1) - y * y)", "tinygrad_rnn_tanh_backward")
# (probs - one_hot(target)) * grad; t and g arrive broadcast from (N, 1), and i is the
# C-order index into (N, C), so i % c is the column.
XENT_BACKWARD = (
    "T p, int64 t, T g, int64 c",
    "T dx",
    "const long long col = i % c; "
    "const long long target = t < 0 ? t + c : t; "
    "dx = (col == target ? p - T(1) : p) * g",
    "tinygrad_rnn_xent_backward",
)
ELEMENTWISE_SPECS = (*RNN_STEP.values(), *BPTT_STEP.values(), TANH_BACKWARD, XENT_BACKWARD)


# --------------------------------------------------------- multi.cu's arguments
def chunks(arrays: list) -> list:
    """``arrays`` in lists of at most 8, one launch each."""
    return [arrays[i : i + LIST] for i in range(0, len(arrays), LIST)]


def list_args(arrays: list) -> tuple:
    """The kernel arguments a0..a7, e0..e7, count for up to 8 contiguous arrays."""
    pointers = [np.uint64(a.data.ptr) for a in arrays] + [np.uint64(0)] * (LIST - len(arrays))
    ends = np.cumsum([a.size for a in arrays]).tolist()
    ends += [ends[-1]] * (LIST - len(arrays))  # past the last array, nothing to find
    return tuple(pointers) + tuple(np.int64(e) for e in ends) + (np.int32(len(arrays)),)


def blocks(arrays: list) -> int:
    """Blocks of 256 threads for a grid-stride loop over all elements (at most 1024)."""
    return max(1, min(1024, -(-sum(a.size for a in arrays) // 256)))


# ------------------------------------------------------------------------ cache
class Kernels:
    """The backend's kernels, built when the backend first needs one."""

    def __init__(self, cupy: Any) -> None:
        ew = cupy.ElementwiseKernel
        self.rnn_step = {phi: ew(*spec) for phi, spec in RNN_STEP.items()}
        self.bptt_step = {phi: ew(*spec) for phi, spec in BPTT_STEP.items()}
        self.tanh_backward = ew(*TANH_BACKWARD)
        self.xent_backward = ew(*XENT_BACKWARD)
        self._multi_module = self._module(cupy, "multi")
        self._xent_module = self._module(cupy, "softmax_xent")
        self._gemm_module = self._module(cupy, "gemm")
        self._gates_module = self._module(cupy, "gates")
        self._xent: dict[np.dtype, Any] = {}
        self._cupy = cupy
        self._rnn_modules: dict[int, Any] = {}  # by unrolling of the k loop
        self._rnn: dict[tuple, Any] = {}

    @staticmethod
    def _module(cupy: Any, name: str, options: tuple = ()) -> Any:
        """The RawModule of ``cuda/<name>.cu`` (CuPy compiles it on first use)."""
        return cupy.RawModule(
            code=cuda_source(f"{name}.cu"), options=options, name_expressions=RAW_MODULES[name]
        )

    def multi(self, name: str, dtype: np.dtype) -> Any:
        """The kernel ``name`` (over lists of arrays) for ``dtype``."""
        return self._multi_module.get_function(f"{name}<{CTYPES[dtype]}>")

    def gemm(self, name: str, dtype: np.dtype) -> Any:
        """``tg_gemm`` or ``tg_sum_splits`` for ``dtype`` (the module compiles on first use)."""
        return self._gemm_module.get_function(f"{name}<{CTYPES[dtype]}>")

    def gate_step(self, cell: str, way: str, dtype: np.dtype) -> Any:
        """``tg_{cell}_step_{way}`` of ``gates.cu`` (cell ``gru`` or ``lstm``) for ``dtype``."""
        return self._gates_module.get_function(f"tg_{cell}_step_{way}<{CTYPES[dtype]}>")

    def rnn_rows(self, way: str, dtype: np.dtype, nonlinearity: str, unroll: int) -> Any:
        """The whole-sequence kernel ``tg_rnn_rows_{way}`` for ``dtype`` and φ."""
        key = (way, dtype, nonlinearity, unroll)
        if key not in self._rnn:
            if unroll not in self._rnn_modules:
                self._rnn_modules[unroll] = self._module(
                    self._cupy, "rnn_rows", (f"-DTG_UNROLL={unroll}",)
                )
            relu = int(nonlinearity == "relu")
            self._rnn[key] = self._rnn_modules[unroll].get_function(
                f"tg_rnn_rows_{way}<{CTYPES[dtype]}, {relu}>"
            )
        return self._rnn[key]

    def xent_forward(self, dtype: np.dtype) -> Any:
        """The softmax-cross-entropy kernel for ``dtype`` (the module compiles on first use)."""
        if dtype not in self._xent:
            self._xent[dtype] = self._xent_module.get_function(f"tg_softmax_xent<{CTYPES[dtype]}>")
        return self._xent[dtype]

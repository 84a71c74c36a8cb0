"""The tiled GEMM a CUDA graph records: the launch of ``tg_gemm`` (``cuda/gemm.cu``).

CuPy refuses every cuBLAS call while a stream is being captured, so while
``CupyBackend.record_graph`` records, the backend's GEMMs come here. ``a`` (..., M, K)
and ``b`` (..., K, N), batch axes broadcast as in NumPy; a block computes a 64 x 64
tile of C, and where those tiles are too few to fill the GPU twice, K is split into
chunks whose partial products ``tg_sum_splits`` adds up in chunk order (so the sums
are deterministic, and equal to cuBLAS's to rounding, not bit for bit).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ._cupy_kernels import MAX_GRID_X, Kernels
from .base import FLOAT_DTYPES, BackendError

_GEMM_TILE = 64  # rows and columns of C per block
_MAX_GRID_YZ = 65535


def _describe(x: Any) -> str:
    """``x``'s type, dtype and shape, for an error message."""
    return f"{type(x).__name__} {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}".strip()


class TiledGemm:
    """``a @ b`` by ``tg_gemm`` on the current device, whose multiprocessors it counts
    once (the chunks of K are sized to fill them)."""

    def __init__(self, cupy: Any, kernels: Kernels) -> None:
        self.xp, self._k = cupy, kernels

    def prepare(self) -> None:
        """Compile and load both kernels at both dtypes and count the multiprocessors now:
        none of it may happen while a stream records."""
        for dtype in FLOAT_DTYPES:
            for name in ("tg_gemm", "tg_sum_splits"):
                self._k.gemm(name, dtype)
        _ = self._sm_count

    @functools.cached_property
    def _sm_count(self) -> int:
        return int(self.xp.cuda.Device().attributes["MultiProcessorCount"])

    def __call__(self, a: Any, b: Any, out: Any = None) -> Any:
        """``a`` (..., M, K) @ ``b`` (..., K, N) of one float dtype -> (..., M, N); ``out``,
        if given, a C-contiguous array of the result's shape and dtype."""
        xp = self.xp
        dtype = a.dtype if isinstance(a, xp.ndarray) and isinstance(b, xp.ndarray) else None
        if dtype not in FLOAT_DTYPES or b.dtype != dtype or a.ndim < 2 or b.ndim < 2:
            raise BackendError(
                "a recorded CUDA graph multiplies CuPy float32/float64 matrices of one dtype "
                f"(CuPy allows no cuBLAS call while it records); got {_describe(a)} @ "
                f"{_describe(b)}")
        (M, K), (K_b, N) = a.shape[-2:], b.shape[-2:]
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if K_b != K:
            raise BackendError(f"matmul: shapes {a.shape} and {b.shape} do not align")
        shape = (*batch, M, N)
        if out is None:
            out = xp.empty(shape, dtype=dtype)
        elif out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
            raise BackendError(
                f"tiled_matmul: out must be C-contiguous {dtype} of shape {shape}, "
                f"got {_describe(out)}")
        count = int(np.prod(batch, dtype=np.int64))
        if out.size == 0:
            return out
        if K == 0:
            out.fill(0)
            return out
        if batch:  # one stride per operand for the whole batch: flatten it (a copy if need be)
            a = xp.broadcast_to(a, (*batch, M, K)).reshape(count, M, K)
            b = xp.broadcast_to(b, (*batch, K, N)).reshape(count, K, N)
        else:
            a, b = a[None], b[None]
        tiles = -(-N // _GEMM_TILE), -(-M // _GEMM_TILE)
        # K in chunks of 4 or more k-steps of 16, until the blocks fill the GPU twice
        steps = -(-K // 16)
        splits = max(1, min(steps // 4, -(-2 * self._sm_count // (tiles[0] * tiles[1] * count))))
        chunk = -(-steps // splits) * 16
        splits = -(-K // chunk)  # no chunk left empty
        grid = (*tiles, count * splits)
        if max(grid[1:]) > _MAX_GRID_YZ or max(N, K) > MAX_GRID_X:  # and int32 sizes
            raise BackendError(
                f"tiled_matmul: {shape} is too large for one launch (grid {grid})")
        a_strides = [np.int64(s // dtype.itemsize) for s in a.strides]
        b_strides = [np.int64(s // dtype.itemsize) for s in b.strides]
        sizes = (np.int32(M), np.int32(N), np.int32(K))
        strides = (*a_strides[1:], a_strides[0], *b_strides[1:], b_strides[0])
        target = out if splits == 1 else xp.empty((count * splits, M, N), dtype=dtype)
        self._k.gemm("tg_gemm", dtype)(
            grid, (256,), (a, b, target, *sizes, *strides, np.int32(splits), np.int64(chunk)))
        if splits > 1:
            self._k.gemm("tg_sum_splits", dtype)(
                (max(1, min(1024, -(-out.size // 256))),), (256,),
                (target, out, np.int64(M * N), np.int64(out.size), np.int32(splits)))
        return out

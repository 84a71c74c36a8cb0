"""The hypothesis strategies the tests draw from, declared once.

Values are bounded (``|x| <= BOUND`` unless asked otherwise) so that the finite
differences and float32 bounds of ``helpers`` hold; sizes are small so that each
example runs in milliseconds. Functions take the ranges that differ between tests
as parameters, so one definition serves every caller.
"""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

BOUND = 3.0

seeds = st.integers(0, 2**32 - 1)
float_dtypes = st.sampled_from([np.float32, np.float64])
nonlinearities = st.sampled_from(["tanh", "relu"])
cell_sizes = st.integers(1, 8)  # n, d, h of one RNN step (the concatenation identity)


# --------------------------------------------------------------------- values, arrays
def floats(lo: float = -BOUND, hi: float = BOUND) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)


def away_from_zero(lo: float, hi: float = BOUND) -> st.SearchStrategy[float]:
    """Floats with ``lo <= |x| <= hi``, either sign (denominators, relu kinks)."""
    return st.builds(lambda s, m: s * m, st.sampled_from([-1.0, 1.0]), floats(lo, hi))


def f64_arrays(shape, elements=None) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=elements if elements is not None else floats())


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 3):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


# two shapes that broadcast together, each of up to 3 dims of up to 3
pair_shapes = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@st.composite
def distinct_arrays(draw, shape, gap: float = 0.1) -> np.ndarray:
    """Float64 arrays whose entries differ pairwise by at least ``gap`` (no max ties)."""
    size = int(np.prod(shape, dtype=np.int64))
    ints = draw(hnp.arrays(np.int64, (size,), elements=st.integers(-30, 30), unique=True))
    return (ints * gap).reshape(shape)


# ------------------------------------------------------------------ op arguments
@st.composite
def axis_args(draw, ndim: int):
    """An ``axis`` argument for a reduction over an ``ndim``-d array: None, int or tuple,
    possibly negative."""
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


@st.composite
def basic_indices(draw, shape):
    """A tuple of ints, slices (any step sign), None and Ellipsis for ``shape``."""
    parts = []
    n_axes = draw(st.integers(1, len(shape)))
    for n in shape[:n_axes]:
        kind = draw(st.sampled_from(["int", "slice", "full"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-n, n))
            stop = draw(st.none() | st.integers(-n, n))
            step = draw(st.sampled_from([None, 1, 2, -1, -2]))
            parts.append(slice(start, stop, step))
        else:
            parts.append(slice(None))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if draw(st.booleans()) and len(parts) < len(shape):
        parts.append(Ellipsis)
    return tuple(parts)


@st.composite
def cat_case(draw):
    """(shapes, axis) for ``cat``: 1 to 3 shapes that agree except along ``axis``."""
    ndim = draw(st.integers(1, 3))
    base = list(draw(shapes(min_dims=ndim, max_dims=ndim)))
    axis = draw(st.integers(-ndim, ndim - 1))
    count = draw(st.integers(1, 3))
    out = []
    for _ in range(count):
        s = list(base)
        s[axis] = draw(st.integers(1, 3))
        out.append(tuple(s))
    return out, axis


# ------------------------------------------------------------------------- RNNs
def rnn_kernel_cases(max_h: int) -> dict:
    """``@given`` keyword strategies for RNN kernel tests: T, N, h, dtype, nl, seed, scale."""
    return dict(
        T=st.integers(1, 8),
        N=st.integers(1, 5),
        h=st.integers(1, max_h),
        dtype=float_dtypes,
        nl=nonlinearities,
        seed=seeds,
        scale=st.floats(0.1, 1.2),
    )


def rnn_layer_cases(T: int = 5, N: int = 3, d: int = 4, h: int = 5) -> dict:
    """``@given`` keyword strategies for an RNN layer: up to T steps, N sequences, d inputs,
    h hidden units (each at least 1), and a seed."""
    return dict(
        T=st.integers(1, T),
        N=st.integers(1, N),
        d=st.integers(1, d),
        h=st.integers(1, h),
        seed=seeds,
    )

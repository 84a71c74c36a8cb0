"""NumPy arrays plus Numba-compiled kernels for the hot paths."""

from __future__ import annotations

from .numpy_backend import NumpyBackend


class NumbaBackend(NumpyBackend):
    """NumPy for everything except the kernels overridden here with ``@njit`` code."""

    name = "numba"

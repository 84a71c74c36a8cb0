"""The reference backend: NumPy arrays and the plain-namespace kernels of :class:`Backend`."""

from __future__ import annotations

import numpy as np

from .base import Backend


class NumpyBackend(Backend):
    """NumPy on the CPU. Every other backend is tested against this one."""

    name = "numpy"
    xp = np

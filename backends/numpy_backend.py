"""The reference backend: NumPy arrays and the plain-namespace kernels of :class:`Backend`."""

from __future__ import annotations

import numpy as np

from .base import Backend
from .host_memory import keep_freed_memory


class NumpyBackend(Backend):
    """NumPy on the CPU. Every other backend is tested against this one."""

    name = "numpy"
    xp = np

    def __init__(self) -> None:
        keep_freed_memory()  # one step's large temporaries are reused by the next

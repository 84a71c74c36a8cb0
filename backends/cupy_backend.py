"""CuPy on an NVIDIA GPU: CuPy arrays as the namespace, cuBLAS through ``@``.

Importing this module never imports CuPy; creating the backend does, and says
exactly what is missing (the package, the driver, or a device) when it cannot run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Backend, BackendUnavailable

INSTALL_HINT = ("install CuPy for your CUDA version: pip install 'tinygrad_rnn[cuda12]' "
                "(CUDA 12) or 'tinygrad_rnn[cuda13]' (CUDA 13)")


def _import_cupy() -> Any:
    try:
        import cupy
    except ImportError as e:
        raise BackendUnavailable(f"backend 'cupy' needs the CuPy package ({e}); {INSTALL_HINT}"
                                 ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver, or driver too old for this CuPy
        raise BackendUnavailable(
            f"backend 'cupy': CuPy is installed but the CUDA driver is not usable ({e}); "
            "check `nvidia-smi` and that the CuPy package matches the driver's CUDA version"
        ) from None
    if count < 1:
        raise BackendUnavailable("backend 'cupy': CuPy and the driver are present but no GPU "
                                 "device was found")
    return cupy


class CupyBackend(Backend):
    """CuPy arrays on the current CUDA device."""

    name = "cupy"

    def __init__(self) -> None:
        self.xp = _import_cupy()
        import cupyx

        self._cupyx = cupyx

    def asarray(self, data: Any, dtype: Any = None) -> Any:
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        return self.xp.asnumpy(array)

    def is_array(self, obj: Any) -> bool:
        return isinstance(obj, self.xp.ndarray)

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()

    def scatter_add(self, shape: tuple, index: Any, values: Any) -> Any:
        out = self.xp.zeros(shape, dtype=values.dtype)
        self._cupyx.scatter_add(out, index, values)
        return out

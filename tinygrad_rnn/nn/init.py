"""Parameter initialisers. They draw on the host from ``generator=`` (a
:class:`tinygrad_rnn.Generator`), by default from ``tg.manual_seed``'s.

D2L §8.5 initialises the RNN's weights from N(0, 0.01²) and biases at zero;
Xavier/Glorot uniform keeps activation variance steady across a layer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backends as _backends
from ..checks import as_nonnegative
from ..random import Generator, resolve
from .module import Parameter

D2L_STD = 0.01


def _backend(backend: str | None):
    return _backends.get(backend) if backend is not None else _backends.get_backend()


def normal(shape: tuple[int, ...], std: float = D2L_STD, dtype: Any = np.float32,
           backend: str | None = None, generator: Generator | None = None) -> Parameter:
    """A parameter drawn from N(0, std²) (D2L's ``torch.randn(shape) * 0.01``)."""
    std, be = as_nonnegative(std, "normal: std"), _backend(backend)
    rng = resolve(generator, "normal")
    return Parameter(be.random_normal(rng, shape, std, np.dtype(dtype)),
                     dtype=dtype, backend=be)


def uniform(shape: tuple[int, ...], low: float, high: float, dtype: Any = np.float32,
            backend: str | None = None, generator: Generator | None = None) -> Parameter:
    """A parameter drawn from U(low, high) (PyTorch's RNN default: ``±1/√hidden_size``)."""
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(f"uniform: need finite low <= high, got {low}, {high}")
    be, rng = _backend(backend), resolve(generator, "uniform")
    return Parameter(be.random_uniform(rng, shape, low, high, np.dtype(dtype)),
                     dtype=dtype, backend=be)


def xavier_uniform(shape: tuple[int, int], gain: float = 1.0, dtype: Any = np.float32,
                   backend: str | None = None, generator: Generator | None = None
                   ) -> Parameter:
    """A (fan_in, fan_out) parameter from U(-a, a), ``a = gain·sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = shape[0], shape[-1]
    if fan_in + fan_out == 0:
        raise ValueError(f"xavier_uniform: shape {tuple(shape)} has no fan (0 in and 0 out)")
    bound = as_nonnegative(gain, "xavier_uniform: gain") * math.sqrt(6.0 / (fan_in + fan_out))
    be, rng = _backend(backend), resolve(generator, "xavier_uniform")
    return Parameter(be.random_uniform(rng, shape, -bound, bound, np.dtype(dtype)),
                     dtype=dtype, backend=be)


def zeros(shape: tuple[int, ...], dtype: Any = np.float32, backend: str | None = None
          ) -> Parameter:
    """A parameter of zeros of ``shape`` (D2L's biases ``b_h``, ``b_q``)."""
    be = _backend(backend)
    return Parameter(be.xp.zeros(shape, dtype=np.dtype(dtype)), dtype=dtype, backend=be)

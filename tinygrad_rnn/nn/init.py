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
from .._tensor import Tensor
from ..autograd import no_grad
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


# ------------------------------------------- torch's in-place forms (nn.init.normal_, ...)
# Each refills an existing tensor (a parameter) under no_grad, as torch's do, and returns
# it. Fans follow this project's (in, out) layout: fan_in = shape[0], fan_out = shape[-1]
# (torch's (out, in) weights have them the other way round, so the bounds agree).
def _fans(tensor: Tensor, what: str) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(f"{what}: fan in and fan out need a tensor of >= 2 dims, got shape "
                         f"{tensor.shape}")
    return tensor.shape[0], tensor.shape[-1]


def _refill(tensor: Any, what: str, fill: Any) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what} takes a Tensor, got {type(tensor).__name__}")
    with no_grad():
        fill(tensor)
    return tensor


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: Generator | None = None) -> Tensor:
    """Refill ``tensor`` from N(mean, std²) (D2L: ``nn.init.normal_(m.weight, std=0.01)``)."""
    return _refill(tensor, "normal_", lambda t: t.normal_(mean, std, generator=generator))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: Generator | None = None) -> Tensor:
    """Refill ``tensor`` from U(a, b)."""
    return _refill(tensor, "uniform_", lambda t: t.uniform_(a, b, generator=generator))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill ``tensor`` with ``val``."""
    return _refill(tensor, "constant_", lambda t: t.fill_(val))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with 0 (D2L: ``nn.init.zeros_(m.bias)``)."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with 1."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    generator: Generator | None = None) -> Tensor:
    """Refill from U(-a, a), ``a = gain·sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = as_nonnegative(gain, "xavier_uniform_: gain") * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0,
                   generator: Generator | None = None) -> Tensor:
    """Refill from N(0, std²), ``std = gain·sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    std = as_nonnegative(gain, "xavier_normal_: gain") * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: Generator | None = None) -> Tensor:
    """Refill from U(-b, b), ``b = gain·sqrt(3 / fan)`` with torch's gains: ``relu`` √2,
    ``leaky_relu`` √(2 / (1 + a²)), ``linear``/``sigmoid`` 1, ``tanh`` 5/3."""
    fan_in, fan_out = _fans(tensor, "kaiming_uniform_")
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    gains = {"relu": math.sqrt(2.0), "leaky_relu": math.sqrt(2.0 / (1 + a * a)),
             "linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3}
    if nonlinearity not in gains:
        raise ValueError(f"kaiming_uniform_: unknown nonlinearity {nonlinearity!r}; one of "
                         f"{', '.join(gains)}")
    bound = gains[nonlinearity] * math.sqrt(3.0 / (fan_in if mode == "fan_in" else fan_out))
    return uniform_(tensor, -bound, bound, generator)

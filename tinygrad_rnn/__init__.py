"""tinygrad_rnn: a small, fast, teachable deep-learning framework.

Its own tensor and reverse-mode autograd over pluggable array backends (NumPy,
Numba, CuPy), with the Linear and RNN layers and the character-level language
model of *Dive into Deep Learning* §8.4–8.6 on top::

    import tinygrad_rnn as tg
    x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad          # Tensor([[2., 4.]])
"""

from . import backends, nn, optim, viz
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backends import get_backend, set_backend, use_backend
from .gradcheck import GradcheckError, gradcheck
from .ops import cat, stack
from .random import manual_seed
from .tensor import BackendMismatchError, Tensor, as_tensor

__version__ = "0.1.0"

__all__ = [
    "BackendMismatchError",
    "Function",
    "GradcheckError",
    "Tensor",
    "as_tensor",
    "backends",
    "cat",
    "enable_grad",
    "get_backend",
    "gradcheck",
    "is_grad_enabled",
    "manual_seed",
    "nn",
    "no_grad",
    "optim",
    "set_backend",
    "stack",
    "use_backend",
    "viz",
]

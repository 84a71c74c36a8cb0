"""tinygrad_rnn: a small, fast, teachable deep-learning framework.

Its own tensor and reverse-mode autograd over pluggable array backends (NumPy,
Numba, CuPy), with the Linear and RNN layers and the character-level language
model of *Dive into Deep Learning* §8.4–8.6 on top::

    import tinygrad_rnn as tg
    x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad          # Tensor([[2., 4.]])
"""

# _source_tree first: in a source checkout it maps tinygrad_rnn.backends to backends/
from . import _source_tree, backends, checks, dtypes, hub, nn, optim, serialization, viz  # noqa: F401
from ._tensor import Tensor, as_tensor
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backends import BackendMismatchError, get_backend, set_backend, use_backend
from .creation import (
    arange,
    empty,
    empty_like,
    eye,
    from_dlpack,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from .dtypes import get_default_dtype
from .functions import cat, matmul, stack
from .gradcheck import GradcheckError, gradcheck
from .random import Generator, default_generator, initial_seed, manual_seed, seed
from .serialization import load, save

__version__ = "0.1.0"

__all__ = [
    "BackendMismatchError",
    "Function",
    "Generator",
    "GradcheckError",
    "Tensor",
    "arange",
    "as_tensor",
    "backends",
    "cat",
    "checks",
    "default_generator",
    "dtypes",
    "empty",
    "empty_like",
    "enable_grad",
    "eye",
    "from_dlpack",
    "full",
    "full_like",
    "get_backend",
    "get_default_dtype",
    "gradcheck",
    "hub",
    "initial_seed",
    "is_grad_enabled",
    "linspace",
    "load",
    "manual_seed",
    "matmul",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "save",
    "seed",
    "serialization",
    "set_backend",
    "stack",
    "tensor",
    "use_backend",
    "viz",
    "zeros",
    "zeros_like",
]

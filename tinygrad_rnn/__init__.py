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
from .einsum import einsum
from .elementwise import maximum, minimum, pow, where  # noqa: A004 - torch.pow
from .functions import cat, matmul, stack
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from .reductions import cumsum, logsumexp, std, var
from .selection import argmin, gather, index_select, masked_fill, scatter, scatter_add
from .serialization import load, save
from .shapes import chunk, clone, flatten, permute, split

__version__ = "0.1.0"

__all__ = [
    "BackendMismatchError",
    "Function",
    "GradcheckError",
    "Tensor",
    "as_tensor",
    "backends",
    "cat",
    "checks",
    "dtypes",
    "enable_grad",
    "get_backend",
    "gradcheck",
    "hub",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "matmul",
    "nn",
    "no_grad",
    "optim",
    "save",
    "serialization",
    "set_backend",
    "stack",
    "use_backend",
    "viz",
    # issue 20: the ops beyond the core
    "argmin", "chunk", "clone", "cumsum", "einsum", "flatten", "gather",
    "index_select", "logsumexp", "masked_fill", "maximum", "minimum", "permute", "pow",
    "scatter", "scatter_add", "split", "std", "var", "where",
]

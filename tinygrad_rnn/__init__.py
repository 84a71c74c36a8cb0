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
from . import (  # noqa: F401
    _source_tree,
    backends,
    checks,
    cuda,
    dtypes,
    hub,
    nn,
    optim,
    serialization,
    tensor_functions,
    viz,
)
from ._tensor import Tensor, as_tensor
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backends import BackendMismatchError, get_backend, set_backend, use_backend
from .devices import device
from .dtypes import bool_, float16, float32, float64, int8, int16, int32, int64, long, uint8
from .einsum import einsum
from .elementwise import maximum, minimum, where
from .functions import cat, matmul, stack
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from .reductions import cumsum, logsumexp, std, var
from .selection import gather, index_select, masked_fill, scatter, scatter_add
from .serialization import load, save
from .shapes import chunk, clone, permute, split
from .tensor_functions import *  # noqa: F403 (torch's function forms: tg.exp, tg.sum, ...)

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
    "cuda", "device", "tensor_functions",
    "bool_", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "long", "uint8",
    *tensor_functions.__all__,
    # issue 20: the ops beyond the core (argmin, flatten, pow: in tensor_functions)
    "chunk", "clone", "cumsum", "einsum", "gather", "index_select", "logsumexp",
    "masked_fill", "maximum", "minimum", "permute", "scatter", "scatter_add", "split", "std",
    "var", "where",
]

# torch's dtype names that are Python builtins' too: attributes, never star-exported
bool, float, int, double, half = bool_, float32, int32, float64, float16  # noqa: A001

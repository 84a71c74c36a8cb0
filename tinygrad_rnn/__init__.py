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
    memory,
    nn,
    optim,
    serialization,
    tensor_functions,
    viz,
)
from ._tensor import Tensor, as_tensor
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backends import BackendMismatchError, get_backend, set_backend, use_backend
from .creation import (
    arange,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    normal,
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
from .devices import device
from .dtypes import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    long,
    uint8,
)
from .einsum import einsum
from .elementwise import maximum, minimum, where
from .functions import cat, matmul, stack
from .gradcheck import GradcheckError, gradcheck
from .random import Generator, default_generator, initial_seed, manual_seed, seed
from .reductions import cumsum, logsumexp, std, var
from .selection import gather, index_select, masked_fill, scatter, scatter_add
from .serialization import load, save
from .shapes import chunk, clone, permute, split
from .tensor_functions import *  # noqa: F403 (torch's function forms: tg.exp, tg.sum, ...)

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
    "from_numpy",
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
    "memory",
    "nn",
    "no_grad",
    "normal",
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

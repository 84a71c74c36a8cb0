"""The ``torch.*`` function forms of Tensor methods: ``tg.exp(x)`` is ``x.exp()``.

D2L writes ``torch.tanh(torch.mm(X, W_xh) + b_h)`` and ``torch.sum(x)`` as often as the
method forms; each function here checks that its first argument is a Tensor (naming the
function and the argument, as every error here does) and calls the method, so a rule
lives in one place: the method's.
"""

from __future__ import annotations

from typing import Any

from ._tensor import Tensor

__all__ = [
    "abs", "amax", "amin", "argmax", "argmin", "clamp", "clip", "cos", "dot", "exp", "flatten",
    "log", "max", "mean", "min", "mm", "mv", "norm", "numel", "pow", "relu", "reshape",
    "sigmoid", "sin", "sqrt", "square", "squeeze", "sum", "swapaxes", "tanh", "transpose",
    "unsqueeze",
]


def _tensor(x: Any, fn: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"tg.{fn}() expects input as a Tensor, got {type(x).__name__} "
                        f"(make one with tg.tensor(...))")
    return x


def _method(name: str, doc: str) -> Any:
    def fn(input: Tensor, *args: Any, **kwargs: Any) -> Any:
        return getattr(_tensor(input, name), name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``tg.{name}(x, ...)`` is ``x.{name}(...)``: {doc}"
    return fn


abs = _method("abs", "elementwise |x|.")  # noqa: A001 (torch's name)
exp = _method("exp", "elementwise e ** x.")
log = _method("log", "elementwise natural log.")
tanh = _method("tanh", "elementwise tanh.")
sin = _method("sin", "elementwise sine.")
cos = _method("cos", "elementwise cosine.")
sigmoid = _method("sigmoid", "elementwise 1 / (1 + e ** -x).")
relu = _method("relu", "elementwise max(x, 0).")
sqrt = _method("sqrt", "elementwise square root.")
clamp = _method("clamp", "elementwise clip into [min, max].")
clip = clamp
sum = _method("sum", "the sum over dim (all dims if None).")  # noqa: A001
mean = _method("mean", "the mean over dim (all dims if None).")
amax = _method("amax", "the largest values over dim.")
amin = _method("amin", "the smallest values over dim.")
argmax = _method("argmax", "indices of the maxima.")
argmin = _method("argmin", "indices of the minima.")
reshape = _method("reshape", "the elements in another shape.")
flatten = _method("flatten", "dims start_dim..end_dim merged.")
squeeze = _method("squeeze", "without size-1 dims.")
unsqueeze = _method("unsqueeze", "with a new dim of size 1.")
transpose = _method("transpose", "two dims exchanged.")
swapaxes = transpose
numel = _method("numel", "the number of elements.")


def max(input: Tensor, *args: Any, **kwargs: Any) -> Any:  # noqa: A001
    """``tg.max(x)`` the largest element, ``tg.max(x, dim)`` ``(values, indices)``,
    ``tg.max(x, y)`` the elementwise maximum (D2L's ``torch.max(X, a)`` in its ReLU)."""
    return _tensor(input, "max").max(*args, **kwargs)


def min(input: Tensor, *args: Any, **kwargs: Any) -> Any:  # noqa: A001
    """As :func:`max`, for the smallest."""
    return _tensor(input, "min").min(*args, **kwargs)


def pow(input: Any, exponent: Any) -> Tensor:  # noqa: A001
    """``input ** exponent`` (either may be the Tensor, as torch's)."""
    if isinstance(input, Tensor):
        return input ** exponent
    return _tensor(exponent, "pow").__rpow__(input)


def square(input: Tensor) -> Tensor:
    """``x * x``."""
    x = _tensor(input, "square")
    return x * x


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """The product of two matrices, (n, k) @ (k, m) -> (n, m); only 2-D operands."""
    a, b = _tensor(input, "mm"), _tensor(mat2, "mm")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"tg.mm() takes two matrices, got shapes {a.shape} and {b.shape}")
    return a @ b


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """A matrix times a vector, (n, k) @ (k,) -> (n,)."""
    a, v = _tensor(input, "mv"), _tensor(vec, "mv")
    if a.ndim != 2 or v.ndim != 1:
        raise ValueError(f"tg.mv() takes a matrix and a vector, got shapes {a.shape} and "
                         f"{v.shape}")
    return a @ v


def dot(input: Tensor, other: Tensor) -> Tensor:
    """The dot product of two vectors of one length, a 0-d tensor."""
    a, b = _tensor(input, "dot"), _tensor(other, "dot")
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"tg.dot() takes two vectors of one length, got shapes {a.shape} "
                         f"and {b.shape}")
    return a @ b


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
    """The 2-norm (Frobenius for a matrix) over ``dim`` (all dims if None); ``p=1`` the
    sum of absolute values. The gradient at a zero vector is 0, as torch's."""
    return _tensor(input, "norm").norm(p, dim, keepdim)

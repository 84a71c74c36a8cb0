"""``Module``: a container of parameters and sub-modules, with PyTorch's API shape."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import backends as _backends
from .. import devices as _device
from .. import dtypes
from .._tensor import Tensor
from ..checks import as_flag


class Parameter(Tensor):
    """A tensor that a :class:`Module` registers and optimizers update (requires grad)."""

    __slots__ = ()

    def __init__(self, data: Any, dtype: Any = None, backend: str | None = None) -> None:
        super().__init__(data, requires_grad=True, dtype=dtype, backend=backend)


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` could not match, as PyTorch reports it."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and models.

    Assigning a :class:`Parameter` or a ``Module`` to an attribute registers it;
    ``named_parameters`` yields a module's own parameters (in assignment order),
    then each sub-module's, with dotted names (``rnn.W_xh``); ``state_dict`` and
    ``load_state_dict`` save and restore them as plain NumPy arrays.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before "
                "assigning attributes")
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            # as PyTorch: a plain Tensor here would silently drop out of the optimizer
            raise TypeError(
                f"cannot assign a {type(value).__name__} to parameter {name!r} of "
                f"{type(self).__name__} (a Parameter or None expected; to change the "
                f"values, use {name}.data[...] = ... or tg.nn.Parameter(...); to move it, "
                "module.to(backend))")
        if name in self._modules and value is not None and not isinstance(value, Module):
            raise TypeError(  # as PyTorch: its parameters would silently drop out
                f"cannot assign a {type(value).__name__} to sub-module {name!r} of "
                f"{type(self).__name__} (a Module or None expected; for a list of layers, "
                "tg.nn.ModuleList)")
        # a replaced parameter or sub-module keeps its place in the order (as in PyTorch);
        # a parameter set to None stays registered, as None, so it keeps its place too
        keep_slot = value is None and name in self._parameters
        if not isinstance(value, Parameter) and not keep_slot:
            self._parameters.pop(name, None)
        if not isinstance(value, Module):
            self._modules.pop(name, None)
        if isinstance(value, Parameter) or keep_slot:
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)  # else del would leave it in parameters()
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The layer's computation; subclasses override it, and ``module(...)`` calls it."""
        raise TypeError(f"{type(self).__name__} defines no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -------------------------------------------------------------- traversal
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Each parameter once, under the first name that reaches it: a parameter
        shared by two layers (tied weights) must be stepped and clipped once. A
        ``prefix`` goes in front of every name, with a dot (``prefix.rnn.W_xh``)."""
        seen: set[int] = set()
        for name, p in self._named_parameters_all(prefix + "." if prefix else ""):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _named_parameters_all(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, p in self._parameters.items():
            if p is not None:  # a parameter set to None (``bias = None``)
                yield prefix + name, p
        for name, m in self._modules.items():
            yield from m._named_parameters_all(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        """Every parameter once (a shared one too), in ``named_parameters`` order."""
        return [p for _, p in self.named_parameters()]

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(dotted name, module)`` for this module (named ``prefix``, ``""`` by default),
        then its sub-modules."""
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in assignment order."""
        return iter(self._modules.values())

    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and every sub-module (``eval()``: False).

        ``Dropout`` and the inter-layer dropout of multi-layer RNNs act only in
        training; a new module starts in training mode, as in PyTorch.
        """
        mode = as_flag(mode, "train(mode)")
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.parameters():
            p.grad = None

    # ------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter name -> NumPy copy (from any backend). A shared parameter appears
        under each of its names, as in PyTorch."""
        return {name: p.numpy() for name, p in self._named_parameters_all("")}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters, cast to each parameter's float dtype and backend
        (as torch's); arrays that are not floats are refused.

        With ``strict``, a missing or unexpected name is an error; a shape mismatch
        always is. A shared parameter needs only one of its names (state dicts written
        before every name was kept have one). Nothing is changed unless every entry
        checks out. Returns the names that did not match (empty lists under ``strict``),
        so a ``strict=False`` load that matched nothing can be seen.
        """
        params = dict(self._named_parameters_all(""))
        names_of: dict[int, list[str]] = {}
        for name, p in params.items():
            names_of.setdefault(id(p), []).append(name)
        missing = sorted(name for name, p in params.items()
                         if not any(alias in state for alias in names_of[id(p)]))
        unexpected = sorted(set(state) - set(params))
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing {missing}, unexpected "
                f"{unexpected}")
        staged = {}
        for name, p in params.items():
            if name not in state:
                continue
            value = state[name]
            value = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            if value.dtype.kind != "f":  # ints, strings, complex: a cast would make up values
                raise TypeError(f"load_state_dict: {name!r} is {value.dtype} in the state dict; "
                                f"parameters take floats ({p.dtype})")
            if value.shape != p.shape:
                raise ValueError(
                    f"load_state_dict: {name!r} has shape {value.shape} in the state dict but "
                    f"{p.shape} in the model")
            staged[name] = p._backend.asarray(value.astype(p.dtype))
        for name, array in staged.items():
            params[name].data = array
            params[name].grad = None
        return IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------- backends
    def to(self, *args: Any, dtype: Any = None, backend: Any = None) -> Module:
        """Move every parameter in place to a backend or device (``"numba"``, ``"cuda"``,
        ``tg.device("cpu")``) and/or cast it to a float ``dtype``, as torch's
        ``model.to(device)`` / ``model.to(torch.float64)``; the same Parameter objects,
        their gradients dropped."""
        for arg in args:
            if isinstance(arg, (str, _backends.Backend, _device.device)) and (
                    not isinstance(arg, str) or arg in _backends.names()
                    or arg.partition(":")[0] in ("cpu", "cuda")):
                backend = backend or arg
            else:
                dtype = dtype or arg
        if dtype is not None and dtypes.checked(dtype).kind != "f":
            raise TypeError(f"Module.to: parameters must stay floats, got dtype {dtype}")
        for p in self.parameters():
            target = p._backend if backend is None else _device.as_backend(backend, p._backend)
            cast = None if dtype is None else dtypes.checked(dtype)
            if target is not p._backend or (cast is not None and cast != p.dtype):
                data = p.numpy() if target is not p._backend else p.data
                p.data = target.asarray(data, dtype=cast or p.dtype)
                p._backend = target
                p.grad = None
        return self

    def double(self) -> Module:
        """Every parameter as float64, in place."""
        return self.to(dtype=np.float64)

    def float(self) -> Module:
        """Every parameter as float32, in place."""
        return self.to(dtype=np.float32)

    def apply(self, fn: Any) -> Module:
        """Call ``fn(module)`` on every sub-module, then on this one (D2L's
        ``net.apply(init_weights)``); returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module."""
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` of the direct sub-modules."""
        return iter(self._modules.items())

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter (False freezes them)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    @property
    def backend(self) -> str:
        """The name of the first parameter's backend (the default backend if there are none)."""
        params = self.parameters()
        return params[0].backend if params else _backends.get_backend().name

    def __repr__(self) -> str:
        lines = [f"  ({name}): {m!r}".replace("\n", "\n  ") for name, m in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}({extra}\n" + "\n".join(lines) + "\n)"

    def extra_repr(self) -> str:
        """Text shown inside this module's repr (e.g. its sizes); subclasses override it."""
        return ""

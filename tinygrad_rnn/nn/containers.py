"""``Sequential`` and ``ModuleList``: modules held in order, registered by position.

A plain Python list of layers on a module registers nothing, so its parameters would
be missing from ``parameters()``, the optimizer and ``state_dict``; these register
each layer under its index (``layers.0.W``), as PyTorch's do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..checks import as_int
from .module import Module


class ModuleList(Module):
    """A list of modules, each registered under its index; it has no ``forward``."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end, registered as ``str(len(self))``."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds Modules, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """``append`` each of ``modules``."""
        for module in modules:
            self.append(module)
        return self

    def __setitem__(self, index: int, module: Module) -> None:
        """Put ``module`` in place of the one at ``index``, under the same name."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds Modules, got {type(module).__name__}")
        setattr(self, list(self._modules)[self._position(index)], module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Any:
        """The module at ``index`` (in order), or a container of a slice of them."""
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[self._position(index)]

    def _position(self, index: Any) -> int:
        """``index`` checked: an int in [-len, len)."""
        index = as_int(index, f"{type(self).__name__} index")
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} modules")
        return index


class Sequential(ModuleList):
    """``Sequential(a, b, c)(x) == c(b(a(x)))``: layers applied in order."""

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def __getitem__(self, index: int | slice) -> Any:
        """The layer at ``index``, or a ``Sequential`` of a slice of them."""
        if isinstance(index, slice):
            return Sequential(*super().__getitem__(index))
        return super().__getitem__(index)

    def forward(self, x: Any) -> Any:
        """Each layer's output is the next one's input."""
        for module in self:
            x = module(x)
        return x

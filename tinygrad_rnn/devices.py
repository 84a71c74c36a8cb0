"""PyTorch's devices, mapped onto backends: ``"cpu"`` is the CPU backend in use (numpy or
numba), ``"cuda"`` the cupy backend. D2L's ``try_gpu()`` runs unchanged::

    def try_gpu(i=0):
        if tg.cuda.device_count() >= i + 1:
            return tg.device(f"cuda:{i}")
        return tg.device("cpu")

A backend name (``"numba"``) is accepted wherever a device is, and says more.
"""

from __future__ import annotations

from typing import Any

from . import backends as _backends

__all__ = ["as_backend", "device", "device_count", "is_available"]


class device:  # noqa: N801 (torch's name)
    """``device("cpu")``, ``device("cuda")``, ``device("cuda:0")`` or ``device("cuda", 0)``.
    Only one GPU is used: a CUDA index other than 0 is refused."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device() takes a string such as 'cpu' or 'cuda', got {type!r}")
        kind, _, number = type.partition(":")
        if number:
            if index is not None:
                raise ValueError(f"device({type!r}, {index}): the index is given twice")
            if not number.isdigit():
                raise ValueError(f"device index must be a number, got {type!r}")
            index = int(number)
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device type {kind!r}: use 'cpu' or 'cuda' (or a "
                             f"backend name: {', '.join(_backends.names())})")
        if index is not None and index != 0:
            raise ValueError(f"device {type!r}: only index 0 exists here (one CPU backend, "
                             "one GPU)")
        self.type, self.index = kind, index

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, device) and other.type == self.type

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + ("" if self.index is None else
                                              f", index={self.index}") + ")"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


def as_backend(where: Any, current: _backends.Backend | None = None) -> _backends.Backend:
    """The backend a device or backend name (or a Backend) stands for: ``cuda`` is cupy,
    ``cpu`` the ``current`` backend (default: the default one) if that is on the CPU,
    else numpy."""
    if isinstance(where, _backends.Backend):
        return where
    if isinstance(where, str) and where in _backends.names():
        return _backends.get(where)
    dev = device(where)
    if dev.type == "cuda":
        return _backends.get("cupy")
    current = current or _backends.get_backend()
    return current if current.name != "cupy" else _backends.get("numpy")


def is_available() -> bool:
    """Whether the cupy backend can run here (CuPy installed and a GPU present)."""
    return "cupy" in _backends.available()


def device_count() -> int:
    """1 where the cupy backend can run, else 0 (one GPU is used)."""
    return int(is_available())

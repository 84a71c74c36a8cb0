"""Backend registry: which array library a tensor's data lives in.

A backend is an array namespace (``xp``: NumPy, CuPy, ...) plus a small table of
kernels (see :class:`Backend`). Tensors carry their backend; ops refuse to mix two.
Backends are found by name among the built-ins and the entry-point group
``tinygrad_rnn.backends``, and created once, on first use.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points

from .base import (
    Backend,
    BackendError,
    BackendMismatchError,
    BackendUnavailable,
    no_read_back,
    read_back_allowed,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendMismatchError",
    "BackendUnavailable",
    "available",
    "get",
    "get_backend",
    "names",
    "no_read_back",
    "read_back_allowed",
    "register",
    "set_backend",
    "use_backend",
]

ENTRY_POINT_GROUP = "tinygrad_rnn.backends"

_BUILTIN: dict[str, str] = {
    "numpy": "tinygrad_rnn.backends.numpy_backend:NumpyBackend",
    "numba": "tinygrad_rnn.backends.numba_backend:NumbaBackend",
    "cupy": "tinygrad_rnn.backends.cupy_backend:CupyBackend",
}
_registered: dict[str, Callable[[], Backend]] = {}
_instances: dict[str, Backend] = {}
# two threads' first use must make one instance, not two; re-entrant, as a factory may
# itself ask for a backend (a plug-in wrapping numba, a Tensor made in __init__)
_creating = threading.RLock()
_current = "numpy"


def _load(target: str) -> Callable[[], Backend]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _factories() -> dict[str, Callable[[], Backend] | str]:
    found: dict[str, Callable[[], Backend] | str] = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    found.update(_registered)
    return found


def register(name: str, factory: Callable[[], Backend]) -> None:
    """Register a backend class (or zero-argument factory) under ``name``.

    Installed packages normally register through the entry-point group
    ``tinygrad_rnn.backends`` instead; this is for code that builds one at run time.
    Registering the same factory again (a notebook cell run twice) keeps the instance,
    so existing tensors stay usable; a new factory replaces it for new tensors.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"a backend name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"register({name!r}, ...) needs a Backend class or a zero-argument "
                        f"factory, got {type(factory).__name__}")
    if _registered.get(name) is factory:
        return
    _registered[name] = factory
    _instances.pop(name, None)


def names() -> list[str]:
    """Every backend name known here, usable or not."""
    return sorted(_factories())


def get(name: str | Backend) -> Backend:
    """The backend called ``name``, created on first use.

    Raises ``ValueError`` for an unknown name (listing the available ones) and
    :class:`BackendUnavailable` when it is known but cannot run here (saying what is missing).
    """
    if isinstance(name, Backend):
        return name
    if name in _instances:
        return _instances[name]
    factories = _factories()
    if name not in factories:
        raise ValueError(f"unknown backend {name!r}; available backends: {', '.join(available())}")
    with _creating:
        if name in _instances:  # made by another thread while this one waited
            return _instances[name]
        factory = factories[name]
        try:
            if isinstance(factory, str):
                factory = _load(factory)
            backend = factory()
        except BackendUnavailable:
            raise
        except Exception as e:  # a broken plug-in must not take the registry down with it
            raise BackendUnavailable(
                f"backend {name!r} failed to load: {type(e).__name__}: {e}") from e
        if not isinstance(backend, Backend):
            raise BackendUnavailable(
                f"backend {name!r} failed to load: its factory returned a "
                f"{type(backend).__name__}, not a tinygrad_rnn Backend")
        if backend.name != name and not any(b is backend for b in _instances.values()):
            # a fresh instance: tensors find it again by name, so it takes the registry's
            try:
                backend.name = name
            except AttributeError:
                raise BackendUnavailable(
                    f"backend {name!r} failed to load: it calls itself {backend.name!r} and "
                    "its name cannot be set; register it under that name") from None
        _instances[name] = backend  # an alias of another backend keeps that one's name
    return backend


def available() -> list[str]:
    """Names of the backends usable on this machine (``cupy`` only with CuPy and a GPU)."""
    usable = []
    for name in names():
        try:
            get(name)
        except BackendUnavailable:
            continue
        usable.append(name)
    return usable


def set_backend(name: str) -> None:
    """Make ``name`` the backend of new tensors created without ``backend=``.

    The default is one for the whole process, as PyTorch's default dtype is: set it
    before starting threads that make tensors, or pass ``backend=`` in them.
    """
    global _current
    get(name)  # fail now, with the reason, rather than at the first tensor
    _current = name


def get_backend() -> Backend:
    """The backend new tensors are created on."""
    return get(_current)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Within the block, new tensors default to backend ``name`` (process-wide, as
    :func:`set_backend`: not for blocks that overlap in several threads)."""
    global _current
    previous = _current
    set_backend(name)
    try:
        yield get(name)
    finally:
        _current = previous

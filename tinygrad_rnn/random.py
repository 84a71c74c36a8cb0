"""Random numbers: ``tg.Generator`` (as ``torch.Generator``) and the default one behind
``tg.manual_seed``, parameter initialisation (:mod:`nn.init`), dropout and the random
factories (``tg.rand``, ``tg.randn``, ``tg.randint``, ...).

A Generator wraps NumPy's PCG64 and draws on the host; a backend moves what it draws,
so one seed gives the same numbers on every backend. The streams are NumPy's, not
torch's: ``tg.manual_seed(0)`` and ``torch.manual_seed(0)`` give different numbers from
the same distributions. Sampling in ``RNNLM.predict`` takes its own ``rng``
(``generate --seed``).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

#: The seed a new ``Generator()`` starts from (torch's ``default_rng_seed_val``), so a
#: fresh generator is reproducible, as torch's is; the default one starts from entropy.
DEFAULT_SEED = 67280421310721
_SEED_RANGE = (-2 ** 63, 2 ** 64)  # torch's: a negative seed is taken modulo 2**64
_STATE_SIZE = 7  # PCG64's state and increment (two 64-bit halves each), its buffered
# 32-bit half (flag, value), and the initial seed: see Generator.get_state


def _check_seed(seed: Any) -> int:
    """``seed`` as an int in [0, 2**64), or a TypeError / ValueError naming it."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {seed!r}")
    seed = int(seed)
    if not _SEED_RANGE[0] <= seed < _SEED_RANGE[1]:
        raise ValueError(f"manual_seed: seed must be in [-2**63, 2**64), got {seed}")
    return seed % 2 ** 64


class Generator:
    """A random-number generator, as ``torch.Generator``: pass it as ``generator=`` to
    ``tg.rand``, ``tg.randn``, ``tg.randint``, the ``*_like`` versions and the
    initialisers of :mod:`tinygrad_rnn.nn.init`.

    ``Generator()`` starts from seed 67280421310721, as torch's does. Its numbers are
    NumPy's PCG64 stream (``np.random.default_rng(seed)``), not torch's Mersenne
    Twister: the same seed gives other values than in torch, from the same
    distributions. ``get_state`` gives a NumPy uint64 array (torch: a uint8 tensor).
    torch's ``device=`` is absent: every generator draws on the host.
    """

    __slots__ = ("_rng", "_seed")

    def __init__(self) -> None:
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed: int) -> Generator:
        """Reset to the start of ``seed``'s stream (an int in [-2**63, 2**64); a negative
        one is taken modulo 2**64, as torch does); returns self."""
        self._seed = _check_seed(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy; returns the new seed."""
        self.manual_seed(secrets.randbits(64))
        return self._seed

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with."""
        return self._seed

    def get_state(self) -> np.ndarray:
        """The whole state as a uint64 array of 7 (for :meth:`set_state`)."""
        bg = self._rng.bit_generator.state
        s, inc = bg["state"]["state"], bg["state"]["inc"]
        return np.array([s >> 64, s & (2 ** 64 - 1), inc >> 64, inc & (2 ** 64 - 1),
                         bg["has_uint32"], bg["uinteger"], self._seed], dtype=np.uint64)

    def set_state(self, new_state: np.ndarray) -> Generator:
        """Restore a state :meth:`get_state` gave; returns self."""
        if not isinstance(new_state, np.ndarray):
            raise TypeError(f"set_state: new_state must be the NumPy array get_state() "
                            f"gives, got {type(new_state).__name__}")
        if new_state.dtype != np.uint64 or new_state.shape != (_STATE_SIZE,):
            raise ValueError(f"set_state: new_state must be a uint64 array of shape "
                             f"({_STATE_SIZE},), got {new_state.dtype} of shape "
                             f"{new_state.shape}")
        s_hi, s_lo, inc_hi, inc_lo, has_uint32, uinteger, seed = (int(v) for v in new_state)
        if has_uint32 > 1 or uinteger >= 2 ** 32 or not inc_lo & 1:
            raise ValueError("set_state: new_state is not a state get_state() gave "
                             "(PCG64's increment is odd, its buffered half 32 bits)")
        rng = np.random.default_rng()
        rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": s_hi << 64 | s_lo, "inc": inc_hi << 64 | inc_lo},
            "has_uint32": has_uint32, "uinteger": uinteger}
        self._rng, self._seed = rng, seed
        return self

    @property
    def numpy_generator(self) -> np.random.Generator:
        """The NumPy Generator that draws the numbers (shared, not a copy)."""
        return self._rng

    def __repr__(self) -> str:
        return f"<tinygrad_rnn.Generator initial_seed={self._seed}>"


#: The generator used where none is given (torch's ``default_generator``); seeded from
#: entropy at import, as before ``tg.manual_seed`` is called in torch.
default_generator = Generator()
default_generator.seed()


def manual_seed(seed: int) -> Generator:
    """Reseed the default generator (parameter initialisation, dropout, the random
    factories); returns it, as torch's ``manual_seed`` does. Its stream is
    ``np.random.default_rng(seed)``'s."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The seed the default generator was last seeded with."""
    return default_generator.initial_seed()


def seed() -> int:
    """Reseed the default generator from entropy; returns the seed."""
    return default_generator.seed()


class _Current(threading.local):
    generator: Generator | None = None  # this thread's override (:func:`using`)


_current = _Current()


@contextlib.contextmanager
def using(generator: Generator) -> Iterator[Generator]:
    """Within the block, and in this thread only, draws that name no generator
    (initialisation, dropout, the random factories) come from ``generator``: two seeded
    runs in two threads each get what their seed gives alone (a ``Trainer`` holds one)."""
    if not isinstance(generator, Generator):
        raise TypeError(f"using() takes a tg.Generator, got {type(generator).__name__}")
    previous, _current.generator = _current.generator, generator
    try:
        yield generator
    finally:
        _current.generator = previous


def current() -> Generator:
    """The generator draws come from: this thread's :func:`using`, else the default one."""
    return _current.generator or default_generator


def resolve(generator: Generator | None, what: str) -> np.random.Generator:
    """The NumPy Generator to draw from: ``generator``'s, or :func:`current`'s for None;
    a TypeError naming ``what`` for anything else."""
    if generator is None:
        return current()._rng
    if not isinstance(generator, Generator):
        raise TypeError(f"{what}: generator must be a tg.Generator or None, "
                        f"got {type(generator).__name__}")
    return generator._rng


def generator() -> np.random.Generator:
    """The current generator's NumPy Generator (what initialisation and dropout draw from)."""
    return current()._rng

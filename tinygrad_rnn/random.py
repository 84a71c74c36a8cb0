"""The library's random generator (parameter initialisation): one seed, every backend.

Sampling in ``RNNLM.predict`` takes its own ``rng`` (``generate --seed``).
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the generator behind parameter initialisation; returns it."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def generator() -> np.random.Generator:
    """The current generator."""
    return _rng

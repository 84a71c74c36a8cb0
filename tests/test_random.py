"""``tinygrad_rnn.random``: the one generator that initialisation and sampling draw from."""

from __future__ import annotations

import tinygrad_rnn as tg
from tinygrad_rnn.random import generator


def test_manual_seed_returns_the_generator_it_installs():
    """catches: manual_seed returns a copy: draws from it do not advance initialisation's."""
    g = tg.manual_seed(5)
    assert g is tg.default_generator and g.numpy_generator is generator()
    first = g.numpy_generator.standard_normal()
    assert tg.manual_seed(5).numpy_generator.standard_normal() == first

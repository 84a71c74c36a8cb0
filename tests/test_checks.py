"""The argument checks of ``tinygrad_rnn.checks`` against the rules they restate."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_rnn.checks import check_broadcast

# shapes with sides 0, 1 and larger, so that equal, stretched and clashing sides all occur
side_shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)


@given(side_shapes, side_shapes)
def test_check_broadcast_is_numpys_rule(a, b):
    """The hand-written rule gives np.broadcast_shapes' shape, or a ValueError naming
    both shapes where NumPy refuses them."""
    try:
        expected = np.broadcast_shapes(a, b)
    except ValueError:
        with pytest.raises(ValueError, match=r"op: shapes .* cannot be broadcast together"):
            check_broadcast(a, b, "op")
    else:
        assert check_broadcast(a, b, "op") == expected


@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4))
def test_check_broadcast_of_broadcastable_shapes(shapes):
    a, b = shapes.input_shapes
    assert check_broadcast(a, b, "op") == shapes.result_shape


@given(st.lists(st.integers(0, 4), max_size=4).map(tuple))
def test_check_broadcast_returns_a_tuple_for_equal_shapes(shape):
    out = check_broadcast(list(shape), list(shape), "op")  # lists in, a tuple out
    assert out == shape and type(out) is tuple

"""The concatenation identity of D2L §8.4.2, in values and gradients.

``X W_xh + H W_hh == cat((X, H), 1) @ cat((W_xh, W_hh), 0)``: the right side is one
GEMM with reduction length d + h, the left two GEMMs (lengths d and h) and an add.

Float32 tolerance, elementwise (Higham §3.1): a dot product of length K computed in
any order has error at most γ_K·Σ|a_k b_k| with γ_K ≈ K·ε32, and the final add one
more rounding. So each side is within ``(d + h + 1)·ε32·(|X||W_xh| + |H||W_hh|)`` of
the exact value, and the two sides within twice that. Gradients likewise: dX and dH
are GEMMs with reduction length h (``G Wᵀ``), dW_xh and dW_hh with length n (``Xᵀ G``);
in the concatenated form they are the same products followed by an exact split.
"""

from __future__ import annotations

import numpy as np
from helpers import EPS32
from hypothesis import given
from strategies import cell_sizes, seeds

import tinygrad_rnn as tg


def _inputs(n, d, h, seed):
    rng = np.random.default_rng(seed)
    return {
        "X": rng.uniform(-3, 3, (n, d)).astype(np.float32),
        "H": rng.uniform(-1, 1, (n, h)).astype(np.float32),
        "W_xh": rng.normal(0, 0.5, (d, h)).astype(np.float32),
        "W_hh": rng.normal(0, 0.5, (h, h)).astype(np.float32),
        "G": rng.standard_normal((n, h)).astype(np.float32),
    }


def _within(actual, expected, bound, what):
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else ()
    assert (err <= bound).all(), (
        f"{what}: error {err[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"
    )


@given(n=cell_sizes, d=cell_sizes, h=cell_sizes, seed=seeds)
def test_concatenation_identity(backend, n, d, h, seed):
    a = _inputs(n, d, h, seed)
    sides = {}
    for side in ("split", "cat"):
        ts = {
            k: tg.Tensor(a[k], backend=backend, requires_grad=True)
            for k in ("X", "H", "W_xh", "W_hh")
        }
        if side == "split":
            out = ts["X"] @ ts["W_xh"] + ts["H"] @ ts["W_hh"]
        else:
            out = tg.cat((ts["X"], ts["H"]), 1) @ tg.cat((ts["W_xh"], ts["W_hh"]), 0)
        assert out.shape == (n, h) and out.dtype == np.float32 and out.backend == backend
        out.backward(a["G"])
        sides[side] = (out.numpy(), {k: t.grad.numpy() for k, t in ts.items()})

    X, H, Wx, Wh, G = (a[k].astype(np.float64) for k in ("X", "H", "W_xh", "W_hh", "G"))
    exact = X @ Wx + H @ Wh
    value_bound = (d + h + 1) * EPS32 * (np.abs(X) @ np.abs(Wx) + np.abs(H) @ np.abs(Wh))
    exact_grads = {"X": G @ Wx.T, "H": G @ Wh.T, "W_xh": X.T @ G, "W_hh": H.T @ G}
    grad_bounds = {
        "X": h * EPS32 * (np.abs(G) @ np.abs(Wx.T)),
        "H": h * EPS32 * (np.abs(G) @ np.abs(Wh.T)),
        "W_xh": n * EPS32 * (np.abs(X.T) @ np.abs(G)),
        "W_hh": n * EPS32 * (np.abs(H.T) @ np.abs(G)),
    }
    for side, (value, grads) in sides.items():
        _within(value, exact, value_bound, f"{side} value vs exact")
        for k, g in grads.items():
            assert g.shape == a[k].shape and g.dtype == np.float32
            _within(g, exact_grads[k], grad_bounds[k], f"{side} d/d{k} vs exact")
    _within(sides["split"][0], sides["cat"][0], 2 * value_bound, "split vs cat value")
    for k in exact_grads:
        _within(
            sides["split"][1][k], sides["cat"][1][k], 2 * grad_bounds[k], f"split vs cat d/d{k}"
        )

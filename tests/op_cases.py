"""The new ops of issue 20 as a table of cases, shared by their tests.

Each case's ``fn(m, *xs)`` is written once for both libraries: ``m`` is
``tinygrad_rnn`` or ``torch`` (their APIs agree, which the cases test too), ``xs``
their tensors. ``shapes`` are the inputs' shapes and ``lo``/``hi`` bound their values
(a domain where the op is smooth: bases > 0 for a power, probabilities inside (0, 1)).
Constants (masks, indices) come from :func:`const`, the same on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import tinygrad_rnn as tg


def const(m: Any, array: Any, like: Any) -> Any:
    """``array`` as a constant tensor of ``m`` beside ``like`` (same backend)."""
    array = np.asarray(array)
    if m is tg:
        return tg.Tensor(array, dtype=array.dtype, backend=like.backend)
    return m.tensor(array)


def mask(m: Any, shape: tuple, like: Any, offset: int = 0) -> Any:
    """A fixed bool pattern of ``shape`` (every other element, shifted by ``offset``)."""
    return const(m, (np.arange(int(np.prod(shape))).reshape(shape) + offset) % 3 == 0, like)


def F(m: Any) -> Any:
    return m.nn.functional


@dataclass
class Case:
    name: str
    fn: Callable[..., Any]
    shapes: list
    lo: float = -3.0
    hi: float = 3.0

    def __repr__(self) -> str:
        return self.name


IDX = np.array([[0, 2], [1, 1], [3, 0]])  # gather/scatter_add: repeats within a row
UNIQUE = np.array([[0, 2], [1, 3], [3, 0]])  # scatter: one write per position
CE_T = np.array([0, 2, 1, 2])
CE_T_IGN = np.array([0, -100, 1, 2])
W = np.array([0.5, 2.0, 1.5])

CASES = [
    Case("where", lambda m, x, y: m.where(mask(m, x.shape, x), x, y), [(2, 3), (3,)]),
    Case("where_scalar", lambda m, x: m.where(mask(m, x.shape, x), x, 0.5), [(2, 3)]),
    Case("Tensor.where", lambda m, x, y: x.where(mask(m, x.shape, x), y), [(2, 3), (2, 1)]),
    Case("maximum", lambda m, x, y: m.maximum(x, y), [(2, 3), (3,)]),
    Case("minimum", lambda m, x, y: m.minimum(x, y), [(2, 1), (1, 3)]),
    Case("pow_tensor", lambda m, x, y: x ** y, [(2, 3), (3,)], 0.3, 2.5),
    Case("tg.pow", lambda m, x, y: m.pow(x, y), [(3,), (2, 3)], 0.3, 2.5),
    Case("rpow", lambda m, x: 2.5 ** x, [(4,)]),
    Case("pow_number_base", lambda m, x: m.pow(1.5, x), [(4,)]),
    Case("expand", lambda m, x: x.expand(2, 3, 4), [(3, 1)]),
    Case("expand_-1", lambda m, x: x.expand(2, -1, 3), [(4, 1)]),
    Case("expand_as", lambda m, x, y: x.expand_as(y) * y, [(1, 3), (2, 3)]),
    Case("var_dim", lambda m, x: x.var(1), [(3, 4)]),
    Case("var_all_biased", lambda m, x: x.var(correction=0), [(3, 4)]),
    Case("var_tuple_keepdim", lambda m, x: m.var(x, (0, 2), keepdim=True), [(2, 3, 2)]),
    Case("std_dim", lambda m, x: x.std(0, keepdim=True), [(3, 4)]),
    Case("std_unbiased_false", lambda m, x: m.std(x, 1, unbiased=False), [(3, 4)]),
    Case("logsumexp", lambda m, x: x.logsumexp(1), [(3, 4)]),
    Case("logsumexp_tuple", lambda m, x: m.logsumexp(x, (0, -1), keepdim=True), [(2, 3, 2)]),
    Case("cumsum", lambda m, x: x.cumsum(0), [(3, 4)]),
    Case("cumsum_last", lambda m, x: m.cumsum(x, dim=-1), [(2, 5)]),
    Case("gather", lambda m, x: x.gather(1, const(m, IDX, x)), [(3, 4)]),
    Case("gather_dim0", lambda m, x: m.gather(x, 0, const(m, IDX.T[:, :2] % 3, x)), [(3, 4)]),
    Case("scatter", lambda m, x, s: x.scatter(1, const(m, UNIQUE, x), s), [(3, 4), (3, 2)]),
    Case("scatter_value", lambda m, x: x.scatter(1, const(m, UNIQUE, x), 0.5), [(3, 4)]),
    Case("scatter_add", lambda m, x, s: m.scatter_add(x, 1, const(m, IDX, x), s),
         [(3, 4), (3, 2)]),
    Case("index_select", lambda m, x: x.index_select(1, const(m, [2, 0, 2], x)), [(3, 4)]),
    Case("index_select_rows", lambda m, x: m.index_select(x, 0, const(m, [1, 1, 0], x)),
         [(3, 2)]),
    Case("masked_fill", lambda m, x: x.masked_fill(mask(m, (4,), x), -1.0), [(3, 4)]),
    Case("masked_fill_broadcast", lambda m, x: x.masked_fill(mask(m, (2, 3), x), 2.0), [(3,)]),
    Case("flatten", lambda m, x: x.flatten(1), [(2, 3, 2)]),
    Case("flatten_mid", lambda m, x: m.flatten(x, 1, 2), [(2, 3, 2, 2)]),
    Case("view", lambda m, x: x.view(3, -1) * x.view(3, 4)[:, :1], [(2, 6)]),
    Case("permute", lambda m, x: x.permute(2, 0, 1), [(2, 3, 4)]),
    Case("permute_neg", lambda m, x: m.permute(x, (-1, 0, 1)), [(2, 3, 2)]),
    Case("clone", lambda m, x: x.clone() * x, [(3,)]),
    Case("repeat", lambda m, x: x.repeat(2, 1, 3), [(2, 2)]),
    Case("chunk", lambda m, x: x.chunk(3, 1)[1] * x.chunk(3, 1)[2], [(2, 6)]),
    Case("chunk_uneven", lambda m, x: m.chunk(x, 2, 0)[-1], [(5, 2)]),
    Case("split", lambda m, x: x.split([1, 3], 1)[1], [(2, 4)]),
    Case("split_size", lambda m, x: m.split(x, 2)[2], [(5, 2)]),
    Case("einsum_matmul", lambda m, a, b: m.einsum("ij,jk->ik", a, b), [(2, 3), (3, 4)]),
    Case("einsum_bmm", lambda m, a, b: m.einsum("bij,bjk->bik", a, b), [(2, 2, 3), (2, 3, 2)]),
    Case("einsum_attention", lambda m, q, k: m.einsum("bhqd,bhkd->bhqk", q, k),
         [(1, 2, 3, 2), (1, 2, 2, 2)]),
    Case("einsum_trace", lambda m, a: m.einsum("ii", a), [(3, 3)]),
    Case("einsum_diag", lambda m, a: m.einsum("ii->i", a), [(3, 3)]),
    Case("einsum_sum_axis", lambda m, a: m.einsum("ij->j", a), [(2, 3)]),
    Case("einsum_outer", lambda m, a, b: m.einsum("i,j->ij", a, b), [(2,), (3,)]),
    Case("einsum_dot", lambda m, a, b: m.einsum("i,i", a, b), [(4,), (4,)]),
    Case("einsum_implicit", lambda m, a, b: m.einsum("ij,jk", a, b), [(2, 3), (3, 2)]),
    Case("einsum_ellipsis", lambda m, a, b: m.einsum("...ij,...jk->...ik", a, b),
         [(2, 1, 2, 3), (3, 3, 2)]),
    Case("einsum_list", lambda m, a, b, c: m.einsum("ij,jk,k->i", [a, b, c]),
         [(2, 3), (3, 2), (2,)]),
    Case("softmax_method", lambda m, x: x.softmax(-1), [(2, 3)]),
    Case("log_softmax_method", lambda m, x: x.log_softmax(0), [(2, 3)]),
    Case("softmax_dim", lambda m, x: F(m).softmax(x, dim=1), [(2, 3, 2)]),
    Case("log_softmax_dim", lambda m, x: F(m).log_softmax(x, dim=-1), [(2, 3, 2)]),
    Case("leaky_relu", lambda m, x: F(m).leaky_relu(x, 0.1), [(2, 3)]),
    Case("gelu", lambda m, x: F(m).gelu(x), [(2, 3)]),
    Case("gelu_tanh", lambda m, x: F(m).gelu(x, approximate="tanh"), [(2, 3)]),
    Case("silu", lambda m, x: F(m).silu(x), [(2, 3)]),
    Case("elu", lambda m, x: F(m).elu(x, alpha=0.5), [(2, 3)]),
    Case("softplus", lambda m, x: F(m).softplus(x), [(2, 3)]),
    Case("softplus_beta", lambda m, x: F(m).softplus(x, beta=2.0, threshold=30.0), [(2, 3)]),
    Case("logsigmoid", lambda m, x: F(m).logsigmoid(x), [(2, 3)]),
    Case("layer_norm", lambda m, x, w, b: F(m).layer_norm(x, (3,), w, b), [(2, 3), (3,), (3,)]),
    Case("layer_norm_2d", lambda m, x: F(m).layer_norm(x, (2, 3)), [(2, 2, 3)]),
    # losses
    Case("cross_entropy_none", lambda m, x: F(m).cross_entropy(x, const(m, CE_T, x),
                                                              reduction="none"), [(4, 3)]),
    Case("cross_entropy_weight", lambda m, x: F(m).cross_entropy(x, const(m, CE_T, x),
                                                                _w(m, x)), [(4, 3)]),
    Case("cross_entropy_ignore", lambda m, x: F(m).cross_entropy(x, const(m, CE_T_IGN, x)),
         [(4, 3)]),
    Case("cross_entropy_ignore_sum", lambda m, x: F(m).cross_entropy(
        x, const(m, CE_T, x), reduction="sum", ignore_index=2), [(4, 3)]),
    Case("cross_entropy_smoothing", lambda m, x: F(m).cross_entropy(
        x, const(m, CE_T_IGN, x), label_smoothing=0.2), [(4, 3)]),
    Case("cross_entropy_smoothing_weight", lambda m, x: F(m).cross_entropy(
        x, const(m, CE_T_IGN, x), weight=_w(m, x), label_smoothing=0.3), [(4, 3)]),
    Case("cross_entropy_smoothing_none", lambda m, x: F(m).cross_entropy(
        x, const(m, CE_T_IGN, x), reduction="none", label_smoothing=0.3), [(4, 3)]),
    Case("cross_entropy_probs", lambda m, x, p: F(m).cross_entropy(x, p.softmax(1)),
         [(4, 3), (4, 3)]),
    Case("cross_entropy_probs_weight_smooth", lambda m, x, p: F(m).cross_entropy(
        x, p.softmax(1), weight=_w(m, x), label_smoothing=0.1, reduction="sum"),
         [(4, 3), (4, 3)]),
    Case("cross_entropy_nd", lambda m, x: F(m).cross_entropy(
        x, const(m, [[0, 2], [1, -100]], x)), [(2, 3, 2)]),
    Case("cross_entropy_unbatched", lambda m, x: F(m).cross_entropy(x, const(m, 1, x)), [(3,)]),
    Case("nll_loss", lambda m, x: F(m).nll_loss(x, const(m, CE_T_IGN, x), weight=_w(m, x)),
         [(4, 3)]),
    Case("nll_loss_none", lambda m, x: F(m).nll_loss(x, const(m, CE_T, x), reduction="none"),
         [(4, 3)]),
    Case("l1_loss", lambda m, x, y: F(m).l1_loss(x, y), [(2, 3), (2, 3)]),
    Case("l1_loss_sum", lambda m, x, y: F(m).l1_loss(x, y, reduction="sum"), [(4,), (4,)]),
    Case("mse_loss", lambda m, x, y: F(m).mse_loss(x, y, reduction="sum"), [(2, 3), (2, 3)]),
    Case("bce", lambda m, x, t: F(m).binary_cross_entropy(x, t), [(2, 3), (2, 3)], 0.05, 0.95),
    Case("bce_weight_none", lambda m, x, t: F(m).binary_cross_entropy(
        x, t, weight=_w(m, x), reduction="none"), [(2, 3), (2, 3)], 0.05, 0.95),
    Case("bce_logits", lambda m, x, t: F(m).binary_cross_entropy_with_logits(x, t),
         [(2, 3), (2, 3)]),
    Case("bce_logits_pos_weight", lambda m, x, t: F(m).binary_cross_entropy_with_logits(
        x, t, weight=_w(m, x)[:2].reshape(2, 1), pos_weight=_w(m, x), reduction="sum"),
         [(2, 3), (2, 3)], -2.5, 2.5),
]


def _w(m: Any, like: Any) -> Any:
    w = const(m, W, like)
    return w.astype(like.dtype) if m is tg else w.to(like.dtype)


BY_NAME = {c.name: c for c in CASES}

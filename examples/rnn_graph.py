"""Pictures of back-propagation through time: the 3-step RNN of D2L §8.4.2, unrolled.

Draws the computation graph that autograd walks (``tg.viz.to_dot``) for three
steps of H_t = tanh(X_t W_xh + b_ih + H_{t-1} W_hh + b_hh), twice (``tg.nn.RNN`` has
PyTorch's two biases, b_h = b_ih + b_hh; its parameters are W_ih_l0 = W_xh, W_hh_l0,
b_ih_l0, b_hh_l0):

* composed: written with primitive ops, exactly ``tg.nn.cells.rnn_step``, which
  ``tg.nn.RNN(fused=False)`` runs. Every step adds two MatMul, three Add and a Tanh;
  the weights and biases feed every step, which is why their gradients are sums
  over t. Autograd derives BPTT from it.
* fused: ``tg.nn.RNN(fused=True)``. One MatMul for X W_xh at all steps, then a
  single RNNRecurrence node whose backward is the hand-written BPTT of
  ``Backend.rnn_backward``.

Writes ``rnn_composed.dot`` and ``rnn_fused.dot`` to --out-dir, and ``.svg`` files
beside them where Graphviz's ``dot`` is installed (the docs use these).

Claims checked (exit status 1 if one fails): the composed graph has 3 Tanh,
6 MatMul and 9 Add nodes, the fused one a single RNNRecurrence and no Tanh; both
give the same outputs and the same gradients for every parameter.

    python examples/rnn_graph.py --out-dir docs/img
"""

from __future__ import annotations

import collections
import re
import shutil
import sys
from pathlib import Path

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.charlm.cli import experiment_parser

T, N, D, H = 3, 2, 5, 4  # steps, batch, inputs, hidden: small enough to read the shapes


def composed(rnn: tg.nn.RNN, X: tg.Tensor) -> tuple[tg.Tensor, dict[int, str]]:
    """The composed layer's loop of ``cells.rnn_step``, keeping each X_t and H_t to label
    them."""
    names = {id(p): name for name, p in rnn.named_parameters()}
    H_t = tg.Tensor(np.zeros((N, H)), dtype="float64")
    names[id(H_t)] = "H_0"
    outputs = []
    for t in range(X.shape[0]):
        X_t = X[t]
        names[id(X_t)] = f"X_{t + 1}"
        Z = X_t @ rnn.W_ih_l0 + rnn.b_ih_l0 + H_t @ rnn.W_hh_l0 + rnn.b_hh_l0
        H_t = Z.tanh()
        names[id(H_t)] = f"H_{t + 1}"
        outputs.append(H_t)
    out = tg.stack(outputs)
    names[id(out)] = "outputs"
    return out, names


def op_counts(dot: str) -> collections.Counter:
    """How many op nodes of each name the DOT text has (labels of ellipse nodes)."""
    return collections.Counter(re.findall(r'label="(\w+)[^"]*", shape=ellipse', dot))


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, backend=False)
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where to write")
    parser.add_argument("--format", choices=viz.FORMATS, default="svg", help="picture format")
    args = parser.parse_args(argv)

    tg.manual_seed(0)
    rnn = tg.nn.RNN(D, H, fused=False, dtype="float64")
    X = tg.Tensor(np.random.default_rng(0).normal(size=(T, N, D)), dtype="float64")
    G = np.random.default_rng(1).normal(size=(T, N, H))  # an upstream gradient dL/dH_t

    out_c, names = composed(rnn, X)
    dot_c = viz.to_dot(
        out_c, names, title="composed: autograd derives BPTT", compact=True, rankdir="TB"
    )
    out_c.backward(G)
    grads_c = {n: p.grad.numpy() for n, p in rnn.named_parameters()}

    rnn.zero_grad()
    rnn.fused = True
    H_0 = rnn.begin_state(N)
    out_f, h_n = rnn(X, H_0)  # H_0, h_n (1, N, H): one layer, one direction
    dot_f = viz.to_dot(
        out_f,
        {**{id(p): n for n, p in rnn.named_parameters()}, id(H_0): "H_0", id(out_f): "outputs"},
        title="fused: one RNNRecurrence, hand-written BPTT",
        rankdir="TB",
    )
    out_f.backward(G)
    grads_f = {n: p.grad.numpy() for n, p in rnn.named_parameters()}

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for stem, dot in (("rnn_composed", dot_c), ("rnn_fused", dot_f)):
        (args.out_dir / f"{stem}.dot").write_text(dot)
        if shutil.which("dot"):
            viz.render(dot, args.out_dir / f"{stem}.{args.format}")
            print(f"wrote {args.out_dir / stem}.dot and .{args.format}")
        else:
            print(f"wrote {args.out_dir / stem}.dot (Graphviz's dot is not installed: no picture)")

    counts_c, counts_f = op_counts(dot_c), op_counts(dot_f)
    print("composed graph ops:", dict(sorted(counts_c.items())))
    print("fused graph ops:   ", dict(sorted(counts_f.items())))
    failures = []
    if (counts_c["Tanh"], counts_c["MatMul"], counts_c["Add"]) != (T, 2 * T, 3 * T):
        failures.append(f"composed graph: expected {T} Tanh, {2 * T} MatMul, {3 * T} Add")
    if counts_f["RNNRecurrence"] != 1 or counts_f["Tanh"] != 0:
        failures.append("fused graph: expected one RNNRecurrence and no Tanh")
    if not np.allclose(out_c.numpy(), out_f.numpy(), rtol=1e-12, atol=1e-14):
        failures.append("composed and fused outputs differ")
    for name in grads_c:
        if not np.allclose(grads_c[name], grads_f[name], rtol=1e-10, atol=1e-14):
            failures.append(f"composed and fused gradients of {name} differ")
    for f in failures:
        print("CLAIM FAILED:", f)
    if failures:
        return 1
    print(
        "claims hold: the graphs have the expected ops; composed and fused agree in "
        "values and in the gradients of W_ih_l0, W_hh_l0, b_ih_l0 and b_hh_l0"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

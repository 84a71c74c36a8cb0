"""D2L §9.1 gated recurrent units (GRU): the book's GRU from scratch, then the concise one.

Both are trained as the book trains them (``train_ch8``: 10,000 characters of *The Time
Machine*, minibatches of 32 × 35, SGD with lr 1, gradients clipped to norm 1, h = 256),
and each prints the book's last lines: its perplexity and tokens/s, and the
continuations of 'time traveller' and 'traveller'.

* from scratch (§9.1.2): the book's ``get_params`` and ``gru`` written with tinygrad_rnn's
  ops (``examples/_modern_rnn.py``), every gate N(0, 0.01²) with zero biases, one step
  at a time; autograd derives back-propagation through time.
* concise (§9.1.3): ``RNNLM(model='gru')``, an ``nn.GRU`` with PyTorch's maths and
  initialisation: the input projection of all steps in one GEMM, the recurrence in the
  backend's fused kernel with a hand-written BPTT.

The book's scratch GRU resets before the product, ``(R ⊙ H) W_hh``; ``nn.GRU``, as
PyTorch's, after it, ``R ⊙ (H W_hh + b_hn)``: two slightly different models, trained
the same way. Claims checked (exit status 1 if one fails): each model's perplexity
falls below that of its first epoch (with two epochs or more); at h >= 64 the fused
one runs at more tokens/s than the scratch one. Exit status 2 if the book cannot be
read (--data or $TINYGRAD_RNN_DATA).

    python examples/gru.py                          # the book's 500 epochs, h = 256
    python examples/gru.py --epochs 50 --variants concise
"""

from __future__ import annotations

import sys

import _modern_rnn as ch9

import tinygrad_rnn as tg
from tinygrad_rnn.charlm.model import RNNLM


def main(argv: list[str] | None = None) -> int:
    args = ch9.parser(__doc__, epochs=500).parse_args(argv)
    data = ch9.load(args)
    if data is None:
        return 2
    corpus, vocab = data
    V, failures, speed = len(vocab), [], {}
    for variant in args.variants:
        tg.manual_seed(args.seed)
        if variant == "scratch":
            model = ch9.scratch_model("gru", V, args.hidden, backend=ch9.backend(args))
            name = "GRU from scratch (§9.1.2)"
        else:
            model = RNNLM(V, args.hidden, model="gru", init="torch", backend=ch9.backend(args))
            name = "concise GRU, nn.GRU (§9.1.3)"
        history = ch9.train_ch8(name, model, corpus, vocab, args)
        first, last = history[0].perplexity, history[-1].perplexity
        speed[variant] = history[-1].tokens_per_sec
        if len(history) > 1 and not last < first:
            failures.append(f"{name}: perplexity {last:.2f} after {len(history)} epochs, "
                            f"{first:.2f} after the first")
    if len(speed) == 2:
        print(f"nn.GRU (fused) ran {speed['concise'] / speed['scratch']:.1f}x the tokens/s "
              "of the scratch GRU")
        if args.hidden >= 64 and not speed["concise"] > speed["scratch"]:
            failures.append("the fused GRU was not faster than the scratch one")
    return ch9.check(failures, "every GRU trained (its perplexity fell)")


if __name__ == "__main__":
    sys.exit(main())

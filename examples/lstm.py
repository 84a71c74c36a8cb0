"""D2L §9.2 long short-term memory (LSTM): the book's LSTM from scratch, then the concise one.

Both are trained as the book trains them (``train_ch8``: 10,000 characters of *The Time
Machine*, minibatches of 32 × 35, SGD with lr 1, gradients clipped to norm 1, h = 256),
and each prints the book's last lines: its perplexity and tokens/s, and the
continuations of 'time traveller' and 'traveller'.

* from scratch (§9.2.2): the book's ``get_lstm_params``, ``init_lstm_state`` and ``lstm``
  written with tinygrad_rnn's ops (``examples/_modern_rnn.py``): input, forget and
  output gates, candidate memory C̃, memory C and hidden state H, one step at a time,
  every weight N(0, 0.01²) with zero biases; autograd derives the BPTT.
* concise (§9.2.3): ``RNNLM(model='lstm')``, an ``nn.LSTM`` with PyTorch's
  initialisation: one GEMM for the inputs of all steps, then the backend's fused
  recurrence with a hand-written BPTT. Its state is the pair (H, C).

The two compute the same function: before training, ``nn.LSTM`` given the scratch
model's weights (gate blocks side by side in PyTorch's order i, f, g, o) gives the same
logits, state and gradients. Claims checked (exit status 1 if one fails): that, and each
model's perplexity falls below that of its first epoch (with two epochs or more). Exit
status 2 if the book cannot be read (--data or $TINYGRAD_RNN_DATA).

    python examples/lstm.py                         # the book's 500 epochs, h = 256
    python examples/lstm.py --epochs 50 --variants concise
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
    V, failures = len(vocab), []
    tokens = corpus[: 4 * 20].reshape(4, 20)
    for variant in args.variants:
        tg.manual_seed(args.seed)
        if variant == "scratch":
            model = ch9.scratch_model("lstm", V, args.hidden, backend=ch9.backend(args))
            name = "LSTM from scratch (§9.2.2)"
            same = ch9.same_as_nn_lstm(model, tokens)
            print("nn.LSTM with the scratch weights: "
                  + ("the same logits, state and gradients" if not same else "different"))
            failures += same
        else:
            model = RNNLM(V, args.hidden, model="lstm", init="torch", backend=ch9.backend(args))
            name = "concise LSTM, nn.LSTM (§9.2.3)"
        history = ch9.train_ch8(name, model, corpus, vocab, args)
        first, last = history[0].perplexity, history[-1].perplexity
        if len(history) > 1 and not last < first:
            failures.append(f"{name}: perplexity {last:.2f} after {len(history)} epochs, "
                            f"{first:.2f} after the first")
    return ch9.check(failures, "every LSTM trained (its perplexity fell)" + (
        "; the book's equations are nn.LSTM's" if "scratch" in args.variants else ""))


if __name__ == "__main__":
    sys.exit(main())

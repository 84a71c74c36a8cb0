"""D2L §9.4 bidirectional recurrent neural networks, and why one cannot generate text.

A bidirectional layer runs two RNNs over the sequence, one from the start and one
from the end, and joins their hidden states, ``H_t = [H_t→, H_t←]`` (9.4.2), so the
output at step t depends on the whole sequence, later characters included. §9.4.3
trains one as a language model anyway, "the wrong application": a two-layer
bidirectional LSTM, h = 256, SGD with lr 1, on 10,000 characters of *The Time
Machine* in minibatches of 32 × 35. Its training perplexity drops far below a left-to-
right model's, since the backward RNN has already read the character to be
predicted; yet its text is nonsense, because when it generates there is no future to
read.

Measured here after training, on the first 2,000 characters: the perplexity when the
model reads each row whole, as in training, and when it reads one character at a
time, carrying its state on, as ``predict`` must. For a left-to-right model the two
are the same number (checked on an untrained LSTM); for the bidirectional one the
second is far worse.

* from scratch: the book's ``lstm`` (``examples/_modern_rnn.py``) twice per layer, the
  second copy on the reversed sequence, their outputs joined (T, N, 2h).
* concise (§9.4.3): ``RNNLM(model='lstm', num_layers=2, bidirectional=True)``, one
  ``nn.LSTM(num_layers=2, bidirectional=True)`` with fused recurrences.

Claims checked (exit status 1 if one fails): ``nn.LSTM`` given the scratch model's
weights computes the same logits, state and gradients; a left-to-right model's two
perplexities agree; each bidirectional model's perplexity one character at a time is
above its perplexity on whole rows (after 10 epochs or more). Exit status 2 if the
book cannot be read (--data or $TINYGRAD_RNN_DATA).

    python examples/bidirectional_rnn.py            # the book's 500 epochs
    python examples/bidirectional_rnn.py --layers 1 --lr 4 --epochs 20 --hidden 32
"""

from __future__ import annotations

import sys

import _modern_rnn as ch9

import tinygrad_rnn as tg
from tinygrad_rnn.charlm.model import RNNLM

#: Training long enough for the bidirectional model to have learned to read ahead.
MIN_EPOCHS = 10


def main(argv: list[str] | None = None) -> int:
    parser = ch9.parser(__doc__, epochs=500)
    parser.add_argument("--layers", type=int, default=2, help="recurrent layers L (D2L: 2)")
    args = parser.parse_args(argv)
    data = ch9.load(args)
    if data is None:
        return 2
    corpus, vocab = data
    V, L, failures = len(vocab), args.layers, []
    held = corpus[:2000]
    tg.manual_seed(args.seed)
    left_to_right = RNNLM(V, args.hidden, model="lstm", num_layers=L, init="torch",
                          backend=ch9.backend(args))
    whole, stepwise = ch9.perplexities(left_to_right, held)
    print(f"an untrained left-to-right LSTM: perplexity {whole:.4f} reading whole rows, "
          f"{stepwise:.4f} one character at a time")
    if abs(whole - stepwise) > 1e-4 * whole:
        failures.append("a left-to-right model's two perplexities differ")
    tokens = corpus[: 4 * 20].reshape(4, 20)
    for variant in args.variants:
        tg.manual_seed(args.seed)
        if variant == "scratch":
            model = ch9.scratch_model("lstm", V, args.hidden, num_layers=L, bidirectional=True,
                                      backend=ch9.backend(args))
            name = f"bidirectional {L}-layer LSTM from scratch"
            same = ch9.same_as_nn_lstm(model, tokens)
            print(f"nn.LSTM(num_layers={L}, bidirectional=True) with the scratch weights: "
                  + ("the same logits, state and gradients" if not same else "different"))
            failures += same
        else:
            model = RNNLM(V, args.hidden, model="lstm", num_layers=L, bidirectional=True,
                          init="torch", backend=ch9.backend(args))
            name = f"concise bidirectional {L}-layer LSTM (§9.4.3)"
        ch9.train_ch8(name, model, corpus, vocab, args)
        whole, stepwise = ch9.perplexities(model, held)
        print(f"{name}: perplexity {whole:.2f} reading whole rows (as in training), "
              f"{stepwise:.2f} one character at a time (as when generating), "
              f"{stepwise / whole:.2f}x")
        if args.epochs < MIN_EPOCHS:
            print(f"(the claim about it needs a trained model: --epochs {MIN_EPOCHS} or more)")
        elif not stepwise > whole:
            failures.append(f"{name}: predicting one character at a time ({stepwise:.2f}) "
                            f"did not do worse than reading whole rows ({whole:.2f})")
    return ch9.check(failures, "a bidirectional model reads the future in training, and "
                               "has none to read when it generates")


if __name__ == "__main__":
    sys.exit(main())

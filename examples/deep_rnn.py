"""D2L §9.3 deep recurrent neural networks: a two-layer LSTM from scratch, then the concise one.

A deep RNN stacks L recurrent layers: layer l reads the hidden states of layer l-1 as
its inputs, ``H_t^(l) = φ_l(H_t^(l-1), H_{t-1}^(l))`` (9.3.1), and the output layer
reads the last one, ``O_t = H_t^(L) W_hq + b_q`` (9.3.2). Trained as the book trains
it: 10,000 characters of *The Time Machine*, minibatches of 32 × 35, h = 256, L = 2,
SGD with lr 2 (§9.3's), gradients clipped to norm 1; each model prints the book's
last lines (perplexity, tokens/s, the continuations of 'time traveller' and
'traveller').

* from scratch: the book's ``lstm`` of §9.2.2 (``examples/_modern_rnn.py``) run once
  per layer, the second layer reading the first one's H; the state is (H, C), each
  (L, N, h).
* concise (§9.3.2): ``RNNLM(model='lstm', num_layers=2)``, one ``nn.LSTM(num_layers=2)``
  with PyTorch's initialisation and fused recurrences.

Claims checked (exit status 1 if one fails): before training, ``nn.LSTM`` given the
scratch model's weights computes the same logits, state and gradients; the state has
one (N, h) slice per layer; each model's perplexity falls below that of its first
epoch (with two epochs or more). Exit status 2 if the book cannot be read (--data or
$TINYGRAD_RNN_DATA).

    python examples/deep_rnn.py                     # the book's 500 epochs, L = 2, lr 2
    python examples/deep_rnn.py --layers 3 --epochs 50 --variants concise
"""

from __future__ import annotations

import sys

import _modern_rnn as ch9

import tinygrad_rnn as tg
from tinygrad_rnn.charlm.model import RNNLM


def main(argv: list[str] | None = None) -> int:
    parser = ch9.parser(__doc__, epochs=500, lr=2.0)
    parser.add_argument("--layers", type=int, default=2, help="recurrent layers L (D2L: 2)")
    args = parser.parse_args(argv)
    data = ch9.load(args)
    if data is None:
        return 2
    corpus, vocab = data
    V, L, failures = len(vocab), args.layers, []
    tokens = corpus[: 4 * 20].reshape(4, 20)
    for variant in args.variants:
        tg.manual_seed(args.seed)
        if variant == "scratch":
            model = ch9.scratch_model("lstm", V, args.hidden, num_layers=L,
                                      backend=ch9.backend(args))
            name = f"{L}-layer LSTM from scratch"
            same = ch9.same_as_nn_lstm(model, tokens)
            print(f"nn.LSTM(num_layers={L}) with the scratch weights: "
                  + ("the same logits, state and gradients" if not same else "different"))
            failures += same
        else:
            model = RNNLM(V, args.hidden, model="lstm", num_layers=L, init="torch",
                          backend=ch9.backend(args))
            name = f"concise {L}-layer LSTM, nn.LSTM(num_layers={L}) (§9.3.2)"
        H, C = model.begin_state(tokens.shape[0])
        if H.shape != C.shape or H.shape != (L, tokens.shape[0], args.hidden):
            failures.append(f"{name}: the state is {H.shape}, {C.shape}, not (L, N, h)")
        history = ch9.train_ch8(name, model, corpus, vocab, args)
        first, last = history[0].perplexity, history[-1].perplexity
        if len(history) > 1 and not last < first:
            failures.append(f"{name}: perplexity {last:.2f} after {len(history)} epochs, "
                            f"{first:.2f} after the first")
    return ch9.check(failures, f"every {L}-layer LSTM trained (its perplexity fell)")


if __name__ == "__main__":
    sys.exit(main())

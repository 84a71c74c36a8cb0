"""D2L §8.4 exercise 1: what output dimension does a next-character predictor need?

Answer: the size of the vocabulary, V. At every step the model must give a
probability to *each* token that could come next, P(x_{t+1} = v | x_1..x_t) for all
v in the vocabulary; so the output layer O_t = H_t W_hq + b_q has one score (logit)
per token, W_hq is (h, V) and b_q is (V,), and softmax turns the V scores into a
distribution. Fewer outputs leave some tokens with no probability at all (the
cross-entropy of such a target is undefined); more outputs waste probability on
tokens that never occur. The input is one-hot, so it is V wide too.

This script checks it on the real model, ``tinygrad_rnn.charlm.model.RNNLM``, fed a
minibatch of *The Time Machine*: the logits are (T·N, V) with V = len(vocab) = 28
for characters (26 letters, space, '<unk>'), every row of their softmax sums to 1,
and the loss is the cross-entropy against the next characters. Tokenised into
words, the same model needs an output as wide as the word vocabulary. Exit status
1 if a shape check fails; 2 if the book cannot be read. The loader downloads the
book and verifies its checksum; offline, copy the book into ~/.cache/tinygrad_rnn/,
give --data PATH or set $TINYGRAD_RNN_DATA.

    python examples/exercise1_output_dim.py
    python examples/exercise1_output_dim.py --data timemachine.txt --hidden 64
"""

from __future__ import annotations

import math
import sys

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.charlm.cli import experiment_parser
from tinygrad_rnn.charlm.data import DataError, Vocab, load_corpus, read_lines, tokenize
from tinygrad_rnn.charlm.model import RNNLM


def check_model(
    corpus: np.ndarray, vocab: Vocab, hidden: int, batch: int, steps: int, backend: str, what: str
) -> list[str]:
    """Run RNNLM on one (batch, steps) minibatch of ``corpus``; return the failed checks."""
    V = len(vocab)
    model = RNNLM(V, hidden, backend=backend)
    X = corpus[: batch * steps].reshape(batch, steps)  # (N, T) token ids
    Y = corpus[1 : batch * steps + 1].reshape(batch, steps)  # the next tokens
    logits, h_n = model(X)
    probs = F.softmax(logits, axis=1).numpy()
    loss = F.cross_entropy(logits, Y.T.reshape(-1))  # rows are step-major
    print(f"{what}: V = len(vocab) = {V}")
    print(
        f"  W_ih_l0 {model.rnn.W_ih_l0.shape}  W_hh_l0 {model.rnn.W_hh_l0.shape}  "
        f"W_hq {model.W_hq.shape}  b_q {model.b_q.shape}"
    )
    print(f"  tokens X {X.shape} -> logits {logits.shape} = (T*N, V), state h_n {h_n.shape}")
    print(
        f"  loss at initialisation {loss.item():.4f}  (log V = {math.log(V):.4f}: "
        "near-uniform predictions from small weights)"
    )
    failures = []
    if logits.shape != (steps * batch, V):
        failures.append(f"{what}: logits {logits.shape}, expected {(steps * batch, V)}")
    if model.W_hq.shape != (hidden, V) or model.b_q.shape != (V,):
        failures.append(f"{what}: output layer {model.W_hq.shape}, {model.b_q.shape}")
    if not np.allclose(probs.sum(axis=1), 1.0, atol=1e-5):
        failures.append(f"{what}: softmax rows do not sum to 1")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, data=True)
    parser.add_argument("--hidden", type=int, default=32, help="hidden units h")
    parser.add_argument("--batch", type=int, default=4, help="minibatch size N")
    parser.add_argument("--steps", type=int, default=10, help="time steps T")
    args = parser.parse_args(argv)
    tg.manual_seed(0)
    try:
        corpus, vocab = load_corpus(args.data)  # characters
        words = tokenize(read_lines(args.data), "word")
    except DataError as e:
        print(f"cannot read The Time Machine: {e}", file=sys.stderr)
        return 2
    failures = check_model(
        corpus, vocab, args.hidden, args.batch, args.steps, args.backend, "characters"
    )
    word_vocab = Vocab(words)
    word_ids = np.array([word_vocab[w] for line in words for w in line], dtype=np.int64)
    failures += check_model(
        word_ids, word_vocab, args.hidden, args.batch, args.steps, args.backend, "words"
    )
    for f in failures:
        print("CLAIM FAILED:", f)
    if failures:
        return 1
    print(
        "claim holds: the output dimension is the vocabulary size, "
        f"{len(vocab)} for characters and {len(word_vocab)} for words"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""D2L §8.4 exercise 4: problems of this language model, one of them measured.

The model of §8.5 sees only the first 10,000 characters of *The Time Machine*
(``max_tokens=10000``, about 6 % of the book) and is trained on them for 500
epochs. It learns those 10,000 characters, not English: measured here, the
perplexity on that training text falls steadily while the perplexity on text it
never saw (10,000 characters from later in the book) stops improving and then
rises, the model overfitting. D2L's reported perplexity of 1.0 is on the training
text; on held-out text the same model is far worse.

Other problems, not measured here: the characters are one-hot, so the model has
no notion that words or letters are alike; punctuation and case are stripped by
the preprocessing, so it can never produce them; the gradient through W_hh
vanishes or explodes over long spans (exercise 3), so in practice the context it
uses is short, and truncated BPTT (35 steps) cuts it off entirely during
training; and greedy decoding (``predict`` at temperature 0) falls into loops
such as "the the the ...", as the final line of this script often shows.

Perplexity is measured with the same procedure on both texts: the text is cut
into 32 rows, each read from a zero state, and exp(mean cross-entropy) is taken
over every predicted character (§8.4.4).

Claim checked (exit status 1 if it fails): after training, the perplexity on the
held-out text is higher than on the training text. Exit status 2 if the book
cannot be found (--data or $TINYGRAD_RNN_DATA).

    python examples/exercise4_lm_problems.py                     # h=256, 200 epochs, ~15 s
    python examples/exercise4_lm_problems.py --hidden 128 --epochs 40 --backend numpy
"""

from __future__ import annotations

import math
import sys

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.charlm.cli import experiment_parser
from tinygrad_rnn.charlm.data import DataError, load_corpus
from tinygrad_rnn.charlm.model import RNNLM
from tinygrad_rnn.charlm.train import EpochStats, TrainConfig, Trainer, fastest_backend


def perplexity(model: RNNLM, ids: np.ndarray, rows: int = 32) -> float:
    """exp(mean cross-entropy) of predicting ``ids[1:]`` from the characters before them.

    ``ids`` is cut into ``rows`` equal rows (N, L), each read from a zero state in one
    forward pass: logits (N·(L-1), V) against the next characters.
    """
    L = len(ids) // rows
    X = ids[: rows * L].reshape(rows, L)
    with tg.no_grad():
        logits, _ = model(X[:, :-1])
        loss = F.cross_entropy(logits, X[:, 1:].T.reshape(-1))  # logits rows are step-major
    return math.exp(loss.item())


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, data=True, seed=True, backend_default=None)
    parser.add_argument("--hidden", type=int, default=256, help="hidden units h")
    parser.add_argument("--epochs", type=int, default=200, help="training epochs")
    parser.add_argument("--lr", type=float, default=1.0, help="learning rate (SGD, clip θ=1)")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=10000,
        help="training text: the book's first N characters (D2L: 10,000)",
    )
    parser.add_argument(
        "--held-out-start",
        type=int,
        default=100000,
        help="held-out text starts at this character of the book",
    )
    parser.add_argument("--every", type=int, default=20, help="report every N epochs")
    args = parser.parse_args(argv)

    try:
        book, vocab = load_corpus(args.data)
    except DataError as e:
        print(f"cannot read The Time Machine: {e}", file=sys.stderr)
        return 2
    if args.held_out_start < args.max_tokens:
        parser.error("--held-out-start must lie after the training text (>= --max-tokens)")
    train_text = book[: args.max_tokens]
    held_out = book[args.held_out_start : args.held_out_start + args.max_tokens]
    config = TrainConfig(
        num_hiddens=args.hidden,
        num_epochs=args.epochs,
        lr=args.lr,
        max_tokens=args.max_tokens,
        seed=args.seed,
    )
    trainer = Trainer.create(config, args.data, args.backend or fastest_backend())
    print(
        f"training on characters [0, {len(train_text):,}) of {len(book):,}; held out: "
        f"[{args.held_out_start:,}, {args.held_out_start + len(held_out):,}); "
        f"h={args.hidden}, {trainer.model.backend}"
    )
    print(f"a uniform guess has perplexity {len(vocab)}")
    print(f"{'epoch':>6} {'training text':>14} {'held-out text':>14}")
    curve = []

    def report(stats: EpochStats, _sample: None) -> None:
        epoch = stats.epoch
        if epoch % args.every == 0 or epoch == args.epochs:
            curve.append(
                (epoch, perplexity(trainer.model, train_text), perplexity(trainer.model, held_out))
            )
            print(f"{epoch:6d} {curve[-1][1]:14.2f} {curve[-1][2]:14.2f}", flush=True)

    trainer.fit(callback=report, prefix=None)

    _, train_ppl, held_ppl = curve[-1]
    best_epoch, _, best_held = min(curve, key=lambda row: row[2])
    print(
        f"after {args.epochs} epochs: perplexity {train_ppl:.2f} on the training text, "
        f"{held_ppl:.2f} on held-out text ({held_ppl / train_ppl:.2f}x)"
    )
    if best_epoch < args.epochs:
        print(
            f"held-out perplexity was best at epoch {best_epoch} ({best_held:.2f}) and has "
            "risen since: the model is memorising its 10,000 characters (overfitting)"
        )
    print("greedy continuation:", trainer.predict("time traveller", 50))
    if not held_ppl > train_ppl:
        print(
            f"CLAIM FAILED: held-out perplexity {held_ppl:.2f} is not above the "
            f"training perplexity {train_ppl:.2f}"
        )
        return 1
    print(
        "claim holds: the model does better on the text it was trained on than on "
        "the rest of the book"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

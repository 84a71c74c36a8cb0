"""D2L §8.4 exercise 2: why can an RNN condition on *all* the previous tokens?

Because the hidden state is a function of the whole prefix. Unrolled, eq. (8.4.5)
H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h) gives

    H_t = φ(X_t W_xh + φ(X_{t-1} W_xh + φ(... φ(X_1 W_xh + H_0 W_hh + b_h) ...)
                                      W_hh + b_h) W_hh + b_h)

so the output O_t = H_t W_hq + b_q, and the distribution P(x_{t+1} | x_1..x_t) =
softmax(O_t), depend on every earlier token X_1..X_t, through a chain of W_hh
products: nothing is cut off at a fixed n as in an n-gram model.

Measured: take windows of L characters of *The Time Machine*, change the character
k steps before the end (k = 0 is the last one fed in) to another letter, and
compare the next-character distributions before and after (total variation
distance, ½Σ|p - p'|, averaged over windows). The RNN is D2L's model in float64
with larger weights than D2L's initial ones (W_xh ~ N(0, 1), W_hh = ρ·Q for a
random orthogonal Q, so the state neither dies out nor saturates at once), or,
with --train-epochs, a small model trained on the book. Beside it the same model
with W_hh = 0: the network without hidden state of §8.4.1, which sees only the
current character.

Claims checked (exit status 1 if one fails): with W_hh = 0 changing any earlier
character (k >= 1) changes nothing, exactly; with the recurrence every change,
even at the far end of the window, changes the prediction (effect > 1e-12). The
loader downloads *The Time Machine* and verifies its checksum; offline, copy the book
into ~/.cache/tinygrad_rnn/, give --data PATH or set $TINYGRAD_RNN_DATA.

    python examples/exercise2_hidden_state_memory.py
    python examples/exercise2_hidden_state_memory.py --train-epochs 20 --hidden 128
"""

from __future__ import annotations

import sys

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.charlm.cli import experiment_parser
from tinygrad_rnn.charlm.data import DataError, load_corpus
from tinygrad_rnn.charlm.model import RNNLM
from tinygrad_rnn.charlm.train import TrainConfig, Trainer


def large_weight_model(V: int, h: int, rho: float, backend: str, seed: int) -> RNNLM:
    """RNNLM in float64 with W_xh ~ N(0, 1), W_hh = rho * orthogonal, W_hq ~ N(0, 1/h)."""
    rng = np.random.default_rng(seed)
    model = RNNLM(V, h, dtype="float64", backend=backend)
    Q, _ = np.linalg.qr(rng.normal(size=(h, h)))
    model.load_state_dict(
        {
            "rnn.W_ih_l0": rng.normal(size=(V, h)),  # W_xh
            "rnn.W_hh_l0": rho * Q,
            "rnn.b_ih_l0": np.zeros(h),  # b_h = b_ih + b_hh
            "rnn.b_hh_l0": np.zeros(h),
            "W_hq": rng.normal(size=(h, V)) / np.sqrt(h),
            "b_q": np.zeros(V),
        }
    )
    return model


def trained_model(data: str | None, V: int, h: int, epochs: int, backend: str) -> RNNLM:
    """A small model trained on the book's first 10,000 characters, copied to float64."""
    config = TrainConfig(num_hiddens=h, num_epochs=epochs)
    trainer = Trainer.create(config, data, backend)
    stats = trainer.fit(prefix=None)[-1]
    print(f"trained {epochs} epochs, h={h}: training perplexity {stats.perplexity:.2f}")
    model = RNNLM(V, h, dtype="float64", backend=backend)
    model.load_state_dict(trainer.model.state_dict())
    return model


def next_char_probs(model: RNNLM, windows: np.ndarray) -> np.ndarray:
    """windows (N, L) token ids -> P(next char | window) (N, V)."""
    with tg.no_grad():
        logits, _ = model(windows)
        N, L = windows.shape
        last = logits.reshape(L, N, -1)[-1]  # rows are step-major: the last step's N rows
        return F.softmax(last, axis=1).numpy()


def effect_by_distance(
    model: RNNLM, windows: np.ndarray, V: int, rng: np.random.Generator
) -> np.ndarray:
    """Mean total variation distance of the prediction when the token k steps back changes."""
    N, L = windows.shape
    base = next_char_probs(model, windows)
    effects = np.zeros(L)
    for k in range(L):
        changed = windows.copy()
        pos = L - 1 - k
        # another letter or space (ids 1..V-1, never '<unk>'), never the same one
        shift = rng.integers(1, V - 1, size=N)
        changed[:, pos] = (windows[:, pos] - 1 + shift) % (V - 1) + 1
        effects[k] = 0.5 * np.abs(next_char_probs(model, changed) - base).sum(axis=1).mean()
    return effects


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, data=True, seed=True)
    parser.add_argument("--length", type=int, default=30, help="window length L")
    parser.add_argument("--windows", type=int, default=64, help="windows averaged over")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units h")
    parser.add_argument(
        "--rho", type=float, default=1.0, help="spectral radius of W_hh in the large-weight model"
    )
    parser.add_argument(
        "--train-epochs",
        type=int,
        default=0,
        help="train a small model this long instead of drawing large weights",
    )
    args = parser.parse_args(argv)

    try:
        corpus, vocab = load_corpus(args.data, 10000)
    except DataError as e:
        print(f"cannot read The Time Machine: {e}", file=sys.stderr)
        return 2
    V, L = len(vocab), args.length
    rng = np.random.default_rng(args.seed)
    starts = rng.integers(0, len(corpus) - L, size=args.windows)
    windows = np.stack([corpus[s : s + L] for s in starts])
    tg.manual_seed(args.seed)
    if args.train_epochs > 0:
        model = trained_model(args.data, V, args.hidden, args.train_epochs, args.backend)
        kind = f"trained RNN (h={args.hidden})"
    else:
        model = large_weight_model(V, args.hidden, args.rho, args.backend, args.seed)
        kind = f"RNN, W_hh = {args.rho}·Q (h={args.hidden})"
    memoryless = RNNLM(V, args.hidden, dtype="float64", backend=args.backend)
    memoryless.load_state_dict(
        {**model.state_dict(), "rnn.W_hh_l0": np.zeros_like(model.rnn.W_hh_l0.numpy())}
    )

    with_state = effect_by_distance(model, windows, V, np.random.default_rng(args.seed))
    without = effect_by_distance(memoryless, windows, V, np.random.default_rng(args.seed))
    print(
        f"effect on P(next char) of changing the character k steps back "
        f"({args.windows} windows of {L} characters; total variation distance; "
        "bar: log scale, 2 # per decade above 1e-12)"
    )
    print(f"{'k':>4}  {kind:>32}  {'W_hh = 0 (no hidden state)':>28}")
    for k in range(L):
        bar = "#" * max(0, int(round(2 * (np.log10(max(with_state[k], 1e-300)) + 12))))
        print(f"{k:4d}  {with_state[k]:32.3e}  {without[k]:28.3e}  {bar}")

    failures = []
    if np.any(without[1:] != 0):
        failures.append("with W_hh = 0 an earlier character changed the prediction")
    if not np.all(with_state > 1e-12):
        far = int(np.argmin(with_state))
        failures.append(
            f"with the recurrence, changing the character {far} steps back "
            f"changed the prediction by only {with_state[far]:.2e}"
        )
    for f in failures:
        print("CLAIM FAILED:", f)
    if failures:
        return 1
    print(
        f"claims hold: through H_t the prediction depends on all {L} characters, "
        f"even the first (effect {with_state[-1]:.2e} at k = {L - 1}); "
        "without the recurrence only on the last"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

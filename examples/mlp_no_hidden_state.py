"""D2L §8.4.1, neural networks without hidden states: train an MLP and watch the loss drop.

The text's network, with its names (eqs. 8.4.3 and 8.4.4):

    H = φ(X W_xh + b_h)      X (n, d), W_xh (d, h), b_h (h,)  ->  H (n, h)
    O = H W_hq + b_q         W_hq (h, q), b_q (q,)            ->  O (n, q)

The task is small and synthetic: points X uniform in the square [-1, 1]², labelled
1 where x₁·x₂ > 0 (quadrants I and III) and 0 elsewhere, so d = 2 and q = 2 classes.
No straight line separates the classes, which is why φ matters: without it
O = X (W_xh W_hq) + ... is a linear model, and this script trains one beside the MLP
to show that it stays near chance.

Claims checked (exit status 1 if one fails): the MLP's training loss falls below
half its starting value, the MLP classifies at least 90 % of fresh test points
correctly, and the linear model (no φ, no H) stays below 75 %.

    python examples/mlp_no_hidden_state.py
    python examples/mlp_no_hidden_state.py --hidden 8 --epochs 200 --backend numba
"""

from __future__ import annotations

import sys

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.charlm.cli import experiment_parser
from tinygrad_rnn.nn import init


class MLP(tg.nn.Module):
    """One hidden layer: ``O = φ(X W_xh + b_h) W_hq + b_q`` (φ = tanh)."""

    def __init__(self, d: int, h: int, q: int, backend: str) -> None:
        super().__init__()
        self.W_xh = init.xavier_uniform((d, h), backend=backend)
        self.b_h = init.zeros((h,), backend=backend)
        self.W_hq = init.xavier_uniform((h, q), backend=backend)
        self.b_q = init.zeros((q,), backend=backend)

    def forward(self, X: tg.Tensor) -> tg.Tensor:
        """X (n, d) -> logits O (n, q)."""
        H = (X @ self.W_xh + self.b_h).tanh()
        return H @ self.W_hq + self.b_q


class Linear(tg.nn.Module):
    """No hidden layer, for comparison: ``O = X W_xq + b_q``."""

    def __init__(self, d: int, q: int, backend: str) -> None:
        super().__init__()
        self.W_xq = init.xavier_uniform((d, q), backend=backend)
        self.b_q = init.zeros((q,), backend=backend)

    def forward(self, X: tg.Tensor) -> tg.Tensor:
        return X @ self.W_xq + self.b_q


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """X (n, 2) uniform in [-1, 1]², y (n,) = 1 where x₁·x₂ > 0 (the signs agree: XOR-type)."""
    X = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X, y


def train(model: tg.nn.Module, X: tg.Tensor, y: tg.Tensor, epochs: int, lr: float) -> list[float]:
    """Full-batch gradient descent on the mean cross-entropy; returns the loss per epoch."""
    opt = tg.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def accuracy(model: tg.nn.Module, X: tg.Tensor, y: np.ndarray) -> float:
    with tg.no_grad():
        predicted = model(X).numpy().argmax(axis=1)
    return float((predicted == y).mean())


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, seed=True)
    parser.add_argument("--hidden", type=int, default=16, help="hidden units h")
    parser.add_argument("--epochs", type=int, default=300, help="full-batch SGD steps")
    parser.add_argument("--lr", type=float, default=1.0, help="learning rate")
    parser.add_argument("--n", type=int, default=512, help="training points")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    tg.manual_seed(args.seed)
    X_np, y_np = make_data(args.n, rng)
    X_test_np, y_test_np = make_data(1000, rng)
    X, y = tg.Tensor(X_np, backend=args.backend), tg.Tensor(y_np, backend=args.backend)
    X_test = tg.Tensor(X_test_np, backend=args.backend)

    mlp = MLP(2, args.hidden, 2, args.backend)
    losses = train(mlp, X, y, args.epochs, args.lr)
    linear = Linear(2, 2, args.backend)
    linear_losses = train(linear, X, y, args.epochs, args.lr)

    print(f"MLP  H = tanh(X W_xh + b_h), O = H W_hq + b_q   (d=2, h={args.hidden}, q=2)")
    for epoch in sorted({1, *range(0, args.epochs + 1, max(args.epochs // 6, 1))} - {0}):
        print(f"  epoch {epoch:4d}  loss {losses[epoch - 1]:.4f}")
    mlp_acc, lin_acc = accuracy(mlp, X_test, y_test_np), accuracy(linear, X_test, y_test_np)
    print(f"MLP:    loss {losses[0]:.4f} -> {losses[-1]:.4f}, test accuracy {mlp_acc:.1%}")
    print(
        f"linear: loss {linear_losses[0]:.4f} -> {linear_losses[-1]:.4f}, "
        f"test accuracy {lin_acc:.1%} (no line separates XOR)"
    )

    failures = []
    if not losses[-1] < 0.5 * losses[0]:
        failures.append(f"the MLP's loss did not halve ({losses[0]:.4f} -> {losses[-1]:.4f})")
    if not mlp_acc >= 0.9:
        failures.append(f"the MLP's test accuracy {mlp_acc:.1%} is below 90%")
    if not lin_acc < 0.75:
        failures.append(f"the linear model reached {lin_acc:.1%}, expected < 75%")
    for f in failures:
        print("CLAIM FAILED:", f)
    if failures:
        return 1
    print("claims hold: the MLP's loss halved and it solves the task; a linear model cannot")
    return 0


if __name__ == "__main__":
    sys.exit(main())

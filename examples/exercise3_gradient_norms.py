"""D2L §8.4 exercise 3: what happens to the gradient when we back-propagate through a long sequence?

It is a product of one Jacobian per step. Back-propagation through time sends the
gradient from H_t to H_{t-1} as

    ∂L/∂H_{t-1} = (∂L/∂H_t ⊙ φ'(Z_t)) W_hhᵀ,

so after T steps ∂L/∂H_0 has been multiplied by T factors diag(φ'(Z_t)) W_hhᵀ. With
W_hh = ρ·Q for an orthogonal Q (every eigenvalue of modulus ρ, the spectral radius)
and the identity for φ, each step scales the norm by exactly ρ: the gradient
*vanishes* like ρ^T for ρ < 1 and *explodes* like ρ^T for ρ > 1. Since |φ'| <= 1
for tanh and relu, ρ^T·‖∂L/∂H_T‖ bounds their gradients from above: they can vanish
faster (saturated tanh, dead relu units), never explode faster.

Measured, in float64, for L = Σ H_T ⊙ U (a fixed random U, so ∂L/∂H_T = U), sequence
lengths T up to --max-len, ρ in --rhos, and φ = tanh and relu (``tg.nn.RNN``, the
fused kernel) and identity (a composed loop of plain matmuls): ‖∂L/∂H_0‖ and
‖∂L/∂W_hh‖, printed and plotted on a log scale (--out, needs matplotlib).

Then what clipping does (§8.5.5, g ← min(1, θ/‖g‖) g, which bounds every SGD step
to lr·θ): D2L's char-LM trained briefly on *The Time Machine* at a large learning
rate (10, ten times D2L's), once clipped and once not, from the same start; the
perplexity per epoch and the largest gradient norm of each are printed. The
default θ is 0.1, not D2L's 1: in short runs at D2L's settings the gradient norm
stays below 1 and clipping never acts.

Claims checked (exit status 1 if one fails): for the identity φ the measured growth
per step equals ρ (to 1e-6), so ‖∂L/∂H_0‖ shrinks with T for ρ < 1 and grows for
ρ > 1; tanh and relu stay under the ρ^T bound; and the clipped run ends with a lower
perplexity than the unclipped one and than a uniform guess (V).

    python examples/exercise3_gradient_norms.py --out gradient_norms.png
    python examples/exercise3_gradient_norms.py --max-len 200 --rhos 0.9 1.0 1.1
"""

from __future__ import annotations

import math
import sys

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.charlm.cli import experiment_parser
from tinygrad_rnn.charlm.data import DataError, SeqDataLoader, load_corpus
from tinygrad_rnn.charlm.model import RNNLM

PHIS = ("identity", "tanh", "relu")


def lengths_up_to(max_len: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to and including max_len."""
    out, base = [], 1
    while base <= max_len:
        out += [n for n in (base, 2 * base, 5 * base) if n <= max_len]
        base *= 10
    return sorted(set(out) | {max_len})


class Problem:
    """Fixed inputs X (T_max, N, d), W_xh (d, h), W_hh = rho·Q (h, h), U (N, h), in float64."""

    def __init__(self, rho: float, max_len: int, N: int, d: int, h: int, seed: int) -> None:
        rng = np.random.default_rng(seed)  # the same draws for every rho and φ
        self.X = rng.normal(size=(max_len, N, d))
        self.W_xh = rng.normal(size=(d, h)) / math.sqrt(d)  # inputs of unit scale
        Q, _ = np.linalg.qr(rng.normal(size=(h, h)))
        self.W_hh = rho * Q
        self.U = rng.normal(size=(N, h))
        self.N, self.h = N, h

    def grad_norms(self, phi: str, T: int, backend: str) -> tuple[float, float]:
        """(‖∂L/∂H_0‖, ‖∂L/∂W_hh‖) for L = Σ H_T ⊙ U after T steps of φ."""
        f64 = {"dtype": "float64", "backend": backend}
        X = tg.Tensor(self.X[:T], **f64)
        H0 = tg.Tensor(np.zeros((self.N, self.h)), requires_grad=True, **f64)
        if phi == "identity":
            # No φ: the linear recurrence H_t = X_t W_xh + H_{t-1} W_hh (b_h = 0), composed
            W_xh = tg.Tensor(self.W_xh, requires_grad=True, **f64)
            W_hh = tg.Tensor(self.W_hh, requires_grad=True, **f64)
            H = H0
            for t in range(T):
                H = X[t] @ W_xh + H @ W_hh
        else:
            rnn = tg.nn.RNN(X.shape[2], self.h, nonlinearity=phi, **f64)
            zero = np.zeros(self.h)  # b_h = b_ih + b_hh = 0
            rnn.load_state_dict({"W_ih_l0": self.W_xh, "W_hh_l0": self.W_hh, "b_ih_l0": zero,
                                 "b_hh_l0": zero})
            W_hh = rnn.W_hh_l0
            _, h_n = rnn(X, H0.reshape(1, self.N, self.h))  # h_n (1, N, h): one layer
            H = h_n.reshape(self.N, self.h)
        (H * tg.Tensor(self.U, **f64)).sum().backward()
        return (float(np.linalg.norm(H0.grad.numpy())), float(np.linalg.norm(W_hh.grad.numpy())))


def measure(rhos, lengths, N, d, h, seed, backend):
    """{(phi, rho): (‖∂L/∂H_0‖ per length, ‖∂L/∂W_hh‖ per length)} and ‖U‖."""
    results = {}
    for rho in rhos:
        problem = Problem(rho, max(lengths), N, d, h, seed)
        for phi in PHIS:
            norms = np.array([problem.grad_norms(phi, T, backend) for T in lengths])
            results[phi, rho] = (norms[:, 0], norms[:, 1])
    return results, float(np.linalg.norm(problem.U))


def growth_per_step(values: np.ndarray, lengths: list[int]) -> float:
    """Geometric-mean factor per step from the first non-zero value to the last one.

    (‖∂L/∂W_hh‖ is 0 at T = 1: there H_0 = 0 is the only state W_hh multiplies.)
    """
    nonzero = np.flatnonzero(values)
    if len(nonzero) < 2:
        return math.nan
    first, last = nonzero[0], nonzero[-1]
    return float((values[last] / values[first]) ** (1.0 / (lengths[last] - lengths[first])))


def print_table(title: str, results, lengths, which: int) -> None:
    print(title)
    print(
        f"{'φ':>8} {'ρ':>5} "
        + " ".join(f"{'T=' + str(T):>9}" for T in lengths)
        + f" {'per step':>9}"
    )
    for (phi, rho), values in results.items():
        v = values[which]
        print(
            f"{phi:>8} {rho:5.2f} "
            + " ".join(f"{x:9.2e}" for x in v)
            + f" {growth_per_step(v, lengths):9.4f}"
        )


def plot(results, lengths, path: str) -> bool:
    try:
        import matplotlib
    except ImportError:
        print(
            f"matplotlib is not installed: the PNG ({path}) is skipped "
            "(pip install 'tinygrad_rnn[plot]')"
        )
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 5), sharex=True)
    rhos = sorted({rho for _, rho in results})
    colors = dict(zip(rhos, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    styles = {"identity": "-", "tanh": "--", "relu": ":"}
    for (phi, rho), values in results.items():
        for ax, v in zip(axes, values):
            v = np.where(v > 0, v, np.nan)  # log scale: a zero gradient is drawn as a gap
            ax.plot(
                lengths,
                v,
                styles[phi],
                marker="o",
                ms=3,
                color=colors[rho],
                label=f"{phi}, ρ={rho:g}",
            )
    for ax, name in zip(axes, ("‖∂L/∂H_0‖", "‖∂L/∂W_hh‖")):
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_title(name)
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(results) // len(PHIS), fontsize=8)
    fig.suptitle("Back-propagation through time: vanishing (ρ < 1) and exploding (ρ > 1)")
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot written to {path}")
    return True


def train_lm(corpus, V, hidden, epochs, lr, theta, backend, seed) -> tuple[list[float], float]:
    """D2L's train_ch8, written out: returns (perplexity per epoch, largest gradient norm).

    ``theta = inf`` never rescales (clip_grad_norm still returns the norm). A
    non-finite loss ends the run and is reported as perplexity inf.
    """
    tg.manual_seed(seed)
    model = RNNLM(V, hidden, backend=backend)
    opt = tg.optim.SGD(model.parameters(), lr=lr)
    loader = SeqDataLoader(corpus, 32, 35, seed=seed)
    history, largest = [], 0.0
    for _ in range(epochs):
        state, total, count = None, 0.0, 0
        for X, Y in loader:
            state = model.begin_state(X.shape[0]) if state is None else state.detach()
            logits, state = model(X, state)
            loss = F.cross_entropy(logits, Y.T.reshape(-1))
            opt.zero_grad()
            loss.backward()
            norm = tg.optim.clip_grad_norm(model.parameters(), theta)  # norm before clipping
            largest = max(largest, float(norm))
            opt.step()
            total, count = total + loss.item() * Y.size, count + Y.size
        history.append(math.exp(min(total / count, 700.0)) if math.isfinite(total) else math.inf)
        if not math.isfinite(history[-1]):
            break
    return history, largest


def clipping_runs(data, hidden, epochs, lr, theta, backend, seed) -> tuple[dict[str, float], int]:
    """Final perplexity with clipping to ``theta`` and without, from the same start; and V."""
    corpus, vocab = load_corpus(data, 10000)
    out = {}
    for label, t in (("clipped", theta), ("not clipped", math.inf)):
        history, largest = train_lm(corpus, len(vocab), hidden, epochs, lr, t, backend, seed)
        shown = " ".join(f"{p:.3g}" for p in history)
        print(f"  {label:>11}: largest ‖g‖ {largest:9.3g}; perplexity per epoch {shown}")
        out[label] = history[-1]
    return out, len(vocab)


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, data=True, seed=True)
    parser.add_argument("--max-len", type=int, default=100, help="longest sequence T")
    parser.add_argument(
        "--rhos", type=float, nargs="+", default=[0.5, 1.0, 1.5], help="spectral radii of W_hh"
    )
    parser.add_argument("--hidden", type=int, default=32, help="hidden units h")
    parser.add_argument("--batch", type=int, default=8, help="batch size N")
    parser.add_argument("--inputs", type=int, default=8, help="input size d")
    parser.add_argument("--out", default="gradient_norms.png", help="PNG of the norms")
    parser.add_argument("--no-plot", action="store_true", help="print the tables only")
    clip = parser.add_argument_group("clipping run (the char-LM on The Time Machine)")
    clip.add_argument("--clip-epochs", type=int, default=15, help="epochs per run (0: skip)")
    clip.add_argument("--clip-hidden", type=int, default=64, help="hidden units of the LM")
    clip.add_argument("--clip-lr", type=float, default=10.0, help="the (large) learning rate")
    clip.add_argument("--clip-theta", type=float, default=0.1, help="clipping threshold θ")
    args = parser.parse_args(argv)

    lengths = lengths_up_to(args.max_len)
    results, u_norm = measure(
        args.rhos, lengths, args.batch, args.inputs, args.hidden, args.seed, args.backend
    )
    print_table("‖∂L/∂H_0‖ against sequence length T", results, lengths, 0)
    print_table("‖∂L/∂W_hh‖ against sequence length T", results, lengths, 1)
    if not args.no_plot:
        plot(results, lengths, args.out)

    failures = []
    for (phi, rho), (dH0, _) in results.items():
        bound = u_norm * rho ** np.array(lengths, dtype=np.float64)
        if phi == "identity":
            rate = growth_per_step(dH0, lengths)
            if abs(rate - rho) > 1e-6 * rho:
                failures.append(f"identity φ, ρ={rho}: growth per step {rate:.8f} != ρ")
            # ρ > 1 must grow with T, ρ < 1 must shrink; (ρ = 1 stays constant: no check)
            steps = np.diff(dH0)
            if (rho > 1 and not np.all(steps > 0)) or (rho < 1 and not np.all(steps < 0)):
                failures.append(f"identity φ, ρ={rho}: ‖∂L/∂H_0‖ is not monotone in T")
        elif np.any(dH0 > bound * (1 + 1e-9)):
            failures.append(f"{phi}, ρ={rho}: ‖∂L/∂H_0‖ exceeds the bound ρ^T ‖U‖")
    if not failures:
        print(
            f"growth per step of the linear recurrence equals ρ; tanh and relu stay under "
            f"ρ^T·‖U‖ (‖U‖ = {u_norm:.2f})"
        )

    if args.clip_epochs > 0:
        print(
            f"char-LM, h={args.clip_hidden}, lr={args.clip_lr}, θ={args.clip_theta}, "
            f"{args.clip_epochs} epochs ({args.backend}):"
        )
        try:
            ppl, V = clipping_runs(
                args.data,
                args.clip_hidden,
                args.clip_epochs,
                args.clip_lr,
                args.clip_theta,
                args.backend,
                args.seed,
            )
        except DataError as e:
            print(f"  skipped: cannot read The Time Machine: {e}")
        else:
            clipped, unclipped = ppl["clipped"], ppl["not clipped"]
            if not (clipped < unclipped and clipped < V):
                failures.append(
                    f"clipping did not help: perplexity {clipped:.3g} clipped vs "
                    f"{unclipped:.3g} without"
                )
            else:
                print(
                    f"  clipping helps: final perplexity {clipped:.1f} with it (below the "
                    f"uniform model's {V}), {unclipped:.3g} without"
                )
    for f in failures:
        print("CLAIM FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

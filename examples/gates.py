"""D2L §9.1-9.2, measured: what the gates do on *The Time Machine*, and how far back the
gradient reaches in an RNN, a GRU and an LSTM.

Trains the char-LM three times (``RNNLM(model='rnn'|'gru'|'lstm')``, D2L's settings:
minibatches of 32 × 35 of the book's first 10,000 characters, SGD with lr 1, clipping
to 1; h = --hidden, --epochs epochs, the same seed), then:

1. Gate activations over a real sentence: the GRU's update gate z and the LSTM's forget
   gate f and input gate i, one row per character, one column per unit (the first 32),
   read from the gate activations the fused kernel keeps for its backward
   (``Backend.gru_forward`` / ``lstm_forward``).
2. ‖∂L/∂H_t‖ against the distance T - t, where L is the cross-entropy of the LAST
   step's prediction only, over --length characters (16 sequences of the book), for
   each model at initialisation (PyTorch's, U(±1/√h), as D2L's concise models) and
   after training; for the LSTM also ‖∂L/∂C_t‖, the memory cell, the path the gradient
   takes through f alone. It is read through a zero "probe" added to each state
   (``H_t + P_t``, so ∂L/∂P_t = ∂L/∂H_t), the recurrence
   composed from the cells (``nn.RNNCell``, ``nn.GRUCell``, ``nn.LSTMCell``) with the
   trained weights, in float64. This measures the vanishing-gradient story of §9.1-9.2
   rather than assuming it: at initialisation all three cells' gradients fall
   geometrically with the distance; how far back each reaches after training depends on
   how long it trained (compare --epochs 100 and 300; docs/text/gates.md discusses both).

Prints a table of both, writes ``gates_activations.png`` and ``gates_gradient_norms.png``
into --out-dir (needs matplotlib). Claims checked (exit status 1 if one fails): every
gate lies in (0, 1); every gradient norm is finite and positive; at initialisation the
RNN's gradient 30 steps back is below 1% of the last step's.
Exit status 2 if the book cannot be read.

    python examples/gates.py --out-dir docs/img
    python examples/gates.py --epochs 5 --hidden 32
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.charlm.cli import experiment_parser
from tinygrad_rnn.charlm.data import DataError, SeqDataLoader, load_corpus
from tinygrad_rnn.charlm.model import RNNLM
from tinygrad_rnn.charlm.train import TrainConfig, Trainer, fastest_backend

MODELS = ("rnn", "gru", "lstm")
CELLS = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}
SENTENCE = "the time traveller (for so it will be convenient to speak of him)"
DISTANCES = (0, 1, 5, 10, 30, 60, 99)


def train(kind: str, corpus, vocab, hidden: int, epochs: int, seed: int, backend: str
          ) -> tuple[RNNLM, RNNLM, float]:
    """(the model as initialised, the trained model, its last perplexity)."""
    tg.manual_seed(seed)
    model = RNNLM(len(vocab), hidden, model=kind, init="torch", backend=backend)
    start = RNNLM(len(vocab), hidden, model=kind, init="torch", backend=backend)
    start.load_state_dict(model.state_dict())
    cfg = TrainConfig(num_hiddens=hidden, num_epochs=epochs, lr=1.0, seed=seed)
    loader = SeqDataLoader(corpus, cfg.batch_size, cfg.num_steps, seed=seed)
    trainer = Trainer(model, loader, vocab, cfg, tg.optim.SGD(model.parameters(), lr=1.0),
                      cuda_graph=False)
    history = trainer.fit(epochs, prefix=None)
    return start, model, history[-1].perplexity


def layer_weights(model: RNNLM) -> dict[str, np.ndarray]:
    """The recurrent layer's weights under PyTorch's cell names (weight_ih, ...)."""
    return {k.replace("_l0", ""): v for k, v in model.rnn.torch_state_dict().items()}


def gate_activations(model: RNNLM, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The gates of the fused kernel over one sequence ``ids`` (T,): name -> (T, h)."""
    ref = tg.backends.get("numpy")
    rnn = model.rnn
    W_ih, W_hh = rnn.W_ih_l0.numpy(), rnn.W_hh_l0.numpy()
    b_ih, b_hh = rnn.b_ih_l0.numpy(), rnn.b_hh_l0.numpy()
    h = model.num_hiddens
    zeros = np.zeros((1, h), W_ih.dtype)
    if model.model == "gru":
        _, gates, _ = ref.gru_forward((W_ih[ids] + b_ih)[:, None], zeros, W_hh, b_hh)
        return {"GRU update gate z": gates[:, 0, h:2 * h]}
    _, _, gates = ref.lstm_forward((W_ih[ids] + b_ih + b_hh)[:, None], zeros, zeros, W_hh)
    return {"LSTM forget gate f": gates[:, 0, h:2 * h], "LSTM input gate i": gates[:, 0, :h]}


def gradient_norms(model: RNNLM, X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
    """``{'H': ‖∂L/∂H_t‖ (t = 1..T)}`` (an LSTM's also ``'C'``: ‖∂L/∂C_t‖, its memory) for L
    the mean cross-entropy of the last step's prediction, X and Y int (N, T); float64,
    the recurrence composed from the cell with the model's weights."""
    N, T = X.shape
    V, h = model.vocab_size, model.num_hiddens
    cell = CELLS[model.model](V, h, dtype="float64")
    cell.load_torch_state_dict({k: v.astype(np.float64) for k, v in layer_weights(model).items()})
    W_hq = tg.Tensor(model.W_hq.numpy(), dtype="float64")
    b_q = tg.Tensor(model.b_q.numpy(), dtype="float64")
    H = C = tg.Tensor(np.zeros((N, h)), dtype="float64")
    probes: dict[str, list] = {"H": [], "C": []}

    def probed(state: tg.Tensor, name: str) -> tg.Tensor:
        probe = tg.Tensor(np.zeros((N, h)), dtype="float64", requires_grad=True)
        probes[name].append(probe)
        return state + probe  # ∂L/∂probe = ∂L/∂state

    for t in range(T):
        x = F.one_hot(X[:, t], V).astype("float64")
        if model.model == "lstm":
            H, C = cell(x, (H, C))
            C = probed(C, "C")
        else:
            H = cell(x, H)
        H = probed(H, "H")
    loss = F.cross_entropy(H @ W_hq + b_q, Y[:, -1])
    loss.backward()
    # C_T's probe comes after H_T was computed from C_T: no gradient, shown as NaN
    return {name: np.array([np.nan if p.grad is None else np.linalg.norm(p.grad.numpy())
                            for p in ps]) for name, ps in probes.items() if ps}


def plot(activations: dict[str, np.ndarray], norms: dict[str, np.ndarray], out_dir: Path
         ) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figures (pip install 'tinygrad_rnn[plot]')")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(activations), figsize=(4 * len(activations) + 1, 7),
                             layout="constrained")
    for ax, (name, values) in zip(np.atleast_1d(axes), activations.items(), strict=True):
        image = ax.imshow(values[:, :32], aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(len(SENTENCE)), list(SENTENCE.replace(" ", "·")), fontsize=7,
                      family="monospace")
        ax.set_xlabel("hidden unit (the first 32)")
        ax.set_title(name)
    fig.colorbar(image, ax=axes, shrink=0.6)
    paths = [out_dir / "gates_activations.png"]
    fig.savefig(paths[0], dpi=90)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in norms.items():
        distance = np.arange(len(values))[::-1]  # T - t
        colour = MODELS.index(name.split()[0].lower()) + 3 * name.startswith("LSTM C")
        ax.semilogy(distance, values, label=name, color=f"C{colour}",
                    linestyle="--" if "init" in name else "-")
    ax.set_xlabel("distance T - t (steps back from the predicted character)")
    ax.set_ylabel("‖∂L/∂H_t‖ / ‖∂L/∂H_T‖")
    ax.set_title("How far back the gradient reaches (The Time Machine)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / "gates_gradient_norms.png")
    fig.savefig(paths[1], dpi=90)
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = experiment_parser(__doc__, data=True, seed=True, backend_default=None)
    p.add_argument("--hidden", type=int, default=128, help="hidden units h")
    p.add_argument("--epochs", type=int, default=100, help="training epochs per model")
    p.add_argument("--length", type=int, default=100, help="characters in the gradient probe")
    p.add_argument("--out-dir", type=Path, default=Path("."), help="where the PNGs go")
    args = p.parse_args(argv)
    try:
        corpus, vocab = load_corpus(args.data, 10000)
    except DataError as e:
        print(f"cannot read The Time Machine: {e}", file=sys.stderr)
        return 2
    backend = args.backend or fastest_backend()
    rng = np.random.default_rng(args.seed)
    starts = rng.integers(0, len(corpus) - args.length - 1, 16)
    X = np.stack([corpus[s:s + args.length] for s in starts])
    Y = np.stack([corpus[s + 1:s + args.length + 1] for s in starts])
    sentence = np.array([vocab[ch] for ch in SENTENCE])
    activations, norms, failures = {}, {}, []
    print(f"h = {args.hidden}, {args.epochs} epochs each, on {backend}")
    for kind in MODELS:
        start, model, ppl = train(kind, corpus, vocab, args.hidden, args.epochs, args.seed,
                                  backend)
        print(f"{kind.upper():>4}: perplexity {ppl:.2f} after {args.epochs} epochs")
        for when, m in (("init", start), ("trained", model)):
            measured = gradient_norms(m, X, Y)
            for state, values in measured.items():  # relative to ‖∂L/∂H_T‖
                norms[f"{kind.upper()} {state}_t, {when}"] = values / measured["H"][-1]
        if kind != "rnn":
            for name, values in gate_activations(model, sentence).items():
                activations[name] = values
                inside = bool(((values > 0) & (values < 1)).all())
                print(f"      {name}: mean {values.mean():.3f}, {100 * (values > 0.9).mean():.0f}% "
                      f"above 0.9, {100 * (values < 0.1).mean():.0f}% below 0.1")
                if not inside:
                    failures.append(f"{name} leaves (0, 1)")
    shown = [d for d in DISTANCES if d < args.length]
    print("\n‖∂L/∂H_t‖ relative to the last step's, by distance T - t:")
    print(f"{'model':<20}" + "".join(f"{d:>10}" for d in shown))
    for name, values in norms.items():
        rel = values[::-1]  # rel[d] is distance d
        print(f"{name:<20}" + "".join(f"{rel[d]:>10.1e}" for d in shown))
    far = min(30, args.length - 1)
    rel = {name: values[::-1][far] for name, values in norms.items()}
    if not rel["RNN H_t, init"] < 1e-2:
        failures.append(f"the RNN's gradient at initialisation does not vanish over {far} steps")
    for name, values in norms.items():
        if not (np.isfinite(values[:-1]).all() and (values[:-1] > 0).all()):
            failures.append(f"{name}: a gradient norm is not finite and positive")
    for path in plot(activations, norms, args.out_dir):
        print(f"wrote {path}")
    for failure in failures:
        print(f"claim failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

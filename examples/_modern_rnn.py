"""What the D2L §9 examples share (``gru.py``, ``lstm.py``, ``deep_rnn.py``,
``bidirectional_rnn.py``): the book's from-scratch GRU and LSTM written with
tinygrad_rnn's ops, a layer that runs them (stacked, bidirectional) inside ``RNNLM``,
and D2L's ``train_ch8`` run and printout.

The book's scratch functions (§9.1.2, §9.2.2) are copied line for line: ``X @ W``,
``.sigmoid()``, ``.tanh()`` and ``*`` are tinygrad_rnn ops, and autograd derives their
backward. Their outputs are the hidden states H_t; the output layer ``O = H W_hq + b_q``
is ``RNNLM``'s, as in the book's ``RNNModelScratch``. The state is laid out as
``nn.GRU``'s and ``nn.LSTM``'s, (D·L, N, h) (an LSTM's a tuple (H, C)), so the scratch
and the concise models take the same state.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.charlm.cli import experiment_parser
from tinygrad_rnn.charlm.data import DataError, SeqDataLoader, Vocab, load_corpus
from tinygrad_rnn.charlm.model import RNNLM
from tinygrad_rnn.charlm.train import EpochStats, TrainConfig, Trainer, fastest_backend
from tinygrad_rnn.nn import init

#: D2L's settings for every run of chapter 9 (§9.3's lr is 2: its script passes --lr 2).
BATCH_SIZE, NUM_STEPS, NUM_HIDDENS, LR, MAX_TOKENS = 32, 35, 256, 1.0, 10000


# ------------------------------------------------------------- the book's code
def three(num_inputs: int, num_hiddens: int, backend: str | None) -> tuple[Any, Any, Any]:
    """``W_x·`` (d, h), ``W_h·`` (h, h) from N(0, 0.01²) and ``b_·`` (h,) = 0: one gate's."""
    return (init.normal((num_inputs, num_hiddens), 0.01, backend=backend),
            init.normal((num_hiddens, num_hiddens), 0.01, backend=backend),
            init.zeros((num_hiddens,), backend=backend))


GRU_PARAMS = ("W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h")
LSTM_PARAMS = ("W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f", "W_xo", "W_ho", "b_o",
               "W_xc", "W_hc", "b_c")


def gru(inputs: Sequence[tg.Tensor], state: tuple, params: Sequence[tg.Tensor]):
    """D2L §9.1.2's ``gru``: (9.1.1)-(9.1.4), with the book's reset placement
    ``(R ⊙ H) W_hh`` (``nn.GRU``, as PyTorch, computes ``R ⊙ (H W_hh + b_hn)``)."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h = params
    H, = state
    outputs = []
    for X in inputs:
        Z = ((X @ W_xz) + (H @ W_hz) + b_z).sigmoid()
        R = ((X @ W_xr) + (H @ W_hr) + b_r).sigmoid()
        H_tilda = ((X @ W_xh) + ((R * H) @ W_hh) + b_h).tanh()
        H = Z * H + (1 - Z) * H_tilda
        outputs.append(H)
    return outputs, (H,)


def lstm(inputs: Sequence[tg.Tensor], state: tuple, params: Sequence[tg.Tensor]):
    """D2L §9.2.2's ``lstm``: (9.2.1)-(9.2.4), the same maths as ``nn.LSTM``'s."""
    [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c] = params
    (H, C) = state
    outputs = []
    for X in inputs:
        I = ((X @ W_xi) + (H @ W_hi) + b_i).sigmoid()  # noqa: E741 (the book's names)
        F = ((X @ W_xf) + (H @ W_hf) + b_f).sigmoid()  # noqa: N806
        O = ((X @ W_xo) + (H @ W_ho) + b_o).sigmoid()  # noqa: E741
        C_tilda = ((X @ W_xc) + (H @ W_hc) + b_c).tanh()
        C = F * C + I * C_tilda
        H = O * C.tanh()
        outputs.append(H)
    return outputs, (H, C)


#: cell -> (its parameter names, how many state tensors, the book's function)
CELLS: dict[str, tuple[tuple[str, ...], int, Callable]] = {
    "gru": (GRU_PARAMS, 1, gru), "lstm": (LSTM_PARAMS, 2, lstm)}


class ScratchRNN(nn.Module):
    """The book's ``gru`` or ``lstm`` as ``RNNLM``'s recurrent layer, ``num_layers``
    deep (§9.3: layer l reads layer l-1's H) and, if ``bidirectional``, a second copy
    reading the sequence backwards (§9.4: the outputs of the two joined, (T, N, 2h)).

    ``layer(X, state)``: token ids X (T, N), state as ``begin_state`` gives it ->
    ``(outputs (T, N, D·h), state)``. Parameters ``W_xz_l0``... (``_reverse`` for the
    backward copy), each gate's from :func:`three`.
    """

    def __init__(self, cell: str, vocab_size: int, num_hiddens: int, num_layers: int = 1,
                 bidirectional: bool = False, backend: str | None = None) -> None:
        super().__init__()
        self.names, self.state_size, self.step = CELLS[cell]
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.suffixes = []
        for layer in range(num_layers):
            num_inputs = vocab_size if layer == 0 else self.num_directions * num_hiddens
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                gates = [p for _ in range(len(self.names) // 3)
                         for p in three(num_inputs, num_hiddens, backend)]
                for name, p in zip(self.names, gates, strict=True):
                    setattr(self, name + suffix, p)
                self.suffixes.append(suffix)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def begin_state(self, batch_size: int) -> Any:
        """Zeros (D·L, N, h); an LSTM's a tuple of two (D2L's ``init_lstm_state``)."""
        W = getattr(self, self.names[0] + self.suffixes[0])
        shape = (len(self.suffixes), batch_size, self.num_hiddens)
        zeros = [tg.Tensor(np.zeros(shape, dtype=W.dtype), backend=W.backend)
                 for _ in range(self.state_size)]
        return zeros[0] if self.state_size == 1 else tuple(zeros)

    def forward(self, X: Any, state: Any = None) -> tuple[tg.Tensor, Any]:
        W = getattr(self, self.names[0] + self.suffixes[0])
        tokens = X if isinstance(X, tg.Tensor) else tg.Tensor(np.asarray(X), backend=W.backend)
        layer_input = F.one_hot(tokens, self.vocab_size, W.dtype)  # (T, N, V)
        if state is None:
            state = self.begin_state(tokens.shape[1])
        parts = state if self.state_size > 1 else (state,)
        new = [[] for _ in parts]  # per state tensor, per layer-direction
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                k = layer * self.num_directions + direction
                params = [getattr(self, name + self.suffixes[k]) for name in self.names]
                steps = [layer_input[t] for t in range(layer_input.shape[0])]
                H, last = self.step(steps[::-1] if direction else steps,
                                    tuple(p[k] for p in parts), params)
                outputs.append(tg.stack(H[::-1] if direction else H))
                for part, value in zip(new, last, strict=True):
                    part.append(value)
            layer_input = outputs[0] if len(outputs) == 1 else tg.cat(outputs, axis=2)
        states = tuple(tg.stack(part) for part in new)
        return layer_input, states if self.state_size > 1 else states[0]

    def lstm_state_dict(self) -> dict[str, np.ndarray]:
        """This scratch LSTM's weights under ``nn.LSTM``'s names and layout: the gate
        blocks side by side in PyTorch's order i, f, g (= C̃), o, ``b_ih`` the book's
        biases and ``b_hh`` = 0 (``nn.LSTM`` adds the two)."""
        out = {}
        for suffix in self.suffixes:
            p = {name: getattr(self, name + suffix).numpy() for name in self.names}
            gates = "ifco"  # the book's C̃ is PyTorch's g
            out["W_ih" + suffix] = np.concatenate([p[f"W_x{g}"] for g in gates], axis=1)
            out["W_hh" + suffix] = np.concatenate([p[f"W_h{g}"] for g in gates], axis=1)
            out["b_ih" + suffix] = np.concatenate([p[f"b_{g}"] for g in gates])
            out["b_hh" + suffix] = np.zeros_like(out["b_ih" + suffix])
        return out


def scratch_model(cell: str, vocab_size: int, num_hiddens: int, num_layers: int = 1,
                  bidirectional: bool = False, backend: str | None = None) -> RNNLM:
    """D2L's ``RNNModelScratch``: ``RNNLM``'s output layer (W_hq ~ N(0, 0.01²), b_q = 0)
    on a :class:`ScratchRNN`."""
    model = RNNLM(vocab_size, num_hiddens, model=cell, num_layers=num_layers,
                  bidirectional=bidirectional, backend=backend)
    model.rnn = ScratchRNN(cell, vocab_size, num_hiddens, num_layers, bidirectional, backend)
    return model


# ------------------------------------------------------------------ the runs
def parser(doc: str, epochs: int, lr: float = LR) -> argparse.ArgumentParser:
    """An example's flags: the book's settings as defaults, and which variants to run."""
    p = experiment_parser(doc, data=True, seed=True, backend_default=None)
    p.add_argument("--variants", nargs="+", choices=["scratch", "concise"],
                   default=["scratch", "concise"], help="which models to train")
    p.add_argument("--hidden", type=int, default=NUM_HIDDENS, help="hidden units h (D2L: 256)")
    p.add_argument("--epochs", type=int, default=epochs, help="epochs (D2L: 500)")
    p.add_argument("--lr", type=float, default=lr, help="learning rate (SGD, clip θ = 1)")
    p.add_argument("--max-tokens", type=int, default=MAX_TOKENS,
                   help="train on the book's first N characters (D2L: 10,000)")
    p.add_argument("--every", type=int, default=10, help="report every N epochs")
    return p


def load(args: argparse.Namespace) -> tuple[np.ndarray, Vocab] | None:
    """The book, cut to --max-tokens; None (after a message) if it cannot be read."""
    try:
        return load_corpus(args.data, args.max_tokens)
    except DataError as e:
        print(f"cannot read The Time Machine: {e}", file=sys.stderr)
        return None


def train_ch8(name: str, model: RNNLM, corpus: np.ndarray, vocab: Vocab,
              args: argparse.Namespace) -> list[EpochStats]:
    """D2L's ``train_ch8``: SGD with lr --lr, gradients clipped to norm 1, minibatches of
    32 × 35 in sequential order, the state carried over between them (detached). Prints
    the perplexity every --every epochs with D2L's sample, then the book's last lines:
    ``perplexity P, S tokens/sec on BACKEND`` and the continuations of 'time traveller'
    and 'traveller'. Returns the history."""
    cfg = TrainConfig(num_hiddens=args.hidden, num_epochs=args.epochs, lr=args.lr,
                      batch_size=BATCH_SIZE, num_steps=NUM_STEPS, max_tokens=args.max_tokens,
                      seed=args.seed)
    loader = SeqDataLoader(corpus, BATCH_SIZE, NUM_STEPS, seed=args.seed)
    concise = not isinstance(model.rnn, ScratchRNN)  # a CUDA graph needs RNNLM's own layer
    trainer = Trainer(model, loader, vocab, cfg, tg.optim.SGD(model.parameters(), lr=args.lr),
                      cuda_graph=None if concise else False)
    print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{model.backend}", flush=True)

    def report(stats: EpochStats, sample: str | None) -> None:
        if stats.epoch % args.every == 0 or stats.epoch == args.epochs:
            text = f"  {sample}" if sample is not None else ""
            print(f"  epoch {stats.epoch:4d}: perplexity {stats.perplexity:7.2f}{text}",
                  flush=True)

    history = trainer.fit(callback=report, sample_every=args.every)
    last = history[-1]
    print(f"perplexity {last.perplexity:.1f}, {last.tokens_per_sec:.1f} tokens/sec on "
          f"{model.backend}")
    print(trainer.predict("time traveller"))
    print(trainer.predict("traveller"))
    return history


def backend(args: argparse.Namespace) -> str:
    """--backend, else the fastest available."""
    return args.backend or fastest_backend()


def check(failures: list[str], ok: str) -> int:
    """Print each failed claim (exit status 1) or ``ok`` (0)."""
    for failure in failures:
        print("CLAIM FAILED:", failure)
    if failures:
        return 1
    print("claims hold:", ok)
    return 0


def same_as_nn_lstm(scratch: RNNLM, tokens: np.ndarray) -> list[str]:
    """Whether ``nn.LSTM`` (fused), given a scratch LSTM's weights, computes the same
    logits, final state and gradients on ``tokens`` (N, T): the book's equations are
    its maths. Returns the failed checks."""
    rnn = scratch.rnn
    concise = RNNLM(rnn.vocab_size, rnn.num_hiddens, model="lstm", num_layers=rnn.num_layers,
                    bidirectional=rnn.bidirectional, backend=scratch.backend)
    concise.rnn.load_state_dict(rnn.lstm_state_dict())
    concise.load_state_dict({**concise.state_dict(), "W_hq": scratch.W_hq.numpy(),
                             "b_q": scratch.b_q.numpy()})
    results = []
    for model in (scratch, concise):
        model.zero_grad()
        logits, (H, C) = model(tokens, model.begin_state(tokens.shape[0]))
        F.cross_entropy(logits, np.roll(tokens, -1, axis=1).T.reshape(-1)).backward()
        results.append([logits.numpy(), H.numpy(), C.numpy(), model.W_hq.grad.numpy()])
    failures = []
    for what, a, b in zip(("logits", "h_n", "c_n", "dL/dW_hq"), *results, strict=True):
        # float32, sums of at most max(V, D·h) terms per step over a few steps
        if not np.allclose(a, b, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(b).max()))):
            failures.append(f"the scratch LSTM's {what} differ from nn.LSTM's by "
                            f"{float(np.abs(a - b).max()):.2e}")
    return failures


def perplexities(model: RNNLM, ids: np.ndarray, rows: int = 16) -> tuple[float, float]:
    """(whole, stepwise): the perplexity of predicting each next character of ``ids``
    (cut into ``rows`` rows, each from a zero state) when the model reads each row whole,
    as in training, and when it reads one character at a time and carries its state on,
    as ``predict`` does. For a model that reads left to right the two are the same
    numbers; a bidirectional one reads, in training, the very character it predicts."""
    L = len(ids) // rows
    X = ids[: rows * L].reshape(rows, L)
    targets = X[:, 1:].T.reshape(-1)  # the logits' rows are step-major
    training = model.training
    model.eval()
    try:
        with tg.no_grad():
            whole, _ = model(X[:, :-1])
            state, steps = model.begin_state(rows), []
            for t in range(L - 1):
                logits, state = model(X[:, t:t + 1], state)
                steps.append(logits.numpy())
    finally:
        model.train(training)
    stepwise = tg.Tensor(np.concatenate(steps), backend=model.backend)
    return tuple(float(np.exp(F.cross_entropy(z, targets).item())) for z in (whole, stepwise))

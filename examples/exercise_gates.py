"""D2L §9.1 and §9.2 exercises answered by experiment: GRUs with one gate, an LSTM
without its output tanh, and what each cell costs.

* §9.1 exercise 4 — "What happens if you implement only parts of a GRU, e.g., with
  only a reset gate or only an update gate?" The book's scratch GRU (§9.1.2, ``(R ⊙ H)
  W_hh``) beside two cut-down ones: *reset only* (Z = 0, so H_t = H̃_t: an RNN whose
  hidden product sees R ⊙ H) and *update only* (R = 1: H̃_t = tanh(X W_xh + H W_hh + b_h),
  then H_t = Z ⊙ H + (1 − Z) ⊙ H̃), and the plain RNN (§8.5), all written with
  tinygrad_rnn's ops (autograd derives their BPTT), trained alike.
* §9.2 exercise 4 — "Since the candidate memory cell ensures that the value range is
  between −1 and 1 by using tanh, why does the hidden state need to use tanh again?"
  The book's LSTM beside one with H_t = O ⊙ C_t (no tanh): C_t itself is not bounded
  (it adds I ⊙ C̃ to F ⊙ C_{t-1} every step), so without the tanh H_t is not either.
  Measured: the largest |H_t| and |C_t| over the book, and the perplexity.
* §9.2 exercise 3 — "Compare the computational cost for GRUs, LSTMs and regular RNNs
  for a given hidden dimension": the fused layers' training and inference tokens/s at
  --cost-hidden (D2L's 256), each timed for --cost-seconds, beside the multiply-adds
  of a step (G·(d + h)·h, G = 1, 3, 4).

All on D2L's data (the book's first 10,000 characters, minibatches of 32 × 35 in order,
SGD with --lr, clipping to 1), h = --hidden, --epochs epochs, the same seed.
Claims checked (exit status 1 if one fails): every model's perplexity falls below its
first epoch's (with two epochs or more); the book's LSTM keeps |H_t| <= 1, the one
without the output tanh only |H_t| <= |C_t|; at --cost-hidden >= 128, where the
products dominate, training an LSTM costs more time per token than an RNN.
Exit status 2 if the book cannot be read.

    python examples/exercise_gates.py
    python examples/exercise_gates.py --epochs 10 --hidden 32
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import _modern_rnn as ch9
import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn.charlm.model import RNNLM


def gru_reset_only(inputs: Sequence[tg.Tensor], state: tuple, params: Sequence[tg.Tensor]):
    """The book's GRU with Z = 0: H_t = H̃_t = tanh(X W_xh + (R ⊙ H) W_hh + b_h)."""
    W_xr, W_hr, b_r, W_xh, W_hh, b_h = params
    H, = state
    outputs = []
    for X in inputs:
        R = ((X @ W_xr) + (H @ W_hr) + b_r).sigmoid()
        H = ((X @ W_xh) + ((R * H) @ W_hh) + b_h).tanh()
        outputs.append(H)
    return outputs, (H,)


def gru_update_only(inputs: Sequence[tg.Tensor], state: tuple, params: Sequence[tg.Tensor]):
    """The book's GRU with R = 1: H_t = Z ⊙ H + (1 − Z) ⊙ tanh(X W_xh + H W_hh + b_h)."""
    W_xz, W_hz, b_z, W_xh, W_hh, b_h = params
    H, = state
    outputs = []
    for X in inputs:
        Z = ((X @ W_xz) + (H @ W_hz) + b_z).sigmoid()
        H_tilda = ((X @ W_xh) + (H @ W_hh) + b_h).tanh()
        H = Z * H + (1 - Z) * H_tilda
        outputs.append(H)
    return outputs, (H,)


def rnn(inputs: Sequence[tg.Tensor], state: tuple, params: Sequence[tg.Tensor]):
    """D2L §8.5's ``rnn``: H_t = tanh(X W_xh + H W_hh + b_h)."""
    W_xh, W_hh, b_h = params
    H, = state
    outputs = []
    for X in inputs:
        H = ((X @ W_xh) + (H @ W_hh) + b_h).tanh()
        outputs.append(H)
    return outputs, (H,)


def lstm_no_output_tanh(inputs: Sequence[tg.Tensor], state: tuple,
                        params: Sequence[tg.Tensor]):
    """The book's LSTM with H_t = O ⊙ C_t (no tanh)."""
    [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c] = params
    (H, C) = state
    outputs = []
    for X in inputs:
        I = ((X @ W_xi) + (H @ W_hi) + b_i).sigmoid()  # noqa: E741 (the book's names)
        F = ((X @ W_xf) + (H @ W_hf) + b_f).sigmoid()  # noqa: N806
        O = ((X @ W_xo) + (H @ W_ho) + b_o).sigmoid()  # noqa: E741
        C_tilda = ((X @ W_xc) + (H @ W_hc) + b_c).tanh()
        C = F * C + I * C_tilda
        H = O * C
        outputs.append(H)
    return outputs, (H, C)


# name -> (the RNNLM kind it stands in, its parameter names, state tensors, step function)
VARIANTS = {
    "GRU (book)": ("gru", ch9.GRU_PARAMS, 1, ch9.gru),
    "GRU, reset gate only": ("gru", ("W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h"), 1,
                             gru_reset_only),
    "GRU, update gate only": ("gru", ("W_xz", "W_hz", "b_z", "W_xh", "W_hh", "b_h"), 1,
                              gru_update_only),
    "RNN": ("gru", ("W_xh", "W_hh", "b_h"), 1, rnn),
    "LSTM (book)": ("lstm", ch9.LSTM_PARAMS, 2, ch9.lstm),
    "LSTM, H = O ⊙ C": ("lstm", ch9.LSTM_PARAMS, 2, lstm_no_output_tanh),
}


def scratch(name: str, V: int, hidden: int, backend: str) -> RNNLM:
    kind, params, states, step = VARIANTS[name]
    ch9.CELLS[name] = (params, states, step)  # ScratchRNN builds its gates from CELLS
    model = RNNLM(V, hidden, model=kind, backend=backend)
    model.rnn = ch9.ScratchRNN(name, V, hidden, backend=backend)
    return model


def state_ranges(name: str, model: RNNLM, corpus: np.ndarray) -> tuple[float, float]:
    """(max |H_t|, max |C_t|) of the LSTM variant ``name`` over the book in 32 rows, from
    zero states, by its own step function."""
    _, params, _, step = VARIANTS[name]
    weights = [getattr(model.rnn, p + "_l0") for p in params]
    L = len(corpus) // 32
    X = corpus[: 32 * L].reshape(32, L)
    on = {"backend": model.backend}
    zeros = tg.Tensor(np.zeros((32, model.num_hiddens), dtype=weights[0].dtype), **on)
    H_max = C_max = 0.0
    state = (zeros, zeros)
    with tg.no_grad():
        for t in range(L):
            x = tg.nn.functional.one_hot(tg.Tensor(X[:, t], **on), model.vocab_size,
                                         zeros.dtype)
            _, state = step([x], state, weights)
            H_max = max(H_max, float(np.abs(state[0].numpy()).max()))
            C_max = max(C_max, float(np.abs(state[1].numpy()).max()))
    return H_max, C_max


def cost(hidden: int, V: int, backend: str, seconds: float = 1.0) -> dict[str, tuple]:
    """Per fused cell: (training tokens/s, inference tokens/s, multiply-adds per step and
    row), on minibatches of 32 × 35 random tokens."""
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, V, (32, 35)), rng.integers(0, V, (32, 35))
    out = {}
    for kind, G in (("rnn", 1), ("gru", 3), ("lstm", 4)):
        model = RNNLM(V, hidden, model=kind, init="torch", backend=backend)
        opt = tg.optim.SGD(model.parameters(), lr=0.1)
        targets = Y.T.reshape(-1)

        def train_step(model=model, opt=opt, targets=targets):
            logits, _ = model(X)
            loss = tg.nn.functional.cross_entropy(logits, targets)
            opt.zero_grad()
            loss.backward()
            tg.optim.clip_grad_norm(model.parameters(), 1.0)
            opt.step()

        def infer_step(model=model):
            with tg.no_grad():
                model(X)

        rates = []
        for step in (train_step, infer_step):
            step()  # compile, warm up
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                step()
                n += X.size
            rates.append(n / (time.perf_counter() - start))
        out[kind.upper()] = (*rates, G * (V + hidden) * hidden)
    return out


def main(argv: list[str] | None = None) -> int:
    p = ch9.parser(__doc__, epochs=50)
    p.set_defaults(hidden=64, every=10**9)
    p.add_argument("--cost-hidden", type=int, default=256, help="h of the cost comparison")
    p.add_argument("--cost-seconds", type=float, default=1.0,
                   help="seconds of timing per cell and pass (training, inference)")
    args = p.parse_args(argv)
    data = ch9.load(args)
    if data is None:
        return 2
    corpus, vocab = data
    backend, V, failures, results = ch9.backend(args), len(vocab), [], {}
    for name in VARIANTS:
        tg.manual_seed(args.seed)
        model = scratch(name, V, args.hidden, backend)
        history = ch9.train_ch8(name, model, corpus, vocab, args)
        first, last = history[0].perplexity, history[-1].perplexity
        results[name] = (last, model)
        if len(history) > 1 and not last < first:
            failures.append(f"{name}: perplexity {last:.2f}, not below the first epoch's "
                            f"{first:.2f}")
    print(f"\nperplexity after {args.epochs} epochs, h = {args.hidden}:")
    for name, (ppl, _) in results.items():
        print(f"  {name:<24} {ppl:8.2f}")
    print("\nthe LSTM's states over the book:")
    ranges = {}
    for name in ("LSTM (book)", "LSTM, H = O ⊙ C"):
        ranges[name] = state_ranges(name, results[name][1], corpus)
        print(f"  {name:<24} max |H_t| {ranges[name][0]:.3f}, max |C_t| {ranges[name][1]:.3f}")
    if not ranges["LSTM (book)"][0] <= 1:
        failures.append("the book's LSTM has |H_t| > 1")
    H_max, C_max = ranges["LSTM, H = O ⊙ C"]
    if not H_max <= C_max:
        failures.append("without the output tanh |H_t| exceeded |C_t|, though O < 1")
    costs = cost(args.cost_hidden, V, backend, args.cost_seconds)
    print(f"\ncost of the fused layers at h = {args.cost_hidden} on {backend} "
          "(tokens/s, batch 32 × 35):")
    print(f"  {'cell':<6}{'training':>12}{'inference':>12}{'MACs/step/row':>16}")
    for cell, (train_rate, infer_rate, macs) in costs.items():
        print(f"  {cell:<6}{train_rate:>12,.0f}{infer_rate:>12,.0f}{macs:>16,}")
    if args.cost_hidden >= 128 and not costs["LSTM"][0] < costs["RNN"][0]:  # GEMM-bound there
        failures.append("training the LSTM was not slower per token than the RNN")
    return ch9.check(failures, "every model trained; the output tanh bounds H_t by 1, "
                     "without it only C_t does; the LSTM costs more than the RNN")


if __name__ == "__main__":
    sys.exit(main())

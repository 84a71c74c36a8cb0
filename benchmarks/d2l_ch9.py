"""D2L §9.1–9.4's concise programs, here and in PyTorch: perplexity at equal epochs, tokens/s.

Each program is the book's: a char-LM on the first 10,000 characters of *The Time
Machine*, minibatches of 32 × 35 in sequential order (the state carried between them,
detached, and begun afresh each epoch, as D2L's ``train_epoch_ch8``), SGD on the mean
cross-entropy, gradients clipped to norm 1, h = 256:

* ``gru``  §9.1 ``nn.GRU``, lr 1          * ``deep`` §9.3 ``nn.LSTM``, 2 layers, lr 2
* ``lstm`` §9.2 ``nn.LSTM``, lr 1         * ``bidirectional`` §9.4 ``nn.LSTM``, 2 layers,
                                             bidirectional, lr 1

Ours is the CLI's training (``RNNLM`` and ``Trainer``, the numba backend); PyTorch's is
the book's concise model (``nn.GRU``/``nn.LSTM`` + ``nn.Linear`` on one-hot inputs),
started from the SAME weights (ours, with PyTorch's initialisation, copied through
``torch_state_dict``) and fed the same minibatches in the same order. The two train in
turns, an epoch each, so both see the same machine load. Reported per program: the
last epoch's perplexity of each, their ratio (the issue's target: within 10%), and the
median tokens/s of each over the epochs.

    python benchmarks/d2l_ch9.py                        # all four, D2L's 500 epochs
    python benchmarks/d2l_ch9.py --programs gru lstm --epochs 100
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

PROGRAMS = {  # name -> (cell, layers, bidirectional, lr)
    "gru": ("gru", 1, False, 1.0),
    "lstm": ("lstm", 1, False, 1.0),
    "deep": ("lstm", 2, False, 2.0),
    "bidirectional": ("lstm", 2, True, 1.0),
}
HIDDEN, BATCH, STEPS, MAX_TOKENS = 256, 32, 35, 10000


def ours(program: str, V: int, loader, vocab, backend: str):
    """(our model, a function running one epoch -> (perplexity, tokens/s))."""
    import tinygrad_rnn as tg
    from tinygrad_rnn.charlm.model import RNNLM
    from tinygrad_rnn.charlm.train import TrainConfig, Trainer

    cell, layers, bidirectional, lr = PROGRAMS[program]
    tg.manual_seed(0)
    model = RNNLM(V, HIDDEN, model=cell, num_layers=layers, bidirectional=bidirectional,
                  init="torch", backend=backend)
    cfg = TrainConfig(num_hiddens=HIDDEN, lr=lr, batch_size=BATCH, num_steps=STEPS,
                      max_tokens=MAX_TOKENS, model=cell, num_layers=layers,
                      bidirectional=bidirectional, init="torch")
    trainer = Trainer(model, loader, vocab, cfg, tg.optim.SGD(model.parameters(), lr=lr),
                      cuda_graph=False)

    def epoch() -> tuple[float, float]:
        stats = trainer.train_epoch()
        return stats.perplexity, stats.tokens_per_sec

    return model, epoch


def theirs(program: str, V: int, loader, start):
    """PyTorch's concise model with ``start``'s weights, and its epoch function."""
    import torch
    import torch.nn.functional as F

    cell, layers, bidirectional, lr = PROGRAMS[program]
    rnn = getattr(torch.nn, cell.upper())(V, HIDDEN, layers, bidirectional=bidirectional)
    rnn.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                         for k, v in start.rnn.torch_state_dict().items()})
    D = 2 if bidirectional else 1
    linear = torch.nn.Linear(D * HIDDEN, V)
    with torch.no_grad():  # ours is X @ W_hq with W_hq (D·h, V): nn.Linear holds W_hqᵀ
        linear.weight.copy_(torch.from_numpy(start.W_hq.numpy().T.copy()))
        linear.bias.copy_(torch.from_numpy(start.b_q.numpy()))
    params = list(rnn.parameters()) + list(linear.parameters())

    def epoch() -> tuple[float, float]:
        begin = time.perf_counter()
        total, count, state = 0.0, 0, None
        for X, Y in loader:  # D2L's train_epoch_ch8, sequential: state from zeros, detached
            if state is None:
                zeros = torch.zeros(D * layers, X.shape[0], HIDDEN)
                state = (zeros, zeros.clone()) if cell == "lstm" else zeros
            else:
                state = tuple(s.detach() for s in state) if cell == "lstm" else state.detach()
            X, y = torch.from_numpy(X), torch.from_numpy(Y.T.reshape(-1))
            out, state = rnn(F.one_hot(X.T, V).float(), state)
            loss = F.cross_entropy(linear(out.reshape(-1, out.shape[-1])), y)
            for p in params:
                p.grad = None
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
            total += float(loss) * y.numel()
            count += y.numel()
        return math.exp(total / count), count / (time.perf_counter() - begin)

    return epoch


def run(program: str, epochs: int, backend: str) -> dict:
    from tinygrad_rnn.charlm.data import SeqDataLoader, load_corpus

    corpus, vocab = load_corpus(None, MAX_TOKENS)
    V = len(vocab)
    model, our_epoch = ours(program, V, SeqDataLoader(corpus, BATCH, STEPS, seed=0), vocab,
                            backend)
    their_epoch = theirs(program, V, SeqDataLoader(corpus, BATCH, STEPS, seed=0), model)
    history = {"ours": [], "torch": []}
    for e in range(1, epochs + 1):
        history["ours"].append(our_epoch())
        history["torch"].append(their_epoch())
        if e % 50 == 0 or e == epochs:
            print(f"  {program} epoch {e}: perplexity {history['ours'][-1][0]:.3f} (ours), "
                  f"{history['torch'][-1][0]:.3f} (PyTorch)", flush=True)
    return {who: (h[-1][0], statistics.median(r for _, r in h)) for who, h in history.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--programs", nargs="+", choices=list(PROGRAMS), default=list(PROGRAMS))
    p.add_argument("--epochs", type=int, default=500, help="epochs per program (D2L: 500)")
    p.add_argument("--backend", default="numba")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("d2l_ch9.py compares with PyTorch: pip install torch==2.13.0", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    rows = []
    for program in args.programs:
        result = run(program, args.epochs, args.backend)
        (ppl, rate), (tppl, trate) = result["ours"], result["torch"]
        rows.append(f"| {program} | {args.epochs} | {ppl:.3f} | {tppl:.3f} | {ppl / tppl:.3f} | "
                    f"{rate:,.0f} | {trate:,.0f} | {rate / trate:.2f}× |")
    print(f"\nD2L §9 programs, h = {HIDDEN}, {args.backend} beside PyTorch {torch.__version__} "
          f"({threads} threads; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')})")
    print(f"Command: `python benchmarks/d2l_ch9.py {' '.join(sys.argv[1:])}`\n")
    print("| program | epochs | perplexity, ours | perplexity, PyTorch | ratio | tokens/s, ours "
          "| tokens/s, PyTorch | speed |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The composed path's overhead: one D2L training step written with primitive ops,
here and in PyTorch eager, per phase and per op.

The step is the issue's: a composed RNN (``nn.RNN(fused=False)``: autograd derives
BPTT), T = 35, N = 32, one-hot input over a 28-character vocabulary, h = 32, a Linear
head, mean cross-entropy, global-norm clipping, SGD. The PyTorch side is the same
program as D2L writes it from scratch (``X[t] @ W_xh + H @ W_hh + b``, ``tanh``). At
h = 32 the arithmetic is a few microseconds a step: what is measured is what every op
costs around its kernel (argument checks, dtype rules, graph recording, dispatch).

Times are CPU seconds of this process (``time.process_time``, the default), so a machine
shared with other work skews them less than wall time; with 2 threads they include what
a waiting BLAS or OpenMP thread spends spinning (``--clock wall`` for wall time). The
implementations take turns in rounds and each phase's median over the rounds is
reported. Each thread count runs in its own process (BLAS reads it at start-up).

    python benchmarks/composed_step.py                  # 1 and 2 threads
    python benchmarks/composed_step.py --threads 1 --rounds 9 --clock wall
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import timeit

T, N, V, H = 35, 32, 28, 32
PHASES = ("forward", "backward", "clip", "sgd")


def tinygrad_step(backend: str):
    """One step of ``tg.nn.RNN(fused=False)`` + Linear + cross-entropy + clip + SGD."""
    import numpy as np

    import tinygrad_rnn as tg

    rng = np.random.default_rng(0)
    tg.manual_seed(0)
    rnn = tg.nn.RNN(V, H, fused=False, dtype=np.float32, backend=backend)
    head = tg.nn.Linear(H, V, dtype=np.float32, backend=backend)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = tg.optim.SGD(params, lr=1.0)
    X = tg.tensor(rng.integers(0, V, size=(T, N)), backend=backend)  # token ids: one-hot
    Y = tg.tensor(rng.integers(0, V, size=T * N), backend=backend)

    def step(clock) -> list[float]:
        t0 = clock()
        out, _ = rnn(X)
        loss = tg.nn.functional.cross_entropy(head(out.reshape(-1, H)), Y)
        t1 = clock()
        opt.zero_grad()
        loss.backward()
        t2 = clock()
        tg.optim.clip_grad_norm(params, 1.0)
        t3 = clock()
        opt.step()
        return [t1 - t0, t2 - t1, t3 - t2, clock() - t3]

    return step


def torch_step():
    """The same step in PyTorch eager, D2L's from-scratch RNN (§8.5)."""
    import torch
    from charlm import torch_scratch_params  # the same parameters as charlm.py's row

    rng = torch.Generator().manual_seed(0)
    params = torch_scratch_params(H, V, rng)
    W_xh, W_hh, b_h, W_hq, b_q = params
    opt = torch.optim.SGD(params, lr=1.0)
    X = torch.nn.functional.one_hot(torch.randint(0, V, (T, N), generator=rng), V).float()
    Y = torch.randint(0, V, (T * N,), generator=rng)

    def step(clock) -> list[float]:
        t0 = clock()
        state, outputs = torch.zeros(N, H), []
        for t in range(T):
            state = torch.tanh(X[t] @ W_xh + state @ W_hh + b_h)
            outputs.append(state)
        loss = torch.nn.functional.cross_entropy(torch.cat(outputs) @ W_hq + b_q, Y)
        t1 = clock()
        opt.zero_grad()
        loss.backward()
        t2 = clock()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        t3 = clock()
        opt.step()
        return [t1 - t0, t2 - t1, t3 - t2, clock() - t3]

    return step


def op_cases(backend: str):
    """name -> (tinygrad callable, torch callable) at the step's shapes."""
    import numpy as np
    import torch

    import tinygrad_rnn as tg

    rng = np.random.default_rng(0)
    a, b = (rng.random((N, H), dtype=np.float32) for _ in range(2))
    bias, x = rng.random(H, dtype=np.float32), rng.random((T, N, V), dtype=np.float32)
    ta, tb, tbias = (tg.tensor(v, requires_grad=True, backend=backend) for v in (a, b, bias))
    tx = tg.tensor(x, backend=backend)
    pa, pb, pbias = (torch.tensor(v, requires_grad=True) for v in (a, b, bias))
    px = torch.tensor(x)
    return {
        "a + b": (lambda: ta + tb, lambda: pa + pb),
        "a + bias": (lambda: ta + tbias, lambda: pa + pbias),
        "a @ b": (lambda: ta @ tb, lambda: pa @ pb),
        "tanh(a)": (lambda: ta.tanh(), lambda: pa.tanh()),
        "X[t]": (lambda: tx[3], lambda: px[3]),
        "tanh(a @ b + bias).sum().backward()": (
            lambda: (ta @ tb + tbias).tanh().sum().backward(),
            lambda: (pa @ pb + pbias).tanh().sum().backward()),
    }


def worker(threads: int, rounds: int, steps_per_round: int, wall: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    import tinygrad_rnn as tg

    backends = [b for b in ("numpy", "numba") if b in tg.backends.available()]
    impls = {f"tinygrad_rnn {b}": tinygrad_step(b) for b in backends}
    impls["PyTorch eager"] = torch_step()
    clock = time.perf_counter if wall else time.process_time
    for step in impls.values():  # warm-up: JIT, caches, allocator
        for _ in range(20):
            step(clock)
    spent = {name: [] for name in impls}
    for _ in range(rounds):
        for name, step in impls.items():
            totals = [0.0] * len(PHASES)
            for _ in range(steps_per_round):
                totals = [s + d for s, d in zip(totals, step(clock))]
            spent[name].append([s / steps_per_round for s in totals])
    torch_ms = 1e3 * statistics.median(sum(r) for r in spent["PyTorch eager"])
    kind = "wall" if wall else "CPU"
    print(f"\n### One training step, {threads} thread(s), ms of {kind} time (median of "
          f"{rounds} rounds of {steps_per_round})\n")
    print("| implementation | " + " | ".join(PHASES) + " | step | speed vs PyTorch |")
    print("|---" * (len(PHASES) + 3) + "|")
    for name, rows in spent.items():
        phases = [1e3 * statistics.median(r[i] for r in rows) for i in range(len(PHASES))]
        total = 1e3 * statistics.median(sum(r) for r in rows)
        print(f"| {name} | " + " | ".join(f"{p:.2f}" for p in phases)
              + f" | {total:.2f} | {torch_ms / total:.2f}× |")
    for b in backends:
        print(f"\n### Per op, {b} backend, {threads} thread(s), µs (best of 5)\n")
        print("| op | tinygrad_rnn | PyTorch | ratio |\n|---|---|---|---|")
        for op, (ours, theirs) in op_cases(b).items():
            n = 2000 if "backward" in op else 20000
            us = [1e6 * min(timeit.repeat(fn, number=n, repeat=5, timer=clock)) / n
                  for fn in (ours, theirs)]
            print(f"| `{op}` | {us[0]:.2f} | {us[1]:.2f} | {us[0] / us[1]:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30, help="steps per round")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.rounds, args.steps, args.clock == "wall")
        return
    import platform

    print(f"composed training step, T={T} N={N} V={V} h={H}, float32; "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    for n in args.threads:
        env = dict(os.environ, **{k: str(n) for k in (
            "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")})
        subprocess.run([sys.executable, __file__, "--worker", str(n), "--rounds",
                        str(args.rounds), "--steps", str(args.steps), "--clock", args.clock],
                       env=env, check=True)


if __name__ == "__main__":
    main()

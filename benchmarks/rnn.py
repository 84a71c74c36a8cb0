"""Forward + backward of one ``tg.nn.RNN`` layer, per backend, fused vs composed.

The D2L shape (§8.5: T=35 steps, batch N=32, vocabulary d=28 as one-hot floats,
float32) at hidden sizes 512 and 32. Each iteration is ``outputs, _ = rnn(X)``
then ``outputs.backward(G)`` with a fixed random G (T, N, h): exactly the layer's
own forward and backward, nothing downstream.

The machine is assumed noisy: every configuration is warmed up (JIT compile,
caches), then the configurations are timed interleaved, A B A B ..., so a slow
spell hits all of them alike, and the median over repeats is reported. Ratios are
to "numpy composed" at the same h, from the same run.

    python benchmarks/rnn.py                    # h = 512 and 32, every usable backend
    python benchmarks/rnn.py --hidden 512 --repeats 15 --backends numpy numba
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import tinygrad_rnn as tg

T, N, D = 35, 32, 28  # D2L §8.5: num_steps, batch_size, len(vocab)


@dataclass
class Config:
    """One row of the table: a backend, fused or composed, at hidden size h."""

    backend: str
    fused: bool
    hidden: int
    times: list[float] = field(default_factory=list)  # seconds per iteration, one per repeat

    @property
    def label(self) -> str:
        return f"{self.backend} {'fused' if self.fused else 'composed'}"


def make_step(cfg: Config, std: float, seed: int = 0):
    """A zero-argument callable running one forward + backward of ``cfg``'s layer.

    ``std`` is the weights' initial standard deviation (D2L: 0.01).
    """
    rng = np.random.default_rng(seed)
    tg.manual_seed(seed)
    rnn = tg.nn.RNN(D, cfg.hidden, fused=cfg.fused, dtype=np.float32, backend=cfg.backend, std=std)
    tokens = rng.integers(0, D, size=(T, N))
    X = tg.Tensor(np.eye(D, dtype=np.float32)[tokens], backend=cfg.backend)  # (T, N, d) one-hot
    G = tg.Tensor(rng.normal(size=(T, N, cfg.hidden)).astype(np.float32), backend=cfg.backend)
    be = tg.backends.get(cfg.backend)

    def step() -> None:
        rnn.zero_grad()
        outputs, _ = rnn(X)
        outputs.backward(G)
        be.synchronize()

    return step


def time_per_iter(step, iters: int) -> float:
    """Seconds per call of ``step``, averaged over ``iters`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - start) / iters


def run(configs: list[Config], repeats: int, min_time: float, warmup: int, std: float) -> None:
    """Fill each config's ``times``: warm up, size the batches, then time interleaved."""
    steps = [make_step(c, std) for c in configs]
    iters = []
    for step in steps:
        for _ in range(warmup):
            step()
        once = time_per_iter(step, 1)
        iters.append(max(1, round(min_time / max(once, 1e-6))))
    for _ in range(repeats):  # A B A B: noise is shared, not pinned on one config
        for cfg, step, n in zip(configs, steps, iters, strict=True):
            cfg.times.append(time_per_iter(step, n))


def table(configs: list[Config]) -> str:
    """Median ms/iter, tokens/s and speed relative to numpy composed at the same h."""
    lines = [
        f"{'h':>4}  {'configuration':<16} {'median ms':>10} {'min ms':>8} {'tokens/s':>10} "
        f"{'vs numpy composed':>18}"
    ]
    for hidden in sorted({c.hidden for c in configs}, reverse=True):
        rows = [c for c in configs if c.hidden == hidden]
        base = next((c for c in rows if c.backend == "numpy" and not c.fused), None)
        base_s = statistics.median(base.times) if base else None
        for c in rows:
            med = statistics.median(c.times)
            ratio = f"{base_s / med:.2f}x" if base_s else "n/a"
            lines.append(
                f"{hidden:>4}  {c.label:<16} {med * 1e3:>10.2f} {min(c.times) * 1e3:>8.2f} "
                f"{T * N / med:>10.0f} {ratio:>18}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[512, 32], help="hidden sizes h (default: 512 32)"
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=None,
        help="backends to time (default: every usable one of numpy, numba, cupy)",
    )
    parser.add_argument(
        "--repeats", type=int, default=15, help="timed rounds over all configurations (default: 15)"
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=0.25,
        help="seconds each configuration runs per round (default: 0.25)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="untimed iterations per configuration first (default: 3)",
    )
    parser.add_argument(
        "--std",
        type=float,
        default=0.01,
        help="initial weight std (default: D2L's 0.01, where tanh is near-linear; "
        "0.1 saturates it at h=512)",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="also update the 'rnn' block of docs/benchmarks.md",
    )
    args = parser.parse_args(argv)

    usable = tg.backends.available()
    names = args.backends or [b for b in ("numpy", "numba", "cupy") if b in usable]
    for b in names:
        tg.backends.get(b)  # unknown / unavailable: fail now with the backend's reason
    configs = [Config(b, fused, h) for h in args.hidden for b in names for fused in (False, True)]
    header = (
        f"RNN layer forward+backward: T={T} N={N} d={D} float32, one-hot X, std={args.std}; "
        f"{args.repeats} interleaved rounds of >= {args.min_time}s per configuration"
    )
    print(header)
    run(configs, args.repeats, args.min_time, args.warmup, args.std)
    report = table(configs)
    print(report)
    if args.write_docs:
        from charlm import cpu_name, versions, write_block

        command = " ".join(["python benchmarks/rnn.py", *(argv or sys.argv[1:])])
        write_block(
            "rnn",
            f"{header}; {cpu_name()}; {versions()}.\nCommand: `{command}`\n\n```\n{report}\n```",
        )


if __name__ == "__main__":
    main()

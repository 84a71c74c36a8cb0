"""Where the time of one char-LM training step goes, op by op (forward and backward).

Wraps every ``Function`` subclass's ``forward``/``backward`` and ``clip_grad_norm``
with a timer, runs the CLI's training step on D2L's minibatches, and prints the
per-step milliseconds of each, largest first, with the rest (Python: graph
bookkeeping, tensor creation, the optimizer) as the remainder.

    python benchmarks/profile_step.py --backend numba --hidden 512 [--write-docs]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import charlm  # noqa: E402

from tinygrad_rnn import ops, optim  # noqa: E402
from tinygrad_rnn.autograd import Function  # noqa: E402

spent: dict[str, float] = collections.defaultdict(float)


def _timed(name: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - start

    return wrapper


def instrument() -> None:
    for cls in vars(ops).values():
        if isinstance(cls, type) and issubclass(cls, Function) and "forward" in vars(cls):
            cls.forward = _timed(f"{cls.__name__} forward", cls.forward)
            cls.backward = _timed(f"{cls.__name__} backward", cls.backward)
    optim.clip_grad_norm = _timed("clip_grad_norm", optim.clip_grad_norm)
    optim.SGD.step = _timed("SGD step", optim.SGD.step)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="numba")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    batches, vocab_size = charlm.load_batches()
    instrument()
    step = charlm.ours(args.backend, args.hidden, vocab_size)
    for X, Y in batches[:3]:
        step(X, Y)
    spent.clear()
    start = time.perf_counter()
    for i in range(args.steps):
        step(*batches[i % len(batches)])
    total = (time.perf_counter() - start) / args.steps * 1e3
    rows = sorted(spent.items(), key=lambda kv: -kv[1])
    lines = [f"| {name} | {t / args.steps * 1e3:.3f} | {100 * t / args.steps * 1e3 / total:.0f}% |"
             for name, t in rows if t / args.steps * 1e3 >= 0.005]
    rest = total - sum(spent.values()) / args.steps * 1e3
    lines.append(f"| everything else (Python, graph, tensors) | {rest:.3f} | "
                 f"{100 * rest / total:.0f}% |")
    report = (f"Profile of one training step, backend {args.backend}, h={args.hidden}: "
              f"{total:.2f} ms/step ({charlm.BATCH * charlm.STEPS / total * 1e3:,.0f} "
              f"tokens/s, timers included); {charlm.cpu_name()}.\nCommand: `python "
              f"benchmarks/profile_step.py {' '.join(sys.argv[1:])}`\n\n"
              "| part | ms per step | share |\n|---|---|---|\n" + "\n".join(lines))
    print(report)
    if args.write_docs:
        charlm.write_block(f"profile-{args.backend}-{args.hidden}", report)


if __name__ == "__main__":
    main()

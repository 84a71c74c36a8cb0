"""Start-up cost of the Numba JIT (cold and warm on-disk cache) and peak memory per backend.

Each measurement is a fresh process running the CLI's training loop on D2L §8.5's
configuration (h=512, batch 32 × 35 steps, 10,000 characters):

* start-up: the first epoch's time minus the median of the next ones, with Numba's
  cache directory empty (cold: every kernel compiles) and then filled (warm);
* memory: the peak resident set size (``ru_maxrss`` of the child, from ``wait4``) of a
  run of a few epochs per backend, beside the same loop in PyTorch if importable.

    python benchmarks/startup_memory.py [--epochs 5] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TRAIN = """
import json, sys, time
from tinygrad_rnn.charlm.train import Trainer, TrainConfig
t0 = time.perf_counter()
trainer = Trainer.create(TrainConfig(num_epochs={epochs}), backend="{backend}")
setup = time.perf_counter() - t0
epochs = [trainer.train_epoch().seconds for _ in range({epochs})]
print(json.dumps({{"setup": setup, "epochs": epochs}}))
"""

TORCH = """
import json, sys, time
sys.path.insert(0, {bench!r})
import charlm
batches, vocab_size = charlm.load_batches(n=1000)
step = charlm.torch_nn_rnn(512, vocab_size)
epochs = []
for _ in range({epochs}):
    t = time.perf_counter()
    for X, Y in batches:
        step(X, Y)
    epochs.append(time.perf_counter() - t)
print(json.dumps({{"setup": 0.0, "epochs": epochs}}))
"""


def run(code: str, env: dict) -> tuple[dict, float]:
    """Run ``code`` in a child; return its JSON output and peak RSS in MiB."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed with exit code {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def extra_first_epoch(epochs: list[float]) -> float:
    rest = sorted(epochs[1:])
    return epochs[0] - rest[len(rest) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    lines = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold (empty Numba cache)", "warm (cache filled by the run above)"):
            out, rss = run(TRAIN.format(epochs=args.epochs, backend="numba"), env)
            lines.append(
                f"| numba, {label} | {out['setup']:.2f} s | "
                f"{extra_first_epoch(out['epochs']):.2f} s | {rss:,.0f} MiB |"
            )
    out, rss = run(TRAIN.format(epochs=args.epochs, backend="numpy"), dict(os.environ))
    lines.append(
        f"| numpy | {out['setup']:.2f} s | {extra_first_epoch(out['epochs']):.2f} s | "
        f"{rss:,.0f} MiB |"
    )
    try:
        import torch  # noqa: F401

        out, rss = run(
            TORCH.format(epochs=args.epochs, bench=str(ROOT / "benchmarks")), dict(os.environ)
        )
        lines.append(
            f"| PyTorch nn.RNN (same loop) | – | "
            f"{extra_first_epoch(out['epochs']):.2f} s | {rss:,.0f} MiB |"
        )
    except ImportError:
        pass
    report = (
        f"Start-up and peak memory, D2L §8.5 model (h=512), {args.epochs} epochs per "
        f"process. Command: `python benchmarks/startup_memory.py "
        f"{' '.join(sys.argv[1:])}`\n\n"
        "| run | set-up (data, model) | first epoch's extra time | peak RSS |\n"
        "|---|---|---|---|\n" + "\n".join(lines)
    )
    print(report)
    if args.write_docs:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from charlm import write_block

        write_block("startup", report)


if __name__ == "__main__":
    main()

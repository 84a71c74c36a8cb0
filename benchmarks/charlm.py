"""Tokens/s of the char-LM training step, per backend, beside PyTorch, interleaved.

The step is the CLI's own (``Trainer.train_step``: forward, mean cross-entropy,
backward, clipping to norm 1, SGD) on D2L's minibatches (batch 32 × 35 steps of
The Time Machine). Each implementation runs in its own process per thread count,
since BLAS reads its thread count at start-up, and all of them take turns
(A B C A B C ..., every thread count in the same rounds), so a noisy neighbour slows
all of them alike, and 1 and 2 threads can be compared; we report the median over
repeats and the spread (min–max).

Also measured, in the same process: the dense matrix products one minibatch
needs (forward and backward through the recurrence, dW_hh, the output layer) alone,
in NumPy's OpenBLAS and, where installed, in MKL (W_hh packed once per sequence): the
faster of the two rows is the bound, which no implementation on these BLAS can beat.

    python benchmarks/charlm.py              # h in {32,128,256,512,1024}, 1 and 2 threads
    python benchmarks/charlm.py --hidden 512 --threads 1 --repeats 3
    python benchmarks/charlm.py --write-docs            # also update docs/benchmarks.md + PNG
    python benchmarks/charlm.py --cell gru              # GRU / LSTM beside nn.GRU / nn.LSTM

``--cell gru|lstm`` times ``RNNLM(model=cell)`` beside PyTorch's ``nn.GRU`` / ``nn.LSTM``
(h in {32, 256, 512} unless given), with the bound's GEMMs those of the gated cell (G
gate blocks: (N, h)(h, G·h) per step each way, dW_hh (h, G·h) over all steps). Each row
also gives the peak resident memory of its process (``ru_maxrss``, a running maximum,
so after the largest h measured so far).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH, STEPS = 32, 35
CELL = os.environ.get("TINYGRAD_RNN_BENCH_CELL", "rnn")  # --cell, passed on to the workers
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
TORCH_NN = f"PyTorch nn.{CELL.upper()}"
TORCH_CUDA = f"{TORCH_NN} (cuda)"  # measured only where torch.cuda.is_available()
GRAPHED = "tinygrad_rnn cupy (CUDA graph)"  # the step replayed: train's default on cupy


# ------------------------------------------------------------------ workloads
def load_batches(n: int = 8) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """D2L's first ``n`` sequential minibatches of the book (random tokens if it is absent)."""
    from tinygrad_rnn.charlm.data import DataError, SeqDataLoader, load_corpus

    try:
        corpus, vocab = load_corpus(None, 10000)
        vocab_size = len(vocab)
    except DataError:
        vocab_size = 28
        corpus = np.random.default_rng(0).integers(0, vocab_size, 10000)
    loader = SeqDataLoader(corpus, BATCH, STEPS, seed=0)
    return list(iter(loader))[:n], vocab_size


def ours(backend: str, hidden: int, vocab_size: int, cuda_graph: bool = False):
    """A step function over (X, Y) running the CLI's training step on ``backend``
    (replayed from a CUDA graph with ``cuda_graph``, as ``train`` does on cupy by
    default; else eagerly, as ``train --no-cuda-graph``)."""
    from tinygrad_rnn import optim
    from tinygrad_rnn.charlm.data import Vocab
    from tinygrad_rnn.charlm.model import RNNLM, detach_state
    from tinygrad_rnn.charlm.train import TrainConfig, Trainer

    config = TrainConfig(num_hiddens=hidden, batch_size=BATCH, num_steps=STEPS, model=CELL)
    model = RNNLM(vocab_size, hidden, model=CELL, backend=backend)
    trainer = Trainer(model, None, Vocab([]), config, optim.SGD(model.parameters(), lr=1.0),
                      cuda_graph=cuda_graph)
    state = [None]

    def graphed_step(X, Y):
        loss = trainer.graphed_step(X, Y, fresh=state[0] is None)
        state[0] = True  # the graph carries H_T over itself
        model.W_hq._backend.synchronize()
        return float(loss)

    def step(X, Y):
        s = model.begin_state(BATCH) if state[0] is None else detach_state(state[0])
        loss, state[0] = trainer.train_step(X, Y, s)
        model.W_hq._backend.synchronize()
        return float(loss)

    return graphed_step if cuda_graph else step


def torch_scratch_params(hidden: int, vocab_size: int, generator=None) -> list:
    """D2L §8.5's parameters in PyTorch, ``[W_xh, W_hh, b_h, W_hq, b_q]``: N(0, 0.01²)
    weights (drawn by ``generator``, else one seeded with 0), zero biases."""
    import torch

    g = torch.Generator().manual_seed(0) if generator is None else generator
    W_xh = (torch.randn(vocab_size, hidden, generator=g) * 0.01).requires_grad_()
    W_hh = (torch.randn(hidden, hidden, generator=g) * 0.01).requires_grad_()
    b_h = torch.zeros(hidden, requires_grad=True)
    W_hq = (torch.randn(hidden, vocab_size, generator=g) * 0.01).requires_grad_()
    b_q = torch.zeros(vocab_size, requires_grad=True)
    return [W_xh, W_hh, b_h, W_hq, b_q]


def torch_scratch(hidden: int, vocab_size: int):
    """D2L §8.5's RNNModelScratch in PyTorch: a Python loop over steps."""
    import torch
    import torch.nn.functional as F

    params = torch_scratch_params(hidden, vocab_size)
    W_xh, W_hh, b_h, W_hq, b_q = params
    state = [torch.zeros(BATCH, hidden)]

    def step(X, Y):
        X, Y = torch.from_numpy(X), torch.from_numpy(Y)
        H = state[0].detach()
        outputs = []
        for X_t in F.one_hot(X.T, vocab_size).float():
            H = torch.tanh(X_t @ W_xh + H @ W_hh + b_h)
            outputs.append(H @ W_hq + b_q)
        loss = F.cross_entropy(torch.cat(outputs), Y.T.reshape(-1))
        for p in params:
            p.grad = None
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        with torch.no_grad():
            for p in params:
                p -= p.grad
        state[0] = H
        return float(loss.detach())

    return step


def torch_nn_rnn(hidden: int, vocab_size: int, device: str = "cpu"):
    """D2L §8.6's concise RNNModel: ``nn.RNN`` + ``nn.Linear`` on one-hot inputs.

    On ``device="cuda"`` it is cuDNN's ``nn.RNN``, the reference for ``cupy``: float32
    arithmetic as in CuPy (TF32 off), and each step ends with a device sync (besides
    ``float(loss)``), as ours does, so the clock is read after the GPU has finished.
    """
    import torch
    import torch.nn.functional as F

    if device == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    rnn = getattr(torch.nn, CELL.upper())(vocab_size, hidden).to(device)
    linear = torch.nn.Linear(hidden, vocab_size).to(device)
    params = list(rnn.parameters()) + list(linear.parameters())
    opt = torch.optim.SGD(params, lr=1.0)
    zeros = torch.zeros(1, BATCH, hidden, device=device)
    state = [(zeros, zeros) if CELL == "lstm" else zeros]

    def detached(s):
        return tuple(x.detach() for x in s) if isinstance(s, tuple) else s.detach()

    def step(X, Y):
        X, Y = torch.from_numpy(X).to(device), torch.from_numpy(Y).to(device)
        out, H = rnn(F.one_hot(X.T, vocab_size).float(), detached(state[0]))
        loss = F.cross_entropy(linear(out.reshape(-1, hidden)), Y.T.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        state[0] = H
        if device == "cuda":
            torch.cuda.synchronize()
        return float(loss.detach())

    return step


MKL_BOUND, OPENBLAS_BOUND = "GEMM bound (MKL, packed W_hh)", "GEMM bound (OpenBLAS)"


def bound_names() -> list[str]:
    """The bound rows: the products in NumPy's OpenBLAS, and in MKL's (W_hh packed once)
    where it is installed; the table's bound is the faster of them at each h and thread
    count (the numba backend times the two and keeps the faster, :func:`_mkl.preferred`)."""
    from tinygrad_rnn.backends import _mkl

    return ([MKL_BOUND] if _mkl.available() else []) + [OPENBLAS_BOUND]


def gemm_bound(hidden: int, vocab_size: int, library: str = "openblas"):
    """Only the dense products of one minibatch, float32, in one library: ``"mkl"``
    (W_hh packed once per sequence each way, as the numba backend runs it) or
    ``"openblas"`` (NumPy's, each product in its fastest layout: a contiguous W_hhᵀ for
    the backward's per-step products)."""
    from tinygrad_rnn.backends import _mkl

    rng = np.random.default_rng(0)
    T, N, h, V, G = STEPS, BATCH, hidden, vocab_size, GATES[CELL]
    f = np.float32
    W_hh, W_hq = rng.standard_normal((h, G * h)).astype(f), rng.standard_normal((h, V)).astype(f)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    H = rng.standard_normal((T, N, h)).astype(f)
    dZ = rng.standard_normal((T, N, G * h)).astype(f)
    dO = rng.standard_normal((T * N, V)).astype(f)
    gates, carry = np.empty((N, G * h), f), np.empty((N, h), f)
    dW_hh = np.empty((h, G * h), f)
    mkl = library == "mkl" and _mkl.usable(W_hh)

    def step(X, Y):
        if mkl:  # packing is part of the work: once per sequence, each way
            forward, backward = _mkl.PackedRight(W_hh, N), _mkl.PackedRight(W_hh, N, True)
        for t in range(T):  # recurrence, forward and backward: (N,h)(h,G·h), (N,G·h)(G·h,h)
            if mkl:
                forward(H[t], gates)
                backward(dZ[t], carry)
            else:
                np.matmul(H[t], W_hh, out=gates)
                np.matmul(dZ[t], W_hh_T, out=carry)
        Hs = H.reshape(T * N, h)
        if mkl:  # dW_hh over all steps
            _mkl.gemm(Hs, dZ.reshape(T * N, G * h), dW_hh, trans_a=True)
        else:
            np.matmul(Hs.T, dZ.reshape(T * N, G * h), out=dW_hh)
        Hs @ W_hq  # output layer forward
        dO @ W_hq.T  # its input gradient
        Hs.T @ dO  # dW_hq
        return 0.0

    return step


# ------------------------------------------------------------------- worker
# Each implementation runs in a process of its own, kept alive and driven turn by
# turn (A B C A B C ...): thread pools of one library (OpenBLAS, OpenMP) then never
# spin on the cores while another is being timed, and all face the same noise.
def make_step(impl: str, hidden: int, vocab_size: int):
    if impl.startswith("tinygrad_rnn "):
        return ours(impl.split()[1], hidden, vocab_size, cuda_graph=impl == GRAPHED)
    if impl == "PyTorch scratch loop":
        return torch_scratch(hidden, vocab_size)
    if impl == TORCH_NN:
        return torch_nn_rnn(hidden, vocab_size)
    if impl == TORCH_CUDA:
        return torch_nn_rnn(hidden, vocab_size, "cuda")
    return gemm_bound(hidden, vocab_size, "mkl" if impl == MKL_BOUND else "openblas")


def worker(impl: str, threads: int) -> None:
    """Serve timing requests for ``impl``: read ``hidden seconds`` lines, answer tokens/s.

    Each round runs whole minibatches until ``seconds`` have passed, so every
    implementation is timed for the same wall time: a round of a few milliseconds
    (8 minibatches at h=32) would mostly measure a core waking up from the pause.
    """
    if impl.startswith("PyTorch"):
        import torch

        torch.set_num_threads(threads)
    batches, vocab_size = load_batches()
    steps = {}
    print("ready", flush=True)
    for line in sys.stdin:
        hidden, seconds = int(line.split()[0]), float(line.split()[1])
        if hidden not in steps:
            steps[hidden] = make_step(impl, hidden, vocab_size)
            for X, Y in batches[:3]:  # warm-up: JIT, allocator, caches
                steps[hidden](X, Y)
        start, done = time.perf_counter(), 0
        while done < 2 or time.perf_counter() - start < seconds:
            steps[hidden](*batches[done % len(batches)])
            done += 1
        rate = done * BATCH * STEPS / (time.perf_counter() - start)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(rate, peak_mb, flush=True)


def implementations(backends: list[str], torch: bool, gpu_only: bool = False) -> list[str]:
    """The rows to measure; ``gpu_only`` keeps the GPU ones (ours and cuDNN's), which is
    all the GPU check compares, in a third of the time."""
    import importlib.util

    import tinygrad_rnn as tg

    impls = [f"tinygrad_rnn {b}" for b in backends if b in tg.backends.available()]
    if "tinygrad_rnn cupy" in impls:
        impls.append(GRAPHED)
    if torch and importlib.util.find_spec("torch") is not None:
        if not gpu_only:
            impls += (["PyTorch scratch loop"] if CELL == "rnn" else []) + [TORCH_NN]
        if _torch_cuda_available():
            impls.append(TORCH_CUDA)
    if gpu_only:
        return [i for i in impls if i in ("tinygrad_rnn cupy", GRAPHED, TORCH_CUDA)]
    return impls + bound_names()


def _torch_cuda_available() -> bool:
    """``torch.cuda.is_available()``, asked in a child process (this one never touches CUDA)."""
    code = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"
    try:
        return subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def thread_env(threads: int) -> dict[str, str]:
    """The environment with every thread pool (BLAS, OpenMP, Numba) set to ``threads``."""
    n = str(threads)
    return dict(
        os.environ,
        OPENBLAS_NUM_THREADS=n,
        OMP_NUM_THREADS=n,
        MKL_NUM_THREADS=n,
        NUMBA_NUM_THREADS=n,
    )


def measure(
    impls: list[str], hidden_sizes: list[int], thread_counts: list[int], repeats: int,
    seconds: float
) -> list[dict]:
    """Tokens/s of every implementation at every thread count, one worker process each,
    all taking turns round by round (1 and 2 threads too), so all see the same load."""
    procs = {
        (impl, threads): subprocess.Popen(
            [sys.executable, __file__, "--worker", impl, "--threads", str(threads)],
            env=dict(thread_env(threads), TINYGRAD_RNN_BENCH_CELL=CELL),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for threads in thread_counts
        for impl in impls
    }
    for p in procs.values():
        assert p.stdout.readline().strip() == "ready"
    results = []
    for hidden in hidden_sizes:
        rates: dict[tuple, list[float]] = {key: [] for key in procs}
        peaks: dict[tuple, float] = {}
        for _ in range(repeats):
            for key, p in list(procs.items()):
                p.stdin.write(f"{hidden} {seconds}\n")
                p.stdin.flush()
                answer = p.stdout.readline()
                if not answer:  # the worker died; its traceback is on stderr
                    print(f"charlm.py: {key[0]} ({key[1]} threads) failed at h = {hidden}; "
                          "no row for it", file=sys.stderr)
                    del procs[key], rates[key]
                    continue
                rate, peak = map(float, answer.split())
                rates[key].append(rate)
                peaks[key] = peak
                time.sleep(0.05)  # let the last one's pool threads go idle
        results += [
            {
                "hidden": hidden,
                "threads": threads,
                "impl": impl,
                "median": statistics.median(r),
                "min": min(r),
                "max": max(r),
                "peak_mb": peaks[(impl, threads)],
            }
            for (impl, threads), r in rates.items()
        ]
    for p in procs.values():
        p.stdin.close()
        p.wait()
    return sorted(results, key=lambda r: (r["threads"], r["hidden"]))  # stable: impl order


# -------------------------------------------------------------------- report
def versions(gpu: bool = False) -> str:
    import numba

    parts = [
        f"Python {platform.python_version()}",
        f"NumPy {np.__version__}",
        f"Numba {numba.__version__}",
    ]
    if gpu:
        try:
            import cupy

            parts.append(f"CuPy {cupy.__version__}")
        except ImportError:
            pass
    try:
        import torch

        parts.append(f"PyTorch {torch.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def gpu_name() -> str:
    """The GPU's name (device 0), from ``nvidia-smi``, or 'unknown GPU'."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout.strip().splitlines()[0] if done.returncode == 0 else "unknown GPU"
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown GPU"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(results: list[dict]) -> str:
    refs = (TORCH_NN, "PyTorch scratch loop", "GEMM bound")
    cuda = any(r["impl"] == TORCH_CUDA for r in results)  # then one more column
    rows = [
        "| h | threads | implementation | tokens/s (median) | spread (min–max) | "
        f"vs {TORCH_NN} | vs GEMM bound | peak RSS (MB) |"
        + (f" vs {TORCH_CUDA} |" if cuda else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if cuda else ""),
    ]
    for r in results:
        same = {
            x["impl"]: x["median"]
            for x in results
            if x["hidden"] == r["hidden"] and x["threads"] == r["threads"]
        }
        bounds = [v for k, v in same.items() if k.startswith("GEMM bound")]
        if bounds:  # the faster library's row is the bound
            same["GEMM bound"] = max(bounds)
        ratio = {
            ref: (f"{r['median'] / same[ref]:.2f}×" if ref in same else "–")
            for ref in (*refs, TORCH_CUDA)
        }
        rows.append(
            f"| {r['hidden']} | {r['threads']} | {r['impl']} | {r['median']:,.0f} | "
            f"{r['min']:,.0f}–{r['max']:,.0f} | {ratio[refs[0]]} | {ratio[refs[2]]} | "
            f"{r['peak_mb']:,.0f} |"
            + (f" {ratio[TORCH_CUDA]} |" if cuda else "")
        )
    return "\n".join(rows)


def plot(results: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no PNG: matplotlib is not installed)", file=sys.stderr)
        return False
    threads = sorted({r["threads"] for r in results})
    fig, axes = plt.subplots(1, len(threads), figsize=(5.5 * len(threads), 4), squeeze=False)
    for ax, t in zip(axes[0], threads):
        for impl in dict.fromkeys(r["impl"] for r in results):
            pts = sorted(
                (r["hidden"], r["median"])
                for r in results
                if r["impl"] == impl and r["threads"] == t
            )
            style = "--" if "bound" in impl else "-"
            ax.plot(*zip(*pts), style, marker="o", label=impl)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="hidden size h",
            ylabel="tokens/s",
            title=f"char-LM ({CELL.upper()}) training step, {t} thread{'s' * (t > 1)}",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def write_block(name: str, report: str) -> None:
    """Replace (or append) the block ``name`` of docs/benchmarks.md, keeping the rest."""
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{report}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cell", choices=list(GATES), default="rnn",
                   help="the recurrent layer: nn.RNN, nn.GRU or nn.LSTM, beside PyTorch's")
    p.add_argument("--hidden", type=int, nargs="+", default=None,
                   help="hidden sizes (default: 32 128 256 512 1024; gated cells 32 256 512)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--backends", nargs="+", default=["numpy", "numba", "cupy"])
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per implementation")
    p.add_argument(
        "--seconds",
        type=float,
        default=0.4,
        help="wall time of each timed round (whole minibatches, at least two)",
    )
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    p.add_argument("--gpu-only", action="store_true",
                   help="only the GPU rows: tinygrad_rnn cupy (eager, CUDA graph), PyTorch "
                        "nn.RNN (cuda)")
    p.add_argument(
        "--write-docs",
        action="store_true",
        help="update docs/benchmarks.md and docs/img/charlm_tokens_per_sec.png",
    )
    p.add_argument("--worker", metavar="IMPL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.threads[0])
    global CELL, TORCH_NN, TORCH_CUDA
    CELL, TORCH_NN = args.cell, f"PyTorch nn.{args.cell.upper()}"
    TORCH_CUDA = f"{TORCH_NN} (cuda)"
    if args.hidden is None:
        args.hidden = [32, 128, 256, 512, 1024] if CELL == "rnn" else [32, 256, 512]

    if args.gpu_only and args.write_docs:
        p.error("--write-docs rewrites the CPU table too: run it without --gpu-only")
    impls = implementations(args.backends, not args.no_torch, args.gpu_only)
    if args.gpu_only and not impls:
        p.error("--gpu-only: no GPU rows to measure (neither cupy nor PyTorch CUDA is usable)")
    results = []
    results += measure(impls, args.hidden, args.threads, args.repeats, args.seconds)
    gpu = "tinygrad_rnn cupy" in impls or TORCH_CUDA in impls
    header = (
        f"Char-LM training step, {TORCH_NN[8:]} (batch {BATCH} × {STEPS} steps, float32), "
        f"{cpu_name()}{f', {gpu_name()}' if gpu else ''}; {versions(gpu)}.\n"
        f"Command: `python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`"
    )
    report = header + "\n\n" + table(results)
    print(report)
    if args.write_docs:
        suffix = "" if CELL == "rnn" else f"_{CELL}"
        png = ROOT / "docs" / "img" / f"charlm_tokens_per_sec{suffix}.png"
        if plot(results, png):
            report += f"\n\n![tokens/s against hidden size](img/{png.name})"
        write_block("charlm" + suffix.replace("_", "-"), report)


if __name__ == "__main__":
    main()

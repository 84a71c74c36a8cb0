"""Tokens/s of the char-LM training step: our NumPy backend beside other NumPy autograds.

The workload is D2L §8.5's char-RNN training step (batch 32 × 35 steps of The Time
Machine, one-hot inputs, ``H = tanh(X_t @ W_xh + H @ W_hh + b_h)``, ``O = H @ W_hq +
b_q``, mean cross-entropy, backward, clipping to global norm 1, SGD with lr 1, the
hidden state carried and detached between minibatches), written in each framework's
own idiom:

* ``tinygrad_rnn numpy`` — the CLI's training step (``ours`` in ``charlm.py``);
* MyGrad — ``mg`` tensors, ``mg.matmul``, ``mg.tanh``, ``mg.nnet.logsoftmax``, ``.backward()``;
* DeZero — ``Variable``s, ``F.matmul``, ``F.tanh``, ``F.softmax_cross_entropy``,
  ``loss.backward()``;
* HIPS autograd — a pure function of the parameters and ``grad_and_aux`` of the loss.

Every framework starts from D2L's init (weights N(0, 0.01²), zero biases, float32), so
each one's loss on the first minibatch should be ≈ log 28 ≈ 3.33: that column checks the
implementations agree. The dtype column gives the gradients' dtype after a step: float32
unless the framework upcasts on its own.

Each implementation runs in a process of its own, driven turn by turn (A B C A B C ...)
so a noisy neighbour slows all of them alike; BLAS is pinned to ``--threads`` threads
(default 1). Frameworks that do not install or import are skipped with the reason.

    python benchmarks/numpy_frameworks.py                  # h in {512, 32}
    python benchmarks/numpy_frameworks.py --hidden 256 --repeats 3
    python benchmarks/numpy_frameworks.py --write-docs     # also update docs/benchmarks.md

The frameworks compared are not dependencies of tinygrad_rnn:
``pip install mygrad dezero autograd`` to run them.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from charlm import (  # noqa: E402
    BATCH,
    STEPS,
    cpu_name,
    load_batches,
    ours,
    thread_env,
    write_block,
)

OURS = "tinygrad_rnn numpy"
FRAMEWORKS = {"MyGrad": "mygrad", "DeZero": "dezero", "HIPS autograd": "autograd"}
IMPLS = [OURS, *FRAMEWORKS]
F32 = np.float32


def d2l_params(hidden: int, vocab_size: int) -> list[np.ndarray]:
    """D2L's ``get_params``: W_xh, W_hh, b_h, W_hq, b_q; N(0, 0.01²) weights, float32."""
    rng = np.random.default_rng(0)

    def normal(*shape):
        return (rng.standard_normal(shape) * 0.01).astype(F32)

    return [
        normal(vocab_size, hidden),
        normal(hidden, hidden),
        np.zeros(hidden, F32),
        normal(hidden, vocab_size),
        np.zeros(vocab_size, F32),
    ]


def clip_and_sgd(params: list[np.ndarray], grads: list[np.ndarray], theta=1.0, lr=1.0):
    """D2L's ``grad_clipping`` (global norm ``theta``) then ``sgd``, in place on NumPy arrays."""
    norm = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
    scale = lr * (theta / norm if norm > theta else 1.0)
    for p, g in zip(params, grads):
        p -= (scale * g).astype(p.dtype, copy=False)


def one_hot(X: np.ndarray, vocab_size: int) -> np.ndarray:
    """(N, T) token ids -> (T, N, V) float32 one-hot, time-major as in D2L."""
    return np.eye(vocab_size, dtype=F32)[X.T]


# ----------------------------------------------------------------- frameworks
# Each factory returns ``step(X, Y) -> loss`` and ``dtypes() -> str`` (the gradients').
def mygrad_step(hidden: int, vocab_size: int):
    import mygrad as mg

    params = [mg.tensor(p) for p in d2l_params(hidden, vocab_size)]
    W_xh, W_hh, b_h, W_hq, b_q = params
    state = [np.zeros((BATCH, hidden), F32)]  # a NumPy array: a constant, i.e. detached

    def step(X, Y):
        H = state[0]
        outputs = []
        for X_t in one_hot(X, vocab_size):
            H = mg.tanh(mg.matmul(X_t, W_xh) + mg.matmul(H, W_hh) + b_h)
            outputs.append(mg.matmul(H, W_hq) + b_q)
        logp = mg.nnet.logsoftmax(mg.concatenate(outputs, axis=0))
        y = Y.T.reshape(-1)
        loss = -mg.mean(logp[np.arange(len(y)), y])
        loss.backward()
        clip_and_sgd([p.data for p in params], [p.grad for p in params])
        state[0] = H.data
        return loss.item()

    return step, lambda: "/".join(sorted({str(p.grad.dtype) for p in params}))


def dezero_step(hidden: int, vocab_size: int):
    if not hasattr(np, "int"):  # DeZero 0.0.13's transforms.py uses np.int, gone in NumPy 2
        np.int = int
    import dezero.functions as F
    from dezero import Variable

    params = [Variable(p) for p in d2l_params(hidden, vocab_size)]
    W_xh, W_hh, b_h, W_hq, b_q = params
    state = [Variable(np.zeros((BATCH, hidden), F32))]

    def step(X, Y):
        H = state[0]
        loss = 0
        for X_t, Y_t in zip(one_hot(X, vocab_size), Y.T):  # DeZero has no concat: the
            H = F.tanh(F.matmul(X_t, W_xh) + F.matmul(H, W_hh) + b_h)  # mean over T of the
            loss += F.softmax_cross_entropy(F.matmul(H, W_hq) + b_q, Y_t)  # per-step means
        loss = loss / len(Y.T)
        for p in params:
            p.cleargrad()
        loss.backward()
        loss.unchain_backward()  # DeZero's truncated BPTT: cut the graph, H included
        clip_and_sgd([p.data for p in params], [p.grad.data for p in params])
        state[0] = H
        return float(loss.data)

    return step, lambda: "/".join(sorted({str(p.grad.data.dtype) for p in params}))


def autograd_step(hidden: int, vocab_size: int):
    import autograd.numpy as anp
    from autograd import grad_and_aux
    from autograd.scipy.special import logsumexp
    from autograd.tracer import getval

    def loss_fn(params, H, X, Y):
        W_xh, W_hh, b_h, W_hq, b_q = params
        outputs = []
        for X_t in one_hot(X, vocab_size):
            H = anp.tanh(anp.dot(X_t, W_xh) + anp.dot(H, W_hh) + b_h)
            outputs.append(anp.dot(H, W_hq) + b_q)
        O = anp.concatenate(outputs, axis=0)
        logp = O - logsumexp(O, axis=1, keepdims=True)
        y = Y.T.reshape(-1)
        loss = -anp.mean(logp[np.arange(len(y)), y])
        return loss, (getval(loss), getval(H))

    grad_fn = grad_and_aux(loss_fn)
    params = d2l_params(hidden, vocab_size)
    state = [np.zeros((BATCH, hidden), F32)]
    last = [params]

    def step(X, Y):
        grads, (loss, H) = grad_fn(params, state[0], X, Y)
        clip_and_sgd(params, grads)
        state[0] = H
        last[0] = grads
        return float(loss)

    return step, lambda: "/".join(sorted({str(np.asarray(g).dtype) for g in last[0]}))


def ours_step(hidden: int, vocab_size: int):
    step = ours("numpy", hidden, vocab_size)
    return step, lambda: "float32"  # RNNLM's default dtype; its step keeps it


FACTORIES = {
    OURS: ours_step,
    "MyGrad": mygrad_step,
    "DeZero": dezero_step,
    "HIPS autograd": autograd_step,
}


def version(impl: str) -> str:
    """The installed version of ``impl``'s package, or raise if it cannot be imported."""
    import importlib
    import importlib.metadata

    if impl == OURS:
        import tinygrad_rnn  # noqa: F401

        return importlib.metadata.version("tinygrad_rnn")
    if impl == "DeZero" and not hasattr(np, "int"):
        np.int = int
    importlib.import_module(FRAMEWORKS[impl])
    return importlib.metadata.version(FRAMEWORKS[impl])


# ------------------------------------------------------------------- worker
def worker(impl: str) -> None:
    """Serve ``hidden n_steps`` requests for ``impl``: answer ``tokens/s loss1 loss3 dtypes``."""
    try:
        print("ready", version(impl), flush=True)
    except Exception as e:  # noqa: BLE001 - any import failure means: skip it
        print("skip", f"{type(e).__name__}: {e}".replace("\n", " "), flush=True)
        return
    batches, vocab_size = load_batches()
    steps = {}
    for line in sys.stdin:
        hidden, n_steps = map(int, line.split())
        if hidden not in steps:
            step, dtypes = FACTORIES[impl](hidden, vocab_size)
            # warm-up (allocator, caches) and correctness check: the losses on the 1st
            # minibatch (fresh state) and on the 3rd (after two updates, state carried)
            losses = [step(X, Y) for X, Y in batches[:3]]
            steps[hidden] = step, dtypes, f"{losses[0]:.5f} {losses[2]:.5f}"
        step, dtypes, first = steps[hidden]
        start = time.perf_counter()
        for i in range(n_steps):
            step(*batches[i % len(batches)])
        rate = n_steps * BATCH * STEPS / (time.perf_counter() - start)
        print(rate, first, dtypes(), flush=True)


def measure(hidden_sizes: list[int], threads: int, repeats: int, n_steps: int):
    env = thread_env(threads)
    procs, versions, skipped = {}, {}, {}
    for impl in IMPLS:
        p = subprocess.Popen(
            [sys.executable, __file__, "--worker", impl],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        status, _, info = p.stdout.readline().strip().partition(" ")
        if status == "ready":
            procs[impl], versions[impl] = p, info
        else:
            skipped[impl] = info or f"worker exited with {p.wait()}"
            print(f"skipping {impl}: {skipped[impl]}", file=sys.stderr)
            p.stdin.close()
            p.wait()
    results = []
    for hidden in hidden_sizes:
        rates: dict[str, list[float]] = {impl: [] for impl in procs}
        info: dict[str, tuple[float, float, str]] = {}
        for r in range(repeats):
            for impl, p in procs.items():
                p.stdin.write(f"{hidden} {n_steps}\n")
                p.stdin.flush()
                answer = p.stdout.readline().split()
                if len(answer) != 4:
                    raise RuntimeError(f"{impl}'s worker failed (h={hidden}); see its stderr")
                rate, loss1, loss3, dtypes = answer
                rates[impl].append(float(rate))
                info[impl] = float(loss1), float(loss3), dtypes
                time.sleep(0.05)
            print(f"h={hidden} round {r + 1}/{repeats} done", file=sys.stderr)
        results += [
            {
                "hidden": hidden,
                "impl": impl,
                "median": statistics.median(rs),
                "min": min(rs),
                "max": max(rs),
                "loss1": info[impl][0],
                "loss3": info[impl][1],
                "dtype": info[impl][2],
            }
            for impl, rs in rates.items()
        ]
    for p in procs.values():
        p.stdin.close()
        p.wait()
    return results, versions, skipped


def table(results: list[dict]) -> str:
    rows = [
        "| h | implementation | tokens/s (median) | spread (min–max) | "
        f"vs {OURS} | loss, 1st minibatch | loss, 3rd | grad dtype |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ref = next(
            (x["median"] for x in results if x["hidden"] == r["hidden"] and x["impl"] == OURS),
            None,
        )
        ratio = f"{r['median'] / ref:.2f}×" if ref else "–"
        rows.append(
            f"| {r['hidden']} | {r['impl']} | {r['median']:,.0f} | "
            f"{r['min']:,.0f}–{r['max']:,.0f} | {ratio} | {r['loss1']:.4f} | "
            f"{r['loss3']:.4f} | {r['dtype']} |"
        )
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 32])
    p.add_argument("--threads", type=int, default=1, help="BLAS threads per worker")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per implementation")
    p.add_argument("--minibatches", type=int, default=8, help="minibatches per timed round")
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md's block")
    p.add_argument("--worker", metavar="IMPL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker)

    results, versions, skipped = measure(args.hidden, args.threads, args.repeats, args.minibatches)
    names = ", ".join(f"{impl} {v}" for impl, v in versions.items())
    notes = [
        f"Char-LM training step (D2L §8.5 scratch RNN, batch {BATCH} × {STEPS} steps, "
        f"vocab 28, one-hot inputs), NumPy-based frameworks, {args.threads} BLAS "
        f"thread{'s' * (args.threads > 1)} each; {cpu_name()}; Python "
        f"{platform.python_version()}, NumPy {np.__version__}; {names}.",
        f"Command: `python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`",
    ]
    if "DeZero" in versions:
        notes.append(
            "DeZero runs with `np.int = int` set first: its `transforms.py` uses `np.int`, "
            "removed in NumPy 2."
        )
    if any(r["impl"] == "DeZero" and "float64" in r["dtype"] for r in results):
        notes.append(
            "DeZero is not float32 throughout: its parameters stay float32, but "
            "`F.softmax_cross_entropy`'s backward subtracts an int64 one-hot from the "
            "softmax, so its gradients, and the whole backward pass, are float64."
        )
    others = [r for r in results if r["impl"] not in (OURS, "DeZero")]
    if any(r["dtype"] != "float32" for r in others):
        notes.append("Gradients not float32 are shown in the dtype column.")
    notes += [f"Skipped {impl}: {why}." for impl, why in skipped.items()]
    report = "\n\n".join(["\n".join(notes[:2]), *notes[2:], table(results)])
    print(report)
    if args.write_docs:
        write_block("numpy-frameworks", report)


if __name__ == "__main__":
    main()

"""The cupy backend's two ways to run the recurrence, side by side on one GPU.

For each hidden size (batch 32, 35 steps, float32, tanh: D2L §8.5's shape and its
neighbours), both strategies of ``CupyBackend.rnn_strategy`` run the forward and the
BPTT backward: ``loop`` (per step one cuBLAS GEMM and one fused elementwise kernel)
and ``rows`` (the whole sequence in one launch, a block per batch row; its k sums
whole, and split over thread groups as the backend does by default). Each is checked
against a float64 NumPy reference (relative error of the whole output, ‖got − ref‖ /
‖ref‖) and timed with ``cupyx.profiler.benchmark``: host time per call (Python and
launches) and GPU time per call (CUDA events), medians after 5 warm-ups. PyTorch's
cuDNN ``nn.RNN`` on the same shape (forward, and forward + backward, the larger of host
and GPU time) is the reference row.

    python benchmarks/gpu_rnn.py [--hidden 32 128 512] [--repeat 50]
"""

from __future__ import annotations

import argparse

import numpy as np

import tinygrad_rnn as tg

T, N = 35, 32


def reference(Zx, H0, W, dH):
    """float64 forward and backward from the NumPy backend (the semantics)."""
    ref = tg.backends.get("numpy")
    args = [a.astype(np.float64) for a in (Zx, H0, W)]
    H = ref.rnn_forward(*args, "tanh")
    return H, ref.rnn_backward(dH.astype(np.float64), H, args[1], args[2], "tanh")


def rel_err(got, want) -> float:
    got = np.asarray(got, dtype=np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def torch_cudnn(h: int, repeat: int) -> tuple[float, float]:
    """Median µs per call of cuDNN nn.RNN(h, h): forward, and forward + backward."""
    import torch
    from cupyx.profiler import benchmark

    torch.backends.cudnn.allow_tf32 = False
    rnn = torch.nn.RNN(h, h).cuda()
    x = torch.randn(T, N, h, device="cuda", requires_grad=True)
    h0 = torch.zeros(1, N, h, device="cuda")

    def forward():
        with torch.no_grad():
            rnn(x, h0)

    def both():
        out, _ = rnn(x, h0)
        out.sum().backward()

    times = []
    for fn in (forward, both):
        r = benchmark(fn, n_repeat=repeat, n_warmup=5)
        times.append(float(np.median(np.maximum(r.cpu_times, r.gpu_times[0]))) * 1e6)
    return times[0], times[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024])
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args()
    import cupy
    from cupyx.profiler import benchmark

    gpu = tg.backends.get("cupy")
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    print(f"# {props['name'].decode()}, CuPy {cupy.__version__}")
    print(
        "| h | strategy | fwd host µs | fwd GPU µs | bwd host µs | bwd GPU µs "
        "| fwd rel err | bwd rel err |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for h in args.hidden:
        rng = np.random.default_rng(h)
        Zx = rng.normal(0, 1.0, (T, N, h)).astype(np.float32)
        H0 = rng.uniform(-1, 1, (N, h)).astype(np.float32)
        W = rng.normal(0, 0.9 / np.sqrt(h), (h, h)).astype(np.float32)
        dH = rng.normal(size=(T, N, h)).astype(np.float32)
        H_ref, grads_ref = reference(Zx, H0, W, dH)
        dev = [cupy.asarray(a) for a in (Zx, H0, W, dH)]
        variants = [("loop", None, 8)] + [
            ("rows", split, unroll) for unroll in (1, 8) for split in (1, None)
        ]
        for strategy, split, unroll in variants:
            gpu.rnn_strategy, gpu.rnn_row_split, gpu.rnn_row_unroll = strategy, split, unroll
            ran = gpu.rnn_plan(N, h, np.float32)
            if strategy == "rows":
                strategy = f"rows, k in {gpu._row_split(h)} slices, unroll {unroll}"
            if not strategy.startswith(ran):
                print(f"| {h} | {strategy} | n/a (runs as {ran}) | | | | | |")
                continue
            H = gpu.rnn_forward(dev[0], dev[1], dev[2], "tanh")
            grads = gpu.rnn_backward(dev[3], H, dev[1], dev[2], "tanh")
            e_f = rel_err(cupy.asnumpy(H), H_ref)
            e_b = max(rel_err(cupy.asnumpy(g), r) for g, r in zip(grads, grads_ref, strict=True))
            f = benchmark(gpu.rnn_forward, (dev[0], dev[1], dev[2], "tanh"),
                          n_repeat=args.repeat, n_warmup=5)
            b = benchmark(gpu.rnn_backward, (dev[3], H, dev[1], dev[2], "tanh"),
                          n_repeat=args.repeat, n_warmup=5)
            cells = [np.median(t) for t in (f.cpu_times, f.gpu_times[0], b.cpu_times,
                                                 b.gpu_times[0])]
            print(
                f"| {h} | {strategy} | "
                + " | ".join(f"{c * 1e6:.0f}" for c in cells)
                + f" | {e_f:.1e} | {e_b:.1e} |",
                flush=True,
            )
        gpu.rnn_strategy = gpu.rnn_row_split = None
        gpu.rnn_row_unroll = 8
        # the default again, W_hh a fresh copy: does where W_hh lies change the forward?
        f = benchmark(gpu.rnn_forward, (dev[0], dev[1], dev[2].copy(), "tanh"),
                      n_repeat=args.repeat, n_warmup=5)
        print(f"| {h} | default, W_hh copied | {np.median(f.cpu_times) * 1e6:.0f} | "
              f"{np.median(f.gpu_times[0]) * 1e6:.0f} | | | | |", flush=True)
        if not args.no_torch:
            try:
                fwd, both = torch_cudnn(h, args.repeat)
                print(f"| {h} | PyTorch cuDNN nn.RNN | {fwd:.0f} (fwd) | | {both:.0f} (fwd+bwd) | "
                      "| | |", flush=True)
            except Exception as e:  # noqa: BLE001 - a reference row only
                print(f"| {h} | PyTorch cuDNN: {type(e).__name__}: {e} | | | | | | |")


if __name__ == "__main__":
    main()

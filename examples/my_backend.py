"""Write your own backend: subclass one, override a kernel, register it, check it.

A backend is an array namespace (``xp``) plus a table of kernels, each with a
plain-NumPy-API fallback in ``tinygrad_rnn.backends.base.Backend``. This one is
NumPy for everything except the fused softmax-cross-entropy forward, which it
computes with SciPy's ``logsumexp`` (SciPy is already a dependency of
tinygrad_rnn). It lives in this single file, no package needed:

    tg.backends.register("my_backend", MyBackend)     # then backend="my_backend"

An installed package would instead declare it in its ``pyproject.toml``, and
tinygrad_rnn finds it by name without any import in user code::

    [project.entry-points."tinygrad_rnn.backends"]
    my_backend = "my_package.backend:MyBackend"

Claims checked (exit status 1 if one fails): ``tg.gradcheck`` passes for the
cross-entropy on the new backend (float64 central differences); the character
LM's loss and every parameter's gradient equal the NumPy backend's; and the new
kernel really ran (a call counter), i.e. dispatch reached it.

    python examples/my_backend.py
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.special import logsumexp
from tinygrad_rnn.backends.numpy_backend import NumpyBackend

import tinygrad_rnn as tg
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.charlm.cli import experiment_parser
from tinygrad_rnn.charlm.model import RNNLM


class MyBackend(NumpyBackend):
    """NumPy arrays; softmax-cross-entropy's forward by ``scipy.special.logsumexp``."""

    # What tensors report (``t.backend``); the registry sets it to the name this class
    # is registered under, so the two cannot disagree.
    name = "my_backend"

    def __init__(self) -> None:
        self.calls = 0  # how often the override ran: proof that dispatch reached it

    def softmax_cross_entropy(self, logits, targets):
        """logits (N, C), int targets (N,) -> (loss (N,), probs (N, C)), as the base kernel.

        The backward (``softmax_cross_entropy_backward``) is inherited: it needs
        only the ``probs`` returned here.
        """
        self.calls += 1
        log_probs = logits - logsumexp(logits, axis=1, keepdims=True)  # stable for ±1000
        loss = -log_probs[np.arange(logits.shape[0]), targets]
        return loss, np.exp(log_probs)


def lm_loss_and_grads(
    backend: str, tokens: np.ndarray, V: int, h: int
) -> tuple[float, dict[str, np.ndarray]]:
    """Loss and parameter gradients of a float64 RNNLM on ``tokens`` (N, T+1)."""
    tg.manual_seed(0)  # the same initial parameters on every backend
    model = RNNLM(V, h, dtype="float64", backend=backend)
    logits, _ = model(tokens[:, :-1])
    loss = F.cross_entropy(logits, tokens[:, 1:].T.reshape(-1))
    loss.backward()
    return loss.item(), {name: p.grad.numpy() for name, p in model.named_parameters()}


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__doc__, backend=False)
    parser.add_argument("--vocab", type=int, default=10, help="vocabulary size V")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units h")
    args = parser.parse_args(argv)

    tg.backends.register("my_backend", MyBackend)
    backend = tg.backends.get("my_backend")
    print("backends now:", tg.backends.available())
    failures = []

    # 1. gradcheck: autograd's gradient through the new kernel against finite differences
    rng = np.random.default_rng(0)
    logits = tg.Tensor(
        rng.normal(size=(6, args.vocab)), dtype="float64", backend="my_backend", requires_grad=True
    )
    targets = tg.Tensor(rng.integers(0, args.vocab, size=6), backend="my_backend")
    try:
        tg.gradcheck(lambda z: F.cross_entropy(z, targets, reduction="none"), [logits])
        print("gradcheck of cross_entropy on my_backend: passed")
    except tg.GradcheckError as e:
        failures.append(f"gradcheck: {e}")

    # 2. parity: the whole char-LM step against the reference backend
    tokens = rng.integers(0, args.vocab, size=(4, 9))
    calls_before = backend.calls
    loss_mine, grads_mine = lm_loss_and_grads("my_backend", tokens, args.vocab, args.hidden)
    loss_ref, grads_ref = lm_loss_and_grads("numpy", tokens, args.vocab, args.hidden)
    print(f"RNNLM loss: my_backend {loss_mine:.12f}, numpy {loss_ref:.12f}")
    # float64, two evaluations of the same formula in a different order: ~1e-15 apart
    if not np.isclose(loss_mine, loss_ref, rtol=1e-12, atol=1e-12):
        failures.append(f"loss differs: {loss_mine!r} vs {loss_ref!r}")
    for name, g in grads_ref.items():
        err = float(np.max(np.abs(grads_mine[name] - g)))
        print(f"  grad {name:10s} {str(g.shape):10s} max |difference| {err:.1e}")
        if not np.allclose(grads_mine[name], g, rtol=1e-10, atol=1e-12):
            failures.append(f"gradient of {name} differs by {err:.2e}")
    if backend.calls == calls_before:
        failures.append("MyBackend.softmax_cross_entropy never ran")
    print(f"MyBackend.softmax_cross_entropy ran {backend.calls} times")

    for f in failures:
        print("CLAIM FAILED:", f)
    if failures:
        return 1
    print("claims hold: gradcheck passes, values and gradients match numpy, the kernel ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())

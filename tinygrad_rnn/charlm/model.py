"""The character-level RNN language model of D2L §8.5 (``RNNModelScratch``) / §8.6.

``tokens (N, T) → one-hot (T, N, V) → RNN → H (T, N, h) → O = H W_hq + b_q``, with
the output rows flattened to (T·N, V) as in D2L, so the loss is a plain
cross-entropy against ``Y.T.reshape(-1)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_rnn import Tensor, nn, no_grad
from tinygrad_rnn.checks import check_sizes
from tinygrad_rnn.nn import init

from .data import Vocab


class RNNLM(nn.Module):
    """``RNNLM(vocab_size, num_hiddens)``: D2L's character-level language model.

    Parameters: ``rnn.W_xh`` (V, h), ``rnn.W_hh`` (h, h), ``rnn.b_h`` (h,), and the
    output layer ``W_hq`` (h, V), ``b_q`` (V,), weights from N(0, 0.01²) as in D2L.
    The input is one-hot (the default), computed as a row lookup of ``W_xh``; with
    ``embed_size`` a learned embedding ``E`` (V, embed_size) comes first instead.
    """

    def __init__(self, vocab_size: int, num_hiddens: int, nonlinearity: str = "tanh",
                 embed_size: int | None = None, fused: bool = True, dtype: Any = None,
                 backend: str | None = None) -> None:
        super().__init__()
        check_sizes(vocab_size=vocab_size, num_hiddens=num_hiddens)
        dtype = np.dtype(dtype or np.float32)
        self.vocab_size, self.num_hiddens, self.embed_size = vocab_size, num_hiddens, embed_size
        if embed_size is not None:
            self.E = init.normal((vocab_size, embed_size), std=1.0, dtype=dtype, backend=backend)
        input_size = vocab_size if embed_size is None else embed_size
        self.rnn = nn.RNN(input_size, num_hiddens, nonlinearity, fused=fused, dtype=dtype,
                          backend=backend)
        self.W_hq = init.normal((num_hiddens, vocab_size), dtype=dtype, backend=backend)
        self.b_q = init.zeros((vocab_size,), dtype=dtype, backend=backend)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), for checkpoints."""
        return {"vocab_size": self.vocab_size, "num_hiddens": self.num_hiddens,
                "nonlinearity": self.rnn.nonlinearity, "embed_size": self.embed_size,
                "fused": self.rnn.fused, "dtype": str(self.W_hq.dtype)}

    def begin_state(self, batch_size: int) -> Tensor:
        """Zero hidden state (batch_size, h)."""
        return self.rnn.begin_state(batch_size)

    def forward(self, tokens: Any, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``tokens`` int (N, T) → ``(logits (T·N, V), H_T (N, h))``; rows ordered step-major."""
        if not isinstance(tokens, Tensor):
            tokens = np.asarray(tokens)  # kept on the host: its range is checked there
        if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
            raise ValueError(
                f"RNNLM expects integer token ids of shape (batch, num_steps), got "
                f"{tokens.dtype} {tokens.shape}")
        X = tokens.T  # (T, N): time-major, as the RNN layer wants
        if self.embed_size is not None:
            X = nn.functional.embedding(X, self.E)
        H, state = self.rnn(X, state)
        T, N = H.shape[:2]
        logits = H.reshape(T * N, self.num_hiddens) @ self.W_hq + self.b_q
        return logits, state

    def predict(self, prefix: str, num_preds: int, vocab: Vocab, temperature: float = 0.0,
                rng: np.random.Generator | int | None = None) -> str:
        """Continue ``prefix`` by ``num_preds`` characters (D2L's ``predict_ch8``), with a
        character-level ``vocab``.

        The prefix warms the state up; then each step feeds back its own output:
        the most likely token (``temperature = 0``, greedy) or a sample from
        ``softmax(logits / temperature)``. ``'<unk>'`` is never chosen: no character
        of the text is unknown, so it stands for nothing to print. Every character
        of ``prefix`` must be in ``vocab`` (see ``data.clean_text`` for the book's).
        """
        if isinstance(num_preds, bool) or not isinstance(num_preds, (int, np.integer)) \
                or num_preds < 0:
            raise ValueError(f"num_preds must be an integer >= 0, got {num_preds!r}")
        if not 0 <= temperature < np.inf:  # NaN too
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
        if not prefix:
            raise ValueError("predict needs a non-empty prefix to start from")
        if len(vocab) != self.vocab_size:
            raise ValueError(f"the vocabulary has {len(vocab)} tokens, the model "
                             f"{self.vocab_size}: they are not from the same run")
        check_prefix(prefix, vocab)
        rng = np.random.default_rng(rng)
        ids = [vocab[ch] for ch in prefix]
        with no_grad():
            state = self.begin_state(1)
            logits, state = self(np.array([ids]), state)  # warm-up on the whole prefix
            out = list(ids)
            for _ in range(num_preds):
                last = logits.numpy()[-1].astype(np.float64)
                last[vocab.unk] = -np.inf
                out.append(_choose(last, temperature, rng))
                logits, state = self(np.array([[out[-1]]]), state)
        return "".join(vocab.to_tokens(out))


def check_prefix(prefix: str, vocab: Vocab) -> None:
    """Refuse a prefix with characters ``vocab`` lacks: the model would read them as
    ``'<unk>'``, a token it never saw in training."""
    unknown = sorted({ch for ch in prefix if vocab[ch] == vocab.unk})
    if unknown:
        raise ValueError(f"the prefix has characters the vocabulary lacks: {''.join(unknown)!r}")


def _choose(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    if temperature == 0:
        return int(logits.argmax())
    # shift first: (logits - max) / T is 0 at the max and -inf, not NaN, for T ~ 1e-310
    with np.errstate(over="ignore"):
        z = (logits.astype(np.float64) - logits.max()) / temperature
    p = np.exp(z)
    return int(rng.choice(len(p), p=p / p.sum()))

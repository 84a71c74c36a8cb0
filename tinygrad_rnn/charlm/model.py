"""The character-level language model of D2L §8.5 (``RNNModelScratch``), §8.6 and §9
(``RNNModel``): an RNN, GRU or LSTM, deep or bidirectional, then a dense output layer.

``tokens (N, T) → one-hot (T, N, V) → recurrent layer → H (T, N, D·h) → O = H W_hq + b_q``,
with the output rows flattened to (T·N, V) as in D2L, so the loss is a plain
cross-entropy against ``Y.T.reshape(-1)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinygrad_rnn import Tensor, memory, nn, no_grad
from tinygrad_rnn.checks import check_sizes
from tinygrad_rnn.nn import init as _init

from .data import Vocab

#: The recurrent layers ``RNNLM(model=...)`` builds on (D2L §8.6, §9.1, §9.2).
MODELS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
#: How the parameters start: D2L's scratch models (weights N(0, 0.01²), zero biases) or
#: PyTorch's defaults (U(±1/√h) for the recurrent layer and the output layer).
INITS = ("d2l", "torch")
#: The hidden state of each model: a tensor (D·L, N, h), an LSTM's a tuple ``(H, C)``.
State = Any
#: Gate blocks G in each recurrent weight (V, G·h): one for the RNN, r z n, i f g o.
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
#: Arrays per parameter each optimizer of ``Trainer`` keeps (its SGD has no momentum).
OPTIMIZER_STATE = {"sgd": 0, "adam": 2}
#: What to change when a model does not fit, for the memory messages.
_SMALLER = "give a smaller num_hiddens (--hidden), vocabulary, num_layers, batch or num_steps"


def parameter_shapes(vocab_size: int, num_hiddens: int, *, model: str = "rnn",
                     num_layers: int = 1, bidirectional: bool = False,
                     embed_size: int | None = None, **_: Any) -> dict[str, tuple[int, ...]]:
    """The names and shapes of ``RNNLM(vocab_size, num_hiddens, ...)``'s parameters, in
    ``state_dict()`` order, computed without building it (so a checkpoint's arrays can be
    checked, and memory estimated, before anything is allocated). Takes a model config
    (:meth:`RNNLM.config`) as keywords; the settings that change no shape are ignored."""
    G, D = GATES[model], 2 if bidirectional else 1
    shapes: dict[str, tuple[int, ...]] = {}
    if embed_size is not None:
        shapes["E"] = (vocab_size, embed_size)
    shapes["W_hq"], shapes["b_q"] = (D * num_hiddens, vocab_size), (vocab_size,)
    for layer in range(num_layers):
        inputs = (vocab_size if embed_size is None else embed_size) if layer == 0 \
            else D * num_hiddens
        for suffix in (f"_l{layer}", f"_l{layer}_reverse")[:D]:
            shapes[f"rnn.W_ih{suffix}"] = (inputs, G * num_hiddens)
            shapes[f"rnn.W_hh{suffix}"] = (num_hiddens, G * num_hiddens)
            shapes[f"rnn.b_ih{suffix}"] = (G * num_hiddens,)
            shapes[f"rnn.b_hh{suffix}"] = (G * num_hiddens,)
    return shapes


def training_bytes(vocab_size: int, num_hiddens: int, *, batch_size: int, num_steps: int,
                   optimizer: str = "sgd", dtype: Any = "float32", model: str = "rnn",
                   num_layers: int = 1, bidirectional: bool = False,
                   embed_size: int | None = None, **_: Any) -> int:
    """A lower bound on the bytes training the model allocates: its parameters P, their
    gradients (P again), the optimizer's state (:data:`OPTIMIZER_STATE` × P), and one
    minibatch's activations kept for the backward: per layer and direction the gate
    pre-activations and the states, T·N·(G + 2)·h, and the logits with their softmax and
    gradient, 3·T·N·V (T = ``num_steps``, N = ``batch_size``)."""
    shapes = parameter_shapes(vocab_size, num_hiddens, model=model, num_layers=num_layers,
                              bidirectional=bidirectional, embed_size=embed_size)
    params = sum(math.prod(shape) for shape in shapes.values())
    D, G = 2 if bidirectional else 1, GATES[model]
    acts = batch_size * num_steps * (num_layers * D * (G + 2) * num_hiddens + 3 * vocab_size
                                     + (embed_size or 0))
    slots = 2 + OPTIMIZER_STATE.get(optimizer, 0)
    return (slots * params + acts) * np.dtype(dtype).itemsize


def check_training_memory(vocab_size: int, num_hiddens: int, **settings: Any) -> None:
    """Refuse (``tg.memory.OutOfMemoryError``) a run whose :func:`training_bytes` exceed
    the memory available, before anything of it is allocated."""
    memory.check_fits(training_bytes(vocab_size, num_hiddens, **settings),
                      f"training a {settings.get('model', 'rnn')} of {num_hiddens:,} hidden "
                      f"units on a vocabulary of {vocab_size:,} (parameters, gradients, "
                      "optimizer state and one minibatch)", _SMALLER)


class RNNLM(nn.Module):
    """``RNNLM(vocab_size, num_hiddens, *, model='rnn', num_layers=1, ...)``: D2L's
    character-level language model.

    ``model`` picks the recurrent layer, ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM`` (§8.6,
    §9.1, §9.2), with ``num_layers`` stacked (§9.3), ``bidirectional`` (§9.4) and
    ``dropout`` between the layers, as PyTorch's. Parameters: the layer's ``rnn.W_ih_l0``
    (V, G·h), ``rnn.W_hh_l0`` (h, G·h), ``rnn.b_ih_l0``, ``rnn.b_hh_l0`` (G·h,) (G gate
    blocks, 1 for the RNN, 3 for the GRU, 4 for the LSTM; more with ``_l1``... and
    ``_reverse``), and the output layer ``W_hq`` (D·h, V), ``b_q`` (V,), D = 2 if
    bidirectional else 1. ``init='d2l'`` draws the weights from N(0, 0.01²) with zero
    biases, as D2L's scratch models; ``'torch'`` keeps PyTorch's U(±1/√h) (the book's
    concise models). The input is one-hot (the default), computed as a row lookup of
    ``W_ih_l0``; with ``embed_size`` a learned embedding ``E`` (V, embed_size) comes first
    instead. The state is ``h_n`` (D·L, N, h), an LSTM's the tuple ``(h_n, c_n)``.
    """

    def __init__(self, vocab_size: int, num_hiddens: int, *, model: str = "rnn",
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 nonlinearity: str = "tanh", embed_size: int | None = None, fused: bool = True,
                 init: str = "d2l", dtype: Any = None, backend: str | None = None) -> None:
        super().__init__()
        check_sizes(vocab_size=vocab_size, num_hiddens=num_hiddens)
        if model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {init!r}")
        if model != "rnn" and nonlinearity != "tanh":
            raise ValueError(f"nonlinearity={nonlinearity!r} is for model 'rnn'; a {model.upper()} "
                             "has its own gates")
        if embed_size is not None:
            check_sizes(embed_size=embed_size)
        dtype = np.dtype(dtype or np.float32)
        if isinstance(num_layers, int) and num_layers > 0:  # else the layer refuses it
            # the parameters must fit (a lower bound: each is drawn in float64 first)
            shapes = parameter_shapes(vocab_size, num_hiddens, model=model,
                                      num_layers=num_layers, bidirectional=bool(bidirectional),
                                      embed_size=embed_size).values()
            memory.check_fits(sum(math.prod(s) for s in shapes) * dtype.itemsize,
                              f"RNNLM({vocab_size:,}, {num_hiddens:,})'s parameters", _SMALLER)
        self.vocab_size, self.num_hiddens, self.embed_size = vocab_size, num_hiddens, embed_size
        self.model, self.init = model, init
        if embed_size is not None:
            self.E = _init.normal((vocab_size, embed_size), std=1.0, dtype=dtype, backend=backend)
        input_size = vocab_size if embed_size is None else embed_size
        extra = {"nonlinearity": nonlinearity} if model == "rnn" else {}
        self.rnn = MODELS[model](input_size, num_hiddens, num_layers, bidirectional=bidirectional,
                                 dropout=dropout, fused=fused, dtype=dtype, backend=backend,
                                 **extra)
        width = self.rnn.num_directions * num_hiddens
        if init == "d2l":
            self.rnn.reset_parameters(std=0.01)
            self.W_hq = _init.normal((width, vocab_size), dtype=dtype, backend=backend)
            self.b_q = _init.zeros((vocab_size,), dtype=dtype, backend=backend)
        else:  # nn.Linear's: U(±1/√fan_in) for both
            k = 1 / math.sqrt(width)
            self.W_hq = _init.uniform((width, vocab_size), -k, k, dtype=dtype, backend=backend)
            self.b_q = _init.uniform((vocab_size,), -k, k, dtype=dtype, backend=backend)

    @property
    def bidirectional(self) -> bool:
        """Whether the recurrent layer reads each sequence both ways (D2L §9.4)."""
        return self.rnn.bidirectional

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able), for checkpoints."""
        rnn = self.rnn
        return {"vocab_size": self.vocab_size, "num_hiddens": self.num_hiddens,
                "model": self.model, "num_layers": rnn.num_layers,
                "bidirectional": rnn.bidirectional, "dropout": rnn.dropout,
                "nonlinearity": getattr(rnn, "nonlinearity", "tanh"),
                "embed_size": self.embed_size, "fused": rnn.fused, "init": self.init,
                "dtype": str(self.W_hq.dtype)}

    def begin_state(self, batch_size: int) -> State:
        """The zero state: (D·L, batch_size, h) zeros, an LSTM's a tuple of two."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 0:  # 0 is an empty batch, which runs
            raise ValueError(f"batch_size must be an integer >= 0, got {batch_size!r}")
        return self.rnn.begin_state(batch_size)

    def forward(self, tokens: Any, state: State = None) -> tuple[Tensor, State]:
        """``tokens`` int (N, T), ``state`` as :meth:`begin_state` gives it (None: zeros)
        → ``(logits (T·N, V), state)``; rows ordered step-major."""
        if not isinstance(tokens, Tensor):
            tokens = np.asarray(tokens)  # kept on the host: its range is checked there
        if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
            raise ValueError(
                f"RNNLM expects integer token ids of shape (batch, num_steps), got "
                f"{tokens.dtype} {tokens.shape}")
        X = tokens.T  # (T, N): time-major, as the recurrent layer wants
        if self.embed_size is not None:
            X = nn.functional.embedding(X, self.E)
        H, state = self.rnn(X, state)
        T, N, width = H.shape
        logits = H.reshape(T * N, width) @ self.W_hq + self.b_q
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
        training = self.training
        self.eval()  # no dropout while generating
        try:
            return self._generate(ids, num_preds, vocab, temperature, rng)
        finally:
            self.train(training)

    def _generate(self, ids: list[int], num_preds: int, vocab: Vocab, temperature: float,
                  rng: np.random.Generator) -> str:
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


def detach_state(state: State) -> State:
    """``state`` cut from its graph (truncated BPTT): a tensor, or a tuple of states (an
    LSTM's ``(H, C)``; a model of one's own may nest them)."""
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state.detach()


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

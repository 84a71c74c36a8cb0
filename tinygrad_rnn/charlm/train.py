"""Training the character-level LM as D2L's ``train_ch8`` (§8.5.6, and §9's runs), resumable.

Per minibatch: logits for all T·N positions, mean cross-entropy, backward,
clip the gradients to global norm θ, one optimizer step. With sequential
partitioning the hidden state (an LSTM's: both H and C) carries over between
minibatches, detached so back-propagation stops at the minibatch edge (truncated
BPTT), and starts from zero at each epoch; with random sampling every minibatch
starts from zero.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backends, optim
from tinygrad_rnn.nn.functional import cross_entropy
from tinygrad_rnn.optim import lr_scheduler

from . import checkpoint
from .cuda_graph import GraphedStep
from .data import SeqDataLoader, Vocab, find_corpus, load_corpus, sha1_of, time_machine_path
from .model import INITS, MODELS, RNNLM, State, check_training_memory, detach_state


@dataclass
class TrainConfig:
    """Everything that defines a run; defaults are D2L §8.5's. ``model``, ``num_layers``,
    ``bidirectional``, ``dropout`` and ``init`` choose the network as ``RNNLM``'s
    arguments of those names do (§9: ``model='gru'`` or ``'lstm'``, ``num_hiddens=256``;
    the deep LSTM of §9.3 also ``num_layers=2, lr=2``)."""

    num_hiddens: int = 512
    num_epochs: int = 500
    lr: float | None = None  # None: the optimizer's default (DEFAULT_LR)
    batch_size: int = 32
    num_steps: int = 35
    max_tokens: int = 10000
    use_random_iter: bool = False
    optimizer: str = "sgd"
    clip_theta: float = 1.0  # inf: no clipping
    seed: int | None = 0  # None: fresh entropy
    nonlinearity: str = "tanh"
    dtype: str = "float32"
    model: str = "rnn"
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    init: str = "d2l"
    #: the learning-rate schedule, stepped once per epoch (:data:`SCHEDULERS`); its
    #: settings, None where the scheduler's default (see :func:`make_scheduler`)
    scheduler: str = "none"
    step_size: int | None = None
    gamma: float | None = None
    warmup: int | None = None
    min_lr: float | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        if self.dtype is None:  # as RNNLM's dtype=None (np.dtype(None) is float64)
            self.dtype = "float32"
        for name in ("num_hiddens", "num_epochs", "batch_size", "num_steps", "max_tokens",
                     "seed", "num_layers"):
            value = getattr(self, name)
            if name == "seed" and value is None:  # fresh entropy: a run not to be repeated
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            setattr(self, name, int(value))  # a NumPy integer would not write to JSON
        for name in ("num_hiddens", "num_epochs", "batch_size", "num_steps", "num_layers"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        for name, top in (("lr", "a finite number > 0"), ("clip_theta", "a number > 0")):
            given = getattr(self, name)
            number = isinstance(given, (int, float, np.number)) and not isinstance(given, bool)
            value = float(given) if number else math.nan
            # NaN fails `> 0`; clip_theta = inf means "never clip" (exercise 3 runs so)
            if not (value > 0 and (value < math.inf or name == "clip_theta")):
                raise ValueError(f"{name} must be {top}, got {given!r}")
            setattr(self, name, value)
        for name in ("use_random_iter", "bidirectional"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
            setattr(self, name, bool(getattr(self, name)))
        for name, choices in (("model", MODELS), ("init", INITS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {list(choices)}, got "
                                 f"{getattr(self, name)!r}")
        if self.model != "rnn" and self.nonlinearity != "tanh":
            raise ValueError(f"nonlinearity {self.nonlinearity!r} is for model 'rnn'; a "
                             f"{self.model.upper()} has its own gates")
        number = isinstance(self.dropout, (int, float, np.number)) and not isinstance(
            self.dropout, bool)
        if not (number and 0 <= self.dropout < 1):  # NaN fails too
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        self.dropout = float(self.dropout)
        if self.dropout and self.num_layers == 1:
            raise ValueError(f"dropout {self.dropout} acts between recurrent layers (as in "
                             "PyTorch), so with num_layers = 1 it would do nothing; give "
                             "num_layers >= 2")
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind != "f":
            raise ValueError(f"dtype must be a float type (float32, float64), got {self.dtype!r}")
        self.dtype = dtype.name
        self._check_schedule()

    def _check_schedule(self) -> None:
        """The scheduler is one of SCHEDULERS, and each of its settings given is one it
        takes (a setting it would ignore is refused, not dropped silently)."""
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {list(SCHEDULERS)}, got "
                             f"{self.scheduler!r}")
        for name, ok, rule in (("step_size", lambda v: v > 0, "a positive integer"),
                               ("warmup", lambda v: v > 0, "a positive integer"),
                               ("patience", lambda v: v >= 0, "an integer >= 0"),
                               ("gamma", lambda v: 0 < v < math.inf, "a finite number > 0"),
                               ("min_lr", lambda v: 0 <= v < math.inf, "a finite number >= 0")):
            value = getattr(self, name)
            if value is None:
                continue
            whole = name in ("step_size", "warmup", "patience")
            kinds = (int, np.integer) if whole else (int, float, np.integer, np.floating)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds) or not ok(
                    value):
                raise ValueError(f"{name} must be {rule}, got {value!r}")
            if self.scheduler not in SCHEDULE_SETTINGS[name]:
                raise ValueError(f"{name} is a setting of scheduler "
                                 f"{' or '.join(SCHEDULE_SETTINGS[name])}, not of "
                                 f"{self.scheduler!r}")
            setattr(self, name, int(value) if whole else float(value))  # JSON-able


_LOG_FLOAT_MAX = math.log(sys.float_info.max)

OPTIMIZERS: dict[str, Callable[..., optim.Optimizer]] = {"sgd": optim.SGD, "adam": optim.Adam}
#: D2L's lr 1 is for SGD; Adam's steps are ~lr each, so 1 would wreck it. 0.01 reached
#: perplexity 2.8 in 60 epochs at h = 128 (0.001: 9.0, 0.03: 7.0).
DEFAULT_LR = {"sgd": 1.0, "adam": 0.01}

#: ``--scheduler``: the learning-rate schedules, each stepped once per epoch.
SCHEDULERS = {
    "none": "the lr stays",
    "step": "StepLR: lr × gamma (0.1) every step-size epochs (a quarter of the epochs)",
    "exponential": "ExponentialLR: lr × gamma (0.99) every epoch",
    "cosine": "CosineAnnealingLR: cosine from lr down to min-lr (0) over the epochs",
    "linear": "LinearLR: warm-up from lr/3 up to lr over warmup epochs (5)",
    "onecycle": "OneCycleLR: from lr/25 up to lr over warmup epochs (30%), then down to "
                "lr/25e4 at the last epoch",
    "plateau": "ReduceLROnPlateau: lr × gamma (0.1), at least min-lr (0), once the loss "
               "has not improved for patience epochs (10)",
}
#: The schedulers each scheduler setting is for.
SCHEDULE_SETTINGS = {"step_size": ("step",), "gamma": ("step", "exponential", "plateau"),
                     "warmup": ("linear", "onecycle"), "min_lr": ("cosine", "plateau"),
                     "patience": ("plateau",)}


def make_scheduler(config: TrainConfig, optimizer: optim.Optimizer
                   ) -> lr_scheduler.LRScheduler | None:
    """The scheduler ``config.scheduler`` names, for ``config.num_epochs`` epochs (one
    step per epoch), with its settings or their defaults (:data:`SCHEDULERS`); None for
    ``"none"``. OneCycleLR moves only the lr here (``cycle_momentum=False``), so plain
    SGD stays plain (and can still be replayed from a CUDA graph)."""
    kind, epochs = config.scheduler, config.num_epochs
    if kind == "step":
        return lr_scheduler.StepLR(optimizer, config.step_size or max(1, epochs // 4),
                                   0.1 if config.gamma is None else config.gamma)
    if kind == "exponential":
        return lr_scheduler.ExponentialLR(optimizer, 0.99 if config.gamma is None
                                          else config.gamma)
    if kind == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, epochs, config.min_lr or 0.0)
    if kind == "linear":
        return lr_scheduler.LinearLR(optimizer, total_iters=config.warmup or 5)
    if kind == "onecycle":
        warmup = 0.3 * epochs if config.warmup is None else config.warmup
        if warmup >= epochs:  # the fall needs an epoch (torch would divide by zero)
            raise ValueError(f"warmup {config.warmup} leaves no epoch of the {epochs} for "
                             "the onecycle schedule's fall; give fewer warmup epochs")
        return lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=epochs,
                                       pct_start=warmup / epochs, cycle_momentum=False)
    if kind == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.1 if config.gamma is None else config.gamma,
            patience=10 if config.patience is None else config.patience,
            min_lr=config.min_lr or 0.0)
    return None


def _jsonable(value: Any) -> Any:
    """A scheduler's state as JSON: tuples as lists, NumPy numbers as Python's."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class EpochStats:
    """One epoch's result: ``epoch`` (1-based), ``perplexity`` (exp of the mean cross-entropy
    per token), ``tokens_per_sec`` (target tokens per wall-clock second), ``seconds``
    (the epoch's wall-clock time), ``loss`` (the mean cross-entropy per token, in nats),
    ``grad_norm`` and ``grad_norm_max`` (the mean and the largest, over the epoch's steps,
    of the global L2 norm of the gradients before clipping: the mean shows the trend, the
    largest the spikes that clipping cuts), and ``lr`` (the learning rate the epoch ran
    at; a schedule changes it after the epoch). The last four are None in the history of
    a checkpoint written before they were recorded."""

    epoch: int
    perplexity: float
    tokens_per_sec: float
    seconds: float
    loss: float | None = None
    grad_norm: float | None = None
    grad_norm_max: float | None = None
    lr: float | None = None


class TrainingDiverged(RuntimeError):
    """A step's loss or gradient norm became NaN or infinite, or its loss so large that
    the perplexity overflows; the message names the epoch and step.
    ``last_checkpoint``: the checkpoint :meth:`Trainer.fit` last wrote for this run
    (or resumed it from), if any."""

    last_checkpoint: Path | None = None


def _on_host(backend: backends.Backend) -> bool:
    """Whether ``backend``'s arrays are in host memory (numpy, numba), where reading a
    value back costs nothing, unlike a GPU's (cupy), where it waits for the queued work."""
    return backend.xp is np


def _divergence(loss: float, grad_norm: float) -> str | None:
    """Why a step with this mean loss and gradient norm (before clipping) has diverged,
    or None if it has not: the one rule :meth:`Trainer.train_epoch` applies."""
    if not math.isfinite(loss):
        return f"the loss is {loss}"
    if loss >= _LOG_FLOAT_MAX:  # exp(loss) > the largest float: a perplexity of inf
        return f"the loss is {loss:.4g}, so large that its perplexity overflows"
    if not math.isfinite(grad_norm):  # the update it makes is NaN (or a jump to inf)
        return f"the gradient norm is {grad_norm}"
    return None


#: ``callback(stats, sample)`` after each epoch: its :class:`EpochStats`, and the
#: continuation of the prefix on the epochs :meth:`Trainer.fit` samples (else None).
EpochCallback = Callable[["EpochStats", "str | None"], None]


def _seeded(seed: int | None) -> tg.Generator:
    """A generator of its own for a run: seeded with ``seed``, or from entropy for None."""
    generator = tg.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


@dataclass
class Trainer:
    """A model, its data and optimizer, and how far training has got."""

    model: RNNLM
    loader: SeqDataLoader
    vocab: Vocab
    config: TrainConfig
    optimizer: optim.Optimizer
    epoch: int = 0
    history: list[EpochStats] = field(default_factory=list)
    #: Replay each step from a CUDA graph (backend ``cupy``, plain SGD): the same
    #: arithmetic, a fraction of the host time (:mod:`tinygrad_rnn.cuda_graph`). None:
    #: wherever it can (``GraphedStep.can_record``); it is then True or False.
    cuda_graph: bool | None = None
    graphed_step: GraphedStep | None = field(init=False, default=None, repr=False)
    #: The checkpoint this run was resumed from (:meth:`resume`), else None.
    resumed_from: Path | None = field(init=False, default=None, repr=False)
    #: The learning-rate schedule, stepped after each epoch (``ReduceLROnPlateau`` with
    #: the epoch's mean loss); :meth:`create` makes ``config.scheduler``'s. None: the lr
    #: stays.
    scheduler: lr_scheduler.LRScheduler | None = None
    #: The run's own random numbers (dropout masks; :meth:`create` initialises the model
    #: from it too), seeded from ``config.seed``: a run in a thread beside another gets
    #: what its seed gives alone.
    generator: tg.Generator | None = None
    #: ``(path, epoch)`` of the newest checkpoint holding this run: the last
    #: :meth:`save`, else the checkpoint it was resumed from; None before either.
    last_checkpoint: tuple[Path, int] | None = field(init=False, default=None, repr=False)
    #: Each step writes its gradient norm (before clipping) here, a 0-d float64 array
    #: where the parameters live: a replayed CUDA graph can only write to memory it
    #: recorded, so the step copies it in rather than returning it.
    _grad_norm: Any = field(init=False, default=None, repr=False)
    #: The text file :meth:`create` read, ``{"path": absolute path, "sha1": its SHA-1}``;
    #: saved in checkpoints, so that :meth:`resume` without ``data`` finds it again.
    data_file: dict[str, str] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if self.generator is None:
            self.generator = _seeded(self.config.seed)
        self._grad_norm = backends.get(self.model.backend).xp.zeros((), dtype=np.float64)
        self._set_cuda_graph(self.cuda_graph)

    def _set_cuda_graph(self, on: bool | None) -> None:
        """Replay the step from a graph (True), run it eagerly (False), or the first where
        it can be (None). The graph is built now, so True fails at once, with the reason."""
        if on is None:
            on = GraphedStep.can_record(self.optimizer, self.model)
        graphed = None
        if on:
            cfg = self.config
            graphed = GraphedStep(
                self._step, self.model, self.optimizer, (cfg.batch_size, cfg.num_steps),
                self.model.vocab_size,
                settings=lambda: (self.optimizer.lr, self.config.clip_theta))
        self.cuda_graph, self.graphed_step = bool(on), graphed

    @classmethod
    def create(cls, config: TrainConfig, data: str | None = None,
               backend: str | None = None, cuda_graph: bool | None = None) -> Trainer:
        """Load the corpus, build the model on ``backend`` and its optimizer; ``cuda_graph``
        as :attr:`Trainer.cuda_graph` (None: on where it can be)."""
        generator = _seeded(config.seed)
        path = time_machine_path(data)
        corpus, vocab = load_corpus(path, config.max_tokens)
        check_training_memory(len(vocab), config.num_hiddens, batch_size=config.batch_size,
                              num_steps=config.num_steps, optimizer=config.optimizer,
                              dtype=config.dtype, model=config.model,
                              num_layers=config.num_layers, bidirectional=config.bidirectional)
        try:
            loader = SeqDataLoader(corpus, config.batch_size, config.num_steps,
                                   config.use_random_iter, seed=config.seed)
        except ValueError as e:
            if 0 < config.max_tokens == len(corpus):  # the text may be longer than the cut
                raise ValueError(f"{e}, cut to max_tokens = {config.max_tokens} (--max-tokens "
                                 "0 takes the whole text)") from None
            raise
        with tg.random.using(generator):  # this run's numbers, not the process's
            model = RNNLM(len(vocab), config.num_hiddens, model=config.model,
                          num_layers=config.num_layers, bidirectional=config.bidirectional,
                          dropout=config.dropout, nonlinearity=config.nonlinearity,
                          init=config.init, dtype=config.dtype,
                          backend=backend or fastest_backend())
        opt = OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr)
        scheduler = make_scheduler(config, opt)
        trainer = cls(model, loader, vocab, config, opt, cuda_graph=cuda_graph,
                      scheduler=scheduler, generator=generator)
        trainer.data_file = {"path": str(path.resolve()), "sha1": sha1_of(path)}
        return trainer

    # ------------------------------------------------------------------ steps
    def train_step(self, X: np.ndarray, Y: np.ndarray, state: State
                   ) -> tuple[Any, State]:
        """One minibatch: ``X``, ``Y`` int (N, T). Returns (mean loss as a 0-d array, the
        state after it: ``h_n``, an LSTM's ``(h_n, c_n)``)."""
        # targets stay NumPy until cross_entropy has checked their range on the host
        loss, state = self._step(X, np.ascontiguousarray(Y.T).reshape(-1), state)
        return loss.data, state

    def _step(self, tokens: Any, targets: Any, state: State) -> tuple[Tensor, State]:
        """Forward, mean cross-entropy, backward, clip to norm θ, update; also on a graph.
        The gradient norm before clipping goes to ``self._grad_norm``."""
        logits, state = self.model(tokens, state)
        loss = cross_entropy(logits, targets)
        self.optimizer.zero_grad()
        loss.backward()
        # the clip computes the norm anyway, at θ = inf too: kept for the divergence check
        norm = optim.clip_grad_norm(self.optimizer.params, self.config.clip_theta)
        backends.get(self.model.backend).xp.copyto(self._grad_norm, norm.data)
        self.optimizer.step()
        return loss, state

    def train_epoch(self) -> EpochStats:
        """One pass over the data; perplexity = exp(mean cross-entropy over all tokens).

        Every step's loss and gradient norm are checked (:func:`_divergence`): a NaN or
        infinite one, or a loss whose perplexity overflows, raises
        :class:`TrainingDiverged` naming the step. On the host (numpy, numba) the check
        follows each step, so no step trains on from NaN. On a GPU reading a value back
        waits for the step to finish, which would cost the host time a CUDA graph saves:
        the values stay on the device until the epoch ends, are read back at once, and
        checked there (the step named is still the first that diverged; the checkpoint
        written after an epoch is never a diverged one either way).
        """
        self.epoch += 1
        self.model.train()  # dropout on (predict turns it off while it generates)
        start = time.perf_counter()
        backend = backends.get(self.model.backend)
        on_host = _on_host(backend)
        lr = self.optimizer.lr  # the epoch's: a schedule moves it after the epoch
        losses, norms, sizes, state = [], [], [], None
        # A run that overflows is reported below, by its step, as TrainingDiverged;
        # NumPy's overflow warnings from deep inside an op would only say less, earlier.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                tg.random.using(self.generator):  # dropout masks: this run's numbers
            for i, (X, Y) in enumerate(self.loader):
                fresh = i == 0 or self.config.use_random_iter
                if self.graphed_step is not None:  # it carries H_T over in its own buffer
                    losses.append(self.graphed_step(X, Y, fresh).copy())  # its buffer is reused
                else:
                    state = (self.model.begin_state(X.shape[0]) if fresh
                             else detach_state(state))
                    loss, state = self.train_step(X, Y, state)  # detached: truncated BPTT
                    losses.append(loss)
                norms.append(self._grad_norm.copy())  # the next step overwrites it
                sizes.append(Y.size)
                if on_host:
                    self._check_step(i, float(losses[-1]), float(norms[-1]))
        losses = backend.to_numpy(backend.xp.stack(losses)).astype(np.float64)
        norms = backend.to_numpy(backend.xp.stack(norms))
        if not on_host:  # the values are on the host only now: one read for the epoch
            for i, (loss, norm) in enumerate(zip(losses.tolist(), norms.tolist())):
                self._check_step(i, loss, norm)
        seconds = time.perf_counter() - start
        total_tokens = sum(sizes)
        mean_loss = float(losses @ np.asarray(sizes)) / total_tokens  # over all tokens
        # no step's loss reached log(max float) (checked), so neither does their mean
        stats = EpochStats(self.epoch, math.exp(mean_loss), total_tokens / seconds, seconds,
                           loss=mean_loss, grad_norm=float(norms.mean()),
                           grad_norm_max=float(norms.max()), lr=float(lr))
        self.history.append(stats)
        if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(mean_loss)  # the epoch's mean cross-entropy
        elif self.scheduler is not None:
            self.scheduler.step()
        return stats

    def _check_step(self, index: int, loss: float, grad_norm: float) -> None:
        """Raise :class:`TrainingDiverged` if step ``index`` (0-based) of this epoch diverged."""
        why = _divergence(loss, grad_norm)
        if why is not None:
            raise TrainingDiverged(
                f"training diverged at epoch {self.epoch}, step {index + 1}: {why} (try a "
                f"smaller --lr than {self.config.lr:g})")

    def fit(self, num_epochs: int | None = None, *, callback: EpochCallback | None = None,
            save_path: str | Path | None = None, save_every: int = 10,
            metrics: str | Path | None = None, prefix: str | None = "time traveller",
            sample_every: int = 10) -> list[EpochStats]:
        """Train until epoch ``num_epochs`` (default: the config's ``num_epochs``), as
        D2L's ``train_ch8``; returns the history of all epochs so far.

        After each epoch: its record goes to the ``metrics`` file (one JSON line; a
        resumed run first drops the records after its checkpoint, a fresh one those of
        an earlier run), then ``callback(stats, sample)`` runs, ``sample`` being
        ``prefix`` continued by 50 characters every ``sample_every`` epochs (else
        None); every ``save_every`` epochs and at the end a checkpoint is written to
        ``save_path``. A diverged step raises :class:`TrainingDiverged` before its epoch
        is recorded or saved, so the checkpoint keeps the last good epoch; the error's
        ``last_checkpoint`` names it (:attr:`last_checkpoint`), if there is one.
        """
        total = self.config.num_epochs if num_epochs is None else num_epochs
        save_path = None if save_path is None else Path(save_path)
        log = _open_metrics(None if metrics is None else Path(metrics), self.epoch)
        try:
            while self.epoch < total:
                try:
                    stats = self.train_epoch()
                except TrainingDiverged as e:
                    e.last_checkpoint = (None if self.last_checkpoint is None
                                         else self.last_checkpoint[0])
                    raise
                if log:  # every field of EpochStats, its docstring says what each is
                    log.write(json.dumps(dataclasses.asdict(stats)) + "\n")
                    log.flush()
                sampling = prefix is not None and stats.epoch % sample_every == 0
                if callback is not None:
                    callback(stats, self.predict(prefix) if sampling else None)
                if save_path is not None and stats.epoch % save_every == 0:
                    self.save(save_path)
        finally:
            if log:
                log.close()
        if save_path is not None:
            self.save(save_path)
        return self.history

    def predict(self, prefix: str, num_preds: int = 50, temperature: float = 0.0,
                rng: Any = None) -> str:
        """``prefix`` plus ``num_preds`` generated characters (greedy at temperature 0); see
        ``RNNLM.predict``."""
        return self.model.predict(prefix, num_preds, self.vocab, temperature, rng)

    # ------------------------------------------------------------ checkpoints
    def save(self, path: str | Path) -> Path:
        """Everything needed to resume: parameters, optimizer, vocab, config, loader state.
        A Ctrl-C while it writes takes effect once the checkpoint is written and
        :attr:`last_checkpoint` names it, so that what an interrupted run reports is on
        disk."""
        with _interrupt_after():
            return self._save(path)

    def _save(self, path: str | Path) -> Path:
        meta = {
            "model": self.model.config(),
            "train": dataclasses.asdict(self.config),
            "epoch": self.epoch,
            "history": [dataclasses.asdict(s) for s in self.history],
            "loader": self.loader.state_dict(),
            "backend": self.model.backend,
            "corpus_sha1": corpus_sha1(self.loader.corpus),
            "data_file": self.data_file,  # where the text was read: resume looks there first
            # the library's generator, which draws the dropout masks: a resumed run redraws
            # the masks the uninterrupted one would have drawn
            "generator": self.generator.numpy_generator.bit_generator.state,
        }
        if self.scheduler is not None:
            meta["scheduler"] = _jsonable(self.scheduler.state_dict())
        saved = checkpoint.save(path, self.model.state_dict(), self.vocab.idx_to_token, meta,
                                self.optimizer.state_dict())
        self.last_checkpoint = (saved, self.epoch)
        return saved

    @classmethod
    def resume(cls, path: str | Path, data: str | None = None, backend: str | None = None,
               num_epochs: int | None = None, cuda_graph: bool | None = None) -> Trainer:
        """Rebuild a run from a checkpoint (on any backend) to continue where it stopped."""
        ckpt = checkpoint.load(path)
        with checkpoint.reading(path):
            meta = ckpt["meta"]
            config = TrainConfig(**meta["train"])
            epoch = int(meta["epoch"])
            if num_epochs is not None:
                if num_epochs <= epoch:
                    raise ValueError(
                        f"checkpoint {path} is already at epoch {epoch}, so {num_epochs} "
                        "epochs leaves nothing to train; give a larger total")
                config.num_epochs = num_epochs
                end = meta.get("scheduler", {}).get("total_steps")  # onecycle's last epoch
                if end is not None and num_epochs > end:
                    raise ValueError(f"checkpoint {path} has a onecycle schedule that ends at "
                                     f"epoch {end}, so it cannot go on to {num_epochs}")
            if data is None and meta.get("data_file"):  # older checkpoints lack it
                data = str(find_corpus(meta["data_file"]["sha1"], meta["data_file"]["path"]))
            # eager until the optimizer's state is in: it decides whether a graph can run
            trainer = cls.create(config, data, backend or _stored_backend(path, meta),
                                 cuda_graph=False)
            here = corpus_sha1(trainer.loader.corpus)  # older checkpoints lack theirs
            if trainer.vocab.idx_to_token != ckpt["vocab"] or meta.get("corpus_sha1",
                                                                       here) != here:
                raise checkpoint.CheckpointError(
                    f"checkpoint {path} was trained on other text than the data given (its "
                    "characters or vocabulary differ); pass the same --data as that run")
            checkpoint.check_dtypes(path, ckpt["params"], config.dtype)
            with checkpoint.reading(path, ValueError):  # a shape or a value that does not fit
                trainer.model.load_state_dict(ckpt["params"])
                trainer.optimizer.load_state_dict(ckpt["optim"])
                if trainer.scheduler is not None and "scheduler" in meta:
                    trainer.scheduler.load_state_dict(meta["scheduler"])
            trainer.loader.load_state_dict(meta["loader"])
            if "generator" in meta:  # older checkpoints lack it (and had no dropout)
                trainer.generator.numpy_generator.bit_generator.state = meta["generator"]
            trainer.epoch = epoch
            trainer.history = [EpochStats(**s) for s in meta["history"]]
        trainer._set_cuda_graph(cuda_graph)
        trainer.resumed_from = Path(path)
        trainer.last_checkpoint = (trainer.resumed_from, epoch)
        return trainer


@contextlib.contextmanager
def _interrupt_after() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) back until the block has run, then raise KeyboardInterrupt.

    Only the main thread can take signals, and only Python's own handler is replaced
    (one a program installed is left alone); elsewhere the block runs as it is.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The epoch records of a ``--metrics`` file, one JSON object per line. A torn last
    line (a run killed, or a disk filled, midway through writing it: no newline at its
    end and not JSON) is ignored; any other line that is not an epoch record is a
    ValueError naming the file."""
    lines = Path(path).read_bytes().split(b"\n")
    last = lines.pop()  # what follows the last newline: b"" unless a line was torn
    records = [_metrics_record(path, line) for line in lines if line.strip()]
    try:
        if last.strip():
            records.append(_metrics_record(path, last))
    except ValueError:
        # torn: the run that wrote it died before its newline. Only the start of a record
        # as fit writes it, so another file that merely lacks a newline is still refused
        if not (last.startswith(_RECORD_START) or _RECORD_START.startswith(last)):
            raise
    return records


#: How each record fit writes starts (``json.dumps`` of a dict whose first key is epoch).
_RECORD_START = b'{"epoch": '


def _metrics_record(path: str | Path, line: bytes) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        text, record = "(binary data)", None
    else:
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            record = None
    if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
        raise ValueError(f"--metrics {path} holds something other than epoch records "
                         f"({text[:60]!r}); give another file")
    return record


def _open_metrics(path: Path | None, epochs_done: int) -> Any:
    """The --metrics file, open to append records after those of the first
    ``epochs_done`` epochs it holds: a fresh run replaces an earlier run's records, a
    resumed one drops those after its checkpoint (they are about to be redone) and a torn
    last line (:func:`read_metrics`). The kept records are rewritten atomically, so a
    crash now loses none; a file that holds anything but epoch records is refused, not
    overwritten."""
    if path is None:
        return None
    if not path.is_file():  # new, or a pipe such as /dev/stdout: only written to
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")
    kept = "".join(json.dumps(r) + "\n" for r in read_metrics(path) if r["epoch"] <= epochs_done)
    tg.serialization.atomic_write(path, lambda f: f.write(kept.encode("utf-8")),
                                  suffix=".jsonl")
    return open(path, "a", encoding="utf-8")


def corpus_sha1(corpus: Any) -> str:
    """SHA-1 of the token ids a run trains on: the text, its cleaning and max_tokens."""
    return hashlib.sha1(np.ascontiguousarray(corpus, dtype=np.int64).tobytes()).hexdigest()


def _stored_backend(path: str | Path, meta: dict[str, Any]) -> str:
    """The backend a checkpoint was trained on, if usable here; else an error naming
    the usable ones (the run would otherwise move silently, e.g. from a GPU to a CPU)."""
    name = meta.get("backend") or fastest_backend()
    try:
        backends.get(name)
    except backends.BackendUnavailable as e:
        raise backends.BackendUnavailable(
            f"checkpoint {path} was trained on backend {name!r}, which is not usable here "
            f"({e}); to continue it on another, pass --backend {fastest_backend()} "
            f"(available: {', '.join(backends.available())})") from None
    return name


def load_model(path: str | Path, backend: str | None = None) -> tuple[RNNLM, Vocab]:
    """The model and vocabulary stored in a checkpoint, for generation."""
    ckpt = checkpoint.load(path)
    with checkpoint.reading(path, ValueError):  # a setting this version refuses
        cfg = ckpt["meta"]["model"]
        model = RNNLM(cfg["vocab_size"], cfg["num_hiddens"], model=cfg["model"],
                      num_layers=cfg["num_layers"], bidirectional=cfg["bidirectional"],
                      dropout=cfg["dropout"], nonlinearity=cfg["nonlinearity"],
                      embed_size=cfg.get("embed_size"), fused=cfg.get("fused", True),
                      init=cfg["init"], dtype=cfg["dtype"], backend=backend or fastest_backend())
        checkpoint.check_dtypes(path, ckpt["params"], cfg["dtype"])
        with checkpoint.reading(path, ValueError):
            model.load_state_dict(ckpt["params"])
    return model, Vocab.from_tokens(ckpt["vocab"])


def fastest_backend() -> str:
    """The fastest backend usable here: cupy, then numba, then numpy."""
    usable = backends.available()
    return next(name for name in ("cupy", "numba", "numpy") if name in usable)

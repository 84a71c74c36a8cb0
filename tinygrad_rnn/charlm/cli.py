"""``tinygrad-rnn``: train D2L's character-level RNN, GRU or LSTM and generate text with it.

    tinygrad-rnn train                       # D2L §8.5: h=512, 500 epochs, lr 1, ...
    tinygrad-rnn train --model gru --hidden 256             # §9.1 (§9.2: --model lstm)
    tinygrad-rnn train --model lstm --layers 2 --hidden 256 --lr 2        # §9.3
    tinygrad-rnn train --scheduler cosine                  # lr from 1 down to 0 by cosine
    tinygrad-rnn generate model.npz --prefix 'time traveller' -n 50
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import tinygrad_rnn as tg
from tinygrad_rnn import backends, viz
from tinygrad_rnn.backends import host_memory

from .checkpoint import CheckpointError
from .data import DataError, clean_text
from .model import INITS, MODELS, check_prefix
from .train import (
    DEFAULT_LR,
    OPTIMIZERS,
    SCHEDULE_SETTINGS,
    SCHEDULERS,
    EpochStats,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    load_model,
)

D2L = TrainConfig()
#: ``train --save`` writes a checkpoint every this many epochs (and at the end).
SAVE_EVERY = 10
#: Flags that set up a run, and the TrainConfig field each sets; a resumed run keeps its own.
#: Their parser default is None, so "not given" and "given at D2L's value" differ.
RUN_FLAGS = {"hidden": "num_hiddens", "lr": "lr", "batch_size": "batch_size",
             "num_steps": "num_steps", "max_tokens": "max_tokens",
             "random_iter": "use_random_iter", "optimizer": "optimizer", "clip": "clip_theta",
             "seed": "seed", "model": "model", "layers": "num_layers",
             "bidirectional": "bidirectional", "dropout": "dropout", "init": "init",
             "scheduler": "scheduler", "step_size": "step_size", "gamma": "gamma",
             "warmup": "warmup", "min_lr": "min_lr", "patience": "patience"}
#: D2L's runs of chapters 8 and 9, as ``train`` flags (shown in ``train --help``): every
#: one 500 epochs of minibatches of 32 × 35 characters, SGD with clipping at θ = 1.
BOOK_RUNS = [
    ("§8.5 RNN", ""),
    ("§9.1 GRU", "--model gru --hidden 256"),
    ("§9.2 LSTM", "--model lstm --hidden 256"),
    ("§9.3 deep LSTM", "--model lstm --layers 2 --hidden 256 --lr 2"),
    ("§9.4 bidirectional LSTM", "--model lstm --layers 2 --bidirectional --hidden 256"),
]


def _number(kind: type, expected: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)``, refused unless ``ok(value)``, in one message
    that says what was ``expected``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_int = _number(int, "an integer", lambda v: True)
_positive_int = _number(int, "a positive integer", lambda v: v > 0)
_non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
# NaN fails both comparisons; inf is refused too (an lr of inf only ends in "diverged")
_positive_float = _number(float, "a finite number > 0", lambda v: 0 < v < math.inf)
_non_negative_float = _number(float, "a finite number >= 0", lambda v: 0 <= v < math.inf)
_positive_or_inf = _number(float, "a number > 0 (or inf)", lambda v: v > 0)
_probability = _number(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def _backend(text: str) -> str:
    if text not in backends.names():
        raise argparse.ArgumentTypeError(
            f"unknown backend {text!r}; available here: {', '.join(backends.available())}")
    return text


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None (a run flag's default is D2L's, named in its help)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


def experiment_parser(doc: str, *, data: bool = False, seed: bool = False, backend: bool = True,
                      backend_default: str | None = "numpy") -> argparse.ArgumentParser:
    """The parser an example script starts from: its docstring's first paragraph as the
    description, :class:`DefaultsHelp`, and the flags the examples share, each when asked
    for: ``--data`` (the book), ``--seed`` (default 0) and ``--backend`` (default
    ``backend_default``; None: the fastest available). The script adds its own flags."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=DefaultsHelp)
    if data:
        parser.add_argument("--data", default=None,
                            help="The Time Machine as text (default: $TINYGRAD_RNN_DATA, else "
                                 "downloaded and verified)")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="random seed")
    if backend:
        parser.add_argument("--backend", default=backend_default,
                            help="array backend" if backend_default is not None
                            else "array backend (default: the fastest available)")
    return parser


class _TrainHelp(DefaultsHelp, argparse.RawDescriptionHelpFormatter):
    """:class:`DefaultsHelp`, with the epilog (the book's runs) laid out as written."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``tinygrad-rnn`` argument parser, with its ``train`` and ``generate`` commands."""
    parser = _Parser(
        prog="tinygrad-rnn",
        description="Character-level RNN, GRU and LSTM language models on The Time Machine "
                    "(D2L §8.4–8.6, §9.1–9.4).")
    parser.add_argument("--version", action="version",
                        version=f"tinygrad-rnn {tg.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,generate}",
                                parser_class=_Parser)

    runs = "\n".join(f"  {name + ':':26} tinygrad-rnn train {flags}".rstrip()
                      for name, flags in BOOK_RUNS)
    t = sub.add_parser("train", help="train the model (defaults: D2L §8.5)",
                       description="Train D2L's character-level language model. Defaults are "
                                   "D2L §8.5's: an RNN of 512 hidden units.",
                       epilog=f"The book's runs (500 epochs each, lr 1 unless given):\n{runs}\n"
                              "A bidirectional model trains, but cannot generate text (§9.4).",
                       formatter_class=_TrainHelp)
    t.add_argument("--backend", type=_backend, default=None,
                   help="array backend: numpy, numba or cupy (default: the fastest available)")
    t.add_argument("--model", choices=list(MODELS),
                   help=f"the recurrent layer: rnn (§8.6), gru (§9.1), lstm (§9.2) "
                        f"({D2L.model})")
    t.add_argument("--layers", type=_positive_int,
                   help=f"recurrent layers stacked, a deep RNN (§9.3) ({D2L.num_layers})")
    t.add_argument("--bidirectional", action="store_true", default=None,
                   help="read each sequence both ways (§9.4); such a model cannot generate")
    t.add_argument("--dropout", type=_probability,
                   help=f"dropout between the recurrent layers, needs --layers 2 or more "
                        f"({D2L.dropout:g})")
    t.add_argument("--init", choices=list(INITS),
                   help=f"parameters from D2L's N(0, 0.01²) (d2l) or PyTorch's U(±1/√h) "
                        f"(torch) ({D2L.init})")
    t.add_argument("--hidden", type=_positive_int, help=f"hidden units h ({D2L.num_hiddens})")
    t.add_argument("--epochs", type=_positive_int,
                   help=f"total epochs ({D2L.num_epochs}; with --resume: the total to reach, "
                        "by default the run's own)")
    t.add_argument("--lr", type=_positive_float,
                   help="learning rate (" + ", ".join(
                       f"{name}: {lr:g}" for name, lr in DEFAULT_LR.items()) + ")")
    t.add_argument("--batch-size", type=_positive_int,
                   help=f"sequences per minibatch ({D2L.batch_size})")
    t.add_argument("--num-steps", type=_positive_int,
                   help=f"time steps per minibatch, the truncated BPTT length ({D2L.num_steps})")
    t.add_argument("--max-tokens", type=_int,
                   help=f"use the first N characters of the book, <= 0: all ({D2L.max_tokens})")
    t.add_argument("--random-iter", action="store_true", default=None,
                   help="random sampling instead of sequential partitioning")
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS),
                   help=f"optimizer ({D2L.optimizer})")
    schedules = "; ".join(f"{name}: {what}" for name, what in SCHEDULERS.items())
    t.add_argument("--scheduler", choices=list(SCHEDULERS),
                   help="learning-rate schedule, stepped once per epoch; a resumed run goes "
                        f"on with its own ({D2L.scheduler}): " + schedules.replace("%", "%%"))

    def setting(name: str) -> str:
        return "for --scheduler " + ", ".join(SCHEDULE_SETTINGS[name])

    t.add_argument("--step-size", type=_positive_int,
                   help=f"epochs between lr cuts ({setting('step_size')})")
    t.add_argument("--gamma", type=_positive_float,
                   help=f"lr factor per cut or epoch ({setting('gamma')})")
    t.add_argument("--warmup", type=_positive_int,
                   help=f"epochs of rising lr ({setting('warmup')})")
    t.add_argument("--min-lr", type=_non_negative_float,
                   help=f"lowest lr ({setting('min_lr')})")
    t.add_argument("--patience", type=_non_negative_int,
                   help=f"epochs without improvement before a cut ({setting('patience')})")
    t.add_argument("--clip", type=_positive_or_inf,
                   help=f"clip gradients to this global L2 norm θ, inf: never "
                        f"({D2L.clip_theta:g})")
    t.add_argument("--seed", type=_non_negative_int,
                   help=f"random seed, init and data ({D2L.seed})")
    t.add_argument("--data", type=Path, default=None,
                   help="UTF-8 text file to train on (default: $TINYGRAD_RNN_DATA, else The "
                        "Time Machine, downloaded and verified)")
    t.add_argument("--save", type=Path, default=None,
                   help=f"write a checkpoint (.npz) here every {SAVE_EVERY} epochs and at "
                        "the end")
    t.add_argument("--resume", type=Path, default=None,
                   help="continue the run stored in this checkpoint, with its settings "
                        "(--epochs sets the new total)")
    t.add_argument("--plot", type=Path, default=None,
                   help="save the perplexity curve to this PNG, the run's settings in its "
                        "title (needs matplotlib)")
    t.add_argument("--metrics", type=Path, default=None,
                   help="write one JSON record per epoch to this .jsonl file: epoch, "
                        "perplexity, loss (mean cross-entropy), grad_norm and grad_norm_max "
                        "(the mean and largest gradient norm of its steps, before clipping), "
                        "lr, tokens_per_sec, seconds (it replaces an earlier run's records; "
                        "with --resume, those after the checkpoint)")
    t.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="record the training step once as a CUDA graph and replay it "
                        "(backend cupy, optimizer sgd; default: on wherever it can be)")
    t.add_argument("--prefix", default=None,
                   help="continue this text every 10 epochs and at the end (default: D2L's "
                        "'time traveller' and 'traveller')")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="the progress bar on stderr (default: only where stderr is a "
                        "terminal, so a log gets no \\r-joined line)")

    g = sub.add_parser("generate", help="continue a prefix with a trained model",
                       formatter_class=DefaultsHelp)
    g.add_argument("checkpoint", type=Path, help="a checkpoint written by `train --save`")
    g.add_argument("--prefix", default="time traveller", help="text to continue")
    g.add_argument("-n", "--num-chars", type=_int, default=50, help="characters to generate")
    g.add_argument("--temperature", type=_non_negative_float, default=0.0,
                   help="0 = greedy (argmax); > 0 samples from softmax(logits / T)")
    g.add_argument("--seed", type=_non_negative_int, default=None,
                   help="random seed for sampling")
    g.add_argument("--backend", type=_backend, default=None,
                   help="array backend (default: the fastest available)")
    return parser


class _Progress:
    """A tqdm bar over epochs showing perplexity and tokens/s (plain lines without tqdm)."""

    def __init__(self, start: int, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=start, unit="epoch", file=sys.stderr,
                                dynamic_ncols=True)

    def update(self, stats: EpochStats) -> None:
        if self.bar is not None:
            self.bar.set_postfix(ppl=f"{stats.perplexity:.2f}",
                                 tok_s=f"{stats.tokens_per_sec:,.0f}")
            self.bar.update(1)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
            sys.stdout.flush()  # tqdm.write does not: a piped sample would wait for exit
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None  # closed once: a second close (Ctrl-C after it) draws nothing


def _note(line: str) -> None:
    """``line`` on stderr, clear of a progress bar (tqdm lifts the bar and redraws it)."""
    try:
        from tqdm import tqdm
    except ImportError:
        print(line, file=sys.stderr, flush=True)
    else:
        tqdm.write(line, file=sys.stderr)


@contextlib.contextmanager
def _compile_notice() -> Iterator[None]:
    """Say "compiling kernels" once, when Numba starts compiling a kernel in the block.

    Numba signals a compile ("numba:compile") only when its cache (beside the backend's
    source, or in $NUMBA_CACHE_DIR) holds no machine code for the kernel as it is now
    (source, dtype, CPU): on a first run, not on a warm one, which loads the code in
    milliseconds. Such a first run spends some 6-10 s compiling, silent otherwise.
    """
    try:
        from numba.core import event
    except ImportError:  # no Numba, nothing compiles
        yield
        return

    class Notice(event.Listener):
        said = False

        def on_start(self, _event: Any) -> None:
            if not self.said:  # one compile pulls in dozens of nested ones
                self.said = True
                _note("compiling kernels (first run only)…")

        def on_end(self, _event: Any) -> None:
            pass

    with event.install_listener("numba:compile", Notice()):
        yield


def _check_plotting() -> None:
    """--plot without matplotlib is a usage error (exit 2), found before any training."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'tinygrad_rnn[plot]'") from None


def run_title(trainer: Trainer) -> str:
    """The settings of a run in one line, for its plot's title."""
    c = trainer.config
    layers = f"{c.num_layers} layer{'s' if c.num_layers > 1 else ''}"
    model = ("bidirectional " if c.bidirectional else "") + c.model.upper()
    return (f"{model}, h={c.num_hiddens}, {layers}, "
            f"{c.optimizer} lr {c.lr:g}, batch {c.batch_size}, {c.num_steps} steps, "
            f"{trainer.model.backend}")


def _check_output_files(args: argparse.Namespace) -> None:
    """Refuse output paths that could never be written, before any training is done.

    A missing folder is fine (it is made when the file is written); the nearest folder
    that exists must be a writable folder, not a file.
    """
    for flag, path in (("--save", args.save), ("--plot", args.plot), ("--metrics", args.metrics)):
        if path is None:
            continue
        if path.is_dir():
            raise ValueError(f"{flag} {path} is a directory; give a file name inside it")
        if flag != "--metrics" and path.exists() and not path.is_file():
            # --save and --plot replace the file (atomically): never a device or a FIFO.
            # --metrics appends records to a stream, which may be /dev/stdout.
            raise ValueError(f"{flag} {path} is not a regular file (a device, a FIFO or a "
                             "socket); a save would replace it: give the path of a file")
        folder = path.absolute().parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise ValueError(f"{flag} {path} cannot be written: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {path} cannot be written: no permission to write in "
                             f"{folder}")


def _check_resumed_settings(args: argparse.Namespace, kept: TrainConfig) -> None:
    """A run flag given with --resume must agree with the resumed run: never ignored."""
    for flag, name in RUN_FLAGS.items():
        given, stored = getattr(args, flag), getattr(kept, name)
        if given is not None and given != stored:
            raise ValueError(
                f"--{flag.replace('_', '-')} {given} conflicts with the checkpoint's {name} = "
                f"{stored}: a resumed run keeps its settings (drop the flag)")


def train(args: argparse.Namespace) -> int:
    """``tinygrad-rnn train``: train or resume, save, plot, print samples; 0, or 1 if diverged."""
    _check_output_files(args)
    if args.plot is not None:
        _check_plotting()
    # a training process of its own: freed step-sized blocks stay mapped (host_memory says
    # why; TINYGRAD_RNN_KEEP_FREED_MEMORY=0 opts out). A library user opts in alone.
    host_memory.keep_freed_memory()
    data = str(args.data) if args.data is not None else None
    if args.resume is not None:
        trainer = Trainer.resume(args.resume, data, args.backend, num_epochs=args.epochs,
                                 cuda_graph=args.cuda_graph)
        _check_resumed_settings(args, trainer.config)
    else:
        given = {name: getattr(args, flag) for flag, name in RUN_FLAGS.items()}
        if args.epochs is not None:
            given["num_epochs"] = args.epochs
        config = TrainConfig(**{k: v for k, v in given.items() if v is not None})
        trainer = Trainer.create(config, data, args.backend, args.cuda_graph)
    prefixes = _sample_prefixes(args.prefix, trainer)
    _warn_if_bidirectional("train", trainer.model)
    total = trainer.config.num_epochs
    bar = sys.stderr.isatty() if args.progress is None else args.progress
    progress = _Progress(trainer.epoch, total, bar and not args.quiet)
    if args.resume is not None and args.save is None:
        print(f"train: without --save, this run's progress is not saved (--save {args.resume} "
              "would update the checkpoint)", file=sys.stderr)

    def show(stats: EpochStats, sample: str | None) -> None:
        progress.update(stats)
        if sample is not None:
            progress.write(f"epoch {stats.epoch}: {sample}")

    try:
        trainer.fit(callback=show, save_path=args.save, save_every=SAVE_EVERY,
                    metrics=args.metrics, prefix=prefixes[0])
    except TrainingDiverged as e:
        progress.close()
        kept = f"; the last good checkpoint is {e.last_checkpoint}" if e.last_checkpoint else ""
        print(f"tinygrad-rnn: error: {e}{kept}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.close()  # the bar ends on its own line, and is not drawn again
        print(_interrupted(trainer, args), file=sys.stderr)
        return 130
    progress.close()
    if args.plot:
        viz.save_perplexity_plot(trainer.history, args.plot, run_title(trainer))
    last = trainer.history[-1] if trainer.history else None
    if last is not None:
        print(f"perplexity {last.perplexity:.1f}, {last.tokens_per_sec:.1f} tokens/sec on "
              f"{trainer.model.backend}")
    for prefix in prefixes:
        print(trainer.predict(prefix))
    return 0


def _interrupted(trainer: Trainer, args: argparse.Namespace) -> str:
    """The line for Ctrl-C during training: the checkpoint left and how to go on from it."""
    now = f"tinygrad-rnn: interrupted at epoch {trainer.epoch}"
    if trainer.last_checkpoint is None:
        if args.save is None:
            return (f"{now}; nothing was saved (--save FILE writes a checkpoint every "
                    f"{SAVE_EVERY} epochs, to --resume from)")
        return (f"{now}, before the first checkpoint (one every {SAVE_EVERY} epochs): "
                "nothing was saved")
    path, epoch = trainer.last_checkpoint
    again = ["tinygrad-rnn", "train", "--resume", str(path)]
    for flag in ("save", "metrics", "plot", "data"):  # the files this run read and wrote
        if getattr(args, flag) is not None:
            again += [f"--{flag}", str(getattr(args, flag))]
    return (f"{now}; checkpoint of epoch {epoch} in {path}; continue with: "
            f"{shlex.join(again)}")


def _warn_if_bidirectional(command: str, model: Any) -> None:
    """D2L §9.4: a bidirectional model's samples are meaningless; say so, once."""
    if model.bidirectional:
        print(f"{command}: warning: a bidirectional model reads each sequence from both ends, "
              "so it cannot predict the next character from the past alone (D2L §9.4): it "
              "trains, but the text it generates is meaningless", file=sys.stderr)


def _clean_prefix(command: str, prefix: str) -> str:
    """``prefix`` as the model reads it, with a note when cleaning changed it."""
    cleaned = clean_text(prefix)  # the model saw only the cleaned text
    if cleaned != prefix:
        print(f"{command}: the prefix reads as {cleaned!r} (lower-case, non-letters as a space, "
              "as the text was cleaned)", file=sys.stderr)
    return cleaned


def _sample_prefixes(given: str | None, trainer: Trainer) -> list[str]:
    """The prefixes whose continuations ``train`` prints: ``--prefix``, else D2L's two,
    else (a text without their letters) the text's own first ten characters."""
    vocab = trainer.vocab
    if given is not None:
        if not given:
            raise ValueError("--prefix is empty: give the text the samples should continue")
        prefix = _clean_prefix("train", given)
        check_prefix(prefix, vocab)  # before training, not at its first sample
        return [prefix]
    if all(vocab[ch] != vocab.unk for ch in "time traveller"):
        return ["time traveller", "traveller"]
    prefix = "".join(vocab.to_tokens(trainer.loader.corpus[:10].tolist()))
    print(f"train: this text lacks letters of 'time traveller'; samples continue {prefix!r} "
          "(set --prefix)", file=sys.stderr)
    return [prefix]


def generate(args: argparse.Namespace) -> int:
    """``tinygrad-rnn generate``: print ``-n`` characters after ``--prefix`` from a checkpoint."""
    model, vocab = load_model(args.checkpoint, args.backend)
    if args.num_chars < 0:
        raise ValueError(f"-n must be >= 0, got {args.num_chars}")
    _warn_if_bidirectional("generate", model)
    prefix = _clean_prefix("generate", args.prefix)
    print(model.predict(prefix, args.num_chars, vocab, args.temperature, args.seed))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); its exit code (2: bad input)."""
    args = build_parser().parse_args(argv)
    try:
        with _compile_notice():
            code = train(args) if args.command == "train" else generate(args)
        sys.stdout.flush()  # here, where a closed pipe is handled, not at interpreter exit
        return code
    except (DataError, CheckpointError, backends.BackendError, ValueError) as e:
        print(f"tinygrad-rnn: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `tinygrad-rnn train | head -1`: the reader is gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        return 1
    except MemoryError as e:  # refused before allocating (tg.memory), or a failed allocation
        why = str(e) if isinstance(e, tg.memory.OutOfMemoryError) else (
            f"out of memory{': ' + str(e) if str(e) else ''} (try a smaller --hidden, "
            "--batch-size or --num-steps)")
        print(f"tinygrad-rnn: error: {why}", file=sys.stderr)
        return 1
    except OSError as e:  # a file that cannot be written (permissions, a full disk)
        print(f"tinygrad-rnn: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before training (loading, compiling) or after it
        print("tinygrad-rnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The command line: a tiny training run, generation, and one-line errors; flag parsing,
resume, metrics and checkpoints, progress output, exit codes."""

from __future__ import annotations

import errno
import io
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.charlm import checkpoint
from tinygrad_rnn.charlm.cli import build_parser, main
from tinygrad_rnn.charlm.train import DEFAULT_LR, Trainer, TrainingDiverged, load_model

SIZES = ["--hidden", "16", "--batch-size", "4", "--num-steps", "8", "--max-tokens", "600"]
TINY = [*SIZES, "--quiet", "--backend", "numpy"]


def train(corpus: str, *extra: str) -> int:
    return main(["train", "--data", corpus, *TINY, *extra])


def stop_at_epoch(monkeypatch, epoch: int, error: BaseException, seen: list | None = None):
    """Make Trainer.train_epoch raise ``error`` when asked for epoch ``epoch``; before
    each epoch, call ``seen.append(trainer)`` if given."""
    real = Trainer.train_epoch

    def train_epoch(self):
        if seen is not None:
            seen.append(self.epoch)
        if self.epoch + 1 == epoch:
            raise error
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)


def test_train_save_metrics_and_generate(book, tmp_path, capsys):
    ckpt, metrics = tmp_path / "m.npz", tmp_path / "m.jsonl"
    code = main(["train", "--epochs", "12", "--data", book, "--save", str(ckpt),
                 "--metrics", str(metrics), *TINY])
    out = capsys.readouterr().out
    assert code == 0
    assert "epoch 10: time traveller" in out
    assert "tokens/sec on numpy" in out.splitlines()[-3]
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, 13))
    assert all(r["perplexity"] > 1 and r["tokens_per_sec"] > 0 and r["seconds"] > 0
               for r in records)
    assert all(r["loss"] == pytest.approx(math.log(r["perplexity"]), rel=1e-12)
               and 0 < r["grad_norm"] <= r["grad_norm_max"] and r["lr"] == 1.0
               for r in records)
    assert checkpoint.load(ckpt)["meta"]["history"] == records  # the same, kept to resume
    assert ckpt.is_file()

    assert main(["generate", str(ckpt), "--prefix", "the", "-n", "15"]) == 0
    text = capsys.readouterr().out.strip()
    assert text.startswith("the") and len(text) == 18


def test_generate_reads_the_prefix_as_the_book_was_cleaned(tmp_path, capsys):
    """Upper case and punctuation map onto the model's alphabet, with a note; a letter
    the training text never had is an error that names it, not a run of <unk>."""
    data, ckpt = tmp_path / "abc.txt", tmp_path / "m.npz"
    data.write_text("The cab? A bad cab!\n" * 60)  # vocabulary: a b c d e h t and space
    assert main(["train", "--epochs", "1", "--data", str(data), "--save", str(ckpt),
                 *TINY]) == 0
    capsys.readouterr()
    assert main(["generate", str(ckpt), "--prefix", "The CAB!", "-n", "4"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("the cab ") and len(out.strip("\n")) == len("the cab ") + 4
    assert "the prefix reads as 'the cab '" in err
    assert main(["generate", str(ckpt), "--prefix", "a taxi", "-n", "4"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "vocabulary lacks: 'ix'" in err


def test_train_samples_a_prefix_the_text_can_spell(tmp_path, capsys):
    """On a text without the letters of 'time traveller', the samples continue the text's
    own start (with a note), never a run of '<unk>'; an explicit --prefix the text cannot
    spell is refused before any training."""
    data, metrics = tmp_path / "abc.txt", tmp_path / "m.jsonl"
    data.write_text("The cab? A bad cab!\n" * 60)  # vocabulary: a b c d e h t and space
    assert main(["train", "--epochs", "1", "--data", str(data), *TINY]) == 0
    out, err = capsys.readouterr()
    assert "samples continue 'the cab a ' (set --prefix)" in err
    assert "<unk>" not in out and out.splitlines()[-1].startswith("the cab a ")
    assert main(["train", "--epochs", "1", "--data", str(data), "--prefix", "Bad", *TINY]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1].startswith("bad") and "reads as 'bad'" in err
    assert main(["train", "--epochs", "1", "--data", str(data), "--prefix", "taxi",
                 "--metrics", str(metrics), *TINY]) == 2
    assert "vocabulary lacks: 'ix'" in capsys.readouterr().err
    assert not metrics.exists()  # refused before the first epoch


def test_a_directory_is_not_a_checkpoint(tmp_path, capsys):
    assert main(["generate", str(tmp_path)]) == 2
    assert f"checkpoint {tmp_path} is not a file" in capsys.readouterr().err


def test_generate_help_shows_only_real_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "(default: 50)" in out


def test_resume_reaches_the_requested_total(book, tmp_path, capsys):
    ckpt, metrics = tmp_path / "m.npz", tmp_path / "m.jsonl"
    assert main(["train", "--epochs", "2", "--data", book, "--save", str(ckpt), *TINY]) == 0
    assert main(["train", "--epochs", "4", "--data", book, "--resume", str(ckpt),
                 "--save", str(ckpt), "--metrics", str(metrics), "--quiet"]) == 0
    epochs = [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]
    assert epochs == [3, 4]


def test_metrics_hold_one_record_per_epoch_of_this_run(corpus, tmp_path, capsys):
    """A fresh run replaces an old file's records; a resumed run keeps those up to its
    checkpoint and drops the later ones, which it is about to redo."""
    ckpt, metrics = tmp_path / "m.npz", tmp_path / "m.jsonl"
    metrics.write_text('{"epoch": 7, "perplexity": 1.0}\n')  # another run's
    run = ["train", "--data", corpus, "--metrics", str(metrics), *TINY]
    assert main([*run, "--epochs", "3", "--save", str(ckpt)]) == 0

    def epochs():
        return [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()]

    assert epochs() == [1, 2, 3]
    assert main([*run, "--epochs", "5"]) == 0  # trained on past the checkpoint, unsaved
    assert epochs() == [1, 2, 3, 4, 5]
    capsys.readouterr()
    resume = ["train", "--data", corpus, "--resume", str(ckpt), "--metrics", str(metrics),
              "--quiet"]
    assert main([*resume, "--epochs", "4"]) == 0
    assert epochs() == [1, 2, 3, 4]
    err = capsys.readouterr().err
    assert f"without --save, this run's progress is not saved (--save {ckpt}" in err
    metrics.write_text("not json\n")
    assert main([*resume, "--epochs", "4"]) == 2
    assert "holds something other than epoch records ('not json')" in capsys.readouterr().err


def test_resume_refuses_a_flag_that_contradicts_the_checkpoint(corpus, tmp_path, capsys):
    ckpt = tmp_path / "m.npz"
    assert main(["train", "--epochs", "1", "--data", corpus, "--save", str(ckpt), *TINY]) == 0
    resume = ["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "2", "--quiet"]
    assert main([*resume, "--hidden", "99"]) == 2
    assert "--hidden 99 conflicts with the checkpoint's num_hiddens = 16" in capsys.readouterr().err
    assert main([*resume, "--lr", "0.5"]) == 2
    assert "--lr 0.5 conflicts with the checkpoint's lr = 1.0" in capsys.readouterr().err
    assert main([*resume, "--hidden", "16", "--batch-size", "4"]) == 0  # agreeing is fine
    # a flag given at D2L's own default still differs from this run's (hidden 512 vs 16)
    assert main([*resume, "--epochs", "3", "--hidden", "512"]) == 2
    assert "--hidden 512 conflicts with the checkpoint's num_hiddens = 16" in \
        capsys.readouterr().err


def test_resume_keeps_the_runs_own_total_and_refuses_one_already_reached(corpus, tmp_path,
                                                                          capsys):
    ckpt, metrics = tmp_path / "m.npz", tmp_path / "m.jsonl"
    assert main(["train", "--epochs", "3", "--data", corpus, "--save", str(ckpt), *TINY]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "3",
                 "--quiet"]) == 2
    assert "already at epoch 3, so 3 epochs leaves nothing to train" in capsys.readouterr().err
    # a run stopped early (here: its checkpoint rewound to epoch 1) goes on to its own 3
    meta = checkpoint.load(ckpt)
    meta["meta"]["epoch"], meta["meta"]["history"] = 1, meta["meta"]["history"][:1]
    checkpoint.save(ckpt, meta["params"], meta["vocab"], meta["meta"], meta["optim"])
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--metrics", str(metrics),
                 "--quiet"]) == 0
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [2, 3]


def test_resume_on_other_text_is_refused(corpus, tmp_path, capsys):
    ckpt, other = tmp_path / "m.npz", tmp_path / "other.txt"
    assert main(["train", "--epochs", "1", "--data", corpus, "--save", str(ckpt), *TINY]) == 0
    text = Path(corpus).read_text()
    other.write_text(text[len(text) // 3:] + text[: len(text) // 3])  # same letters, moved
    assert main(["train", "--resume", str(ckpt), "--data", str(other), "--epochs", "2",
                 "--quiet"]) == 2
    assert "trained on other text than the data given" in capsys.readouterr().err


def test_adam_gets_its_own_default_learning_rate(corpus, tmp_path, capsys):
    ckpt = tmp_path / "m.npz"
    assert main(["train", "--epochs", "1", "--data", corpus, "--optimizer", "adam",
                 "--save", str(ckpt), *TINY]) == 0
    assert checkpoint.load(ckpt)["meta"]["train"]["lr"] == DEFAULT_LR["adam"] < 1


def test_lr_1e6_without_clipping_is_reported_as_diverged(corpus, tmp_path):
    """Issue #21: `train --lr 1e6 --clip inf` ended with 'perplexity inf' and exit 0 (the
    loss finite, its exp overflowing). Now: exit 1, one line naming epoch and step."""
    metrics = tmp_path / "m.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "tinygrad_rnn", "train", "--lr", "1e6", "--clip", "inf",
         "--epochs", "3", "--data", corpus, "--metrics", str(metrics), *TINY],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("tinygrad-rnn: error: training diverged at epoch 1, step ")
    assert line.endswith("(try a smaller --lr than 1e+06)")
    assert "perplexity" not in done.stdout and metrics.read_text() == ""  # nothing recorded


def test_a_real_divergence_after_epoch_10_keeps_its_checkpoint(corpus, tmp_path, monkeypatch,
                                                               capsys):
    """catches: the checkpoint overwritten by the diverged model. The divergence is real
    (a NaN gradient in epoch 11, caught by the trainer's own check), not a raised error."""
    ckpt = tmp_path / "m.npz"
    real = Trainer.train_epoch

    def train_epoch(self):
        if self.epoch == 10:
            self.model.W_hq.register_hook(lambda grad: grad * math.nan)
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    assert train(corpus, "--epochs", "20", "--save", str(ckpt), "--clip", "inf") == 1
    err = capsys.readouterr().err
    assert "training diverged at epoch 11, step 1: the gradient norm is nan" in err
    assert err.rstrip().endswith(f"the last good checkpoint is {ckpt}")
    stored = checkpoint.load(ckpt)
    assert stored["meta"]["epoch"] == 10
    assert all(np.isfinite(v).all() for v in stored["params"].values())


@pytest.mark.filterwarnings("error::RuntimeWarning")  # reported as diverged, not as warnings
def test_divergence_names_a_checkpoint_only_if_this_run_wrote_it(corpus, tmp_path, capsys):
    ckpt = tmp_path / "m.npz"
    ckpt.write_bytes(b"an older file, from some other run")
    assert main(["train", "--epochs", "3", "--lr", "1e300", "--data", corpus,
                 "--save", str(ckpt), *TINY]) == 1
    err = capsys.readouterr().err
    assert "training diverged at epoch 1" in err and "last good checkpoint" not in err


def test_a_closed_stdout_ends_quietly(corpus, tmp_path):
    """`tinygrad-rnn train | head -1`: once the reader has gone, no 'Broken pipe' error."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tinygrad_rnn", "train", "--epochs", "1", "--data", corpus,
             *TINY], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""


@pytest.mark.parametrize("argv,message", [
    (["train", "--hidden", "-5"], "--hidden: expected a positive integer, got -5"),
    (["train", "--epochs", "zero"], "--epochs: expected a positive integer, got 'zero'"),
    (["train", "--lr", "-1"], "--lr: expected a finite number > 0, got -1.0"),
    (["train", "--lr", "inf"], "--lr: expected a finite number > 0, got inf"),
    (["train", "--clip", "nan"], "--clip: expected a number > 0 (or inf), got nan"),
    (["generate", "x.npz", "--temperature", "inf"], "expected a finite number >= 0, got inf"),
    (["train", "--backend", "tpu"], "unknown backend 'tpu'"),
    (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["generate", "x.npz", "--temperature", "-1"], "expected a finite number >= 0"),
    (["train", "--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
    (["train", "--model", "cnn"], "--model: invalid choice: 'cnn'"),
    (["train", "--layers", "0"], "--layers: expected a positive integer, got 0"),
    (["train", "--dropout", "1"], "--dropout: expected a number in [0, 1), got 1.0"),
    (["train", "--init", "he"], "--init: invalid choice: 'he'"),
    (["generate", "x.npz", "--seed", "-5"], "--seed: expected an integer >= 0, got -5"),
    ([], "required: {train,generate}"),
])
def test_bad_flags_give_one_clear_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_files_give_one_clear_line(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope.txt"), *TINY]) == 2
    assert main(["generate", str(tmp_path / "nope.npz")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "nope.txt" in lines[0] and "nope.npz" in lines[1]


@pytest.mark.parametrize("flag", ["--save", "--plot", "--metrics"])
def test_an_output_path_that_is_a_directory_fails_before_training(flag, corpus, tmp_path,
                                                                   capsys):
    assert main(["train", "--epochs", "1", "--data", corpus, flag, str(tmp_path), *TINY]) == 2
    captured = capsys.readouterr()
    assert f"{flag} {tmp_path} is a directory" in captured.err
    assert "Traceback" not in captured.err and "epoch" not in captured.out


@pytest.mark.parametrize("flag", ["--save", "--plot", "--metrics"])
def test_an_output_path_that_cannot_be_written_fails_before_training(flag, corpus, tmp_path,
                                                                     capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    path = blocker / "sub" / "out"
    assert main(["train", "--epochs", "1", "--data", corpus, flag, str(path), *TINY]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{flag} {path} cannot be written: {blocker} is a file" in err
    assert "perplexity" not in captured.out  # refused before any training


def test_output_files_go_into_folders_made_for_them(corpus, tmp_path, capsys):
    metrics, ckpt = tmp_path / "runs" / "m.jsonl", tmp_path / "ckpts" / "a" / "m.npz"
    assert main(["train", "--epochs", "1", "--data", corpus, "--metrics", str(metrics),
                 "--save", str(ckpt), *TINY]) == 0
    assert json.loads(metrics.read_text())["epoch"] == 1
    assert ckpt.is_file()
    mask = os.umask(0)
    os.umask(mask)
    assert ckpt.stat().st_mode & 0o777 == 0o666 & ~mask  # as open() makes it, not 0600


def test_plot_without_matplotlib_is_a_usage_error_in_one_line(corpus, tmp_path):
    """catches: exit 1 (a runtime failure) where every other usage error exits 2; catches:
    the check made after training, not before. matplotlib is made unimportable in the
    process that runs the CLI."""
    png = tmp_path / "p.png"
    cli = ("import sys; sys.modules['matplotlib'] = None; "  # `import matplotlib` fails
           "from tinygrad_rnn.charlm.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", cli, "train", "--epochs", "1", "--data",
                           corpus, "--plot", str(png), *TINY],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == ("tinygrad-rnn: error: --plot needs matplotlib: pip install "
                           "'tinygrad_rnn[plot]'\n")
    assert done.stdout == "" and not png.exists()  # refused before any training


def test_python_dash_m_and_help():
    done = subprocess.run([sys.executable, "-m", "tinygrad_rnn", "train", "--help"],
                          capture_output=True, text=True, check=True)
    for flag in ("--backend", "--hidden", "--epochs", "--lr", "--batch-size", "--num-steps",
                 "--max-tokens", "--random-iter", "--data", "--save", "--resume", "--plot",
                 "--seed", "--optimizer", "--metrics", "--model", "--layers", "--bidirectional",
                 "--dropout", "--init"):
        assert flag in done.stdout
    assert "hidden units h (512)" in done.stdout
    # the book's §9 runs, as flags
    assert "tinygrad-rnn train --model gru --hidden 256" in done.stdout
    assert "tinygrad-rnn train --model lstm --layers 2 --hidden 256 --lr 2" in done.stdout


def test_plot_writes_a_png_of_the_perplexity_curve(book, tmp_path, capsys, monkeypatch):
    """The PNG is written (atomically), from the run's history, titled with its settings."""
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the dev extra has it)")
    real, seen = tg.viz.save_perplexity_plot, {}

    def recording(history, path, title=None):
        seen.update(epochs=[s.epoch for s in history], title=title)
        return real(history, path, title)

    monkeypatch.setattr(tg.viz, "save_perplexity_plot", recording)
    png = tmp_path / "ppl.png"
    assert main(["train", "--epochs", "3", "--data", book, "--plot", str(png), "--lr", "0.5",
                 "--model", "gru", "--layers", "2", *TINY]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ppl.png"]  # written atomically
    assert seen["epochs"] == [1, 2, 3]
    assert seen["title"] == "GRU, h=16, 2 layers, sgd lr 0.5, batch 4, 8 steps, numpy"


def test_metrics_refuse_a_file_of_something_else_even_on_a_fresh_run(corpus, tmp_path,
                                                                      capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("important notes\n")
    assert main(["train", "--epochs", "1", "--data", corpus, "--metrics", str(notes),
                 *TINY]) == 2
    assert "holds something other than epoch records ('important notes')" in \
        capsys.readouterr().err
    assert notes.read_text() == "important notes\n"
    notes.write_bytes(b"\x9f\x00binary")
    assert main(["train", "--epochs", "1", "--data", corpus, "--metrics", str(notes),
                 *TINY]) == 2
    assert "('(binary data)')" in capsys.readouterr().err
    records = tmp_path / "m.jsonl"
    records.write_text('{"epoch": 1}\n\n')  # a blank line is no record, and no error
    assert main(["train", "--epochs", "1", "--data", corpus, "--metrics", str(records),
                 *TINY]) == 0
    assert [json.loads(line)["epoch"] for line in records.read_text().splitlines()] == [1]


def test_an_empty_prefix_is_refused_before_training(corpus, tmp_path, capsys):
    metrics = tmp_path / "m.jsonl"
    assert main(["train", "--epochs", "1", "--data", corpus, "--prefix", "",
                 "--metrics", str(metrics), *TINY]) == 2
    assert "--prefix is empty" in capsys.readouterr().err and not metrics.exists()


def test_clip_inf_means_no_clipping_and_resumes(corpus, tmp_path, capsys):
    ckpt = tmp_path / "m.npz"
    assert main(["train", "--epochs", "1", "--data", corpus, "--clip", "inf",
                 "--save", str(ckpt), *TINY]) == 0
    assert main(["train", "--epochs", "2", "--data", corpus, "--resume", str(ckpt),
                 "--quiet"]) == 0


# ======================================================================= parsing
def test_boundary_values_of_the_numeric_flags_are_accepted():
    """catches: --seed 0 refused; catches: --temperature 0 refused."""
    parser = build_parser()
    assert parser.parse_args(["train", "--seed", "0"]).seed == 0  # D2L's own seed
    assert parser.parse_args(["train", "--max-tokens", "0"]).max_tokens == 0
    g = parser.parse_args(["generate", "m.npz", "--temperature", "0", "-n", "0", "--seed", "0"])
    assert (g.temperature, g.num_chars, g.seed) == (0.0, 0, 0)


@pytest.mark.parametrize("flag,expected", [
    ("--hidden", "a positive integer"), ("--epochs", "a positive integer"),
    ("--batch-size", "a positive integer"), ("--num-steps", "a positive integer"),
    ("--lr", "a finite number > 0"), ("--clip", "a number > 0 (or inf)")])
def test_zero_is_refused_where_a_positive_value_is_needed(flag, expected, capsys):
    """catches: a flag's check that lets 0 through, to be refused later by TrainConfig,
    in other words and without naming the flag."""
    with pytest.raises(SystemExit) as exc:
        main(["train", flag, "0"])
    assert exc.value.code == 2
    assert f"{flag}: expected {expected}, got 0" in capsys.readouterr().err


def test_generate_help_shows_a_zero_default(capsys):
    """catches: help hides falsy defaults such as --temperature's 0.0."""
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "(default: 0.0)" in " ".join(capsys.readouterr().out.split())


def test_every_run_flag_reaches_the_run(corpus, tmp_path):
    """catches: --seed dropped from RUN_FLAGS: ignored; catches: --clip ignored."""
    ckpt = tmp_path / "m.npz"
    assert main(["train", "--data", corpus, "--epochs", "1", "--quiet", "--backend", "numpy",
                 "--hidden", "12", "--lr", "0.5", "--batch-size", "3", "--num-steps", "7",
                 "--max-tokens", "500", "--random-iter", "--optimizer", "adam",
                 "--clip", "2.5", "--seed", "7", "--save", str(ckpt)]) == 0
    stored = checkpoint.load(ckpt)["meta"]["train"]
    assert stored == {**stored, "num_hiddens": 12, "lr": 0.5, "batch_size": 3, "num_steps": 7,
                      "max_tokens": 500, "use_random_iter": True, "optimizer": "adam",
                      "clip_theta": 2.5, "seed": 7, "num_epochs": 1}


def test_resume_refuses_every_run_flag_that_contradicts_the_checkpoint(corpus, tmp_path,
                                                                      capsys):
    """catches: a contradicting --seed silently ignored on resume; the existing test covers
    only --hidden and --lr."""
    ckpt = tmp_path / "m.npz"
    assert train(corpus, "--epochs", "1", "--save", str(ckpt)) == 0
    capsys.readouterr()
    resume = ["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "2", "--quiet"]
    for flag, value, field in [("--seed", "5", "seed"), ("--clip", "3", "clip_theta"),
                               ("--optimizer", "adam", "optimizer"),
                               ("--max-tokens", "500", "max_tokens"),
                               ("--num-steps", "9", "num_steps"),
                               ("--batch-size", "3", "batch_size"),
                               ("--random-iter", None, "use_random_iter"),
                               ("--model", "gru", "model"), ("--layers", "2", "num_layers"),
                               ("--bidirectional", None, "bidirectional"),
                               ("--dropout", "0.1", "dropout"), ("--init", "torch", "init")]:
        argv = [*resume, flag] + ([value] if value is not None else [])
        assert main(argv) == 2, flag
        err = capsys.readouterr().err
        assert f"conflicts with the checkpoint's {field} = " in err and flag in err, err


def test_resuming_a_random_iter_run_needs_no_flag(corpus, tmp_path, capsys):
    """catches: --random-iter defaulting to False: a resumed random-sampling run then
    'conflicts' with the flag nobody gave."""
    ckpt = tmp_path / "m.npz"
    assert train(corpus, "--epochs", "1", "--random-iter", "--save", str(ckpt)) == 0
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "2",
                 "--save", str(ckpt), "--quiet"]) == 0, capsys.readouterr().err
    meta = checkpoint.load(ckpt)["meta"]
    assert meta["epoch"] == 2 and meta["train"]["use_random_iter"] is True


def test_resume_does_not_drop_cuda_graph(corpus, tmp_path, capsys):
    """catches: --cuda-graph silently ignored with --resume."""
    ckpt = tmp_path / "m.npz"
    assert train(corpus, "--epochs", "1", "--save", str(ckpt)) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "2",
                 "--backend", "numpy", "--cuda-graph", "--quiet"]) == 2
    assert "needs backend 'cupy'" in capsys.readouterr().err


# =================================================================== metrics, saving
def test_metrics_are_appended_across_a_resume(corpus, tmp_path):
    """catches: the metrics file opened with "w": a resumed run erases the first part."""
    ckpt, metrics = tmp_path / "m.npz", tmp_path / "m.jsonl"
    assert train(corpus, "--epochs", "2", "--save", str(ckpt), "--metrics", str(metrics)) == 0
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "3",
                 "--metrics", str(metrics), "--quiet"]) == 0
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2, 3]


def test_a_metrics_record_whose_epoch_is_not_an_integer_is_refused(corpus, tmp_path, capsys):
    """catches: any record with an "epoch" key taken: comparing "1" <= 0 then ends the run
    in a TypeError traceback."""
    metrics = tmp_path / "m.jsonl"
    metrics.write_text('{"epoch": "1"}\n')
    assert train(corpus, "--epochs", "1", "--metrics", str(metrics)) == 2
    assert "holds something other than epoch records" in capsys.readouterr().err
    assert metrics.read_text() == '{"epoch": "1"}\n'


def test_each_metrics_record_is_on_disk_before_the_next_epoch(corpus, tmp_path, monkeypatch):
    """catches: no flush per record: `tail -f` sees nothing until the run ends."""
    metrics = tmp_path / "m.jsonl"
    lines_seen = []
    real = Trainer.train_epoch

    def train_epoch(self):
        lines_seen.append(len(metrics.read_text().splitlines()) if metrics.exists() else 0)
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    assert train(corpus, "--epochs", "3", "--metrics", str(metrics)) == 0
    assert lines_seen == [0, 1, 2]


def test_the_checkpoint_of_epoch_10_survives_a_later_divergence(corpus, tmp_path, monkeypatch,
                                                                 capsys):
    """catches: no checkpoint every 10 epochs; catches: that checkpoint not named when the run
    later diverges."""
    ckpt = tmp_path / "m.npz"
    stop_at_epoch(monkeypatch, 11, TrainingDiverged("training diverged at epoch 11, step 1"))
    assert train(corpus, "--epochs", "20", "--save", str(ckpt)) == 1
    err = capsys.readouterr().err
    assert f"the last good checkpoint is {ckpt}" in err
    assert checkpoint.load(ckpt)["meta"]["epoch"] == 10


def test_divergence_right_after_resume_names_the_resumed_checkpoint(corpus, tmp_path,
                                                                    monkeypatch, capsys):
    """catches: the checkpoint resumed from, and saved to, never named as the last good one."""
    ckpt = tmp_path / "m.npz"
    assert train(corpus, "--epochs", "1", "--save", str(ckpt)) == 0
    capsys.readouterr()
    stop_at_epoch(monkeypatch, 2, TrainingDiverged("training diverged at epoch 2, step 1"))
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "3",
                 "--save", str(ckpt), "--quiet"]) == 1
    assert f"the last good checkpoint is {ckpt}" in capsys.readouterr().err


# ================================================================= progress, summary
class FakeBar:
    """Stands in for tqdm.tqdm: records what the CLI asks of its progress bar."""

    made: list[FakeBar] = []

    def __init__(self, total=None, initial=0, **kwargs):
        self.total, self.initial, self.n, self.postfix = total, initial, initial, None
        FakeBar.made.append(self)

    def set_postfix(self, **kwargs):
        self.postfix = kwargs

    def update(self, n=1):
        self.n += n

    def write(self, line):
        print(line)

    def close(self):
        pass


def test_the_progress_bar_counts_from_the_resumed_epoch(corpus, tmp_path, monkeypatch,
                                                        capsys):
    """catches: the bar starts at 0 on a resumed run; catches: the bar is never advanced."""
    pytest.importorskip("tqdm")
    ckpt = tmp_path / "m.npz"
    assert train(corpus, "--epochs", "2", "--save", str(ckpt)) == 0
    FakeBar.made = []
    monkeypatch.setattr("tqdm.tqdm", FakeBar)
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "5",
                 "--progress"]) == 0
    (bar,) = FakeBar.made
    assert (bar.initial, bar.total, bar.n) == (2, 5, 5)
    assert set(bar.postfix) == {"ppl", "tok_s"}


class FlushRecorder(io.StringIO):
    """A stdout that remembers what had been flushed."""

    flushed = ""

    def flush(self):
        self.flushed = self.getvalue()


@pytest.mark.parametrize("tqdm", [False, True], ids=["plain-lines", "tqdm-bar"])
def test_progress_lines_are_flushed_when_written(corpus, monkeypatch, tqdm):
    """A piped log shows each epoch-10 sample before epoch 11 starts, with and without
    tqdm (tqdm.write does not flush stdout; neither would a plain print)."""
    if tqdm:
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setitem(sys.modules, "tqdm", None)  # `from tqdm import tqdm` fails
    out = FlushRecorder()
    flushed_before = []
    real = Trainer.train_epoch

    def train_epoch(self):
        flushed_before.append(out.flushed)
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["train", "--data", corpus, *SIZES, "--backend", "numpy", "--epochs", "11"]) == 0
    assert "epoch 10: time traveller" in flushed_before[10]


def test_the_summary_reports_the_last_epoch_and_the_backend_used(corpus, tmp_path, monkeypatch,
                                                                 capsys):
    """catches: the summary prints the first epoch's perplexity; catches: it names the --backend
    argument, None when not given, instead of the backend the model is on."""
    monkeypatch.setattr("tinygrad_rnn.charlm.train.fastest_backend", lambda: "numpy")
    metrics = tmp_path / "m.jsonl"
    assert main(["train", "--data", corpus, *SIZES, "--quiet", "--epochs", "4",
                 "--metrics", str(metrics)]) == 0
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert f"{records[0]['perplexity']:.1f}" != f"{records[-1]['perplexity']:.1f}"
    (summary,) = [line for line in capsys.readouterr().out.splitlines()
                  if line.startswith("perplexity ")]
    assert summary.startswith(f"perplexity {records[-1]['perplexity']:.1f}, ")
    assert summary.endswith("tokens/sec on numpy")


# =========================================================================== generate
@pytest.fixture
def trained(corpus, tmp_path, capsys) -> Path:
    ckpt = tmp_path / "m.npz"
    assert train(corpus, "--epochs", "2", "--save", str(ckpt)) == 0
    capsys.readouterr()
    return ckpt


def test_generate_is_greedy_by_default(trained, capsys):
    """catches: --temperature defaulting to 1: sampling instead of D2L's argmax."""
    assert main(["generate", str(trained), "--prefix", "the", "-n", "40",
                 "--backend", "numpy"]) == 0
    model, vocab = load_model(trained, "numpy")
    assert capsys.readouterr().out.strip("\n") == model.predict("the", 40, vocab)


def test_generate_zero_characters_prints_the_prefix(trained, capsys):
    """catches: -n 0 refused."""
    assert main(["generate", str(trained), "--prefix", "the", "-n", "0"]) == 0
    assert capsys.readouterr().out == "the\n"


def test_generate_seed_makes_sampling_reproducible(trained, capsys):
    """catches: --seed not passed on to sampling."""
    argv = ["generate", str(trained), "--prefix", "the", "-n", "60", "--temperature", "1",
            "--seed", "3", "--backend", "numpy"]
    assert main(argv) == 0 and main(argv) == 0
    first, second = capsys.readouterr().out.splitlines()
    model, vocab = load_model(trained, "numpy")
    assert first == second == model.predict("the", 60, vocab, 1.0, 3)


# ===================================================================== exit codes
def _closed_pipe_run(corpus, *extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a user has it
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "tinygrad_rnn", "train", "--epochs", "1", "--data", corpus,
             *TINY, *extra], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
            env=env)
    finally:
        os.close(write_end)


def test_a_closed_buffered_stdout_ends_quietly(corpus):
    """catches: no dup2 of /dev/null over stdout: what stays buffered fails again at exit, as
    'Exception ignored ... BrokenPipeError'. tests/test_cli.py's version cannot see this
    where PYTHONUNBUFFERED=1 is set (as here): every print then fails at once, nothing is
    left buffered. A prefix longer than the 8 KiB buffer makes the failure come inside
    main(), after the summary line was buffered."""
    done = _closed_pipe_run(corpus, "--prefix", "the time " * 1000)
    assert (done.returncode, done.stderr) == (1, "")


def test_a_closed_buffered_stdout_ends_quietly_for_short_output(corpus):
    done = _closed_pipe_run(corpus)
    assert (done.returncode, done.stderr) == (1, "")


def test_metrics_can_go_to_stdout(corpus):
    done = subprocess.run(
        [sys.executable, "-m", "tinygrad_rnn", "train", "--epochs", "1", "--data", corpus,
         *TINY, "--metrics", "/dev/stdout"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["epoch"] == 1


def test_a_write_that_fails_is_exit_1_with_one_line(corpus, monkeypatch, capsys):
    """catches: OSError exits 2, the code for bad input; catches: OSError handled as a broken pipe:
    silent. A full disk is simulated."""
    stop_at_epoch(monkeypatch, 2, OSError(errno.ENOSPC, "No space left on device"))
    assert train(corpus, "--epochs", "3") == 1
    err = capsys.readouterr().err.strip()
    assert err == "tinygrad-rnn: error: [Errno 28] No space left on device"


def test_ctrl_c_exits_130(corpus, monkeypatch, capsys):
    """catches: KeyboardInterrupt exits 1, not 128 + SIGINT; catches: a run without --save
    not told that nothing was kept."""
    stop_at_epoch(monkeypatch, 2, KeyboardInterrupt())
    assert train(corpus, "--epochs", "3") == 130
    assert capsys.readouterr().err == (
        "tinygrad-rnn: interrupted at epoch 1; nothing was saved (--save FILE writes a "
        "checkpoint every 10 epochs, to --resume from)\n")
    assert train(corpus, "--epochs", "3", "--save", "never.npz") == 130
    assert "interrupted at epoch 1, before the first checkpoint" in capsys.readouterr().err


def test_ctrl_c_names_the_checkpoint_and_the_command_that_resumes_it(corpus, tmp_path):
    """SIGINT to a real run once its first checkpoint exists: exit 130, the bar closed
    on its own line before the message (which is the last thing written: no redraw), the
    epoch named the one on disk, and the command given resumes it."""
    ckpt = tmp_path / "m.npz"
    run = subprocess.Popen(
        [sys.executable, "-m", "tinygrad_rnn", "train", "--data", corpus, *SIZES,
         "--backend", "numpy", "--epochs", "100000", "--save", str(ckpt), "--progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # bytes: "\r" kept as it is
    try:
        deadline = time.monotonic() + 60
        while not ckpt.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ckpt.exists(), "no checkpoint within 60 s"
        run.send_signal(signal.SIGINT)
        err = run.communicate(timeout=60)[1].decode()
    finally:
        run.kill()
    assert run.returncode == 130, err
    assert "Traceback" not in err
    bar, message = err.removesuffix("\n").rsplit("\n", 1)
    assert "\r" not in message and "epoch/s" in bar.rsplit("\r", 1)[-1]  # the bar's last state
    epoch = checkpoint.load(ckpt)["meta"]["epoch"]
    command = f"tinygrad-rnn train --resume {ckpt} --save {ckpt} --data {corpus}"
    assert message.startswith("tinygrad-rnn: interrupted at epoch ")
    assert message.endswith(f"; checkpoint of epoch {epoch} in {ckpt}; continue with: {command}")
    assert epoch % 10 == 0 and int(message.split()[4].rstrip(";")) > epoch
    argv = shlex.split(command)[1:]
    assert main([*argv, "--epochs", str(epoch + 1), "--quiet"]) == 0
    assert checkpoint.load(ckpt)["meta"]["epoch"] == epoch + 1


def test_a_ctrl_c_during_a_save_waits_for_the_checkpoint(corpus, tmp_path, monkeypatch,
                                                         capsys):
    """catches: SIGINT inside the save leaving the run to report an older checkpoint than
    the one on disk (or none): the save finishes first, then the run stops."""
    ckpt = tmp_path / "m.npz"
    real = checkpoint.save

    def save_hit_by_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the checkpoint is written
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", save_hit_by_ctrl_c)
    assert train(corpus, "--epochs", "30", "--save", str(ckpt)) == 130
    assert checkpoint.load(ckpt)["meta"]["epoch"] == 10
    assert "interrupted at epoch 10; checkpoint of epoch 10 in" in capsys.readouterr().err


def test_a_folder_without_write_permission_is_refused_before_training(corpus, tmp_path,
                                                                      monkeypatch, capsys):
    """catches: the folder checked for R_OK, not W_OK|X_OK. Permissions are simulated: as root
    (as in CI containers) a chmod'ed folder is still writable."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path) == folder and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    assert train(corpus, "--epochs", "1", "--save", str(folder / "m.npz")) == 2
    captured = capsys.readouterr()
    assert f"no permission to write in {folder}" in captured.err
    assert "perplexity" not in captured.out


# ============================================================== GRU, LSTM, deep, bidirectional
BIDIRECTIONAL_WARNING = "warning: a bidirectional model reads each sequence from both ends"


@pytest.mark.parametrize("flags,stored", [
    (["--model", "gru"], {"model": "gru", "num_layers": 1}),
    (["--model", "lstm", "--layers", "2"], {"model": "lstm", "num_layers": 2}),
    (["--model", "gru", "--layers", "2", "--dropout", "0.3"], {"model": "gru", "dropout": 0.3}),
    (["--init", "torch"], {"model": "rnn", "init": "torch"}),
    (["--model", "lstm", "--bidirectional"], {"model": "lstm", "bidirectional": True}),
], ids=["gru", "deep-lstm", "dropout", "torch-init", "bidirectional"])
def test_each_model_flag_trains_saves_and_generates(corpus, tmp_path, capsys, flags, stored):
    """The flags reach the model and the run's config, and generate rebuilds the model
    from its checkpoint; a bidirectional model gets a warning, in train and generate."""
    ckpt = tmp_path / "m.npz"
    assert train(corpus, "--epochs", "1", "--hidden", "8", "--save", str(ckpt), *flags) == 0
    out, err = capsys.readouterr()
    assert "tokens/sec on numpy" in out
    meta = checkpoint.load(ckpt)["meta"]
    for config in ("model", "train"):  # the keys are the same in both
        assert meta[config] == {**meta[config], **stored}
    warned = stored.get("bidirectional", False)
    assert (BIDIRECTIONAL_WARNING in err) == warned == ("(D2L §9.4)" in err)
    assert main(["generate", str(ckpt), "--prefix", "the", "-n", "12", "--backend",
                 "numpy"]) == 0
    out, err = capsys.readouterr()
    model, vocab = load_model(ckpt, "numpy")
    assert out.strip("\n") == model.predict("the", 12, vocab) and len(out.strip("\n")) == 15
    assert (BIDIRECTIONAL_WARNING in err) == warned


def test_dropout_without_a_second_layer_is_refused_in_one_line(corpus, capsys):
    assert train(corpus, "--epochs", "1", "--dropout", "0.5") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinygrad-rnn: error: dropout 0.5 acts between recurrent layers")
    assert "num_layers >= 2" in err and len(err.splitlines()) == 1


def test_a_resumed_lstm_keeps_its_model(corpus, tmp_path, capsys):
    """--resume rebuilds the LSTM (its flags need not be given again) and goes on."""
    ckpt = tmp_path / "m.npz"
    assert train(corpus, "--epochs", "1", "--model", "lstm", "--layers", "2", "--save",
                 str(ckpt)) == 0
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "2",
                 "--model", "lstm", "--save", str(ckpt), "--quiet"]) == 0
    meta = checkpoint.load(ckpt)["meta"]
    assert meta["epoch"] == 2 and meta["model"]["model"] == "lstm"
    assert meta["model"]["num_layers"] == 2


def test_version_names_the_installed_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinygrad-rnn {tg.__version__}"


def test_a_log_of_stderr_gets_no_carriage_return(corpus, tmp_path):
    """`tinygrad-rnn train ... 2>log`: no bar off a terminal, so no \\r-joined line."""
    log = tmp_path / "log"
    with open(log, "w") as stderr:
        done = subprocess.run(
            [sys.executable, "-m", "tinygrad_rnn", "train", "--epochs", "2", "--data", corpus,
             *SIZES, "--backend", "numpy", "--prefix", "The"], stdout=subprocess.DEVNULL,
            stderr=stderr, timeout=60)
    assert done.returncode == 0
    text = log.read_text()
    assert "reads as 'the'" in text and "\r" not in text  # stderr was written, barless


def test_the_bar_stays_off_a_log_unless_asked(corpus, tmp_path, monkeypatch, capsys):
    """stderr not a terminal (a log file): no bar, so no \\r-joined line; --progress forces it."""
    args = [a for a in TINY if a != "--quiet"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert main(["train", "--data", corpus, *args, "--epochs", "2"]) == 0
    assert "\r" not in capsys.readouterr().err
    assert main(["train", "--data", corpus, *args, "--epochs", "2", "--progress"]) == 0
    assert "\r" in capsys.readouterr().err


def test_a_device_or_fifo_as_output_is_refused_before_training(tmp_path, capsys, monkeypatch):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    monkeypatch.setattr("tinygrad_rnn.charlm.cli.Trainer", None)  # training would crash
    for flag, path in (("--save", fifo), ("--save", "/dev/full"), ("--plot", "/dev/null")):
        assert main(["train", flag, str(path), *TINY]) == 2
        assert "is not a regular file" in capsys.readouterr().err
    assert not fifo.is_file() and fifo.exists()


# ======================================================================= compile notice
NOTICE = "compiling kernels (first run only)…"


def test_the_compile_notice_comes_once_when_numba_compiles(capsys):
    """Numba compiling (a fresh function: nothing cached) gives the notice, once however
    many compiles follow; outside the block, nothing."""
    numba = pytest.importorskip("numba")
    from tinygrad_rnn.charlm.cli import _compile_notice

    def fresh():
        return numba.njit(lambda x: x + 1)

    fresh()(0)
    assert capsys.readouterr().err == ""
    with _compile_notice():
        assert fresh()(1) + fresh()(2.5) == 5.5
    fresh()(3)
    assert capsys.readouterr().err == NOTICE + "\n"


@pytest.mark.slow
def test_a_cold_numba_cache_is_announced_and_a_warm_one_is_not(trained, tmp_path):
    """A first run (an empty NUMBA_CACHE_DIR) says it compiles; the next, which loads
    the kernels from that cache, says nothing."""
    if "numba" not in tg.backends.available():
        pytest.skip("the numba backend is not usable here")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    runs = [subprocess.run([sys.executable, "-m", "tinygrad_rnn", "generate", str(trained),
                            "--backend", "numba", "-n", "5"], capture_output=True, text=True,
                           env=env, timeout=300) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    assert [run.stderr for run in runs] == [NOTICE + "\n", ""]
    assert runs[0].stdout == runs[1].stdout

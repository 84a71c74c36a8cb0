"""Contracts of the CLI, viz, the backend registry, the random generator, atomic writes
and the CPU-testable parts of cuda_graph, each one a bug a mutation run showed the other
tests would miss (flags that never reach the run, output left unflushed, a checkpoint
lost to a later divergence, DOT ids, a plugin that fails to import, ...).
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_viz import parse, rnn_step
from tinygrad_rnn.backends import BackendUnavailable

import tinygrad_rnn as tg
from tinygrad_rnn import viz
from tinygrad_rnn.charlm import checkpoint
from tinygrad_rnn.charlm.cli import build_parser, main
from tinygrad_rnn.charlm.cuda_graph import GraphedStep
from tinygrad_rnn.charlm.train import TrainConfig, Trainer, TrainingDiverged, load_model

SIZES = ["--hidden", "16", "--batch-size", "4", "--num-steps", "8", "--max-tokens", "600"]
TINY = [*SIZES, "--quiet", "--backend", "numpy"]
NumpyBackend = tg.backends.get("numpy").__class__


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


# ================================================================== cli: parsing
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


@pytest.fixture
def registry(monkeypatch):
    """Registrations local to the test (as test_packaging's ``mine`` fixture)."""
    monkeypatch.setattr(tg.backends, "_registered", dict(tg.backends._registered))
    monkeypatch.setattr(tg.backends, "_instances", dict(tg.backends._instances))
    return tg.backends


def _unavailable():
    raise BackendUnavailable("the frobnicator is missing: pip install frobnicator")


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
                               ("--random-iter", None, "use_random_iter")]:
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


# ============================================================== cli: metrics, saving
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


# ============================================================ cli: progress, summary
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
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "5"]) == 0
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


# ====================================================================== cli: generate
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


# ================================================================ cli: exit codes
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
    """catches: KeyboardInterrupt exits 1, not 128 + SIGINT."""
    stop_at_epoch(monkeypatch, 2, KeyboardInterrupt())
    assert train(corpus, "--epochs", "3") == 130
    assert "tinygrad-rnn: interrupted" in capsys.readouterr().err


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


# ============================================================================= viz
def test_a_tensor_used_twice_is_one_node():
    """catches: graph() without its visited check: a tensor reached twice is listed twice."""
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    b = a + a
    c = b * a.tanh()
    nodes, edges = parse(viz.to_dot(c))  # parse fails on a node declared twice
    assert sum(nid[0] == "t" for nid in nodes) == 6  # x, the constant 2, a, b, tanh(a), c
    tensors, functions = viz.graph(c)
    assert len({id(t) for t in tensors}) == len(tensors)
    assert len({id(f) for f in functions}) == len(functions)


def test_node_ids_number_the_first_input_first():
    """catches: inputs pushed unreversed: the second input becomes t0."""
    x = tg.Tensor(np.ones((2, 3)))
    w = tg.Tensor(np.ones((3, 4)), requires_grad=True)
    nodes, _ = parse(viz.to_dot(x @ w, names={x: "x", w: "w"}))
    assert nodes["t0"].startswith("x\\n") and nodes["t1"].startswith("w\\n")


def test_requires_grad_is_labelled_on_exactly_the_tensors_that_need_it():
    """catches: the label follows is_leaf instead of requires_grad."""
    x = tg.Tensor([1.0, 2.0])  # a leaf without grad
    w = tg.Tensor([3.0, 4.0], requires_grad=True)
    y = x * w  # made by an op, requires grad
    nodes, _ = parse(viz.to_dot(y, names={x: "x", w: "w", y: "y"}))
    labels = {label.split("\\n")[0]: label for label in nodes.values()}
    assert labels["x"] == "x\\n(2,) float32"
    assert labels["w"].endswith("\\nrequires_grad") and labels["y"].endswith("\\nrequires_grad")


@pytest.mark.parametrize("rankdir", ["LR", "RL", "TB", "BT"])
def test_every_documented_rankdir_is_accepted(rankdir):
    """catches: BT refused."""
    assert f"rankdir={rankdir};" in viz.to_dot(tg.Tensor([1.0]), rankdir=rankdir)


def test_compact_keeps_a_named_intermediate_as_a_box():
    """catches: compact hides named intermediates too."""
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    a = x * 2
    y = a.tanh()
    nodes, _ = parse(viz.to_dot(y, names={a: "a"}, compact=True))
    assert any(label.startswith("a\\n") for label in nodes.values())
    assert sum(nid[0] == "t" for nid in nodes) == 4  # x, the constant 2, a, y


def test_a_title_is_quoted_as_dot_needs():
    """catches: the title written unescaped: a quote in it breaks the DOT."""
    dot = viz.to_dot(tg.Tensor([1.0]), title='say "hi"')
    assert '  labelloc=t; label="say \\"hi\\"";' in dot.splitlines()
    if shutil.which("dot") is not None:
        done = subprocess.run(["dot", "-Tcanon"], input=dot.encode(), capture_output=True)
        assert done.returncode == 0, done.stderr.decode()


needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")


@needs_dot
def test_render_defaults_to_svg_and_reads_the_suffix_in_any_case(tmp_path):
    """catches: no suffix: png instead of the documented svg; catches: ".PNG" refused."""
    _, H = rnn_step()
    assert "<svg" in viz.render(H, tmp_path / "graph").read_text()
    assert viz.render(H, tmp_path / "graph.PNG").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_dot
def test_render_makes_the_folder(tmp_path):
    """catches: render does not create the output folder: dot fails."""
    _, H = rnn_step()
    assert viz.render(H, tmp_path / "a" / "b" / "g.svg").is_file()


@needs_dot
def test_render_reports_dot_failing(tmp_path):
    """catches: exit status 1, dot's syntax error, taken for success."""
    with pytest.raises(RuntimeError, match=r"dot failed \(exit 1\): .*syntax error"):
        viz.render("this is not DOT", tmp_path / "g.svg")


# ========================================================================= backends
class Other(NumpyBackend):
    name = "numpy"


class Another(NumpyBackend):
    name = "numpy"


def test_register_overrides_a_built_in_name(registry):
    """catches: entry points listed after, and over, register()'s backends."""
    registry.register("numba", Other)
    assert isinstance(registry.get("numba"), Other)


def test_registering_a_new_factory_replaces_the_backend(registry):
    """catches: the old instance kept after a new factory is registered."""
    registry.register("swap", Other)
    assert isinstance(registry.get("swap"), Other)
    registry.register("swap", Another)
    assert isinstance(registry.get("swap"), Another)


def test_an_empty_backend_name_is_refused(registry):
    with pytest.raises(TypeError, match="non-empty string, got ''"):
        registry.register("", Other)


def test_unknown_backend_lists_only_the_usable_ones(registry):
    """catches: the message lists every name, unusable ones too."""
    registry.register("broken", _unavailable)
    with pytest.raises(ValueError, match="unknown backend 'nope'") as info:
        registry.get("nope")
    assert "numpy" in str(info.value) and "broken" not in str(info.value)


def test_a_plugin_failing_with_any_error_is_unavailable_not_fatal(registry):
    """catches: only ImportError contained: a plug-in raising anything else breaks available()."""
    def boom():
        raise RuntimeError("no device")

    registry.register("boom", boom)
    with pytest.raises(BackendUnavailable, match="'boom' failed to load: RuntimeError: no device"):
        registry.get("boom")
    assert "boom" not in registry.available() and "numpy" in registry.available()


def test_a_fresh_process_defaults_to_numpy():
    """catches: another process-wide default; conftest resets it to numpy before every test, so
    only a fresh interpreter sees the real default."""
    done = subprocess.run(
        [sys.executable, "-c", "import tinygrad_rnn as tg; "
         "print(tg.get_backend().name, tg.Tensor([1.0]).backend)"],
        capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["numpy", "numpy"]


# =========================================================================== random
def test_manual_seed_returns_the_generator_it_installs():
    """catches: manual_seed returns a copy: draws from it do not advance initialisation's."""
    from tinygrad_rnn.random import generator

    g = tg.manual_seed(5)
    assert g is generator()
    first = g.standard_normal()
    assert tg.manual_seed(5).standard_normal() == first


# ====================================================================== atomic_write
def test_atomic_write_puts_the_data_on_disk_before_the_rename(tmp_path, monkeypatch):
    """catches: fsync before flush: the data is still in Python's buffer; catches: no fsync."""
    path = tmp_path / "f.bin"
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append((os.fstat(fd).st_size, path.exists()))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    tg.serialization.atomic_write(path, lambda f: f.write(b"x" * 1000))
    assert synced == [(1000, False)]
    assert path.read_bytes() == b"x" * 1000


def test_atomic_write_leaves_no_temporary_file_after_ctrl_c(tmp_path):
    """catches: only Exception cleaned up: an interrupt leaves the temporary file."""
    def interrupted(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tg.serialization.atomic_write(tmp_path / "f.bin", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_stages_a_hidden_file_next_to_the_target(tmp_path):
    """catches: temporary file in $TMPDIR: os.replace across file systems fails, and is not
    atomic; catches: temporary not hidden: a glob for *.png picks up a half-written plot."""
    target = tmp_path / "out" / "plot.png"
    during = []
    tg.serialization.atomic_write(target, lambda f: during.append(
        [p.name for p in target.parent.iterdir()]), suffix=".png")
    (names,) = during
    assert len(names) == 1 and names[0].startswith(".plot.png.") and names[0].endswith(".png")


def test_atomic_write_refuses_a_directory_or_a_read_only_file_and_follows_a_link(
        tmp_path, monkeypatch):
    """As ``open(path, "wb")``: a directory is refused, a read-only file too (checked with
    os.access, which root passes, so it is faked here), and a symlink is written through."""
    with pytest.raises(IsADirectoryError, match=f"cannot write {tmp_path}: it is a directory"):
        tg.serialization.atomic_write(tmp_path, lambda f: f.write(b"x"))
    target, link = tmp_path / "target.bin", tmp_path / "link.bin"
    target.write_bytes(b"old")
    link.symlink_to(target)
    assert tg.serialization.atomic_write(link, lambda f: f.write(b"new")) == link
    assert link.is_symlink() and target.read_bytes() == b"new"
    dangling = tmp_path / "dangling.bin"  # into a folder that does not exist: not made
    dangling.symlink_to(tmp_path / "missing" / "x.bin")
    with pytest.raises(FileNotFoundError):
        tg.serialization.atomic_write(dangling, lambda f: f.write(b"x"))
    dangling.unlink()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match="target.bin: the file is read-only"):
        tg.serialization.atomic_write(target, lambda f: f.write(b"x"))
    assert target.read_bytes() == b"new" and sorted(tmp_path.iterdir()) == [link, target]


def test_atomic_write_names_the_callers_path_and_survives_a_link_loop(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IsADirectoryError) as info:
        tg.serialization.atomic_write("link", lambda f: f.write(b"x"))
    assert str(info.value) == "cannot write link: it is a directory"
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    tg.serialization.atomic_write("a", lambda f: f.write(b"x"))  # Path.resolve() would raise
    assert (tmp_path / "a").read_bytes() == b"x"


def test_checkpoint_save_and_load_refuse_what_would_not_round_trip(tmp_path):
    params = {"W": np.ones(2)}
    with pytest.raises(checkpoint.CheckpointError, match="meta has format 'x'"):
        checkpoint.save(tmp_path / "a.npz", params, ["a"], {"format": "x"})
    with pytest.raises(checkpoint.CheckpointError, match="token ends in NUL"):
        checkpoint.save(tmp_path / "a.npz", params, ["a", "b\0"], {})
    assert not list(tmp_path.iterdir())
    flat = tmp_path / "flat.npz"
    np.savez(flat, vocab=np.array("a"), meta=np.array(json.dumps({"format": checkpoint.FORMAT})))
    with pytest.raises(checkpoint.CheckpointError, match=r"vocab entry of shape \(\)"):
        checkpoint.load(flat)
    np.savez(flat, vocab=np.array([["a", "b"], ["c", "d"]]),
             meta=np.array(json.dumps({"format": checkpoint.FORMAT})))
    with pytest.raises(checkpoint.CheckpointError, match=r"vocab entry of shape \(2, 2\)"):
        checkpoint.load(flat)
    huge = tmp_path / "huge.npz"  # a header that claims 2**50 elements
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        header, {"descr": "<U1", "fortran_order": False, "shape": (2**50,)})
    with zipfile.ZipFile(huge, "w") as z:
        z.writestr("vocab.npy", header.getvalue())
    with pytest.raises(checkpoint.CheckpointError, match="huge.npz is not a valid .npz file"):
        checkpoint.load(huge)


def test_atomic_write_leaves_the_umask_alone(tmp_path):
    """catches: new_file_mode reads the umask by setting it to 0, and does not set it back:
    every later file of the process would be world-writable."""
    old = os.umask(0o027)
    try:
        tg.serialization.atomic_write(tmp_path / "f.bin", lambda f: f.write(b"x"))
        now = os.umask(0o027)
    finally:
        os.umask(old)
    assert now == 0o027
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o640


# ======================================================================= cuda_graph
@pytest.fixture
def plain_step(corpus):
    """A GraphedStep on plain numpy (no records_graphs), given its recorder explicitly."""
    cfg = TrainConfig(num_hiddens=16, num_epochs=1, batch_size=4, num_steps=8, max_tokens=600)
    trainer = Trainer.create(cfg, corpus, "numpy")
    step = GraphedStep(trainer._step, trainer.model, trainer.optimizer, (4, 8),
                       len(trainer.vocab), record=lambda body: body)
    X, Y = next(iter(trainer.loader))
    return step, X, Y


def test_an_explicit_recorder_works_on_any_backend(plain_step):
    """catches: a recorder passed in is refused on a backend that records no graphs."""
    step, X, Y = plain_step
    for fresh in (True, False, False):
        assert np.isfinite(float(step(X, Y, fresh)))


def test_targets_of_another_shape_are_refused(plain_step):
    """catches: only the tokens' shape checked: transposed targets of the same size pass."""
    step, X, Y = plain_step
    with pytest.raises(ValueError, match=r"shape \(4, 8\), got \(4, 8\) and \(8, 4\)"):
        step(X, Y.T.copy(), fresh=True)


def test_unsigned_token_ids_are_accepted(plain_step):
    """catches: unsigned ids refused as 'not integers'."""
    step, X, Y = plain_step
    assert np.isfinite(float(step(X.astype(np.uint16), Y.astype(np.uint8), fresh=True)))

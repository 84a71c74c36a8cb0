"""Every script in ``examples/`` runs with small settings, exits 0 and shows its claim.

Each example checks its own claim and exits with status 1 when it fails; here the
claim is also read back from the printed evidence, so an example that stopped
checking would still be caught. The examples that read *The Time Machine* skip
without it (``helpers.book_path``: ``$TINYGRAD_RNN_DATA``, else the cache).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import book_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
book = book_path  # the package's lookup, no download; skips without the book


def run(script: str, *args: str, cwd: Path = ROOT, expect: int = 0) -> str:
    """Run ``examples/script`` with ``args``; assert its exit status; return stdout."""
    # One BLAS thread: on a busy 2-core machine two thread pools slow each other down.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == expect, (
        f"{script} {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


# --------------------------------------------------------------------- every script
@pytest.mark.parametrize("script", SCRIPTS)
def test_has_help_and_a_docstring_naming_its_section(script):
    doc = ast.get_docstring(ast.parse((EXAMPLES / script).read_text(encoding="utf-8")))
    assert doc, f"{script} has no module docstring"
    if script != "concat_identity.py":  # the seed example; it takes no arguments
        assert re.search(r"§8\.4|§9\.[1-4]|exercise|backend", doc.split("\n")[0], re.I), \
            doc.split("\n")[0]
        out = run(script, "--help")
        assert out.startswith("usage:")


def test_the_examples_are_the_expected_ones():
    assert {
        "mlp_no_hidden_state.py",
        "exercise1_output_dim.py",
        "exercise2_hidden_state_memory.py",
        "exercise3_gradient_norms.py",
        "exercise4_lm_problems.py",
        "my_backend.py",
        "rnn_graph.py",
        "concat_identity.py",
        "gru.py",
        "lstm.py",
        "deep_rnn.py",
        "bidirectional_rnn.py",
    } <= set(SCRIPTS)


# ------------------------------------------------------------------- each claim
def test_concat_identity():
    out = run("concat_identity.py")
    assert out.count("agree: True") >= 2  # numpy and numba at least


def test_mlp_loss_drops():
    out = run("mlp_no_hidden_state.py", "--epochs", "150")
    start, end = map(float, re.search(r"MLP: +loss ([\d.]+) -> ([\d.]+)", out).groups())
    assert end < 0.5 * start
    assert "claims hold" in out


def test_exercise1_output_is_vocabulary_wide():
    out = run("exercise1_output_dim.py", "--data", book(), "--batch", "2", "--steps", "5")
    assert "logits (10, 28) = (T*N, V)" in out and "W_hq (32, 28)" in out
    assert re.search(r"logits \(10, \d{4}\) = \(T\*N, V\)", out)  # the word vocabulary


def test_exercise1_without_the_book_exits_2(tmp_path):
    out = run("exercise1_output_dim.py", "--data", str(tmp_path / "missing.txt"), expect=2)
    assert out == ""


def test_exercise2_prefix_changes_the_prediction():
    out = run(
        "exercise2_hidden_state_memory.py",
        "--data",
        book(),
        "--length",
        "12",
        "--windows",
        "16",
        "--hidden",
        "32",
    )
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+\s+\d", line)]
    assert [int(r[0]) for r in rows] == list(range(12))
    with_state = np.array([float(r[1]) for r in rows])
    without = np.array([float(r[2]) for r in rows])
    assert np.all(with_state > 0) and np.all(without[1:] == 0) and without[0] > 0
    assert with_state[-1] < with_state[0]  # the far past matters, but less
    assert "claims hold" in out


def norms_table(out: str, title: str) -> dict[tuple[str, float], list[float]]:
    section = out.split(title, 1)[1].split("\n\u2016", 1)[0]  # up to the next ‖...‖ table
    table = {}
    for line in section.splitlines()[2:]:
        parts = line.split()
        if len(parts) > 3 and parts[0] in ("identity", "tanh", "relu"):
            table[parts[0], float(parts[1])] = [float(x) for x in parts[2:-1]]
    return table


def test_exercise3_vanishing_and_exploding_gradients(tmp_path):
    png = tmp_path / "norms.png"
    out = run(
        "exercise3_gradient_norms.py",
        "--max-len",
        "20",
        "--rhos",
        "0.5",
        "1.5",
        "--hidden",
        "16",
        "--clip-epochs",
        "0",
        "--out",
        str(png),
    )
    dH0 = norms_table(out, "‖∂L/∂H_0‖ against sequence length T")
    assert set(dH0) == {(phi, rho) for phi in ("identity", "tanh", "relu") for rho in (0.5, 1.5)}
    lengths = [1, 2, 5, 10, 20]
    for (phi, rho), values in dH0.items():
        assert len(values) == len(lengths)
        if phi == "identity":  # exactly ρ per step, so shrinking for 0.5, growing for 1.5
            steps = np.diff(values)
            assert np.all(steps < 0) if rho < 1 else np.all(steps > 0), (phi, rho, values)
            ratio = (values[-1] / values[0]) ** (1 / (lengths[-1] - lengths[0]))
            assert abs(ratio - rho) < 1e-2 * rho
        else:  # under the bound ρ^T‖U‖, which the identity row attains (to print rounding)
            bound = dH0["identity", rho]
            assert all(v <= 1.005 * b for v, b in zip(values, bound, strict=True)), (phi, rho)
    assert "skipped" not in out and "CLAIM FAILED" not in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "PNG" in out and not png.exists()
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exercise3_clipping_helps():
    out = run(
        "exercise3_gradient_norms.py",
        "--data",
        book(),
        "--max-len",
        "2",
        "--no-plot",
        "--clip-epochs",
        "6",
        "--clip-hidden",
        "32",
    )
    final = {}
    for label in ("clipped", "not clipped"):
        line = re.search(rf"^ *{label}: .*$", out, re.M).group(0)
        final[label] = float(line.split()[-1])
    assert final["clipped"] < 28 < final["not clipped"]
    assert "clipping helps" in out


def test_exercise4_held_out_is_worse_than_training_text():
    out = run(
        "exercise4_lm_problems.py",
        "--data",
        book(),
        "--hidden",
        "128",
        "--epochs",
        "40",
        "--every",
        "20",
        "--backend",
        "numpy",
    )
    train, held = map(
        float,
        re.search(r"perplexity ([\d.]+) on the training text, ([\d.]+) on held-out", out).groups(),
    )
    assert held > train
    assert "claim holds" in out


def test_my_backend_passes_gradcheck_and_parity():
    out = run("my_backend.py")
    assert "gradcheck of cross_entropy on my_backend: passed" in out
    calls = int(re.search(r"softmax_cross_entropy ran (\d+) times", out).group(1))
    assert calls > 0 and "claims hold" in out


def test_rnn_graph_pictures(tmp_path):
    out = run("rnn_graph.py", "--out-dir", str(tmp_path))
    assert "'Tanh': 3" in out and "'RNNRecurrence': 1" in out and "claims hold" in out
    for stem in ("rnn_composed", "rnn_fused"):
        assert (tmp_path / f"{stem}.dot").read_text().startswith("digraph computation {")
        if shutil.which("dot"):
            assert "<svg" in (tmp_path / f"{stem}.svg").read_text()


# ------------------------------------------------------------- D2L §9, each claim
#: Small runs of the §9 examples: D2L's batches of 32 × 35 on its 10,000 characters, but
#: a few epochs of a small model.
TINY_CH9 = ["--hidden", "16", "--epochs", "3", "--every", "1", "--backend", "numpy"]


def book_runs(out: str) -> list[tuple[float, float, list[str]]]:
    """Each trained model's last lines, as D2L's train_ch8 prints them: (perplexity,
    tokens/s, the two continuations)."""
    lines = out.splitlines()
    runs = []
    for i, line in enumerate(lines):
        m = re.fullmatch(r"perplexity ([\d.]+), ([\d.]+) tokens/sec on numpy", line)
        if m:
            runs.append((float(m.group(1)), float(m.group(2)), lines[i + 1:i + 3]))
    return runs


def epoch_perplexities(out: str) -> list[float]:
    return [float(x) for x in re.findall(r"epoch +\d+: perplexity +([\d.]+)", out)]


def check_book_runs(out: str, variants: int, epochs: int) -> None:
    runs = book_runs(out)
    assert len(runs) == variants, out
    for _, speed, (first, second) in runs:
        assert speed > 0 and first.startswith("time traveller") and second.startswith("traveller")
    curves = epoch_perplexities(out)
    assert len(curves) == variants * epochs
    for k in range(variants):  # each model's perplexity fell
        curve = curves[k * epochs:(k + 1) * epochs]
        assert curve[-1] < curve[0], curve
    assert "claims hold" in out and "CLAIM FAILED" not in out


@pytest.mark.parametrize("script", ["gru.py", "lstm.py"])
def test_gru_and_lstm_from_scratch_and_concise_train(script):
    out = run(script, "--data", book(), *TINY_CH9)
    check_book_runs(out, variants=2, epochs=3)
    assert "from scratch" in out and "concise" in out
    if script == "lstm.py":
        assert "nn.LSTM with the scratch weights: the same logits, state and gradients" in out


def test_deep_rnn_stacks_two_lstm_layers():
    out = run("deep_rnn.py", "--data", book(), *TINY_CH9)
    check_book_runs(out, variants=2, epochs=3)
    assert "nn.LSTM(num_layers=2) with the scratch weights: the same logits" in out


def test_bidirectional_rnn_reads_the_future_and_cannot_generate():
    """Trained long enough to read ahead (one layer, lr 4), the bidirectional LSTM does
    far better on whole rows than one character at a time; a left-to-right model does
    the same both ways. The scratch model (1 epoch, no claim on training) computes
    nn.LSTM's function."""
    out = run("bidirectional_rnn.py", "--data", book(), "--hidden", "32", "--layers", "1",
              "--lr", "4", "--epochs", "12", "--every", "4", "--variants", "concise",
              "--backend", "numpy")
    whole, stepwise = map(float, re.search(
        r"perplexity ([\d.]+) reading whole rows \(as in training\), ([\d.]+) one", out).groups())
    assert stepwise > 5 * whole, out
    before = re.search(r"left-to-right LSTM: perplexity ([\d.]+) reading whole rows, ([\d.]+)",
                       out).groups()
    assert before[0] == before[1]
    assert "claims hold" in out
    out = run("bidirectional_rnn.py", "--data", book(), "--hidden", "8", "--epochs", "1",
              "--variants", "scratch", "--backend", "numpy")
    assert "bidirectional=True) with the scratch weights: the same logits" in out
    assert "needs a trained model" in out and "claims hold" in out


def test_chapter9_examples_without_the_book_exit_2(tmp_path):
    out = run("gru.py", "--data", str(tmp_path / "missing.txt"), expect=2)
    assert out == ""


def test_gates_figures_and_gradient_table(tmp_path):
    pytest.importorskip("matplotlib")
    out = run("gates.py", "--data", book(), "--epochs", "2", "--hidden", "16", "--length", "40",
              "--out-dir", str(tmp_path))
    rows = dict(re.findall(r"^(\w+ [HC]_t, (?:init|trained)) +(.+)$", out, flags=re.M))
    assert len(rows) == 8, out  # RNN, GRU, LSTM H_t and LSTM C_t, at init and trained
    rnn_init = [float(v) for v in rows["RNN H_t, init"].split()]
    assert rnn_init[0] == 1.0 and rnn_init[-1] < 1e-2  # distance 0, then 30 steps back
    assert "GRU update gate z: mean" in out and "LSTM forget gate f: mean" in out
    for name in ("gates_activations.png", "gates_gradient_norms.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_exercise_gates_one_gate_grus_and_the_output_tanh():
    out = run("exercise_gates.py", "--data", book(), "--epochs", "2", "--hidden", "16",
              "--cost-hidden", "32", "--cost-seconds", "0.3", "--backend", "numba")
    table = dict(re.findall(r"^  (\S.*?) +([\d.]+)$", out.split("perplexity after")[1]
                            .split("the LSTM's states")[0], flags=re.M))
    assert set(table) == {"GRU (book)", "GRU, reset gate only", "GRU, update gate only",
                          "RNN", "LSTM (book)", "LSTM, H = O ⊙ C"}, table
    H_book = float(re.search(r"LSTM \(book\) +max \|H_t\| ([\d.]+)", out)[1])
    assert H_book <= 1
    costs = dict(re.findall(r"^  (RNN|GRU|LSTM) +([\d,]+)", out, flags=re.M))
    assert set(costs) == {"RNN", "GRU", "LSTM"}  # timings are the script's, not a test's
    assert "claims hold" in out

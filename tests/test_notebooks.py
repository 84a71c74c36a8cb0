"""The notebooks in ``notebooks/`` run top to bottom from a clean kernel and show their
figures; ``tinygrad_rnn.notebook`` draws training progress from ``Trainer.fit``'s callback.

Executing a notebook needs nbclient, nbformat and ipykernel (the ``dev`` extras) and
the book (``$TINYGRAD_RNN_DATA`` or the download cache: never a download here). The
notebooks read ``TINYGRAD_RNN_EPOCHS`` and ``TINYGRAD_RNN_MAX_TOKENS`` in their
``parameters`` cell; CI runs them with 2 epochs of one minibatch each.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from tinygrad_rnn.charlm import TrainConfig, Trainer
from tinygrad_rnn.charlm.data import DATA_ENV_VAR, DataError, time_machine_path
from tinygrad_rnn.charlm.train import fastest_backend

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CI_EPOCHS = 2
CI_SETTINGS = {"TINYGRAD_RNN_EPOCHS": str(CI_EPOCHS),
               "TINYGRAD_RNN_MAX_TOKENS": "1200"}  # one minibatch of 32 × 35 an epoch
# a cell that draws (at its top level, not in a definition): a pyplot figure, or a
# training run's live plot (train_ch8, or the §9 notebook's run helper around it)
FIGURE_CELL = re.compile(r"^(?:plt\.show\(\)|train_ch8\(|run\()", re.M)
D2L_LINE = re.compile(r"^perplexity [\d.]+, [\d,]+ tokens/sec on (\w+)$", re.M)

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="the notebook helper draws with matplotlib")


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _book() -> Path | None:
    """The book as the library finds it (its one lookup), short of downloading it."""
    try:
        return Path(time_machine_path(download=False))
    except DataError:
        return None


# ----------------------------------------------------------- what the notebooks are
def test_the_chapters_have_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    for chapter in ("8.4", "8.5-8.6", "9"):
        assert any(n.startswith(chapter + "-") for n in names), f"no notebook for §{chapter}"
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}.md" in nav, f"{path.name} is not in the docs' nav"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_parametrised_and_portable(path: Path):
    """Training notebooks take their epochs from the tagged parameters cell (its first code
    cell); every notebook picks the fastest backend and names no path of this machine."""
    nb = _load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    text = "\n".join(_source(c) for c in code)
    assert "fastest_backend()" in text
    assert "../shared" not in path.read_text(encoding="utf-8")
    if "train_ch8" in text:
        first = code[0]
        assert "parameters" in first.get("metadata", {}).get("tags", [])
        assert all(f'os.environ.get("{name}"' in _source(first) for name in CI_SETTINGS)


# ------------------------------------------------------------ running them afresh
def _why_not_runnable() -> str | None:
    for module in ("nbclient", "nbformat", "ipykernel", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            return (f"executing the notebooks needs {module} (pip install -e '.[dev]': "
                    "nbclient, nbformat, ipykernel, matplotlib)")
    if _book() is None:
        return f"the notebooks train on The Time Machine; set {DATA_ENV_VAR}"
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_from_a_clean_kernel(path: Path, tmp_path, monkeypatch):
    why = _why_not_runnable()
    if why:
        pytest.skip(why)
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    for name, value in CI_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(DATA_ENV_VAR, str(_book()))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # a shared 2-core machine
    # the kernel is this interpreter, whatever kernels the machine has installed elsewhere
    spec = tmp_path / "jupyter" / "kernels" / "this-python"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "this Python", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="this-python",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()  # a new kernel: nothing from an earlier run or from this process
    except CellExecutionError as e:
        pytest.fail(f"{path.name} failed:\n{e}")

    figures, trained = 0, []
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        outputs = cell.get("outputs", [])
        assert not [o for o in outputs if o.output_type == "error"], f"{path.name} cell {i}"
        pngs = [o for o in outputs if "image/png" in o.get("data", {})]
        if FIGURE_CELL.search(cell.source):
            assert pngs, f"{path.name}: code cell {i} drew no figure:\n{cell.source}"
        figures += len(pngs)
        printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        trained += D2L_LINE.findall(printed)
        if "parameters" in cell.metadata.get("tags", []):
            assert f"num_epochs = {CI_EPOCHS}" in printed, "the parameter did not reach it"
    assert figures >= 2, f"{path.name} shows {figures} figure(s)"
    if "train_ch8" in "".join(c.source for c in nb.cells):
        assert trained and set(trained) == {fastest_backend()}, trained


# --------------------------------------------------------------- the notebook helper
class _FakeDisplay:
    """IPython.display's two calls that Animator makes, recorded."""

    def __init__(self):
        self.shown, self.updates = [], []

    def Image(self, data, format):  # noqa: N802 - IPython's name
        assert format == "png" and data.startswith(b"\x89PNG")
        return data

    def display(self, image, display_id):
        assert display_id is True
        self.shown.append(image)
        fake = self

        class Handle:
            def update(self, image):
                fake.updates.append(image)

        return Handle()


class _FakeBar:
    def __init__(self, start, total):
        self.start, self.total, self.n, self.postfix, self.closed = start, total, 0, {}, False

    def set_postfix(self, **values):
        self.postfix = values

    def update(self, n):
        self.n += n

    def close(self):
        self.closed = True


@needs_matplotlib
def test_train_ch8_is_trainer_fit_with_a_live_plot_and_a_bar(corpus, monkeypatch, capsys):
    from tinygrad_rnn import notebook

    shown = _FakeDisplay()
    bars: list[_FakeBar] = []
    monkeypatch.setattr(notebook, "_display", lambda: shown)
    monkeypatch.setattr(notebook, "_progress_bar",
                        lambda start, total: bars.append(_FakeBar(start, total)) or bars[-1])
    fits = []
    real_fit = Trainer.fit

    def spy(self, *args, **kwargs):
        fits.append(kwargs.get("callback"))
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    trainer = Trainer.create(TrainConfig(num_hiddens=8, num_epochs=3, batch_size=2,
                                         num_steps=5, max_tokens=400), data=corpus,
                             backend="numpy")
    animator = notebook.train_ch8(trainer, prefixes=("the",))

    assert len(fits) == 1 and callable(fits[0]), "one call of Trainer.fit, with a callback"
    assert len(trainer.history) == 3
    assert animator.X == [[1, 2, 3]]
    assert animator.Y == [[s.perplexity for s in trainer.history]]
    assert len(shown.shown) == 1 and len(shown.updates) == 2, "one picture, redrawn per epoch"
    assert shown.updates[-1] == animator.png()
    assert bars[0].n == 3 and bars[0].total == 3 and bars[0].closed
    assert bars[0].postfix["ppl"] == f"{trainer.history[-1].perplexity:.2f}"
    out = capsys.readouterr().out.splitlines()
    assert D2L_LINE.match(out[0]) and D2L_LINE.match(out[0]).group(1) == "numpy"
    assert out[1].startswith("the") and len(out[1]) == len("the") + 50


@needs_matplotlib
def test_train_ch8_resumed_plots_the_earlier_epochs_too(corpus, monkeypatch):
    from tinygrad_rnn import notebook

    shown = _FakeDisplay()
    monkeypatch.setattr(notebook, "_display", lambda: shown)
    config = TrainConfig(num_hiddens=8, num_epochs=4, batch_size=2, num_steps=5,
                         max_tokens=400)
    trainer = Trainer.create(config, data=corpus, backend="numpy")
    trainer.fit(2, prefix=None)
    animator = notebook.train_ch8(trainer, prefixes=())
    assert animator.X == [[1, 2, 3, 4]]
    assert animator.Y == [[s.perplexity for s in trainer.history]]
    assert len(shown.shown) == 1 and len(shown.updates) == 2  # shown at once, then 2 epochs


def test_no_display_outside_ipython():
    from tinygrad_rnn import notebook

    assert notebook._display() is None  # pytest is no IPython kernel

"""Training in a Jupyter notebook: D2L's ``Animator`` and ``train_ch8``, over the CLI's Trainer.

``train_ch8(trainer)`` runs :meth:`~tinygrad_rnn.charlm.Trainer.fit` (the loop the
``tinygrad-rnn train`` command runs, not a second one) and, from its per-epoch
callback, redraws a perplexity plot in place and advances a ``tqdm.auto`` progress bar
(a notebook widget in Jupyter, a text bar elsewhere). As D2L's ``train_ch8`` it ends by
printing the perplexity, the speed and two samples.

The plot is drawn on a bare ``matplotlib.figure.Figure`` (no pyplot, so Jupyter's
inline backend does not show it a second time at the end of the cell) and shown as a
PNG through ``IPython.display`` with a display id, so each epoch replaces the previous
picture and leaves the progress bar in the same cell alone. Without IPython nothing is
shown; ``Animator.figure`` still holds the plot. Needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from tinygrad_rnn.charlm.train import EpochStats, Trainer

__all__ = ["Animator", "train_ch8"]


def _display() -> Any:
    """IPython's display module inside a running IPython (Jupyter) kernel, else None."""
    try:
        from IPython import display, get_ipython
    except ImportError:
        return None
    return display if get_ipython() is not None else None


class Animator:
    """Lines that grow one point per ``add``, redrawn in place in a notebook (D2L §3.6's
    ``Animator``, with its arguments)."""

    def __init__(self, xlabel: str | None = None, ylabel: str | None = None,
                 legend: Sequence[str] = (), xlim: Sequence[float] | None = None,
                 ylim: Sequence[float] | None = None, xscale: str = "linear",
                 yscale: str = "linear", fmts: Sequence[str] = ("-", "m--", "g-.", "r:"),
                 figsize: tuple[float, float] = (4.5, 3.0), title: str | None = None) -> None:
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=figsize, dpi=80, layout="tight")
        self.axes = self.figure.add_subplot()
        self.settings = dict(xlabel=xlabel, ylabel=ylabel, xlim=xlim, ylim=ylim,
                             xscale=xscale, yscale=yscale, title=title)
        self.legend, self.fmts = list(legend), list(fmts)
        self.X: list[list[float]] = []
        self.Y: list[list[float]] = []
        self._ipython = _display()
        self._handle: Any = None

    def add(self, x: float, y: float | Sequence[float]) -> None:
        """Append point ``(x, y[i])`` to line i (one line per value of ``y``), redraw."""
        ys = [y] if isinstance(y, (int, float)) else list(y)
        if not self.X:
            self.X, self.Y = [[] for _ in ys], [[] for _ in ys]
        for i, value in enumerate(ys):
            if value is not None:
                self.X[i].append(x)
                self.Y[i].append(value)
        self._draw()

    def _draw(self) -> None:
        from matplotlib.ticker import MaxNLocator

        ax, s = self.axes, self.settings
        ax.cla()
        for i, (xs, ys) in enumerate(zip(self.X, self.Y)):
            label = self.legend[i] if i < len(self.legend) else None
            ax.plot(xs, ys, self.fmts[i % len(self.fmts)], label=label)
        ax.set_xscale(s["xscale"])
        ax.set_yscale(s["yscale"])
        if s["xlim"]:
            ax.set_xlim(s["xlim"])
        if s["ylim"]:
            ax.set_ylim(s["ylim"])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs: no 1.2, 1.4
        ax.set_xlabel(s["xlabel"] or "")
        ax.set_ylabel(s["ylabel"] or "")
        if s["title"]:
            ax.set_title(s["title"], fontsize="medium")
        if self.legend:
            ax.legend()
        ax.grid(True, alpha=0.3)
        self.show()

    def png(self) -> bytes:
        """The plot as PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def show(self) -> None:
        """Show the plot in the notebook, replacing this animator's previous picture."""
        if self._ipython is None:
            return
        image = self._ipython.Image(data=self.png(), format="png")
        if self._handle is None:
            self._handle = self._ipython.display(image, display_id=True)
        else:
            self._handle.update(image)


def _progress_bar(start: int, total: int) -> Any:
    """A ``tqdm.auto`` bar over epochs (a widget in Jupyter); None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=start, unit="epoch")


def train_ch8(trainer: Trainer, num_epochs: int | None = None, *,
              prefixes: Sequence[str] = ("time traveller", "traveller"),
              yscale: str = "linear", **fit_kwargs: Any) -> Animator:
    """D2L's ``train_ch8`` for a notebook: ``trainer.fit(num_epochs, callback=...)`` with a
    live perplexity plot and progress bar, then D2L's closing lines. Other keyword
    arguments go to ``fit`` (``save_path``, ``metrics``, ``sample_every``, ...).

    Returns the :class:`Animator`, whose ``figure`` is the perplexity plot.
    """
    total = trainer.config.num_epochs if num_epochs is None else num_epochs
    cfg = trainer.config
    title = (f"{cfg.model.upper()}, h={cfg.num_hiddens}, "
             f"{cfg.num_layers} layer{'s' * (cfg.num_layers > 1)}"
             f"{', bidirectional' if cfg.bidirectional else ''}, on {trainer.model.backend}")
    animator = Animator(xlabel="epoch", ylabel="perplexity", legend=["train"],
                        xlim=[1, max(total, 2)], yscale=yscale, title=title)
    if trainer.history:  # a resumed run: the epochs it already has
        animator.X = [[s.epoch for s in trainer.history]]
        animator.Y = [[s.perplexity for s in trainer.history]]
        animator._draw()
    bar = _progress_bar(trainer.epoch, total)

    def callback(stats: EpochStats, sample: str | None) -> None:
        animator.add(stats.epoch, stats.perplexity)
        if bar is not None:
            bar.set_postfix(ppl=f"{stats.perplexity:.2f}", tok_s=f"{stats.tokens_per_sec:,.0f}")
            bar.update(1)

    fit_kwargs.setdefault("prefix", None)  # D2L samples at the end only (below)
    try:
        history = trainer.fit(total, callback=callback, **fit_kwargs)
    finally:
        if bar is not None:
            bar.close()
    if history:
        last = history[-1]
        print(f"perplexity {last.perplexity:.1f}, {last.tokens_per_sec:,.0f} tokens/sec on "
              f"{trainer.model.backend}")
    for prefix in prefixes:
        print(trainer.predict(prefix))
    return animator

"""Pictures: computation graphs (``to_dot`` writes Graphviz DOT, ``render`` draws it) and
a training run's perplexity curve (``perplexity_figure``, ``save_perplexity_plot``:
``tinygrad-rnn train --plot``, with matplotlib).

::

    import tinygrad_rnn as tg
    rnn = tg.nn.RNN(4, 3, fused=False)
    output, h_n = rnn(tg.Tensor(np.ones((3, 2, 4))))     # T=3 steps, N=2, d=4
    dot = tg.viz.to_dot(h_n, names=rnn)                  # names W_ih_l0, W_hh_l0, b_ih_l0...
    tg.viz.render(dot, "rnn.svg")                        # needs Graphviz's `dot`

The graph is the one autograd walks: one box per tensor (shape, dtype and
``requires_grad``), one ellipse per :class:`~tinygrad_rnn.autograd.Function`
(the op's class name: ``MatMul``, ``Add``, ``Tanh``, ...), and edges
input → op → output. Leaves that require grad (the parameters) are filled blue,
the root is drawn with a double border. Only tensors made while grad was enabled
and from at least one tensor requiring grad remember their op (``_ctx``); every
other tensor (inputs, constants, results under ``no_grad``) is drawn as a leaf.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._tensor import Tensor
from .autograd import Function, topological_order

__all__ = ["GraphvizNotFound", "graph", "perplexity_figure", "render",
           "save_perplexity_plot", "to_dot"]

FORMATS = ("svg", "png")
_PARAM_FILL = "#cfe2ff"  # leaves that require grad: what the optimizer updates
_OP_FILL = "#fff3cd"


class GraphvizNotFound(RuntimeError):
    """``render`` needs Graphviz's ``dot`` program and it is not on PATH."""


def graph(root: Tensor) -> tuple[list[Tensor], list[Function]]:
    """Every tensor and Function that ``root`` was computed from.

    Returns ``(tensors, functions)``, each input before whatever uses it: autograd's
    :func:`~tinygrad_rnn.autograd.topological_order`, but keeping the tensors that do
    not require grad (inputs, one-hot matrices), because a picture should show them,
    and numbering a Function's inputs in the order they are written.
    """
    tensors = topological_order(root, grad_only=False, first_input_first=True)
    return tensors, [t._ctx for t in tensors if t._ctx is not None]


def _names_from(names: Mapping[int, str] | Any | None) -> dict[int, str]:
    """``{id(tensor): name}`` from a mapping or from a Module's ``named_parameters``."""
    if names is None:
        return {}
    if hasattr(names, "named_parameters"):
        return {id(p): name for name, p in names.named_parameters()}
    labels = {}
    for key, name in dict(names).items():
        if isinstance(key, Tensor):  # {W_hh: "W_hh"} reads naturally: accept it too
            key = id(key)
        if not isinstance(key, int) or not isinstance(name, str):
            raise TypeError(
                f"names maps id(tensor) (or a Tensor) to a str, got {type(key).__name__} -> "
                f"{type(name).__name__}; e.g. names={{id(W_hh): 'W_hh'}}")
        labels[key] = name
    return labels


def _quote(text: str) -> str:
    """A DOT string literal; ``\\n`` inside ``text`` stays a DOT line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(t: Tensor) -> str:
    """``(3, 4)``, ``(4,)``, ``()``: Python's tuple notation."""
    return str(tuple(t.shape))


def _tensor_label(t: Tensor, name: str | None) -> str:
    lines = ([name] if name else []) + [f"{_shape(t)} {t.dtype}"]
    if t.requires_grad:
        lines.append("requires_grad")
    return "\n".join(lines)


def _op_label(fn: Function) -> str:
    label = type(fn).__name__
    nonlinearity = getattr(fn, "nonlinearity", None)  # RNNRecurrence: which φ
    return f"{label}\n{nonlinearity}" if isinstance(nonlinearity, str) else label


def to_dot(
    tensor: Tensor,
    names: Mapping[int, str] | Any | None = None,
    rankdir: str = "LR",
    title: str | None = None,
    compact: bool = False,
) -> str:
    """The computation graph behind ``tensor`` as Graphviz DOT text.

    ``names`` labels tensors: a ``{id(t): "W_hh"}`` mapping, or a Module, whose
    ``named_parameters()`` are used (``rnn.W_hh_l0``). ``rankdir`` is DOT's layout
    direction: ``"LR"`` (inputs on the left) or ``"TB"`` (inputs on top).
    ``title`` is drawn above the graph. With ``compact``, an intermediate tensor
    (made by an op, unnamed, not the root) is drawn as the edge from the op that
    made it, labelled with its shape, instead of as a box: half the nodes. Node
    ids are ``t0, t1, ...`` for tensors and ``f0, f1, ...`` for ops, numbered
    inputs first, so the text is stable.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot expects a Tensor, got {type(tensor).__name__}")
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"rankdir must be LR, RL, TB or BT, got {rankdir!r}")
    labels = _names_from(names)
    tensors, functions = graph(tensor)
    fid = {id(f): f"f{i}" for i, f in enumerate(functions)}
    # compact: an intermediate tensor is drawn as an edge, so it needs no id of its own
    hidden = {
        id(t)
        for t in tensors
        if compact and t._ctx is not None and t is not tensor and id(t) not in labels
    }
    shown = [t for t in tensors if id(t) not in hidden]
    tid = {id(t): f"t{i}" for i, t in enumerate(shown)}
    lines = [
        "digraph computation {",
        f"  rankdir={rankdir};",
        '  graph [fontname="Helvetica", fontsize=12];',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555", arrowsize=0.7];',
    ]
    if title:
        lines.append(f"  labelloc=t; label={_quote(title)};")
    for t in shown:
        attrs = [f"label={_quote(_tensor_label(t, labels.get(id(t))))}", "shape=box"]
        if t.is_leaf and t.requires_grad:
            attrs += ["style=filled", f'fillcolor="{_PARAM_FILL}"']
        if t is tensor:
            attrs.append("peripheries=2")
        lines.append(f"  {tid[id(t)]} [{', '.join(attrs)}];")
    for f in functions:
        lines.append(
            f"  {fid[id(f)]} [label={_quote(_op_label(f))}, shape=ellipse, "
            f'style=filled, fillcolor="{_OP_FILL}"];'
        )
    for t in tensors:
        if t._ctx is None:
            continue
        op = fid[id(t._ctx)]
        for inp in t._ctx.inputs:
            if id(inp) in hidden:  # op -> op, labelled with the tensor between them
                lines.append(f"  {fid[id(inp._ctx)]} -> {op} [label={_quote(_shape(inp))}];")
            else:
                lines.append(f"  {tid[id(inp)]} -> {op};")
        if id(t) not in hidden:
            lines.append(f"  {op} -> {tid[id(t)]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(
    tensor_or_dot: Tensor | str,
    path: str | Path,
    format: str | None = None,
    names: Mapping[int, str] | Any | None = None,
    timeout: float = 60.0,
    **to_dot_options: Any,
) -> Path:
    """Draw a graph (a Tensor, or DOT text from :func:`to_dot`) to ``path`` with ``dot``.

    ``format`` is ``"svg"`` or ``"png"``; by default the suffix of ``path``
    (else svg). For a Tensor, ``names`` and ``to_dot_options`` (``rankdir``,
    ``title``, ``compact``) go to :func:`to_dot`. ``dot`` lays out a graph in time
    that grows fast with its size (a 35-step composed RNN takes it half a minute, more
    with ``compact``); after ``timeout`` seconds it is stopped with a ``RuntimeError``.
    Raises :class:`GraphvizNotFound`, saying what to install, when ``dot`` is not on
    PATH, and ``RuntimeError`` with dot's message when it fails. Returns ``path``.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".") or "svg").lower()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if isinstance(tensor_or_dot, str):
        if names is not None or to_dot_options:
            raise ValueError("names and to_dot options apply to a Tensor, not to DOT text "
                             "(pass them to to_dot)")
        dot_text = tensor_or_dot
    else:
        dot_text = to_dot(tensor_or_dot, names, **to_dot_options)
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(
            "render() needs Graphviz's `dot` program, which is not on PATH. Install Graphviz "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; conda: "
            "conda install graphviz), or save to_dot()'s text to a .dot file and draw it "
            "elsewhere."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [exe, f"-T{fmt}", "-o", str(path)],
            input=dot_text.encode(),
            capture_output=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"dot took more than {timeout:g} s to lay out this graph "
            f"({dot_text.count(' -> ')} edges); draw fewer steps, or pass a larger timeout"
        ) from None
    if done.returncode != 0:
        raise RuntimeError(
            f"dot failed (exit {done.returncode}): {done.stderr.decode(errors='replace').strip()}"
        )
    return path


# ------------------------------------------------------------------ training curves
def perplexity_figure(history: Sequence[Any], title: str | None = None) -> Any:
    """A matplotlib Figure of perplexity per epoch; ``history`` holds records with
    ``epoch`` and ``perplexity`` (``Trainer.history``'s ``EpochStats``), ``title`` goes
    on top (the CLI puts the run's settings there). Needs matplotlib.

    A curve that falls by a decade or more (D2L's: from ~28 to ~1) is drawn on a log
    axis with ticks at 1, 2 and 5 times each power of ten, labelled as plain numbers
    (``20``, not ``2×10¹``): matplotlib's default labels only the powers, 1 and 10.
    A flatter curve (a resumed run near its end) gets a linear axis, which labels it
    where a log axis would show no tick at all.
    """
    import matplotlib
    import matplotlib.ticker as ticker

    matplotlib.use("Agg")  # a file, never a window (and no display needed)
    import matplotlib.pyplot as plt

    if not history:
        raise ValueError("perplexity_figure needs at least one epoch's record")
    epochs = [s.epoch for s in history]
    ppl = [s.perplexity for s in history]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(epochs, ppl, marker="." if len(history) < 30 else None)
    if len(history) == 1:  # one point: an axis one epoch each way, not 0.95 .. 1.05
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    ax.set_xlabel("epoch")
    # whole epochs, at round steps: 0, 100, ... 500, not 0, 60, ... 480
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
    if max(ppl) >= 10 * min(ppl):
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())  # the 3, 4, 6 ... unlabelled
        ax.set_ylabel("perplexity (log scale)")
    else:
        ax.set_ylabel("perplexity")
    ax.grid(True, which="major", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_perplexity_plot(history: Sequence[Any], path: str | Path,
                         title: str | None = None) -> Path:
    """:func:`perplexity_figure` as a PNG at ``path``, written atomically (a reader never
    sees half a picture; a device or FIFO at ``path`` is refused). Returns ``path``."""
    import matplotlib.pyplot as plt

    from .serialization import atomic_write

    fig = perplexity_figure(history, title)
    try:
        atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=120), suffix=".png")
    finally:
        plt.close(fig)
    return Path(path)

"""``tinygrad_rnn.viz``: the DOT text is well-formed and names the ops and shapes it should."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import viz

# One DOT statement per line, as to_dot writes them: a node, an edge, or a graph attribute.
NODE = re.compile(r'^  ([tf]\d+) \[label="((?:[^"\\]|\\.)*)"(, [a-z]+=(?:"[^"]*"|\w+))*\];$')
EDGE = re.compile(r'^  ([tf]\d+) -> ([tf]\d+)( \[label="[^"]*"\])?;$')
ATTR = re.compile(r'^  (rankdir=\w+|(graph|node|edge) \[.*\]|labelloc=t; label=".*");$')


def parse(dot: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Check the syntax line by line; return {node id: label} and the edges."""
    lines = dot.rstrip("\n").split("\n")
    assert lines[0] == "digraph computation {" and lines[-1] == "}"
    assert dot.count("{") == dot.count("}") == 1  # labels never contain braces here
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for line in lines[1:-1]:
        if m := NODE.match(line):
            assert m.group(1) not in nodes, f"node {m.group(1)} declared twice"
            nodes[m.group(1)] = m.group(2)
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            assert ATTR.match(line), f"not a DOT statement of to_dot's forms: {line!r}"
    for a, b in edges:
        assert a in nodes and b in nodes, f"edge {a} -> {b} names an undeclared node"
        assert a[0] != b[0] or a[0] == "f", "a tensor never feeds a tensor directly"
    return nodes, edges


def ops(nodes: dict[str, str]) -> list[str]:
    return sorted(label.split("\\n")[0] for nid, label in nodes.items() if nid[0] == "f")


#: The parameters of ``tg.nn.RNN(5, 3)`` and their shapes.
RNN_PARAMS = (("W_ih_l0", "(5, 3)"), ("W_hh_l0", "(3, 3)"), ("b_ih_l0", "(3,)"),
              ("b_hh_l0", "(3,)"))

#: The ops of one composed step drawn up to ``h_n``: H_1 = tanh(X W_ih + b_ih + H_0 W_hh +
#: b_hh) (2 MatMul, 3 Add, Tanh), the parameters used whole (the RNN has one gate block);
#: ``h_n`` stacks H_1 (Stack).
STEP_OPS = sorted(["MatMul"] * 2 + ["Add"] * 3 + ["Tanh", "Stack"])


def rnn_step():
    """One composed RNN step, H_1 = tanh(X W_ih + b_ih + H_0 W_hh + b_hh), N=2, d=5, h=3;
    returns the layer and h_n (1, 2, 3)."""
    tg.manual_seed(0)
    rnn = tg.nn.RNN(5, 3, fused=False)
    X = tg.Tensor(np.ones((1, 2, 5)))
    _, h_n = rnn(X)
    return rnn, h_n


def test_rnn_step_names_ops_shapes_and_parameters():
    rnn, H = rnn_step()
    dot = viz.to_dot(H, names=rnn)
    nodes, edges = parse(dot)
    assert ops(nodes) == STEP_OPS
    labels = list(nodes.values())
    for name, shape in RNN_PARAMS:
        (label,) = [lab for lab in labels if lab.startswith(name + "\\n")]
        assert f"{shape} float32" in label and "requires_grad" in label
    assert any(lab.startswith("(2, 5) float32") for lab in labels)  # X_1, no grad
    assert sum("(2, 3) float32" in lab for lab in labels) >= 4  # the step's results
    assert sum(lab.startswith("(1, 2, 3) float32") for lab in labels) == 1  # h_n
    # 7 ops, each one output edge; inputs: MatMul and Add 2, Tanh and Stack 1
    assert len(edges) == (2 * 2 + 3 * 2 + 1 + 1) + 7


def test_parameters_are_highlighted_and_root_marked():
    rnn, H = rnn_step()
    dot = viz.to_dot(H, names=rnn)
    filled = [line for line in dot.splitlines() if "fillcolor" in line and "box" in line]
    assert len(filled) == 4
    for name, _ in RNN_PARAMS:  # each parameter is one highlighted box
        assert sum(f'label="{name}\\n' in line for line in filled) == 1, name
    roots = [line for line in dot.splitlines() if "peripheries=2" in line]
    assert len(roots) == 1 and "(1, 2, 3) float32" in roots[0]  # h_n


def test_names_mapping_and_escaping():
    a = tg.Tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    dot = viz.to_dot(b, names={id(a): 'say "hi"\\now'})
    nodes, _ = parse(dot)
    assert any(label.startswith('say \\"hi\\"\\\\now') for label in nodes.values())


def test_fused_rnn_is_one_recurrence_op():
    tg.manual_seed(0)
    rnn = tg.nn.RNN(5, 3, fused=True, nonlinearity="relu")
    outputs, h_n = rnn(tg.Tensor(np.ones((4, 2, 5))))
    nodes, _ = parse(viz.to_dot(outputs, names=rnn))
    # the input GEMM (MatMul, Reshape), b_ih + b_hh added to it (2 Add), then all 4 steps
    # in one op: no per-step Relu, MatMul or Add
    assert ops(nodes) == ["Add", "Add", "MatMul", "RNNRecurrence", "Reshape"]
    assert any(label == "RNNRecurrence\\nrelu" for label in nodes.values())
    # h_n is the recurrence's last step (GetItem), stacked into (1, N, H) (Stack)
    nodes, _ = parse(viz.to_dot(h_n, names=rnn))
    assert ops(nodes) == sorted(["Add", "Add", "MatMul", "RNNRecurrence", "Reshape",
                                 "GetItem", "Stack"])


def test_compact_draws_intermediates_as_labelled_edges():
    rnn, H = rnn_step()
    full, _ = parse(viz.to_dot(H, names=rnn))
    dot = viz.to_dot(H, names=rnn, compact=True, rankdir="TB")
    nodes, edges = parse(dot)
    assert ops(nodes) == ops(full)
    tensors = [nid for nid in nodes if nid[0] == "t"]
    assert len(tensors) == 7  # X_1, W_ih_l0, b_ih_l0, H_0, W_hh_l0, b_hh_l0, the root h_n
    assert "f0 -> f" in dot and 'label="(2, 3)"' in dot
    assert "rankdir=TB;" in dot


def test_leaf_and_no_grad_results_are_single_nodes():
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = (x * 3).tanh()
    nodes, edges = parse(viz.to_dot(y))
    assert list(nodes) == ["t0"] and not edges


def test_deep_graph_needs_no_recursion():
    x = tg.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(3000):  # 3,000 ops deep: more than the default recursion limit
        y = y * 1.0
    nodes, edges = parse(viz.to_dot(y))
    assert len(ops(nodes)) == 3000


def test_bad_arguments():
    with pytest.raises(TypeError, match="Tensor"):
        viz.to_dot(np.ones(3))
    with pytest.raises(ValueError, match="rankdir"):
        viz.to_dot(tg.Tensor([1.0]), rankdir="up")
    with pytest.raises(ValueError, match="format"):
        viz.render("digraph computation {\n}\n", "graph.pdf")


def test_render_without_dot_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    _, H = rnn_step()
    with pytest.raises(viz.GraphvizNotFound, match="graphviz") as info:
        viz.render(H, tmp_path / "graph.svg")
    assert "apt-get install graphviz" in str(info.value) and "`dot`" in str(info.value)
    assert not (tmp_path / "graph.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_dot_accepts_the_text_and_render_writes_files(tmp_path):
    rnn, H = rnn_step()
    dot = viz.to_dot(H, names=rnn, title="one step")
    done = subprocess.run(["dot", "-Tcanon"], input=dot.encode(), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    svg = viz.render(dot, tmp_path / "step.svg")
    assert "<svg" in svg.read_text()
    png = viz.render(H, tmp_path / "step.png", names=rnn)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_names_keyed_by_tensor_and_bad_names():
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).sum()
    assert '"W\\n' in viz.to_dot(y, names={x: "W"})
    with pytest.raises(TypeError, match=r"names maps id\(tensor\) .*str -> Tensor"):
        viz.to_dot(y, names={"W": x})


def test_render_passes_options_and_refuses_them_for_dot_text(tmp_path):
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(ValueError, match="apply to a Tensor, not to DOT text"):
        viz.render(viz.to_dot(y), tmp_path / "g.svg", compact=True)
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    with pytest.raises(RuntimeError, match=r"dot took more than 1e-06 s .*larger timeout"):
        viz.render(y, tmp_path / "g.svg", timeout=1e-6, title="t")
    assert viz.render(y, tmp_path / "g.svg", title="doubled").read_text().count("doubled") >= 1


# ================================================================ DOT ids, options, render
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


# ------------------------------------------------------------------ training curves
def curve(perplexities) -> list:
    """Records as Trainer.history holds them (epoch, perplexity), epochs from 1."""
    from tinygrad_rnn.charlm import EpochStats

    return [EpochStats(e, float(p), 1.0, 1.0) for e, p in enumerate(perplexities, start=1)]


def labelled_y_ticks(fig) -> list[str]:
    """The y tick labels drawn inside the axis' range, major and minor."""
    ax = fig.axes[0]
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    labels = []
    for minor in (False, True):
        locs = ax.yaxis.get_minorticklocs() if minor else ax.yaxis.get_majorticklocs()
        fmt = ax.yaxis.get_minor_formatter() if minor else ax.yaxis.get_major_formatter()
        fmt.set_locs(locs)
        labels += [fmt(v, i) for i, v in enumerate(locs) if lo <= v <= hi]
    return [label for label in labels if label]


def test_a_500_epoch_curve_gets_plain_ticks_at_1_2_5_a_title_and_labelled_axes():
    """catches: matplotlib's log axis labelling only 1 and 10 for D2L's 500 epochs (from
    ~28 down to ~1.03); catches: 2×10¹ where 20 reads better."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    ppl = 1.03 + 27 * np.exp(-np.arange(500) / 40)
    fig = viz.perplexity_figure(curve(ppl), title="RNN, h=512, numba")
    try:
        ax = fig.axes[0]
        assert ax.get_yscale() == "log"
        assert labelled_y_ticks(fig) == ["1", "2", "5", "10", "20"]
        assert ax.get_title() == "RNN, h=512, numba"
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "perplexity (log scale)"
        assert ax.get_xlim()[0] <= 1 and ax.get_xlim()[1] >= 500
        assert [t for t in ax.get_xticks() if 1 <= t <= 500] == [100, 200, 300, 400, 500]
    finally:
        plt.close(fig)


def test_a_flat_curve_gets_a_linear_axis_with_labels():
    """A resumed run's last epochs (1.2 down to 1.05) lie between two powers of ten: a log
    axis there would carry no label at all."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    fig = viz.perplexity_figure(curve(np.linspace(1.2, 1.05, 40)))
    try:
        assert fig.axes[0].get_yscale() == "linear"
        assert len(labelled_y_ticks(fig)) >= 3
        assert fig.axes[0].get_ylabel() == "perplexity" and fig.axes[0].get_title() == ""
    finally:
        plt.close(fig)


def test_save_perplexity_plot_writes_a_png_and_refuses_an_empty_history(tmp_path):
    pytest.importorskip("matplotlib")
    png = viz.save_perplexity_plot(curve([20.0, 9.0, 3.5]), tmp_path / "ppl.png", "a title")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ppl.png"]  # no temporary left
    with pytest.raises(ValueError, match="at least one epoch"):
        viz.perplexity_figure([])

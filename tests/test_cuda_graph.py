"""The training step replayed from a CUDA graph (``Trainer(cuda_graph=True)``).

Everywhere: ``GraphedStep``'s own logic (static buffers, the carried state, when
to record again, its errors) on NumPy, with a stand-in recorder. A CUDA graph
replays the recorded kernels on the same device arrays and runs nothing while it is
being recorded; the stand-in does just that to NumPy arrays (a replay reruns the
body, recording runs nothing), so graphed training must match eager training bit
for bit there. On a GPU (marked ``cupy``): the same against CuPy's real graphs.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import backend_params
from helpers import close_to_ulps, rnn_inputs
from tinygrad_rnn.backends import no_read_back

import tinygrad_rnn as tg
from tinygrad_rnn.charlm import cli
from tinygrad_rnn.charlm.cuda_graph import GraphedStep
from tinygrad_rnn.charlm.model import RNNLM, detach_state
from tinygrad_rnn.charlm.train import TrainConfig, Trainer, TrainingDiverged
from tinygrad_rnn.nn.functional import _as_indices


def config(**overrides) -> TrainConfig:
    base = dict(num_hiddens=16, num_epochs=3, batch_size=4, num_steps=8, max_tokens=600)
    return TrainConfig(**{**base, **overrides})


class Rerun:
    """A CUDA graph's effect on arrays, on the CPU: recording runs nothing, a replay
    runs the recorded body again."""

    def __init__(self) -> None:
        self.recordings = 0

    def __call__(self, body):
        self.recordings += 1
        return body


@pytest.fixture
def rerun(monkeypatch) -> Rerun:
    """The numpy backend, recording graphs with :class:`Rerun` for this test."""
    recorder = Rerun()
    numpy_backend = tg.backends.get("numpy")
    monkeypatch.setattr(numpy_backend, "records_graphs", True)
    monkeypatch.setattr(numpy_backend, "record_graph", recorder, raising=False)
    return recorder


def params(trainer: Trainer) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in trainer.model.state_dict().items()}


#: Every cell kind and layout the graph must capture: the state a tensor (D·L, N, h), or
#: an LSTM's tuple (H, C).
MODELS = {"rnn": {}, "gru": {"model": "gru"}, "lstm": {"model": "lstm"},
          "deep-bi-lstm": {"model": "lstm", "num_layers": 2, "bidirectional": True},
          "deep-gru": {"model": "gru", "num_layers": 2}}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("random_iter", [False, True], ids=["sequential", "random"])
def test_graphed_training_matches_eager_bit_for_bit(corpus, rerun, random_iter, model):
    cfg = config(use_random_iter=random_iter, **MODELS[model])
    eager = Trainer.create(cfg, corpus, "numpy", cuda_graph=False)
    graphed = Trainer.create(cfg, corpus, "numpy", cuda_graph=True)
    for _ in range(2):
        a, b = eager.train_epoch(), graphed.train_epoch()
        assert a.perplexity == b.perplexity
    assert rerun.recordings == 1  # step 1 ran eagerly, step 2 recorded, the rest replayed
    for name, value in params(eager).items():
        np.testing.assert_array_equal(params(graphed)[name], value, err_msg=name)


class HostGuard:
    """NumPy as a backend's ``xp``, failing while ``inside[0]`` on making an array of
    host data (a Python scalar or list). On a GPU that is an upload, which a CUDA
    graph cannot record (CuPy stages it in pinned memory and waits on an event), or
    for a scalar a fill kernel the step need not launch. NumPy scalars pass: they are
    what a reduction returns on NumPy, a device array on a GPU."""

    def __init__(self, inside: list[bool]) -> None:
        self.inside = inside

    def __getattr__(self, name):
        return getattr(np, name)

    def _check(self, data) -> None:
        assert not (self.inside[0] and not isinstance(data, (np.ndarray, np.generic))), (
            f"the recorded step uploaded host data: {data!r}")

    def asarray(self, data, *args, **kwargs):
        self._check(data)
        return np.asarray(data, *args, **kwargs)

    def array(self, data, *args, **kwargs):
        self._check(data)
        return np.array(data, *args, **kwargs)


@pytest.mark.parametrize("model", ["rnn", "deep-bi-lstm", "deep-gru"])
def test_the_recorded_step_never_reads_back_nor_uploads(corpus, rerun, monkeypatch, model):
    """Neither can be recorded in a CUDA graph: each waits on the GPU, or on an event
    recorded with it, which CuPy refuses while capturing. Here every read-back of the
    numpy backend (``to_numpy``: ``.numpy()``, ``.item()``, ``float()`` of a tensor,
    the device-side index check) and every array made of host data fails while the
    step's body runs."""
    numpy_backend, inside = tg.backends.get("numpy"), [False]
    to_numpy = numpy_backend.to_numpy

    def guarded(array):
        assert not inside[0], "the recorded step read an array back to the host"
        return to_numpy(array)

    body = GraphedStep._body

    def watched(self):
        inside[0] = True
        try:
            body(self)
        finally:
            inside[0] = False

    monkeypatch.setattr(numpy_backend, "to_numpy", guarded)
    monkeypatch.setattr(numpy_backend, "xp", HostGuard(inside))
    monkeypatch.setattr(GraphedStep, "_body", watched)
    trainer = Trainer.create(config(**MODELS[model]), corpus, "numpy", cuda_graph=True)
    trainer.train_epoch()
    assert rerun.recordings == 1
    monkeypatch.setattr(GraphedStep, "_body", body)  # the guards themselves can fail:
    inside[0] = True
    x = tg.Tensor([1.0], backend="numpy")
    with pytest.raises(AssertionError, match="read an array back"):
        x.item()
    with pytest.raises(AssertionError, match="uploaded host data: 2"):
        x * 2


def test_graph_is_recorded_again_when_what_it_baked_in_changes(corpus, rerun):
    eager = Trainer.create(config(), corpus, "numpy", cuda_graph=False)
    graphed = Trainer.create(config(), corpus, "numpy", cuda_graph=True)
    eager.train_epoch(), graphed.train_epoch()
    for trainer in (eager, graphed):  # new parameter arrays, same values
        trainer.model.load_state_dict(trainer.model.state_dict())
    assert eager.train_epoch().perplexity == graphed.train_epoch().perplexity
    assert rerun.recordings == 2
    for trainer in (eager, graphed):
        trainer.optimizer.lr = 0.5
    assert eager.train_epoch().perplexity == graphed.train_epoch().perplexity
    assert rerun.recordings == 3
    graphed.train_epoch()
    assert rerun.recordings == 3  # nothing changed: replayed


@pytest.mark.parametrize("cuda_graph", [False, True], ids=["eager", "graphed"])
def test_divergence_names_the_step_where_the_loss_first_broke(corpus, rerun, cuda_graph):
    trainer = Trainer.create(config(), corpus, "numpy", cuda_graph=cuda_graph)
    step, calls = trainer._step, []

    def poisoned(*args):
        calls.append(None)
        if len(calls) == 3:
            trainer.model.W_hq.data[...] = np.nan  # in place: the graph sees it
        return step(*args)

    trainer._step = poisoned
    if cuda_graph:  # the graph wraps the step it was built with
        trainer.graphed_step._step = poisoned
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 3: the loss is nan"):
        trainer.train_epoch()


def test_the_graphed_step_checks_its_input_on_the_host(corpus, rerun):
    trainer = Trainer.create(config(), corpus, "numpy", cuda_graph=True)
    step, V = trainer.graphed_step, len(trainer.vocab)
    X = np.zeros((4, 8), dtype=np.int64)
    with pytest.raises(ValueError, match=r"shape \(4, 8\), got \(4, 7\)"):
        step(X[:, :7], X[:, :7], fresh=True)
    with pytest.raises(TypeError, match="token ids must be integers, got float64"):
        step(X.astype(float), X, fresh=True)
    with pytest.raises(IndexError, match=rf"targets out of range: .*\[0, {V - 1}\]"):
        step(X, X + V, fresh=True)
    with pytest.raises(IndexError, match=r"token ids out of range: values span \[-1, 0\]"):
        step(X - np.eye(4, 8, dtype=np.int64), X, fresh=True)


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_graphed_step_carries_the_state_unless_fresh(corpus, rerun, model):
    """``fresh=False`` goes on from the state the call before left (an LSTM's H and C);
    ``fresh`` from zeros."""
    eager = Trainer.create(config(**MODELS[model]), corpus, "numpy", cuda_graph=False)
    graphed = Trainer.create(config(**MODELS[model]), corpus, "numpy", cuda_graph=True)
    state = None
    for (X, Y), fresh in zip(list(eager.loader)[:4], [True, False, True, False], strict=True):
        state = eager.model.begin_state(X.shape[0]) if fresh else detach_state(state)
        loss, state = eager.train_step(X, Y, state)
        assert float(graphed.graphed_step(X, Y, fresh)) == float(loss)
    assert rerun.recordings == 1


def test_dropout_trains_eagerly_and_refuses_a_graph_with_the_reason(corpus, rerun):
    """Dropout masks are drawn on the host (an upload a graph cannot record), and a
    replay would reuse one mask: by default such a run trains eagerly."""
    cfg = config(model="gru", num_layers=2, dropout=0.2)
    assert Trainer.create(cfg, corpus, "numpy").graphed_step is None
    with pytest.raises(ValueError, match=r"cannot replay dropout \(p = 0.2\)"):
        Trainer.create(cfg, corpus, "numpy", cuda_graph=True)
    model = RNNLM(5, 4, model="gru", num_layers=2, dropout=0.2)
    assert not GraphedStep.can_record(tg.optim.SGD(model.parameters(), lr=0.1), model)
    # without the model, the dropout is not known
    assert GraphedStep.can_record(tg.optim.SGD(model.parameters(), lr=0.1))


def test_a_failed_recording_says_how_to_train_without_the_graph(corpus, monkeypatch):
    """What CuPy refuses while it records (a cuBLAS call, an upload) fails the recording
    with the backend's error; the step adds the way out."""
    def refuse(body):
        raise tg.backends.BackendError("recording a CUDA graph failed: RuntimeError: cuBLAS")

    numpy_backend = tg.backends.get("numpy")
    monkeypatch.setattr(numpy_backend, "records_graphs", True)
    monkeypatch.setattr(numpy_backend, "record_graph", refuse, raising=False)
    trainer = Trainer.create(config(model="lstm"), corpus, "numpy")
    with pytest.raises(tg.backends.BackendError, match="cuBLAS; train without the graph: "
                                                       "--no-cuda-graph"):
        trainer.train_epoch()  # step 1 eager, step 2 records


def test_a_cpu_backend_or_adam_is_refused_with_the_reason(corpus):
    with pytest.raises(ValueError, match=r"needs backend 'cupy'; this model is on 'numba'"):
        Trainer.create(config(), corpus, "numba", cuda_graph=True)
    with pytest.raises(ValueError, match=r"SGD; Adam keeps its step count on the host"):
        Trainer.create(config(optimizer="adam"), corpus, "numpy", cuda_graph=True)


@pytest.mark.parametrize("extra", [{"momentum": 0.9}, {"weight_decay": 1e-4}])
def test_sgd_with_momentum_or_weight_decay_is_refused(extra):
    model = RNNLM(5, 4)
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1, **extra)
    with pytest.raises(ValueError, match=f"replays plain SGD.*{next(iter(extra))}"):
        GraphedStep(lambda *a: a, model, optimizer, (2, 3), 5, record=lambda body: body)
    plain = tg.optim.SGD(model.parameters(), lr=0.1)
    graphed = GraphedStep(lambda *a: a, model, plain, (2, 3), 5, record=lambda body: body)
    plain.load_state_dict(optimizer.state_dict())  # as a resumed checkpoint would
    with pytest.raises(ValueError, match=f"replays plain SGD.*{next(iter(extra))}"):
        graphed(np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64), fresh=True)


def test_the_graph_is_on_by_default_where_it_can_be(corpus, rerun, monkeypatch):
    """None (the default) means: a graph on a backend that records them with plain SGD;
    otherwise eager, without complaint."""
    assert Trainer.create(config(), corpus, "numba").graphed_step is None
    auto = Trainer.create(config(), corpus, "numpy")  # numpy records here (rerun)
    assert auto.cuda_graph is True and auto.graphed_step is not None
    adam = Trainer.create(config(optimizer="adam"), corpus, "numpy")
    assert adam.cuda_graph is False and adam.graphed_step is None
    model = RNNLM(5, 4, backend="numpy")
    for extra in ({"momentum": 0.9}, {"weight_decay": 1e-4}, {}):
        optimizer = tg.optim.SGD(model.parameters(), lr=0.1, **extra)
        assert GraphedStep.can_record(optimizer) == (not extra)
    monkeypatch.setattr(tg.backends.get("numpy"), "records_graphs", False)
    assert not GraphedStep.can_record(tg.optim.SGD(model.parameters(), lr=0.1))


def test_by_default_a_resumed_momentum_run_trains_eagerly(corpus, rerun, tmp_path):
    """The optimizer state a checkpoint brings decides: SGD with momentum (from the API)
    resumes eagerly by default, and refuses an explicit graph at once."""
    trainer = Trainer.create(config(), corpus, "numpy", cuda_graph=False)
    trainer.optimizer = tg.optim.SGD(trainer.model.parameters(), lr=0.5, momentum=0.9)
    trainer.train_epoch()
    path = trainer.save(tmp_path / "momentum.npz")
    resumed = Trainer.resume(path, corpus, "numpy")
    assert resumed.optimizer.momentum == 0.9
    assert resumed.cuda_graph is False and resumed.graphed_step is None
    assert np.isfinite(resumed.train_epoch().perplexity)
    with pytest.raises(ValueError, match=r"replays plain SGD .*this SGD has momentum=0.9"):
        Trainer.resume(path, corpus, "numpy", cuda_graph=True)
    plain = Trainer.create(config(), corpus, "numpy", cuda_graph=False)
    plain.train_epoch()
    assert Trainer.resume(plain.save(tmp_path / "plain.npz"), corpus, "numpy").cuda_graph


def test_by_default_float16_trains_eagerly(corpus, rerun):
    """The cupy backend's kernels take float32 and float64; float16 falls back to code
    that calls cuBLAS, which a recording refuses."""
    assert Trainer.create(config(dtype="float16"), corpus, "numpy").graphed_step is None
    with pytest.raises(ValueError, match="float32/float64 kernels; this model is float16"):
        Trainer.create(config(dtype="float16"), corpus, "numpy", cuda_graph=True)


@pytest.mark.parametrize(("flags", "recordings"), [([], 1), (["--no-cuda-graph"], 0),
                                                   (["--cuda-graph"], 1)])
def test_cli_records_by_default_and_not_with_no_cuda_graph(corpus, rerun, flags, recordings):
    assert cli.main(["train", "--backend", "numpy", *flags, "--data", corpus, "--epochs", "1",
                     "--hidden", "8", "--batch-size", "4", "--num-steps", "8",
                     "--max-tokens", "600", "--quiet"]) == 0
    assert rerun.recordings == recordings


def test_cli_names_the_problem_with_cuda_graph_on_the_cpu(corpus, capsys):
    code = cli.main(["train", "--backend", "numpy", "--cuda-graph", "--data", corpus,
                     "--epochs", "1", "--hidden", "8", "--batch-size", "4", "--num-steps", "8",
                     "--max-tokens", "600", "--quiet"])
    assert code == 2
    assert "needs backend 'cupy'" in capsys.readouterr().err


def test_no_read_back_skips_only_the_tensor_check():
    ids = tg.Tensor(np.array([0, 5]), backend="numpy")
    with pytest.raises(IndexError, match=r"span \[0, 5\] but must lie in \[0, 3\]"):
        _as_indices(ids, 4, "ids")
    with no_read_back():
        assert _as_indices(ids, 4, "ids") is ids
        with pytest.raises(IndexError):  # host data is still checked: that costs nothing
            _as_indices(np.array([0, 5]), 4, "ids")
    with pytest.raises(IndexError):
        _as_indices(ids, 4, "ids")


# ================================================================ an explicit recorder
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


# ====================================================================== on a GPU
ref = tg.backends.get("numpy")

@pytest.fixture(params=backend_params(["cupy"]))
def gpu(request):
    return tg.backends.get(request.param)


def test_a_recorded_graph_replays_on_the_same_memory(gpu):
    import cupy

    x = cupy.arange(4, dtype=cupy.float32)
    y = cupy.full(4, -1, dtype=cupy.float32)

    def body():
        t = x + 1  # a temporary from the graph's own pool
        cupy.multiply(t, 2, out=y)

    replay = gpu.record_graph(body)
    gpu.synchronize()
    np.testing.assert_array_equal(y.get(), [-1, -1, -1, -1])  # recording runs nothing
    replay()
    np.testing.assert_array_equal(y.get(), [2, 4, 6, 8])
    x[...] = 5  # a replay reads the inputs as they are now
    replay()
    np.testing.assert_array_equal(y.get(), [12, 12, 12, 12])


# (a shape, b shape, how a is laid out): 2-D, edges of the 64 x 64 tiles, K not a
# multiple of 16, transposed and reversed views, broadcast batch axes, and K split
# into chunks (few tiles, long K: dW_hq and dW_hh at D2L's sizes, a batch of them)
GEMM_CASES = [
    ((1, 1), (1, 1), "c"),
    ((70, 33), (33, 129), "c"),
    ((64, 16), (16, 64), "c"),
    ((65, 17), (17, 3), "reversed"),
    ((3, 1, 5, 7), (4, 7, 2), "c"),
    ((2, 40, 9), (9, 66), "transposed"),
    ((512, 1120), (1120, 28), "transposed"),
    ((512, 1120), (1120, 512), "transposed"),
    ((3, 20, 300), (300, 5), "c"),
]


def gemm_operand(rng, shape, layout, dtype, xp):
    """A ``shape`` array laid out as a C array, a transposed view or a reversed view."""
    if layout == "transposed":  # the last two axes swapped: strides (1, M) in a matrix
        data = rng.uniform(-1, 1, (*shape[:-2], shape[-1], shape[-2])).astype(dtype)
        return xp.asarray(data).swapaxes(-1, -2)
    data = rng.uniform(-1, 1, shape).astype(dtype)
    return xp.asarray(data)[..., ::-1, :] if layout == "reversed" else xp.asarray(data)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("a_shape", "b_shape", "layout"), GEMM_CASES, ids=str)
def test_the_graphs_gemm_matches_numpy(gpu, a_shape, b_shape, layout, dtype):
    """tiled_matmul, the GEMM a graph records instead of cuBLAS, against NumPy's:
    each element sums K products, each rounding adds at most about one ε."""
    rng = np.random.default_rng(sum(a_shape) + len(layout))
    a = gemm_operand(rng, a_shape, layout, dtype, gpu.xp)
    b = gemm_operand(rng, b_shape, "c", dtype, gpu.xp)
    got = gpu.tiled_matmul(a, b)
    close_to_ulps(got.get(), a.get() @ b.get(), terms=a_shape[-1])


def test_the_graphs_gemm_handles_empty_operands_and_refuses_what_it_cannot_do(gpu):
    xp = gpu.xp
    zeros = gpu.tiled_matmul(xp.ones((3, 0)), xp.ones((0, 4)))  # K = 0: a sum of nothing
    np.testing.assert_array_equal(zeros.get(), np.zeros((3, 4)))
    assert gpu.tiled_matmul(xp.ones((0, 2)), xp.ones((2, 4))).shape == (0, 4)
    with pytest.raises(tg.backends.BackendError, match="float32/float64 matrices of one"):
        gpu.tiled_matmul(xp.ones((2, 2), dtype=np.int64), xp.ones((2, 2), dtype=np.int64))
    with pytest.raises(tg.backends.BackendError, match="of one dtype"):
        gpu.tiled_matmul(xp.ones((2, 2), dtype=np.float32), xp.ones((2, 2)))
    with pytest.raises(tg.backends.BackendError, match="do not align"):
        gpu.tiled_matmul(xp.ones((2, 3)), xp.ones((2, 3)))
    with pytest.raises(tg.backends.BackendError, match="C-contiguous"):
        gpu.tiled_matmul(xp.ones((2, 3)), xp.ones((3, 4)), out=xp.empty((4, 2)).T)


@pytest.mark.parametrize("strategy", ["loop", "rows"])
def test_a_recorded_recurrence_and_matmul_replay_numpys_numbers(gpu, strategy):
    """The GEMMs of a recorded step (MatMul, and the recurrence's per-step and dW_hh
    GEMMs with ``out=``) run on tg_gemm there; replayed, they give NumPy's results."""
    xp, T, N, h = gpu.xp, 5, 3, 20
    Zx, H0, W = rnn_inputs(T, N, h, np.float64, seed=3, scale=1.5)
    dH = np.random.default_rng(4).normal(size=(T, N, h))
    inputs = [xp.asarray(a) for a in (Zx, H0, W, dH)]
    results = {}

    def body():
        H = gpu.rnn_forward(*inputs[:3], "tanh")
        results["H"], results["grads"] = H, gpu.rnn_backward(inputs[3], H, *inputs[1:3], "tanh")
        results["HW"] = gpu.matmul(H, inputs[2])  # batched: (T, N, h) @ (h, h)

    gpu.rnn_strategy = strategy
    try:
        replay = gpu.record_graph(body)
    finally:
        gpu.rnn_strategy = None
    replay()
    H = ref.rnn_forward(Zx, H0, W, "tanh")
    for got, want in zip(
        (results["H"], *results["grads"], results["HW"]),
        (H, *ref.rnn_backward(dH, H, H0, W, "tanh"), H @ W),
        strict=True,
    ):
        close_to_ulps(got.get(), want, terms=T * N * h)


@pytest.mark.parametrize("what", ["read-back", "upload"])
def test_recording_a_read_back_or_upload_fails_clearly_and_leaves_cupy_usable(gpu, what):
    """A replayed upload would copy from a pinned host buffer long since reused; CuPy's
    wait on that buffer's event cannot be recorded, so the recording fails instead."""
    import cupy

    x = cupy.ones(4, dtype=cupy.float32)
    body = {"read-back": lambda: float(x.sum()),
            "upload": lambda: cupy.asarray(np.arange(4, dtype=np.float32))}[what]
    with pytest.raises(tg.backends.BackendError, match="recording a CUDA graph failed"):
        gpu.record_graph(body)
    assert float((x * 3).sum()) == 12.0
    assert not gpu._recording  # GEMMs are cuBLAS's again


def test_an_interrupted_recording_ends_and_leaves_cupy_usable(gpu):
    import cupy

    def body():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gpu.record_graph(body)
    assert not gpu._recording
    a = cupy.ones((3, 4), dtype=cupy.float32)
    assert float(gpu.matmul(a, a.T).sum()) == 36.0


def test_the_graphs_gemm_sums_a_k_near_2_to_the_31(gpu):
    """K = 2³¹ - 1 (one row by one column, both broadcast from a single 1.0): the chunk
    bounds of the split K pass 2³¹ and must not wrap. Every partial sum is an integer
    below 2⁵³, so float64 gets it exactly."""
    xp, K = gpu.xp, 2**31 - 1
    one = xp.ones((1, 1))
    got = gpu.tiled_matmul(xp.broadcast_to(one, (1, K)), xp.broadcast_to(one, (K, 1)))
    assert float(got[0, 0]) == K


@pytest.mark.parametrize(("dtype", "model"), [("float64", "rnn"), ("float32", "rnn"),
                                             ("float64", "lstm"), ("float64", "deep-bi-lstm"),
                                             ("float64", "deep-gru")])
def test_graphed_training_on_the_gpu_matches_eager(gpu, corpus, dtype, model):
    """Two epochs (step 1 eager, step 2 recorded, then replays) against eager CuPy,
    with eager work between them.

    The kernels are the same but for two, which add in another order: ``cupy.add.at``
    (the backward of the row lookup of W_xh, atomic adds in a varying order), and the
    GEMMs, cuBLAS when eager and tg_gemm in the graph, each element a sum of at most
    max(T·N, h, V) = 32 products. float64: 1e-9 is far above that. float32: the order
    changes such a sum by ≲ 32·ε of its scale, and k = 36 SGD steps with lr 1 and
    clipped norm ≤ 1 add those up: ``k·32·ε32`` absolute, for parameters of order
    0.01–1. The GRU and LSTM (float64) check that every cell kind is recorded: their
    recurrences' GEMMs too must run on tg_gemm while a graph records.
    """
    cfg = config(dtype=dtype, **MODELS[model])
    eager = Trainer.create(cfg, corpus, "cupy", cuda_graph=False)
    graphed = Trainer.create(cfg, corpus, "cupy")  # the default there
    assert graphed.graphed_step is not None
    steps = 0
    for _ in range(2):
        a, b = eager.train_epoch(), graphed.train_epoch()
        steps += len(eager.loader)
        # eager cuBLAS work between replays (the CLI predicts every 10 epochs): it must
        # not disturb what the graph recorded (cuBLAS's workspace, the memory pools)
        graphed.predict("the", 5)
        if dtype == "float64":
            np.testing.assert_allclose(b.perplexity, a.perplexity, rtol=1e-9)
        else:
            np.testing.assert_allclose(b.perplexity, a.perplexity, rtol=steps * 32 * 1.2e-7)
    tol = 1e-9 if dtype == "float64" else steps * 32 * np.finfo(np.float32).eps
    for name, value in params(eager).items():
        np.testing.assert_allclose(params(graphed)[name], value, rtol=tol, atol=tol, err_msg=name)


def test_graphed_step_never_waits_for_the_gpu(gpu, corpus):
    """Once recorded, a step (two copies in, a launch) returns while the GPU is busy."""
    import cupy

    trainer = Trainer.create(config(), corpus, "cupy", cuda_graph=True)
    batches = list(trainer.loader)
    for X, Y in batches[:3]:  # eager, recorded, replayed
        trainer.graphed_step(X, Y, fresh=False)
    a = cupy.ones((4096, 4096), dtype=np.float32)
    for _ in range(100):  # some tens of milliseconds of GEMMs queued
        cupy.matmul(a, a)
    marker = cupy.cuda.Event()
    marker.record()
    trainer.graphed_step(*batches[3], fresh=False)
    pending = not marker.done
    gpu.synchronize()
    assert pending, "the graphed step waited for the GPU"

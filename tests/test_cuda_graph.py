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

import tinygrad_rnn as tg
from tinygrad_rnn import cli
from tinygrad_rnn.cuda_graph import GraphedStep
from tinygrad_rnn.model import RNNLM
from tinygrad_rnn.nn.functional import _as_indices, prechecked_indices
from tinygrad_rnn.train import TrainConfig, Trainer, TrainingDiverged


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


@pytest.mark.parametrize("random_iter", [False, True], ids=["sequential", "random"])
def test_graphed_training_matches_eager_bit_for_bit(corpus, rerun, random_iter):
    cfg = config(use_random_iter=random_iter)
    eager = Trainer.create(cfg, corpus, "numpy")
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


def test_the_recorded_step_never_reads_back_nor_uploads(corpus, rerun, monkeypatch):
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
    trainer = Trainer.create(config(), corpus, "numpy", cuda_graph=True)
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
    eager = Trainer.create(config(), corpus, "numpy")
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


def test_graphed_step_carries_the_state_unless_fresh(corpus, rerun):
    """``fresh=False`` goes on from the H_T of the call before; ``fresh`` from zeros."""
    eager = Trainer.create(config(), corpus, "numpy")
    graphed = Trainer.create(config(), corpus, "numpy", cuda_graph=True)
    state = None
    for (X, Y), fresh in zip(list(eager.loader)[:4], [True, False, True, False], strict=True):
        state = eager.model.begin_state(X.shape[0]) if fresh else state.detach()
        loss, state = eager.train_step(X, Y, state)
        assert float(graphed.graphed_step(X, Y, fresh)) == float(loss)
    assert rerun.recordings == 1


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


def test_cli_names_the_problem_with_cuda_graph_on_the_cpu(corpus, capsys):
    code = cli.main(["train", "--backend", "numpy", "--cuda-graph", "--data", corpus,
                     "--epochs", "1", "--hidden", "8", "--batch-size", "4", "--num-steps", "8",
                     "--max-tokens", "600", "--quiet"])
    assert code == 2
    assert "needs backend 'cupy'" in capsys.readouterr().err


def test_prechecked_indices_skip_only_the_tensor_check():
    ids = tg.Tensor(np.array([0, 5]), backend="numpy")
    with pytest.raises(IndexError, match=r"span \[0, 5\] but must lie in \[0, 3\]"):
        _as_indices(ids, 4, "ids")
    with prechecked_indices():
        assert _as_indices(ids, 4, "ids") is ids
        with pytest.raises(IndexError):  # host data is still checked: that costs nothing
            _as_indices(np.array([0, 5]), 4, "ids")
    with pytest.raises(IndexError):
        _as_indices(ids, 4, "ids")


# ====================================================================== on a GPU
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


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_graphed_training_on_the_gpu_matches_eager(gpu, corpus, dtype):
    """Two epochs (step 1 eager, step 2 recorded, then replays) against eager CuPy,
    with eager work between them.

    The kernels are the same; only ``cupy.add.at`` (the backward of the row lookup
    of W_xh) adds in a varying order. float64: 1e-9 is far above that. float32: a
    gradient element sums at most T·N = 32 terms, its order changes it by ≲ 32·ε of
    its scale, and k = 36 SGD steps with lr 1 and clipped norm ≤ 1 add those up:
    ``k·32·ε32`` absolute, for parameters of order 0.01–1.
    """
    cfg = config(dtype=dtype)
    eager = Trainer.create(cfg, corpus, "cupy")
    graphed = Trainer.create(cfg, corpus, "cupy", cuda_graph=True)
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

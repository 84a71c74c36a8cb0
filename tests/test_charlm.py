"""The character-level LM end to end: model shapes, training, checkpoints, resume."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.charlm import checkpoint
from tinygrad_rnn.charlm.data import Vocab, load_corpus
from tinygrad_rnn.charlm.model import RNNLM
from tinygrad_rnn.charlm.train import TrainConfig, Trainer, TrainingDiverged, load_model


def small_config(**overrides) -> TrainConfig:
    base = dict(num_hiddens=32, num_epochs=3, batch_size=8, num_steps=10, max_tokens=2000)
    base.update(overrides)
    return TrainConfig(**base)


def test_model_shapes_and_parameter_names():
    model = RNNLM(28, 16)
    logits, state = model(np.zeros((4, 7), dtype=np.int64))
    assert logits.shape == (7 * 4, 28)
    assert state.shape == (1, 4, 16)  # (D·L, N, h), as PyTorch's h_n
    names = dict(model.named_parameters())
    assert {n: p.shape for n, p in names.items()} == {
        "W_hq": (16, 28), "b_q": (28,), "rnn.W_ih_l0": (28, 16), "rnn.W_hh_l0": (16, 16),
        "rnn.b_ih_l0": (16,), "rnn.b_hh_l0": (16,)}


@pytest.mark.parametrize("model,layers,bidirectional", [
    ("gru", 1, False), ("lstm", 1, False), ("lstm", 2, False), ("gru", 2, True),
    ("rnn", 1, True)])
def test_every_model_gives_logits_of_its_layer_and_a_state_that_continues(model, layers,
                                                                          bidirectional):
    """Logits = the recurrent layer's output (T, N, D·h) @ W_hq + b_q, step-major; a
    unidirectional model's state (an LSTM's tuple) handed back in continues the sequence
    exactly where it stopped."""
    tg.manual_seed(3)
    V, h, N, T = 9, 5, 3, 6
    lm = RNNLM(V, h, model=model, num_layers=layers, bidirectional=bidirectional,
               dtype="float64", init="torch")
    D = 2 if bidirectional else 1
    assert lm.W_hq.shape == (D * h, V) and lm.config()["model"] == model
    tokens = np.random.default_rng(0).integers(0, V, size=(N, T))
    logits, state = lm(tokens)
    output, _ = lm.rnn(tokens.T)
    np.testing.assert_allclose(
        logits.numpy(), output.numpy().reshape(T * N, D * h) @ lm.W_hq.numpy() + lm.b_q.numpy(),
        rtol=1e-12, atol=1e-12)
    parts = state if model == "lstm" else (state,)
    assert isinstance(state, tuple) == (model == "lstm")
    assert [p.shape for p in parts] == [(D * layers, N, h)] * len(parts)
    zero = lm.begin_state(N)
    assert [z.shape for z in (zero if model == "lstm" else (zero,))] == [p.shape for p in parts]
    if not bidirectional:
        _, half = lm(tokens[:, :2])
        tail, _ = lm(tokens[:, 2:], half)
        np.testing.assert_allclose(tail.numpy(), logits.numpy()[2 * N:], rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("model", ["rnn", "gru", "lstm"])
def test_d2l_init_draws_weights_from_n_0_001_and_zero_biases_torch_init_u(model):
    """init='d2l': every weight N(0, 0.01²), every bias 0 (D2L's scratch models);
    'torch': PyTorch's U(±1/√h) for the recurrent and the output layer."""
    h = 64
    d2l = RNNLM(28, h, model=model, num_layers=2)
    for name, p in d2l.named_parameters():
        a = p.numpy().astype(np.float64)
        if ".b_" in name or name == "b_q":
            assert not a.any(), name
        else:  # the sample std within 5 standard errors of 0.01
            assert abs(a.std() / 0.01 - 1) < 5 / math.sqrt(2 * a.size), name
    torch_like = RNNLM(28, h, model=model, num_layers=2, init="torch")
    for name, p in torch_like.named_parameters():
        a, bound = np.abs(p.numpy()), 1 / math.sqrt(h)
        assert a.max() <= bound and a.max() > 0.9 * bound, name
    assert torch_like.config()["init"] == "torch"


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match=r"model must be one of \['rnn', 'gru', 'lstm'\]"):
        RNNLM(5, 4, model="transformer")
    with pytest.raises(ValueError, match="init must be one of"):
        RNNLM(5, 4, init="xavier")
    with pytest.raises(ValueError, match="nonlinearity='relu' is for model 'rnn'"):
        RNNLM(5, 4, model="gru", nonlinearity="relu")
    with pytest.raises(TypeError):  # everything after num_hiddens is by keyword
        RNNLM(5, 4, "relu")
    assert RNNLM(5, 4, nonlinearity="relu").config()["nonlinearity"] == "relu"


def test_dropout_acts_in_training_and_never_while_generating(corpus):
    """Dropout between the layers of a deep GRU: two training forwards differ, the
    samples are greedy and repeatable (predict runs in eval mode), and predict leaves
    the model in the mode it found it in."""
    _, vocab = load_corpus(corpus, 600)
    tg.manual_seed(0)
    lm = RNNLM(len(vocab), 16, model="gru", num_layers=2, dropout=0.5, init="torch")
    tokens = np.random.default_rng(0).integers(0, len(vocab), size=(2, 5))
    a, b = lm(tokens)[0].numpy(), lm(tokens)[0].numpy()
    assert not np.array_equal(a, b)
    first = lm.predict("the", 20, vocab)
    assert lm.training and lm.predict("the", 20, vocab) == first
    lm.eval()
    np.testing.assert_array_equal(lm(tokens)[0].numpy(), lm(tokens)[0].numpy())
    lm.predict("the", 1, vocab)
    assert not lm.training


def test_logits_are_step_major_like_d2l():
    """Row t·N + n of the logits belongs to step t of sequence n (D2L's Y.T.reshape(-1))."""
    tg.manual_seed(1)
    model = RNNLM(10, 8)
    tokens = np.random.default_rng(0).integers(0, 10, size=(3, 5))
    logits, _ = model(tokens)
    for n in range(3):
        alone, _ = model(tokens[n:n + 1])
        np.testing.assert_allclose(logits.numpy().reshape(5, 3, 10)[:, n], alone.numpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_logits_follow_d2l_formulas(backend):
    """H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h), O_t = H_t W_hq + b_q with one-hot X_t,
    in float64 NumPy, every parameter (biases too) away from its initial value; and a
    state handed back in continues the sequence exactly where it stopped."""
    V, h, N, T = 7, 5, 3, 4
    model = RNNLM(V, h, dtype="float64", backend=backend)
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.data[...] = rng.normal(0, 0.5, p.shape)
    P = {name: p.numpy() for name, p in model.named_parameters()}
    tokens = rng.integers(1, V, size=(N, T))
    H, rows = np.zeros((N, h)), []
    for t in range(T):
        H = np.tanh(np.eye(V)[tokens[:, t]] @ P["rnn.W_ih_l0"] + P["rnn.b_ih_l0"]
                    + H @ P["rnn.W_hh_l0"] + P["rnn.b_hh_l0"])
        rows.append(H @ P["W_hq"] + P["b_q"])
    logits, state = model(tokens)
    # float64 throughout, h = 5 terms per dot product, 4 steps: ~1e-15 apart
    np.testing.assert_allclose(logits.numpy(), np.concatenate(rows), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state.numpy(), H[None], rtol=1e-12, atol=1e-12)
    _, state = model(tokens[:, :2])
    tail, _ = model(tokens[:, 2:], state)
    np.testing.assert_allclose(tail.numpy(), np.concatenate(rows[2:]), rtol=1e-12, atol=1e-12)


def test_the_output_layer_starts_as_d2l_s():
    """W_hq ~ N(0, 0.01²), b_q = 0: the sample std of 512·28 draws is within 5 s.e.
    (1/sqrt(2n) ≈ 0.6%) of 0.01."""
    model = RNNLM(28, 512)
    W = model.W_hq.numpy().astype(np.float64)
    assert abs(W.std() / 0.01 - 1) < 5 / math.sqrt(2 * W.size)
    assert not model.b_q.numpy().any()


def test_untrained_perplexity_is_about_the_vocabulary_size(book):
    """With weights ~N(0, 0.01²) the output is nearly uniform: perplexity ≈ |V| = 28."""
    trainer = Trainer.create(small_config(lr=1e-6), book, "numpy")
    stats = trainer.train_epoch()
    assert 27.0 < stats.perplexity < 29.0


@pytest.mark.parametrize("use_random_iter", [False, True])
def test_a_few_epochs_lower_the_perplexity(book, use_random_iter):
    trainer = Trainer.create(small_config(num_hiddens=64, max_tokens=10000,
                                          use_random_iter=use_random_iter, batch_size=32,
                                          num_steps=35), book, "numba")
    first = trainer.train_epoch().perplexity
    for _ in range(14):
        last = trainer.train_epoch().perplexity
    assert last < 0.75 * first, (first, last)


def test_adam_trains_too(book):
    trainer = Trainer.create(small_config(optimizer="adam", lr=0.01, num_hiddens=64), book,
                             "numpy")
    first = trainer.train_epoch().perplexity
    for _ in range(5):
        last = trainer.train_epoch().perplexity
    assert last < first


def test_divergence_names_epoch_and_step(book):
    trainer = Trainer.create(small_config(), book, "numpy")
    trainer.model.W_hq.data[...] = np.nan
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1"):
        trainer.train_epoch()


def test_a_finite_loss_whose_perplexity_overflows_is_a_divergence(corpus):
    """catches: a loss above log(max float) ≈ 709.8 passing as finite, its epoch ending
    with 'perplexity inf' and exit 0 (issue #21)."""
    trainer = Trainer.create(small_config(), corpus, "numpy")
    trainer.model.W_hq.data *= 1e7  # logits ~1e5: the loss is finite but far above 709.8
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1: the loss is .*perplexity "
                                               r"overflows \(try a smaller --lr than 1\)"):
        trainer.train_epoch()
    assert trainer.history == []  # the diverged epoch is not recorded


def nan_gradient_at(trainer: Trainer, step: int) -> list[int]:
    """Make the head's gradient NaN at the ``step``-th backward (1-based), the loss staying
    finite; returns the list of backward calls seen, which grows by one per step."""
    calls: list[int] = []

    def hook(grad):
        calls.append(len(calls) + 1)
        if len(calls) == step:
            return grad * math.nan
        return None

    trainer.model.W_hq.register_hook(hook)
    return calls


@pytest.mark.parametrize("clip", [1.0, math.inf], ids=["clip-1", "clip-inf"])
def test_a_nan_gradient_under_a_finite_loss_stops_the_epoch_at_its_step(corpus, clip):
    """catches: only the loss checked (its step's loss is finite: the NaN shows in the
    gradient norm first); catches: the check skipped without clipping; catches: on the
    host, the epoch trained on after the step that diverged."""
    trainer = Trainer.create(small_config(clip_theta=clip), corpus, "numpy")
    calls = nan_gradient_at(trainer, 2)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 2: the gradient norm is nan"):
        trainer.train_epoch()
    assert calls == [1, 2]


def test_on_a_gpu_the_check_waits_for_the_epoch_end_and_names_the_same_step(corpus,
                                                                         monkeypatch):
    """The deferred check (a backend whose values live on a device, as cupy's) runs every
    step without reading back, then names the first step that diverged. Simulated on
    numpy by declaring its arrays off the host."""
    monkeypatch.setattr("tinygrad_rnn.charlm.train._on_host", lambda backend: False)
    trainer = Trainer.create(small_config(), corpus, "numpy")
    calls = nan_gradient_at(trainer, 2)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 2: the gradient norm is nan"):
        trainer.train_epoch()
    assert len(calls) == len(trainer.loader) > 2  # no read-back, so no stop within it


def test_a_step_replayed_from_a_graph_reports_the_same_gradient_norms(corpus, monkeypatch):
    """The graphed step writes its norm into a buffer the graph recorded (it returns only
    the loss): its stats match the eager step's. A graph's replay is simulated on numpy
    by running the recorded body again, as tests/test_cuda_graph.py does."""
    numpy_backend = tg.backends.get("numpy")
    monkeypatch.setattr(numpy_backend, "records_graphs", True)
    monkeypatch.setattr(numpy_backend, "record_graph", lambda body: body, raising=False)
    eager, graphed = (Trainer.create(small_config(), corpus, "numpy", cuda_graph=on)
                      for on in (False, True))
    assert graphed.graphed_step is not None and eager.graphed_step is None
    for _ in range(2):
        a, b = eager.train_epoch(), graphed.train_epoch()
        assert (a.grad_norm, a.grad_norm_max, a.loss) == (b.grad_norm, b.grad_norm_max, b.loss)
        assert 0 < a.grad_norm < a.grad_norm_max


def test_epoch_stats_hold_loss_gradient_norms_and_lr(corpus, monkeypatch):
    """loss is the log of the perplexity; grad_norm and grad_norm_max the mean and largest
    of the norms clip_grad_norm returned (before clipping) in that epoch's steps; lr the
    rate the epoch ran at, before the schedule moved it."""
    from tinygrad_rnn import optim

    norms: list[float] = []
    real = optim.clip_grad_norm

    def recording(params, max_norm):
        norm = real(params, max_norm)
        norms.append(float(norm))
        return norm

    monkeypatch.setattr(optim, "clip_grad_norm", recording)
    trainer = Trainer.create(small_config(lr=0.5, scheduler="step", step_size=1, gamma=0.1),
                             corpus, "numpy")
    first, second = trainer.train_epoch(), trainer.train_epoch()
    steps = len(trainer.loader)
    for stats, epoch_norms in ((first, norms[:steps]), (second, norms[steps:])):
        assert stats.loss == pytest.approx(math.log(stats.perplexity), rel=1e-12)
        assert stats.grad_norm == pytest.approx(np.mean(epoch_norms), rel=1e-12)
        assert stats.grad_norm_max == max(epoch_norms) > stats.grad_norm
    assert (first.lr, second.lr) == (0.5, pytest.approx(0.05))


def test_generation_greedy_is_deterministic_and_sampling_follows_seed(book):
    trainer = Trainer.create(small_config(), book, "numpy")
    trainer.train_epoch()
    greedy = trainer.predict("time traveller", 20)
    assert greedy.startswith("time traveller") and len(greedy) == len("time traveller") + 20
    assert trainer.predict("time traveller", 20) == greedy
    hot = [trainer.predict("time traveller", 30, temperature=5.0, rng=s) for s in (1, 1, 2)]
    assert hot[0] == hot[1] and hot[0] != hot[2]


@pytest.mark.parametrize("src,dst", [("numpy", "numba"), ("numba", "numpy")])
def test_checkpoint_round_trip_across_backends(book, tmp_path, src, dst):
    trainer = Trainer.create(small_config(optimizer="adam", lr=0.01), book, src)
    trainer.train_epoch()
    path = trainer.save(tmp_path / "m.npz")
    model, vocab = load_model(path, backend=dst)
    assert model.backend == dst
    assert vocab.idx_to_token == trainer.vocab.idx_to_token
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], value)
    resumed = Trainer.resume(path, book, backend=dst)
    for a, b in zip(resumed.optimizer.m, trainer.optimizer.m):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert resumed.epoch == 1 and resumed.history[0] == trainer.history[0]
    assert model.predict("time traveller", 10, vocab) == trainer.predict("time traveller", 10)


@pytest.mark.parametrize("use_random_iter", [False, True])
def test_resume_continues_the_same_run(book, tmp_path, use_random_iter):
    config = small_config(num_epochs=4, use_random_iter=use_random_iter, optimizer="adam",
                          lr=0.01)
    straight = Trainer.create(config, book, "numpy")
    for _ in range(4):
        straight.train_epoch()
    first_half = Trainer.create(config, book, "numpy")
    for _ in range(2):
        first_half.train_epoch()
    first_half.save(tmp_path / "half.npz")
    resumed = Trainer.resume(tmp_path / "half.npz", book)
    for _ in range(2):
        resumed.train_epoch()
    for name, value in straight.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[name], value, err_msg=name)
    assert [s.perplexity for s in resumed.history] == [s.perplexity for s in straight.history]


def test_checkpoint_is_written_atomically(book, tmp_path, monkeypatch):
    trainer = Trainer.create(small_config(), book, "numpy")
    path = trainer.save(tmp_path / "m.npz")
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left


def test_pickled_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array("{}"), vocab=np.array(["<unk>"]),
             payload=np.array([Evil()], dtype=object))
    with pytest.raises(checkpoint.CheckpointError, match="pickled"):
        checkpoint.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("content,match", [
    (b"not a zip at all", "not a valid .npz"),
    (None, "does not exist"),
])
def test_bad_checkpoint_files_give_clear_errors(tmp_path, content, match):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(checkpoint.CheckpointError, match=match):
        checkpoint.load(path)


def test_foreign_npz_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(checkpoint.CheckpointError, match="not a tinygrad_rnn checkpoint"):
        checkpoint.load(path)
    assert zipfile.is_zipfile(path)


def _rewrite(path: Path, change) -> None:
    """Apply ``change(ckpt)`` to a checkpoint's loaded dict and write it back."""
    ckpt = checkpoint.load(path)
    change(ckpt)
    checkpoint.save(path, ckpt["params"], ckpt["vocab"], ckpt["meta"], ckpt["optim"])


@pytest.mark.parametrize("change,reader,what", [
    (lambda c: c["params"].pop("b_q"), "resume", "missing ['b_q']"),
    (lambda c: c["params"].pop("b_q"), "load_model", "missing ['b_q']"),
    (lambda c: c["meta"]["train"].update(teacher_forcing=0.5), "resume",
     "unexpected keyword argument 'teacher_forcing'"),
    (lambda c: c["meta"]["model"].update(model="transformer"), "load_model",
     "model must be one of"),
    (lambda c: c["meta"].pop("model"), "load_model", "KeyError: 'model'"),
    (lambda c: c["meta"].pop("loader"), "resume", "KeyError: 'loader'"),
    (lambda c: c["params"].update(b_q=np.zeros(3, np.float32)), "resume", "'b_q' has shape (3,)"),
    (lambda c: c["params"].update(b_q=np.zeros(3, np.float32)), "load_model",
     "'b_q' has shape (3,)"),
    (lambda c: c["optim"].update({"param_groups.0.momentum": np.asarray(-1.0)}), "resume",
     "momentum must be"),
])
def test_a_checkpoint_missing_an_entry_is_a_checkpoint_error(corpus, tmp_path, change, reader,
                                                            what):
    path = Trainer.create(small_config(num_epochs=1), corpus, "numpy").save(tmp_path / "m.npz")
    _rewrite(path, change)
    with pytest.raises(checkpoint.CheckpointError) as exc:
        if reader == "resume":
            Trainer.resume(path, corpus, "numpy", num_epochs=2)
        else:
            load_model(path, "numpy")
    assert str(path) in str(exc.value) and what in str(exc.value)


@pytest.mark.parametrize("dtype", ["float64", "int32", "complex64", "U8", "float16"])
@pytest.mark.parametrize("reader", ["resume", "load_model"])
def test_a_parameter_of_another_dtype_is_refused_not_cast(corpus, tmp_path, dtype, reader):
    """Issue 21: int32, float64, strings and complex64 (whose imaginary part a cast drops)
    once loaded silently; each is refused by name, the model's dtype named too."""
    path = Trainer.create(small_config(num_epochs=1), corpus, "numpy").save(tmp_path / "m.npz")
    _rewrite(path, lambda c: c["params"].update(b_q=c["params"]["b_q"].astype(dtype)))
    with pytest.raises(checkpoint.CheckpointError,
                       match=rf"parameter 'b_q' is {np.dtype(dtype)}, but .* are float32"):
        if reader == "resume":
            Trainer.resume(path, corpus, "numpy", num_epochs=2)
        else:
            load_model(path, "numpy")


def test_load_state_dict_refuses_arrays_that_are_not_floats():
    layer = tg.nn.Linear(2, 3)
    state = layer.state_dict()
    for dtype in ("int64", "complex64", "bool"):
        with pytest.raises(TypeError, match=f"'W' is {dtype} in the state dict"):
            layer.load_state_dict({**state, "W": state["W"].astype(dtype)})
    layer.load_state_dict({**state, "W": state["W"].astype("float64")})  # torch casts floats
    assert layer.W.dtype == np.float32


@pytest.mark.parametrize("meta", [b"not json", b"[1, 2]"])
def test_a_checkpoint_whose_meta_is_not_a_json_object_is_refused(tmp_path, meta):
    path = tmp_path / "m.npz"
    np.savez(path, meta=np.array(meta.decode()), vocab=np.array(["<unk>"]))
    with pytest.raises(checkpoint.CheckpointError, match=f"{path}.*(corrupt meta|format 'list')"):
        checkpoint.load(path)


@pytest.mark.skipif("cupy" in tg.backends.available(), reason="needs a machine without cupy")
def test_resuming_a_run_whose_backend_is_missing_says_how_to_continue(corpus, tmp_path):
    path = Trainer.create(small_config(num_epochs=1), corpus, "numpy").save(tmp_path / "m.npz")
    _rewrite(path, lambda c: c["meta"].update(backend="cupy"))  # as if trained on a GPU
    with pytest.raises(tg.backends.BackendUnavailable,
                       match=r"trained on backend 'cupy', which is not usable here.*--backend"):
        Trainer.resume(path, corpus, num_epochs=2)
    assert Trainer.resume(path, corpus, "numpy", num_epochs=2).model.backend == "numpy"


def test_a_tiny_temperature_samples_the_argmax(corpus):
    trainer = Trainer.create(small_config(num_epochs=1), corpus, "numpy")
    trainer.train_epoch()
    greedy = trainer.predict("the", 20)
    with np.errstate(all="raise"):  # no overflow, no NaN probabilities
        assert trainer.predict("the", 20, temperature=1e-310, rng=0) == greedy


def test_config_validation():
    with pytest.raises(ValueError, match="num_hiddens"):
        TrainConfig(num_hiddens=0)
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    assert TrainConfig(optimizer="adam").lr == 0.01 and TrainConfig().lr == 1.0
    assert dataclasses.asdict(TrainConfig())["num_hiddens"] == 512


def test_rewriting_a_checkpoint_keeps_its_mode(tmp_path):
    path = tmp_path / "private.npz"
    checkpoint.save(path, {"w": np.zeros(2)}, ["<unk>"], {})
    path.chmod(0o600)
    checkpoint.save(path, {"w": np.ones(2)}, ["<unk>"], {})
    assert path.stat().st_mode & 0o777 == 0o600
    np.testing.assert_array_equal(tg.load(path)["param/w"], 1.0)  # not a model: no schema


def test_a_nan_temperature_is_refused(corpus):
    trainer = Trainer.create(small_config(num_epochs=1), corpus, "numpy")
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0, got nan"):
        trainer.predict("the", 5, temperature=float("nan"))


def test_sampling_never_emits_unk(corpus):
    """'<unk>' is never a target; even at a temperature that makes every token about
    equally likely it is not printed, so -n N gives exactly N characters."""
    trainer = Trainer.create(small_config(num_epochs=1), corpus, "numpy")
    out = trainer.predict("the ", 400, temperature=1e6, rng=0)
    assert "<unk>" not in out and len(out) == 4 + 400
    assert len(set(out[4:])) > len(trainer.vocab) // 2  # it did sample widely
    trainer.model.b_q.data[trainer.vocab.unk] = 1e4  # make <unk> the argmax
    assert "<unk>" not in trainer.predict("the ", 20)


def test_predict_refuses_a_prefix_or_vocabulary_the_model_cannot_read(corpus):
    trainer = Trainer.create(small_config(num_epochs=1), corpus, "numpy")
    with pytest.raises(ValueError, match="the prefix has characters the vocabulary lacks: 'TZ'"):
        trainer.predict("Time Zone", 5)
    with pytest.raises(ValueError, match="the vocabulary has 4 tokens, the model"):
        trainer.model.predict("abc", 5, Vocab(list("abc")))
    with pytest.raises(ValueError, match="num_preds must be an integer >= 0, got 2.5"):
        trainer.predict("the", 2.5)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0, got inf"):
        trainer.predict("the", 5, temperature=float("inf"))


@pytest.mark.parametrize("overrides,message", [
    (dict(batch_size=True), "batch_size must be an integer, got True"),
    (dict(max_tokens=2.5), "max_tokens must be an integer, got 2.5"),
    (dict(seed=-1), "seed must be >= 0, got -1"),
    (dict(lr=float("inf")), "lr must be a finite number > 0, got inf"),
    (dict(clip_theta="1"), "clip_theta must be a number > 0, got '1'"),
    (dict(use_random_iter="no"), "use_random_iter must be True or False, got 'no'"),
    (dict(dtype="int32"), "dtype must be a float type"),
    (dict(dtype="bogus"), "dtype must be a float type"),
])
def test_train_config_names_a_bad_setting(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        small_config(**overrides)


def test_train_config_takes_numpy_scalars_as_plain_numbers():
    """Settings from NumPy (a sweep's np.arange) are accepted, and stored JSON-able."""
    config = small_config(num_epochs=np.int64(5), lr=np.float32(0.5),
                          use_random_iter=np.bool_(True), dtype=np.float64)
    assert json.loads(json.dumps(dataclasses.asdict(config)))["num_epochs"] == 5
    assert (type(config.num_epochs), type(config.lr), config.dtype) == (int, float, "float64")


def test_model_sizes_are_named_by_their_arguments():
    with pytest.raises(ValueError, match="vocab_size must be a positive integer, got 0"):
        RNNLM(0, 16)
    with pytest.raises(ValueError, match="num_hiddens must be a positive integer, got 0"):
        RNNLM(28, 0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 0, got -1"):
        RNNLM(28, 4).begin_state(-1)


def test_a_corpus_too_short_names_the_max_tokens_cut(corpus):
    with pytest.raises(ValueError, match=r"the corpus has 2000, cut to max_tokens = 2000 "
                                         r"\(--max-tokens 0 takes the whole text\)"):
        Trainer.create(small_config(num_steps=500), corpus, "numpy")


def _states_seen(corpus, use_random_iter, **model):
    """The state each train_step of one epoch was given, as arrays."""
    trainer = Trainer.create(small_config(use_random_iter=use_random_iter, **model), corpus,
                             "numpy")
    seen, step = [], trainer.train_step

    def spy(X, Y, state):
        parts = state if isinstance(state, tuple) else (state,)
        seen.append((np.stack([p.numpy() for p in parts]), any(p.requires_grad for p in parts)))
        return step(X, Y, state)

    trainer.train_step = spy
    trainer.train_epoch()
    return seen


MODELS = [{}, {"model": "lstm"}, {"model": "gru", "num_layers": 2, "bidirectional": True}]


@pytest.mark.parametrize("model", MODELS, ids=["rnn", "lstm", "deep-bi-gru"])
def test_random_sampling_starts_every_minibatch_from_zero(corpus, model):
    seen = _states_seen(corpus, True, **model)
    assert len(seen) > 2 and all(not state.any() for state, _ in seen)


@pytest.mark.parametrize("model", MODELS, ids=["rnn", "lstm", "deep-bi-gru"])
def test_sequential_partitioning_carries_the_state_detached(corpus, model):
    """D2L §8.5.6: the state (an LSTM's H and C both) goes on into the next minibatch
    (rows continue each other), detached, so back-propagation stops at the minibatch edge."""
    seen = _states_seen(corpus, False, **model)
    assert not seen[0][0].any()
    assert all(state.reshape(len(state), -1).any(axis=1).all() and not requires_grad
               for state, requires_grad in seen[1:])  # every part (H, C) carried over


def test_tokens_per_sec_counts_every_target_token(corpus):
    trainer = Trainer.create(small_config(), corpus, "numpy")
    tokens = len(trainer.loader) * 8 * 10  # batches × batch_size × num_steps
    stats = trainer.train_epoch()
    assert stats.tokens_per_sec * stats.seconds == pytest.approx(tokens, rel=1e-9)


def test_perplexity_is_exp_of_the_mean_loss_over_all_batches(corpus):
    """Losses 1, 2, ..., n: the perplexity is exp((n + 1) / 2), not the last batch's."""
    trainer = Trainer.create(small_config(), corpus, "numpy")
    step, losses = trainer.train_step, iter(range(1, 10**6))

    def fake(X, Y, state):
        return np.asarray(float(next(losses))), step(X, Y, state)[1]

    trainer.train_step = fake
    n = len(trainer.loader)
    assert trainer.train_epoch().perplexity == pytest.approx(math.exp((n + 1) / 2), rel=1e-12)


def test_a_training_step_is_clipped_before_the_update(corpus):
    """With θ = 1e-3 and lr = 1, one SGD step moves the parameters by exactly 1e-3 (the
    raw gradient's norm is ~0.2): clipping happens, at θ, before the step."""
    trainer = Trainer.create(small_config(lr=1.0, clip_theta=1e-3), corpus, "numpy")
    before = {k: v.astype(np.float64) for k, v in trainer.model.state_dict().items()}
    X, Y = next(iter(trainer.loader))
    trainer.train_step(X, Y, trainer.model.begin_state(8))
    after = trainer.model.state_dict()
    moved = math.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in before))
    # float32 rounding of ~3000 updated parameters near 0.01: ~3e-8 in the 1e-3 norm
    assert 0.99e-3 < moved < 1.01e-3


def test_resume_refuses_other_text_with_the_same_vocabulary(corpus, tmp_path):
    text = Path(corpus).read_text()
    (tmp_path / "b.txt").write_text(text[::-1])  # the same characters, in another order
    path = Trainer.create(small_config(), corpus, "numpy").save(tmp_path / "c.npz")
    with pytest.raises(checkpoint.CheckpointError, match="other text"):
        Trainer.resume(path, str(tmp_path / "b.txt"))


def test_the_first_generated_character_follows_the_whole_prefix(corpus):
    _, vocab = load_corpus(corpus, 2000)
    tg.manual_seed(1)
    model = RNNLM(len(vocab), 16)
    rng = np.random.default_rng(3)
    for p in model.parameters():  # large weights: each position predicts differently
        p.data[...] = rng.normal(0, 1, p.shape).astype(p.dtype)
    prefix = "time traveller"
    logits, _ = model(np.array([vocab[list(prefix)]]), model.begin_state(1))
    last = logits.numpy()[-1].astype(np.float64)
    last[vocab.unk] = -np.inf
    assert model.predict(prefix, 1, vocab)[-1] == vocab.to_tokens(int(last.argmax()))


def test_a_checkpoint_is_synced_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    events, fsync, replace = [], os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), replace(a, b))[1])
    checkpoint.save(tmp_path / "x.npz", {"w": np.ones(2)}, ["<unk>"], {})
    # the file's fsync, the rename, then the folder's fsync (the rename on disk)
    assert events[-3:] == ["fsync", "replace", "fsync"] and events.count("replace") == 1


def test_load_refuses_another_format_version(tmp_path):
    path = tmp_path / "x.npz"
    meta = json.dumps({"format": "tinygrad_rnn.charlm.checkpoint/999"})
    np.savez(path, vocab=np.array(["<unk>"]), meta=np.array(meta))
    with pytest.raises(checkpoint.CheckpointError, match="format"):
        checkpoint.load(path)


def test_save_refuses_object_arrays_and_writes_nothing(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="object array"):
        checkpoint.save(tmp_path / "x.npz", {"w": np.array([{"a": 1}], dtype=object)},
                        ["<unk>"], {})
    assert list(tmp_path.iterdir()) == []


def test_train_config_takes_none_as_the_library_does():
    """dtype None means float32 (as RNNLM's), seed None fresh entropy (a run made so
    through the API could not otherwise be resumed)."""
    config = small_config(dtype=None, seed=None)
    assert config.dtype == "float32" and config.seed is None
    assert small_config(clip_theta=math.inf).clip_theta == math.inf  # no clipping


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


# ============================================================ GRU, LSTM, deep, bidirectional
@pytest.mark.parametrize("model", [
    dict(model="gru"), dict(model="lstm", num_layers=2, bidirectional=True),
    dict(model="gru", num_layers=2, dropout=0.3)], ids=["gru", "deep-bi-lstm", "gru-dropout"])
def test_every_model_round_trips_through_a_checkpoint_and_resumes_the_same_run(
        corpus, tmp_path, model):
    """load_model rebuilds the model from its config (kind, layers, directions, dropout)
    with its parameters; a resumed run (an LSTM's state a tuple, the dropout masks drawn
    by the generator whose state the checkpoint keeps) continues exactly as the
    uninterrupted one."""
    config = small_config(num_hiddens=8, num_epochs=2, batch_size=4, num_steps=8,
                          max_tokens=600, optimizer="adam", lr=0.01, **model)
    straight = Trainer.create(config, corpus, "numpy")
    straight.train_epoch()
    path = straight.save(tmp_path / "m.npz")
    sample = straight.predict("the", 12)
    straight.train_epoch()
    resumed = Trainer.resume(path, corpus)
    resumed.train_epoch()
    loaded, vocab = load_model(path, "numpy")
    assert loaded.config() == straight.model.config()
    assert loaded.config()["model"] == model["model"]
    assert loaded.predict("the", 12, vocab) == sample
    assert resumed.config == straight.config
    for name, value in straight.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[name], value, err_msg=name)


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_gru_and_lstm_learn(corpus, model):
    trainer = Trainer.create(small_config(model=model, num_hiddens=32, optimizer="adam",
                                          lr=0.02, max_tokens=3000), corpus, "numba")
    first = trainer.train_epoch().perplexity
    for _ in range(4):
        last = trainer.train_epoch().perplexity
    assert last < 0.7 * first, (first, last)


@pytest.mark.parametrize("overrides,message", [
    (dict(model="cnn"), "model must be one of ['rnn', 'gru', 'lstm'], got 'cnn'"),
    (dict(init="he"), "init must be one of ['d2l', 'torch'], got 'he'"),
    (dict(num_layers=0), "num_layers must be a positive integer, got 0"),
    (dict(num_layers=1.5), "num_layers must be an integer, got 1.5"),
    (dict(bidirectional="yes"), "bidirectional must be True or False, got 'yes'"),
    (dict(dropout=1.0), "dropout must be a number in [0, 1), got 1.0"),
    (dict(dropout=float("nan"), num_layers=2), "dropout must be a number in [0, 1), got nan"),
    (dict(dropout=0.5), "with num_layers = 1 it would do nothing"),
    (dict(model="lstm", nonlinearity="relu"), "nonlinearity 'relu' is for model 'rnn'"),
])
def test_train_config_names_a_bad_network(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        small_config(**overrides)


# ============================================================= checkpoints of the old RNN
OLD_FORMAT = "tinygrad_rnn.checkpoint/1"  # the format string those files carry


def write_old_checkpoint(path: Path, corpus: str, P: dict[str, np.ndarray]) -> None:
    """A checkpoint exactly as the code before GRUs and LSTMs wrote it (``git show
    <that commit>:tinygrad_rnn/charlm/checkpoint.py``): arrays ``param/<name>`` with the
    old RNN's ``rnn.W_xh``, ``rnn.W_hh``, ``rnn.b_h``, ``optim/<key>`` (Adam's moments
    indexed in the old parameter order W_hq, b_q, W_xh, W_hh, b_h), ``vocab`` and a JSON
    ``meta`` whose model and train configs lack today's ``model``, ``num_layers``...
    keys. Written with ``tg.save``, the call the old ``checkpoint.save`` made."""
    from tinygrad_rnn.charlm.data import SeqDataLoader
    from tinygrad_rnn.charlm.train import corpus_sha1

    ids, vocab = load_corpus(corpus, 600)
    order = ["W_hq", "b_q", "rnn.W_xh", "rnn.W_hh", "rnn.b_h"]  # old parameters() order
    rng = np.random.default_rng(9)
    optim = {"lr": np.asarray(0.01), "t": np.full(5, 3, dtype=np.int64),
             "betas": np.asarray([0.9, 0.999]), "eps": np.asarray(1e-8),
             "weight_decay": np.asarray(0.0)}
    for i, name in enumerate(order):
        optim[f"m.{i}"] = rng.normal(0, 1e-3, P[name].shape)
        optim[f"v.{i}"] = rng.uniform(0, 1e-6, P[name].shape)
    loader = SeqDataLoader(ids, 4, 8, False, seed=0)
    meta = {
        "model": {"vocab_size": len(vocab), "num_hiddens": 6, "nonlinearity": "tanh",
                  "embed_size": None, "fused": True, "dtype": "float64"},
        "train": {"num_hiddens": 6, "num_epochs": 1, "lr": 0.01, "batch_size": 4,
                  "num_steps": 8, "max_tokens": 600, "use_random_iter": False,
                  "optimizer": "adam", "clip_theta": 1.0, "seed": 0, "nonlinearity": "tanh",
                  "dtype": "float64"},
        "epoch": 1,
        "history": [{"epoch": 1, "perplexity": 20.5, "tokens_per_sec": 1e5, "seconds": 0.01}],
        "loader": loader.state_dict(),
        "backend": "numpy",
        "corpus_sha1": corpus_sha1(ids),
    }
    arrays = {f"param/{k}": np.asarray(v) for k, v in P.items()}
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in optim.items()})
    arrays["vocab"] = np.array(vocab.idx_to_token, dtype=str)
    arrays["meta"] = np.array(json.dumps({"format": OLD_FORMAT, **meta}))
    tg.save(arrays, path)


def old_rnnlm_logits(P: dict[str, np.ndarray], tokens: np.ndarray) -> np.ndarray:
    """The old model's maths in NumPy: H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h) with
    one-hot X_t, O_t = H_t W_hq + b_q, rows step-major."""
    V = P["b_q"].shape[0]
    H, rows = np.zeros((tokens.shape[0], P["rnn.b_h"].shape[0])), []
    for t in range(tokens.shape[1]):
        H = np.tanh(np.eye(V)[tokens[:, t]] @ P["rnn.W_xh"] + H @ P["rnn.W_hh"] + P["rnn.b_h"])
        rows.append(H @ P["W_hq"] + P["b_q"])
    return np.concatenate(rows)


def test_a_checkpoint_of_the_old_rnn_loads_computes_the_same_and_resumes(corpus, tmp_path):
    _, vocab = load_corpus(corpus, 600)
    V, h = len(vocab), 6
    rng = np.random.default_rng(0)
    P = {"W_hq": rng.normal(0, 0.5, (h, V)), "b_q": rng.normal(0, 0.5, V),
         "rnn.W_xh": rng.normal(0, 0.5, (V, h)), "rnn.W_hh": rng.normal(0, 0.5, (h, h)),
         "rnn.b_h": rng.normal(0, 0.5, h)}
    path = tmp_path / "old.npz"
    write_old_checkpoint(path, corpus, P)

    model, loaded_vocab = load_model(path, "numpy")
    assert loaded_vocab.idx_to_token == vocab.idx_to_token
    assert model.config()["model"] == "rnn" and model.config()["num_layers"] == 1
    state = model.state_dict()
    np.testing.assert_array_equal(state["rnn.W_ih_l0"], P["rnn.W_xh"])
    np.testing.assert_array_equal(state["rnn.b_ih_l0"], P["rnn.b_h"])
    assert not state["rnn.b_hh_l0"].any()
    tokens = rng.integers(0, V, size=(3, 7))
    logits, _ = model(tokens)
    # float64, h = 6 and V = 24 terms per dot product, 7 steps: ~1e-15 apart
    np.testing.assert_allclose(logits.numpy(), old_rnnlm_logits(P, tokens), rtol=1e-12,
                               atol=1e-12)
    prefix = "the time"
    ids = np.array([vocab[list(prefix)]])
    last = old_rnnlm_logits(P, ids)[-1]
    last[vocab.unk] = -np.inf
    assert model.predict(prefix, 1, vocab)[-1] == vocab.to_tokens(int(last.argmax()))

    resumed = Trainer.resume(path, corpus, num_epochs=2)
    assert resumed.epoch == 1 and resumed.config.model == "rnn"
    assert resumed.optimizer.steps == [3, 3, 3, 3, 3, 0]  # b_hh_l0: new, never stepped
    np.testing.assert_array_equal(resumed.optimizer.m[4], np.asarray(
        checkpoint.load(path)["optim"]["m.4"]))  # b_h's moments went to b_ih_l0
    assert not np.asarray(resumed.optimizer.m[5]).any()
    assert math.isfinite(resumed.train_epoch().perplexity)
    resaved = checkpoint.load(resumed.save(tmp_path / "new.npz"))
    assert resaved["meta"]["model"]["model"] == "rnn" and "rnn.W_xh" not in resaved["params"]


def test_seeded_runs_are_isolated_from_other_threads(corpus):
    """Issue 21: initialisation drew from one process-wide generator, so another thread
    drawing (or reseeding) meanwhile changed a seeded run's weights. Now each Trainer
    draws from its own: the weights and a dropout epoch's losses are those of the run
    alone, while a thread reseeds and draws from the default generator non-stop."""
    import threading

    config = small_config(num_epochs=1, dropout=0.3, num_layers=2)

    def run():
        trainer = Trainer.create(config, corpus, "numpy")
        trainer.fit()
        return trainer.model.state_dict(), [h.perplexity for h in trainer.history]

    alone = run()
    stop = threading.Event()

    def noise():
        while not stop.is_set():
            tg.manual_seed(123)
            tg.rand(1000)

    noisy = threading.Thread(target=noise, daemon=True)
    noisy.start()
    try:
        beside = [run() for _ in range(3)]
    finally:
        stop.set()
        noisy.join()
    for weights, perplexities in beside:
        assert perplexities == alone[1]
        for name, value in alone[0].items():
            np.testing.assert_array_equal(weights[name], value, err_msg=name)

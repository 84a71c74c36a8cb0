"""``Trainer.fit``: the epoch loop with its callback, metrics log, sampling, saving and
divergence handling (what ``tinygrad-rnn train`` and the examples run)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinygrad_rnn.charlm import checkpoint
from tinygrad_rnn.charlm.train import TrainConfig, Trainer, TrainingDiverged


def config(**overrides) -> TrainConfig:
    base = dict(num_hiddens=8, num_epochs=4, batch_size=4, num_steps=8, max_tokens=600)
    return TrainConfig(**{**base, **overrides})


def test_fit_calls_back_each_epoch_and_samples_every_n(corpus):
    trainer = Trainer.create(config(), corpus, "numpy", cuda_graph=False)
    seen = []
    history = trainer.fit(callback=lambda stats, sample: seen.append((stats, sample)),
                          prefix="the", sample_every=2)
    assert [s.epoch for s, _ in seen] == [1, 2, 3, 4] and history == [s for s, _ in seen]
    assert [sample is None for _, sample in seen] == [True, False, True, False]
    assert all(sample.startswith("the") and len(sample) == 3 + 50
               for _, sample in seen if sample is not None)
    assert trainer.epoch == 4
    trainer.fit(6, prefix=None)  # a larger total goes on from where it is
    assert [s.epoch for s in trainer.history] == [1, 2, 3, 4, 5, 6]


def test_fit_trains_as_the_epoch_loop_does(corpus):
    by_fit = Trainer.create(config(), corpus, "numpy", cuda_graph=False)
    by_hand = Trainer.create(config(), corpus, "numpy", cuda_graph=False)
    by_fit.fit(prefix=None)
    for _ in range(4):
        by_hand.train_epoch()
    assert [s.perplexity for s in by_fit.history] == [s.perplexity for s in by_hand.history]
    for name, value in by_hand.model.state_dict().items():
        np.testing.assert_array_equal(by_fit.model.state_dict()[name], value, err_msg=name)


def test_fit_saves_every_n_epochs_and_at_the_end(corpus, tmp_path, monkeypatch):
    trainer = Trainer.create(config(num_epochs=5), corpus, "numpy", cuda_graph=False)
    saved_at = []
    save = Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self, path: (saved_at.append(self.epoch),
                                                             save(self, path))[1])
    path = tmp_path / "run" / "ckpt.npz"
    trainer.fit(save_path=path, save_every=2, prefix=None)
    assert saved_at == [2, 4, 5]
    assert checkpoint.load(path)["meta"]["epoch"] == 5


def test_fit_writes_one_record_per_epoch_and_a_resumed_run_keeps_the_earlier_ones(
        corpus, tmp_path):
    log, ckpt = tmp_path / "m.jsonl", tmp_path / "c.npz"
    trainer = Trainer.create(config(num_epochs=3), corpus, "numpy", cuda_graph=False)
    trainer.fit(save_path=ckpt, save_every=2, metrics=log, prefix=None)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[2]["perplexity"] == trainer.history[2].perplexity
    # the checkpoint is at epoch 3 (the end); a resumed run drops records after it
    log.write_text(log.read_text() + json.dumps({"epoch": 4, "perplexity": 1.0}) + "\n")
    resumed = Trainer.resume(ckpt, corpus, "numpy", num_epochs=4, cuda_graph=False)
    resumed.fit(metrics=log, prefix=None)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[3]["perplexity"] == resumed.history[-1].perplexity != 1.0


def test_fit_refuses_a_metrics_file_of_something_else(corpus, tmp_path):
    log = tmp_path / "notes.txt"
    log.write_text("my notes\n")
    trainer = Trainer.create(config(), corpus, "numpy", cuda_graph=False)
    with pytest.raises(ValueError, match="holds something other than epoch records"):
        trainer.fit(metrics=log)
    assert log.read_text() == "my notes\n" and trainer.epoch == 0


def test_divergence_names_the_last_checkpoint_of_this_run(corpus, tmp_path):
    ckpt = tmp_path / "c.npz"
    trainer = Trainer.create(config(num_epochs=6), corpus, "numpy", cuda_graph=False)
    original = trainer.train_epoch

    def epoch_that_diverges_after_two():
        stats = original()
        if stats.epoch == 3:
            raise TrainingDiverged("training diverged at epoch 3, step 1")
        return stats

    trainer.train_epoch = epoch_that_diverges_after_two
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(save_path=ckpt, save_every=2, prefix=None)
    assert info.value.last_checkpoint == ckpt
    assert checkpoint.load(ckpt)["meta"]["epoch"] == 2
    fresh = Trainer.create(config(), corpus, "numpy", cuda_graph=False)
    fresh.train_epoch = lambda: (_ for _ in ()).throw(TrainingDiverged("diverged"))
    with pytest.raises(TrainingDiverged) as info:  # nothing saved yet: nothing to name
        fresh.fit(save_path=tmp_path / "other.npz", prefix=None)
    assert info.value.last_checkpoint is None

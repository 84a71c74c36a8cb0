"""tg.optim.lr_scheduler as torch's: each scheduler's lr sequence over 30 steps against
PyTorch's (skipped without torch) and against its closed form (without torch), its
state_dict round trip, and its argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.optim import lr_scheduler

STEPS = 30


class Halving:
    """A callable object: LambdaLR's state keeps its ``__dict__`` (torch's rule)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def __call__(self, epoch: int) -> float:
        return 0.5 ** (epoch // self.every)


#: (scheduler, its arguments: a function of the library (tg or torch), optimizer kind)
SCHEDULES = [
    ("StepLR", lambda lib: {"step_size": 3, "gamma": 0.5}, "sgd"),
    ("StepLR", lambda lib: {"step_size": 7}, "sgd"),
    ("MultiStepLR", lambda lib: {"milestones": [3, 7, 7, 20], "gamma": 0.5}, "sgd"),
    ("ExponentialLR", lambda lib: {"gamma": 0.9}, "sgd"),
    ("CosineAnnealingLR", lambda lib: {"T_max": 10, "eta_min": 0.01}, "sgd"),  # past T_max too
    ("CosineAnnealingLR", lambda lib: {"T_max": STEPS}, "adam"),
    ("LambdaLR", lambda lib: {"lr_lambda": lambda e: 0.95 ** e}, "sgd"),
    ("LambdaLR", lambda lib: {"lr_lambda": [lambda e: 1 / (e + 1), Halving(4)]}, "sgd"),
    ("LinearLR", lambda lib: {}, "sgd"),
    ("LinearLR", lambda lib: {"start_factor": 0.1, "total_iters": 8}, "adam"),
    ("LinearLR", lambda lib: {"start_factor": 1.0, "end_factor": 0.2, "total_iters": 10},
     "sgd"),
    ("OneCycleLR", lambda lib: {"max_lr": [1.0, 2.0], "total_steps": STEPS}, "sgd"),
    ("OneCycleLR", lambda lib: {"max_lr": 0.5, "epochs": 3, "steps_per_epoch": 10,
                                "pct_start": 0.25, "anneal_strategy": "linear",
                                "three_phase": True}, "sgd"),
    ("OneCycleLR", lambda lib: {"max_lr": 0.1, "total_steps": STEPS, "div_factor": 10.0,
                                "final_div_factor": 100.0}, "adam"),
    ("OneCycleLR", lambda lib: {"max_lr": 0.1, "total_steps": STEPS,
                                "cycle_momentum": False}, "sgd"),
]
#: a loss that falls, stalls, wobbles and falls again; for ReduceLROnPlateau
METRICS = [5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 2.99999, 3.1, 3.0, 2.5, 2.5, 2.5, 2.5, 2.5, 2.0,
           2.1, 2.2, 2.3, 2.4, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
PLATEAUS = [
    {"patience": 2},
    {"patience": 1, "cooldown": 2, "factor": 0.5, "min_lr": [0.02, 0.1]},
    {"mode": "max", "patience": 0, "threshold": 0.1, "threshold_mode": "abs"},
    {"patience": 3, "threshold": 0.2, "eps": 1e-3, "min_lr": 0.05},
]


def optimizer(lib, kind, momentum=0.9):
    """Two groups with their own lrs: SGD (with momentum, for OneCycleLR to cycle) or
    Adam (betas)."""
    if lib is tg:
        a, b = (tg.Tensor(np.ones(2), requires_grad=True) for _ in range(2))
    else:
        a, b = (lib.ones(2, requires_grad=True) for _ in range(2))
    groups = [{"params": [a]}, {"params": [b], "lr": 0.3}]
    if kind == "adam":
        return lib.optim.Adam(groups, lr=0.1)
    return lib.optim.SGD(groups, lr=1.0, momentum=momentum)


def trace(lib, name, kwargs, kind, steps=STEPS, metrics=None):
    """(lr per group, momentum/beta1 per group, last_epoch) after construction and after
    each of ``steps`` steps."""
    opt = optimizer(lib, kind)
    sched = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
    rows = []

    def record():
        key = "betas" if kind == "adam" else "momentum"
        rows.append((list(sched.get_last_lr()),
                     [g[key][0] if kind == "adam" else g[key] for g in opt.param_groups],
                     sched.last_epoch))

    record()
    for k in range(steps):
        opt.step()
        sched.step() if metrics is None else sched.step(metrics[k])
        record()
    return rows


@pytest.mark.parametrize("name,kwargs,kind", SCHEDULES)
def test_each_scheduler_steps_as_torchs(name, kwargs, kind):
    torch = pytest.importorskip("torch")
    steps = STEPS - 1 if name == "OneCycleLR" else STEPS  # it ends at total_steps - 1
    ours = trace(tg, name, kwargs(tg), kind, steps)
    theirs = trace(torch, name, kwargs(torch), kind, steps)
    for k, (mine, want) in enumerate(zip(ours, theirs, strict=True)):
        # the same Python float arithmetic in the same order: equal to the last bit
        assert mine == want, f"step {k}"


@pytest.mark.parametrize("kwargs", PLATEAUS)
def test_reduce_lr_on_plateau_steps_as_torchs(kwargs):
    torch = pytest.importorskip("torch")
    ours = trace(tg, "ReduceLROnPlateau", kwargs, "sgd", metrics=METRICS)
    theirs = trace(torch, "ReduceLROnPlateau", kwargs, "sgd", metrics=METRICS)
    assert ours == theirs
    assert len({tuple(lrs) for lrs, _, _ in ours}) > 1  # the lr was cut at least once


@pytest.mark.parametrize("name,kwargs,kind", SCHEDULES[:11])
def test_a_scheduler_has_torchs_state_dict_keys(name, kwargs, kind):
    torch = pytest.importorskip("torch")
    mine = getattr(tg.optim.lr_scheduler, name)(optimizer(tg, kind), **kwargs(tg))
    theirs = getattr(torch.optim.lr_scheduler, name)(optimizer(torch, kind), **kwargs(torch))
    assert set(mine.state_dict()) == set(theirs.state_dict())


# ---------------------------------------------------------------- without torch
def closed_form(name, kwargs, base, e):
    """The lr at epoch e as the docs give it."""
    if name == "StepLR":
        return base * kwargs.get("gamma", 0.1) ** (e // kwargs["step_size"])
    if name == "MultiStepLR":
        return base * kwargs["gamma"] ** sum(m <= e for m in kwargs["milestones"])
    if name == "ExponentialLR":
        return base * kwargs["gamma"] ** e
    if name == "CosineAnnealingLR":
        eta, T = kwargs.get("eta_min", 0.0), kwargs["T_max"]
        return eta + (base - eta) * (1 + math.cos(math.pi * e / T)) / 2
    if name == "LinearLR":
        s, f, n = (kwargs.get("start_factor", 1 / 3), kwargs.get("end_factor", 1.0),
                   kwargs.get("total_iters", 5))
        return base * (s + (f - s) * min(e, n) / n)
    raise AssertionError(name)


@pytest.mark.parametrize("name,kwargs,kind", [s for s in SCHEDULES[:11]
                                              if s[0] != "LambdaLR"])
def test_each_scheduler_follows_its_closed_form(name, kwargs, kind):
    """Past T_max the cosine recurrence (torch's, and ours) rises again along the same
    curve, so the closed form holds throughout; a few roundings per step apart."""
    rows = trace(tg, name, kwargs(tg), kind)
    bases = [1.0, 0.3] if kind == "sgd" else [0.1, 0.3]
    for e, (lrs, _, last_epoch) in enumerate(rows):
        assert last_epoch == e
        want = [closed_form(name, kwargs(tg), b, e) for b in bases]
        np.testing.assert_allclose(lrs, want, rtol=1e-12, atol=1e-15, err_msg=f"epoch {e}")


def test_lambda_lr_multiplies_each_groups_base_lr():
    rows = trace(tg, "LambdaLR", SCHEDULES[7][1](tg), "sgd", steps=9)
    for e, (lrs, _, _) in enumerate(rows):
        assert lrs == pytest.approx([1.0 / (e + 1), 0.3 * 0.5 ** (e // 4)], rel=1e-15)


def test_one_cycle_rises_to_max_lr_then_falls_to_its_minimum():
    rows = trace(tg, "OneCycleLR", {"max_lr": [1.0, 2.0], "total_steps": STEPS}, "sgd",
                 STEPS - 1)
    first = [lrs for lrs, _, _ in rows]
    assert first[0] == pytest.approx([1.0 / 25, 2.0 / 25])  # max_lr / div_factor
    peak = int(0.3 * STEPS) - 1  # the end of the first phase
    assert first[peak] == pytest.approx([1.0, 2.0])
    assert first[-1] == pytest.approx([1.0 / 25 / 1e4, 2.0 / 25 / 1e4])
    momenta = [m for _, m, _ in rows]
    assert momenta[0] == [0.95, 0.95] and momenta[peak] == pytest.approx([0.85, 0.85])
    assert all(a[0] < b[0] for a, b in zip(first[:peak], first[1:peak + 1], strict=True))
    assert all(a[0] > b[0] for a, b in zip(first[peak:-1], first[peak + 1:], strict=True))


def test_reduce_lr_on_plateau_cuts_after_patience_bad_epochs():
    opt = optimizer(tg, "sgd")
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    lrs = []
    for metric in [3.0, 3.0, 3.0, 3.0, 2.0, 2.0, 2.0, 2.0]:
        sched.step(metric)
        lrs.append(sched.get_last_lr()[0])
    # bad epochs: 1, 2, 3 (> patience: cut, count restarts), better, 1, 2, 3 (cut)
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]


# ------------------------------------------------------------------ state dicts
@pytest.mark.parametrize("name,kwargs,kind", SCHEDULES)
def test_a_state_dict_round_trip_continues_the_same_lrs(name, kwargs, kind):
    """12 steps, save optimizer and scheduler, load both into fresh ones, go on: the lrs
    are the uninterrupted run's."""
    steps = STEPS - 1 if name == "OneCycleLR" else STEPS
    whole = [lrs for lrs, _, _ in trace(tg, name, kwargs(tg), kind, steps)]
    opt = optimizer(tg, kind)
    sched = getattr(lr_scheduler, name)(opt, **kwargs(tg))
    for _ in range(12):
        sched.step()
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 12
    opt2 = optimizer(tg, kind)
    sched2 = getattr(lr_scheduler, name)(opt2, **kwargs(tg))
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    got = [list(sched2.get_last_lr())]
    for _ in range(12, steps):
        sched2.step()
        got.append(list(sched2.get_last_lr()))
    assert got == whole[12:]


def test_plateau_state_dict_round_trip():
    opt = optimizer(tg, "sgd")
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    for m in METRICS[:10]:
        sched.step(m)
    opt2 = optimizer(tg, "sgd")
    sched2 = lr_scheduler.ReduceLROnPlateau(opt2)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for m in METRICS[10:]:
        sched.step(m)
        sched2.step(m)
        assert sched2.get_last_lr() == sched.get_last_lr()
    assert sched2.patience == 1 and sched2.best == sched.best


def test_lambda_lr_state_omits_functions_and_keeps_a_callable_objects_dict():
    opt = optimizer(tg, "sgd")
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 1.0, Halving(4)])
    state = sched.state_dict()
    assert state["lr_lambdas"] == [None, {"every": 4}]
    other = Halving(99)
    again = lr_scheduler.LambdaLR(optimizer(tg, "sgd"), [lambda e: 1.0, other])
    again.load_state_dict(state)
    assert other.every == 4 and state["lr_lambdas"] == [None, {"every": 4}]


def test_a_scheduler_resumed_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(optimizer(tg, "sgd"), 3, last_epoch=4)
    opt = optimizer(tg, "sgd")
    lr_scheduler.StepLR(opt, 3)
    resumed = lr_scheduler.StepLR(opt, 3, last_epoch=4)  # the groups have initial_lr now
    assert resumed.last_epoch == 5 and resumed.base_lrs == [1.0, 0.3]


def test_get_lr_outside_step_warns_as_torchs():
    sched = lr_scheduler.StepLR(optimizer(tg, "sgd"), 3)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()


# ------------------------------------------------------------------ argument errors
@pytest.mark.parametrize("make,error,message", [
    (lambda o: lr_scheduler.StepLR(o, 0), ValueError, "step_size must be a positive"),
    (lambda o: lr_scheduler.StepLR(o, 2, gamma="x"), TypeError, "gamma must be a number"),
    (lambda o: lr_scheduler.MultiStepLR(o, [1.5]), TypeError, "milestones must be integers"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), ValueError,
     "Starting multiplicative factor expected to be greater than 0"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=1.5), ValueError,
     "Ending multiplicative factor expected to be between 0 and 1"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, 0), ValueError, "T_max must be a number > 0"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), ValueError,
     "Expected 2 lr_lambdas, but got 1"),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0), ValueError,
     r"You must define either total_steps OR \(epochs AND steps_per_epoch\)"),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, total_steps=0), ValueError,
     "Expected positive integer total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, pct_start=1.5), ValueError,
     "Expected float between 0 and 1 pct_start"),
    (lambda o: lr_scheduler.OneCycleLR(o, [1.0], 10), ValueError,
     "max_lr must have the same length as optimizer.param_groups"),
    (lambda o: lr_scheduler.OneCycleLR(o, 1.0, 10, anneal_strategy="exp"), ValueError,
     "anneal_strategy must be one of 'cos' or 'linear'"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError,
     r"Factor should be < 1.0"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="lowest"), ValueError,
     "mode lowest is unknown"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="x"), ValueError,
     "threshold mode x is unknown"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError,
     "expected 2 min_lrs, got 1"),
    (lambda o: lr_scheduler.StepLR("sgd", 2), TypeError, "str is not an Optimizer"),
])
def test_bad_scheduler_arguments_are_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make(optimizer(tg, "sgd"))


def test_one_cycle_refuses_a_step_past_its_end_and_an_optimizer_without_momentum():
    opt = optimizer(tg, "sgd")
    sched = lr_scheduler.OneCycleLR(opt, 1.0, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times. The specified number of "
                                         "total steps is 3"):
        sched.step()
    rms = tg.optim.Adagrad([tg.Tensor([1.0], requires_grad=True)])
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        lr_scheduler.OneCycleLR(rms, 1.0, 3)


# ------------------------------------------- the char-LM's --scheduler, and resuming
def tiny_config(**overrides):
    from tinygrad_rnn.charlm.train import TrainConfig

    base = dict(num_hiddens=16, num_epochs=6, batch_size=4, num_steps=8, max_tokens=600)
    return TrainConfig(**{**base, **overrides})


@pytest.mark.parametrize("schedule", [
    {"scheduler": "step", "step_size": 2, "gamma": 0.5},
    {"scheduler": "cosine", "min_lr": 0.1},
    {"scheduler": "onecycle", "warmup": 2},
    {"scheduler": "plateau", "patience": 0, "gamma": 0.5, "lr": 5.0},  # loss rises: cuts
    {"scheduler": "linear", "warmup": 4, "optimizer": "adam"},
    {"scheduler": "exponential", "gamma": 0.8},
])
def test_a_resumed_run_continues_the_schedule_of_the_uninterrupted_one(corpus, tmp_path,
                                                                       schedule):
    from tinygrad_rnn.charlm.train import Trainer

    config = tiny_config(**schedule)
    straight = Trainer.create(config, corpus, "numpy")
    lrs = [straight.optimizer.lr]
    for _ in range(6):
        straight.train_epoch()
        lrs.append(straight.optimizer.lr)
    assert len(set(lrs)) > 1  # the schedule moved the lr

    half = Trainer.create(config, corpus, "numpy")
    for _ in range(3):
        half.train_epoch()
    resumed = Trainer.resume(half.save(tmp_path / "half.npz"), corpus)
    assert type(resumed.scheduler) is type(straight.scheduler)
    got = [half.optimizer.lr]
    for _ in range(3):
        resumed.train_epoch()
        got.append(resumed.optimizer.lr)
    assert got == lrs[3:]
    for name, value in straight.model.state_dict().items():  # the same run, bit for bit
        np.testing.assert_array_equal(resumed.model.state_dict()[name], value)


def test_train_scheduler_flags_reach_the_run_and_resume(corpus, tmp_path, capsys):
    from tinygrad_rnn.charlm import checkpoint
    from tinygrad_rnn.charlm.cli import main

    tiny = ["--data", corpus, "--hidden", "16", "--batch-size", "4", "--num-steps", "8",
            "--max-tokens", "600", "--quiet", "--backend", "numpy"]
    ckpt = tmp_path / "m.npz"
    assert main(["train", *tiny, "--epochs", "4", "--scheduler", "step", "--step-size", "2",
                 "--gamma", "0.5", "--save", str(ckpt)]) == 0
    saved = checkpoint.load(ckpt)
    assert saved["meta"]["train"]["scheduler"] == "step"
    assert saved["meta"]["scheduler"]["last_epoch"] == 4
    assert float(saved["optim"]["param_groups.0.lr"]) == 0.25  # 1 · 0.5 · 0.5
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "6",
                 "--save", str(ckpt), "--quiet"]) == 0
    resumed = checkpoint.load(ckpt)
    assert resumed["meta"]["scheduler"]["last_epoch"] == 6
    assert float(resumed["optim"]["param_groups.0.lr"]) == 0.125
    capsys.readouterr()
    assert main(["train", "--resume", str(ckpt), "--data", corpus, "--epochs", "8",
                 "--scheduler", "cosine", "--quiet"]) == 2
    assert "--scheduler cosine conflicts with the checkpoint's scheduler = step" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("flags,message", [
    (["--scheduler", "cosine", "--step-size", "3"],
     "step_size is a setting of scheduler step, not of 'cosine'"),
    (["--gamma", "0.5"], "gamma is a setting of scheduler step or exponential or plateau, "
                         "not of 'none'"),
    (["--scheduler", "onecycle", "--warmup", "3", "--epochs", "3"],
     "warmup 3 leaves no epoch of the 3 for the onecycle schedule's fall"),
    (["--scheduler", "plateau", "--gamma", "2"], "Factor should be < 1.0"),
])
def test_train_refuses_a_scheduler_setting_it_would_ignore(corpus, capsys, flags, message):
    from tinygrad_rnn.charlm.cli import main

    assert main(["train", "--data", corpus, "--hidden", "8", "--max-tokens", "600",
                 "--batch-size", "4", "--num-steps", "8", "--quiet", "--backend", "numpy",
                 *flags]) == 2
    assert message in capsys.readouterr().err


def test_train_help_documents_the_schedulers():
    from tinygrad_rnn.charlm.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = train.format_help()
    for word in ("--scheduler", "none,step,exponential,cosine,linear,onecycle,plateau",
                 "--step-size", "--gamma", "--warmup", "--min-lr", "--patience",
                 "StepLR", "ReduceLROnPlateau"):
        assert word in text


def test_a_onecycle_run_cannot_be_resumed_past_its_end(corpus, tmp_path):
    from tinygrad_rnn.charlm.train import Trainer

    trainer = Trainer.create(tiny_config(scheduler="onecycle", num_epochs=2), corpus, "numpy")
    trainer.train_epoch()
    path = trainer.save(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="onecycle schedule that ends at epoch 2"):
        Trainer.resume(path, corpus, num_epochs=5)

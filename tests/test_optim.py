"""tg.optim as torch.optim: every optimizer, every option, step by step against PyTorch
(float64; skipped without torch) and against its update rule written out here in NumPy
(so the suite checks them without torch too); parameter groups, state dicts, zero_grad,
argument errors, and torch's clip_grad_norm_."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg

EPS64 = np.finfo(np.float64).eps

#: every option of every optimizer, each in a setting or two
CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.1}),
    ("Adam", {"lr": 0.05, "betas": (0.3, 0.7), "eps": 1e-3, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.1, "amsgrad": True, "betas": (0.9, 0.5)}),  # v falls: v̂ is not v
    ("Adam", {"lr": 0.1, "maximize": True, "amsgrad": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.1, "weight_decay": 0.2, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.1}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True, "betas": (0.8, 0.9)}),
    ("AdamW", {"lr": 0.1, "maximize": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.05, "alpha": 0.5, "eps": 1e-4, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.05, "momentum": 0.7, "centered": True}),
    ("RMSprop", {"lr": 0.05, "centered": True, "maximize": True}),
    ("RMSprop", {"lr": 0.05, "momentum": 0.5}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("Adagrad", {"lr": 0.1, "maximize": True}),
]
STEPS = 6


def problem(seed: int):
    """Two parameters (a matrix, a vector) and STEPS gradients; the vector has none at
    step 2 (its state must then wait, its step count too)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    grads = [[rng.standard_normal(p.shape) if not (k == 2 and i == 1) else None
              for i, p in enumerate(params)] for k in range(STEPS)]
    return params, grads


def run_tg(name, options, params, grads, groups=None, backend="numpy", dtype="float64"):
    ps = [tg.Tensor(p, dtype=dtype, requires_grad=True, backend=backend) for p in params]
    opt = getattr(tg.optim, name)(ps if groups is None else groups(ps), **options)
    trace = []
    for step in grads:
        for p, g in zip(ps, step, strict=True):
            p.grad = None if g is None else tg.Tensor(g, dtype=dtype, backend=backend)
        opt.step()
        trace.append([p.numpy().copy() for p in ps])
    return trace, opt


@pytest.mark.parametrize("name,options", CASES[::2])
def test_each_optimizer_agrees_across_backends(other_backend, name, options):
    """float32, as a model trains: the GPU's sqrt and divide round within an ulp of
    NumPy's, a few roundings per step over six steps."""
    params, grads = problem(6)
    here, _ = run_tg(name, options, params, grads, dtype="float32")
    there, opt = run_tg(name, options, params, grads, backend=other_backend, dtype="float32")
    assert all(p.backend == other_backend for p in opt.params)
    for a, b in zip(here[-1], there[-1], strict=True):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,options", CASES)
def test_each_optimizer_matches_torch_step_by_step(name, options):
    torch = pytest.importorskip("torch")
    params, grads = problem(0)
    trace, _ = run_tg(name, options, params, grads)
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    opt = getattr(torch.optim, name)(ps, **options)
    for step, ours in zip(grads, trace, strict=True):
        for p, g in zip(ps, step, strict=True):
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
        for p, mine in zip(ps, ours, strict=True):
            # float64, the same operations in the same order up to a few roundings a step
            np.testing.assert_allclose(mine, p.detach().numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name,options", CASES)
def test_each_optimizers_state_dict_matches_torchs(name, options):
    torch = pytest.importorskip("torch")
    params, grads = problem(1)
    _, ours = run_tg(name, options, params, grads)
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    theirs = getattr(torch.optim, name)(ps, **options)
    for step in grads:
        for p, g in zip(ps, step, strict=True):
            p.grad = None if g is None else torch.tensor(g)
        theirs.step()
    mine, want = ours.state_dict(), theirs.state_dict()
    assert list(mine["state"]) == list(want["state"])
    for i, entries in want["state"].items():
        kept = {k for k, v in entries.items() if v is not None}  # torch's momentum_buffer None
        assert set(mine["state"][i]) == kept
        for key in kept:
            np.testing.assert_allclose(mine["state"][i][key], entries[key].numpy(),
                                       rtol=1e-12, atol=1e-13, err_msg=key)
    group, torch_group = mine["param_groups"][0], want["param_groups"][0]
    for key, value in group.items():  # every hyper-parameter torch's has, of equal value
        assert torch_group[key] == value, key


def reference(name, options, params, grads):
    """The update rules written out in NumPy, float64, as torch's documentation gives
    them; returns each step's parameters."""
    o = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
         "nesterov": False, "maximize": False, "betas": (0.9, 0.999), "eps": 1e-8,
         "amsgrad": False, "alpha": 0.99, "centered": False, "lr_decay": 0.0,
         "initial_accumulator_value": 0.0, "decoupled_weight_decay": name == "AdamW"}
    if name == "RMSprop":
        o["lr"] = 1e-2
    if name == "Adagrad":
        o.update(lr=1e-2, eps=1e-10)
    if name == "AdamW":
        o["weight_decay"] = 1e-2
    o.update(options)
    ps = [p.copy() for p in params]
    state = [{"t": 0, "sum": np.full_like(p, o["initial_accumulator_value"])} for p in ps]
    trace = []
    for step in grads:
        for p, g, s in zip(ps, step, state, strict=True):
            if g is None:
                continue
            g = -g if o["maximize"] else g
            s["t"] += 1
            t, lr, wd = s["t"], o["lr"], o["weight_decay"]
            if name in ("Adam", "AdamW") and o["decoupled_weight_decay"]:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
            if name == "SGD":
                if o["momentum"]:
                    s["b"] = g.copy() if t == 1 else (o["momentum"] * s["b"]
                                                      + (1 - o["dampening"]) * g)
                    g = g + o["momentum"] * s["b"] if o["nesterov"] else s["b"]
                p -= lr * g
            elif name in ("Adam", "AdamW"):
                b1, b2 = o["betas"]
                s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
                s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
                v = s["v"]
                if o["amsgrad"]:
                    s["vmax"] = v = np.maximum(s.get("vmax", 0), v)
                p -= lr / (1 - b1 ** t) * s["m"] / (np.sqrt(v / (1 - b2 ** t)) + o["eps"])
            elif name == "RMSprop":
                a = o["alpha"]
                s["sq"] = a * s.get("sq", 0) + (1 - a) * g * g
                avg = s["sq"]
                if o["centered"]:
                    s["mean"] = a * s.get("mean", 0) + (1 - a) * g
                    avg = avg - s["mean"] ** 2
                d = np.sqrt(avg) + o["eps"]
                if o["momentum"]:
                    s["b"] = o["momentum"] * s.get("b", 0) + g / d
                    p -= lr * s["b"]
                else:
                    p -= lr * g / d
            else:  # Adagrad
                s["sum"] = s["sum"] + g * g
                p -= lr / (1 + (t - 1) * o["lr_decay"]) * g / (np.sqrt(s["sum"]) + o["eps"])
        trace.append([p.copy() for p in ps])
    return trace


@pytest.mark.parametrize("name,options", CASES)
def test_each_optimizer_follows_its_update_rule(name, options):
    """Without torch: the rule as the docs write it, a few roundings apart per step
    (the moments are rounded in a different order)."""
    params, grads = problem(2)
    trace, _ = run_tg(name, options, params, grads)
    for ours, want in zip(trace, reference(name, options, params, grads), strict=True):
        for mine, p in zip(ours, want, strict=True):
            np.testing.assert_allclose(mine, p, rtol=1e-11, atol=1e-12)


def test_the_reference_is_not_trivially_satisfied():
    """The rules differ from each other: a reference that ignored its options would fail."""
    params, grads = problem(2)
    finals = {np.concatenate([p.ravel() for p in reference(*c, params, grads)[-1]]).tobytes()
              for c in CASES}
    assert len(finals) == len(CASES)


# ----------------------------------------------------------------- parameter groups
def test_param_groups_take_their_own_hyper_parameters_and_the_defaults_as_torch():
    torch = pytest.importorskip("torch")
    params, grads = problem(3)

    def groups(ps):
        return [{"params": [ps[0]]}, {"params": ps[1], "lr": 0.5, "momentum": 0.0}]

    trace, opt = run_tg("SGD", {"lr": 0.1, "momentum": 0.9}, params, grads, groups)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.0]
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    theirs = torch.optim.SGD([{"params": [ps[0]]}, {"params": ps[1], "lr": 0.5,
                                                    "momentum": 0.0}], lr=0.1, momentum=0.9)
    for step in grads:
        for p, g in zip(ps, step, strict=True):
            p.grad = None if g is None else torch.tensor(g)
        theirs.step()
    for mine, p in zip(trace[-1], ps, strict=True):
        np.testing.assert_allclose(mine, p.detach().numpy(), rtol=1e-12, atol=1e-13)


def test_param_groups_without_torch_each_use_their_lr():
    a, b = (tg.Tensor(np.zeros(2), dtype="float64", requires_grad=True) for _ in range(2))
    opt = tg.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    for p in (a, b):
        p.grad = tg.Tensor(np.ones(2), dtype="float64")
    opt.step()
    np.testing.assert_array_equal(a.numpy(), [-0.1, -0.1])
    np.testing.assert_array_equal(b.numpy(), [-0.5, -0.5])


def test_add_param_group_fills_the_defaults_and_refuses_a_parameter_twice():
    a, b = (tg.Tensor([1.0], requires_grad=True) for _ in range(2))
    opt = tg.optim.Adam([a], lr=0.01, betas=(0.8, 0.9))
    opt.add_param_group({"params": b, "lr": 0.1})
    assert opt.param_groups[1] == {"params": [b], "lr": 0.1, "betas": (0.8, 0.9),
                                   "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
                                   "maximize": False, "decoupled_weight_decay": False}
    assert opt.params == [a, b]
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter "
                                         "group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="ordering of tensors in sets will change"):
        opt.add_param_group({"params": {tg.Tensor([1.0], requires_grad=True)}})
    with pytest.raises(TypeError, match="param_group must be a dict, got list"):
        opt.add_param_group([b])
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        opt.add_param_group({"params": [tg.Tensor([1.0], requires_grad=True)], "lr": -1})
    assert len(opt.param_groups) == 2


def test_adagrad_makes_the_state_of_an_added_group_at_once():
    a, b = (tg.Tensor([1.0, 2.0], requires_grad=True) for _ in range(2))
    opt = tg.optim.Adagrad([a], initial_accumulator_value=0.25)
    opt.add_param_group({"params": [b], "initial_accumulator_value": 2.0})
    assert opt.state[a]["step"] == 0 and opt.state[b]["sum"].tolist() == [2.0, 2.0]
    assert opt.state[a]["sum"].tolist() == [0.25, 0.25]


def test_zero_grad_sets_to_none_by_default_or_to_zeros():
    p = tg.Tensor([1.0, 2.0], requires_grad=True)
    opt = tg.optim.SGD([p], lr=0.1)
    p.grad = tg.Tensor([3.0, 4.0])
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and p.grad.numpy().tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_the_lr_property_reads_the_first_group_and_sets_them_all():
    a, b = (tg.Tensor([1.0], requires_grad=True) for _ in range(2))
    opt = tg.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert opt.lr == 0.1
    opt.lr = 0.2
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]


# --------------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name,options", CASES[::3])
def test_a_state_dict_resumes_the_same_run_also_through_its_flat_form(name, options):
    """3 steps, state_dict (torch's layout, or its flat .npz form), 3 more in a fresh
    optimizer == 6 in one go, bit for bit."""
    params, grads = problem(4)
    whole, _ = run_tg(name, options, params, grads)
    first, opt = run_tg(name, options, params, grads[:3])
    for form in (lambda s: s, tg.optim.flatten_state_dict):
        ps = [tg.Tensor(p, dtype="float64", requires_grad=True) for p in first[-1]]
        again = getattr(tg.optim, name)(ps, lr=123.0)  # the state brings the settings
        saved = form(opt.state_dict())
        if form is not tg.optim.flatten_state_dict:
            assert set(saved) == {"state", "param_groups"}
        else:
            assert all(isinstance(v, np.ndarray) for v in saved.values())
        again.load_state_dict(saved)
        for step in grads[3:]:
            for p, g in zip(ps, step, strict=True):
                p.grad = None if g is None else tg.Tensor(g, dtype="float64")
            again.step()
        for p, want in zip(ps, whole[-1], strict=True):
            np.testing.assert_array_equal(p.numpy(), want)


def test_state_dict_is_torchs_layout_and_holds_copies():
    p = tg.Tensor([1.0, 2.0], requires_grad=True)
    opt = tg.optim.Adam([p], lr=0.1)
    p.grad = tg.Tensor([1.0, 1.0])
    opt.step()
    state = opt.state_dict()
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert float(state["state"][0]["step"]) == 1.0 and state["param_groups"][0]["params"] == [0]
    state["state"][0]["exp_avg"][...] = 7.0
    assert not (opt.state[p]["exp_avg"] == 7.0).any()


def test_load_state_dict_refuses_a_state_of_another_shape_of_groups():
    a, b = (tg.Tensor([1.0], requires_grad=True) for _ in range(2))
    one = tg.optim.SGD([a, b], lr=0.1)
    two = tg.optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        one.load_state_dict(two.state_dict())
    three = tg.optim.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        three.load_state_dict(one.state_dict())
    with pytest.raises(ValueError, match="is neither param_groups"):
        three.load_state_dict({"param_groups.0.params": np.array([0]), "extra": 1})


def test_an_old_flat_adam_state_loads_with_its_step_counts():
    """The layout checkpoints had before parameter groups: lr, t, betas, eps, m.i, v.i."""
    p = tg.Tensor([1.0, 2.0], requires_grad=True)
    opt = tg.optim.Adam([p], lr=0.5)
    opt.load_state_dict({"lr": np.asarray(0.01), "t": np.asarray([4]),
                         "betas": np.asarray([0.8, 0.9]), "eps": np.asarray(1e-6),
                         "weight_decay": np.asarray(0.0),
                         "m.0": np.asarray([0.1, 0.2]), "v.0": np.asarray([0.3, 0.4])})
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["betas"] == (0.8, 0.9)
    assert opt.steps == [4] and opt.m[0].tolist() == pytest.approx([0.1, 0.2])


# ------------------------------------------------------------------ argument errors
#: (optimizer, arguments, error, message, whether torch refuses them alike)
BAD = [
    ("SGD", {"lr": -0.1}, ValueError, r"Invalid learning rate: -0.1", True),
    ("SGD", {"lr": float("nan")}, ValueError, r"Invalid learning rate: nan", False),
    ("SGD", {"lr": "1"}, TypeError, r"SGD learning rate must be a number", True),
    ("SGD", {"momentum": -1}, ValueError, r"Invalid momentum value: -1", True),
    ("SGD", {"weight_decay": -1}, ValueError, r"Invalid weight_decay value: -1", True),
    ("SGD", {"nesterov": True}, ValueError,
     "Nesterov momentum requires a momentum and zero dampening", True),
    ("SGD", {"momentum": 0.9, "dampening": 0.5, "nesterov": True}, ValueError,
     "Nesterov momentum requires a momentum and zero dampening", True),
    ("SGD", {"maximize": 1}, TypeError, "SGD maximize must be True or False", False),
    ("Adam", {"betas": (1.0, 0.9)}, ValueError, r"Invalid beta parameter at index 0: 1.0",
     True),
    ("Adam", {"betas": (0.9, -0.1)}, ValueError, r"Invalid beta parameter at index 1: -0.1",
     True),
    ("Adam", {"eps": -1e-8}, ValueError, r"Invalid epsilon value: -1e-08", True),
    ("Adam", {"lr": -1.0}, ValueError, r"Invalid learning rate: -1.0", True),
    ("AdamW", {"weight_decay": -0.01}, ValueError,
     r"Invalid weight_decay value: -0.01 \(AdamW", True),
    ("Adam", {"amsgrad": "yes"}, TypeError, "amsgrad must be True or False", False),
    ("RMSprop", {"alpha": -0.5}, ValueError, r"Invalid alpha value: -0.5", True),
    ("RMSprop", {"momentum": -0.5}, ValueError, r"Invalid momentum value: -0.5", True),
    ("RMSprop", {"eps": -1.0}, ValueError, r"Invalid epsilon value: -1.0", True),
    ("RMSprop", {"weight_decay": -1.0}, ValueError, r"Invalid weight_decay value", True),
    ("Adagrad", {"lr_decay": -1}, ValueError, r"Invalid lr_decay value: -1", True),
    ("Adagrad", {"initial_accumulator_value": -1}, ValueError,
     r"Invalid initial_accumulator_value value: -1", True),
    ("Adagrad", {"eps": -1}, ValueError, r"Invalid epsilon value: -1", True),
    ("Adagrad", {"weight_decay": -1}, ValueError, r"Invalid weight_decay value: -1", True),
]


@pytest.mark.parametrize("name,kwargs,error,message,torch_too", BAD)
def test_bad_arguments_raise_torchs_error_types_with_clear_messages(name, kwargs, error,
                                                                   message, torch_too):
    with pytest.raises(error, match=message):
        getattr(tg.optim, name)([tg.Tensor([1.0], requires_grad=True)], **kwargs)


@pytest.mark.parametrize("name,kwargs,error,message,torch_too",
                         [case for case in BAD if case[-1]])
def test_torch_refuses_the_same_arguments_with_the_same_error_type(name, kwargs, error,
                                                                   message, torch_too):
    torch = pytest.importorskip("torch")
    with pytest.raises(error):
        getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("params,error,message", [
    (lambda p: p, TypeError, r"got one Tensor; wrap it"),
    (lambda p: [], ValueError, r"empty parameter list"),
    (lambda p: [{"lr": 0.1}], ValueError, r"must have a 'params' entry"),
    (lambda p: [np.ones(2)], TypeError, r"must be tensors, got a ndarray"),
    (lambda p: [p, p], ValueError, r"the same parameter twice"),
])
def test_bad_parameter_lists_are_refused(params, error, message):
    with pytest.raises(error, match=message):
        tg.optim.SGD(params(tg.Tensor([1.0], requires_grad=True)), lr=0.1)


# ------------------------------------------------------------------- clip_grad_norm_
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ours = [tg.Tensor(np.zeros_like(g), dtype="float64", requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads, strict=True):
        o.grad, t.grad = tg.Tensor(g, dtype="float64"), torch.tensor(g)
    norm = tg.nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert norm.dtype == np.float64 and norm.shape == ()
    np.testing.assert_allclose(norm.numpy(), want.numpy(), rtol=1e-13)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-13)


def test_clip_grad_norm_underscore_follows_torchs_formula():
    """Without torch: factor max_norm / (norm + 1e-6), at most 1; float32 stays float32."""
    g = np.array([3.0, 4.0], np.float32)
    p = tg.Tensor(np.zeros(2, np.float32), requires_grad=True)
    p.grad = tg.Tensor(g)
    norm = tg.nn.utils.clip_grad_norm_([p], 1.0)
    assert norm.dtype == np.float32 and float(norm.numpy()) == 5.0
    np.testing.assert_allclose(p.grad.numpy(), g / np.float32(5 + 1e-6), rtol=1e-7)
    p.grad = tg.Tensor(g)
    tg.nn.utils.clip_grad_norm_(p, 10.0)  # below max_norm: unchanged
    np.testing.assert_array_equal(p.grad.numpy(), g)
    p.grad = tg.Tensor(np.array([-7.0, 2.0], np.float32))
    assert float(tg.nn.utils.clip_grad_norm_(p, 10.0, norm_type="inf").numpy()) == 7.0
    empty = tg.nn.utils.clip_grad_norm_([tg.Tensor([1.0], requires_grad=True)], 1.0)
    assert float(empty.numpy()) == 0.0


def test_clip_grad_norm_underscore_on_a_nonfinite_norm():
    p = tg.Tensor(np.zeros(2), requires_grad=True)
    p.grad = tg.Tensor([math.inf, 1.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 .* is non-finite"):
        tg.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert p.grad.numpy()[1] == 1.0  # nothing scaled
    tg.nn.utils.clip_grad_norm_([p], 1.0)  # as torch: scaled by max_norm / inf = 0 (and NaN)
    assert p.grad.numpy()[1] == 0.0
    with pytest.raises(ValueError, match="max_norm must be >= 0, got -1"):
        tg.nn.utils.clip_grad_norm_([p], -1)
    with pytest.raises(ValueError, match="norm_type must be a number > 0"):
        tg.nn.utils.clip_grad_norm_([p], 1.0, norm_type=0)
    with pytest.raises(TypeError, match="takes tensors"):
        tg.nn.utils.clip_grad_norm_([np.ones(2)], 1.0)


def test_named_parameters_make_a_group_with_param_names_as_torchs():
    model = tg.nn.Linear(2, 1)
    opt = tg.optim.SGD(model.named_parameters(), lr=0.1)
    names = [name for name, _ in model.named_parameters()]
    assert opt.param_groups[0]["param_names"] == names
    assert opt.params == list(model.parameters())
    flat = tg.optim.flatten_state_dict(opt.state_dict())
    assert tg.optim.unflatten_state_dict(flat)["param_groups"][0]["param_names"] == names
    with pytest.raises(ValueError, match="Some param names are missing"):
        tg.optim.SGD([("W", model.W), model.b], lr=0.1)


@st.composite
def optimizer_options(draw):
    """An optimizer and a random setting of every option it has."""
    name = draw(st.sampled_from(["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]))
    unit = st.floats(0.0, 0.95)
    o = {"lr": draw(st.floats(1e-3, 0.5)), "weight_decay": draw(st.sampled_from([0.0, 0.01, 0.3])),
         "maximize": draw(st.booleans())}
    if name == "SGD":
        o["momentum"] = draw(st.sampled_from([0.0, 0.5, 0.9]))
        o["nesterov"] = draw(st.booleans()) and o["momentum"] > 0
        o["dampening"] = 0.0 if o["nesterov"] else draw(unit)
    elif name in ("Adam", "AdamW"):
        o["betas"] = (draw(unit), draw(unit))
        o["eps"] = draw(st.sampled_from([1e-8, 1e-3]))
        o["amsgrad"] = draw(st.booleans())
    elif name == "RMSprop":
        # a centered variance s − ḡ² of few steps (or of alpha ≈ 0) can be ~0, where
        # its rounding decides a huge step: alpha ≥ 0.5 and eps 0.1 keep it well-posed
        o["alpha"] = draw(st.floats(0.5, 0.99))
        o["momentum"] = draw(st.sampled_from([0.0, 0.5]))
        o["centered"] = draw(st.booleans())
        o["eps"] = 0.1
    else:
        o["lr_decay"] = draw(st.sampled_from([0.0, 0.1]))
        o["initial_accumulator_value"] = draw(st.sampled_from([0.0, 0.5]))
    return name, o


@given(case=optimizer_options(), seed=st.integers(0, 2**16))
def test_any_setting_of_any_optimizer_follows_its_rule_and_torch(case, seed):
    name, options = case
    params, grads = problem(seed)
    trace, _ = run_tg(name, options, params, grads)
    for ours, want in zip(trace, reference(name, options, params, grads), strict=True):
        for mine, p in zip(ours, want, strict=True):
            np.testing.assert_allclose(mine, p, rtol=1e-9, atol=1e-10)
    try:
        import torch
    except ImportError:
        return
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    opt = getattr(torch.optim, name)(ps, **options)
    for step in grads:
        for p, g in zip(ps, step, strict=True):
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
    for mine, p in zip(trace[-1], ps, strict=True):
        np.testing.assert_allclose(mine, p.detach().numpy(), rtol=1e-10, atol=1e-11)


def test_setting_a_bad_lr_changes_no_group():
    opt = tg.optim.SGD([tg.Tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: -2"):
        opt.lr = -2
    assert opt.param_groups[0]["lr"] == 0.1

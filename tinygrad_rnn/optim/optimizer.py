"""The optimizer base class, as ``torch.optim.Optimizer``: parameter groups, per-parameter
state, ``state_dict``/``load_state_dict`` in torch's layout, and a flat form of it for
``.npz`` files (no pickle).

``param_groups`` is a list of dicts, each with its ``params`` and every hyper-parameter
(those a group leaves out come from the optimizer's ``defaults``). ``state`` maps a
parameter to a dict of its arrays (on the parameter's backend) and its ``step`` count.
Updates run on the raw arrays, outside the graph, in place: parameters keep their
identity (and their backend), so a model and its optimizer stay in step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .._tensor import Tensor
from ..checks import as_flag, is_real

#: torch's words for a hyper-parameter in "Invalid ...: value"
_TORCH_WORDS = {"lr": "learning rate", "eps": "epsilon value"}
#: the rules hyper-parameters obey (torch checks the same ones; a NaN or inf is refused
#: here too, where torch would let it spread into every parameter)
_RULES = {">= 0": lambda v: 0 <= v < math.inf, "in [0, 1)": lambda v: 0 <= v < 1,
          "finite": math.isfinite}


def check_number(opt: str, group: dict[str, Any], key: str, rule: str = ">= 0") -> float:
    """``group[key]`` as a float, stored back, if it obeys ``rule``; else a TypeError
    (not a number) or torch's ValueError ("Invalid learning rate: -1.0"), naming it."""
    value = group[key]
    what = _TORCH_WORDS.get(key, key)
    if not is_real(value):
        raise TypeError(f"{opt} {what} must be a number, got {value!r}")
    if not _RULES[rule](value):
        rule_text = "a finite number " + rule if rule != "finite" else "a finite number"
        raise ValueError(f"Invalid {what if key in _TORCH_WORDS else key + ' value'}: "
                         f"{value} ({opt} {what} must be {rule_text})")
    group[key] = float(value)
    return group[key]


def check_flag(opt: str, group: dict[str, Any], key: str) -> bool:
    """``group[key]`` if True or False (stored back as a bool), else a TypeError."""
    group[key] = as_flag(group[key], f"{opt} {key}")
    return group[key]


class Optimizer:
    """Base class: ``step()`` updates the parameters of every group that have a ``.grad``.

    ``params``: an iterable of tensors (one group), or of dicts, each a group with its
    ``params`` and any hyper-parameters of its own (``[{"params": a}, {"params": b,
    "lr": 0.1}]``). A subclass passes its ``defaults`` and checks a group in
    ``_check_group``.
    """

    #: in a state dict from before parameter groups (flat ``<name>.<i>`` arrays): the
    #: old name of each state array, and its name now
    _LEGACY_BUFFERS: dict[str, str] = {}

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]],
                 defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self._state_backend: dict[Tensor, Any] = {}  # where each parameter's state lives
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):  # iterating it would give its rows, not parameters
            raise TypeError("optimizer parameters must be a list of tensors (e.g. "
                            "model.parameters()), got one Tensor; wrap it: [p]")
        if isinstance(params, dict):
            raise TypeError("optimizer parameters must be an iterable of tensors or of dicts "
                            "(parameter groups), got one dict; wrap it: [group]")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (a dict with ``params``; the hyper-parameters it lacks are the
        defaults), e.g. layers unfrozen while training goes on. Torch's rules: the
        params are tensors in an ordered collection, each in one group only."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry (the tensors it holds)")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered "
                            "collections, but the ordering of tensors in sets will change "
                            "between runs. Please use a list instead.")
        params = list(params)
        named = [isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in params]
        if any(named):  # model.named_parameters(), as torch 2.x takes
            if not all(named):
                raise ValueError("all optimizer params should be with/without names. Some "
                                 "param names are missing")
            param_group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer parameters must be tensors, got a "
                                f"{type(p).__name__}")
            if not p.is_leaf:  # its .grad is never filled: stepping it would do nothing
                raise ValueError("optimizer got a tensor computed from others (not a leaf); "
                                 "pass the leaves it came from, e.g. model.parameters()")
        # a frozen parameter (requires_grad False) is accepted and, having no .grad, skipped
        if len({id(p) for p in params}) != len(params):  # torch warns; stepping twice is wrong
            raise ValueError("optimizer got the same parameter twice, so it would step it "
                             "twice; pass model.parameters(), which lists a shared one once")
        if {id(p) for p in params} & {id(q) for q in self.params}:
            raise ValueError("some parameters appear in more than one parameter group")
        param_group["params"] = params
        for name, default in self.defaults.items():
            param_group.setdefault(name, default)
        self._check_group(param_group)
        self.param_groups.append(param_group)
        self._init_group(param_group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Check (and normalise, in place) a group's hyper-parameters; subclasses."""
        check_number(type(self).__name__, group, "lr")

    def _init_group(self, group: dict[str, Any]) -> None:
        """State made when a group is added (Adagrad's sums); most make it at a step."""

    @property
    def params(self) -> list[Tensor]:
        """Every group's parameters, in order (the ids ``state_dict`` gives them)."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self) -> float:
        """The learning rate (the first group's). Not torch's: there, read and set
        ``param_groups[i]["lr"]``; setting this sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        value = check_number(type(self).__name__, {"lr": value}, "lr")  # before any change
        for group in self.param_groups:
            group["lr"] = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set each parameter's ``.grad`` to None (torch's default), or to zeros."""
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.data[...] = 0
                p.grad._version.count += 1  # a graph that read the .grad sees it changed

    # ------------------------------------------------------------------- steps
    def step(self) -> None:
        """One update of every parameter that has a ``.grad``; subclasses."""
        raise NotImplementedError

    def _with_grad(self, group: dict[str, Any]) -> Iterator[tuple[Tensor, Any, dict]]:
        """``(p, g, state)`` of the group's parameters that have a ``.grad``: ``g`` its
        array, negated when the group maximizes; ``state`` on ``p``'s backend."""
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad.data
            yield p, (-g if group.get("maximize") else g), self._state_of(p)
            p._version.count += 1  # a graph made before the step saw the old values

    def _state_of(self, p: Tensor) -> dict[str, Any]:
        """``p``'s state, moved to its backend if ``Module.to()`` moved ``p`` since it
        was made (torch's optimizer state follows the parameter too)."""
        state = self.state.setdefault(p, {})
        old = self._state_backend.get(p)
        if old is not None and old is not p._backend:
            for k, v in state.items():
                if k != "step":
                    state[k] = p._backend.asarray(old.to_numpy(v))
        self._state_backend[p] = p._backend
        return state

    def _zeros(self, p: Tensor, fill: float = 0.0) -> Any:
        xp = p._backend.xp
        return xp.full_like(p.data, fill) if fill else xp.zeros_like(p.data)

    # ------------------------------------------------------------- state dicts
    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{"state": {i: {name: array, "step": 0-d float32}},
        "param_groups": [{hyper-parameters..., "params": [i, ...]}]}``, each parameter
        named by its place ``i`` in :attr:`params`; arrays are NumPy copies."""
        index = {id(p): i for i, p in enumerate(self.params)}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {}
        for p, entries in self.state.items():
            backend = self._state_backend.get(p, p._backend)
            state[index[id(p)]] = {
                k: (np.asarray(v, dtype=np.float32) if k == "step"
                    else np.array(backend.to_numpy(v))) for k, v in entries.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (torch's layout, its flat form from
        :func:`flatten_state_dict`, or the flat one of the versions before parameter
        groups). Every group keeps its parameters and takes the saved hyper-parameters;
        all is checked before anything changes."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"optimizer state must be a dict, got {type(state_dict).__name__}")
        if not ("state" in state_dict and "param_groups" in state_dict):
            state_dict = (unflatten_state_dict(state_dict)
                          if any(k.startswith("param_groups.") for k in state_dict)
                          else self._from_legacy(state_dict))
        name, saved = type(self).__name__, state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved)}) than this {name} ({len(self.param_groups)})")
        ids: dict[int, Tensor] = {}
        groups = []
        for old, group in zip(saved, self.param_groups, strict=True):
            if len(old["params"]) != len(group["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group ({len(old['params'])} "
                                 f"parameters, this {name}'s has {len(group['params'])})")
            ids.update(zip((int(i) for i in old["params"]), group["params"], strict=True))
            new = {**self.defaults, **{k: v for k, v in old.items() if k != "params"},
                   "params": group["params"]}
            if "param_names" in group and "param_names" not in new:  # torch keeps them
                new["param_names"] = group["param_names"]
            self._check_group(new)
            groups.append(new)
        state, backends = {}, {}
        for key, entries in state_dict["state"].items():
            if int(key) not in ids:
                raise ValueError(f"{name} state has an entry for parameter {key}, which is in "
                                 "no parameter group")
            p = ids[int(key)]
            state[p] = {k: self._state_value(p, int(key), k, v) for k, v in entries.items()}
            backends[p] = p._backend
        self.param_groups[:] = groups
        self.state, self._state_backend = state, backends
        for group in groups:  # state a group always has (Adagrad's sums) where none was saved
            self._init_group(group)

    def _state_value(self, p: Tensor, i: int, key: str, value: Any) -> Any:
        """A saved state entry for parameter ``i``: ``step`` as an int, an array on
        ``p``'s backend in its dtype (torch casts floating state to the parameter's)."""
        if key == "step":
            return int(float(np.asarray(value)))
        value = np.asarray(value)
        if value.shape != p.shape:
            raise ValueError(f"{type(self).__name__} state for parameter {i}: {key} has shape "
                             f"{value.shape}, the parameter has {p.shape}")
        return p._backend.asarray(value.astype(p.dtype))

    def _from_legacy(self, flat: dict[str, Any]) -> dict[str, Any]:
        """A flat state of the versions before parameter groups (``lr``, other
        hyper-parameters, ``t``: step counts, ``<old name>.<i>`` arrays) in torch's
        layout; the hyper-parameters it lacks stay this optimizer's."""
        name = type(self).__name__
        if "lr" not in flat:
            raise ValueError(f"{name} state has neither 'state' and 'param_groups' (torch's "
                             "layout) nor 'lr' (a state from before parameter groups)")
        if len(self.param_groups) != 1:
            raise ValueError(f"a {name} state from before parameter groups holds one group; "
                             f"this {name} has {len(self.param_groups)}")
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        for key in self.defaults:
            if key in flat:
                group[key] = _python(flat[key])
        n = len(self.params)
        group["params"] = list(range(n))
        steps = None
        if "t" in flat:  # one count for all parameters (oldest), or one per parameter
            steps = np.asarray(flat["t"], dtype=np.int64)
            steps = np.full(n, steps) if steps.ndim == 0 else steps
            if steps.shape != (n,):
                raise ValueError(f"{name} state has step counts for {steps.size} parameters, "
                                 f"this optimizer has {n}")
        state: dict[int, dict[str, Any]] = {}
        for i in range(n):
            found = {new: flat[f"{old}.{i}"] for old, new in self._LEGACY_BUFFERS.items()
                     if f"{old}.{i}" in flat}
            missing = [f"{old}.{i}" for old in self._LEGACY_BUFFERS if f"{old}.{i}" not in flat]
            if missing and (found or self._legacy_needs(group)):
                raise ValueError(f"{name} state has no {missing[0]!r} for parameter {i}")
            if found:
                state[i] = found if steps is None else {"step": steps[i], **found}
        return {"state": state, "param_groups": [group]}

    def _legacy_needs(self, group: dict[str, Any]) -> bool:
        """Whether a legacy state of ``group`` must hold the per-parameter arrays (else
        a parameter without them starts afresh)."""
        return False


def _python(value: Any) -> Any:
    """A stored hyper-parameter as the Python value torch keeps: a float, int or bool, a
    tuple (``betas``)."""
    value = np.asarray(value)
    if value.ndim == 0:
        return value.item()
    return tuple(value.tolist())


def flatten_state_dict(state_dict: dict[str, Any]) -> dict[str, np.ndarray]:
    """An optimizer's :meth:`~Optimizer.state_dict` as flat NumPy arrays for an ``.npz``
    (read back without pickle): ``param_groups.<g>.<key>`` (``params``: the ids) and
    ``state.<i>.<key>``. ``load_state_dict`` takes the result as it is."""
    flat = {}
    for g, group in enumerate(state_dict["param_groups"]):
        for key, value in group.items():
            if value is not None:  # torch's unset options (foreach=None): nothing to keep
                flat[f"param_groups.{g}.{key}"] = np.asarray(value)
    for i, entries in state_dict["state"].items():
        for key, value in entries.items():
            flat[f"state.{i}.{key}"] = np.asarray(value)
    return flat


def unflatten_state_dict(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_state_dict`: torch's layout again."""
    groups: dict[int, dict[str, Any]] = {}
    state: dict[int, dict[str, Any]] = {}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        index, _, name = rest.partition(".")
        if head not in ("param_groups", "state") or not index.isdigit() or not name:
            raise ValueError(f"optimizer state entry {key!r} is neither "
                             "param_groups.<g>.<key> nor state.<i>.<key>")
        if head == "state":
            state.setdefault(int(index), {})[name] = np.asarray(value)
        elif name in ("params", "param_names"):
            groups.setdefault(int(index), {})[name] = np.ravel(value).tolist()
        else:
            groups.setdefault(int(index), {})[name] = _python(value)
    if sorted(groups) != list(range(len(groups))) or any("params" not in g
                                                         for g in groups.values()):
        raise ValueError("optimizer state's param_groups entries are not groups 0, 1, ... "
                         "each with its params")
    return {"state": state, "param_groups": [groups[g] for g in sorted(groups)]}

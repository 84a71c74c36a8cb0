"""Checkpoints: one ``.npz`` of plain arrays, written atomically, read without pickle.

Layout: ``param/<name>`` arrays, ``optim/<key>`` arrays (the optimizer's state dict in
the flat form of ``tg.optim.flatten_state_dict``: ``optim/param_groups.<g>.<key>``,
``optim/state.<i>.<key>``; a checkpoint from before parameter groups has ``optim/lr``,
``optim/m.<i>``..., which ``load_state_dict`` still reads), ``vocab`` (a string array,
``idx_to_token``) and ``meta`` (a JSON string: model and training configuration,
epoch, history, data-loader state, the learning-rate scheduler's state). Written and
read by the framework's ``tg.save`` / ``tg.load`` (atomic, never unpickled); this
module adds the layout and its checks.

A checkpoint from before ``RNNLM`` had GRUs and LSTMs (its model meta has no
``model`` key; its RNN's parameters are ``rnn.W_xh``, ``rnn.W_hh``, ``rnn.b_h``) is read
as the same network in today's names: ``rnn.W_ih_l0``, ``rnn.W_hh_l0``,
``rnn.b_ih_l0 = b_h`` and ``rnn.b_hh_l0 = 0``, whose forward is the old one's
(:func:`upgrade`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_rnn as tg

from .data import UNK
from .model import INITS, MODELS, parameter_shapes

FORMAT = "tinygrad_rnn.checkpoint/1"
#: The largest size (vocabulary, hidden units, layers, embedding, batch, steps, epochs) a
#: checkpoint may name: above any character vocabulary (Unicode has 1,114,112 code
#: points) and any layer that fits in memory (h = 2^24 makes a 1 PiB W_hh); a larger
#: one is a damaged or hostile file, refused before anything is sized from it.
MAX_SIZE = 2**24


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message names the file."""


@contextlib.contextmanager
def reading(path: str | os.PathLike[str], *also: type[Exception]) -> Iterator[None]:
    """Turn a missing or mistyped entry met while rebuilding from a checkpoint into a
    ``CheckpointError`` naming the file (a file from another version, or edited);
    ``also``: more exception types to read that way (``ValueError`` around a
    ``load_state_dict``, which checks shapes and values)."""
    try:
        yield
    except CheckpointError:  # already says what is wrong, naming the file
        raise
    except (KeyError, TypeError, AttributeError, IndexError, *also) as e:
        raise CheckpointError(
            f"checkpoint {path} is not one this version can read: {type(e).__name__}: {e}"
        ) from None


def save(path: str | os.PathLike[str], params: dict[str, np.ndarray], vocab_tokens: list[str],
         meta: dict[str, Any], optim_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically. ``meta`` must be JSON-serialisable; its ``format``
    key, if any (a loaded checkpoint's meta has one), must be this version's; a token
    may not end in NUL, which ``.npz`` string arrays drop. ``optim_state``: an
    optimizer's ``state_dict()`` (torch's layout, flattened here) or its flat form (what
    :func:`load` returns)."""
    if meta.get("format", FORMAT) != FORMAT:
        raise CheckpointError(f"checkpoint meta has format {meta['format']!r}; the 'format' "
                              f"key is the file's own, {FORMAT!r}")
    if any(t.endswith("\0") for t in vocab_tokens):
        raise CheckpointError("a vocabulary token ends in NUL, which the .npz string array "
                              "would drop")
    if optim_state is not None and "param_groups" in optim_state:  # torch's nested layout
        optim_state = tg.optim.flatten_state_dict(optim_state)
    arrays = {f"param/{k}": np.asarray(v) for k, v in params.items()}
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in (optim_state or {}).items()})
    arrays["vocab"] = np.array(vocab_tokens, dtype=str)
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, **meta}))
    try:
        return tg.save(arrays, path)
    except tg.serialization.SerializationError as e:
        raise CheckpointError(f"checkpoint {e}") from None


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint: ``{"params", "optim", "vocab", "meta"}``. Never unpickles."""
    path = Path(path)
    try:
        arrays = tg.load(path)
    except tg.serialization.SerializationError as e:
        raise CheckpointError(f"checkpoint {e}") from None
    if "meta" not in arrays or "vocab" not in arrays:
        raise CheckpointError(f"{path} is not a tinygrad_rnn checkpoint (no meta/vocab entries)")
    if arrays["vocab"].ndim != 1:
        raise CheckpointError(f"checkpoint {path} has a vocab entry of shape "
                              f"{arrays['vocab'].shape}, not a list of tokens")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path} has a corrupt meta entry: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} has format {found!r}, expected {FORMAT!r}")
    unknown = sorted(k for k in arrays if k != "vocab" and not k.startswith(("param/", "optim/")))
    if unknown:
        raise CheckpointError(f"checkpoint {path} has an entry {unknown[0]!r} that is neither "
                              "param/..., optim/..., vocab nor meta")
    if arrays["vocab"].dtype.kind != "U":
        raise CheckpointError(f"checkpoint {path} has a vocab entry of {arrays['vocab'].dtype}, "
                              "not strings")
    ckpt = upgrade({
        "params": {k[6:]: v for k, v in arrays.items() if k.startswith("param/")},
        "optim": {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")},
        "vocab": [str(t) for t in arrays["vocab"]],
        "meta": meta,
    })
    validate(path, ckpt)
    return ckpt


# ------------------------------------------------------------------ the strict schema
class _Bad(Exception):
    """A schema violation, the message without the file; :func:`validate` adds it."""


def _size(value: Any) -> bool:
    return type(value) is int and 0 < value <= MAX_SIZE  # type(): a bool is not an int


def _count(value: Any) -> bool:  # an integer >= 0 (epochs done, an offset)
    return type(value) is int and 0 <= value <= MAX_SIZE


def _number(value: Any) -> bool:  # a real number, not a bool, not NaN
    return type(value) in (int, float) and not math.isnan(value)


def _finite_positive(value: Any) -> bool:
    return _number(value) and 0 < value < math.inf


def _float_dtype(value: Any) -> bool:
    try:
        return isinstance(value, str) and np.dtype(value).kind == "f"
    except TypeError:
        return False


#: The model meta: each key's rule, what it must be (for the message), required or not.
_MODEL_META = {
    "vocab_size": (_size, f"an integer in [1, {MAX_SIZE}]", True),
    "num_hiddens": (_size, f"an integer in [1, {MAX_SIZE}]", True),
    "num_layers": (_size, f"an integer in [1, {MAX_SIZE}]", True),
    "embed_size": (lambda v: v is None or _size(v), f"null or an integer in [1, {MAX_SIZE}]",
                   False),
    "model": (lambda v: v in MODELS, f"one of {list(MODELS)}", True),
    "init": (lambda v: v in INITS, f"one of {list(INITS)}", True),
    "nonlinearity": (lambda v: v in ("tanh", "relu"), "'tanh' or 'relu'", True),
    "bidirectional": (lambda v: type(v) is bool, "true or false", True),
    "fused": (lambda v: type(v) is bool, "true or false", False),
    "dropout": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)", True),
    "dtype": (_float_dtype, "a float dtype name", True),
}
#: The training config, every key optional (``TrainConfig`` has defaults, and checks the
#: rest: names, schedules).
_TRAIN_META = {key: (rule[0], rule[1], False) for key, rule in {
    **{k: _MODEL_META[k] for k in ("num_hiddens", "num_layers", "model", "init",
                                   "nonlinearity", "bidirectional", "dropout", "dtype")},
    "num_epochs": (_size, f"an integer in [1, {MAX_SIZE}]"),
    "batch_size": (_size, f"an integer in [1, {MAX_SIZE}]"),
    "num_steps": (_size, f"an integer in [1, {MAX_SIZE}]"),
    "max_tokens": (lambda v: type(v) is int and v <= 2**62, "an integer"),
    "seed": (lambda v: v is None or (type(v) is int and 0 <= v < 2**128),
             "null or an integer >= 0"),
    "lr": (_finite_positive, "a finite number > 0"),
    "clip_theta": (lambda v: _number(v) and v > 0, "a number > 0 (or inf)"),
    "use_random_iter": (lambda v: type(v) is bool, "true or false"),
    "optimizer": (lambda v: isinstance(v, str), "a name"),
}.items()}
_HISTORY = {"epoch": lambda v: _size(v), "perplexity": lambda v: _number(v) and v > 0,
            "tokens_per_sec": lambda v: _number(v) and v >= 0,
            "seconds": lambda v: _number(v) and v >= 0}


def validate(path: Any, ckpt: dict[str, Any]) -> None:
    """Refuse a loaded checkpoint (:func:`load`) unless every part is what the model it
    describes needs: the meta's values of the right types and ranges (sizes positive
    integers up to :data:`MAX_SIZE`, epoch >= 0, lr finite and > 0, clip > 0, no NaN
    anywhere), every parameter array by name, dtype and shape exactly that model's
    (:func:`~tinygrad_rnn.charlm.model.parameter_shapes`), the vocabulary its size, and
    the optimizer's arrays finite, of the parameters' dtype and shapes. One
    ``CheckpointError`` naming the file and the first entry at fault."""
    try:
        meta = ckpt["meta"]
        _check_meta(meta)
        shapes = parameter_shapes(**meta["model"])
        _check_params(ckpt["params"], shapes, np.dtype(meta["model"]["dtype"]))
        vocab = ckpt["vocab"]
        if len(vocab) != meta["model"]["vocab_size"]:
            raise _Bad(f"its vocabulary has {len(vocab)} tokens, its model meta says "
                       f"vocab_size {meta['model']['vocab_size']}")
        if vocab[:1] != [UNK] or len(set(vocab)) != len(vocab):
            raise _Bad(f"its vocabulary does not start with {UNK!r} or repeats a token")
        _check_optim(ckpt["optim"], list(shapes.values()), np.dtype(meta["model"]["dtype"]))
        if isinstance(meta.get("train"), dict) and any(k.startswith("param_groups.")
                                                       for k in ckpt["optim"]):
            _check_optim_layout(ckpt["optim"], meta["train"].get("optimizer", "sgd"),
                                len(shapes))
    except _Bad as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None


def _check_table(where: str, values: Any, table: dict[str, Any]) -> None:
    if values is None:
        raise _Bad(f"meta lacks {where.split()[0]!r} (KeyError: {where.split()[0]!r}): not "
                   "one this version can read")
    if not isinstance(values, dict):
        raise _Bad(f"{where} is {type(values).__name__}, not an object")
    for key, (ok, what, required) in table.items():
        if key not in values:
            if required:
                raise _Bad(f"{where} lacks {key!r} (KeyError: {key!r}): not one this version "
                           "can read")
            continue
        if not ok(values[key]):
            raise _Bad(f"{where}: {key} must be {what}, got {values[key]!r}")


def _check_meta(meta: dict[str, Any]) -> None:
    # A top-level key not known here is left alone (a newer run's state, such as where
    # its text was read); the model meta's keys are RNNLM.config()'s, all known.
    _no_nan("meta", meta)
    _check_table("model meta", meta.get("model"), _MODEL_META)
    extra = sorted(set(meta["model"]) - set(_MODEL_META))
    if extra:
        raise _Bad(f"model meta has an unknown key {extra[0]!r}")
    if "train" in meta:
        train = meta["train"]
        _check_table("train meta", train, _TRAIN_META)
        for key in set(train) & set(meta["model"]):
            if train[key] != meta["model"][key]:
                raise _Bad(f"train meta {key} = {train[key]!r} but model meta "
                           f"{key} = {meta['model'][key]!r}")
    if not _count(meta.get("epoch")):
        raise _Bad(f"meta epoch is {meta.get('epoch')!r}, not an integer >= 0")
    history = meta.get("history", [])
    if not isinstance(history, list) or len(history) > meta["epoch"]:
        raise _Bad("meta history is not a list of at most epoch records")
    for record in history:  # the EpochStats fields; those beyond the first four (loss,
        # grad_norm, lr...: EpochStats says which) None or numbers, as older runs lack them
        if not (isinstance(record, dict) and set(_HISTORY) <= set(record)
                and all(ok(record[k]) for k, ok in _HISTORY.items())
                and all(v is None or _number(v) for v in record.values())):
            raise _Bad(f"meta history has a record {record!r} that is not "
                       "{epoch, perplexity, tokens_per_sec, seconds, ...} of numbers")
    if "loader" in meta:
        loader = meta["loader"]
        steps = meta.get("train", {}).get("num_steps", MAX_SIZE)
        if not (isinstance(loader, dict) and {"rng", "next_offset"} <= set(loader)
                and _count(loader["next_offset"]) and loader["next_offset"] <= steps):
            raise _Bad(f"meta loader is not {{rng, next_offset in [0, {steps}]}}")
        _check_generator("meta loader rng", loader["rng"])
    if "generator" in meta:
        _check_generator("meta generator", meta["generator"])
    for key in ("backend", "corpus_sha1"):
        if key in meta and not (meta[key] is None or isinstance(meta[key], str)):
            raise _Bad(f"meta {key} is {meta[key]!r}, not a string")
    if "scheduler" in meta and not isinstance(meta["scheduler"], dict):
        raise _Bad("meta scheduler is not an object")
    found = meta.get("data_file")  # where the text was read: {"path", "sha1"}, or null
    if found is not None and not (isinstance(found, dict) and set(found) == {"path", "sha1"}
                                  and all(isinstance(v, str) for v in found.values())):
        raise _Bad(f"meta data_file is {found!r}, not null or {{path, sha1}} strings")


def _no_nan(where: str, value: Any) -> None:
    """No NaN anywhere in the meta (JSON writes it as ``NaN``; nothing here is ever one)."""
    if isinstance(value, float) and math.isnan(value):
        raise _Bad(f"{where} is NaN")
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        _no_nan(f"{where}.{key}", item)


def _check_generator(where: str, state: Any) -> None:
    """A NumPy PCG64 state, as ``bit_generator.state`` gives it."""
    ok = (isinstance(state, dict) and state.get("bit_generator") == "PCG64"
          and set(state) == {"bit_generator", "state", "has_uint32", "uinteger"}
          and isinstance(state["state"], dict) and set(state["state"]) == {"state", "inc"}
          and all(type(v) is int and 0 <= v < 2**128 for v in state["state"].values())
          and state["has_uint32"] in (0, 1) and type(state["has_uint32"]) is int
          and type(state["uinteger"]) is int and 0 <= state["uinteger"] < 2**32)
    if not ok:
        raise _Bad(f"{where} is not a PCG64 generator state")


def _check_params(params: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]],
                  dtype: np.dtype) -> None:
    missing, extra = sorted(set(shapes) - set(params)), sorted(set(params) - set(shapes))
    if missing or extra:
        raise _Bad(f"its parameters are not those of the model its meta describes: missing "
                   f"{missing}, unexpected {extra}")
    for name, shape in shapes.items():
        array = params[name]
        if array.dtype != dtype:
            raise _Bad(f"parameter {name!r} is {array.dtype}, but the model's parameters are "
                       f"{dtype}; the file was not written by this model")
        if array.shape != shape:
            raise _Bad(f"parameter {name!r} has shape {array.shape}, the model's {shape}")


_GROUP = re.compile(r"param_groups\.(\d+)\.(\w+)")
_STATE = re.compile(r"state\.(\d+)\.(\w+)")
_HYPER_DTYPES = (np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_))
_LEGACY_BUFFER = re.compile(r"(\w+)\.(\d+)")  # before parameter groups: m.3, v.3


def _check_optim(optim: dict[str, np.ndarray], shapes: list[tuple[int, ...]],
                 dtype: np.dtype) -> None:
    """Hyper-parameters real and finite (lr > 0), ``params`` the parameters' indices,
    step counts whole and >= 0, per-parameter arrays finite in the model's dtype and
    their parameter's shape; both layouts (torch's flattened, and the older flat one)."""
    indices: list[int] = []
    for key, array in optim.items():
        where = f"optimizer entry {key!r}"
        group, state, legacy = _GROUP.fullmatch(key), _STATE.fullmatch(key), \
            _LEGACY_BUFFER.fullmatch(key)
        name = group[2] if group else state[2] if state else key
        if group and name == "params":
            if array.dtype.kind not in "iu" or array.ndim != 1:
                raise _Bad(f"{where} is {array.dtype} {array.shape}, not parameter indices")
            indices += array.tolist()
        elif group and name == "param_names":
            if array.dtype.kind != "U":
                raise _Bad(f"{where} is {array.dtype}, not names")
        elif state and name != "step" or legacy and not group:
            i = int(state[1] if state else legacy[2])
            if i >= len(shapes) or array.shape != shapes[i] or array.dtype != dtype:
                want = f"{dtype} {shapes[i]}" if i < len(shapes) else "nothing: no such parameter"
                raise _Bad(f"{where} is {array.dtype} {array.shape}; parameter {i} needs {want}")
            if not np.isfinite(array).all():
                raise _Bad(f"{where} holds non-finite values")
        elif name in ("step", "t"):  # step counts: whole numbers >= 0 (torch's are floats)
            if array.dtype.kind not in "iuf" or array.ndim > 1 or not np.isfinite(array).all() \
                    or (array < 0).any() or (array % 1 != 0).any():
                raise _Bad(f"{where} is {array.dtype} {array.ravel()[:4]}, not step counts >= 0")
        else:  # a hyper-parameter: as flatten_state_dict writes a Python float, int or bool
            # (a float32 lr would load as another number: refused, never cast)
            if array.dtype not in _HYPER_DTYPES or array.ndim > 1 or not np.isfinite(
                    array.astype(np.float64)).all():
                raise _Bad(f"{where} is {array.dtype} {array.ravel()[:4]}, not finite float64, "
                           "int64 or bool")
            if name == "lr" and not (array.ndim == 0 and array.dtype.kind in "iuf" and array > 0):
                raise _Bad(f"{where} is {array}, not a learning rate > 0")
    if indices and sorted(indices) != list(range(len(shapes))):
        raise _Bad(f"the optimizer's params {indices} are not the {len(shapes)} parameters' "
                   "indices")


def _check_optim_layout(optim: dict[str, np.ndarray], kind: str, count: int) -> None:
    """The optimizer's entries those its kind writes: every hyper-parameter it has, in
    the dtype it writes (more are allowed: a scheduler adds ``initial_lr``...), and the
    same state arrays for every parameter, or none before the first step. The
    hyper-parameters are learnt from the optimizer itself, stepped once on a
    one-element parameter, so no list here can go stale."""
    from .train import OPTIMIZERS  # train imports this module: its table, read late

    if kind not in OPTIMIZERS:
        raise _Bad(f"train meta: optimizer must be one of {sorted(OPTIMIZERS)}, got {kind!r}")
    p = tg.Tensor(np.zeros(1, np.float32), requires_grad=True, backend="numpy")  # no JIT
    probe = OPTIMIZERS[kind]([p], lr=1.0)
    p.grad = tg.Tensor(np.ones(1, np.float32), backend="numpy")
    probe.step()
    layout = tg.optim.flatten_state_dict(probe.state_dict())
    for key, want in layout.items():
        if not key.startswith("param_groups."):
            continue  # per-parameter state: below (its arrays: in the model's dtype, above)
        if key not in optim:
            raise _Bad(f"its optimizer entries lack {key!r}, which a {kind} optimizer writes")
        # the shape too (betas (2,), lr ()): but the parameter list is as long as the model's
        sized = key.endswith((".params", ".param_names"))
        if optim[key].dtype != want.dtype or not sized and optim[key].shape != want.shape:
            raise _Bad(f"optimizer entry {key!r} is {optim[key].dtype} {optim[key].shape}, a "
                       f"{kind} optimizer writes {want.dtype} {want.shape}")
    # step counts: the probe's dtype and shape (a 0-d count, never an array of them)
    steps = {k.split(".", 2)[2]: (v.dtype, v.shape) for k, v in layout.items()
             if k.startswith("state.") and v.ndim == 0}
    state: dict[int, set[str]] = {}
    for key in optim:
        if _STATE.fullmatch(key):
            i, name = _STATE.fullmatch(key).groups()
            state.setdefault(int(i), set()).add(name)
            if name in steps and (optim[key].dtype, optim[key].shape) != steps[name]:
                raise _Bad(f"optimizer entry {key!r} is {optim[key].dtype} {optim[key].shape}, "
                           f"a {kind} optimizer writes {steps[name][0]} {steps[name][1]}")
    names = set().union(*state.values()) if state else set()
    for i in range(count) if state else ():
        if state.get(i) != names:
            raise _Bad(f"the optimizer's state for parameter {i} is "
                       f"{sorted(state.get(i, ()))}, the others' {sorted(names)}")


def check_dtypes(path: Any, params: dict[str, np.ndarray], dtype: Any) -> None:
    """Every parameter array of a checkpoint in exactly the model's ``dtype``: a float64,
    int32, string or complex array is refused by name, never cast (a cast would train on
    whatever it made of the values)."""
    want = np.dtype(dtype)
    for name, array in params.items():
        if np.asarray(array).dtype != want:
            raise CheckpointError(f"checkpoint {path}: parameter {name!r} is "
                                  f"{np.asarray(array).dtype}, but the model's parameters "
                                  f"are {want}; the file was not written by this model")


#: The single-layer RNN's parameters before the PyTorch-interface layers, and today's.
_OLD_RNN = {"rnn.W_xh": "rnn.W_ih_l0", "rnn.W_hh": "rnn.W_hh_l0", "rnn.b_h": "rnn.b_ih_l0"}
#: What an old checkpoint's model was, in today's model meta.
_OLD_MODEL = {"model": "rnn", "num_layers": 1, "bidirectional": False, "dropout": 0.0,
              "init": "d2l"}


def upgrade(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A loaded checkpoint of the model before GRUs and LSTMs, in today's layout; any
    other checkpoint unchanged.

    The old RNN added one bias, ``b_h``; today's adds ``b_ih + b_hh``, so ``b_ih = b_h``
    and ``b_hh = 0`` compute the same. The new ``b_hh`` is the last parameter in
    ``RNNLM.parameters()`` order (the others keep their places), so the optimizer's
    per-parameter state gains an entry there: zero moments and momentum, a step count
    of 0 (it has not been trained).
    """
    meta, params = ckpt["meta"], ckpt["params"]
    model = meta.get("model")
    if not (isinstance(model, dict) and "model" not in model and "rnn.W_xh" in params):
        return ckpt
    b_h = params.get("rnn.b_h")
    params = {_OLD_RNN.get(k, k): v for k, v in params.items()}
    old_count = len(ckpt["params"])  # old b_hh's index in the new order
    if b_h is not None:
        params["rnn.b_hh_l0"] = np.zeros_like(b_h)
    optim = dict(ckpt["optim"])
    for key, value in ckpt["optim"].items():
        name, _, index = key.rpartition(".")
        if name and index == str(old_count - 1):  # the old b_h's buffers: b_hh's shape
            optim[f"{name}.{old_count}"] = np.zeros_like(value)
    if "t" in optim and np.ndim(optim["t"]) == 1:  # Adam's step counts, one per parameter
        optim["t"] = np.append(optim["t"], 0).astype(np.asarray(optim["t"]).dtype)
    meta = {**meta, "model": {**_OLD_MODEL, **model}}
    return {**ckpt, "params": params, "optim": optim, "meta": meta}

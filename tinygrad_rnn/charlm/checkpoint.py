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
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import tinygrad_rnn as tg

FORMAT = "tinygrad_rnn.checkpoint/1"


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
    return upgrade({
        "params": {k[6:]: v for k, v in arrays.items() if k.startswith("param/")},
        "optim": {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")},
        "vocab": [str(t) for t in arrays["vocab"]],
        "meta": meta,
    })


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

"""Checkpoints: one ``.npz`` of plain arrays, written atomically, read without pickle.

Layout: ``param/<name>`` arrays, ``optim/<key>`` arrays, ``vocab`` (a string array,
``idx_to_token``) and ``meta`` (a JSON string: model and training configuration,
epoch, history, data-loader state). Written and read by the framework's
``tg.save`` / ``tg.load`` (atomic, never unpickled); this module adds the layout and
its checks.
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
    except (KeyError, TypeError, AttributeError, IndexError, *also) as e:
        raise CheckpointError(
            f"checkpoint {path} is not one this version can read: {type(e).__name__}: {e}"
        ) from None


def save(path: str | os.PathLike[str], params: dict[str, np.ndarray], vocab_tokens: list[str],
         meta: dict[str, Any], optim_state: dict[str, np.ndarray] | None = None) -> Path:
    """Write a checkpoint atomically. ``meta`` must be JSON-serialisable; its ``format``
    key, if any (a loaded checkpoint's meta has one), must be this version's; a token
    may not end in NUL, which ``.npz`` string arrays drop."""
    if meta.get("format", FORMAT) != FORMAT:
        raise CheckpointError(f"checkpoint meta has format {meta['format']!r}; the 'format' "
                              f"key is the file's own, {FORMAT!r}")
    if any(t.endswith("\0") for t in vocab_tokens):
        raise CheckpointError("a vocabulary token ends in NUL, which the .npz string array "
                              "would drop")
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
    return {
        "params": {k[6:]: v for k, v in arrays.items() if k.startswith("param/")},
        "optim": {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")},
        "vocab": [str(t) for t in arrays["vocab"]],
        "meta": meta,
    }

"""Checkpoints: one ``.npz`` of plain arrays, written atomically, read without pickle.

Layout: ``param/<name>`` arrays, ``optim/<key>`` arrays, ``vocab`` (a string array,
``idx_to_token``) and ``meta`` (a JSON string: model and training configuration,
epoch, history, data-loader state). ``np.load(..., allow_pickle=False)`` means a
file carrying pickled objects is refused before any of its code could run.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "tinygrad_rnn.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message names the file."""


def atomic_write(path: str | os.PathLike[str], write: Any, suffix: str = ".tmp") -> Path:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it.

    A crash midway leaves the previous file (if any) intact, never a torn one. A symlink
    is written through (its target is replaced); a directory or a read-only file is
    refused, as ``open(path, "wb")`` would refuse it.
    """
    given = path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # the caller's folders, not a link's
    path = Path(os.path.realpath(path))  # no error on a loop of links: the link is replaced
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {given}: it is a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {given}: the file is read-only")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        # mkstemp makes it 0600; open() keeps an existing file's mode, else 0666 - umask
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else new_file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return given


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the process's umask."""
    mask = os.umask(0)  # the only way to read the umask is to set it
    os.umask(mask)
    return 0o666 & ~mask


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
    for key, value in arrays.items():
        if value.dtype == object:
            raise CheckpointError(
                f"checkpoint entry {key!r} is an object array; refusing to pickle it")
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint: ``{"params", "optim", "vocab", "meta"}``. Never unpickles."""
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise CheckpointError(f"checkpoint {path} {what}")
    if not zipfile.is_zipfile(path):  # np.load would take any other file for a pickle
        raise CheckpointError(f"checkpoint {path} is not a valid .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(
                f"checkpoint {path} contains pickled Python objects; refusing to load it "
                "(a pickle can run arbitrary code). Checkpoints written by tinygrad_rnn never do."
            ) from None
        raise CheckpointError(f"checkpoint {path} is not a valid .npz file: {e}") from None
    except (zipfile.BadZipFile, OSError, EOFError, MemoryError) as e:  # MemoryError: a
        # header claiming a huge array
        raise CheckpointError(f"checkpoint {path} is not a valid .npz file: {e}") from None
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

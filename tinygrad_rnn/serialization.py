"""Saving and loading a ``state_dict``: one ``.npz`` of plain arrays, without pickle.

``tg.save(model.state_dict(), "model.npz")`` and ``model.load_state_dict(tg.load(
"model.npz"))``, as ``torch.save`` / ``torch.load(weights_only=True)``: the file is a
zip of ``.npy`` arrays, written atomically (:func:`atomic_write`) and read with
``allow_pickle=False``, so a file carrying pickled objects is refused before any of its
code could run. Strings may be stored as NumPy string arrays.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._tensor import Tensor

__all__ = ["SerializationError", "atomic_write", "load", "new_file_mode", "save"]


class SerializationError(ValueError):
    """A file cannot be saved or loaded as a state dict; the message names the file."""


def atomic_write(path: str | os.PathLike[str], write: Any, suffix: str = ".tmp") -> Path:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it.

    A crash midway leaves the previous file (if any) intact, never a torn one. A symlink
    is written through (its target is replaced); a directory, a read-only file and
    anything that is not a regular file (a device such as ``/dev/full``, a FIFO, a
    socket) are refused: a rename would replace the node itself. The temporary file's
    name carries the writer's process id (``.NAME.PID.XXXX.SUFFIX``), so after a
    successful write the temporaries of writers that no longer run (killed midway) are
    removed; a live writer's are left alone.
    """
    given = path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # the caller's folders, not a link's
    path = Path(os.path.realpath(path))  # no error on a loop of links: the link is replaced
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {given}: it is a directory")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise SerializationError(f"cannot write {given}: it is not a regular file (a device, "
                                 "a FIFO or a socket), and a save would replace it; give the "
                                 "path of a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {given}: the file is read-only")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix,
                               dir=path.parent)
    try:
        # mkstemp makes it 0600; open() keeps an existing file's mode, else 0666 - umask
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else new_file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:
            # a full disk or an I/O error says only "[Errno 28] No space left on device":
            # name the file (OSError(errno, ...) keeps the subclass, e.g. PermissionError)
            raise OSError(e.errno, f"{e.strerror or e}; {given} was not written (a file "
                          "already there is unchanged)") from None
        raise
    # the rename itself, on disk, so that it survives a power cut (after the try: the
    # file is written by now, and its error message must not say otherwise)
    _fsync_folder(path.parent)
    _remove_orphans(path, suffix)
    return given


def _fsync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename into it is on disk (POSIX: the file's own fsync
    does not cover its directory entry). Where a folder cannot be opened for that
    (Windows), there is nothing to do."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_orphans(path: Path, suffix: str) -> None:
    """Delete ``.NAME.PID.*SUFFIX`` files beside ``path`` whose writer PID is not running."""
    prefix = f".{path.name}."
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        pid = tmp.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        with contextlib.suppress(OSError):  # another cleaner got there first
            tmp.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the process's umask."""
    mask = os.umask(0)  # the only way to read the umask is to set it
    os.umask(mask)
    return 0o666 & ~mask


def save(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` (name -> Tensor or array, e.g. ``module.state_dict()``) to an
    ``.npz`` file at ``path``, atomically. Object arrays (which would need pickle) are
    refused; returns ``path``."""
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"save: state dict keys must be strings, got {key!r}")
        array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
        if array.dtype == object:
            raise SerializationError(
                f"entry {key!r} is an object array; refusing to pickle it")
        arrays[key] = array
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file written by :func:`save`, name -> NumPy array.

    Never unpickles: a file that would need it is refused, as is anything not an
    ``.npz`` file, each with a :class:`SerializationError` naming the file. Each entry's
    ``.npy`` header is checked against the entry's size before anything is allocated (a
    header claiming a huge array is refused, never a ``MemoryError``), every entry is
    read to its end (so the zip CRC-32 of every byte, ``.npy`` headers included, is
    checked), and two entries of one name are refused.
    """
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise SerializationError(f"{path} {what}")
    if not zipfile.is_zipfile(path):  # np.load would take any other file for a pickle
        raise SerializationError(f"{path} is not a valid .npz file (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            for name in names:
                if not name.endswith(".npy"):
                    raise SerializationError(f"{path} is not a valid .npz file: entry {name!r} "
                                             "is not a .npy array")
                if names.count(name) > 1:
                    raise SerializationError(f"{path} is not a valid .npz file: two entries "
                                             f"named {name!r}")
            size = path.stat().st_size
            return {info.filename[:-4]: _read_entry(archive, info, size, path)
                    for info in infos}
    except SerializationError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure to parse bytes off the disk
        # (zipfile's BadZipFile, zlib, struct, ValueError from a .npy header, EOFError,
        # an encrypted entry's RuntimeError...) means one thing: the file is damaged
        raise SerializationError(
            f"{path} is not a valid .npz file: {type(e).__name__}: {e}") from None


#: Deflate's largest expansion (1032:1): an entry claiming more is a zip bomb.
_DEFLATE_MAX_RATIO = 1032


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, file_size: int,
                path: Path) -> np.ndarray:
    """One ``.npy`` entry: its header's shape and dtype must account for exactly the
    entry's bytes, checked before the array is allocated; then read to the end (CRC)."""
    where = f"{path} is not a valid .npz file: entry {info.filename[:-4]!r}"
    bound = {zipfile.ZIP_STORED: file_size,
             zipfile.ZIP_DEFLATED: _DEFLATE_MAX_RATIO * info.compress_size}
    if info.compress_type not in bound or info.file_size > bound[info.compress_type]:
        raise SerializationError(f"{where} claims {info.file_size} bytes (compression "
                                 f"{info.compress_type}), more than the file can hold")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise SerializationError(f"{where} has .npy format version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise SerializationError(
                f"{path} contains pickled Python objects (entry {info.filename[:-4]!r}); "
                "refusing to load it (a pickle can run arbitrary code). Files written by "
                "tinygrad_rnn never do.")
        nbytes = math.prod(shape) * dtype.itemsize
        if f.tell() + nbytes != info.file_size:
            raise SerializationError(
                f"{where} claims a {dtype} array of shape {shape} ({nbytes} bytes), but the "
                f"entry holds {info.file_size - f.tell()} bytes of data")
        data = bytearray(f.read(nbytes))  # writable, as np.load's arrays are
        if len(data) != nbytes or f.read(1):  # the read to the end checks the CRC
            raise SerializationError(f"{where} is truncated")
    if dtype.itemsize == 0:
        return np.empty(shape, dtype)
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")

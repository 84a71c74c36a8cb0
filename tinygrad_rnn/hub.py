"""Files fetched once and kept: a download checked by its SHA-1, into a cache folder.

Like ``torch.hub.download_url_to_file``: the bytes go to a temporary file beside the
destination, which is renamed onto it only once its hash checks out, so the
destination is never half-written and two processes downloading at once cannot
corrupt each other.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .serialization import new_file_mode

__all__ = ["DownloadError", "cache_dir", "download", "sha1_of"]


class DownloadError(OSError):
    """A download failed or gave bytes of another SHA-1 (an ``OSError``: a problem with
    the network or a file, not with the caller's arguments)."""


def cache_dir() -> Path:
    """Folder for downloads: ``$XDG_CACHE_HOME/tinygrad_rnn``, else ``~/.cache/tinygrad_rnn``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says an empty (or relative) value is to be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "tinygrad_rnn"


def sha1_of(path: str | os.PathLike[str]) -> str:
    """Hex SHA-1 of a file's bytes, read in chunks so large files need little memory."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, sha1: str, dest: str | os.PathLike[str], timeout: float = 30,
             hint: str = "", what: str = "the file wanted") -> Path:
    """Download ``url`` to ``dest`` unless a file with SHA-1 ``sha1`` is already there.

    The bytes go to a temporary file in ``dest``'s folder that is renamed onto ``dest``
    (``os.replace``, atomic) only once its hash checks out, so ``dest`` is never left
    half-written and two processes downloading at once cannot corrupt each other.

    Raises :class:`DownloadError` if the download fails or the hash is wrong (the bad
    bytes are removed); ``hint`` (how to supply the file by hand) ends its message, and
    ``what`` names the file in it.
    """
    dest = Path(dest)
    found = sha1_of(dest) if dest.is_file() else None
    if found == sha1:
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
        os.fchmod(fd, new_file_mode())  # a shared cache must stay readable by others
    except OSError as e:
        raise DownloadError(f"cannot create {dest}: {e}. {hint}") from e
    tmp = Path(tmp_name)
    try:
        try:
            actual = _fetch(url, fd, timeout, hint)
        except DownloadError as e:
            if found is None:
                raise
            raise DownloadError(f"{e} (the file already at {dest} is not {what}: its SHA-1 is "
                            f"{found}, expected {sha1})") from e
        if actual != sha1:
            raise DownloadError(
                f"downloaded {url} but its SHA-1 is {actual}, expected {sha1}; "
                f"the bad file was removed. {hint}"
            )
        os.replace(tmp, dest)
    finally:
        # On success the temporary file has become dest; on any failure remove it.
        tmp.unlink(missing_ok=True)
    return dest


def _fetch(url: str, fd: int, timeout: float, hint: str) -> str:
    """Stream ``url`` into the open file descriptor ``fd``; return the SHA-1 of the bytes."""
    digest = hashlib.sha1()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                digest.update(chunk)
                out.write(chunk)
    # URLError, HTTPError, timeouts and refused connections are all OSErrors; a server
    # that hangs up mid-response raises http.client.IncompleteRead, which is not.
    except (OSError, http.client.HTTPException) as e:
        if isinstance(e, urllib.error.HTTPError):
            e.close()  # it holds the response's socket open
        raise DownloadError(f"download of {url} failed: {e}. {hint}") from e
    return digest.hexdigest()

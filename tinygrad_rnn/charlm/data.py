"""The Time Machine corpus: download, preprocessing, vocabulary and minibatch iterators.

This module follows *Dive into Deep Learning* (D2L, v0.17 numbering):

* §8.2 text preprocessing: ``read_lines`` (D2L's ``read_time_machine``), ``tokenize``,
  ``Vocab`` and ``load_corpus`` (D2L's ``load_corpus_time_machine``);
* §8.3 language models: ``seq_data_iter_random``, ``seq_data_iter_sequential``,
  ``SeqDataLoader`` and ``load_data_time_machine``.

The algorithms are D2L's, line for line, with three changes: randomness comes from a
``numpy.random.Generator`` (so every run is reproducible from a seed), minibatches are
NumPy ``int64`` arrays instead of framework tensors, and bad input raises clear errors
(``ValueError`` for bad arguments, ``DataError`` for a missing, corrupt or undownloadable
file) instead of printing or failing later.

It needs only the standard library, NumPy and ``tinygrad_rnn.hub``: no tensors,
so it can be used without the rest of the package.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_rnn import hub
from tinygrad_rnn.hub import cache_dir, sha1_of

__all__ = [
    "DATA_ENV_VAR",
    "TIME_MACHINE_SHA1",
    "TIME_MACHINE_URL",
    "DataError",
    "SeqDataLoader",
    "Vocab",
    "cache_dir",
    "cached_time_machine",
    "download",
    "find_corpus",
    "load_corpus",
    "load_data_time_machine",
    "preprocess_line",
    "read_lines",
    "seq_data_iter_random",
    "seq_data_iter_sequential",
    "sha1_of",
    "time_machine_path",
    "tokenize",
]

TIME_MACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
TIME_MACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
DATA_ENV_VAR = "TINYGRAD_RNN_DATA"

UNK = "<unk>"

# Array type of every token-id array this module hands out (corpus, X, Y).
ID_DTYPE = np.int64


class DataError(OSError):
    """The data file is missing, unreadable, corrupt, or could not be downloaded.

    An ``OSError`` because it is a problem with the environment (a file, the network),
    not with the caller's arguments; those raise ``ValueError``.
    """


# --------------------------------------------------------------------------------------
# Locating and downloading the book
# --------------------------------------------------------------------------------------


def _manual_hint(dest: Path) -> str:
    """How to supply the file by hand when it is not in the cache and cannot be downloaded."""
    return (
        f"To use a copy you have (offline), put it at {dest}, or set "
        f"{DATA_ENV_VAR}=/path/to/timemachine.txt, or pass --data PATH "
        f"(the book is {TIME_MACHINE_URL})"
    )


def download(url: str, sha1: str, dest: str | os.PathLike[str], timeout: float = 30) -> Path:
    """:func:`tinygrad_rnn.hub.download` of the book: a failure is a :class:`DataError`
    whose message says how to supply the file by hand."""
    dest = Path(dest)
    try:
        return hub.download(url, sha1, dest, timeout, hint=_manual_hint(dest), what="the book")
    except hub.DownloadError as e:
        raise DataError(str(e)) from e.__cause__


_fetch = download  # time_machine_path's keyword argument ``download`` hides the function


def cached_time_machine() -> Path:
    """Where the book is cached: ``cache_dir() / 'timemachine.txt'``."""
    return cache_dir() / "timemachine.txt"


def time_machine_path(path: str | os.PathLike[str] | None = None, *,
                      download: bool = True) -> Path:
    """The one lookup of the book's text file, for the CLI, the library, the examples and
    the tests.

    In order: the explicit ``path``; the ``TINYGRAD_RNN_DATA`` environment variable (an
    empty value counts as unset); the cache (:func:`cached_time_machine`), used only if
    its SHA-1 is the book's; else, with ``download``, the book downloaded into the cache
    (and verified). An explicit or environment path is used as given (any UTF-8 text
    may serve as a custom corpus). Raises :class:`DataError`, saying how to supply the
    file, when none of these finds it (``download=False``: when it is not cached).
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataError(f"data file {p} does not exist (or is not a file)")
        return p
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise DataError(
                f"{DATA_ENV_VAR}={env} but {p} does not exist (or is not a file); "
                f"unset {DATA_ENV_VAR} to use the cached or downloaded book instead"
            )
        return p
    dest = cached_time_machine()
    found = sha1_of(dest) if dest.is_file() else None
    if found == TIME_MACHINE_SHA1:
        return dest
    if download:
        return _fetch(TIME_MACHINE_URL, TIME_MACHINE_SHA1, dest)
    if found is None:
        raise DataError(f"The Time Machine is not in the cache ({dest}) and downloading "
                        f"is off. {_manual_hint(dest)}")
    raise DataError(f"the file at {dest} is not The Time Machine (its SHA-1 is {found}, "
                    f"expected {TIME_MACHINE_SHA1}) and downloading is off. "
                    f"{_manual_hint(dest)}")


def find_corpus(sha1: str, recorded: str | os.PathLike[str] | None = None) -> Path:
    """The text file with SHA-1 ``sha1`` that a run was trained on (a checkpoint records
    both): ``recorded``, where the run read it, if its SHA-1 still matches; else
    :func:`time_machine_path`'s lookup (``$TINYGRAD_RNN_DATA``; for the book also the
    cache, then the download). Raises :class:`DataError`, saying where the run read
    it, when the lookup finds nothing or other text."""
    if recorded is not None and Path(recorded).is_file() and sha1_of(recorded) == sha1:
        return Path(recorded)
    where = (f"the text this run was trained on (SHA-1 {sha1}) is no longer at {recorded}"
             if recorded is not None else f"the text this run was trained on has SHA-1 {sha1}")
    supply = f"pass --data PATH with that text (or set {DATA_ENV_VAR} to it)"
    if sha1 != TIME_MACHINE_SHA1 and not os.environ.get(DATA_ENV_VAR):
        raise DataError(f"{where}, and it is not The Time Machine; {supply}")
    try:
        found = time_machine_path()
    except DataError as e:
        raise DataError(f"{where}; {e}") from e
    if sha1_of(found) != sha1:
        raise DataError(f"{where}, and {found} is other text (SHA-1 {sha1_of(found)}); "
                        f"{supply}")
    return found


# --------------------------------------------------------------------------------------
# §8.2 Text preprocessing
# --------------------------------------------------------------------------------------

_NON_LETTERS = re.compile("[^A-Za-z]+")


def clean_text(text: str) -> str:
    """Every run of non-letters becomes one space; lower-case (D2L's cleaning, unstripped)."""
    return _NON_LETTERS.sub(" ", text).lower()


def preprocess_line(line: str) -> str:
    """D2L's cleaning of a line of the book: :func:`clean_text`, stripped."""
    return clean_text(line).strip()


def read_lines(path: str | os.PathLike[str] | None = None) -> list[str]:
    """The book's lines, preprocessed (D2L's ``read_time_machine``).

    Empty lines are kept, as in D2L, so line numbers match the file's.
    ``path`` is resolved by ``time_machine_path``.
    """
    p = time_machine_path(path)
    try:
        with open(p, encoding="utf-8") as f:
            lines = f.readlines()
    except UnicodeDecodeError:
        try:  # the reader decodes in chunks: decode it all at once for the file's offset
            p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{p} is not valid UTF-8 text (byte {e.start}: {e.reason})") from e
        raise
    except OSError as e:
        raise DataError(f"cannot read {p}: {e}") from e
    return [preprocess_line(line) for line in lines]


def tokenize(lines: Iterable[str], token: str = "char") -> list[list[str]]:
    """Split each line into tokens: ``'word'`` -> ``line.split()``, ``'char'`` -> ``list(line)``.

    Returns one list of tokens per line (empty lines give empty lists).
    """
    if token == "word":
        return [line.split() for line in lines]
    if token == "char":
        return [list(line) for line in lines]
    raise ValueError(f"unknown token type {token!r}; expected 'char' or 'word'")


def _flatten(tokens: Sequence[Any]) -> Sequence[Any]:
    """A list of token lists becomes one flat list; a flat list is returned as is."""
    if len(tokens) == 0 or isinstance(tokens[0], (list, tuple)):
        return [tok for line in tokens for tok in line]
    return tokens


class Vocab:
    """Token <-> index mapping, exactly D2L v0.17's ``Vocab``.

    Index 0 is ``'<unk>'``, then the ``reserved_tokens``, then the tokens in order of
    descending frequency (ties keep first-seen order), stopping at the first token seen
    fewer than ``min_freq`` times. ``tokens`` may be flat or a list of token lists.
    """

    def __init__(
        self,
        tokens: Sequence[Any] | None = None,
        min_freq: int = 0,
        reserved_tokens: Sequence[str] | None = None,
    ) -> None:
        tokens = [] if tokens is None else tokens
        if isinstance(reserved_tokens, str):  # list('<pad>') would reserve '<', 'p', ...
            raise TypeError(f"reserved_tokens must be a list of tokens, got the string "
                            f"{reserved_tokens!r} (write [{reserved_tokens!r}])")
        reserved = list(reserved_tokens or [])
        counter = collections.Counter(_flatten(tokens))
        self._token_freqs: list[tuple[str, int]] = sorted(
            counter.items(), key=lambda x: x[1], reverse=True
        )
        self._set_tokens([UNK, *reserved])
        for tok, freq in self._token_freqs:
            if freq < min_freq:
                break  # sorted by frequency: every later token is rarer still
            if tok not in self.token_to_idx:
                self.token_to_idx[tok] = len(self.idx_to_token)
                self.idx_to_token.append(tok)

    def _set_tokens(self, idx_to_token: list[str]) -> None:
        if len(set(idx_to_token)) != len(idx_to_token):
            dups = sorted({t for t in idx_to_token if idx_to_token.count(t) > 1})
            raise ValueError(f"duplicate tokens in vocabulary: {dups}")
        self.idx_to_token: list[str] = idx_to_token
        self.token_to_idx: dict[str, int] = {t: i for i, t in enumerate(idx_to_token)}

    @classmethod
    def from_tokens(cls, idx_to_token: Iterable[str]) -> Vocab:
        """Rebuild a vocabulary from its ``idx_to_token`` (e.g. a string array in a checkpoint).

        ``token_freqs`` of the rebuilt vocabulary is empty: frequencies are not stored.
        """
        itos = [str(t) for t in idx_to_token]
        if not itos or itos[0] != UNK:
            raise ValueError(f"idx_to_token must start with {UNK!r}, got {itos[:1]}")
        vocab = cls()
        vocab._set_tokens(itos)
        return vocab

    def to_dict(self) -> dict[str, list[str]]:
        """Plain, pickle-free form: ``{'idx_to_token': [...]}``; see ``from_dict``."""
        return {"idx_to_token": list(self.idx_to_token)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Vocab:
        """Inverse of ``to_dict``."""
        return cls.from_tokens(d["idx_to_token"])

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens: Any) -> Any:
        """Index of a token (0 if unknown), or a (nested) list of indices for a list, tuple
        or array."""
        if isinstance(tokens, np.ndarray):
            tokens = tokens.tolist()
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self[tok] for tok in tokens]

    def to_tokens(self, indices: Any) -> Any:
        """Token of an index, or a (nested) list of tokens for a list, tuple or array."""
        if isinstance(indices, np.ndarray):
            indices = indices.tolist()
        if isinstance(indices, (list, tuple)):
            return [self.to_tokens(i) for i in indices]
        if getattr(indices, "shape", None) == () and getattr(indices, "dtype", None) is not None \
                and np.dtype(indices.dtype).kind in "iu":
            indices = int(indices)  # a 0-d integer Tensor or array (argmax's result)
        # no wrap-around (-1 is not the last token) and no truncation (2.7 is not 2)
        if isinstance(indices, bool) or not isinstance(indices, (int, np.integer)):
            raise TypeError(f"token indices must be integers, got {indices!r}")
        if not 0 <= indices < len(self):
            raise IndexError(f"token index {indices} is out of range for a vocabulary of "
                             f"{len(self)} tokens")
        return self.idx_to_token[indices]

    def __eq__(self, other: object) -> bool:
        # Two vocabularies are interchangeable iff they map the same tokens to the same ids.
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.idx_to_token == other.idx_to_token

    __hash__ = None  # mutable, compared by value

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.idx_to_token[:8])
        more = ", ..." if len(self) > 8 else ""
        return f"Vocab(size={len(self)}, idx_to_token=[{head}{more}])"

    @property
    def unk(self) -> int:
        """Index of the unknown token (always 0)."""
        return 0

    @property
    def token_freqs(self) -> list[tuple[str, int]]:
        """``(token, count)`` pairs in descending count order (all tokens, even rare ones)."""
        return self._token_freqs


def load_corpus(
    path: str | os.PathLike[str] | None = None, max_tokens: int = -1, token: str = "char"
) -> tuple[np.ndarray, Vocab]:
    """Token ids of the whole book and its vocabulary (D2L's ``load_corpus_time_machine``).

    Returns ``(corpus, vocab)``: ``corpus`` is an ``int64`` array of shape ``(num_tokens,)``,
    cut to its first ``max_tokens`` ids if ``max_tokens > 0``. The vocabulary is built
    from the whole text either way. For the book with ``token='char'``: 170,580 ids and
    28 tokens (26 letters, space and ``'<unk>'``).
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)):
        raise TypeError(f"max_tokens must be an integer (<= 0: all), got {max_tokens!r}")
    tokens = tokenize(read_lines(path), token)
    vocab = Vocab(tokens)
    corpus = np.array([vocab[tok] for line in tokens for tok in line], dtype=ID_DTYPE)
    if max_tokens > 0:
        corpus = corpus[:max_tokens]
    return corpus, vocab


# --------------------------------------------------------------------------------------
# §8.3 Minibatches of subsequences
# --------------------------------------------------------------------------------------


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _as_corpus(corpus: Any) -> np.ndarray:
    """A 1-D ``int64`` array of token ids."""
    arr = np.asarray(corpus)
    if arr.size == 0:
        return np.zeros(0, dtype=ID_DTYPE)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"corpus must be a 1-D sequence of integer ids, got {arr.dtype}{arr.shape}"
        )
    # checked before the cast: a uint64 id >= 2**63 would wrap to a negative int64
    if arr.min() < 0 or arr.max() > np.iinfo(ID_DTYPE).max:
        raise ValueError(f"corpus token ids must be in [0, 2**63), got ids from {arr.min()} "
                         f"to {arr.max()}")
    return arr.astype(ID_DTYPE, copy=False)


def _min_tokens(batch_size: int, num_steps: int, use_random_iter: bool) -> int:
    """Fewest tokens for which every possible offset still leaves one whole minibatch.

    Random: offset <= num_steps - 1 and one more token is needed for Y, so
    ``len - offset - 1 >= batch_size * num_steps`` must hold at the largest offset.
    Sequential: the same with offset <= num_steps.
    """
    largest_offset = num_steps - 1 if use_random_iter else num_steps
    return batch_size * num_steps + largest_offset + 1


def _check_args(
    corpus: Any, batch_size: Any, num_steps: Any, use_random_iter: bool
) -> tuple[np.ndarray, int, int]:
    corpus = _as_corpus(corpus)
    batch_size = _check_positive_int("batch_size", batch_size)
    num_steps = _check_positive_int("num_steps", num_steps)
    needed = _min_tokens(batch_size, num_steps, use_random_iter)
    if len(corpus) < needed:
        kind = "random" if use_random_iter else "sequential"
        raise ValueError(
            f"corpus too short: {kind} sampling with batch_size={batch_size}, "
            f"num_steps={num_steps} needs at least {needed} tokens, the corpus has {len(corpus)}"
        )
    return corpus, batch_size, num_steps


def _num_batches(num_tokens: int, batch_size: int, num_steps: int, offset: int) -> int:
    """Minibatches per epoch for a given offset; the same formula for both samplers.

    Random: ``((n - offset - 1) // num_steps) // batch_size``; sequential:
    ``((n - offset - 1) // batch_size) // num_steps``; both equal
    ``(n - offset - 1) // (batch_size * num_steps)`` since nested floor divisions compose.
    """
    return max(0, (num_tokens - offset - 1) // (batch_size * num_steps))


def _random_batches(
    corpus: np.ndarray, batch_size: int, num_steps: int, offset: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """D2L's random sampling after the offset has been drawn."""
    corpus = corpus[offset:]
    num_subseqs = (len(corpus) - 1) // num_steps
    starts = np.arange(0, num_subseqs * num_steps, num_steps)
    rng.shuffle(starts)
    num_batches = num_subseqs // batch_size
    window = np.arange(num_steps)
    for i in range(0, batch_size * num_batches, batch_size):
        idx = starts[i : i + batch_size, None] + window  # (batch_size, num_steps)
        yield corpus[idx], corpus[idx + 1]


def _sequential_batches(
    corpus: np.ndarray, batch_size: int, num_steps: int, offset: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """D2L's sequential partitioning after the offset has been drawn."""
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    xs = corpus[offset : offset + num_tokens].reshape(batch_size, -1)
    ys = corpus[offset + 1 : offset + 1 + num_tokens].reshape(batch_size, -1)
    num_batches = xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        # Copies: the slices are strided views into the corpus, and a caller that wrote
        # into a minibatch would otherwise corrupt the corpus for later epochs.
        yield xs[:, i : i + num_steps].copy(), ys[:, i : i + num_steps].copy()


def seq_data_iter_random(
    corpus: Any, batch_size: int, num_steps: int, rng: Any = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of random sampling (D2L §8.3.4.1).

    Drops a random offset in ``[0, num_steps - 1]`` of leading tokens, cuts the rest into
    non-overlapping subsequences of ``num_steps`` tokens and yields them in random order.
    Yields ``(X, Y)``, both ``int64`` of shape ``(batch_size, num_steps)``; ``Y`` is ``X``
    shifted one token ahead. Adjacent minibatches are not adjacent in the text.

    ``rng``: a ``numpy.random.Generator``, an int seed, or None (fresh entropy).
    The arguments are checked and the offset is drawn when this is called, not at the
    first ``next()``.
    """
    corpus, batch_size, num_steps = _check_args(corpus, batch_size, num_steps, True)
    rng = np.random.default_rng(rng)
    offset = int(rng.integers(0, num_steps))
    return _random_batches(corpus, batch_size, num_steps, offset, rng)


def seq_data_iter_sequential(
    corpus: Any, batch_size: int, num_steps: int, rng: Any = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of sequential partitioning (D2L §8.3.4.2).

    Drops a random offset in ``[0, num_steps]`` of leading tokens, splits the rest into
    ``batch_size`` equal rows and yields consecutive ``num_steps``-wide windows, so row
    ``i`` of minibatch ``k + 1`` continues row ``i`` of minibatch ``k`` in the text.
    Yields ``(X, Y)``, both ``int64`` of shape ``(batch_size, num_steps)``; ``Y`` is ``X``
    shifted one token ahead.

    ``rng``: a ``numpy.random.Generator``, an int seed, or None (fresh entropy).
    """
    corpus, batch_size, num_steps = _check_args(corpus, batch_size, num_steps, False)
    rng = np.random.default_rng(rng)
    offset = int(rng.integers(0, num_steps + 1))
    return _sequential_batches(corpus, batch_size, num_steps, offset)


class SeqDataLoader:
    """Re-iterable minibatches over a corpus (D2L §8.3.4's ``SeqDataLoader``).

    Each ``iter()`` is one epoch with a fresh random offset (and, for random sampling, a
    fresh order) from the loader's own ``Generator`` seeded with ``seed``, so the same
    seed gives the same sequence of epochs.

    The offset of each epoch is drawn one epoch ahead, which makes ``len(loader)`` exact:
    it is the number of minibatches the *next* ``iter(loader)`` yields (it may differ by
    one between epochs, as the offset changes, and it moves on to the following epoch's
    count as soon as an epoch starts).
    """

    def __init__(
        self,
        corpus: Any,
        batch_size: int,
        num_steps: int,
        use_random_iter: bool = False,
        seed: Any = None,
    ) -> None:
        if not isinstance(use_random_iter, (bool, np.bool_)):  # 'no' would mean True
            raise TypeError(f"use_random_iter must be True or False, got {use_random_iter!r}")
        self.corpus, self.batch_size, self.num_steps = _check_args(
            corpus, batch_size, num_steps, use_random_iter
        )
        self.use_random_iter = bool(use_random_iter)
        self._rng = np.random.default_rng(seed)
        self._next_offset = self._draw_offset()

    def _draw_offset(self) -> int:
        # Random sampling: [0, num_steps - 1]; sequential: [0, num_steps], as in D2L.
        high = self.num_steps if self.use_random_iter else self.num_steps + 1
        return int(self._rng.integers(0, high))

    @property
    def next_offset(self) -> int:
        """Tokens the next epoch will skip at the start of the corpus."""
        return self._next_offset

    def __len__(self) -> int:
        """Exact number of minibatches the next ``iter()`` yields."""
        return _num_batches(len(self.corpus), self.batch_size, self.num_steps, self._next_offset)

    @property
    def num_tokens_per_epoch(self) -> int:
        """Tokens in the ``X`` minibatches of the next epoch (``len * batch_size * num_steps``)."""
        return len(self) * self.batch_size * self.num_steps

    def state_dict(self) -> dict[str, Any]:
        """The generator's state and the next offset (JSON-able): resuming replays the run."""
        return {"rng": self._rng.bit_generator.state, "next_offset": self._next_offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``: the generator's state and the next epoch's offset."""
        self._rng.bit_generator.state = state["rng"]
        self._next_offset = int(state["next_offset"])

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        offset, self._next_offset = self._next_offset, self._draw_offset()
        if self.use_random_iter:
            return _random_batches(self.corpus, self.batch_size, self.num_steps, offset, self._rng)
        return _sequential_batches(self.corpus, self.batch_size, self.num_steps, offset)


def load_data_time_machine(
    batch_size: int,
    num_steps: int,
    use_random_iter: bool = False,
    max_tokens: int = 10000,
    path: str | os.PathLike[str] | None = None,
    seed: Any = None,
) -> tuple[SeqDataLoader, Vocab]:
    """Character-level minibatches of the book and its vocabulary (D2L §8.3.4).

    Returns ``(loader, vocab)``; the loader yields ``(X, Y)`` of shape
    ``(batch_size, num_steps)`` over the first ``max_tokens`` characters (all if <= 0).
    """
    corpus, vocab = load_corpus(path, max_tokens, token="char")
    return SeqDataLoader(corpus, batch_size, num_steps, use_random_iter, seed), vocab

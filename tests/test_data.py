"""Tests for tinygrad_rnn.charlm.data: D2L §8.2–8.3 preprocessing, vocabulary and iterators.

The only hard-coded results are facts D2L (v0.17) publishes for *The Time Machine*.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import book_path

from tinygrad_rnn.charlm.data import (
    DATA_ENV_VAR,
    TIME_MACHINE_SHA1,
    TIME_MACHINE_URL,
    DataError,
    SeqDataLoader,
    Vocab,
    cache_dir,
    download,
    load_corpus,
    load_data_time_machine,
    preprocess_line,
    read_lines,
    seq_data_iter_random,
    seq_data_iter_sequential,
    sha1_of,
    time_machine_path,
    tokenize,
)

# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def book() -> Path:
    """The book's text file (``helpers.book_path``: the package's lookup, no download)."""
    return Path(book_path())


@pytest.fixture(scope="module")
def book_lines(book: Path) -> list[str]:
    return read_lines(book)


@pytest.fixture(scope="module")
def char_corpus(book: Path) -> tuple[np.ndarray, Vocab]:
    return load_corpus(book)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)


@pytest.fixture
def http_dir(tmp_path: Path):
    """A local HTTP server on an ephemeral port serving tmp_path/'www'; yields (dir, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """URL on a port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/timemachine.txt"


def sha1_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(data).hexdigest()


# ---------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("The Time Machine, by H. G. Wells [1898]\n", "the time machine by h g wells"),
        ("  --Hello,   WORLD!!--  ", "hello world"),
        ("don't stop", "don t stop"),
        ("caf\u00e9 na\u00efve", "caf na ve"),  # non-ASCII letters are not [A-Za-z]
        ("1234 ... ;;", ""),
        ("\n", ""),
        ("under_score\ttab", "under score tab"),
    ],
)
def test_preprocess_line(line: str, expected: str) -> None:
    assert preprocess_line(line) == expected


def test_read_lines_matches_d2l(book_lines: list[str]) -> None:
    # D2L §8.2.1 prints these.
    assert len(book_lines) == 3221
    assert book_lines[0] == "the time machine by h g wells"
    assert book_lines[10] == "twinkled and his usually pale face was flushed and animated the"
    assert "" in book_lines  # empty lines are kept


def test_tokenize() -> None:
    lines = ["the cat", "", "a b  c"]
    assert tokenize(lines, "word") == [["the", "cat"], [], ["a", "b", "c"]]
    assert tokenize(lines, "char") == [list("the cat"), [], list("a b  c")]
    with pytest.raises(ValueError, match="'bytes'"):
        tokenize(lines, "bytes")


# ------------------------------------------------------------------------------- vocab


def test_char_corpus_matches_d2l(char_corpus: tuple[np.ndarray, Vocab]) -> None:
    corpus, vocab = char_corpus
    assert len(corpus) == 170580 and len(vocab) == 28  # D2L §8.2.5
    assert corpus.dtype == np.int64 and corpus.ndim == 1
    assert vocab.unk == 0 and vocab.idx_to_token[0] == "<unk>"
    assert set(vocab.idx_to_token[1:]) == set("abcdefghijklmnopqrstuvwxyz ")


def test_corpus_ids_decode_to_text(book_lines: list[str], char_corpus) -> None:
    corpus, vocab = char_corpus
    assert "".join(vocab.to_tokens(corpus)) == "".join(book_lines)


def test_vocab_order_is_descending_frequency(book_lines: list[str], char_corpus) -> None:
    _, vocab = char_corpus
    text = "".join(book_lines)
    counts = {ch: text.count(ch) for ch in set(text)}  # counted without Counter
    freqs = [counts[t] for t in vocab.idx_to_token[1:]]
    assert freqs == sorted(freqs, reverse=True)
    assert dict(vocab.token_freqs) == counts
    assert [t for t, _ in vocab.token_freqs] == vocab.idx_to_token[1:]


def test_word_vocab_matches_d2l(book_lines: list[str]) -> None:
    vocab = Vocab(tokenize(book_lines, "word"))
    # D2L §8.2.4 and §8.3.2 print these.
    assert vocab.idx_to_token[:10] == [
        "<unk>", "the", "i", "and", "of", "a", "to", "was", "in", "that",
    ]  # fmt: skip
    assert vocab.token_freqs[:3] == [("the", 2261), ("i", 1267), ("and", 1245)]


def test_vocab_min_freq_and_reserved() -> None:
    tokens = [["a", "b", "a"], ["c", "a", "b"], ["d"]]  # a:3 b:2 c:1 d:1
    v = Vocab(tokens, min_freq=2, reserved_tokens=["<pad>", "<bos>"])
    assert v.idx_to_token == ["<unk>", "<pad>", "<bos>", "a", "b"]
    assert v["c"] == v["zzz"] == v.unk == 0
    assert v[["a", ("b", "<pad>")]] == [3, [4, 1]]
    assert Vocab(tokens).idx_to_token == ["<unk>", "a", "b", "c", "d"]  # ties: first seen
    assert Vocab(["b", "a", "b"]).idx_to_token == ["<unk>", "b", "a"]  # flat list
    assert len(Vocab()) == 1
    # A reserved token that also occurs in the text is not added twice.
    assert Vocab([["x", "y"]], reserved_tokens=["x"]).idx_to_token == ["<unk>", "x", "y"]
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(tokens, reserved_tokens=["<pad>", "<pad>"])


def test_vocab_to_tokens_round_trip(char_corpus) -> None:
    corpus, vocab = char_corpus
    ids = corpus[:50].tolist()
    assert vocab[vocab.to_tokens(ids)] == ids
    assert vocab.to_tokens(np.int64(0)) == "<unk>"
    assert vocab.to_tokens(np.array([[1, 2]])) == [[vocab.to_tokens(1), vocab.to_tokens(2)]]


def test_vocab_rebuilds_from_idx_to_token(char_corpus) -> None:
    _, vocab = char_corpus
    stored = np.array(vocab.idx_to_token)  # as a checkpoint would keep it: a string array
    rebuilt = Vocab.from_tokens(stored)
    assert rebuilt == vocab
    assert rebuilt.token_to_idx == vocab.token_to_idx
    assert all(type(t) is str for t in rebuilt.idx_to_token)
    assert Vocab.from_dict(vocab.to_dict()) == vocab
    assert Vocab.from_tokens(["<unk>", "b"]) != vocab
    with pytest.raises(ValueError, match="<unk>"):
        Vocab.from_tokens(["a", "<unk>"])
    with pytest.raises(ValueError, match="duplicate"):
        Vocab.from_tokens(["<unk>", "a", "a"])


def test_load_corpus_max_tokens(book: Path, char_corpus) -> None:
    full, vocab = char_corpus
    corpus, vocab10k = load_corpus(book, max_tokens=10000)
    assert len(corpus) == 10000
    np.testing.assert_array_equal(corpus, full[:10000])
    assert vocab10k == vocab  # the vocabulary always comes from the whole text


# --------------------------------------------------------------------------- iterators

ITERATORS = [seq_data_iter_random, seq_data_iter_sequential]


@pytest.mark.parametrize("iterator", ITERATORS)
def test_iterator_shapes_and_shift(iterator, char_corpus) -> None:
    corpus, _ = char_corpus
    batches = list(iterator(corpus[:5000], 4, 7, 0))
    assert batches
    for X, Y in batches:
        assert X.shape == Y.shape == (4, 7)
        assert X.dtype == Y.dtype == np.int64
        np.testing.assert_array_equal(X[:, 1:], Y[:, :-1])
    # With ids equal to positions, Y is exactly X + 1.
    for X, Y in iterator(np.arange(500), 3, 5, 1):
        np.testing.assert_array_equal(Y, X + 1)


def first_offset(iterator, seed: int, num_steps: int) -> int:
    """The offset an iterator drew, read off its first X over a corpus of positions."""
    X, _ = next(iterator(np.arange(200), 2, num_steps, seed))
    # Random: every subsequence starts at offset + k * num_steps; sequential: row 0 at offset.
    return int(X[0, 0] % num_steps) if iterator is seq_data_iter_random else int(X[0, 0])


@pytest.mark.parametrize(
    ("iterator", "highest"), [(seq_data_iter_random, 4), (seq_data_iter_sequential, 5)]
)
def test_offsets_cover_their_range(iterator, highest: int) -> None:
    offsets = {first_offset(iterator, seed, num_steps=5) for seed in range(200)}
    assert offsets == set(range(highest + 1))


def test_sequential_windows_are_consecutive() -> None:
    batches = list(seq_data_iter_sequential(np.arange(1000), 4, 6, 3))
    assert len(batches) > 2
    for (X0, Y0), (X1, _) in zip(batches, batches[1:], strict=False):
        np.testing.assert_array_equal(X1[:, 0], X0[:, -1] + 1)
        np.testing.assert_array_equal(X1[:, 0], Y0[:, -1])
    # Rows are equal-length contiguous stretches of the text.
    rows = np.concatenate([X for X, _ in batches], axis=1)
    assert np.all(np.diff(rows, axis=1) == 1)
    assert len(set(np.diff(rows[:, 0]).tolist())) == 1


def test_random_subsequences_are_disjoint_and_cover() -> None:
    num_steps, batch_size = 5, 3
    for seed in range(20):
        X = np.concatenate(
            [X for X, _ in seq_data_iter_random(np.arange(301), batch_size, num_steps, seed)]
        )
        starts = X[:, 0]
        offset = int(starts[0] % num_steps)
        assert np.all(starts % num_steps == offset)
        assert len(set(starts.tolist())) == len(starts)  # no window repeats
        num_subseqs = (301 - offset - 1) // num_steps
        expected = range(offset, offset + num_subseqs * num_steps, num_steps)
        assert set(starts.tolist()) <= set(expected)
        assert len(starts) == (num_subseqs // batch_size) * batch_size
    # Order is shuffled, not sorted.
    assert not np.all(np.diff(starts) > 0)


@pytest.mark.parametrize("iterator", ITERATORS)
def test_iterators_reproducible_from_seed(iterator, char_corpus) -> None:
    corpus = char_corpus[0][:3000]

    def run(rng):
        return np.stack([X for X, _ in iterator(corpus, 4, 10, rng)])

    np.testing.assert_array_equal(run(7), run(7))
    np.testing.assert_array_equal(run(7), run(np.random.default_rng(7)))
    assert any(not np.array_equal(run(7), run(s)) for s in range(8, 12))


@pytest.mark.parametrize("iterator", ITERATORS)
def test_iterator_argument_errors(iterator) -> None:
    corpus = np.arange(100)
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="batch_size"):
            iterator(corpus, bad, 5)
        with pytest.raises(ValueError, match="num_steps"):
            iterator(corpus, 2, bad)
    with pytest.raises(ValueError, match="1-D"):
        iterator(np.zeros((10, 10), dtype=np.int64), 2, 2)
    with pytest.raises(ValueError, match="integer"):
        iterator(np.linspace(0, 1, 100), 2, 2)


@pytest.mark.parametrize(
    ("iterator", "needed"), [(seq_data_iter_random, 20), (seq_data_iter_sequential, 21)]
)
def test_too_short_corpus(iterator, needed: int) -> None:
    # batch_size=3, num_steps=5: one minibatch is 15 tokens, plus Y's extra token and the
    # largest offset (4 random, 5 sequential).
    with pytest.raises(ValueError, match=rf"at least {needed} tokens.* has {needed - 1}"):
        iterator(np.arange(needed - 1), 3, 5)
    with pytest.raises(ValueError, match="has 0"):
        iterator([], 3, 5)
    # Exactly enough: at least one minibatch whatever the offset.
    for seed in range(30):
        assert len(list(iterator(np.arange(needed), 3, 5, seed))) >= 1


# ----------------------------------------------------------------------- SeqDataLoader


@pytest.mark.parametrize("use_random_iter", [False, True])
def test_loader_len_is_exact_every_epoch(use_random_iter: bool) -> None:
    # 103 tokens, 2 x 5: offsets change the count (10 or 9), so len must track them.
    loader = SeqDataLoader(np.arange(103), 2, 5, use_random_iter, seed=0)
    counts = set()
    for _ in range(40):
        expected = len(loader)
        tokens = loader.num_tokens_per_epoch
        batches = list(loader)
        assert len(batches) == expected
        assert sum(X.size for X, _ in batches) == tokens
        counts.add(expected)
    assert len(counts) == 2  # the test really exercises both counts


def test_loader_epochs_differ_and_seed_reproduces(char_corpus) -> None:
    corpus = char_corpus[0][:2000]
    for use_random_iter in (False, True):

        def epochs(seed, use_random_iter=use_random_iter):
            loader = SeqDataLoader(corpus, 4, 8, use_random_iter, seed=seed)
            return [np.stack([X for X, _ in loader]) for _ in range(3)]

        a, b = epochs(3), epochs(3)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
        assert any(not np.array_equal(x, y) for x, y in zip(a, epochs(4), strict=True))
        assert not all(np.array_equal(a[0], x) for x in a[1:])  # epochs are re-drawn


def test_loader_batches_are_copies() -> None:
    corpus = np.arange(100, dtype=np.int64)
    X, Y = next(iter(SeqDataLoader(corpus, 2, 5, seed=0)))
    X[:] = -1
    Y[:] = -1
    np.testing.assert_array_equal(corpus, np.arange(100))


def test_loader_argument_errors() -> None:
    with pytest.raises(ValueError, match="needs at least"):
        SeqDataLoader(np.arange(10), 2, 5)
    with pytest.raises(ValueError, match="batch_size"):
        SeqDataLoader(np.arange(100), 0, 5)


def test_load_data_time_machine(book: Path, char_corpus) -> None:
    loader, vocab = load_data_time_machine(32, 35, path=book, seed=0)
    assert vocab == char_corpus[1]
    assert len(loader.corpus) == 10000
    expected = len(loader)
    batches = list(loader)
    # Whatever the offset (0..35), 10000 tokens hold the same number of 32 x 35 minibatches.
    assert len(batches) == expected == (10000 - 36) // (32 * 35) == 9999 // (32 * 35)
    for X, Y in batches:
        assert X.shape == Y.shape == (32, 35)


# ----------------------------------------------------------------- files and download


def test_download_good_hash(http_dir, tmp_path: Path) -> None:
    root, base = http_dir
    data = b"the time traveller\n" * 100
    (root / "t.txt").write_bytes(data)
    dest = tmp_path / "cache" / "sub" / "t.txt"
    assert download(f"{base}/t.txt", sha1_hex(data), dest, timeout=5) == dest
    assert dest.read_bytes() == data
    assert os.listdir(dest.parent) == ["t.txt"]  # no temporary files left


def test_download_bad_hash_removes_file(http_dir, tmp_path: Path) -> None:
    root, base = http_dir
    (root / "t.txt").write_bytes(b"corrupted")
    dest = tmp_path / "cache" / "t.txt"
    wanted = "0" * 40
    with pytest.raises(DataError) as exc:
        download(f"{base}/t.txt", wanted, dest, timeout=5)
    msg = str(exc.value)
    assert wanted in msg and sha1_hex(b"corrupted") in msg and f"{base}/t.txt" in msg
    assert not dest.exists()
    assert os.listdir(dest.parent) == []


def test_download_replaces_stale_file(http_dir, tmp_path: Path) -> None:
    root, base = http_dir
    (root / "t.txt").write_bytes(b"fresh")
    dest = tmp_path / "t.txt"
    dest.write_bytes(b"stale")
    download(f"{base}/t.txt", sha1_hex(b"fresh"), dest, timeout=5)
    assert dest.read_bytes() == b"fresh"


@pytest.mark.parametrize("where", ["closed port", "404"])
def test_download_failure_explains_manual_setup(where, http_dir, tmp_path: Path) -> None:
    url = closed_port_url() if where == "closed port" else f"{http_dir[1]}/missing.txt"
    dest = tmp_path / "cache" / "timemachine.txt"
    with pytest.raises(DataError) as exc:
        download(url, TIME_MACHINE_SHA1, dest, timeout=5)
    msg = str(exc.value)
    assert "failed" in msg and url in msg
    assert DATA_ENV_VAR in msg and "--data" in msg and str(dest) in msg
    assert not dest.exists() and os.listdir(dest.parent) == []


def test_download_failure_says_why_the_file_already_there_was_not_used(tmp_path: Path) -> None:
    dest = tmp_path / "timemachine.txt"
    dest.write_bytes(b"the first 1000 bytes of the book, say")  # a truncated cache
    with pytest.raises(DataError) as exc:
        download(closed_port_url(), TIME_MACHINE_SHA1, dest, timeout=5)
    msg = str(exc.value)
    assert f"the file already at {dest} is not the book" in msg
    assert sha1_hex(dest.read_bytes()) in msg and TIME_MACHINE_SHA1 in msg


def test_download_makes_a_file_others_may_read(http_dir, tmp_path: Path) -> None:
    """mkstemp makes 0600 files; a shared cache must get open()'s mode (0666 less umask)."""
    root, base = http_dir
    (root / "t.txt").write_bytes(b"data")
    mask = os.umask(0o022)
    try:
        dest = download(f"{base}/t.txt", sha1_hex(b"data"), tmp_path / "t.txt", timeout=5)
    finally:
        os.umask(mask)
    assert dest.stat().st_mode & 0o777 == 0o644


def test_download_skips_good_existing_file(tmp_path: Path) -> None:
    dest = tmp_path / "t.txt"
    dest.write_bytes(b"already here")
    os.utime(dest, (1_000_000, 1_000_000))
    # Nothing listens at the URL: any download attempt would raise.
    assert download(closed_port_url(), sha1_hex(b"already here"), dest, timeout=5) == dest
    assert dest.stat().st_mtime == 1_000_000


def test_sha1_of(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(b"abc" * 50000)
    assert sha1_of(p) == sha1_hex(b"abc" * 50000)


def test_cache_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "tinygrad_rnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "tinygrad_rnn"


def test_time_machine_path_explicit_and_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("alpha\n")
    b.write_text("beta\n")
    monkeypatch.setenv(DATA_ENV_VAR, str(b))
    assert time_machine_path() == b
    assert time_machine_path(a) == a  # the explicit path wins
    assert read_lines() == ["beta"]

    missing = tmp_path / "nope.txt"
    with pytest.raises(DataError, match="nope.txt"):
        time_machine_path(missing)
    monkeypatch.setenv(DATA_ENV_VAR, str(missing))
    with pytest.raises(DataError) as exc:
        time_machine_path()
    assert DATA_ENV_VAR in str(exc.value) and str(missing) in str(exc.value)
    with pytest.raises(DataError, match="does not exist"):
        time_machine_path(tmp_path)  # a folder is not a data file


def test_time_machine_path_uses_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, book: Path, no_env
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv(DATA_ENV_VAR, "")  # empty counts as unset
    cached = tmp_path / "tinygrad_rnn" / "timemachine.txt"
    cached.parent.mkdir()
    shutil.copyfile(book, cached)  # a verified cache copy means no network access
    assert time_machine_path() == cached


def test_non_utf8_file(tmp_path: Path, no_env) -> None:
    p = tmp_path / "latin1.txt"
    p.write_bytes("caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin1.txt.*UTF-8"):
        read_lines(p)


def test_a_bad_byte_deep_in_a_file_is_reported_at_its_offset(tmp_path: Path, no_env) -> None:
    p = tmp_path / "bad.txt"
    text = ("the time traveller\n" * 10_000).encode()  # 190,000 bytes: many read chunks
    p.write_bytes(text[:100_000] + b"\xff" + text[100_000:])
    with pytest.raises(DataError, match=r"bad.txt is not valid UTF-8 text \(byte 100000: "):
        read_lines(p)


def test_custom_corpus(tmp_path: Path) -> None:
    p = tmp_path / "tiny.txt"
    p.write_text("Ab, ab!\n\nBA\n", encoding="utf-8")
    corpus, vocab = load_corpus(p)
    assert vocab.idx_to_token[:2] == ["<unk>", "a"] and len(vocab) == 4
    assert "".join(vocab.to_tokens(corpus)) == "ab abba"
    words, wvocab = load_corpus(p, token="word")
    assert wvocab.to_tokens(words.tolist()) == ["ab", "ab", "ba"]


def test_vocab_refuses_a_string_of_reserved_tokens():
    """``reserved_tokens='<pad>'`` would reserve '<', 'p', 'a', ... and push the text's
    own 'a' into a reserved slot."""
    with pytest.raises(TypeError, match=r"got the string '<pad>' \(write \['<pad>'\]\)"):
        Vocab(list("abc"), reserved_tokens="<pad>")
    assert Vocab(list("abc"), reserved_tokens=["<pad>"]).idx_to_token == [
        "<unk>", "<pad>", "a", "b", "c"]


def test_to_tokens_refuses_indices_that_are_not_in_the_vocabulary():
    vocab = Vocab(list("abc"))
    assert vocab.to_tokens(np.int64(3)) == "c"
    with pytest.raises(IndexError, match="token index -1 is out of range for a vocabulary of 4"):
        vocab.to_tokens(-1)  # not the last token
    with pytest.raises(IndexError, match="token index 4 is out of range"):
        vocab.to_tokens([1, 4])
    with pytest.raises(TypeError, match="token indices must be integers, got 2.7"):
        vocab.to_tokens(2.7)  # not 'b'


def test_vocab_looks_up_an_array_of_tokens():
    vocab = Vocab(list("abca"))
    assert vocab[np.array(["a", "c", "z"])] == [vocab["a"], vocab["c"], vocab.unk]


@pytest.mark.parametrize("corpus", [
    np.array([-5, 3, 2] * 40),
    np.array([2**63, 1, 2] * 40, dtype=np.uint64),  # would wrap to a negative int64
])
def test_iterators_refuse_token_ids_outside_int64_range(corpus):
    with pytest.raises(ValueError, match="corpus token ids must be in"):
        SeqDataLoader(corpus, 2, 3)


def test_use_random_iter_must_be_a_bool():
    with pytest.raises(TypeError, match="use_random_iter must be True or False, got 'no'"):
        SeqDataLoader(np.arange(100), 2, 3, use_random_iter="no")  # a truthy string


def test_load_corpus_refuses_a_non_integer_max_tokens(corpus):
    with pytest.raises(TypeError, match="max_tokens must be an integer"):
        load_corpus(corpus, max_tokens=2.5)


def test_loader_offsets_cover_their_range():
    """The loader draws as the iterator functions do: random in [0, T-1], sequential in
    [0, T] (100 seeds miss one of 6 values with probability ~6·(5/6)^100 ≈ 7e-8)."""
    for use_random_iter, offsets in ((True, range(5)), (False, range(6))):
        seen = {SeqDataLoader(np.arange(200), 2, 5, use_random_iter, seed=s).next_offset
                for s in range(100)}
        assert seen == set(offsets)


def test_max_tokens_zero_keeps_the_whole_corpus(book, char_corpus):
    assert len(load_corpus(book, max_tokens=0)[0]) == len(char_corpus[0]) == 170580


def test_to_tokens_takes_a_0d_integer_tensor_or_array():
    import tinygrad_rnn as tg

    vocab = Vocab(list("abc"))
    assert vocab.to_tokens(tg.Tensor([0.1, 3.0, 0.2]).argmax()) == vocab.to_tokens(1)
    assert vocab.to_tokens(np.array(3)) == "c"


# ------------------------------------------------- one lookup: the cache, offline, resume
@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_env) -> Path:
    """An empty cache folder of its own (``$XDG_CACHE_HOME``), no environment variable,
    and no network: any download attempt fails the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def no_download(*args: object, **kwargs: object) -> Path:
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr("tinygrad_rnn.hub.download", no_download)
    return tmp_path / "xdg" / "tinygrad_rnn"


def test_without_download_only_a_verified_cache_is_used(cache: Path, book: Path) -> None:
    with pytest.raises(DataError) as exc:
        time_machine_path(download=False)
    msg = str(exc.value)  # everything a user offline needs to supply the file
    for needed in (str(cache / "timemachine.txt"), DATA_ENV_VAR, "--data", TIME_MACHINE_URL):
        assert needed in msg, (needed, msg)
    cache.mkdir(parents=True)
    (cache / "timemachine.txt").write_bytes(book.read_bytes()[:1000])  # truncated
    with pytest.raises(DataError, match=f"is not The Time Machine.*{TIME_MACHINE_SHA1}"):
        time_machine_path(download=False)
    shutil.copyfile(book, cache / "timemachine.txt")
    assert time_machine_path(download=False) == cache / "timemachine.txt"
    assert time_machine_path() == cache / "timemachine.txt"  # verified: no download


def test_the_tests_find_the_book_in_the_cache(cache: Path, book: Path) -> None:
    """With the book cached and no environment variable, no data test skips: they all
    find it through helpers.book_path, which is the package's lookup."""
    with pytest.raises(pytest.skip.Exception, match="not in the cache"):
        book_path()
    cache.mkdir(parents=True)
    shutil.copyfile(book, cache / "timemachine.txt")
    assert book_path() == str(cache / "timemachine.txt")


def test_the_cli_library_and_examples_use_the_one_lookup(cache: Path, book: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup is the only one: the library's loader and Trainer.create read the cache
    it finds (the CLI and the examples call those), and $TINYGRAD_RNN_DATA overrides it."""
    from tinygrad_rnn.charlm.train import TrainConfig, Trainer

    cache.mkdir(parents=True)
    shutil.copyfile(book, cache / "timemachine.txt")
    assert read_lines() == read_lines(book)
    trainer = Trainer.create(TrainConfig(num_hiddens=4, max_tokens=2000, batch_size=2,
                                         num_steps=5), backend="numpy")
    assert trainer.data_file == {"path": str((cache / "timemachine.txt").resolve()),
                                 "sha1": TIME_MACHINE_SHA1}
    other = cache.parent / "other.txt"
    other.write_text("abc\n")
    monkeypatch.setenv(DATA_ENV_VAR, str(other))
    assert read_lines() == ["abc"]


def _train_and_resume(argv_data: list[str], ckpt: Path, *resume: str) -> int:
    from tinygrad_rnn.charlm.cli import main

    tiny = ["--hidden", "8", "--batch-size", "2", "--num-steps", "5", "--max-tokens", "400",
            "--quiet", "--backend", "numpy"]
    if argv_data:
        assert main(["train", "--epochs", "1", *argv_data, "--save", str(ckpt), *tiny]) == 0
    return main(["train", "--epochs", "2", "--resume", str(ckpt), "--save", str(ckpt), *tiny,
                 *resume])


def test_resume_without_data_reads_the_text_where_it_was_trained(
        cache: Path, corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "m.npz"
    assert _train_and_resume(["--data", corpus], ckpt) == 0  # no --data: the recorded path
    from tinygrad_rnn.charlm import checkpoint

    meta = checkpoint.load(ckpt)["meta"]
    assert meta["epoch"] == 2
    assert meta["data_file"] == {"path": str(Path(corpus).resolve()), "sha1": sha1_of(corpus)}
    capsys.readouterr()
    # the text moved (and is not the book): no download, one clear error naming both
    moved = Path(corpus).rename(tmp_path / "moved.txt")
    assert _train_and_resume([], ckpt, "--epochs", "3") == 2
    err = capsys.readouterr().err
    assert str(Path(corpus).resolve()) in err and meta["data_file"]["sha1"] in err
    assert "--data" in err
    # $TINYGRAD_RNN_DATA pointing at other text is refused, not trained on
    other = tmp_path / "other.txt"
    other.write_text(moved.read_text().upper() + "x\n")
    monkeypatch.setenv(DATA_ENV_VAR, str(other))
    assert _train_and_resume([], ckpt, "--epochs", "3") == 2
    assert "is other text" in capsys.readouterr().err
    # ... and pointing at the same text, found there
    monkeypatch.setenv(DATA_ENV_VAR, str(moved))
    assert _train_and_resume([], ckpt, "--epochs", "3") == 0


def test_resume_of_the_book_finds_it_in_the_cache(cache: Path, book: Path,
                                                  tmp_path: Path) -> None:
    copy = tmp_path / "timemachine.txt"
    shutil.copyfile(book, copy)
    ckpt = tmp_path / "m.npz"
    assert _train_and_resume(["--data", str(copy)], ckpt) == 0
    copy.write_text("changed\n")  # the recorded path now holds other text: not used
    cache.mkdir(parents=True)
    shutil.copyfile(book, cache / "timemachine.txt")
    assert _train_and_resume([], ckpt, "--epochs", "3") == 0


def test_a_checkpoint_without_the_data_file_still_resumes(corpus: str, tmp_path: Path,
                                                          no_env) -> None:
    """Checkpoints written before the path was recorded: resumed with --data as before."""
    from tinygrad_rnn.charlm import checkpoint

    ckpt = tmp_path / "m.npz"
    assert _train_and_resume(["--data", corpus], ckpt) == 0
    old = checkpoint.load(ckpt)
    meta = {k: v for k, v in old["meta"].items() if k not in ("data_file", "format")}
    checkpoint.save(ckpt, old["params"], old["vocab"], meta, old["optim"])
    assert "data_file" not in checkpoint.load(ckpt)["meta"]
    assert _train_and_resume([], ckpt, "--epochs", "3", "--data", corpus) == 0


def test_no_user_facing_text_names_the_ci_layout() -> None:
    """``../shared/data/timemachine.txt`` is where CI keeps its copy of the book (.ci/run
    sets $TINYGRAD_RNN_DATA to it); to a user it means nothing. The README, the docs and
    the examples say how to supply the book instead (the cache, $TINYGRAD_RNN_DATA,
    --data)."""
    root = Path(__file__).resolve().parents[1]
    files = [root / "README.md", *sorted((root / "docs").rglob("*")),
             *sorted((root / "examples").rglob("*"))]
    texts = [f for f in files if f.is_file() and f.suffix in (".md", ".py", ".txt", ".sh", "")]
    assert root / "README.md" in texts and any(f.suffix == ".py" for f in texts)
    hits = [f"{f.relative_to(root)}:{n}: {line.strip()}"
            for f in texts
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
            if "../shared" in line or "shared/data/" in line]
    assert hits == [], "\n".join(hits)


def test_only_the_data_module_looks_for_the_book() -> None:
    """One lookup: no other module of the package, example, benchmark or test reads
    $TINYGRAD_RNN_DATA or builds a path to the book's file itself (test_data.py builds
    cache paths to test the lookup)."""
    root = Path(__file__).resolve().parents[1]
    reads = re.compile(r"(getenv|environ\.get|environ\[)\(?\s*(['\"]TINYGRAD_RNN_DATA|DATA_ENV_VAR)"
                       r"|['\"]timemachine\.txt['\"]")
    own = {root / "tinygrad_rnn" / "charlm" / "data.py", Path(__file__).resolve()}
    files = [f for d in ("tinygrad_rnn", "examples", "tests", "benchmarks")
             for f in sorted((root / d).rglob("*.py")) if f not in own]
    assert len(files) > 20
    hits = [f"{f.relative_to(root)}:{n}: {line.strip()}" for f in files
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
            if reads.search(line)]
    assert hits == [], "\n".join(hits)
    assert any(reads.search(line) for line in (root / "tinygrad_rnn" / "charlm" /
                                               "data.py").read_text().splitlines())

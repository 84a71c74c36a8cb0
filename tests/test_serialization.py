"""``tg.save`` / ``tg.load`` (state dicts in ``.npz``, never pickled) and ``tg.hub``
(downloads checked by SHA-1)."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.serialization import SerializationError


def test_a_state_dict_round_trips_exactly_with_its_dtypes(tmp_path, backend):
    tg.manual_seed(3)
    model = tg.nn.Linear(3, 2, dtype="float64", backend=backend)
    state = {**model.state_dict(), "steps": np.arange(4, dtype=np.int16),
             "flags": np.array([True, False]), "t": tg.Tensor([1.5], backend=backend),
             "tokens": np.array(["<unk>", "a", " "])}
    assert tg.save(state, tmp_path / "m.npz") == tmp_path / "m.npz"
    loaded = tg.load(tmp_path / "m.npz")
    assert set(loaded) == set(state)
    for key, value in state.items():
        value = value.numpy() if isinstance(value, tg.Tensor) else value
        assert loaded[key].dtype == value.dtype, key
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    other = tg.nn.Linear(3, 2, dtype="float64", backend=backend)
    other.load_state_dict({k: v for k, v in loaded.items() if k in ("W", "b")})
    np.testing.assert_array_equal(other.W.numpy(), model.W.numpy())


def test_load_refuses_what_is_not_a_state_dict_naming_the_file(tmp_path):
    with pytest.raises(SerializationError, match="missing.npz does not exist"):
        tg.load(tmp_path / "missing.npz")
    with pytest.raises(SerializationError, match="is not a file"):
        tg.load(tmp_path)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(SerializationError, match="text.npz is not a valid .npz"):
        tg.load(tmp_path / "text.npz")
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (ran,))

    np.savez(tmp_path / "evil.npz", x=np.array([Payload()], dtype=object))
    with pytest.raises(SerializationError, match="pickled"):
        tg.load(tmp_path / "evil.npz")
    assert not ran.exists()
    assert pickle.dumps(Payload())  # the payload is real: it would have run


def test_save_refuses_object_arrays_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.npz"
    tg.save({"w": np.ones(2)}, path)
    before = path.read_bytes()
    with pytest.raises(SerializationError, match="'bad' is an object array"):
        tg.save({"w": np.zeros(2), "bad": np.array([{}], dtype=object)}, path)
    with pytest.raises(TypeError, match="keys must be strings"):
        tg.save({1: np.zeros(2)}, path)
    with pytest.raises(IsADirectoryError):
        tg.save({"w": np.zeros(2)}, tmp_path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


def test_hub_downloads_into_a_cache_and_checks_the_hash(tmp_path):
    source = tmp_path / "src.txt"
    source.write_bytes(b"some data\n" * 10)
    sha1 = hashlib.sha1(source.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / "data.txt"
    assert tg.hub.download(source.as_uri(), sha1, dest) == dest
    assert dest.read_bytes() == source.read_bytes() and tg.hub.sha1_of(dest) == sha1
    with pytest.raises(tg.hub.DownloadError, match="expected 0{40}.*put it there yourself"):
        tg.hub.download(source.as_uri(), "0" * 40, tmp_path / "bad.txt",
                        hint="put it there yourself")
    assert not (tmp_path / "bad.txt").exists()
    with pytest.raises(tg.hub.DownloadError, match="is not the data set"):
        tg.hub.download((tmp_path / "gone").as_uri(), "1" * 40, dest, what="the data set")
    assert dest.read_bytes() == source.read_bytes()  # the cached copy stays


def _npy(array: np.ndarray, shape: tuple | None = None) -> bytes:
    """``array`` as the bytes of an ``.npy`` file, its header claiming ``shape``."""
    import io

    out = io.BytesIO()
    np.lib.format.write_array(out, array)
    raw = out.getvalue()
    if shape is None:
        return raw
    header = np.lib.format.header_data_from_array_1_0(array)
    header["shape"] = shape
    fake = io.BytesIO()
    np.lib.format.write_array_header_1_0(fake, header)
    return fake.getvalue() + raw[len(fake.getvalue()):]


@pytest.mark.parametrize("shape", [(2**50,), (10**6, 10**6), (3,), (5,)])
def test_load_checks_a_header_against_the_entrys_size_before_allocating(tmp_path, shape):
    """Issue 21: a header claiming a huge array made NumPy try to allocate it. The claim
    must account for exactly the bytes the entry holds (4 float32 here), else one
    SerializationError, whatever the size, without allocating it."""
    import tracemalloc
    import zipfile

    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("w.npy", _npy(np.arange(4, dtype=np.float32), shape))
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError, match=rf"entry 'w' claims a float32 array of "
                                                     rf"shape \({shape[0]},"):
            tg.load(path)
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()


def test_load_refuses_duplicate_and_foreign_entries_and_reads_compressed_files(tmp_path):
    import warnings
    import zipfile

    path = tmp_path / "m.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("w.npy", _npy(np.zeros(2)))
            z.writestr("w.npy", _npy(np.ones(2)))
    with pytest.raises(SerializationError, match="two entries named 'w.npy'"):
        tg.load(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("w.npy", _npy(np.zeros(2)))
        z.writestr("notes.txt", b"hello")
    with pytest.raises(SerializationError, match="entry 'notes.txt' is not a .npy array"):
        tg.load(path)
    np.savez_compressed(path, w=np.arange(1000))
    np.testing.assert_array_equal(tg.load(path)["w"], np.arange(1000))


def test_a_flipped_bit_in_an_npy_header_is_caught_by_the_crc(tmp_path):
    """The CRC-32 covers a whole entry, its .npy header too: a flip of the header's '<f4'
    to '>f4' (one bit: the same size, every value byte-swapped) is refused."""
    path = tmp_path / "m.npz"
    tg.save({"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, path)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"'<f4'") + 1
    raw[at] ^= 0x02  # '<' (0x3c) -> '>' (0x3e)
    path.write_bytes(raw)
    with pytest.raises(SerializationError, match="Bad CRC-32 for file 'w.npy'"):
        tg.load(path)

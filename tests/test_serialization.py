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

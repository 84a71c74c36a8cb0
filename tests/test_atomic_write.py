"""``tinygrad_rnn.serialization.atomic_write``: the data on disk before the rename, no
temporary file left behind, the target's permissions, links and the umask respected."""

from __future__ import annotations

import os
import stat

import pytest

import tinygrad_rnn as tg


def test_atomic_write_puts_the_data_on_disk_before_the_rename(tmp_path, monkeypatch):
    """catches: fsync before flush: the data is still in Python's buffer; catches: no fsync;
    catches: the folder not fsynced after the rename (a power cut could undo the rename)."""
    path = tmp_path / "f.bin"
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        st = os.fstat(fd)
        kind = "folder" if stat.S_ISDIR(st.st_mode) else "file"
        synced.append((kind, st.st_size if kind == "file" else None, path.exists()))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    tg.serialization.atomic_write(path, lambda f: f.write(b"x" * 1000))
    # the temporary file, full, before the rename; then the folder, after it
    assert synced == [("file", 1000, False), ("folder", None, True)]
    assert path.read_bytes() == b"x" * 1000


def test_atomic_write_leaves_no_temporary_file_after_ctrl_c(tmp_path):
    """catches: only Exception cleaned up: an interrupt leaves the temporary file."""
    def interrupted(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tg.serialization.atomic_write(tmp_path / "f.bin", interrupted)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_stages_a_hidden_file_next_to_the_target(tmp_path):
    """catches: temporary file in $TMPDIR: os.replace across file systems fails, and is not
    atomic; catches: temporary not hidden: a glob for *.png picks up a half-written plot."""
    target = tmp_path / "out" / "plot.png"
    during = []
    tg.serialization.atomic_write(target, lambda f: during.append(
        [p.name for p in target.parent.iterdir()]), suffix=".png")
    (names,) = during
    assert len(names) == 1 and names[0].startswith(".plot.png.") and names[0].endswith(".png")


def test_atomic_write_refuses_a_directory_or_a_read_only_file_and_follows_a_link(
        tmp_path, monkeypatch):
    """As ``open(path, "wb")``: a directory is refused, a read-only file too (checked with
    os.access, which root passes, so it is faked here), and a symlink is written through."""
    with pytest.raises(IsADirectoryError, match=f"cannot write {tmp_path}: it is a directory"):
        tg.serialization.atomic_write(tmp_path, lambda f: f.write(b"x"))
    target, link = tmp_path / "target.bin", tmp_path / "link.bin"
    target.write_bytes(b"old")
    link.symlink_to(target)
    assert tg.serialization.atomic_write(link, lambda f: f.write(b"new")) == link
    assert link.is_symlink() and target.read_bytes() == b"new"
    dangling = tmp_path / "dangling.bin"  # into a folder that does not exist: not made
    dangling.symlink_to(tmp_path / "missing" / "x.bin")
    with pytest.raises(FileNotFoundError):
        tg.serialization.atomic_write(dangling, lambda f: f.write(b"x"))
    dangling.unlink()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match="target.bin: the file is read-only"):
        tg.serialization.atomic_write(target, lambda f: f.write(b"x"))
    assert target.read_bytes() == b"new" and sorted(tmp_path.iterdir()) == [link, target]


def test_atomic_write_names_the_callers_path_and_survives_a_link_loop(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IsADirectoryError) as info:
        tg.serialization.atomic_write("link", lambda f: f.write(b"x"))
    assert str(info.value) == "cannot write link: it is a directory"
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    tg.serialization.atomic_write("a", lambda f: f.write(b"x"))  # Path.resolve() would raise
    assert (tmp_path / "a").read_bytes() == b"x"


def test_atomic_write_leaves_the_umask_alone(tmp_path):
    """catches: new_file_mode reads the umask by setting it to 0, and does not set it back:
    every later file of the process would be world-writable."""
    old = os.umask(0o027)
    try:
        tg.serialization.atomic_write(tmp_path / "f.bin", lambda f: f.write(b"x"))
        now = os.umask(0o027)
    finally:
        os.umask(old)
    assert now == 0o027
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o640


def test_atomic_write_never_replaces_a_device_or_a_fifo(tmp_path):
    """A rename would put a regular file where /dev/full or a FIFO was (run as root, a
    device node): refused before anything is written."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for special in (fifo, "/dev/null"):
        with pytest.raises(tg.serialization.SerializationError, match="not a regular file"):
            tg.serialization.atomic_write(special, lambda f: f.write(b"x"))
    assert fifo.exists() and not fifo.is_file() and os.path.exists("/dev/null")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_successful_write_removes_the_temporaries_of_dead_writers(tmp_path):
    """Killed writers leave ``.NAME.PID.*.tmp``; the next save removes those whose PID
    is gone and keeps a live writer's (here: a running child's) and other files."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        target = tmp_path / "m.npz"
        orphans = [tmp_path / f".m.npz.{dead_pid}.abc{i}.tmp" for i in range(3)]
        live = tmp_path / f".m.npz.{alive.pid}.xyz.tmp"
        other = tmp_path / f".other.npz.{dead_pid}.q.tmp"
        for p in (*orphans, live, other):
            p.write_bytes(b"partial")
        tg.serialization.atomic_write(target, lambda f: f.write(b"new"))
        assert target.read_bytes() == b"new"
        assert not any(p.exists() for p in orphans) and live.exists() and other.exists()
    finally:
        alive.kill()
        alive.wait()

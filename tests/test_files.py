"""fmareport.files, each mechanism on real files: an atomic write leaves the old file or the new one,
never half a file nor its temporary file; a held lock refuses a second holder (another process, or
another open of the file in this one); only a real folder with our marker is ever deleted."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading

import pytest

from fmareport.files import (
    atomic_file,
    file_digest,
    is_owned,
    locked,
    mark_owned,
    remove_owned,
    take_lock,
    write_atomic,
)

MARKER = ".fmareport-test"


def test_write_atomic_writes_text_and_bytes_and_leaves_no_temporary_file(tmp_path):
    text, data = tmp_path / "a" / "b.json", tmp_path / "c.bin"
    assert write_atomic(text, "é\n") == text and text.read_bytes() == "é\n".encode()  # UTF-8, folders made
    write_atomic(data, b"\0\1")
    write_atomic(data, b"\2")  # replaces
    assert data.read_bytes() == b"\2"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.json", "c.bin"]


@pytest.mark.parametrize("crash", [OSError("disk full"), KeyboardInterrupt()])
def test_a_crash_during_an_atomic_write_leaves_the_old_file_and_no_temporary_file(tmp_path, crash):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"old")
    with pytest.raises(type(crash)):
        with atomic_file(path) as f:
            f.write(b"half of the new")
            raise crash
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_an_atomic_write_onto_a_folder_fails_and_removes_its_temporary_file(tmp_path):
    (tmp_path / "results.json").mkdir()
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "results.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


TRY_LOCK = """import fcntl, sys
try:
    fcntl.flock(open(sys.argv[1], "w"), fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(3)
"""


def held_elsewhere(path) -> bool:
    """Whether another process finds `path` locked (its flock with LOCK_NB is refused)."""
    code = subprocess.run([sys.executable, "-c", TRY_LOCK, str(path)]).returncode
    assert code in (0, 3)
    return code == 3


def test_a_held_lock_refuses_a_second_holder_until_it_is_released(tmp_path):
    path = tmp_path / "build" / "lock"
    busy = RuntimeError(f"lock {path} is held: wait for that run to finish")
    with locked(path, busy):  # the folder is made
        assert held_elsewhere(path)  # another process
        assert take_lock(path, wait=False) is None  # another open file in this one: flock locks the open file
        with pytest.raises(RuntimeError, match="is held: wait"), locked(path, busy):
            pass
    assert not held_elsewhere(path)
    fd = take_lock(path, wait=False)
    assert fd is not None and held_elsewhere(path)
    os.close(fd)  # closing the descriptor releases it
    assert not held_elsewhere(path)


def test_a_waiting_lock_is_taken_when_the_holder_releases_it(tmp_path):
    path, order = tmp_path / "store.lock", []

    def second():
        with locked(path):
            order.append("second")

    with locked(path):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.2)  # it waits
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]


def test_an_owned_folder_is_marked_recognised_and_removed(tmp_path):
    folder = mark_owned(tmp_path / "a" / "checkpoints", MARKER, "settings\n")
    (folder / "seed0.pt").write_bytes(b"x")
    assert is_owned(folder, MARKER) and (folder / MARKER).read_text() == "settings\n"
    assert remove_owned(folder, MARKER) and not folder.exists()
    assert not remove_owned(folder, MARKER)  # gone: nothing to do


def test_a_folder_without_the_marker_is_never_deleted(tmp_path):
    folder = tmp_path / "users"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "precious.txt").write_text("keep me")
    (folder / ".fmareport-other").touch()  # another marker is not ours
    (tmp_path / "file").write_text("a file, not a folder")
    assert not is_owned(folder, MARKER) and not remove_owned(folder, MARKER)
    assert not remove_owned(tmp_path / "file", MARKER)
    assert (folder / "sub" / "precious.txt").read_text() == "keep me" and (tmp_path / "file").is_file()


def test_a_symbolic_link_is_never_deleted_even_to_an_owned_folder(tmp_path):
    target = mark_owned(tmp_path / "ours", MARKER)
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    assert not is_owned(link, MARKER) and not remove_owned(link, MARKER)
    assert link.is_symlink() and is_owned(target, MARKER)


def test_file_digest_is_hashlibs_and_feeds_one_hash_over_several_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"abc" * 100_000)
    b.write_bytes(b"")
    assert file_digest(a) == hashlib.sha1(a.read_bytes()).hexdigest()
    assert file_digest(b, "md5") == hashlib.md5(b"").hexdigest()
    h = hashlib.sha1()
    file_digest(a, h)
    h.update(b";")
    assert file_digest(b, h) == hashlib.sha1(a.read_bytes() + b";").hexdigest() == h.hexdigest()
    with pytest.raises(FileNotFoundError):
        file_digest(tmp_path / "missing")


def test_atomic_writes_from_two_threads_to_one_path_do_not_collide(tmp_path):
    """Each writer has its own temporary file (the name carries process and thread)."""
    path, errors = tmp_path / "r.json", []

    def write(text: str) -> None:
        try:
            for _ in range(200):
                write_atomic(path, text)
        except OSError as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(t,)) for t in ("a" * 1000, "b" * 1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and path.read_text() in ("a" * 1000, "b" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_shared_lock_file_is_readable_by_every_user_whatever_the_umask(tmp_path):
    """Made under umask 077 (common on clusters) it would be 0600: another user could not open it."""
    old = os.umask(0o077)
    try:
        fd = take_lock(tmp_path / "locks" / "gpu-uuid.lock", wait=False, shared=True)
    finally:
        os.umask(old)
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "locks" / "gpu-uuid.lock").stat().st_mode) == 0o644


def test_a_marker_that_is_a_link_does_not_make_a_folder_ours(tmp_path):
    elsewhere = tmp_path / "marker-elsewhere"
    elsewhere.write_text("")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / MARKER).symlink_to(elsewhere)
    assert not is_owned(folder, MARKER) and not remove_owned(folder, MARKER) and folder.is_dir()

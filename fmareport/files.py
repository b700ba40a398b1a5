"""The file mechanisms every part of fmareport shares, each written once (docs/contracts.md, "Files"):
`atomic_file` / `write_atomic` (a file appears whole or not at all), `replaced_together` (several
files replaced together or not at all), `read_json` (a JSON file fmareport wrote, read with bounds),
`take_lock` / `locked` (an exclusive flock), `mark_owned` / `is_owned` / `remove_owned` (only a
folder fmareport made, never a symbolic link, is ever deleted), `file_digest`. Standard library
only: gpus.py uses it before any job (and torch) starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def temporary_name(path: Path) -> Path:
    """The temporary file `atomic_file` writes `path` through: `.<name>.<pid>.<thread>.tmp` beside it."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer


def leftover_temporaries(path: str | Path) -> list[Path]:
    """The temporary files of `path` that writers killed mid-write left beside it (`temporary_name`'s
    pattern, any pid): for a caller that holds the only right to write `path` (a lock) to remove."""
    path = Path(path)
    return sorted(p for p in path.parent.glob(f".{path.name}.*.tmp") if p.is_file() and not p.is_symlink())


@contextlib.contextmanager
def _temporary_file(path: Path, mode: str) -> Iterator[tuple[IO, Path]]:
    """(file object, its path) of a new temporary file for `path`, synced when the block ends; on
    any exception (Ctrl-C too) it is removed. The caller renames it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the mode a plain open() gives
    try:
        with open(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """A file to write `path` through: a temporary file next to it (same disk, so the rename is
    atomic), synced and renamed onto `path` when the block ends. On any exception (Ctrl-C too) the
    temporary file is removed and `path` is left as it was. `mode`: "w" (UTF-8 text) or "wb"."""
    path = Path(path)
    with _temporary_file(path, mode) as (f, tmp):
        yield f
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` (str: as UTF-8) to `path` atomically (`atomic_file`); return the path."""
    with atomic_file(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
    return Path(path)


@contextlib.contextmanager
def replaced_together(files: dict[str | Path, str | bytes]) -> Iterator[None]:
    """Replace several files (str: written as UTF-8) together or not at all, around a block: each is
    first written whole to its temporary file beside it (`atomic_file`'s: same disk, fsynced), then
    the block runs (it may write one more file atomically: the one that names these), and when it
    ends they are renamed onto their paths in the order given. An exception while writing them or in
    the block (a full disk, Ctrl-C) removes every temporary file and leaves every old file as it
    was. Nothing is written after the block, so only a kill during the renames (microseconds) leaves
    some files new and others old, with the temporary files not yet renamed beside them
    (`leftover_temporaries`); a file that names the others by their SHA1 shows the mismatch."""
    staged: list[tuple[Path, Path]] = []  # (temporary file, its path); (path, path) once renamed
    try:
        for path, data in files.items():
            path = Path(path)
            with _temporary_file(path, "w" if isinstance(data, str) else "wb") as (f, tmp):
                f.write(data)
            staged.append((tmp, path))
        yield
        for i, (tmp, path) in enumerate(staged):
            os.replace(tmp, path)
            staged[i] = (path, path)
    except BaseException:
        for tmp, path in staged:
            if tmp != path:
                tmp.unlink(missing_ok=True)
        raise


# The most bytes `read_json` reads of a JSON file fmareport wrote (a results or baseline file). The
# largest real one is a results file at the paper's scale: per seed, 224 bytes per test track (its 8
# probabilities) and a line per epoch, so 5 seeds x 800 test tracks are under 1 MB. 64 MiB holds a
# run 64 times that (FMA-large's 8 genres' test tracks, 10 seeds) and is parsed in about a second;
# a file beyond it is not one fmareport wrote.
MAX_JSON_BYTES = 64 << 20


MOVE_AWAY = "move it away, or run again what wrote it"  # the fix every refusal of read_json ends with


class JSONFileError(ValueError):
    """A file `read_json` refuses; the message says why, without the file's name (the caller adds it)."""


def read_json(path: str | Path, max_bytes: int = MAX_JSON_BYTES):
    """The JSON value in the regular file `path` (UTF-8), read with bounds: opened without waiting (a
    FIFO never blocks), refused unless it is a regular file (a symbolic link to one is followed; one to
    /dev/zero is refused) of at most `max_bytes`, and a number beyond Python's digit limit or nesting
    too deep is refused by name, not by Python's traceback. JSONFileError (a ValueError) for what is
    in the file, OSError for what reading it raised."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
                    stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}.get(stat.S_IFMT(mode), "not a file")  # fmt: skip
            raise JSONFileError(f"not a regular file ({kind}): {MOVE_AWAY}")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise JSONFileError(f"over {max_bytes:,} bytes (files.MAX_JSON_BYTES), more than fmareport writes: {MOVE_AWAY}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise JSONFileError(f"not UTF-8 text (byte {err.start}: {data[err.start]:#04x}): {MOVE_AWAY}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise JSONFileError(f"not JSON ({err}): {MOVE_AWAY}") from None
    except RecursionError:
        raise JSONFileError(f"JSON nested deeper than Python reads, more than fmareport writes: {MOVE_AWAY}") from None
    except ValueError as err:  # int("9" * 5_000_000): Python's limit on the digits of an integer
        if "integer string conversion" not in str(err):
            raise
        raise JSONFileError(
            f"holds an integer of more than {sys.get_int_max_str_digits():,} digits (Python's limit), which no "
            f"file fmareport writes holds: {MOVE_AWAY}"
        ) from None


def take_lock(path: str | Path, wait: bool = True, shared: bool = False) -> int | None:
    """An open descriptor of `path` (made, with its folder, if missing) holding an exclusive flock
    on it. The lock lasts until the descriptor is closed, in this process and any that inherits
    it (flock locks the open file, not the process). wait=False: None at once when another holds it.

    shared=True: a lock every user of the machine takes (the GPU locks): a folder this call makes is
    given mode 1777 (anyone may add a file, only its owner remove it), and the file is opened read-only
    (flock needs no write access) without O_CREAT when it exists, as fs.protected_regular refuses
    O_CREAT on another user's file in such a folder."""
    path = Path(path)
    if shared:
        fd = _open_shared(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_shared(path: Path) -> int:
    """A read-only descriptor of `path` in a folder every user may write (made with mode 1777)."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.stat().st_uid == os.getuid():  # made here (or by this user): open it to all
            os.chmod(path.parent, 0o1777)
    while True:
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue  # another process made it in between: open it as it is
        os.fchmod(fd, 0o644)  # readable by every user whatever this one's umask (077 on many clusters)
        return fd


@contextlib.contextmanager
def locked(path: str | Path, busy: Exception | None = None) -> Iterator[None]:
    """Hold `path`'s lock (`take_lock`) for the block. Without `busy` wait for it (a second
    process takes its turn); with `busy`, raise it at once when another process holds the lock."""
    fd = take_lock(path, wait=busy is None)
    if fd is None:
        raise busy
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def mark_owned(folder: str | Path, marker: str, text: str = "") -> Path:
    """Make `folder` (and its parents) if missing and write our `marker` file in it, holding `text`:
    the sign that fmareport made it, which `remove_owned` asks for. Return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).write_text(text, encoding="utf-8")
    return folder


def is_owned(folder: str | Path, marker: str) -> bool:
    """Whether `folder` is a real folder (not a symbolic link to one) with our `marker` file in it
    (a real file, not a link to one)."""
    folder = Path(folder)
    mark = folder / marker
    return folder.is_dir() and not folder.is_symlink() and mark.is_file() and not mark.is_symlink()


def remove_owned(folder: str | Path, marker: str) -> bool:
    """Delete `folder` if it is ours (`is_owned`) and return True; anything else, a symbolic link
    or a folder without the marker, is left as it is (False): we never delete what we did not make."""
    if not is_owned(folder, marker):
        return False
    shutil.rmtree(folder)
    return True


def file_digest(path: str | Path, algo="sha1") -> str:
    """The hex digest of the file at `path`, read by hashlib.file_digest (docs/measurements.md, "What
    checking the store costs"). `algo`: a hashlib name, or a hash object to go on feeding (one digest
    over several files, as store.source_fingerprint makes); its digest so far is returned."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algo if isinstance(algo, str) else lambda: algo).hexdigest()

"""The folders a run writes to, checked before the work that fills them (docs/faults.md, case 14):
`check_writable` and `check_room` raise StorageError naming the folder, the config key that sets it
and the fix, so a read-only results folder stops a cell before its first epoch, not after its last.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import StorageError

PROBE = ".fmareport-write-probe"  # the file check_writable writes and deletes: <PROBE>-<pid>


def human(n: float) -> str:
    """Bytes as the messages say them: '1.5 GiB', '320.0 KiB', '17 bytes'."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):,.1f} {unit}"
    return f"{n:,.0f} bytes"


def free_bytes(folder: str | Path) -> int:
    """Free bytes on the disk that holds `folder` (or its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_writable(folder: str | Path, key: str) -> Path:
    """Make `folder` (and its parents), then write and delete a probe file of our own in it.

    -> the folder; StorageError naming it and the config `key` that sets it when any step fails.
    Only a probe this call created (O_EXCL) is deleted."""
    folder = Path(folder)
    probe = folder / f"{PROBE}-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            probe.unlink()
    except OSError as err:
        raise StorageError(
            f"{folder}: cannot write there ({err.strerror or err}): make it writable, or set {key} to a "
            "folder you can write to"
        ) from None
    return folder


def check_room(folder: str | Path, need: int, what: str, key: str) -> None:
    """StorageError unless the disk of `folder` has `need` bytes free for `what`."""
    free = free_bytes(folder)
    if need > free:
        raise StorageError(
            f"{folder}: {what} need about {human(need)}, its disk has {human(free)} free: free "
            f"{human(need - free)} there, or set {key} to a folder on a disk with room"
        )

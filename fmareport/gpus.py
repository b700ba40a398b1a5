"""The GPUs of this machine and which one a job owns, without torch (the Snakefile and the
Makefile ask this before any job starts).

* `visible_gpus()`: the GPUs a process may use, as CUDA_VISIBLE_DEVICES entries: that
  variable's list when it is set (SLURM sets it to a job's allocation), else every GPU that
  `nvidia-smi -L` lists, by index; [] on a machine without either.
* `claim_gpu(candidates)`: the first candidate no other job holds, held by an exclusive
  lock (flock) on a file named after the GPU's UUID, so two jobs on one machine never
  share a GPU, whatever each one's CUDA_VISIBLE_DEVICES numbering; it waits while all
  are held. The lock is released when the process (and whatever it execs) exits.
* `fmareport on-gpu -- CMD ...` (cli.py) claims one, sets CUDA_VISIBLE_DEVICES to it and
  execs CMD: the workflow runs every cell job through it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import CommandNotFound
from .files import take_lock

NVIDIA_SMI_TIMEOUT = 20  # s: nvidia-smi on a machine with a hung driver never answers


def nvidia_smi(*args: str) -> str | None:
    """nvidia-smi's output, or None where it is not installed or fails (no driver, no GPU)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def machine_gpus() -> list[dict[str, str]]:
    """Every GPU nvidia-smi sees (index, uuid, name, driver), in PCI bus order; [] without nvidia-smi."""
    out = nvidia_smi("--query-gpu=index,uuid,name,driver_version", "--format=csv,noheader")
    rows = [[f.strip() for f in line.split(",")] for line in (out or "").splitlines() if line.strip()]
    return [dict(index=r[0], uuid=r[1], name=r[2], driver=r[3]) for r in rows if len(r) == 4]


def visible_gpus(env: dict[str, str] | None = None) -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries (indices or UUIDs).

    CUDA_VISIBLE_DEVICES when set (an empty value, or -1, hides every GPU), else the indices
    nvidia-smi lists."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        entries = [e.strip() for e in env["CUDA_VISIBLE_DEVICES"].split(",") if e.strip()]
        # CUDA stops at the first invalid entry (e.g. -1): so do we.
        valid = []
        for e in entries:
            if not re.fullmatch(r"\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-zA-Z/-]+", e):
                break
            valid.append(e)
        return valid
    return [g["index"] for g in machine_gpus()]


def _lock_key(entry: str, gpus: list[dict[str, str]]) -> str:
    """A name for the GPU behind a CUDA_VISIBLE_DEVICES entry that is the same in every job on
    this machine: its UUID when nvidia-smi knows it, else the entry itself."""
    for g in gpus:
        if entry in (g["index"], g["uuid"]):
            return g["uuid"]
    return entry


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"fmareport-gpu-locks-{os.getuid()}"


def claim_gpu(candidates: list[str], lock_dir: Path | None = None, poll: float = 5.0) -> tuple[str, int]:
    """Lock the first free GPU of `candidates` (CUDA_VISIBLE_DEVICES entries); wait while all are held.

    -> (the entry, the file descriptor holding its lock). The lock lasts while the
    descriptor is open in any process (it survives exec when made inheritable)."""
    if not candidates:
        raise ValueError("no GPU to claim")
    lock_dir = lock_dir or default_lock_dir()
    gpus = machine_gpus()
    while True:
        for entry in candidates:
            key = re.sub(r"[^0-9A-Za-z_-]", "_", _lock_key(entry, gpus))
            fd = take_lock(lock_dir / f"{key}.lock", wait=False)
            if fd is not None:
                return entry, fd
        time.sleep(poll)


def exec_on_gpu(command: list[str], lock_dir: Path | None = None, poll: float = 5.0) -> None:
    """Replace this process by `command`, running on a GPU of its own (see claim_gpu).

    Without a visible GPU the command runs as it is. With one, CUDA_VISIBLE_DEVICES names
    the claimed GPU alone (when the list came from nvidia-smi, CUDA_DEVICE_ORDER=PCI_BUS_ID
    makes CUDA number the GPUs as nvidia-smi does). Never returns. A command that is not an
    executable file nor on PATH is CommandNotFound, before any GPU is claimed."""
    if shutil.which(command[0]) is None:
        raise CommandNotFound(f"command not found: {command[0]} (not an executable file, nor a program on PATH)")
    env = dict(os.environ)
    candidates = visible_gpus(env)
    if candidates:
        entry, fd = claim_gpu(candidates, lock_dir, poll)
        os.set_inheritable(fd, True)  # the lock stays held by the exec'd command
        if "CUDA_VISIBLE_DEVICES" not in env:  # our entries are nvidia-smi's indices: number as it does
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = entry
        print(f"fmareport on-gpu: GPU {entry} (of {','.join(candidates)})", flush=True)
    os.execvpe(command[0], command, env)

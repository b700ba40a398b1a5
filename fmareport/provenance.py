"""Where a result came from: code version, packages, machine, time.

`collect(device)` returns the `provenance` block of a results file (results.Provenance)
except the run's own fields (`started`, `finished`, `entry`), which the caller adds
with `now()`. Nothing here fails a run: what cannot be found is recorded as null.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from .config import REPO_ROOT
from .files import file_digest

# Distributions whose versions decide the numbers (the names pip knows them by).
PACKAGES = ("fmareport", "torch", "torchaudio", "numpy", "pandas", "soundfile", "soxr", "papermill", "jupytext")


def now() -> dt.datetime:
    """The current time in UTC, to the second (written as ISO 8601, e.g. 2026-11-24T09:15:02Z)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def package_version(name: str) -> str | None:
    """The installed version of the distribution `name`; None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Installed versions of PACKAGES, plus libsndfile's (what decodes the mp3s); None if absent."""
    out = {name: package_version(name) for name in PACKAGES}
    try:
        import soundfile

        out["libsndfile"] = soundfile.__libsndfile_version__
    except (ImportError, OSError, AttributeError):
        out["libsndfile"] = None
    return out


# The pinned environment `make install` installs (Makefile): the rest, then torch and its CUDA packages.
LOCK_FILES = ("requirements.lock", "requirements-torch.lock")


def lock_hashes(root: Path = REPO_ROOT) -> dict[str, str | None]:
    """{lock file: SHA-256 of its bytes} for this checkout's LOCK_FILES; None for one that is missing."""
    return {name: file_digest(root / name, "sha256") if (root / name).is_file() else None for name in LOCK_FILES}


def _git(*args: str, cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git on this machine
    return done.stdout if done.returncode == 0 else None


def git_state(root: Path = REPO_ROOT) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout the code runs from; (None, None) outside a git checkout.
    Dirty: any tracked change or untracked, non-ignored file (a pipeline's results and data are ignored)."""
    top = _git("rev-parse", "--show-toplevel", cwd=root)
    if top is None or Path(top.strip()).resolve() != root.resolve():
        return None, None  # not a checkout, or an installed copy inside someone else's
    commit = _git("rev-parse", "HEAD", cwd=root)
    if commit is None:
        return None, None  # a repository without commits
    status = _git("status", "--porcelain", cwd=root)
    return commit.strip(), (bool(status.strip()) if status is not None else None)


def cpuinfo(*keys: str) -> list[str]:
    """The values of /proc/cpuinfo's lines named one of `keys`, in order; [] without that file."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
    return [value.strip() for key, _, value in (line.partition(":") for line in lines) if key.strip() in keys]


def _cpu_model() -> str:
    return next(iter(cpuinfo("model name")), None) or platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None  # not a POSIX system that reports it


def hardware(torch_facts: bool = True) -> dict[str, Any]:
    """CPU, memory, torch threads and, when CUDA is present, the GPUs. torch_facts=False: a run that
    used no torch (the baselines) records the machine without importing it."""
    memory = _memory_bytes()
    hw: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1) if memory else None,
    }
    if not torch_facts:
        return hw
    import torch

    hw |= {
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpus": [],
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            hw["gpus"].append(
                {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1), "capability": f"{p.major}.{p.minor}"}
            )
    return hw


def device_name(device: str) -> str:
    """'cpu', or e.g. 'cuda:0 (NVIDIA H100 80GB HBM3)' for a CUDA device."""
    if device == "cpu":
        return device
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(dev)


def collect(device: str, torch_facts: bool = True) -> dict[str, Any]:
    """The provenance block for a run on `device` (a torch device string such as 'cpu', 'cuda');
    torch_facts=False for a run that used no torch (`hardware`)."""
    commit, dirty = git_state()
    return {
        "versions": versions(),
        "python": sys.version.split()[0],
        "git_commit": commit,
        "git_dirty": dirty,
        "device": device_name(device),
        "hardware": hardware(torch_facts),
    }

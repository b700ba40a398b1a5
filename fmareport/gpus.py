"""The GPUs of this machine and which one a job owns, without torch in this process (the
Snakefile and the Makefile ask before any job starts; torch is asked in a subprocess, `torch_gpus`).

* `visible_gpus()`: the GPUs a process may use, as CUDA_VISIBLE_DEVICES entries; `gpu_count()`:
  how many cell jobs can have one (0 when torch sees no usable CUDA device); `cuda_problem()`: why
  torch cannot compute on a GPU here, in the words every message about a missing GPU uses.
* Two locks per GPU in GPU_LOCK_DIR, named after its UUID (`uuid_key`), the same in every process
  whatever its CUDA_VISIBLE_DEVICES: `<uuid>.lock`, held for a whole cell by the process that
  computes on the GPU (`hold_gpu`, device.claimed_device), keeps two runs off one GPU;
  `<uuid>.claim`, held by `fmareport on-gpu` and the command it execs (`claim_gpu`, `exec_on_gpu`),
  keeps two workflow jobs starting together from picking the same GPU before either holds its lock.
The workflow runs every cell job through `fmareport on-gpu` (docs/running.md, "GPUs").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .errors import CommandNotFound
from .files import take_lock

NVIDIA_SMI_TIMEOUT = 20  # s: nvidia-smi on a machine with a hung driver never answers
TORCH_TIMEOUT = 120  # s: importing torch and starting CUDA in the subprocess
# The GPU locks of every user and session on this machine (mode 1777): a fixed path, as $TMPDIR is per
# session and $XDG_RUNTIME_DIR per user, where locks would not exclude each other.
GPU_LOCK_DIR = Path("/tmp/fmareport-gpu-locks")
# How to get a GPU to this run, named in every message that says there is none.
GPU_FIX = (
    "with a CPU-only torch wheel or one too new for the driver, install a CUDA 12 wheel "
    "(make report TORCH_INDEX=https://download.pytorch.org/whl/cu126)"
)
# Linux driver a CUDA major version needs at least (NVIDIA's CUDA Toolkit release notes,
# "CUDA minor version compatibility": 11.x >= 450.80.02, 12.x >= 525.60.13, 13.x >= 580).
CUDA_MIN_DRIVER = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}
# What the torch subprocess prints: the UUIDs of the devices torch can use, and why none when none.
TORCH_GPUS_CODE = (
    "import json, torch\n"
    "from fmareport.gpus import cuda_problem\n"
    "problem = cuda_problem()\n"
    "n = torch.cuda.device_count() if problem is None else 0\n"
    "print(json.dumps({'uuids': [str(torch.cuda.get_device_properties(i).uuid) for i in range(n)], "
    "'problem': problem}))"
)


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


def smi_devices(listing: str | None = None) -> dict[str, str]:
    """What `nvidia-smi -L` lists, as {CUDA_VISIBLE_DEVICES entry: UUID}: a GPU's index, or for a
    GPU split into MIG slices (lines 'MIG ... (UUID: MIG-...)' under it) each slice's MIG UUID."""
    listing = nvidia_smi("-L") if listing is None else listing
    devices: dict[str, str] = {}
    gpu = None  # the index of the GPU line being read
    for line in (listing or "").splitlines():
        if m := re.match(r"GPU (\d+):.*\(UUID: ([^)]+)\)", line.strip()):
            gpu = m[1]
            devices[gpu] = m[2].strip()
        elif (m := re.match(r"MIG .*\(UUID: ([^)]+)\)", line.strip())) and gpu is not None:
            devices.pop(gpu, None)  # a GPU in MIG mode: its slices are the devices
            devices[m[1].strip()] = m[1].strip()
    return devices


def torch_gpus(env: dict[str, str] | None = None) -> dict | None:
    """What torch sees, asked in a subprocess (no torch, no CUDA in this one), numbering the devices
    in PCI bus order as nvidia-smi does: {"uuids": [the UUID of each device torch can use], "problem":
    why none (cuda_problem) or None}; None when the subprocess fails (torch not installed)."""
    env = {**(os.environ if env is None else env)}
    env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    try:
        done = subprocess.run(
            [sys.executable, "-c", TORCH_GPUS_CODE], capture_output=True, text=True, timeout=TORCH_TIMEOUT, env=env
        )
        return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def cuda_problem() -> str | None:
    """None when torch can run on a GPU here; else why not, naming the wheel's CUDA, the driver
    (from nvidia-smi when it exists) and the GPU. Imports torch: the count's subprocess asks it
    (TORCH_GPUS_CODE), and so does a run choosing its device (device.pick_device)."""
    import torch

    build = f"torch {torch.__version__}"
    if torch.version.cuda is None:
        return f"{build} is a CPU-only build"
    driver = CUDA_MIN_DRIVER.get(torch.version.cuda.split(".")[0], "?")
    wheel = f"{build} is built for CUDA {torch.version.cuda}, which needs an NVIDIA driver >= {driver}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not torch.cuda.is_available():
        if visible is not None and not cuda_visible_entries(visible):
            return (
                f"the environment variable CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from this process "
                "(unset it, or set it to a GPU's index)"
            )
        if shutil.which("nvidia-smi") is None:
            return f"{wheel}; this machine has no NVIDIA driver (nvidia-smi not found)"
        gpus = machine_gpus()
        if not gpus:
            return f"{wheel}; nvidia-smi lists no GPU"
        names = ", ".join(sorted({g["name"] for g in gpus}))
        return (
            f"{wheel}, but torch cannot use the GPU(s) ({names}) with the installed driver {gpus[0]['driver']}: "
            "update the driver, or install a torch wheel built for an older CUDA: make install "
            "TORCH_INDEX=https://download.pytorch.org/whl/cu126 (CUDA 12.6, driver >= 525; docs/running.md)"
        )
    arch = [a for a in torch.cuda.get_arch_list() if a.startswith("sm_")]  # e.g. sm_75 ... sm_120
    cap = torch.cuda.get_device_capability(0)
    if arch and cap[0] * 10 + cap[1] < min(int(a[3:]) for a in arch):
        return (
            f"{torch.cuda.get_device_name(0)} has compute capability {cap[0]}.{cap[1]}; {wheel} and has kernels "
            f"for {arch[0]} to {arch[-1]} only"
        )
    return None


def visible_gpus(env: dict[str, str] | None = None, seen: dict | None = None) -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries (indices or UUIDs): that
    variable's when set (SLURM's allocation; empty or -1 hides every GPU), else what nvidia-smi -L
    lists (MIG slices by UUID), else the devices torch sees (`seen`: torch_gpus(), else asked here)."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        return cuda_visible_entries(env["CUDA_VISIBLE_DEVICES"])
    listed = list(smi_devices())
    if listed:
        return listed
    seen = torch_gpus(env) if seen is None else seen
    return [str(i) for i in range(len(seen["uuids"]))] if seen else []


def cuda_visible_entries(value: str) -> list[str]:
    """The valid entries of a CUDA_VISIBLE_DEVICES value: CUDA stops at the first invalid one (-1)."""
    valid = []
    for e in (e.strip() for e in value.split(",")):
        if not re.fullmatch(r"\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-zA-Z/-]+", e):
            break
        valid.append(e)
    return valid


def gpu_count(env: dict[str, str] | None = None, seen: dict | None = None) -> int:
    """How many cell jobs may each have a GPU here: 0 when torch sees no usable CUDA device (whatever
    nvidia-smi lists), else the visible entries (every MIG slice: a CUDA process enumerates one).
    `seen`: torch_gpus(env) when the caller has asked it (else asked here)."""
    seen = torch_gpus(env) if seen is None else seen
    if seen is not None and not seen["uuids"]:
        return 0
    return len(visible_gpus(env, seen))


def uuid_key(uuid: str) -> str:
    """A GPU's lock name from its UUID as nvidia-smi ('GPU-5d5b...', 'MIG-...') or torch
    (get_device_properties(i).uuid: '5d5b...') writes it: the same in every process."""
    key = re.sub(r"^(GPU|MIG)-", "", uuid.strip(), flags=re.I).lower()
    return re.sub(r"[^0-9a-z_-]", "_", key)


def gpu_keys(entries: list[str], env: dict[str, str] | None = None) -> dict[str, str]:
    """{CUDA_VISIBLE_DEVICES entry: its lock name}: the UUID of the GPU behind it, from nvidia-smi
    (the index's GPU, or the UUID an entry names), else from torch (the entries are its indices),
    else the entry itself (a fake GPU in tests)."""
    uuids = {g["index"]: g["uuid"] for g in machine_gpus()} | smi_devices()
    if not uuids and any(e.isdigit() for e in entries):
        seen = torch_gpus(env) or {"uuids": []}
        uuids = {str(i): u for i, u in enumerate(seen["uuids"])}
    return {e: uuid_key(uuids.get(e, e)) for e in entries}


def gpu_busy(lock_dir: Path, key: str) -> bool:
    """Whether a process computes on the GPU `key` now (holds its `<key>.lock`)."""
    fd = take_lock(lock_dir / f"{key}.lock", wait=False, shared=True)
    if fd is None:
        return True
    os.close(fd)  # a probe: released at once
    return False


def claim_gpu(
    candidates: list[str], lock_dir: Path | None = None, poll: float = 5.0, env: dict[str, str] | None = None
) -> tuple[str, int]:
    """Claim the first GPU of `candidates` (CUDA_VISIBLE_DEVICES entries) that no other job claims and
    no process computes on, waiting while there is none -> (the entry, the descriptor holding its
    claim, which lasts while it is open in any process: across exec when made inheritable)."""
    if not candidates:
        raise ValueError("no GPU to claim")
    lock_dir = lock_dir or GPU_LOCK_DIR
    keys = gpu_keys(candidates, env)
    while True:
        for entry in candidates:
            fd = take_lock(lock_dir / f"{keys[entry]}.claim", wait=False, shared=True)
            if fd is None:
                continue
            if not gpu_busy(lock_dir, keys[entry]):
                return entry, fd
            os.close(fd)
        time.sleep(poll)


def hold_gpu(keys: list[str], lock_dir: Path | None = None, poll: float = 5.0, say=print) -> tuple[int, int]:
    """Lock the first GPU of `keys` (lock names, in the order of torch's device indices) that no other
    process computes on; wait while all are held, saying so once through `say`.

    -> (its index in `keys`, the file descriptor holding its lock: close it to release)."""
    if not keys:
        raise ValueError("no GPU to hold")
    lock_dir = lock_dir or GPU_LOCK_DIR
    waiting = False
    while True:
        for i, key in enumerate(keys):
            fd = take_lock(lock_dir / f"{key}.lock", wait=False, shared=True)
            if fd is not None:
                return i, fd
        if not waiting:
            say(f"every GPU this run may use ({len(keys)}) is held by another run (locks in {lock_dir}): waiting")
            waiting = True
        time.sleep(poll)


def exec_on_gpu(command: list[str], lock_dir: Path | None = None, poll: float = 5.0) -> None:
    """Replace this process by `command`, with CUDA_VISIBLE_DEVICES naming a GPU it claimed (claim_gpu;
    numbered as nvidia-smi does), or as it is without a visible GPU. Never returns; CommandNotFound,
    before any claim, for a command that is not an executable file nor on PATH."""
    if shutil.which(command[0]) is None:
        raise CommandNotFound(f"command not found: {command[0]} (not an executable file, nor a program on PATH)")
    env = dict(os.environ)
    candidates = visible_gpus(env)
    if candidates:
        entry, fd = claim_gpu(candidates, lock_dir, poll, env)
        os.set_inheritable(fd, True)  # the claim stays held by the exec'd command
        if "CUDA_VISIBLE_DEVICES" not in env:  # nvidia-smi's (or torch's PCI-ordered) indices
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = entry
        print(f"fmareport on-gpu: GPU {entry} (of {','.join(candidates)})", flush=True)
    os.execvpe(command[0], command, env)

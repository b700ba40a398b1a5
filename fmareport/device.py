"""Where a run's work happens: one `DevicePolicy`, built from the config and this machine.

`device_policy(cfg, store_nbytes)` decides once per cell (experiment.run_cell; every seed uses it
and records it, `DevicePolicy.record()`) and says why in `policy.notes`: the device (`pick_device`:
DeviceError when the machine cannot give it), whether the clip store is resident on it, bf16
autocast where the device really has bf16, pinned copies on CUDA. `claimed_device` holds the GPU
a run computes on (gpus.hold_gpu). The keys and what they decide: docs/running.md ("The device
policy"); the contract: docs/contracts.md ("Device policy").
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Config
from .errors import FmareportError
from .gpus import GPU_FIX, cuda_problem, hold_gpu, uuid_key
from .provenance import cpuinfo

# Ampere (A100, RTX 30xx) and later have bf16 tensor cores; torch.cuda.is_bf16_supported() is True on
# older GPUs too, through emulation, slower than fp32 there.
BF16_MIN_CAPABILITY = (8, 0)
STORE_SHARE_OF_FREE = 0.5  # store_on_device auto: at most this share of the free GPU memory
# CPU flags (/proc/cpuinfo) of bf16 arithmetic in hardware: AVX512-BF16 and AMX (x86), BF16 (Arm).
# Elsewhere CPU autocast emulates bf16 (converts around fp32 math): slower than fp32, other numbers.
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


class DeviceError(FmareportError, RuntimeError):
    """The config asks for a device this machine cannot give; the message says what to do."""


def pick_device(cfg: Config) -> torch.device:
    """cfg.compute.device as a torch device, or DeviceError at once when the machine cannot give it."""
    if cfg.compute.device == "cpu":
        return torch.device("cpu")
    problem = cuda_problem()
    if problem is None:
        return torch.device("cuda", torch.cuda.current_device())  # the GPU claimed_device holds (else cuda:0)
    if cfg.compute.device == "cuda":
        raise DeviceError(
            f"config asks for device 'cuda' but CUDA is not usable: {problem}. Use device: cpu, or {GPU_FIX}"
        )
    if cfg.run.cpu_fallback:
        return torch.device("cpu")
    raise DeviceError(
        f"profile {cfg.profile!r}, device auto: no usable CUDA device ({problem}). This profile does not fall "
        "back to the CPU (cpu_fallback: false): it would train for days there. Fix the GPU setup, or ask for "
        'the CPU with the override device: cpu (papermill -y "overrides: {device: cpu}", or fmareport run '
        f"--set device=cpu); {GPU_FIX}"
    )


@contextlib.contextmanager
def claimed_device(cfg: Config, lock_dir: Path | None = None, poll: float = 5.0) -> Iterator[torch.device]:
    """The run's device (pick_device); on CUDA, for the block, the first GPU this process sees whose
    lock (gpus.hold_gpu) no other process holds, made the current device (waiting while all are
    held): two runs never share a GPU, however they were started."""
    device = pick_device(cfg)
    if device.type != "cuda":
        yield device
        return
    keys = [uuid_key(str(torch.cuda.get_device_properties(i).uuid)) for i in range(torch.cuda.device_count())]
    index, fd = hold_gpu(keys, lock_dir, poll, say=lambda line: print(f"fmareport: {line}", file=sys.stderr))
    try:
        torch.cuda.set_device(index)
        yield torch.device("cuda", index)
    finally:
        os.close(fd)  # releases the lock


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them ('flags' on x86, 'Features' on Arm); none elsewhere."""
    return frozenset(flag for value in cpuinfo("flags", "Features") for flag in value.split())


def bf16_autocast(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 autocast really runs in bf16 on `device`, and why."""
    if device.type == "cpu":
        has = sorted(CPU_BF16_FLAGS & cpu_flags())
        if has:
            return True, f"the CPU has bf16 instructions ({', '.join(has)})"
        return False, "the CPU has no bf16 instructions (avx512_bf16, amx_bf16, bf16): autocast would only emulate it"
    if device.type == "cuda":
        cap = torch.cuda.get_device_capability(device)
        if cap >= BF16_MIN_CAPABILITY:
            return True, f"compute capability {cap[0]}.{cap[1]} >= 8.0 has bf16 tensor cores"
        return False, f"compute capability {cap[0]}.{cap[1]} < 8.0 only emulates bf16 (slower than fp32)"
    return False, f"no bf16 autocast on {device.type}"


@dataclass(frozen=True)
class DevicePolicy:
    """Where a run computes and keeps its data; built by `device_policy(cfg, store_nbytes)`."""

    device: torch.device
    resident_store: bool  # the clip store as one int16 tensor on `device`; else the memmap per batch
    amp_dtype: torch.dtype | None  # autocast dtype (bf16), or None: fp32
    pin_memory: bool  # host -> device copies through pinned memory, non_blocking (CUDA)
    gpu: str | None  # the GPU this job owns: its CUDA_VISIBLE_DEVICES (None: all, or CPU)
    notes: tuple[str, ...] = ()  # one line per decision (device, store, autocast): what and why
    name: str = "cpu"  # the device's name (the GPU's model)
    uuid: str | None = None  # the GPU's UUID (None on the CPU)

    @property
    def amp(self) -> bool:
        return self.amp_dtype is not None

    def autocast(self) -> torch.autocast:
        """The forward pass's autocast context (a disabled one in fp32)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp)

    def to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A host tensor on the device; on CUDA from pinned memory without waiting for the copy."""
        if self.device.type == "cpu":
            return t
        if self.pin_memory:
            t = t.pin_memory()
        return t.to(self.device, non_blocking=self.pin_memory)

    def describe(self) -> str:
        return "; ".join(self.notes)

    def record(self) -> dict:
        """How a seed ran, as the results file keeps it (results.DevicePolicyRecord)."""
        device_note, store_note, amp_note = self.notes
        return dict(
            device_type=self.device.type,
            device_name=self.name,
            device_index=self.device.index,
            device_uuid=self.uuid,
            cuda_visible_devices=self.gpu,
            device_reason=device_note,
            amp_dtype=str(self.amp_dtype).removeprefix("torch.") if self.amp else None,
            amp_reason=amp_note,
            store="resident" if self.resident_store else "memmap",
            store_reason=store_note,
        )


def _device_note(cfg: Config, device: torch.device) -> tuple[str, str | None, str]:
    """(the device's name, its UUID, the note saying which device and why)."""
    if device.type != "cuda":
        why = " (device auto, no usable CUDA: cpu_fallback)" if cfg.compute.device == "auto" else ""
        return "cpu", None, f"device cpu{why}"
    p = torch.cuda.get_device_properties(device)
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
    note = (
        f"device {device} = {p.name} (compute capability {p.major}.{p.minor}, {p.total_memory / 1e9:.0f} GB"
        + (f", CUDA_VISIBLE_DEVICES={gpu}" if gpu is not None else "")
        + ")"
    )
    return p.name, str(p.uuid), note


def _store_decision(cfg: Config, device: torch.device, store_nbytes: int, resident_nbytes: int) -> tuple[bool, str]:
    """Whether the clip store lives on the device, and why. `resident_nbytes`: the bytes of this store
    already resident on the device (train's cache): free memory counts them as free for it."""
    if cfg.run.store_on_device == "never":
        return False, "clip store: memmap (store_on_device: never)"
    if cfg.run.store_on_device == "always":
        return True, f"clip store: resident on {device.type} (store_on_device: always)"
    if device.type != "cuda":
        return False, "clip store: memmap (store_on_device: auto on the CPU)"
    free = torch.cuda.mem_get_info(device)[0] + resident_nbytes
    resident = store_nbytes <= STORE_SHARE_OF_FREE * free
    cached = ", its copy already there counted as free" if resident_nbytes else ""
    return resident, (
        f"clip store: {'resident in GPU memory' if resident else 'memmap'} "
        f"({store_nbytes / 1e9:.1f} GB, {'<=' if resident else '>'} half of {free / 1e9:.1f} GB free{cached})"
    )


def _amp_decision(cfg: Config, device: torch.device) -> tuple[torch.dtype | None, str]:
    """The autocast dtype (None: fp32), and why."""
    if not cfg.compute.amp:
        return None, "fp32 (amp: false)"
    ok, why = bf16_autocast(device)
    return (torch.bfloat16 if ok else None), f"{'bf16 autocast' if ok else 'fp32'} (amp: true; {why})"


def device_policy(
    cfg: Config, store_nbytes: int = 0, device: torch.device | None = None, resident_nbytes: int = 0
) -> DevicePolicy:
    """The policy of a run of `cfg` on this machine, for a clip store of `store_nbytes` bytes, on
    `device` (default: pick_device's); `resident_nbytes` of the store already on the device."""
    device = pick_device(cfg) if device is None else device
    name, uuid, device_note = _device_note(cfg, device)
    resident, store_note = _store_decision(cfg, device, store_nbytes, resident_nbytes)
    amp_dtype, amp_note = _amp_decision(cfg, device)
    return DevicePolicy(
        device=device,
        resident_store=resident,
        amp_dtype=amp_dtype,
        pin_memory=device.type == "cuda",
        gpu=os.environ.get("CUDA_VISIBLE_DEVICES") if device.type == "cuda" else None,
        notes=(device_note, store_note, amp_note),
        name=name,
        uuid=uuid,
    )

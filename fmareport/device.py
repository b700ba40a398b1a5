"""Where a run's work happens: one `DevicePolicy`, built from the config and this machine.

It decides, once per run, and says why (`policy.notes`):

* the device: cfg.compute.device "cpu", "cuda", or "auto" (CUDA when usable; otherwise the CPU if
  cfg.run.cpu_fallback, else stop at once naming the reason: the paper profile would train
  on a CPU for days). "Usable" means torch can run kernels on the GPU: the wheel's CUDA
  needs a recent enough driver, and its kernels stop at some oldest GPU architecture.
* where the clip store lives (cfg.run.store_on_device): "auto" copies it into GPU memory
  when it takes at most half the free memory (FMA-small: 8000 x 10**6 int16 = 16 GB) and
  reads the memmap on a CPU; "always" makes it a resident tensor on any device, the CPU
  included (the same code the GPU runs); "never" reads the memmap.
* autocast (cfg.compute.amp): bf16 where the device really has it. CPU autocast runs bf16 (all
  x86 CPUs PyTorch supports); on CUDA only from compute capability 8.0 (Ampere) on:
  `torch.cuda.is_bf16_supported()` is True on older GPUs too, through emulation, which is
  slower than fp32 there.
* pinned host copies (CUDA only): batch indices and memmap batches go to the GPU from
  pinned memory with non_blocking copies, so the loop never waits for a copy.
* which GPU the job owns: cuda:0 of this process, i.e. the first entry of
  CUDA_VISIBLE_DEVICES, which the workflow sets per job (`fmareport on-gpu`, gpus.py).

Checkpoints are loaded to the CPU (train.load_checkpoint); load_state_dict then places the
weights and the optimizer state on the policy's device.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import torch

from .config import Config
from .errors import FmareportError
from .gpus import machine_gpus

# Linux driver a CUDA major version needs at least (NVIDIA's CUDA Toolkit release notes,
# "CUDA minor version compatibility": 11.x >= 450.80.02, 12.x >= 525.60.13, 13.x >= 580).
CUDA_MIN_DRIVER = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}
BF16_MIN_CAPABILITY = (8, 0)  # Ampere (A100, RTX 30xx) and later have bf16 tensor cores
STORE_SHARE_OF_FREE = 0.5  # store_on_device auto: at most this share of the free GPU memory


class DeviceError(FmareportError, RuntimeError):
    """The config asks for a device this machine cannot give; the message says what to do."""


def cuda_problem() -> str | None:
    """None when torch can run on a GPU here; else why not, naming the wheel's CUDA, the driver
    (from nvidia-smi when it exists) and the GPU."""
    build = f"torch {torch.__version__}"
    if torch.version.cuda is None:
        return f"{build} is a CPU-only build"
    major = torch.version.cuda.split(".")[0]
    wheel = f"{build} is built for CUDA {torch.version.cuda}, which needs an NVIDIA driver >= " + CUDA_MIN_DRIVER.get(
        major, "?"
    )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not torch.cuda.is_available():
        if visible is not None and not visible.strip(","):
            return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
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


def pick_device(cfg: Config) -> torch.device:
    """cfg.compute.device as a torch device, or DeviceError at once when the machine cannot give it."""
    if cfg.compute.device == "cpu":
        return torch.device("cpu")
    problem = cuda_problem()
    if problem is None:
        return torch.device("cuda")  # cuda:0 of this process: the job's own GPU (CUDA_VISIBLE_DEVICES)
    if cfg.compute.device == "cuda":
        raise DeviceError(f"config asks for device 'cuda' but CUDA is not usable: {problem}. Use device: cpu")
    if cfg.run.cpu_fallback:
        return torch.device("cpu")
    raise DeviceError(
        f"profile {cfg.profile!r}, device auto: no usable CUDA device ({problem}). This profile does not fall "
        "back to the CPU (cpu_fallback: false): it would train for days there. Fix the GPU setup, or ask for "
        'the CPU with the override device: cpu (papermill -y "overrides: {device: cpu}", or fmareport run '
        "--set device=cpu)"
    )


def bf16_autocast(device: torch.device) -> tuple[bool, str]:
    """Whether bf16 autocast really runs in bf16 on `device`, and why."""
    if device.type == "cpu":
        return True, "CPU autocast runs bf16"
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
    notes: tuple[str, ...] = ()  # one line per decision: what and why

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


def device_policy(cfg: Config, store_nbytes: int = 0) -> DevicePolicy:
    """The policy of a run of `cfg` on this machine, for a clip store of `store_nbytes` bytes."""
    device = pick_device(cfg)
    notes = []
    gpu = None
    if device.type == "cuda":
        gpu = os.environ.get("CUDA_VISIBLE_DEVICES")
        p = torch.cuda.get_device_properties(device)
        notes.append(
            f"device cuda:0 = {p.name} (compute capability {p.major}.{p.minor}, {p.total_memory / 1e9:.0f} GB"
            + (f", CUDA_VISIBLE_DEVICES={gpu}" if gpu is not None else "")
            + ")"
        )
    else:
        notes.append(
            "device cpu" + (" (device auto, no usable CUDA: cpu_fallback)" if cfg.compute.device == "auto" else "")
        )

    if cfg.run.store_on_device == "never":
        resident = False
        notes.append("clip store: memmap (store_on_device: never)")
    elif cfg.run.store_on_device == "always":
        resident = True
        notes.append(f"clip store: resident on {device.type} (store_on_device: always)")
    elif device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        resident = store_nbytes <= STORE_SHARE_OF_FREE * free
        notes.append(
            f"clip store: {'resident in GPU memory' if resident else 'memmap'} "
            f"({store_nbytes / 1e9:.1f} GB, {'<=' if resident else '>'} half of {free / 1e9:.1f} GB free)"
        )
    else:
        resident = False
        notes.append("clip store: memmap (store_on_device: auto on the CPU)")

    amp_dtype = None
    if cfg.compute.amp:
        ok, why = bf16_autocast(device)
        amp_dtype = torch.bfloat16 if ok else None
        notes.append(f"{'bf16 autocast' if ok else 'fp32'} (amp: true; {why})")
    else:
        notes.append("fp32 (amp: false)")
    return DevicePolicy(
        device=device,
        resident_store=resident,
        amp_dtype=amp_dtype,
        pin_memory=device.type == "cuda",
        gpu=gpu,
        notes=tuple(notes),
    )

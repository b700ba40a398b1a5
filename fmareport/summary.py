"""The network's layer table and what training it costs (`fmareport summary --profile P`).

`layer_table` traces the model on the meta device (no data, no memory): every layer's shapes
and parameters, which the Methods page's figures and tables draw. `summary_text` prints it per
input kind and window (a whole clip, a segment); `cost_text` the FLOPs of one training epoch and
the peak memory and time of one real step on this CPU, so that a GPU run can be sized first.
"""

from __future__ import annotations

import ctypes
import gc
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from .config import Config, ModelSettings
from .data.audio import INT16_SCALE
from .data.fma import FMA_SMALL_SPLITS, GENRES
from .inputs import INPUTS
from .model import Net, layer_info
from .train import windows


@dataclass
class LayerRow:
    """One layer of the network as it ran on an input of a given length (batch dim dropped)."""

    name: str  # module path in Net, e.g. "conv1.spec", "dense.0"
    kind: str  # stft | logstft | logmel | first | conv1d | conv2d | pool | dense | linear
    depth: int  # 0: a layer of Fig. 1; 1: a part of the first layer (Fig. 2)
    in_shape: tuple[int, ...]  # e.g. (1025, 977)
    out_shape: tuple[int, ...]  # e.g. (256, 974)
    kernel: tuple[int, ...] | None  # samples, or (bins, frames) for the 2D conv
    stride: tuple[int, ...] | None
    padding: tuple[int, ...] | None  # samples added (left, right) or per dim
    features: int | None  # output maps / units / frequency bins or mel bands
    params: int  # trainable parameters of this module (incl. its BN)
    note: str  # what happens after it: BN, ELU, shortcut, ...


_NOTES = {
    "conv1": "BN, ELU (also the shortcut to conv3)",
    "conv2": "BN, ELU",
    "conv3": "BN, + conv1 (residual), ELU",
    "pool": "global max and global mean over time, concatenated",
    "out": "logits (softmax in the loss)",
}


def layer_table(model: ModelSettings, n_samples: int, sample_rate: int | None = None) -> list[LayerRow]:
    """The layers of Net(model) on an input of `n_samples` samples (a clip, `cfg.window_samples`,
    or a segment), traced with forward hooks on the meta device (no memory). Rows come in the order
    the modules run; depth-1 rows are the parts of the first layer (its convs and STFT). A mel input
    needs `sample_rate` (cfg.store.sample_rate).
    """
    with torch.device("meta"):
        net = Net(model, sample_rate=sample_rate).eval()
    dense = [f"dense.{i}" for i in range(len(model.dense))]
    parts = {"conv1.raw", "conv1.stft", "conv1.spec"}  # depth 1: the first layer's (Fig. 2)
    dropped = {"conv1", "conv2", "conv3", *dense}  # dropout after
    traced = {*dropped, *parts, "pool", "out"}
    rows: list[LayerRow] = []

    def hook(name: str):
        def fn(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            if hasattr(module, "describe"):
                d = module.describe()
            elif isinstance(module, nn.Linear):
                d = layer_info("linear", module.out_features)
            else:  # Conv1d / SpectrogramConv (an nn.Conv2d) inside the first layer
                kind = "conv2d" if isinstance(module, nn.Conv2d) else "conv1d"
                d = layer_info(kind, module.out_channels, module.kernel_size, module.stride, module.padding)
            note = _NOTES.get(name, "BN, ELU" if name.startswith("dense.") else "")
            if model.dropout and name in dropped:
                note += f", dropout {model.dropout:g}"
            rows.append(
                LayerRow(
                    name=name,
                    depth=int(name in parts),
                    in_shape=tuple(args[0].shape[1:]),
                    out_shape=tuple(out.shape[1:]),
                    params=sum(p.numel() for p in module.parameters()),
                    note=note,
                    **d,
                )
            )

        return fn

    for name, module in net.named_modules():
        if name in traced:
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        net(torch.zeros(1, n_samples, device="meta"))
    # Hooks fire when a module finishes: put the first layer before its parts.
    inner, top = [r for r in rows if r.depth == 1], [r for r in rows if r.depth == 0]
    return [top[0], *inner, *top[1:]]


def format_table(cfg, n_samples: int) -> str:
    """The layer table of Net(cfg.model) on an input of `n_samples` samples, as text."""
    rows = layer_table(cfg.model, n_samples, cfg.store.sample_rate)
    lines = [f"  {'layer':<14}{'kind':<8}{'output shape':<18}{'kernel':<12}{'stride':<9}{'params':>10}"]
    for r in rows:
        name = ("  " * r.depth) + r.name
        kernel = "x".join(map(str, r.kernel)) if r.kernel else ""
        stride = "x".join(map(str, r.stride)) if r.stride else ""
        lines.append(f"  {name:<14}{r.kind:<8}{str(r.out_shape):<18}{kernel:<12}{stride:<9}{r.params:>10,}")
    total = sum(r.params for r in rows if r.depth == 0)
    lines.append(f"  {'total':<61}{total:>10,}")
    return "\n".join(lines)


def summary_text(base: Config) -> str:
    """Every input kind's layer table, for a whole clip and for a segment, as text."""
    sr = base.store.sample_rate
    out = [
        f"profile {base.profile}: {sr} Hz, n_fft {base.model.n_fft}, hop {base.model.hop}, {base.model.channels} maps, "
        f"dense {base.model.dense}, dropout {base.model.dropout}, spectrogram {base.model.spectrogram_scale}"
        + (f" ({base.model.n_mels} bands)" if base.model.spectrogram_scale == "mel" else "")
    ]
    windows = [("whole clip", base.store.clip_samples, False), ("segment", base.model.segment_samples, True)]
    for kind in INPUTS:
        cfg = base.replace(input=kind)
        for label, n, segmented in windows:
            extra = f", {cfg.n_segments} per clip (hop {cfg.model.segment_hop})" if segmented else ""
            out.append(
                f"\ninput {kind}, {label}: {n:,} samples ({n / sr:.2f} s){extra}, T = N // hop - 2 = {cfg.model.steps(n)}"
            )
            out.append(format_table(cfg, n))
    return "\n".join(out)


# --- what a training run costs -----------------------------------------------------------


def training_flops(cfg: Config, clips: int) -> int:
    """FLOPs of one training step on `clips` clips (clips x n_segments windows when segmented):
    forward, cross-entropy and backward, counted by torch.utils.flop_counter.FlopCounterMode on
    the meta device (no memory, no time). It counts convolutions and matrix products, 2 FLOPs
    per multiply-add; not the STFT, batch norm, activations, pooling or Adam's update."""
    s = cfg.windows_per_clip
    with torch.device("meta"):
        net = Net.of(cfg)
        x = torch.zeros(clips * s, cfg.window_samples)  # (B * S, W)
        y = torch.zeros(clips * s, dtype=torch.long)  # (B * S,)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), y).backward()
    return int(counter.get_total_flops())


def _proc_status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024  # kB
    raise KeyError(key)


def _release_free_memory() -> None:
    """Hand memory that is free but still mapped back to the OS, so it does not hide a new peak."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


def step_peak_memory(cfg: Config, clips: int) -> tuple[int, float] | None:
    """Memory and time of one real fp32 training step on this CPU at `clips` clips per step ->
    (bytes, seconds): how far the peak resident memory (VmHWM, reset through /proc/self/clear_refs)
    rose above what the process held before the step: the batch, its STFT, the activations kept for
    backward, gradients, Adam's moments, kernel scratch. None where clear_refs is not writable."""
    torch.manual_seed(0)
    net = Net.of(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    s = cfg.windows_per_clip
    clips16 = torch.randint(-3000, 3000, (clips, cfg.store.clip_samples), dtype=torch.int16)  # (B, N), the store's rows
    y = torch.randint(0, len(GENRES), (clips * s,))
    _release_free_memory()
    try:
        before = _proc_status_bytes("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    except OSError:
        return None
    t0 = time.perf_counter()
    x = windows(clips16.float().div_(INT16_SCALE), cfg)  # (B * S, W)
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    seconds = time.perf_counter() - t0
    peak = _proc_status_bytes("VmHWM") - before
    del x, loss, opt, net
    _release_free_memory()
    return peak, seconds


def cost_text(base: Config, tracks: int = FMA_SMALL_SPLITS["training"], memory: bool = True) -> str:
    """Per input and window: FLOPs of one training step and epoch, and (memory=True) the peak
    memory and time of one real training step on this CPU, at the profile's batch."""
    steps = math.ceil(tracks / base.train.batch_size)
    out = [
        f"\ncost of one training epoch on {tracks:,} training tracks (FMA-small's training split): "
        f"{steps} steps of {base.train.batch_size} clips",
        "  FLOPs: torch.utils.flop_counter.FlopCounterMode over one forward + backward of one batch on the "
        f"meta device, x {tracks:,} / {base.train.batch_size} batches; it counts convolutions and matrix products "
        "(2 per multiply-add), not the STFT, batch norm, activations, pooling or Adam's update",
    ]
    if memory:
        out.append(
            "  memory: one real fp32 training step at this batch on this CPU (random audio): how far the "
            "process's resident memory (Linux VmHWM) rose above what it held before the step: the float32 "
            "batch, STFT, activations kept for backward, gradients, Adam's state and kernel scratch (not "
            f"the weights or the int16 clips); torch threads {torch.get_num_threads()}. Under bf16 autocast "
            "on a GPU the convolutions' activations take half, and cuDNN adds its workspace"
        )
    head = f"  {'input':<13}{'window':<12}{'windows/step':>13}{'GFLOP/step':>12}{'TFLOP/epoch':>13}"
    out.append(head + (f"{'peak memory':>13}{'CPU s/step':>12}" if memory else ""))
    for kind in INPUTS:
        for label, segmented in (("whole clip", False), ("segments", True)):
            cfg = base.replace(input=kind, segmented=segmented)
            s = cfg.windows_per_clip
            flops = training_flops(cfg, cfg.train.batch_size)
            line = f"  {kind:<13}{label:<12}{cfg.train.batch_size * s:>13}{flops / 1e9:>12.1f}"
            line += f"{flops * tracks / cfg.train.batch_size / 1e12:>13.2f}"
            if memory:
                measured = step_peak_memory(cfg, cfg.train.batch_size)
                line += f"{measured[0] / 1e9:>10.2f} GB{measured[1]:>12.2f}" if measured else f"{'n/a':>13}"
            out.append(line)
    return "\n".join(out)

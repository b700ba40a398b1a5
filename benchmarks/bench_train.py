"""Training throughput of our data path against a naive one, and the FLOP rate it reaches,
for the three inputs in one run.

    python benchmarks/bench_train.py                       # paper shapes, all three inputs, CPU or GPU
    python benchmarks/bench_train.py --input raw --steps 10
    python benchmarks/bench_train.py --clips 50            # the paper's real step (700 segments)
    python benchmarks/bench_train.py --profile demo --clips 50 --threads 1 --first-layer   # a demo cell's step

The naive and our path train the same network (fmareport.model.Net, the profile's shapes) on the same
synthetic int16 clip store (random noise, a memmap on disk, as the real store) with the
same number of segments per step; only the way a batch is made differs:

* ours: what fmareport.train runs, under the run's device policy (fmareport.device): on a
  GPU the store resident in device memory, indexed there, bf16 autocast when the profile
  says amp; on a CPU one sorted fancy index into the memmap; int16 -> float32 on the
  device, segments as `unfold` views, the STFT batched on the device inside the model;
* naive: a per-item torch Dataset (an item is one segment: slice, convert to float, STFT
  on the CPU), a DataLoader that collates the items, then a copy to the device; the
  model's first layer takes the items' spectrograms (Net's own 2D conv and batch norm).
  (No naive path for the 1D+2D input, whose items would be both.)

Before and after, in the same run: where the step takes the matmul form (fmareport.model:
on the CPU, every convolution one im2col matmul on channels-last activations), a third path,
"convs", trains the same network from the same batches with PyTorch's convolution kernels
(model.MATMUL_DEVICES emptied while it runs: the form the model had before), and the table
gives convs/ours, the step's speed-up. `--first-layer` also times the 2D first layer alone
(forward + weight gradient) in its three equal forms, Conv2d(1, C, (F, 4)), Conv1d(F, C, 4)
and the matmul form, at the profile's shapes: segments at this batch, 50 segments, 50 whole
clips. The paths and forms alternate round by round and each one's best round counts, so
load from other processes slows all alike; the ratios are the numbers to read.

It also counts the FLOPs of one training step (forward + backward, with
torch.utils.flop_counter: convolutions and matmuls; the STFT is not counted) and divides
the achieved rate by this machine's matmul rate, measured in the same run: fp32 with the
TF32 setting the convolutions run with (on CUDA, cuDNN's fp32 convolutions use TF32 by
default while matmuls do not: the peak is measured as the convolutions run), and bf16 when
the step runs under bf16 autocast.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import tiny  # benchmarks/tiny.py: the --tiny option
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from fmareport import model
from fmareport.config import load_profile
from fmareport.device import DevicePolicy, device_policy
from fmareport.inputs import INPUTS
from fmareport.model import Net, Spectrogram, SpectrogramConv
from fmareport.train import INT16_SCALE, clip_source, load_clips, seed_everything, windows


class SegmentDataset(Dataset):
    """The naive path: one item is one segment, converted and transformed on its own."""

    def __init__(self, audio: np.ndarray, labels: np.ndarray, cfg, spectrogram: bool):
        self.audio, self.labels, self.cfg = audio, labels, cfg
        self.s = cfg.windows_per_clip
        self.stft = Spectrogram(cfg.model.n_fft, cfg.model.hop) if spectrogram else None

    def __len__(self) -> int:
        return len(self.audio) * self.s

    def __getitem__(self, i: int):
        clip, seg = divmod(i, self.s)
        start = seg * self.cfg.model.segment_hop
        x = torch.from_numpy(np.array(self.audio[clip, start : start + self.cfg.window_samples]))
        x = x.float() / INT16_SCALE  # (W,)
        if self.stft is not None:
            x = self.stft(x[None])[0]  # (F, frames), on the CPU, one item at a time
        return x, int(self.labels[clip])


class SpectrogramFirstLayer(nn.Module):
    """The naive model's first layer: Net's 2D conv and batch norm, fed spectrogram items."""

    def __init__(self, first: nn.Module):
        super().__init__()
        self.spec, self.bn = first.spec, first.bn

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.bn(self.spec(s[:, None]).squeeze(2))  # (B, F, frames) -> (B, C, T)


@contextlib.contextmanager
def conv_kernels(on: bool = True):
    """With on: the model runs PyTorch's convolution kernels on every device (the form before the
    matmul form), by emptying model.MATMUL_DEVICES for the block."""
    old = model.MATMUL_DEVICES
    model.MATMUL_DEVICES = () if on else old
    try:
        yield
    finally:
        model.MATMUL_DEVICES = old


TINY = {"profile": "smoke", "clips": 1, "steps": 1, "rounds": 1, "matmul": 64, "threads": 1}  # --tiny's settings


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, reps: int = 5) -> float:
    """Best FLOP/s of an (n x n) @ (n x n) matmul in `dtype` (2 n^3 FLOPs each)."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def step(model, opt, x, y, policy: DevicePolicy) -> None:
    with policy.autocast():
        logits = model(x)  # (B * S, K) float32
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(batches, model, opt, policy: DevicePolicy, steps: int) -> float:
    """Seconds for `steps` training steps; `batches` yields (x, y) on the device."""
    sync(policy.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(model, opt, *next(batches), policy)
    sync(policy.device)
    return time.perf_counter() - t0


def conv_tf32() -> bool:
    """Whether cuDNN runs fp32 convolutions in TF32 (PyTorch's default: yes)."""
    return torch.backends.cudnn.conv.fp32_precision == "tf32"


def fp32_matmul_rate(device: torch.device, n: int) -> float:
    """The fp32 matmul rate with the convolutions' TF32 setting (on CUDA), restored afterwards."""
    if device.type != "cuda":
        return matmul_rate(device, torch.float32, n)
    old = torch.backends.cuda.matmul.fp32_precision
    torch.backends.cuda.matmul.fp32_precision = "tf32" if conv_tf32() else "ieee"
    try:
        return matmul_rate(device, torch.float32, n)
    finally:
        torch.backends.cuda.matmul.fp32_precision = old


def bench_config(kind: str, args):
    """The profile's config for one input, on the device and with the autocast asked for."""
    overrides = {"input": kind, "segmented": not args.whole, "cpu_fallback": True}
    if args.device:
        overrides["device"] = args.device
    cfg = load_profile(args.profile, overrides=overrides)
    if args.amp != "config":
        return cfg.replace(amp=args.amp == "on")
    if cfg.compute.device != "cuda":
        return cfg.replace(amp=cfg.compute.amp and torch.cuda.is_available())  # CPU: fp32 unless --amp on
    return cfg


def bench_paths(cfg, args, policy, audio: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict:
    """{path: (endless batches, its own Net)}: ours; ours on the conv kernels (where the matmul form
    is ours); the naive DataLoader path for an input of one branch."""
    device, n_clips = policy.device, len(audio)
    s = cfg.windows_per_clip
    source = clip_source(audio, policy, progress=False)  # resident on a GPU, as in training
    labels_dev = policy.to_device(torch.from_numpy(labels))

    def ours():
        while True:
            order = rng.permutation(n_clips)
            for a in range(0, n_clips, args.clips):
                rows = np.sort(order[a : a + args.clips])
                idx = policy.to_device(torch.from_numpy(rows))
                x = windows(load_clips(source, rows, policy, idx), cfg)  # (B * S, W)
                yield x, labels_dev[idx].repeat_interleave(s)

    paths = {"ours": (ours(), Net.of(cfg).to(device))}
    if device.type in model.MATMUL_DEVICES:  # before: the same net and batches on the conv kernels
        paths["convs"] = (ours(), Net.of(cfg).to(device))
    if len(branches := INPUTS[cfg.model.input].branches) == 1:  # one branch: a naive path exists
        spec = branches == ("spectrogram",)
        dataset = SegmentDataset(audio, labels, cfg, spectrogram=spec)
        loader = DataLoader(dataset, batch_size=args.clips * s, shuffle=True, drop_last=True)

        def naive():
            while True:
                for xb, yb in loader:
                    yield xb.to(device), yb.to(device)

        net = Net.of(cfg).to(device)
        if spec:
            net.conv1 = SpectrogramFirstLayer(net.conv1)  # items are spectrograms already
        paths["naive"] = (naive(), net)
    return paths


def bench_input(kind: str, args, audio: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict:
    """Time ours and (raw, spectrogram) the naive path for one input; -> the numbers of one table row."""
    cfg = bench_config(kind, args)
    policy = device_policy(cfg, audio.nbytes)
    seed_everything(0)
    per_step = args.clips * cfg.windows_per_clip
    paths = bench_paths(cfg, args, policy, audio, labels, rng)
    opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.train.lr) for k, (_, m) in paths.items()}

    x, y = next(paths["ours"][0])
    with FlopCounterMode(display=False) as counter:  # also the warm-up step of ours
        step(paths["ours"][1], opts["ours"], x, y, policy)
    flops = counter.get_total_flops()
    for k, (batches, net) in paths.items():
        if k != "ours":
            with conv_kernels(k == "convs"):
                timed(batches, net, opts[k], policy, 1)  # warm-up
    # Alternate the paths and keep each one's best round: load from other processes then
    # slows all alike instead of whichever happened to run at the time.
    best = {k: float("inf") for k in paths}
    for _ in range(args.rounds):
        for k, (batches, net) in paths.items():
            with conv_kernels(k == "convs"):
                best[k] = min(best[k], timed(batches, net, opts[k], policy, args.steps))
    return {
        "input": kind,
        "policy": policy.describe(),
        "per_step": per_step,
        "ours": per_step * args.steps / best["ours"],
        "ms": best["ours"] / args.steps * 1e3,
        "naive": per_step * args.steps / best["naive"] if "naive" in best else None,
        "convs_ms": best["convs"] / args.steps * 1e3 if "convs" in best else None,
        "gflop": flops / 1e9,
        "achieved": flops * args.steps / best["ours"],
        "amp": policy.amp,
        "device": policy.device,
    }


def first_layer_forms(cfg, batches: dict[str, int], rounds: int) -> list[dict]:
    """Forward + weight gradient of the 2D first layer in its three equal forms, per shape:
    Conv2d(1, C, (F, 4)) (the paper's, PyTorch's kernel), Conv1d(F, C, 4) (the weight viewed as
    (C, F, 4)) and the matmul form (model.SpectrogramConv on the CPU). The input is the model's
    own |STFT| of noise (frames-major, as in training) and needs no gradient, as in training.
    -> one row per shape: {shape, windows, frames, ms per form}."""
    torch.manual_seed(0)
    layer = SpectrogramConv(1, cfg.model.channels, (cfg.model.n_bins, model.SPEC_FRAMES), bias=False)
    w1d = layer.weight.view(cfg.model.channels, cfg.model.n_bins, model.SPEC_FRAMES)
    forms = {
        "conv2d": lambda s: torch.nn.functional.conv2d(s[:, None], layer.weight),
        "conv1d": lambda s: torch.nn.functional.conv1d(s, w1d),
        "matmul": lambda s: layer(s[:, None]),
    }
    rows = []
    for shape, (n, samples) in batches.items():
        s = Spectrogram(cfg.model.n_fft, cfg.model.hop)(torch.randn(n, samples) * 0.1)  # (B, F, frames)
        best = {k: float("inf") for k in forms}
        for r in range(rounds + 1):  # round 0 warms up
            for k, f in forms.items():
                t0 = time.perf_counter()
                y = f(s)
                y.backward(torch.ones_like(y))
                layer.weight.grad = None
                if r:
                    best[k] = min(best[k], time.perf_counter() - t0)
        rows.append({"shape": shape, "windows": n, "frames": s.shape[-1], **{k: v * 1e3 for k, v in best.items()}})
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper")
    p.add_argument("--input", default="all", choices=["all", *INPUTS])
    p.add_argument("--whole", action="store_true", help="whole clips instead of segments")
    p.add_argument(
        "--clips",
        type=int,
        default=4,
        help="clips per step (segmented: x n_segments; 4 x 14 = 56 segments, near the paper's 50)",
    )
    p.add_argument("--steps", type=int, default=4, help="timed steps per path and round (after one warm-up)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; each path's best counts")
    p.add_argument("--matmul", type=int, default=0, help="matmul size for the peak (0: 2048 on CPU, 8192 on GPU)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: the policy's (auto)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default; a demo cell runs 1)")
    p.add_argument("--first-layer", action="store_true", help="also time the 2D first layer's three forms (CPU)")
    p.add_argument(
        "--amp",
        choices=["config", "on", "off"],
        default="config",
        help="bf16 autocast: the profile's on a GPU and fp32 on a CPU (config), or forced",
    )
    args = tiny.parse_args(p, argv, TINY)
    if args.threads:
        torch.set_num_threads(args.threads)

    inputs = INPUTS if args.input == "all" else (args.input,)
    base = load_profile(args.profile)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        n_clips = args.clips * 8
        audio = np.lib.format.open_memmap(
            Path(tmp) / "audio.npy", mode="w+", dtype=np.int16, shape=(n_clips, base.store.clip_samples)
        )
        for i in range(n_clips):
            audio[i] = rng.normal(0, 3000, base.store.clip_samples).clip(-32768, 32767).astype(np.int16)
        audio.flush()
        audio = np.load(Path(tmp) / "audio.npy", mmap_mode="r")  # read-only, as the real store
        labels = rng.integers(0, 8, n_clips)
        for kind in inputs:
            rows.append(bench_input(kind, args, audio, labels, rng))
            print(f"{kind}: {rows[-1]['policy']}", flush=True)
    device = rows[0]["device"]
    n = args.matmul or (8192 if device.type == "cuda" else 2048)
    peak32 = max(fp32_matmul_rate(device, n) for _ in range(args.rounds))
    amp = any(r["amp"] for r in rows)
    peak16 = matmul_rate(device, torch.bfloat16, n) if amp else None
    tf32 = f", TF32 {'on' if conv_tf32() else 'off'} as the convolutions" if device.type == "cuda" else ""

    window = "whole clips" if args.whole else "segments"
    print(
        f"\nprofile {args.profile}, {window}, {rows[0]['per_step']} per step ({args.clips} clips), torch threads "
        f"{torch.get_num_threads()}; best of {args.rounds} rounds of {args.steps} steps"
    )
    print(f"fp32 matmul ({n}x{n}{tf32}): {peak32 / 1e9:.1f} GFLOP/s" + (f"; bf16: {peak16 / 1e9:.1f}" if amp else ""))
    print(f"{'input':<13}{window + '/s':>12}{'ms/step':>9}{'convs ms':>9}{'convs/ours':>11}", end="")
    print(f"{'naive/s':>9}{'ours/naive':>11}{'GFLOP/step':>11}", end="")
    print(f"{'GFLOP/s':>9}{'of fp32 peak':>13}" + (f"{'of bf16 peak':>13}" if amp else ""))
    for r in rows:
        convs = f"{r['convs_ms']:>9.0f}{r['convs_ms'] / r['ms']:>10.2f}x" if r["convs_ms"] else f"{'n/a':>9}{'':>11}"
        naive = f"{r['naive']:>9.1f}{r['ours'] / r['naive']:>10.2f}x" if r["naive"] else f"{'n/a':>9}{'':>11}"
        line = f"{r['input']:<13}{r['ours']:>12.1f}{r['ms']:>9.0f}{convs}{naive}{r['gflop']:>11.1f}"
        line += f"{r['achieved'] / 1e9:>9.1f}{r['achieved'] / peak32:>13.1%}"
        if amp:
            line += f"{r['achieved'] / peak16:>13.1%}"
        print(line)
    if args.first_layer:
        seg, whole = base.model.segment_samples, base.store.clip_samples
        shapes = {
            f"{args.clips} clips' segments": (args.clips * base.n_segments, seg),
            "50 segments": (50, seg),
            "50 whole clips": (50, whole),
        }
        print(
            f"\n2D first layer, {base.model.channels} maps over {base.model.n_bins} bins x 4 frames: forward + weight gradient, "
            f"ms (best of {args.rounds}); the ratios are each form's time over the matmul form's"
        )
        print(f"{'shape':<24}{'windows':>8}{'frames':>7}{'conv2d':>8}{'conv1d':>8}{'matmul':>8}", end="")
        print(f"{'conv2d/mm':>10}{'conv1d/mm':>10}")
        for r in first_layer_forms(base, shapes, args.rounds):
            print(f"{r['shape']:<24}{r['windows']:>8}{r['frames']:>7}{r['conv2d']:>8.0f}{r['conv1d']:>8.0f}", end="")
            print(f"{r['matmul']:>8.0f}{r['conv2d'] / r['matmul']:>9.2f}x{r['conv1d'] / r['matmul']:>9.2f}x")


if __name__ == "__main__":
    main()

"""Training throughput of our data path against a naive one, and the FLOP rate it reaches.

    python benchmarks/bench_train.py                       # paper shapes, 2D input, CPU or GPU
    python benchmarks/bench_train.py --input raw --steps 10
    python benchmarks/bench_train.py --clips 50            # the paper's real step (700 segments)

Both paths train the same network (fmareport.model.Net, the profile's shapes) on the same
synthetic int16 clip store (random noise, a memmap on disk, as the real store) with the
same number of segments per step; only the way a batch is made differs:

* ours (fmareport.train): one sorted fancy index into the store, int16 -> float32 on the
  device, segments as `unfold` views, the STFT batched on the device inside the model;
* naive: a per-item torch Dataset (an item is one segment: slice, convert to float, STFT
  on the CPU), a DataLoader that collates the items, then a copy to the device; the
  model's first layer takes the items' spectrograms (Net's own 2D conv and batch norm).

It also counts the FLOPs of one training step (forward + backward, with
torch.utils.flop_counter: convolutions and matmuls; the STFT is not counted) and divides
the achieved rate by this machine's fp32 matmul rate, measured in the same run (and the
bf16 rate when the step runs under bf16 autocast on CUDA).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from fmareport.config import load_profile
from fmareport.model import Net, Spectrogram
from fmareport.train import INT16_SCALE, load_clips, pick_device, seed_everything, windows


class SegmentDataset(Dataset):
    """The naive path: one item is one segment, converted and transformed on its own."""

    def __init__(self, audio: np.ndarray, labels: np.ndarray, cfg, spectrogram: bool):
        self.audio, self.labels, self.cfg = audio, labels, cfg
        self.s = cfg.n_segments if cfg.segmented else 1
        self.stft = Spectrogram(cfg.n_fft, cfg.hop) if spectrogram else None

    def __len__(self) -> int:
        return len(self.audio) * self.s

    def __getitem__(self, i: int):
        clip, seg = divmod(i, self.s)
        start = seg * self.cfg.segment_hop
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


def step(model, opt, x, y, device, amp) -> None:
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(x)  # (B * S, K)
    loss = F.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(batches, model, opt, device, amp, steps: int) -> float:
    """Seconds for `steps` training steps; `batches` yields (x, y) on the device."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(model, opt, *next(batches), device, amp)
    sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="paper")
    p.add_argument("--input", default="spectrogram", choices=["raw", "spectrogram", "both"])
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
    args = p.parse_args()

    cfg = load_profile(args.profile, overrides={"input": args.input, "segmented": not args.whole})
    device = pick_device(cfg)
    amp = cfg.amp and device.type == "cuda"
    seed_everything(0)
    s = cfg.n_segments if cfg.segmented else 1
    per_step = args.clips * s
    n_clips = args.clips * 8
    print(
        f"profile {cfg.profile}, input {cfg.input}, {'segments' if cfg.segmented else 'whole clips'} of "
        f"{cfg.window_samples} samples, {per_step} per step ({args.clips} clips), device {device}, "
        f"bf16 autocast {amp}, torch threads {torch.get_num_threads()}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        audio = np.lib.format.open_memmap(
            Path(tmp) / "audio.npy", mode="w+", dtype=np.int16, shape=(n_clips, cfg.clip_samples)
        )
        rng = np.random.default_rng(0)
        for i in range(n_clips):
            audio[i] = rng.normal(0, 3000, cfg.clip_samples).clip(-32768, 32767).astype(np.int16)
        labels = rng.integers(0, 8, n_clips)
        labels_dev = torch.from_numpy(labels).to(device)

        def ours():
            while True:
                order = rng.permutation(n_clips)
                for a in range(0, n_clips, args.clips):
                    rows = np.sort(order[a : a + args.clips])
                    x = windows(load_clips(audio, rows, device), cfg)  # (B * S, W)
                    yield x, labels_dev[torch.from_numpy(rows).to(device)].repeat_interleave(s)

        paths = {"ours": (ours(), Net(cfg).to(device))}
        if cfg.input != "both":  # the 1D+2D input would need the waveform and the spectrogram per item
            spec = cfg.input == "spectrogram"
            loader = DataLoader(
                SegmentDataset(audio, labels, cfg, spectrogram=spec), batch_size=per_step, shuffle=True, drop_last=True
            )

            def naive():
                while True:
                    for xb, yb in loader:
                        yield xb.to(device), yb.to(device)

            net = Net(cfg).to(device)
            if spec:
                net.conv1 = SpectrogramFirstLayer(net.conv1)  # items are spectrograms already
            paths["naive"] = (naive(), net)
        opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.lr) for k, (_, m) in paths.items()}

        x, y = next(paths["ours"][0])
        with FlopCounterMode(display=False) as counter:  # also the warm-up step of ours
            step(paths["ours"][1], opts["ours"], x, y, device, amp)
        flops = counter.get_total_flops()
        for k, (batches, model) in paths.items():
            if k != "ours":
                timed(batches, model, opts[k], device, amp, 1)  # warm-up
        # Alternate the paths (and the matmul) and keep each one's best round: load from other
        # processes then slows all alike instead of whichever happened to run at the time.
        n = args.matmul or (8192 if device.type == "cuda" else 2048)
        best = {k: float("inf") for k in paths}
        peak32 = 0.0
        for _ in range(args.rounds):
            for k, (batches, model) in paths.items():
                best[k] = min(best[k], timed(batches, model, opts[k], device, amp, args.steps))
            peak32 = max(peak32, matmul_rate(device, torch.float32, n))

    t_ours, t_naive = best["ours"], best.get("naive")
    rate_ours = per_step * args.steps / t_ours
    achieved = flops * args.steps / t_ours
    print(f"\nours : {rate_ours:8.1f} segments/s  ({t_ours / args.steps * 1e3:.0f} ms/step)")
    if t_naive is not None:
        rate_naive = per_step * args.steps / t_naive
        print(f"naive: {rate_naive:8.1f} segments/s  ({t_naive / args.steps * 1e3:.0f} ms/step)")
        print(f"ours / naive = {rate_ours / rate_naive:.2f}x")
    else:
        print("naive: n/a for the 1D+2D input")
    print(f"\nFLOPs per training step (fwd + bwd): {flops / 1e9:.1f} GFLOP ({flops / per_step / 1e9:.2f} per segment)")
    print(f"achieved: {achieved / 1e9:.1f} GFLOP/s")
    print(f"fp32 matmul ({n}x{n}): {peak32 / 1e9:.1f} GFLOP/s -> achieved / fp32 matmul = {achieved / peak32:.1%}")
    if amp:
        peak16 = matmul_rate(device, torch.bfloat16, n)
        print(f"bf16 matmul ({n}x{n}): {peak16 / 1e9:.1f} GFLOP/s -> achieved / bf16 matmul = {achieved / peak16:.1%}")


if __name__ == "__main__":
    main()

"""What FMA's 7 statistics of the MFCCs cost against the first baseline's mean and std: one run, both timed.

    python benchmarks/bench_baseline.py                      # the demo store's size, int16 noise
    python benchmarks/bench_baseline.py --store STORE_DIR    # a prepared clip store instead

Both paths are `fmareport.baseline.mfcc_features` over the same clips, chunked as the baseline
runs them (CHUNK clips a librosa call): `moments_only=True` gives the first baseline's 40 numbers
(mean and std of 20 MFCCs), the default FMA's 140 (`frame_statistics`: kurtosis, max, mean, median,
min, skew, std). They alternate (40, 140, 40, 140, ...) so a change in the machine's load touches
both; each line gives wall and CPU seconds, and the ratio 140 / 40 of the medians. The statistics
alone are timed on the MFCCs of one chunk too, apart from the MFCCs they summarise.

The demo store's size: 1280 clips of 2**16 samples at 16 kHz (params/profiles/demo.yaml). The
MFCCs' cost does not depend on what the samples are, so noise stands in for music by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from types import SimpleNamespace

import numpy as np
import tiny  # benchmarks/tiny.py: the --tiny option

from fmareport.baseline import CHUNK, clip_mfccs, frame_statistics, mfcc_features

DEMO = {"clips": 1280, "samples": 2**16, "sample_rate": 16000}  # params/profiles/demo.yaml: 160 x 8 tracks


TINY = {"repeats": 1, "clips": 64, "samples": 8192}  # --tiny's settings


def timed(fn) -> tuple[float, float]:
    """(wall s, CPU s) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", help="a prepared clip store's folder (default: int16 noise of the demo store's size)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each path, alternating (default 3)")
    p.set_defaults(clips=DEMO["clips"], samples=DEMO["samples"])  # the noise store's size (--tiny: smaller)
    args = tiny.parse_args(p, argv, TINY)
    if args.store:
        from fmareport.data.store import open_store

        store = open_store(args.store)
    else:
        rng = np.random.default_rng(0)
        audio = rng.integers(-8000, 8000, (args.clips, args.samples), dtype=np.int16)  # (1280, 65536)
        store = SimpleNamespace(audio=audio, sample_rate=DEMO["sample_rate"])
    n, samples = store.audio.shape
    print(f"{n} clips of {samples} samples at {store.sample_rate} Hz, chunks of {CHUNK}; {os.cpu_count()} cores")

    runs = {"40 (mean, std)": [], "140 (FMA's 7)": []}
    for _ in range(args.repeats):
        for name, moments_only in zip(runs, (True, False)):
            runs[name].append(timed(lambda m=moments_only: mfcc_features(store, progress=False, moments_only=m)))
    print(f"{'features':16s} {'CPU s (median)':>15s}   wall s (each run)")
    for name, times in runs.items():
        walls = ", ".join(f"{w:.2f}" for w, _ in times)
        print(f"{name:16s} {statistics.median(c for _, c in times):15.2f}   {walls}")
    wall = [statistics.median(w for w, _ in t) for t in runs.values()]
    cpu = [statistics.median(c for _, c in t) for t in runs.values()]
    print(f"ratio 140 / 40: wall {wall[1] / wall[0]:.3f}, CPU {cpu[1] / cpu[0]:.3f}")

    m = clip_mfccs(store.audio[:CHUNK], store.sample_rate)  # (CHUNK, 20, frames)
    rounds = 20
    stats40 = timed(lambda: [np.concatenate([m.mean(-1), m.std(-1)], 1) for _ in range(rounds)])
    stats140 = timed(lambda: [frame_statistics(m) for _ in range(rounds)])
    mfcc = timed(lambda: clip_mfccs(store.audio[:CHUNK], store.sample_rate))
    print(
        f"one chunk {m.shape}: the MFCCs {mfcc[0] * 1e3:.1f} ms; their statistics {stats40[0] / rounds * 1e3:.2f} ms "
        f"(40) and {stats140[0] / rounds * 1e3:.2f} ms (140)"
    )


if __name__ == "__main__":
    main()

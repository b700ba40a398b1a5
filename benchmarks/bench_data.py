"""Data path throughput: prepare against naive decoding, and an epoch from the store against per-item decoding.

    python benchmarks/bench_data.py                          # 20 tracks/genre x 30 s at 44.1 kHz, 10**6-sample clips
    python benchmarks/bench_data.py --tracks-per-genre 5 --seconds 10 --clip-samples 262144
    python benchmarks/bench_data.py --data /tmp/bench-set       # keep the set: later runs skip the synthesis

On one synthetic FMA-format set (made first, in a temporary folder) it times, in one run:

* decoding every track: `fmareport.store.prepare` (all cores: decode, mono, resample,
  crop, int16, written to the store) against a naive single-process loop of
  `librosa.load(path, sr=44100)` and against bare `soundfile.read` of the same files;
* one epoch of batches (50 clips, random order) as float32: a sorted fancy index into the
  store's memmap against decoding each item's mp3 again (mono, crop), as a per-item
  Dataset would. The store was just written, so its pages are in the OS cache.

librosa's first call compiles numba code (~18 s in a fresh environment); it is made once
before the timing and reported apart. Besides wall-clock rates, each decode path's CPU
time per track is printed (prepare's includes its worker processes' start-up): unlike
the wall clock, it does not change when other programs share the cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import tiny  # benchmarks/tiny.py: the --tiny option

from fmareport.config import Config
from fmareport.data.fma import audio_path, load_tracks
from fmareport.data.store import INT16_SCALE, prepare
from fmareport.data.synth import synthesize

TINY = {
    "tracks_per_genre": 1,
    "seconds": 2.0,
    "sample_rate": 22050,
    "clip_samples": 16384,
    "batch_size": 4,
    "workers": 1,
}  # --tiny's settings


def timed(fn):
    """(fn(), wall-clock s)."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU time (user + sys, s) of this process and of its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measured(fn):
    """(fn(), wall-clock s, CPU s): the CPU time does not grow when other programs share the cores."""
    cpu = cpu_seconds()
    out, wall = timed(fn)
    return out, wall, cpu_seconds() - cpu


def decode_item(path: Path, clip_samples: int) -> np.ndarray:
    """The naive Dataset's __getitem__: decode, mono, crop or pad: (clip_samples,) float32."""
    x, _ = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)[:clip_samples]
    return np.pad(x, (0, clip_samples - len(x)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracks-per-genre", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0, help="track length in s (FMA: 30)")
    p.add_argument("--sample-rate", type=int, default=44100, help="Hz of the mp3s and of the store")
    p.add_argument("--clip-samples", type=int, default=10**6, help="samples per clip (the paper's 10**6)")
    p.add_argument("--workers", type=int, default=0, help="prepare's processes (0: one per core)")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument(
        "--data", type=Path, help="keep the synthetic set here and reuse it in later runs (default: a temporary folder)"
    )
    args = tiny.parse_args(p, argv, TINY)

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "synth"
        # The config carries the synth settings: prepare checks a synthetic set against them (a
        # --data set made with other settings is refused, naming them).
        cfg = Config(
            profile="bench",
            data_source="synth",
            data_dir=str(data),
            store_root=f"{tmp}/stores",
            synth_tracks_per_genre=args.tracks_per_genre,
            synth_seconds=args.seconds,
            synth_sample_rate=args.sample_rate,
            synth_seed=0,
            synth_bad_cases=False,
            sample_rate=args.sample_rate,
            clip_samples=args.clip_samples,
            prepare_workers=args.workers,
        )
        if (data / "fma_metadata" / "tracks.csv").is_file():
            t_synth = None
        else:
            _, t_synth = timed(lambda: synthesize(data, cfg.synth, progress=True, workers=args.workers))
        tracks = load_tracks(data / "fma_metadata" / "tracks.csv")
        paths = [audio_path(data, tid) for tid in tracks.index[tracks["set", "subset"] <= "small"]]
        n, audio_s = len(paths), sum(sf.info(path).duration for path in paths)
        cores = args.workers or os.cpu_count()
        made = f"synthesized in {t_synth:.1f} s" if t_synth else f"reused from {data}"
        print(
            f"\n{n} tracks, {audio_s / n:.1f} s each at {args.sample_rate} Hz, stereo mp3 "
            f"({sum(p.stat().st_size for p in paths) / 2**20:.0f} MiB, {made}); "
            f"{cores} prepare worker(s) on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n"
        )

        import librosa

        _, t_warm = timed(lambda: librosa.load(paths[0], sr=args.sample_rate))
        _, t_librosa, c_librosa = measured(lambda: [librosa.load(path, sr=args.sample_rate) for path in paths])
        _, t_sf, c_sf = measured(lambda: [sf.read(path, dtype="float32") for path in paths])
        store, t_prepare, c_prepare = measured(lambda: prepare(cfg, progress=False))

        print("decode every track                   tracks/s   x realtime   prepare's speed / this   CPU ms/track")
        for name, t, c in (
            ("prepare (all cores, to the store)", t_prepare, c_prepare),
            ("librosa.load(sr=44100) loop, 1 core", t_librosa, c_librosa),
            ("soundfile.read loop, 1 core", t_sf, c_sf),
        ):
            ratio = "" if t is t_prepare else f"{t / t_prepare:.2f}"
            print(f"  {name:35s} {n / t:8.1f}   {audio_s / t:10.0f}   {ratio:>22s}   {1000 * c / n:12.0f}")
        print(f"  (librosa's first call, excluded: {t_warm:.1f} s)\n")

        rng = np.random.default_rng(0)
        order = rng.permutation(len(store))
        batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        ids = store.index.track_id.to_numpy()

        def epoch_store() -> int:
            clips = 0
            for b in batches:
                x = store.audio[np.sort(b)].astype(np.float32) / INT16_SCALE  # (batch, clip_samples)
                clips += len(x)
            return clips

        def epoch_decode() -> int:
            clips = 0
            for b in batches:
                x = np.stack([decode_item(audio_path(data, ids[i]), args.clip_samples) for i in b])
                clips += len(x)
            return clips

        n_store, t_store = timed(epoch_store)
        n_items, t_items = timed(epoch_decode)
        assert n_store == n_items == len(store)
        print(f"one epoch, {len(batches)} batches of {args.batch_size} clips of {args.clip_samples} samples (float32)")
        print(f"  from the store (memmap fancy index)  {t_store:7.3f} s   {len(store) / t_store:8.0f} clips/s")
        print(f"  decoding each item's mp3             {t_items:7.3f} s   {len(store) / t_items:8.0f} clips/s")
        print(f"  the store is {t_items / t_store:.1f}x faster")


if __name__ == "__main__":
    main()

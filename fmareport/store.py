"""The clip store: every track of a subset decoded once into one int16 array on disk.

A store is a folder anyone can open:

    audio.npy      int16 (n_tracks, clip_samples); np.load(path, mmap_mode="r")
    index.csv      track_id, genre, label, split: one row per row of audio.npy
    manifest.json  settings, source fingerprint, counts per genre and split, skipped tracks

It holds the tracks of cfg.subset (small ⊂ medium ⊂ large; audio under fma_<subset>/)
whose genre_top is one of fma.GENRES, in track_id order, less the skipped ones.

Decode rule (DECODE_VERSION 1), per track:
  1. soundfile (libsndfile, mpg123) decodes the mp3 to float32; gapless info (LAME tag)
     is honoured, so a file written by our synth decodes to exactly its samples;
  2. mono: the mean of the channels;
  3. soxr (HQ) resamples the whole track to cfg.sample_rate;
  4. a clip of cfg.clip_samples is cut: clip_rule "start" keeps the first samples,
     "center" the middle ones (start (n - clip) // 2);
  5. a shorter track is zero-padded at its end if it has at least
     ceil(min_clip_fraction * clip_samples) samples, else skipped as "too short";
     a clip whose peak is below SILENCE_PEAK is skipped as "silent";
  6. int16 = clip(round(x * 32768), -32768, 32767); read back as audio / 32768 (INT16_SCALE),
     libsndfile's own int16 <-> float convention; decoded mp3s overshoot 1.0 a little.
A missing file is skipped as "missing", one that fails to decode as "undecodable".

The store's folder is named after a fingerprint of its source and settings (subset,
sample_rate, clip_samples, clip_rule, min_clip_fraction, the decode rule's version and
the decoders' versions). The source fingerprint is the SHA1 of tracks.csv, of
fma_<subset>/checksums when there is one, and of the (track_id, size in bytes) of
every selected audio file: no mtimes and no absolute paths, so it is the same on
every machine for the same data (an mp3 rewritten in place at the same size, with
checksums left alone, goes unnoticed). A rerun with the same fingerprint reuses the
store without decoding; any other setting makes a new one. Decoding runs in
cfg.prepare_workers spawned processes (0: one per core); two prepares of the same
store take turns (a file lock), the second reusing the first's work.

A kill at any moment leaves no store that looks complete: the work goes into
`<name>.partial/` (rows.npy, a preallocated memmap, and journal.jsonl, one line per
track appended after its row is written), the manifest is written last and the folder
renamed. A rerun resumes from the journal and gives a byte-identical store.
Test hook: FMAREPORT_PREPARE_KILL_AFTER=k makes prepare SIGKILL itself after k tracks.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
from .progress import tqdm

from .config import Config, load_profile
from .fma import GENRES, SPLITS, audio_path, load_tracks

log = logging.getLogger(__name__)

DECODE_VERSION = 1                  # bump when the decode rule above changes: old stores are not reused
INT16_SCALE = 32768                 # float = int16 / 32768, in [-1, 1)
SILENCE_PEAK = 10 ** (-60 / 20)     # -60 dBFS: a clip of music always peaks above this
KILL_AFTER_ENV = "FMAREPORT_PREPARE_KILL_AFTER"


class Skip(Exception):
    """A track that cannot be stored; args: (reason, detail)."""


def decode_clip(path: str | Path, sample_rate: int, clip_samples: int, clip_rule: str = "start",
                min_clip_fraction: float = 0.5) -> np.ndarray:
    """Decode one mp3 into a clip by the rule in this module's docstring: (clip_samples,) int16.

    Raises Skip("missing" | "undecodable" | "too short" | "silent", detail).
    """
    path = Path(path)
    if not path.is_file():
        raise Skip("missing", f"no file {path}")
    try:
        x, rate = sf.read(path, dtype="float32", always_2d=True)           # (n, channels)
    except Exception as err:                   # whatever a broken file makes the decoder raise
        raise Skip("undecodable", f"{path.stat().st_size} bytes; {type(err).__name__}: {err}") from None
    x = x.mean(axis=1)
    if rate != sample_rate:
        x = soxr.resample(x, rate, sample_rate, quality="HQ")
    need = math.ceil(min_clip_fraction * clip_samples)
    if len(x) < need:
        raise Skip("too short", f"{len(x) / sample_rate:.3f} s = {len(x)} samples at {sample_rate} Hz "
                                f"< {min_clip_fraction} x clip = {need} samples")
    start = (len(x) - clip_samples) // 2 if clip_rule == "center" and len(x) > clip_samples else 0
    clip = np.zeros(clip_samples, np.float32)
    piece = x[start:start + clip_samples]
    clip[:len(piece)] = piece
    peak = float(np.abs(clip).max())
    if peak < SILENCE_PEAK:
        raise Skip("silent", f"peak {peak:.2e} < {SILENCE_PEAK:.0e} (-60 dBFS)")
    return to_int16(clip)


def to_int16(x: np.ndarray) -> np.ndarray:
    """float samples (full scale 1.0) -> int16, rounded and clipped to the int16 range."""
    return np.clip(np.round(x * INT16_SCALE), -32768, 32767).astype(np.int16)


def _decode_job(job: tuple[int, str, int, int, str, float]) -> tuple[int, np.ndarray | None, str, str]:
    """Worker: (row, path, settings...) -> (row, clip or None, status "ok" or skip reason, detail)."""
    row, path, *settings = job
    try:
        return row, decode_clip(path, *settings), "ok", ""
    except Skip as skip:
        return row, None, *skip.args


@dataclass
class ClipStore:
    """An opened store: `audio` is memory-mapped, `index` describes its rows."""

    path: Path
    manifest: dict
    audio: np.ndarray          # (n_tracks, clip_samples) int16, memmap
    index: pd.DataFrame        # track_id, genre, label, split; row i describes audio[i]

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def sample_rate(self) -> int:
        return self.manifest["sample_rate"]

    @property
    def clip_samples(self) -> int:
        return self.manifest["clip_samples"]

    @property
    def labels(self) -> np.ndarray:
        """(n_tracks,) int64: index into fma.GENRES."""
        return self.index["label"].to_numpy(np.int64)

    def split_indices(self, split: str) -> np.ndarray:
        """Rows of `split` (training | validation | test): (n,) int64, ascending."""
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {SPLITS}")
        return np.flatnonzero(self.index["split"].to_numpy() == split).astype(np.int64)

    def __len__(self) -> int:
        return len(self.index)


def open_store(path: str | Path) -> ClipStore:
    """Open a complete store folder (one with manifest.json); audio is memory-mapped read-only."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{path}: not a complete clip store (no manifest.json); "
                                "run `fmareport prepare` to build or finish it")
    manifest = json.loads(manifest_path.read_text())
    audio = np.load(path / "audio.npy", mmap_mode="r")
    index = pd.read_csv(path / "index.csv", dtype={"track_id": np.int64, "genre": str, "label": np.int64,
                                                    "split": str})
    expected = (manifest["n_tracks"], manifest["clip_samples"])
    if audio.shape != expected or audio.dtype != np.int16 or len(index) != expected[0]:
        raise ValueError(f"{path}: audio.npy is {audio.dtype} {audio.shape} and index.csv has {len(index)} rows, "
                         f"the manifest says int16 {expected}; the store is damaged: delete it and prepare again")
    return ClipStore(path, manifest, audio, index)


def select_tracks(tracks: pd.DataFrame, subset: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The tracks a store holds: those of `subset` (small ⊂ medium ⊂ large) with a genre_top in GENRES.

    Returns (plan, left_out): plan has columns track_id, genre, label, split, sorted by
    track_id; left_out counts the tracks not taken, by why.
    """
    in_subset = tracks["set", "subset"] <= subset
    genre = tracks["track", "genre_top"]
    known = genre.isin(GENRES)
    plan = pd.DataFrame({"track_id": tracks.index[in_subset & known].astype(np.int64),
                         "genre": genre[in_subset & known].astype(str).to_numpy(),
                         "split": tracks["set", "split"][in_subset & known].astype(str).to_numpy()})
    plan["label"] = plan["genre"].map(GENRES.index).astype(np.int64)
    plan = plan[["track_id", "genre", "label", "split"]].sort_values("track_id", ignore_index=True)
    bad_split = ~plan["split"].isin(SPLITS)
    if bad_split.any():
        raise ValueError(f"tracks.csv: ('set', 'split') must be one of {SPLITS}; track "
                         f"{plan.track_id[bad_split].iloc[0]} has {plan.split[bad_split].iloc[0]!r}")
    left_out = {"not_in_subset": int((~in_subset).sum()), "genre_top_not_in_genres": int((in_subset & ~known).sum())}
    return plan, left_out


def source_fingerprint(data_dir: Path, subset: str, track_ids: np.ndarray) -> str:
    """SHA1 of tracks.csv, fma_<subset>/checksums (if any) and each selected file's (track_id, size)."""
    h = hashlib.sha1()
    for path in (data_dir / "fma_metadata" / "tracks.csv", data_dir / f"fma_{subset}" / "checksums"):
        if path.is_file():
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    for tid in track_ids:
        p = audio_path(data_dir, tid, subset)
        h.update(f"{tid}:{p.stat().st_size if p.is_file() else -1};".encode())
    return h.hexdigest()


def decoder_versions() -> dict[str, str]:
    """Versions whose change may change decoded samples (soundfile's wheel bundles libsndfile, mpg123)."""
    return {"soundfile": sf.__version__, "libsndfile": sf.__libsndfile_version__, "soxr": soxr.__version__}


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on `path` (created if needed): one builder per store at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_data(cfg: Config, progress: bool = True) -> Path:
    """The data set's root; a synthetic one is made first if it is missing."""
    data_dir = Path(cfg.data_dir)
    tracks_csv = data_dir / "fma_metadata" / "tracks.csv"
    if tracks_csv.is_file():
        return data_dir
    if cfg.data_source == "fma":
        raise FileNotFoundError(f"{tracks_csv} not found: FMA is not in {data_dir}. Run "
                                f"`fmareport fetch {data_dir}` (7.6 GB download) or set data_dir to your FMA copy")
    from .synth import synthesize
    with _locked(data_dir.with_name(data_dir.name + ".lock")):
        if not tracks_csv.is_file():        # another process may have made it while we waited
            log.info("synthesizing %s", data_dir)
            synthesize(data_dir, cfg.synth_tracks_per_genre, cfg.synth_seconds, cfg.synth_sample_rate,
                       cfg.synth_seed, cfg.synth_bad_cases, progress=progress, workers=cfg.prepare_workers)
    return data_dir


def prepare(cfg: Config, progress: bool = True) -> ClipStore:
    """Decode every track of cfg.subset once into a store under cfg.store_root; reuse a complete one."""
    data_dir = ensure_data(cfg, progress)
    audio_dir = data_dir / f"fma_{cfg.subset}"
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"{audio_dir} not found: the audio of subset {cfg.subset!r} is not in {data_dir}"
                                + (" (`fmareport fetch` gets fma_small)" if cfg.data_source == "fma" else ""))
    plan, left_out = select_tracks(load_tracks(data_dir / "fma_metadata" / "tracks.csv"), cfg.subset)
    if plan.empty:
        raise ValueError(f"{data_dir}: tracks.csv has no track of subset {cfg.subset!r} with a genre in {GENRES}")
    settings = {"subset": cfg.subset, "sample_rate": cfg.sample_rate, "clip_samples": cfg.clip_samples,
                "clip_rule": cfg.clip_rule, "min_clip_fraction": cfg.min_clip_fraction,
                "decode_version": DECODE_VERSION, "decoders": decoder_versions()}
    source = source_fingerprint(data_dir, cfg.subset, plan.track_id.to_numpy())
    fingerprint = hashlib.sha1(json.dumps({"source": source, **settings}, sort_keys=True).encode()).hexdigest()
    name = f"{cfg.subset}-{cfg.sample_rate}hz-{cfg.clip_samples}-{cfg.clip_rule}-{fingerprint[:12]}"
    root = Path(cfg.store_root)
    final = root / name
    with _locked(root / f"{name}.lock"):
        if (final / "manifest.json").is_file():
            log.info("reusing complete store %s", final)
            return open_store(final)
        partial = root / f"{name}.partial"
        if (partial / "manifest.json").is_file():     # finished, but killed before the rename
            _finish(partial, final)
            return open_store(final)
        log.info("decoding %d tracks into %s", len(plan), final)
        paths = [str(audio_path(data_dir, tid, cfg.subset)) for tid in plan.track_id]
        results = _decode_all(partial, plan, paths, settings, cfg.prepare_workers, progress)
        ok = np.array([results[row][0] == "ok" for row in range(len(plan))])
        _compact(partial, ok)
        kept = plan[ok].reset_index(drop=True)
        kept.to_csv(partial / "index.csv", index=False)
        skipped = [{"track_id": int(plan.track_id[row]), "reason": results[row][0], "detail": results[row][1]}
                   for row in range(len(plan)) if not ok[row]]
        counts = {g: {s: int(((kept.genre == g) & (kept.split == s)).sum()) for s in SPLITS} for g in GENRES}
        manifest = {
            "format": "fmareport clip store", "fingerprint": fingerprint, "name": name,
            **{k: v for k, v in settings.items() if k != "decoders"},
            "int16_scale": INT16_SCALE, "silence_peak": SILENCE_PEAK, "decoders": settings["decoders"],
            "data_dir": str(data_dir.resolve()), "data_source": cfg.data_source, "source_fingerprint": source,
            "source_fingerprint_rule": "sha1 of tracks.csv, fma_<subset>/checksums and every selected "
                                       "track's (track_id, file size in bytes)",
            "n_tracks": len(kept), "n_selected": len(plan),
            "split_counts": {s: int((kept.split == s).sum()) for s in SPLITS}, "counts": counts,
            "skipped": skipped, "left_out": left_out,
        }
        tmp = partial / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.rename(partial / "manifest.json")
        _finish(partial, final)
        log.info("stored %d tracks, skipped %d: %s", len(kept), len(skipped), final)
    return open_store(final)


def _finish(partial: Path, final: Path) -> None:
    """Drop the work files of a finished partial store and rename it to its final name."""
    for leftover in ("plan.json", "journal.jsonl", "rows.npy", "audio.npy.tmp"):
        (partial / leftover).unlink(missing_ok=True)
    if final.exists():                          # an incomplete folder (no manifest) left by hand
        shutil.rmtree(final)
    partial.rename(final)


def _decode_all(partial: Path, plan: pd.DataFrame, paths: list[str], settings: dict, workers: int,
                progress: bool) -> dict[int, tuple[str, str]]:
    """Decode paths[row] for every row of plan into partial/rows.npy, resuming from the journal.

    Returns row -> (status, detail), status "ok" or a skip reason.

    rows.npy is (n_selected, clip_samples) int16; the journal gets one JSON line per
    track, appended after its row is written. audio.npy in `partial` means this step
    (and _compact) already finished.
    """
    plan_json = json.dumps({"track_ids": plan.track_id.tolist(), **settings}, sort_keys=True)
    journal_path, rows_path = partial / "journal.jsonl", partial / "rows.npy"
    resumable = (partial / "plan.json").is_file() and (partial / "plan.json").read_text() == plan_json
    if not resumable or not (rows_path.is_file() or (partial / "audio.npy").is_file()):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        (partial / "plan.json").write_text(plan_json)
    text = journal_path.read_text() if journal_path.is_file() else ""
    lines = text.splitlines()[:None if text.endswith("\n") else -1]   # a line torn by a kill is dropped
    journal_path.write_text("".join(line + "\n" for line in lines))
    results: dict[int, tuple[str, str]] = {}
    for entry in map(json.loads, lines):
        results[entry["row"]] = (entry["status"], entry["detail"])
    todo = [row for row in range(len(plan)) if row not in results]
    if not todo:
        return results
    shape = (len(plan), settings["clip_samples"])
    rows = np.lib.format.open_memmap(rows_path, mode="r+" if rows_path.is_file() else "w+", dtype=np.int16,
                                     shape=None if rows_path.is_file() else shape)
    kill_after = int(os.environ.get(KILL_AFTER_ENV, "0"))
    args = (settings["sample_rate"], settings["clip_samples"], settings["clip_rule"], settings["min_clip_fraction"])
    jobs = [(row, paths[row], *args) for row in todo]
    bar = tqdm(total=len(plan), initial=len(plan) - len(todo), desc="prepare", unit="track", disable=not progress)
    with open(journal_path, "a") as journal:
        for done, (row, clip, status, detail) in enumerate(_run_jobs(jobs, workers), start=1):
            if clip is not None:
                rows[row] = clip
            journal.write(json.dumps({"row": row, "track_id": int(plan.track_id[row]), "status": status,
                                      "detail": detail}) + "\n")
            journal.flush()
            results[row] = (status, detail)
            bar.update(1)
            if done == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
    bar.close()
    rows.flush()
    del rows
    return results


def _exit_with(parent_pid: int) -> None:
    """Worker initializer: exit as soon as the parent is gone (a killed run must leave no orphans)."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.2)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` spawned processes (safe beside torch's threads) that die with this one."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with, initargs=(os.getpid(),))


def _run_jobs(jobs: list[tuple], workers: int):
    """Yield _decode_job(job) for every job, in completion order, over `workers` processes (0: all cores)."""
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers == 1:
        yield from map(_decode_job, jobs)
        return
    with process_pool(workers) as executor:
        pending, queue = set(), iter(jobs)
        for job in queue:                       # keep a few jobs per worker in flight, not all of them
            pending.add(executor.submit(_decode_job, job))
            if len(pending) >= 4 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        for f in pending:
            yield f.result()


def _compact(partial: Path, ok: np.ndarray) -> None:
    """partial/rows.npy -> partial/audio.npy holding only the rows marked ok, in order."""
    out = partial / "audio.npy"
    if out.is_file():                           # done before a kill
        return
    rows_path = partial / "rows.npy"
    if ok.all():
        rows_path.rename(out)
        return
    rows = np.load(rows_path, mmap_mode="r")
    tmp = partial / "audio.npy.tmp"
    audio = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int16, shape=(int(ok.sum()), rows.shape[1]))
    kept = np.flatnonzero(ok)
    for start in range(0, len(kept), 256):      # 256 rows: 512 MB at the paper's 10**6 samples
        audio[start:start + 256] = rows[kept[start:start + 256]]
    audio.flush()
    del audio, rows
    tmp.rename(out)
    rows_path.unlink()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Decode every track of the profile's subset once into a clip store: audio.npy "
                     "(int16, n_tracks x clip_samples), index.csv (track_id, genre, label, split) and "
                     "manifest.json (settings, counts, skipped tracks with their reason). A complete store "
                     "with the same data and settings is reused; a killed run resumes.")
    p.add_argument("data_dir", nargs="?", metavar="DATA_DIR",
                   help="FMA-format root (holds fma_metadata/, fma_small/); default: the profile's data_dir")
    p.add_argument("--profile", required=True, metavar="P",
                   help="profile name (smoke, demo, paper) or path to a profile YAML")
    p.add_argument("--out", metavar="STORE_ROOT",
                   help="folder that holds the stores (default: the profile's store_root)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="decode processes (default: the profile's prepare_workers; 0 = one per core)")

def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="fmareport prepare: %(message)s")
    overrides = {k: v for k, v in (("data_dir", args.data_dir), ("store_root", args.out),
                                   ("prepare_workers", args.workers)) if v is not None}
    cfg = load_profile(args.profile, overrides=overrides)
    try:
        store = prepare(cfg)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"fmareport prepare: {err}", file=sys.stderr)
        return 1
    m = store.manifest
    print(f"{store.path}\n{m['n_tracks']} tracks ({', '.join(f'{s} {n}' for s, n in m['split_counts'].items())}), "
          f"{m['sample_rate']} Hz x {m['clip_samples']} samples; skipped {len(m['skipped'])}")
    for s in m["skipped"]:
        print(f"  skipped {s['track_id']:6d}: {s['reason']} ({s['detail']})")
    return 0

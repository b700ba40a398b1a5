"""`fmareport synth DIR` (`synthesize`): a synthetic data set in FMA's exact on-disk format.

    DIR/fma_metadata/tracks.csv    the 52 two-level columns, written by pandas as FMA's is
    DIR/fma_metadata/genres.csv    the official columns, rows of the 8 top-level genres
    DIR/fma_metadata/features.csv  FMA's 518 columns; values: noise around a genre's centre, not the audio's
    DIR/fma_small/NNN/NNNNNN.mp3   stereo mp3 (libsndfile's LAME, VBR) in a `data.music` style, per small track
    DIR/fma_small/checksums        `<sha1>  000/000002.mp3` lines, as in fma_small.zip

As in FMA, medium and large tracks are in tracks.csv only (prepare leaves them out), and each
artist is in one genre and one split: each split of a genre is cut into artists of ARTIST_TRACKS
tracks sharing a sound (`music.Artist`). `bad_cases` adds FMA's broken tracks (BAD_CASES). A
track's bytes depend only on (seed, artist_id, track_id), whatever the number of workers.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ..config import SynthSettings
from ..disk import human
from ..errors import StorageError
from ..files import is_owned, mark_owned, remove_owned
from ..progress import tqdm
from .fma import (
    COLUMNS,
    FEATURES_COLUMNS,
    FEATURES_HEADER,
    GENRE_IDS,
    GENRES,
    NO_AUDIO_TRACKS,
    SHORT_TRACKS,
    SPLITS,
    audio_path,
)
from .music import draw_artist, render
from .pool import imap_unordered

# Sets made before the split was a setting were split as FMA is, 80/10/10 (`made_with`).
OLD_SETS_SPLIT = {"validation_fraction": 0.1, "test_fraction": 0.1}
# Tracks per artist (the last of a split may have fewer): our estimate of FMA-small's test split
# (fmareport.report.coverage.FMA_ARTIST_TRACKS); the demo's 60 test tracks a genre are 15 artists.
ARTIST_TRACKS = 4
ARTIST_STREAM = 7  # third word of an artist's seed (`artist_rng`)
EXTRA_FRACTION = 0.1  # per genre, medium and large tracks each: 10 % of the small ones (>= 1)
SHORT_SECONDS = 0.25  # the short bad case: under half a clip of every profile (smoke: 2.05 s)
MAX_TRACK_ID = 155_999  # FMA's audio folders are 000-155
BAD_CASES = {  # FMA's broken ids (fma.SHORT_TRACKS, fma.NO_AUDIO_TRACKS) -> what we write
    SHORT_TRACKS[0]: "short",
    SHORT_TRACKS[1]: "silent",
    NO_AUDIO_TRACKS[0]: "empty",
    NO_AUDIO_TRACKS[1]: "garbage",
    NO_AUDIO_TRACKS[2]: "missing",
}
# features.csv: each track's row is its genre's centre plus unit noise, in units of each column's
# own scale. Centres are N(0, 1) per column, times FEATURES_SEPARATION: at 1, two genres' centres
# lie sqrt(2 * 518) = 32 noise SDs apart, so a classifier given each track's own row learns the
# genres from 4 training tracks each (the tiny test set), and one given other tracks' rows learns
# nothing: tests/test_baseline.py tells a features.csv joined to the right tracks from a wrong join.
FEATURES_SEPARATION = 1.0
LICENSE = "Attribution-NonCommercial-ShareAlike 3.0 International"
MARKER = ".fmareport-synth.json"  # in every set synth writes: what it is and how it was made


# ----------------------------------------------------------------------------
# Metadata: tracks.csv and genres.csv in FMA's format.


@dataclass
class TrackMeta:
    """What tracks.csv says about one track; every other column is filled with plausible values."""

    track_id: int
    subset: str  # small | medium | large
    split: str  # training | validation | test
    genre_top: str | None  # None: no single top genre (FMA leaves it empty)
    genres: list[int]  # genre ids, as in genres.csv
    genres_all: list[int] | None = None  # genres and their ancestors; None: same as genres
    artist_id: int | None = None  # ('artist', 'id'); None: an artist of its own, whose id is the track's
    duration: int = 30  # s
    bit_rate: int = 128_000  # bit/s
    title: str = ""


def tracks_table(rows: list[TrackMeta], seed: int = 0) -> pd.DataFrame:
    """tracks.csv's DataFrame: index track_id (sorted), FMA's 52 two-level columns in file order; the
    columns not given below are empty (NaN), as FMA leaves them for most tracks."""
    rows = sorted(rows, key=lambda r: r.track_id)
    rng = np.random.default_rng([seed, 1])
    n = len(rows)
    artist = [r.track_id if r.artist_id is None else r.artist_id for r in rows]
    album = rng.integers(1, 20_000, n)
    created = pd.Timestamp("2008-11-25 17:49:06") + pd.to_timedelta(rng.integers(0, 8 * 365 * 86400, n), unit="s")
    nan = [np.nan] * n
    empty_lists = [[] for _ in range(n)]
    columns = {
        ("album", "comments"): [0] * n,
        ("album", "date_created"): created,
        ("album", "date_released"): created.normalize(),
        ("album", "favorites"): rng.integers(0, 10, n),
        ("album", "id"): album,
        ("album", "listens"): rng.integers(50, 50_000, n),
        ("album", "tags"): empty_lists,
        ("album", "title"): [f"Synthetic Album {a}" for a in album],
        ("album", "tracks"): rng.integers(1, 20, n),
        ("album", "type"): ["Album"] * n,
        ("artist", "comments"): [0] * n,
        ("artist", "date_created"): created - pd.Timedelta(days=30),
        ("artist", "favorites"): rng.integers(0, 50, n),
        ("artist", "id"): artist,
        ("artist", "latitude"): rng.uniform(-50, 60, n).round(4),
        ("artist", "location"): ["Synthesizer City"] * n,
        ("artist", "longitude"): rng.uniform(-120, 140, n).round(4),
        ("artist", "name"): [f"Synthetic Artist {a}" for a in artist],
        ("artist", "tags"): empty_lists,
        ("set", "split"): [r.split for r in rows],
        ("set", "subset"): [r.subset for r in rows],
        ("track", "bit_rate"): [r.bit_rate for r in rows],
        ("track", "comments"): [0] * n,
        ("track", "date_created"): created,
        ("track", "duration"): [r.duration for r in rows],
        ("track", "favorites"): rng.integers(0, 5, n),
        ("track", "genre_top"): [r.genre_top for r in rows],
        ("track", "genres"): [list(r.genres) for r in rows],
        ("track", "genres_all"): [list(r.genres if r.genres_all is None else r.genres_all) for r in rows],
        ("track", "interest"): rng.integers(100, 20_000, n),
        ("track", "language_code"): ["en"] * n,
        ("track", "license"): [LICENSE] * n,
        ("track", "listens"): rng.integers(50, 15_000, n),
        ("track", "number"): rng.integers(1, 12, n),
        ("track", "tags"): empty_lists,
        ("track", "title"): [r.title or f"Synthetic track {r.track_id}" for r in rows],
    }
    assert set(columns) <= set(COLUMNS), "tracks_table's columns drifted from fma.COLUMNS"
    df = pd.DataFrame(
        {c: columns.get(c, nan) for c in COLUMNS}, index=pd.Index([r.track_id for r in rows], name="track_id")
    )
    df.columns = pd.MultiIndex.from_tuples(COLUMNS)
    return df


def genres_table(tracks: pd.DataFrame) -> pd.DataFrame:
    """genres.csv's DataFrame for the 8 top genres: #tracks counts tracks whose genres_all has the id."""
    counts = pd.Series([g for gs in tracks["track", "genres_all"] for g in gs]).value_counts()
    ids = sorted(GENRE_IDS.values())
    title = {i: g for g, i in GENRE_IDS.items()}
    return pd.DataFrame(
        {
            "#tracks": [int(counts.get(i, 0)) for i in ids],
            "parent": [0] * len(ids),
            "title": [title[i] for i in ids],
            "top_level": ids,
        },
        index=pd.Index(ids, name="genre_id"),
    )


def features_table(tracks: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """features.csv's DataFrame for the tracks of tracks.csv: (n_tracks, 518) float64, FMA's columns
    (fma.FEATURES_COLUMNS), index track_id in tracks.csv's order. Per column an offset and a scale
    (10**-1 to 10**3, as FMA's differ by orders of magnitude: the baselines must standardise); per
    track its genre's centre (FEATURES_SEPARATION; none without genre_top) plus unit noise from
    (seed, track_id). Nothing of the track's audio."""
    rng = np.random.default_rng([seed, 2])
    n = len(FEATURES_COLUMNS)
    scale = 10.0 ** rng.uniform(-1, 3, n)  # (518,)
    offset = scale * rng.standard_normal(n)  # (518,)
    centre = {genre: FEATURES_SEPARATION * rng.standard_normal(n) for genre in GENRES}  # genre -> (518,)
    rows = []
    for tid, genre in zip(tracks.index, tracks["track", "genre_top"]):
        noise = np.random.default_rng([seed, 3, int(tid)]).standard_normal(n)
        rows.append(offset + scale * (centre.get(genre, 0.0) + noise))
    return pd.DataFrame(
        np.array(rows).reshape(len(rows), n),  # (n_tracks, 518)
        index=pd.Index(tracks.index, name="track_id"),
        columns=pd.MultiIndex.from_tuples(FEATURES_COLUMNS, names=FEATURES_HEADER),
    )


def split_sizes(tracks_per_genre: int, validation_fraction: float, test_fraction: float) -> list[dict[str, int]]:
    """Tracks per split for each genre (label order), rounded so that the totals keep the
    fractions too; the rest of each genre after validation and test is training.

    Validation and test counts are rounded cumulatively over genres: with 5 tracks a
    genre, genres alternate 1 and 0 validation tracks, and the totals are 32/4/4.
    """

    def cumulative(fraction: float, g: int) -> int:
        return math.floor(fraction * tracks_per_genre * g + 0.5)

    sizes = []
    for g in range(len(GENRES)):
        val = cumulative(validation_fraction, g + 1) - cumulative(validation_fraction, g)
        test = cumulative(test_fraction, g + 1) - cumulative(test_fraction, g)
        sizes.append({"training": tracks_per_genre - val - test, "validation": val, "test": test})
    return sizes


def artist_runs(sizes: dict[str, int], first_id: int) -> list[int]:
    """The artist of each of a genre's tracks, in split order (`split_sizes`): each split's tracks
    in runs of ARTIST_TRACKS, the last run of a split shorter when they do not divide, numbered
    from first_id. So no artist spans two splits."""
    out, artist = [], first_id
    for k in sizes.values():
        for start in range(0, k, ARTIST_TRACKS):
            out += [artist] * min(ARTIST_TRACKS, k - start)
            artist += 1
    return out


@dataclass
class Job:
    """One file to write: `kind` is music, or a bad case (short, silent, empty, garbage, missing)."""

    track_id: int
    genre: str
    kind: str
    seconds: float
    sample_rate: int
    seed: int
    root: str
    artist_id: int  # the artist's sound comes from (seed, artist_id): `artist_rng`


def artist_rng(seed: int, artist_id: int) -> np.random.Generator:
    """The generator an artist is drawn from (`music.draw_artist`); its third word, never 0, keeps
    it apart from the tracks' own generators, seeded (seed, track_id)."""
    return np.random.default_rng([seed, artist_id, ARTIST_STREAM])


def write_track(job: Job) -> tuple[int, str | None, int]:
    """Write one mp3 under job.root; return (track_id, sha1 or None if no file, bytes)."""
    path = audio_path(job.root, job.track_id)
    if job.kind == "missing":
        return job.track_id, None, 0
    rng = np.random.default_rng([job.seed, job.track_id])
    if job.kind == "empty":
        data = b""
    elif job.kind == "garbage":
        data = rng.bytes(int(16_000 * job.seconds))  # ~128 kbit/s worth of noise bytes
    else:
        if job.kind == "silent":
            audio = np.zeros((round(job.seconds * job.sample_rate), 2), np.float32)
        else:
            seconds = SHORT_SECONDS if job.kind == "short" else job.seconds
            audio = render(
                job.genre, seconds, job.sample_rate, rng, draw_artist(job.genre, artist_rng(job.seed, job.artist_id))
            )
        buf = io.BytesIO()  # encoded in memory (the same bytes as to a file): the file is written below, where
        sf.write(
            buf, audio, job.sample_rate, format="MP3"
        )  # a full disk is an OSError, not libsndfile's "System error."
        data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return job.track_id, hashlib.sha1(data).hexdigest(), len(data)


def check_splits(settings: SynthSettings) -> None:
    """ValueError unless every split gets a track: the one rule of a set that needs the genre list
    (SynthSettings checks the rest)."""
    sizes = split_sizes(settings.tracks_per_genre, settings.validation_fraction, settings.test_fraction)
    empty = [split for split in SPLITS if sum(s[split] for s in sizes) < 1]
    if empty:
        raise ValueError(
            f"{settings.tracks_per_genre} track(s) per genre at validation fraction {settings.validation_fraction:g} "
            f"and test fraction {settings.test_fraction:g} give no {' and no '.join(empty)} track at all: add "
            "tracks or change the fractions"
        )


def _holds_files(folder: Path) -> bool:
    """Whether anything but empty folders is under `folder`."""
    return any(not p.is_dir() or p.is_symlink() for p in folder.rglob("*"))


def made_with(path: str | Path) -> dict | None:
    """The settings a synthetic set was written with, from its marker (None: no marker)."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return None
    made = json.loads(marker.read_text())
    return OLD_SETS_SPLIT | made


def synthesize(
    out_dir: str | Path, settings: SynthSettings, progress: bool = True, workers: int = 0, force: bool = False
) -> Path:
    """Write a synthetic FMA-format data set made with `settings` to out_dir; return it.

    out_dir must be absent or empty, or with `force` a set synth wrote (its marker inside; nothing
    else is ever deleted). Written to `out_dir.partial`, renamed at the end: a killed run leaves no
    folder that looks complete, and one that fails (a full disk, Ctrl-C) removes it. A full disk or a
    folder that cannot be written is a StorageError naming the folder. workers: processes (0: one
    per usable CPU).
    """
    out_dir = Path(out_dir)
    check_splits(settings)
    tmp = _start(out_dir, force)
    try:
        _write_set(tmp, out_dir, settings, progress, workers)
    except BaseException as err:
        # A failed set (a full disk, Ctrl-C) is not resumed: its folder, made by this call (_start
        # refused any it did not leave), is removed, so a full disk is freed again.
        written = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file()) if tmp.is_dir() else 0
        if not remove_owned(tmp, MARKER) and tmp.is_dir() and not tmp.is_symlink() and not any(tmp.iterdir()):
            tmp.rmdir()  # made, but the marker could not be written in it
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise StorageError(
                f"{tmp.parent}: no room on its disk for the synthetic set ({err.strerror} after {human(written)} of "
                f"it; {tmp.name} was removed): free space there, or choose another folder for the set "
                "(`fmareport synth DIR`; a profile's data_dir), then run it again"
            ) from None
        if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR):
            raise StorageError(
                f"{tmp.parent}: cannot write there ({err.strerror}): make it writable, or choose another folder for "
                "the set (`fmareport synth DIR`; a profile's data_dir)"
            ) from None
        raise
    return out_dir


def _write_set(tmp: Path, out_dir: Path, settings: SynthSettings, progress: bool, workers: int) -> None:
    """`synthesize`'s work: the set written into `tmp`, then renamed to out_dir."""
    made = {**settings.model_dump(), "artist_tracks": ARTIST_TRACKS}  # store.check_synthetic_set reads it
    mark_owned(tmp, MARKER, json.dumps({"format": "fmareport synthetic FMA-format set", **made}, indent=1) + "\n")
    rows, jobs = _plan(settings, tmp)
    # Audio, in parallel: each track's bytes depend only on (seed, artist_id, track_id).
    written = list(
        tqdm(
            imap_unordered(write_track, jobs, workers, len(jobs)),
            total=len(jobs),
            desc=f"synth {out_dir.name}",
            unit="track",
            disable=not progress,
        )
    )
    _write_metadata(tmp, rows, jobs, written, settings.seed)
    if out_dir.exists():
        if _holds_files(out_dir):  # checked in _start: --force on a set of ours
            if not remove_owned(out_dir, MARKER):
                raise FileExistsError(
                    f"{out_dir} is not a synthetic set written by `fmareport synth` (no {MARKER} in it): "
                    "refusing to delete it; remove it yourself or choose another folder"
                )
        else:  # empty folders only (a workflow makes them for its outputs)
            for folder in sorted(out_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                folder.rmdir()
            out_dir.rmdir()
    tmp.rename(out_dir)


def _start(out_dir: Path, force: bool) -> Path:
    """The empty `out_dir.partial` to write into, once out_dir is known to be ours to fill."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and _holds_files(out_dir) and not (force and is_owned(out_dir, MARKER)):
        why = (
            f"it is not a set written by `fmareport synth` (no {MARKER}), so --force does not replace it"
            if force
            else "remove it, choose another folder, or pass --force to replace a synthetic set"
        )
        raise FileExistsError(f"{out_dir} exists and is not empty: {why}")
    tmp = out_dir.with_name(out_dir.name + ".partial")
    if tmp.exists() and not remove_owned(tmp, MARKER):  # a killed run's leftovers carry the marker
        raise FileExistsError(f"{tmp} exists and was not left by `fmareport synth`: move it away")
    return tmp


def _plan(settings: SynthSettings, tmp: Path) -> tuple[list[TrackMeta], list[Job]]:
    """Every track's metadata, and a job for each one with audio: genre g's small tracks (each
    split cut into artists), the medium and large extras (metadata only), the bad cases."""
    n, seconds, rate, seed = settings.tracks_per_genre, settings.seconds, settings.sample_rate, settings.seed
    rng = np.random.default_rng([seed, 0])
    n_extra = max(1, round(EXTRA_FRACTION * n))
    n_small = len(GENRES) * n
    candidates = np.setdiff1d(np.arange(2, MAX_TRACK_ID + 1), list(BAD_CASES))
    ids = [int(i) for i in rng.choice(candidates, n_small + 2 * len(GENRES) * n_extra, replace=False)]
    rows, jobs = [], []
    artist = 1  # artist ids 1, 2, ...: the small tracks' artists, then one per other track
    sizes = split_sizes(n, settings.validation_fraction, settings.test_fraction)
    for g, (genre, size) in enumerate(zip(GENRES, sizes)):
        splits = [split for split, k in size.items() for _ in range(k)]
        artists = artist_runs(size, artist)
        artist = artists[-1] + 1
        for tid, split, aid in zip(ids[g * n : (g + 1) * n], splits, artists):
            rows.append(
                TrackMeta(tid, "small", split, genre, [GENRE_IDS[genre]], artist_id=aid, duration=round(seconds))
            )
            jobs.append(Job(tid, genre, "music", seconds, rate, seed, str(tmp), aid))
    extras = ids[n_small:]
    for k, tid in enumerate(extras):
        genre, other = GENRES[k % len(GENRES)], GENRES[(k + 3) % len(GENRES)]
        split = SPLITS[k % 3]
        if k < len(extras) // 2:
            subset, top, genre_ids = "medium", genre, [GENRE_IDS[genre]]
        else:  # a large-subset track under two top genres: FMA then leaves genre_top empty
            subset, top, genre_ids = "large", None, [GENRE_IDS[genre], GENRE_IDS[other]]
        rows.append(TrackMeta(tid, subset, split, top, genre_ids, artist_id=artist, duration=round(seconds)))
        artist += 1
    for k, (tid, kind) in enumerate(BAD_CASES.items() if settings.bad_cases else ()):
        genre = GENRES[k % len(GENRES)]
        duration = round(SHORT_SECONDS if kind == "short" else seconds)
        rows.append(TrackMeta(tid, "small", "training", genre, [GENRE_IDS[genre]], artist_id=artist, duration=duration))
        jobs.append(Job(tid, genre, kind, seconds, rate, seed, str(tmp), artist))
        artist += 1
    return rows, jobs


def _write_metadata(tmp: Path, rows: list[TrackMeta], jobs: list[Job], written: list, seed: int) -> None:
    """Checksums, genres.csv, features.csv and tracks.csv (bit_rate measured from each file)."""
    size = {tid: n_bytes for tid, sha, n_bytes in written if sha is not None}
    lines = sorted(
        f"{sha}  {audio_path('', tid).relative_to('fma_small').as_posix()}"
        for tid, sha, _ in written
        if sha is not None
    )
    (tmp / "fma_small" / "checksums").write_text("".join(line + "\n" for line in lines))
    length = {j.track_id: SHORT_SECONDS if j.kind == "short" else j.seconds for j in jobs}
    for r in rows:
        if size.get(r.track_id):
            r.bit_rate = int(round(8 * size[r.track_id] / length[r.track_id], -3))  # average bit/s
    tracks = tracks_table(rows, seed)
    meta = tmp / "fma_metadata"
    meta.mkdir(parents=True)
    genres_table(tracks).to_csv(meta / "genres.csv")
    features_table(tracks, seed).to_csv(meta / "features.csv", float_format="%.10e")  # FMA's save(): 10 digits
    tracks.to_csv(meta / "tracks.csv")

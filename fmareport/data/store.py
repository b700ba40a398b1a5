"""The clip store: every track of a subset decoded once into one int16 array on disk.

    audio.npy      int16 (n_tracks, clip_samples); np.load(path, mmap_mode="r")
    index.csv      track_id, genre, label, split, artist_id: one row per row of audio.npy
    manifest.json  settings, source fingerprint, counts, skipped tracks, each file's size and SHA1,
                   each source file's SHA1 (`source_files`: the data's content, not its sizes)

`prepare(cfg)` builds one (or reuses the complete one with the same fingerprint), after checking the
audio against the data set's `checksums`; `open_store(path)` opens it after checking it against its
manifest; `current_fingerprint(cfg)` is the fingerprint prepare would give now (the book's test). The fingerprint, the checks and how a killed
prepare resumes: docs/contracts.md, "Clip store"; the faults refused: docs/faults.md, case 11.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import shlex
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Config, ConfigError, flat_key
from ..disk import check_room, check_writable
from ..errors import FmareportError, StorageError
from ..files import file_digest, locked, mark_owned, read_json, remove_owned, take_lock, write_atomic
from ..progress import tqdm
from .audio import DECODE_VERSION, INT16_SCALE, SILENCE_PEAK, Skip, decode_clip, decoder_notes, decoder_versions
from .fma import GENRES, SPLITS, SUBSETS, audio_path, load_tracks
from .pool import imap_unordered, usable_cpus

log = logging.getLogger(__name__)

STORE_FILES = ("audio.npy", "index.csv")  # what the manifest's `files` records: size in bytes and SHA1
INDEX_COLUMNS = ("track_id", "genre", "label", "split", "artist_id")  # artist_id: tracks.csv's ('artist', 'id')


class StoreError(FmareportError, ValueError):
    """A store that is not what its manifest says (damaged, truncated, edited, too old), or that
    cannot be written (a full disk)."""


class SourceError(FmareportError, ValueError):
    """A data set whose audio files are not the ones its own `checksums` file lists (damaged,
    replaced, swapped): prepare refuses it before decoding; the message names the file, both SHA1s
    and how to restore it."""


# How the source fingerprint is computed (recorded in every manifest as `source_fingerprint_rule`).
SOURCE_RULE = (
    "sha1 over tracks.csv's SHA1, fma_<subset>/checksums' SHA1 (or none) and, for every selected track in "
    "track_id order, its id and its file's SHA1 (or why it has none: missing, not a file, unreadable)"
)
TRACKS_CSV = "fma_metadata/tracks.csv"  # the source files, relative to data_dir, as `source_files` names them


def rebuild_hint(path: Path, profile: str | None = None) -> str:
    """How to rebuild the store at `path`: prepare made the folder, so deleting it loses nothing."""
    command = f"fmareport prepare --profile {profile or 'P'}"
    return f"delete the folder {path} (prepare made it) and run `{command}`" + ("" if profile else " (P: its profile)")


def _decode_job(job: tuple[int, str, int, int, str, float]) -> tuple[int, np.ndarray | None, str, str, str]:
    """Worker: (row, path, settings...) -> (row, clip or None, status "ok" or skip reason, detail,
    what the decoder printed about this file, "" if nothing)."""
    row, path, *settings = job
    with decoder_notes() as notes:
        try:
            clip, status, detail = decode_clip(path, *settings), "ok", ""
        except Skip as skip:
            clip, (status, detail) = None, skip.args
    return row, clip, status, detail, " ".join(notes)


@dataclass
class ClipStore:
    """An opened store: `audio` is memory-mapped, `index` describes its rows."""

    path: Path
    manifest: dict
    audio: np.ndarray  # (n_tracks, clip_samples) int16, memmap
    index: pd.DataFrame  # track_id, genre, label, split, artist_id; row i describes audio[i]

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

    @property
    def artists(self) -> np.ndarray:
        """(n_tracks,) int64: each track's artist (tracks.csv's ('artist', 'id'))."""
        return self.index["artist_id"].to_numpy(np.int64)

    def split_indices(self, split: str) -> np.ndarray:
        """Rows of `split` (training | validation | test): (n,) int64, ascending."""
        if split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {SPLITS}")
        return np.flatnonzero(self.index["split"].to_numpy() == split).astype(np.int64)

    def __len__(self) -> int:
        return len(self.index)


def open_store(path: str | Path, profile: str | None = None) -> ClipStore:
    """Open a complete store folder (one with manifest.json); audio is memory-mapped read-only.

    Checks the store against its manifest first (sizes, shapes, index.csv's labels, each file's
    SHA1) and raises StoreError naming the file and how to rebuild it (`profile`: for the command).
    """
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{path}: not a complete clip store (no manifest.json); run `fmareport prepare` to build or finish it"
        )
    redo = rebuild_hint(path, profile)
    try:
        manifest = read_json(manifest_path)
    except (ValueError, OSError) as err:
        raise StoreError(f"{manifest_path}: not readable JSON ({err}); {redo}") from None
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(_file_record_ok(files.get(name)) for name in STORE_FILES):
        raise StoreError(f"{manifest_path}: records no size and SHA1 of {STORE_FILES} (an older store); {redo}")
    _check_files(path, files, redo, sha1=False)  # sizes first: a truncated file is named as one
    try:
        audio = np.load(path / "audio.npy", mmap_mode="r")
    except (ValueError, OSError) as err:  # numpy's words ("mmap length is greater than file size") name no file
        raise StoreError(f"{path / 'audio.npy'}: not a readable .npy ({err}); {redo}") from None
    try:
        index = pd.read_csv(
            path / "index.csv",
            dtype={"track_id": np.int64, "genre": str, "label": np.int64, "split": str, "artist_id": np.int64},
        )
    except (ValueError, OSError) as err:  # pandas' ParserError is a ValueError
        raise StoreError(f"{path / 'index.csv'}: not readable ({err}); {redo}") from None
    if list(index.columns) != list(INDEX_COLUMNS):
        raise StoreError(f"{path / 'index.csv'}: columns {list(index.columns)}, expected {INDEX_COLUMNS}; {redo}")
    expected = (manifest["n_tracks"], manifest["clip_samples"])
    if audio.shape != expected or audio.dtype != np.int16 or len(index) != expected[0]:
        raise StoreError(
            f"{path}: audio.npy is {audio.dtype} {audio.shape} and index.csv has {len(index)} rows, "
            f"the manifest says int16 {expected}; {redo}"
        )
    _check_index(index, path / "index.csv", redo)
    _check_files(path, files, redo, sha1=True)  # the whole store read once (its cost: docs/contracts.md)
    return ClipStore(path, manifest, audio, index)


def _check_files(path: Path, files: dict, redo: str, sha1: bool) -> None:
    """StoreError unless each of STORE_FILES in `path` has the size (sha1: and the SHA1) that `files` records."""
    for name in STORE_FILES:
        want, file = files[name], path / name
        size = file.stat().st_size if file.is_file() else None
        if size != want["bytes"]:
            what = "missing" if size is None else f"{size:,} bytes"
            raise StoreError(f"{file}: {what}, the manifest says {want['bytes']:,} bytes; {redo}")
        if sha1 and (digest := file_digest(file)) != want["sha1"]:
            raise StoreError(
                f"{file}: changed since prepare wrote it (SHA1 {digest}, the manifest says {want['sha1']}); {redo}"
            )


def _file_record_ok(record) -> bool:
    """Whether `record` is one file's entry of the manifest's `files`: {"bytes": int, "sha1": str}."""
    return isinstance(record, dict) and isinstance(record.get("bytes"), int) and isinstance(record.get("sha1"), str)


def _check_index(index: pd.DataFrame, path: Path, redo: str) -> None:
    """StoreError unless every row's genre is one of GENRES, its label GENRES.index(genre) and its split one of SPLITS."""
    label = index["genre"].map({genre: i for i, genre in enumerate(GENRES)})
    bad = np.flatnonzero((label != index["label"]).to_numpy() | ~index["split"].isin(SPLITS).to_numpy())
    if len(bad):
        row = index.iloc[bad[0]]
        raise StoreError(
            f"{path}: data row {bad[0] + 1} (track_id {row.track_id}) has genre {row.genre!r}, label {row.label}, "
            f"split {row.split!r}; a label is the genre's place in {GENRES} (0-7), a split one of {SPLITS}; {redo}"
        )


def select_tracks(tracks: pd.DataFrame, subset: str) -> tuple[pd.DataFrame, dict[str, int], list[dict]]:
    """The tracks a store holds: those of `subset` (small ⊂ medium ⊂ large) with a genre_top in GENRES.

    Returns (plan, left_out, dropped): plan has columns track_id, genre, label, split, artist_id,
    sorted by track_id; left_out counts the tracks not taken, by why; dropped lists, with their
    reason, the tracks that tracks.csv puts in no known subset, or in this subset under a
    genre_top that is not one of the 8 genres (none in FMA-small).
    """
    in_subset = tracks["set", "subset"] <= subset
    genre = tracks["track", "genre_top"]
    known = genre.isin(GENRES)
    plan = pd.DataFrame(
        {
            "track_id": tracks.index[in_subset & known].astype(np.int64),
            "genre": genre[in_subset & known].astype(str).to_numpy(),
            "split": tracks["set", "split"][in_subset & known].astype(str).to_numpy(),
            "artist_id": tracks["artist", "id"][in_subset & known].astype(np.int64).to_numpy(),
        }
    )
    plan["label"] = plan["genre"].map(GENRES.index).astype(np.int64)
    plan = plan[list(INDEX_COLUMNS)].sort_values("track_id", ignore_index=True)
    bad_split = ~plan["split"].isin(SPLITS)
    if bad_split.any():
        raise ValueError(
            f"tracks.csv: ('set', 'split') must be one of {SPLITS}; track "
            f"{plan.track_id[bad_split].iloc[0]} has {plan.split[bad_split].iloc[0]!r}"
        )
    unknown_subset = tracks.attrs.get("unknown_subset", {})
    dropped = [
        {"track_id": tid, "reason": "unknown subset", "detail": f"('set', 'subset') is {value!r}, not one of {SUBSETS}"}
        for tid, value in unknown_subset.items()
    ] + [
        {"track_id": int(tid), "reason": "genre not in the 8", "detail": f"genre_top is {value!r}"}
        for tid, value in genre[in_subset & ~known].items()
    ]
    dropped.sort(key=lambda d: d["track_id"])
    left_out = {
        "not_in_subset": int((~in_subset).sum() - len(unknown_subset)),
        "unknown_subset": len(unknown_subset),
        "genre_top_not_in_genres": int((in_subset & ~known).sum()),
    }
    return plan, left_out, dropped


def _stat_record(st: os.stat_result) -> list[int]:
    """What says a file is unchanged since it was hashed: size, mtime, ctime, inode and device. A
    rewrite or a copy over the file changes its ctime, whatever its size and mtime (no user sets a
    ctime); a rename onto the path (two files swapped) puts another inode there."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _record_text(record: list) -> str:
    """A `source_files` record as the manifest holds it, one line: "<sha1> <size> <mtime_ns>
    <ctime_ns> <inode> <device>", "<sha1>" (read while it changed), or why none ("missing", ...)."""
    return " ".join(map(str, record))


def _record_of(text) -> list | None:
    """`_record_text`'s line back as a record (None: not one)."""
    if not isinstance(text, str):
        return None
    parts = text.split(" ")
    if len(parts) == 6 and _has_sha1(parts) and all(p.isdigit() for p in parts[1:]):
        return [parts[0], *map(int, parts[1:])]
    return [text]


def _known_records(manifests: list[dict]) -> dict[str, list]:
    """{relative path: record} of every file the manifests' `source_files` name (the last wins)."""
    out = {}
    for m in manifests:
        for rel, text in m["source_files"].items():
            if (record := _record_of(text)) is not None:
                out[rel] = record
    return out


def _file_sha1(path: Path, known: list | None) -> list:
    """[SHA1, *stat record] of the file at `path`, or [why it has none]: "missing", "not a file"
    (never opened: a FIFO would block), "unreadable (...)". `known`: the record a manifest holds for
    the path; its SHA1 is taken as is when the stat record is the same (nothing read)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return ["missing"]
    if not stat.S_ISREG(st.st_mode):
        return ["not a file"]
    record = _stat_record(st)
    if known is not None and len(known) == 6 and known[1:] == record:
        return list(known)
    try:
        digest = file_digest(path)
        after = _stat_record(os.stat(path))
    except OSError as err:
        return [f"unreadable ({err.strerror or err})"]
    return [digest, *record] if after == record else [digest]  # changed while read: never taken as known


def source_files(
    data_dir: Path, subset: str, track_ids: Iterable[int], known: dict[str, list] | None = None, workers: int = 0
) -> dict[str, list]:
    """{path relative to data_dir: [SHA1, size, mtime_ns, ctime_ns, inode, device] or [why none]} of
    tracks.csv, fma_<subset>/checksums and each selected track's file, in that order. A file whose
    stat record is the one `known` holds (a manifest's `source_files`) is not read again; the others
    are hashed on `workers` threads (0: one per usable CPU; hashlib reads and hashes without the GIL)."""
    known = known or {}
    rels = [TRACKS_CSV, f"fma_{subset}/checksums"]
    rels += [audio_path("", tid, subset).as_posix() for tid in track_ids]
    threads = min(workers or usable_cpus(), max(1, len(rels)))
    with ThreadPoolExecutor(threads) as pool:
        records = pool.map(lambda rel: _file_sha1(data_dir / rel, known.get(rel)), rels)
        return dict(zip(rels, records))


def source_fingerprint(files: dict[str, list]) -> str:
    """The SHA1 (SOURCE_RULE) over what `source_files` gives: the content of tracks.csv, checksums
    and every selected file, no path, time or inode (the same on every machine for the same data)."""
    h = hashlib.sha1()
    for rel, record in files.items():
        h.update(f"{rel}:{record[0]};".encode())
    return h.hexdigest()


def check_checksums(data_dir: Path, subset: str, files: dict[str, list], cfg: Config | None = None) -> None:
    """SourceError unless every selected file that is there has the SHA1 that fma_<subset>/checksums
    lists for it (FMA's `<sha1>  000/000002.mp3` lines; synth writes the same). No checksums file: no
    check. Refused, not skipped: a file that is not the one the set lists (damaged, replaced, or
    swapped with another track's) would be stored under its track's genre; the fix is to restore it."""
    listing = data_dir / f"fma_{subset}" / "checksums"
    if not _has_sha1(files.get(f"fma_{subset}/checksums", ["missing"])):
        return
    listed = {}
    for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():  # sha1sum's lines
        if len(fields := line.split(maxsplit=1)) == 2:
            listed[fields[1].strip().removeprefix("*")] = fields[0].lower()
    bad = []
    for rel, record in files.items():
        if rel.endswith(".mp3") and _has_sha1(record):
            want = listed.get(rel.removeprefix(f"fma_{subset}/"))
            if want != record[0]:
                bad.append((rel, record[0], want))
    if not bad:
        return
    rel, got, want = bad[0]
    says = f"{listing} lists {want}" if want else f"{listing} does not list it"
    count = ""
    if len(bad) > 1:
        others = ", ".join(b[0].split("/", 1)[1] for b in bad[1:4]) + (", ..." if len(bad) > 4 else "")
        count = f"; {len(bad)} files differ (also {others})"
    if cfg is not None and cfg.data.source == "synth":
        redo = shlex.join(["fmareport", "synth", str(data_dir), *synth_arguments(cfg), "--force"])
        fix = f"re-make the set with `{redo}`"
    else:
        fix = (
            f"restore fma_{subset} from fma_{subset}.zip: move {data_dir / f'fma_{subset}'} away and run "
            f"`fmareport fetch {data_dir} --only {subset}` (it extracts the zip again and checks every file)"
        )
    raise SourceError(
        f"{data_dir / rel} (track {int(Path(rel).stem)}): SHA1 {got}, but {says}: not the file the data set "
        f"lists (damaged, replaced, or swapped with another track's){count}: {fix}; nothing was decoded"
    )


def _has_sha1(record: list) -> bool:
    """Whether a `source_files` record holds a SHA1 (not missing, not a file, unreadable)."""
    return len(record[0]) == 40 and all(c in "0123456789abcdef" for c in record[0])


def store_settings(cfg: Config) -> dict:
    """What a store's fingerprint holds besides its source: subset, the store section, the decode
    rule's version, index.csv's columns and the decoders' versions."""
    return {
        "subset": cfg.data.subset,
        **cfg.store.model_dump(),  # the store's section: sample_rate, clip_samples, clip_rule, min_clip_fraction
        "decode_version": DECODE_VERSION,
        "index_columns": list(INDEX_COLUMNS),  # a store of another index is another store
        "decoders": decoder_versions(),
    }


def store_fingerprint(source: str, settings: dict) -> str:
    """The store's fingerprint: the SHA1 of its source fingerprint and its settings."""
    return hashlib.sha1(json.dumps({"source": source, **settings}, sort_keys=True).encode()).hexdigest()


def store_prefix(cfg: Config) -> str:
    """The start of the name of every store of cfg's subset and store settings; the name ends with
    12 digits of the fingerprint."""
    return f"{cfg.data.subset}-{cfg.store.sample_rate}hz-{cfg.store.clip_samples}-{cfg.store.clip_rule}-"


def known_sources(cfg: Config, data_dir: Path, stores: Iterable[Path] = ()) -> list[dict]:
    """The manifests of the complete stores that prepare(cfg) could reuse (cfg's store_root, names
    of cfg's settings) and of `stores`, made from `data_dir`: what their `source_files` say about
    the files they were made from, so that unchanged files are not hashed again. Unreadable ones
    are passed over: they only save work."""
    root = Path(cfg.run.store_root)
    folders = [*(sorted(root.glob(f"{store_prefix(cfg)}*")) if root.is_dir() else []), *map(Path, stores)]
    here, out, seen = str(data_dir.resolve()), [], set()
    for folder in folders:
        manifest = folder / "manifest.json"
        if folder.name.endswith(".partial") or manifest in seen:
            continue
        seen.add(manifest)
        try:
            m = read_json(manifest)
        except (OSError, ValueError):
            continue
        if isinstance(m, dict) and m.get("data_dir") == here and isinstance(m.get("source_files"), dict):
            out.append(m)
    return out


def current_fingerprint(cfg: Config, stores: Iterable[Path] = (), workers: int = 1) -> str:
    """The fingerprint prepare(cfg) would give its store now, from the data on disk, without
    decoding or writing anything: the book's test of which runs are current (fmareport.report.runs).
    Cheap where a store of these data is on disk (cfg's store_root, or `stores`): its manifest's
    `source_files` give the selected tracks (when tracks.csv is the same bytes) and the SHA1 of
    every file not changed since (stat record), so nothing is parsed or hashed. FileNotFoundError
    when the data set is not there; ConfigError for a synthetic set made with other settings."""
    data_dir = Path(cfg.run.data_dir)
    if not (data_dir / TRACKS_CSV).is_file():
        raise FileNotFoundError(f"{data_dir / TRACKS_CSV}: not found: the data set of data_dir is not on this machine")
    if cfg.data.source == "synth":
        check_synthetic_set(data_dir, cfg)
    manifests = known_sources(cfg, data_dir, stores)
    known = _known_records(manifests)
    csv = _file_sha1(data_dir / TRACKS_CSV, known.get(TRACKS_CSV))
    if len(csv) == 6:
        known[TRACKS_CSV] = csv  # read once
    # The selection is a function of tracks.csv's bytes and the subset: a store made of the same
    # tracks.csv lists it (its mp3s, in track_id order); else tracks.csv is read, once per process.
    same = [m for m in manifests if m.get("subset") == cfg.data.subset and _tracks_sha1(m) == csv[0]]
    if same:
        ids = [int(Path(rel).stem) for rel in same[0]["source_files"] if rel.endswith(".mp3")]
    else:
        ids = _selected(str(data_dir / TRACKS_CSV), _record_text(csv), cfg.data.subset)
    files = source_files(data_dir, cfg.data.subset, ids, known, workers)
    return store_fingerprint(source_fingerprint(files), store_settings(cfg))


def _tracks_sha1(manifest: dict) -> str | None:
    """The SHA1 of the tracks.csv a store was made from, as its manifest records it."""
    record = _record_of(manifest["source_files"].get(TRACKS_CSV))
    return record[0] if record else None


@functools.lru_cache(maxsize=8)
def _selected(tracks_csv: str, record: str, subset: str) -> list[int]:
    """The track ids a store of `subset` holds, from tracks.csv (`record`: its SHA1 and stat, the
    cache's key, so a changed file is read again)."""
    return select_tracks(load_tracks(tracks_csv), subset)[0].track_id.tolist()


def check_synthetic_set(data_dir: Path, cfg: Config) -> None:
    """ConfigError unless the synthetic set in data_dir was made with cfg's synth settings, and with
    the artists synth makes now (synth.ARTIST_TRACKS): a profile whose set changed must not train on
    the old one. (A set without synth's marker is not ours to judge and passes.)"""
    from .synth import ARTIST_TRACKS, made_with

    made = made_with(data_dir)
    if made is None:
        return
    want = cfg.synth.model_dump()
    differ = {flat_key("synth", k): (made.get(k), v) for k, v in want.items() if made.get(k) != v}
    reasons = [f"{k}: the set has {a!r}, the config {b!r}" for k, (a, b) in differ.items()]
    if (had := made.get("artist_tracks")) != ARTIST_TRACKS:  # not a config key: how synth cuts a set now
        had_text = "none (made before synthetic sets had artists)" if had is None else f"artists of {had}"
        reasons.append(f"artists of {ARTIST_TRACKS} tracks, the set has {had_text}")
    if reasons:
        what = ", ".join(reasons)
        redo = shlex.join(["fmareport", "synth", str(data_dir), *synth_arguments(cfg), "--force"])
        raise ConfigError(
            f"{data_dir} is a synthetic set made with other settings ({what}). Re-make it with "
            f"`{redo}` (make report does), or point data_dir elsewhere"
        )


def synth_arguments(cfg: Config) -> list[str]:
    """The `fmareport synth` options that make cfg's synthetic set (the Snakefile's synth job uses them)."""
    out = []
    for name, value in cfg.synth.model_dump().items():
        option = "--" + name.replace("_", "-")
        out += [option if value else f"--no-{option[2:]}"] if isinstance(value, bool) else [option, str(value)]
    return out


def ensure_data(cfg: Config, progress: bool = True) -> Path:
    """The data set's root; a synthetic one is made first if it is missing, and checked against
    cfg's synth settings whoever made it (this process, another that held the lock, a user)."""
    data_dir = Path(cfg.run.data_dir)
    tracks_csv = data_dir / "fma_metadata" / "tracks.csv"
    if cfg.data.source == "fma":
        if not tracks_csv.is_file():
            raise FileNotFoundError(
                f"{tracks_csv} not found: FMA is not in {data_dir}. Run "
                f"`fmareport fetch {data_dir}` (7.6 GB download) or set data_dir to your FMA copy"
            )
        return data_dir
    if not tracks_csv.is_file():
        from .synth import synthesize

        check_writable(data_dir.parent, "data_dir")  # where the set and its lock go: one line if it cannot be written
        with locked(data_dir.with_name(data_dir.name + ".lock")):  # one maker at a time; the others wait
            if not tracks_csv.is_file():  # another process may have made it while we waited
                log.info("synthesizing %s", data_dir)
                synthesize(data_dir, cfg.synth, progress=progress, workers=cfg.run.prepare_workers)
    check_synthetic_set(data_dir, cfg)  # after the lock: a set made with other settings while we waited is refused
    return data_dir


def prepare(cfg: Config, progress: bool = True) -> ClipStore:
    """Decode every track of cfg.data.subset once into a store under cfg.run.store_root; reuse a complete one."""
    data_dir = ensure_data(cfg, progress)
    audio_dir = data_dir / f"fma_{cfg.data.subset}"
    if not audio_dir.is_dir():
        raise FileNotFoundError(
            f"{audio_dir} not found: the audio of subset {cfg.data.subset!r} is not in {data_dir}"
            + (" (`fmareport fetch` gets fma_small)" if cfg.data.source == "fma" else "")
        )
    plan, left_out, dropped = select_tracks(load_tracks(data_dir / TRACKS_CSV), cfg.data.subset)
    if plan.empty:
        raise ValueError(f"{data_dir}: tracks.csv has no track of subset {cfg.data.subset!r} with a genre in {GENRES}")
    settings = store_settings(cfg)
    known = _known_records(known_sources(cfg, data_dir))
    files = source_files(data_dir, cfg.data.subset, plan.track_id.tolist(), known, cfg.run.prepare_workers)
    check_checksums(data_dir, cfg.data.subset, files, cfg)
    source = source_fingerprint(files)
    fingerprint = store_fingerprint(source, settings)
    name = store_prefix(cfg) + fingerprint[:12]
    root = Path(cfg.run.store_root)
    final = root / name
    partial = root / f"{name}.partial"
    with _store_lock(root, name, final):  # one builder per store at a time; the others wait, then reuse
        if (final / "manifest.json").is_file():
            log.info("reusing complete store %s", final)
        elif (partial / "manifest.json").is_file():  # finished, but killed before the rename
            _finish(partial, final)
        else:
            log.info("decoding %d tracks into %s", len(plan), final)
            kept, skipped, notes = _decode_store(partial, plan, data_dir, cfg, settings, progress)
            manifest = {
                "format": "fmareport clip store",
                "fingerprint": fingerprint,
                "name": name,
                **{k: v for k, v in settings.items() if k != "decoders"},
                "int16_scale": INT16_SCALE,
                "silence_peak": SILENCE_PEAK,
                "decoders": settings["decoders"],
                "data_dir": str(data_dir.resolve()),
                "data_source": cfg.data.source,
                "source_fingerprint": source,
                "source_fingerprint_rule": SOURCE_RULE,
                "n_tracks": len(kept),
                "n_selected": len(plan),
                "split_counts": {s: int((kept.split == s).sum()) for s in SPLITS},
                "counts": {g: {s: int(((kept.genre == g) & (kept.split == s)).sum()) for s in SPLITS} for g in GENRES},
                "skipped": skipped,
                "dropped": dropped,
                "decoder_notes": notes,
                "left_out": left_out,
                # Each source file's SHA1 (or why none) and the stat record it was read under: the
                # fingerprint's inputs, and what lets the next prepare, and the book, skip rereading it.
                "source_files": {rel: _record_text(record) for rel, record in files.items()},
                "files": _file_records(partial),  # last: audio.npy and index.csv are written
            }
            write_atomic(partial / "manifest.json", json.dumps(manifest, indent=1) + "\n")
            _finish(partial, final)
            log.info("stored %d tracks, skipped %d: %s", len(kept), len(skipped), final)
    return open_store(final, cfg.profile)  # checked after the lock: cells opening one store hash it side by side


@contextlib.contextmanager
def _store_lock(root: Path, name: str, final: Path) -> Iterator[None]:
    """Hold the store's lock (`root/<name>.lock`) for the block: builders take turns. Where the
    lock file cannot be made (a read-only disk: a store shared by another user), a complete store
    is read without it: a complete store is never written again (it appears whole, by one rename),
    so a reader needs no lock. Else StorageError: prepare would have to write there."""
    try:
        fd = take_lock(root / f"{name}.lock")
    except OSError as err:
        if (final / "manifest.json").is_file():
            log.info(
                "%s: cannot make the store's lock there (%s): reading the complete store without it", root, err.strerror
            )
            yield
            return
        raise StorageError(
            f"{root}: cannot write there ({err.strerror or err}), and the clip store {name} is not there yet: "
            "make the folder writable, or set store_root to a folder you can write to (a store made "
            "there elsewhere is read as it is)"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _decode_store(
    partial: Path, plan: pd.DataFrame, data_dir: Path, cfg: Config, settings: dict, progress: bool
) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """Decode the planned tracks into `partial` (audio.npy, index.csv) -> (the kept tracks, the skipped
    ones with their reason, the decoders' notes)."""
    paths = [str(audio_path(data_dir, tid, cfg.data.subset)) for tid in plan.track_id]
    results = _decode_all(partial, plan, paths, settings, cfg.run.prepare_workers, progress)
    ok = np.array([results[row][0] == "ok" for row in range(len(plan))])
    _compact(partial, ok)
    kept = plan[ok].reset_index(drop=True)
    kept.to_csv(partial / "index.csv", index=False)
    tid = [int(t) for t in plan.track_id]
    skipped = [
        {"track_id": tid[row], "reason": results[row][0], "detail": results[row][1]}
        for row in range(len(plan))
        if not ok[row]
    ]
    notes = [{"track_id": tid[row], "note": results[row][2]} for row in range(len(plan)) if results[row][2]]
    return kept, skipped, notes


def _file_records(folder: Path) -> dict[str, dict]:
    """{name: {"bytes": size, "sha1": hex digest}} of the STORE_FILES in `folder`: what open_store checks."""
    return {n: {"bytes": (folder / n).stat().st_size, "sha1": file_digest(folder / n)} for n in STORE_FILES}


def _finish(partial: Path, final: Path) -> None:
    """Drop the work files of a finished partial store and rename it to its final name."""
    for leftover in ("plan.json", "journal.jsonl", "rows.npy", "audio.npy.tmp"):
        (partial / leftover).unlink(missing_ok=True)
    if final.exists():  # never ours: a complete store would have been reused; nothing is deleted
        raise FileExistsError(
            f"{final} exists but is not a complete clip store (no manifest.json); it was not made by prepare "
            "(or was damaged by hand): move it away and run prepare again"
        )
    partial.rename(final)


def _check_space(folder: Path, store_bytes: int) -> None:
    """StorageError unless `folder`'s disk holds the store twice (rows, then the compacted audio.npy)
    with 1 GiB to spare."""
    folder.mkdir(parents=True, exist_ok=True)
    check_room(folder, 2 * store_bytes + (1 << 30), "the clip store (twice its size, plus 1 GiB)", "store_root")


def _writable_memmap(path: Path, shape: tuple[int, int] | None) -> np.memmap:
    """An int16 .npy memmap to write into: a new one of `shape`, or the one at `path` (shape None).
    Its bytes are reserved first (posix_fallocate): a write into a sparse memmap on a full disk is a
    SIGBUS with no message, here a StoreError naming the folder and the bytes (docs/faults.md, case 11).
    """
    try:
        out = np.lib.format.open_memmap(path, mode="w+" if shape else "r+", dtype=np.int16, shape=shape)
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        finally:
            os.close(fd)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        size = 2 * shape[0] * shape[1] if shape else path.stat().st_size
        raise StoreError(
            f"{path.parent}: no room on its disk for {path.name}, {size:,} bytes ({os.strerror(err.errno)}): "
            "free space there or set store_root elsewhere, then run prepare again (it resumes)"
        ) from None
    return out


def _decode_all(
    partial: Path, plan: pd.DataFrame, paths: list[str], settings: dict, workers: int, progress: bool
) -> dict[int, tuple[str, str, str]]:
    """Decode paths[row] for every row of plan into partial/rows.npy ((n_selected, clip_samples) int16),
    resuming from the journal (a JSON line per track, after its row); audio.npy in `partial`: done.
    Returns row -> (status, detail, decoder notes), status "ok" or a skip reason."""
    plan_json = json.dumps({"track_ids": plan.track_id.tolist(), **settings}, sort_keys=True)
    journal_path, rows_path = partial / "journal.jsonl", partial / "rows.npy"
    resumable = (partial / "plan.json").is_file() and (partial / "plan.json").read_text() == plan_json
    if not resumable or not (rows_path.is_file() or (partial / "audio.npy").is_file()):
        # Ours only if it holds a plan (prepare writes it first, as its marker) or nothing; else refused.
        if partial.exists() and not remove_owned(partial, "plan.json"):
            if partial.is_symlink() or any(partial.iterdir()):
                raise FileExistsError(f"{partial} exists and was not left by prepare (no plan.json): move it away")
            partial.rmdir()
        _check_space(partial.parent, len(plan) * settings["clip_samples"] * 2)
        mark_owned(partial, "plan.json", plan_json)
    text = journal_path.read_text() if journal_path.is_file() else ""
    lines = text.splitlines()[: None if text.endswith("\n") else -1]  # a line torn by a kill is dropped
    journal_path.write_text("".join(line + "\n" for line in lines))
    results: dict[int, tuple[str, str, str]] = {}
    for entry in map(json.loads, lines):
        results[entry["row"]] = (entry["status"], entry["detail"], entry.get("notes", ""))
    todo = [row for row in range(len(plan)) if row not in results]
    if not todo:
        return results
    shape = (len(plan), settings["clip_samples"])
    rows = _writable_memmap(rows_path, None if rows_path.is_file() else shape)
    args = (settings["sample_rate"], settings["clip_samples"], settings["clip_rule"], settings["min_clip_fraction"])
    jobs = [(row, paths[row], *args) for row in todo]
    bar = tqdm(total=len(plan), initial=len(plan) - len(todo), desc="prepare", unit="track", disable=not progress)
    with open(journal_path, "a") as journal:
        for row, clip, status, detail, notes in imap_unordered(_decode_job, jobs, workers, len(jobs)):
            if clip is not None:
                rows[row] = clip
            if notes:  # the decoder's own words about a damaged file, with the file's name
                log.warning("%s: the decoder said: %s", paths[row], notes)
            entry = {"row": row, "track_id": int(plan.track_id[row]), "status": status, "detail": detail}
            journal.write(json.dumps({**entry, "notes": notes}) + "\n")
            journal.flush()
            results[row] = (status, detail, notes)
            bar.update(1)
    bar.close()
    rows.flush()
    del rows
    return results


def _compact(partial: Path, ok: np.ndarray) -> None:
    """partial/rows.npy -> partial/audio.npy holding only the rows marked ok, in order."""
    out = partial / "audio.npy"
    if out.is_file():  # done before a kill
        return
    rows_path = partial / "rows.npy"
    if ok.all():
        rows_path.rename(out)
        return
    rows = np.load(rows_path, mmap_mode="r")
    tmp = partial / "audio.npy.tmp"
    audio = _writable_memmap(tmp, (int(ok.sum()), rows.shape[1]))
    kept = np.flatnonzero(ok)
    for start in range(0, len(kept), 256):  # 256 rows: 512 MB at the paper's 10**6 samples
        audio[start : start + 256] = rows[kept[start : start + 256]]
    audio.flush()
    del audio, rows
    tmp.rename(out)
    rows_path.unlink()

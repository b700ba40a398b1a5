"""The clip store: decode rule, contents, skipped tracks, reuse, new settings, kill and resume."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import yaml

from fmareport.config import Config, ConfigError, SynthSettings
from fmareport.data.audio import decode_clip
from fmareport.data.fma import GENRES, SPLITS, audio_path, load_tracks
from fmareport.data.pool import THREAD_ENV, imap_unordered
from fmareport.data.store import open_store, prepare, select_tracks, source_files, source_fingerprint
from fmareport.data.synth import ARTIST_TRACKS, BAD_CASES, MARKER, TrackMeta, synthesize, tracks_table
from fmareport.files import file_digest

REPO = Path(__file__).resolve().parents[1]
STORE_FILES = ["audio.npy", "index.csv", "manifest.json"]


def test_tiny_store_contents(tiny_store, tiny_data):
    s = tiny_store
    assert sorted(p.name for p in s.path.iterdir()) == STORE_FILES
    assert isinstance(s.audio, np.memmap) and s.audio.dtype == np.int16 and s.audio.shape == (40, 8192)
    assert (s.sample_rate, s.clip_samples, s.fingerprint) == (8000, 8192, s.manifest["fingerprint"])
    assert list(s.index.columns) == ["track_id", "genre", "label", "split", "artist_id"]
    assert s.labels.dtype == np.int64 and s.artists.dtype == np.int64
    assert (s.labels == [GENRES.index(g) for g in s.index.genre]).all()
    assert s.index.track_id.is_monotonic_increasing

    tracks = load_tracks(tiny_data / "fma_metadata" / "tracks.csv")
    good = tracks[(tracks["set", "subset"] == "small") & ~tracks.index.isin(list(BAD_CASES))]
    assert set(s.index.track_id) == set(good.index)  # no bad case, no medium/large track
    assert dict(zip(s.index.track_id, s.index.split)) == good["set", "split"].astype(str).to_dict()
    assert dict(zip(s.index.track_id, s.artists)) == good["artist", "id"].to_dict()  # tracks.csv's artists
    assert [len(s.split_indices(split)) for split in SPLITS] == [32, 4, 4]
    assert sorted(np.concatenate([s.split_indices(split) for split in SPLITS])) == list(range(40))
    for genre, row in s.manifest["counts"].items():
        for split, n in row.items():
            assert n == ((s.index.genre == genre) & (s.index.split == split)).sum()
    assert s.manifest["split_counts"] == {"training": 32, "validation": 4, "test": 4}
    assert s.manifest["left_out"]["not_in_subset"] == 16

    # Row 0 by the documented rule, computed here from the mp3: mono, soxr, first 8192 samples.
    x, rate = sf.read(audio_path(tiny_data, s.index.track_id[0]), dtype="float32")
    mono = soxr.resample(x.mean(axis=1), rate, 8000, quality="HQ")[:8192]
    assert np.array_equal(s.audio[0], np.clip(np.round(mono * 32768), -32768, 32767).astype(np.int16))
    assert (np.abs(s.audio.astype(np.int32)).max(axis=1) > 300).all()  # every clip holds sound


def test_each_bad_case_is_skipped_with_its_reason(tiny_store):
    reasons = {s["track_id"]: s["reason"] for s in tiny_store.manifest["skipped"]}
    expected = {
        "short": "too short",
        "silent": "silent",
        "empty": "undecodable",
        "garbage": "undecodable",
        "missing": "missing",
    }
    assert reasons == {tid: expected[kind] for tid, kind in BAD_CASES.items()}
    assert all(s["detail"] for s in tiny_store.manifest["skipped"])
    assert not set(reasons) & set(tiny_store.index.track_id)


def test_real_track_2(fma_real):
    path = fma_real / "fma_small" / "000" / "000002.mp3"
    x, _ = sf.read(path, dtype="float32")  # (1321967, 2) at 44.1 kHz
    mono = x.mean(axis=1)
    for rule, start in (("start", 0), ("center", (1_321_967 - 10**6) // 2)):
        clip = decode_clip(path, 44100, 10**6, rule)  # the paper's clip: no resampling
        expected = np.clip(np.round(mono[start : start + 10**6] * 32768), -32768, 32767).astype(np.int16)
        assert clip.shape == (10**6,) and np.array_equal(clip, expected)


def real_data_dir(fma_real, root):
    """An FMA-format folder holding the real tracks 2 (30 s) and 10 (2 s)."""
    rows = [
        TrackMeta(2, "small", "training", "Hip-Hop", [21], duration=168, bit_rate=256000),
        TrackMeta(10, "small", "training", "Pop", [10], duration=161, bit_rate=192000),
    ]
    (root / "fma_metadata").mkdir(parents=True)
    tracks_table(rows).to_csv(root / "fma_metadata" / "tracks.csv")
    shutil.copytree(fma_real / "fma_small", root / "fma_small")
    return root


def test_real_short_track_is_padded_or_skipped_by_the_rule(fma_real, tmp_path):
    data = real_data_dir(fma_real, tmp_path / "fma")
    cfg = Config(
        data_source="fma",
        data_dir=str(data),
        store_root=str(tmp_path / "stores"),
        sample_rate=8000,
        clip_samples=24000,
        min_clip_fraction=0.5,
        prepare_workers=1,
    )  # 3 s clips; track 10 is 2 s
    store = prepare(cfg, progress=False)
    assert list(store.index.track_id) == [2, 10] and store.manifest["skipped"] == []
    short = store.audio[1]  # 2 s at 8 kHz = 16000 samples, then zeros
    assert np.abs(short[15000:16000]).max() > 0 and not short[16000:].any()

    store = prepare(cfg.replace(min_clip_fraction=0.8), progress=False)  # needs 19200
    assert list(store.index.track_id) == [2]
    (skip,) = store.manifest["skipped"]
    assert skip["track_id"] == 10 and skip["reason"] == "too short" and "16000 samples" in skip["detail"]


def test_a_second_prepare_reuses_the_store(tiny_config, tiny_store, caplog):
    mtime = (tiny_store.path / "audio.npy").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="fmareport.data.store"):
        again = prepare(tiny_config, progress=False)
    assert again.path == tiny_store.path
    assert "reusing complete store" in caplog.text and "decoding" not in caplog.text
    assert (tiny_store.path / "audio.npy").stat().st_mtime_ns == mtime


def test_new_settings_make_a_new_store(tiny_config, tiny_store, tiny_data):
    center = prepare(tiny_config.replace(clip_rule="center"), progress=False)
    assert center.path != tiny_store.path and center.path.parent == tiny_store.path.parent
    assert "center" in center.path.name and center.fingerprint != tiny_store.fingerprint
    assert (tiny_store.path / "manifest.json").is_file()  # the old one stays
    path = audio_path(tiny_data, center.index.track_id[3])
    assert np.array_equal(center.audio[3], decode_clip(path, 8000, 8192, "center"))
    assert not np.array_equal(center.audio[3], tiny_store.audio[3])


def test_a_synthetic_set_made_before_it_had_artists_is_refused(tiny_config, tmp_path):
    """Its tracks are artists of one track each (random ids): prepare stops, saying so and how to
    re-make it, rather than report intervals over artists it does not have."""
    cfg = tiny_config.replace(
        data_dir=str(tmp_path / "synth"), store_root=str(tmp_path / "stores"), synth_tracks_per_genre=1,
        synth_seconds=0.5, synth_sample_rate=8000, synth_bad_cases=False, clip_samples=2048, segment_samples=1024,
    )  # fmt: skip
    root = synthesize(
        cfg.run.data_dir,
        SynthSettings(tracks_per_genre=1, seconds=0.5, sample_rate=8000, bad_cases=False),
        progress=False,
        workers=1,
    )
    marker = json.loads((root / MARKER).read_text())
    assert marker["artist_tracks"] == ARTIST_TRACKS
    (root / MARKER).write_text(json.dumps({k: v for k, v in marker.items() if k != "artist_tracks"}))
    with pytest.raises(
        ConfigError,
        match=r"artists of 4 tracks, the set has none \(made before synthetic sets had artists\)\)\. Re-make it with `fmareport synth .* --force`",
    ):
        prepare(cfg, progress=False)
    assert not (tmp_path / "stores").exists()
    (root / MARKER).write_text(json.dumps(marker))
    assert len(prepare(cfg, progress=False).index) == 8


def fingerprint_of(data_dir, ids, known=None) -> str:
    return source_fingerprint(source_files(data_dir, "small", ids, known, workers=1))


def test_source_fingerprint_follows_the_data_not_its_path(tiny_data, tmp_path):
    ids = select_tracks(load_tracks(tiny_data / "fma_metadata" / "tracks.csv"), "small")[0].track_id.to_numpy()
    copy = shutil.copytree(tiny_data, tmp_path / "copy")
    assert fingerprint_of(copy, ids) == fingerprint_of(tiny_data, ids)
    victim = audio_path(copy, ids[0])
    victim.write_bytes(victim.read_bytes()[:-10])
    assert fingerprint_of(copy, ids) != fingerprint_of(tiny_data, ids)


def test_source_fingerprint_reads_again_only_the_files_changed_since(tiny_data, tmp_path, monkeypatch):
    """A manifest's `source_files` spare rereading a file whose stat record is unchanged; a file
    rewritten with the same size and mtime, or moved onto the path (a swap), is read again."""
    from fmareport.data import store

    ids = select_tracks(load_tracks(tiny_data / "fma_metadata" / "tracks.csv"), "small")[0].track_id.tolist()
    copy = shutil.copytree(tiny_data, tmp_path / "copy")
    known = source_files(copy, "small", ids, workers=1)
    read = []
    monkeypatch.setattr(store, "file_digest", lambda path: read.append(path) or file_digest(path))
    assert source_files(copy, "small", ids, known, workers=1) == known and read == []
    a, b, c = (audio_path(copy, tid) for tid in ids[:3])
    st = a.stat()
    a.write_bytes(bytes(st.st_size))  # rewritten in place at its size, its mtime put back: the ctime tells
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(b, tmp_path / "b.mp3")  # b and c swapped by renames: each path has the other's inode
    os.rename(c, b)
    os.rename(tmp_path / "b.mp3", c)
    again = source_files(copy, "small", ids, known, workers=1)
    assert sorted(read) == sorted([a, b, c])
    rel = {p: p.relative_to(copy).as_posix() for p in (a, b, c)}
    assert again[rel[a]][0] == file_digest(a) != known[rel[a]][0]
    assert (again[rel[b]][0], again[rel[c]][0]) == (known[rel[c]][0], known[rel[b]][0])
    assert {k: v for k, v in again.items() if k not in rel.values()} == {
        k: v for k, v in known.items() if k not in rel.values()
    }


def test_current_fingerprint_is_the_one_prepare_gives_and_reads_nothing_the_store_records(
    tiny_config, tiny_store, tmp_path, monkeypatch
):
    """What the book asks of every run (fmareport.report.runs): the fingerprint prepare would give now.
    With the store on disk, tracks.csv is not parsed and no file is read; without it, both are."""
    from fmareport.data import store

    assert store.current_fingerprint(tiny_config) == tiny_store.fingerprint
    store._selected.cache_clear()  # tracks.csv's selection, kept per process
    read, parsed = [], []
    monkeypatch.setattr(store, "file_digest", lambda path: read.append(path) or file_digest(path))
    monkeypatch.setattr(store, "load_tracks", lambda path: parsed.append(path) or load_tracks(path))
    assert store.current_fingerprint(tiny_config) == tiny_store.fingerprint and read == parsed == []
    elsewhere = tiny_config.replace(store_root=str(tmp_path / "none"))
    assert store.current_fingerprint(elsewhere) == tiny_store.fingerprint
    assert len(read) == 2 + 45 - 1 and len(parsed) == 1  # tracks.csv, checksums, every small file but the missing one
    assert store.current_fingerprint(elsewhere, [tiny_store.path]) == tiny_store.fingerprint and len(read) == 46
    with pytest.raises(FileNotFoundError, match=r"tracks\.csv: not found: the data set of data_dir is not on"):
        store.current_fingerprint(tiny_config.replace(data_dir=str(tmp_path / "gone")))


def prepare_command(profile, data_dir, store_root):
    return [
        sys.executable,
        "-m",
        "fmareport.cli",
        "prepare",
        str(data_dir),
        "--profile",
        str(profile),
        "--out",
        str(store_root),
        "--workers",
        "1",
    ]


def journal_lines(partial: Path) -> int:
    try:
        return (partial / "journal.jsonl").read_text().count("\n")
    except FileNotFoundError:
        return 0


def kill_after(cmd, partial: Path, tracks: int) -> int:
    """Run `cmd` and SIGKILL it as soon as its journal holds `tracks` lines; return the lines then."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while journal_lines(partial) < tracks and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"prepare ended before the kill: {proc.stderr.read()[-2000:]}"
    return journal_lines(partial)


def test_a_killed_prepare_resumes_to_an_identical_store(tiny_config, tiny_store, tmp_path):
    """SIGKILL from outside, twice, then a clean run: the store is byte-identical to one never killed."""
    profile = tmp_path / "tiny.yaml"
    profile.write_text(yaml.safe_dump(tiny_config.to_dict()))
    root = tmp_path / "stores"
    partial = root / f"{tiny_store.path.name}.partial"
    cmd = prepare_command(profile, tiny_config.run.data_dir, root)

    before = 0
    for tracks in (5, 15):  # killed twice: the second run resumes
        journaled = kill_after(cmd, partial, tracks)
        assert before <= journaled < 45  # progress kept, the work not done
        assert not (root / tiny_store.path.name).exists()  # nothing looks complete
        with open(partial / "journal.jsonl", "a") as journal:  # as if killed while writing a line
            journal.write('{"row": 39, "track_id"')
        before = journaled

    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == str(root / tiny_store.path.name)
    assert not partial.exists()
    resumed = root / tiny_store.path.name
    for name in STORE_FILES:
        assert (resumed / name).read_bytes() == (tiny_store.path / name).read_bytes(), name
    assert len(json.loads((resumed / "manifest.json").read_text())["skipped"]) == len(BAD_CASES)


def test_a_store_killed_before_its_rename_is_finished(tiny_config, tiny_store, tmp_path):
    root = tmp_path / "stores"
    partial = shutil.copytree(tiny_store.path, root / f"{tiny_store.path.name}.partial")
    (partial / "journal.jsonl").write_text("")  # work files not yet removed
    store = prepare(tiny_config.replace(store_root=str(root)), progress=False)
    assert store.path == root / tiny_store.path.name and not partial.exists()
    assert sorted(p.name for p in store.path.iterdir()) == STORE_FILES


def test_missing_fma_says_to_fetch(tmp_path):
    cfg = Config(data_source="fma", data_dir=str(tmp_path / "fma"), store_root=str(tmp_path / "stores"))
    with pytest.raises(FileNotFoundError, match=r"Run `fmareport fetch .*fma`"):
        prepare(cfg, progress=False)


def test_open_store_refuses_an_incomplete_folder(tmp_path, tiny_store):
    with pytest.raises(FileNotFoundError, match="not a complete clip store"):
        open_store(tmp_path)
    with pytest.raises(ValueError, match="expected one of"):
        tiny_store.split_indices("train")


def _worker_threads(_job) -> dict:
    """Run in a decode worker: its thread variables and the threads numpy's BLAS really starts."""
    import numpy  # noqa: F401  (loads BLAS with this process's settings)
    from threadpoolctl import threadpool_info

    blas = sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
    return {"env": {k: os.environ.get(k) for k in THREAD_ENV}, "blas": blas}


def test_decode_workers_run_one_blas_thread_each(monkeypatch):
    """Snakemake sets OPENBLAS_NUM_THREADS etc. to a job's threads (all cores for prepare); each of
    prepare's one-per-CPU workers must not start that many BLAS threads of its own."""
    pytest.importorskip("threadpoolctl")
    for name in THREAD_ENV:
        monkeypatch.setenv(name, str(os.cpu_count()))
    seen = list(imap_unordered(_worker_threads, range(2), workers=2, n_jobs=2))
    assert [s["env"] for s in seen] == [dict.fromkeys(THREAD_ENV, "1")] * 2
    assert all(s["blas"] in ([1], []) for s in seen), seen

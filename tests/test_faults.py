"""The fault corpus: careless or hostile input never loses data and never lies.

Each test is one case of the corpus: the input, the exit status or exception, the
message (it names the file, the key or row, and what to do), and that nothing outside the
run's own folders changed. Numbers in the test names follow the list in docs/faults.md.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import snakemake_plan
from fakes import of_config

from fmareport import disk, errors, experiment, notebook, train
from fmareport.cli import main
from fmareport.config import Config, ConfigError, SynthSettings, load_cell, load_config, profile_path
from fmareport.data.audio import Skip, decode_clip
from fmareport.data.fetch import FetchError, extract, fetch
from fmareport.data.fma import TracksError, load_tracks
from fmareport.data.store import StoreError, _decode_job, ensure_data, prepare, select_tracks
from fmareport.data.synth import BAD_CASES, MARKER, TrackMeta, synthesize, tracks_table
from fmareport.files import locked, mark_owned, remove_owned
from fmareport.report import book
from fmareport.workflow import STALE_MARK, synth_stamp

REPO = Path(__file__).resolve().parents[1]


def state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and mtime: what 'nothing changed' compares."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def victim(tmp_path) -> Path:
    """A folder of the user's that no run may touch."""
    folder = tmp_path / "victim"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious.txt").write_text("keep me")
    (folder / "sub" / "data.bin").write_bytes(b"\0" * 100)
    return folder


# --- 1. names are never paths -------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["../../../../tmp/evil", "/tmp/x/victim", "table1/../x", "", "a/b/c", "Table1/X"])
def test_01_a_cell_name_is_not_a_path(tmp_path, cell):
    path = tmp_path / "cell.yaml"
    path.write_text(f"cell: {cell!r}\n")
    with pytest.raises(ConfigError, match=r"cell\.yaml: key 'cell': .* is not a cell"):
        load_config(profile_path("smoke"), path)
    with pytest.raises(ConfigError, match=r"not a cell name"):
        notebook.config("smoke", cell, {})


@pytest.mark.parametrize("profile", ["../profiles/smoke", "/etc/passwd", "", "smoke/../../x"])
def test_01_a_profile_name_is_not_a_path(profile):
    with pytest.raises(ConfigError, match=r"not a profile name"):
        load_cell(profile, "table1/raw_whole")


def test_01_fmareport_config_refuses_a_cell_that_climbs_out(tmp_path, capsys):
    path = tmp_path / "cell.yaml"
    path.write_text("cell: ../../../../tmp/evil\n")
    assert main(["config", "smoke", str(path)]) == 2
    assert "key 'cell': '../../../../tmp/evil' is not a cell" in capsys.readouterr().err


@pytest.fixture(scope="module")
def papermill_with_a_path_as_cell(tmp_path_factory):
    """The experiment notebook run by papermill (--log-output, as the workflow's cell job runs it)
    with a user's folder as its cell, in an empty folder: (the run, the folder it ran in, the user's
    folder, that folder's state before). One kernel for the two tests below."""
    work = tmp_path_factory.mktemp("papermill-path")
    folder = work / "victim"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious.txt").write_text("keep me")
    (folder / "sub" / "data.bin").write_bytes(b"\0" * 100)
    before = state(folder)
    done = subprocess.run(
        [sys.executable, "-m", "papermill", str(REPO / "book/experiment.ipynb"), str(work / "out.ipynb"),
         "-p", "profile", "smoke", "-p", "cell", str(folder), "--log-output"],
        cwd=work, capture_output=True, text=True,
    )  # fmt: skip
    return done, work, folder, before


@pytest.mark.slow
def test_01_papermill_with_a_path_as_cell_touches_nothing(papermill_with_a_path_as_cell):
    done, work, victim, before = papermill_with_a_path_as_cell
    assert done.returncode != 0
    assert "not a cell name" in done.stderr
    assert state(victim) == before
    assert sorted(p.name for p in work.iterdir()) == ["out.ipynb", "victim"]  # no data, results, build


# --- 2. synth checks before it touches anything; --force replaces only its own sets ---------------


@pytest.fixture
def synth_set(tmp_path) -> Path:
    return synthesize(
        tmp_path / "set",
        SynthSettings(tracks_per_genre=1, seconds=0.5, sample_rate=8000, bad_cases=False),
        progress=False,
        workers=1,
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--sample-rate", "12345"], "option --sample-rate: got 12345 (int), expected one of 8000"),
        (["--tracks-per-genre", "0"], "option --tracks-per-genre: must be > 0, got 0"),
        (["--seconds", "-1"], "option --seconds: must be in (0, 600], got -1.0"),
        (["--test-fraction", "0.9", "--validation-fraction", "0.1"], "leave no training tracks"),
        (["--test-fraction", "0"], "option --test-fraction: must be in (0, 1), got 0.0"),
        (["--validation-fraction", "nan"], "option --validation-fraction: must be in (0, 1), got nan"),
        (["--tracks-per-genre", "1", "--test-fraction", "0.01"], "give no test track at all"),  # 0.08 test tracks
    ],
)
def test_02_synth_force_with_a_bad_argument_deletes_nothing(synth_set, bad, message, capsys):
    before = state(synth_set)
    assert main(["synth", str(synth_set), "--force", *bad]) == 2
    assert state(synth_set) == before
    err = capsys.readouterr().err
    assert "fmareport synth:" in err and message in err


def test_02_synth_force_refuses_a_folder_it_did_not_write(victim, capsys):
    before = state(victim)
    assert main(["synth", str(victim), "--force", "--tracks-per-genre", "1", "--seconds", "0.5"]) == 2
    assert f"no {MARKER}" in capsys.readouterr().err
    assert state(victim) == before


def test_02_synth_force_replaces_its_own_set(synth_set):
    again = synthesize(
        synth_set,
        SynthSettings(tracks_per_genre=1, seconds=0.5, sample_rate=8000, seed=1, bad_cases=False),
        progress=False,
        workers=1,
        force=True,
    )
    assert again == synth_set and (synth_set / MARKER).is_file()
    assert '"seed": 1' in (synth_set / MARKER).read_text()


def test_02_a_cell_never_trains_on_a_synthetic_set_made_with_other_settings(synth_set, tmp_path):
    """The profile changed its set (here: the test share) but an older set is in data_dir: the run
    stops naming the key, both values and the command that re-makes it; the old set is untouched."""
    before = state(synth_set)
    cfg = load_config(profile_path("smoke")).replace(
        data_dir=str(synth_set), store_root=str(tmp_path / "stores"), synth_tracks_per_genre=1, synth_seconds=0.5,
        synth_sample_rate=8000, synth_bad_cases=False, synth_test_fraction=0.5, clip_samples=4096,
    )  # fmt: skip
    with pytest.raises(ConfigError) as err:
        prepare(cfg, progress=False)
    assert "synth_test_fraction: the set has 0.1, the config 0.5" in str(err.value)
    assert f"fmareport synth {synth_set} --tracks-per-genre 1" in str(err.value)
    assert "--test-fraction 0.5" in str(err.value) and "--force" in str(err.value)
    assert state(synth_set) == before and not (tmp_path / "stores").exists()
    # the same settings as the set's: it is used as it is
    assert len(prepare(cfg.replace(synth_test_fraction=0.1), progress=False).index) == 8


def test_02_the_workflows_synth_stamp_changes_for_a_set_made_with_other_settings(synth_set, tmp_path):
    """The stamp the synth job takes as input (workflow.synth_stamp): beside a set that fits, a new
    stamp is as old as the set (nothing runs again); beside a set made with other settings (by
    papermill, by hand, by an older version), it gains a line naming them and is newer than the
    set (the job re-makes it), once: the next start leaves it alone."""
    cfg = load_config(profile_path("smoke")).replace(
        data_dir=str(synth_set), synth_tracks_per_genre=1, synth_seconds=0.5, synth_sample_rate=8000,
        synth_bad_cases=False,
    )  # fmt: skip
    tracks_csv, stamp = synth_set / "fma_metadata" / "tracks.csv", tmp_path / "build" / "synth.txt"
    made = tracks_csv.stat().st_mtime_ns - 10**9  # made a second ago: later writes are later by the clock
    os.utime(tracks_csv, ns=(made, made))
    synth_stamp(stamp, cfg)
    text = stamp.read_text()
    assert STALE_MARK not in text and f"fmareport synth {synth_set} --tracks-per-genre 1" in text
    assert stamp.stat().st_mtime_ns == tracks_csv.stat().st_mtime_ns

    other = cfg.replace(synth_test_fraction=0.5)  # the profile now wants another set
    synth_stamp(stamp, other)
    assert f"{STALE_MARK}{{" in stamp.read_text() and '"test_fraction": 0.1' in stamp.read_text()
    assert stamp.stat().st_mtime_ns > tracks_csv.stat().st_mtime_ns
    written = stamp.stat().st_mtime_ns
    synth_stamp(stamp, other)  # a second start before the set is re-made: the same stamp
    assert stamp.stat().st_mtime_ns == written

    synthesize(synth_set, other.synth, progress=False, workers=1, force=True)  # what the job runs
    synth_stamp(stamp, other)
    assert stamp.stat().st_mtime_ns == written and stamp.stat().st_mtime_ns < tracks_csv.stat().st_mtime_ns
    assert json.loads((synth_set / MARKER).read_text())["test_fraction"] == 0.5


# --- 3. a notebook that is not its JSON's run is flagged; one run per cell at a time -------------


def test_03_the_book_flags_a_notebook_of_another_run():
    run_id = "0123456789abcdef0123456789abcdef"
    result = of_config(Config(profile="tiny", cell="table1/raw_whole")).model_copy(update={"run_id": run_id})
    good = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                outputs=[nbformat.v4.new_output("stream", name="stdout", text=f"run {run_id}: wrote x.json\n")]
            )
        ]
    )
    assert book.notebook_mismatch(good, result) is None
    other = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                outputs=[
                    nbformat.v4.new_output(
                        "stream", name="stdout", text="run ffffffffffffffffffffffffffffffff: wrote x\n"
                    )
                ]
            )
        ]
    )
    assert "another (or an unfinished) run" in book.notebook_mismatch(other, result)
    failed = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                outputs=[nbformat.v4.new_output("error", ename="KeyboardInterrupt", evalue="", traceback=[])]
            )
        ]
    )
    assert "stopped with an error" in book.notebook_mismatch(failed, result)


def test_03_a_second_run_of_the_same_cell_is_refused(tiny_config, tiny_store, tmp_path):
    cfg = tiny_config.replace(results_dir=str(tmp_path / "results"), build_dir=str(tmp_path / "build"))
    paths = experiment.CellPaths.of(cfg)
    with experiment.cell_lock(paths):  # the first run holds it
        with pytest.raises(experiment.CellBusyError, match="is already running"):
            experiment.run_cell(cfg, progress=False)
    assert not paths.results.exists() and not paths.checkpoints.exists()


def test_03_checkpoints_are_deleted_only_with_their_marker(victim):
    before = state(victim)
    assert not remove_owned(victim, experiment.CHECKPOINT_MARKER)
    assert state(victim) == before


# --- 4. relative paths are relative to the working directory ------------------------------------


def test_04_book_results_dir_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert book.results_dir_for("smoke", "some/results") == tmp_path / "some" / "results"


# --- 5. config refuses what cannot run or would fake results --------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("n_fft: 255\n", r"key 'n_fft': must be even"),
        ("n_fft: 8192\n", r"key 'n_fft': the window of 8192 samples is longer than a 4096-sample segment"),
        ("seeds: [0, 0]\n", r"key 'seeds': each seed once .* \[0\] repeated"),
        ("clip_samples: 1000000000000\n", r"key 'clip_samples': must be in \(0, 16777216\], got 1000000000000"),
        ("profile: ''\n", r"key 'profile': '' is not a name"),
        ("epochs: '3'\n", r"key 'epochs': got '3' \(str\), expected an integer"),
    ],
)
def test_05_config_refuses(tmp_path, text, message):
    path = tmp_path / "cell.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(profile_path("smoke"), path)


def test_05_numbers_as_yaml_1_2_reads_them(tmp_path):
    path = tmp_path / "cell.yaml"
    path.write_text("lr: 1e-3\n")
    assert load_config(profile_path("smoke"), path).train.lr == 1e-3


def test_05_the_documented_override_forms_work():
    assert load_cell("smoke", "table1/raw_whole", "seeds: [0, 1, 2, 3, 4]").schedule.seeds == [0, 1, 2, 3, 4]
    assert load_cell("smoke", "table1/raw_whole", {"seeds": [0, 1, 2, 3, 4]}).schedule.seeds == [0, 1, 2, 3, 4]


def test_05_a_params_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "cell.yaml"
    path.write_bytes(b"epochs: 2\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"cell\.yaml: not UTF-8 text \(byte \d+: 0xe9\)"):
        load_config(profile_path("smoke"), path)


# --- 6. tracks.csv -------------------------------------------------------------------------------


def tracks_csv(tmp_path: Path, edit=None) -> Path:
    """A small valid tracks.csv (written as FMA's is), as text for `edit` to break."""
    rows = [TrackMeta(tid, "small", "training", "Rock", [12]) for tid in (2, 5, 10)]
    path = tmp_path / "fma_metadata" / "tracks.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    tracks_table(rows).to_csv(path)
    if edit:
        path.write_bytes(edit(path.read_bytes()))
    return path


def test_06_a_valid_tracks_csv_reads(tmp_path):
    tracks = load_tracks(tracks_csv(tmp_path))
    assert list(tracks.index) == [2, 5, 10] and tracks["track", "genres"].iloc[0] == [12]


def replace_in_row(k: int, old: bytes | None, new: bytes):
    """An edit that replaces the first `old` (None: the first date) in data row k (1-based; 3 header lines first)."""

    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        if old is None:
            lines[2 + k] = re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", new, lines[2 + k], count=1)
        else:
            lines[2 + k] = lines[2 + k].replace(old, new, 1)
        return b"\n".join(lines)

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: b"", r"the file is empty"),
        (replace_in_row(2, b"5,", b"abc,"), r"data row 2: track_id 'abc' is not a positive integer"),
        (replace_in_row(3, b"10,", b"5,"), r"track_id 5 is listed on data rows 2, 3"),
        (
            replace_in_row(1, None, b"yesterday"),
            r"data row 1 \(track_id 2\), column \('album', 'date_created'\): "
            r"'yesterday' is not a date",
        ),
        (
            replace_in_row(2, b"[12]", b"\"__import__('os').system('touch PWNED')\""),
            r"data row 2 \(track_id 5\), column \('track', 'genres'\): .* is not a list literal",
        ),
        (replace_in_row(3, b"Rock", b"R\xffck"), r"not UTF-8 text: byte 0xff on line 6"),
    ],
    ids=["empty", "track_id", "duplicate", "date", "code", "utf8"],
)
def test_06_a_broken_tracks_csv_names_file_row_and_column(tmp_path, edit, message):
    path = tracks_csv(tmp_path, edit)
    with pytest.raises(TracksError, match=message) as err:
        load_tracks(path)
    assert str(path) in str(err.value)
    assert not (tmp_path / "PWNED").exists() and not Path("PWNED").exists()


def test_06_prepare_on_a_broken_tracks_csv_exits_1_naming_it(tmp_path, capsys):
    data = tmp_path / "fma"
    tracks_csv(data, replace_in_row(2, b"5,", b"abc,"))
    (data / "fma_small").mkdir()
    profile = tmp_path / "p.yaml"
    profile.write_text(f"profile: p\ndata_source: fma\ndata_dir: {data}\nstore_root: {tmp_path / 'stores'}\n")
    assert main(["prepare", "--profile", str(profile)]) == 1
    assert "tracks.csv: data row 2: track_id 'abc'" in capsys.readouterr().err
    assert not (tmp_path / "stores").exists() or not any((tmp_path / "stores").glob("*/manifest.json"))


def test_06_tracks_of_an_unknown_genre_or_subset_are_dropped_with_their_reason(tmp_path):
    rows = [
        TrackMeta(2, "small", "training", "Rock", [12]),
        TrackMeta(3, "small", "test", "Blues", [3]),
        TrackMeta(5, "small", "training", "Pop", [10]),
    ]
    table = tracks_table(rows)
    table.loc[5, ("set", "subset")] = "tiny"
    path = tmp_path / "tracks.csv"
    table.to_csv(path)
    plan, left_out, dropped = select_tracks(load_tracks(path), "small")
    assert plan.track_id.tolist() == [2]
    assert dropped == [
        {"track_id": 3, "reason": "genre not in the 8", "detail": "genre_top is 'Blues'"},
        {
            "track_id": 5,
            "reason": "unknown subset",
            "detail": "('set', 'subset') is 'tiny', not one of ('small', 'medium', 'large')",
        },
    ]
    assert left_out["unknown_subset"] == 1 and left_out["genre_top_not_in_genres"] == 1


def test_06_prepare_never_synthesises_into_a_folder_it_did_not_make(tmp_path, victim):
    before = state(victim)
    for source in ("synth", "fma"):
        cfg = load_cell(
            "smoke", None, {"data_source": source, "data_dir": str(victim), "store_root": str(tmp_path / "stores")}
        )
        with pytest.raises((FileExistsError, FileNotFoundError), match="not empty|fmareport fetch"):
            prepare(cfg, progress=False)
    assert state(victim) == before


# --- 7. decoder messages name what is wrong, and the file ----------------------------------------


def test_07_empty_and_garbage_mp3s_are_named_for_what_they_are(tmp_path):
    empty, garbage = tmp_path / "empty.mp3", tmp_path / "garbage.mp3"
    empty.write_bytes(b"")
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(Skip) as err:
        decode_clip(empty, 8000, 4096)
    assert err.value.args == ("undecodable", "the file is empty (0 bytes)")
    with pytest.raises(Skip) as err:
        decode_clip(garbage, 8000, 4096)
    assert "5,000 bytes, not in a format libsndfile recognises as audio" in err.value.args[1]
    assert "does not exist" not in err.value.args[1]


def test_07_a_damaged_mp3s_decoder_notes_name_the_file(tiny_data, tiny_store, tmp_path, caplog):
    music = [p for p in (tiny_data / "fma_small").rglob("*.mp3") if int(p.stem) not in BAD_CASES]  # not the garbage
    source = max(music, key=lambda p: p.stat().st_size)
    data = bytearray(source.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 600] = bytes(600)  # a hole of zeros mid-stream: mpg123 resyncs
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(data))
    row, clip, status, detail, notes = _decode_job((0, str(damaged), 8000, 8192, "start", 0.5))
    assert status == "ok" and clip is not None
    assert "resync" in notes.lower() or "illegal" in notes.lower(), notes


# --- 9. fetch refuses archives it cannot extract whole ---------------------------------------------


def zip_of(path: Path, entries: list[tuple[str, bytes | None, int]]) -> Path:
    """A zip with (name, data or None for a folder, unix mode) entries."""
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on a duplicate name: writing one is the point
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, (2017, 4, 1, 0, 0, 0))
            info.external_attr = mode << 16
            zf.writestr(info, data or b"")
    return path


@pytest.mark.parametrize(
    "entries, message",
    [
        (
            [("fma_metadata/x", b"file", stat.S_IFREG | 0o644), ("fma_metadata/x/y", b"under", stat.S_IFREG | 0o644)],
            r"'fma_metadata/x' is a file in the archive and also a folder",
        ),
        (
            [("fma_metadata/link", b"/etc", stat.S_IFLNK | 0o777), ("fma_metadata/link/passwd", b"x", stat.S_IFREG)],
            r"refusing entry 'fma_metadata/link': not a plain file or folder",
        ),
        (
            [("fma_metadata/a.csv", b"1", stat.S_IFREG | 0o644), ("fma_metadata/a.csv", b"2", stat.S_IFREG | 0o644)],
            r"'fma_metadata/a.csv' appears twice",
        ),
    ],
    ids=["file-and-folder", "symlink", "twice"],
)
def test_09_an_extraction_conflict_is_refused_with_nothing_left(tmp_path, entries, message):
    data = tmp_path / "data"
    data.mkdir()
    archive = zip_of(tmp_path / "fma_metadata.zip", entries)
    with pytest.raises(FetchError, match=message):
        extract(archive, data, progress=False)
    assert list(data.iterdir()) == []


def test_09_a_data_folder_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FetchError, match=r"is a file: choose another folder"):
        fetch(tmp_path / "file" / "sub", base_url="http://127.0.0.1:9/", progress=False)
    assert main(["fetch", str(tmp_path / "file" / "sub"), "--base-url", "http://127.0.0.1:9/"]) == 1
    assert "cannot be a folder" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "x"


# --- 10. the workflow quotes paths it puts into shell commands --------------------------------------


@pytest.mark.slow
def test_10_the_snakefile_quotes_the_data_dir(tmp_path):
    shutil.copytree(REPO / "params", tmp_path / "params")
    profile = tmp_path / "params" / "profiles" / "smoke.yaml"
    evil = "data/my set; touch PWNED"
    profile.write_text(profile.read_text().replace("data_dir: data/synth-smoke", f"data_dir: '{evil}'"))
    out = snakemake_plan(tmp_path, "results", config={"profile": "smoke"})  # the shell commands, printed
    assert f"synth '{evil}'" in out
    assert not (tmp_path / "PWNED").exists()


# --- 11. the store and the data are what prepare wrote and read --------------------------------------


def copy_of_store(store, cfg, tmp_path) -> tuple[Path, object]:
    """A copy of the tiny store under tmp_path/stores (never damage the session's), and a config that reuses it."""
    copy = shutil.copytree(store.path, tmp_path / "stores" / store.path.name)
    return copy, cfg.replace(store_root=str(copy.parent))


def overwrite_data(path: Path) -> None:
    """audio.npy's samples replaced by random bytes of the same size; its .npy header kept."""
    offset = path.stat().st_size - 2 * np.load(path, mmap_mode="r").size
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(np.random.default_rng(0).bytes(path.stat().st_size - offset))


def edit_index(row: int, column: str, value) -> callable:
    """index.csv with data row `row` (0-based) given `value` in `column`."""

    def edit(path: Path) -> None:
        index = pd.read_csv(path)
        index.loc[row, column] = value
        index.to_csv(path, index=False)

    return edit


def swap_index_rows(path: Path) -> None:
    """index.csv's first two rows' track ids swapped (the same size, every label still right)."""
    index = pd.read_csv(path)
    index.loc[[0, 1], "track_id"] = index.track_id[[1, 0]].to_numpy()
    index.to_csv(path, index=False)


def drop_files_record(path: Path) -> None:
    """manifest.json as a store made before stores recorded their files' sizes and SHA1s."""
    manifest = json.loads(path.read_text())
    del manifest["files"]
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "name, damage, message",
    [
        ("audio.npy", lambda p: p.write_bytes(np.random.default_rng(0).bytes(p.stat().st_size)), "not a readable .npy"),
        ("audio.npy", overwrite_data, r"changed since prepare wrote it \(SHA1 [0-9a-f]{40}, the manifest says"),
        (
            "audio.npy",
            lambda p: os.truncate(p, p.stat().st_size // 2),
            r"327,744 bytes, the manifest says 655,488 bytes",
        ),
        ("index.csv", edit_index(3, "label", 5), r"data row 4 \(track_id \d+\) has genre '\w+', label 5"),
        (
            "index.csv",
            edit_index(3, "label", 9),
            r"label 9, split 'training'; a label is the genre's place in .* \(0-7\)",
        ),
        ("index.csv", swap_index_rows, "changed since prepare wrote it"),
        ("manifest.json", drop_files_record, r"records no size and SHA1 of \('audio.npy', 'index.csv'\)"),
    ],
    ids=["audio-random", "audio-samples", "audio-truncated", "label", "label-out-of-range", "rows-swapped", "old"],
)
def test_11_a_store_changed_since_prepare_is_refused(tiny_config, tiny_store, tmp_path, name, damage, message):
    """A cell opens its store through prepare: a damaged one stops it, naming the file and the rebuild."""
    store, cfg = copy_of_store(tiny_store, tiny_config, tmp_path)
    damage(store / name)
    before = state(store)
    with pytest.raises(StoreError, match=message) as err:
        prepare(cfg, progress=False)
    assert str(store / name) in str(err.value) if name != "manifest.json" else str(store) in str(err.value)
    assert f"delete the folder {store} (prepare made it) and run `fmareport prepare --profile tiny`" in str(err.value)
    assert "\n" not in str(err.value)
    assert state(store) == before and sorted(store.parent.iterdir()) == [store, store.with_name(store.name + ".lock")]


def test_11_fmareport_prepare_on_a_damaged_store_exits_1(tiny_config, tiny_store, tmp_path, capsys):
    store, cfg = copy_of_store(tiny_store, tiny_config, tmp_path)
    edit_index(0, "label", 7)(store / "index.csv")
    profile = tmp_path / "tiny.yaml"
    profile.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["prepare", "--profile", str(profile)]) == 1
    assert f"{store / 'index.csv'}: data row 1" in capsys.readouterr().err


def flock_waiters(lock: Path) -> int:
    """How many flock() calls are blocked on `lock` (Linux: the '->' lines of /proc/locks)."""
    inode = f":{lock.stat().st_ino} "
    return sum("->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines())


def test_11_a_synthetic_set_made_while_waiting_for_the_lock_is_checked(tmp_path):
    """Two prepares of different synth settings on one new data folder: the second, once it gets the
    lock, finds the first one's set and must refuse it, not train on it."""
    cfg = Config(data_dir=str(tmp_path / "set"), store_root=str(tmp_path / "stores"), prepare_workers=1,
                 synth_tracks_per_genre=1, synth_seconds=0.5, synth_sample_rate=8000, synth_bad_cases=False)  # fmt: skip
    lock = tmp_path / "set.lock"
    outcome = {}

    def second():
        try:
            outcome["data"] = ensure_data(cfg.replace(synth_test_fraction=0.5), progress=False)
        except ConfigError as err:
            outcome["error"] = err

    with locked(lock):  # the first prepare, making its set
        thread = threading.Thread(target=second)
        thread.start()
        deadline = time.monotonic() + 30
        while not flock_waiters(lock) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert flock_waiters(lock) == 1, "the second prepare never waited for the lock"
        synthesize(cfg.run.data_dir, cfg.synth, progress=False, workers=1)
    thread.join(30)
    assert "synth_test_fraction: the set has 0.1, the config 0.5" in str(outcome.get("error")), outcome
    assert not (tmp_path / "stores").exists()


def test_11_a_full_disk_is_an_error_naming_the_folder_not_sigbus(tiny_config, tiny_store, tmp_path, monkeypatch):
    """posix_fallocate reserves the rows before any memmap write (a write into a sparse memmap on a
    full disk is SIGBUS); ENOSPC there is the full disk, as the kernel reports it."""

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    cfg = tiny_config.replace(store_root=str(tmp_path / "stores"))
    with pytest.raises(StoreError) as err:
        prepare(cfg, progress=False)
    partial = tmp_path / "stores" / f"{tiny_store.path.name}.partial"
    assert str(err.value) == (
        f"{partial}: no room on its disk for rows.npy, 737,280 bytes (No space left on device): "
        "free space there or set store_root elsewhere, then run prepare again (it resumes)"
    )
    assert not (tmp_path / "stores" / tiny_store.path.name).exists()  # nothing looks complete
    assert not (partial / "journal.jsonl").exists() or not (partial / "journal.jsonl").read_text()


FILL_DISK_AND_PREPARE = """
import os, sys, yaml
from pathlib import Path
from fmareport.config import Config
from fmareport.data import store
cfg = Config(**yaml.safe_load(Path(sys.argv[1]).read_text()))
store._check_space = lambda folder, n: folder.mkdir(parents=True, exist_ok=True)  # passed: the disk filled after it
disk = os.statvfs(cfg.run.store_root)
Path(cfg.run.store_root, "filler").write_bytes(bytes(disk.f_bavail * disk.f_frsize - 100_000))
store.prepare(cfg, progress=False)
"""


def test_11_a_really_full_disk_stops_prepare_with_the_message(tiny_config, tiny_store, tmp_path):
    """The same on a real full file system: a 2 MiB tmpfs (skipped where this user may not mount
    one), prepare in a process of its own. Before the reservation it died there of SIGBUS."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", disk], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        profile = tmp_path / "tiny.yaml"
        profile.write_text(yaml.safe_dump(tiny_config.replace(store_root=str(disk / "stores")).to_dict()))
        (disk / "stores").mkdir()
        run = subprocess.run(
            [sys.executable, "-c", FILL_DISK_AND_PREPARE, profile], cwd=REPO, capture_output=True, text=True
        )
    finally:
        subprocess.run(["umount", disk], check=True)
    assert run.returncode == 1, f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert ".partial: no room on its disk for rows.npy, 737,280 bytes (No space left on device)" in run.stderr


def test_11_a_track_that_is_a_folder_is_skipped_as_not_a_file(tmp_path):
    folder = tmp_path / "000002.mp3"
    folder.mkdir()
    with pytest.raises(Skip) as err:
        decode_clip(folder, 8000, 4096)
    assert err.value.args == ("not a file", f"{folder} is a folder, not a file")
    fifo = tmp_path / "000005.mp3"
    os.mkfifo(fifo)
    with pytest.raises(Skip) as err:  # never opened: opening a FIFO would wait for a writer
        decode_clip(fifo, 8000, 4096)
    assert err.value.args[0] == "not a file" and "not a regular file" in err.value.args[1]
    with pytest.raises(Skip, match="no file"):
        decode_clip(tmp_path / "000010.mp3", 8000, 4096)


# --- 14. errors at the boundary: one line naming the file or key and the fix, and an exit status ------


@pytest.fixture
def tiny_profile(tiny_config, tiny_store, tmp_path) -> Path:
    """A profile YAML of the tiny set (its store is reused) with a small net and its results and
    build folders under tmp_path: `fmareport run --profile <it> --cell table1/raw_whole` trains two
    steps per epoch."""
    cfg = tiny_config.replace(
        channels=8, dense=[16], results_dir=str(tmp_path / "results"), build_dir=str(tmp_path / "build")
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


def run_tiny(profile: Path, *overrides: str) -> int:
    """`fmareport run` of the tiny profile's table1/raw_whole cell with `--set` overrides."""
    sets = [a for o in overrides for a in ("--set", o)]
    return main(["run", "--profile", str(profile), "--cell", "table1/raw_whole", *sets])


def tiny_cell(profile: Path, **overrides) -> experiment.CellPaths:
    return experiment.CellPaths.of(load_cell(str(profile), "table1/raw_whole", overrides))


def last_line(err: str) -> str:
    """What the boundary printed: the last line of stderr (the progress bars come before it)."""
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def test_14_each_error_has_its_exit_status():
    cases = [
        (errors.ConfigError("x"), 2),
        (errors.CommandError("x"), 1),
        (errors.StorageError("x"), 1),
        (train.DivergedError("x"), 1),
        (train.CheckpointError("x"), 1),
        (experiment.CellBusyError("x"), 1),
        (errors.CommandNotFound("x"), 127),
        (errors.Interrupted("x"), 130),
        (KeyboardInterrupt(), 130),
    ]
    assert [errors.exit_status(err) for err, _ in cases] == [status for _, status in cases]
    assert ConfigError is errors.ConfigError and issubclass(ConfigError, ValueError)
    assert errors.one_line(KeyboardInterrupt()) == errors.INTERRUPTED
    assert errors.one_line(errors.CommandError("a\nb")) == "a b"


@pytest.mark.usefixtures("one_torch_thread")
def test_14_ctrl_c_in_training_exits_130_naming_the_epoch_a_rerun_resumes_from(tiny_profile, monkeypatch, capsys):
    real = train.epoch_steps

    def ctrl_c_in_epoch_2(train_rows, cfg, seed, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(train_rows, cfg, seed, epoch)

    monkeypatch.setattr(train, "epoch_steps", ctrl_c_in_epoch_2)
    assert run_tiny(tiny_profile, "epochs=3") == 130
    paths = tiny_cell(tiny_profile)
    checkpoint = paths.checkpoints / "seed0.pt"
    assert last_line(capsys.readouterr().err) == (
        f"fmareport run: interrupted at seed 0 epoch 2: rerun the same command to resume from epoch 2 "
        f"(checkpoint {checkpoint})"
    )
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1
    assert not list(paths.checkpoints.glob("*.tmp")) and not paths.results.exists()

    monkeypatch.setattr(train, "epoch_steps", real)
    assert run_tiny(tiny_profile, "epochs=3") == 0  # resumes: epochs 2 and 3 only
    result = json.loads(paths.results.read_text())
    assert [h["epoch"] for h in result["seeds"][0]["history"]] == [1, 2, 3]
    cfg = load_cell(str(tiny_profile), "table1/raw_whole", {"epochs": 3})
    assert paths.results.stat().st_size <= experiment.results_bytes(cfg, len(result["test"]["labels"]))


def test_14_ctrl_c_before_training_exits_130_with_one_line(tiny_profile, monkeypatch, capsys):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "prepare", ctrl_c)  # while the store is made
    assert run_tiny(tiny_profile) == 130
    assert capsys.readouterr().err == f"fmareport run: {errors.INTERRUPTED}\n"


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_14_a_ctrl_c_while_a_checkpoint_is_saved_is_raised_after_it(tmp_path):
    """A Ctrl-C inside torch.save cut its write into "enforce fail ... unexpected pos", reported as a full
    disk (exit 1, seen once in a fresh clone's suite): it is held until the checkpoint is whole. An
    ignored SIGINT (a shell's background job, as pytest may run) stays ignored."""
    state = {"model": {"w": torch.zeros(1000)}}
    path, before = tmp_path / "seed0.pt", signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with errors.interrupt_after():
                os.kill(os.getpid(), signal.SIGINT)  # delivered now, inside the block
                train.save_checkpoint(path, state)
                saved = True
        assert saved and torch.equal(torch.load(path, weights_only=True)["model"]["w"], state["model"]["w"])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with errors.interrupt_after():
            os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # ignored, nothing raised
    finally:
        signal.signal(signal.SIGINT, before)


def test_14_a_real_ctrl_c_exits_130_and_the_rerun_resumes_where_it_said(tiny_profile, tmp_path):
    """SIGINT to a real `fmareport run` once its first checkpoint exists (5 to 10 s: torch's import)."""
    command = [sys.executable, "-m", "fmareport.cli", "run", "--profile", str(tiny_profile),
               "--cell", "table1/raw_whole", "--set", "epochs=100000"]  # fmt: skip
    checkpoint = tiny_cell(tiny_profile).checkpoints / "seed0.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A shell's background job ignores SIGINT, and a Python started so keeps ignoring it: undo that.
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err[-3000:]
    line = last_line(err)
    epoch = int(re.search(r"resume from epoch (\d+) \(checkpoint ", line).group(1))
    assert line.startswith("fmareport run: interrupted at seed 0 epoch ") and str(checkpoint) in line
    assert torch.load(checkpoint, weights_only=True)["epoch"] == epoch - 1
    assert run_tiny(tiny_profile, f"epochs={epoch}") == 0  # the one epoch it said, then the test
    result = json.loads(tiny_cell(tiny_profile).results.read_text())
    assert [h["epoch"] for h in result["seeds"][0]["history"]] == list(range(1, epoch + 1))


@pytest.mark.usefixtures("one_torch_thread")
def test_14_fewer_epochs_than_the_checkpoint_exits_2_naming_the_fix(tiny_profile, tiny_store, capsys):
    paths = tiny_cell(tiny_profile)
    cfg = load_cell(str(tiny_profile), "table1/raw_whole", {"epochs": 2})
    checkpoints = mark_owned(paths.checkpoints, experiment.CHECKPOINT_MARKER)  # as run_cell makes it
    train.train_seed(cfg, tiny_store, 0, checkpoint_dir=checkpoints, progress=False)  # as if killed after epoch 2
    before = state(paths.checkpoints)
    assert run_tiny(tiny_profile, "epochs=1") == 2
    assert last_line(capsys.readouterr().err) == (
        f"fmareport run: key 'epochs': 1, but {paths.checkpoints / 'seed0.pt'} is a checkpoint at epoch 2: set "
        f"epochs to 2 or more to resume it, or delete its folder {paths.checkpoints} (fmareport made it) to train "
        "afresh"
    )
    assert state(paths.checkpoints)["seed0.pt"] == before["seed0.pt"] and not paths.results.exists()


@pytest.mark.usefixtures("one_torch_thread")
def test_14_a_diverged_run_exits_1_with_one_line(tiny_profile, monkeypatch, capsys):
    real = train.F.cross_entropy
    monkeypatch.setattr(train.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    assert run_tiny(tiny_profile) == 1
    line = last_line(capsys.readouterr().err)
    assert line.startswith("fmareport run: seed 0: the training loss became nan at epoch 1") and "smaller lr" in line
    assert not tiny_cell(tiny_profile).results.exists()


def test_14_a_busy_cell_exits_1_with_one_line(tiny_profile, capsys):
    paths = tiny_cell(tiny_profile)
    with experiment.cell_lock(paths):  # another run holds it
        assert run_tiny(tiny_profile) == 1
    assert last_line(capsys.readouterr().err) == (
        f"fmareport run: cell 'raw_whole' is already running (lock {paths.build / 'lock'} is held): "
        "wait for that run to finish"
    )
    assert not paths.checkpoints.exists() and not paths.results.exists()


@pytest.mark.usefixtures("one_torch_thread")
def test_14_a_full_disk_while_saving_a_checkpoint_names_it_and_keeps_the_last_one(tiny_profile, monkeypatch, capsys):
    real = torch.save

    def disk_full_at_epoch_2(obj, f, *args, **kwargs):
        if obj["epoch"] == 2:
            f.write(b"half a checkpoint")
            raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 1024 vs 960")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_epoch_2)
    assert run_tiny(tiny_profile, "epochs=2") == 1
    checkpoint = tiny_cell(tiny_profile).checkpoints / "seed0.pt"
    line = last_line(capsys.readouterr().err)
    assert line.startswith(f"fmareport run: {checkpoint}: saving the checkpoint failed (RuntimeError: [enforce fail")
    assert re.search(r"needs about [\d.]+ [KMG]iB and its disk has [\d,.]+ [KMG]iB free: make room there", line), line
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["epoch"] == 1 and not list(checkpoint.parent.glob("*.tmp"))  # the last one, whole; no leftover
    assert checkpoint.stat().st_size <= train.checkpoint_bytes(saved["model"])


@pytest.mark.usefixtures("one_torch_thread")
def test_14_an_unwritable_results_folder_stops_the_run_before_training(tiny_profile, tmp_path, monkeypatch, capsys):
    """Any user can be root (a container), where a chmod'ed folder stays writable: a path under a file is
    a folder no one can write."""
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(experiment, "train_seed", lambda *a, **k: pytest.fail("trained before the check"))
    assert run_tiny(tiny_profile, f"results_dir={tmp_path / 'file' / 'results'}") == 1
    folder = tmp_path / "file" / "results" / "tiny" / "table1"
    assert last_line(capsys.readouterr().err) == (
        f"fmareport run: {folder}: cannot write there (Not a directory): make it writable, or set results_dir "
        "to a folder you can write to"
    )
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.usefixtures("one_torch_thread")
def test_14_a_disk_without_room_for_the_checkpoints_stops_the_run_before_training(tiny_profile, monkeypatch, capsys):
    monkeypatch.setattr(experiment, "train_seed", lambda *a, **k: pytest.fail("trained before the check"))
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 1000)
    assert run_tiny(tiny_profile) == 1
    paths = tiny_cell(tiny_profile)
    line = last_line(capsys.readouterr().err)
    assert line.startswith(f"fmareport run: {paths.checkpoints}: the checkpoints need about ")
    assert re.search(r"its disk has 1,000 bytes free: free [\d.]+ [KMG]iB there, or set build_dir to a folder on a disk "
                     r"with room$", line), line  # fmt: skip
    assert not list(paths.checkpoints.glob(f"{disk.PROBE}*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a usable GPU gives the paper profile its device")
def test_14_a_gpu_profile_without_a_gpu_exits_1_with_one_line(tmp_path, capsys):
    sets = ["--set", f"results_dir={tmp_path / 'results'}", "--set", f"build_dir={tmp_path / 'build'}"]
    assert main(["run", "--profile", "paper", "--cell", "table1/raw_whole", *sets]) == 1
    assert re.fullmatch(
        r"fmareport run: profile 'paper', device auto: no usable CUDA device \(.*--set device=cpu\); .*"
        r"\(make report TORCH_INDEX=https://download.pytorch.org/whl/cu126\)\n",
        capsys.readouterr().err,
    )
    assert not (tmp_path / "results").exists()  # stopped before the store and the folders


def test_14_check_writable_deletes_only_its_own_probe(tmp_path, victim):
    before = state(victim)
    assert disk.check_writable(victim, "results_dir") == victim
    assert state(victim) == before
    assert disk.check_writable(tmp_path / "new" / "folder", "build_dir").is_dir()


def test_14_on_gpu_with_a_command_that_does_not_exist_exits_127(tmp_path, capsys):
    locks = tmp_path / "locks"
    assert main(["on-gpu", "--lock-dir", str(locks), "--", "/nonexistent"]) == 127
    assert capsys.readouterr().err == (
        "fmareport on-gpu: command not found: /nonexistent (not an executable file, nor a program on PATH)\n"
    )
    assert not locks.exists()  # no GPU was claimed


def test_14_on_gpu_refuses_a_poll_that_is_not_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["on-gpu", "--lock-dir", str(tmp_path / "locks"), "--poll", "0", "--", "true"])
    assert done.value.code == 2
    assert "argument --poll: must be above 0, got 0" in capsys.readouterr().err
    assert not (tmp_path / "locks").exists()


@pytest.mark.parametrize("base_url", ["notaurl", "ftp://example.org/fma", "/data/fma"])
def test_14_fetch_refuses_a_base_url_that_is_not_a_url(tmp_path, base_url, capsys):
    with pytest.raises(SystemExit) as done:
        main(["fetch", str(tmp_path / "data"), "--base-url", base_url])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --base-url: {base_url!r} is not an http://, https:// or file:// URL" in err
    assert not (tmp_path / "data").exists()


def test_14_book_refuses_a_root_without_its_config(tmp_path, victim, capsys):
    before = state(victim)
    for root in (tmp_path / "nonexistent", victim):
        assert main(["book", "--root", str(root), "--no-build"]) == 2
        assert capsys.readouterr().err.startswith(f"fmareport book: --root {root}: not a book root (no _config.yml")
    assert not (tmp_path / "nonexistent").exists() and state(victim) == before


@pytest.mark.parametrize("tracks", ["-5", "0"])
def test_14_summary_refuses_a_number_of_tracks_that_is_not_positive(tracks, capsys):
    with pytest.raises(SystemExit) as done:
        main(["summary", "--profile", "smoke", "--tracks", tracks, "--no-memory"])
    assert done.value.code == 2
    assert f"argument --tracks: must be above 0, got {tracks}" in capsys.readouterr().err


def test_14_the_notebook_shows_an_fmareport_error_as_its_one_line():
    """short_tracebacks (the experiment notebook's second cell) in a real IPython shell: our error is
    one line, a bug keeps its traceback."""
    code = textwrap.dedent(
        """
        from IPython.core.interactiveshell import InteractiveShell
        from fmareport import errors
        shell = InteractiveShell.instance(colors="NoColor")
        errors.short_tracebacks(shell)
        ours = shell.run_cell("from fmareport.errors import ConfigError\\nraise ConfigError('a.yaml: fix')")
        print("=== bug")
        bug = shell.run_cell("1 / 0")
        print("=== failed", not ours.success, not bug.success)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    ours, bug = done.stdout.split("=== bug")
    assert "ConfigError: a.yaml: fix" in ours and "Traceback" not in ours and "f()" not in ours
    assert "ZeroDivisionError" in bug and "----> 1 1 / 0" in bug
    assert "=== failed True True" in bug


@pytest.mark.slow
def test_14_papermill_logs_the_notebooks_error_as_its_one_line(papermill_with_a_path_as_cell):
    """What the workflow's cell log (papermill's stderr) ends with when the notebook stops."""
    done, _, victim, _ = papermill_with_a_path_as_cell
    assert done.returncode == 1
    tail = done.stderr[done.stderr.index('Exception encountered at "In [') :].splitlines()
    assert [line for line in tail[1:] if line.strip()] == [
        "An exception has occurred, use %tb to see the full traceback.",
        f"ConfigError: cell '{victim}': not a cell name (e.g. table1/raw_whole: lower-case letters, digits, "
        "'_' and '-', one '/' at most)",
    ]

"""Which runs the book shows (fmareport.report.runs): runs of other settings or of cells no longer
expected, diverged runs, and the profile a plain build picks. (The cell list and the settings stamps
the workflow reruns cells by: fmareport.workflow, tests/test_workflow.py.)

Results here are validated results (tests/fakes.py) with the config that `load_cell` really
gives for a smoke cell: the comparison is against the repository's params files, or those of a
working directory (`smoke_work`: the smoke profile on a synthetic set small enough to make here,
whose store fingerprint `store.current_fingerprint` computes from the data on disk).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from pathlib import Path

import pytest
from fakes import of_config

from fmareport.config import from_dict, load_cell
from fmareport.data.store import current_fingerprint, ensure_data
from fmareport.report import runs
from fmareport.results import CellResults
from fmareport.workflow import differing_keys, expected_cells

REPO = Path(__file__).resolve().parents[1]
TINY_SMOKE = {  # the smoke profile's synthetic set, smaller: 8 tracks of 0.5 s
    "synth_tracks_per_genre: 5": "synth_tracks_per_genre: 1",
    "synth_seconds: 2.5": "synth_seconds: 0.5",
    "synth_sample_rate: 22050": "synth_sample_rate: 8000",
    "synth_bad_cases: true": "synth_bad_cases: false",
}


def result(
    cell: str, losses=(2.0,), store="f" * 40, of: str | None = None, workdir: Path | None = None, **changes
) -> CellResults:
    """A result of `cell` with the config the smoke cell `of` (default: `cell`) gives in `workdir`
    (default: the repository's params), changed by `changes`, on the store of fingerprint `store`; one
    training loss per epoch, every seed alike."""
    with contextlib.chdir(workdir or Path.cwd()):
        cfg = from_dict(load_cell("smoke", of or cell).to_dict() | changes | {"cell": cell})
    return of_config(cfg, losses=losses, store_fingerprint=store)


@pytest.fixture(scope="module")
def smoke_work(tmp_path_factory) -> tuple[Path, str]:
    """(a working directory with its own params/, whose smoke profile's synthetic set is made in its
    data/, the fingerprint of the store prepare would make of it)."""
    work = tmp_path_factory.mktemp("work")
    shutil.copytree(REPO / "params", work / "params")
    profile = work / "params" / "profiles" / "smoke.yaml"
    text = profile.read_text()
    for old, new in TINY_SMOKE.items():
        assert old in text
        text = text.replace(old, new)
    profile.write_text(text)
    return work, fingerprint_in(work)


def fingerprint_in(work: Path) -> str:
    """The store prepare would make now for the smoke profile in `work` (its set made first if missing)."""
    with contextlib.chdir(work):
        cfg = load_cell("smoke", "table1/raw_whole").replace(prepare_workers=1)
        ensure_data(cfg, progress=False)
        return current_fingerprint(cfg)


def test_a_result_of_a_cell_the_profile_does_not_run_is_not_shown():
    statuses = {
        s.cell: s
        for s in runs.run_statuses(
            "smoke", {"ablations/train_fraction_25": result("ablations/train_fraction_25")}, REPO
        )
    }
    left = statuses["ablations/train_fraction_25"]
    assert not left.shown and left.label == "other settings: not among the cells profile 'smoke' runs (its key 'cells')"


def test_keys_that_change_no_number_are_not_differences():
    cfg = load_cell("smoke", "table1/raw_whole")
    moved = cfg.to_dict() | {"results_dir": "/elsewhere", "build_dir": "b", "prepare_workers": 7}
    assert differing_keys(moved, cfg) == {}
    assert differing_keys(moved | {"epochs": 3, "lr": 0.01}, cfg) == {"epochs": (3, 1), "lr": (0.01, 5e-4)}


@pytest.mark.parametrize(
    "losses, diverged",
    [
        ((2.0, 1.7e19), True),  # lr 1e9: the case
        ((2.0, 1.2), False),
        ((2.0, 19.0), False),  # bad, but under 10 x its start (and 10 x ln 8 = 20.8)
        ((25.0,), True),  # one epoch: above 10 x ln 8
        ((2.1,), False),
        ((30.0, 25.0), True),  # never below 10 x chance
        ((1.0, 9.0), False),
        ((1.0, 11.0), True),  # 11 x where it started
    ],
)
def test_a_run_diverged_when_its_last_loss_is_far_above_its_start_and_chance(losses, diverged):
    assert runs.CHANCE_LOSS == pytest.approx(math.log(8))
    assert runs.diverged(result("table1/raw_whole", losses, epochs=len(losses))) == ([0] if diverged else [])


def test_statuses_name_every_expected_cell_and_keep_other_settings_out(smoke_work):
    work, today = smoke_work
    results = {
        "table1/raw_whole": result("table1/raw_whole", store=today, workdir=work),
        "table1/both_whole": result("table1/both_whole", (2.0, 1.8, 1.5), epochs=3, lr=0.01, workdir=work),
        "table1/raw_segmented": result("table1/raw_segmented", store="e" * 40, workdir=work),
        "table1/spectrogram_whole": result("table1/spectrogram_whole", losses=(1.7e19,), store=today, workdir=work),
        "table1/spectrogram_segmented": result("table1/spectrogram_segmented", store=today, workdir=work),
    }
    statuses = {s.cell: s for s in runs.run_statuses("smoke", results, work)}
    assert sorted(statuses) == expected_cells(REPO / "params", "smoke")
    assert statuses["table1/raw_whole"].shown and statuses["table1/raw_whole"].label == "current"
    other = statuses["table1/both_whole"]
    assert not other.shown and other.label == "other settings: epochs 3 (params: 1), lr 0.01 (params: 0.0005)"
    assert statuses["table1/raw_segmented"].label == (
        f"other store: ran on store eeeeeeeeeeee; the data and settings give store {today[:12]} today"
    )
    div = statuses["table1/spectrogram_whole"]
    assert div.shown and div.diverged == (0,) and div.label == "current; diverged (seed 0)"
    assert statuses["table2/both_segmented_dropout"].label == "not run"


def test_a_changed_data_set_makes_the_runs_on_the_old_store_other_store_however_many(smoke_work, tmp_path):
    """Issue 32: tracks.csv edited (one title), two cells rerun: the two are current, the seven on the
    superseded store are "other store", whatever a vote of the results would say."""
    work = shutil.copytree(smoke_work[0], tmp_path / "work")
    old = smoke_work[1]
    tracks = work / "data" / "synth-smoke" / "fma_metadata" / "tracks.csv"
    tracks.write_text(tracks.read_text().replace("Synthetic track", "Synthetic trakc", 1))
    new = fingerprint_in(work)
    assert new != old
    cells = expected_cells(work / "params", "smoke")
    results = {cell: result(cell, store=new if i < 2 else old, workdir=work) for i, cell in enumerate(cells)}
    statuses = runs.run_statuses("smoke", results, work)
    assert [s.cell for s in statuses if s.shown] == cells[:2]
    assert {s.label for s in statuses if not s.shown} == {
        f"other store: ran on store {old[:12]}; the data and settings give store {new[:12]} today"
    }
    tracks.write_text(tracks.read_text().replace("Synthetic trakc", "Synthetic track", 1))  # edited back
    assert [s.cell for s in runs.run_statuses("smoke", results, work) if s.shown] == cells[2:]


def test_without_its_data_set_a_run_is_shown_flagged_unchecked(smoke_work, tmp_path):
    """Results copied to a machine without the data set: the store cannot be checked, so the run is
    shown by its settings and flagged; a data set that is there but unreadable shows nothing."""
    today = smoke_work[1]
    work = tmp_path / "work"
    shutil.copytree(smoke_work[0] / "params", work / "params")  # the runs' params, not their data
    missing = work / "data" / "synth-smoke" / "fma_metadata" / "tracks.csv"
    results = {"table1/raw_whole": result("table1/raw_whole", store=today, workdir=work)}
    status = {s.cell: s for s in runs.run_statuses("smoke", results, work)}["table1/raw_whole"]
    assert status.shown and status.unchecked and status.flagged
    assert (
        status.label
        == f"current: store not checked ({missing}: not found: the data set of data_dir is not on this machine)"
    )
    missing.parent.mkdir(parents=True)
    missing.write_bytes(b"\xff\xfe not a tracks.csv")
    status = {s.cell: s for s in runs.run_statuses("smoke", results, work)}["table1/raw_whole"]
    assert not status.shown and status.label.startswith(
        f"other store: ran on store {today[:12]}; cannot tell which store the data give today: "
    )


def test_a_result_of_a_cell_without_params_is_not_shown():
    orphan = result("table1/gone", of="table1/raw_whole")
    status = {s.cell: s for s in runs.run_statuses("smoke", {"table1/gone": orphan}, REPO)}["table1/gone"]
    assert not status.shown and "no params file" in status.label


def _age(path: Path, seconds: int) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


def test_a_plain_build_shows_the_newest_profile_unless_one_is_named(tmp_path, monkeypatch):
    for profile, age in (("demo", 100), ("smoke", 10)):
        path = tmp_path / profile / "table1" / "raw_whole.json"
        path.parent.mkdir(parents=True)
        path.write_text("{}")
        _age(path, age)
    baseline = tmp_path / "demo" / "baselines" / "mfcc.json"  # newer, but not a cell
    baseline.parent.mkdir()
    baseline.write_text("{}")
    monkeypatch.delenv(runs.PROFILE_ENV, raising=False)
    monkeypatch.setenv(runs.RESULTS_ENV, str(tmp_path))
    assert runs.build_choice() == ("smoke", tmp_path.resolve())
    monkeypatch.setenv(runs.PROFILE_ENV, "demo")
    assert runs.build_choice() == ("demo", tmp_path.resolve())
    assert runs.newest_profile(tmp_path / "nothing") is None


def test_a_truncated_cell_notebook_is_staged_under_a_red_box_naming_it(tmp_path):
    import nbformat

    from fmareport.report import book

    cell = "table1/raw_whole"
    res = result(cell)
    source = tmp_path / "results" / "smoke" / f"{cell}.ipynb"
    source.parent.mkdir(parents=True)
    source.write_text('{"cells": [{"cell_type": "markdown", "sou')  # cut short mid-write
    status = runs.RunStatus(cell, "current")
    staged = book._stage_experiment(cell, res, status, tmp_path / "results", tmp_path / "out")
    text = "\n".join(c.source for c in nbformat.read(staged, as_version=4).cells)
    assert "This notebook is not the run behind the numbers" in text and book.BANNER in text
    assert f"{source} cannot be read (NotJSONError)" in text and res.run_id in text


def test_the_workflows_book_refuses_to_build_without_every_cell(tmp_path, capsys):
    from fmareport.cli import main

    (tmp_path / "smoke").mkdir()
    assert main(["book", "--profile", "smoke", "--results-dir", str(tmp_path), "--complete", "--no-build"]) == 1
    err = capsys.readouterr().err
    assert f"lacks {len(expected_cells(REPO / 'params', 'smoke'))} current cell run(s)" in err
    assert "table1/raw_whole (not run)" in err
    assert list((tmp_path / "smoke").iterdir()) == []  # nothing written

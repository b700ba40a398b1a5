"""Which runs the book shows (fmareport.report.runs): expected cells, runs of other settings,
diverged runs, the settings stamps the workflow reruns cells by, and the profile a plain build picks.

Results here are validated results (tests/fakes.py) with the config that `load_cell` really
gives for a smoke cell: the comparison is against the repository's params files.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
import yaml
from fakes import of_config

from fmareport.config import ConfigError, from_dict, load_cell
from fmareport.report import runs
from fmareport.results import CellResults

REPO = Path(__file__).resolve().parents[1]


def result(cell: str, losses=(2.0,), store="f" * 40, of: str | None = None, **changes) -> CellResults:
    """A result of `cell` with the config the smoke cell `of` (default: `cell`) gives, changed by
    `changes`; one training loss per epoch, every seed alike."""
    cfg = from_dict(load_cell("smoke", of or cell).to_dict() | changes | {"cell": cell})
    return of_config(cfg, losses=losses, store_fingerprint=store)


def test_expected_cells_are_the_params_files_of_tables_and_ablations():
    cells = runs.expected_cells(REPO / "params")
    on_disk = sorted(
        p.relative_to(REPO / "params").with_suffix("").as_posix()
        for p in (REPO / "params").glob("*/*.yaml")
        if p.parent.name != "profiles"
    )
    assert cells == on_disk and "table1/raw_whole" in cells and "ablations/segment_batches" in cells


def test_a_new_table_folder_is_found_and_any_other_folder_refused(tmp_path):
    """A table3/ (say) is run like table1/; a folder that is no table is named, never passed over."""
    for folder in ("profiles", "table1", "table3", "ablations", ".cache"):
        (tmp_path / folder).mkdir()
    for cell in ("table1/a", "table3/b", "ablations/c"):
        (tmp_path / f"{cell}.yaml").write_text("cell: x\n")
    assert runs.expected_cells(tmp_path) == ["ablations/c", "table1/a", "table3/b"]
    (tmp_path / "tabel4").mkdir()
    with pytest.raises(ConfigError, match=r"tabel4: not a folder of cells; cells live in .*table<N>/"):
        runs.expected_cells(tmp_path)


def write_profile(params: Path, text: str) -> None:
    (params / "profiles").mkdir(parents=True, exist_ok=True)
    (params / "profiles" / "p.yaml").write_text("profile: p\n" + text)


def test_a_profile_runs_the_cells_its_patterns_select(tmp_path):
    for cell in ("table1/a", "table1/b", "table2/c", "ablations/log_x", "ablations/y"):
        (tmp_path / cell).parent.mkdir(exist_ok=True)
        (tmp_path / f"{cell}.yaml").write_text(f"cell: {cell}\n")
    write_profile(tmp_path, "")  # no key: every cell
    assert runs.expected_cells(tmp_path, "p") == runs.expected_cells(tmp_path) == [
        "ablations/log_x", "ablations/y", "table1/a", "table1/b", "table2/c"
    ]  # fmt: skip
    write_profile(tmp_path, "cells: [table1/*, ablations/log_*, table2/c]\n")
    assert runs.expected_cells(tmp_path, "p") == ["ablations/log_x", "table1/a", "table1/b", "table2/c"]
    # smoke runs the tables and one ablation; paper every cell; demo all but the log1p ablations
    smoke = runs.expected_cells(REPO / "params", "smoke")
    assert [c for c in smoke if not c.startswith("ablations/")] == [
        c for c in runs.expected_cells(REPO / "params") if not c.startswith("ablations/")
    ]
    assert [c for c in smoke if c.startswith("ablations/")] == ["ablations/mel_both_segmented"]
    every = runs.expected_cells(REPO / "params")
    assert runs.expected_cells(REPO / "params", "paper") == every
    assert runs.expected_cells(REPO / "params", "demo") == [c for c in every if not c.startswith("ablations/log_")]


@pytest.mark.parametrize(
    "text, message",
    [
        ("cells: [table9/*]\n", r"p.yaml: key 'cells': 'table9/\*' selects no cell under"),
        ("cells: []\n", r"key 'cells': needs at least 1 value"),
        ("cells: [../x]\n", r"cells"),
        ("cells: table1/*\n", r"cells"),
    ],
)
def test_a_profile_pattern_that_selects_nothing_or_is_no_pattern_is_refused(tmp_path, text, message):
    (tmp_path / "table1").mkdir()
    (tmp_path / "table1" / "a.yaml").write_text("cell: table1/a\n")
    write_profile(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        runs.expected_cells(tmp_path, "p")


def test_only_a_profile_says_which_cells_run(tmp_path, monkeypatch):
    """`cells` in a cell's file, its base or the overrides is refused, naming the file."""
    monkeypatch.chdir(tmp_path)
    write_profile(tmp_path / "params", "")
    (tmp_path / "params" / "table1").mkdir()
    (tmp_path / "params" / "table1" / "a.yaml").write_text("cell: table1/a\ncells: ['*']\n")
    with pytest.raises(ConfigError, match=r"table1/a.yaml: key 'cells' says which cells a profile runs"):
        load_cell("p", "table1/a")
    with pytest.raises(ConfigError, match=r"overrides: key 'cells'"):
        load_cell("p", None, overrides={"cells": ["*"]})


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
    assert runs.differing_keys(moved, cfg) == {}
    assert runs.differing_keys(moved | {"epochs": 3, "lr": 0.01}, cfg) == {"epochs": (3, 1), "lr": (0.01, 5e-4)}


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


def test_statuses_name_every_expected_cell_and_keep_other_settings_out():
    results = {
        "table1/raw_whole": result("table1/raw_whole"),
        "table1/both_whole": result("table1/both_whole", (2.0, 1.8, 1.5), epochs=3, lr=0.01),
        "table1/raw_segmented": result("table1/raw_segmented", store="e" * 40),
        "table1/spectrogram_whole": result("table1/spectrogram_whole", losses=(1.7e19,)),
        "table1/spectrogram_segmented": result("table1/spectrogram_segmented"),
    }
    statuses = {s.cell: s for s in runs.run_statuses("smoke", results, REPO)}
    assert sorted(statuses) == runs.expected_cells(REPO / "params", "smoke")
    assert statuses["table1/raw_whole"].shown and statuses["table1/raw_whole"].label == "current"
    other = statuses["table1/both_whole"]
    assert not other.shown and other.label == "other settings: epochs 3 (params: 1), lr 0.01 (params: 0.0005)"
    assert statuses["table1/raw_segmented"].state == "other store"
    div = statuses["table1/spectrogram_whole"]
    assert div.shown and div.diverged == (0,) and div.label == "current; diverged (seed 0)"
    assert statuses["table2/both_segmented_dropout"].label == "not run"


def test_a_result_of_a_cell_without_params_is_not_shown():
    orphan = result("table1/gone", of="table1/raw_whole")
    status = {s.cell: s for s in runs.run_statuses("smoke", {"table1/gone": orphan}, REPO)}["table1/gone"]
    assert not status.shown and "no params file" in status.label


def _age(path: Path, seconds: int) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


def test_settings_stamp_changes_only_when_the_cell_must_run_again(tmp_path, monkeypatch):
    """Snakemake reruns a job whose small input changed in content (a touch alone is not enough)."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "params", tmp_path / "params")
    stamp, out = tmp_path / "build/settings/table1/raw_whole.yaml", tmp_path / "raw_whole.json"
    runs.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    first = stamp.read_text()
    assert "cell: table1/raw_whole" in first

    # The same settings in another key order (a stamp written before the config had sections): left
    # alone, so that no cell runs again for it.
    reordered = yaml.safe_dump(dict(reversed(yaml.safe_load(first).items())), sort_keys=False)
    stamp.write_text(reordered)
    runs.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text() == reordered != first
    stamp.write_text(first)

    # A result of today's settings: left alone (the cell is up to date).
    out.write_text(result("table1/raw_whole").model_dump_json())
    runs.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text() == first

    # A result of other settings (`fmareport run --set lr=0.01`): the stamp names the run it replaces.
    out.write_text(result("table1/raw_whole", lr=0.01).model_copy(update={"run_id": "b" * 32}).model_dump_json())
    runs.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text() == first + runs.RERUN_MARK + "b" * 32 + "\n"
    # ... once: a second start changes nothing, nor does the cell's own run that replaces it.
    marked = stamp.read_text()
    runs.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    out.write_text(result("table1/raw_whole").model_dump_json())
    runs.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text() == marked

    # An edited params file: the stamp's text changes.
    params = tmp_path / "params/table1/raw_whole.yaml"
    params.write_text(params.read_text() + "seeds: [1]\n")
    runs.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert "- 1" in stamp.read_text() and runs.RERUN_MARK not in stamp.read_text()

    # A params file that does not load: the stamp says so (the cell's job then fails, naming it).
    params.write_text("dropuot: 0.0\n")
    runs.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text().startswith("# does not load:") and "dropuot" in stamp.read_text()


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
    staged = book._stage_experiment(cell, res, status, tmp_path / "results", tmp_path / "out", "banner")
    text = "\n".join(c.source for c in nbformat.read(staged, as_version=4).cells)
    assert "This notebook is not the run behind the numbers" in text
    assert f"`{source}` cannot be read (NotJSONError)" in text and res.run_id in text


def test_the_workflows_book_refuses_to_build_without_every_cell(tmp_path, capsys):
    from fmareport.cli import main

    (tmp_path / "smoke").mkdir()
    assert main(["book", "--profile", "smoke", "--results-dir", str(tmp_path), "--complete", "--no-build"]) == 1
    err = capsys.readouterr().err
    assert f"lacks {len(runs.expected_cells(REPO / 'params', 'smoke'))} current cell run(s)" in err
    assert "table1/raw_whole (not run)" in err
    assert list((tmp_path / "smoke").iterdir()) == []  # nothing written

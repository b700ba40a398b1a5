"""The workflow end to end on the smoke profile, through the real Snakefile and notebook.

One smoke grid (synthetic data -> clip store -> papermill per cell -> results JSON) is
run once per module in a temporary working directory (`snakemake --directory`), with
its own copy of params/ so the tests can edit cell files; the later tests build on it:
a second run does nothing, an edited cell re-runs alone, a bad cell fails before any
training and leaves the other cells' results alone, and papermill works per cell by hand.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

from fmareport.config import Config, FIELDS, load_config
from fmareport.results import ResultsError, load_results, read_results, validate

REPO = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
CELLS = sorted(p.relative_to(REPO / "params").with_suffix("").as_posix()
               for t in ("table1", "table2") for p in (REPO / "params" / t).glob("*.yaml"))


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the repo's Snakefile in `workdir` on the smoke profile; output as text (stdout + stderr)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", *args, "--config", f"profile={PROFILE}"]
    return subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def result_mtimes(workdir: Path) -> dict[str, int]:
    return {c: (workdir / "results" / PROFILE / f"{c}.json").stat().st_mtime_ns for c in CELLS}


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    """The whole smoke grid, run once: the working directory holding data/, build/, results/."""
    workdir = tmp_path_factory.mktemp("workflow")
    shutil.copytree(REPO / "params", workdir / "params")
    t0 = time.perf_counter()
    done = snakemake(workdir, "results")
    assert done.returncode == 0, done.stdout[-6000:]
    print(f"smoke grid: {time.perf_counter() - t0:.0f} s")
    return workdir


def test_parameters_cell_is_the_config(tmp_path):
    """The notebook's parameters cell declares every config key with Config's default, so that
    papermill -f A -f B gives exactly `fmareport config A B` and warns only on unknown keys."""
    import papermill

    nb = jupytext.read(REPO / "book" / "experiment.py")
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    declared = {node.targets[0].id: ast.literal_eval(node.value)
                for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)}
    assert declared == Config().to_dict(), "update the parameters cell of book/experiment.py to Config's defaults"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    jupytext.write(nb, tmp_path / "experiment.ipynb")
    assert set(papermill.inspect_notebook(str(tmp_path / "experiment.ipynb"))) == set(FIELDS)  # all parse


@pytest.mark.slow
def test_grid_writes_every_cell(grid):
    results = load_results(grid / "results", PROFILE)  # validates each file against the schema
    assert sorted(results) == CELLS
    for cell, obj in results.items():
        # papermill's parameters resolve exactly as the config layer resolves the files.
        expected = load_config(grid / "params/profiles/smoke.yaml", grid / "params" / f"{cell}.yaml")
        assert obj["config"] == expected.to_dict()
        assert [s["seed"] for s in obj["seeds"]] == expected.seeds
        assert obj["data"]["tracks"] == {"training": 32, "validation": 4, "test": 4}
        assert obj["data"]["skipped"] == 5 and obj["data"]["source"] == "synth"
        assert obj["provenance"]["versions"]["torch"] and obj["provenance"]["device"] == "cpu"
        nb = nbformat.read(grid / "results" / PROFILE / f"{cell}.ipynb", as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and "remove-cell" in injected[0].metadata.tags
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"]
        assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # curves, confusion matrix
        assert not [o for o in outputs if o.output_type == "stream" and "Warning" in o.text]
    assert not list((grid / "build" / "checkpoints").rglob("*.pt")), "checkpoints are removed after a run"


@pytest.mark.slow
def test_results_schema_refuses_broken_files(grid):
    obj = read_results(grid / "results" / PROFILE / "table1" / "raw_whole.json")
    validate(obj)
    for breaks in (lambda o: o["seeds"][0].pop("confusion"),
                   lambda o: o["summary"].update(test_acc_last_mean=o["summary"]["test_acc_last_mean"] + 0.1),
                   lambda o: o["config"].update(epoch=3),
                   lambda o: o["seeds"][0].update(test_acc_last=1.5)):
        broken = json.loads(json.dumps(obj))
        breaks(broken)
        with pytest.raises(ResultsError):
            validate(broken)


@pytest.mark.slow
def test_second_run_does_nothing_and_missing_results_are_remade(grid):
    done = snakemake(grid, "results", "--dry-run")
    assert done.returncode == 0 and "Nothing to be done" in done.stdout, done.stdout[-3000:]
    before = result_mtimes(grid)
    (grid / "results" / PROFILE / "table2" / "both_segmented_dropout.json").unlink()
    done = snakemake(grid, "results")
    assert done.returncode == 0, done.stdout[-6000:]
    after = result_mtimes(grid)
    assert [c for c in CELLS if after[c] != before[c]] == ["table2/both_segmented_dropout"]


@pytest.mark.slow
def test_changing_one_cell_reruns_that_cell_only(grid):
    path = grid / "params" / "table1" / "raw_whole.yaml"
    before = result_mtimes(grid)
    path.write_text(path.read_text() + "seeds: [1]\n")
    done = snakemake(grid, "results")
    assert done.returncode == 0, done.stdout[-6000:]
    after = result_mtimes(grid)
    assert [c for c in CELLS if after[c] != before[c]] == ["table1/raw_whole"]
    obj = read_results(grid / "results" / PROFILE / "table1" / "raw_whole.json")
    assert [s["seed"] for s in obj["seeds"]] == [1] and obj["config"]["seeds"] == [1]


@pytest.mark.slow
def test_bad_params_file_fails_fast_and_keeps_the_others(grid):
    bad = grid / "params" / "table1" / "spectrogram_whole.yaml"
    good = grid / "params" / "table1" / "both_whole.yaml"
    log = grid / "build" / PROFILE / "logs" / "table1" / "spectrogram_whole.log"
    before = result_mtimes(grid)
    original = bad.read_text()
    bad.write_text(original.replace("dropout: 0.0", "dropuot: 0.0"))
    good.write_text(good.read_text() + "seeds: [2]\n")

    done = snakemake(grid, "results", "--keep-going")
    assert done.returncode != 0
    # The config layer's message, naming the file, the key and the nearest known key.
    assert "params/table1/spectrogram_whole.yaml: unknown key 'dropuot'. Did you mean 'dropout'?" in done.stdout
    assert log.stat().st_size == 0, "papermill must not start for a bad params file"  # (it logs at once)
    # --keep-going: the other edited cell ran; the untouched cells' results are still there.
    assert read_results(grid / "results" / PROFILE / "table1" / "both_whole.json")["config"]["seeds"] == [2]
    after = {c: p.stat().st_mtime_ns for c in CELLS
             if (p := grid / "results" / PROFILE / f"{c}.json").exists()}
    assert sorted(c for c in CELLS if after.get(c) != before[c]) == ["table1/both_whole", "table1/spectrogram_whole"]
    assert "table1/spectrogram_whole" not in after  # a failed job leaves no stale result

    bad.write_text(original)
    done = snakemake(grid, "results")
    assert done.returncode == 0, done.stdout[-6000:]
    assert sorted(load_results(grid / "results", PROFILE)) == CELLS


@pytest.mark.slow
def test_papermill_per_cell_by_hand(grid, tmp_path):
    """The README's commands: jupytext to .ipynb, then papermill with the profile and cell YAMLs.
    The kernel is found in the environment alone: an empty HOME, no PATH to the venv."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    env.pop("JUPYTER_PATH", None)
    py = sys.executable
    notebook = tmp_path / "experiment.ipynb"
    subprocess.run([py, "-m", "jupytext", "--to", "ipynb", "-o", str(notebook), str(REPO / "book/experiment.py")],
                   check=True, env=env, capture_output=True)
    out_dir = tmp_path / "results"
    papermill = [py, "-m", "papermill", str(notebook), str(tmp_path / "out.ipynb"),
                 "-f", "params/profiles/smoke.yaml", "-f", "params/table1/raw_segmented.yaml",
                 "-p", "results_dir", str(out_dir), "--no-progress-bar"]
    done = subprocess.run(papermill, cwd=grid, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Passed unknown parameter" not in done.stderr
    obj = read_results(out_dir / PROFILE / "table1" / "raw_segmented.json")
    expected = load_config(grid / "params/profiles/smoke.yaml", grid / "params/table1/raw_segmented.yaml",
                           overrides={"results_dir": str(out_dir)})
    assert obj["config"] == expected.to_dict()

    # A bad value given to papermill stops at the config cell, with the config layer's message.
    done = subprocess.run(papermill + ["-p", "dropout", "1.5"], cwd=grid, env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "papermill parameters: key 'dropout': must be in [0, 1), got 1.5" in done.stderr
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    executed = [c for c in out.cells if c.cell_type == "code" and c.get("execution_count")]
    assert "from_dict" in executed[-1].source  # nothing ran after the config cell

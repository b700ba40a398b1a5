"""The workflow: what it plans with (fmareport.workflow: the cells of a profile, GPUs per cell job,
the stamps), then end to end on the smoke profile, through the real Snakefile and notebook.

The session's smoke grid (conftest.smoke_grid) is copied for each test that changes it (a few
MB), so a test edits its params files without touching the grid the book tests read, or another
test's: a second run does nothing, and after a change Snakemake's plan (a dry run through its API,
in this process: conftest.snakemake_plan) holds exactly the jobs the change calls for. Real runs
where running is the point: a bad cell's job fails before papermill starts and leaves the other
cells' results alone, and `make report` recovers from a kill by running the half-done cell again. The README's papermill
command runs as written in a copy of the checkout, and a cell runs without Jupyter through `run_cell`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup
from conftest import run_snakemake, snakemake_plan
from fakes import of_config

from fmareport import experiment, notebook, workflow
from fmareport.cli import main as cli_main
from fmareport.config import ConfigError, SynthSettings, load_cell, load_config, read_yaml
from fmareport.data.synth import synthesize
from fmareport.files import take_lock
from fmareport.report.reference import compare, differences, read_reference
from fmareport.report.runs import run_statuses
from fmareport.results import CellResults, ResultsError, load_baselines, load_results, read_results, validate
from fmareport.workflow import expected_cells

REPO = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
CELLS = expected_cells(REPO / "params", PROFILE)  # the smoke profile's: its key `cells` selects them


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the repo's Snakefile in `workdir` on the smoke profile; output as text (stdout + stderr)."""
    return run_snakemake(workdir, *args, profile=PROFILE)


def result_mtimes(workdir: Path) -> dict[str, int]:
    return {c: (workdir / "results" / PROFILE / f"{c}.json").stat().st_mtime_ns for c in CELLS}


def plan(workdir: Path) -> tuple[dict[str, int], list[str]]:
    """What `snakemake results` would run now (a dry run, in this process: conftest.snakemake_plan):
    (jobs by rule, the cells of the cell jobs)."""
    out = snakemake_plan(workdir, "results", config={"profile": PROFILE})
    if "Nothing to be done" in out:
        return {}, []
    stats = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    jobs = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M) if rule != "total"}
    cells = sorted(re.findall(r"^rule cell:\n(?:    .*\n)*?    wildcards: cell=(\S+)$", out, re.M))
    assert len(cells) == jobs.get("cell", 0), out[-3000:]
    return jobs, cells


@pytest.fixture
def grid(smoke_grid, tmp_path) -> Path:
    """A copy of the session's smoke grid (data, store, results, Snakemake's records) to edit."""
    return shutil.copytree(smoke_grid, tmp_path / "grid", symlinks=True)


def checkout_copy(dest: Path) -> Path:
    """What a fresh clone holds: the files git tracks and the untracked ones it does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file() or src.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel, follow_symlinks=False)
    return dest


def readme_command(prefix: str) -> str:
    """The one README line that starts with `prefix` (the documented command, as written)."""
    lines = [line.strip() for line in (REPO / "README.md").read_text().splitlines() if line.strip().startswith(prefix)]
    assert len(lines) == 1, f"README should hold exactly one `{prefix}` command line, found {lines}"
    return lines[0].split("  #")[0].strip()


# --- fmareport.workflow: what the Snakefile plans with, tested at the module ------------------------------


def smoke_result(cell: str, **changes) -> CellResults:
    """A validated result of the smoke cell `cell` (the config load_cell gives here), changed by `changes`."""
    return of_config(load_cell(PROFILE, cell).replace(**changes))


def params_copy(tmp_path: Path, monkeypatch) -> Path:
    """A working directory with a copy of the repo's params/, made the current one (where the workflow runs)."""
    shutil.copytree(REPO / "params", tmp_path / "params")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "params"


def test_expected_cells_are_the_params_files_of_tables_and_ablations():
    cells = workflow.expected_cells(REPO / "params")
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
    assert workflow.expected_cells(tmp_path) == ["ablations/c", "table1/a", "table3/b"]
    (tmp_path / "tabel4").mkdir()
    with pytest.raises(ConfigError, match=r"tabel4: not a folder of cells; cells live in .*table<N>/"):
        workflow.expected_cells(tmp_path)


def write_profile(params: Path, text: str) -> None:
    (params / "profiles").mkdir(parents=True, exist_ok=True)
    (params / "profiles" / "p.yaml").write_text("profile: p\n" + text)


def test_a_profile_runs_the_cells_its_patterns_select(tmp_path):
    for cell in ("table1/a", "table1/b", "table2/c", "ablations/log_x", "ablations/y"):
        (tmp_path / cell).parent.mkdir(exist_ok=True)
        (tmp_path / f"{cell}.yaml").write_text(f"cell: {cell}\n")
    write_profile(tmp_path, "")  # no key: every cell
    assert workflow.expected_cells(tmp_path, "p") == workflow.expected_cells(tmp_path) == [
        "ablations/log_x", "ablations/y", "table1/a", "table1/b", "table2/c"
    ]  # fmt: skip
    write_profile(tmp_path, "cells: [table1/*, ablations/log_*, table2/c]\n")
    assert workflow.expected_cells(tmp_path, "p") == ["ablations/log_x", "table1/a", "table1/b", "table2/c"]
    # smoke runs the tables and one ablation; paper every cell; demo all but the log1p ablations
    smoke = workflow.expected_cells(REPO / "params", "smoke")
    assert [c for c in smoke if not c.startswith("ablations/")] == [
        c for c in workflow.expected_cells(REPO / "params") if not c.startswith("ablations/")
    ]
    assert [c for c in smoke if c.startswith("ablations/")] == ["ablations/mel_both_segmented"]
    every = workflow.expected_cells(REPO / "params")
    assert workflow.expected_cells(REPO / "params", "paper") == every
    assert workflow.expected_cells(REPO / "params", "demo") == [c for c in every if not c.startswith("ablations/log_")]


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
        workflow.expected_cells(tmp_path, "p")


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


def test_settings_stamp_changes_only_when_the_cell_must_run_again(tmp_path, monkeypatch):
    """Snakemake reruns a job whose small input changed in content (a touch alone is not enough)."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "params", tmp_path / "params")
    stamp, out = tmp_path / "build/settings/table1/raw_whole.yaml", tmp_path / "raw_whole.json"
    workflow.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    first = stamp.read_text()
    assert "cell: table1/raw_whole" in first

    # The same settings in another key order (a stamp written before the config had sections): left
    # alone, so that no cell runs again for it.
    reordered = yaml.safe_dump(dict(reversed(yaml.safe_load(first).items())), sort_keys=False)
    stamp.write_text(reordered)
    workflow.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text() == reordered != first
    stamp.write_text(first)

    # A result of today's settings: left alone (the cell is up to date).
    out.write_text(smoke_result("table1/raw_whole").model_dump_json())
    workflow.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text() == first

    # A result of other settings (`fmareport run --set lr=0.01`): the stamp names the run it replaces.
    out.write_text(smoke_result("table1/raw_whole", lr=0.01).model_copy(update={"run_id": "b" * 32}).model_dump_json())
    workflow.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text() == first + workflow.RERUN_MARK + "b" * 32 + "\n"
    # ... once: a second start changes nothing, nor does the cell's own run that replaces it.
    marked = stamp.read_text()
    workflow.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    out.write_text(smoke_result("table1/raw_whole").model_dump_json())
    workflow.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text() == marked

    # An edited params file: the stamp's text changes.
    params = tmp_path / "params/table1/raw_whole.yaml"
    params.write_text(params.read_text() + "seeds: [1]\n")
    workflow.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert "- 1" in stamp.read_text() and workflow.RERUN_MARK not in stamp.read_text()

    # A params file that does not load: the stamp says so (the cell's job then fails, naming it).
    params.write_text("dropuot: 0.0\n")
    workflow.settings_stamp(stamp, "smoke", "table1/raw_whole", out)
    assert stamp.read_text().startswith("# does not load:") and "dropuot" in stamp.read_text()


def test_start_plans_the_profile_and_writes_its_stamps(tmp_path, monkeypatch):
    """What the Snakefile's rules are made of: the smoke profile's cells, no GPU (device: cpu: torch is
    not asked), one thread per cell, its synthetic set, its baselines, and a stamp per cell and for the set."""
    params_copy(tmp_path, monkeypatch)
    monkeypatch.setattr(workflow, "torch_gpus", lambda: pytest.fail("torch asked for a cpu profile"))
    plan = workflow.start({"profile": PROFILE})
    cfg = load_cell(PROFILE, None)
    assert (plan.profile, plan.cells, plan.gpu, plan.cell_threads) == (PROFILE, CELLS, 0, 1)
    assert plan.profile_yaml == Path("params/profiles/smoke.yaml") and plan.build == Path("build/smoke")
    assert plan.results == Path(cfg.run.results_dir) / PROFILE
    assert plan.data == Path(cfg.run.data_dir) / "fma_metadata" / "tracks.csv"
    assert [p.stem for p in plan.baselines] == ["mfcc"]
    stamps = sorted(
        p.relative_to("build/smoke/settings").with_suffix("").as_posix() for p in Path("build").rglob("*.yaml")
    )
    assert stamps == CELLS and Path("build/smoke/synth.txt").is_file()
    assert workflow.start({"profile": PROFILE, "cell_threads": 2, "gpu": 1}).cell_threads == 2


@pytest.mark.parametrize(
    "config, message",
    [
        ({"profile": "nope"}, r"profile 'nope': params/profiles/nope.yaml: no such params file"),
        ({"profile": PROFILE, "cell_threads": 0}, r"--config cell_threads=0: must be a whole number >= 1"),
        ({"profile": PROFILE, "cell_threads": "two"}, r"--config cell_threads='two': must be a whole number >= 1"),
        ({"profile": PROFILE, "gpu": -1}, r"--config gpu=-1: must be a whole number >= 0"),
        ({"profile": "paper", "gpus": 1.5}, r"--config gpus=1.5: must be a whole number >= 0"),
        ({"profile": PROFILE, "gpu": True}, r"--config gpu=True: must be a whole number >= 0"),
    ],
)
def test_start_refuses_a_bad_profile_or_config_value(tmp_path, monkeypatch, config, message):
    params_copy(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match=message):
        workflow.start(config)


def test_start_refuses_a_profile_that_names_another_and_a_folder_without_cells(tmp_path, monkeypatch):
    params = params_copy(tmp_path, monkeypatch)
    shutil.copy(params / "profiles" / "smoke.yaml", params / "profiles" / "other.yaml")
    with pytest.raises(ConfigError, match=r"other.yaml says 'profile: smoke': it must be 'other' \(its file name\)"):
        workflow.start({"profile": "other"})
    for folder in ("table1", "table2", "ablations"):
        shutil.rmtree(params / folder)
    write_profile(params, "")  # no `cells`: every cell, and there are none
    with pytest.raises(ConfigError, match=r"p.yaml: key 'cells': '\*' selects no cell under params \(cells are"):
        workflow.start({"profile": "p"})


def test_gpus_per_cell_follow_the_config_the_device_and_the_count(monkeypatch):
    """gpu=N as given; one per cell while there are GPUs; none on device: cpu; and a profile that needs a
    GPU with none stops, naming torch's reason (asked here: make report gave the count)."""
    paper, smoke = load_cell("paper", None), load_cell(PROFILE, None)
    asked = []
    monkeypatch.setattr(workflow, "torch_gpus", lambda: asked.append(1) or {"uuids": [], "problem": "a CPU-only build"})
    yaml_path = Path("params/profiles/paper.yaml")
    assert workflow.gpus_per_cell(paper, {"gpu": 2}, yaml_path) == 2
    assert workflow.gpus_per_cell(paper, {"gpus": 3}, yaml_path) == 1
    assert workflow.gpus_per_cell(smoke, {"gpus": 3}, yaml_path) == 0
    assert workflow.gpus_per_cell(paper.replace(cpu_fallback=True), {"gpus": 0}, yaml_path) == 0
    assert not asked
    with pytest.raises(ConfigError) as stopped:
        workflow.gpus_per_cell(paper, {"gpus": 0}, yaml_path)
    assert asked == [1]
    assert str(stopped.value).startswith(
        "profile 'paper' needs a GPU (device: auto, cpu_fallback: false) and this machine has none torch can use "
        "(gpus=0) (a CPU-only build). To run it here on the CPU (days), set device: cpu in params/profiles/paper.yaml"
    )
    assert "TORCH_INDEX=" in str(stopped.value) and str(stopped.value).endswith("--config gpu=1 (profiles/slurm)")
    with pytest.raises(ConfigError, match=r"needs a GPU \(device: cuda"):
        workflow.gpus_per_cell(smoke.replace(device="cuda"), {"gpu": 0}, yaml_path)


def test_a_cells_inputs_are_its_params_and_its_bases_and_the_longest_runs_first(tmp_path, monkeypatch):
    params = params_copy(tmp_path, monkeypatch)
    base = read_yaml(params / "ablations" / "mel_both_segmented.yaml")["base"]
    assert workflow.cell_inputs("ablations/mel_both_segmented") == [
        Path("params/ablations/mel_both_segmented.yaml"),
        Path(f"params/{base}.yaml"),
    ]
    assert workflow.cell_inputs("table1/raw_whole") == [Path("params/table1/raw_whole.yaml")]
    whole, segmented = (workflow.cell_priority(PROFILE, f"table1/raw_{c}") for c in ("whole", "segmented"))
    seg, one = (load_cell(PROFILE, f"table1/raw_{c}") for c in ("segmented", "whole"))  # the same but the windows
    samples = seg.windows_per_clip * seg.window_samples / (one.windows_per_clip * one.window_samples)
    assert segmented / whole == pytest.approx(samples) and samples > 1  # the segmented cell starts first
    (params / "table1" / "raw_whole.yaml").write_text("dropuot: 0.0\n")
    assert workflow.cell_priority(PROFILE, "table1/raw_whole") == 0  # its job fails first thing


def test_the_workflow_module_imports_nothing_of_the_report_nor_torch():
    """fmareport.workflow sits below fmareport.report (which reads the cell list from it), and a plan
    imports no torch (2-3 CPU-s at every start)."""
    code = (
        "import sys, fmareport.workflow; print([m for m in sys.modules if m.startswith(('fmareport.report', 'torch'))])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_committed_notebook_is_the_text_notebook_without_outputs():
    """book/experiment.ipynb (what papermill runs) and book/experiment.py (what we edit) are one
    notebook, paired by jupytext; the .ipynb is committed without outputs."""
    ipynb = nbformat.read(REPO / "book/experiment.ipynb", as_version=4)
    text = jupytext.read(REPO / "book/experiment.py")
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert ipynb.metadata["kernelspec"]["name"] == "python3"
    assert [(c.cell_type, c.source) for c in ipynb.cells] == [(c.cell_type, c.source) for c in text.cells], (
        "book/experiment.ipynb and book/experiment.py differ: run `jupytext --sync book/experiment.py`"
    )
    code = [c for c in ipynb.cells if c.cell_type == "code"]
    assert not any(c.outputs or c.execution_count for c in code), "commit book/experiment.ipynb without outputs"
    (params,) = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    names = [t.id for node in ast.parse(params.source).body for t in node.targets]
    assert tuple(names) == notebook.PARAMETERS


def test_injected_names_are_read_from_papermills_cell():
    history = ["", "profile = 'smoke'", '# Parameters\nprofile = "demo"\ncell = "table1/raw_whole"\nepochs = 3\n']
    assert notebook.injected_names(history) == ["profile", "cell", "epochs"]
    with pytest.raises(ConfigError, match=r"'epochs' not a parameter of this notebook.*overrides"):
        notebook.config("smoke", "table1/raw_whole", {}, history)
    cfg = notebook.config("smoke", "table1/raw_whole", "epochs: 2\nlr: 1e-3", history[:2])
    assert (cfg.schedule.epochs, cfg.train.lr, cfg.cell) == (2, 1e-3, "table1/raw_whole")
    # papermill's -y 'overrides: {dropout: 1.5}' hands the notebook a mapping: taken, and checked
    with pytest.raises(ConfigError, match=re.escape("overrides: key 'dropout': must be in [0, 1), got 1.5")):
        notebook.config("smoke", "table1/raw_whole", {"dropout": 1.5}, history[:2])
    assert notebook.config("smoke", "table1/raw_whole", {"dropout": 0.5}, history[:2]).model.dropout == 0.5


@pytest.mark.slow
def test_readme_papermill_command_runs_as_written_in_a_fresh_checkout(tmp_path):
    """The README's papermill line, run by a shell in a copy of the checkout (no data, no results
    yet): it makes its data and store and writes the executed notebook beside the cell's JSON.
    The kernel is found in the environment alone: an empty HOME. (Before the tests that need the
    smoke grid: under pytest-xdist it runs while another worker runs the grid.)"""
    command = readme_command("papermill book/experiment.ipynb")
    match = re.search(r"results/(\w+)/(\S+)\.ipynb -p profile (\w+) -p cell (\S+)$", command)
    assert match and match[1] == match[3] == PROFILE and match[2] == match[4], command
    checkout = checkout_copy(tmp_path / "checkout")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    env.pop("JUPYTER_PATH", None)
    done = subprocess.run(command, shell=True, cwd=checkout, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Passed unknown parameter" not in done.stderr
    obj = read_results(checkout / "results" / PROFILE / f"{match[2]}.json")
    assert obj.config == load_cell(PROFILE, match[2])
    nb = nbformat.read(checkout / "results" / PROFILE / f"{match[2]}.ipynb", as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]

    # A config key passed as a papermill parameter is refused, not silently ignored: the kernel's
    # input history holds papermill's cell (overrides are checked in-process, in
    # test_injected_names_are_read_from_papermills_cell).
    bad = subprocess.run(command + " -p epochs 3", shell=True, cwd=checkout, env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "'epochs' not a parameter of this notebook" in bad.stderr

    # The second promised command, alone: the report of exactly the runs on disk, the others "not run".
    build = readme_command("jupyter-book build")
    assert build == "jupyter-book build book/"
    env = {k: v for k, v in env.items() if not k.startswith("FMAREPORT_")}
    done = subprocess.run(build, shell=True, cwd=checkout, env=env, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert f"fmareport book: profile '{PROFILE}'" in done.stdout
    page = BeautifulSoup((checkout / "_build/html/generated/results.html").read_text(), "html.parser")
    status = {
        tr.th.get_text(strip=True): [td.get_text(strip=True) for td in tr.find_all("td")]
        for tr in page.find("table", id="runs").tbody.find_all("tr")
    }
    assert sorted(status) == CELLS
    assert status[match[2]] == [obj.run_id[:12], "current"]
    assert all(v == ["—", "not run"] for c, v in status.items() if c != match[2])
    ours = [td.get_text(strip=True) for tr in page.find("table", id="table-1").tbody.find_all("tr") for td in tr("td")]
    mean = sum(obj.accuracies) / len(obj.seeds)
    assert f"{mean:.3f} ± " in " ".join(ours) and ours.count("not run") == 5


@pytest.mark.slow
def test_grid_writes_every_cell(smoke_grid):
    results = load_results(smoke_grid / "results", PROFILE)  # validates each file against the schema
    assert sorted(results) == CELLS
    for cell, obj in results.items():
        expected = load_config(smoke_grid / "params/profiles/smoke.yaml", smoke_grid / "params" / f"{cell}.yaml")
        assert obj.config == expected
        assert [s.seed for s in obj.seeds] == expected.schedule.seeds
        assert obj.data.tracks.model_dump() == {"training": 32, "validation": 4, "test": 4}
        assert obj.data.skipped == 5 and obj.data.source == "synth"
        assert obj.provenance.versions["torch"] and obj.provenance.device == "cpu"
        assert obj.provenance.entry == "book/experiment.ipynb"
        nb = nbformat.read(smoke_grid / "results" / PROFILE / f"{cell}.ipynb", as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and f'cell = "{cell}"' in injected[0].source
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"]
        assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # curves, confusion matrix
        assert not [o for o in outputs if o.output_type == "stream" and "Warning" in o.text]
        assert any(f"run {obj.run_id}" in o.get("text", "") for o in outputs)  # the book pairs them by it
    assert not list((smoke_grid / "build").rglob("*.pt")), "checkpoints are removed after a run"


@pytest.mark.slow
def test_the_smoke_numbers_are_the_published_reference(smoke_grid):
    """reference/smoke.json, checked as the book checks a rerun: a change that moves a smoke number
    fails here, naming the cell, until the reference is written again on purpose (`fmareport
    reference --profile smoke`, docs/running.md). Bit-identical runs are expected on the reference's
    kind of machine only: elsewhere the test says which fact differs and skips."""
    ref = read_reference(PROFILE, REPO)
    assert ref is not None, "reference/smoke.json is missing: write it with `fmareport reference --profile smoke`"
    results = load_results(smoke_grid / "results", PROFILE)
    assert sorted(ref.cells) == CELLS
    facts = differences(ref, next(iter(results.values())).provenance)
    if facts:
        pytest.skip(f"not the reference's kind of machine or versions ({facts}): no bit-identical run to expect")
    rows = compare(ref, results, load_baselines(smoke_grid / "results", PROFILE))
    assert len(rows) == len(CELLS) + len(ref.baselines)
    moved = [f"{r['Run']}: {r['Verdict']} ({r['Detail']})" for r in rows if r["Verdict"] != "identical"]
    assert not moved, "smoke numbers moved from reference/smoke.json:\n" + "\n".join(moved)


@pytest.mark.slow
def test_results_schema_refuses_broken_files(smoke_grid):
    obj = read_results(smoke_grid / "results" / PROFILE / "table1" / "raw_whole.json").model_dump(mode="json")
    validate(obj)
    for breaks in (
        lambda o: o["seeds"][0].pop("test_probs"),
        lambda o: o.update(summary={"test_acc_last_mean": 0.5}),  # derived, never stored
        lambda o: o["config"].update(epoch=3),
        lambda o: o["config"].update(cell="../../../tmp/x"),
        lambda o: o["seeds"][0].update(test_acc_last=1.5),
        lambda o: o["test"]["labels"].pop(),
        lambda o: o.update(run_id="not hex"),
    ):
        broken = json.loads(json.dumps(obj))
        breaks(broken)
        with pytest.raises(ResultsError):
            validate(broken)


@pytest.mark.slow
def test_second_run_does_nothing_and_missing_results_are_remade(grid):
    assert plan(grid) == ({}, [])  # "Nothing to be done"
    (grid / "results" / PROFILE / "table2" / "both_segmented_dropout.json").unlink()
    assert plan(grid) == ({"cell": 1, "results": 1}, ["table2/both_segmented_dropout"])


@pytest.mark.slow
def test_a_set_made_with_other_settings_outside_the_workflow_is_made_again(grid):
    """The smoke set replaced with one of other settings, as papermill would make it under an
    edited profile: the workflow plans synth, prepare, every cell and the baseline again (prepare
    alone would refuse that set). A synth stamp made anew beside a set that fits plans nothing."""
    (grid / "build" / PROFILE / "synth.txt").unlink()
    assert plan(grid) == ({}, [])
    settings = SynthSettings(tracks_per_genre=1, seconds=0.5, sample_rate=8000, bad_cases=False)
    data = synthesize(grid / "data" / "synth-smoke", settings, progress=False, workers=1, force=True)
    tracks_csv = data / "fma_metadata" / "tracks.csv"
    made = tracks_csv.stat().st_mtime_ns - 10**9  # a second ago: the stamp the plan writes is later by the clock
    os.utime(tracks_csv, ns=(made, made))
    jobs, cells = plan(grid)
    assert jobs == {"synth": 1, "prepare": 1, "cell": len(CELLS), "baseline": 1, "results": 1} and cells == CELLS


@pytest.mark.slow
def test_changing_one_cell_reruns_that_cell_only(grid):
    path = grid / "params" / "table1" / "raw_whole.yaml"
    path.write_text(path.read_text() + "seeds: [1]\n")
    assert plan(grid) == ({"cell": 1, "results": 1}, ["table1/raw_whole"])
    # the job's settings stamp, which the Snakefile wrote as it started, is the edited config
    stamp = yaml.safe_load((grid / "build" / PROFILE / "settings" / "table1" / "raw_whole.yaml").read_text())
    edited = load_config(grid / "params/profiles/smoke.yaml", path)
    assert stamp == edited.to_dict() and edited.schedule.seeds == [1]


@pytest.mark.slow
def test_bad_params_file_fails_fast_and_keeps_the_others(grid):
    """The cell job of a params file that does not load stops before papermill starts, with the config
    layer's message; the other cells' results stay as they were. (That Snakemake's --keep-going runs
    the other jobs of a run regardless is Snakemake's; `make report` passes it.)"""
    bad = grid / "params" / "table1" / "spectrogram_whole.yaml"
    log = grid / "build" / PROFILE / "logs" / "table1" / "spectrogram_whole.log"
    before = result_mtimes(grid)
    original = bad.read_text()
    bad.write_text(original.replace("dropout: 0.0", "dropuot: 0.0"))

    done = snakemake(grid, "results", "--keep-going")
    assert done.returncode != 0
    # The config layer's message, naming the file, the key and the nearest known key.
    assert "params/table1/spectrogram_whole.yaml: unknown key 'dropuot'. Did you mean 'dropout'?" in done.stdout
    assert not log.exists() or log.stat().st_size == 0, "papermill must not start for a bad params file"
    after = {c: p.stat().st_mtime_ns for c in CELLS if (p := grid / "results" / PROFILE / f"{c}.json").exists()}
    assert sorted(c for c in CELLS if after.get(c) != before[c]) == ["table1/spectrogram_whole"]
    assert "table1/spectrogram_whole" not in after  # a failed job leaves no stale result

    # Fixed, the failed cell is all that is left to run.
    bad.write_text(original)
    assert plan(grid) == ({"cell": 1, "results": 1}, ["table1/spectrogram_whole"])


@pytest.mark.slow
def test_run_cell_without_jupyter(tiny_config, tiny_store, tmp_path):
    """The cell's whole run is a library call: store, seeds, results file, checkpoints removed."""
    cfg = tiny_config.replace(
        cell="table1/raw_segmented",
        input="raw",
        segmented=True,
        epochs=1,
        seeds=[0, 1],
        results_dir=str(tmp_path / "results"),
        build_dir=str(tmp_path / "build"),
    )
    results = experiment.run_cell(cfg, progress=False)
    assert [s.seed for s in results.seeds] == [0, 1] and results.summary.n_seeds == 2
    on_disk = read_results(tmp_path / "results" / "tiny" / "table1" / "raw_segmented.json")
    assert on_disk.model_dump(mode="json") == results.model_dump(mode="json")
    assert on_disk.provenance.entry == "fmareport.experiment.run_cell"
    assert not list((tmp_path / "build").rglob("*.pt"))
    assert (tmp_path / "build" / "tiny" / "table1" / "raw_segmented" / "lock").is_file()


@pytest.mark.slow
def test_a_result_of_other_settings_is_kept_out_of_the_book_and_run_again(grid, monkeypatch, capsys, one_torch_thread):
    """`fmareport run --set lr=0.01` (in this process: the command's own code) writes into the
    profile's results: the book keeps it out of the tables, naming the key, and the workflow plans
    the cell again (with the params' settings: the cell job is the README's papermill command)."""
    cell = "table1/raw_whole"
    monkeypatch.chdir(grid)
    assert cli_main(["run", "--profile", PROFILE, "--cell", cell, "--set", "lr=0.01"]) == 0, capsys.readouterr().err
    assert read_results(grid / "results" / PROFILE / f"{cell}.json").config.train.lr == 0.01
    status = {s.cell: s for s in run_statuses(PROFILE, load_results(grid / "results", PROFILE), grid)}
    assert status[cell].label == "other settings: lr 0.01 (params: 0.0005)"
    assert all(s.shown for c, s in status.items() if c != cell)
    assert plan(grid) == ({"cell": 1, "results": 1}, [cell])


@pytest.mark.slow
def test_make_report_refuses_a_second_run_and_recovers_from_a_kill(grid, tmp_path):
    """kill -9 of `make report` mid-cell leaves Snakemake's lock and a half-done job; the next
    `make report` releases the lock and reruns the job by itself. While one runs, another is refused."""
    cell = "table2/spectrogram_segmented_dropout"
    (grid / "results" / PROFILE / f"{cell}.json").unlink()
    make = ["make", "--no-print-directory", "report", f"PROFILE={PROFILE}", "GPUS=0", "CORES=2",
            f"REPORT_LOCK={tmp_path / 'report.lock'}", f"WORKFLOW_ARGS=results -s {REPO / 'Snakefile'} --directory {grid}"]  # fmt: skip
    log = grid / "build" / PROFILE / "logs" / f"{cell}.log"
    log.unlink(missing_ok=True)  # the grid's own run left one: wait for this run's
    first = subprocess.Popen(
        make, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(600):
        if log.is_file() or first.poll() is not None:
            break
        time.sleep(0.1)
    assert first.poll() is None and log.is_file(), "the cell job did not start"

    second = subprocess.run(make, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode != 0
    assert "make report: another make report is running here" in second.stderr

    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    # The kernel drops the report lock as the killed flock(1) exits, which need not have happened when
    # make's own exit is seen (a rerun right after once found it held, under load): wait for that, as a
    # user's next command would, up to 30 s.
    for _ in range(300):
        if (fd := take_lock(tmp_path / "report.lock", wait=False)) is not None:
            os.close(fd)
            break
        time.sleep(0.1)
    else:
        pytest.fail("the report lock is still held 30 s after the kill")
    assert list((grid / ".snakemake" / "locks").iterdir()), "a killed run leaves Snakemake's lock behind"
    again = subprocess.run(make, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert read_results(grid / "results" / PROFILE / f"{cell}.json").cell == cell

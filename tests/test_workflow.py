"""The workflow end to end on the smoke profile, through the real Snakefile and notebook.

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

from fmareport import experiment, notebook
from fmareport.cli import main as cli_main
from fmareport.config import ConfigError, SynthSettings, load_cell, load_config
from fmareport.data.synth import synthesize
from fmareport.files import take_lock
from fmareport.report.reference import compare, differences, read_reference
from fmareport.report.runs import expected_cells, run_statuses
from fmareport.results import ResultsError, load_baselines, load_results, read_results, validate

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

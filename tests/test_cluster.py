"""The GPU and cluster plan, without a GPU or a cluster: what `make report` passes to Snakemake,
what the paper profile's workflow plans (dry runs, locally with a GPU count and with the SLURM
executor), and that `fmareport on-gpu` gives each job a GPU of its own."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import snakemake_plan
from snakemake.exceptions import WorkflowError

from fmareport.workflow import expected_cells

REPO = Path(__file__).resolve().parents[1]
PAPER_CELLS = expected_cells(REPO / "params", "paper")  # every cell
SMOKE_CELLS = expected_cells(REPO / "params", "smoke")  # the tables and one ablation


def jobs_of(printed: str) -> dict[str, list[dict]]:
    """The jobs a dry run printed (with its shell commands), by rule: [{"resources": {...}, "shell": "..."}]."""
    jobs: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", printed):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        resources = dict(kv.split("=", 1) for kv in res[1].split(", ")) if res else {}
        shell = block.split("Shell command:", 1)[1] if "Shell command:" in block else ""
        jobs.setdefault(head[1], []).append({"resources": resources, "shell": shell})
    return jobs


def with_params(workdir: Path) -> Path:
    """`workdir` with a copy of the repo's params/ (made once), for the Snakefile to plan in."""
    if not (workdir / "params").exists():
        shutil.copytree(REPO / "params", workdir / "params")
    return workdir


def dry_run(workdir: Path, *targets: str, config: dict, resources: dict | None = None) -> dict[str, list[dict]]:
    """The repo's Snakefile planned in `workdir` (a copy of params/), no data needed, in this process
    (conftest.snakemake_plan: what `snakemake --dry-run --printshellcmds --resources ... --config ...`
    prints) -> the planned jobs by rule (jobs_of)."""
    return jobs_of(snakemake_plan(with_params(workdir), *targets, config=config, resources=resources))


def dry_run_command(workdir: Path, *args: str, env: dict[str, str]) -> dict[str, list[dict]]:
    """`snakemake --dry-run --printshellcmds ARGS` as a command (for --workflow-profile, a command-line
    option), in `workdir` (a copy of params/) and `env` -> the planned jobs by rule (jobs_of)."""
    with_params(workdir)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    done = subprocess.run(
        [*cmd, "--dry-run", "--printshellcmds", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return jobs_of(done.stdout)


def test_a_book_built_in_the_repo_does_not_hide_the_plan_of_another_working_directory(tmp_path):
    """`make report` in the checkout leaves _build/html/generated/results.html there; a workflow run
    in another folder (with no records of that build) must still plan its cells and its book."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for f in ("Snakefile", "_config.yml", "_toc.yml"):
        shutil.copy(REPO / f, repo / f)
    shutil.copytree(REPO / "book" / "pages", repo / "book" / "pages")
    shutil.copy(REPO / "book" / "experiment.ipynb", repo / "book" / "experiment.ipynb")
    built = repo / "_build" / "html" / "generated" / "results.html"
    built.parent.mkdir(parents=True)
    built.write_text("<html>a book built before</html>")
    out = snakemake_plan(with_params(tmp_path / "work"), config={"profile": "smoke"}, snakefile=repo / "Snakefile")
    assert "Nothing to be done" not in out
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:", 1)[1], re.M))
    assert planned["cell"] == str(len(SMOKE_CELLS)) and planned["book"] == "1", planned
    assert built.read_text() == "<html>a book built before</html>"  # a dry run: nothing written


def test_make_report_runs_one_cell_job_per_gpu(tmp_path):
    """`make report PROFILE=paper` on a machine with 2 GPUs: Snakemake gets the GPU count as the
    `gpu` resource limit (so it starts at most 2 cell jobs of gpu=1) and as the config."""
    out = subprocess.run(
        ["make", "-n", "report", "PROFILE=paper", "GPUS=2", f"REPORT_LOCK={tmp_path}/report.lock"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    command = " ".join(line.rstrip("\\") for line in out.splitlines() if "snakemake" in line or "--config" in line)
    assert "--resources gpu=2" in command and "profile=paper gpus=2" in command, out


def test_paper_dry_run_with_two_gpus_plans_one_gpu_per_cell_job(tmp_path):
    jobs = dry_run(tmp_path, config={"profile": "paper", "gpus": 2}, resources={"gpu": 2})
    cells = jobs["cell"]
    assert len(cells) == len(PAPER_CELLS) == len(list((REPO / "params").glob("[ta]*/*.yaml")))  # tables, ablations
    # Each cell job takes one unit of `gpu`, of which there are 2: at most 2 cells at a time.
    assert [c["resources"].get("gpu") for c in cells] == ["1"] * len(PAPER_CELLS)
    assert all("-m fmareport.cli on-gpu -- " in c["shell"] for c in cells)  # and on a GPU of its own
    for rule in ("fetch", "prepare", "book"):
        assert all(j["resources"].get("gpu") in (None, "0") for j in jobs[rule]), rule
    # A machine without GPUs, on a profile without a GPU: no gpu resource, cells run as they are.
    cpu = dry_run(tmp_path, config={"profile": "smoke", "gpus": 0})["cell"]
    assert [c["resources"].get("gpu", "0") for c in cpu] == ["0"] * len(SMOKE_CELLS)
    assert not any("on-gpu" in c["shell"] for c in cpu)


@pytest.mark.parametrize("how", [{"gpus": 0}, {}])
def test_the_paper_plan_without_a_gpu_stops_before_the_download(tmp_path, how, monkeypatch):
    """No GPU to give (gpus=0, or none torch sees: CUDA_VISIBLE_DEVICES=-1 here): the paper profile
    stops at once, saying why and how, instead of fetching 7.6 GB, building a 16 GB store and running
    the baseline before every cell dies in pick_device."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # the Snakefile's torch subprocess sees it too
    with pytest.raises(WorkflowError) as stopped:
        snakemake_plan(with_params(tmp_path), config={"profile": "paper", **how})
    out = "\n".join([str(stopped.value), *stopped.value.__notes__])
    assert "rule fetch" not in out, out[-3000:]
    assert "profile 'paper' needs a GPU (device: auto, cpu_fallback: false)" in out, out[-3000:]
    assert "set device: cpu in params/profiles/paper.yaml" in out and "TORCH_INDEX=" in out
    assert "--config gpu=1" in out
    # torch's reason is named, counted here or given (make report passes the count it took)
    assert "CUDA_VISIBLE_DEVICES='-1' hides every GPU" in out


# Two GPUs named by UUID, as a scheduler may set CUDA_VISIBLE_DEVICES: their locks are named by them.
# (Indices are mapped to UUIDs through nvidia-smi or torch: tests/test_gpu.py, at the level of gpu_keys;
# here that would start torch in every job, 3 CPU-s each, to learn that this machine has no GPU.)
FAKE_GPUS = ("GPU-3a3a3a3a", "GPU-5b5b5b5b")


def _probe(lock_dir: Path, hold: float, out: Path) -> subprocess.Popen:
    """`fmareport on-gpu` with CUDA_VISIBLE_DEVICES naming FAKE_GPUS, running a command that writes the
    GPU it got and the time it started, then holds the GPU for `hold` seconds."""
    script = (
        "import os, sys, time; "
        "open(sys.argv[1], 'w').write(f\"{os.environ['CUDA_VISIBLE_DEVICES']} {time.time()}\"); "
        "time.sleep(float(sys.argv[2]))"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(FAKE_GPUS)}
    cmd = [sys.executable, "-m", "fmareport.cli", "on-gpu", "--lock-dir", str(lock_dir), "--poll", "0.1"]
    return subprocess.Popen([*cmd, "--", sys.executable, "-c", script, str(out), str(hold)], env=env, cwd=REPO)


def test_on_gpu_gives_each_job_its_own_gpu_and_a_third_waits(tmp_path):
    t0 = time.time()
    first = [_probe(tmp_path / "locks", 3.0, tmp_path / f"job{i}") for i in range(2)]
    while not all((tmp_path / f"job{i}").exists() for i in range(2)):
        assert time.time() - t0 < 60, "the first two jobs did not start"
        time.sleep(0.05)
    third = _probe(tmp_path / "locks", 0.0, tmp_path / "job2")
    assert all(p.wait(60) == 0 for p in [*first, third])
    got = [(tmp_path / f"job{i}").read_text().split() for i in range(3)]
    assert sorted(g[0] for g in got[:2]) == sorted(FAKE_GPUS), got  # two jobs, two GPUs
    ended = min(float(g[1]) for g in got[:2]) + 3.0
    assert got[2][0] in FAKE_GPUS and float(got[2][1]) >= ended - 0.2, "the third job did not wait for a GPU"
    assert sorted(p.name for p in (tmp_path / "locks").glob("*.claim")) == ["3a3a3a3a.claim", "5b5b5b5b.claim"]


SLURM_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


@pytest.mark.skipif(
    not SLURM_PLUGIN, reason="snakemake-executor-plugin-slurm not installed (pip install -e .[cluster])"
)
def test_slurm_dry_run_of_the_paper_profile(tmp_path):
    """The committed workflow profile, as docs/running.md shows it: one SLURM job per cell with one
    GPU and the cell resources it states, the account and partitions from the environment; the
    download runs where Snakemake runs (a local rule). tests/test_slurm.py runs it on a real cluster."""
    profile = REPO / "profiles" / "slurm" / "config.yaml"
    settings = yaml.safe_load(profile.read_text())
    docs = (REPO / "docs" / "running.md").read_text()
    assert profile.read_text().split("executor: slurm", 1)[1] in docs, "docs/running.md must quote the profile"
    assert settings["executor"] == "slurm"

    cluster = {
        "FMAREPORT_SLURM_ACCOUNT": "lab",
        "FMAREPORT_SLURM_PARTITION": "cpu",
        "FMAREPORT_SLURM_GPU_PARTITION": "gpu",
    }
    jobs = dry_run_command(tmp_path, "--workflow-profile", str(profile.parent), env={**os.environ, **cluster})
    cell_res = settings["set-resources"]["cell"]
    assert len(jobs["cell"]) == len(PAPER_CELLS)
    for job in jobs["cell"]:
        r = job["resources"]
        assert (r["gpu"], r["slurm_partition"], r["slurm_account"]) == ("1", "gpu", "lab")
        assert (int(r["mem_mb"]), int(r["runtime"])) == (cell_res["mem_mb"], cell_res["runtime"])
        assert "on-gpu" in job["shell"]
    for rule in ("fetch", "prepare"):
        (job,) = jobs[rule]
        assert "gpu" not in job["resources"]
        assert (job["resources"]["slurm_partition"], job["resources"]["slurm_account"]) == ("cpu", "lab")
    # Unset, each is empty: the plugin then submits without -A and to the cluster's default partition.
    unset = {k: v for k, v in os.environ.items() if k not in cluster}
    (job,) = dry_run_command(tmp_path, "--workflow-profile", str(profile.parent), "prepare", env=unset)["prepare"]
    assert (job["resources"]["slurm_partition"], job["resources"]["slurm_account"]) == ("", "")

    # Which rules run on the submitting host, as the SLURM executor reads them from the workflow.
    script = (
        "import sys; from pathlib import Path; from snakemake.api import SnakemakeApi; "
        "from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings\n"
        "with SnakemakeApi(OutputSettings()) as api:\n"
        "    wf = api.workflow(resource_settings=ResourceSettings(cores=1), "
        "config_settings=ConfigSettings(config={'profile': 'paper', 'gpu': 1}), "
        "snakefile=Path(sys.argv[1]), workdir=Path(sys.argv[2]))._workflow\n"
        "    print(sorted(r.name for r in wf.rules if r.name in wf._localrules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "Snakefile"), str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    local = yaml.safe_load(done.stdout.strip().splitlines()[-1])
    assert "fetch" in local and not {"prepare", "cell", "book"} & set(local), local

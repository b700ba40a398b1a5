"""The smoke grid and its book through a real SLURM cluster: one node on this machine, started by
tests/slurm/cluster.sh (Debian's slurmctld, slurmd and munge, installed when missing), and the
workflow run as a user runs it, `snakemake --workflow-profile profiles/slurm`: one SLURM job per
cell, the baseline and the book SLURM jobs too. Every cell's numbers must equal a local run's.

Marked `slurm` and left out of the default `pytest` run (pyproject.toml's addopts): it needs root
(apt-get, slurmd) and a few minutes. Run it with `pytest -m slurm` (.ci/run does, after `make test`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_workflow import CELLS, checkout_copy

from fmareport.report.reference import compare, differences, make_reference, read_reference
from fmareport.results import load_baselines, load_results

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
PROFILE = "smoke"
SMOKE_SCALE = [  # the profile plans paper-scale jobs (16 and 8 threads, 48 GB cells): smoke-scale here
    "--config", f"profile={PROFILE}", "gpu=0",
    # One thread per cell, as a local run: the numbers are bit-identical only with the same threads.
    "--set-threads", f"synth={min(2, os.cpu_count() or 1)}", f"prepare={min(2, os.cpu_count() or 1)}", "cell=1",
    # The profile's default-resources as committed (the account and partition from the environment,
    # 8 GB, 60 min), but every job's memory smoke-scale: a node here may have less than 8 GB.
    "--set-resources", *(f"{rule}:mem_mb=2000" for rule in ("synth", "prepare", "baseline", "book", "cell")),
    "cell:runtime=30",
    # No accounting on this cluster (sacct: "Slurm accounting storage is disabled"): squeue gives the
    # states, finished jobs included for MinJobAge (600 s, >= 3 x the first wait, as the plugin asks).
    "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "5",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory, request) -> Path:
    """A one-node SLURM cluster of this machine, its files in a scratch folder (-> that folder); its
    jobs cancelled, its daemons stopped and its folder removed at the end, however the tests end."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e .[cluster]")
    if os.geteuid() != 0:
        pytest.skip("a SLURM cluster needs root (apt-get, slurmd): run the slurm test as root")
    folder = tmp_path_factory.mktemp("slurm") / "cluster"
    request.addfinalizer(lambda: subprocess.run([str(CLUSTER), "stop", str(folder)], check=False, timeout=120))
    env = {**os.environ, "SLURMCTLD_PORT": str(free_port()), "SLURMD_PORT": str(free_port())}
    done = subprocess.run([str(CLUSTER), "start", str(folder)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"the SLURM cluster did not start:\n{done.stdout}{done.stderr[-6000:]}"
    return folder


def test_the_smoke_grid_and_its_book_through_slurm(slurm_cluster, tmp_path, request):
    repo = checkout_copy(tmp_path / "repo")  # the book rule writes the checkout's _build/: a copy's
    env = {
        **os.environ,
        "SLURM_CONF": str(slurm_cluster / "slurm.conf"),
        "PATH": f"{slurm_cluster / 'bin'}{os.pathsep}{os.environ['PATH']}",  # srun in a job (cluster.sh)
        "PYTHONPATH": str(repo),  # the jobs import the code under test, whatever the venv installed
    }
    # The cluster's one partition, named; no account (unset: the plugin submits without -A).
    env["FMAREPORT_SLURM_PARTITION"] = "debug"
    env.pop("FMAREPORT_SLURM_ACCOUNT", None)
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", "profiles/slurm", *SMOKE_SCALE]
    started = time.monotonic()
    done = subprocess.run(
        cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=2400
    )
    took = time.monotonic() - started
    assert done.returncode == 0, f"the workflow through SLURM failed after {took:.0f} s:\n{done.stdout[-8000:]}"
    print(f"smoke grid and book through SLURM: {took:.0f} s")

    # One SLURM job per cell, and one each for synth, prepare, the baseline and the book: the jobs
    # squeue still lists (MinJobAge), by the comment the plugin gives them (rule_<rule>[_wildcards_..]).
    listed = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%k|%T|%P"], env=env, capture_output=True, text=True
    )
    jobs = [line.split("|") for line in listed.stdout.split()]
    assert jobs and {(state, partition) for _, state, partition in jobs} == {("COMPLETED", "debug")}, listed
    rules = sorted(comment.removeprefix("rule_").split("_wildcards_")[0] for comment, _, _ in jobs)
    assert rules == sorted(["synth", "prepare", "baseline", "book", *["cell"] * len(CELLS)]), rules
    cells = [comment for comment, _, _ in jobs if comment.startswith("rule_cell_")]
    assert all(sum(c.replace("/", "_") in comment for comment in cells) == 1 for c in CELLS), cells

    # The book, built by its SLURM job from every cell's run.
    assert (repo / "_build" / "html" / "generated" / "results.html").is_file()
    assert (repo / "build" / PROFILE / "book.done").is_file()

    # Every cell's numbers equal a local run's: the published smoke reference where this is its kind
    # of machine, else this machine's own local run of the grid (the session's smoke_grid).
    results = load_results(repo / "results", PROFILE)
    baselines = load_baselines(repo / "results", PROFILE)
    assert sorted(results) == CELLS
    provenance = next(iter(results.values())).provenance
    assert provenance.hardware["torch_threads"] == 1
    ref = read_reference(PROFILE, REPO)
    if ref is None or differences(ref, provenance):
        local = request.getfixturevalue("smoke_grid")
        ref = make_reference(
            PROFILE, load_results(local / "results", PROFILE), load_baselines(local / "results", PROFILE)
        )
        assert not differences(ref, provenance), "a local run on this machine should be of the same kind"
    rows = compare(ref, results, baselines)
    assert len(rows) == len(CELLS) + len(ref.baselines)
    moved = [f"{r['Run']}: {r['Verdict']} ({r['Detail']})" for r in rows if r["Verdict"] != "identical"]
    assert not moved, "the SLURM run's numbers differ from a local run's:\n" + "\n".join(moved)

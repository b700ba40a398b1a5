"""Shared fixtures: a tiny synthetic FMA-format data set and its clip store, built once per session.

`tiny_store` is what other tests train on: 40 tracks (32 training / 4 validation /
4 test, 5 per genre), 8192 samples at 8 kHz each, plus 5 bad cases that prepare skips.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fmareport.config import Config
from fmareport.data.store import ClipStore, prepare

REPO = Path(__file__).resolve().parents[1]
FMA_REAL = REPO.parent / "shared" / "data" / "fma_real"  # real FMA files (see its README.md)


# The order in which the two pytest-xdist workers take the test files (pyproject.toml: --dist loadfile,
# --no-loadscope-reorder: a file's tests on one worker, the next file to the first worker free), costliest
# first so that the last files to run are short ones (longest-processing-time-first; CPU-seconds of one
# run in docs/measurements.md, "The test suite's time"). test_book.py first: its fixture makes the smoke grid,
# then the book, the suite's longest chain. test_workflow.py, the costliest after it, next but one: its
# first test (the README's route in a fresh checkout) needs no grid, and by its second the grid is made.
FILE_ORDER = (
    "test_book.py",
    "test_cluster.py",
    "test_workflow.py",
    "test_faults.py",
    "test_benchmarks.py",
    "test_synth.py",
    "test_train.py",
    "test_model.py",
    "test_gpu.py",
    "test_store.py",
    "test_baseline.py",
)  # then the others, alphabetically


def pytest_collection_modifyitems(config, items):
    missing = [name for name in FILE_ORDER if not (Path(__file__).parent / name).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py: FILE_ORDER names {missing}, which are not test files here")
    rank = {name: i for i, name in enumerate(FILE_ORDER)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FILE_ORDER)))  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory) -> Config:
    """Data settings of the tiny set: 5 tracks/genre x 1.5 s at 22.05 kHz -> clips of 8192 samples at 8 kHz."""
    root = tmp_path_factory.mktemp("tiny")
    return Config(
        profile="tiny",
        cell="tests",
        data_source="synth",
        data_dir=str(root / "synth"),
        store_root=str(root / "stores"),
        synth_tracks_per_genre=5,
        synth_seconds=1.5,
        synth_sample_rate=22050,
        synth_seed=0,
        synth_bad_cases=True,
        sample_rate=8000,
        clip_samples=8192,
        prepare_workers=1,
        device="cpu",
        results_dir=str(root / "results"),
    )


@pytest.fixture(scope="session")
def tiny_store(tiny_config) -> ClipStore:
    """The tiny set, synthesized and prepared (int16 (40, 8192) clips)."""
    return prepare(tiny_config, progress=False)


@pytest.fixture(scope="session")
def tiny_data(tiny_store, tiny_config) -> Path:
    """Root of the tiny synthetic data set (fma_metadata/, fma_small/)."""
    return Path(tiny_config.run.data_dir)


@pytest.fixture(scope="session")
def fma_real() -> Path:
    """shared/data/fma_real: real FMA tracks 2 and 10 (cut to 2 s) and the official genres.csv."""
    if not FMA_REAL.is_dir():
        pytest.skip(f"real FMA test files not found at {FMA_REAL} (the shared/ folder beside the repo)")
    return FMA_REAL


@pytest.fixture(scope="module")
def one_torch_thread():
    """Model tests use this: their models are tiny, threads gain nothing, and OpenMP threads
    crawl (10x slower, measured) when other processes hold the 2 cores. One thread, then restore."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def snakemake_plan(
    workdir: Path,
    *targets: str,
    config: dict,
    resources: dict[str, int] | None = None,
    snakefile: Path = REPO / "Snakefile",
) -> str:
    """What `snakemake -s SNAKEFILE --directory WORKDIR --cores 2 --dry-run --printshellcmds [--resources
    ...] TARGETS --config ...` prints, planned in this process through Snakemake's API (what its command
    line calls once the arguments are parsed): 0.2-0.6 CPU-s a plan where a `snakemake` process takes 2-3,
    most of it imports. Nothing runs; the working directory is changed back. A Snakefile that stops
    raises its error (snakemake.exceptions.WorkflowError) with what it printed as a note."""
    import contextlib
    import io

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):  # where its log handler writes
        try:
            with SnakemakeApi(OutputSettings(printshellcmds=True)) as api:
                workflow = api.workflow(
                    resource_settings=ResourceSettings(cores=2, resources=resources or {}),
                    config_settings=ConfigSettings(config=config),
                    snakefile=snakefile,
                    workdir=workdir,
                )
                workflow.dag(DAGSettings(targets=set(targets))).execute_workflow(executor="dryrun")
        except Exception as err:
            err.add_note(out.getvalue()[-3000:])
            raise
    return out.getvalue()


def run_snakemake(workdir: Path, *args: str, profile: str = "smoke") -> subprocess.CompletedProcess:
    """The repo's Snakefile run in `workdir` (its own params/ copy) on `profile`; stdout and stderr
    together as text. `args` (options, then targets such as "results") go before --config."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", *args, "--config", f"profile={profile}"]  # fmt: skip
    return subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="session")
def smoke_grid(tmp_path_factory) -> Path:
    """The smoke profile's whole grid, run once per session through the real Snakefile (target
    `results`) in a scratch working directory with its own copy of params/: the working
    directory holding data/, build/, results/. The book and workflow tests share it.

    Under pytest-xdist (pyproject.toml's addopts) the first worker that needs it runs it, holding
    a lock in the folder the workers' temporary folders share; another worker waits for it there
    and then reads the same grid (its tests copy it before they change anything)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    root = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.mktemp("shared")
    work, done_marker = root / "smoke-grid", root / "smoke-grid.done"
    with open(root / "smoke-grid.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, however the worker ends
        if not done_marker.exists():
            shutil.rmtree(work, ignore_errors=True)  # what a failed run left
            shutil.copytree(REPO / "params", work / "params")
            done = run_snakemake(work, "results")
            assert done.returncode == 0, f"smoke workflow failed:\n{done.stdout[-8000:]}"
            done_marker.touch()
    return work

"""Every benchmark runs: each one's `--tiny` mode, in this process (docs/running.md, "Benchmarks").

The tiny sizes check that a benchmark still runs against today's library (a renamed function, a
config check it does not satisfy) and prints its table; the numbers they give mean nothing.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# What each benchmark's table prints when it ran to the end.
LAST_WORDS = {
    "bench_baseline": "ratio 140 / 40: wall",
    "bench_cells": "all cells (core-seconds)",
    "bench_coverage": "simulated runs per row",
    "bench_data": "the store is",
    "bench_hash": "crc32",
    "bench_train": "fp32 matmul (64x64)",
}


def load(name: str, monkeypatch):
    """benchmarks/<name>.py as a module, imported as `python benchmarks/<name>.py` would (its folder
    on sys.path: the benchmarks share benchmarks/tiny.py)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_is_listed():
    assert sorted(p.stem for p in BENCHMARKS.glob("bench_*.py")) == sorted(LAST_WORDS)
    assert all("tiny.parse_args(" in (BENCHMARKS / f"{name}.py").read_text() for name in LAST_WORDS)


@pytest.mark.parametrize("name", sorted(set(LAST_WORDS) - {"bench_cells"}))
def test_the_benchmark_runs_in_its_tiny_mode(name, capsys, one_torch_thread, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # every benchmark writes into a temporary folder
    load(name, monkeypatch).main(["--tiny"])
    out = capsys.readouterr().out
    assert LAST_WORDS[name] in out, out[-2000:]


def test_bench_cells_runs_in_its_tiny_mode_on_a_workflows_folder(smoke_grid, capsys, tmp_path, monkeypatch):
    """On the smoke data and store the session's workflow made (--workdir): its own would be a synth."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    load("bench_cells", monkeypatch).main(["--tiny", "--workdir", str(smoke_grid)])
    out = capsys.readouterr().out
    assert LAST_WORDS["bench_cells"] in out and "profile smoke: 1 cells" in out, out[-2000:]


@pytest.mark.gpucheck
def test_the_gpu_check_runs_every_check_in_its_dry_mode(tmp_path, monkeypatch):
    """benchmarks/gpu_check.py --dry: every check on the CPU at tiny sizes (the GPU-only parts say
    skipped), one markdown report, exit status 0 (docs/running.md, "The GPU check")."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "gpu-check.md"
    assert load("gpu_check", monkeypatch).main(["--dry", "--out", str(out)]) == 0
    report = out.read_text()
    for check in ("1. gpu tests", "2. paper shapes", "3. sync-free steps", "4. resume after kill -9"):
        assert f"| {check} |" in report, report
    assert "| 5. > 2^31 samples | pass" in report and "| 6. bf16 vs fp32 | pass" in report, report
    assert "| 4. resume after kill -9 | pass |" in report and "SIGKILL (exit -9) after epoch 1" in report, report
    assert "FAIL" not in report, report

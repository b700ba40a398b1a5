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


@pytest.mark.parametrize("name", sorted(LAST_WORDS))
def test_the_benchmark_runs_in_its_tiny_mode(name, capsys, one_torch_thread, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # every benchmark writes into a temporary folder
    load(name, monkeypatch).main(["--tiny"])
    out = capsys.readouterr().out
    assert LAST_WORDS[name] in out, out[-2000:]

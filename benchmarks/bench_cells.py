"""What one seed of each cell of a profile costs, before and after, in one run.

    python benchmarks/bench_cells.py                          # demo: every cell, ours against our conv kernels
    python benchmarks/bench_cells.py --against 27288fd        # ours against a commit (git archive of fmareport/)
    python benchmarks/bench_cells.py --epochs 2 --cells table1/raw_whole ablations/segment_batches
    python benchmarks/bench_cells.py --profile smoke --workdir DIR   # DIR/params, DIR/data: a workflow's folder

Each measurement is one process that runs fmareport.train.train_seed (seed 0, --epochs
epochs, no checkpoints) on the profile's clip store (made first if missing: `fmareport
prepare --profile demo`), for every cell twice: "ours", this working tree as it runs (on the
CPU every convolution one im2col matmul, fmareport.model; glibc keeping freed memory,
fmareport.device), and "before": by default the same tree on PyTorch's convolution kernels
(model.MATMUL_DEVICES emptied), with --against REV the package as it was at commit REV.
The order alternates from cell to cell, so load from other processes falls on both alike.

Per cell it prints an epoch's seconds (the training steps and the validation pass) and the
test pass's, for each, and their ratio; then a cell's seconds at the profile's seeds and
epochs, seeds x (epochs x epoch + test), and the sum over the cells: the core-seconds that
the workflow spreads over the cores (docs/running.md sizes the demo profile from them).
Single-threaded by default, as a cell job runs under `make report` (cell_threads: 1).

Seconds are CPU seconds (train.py's clock is switched to time.process_time in the child;
--wall keeps the wall clock): with one thread they are the core-seconds a cell takes, and
other processes on the machine lengthen them much less than the wall clock, which also
counts the time a process waits for a core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import tiny  # benchmarks/tiny.py: the --tiny option

from fmareport.config import load_cell
from fmareport.workflow import expected_cells

REPO = Path(__file__).resolve().parents[1]
FORMS = ("ours", "before")

# One measurement, in its own process: PYTHONPATH picks the package (this tree or a commit's).
CHILD = """
import json, sys, time, types
import torch
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
from fmareport import model, train
from fmareport.config import load_cell
from fmareport.data.store import prepare
if a["convs"]:
    model.MATMUL_DEVICES = ()
cfg = load_cell(a["profile"], a["cell"])
cfg = cfg.replace(epochs=a["epochs"], seeds=cfg.schedule.seeds[:1])
store = prepare(cfg, progress=False)
if not a["wall"]:
    train.time = types.SimpleNamespace(perf_counter=time.process_time)
r = train.train_seed(cfg, store, cfg.schedule.seeds[0], checkpoint_dir=None, progress=False)
epochs = [h.seconds for h in r.history]
print(json.dumps({"epoch": sum(epochs) / len(epochs), "test": r.seconds - sum(epochs), "package": model.__file__}))
"""


TINY = {"profile": "smoke", "cells": ["table1/raw_whole"], "epochs": 1}  # --tiny's settings


def extract(rev: str, into: Path) -> Path:
    """fmareport/ as it was at commit `rev`, under `into`; -> the folder to put on PYTHONPATH."""
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), rev, "fmareport"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(tree: Path, cell: str, args, convs: bool) -> tuple[float, float]:
    """(seconds per epoch incl. validation, seconds of the test passes) of one seed, in a child process
    working in args.workdir (whose params/ names the cells, and where the profile's data and store go)."""
    a = dict(profile=args.profile, cell=cell, epochs=args.epochs, threads=args.threads, wall=args.wall, convs=convs)
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
    out = subprocess.run(
        # -P: no working directory on sys.path, so PYTHONPATH alone says which fmareport runs
        [sys.executable, "-P", "-c", CHILD, json.dumps(a)],
        cwd=args.workdir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    if not got["package"].startswith(str(tree)):
        raise RuntimeError(f"the child ran {got['package']}, not the package under {tree}")
    return got["epoch"], got["test"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--cells", nargs="*", default=None, help="default: the cells the profile runs")
    p.add_argument("--against", default=None, help="a commit to compare with (default: our own conv kernels)")
    p.add_argument("--epochs", type=int, default=1, help="epochs timed per cell and form")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--wall", action="store_true", help="wall-clock seconds instead of CPU seconds")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="the folder whose params/ names the cells and where the profile's data and store are (made "
        "there when missing); default: the repository, or under --tiny a temporary folder",
    )
    args = tiny.parse_args(p, argv, TINY)
    with tempfile.TemporaryDirectory() as tmp:
        if args.workdir is None and args.tiny:  # data and store in the temporary folder, not the repository's data/
            args.workdir = Path(tmp) / "work"
            args.workdir.mkdir()
            (args.workdir / "params").symlink_to(REPO / "params")
        args.workdir = (args.workdir or REPO).resolve()
        names = args.cells or expected_cells(args.workdir / "params", args.profile)  # as the workflow runs them
        with contextlib.chdir(args.workdir):  # its params/, as the children read them
            full = load_cell(args.profile, names[0])  # the profile's seeds and epochs, for the totals
        before = extract(args.against, Path(tmp)) if args.against else REPO
        what = f"commit {args.against}" if args.against else "our conv kernels"
        print(
            f"profile {args.profile}: {len(names)} cells, seed {full.schedule.seeds[0]}, {args.epochs} epoch(s) timed; "
            f"before = {what}; torch threads {args.threads}; {'wall' if args.wall else 'CPU'} seconds; "
            f"a cell = {len(full.schedule.seeds)} seeds x ({full.schedule.epochs} epochs + test)"
        )
        print(f"{'cell':<40}{'epoch s':>9}{'before':>8}{'ratio':>7}{'test s':>8}{'before':>8}", end="")
        print(f"{'cell s':>8}{'before':>8}{'ratio':>7}")
        totals = dict.fromkeys(FORMS, 0.0)
        for i, name in enumerate(names):
            got = {}
            for form in FORMS if i % 2 == 0 else FORMS[::-1]:
                tree = REPO if form == "ours" else before
                got[form] = measure(tree, name, args, convs=form == "before" and not args.against)
            cell = {f: len(full.schedule.seeds) * (full.schedule.epochs * e + t) for f, (e, t) in got.items()}
            for f in FORMS:
                totals[f] += cell[f]
            (e1, t1), (e0, t0) = got["ours"], got["before"]
            print(
                f"{name:<40}{e1:>9.1f}{e0:>8.1f}{e0 / e1:>6.2f}x{t1:>8.1f}{t0:>8.1f}"
                f"{cell['ours']:>8.0f}{cell['before']:>8.0f}{cell['before'] / cell['ours']:>6.2f}x",
                flush=True,
            )
    ratio = totals["before"] / totals["ours"]
    print(f"{'all cells (core-seconds)':<40}{'':>33}{totals['ours']:>8.0f}{totals['before']:>8.0f}{ratio:>6.2f}x")


if __name__ == "__main__":
    main()

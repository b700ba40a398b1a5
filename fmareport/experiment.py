"""One experiment cell, run end to end: `run_cell(cfg) -> CellResults`.

A cell is a profile plus one params file (`params/<table>/<cell>.yaml`). `run_cell` takes the cell's
lock, claims the device (a GPU profile without a usable GPU stops here), makes the store, checks
the folders (`check_folders`) before any epoch, trains every seed with a checkpoint after each epoch
in `build/<profile>/<cell>/checkpoints/<settings hash>/` (a killed run resumes; other settings never
do), replaces the kept files and the results file together or not at all (`write_cell_files`), and
deletes its checkpoints (docs/contracts.md, "One cell"; docs/faults.md for what each step refuses). The experiment notebook
(`book/experiment.ipynb`) is this call; relative paths are relative to the working directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from . import provenance
from .config import RESUME_FREE_KEYS, Config
from .data.fma import GENRES
from .data.store import prepare
from .device import claimed_device, device_policy
from .disk import check_room, check_writable, human
from .errors import FmareportError, StorageError
from .files import leftover_temporaries, locked, mark_owned, remove_owned, replaced_together
from .model import Net, n_params
from .results import CellResults, DataInfo, Provenance, TestTracks, results_path, write_results
from .train import checkpoint_bytes, train_seed
from .weights import embeddings_blob, embeddings_bytes, embeddings_path, weights_blob, weights_bytes, weights_path

CHECKPOINT_MARKER = ".fmareport-checkpoints"  # inside every checkpoint folder run_cell makes
# A results file's size: per seed, a test track's 8 probabilities, label, id and artist id as JSON
# (8 x 25 characters and some: 224 bytes measured at indent 1) and an epoch's row of the history;
# 64 KiB for the config and provenance.
RESULTS_BYTES_PER_TEST_TRACK = 256
RESULTS_BYTES_PER_EPOCH = 256
RESULTS_BASE_BYTES = 64 << 10


class CellBusyError(FmareportError, RuntimeError):
    """Another process is running the same cell."""


@dataclass(frozen=True)
class CellPaths:
    """Where one cell's files go; every part of every path comes from checked names."""

    results: Path  # results/<profile>/<cell>.json
    weights: Path  # results/<profile>/<cell>.weights.pt: the first seed's weights (fmareport.weights)
    embeddings: Path  # results/<profile>/<cell>.embeddings.npz: every seed's test-set embeddings
    build: Path  # build/<profile>/<cell>/: lock and checkpoints
    checkpoints: Path  # build/<profile>/<cell>/checkpoints/<settings hash>/

    @classmethod
    def of(cls, cfg: Config) -> CellPaths:
        build = Path(cfg.run.build_dir) / cfg.profile / cfg.cell
        json_path = results_path(cfg.run.results_dir, cfg.profile, cfg.cell)
        checkpoints = build / "checkpoints" / settings_hash(cfg)
        return cls(json_path, weights_path(json_path), embeddings_path(json_path), build, checkpoints)


def settings_hash(cfg: Config) -> str:
    """12 hex digits of the settings that change a run's numbers (not epochs, seeds or folders)."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in RESUME_FREE_KEYS}
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


@contextlib.contextmanager
def cell_lock(paths: CellPaths) -> Iterator[None]:
    """Hold the cell's lock for the block; CellBusyError at once if another process holds it."""
    lock = paths.build / "lock"
    busy = CellBusyError(
        f"cell {paths.results.stem!r} is already running (lock {lock} is held): wait for that run to finish"
    )
    with locked(lock, busy):
        yield


def meta_net(cfg: Config) -> Net:
    """The cell's network on torch's meta device: its shapes and sizes, no memory."""
    with torch.device("meta"):
        return Net.of(cfg)


def results_bytes(cfg: Config, n_test: int) -> int:
    """The most a cell's results file takes, for `n_test` test tracks."""
    per_seed = n_test * RESULTS_BYTES_PER_TEST_TRACK + cfg.schedule.epochs * RESULTS_BYTES_PER_EPOCH
    return len(cfg.schedule.seeds) * per_seed + RESULTS_BASE_BYTES


def check_folders(cfg: Config, paths: CellPaths, n_test: int) -> None:
    """Before the first epoch: the checkpoint and results folders are writable, and their disks hold
    every seed's checkpoint plus the one being saved, and the results, weights and embeddings files twice
    (the old and the new one during their atomic writes). StorageError naming the folder, the key and the
    room needed."""
    state = meta_net(cfg).state_dict()
    checkpoint = checkpoint_bytes(state)
    check_writable(paths.checkpoints, "build_dir")
    check_room(paths.checkpoints, (len(cfg.schedule.seeds) + 1) * checkpoint, "the checkpoints", "build_dir")
    check_writable(paths.results.parent, "results_dir")
    kept = weights_bytes(state) + embeddings_bytes(len(cfg.schedule.seeds), n_test, cfg.model.dense[-1])
    results = 2 * (results_bytes(cfg, n_test) + kept)
    check_room(paths.results.parent, results, "the results, weights and embeddings files", "results_dir")


def run_cell(cfg: Config, progress: bool = True, entry: str = "fmareport.experiment.run_cell") -> CellResults:
    """Train every seed of the cell `cfg`, write its results file, return the results.

    `entry` is recorded in the provenance: what ran the cell (the notebook says so).
    """
    paths = CellPaths.of(cfg)
    check_writable(paths.build, "build_dir")  # the lock lives there
    # A GPU profile without a usable GPU stops at claimed_device, before the store.
    with cell_lock(paths), claimed_device(cfg) as device:
        remove_leftovers(paths)
        started = provenance.now()
        store = prepare(cfg, progress)
        check_folders(cfg, paths, len(store.split_indices("test")))
        checkpoints = mark_owned(paths.checkpoints, CHECKPOINT_MARKER)  # resumed or made afresh
        policy = device_policy(cfg, store.audio.nbytes, device)  # once: every seed runs as the first
        kept: dict = {}  # the first seed's weights (fmareport.weights)
        embeddings: dict = {}  # every seed's test-set embeddings (fmareport.weights)
        seeds = [
            train_seed(
                cfg,
                store,
                seed,
                checkpoint_dir=checkpoints,
                progress=progress,
                policy=policy,
                keep=kept if i == 0 else None,
                embeddings=embeddings,
            )
            for i, seed in enumerate(cfg.schedule.seeds)
        ]
        test = TestTracks.of(store)
        blob, embedded = weights_blob(kept), embeddings_blob(embeddings, test.track_ids)
        results = CellResults(
            run_id=uuid.uuid4().hex,
            profile=cfg.profile,
            cell=cfg.cell,
            config=cfg,
            genres=list(GENRES),
            data=DataInfo.of(cfg, store),
            n_params=n_params(meta_net(cfg)),
            test=test,
            seeds=seeds,
            provenance=Provenance(
                **provenance.collect(str(device)), started=started, finished=provenance.now(), entry=entry
            ),
            weights_sha1=hashlib.sha1(blob).hexdigest(),
            embeddings_sha1=hashlib.sha1(embedded).hexdigest(),
        )
        write_cell_files(paths, results, blob, embedded)
        remove_owned(checkpoints, CHECKPOINT_MARKER)
    return results


def write_cell_files(paths: CellPaths, results: CellResults, weights: bytes, embeddings: bytes) -> None:
    """The kept files and the results file that names them, replaced together or not at all: the
    kept files are written whole to temporary files first (`files.replaced_together`), then the
    results file atomically, then the kept files renamed into place. A write that fails (a full
    disk) leaves the previous run's three files as they were and raises StorageError naming the
    folder; the checkpoints are kept, so a rerun resumes after the last epoch. A kill between the
    renames leaves the new results file beside old kept files, which `weights.kept_bytes` refuses by
    their SHA1 (docs/contracts.md, "One cell")."""
    try:
        with replaced_together({paths.weights: weights, paths.embeddings: embeddings}):
            write_results(paths.results, results)
    except OSError as err:
        need = human(len(weights) + len(embeddings) + len(results.model_dump_json(indent=1)))
        raise StorageError(
            f"{paths.results.parent}: writing the results, weights and embeddings of cell {results.cell!r} ({need}) "
            f"failed ({err.strerror or err}); the previous run's files there are as they were: make room there "
            "(or set results_dir elsewhere) and rerun the same command (it resumes from its checkpoints)"
        ) from None


def remove_leftovers(paths: CellPaths) -> None:
    """Delete the temporary files a killed `write_cell_files` left beside the cell's files: with the
    cell's lock held, no other process writes them."""
    for path in (paths.weights, paths.embeddings, paths.results):
        for leftover in leftover_temporaries(path):
            leftover.unlink(missing_ok=True)

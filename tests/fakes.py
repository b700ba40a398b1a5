"""Small results files for the report's tests, built whole and validated (`fmareport.results.validate`).

`cell_result` makes a `CellResults` whose every number follows from a right-or-wrong matrix over
test tracks, as training writes it: the report reads nothing a real file would not hold.
"""

from __future__ import annotations

import numpy as np

from fmareport.config import Config
from fmareport.data.fma import GENRES
from fmareport.results import CellResults, validate

N_TRACKS = 1000  # test tracks of a result given by accuracies: 3 decimals are exact (k / 1000)
PROVENANCE = {
    "versions": {"torch": "2"},
    "python": "3.11",
    "git_commit": None,
    "git_dirty": None,
    "device": "cpu",
    "hardware": {},
    "started": "2026-01-01T00:00:00Z",
    "finished": "2026-01-01T00:01:00Z",
    "entry": "test",
}


def correct_of(accs, n: int = N_TRACKS) -> np.ndarray:
    """(S, n) bool: seed s right on the first round(accs[s] * n) tracks (test_acc_last is then accs[s]
    for accuracies of 3 decimals)."""
    return np.stack([np.arange(n) < round(a * n) for a in accs])


def seed_record(seed: int, right: np.ndarray, losses=(2.0,)) -> dict:
    """One seed's record: labels i % 8 (`labels_of`), a guess of the label where `right`, else the next genre."""
    labels = labels_of(len(right))
    guess = np.where(right, labels, (labels + 1) % 8)
    return {
        "seed": seed,
        "history": [
            {"epoch": e, "train_loss": v, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "seconds": 1.0}
            for e, v in enumerate(losses, start=1)
        ],
        "test_acc_at_best": None,  # every epoch's val_acc is the same: the first is the best
        "seconds": 60.0,
        "segments_per_second": 10.0,
        "test_probs": probs_of(guess),
    }


def labels_of(n: int) -> np.ndarray:
    """The labels of n fake test tracks: track i is genre i % 8."""
    return np.arange(n) % 8


def probs_of(guess) -> list[list[float]]:
    """A row per track: 0.93 on the guess, 0.01 elsewhere."""
    probs = np.full((len(guess), 8), 0.01)
    probs[np.arange(len(guess)), guess] = 0.93
    return probs.tolist()


def cell_result(
    kind: str = "spectrogram",
    segmented: bool = True,
    dropout: float = 0.0,
    correct=None,
    *,
    accs=None,
    profile: str = "p",
    cell: str | None = None,
    seeds=None,
    artists=None,
    losses=(2.0,),
    store_fingerprint: str = "f" * 40,
    hardware: dict | None = None,
    **config,
) -> CellResults:
    """A validated result of one cell: seed s right on test track n iff correct[s][n] (or, given
    `accs`, `correct_of(accs)`); `seeds` (default 0, 1, ...), `artists` (per test track, or None),
    each seed's training `losses` per epoch, the machine (provenance's `hardware`), and any other config
    keys (`base`, `spectrogram_scale`)."""
    correct = np.asarray(correct_of(accs) if correct is None else correct, dtype=bool)
    seeds = list(range(len(correct))) if seeds is None else list(seeds)
    cell = cell or f"{kind}_{'seg' if segmented else 'whole'}_{round(dropout * 10)}"
    cfg = Config(profile=profile, cell=cell, seeds=seeds, epochs=len(losses), input=kind, segmented=segmented,
                 dropout=float(dropout), **config)  # fmt: skip
    return of_config(cfg, correct, artists, losses, store_fingerprint, hardware)


def of_config(
    cfg: Config,
    correct=None,
    artists=None,
    losses=None,
    store_fingerprint: str = "f" * 40,
    hardware=None,
    data: dict | None = None,
) -> CellResults:
    """A validated result of the config `cfg` (its seeds; one of `losses` per epoch, default 2.0 each);
    seed s right on test track n iff correct[s][n] (default: on every other one of 8 tracks); `data`:
    fields of its data block to change (`store`, `tracks`)."""
    seeds = cfg.schedule.seeds
    losses = (2.0,) * cfg.schedule.epochs if losses is None else losses
    correct = np.tile(np.arange(8) % 2 == 0, (len(seeds), 1)) if correct is None else np.asarray(correct, dtype=bool)
    records = [seed_record(s, right, losses) for s, right in zip(seeds, correct)]
    if len(losses) > 1:  # the first epoch is the best: the last's accuracy is not the best's
        records = [r | {"test_acc_at_best": 0.5} for r in records]
    n = correct.shape[1]
    return validate(
        {
            "schema_version": 4,
            "run_id": "0" * 32,
            "profile": cfg.profile,
            "cell": cfg.cell,
            "config": cfg.to_dict(),
            "genres": list(GENRES),
            "data": {
                "source": "synth",
                "data_dir": "data",
                "store": "/stores/x",
                "store_fingerprint": store_fingerprint,
                "tracks": {"training": 30, "validation": 6, "test": n},
                "skipped": 0,
            }
            | (data or {}),
            "n_params": 1234,
            "test": {
                "track_ids": list(range(n)),
                "labels": labels_of(n).tolist(),
                "artist_ids": None if artists is None else [int(a) for a in artists],
            },
            "seeds": records,
            "provenance": PROVENANCE | {"hardware": hardware or {}},
        }
    )


def of_probs(cfg: Config, labels, probs, artists=None) -> CellResults:
    """A validated result of the config `cfg` whose seed s predicted the test tracks 0..N-1 (labels
    (N,)) with the probabilities probs[s] (N, 8); its accuracies and confusion matrices follow from them."""
    labels = np.asarray(labels)
    result = of_config(cfg, np.ones((len(cfg.schedule.seeds), len(labels)), bool), artists)
    obj = result.model_dump(mode="json")
    obj["test"]["labels"] = labels.tolist()
    for record, p in zip(obj["seeds"], probs):
        record["test_probs"] = np.asarray(p, dtype=np.float64).tolist()
    return validate(obj)

"""Small results files for the report's tests, built whole and validated (`fmareport.results.validate`).

`cell_result` makes a `CellResults` whose every number follows from a right-or-wrong matrix over
test tracks, as training writes it: the report reads nothing a real file would not hold.
"""

from __future__ import annotations

import numpy as np

from fmareport.config import Config
from fmareport.data.fma import GENRES
from fmareport.results import CellResults, mean_std, validate

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


def seed_record(seed: int, right: np.ndarray, artists=None, losses=(2.0,)) -> dict:
    """One seed's record: labels i % 8, a guess of the label where `right`, else the next genre."""
    n = len(right)
    labels = np.arange(n) % 8
    guess = np.where(right, labels, (labels + 1) % 8)
    probs = np.full((n, 8), 0.01)
    probs[np.arange(n), guess] = 0.93
    confusion = np.zeros((8, 8), int)
    np.add.at(confusion, (labels, guess), 1)
    totals = confusion.sum(1)
    acc = int(right.sum()) / n
    return {
        "seed": seed,
        "history": [
            {"epoch": e, "train_loss": v, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "seconds": 1.0}
            for e, v in enumerate(losses, start=1)
        ],
        "test_acc_last": acc,
        "test_acc_best": acc,
        "best_epoch": 1,
        "confusion": confusion.tolist(),
        "per_genre_acc": {
            g: (int(confusion[i, i]) / int(totals[i]) if totals[i] else None) for i, g in enumerate(GENRES)
        },
        "n_params": 1234,
        "seconds": 60.0,
        "segments_per_second": 10.0,
        "test_track_ids": list(range(n)),
        "test_labels": labels.tolist(),
        "test_probs": probs.tolist(),
        "test_artist_ids": None if artists is None else [int(a) for a in artists],
    }


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
    records = [seed_record(s, right, artists, losses) for s, right in zip(seeds, correct)]
    last, best = mean_std([r["test_acc_last"] for r in records]), mean_std([r["test_acc_best"] for r in records])
    return validate(
        {
            "schema_version": 3,
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
                "tracks": {"training": 30, "validation": 6, "test": correct.shape[1]},
                "skipped": 0,
            }
            | (data or {}),
            "seeds": records,
            "summary": {
                "n_seeds": len(records),
                "test_acc_last_mean": last[0],
                "test_acc_last_std": last[1],
                "test_acc_best_mean": best[0],
                "test_acc_best_std": best[1],
            },
            "provenance": PROVENANCE | {"hardware": hardware or {}},
        }
    )


def without_predictions(result: CellResults) -> CellResults:
    """The same result with no test predictions kept (test_probs None): the report's tables show no
    interval for such a run. The schema (version 3) requires predictions, so only a copy that skips
    validation holds none."""
    return result.model_copy(update={"seeds": [s.model_copy(update={"test_probs": None}) for s in result.seeds]})


def of_probs(cfg: Config, labels, probs, artists=None) -> CellResults:
    """A validated result of the config `cfg` whose seed s predicted the test tracks 0..N-1 (labels
    (N,)) with the probabilities probs[s] (N, 8); its accuracies and confusion matrices follow from them."""
    labels = np.asarray(labels)
    records = []
    for seed, p in zip(cfg.schedule.seeds, probs):
        p = np.asarray(p, dtype=np.float64)
        record = seed_record(seed, np.ones(len(labels), bool), artists, (2.0,) * cfg.schedule.epochs)
        confusion = np.zeros((8, 8), int)
        np.add.at(confusion, (labels, p.argmax(1)), 1)
        totals = confusion.sum(1)
        acc = float((p.argmax(1) == labels).mean())
        record |= {
            "test_labels": labels.tolist(),
            "test_probs": p.tolist(),
            "confusion": confusion.tolist(),
            "per_genre_acc": {g: (confusion[i, i] / totals[i] if totals[i] else None) for i, g in enumerate(GENRES)},
            "test_acc_last": acc,
            "test_acc_best": acc,
        }
        records.append(record)
    last = mean_std([r["test_acc_last"] for r in records])
    result = of_config(cfg, np.ones((len(records), len(labels)), bool), artists)
    obj = result.model_dump(mode="json") | {"seeds": records}
    obj["summary"] |= {"test_acc_last_mean": last[0], "test_acc_last_std": last[1],
                       "test_acc_best_mean": last[0], "test_acc_best_std": last[1]}  # fmt: skip
    return validate(obj)

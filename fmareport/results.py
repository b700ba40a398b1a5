"""The results of one experiment cell: `results/<profile>/<cell>.json`, one typed schema.

A results file stores only what cannot be derived (docs/contracts.md, "Results file"): the
full config, the data it ran on, the cell's test tracks once (`TestTracks`: ids, labels,
artists), and per seed its history, timings, device policy and test probabilities after the
last epoch. Everything else is derived on read from those: each seed's test accuracy, the
confusion matrices, the accuracy per genre, the best epoch and the mean and SD over seeds
(`Scored`). So a file cannot state a number that its own predictions contradict.

Training builds the seed records, `fmareport.experiment.run_cell` the whole, `write_results`
writes it atomically, and the book reads it back with `read_results` / `load_results`
(validated, as CellResults; a schema-3 file is read through `upgrade_v3`). The JSON Schema is
generated from the model: `fmareport schema`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator

from .config import Config, FlatConfig, flat_loc
from .data.fma import GENRES, SPLITS
from .files import JSONFileError, read_json, write_atomic

SCHEMA_VERSION = 4

Finite = Annotated[float, Field(allow_inf_nan=False)]
Accuracy = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Seconds = NonNegative
Count = Annotated[int, Field(ge=0)]
Sha1 = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
_K = len(GENRES)
Label = Annotated[int, Field(ge=0, lt=_K)]  # an index into GENRES (label order)
ProbRow = Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=_K, max_length=_K)]

# A row of test_probs sums to 1 within PROB_SUM_TOLERANCE. Training writes exp() of float32
# log-probabilities (train.track_log_probs: log_softmax, then the logsumexp over a track's
# segments less log S): each step rounds to float32 (relative error <= 2**-24), so each of the
# 8 entries is off by a few 2**-24 of itself and the row's sum by ~8 * 4 * 2**-24 = 2e-6 at
# most; measured: <= 2.6e-7 over 20,000 rows of random logits (scales 1 to 1000; 1 and 14
# segments). 1e-5 is 40 times the measured error and still refuses any row that is not a
# distribution. The baseline's float64 predict_proba rows are within 1e-15.
PROB_SUM_TOLERANCE = 1e-5


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Epoch(_Model):
    """One epoch of one seed: losses, per-track accuracies and its wall time."""

    epoch: Annotated[int, Field(ge=1)]
    train_loss: Finite
    train_acc: Accuracy
    val_loss: Finite
    val_acc: Accuracy
    seconds: Seconds


class TestTracks(_Model):
    """The test split a run was scored on, one entry per track in ascending track_id: the same for
    every seed of a cell, and for a baseline on the same store."""

    __test__: ClassVar[bool] = False  # not a test class, for pytest, though its name starts with Test
    track_ids: Annotated[list[Count], Field(min_length=1)]
    labels: list[Label]
    # Each test track's artist (tracks.csv's ('artist', 'id')): the intervals resample artists
    # (docs/statistics.md). None in files written before artists were recorded: theirs resample tracks.
    artist_ids: list[Count] | None = None

    @classmethod
    def of(cls, store) -> TestTracks:
        """The test split of a clip store (fmareport.data.store.ClipStore, or any object with `labels`
        and `split_indices`: then rows stand for track ids), in ascending row order, which is ascending
        track_id (the store's index is sorted)."""
        rows = np.sort(store.split_indices("test"))
        index = getattr(store, "index", None)
        ids = np.arange(len(store.labels)) if index is None else index["track_id"].to_numpy()
        artists = index["artist_id"].to_numpy()[rows].tolist() if index is not None and "artist_id" in index else None
        return cls(track_ids=ids[rows].tolist(), labels=np.asarray(store.labels)[rows].tolist(), artist_ids=artists)

    @model_validator(mode="after")
    def _consistent(self) -> TestTracks:
        n = len(self.track_ids)
        if len(self.labels) != n or (self.artist_ids is not None and len(self.artist_ids) != n):
            artists = "" if self.artist_ids is None else f", {len(self.artist_ids)} artist ids"
            raise ValueError(f"{n} track ids, {len(self.labels)} labels{artists}: one of each per test track")
        for i in range(1, n):
            if self.track_ids[i] <= self.track_ids[i - 1]:
                raise ValueError(
                    f"track_ids[{i}]: {self.track_ids[i]} after {self.track_ids[i - 1]}; the ids must be "
                    "ascending, each track once"
                )
        return self


def check_probs(probs: list[list[float]], n: int) -> None:
    """One row per test track (`n`), each a distribution within PROB_SUM_TOLERANCE."""
    if len(probs) != n:
        raise ValueError(f"test_probs: {len(probs)} rows for {n} test tracks; one per test track")
    for i, row in enumerate(probs):
        if abs(sum(row) - 1) > PROB_SUM_TOLERANCE:
            raise ValueError(
                f"test_probs[{i}] sums to {sum(row):.7g}; a row of probabilities sums to 1 (within {PROB_SUM_TOLERANCE:g})"
            )


@dataclass(frozen=True)
class Summary:
    """Mean and sample SD (0 for one seed) over seeds of the test accuracies (derived: `Scored.summary`)."""

    n_seeds: int
    test_acc_last_mean: float
    test_acc_last_std: float
    test_acc_best_mean: float
    test_acc_best_std: float


class Scored:
    """What is derived from a run's test predictions, never stored: a subclass has `test`
    (TestTracks) and `seed_probs` (per seed, one row of K probabilities per test track)."""

    @property
    def probs(self) -> np.ndarray:
        """(S, N, K) float64: seed s's probability of genre k for test track n."""
        return np.asarray(self.seed_probs, dtype=np.float64)

    @property
    def predicted(self) -> np.ndarray:
        """(S, N) int: each seed's predicted genre (the first of equal probabilities, numpy's argmax)."""
        return self.probs.argmax(axis=2)

    @property
    def correct(self) -> np.ndarray:
        """(S, N) bool: seed s right on test track n."""
        return self.predicted == np.asarray(self.test.labels)

    @property
    def accuracies(self) -> list[float]:
        """Each seed's test accuracy (after the last epoch: what the tables show)."""
        return [float(a) for a in self.correct.mean(axis=1)]

    def confusion(self) -> np.ndarray:
        """(S, K, K) int64: rows the true genre, columns the predicted one, per seed."""
        out = np.zeros((len(self.seed_probs), _K, _K), dtype=np.int64)
        for s, pred in enumerate(self.predicted):
            np.add.at(out[s], (np.asarray(self.test.labels), pred), 1)
        return out

    def per_genre_accuracy(self) -> np.ndarray:
        """(S, K) float: each seed's share of a genre's test tracks predicted right; NaN for a genre
        with no test track (tiny synthetic sets)."""
        counts = self.confusion()
        totals = counts.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, np.diagonal(counts, axis1=1, axis2=2) / totals, np.nan)


@dataclass(frozen=True)
class Predictions(Scored):
    """Test predictions outside a results file (a seed record as train_seed returns it, with its
    store's `TestTracks.of`), scored as a file's are."""

    test: TestTracks
    seed_probs: list[list[list[float]]]


class DevicePolicyRecord(_Model):
    """How a seed ran (fmareport.device.DevicePolicy.record): the device, autocast and where the
    clip store lived, each with the reason the policy gave."""

    device_type: Literal["cpu", "cuda"]
    device_name: Annotated[str, Field(min_length=1)]  # "cpu", or the GPU's model
    device_index: Annotated[int, Field(ge=0)] | None  # torch's index of the GPU; None on the CPU
    device_uuid: str | None  # the GPU's UUID (its lock's name); None on the CPU
    cuda_visible_devices: str | None  # the job's CUDA_VISIBLE_DEVICES, when set
    device_reason: str
    amp_dtype: Literal["bfloat16"] | None  # bf16 autocast on, or None: off (fp32)
    amp_reason: str
    store: Literal["resident", "memmap"]  # the clip store as a tensor on the device, or the memmap
    store_reason: str


class SeedResult(_Model):
    """One seed's run of a cell (fmareport.train.train_seed): what its numbers are derived from."""

    seed: int
    history: Annotated[list[Epoch], Field(min_length=1)]
    # The test accuracy of the weights of the best epoch (`best_epoch`), when that is not the last
    # (whose accuracy the predictions give); None when it is. Only the last epoch's predictions are kept.
    test_acc_at_best: Accuracy | None
    seconds: Seconds
    segments_per_second: NonNegative
    # The test predictions after the last epoch, one row per test track (CellResults.test's order):
    # every accuracy and interval of the book is computed from them (docs/statistics.md).
    test_probs: list[ProbRow]
    # How the seed ran: device, autocast, store placement and why. None in files written before it
    # was recorded.
    policy: DevicePolicyRecord | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SeedResult:
        for i, h in enumerate(self.history):
            if h.epoch != i + 1:
                raise ValueError(f"history[{i}].epoch is {h.epoch}; the epochs are 1 to {len(self.history)} in order")
        if (self.test_acc_at_best is None) != (self.best_epoch == len(self.history)):
            raise ValueError(
                f"test_acc_at_best is {self.test_acc_at_best}, but the best epoch ({self.best_epoch}, the first with "
                f"the highest val_acc) is {'' if self.best_epoch == len(self.history) else 'not '}the last: it is "
                "given exactly when the best epoch is not the last"
            )
        return self

    @property
    def best_epoch(self) -> int:
        """The first epoch with the highest validation accuracy (fmareport.train), from 1."""
        val = [h.val_acc for h in self.history]
        return 1 + val.index(max(val))


class Tracks(_Model):
    training: Count
    validation: Count
    test: Count


class DataInfo(_Model):
    """The data a run used: its set, its clip store, and the store's tracks per split."""

    source: Literal["synth", "fma"]
    data_dir: str
    store: str  # the clip store's folder
    store_fingerprint: Annotated[str, Field(min_length=1)]
    tracks: Tracks
    skipped: Count

    @classmethod
    def of(cls, cfg: Config, store) -> DataInfo:
        """The data block of a run of `cfg` on the clip store `store` (fmareport.data.store.ClipStore)."""
        return cls(
            source=cfg.data.source,
            data_dir=cfg.run.data_dir,
            store=str(store.path.resolve()),
            store_fingerprint=store.fingerprint,
            skipped=len(store.manifest["skipped"]),
            tracks=Tracks(**{s: int(len(store.split_indices(s))) for s in SPLITS}),
        )

    def check_test(self, test: TestTracks) -> None:
        """The run was tested on the whole test split of its store."""
        if len(test.track_ids) != self.tracks.test:
            raise ValueError(
                f"test: {len(test.track_ids)} test tracks, but data/tracks/test says {self.tracks.test} test tracks"
            )


class Provenance(_Model):
    """Where a result came from: code version, packages, machine, time (fmareport.provenance)."""

    versions: dict[str, str | None]
    python: str
    git_commit: str | None  # None outside a git checkout (e.g. an sdist)
    git_dirty: bool | None
    device: str
    hardware: dict[str, Any]
    started: dt.datetime
    finished: dt.datetime
    entry: str  # what ran the cell: the notebook, or a Python call


# The kept files beside a results file <cell name>.json (fmareport.weights writes and reads them),
# named by its SHA1 in the results (CellResults.weights_sha1, .embeddings_sha1).
WEIGHTS_SUFFIX = ".weights.pt"  # the first seed's weights
EMBEDDINGS_SUFFIX = ".embeddings.npz"  # every seed's test-set embeddings


class CellResults(Scored, _Model):
    """Everything one run of one cell produced; the book reads nothing else (and its kept weights
    and embeddings files)."""

    schema_version: Literal[4] = SCHEMA_VERSION
    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]  # also printed by the cell's notebook
    profile: str
    cell: str
    config: Annotated[Config, WithJsonSchema(FlatConfig.model_json_schema())]  # written flat, as a params file
    genres: Annotated[list[str], Field(min_length=_K, max_length=_K)]  # what the labels index
    data: DataInfo
    n_params: Annotated[int, Field(ge=1)]  # of the network every seed trains
    test: TestTracks
    seeds: Annotated[list[SeedResult], Field(min_length=1)]
    provenance: Provenance
    # SHA1s of the kept files beside the results (fmareport.weights): the first seed's weights, every
    # seed's test-set embeddings. None in files written before they were kept.
    weights_sha1: Sha1 | None = None
    embeddings_sha1: Sha1 | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CellResults:
        """What the schema cannot make impossible: config, seeds and tracks agree (docs/faults.md, case 12)."""
        if (self.config.profile, self.config.cell) != (self.profile, self.cell):
            raise ValueError("profile/cell differ from config.profile/config.cell")
        if self.genres != list(GENRES):
            raise ValueError(f"genres: {self.genres} are not the label order {list(GENRES)}")
        if [s.seed for s in self.seeds] != self.config.schedule.seeds:
            raise ValueError(
                f"seed records {[s.seed for s in self.seeds]} are not config.seeds {self.config.schedule.seeds}"
            )
        self.data.check_test(self.test)
        for i, s in enumerate(self.seeds):
            if len(s.history) != self.config.schedule.epochs:
                raise ValueError(
                    f"seeds/{i}/history: {len(s.history)} epoch(s), but config.epochs is {self.config.schedule.epochs}"
                )
            try:
                check_probs(s.test_probs, len(self.test.track_ids))
            except ValueError as err:
                raise ValueError(f"seeds/{i}/{err}") from None
        return self

    @property
    def seed_ids(self) -> list[int]:
        return [s.seed for s in self.seeds]

    @property
    def seed_probs(self) -> list[list[list[float]]]:
        return [s.test_probs for s in self.seeds]

    @property
    def best_accuracies(self) -> list[float]:
        """Each seed's test accuracy at its best epoch (`SeedResult.best_epoch`)."""
        return [a if s.test_acc_at_best is None else s.test_acc_at_best for s, a in zip(self.seeds, self.accuracies)]

    @property
    def summary(self) -> Summary:
        """Mean and sample SD over seeds of the test accuracies, last and best epoch."""
        last, best = mean_std(self.accuracies), mean_std(self.best_accuracies)
        return Summary(len(self.seeds), *last, *best)


# The baselines (fmareport.baseline.VARIANTS), in the book's order: results/<profile>/baselines/<name>.json.
BASELINES = ("mfcc", "fma_mfcc_lr", "fma_mfcc_svm", "fma_all_lr", "fma_all_svm")
# 3: the test tracks once (`test`), accuracies derived. Older files (2: every number stored; 1, no
# schema_version: 40 MFCC statistics, C fixed at 1) are refused by `load_baselines`, naming the rerun
# (seconds to minutes; the workflow reruns them on a new version).
BASELINE_SCHEMA_VERSION = 3
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Tuning(_Model):
    """A baseline's C, chosen on the validation split: one fit on the training split per C of `grid`."""

    grid: Annotated[list[Positive], Field(min_length=1)]  # ascending
    val_acc: list[Accuracy]  # one per C of grid

    @model_validator(mode="after")
    def _consistent(self) -> Tuning:
        if len(self.val_acc) != len(self.grid):
            raise ValueError(f"{len(self.grid)} values of C in grid but {len(self.val_acc)} validation accuracies")
        if any(b <= a for a, b in zip(self.grid, self.grid[1:])):
            raise ValueError(f"grid {self.grid} is not ascending")
        return self

    @property
    def chosen(self) -> float:
        """The first C of the grid with the highest validation accuracy (the smallest: the most regularised)."""
        return self.grid[self.val_acc.index(max(self.val_acc))]


class SourceFile(_Model):
    """A file a baseline read its features from (FMA's features.csv), and its SHA1 when read."""

    path: str
    sha1: Sha1


class BaselineResults(Scored, _Model):
    """One baseline's run on a profile's store: its features, its tuning, and its test predictions,
    scored as a one-seed run (`Scored`) on the same test tracks as the cells (fmareport.baseline)."""

    schema_version: Literal[3]
    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    profile: str
    variant: Literal[BASELINES]  # the file's name: results/<profile>/baselines/<variant>.json
    name: str  # the book's label
    features: str
    n_features: Annotated[int, Field(ge=1)]
    features_file: SourceFile | None  # features.csv; None: computed from the store's clips (data.store_fingerprint)
    classifier: str
    tuning: Tuning
    data: DataInfo
    train_acc: Accuracy  # at the chosen C (the training predictions are not kept)
    test: TestTracks
    test_probs: list[ProbRow]  # (n_test, 8) class probabilities, label order (an SVM: the one-hot of its decision)
    provenance: Provenance

    @model_validator(mode="after")
    def _consistent(self) -> BaselineResults:
        """One row of predictions per test track of its data (docs/faults.md, case 12)."""
        self.data.check_test(self.test)
        check_probs(self.test_probs, len(self.test.track_ids))
        return self

    # A one-seed run for the comparisons: seed 0, no network.
    seed_ids: ClassVar[tuple[int, ...]] = (0,)
    config: ClassVar[None] = None

    @property
    def seed_probs(self) -> list[list[list[float]]]:
        return [self.test_probs]

    @property
    def cell(self) -> str:
        return f"baselines/{self.variant}"

    @property
    def test_acc(self) -> float:
        return self.accuracies[0]

    @property
    def val_acc(self) -> float:
        """The validation accuracy at the chosen C: the tuning's best."""
        return max(self.tuning.val_acc)


class ResultsError(ValueError):
    """A results JSON that does not follow the schema (the message says where)."""


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for one value): a summary's numbers, and the
    report's (report.stats uses this one)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_std: no values")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def schema() -> dict[str, Any]:
    """The JSON Schema of a results file, generated from CellResults."""
    return CellResults.model_json_schema()


def results_path(results_dir: str | Path, profile: str, cell: str) -> Path:
    """`results/<profile>/<cell>.json` (a cell such as 'table1/raw_whole' makes a subfolder)."""
    return Path(results_dir) / profile / f"{cell}.json"


def write_results(path: str | Path, results: CellResults) -> Path:
    """Write a (validated) CellResults to `path` atomically."""
    return write_atomic(path, results.model_dump_json(indent=1) + "\n")


def _errors(err: ValidationError) -> str:
    """The first error in one line: where (a path such as seeds/0) and what; our checks' own words."""
    e = err.errors()[0]
    loc = ("config", *flat_loc(e["loc"][1:])) if e["loc"][:1] == ("config",) else e["loc"]  # as the file has it
    where = "/".join(str(p) for p in loc) or "(top level)"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    what = str(e["ctx"]["error"]) if e["type"] == "value_error" else e["msg"]
    return f"results JSON invalid at {where}: {what}{more}"


# Schema 3 stored, per seed, the test tracks again and what schema 4 derives (test_acc_last, confusion,
# per_genre_acc, best_epoch, the summary) beside the predictions they came from.
V3_DERIVED = ("test_acc_last", "best_epoch", "confusion", "per_genre_acc")


def upgrade_v3(obj: dict) -> dict:
    """A schema-3 results dict as schema 4 (docs/contracts.md, "Results file"): the test tracks
    (every seed's the same, else ValueError) and n_params once per cell, the weights' and embeddings'
    SHA1s; what schema 4 derives is dropped unread, and `test_acc_best` is kept only where the best
    epoch (from the history, as schema 4 derives it) was not the last. Recomputed from the predictions, the numbers are the ones schema 3 checked
    it stored. Anything else is left for validation to judge."""
    seeds = obj.get("seeds") or [{}]
    keys = ("test_track_ids", "test_labels", "test_artist_ids", "n_params")
    first = {k: seeds[0].get(k) for k in keys}
    for i, s in enumerate(seeds):
        if differs := [k for k in keys if s.get(k) != first[k]]:
            raise ValueError(f"seeds/{i}/{differs[0]} differs from seeds/0/{differs[0]}: a schema-3 file to upgrade")
    out = {k: v for k, v in obj.items() if k not in ("summary", "weights", "embeddings")}
    out |= {"schema_version": 4, "n_params": first["n_params"], "weights_sha1": (obj.get("weights") or {}).get("sha1"),
            "embeddings_sha1": (obj.get("embeddings") or {}).get("sha1")}  # fmt: skip
    out["test"] = {"track_ids": first["test_track_ids"], "labels": first["test_labels"],
                   "artist_ids": first["test_artist_ids"]}  # fmt: skip
    out["seeds"] = []
    for s in seeds:
        val = [h.get("val_acc") for h in s.get("history") or []]
        last = bool(val) and val.index(max(val)) == len(val) - 1  # the best epoch, as schema 4 derives it
        policy = None if s.get("policy") is None else {k: v for k, v in s["policy"].items() if k != "amp"}
        out["seeds"].append(
            {k: v for k, v in s.items() if k not in (*keys, *V3_DERIVED, "test_acc_best", "policy")}
            | {"test_acc_at_best": None if last else s.get("test_acc_best"), "policy": policy}
        )
    return out


def validate(obj: Any) -> CellResults:
    """Parse a results dict (as read from JSON; schema 3 through `upgrade_v3`) into CellResults;
    ResultsError says where it is wrong."""
    try:
        if isinstance(obj, dict) and obj.get("schema_version") == 3:
            obj = upgrade_v3(obj)
        return CellResults.model_validate_json(json.dumps(obj, allow_nan=False))
    except ValueError as err:  # ValidationError, NaN/inf that JSON cannot hold, a schema-3 file's seeds
        raise ResultsError(_errors(err) if isinstance(err, ValidationError) else str(err)) from None


def read_results(path: str | Path) -> CellResults:
    """Read and validate one results JSON into CellResults. Errors name the file."""
    path = Path(path)
    try:  # a regular file of at most MAX_JSON_BYTES; no number beyond Python's digit limit (files.read_json)
        return validate(read_json(path))
    except (OSError, JSONFileError, ResultsError) as err:
        raise ResultsError(f"{path}: {err.strerror or err}" if isinstance(err, OSError) else f"{path}: {err}") from None


def load_results(results_dir: str | Path, profile: str) -> dict[str, CellResults]:
    """Every cell's results of a profile, validated: {'table1/raw_whole': CellResults, ...}, sorted by cell.

    A file's place must match its content (results/<profile>/<cell>.json); an empty or
    missing folder gives {} so the caller can say which runs are missing. Baselines
    (results/<profile>/baselines/) are not cells: `load_baselines` reads them.
    """
    root = Path(results_dir) / profile
    out = {}
    for path in sorted(p for p in root.rglob("*.json") if p.relative_to(root).parts[0] != "baselines"):
        cell = path.relative_to(root).with_suffix("").as_posix()
        obj = read_results(path)
        if (obj.profile, obj.cell) != (profile, cell):
            raise ResultsError(
                f"{path}: holds profile {obj.profile!r} cell {obj.cell!r}, "
                f"but its path says profile {profile!r} cell {cell!r}"
            )
        out[cell] = obj
    return out


def hide_injected_cell(notebook: str | Path) -> bool:
    """Tag papermill's injected-parameters cell `remove-cell`, in place (atomically).

    The book then hides it; the notebook keeps it, so the run stays readable in Jupyter.
    Returns whether such a cell was found. Running it twice changes nothing more.
    """
    import nbformat

    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    found = False
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            found = True
            if "remove-cell" not in tags:
                tags.append("remove-cell")
    write_atomic(notebook, nbformat.writes(nb))
    return found


def load_baselines(results_dir: str | Path, profile: str) -> dict[str, BaselineResults]:
    """The profile's baselines (results/<profile>/baselines/<name>.json), validated: {name: BaselineResults} in
    BASELINES order; {} if none was run. A file of the first format (no schema_version: 40 MFCC
    statistics, C fixed at 1), a name that is not a baseline's, or a file whose variant is not its
    name raises ResultsError naming the file and the fix."""
    folder = Path(results_dir) / profile / "baselines"
    rerun = f"run `fmareport baseline --profile {profile}` again (`make report` does)"
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.stem not in BASELINES:
            raise ResultsError(f"{path}: not a baseline's file; they are {', '.join(f'{b}.json' for b in BASELINES)}")
        try:
            obj = read_json(path)  # a regular file, bounded (files.read_json)
            version = obj.get("schema_version", 1) if isinstance(obj, dict) else None
            if isinstance(version, int) and version < BASELINE_SCHEMA_VERSION:
                raise ResultsError(
                    f"a baseline of schema {version} (an older format); this version reads "
                    f"schema {BASELINE_SCHEMA_VERSION}: {rerun}"
                )
            result = BaselineResults.model_validate_json(json.dumps(obj, allow_nan=False))
        except ValidationError as err:
            raise ResultsError(f"{path}: {_errors(err)}") from None
        except (ValueError, OSError) as err:  # ResultsError, read_json's refusals, NaN, reading
            raise ResultsError(
                f"{path}: {err.strerror or err}" if isinstance(err, OSError) else f"{path}: {err}"
            ) from None
        if result.variant != path.stem:
            raise ResultsError(f"{path}: holds baseline {result.variant!r}, but its name says {path.stem!r}")
        out[path.stem] = result
    return {name: out[name] for name in BASELINES if name in out}

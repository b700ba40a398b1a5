"""The results of one experiment cell: `results/<profile>/<cell>.json`, one typed schema.

`CellResults` (pydantic) is the schema: the full config, the data it ran on, one
`SeedResult` per seed (history, test accuracies, confusion matrix, timings), the summary
over seeds, the provenance, and the id of the run that wrote it. Training builds the
seed records, `fmareport.experiment.run_cell` the whole, `write_results` writes it
atomically, and the book reads it back with `read_results` / `load_results` (validated,
as CellResults). The JSON Schema is generated from the model: `fmareport schema`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator

from .config import Config, FlatConfig, flat_loc
from .data.fma import GENRES
from .files import write_atomic

SCHEMA_VERSION = 3

Finite = Annotated[float, Field(allow_inf_nan=False)]
Accuracy = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Seconds = NonNegative
Count = Annotated[int, Field(ge=0)]
_K = len(GENRES)
Label = Annotated[int, Field(ge=0, lt=_K)]  # an index into GENRES (label order)
ProbRow = Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=_K, max_length=_K)]

# Two numbers a file states twice (an accuracy and the predictions it comes from, a summary and
# its seeds) are computed the same way from the same counts: they agree to float64 rounding.
SAME = 1e-9
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


def check_predictions(ids: list[int], labels: list[int], probs: list[list[float]], acc: float, name: str) -> list[int]:
    """The checks any set of test predictions passes (a seed's, the baseline's); returns the
    predicted labels (the argmax of each row; the first of equal ones, as numpy's argmax).

    As many ids, labels and rows; ids ascending (so each track once); each row a distribution
    (within PROB_SUM_TOLERANCE); `acc` (the field `name`) the argmax accuracy.
    """
    n = len(ids)
    if not (len(labels) == len(probs) == n):
        raise ValueError(
            f"test_track_ids, test_labels, test_probs: {n} track ids, {len(labels)} labels, {len(probs)} rows; "
            "one of each per test track"
        )
    for i in range(1, n):
        if ids[i] <= ids[i - 1]:
            raise ValueError(
                f"test_track_ids[{i}]: {ids[i]} after {ids[i - 1]}; the ids must be ascending, each track once"
            )
    for i, row in enumerate(probs):
        if abs(sum(row) - 1) > PROB_SUM_TOLERANCE:
            raise ValueError(
                f"test_probs[{i}] sums to {sum(row):.7g}; a row of probabilities sums to 1 (within {PROB_SUM_TOLERANCE:g})"
            )
    pred = [max(range(_K), key=row.__getitem__) for row in probs]
    right = sum(p == y for p, y in zip(pred, labels))
    if abs(right / n - acc) > SAME:
        raise ValueError(f"{name} is {acc}, but test_probs give {right} of {n} tracks right ({right / n})")
    return pred


def check_artists(ids: list[int], artists: list[int] | None) -> None:
    """The test tracks' artists, when a file records them: one per test track, in test_track_ids' order."""
    if artists is not None and len(artists) != len(ids):
        raise ValueError(
            f"test_artist_ids: {len(artists)} artist ids for {len(ids)} test tracks; one per test track, "
            "in test_track_ids' order"
        )


def check_history(history: list[Epoch], best_epoch: int, test_acc_best: float, test_acc_last: float) -> None:
    """Epochs 1..n in order; `best_epoch` the first with the highest validation accuracy (fmareport.train);
    at the last epoch, `test_acc_best` is `test_acc_last` (the same weights)."""
    for i, h in enumerate(history):
        if h.epoch != i + 1:
            raise ValueError(f"history[{i}].epoch is {h.epoch}; the epochs are 1 to {len(history)} in order")
    if best_epoch > len(history):
        raise ValueError(f"best_epoch is {best_epoch}, but the history has {len(history)} epoch(s)")
    val = [h.val_acc for h in history]
    if best_epoch != 1 + val.index(max(val)):
        raise ValueError(
            f"best_epoch is {best_epoch}, but the first epoch with the highest val_acc ({max(val)}) is "
            f"{1 + val.index(max(val))}"
        )
    if best_epoch == len(history) and abs(test_acc_best - test_acc_last) > SAME:
        raise ValueError(
            f"test_acc_best is {test_acc_best}, but the best epoch is the last, whose test_acc_last is {test_acc_last}"
        )


class DevicePolicyRecord(_Model):
    """How a seed ran (fmareport.device.DevicePolicy.record): the device, autocast and where the
    clip store lived, each with the reason the policy gave."""

    device_type: Literal["cpu", "cuda"]
    device_name: Annotated[str, Field(min_length=1)]  # "cpu", or the GPU's model
    device_index: Annotated[int, Field(ge=0)] | None  # torch's index of the GPU; None on the CPU
    device_uuid: str | None  # the GPU's UUID (its lock's name); None on the CPU
    cuda_visible_devices: str | None  # the job's CUDA_VISIBLE_DEVICES, when set
    device_reason: str
    amp: bool  # bf16 autocast on
    amp_dtype: Literal["bfloat16"] | None
    amp_reason: str
    store: Literal["resident", "memmap"]  # the clip store as a tensor on the device, or the memmap
    store_reason: str

    @model_validator(mode="after")
    def _consistent(self) -> DevicePolicyRecord:
        if self.amp != (self.amp_dtype is not None):
            raise ValueError(f"policy.amp is {self.amp} but policy.amp_dtype is {self.amp_dtype!r}")
        return self


class SeedResult(_Model):
    """One seed's run of a cell (fmareport.train.train_seed)."""

    seed: int
    history: Annotated[list[Epoch], Field(min_length=1)]
    test_acc_last: Accuracy  # test accuracy after the last epoch (what the tables show)
    test_acc_best: Accuracy  # at the epoch with the best validation accuracy
    best_epoch: Annotated[int, Field(ge=1)]
    confusion: Annotated[
        list[Annotated[list[Count], Field(min_length=_K, max_length=_K)]], Field(min_length=_K, max_length=_K)
    ]  # rows: true genre, columns: predicted
    per_genre_acc: dict[str, Accuracy | None]  # recall; None: no test track of that genre
    n_params: Annotated[int, Field(ge=1)]
    seconds: Seconds
    segments_per_second: NonNegative
    # The test predictions after the last epoch, one row per test track (ascending track_id):
    # the book's intervals and paired comparisons are computed from them (docs/statistics.md).
    test_track_ids: Annotated[list[Count], Field(min_length=1)]
    test_labels: list[Label]
    test_probs: list[ProbRow]
    # Each test track's artist (tracks.csv's ('artist', 'id')), in test_track_ids' order: the
    # intervals resample artists (docs/statistics.md). None in files written before artists were
    # recorded: their intervals resample tracks.
    test_artist_ids: list[Count] | None = None
    # How the seed ran: device, autocast, store placement and why. None in files written before it
    # was recorded (reference/*.json included): the same schema version reads both.
    policy: DevicePolicyRecord | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SeedResult:
        """The seed's numbers agree with its predictions and its history (docs/faults.md, case 12)."""
        pred = check_predictions(
            self.test_track_ids, self.test_labels, self.test_probs, self.test_acc_last, "test_acc_last"
        )
        confusion = [[0] * _K for _ in range(_K)]
        for y, p in zip(self.test_labels, pred):
            confusion[y][p] += 1
        for i, j in ((i, j) for i in range(_K) for j in range(_K)):
            if self.confusion[i][j] != confusion[i][j]:
                raise ValueError(
                    f"confusion[{i}][{j}] is {self.confusion[i][j]}, but test_labels and test_probs give "
                    f"{confusion[i][j]} track(s) of {GENRES[i]} predicted {GENRES[j]}"
                )
        if set(self.per_genre_acc) != set(GENRES):
            raise ValueError(f"per_genre_acc: its keys must be the {_K} genres {list(GENRES)}")
        for i, genre in enumerate(GENRES):
            n, stated = sum(confusion[i]), self.per_genre_acc[genre]
            recall = confusion[i][i] / n if n else None
            if (stated is None) != (recall is None) or (n and abs(stated - recall) > SAME):
                raise ValueError(f"per_genre_acc[{genre!r}] is {stated}, but the confusion matrix gives {recall}")
        check_artists(self.test_track_ids, self.test_artist_ids)
        check_history(self.history, self.best_epoch, self.test_acc_best, self.test_acc_last)
        return self


# The kept files beside a results file <cell name>.json (fmareport.weights writes and reads them).
WEIGHTS_SUFFIX = ".weights.pt"  # the first seed's weights
EMBEDDINGS_SUFFIX = ".embeddings.npz"  # every seed's test-set embeddings


def check_kept_file(record: WeightsRecord | EmbeddingsRecord, what: str, cell: str, suffix: str) -> None:
    """A kept-file record names the file beside the results: <cell name><suffix>."""
    name = f"{cell.rsplit('/', 1)[-1]}{suffix}"
    if record.file != name:
        raise ValueError(f"{what}/file is {record.file!r}, but the {what} of cell {cell!r} are {name!r}")


def check_weights(weights: WeightsRecord | None, cell: str, first_seed: int) -> None:
    """A weights record names the file beside the results (<cell name>.weights.pt) and the first seed."""
    if weights is None:
        return
    check_kept_file(weights, "weights", cell, WEIGHTS_SUFFIX)
    if weights.seed != first_seed:
        raise ValueError(f"weights/seed is {weights.seed}, but the weights kept are the first seed's ({first_seed})")


def check_embeddings(embeddings: EmbeddingsRecord | None, cell: str, width: int) -> None:
    """An embeddings record names the file beside the results (<cell name>.embeddings.npz) and the
    penultimate layer's width, config.model.dense[-1]."""
    if embeddings is None:
        return
    check_kept_file(embeddings, "embeddings", cell, EMBEDDINGS_SUFFIX)
    if embeddings.width != width:
        raise ValueError(
            f"embeddings/width is {embeddings.width}, but the penultimate layer (config dense[-1]) is {width} wide"
        )


class Tracks(_Model):
    training: Count
    validation: Count
    test: Count


class DataInfo(_Model):
    """The data a cell ran on."""

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
            tracks=Tracks(**{s: int(len(store.split_indices(s))) for s in ("training", "validation", "test")}),
        )


class Summary(_Model):
    """Mean and sample std over seeds of the test accuracies (0 std for one seed)."""

    n_seeds: Annotated[int, Field(ge=1)]
    test_acc_last_mean: Accuracy
    test_acc_last_std: NonNegative
    test_acc_best_mean: Accuracy
    test_acc_best_std: NonNegative


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


class WeightsRecord(_Model):
    """The weights file a cell keeps for the figures of what its network learned (fmareport.weights):
    the first seed's final state_dict and its first layer at initialisation."""

    file: Annotated[str, Field(pattern=r"^[^/\\]+\.weights\.pt$")]  # beside the results file: <cell name>.weights.pt
    seed: int  # the first seed of config.seeds
    sha1: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]  # of the file's bytes: a stale file is refused


class EmbeddingsRecord(_Model):
    """The embeddings file a cell keeps for the maps of what its network learned (fmareport.weights):
    every seed's penultimate activations of each test track, as float16."""

    file: Annotated[str, Field(pattern=r"^[^/\\]+\.embeddings\.npz$")]  # beside the results: <cell name>.embeddings.npz
    width: Annotated[int, Field(ge=1)]  # D, the penultimate layer's width: config.model.dense[-1]
    sha1: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]  # of the file's bytes: a stale file is refused


class CellResults(_Model):
    """Everything one run of one cell produced; the book reads nothing else (and its weights and
    embeddings files)."""

    schema_version: Literal[3] = SCHEMA_VERSION
    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]  # also printed by the cell's notebook
    profile: str
    cell: str
    config: Annotated[Config, WithJsonSchema(FlatConfig.model_json_schema())]  # written flat, as a params file
    genres: Annotated[list[str], Field(min_length=_K, max_length=_K)]
    data: DataInfo
    seeds: Annotated[list[SeedResult], Field(min_length=1)]
    summary: Summary
    provenance: Provenance
    # The first seed's weights file (fmareport.weights). None in files written before weights were
    # kept (reference/*.json included): the same schema version reads both.
    weights: WeightsRecord | None = None
    # Every seed's test-set embeddings (fmareport.weights). None in files written before they were
    # kept (reference/*.json's runs included): the same schema version reads both.
    embeddings: EmbeddingsRecord | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CellResults:
        """The file agrees with itself: config, data, seeds and summary (docs/faults.md, case 12)."""
        if (self.config.profile, self.config.cell) != (self.profile, self.cell):
            raise ValueError("profile/cell differ from config.profile/config.cell")
        if self.genres != list(GENRES):
            raise ValueError(f"genres: {self.genres} are not the label order {list(GENRES)}")
        if [s.seed for s in self.seeds] != self.config.schedule.seeds:
            raise ValueError(
                f"seed records {[s.seed for s in self.seeds]} are not config.seeds {self.config.schedule.seeds}"
            )
        first = self.seeds[0]
        for i, s in enumerate(self.seeds):
            if len(s.history) != self.config.schedule.epochs:
                raise ValueError(
                    f"seeds/{i}/history: {len(s.history)} epoch(s), but config.epochs is {self.config.schedule.epochs}"
                )
            if len(s.test_track_ids) != self.data.tracks.test:
                raise ValueError(
                    f"seeds/{i}/test_track_ids: {len(s.test_track_ids)} test predictions, but data/tracks/test "
                    f"says {self.data.tracks.test} test tracks"
                )
            for key in ("test_track_ids", "test_labels", "test_artist_ids", "n_params"):
                if getattr(s, key) != getattr(first, key):
                    raise ValueError(
                        f"seeds/{i}/{key} differs from seeds/0/{key}: every seed of a cell trains the same network "
                        "and is tested on the same tracks"
                    )
        check_weights(self.weights, self.cell, first.seed)
        check_embeddings(self.embeddings, self.cell, self.config.model.dense[-1])
        expected = summarize(self.seeds)
        for key, value in expected.model_dump().items():
            if abs(getattr(self.summary, key) - value) > SAME:
                raise ValueError(f"summary/{key}: {getattr(self.summary, key)} does not match its seeds ({value})")
        return self


# The baselines (fmareport.baseline.VARIANTS), in the book's order: results/<profile>/baselines/<name>.json.
BASELINES = ("mfcc", "fma_mfcc_lr", "fma_mfcc_svm", "fma_all_lr", "fma_all_svm")
# 2: C tuned on validation (`tuning`), FMA's 7 statistics, the variants. 1 (files with no
# schema_version): mfcc.json alone, 40 MFCC statistics, C fixed at 1; `load_baselines` refuses it.
BASELINE_SCHEMA_VERSION = 2
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Tuning(_Model):
    """A baseline's C, chosen on the validation split: one fit on the training split per C of `grid`."""

    grid: Annotated[list[Positive], Field(min_length=1)]  # ascending
    val_acc: list[Accuracy]  # one per C of grid
    chosen: Positive  # the first C of grid with the highest val_acc (the smallest: the most regularised)

    @model_validator(mode="after")
    def _consistent(self) -> Tuning:
        if len(self.val_acc) != len(self.grid):
            raise ValueError(f"{len(self.grid)} values of C in grid but {len(self.val_acc)} validation accuracies")
        if any(b <= a for a, b in zip(self.grid, self.grid[1:])):
            raise ValueError(f"grid {self.grid} is not ascending")
        best = self.grid[self.val_acc.index(max(self.val_acc))]
        if self.chosen != best:
            raise ValueError(
                f"chosen is {self.chosen:g}, but the first C with the highest validation accuracy "
                f"({max(self.val_acc)}) is {best:g}"
            )
        return self


class SourceFile(_Model):
    """A file a baseline read its features from (FMA's features.csv), and its SHA1 when read."""

    path: str
    sha1: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]


class BaselineResults(_Model):
    """One baseline's run on a profile's store: its features, its tuning, its accuracies and its test
    predictions (fmareport.baseline)."""

    schema_version: Literal[2]
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
    train_acc: Accuracy  # at the chosen C
    val_acc: Accuracy  # at the chosen C: the tuning's best
    test_acc: Accuracy
    test_track_ids: Annotated[list[Count], Field(min_length=1)]  # ascending
    test_labels: list[Label]
    test_probs: list[ProbRow]  # (n_test, 8) class probabilities, label order (an SVM: the one-hot of its decision)
    test_artist_ids: list[Count] | None = None  # as a seed's (SeedResult); None in files written before
    provenance: Provenance

    @model_validator(mode="after")
    def _consistent(self) -> BaselineResults:
        """Predictions as a seed's (check_predictions), one per test track of its data; the validation
        accuracy the tuning's best (docs/faults.md, case 12)."""
        check_predictions(self.test_track_ids, self.test_labels, self.test_probs, self.test_acc, "test_acc")
        check_artists(self.test_track_ids, self.test_artist_ids)
        if len(self.test_track_ids) != self.data.tracks.test:
            raise ValueError(
                f"test_track_ids: {len(self.test_track_ids)} test predictions, but data/tracks/test says "
                f"{self.data.tracks.test} test tracks"
            )
        if abs(max(self.tuning.val_acc) - self.val_acc) > SAME:
            raise ValueError(
                f"val_acc is {self.val_acc}, but the tuning gives {max(self.tuning.val_acc)} at the chosen C "
                f"({self.tuning.chosen:g})"
            )
        return self


class ResultsError(ValueError):
    """A results JSON that does not follow the schema (the message says where)."""


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for one value): a summary's numbers, and the
    report's (report.stats uses this one)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_std: no values")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def summarize(seeds: list[SeedResult]) -> Summary:
    """Mean and sample std (ddof=1; 0.0 for one seed) of the test accuracies over seeds."""
    if not seeds:
        raise ResultsError("summarize: no seed records")
    last = mean_std([s.test_acc_last for s in seeds])
    best = mean_std([s.test_acc_best for s in seeds])
    return Summary(
        n_seeds=len(seeds),
        test_acc_last_mean=last[0],
        test_acc_last_std=last[1],
        test_acc_best_mean=best[0],
        test_acc_best_std=best[1],
    )


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


def validate(obj: Any) -> CellResults:
    """Parse a results dict (as read from JSON) into CellResults; ResultsError says where it is wrong."""
    try:
        return CellResults.model_validate_json(json.dumps(obj, allow_nan=False))
    except ValueError as err:  # ValidationError, or NaN/inf that JSON cannot hold
        raise ResultsError(_errors(err) if isinstance(err, ValidationError) else str(err)) from None


def read_results(path: str | Path) -> CellResults:
    """Read and validate one results JSON into CellResults. Errors name the file."""
    path = Path(path)
    try:
        return validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ResultsError) as err:
        raise ResultsError(f"{path}: {err}") from None


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
            obj = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(obj, dict) and "schema_version" not in obj:
                raise ResultsError(
                    "a baseline of the first format (40 MFCC statistics, C fixed at 1, no schema_version); "
                    f"this version reads schema {BASELINE_SCHEMA_VERSION} (C tuned on validation): {rerun}"
                )
            result = BaselineResults.model_validate_json(json.dumps(obj, allow_nan=False))
        except ValidationError as err:
            raise ResultsError(f"{path}: {_errors(err)}") from None
        except (ValueError, OSError) as err:  # ResultsError, JSON, NaN, reading
            raise ResultsError(f"{path}: {err}") from None
        if result.variant != path.stem:
            raise ResultsError(f"{path}: holds baseline {result.variant!r}, but its name says {path.stem!r}")
        out[path.stem] = result
    return {name: out[name] for name in BASELINES if name in out}

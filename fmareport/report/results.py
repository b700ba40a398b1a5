"""The results of one experiment cell: `results/<profile>/<cell>.json`, one typed schema.

`CellResults` (pydantic) is the schema: the full config, the data it ran on, one
`SeedResult` per seed (history, test accuracies, confusion matrix, timings), the summary
over seeds, the provenance, and the id of the run that wrote it. Training builds the
seed records, `fmareport.experiment.run_cell` the whole, `write_results` writes it
atomically, and the book reads it back with `read_results` / `load_results` (as plain
dicts, validated). The JSON Schema is generated from the model: `fmareport schema`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import Config
from ..data.fma import GENRES
from .stats import mean_std

SCHEMA_VERSION = 3

Finite = Annotated[float, Field(allow_inf_nan=False)]
Accuracy = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Seconds = NonNegative
Count = Annotated[int, Field(ge=0)]
_K = len(GENRES)


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
    # the book's bootstrap intervals and paired comparisons are computed from them.
    test_track_ids: list[int]
    test_labels: list[Annotated[int, Field(ge=0, lt=_K)]]
    test_probs: list[Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=_K, max_length=_K)]]

    @model_validator(mode="after")
    def _predictions(self) -> SeedResult:
        n = len(self.test_track_ids)
        if not (len(self.test_labels) == len(self.test_probs) == n):
            raise ValueError(
                f"test predictions: {n} track ids, {len(self.test_labels)} labels, {len(self.test_probs)} rows"
            )
        right = sum(max(range(_K), key=row.__getitem__) == y for row, y in zip(self.test_probs, self.test_labels))
        if n and abs(right / n - self.test_acc_last) > 1e-9:
            raise ValueError(f"test_acc_last {self.test_acc_last} is not the accuracy of test_probs ({right / n})")
        return self


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
            source=cfg.data_source,
            data_dir=cfg.data_dir,
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
    """Where a result came from: code version, packages, machine, time (fmareport.report.provenance)."""

    versions: dict[str, str | None]
    python: str
    git_commit: str | None  # None outside a git checkout (e.g. an sdist)
    git_dirty: bool | None
    device: str
    hardware: dict[str, Any]
    started: dt.datetime
    finished: dt.datetime
    entry: str  # what ran the cell: the notebook, or a Python call


class CellResults(_Model):
    """Everything one run of one cell produced; the book reads nothing else."""

    schema_version: Literal[3] = SCHEMA_VERSION
    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]  # also printed by the cell's notebook
    profile: str
    cell: str
    config: Config
    genres: Annotated[list[str], Field(min_length=_K, max_length=_K)]
    data: DataInfo
    seeds: Annotated[list[SeedResult], Field(min_length=1)]
    summary: Summary
    provenance: Provenance

    @model_validator(mode="after")
    def _consistent(self) -> CellResults:
        if (self.config.profile, self.config.cell) != (self.profile, self.cell):
            raise ValueError("profile/cell differ from config.profile/config.cell")
        if [s.seed for s in self.seeds] != self.config.seeds:
            raise ValueError(f"seed records {[s.seed for s in self.seeds]} are not config.seeds {self.config.seeds}")
        expected = summarize(self.seeds)
        for key, value in expected.model_dump().items():
            if abs(getattr(self.summary, key) - value) > 1e-9:
                raise ValueError(f"summary/{key}: {getattr(self.summary, key)} does not match its seeds ({value})")
        return self


class BaselineResults(_Model):
    """One baseline's run on a profile's store: its accuracies and its test predictions."""

    run_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    profile: str
    name: str
    features: str
    classifier: str
    data: DataInfo
    train_acc: Accuracy
    val_acc: Accuracy
    test_acc: Accuracy
    test_track_ids: list[int]
    test_labels: list[int]
    test_probs: list[list[float]]  # (n_test, 8) class probabilities, label order
    provenance: Provenance


class ResultsError(ValueError):
    """A results JSON that does not follow the schema (the message says where)."""


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


def write_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file and a rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_results(path: str | Path, results: CellResults) -> Path:
    """Write a (validated) CellResults to `path` atomically."""
    return write_atomic(path, results.model_dump_json(indent=1) + "\n")


def _errors(err: ValidationError) -> str:
    e = err.errors()[0]
    where = "/".join(str(p) for p in e["loc"]) or "(top level)"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"results JSON invalid at {where}: {e['msg']}{more}"


def validate(obj: Any) -> CellResults:
    """Parse a results dict (as read from JSON) into CellResults; ResultsError says where it is wrong."""
    try:
        return CellResults.model_validate_json(json.dumps(obj, allow_nan=False))
    except ValueError as err:  # ValidationError, or NaN/inf that JSON cannot hold
        raise ResultsError(_errors(err) if isinstance(err, ValidationError) else str(err)) from None


def read_results(path: str | Path) -> dict[str, Any]:
    """Read and validate one results JSON; return it as plain data. Errors name the file."""
    path = Path(path)
    try:
        return validate(json.loads(path.read_text(encoding="utf-8"))).model_dump(mode="json")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ResultsError) as err:
        raise ResultsError(f"{path}: {err}") from None


def load_results(results_dir: str | Path, profile: str) -> dict[str, dict[str, Any]]:
    """Every cell's results of a profile, validated: {'table1/raw_whole': obj, ...}, sorted by cell.

    A file's place must match its content (results/<profile>/<cell>.json); an empty or
    missing folder gives {} so the caller can say which runs are missing. Baselines
    (results/<profile>/baselines/) are not cells: `load_baseline` reads them.
    """
    root = Path(results_dir) / profile
    out = {}
    for path in sorted(p for p in root.rglob("*.json") if p.relative_to(root).parts[0] != "baselines"):
        cell = path.relative_to(root).with_suffix("").as_posix()
        obj = read_results(path)
        if (obj["profile"], obj["cell"]) != (profile, cell):
            raise ResultsError(
                f"{path}: holds profile {obj['profile']!r} cell {obj['cell']!r}, "
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


def load_baseline(results_dir: str | Path, profile: str) -> dict[str, Any] | None:
    """The profile's MFCC baseline (results/<profile>/baselines/mfcc.json), validated; None if not run."""
    path = Path(results_dir) / profile / "baselines" / "mfcc.json"
    if not path.is_file():
        return None
    try:
        return BaselineResults.model_validate_json(path.read_text(encoding="utf-8")).model_dump(mode="json")
    except (ValueError, OSError) as err:
        raise ResultsError(f"{path}: {err}") from None

"""The results of one experiment cell: `results/<profile>/<cell>.json` and its notebook.

One JSON file per cell of the paper's tables holds the full config, the data it ran
on, one record per seed (history, test accuracies, confusion matrix, timings), the
summary over seeds and the provenance (docs/contracts.md). The experiment notebook
writes it, the book reads it, the tests check it, all against `SCHEMA` here.

    python -m fmareport.results validate results/demo        # check every JSON of a folder
    python -m fmareport.results hide-injected results/demo/table1/raw_whole.ipynb   # after papermill
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import jsonschema

from .config import FIELDS

SCHEMA_VERSION = 1

_NUMBER = {"type": "number"}
_COUNT = {"type": "integer", "minimum": 0}
_SECONDS = {"type": "number", "minimum": 0}
_ACC = {"type": "number", "minimum": 0, "maximum": 1}
_STD = {"type": "number", "minimum": 0}
_GENRE_NAMES = {"type": "array", "items": {"type": "string"}, "minItems": 8, "maxItems": 8}

_EPOCH = {
    "type": "object",
    "required": ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"],
    "properties": {
        "epoch": {"type": "integer", "minimum": 1},
        "train_loss": _NUMBER, "train_acc": _ACC,
        "val_loss": _NUMBER, "val_acc": _ACC,
        "seconds": _SECONDS,
    },
}

# Seed records come from fmareport.train.train_seed: the listed keys are the contract;
# extra diagnostic keys are allowed so that training can report more without a schema bump.
_SEED = {
    "type": "object",
    "required": ["seed", "history", "test_acc_last", "test_acc_best", "best_epoch", "confusion",
                 "per_genre_acc", "n_params", "seconds", "segments_per_second"],
    "properties": {
        "seed": {"type": "integer"},
        "history": {"type": "array", "items": _EPOCH, "minItems": 1},
        "test_acc_last": _ACC,
        "test_acc_best": _ACC,
        "best_epoch": {"type": "integer", "minimum": 1},
        "confusion": {"type": "array", "minItems": 8, "maxItems": 8,
                      "items": {"type": "array", "items": _COUNT, "minItems": 8, "maxItems": 8}},
        # null: no test track of that genre (tiny smoke sets), recall undefined
        "per_genre_acc": {"type": "object", "additionalProperties": {"type": ["number", "null"],
                                                                     "minimum": 0, "maximum": 1}},
        "n_params": {"type": "integer", "minimum": 1},
        "seconds": _SECONDS,
        "segments_per_second": _SECONDS,
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fmareport results of one experiment cell",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema_version", "profile", "cell", "config", "genres", "data", "seeds",
                 "summary", "provenance"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "profile": {"type": "string", "minLength": 1},
        "cell": {"type": "string", "minLength": 1},
        "config": {"type": "object", "required": sorted(FIELDS), "additionalProperties": False,
                   "properties": {k: {} for k in FIELDS}},
        "genres": _GENRE_NAMES,
        "data": {
            "type": "object",
            "additionalProperties": False,
            "required": ["source", "data_dir", "store", "store_fingerprint", "tracks", "skipped"],
            "properties": {
                "source": {"enum": ["synth", "fma"]},
                "data_dir": {"type": "string"},
                "store": {"type": "string"},
                "store_fingerprint": {"type": "string", "minLength": 1},
                "tracks": {"type": "object", "additionalProperties": False,
                           "required": ["training", "validation", "test"],
                           "properties": {s: _COUNT for s in ("training", "validation", "test")}},
                "skipped": _COUNT,
            },
        },
        "seeds": {"type": "array", "items": _SEED, "minItems": 1},
        "summary": {
            "type": "object",
            "additionalProperties": False,
            "required": ["n_seeds", "test_acc_last_mean", "test_acc_last_std",
                         "test_acc_best_mean", "test_acc_best_std"],
            "properties": {
                "n_seeds": {"type": "integer", "minimum": 1},
                "test_acc_last_mean": _ACC, "test_acc_last_std": _STD,
                "test_acc_best_mean": _ACC, "test_acc_best_std": _STD,
            },
        },
        "provenance": {
            "type": "object",
            "required": ["versions", "python", "git_commit", "git_dirty", "device", "hardware",
                         "started", "finished", "notebook"],
            "properties": {
                "versions": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                "python": {"type": "string"},
                # null when the code does not run from a git checkout (e.g. an sdist)
                "git_commit": {"type": ["string", "null"]},
                "git_dirty": {"type": ["boolean", "null"]},
                "device": {"type": "string"},
                "hardware": {"type": "object"},
                "started": {"type": "string", "format": "date-time"},
                "finished": {"type": "string", "format": "date-time"},
                "notebook": {"type": "string"},
            },
        },
    },
}


class ResultsError(ValueError):
    """A results JSON that does not follow the schema (the message says where)."""


def summarize(seed_records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (ddof=1; 0.0 for one seed) of the test accuracies over seeds."""
    if not seed_records:
        raise ResultsError("summarize: no seed records")
    out: dict[str, Any] = {"n_seeds": len(seed_records)}
    for key in ("test_acc_last", "test_acc_best"):
        values = [float(r[key]) for r in seed_records]
        mean = math.fsum(values) / len(values)
        var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
        out[f"{key}_mean"] = mean
        out[f"{key}_std"] = math.sqrt(var)
    return out


def validate(obj: Any) -> None:
    """Raise ResultsError unless `obj` follows SCHEMA and its summary matches its seeds."""
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ResultsError(f"results JSON invalid at {where}: {error.message}")
    expected = summarize(obj["seeds"])
    for key, value in expected.items():
        if not math.isclose(obj["summary"][key], value, rel_tol=1e-9, abs_tol=1e-12):
            raise ResultsError(f"results JSON invalid at summary/{key}: {obj['summary'][key]} "
                               f"does not match its seeds ({value})")
    if (obj["config"]["profile"], obj["config"]["cell"]) != (obj["profile"], obj["cell"]):
        raise ResultsError("results JSON invalid: profile/cell differ from config.profile/config.cell")


def results_path(results_dir: str | Path, profile: str, cell: str) -> Path:
    """`results/<profile>/<cell>.json` (a cell such as 'table1/raw_whole' makes a subfolder)."""
    return Path(results_dir) / profile / f"{cell}.json"


def write_results(path: str | Path, obj: dict[str, Any]) -> Path:
    """Validate `obj` and write it to `path` atomically (a reader never sees half a file)."""
    validate(obj)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=1, allow_nan=False) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _refuse_constant(name: str) -> None:
    raise ResultsError(f"{name} is not a number (the results must be finite)")


def read_results(path: str | Path) -> dict[str, Any]:
    """Read and validate one results JSON; errors name the file."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(), parse_constant=_refuse_constant)
        validate(obj)
    except (OSError, json.JSONDecodeError, ResultsError) as err:
        raise ResultsError(f"{path}: {err}") from None
    return obj


def load_results(results_dir: str | Path, profile: str) -> dict[str, dict[str, Any]]:
    """Every cell's results of a profile, validated: {'table1/raw_whole': obj, ...}, sorted by cell.

    A file's place must match its content (results/<profile>/<cell>.json); an empty or
    missing folder gives {} so the caller can say which runs are missing.
    """
    root = Path(results_dir) / profile
    out = {}
    for path in sorted(root.rglob("*.json")):
        cell = path.relative_to(root).with_suffix("").as_posix()
        obj = read_results(path)
        if (obj["profile"], obj["cell"]) != (profile, cell):
            raise ResultsError(f"{path}: holds profile {obj['profile']!r} cell {obj['cell']!r}, "
                               f"but its path says profile {profile!r} cell {cell!r}")
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
    tmp = notebook.with_name(f".{notebook.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, notebook)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmareport.results", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="validate results JSON files (or every *.json under folders)")
    p.add_argument("paths", nargs="+", type=Path)
    p = sub.add_parser("hide-injected", help="tag papermill's injected cell remove-cell in executed notebooks")
    p.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "validate":
        files = [f for p in args.paths for f in (sorted(p.rglob("*.json")) if p.is_dir() else [p])]
        try:
            for f in files:
                read_results(f)
        except ResultsError as err:
            print(f"invalid: {err}", file=sys.stderr)
            return 1
        print(f"{len(files)} results file(s) valid")
        return 0
    for nb in args.notebooks:
        if not hide_injected_cell(nb):
            print(f"{nb}: no papermill injected-parameters cell (was it run with parameters?)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

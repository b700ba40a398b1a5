"""The published reference of a profile, and a rerun set beside it.

`reference/<profile>.json` (committed) holds what one finished run of the profile gave: per cell and seed
the test accuracy and a SHA-256 of the test predictions, the baselines likewise, and the versions and
machine that made them (`make_reference`). `compare` judges a rerun against it: identical on the same kind
of machine (`kind`: device, CPU model, torch threads, the versions of `NUMBER_PACKAGES`), else "within
tolerance" when its cell mean lies inside the 95 % prediction interval of a mean of n new seeds
(`tolerance`); docs/running.md, "Checking a rerun against the reference".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import statistics
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import NUMBER_FREE_KEYS, Config, shown
from ..files import write_atomic
from ..provenance import now
from ..results import BaselineResults, CellResults, Provenance, ResultsError
from .runs import differing_keys

REFERENCE_DIR = Path("reference")  # in the repository root: reference/<profile>.json
SCHEMA_VERSION = 1
# Packages whose versions can change a number of a run (the model, the data, the resampling,
# the decoding); a rerun with other versions is compared with the tolerance, not exactly.
NUMBER_PACKAGES = ("torch", "numpy", "soundfile", "libsndfile", "soxr")
# The machine facts (provenance.hardware) that decide whether a CPU run can be bit-identical:
# the CPU model picks the kernels (AVX2, AVX-512) and the thread count the order of sums.
MACHINE_KEYS = ("cpu", "torch_threads")
PREDICTION_LEVEL = 0.95  # of the tolerance's prediction interval


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedReference(_Model):
    seed: int
    test_acc_last: float
    predictions_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class CellReference(_Model):
    run_id: str
    settings: dict[str, Any]  # the run's config, less the keys that change no number
    seeds: list[SeedReference] = Field(min_length=1)


class BaselineReference(_Model):
    test_acc: float
    predictions_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Reference(_Model):
    """reference/<profile>.json."""

    schema_version: Literal[1] = SCHEMA_VERSION
    profile: str
    written: dt.datetime
    git_commit: str | None
    versions: dict[str, str | None]
    python: str
    device: str
    hardware: dict[str, Any]
    cells: dict[str, CellReference]
    baselines: dict[str, BaselineReference]


def predictions_sha256(track_ids: list[int], probs: list[list[float]]) -> str:
    """SHA-256 of the test predictions as the results JSON stores them (floats as Python writes
    them, which read back bit for bit): equal hashes, equal predictions."""
    text = json.dumps({"track_ids": track_ids, "probs": probs}, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def settings(config: Config) -> dict[str, Any]:
    """A run's config, flat, without the keys that change no number (folders, workers: NUMBER_FREE_KEYS)."""
    return {k: v for k, v in config.to_dict().items() if k not in NUMBER_FREE_KEYS}


def reference_path(profile: str, root: str | Path = ".") -> Path:
    return Path(root) / REFERENCE_DIR / f"{profile}.json"


def make_reference(profile: str, results: dict[str, CellResults], baselines: dict[str, BaselineResults]) -> Reference:
    """The reference of one finished run of `profile`: `results` {cell: CellResults} as
    `load_results` reads them (every cell current), `baselines` as `load_baselines` does.
    The versions and machine are the first cell's; cells made elsewhere are refused."""
    if not results:
        raise ResultsError(f"no results of profile {profile!r}: run it first (make report PROFILE={profile})")
    first = next(iter(results.values())).provenance
    for cell, r in results.items():
        if kind(r.provenance) != kind(first):
            raise ResultsError(
                f"{cell}: ran on another machine or with other versions than {next(iter(results))} "
                f"({kind(r.provenance)} against {kind(first)}): a reference is one run of the whole "
                "profile on one machine"
            )
    cells = {
        cell: CellReference(
            run_id=r.run_id,
            settings=settings(r.config),
            seeds=[
                SeedReference(
                    seed=s.seed,
                    test_acc_last=acc,
                    predictions_sha256=predictions_sha256(r.test.track_ids, s.test_probs),
                )
                for s, acc in zip(r.seeds, r.accuracies)
            ],
        )
        for cell, r in results.items()
    }
    base = {
        name: BaselineReference(
            test_acc=b.test_acc, predictions_sha256=predictions_sha256(b.test.track_ids, b.test_probs)
        )
        for name, b in baselines.items()
    }
    return Reference(
        profile=profile,
        written=now(),
        git_commit=first.git_commit,
        versions=first.versions,
        python=first.python,
        device=first.device,
        hardware=first.hardware,
        cells=cells,
        baselines=base,
    )


def write_reference(reference: Reference, root: str | Path = ".") -> Path:
    path = reference_path(reference.profile, root)
    return write_atomic(path, reference.model_dump_json(indent=1) + "\n")


def read_reference(profile: str, root: str | Path = ".") -> Reference | None:
    """The committed reference of `profile`, or None when there is none. A damaged one raises
    ResultsError naming the file."""
    path = reference_path(profile, root)
    if not path.is_file():
        return None
    try:
        ref = Reference.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, OSError, UnicodeDecodeError) as err:
        what = err.errors(include_url=False)[0]["msg"] if isinstance(err, ValidationError) else str(err)
        raise ResultsError(
            f"{path}: not a reference file ({shown(what, text=True)}): {restore(path, profile)}"
        ) from None
    if ref.profile != profile:
        raise ResultsError(f"{path}: holds profile {ref.profile!r}, but its name says {profile!r}")
    return ref


def kind(provenance: Provenance | Reference) -> dict[str, Any]:
    """The facts of a run (its provenance block, or a reference, which records the same facts of its
    run) that decide whether it can match another bit for bit: the device, MACHINE_KEYS and the
    versions of NUMBER_PACKAGES."""
    return (
        {"device": provenance.device}
        | {k: provenance.hardware.get(k) for k in MACHINE_KEYS}
        | {k: provenance.versions.get(k) for k in NUMBER_PACKAGES}
    )


def tolerance(accuracies: list[float], level: float = PREDICTION_LEVEL) -> float | None:
    """Half-width of the `level` prediction interval for the mean of n new seeds around the mean of
    the reference's n seeds `accuracies`: t(1 − (1 − level)/2, n − 1) · s · sqrt(2 / n), s their
    sample SD. Exact when seeds scatter normally (the new mean minus the old, over s·sqrt(2/n), is
    t with n − 1 df; tests/test_reference.py simulates it). None for one seed."""
    from scipy import stats

    n = len(accuracies)
    if n < 2:
        return None
    return float(stats.t.ppf(1 - (1 - level) / 2, n - 1)) * statistics.stdev(accuracies) * math.sqrt(2 / n)


def differences(reference: Reference, provenance: Provenance) -> dict[str, tuple[Any, Any]]:
    """{fact: (reference's, this run's)} over the machine facts and number-making versions that differ."""
    ref, ours = kind(reference), kind(provenance)
    return {k: (ref[k], ours[k]) for k in ref if ref[k] != ours[k]}


def restore(path: Path, profile: str) -> str:
    """What a damaged reference asks for."""
    return f"restore it (`git checkout {path}`) or write it anew from a finished run (`fmareport reference --profile {profile}`)"


def same_predictions(stated: float, actual: float, what: str) -> None:
    """A reference states an accuracy beside the hash of the predictions it came from: where a run's
    predictions hash the same, their accuracy is the stated one, or the reference contradicts itself
    (ResultsError): a verdict then would rest on numbers the reference does not hold."""
    if abs(stated - actual) > 1e-9:
        raise ResultsError(
            f"the reference's {what}: the predictions hash as these runs', whose test accuracy is {actual:.4f}, but "
            f"it states {stated:.4f}: it contradicts itself (edited, or damaged); restore it from git or write it anew"
        )


def compare_cell(ref: CellReference | None, result: CellResults, exact: bool) -> tuple[str, str]:
    """(verdict, detail) of one cell's run against its reference entry. `exact`: whether this
    machine and these versions are the reference's kind (then anything but identical differs).

    Verdicts: "identical", "within tolerance", "differs", "other settings", "not in the reference".
    """
    if ref is None:
        return "not in the reference", "the reference has no run of this cell"
    if differ := differing_keys(result.config, ref.settings):
        return "other settings", "; ".join(f"{k} {a!r} (reference: {b!r})" for k, (a, b) in differ.items())
    seeds = {s.seed: s for s in ref.seeds}
    if [s.seed for s in result.seeds] != list(seeds):
        return "other settings", f"seeds {[s.seed for s in result.seeds]} (reference: {list(seeds)})"
    moved = []
    for s, acc in zip(result.seeds, result.accuracies):
        if predictions_sha256(result.test.track_ids, s.test_probs) != seeds[s.seed].predictions_sha256:
            moved.append(s.seed)
        else:
            same_predictions(seeds[s.seed].test_acc_last, acc, f"cell {result.cell} seed {s.seed}")
    if not moved:
        return "identical", f"{len(seeds)} seed(s): the same test predictions, bit for bit"
    ref_accs = [s.test_acc_last for s in ref.seeds]
    delta = statistics.fmean(result.accuracies) - statistics.fmean(ref_accs)
    detail = f"seed(s) {', '.join(map(str, moved))} predict otherwise; mean accuracy {delta:+.4f}"
    if exact:
        return "differs", detail + " on the reference's kind of machine and versions, where identical is expected"
    tol = tolerance(ref_accs)
    if tol is None:
        return "differs", detail + " (one seed: no spread to judge a difference by)"
    within = abs(delta) <= tol
    return ("within tolerance" if within else "differs"), detail + f", tolerance ±{tol:.4f}"


def compare(
    reference: Reference, results: dict[str, CellResults], baselines: dict[str, BaselineResults]
) -> list[dict[str, str]]:
    """One row per cell of `results` (and per baseline): {'Run': cell, 'Verdict': ..., 'Detail': ...}.
    Each run is judged exactly when its own machine and versions are the reference's."""
    rows = []
    for cell, r in results.items():
        exact = not differences(reference, r.provenance)
        verdict, detail = compare_cell(reference.cells.get(cell), r, exact)
        rows.append({"Run": cell, "Verdict": verdict, "Detail": detail})
    for name, b in baselines.items():
        ref = reference.baselines.get(name)
        if ref is None:
            rows.append({"Run": f"baseline {name}", "Verdict": "not in the reference", "Detail": ""})
            continue
        same = predictions_sha256(b.test.track_ids, b.test_probs) == ref.predictions_sha256
        if same:
            same_predictions(ref.test_acc, b.test_acc, f"baseline {name}")
        rows.append(
            {
                "Run": f"baseline {name}",
                "Verdict": "identical" if same else "differs",
                "Detail": f"test accuracy {b.test_acc - ref.test_acc:+.4f} against the reference's",
            }
        )
    return rows


def fact_rows(reference: Reference, results: dict[str, CellResults]) -> list[dict[str, str]]:
    """The facts a rerun is judged by, the reference's beside these runs' (each distinct value once):
    {'Fact': ..., 'Reference': ..., 'These runs': ..., 'Same': 'yes' | 'no'}."""

    def facts(p: Provenance | Reference) -> dict[str, Any]:
        return kind(p) | {"python": p.python, "git commit": p.git_commit}

    ref = facts(reference)
    runs = [facts(r.provenance) for r in results.values()]
    rows = []
    for name, value in ref.items():
        ours = list(dict.fromkeys(str(f[name]) for f in runs))
        same = "yes" if ours == [str(value)] else "no"
        rows.append({"Fact": name, "Reference": str(value), "These runs": ", ".join(ours), "Same": same})
    return rows

"""The paper's Tables 1–3 beside ours, and a verdict on each of the paper's claims.

Input: the results of one profile, `results/<profile>/<cell>.json` read as dicts (the
schema in docs/contracts.md). A run is found by its setting (input, segmented, dropout)
read from its config, not by its file name, so a table cell cannot pick the wrong run.

    runs = index_runs(results)                  # {(input, segmented, dropout): result}
    paper_table("Table 1", runs)                # numbers: paper, mean, std, seeds, diff
    show_table(paper_table("Table 1", runs))    # strings: "0.412 ± 0.013", "+0.017"
    claims(runs)                                # each comparison: effect, 95 % CI, verdict

Table 3 reuses the runs of the segmented cells of Tables 1 and 2 (DESIGN.md §5: we read
it as a replicate of them, reported over seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .stats import CONFIDENCE, mean_std, welch_interval

# A run's setting: (input kind, segmented, dropout), as in its config.
Setting = tuple[str, bool, float]

INPUT_LABELS = {"raw": "1D", "spectrogram": "2D", "both": "1D+2D"}

# The paper's test accuracies (Benito Calvino & Pacheco Garcia, §VI): Table 1 (no
# dropout), Table 2 (segmented, dropout 0.2), Table 3 (segmented, without and with
# dropout 0.2; the paper prints 0.00 for 1D+2D and never explains it).
PAPER: dict[str, dict[Setting, float]] = {
    "Table 1": {
        ("raw", False, 0.0): 0.264,
        ("spectrogram", False, 0.0): 0.395,
        ("both", False, 0.0): 0.376,
        ("raw", True, 0.0): 0.314,
        ("spectrogram", True, 0.0): 0.429,
        ("both", True, 0.0): 0.428,
    },
    "Table 2": {("spectrogram", True, 0.2): 0.378, ("both", True, 0.2): 0.369},
    "Table 3": {
        ("spectrogram", True, 0.0): 0.469,
        ("both", True, 0.0): 0.00,
        ("spectrogram", True, 0.2): 0.423,
        ("both", True, 0.2): 0.00,
    },
}

# Table 3's 0.00 for 1D+2D is no accuracy (chance is 0.125): the paper never explains it,
# so the tables print it but compute no difference against it.
UNEXPLAINED = {("Table 3", ("both", True, 0.0)), ("Table 3", ("both", True, 0.2))}

CAPTIONS = {
    "Table 1": "Test accuracy for the three inputs, whole clips and segmented, no dropout.",
    "Table 2": "Test accuracy, segmented, with 0.2 dropout.",
    "Table 3": "Test accuracy, segmented, without and with 0.2 dropout (the paper's replicate; "
    "our runs are those of Tables 1 and 2; the paper's unexplained 0.00 gets no difference).",
}

# An effect smaller than this many accuracy points counts as "no advantage" when
# judging "1D+2D adds nothing over 2D" (the paper calls 0.429 vs 0.428 "similar").
NO_GAIN_MARGIN = 0.02


def setting_of(result: dict) -> Setting:
    """(input, segmented, dropout) of one results JSON, from its config."""
    c = result["config"]
    return (c["input"], bool(c["segmented"]), float(c["dropout"]))


def setting_label(setting: Setting) -> str:
    """'2D input, segmented, dropout 0.2' for humans."""
    kind, segmented, dropout = setting
    parts = [f"{INPUT_LABELS[kind]} input", "segmented" if segmented else "not segmented"]
    if dropout:
        parts.append(f"dropout {dropout:g}")
    return ", ".join(parts)


def index_runs(results: list[dict]) -> dict[Setting, dict]:
    """Key each result by its setting; refuse mixed profiles and two runs of one setting."""
    profiles = sorted({r["profile"] for r in results})
    if len(profiles) > 1:
        raise ValueError(f"results from several profiles {profiles}: the tables show one profile")
    runs: dict[Setting, dict] = {}
    for r in results:
        s = setting_of(r)
        if s in runs:
            raise ValueError(
                f"cells {runs[s]['cell']!r} and {r['cell']!r} are the same setting "
                f"({setting_label(s)}): the tables need one run per setting"
            )
        runs[s] = r
    return runs


def accuracies(result: dict) -> list[float]:
    """The last-epoch test accuracy of each seed (what the tables show)."""
    return [float(s["test_acc_last"]) for s in result["seeds"]]


def paper_table(name: str, runs: dict[Setting, dict]) -> pd.DataFrame:
    """One of the paper's tables with ours beside it, one row per cell, numbers only.

    Columns: setting, cell (our run, or None when it is missing), paper, mean, std,
    n_seeds, diff (mean - paper). mean/std/diff are NaN for a missing run; diff is NaN
    against the paper's unexplained 0.00 (UNEXPLAINED).
    """
    rows = []
    for setting, paper in PAPER[name].items():
        run = runs.get(setting)
        if run is None:
            mean = std = math.nan
            n = 0
        else:
            acc = accuracies(run)  # the same numbers as the results file's summary
            (mean, std), n = mean_std(acc), len(acc)
        diff = math.nan if (name, setting) in UNEXPLAINED else mean - paper
        rows.append(
            dict(
                setting=setting_label(setting),
                cell=run["cell"] if run else None,
                paper=paper,
                mean=mean,
                std=std,
                n_seeds=n,
                diff=diff,
            )
        )
    return pd.DataFrame(rows)


def show_table(table: pd.DataFrame) -> pd.DataFrame:
    """The display form of `paper_table`: 'Paper', 'Ours (mean ± std)', 'Seeds', 'Ours − paper'."""

    def ours(r):
        return "not run" if r.n_seeds == 0 else f"{r['mean']:.3f} ± {r['std']:.3f}"

    out = pd.DataFrame(
        {
            "Paper": table["paper"].map(lambda v: f"{v:.3f}"),
            "Ours (mean ± std)": table.apply(ours, axis=1),
            "Seeds": table["n_seeds"].astype(str),
            "Ours − paper": table["diff"].map(lambda v: "—" if math.isnan(v) else f"{v:+.3f}"),
        }
    )
    out.index = pd.Index(table["setting"], name="Setting")
    return out


@dataclass(frozen=True)
class Claim:
    """A claim of the paper as differences `a - b` of test accuracy.

    direction: "positive" (a beats b), "negative" (a is worse than b) or "no_gain"
    (a is not better than b by NO_GAIN_MARGIN or more).
    """

    name: str
    direction: str
    comparisons: tuple[tuple[Setting, Setting], ...]
    source: str


def _pairs(a: dict, b: dict) -> tuple[tuple[Setting, Setting], ...]:
    return tuple((a[k], b[k]) for k in a)


_RAW = {seg: ("raw", seg, 0.0) for seg in (False, True)}
_SPEC = {seg: ("spectrogram", seg, 0.0) for seg in (False, True)}
_BOTH = {seg: ("both", seg, 0.0) for seg in (False, True)}

CLAIMS = (
    Claim(
        "2D beats 1D",
        "positive",
        _pairs(_SPEC, _RAW),
        "Abstract and §VI: 'the spectrogram yields better results'; '1D input gives a lower accuracy in any case'.",
    ),
    Claim(
        "1D+2D adds nothing over 2D",
        "no_gain",
        _pairs(_BOTH, _SPEC) + ((("both", True, 0.2), ("spectrogram", True, 0.2)),),
        "Abstract: 'the combination does not provide any advantages'.",
    ),
    Claim(
        "Segmenting helps",
        "positive",
        tuple(((k, True, 0.0), (k, False, 0.0)) for k in ("raw", "spectrogram", "both")),
        "Abstract and §VI: 'segmenting data into smaller pieces makes the network perform better'.",
    ),
    Claim(
        "Dropout hurts",
        "negative",
        tuple(((k, True, 0.2), (k, True, 0.0)) for k in ("spectrogram", "both")),
        "§VI, Table 2: 'it deteriorates them. It should not be used in our case.'",
    ),
)


def paper_value(setting: Setting) -> float:
    """The paper's accuracy for a setting (Tables 1 and 2; Table 3 only repeats them)."""
    for name in ("Table 1", "Table 2"):
        if setting in PAPER[name]:
            return PAPER[name][setting]
    raise KeyError(setting)


def verdict(direction: str, low: float, high: float) -> str:
    """'holds', 'does not hold' or 'inconclusive' from a confidence interval of a - b."""
    if direction == "positive":
        return "holds" if low > 0 else "does not hold" if high < 0 else "inconclusive"
    if direction == "negative":
        return "holds" if high < 0 else "does not hold" if low > 0 else "inconclusive"
    if direction == "no_gain":
        return "does not hold" if low > 0 else "holds" if high < NO_GAIN_MARGIN else "inconclusive"
    raise ValueError(f"unknown claim direction {direction!r}")


def claims(runs: dict[Setting, dict]) -> pd.DataFrame:
    """Each claim's comparisons judged from our runs, one row per comparison.

    Columns: claim, comparison, paper_diff, diff (our difference of means), low, high
    (its 95 % Welch t-interval over seeds; NaN when a side has < 2 seeds), seeds
    ("na / nb"), verdict.
    """
    rows = []
    for claim in CLAIMS:
        for a, b in claim.comparisons:
            row = dict(
                claim=claim.name,
                comparison=f"{setting_label(a)} − {setting_label(b)}",
                paper_diff=paper_value(a) - paper_value(b),
                diff=math.nan,
                low=math.nan,
                high=math.nan,
                seeds="",
                verdict="",
            )
            if a not in runs or b not in runs:
                missing = setting_label(a if a not in runs else b)
                row.update(verdict=f"inconclusive (not run: {missing})")
                rows.append(row)
                continue
            acc_a, acc_b = accuracies(runs[a]), accuracies(runs[b])
            row["seeds"] = f"{len(acc_a)} / {len(acc_b)}"
            row["diff"] = sum(acc_a) / len(acc_a) - sum(acc_b) / len(acc_b)
            if min(len(acc_a), len(acc_b)) < 2:
                row["verdict"] = "inconclusive (1 seed)"
            else:
                _, row["low"], row["high"] = welch_interval(acc_a, acc_b)
                row["verdict"] = (
                    "inconclusive (no spread over seeds)"
                    if math.isnan(row["low"])
                    else verdict(claim.direction, row["low"], row["high"])
                )
            rows.append(row)
    return pd.DataFrame(rows)


def claim_summary(judged: pd.DataFrame) -> pd.DataFrame:
    """One line per claim: its verdict over all its comparisons.

    The verdict is the comparisons' common verdict when they agree, else each verdict
    with the comparisons it covers ("holds for 2D input, ...; inconclusive for ...").
    """
    rows = []
    for claim in CLAIMS:
        part = judged[judged["claim"] == claim.name]
        verdicts = list(dict.fromkeys(part["verdict"]))
        if len(verdicts) == 1:
            overall = verdicts[0]
        else:
            overall = "; ".join(f"{v} for " + ", ".join(part.loc[part["verdict"] == v, "comparison"]) for v in verdicts)
        rows.append(dict(claim=claim.name, source=claim.source, verdict=overall))
    return pd.DataFrame(rows)


def show_claims(judged: pd.DataFrame) -> pd.DataFrame:
    """The display form of `claims`."""

    def interval(r):
        return "—" if math.isnan(r["low"]) else f"[{r['low']:+.3f}, {r['high']:+.3f}]"

    out = pd.DataFrame(
        {
            "Claim": judged["claim"],
            "Comparison (a − b)": judged["comparison"],
            "Paper a − b": judged["paper_diff"].map(lambda v: f"{v:+.3f}"),
            "Ours a − b": judged["diff"].map(lambda v: "—" if math.isnan(v) else f"{v:+.3f}"),
            f"{CONFIDENCE:.0%} CI over seeds": judged.apply(interval, axis=1),
            "Seeds (a / b)": judged["seeds"],
            "Verdict": judged["verdict"],
        }
    )
    return out.set_index(["Claim", "Comparison (a − b)"])


def cell_summary(results: list[dict]) -> pd.DataFrame:
    """One row per run: cell, setting, seeds, last/best test accuracy (mean ± std), time."""
    rows = []
    for r in sorted(results, key=lambda r: r["cell"]):
        s = r["summary"]
        rows.append(
            {
                "Cell": r["cell"],
                "Setting": setting_label(setting_of(r)),
                "Seeds": s["n_seeds"],
                "Test acc., last epoch": f"{s['test_acc_last_mean']:.3f} ± {s['test_acc_last_std']:.3f}",
                "Test acc., best val. epoch": f"{s['test_acc_best_mean']:.3f} ± {s['test_acc_best_std']:.3f}",
                "Parameters": f"{r['seeds'][0]['n_params']:,}",
                "Minutes (all seeds)": f"{sum(x['seconds'] for x in r['seeds']) / 60:.1f}",
            }
        )
    return pd.DataFrame(rows).set_index("Cell")


def config_markdown(cfg) -> str:
    """One line saying what a cell's run is: profile, cell, setting, protocol, data, device."""
    setting = setting_label((cfg.input, cfg.segmented, cfg.dropout))
    return (
        f"**{cfg.profile} / {cfg.cell}**: {setting}; {len(cfg.seeds)} seed(s) × {cfg.epochs} epoch(s), "
        f"batch {cfg.batch_size}, lr {cfg.lr:g}; {cfg.sample_rate:,} Hz clips of {cfg.clip_samples:,} samples; "
        f"data `{cfg.data_dir}` ({cfg.data_source}); device `{cfg.device}`."
    )


def seed_table(result: dict) -> pd.DataFrame:
    """One row per seed of one cell: test accuracies, best epoch, time and throughput."""
    keys = ["test_acc_last", "test_acc_best", "best_epoch", "seconds", "segments_per_second"]
    table = pd.DataFrame([{k: s[k] for k in ["seed", *keys]} for s in result["seeds"]]).set_index("seed")
    return table.round(3)

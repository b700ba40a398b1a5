"""The paper's Tables 1–3 beside ours, and a verdict on each of the paper's claims.

Input: the results of one profile, `results/<profile>/<cell>.json` read as CellResults
(fmareport.results; the schema in docs/contracts.md). A run is found by its setting (input,
segmented, dropout) read from its config, not by its file name, so a table cell cannot pick
the wrong run. A baseline enters the comparisons as a one-seed run (results.BaselineResults).

    runs = index_runs(results)                  # {(input, segmented, dropout): result}
    paper_table("Table 1", runs)                # numbers: paper, mean, std, seeds, diff
    show_table(paper_table("Table 1", runs))    # strings: "0.412 ± 0.013", "+0.017"
    claims(runs)                                # each comparison: effect, 95 % CI, verdict

Table 3 reuses the runs of the segmented cells of Tables 1 and 2 (we read it as a replicate
of them, reported over seeds; the book's Methods page says why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.fma import PUBLISHED_BASELINES
from ..inputs import INPUTS
from ..results import BaselineResults, CellResults
from .runs import diverged
from .stats import CONFIDENCE, Interval, detectable, mean_std, paired_difference, seed_share
from .stats import (
    accuracy_interval as _accuracy_interval,
)

# A run's setting: (input kind, segmented, dropout), as in its config.
Setting = tuple[str, bool, float]


# What the comparisons read: a cell's results, or a baseline (a one-seed run with no config).
Run = CellResults | BaselineResults


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

# The margin of "no advantage" and "similar": the largest gap the paper itself calls similar,
# 2D 0.395 against 1D+2D 0.376 on whole clips (Table 1, §VI: "The results gotten for the model
# trained with 2D input are similar to those obtained for the model fed with both"), 0.019 -> 0.02.
NO_GAIN_MARGIN = 0.02

# The claims' tests form one family (`claims`): Holm's step-down keeps the chance of any wrong
# "holds" or "does not hold" among them at or under FAMILY_ALPHA.
FAMILY_ALPHA = 0.05
POWER = 0.8  # the power at which `claims` states the smallest detectable difference or margin


def setting_of(result: CellResults) -> Setting:
    """(input, segmented, dropout) of one results JSON, from its config."""
    m = result.config.model
    return (m.input, bool(m.segmented), float(m.dropout))


def setting_label(setting: Setting) -> str:
    """'2D input, segmented, dropout 0.2' for humans."""
    kind, segmented, dropout = setting
    parts = [f"{INPUTS[kind].label} input", "segmented" if segmented else "not segmented"]
    if dropout:
        parts.append(f"dropout {dropout:g}")
    return ", ".join(parts)


def is_ablation(result: CellResults) -> bool:
    """An ablation cell (params/ablations/): it names the table cell it changes (`base`)."""
    return result.config.base is not None


def index_runs(results: list[CellResults]) -> dict[Setting, CellResults]:
    """Key each table cell's result by its setting (ablations are left out); refuse mixed profiles
    and two runs of one setting."""
    profiles = sorted({r.profile for r in results})
    if len(profiles) > 1:
        raise ValueError(f"results from several profiles {profiles}: the tables show one profile")
    runs: dict[Setting, CellResults] = {}
    for r in results:
        if is_ablation(r):
            continue
        s = setting_of(r)
        if s in runs:
            raise ValueError(
                f"cells {runs[s].cell!r} and {r.cell!r} are the same setting "
                f"({setting_label(s)}): the tables need one run per setting"
            )
        runs[s] = r
    return runs


def accuracies(result: Run) -> list[float]:
    """The last-epoch test accuracy of each seed (what the tables show)."""
    return result.accuracies


def paper_table(name: str, runs: dict[Setting, CellResults]) -> pd.DataFrame:
    """One of the paper's tables with ours beside it, one row per cell, numbers only.

    Columns: setting, cell (our run, or None when it is missing), diverged (a seed's training
    loss diverged: runs.diverged), paper, mean, std,
    n_seeds, low, high (the 95 % interval over test tracks and seeds, `stats.accuracy_interval`; NaN without
    the run's test predictions), diff (mean - paper). mean/std/diff are NaN for a missing
    run; diff is NaN against the paper's unexplained 0.00 (UNEXPLAINED).
    """
    rows = []
    for setting, paper in PAPER[name].items():
        run = runs.get(setting)
        low = high = math.nan
        if run is None:
            mean = std = math.nan
            n = 0
        else:
            acc = accuracies(run)  # the same numbers as the results file's summary
            (mean, std), n = mean_std(acc), len(acc)
            interval = accuracy_interval(run)
            if interval is not None:
                low, high = interval[1:]
        diff = math.nan if (name, setting) in UNEXPLAINED else mean - paper
        rows.append(
            dict(
                setting=setting_label(setting),
                cell=run.cell if run else None,
                diverged=bool(run and diverged(run)),
                paper=paper,
                mean=mean,
                std=std,
                n_seeds=n,
                low=low,
                high=high,
                diff=diff,
            )
        )
    return pd.DataFrame(rows)


def show_table(table: pd.DataFrame, against_paper: bool = True) -> pd.DataFrame:
    """The display form of `paper_table`: 'Paper', 'Ours (mean ± std)', 'Seeds', '95 % interval',
    'Ours − paper'. against_paper False (a synthetic task, whose accuracies say nothing of the
    paper's) leaves the last column out."""

    def ours(r):
        if r.n_seeds == 0:
            return "not run"
        return f"{r['mean']:.3f} ± {r['std']:.3f}" + (" (diverged: see Runs)" if r.diverged else "")

    out = pd.DataFrame(
        {
            "Paper": table["paper"].map(lambda v: f"{v:.3f}"),
            "Ours (mean ± std)": table.apply(ours, axis=1),
            "Seeds": table["n_seeds"].astype(str),
            f"{CONFIDENCE:.0%} interval": table.apply(
                lambda r: "—" if math.isnan(r["low"]) else f"[{r['low']:.3f}, {r['high']:.3f}]", axis=1
            ),
            "Ours − paper": table["diff"].map(lambda v: "—" if math.isnan(v) else f"{v:+.3f}"),
        }
    )
    out.index = pd.Index(table["setting"], name="Setting")
    return out if against_paper else out.drop(columns="Ours − paper")


@dataclass(frozen=True)
class Test:
    """How one of the paper's words is tested on a difference a - b of test accuracy.

    kind:
      "superiority": a beats b (or, with `sign` -1, a is worse than b): a two-sided test of
        a - b = 0 at 5 % (the 95 % interval); it holds when the difference is significant in the
        paper's direction and does not hold when it is significant the other way.
      "non-superiority": a gives no advantage over b: H0 a - b >= NO_GAIN_MARGIN, one-sided at 2.5 %
        (the 95 % interval's upper bound below the margin); it does not hold when a gain of the
        margin or more is significant the same way (the lower bound above the margin).
      "equivalence": a and b are similar: TOST, H0 |a - b| >= NO_GAIN_MARGIN, two one-sided tests
        at 5 % (the 90 % interval inside the margins); it does not hold when the 90 % interval lies
        wholly outside them (a gap of at least the margin, either way).
    word: the paper's word the test reads.
    """

    kind: str
    word: str
    sign: int = 1

    @property
    def confidence(self) -> float:
        """The two-sided level of the interval the test reads."""
        return 0.90 if self.kind == "equivalence" else CONFIDENCE

    @property
    def margin(self) -> str:
        return {"superiority": "0", "non-superiority": f"+{NO_GAIN_MARGIN:g}"}.get(self.kind, f"±{NO_GAIN_MARGIN:g}")

    def p_values(self, i: Interval) -> tuple[float, float]:
        """(p of the test that would say "holds", p of the one that would say "does not hold"), each
        on the scale where FAMILY_ALPHA decides: the smaller one is the comparison's p-value."""
        d = NO_GAIN_MARGIN
        if self.kind == "superiority":
            up, down = i.p_value(0.0, "greater"), i.p_value(0.0, "less")
            holds, refutes = (up, down) if self.sign > 0 else (down, up)
            return 2 * holds, 2 * refutes  # two-sided: each side at 2.5 %
        if self.kind == "non-superiority":
            return 2 * i.p_value(d, "less"), 2 * i.p_value(d, "greater")
        if self.kind == "equivalence":
            inside = max(i.p_value(-d, "greater"), i.p_value(d, "less"))  # TOST: both one-sided tests
            outside = min(i.p_value(d, "greater"), i.p_value(-d, "less"))  # a gap beyond one margin
            return inside, outside
        raise ValueError(f"unknown test kind {self.kind!r}")

    def detectable(self, i: Interval) -> float:
        """For "superiority", the smallest true difference the test finds with POWER; for the others,
        the smallest margin it confirms with POWER when a and b are truly equal (`stats.detectable`).
        i: the interval at the test's own level."""
        return detectable(i, POWER, both_bounds=self.kind == "equivalence")


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: the differences a - b of test accuracy it is about, each judged by
    every one of `tests` (a claim worded twice, "no advantage" and "similar", gets both)."""

    name: str
    tests: tuple[Test, ...]
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
        (Test("superiority", "better results"),),
        _pairs(_SPEC, _RAW),
        "Abstract and §VI: 'the spectrogram yields better results'; '1D input gives a lower accuracy in any case'.",
    ),
    Claim(
        "1D+2D adds nothing over 2D",
        (Test("non-superiority", "no advantages"), Test("equivalence", "similar")),
        _pairs(_BOTH, _SPEC) + ((("both", True, 0.2), ("spectrogram", True, 0.2)),),
        "Abstract: 'the combination does not provide any advantages'; §VI: 'similar'.",
    ),
    Claim(
        "Segmenting helps",
        (Test("superiority", "performs better"),),
        tuple(((k, True, 0.0), (k, False, 0.0)) for k in ("raw", "spectrogram", "both")),
        "Abstract and §VI: 'segmenting data into smaller pieces makes the network perform better'.",
    ),
    Claim(
        "Dropout hurts",
        (Test("superiority", "deteriorates", sign=-1),),
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


def verdict(test: Test, interval: Interval, p_adjusted: float) -> str:
    """'holds', 'does not hold' or 'inconclusive' from a test's family-adjusted p-value (`claims`),
    its direction from which of the two opposite tests gave it; what was shown, in a few words."""
    if p_adjusted >= FAMILY_ALPHA:
        return "inconclusive"
    holds, refutes = test.p_values(interval)
    d = interval.estimate
    if test.kind == "superiority":
        return "holds" if holds <= refutes else f"does not hold: {'a gain' if d > 0 else 'a loss'}"
    if test.kind == "non-superiority":
        return "holds" if holds <= refutes else f"does not hold: a gain of +{NO_GAIN_MARGIN:g} or more"
    if holds <= refutes:
        return "holds"
    return f"does not hold: {'a gain' if d > 0 else 'a loss'} beyond the ±{NO_GAIN_MARGIN:g} margin"


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input's order: the k-th smallest of m
    is multiplied by m - k + 1, kept from falling below the one before it, and capped at 1. An
    adjusted p under alpha rejects with the family's error at most alpha. (statsmodels' multipletests
    does this too; five lines do not justify the dependency.)"""
    order = np.argsort(p_values, kind="stable")
    m, running, out = len(p_values), 0.0, [1.0] * len(p_values)
    for k, j in enumerate(order):
        running = max(running, min(1.0, (m - k) * p_values[j]))
        out[j] = running
    return out


def correct_matrix(result: Run) -> tuple[np.ndarray, np.ndarray]:
    """(track_ids (N,), correct (S, N) bool): each seed right or wrong on each test track."""
    return np.asarray(result.test.track_ids), result.correct


def artists_of(result: Run) -> np.ndarray | None:
    """(N,) int64: the artist of each test track, in `correct_matrix`'s track order; None for results
    written before artists were recorded."""
    artists = result.test.artist_ids
    return None if artists is None else np.asarray(artists, dtype=np.int64)


def seed_list(result: Run) -> list[int]:
    """The seeds a result ran, in its order."""
    return list(result.seed_ids)


def input_of(result: Run) -> str | None:
    """The input kind a result's network took; None for a baseline (no network)."""
    return None if result.config is None else result.config.model.input


def accuracy_interval(result: Run) -> tuple[float, float, float] | None:
    """A cell's accuracy and its 95 % interval over test tracks (their artists, where the result
    records them) and seeds: (mean, low, high); None without its test predictions."""
    i = _accuracy_interval(correct_matrix(result)[1], clusters=artists_of(result))
    return i.estimate, i.low, i.high


def seeds_shared(a: Run, b: Run) -> bool:
    """Whether seed s of `a` and of `b` start from the same initial weights and batch order: the same
    seeds and the same input kind (the network's layers and their initialisation order are the
    input's; segmenting, dropout and the spectrogram's scale change no weight)."""
    kind = input_of(a)
    return seed_list(a) == seed_list(b) and kind is not None and kind == input_of(b)


def difference(a: Run, b: Run) -> tuple[Interval, str, bool] | None:
    """a - b in test accuracy with its 95 % interval (`stats.paired_difference`: paired on the same
    test tracks, tracks and seeds as variance components at their own t quantiles; the tracks
    resampled by artist where a side records their artists, `artists_of`, both sides the same), the method in
    words, and whether the seeds are paired (`seeds_shared`: the same initial weights). None when a
    side kept no test predictions."""
    ids_a, ca = correct_matrix(a)
    ids_b, cb = correct_matrix(b)
    if not np.array_equal(ids_a, ids_b):
        raise ValueError(f"cells {a.cell} and {b.cell} were tested on different tracks: no paired comparison")
    artists_a, artists_b = artists_of(a), artists_of(b)
    if artists_a is not None and artists_b is not None and not np.array_equal(artists_a, artists_b):
        raise ValueError(f"cells {a.cell} and {b.cell} give their test tracks different artists: not the same data")
    artists = artists_a if artists_a is not None else artists_b  # the same tracks: one side's are both's
    same_seeds = seeds_shared(a, b)
    one_seed = "; 1 seed: no seed spread" if min(ca.shape[0], cb.shape[0]) < 2 else ""
    paired_tracks = f"{len(ids_a)} paired tracks"
    unit = paired_tracks if artists is None else f"{len(np.unique(artists))} artists ({paired_tracks})"
    method = f"t over {unit} and the seeds{one_seed}"
    return paired_difference(ca, cb, same_seeds=same_seeds, clusters=artists), method, same_seeds


def compare(a: Run, b: Run) -> dict:
    """a - b in test accuracy as numbers: diff, low, high (95 %), width, se, seed_share, detectable (the
    smallest difference found with 80 % power at 5 %, two-sided), seeds, method, paired (`difference`). The
    interval's fields are NaN and the method empty when a side kept no test predictions."""
    acc_a, acc_b = accuracies(a), accuracies(b)
    out = dict(
        diff=float(np.mean(acc_a) - np.mean(acc_b)),
        low=math.nan,
        high=math.nan,
        se=math.nan,
        detectable=math.nan,
        seeds=f"{len(acc_a)} / {len(acc_b)}",
        method="",
        paired=False,
        seed_share=math.nan,
    )
    found = difference(a, b)
    if found is not None:
        i, out["method"], out["paired"] = found
        out.update(diff=i.estimate, low=i.low, high=i.high, se=i.se, detectable=detectable(i, POWER))
        out["seed_share"] = seed_share(i)
    out["width"] = out["high"] - out["low"]  # NaN without an interval
    return out


def _claim_row(name: str, a: Setting, b: Setting, test, runs: dict[Setting, CellResults], found) -> tuple[dict, bool]:
    """One (comparison, test) row of `claims`, before Holm: the interval the test reads and its
    smaller p-value (-> row, True), or why it is inconclusive (-> row, False)."""
    row = dict(
        claim=name,
        comparison=f"{setting_label(a)} − {setting_label(b)}",
        word=test.word,
        test=test.kind,
        margin=test.margin,
        confidence=test.confidence,
        paper_diff=paper_value(a) - paper_value(b),
        **dict.fromkeys(("diff", "low", "high", "se", "seed_share", "detectable"), math.nan),
        seeds="",
        method="",
        paired=False,
        p=math.nan,
        p_holm=math.nan,
        verdict="",
    )
    if a not in runs or b not in runs:
        return row | {"verdict": f"inconclusive (not run: {setting_label(a if a not in runs else b)})"}, False
    if found is None:
        return row | {"verdict": "inconclusive (no test predictions kept)"}, False
    i, row["method"], row["paired"] = found
    shown = i.at(test.confidence)
    row.update(diff=i.estimate, low=shown.low, high=shown.high, se=i.se, seed_share=seed_share(i))
    row.update(detectable=test.detectable(shown), seeds=f"{len(runs[a].seeds)} / {len(runs[b].seeds)}")
    if min(len(runs[a].seeds), len(runs[b].seeds)) < 2:
        return row | {"verdict": "inconclusive (1 seed)"}, False
    if i.se == 0:
        return row | {"verdict": "inconclusive (no spread)"}, False
    return row | {"p": min(test.p_values(i))}, True


def claims(runs: dict[Setting, CellResults]) -> pd.DataFrame:
    """Each claim's tests on each of its comparisons, one row per (comparison, test); the family of
    every test that has an interval is Holm-adjusted (`holm`).

    Columns: claim, comparison, word (the paper's), test, margin, confidence (of the interval the
    test reads), paper_diff, diff, low, high (that interval), se, seed_share (`stats.seed_share`),
    detectable (`Test.detectable`),
    seeds ("na / nb"), method, paired, p (the smaller of the test's two p-values), p_holm, verdict.
    """
    rows, intervals = [], []
    for claim in CLAIMS:
        for a, b in claim.comparisons:
            found = difference(runs[a], runs[b]) if a in runs and b in runs else None
            for test in claim.tests:
                row, judged = _claim_row(claim.name, a, b, test, runs, found)
                if judged:  # a verdict from its interval and its Holm-adjusted p, below
                    intervals.append((len(rows), test, found[0]))
                rows.append(row)
    for (k, test, i), p_holm in zip(intervals, holm([rows[k]["p"] for k, _, _ in intervals])):
        rows[k]["p_holm"] = p_holm
        rows[k]["verdict"] = verdict(test, i, p_holm)
    return pd.DataFrame(rows)


def family_size(judged: pd.DataFrame) -> int:
    """How many tests the Holm family of `claims` holds (those with an interval)."""
    return int(judged["p_holm"].notna().sum())


def claim_summary(judged: pd.DataFrame) -> pd.DataFrame:
    """One line per claim and word of the paper: its verdict over all its comparisons.

    The verdict is the comparisons' common verdict when they agree, else each verdict
    with the comparisons it covers ("holds for 2D input, ...; inconclusive for ...").
    """
    rows = []
    for claim in CLAIMS:
        for test in claim.tests:
            part = judged[(judged["claim"] == claim.name) & (judged["word"] == test.word)]
            verdicts = list(dict.fromkeys(part["verdict"]))
            if len(verdicts) == 1:
                overall = verdicts[0]
            else:
                overall = "; ".join(
                    f"{v} for " + ", ".join(part.loc[part["verdict"] == v, "comparison"]) for v in verdicts
                )
            name = claim.name if len(claim.tests) == 1 else f"{claim.name} ('{test.word}')"
            rows.append(dict(claim=name, source=claim.source, verdict=overall))
    return pd.DataFrame(rows)


TEST_LABELS = {  # the test, its margin and the interval it reads, in few words (the Results page explains)
    "superiority": "≠ 0, 95 %",
    "non-superiority": f"gain < +{NO_GAIN_MARGIN:g}, 95 %",
    "equivalence": f"TOST ±{NO_GAIN_MARGIN:g}, 90 %",
}
PAIRED_MARK = "†"  # beside a difference whose seeds are paired (the same input and seeds: the same initial weights)
PAIRED_NOTE = (
    f"{PAIRED_MARK}: seeds paired (the same input and seeds, so the same initial weights); other rows' seeds are not"
)


def show_claims(judged: pd.DataFrame, against_paper: bool = True) -> pd.DataFrame:
    """The display form of `claims`; against_paper False (a synthetic task) leaves the paper's own
    differences out, so no synthetic number stands beside one of the paper's."""

    def ours(r):
        if math.isnan(r["diff"]):
            return "—"
        mark = PAIRED_MARK if r["paired"] else ""
        return f"{r['diff']:+.3f}{mark}" + ("" if math.isnan(r["low"]) else f" [{r['low']:+.3f}, {r['high']:+.3f}]")

    def number(fmt):
        return lambda v: "—" if math.isnan(v) else format(v, fmt)

    out = pd.DataFrame(
        {
            "Claim": judged["claim"],
            "Comparison (a − b)": judged["comparison"],
            "Paper's word: test": judged.apply(lambda r: f"'{r['word']}': {TEST_LABELS[r['test']]}", axis=1),
            "Paper a − b": judged["paper_diff"].map(number("+.3f")),
            "Ours a − b, interval": judged.apply(ours, axis=1),
            "Detectable": judged["detectable"].map(number(".3f")),
            "p (Holm)": judged["p_holm"].map(
                lambda v: "—" if math.isnan(v) else "< 0.001" if v < 0.001 else f"{v:.3f}"
            ),
            "Seeds (a / b)": judged["seeds"],
            "Interval from": judged["method"],
            "Verdict": judged["verdict"],
        }
    )
    out = out.set_index(["Claim", "Comparison (a − b)"])
    return out if against_paper else out.drop(columns="Paper a − b")


def split_uniform(table: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Move those of `columns` that hold one value in every row out of the table: (the table
    without them, {column: its value}). A caption then says it once, and a wide table narrows."""
    same = {c: str(table[c].iloc[0]) for c in columns if c in table and table[c].nunique() == 1}
    return table.drop(columns=list(same)), same


def cell_summary(results: list[CellResults]) -> pd.DataFrame:
    """One row per run: cell, setting, seeds, last/best test accuracy (mean ± std), time."""
    rows = []
    for r in sorted(results, key=lambda r: r.cell):
        s = r.summary
        rows.append(
            {
                "Cell": r.cell,
                "Setting": setting_label(setting_of(r)),
                "Seeds": s.n_seeds,
                "Test acc., last epoch": f"{s.test_acc_last_mean:.3f} ± {s.test_acc_last_std:.3f}",
                "Test acc., best val. epoch": f"{s.test_acc_best_mean:.3f} ± {s.test_acc_best_std:.3f}",
                "Parameters": f"{r.n_params:,}",
                "Minutes (all seeds)": f"{sum(x.seconds for x in r.seeds) / 60:.1f}",
            }
        )
    return pd.DataFrame(rows).set_index("Cell")


def config_markdown(cfg) -> str:
    """One line saying what a cell's run is: profile, cell, setting, protocol, data, device."""
    setting = setting_label((cfg.model.input, cfg.model.segmented, cfg.model.dropout))
    return (
        f"**{cfg.profile} / {cfg.cell}**: {setting}; {len(cfg.schedule.seeds)} seed(s) × {cfg.schedule.epochs} epoch(s), "
        f"batch {cfg.train.batch_size}, lr {cfg.train.lr:g}; {cfg.store.sample_rate:,} Hz clips of {cfg.store.clip_samples:,} samples; "
        f"data `{cfg.run.data_dir}` ({cfg.data.source}); device `{cfg.compute.device}`."
    )


def seed_table(result: CellResults) -> pd.DataFrame:
    """One row per seed of one cell: test accuracies, best epoch, time and throughput."""
    table = pd.DataFrame(
        {
            "seed": result.seed_ids,
            "test_acc_last": result.accuracies,
            "test_acc_best": result.best_accuracies,
            "best_epoch": [s.best_epoch for s in result.seeds],
            "seconds": [s.seconds for s in result.seeds],
            "segments_per_second": [s.segments_per_second for s in result.seeds],
        }
    ).set_index("seed")
    return table.round(3)


# --- beyond the paper: the ablations and the baseline ----------------------------------------------

# What an ablation tests, for the one line of reading under its result: by the key it changes and the
# value it sets, or by the key alone (None: any value). The same question on every base cell.
ABLATION_QUESTIONS = {
    ("spectrogram_scale", "log"): "Does a log-compressed spectrogram (log1p of the magnitude) help?",
    ("spectrogram_scale", "mel"): "Does the input most music CNNs take, log-mel bands, help?",
    ("batch_unit", None): "Does the reading of 'mini-batches of 50' (50 clips' segments vs 50 segments, "
    "n_segments times the updates per epoch) matter?",
    ("train_fraction", None): "How much does the amount of training data matter (the paper's own suspicion)?",
}
_NOT_SETTINGS = {"cell", "base"}


def ablation_question(changes: dict[str, tuple]) -> str:
    """The question of the first change (`changed_keys`) that ABLATION_QUESTIONS knows, or ''."""
    for key, (_, value) in changes.items():
        if question := ABLATION_QUESTIONS.get((key, value), ABLATION_QUESTIONS.get((key, None))):
            return question
    return ""


def changed_keys(result: CellResults, base: CellResults) -> dict[str, tuple]:
    """The config keys an ablation changes against its base cell's run: {key: (base value, ablation value)};
    a key the base's settings leave out (config.ONLY_WITH: n_mels without mel) has base value None."""
    a, b = result.config.to_dict(), base.config.to_dict()
    return {k: (b.get(k), v) for k, v in a.items() if k not in _NOT_SETTINGS and b.get(k) != v}


def changes_text(changes: dict[str, tuple]) -> str:
    """'spectrogram_scale: linear → mel, n_mels: 128': a key new to the run (base value None) by its value alone."""
    return ", ".join(f"{k}: {a}" if b is None else f"{k}: {b} → {a}" for k, (b, a) in changes.items())


def _interval_text(acc: tuple[float, float, float] | None, result: Run) -> str:
    if acc is None:
        mean, std = mean_std(accuracies(result))
        return f"{mean:.3f} ± {std:.3f} (sd)"
    return f"{acc[0]:.3f} [{acc[1]:.3f}, {acc[2]:.3f}]"


def reading(diff: float, low: float, high: float, detectable: float) -> str:
    """One line saying what a difference and its interval mean."""
    if math.isnan(low):
        return "no interval (one seed, or no spread): no conclusion"
    if low > 0:
        return f"helps: +{diff:.3f}, the whole interval above zero"
    if high < 0:
        return f"hurts: {diff:.3f}, the whole interval below zero"
    small = f"; a true effect under {detectable:.3f} could be missed" if not math.isnan(detectable) else ""
    return f"no clear effect: the interval [{low:+.3f}, {high:+.3f}] holds zero{small}"


def ablation_comparisons(results: dict[str, CellResults]) -> list[dict]:
    """Each ablation against its base cell, as numbers: ablation, base, changes ({key: (base
    value, ablation value)}), and `compare`'s diff, low, high, width, se, detectable, method (all
    NaN / empty when the base cell was not run: then `base_run` is None)."""
    rows = []
    for cell, r in sorted(results.items()):
        if not is_ablation(r):
            continue
        base = results.get(r.config.base)
        row = dict(ablation=cell, base=r.config.base, run=r, base_run=base)
        row["changes"] = changed_keys(r, base) if base else {}
        row.update(compare(r, base) if base else dict(diff=math.nan, low=math.nan, high=math.nan, width=math.nan))
        rows.append(row)
    return rows


def ablation_table(results: dict[str, CellResults]) -> pd.DataFrame:
    """Each ablation beside its base cell: what it changes from which cell, both accuracies with
    their 95 % intervals, the paired difference with its interval, the interval's width and the
    smallest detectable difference (the reading of each is `ablation_readings`)."""
    rows = []
    for c in ablation_comparisons(results):
        r, base = c["run"], c["base_run"]
        row = {"Ablation": c["ablation"], "Changes": f"{changes_text(c['changes']) or '—'} (from {c['base']})"}
        if base is not None:
            interval = "" if math.isnan(c["low"]) else f" [{c['low']:+.3f}, {c['high']:+.3f}]"
            row.update(
                {
                    "Base accuracy": _interval_text(accuracy_interval(base), base),
                    "Ablation accuracy": _interval_text(accuracy_interval(r), r),
                    f"Difference, {CONFIDENCE:.0%} interval": f"{c['diff']:+.3f}{interval}",
                    "Width": "—" if math.isnan(c["width"]) else f"{c['width']:.3f}",
                    "Detectable": "—" if math.isnan(c["detectable"]) else f"{c['detectable']:.3f}",
                }
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("Ablation").fillna("—") if rows else pd.DataFrame()


def ablation_readings(results: dict[str, CellResults]) -> list[str]:
    """One line of reading per ablation (Markdown): its question, and what its interval says."""
    lines = []
    for c in ablation_comparisons(results):
        if c["base_run"] is None:
            lines.append(f"**{c['ablation']}**: base cell {c['base']} not run: no comparison.")
            continue
        question = ablation_question(c["changes"])
        said = reading(c["diff"], c["low"], c["high"], c["detectable"])
        lines.append(f"**{c['ablation']}** (against {c['base']}): {question + ' ' if question else ''}{said}.")
    return lines


def sharper_than_effect(diff: float, low: float, high: float) -> bool:
    """Whether an interval is narrower than the effect it measures (width < |diff|): then it lies
    wholly on one side of zero with room to spare, and the effect's size is known to within itself."""
    return not math.isnan(low) and high - low < abs(diff)


def widths_markdown(rows: list[dict], n_tracks: int, seeds: str) -> str:
    """What the intervals of these comparisons achieved, in words: their widths, which are narrower
    than their effects, and whether seeds or test tracks make them wide. rows: dicts with name,
    diff, low, high and seed_share (`stats.seed_share`, NaN when unknown); those without an interval
    or with a zero-width one (no spread: no verdict either, see `claims`) are left out."""
    rows = [r for r in rows if not math.isnan(r["low"]) and r["high"] > r["low"]]  # no interval or no spread: out
    if not rows:
        return "No comparison here has an interval with any spread (one seed, no predictions kept, or no spread)."
    widths = [r["high"] - r["low"] for r in rows]
    sharp = [sharper_than_effect(r["diff"], r["low"], r["high"]) for r in rows]
    each = "; ".join(
        f"{r['name']}: width {w:.3f} against an effect of {abs(r['diff']):.3f}" + (" (narrower)" if narrower else "")
        for r, w, narrower in zip(rows, widths, sharp)
    )
    shares = [r.get("seed_share", math.nan) for r in rows]
    known = [x for x in shares if not math.isnan(x)]
    by_seeds = sum(x > 0.5 for x in known)
    sources = (
        f" In {by_seeds} of {len(known)} the seeds give more than half of the variance (from "
        f"{min(known):.0%} to {max(known):.0%} over all {len(known)}): there more seeds would narrow the interval, "
        "and more test tracks would barely do; where the tracks give most, more test tracks (more artists, "
        "where the tracks are resampled by artist) would."
        if known
        else ""
    )
    return (
        f"With {n_tracks:,} test tracks and seeds {seeds}, these {len(rows)} intervals are "
        f"{min(widths):.3f} to {max(widths):.3f} wide; {sum(sharp)} of {len(rows)} are narrower than the "
        f"effect they measure (width below |a − b|: the sign and rough size of the effect are settled).{sources} "
        f"{each}."
    )


def _signed_interval(c: dict) -> str:
    """'+0.123 [+0.050, +0.196]': a comparison's difference and its interval ('—' without one)."""
    return f"{c['diff']:+.3f} " + ("[—]" if math.isnan(c["low"]) else f"[{c['low']:+.3f}, {c['high']:+.3f}]")


def baselines_summary(baselines: dict[str, BaselineResults]) -> pd.DataFrame:
    """One row per baseline (results.load_baselines): its features, the C chosen on the validation
    split, the validation accuracy there, and the test accuracy with its interval over test tracks."""
    rows = []
    for b in baselines.values():
        r = b
        rows.append(
            {
                "Baseline": b.name,
                "Features": b.n_features,
                "C (chosen)": f"{b.tuning.chosen:g}",
                "Validation accuracy": f"{b.val_acc:.3f}",
                f"Test accuracy [{CONFIDENCE:.0%}]": _interval_text(accuracy_interval(r), r),
            }
        )
    return pd.DataFrame(rows).set_index("Baseline")


CHOSEN_MARK = "●"  # beside the validation accuracy of the C a baseline kept


def baseline_tuning_table(baselines: dict[str, BaselineResults]) -> pd.DataFrame:
    """Validation accuracy at each C of the grid (rows) for each baseline (columns); the chosen C's
    marked CHOSEN_MARK. A C that is not in a baseline's grid: '—'."""
    grid = sorted({c for b in baselines.values() for c in b.tuning.grid})
    table = {}
    for b in baselines.values():
        t = b.tuning
        acc = dict(zip(t.grid, t.val_acc))
        table[b.name] = [
            "—" if c not in acc else f"{acc[c]:.3f}" + (f" {CHOSEN_MARK}" if c == t.chosen else "") for c in grid
        ]
    return pd.DataFrame(table, index=pd.Index([f"{c:g}" for c in grid], name="C"))


def baseline_table(results: dict[str, CellResults], baselines: dict[str, BaselineResults]) -> pd.DataFrame:
    """Each table cell (rows) against each baseline (columns), paired on the same test tracks: the
    cell's test accuracy, then 'CNN − <baseline>' as '+0.123 [+0.050, +0.196]' (`compare`)."""
    paired = baselines
    rows = []
    for setting, r in sorted(index_runs(list(results.values())).items(), key=lambda kv: kv[1].cell):
        row = {"Model": f"CNN, {setting_label(setting)}", "Test accuracy": _interval_text(accuracy_interval(r), r)}
        for name, b in paired.items():
            row[f"CNN − {baselines[name].name}"] = _signed_interval(compare(r, b))
        rows.append(row)
    return pd.DataFrame(rows).set_index("Model")


def published_baselines_table() -> pd.DataFrame:
    """The FMA authors' published baselines (fma.PUBLISHED_BASELINES): rows feature set, columns
    classifier, '57.83 % (58)': the notebook's figure, the paper's rounded one in brackets."""
    rows = []
    for (block, n), scores in PUBLISHED_BASELINES.items():
        row = {"features.csv columns": f"{'MFCC' if block == 'mfcc' else 'all'} ({n})"}
        for clf, (notebook, paper) in scores.items():
            row[clf] = f"{notebook:.2f} % ({paper})"
        rows.append(row)
    return pd.DataFrame(rows).set_index("features.csv columns")

"""The Results page (book/pages/results.md): the runs behind the numbers, the paper's Tables 1-3 beside
ours, the computed baselines, each of the paper's claims tested as the paper words it, how wide the
intervals came out and whether they cover, and every cell's curves, confusion and per-genre accuracy
(those figures: fmareport.report.figures).

Every table is built from the runs (compare: settings, intervals, the claims' verdicts) and the paper
as data (paper); the page's sentences are in its .md, the values they name glued here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from ...baseline import C_GRID
from ...data.fma import FMA_SMALL_SPLITS, PUBLISHED_BASELINES, PUBLISHED_TASK
from ...results import BaselineResults, CellResults, load_baselines
from .. import compare
from ..compare import accuracy_interval, setting_label, setting_of
from ..figures import forest, show
from ..page import Page, glue, interval_text, p_text, table
from ..paper import FAMILY_ALPHA, NO_GAIN_MARGIN, PAPER, UNEXPLAINED, Test, paper_value
from ..runs import CHANCE_LOSS, DIVERGED_FACTOR, diverged
from ..stats import CONFIDENCE, mean_std

CAPTIONS = {
    "Table 1": "Test accuracy for the three inputs, whole clips and segmented, no dropout.",
    "Table 2": "Test accuracy, segmented, with 0.2 dropout.",
    "Table 3": "Test accuracy, segmented, without and with 0.2 dropout (the paper's replicate; our runs are "
    "those of Tables 1 and 2; the paper's unexplained 0.00 gets no difference).",
}
PAIRED_MARK = "†"  # beside a difference whose seeds are paired (the same input and seeds: the same initial weights)
CHOSEN_MARK = "●"  # beside the validation accuracy of the C a baseline kept


def glue_rules() -> None:
    """The numbers of the rule that flags a diverged run (runs.diverged)."""
    glue(diverged_factor=DIVERGED_FACTOR, chance_loss=CHANCE_LOSS)


# --- Tables 1 to 3 ---------------------------------------------------------------------------------


def paper_frame(name: str, runs: dict) -> pd.DataFrame:
    """One of the paper's tables with ours beside it, one row per cell, numbers only: setting, cell
    (None when not run), diverged, paper, mean, std, n_seeds, low, high (the 95 % interval over test
    tracks and seeds), diff (mean - paper; NaN against the paper's unexplained 0.00 or without a run)."""
    rows = []
    for setting, paper in PAPER[name].items():
        run = runs.get(setting)
        row = dict(setting=setting_label(setting), cell=None, diverged=False, paper=paper, mean=math.nan,
                   std=math.nan, n_seeds=0, low=math.nan, high=math.nan)  # fmt: skip
        if run is not None:
            (mean, std), i = mean_std(run.accuracies), accuracy_interval(run)
            row.update(cell=run.cell, diverged=bool(diverged(run)), mean=mean, std=std, n_seeds=len(run.seeds),
                       low=i.low, high=i.high)  # fmt: skip
        row["diff"] = math.nan if (name, setting) in UNEXPLAINED else row["mean"] - paper
        rows.append(row)
    return pd.DataFrame(rows)


def paper_table(page: Page, name: str, table_id: str):
    """One of the paper's Tables 1 to 3 with ours beside it: 'Paper', 'Ours (mean ± std)', 'Seeds', the
    interval, and on FMA profiles 'Ours − paper' (a synthetic task's accuracies say nothing of the paper's)."""
    frame = paper_frame(name, page.runs)

    def ours(r) -> str:
        if r.n_seeds == 0:
            return "not run"
        return f"{r['mean']:.3f} ± {r['std']:.3f}" + (" (diverged: see Runs)" if r.diverged else "")

    shown = pd.DataFrame(
        {
            "Paper": frame["paper"].map("{:.3f}".format),
            "Ours (mean ± std)": frame.apply(ours, axis=1),
            "Seeds": frame["n_seeds"].astype(str),
            f"{CONFIDENCE:.0%} interval": [
                "—" if math.isnan(r.low) else f"[{r.low:.3f}, {r.high:.3f}]" for r in frame.itertuples()
            ],
            "Ours − paper": frame["diff"].map(lambda v: "—" if math.isnan(v) else f"{v:+.3f}"),
        }
    ).set_axis(pd.Index(frame["setting"], name="Setting"))
    if page.synthetic:
        shown = shown.drop(columns="Ours − paper")
    return table(shown, table_id, f"{name} (profile {page.profile}): {CAPTIONS[name]}")


# --- the baselines ---------------------------------------------------------------------------------


def baselines(page: Page, results_dir: str | Path) -> dict[str, BaselineResults]:
    """The profile's baselines (results.load_baselines); glues the C grid they are tuned over."""
    glue(c_grid=", ".join(f"{c:g}" for c in C_GRID))
    return load_baselines(results_dir, page.profile)


def baseline_summary(page: Page, found: dict[str, BaselineResults]):
    """The baselines' features, chosen C, validation and test accuracy (id baselines); a line when none ran."""
    if not found:
        return Markdown(f"No baseline was run for this profile (`fmareport baseline --profile {page.profile}`).")
    summary = pd.DataFrame(
        [
            {
                "Baseline": b.name,
                "Features": b.n_features,
                "C (chosen)": f"{b.tuning.chosen:g}",
                "Validation accuracy": f"{b.val_acc:.3f}",
                f"Test accuracy [{CONFIDENCE:.0%}]": interval_text(accuracy_interval(b)),
            }
            for b in found.values()
        ]
    ).set_index("Baseline")
    caption = (
        f"The baselines of profile {page.profile}: the number of features, the C chosen on the validation split "
        f"and the validation accuracy there, and the test accuracy with its {CONFIDENCE:.0%} interval over the "
        "test tracks (a baseline has no seeds)."
    )
    return table(summary, "baselines", caption)


def baseline_tuning(found: dict[str, BaselineResults]):
    """Validation accuracy at each C of the grid (rows) for each baseline (columns), the chosen C's marked
    CHOSEN_MARK; '—' where a C is not in a baseline's grid (id baseline-tuning). None when none ran."""
    if not found:
        return None
    grid = sorted({c for b in found.values() for c in b.tuning.grid})
    tuning = {}
    for b in found.values():
        acc = dict(zip(b.tuning.grid, b.tuning.val_acc))
        tuning[b.name] = [
            "—" if c not in acc else f"{acc[c]:.3f}" + (f" {CHOSEN_MARK}" if c == b.tuning.chosen else "") for c in grid
        ]
    frame = pd.DataFrame(tuning, index=pd.Index([f"{c:g}" for c in grid], name="C"))
    caption = f"Validation accuracy at each C (one fit on the training split per C); {CHOSEN_MARK} marks the C each baseline kept."
    return table(frame, "baseline-tuning", caption)


def baseline_pairs(page: Page, found: dict[str, BaselineResults]):
    """Each table cell (rows) against each baseline (columns), paired on the same test tracks: the cell's
    test accuracy, then 'CNN − <baseline>' with its interval (id baseline). None when none ran."""
    if not found:
        return None
    rows = []
    for setting, r in sorted(page.runs.items(), key=lambda kv: kv[1].cell):
        row = {"Model": f"CNN, {setting_label(setting)}", "Test accuracy": interval_text(accuracy_interval(r))}
        for b in found.values():
            row[f"CNN − {b.name}"] = interval_text(compare.difference(r, b)[0], signed=True)
        rows.append(row)
    caption = (
        f"Each table cell's test accuracy, and the cell minus each baseline, paired on the same test tracks, with "
        f"its {CONFIDENCE:.0%} interval (profile {page.profile}): {len(rows) * len(found)} intervals, each at "
        f"{CONFIDENCE:.0%} on its own, not adjusted for their number: they describe, they do not test."
    )
    return table(pd.DataFrame(rows).set_index("Model"), "baseline", caption)


def published_baselines():
    """The FMA authors' published baselines (fma.PUBLISHED_BASELINES, id fma-published): rows the
    features.csv columns, columns the classifier, '57.83 % (58)': the notebook's figure, the paper's
    rounded one in brackets; glues the task they ran on."""
    t = PUBLISHED_TASK
    glue(published_subset=t["subset"], published_genres=t["genres"], published_training=t["training"],
         fma_small_training=FMA_SMALL_SPLITS["training"])  # fmt: skip
    rows = []
    for (block, n), scores in PUBLISHED_BASELINES.items():
        row = {"features.csv columns": f"{'MFCC' if block == 'mfcc' else 'all'} ({n})"}
        row |= {clf: f"{notebook:.2f} % ({paper})" for clf, (notebook, paper) in scores.items()}
        rows.append(row)
    caption = (
        f"The FMA authors' test accuracy on fma_{t['subset']} ({t['genres']} genres; {t['training']:,} / "
        f"{t['validation']:,} / {t['test']:,} tracks), not on this report's task."
    )
    return table(pd.DataFrame(rows).set_index("features.csv columns"), "fma-published", caption)


# --- the paper's claims ----------------------------------------------------------------------------


def claims(page: Page) -> pd.DataFrame:
    """The claims judged (compare.claims) on the page's runs; glues the family's size and level."""
    judged = compare.claims(page.runs)
    glue(family_size=compare.family_size(judged), family_alpha=FAMILY_ALPHA)
    return judged


def claim_verdicts(page: Page, judged: pd.DataFrame):
    """The verdict on each of the paper's claims, where the paper says it (id claims-summary)."""
    summary = compare.claim_summary(judged).set_index("claim")
    summary.index.name = "Claim"
    summary.columns = ["Where the paper says it", f"Verdict {page.task}"]
    caption = (
        f"The paper's claims tested {page.task} (profile {page.profile}), after Holm's adjustment over the family "
        f"of {compare.family_size(judged)} tests."
    )
    return table(summary, "claims-summary", caption)


def claim_tests(page: Page, judged: pd.DataFrame):
    """Every test of the family (id claims): a column that holds one value in every row is said once, in
    the caption; on a synthetic profile the paper's own differences are left out."""

    def ours(r) -> str:
        if math.isnan(r.diff):
            return "—"
        return f"{r.diff:+.3f}{PAIRED_MARK if r.paired else ''} [{r.low:+.3f}, {r.high:+.3f}]"

    def number(v: float, fmt: str) -> str:
        return "—" if math.isnan(v) else format(v, fmt)

    shown = pd.DataFrame(
        {
            "Claim": judged["claim"],
            "Comparison (a − b)": judged["comparison"],
            "Paper's word: test": [f"'{r.word}': {Test(r.test, r.word).label}" for r in judged.itertuples()],
            "Paper a − b": [number(v, "+.3f") for v in judged["paper_diff"]],
            "Ours a − b, interval": [ours(r) for r in judged.itertuples()],
            "Detectable": [number(v, ".3f") for v in judged["detectable"]],
            "p (Holm)": [p_text(v) for v in judged["p_holm"]],
            "Seeds (a / b)": judged["seeds"],
            "Interval from": judged["method"],
            "Verdict": judged["verdict"],
        }
    ).set_index(["Claim", "Comparison (a − b)"])
    if page.synthetic:  # no synthetic number beside one of the paper's
        shown = shown.drop(columns="Paper a − b")
    same = {c: shown[c].iloc[0] for c in ("Seeds (a / b)", "Interval from") if shown[c].nunique() == 1}
    caption = (
        f"Each test of the family ({compare.family_size(judged)} tests, Holm-adjusted at {FAMILY_ALPHA:.0%}): the "
        "paper's word, the test and its margin, our difference with the interval the test reads, the smallest "
        f"detectable difference or margin, the adjusted p and the verdict {page.task} (profile {page.profile})."
        + "".join(f" {k}: {v}." for k, v in same.items())
        + f" {PAIRED_MARK}: seeds paired (the same input and seeds, so the same initial weights); other rows' seeds "
        "are not."
    )
    return table(shown.drop(columns=list(same)), "claims", caption)


def claims_forest(judged: pd.DataFrame) -> None:
    """Show the claims' tests as a forest plot (figures.forest): each difference with the interval its
    test reads, the ±margin band, the verdict after Holm as colour, marker and label; a line when no
    test has an interval."""
    rows = [
        dict(label=f"{r.comparison}: '{r.word}' ({Test(r.test, r.word).label}), {r.verdict}", estimate=r.diff,
             low=r.low, high=r.high, verdict=r.verdict)
        for r in judged.itertuples()
        if not math.isnan(r.low)
    ]  # fmt: skip
    if not rows:
        display(Markdown("No claim's comparison has both of its cells run: nothing to draw."))
        return
    show(forest(rows, margin=NO_GAIN_MARGIN))


def widths(rows: list[dict], table_id: str, caption: str):
    """How wide these comparisons' intervals came out (rows: dicts with name, diff, low, high and
    seed_share, `stats.seed_share`): each interval's width beside |effect|, whether it is narrower
    (then it settles the effect's sign and rough size), and the seeds' share of its variance (id
    `table_id`). A line when none has an interval with any spread."""
    rows = [r for r in rows if r["high"] > r["low"]]  # a zero-width interval (no spread): no verdict either
    if not rows:
        return Markdown("No comparison here has an interval with any spread (one seed, or no spread).")
    frame = pd.DataFrame(
        {
            "Comparison": [r["name"] for r in rows],
            "Width": [f"{r['high'] - r['low']:.3f}" for r in rows],
            "|a − b|": [f"{abs(r['diff']):.3f}" for r in rows],
            "Narrower than the effect": ["yes" if r["high"] - r["low"] < abs(r["diff"]) else "no" for r in rows],
            "Seeds' share of the variance": [
                "—" if math.isnan(r["seed_share"]) else f"{r['seed_share']:.0%}" for r in rows
            ],
        }
    ).set_index("Comparison")
    narrower = (frame["Narrower than the effect"] == "yes").sum()
    by_seeds = sum(r["seed_share"] > 0.5 for r in rows)
    caption += f": {narrower} of {len(rows)} narrower than the effect they measure; in {by_seeds} the seeds give more than half of the variance."
    return table(frame, table_id, caption)


def claim_widths(page: Page, judged: pd.DataFrame):
    """`widths` of the claims' 95 % intervals, each comparison once (id claim-widths)."""
    first = judged.drop_duplicates("comparison").dropna(subset=["low95"])
    rows = [
        dict(name=r.comparison, diff=r.diff, low=r.low95, high=r.high95, seed_share=r.seed_share)
        for r in first.itertuples()
    ]
    caption = f"How wide the claims' {CONFIDENCE:.0%} intervals are, over {page.n_test:,} test tracks and seeds {', '.join(map(str, page.seeds))}"
    return widths(rows, "claim-widths", caption)


def glue_error_scale(page: Page) -> None:
    """For scale: the binomial error of one accuracy and of a difference on our test tracks and on the
    paper's 800, beside the paper's 2D − 1D+2D differences (Tables 1 and 2); and the range of the
    runs' SDs over seeds (`seed_sd_range`), beside the coverage simulation's."""
    sds = [r.summary.test_acc_last_std for r in page.results.values() if len(r.seeds) > 1]
    glue(seed_sd_range=f"{min(sds):.3f} to {max(sds):.3f}" if sds else "one seed each, no spread to show")
    accs = [a for r in page.results.values() for a in r.accuracies]
    p = sum(accs) / len(accs)
    se = math.sqrt(p * (1 - p) / page.n_test)
    p_paper, n_paper = PAPER["Table 1"][("spectrogram", True, 0.0)], FMA_SMALL_SPLITS["test"]
    gaps = [
        paper_value(("spectrogram", s, d)) - paper_value(("both", s, d))
        for s, d in ((False, 0.0), (True, 0.0), (True, 0.2))
    ]
    glue(scale_n_test=page.n_test, scale_accuracy=p, scale_se=se, scale_se_difference=se * math.sqrt(2),
         scale_paper_n_test=n_paper, scale_paper_accuracy=p_paper,
         scale_paper_se_difference=math.sqrt(2 * p_paper * (1 - p_paper) / n_paper),
         scale_paper_gaps=", ".join(f"{g:+.3f}" for g in gaps))  # fmt: skip


# --- do the intervals hold the truth? --------------------------------------------------------------


def coverage(reps: int = 1000):
    """The simulated coverage of the intervals (coverage.cached_table, id coverage); glues its lowest
    values and the demo design's widths."""
    from ..coverage import cached_table

    cov = cached_table(reps=reps)
    worst, worst_tracks = cov.loc[cov["coverage"].idxmin()], cov.loc[cov["coverage_by_track"].idxmin()]
    demo = cov[(cov["design"] == "demo") & (cov["kind"] == "cell")]
    glue(coverage_reps=reps, coverage_lowest=worst["coverage"], coverage_lowest_kind=worst["kind"],
         coverage_lowest_design=worst["design"], coverage_lowest_sd=worst["seed_sd"],
         coverage_tracks_lowest=worst_tracks["coverage_by_track"], coverage_tracks_kind=worst_tracks["kind"],
         coverage_tracks_design=worst_tracks["design"], coverage_tracks_sd=worst_tracks["seed_sd"],
         coverage_90_lowest=cov["coverage_90"].min(), coverage_demo_seeds=int(demo["seeds"].iloc[0]),
         coverage_demo_narrowest=demo["mean_width"].min(), coverage_demo_widest=demo["mean_width"].max(),
         coverage_sd_highest=cov["seed_sd"].max())  # fmt: skip
    shown = pd.DataFrame(
        {
            "Design": cov["design"],
            "Test tracks (artists)": [f"{t} ({a})" for t, a in zip(cov["tracks"], cov["artists"])],
            "Seeds": cov["seeds"],
            "Seed SD": cov["seed_sd"],
            "Interval of": cov["kind"],
            "Coverage, over artists": cov["coverage"].map("{:.3f}".format),
            "Mean width": cov["mean_width"].map("{:.3f}".format),
            "At 90 %, over artists": cov["coverage_90"].map("{:.3f}".format),
            "Coverage, over tracks": cov["coverage_by_track"].map("{:.3f}".format),
        }
    ).set_index("Design")
    caption = (
        f"Coverage of the 95 % intervals in {reps} simulated runs per row (fmareport.report.coverage, cached under "
        "the digest of its code and inputs): resampling artists, with their mean width and their coverage at 90 % "
        "(the level TOST reads), and, on the same runs, resampling single tracks."
    )
    return table(shown, "coverage", caption)


# --- every cell ------------------------------------------------------------------------------------


def cell_frame(results: list[CellResults]) -> pd.DataFrame:
    """One row per run: cell, setting, seeds, last/best test accuracy (mean ± std), size and time."""
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


def cell_summary(page: Page):
    """Every run of the profile (`cell_frame`, id cell-summary)."""
    caption = (
        f"Every run of profile {page.profile}: test accuracy after the last epoch and at the epoch with the best "
        "validation accuracy (mean ± std over seeds), size and training time."
    )
    return table(cell_frame(list(page.results.values())), "cell-summary", caption)

"""Runs as the paper's settings, and the comparisons every page reads: a cell's accuracy with its
interval, the paired difference of two runs, each of the paper's claims judged, each ablation
against its base cell.

A run is found by its setting (input, segmented, dropout) read from its config, not by its file
name, so a table cell cannot pick the wrong run. A run is a cell's results or a baseline (a one-seed
run with no config): both derive their predictions' scores the same way (results.Scored). The
intervals are over test tracks (their artists, where recorded) and seeds (report.stats,
docs/statistics.md).

    runs = index_runs(results)   # {(input, segmented, dropout): result}
    claims(runs)                 # each (comparison, test): effect, interval, Holm-adjusted p, verdict
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from ..errors import BookError
from ..inputs import INPUTS
from ..results import BaselineResults, CellResults
from .paper import CLAIMS, FAMILY_ALPHA, NO_GAIN_MARGIN, POWER, Setting, Test, paper_value
from .stats import Interval, detectable, paired_difference, seed_share
from .stats import accuracy_interval as _accuracy_interval

Run = CellResults | BaselineResults


def setting_of(result: CellResults) -> Setting:
    """(input, segmented, dropout) of one results file, from its config."""
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


def artists_of(result: Run) -> np.ndarray | None:
    """(N,) int64: the artist of each test track, in the test tracks' order; None for results
    written before artists were recorded."""
    artists = result.test.artist_ids
    return None if artists is None else np.asarray(artists, dtype=np.int64)


def accuracy_interval(result: Run) -> Interval:
    """A run's mean test accuracy with its 95 % interval over test tracks (their artists, where the
    result records them) and seeds."""
    return _accuracy_interval(result.correct, clusters=artists_of(result))


@functools.lru_cache(maxsize=64)
def _parameter_shapes(model_json: str, sample_rate: int) -> tuple:
    """((name, shape), ...) of the network a run builds (model.Net.of), traced on torch's meta device."""
    import torch

    from ..config import ModelSettings
    from ..model import Net

    with torch.device("meta"):
        net = Net(ModelSettings.model_validate_json(model_json), sample_rate=sample_rate)
    return tuple((name, tuple(p.shape)) for name, p in net.named_parameters())


def seeds_shared(a: Run, b: Run) -> bool:
    """Whether seed s of `a` and of `b` start from the same initial weights: the same seeds, the same
    input kind, and parameters of the same names and shapes. A run seeds, then builds its network
    (train.start_seed), so the same layers of the same shapes draw the same numbers: segmenting,
    dropout and log1p change no weight; log-mel's first layer has n_mels rows, and its weights and
    every layer's after it are other draws."""
    if a.config is None or b.config is None or list(a.seed_ids) != list(b.seed_ids):
        return False
    shapes = [_parameter_shapes(r.config.model.model_dump_json(), r.config.store.sample_rate) for r in (a, b)]
    return a.config.model.input == b.config.model.input and shapes[0] == shapes[1]


def same_tracks(a: Run, b: Run) -> None:
    """BookError unless a and b were tested on the same tracks (the same data): every paired comparison's
    precondition."""
    if a.test.track_ids != b.test.track_ids:
        raise BookError(f"cells {a.cell} and {b.cell} were tested on different tracks: no paired comparison")


def difference(a: Run, b: Run) -> tuple[Interval, str, bool]:
    """a - b in test accuracy with its 95 % interval (`stats.paired_difference`: paired on the same
    test tracks, tracks and seeds as variance components at their own t quantiles; the tracks
    resampled by artist where a side records their artists, both sides the same), the method in
    words, and whether the seeds are paired (`seeds_shared`: the same initial weights)."""
    same_tracks(a, b)
    artists_a, artists_b = artists_of(a), artists_of(b)
    if artists_a is not None and artists_b is not None and not np.array_equal(artists_a, artists_b):
        raise ValueError(f"cells {a.cell} and {b.cell} give their test tracks different artists: not the same data")
    artists = artists_a if artists_a is not None else artists_b  # the same tracks: one side's are both's
    ca, cb = a.correct, b.correct  # (S, N) each
    same_seeds = seeds_shared(a, b)
    one_seed = "; 1 seed: no seed spread" if min(len(ca), len(cb)) < 2 else ""
    paired_tracks = f"{ca.shape[1]} paired tracks"
    unit = paired_tracks if artists is None else f"{len(np.unique(artists))} artists ({paired_tracks})"
    method = f"t over {unit} and the seeds{one_seed}"
    return paired_difference(ca, cb, same_seeds=same_seeds, clusters=artists), method, same_seeds


def untested(a: Run, b: Run, i: Interval) -> str | None:
    """Why a comparison of a and b gets no test (its interval `i`): "1 seed" (a side has no seed spread to
    judge by) or "no spread"; None when it is tested."""
    if min(len(a.seed_ids), len(b.seed_ids)) < 2:
        return "1 seed"
    return "no spread" if i.se == 0 else None


def compare(a: Run, b: Run) -> dict:
    """a - b in test accuracy as numbers: diff, low, high (95 %), width, se, seed_share, detectable
    (the smallest difference found with 80 % power at 5 %, two-sided), seeds, method, paired, and the
    interval itself (`difference`)."""
    i, method, paired = difference(a, b)
    return dict(
        interval=i,
        diff=i.estimate,
        low=i.low,
        high=i.high,
        width=i.high - i.low,
        se=i.se,
        seed_share=seed_share(i),
        detectable=detectable(i, POWER),
        seeds=f"{len(a.seed_ids)} / {len(b.seed_ids)}",
        method=method,
        paired=paired,
    )


# --- the paper's claims ----------------------------------------------------------------------------


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


def _claim_row(
    claim: str, a: Setting, b: Setting, test: Test, runs: dict[Setting, CellResults]
) -> tuple[dict, Interval | None]:
    """One (comparison, test) row of `claims`, before Holm, and the interval its verdict reads (None:
    inconclusive already, the row says why)."""
    row = dict(
        claim=claim,
        comparison=f"{setting_label(a)} − {setting_label(b)}",
        word=test.word,
        test=test.kind,
        margin=test.margin,
        confidence=test.confidence,
        paper_diff=paper_value(a) - paper_value(b),
        **dict.fromkeys(
            ("diff", "low", "high", "low95", "high95", "se", "seed_share", "detectable", "p", "p_holm"), math.nan
        ),
        seeds="",
        method="",
        paired=False,
        verdict="",
    )
    if a not in runs or b not in runs:
        return row | {"verdict": f"inconclusive (not run: {setting_label(a if a not in runs else b)})"}, None
    c = compare(runs[a], runs[b])
    i, shown = c["interval"], c["interval"].at(test.confidence)
    row.update({k: c[k] for k in ("diff", "se", "seed_share", "seeds", "method", "paired")})
    row.update(low=shown.low, high=shown.high, low95=i.low, high95=i.high, detectable=test.detectable(shown))
    if why := untested(runs[a], runs[b], i):
        return row | {"verdict": f"inconclusive ({why})"}, None
    return row | {"p": min(test.p_values(i))}, i


def claims(runs: dict[Setting, CellResults]) -> pd.DataFrame:
    """Each claim's tests on each of its comparisons, one row per (comparison, test); the family of
    every test that has an interval is Holm-adjusted (`holm`).

    Columns: claim, comparison, word (the paper's), test (its kind), margin, confidence (of the interval
    the test reads), paper_diff, diff, low, high (that interval), low95, high95 (the 95 % one), se, seed_share (`stats.seed_share`), detectable (`Test.detectable`),
    seeds ("na / nb"), method, paired, p (the smaller of the test's two p-values), p_holm, verdict.
    """
    rows, judged = [], []
    for claim in CLAIMS:
        for a, b in claim.comparisons:
            for test in claim.tests:
                row, interval = _claim_row(claim.name, a, b, test, runs)
                if interval is not None:  # a verdict from its interval and its Holm-adjusted p, below
                    judged.append((len(rows), test, interval))
                rows.append(row)
    for (k, test, i), p_holm in zip(judged, holm([rows[k]["p"] for k, _, _ in judged])):
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


# --- the ablations ---------------------------------------------------------------------------------

_NOT_SETTINGS = {"cell", "base"}
NO_DIFFERENCE = Test("superiority", "changes")  # an ablation's test: two-sided, of no difference, at 5 %


def changed_keys(result: CellResults, base: CellResults) -> dict[str, tuple]:
    """The config keys an ablation changes against its base cell's run: {key: (base value, ablation value)};
    a key the base's settings leave out (config.ONLY_WITH: n_mels without mel) has base value None."""
    a, b = result.config.to_dict(), base.config.to_dict()
    return {k: (b.get(k), v) for k, v in a.items() if k not in _NOT_SETTINGS and b.get(k) != v}


def ablation_comparisons(results: dict[str, CellResults]) -> list[dict]:
    """Each ablation against its base cell, as numbers: ablation, base, run, base_run (None when the
    base cell was not run), changes ({key: (base value, ablation value)}), `compare`'s fields, and the
    test of no difference: p, p_holm (Holm over the ablations that have one: two seeds or more a side
    and some spread; NaN for the others) and effect: "helps" or "hurts" where p_holm < FAMILY_ALPHA,
    "no clear effect" where not, or why there is no test."""
    rows, tested = [], []
    for cell, r in sorted(results.items()):
        if not is_ablation(r):
            continue
        base = results.get(r.config.base)
        row = dict(ablation=cell, base=r.config.base, run=r, base_run=base, changes={}, p=math.nan, p_holm=math.nan)
        if base is None:
            row["effect"] = f"base cell {row['base']} not run: no comparison"
        else:
            row.update(changes=changed_keys(r, base), **compare(r, base))
            if why := untested(r, base, row["interval"]):
                row["effect"] = f"no test ({why})"
            else:
                row["p"] = min(NO_DIFFERENCE.p_values(row["interval"]))
                tested.append(row)
        rows.append(row)
    for row, p_holm in zip(tested, holm([row["p"] for row in tested])):
        row["p_holm"] = p_holm
        row["effect"] = "no clear effect" if p_holm >= FAMILY_ALPHA else "helps" if row["diff"] > 0 else "hurts"
    return rows

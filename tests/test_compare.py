"""The comparisons behind the book's tables and claims (fmareport.report.compare, .paper, and the pages
that show them).

Inputs are small results validated into the schema (tests/fakes.py), each number following from
its test predictions; the book test (test_book.py) checks the same tables on real smoke results.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from fakes import cell_result, of_config
from scipy import stats
from test_results import DATA, baseline

from fmareport.config import Config
from fmareport.report import compare, paper
from fmareport.report import stats as stats_
from fmareport.report.page import Page
from fmareport.report.pages import beyond
from fmareport.report.pages import results as results_page
from fmareport.results import BaselineResults


def page_of(runs: dict, source: str = "fma") -> Page:
    """A Page over index_runs' `runs` (every one current), of FMA data or synthetic ("synth")."""
    return Page("p", {r.cell: r for r in runs.values()}, runs, Config(profile="p", data_source=source), [])


def shown(html) -> dict[str, list[str]]:
    """A page table's rows: {the row's headers joined by ' | ': its cells' text}, and its header under ''."""
    from bs4 import BeautifulSoup

    table = BeautifulSoup(html.data, "html.parser").table
    rows = {"": [th.get_text() for th in table.thead("th")]}
    for tr in table.tbody("tr"):
        rows[" | ".join(th.get_text() for th in tr("th"))] = [td.get_text() for td in tr("td")]
    return rows


def result(kind, segmented, dropout, accs, profile="p", cell=None, **changes):
    """A result with the given last-epoch test accuracies per seed (3 decimals), seed s right on
    the first of 1000 test tracks."""
    return cell_result(kind, segmented, dropout, accs=accs, profile=profile, cell=cell, **changes)


def predicted(kind, segmented, dropout, correct, cell=None, **changes):
    """A result whose seed s is right on test track n iff correct[s][n]."""
    return cell_result(kind, segmented, dropout, correct, cell=cell, **changes)


def test_paper_values_are_the_papers_tables():
    t1, t2, t3 = (paper.PAPER[f"Table {i}"] for i in (1, 2, 3))
    assert [t1[(k, False, 0.0)] for k in ("raw", "spectrogram", "both")] == [0.264, 0.395, 0.376]
    assert [t1[(k, True, 0.0)] for k in ("raw", "spectrogram", "both")] == [0.314, 0.429, 0.428]
    assert [t2[(k, True, 0.2)] for k in ("spectrogram", "both")] == [0.378, 0.369]
    assert t3 == {
        ("spectrogram", True, 0.0): 0.469,
        ("both", True, 0.0): 0.0,
        ("spectrogram", True, 0.2): 0.423,
        ("both", True, 0.2): 0.0,
    }


def test_index_runs_refuses_mixed_profiles_and_duplicate_settings():
    a = result("raw", False, 0.0, [0.3], profile="demo")
    with pytest.raises(ValueError, match="several profiles"):
        compare.index_runs([a, result("raw", True, 0.0, [0.3], profile="smoke")])
    with pytest.raises(ValueError, match="same setting"):
        compare.index_runs([a, result("raw", False, 0.0, [0.3], profile="demo", cell="other")])


def test_paper_table_mean_std_diff_and_missing_cells():
    runs = compare.index_runs([result("spectrogram", True, 0.0, [0.40, 0.44, 0.48])])
    t3 = results_page.paper_frame("Table 3", runs).set_index("setting")
    row = t3.loc["2D input, segmented"]
    assert row["paper"] == 0.469 and row["n_seeds"] == 3
    assert row["mean"] == pytest.approx(0.44)
    assert row["std"] == pytest.approx(0.04)  # sample std, ddof=1
    assert row["diff"] == pytest.approx(0.44 - 0.469)
    missing = t3.loc["1D+2D input, segmented, dropout 0.2"]
    assert missing["n_seeds"] == 0 and math.isnan(missing["mean"])

    rows = shown(results_page.paper_table(page_of(runs), "Table 3", "table-3"))
    low, high = t3.loc["2D input, segmented", ["low", "high"]]
    assert rows[""] == ["Setting", "Paper", "Ours (mean ± std)", "Seeds", "95% interval", "Ours − paper"]
    assert rows["2D input, segmented"] == ["0.469", "0.440 ± 0.040", "3", f"[{low:.3f}, {high:.3f}]", "-0.029"]
    assert rows["1D+2D input, segmented, dropout 0.2"][1] == "not run"


def test_one_seed_has_zero_std():
    runs = compare.index_runs([result("raw", False, 0.0, [0.3])])
    row = results_page.paper_frame("Table 1", runs).set_index("setting").loc["1D input, not segmented"]
    assert (row["mean"], row["std"], row["n_seeds"]) == (0.3, 0.0, 1)


def interval(estimate, se):
    """A nearly normal interval: one variance component with 10^6 degrees of freedom."""
    return stats_.t_interval(estimate, [(se**2, 1e6)])


def test_an_interval_gives_its_p_values_and_other_levels():
    """The p-value of a null at the interval's bound is 2.5 % one-sided (the interval inverts the
    test), and the interval at another level is the one built at that level."""
    rng = np.random.default_rng(0)
    i = stats_.accuracy_interval(rng.random((3, 640)) < 0.6)
    assert i.p_value(i.low, "greater") == pytest.approx(0.025) and i.p_value(i.high, "less") == pytest.approx(0.025)
    assert i.p_value(i.estimate, "greater") == 0.5
    ninety = i.at(0.90)
    assert i.low < ninety.low < ninety.high < i.high and i.p_value(ninety.low, "greater") == pytest.approx(0.05)
    assert stats_.t_interval(i.estimate, list(i.components), 0.90, stats_.ACCURACY_BOUNDS) == ninety
    normal = interval(0.1, 0.02)
    assert normal.p_value(0.0, "greater") == pytest.approx(stats.norm.sf(5.0), rel=1e-3)
    with pytest.raises(ValueError, match="'greater' or 'less'"):
        i.p_value(0.0, "two-sided")


def test_an_interval_is_cut_to_the_values_its_quantity_can_take():
    """A near-perfect cell on few tracks: its t-interval would pass 1, and is cut at 1 at every level,
    the estimate, the lower end, the se and the p-values as they were. A difference is cut at -1 and 1."""
    correct = np.ones((2, 6), dtype=bool)
    correct[:, 0] = False  # (S, N) = (2, 6): 5 of 6 right on either seed
    i = stats_.accuracy_interval(correct)
    uncut = stats_.t_interval(i.estimate, list(i.components))
    assert uncut.high > 1 and i.high == 1.0 and (i.estimate, i.low, i.se) == (uncut.estimate, uncut.low, uncut.se)
    assert i.half_width == pytest.approx((uncut.high - uncut.low) / 2) and stats_.detectable(i) == stats_.detectable(
        uncut
    )
    assert i.at(0.90).high == 1.0 and i.at(0.90).low == uncut.at(0.90).low
    assert i.p_value(0.5, "greater") == uncut.p_value(0.5, "greater")
    d = stats_.paired_difference(correct, ~correct)  # a - b: 1 on five tracks, -1 on one
    uncut = stats_.t_interval(d.estimate, list(d.components))
    assert uncut.high > 1 and d.high == 1.0 and d.low == uncut.low > -1
    assert stats_.paired_difference(~correct, correct).low == -1.0


@pytest.mark.parametrize(
    "test, estimate, se, expected",
    [
        (paper.Test("superiority", "w"), 0.05, 0.01, "holds"),
        (paper.Test("superiority", "w"), -0.05, 0.01, "does not hold: a loss"),
        (paper.Test("superiority", "w"), 0.01, 0.01, "inconclusive"),
        (paper.Test("superiority", "w", sign=-1), -0.05, 0.01, "holds"),
        (paper.Test("superiority", "w", sign=-1), 0.05, 0.01, "does not hold: a gain"),
        (paper.Test("non-superiority", "w"), -0.03, 0.005, "holds"),
        (paper.Test("non-superiority", "w"), 0.005, 0.004, "holds"),  # a gain under the margin is no advantage
        (paper.Test("non-superiority", "w"), 0.06, 0.01, "does not hold: a gain of +0.02 or more"),
        (paper.Test("non-superiority", "w"), 0.01, 0.01, "inconclusive"),
        (paper.Test("equivalence", "w"), 0.0, 0.005, "holds"),  # 90 %: +-0.008, inside +-0.02
        (paper.Test("equivalence", "w"), -0.05, 0.01, "does not hold: a loss beyond the ±0.02 margin"),
        (paper.Test("equivalence", "w"), -0.015, 0.01, "inconclusive"),
        (paper.Test("equivalence", "w"), 0.0, 0.015, "inconclusive"),  # 90 %: +-0.025: too wide to say
    ],
)
def test_verdict_rules(test, estimate, se, expected):
    i = interval(estimate, se)
    p = min(test.p_values(i))
    assert compare.verdict(test, i, p) == expected


def test_a_significant_loss_refutes_similar_but_not_no_advantage():
    """-0.05 +- 0.01: no advantage holds (the interval is far below +0.02), similar does not (it is
    far below -0.02): the paper's two words part ways."""
    i = interval(-0.05, 0.01)
    no_gain, similar = paper.CLAIMS[1].tests
    assert compare.verdict(no_gain, i, min(no_gain.p_values(i))) == "holds"
    assert compare.verdict(similar, i, min(similar.p_values(i))).startswith("does not hold")


@pytest.mark.parametrize("gap", [0.01, 0.5, 50.0])
def test_two_seeds_give_p_values_too(gap):
    """One component of 1 df (2 seeds): the p-value is the t test's, t.sf(gap / se, 1); a far null
    once overflowed a float (the 1-df quantile squared at p = 1e-300)."""
    i = stats_.t_interval(0.5, [(1e-4, 1)])
    p = i.p_value(0.5 - gap, "greater")
    assert p == pytest.approx(stats.t.sf(gap / 1e-2, 1), rel=1e-9) and 0 < p < 0.5


def test_both_margin_tests_read_the_90_interval():
    """One level for the paper's words: TOST holds exactly when the 90 % interval is inside +-margin;
    non-superiority exactly when that interval's upper bound is below the margin (one-sided at 5 %)."""
    similar, no_gain = paper.Test("equivalence", "w"), paper.Test("non-superiority", "w")
    assert similar.confidence == no_gain.confidence == 0.90 and no_gain.label == "gain < +0.02, 90 %"
    d = paper.NO_GAIN_MARGIN
    for estimate in (-0.012, 0.0, 0.009, 0.0115, 0.013):
        i = interval(estimate, 0.005)
        inside = -d < i.at(0.90).low and i.at(0.90).high < d
        assert (similar.p_values(i)[0] < 0.05) == inside, estimate
        assert (no_gain.p_values(i)[0] < 0.05) == (i.at(0.90).high < d), estimate


def test_similar_never_holds_without_no_advantage():
    """Over random near-zero intervals, alone and after Holm in families of random size: wherever
    "similar" holds, "no advantage" holds on the same comparison (the 95 % / 2.5 % reading of "no
    advantage" broke this for 4 % of such intervals)."""
    rng = np.random.default_rng(11)
    no_gain, similar = paper.CLAIMS[1].tests
    both = 0
    for _ in range(2000):
        i = stats_.t_interval(rng.normal(0, 0.01), [(rng.uniform(1e-6, 1e-4), rng.integers(2, 800))])
        others = list(rng.uniform(0, 1, rng.integers(0, 12)))  # the rest of the family
        p_no, p_sim = min(no_gain.p_values(i)), min(similar.p_values(i))
        h_no, h_sim = compare.holm([p_no, p_sim, *others])[:2]
        for p_n, p_s in ((p_no, p_sim), (h_no, h_sim)):
            if compare.verdict(similar, i, p_s) == "holds":
                both += 1
                assert compare.verdict(no_gain, i, p_n) == "holds", (i, p_n, p_s)
    assert both > 100  # the case arose often enough to show something


def test_tost_keeps_its_level_at_the_margin():
    """When the true difference sits exactly on the margin, TOST says "similar" in at most 5 % of
    repeated experiments (the old one-sided check at the 95 % upper bound said it in 11.7 %)."""
    rng = np.random.default_rng(7)
    test, se = paper.Test("equivalence", "w"), 0.008
    said = [test.p_values(interval(e, se))[0] < 0.05 for e in rng.normal(paper.NO_GAIN_MARGIN, se, 4000)]
    assert 0.04 < np.mean(said) <= 0.055


def test_holm_adjusts_step_down():
    """p 0.01, 0.04, 0.03, 0.005: sorted 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1
    held at 0.06; back in the input's order."""
    assert compare.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert compare.holm([0.5, 0.9]) == [1.0, 1.0] and compare.holm([]) == []


def test_detectable_is_the_half_width_plus_the_power_quantile():
    i = interval(0.0, 0.01)
    assert stats_.detectable(i) == pytest.approx(2.80 * 0.01, rel=0.01)  # (1.96 + 0.84) se
    assert stats_.detectable(i.at(0.90), both_bounds=True) == pytest.approx((1.645 + 1.282) * 0.01, rel=0.01)


def graded(accs, n=1000, seed=0):
    """(S, N) correct: seed s right on the first round(accs[s] * n) tracks of one fixed random order
    (the same order for every cell: the tracks a cell gets right are nested in a better one's)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.stack([np.isin(np.arange(n), order[: round(a * n)]) for a in accs])


def predicted_grid(accs_by_setting, n=1000):
    """Every cell of Tables 1-2 with test predictions: seed s of a setting right on graded tracks."""
    settings = set(paper.PAPER["Table 1"]) | set(paper.PAPER["Table 2"])
    cells = []
    for s in settings:
        accs = accs_by_setting.get(s, [0.5, 0.5, 0.5])
        cells.append(predicted(*s, graded(accs, n)))
    return compare.index_runs(cells)


def test_claims_from_clear_effects():
    runs = predicted_grid(
        {
            ("spectrogram", False, 0.0): [0.609, 0.61, 0.611],
            ("raw", False, 0.0): [0.30, 0.32, 0.31],
            ("spectrogram", True, 0.0): [0.709, 0.71, 0.711],
            ("raw", True, 0.0): [0.40, 0.41, 0.42],
            ("both", False, 0.0): [0.609, 0.61, 0.611],  # 2D's, seed for seed: "similar" can be shown
            ("both", True, 0.0): [0.709, 0.71, 0.711],
            ("spectrogram", True, 0.2): [0.509, 0.51, 0.511],
            ("both", True, 0.2): [0.509, 0.51, 0.511],
        }
    )
    judged = compare.claims(runs)
    assert set(judged["verdict"]) == {"holds"}, judged[["comparison", "test", "low", "high", "p_holm"]]
    assert len(judged) == compare.family_size(judged) == 13  # 2 + 3 x 2 + 3 + 2 tests
    summary = compare.claim_summary(judged).set_index("claim")["verdict"]
    assert set(summary.index) == {
        "2D beats 1D",
        "1D+2D adds nothing over 2D ('no advantages')",
        "1D+2D adds nothing over 2D ('similar')",
        "Segmenting helps",
        "Dropout hurts",
    }
    row = judged[judged["comparison"] == "2D input, not segmented − 1D input, not segmented"].iloc[0]
    assert row["diff"] == pytest.approx(0.30)
    assert row["paper_diff"] == pytest.approx(0.395 - 0.264)
    assert row["low"] < 0.30 < row["high"] and row["seeds"] == "3 / 3" and row["confidence"] == 0.95
    assert row["p"] <= row["p_holm"] <= 1
    similar = judged[judged["test"] == "equivalence"]
    assert (similar["confidence"] == 0.90).all() and (similar["margin"] == "±0.02").all()


def test_holm_can_turn_a_lone_verdict_inconclusive():
    """A gain of 0.03 at se 0.013 (p = 0.02 alone) holds at 5 % on its own, but not in a family of 13
    where it is the largest p: Holm leaves it at 0.02 only if every other test is below it too."""
    runs = predicted_grid({("raw", True, 0.0): [0.50, 0.52, 0.54], ("raw", False, 0.0): [0.48, 0.49, 0.50]})
    judged = compare.claims(runs).set_index(["comparison", "test"])
    row = judged.loc[("1D input, segmented − 1D input, not segmented", "superiority")]
    assert row["p"] < 0.05 and row["p_holm"] > row["p"]
    assert row["verdict"] == ("holds" if row["p_holm"] < 0.05 else "inconclusive")


def test_claims_with_one_seed_or_a_missing_cell_are_inconclusive():
    runs = compare.index_runs(
        [
            predicted("spectrogram", False, 0.0, graded([0.6])),
            predicted("raw", False, 0.0, graded([0.3])),
            predicted("spectrogram", True, 0.0, graded([0.6, 0.7])),
        ]
    )
    judged = compare.claims(runs).set_index("comparison")
    assert judged.loc["2D input, not segmented − 1D input, not segmented", "verdict"] == "inconclusive (1 seed)"
    assert judged.loc["2D input, not segmented − 1D input, not segmented", "diff"] == pytest.approx(0.3)
    missing = judged.loc["2D input, segmented − 1D input, segmented"]
    assert missing["verdict"] == "inconclusive (not run: 1D input, segmented)" and math.isnan(missing["diff"])
    assert compare.family_size(compare.claims(runs)) == 0


def test_claim_summary_names_each_verdict_when_comparisons_disagree():
    runs = predicted_grid(
        {
            ("raw", True, 0.0): [0.50, 0.51, 0.52],
            ("raw", False, 0.0): [0.30, 0.31, 0.32],  # helps
            ("spectrogram", True, 0.0): [0.40, 0.60, 0.50],
            ("spectrogram", False, 0.0): [0.45, 0.55, 0.50],
        }
    )
    summary = compare.claim_summary(compare.claims(runs)).set_index("claim")["verdict"]
    assert summary["Segmenting helps"].startswith("holds for 1D input, segmented − 1D input, not segmented; ")
    assert "inconclusive for 2D input, segmented − 2D input, not segmented" in summary["Segmenting helps"]


def test_no_spread_gives_no_verdict():
    """Every seed of both cells right on exactly the same tracks: no spread, and nothing proven."""
    same = graded([0.5, 0.5], 200)
    runs = compare.index_runs(
        [
            predicted("both", True, 0.0, same, cell="a"),
            predicted("spectrogram", True, 0.0, same, cell="b"),
        ]
    )
    judged = compare.claims(runs).set_index("comparison")
    assert set(judged.loc["1D+2D input, segmented − 2D input, segmented", "verdict"]) == {"inconclusive (no spread)"}


def test_table_3_gives_no_difference_against_the_papers_unexplained_zero():
    runs = compare.index_runs([result("both", True, 0.0, [0.40, 0.44], cell="a")])
    t3 = results_page.paper_frame("Table 3", runs).set_index("setting")
    assert t3.loc["1D+2D input, segmented", "paper"] == 0.0
    assert math.isnan(t3.loc["1D+2D input, segmented", "diff"])
    assert shown(results_page.paper_table(page_of(runs), "Table 3", "t"))["1D+2D input, segmented"][-1] == "—"
    t1 = results_page.paper_frame("Table 1", runs).set_index("setting")
    assert t1.loc["1D+2D input, segmented", "diff"] == pytest.approx(0.42 - 0.428)


# --- intervals over test tracks and seeds ---------------------------------------------------------


def test_one_seed_gives_the_binomial_interval():
    """One seed, 400 tracks, 300 right: only the tracks vary, and the interval is the binomial one,
    0.75 +- t(399) sqrt(0.75 * 0.25 / 399) = [0.707, 0.793]."""
    correct = np.zeros((1, 400), bool)
    correct[0, :300] = True
    i = stats_.accuracy_interval(correct)
    half = stats.t.ppf(0.975, 399) * math.sqrt(0.75 * 0.25 / 399)
    assert i.estimate == 0.75 and i.se == pytest.approx(math.sqrt(0.75 * 0.25 / 399))
    assert (i.low, i.high) == pytest.approx((0.75 - half, 0.75 + half))


def test_the_seed_component_takes_the_t_quantile_of_its_seeds():
    """Seeds that disagree widen the interval: three seeds with accuracies 0.5, 0.6, 0.7 on tracks
    every seed finds equally hard add sd 0.1 / sqrt(3) at t(2) = 4.30, in quadrature with the tracks'."""
    rng = np.random.default_rng(0)
    order = rng.permutation(600)
    spread = np.stack([np.isin(np.arange(600), order[: int(p * 600)]) for p in (0.5, 0.6, 0.7)])  # nested sets
    i = stats_.accuracy_interval(spread)
    t_part = spread.mean(axis=0).var(ddof=1) / 600
    seed_part = spread.mean(axis=1).var(ddof=1) / 3
    half = math.sqrt(stats.t.ppf(0.975, 599) ** 2 * t_part + stats.t.ppf(0.975, 2) ** 2 * seed_part)
    assert (i.low, i.high) == pytest.approx((0.6 - half, 0.6 + half))
    assert i.se == pytest.approx(math.sqrt(t_part + seed_part))
    same = np.tile(spread[1], (3, 1))  # the seeds agree: the tracks alone
    assert stats_.accuracy_interval(same).high - 0.6 < half / 2


def test_a_paired_difference_is_tighter_than_an_unpaired_one():
    """b is a with 10 of 500 tracks flipped to right (every seed agrees): pairing sees +0.02 with a
    narrow interval around it (the shared tracks cancel; sd sqrt(10)/500), which excludes 0,
    while each accuracy alone is uncertain by +-0.04."""
    rng = np.random.default_rng(1)
    a = np.tile(rng.random(500) < 0.5, (3, 1))
    b = a.copy()
    b[:, np.flatnonzero(~a[0])[:10]] = True
    d = stats_.paired_difference(b, a)
    assert d.estimate == pytest.approx(0.02)
    assert 0 < d.low < d.estimate < d.high < 0.04
    alone = stats_.accuracy_interval(a)
    assert alone.high - alone.low > 2 * (d.high - d.low)
    with pytest.raises(ValueError, match="same test tracks"):
        stats_.paired_difference(a, b[:, :-1])


def test_pairing_by_seed_cancels_what_a_seed_does_to_both_cells():
    """Seed s makes both cells right on the same extra tracks (seed 0: none, seed 2: 60 of 500: the
    seeds' accuracies swing by 0.12), and b is right on 15 more tracks under every seed: a true
    +0.03. Paired seeds keep the swing out of the difference; unpaired ones let it in, several
    times wider. Both intervals hold +0.03."""
    rng = np.random.default_rng(4)
    base = rng.random(500) < 0.5
    wrong = np.flatnonzero(~base)
    a = np.stack([base.copy() for _ in range(3)])
    for s, k in enumerate((0, 30, 60)):
        a[s, wrong[100 : 100 + k]] = True  # what seed s does, to both cells
    b = a.copy()
    b[:, wrong[:15]] = True
    paired = stats_.paired_difference(b, a, same_seeds=True)
    apart = stats_.paired_difference(b, a, same_seeds=False)
    assert paired.estimate == apart.estimate == pytest.approx(0.03)
    assert paired.low < 0.03 < paired.high and apart.low < 0.03 < apart.high
    assert 3 * (paired.high - paired.low) < apart.high - apart.low
    assert 0 < paired.low  # sqrt(15) / 500 = 0.008 of track noise around 0.03
    with pytest.raises(ValueError, match="same seeds on both sides"):
        stats_.paired_difference(b, a[:2], same_seeds=True)


@pytest.mark.parametrize(
    "change, shared",
    [
        ({"spectrogram_scale": "log"}, True),
        ({"spectrogram_scale": "mel"}, False),
        ({"batch_unit": "segments"}, True),
        ({"train_fraction": 0.5}, True),
        ({"segmented": False}, True),
        ({"dropout": 0.2}, True),
        ({"input": "both"}, False),
        ({"seeds": [0, 2]}, False),
    ],
    ids=[
        "log1p",
        "log-mel",
        "batch of segments",
        "training share",
        "whole clips",
        "dropout",
        "another input",
        "other seeds",
    ],
)
def test_seeds_are_paired_exactly_where_the_initial_weights_are_the_same(change, shared):
    """Per ablation kind (and the tables' own pairs): compare.seeds_shared says what the code that makes
    the weights does. Seeded as train.start_seed seeds, each config's network starts from the same
    weights as the base cell's exactly where the seeds are said to be shared."""
    import torch

    from fmareport.model import Net
    from fmareport.train import seed_everything

    base = Config(profile="p", cell="table1/s", input="spectrogram", segmented=True, seeds=[0, 1])
    other = base.replace(cell="ablations/x", base="table1/s", **change)
    right = np.tile(np.arange(64) % 3 > 0, (2, 1))
    assert compare.seeds_shared(of_config(base, right), of_config(other, right)) == shared

    def initial(cfg):
        seed_everything(cfg.schedule.seeds[1])
        return Net.of(cfg).state_dict()

    a, b = initial(base), initial(other)
    same = a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)
    assert same == shared


def test_cells_are_paired_by_seed_only_when_they_share_initial_weights():
    """Seed s gives two cells the same initial weights only when their input (and so their layers)
    is the same; other inputs share the batch order alone, and their seeds are not paired."""
    right = np.tile(np.arange(200) % 3 > 0, (2, 1))
    a = predicted("spectrogram", True, 0.0, right, cell="a")
    b = predicted("spectrogram", False, 0.0, right, cell="b")
    c = predicted("both", True, 0.0, right, cell="c")
    assert compare.compare(a, b)["paired"] and not compare.compare(a, c)["paired"]
    b = predicted("spectrogram", False, 0.0, right, cell="b", seeds=[0, 7])
    assert not compare.compare(a, b)["paired"]
    assert compare.compare(a, b)["method"] == "t over 200 paired tracks and the seeds"


def test_the_intervals_cover_in_a_small_simulation():
    """The coverage simulation (fmareport.report.coverage), 200 runs a row: at the demo's design and the
    largest seed SD it tables, every kind of interval over artists holds the true value in 93 % or more
    of the runs; at the paper's (FMA-like artists, up to 30 tracks) with no seed spread, where the
    tracks' part is all there is, the interval over single tracks falls short (0.84 in 1000 runs)
    and the one over artists does not (the full table: docs/statistics.md and the Results page)."""
    from fmareport.report import coverage

    rng = np.random.default_rng(3)
    for kind in coverage.KINDS:
        found = coverage.simulate(coverage.DESIGNS["demo"], 0.06, kind, reps=200, rng=rng)
        assert found["coverage"] >= 0.93 and 0 < found["mean_width"] < 0.5, (kind, found)
        assert found["coverage_90"] >= 0.87, (kind, found)  # the level TOST reads
    found = coverage.simulate(coverage.DESIGNS["paper"], 0.0, "cell", reps=200, rng=rng)
    assert found["coverage"] >= 0.93 and found["coverage_by_track"] < 0.9, found
    assert found["mean_width"] > found["mean_width_by_track"]
    assert coverage.seed_sd(coverage.MU_A, coverage.sigma_for(0.04)) == pytest.approx(0.04)
    assert coverage.true_accuracy(0.0, 0.0) == pytest.approx(0.5)
    paper = coverage.DESIGNS["paper"]
    assert paper.tracks == 800 and paper.artists.shape == (800,) and len(set(paper.artists)) == len(paper.artist_sizes)


def test_over_artists_with_one_track_each_is_over_tracks_bit_for_bit():
    """Cluster-robust over singleton clusters is var(t) / N at N - 1 df: the same floats, for cells
    and paired differences (artist ids in any order and of any size)."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        n, s = int(rng.integers(3, 700)), int(rng.integers(1, 6))
        a, b = rng.random((s, n)) < rng.random(), rng.random((s, n)) < rng.random()
        ids = rng.permutation(n) * 1009 + 17  # (N,) one artist a track
        assert stats_.accuracy_interval(a, clusters=ids) == stats_.accuracy_interval(a)
        for same in (True, False):
            assert stats_.paired_difference(a, b, same, clusters=ids) == stats_.paired_difference(a, b, same)


def test_a_strong_artist_effect_widens_the_interval_as_cr1_says():
    """100 artists of 4 tracks, an artist right or wrong on all its tracks together (mostly): the
    tracks' part over artists is G/(G-1) sum_g S_g^2 / N^2 at G - 1 = 99 df, computed here by hand,
    and well above var(t) / N, which takes 400 tracks for 400 independent draws."""
    rng = np.random.default_rng(8)
    artists = np.repeat(rng.permutation(100) + 500, 4)  # (400,)
    skill = rng.random(100)[np.repeat(np.arange(100), 4)]  # (400,) the artist's
    one = rng.random(400) < np.where(rng.random(400) < 0.9, skill, 0.5)  # (400,) right on track n
    correct = np.stack([one, one ^ (rng.random(400) < 0.05)])  # (2, 400): two seeds that barely differ
    by_artist = stats_.accuracy_interval(correct, clusters=artists)
    by_track = stats_.accuracy_interval(correct)
    t = correct.mean(axis=0)
    sums = np.array([(t[artists == g] - t.mean()).sum() for g in np.unique(artists)])  # (G,)
    tracks_part = 100 / 99 * (sums**2).sum() / 400**2
    seeds_part = correct.mean(axis=1).var(ddof=1) / 2
    half = math.sqrt(stats.t.ppf(0.975, 99) ** 2 * tracks_part + stats.t.ppf(0.975, 1) ** 2 * seeds_part)
    assert (by_artist.low, by_artist.high) == pytest.approx((t.mean() - half, t.mean() + half))
    assert by_artist.se == pytest.approx(math.sqrt(tracks_part + seeds_part))
    assert tracks_part > 2 * t.var(ddof=1) / 400  # a design effect of 2.2 here: 1 + (4 - 1) x 0.4
    assert by_artist.se > 1.3 * by_track.se


@pytest.mark.parametrize(
    "clusters, message",
    [
        (np.arange(399), r"clusters: 399 artist ids for 400 test tracks; one per track"),
        (np.arange(800).reshape(2, 400), r"clusters: \(2, 400\) artist ids for 400 test tracks"),
        (
            np.where(np.arange(400) == 7, np.nan, np.arange(400.0)),
            r"clusters: test track 7 has artist id nan, not an integer",
        ),
        (np.arange(400) + 0.5, r"clusters: test track 0 has artist id 0.5, not an integer"),
        (np.array(["AWOL"] * 400), r"clusters: artist ids must be integers, got <U4"),
        (np.full(400, 6), r"clusters: all 400 test tracks are of one artist: no variance over artists"),
    ],
    ids=["short", "2-D", "nan", "fraction", "names", "one artist"],
)
def test_clusters_that_are_not_one_artist_id_per_track_are_refused(clusters, message):
    correct = np.ones((3, 400), dtype=bool)
    with pytest.raises(ValueError, match=message):
        stats_.accuracy_interval(correct, clusters=clusters)
    with pytest.raises(ValueError, match=message):
        stats_.paired_difference(correct, correct, clusters=clusters)


def test_comparisons_resample_artists_when_the_results_record_them():
    """50 artists of 4 tracks; b differs from a on whole artists (a third of them flipped), so the
    per-track differences come in artists: the interval is stats' over artists, and says so; a side
    written before artists were recorded takes the other's (the same tracks); neither side: the
    interval over tracks, as before."""
    rng = np.random.default_rng(9)
    artists = np.repeat(rng.permutation(50) * 3 + 1, 4)  # (200,)
    right = np.repeat(rng.random(50) < 0.6, 4)  # (200,) by artist
    a_right = np.stack([right ^ (rng.random(200) < 0.02) for _ in range(3)])  # (3, 200)
    b_right = a_right ^ np.repeat(rng.random(50) < 0.3, 4)  # a's answers flipped on whole artists

    def cells(artists_a, artists_b):  # None: no artists, as in a file written before they were recorded
        a = predicted("spectrogram", True, 0.0, a_right, cell="a", artists=artists_a)
        b = predicted("both", True, 0.0, b_right, cell="b", artists=artists_b)
        return a, b

    by_artist = stats_.paired_difference(a_right, b_right, clusters=artists)
    by_track = stats_.paired_difference(a_right, b_right)
    for artists_a, artists_b in ((artists, artists), (None, artists), (artists, None)):
        c = compare.compare(*cells(artists_a, artists_b))
        assert (c["low"], c["high"], c["se"]) == (by_artist.low, by_artist.high, by_artist.se)
        assert c["method"] == "t over 50 artists (200 paired tracks) and the seeds"
    c = compare.compare(*cells(None, None))
    assert (c["low"], c["high"]) == (by_track.low, by_track.high)
    assert c["method"] == "t over 200 paired tracks and the seeds"
    assert by_artist.se > 1.3 * by_track.se
    with pytest.raises(ValueError, match="cells a and b give their test tracks different artists"):
        compare.compare(*cells(artists, artists[::-1]))

    for artists_a, clusters in ((artists, artists), (None, None)):  # a cell alone: over its artists, or its tracks
        i = stats_.accuracy_interval(a_right, clusters=clusters)
        assert compare.accuracy_interval(cells(artists_a, None)[0]) == i


def test_the_baseline_brings_its_test_tracks_artists():
    """A baseline file with artists compares with a cell over artists; one without, over tracks."""
    labels = np.arange(200) % 8
    probs = np.full((200, 8), 0.01)
    probs[np.arange(200), np.where(np.arange(200) % 3 > 0, labels, (labels + 1) % 8)] = 0.93
    base = baseline() | dict(
        data=DATA | {"tracks": DATA["tracks"] | {"test": 200}},
        test={"track_ids": list(range(200)), "labels": labels.tolist()},
        test_probs=probs.tolist(),
    )

    def read(obj):
        return BaselineResults.model_validate_json(json.dumps(obj))

    cell = predicted("spectrogram", True, 0.0, np.tile(np.arange(200) % 2 > 0, (2, 1)), cell="a")
    artists = (np.arange(200) // 5 + 1).tolist()
    with_artists = read({**base, "test": base["test"] | {"artist_ids": artists}})
    assert with_artists.test.artist_ids == artists and with_artists.cell == "baselines/mfcc"
    assert with_artists.accuracies == [float(np.mean(np.arange(200) % 3 > 0))] and with_artists.seed_ids == (0,)
    assert compare.compare(cell, with_artists)["method"].startswith("t over 40 artists (200 paired tracks)")
    assert compare.compare(cell, read(base))["method"].startswith("t over 200 paired tracks")


def test_claims_use_the_paired_interval_when_predictions_are_kept():
    rng = np.random.default_rng(2)
    spec = np.tile(rng.random(1000) < 0.7, (3, 1))
    both = spec.copy()  # 1D+2D: the same predictions, plus 10 of 1000 tracks right
    both[:, np.flatnonzero(~spec[0])[:10]] = True
    runs = compare.index_runs(
        [
            predicted("spectrogram", True, 0.0, spec),
            predicted("both", True, 0.0, both),
        ]
    )
    judged = compare.claims(runs).set_index(["comparison", "test"])
    row = judged.loc[("1D+2D input, segmented − 2D input, segmented", "non-superiority")]
    assert row["method"] == "t over 1000 paired tracks and the seeds"
    assert not row["paired"]  # 2D and 1D+2D: other layers, other initial weights: seeds not paired
    assert row["diff"] == pytest.approx(10 / 1000)
    assert 0 < row["low"] and row["high"] < paper.NO_GAIN_MARGIN  # a real gain of 0.01, under the 0.02 margin
    assert row["verdict"] == "holds"  # no advantage of 0.02 or more
    assert judged.loc[("1D+2D input, segmented − 2D input, segmented", "equivalence"), "verdict"] == "holds"
    assert row["detectable"] > 0
    assert compare.accuracy_interval(runs[("both", True, 0.0)]).estimate == pytest.approx(both.mean())


def test_widths_say_which_intervals_are_narrower_than_their_effects():
    rows = [
        dict(name="2D − 1D", diff=0.30, low=0.20, high=0.40, seed_share=0.9),  # width 0.20 < 0.30: narrower
        dict(name="log − linear", diff=0.06, low=-0.01, high=0.13, seed_share=0.2),  # width 0.14 > 0.06
        dict(name="no spread", diff=0.0, low=0.0, high=0.0, seed_share=math.nan),  # a zero-width one: left out
    ]
    html = results_page.widths(rows, "claim-widths", "How wide")
    table = shown(html)
    assert table["2D − 1D"] == ["0.200", "0.300", "yes", "90%"] and table["log − linear"] == [
        "0.140",
        "0.060",
        "no",
        "20%",
    ]
    assert "no spread" not in table
    assert "How wide: 1 of 2 narrower than the effect they measure; in 1 the seeds give more than half" in html.data
    said = results_page.widths(rows[2:], "claim-widths", "How wide").data
    assert said.startswith("No comparison here has an interval")
    d = stats_.paired_difference(graded([0.5, 0.6, 0.7], 600), graded([0.5, 0.5, 0.5], 600, seed=1))
    assert stats_.seed_share(d) == pytest.approx(1 - d.components[0][0] / d.se**2)
    assert 0 < stats_.seed_share(d) < 1


def test_ablations_are_compared_with_their_base_cell_as_numbers():
    rng = np.random.default_rng(3)
    base_right = np.tile(rng.random(400) < 0.6, (2, 1))
    abl_right = base_right.copy()
    abl_right[:, np.flatnonzero(~base_right[0])[:40]] = True  # +0.10 on the same tracks
    base = predicted("spectrogram", True, 0.0, base_right, cell="table1/s")
    abl = predicted("spectrogram", True, 0.0, abl_right, cell="ablations/log", base="table1/s", spectrogram_scale="log")
    orphan = result("spectrogram", True, 0.0, [0.5, 0.5], cell="ablations/orphan", base="table1/missing")
    rows = compare.ablation_comparisons({"table1/s": base, "ablations/log": abl, "ablations/orphan": orphan})
    log, lone = rows
    assert (log["ablation"], log["base"], log["changes"]) == (
        "ablations/log",
        "table1/s",
        {"spectrogram_scale": ("linear", "log")},
    )
    assert log["diff"] == pytest.approx(0.10) and log["width"] == pytest.approx(log["high"] - log["low"])
    assert log["width"] < log["diff"]  # narrower than the effect: sd sqrt(40)/400 = 0.016
    assert lone["base_run"] is None and "width" not in lone


def test_each_ablation_gets_its_changes_and_a_reading():
    right = np.tile(np.arange(400) % 2 == 0, (2, 1))
    better = right.copy()
    better[:, 1:81:2] = True  # +0.10 on the same tracks and seeds
    worse = right.copy()
    worse[:, 0:80:2] = False  # -0.10
    results = {
        "table1/s": predicted("spectrogram", True, 0.0, right, cell="table1/s"),
        "table1/b": predicted("both", True, 0.0, right, cell="table1/b"),
        "table1/r": predicted("raw", True, 0.0, right, cell="table1/r"),
        "ablations/orphan": result(
            "spectrogram", True, 0.0, [0.5, 0.5], cell="ablations/orphan", base="table1/missing"
        ),
    }
    for name, base, kind, right_now, change in [
        ("log_s", "s", "spectrogram", better, {"spectrogram_scale": "log"}),
        ("mel_b", "b", "both", worse, {"spectrogram_scale": "mel", "n_mels": 32}),
        ("seg_r", "r", "raw", right[:, ::-1], {"batch_unit": "segments"}),  # the same accuracy, other tracks
    ]:
        cell = f"ablations/{name}"
        results[cell] = predicted(kind, True, 0.0, right_now, cell=cell, base=f"table1/{base}", **change)
    runs = compare.index_runs(list(results.values()))
    table = shown(
        beyond.ablations(Page("p", results, runs, Config(profile="p"), []), compare.ablation_comparisons(results))
    )
    header = table[""]
    changes, reading = header.index("Changes") - 1, header.index("Effect") - 1  # the first header is the index's
    assert table["ablations/log_s"][changes] == "spectrogram_scale: linear → log (from table1/s)"
    assert table["ablations/mel_b"][changes] == "spectrogram_scale: linear → mel, n_mels: 32 (from table1/b)"
    assert table["ablations/seg_r"][changes] == "batch_unit: clips → segments (from table1/r)"
    assert table["ablations/log_s"][reading] == "helps" and table["ablations/mel_b"][reading] == "hurts"
    assert table["ablations/seg_r"][reading] == "no clear effect"
    assert table["ablations/orphan"][reading] == "base cell table1/missing not run: no comparison"
    paired = header.index("Seeds paired") - 1
    assert (
        table["ablations/log_s"][paired] == "yes" and table["ablations/mel_b"][paired] == "no (other initial weights)"
    )
    assert table["ablations/orphan"][header.index("Detectable") - 1] == "—"
    only_base = {"table1/s": results["table1/s"]}
    none = beyond.ablations(
        Page("p", only_base, runs, Config(profile="p"), []), compare.ablation_comparisons(only_base)
    )
    assert none.data == "No ablation was run for this profile (`params/ablations/`)."


def test_the_ablations_are_one_family_and_help_or_hurt_only_after_holm():
    """An ablation whose gain is significant alone (p 0.043) is no clear effect in a family of three,
    where Holm multiplies the smallest p by 3; alone, it helps. Every p_holm is Holm's of the ps."""
    base_right = np.tile(np.arange(400) % 2 == 0, (3, 1))
    gain = base_right.copy()
    for s, k in enumerate((5, 6, 8)):  # +1.25 to +2 points, seed by seed
        gain[s, np.flatnonzero(~gain[s])[:k]] = True
    results = {"table1/s": predicted("spectrogram", True, 0.0, base_right, cell="table1/s")}
    shuffled = base_right[:, np.random.default_rng(0).permutation(400)]  # the same accuracy on other tracks
    for name, right in (("gain", gain), ("same_a", np.roll(base_right, 1, axis=1)), ("same_b", shuffled)):
        cell = f"ablations/{name}"
        results[cell] = predicted("spectrogram", True, 0.0, right, cell=cell, base="table1/s", spectrogram_scale="log")
    rows = {r["ablation"]: r for r in compare.ablation_comparisons(results)}
    assert 0.04 < rows["ablations/gain"]["p"] < 0.05 and rows["ablations/gain"]["effect"] == "no clear effect"
    assert [r["p_holm"] for r in rows.values()] == pytest.approx(compare.holm([r["p"] for r in rows.values()]))
    alone = compare.ablation_comparisons({c: results[c] for c in ("table1/s", "ablations/gain")})
    assert alone[0]["p_holm"] == alone[0]["p"] and alone[0]["effect"] == "helps"


def test_a_synthetic_task_sets_no_number_beside_the_papers():
    runs = predicted_grid({("raw", True, 0.0): [0.50, 0.52, 0.54]})
    judged = compare.claims(runs)
    for source, shows in (("fma", True), ("synth", False)):
        page = page_of(runs, source)
        assert ("Ours − paper" in shown(results_page.paper_table(page, "Table 1", "t"))[""]) == shows
        assert ("Paper a − b" in shown(results_page.claim_tests(page, judged))[""]) == shows


def test_a_column_of_one_value_is_said_once_in_the_caption():
    runs = predicted_grid({("raw", True, 0.0): [0.50, 0.52, 0.54]})
    html = results_page.claim_tests(page_of(runs), compare.claims(runs)).data
    assert "Seeds (a / b)" not in shown(results_page.claim_tests(page_of(runs), compare.claims(runs)))[""]
    assert " Seeds (a / b): 3 / 3. Interval from: t over 1000 paired tracks and the seeds." in html


def test_the_coverage_table_is_cached_under_the_digest_of_what_makes_it(tmp_path):
    """A cached table reads back equal (bit for bit) to the simulation; another reps or design is
    another file; a damaged file is computed again and replaced; an unwritable folder is no error."""
    from fmareport.report import coverage

    designs = {"tiny": coverage.Design(2, (2, 1, 3))}
    made = coverage.cached_table(reps=5, designs=designs, cache_dir=tmp_path)
    (path,) = tmp_path.glob("coverage-*.csv")
    assert path.name == f"coverage-{coverage.table_digest(5, designs)}.csv"
    pd.testing.assert_frame_equal(made, coverage.coverage_table(reps=5, designs=designs), check_exact=True)
    pd.testing.assert_frame_equal(
        coverage.cached_table(reps=5, designs=designs, cache_dir=tmp_path), made, check_exact=True
    )
    assert coverage.table_digest(6, designs) != coverage.table_digest(5, designs)
    assert coverage.table_digest(5, {"tiny": coverage.Design(3, (2, 1, 3))}) != coverage.table_digest(5, designs)
    path.write_text("design,coverage\ntiny,0.99\n")  # damaged: not the table
    pd.testing.assert_frame_equal(
        coverage.cached_table(reps=5, designs=designs, cache_dir=tmp_path), made, check_exact=True
    )
    assert pd.read_csv(path).shape == made.shape
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the folder should be: the write fails, the table is still there
    pd.testing.assert_frame_equal(
        coverage.cached_table(reps=5, designs=designs, cache_dir=blocked), made, check_exact=True
    )


def test_a_forest_plot_shows_each_verdict_by_colour_and_marker_and_the_margin():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmareport.report.figures import VERDICT_STYLES, forest, verdict_style

    rows = [
        dict(label="a − b: holds", estimate=0.1, low=0.05, high=0.15, verdict="holds"),
        dict(label="c − d: does not hold", estimate=-0.1, low=-0.2, high=-0.05, verdict="does not hold: a loss"),
        dict(label="e − f: inconclusive", estimate=0.0, low=-0.05, high=0.05, verdict="inconclusive"),
        dict(label="g − h: helps", estimate=0.02, low=0.01, high=0.03, verdict="helps"),
    ]
    assert [verdict_style(r["verdict"]) for r in rows] == ["for", "against", "neither", "for"]
    fig = forest(rows, margin=0.02)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [r["label"] for r in rows]  # top to bottom
    points = {(line.get_color(), line.get_marker()) for line in ax.get_lines()}  # the points (and the caps)
    for key, (color, marker, _) in VERDICT_STYLES.items():
        assert (color, marker) in points, key
    assert ax.patches and ax.patches[0].get_x() == pytest.approx(-0.02)  # the margin band
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"±0.02 margin", "holds / helps"}
    plt.close(fig)

"""The Beyond-the-paper page (book/pages/beyond.md): each ablation beside its base cell (compare.
ablation_comparisons), and how wide their intervals came out."""

from __future__ import annotations

import math

import pandas as pd
from IPython.display import Markdown, display

from ..compare import accuracy_interval
from ..figures import forest, show
from ..page import Page, interval_text, p_text, table
from ..stats import CONFIDENCE
from .results import widths


def changes_text(changes: dict[str, tuple]) -> str:
    """'spectrogram_scale: linear → mel, n_mels: 128': a key new to the run (base value None) by its value alone."""
    return ", ".join(f"{k}: {a}" if b is None else f"{k}: {b} → {a}" for k, (b, a) in changes.items())


def ablations(page: Page, comparisons: list[dict]):
    """Each ablation beside its base cell (id ablations): what it changes, both accuracies with their
    intervals, the paired difference with its interval, whether the seeds are paired, the smallest
    detectable difference, the Holm-adjusted p and the effect (compare.ablation_comparisons); a line
    when none ran."""
    rows = []
    for c in comparisons:
        row = {"Ablation": c["ablation"], "Changes": f"{changes_text(c['changes']) or '—'} (from {c['base']})"}
        if c["base_run"] is not None:
            row |= {
                "Base accuracy": interval_text(accuracy_interval(c["base_run"])),
                "Ablation accuracy": interval_text(accuracy_interval(c["run"])),
                f"Difference, {CONFIDENCE:.0%} interval": interval_text(c["interval"], signed=True),
                "Seeds paired": "yes" if c["paired"] else "no (other initial weights)",
                "Detectable": "—" if math.isnan(c["detectable"]) else f"{c['detectable']:.3f}",
                "p (Holm)": p_text(c["p_holm"]),
            }
        rows.append(row | {"Effect": c["effect"]})
    if not rows:
        return Markdown("No ablation was run for this profile (`params/ablations/`).")
    caption = (
        f"Each ablation beside its base cell: accuracies with their {CONFIDENCE:.0%} intervals, the paired "
        f"difference with its interval, and the test of no difference, Holm-adjusted over the ablations "
        f"(profile {page.profile})."
    )
    return table(pd.DataFrame(rows).set_index("Ablation").fillna("—"), "ablations", caption)


def ablations_forest(comparisons: list[dict]) -> None:
    """Show each ablation's paired difference from its base cell with its 95 % interval as a forest plot
    (figures.forest), its effect after Holm as colour, marker and label; a line when none has a base run."""
    rows = [
        dict(label=f"{c['ablation']} − {c['base']}: {c['effect']}", estimate=c["diff"], low=c["low"], high=c["high"],
             verdict=c["effect"])
        for c in comparisons
        if c["base_run"] is not None
    ]  # fmt: skip
    if not rows:
        display(Markdown("No ablation has its base cell run: nothing to draw."))
        return
    show(forest(rows, xlabel="ablation − base cell, test accuracy"))


def ablation_widths(page: Page, comparisons: list[dict]):
    """`results.widths` of the ablations' intervals (id ablation-widths)."""
    rows = [
        dict(
            name=f"{c['ablation']} − {c['base']}",
            diff=c["diff"],
            low=c["low"],
            high=c["high"],
            seed_share=c["seed_share"],
        )
        for c in comparisons
        if c["base_run"] is not None
    ]
    caption = f"How wide the ablations' {CONFIDENCE:.0%} intervals are, over {page.n_test:,} test tracks and seeds {', '.join(map(str, page.seeds))}"
    return widths(rows, "ablation-widths", caption)

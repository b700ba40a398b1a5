"""The figures of a set of runs, which the Results page draws for every cell and each cell's own
notebook (book/experiment.py) for its run: `training_curves`, `confusion_matrices`,
`per_genre_accuracy`. Each returns a matplotlib Figure; `save(fig, path)` writes and closes it,
`show(fig)` displays it once in a notebook.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, MaxNLocator

from ..inputs import INPUTS
from ..results import CellResults
from .compare import setting_label, setting_of


def save(fig: plt.Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write `fig` as a PNG (creating folders) and close it, so a notebook does not show it too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def show(fig: plt.Figure) -> None:
    """Display `fig` once in a notebook (and close it, so the inline backend does not show it again)."""
    from IPython.display import display

    display(fig)
    plt.close(fig)


def _ordered(results: list[CellResults]) -> list[CellResults]:
    return sorted(
        results,
        key=lambda r: (
            r.config.model.segmented,
            r.config.model.dropout,
            list(INPUTS).index(r.config.model.input),
        ),
    )


def history_frame(results: list[CellResults]) -> pd.DataFrame:
    """Long table of every epoch of every seed of every run: setting, seed, epoch, metrics."""
    rows = []
    for r in _ordered(results):
        for s in r.seeds:
            for h in s.history:
                rows.append(dict(setting=setting_label(setting_of(r)), seed=s.seed, **h.model_dump()))
    return pd.DataFrame(rows)


def training_curves(results: list[CellResults]) -> plt.Figure:
    """Train/validation loss and accuracy per epoch, one line per run (mean over seeds, band: min–max)."""
    df = history_frame(results)
    epochs = sorted(df["epoch"].unique())
    settings = list(dict.fromkeys(df["setting"]))  # in the order of the runs
    colors = plt.get_cmap("tab10" if len(settings) <= 10 else "tab20").colors
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    panels = [
        ("train_loss", "training loss"),
        ("val_loss", "validation loss (per track)"),
        ("train_acc", "training accuracy"),
        ("val_acc", "validation accuracy (per track)"),
    ]
    for ax, (col, title) in zip(axes.flat, panels):
        for setting, color in zip(settings, colors * len(settings)):
            by_epoch = df[df["setting"] == setting].groupby("epoch")[col].agg(["mean", "min", "max"])  # (E, 3)
            ax.fill_between(by_epoch.index, by_epoch["min"], by_epoch["max"], color=color, alpha=0.2, lw=0)
            ax.plot(by_epoch.index, by_epoch["mean"], marker="o", color=color, label=setting)
        ax.set(title=title, ylabel="", xlabel="epoch")
        ax.xaxis.set_major_locator(FixedLocator(epochs) if len(epochs) <= 20 else MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _heatmap(ax, share: np.ndarray, counts: np.ndarray, xlabels=None, ylabels=None) -> None:
    """share (K, K) in [0, 1] as blue squares, each annotated with its count (white on the dark ones).
    Drawn with matplotlib: seaborn's heatmap draws the whole figure once per panel (to check its tick
    labels for overlap), which made the Results page's 13 panels cost 7 CPU-s."""
    ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
    for (row, col), n in np.ndenumerate(counts):
        ax.text(
            col,
            row,
            f"{n:d}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if share[row, col] > 0.6 else "black",
        )
    ax.set_xticks(range(share.shape[1]) if xlabels else [], xlabels or [], rotation=90)
    ax.set_yticks(range(share.shape[0]) if ylabels else [], ylabels or [])


def confusion_matrices(results: list[CellResults]) -> plt.Figure:
    """Test confusion matrix of each run, summed over seeds; colour: share of the true genre."""
    ordered = _ordered(results)
    genres = ordered[0].genres
    ncol = min(4, len(ordered))
    nrow = math.ceil(len(ordered) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.0 * nrow), squeeze=False)
    for ax in axes.flat[len(ordered) :]:
        ax.axis("off")
    for i, (ax, r) in enumerate(zip(axes.flat, ordered)):
        counts = r.confusion().sum(axis=0)  # (K, K), summed over seeds
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        _heatmap(
            ax,
            share,
            counts,
            xlabels=genres if i // ncol == nrow - 1 else None,
            ylabels=genres if i % ncol == 0 else None,
        )
        ax.set_title(f"{setting_label(setting_of(r))}\n({r.summary.n_seeds} seed(s) summed)", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.supxlabel("predicted genre")
    fig.supylabel("true genre")
    fig.tight_layout()
    return fig


def per_genre_frame(results: list[CellResults]) -> pd.DataFrame:
    """Long table: setting, seed, genre, test recall (genres with no test track left out)."""
    rows = []
    for r in _ordered(results):
        for seed, accs in zip(r.seed_ids, r.per_genre_accuracy()):  # (K,) per seed
            rows += [dict(setting=setting_label(setting_of(r)), seed=seed, genre=g, acc=float(a))
                     for g, a in zip(r.genres, accs) if not np.isnan(a)]  # fmt: skip
    return pd.DataFrame(rows)


def per_genre_accuracy(results: list[CellResults]) -> plt.Figure:
    """Test accuracy per genre (recall), one bar per run, mean over seeds (whiskers: min–max)."""
    df = per_genre_frame(results)
    import seaborn as sns  # here, not at the top: the cell notebook's kernel need not import it (1.5 s)

    fig, ax = plt.subplots(figsize=(14, 4.8))
    sns.barplot(
        data=df, x="genre", y="acc", hue="setting", errorbar=("pi", 100), ax=ax, order=_ordered(results)[0].genres
    )
    ax.axhline(1 / 8, color="#888888", lw=1, ls="--", label="chance (1/8)")
    ax.set(ylabel="test accuracy (recall)", xlabel="", ylim=(0, 1))
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    return fig


# The verdicts' look in a forest plot, colour-blind safe (Okabe & Ito's palette) and told apart by marker
# too: a verdict for the claim (or an ablation that helps), against it (or one that hurts), neither.
VERDICT_STYLES = {
    "for": ("#0072B2", "o", "holds / helps"),
    "against": ("#D55E00", "X", "does not hold / hurts"),
    "neither": ("#7f7f7f", "s", "inconclusive / no clear effect"),
}


def verdict_style(verdict: str) -> str:
    """The VERDICT_STYLES key of a verdict or an ablation's effect."""
    if verdict.startswith(("holds", "helps")):
        return "for"
    return "against" if verdict.startswith(("does not hold", "hurts")) else "neither"


def forest(
    rows: list[dict], margin: float | None = None, xlabel: str = "difference in test accuracy, a − b"
) -> plt.Figure:
    """A forest plot: one row per comparison, top to bottom (rows: dicts of label, estimate, low, high and
    verdict), its estimate a point coloured and shaped by its verdict (`verdict_style`) with its interval
    as a bar; zero dashed and, given a `margin`, the band ±margin shaded."""
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.38 * len(rows)), layout="constrained")
    if margin is not None:
        ax.axvspan(-margin, margin, color="#e8e8e8", zorder=0, label=f"±{margin:g} margin")
    ax.axvline(0, color="#555555", ls="--", lw=1, zorder=1)
    y = np.arange(len(rows))
    for key, (color, marker, name) in VERDICT_STYLES.items():
        part = [(k, r) for k, r in enumerate(rows) if verdict_style(r["verdict"]) == key]
        if not part:
            continue
        est = np.array([r["estimate"] for _, r in part])
        bars = np.array([[r["estimate"] - r["low"], r["high"] - r["estimate"]] for _, r in part]).T  # (2, n)
        ax.errorbar(
            est, y[[k for k, _ in part]], xerr=bars, fmt=marker, color=color, ms=7, capsize=3, lw=1.4, label=name
        )
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#dddddd", lw=0.6)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=8, frameon=False)
    return fig

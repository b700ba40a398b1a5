"""The report's figures: the architecture drawn from the model itself, and the results.

* `architecture(cfg)` — Fig. 1, the general block diagram: one box per top-level layer
  of `fmareport.model.layer_table`, grouped into the paper's three blocks, with the
  residual shortcut where the layer table says it is.
* `first_layers(cfg)` — Fig. 2, the three first-layer variants (1D, 2D, 1D+2D): the
  parts of the first layer from the layer table, each labelled as the paper labels its
  convolutions, {features, (kernel), stride, padding}, with the shapes between them.
* `training_curves`, `confusion_matrices`, `per_genre_accuracy` — from results JSONs.
* `genre_examples` — a waveform and the model's own spectrogram of one clip per genre.

Every function returns a matplotlib Figure; `save(fig, path)` writes and closes it.
Nothing is hand-drawn: change the model and the figures change with it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FixedLocator, MaxNLocator

from ..config import Config
from ..data.audio import to_float
from ..inputs import INPUTS
from ..model import LayerRow, Spectrogram, layer_table
from ..results import CellResults
from .tables import setting_label, setting_of

# Fig. 1's grouping of layers into the paper's three blocks (§III), by layer kind.
BLOCKS = (
    ("Residual CNN block", ("first", "conv1d")),
    ("Max and average pooling", ("pool",)),
    ("Fully connected block", ("dense", "linear")),
)
BLOCK_COLORS = ("#dbe9f6", "#fdebd0", "#e2f0d9")
# The first layer's parts by LayerRow.kind: the spectrogram in each scale (model.Spectrogram), the convs.
PART_COLORS = {"stft": "#f4f4f4", "logstft": "#f4f4f4", "logmel": "#f4f4f4", "conv1d": "#dbe9f6", "conv2d": "#dbe9f6"}
PART_NAMES = {
    "stft": "|STFT| (Hann, centered)",
    "logstft": "log1p |STFT| (Hann, centered)",
    "logmel": "log-mel bands (Hann, centered)",
    "conv1d": "Conv1d",
    "conv2d": "Conv2d",
}


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


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(f"{d:,}" for d in shape) + ")"


def _tuple(t: tuple[int, ...] | None) -> str:
    return "—" if t is None else "(" + ", ".join(str(v) for v in t) + ")"


def conv_label(row: LayerRow, sep: str = " ") -> str:
    """The paper's Fig. 2 notation: {features, (kernel), stride, padding}."""
    return f"{{{row.features}, {_tuple(row.kernel)},{sep}{_tuple(row.stride)}, {_tuple(row.padding)}}}"


def _box(ax, x: float, y: float, w: float, h: float, text: str, color: str, fontsize: float = 9) -> None:
    """A rounded box centred on (x, y) with centred text."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.01,rounding_size=0.02",
            facecolor=color,
            edgecolor="#333333",
            linewidth=1.0,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(
    ax,
    xy_from: tuple[float, float],
    xy_to: tuple[float, float],
    text: str = "",
    connection: str = "arc3",
    fontsize: float = 8,
) -> None:
    ax.annotate(
        "",
        xy=xy_to,
        xytext=xy_from,
        arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1.0, connectionstyle=connection, shrinkA=0, shrinkB=0),
    )
    if text:
        ax.text(
            (xy_from[0] + xy_to[0]) / 2 + 0.01,
            (xy_from[1] + xy_to[1]) / 2,
            text,
            ha="left",
            va="center",
            fontsize=fontsize,
            color="#444444",
        )


def _block_of(row: LayerRow) -> int:
    for i, (_, kinds) in enumerate(BLOCKS):
        if row.kind in kinds:
            return i
    raise ValueError(f"layer {row.name!r} of kind {row.kind!r} belongs to none of Fig. 1's blocks")


def _layer_text(row: LayerRow) -> str:
    if row.kind == "first":
        return f"{row.name}\nfirst layer\n(input-specific,\nFig. 2)"
    if row.kind == "conv1d":
        return f"{row.name}\nConv1d\n" + conv_label(row, sep="\n")
    if row.kind == "pool":
        return f"{row.name}\nglobal max\n+ global mean"
    return f"{row.name}\nLinear\n{row.in_shape[0]} → {row.features}"


def _shortcut_source(row: LayerRow) -> str | None:
    """The layer whose output is added to this one's ('+ conv1' in the layer table's note)."""
    m = re.search(r"\+\s*([\w.]+)", row.note)
    return m.group(1) if m else None


def architecture(cfg: Config, n_samples: int | None = None) -> plt.Figure:
    """Fig. 1: the network's top-level layers, left to right, from `layer_table(cfg.model, cfg.window_samples)`.

    Boxes are the layers with their operation and output shape (batch dim dropped);
    shaded groups are the paper's three blocks; the curved arrow is the residual
    shortcut named in the layer table.
    """
    n = n_samples or cfg.window_samples
    rows = [r for r in layer_table(cfg.model, n, cfg.store.sample_rate) if r.depth == 0]
    k = len(rows)
    fig, ax = plt.subplots(figsize=(1.5 * (k + 1.3), 3.8))
    ax.set(xlim=(0, k + 1.3), ylim=(0, 1))
    ax.axis("off")
    xs = {r.name: i + 1.2 for i, r in enumerate(rows)}
    y, w, h = 0.45, 0.8, 0.4
    _blocks(ax, rows, xs, w)
    _box(ax, 0.35, y, 0.5, 0.22, f"input\nwaveform\n{_shape((n,))}", "white", fontsize=8)
    prev_x = 0.35 + 0.25
    for r in rows:
        x = xs[r.name]
        _box(ax, x, y, w, h, f"{_layer_text(r)}\n→ {_shape(r.out_shape)}", "white", fontsize=7.5)
        _arrow(ax, (prev_x, y), (x - w / 2, y))
        prev_x = x + w / 2
        source = _shortcut_source(r)
        if source in xs:
            ax.annotate(
                "",
                xy=(x, y - h / 2),
                xytext=(xs[source], y - h / 2),
                arrowprops=dict(
                    arrowstyle="-|>", color="#b03a2e", lw=1.3, connectionstyle="arc3,rad=0.4", shrinkA=0, shrinkB=0
                ),
            )
            ax.text(
                (x + xs[source]) / 2, 0.03, f"residual: + {source} output", ha="center", fontsize=8, color="#b03a2e"
            )
    _box(ax, k + 0.95, y, 0.4, 0.22, f"{rows[-1].features}\ngenres", "white", fontsize=8)
    _arrow(ax, (prev_x, y), (k + 0.75, y))
    total = sum(r.params for r in rows)
    ax.set_title(
        f"Fig. 1 — the network, {cfg.model.input} input, {n:,}-sample window "
        f"({total:,} parameters); each box: layer, operation, output shape",
        fontsize=10,
    )
    return fig


def _blocks(ax: plt.Axes, rows: list[LayerRow], xs: dict[str, float], w: float) -> None:
    """The paper's three blocks as shaded groups behind their layers (boxes of width `w` at `xs`)."""
    for b, (title, _) in enumerate(BLOCKS):
        members = [xs[r.name] for r in rows if _block_of(r) == b]
        if not members:
            continue
        left, right = min(members) - w / 2 - 0.06, max(members) + w / 2 + 0.06
        style = "round,pad=0,rounding_size=0.05"
        ax.add_patch(
            FancyBboxPatch((left, 0.16), right - left, 0.7, boxstyle=style, facecolor=BLOCK_COLORS[b], edgecolor="none")
        )
        text = title.replace(" and ", " and\n") if len(members) == 1 else title
        ax.text((left + right) / 2, 0.78, text, ha="center", va="center", fontsize=9, fontweight="bold")


def _branches(parts: list[LayerRow], n_samples: int) -> list[list[LayerRow]]:
    """Split the first layer's parts into parallel branches: a part fed the waveform starts one."""
    branches: list[list[LayerRow]] = []
    for p in parts:
        if math.prod(p.in_shape) == n_samples or not branches:
            branches.append([p])
        else:
            branches[-1].append(p)
    return branches


def first_layers(cfg: Config, n_samples: int | None = None) -> plt.Figure:
    """Fig. 2: the first layer for each input kind, drawn from `layer_table`.

    One panel per input (1D, 2D, 1D+2D). Each part of the first layer is a box labelled
    {features, (kernel), stride, padding} (kernel, stride, padding in samples, or in
    (bins, frames) for the 2D conv); arrows carry the shapes.
    """
    n = n_samples or cfg.window_samples
    kinds = list(INPUTS.values())
    widths = [k.panel_width for k in kinds]
    fig, axes = plt.subplots(1, len(kinds), figsize=(13, 6.5), gridspec_kw=dict(width_ratios=widths))
    for ax, kind in zip(axes, kinds):
        _first_layer_panel(ax, kind, layer_table(cfg.replace(input=kind.name).model, n, cfg.store.sample_rate), n)
    fig.suptitle(
        f"Fig. 2 — the three first layers, {{features, (kernel), stride, padding}}, "
        f"for a {n:,}-sample input (n_fft {cfg.model.n_fft}, hop {cfg.model.hop}); "
        f"all land on T = N // hop − 2 = {cfg.model.steps(n)} steps",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def _first_layer_panel(ax: plt.Axes, kind, rows: list[LayerRow], n: int) -> None:
    """One input kind's panel of Fig. 2: the waveform, each branch's parts top to bottom, the merge."""
    first = next(r for r in rows if r.kind == "first")
    branches = _branches([r for r in rows if r.depth == 1], n)
    depth = max(len(b) for b in branches)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    ax.set_title(f"{kind.label} input ({kind.name})", fontsize=11, fontweight="bold")
    top, bottom = 0.93, 0.1
    step = (top - bottom) / (depth + 1)
    _box(ax, 0.5, top, 0.5, 0.07, f"waveform {_shape((n,))}", "white")
    bw = min(0.9 / len(branches), 0.85)
    for i, branch in enumerate(branches):
        x = (i + 0.5) / len(branches)
        prev_y = top - 0.035
        for j, part in enumerate(branch):
            yj = top - (j + 1) * step
            _arrow(ax, (0.5 if j == 0 else x, prev_y), (x, yj + 0.06), _shape(part.in_shape) if j else "")
            text = f"{part.name}: {PART_NAMES.get(part.kind, part.kind)}\n{conv_label(part)}"
            _box(
                ax,
                x,
                yj,
                bw * 0.95,
                0.12,
                text,
                PART_COLORS.get(part.kind, "white"),
                fontsize=8.5 if len(branches) == 1 else 7.5,
            )
            prev_y = yj - 0.06
        _arrow(ax, (x, prev_y), (0.5, bottom + 0.05), _shape(branch[-1].out_shape))
    merge = "concatenate channels, " if len(branches) > 1 else ""
    squeeze = " (height 1 squeezed)" if any(len(s) == 3 for s in (b[-1].out_shape for b in branches)) else ""
    _box(
        ax,
        0.5,
        bottom,
        0.9,
        0.09,
        f"{first.name}: {merge}BN, ELU{squeeze}\n→ {_shape(first.out_shape)}; {first.params:,} parameters",
        "#fff2cc",
        fontsize=8.5,
    )


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


def genre_examples(clips: dict[str, tuple[int, np.ndarray]], cfg: Config) -> plt.Figure:
    """One clip per genre: its waveform and the spectrogram the model computes, in dB.

    `clips`: {genre: (track_id, int16 clip)}. The spectrogram is the model's own
    `Spectrogram(cfg.model.n_fft, cfg.model.hop)` (the network sees its linear magnitude; dB here
    only for the eye).
    """
    import torch

    stft = Spectrogram(cfg.model.n_fft, cfg.model.hop)
    fig, axes = plt.subplots(
        len(clips), 2, figsize=(12, 1.7 * len(clips)), squeeze=False, gridspec_kw=dict(width_ratios=[1, 1.3])
    )
    for (ax_w, ax_s), (genre, (track_id, clip)) in zip(axes, clips.items()):
        x = to_float(clip)
        seconds = len(x) / cfg.store.sample_rate
        # The min-max envelope over short bins draws the same picture as every sample, faster.
        bins = min(len(x), 4000)
        edges = np.linspace(0, len(x), bins + 1).astype(int)
        low, high = np.minimum.reduceat(x, edges[:-1]), np.maximum.reduceat(x, edges[:-1])
        ax_w.fill_between(edges[:-1] / cfg.store.sample_rate, low, high, color="#2e75b6", lw=0.3)
        ax_w.set(xlim=(0, seconds), ylim=(-1, 1), ylabel=genre)
        with torch.no_grad():
            spec = stft(torch.from_numpy(x)[None])[0].numpy()
        db = 20 * np.log10(np.maximum(spec, 1e-5 * max(spec.max(), 1e-12)))
        ax_s.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            extent=(0, len(x) / cfg.store.sample_rate, 0, cfg.store.sample_rate / 2000),
        )
        ax_s.set(ylabel="kHz")
        ax_w.text(0.995, 0.95, f"track {track_id}", transform=ax_w.transAxes, ha="right", va="top", fontsize=7)
    axes[0, 0].set_title("waveform (clip as stored)")
    axes[0, 1].set_title(f"|STFT| in dB (n_fft {cfg.model.n_fft}, hop {cfg.model.hop})")
    axes[-1, 0].set_xlabel("seconds")
    axes[-1, 1].set_xlabel("seconds")
    fig.tight_layout()
    return fig

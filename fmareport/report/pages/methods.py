"""The Methods page (book/pages/methods.md): the network drawn from the model itself (Fig. 1, Fig. 2:
`summary.layer_table` traces the real torch modules), the first layer's shapes, and the values its
protocol and its deviations from the paper's text name, at the paper's scale and in the page's profile.

Every drawing returns a matplotlib Figure; nothing is hand-drawn: change the model and they change with it.
"""

from __future__ import annotations

import math
import re

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import FancyBboxPatch

from ...config import Config
from ...data.audio import INT16_SCALE
from ...data.fma import FMA_SMALL_SPLITS, GENRES
from ...inputs import INPUTS
from ...summary import LayerRow, layer_table
from ..page import Page, glue, table

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


# --- the page's tables and values ----------------------------------------------------------------------


def layer_shapes(page: Page, paper: Config):
    """First-layer output (maps, steps) and parameters per input, for a whole clip and a segment, at
    the paper's scale and in the page's profile, from the layer table (id layer-shapes)."""
    rows = []
    for kind in INPUTS:
        for window in ("whole clip", "segment"):
            for name, c in {"paper": paper, page.profile: page.cfg}.items():
                n = c.store.clip_samples if window == "whole clip" else c.model.segment_samples
                layers = layer_table(c.replace(input=kind).model, n, c.store.sample_rate)
                rows.append(
                    {
                        "input": INPUTS[kind].label,
                        "window": window,
                        "profile": name,
                        "samples": f"{n:,}",
                        "first layer output": str(layers[0].out_shape),
                        "parameters": f"{sum(r.params for r in layers if r.depth == 0):,}",
                    }
                )
    caption = (
        f"First-layer output (maps, steps) and parameters at the paper's scale and in the '{page.profile}' "
        "profile that made this report's numbers, from the model's layer table."
    )
    return table(pd.DataFrame(rows).set_index(["input", "window", "profile"]), "layer-shapes", caption)


def glue_protocol(cfg: Config) -> None:
    """The numbers the training protocol names, in the page's profile."""
    glue(
        seeds=", ".join(map(str, cfg.schedule.seeds)),
        lr=cfg.train.lr,
        batch_size=cfg.train.batch_size,
        epochs=cfg.schedule.epochs,
        n_segments=cfg.n_segments,
        segment_samples=cfg.model.segment_samples,
        segment_overlap=cfg.model.segment_overlap,
    )


def glue_deviations(paper: Config, cfg: Config) -> None:
    """The numbers the deviations name: the paper's scale's (`paper_` names) and the page's profile's."""
    m, clip = paper.model, paper.store.clip_samples

    def first_part(kind: str, name: str) -> LayerRow:
        return next(r for r in layer_table(paper.replace(input=kind).model, clip) if r.name == name)

    import inspect

    import torch

    adam = inspect.signature(torch.optim.Adam).parameters  # train.start_seed sets the learning rate alone
    covered = m.segment_samples + (paper.n_segments - 1) * m.segment_hop  # the samples a segmented cell sees
    mel = paper.replace(spectrogram_scale="mel").model
    glue(
        paper_n_fft=m.n_fft,
        paper_n_bins=m.n_bins,
        paper_hop=m.hop,
        paper_conv1d=conv_label(first_part("raw", "conv1.raw")),
        paper_conv2d=conv_label(first_part("spectrogram", "conv1.spec")),
        paper_steps=m.steps(clip),
        paper_segment_steps=m.steps(m.segment_samples),
        paper_share_steps=round(m.steps(clip) / paper.n_segments),
        paper_epochs=paper.schedule.epochs,
        paper_batch=paper.train.batch_size,
        paper_batch_segments=paper.train.batch_size * paper.n_segments,
        paper_n_segments=paper.n_segments,
        paper_segment_samples=m.segment_samples,
        paper_segment_overlap=m.segment_overlap,
        paper_covered=covered,
        paper_clip=clip,
        paper_tail=clip - covered,
        paper_tail_seconds=(clip - covered) / paper.store.sample_rate,
        paper_rate=paper.store.sample_rate,
        paper_n_mels=mel.n_mels,
        paper_mel_share=mel.n_mels / m.n_bins,
        adam_betas=", ".join(map(str, adam["betas"].default)),
        adam_eps=float(adam["eps"].default),
        adam_weight_decay=float(adam["weight_decay"].default),
        fma_training=FMA_SMALL_SPLITS["training"],
        int16_scale=INT16_SCALE,
        clip_rule=cfg.store.clip_rule,
        min_clip_fraction=cfg.store.min_clip_fraction,
    )


def settings(c: Config) -> dict[str, str]:
    """A profile's data, scale and training settings, as the profile table shows them."""
    if c.data.source == "fma":
        data, split = "FMA-small", "80 / 10 / 10 % (FMA's)"
    else:
        data = f"synthetic ({c.synth.tracks_per_genre} tracks per genre)"
        test, val = c.synth.test_fraction, c.synth.validation_fraction
        split = " / ".join(f"{round(100 * f)}" for f in (1 - val - test, val, test)) + " %"
    return {
        "data": data,
        "split (training / validation / test)": split,
        "sample rate (Hz)": f"{c.store.sample_rate:,}",
        "clip (samples)": f"{c.store.clip_samples:,} ({c.store.clip_samples / c.store.sample_rate:.2f} s)",
        "n_fft / hop": f"{c.model.n_fft} / {c.model.hop}",
        "segment (samples)": f"{c.model.segment_samples:,} ({c.model.segment_samples / c.store.sample_rate:.2f} s), "
        f"{c.n_segments} per clip",
        "steps T (clip / segment)": f"{c.model.steps(c.store.clip_samples)} / {c.model.steps(c.model.segment_samples)}",
        "feature maps": str(c.model.channels),
        "dense widths": " → ".join(map(str, [2 * c.model.channels, *c.model.dense, len(GENRES)])),
        "epochs": str(c.schedule.epochs),
        "batch (clips)": str(c.train.batch_size),
        "learning rate": f"{c.train.lr:g}",
        "seeds": ", ".join(map(str, c.schedule.seeds)),
    }


def profile_scaling(page: Page, paper: Config):
    """The paper's settings beside the page's profile's, and whether each is the paper's (id profile-scaling)."""
    frame = pd.DataFrame({"paper": settings(paper), page.profile: settings(page.cfg)})
    if page.profile == "paper":
        frame = frame[["paper"]]
    else:
        frame["same as the paper"] = (frame["paper"] == frame[page.profile]).map({True: "yes", False: "no"})
    frame.index.name = "setting"
    return table(frame, "profile-scaling", f"The paper's scale against the '{page.profile}' profile.")

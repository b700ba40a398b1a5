"""The Data page (book/pages/data.md): the data set behind every number, its tracks per genre and
split, the tracks left out and why, and one clip per genre to see and hear."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from ...config import Config
from ...data.audio import to_float
from ...data.fma import FMA_SMALL_SPLITS, GENRES, SPLITS
from ...data.store import ClipStore
from ...errors import BookError
from ...model import Spectrogram
from ..page import Page, box, glue, player_table, table

SOURCES = {"synth": "synthetic, in FMA's format (fmareport synth)", "fma": "FMA (fmareport fetch)"}
CLIP_RULES = {"start": "its start", "center": "its middle"}


def facts(page: Page, store: ClipStore):
    """The data set behind every number: source, folder, store, rate, clip length and rules (id data-facts)."""
    cfg = page.cfg
    facts = pd.Series(
        {
            "data source": SOURCES[cfg.data.source],
            "data folder": cfg.run.data_dir,
            "subset": cfg.data.subset,
            "clip store": f"{store.path.name} (fingerprint {store.fingerprint})",
            "sample rate": f"{store.sample_rate:,} Hz",
            "clip length": f"{store.clip_samples:,} samples = {store.clip_samples / store.sample_rate:.2f} s",
            "which part of a longer track": CLIP_RULES[cfg.store.clip_rule],
            "shorter tracks": f"zero-padded if at least {cfg.store.min_clip_fraction:.0%} of a clip, else skipped",
            "tracks stored": f"{len(store.index):,}",
        },
        name="value",
    )
    return table(facts.to_frame(), "data-facts", "The data set behind every number of this report.")


def split_totals(page: Page, store: ClipStore) -> dict[str, int]:
    """Tracks per split in the store, {split: n}; BookError when a cell reports other counts (it ran on
    another version of the store)."""
    counts = store.index["split"].value_counts()
    totals = {s: int(counts.get(s, 0)) for s in SPLITS}
    for r in page.results.values():
        if (tracks := r.data.tracks.model_dump()) != totals:
            raise BookError(f"cell {r.cell} reports tracks {tracks}, the store holds {totals}")
    return totals


def counts(page: Page, store: ClipStore):
    """Tracks per genre (rows, with a total) and split (columns, with a total), after `split_totals` checks
    them against every cell's (id genre-split-counts); glues the split in % (`split_ours`, FMA-small's
    `split_fma`), the training tracks and the synthetic set's test share."""
    totals = split_totals(page, store)
    percent = lambda shares: "/".join(str(round(100 * shares[s] / sum(shares.values()))) for s in SPLITS)  # noqa: E731
    glue(split_ours=percent(totals), split_fma=percent(FMA_SMALL_SPLITS), split_training=totals["training"],
         synth_test_fraction=page.cfg.synth.test_fraction)  # fmt: skip
    index = store.index
    frame = pd.crosstab(index["genre"], index["split"]).reindex(index=list(GENRES), columns=list(SPLITS), fill_value=0)
    frame.loc["all genres"] = frame.sum()
    frame["all splits"] = frame.sum(axis=1)
    frame.index.name, frame.columns.name = "genre", None
    caption = "Tracks in the clip store per genre and split (what every cell trained and was tested on)."
    return table(frame, "genre-split-counts", caption)


def artists(store: ClipStore) -> None:
    """Display the artists of each split (id artists-per-split) and, when an artist has tracks in more
    than one split, a warning naming each such artist with its tracks and their splits; a line when
    the store records no artists."""
    index = store.index
    if "artist_id" not in index:
        display(Markdown("The clip store records no artists: the intervals resample single tracks."))
        return
    splits = index.groupby("artist_id")["split"].nunique()
    crossing = splits.index[splits > 1]
    frame = pd.DataFrame(
        {
            "artists": [index.loc[index["split"] == s, "artist_id"].nunique() for s in SPLITS],
            "tracks": [int((index["split"] == s).sum()) for s in SPLITS],
        },
        index=pd.Index(list(SPLITS), name="split"),
    )
    caption = (
        f"Artists and tracks per split in the clip store; {len(crossing)} artist(s) have tracks in more than one split."
    )
    display(table(frame, "artists-per-split", caption))
    if len(crossing):
        lines = [
            f"artist {a}: "
            + ", ".join(f"{t:06d} ({s})" for t, s in index.loc[index["artist_id"] == a, ["track_id", "split"]].itertuples(index=False))
            for a in crossing
        ]  # fmt: skip
        display(Markdown(box("Artists in more than one split", "; ".join(lines))))


# The store manifest's lists of tracks left out: (key, table id, caption with {n}, the line when there are none).
LEFT_OUT = (
    ("dropped", "dropped-tracks", "{n} tracks of tracks.csv left out of the subset, and why.", "No track was dropped."),
    ("skipped", "skipped-tracks", "{n} tracks of the subset are not in the store, and why.", "No track was skipped."),
    ("decoder_notes", "decoder-notes", "{n} tracks whose file the decoder reported on while decoding it.",
     "The decoder reported nothing."),
)  # fmt: skip


def left_out(store: ClipStore) -> None:
    """Display the dropped and skipped tracks and the decoder's notes, from the store's manifest, by
    FMA's 6-digit track id; a line where a list is empty."""
    for key, table_id, caption, empty in LEFT_OUT:
        frame = pd.DataFrame(store.manifest.get(key, []))
        if frame.empty:
            display(Markdown(empty))
            continue
        frame["track_id"] = frame["track_id"].map("{:06d}".format)  # FMA's own spelling of ids
        display(table(frame.set_index("track_id"), table_id, caption.format(n=len(frame))))


def examples(store: ClipStore) -> dict[str, tuple[int, np.ndarray]]:
    """The first training clip of each genre the store holds: {genre: (track_id, int16 clip)}."""
    index = store.index.reset_index(drop=True)  # row i describes store.audio[i]
    out = {}
    for genre in GENRES:
        rows = index.index[(index["split"] == "training") & (index["genre"] == genre)]
        if len(rows):
            out[genre] = (int(index.loc[rows[0], "track_id"]), store.audio[rows[0]])
    return out


def examples_figure(clips: dict[str, tuple[int, np.ndarray]], cfg: Config) -> plt.Figure:
    """One row per genre of `clips` ({genre: (track_id, int16 clip)}): its waveform, and the |STFT| the
    model computes (`model.Spectrogram`: the network sees its linear magnitude; dB here for the eye)."""
    import torch

    stft, rate = Spectrogram(cfg.model.n_fft, cfg.model.hop), cfg.store.sample_rate
    fig, axes = plt.subplots(len(clips), 2, figsize=(12, 1.7 * len(clips)), squeeze=False,
                             gridspec_kw=dict(width_ratios=[1, 1.3]))  # fmt: skip
    for (ax_w, ax_s), (genre, (track_id, clip)) in zip(axes, clips.items()):
        x = to_float(clip)  # (N,) float32 in [-1, 1]
        # The min-max envelope over short bins draws the same picture as every sample, faster.
        edges = np.linspace(0, len(x), min(len(x), 4000) + 1).astype(int)
        low, high = np.minimum.reduceat(x, edges[:-1]), np.maximum.reduceat(x, edges[:-1])
        ax_w.fill_between(edges[:-1] / rate, low, high, color="#2e75b6", lw=0.3)
        ax_w.set(xlim=(0, len(x) / rate), ylim=(-1, 1), ylabel=genre)
        ax_w.text(0.995, 0.95, f"track {track_id}", transform=ax_w.transAxes, ha="right", va="top", fontsize=7)
        with torch.no_grad():
            spec = stft(torch.from_numpy(x)[None])[0].numpy()  # (bins, frames)
        db = 20 * np.log10(np.maximum(spec, 1e-5 * max(spec.max(), 1e-12)))
        ax_s.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(0, len(x) / rate, 0, rate / 2000))
        ax_s.set(ylabel="kHz")
    axes[0, 0].set_title("waveform (clip as stored)")
    axes[0, 1].set_title(f"|STFT| in dB (n_fft {cfg.model.n_fft}, hop {cfg.model.hop})")
    axes[-1, 0].set_xlabel("seconds")
    axes[-1, 1].set_xlabel("seconds")
    fig.tight_layout()
    return fig


def players(clips: dict[str, tuple[int, np.ndarray]], sample_rate: int):
    """One row per genre: the track and a player of its clip's first seconds (id audio-players)."""
    rows = [{"genre": genre, "track": f"{track_id:06d}"} for genre, (track_id, _) in clips.items()]
    caption = "The first seconds of each genre's example clip, as the store holds it."
    return player_table(rows, [clip for _, clip in clips.values()], sample_rate, "audio-players", caption)

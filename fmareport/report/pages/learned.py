"""The Learned page (book/pages/learned.md): what a cell keeps (fmareport.weights; docs/contracts.md "Kept
weights and embeddings") and its test predictions, drawn for a reader: the first layer's filters, the most
confident mistakes to hear, each genre's accuracy per input, t-SNE maps of the embeddings. "Best" and
"worst" are among the table cells with a current run, by mean test accuracy. Each shows its output, or a
line saying what is missing, so a book of some cells still builds.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from ...data.fma import GENRES
from ...errors import BookError, ConfigError
from ...inputs import INPUTS
from ...results import CellResults, ResultsError, results_path
from ...weights import load_embeddings, load_weights
from .. import filters as filters_mod
from .. import stats
from ..compare import artists_of, same_tracks, seeds_shared, setting_label, setting_of
from ..figures import show
from ..page import Page, box, clip_store, code_block, glue, interval_text, player_table, table

# What the mistakes show: per cell, this many most-confused (true, predicted) pairs with this many
# tracks each, and this many of the tracks every cell gets wrong, each with a player of PLAYER_SECONDS
# (page.py: 5 s, 210 kB of base64 at 16 kHz): 2 cells x 3 x 2 + 4 = 16 players, 3.4 MB at most.
MISTAKE_PAIRS = 3
MISTAKES_PER_PAIR = 2
ALL_WRONG_PLAYERS = 4
# The per-genre comparison: Table 1's cells of each input (no dropout) on segments, the paper's
# better window for every input; and the differences it shows, each paired on the same tracks.
PER_GENRE_SEGMENTED = True
PER_GENRE_COMPARISONS = (("spectrogram", "raw"), ("both", "spectrogram"), ("both", "raw"))
ALL_GENRES = "all genres"
# t-SNE (van der Maaten & Hinton, JMLR 2008) through sklearn.manifold.TSNE: perplexity 30, its
# default (the paper advises 5 to 50), clipped to (N - 1) / 3 for N points (scikit-learn needs it
# below N, and its Barnes-Hut search takes 3 x perplexity neighbours): 1 for the smoke profile's 4
# test tracks. A fixed random_state and PCA initialisation: the same map on every build.
TSNE_PERPLEXITY = 30.0
TSNE_SEED = 0
MIN_MAP_TRACKS = 4  # fewer test tracks than this make no map
MAP_INPUTS = ("raw", "spectrogram")  # the maps and filters of the best 1D and the best 2D cell
FIRST_LAYER = {"raw": "conv1.raw.weight", "spectrogram": "conv1.spec.weight"}


# --- which cells ----------------------------------------------------------------------------------


def ranked_cells(page: Page) -> list[CellResults]:
    """The table cells with a current run (page.runs: no ablation), best mean test accuracy first
    (ties: by cell name)."""
    return sorted(page.runs.values(), key=lambda r: (-r.summary.test_acc_last_mean, r.cell))


def best_and_worst(page: Page) -> dict[str, CellResults]:
    """{"best": ..., "worst": ...} of `ranked_cells`; one entry when one table cell ran, none when none did."""
    cells = ranked_cells(page)
    return {} if not cells else {"best": cells[0]} if len(cells) == 1 else {"best": cells[0], "worst": cells[-1]}


def best_of_input(page: Page, kind: str) -> CellResults | None:
    """The table cell of input `kind` with the best mean test accuracy; None when none of them ran."""
    return next((r for r in ranked_cells(page) if r.config.model.input == kind), None)


def cell_label(result: CellResults) -> str:
    """'table1/raw_segmented (1D input, segmented)'."""
    return f"{result.cell} ({setting_label(setting_of(result))})"


def not_run(page: Page, kind: str) -> Markdown:
    """What a section says when no table cell of input `kind` has a current run."""
    return Markdown(
        f"No {INPUTS[kind].label} cell of the paper's tables has a current run in profile `{page.profile}` "
        "(the Results page lists every cell and its status)."
    )


def kept(loader: Callable, result: CellResults, results_dir: str | Path) -> tuple[object | None, str | None]:
    """(what `loader` (load_weights, load_embeddings) reads for `result`, None), or (None, why not):
    the ResultsError naming the file and the rerun (results written before the kept files, a file
    missing or not the one the results name)."""
    try:
        return loader(results_path(results_dir, result.profile, result.cell), result), None
    except ResultsError as err:
        return None, str(err)


def missing_note(result: CellResults, why: str) -> Markdown:
    """A warning box: what `result` lacks, in the loader's words (shown as they are: page.box)."""
    return Markdown(box(f"{result.cell}: nothing to draw", why))


# --- first-layer filters ------------------------------------------------------------------------------


def glue_rules() -> None:
    """The numbers the page's text on filter peaks names (report.filters)."""
    glue(
        clear_peak_db=filters_mod.CLEAR_PEAK_DB,
        mel_bands=filters_mod.MEL_BANDS,
        mel_band_share=1 / filters_mod.MEL_BANDS,
    )


def filters(page: Page, results_dir: str | Path, kind: str) -> None:
    """Display the best `kind` table cell's first-layer filters at initialisation and learned
    (filters.learned_filters, from its kept weights: the first seed's), or what is missing."""
    result = best_of_input(page, kind)
    if result is None:
        display(not_run(page, kind))
        return
    weights, why = kept(load_weights, result, results_dir)
    if weights is None:
        display(missing_note(result, why))
        return
    display(Markdown(f"**{cell_label(result)}**, seed {weights['seed']}:"))
    show(filters_mod.learned_filters(weights, result.config))


def peaks(page: Page, results_dir: str | Path):
    """The peaks of the best 1D and the best 2D cell's learned filters in numbers (filters.peak_facts,
    id filter-peaks): one row per cell whose weights could be read."""
    rows = {}
    for kind in MAP_INPUTS:
        result = best_of_input(page, kind)
        weights = None if result is None else kept(load_weights, result, results_dir)[0]
        if weights is None:
            continue
        key = FIRST_LAYER[kind]
        learned, initial = (filters_mod.branch_responses(weights[w], result.config)[key] for w in ("final", "initial"))
        rows[cell_label(result)] = filters_mod.peak_facts(learned, initial, result.config.store.sample_rate)
    if not rows:
        return Markdown("No cell's weights to read.")
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "cell"
    caption = "The first layer's learned filters of the best 1D and the best 2D cell (their first seed), in numbers."
    return table(frame, "filter-peaks", caption)


# --- the network on a track --------------------------------------------------------------------------


def predict_example(page: Page, results_dir: str | Path) -> None:
    """Show `fmareport predict` on the best table cell's first test track: the command and what it prints
    (fmareport.predict), or what is missing (the cell's weights, the track's file)."""
    from ... import predict
    from ...config import REPO_ROOT
    from ...data.fma import audio_path

    cells = best_and_worst(page)
    if not cells:
        display(Markdown(f"No cell of the paper's tables has a current run in profile `{page.profile}`."))
        return
    result = cells["best"]
    track = audio_path(result.config.run.data_dir, result.test.track_ids[0], result.config.data.subset)
    # A relative data_dir is the runs' working directory's (the one holding the results), else the repo's.
    where = next((d for d in (Path(results_dir).resolve().parent, REPO_ROOT) if (d / track).is_file()), REPO_ROOT)
    try:
        network = predict.network_of(results_path(results_dir, result.profile, result.cell), result)
        with contextlib.chdir(where):
            out = predict.text(predict.predict_files(network, [track]), network)
    except (ResultsError, ConfigError) as err:
        display(missing_note(result, str(err)))
        return
    command = f"fmareport predict {track} --profile {page.profile} --cell {result.cell}"
    display(Markdown(f"{code_block(command, 'bash')}\n\n{code_block(out)}"))


# --- mistakes ----------------------------------------------------------------------------------------


def wrong_predictions(result: CellResults) -> pd.DataFrame:
    """Every wrong test prediction of every seed: one row per (seed, track) whose argmax is not its
    label (the confusion matrix's off-diagonal counts). Columns: track_id, true, predicted (label
    indices), probability (that seed's probability of the predicted genre), seed."""
    probs, pred = result.probs, result.predicted  # (S, N, K), (S, N)
    labels, ids = np.asarray(result.test.labels), np.asarray(result.test.track_ids)
    s, n = np.nonzero(pred != labels)  # seed-major, as the rows of each seed in track order
    return pd.DataFrame(
        {
            "track_id": ids[n],
            "true": labels[n],
            "predicted": pred[s, n],
            "probability": probs[s, n, pred[s, n]],
            "seed": np.asarray(result.seed_ids)[s],
        }
    )


def confident_mistakes(
    result: CellResults, pairs: int = MISTAKE_PAIRS, per_pair: int = MISTAKES_PER_PAIR
) -> pd.DataFrame:
    """The `pairs` most-confused (true, predicted) genre pairs of a cell, the largest off-diagonal
    counts of its confusion matrices summed over seeds (as the Results page draws them; ties in label
    order), and in each the `per_pair` tracks whose wrong prediction was most confident (the highest
    probability a seed gave that wrong genre; a track once, at that seed). One row per track shown:
    pair (1: the most confused), confusions (the pair's count over seeds), track_id, true and
    predicted (genre names), probability, seed, seeds_wrong ("k of S", whatever genre they said)."""
    wrong = wrong_predictions(result)
    columns = ["pair", "confusions", "track_id", "true", "predicted", "probability", "seed", "seeds_wrong"]
    if wrong.empty:
        return pd.DataFrame(columns=columns)
    counts = wrong.groupby(["true", "predicted"]).size().reset_index(name="confusions")
    top = counts.sort_values(["confusions", "true", "predicted"], ascending=[False, True, True]).head(pairs)
    picked = []
    for rank, pair in enumerate(top.itertuples(), start=1):
        rows = wrong[(wrong["true"] == pair.true) & (wrong["predicted"] == pair.predicted)]
        rows = rows.sort_values(["probability", "track_id"], ascending=[False, True]).drop_duplicates("track_id")
        picked.append(rows.head(per_pair).assign(pair=rank, confusions=pair.confusions))
    out = pd.concat(picked, ignore_index=True)
    seeds_wrong = wrong.groupby("track_id").size()
    out["seeds_wrong"] = [f"{seeds_wrong[t]} of {len(result.seeds)}" for t in out["track_id"]]
    out["true"] = [GENRES[i] for i in out["true"]]
    out["predicted"] = [GENRES[i] for i in out["predicted"]]
    return out[columns]


def all_wrong(page: Page) -> pd.DataFrame:
    """The test tracks that every seed of every table cell with a current run gets wrong: track_id,
    true (genre), taken_for (the genre those predictions gave most often), share (of the predictions
    that gave it), predictions (cells x seeds), in track order. BookError when the cells were tested on
    different tracks (they ran on different data)."""
    cells = sorted(page.runs.values(), key=lambda r: r.cell)
    columns = ["track_id", "true", "taken_for", "share", "predictions"]
    if not cells:
        return pd.DataFrame(columns=columns)
    ids, labels = np.asarray(cells[0].test.track_ids), np.asarray(cells[0].test.labels)
    for r in cells:
        same_tracks(cells[0], r)
    preds = np.concatenate([r.predicted for r in cells])  # (P, N): every seed of every cell
    every = np.flatnonzero((preds != labels).all(axis=0))  # (M,) tracks no prediction got right
    rows = []
    for n in every:
        values, counts = np.unique(preds[:, n], return_counts=True)
        top = int(np.argmax(counts))  # the most frequent (the lowest label on a tie)
        share = f"{counts[top]} of {len(preds)}"
        rows.append(dict(zip(columns, (int(ids[n]), GENRES[labels[n]], GENRES[values[top]], share, len(preds)))))
    return pd.DataFrame(rows, columns=columns)


def clips_of(store, track_ids) -> list[np.ndarray]:
    """The int16 clips (clip_samples,) of `track_ids` in the clip store; BookError naming a track the
    store does not hold (the results ran on another store)."""
    index = pd.Index(store.index["track_id"].to_numpy())
    rows = index.get_indexer(list(track_ids))
    if (rows < 0).any():
        missing = [int(t) for t, r in zip(track_ids, rows) if r < 0]
        raise BookError(f"tracks {missing} are not in the clip store {store.path}: the results ran on another store")
    return [store.audio[r] for r in rows]


def _mistake_rows(frame: pd.DataFrame) -> list[dict[str, str]]:
    """The mistakes' rows as the page shows them."""
    return [
        {
            "track": f"{r.track_id:06d}",
            "pair": f"{r.pair}: {r.true} → {r.predicted} ({r.confusions}×)",
            "true genre": r.true,
            "predicted": r.predicted,
            "probability": f"{r.probability:.3f}",
            "seed": str(r.seed),
            "seeds wrong": r.seeds_wrong,
        }
        for r in frame.itertuples(index=False)
    ]


def mistakes(page: Page, results_dir: str | Path) -> None:
    """Display, for the best and the worst table cell, its most confident mistakes with a player of each
    clip (`confident_mistakes`; ids mistakes-best, mistakes-worst), or why there are none."""
    cells = best_and_worst(page)
    if not cells:
        display(Markdown(f"No cell of the paper's tables has a current run in profile `{page.profile}`."))
        return
    store = clip_store(page, results_dir)
    for which, result in cells.items():
        frame = confident_mistakes(result)
        said = (
            f"The {which} table cell: {cell_label(result)}, mean test accuracy {result.summary.test_acc_last_mean:.3f} "
            f"over {len(result.seeds)} seed(s)"
        )
        if frame.empty:
            display(Markdown(f"{said}: every seed got every test track right, no mistake to hear."))
            continue
        caption = (
            f"{said}: its most confident wrong test predictions in its {frame['pair'].max()} most confused genre pairs "
            f"(true → predicted, with the pair's count over its {len(result.seeds)} seed(s)); the probability is that "
            "seed's for the genre it predicted."
        )
        clips = clips_of(store, frame["track_id"])
        display(player_table(_mistake_rows(frame), clips, store.sample_rate, f"mistakes-{which}", caption))


def all_wrong_tracks(page: Page, results_dir: str | Path) -> None:
    """Display the tracks every seed of every table cell gets wrong (`all_wrong`): the first
    ALL_WRONG_PLAYERS with a player (id all-wrong), or a line when there are none."""
    frame = all_wrong(page)
    inputs = sorted({INPUTS[r.config.model.input].label for r in page.runs.values()})
    said = (
        f"{len(frame)} of the {page.n_test} test tracks are wrong in every prediction of the {len(page.runs)} "
        f"table cells that ran (inputs {', '.join(inputs) or 'none'}; every seed of each)"
    )
    if frame.empty:
        display(Markdown(said + "."))
        return
    shown = frame.head(ALL_WRONG_PLAYERS)
    store = clip_store(page, results_dir)
    rows = [
        {"track": f"{r.track_id:06d}", "true genre": r.true, "taken for": r.taken_for, "in": f"{r.share} predictions"}
        for r in shown.itertuples(index=False)
    ]
    caption = (
        said
        + (f"; the first {len(shown)}" if len(frame) > len(shown) else "")
        + ", and the genre each is taken for most often."
    )
    display(player_table(rows, clips_of(store, shown["track_id"]), store.sample_rate, "all-wrong", caption))


# --- per genre, the three inputs on the same tracks -------------------------------------------------------


def per_genre_cells(page: Page, segmented: bool = PER_GENRE_SEGMENTED) -> dict[str, CellResults]:
    """Table 1's cells (no dropout) of each input on `segmented` windows that have a current run,
    {input kind: result}, in INPUTS order."""
    return {k: page.runs[(k, segmented, 0.0)] for k in INPUTS if (k, segmented, 0.0) in page.runs}


def genre_groups(result: CellResults) -> dict[str, np.ndarray]:
    """{genre: (N,) bool mask of its test tracks} for the genres with test tracks (label order), then
    {ALL_GENRES: every track}."""
    labels = np.asarray(result.test.labels)
    groups = {g: labels == i for i, g in enumerate(GENRES) if (labels == i).any()}
    return groups | {ALL_GENRES: np.ones(len(labels), dtype=bool)}


def _clusters(result: CellResults, mask: np.ndarray) -> tuple[np.ndarray | None, int]:
    """The artists of the tracks in `mask` (None when the result records none) and how many units
    the interval resamples (artists, else tracks): with fewer than 2 it has no degrees of freedom."""
    artists = artists_of(result)
    if artists is None:
        return None, int(mask.sum())
    return artists[mask], len(np.unique(artists[mask]))


def per_genre_accuracy(cells: dict[str, CellResults]) -> pd.DataFrame:
    """Each genre's test accuracy per input, long: group (genre or ALL_GENRES), input (label), estimate,
    low, high (stats.accuracy_interval over the group's tracks, clustered by artist, and the seeds; NaN
    when the group has fewer than 2 artists), tracks, artists."""
    rows = []
    for kind, result in cells.items():
        correct = result.correct  # (S, N)
        for group, mask in genre_groups(result).items():
            clusters, units = _clusters(result, mask)
            i = stats.accuracy_interval(correct[:, mask], clusters=clusters) if units >= 2 else None
            low, high = (i.low, i.high) if i is not None else (math.nan, math.nan)
            rows.append(dict(group=group, input=INPUTS[kind].label, estimate=float(correct[:, mask].mean()),
                             low=low, high=high, tracks=int(mask.sum()), artists=units))  # fmt: skip
    return pd.DataFrame(rows)


def per_genre_differences(cells: dict[str, CellResults]) -> pd.DataFrame:
    """Each genre's paired difference a − b for PER_GENRE_COMPARISONS of inputs that ran, long: group,
    comparison ('2D − 1D'), estimate, low, high (stats.paired_difference over the group's tracks,
    clustered by artist, seeds paired when compare.seeds_shared; NaN under 2 artists). BookError when two
    cells were tested on different tracks."""
    rows = []
    for a_kind, b_kind in PER_GENRE_COMPARISONS:
        if a_kind not in cells or b_kind not in cells:
            continue
        a, b = cells[a_kind], cells[b_kind]
        same_tracks(a, b)
        ca, cb = a.correct, b.correct  # (S, N) each
        name = f"{INPUTS[a_kind].label} − {INPUTS[b_kind].label}"
        for group, mask in genre_groups(a).items():
            clusters, units = _clusters(a, mask)
            estimate = float(ca[:, mask].mean() - cb[:, mask].mean())
            low = high = math.nan
            if units >= 2:
                i = stats.paired_difference(ca[:, mask], cb[:, mask], seeds_shared(a, b), clusters=clusters)
                estimate, low, high = i.estimate, i.low, i.high
            rows.append(dict(group=group, comparison=name, estimate=estimate, low=low, high=high))
    return pd.DataFrame(rows, columns=["group", "comparison", "estimate", "low", "high"])


def _dots(ax: plt.Axes, frame: pd.DataFrame, by: str, groups: list[str]) -> None:
    """Points with horizontal interval bars, one row per group (y) and one dodged series per `by`."""
    series = list(dict.fromkeys(frame[by]))
    offsets = np.linspace(-0.24, 0.24, len(series)) if len(series) > 1 else np.zeros(1)
    for offset, name in zip(offsets, series):
        part = frame[frame[by] == name]
        y = np.array([groups.index(g) for g in part["group"]]) + offset
        bars = np.nan_to_num(np.stack([part["estimate"] - part["low"], part["high"] - part["estimate"]]))  # (2, n)
        ax.errorbar(part["estimate"], y, xerr=bars, fmt="o", ms=5, capsize=2.5, lw=1.2, label=name)
    ax.set_yticks(range(len(groups)), groups)
    ax.set_ylim(len(groups) - 0.5, -0.5)  # the first genre on top, ALL_GENRES at the bottom
    ax.grid(axis="x", color="#dddddd", lw=0.6)


def per_genre_figure(accuracy: pd.DataFrame, differences: pd.DataFrame) -> plt.Figure:
    """Left: each genre's test accuracy per input (point: over seeds and tracks; bar: its 95 %
    interval), chance dashed; right (when two inputs ran): the paired differences per genre with their
    intervals, zero dashed. Rows: the genres in label order, then ALL_GENRES. Axes: 1 or 2."""
    groups = list(dict.fromkeys(accuracy["group"]))
    panels = 2 if not differences.empty else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 1.6 + 0.45 * len(groups)), sharey=True,
                             squeeze=False, layout="constrained")  # fmt: skip
    _dots(axes[0, 0], accuracy, "input", groups)
    axes[0, 0].axvline(1 / len(GENRES), color="#888888", ls="--", lw=1)
    axes[0, 0].set(xlabel="test accuracy per genre (chance 1/8 dashed)")
    axes[0, 0].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    if panels == 2:
        _dots(axes[0, 1], differences, "comparison", groups)
        axes[0, 1].axvline(0, color="#888888", ls="--", lw=1)
        axes[0, 1].set(xlabel="difference in test accuracy, paired on the genre's tracks")
        axes[0, 1].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    return fig


def per_genre_table(accuracy: pd.DataFrame, differences: pd.DataFrame) -> pd.DataFrame:
    """One row per genre (then ALL_GENRES): each input's accuracy and each paired difference with their
    intervals, and the tracks (artists) behind them."""
    acc = accuracy.assign(text=[interval_text(r) for r in accuracy.itertuples()])
    table = acc.pivot(index="group", columns="input", values="text")[list(dict.fromkeys(acc["input"]))]
    if not differences.empty:
        diff = differences.assign(text=[interval_text(r, signed=True) for r in differences.itertuples()])
        wide = diff.pivot(index="group", columns="comparison", values="text")
        table = table.join(wide[list(dict.fromkeys(diff["comparison"]))])
    units = accuracy.drop_duplicates("group").set_index("group")
    table["test tracks (artists)"] = [f"{units.tracks[g]} ({units.artists[g]})" for g in table.index]
    table = table.loc[list(dict.fromkeys(accuracy["group"]))]
    table.index.name, table.columns.name = "genre", None
    return table


def per_genre(page: Page, what: str) -> None:
    """Display the per-genre comparison of the three inputs (`per_genre_cells`): `what` "figure" or
    "table" (id per-genre); a line on what is missing."""
    cells = per_genre_cells(page)
    lacking = [INPUTS[k].label for k in INPUTS if k not in cells]
    if not cells or (lacking and what == "figure"):
        window = "segmented" if PER_GENRE_SEGMENTED else "whole-clip"
        display(Markdown(f"No current run of the {window} Table 1 cell of {', '.join(lacking)} input: "
                         "the comparison shows the others (the Results page lists every cell's status)."))  # fmt: skip
    if not cells:
        return
    accuracy, differences = per_genre_accuracy(cells), per_genre_differences(cells)
    if what == "figure":
        show(per_genre_figure(accuracy, differences))
        return
    n = differences["low"].notna().sum() + accuracy["low"].notna().sum()
    caption = (
        "Test accuracy per genre of " + ", ".join(cell_label(r) for r in cells.values()) + ", and the differences "
        f"paired on the same tracks, with {stats.CONFIDENCE:.0%} intervals over the genre's artists and the seeds "
        f"(profile {page.profile}). These {n} intervals are each at {stats.CONFIDENCE:.0%} on its own, not adjusted "
        "for their number: they describe, they do not test."
    )
    display(table(per_genre_table(accuracy, differences), "per-genre", caption))


# --- embedding maps ---------------------------------------------------------------------------------------


def tsne_map(embeddings: np.ndarray, seed: int = TSNE_SEED) -> np.ndarray:
    """t-SNE coordinates of `embeddings` (N, D) -> (N, 2): sklearn.manifold.TSNE with PCA
    initialisation, `seed`, perplexity min(TSNE_PERPLEXITY, (N - 1) / 3). Runs on one thread
    (threadpoolctl, scikit-learn's own dependency): 640 x 150 took 2.3-4.4 s on one core of this 2-core
    machine under load, and 17-30 s with its 2 OpenMP threads competing with another process."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(embeddings, dtype=np.float32)
    if len(x) < MIN_MAP_TRACKS:
        raise ValueError(f"a t-SNE map needs {MIN_MAP_TRACKS} points or more, not {len(x)}")
    perplexity = min(TSNE_PERPLEXITY, (len(x) - 1) / 3)
    with threadpool_limits(1):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def embedding_figure(maps: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> plt.Figure:
    """One panel per map (title, xy (N, 2), labels (N,) label indices, right (N,) bool): each test track
    a dot coloured by its true genre, a cross where the seed predicted it wrong; one legend."""
    fig, axes = plt.subplots(1, len(maps), figsize=(5.6 * len(maps) + 1.6, 5.2), squeeze=False, layout="constrained")
    palette = dict(zip(GENRES, sns.color_palette("tab10", len(GENRES))))
    for ax, (title, xy, labels, right) in zip(axes[0], maps):
        frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "genre": [GENRES[i] for i in labels],
                              "prediction": np.where(right, "right", "wrong")})  # fmt: skip
        sns.scatterplot(data=frame, x="x", y="y", hue="genre", hue_order=list(GENRES), palette=palette,
                        style="prediction", style_order=["right", "wrong"], markers={"right": "o", "wrong": "X"},
                        s=26, alpha=0.85, linewidth=0.2, ax=ax, legend=ax is axes[0, -1])  # fmt: skip
        ax.set(title=title, xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    return fig


def embedding_maps(page: Page, results_dir: str | Path) -> None:
    """Display the t-SNE maps (`tsne_map`) of the first seed's test-set embeddings (the seed whose weights
    are kept) of the best 1D and the best 2D table cell side by side, then what is missing, if anything."""
    maps, notes = [], []
    for kind in MAP_INPUTS:
        result = best_of_input(page, kind)
        if result is None:
            notes.append(not_run(page, kind))
            continue
        embeddings, why = kept(load_embeddings, result, results_dir)
        if embeddings is None:
            notes.append(missing_note(result, why))
            continue
        seed, n = result.seed_ids[0], len(result.test.track_ids)
        if n < MIN_MAP_TRACKS:
            notes.append(Markdown(f"{result.cell}: {n} test tracks, too few for a map."))
            continue
        labels, right = np.asarray(result.test.labels), result.correct[0]
        maps.append((f"{cell_label(result)}\nseed {seed}", tsne_map(embeddings.of_seed(seed)), labels, right))
    if maps:
        show(embedding_figure(maps))
    display(*notes)

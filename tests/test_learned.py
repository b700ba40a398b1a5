"""The page "What the networks learned" (fmareport.report.pages.learned): on hand-made results
(tests/fakes.py) for exact numbers, and on three tiny cells trained end to end for the kept files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import hashlib  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fakes import cell_result, of_probs  # noqa: E402

from fmareport.config import Config  # noqa: E402
from fmareport.data.fma import GENRES  # noqa: E402
from fmareport.experiment import run_cell  # noqa: E402
from fmareport.report import compare, stats  # noqa: E402
from fmareport.report.page import Page, player_table  # noqa: E402
from fmareport.report.pages import learned  # noqa: E402
from fmareport.weights import embeddings_path  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def page_of(results: list, cfg=None) -> Page:
    """A Page over these results (their cells' names as keys)."""
    by_cell = {r.cell: r for r in results}
    return Page(results[0].profile, by_cell, compare.index_runs(results), cfg or results[0].config, [])


def shown(monkeypatch) -> list:
    """What the page functions display (Markdown, HTML, figures), in order, instead of displaying it."""
    out = []
    monkeypatch.setattr(learned, "display", lambda *objs: out.extend(objs))
    monkeypatch.setattr(learned, "show", out.append)
    return out


def text(objs) -> str:
    return "\n".join(o.data for o in objs if hasattr(o, "data"))


# --- the tiny trained cells ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tiny_config, tiny_store, tmp_path_factory):
    """Table 1's three segmented cells on the tiny store, two seeds of one epoch each, run end to end:
    (results_dir, Page). The store's 4 test tracks are of 4 genres, each of its own artist."""
    tmp = tmp_path_factory.mktemp("learned")
    results = []
    for kind in ("raw", "spectrogram", "both"):
        cfg = tiny_config.replace(
            cell=f"table1/{kind}_segmented", input=kind, segmented=True, n_fft=256, hop=128,
            segment_samples=2048, channels=8, epochs=1, seeds=[0, 1], deterministic=True,
            results_dir=str(tmp / "results"), build_dir=str(tmp / "build"),
        )  # fmt: skip
        results.append(run_cell(cfg, progress=False))
    return tmp / "results", page_of(results)


def test_the_filters_of_the_best_1d_and_2d_cells_are_drawn_with_their_numbers(trained, monkeypatch):
    results_dir, page = trained
    out = shown(monkeypatch)
    learned.filters(page, results_dir, "raw")
    learned.filters(page, results_dir, "spectrogram")
    figures = [o for o in out if isinstance(o, plt.Figure)]
    assert len(figures) == 2 and [len(f.axes) for f in figures] == [3, 3]  # initial, learned, colour bar
    said = text(out)
    assert "**table1/raw_segmented (1D input, segmented)**, seed 0:" in said
    assert "**table1/spectrogram_segmented (2D input, segmented)**, seed 0:" in said
    for f in figures:
        plt.close(f)
    peaks = learned.peaks(page, results_dir).data
    assert 'id="filter-peaks"' in peaks and "table1/raw_segmented (1D input, segmented)" in peaks
    assert " of 8 (" in peaks  # the 1D row: the tiny net's 8 filters with a clear peak, learned and initial
    assert "— (2D: every peak counts)" in peaks  # the 2D row


def test_the_mistakes_of_the_best_and_worst_cell_play_their_clips(trained, tiny_store, monkeypatch):
    results_dir, page = trained
    out = shown(monkeypatch)
    learned.mistakes(page, results_dir)
    cells = learned.best_and_worst(page)
    assert list(cells) == ["best", "worst"] and cells["best"] is learned.ranked_cells(page)[0]
    said = text(out)
    for which, result in cells.items():
        frame = learned.confident_mistakes(result)
        assert f"The {which} table cell: {learned.cell_label(result)}, mean test accuracy" in said
        if frame.empty:
            continue
        html = next(o.data for o in out if f'id="mistakes-{which}"' in getattr(o, "data", ""))
        assert f"The {which} table cell: {learned.cell_label(result)}" in html  # its caption
        assert html.count("<audio controls") == len(frame) and html.count("data:audio/wav;base64,") == len(frame)
        assert all(f"{t:06d}" in html for t in frame["track_id"])


def test_the_maps_show_the_best_1d_and_2d_cells_first_seed(trained, monkeypatch):
    results_dir, page = trained
    out = shown(monkeypatch)
    learned.embedding_maps(page, results_dir)
    (fig,) = out  # one figure, nothing missing
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [
        "table1/raw_segmented (1D input, segmented)\nseed 0",
        "table1/spectrogram_segmented (2D input, segmented)\nseed 0",
    ]
    assert [len(ax.collections[0].get_offsets()) for ax in fig.axes[:2]] == [4, 4]  # the 4 test tracks
    plt.close(fig)


def test_kept_files_missing_or_refused_are_said_not_drawn(trained, tmp_path, monkeypatch):
    """Results written before embeddings were kept, a tampered embeddings file, a cell not run: a note
    each, naming the file and the rerun, and the rest drawn."""
    import shutil

    results_dir, page = trained
    copy = tmp_path / "results"
    shutil.copytree(results_dir, copy)
    path = embeddings_path(copy / "tiny" / "table1" / "spectrogram_segmented.json")
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    older = page.results["table1/raw_segmented"].model_copy(update={"embeddings_sha1": None})
    spec = page.results["table1/spectrogram_segmented"]
    out = shown(monkeypatch)
    learned.embedding_maps(page_of([older, spec]), copy)
    said = text(out)
    assert not any(isinstance(o, plt.Figure) for o in out)
    assert "names no embeddings file (written before embeddings were kept)" in said
    assert "spectrogram_segmented.embeddings.npz: not the embeddings" in said and "SHA1 differs" in said
    assert "fmareport run --profile tiny --cell table1/raw_segmented" in said
    out.clear()
    learned.embedding_maps(page_of([page.results["table1/both_segmented"]]), copy)  # no 1D, no 2D cell ran
    assert text(out).count("cell of the paper's tables has a current run in profile `tiny`") == 2


# --- which cells, from hand-made results --------------------------------------------------------------


def test_cells_are_ranked_by_mean_test_accuracy_among_the_table_cells():
    raw = cell_result("raw", accs=[0.5, 0.6], profile="p")
    spec = cell_result("spectrogram", accs=[0.7, 0.8], profile="p")
    both = cell_result("both", accs=[0.6, 0.6], profile="p")
    ablation = cell_result("spectrogram", accs=[0.9, 0.9], profile="p", cell="abl", base="x", spectrogram_scale="log")
    page = page_of([raw, spec, both, ablation])
    assert [r.cell for r in learned.ranked_cells(page)] == [spec.cell, both.cell, raw.cell]  # no ablation
    assert learned.best_and_worst(page) == {"best": spec, "worst": raw}
    assert learned.best_and_worst(page_of([raw])) == {"best": raw}
    assert learned.best_of_input(page, "raw") is raw and learned.best_of_input(page_of([raw]), "both") is None


# --- mistakes -------------------------------------------------------------------------------------------


def probs_of(pred: list[int], confidence: list[float]) -> np.ndarray:
    """(N, 8) rows putting `confidence` on genre pred[n] and the rest evenly on the others."""
    p = np.tile(((1 - np.asarray(confidence)) / 7)[:, None], (1, 8))
    p[np.arange(len(pred)), pred] = confidence
    return p


def test_confident_mistakes_are_the_surest_of_the_most_confused_pairs():
    labels = [0, 0, 0, 0, 1, 1, 2, 3]
    cfg = Config(profile="p", cell="table1/raw_whole", seeds=[5, 6], epochs=1, input="raw")
    # seed 5: tracks 0-2 (Electronic) taken for Folk (2) at 0.6, 0.9, 0.7; track 4 (Experimental) for Rock
    # seed 6: track 0 for Folk at 0.95, track 3 for Folk at 0.5; track 5 for Rock; the rest right
    seed5 = probs_of([2, 2, 2, 0, 7, 1, 2, 3], [0.6, 0.9, 0.7, 0.8, 0.4, 0.8, 0.8, 0.8])
    seed6 = probs_of([2, 0, 0, 2, 1, 7, 2, 3], [0.95, 0.8, 0.8, 0.5, 0.8, 0.3, 0.8, 0.8])
    result = of_probs(cfg, labels, [seed5, seed6])
    frame = learned.confident_mistakes(result, pairs=2, per_pair=2)
    assert frame["pair"].tolist() == [1, 1, 2, 2] and frame["confusions"].tolist() == [5, 5, 2, 2]
    assert frame["track_id"].tolist() == [0, 1, 4, 5]  # track 0 at seed 6's 0.95, then 1 at 0.9
    assert frame["seed"].tolist() == [6, 5, 5, 6] and frame["probability"].tolist() == [0.95, 0.9, 0.4, 0.3]
    assert frame["true"].tolist() == ["Electronic", "Electronic", "Experimental", "Experimental"]
    assert frame["predicted"].tolist() == ["Folk", "Folk", "Rock", "Rock"]
    assert frame["seeds_wrong"].tolist() == ["2 of 2", "1 of 2", "1 of 2", "1 of 2"]
    three = learned.confident_mistakes(result, per_pair=3)  # 2 pairs only: track 2 (0.7) joins the first
    assert three["track_id"].tolist() == [0, 1, 2, 4, 5]
    right = of_probs(cfg, labels, [probs_of(labels, [0.8] * 8)] * 2)
    assert learned.confident_mistakes(right).empty


def test_the_tracks_every_seed_of_every_cell_gets_wrong():
    labels = [0, 1, 2, 3]
    raw = of_probs(Config(profile="p", cell="table1/raw_whole", seeds=[0, 1], epochs=1, input="raw"), labels,
                   [probs_of([1, 1, 0, 3], [0.9] * 4), probs_of([1, 1, 2, 3], [0.9] * 4)])  # fmt: skip
    spec = of_probs(Config(profile="p", cell="table1/spectrogram_whole", seeds=[0], epochs=1, input="spectrogram"),
                    labels, [probs_of([2, 1, 0, 0], [0.9] * 4)])  # fmt: skip
    frame = learned.all_wrong(page_of([raw, spec]))
    # track 0: wrong in all 3 predictions (1, 1, 2); track 2 right once; track 3 right twice
    assert frame.to_dict("records") == [
        {"track_id": 0, "true": "Electronic", "taken_for": "Experimental", "share": "2 of 3", "predictions": 3}
    ]


def test_a_player_table_escapes_its_text_and_plays_each_clip():
    clip = np.zeros(800, np.int16)
    html = player_table([{"genre": "<Rock>"}], [clip], 8000, "t", "a & b").data
    assert "&lt;Rock&gt;" in html and "<caption>a &amp; b</caption>" in html and html.count("<audio") == 1
    assert '<th scope="row">&lt;Rock&gt;</th>' in html  # the first column heads its row
    with pytest.raises(ValueError, match="1 rows for 2 clips"):
        player_table([{"genre": "Rock"}], [clip, clip], 8000, "t", "c")


# --- per genre -------------------------------------------------------------------------------------------


def three_inputs(n: int = 400, seeds: int = 3, artists: bool = True) -> dict:
    """Table 1's segmented cells of the three inputs on n tracks (labels n % 8, artists of 4 tracks),
    right at random with rates 0.5, 0.6, 0.7."""
    rng = np.random.default_rng(0)
    who = np.arange(n) // 4 if artists else None
    return {
        kind: cell_result(kind, segmented=True, correct=rng.random((seeds, n)) < rate, artists=who, profile="p")
        for kind, rate in (("raw", 0.5), ("spectrogram", 0.6), ("both", 0.7))
    }


def test_per_genre_accuracy_and_differences_are_the_tables_intervals_on_each_genres_tracks():
    cells = three_inputs()
    accuracy, differences = learned.per_genre_accuracy(cells), learned.per_genre_differences(cells)
    groups = [*GENRES, learned.ALL_GENRES]
    assert accuracy.shape == (27, 7) and differences.shape == (27, 5)  # 9 groups x 3 inputs / comparisons
    assert accuracy["group"].tolist() == groups * 3 and accuracy["tracks"].tolist() == ([50] * 8 + [400]) * 3
    labels = np.arange(400) % 8
    artists = np.arange(400) // 4
    raw, spec = cells["raw"].correct, cells["spectrogram"].correct
    folk = labels == GENRES.index("Folk")
    row = accuracy[(accuracy["group"] == "Folk") & (accuracy["input"] == "1D")].iloc[0]
    i = stats.accuracy_interval(raw[:, folk], clusters=artists[folk])
    assert (row.estimate, row.low, row.high, row.tracks, row.artists) == (i.estimate, i.low, i.high, 50, 50)
    d = differences[(differences["group"] == "Folk") & (differences["comparison"] == "2D − 1D")].iloc[0]
    j = stats.paired_difference(spec[:, folk], raw[:, folk], same_seeds=False, clusters=artists[folk])
    assert (d.estimate, d.low, d.high) == (j.estimate, j.low, j.high)
    # All genres together: the Results page's interval of the cell, and its paired comparison.
    whole = accuracy[(accuracy["group"] == learned.ALL_GENRES) & (accuracy["input"] == "1D")].iloc[0]
    every = compare.accuracy_interval(cells["raw"])
    assert (whole.estimate, whole.low, whole.high) == (every.estimate, every.low, every.high)
    c = compare.compare(cells["spectrogram"], cells["raw"])
    d = differences[(differences["group"] == learned.ALL_GENRES) & (differences["comparison"] == "2D − 1D")].iloc[0]
    assert (d.estimate, d.low, d.high) == (c["diff"], c["low"], c["high"])
    table = learned.per_genre_table(accuracy, differences)
    assert table.index.tolist() == groups
    assert table.columns.tolist() == [
        "1D",
        "2D",
        "1D+2D",
        "2D − 1D",
        "1D+2D − 2D",
        "1D+2D − 1D",
        "test tracks (artists)",
    ]
    assert table.loc["Folk", "1D"] == f"{i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]"
    assert table.loc["Folk", "2D − 1D"] == f"{j.estimate:+.3f} [{j.low:+.3f}, {j.high:+.3f}]"
    assert table.loc["Folk", "test tracks (artists)"] == "50 (50)" and table.loc["all genres"].iloc[-1] == "400 (100)"
    fig = learned.per_genre_figure(accuracy, differences)
    assert len(fig.axes) == 2 and [t.get_text() for t in fig.axes[0].get_yticklabels()] == groups
    plt.close(fig)


def test_a_genre_of_one_artist_has_no_interval_and_a_missing_input_no_comparison():
    cells = three_inputs(n=16, seeds=2)  # 2 tracks per genre: 4 artists of 4 tracks, each across genres
    cells = {k: cells[k] for k in ("raw", "spectrogram")}
    single = cell_result("raw", segmented=True, correct=np.ones((2, 16), bool), artists=[0] * 16, profile="p")
    accuracy = learned.per_genre_accuracy({"raw": single})
    assert accuracy["low"].isna().all() and accuracy["artists"].tolist() == [1] * 9  # one artist: no df
    assert learned.per_genre_differences({"raw": single}).empty
    table = learned.per_genre_table(accuracy, learned.per_genre_differences({"raw": single}))
    assert table.loc["Folk", "1D"] == "1.000 [—]" and table.columns.tolist() == ["1D", "test tracks (artists)"]
    fig = learned.per_genre_figure(accuracy, learned.per_genre_differences({"raw": single}))
    assert len(fig.axes) == 1
    plt.close(fig)
    assert learned.per_genre_differences(cells)["comparison"].unique().tolist() == ["2D − 1D"]


def test_the_per_genre_section_names_an_input_that_did_not_run(monkeypatch):
    cells = three_inputs(n=80, seeds=2)
    out = shown(monkeypatch)
    learned.per_genre(page_of([cells["raw"], cells["both"]]), "figure")
    learned.per_genre(page_of([cells["raw"], cells["both"]]), "table")
    said = text(out)
    assert "No current run of the segmented Table 1 cell of 2D input" in said
    assert 'id="per-genre"' in said and "1D+2D − 1D" in said and "2D − 1D" not in said.replace("1D+2D − 1D", "")
    assert sum(isinstance(o, plt.Figure) for o in out) == 1
    plt.close("all")


# --- t-SNE -------------------------------------------------------------------------------------------------


def test_tsne_maps_any_test_set_of_four_tracks_or_more_the_same_each_time():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (10, 150)), rng.normal(8, 1, (10, 150))]).astype(np.float16)
    xy = learned.tsne_map(x)
    assert xy.shape == (20, 2) and np.array_equal(xy, learned.tsne_map(x))
    far = np.linalg.norm(xy[:10].mean(0) - xy[10:].mean(0))
    near = max(
        np.linalg.norm(xy[:10] - xy[:10].mean(0), axis=1).max(), np.linalg.norm(xy[10:] - xy[10:].mean(0), axis=1).max()
    )
    assert far > near  # two clusters far apart in 150 dimensions stay apart on the map
    assert learned.tsne_map(x[:4]).shape == (4, 2)  # the smoke profile's 4 test tracks: perplexity 1
    with pytest.raises(ValueError, match="needs 4 points or more, not 3"):
        learned.tsne_map(x[:3])
    fig = learned.embedding_figure([("a", xy, np.arange(20) % 8, np.arange(20) % 3 > 0)])
    assert len(fig.axes) == 1 and fig.axes[0].get_legend() is not None
    plt.close(fig)


def test_the_sha1_check_is_what_refuses_a_tampered_file(trained):
    """The note above comes from the SHA1 (fmareport.weights.kept_bytes), not from a file that fails to parse."""
    results_dir, page = trained
    r = page.results["table1/raw_segmented"]
    path = embeddings_path(results_dir / "tiny" / "table1" / "raw_segmented.json")
    assert hashlib.sha1(path.read_bytes()).hexdigest() == r.embeddings_sha1
    embeddings, why = learned.kept(learned.load_embeddings, r, results_dir)
    assert why is None and embeddings.values.shape == (2, 4, 150)

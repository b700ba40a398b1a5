"""What every page starts from (fmareport.report.page) and the pages' own checks: a page lays out, and
what can fail fails here, with a message naming what differs. The book test (test_book.py) renders them all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fakes import of_config

from fmareport.config import Config
from fmareport.errors import BookError
from fmareport.report import book
from fmareport.report.page import Page, clip_store, glue, html_table, tags
from fmareport.report.pages import data
from fmareport.report.runs import RunStatus
from fmareport.results import CellResults


def page_of(results: dict[str, CellResults], cfg) -> Page:
    """A Page over hand-made results (tests/fakes.py)."""
    return Page("tiny", results, {}, cfg, [])


def ran_on(store, cell="table1/raw_whole", fingerprint=None, tracks=None, path=None) -> CellResults:
    """A result that ran on `store` (or claims another path, fingerprint or track counts); 4 test tracks."""
    data = {
        "store": path or str(store.path),
        "store_fingerprint": fingerprint or store.fingerprint,
        "tracks": tracks or {"training": 32, "validation": 4, "test": 4},
    }
    return of_config(Config(profile="tiny", cell=cell), correct=[np.arange(4) % 2 == 0], data=data)


def test_clip_store_opens_the_one_store_the_cells_ran_on(tiny_store, tiny_config):
    page = page_of({"a": ran_on(tiny_store, "a"), "b": ran_on(tiny_store, "b")}, tiny_config)
    store = clip_store(page, "results")
    assert store.fingerprint == tiny_store.fingerprint and len(store.index) == 40


def test_clip_store_refuses_cells_on_different_stores(tiny_store, tiny_config):
    other = ran_on(tiny_store, "b", fingerprint="f00", path="/elsewhere/store")
    page = page_of({"a": ran_on(tiny_store, "a"), "b": other}, tiny_config)
    with pytest.raises(BookError, match="cells of profile 'tiny' ran on different clip stores: .*elsewhere"):
        clip_store(page, "results")


def test_clip_store_refuses_a_store_rebuilt_since_the_runs(tiny_store, tiny_config):
    page = page_of({"a": ran_on(tiny_store, "a", fingerprint="f00")}, tiny_config)
    with pytest.raises(BookError, match=f"has fingerprint {tiny_store.fingerprint}, but the results ran on f00"):
        clip_store(page, "results")


def test_track_counts_are_the_stores_or_the_page_fails(tiny_store, tiny_config):
    good = page_of({"a": ran_on(tiny_store, "a")}, tiny_config)
    assert data.split_totals(good, tiny_store) == {"training": 32, "validation": 4, "test": 4}
    counts = data.counts(good, tiny_store).data
    assert 'id="genre-split-counts"' in counts and "<td>40</td>" in counts  # all genres, all splits
    bad = page_of({**good.results, "b": ran_on(tiny_store, "b", tracks={"training": 30, "validation": 4, "test": 4})},
                  tiny_config)  # fmt: skip
    with pytest.raises(BookError, match="cell b reports tracks .*'training': 30.*the store holds .*'training': 32"):
        data.split_totals(bad, tiny_store)
    with pytest.raises(BookError, match="cell b reports tracks"):
        data.counts(bad, tiny_store)


def test_a_table_has_one_header_row_row_headers_and_escaped_text():
    frame = pd.DataFrame(
        {"value": ["<b onmouseover=alert(1)>", 0.5, np.nan]}, index=pd.Index(["a", "b`c", "d"], name="fact")
    )
    html = html_table(frame, "facts", "A <caption> & more")
    assert html.count("<tr>") == 4 and html.count("<thead>") == 1  # one header row, three data rows
    assert '<thead><tr><th scope="col">fact</th><th scope="col">value</th></tr></thead>' in html
    assert '<th scope="row">b`c</th><td>0.5</td>' in html and "<td>—</td>" in html  # NaN shows as a dash
    assert "<b onmouseover" not in html and "&lt;b onmouseover=alert(1)&gt;" in html
    assert "<caption>A &lt;caption&gt; &amp; more</caption>" in html
    two = pd.DataFrame(
        {"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("x", "p"), ("x", "q")], names=["claim", "test"])
    )
    assert html_table(two, "t", "c").count('<th scope="row">x</th>') == 2  # every row names its keys


def test_glue_takes_text_and_python_numbers(monkeypatch):
    import myst_nb

    glued = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.append((name, value, display)))
    glue(n=np.int64(3), share=np.float64(0.5), name="smoke")
    assert glued == [("n", 3, False), ("share", 0.5, False), ("name", "smoke", False)]
    assert [type(v) for _, v, _ in glued] == [int, float, str]  # their text reads back as a number
    with pytest.raises(TypeError, match="glue 'frame': DataFrame is not text or a number"):
        glue(frame=pd.DataFrame())


def test_the_tags_say_the_data_the_scale_and_the_missing_cells():
    synth = of_config(Config(profile="demo", cell="table1/raw_whole"))
    assert tags({"table1/raw_whole": synth}, [RunStatus("table1/raw_whole", "current")]) == {"synthetic"}
    fma = of_config(Config(profile="paper", cell="table1/raw_whole"), data={"source": "fma"})
    statuses = [RunStatus("table1/raw_whole", "current"), RunStatus("table1/raw_segmented", "not run")]
    assert tags({"table1/raw_whole": fma}, statuses) == {"fma", "paper_scale", "cells_missing"}
    diverged = [RunStatus("table1/raw_whole", "current", diverged=(0,))]
    assert "cells_missing" in tags({"table1/raw_whole": synth}, diverged)
    mixed = {"a": synth, "b": of_config(Config(profile="demo", cell="b"), data={"source": "fma"})}
    with pytest.raises(BookError, match="profile 'demo' mixes data sources \\['fma', 'synth'\\]"):
        tags(mixed, [RunStatus("a", "current"), RunStatus("b", "current")])


def test_the_page_list_is_the_tocs_and_every_page_has_its_source_and_module():
    from importlib import import_module

    pages = book.book_pages()
    assert pages[0] == "intro" and len(pages) == len(set(pages)) == 8
    for name in pages:
        assert (book.REPO_ROOT / book.SOURCE_DIR / f"{name}.md").is_file(), name
        import_module(f"fmareport.report.pages.{name}")  # its module, named as the page


def test_the_data_page_counts_each_splits_artists_and_names_one_in_two_splits(tiny_store, monkeypatch):
    from types import SimpleNamespace

    shown = []
    monkeypatch.setattr(data, "display", lambda *objs: shown.extend(objs))
    data.artists(tiny_store)  # the synthetic set: every artist in one split
    (counts,) = shown
    index = tiny_store.index
    assert f"<td>{index.loc[index['split'] == 'test', 'artist_id'].nunique()}</td>" in counts.data
    assert "0 artist(s) have tracks in more than one split" in counts.data
    moved = index.copy()
    row = moved.index[moved["split"] == "test"][0]
    moved.loc[row, "artist_id"] = moved.loc[moved["split"] == "training", "artist_id"].iloc[0]  # now in two splits
    shown.clear()
    data.artists(SimpleNamespace(index=moved))
    assert "1 artist(s) have tracks in more than one split" in shown[0].data
    artist, track = moved.loc[row, "artist_id"], moved.loc[row, "track_id"]
    assert (
        f"artist {artist}: " in shown[1].data and f"{track:06d} (test)" in shown[1].data and "warning" in shown[1].data
    )
    shown.clear()
    data.artists(SimpleNamespace(index=index.drop(columns="artist_id")))
    assert shown[0].data == "The clip store records no artists: the intervals resample single tracks."


def test_a_box_and_a_code_block_show_their_text_as_it_is():
    from fmareport.report.page import box, code_block

    text = "data `x`</p><script>alert(1)</script> ::: {admonition}"
    shown = box("a <b>title</b>", text, "danger")
    assert shown.startswith(":::{admonition} <span>a &lt;b&gt;title&lt;/b&gt;</span>\n:class: danger\n<p>")
    assert "<script>" not in shown and "&lt;/p&gt;&lt;script&gt;" in shown and shown.endswith("</p>\n:::\n")
    block = code_block("a ``` b ```` c", "bash")
    assert block.startswith("`````bash\n") and block.endswith("\n`````")  # longer than any run of backticks inside
    assert code_block("plain").startswith("```text\n")


def test_the_data_page_lists_the_tracks_left_out_by_fmas_six_digit_id(monkeypatch):
    from types import SimpleNamespace

    shown = []
    monkeypatch.setattr(data, "display", lambda *objs: shown.extend(objs))
    manifest = {"dropped": [{"track_id": 2, "reason": "unknown_subset"}], "skipped": []}
    data.left_out(SimpleNamespace(manifest=manifest))
    dropped, skipped, notes = shown
    assert "1 tracks of tracks.csv left out" in dropped.data and "000002" in dropped.data
    assert "unknown_subset" in dropped.data
    assert skipped.data == "No track was skipped." and notes.data == "The decoder reported nothing."

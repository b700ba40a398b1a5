"""The page functions' checks (fmareport.report.pages): a page only lays out, and what can fail
fails here, with a message naming what differs. The book test (test_book.py) renders them all."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import of_config

from fmareport.config import Config
from fmareport.report import pages
from fmareport.report.book import BookError, Page
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
    store = pages.clip_store(page, "results")
    assert store.fingerprint == tiny_store.fingerprint and len(store.index) == 40


def test_clip_store_refuses_cells_on_different_stores(tiny_store, tiny_config):
    other = ran_on(tiny_store, "b", fingerprint="f00", path="/elsewhere/store")
    page = page_of({"a": ran_on(tiny_store, "a"), "b": other}, tiny_config)
    with pytest.raises(BookError, match="cells of profile 'tiny' ran on different clip stores: .*elsewhere"):
        pages.clip_store(page, "results")


def test_clip_store_refuses_a_store_rebuilt_since_the_runs(tiny_store, tiny_config):
    page = page_of({"a": ran_on(tiny_store, "a", fingerprint="f00")}, tiny_config)
    with pytest.raises(BookError, match=f"has fingerprint {tiny_store.fingerprint}, but the results ran on f00"):
        pages.clip_store(page, "results")


def test_track_counts_are_the_stores_or_the_page_fails(tiny_store, tiny_config):
    good = {"a": ran_on(tiny_store, "a")}
    assert pages.split_totals(tiny_store, good) == {"training": 32, "validation": 4, "test": 4}
    counts = pages.genre_split_counts(page_of(good, tiny_config), tiny_store).data
    assert 'id="genre-split-counts"' in counts and "<td>40</td>" in counts  # all genres, all splits
    bad = {**good, "b": ran_on(tiny_store, "b", tracks={"training": 30, "validation": 4, "test": 4})}
    with pytest.raises(BookError, match="cell b reports tracks .*'training': 30.*the store holds .*'training': 32"):
        pages.split_totals(tiny_store, bad)
    with pytest.raises(BookError, match="cell b reports tracks"):
        pages.genre_split_counts(page_of(bad, tiny_config), tiny_store)


def test_track_table_names_tracks_by_fmas_ids_or_says_there_are_none():
    table = pages.track_table([{"track_id": 2, "reason": "too short"}], "skipped-tracks", "{n} tracks.", "None.")
    assert 'id="skipped-tracks"' in table.data and "000002" in table.data and "1 tracks." in table.data
    assert pages.track_table([], "skipped-tracks", "{n} tracks.", "None.").data == "None."

"""FMA facts: genre names and ids, paths, and reading tracks.csv / genres.csv in the real format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fmareport.data.fma import COLUMNS, GENRE_IDS, GENRES, TracksError, audio_path, load_genres, load_tracks
from fmareport.data.synth import TrackMeta, tracks_table

# Rows printed by the FMA authors' usage notebook (shared/data/fma_real/README.md); the artist ids
# as their creation notebook prints raw_tracks.csv: AWOL 1 (tracks 2, 3, 5), Nicky Cook 4, Kurt Vile 6.
REAL_ROWS = [
    TrackMeta(2, "small", "training", "Hip-Hop", [21], artist_id=1, duration=168, bit_rate=256000),
    TrackMeta(3, "medium", "training", "Hip-Hop", [21], artist_id=1, duration=237, bit_rate=256000),
    TrackMeta(5, "small", "training", "Hip-Hop", [21], artist_id=1, duration=206, bit_rate=256000),
    TrackMeta(10, "small", "training", "Pop", [10], artist_id=6, duration=161, bit_rate=192000),
    TrackMeta(
        20,
        "large",
        "training",
        None,
        [76, 103],
        genres_all=[17, 10, 76, 103],
        artist_id=4,
        duration=311,
        bit_rate=256000,
    ),
]


def test_genres_in_label_order():
    assert GENRES == ("Electronic", "Experimental", "Folk", "Hip-Hop", "Instrumental", "International", "Pop", "Rock")
    assert list(GENRES) == sorted(GENRES)
    assert set(GENRE_IDS) == set(GENRES)


def test_audio_path(tmp_path):
    assert audio_path(tmp_path, 2) == tmp_path / "fma_small" / "000" / "000002.mp3"
    assert audio_path(tmp_path, 155066) == tmp_path / "fma_small" / "155" / "155066.mp3"
    assert audio_path(tmp_path, 98565, "medium") == tmp_path / "fma_medium" / "098" / "098565.mp3"


def test_real_genres_csv(fma_real):
    genres = load_genres(fma_real / "fma_metadata" / "genres.csv")
    assert len(genres) == 163
    assert genres.index.name == "genre_id"
    for title, gid in GENRE_IDS.items():  # our ids are the official top-level genres
        assert genres.loc[gid, "title"] == title
        assert genres.loc[gid, "parent"] == 0 and genres.loc[gid, "top_level"] == gid
    assert genres.loc[76, "top_level"] != 76  # a sub-genre points to its root


def test_real_track_2_decodes(fma_real):
    x, rate = sf.read(fma_real / "fma_small" / "000" / "000002.mp3", dtype="float32")
    assert rate == 44100
    assert x.shape == (1_321_967, 2)
    assert 0.1 < np.abs(x).max() < 1.01  # mp3 decoding overshoots full scale a little: prepare clips


def test_tracks_csv_real_format(tmp_path):
    path = tmp_path / "tracks.csv"
    tracks_table(REAL_ROWS).to_csv(path)
    head = path.read_text().splitlines()[:3]  # FMA's three header rows
    assert head[0].startswith(",album,album,") and head[0].endswith(",track")
    assert head[1].startswith(",comments,date_created,date_released,")
    assert head[2] == "track_id" + "," * 52

    tracks = load_tracks(path)
    assert list(tracks.columns) == COLUMNS and len(COLUMNS) == 52
    assert [len(tracks[top].columns) for top in ("album", "artist", "set", "track")] == [13, 17, 2, 20]
    assert list(tracks.index) == [2, 3, 5, 10, 20]
    assert tracks.loc[20, ("track", "genres_all")] == [17, 10, 76, 103]
    assert tracks.loc[2, ("track", "genres")] == [21]
    assert tracks.loc[2, ("track", "tags")] == []
    assert pd.isna(tracks.loc[20, ("track", "genre_top")])
    assert tracks.loc[10, ("track", "bit_rate")] == 192000
    assert pd.api.types.is_datetime64_any_dtype(tracks["track", "date_created"])
    assert tracks["artist", "id"].dtype == np.int64
    assert tracks["artist", "id"].to_dict() == {2: 1, 3: 1, 5: 1, 10: 6, 20: 4}  # AWOL's three tracks: one artist

    subset = tracks["set", "subset"]
    assert subset.cat.ordered and list(subset.cat.categories) == ["small", "medium", "large"]
    small, medium, large = (set(tracks.index[subset <= s]) for s in ("small", "medium", "large"))
    assert small == {2, 5, 10}
    assert medium == {2, 3, 5, 10}
    assert large == {2, 3, 5, 10, 20}
    assert small < medium < large


@pytest.mark.parametrize("value", [np.nan, "AWOL", 1.5, 0])
def test_a_track_without_an_artist_id_is_refused_naming_row_and_column(tmp_path, value):
    """The unit the report resamples on FMA is the artist: a track with no artist id cannot be placed."""
    table = tracks_table(REAL_ROWS)
    table[("artist", "id")] = table[("artist", "id")].astype(object)
    table.loc[10, ("artist", "id")] = value
    path = tmp_path / "tracks.csv"
    table.to_csv(path)
    with pytest.raises(
        TracksError, match=r"tracks.csv: data row 4 \(track_id 10\), column \('artist', 'id'\): .* is not an artist id"
    ):
        load_tracks(path)


def test_tracks_csv_wrong_format_is_refused(tmp_path):
    path = tmp_path / "tracks.csv"
    tracks_table(REAL_ROWS).drop(columns=[("track", "bit_rate")]).to_csv(path)
    with pytest.raises(ValueError, match=r"tracks.csv.*missing \[\('track', 'bit_rate'\)\]"):
        load_tracks(path)

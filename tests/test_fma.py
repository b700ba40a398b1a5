"""FMA facts: genre names and ids, paths, and reading tracks.csv / genres.csv / features.csv in the real format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fmareport.data.fma import (
    COLUMNS,
    FEATURE_SIZES,
    FEATURE_STATISTICS,
    FEATURES_COLUMNS,
    GENRE_IDS,
    GENRES,
    FeaturesError,
    TracksError,
    audio_path,
    load_features,
    load_genres,
    load_tracks,
)
from fmareport.data.synth import TrackMeta, features_table, tracks_table

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


# --- features.csv ----------------------------------------------------------------------------------


def write_features(path, rows=REAL_ROWS):
    """features.csv for `rows` as synth writes it (and FMA's features.py: pandas, '%.10e'); its table."""
    table = features_table(tracks_table(rows))
    table.to_csv(path, float_format="%.10e")
    return table


def test_features_columns_are_fmas():
    """11 features x 7 statistics: 518 columns, sorted as FMA's save() sorts them (sort_index)."""
    assert sum(FEATURE_SIZES.values()) * len(FEATURE_STATISTICS) == len(FEATURES_COLUMNS) == 518
    assert FEATURES_COLUMNS == sorted(FEATURES_COLUMNS) and len(set(FEATURES_COLUMNS)) == 518
    assert sum(c[0] == "mfcc" for c in FEATURES_COLUMNS) == 140  # FMA's MFCC baseline's dimension
    assert [c for c in FEATURES_COLUMNS if c[0] == "zcr"] == [("zcr", s, "01") for s in FEATURE_STATISTICS]


def test_features_csv_real_format(tmp_path):
    path = tmp_path / "features.csv"
    table = write_features(path)
    head = path.read_text().splitlines()[:5]  # FMA's 3 named header rows, the index's row, a track
    assert head[0].startswith("feature,chroma_cens,chroma_cens,") and head[0].endswith(",zcr")
    assert head[1].startswith("statistics,kurtosis,kurtosis,") and head[1].endswith(",skew,std")
    assert head[2].startswith("number,01,02,03,") and head[2].endswith(",01,01")
    assert head[3] == "track_id" + "," * 518
    assert head[4].startswith("2,") and len(head[4].split(",")) == 519

    fma_read = pd.read_csv(path, index_col=0, header=[0, 1, 2])  # FMA's own utils.load
    assert list(fma_read.columns) == FEATURES_COLUMNS and fma_read.columns.names == ["feature", "statistics", "number"]

    every = load_features(path)
    assert every.shape == (5, 518) and every.index.name == "track_id" and list(every.index) == [2, 3, 5, 10, 20]
    assert list(every.columns) == FEATURES_COLUMNS and every.dtypes.eq(np.float64).all()
    np.testing.assert_allclose(every.to_numpy(), table.to_numpy(), rtol=1e-10)  # 11 significant digits
    some = load_features(path, [10, 2])  # the tracks asked for, in that order
    assert list(some.index) == [10, 2]
    np.testing.assert_array_equal(some.to_numpy(), every.loc[[10, 2]].to_numpy())


def _edit(path, line: int, field: int, value: str) -> None:
    """Set field `field` of line `line` (1-based) of a CSV file to `value`."""
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[field] = value
    lines[line - 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "breaks, message",
    [
        (lambda p: _edit(p, 2, 3, "average"), r"header line 2, column 3 \(chroma_cens/kurtosis/03\): 'average' where "
         r"FMA's features.csv has 'kurtosis'"),
        (lambda p: _edit(p, 1, 0, ""), r"header line 1, its first field: '' where FMA's features.csv has 'feature'"),
        (lambda p: p.write_text("\n".join(p.read_text().splitlines()[1:]) + "\n"), r"header line 1, its first "
         r"field: 'statistics' where"),
        (lambda p: p.write_text("\n".join(",".join(line.split(",")[:141]) for line in p.read_text().splitlines())),
         r"header line 1 \('feature'\) has 140 columns after the first, FMA's has 518"),
        (lambda p: p.write_text("feature,mfcc\n"), r"1 line\(s\); FMA's features.csv has 4 header lines"),
        (lambda p: _edit(p, 6, 140, "0.5x"), r"track_id 3, column chroma_cqt/min/08: '0.5x' is not a number"),
        (lambda p: _edit(p, 5, 518, ""), r"track_id 2, column zcr/std/01: nan \(empty or not finite"),
        (lambda p: _edit(p, 7, 0, "five"), r"line 7: track_id 'five' is not a positive integer"),
        (lambda p: _edit(p, 7, 0, "2"), r"track_id 2 is on lines 5, 7; FMA lists every track once"),
        (lambda p: _edit(p, 5, 0, "11"), r"no row for 1 of the 2 tracks asked for \(track_id 2\)"),
        (lambda p: _edit(p, 6, 1, "1.0,2.0"), r"not a CSV file pandas can read: .*Expected 519 fields in line 6"),
    ],
    ids=["a statistic renamed", "a level's name", "a header row lost", "140 columns", "no header", "non-numeric",
         "empty", "track_id not a number", "a track twice", "a track missing", "a row too long"],
)  # fmt: skip
def test_features_csv_that_is_not_fmas_is_refused(tmp_path, breaks, message):
    path = tmp_path / "features.csv"
    write_features(path)
    breaks(path)
    with pytest.raises(FeaturesError, match=f"^{path}: {message}"):
        load_features(path, [2, 3])


def test_features_csv_missing_says_where_it_comes_from(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"features.csv: no features.csv here \(it comes with fma_metadata.zip"):
        load_features(tmp_path / "features.csv")

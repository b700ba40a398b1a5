"""Facts about the Free Music Archive data set (Defferrard et al., ISMIR 2017).

Where FMA's files are, how its metadata is read, and which of its tracks are known
to be broken. Everything here is a fact of the published data set (the mdeff/fma
repository and its usage notebook); nothing depends on our own pipeline.
"""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pandas as pd

# The 8 genres of FMA-small in label order (alphabetical): label i is GENRES[i].
GENRES = ("Electronic", "Experimental", "Folk", "Hip-Hop", "Instrumental", "International", "Pop", "Rock")

# genre_id of each top-level genre in the official genres.csv (all have parent 0).
GENRE_IDS = {
    "Electronic": 15,
    "Experimental": 38,
    "Folk": 17,
    "Hip-Hop": 21,
    "Instrumental": 1235,
    "International": 2,
    "Pop": 10,
    "Rock": 12,
}

SUBSETS = ("small", "medium", "large")  # nested: small ⊂ medium ⊂ large
SPLITS = ("training", "validation", "test")  # values of ('set', 'split')
FMA_SMALL_SPLITS = {"training": 6400, "validation": 800, "test": 800}  # 8000 tracks: 800/100/100 per genre

# The 52 columns of tracks.csv, in file order, under their top-level name.
TRACKS_COLUMNS = {
    "album": (
        "comments",
        "date_created",
        "date_released",
        "engineer",
        "favorites",
        "id",
        "information",
        "listens",
        "producer",
        "tags",
        "title",
        "tracks",
        "type",
    ),
    "artist": (
        "active_year_begin",
        "active_year_end",
        "associated_labels",
        "bio",
        "comments",
        "date_created",
        "favorites",
        "id",
        "latitude",
        "location",
        "longitude",
        "members",
        "name",
        "related_projects",
        "tags",
        "website",
        "wikipedia_page",
    ),
    "set": ("split", "subset"),
    "track": (
        "bit_rate",
        "comments",
        "composer",
        "date_created",
        "date_recorded",
        "duration",
        "favorites",
        "genre_top",
        "genres",
        "genres_all",
        "information",
        "interest",
        "language_code",
        "license",
        "listens",
        "lyricist",
        "number",
        "publisher",
        "tags",
        "title",
    ),
}
COLUMNS = [(top, name) for top, names in TRACKS_COLUMNS.items() for name in names]  # 13 + 17 + 2 + 20 = 52
LIST_COLUMNS = [("album", "tags"), ("artist", "tags"), ("track", "genres"), ("track", "genres_all"), ("track", "tags")]
DATE_COLUMNS = [
    ("album", "date_created"),
    ("album", "date_released"),
    ("artist", "date_created"),
    ("artist", "active_year_begin"),
    ("artist", "active_year_end"),
    ("track", "date_created"),
    ("track", "date_recorded"),
]
GENRES_COLUMNS = ("#tracks", "parent", "title", "top_level")  # genres.csv, index genre_id

# Tracks of fma_small that are broken in the official zip (mdeff/fma issues and wiki):
SHORT_TRACKS = (98565, 98567, 98569)  # decode, but much shorter than 30 s
NO_AUDIO_TRACKS = (99134, 108925, 133297)  # no audio at all: decoders fail on them

# Official downloads (https://github.com/mdeff/fma): archive name -> SHA1 of the zip.
BASE_URL = "https://os.unil.cloud.switch.ch/fma/"
ARCHIVES = {
    "fma_metadata.zip": "f0df49ffe5f2a6008d7dc83c6915b31835dfe733",  # 342 MiB
    "fma_small.zip": "ade154f733639d52e35e32f5593efe5be76c6d70",  # 7.2 GiB
}


def audio_path(root: str | Path, track_id: int, subset: str = "small") -> Path:
    """Path of a track's mp3: `root/fma_small/000/000002.mp3` for track 2 (folders 000-155)."""
    name = f"{int(track_id):06d}"
    return Path(root) / f"fma_{subset}" / name[:3] / f"{name}.mp3"


class TracksError(ValueError):
    """tracks.csv holds something we cannot read; the message names the file, the row and the column."""


def _row(tracks: pd.DataFrame, i: int) -> str:
    """'data row 5 (track_id 123)': where a value is, counted as a reader of the file would."""
    return f"data row {i + 1} (track_id {tracks.index[i]})"


def load_tracks(path: str | Path) -> pd.DataFrame:
    """Read tracks.csv: index track_id, the 52 two-level columns, parsed as FMA's own utils.py does.

    List columns (genres, tags) become Python lists (literals only: `ast.literal_eval`, never
    code), dates become datetimes, ('artist', 'id') int64 (FMA gives every track its artist's id:
    the official split keeps each artist in one split), and ('set', 'subset') an ordered
    categorical small < medium < large, so that `tracks['set', 'subset'] <= 'medium'` selects the
    medium subset (small included). Anything else raises TracksError naming the file, the data row
    (and its track_id) and the column: a file that is not UTF-8 or not CSV, a track_id that is not
    a positive integer or appears twice, an artist id that is missing or not a positive integer, a
    list or a date that does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tracks.csv here (it comes with fma_metadata.zip)")
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise TracksError(f"{path}: not UTF-8 text: byte {raw[err.start]:#04x} on line {line}") from None
    try:
        tracks = pd.read_csv(io.BytesIO(raw), index_col=0, header=[0, 1], low_memory=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise TracksError(
            f"{path}: the file is empty (FMA's tracks.csv has 3 header rows and one row a track)"
        ) from None
    except (pd.errors.ParserError, ValueError, IndexError) as err:
        raise TracksError(f"{path}: not a CSV file pandas can read with FMA's 3 header rows: {err}") from None
    got = list(tracks.columns)
    if got != COLUMNS:
        missing = [c for c in COLUMNS if c not in got]
        extra = [c for c in got if c not in COLUMNS]
        raise TracksError(
            f"{path}: not FMA's tracks.csv format (52 two-level columns); missing {missing}, unexpected {extra}"
        )
    if tracks.index.name != "track_id":
        raise TracksError(f"{path}: the index (third header row) should be named 'track_id', got {tracks.index.name!r}")
    ids = pd.to_numeric(pd.Series(tracks.index), errors="coerce")
    bad = ids.isna() | (ids <= 0) | (ids % 1 != 0)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise TracksError(f"{path}: data row {i + 1}: track_id {tracks.index[i]!r} is not a positive integer")
    tracks.index = pd.Index(ids.astype("int64").to_numpy(), name="track_id")
    twice = tracks.index.duplicated(keep=False)
    if twice.any():
        tid = int(tracks.index[twice][0])
        rows = [str(int(i) + 1) for i in twice.nonzero()[0] if tracks.index[i] == tid]
        raise TracksError(
            f"{path}: track_id {tid} is listed on data rows {', '.join(rows)}; FMA lists every track once "
            f"({int(twice.sum())} rows share an id): fix the file or fetch it again"
        )
    artist = pd.to_numeric(tracks["artist", "id"], errors="coerce")
    bad = artist.isna() | (artist <= 0) | (artist % 1 != 0)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise TracksError(
            f"{path}: {_row(tracks, i)}, column ('artist', 'id'): {tracks['artist', 'id'].iloc[i]!r} is not an "
            "artist id (a positive integer; FMA gives every track its artist's)"
        )
    tracks["artist", "id"] = artist.astype("int64")
    for column in LIST_COLUMNS:
        values = []
        for i, text in enumerate(tracks[column]):
            try:
                value = ast.literal_eval(text) if isinstance(text, str) else None
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                value = None
            if not isinstance(value, list):
                raise TracksError(
                    f"{path}: {_row(tracks, i)}, column {column}: {str(text)[:80]!r} is not a list literal such as [21]"
                )
            values.append(value)
        tracks[column] = values
    for column in DATE_COLUMNS:
        parsed = pd.to_datetime(tracks[column], errors="coerce", format="ISO8601")
        bad = parsed.isna() & tracks[column].notna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise TracksError(
                f"{path}: {_row(tracks, i)}, column {column}: {tracks[column].iloc[i]!r} is not a date "
                "(FMA writes e.g. 2008-11-26 01:48:12)"
            )
        tracks[column] = parsed
    raw_subset = tracks["set", "subset"]
    known_subset = raw_subset.where(raw_subset.isin(SUBSETS))
    tracks["set", "subset"] = known_subset.astype(pd.CategoricalDtype(SUBSETS, ordered=True))
    unknown = tracks["set", "subset"].isna()
    # A subset FMA does not have makes the track belong to none: kept here for select_tracks to report.
    tracks.attrs["unknown_subset"] = {int(t): str(v) for t, v in raw_subset[unknown].items()}
    return tracks


def load_genres(path: str | Path) -> pd.DataFrame:
    """Read genres.csv: index genre_id; columns #tracks, parent, title, top_level."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no genres.csv here (it comes with fma_metadata.zip)")
    genres = pd.read_csv(path, index_col=0)
    if genres.index.name != "genre_id" or tuple(genres.columns) != GENRES_COLUMNS:
        raise ValueError(
            f"{path}: not FMA's genres.csv format; expected index 'genre_id' and columns "
            f"{list(GENRES_COLUMNS)}, got {genres.index.name!r} and {list(genres.columns)}"
        )
    return genres

"""Facts about the Free Music Archive data set (Defferrard et al., ISMIR 2017).

Where FMA's files are, how its metadata is read, and which of its tracks are known
to be broken. Everything here is a fact of the published data set (the mdeff/fma
repository and its usage notebook); nothing depends on our own pipeline.
"""

from __future__ import annotations

import ast
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


def load_tracks(path: str | Path) -> pd.DataFrame:
    """Read tracks.csv: index track_id, the 52 two-level columns, parsed as FMA's own utils.py does.

    List columns (genres, tags) become Python lists, dates become datetimes, and
    ('set', 'subset') an ordered categorical small < medium < large, so that
    `tracks['set', 'subset'] <= 'medium'` selects the medium subset (small included).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tracks.csv here (it comes with fma_metadata.zip)")
    tracks = pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)
    got = list(tracks.columns)
    if got != COLUMNS:
        missing = [c for c in COLUMNS if c not in got]
        extra = [c for c in got if c not in COLUMNS]
        raise ValueError(
            f"{path}: not FMA's tracks.csv format (52 two-level columns); missing {missing}, unexpected {extra}"
        )
    if tracks.index.name != "track_id":
        raise ValueError(f"{path}: the index (third header row) should be named 'track_id', got {tracks.index.name!r}")
    for column in LIST_COLUMNS:
        tracks[column] = tracks[column].map(ast.literal_eval)
    for column in DATE_COLUMNS:
        tracks[column] = pd.to_datetime(tracks[column])
    tracks["set", "subset"] = tracks["set", "subset"].astype(pd.CategoricalDtype(SUBSETS, ordered=True))
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

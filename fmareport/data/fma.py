"""Facts about the Free Music Archive data set (Defferrard et al., ISMIR 2017).

Where FMA's files are (`audio_path`), how its metadata is read (`load_tracks`, `load_genres`,
`load_features`), and which of its tracks are broken: facts of the published data set (the
mdeff/fma repository and its usage notebook), none of our pipeline. Contract: docs/contracts.md,
"FMA facts"; the faults refused: docs/faults.md, case 6.
"""

from __future__ import annotations

import ast
import csv
import io
import itertools
from pathlib import Path

import numpy as np
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
    "album": tuple(
        "comments date_created date_released engineer favorites id information listens producer tags title "
        "tracks type".split()
    ),
    "artist": tuple(
        "active_year_begin active_year_end associated_labels bio comments date_created favorites id latitude "
        "location longitude members name related_projects tags website wikipedia_page".split()
    ),
    "set": ("split", "subset"),
    "track": tuple(
        "bit_rate comments composer date_created date_recorded duration favorites genre_top genres genres_all "
        "information interest language_code license listens lyricist number publisher tags title".split()
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

# features.csv (in fma_metadata.zip): FMA's features.py computes each feature with librosa from the
# whole mp3 as a (size, frames) array (frames of 2048 samples, hop 512, zcr's too); 7 statistics over
# frames make its columns, written with float_format '%.10e' (the layout: docs/contracts.md, "FMA facts").
FEATURE_SIZES = {  # rows of each librosa feature (sorted by name, as the file's columns)
    "chroma_cens": 12,
    "chroma_cqt": 12,
    "chroma_stft": 12,
    "mfcc": 20,
    "rmse": 1,
    "spectral_bandwidth": 1,
    "spectral_centroid": 1,
    "spectral_contrast": 7,  # 6 bands + the residual
    "spectral_rolloff": 1,
    "tonnetz": 6,
    "zcr": 1,
}
# The 7 statistics over frames, sorted as the file's columns. FMA's definitions (features.py):
# np.mean, np.std (ddof 0), scipy.stats.skew and scipy.stats.kurtosis at their defaults (biased;
# kurtosis is Fisher's, the excess over a normal's 3), np.median, np.min, np.max.
FEATURE_STATISTICS = ("kurtosis", "max", "mean", "median", "min", "skew", "std")
FEATURES_HEADER = ("feature", "statistics", "number")  # the names of the 3 column levels
FEATURES_COLUMNS = [
    (feature, stat, f"{i:02d}")
    for feature, size in FEATURE_SIZES.items()
    for stat in FEATURE_STATISTICS
    for i in range(1, size + 1)
]  # 74 x 7 = 518, in file order
# The FMA authors' published baselines on these features, test accuracy in % (their baselines
# notebook, their ISMIR 2017 paper): on fma_medium's 16 genres, another task than FMA-small's 8.
# Sources and settings: docs/contracts.md, "FMA facts".
PUBLISHED_BASELINES = {  # (features.csv block, columns) -> classifier -> (notebook %, paper %)
    ("mfcc", 140): {"LR": (57.83, 58), "SVM": (60.98, 61)},
    ("all", 518): {"LR": (61.10, 61), "SVM": (62.88, 63)},
}
PUBLISHED_TASK = {"subset": "medium", "genres": 16, "training": 19_922, "validation": 2_505, "test": 2_573}
FEATURES_CHUNK = 10_000  # rows per pandas chunk: the real file's 106,574 rows x 518 columns are ~1 GB of text

# Tracks of fma_small that are broken in the official zip (mdeff/fma issues and wiki).
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

    Lists (genres, tags) by `ast.literal_eval` (never code), dates as datetimes, ('artist', 'id')
    int64, ('set', 'subset') ordered small < medium < large (`<= 'medium'` selects medium and small).
    TracksError names the file, the data row (and its track_id) and the column of what does not parse.
    """
    path = Path(path)
    tracks = _read_tracks_csv(path)
    tracks.index = pd.Index(_positive_ints(pd.Series(tracks.index), path, "track_id", tracks), name="track_id")
    _refuse_repeated_ids(tracks, path)
    tracks["artist", "id"] = _positive_ints(tracks["artist", "id"], path, "artist", tracks)
    for column in LIST_COLUMNS:
        tracks[column] = [_list_literal(text, path, tracks, i, column) for i, text in enumerate(tracks[column])]
    for column in DATE_COLUMNS:
        tracks[column] = _dates(tracks, column, path)
    raw_subset = tracks["set", "subset"]
    known_subset = raw_subset.where(raw_subset.isin(SUBSETS))
    tracks["set", "subset"] = known_subset.astype(pd.CategoricalDtype(SUBSETS, ordered=True))
    unknown = tracks["set", "subset"].isna()
    # A subset FMA does not have makes the track belong to none: kept here for select_tracks to report.
    tracks.attrs["unknown_subset"] = {int(t): str(v) for t, v in raw_subset[unknown].items()}
    return tracks


def _read_tracks_csv(path: Path) -> pd.DataFrame:
    """tracks.csv as pandas reads it with FMA's 3 header rows; TracksError unless it is UTF-8 CSV
    with FMA's 52 columns and a track_id index."""
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
    return tracks


def _positive_ints(values: pd.Series, path: Path, what: str, tracks: pd.DataFrame) -> np.ndarray:
    """`values` (track ids, or artist ids) as int64; TracksError at the first that is not a positive integer."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | (numbers <= 0) | (numbers % 1 != 0)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        if what == "track_id":
            raise TracksError(f"{path}: data row {i + 1}: track_id {values.iloc[i]!r} is not a positive integer")
        raise TracksError(
            f"{path}: {_row(tracks, i)}, column ('artist', 'id'): {values.iloc[i]!r} is not an "
            "artist id (a positive integer; FMA gives every track its artist's)"
        )
    return numbers.astype("int64").to_numpy()


def _refuse_repeated_ids(tracks: pd.DataFrame, path: Path) -> None:
    """TracksError naming the data rows of the first track_id listed twice."""
    twice = tracks.index.duplicated(keep=False)
    if twice.any():
        tid = int(tracks.index[twice][0])
        rows = [str(int(i) + 1) for i in twice.nonzero()[0] if tracks.index[i] == tid]
        raise TracksError(
            f"{path}: track_id {tid} is listed on data rows {', '.join(rows)}; FMA lists every track once "
            f"({int(twice.sum())} rows share an id): fix the file or fetch it again"
        )


def _list_literal(text: object, path: Path, tracks: pd.DataFrame, i: int, column: tuple) -> list:
    """A list column's cell ('[21, 38]') as a list: literals only (`ast.literal_eval`, never code)."""
    try:
        value = ast.literal_eval(text) if isinstance(text, str) else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = None
    if not isinstance(value, list):
        raise TracksError(
            f"{path}: {_row(tracks, i)}, column {column}: {str(text)[:80]!r} is not a list literal such as [21]"
        )
    return value


def _dates(tracks: pd.DataFrame, column: tuple, path: Path) -> pd.Series:
    """A date column as datetimes (empty cells stay NaT); TracksError at the first that does not parse."""
    parsed = pd.to_datetime(tracks[column], errors="coerce", format="ISO8601")
    bad = parsed.isna() & tracks[column].notna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise TracksError(
            f"{path}: {_row(tracks, i)}, column {column}: {tracks[column].iloc[i]!r} is not a date "
            "(FMA writes e.g. 2008-11-26 01:48:12)"
        )
    return parsed


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


class FeaturesError(ValueError):
    """features.csv holds something we cannot use; the message names the file, the line or track, and
    the column."""


def _check_features_header(path: Path, head: list[list[str]]) -> None:
    """The 4 lines before the data are FMA's: 3 header rows naming the column levels, then track_id."""
    expected = [[level, *(c[k] for c in FEATURES_COLUMNS)] for k, level in enumerate(FEATURES_HEADER)]
    expected.append(["track_id", *[""] * len(FEATURES_COLUMNS)])
    fix = "FMA's features.csv (fma_metadata.zip: `fmareport fetch DIR`) or one `fmareport synth` writes"
    if len(head) < len(expected):
        raise FeaturesError(
            f"{path}: {len(head)} line(s); FMA's features.csv has 4 header lines (feature, statistics, number, "
            f"track_id) before one line per track: use {fix}"
        )
    for line, (got, want) in enumerate(zip(head, expected), start=1):
        if len(got) != len(want):
            raise FeaturesError(
                f"{path}: header line {line} ({want[0]!r}) has {len(got) - 1} columns after the first, FMA's has "
                f"{len(want) - 1} (11 features x 7 statistics): use {fix}"
            )
        for column, (g, w) in enumerate(zip(got, want)):
            if g != w:
                where = (
                    "its first field" if column == 0 else f"column {column} ({'/'.join(FEATURES_COLUMNS[column - 1])})"
                )
                raise FeaturesError(
                    f"{path}: header line {line}, {where}: {g!r} where FMA's features.csv has {w!r}: use {fix}"
                )


def load_features(path: str | Path, track_ids=None) -> pd.DataFrame:
    """Read features.csv: float64 (n_tracks, 518), index track_id, columns (feature, statistics, number).

    track_ids: the tracks to keep, in this order, each with a finite number in every column (None:
    every track, in file order). Read in chunks of FEATURES_CHUNK rows, keeping the asked rows only.
    FeaturesError names the file and the line, track or column (docs/contracts.md, "FMA facts").
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no features.csv here (it comes with fma_metadata.zip: `fmareport fetch DIR`; a synthetic "
            "set made before synth wrote it: make it again with `fmareport synth ... --force`)"
        )
    try:
        with open(path, encoding="utf-8", newline="") as f:
            head = list(itertools.islice(csv.reader(f), 4))
    except (UnicodeDecodeError, csv.Error) as err:
        raise FeaturesError(f"{path}: its header lines are not CSV text: {err}") from None
    _check_features_header(path, head)
    wanted = None if track_ids is None else pd.Index(np.asarray(track_ids, dtype=np.int64), name="track_id")
    kept = _read_feature_rows(path, wanted)
    values = [_numbers(chunk, path) for chunk in kept]  # (rows, 518) each
    table = pd.DataFrame(
        np.concatenate(values) if values else np.empty((0, len(FEATURES_COLUMNS))),
        index=pd.Index(np.concatenate([c.index for c in kept]) if kept else [], dtype="int64", name="track_id"),
        columns=pd.MultiIndex.from_tuples(FEATURES_COLUMNS, names=FEATURES_HEADER),
    )
    if wanted is not None:
        table = table.loc[wanted]
    empty = ~np.isfinite(table.to_numpy())
    if empty.any():
        i, k = (int(a[0]) for a in empty.nonzero())
        raise FeaturesError(
            f"{path}: track_id {table.index[i]}, column {'/'.join(FEATURES_COLUMNS[k])}: "
            f"{table.iat[i, k]} (empty or not finite; FMA's features.py leaves a track's fields empty when it "
            "cannot compute its features)"
        )
    return table


def _read_feature_rows(path: Path, wanted: pd.Index | None) -> list[pd.DataFrame]:
    """features.csv's rows below its 4 header lines, in chunks of FEATURES_CHUNK, keeping the
    `wanted` tracks' (None: all); FeaturesError for a bad or repeated track_id, or a wanted one missing."""
    kept, ids, line = [], [], 4  # line: the file's lines before the chunk (4 header lines)
    try:
        for chunk in pd.read_csv(path, header=None, skiprows=4, index_col=0, chunksize=FEATURES_CHUNK):
            index = pd.to_numeric(pd.Series(chunk.index), errors="coerce")
            bad = index.isna() | (index <= 0) | (index % 1 != 0)
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise FeaturesError(
                    f"{path}: line {line + i + 1}: track_id {chunk.index[i]!r} is not a positive integer"
                )
            chunk.index = pd.Index(index.astype("int64").to_numpy(), name="track_id")
            ids.append(chunk.index.to_numpy())
            kept.append(chunk if wanted is None else chunk[chunk.index.isin(wanted)])
            line += len(chunk)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise FeaturesError(f"{path}: not a CSV file pandas can read: {err}") from None
    all_ids = pd.Index(np.concatenate(ids) if ids else np.array([], np.int64))
    twice = all_ids[all_ids.duplicated()]
    if len(twice):
        lines = [str(5 + int(i)) for i in (all_ids == twice[0]).nonzero()[0]]
        raise FeaturesError(
            f"{path}: track_id {twice[0]} is on lines {', '.join(lines)}; FMA lists every track once: fetch it again"
        )
    missing = wanted.difference(all_ids) if wanted is not None else []
    if len(missing):
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise FeaturesError(
            f"{path}: no row for {len(missing)} of the {len(wanted)} tracks asked for (track_id {shown}); "
            "features.csv must come from the same fma_metadata.zip (or synthetic set) as tracks.csv"
        )
    return kept


def _numbers(chunk: pd.DataFrame, path: Path) -> np.ndarray:
    """A chunk of features.csv as float64 (rows, 518); FeaturesError at the first value that is not a number."""
    for k, column in enumerate(chunk.columns):
        if pd.api.types.is_numeric_dtype(chunk[column]):
            continue
        number = pd.to_numeric(chunk[column], errors="coerce")
        bad = number.isna() & chunk[column].notna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise FeaturesError(
                f"{path}: track_id {chunk.index[i]}, column {'/'.join(FEATURES_COLUMNS[k])}: "
                f"{str(chunk[column].iloc[i])[:40]!r} is not a number"
            )
    return chunk.apply(pd.to_numeric).to_numpy(np.float64)

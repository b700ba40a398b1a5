"""The synthetic data set: FMA's layout and formats, splits, bad cases, determinism, learnable styles."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fmareport.cli import main
from fmareport.config import SynthSettings, load_profile
from fmareport.data.fma import GENRE_IDS, GENRES, SPLITS, audio_path, load_features, load_genres, load_tracks
from fmareport.data.music import draw_artist, render
from fmareport.data.synth import ARTIST_TRACKS, BAD_CASES, MARKER, SHORT_SECONDS, split_sizes, synthesize


def test_split_sizes():
    for n, per_genre in ((60, (48, 6, 6)), (1000, (800, 100, 100))):
        assert all(tuple(s.values()) == per_genre for s in split_sizes(n, 0.1, 0.1))
    totals = [sum(s[split] for s in split_sizes(5, 0.1, 0.1)) for split in SPLITS]
    assert totals == [32, 4, 4]  # the smoke profile's 40 tracks
    assert all(sum(s.values()) == 5 for s in split_sizes(5, 0.1, 0.1))


def test_split_sizes_at_other_fractions():
    """The demo's split: 120 tracks a genre, 10 % validation, half test -> 48 / 12 / 60 per genre
    (whole artists of 4: 12 / 3 / 15); its earlier 160 -> 64 / 16 / 80."""
    demo = load_profile("demo").synth
    assert (demo.tracks_per_genre, demo.validation_fraction, demo.test_fraction) == (120, 0.1, 0.5)
    assert all(tuple(s.values()) == (48, 12, 60) for s in split_sizes(120, 0.1, 0.5))
    assert all(tuple(s.values()) == (64, 16, 80) for s in split_sizes(160, 0.1, 0.5))
    sizes = split_sizes(7, 0.2, 0.3)  # 1.4 and 2.1 a genre: rounded cumulatively, the totals hold
    assert [sum(s[k] for s in sizes) for k in SPLITS] == [56 - 11 - 17, 11, 17]
    assert all(sum(s.values()) == 7 and min(s.values()) >= 1 for s in sizes)


def test_a_set_at_other_fractions(tmp_path):
    root = synthesize(
        tmp_path / "s",
        SynthSettings(tracks_per_genre=4, seconds=0.5, sample_rate=8000, test_fraction=0.5, bad_cases=False),
        progress=False,
        workers=1,
    )
    tracks = load_tracks(root / "fma_metadata" / "tracks.csv")
    small = tracks[tracks["set", "subset"] == "small"]
    assert small["set", "split"].value_counts().to_dict() == {"test": 16, "training": 13, "validation": 3}
    marker = json.loads((root / MARKER).read_text())
    assert (marker["validation_fraction"], marker["test_fraction"]) == (0.1, 0.5)


def test_layout_and_metadata(tiny_data):
    tracks = load_tracks(tiny_data / "fma_metadata" / "tracks.csv")
    small = tracks[tracks["set", "subset"] <= "small"]
    good = small.drop(index=list(BAD_CASES))
    assert len(good) == 8 * 5 and set(BAD_CASES) <= set(small.index)
    for genre, sizes in zip(GENRES, split_sizes(5, 0.1, 0.1)):
        rows = good[good["track", "genre_top"] == genre]
        assert rows["set", "split"].value_counts().reindex(SPLITS, fill_value=0).tolist() == list(sizes.values())
        assert all(g == [GENRE_IDS[genre]] for g in rows["track", "genres"])

    extra = tracks[tracks["set", "subset"] > "small"]
    assert set(extra["set", "subset"]) == {"medium", "large"}
    assert extra[extra["set", "subset"] == "large"]["track", "genre_top"].isna().all()
    assert not any(audio_path(tiny_data, tid).exists() for tid in extra.index)  # as FMA: not in fma_small

    genres = load_genres(tiny_data / "fma_metadata" / "genres.csv")
    assert sorted(genres.title) == sorted(GENRES)
    counts = {gid: sum(gid in g for g in tracks["track", "genres_all"]) for gid in genres.index}
    assert genres["#tracks"].to_dict() == counts

    x, rate = sf.read(audio_path(tiny_data, good.index[0]), dtype="float32")
    assert rate == 22050 and x.shape == (round(1.5 * 22050), 2)  # gapless: exactly the samples written
    assert 0.05 < np.abs(x).max() <= 1.0


def test_every_artist_is_in_one_split_and_one_genre(tmp_path):
    """As FMA's split does: an artist's tracks are all training, all validation or all test, and of
    one genre; each split of a genre is cut into artists of ARTIST_TRACKS (the last may have fewer)."""
    root = synthesize(
        tmp_path / "s",
        SynthSettings(tracks_per_genre=11, seconds=0.25, sample_rate=8000, bad_cases=True, test_fraction=0.3),
        progress=False,
        workers=1,
    )
    tracks = load_tracks(root / "fma_metadata" / "tracks.csv")
    meta = pd.DataFrame(
        {
            "artist": tracks["artist", "id"],
            "split": tracks["set", "split"],
            "genres": tracks["track", "genres"].map(tuple),
            "genre": tracks["track", "genre_top"],
            "music": (tracks["set", "subset"] == "small") & ~tracks.index.isin(list(BAD_CASES)),
        }
    )
    assert (meta.groupby("artist")[["split", "genres"]].nunique() == 1).all().all()
    music = meta[meta.music]  # the small subset's music tracks: cut into artists per genre and split
    for (genre, split), part in music.groupby(["genre", "split"]):
        n = len(part)
        runs = [ARTIST_TRACKS] * (n // ARTIST_TRACKS) + [n % ARTIST_TRACKS] * (n % ARTIST_TRACKS > 0)  # 11: 4, 4, 3
        assert sorted(part.artist.value_counts(), reverse=True) == runs, (genre, split)
    assert (meta[~meta.music].artist.value_counts() == 1).all()  # medium, large, bad cases: one artist each
    assert not set(meta[~meta.music].artist) & set(music.artist)


def test_an_artists_tracks_are_alike():
    """Tracks of one artist share its sound: on simple spectral statistics (`features`), a track's
    nearest neighbour among 96 (8 genres x 4 artists x 3 tracks) is of its own artist far more often
    than the 2 in 95 that chance gives (0.59 with these seeds), and tracks of one artist are closer
    than tracks of two artists of the same genre (mean distance 5.5 against 8.3)."""
    X, artist = [], []
    for label, genre in enumerate(GENRES):
        for a in range(4):
            who = draw_artist(genre, np.random.default_rng([5, label, a, 7]))
            for k in range(3):
                X.append(
                    features(render(genre, 2.0, 16000, np.random.default_rng([5, label, a, k]), who).mean(1), 16000)
                )
                artist.append(4 * label + a)
    X, artist = np.array(X), np.array(artist)
    X = (X - X.mean(0)) / X.std(0)
    distance = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))  # (96, 96)
    same = artist[:, None] == artist[None]
    same_genre = (artist[:, None] // 4 == artist[None] // 4) & ~same
    np.fill_diagonal(distance, np.inf)
    assert (artist[distance.argmin(1)] == artist).mean() > 0.4
    np.fill_diagonal(distance, 0)
    assert distance[same].sum() / (same.sum() - 96) < 0.8 * distance[same_genre].mean()
    with pytest.raises(ValueError, match="an artist of Rock cannot play a Folk track"):
        render("Folk", 0.1, 8000, np.random.default_rng(0), draw_artist("Rock", np.random.default_rng(1)))


def test_features_csv_has_a_row_per_track_of_tracks_csv(tiny_data):
    """As FMA's: every track of tracks.csv (bad cases, medium and large ones too), FMA's 518 columns."""
    tracks = load_tracks(tiny_data / "fma_metadata" / "tracks.csv")
    features = load_features(tiny_data / "fma_metadata" / "features.csv")
    assert list(features.index) == list(tracks.index) and features.shape[1] == 518
    spread = features.std().to_numpy()  # columns differ by orders of magnitude, as FMA's do
    assert spread.max() / spread.min() > 100


def test_checksums_and_bad_cases(tiny_data):
    small = tiny_data / "fma_small"
    lines = (small / "checksums").read_text().splitlines()
    listed = dict(reversed(line.split("  ")) for line in lines)
    files = sorted(p.relative_to(small).as_posix() for p in small.rglob("*.mp3"))
    assert sorted(listed) == files and len(files) == 8 * 5 + 4  # every file but the missing one
    for rel, sha1 in listed.items():
        assert hashlib.sha1((small / rel).read_bytes()).hexdigest() == sha1

    kinds = {kind: audio_path(tiny_data, tid) for tid, kind in BAD_CASES.items()}
    assert not kinds["missing"].exists()
    assert kinds["empty"].stat().st_size == 0
    with pytest.raises(sf.LibsndfileError):
        sf.read(kinds["garbage"])
    assert sf.info(kinds["short"]).frames == round(SHORT_SECONDS * 22050)
    assert np.abs(sf.read(kinds["silent"])[0]).max() == 0


def tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    def made(name: str, seed: int, bad_cases: bool, workers: int) -> dict:
        settings = SynthSettings(tracks_per_genre=2, seconds=1.0, sample_rate=16000, seed=seed, bad_cases=bad_cases)
        return tree(synthesize(tmp_path / name, settings, progress=False, workers=workers))

    a, b = made("a", 3, True, workers=1), made("b", 3, True, workers=2)
    assert a == b
    c = made("c", 4, False, workers=1)
    metadata = {f"fma_metadata/{name}.csv" for name in ("tracks", "genres", "features")}
    assert set(a) & set(c) <= {"fma_small/checksums", *metadata, MARKER}
    assert a["fma_metadata/tracks.csv"] != c["fma_metadata/tracks.csv"]
    assert a["fma_metadata/features.csv"] != c["fma_metadata/features.csv"]


def features(x: np.ndarray, sr: int) -> np.ndarray:
    """Mean and std over time of log band energies (about 20 bands), and of the onset flux."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256] * np.hanning(512)
    power = np.abs(np.fft.rfft(frames)) ** 2  # (T, 257)
    edges = np.unique(np.geomspace(4, 256, 25).astype(int))  # ~log-spaced, 62 Hz - 8 kHz
    bands = np.log(np.stack([power[:, lo:hi].sum(1) for lo, hi in zip(edges[:-1], edges[1:])], 1) + 1e-8)
    flux = np.maximum(np.diff(bands, axis=0), 0).sum(1)
    return np.r_[bands.mean(0), bands.std(0), flux.mean(), flux.std()]


def test_styles_are_learnable():
    """Leave-one-out 1-nearest-neighbour on simple spectral statistics beats chance (1/8) by far.

    (0.56 with these seeds; a linear model on log-mel statistics of the demo set gets ~0.77.)
    """
    X, y = [], []
    for label, genre in enumerate(GENRES):
        for k in range(8):
            x = render(genre, 2.0, 16000, np.random.default_rng([99, label, k])).mean(1)
            X.append(features(x, 16000))
            y.append(label)
    X, y = np.array(X), np.array(y)
    X = (X - X.mean(0)) / X.std(0)
    distance = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.fill_diagonal(distance, np.inf)
    accuracy = (y[distance.argmin(1)] == y).mean()
    assert accuracy > 0.35, f"leave-one-out accuracy {accuracy:.2f} (chance: 0.125)"


def test_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        synthesize(tmp_path, SynthSettings(tracks_per_genre=1, seconds=1.0, bad_cases=False), progress=False)
    assert main(["synth", str(tmp_path), "--tracks-per-genre", "1"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["synth", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--tracks-per-genre", "--seconds", "--sample-rate", "--seed", "--bad-cases", "--workers",
                   "--validation-fraction", "--test-fraction"):  # fmt: skip
        assert option in out

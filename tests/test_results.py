"""A results file stores only what cannot be derived, and what can still disagree is refused naming
the file and the field (docs/faults.md, case 12).

`cell_results` builds a small schema-4 results dict, as training writes it; each test breaks one
thing the way a stale, mixed or hand-edited file would. Real runs pass the same checks:
tests/test_train.py and tests/test_baseline.py.
"""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
from fakes import PROVENANCE  # one provenance for every fake result

from fmareport.config import Config
from fmareport.data.fma import GENRES
from fmareport.results import PROB_SUM_TOLERANCE, ResultsError, load_baselines, read_results, schema, validate

LABELS = [0, 1, 2, 3, 3, 7]  # six test tracks
GUESS = [0, 1, 2, 3, 4, 7]  # what the network predicts: 5 of 6 right
TRACK_IDS = [2, 5, 9, 11, 12, 20]


def probs(guess: list[int]) -> list[list[float]]:
    """A row per track: 0.65 on the guess, 0.05 elsewhere (sums to 1)."""
    rows = np.full((len(guess), 8), 0.05)
    rows[np.arange(len(guess)), guess] = 0.65
    return rows.tolist()


def seed_record(seed: int, val_accs=(0.25, 0.5), guess=GUESS) -> dict:
    best_is_last = val_accs.index(max(val_accs)) == len(val_accs) - 1
    return {
        "seed": seed,
        "history": [
            {"epoch": e, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": v, "seconds": 1.0}
            for e, v in enumerate(val_accs, start=1)
        ],
        "test_acc_at_best": None if best_is_last else 0.5,
        "seconds": 2.0,
        "segments_per_second": 10.0,
        "test_probs": probs(guess),
    }


DATA = {
    "source": "synth",
    "data_dir": "data",
    "store": "/stores/x",
    "store_fingerprint": "abc",
    "tracks": {"training": 30, "validation": 6, "test": len(LABELS)},
    "skipped": 0,
}
TEST = {"track_ids": TRACK_IDS, "labels": LABELS, "artist_ids": None}


def cell_results(seeds=(0, 1)) -> dict:
    """A results dict: two seeds of two epochs (the second the best), six test tracks."""
    cfg = Config(profile="p", cell="table1/raw_whole", seeds=list(seeds), epochs=2)
    return {
        "schema_version": 4,
        "run_id": "0" * 32,
        "profile": "p",
        "cell": "table1/raw_whole",
        "config": cfg.to_dict(),
        "genres": list(GENRES),
        "data": DATA,
        "n_params": 1234,
        "test": TEST,
        "seeds": [seed_record(s) for s in seeds],
        "provenance": PROVENANCE,
    }


def refused(tmp_path, obj: dict) -> str:
    """Write `obj` as a results file; read_results must refuse it. Returns the message."""
    path = tmp_path / "raw_whole.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ResultsError) as err:
        read_results(path)
    message = str(err.value)
    assert message.startswith(f"{path}: results JSON invalid at ") and "\n" not in message
    return message


def test_a_file_is_read_back_whole_with_what_it_derives(tmp_path):
    """Accuracies, confusion matrices, per-genre accuracy, the best epoch and the summary come from the
    predictions and the history: none is stored."""
    path = tmp_path / "raw_whole.json"
    obj = cell_results()
    obj["seeds"][1] = seed_record(1, val_accs=(0.5, 0.25), guess=[0, 1, 2, 3, 3, 0])  # 5 of 6, best epoch 1
    path.write_text(json.dumps(obj))
    r = read_results(path)
    assert r.test.track_ids == TRACK_IDS and r.seed_ids == [0, 1]
    assert r.accuracies == [5 / 6, 5 / 6] and r.correct.tolist() == [[1, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 0]]
    assert [s.best_epoch for s in r.seeds] == [2, 1] and r.best_accuracies == [5 / 6, 0.5]
    confusion = r.confusion()
    assert confusion.shape == (2, 8, 8) and confusion[0, 3, 4] == 1 and confusion[1, 7, 0] == 1
    assert confusion.sum(axis=(1, 2)).tolist() == [6, 6]
    per_genre = r.per_genre_accuracy()  # Hip-Hop (3): 1 of 2 right in seed 0; Pop (5): no test track
    assert per_genre[0, 3] == 0.5 and per_genre[1, 7] == 0.0 and np.isnan(per_genre[:, 5]).all()
    s = r.summary
    assert (s.n_seeds, s.test_acc_last_mean, s.test_acc_last_std) == (2, 5 / 6, 0.0)
    assert s.test_acc_best_mean == pytest.approx((5 / 6 + 0.5) / 2)


@pytest.mark.parametrize("key", ["test_acc_last", "confusion", "per_genre_acc", "best_epoch"])
def test_a_seed_that_states_what_is_derived_is_refused(tmp_path, key):
    """Schema 4 has no field for a number its predictions give: a file that states one is not schema 4."""
    obj = cell_results()
    obj["seeds"][0][key] = 1
    assert re.search(rf"seeds/0/{key}: Extra inputs are not permitted", refused(tmp_path, obj))


@pytest.mark.parametrize(
    "breaks, message",
    [
        (
            lambda o: o["seeds"][0].update(test_acc_at_best=0.1),
            r"seeds/0: test_acc_at_best is 0\.1, but the best epoch \(2, the first with the highest val_acc\) is the "
            r"last: it is given exactly when the best epoch is not the last",
        ),
        (
            lambda o: o["seeds"][0]["history"][1].update(val_acc=0.1),
            r"seeds/0: test_acc_at_best is None, but the best epoch \(1, .*\) is not the last",
        ),
        (
            lambda o: o["seeds"][0]["history"][1].update(epoch=3),
            r"seeds/0: history\[1\]\.epoch is 3; the epochs are 1 to 2 in order",
        ),
        (
            lambda o: o["seeds"][0]["test_probs"][2].__setitem__(0, 1.0),  # a row of 1.95
            r"\(top level\): seeds/0/test_probs\[2\] sums to 1\.95; a row of probabilities sums to 1 \(within 1e-05\)",
        ),
        (
            lambda o: o["seeds"][0].update(test_probs=[[0.9] * 8] * 6),  # rows of 7.2
            r"seeds/0/test_probs\[0\] sums to 7\.2;",
        ),
        (
            lambda o: o["seeds"][1].update(test_probs=probs(GUESS[:5])),
            r"\(top level\): seeds/1/test_probs: 5 rows for 6 test tracks; one per test track",
        ),
        (
            lambda o: o.update(test={**TEST, "labels": LABELS[:4]}),
            r"test: 6 track ids, 4 labels: one of each per test track",
        ),
        (
            lambda o: o.update(test={**TEST, "track_ids": [2, 5, 5, 11, 12, 20]}),
            r"test: track_ids\[2\]: 5 after 5; the ids must be ascending, each track once",
        ),
        (lambda o: o.update(test={**TEST, "track_ids": TRACK_IDS[::-1]}), r"test: track_ids\[1\]: 12 after 20"),
        (
            lambda o: o.update(test={**TEST, "labels": [0, 1, 2, 3, 3, 8]}),
            r"test/labels/5: Input should be less than 8",
        ),
        (
            lambda o: o["data"]["tracks"].update(test=999),
            r"\(top level\): test: 6 test tracks, but data/tracks/test says 999 test tracks",
        ),
        (
            lambda o: o["config"].update(epochs=3),
            r"\(top level\): seeds/0/history: 2 epoch\(s\), but config\.epochs is 3",
        ),
        (
            lambda o: o["config"].update(seeds=[0, 2]),
            r"\(top level\): seed records \[0, 1\] are not config.seeds \[0, 2\]",
        ),
        (
            lambda o: o.update(genres=sorted(GENRES, reverse=True)),
            r"\(top level\): genres: \['Rock', .*\] are not the label order",
        ),
    ],
    ids=[
        "best accuracy beside a best last epoch",
        "no best accuracy beside an earlier best epoch",
        "epochs out of order",
        "row of 1.95",
        "rows of 7.2",
        "5 rows for 6 tracks",
        "4 labels for 6 tracks",
        "a track twice",
        "ids descending",
        "label 8",
        "999 test tracks",
        "history not config.epochs",
        "seeds not config.seeds",
        "genres reordered",
    ],
)
def test_a_file_that_contradicts_itself_is_refused_naming_the_field(tmp_path, breaks, message):
    obj = copy.deepcopy(cell_results())
    breaks(obj)
    assert re.search(message, refused(tmp_path, obj))


ARTIST_IDS = [1, 1, 6, 4, 4, 4]  # the six test tracks' artists: three artists


def test_files_with_and_without_the_test_tracks_artists_read_back(tmp_path):
    """A file written before artists were recorded reads back with none (its intervals resample tracks);
    one with them keeps them, in the test tracks' order."""
    path = tmp_path / "raw_whole.json"
    path.write_text(json.dumps(cell_results()))
    assert read_results(path).test.artist_ids is None
    path.write_text(json.dumps(cell_results() | {"test": TEST | {"artist_ids": ARTIST_IDS}}))
    assert read_results(path).test.artist_ids == ARTIST_IDS


@pytest.mark.parametrize(
    "artists, message",
    [
        (ARTIST_IDS[:5], r"test: 6 track ids, 6 labels, 5 artist ids: one of each per test track"),
        ([1, 1, None, 4, 4, 4], r"test/artist_ids/2: Input should be a valid integer"),
        ([1, 1, "AWOL", 4, 4, 4], r"test/artist_ids/2: Input should be a valid integer"),
    ],
    ids=["5 artists for 6 tracks", "null", "a name"],
)
def test_test_tracks_artists_that_do_not_fit_are_refused(tmp_path, artists, message):
    obj = cell_results() | {"test": TEST | {"artist_ids": artists}}
    assert re.search(message, refused(tmp_path, obj))


def v3_file() -> dict:
    """`cell_results` as schema 3 wrote it: every seed with its test tracks and derived numbers."""
    obj = cell_results()
    seeds = []
    for s in obj["seeds"]:
        confusion = np.zeros((8, 8), int)
        np.add.at(confusion, (LABELS, GUESS), 1)
        seeds.append(
            {k: v for k, v in s.items() if k != "test_acc_at_best"}
            | {
                "test_acc_last": 5 / 6,
                "test_acc_best": 5 / 6,
                "best_epoch": 2,
                "confusion": confusion.tolist(),
                "per_genre_acc": {g: None for g in GENRES},
                "n_params": 1234,
                "test_track_ids": TRACK_IDS,
                "test_labels": LABELS,
                "test_artist_ids": ARTIST_IDS,
            }  # fmt: skip
        )
    weights = {"file": "raw_whole.weights.pt", "seed": 0, "sha1": "a" * 40}
    rest = {k: v for k, v in obj.items() if k not in ("n_params", "test")}
    return rest | {"schema_version": 3, "seeds": seeds, "summary": {}, "weights": weights, "embeddings": None}


def test_a_schema_3_file_is_read_through_the_upgrade(tmp_path):
    """Schema 3 stored the test tracks per seed and what schema 4 derives: they are moved or dropped."""
    path = tmp_path / "raw_whole.json"
    path.write_text(json.dumps(v3_file()))
    r = read_results(path)
    assert r.schema_version == 4 and r.n_params == 1234 and r.weights_sha1 == "a" * 40 and r.embeddings_sha1 is None
    assert (r.test.track_ids, r.test.labels, r.test.artist_ids) == (TRACK_IDS, LABELS, ARTIST_IDS)
    assert r.accuracies == [5 / 6, 5 / 6] and [s.test_acc_at_best for s in r.seeds] == [None, None]


def test_a_schema_3_file_whose_seeds_saw_other_tracks_is_refused(tmp_path):
    obj = v3_file()
    obj["seeds"][1]["test_labels"] = [1, 1, 2, 3, 3, 7]
    path = tmp_path / "raw_whole.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ResultsError, match=rf"^{path}: seeds/1/test_labels differs from seeds/0/test_labels: a "
                       "schema-3 file to upgrade$"):  # fmt: skip
        read_results(path)


def test_the_row_sum_tolerance_holds_float32_rounding():
    """A float32 softmax of 8 classes sums to 1 within a few float32 steps, far inside the tolerance."""
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((1000, 8)) * 30).astype(np.float32)
    p = np.exp(logits - logits.max(1, keepdims=True), dtype=np.float32)
    p /= p.sum(1, keepdims=True, dtype=np.float32)
    assert np.abs(p.astype(np.float64).sum(1) - 1).max() < PROB_SUM_TOLERANCE / 10


# --- the baselines' files -----------------------------------------------------------------------


def baseline() -> dict:
    return {
        "schema_version": 3,
        "run_id": "1" * 32,
        "profile": "p",
        "variant": "mfcc",
        "name": "Our clips: MFCC (140) + LR",
        "features": "20 MFCCs, 7 statistics",
        "n_features": 140,
        "features_file": None,
        "classifier": "logistic regression",
        "tuning": {"grid": [0.01, 1.0, 100.0], "val_acc": [0.25, 0.5, 0.5]},
        "data": DATA,
        "train_acc": 0.9,
        "test": TEST,
        "test_probs": probs(GUESS),
        "provenance": PROVENANCE,
    }


def write_baseline(tmp_path, obj: dict, name: str = "mfcc"):
    path = tmp_path / "p" / "baselines" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def test_consistent_baselines_are_read_back_in_the_books_order(tmp_path):
    assert load_baselines(tmp_path, "p") == {}  # none run
    svm = {**baseline(), "variant": "fma_all_svm", "n_features": 518}
    svm["features_file"] = {"path": "/data/fma/fma_metadata/features.csv", "sha1": "a" * 40}
    write_baseline(tmp_path, svm, "fma_all_svm")
    write_baseline(tmp_path, baseline())
    read = load_baselines(tmp_path, "p")
    assert list(read) == ["mfcc", "fma_all_svm"] and read["mfcc"].test_acc == 5 / 6
    assert read["mfcc"].val_acc == 0.5 and read["mfcc"].tuning.chosen == 1.0  # the first C of the best
    assert read["fma_all_svm"].features_file.sha1 == "a" * 40


def tuning(**changes):
    return lambda o: o.update(tuning={**o["tuning"], **changes})


@pytest.mark.parametrize(
    "breaks, message",
    [
        (lambda o: o.update(test_probs=[r[:7] for r in o["test_probs"]]), r"test_probs/0: List should have at least 8"),
        (lambda o: o.update(test=TEST | {"labels": [8] * 6}), r"test/labels/0: Input should be less than 8"),
        (lambda o: o.update(test=TEST | {"labels": LABELS[:5]}), r"test: 6 track ids, 5 labels"),
        (lambda o: o.update(test_probs=probs(GUESS[:5])), r"\(top level\): test_probs: 5 rows for 6 test tracks"),
        (lambda o: o.update(test_acc=0.9), r"test_acc: Extra inputs are not permitted"),
        (lambda o: o["test_probs"][0].__setitem__(1, 0.5), r"\(top level\): test_probs\[0\] sums to 1\.45"),
        (
            lambda o: o.update(data={**DATA, "tracks": {**DATA["tracks"], "test": 999}}),
            r"\(top level\): test: 6 test tracks, but data/tracks/test says 999 test tracks",
        ),
        (tuning(val_acc=[0.5, 0.5]), r"tuning: 3 values of C in grid but 2 validation accuracies"),
        (tuning(grid=[1.0, 0.01, 100.0]), r"tuning: grid \[1\.0, 0\.01, 100\.0\] is not ascending"),
        (tuning(chosen=100.0), r"tuning/chosen: Extra inputs are not permitted"),
        (tuning(grid=[0.0, 1.0, 100.0]), r"tuning/grid/0: Input should be greater than 0"),
        (lambda o: o.update(variant="svm"), r"variant: Input should be 'mfcc', 'fma_mfcc_lr'"),
        (lambda o: o.update(schema_version=4), r"schema_version: Input should be 3"),
    ],
    ids=["7 classes", "label 8", "5 labels for 6 tracks", "5 rows for 6 tracks", "an accuracy stated", "row of 1.45",
         "999 tracks", "2 accuracies for 3 Cs", "grid not ascending", "a chosen C stated", "C of 0", "unknown variant",
         "schema 4"],
)  # fmt: skip
def test_a_baseline_that_contradicts_itself_is_refused(tmp_path, breaks, message):
    obj = baseline()
    breaks(obj)
    path = write_baseline(tmp_path, obj)
    with pytest.raises(ResultsError, match=f"^{path}: results JSON invalid at {message}"):
        load_baselines(tmp_path, "p")


@pytest.mark.parametrize("version", [None, 2])
def test_a_baseline_of_an_older_format_says_how_to_make_it_again(tmp_path, version):
    """The first baseline files had no schema_version; schema 2 stored its accuracies beside its predictions."""
    old = {k: v for k, v in baseline().items() if k != "schema_version"} | (
        {} if version is None else {"schema_version": 2}
    )
    path = write_baseline(tmp_path, old)
    with pytest.raises(ResultsError, match=rf"^{path}: a baseline of schema {version or 1} \(an older format\); this "
                       r"version reads schema 3: run `fmareport baseline --profile p` again \(`make report` does\)$"):  # fmt: skip
        load_baselines(tmp_path, "p")


def test_a_baseline_file_must_be_named_as_its_variant(tmp_path):
    path = write_baseline(tmp_path, baseline(), "fma_mfcc_lr")
    with pytest.raises(ResultsError, match=rf"^{path}: holds baseline 'mfcc', but its name says 'fma_mfcc_lr'$"):
        load_baselines(tmp_path, "p")
    path.unlink()
    path = write_baseline(tmp_path, baseline(), "mfcc_svm")
    with pytest.raises(ResultsError, match=rf"^{path}: not a baseline's file; they are mfcc.json, fma_mfcc_lr.json"):
        load_baselines(tmp_path, "p")


def test_a_baselines_artists_are_read_back_and_checked(tmp_path):
    write_baseline(tmp_path, {**baseline(), "test": TEST | {"artist_ids": ARTIST_IDS}})
    assert load_baselines(tmp_path, "p")["mfcc"].test.artist_ids == ARTIST_IDS
    path = write_baseline(tmp_path / "short", {**baseline(), "test": TEST | {"artist_ids": ARTIST_IDS[:5]}})
    with pytest.raises(ResultsError, match=f"^{path}: .*test: 6 track ids, 6 labels, 5 artist ids"):
        load_baselines(tmp_path / "short", "p")


def test_the_json_schema_describes_the_files_as_written():
    """`fmareport schema` validates a results file as it is on disk: its config flat, as a params file
    (the model holds it in sections), and refuses a bad config value."""
    import jsonschema
    from fakes import cell_result

    validator = jsonschema.Draft202012Validator(schema())
    written = json.loads(cell_result(accs=[0.5, 0.6]).model_dump_json())
    assert "n_fft" in written["config"] and list(validator.iter_errors(written)) == []
    written["config"]["n_fft"] = "1024"
    (error,) = validator.iter_errors(written)
    assert list(error.absolute_path) == ["config", "n_fft"]


@pytest.mark.parametrize("key, value, where", [("n_fft", 1023, "config"), ("n_fft", "x", "config/n_fft")])
def test_a_bad_config_in_a_results_file_is_named_as_the_file_has_it(key, value, where):
    from fakes import cell_result

    written = json.loads(cell_result(accs=[0.5]).model_dump_json())
    written["config"][key] = value
    with pytest.raises(ResultsError, match=rf"^results JSON invalid at {where}: "):
        validate(written)

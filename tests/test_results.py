"""A results file agrees with itself, or is refused naming the file and the field (docs/faults.md, case 12).

`cell_results` builds a small results dict whose every number follows from its predictions,
as training writes it; each test breaks one thing the way a stale, mixed or hand-edited file
would. Real runs pass the same checks: tests/test_train.py and tests/test_baseline.py.
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
from fmareport.results import (
    PROB_SUM_TOLERANCE,
    ResultsError,
    SeedResult,
    load_baselines,
    read_results,
    schema,
    summarize,
    validate,
)

LABELS = [0, 1, 2, 3, 3, 7]  # six test tracks
GUESS = [0, 1, 2, 3, 4, 7]  # what the network predicts: 5 of 6 right
TRACK_IDS = [2, 5, 9, 11, 12, 20]


def probs(guess: list[int]) -> list[list[float]]:
    """A row per track: 0.65 on the guess, 0.05 elsewhere (sums to 1)."""
    rows = np.full((len(guess), 8), 0.05)
    rows[np.arange(len(guess)), guess] = 0.65
    return rows.tolist()


def seed_record(seed: int, val_accs=(0.25, 0.5)) -> dict:
    confusion = np.zeros((8, 8), int)
    np.add.at(confusion, (LABELS, GUESS), 1)
    acc = float(np.mean(np.equal(LABELS, GUESS)))
    rows = confusion.sum(1)
    return {
        "seed": seed,
        "history": [
            {"epoch": e, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": v, "seconds": 1.0}
            for e, v in enumerate(val_accs, start=1)
        ],
        "test_acc_last": acc,
        "test_acc_best": acc,  # the best epoch is the last
        "best_epoch": 1 + val_accs.index(max(val_accs)),
        "confusion": confusion.tolist(),
        "per_genre_acc": {g: (float(confusion[i, i] / rows[i]) if rows[i] else None) for i, g in enumerate(GENRES)},
        "n_params": 1234,
        "seconds": 2.0,
        "segments_per_second": 10.0,
        "test_track_ids": TRACK_IDS,
        "test_labels": LABELS,
        "test_probs": probs(GUESS),
    }


DATA = {
    "source": "synth",
    "data_dir": "data",
    "store": "/stores/x",
    "store_fingerprint": "abc",
    "tracks": {"training": 30, "validation": 6, "test": len(LABELS)},
    "skipped": 0,
}


def cell_results(seeds=(0, 1)) -> dict:
    """A results dict that agrees with itself: two seeds of two epochs, six test tracks."""
    cfg = Config(profile="p", cell="table1/raw_whole", seeds=list(seeds), epochs=2)
    records = [seed_record(s) for s in seeds]
    obj = {
        "schema_version": 3,
        "run_id": "0" * 32,
        "profile": "p",
        "cell": "table1/raw_whole",
        "config": cfg.to_dict(),
        "genres": list(GENRES),
        "data": DATA,
        "seeds": records,
        "summary": summary(records),
        "provenance": PROVENANCE,
    }
    return obj


def summary(records: list[dict]) -> dict:
    return summarize([SeedResult.model_validate(r) for r in records]).model_dump()


def refused(tmp_path, obj: dict) -> str:
    """Write `obj` as a results file; read_results must refuse it. Returns the message."""
    path = tmp_path / "raw_whole.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ResultsError) as err:
        read_results(path)
    message = str(err.value)
    assert message.startswith(f"{path}: results JSON invalid at ") and "\n" not in message
    return message


def test_a_consistent_file_is_read_back_whole(tmp_path):
    path = tmp_path / "raw_whole.json"
    obj = cell_results()
    path.write_text(json.dumps(obj))
    assert read_results(path).seeds[1].test_track_ids == TRACK_IDS
    assert read_results(path).summary.test_acc_last_mean == pytest.approx(5 / 6)


def scale_confusion(o):
    """The confusion matrix of 400 tracks against 6 test labels (a stale matrix)."""
    o["seeds"][0]["confusion"] = (np.array(o["seeds"][0]["confusion"]) * 400 // 6).tolist()


def shift(key, i=1):
    def change(o):
        o["seeds"][i][key] = list(o["seeds"][i][key])
        o["seeds"][i][key][0] += 1

    return change


@pytest.mark.parametrize(
    "breaks, message",
    [
        (scale_confusion, r"seeds/0: confusion\[0\]\[0\] is 66, but test_labels and test_probs give 1 track\(s\) of"),
        (
            lambda o: o["seeds"][0]["per_genre_acc"].update(Folk=0.5),
            r"seeds/0: per_genre_acc\['Folk'\] is 0\.5, but the confusion matrix gives 1\.0",
        ),
        (
            lambda o: o["seeds"][0]["per_genre_acc"].update(Pop=0.0),
            r"seeds/0: per_genre_acc\['Pop'\] is 0\.0, but the confusion matrix gives None",
        ),
        (
            lambda o: o["seeds"][0]["per_genre_acc"].pop("Pop"),
            r"seeds/0: per_genre_acc: its keys must be the 8 genres",
        ),
        (
            lambda o: o["seeds"][0].update(best_epoch=99),
            r"seeds/0: best_epoch is 99, but the history has 2 epoch\(s\)",
        ),
        (
            lambda o: o["seeds"][0].update(best_epoch=1),
            r"seeds/0: best_epoch is 1, but the first epoch with the highest val_acc \(0\.5\) is 2",
        ),
        (
            lambda o: o["seeds"][0].update(test_acc_best=0.1),
            r"seeds/0: test_acc_best is 0\.1, but the best epoch is the last, whose test_acc_last is 0\.83",
        ),
        (
            lambda o: o["seeds"][0]["history"][1].update(epoch=3),
            r"seeds/0: history\[1\]\.epoch is 3; the epochs are 1 to 2 in order",
        ),
        (
            lambda o: o["seeds"][0]["test_probs"][2].__setitem__(0, 1.0),  # a row of 1.95
            r"seeds/0: test_probs\[2\] sums to 1\.95; a row of probabilities sums to 1 \(within 1e-05\)",
        ),
        (
            lambda o: o["seeds"][0].update(test_probs=[[0.9] * 8] * 6),  # rows of 7.2
            r"seeds/0: test_probs\[0\] sums to 7\.2;",
        ),
        (
            lambda o: o["seeds"][0].update(test_acc_last=1.0, test_acc_best=1.0),
            r"seeds/0: test_acc_last is 1\.0, but test_probs give 5 of 6 tracks right \(0\.83",
        ),
        (
            lambda o: o["seeds"][0].update(test_labels=LABELS[:4]),
            r"seeds/0: test_track_ids, test_labels, test_probs: 6 track ids, 4 labels, 6 rows",
        ),
        (
            lambda o: o["seeds"][0].update(test_track_ids=[2, 5, 5, 11, 12, 20]),
            r"seeds/0: test_track_ids\[2\]: 5 after 5; the ids must be ascending, each track once",
        ),
        (
            lambda o: o["seeds"][0].update(test_track_ids=TRACK_IDS[::-1]),
            r"seeds/0: test_track_ids\[1\]: 12 after 20",
        ),
        (
            lambda o: o["data"]["tracks"].update(test=999),
            r"\(top level\): seeds/0/test_track_ids: 6 test predictions, but data/tracks/test says 999 test tracks",
        ),
        (shift("test_track_ids"), r"\(top level\): seeds/1/test_track_ids differs from seeds/0/test_track_ids"),
        (lambda o: o["seeds"][1].update(n_params=99), r"seeds/1/n_params differs from seeds/0/n_params"),
        (
            lambda o: o["config"].update(epochs=3),
            r"\(top level\): seeds/0/history: 2 epoch\(s\), but config\.epochs is 3",
        ),
        (
            lambda o: o.update(genres=sorted(GENRES, reverse=True)),
            r"\(top level\): genres: \['Rock', .*\] are not the label order",
        ),
    ],
    ids=[
        "stale confusion",
        "per-genre wrong",
        "per-genre of no track",
        "per-genre key missing",
        "best epoch 99 of 2",
        "best epoch not the first best",
        "best accuracy not the last",
        "epochs out of order",
        "row of 1.95",
        "rows of 7.2",
        "accuracy not the predictions",
        "4 labels for 6 tracks",
        "a track twice",
        "ids descending",
        "999 test tracks",
        "other tracks per seed",
        "other network per seed",
        "history not config.epochs",
        "genres reordered",
    ],
)
def test_a_file_that_contradicts_itself_is_refused_naming_the_field(tmp_path, breaks, message):
    obj = copy.deepcopy(cell_results())
    breaks(obj)
    assert re.search(message, refused(tmp_path, obj))


def test_labels_that_differ_between_seeds_are_refused(tmp_path):
    """Seed 1's labels are not seed 0's (its predictions and numbers agree among themselves)."""
    obj = cell_results()
    seed = obj["seeds"][1]
    seed["test_labels"] = [1, 1, 2, 3, 3, 7]  # track 2 is Experimental now: 4 of 6 right
    seed["confusion"][0][0], seed["confusion"][1][0] = 0, 1
    seed["test_acc_last"] = seed["test_acc_best"] = 4 / 6
    seed["per_genre_acc"].update(Electronic=None, Experimental=0.5)
    obj["summary"] = summary(obj["seeds"])
    assert "(top level): seeds/1/test_labels differs from seeds/0/test_labels" in refused(tmp_path, obj)


ARTIST_IDS = [1, 1, 6, 4, 4, 4]  # the six test tracks' artists: three artists


def test_files_with_and_without_the_test_tracks_artists_read_back(tmp_path):
    """A file written before artists were recorded reads back with none (its intervals resample tracks);
    one with them keeps them, in test_track_ids' order."""
    path = tmp_path / "raw_whole.json"
    old = cell_results()
    assert "test_artist_ids" not in old["seeds"][0]
    path.write_text(json.dumps(old))
    assert [s.test_artist_ids for s in read_results(path).seeds] == [None, None]
    new = cell_results()
    for seed in new["seeds"]:
        seed["test_artist_ids"] = ARTIST_IDS
    path.write_text(json.dumps(new))
    assert [s.test_artist_ids for s in read_results(path).seeds] == [ARTIST_IDS, ARTIST_IDS]


@pytest.mark.parametrize(
    "artists, message",
    [
        ([ARTIST_IDS[:5]] * 2, r"seeds/0: test_artist_ids: 5 artist ids for 6 test tracks; one per test track"),
        (
            [ARTIST_IDS, ARTIST_IDS[::-1]],
            r"\(top level\): seeds/1/test_artist_ids differs from seeds/0/test_artist_ids",
        ),
        ([ARTIST_IDS, None], r"\(top level\): seeds/1/test_artist_ids differs from seeds/0/test_artist_ids"),
        ([[1, 1, None, 4, 4, 4]] * 2, r"seeds/0/test_artist_ids/2: Input should be a valid integer"),
        ([[1, 1, "AWOL", 4, 4, 4]] * 2, r"seeds/0/test_artist_ids/2: Input should be a valid integer"),
    ],
    ids=["5 artists for 6 tracks", "other artists per seed", "artists in one seed only", "null", "a name"],
)
def test_test_tracks_artists_that_do_not_fit_are_refused(tmp_path, artists, message):
    obj = cell_results()
    for seed, a in zip(obj["seeds"], artists):
        seed["test_artist_ids"] = a
    assert re.search(message, refused(tmp_path, obj))


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
        "schema_version": 2,
        "run_id": "1" * 32,
        "profile": "p",
        "variant": "mfcc",
        "name": "Our clips: MFCC (140) + LR",
        "features": "20 MFCCs, 7 statistics",
        "n_features": 140,
        "features_file": None,
        "classifier": "logistic regression",
        "tuning": {"grid": [0.01, 1.0, 100.0], "val_acc": [0.25, 0.5, 0.5], "chosen": 1.0},
        "data": DATA,
        "train_acc": 0.9,
        "val_acc": 0.5,
        "test_acc": 5 / 6,
        "test_track_ids": TRACK_IDS,
        "test_labels": LABELS,
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
    assert read["fma_all_svm"].features_file.sha1 == "a" * 40


def tuning(**changes):
    return lambda o: o.update(tuning={**o["tuning"], **changes})


@pytest.mark.parametrize(
    "breaks, message",
    [
        (lambda o: o.update(test_probs=[r[:7] for r in o["test_probs"]]), r"test_probs/0: List should have at least 8"),
        (lambda o: o.update(test_labels=[8] * 6), r"test_labels/0: Input should be less than 8"),
        (lambda o: o.update(test_labels=LABELS[:5]), r"\(top level\): .* 6 track ids, 5 labels, 6 rows"),
        (lambda o: o.update(test_acc=0.9), r"\(top level\): test_acc is 0\.9, but test_probs give 5 of 6 tracks"),
        (lambda o: o["test_probs"][0].__setitem__(1, 0.5), r"\(top level\): test_probs\[0\] sums to 1\.45"),
        (
            lambda o: o.update(data={**DATA, "tracks": {**DATA["tracks"], "test": 999}}),
            r"\(top level\): test_track_ids: 6 test predictions, but data/tracks/test says 999 test tracks",
        ),
        (tuning(val_acc=[0.5, 0.5]), r"tuning: 3 values of C in grid but 2 validation accuracies"),
        (tuning(grid=[1.0, 0.01, 100.0]), r"tuning: grid \[1\.0, 0\.01, 100\.0\] is not ascending"),
        (tuning(chosen=100.0), r"tuning: chosen is 100, but the first C with the highest validation accuracy "
         r"\(0\.5\) is 1"),
        (tuning(grid=[0.0, 1.0, 100.0]), r"tuning/grid/0: Input should be greater than 0"),
        (lambda o: o.update(val_acc=0.25), r"\(top level\): val_acc is 0\.25, but the tuning gives 0\.5 at the "
         r"chosen C \(1\)"),
        (lambda o: o.update(variant="svm"), r"variant: Input should be 'mfcc', 'fma_mfcc_lr'"),
        (lambda o: o.update(schema_version=1), r"schema_version: Input should be 2"),
    ],
    ids=["7 classes", "label 8", "5 labels for 6 tracks", "accuracy not the predictions", "row of 1.45", "999 tracks",
         "2 accuracies for 3 Cs", "grid not ascending", "chosen not the best", "C of 0", "val_acc not the best",
         "unknown variant", "schema 1"],
)  # fmt: skip
def test_a_baseline_that_contradicts_itself_is_refused(tmp_path, breaks, message):
    obj = baseline()
    breaks(obj)
    path = write_baseline(tmp_path, obj)
    with pytest.raises(ResultsError, match=f"^{path}: results JSON invalid at {message}"):
        load_baselines(tmp_path, "p")


def test_a_baseline_of_the_first_format_says_how_to_make_it_again(tmp_path):
    """The first baseline files (mfcc.json: 40 MFCC statistics, C fixed at 1) have no schema_version."""
    old = {k: v for k, v in baseline().items() if k not in ("schema_version", "variant", "n_features", "tuning")}
    path = write_baseline(tmp_path, {**old, "features_file": None})
    with pytest.raises(ResultsError, match=rf"^{path}: a baseline of the first format .* run `fmareport baseline "
                       r"--profile p` again \(`make report` does\)$"):  # fmt: skip
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
    write_baseline(tmp_path, {**baseline(), "test_artist_ids": ARTIST_IDS})
    assert load_baselines(tmp_path, "p")["mfcc"].test_artist_ids == ARTIST_IDS
    path = write_baseline(tmp_path / "short", {**baseline(), "test_artist_ids": ARTIST_IDS[:5]})
    with pytest.raises(ResultsError, match=f"^{path}: .*test_artist_ids: 5 artist ids for 6 test tracks"):
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

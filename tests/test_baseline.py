"""The computed baselines on the tiny store: FMA's MFCC statistics of our clips, FMA's features.csv,
C tuned on validation, predictions kept per test track."""

from __future__ import annotations

import hashlib
import warnings

import librosa
import numpy as np
import pytest
import yaml
from scipy import stats

from fmareport.baseline import (
    C_GRID,
    N_MFCC,
    VARIANTS,
    baseline_path,
    baselines_for,
    features_csv,
    frame_statistics,
    make_classifier,
    mfcc_features,
    run_baselines,
)
from fmareport.cli import main
from fmareport.data.audio import to_float
from fmareport.data.fma import FEATURE_STATISTICS, GENRES
from fmareport.results import BASELINE_SCHEMA_VERSION, load_baselines


def test_features_are_fmas_7_statistics_of_20_mfccs_per_clip(tiny_store):
    features = mfcc_features(tiny_store, progress=False)
    assert features.shape == (len(tiny_store), 7 * N_MFCC)
    m = librosa.feature.mfcc(y=to_float(np.asarray(tiny_store.audio[3])), sr=tiny_store.sample_rate, n_mfcc=N_MFCC)
    m = m.astype(np.float64)  # (20, frames)
    fma = {  # FMA's features.py, spelled out: numpy's, and scipy.stats' defaults (biased; Fisher's kurtosis)
        "kurtosis": stats.kurtosis(m, axis=1),
        "max": np.max(m, axis=1),
        "mean": np.mean(m, axis=1),
        "median": np.median(m, axis=1),
        "min": np.min(m, axis=1),
        "skew": stats.skew(m, axis=1),
        "std": np.std(m, axis=1),
    }
    expected = np.concatenate([fma[s] for s in FEATURE_STATISTICS])  # features.csv's order: statistic-major
    np.testing.assert_allclose(features[3], expected, rtol=1e-4, atol=1e-3)


def test_the_first_baselines_40_are_the_mean_and_std_blocks(tiny_store):
    """moments_only (what benchmarks/bench_baseline.py times against the 140) is the first baseline's 40."""
    rows = slice(0, 5)
    full = mfcc_features(tiny_store, progress=False)[rows]
    mean, std = (FEATURE_STATISTICS.index(s) for s in ("mean", "std"))
    first = np.concatenate(
        [full[:, mean * N_MFCC : (mean + 1) * N_MFCC], full[:, std * N_MFCC : (std + 1) * N_MFCC]], 1
    )
    moments = mfcc_features(tiny_store, progress=False, moments_only=True)[rows]  # float32 sums, as it was
    np.testing.assert_allclose(moments, first, rtol=1e-4)


def test_a_row_constant_over_its_frames_has_no_skew_or_kurtosis():
    values = np.zeros((2, 3, 50))  # (B, rows, frames)
    values[0, 0] = np.arange(50.0) ** 2  # one row that varies
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's precision-loss warning is not let out
        out = frame_statistics(values).reshape(2, 7, 3)  # (B, statistics, rows)
    assert np.isfinite(out).all()
    skew, kurtosis = FEATURE_STATISTICS.index("skew"), FEATURE_STATISTICS.index("kurtosis")
    assert out[0, skew, 0] == pytest.approx(stats.skew(values[0, 0])) and out[0, skew, 0] > 0
    assert (out[:, [skew, kurtosis], 1:] == 0).all() and (out[1, [skew, kurtosis]] == 0).all()


def test_which_baselines_a_profile_runs(tiny_config):
    assert baselines_for(tiny_config) == ["mfcc"]  # a synthetic set's features.csv holds no audio features
    assert baselines_for(tiny_config.replace(data_source="fma")) == list(VARIANTS)


def check_baseline(res, store, name: str) -> None:
    """What every baseline file holds: its tuning over C_GRID, the predictions of the chosen fit."""
    assert res["variant"] == name and res["schema_version"] == BASELINE_SCHEMA_VERSION
    tuning = res["tuning"]
    assert tuning["grid"] == list(C_GRID) and len(tuning["val_acc"]) == len(C_GRID)
    test = store.split_indices("test")
    assert res["test"] == {
        "track_ids": store.index["track_id"].to_numpy()[test].tolist(),
        "labels": store.labels[test].tolist(),
        "artist_ids": store.artists[test].tolist(),
    }
    probs = np.asarray(res["test_probs"])
    assert probs.shape == (len(test), len(GENRES)) and np.allclose(probs.sum(axis=1), 1)


def test_the_mfcc_baseline_tunes_c_on_validation_and_fits_on_training_only(tiny_config, tiny_store, tmp_path):
    cfg = tiny_config.replace(results_dir=str(tmp_path / "results"))
    (res,) = run_baselines(cfg, progress=False)
    read = load_baselines(cfg.run.results_dir, cfg.profile)
    assert baseline_path(cfg).is_file() and {k: r.model_dump(mode="json") for k, r in read.items()} == {
        "mfcc": res.model_dump(mode="json")
    }
    check_baseline(res.model_dump(mode="json"), tiny_store, "mfcc")
    assert res.n_features == 140 and res.features_file is None
    assert res.train_acc >= 0.8  # 8 distinct synthetic styles: a linear model on MFCCs separates them
    # scikit-learn's run: the machine without torch's facts (torch is not imported for them)
    assert res.provenance.device == "cpu" and {"cpu", "memory_gib"} <= set(res.provenance.hardware)
    assert not {"torch_threads", "cuda", "gpus"} & set(res.provenance.hardware)

    # The kept model is the chosen C's fit on the training split alone (not training + validation).
    features, labels = mfcc_features(tiny_store, progress=False), tiny_store.labels
    train, test = tiny_store.split_indices("training"), tiny_store.split_indices("test")
    assert res.tuning.chosen == C_GRID[int(np.argmax(res.tuning.val_acc))] and res.val_acc == max(res.tuning.val_acc)
    model = make_classifier("lr", res.tuning.chosen).fit(features[train], labels[train])
    probs = np.zeros((len(test), len(GENRES)))
    probs[:, model.classes_] = model.predict_proba(features[test])
    np.testing.assert_allclose(res.test_probs, probs, atol=1e-9)


def test_the_features_csv_baselines_run_end_to_end_on_the_tiny_set(tiny_config, tiny_store, tmp_path):
    """LR and SVM on FMA's features.csv format (the synthetic set's: genre centres + noise, 32 noise SDs
    apart): every test track right shows that each track got its own row (another track's row would
    leave them at chance)."""
    cfg = tiny_config.replace(results_dir=str(tmp_path / "results"))
    names = ["fma_mfcc_lr", "fma_mfcc_svm", "fma_all_lr", "fma_all_svm"]
    run = run_baselines(cfg, names, progress=False)
    read = load_baselines(cfg.run.results_dir, cfg.profile)
    assert list(read) == names and [r.model_dump(mode="json") for r in run] == [
        r.model_dump(mode="json") for r in read.values()
    ]
    path = features_csv(cfg)
    for name, res in read.items():
        check_baseline(res.model_dump(mode="json"), tiny_store, name)
        assert res.n_features == (140 if "mfcc" in name else 518)
        assert res.features_file.model_dump() == {
            "path": str(path.resolve()),
            "sha1": hashlib.sha1(path.read_bytes()).hexdigest(),
        }
        assert res.test_acc == 1.0 and res.val_acc == 1.0, name
    svm = np.asarray(read["fma_all_svm"].test_probs)
    assert set(np.unique(svm)) == {0.0, 1.0}  # an SVM has no probabilities: the one-hot of its decision


def test_the_features_csv_baselines_say_which_file_is_missing(tiny_config, tmp_path, monkeypatch):
    cfg = tiny_config.replace(results_dir=str(tmp_path / "results"))
    missing = tmp_path / "fma_metadata" / "features.csv"
    monkeypatch.setattr("fmareport.baseline.features_csv", lambda cfg: missing)
    with pytest.raises(FileNotFoundError, match=f"^{missing}: no features.csv here"):
        run_baselines(cfg, ["fma_all_lr"], progress=False)
    assert not (tmp_path / "results").exists()  # nothing half-written


def test_an_unknown_baseline_is_refused(tiny_config):
    with pytest.raises(ValueError, match=r"unknown baseline\(s\) \['mfcc_svm'\]: one of \['mfcc', 'fma_mfcc_lr'"):
        run_baselines(tiny_config, ["mfcc_svm"], progress=False)


def test_fmareport_baseline_runs_the_profiles_baselines_or_exits_1_naming_the_missing_file(
    tiny_config, tiny_store, tmp_path, monkeypatch, capsys
):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(yaml.safe_dump(tiny_config.replace(results_dir=str(tmp_path / "results")).to_dict()))
    assert main(["baseline", "--profile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny baseline mfcc: C ") and out.strip().endswith("baselines/mfcc.json")
    assert list(load_baselines(tmp_path / "results", "tiny")) == ["mfcc"]

    missing = tmp_path / "fma_metadata" / "features.csv"
    monkeypatch.setattr("fmareport.baseline.features_csv", lambda cfg: missing)
    assert main(["baseline", "--profile", str(profile), "--only", "fma_mfcc_svm"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith(f"{missing}: no features.csv here "
           "(it comes with fma_metadata.zip: `fmareport fetch DIR`; a synthetic set made before synth wrote it: "
           "make it again with `fmareport synth ... --force`)")  # fmt: skip

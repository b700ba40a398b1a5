"""The computed baseline: MFCC statistics per clip and a logistic regression, on the tiny store."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from fmareport.baseline import N_MFCC, baseline_path, mfcc_features, run_baseline
from fmareport.data.audio import to_float
from fmareport.data.fma import GENRES
from fmareport.report.results import load_baseline


def test_features_are_mean_and_std_of_20_mfccs_per_clip(tiny_store):
    features = mfcc_features(tiny_store, progress=False)
    assert features.shape == (len(tiny_store), 2 * N_MFCC)
    m = librosa.feature.mfcc(y=to_float(np.asarray(tiny_store.audio[3])), sr=tiny_store.sample_rate, n_mfcc=N_MFCC)
    np.testing.assert_allclose(features[3], np.r_[m.mean(axis=1), m.std(axis=1)], rtol=1e-4, atol=1e-3)


def test_baseline_learns_and_keeps_its_test_predictions(tiny_config, tiny_store, tmp_path):
    cfg = tiny_config.replace(results_dir=str(tmp_path / "results"))
    res = run_baseline(cfg, progress=False)
    assert baseline_path(cfg).is_file() and load_baseline(cfg.results_dir, cfg.profile) == res.model_dump(mode="json")
    test = tiny_store.split_indices("test")
    assert res.test_track_ids == tiny_store.index["track_id"].to_numpy()[test].tolist()
    assert res.test_artist_ids == tiny_store.artists[test].tolist()
    probs = np.asarray(res.test_probs)
    assert probs.shape == (len(test), len(GENRES)) and np.allclose(probs.sum(axis=1), 1)
    assert res.test_acc == pytest.approx((probs.argmax(1) == np.asarray(res.test_labels)).mean())
    assert res.train_acc >= 0.8  # 8 distinct synthetic styles: a linear model on MFCCs separates them

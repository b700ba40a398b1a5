"""A computed baseline on the same clips and split: MFCC statistics and a linear classifier.

Per clip of the store (the CNN's own clips, so the comparison is on the same audio and the
same test tracks): 20 MFCCs (librosa's defaults: 2048-sample frames, hop 512, 128 mel bands),
their mean and standard deviation over frames -> 40 numbers; standardised on the training
split, then a multinomial logistic regression (scikit-learn, L2, C = 1) trained on the
training split. Its test predictions are kept per track, so the book compares each CNN
cell with it paired on the same tracks. `fmareport baseline --profile P` writes
`results/<profile>/baselines/mfcc.json`.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from .config import Config
from .data.audio import to_float
from .data.fma import GENRES
from .data.store import ClipStore, prepare
from .progress import tqdm
from .report import provenance
from .report.results import BaselineResults, DataInfo, Provenance, write_atomic

N_MFCC = 20  # the classic MFCC baseline's coefficients (as in FMA's own baselines)
CHUNK = 64  # clips per librosa call: bounds memory at the paper's 10**6-sample clips
NAME = "MFCC (20) mean and std + logistic regression"


def mfcc_features(store: ClipStore, progress: bool = True) -> np.ndarray:
    """Mean and std over frames of 20 MFCCs of every clip: (n_tracks, 40) float64."""
    import librosa

    out = []
    for start in tqdm(range(0, len(store.audio), CHUNK), desc="mfcc", unit="chunk", disable=not progress):
        x = to_float(np.asarray(store.audio[start : start + CHUNK]))  # (B, N) in [-1, 1)
        mel = librosa.feature.melspectrogram(y=x, sr=store.sample_rate)  # (B, 128, frames) power
        # dB per clip: power_to_db's 80 dB floor is relative to the maximum of the array it is given,
        # so a batch at once would make each clip's features depend on the others in its batch.
        db = np.stack([librosa.power_to_db(m) for m in mel])  # (B, 128, frames)
        m = librosa.feature.mfcc(S=db, n_mfcc=N_MFCC)  # (B, 20, frames), what mfcc(y=clip) gives per clip
        out.append(np.concatenate([m.mean(axis=-1), m.std(axis=-1)], axis=1))  # (B, 40)
    return np.concatenate(out).astype(np.float64)


def baseline_path(cfg: Config) -> Path:
    return Path(cfg.results_dir) / cfg.profile / "baselines" / "mfcc.json"


def run_baseline(cfg: Config, progress: bool = True) -> BaselineResults:
    """Fit the baseline on the store's training split, score it per track; write and return it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = provenance.now()
    store = prepare(cfg, progress)
    features, labels = mfcc_features(store, progress), store.labels
    rows = {s: store.split_indices(s) for s in ("training", "validation", "test")}
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(features[rows["training"]], labels[rows["training"]])
    probs = np.zeros((len(rows["test"]), len(GENRES)))
    probs[:, model.classes_] = model.predict_proba(features[rows["test"]])  # classes absent from training: 0

    def accuracy(split: str) -> float:
        return float((model.predict(features[rows[split]]) == labels[rows[split]]).mean())

    results = BaselineResults(
        run_id=uuid.uuid4().hex,
        profile=cfg.profile,
        name=NAME,
        features=f"{N_MFCC} MFCCs (librosa defaults) per clip, mean and std over frames",
        classifier="standardised, then multinomial logistic regression (scikit-learn, L2, C=1)",
        data=DataInfo.of(cfg, store),
        train_acc=accuracy("training"),
        val_acc=accuracy("validation"),
        test_acc=float((probs.argmax(axis=1) == labels[rows["test"]]).mean()),
        test_track_ids=store.index["track_id"].to_numpy()[rows["test"]].tolist(),
        test_labels=labels[rows["test"]].tolist(),
        test_probs=probs.tolist(),
        test_artist_ids=store.artists[rows["test"]].tolist(),
        provenance=Provenance(
            **provenance.collect("cpu"), started=started, finished=provenance.now(), entry="fmareport baseline"
        ),
    )
    write_atomic(baseline_path(cfg), results.model_dump_json(indent=1) + "\n")
    return results

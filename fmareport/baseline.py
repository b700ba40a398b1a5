"""Computed baselines on the same split and test tracks: features per track, a classifier tuned on validation.

Features: 20 MFCCs of each of our clips summarised over frames by FMA's 7 statistics
(`mfcc_features`, 140 numbers; every profile), or FMA's own features.csv of each whole track, its
MFCC block or all 518 columns (FMA profiles only: a synthetic set's features.csv holds no audio
features). Each is standardised and classified by a logistic regression or an RBF SVM whose C is
chosen on the validation split (`tune`); `VARIANTS` names the five. `run_baselines(cfg)`
(`fmareport baseline --profile P`) writes each to results/<profile>/baselines/<name>.json as soon
as it is done. The contract: docs/contracts.md ("Baselines").
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import provenance
from .config import Config
from .data.audio import to_float
from .data.fma import FEATURE_STATISTICS, FEATURES_COLUMNS, GENRES, SPLITS, load_features
from .data.store import ClipStore, prepare
from .files import file_digest, write_atomic
from .progress import tqdm
from .results import (
    BASELINE_SCHEMA_VERSION,
    BASELINES,
    BaselineResults,
    DataInfo,
    Provenance,
    SourceFile,
    TestTracks,
    Tuning,
)

N_MFCC = 20  # the classic MFCC baseline's coefficients (FMA's features.csv has 20 too)
CHUNK = 64  # clips per librosa call: bounds memory at the paper's 10**6-sample clips
# One C per decade: on standardised features the L2 penalty goes from nearly all (10**-3: a prior-like
# guess) to nearly none (10**2), with scikit-learn's default C = 1 (FMA's published baselines') inside.
# The same grid for the SVM, whose gamma 'scale' is 1 / n_features on standardised features: FMA's 'auto'.
C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
MAX_ITER = 5000  # lbfgs iterations: no ConvergenceWarning at any C of the grid on the demo store (140)


@dataclass(frozen=True)
class Variant:
    """One baseline: where its features come from and which classifier it fits."""

    name: str  # results/<profile>/baselines/<name>.json; BaselineResults.variant
    title: str  # BaselineResults.name: the book's label
    source: str  # "clips" (the store's audio) | "features.csv" (FMA's, fma_metadata/)
    block: str | None  # features.csv: a feature of fma.FEATURE_SIZES (its 7 x size columns); None: all 518
    classifier: str  # "lr" | "svm"


VARIANTS = {
    v.name: v
    for v in (
        Variant("mfcc", "Our clips: MFCC (140) + LR", "clips", None, "lr"),
        Variant("fma_mfcc_lr", "FMA features.csv: MFCC (140) + LR", "features.csv", "mfcc", "lr"),
        Variant("fma_mfcc_svm", "FMA features.csv: MFCC (140) + SVM", "features.csv", "mfcc", "svm"),
        Variant("fma_all_lr", "FMA features.csv: all (518) + LR", "features.csv", None, "lr"),
        Variant("fma_all_svm", "FMA features.csv: all (518) + SVM", "features.csv", None, "svm"),
    )
}
assert tuple(VARIANTS) == BASELINES, "baseline.VARIANTS drifted from results.BASELINES"

CLASSIFIERS = {  # how each classifier is described in its results file
    "lr": "standardised, then multinomial logistic regression (scikit-learn, L2, lbfgs)",
    "svm": "standardised, then an RBF SVM (scikit-learn SVC, gamma 'scale'; one-vs-one; its test "
    "'probabilities' are the one-hot of its decision)",
}


def baselines_for(cfg: Config) -> list[str]:
    """The baselines that apply to a profile: ours on its clips always; features.csv's on FMA data."""
    return [v.name for v in VARIANTS.values() if v.source == "clips" or cfg.data.source == "fma"]


def baseline_path(cfg: Config, name: str = "mfcc") -> Path:
    return Path(cfg.run.results_dir) / cfg.profile / "baselines" / f"{name}.json"


def features_csv(cfg: Config) -> Path:
    """Where a data set's features.csv is: beside tracks.csv, as fma_metadata.zip holds it."""
    return Path(cfg.run.data_dir) / "fma_metadata" / "features.csv"


# --- features ------------------------------------------------------------------------------


def frame_statistics(values: np.ndarray) -> np.ndarray:
    """FMA's 7 statistics over frames: values (B, rows, frames) -> float64 (B, 7 * rows).

    Statistic-major in fma.FEATURE_STATISTICS order, as features.csv's columns of one feature
    (kurtosis of rows 1..n, then max, ...), computed as FMA's features.py does: numpy's mean, std
    (ddof 0), median, min, max; scipy.stats.skew and kurtosis at their defaults (biased; Fisher's).
    A row constant over its frames has no skew or kurtosis (scipy: NaN, FMA's file: empty): 0 here.
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)  # (B, rows, frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's "precision loss" on a constant row
        skew, kurtosis = stats.skew(v, axis=-1), stats.kurtosis(v, axis=-1)
    of = {
        "kurtosis": np.nan_to_num(kurtosis, nan=0.0),
        "max": v.max(axis=-1),
        "mean": v.mean(axis=-1),
        "median": np.median(v, axis=-1),
        "min": v.min(axis=-1),
        "skew": np.nan_to_num(skew, nan=0.0),
        "std": v.std(axis=-1),
    }
    return np.concatenate([of[s] for s in FEATURE_STATISTICS], axis=1)  # (B, 7 * rows)


def clip_mfccs(clips: np.ndarray, sample_rate: int) -> np.ndarray:
    """20 MFCCs per frame of each clip: int16 (B, N) -> float32 (B, 20, frames), librosa's defaults
    (2048-sample frames, hop 512, 128 mel bands): librosa.feature.mfcc(y=clip, sr=sample_rate) of each."""
    import librosa

    x = to_float(np.asarray(clips))  # (B, N) in [-1, 1)
    mel = librosa.feature.melspectrogram(y=x, sr=sample_rate)  # (B, 128, frames) power
    # dB per clip: power_to_db's 80 dB floor is relative to the maximum of the array it is given,
    # so a batch at once would make each clip's features depend on the others in its batch.
    db = np.stack([librosa.power_to_db(m) for m in mel])  # (B, 128, frames)
    return librosa.feature.mfcc(S=db, n_mfcc=N_MFCC)  # (B, 20, frames)


def mfcc_features(store: ClipStore, progress: bool = True, moments_only: bool = False) -> np.ndarray:
    """FMA's 7 statistics over frames of 20 MFCCs of every clip: float64 (n_tracks, 140), in
    features.csv's order (`frame_statistics`). moments_only: the first baseline's mean and std only,
    (n_tracks, 40) [mean 1..20, std 1..20] (benchmarks/bench_baseline.py times the two)."""
    out = []
    for start in tqdm(range(0, len(store.audio), CHUNK), desc="mfcc", unit="chunk", disable=not progress):
        m = clip_mfccs(store.audio[start : start + CHUNK], store.sample_rate)  # (B, 20, frames)
        if moments_only:
            out.append(np.concatenate([m.mean(axis=-1), m.std(axis=-1)], axis=1))  # (B, 40)
        else:
            out.append(frame_statistics(m))  # (B, 140)
    return np.concatenate(out).astype(np.float64)


def block_columns(block: str | None) -> np.ndarray:
    """Indices of a block of features.csv's 518 columns (fma.FEATURES_COLUMNS); None: all of them."""
    return np.array([i for i, c in enumerate(FEATURES_COLUMNS) if block is None or c[0] == block])


# --- classifiers ---------------------------------------------------------------------------


def make_classifier(kind: str, c: float):
    """A fresh scikit-learn pipeline: standardise (on what it is fit on), then the classifier at C = c."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind == "lr":
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER))
    if kind == "svm":
        return make_pipeline(StandardScaler(), SVC(C=c, kernel="rbf", gamma="scale"))
    raise ValueError(f"unknown classifier {kind!r}: 'lr' or 'svm'")


def class_probs(model, features: np.ndarray) -> np.ndarray:
    """(n, 8) rows in label order: predict_proba where the model has it (a genre absent from its
    training: 0), else the one-hot of its decision; the argmax of a row is the model's prediction."""
    probs = np.zeros((len(features), len(GENRES)))
    if hasattr(model, "predict_proba"):
        probs[:, model.classes_] = model.predict_proba(features)
    else:
        probs[np.arange(len(features)), model.predict(features)] = 1.0
    return probs


def accuracy(model, features: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose argmax of `class_probs` is the label (the results file's definition)."""
    return float((class_probs(model, features).argmax(axis=1) == labels).mean())


def tune(kind: str, features: np.ndarray, labels: np.ndarray, rows: dict[str, np.ndarray], grid=C_GRID):
    """Fit one classifier per C of `grid` on the training rows; keep the one with the highest validation
    accuracy (the first, so the smallest C, on a tie). Returns (fitted model, Tuning)."""
    train, val = rows["training"], rows["validation"]
    fits, scores = [], []
    for c in grid:
        model = make_classifier(kind, c).fit(features[train], labels[train])
        fits.append(model)
        scores.append(accuracy(model, features[val], labels[val]))
    best = int(np.argmax(scores))  # the first of equal ones
    return fits[best], Tuning(grid=list(grid), val_acc=scores)


# --- runs ----------------------------------------------------------------------------------


def fit_baseline(
    cfg: Config, store: ClipStore, name: str, features: np.ndarray, source: SourceFile | None, started
) -> BaselineResults:
    """Tune and fit one variant on its features (n_tracks, n_features) of the store's rows; write it."""
    variant = VARIANTS[name]
    labels = store.labels
    rows = {s: store.split_indices(s) for s in SPLITS}
    model, tuning = tune(variant.classifier, features, labels, rows)
    probs = class_probs(model, features[rows["test"]])  # (n_test, 8): ascending rows, as TestTracks.of
    what = (
        f"{N_MFCC} MFCCs (librosa defaults) per clip of the store, FMA's 7 statistics over frames"
        if variant.source == "clips"
        else f"FMA's features.csv, {variant.block or 'all'} columns ({features.shape[1]}), of each whole track"
    )
    results = BaselineResults(
        schema_version=BASELINE_SCHEMA_VERSION,
        run_id=uuid.uuid4().hex,
        profile=cfg.profile,
        variant=name,
        name=variant.title,
        features=what,
        n_features=int(features.shape[1]),
        features_file=source,
        classifier=f"{CLASSIFIERS[variant.classifier]}; C chosen on the validation split",
        tuning=tuning,
        data=DataInfo.of(cfg, store),
        train_acc=accuracy(model, features[rows["training"]], labels[rows["training"]]),
        test=TestTracks.of(store),
        test_probs=probs.tolist(),
        provenance=Provenance(
            **provenance.collect("cpu", torch_facts=False),  # scikit-learn's: torch's threads and CUDA say nothing
            started=started,
            finished=provenance.now(),
            entry="fmareport baseline",
        ),
    )
    write_atomic(baseline_path(cfg, name), results.model_dump_json(indent=1) + "\n")
    return results


def run_baselines(cfg: Config, names: list[str] | None = None, progress: bool = True) -> list[BaselineResults]:
    """Run the named baselines (default: `baselines_for(cfg)`) on the profile's store; each is written
    to results/<profile>/baselines/<name>.json as soon as it is done. Returns them in that order."""
    names = baselines_for(cfg) if names is None else names
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}: one of {list(VARIANTS)}")
    store = prepare(cfg, progress)
    table = table_file = clip_features = None
    # features.csv is read first: a bad file fails at once, not after the MFCCs' minutes.
    if any(VARIANTS[n].source == "features.csv" for n in names):
        path = features_csv(cfg)
        table = load_features(path, store.index["track_id"].to_numpy()).to_numpy()  # (n_tracks, 518), store order
        table_file = SourceFile(path=str(path.resolve()), sha1=file_digest(path))
    out = []
    for name in names:
        started, variant = provenance.now(), VARIANTS[name]
        if variant.source == "clips":
            if clip_features is None:
                clip_features = mfcc_features(store, progress)  # (n_tracks, 140)
            features, source = clip_features, None
        else:
            features, source = table[:, block_columns(variant.block)], table_file  # (n_tracks, 140 or 518)
        out.append(fit_baseline(cfg, store, name, features, source, started))
    return out

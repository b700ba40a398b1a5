"""The statistics of the report, in one place, through scipy: summaries over seeds and the
interval of a difference of two settings' accuracies."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for one value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_std: no values")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def welch_interval(a: list[float], b: list[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Difference of means mean(a) - mean(b) and its Welch t-interval: (diff, low, high).

    scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval. Needs at least two
    values on each side (the interval is over seeds). With no spread on either side there
    is no interval: low and high are NaN.
    """
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"an interval over seeds needs >= 2 seeds per side, got {len(a)} and {len(b)}")
    diff = float(np.mean(a) - np.mean(b))
    if np.var(a) == 0.0 and np.var(b) == 0.0:  # identical values on both sides: no spread
        return diff, math.nan, math.nan
    with warnings.catch_warnings():  # one side's seeds all equal: scipy warns of a zero variance, rightly 0
        warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return diff, float(ci.low), float(ci.high)


# --- the bootstrap over test tracks and seeds ------------------------------------------------------
#
# A cell's accuracy varies with the seed (initialisation, batch order) and with which tracks
# happen to be in the test split. Both enter its interval: each bootstrap replicate draws the
# test tracks with replacement (the same draw for every seed, and for both cells of a
# comparison: the comparison is paired on the same tracks) and the seeds with replacement.
# Two cells that ran the same seeds are paired by seed as well: seed s starts both from the
# same initial weights (where their layers agree) and the same batch order, so a replicate
# draws the seeds once for both, and what a seed does to both cancels as a track's difficulty
# does. Cells with other seeds draw theirs each on their own.

N_BOOT = 10_000
BOOT_SEED = 0  # the bootstrap's own generator: the same results give the same intervals


def _track_weights(n_tracks: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each test track is drawn in each replicate: (n_boot, n_tracks) counts summing to n_tracks."""
    return rng.multinomial(n_tracks, np.full(n_tracks, 1.0 / n_tracks), size=n_boot)


def _seed_draws(n_seeds: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Which seeds each replicate takes, with replacement: (n_boot, n_seeds) indices."""
    return rng.integers(0, n_seeds, size=(n_boot, n_seeds))


def _replicates(correct: np.ndarray, weights: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Accuracy of each replicate: tracks weighted by `weights`, the seeds `seeds` drew.
    correct (S, N) 0/1, weights (B, N), seeds (B, S) indices -> (B,)."""
    per_seed = weights @ correct.T / correct.shape[1]  # (B, S): each seed's accuracy on the drawn tracks
    return np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)  # (B,)


def bootstrap_accuracy(
    correct: np.ndarray, confidence: float = CONFIDENCE, n_boot: int = N_BOOT
) -> tuple[float, float, float]:
    """Accuracy and its percentile bootstrap interval over test tracks and seeds: (mean, low, high).

    correct: (S, N) booleans, seed s right on test track n (every seed on the same N tracks).
    """
    correct = np.asarray(correct, dtype=np.float64)
    rng = np.random.default_rng(BOOT_SEED)
    weights = _track_weights(correct.shape[1], n_boot, rng)
    reps = _replicates(correct, weights, _seed_draws(correct.shape[0], n_boot, rng))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(reps, [tail, 100 - tail])
    return float(correct.mean()), float(low), float(high)


def paired_bootstrap_difference(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    confidence: float = CONFIDENCE,
    n_boot: int = N_BOOT,
    same_seeds: bool = False,
) -> tuple[float, float, float, float]:
    """Accuracy of a minus b, paired on the same test tracks: (diff, low, high, standard error).

    correct_a (Sa, N), correct_b (Sb, N): the same N test tracks, in the same order, on both
    sides. Each replicate draws one set of tracks for both. same_seeds: row s of both sides
    ran the same seed, so the seeds are drawn once for both (paired by seed); otherwise each
    side draws its own.
    """
    a, b = (np.asarray(c, dtype=np.float64) for c in (correct_a, correct_b))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a paired comparison needs the same test tracks: {a.shape[1]} and {b.shape[1]} tracks")
    if same_seeds and a.shape[0] != b.shape[0]:
        raise ValueError(f"pairing by seed needs the same seeds on both sides: {a.shape[0]} and {b.shape[0]} seeds")
    rng = np.random.default_rng(BOOT_SEED)
    weights = _track_weights(a.shape[1], n_boot, rng)
    seeds_a = _seed_draws(a.shape[0], n_boot, rng)
    seeds_b = seeds_a if same_seeds else _seed_draws(b.shape[0], n_boot, rng)
    reps = _replicates(a, weights, seeds_a) - _replicates(b, weights, seeds_b)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(reps, [tail, 100 - tail])
    return float(a.mean() - b.mean()), float(low), float(high), float(reps.std(ddof=1))


def detectable_difference(standard_error: float, confidence: float = CONFIDENCE, power: float = 0.8) -> float:
    """The smallest true difference a comparison with this standard error detects with `power`
    (0.8) at the two-sided level 1 - confidence: (z_{1-alpha/2} + z_power) * se (2.80 se)."""
    return float((stats.norm.ppf(0.5 + confidence / 2) + stats.norm.ppf(power)) * standard_error)

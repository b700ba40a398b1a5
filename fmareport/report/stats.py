"""The statistics of the report, in one place, through scipy: summaries over seeds, a cell's
accuracy and the difference of two cells' accuracies with intervals over test tracks and seeds
(docs/statistics.md has the method and its measured coverage)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special  # scipy.optimize (0.25 CPU-s to import) only where a p-value is solved for

# Mean and SD over seeds: one function, the run side's (results.summarize writes them into every results file).
from ..results import mean_std as mean_std

CONFIDENCE = 0.95


# --- intervals over test tracks and seeds -------------------------------------------------------
#
# A mean accuracy m over S seeds x N tracks (c[s, n] = 1: seed s right on track n) has two variance
# components, each at its own t quantile, added in quadrature (`t_interval`):
#   tracks: var(t) / N, t[n] = mean_s c[s, n], N - 1 df (over artists: the CR1 form, G - 1 df)
#   seeds:  var(a) / S, a[s] = mean_n c[s, n], S - 1 df
# A difference is paired on the tracks, and on the seeds where both cells share their initial
# weights. Why this form, and its simulated coverage: docs/statistics.md.


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """scipy's t.ppf(p, df), remembered: an interval asks for the same few quantiles again and again
    (the coverage simulation spent 60 % of its time in scipy's ppf). Called as the ufunc stdtrit(df, p),
    which is what t.ppf computes (bit-identical), so that scipy.stats (1.5 s) need not be imported."""
    return float(special.stdtrit(df, p))


def _half_width(components: tuple[tuple[float, float], ...], confidence: float) -> float:
    """sqrt(sum_k q_k^2 v_k), q_k the two-sided t quantile of component k's df at `confidence`."""
    return math.sqrt(sum(t_quantile(0.5 + confidence / 2, df) ** 2 * v for v, df in components))


# The values an estimated quantity can take: an interval is cut to them (`t_interval`).
UNBOUNDED = (-math.inf, math.inf)
ACCURACY_BOUNDS = (0.0, 1.0)  # a share of test tracks
DIFFERENCE_BOUNDS = (-1.0, 1.0)  # one accuracy minus another


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided interval at `confidence`: estimate, low, high, standard error,
    and the variance components [(variance, df), ...] it was built from, so the same estimate gives
    an interval at another level (`at`) and a p-value against any null (`p_value`)."""

    estimate: float
    low: float
    high: float
    se: float
    components: tuple[tuple[float, float], ...] = ()
    confidence: float = CONFIDENCE
    bounds: tuple[float, float] = UNBOUNDED

    @property
    def half_width(self) -> float:
        """The uncut half-width, sqrt(sum_k q_k^2 v_k) (`t_interval`): what a power calculation reads."""
        return _half_width(self.components, self.confidence) if self.se > 0 else 0.0

    def at(self, confidence: float) -> Interval:
        """The interval of the same estimate at another two-sided level (0.90 is the one TOST reads)."""
        return t_interval(self.estimate, list(self.components), confidence, self.bounds)

    def p_value(self, null: float, alternative: str) -> float:
        """One-sided p-value of H0: estimate's true value <= null ("greater": H1 is above the null) or
        >= null ("less"), the test this interval inverts: p is the level 1 - c at which the one-sided
        bound (the two-sided interval at 1 - 2p) reaches the null. No spread: 0 or 1."""
        if alternative not in ("greater", "less"):
            raise ValueError(f"alternative must be 'greater' or 'less', not {alternative!r}")
        gap = (self.estimate - null) if alternative == "greater" else (null - self.estimate)
        if self.se == 0:
            return 0.0 if gap > 0 else 1.0
        if gap == 0:
            return 0.5

        # the one-sided level p whose bound reaches the null: half-width sqrt(sum t.isf(p, df)^2 v) = |gap|,
        # falling in p; solved on log p, so that p-values far below any level still come out (P_FLOOR at most).
        # t.isf(p, df) is -stdtrit(df, p) (scipy's own t._isf), called as the ufunc: the same numbers,
        # without stats.t's argument checks, which took 98 % of the time (a p-value is ~40 calls)
        def excess(log_p: float) -> float:
            p = math.exp(log_p)
            return math.sqrt(sum(float(special.stdtrit(df, p)) ** 2 * v for v, df in self.components)) - abs(gap)

        from scipy.optimize import brentq

        lowest = math.log(P_FLOOR)
        one_sided = P_FLOOR if excess(lowest) < 0 else math.exp(brentq(excess, lowest, math.log(0.5)))
        return one_sided if gap > 0 else 1 - one_sided


# The smallest p-value reported: far below any level. A t quantile of 1 df (2 seeds) at p is about
# 1 / (pi p); at 1e-300 its square overflows a float (1e599), at 1e-150 it is 1e299.
P_FLOOR = 1e-150


def t_interval(
    estimate: float,
    components: list[tuple[float, float]],
    confidence: float = CONFIDENCE,
    bounds: tuple[float, float] = UNBOUNDED,
) -> Interval:
    """estimate +- sqrt(sum_k q_k^2 v_k) from variance components [(v_k: variance of the estimate,
    df_k), ...], q_k the t quantile of df_k (a component with no df is left out): each component's
    half-width at its own quantile, added in quadrature. No spread: low = high. The interval is cut
    to `bounds`, the values the estimated quantity can take (an accuracy: [0, 1]); since the true
    value lies in them, cutting never lowers coverage. `se` and the p-values are the uncut ones'.

    (Why not one Welch-Satterthwaite df: docs/statistics.md.)"""
    parts = tuple((float(v), float(df)) for v, df in components if df > 0)
    var = sum(v for v, _ in parts)
    if var <= 0:
        return Interval(estimate, estimate, estimate, 0.0, parts, confidence, bounds)
    half = _half_width(parts, confidence)
    low, high = max(estimate - half, bounds[0]), min(estimate + half, bounds[1])
    return Interval(estimate, low, high, math.sqrt(var), parts, confidence, bounds)


def cluster_index(clusters: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """(g (N,) int64, G): each track's cluster numbered 0..G-1 in order of first appearance, and G.

    clusters: (N,) ids of the test tracks' artists (any integers, or floats holding integers).
    ValueError naming what is wrong: not N of them, a NaN or a non-integer id, a single cluster.
    """
    c = np.asarray(clusters)
    if c.shape != (n,):
        raise ValueError(
            f"clusters: {c.shape[0] if c.ndim == 1 else c.shape} artist ids for {n} test tracks; one per track"
        )
    if c.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(c) | (c % 1 != 0))
        if bad.size:
            raise ValueError(f"clusters: test track {bad[0]} has artist id {c[bad[0]].item()!r}, not an integer")
    elif c.dtype.kind not in "iu":
        raise ValueError(f"clusters: artist ids must be integers, got {c.dtype}")
    _, first, inverse = np.unique(c, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    if first.size < 2:
        raise ValueError(f"clusters: all {n} test tracks are of one artist: no variance over artists")
    return rank[inverse.reshape(-1)], int(first.size)


def _track_component(t: np.ndarray, clusters: np.ndarray | None) -> tuple[float, float]:
    """(variance of mean(t), df): over tracks, var(t)/N at N-1 df; over clusters (artists), the
    cluster-robust CR1 variance G/(G-1) sum_g S_g^2 / N^2 at G-1 df, S_g the sum of t - mean(t)
    over cluster g's tracks. t: (N,) per-track means (or differences of means)."""
    n = t.size
    if clusters is None:
        return float(t.var(ddof=1)) / n, n - 1
    g, n_clusters = cluster_index(clusters, n)
    # Clusters in order of first appearance: with one track each, sums is t - mean(t) in track
    # order, and the expression below is var(t, ddof=1) / N's arithmetic, bit for bit.
    sums = np.bincount(g, weights=t - t.mean(), minlength=n_clusters)  # (G,)
    return float((sums**2).sum() / (n_clusters - 1)) / n * (n_clusters / n), n_clusters - 1


def _components(
    track_means: np.ndarray, seed_means: list[np.ndarray], clusters: np.ndarray | None = None
) -> list[tuple[float, float]]:
    """[(var of the tracks' part, its df), (var(a)/S, S-1), ...]: the variance components of a mean
    accuracy (`_track_component`: over tracks, or over the clusters of tracks given)."""
    out = [_track_component(track_means, clusters)]
    for a in seed_means:
        out.append((float(a.var(ddof=1)) / a.size if a.size > 1 else 0.0, a.size - 1))
    return out


def accuracy_interval(
    correct: np.ndarray, confidence: float = CONFIDENCE, clusters: np.ndarray | None = None
) -> Interval:
    """A cell's accuracy over S seeds x N test tracks and its interval (tracks and seeds as components).

    correct: (S, N) booleans, seed s right on test track n (every seed on the same N tracks).
    clusters: (N,) the artist of each test track, or None; given, the tracks' part of the interval
    resamples artists (cluster-robust, G - 1 df) rather than single tracks.
    With one seed the seed component is unknown and left out: the interval is the tracks' alone.
    The interval is cut to [0, 1] (`t_interval`).
    """
    c = np.asarray(correct, dtype=np.float64)  # (S, N)
    return t_interval(
        float(c.mean()), _components(c.mean(axis=0), [c.mean(axis=1)], clusters), confidence, ACCURACY_BOUNDS
    )


def paired_difference(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    same_seeds: bool = False,
    confidence: float = CONFIDENCE,
    clusters: np.ndarray | None = None,
) -> Interval:
    """Accuracy of a minus b, paired on the same test tracks, and its interval.

    correct_a (Sa, N), correct_b (Sb, N): the same N test tracks, in the same order, on both
    sides. same_seeds: row s of both sides started from the same weights and batch order, so the
    seeds are paired (their per-seed differences make one component); otherwise each side's
    seeds add a component of their own. clusters: (N,) the artist of each test track, or None
    (as in `accuracy_interval`). The interval is cut to [-1, 1] (`t_interval`).
    """
    a, b = (np.asarray(c, dtype=np.float64) for c in (correct_a, correct_b))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a paired comparison needs the same test tracks: {a.shape[1]} and {b.shape[1]} tracks")
    if same_seeds and a.shape[0] != b.shape[0]:
        raise ValueError(f"pairing by seed needs the same seeds on both sides: {a.shape[0]} and {b.shape[0]} seeds")
    tracks = a.mean(axis=0) - b.mean(axis=0)  # (N,)
    seeds = [a.mean(axis=1) - b.mean(axis=1)] if same_seeds else [a.mean(axis=1), b.mean(axis=1)]
    return t_interval(float(a.mean() - b.mean()), _components(tracks, seeds, clusters), confidence, DIFFERENCE_BOUNDS)


def seed_share(interval: Interval) -> float:
    """The share of an interval's variance that comes from the seeds (every component after the
    first, which `_components` makes the tracks'): above one half, more seeds narrow the interval
    more than more test tracks would. NaN without spread."""
    total = sum(v for v, _ in interval.components)
    return (total - interval.components[0][0]) / total if total > 0 else math.nan


def detectable(interval: Interval, power: float = 0.8, both_bounds: bool = False) -> float:
    """What a test that reads `interval` can show with `power`: its half-width plus z_power standard
    errors. For a test of a - b = 0 it is the smallest true difference found (2.80 se for a normal
    95 % interval); for a margin test (no gain, TOST) the smallest margin confirmed when a and b are
    truly equal, and TOST, which must keep both bounds inside, takes z_((1 + power) / 2). The
    interval's own t quantiles, a normal quantile for the power: an approximation, good to a few
    per cent of the value."""
    z = special.ndtri((1 + power) / 2 if both_bounds else power)
    return float(interval.half_width + z * interval.se)

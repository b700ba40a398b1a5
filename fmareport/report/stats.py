"""The statistics of the report, in one place, through scipy: summaries over seeds and the
interval of a difference of two settings' accuracies."""

from __future__ import annotations

import math

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
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return diff, float(ci.low), float(ci.high)

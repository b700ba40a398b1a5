"""The mel filters of the log-mel input (an ablation, not the paper's: the book's Beyond page).

`filters`: torchaudio's triangles as MelSpectrogram builds them (melscale_fbanks' defaults: HTK
mel, 0 Hz to Nyquist, peak 1). A band so narrow that no STFT bin falls in it has no weight, and its
input row is a constant: the config refuses such bands (`empty_bands`, `most_bands`), naming n_mels.
The check is numpy alone, so loading a config never imports torch (its cost: docs/measurements.md).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def max_bands(n_fft: int) -> int:
    """Twice the bins: a bin lies inside at most two bands' triangles (band m's spans from band m - 1's
    centre to band m + 1's), so more bands than this never all fill; a check can refuse them unbuilt."""
    return 2 * (n_fft // 2 + 1)


def filters(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """The (n_fft // 2 + 1, n_mels) filter weights, float32 on the CPU (also under a meta device
    context): column m weighs the one-sided STFT's bins into mel band m."""
    import torch
    import torchaudio

    with torch.device("cpu"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "At least one mel filterbank")  # empty_bands names them
        return torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate)


@functools.lru_cache(maxsize=64)
def empty_bands(n_fft: int, n_mels: int, sample_rate: int) -> tuple[int, ...]:
    """The bands (0 = the lowest) that no STFT bin reaches, the all-zero columns of `filters`, without
    building them: band m's triangle is positive strictly between mel points m and m + 2 (HTK mel,
    n_mels + 2 points evenly spaced from 0 Hz to Nyquist; the bins at 0 to sample_rate // 2 Hz, as
    torchaudio places them). In float64 where torchaudio uses float32: the two agree on whether a band
    is empty and on the first empty one (tests/test_model.py; the cases checked: docs/measurements.md),
    so `most_bands` is theirs; far past it, a listed band may differ by rounding."""
    bins = np.linspace(0.0, sample_rate // 2, n_fft // 2 + 1)  # (n_fft // 2 + 1,) Hz
    top = 2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0)  # the Nyquist frequency in HTK mel
    points = 700.0 * (10.0 ** (np.linspace(0.0, top, n_mels + 2) / 2595.0) - 1.0)  # (n_mels + 2,) Hz
    first = np.searchsorted(bins, points[:-2], side="right")  # the first bin above band m's lower corner
    past = np.searchsorted(bins, points[2:], side="left")  # the first bin at or above its upper corner
    return tuple(np.flatnonzero(past <= first).tolist())


def most_bands(n_fft: int, sample_rate: int) -> int:
    """The most bands the n_fft // 2 + 1 bins fill at `sample_rate` (86 at 8 kHz with n_fft 256, 227 at
    16 kHz with 1024, 228 at 44.1 kHz with 2048), by bisection: more bands are narrower (filling is
    monotone in n_mels in every case tried, docs/measurements.md)."""
    low, high = 0, max_bands(n_fft)  # low fills (0 bands trivially), high + 1 does not
    while low < high:
        mid = (low + high + 1) // 2
        if empty_bands(n_fft, mid, sample_rate):
            high = mid - 1
        else:
            low = mid
    return low

"""The mel filters of the log-mel input (an ablation, not the paper's: the book's Beyond page).

torchaudio's triangular filters, as torchaudio.transforms.MelSpectrogram builds them
(torchaudio.functional.melscale_fbanks with its defaults): HTK mel scale, 0 Hz to the Nyquist
frequency, each triangle peaking at 1 (no area normalisation). Band m weighs the STFT bins strictly
between its neighbours' centres; a band so narrow that no bin falls there has no weight at all
(torchaudio warns "At least one mel filterbank has all zero values") and its row of the input is
a constant. The config refuses such bands (`empty_bands`, `most_bands`), naming n_mels.

torchaudio is imported here, on first use, so that reading a config without mel does not load it.
"""

from __future__ import annotations

import functools
import warnings

import torch


def max_bands(n_fft: int) -> int:
    """Twice the bins: a bin lies inside at most two bands' triangles (band m's spans from band m - 1's
    centre to band m + 1's), so more bands than this never all fill; a check can refuse them unbuilt."""
    return 2 * (n_fft // 2 + 1)


def filters(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """The (n_fft // 2 + 1, n_mels) filter weights, float32 on the CPU (also under a meta device
    context): column m weighs the one-sided STFT's bins into mel band m."""
    import torchaudio

    with torch.device("cpu"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "At least one mel filterbank")  # empty_bands names them
        return torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate)


@functools.lru_cache(maxsize=64)
def empty_bands(n_fft: int, n_mels: int, sample_rate: int) -> tuple[int, ...]:
    """The bands (0 = the lowest) that no STFT bin reaches: all-zero columns of `filters`."""
    return tuple(torch.nonzero(filters(n_fft, n_mels, sample_rate).amax(dim=0) == 0).flatten().tolist())


def most_bands(n_fft: int, sample_rate: int) -> int:
    """The most bands the n_fft // 2 + 1 bins fill at `sample_rate` (86 at 8 kHz with n_fft 256, 227 at
    16 kHz with 1024, 228 at 44.1 kHz with 2048), by bisection: more bands are narrower, and filling
    is monotone in n_mels for every (sample rate, n_fft) we tried, each n_mels up to the bins' count."""
    low, high = 0, max_bands(n_fft)  # low fills (0 bands trivially), high + 1 does not
    while low < high:
        mid = (low + high + 1) // 2
        if empty_bands(n_fft, mid, sample_rate):
            high = mid - 1
        else:
            low = mid
    return low

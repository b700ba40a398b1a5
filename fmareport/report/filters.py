"""What the first layer learned: its filters as frequency responses, a figure and its numbers.

The 1D first layer's kernels, Conv1d(1, C, 3*hop, stride=hop), are FIR filters on the waveform; the 2D
one's, Conv2d(1, C, (n_fft//2 + 1, 4)), weigh every |STFT| bin of 4 frames. Networks trained on raw audio
learn frequency-selective filters, more of them at low frequencies, much as a mel scale spaces its bands
(Dieleman & Schrauwen, ICASSP 2014); these functions measure how far a cell's kept weights do
(fmareport.weights: the first seed's final weights and its first layer at initialisation).

* `raw_responses(kernels, sample_rate)`: each 1D kernel's magnitude response (zero-padded rFFT, dB),
  its peak frequency and whether the peak is clear; rows sorted by peak frequency.
* `spectrogram_responses(weight, sample_rate, n_fft)`: each 2D kernel summed over its 4 frames.
* `mel_spread(peak_hz, sample_rate)`: how peak frequencies spread against a mel scale.
* `learned_filters(kept, cfg)`: the figure, learned beside initial; `peak_facts`: its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from ..config import Config

# A peak is clear when it stands at least CLEAR_PEAK_DB above the filter's median response.
# 20 dB (100 times the power) because a kernel of K independent random weights, as at
# initialisation, has a periodogram whose ~K/2 independent bins are exponentially distributed
# (chi-square with 2 degrees of freedom): its highest bin stands ln(K/2)/ln 2 times the median
# power on average, 10 dB for the paper's K = 3072 (and 7 dB for K = 96), and the chance that
# any of them reaches 100 times the median is below K/2 * exp(-100 ln 2) ~ 1e-27. So an
# untrained kernel almost never has a clear peak, and a band-pass filter (a windowed sinusoid,
# whose response falls far below its peak everywhere else) always has one.
CLEAR_PEAK_DB = 20.0
MIN_FFT = 4096  # zero-padded rFFT length at least: peak frequencies to sample_rate / 4096 (2 Hz at 8 kHz)
MEL_BANDS = 10  # equal-width bands on the mel scale for the spread of peak frequencies
DB_FLOOR = 1e-12  # |H| floor before the log: a zero response is -240 dB, not -inf


@dataclass(frozen=True)
class Responses:
    """One branch's first-layer filters, rows sorted by peak frequency (ascending).

    values: (C, F) the response of each filter over `freqs`: dB re its own peak (0 dB at the peak)
    for the raw branch; the 2D kernel summed over its frames, over its largest |value| (-1..1) for
    the spectrogram branch. freqs: (F,) Hz, 0 to sample_rate / 2. peak_hz: (C,) Hz, ascending.
    clear: (C,) bool, peak >= CLEAR_PEAK_DB above the median (raw); None for the spectrogram
    branch (a weight, not a gain). order: (C,) the input kernel of each row."""

    values: np.ndarray
    freqs: np.ndarray
    peak_hz: np.ndarray
    clear: np.ndarray | None
    order: np.ndarray
    unit: str  # "dB" or "weight"


def mel(hz: np.ndarray | float) -> np.ndarray:
    """Hz -> mel, the HTK formula 2595 log10(1 + f / 700) (O'Shaughnessy 1987; librosa's htk=True)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """mel -> Hz, the inverse of `mel`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def raw_responses(kernels: np.ndarray, sample_rate: float, n_fft: int | None = None) -> Responses:
    """The magnitude responses of 1D first-layer kernels (C, 1, K) (or (C, K)), as FIR filters at
    `sample_rate` Hz: |rFFT| zero-padded to n_fft (default: the power of 2 >= max(4K, MIN_FFT)),
    in dB re each filter's peak, F = n_fft // 2 + 1 frequencies from 0 to sample_rate / 2 Hz.
    A peak at DC or Nyquist counts as such. Rows sorted by peak frequency (Responses)."""
    k = np.asarray(kernels, dtype=np.float64).reshape(len(kernels), -1)  # (C, K)
    n = n_fft or 1 << int(np.ceil(np.log2(max(4 * k.shape[1], MIN_FFT))))
    if n < k.shape[1]:
        raise ValueError(f"n_fft {n} is shorter than the kernels ({k.shape[1]} samples)")
    mag = np.abs(np.fft.rfft(k, n=n, axis=1))  # (C, F)
    db = 20.0 * np.log10(np.maximum(mag, DB_FLOOR))  # (C, F)
    freqs = np.fft.rfftfreq(n, d=1.0 / sample_rate)  # (F,) Hz
    peak = db.argmax(axis=1)  # (C,)
    top = db[np.arange(len(db)), peak]  # (C,) dB
    clear = top - np.median(db, axis=1) >= CLEAR_PEAK_DB  # (C,)
    order = np.argsort(freqs[peak], kind="stable")  # (C,)
    rel = db - top[:, None]  # (C, F): 0 dB at each filter's peak
    return Responses(rel[order], freqs, freqs[peak][order], clear[order], order, "dB")


def spectrogram_responses(weight: np.ndarray, sample_rate: float, n_fft: int) -> Responses:
    """The 2D first layer's kernels (C, 1, n_fft//2 + 1, 4) summed over their 4 frames: what each
    map weighs each |STFT| bin by, over the bins' frequencies k * sample_rate / n_fft Hz (F =
    n_fft//2 + 1), each row over its largest |value| (so -1..1); the peak is the bin of the largest
    positive weight. Rows sorted by it (Responses; clear is None)."""
    w = np.asarray(weight, dtype=np.float64)
    summed = w.reshape(w.shape[0], w.shape[-2], w.shape[-1]).sum(axis=-1)  # (C, F)
    if summed.shape[1] != n_fft // 2 + 1:
        raise ValueError(f"kernels over {summed.shape[1]} bins, but n_fft {n_fft} gives {n_fft // 2 + 1}")
    freqs = np.arange(summed.shape[1]) * sample_rate / n_fft  # (F,) Hz
    scale = np.maximum(np.abs(summed).max(axis=1, keepdims=True), DB_FLOOR)  # (C, 1)
    peak_hz = freqs[summed.argmax(axis=1)]  # (C,)
    order = np.argsort(peak_hz, kind="stable")  # (C,)
    return Responses((summed / scale)[order], freqs, peak_hz[order], None, order, "weight")


@dataclass(frozen=True)
class MelSpread:
    """How peak frequencies spread. fractions: (bands,) the share of peaks in each equal-width mel
    band between 0 Hz and sample_rate / 2; edges_hz: (bands + 1,) the bands' edges in Hz;
    ks_mel, ks_hz: Kolmogorov-Smirnov distances (0..1) of the peaks from an even spread on the mel
    scale and from an even spread in Hz (the smaller: the scale the peaks follow more closely)."""

    n: int
    fractions: np.ndarray
    edges_hz: np.ndarray
    ks_mel: float
    ks_hz: float


def ks_uniform(u: np.ndarray) -> float:
    """The Kolmogorov-Smirnov statistic of values `u` (n,) in [0, 1] against the uniform distribution:
    max |ECDF(x) - x|, taken at the sorted values from both sides."""
    u = np.sort(np.asarray(u, dtype=np.float64))
    i = np.arange(1, len(u) + 1)
    return float(max((i / len(u) - u).max(), (u - (i - 1) / len(u)).max()))


def mel_spread(peak_hz: np.ndarray, sample_rate: float, bands: int = MEL_BANDS) -> MelSpread:
    """The spread of peak frequencies (n,) Hz over `bands` equal-width mel bands from 0 to
    sample_rate / 2 (a peak at a band's upper edge counts in that band; Nyquist in the last),
    and its KS distances from an even spread in mel and in Hz (MelSpread). n >= 1."""
    f = np.asarray(peak_hz, dtype=np.float64)
    if f.size == 0:
        raise ValueError("mel_spread: no peak frequencies")
    top = mel(sample_rate / 2)
    edges = np.linspace(0.0, top, bands + 1)  # (bands + 1,) mel
    band = np.clip(np.searchsorted(edges, mel(f), side="left") - 1, 0, bands - 1)  # (n,)
    fractions = np.bincount(band, minlength=bands) / f.size  # (bands,)
    return MelSpread(f.size, fractions, mel_to_hz(edges), ks_uniform(mel(f) / top), ks_uniform(f / (sample_rate / 2)))


# The first layer's kernels (fmareport.weights.FIRST_LAYER_KEYS) and the figure's name for each.
BRANCHES = {
    "conv1.raw.weight": "1D kernels on the waveform",
    "conv1.spec.weight": "2D kernels on |STFT|, summed over 4 frames",
}
DB_RANGE = 60.0  # the figure shows 0 to -60 dB re each filter's peak


def _array(t) -> np.ndarray:
    """A tensor (any float dtype, CPU) or array as a float64 numpy array."""
    return np.asarray(t.detach().float().numpy() if hasattr(t, "detach") else t, dtype=np.float64)


def branch_responses(state: dict, cfg: Config) -> dict[str, Responses]:
    """The Responses of each first-layer branch in `state` (a state_dict, or weights' "initial"):
    {"conv1.raw.weight": raw_responses, "conv1.spec.weight": spectrogram_responses}, the keys it has,
    at cfg.store.sample_rate Hz and cfg.model.n_fft."""
    rate, out = cfg.store.sample_rate, {}
    if "conv1.raw.weight" in state:
        out["conv1.raw.weight"] = raw_responses(_array(state["conv1.raw.weight"]), rate)
    if "conv1.spec.weight" in state:
        out["conv1.spec.weight"] = spectrogram_responses(_array(state["conv1.spec.weight"]), rate, cfg.model.n_fft)
    return out


def _filter_image(ax: plt.Axes, r: Responses, title: str):
    """One panel: filters (rows, sorted by peak frequency) x frequency on a log axis (0 Hz left out)."""
    dB = r.unit == "dB"
    mesh = ax.pcolormesh(
        r.freqs[1:],
        np.arange(len(r.values)),
        r.values[:, 1:],
        shading="nearest",
        cmap="magma" if dB else "RdBu_r",
        vmin=-DB_RANGE if dB else -1.0,
        vmax=0.0 if dB else 1.0,
        rasterized=True,
    )
    ax.set_xscale("log")
    ax.set(title=title, xlabel="frequency (Hz)", ylabel="filter (by peak frequency)")
    return mesh


def learned_filters(kept: dict, cfg: Config) -> plt.Figure:
    """The first layer's filters at initialisation (left) and learned (right), one row per branch
    the cell's input has (1D: magnitude responses in dB re each filter's peak; 2D: the kernels
    summed over their 4 frames, over their largest |weight|), each an image of filters (sorted by
    peak frequency) x frequency (Hz, log axis), with one colour bar per row. `kept`: a weights file
    as fmareport.weights.load_weights reads it ({"initial", "final"}). Axes: 2 panels + 1 colour
    bar per row."""
    keys = [k for k in BRANCHES if k in kept["initial"]]
    fig, axes = plt.subplots(len(keys), 2, figsize=(10, 3.4 * len(keys)), squeeze=False, layout="constrained")
    for row, key in zip(axes, keys):
        initial = branch_responses({key: kept["initial"][key]}, cfg)[key]
        learned = branch_responses({key: kept["final"][key]}, cfg)[key]
        _filter_image(row[0], initial, f"{BRANCHES[key]}: initial")
        mesh = _filter_image(row[1], learned, f"{BRANCHES[key]}: learned")
        label = "dB re the filter's peak" if learned.unit == "dB" else "weight / max |weight|"
        fig.colorbar(mesh, ax=list(row), label=label)
    return fig


def peak_facts(learned: Responses, initial: Responses, sample_rate: float) -> dict[str, str]:
    """The first layer's filters in numbers, each computed from `learned` and `initial` (the final and
    initial kernels' responses, `sample_rate` Hz): the filters with a clear peak (CLEAR_PEAK_DB above
    their median response; a 2D kernel's response is a weight, not a gain, and every peak counts),
    and how the clear peaks spread against a mel scale (mel_spread: KS distances, the lowest and
    highest of MEL_BANDS bands). {column: text}, as the Learned page's table shows them."""
    n = len(learned.peak_hz)
    clear = learned.clear if learned.clear is not None else np.ones(n, bool)
    share = lambda k: f"{k} of {n} ({100 * k / n:.0f} %)"  # noqa: E731
    out = {"filters with a clear peak, learned / initial": "— (2D: every peak counts)"}
    if learned.clear is not None:
        out["filters with a clear peak, learned / initial"] = (
            f"{share(int(clear.sum()))} / {share(int(initial.clear.sum()))}"
        )
    if not clear.any():
        return out | {"peaks spread": "no clear peak: no frequency scale to read"}
    s = mel_spread(learned.peak_hz[clear], sample_rate)
    return out | {
        "KS distance from an even spread, mel / Hz": f"{s.ks_mel:.2f} / {s.ks_hz:.2f}",
        "peaks spread": "closer to a mel scale" if s.ks_mel < s.ks_hz else "closer to an even spread in Hz",
        "in the lowest / highest mel band": f"{100 * s.fractions[0]:.0f} % (0-{s.edges_hz[1]:.0f} Hz) / "
        f"{100 * s.fractions[-1]:.0f} % ({s.edges_hz[-2]:.0f}-{s.edges_hz[-1]:.0f} Hz)",
    }

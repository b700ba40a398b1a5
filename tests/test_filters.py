"""First-layer filters as frequency responses (fmareport.report.filters)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fmareport.config import load_profile  # noqa: E402
from fmareport.model import Net  # noqa: E402
from fmareport.report import filters  # noqa: E402
from fmareport.train import seed_everything  # noqa: E402
from fmareport.weights import cpu_state, first_layer_state  # noqa: E402

RATE = 8000
K = 384  # the smoke profile's 3 * hop
N_FFT = 4096  # raw_responses' default for K = 384: max(4 K, MIN_FFT) -> 4096, bins of 8000 / 4096 Hz


def tone(hz: float, k: int = K) -> np.ndarray:
    """A Hann-windowed sinusoid of `hz` at RATE: a band-pass FIR kernel. (k,)"""
    t = np.arange(k) / RATE
    return np.hanning(k) * np.sin(2 * np.pi * hz * t)


def config(kind: str):
    return load_profile("smoke", overrides={"sample_rate": RATE, "input": kind, "device": "cpu"})


def test_a_sinusoid_kernel_peaks_at_its_frequency_and_rows_sort_by_peak():
    hz = np.array([3000.0, 250.0, 1000.0])  # each on a bin of the 4096-point rFFT (k * 8000 / 4096)
    noise = np.random.default_rng(0).standard_normal(K)
    kernels = np.stack([tone(f) for f in hz] + [noise])[:, None, :]  # (4, 1, K), as Conv1d's weight
    r = filters.raw_responses(kernels, RATE)
    assert r.values.shape == (4, N_FFT // 2 + 1) and r.freqs.shape == (N_FFT // 2 + 1,)
    assert r.peak_hz.shape == r.clear.shape == r.order.shape == (4,) and r.unit == "dB"
    assert r.freqs[0] == 0 and r.freqs[-1] == RATE / 2
    tones = r.order != 3
    assert r.order[tones].tolist() == [1, 2, 0]  # sorted by peak frequency: 250, 1000, 3000 Hz
    assert r.peak_hz[tones].tolist() == [250.0, 1000.0, 3000.0]  # exactly the sinusoids' frequencies
    assert np.all(np.diff(r.peak_hz) >= 0)
    assert r.clear[tones].all() and not r.clear[~tones].any()  # white noise has no clear peak
    assert np.allclose(r.values.max(axis=1), 0)  # 0 dB at each filter's peak


def test_kernels_at_initialisation_have_no_clear_peak():
    """The reason CLEAR_PEAK_DB is 20 dB: a kernel of independent random weights stays below it."""
    seed_everything(0)
    paper_k = Net(config("raw").model.model_copy(update={"hop": 1024, "channels": 64})).conv1.raw.weight
    assert paper_k.shape == (64, 1, 3072)
    r = filters.raw_responses(paper_k.detach().numpy(), RATE)
    assert not r.clear.any()


def test_spectrogram_kernels_are_summed_over_frames_by_bin_frequency():
    n_fft, f = 256, 129
    w = np.zeros((3, 1, f, 4))
    w[0, 0, 40, 1], w[1, 0, 10, :] = 1.0, 0.5  # kernel 0 peaks at bin 40, kernel 1 at bin 10
    w[2, 0, 20, 0], w[2, 0, 20, 3], w[2, 0, 70, 2] = 2.0, 1.0, -5.0  # bin 20: 3; bin 70 negative
    r = filters.spectrogram_responses(w, RATE, n_fft)
    assert r.values.shape == (3, f) and r.clear is None and r.unit == "weight"
    assert r.order.tolist() == [1, 2, 0]
    assert r.peak_hz.tolist() == [10 * RATE / n_fft, 20 * RATE / n_fft, 40 * RATE / n_fft]
    assert r.values[1, 20] == pytest.approx(3 / 5) and r.values[1, 70] == -1.0  # over the largest |sum|


def test_ks_and_mel_bands_follow_from_the_peaks():
    assert filters.ks_uniform(np.array([0.5])) == 0.5
    assert filters.ks_uniform(np.array([0.75, 0.25])) == 0.25
    assert filters.mel_to_hz(filters.mel(1234.5)) == pytest.approx(1234.5)
    top = filters.mel(RATE / 2)
    centres = filters.mel_to_hz((np.arange(20) + 0.5) / 20 * top)  # two peaks per band, even in mel
    s = filters.mel_spread(centres, RATE)
    assert s.n == 20 and s.fractions.tolist() == [0.1] * 10 and s.edges_hz[-1] == pytest.approx(RATE / 2)
    assert s.ks_mel == pytest.approx(0.025) and s.ks_hz > 0.25  # even in mel, crowded low in Hz
    low = filters.mel_spread(np.array([10.0, 20.0, RATE / 2]), RATE)  # Nyquist counts in the last band
    assert low.fractions.tolist() == [2 / 3] + [0.0] * 8 + [1 / 3]


def test_the_peak_facts_state_what_the_responses_give():
    rng = np.random.default_rng(1)
    noise = [rng.standard_normal(K) for _ in range(2)]
    hz = [250.0, 1000.0, 3000.0]
    learned = filters.raw_responses(np.stack([tone(f) for f in hz] + noise), RATE)
    initial = filters.raw_responses(np.stack([rng.standard_normal(K) for _ in range(5)]), RATE)
    facts = filters.peak_facts(learned, initial, RATE)
    s = filters.mel_spread(np.array(hz), RATE)  # the three tones' peaks: the clear ones
    assert facts["filters with a clear peak, learned / initial"] == "3 of 5 (60 %) / 0 of 5 (0 %)"
    assert facts["KS distance from an even spread, mel / Hz"] == f"{s.ks_mel:.2f} / {s.ks_hz:.2f}"
    assert facts["peaks spread"] == (
        "closer to a mel scale" if s.ks_mel < s.ks_hz else "closer to an even spread in Hz"
    )
    low = f"{100 * s.fractions[0]:.0f} % (0-{s.edges_hz[1]:.0f} Hz)"
    assert facts["in the lowest / highest mel band"].startswith(low + " / ")
    none = filters.peak_facts(initial, initial, RATE)
    assert none == {"filters with a clear peak, learned / initial": "0 of 5 (0 %) / 0 of 5 (0 %)",
                    "peaks spread": "no clear peak: no frequency scale to read"}  # fmt: skip


@pytest.mark.parametrize("kind, rows", [("raw", 1), ("spectrogram", 1), ("both", 2)])
def test_the_figure_shows_initial_beside_learned_per_branch(kind, rows):
    cfg = config(kind)
    seed_everything(0)
    net = Net(cfg.model)
    initial = first_layer_state(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)  # "trained"
    fig = filters.learned_filters({"initial": initial, "final": cpu_state(net)}, cfg)
    try:
        assert isinstance(fig, plt.Figure) and len(fig.axes) == 3 * rows  # 2 panels + a colour bar per row
        panels = [ax for ax in fig.axes if ax.get_title()]
        assert len(panels) == 2 * rows and all(ax.get_xscale() == "log" for ax in panels)
        assert [ax.get_title().rsplit(": ", 1)[1] for ax in panels] == ["initial", "learned"] * rows
        names = [filters.BRANCHES[k] for k in filters.BRANCHES if k in initial]
        assert [ax.get_title().rsplit(": ", 1)[0] for ax in panels[::2]] == names
    finally:
        plt.close(fig)

"""The Methods page's figures, drawn from the model code (fmareport.report.pages.methods): they name what the model computes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from fmareport.config import load_profile  # noqa: E402
from fmareport.model import Spectrogram  # noqa: E402
from fmareport.report.pages import methods as figures  # noqa: E402


@pytest.mark.parametrize("scale, name", [("linear", "|STFT|"), ("log", "log1p |STFT|"), ("mel", "log-mel bands")])
def test_fig2_names_the_spectrogram_of_each_scale(scale, name):
    """Fig. 2's 2D and 1D+2D panels name the front end by the kind model.Spectrogram describes, and
    the 2D conv's kernel spans its rows: n_fft // 2 + 1 bins, or n_mels bands."""
    kind = Spectrogram(256, 128, scale, n_mels=64, sample_rate=8000).describe()["kind"]
    assert figures.PART_NAMES[kind].startswith(name) and kind in figures.PART_COLORS
    cfg = load_profile("smoke").replace(spectrogram_scale=scale, segmented=True)
    fig = figures.first_layers(cfg)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    plt.close(fig)
    rows = cfg.model.n_bins
    assert sum(t.startswith(f"conv1.stft: {name} (Hann") for t in texts) == 2  # the 2D and 1D+2D panels
    assert sum(f"{{16, ({rows}, 4)," in t or f"{{32, ({rows}, 4)," in t for t in texts) == 2, texts

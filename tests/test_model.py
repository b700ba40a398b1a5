"""The network's shapes, traced on the meta device (no data), and its wiring on small inputs."""

import re

import pytest
import torch
import torch.nn.functional as F

from fmareport import cli, model, summary
from fmareport.config import load_profile
from fmareport.model import Net, Spectrogram, layer_table, n_params

INPUTS = ["raw", "spectrogram", "both"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("segmented", [False, True], ids=["whole", "segmented"])
@pytest.mark.parametrize("kind", INPUTS)
def test_paper_profile_shapes(kind, segmented):
    cfg = load_profile("paper", overrides={"input": kind, "segmented": segmented})
    n, t = (131072, 126) if segmented else (1_000_000, 974)
    assert cfg.window_samples == n and cfg.steps(n) == t
    rows = {r.name: r for r in layer_table(cfg)}
    assert rows["conv1"].in_shape == (n,)
    assert rows["conv1"].out_shape == (256, t)
    assert rows["conv2"].out_shape == rows["conv3"].out_shape == (256, t)
    assert rows["pool"].out_shape == (512,)
    assert [rows[k].out_shape for k in ("dense.0", "dense.1", "out")] == [(300,), (150,), (8,)]
    half = 128 if kind == "both" else 256
    if kind != "spectrogram":
        assert rows["conv1.raw"].out_shape == (half, t)
        assert (rows["conv1.raw"].kernel, rows["conv1.raw"].stride) == ((3072,), (1024,))
    if kind != "raw":
        assert rows["conv1.stft"].out_shape == (1025, t + 3)  # 977 frames for 10**6 samples
        assert rows["conv1.spec"].out_shape == (half, 1, t)
        assert rows["conv1.spec"].kernel == (1025, 4)


def test_paper_segment_real_forward_matches_trace():
    """A real CPU forward at the paper's segment size agrees with the meta trace."""
    cfg = load_profile("paper", overrides={"input": "both", "segmented": True})
    torch.manual_seed(0)
    net = Net(cfg).eval()
    x = torch.rand(2, cfg.segment_samples) * 2 - 1  # (B, N)
    with torch.no_grad():
        h = net.conv1(x)  # (B, C, T)
        logits = net(x)  # (B, 8)
    assert h.shape == (2, 256, 126)
    assert logits.shape == (2, 8)


@pytest.mark.parametrize("kind", INPUTS)
@pytest.mark.parametrize("extra", [0, 1, 127])
def test_every_input_lands_on_the_same_steps(kind, extra):
    """T = N // hop - 2 for lengths that are and are not a multiple of the hop."""
    cfg = load_profile("smoke", overrides={"input": kind})
    n = 8 * cfg.hop + extra
    with torch.no_grad():
        h = Net(cfg).eval().conv1(torch.randn(3, n) * 0.1)  # (B, C, T)
    assert h.shape == (3, cfg.channels, n // cfg.hop - 2)


@pytest.mark.parametrize("chunk_bytes", [model.CPU_CHUNK_BYTES, 1], ids=["one-chunk", "item-by-item"])
def test_spectrogram_is_torchaudio_magnitude(chunk_bytes, monkeypatch):
    torchaudio = pytest.importorskip("torchaudio")
    monkeypatch.setattr(model, "CPU_CHUNK_BYTES", chunk_bytes)
    x = torch.randn(3, 5000)
    ours = Spectrogram(256, 128)(x)
    ref = torchaudio.transforms.Spectrogram(n_fft=256, hop_length=128, power=1)(x)
    assert ours.shape == ref.shape == (3, 129, 5000 // 128 + 1)
    torch.testing.assert_close(ours, ref)


def test_residual_shortcut_adds_conv1_before_the_elu():
    """With conv3's weights zero (eval mode, fresh BN stats: BN(0) = 0) the block output is
    ELU(0 + h1) with h1 = ELU(BN(conv1(x))): the shortcut carries conv1's activation."""
    cfg = load_profile("smoke", overrides={"input": "both"})
    net = Net(cfg).eval()
    seen = {}
    net.conv1.register_forward_hook(lambda m, a, out: seen.update(z1=out))
    net.pool.register_forward_hook(lambda m, a, out: seen.update(h3=a[0]))
    with torch.no_grad():
        net.conv3.conv.weight.zero_()
        net(torch.randn(2, cfg.clip_samples) * 0.1)
    torch.testing.assert_close(seen["h3"], F.elu(F.elu(seen["z1"])))


def test_dropout_only_in_training():
    cfg = load_profile("smoke", overrides={"dropout": 0.5})
    net = Net(cfg)
    x = torch.randn(4, cfg.clip_samples) * 0.1
    with torch.no_grad():
        assert not torch.equal(net.train()(x), net(x))
        assert torch.equal(net.eval()(x), net(x))


@pytest.mark.parametrize("kind", INPUTS)
def test_layer_table_counts_every_parameter(kind):
    cfg = load_profile("smoke", overrides={"input": kind})
    rows = layer_table(cfg)
    assert sum(r.params for r in rows if r.depth == 0) == n_params(Net(cfg))
    parts = sum(r.depth == 1 for r in rows)  # the first layer's convs and STFT follow it
    assert [r.depth for r in rows[: 1 + parts]] == [0] + [1] * parts and rows[0].name == "conv1"


def test_summary_prints_the_paper_shapes(capsys):
    assert cli.main(["summary", "--profile", "paper", "--no-memory"]) == 0
    out = capsys.readouterr().out
    conv1 = [line.split() for line in out.splitlines() if line.split()[:1] == ["conv1"]]
    assert len(conv1) == 6  # 3 inputs x (whole clip, segment)
    assert [line[2] + line[3] for line in conv1] == ["(256,974)", "(256,126)"] * 3


def test_summary_refuses_a_bad_cell(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("chanels: 64\n")
    assert cli.main(["summary", "--profile", "smoke", str(bad)]) == 2
    assert "channels" in capsys.readouterr().err


def test_both_splits_channels_evenly():
    cfg = load_profile("smoke").replace(input="both")
    net = Net(cfg)
    assert net.conv1.raw.out_channels == net.conv1.spec.out_channels == cfg.channels // 2


def test_log_spectrogram_is_log1p_of_the_linear_magnitude():
    x = torch.randn(3, 4096)
    linear, log = Spectrogram(256, 128)(x), Spectrogram(256, 128, "log")(x)
    torch.testing.assert_close(log, torch.log1p(linear))
    assert torch.equal(Spectrogram(256, 128, "log")(torch.zeros(1, 4096)), torch.zeros(1, 129, 33))  # silence stays 0
    with pytest.raises(ValueError, match="scale 'db'"):
        Spectrogram(256, 128, "db")
    cfg = load_profile("smoke").replace(spectrogram_scale="log", input="both")
    assert Net(cfg).conv1.stft.scale == "log"


@pytest.mark.parametrize("segmented", [False, True], ids=["whole", "segmented"])
@pytest.mark.parametrize("kind", INPUTS)
def test_training_flops_equal_the_hand_count(kind, segmented):
    """FlopCounterMode's count of a training step against multiply-adds counted by hand (2 FLOPs
    each): a layer costs its forward once more for the weight gradient and once more for the
    input gradient, except the first layer, whose input (audio, spectrogram) needs none."""
    cfg = load_profile("smoke", overrides={"input": kind, "segmented": segmented, "channels": 8, "dense": [12, 6]})
    clips = 3
    windows = clips * (cfg.n_segments if segmented else 1)
    c, t = cfg.channels, cfg.steps(cfg.window_samples)  # 8 maps, T = 126 (whole) or 30 (segment)
    half = c // 2 if kind == "both" else c
    first = 0  # multiply-adds of the first layer, per window
    if kind != "spectrogram":
        first += half * t * (3 * cfg.hop)  # Conv1d(1, C, 3 hop, stride hop): T outputs per map
    if kind != "raw":
        first += half * t * (cfg.n_bins * 4)  # Conv2d(1, C, (bins, 4)): T outputs per map
    block = 2 * c * t * (c * 4)  # conv2, conv3: Conv1d(C, C, 4), T outputs per map
    dense = 2 * c * 12 + 12 * 6 + 6 * 8  # 2C -> 12 -> 6 -> 8 genres
    expected = 2 * windows * (2 * first + 3 * (block + dense))
    assert summary.training_flops(cfg, clips) == expected


def test_summary_cost_lines_on_the_smoke_profile(capsys):
    """FLOPs per step and epoch for the 6 runs, and a real step's memory on this CPU."""
    assert cli.main(["summary", "--profile", "smoke", "--tracks", "64"]) == 0
    out = capsys.readouterr().out
    assert "cost of one training epoch on 64 training tracks" in out and "FlopCounterMode" in out
    assert "VmHWM" in out
    row = re.compile(
        r"^  (raw|spectrogram|both) +(whole clip|segments) +(\d+) +([\d.]+) +([\d.]+) +(?:([\d.]+) GB +([\d.]+)|n/a)$"
    )
    rows = [m.groups() for line in out.splitlines() if (m := row.match(line))]
    assert len(rows) == 6
    base = load_profile("smoke")
    for kind, window, n, gflop, tflop, gb, seconds in rows:
        cfg = base.replace(input=kind, segmented=window == "segments")
        per_step = summary.training_flops(cfg, cfg.batch_size)
        assert int(n) == cfg.batch_size * (cfg.n_segments if cfg.segmented else 1)
        assert float(gflop) == pytest.approx(per_step / 1e9, abs=0.05)
        assert float(tflop) == pytest.approx(per_step * 64 / cfg.batch_size / 1e12, abs=0.005)
        if gb is not None:  # measured (Linux)
            assert float(gb) > 0 and float(seconds) > 0

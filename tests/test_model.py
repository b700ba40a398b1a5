"""The network's shapes, traced on the meta device (no data), and its wiring on small inputs."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from fmareport import cli, mel, model, summary
from fmareport.config import load_profile
from fmareport.model import Net, Spectrogram, n_params
from fmareport.summary import layer_table
from fmareport.train import windows

INPUTS = ["raw", "spectrogram", "both"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("segmented", [False, True], ids=["whole", "segmented"])
@pytest.mark.parametrize("kind", INPUTS)
def test_paper_profile_shapes(kind, segmented):
    cfg = load_profile("paper", overrides={"input": kind, "segmented": segmented})
    n, t = (131072, 126) if segmented else (1_000_000, 974)
    assert cfg.window_samples == n and cfg.model.steps(n) == t
    rows = {r.name: r for r in layer_table(cfg.model, cfg.window_samples)}
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
    net = Net(cfg.model).eval()
    x = torch.rand(2, cfg.model.segment_samples) * 2 - 1  # (B, N)
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
    n = 8 * cfg.model.hop + extra
    with torch.no_grad():
        h = Net(cfg.model).eval().conv1(torch.randn(3, n) * 0.1)  # (B, C, T)
    assert h.shape == (3, cfg.model.channels, n // cfg.model.hop - 2)


@pytest.mark.parametrize("chunk_bytes", [model.CPU_CHUNK_BYTES, 1], ids=["one-chunk", "item-by-item"])
def test_spectrogram_is_torchaudio_magnitude(chunk_bytes, monkeypatch):
    import torchaudio

    monkeypatch.setattr(model, "CPU_CHUNK_BYTES", chunk_bytes)
    x = torch.randn(3, 5000)
    ours = Spectrogram(256, 128)(x)
    ref = torchaudio.transforms.Spectrogram(n_fft=256, hop_length=128, power=1)(x)
    assert ours.shape == ref.shape == (3, 129, 5000 // 128 + 1)
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("chunk_bytes", [model.CPU_CHUNK_BYTES, 1], ids=["one-chunk", "item-by-item"])
def test_mel_spectrogram_is_torchaudios_then_the_log_over_the_int16_floor(chunk_bytes, monkeypatch):
    import torchaudio

    monkeypatch.setattr(model, "CPU_CHUNK_BYTES", chunk_bytes)
    x = torch.randn(3, 5000) * 0.1  # (B, N)
    ours = Spectrogram(256, 128, "mel", n_mels=40, sample_rate=8000)(x)  # (B, n_mels, frames)
    ref = torchaudio.transforms.MelSpectrogram(8000, n_fft=256, hop_length=128, n_mels=40)(x)  # power 2
    assert ours.shape == ref.shape == (3, 40, 5000 // 128 + 1)
    torch.testing.assert_close(ours, torch.log(ref + 256 * 2.0**-35))
    assert model.INT16_NOISE_POWER * model.HANN_POWER_GAIN * 256 == 256 * 2.0**-35
    silence = Spectrogram(256, 128, "mel", n_mels=40, sample_rate=8000)(torch.zeros(1, 4096))
    assert torch.equal(silence, torch.full((1, 40, 33), math.log(256 * 2.0**-35)))  # the floor, finite


def test_a_pure_tone_lands_in_the_mel_band_centred_on_it():
    """A sine at band k's centre (HTK mel: 2595 log10(1 + f / 700), n_mels + 2 points evenly spaced
    from 0 Hz to Nyquist; band k peaks at point k + 1) is loudest in band k, in every frame."""
    rate, n_mels = 8000, 64

    def hz(m):
        return 700 * (10 ** (m / 2595) - 1)

    top = 2595 * math.log10(1 + rate / 2 / 700)
    for k in (10, 40, 60):
        f = hz(top * (k + 1) / (n_mels + 1))
        x = torch.sin(2 * math.pi * f * torch.arange(4096) / rate)[None]  # (1, N)
        s = Spectrogram(256, 128, "mel", n_mels=n_mels, sample_rate=rate)(x)  # (1, n_mels, frames)
        assert s[0, :, 2:-2].argmax(dim=0).tolist() == [k] * (s.shape[-1] - 4), (k, f)  # edge frames are padding


@pytest.mark.parametrize("n_fft, rate", [(256, 8000), (512, 22050), (2048, 44100)])
def test_the_empty_bands_the_config_refuses_are_torchaudios_all_zero_filters(n_fft, rate):
    """mel.empty_bands reads the mel points (numpy, no torch at config load); torchaudio builds the
    filters the model uses. Around the most bands that fill, and further out, they name the same."""
    most = mel.most_bands(n_fft, rate)
    for n_mels in sorted({1, 40, most - 1, most, most + 1, most + 2, (most + mel.max_bands(n_fft)) // 2}):
        zero = (mel.filters(n_fft, n_mels, rate).amax(dim=0) == 0).nonzero().flatten().tolist()  # (n_mels,) -> bands
        assert list(mel.empty_bands(n_fft, n_mels, rate)) == zero, (n_fft, rate, n_mels)
        assert bool(zero) == (n_mels > most)


def test_the_mel_first_layer_spans_every_band():
    cfg = load_profile("smoke").replace(spectrogram_scale="mel", input="both", segmented=True)
    rows = {r.name: r for r in layer_table(cfg.model, cfg.window_samples, cfg.store.sample_rate)}
    t = cfg.model.steps(cfg.window_samples)
    assert (rows["conv1.stft"].kind, rows["conv1.stft"].out_shape) == ("logmel", (64, t + 3))  # (n_mels, frames)
    assert (rows["conv1.spec"].kernel, rows["conv1.spec"].out_shape) == ((64, 4), (16, 1, t))
    net = Net.of(cfg)
    assert net.conv1.spec.weight.shape == (16, 1, 64, 4)
    assert "conv1.stft.mel" not in net.state_dict()  # the filters are made, not kept: checkpoints as before
    h = net.conv1(torch.randn(2, cfg.window_samples) * 0.1)  # (B, C, T)
    assert h.shape == (2, 32, t)
    with pytest.raises(ValueError, match="needs n_mels and the sample rate"):
        Net(cfg.model)


def test_residual_shortcut_adds_conv1_before_the_elu():
    """With conv3's weights zero (eval mode, fresh BN stats: BN(0) = 0) the block output is
    ELU(0 + h1) with h1 = ELU(BN(conv1(x))): the shortcut carries conv1's activation."""
    cfg = load_profile("smoke", overrides={"input": "both"})
    net = Net(cfg.model).eval()
    seen = {}
    net.conv1.register_forward_hook(lambda m, a, out: seen.update(z1=out))
    net.pool.register_forward_hook(lambda m, a, out: seen.update(h3=a[0]))
    with torch.no_grad():
        net.conv3.conv.weight.zero_()
        net(torch.randn(2, cfg.store.clip_samples) * 0.1)
    torch.testing.assert_close(seen["h3"], F.elu(F.elu(seen["z1"])))


def test_dropout_only_in_training():
    cfg = load_profile("smoke", overrides={"dropout": 0.5})
    net = Net(cfg.model)
    x = torch.randn(4, cfg.store.clip_samples) * 0.1
    with torch.no_grad():
        assert not torch.equal(net.train()(x), net(x))
        assert torch.equal(net.eval()(x), net(x))


@pytest.mark.parametrize("kind", INPUTS)
def test_layer_table_counts_every_parameter(kind):
    cfg = load_profile("smoke", overrides={"input": kind})
    rows = layer_table(cfg.model, cfg.window_samples)
    assert sum(r.params for r in rows if r.depth == 0) == n_params(Net(cfg.model))
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
    net = Net(cfg.model)
    assert net.conv1.raw.out_channels == net.conv1.spec.out_channels == cfg.model.channels // 2


def test_log_spectrogram_is_log1p_of_the_linear_magnitude():
    x = torch.randn(3, 4096)
    linear, log = Spectrogram(256, 128)(x), Spectrogram(256, 128, "log")(x)
    torch.testing.assert_close(log, torch.log1p(linear))
    assert torch.equal(Spectrogram(256, 128, "log")(torch.zeros(1, 4096)), torch.zeros(1, 129, 33))  # silence stays 0
    with pytest.raises(ValueError, match="scale 'db'"):
        Spectrogram(256, 128, "db")
    cfg = load_profile("smoke").replace(spectrogram_scale="log", input="both")
    assert Net(cfg.model).conv1.stft.scale == "log"


@pytest.mark.parametrize("segmented", [False, True], ids=["whole", "segmented"])
@pytest.mark.parametrize("kind", INPUTS)
def test_training_flops_equal_the_hand_count(kind, segmented):
    """FlopCounterMode's count of a training step against multiply-adds counted by hand (2 FLOPs
    each): a layer costs its forward once more for the weight gradient and once more for the
    input gradient, except the first layer, whose input (audio, spectrogram) needs none."""
    cfg = load_profile("smoke", overrides={"input": kind, "segmented": segmented, "channels": 8, "dense": [12, 6]})
    clips = 3
    windows = clips * (cfg.n_segments if segmented else 1)
    c, t = cfg.model.channels, cfg.model.steps(cfg.window_samples)  # 8 maps, T = 126 (whole) or 30 (segment)
    half = c // 2 if kind == "both" else c
    first = 0  # multiply-adds of the first layer, per window
    if kind != "spectrogram":
        first += half * t * (3 * cfg.model.hop)  # Conv1d(1, C, 3 hop, stride hop): T outputs per map
    if kind != "raw":
        first += half * t * (cfg.model.n_bins * 4)  # Conv2d(1, C, (bins, 4)): T outputs per map
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
        per_step = summary.training_flops(cfg, cfg.train.batch_size)
        assert int(n) == cfg.train.batch_size * (cfg.n_segments if cfg.model.segmented else 1)
        assert float(gflop) == pytest.approx(per_step / 1e9, abs=0.05)
        assert float(tflop) == pytest.approx(per_step * 64 / cfg.train.batch_size / 1e12, abs=0.005)
        if gb is not None:  # measured (Linux)
            assert float(gb) > 0 and float(seconds) > 0


# --- the two forms of the convolutions (model.MATMUL_DEVICES) -------------------------------


def _grads(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad for k, p in net.named_parameters()}


def test_conv_matmul_equals_conv1d():
    """conv_matmul is F.conv1d, channels-last: the same output, input and weight gradients, shapes."""
    torch.manual_seed(0)
    for b, length, d, c, k, stride in [(3, 37, 5, 7, 4, 1), (2, 4096, 1, 6, 384, 128), (4, 33, 513, 16, 4, 1)]:
        x = torch.randn(b, length, d, requires_grad=True)  # (B, L, D)
        w = torch.randn(c, d, k, requires_grad=True)  # (C, D, k)
        ours = model.conv_matmul(x, w, stride)  # (B, T, C)
        ref = F.conv1d(x.transpose(1, 2), w, stride=stride).transpose(1, 2)
        assert ours.shape == ref.shape == (b, (length - k) // stride + 1, c)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-4)
        g = torch.randn_like(ref)
        ours_grads = torch.autograd.grad(ours, (x, w), g)
        torch.testing.assert_close(ours_grads, torch.autograd.grad(ref, (x, w), g), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("profile", ["demo", "paper"])
def test_spectrogram_conv_forms_equal(profile, monkeypatch):
    """The 2D first layer Conv2d(1, C, (F, 4)) spans every bin, so it equals Conv1d(F, C, 4) on the
    (B, F, frames) spectrogram with the weight viewed as (C, F, 4); the matmul form runs that one.
    All three agree (output and weight gradient) at the demo's and the paper's F, with exact shapes."""
    cfg = load_profile(profile, overrides={"input": "spectrogram", "segmented": True})
    torch.manual_seed(0)
    layer = model.SpectrogramConv(1, 16, (cfg.model.n_bins, model.SPEC_FRAMES), bias=False)
    s = Spectrogram(cfg.model.n_fft, cfg.model.hop)(torch.randn(3, cfg.model.segment_samples) * 0.1)  # (B, F, frames)
    t = cfg.model.steps(cfg.model.segment_samples)
    g = torch.randn(3, 16, 1, t)
    outs = {}
    for form, devices in [("matmul", ("cpu",)), ("conv2d", ())]:
        monkeypatch.setattr(model, "MATMUL_DEVICES", devices)
        y = layer(s[:, None])  # (B, C, 1, T)
        outs[form] = (y, torch.autograd.grad(y, layer.weight, g)[0])
    y1 = F.conv1d(s, layer.weight.view(16, cfg.model.n_bins, model.SPEC_FRAMES))[:, :, None]  # Conv1d(F, C, 4)
    outs["conv1d"] = (y1, torch.autograd.grad(y1, layer.weight, g)[0])
    for form, (y, grad) in outs.items():
        assert y.shape == (3, 16, 1, t) and grad.shape == layer.weight.shape == (16, 1, cfg.model.n_bins, 4), form
        torch.testing.assert_close(y, outs["conv2d"][0], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(grad, outs["conv2d"][1], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("segmented", [False, True], ids=["whole", "segmented"])
@pytest.mark.parametrize("kind", INPUTS)
def test_net_forms_equal(kind, segmented, monkeypatch):
    """The whole network, one training step's forward and backward and then eval, in the matmul
    form and with PyTorch's conv kernels, from the same weights: the same logits, every parameter's
    gradient, the batch norms' running statistics, within fp32 tolerance (smoke shapes)."""
    cfg = load_profile("smoke", overrides={"input": kind, "segmented": segmented})
    x = torch.randn(4 * (cfg.n_segments if segmented else 1), cfg.window_samples) * 0.1
    y = torch.arange(len(x)) % 8
    torch.manual_seed(0)
    nets = {"matmul": Net(cfg.model)}
    nets["conv"] = Net(cfg.model)
    nets["conv"].load_state_dict(nets["matmul"].state_dict())
    got = {}
    for form, net in nets.items():
        monkeypatch.setattr(model, "MATMUL_DEVICES", ("cpu",) if form == "matmul" else ())
        logits = net(x)
        F.cross_entropy(logits, y).backward()
        with torch.no_grad():
            evaluated = net.eval()(x)
        got[form] = (logits.detach(), _grads(net), evaluated, {k: v for k, v in net.state_dict().items()})
    (l1, g1, e1, s1), (l2, g2, e2, s2) = got["matmul"], got["conv"]
    torch.testing.assert_close(l1, l2, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(e1, e2, rtol=1e-4, atol=1e-4)
    assert g1.keys() == g2.keys() and s1.keys() == s2.keys()
    for k in g1:
        # A norm-wise check: a sum over B * T with cancellation (a BN bias) differs most, 2.4e-4 at worst.
        assert (g1[k] - g2[k]).norm() <= 1e-3 * g2[k].norm(), k
    for k in s1:
        torch.testing.assert_close(s1[k].float(), s2[k].float(), rtol=1e-4, atol=1e-5, msg=k)


def test_matmul_form_keeps_the_papers_parameters():
    """Checkpoints of either form load in the other: the modules, parameter names and shapes are
    the paper's layers (Conv2d(1, C, (F, 4)) for the 2D first layer), as before the matmul form."""
    cfg = load_profile("paper", overrides={"input": "both"})
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in Net(cfg.model).state_dict().items() if "running" not in k}
    assert {k: s for k, s in shapes.items() if k.startswith(("conv", "out"))} == {
        "conv1.raw.weight": (128, 1, 3072),
        "conv1.spec.weight": (128, 1, 1025, 4),
        "conv1.bn.weight": (256,),
        "conv1.bn.bias": (256,),
        "conv1.bn.num_batches_tracked": (),
        "conv2.conv.weight": (256, 256, 4),
        "conv2.bn.weight": (256,),
        "conv2.bn.bias": (256,),
        "conv2.bn.num_batches_tracked": (),
        "conv3.conv.weight": (256, 256, 4),
        "conv3.bn.weight": (256,),
        "conv3.bn.bias": (256,),
        "conv3.bn.num_batches_tracked": (),
        "out.weight": (8, 150),
        "out.bias": (8,),
    }


@pytest.mark.parametrize(
    "profile,segmented",
    [("demo", True), ("demo", False), ("paper", True), ("paper", False)],
    ids=["demo-segment", "demo-clip", "paper-segment", "paper-clip"],
)
def test_the_cpu_runs_the_matmul_form_and_the_layer_table_the_convs(profile, segmented):
    """At the demo's and the paper's shapes a CPU training step (forward and backward) runs no
    convolution kernel, only matrix multiplies, and as many FLOPs as the convolutions (counted on the
    meta device by summary.training_flops); the layer table (the meta device, which the figures
    draw) traces the conv modules, so Fig. 2 shows the paper's layers."""
    for kind in INPUTS:
        cfg = load_profile(profile, overrides={"input": kind, "segmented": segmented})
        clips = 1 if segmented else 2  # 1 clip: its n_segments windows
        x = windows(torch.randn(clips, cfg.store.clip_samples) * 0.1, cfg)  # (B * S, W)
        with FlopCounterMode(display=False) as counter:
            F.cross_entropy(Net(cfg.model)(x), torch.arange(len(x)) % 8).backward()
        ops = {str(op) for op in counter.get_flop_counts()["Global"]}
        assert "aten.mm" in ops and not [op for op in ops if "conv" in op], (kind, ops)
        assert counter.get_total_flops() == summary.training_flops(cfg, clips), kind
        rows = {r.name: r for r in layer_table(cfg.model, cfg.window_samples)}
        if kind != "raw":
            assert (rows["conv1.spec"].kind, rows["conv1.spec"].kernel) == ("conv2d", (cfg.model.n_bins, 4))
        if kind != "spectrogram":
            assert (rows["conv1.raw"].kind, rows["conv1.raw"].kernel) == ("conv1d", (3 * cfg.model.hop,))


def test_matmul_form_keeps_activations_and_gradients_channels_last():
    """In the matmul form every conv layer's (B, C, T) output is a view of channels-last memory,
    and the gradients coming back are too (no transposing copies in the step)."""
    cfg = load_profile("smoke", overrides={"input": "both", "segmented": True})
    net = Net(cfg.model)
    seen = []

    def hook(module, args, out):
        seen.append(out.stride(1))  # (B, C, T) with C the fastest dim: (B, T, C) in memory
        out.register_hook(lambda grad: seen.append(grad.stride(1)))

    for name in ("conv1", "conv2", "conv3"):
        getattr(net, name).register_forward_hook(hook)
    F.cross_entropy(net(torch.randn(6, cfg.window_samples) * 0.1), torch.arange(6) % 8).backward()
    assert seen == [1] * 6, seen


def test_spectrogram_is_frames_major_in_memory():
    """|STFT| comes back as (B, F, frames) laid out (B, frames, F), as torch.stft makes it: the 2D
    first layer's matmul form reads rows of F bins without a transposing copy."""
    s = Spectrogram(256, 128)(torch.randn(3, 5000))  # (B, F, frames)
    assert s.shape == (3, 129, 40) and s.transpose(1, 2).is_contiguous()

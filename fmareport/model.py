"""The network: one residual CNN fed raw audio (1D), its spectrogram (2D) or both.

Our reconstruction of Fig. 1 and Fig. 2 of Benito Calvino & Pacheco Garcia (§III, §V), the
residual model of Zhang et al. (Interspeech 2016); our readings of what the paper leaves open
are on the book's Methods page ("Deviations from the paper's text"):

    waveform (B, N) float in [-1, 1]
      -> conv1: the input-specific first layer          (B, C, T),  T = N // hop - 2
      -> conv2, conv3: Conv1d(C, C, 4), length kept     (B, C, T)
      -> conv3 + conv1 (the residual shortcut)          (B, C, T)
      -> global max and global mean over time, concat   (B, 2C)
      -> dense 2C -> 300 -> 150 -> 8 genres             (B, 8) logits, float32 under autocast too

How the convolutions run (the same numbers either way; only the speed differs): on the CPU
every convolution is one matrix multiply over its unfolded input (`conv_matmul`, im2col) on
activations kept channels-last ((B, T, C), shown to callers as (B, C, T) views), each batch
norm over a (B * T, C) matrix; elsewhere (cuDNN, the meta device) the conv modules run their
own kernels (docs/measurements.md, "Where a training step's time goes"). The modules, parameter
names and shapes are the paper's either way, so checkpoints load in both forms.
The data path (train.py) turns the int16 clip store into x / 32768 on the device.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import mel
from .config import Config, ModelSettings
from .data.fma import GENRES
from .inputs import INPUTS

RESIDUAL_KERNEL = 4  # conv2 and conv3 kernel (Zhang et al. 2016, nnet2)
SPEC_FRAMES = 4  # 2D first layer spans 4 STFT frames -> T = (N // hop + 1) - 4 + 1
RAW_HOPS = 3  # 1D first layer kernel = 3 * hop, stride hop -> T = N // hop - 3 + 1
# On the CPU the STFT runs in chunks whose complex output (~8 MB) stays in cache (docs/measurements.md).
CPU_CHUNK_BYTES = 8 << 20
# Devices whose convolutions run as im2col matrix multiplies (conv_matmul), faster there than PyTorch's
# kernels at every shape measured (docs/measurements.md). Not CUDA: cuDNN picks its algorithm per shape
# without the im2col copy (1.45 GB in fp32 for the paper's 700 2D segments a step).
MATMUL_DEVICES = ("cpu",)
# The log-mel input's floor, log(mel + floor): the power int16 rounding alone puts in one STFT bin. The
# rounding error is uniform on +-half a step of 2**-15 (variance 2**-30 / 12 a sample); a Hann-windowed bin
# of white noise has power variance * sum(w**2) = variance * 3 n_fft / 8. So floor = n_fft * 2**-35 (-75 dB
# at n_fft 1024, -72 dB at 2048): below it a band is below what the clip's format resolves.
INT16_NOISE_POWER = 2.0**-30 / 12  # (2**-15)**2 / 12
HANN_POWER_GAIN = 3 / 8  # sum(w**2) / n_fft for torch.hann_window (periodic)


def matmul_form(x: torch.Tensor) -> bool:
    """Whether the layers take the matmul form (conv_matmul, channels-last) for input x."""
    return x.device.type in MATMUL_DEVICES


def conv_matmul(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """A 1D convolution (cross-correlation, no padding, no bias) as one matrix multiply: x (B, L, D)
    channels-last, weight (C, D, k) as nn.Conv1d keeps it -> (B, T, C), T = (L - k) // stride + 1,
    F.conv1d(x.transpose(1, 2), weight, stride=stride) transposed. The windows are unfolded into a
    (B * T, k * D) matrix (im2col: one copy, k / stride times the input, kept for the weight
    gradient), so the forward and both gradients are each one large GEMM."""
    b, k = x.shape[0], weight.shape[-1]
    cols = x.unfold(1, k, stride).transpose(2, 3)  # (B, T, k, D): a view; rows of D stay contiguous
    t = cols.shape[1]
    cols = cols.reshape(b * t, -1)  # (B * T, k * D): the copy
    w = weight.transpose(1, 2).reshape(weight.shape[0], -1)  # (C, k * D), the same (tap, channel) order
    return (cols @ w.t()).view(b, t, -1)  # (B, T, C)


def layer_info(kind: str, features: int | None = None, kernel=None, stride=None, padding=None) -> dict:
    """A layer as summary.layer_table shows it: the `describe()` of every module it names."""
    return dict(kind=kind, kernel=kernel, stride=stride, padding=padding, features=features)


def batch_norm_last(bn: nn.BatchNorm1d, y: torch.Tensor) -> torch.Tensor:
    """bn over a channels-last (B, T, C): as a (B * T, C) matrix, the same statistics per channel
    (over batch and time) as bn over (B, C, T). (B, T, C) -> (B, T, C)"""
    return bn(y.reshape(-1, y.shape[-1])).view(y.shape)


class Spectrogram(nn.Module):
    """|STFT| of a batch of waveforms, on the waveform's device: (B, N) -> (B, F, N // hop + 1).

    The paper's "STFT magnitude" (§IV): Hann window, centred, power 1, no log, as
    torchaudio.transforms.Spectrogram(n_fft, hop_length=hop, power=1); F = n_fft // 2 + 1 bins
    ((1025, 977) for 10**6 samples at n_fft 2048, hop 1024). Frames-major in memory (a transposed
    view of (B, frames, F)): the matmul form reads rows of F bins without a copy. |X| is
    sqrt(re^2 + im^2) in fp32: within 1 ulp of torch.abs, in half its time (docs/measurements.md);
    the squares underflow only below |X| ~ 1e-19.

    The ablations (the book's "Beyond the paper"): scale "log" gives log1p(|STFT|) (silence stays
    0); scale "mel" gives log(mel + floor) over F = n_mels bands: MelSpectrogram's product on the
    same STFT (power 2), in float32 also under autocast, then a natural log over the fixed floor
    n_fft * 2**-35 (INT16_NOISE_POWER), not AmplitudeToDB's top_db against each spectrogram's peak.
    The batch norm after the first layer removes any scale (dB would be 10 / ln 10 times this).
    """

    def __init__(
        self, n_fft: int, hop: int, scale: str = "linear", n_mels: int | None = None, sample_rate: int | None = None
    ):
        super().__init__()
        if scale not in ("linear", "log", "mel"):
            raise ValueError(f"spectrogram scale {scale!r}: expected 'linear', 'log' or 'mel'")
        if scale == "mel" and (n_mels is None or sample_rate is None):
            raise ValueError("a mel spectrogram needs n_mels and the sample rate: Net.of(cfg) passes the store's")
        self.n_fft, self.hop, self.scale = n_fft, hop, scale
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        if scale == "mel":  # (F, n_mels), on the window's device (meta in the layer table); not a parameter
            self.register_buffer(
                "mel", mel.filters(n_fft, n_mels, sample_rate).to(self.window.device), persistent=False
            )
        self.floor = n_fft * HANN_POWER_GAIN * INT16_NOISE_POWER  # = n_fft * 2**-35
        self.features = n_mels if scale == "mel" else n_fft // 2 + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_item = (self.n_fft // 2 + 1) * (x.shape[-1] // self.hop + 1) * 8  # complex64 bytes
        n = max(1, CPU_CHUNK_BYTES // per_item) if x.device.type == "cpu" else len(x)
        parts = [self._frames(chunk) for chunk in x.split(n)]  # [(b, frames, F')]
        out = parts[0] if len(parts) == 1 else torch.cat(parts)  # (B, frames, F')
        return out.transpose(1, 2)  # (B, F', frames), frames-major in memory; F' = n_mels for mel

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        """(b, N) -> (b, frames, F') in the scale asked for; F' is F bins, or n_mels bands."""
        # Autocast has no rule for the STFT: it runs in x's float32 also under bf16 autocast.
        spec = torch.stft(
            x, self.n_fft, self.hop, window=self.window, center=True, pad_mode="reflect", return_complex=True
        )  # (b, F, frames) complex
        re, im = torch.view_as_real(spec).unbind(-1)  # (b, F, frames) each
        power = (re * re).addcmul_(im, im)  # |X|^2 (b, F, frames)
        if self.scale == "mel":
            with _no_autocast(x.device.type):
                return (power.transpose(1, 2) @ self.mel).add_(self.floor).log_()  # (b, frames, n_mels)
        mag = power.sqrt_()  # |X| (b, F, frames)
        return (mag.log1p() if self.scale == "log" else mag).transpose(1, 2)  # (b, frames, F): a view

    def describe(self) -> dict:
        kind = {"linear": "stft", "log": "logstft", "mel": "logmel"}[self.scale]
        return layer_info(kind, self.features, (self.n_fft,), (self.hop,), (self.n_fft // 2, self.n_fft // 2))


class Conv1d(nn.Conv1d):
    """nn.Conv1d (no padding of its own) in the matmul form on MATMUL_DEVICES: the 1D first layer
    and conv2, conv3. (B, C_in, L) -> (B, C_out, T); in the matmul form a view of channels-last
    (B, T, C_out), and a channels-last input is read without a copy but the im2col's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not matmul_form(x):
            return super().forward(x)  # (B, C_out, T)
        return conv_matmul(x.transpose(1, 2), self.weight, self.stride[0]).transpose(1, 2)  # (B, C_out, T)


class SpectrogramConv(nn.Conv2d):
    """The 2D first layer, the paper's Conv2d(1, C, (F, 4)): (B, 1, F, frames) -> (B, C, 1, T). Its
    kernel spans all F bins, so it equals Conv1d(F, C, 4) with the weight viewed as (C, F, 4), which
    the matmul form runs (conv_matmul over rows of F bins), giving a view of channels-last (B, T, C)."""

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        if not matmul_form(s):
            return super().forward(s)  # (B, C, 1, T)
        y = conv_matmul(s[:, 0].transpose(1, 2), self.weight[:, 0])  # (B, frames, F) -> (B, T, C)
        return y.transpose(1, 2)[:, :, None]  # (B, C, 1, T)


class FirstLayer(nn.Module):
    """The input-specific first conv layer (the paper's §V and Fig. 2): (B, N) -> (B, C, T),
    T = N // hop - 2 for every input.

    raw:         Conv1d(1, C, 3*hop, stride=hop) on the waveform.
    spectrogram: Conv2d(1, C, (model.n_bins, 4)) on the spectrogram: it spans every bin (or mel
                 band), so the output has height 1 and is squeezed.
    both:        C/2 maps from each (raw first), concatenated on channels ("128 + 128").
    Then batch norm (per channel: one over the concatenation equals one per half); the caller
    applies the ELU, since conv1's activation also feeds the shortcut.
    """

    def __init__(self, model: ModelSettings, sample_rate: int | None = None):
        super().__init__()
        branches = INPUTS[model.input].branches
        c = model.channels // len(branches)
        raw, spec = "raw" in branches, "spectrogram" in branches
        self.raw = Conv1d(1, c, RAW_HOPS * model.hop, stride=model.hop, bias=False) if raw else None
        self.stft = (
            Spectrogram(model.n_fft, model.hop, model.spectrogram_scale, model.n_mels, sample_rate) if spec else None
        )
        self.spec = SpectrogramConv(1, c, (model.n_bins, SPEC_FRAMES), bias=False) if spec else None
        self.bn = nn.BatchNorm1d(model.channels)
        self.hop = model.hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[-1] // self.hop - 2
        parts = []
        if self.raw is not None:
            parts.append(self.raw(x[:, None]))  # (B, C1, T)
        if self.spec is not None:
            s = self.stft(x)  # (B, F, frames)
            parts.append(self.spec(s[:, None]).squeeze(2))  # (B, 1, F, frames) -> (B, C2, 1, T) -> (B, C2, T)
        if parts[0].shape[-1] != steps:
            raise ValueError(f"first layer gives {parts[0].shape[-1]} steps, expected N // hop - 2 = {steps}")
        if not matmul_form(x):  # one part (one input branch): no copy
            return self.bn(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])  # (B, C, T)
        # Channels-last: the maps join along the last dim of (B, T, C) (one part: no copy).
        h = torch.cat([p.transpose(1, 2) for p in parts], dim=2) if len(parts) > 1 else parts[0].transpose(1, 2)
        return batch_norm_last(self.bn, h).transpose(1, 2)  # (B, T, C) -> (B, C, T) view

    def describe(self) -> dict:
        return layer_info("first", self.bn.num_features)


class ConvLayer(nn.Module):
    """conv2 / conv3 of the residual block (Zhang et al. 2016): Conv1d(C, C, 4), zero padding
    (1, 2) to keep the length, batch norm; the caller applies the ELU (and conv3's shortcut).
    (B, C, T) -> (B, C, T), in the matmul form a view of channels-last (B, T, C)."""

    def __init__(self, channels: int, kernel: int = RESIDUAL_KERNEL):
        super().__init__()
        self.pad = ((kernel - 1) // 2, kernel // 2)  # (1, 2) for kernel 4: length stays T
        self.conv = Conv1d(channels, channels, kernel, bias=False)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not matmul_form(x):
            return self.bn(self.conv(F.pad(x, self.pad)))  # (B, C, T)
        xp = F.pad(x.transpose(1, 2), (0, 0, *self.pad)).transpose(1, 2)  # (B, C, T + 3), channels-last
        return batch_norm_last(self.bn, self.conv(xp).transpose(1, 2)).transpose(1, 2)  # (B, C, T) view

    def describe(self) -> dict:
        return layer_info("conv1d", self.conv.out_channels, self.conv.kernel_size, self.conv.stride, self.pad)


class GlobalPool(nn.Module):
    """Global max and global average pooling over time, concatenated (the paper's §V;
    Zhang et al. 2016): the pooling kernel is the whole feature map. (B, C, T) -> (B, 2C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = -1  # the time dim
        if matmul_form(x):  # reduce channels-last (B, T, C): the gradients then come back channels-last too
            x, t = x.transpose(1, 2), 1
        return torch.cat([x.amax(dim=t), x.mean(dim=t)], dim=1)  # (B, 2C)

    def describe(self) -> dict:
        return layer_info("pool")


class DenseLayer(nn.Module):
    """A hidden fully connected layer + batch norm (the paper's §V; widths 300 and 150 from
    Zhang et al. 2016). The ELU and dropout are applied by the caller. (B, D_in) -> (B, D_out)."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=False)
        self.bn = nn.BatchNorm1d(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(x))  # (B, D_out)

    def describe(self) -> dict:
        return layer_info("dense", self.linear.out_features)


class Net(nn.Module):
    """The whole network (the paper's Fig. 1): first layer, residual block, global pooling, three
    dense layers. (B, N) float waveform in [-1, 1] -> (B, n_classes) logits, N a clip or a segment
    (any N >= 6 * hop). A log-mel input needs the clips' `sample_rate` (`Net.of(cfg)` passes it).
    forward is `head(embed(x))`; the test pass keeps `embed`'s activations (fmareport.weights).
    """

    def __init__(self, model: ModelSettings, n_classes: int = len(GENRES), sample_rate: int | None = None):
        super().__init__()
        c = model.channels
        self.conv1 = FirstLayer(model, sample_rate)
        self.conv2 = ConvLayer(c)
        self.conv3 = ConvLayer(c)
        self.pool = GlobalPool()
        widths = [2 * c, *model.dense]  # 512 -> 300 -> 150 in the paper profile
        self.dense = nn.ModuleList(DenseLayer(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(widths[-1], n_classes)
        self.drop = nn.Dropout(model.dropout)

    @classmethod
    def of(cls, cfg: Config) -> Net:
        """The network of a run: cfg.model at the store's sample rate (which a mel input needs)."""
        return cls(cfg.model, sample_rate=cfg.store.sample_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))  # (B, n_classes) float32

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations, the last dense layer's after its ELU (and dropout in train
        mode), which the book's embedding maps show: (B, N) -> (B, D), D = cfg.model.dense[-1]
        (150 in the paper profile), in the autocast dtype under autocast."""
        h1 = self.drop(F.elu(self.conv1(x)))  # (B, C, T)
        h2 = self.drop(F.elu(self.conv2(h1)))  # (B, C, T)
        h3 = self.drop(F.elu(self.conv3(h2) + h1))  # (B, C, T): conv3 + conv1 shortcut
        z = self.pool(h3)  # (B, 2C)
        for layer in self.dense:
            z = self.drop(F.elu(layer(z)))  # (B, D)
        return z  # (B, D)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """The output layer on penultimate activations (`embed`): (B, D) -> (B, n_classes) float32
        logits, also under bf16 autocast (bf16 logits tie: docs/running.md, "The device policy")."""
        with _no_autocast(z.device.type):
            return self.out(z.float())  # (B, n_classes)


def _no_autocast(device_type: str):
    """Autocast switched off for a block (a no-op on devices without autocast, e.g. meta)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def n_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""The network's layer table for each input (`fmareport summary --profile P [CELL.yaml ...]`).

For each input kind (raw, spectrogram, both) and each window (a whole clip, a segment)
it prints every layer's output shape (batch dim dropped) and parameter count, traced
from the model itself on the meta device: no data set, no memory.
"""

from __future__ import annotations

from .config import Config
from .model import layer_table

INPUTS = ("raw", "spectrogram", "both")


def format_table(cfg, n_samples: int) -> str:
    """The layer table of Net(cfg) on an input of `n_samples` samples, as text."""
    rows = layer_table(cfg, n_samples)
    lines = [f"  {'layer':<14}{'kind':<8}{'output shape':<18}{'kernel':<12}{'stride':<9}{'params':>10}"]
    for r in rows:
        name = ("  " * r.depth) + r.name
        kernel = "x".join(map(str, r.kernel)) if r.kernel else ""
        stride = "x".join(map(str, r.stride)) if r.stride else ""
        lines.append(f"  {name:<14}{r.kind:<8}{str(r.out_shape):<18}{kernel:<12}{stride:<9}{r.params:>10,}")
    total = sum(r.params for r in rows if r.depth == 0)
    lines.append(f"  {'total':<61}{total:>10,}")
    return "\n".join(lines)


def summary_text(base: Config) -> str:
    """Every input kind's layer table, for a whole clip and for a segment, as text."""
    sr = base.sample_rate
    out = [
        f"profile {base.profile}: {sr} Hz, n_fft {base.n_fft}, hop {base.hop}, {base.channels} maps, "
        f"dense {base.dense}, dropout {base.dropout}"
    ]
    windows = [("whole clip", base.clip_samples, False), ("segment", base.segment_samples, True)]
    for kind in INPUTS:
        cfg = base.replace(input=kind)
        for label, n, segmented in windows:
            extra = f", {cfg.n_segments} per clip (hop {cfg.segment_hop})" if segmented else ""
            out.append(
                f"\ninput {kind}, {label}: {n:,} samples ({n / sr:.2f} s){extra}, T = N // hop - 2 = {cfg.steps(n)}"
            )
            out.append(format_table(cfg, n))
    return "\n".join(out)

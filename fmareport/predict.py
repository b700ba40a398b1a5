"""The network on a track the reader brings: `fmareport predict AUDIO... [--profile P] [--cell C]`
(which cell: report.runs.best_cell and current_network, the book's judgement of its runs).

Each file is decoded by the clip store's rule (data/audio.decode_clip: mono, the cell's sample rate,
its clip of the track), cut into the windows the cell trained on, and run through the cell's kept
weights (its first seed's, fmareport.weights). A genre's probability is a test track's: the mean of
its windows' softmax (train.track_log_probs), so the book's predictions of a test track and this
one's agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.audio import Skip, decode_clip, to_float
from .data.fma import GENRES
from .errors import ConfigError
from .results import CellResults


@dataclass(frozen=True)
class CellNetwork:
    """A cell's run and its network with the first seed's final weights, in eval mode."""

    result: CellResults
    net: object  # model.Net

    def predict(self, path: str | Path) -> np.ndarray:
        """Each genre's probability for the audio file at `path`: (K,) float64, label order (GENRES).
        Skip (data.audio) when the file cannot make a clip."""
        import torch

        from .train import track_log_probs, windows

        cfg = self.result.config
        s = cfg.store
        clip = decode_clip(path, s.sample_rate, s.clip_samples, s.clip_rule, s.min_clip_fraction)  # (N,) int16
        x = torch.from_numpy(to_float(clip))[None]  # (1, N) float32 in [-1, 1)
        with torch.no_grad():
            logits = self.net(windows(x, cfg))  # (S, K): one row per window
        return track_log_probs(logits, cfg.windows_per_clip).exp()[0].double().numpy()  # (K,)


def network_of(path: str | Path, result: CellResults) -> CellNetwork:
    """The network of the results file at `path` (read as `result`) with its kept weights (ResultsError
    from fmareport.weights when it kept none, or another run's)."""
    import torch

    from .model import Net
    from .weights import load_weights

    net = Net.of(result.config)
    net.load_state_dict(load_weights(path, result)["final"])
    return CellNetwork(result, net.eval().to(torch.float32))


def predict_files(network: CellNetwork, files: list[str | Path]) -> list[dict]:
    """Each file's probabilities: [{"file", "probabilities": {genre: p}}], in the files' order; ConfigError
    naming the first file that cannot make a clip (missing, not a file, undecodable, too short, silent)."""
    out = []
    for f in files:
        try:
            probs = network.predict(f)
        except Skip as skip:
            reason, detail = skip.args
            raise ConfigError(f"{f}: {reason}: {detail}") from None
        out.append({"file": str(f), "probabilities": dict(zip(GENRES, map(float, probs)))})
    return out


def text(outputs: list[dict], network: CellNetwork) -> str:
    """What `fmareport predict` prints: per file, a line naming it and the cell, then each genre with its
    probability, most likely first."""
    r = network.result
    lines = []
    for out in outputs:
        lines.append(f"{out['file']}: profile {r.profile}, cell {r.cell} (run {r.run_id[:12]}, seed {r.seed_ids[0]})")
        ranked = sorted(out["probabilities"].items(), key=lambda kv: -kv[1])
        lines += [f"  {genre:<14}{p:.3f}" for genre, p in ranked]
    return "\n".join(lines)

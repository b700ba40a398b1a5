"""The network on a track the reader brings: `fmareport predict AUDIO... [--profile P] [--cell C]`.

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

from .config import load_profile
from .data.audio import Skip, decode_clip, to_float
from .data.fma import GENRES
from .errors import ConfigError
from .results import CellResults, ResultsError, load_results, read_results, results_path


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


def statuses(profile: str, results_dir: Path, results: dict[str, CellResults]) -> dict:
    """{cell: RunStatus} of `results` as the book judges them (report.runs.run_statuses: current when the
    profile and the params give its settings today, on the profile's store)."""
    from .report.runs import run_statuses

    return {s.cell: s for s in run_statuses(profile, results, results_dir.resolve().parent) if s.cell in results}


def best_cell(profile: str, results_dir: str | Path) -> str:
    """The table cell (no ablation) of `profile` with the best mean test accuracy among its current runs
    that kept their weights, as the book ranks them (the first by name among equals)."""
    results_dir = Path(results_dir)
    results = load_results(results_dir, profile)
    shown = statuses(profile, results_dir, results)
    found = [r for c, r in results.items() if shown[c].shown and r.config.base is None and r.weights_sha1 is not None]
    if not found:
        raise ResultsError(
            f"no current run of profile {profile!r} with kept weights in {results_dir / profile}: run a cell "
            f"first (`fmareport run --profile {profile} --cell table1/spectrogram_segmented`)"
        )
    return min(found, key=lambda r: (-r.summary.test_acc_last_mean, r.cell)).cell


def load(profile: str, cell: str | None = None, results_dir: str | Path | None = None) -> CellNetwork:
    """The kept network of `cell` (default: `best_cell`) of `profile`, from `results_dir` (default: the
    profile's). ResultsError when the cell has no results or no kept weights, ConfigError when its run
    was made with other settings than the profile and its params file give: its weights are not the
    profile's cell."""
    results_dir = Path(results_dir or load_profile(profile).run.results_dir)
    cell = cell or best_cell(profile, results_dir)
    path = results_path(results_dir, profile, cell)
    if not path.is_file():
        raise ResultsError(
            f"{path}: no results of cell {cell} of profile {profile!r}: run it first "
            f"(`fmareport run --profile {profile} --cell {cell}`)"
        )
    result = read_results(path)
    if (result.profile, result.cell) != (profile, cell):
        raise ResultsError(f"{path}: holds profile {result.profile!r} cell {result.cell!r}, not {profile!r} {cell!r}")
    if not (status := statuses(profile, results_dir, {cell: result})[cell]).shown:
        raise ConfigError(f"{path}: the run of cell {cell} is not the profile's cell as its params give it today "
                          f"({status.label}): run the cell again")  # fmt: skip
    return network_of(path, result)


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

"""What the figures of the learned network need, kept beside each cell's results file.

`results/<profile>/<cell>.weights.pt`: the first seed's final state_dict and its first layer at
initialisation (one torch.save of plain data, `load_weights`); `results/<profile>/<cell>.embeddings.npz`:
every seed's test-set embeddings (S, N, D) float16 (`load_embeddings`). The results file names both
by the SHA1 of their bytes, so a file a killed run left is refused (`kept_bytes`). The contract:
docs/contracts.md ("Kept weights and embeddings"); the book's "What the networks learned" draws them.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .results import EMBEDDINGS_SUFFIX, WEIGHTS_SUFFIX, CellResults, ResultsError

FIRST_LAYER_KEYS = ("conv1.raw.weight", "conv1.spec.weight")  # the first layer's kernels (model.FirstLayer)
WEIGHTS_EXTRA_BYTES = 64 << 10  # pickle framing, the keys and the seed
EMBEDDINGS_EXTRA_BYTES = 64 << 10  # the zip and .npy headers, seeds and track ids (8 bytes a track)
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: embeddings are clipped to +-this


def weights_path(results_json: str | Path) -> Path:
    """results/<profile>/<cell>.json -> results/<profile>/<cell>.weights.pt (beside it)."""
    return Path(results_json).with_suffix(WEIGHTS_SUFFIX)


def cpu_state(model: nn.Module, keys: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """A copy of `model`'s state_dict on the CPU (only `keys` when given, those the model has)."""
    state = model.state_dict()
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items() if keys is None or k in keys}


def first_layer_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The first layer's kernels (FIRST_LAYER_KEYS the model has) as CPU copies: the raw branch's
    (C1, 1, 3*hop), the spectrogram branch's (C2, 1, n_fft//2 + 1, 4)."""
    return cpu_state(model, FIRST_LAYER_KEYS)


def weights_bytes(state: dict[str, torch.Tensor]) -> int:
    """The most a weights file of a model with state_dict `state` takes (meta tensors count too):
    the state once, the first layer once more, and the framing."""
    first = sum(t.nbytes for k, t in state.items() if k in FIRST_LAYER_KEYS)
    return sum(t.nbytes for t in state.values()) + first + WEIGHTS_EXTRA_BYTES


def weights_blob(kept: dict) -> bytes:
    """The bytes of a weights file of `kept` ({"seed", "final", "initial"}, as train_seed fills it)."""
    buf = io.BytesIO()
    torch.save({"seed": int(kept["seed"]), "final": kept["final"], "initial": kept["initial"]}, buf)
    return buf.getvalue()


def embeddings_path(results_json: str | Path) -> Path:
    """results/<profile>/<cell>.json -> results/<profile>/<cell>.embeddings.npz (beside it)."""
    return Path(results_json).with_suffix(EMBEDDINGS_SUFFIX)


def embeddings_bytes(n_seeds: int, n_test: int, width: int) -> int:
    """The most an embeddings file of `n_seeds` x `n_test` tracks x `width` float16 values takes."""
    return n_seeds * n_test * width * 2 + n_test * 8 + EMBEDDINGS_EXTRA_BYTES


def embeddings_blob(embeddings: dict[int, np.ndarray], track_ids: list[int]) -> bytes:
    """The bytes of an embeddings file of `embeddings` ({seed: (N, D) float32}, as train_seed fills
    it, in the order of config.seeds) over the test tracks `track_ids` (N,). Values are clipped to
    float16's range."""
    seeds = list(embeddings)
    values = np.stack([np.asarray(embeddings[s], dtype=np.float32) for s in seeds])  # (S, N, D)
    if values.shape[1] != len(track_ids):
        raise ValueError(f"{values.shape[1]} embeddings per seed for {len(track_ids)} test tracks")
    buf = io.BytesIO()
    np.savez(
        buf,
        seeds=np.asarray(seeds, dtype=np.int64),  # (S,)
        track_ids=np.asarray(track_ids, dtype=np.int64),  # (N,)
        embeddings=np.clip(values, -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16),  # (S, N, D)
    )
    return buf.getvalue()


KEPT_PATHS = {"weights": weights_path, "embeddings": embeddings_path}


def _rerun(results: CellResults) -> str:
    return f"run the cell again (`fmareport run --profile {results.profile} --cell {results.cell}`)"


def kept_bytes(results_json: str | Path, results: CellResults, what: str) -> bytes:
    """The bytes of the kept file `what` ("weights", "embeddings") beside `results_json`; ResultsError
    naming the file and the rerun when the results name none, the file is missing or its SHA1 is not
    the one they name (another run's, or a run killed between the kept file and its results)."""
    sha1 = getattr(results, f"{what}_sha1")
    if sha1 is None:
        raise ResultsError(f"{results_json}: names no {what} file (written before {what} were kept): {_rerun(results)}")
    path = KEPT_PATHS[what](results_json)
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise ResultsError(
            f"{path}: cannot read the {what} the results name ({err.strerror}): {_rerun(results)}"
        ) from None
    if hashlib.sha1(blob).hexdigest() != sha1:
        raise ResultsError(f"{path}: not the {what} {results_json} names (SHA1 differs): {_rerun(results)}")
    return blob


def load_weights(results_json: str | Path, results: CellResults) -> dict:
    """The weights file the results file `results_json` (read as `results`) names (`kept_bytes`),
    loaded to the CPU with weights_only=True: {"seed", "final", "initial"}."""
    blob = kept_bytes(results_json, results, "weights")
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class Embeddings:
    """A cell's kept embeddings (`load_embeddings`): seeds (S,) as config.seeds; track_ids (N,) as
    the results' test.track_ids; values (S, N, D) float16, seed x test track x penultimate unit."""

    seeds: list[int]
    track_ids: np.ndarray
    values: np.ndarray

    def of_seed(self, seed: int) -> np.ndarray:
        """Seed `seed`'s embeddings as float32: (N, D)."""
        return self.values[self.seeds.index(seed)].astype(np.float32)


def load_embeddings(results_json: str | Path, results: CellResults) -> Embeddings:
    """The embeddings file the results file `results_json` (read as `results`) names (`kept_bytes`),
    read with np.load(allow_pickle=False); ResultsError when its seeds, test tracks or (S, N, D)
    float16 are not the results'."""
    path = embeddings_path(results_json)
    blob = kept_bytes(results_json, results, "embeddings")
    seeds = [s.seed for s in results.seeds]
    shape = (len(seeds), len(results.test.track_ids), results.config.model.dense[-1])
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            kept = Embeddings(npz["seeds"].tolist(), npz["track_ids"], npz["embeddings"])
    except (OSError, ValueError, KeyError) as err:  # not an npz, a pickled array, an array missing
        raise ResultsError(f"{path}: not an embeddings file ({type(err).__name__}: {err}): {_rerun(results)}") from None
    if kept.seeds != seeds or kept.track_ids.tolist() != results.test.track_ids:
        raise ResultsError(f"{path}: holds other seeds or test tracks than {results_json}: {_rerun(results)}")
    if kept.values.shape != shape or kept.values.dtype != np.float16:
        raise ResultsError(
            f"{path}: embeddings {kept.values.dtype} {kept.values.shape}, expected float16 {shape} "
            f"(seeds, test tracks, width): {_rerun(results)}"
        )
    return kept

"""What the figures of the learned network need, kept beside the cell's results: one seed's
weights, and every seed's test-set embeddings.

Each cell keeps the final weights of its first seed (cfg.schedule.seeds[0]) as
`results/<profile>/<cell>.weights.pt`, one torch.save of plain data:

    {"seed": int,
     "final": the model's state_dict after the last epoch (CPU tensors),
     "initial": the first layer's weights at initialisation (CPU tensors): conv1.raw.weight
                (C1, 1, 3*hop) and/or conv1.spec.weight (C2, 1, n_fft//2 + 1, 4)}

read back with torch.load(weights_only=True) (tensors and plain data only: a crafted file cannot
run code). The first layer at initialisation is what the learned filters are compared with.

Each cell also keeps every seed's test-set embeddings as `results/<profile>/<cell>.embeddings.npz`
(np.savez, read back with np.load(allow_pickle=False): arrays only, no code):

    seeds       (S,) int64: config.seeds, in order
    track_ids   (N,) int64: the test tracks, as the results' test.track_ids (ascending)
    embeddings  (S, N, D) float16: seed s's penultimate activations of track n (Net.embed, D =
                config.model.dense[-1]), from the pass that made its test predictions after the
                last epoch (train.test_seed): a segmented track's is the mean over its segments,
                as its probabilities are the mean of theirs. float16 keeps 11 bits (3 decimal
                digits), ample for a map, at 2 bytes a value (640 tracks x 150 x 4 seeds: 768 kB);
                values beyond its range (65504) are clipped to it, which activations after batch
                norm and an ELU do not reach in practice.

The results file names both by the SHA1 of their bytes (CellResults.weights_sha1, .embeddings_sha1). run_cell writes them atomically just before the results file, which it also writes
atomically: a kept file that a killed run left without its results file has a SHA1 that no results
file names, and `load_weights` / `load_embeddings` refuse it. The book's "What the networks learned"
page draws them (fmareport.report.learned, issue 19).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .files import write_atomic
from .results import EMBEDDINGS_SUFFIX, WEIGHTS_SUFFIX, CellResults, ResultsError

FIRST_LAYER_KEYS = ("conv1.raw.weight", "conv1.spec.weight")  # the first layer's kernels (model.FirstLayer)
WEIGHTS_EXTRA_BYTES = 64 << 10  # pickle framing, the keys and the seed
EMBEDDINGS_EXTRA_BYTES = 64 << 10  # the zip and .npy headers, seeds and track ids (8 bytes a track)
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: embeddings are clipped to +-this


def weights_path(results_json: str | Path) -> Path:
    """results/<profile>/<cell>.json -> results/<profile>/<cell>.weights.pt (beside it)."""
    results_json = Path(results_json)
    return results_json.with_name(results_json.stem + WEIGHTS_SUFFIX)


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
    results_json = Path(results_json)
    return results_json.with_name(results_json.stem + EMBEDDINGS_SUFFIX)


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


def save_kept(path: str | Path, blob: bytes) -> Path:
    """Write a kept file's bytes (`weights_blob`, `embeddings_blob`) atomically: whole or not at all."""
    return write_atomic(path, blob)


def _rerun(results: CellResults) -> str:
    return f"run the cell again (`fmareport run --profile {results.profile} --cell {results.cell}`)"


def kept_bytes(results_json: str | Path, results: CellResults, what: str) -> bytes:
    """The bytes of the kept file `what` ("weights", "embeddings") beside `results_json`, when its SHA1
    is the one the results name; ResultsError naming the file and the fix when they name none (written
    before the files were kept), the file is missing or its SHA1 differs (another run's, or a run
    killed between the kept file and its results)."""
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
    """The weights file that the results file `results_json` (read as `results`) names, loaded to
    the CPU with weights_only=True: {"seed", "final", "initial"}. ResultsError naming the file when
    the results name none (written before weights were kept), or `kept_bytes` refuses the file."""
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
    """The embeddings file that the results file `results_json` (read as `results`) names, read with
    np.load(allow_pickle=False) and checked against the results: its seeds, its test tracks and
    (S, N, D) float16. ResultsError naming the file when the results name none (written before
    embeddings were kept), `kept_bytes` refuses the file, or it holds other arrays."""
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

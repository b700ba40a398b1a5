"""What a figure of the learned network needs: one seed's weights, kept beside the cell's results.

Each cell keeps the final weights of its first seed (cfg.schedule.seeds[0]) as
`results/<profile>/<cell>.weights.pt`, one torch.save of plain data:

    {"seed": int,
     "final": the model's state_dict after the last epoch (CPU tensors),
     "initial": the first layer's weights at initialisation (CPU tensors): conv1.raw.weight
                (C1, 1, 3*hop) and/or conv1.spec.weight (C2, 1, n_fft//2 + 1, 4)}

read back with torch.load(weights_only=True) (tensors and plain data only: a crafted file cannot
run code). The results file names it (CellResults.weights: its name, the seed and the SHA1 of its
bytes). run_cell writes it atomically just before the results file, which it also writes
atomically: a weights file that a killed run left without its results file has a SHA1 that no
results file names, and `load_weights` refuses it. The first layer at initialisation is what the
learned filters are compared with (the book's "What the networks learned", issue 19).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
import torch.nn as nn

from .files import write_atomic
from .results import CellResults, ResultsError, WeightsRecord

WEIGHTS_SUFFIX = ".weights.pt"  # results/<profile>/<cell>.weights.pt
FIRST_LAYER_KEYS = ("conv1.raw.weight", "conv1.spec.weight")  # the first layer's kernels (model.FirstLayer)
WEIGHTS_EXTRA_BYTES = 64 << 10  # pickle framing, the keys and the seed


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


def weights_blob(kept: dict, cell: str) -> tuple[bytes, WeightsRecord]:
    """The bytes of a weights file of `kept` ({"seed", "final", "initial"}, as train_seed fills it)
    and the record the results file of `cell` gives it (its name, seed and SHA1)."""
    buf = io.BytesIO()
    torch.save({"seed": int(kept["seed"]), "final": kept["final"], "initial": kept["initial"]}, buf)
    blob = buf.getvalue()
    name = Path(cell).name + WEIGHTS_SUFFIX
    return blob, WeightsRecord(file=name, seed=int(kept["seed"]), sha1=hashlib.sha1(blob).hexdigest())


def save_weights(path: str | Path, blob: bytes) -> Path:
    """Write a weights file's bytes (`weights_blob`) atomically: whole or not at all."""
    return write_atomic(path, blob)


def load_weights(results_json: str | Path, results: CellResults) -> dict:
    """The weights file that the results file `results_json` (read as `results`) names, loaded to
    the CPU with weights_only=True: {"seed", "final", "initial"}. ResultsError naming the file when
    the results name none (written before weights were kept), the file is missing, or its bytes are
    not the ones the results name (another run's, or a run killed between the two files)."""
    record = results.weights
    rerun = f"run the cell again (`fmareport run --profile {results.profile} --cell {results.cell}`)"
    if record is None:
        raise ResultsError(f"{results_json}: names no weights file (written before weights were kept): {rerun}")
    path = Path(results_json).with_name(record.file)
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise ResultsError(f"{path}: cannot read the weights the results name ({err.strerror}): {rerun}") from None
    if hashlib.sha1(blob).hexdigest() != record.sha1:
        raise ResultsError(f"{path}: not the weights {results_json} names (SHA1 differs): {rerun}")
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)

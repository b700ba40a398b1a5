"""Training and evaluation of one seed, with the paper's protocol (§V).

`train_seed(cfg, store, seed, checkpoint_dir)` runs `start_seed`, `train_epoch` for each epoch (a
checkpoint after each) and `test_seed`, and returns the seed's `SeedResult` (docs/contracts.md,
"Training"). The protocol and our readings of it (a segmented batch holds the segments of
batch_size clips; a track's prediction is the sum of its segments' softmax; every accuracy is per
track) are on the book's Methods page ("Training protocol", "Deviations from the paper's text").

No per-item Dataset: a batch is one fancy index (sorted rows) into the int16 store, resident on
the device or the memmap (device.py), x / 32768 on the device, the STFT batched inside the model.
The loop waits for the device once per SYNC_EVERY steps (docs/running.md, "The device policy").
"""

from __future__ import annotations

import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .config import RESUME_FREE_KEYS, Config
from .data.audio import INT16_SCALE
from .data.fma import SPLITS
from .device import DevicePolicy, device_policy
from .disk import free_bytes, human
from .errors import ConfigError, FmareportError, Interrupted, StorageError, interrupt_after
from .files import atomic_file
from .model import Net
from .progress import tqdm
from .results import DevicePolicyRecord, Epoch, SeedResult
from .weights import cpu_state, first_layer_state

# Training steps between the loop's waits for the device (loss, accuracy, NaN check, progress
# bar): 8 per epoch of the paper profile's 128 steps, plus one at the end of every epoch.
SYNC_EVERY = 16
# A checkpoint holds the model's state twice (the weights and the best epoch's weights) and
# Adam's two moments (exp_avg, exp_avg_sq, one each per parameter): at most 4 copies of the
# state_dict's bytes; the history, the generator states and pickle framing take less than 1 MiB.
CHECKPOINT_COPIES = 4
CHECKPOINT_EXTRA_BYTES = 1 << 20


class DivergedError(FmareportError, RuntimeError):
    """The training loss became NaN or infinite."""


class CheckpointError(FmareportError, RuntimeError):
    """A checkpoint that this run cannot resume from (other settings, another clip store)."""


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """The one seed function: Python's random, numpy, torch (CPU and every CUDA device).
    deterministic=True also asks for deterministic algorithms (warn_only: the global max pool's CUDA
    backward has none), turns cuDNN autotuning off and sets CUBLAS_WORKSPACE_CONFIG (only heeded
    before CUDA starts); False turns autotuning on (a run's input shapes are fixed)."""
    if deterministic:
        if "CUBLAS_WORKSPACE_CONFIG" not in os.environ and torch.cuda.is_initialized():
            warnings.warn(
                "deterministic mode: CUDA started before CUBLAS_WORKSPACE_CONFIG was set; "
                "cuBLAS may not be deterministic. Call seed_everything before any CUDA work.",
                stacklevel=2,
            )
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


# --- the data path -----------------------------------------------------------------------

_RESIDENT: dict[str, Any] = {}  # the last store made resident: reused by the cell's later seeds
COPY_CHUNK_BYTES = 256 << 20  # the store goes to the device 256 MB at a time


def resident_store(audio: np.ndarray, device: torch.device, progress: bool = True) -> torch.Tensor:
    """The whole int16 store as one tensor on `device`, copied in chunks through one writable
    (on CUDA pinned) host buffer: the memmap is read-only, and torch.from_numpy of a read-only
    array warns. (n_tracks, clip_samples) int16 -> the same shape on `device`."""
    if _RESIDENT.get("audio") is audio and _RESIDENT.get("device") == device:
        return _RESIDENT["tensor"]
    _RESIDENT.clear()
    out = torch.empty(audio.shape, dtype=torch.int16, device=device)  # (n, N)
    rows = max(1, COPY_CHUNK_BYTES // max(1, audio[0].nbytes))
    buf = torch.empty((min(rows, len(audio)), audio.shape[1]), dtype=torch.int16)  # (rows, N), writable
    if device.type == "cuda":
        buf = buf.pin_memory()
    for a in tqdm(range(0, len(audio), rows), desc=f"store -> {device.type}", unit="chunk", disable=not progress):
        k = min(rows, len(audio) - a)
        np.copyto(buf.numpy()[:k], audio[a : a + k])  # memmap -> host buffer
        out[a : a + k].copy_(buf[:k])  # host buffer -> device (waits: the buffer is reused)
    _RESIDENT.update(audio=audio, device=device, tensor=out)
    return out


def resident_bytes(audio: np.ndarray) -> int:
    """The bytes of `audio` already resident on a GPU (the cache of resident_store); 0 if none."""
    held = _RESIDENT.get("audio") is audio and _RESIDENT["tensor"].device.type == "cuda"
    return _RESIDENT["tensor"].nbytes if held else 0


def clip_source(audio: np.ndarray, policy: DevicePolicy, progress: bool = True) -> np.ndarray | torch.Tensor:
    """Where batches are read from: the resident copy of the store, or the memmap itself."""
    return resident_store(audio, policy.device, progress) if policy.resident_store else audio


def load_clips(
    source: np.ndarray | torch.Tensor,
    rows: np.ndarray,
    policy: DevicePolicy,
    rows_on_device: torch.Tensor | None = None,
) -> torch.Tensor:
    """Clips `rows` (sorted int64) as float32 in [-1, 1) on the policy's device. -> (B, clip_samples)

    A resident store is indexed on the device (by `rows_on_device`, or a non_blocking copy of
    `rows`); a memmap by one fancy index on the host, then copied (pinned, non_blocking on CUDA)."""
    if isinstance(source, torch.Tensor):
        idx = rows_on_device if rows_on_device is not None else policy.to_device(torch.from_numpy(rows))
        x = source[idx]  # (B, N) int16, on the device
    else:
        x = policy.to_device(torch.from_numpy(source[rows]))  # (B, N) int16: one fancy index into the memmap
    return x.to(dtype=torch.float32).div_(INT16_SCALE)  # (B, N), a new tensor


def windows(x: torch.Tensor, cfg: Config) -> torch.Tensor:
    """What the network sees: whole clips, or each clip's segments one after another.
    (B, N) -> (B * S, W), S = cfg.n_segments (1 unsegmented), W = cfg.window_samples."""
    if not cfg.model.segmented:
        return x  # (B, N)
    seg = x.unfold(-1, cfg.model.segment_samples, cfg.model.segment_hop)  # (B, S, W): a view
    return seg.reshape(-1, cfg.model.segment_samples)  # (B * S, W), clip-major


def track_log_probs(logits: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Log of each track's mean segment softmax, i.e. of the sum of its segments'
    probabilities normalised to 1; its argmax is the summed prediction's.
    (B * S, K) logits, clip-major -> (B, K) log-probabilities."""
    logp = F.log_softmax(logits.float(), dim=-1)  # (B * S, K)
    logp = logp.view(-1, n_segments, logp.shape[-1])  # (B, S, K)
    return torch.logsumexp(logp, dim=1) - math.log(n_segments)  # (B, K)


def batches(rows: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split rows into ceil(n / batch_size) batches of equal size (within one), each sorted: never a
    one-clip batch, which batch norm cannot train on."""
    n = max(1, math.ceil(len(rows) / batch_size))
    return [np.sort(b) for b in np.array_split(rows, n)]


class Evaluation(NamedTuple):
    """What `evaluate` gives for rows of the store, in sorted-row order."""

    loss: float  # mean NLL of the track probabilities
    acc: float  # per-track accuracy
    probs: np.ndarray  # (n, K) track probabilities
    embeddings: np.ndarray | None  # (n, D) float32 penultimate activations per track (embed=True), else None


@torch.no_grad()
def evaluate(
    model: Net, source, labels: torch.Tensor, rows: np.ndarray, cfg: Config, policy: DevicePolicy, embed: bool = False
) -> Evaluation:
    """Per-track loss, accuracy and probabilities on `rows` in eval mode, one wait for the device at
    the end. embed=True also keeps each track's penultimate activations from the same pass: the
    mean over its segments (Net.embed), as its probabilities are the mean of their softmaxes."""
    model.eval()
    s = cfg.windows_per_clip
    rows = np.sort(rows)
    rows_dev = policy.to_device(torch.from_numpy(rows))  # (n,)
    loss = torch.zeros((), dtype=torch.float64, device=policy.device)
    preds, embeds = [], []
    a = 0
    for b in batches(rows, cfg.train.batch_size):
        idx = rows_dev[a : a + len(b)]  # (B,), the rows of b, already on the device
        a += len(b)
        with policy.autocast():
            z = model.embed(windows(load_clips(source, b, policy, idx), cfg))  # (B * S, D)
            logits = model.head(z)  # (B * S, K) float32
        logp = track_log_probs(logits, s)  # (B, K)
        loss += F.nll_loss(logp, labels[idx], reduction="sum").double()
        preds.append(logp.exp())  # (B, K) probabilities
        if embed:
            embeds.append(z.float().view(len(b), s, -1).mean(dim=1))  # (B, D): the mean over segments
    model.train()
    probs = torch.cat(preds).cpu().numpy()  # (n, K): the one wait
    acc = float((probs.argmax(-1) == labels.cpu().numpy()[rows]).mean())
    embeddings = torch.cat(embeds).cpu().numpy() if embed else None  # (n, D) float32
    return Evaluation(loss.item() / len(rows), acc, probs, embeddings)


# --- checkpoints -------------------------------------------------------------------------


def _rng_state(device: torch.device | None = None) -> dict:
    """Every generator's state the run uses as plain data (lists of ints), which
    torch.load(weights_only=True) reads and no map_location moves off the CPU (the setters take
    CPU ByteTensors only); of the CUDA generators the run's device's alone."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    on_cuda = device is not None and device.type == "cuda"
    cuda = [torch.cuda.get_rng_state(device)] if on_cuda else []
    return {
        "python": [version, list(py_state), py_gauss],
        "numpy": {"kind": kind, "key": key.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": gauss},
        "torch": torch.get_rng_state().tolist(),  # 5056 bytes as ints
        "cuda": [s.tolist() for s in cuda],  # the run's CUDA device's state ([] on the CPU)
    }


def _bytes(state) -> torch.Tensor:
    """A generator state (a list of ints, or a tensor wherever it lies) as the CPU ByteTensor
    torch's setters take."""
    if isinstance(state, torch.Tensor):
        return state.to("cpu", torch.uint8)
    return torch.tensor(state, dtype=torch.uint8)


def _set_rng_state(state: dict, device: torch.device | None = None) -> None:
    """Restore `_rng_state()` on `device`. A CUDA list of one state per visible GPU gives the
    device's by its index; a device past the list keeps its seed (a resumed dropout cell's numbers
    then differ from an unstopped run's)."""
    version, py_state, py_gauss = state["python"]
    random.setstate((version, tuple(py_state), py_gauss))
    n = state["numpy"]
    key = n["key"].cpu().numpy() if isinstance(n["key"], torch.Tensor) else np.asarray(n["key"])
    np.random.set_state((n["kind"], key.astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(_bytes(state["torch"]))
    if not (state["cuda"] and device is not None and device.type == "cuda"):
        return
    saved = state["cuda"]
    index = 0 if len(saved) == 1 else device.index or 0
    if index < len(saved):
        torch.cuda.set_rng_state(_bytes(saved[index]), device)


def checkpoint_bytes(weights: dict[str, torch.Tensor]) -> int:
    """The most a checkpoint of a model with state_dict `weights` takes on disk (meta tensors count too)."""
    return CHECKPOINT_COPIES * sum(t.nbytes for t in weights.values()) + CHECKPOINT_EXTRA_BYTES


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save through files.atomic_file: never half a checkpoint. A failed save (torch's
    "enforce fail at inline_container.cc" on a full disk) is a StorageError naming the path and
    the room a checkpoint needs."""
    try:
        with atomic_file(path) as f:
            torch.save(state, f)
    except (RuntimeError, OSError) as err:
        reason = " ".join(str(err).split())[:200]
        raise StorageError(
            f"{path}: saving the checkpoint failed ({type(err).__name__}: {reason}); a checkpoint of this model "
            f"needs about {human(checkpoint_bytes(state['model']))} and its disk has {human(free_bytes(path.parent))} "
            "free: make room there (or set build_dir elsewhere) and rerun the same command, which resumes from "
            "the last saved epoch"
        ) from None


def load_checkpoint(path: Path) -> dict | None:
    """A checkpoint's state, loaded to the CPU with weights_only=True (a crafted file cannot run
    code); None for a corrupt or foreign file, set aside as <name>.corrupt with a warning: the seed
    starts from scratch."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # whatever a damaged or hostile file makes the unpickler raise
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        warnings.warn(
            f"{path}: not a readable checkpoint ({type(err).__name__}: {str(err)[:200]}); "
            f"moved to {aside.name}, this seed starts from scratch",
            stacklevel=2,
        )
        return None


def _check_resumable(ckpt: dict, cfg: Config, fingerprint: str | None, path: Path) -> None:
    old, new = ckpt["config"], cfg.to_dict()
    changed = sorted(k for k in new if k not in RESUME_FREE_KEYS and old.get(k) != new[k])
    if changed:
        raise CheckpointError(
            f"{path}: checkpoint was written with other settings ({', '.join(changed)}); "
            "delete it to start this seed afresh"
        )
    if ckpt["store_fingerprint"] != fingerprint:
        raise CheckpointError(f"{path}: checkpoint was written for another clip store; delete it to start afresh")
    if ckpt["epoch"] > cfg.schedule.epochs:
        raise ConfigError(
            f"key 'epochs': {cfg.schedule.epochs}, but {path} is a checkpoint at epoch {ckpt['epoch']}: set epochs to "
            f"{ckpt['epoch']} or more to resume it, or delete its folder {path.parent} (fmareport made it) to "
            "train afresh"
        )


def interrupted(seed: int, epoch: int, saved: int, epochs: int, path: Path | None) -> Interrupted:
    """What Ctrl-C in epoch `epoch` of `seed` says, `saved` being the last epoch in its checkpoint."""
    where = f"interrupted at seed {seed} epoch {epoch}"
    if path is None or saved == 0:
        return Interrupted(f"{where}: no epoch of it was saved, so a rerun of the same command starts it again")
    if saved >= epochs:
        return Interrupted(f"{where}: every epoch is saved ({path}); rerun the same command to test it")
    return Interrupted(f"{where}: rerun the same command to resume from epoch {saved + 1} (checkpoint {path})")


# --- one seed ----------------------------------------------------------------------------


TRAIN_SUBSET_STREAM = 7919  # the generator of a seed's training subset: (seed, this), apart from batch orders


def stratified_subset(rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """`fraction` of `rows`, the same share of every genre (at least one track each), sorted.

    rows (n,) int64 store rows, labels (n_tracks,) int64. Drawn per seed, so the intervals over
    seeds include which tracks were kept. fraction 1 returns `rows` itself.
    """
    if fraction >= 1:
        return rows
    rng = np.random.default_rng([seed, TRAIN_SUBSET_STREAM])
    kept = []
    for label in np.unique(labels[rows]):
        of_label = rows[labels[rows] == label]
        kept.append(rng.choice(of_label, max(1, round(fraction * len(of_label))), replace=False))
    return np.sort(np.concatenate(kept))


def epoch_steps(
    train_rows: np.ndarray, cfg: Config, seed: int, epoch: int
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """One epoch's batches, a function of (seed, epoch) only: [(sorted clip rows, pick)].

    batch_unit "clips" (and every whole-clip run): batch_size clips each, all their segments;
    pick is None. batch_unit "segments" (segmented runs): batch_size segments each, drawn
    across all clips; pick indexes the segments of the batch's clips, (B * S) windows, clip-major.
    """
    rng = np.random.default_rng([seed, epoch])
    if not (cfg.model.segmented and cfg.train.batch_unit == "segments"):
        return [(b, None) for b in batches(rng.permutation(train_rows), cfg.train.batch_size)]
    s = cfg.n_segments
    steps = []
    for w in batches(rng.permutation(len(train_rows) * s), cfg.train.batch_size):  # window ids, clip-major
        clips, where = np.unique(train_rows[w // s], return_inverse=True)
        steps.append((clips, (where * s + w % s).astype(np.int64)))
    return steps


@dataclass
class SeedRun:
    """One seed's training as it stands between epochs: its data on the device, its net and
    optimizer, and what is done (also what a checkpoint restored)."""

    cfg: Config
    seed: int
    policy: DevicePolicy
    source: np.ndarray | torch.Tensor  # the clips: int16 (n_tracks, clip_samples), resident or not
    labels: torch.Tensor  # (n_tracks,) int64, on the device
    rows: dict[str, np.ndarray]  # split -> store rows (training: the cfg.train.train_fraction share)
    model: Net
    opt: torch.optim.Optimizer
    ckpt_path: Path | None
    fingerprint: str | None
    history: list[dict] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": 0, "val_acc": -1.0, "state": None})
    # The first layer's kernels at initialisation (weights.first_layer_state), CPU copies taken
    # before a checkpoint is loaded: a resumed seed has them too (the same seed, the same init).
    initial_first: dict[str, torch.Tensor] = field(default_factory=dict)


def train_seed(
    cfg: Config,
    store,
    seed: int,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    policy: DevicePolicy | None = None,
    keep: dict | None = None,
    embeddings: dict | None = None,
) -> SeedResult:
    """Train and test one seed; return its record of the results file.

    `store`: any object with `audio` (int16 (n_tracks, clip_samples)), `labels` ((n_tracks,) int64)
    and `split_indices(split)`. With `checkpoint_dir`, each epoch's state is saved to
    checkpoint_dir/seed{seed}.pt, from which a rerun resumes (in deterministic CPU mode with the
    numbers of a run never stopped). `policy`: the cell's (else decided here). `keep`: a dict to
    fill with {"seed", "final", "initial"} (fmareport.weights); `embeddings`: a dict to which
    {seed: (n_test, D) float32} is added (`test_seed`).
    """
    run = start_seed(cfg, store, seed, checkpoint_dir, progress, policy)
    epoch = saved = len(run.history)  # the epoch running and the last one in the checkpoint: what Ctrl-C says
    try:
        for epoch in range(len(run.history) + 1, cfg.schedule.epochs + 1):
            train_epoch(run, epoch, progress)
            if run.ckpt_path is not None:
                with interrupt_after():  # a Ctrl-C while saving: the checkpoint whole, then the interrupt
                    save_checkpoint(run.ckpt_path, checkpoint_state(run))
                    saved = epoch
        if keep is not None:  # before test_seed, which may load the best epoch's weights
            keep.update(seed=seed, final=cpu_state(run.model), initial=run.initial_first)
        return test_seed(run, store, embeddings)
    except KeyboardInterrupt:
        raise interrupted(seed, epoch, saved, cfg.schedule.epochs, run.ckpt_path) from None


def start_seed(
    cfg: Config, store, seed: int, checkpoint_dir: str | Path | None, progress: bool, policy: DevicePolicy | None = None
) -> SeedRun:
    """Seed everything, put the clips and labels on the device, build the net, and resume from the
    seed's checkpoint in `checkpoint_dir` when there is one. Without `policy`, decided here (a copy
    of this store already resident counts as free memory for it)."""
    if store.audio.shape[1] != cfg.store.clip_samples:
        raise ValueError(
            f"the clip store holds clips of {store.audio.shape[1]} samples but the config "
            f"says clip_samples = {cfg.store.clip_samples}: prepare the store with this config"
        )
    seed_everything(seed, cfg.compute.deterministic)
    if policy is None:
        policy = device_policy(cfg, store.audio.nbytes, resident_nbytes=resident_bytes(store.audio))
    source = clip_source(store.audio, policy, progress)
    labels = torch.tensor(np.asarray(store.labels, dtype=np.int64), device=policy.device)  # (n_tracks,), a copy
    rows = {s: np.asarray(store.split_indices(s), dtype=np.int64) for s in SPLITS}
    rows["training"] = stratified_subset(rows["training"], np.asarray(store.labels), cfg.train.train_fraction, seed)
    model = Net.of(cfg).to(policy.device)  # built last: its initial weights come from the seed alone
    run = SeedRun(
        cfg=cfg,
        seed=seed,
        policy=policy,
        source=source,
        labels=labels,
        rows=rows,
        model=model,
        opt=torch.optim.Adam(model.parameters(), lr=cfg.train.lr),
        ckpt_path=Path(checkpoint_dir) / f"seed{seed}.pt" if checkpoint_dir is not None else None,
        fingerprint=getattr(store, "fingerprint", None),
        initial_first=first_layer_state(model),
    )
    ckpt = load_checkpoint(run.ckpt_path) if run.ckpt_path is not None and run.ckpt_path.exists() else None
    if ckpt is not None:
        _check_resumable(ckpt, cfg, run.fingerprint, run.ckpt_path)
        # Loaded to the CPU; load_state_dict copies the weights onto the model's device, and Adam
        # puts its moments there and keeps its step counters on the CPU (no sync per step).
        run.model.load_state_dict(ckpt["model"])
        run.opt.load_state_dict(ckpt["optimizer"])
        run.history, run.train_seconds, run.best = ckpt["history"], ckpt["train_seconds"], ckpt["best"]
        _set_rng_state(ckpt["rng"], policy.device)
    return run


def train_epoch(run: SeedRun, epoch: int, progress: bool) -> None:
    """One epoch of training, then the validation pass; appends the epoch's row to run.history and
    keeps the weights of the best validation accuracy so far."""
    cfg, policy = run.cfg, run.policy
    t0 = time.perf_counter()
    steps = epoch_steps(run.rows["training"], cfg, run.seed, epoch)  # [(clip rows, picked windows or None)]
    rows_dev = policy.to_device(torch.from_numpy(np.concatenate([b for b, _ in steps])))  # one copy per epoch
    # Sums over the epoch, on the device: [loss x items, correct]; read every SYNC_EVERY steps.
    sums = torch.zeros(2, dtype=torch.float64, device=policy.device)
    loss_sum, correct, checked, done, a = 0.0, 0, 0, 0, 0  # the sums as last read, the steps they cover, items
    # One bar per epoch, left on screen; the postfix shows the running loss as of the last read.
    desc = f"seed {run.seed} epoch {epoch}/{cfg.schedule.epochs}"
    with tqdm(total=len(steps), desc=desc, unit="step", disable=not progress, leave=True) as bar:
        for step, (b, pick) in enumerate(steps, start=1):
            idx = rows_dev[a : a + len(b)]  # (B,), on the device
            a += len(b)
            loss, hits, items = train_step(run, b, idx, pick)
            done += items
            sums += torch.stack([loss * items, hits.double()])
            if step % SYNC_EVERY == 0 or step == len(steps):
                loss_sum, correct = sums.tolist()  # the wait for the device
                if not math.isfinite(loss_sum):
                    raise diverged(run, loss_sum, epoch, checked + 1, step, len(steps))
                checked = step
                bar.set_postfix(loss=f"{loss_sum / done:.3f}", refresh=False)
            bar.update()
        run.train_seconds.append(time.perf_counter() - t0)
        val = evaluate(run.model, run.source, run.labels, run.rows["validation"], cfg, policy)
        per_segment = cfg.model.segmented and cfg.train.batch_unit == "segments"  # a batch: segments across clips
        n_items = len(run.rows["training"]) * (cfg.windows_per_clip if per_segment else 1)  # what loss/acc average
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / n_items,
            "train_acc": int(correct) / n_items,
            "val_loss": val.loss,
            "val_acc": val.acc,
            "seconds": time.perf_counter() - t0,
        }
        run.history.append(row)
        shown = {"loss": "train_loss", "acc": "train_acc", "val_loss": "val_loss", "val_acc": "val_acc"}
        bar.set_postfix({k: f"{row[key]:.3f}" for k, key in shown.items()}, refresh=False)
    if val.acc > run.best["val_acc"]:
        run.best = {"epoch": epoch, "val_acc": val.acc, "state": cpu_state(run.model)}


def train_step(
    run: SeedRun, b: np.ndarray, idx: torch.Tensor, pick: np.ndarray | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One optimizer step on clips `b` (store rows; `idx` the same on the device), or on the windows
    `pick` of them (per-segment batches) -> (mean loss, correct tracks or windows, their number), on
    the device: no wait for it."""
    s, policy = run.cfg.windows_per_clip, run.policy
    y = run.labels[idx]  # (B,)
    x = windows(load_clips(run.source, b, policy, idx), run.cfg)  # (B * S, W)
    y_win = y.repeat_interleave(s)  # (B * S,)
    if pick is not None:  # per-segment batch: the drawn windows of these clips
        pick_dev = policy.to_device(torch.from_numpy(pick))
        x, y_win = x[pick_dev], y_win[pick_dev]  # (P, W), (P,)
    with policy.autocast():
        logits = run.model(x)  # (B * S, K) or (P, K), float32
    loss = F.cross_entropy(logits, y_win)  # mean over segments
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    if pick is None:  # per track: a track's segments' summed probabilities
        return loss.detach().double(), (track_log_probs(logits.detach(), s).argmax(-1) == y).sum(), len(b)
    return loss.detach().double(), (logits.detach().argmax(-1) == y_win).sum(), len(pick)  # per segment


def diverged(run: SeedRun, loss_sum: float, epoch: int, first: int, last: int, n_steps: int) -> DivergedError:
    """The error of a loss that is no longer finite, saying where, and what to try."""
    cfg, amp = run.cfg, run.policy.amp
    saved = run.ckpt_path is not None and run.ckpt_path.exists()
    return DivergedError(
        f"seed {run.seed}: the training loss became {loss_sum} at epoch {epoch}, between steps "
        f"{first} and {last} of {n_steps} (input {cfg.model.input}, lr {cfg.train.lr}, bf16 autocast "
        f"{amp}). The run diverged: try a smaller lr{' or amp: false' if amp else ''}, and check "
        "the clip store for broken audio." + (f" The last good state is in {run.ckpt_path}." if saved else "")
    )


def checkpoint_state(run: SeedRun) -> dict:
    """What a resume needs: weights, Adam's state, history, the best weights, the RNGs, the config."""
    return {
        "epoch": len(run.history),
        "model": run.model.state_dict(),
        "optimizer": run.opt.state_dict(),
        "history": run.history,
        "train_seconds": run.train_seconds,
        "best": run.best,
        "rng": _rng_state(run.policy.device),
        "config": run.cfg.to_dict(),
        "store_fingerprint": run.fingerprint,
    }


def test_seed(run: SeedRun, store, embeddings: dict | None = None) -> SeedResult:
    """Test the last epoch's weights (and the best epoch's, when that is another) and make the seed's
    record. `embeddings`: a dict to which {seed: (n_test, D) float32} is added, from the pass that
    makes the test predictions, one row per test track in ascending track order."""
    cfg, t_test = run.cfg, time.perf_counter()
    test_rows = np.sort(run.rows["test"])  # ascending rows: ascending track ids (results.TestTracks.of)
    test = evaluate(run.model, run.source, run.labels, test_rows, cfg, run.policy, embed=embeddings is not None)
    if embeddings is not None:
        embeddings[run.seed] = test.embeddings  # (n_test, D)
    at_best = None  # the best epoch is the last: its accuracy is the predictions'
    if run.best["epoch"] != len(run.history):
        run.model.load_state_dict(run.best["state"])
        at_best = evaluate(run.model, run.source, run.labels, test_rows, cfg, run.policy).acc
    # Seconds of this seed's work: its epochs (also those before a resume) and the test.
    seconds = sum(h["seconds"] for h in run.history) + time.perf_counter() - t_test
    windows = len(run.history) * len(run.rows["training"]) * cfg.windows_per_clip
    return SeedResult(
        seed=run.seed,
        history=[Epoch(**h) for h in run.history],
        test_acc_at_best=at_best,
        seconds=seconds,
        segments_per_second=windows / sum(run.train_seconds),
        test_probs=test.probs.astype(np.float64).tolist(),
        policy=DevicePolicyRecord(**run.policy.record()),
    )

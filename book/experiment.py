# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Experiment
#
# One cell of the paper's tables: this notebook trains the residual CNN once per seed
# with the settings papermill gives it, shows the training curves and the confusion
# matrix, and writes `results/<profile>/<cell>.json`, which the book's tables read.
#
# Its parameters are the keys of the run config (`fmareport/config.py`), given as a
# profile and a cell YAML from `params/`:
#
# ```bash
# jupytext --to ipynb -o build/notebooks/experiment.ipynb book/experiment.py
# papermill build/notebooks/experiment.ipynb results/demo/table1/spectrogram_segmented.ipynb \
#     -f params/profiles/demo.yaml -f params/table1/spectrogram_segmented.yaml
# ```
#
# Without parameters (in Jupyter, or `python book/experiment.py`) it runs with the
# defaults of `fmareport.config.Config`: a small synthetic run.

# %%
import hashlib
import json
import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd
import seaborn as sns

from fmareport import provenance
from fmareport.config import from_dict
from fmareport.fma import GENRES
from fmareport.results import SCHEMA_VERSION, results_path, summarize, write_results
from fmareport.store import prepare
from fmareport.train import RESUME_FREE_KEYS, pick_device, train_seed

# %% tags=["remove-cell"]
# Every name defined from here until the config is built is a parameter, except
# IPython's own history names (_, __, _i3, _7, _oh, ...).
_ipython_name = re.compile(r"_+|_i+|_i?\d+|_(oh|ih|dh)")
_before = set(globals()) | {"_before"}

# %% tags=["parameters", "remove-cell"]
# The run config's keys with fmareport.config.Config's defaults. papermill injects its
# parameters after this cell: each key of every `-f FILE.yaml` and each `-p KEY VALUE`.
# `fmareport config PROFILE CELL.yaml` prints the values a profile and cell resolve to.
profile = "smoke"               # profile name: smoke | demo | paper (or your own)
cell = "adhoc"                  # experiment cell, e.g. "table1/spectrogram_segmented"
data_source = "synth"           # synth: `fmareport synth`; fma: real FMA (fetch)
data_dir = "data/synth-smoke"   # FMA-format root (holds fma_metadata/ and fma_small/)
store_root = "data/stores"      # clip stores live here, one folder per settings fingerprint
subset = "small"
synth_tracks_per_genre = 5      # synth only: tracks per genre in the small subset
synth_seconds = 2.5             # synth only: length of each synthetic track (s)
synth_sample_rate = 22050       # synth only: rate of the synthetic mp3s (Hz)
synth_seed = 0                  # synth only: same seed -> same bytes
synth_bad_cases = True          # synth only: add FMA's real failure cases
sample_rate = 8000              # Hz after resampling (paper: 44100)
clip_samples = 16384            # samples per clip (paper: 10**6, 22.7 s at 44.1 kHz)
clip_rule = "start"             # which part of a longer track is kept
min_clip_fraction = 0.5         # shorter tracks: zero-pad if at least this fraction of a clip, else skip
prepare_workers = 0             # decode processes (0: one per CPU core)
input = "spectrogram"           # raw (1D) | spectrogram (2D) | both (1D+2D)
n_fft = 256                     # STFT window (samples); paper: 2048 ("4048" is a typo)
hop = 128                       # STFT hop (samples); paper: 1024, half of n_fft (50 % overlap)
channels = 32                   # feature maps of the residual block (paper: 256)
dense = [300, 150]              # hidden dense widths (Zhang et al.)
dropout = 0.0                   # after every layer but the last dense (paper: 0 or 0.2)
segmented = False
segment_samples = 4096          # samples per segment (paper: 2**17, ~3 s at 44.1 kHz)
segment_overlap = 0.5           # fraction of a segment shared with the next
seeds = [0]
epochs = 1
batch_size = 16                 # clips per step (paper: 50); segmented: all segments of these clips
lr = 0.0005                     # Adam learning rate
device = "auto"
amp = True                      # bf16 autocast on CUDA (ignored on CPU)
deterministic = False           # torch deterministic algorithms (slower)
results_dir = "results"         # results/<profile>/<cell>.json

# %%
parameters = {k: v for k, v in globals().items() if k not in _before and not _ipython_name.fullmatch(k)}
# An unknown key, a wrong type or a bad value stops here, before any data or training.
cfg = from_dict(parameters, source="papermill parameters")
started = provenance.now()
run_device = str(pick_device(cfg))
print(f"profile {cfg.profile}, cell {cfg.cell}, device {run_device}")
pd.DataFrame({"value": {k: str(v) for k, v in cfg.to_dict().items()}})

# %% [markdown]
# ## Data
#
# The clip store: every track decoded once to mono clips of a fixed length (made here
# if the workflow has not made it already).

# %%
store = prepare(cfg)
counts = store.index.groupby(["genre", "split"]).size().unstack("split", fill_value=0)
counts = counts.reindex(index=list(GENRES), columns=["training", "validation", "test"], fill_value=0)
skipped = store.manifest["skipped"]
print(f"store {store.path} ({store.fingerprint}): {len(store.index)} clips of "
      f"{store.clip_samples} samples at {store.sample_rate} Hz; {len(skipped)} tracks skipped")
counts

# %% [markdown]
# ## Training
#
# One run per seed. A checkpoint is written after every epoch under `build/checkpoints/`,
# so a killed run resumes where it stopped; the checkpoints are deleted once the
# results are written.

# %%
# Checkpoints are kept per settings, so that changing a cell's params never resumes a
# run made with other ones (epochs and seeds may change: a run then continues).
_settings = {k: v for k, v in cfg.to_dict().items() if k not in RESUME_FREE_KEYS}
_settings_hash = hashlib.sha1(json.dumps(_settings, sort_keys=True).encode()).hexdigest()[:12]
checkpoint_root = Path("build/checkpoints") / cfg.profile / cfg.cell
records = [train_seed(cfg, store, seed, checkpoint_dir=checkpoint_root / _settings_hash)
           for seed in cfg.seeds]

# %%
history = pd.DataFrame([{**h, "seed": r["seed"]} for r in records for h in r["history"]])
curves = pd.concat([
    history.rename(columns={"train_loss": "loss", "train_acc": "accuracy"}).assign(split="training"),
    history.rename(columns={"val_loss": "loss", "val_acc": "accuracy"}).assign(split="validation"),
])[["seed", "epoch", "split", "loss", "accuracy"]]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, metric in zip(axes, ["loss", "accuracy"]):
    sns.lineplot(curves, x="epoch", y=metric, hue="split", units="seed", estimator=None,
                 marker="o", ax=ax)
    ax.set_title(f"{metric} per epoch ({len(records)} seed{'s' * (len(records) > 1)})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
axes[1].axhline(1 / len(GENRES), color="grey", linestyle=":", label="chance")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Test set
#
# Accuracy per track after the last epoch (what the tables report) and at the epoch
# with the best validation accuracy; the confusion matrix sums the seeds' test
# predictions after the last epoch (rows: true genre, columns: predicted).

# %%
summary = summarize(records)
per_seed = pd.DataFrame([{"seed": r["seed"], "test_acc_last": r["test_acc_last"],
                          "test_acc_best": r["test_acc_best"], "best_epoch": r["best_epoch"],
                          "seconds": r["seconds"], "segments_per_second": r["segments_per_second"]}
                         for r in records]).set_index("seed")
print(f"test accuracy, last epoch: {summary['test_acc_last_mean']:.3f} ± {summary['test_acc_last_std']:.3f}; "
      f"best-validation epoch: {summary['test_acc_best_mean']:.3f} ± {summary['test_acc_best_std']:.3f} "
      f"(mean ± sample std over {summary['n_seeds']} seed{'s' * (summary['n_seeds'] > 1)})")
per_seed.round(3)

# %%
confusion = np.sum([r["confusion"] for r in records], axis=0)
recall = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
fig, ax = plt.subplots(figsize=(7, 5.8))
sns.heatmap(pd.DataFrame(recall, index=list(GENRES), columns=list(GENRES)), annot=confusion, fmt="d",
            cmap="Blues", vmin=0, vmax=1, cbar_kws={"label": "fraction of the true genre"}, ax=ax)
ax.set(xlabel="predicted", ylabel="true", title=f"test confusion, {cfg.cell}")
fig.tight_layout()
plt.show()
pd.DataFrame({f"seed {r['seed']}": r["per_genre_acc"] for r in records}).round(3)

# %% [markdown]
# ## Results file

# %%
results = {
    "schema_version": SCHEMA_VERSION,
    "profile": cfg.profile,
    "cell": cfg.cell,
    "config": cfg.to_dict(),
    "genres": list(GENRES),
    "data": {
        "source": cfg.data_source,
        "data_dir": cfg.data_dir,
        "store": str(store.path.resolve()),
        "store_fingerprint": store.fingerprint,
        "tracks": {s: int(len(store.split_indices(s))) for s in ("training", "validation", "test")},
        "skipped": len(skipped),
    },
    "seeds": records,
    "summary": summary,
    "provenance": {**provenance.collect(run_device), "started": started, "finished": provenance.now(),
                   "notebook": "book/experiment.py"},
}
path = write_results(results_path(cfg.results_dir, cfg.profile, cfg.cell), results)
shutil.rmtree(checkpoint_root, ignore_errors=True)
print(f"wrote {path}")

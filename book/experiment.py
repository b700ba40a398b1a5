# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Experiment
#
# One cell of the paper's tables: the residual CNN trained once per seed with one profile
# and one params file, its training curves and test confusion, and its results file
# `results/<profile>/<cell>.json`, which the book's tables read. The run itself is
# `fmareport.experiment.run_cell` (resumable, locked per cell); this notebook shows it.
#
# ```bash
# papermill book/experiment.ipynb results/demo/table1/raw_whole.ipynb -p profile demo -p cell table1/raw_whole
# ```
#
# Any config key can be overridden: `-y "overrides: {epochs: 2, seeds: [0, 1]}"`, or as YAML text,
# `-p overrides 'lr: 1e-3'` (papermill reads `-y` as YAML 1.1, where `1e-3` is text, not a number).

# %% tags=["parameters"]
profile = "smoke"  # params/profiles/<profile>.yaml
cell = "table1/spectrogram_segmented"  # params/<cell>.yaml
overrides = {}  # config keys over both (a mapping, or YAML text)

# %%
from fmareport import errors, notebook

errors.short_tracebacks(get_ipython())  # noqa: F821 (IPython's): an fmareport error shows as its one line

# A bad name, key or value stops here, before torch is imported, naming what to fix.
cfg = notebook.config(profile, cell, overrides, history=In)  # noqa: F821 (IPython's input history)

from IPython.display import Markdown  # noqa: E402 (after the check: the imports below take seconds)

from fmareport import experiment  # noqa: E402
from fmareport.report import figures  # noqa: E402
from fmareport.report.pages.experiments import config_line, seed_table  # noqa: E402

Markdown(config_line(cfg))

# %% [markdown]
# ## Training
#
# The clip store is made first if the workflow has not made it; then one run per seed,
# with a checkpoint after every epoch (a killed run resumes where it stopped).

# %%
results = experiment.run_cell(cfg, entry="book/experiment.ipynb")
print(f"run {results.run_id}: wrote {experiment.CellPaths.of(cfg).results}")

# %% mystnb={"image": {"alt": "Training and validation loss (left) and accuracy (right) per epoch: the mean over seeds as a line, the range over seeds as a band."}}
figures.show(figures.training_curves([results]))

# %% [markdown]
# ## Test set
#
# Accuracy per track after the last epoch (what the tables report) and at the epoch with
# the best validation accuracy, per seed; the confusion matrix sums the seeds' test
# predictions after the last epoch (rows: true genre, columns: predicted).

# %%
seed_table(results)

# %% mystnb={"image": {"alt": "The test confusion matrix summed over seeds: true genre in rows, predicted genre in columns, each cell the track count, coloured by its share of the true genre."}}
figures.show(figures.confusion_matrices([results]))

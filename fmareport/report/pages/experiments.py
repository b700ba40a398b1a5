"""The Experiments page (book/pages/experiments.md) and what each cell's own notebook (book/experiment.py,
one page per cell under it) shows of its run."""

from __future__ import annotations

import pandas as pd

from ...config import Config
from ...results import CellResults
from ..compare import setting_label
from ..page import Page, table


def executed_cells(page: Page):
    """Every current run of the profile (results.cell_frame, id experiments)."""
    from .results import cell_frame  # here: a cell's notebook imports this module too, and needs none of it

    return table(
        cell_frame(list(page.results.values())), "experiments", f"The executed cells of profile {page.profile}."
    )


def config_line(cfg: Config) -> str:
    """One line (Markdown) saying what a cell's run is: profile, cell, setting, protocol, data, device."""
    setting = setting_label((cfg.model.input, cfg.model.segmented, cfg.model.dropout))
    return (
        f"**{cfg.profile} / {cfg.cell}**: {setting}; {len(cfg.schedule.seeds)} seed(s) × {cfg.schedule.epochs} "
        f"epoch(s), batch {cfg.train.batch_size}, lr {cfg.train.lr:g}; {cfg.store.sample_rate:,} Hz clips of "
        f"{cfg.store.clip_samples:,} samples; data `{cfg.run.data_dir}` ({cfg.data.source}); device `{cfg.compute.device}`."
    )


def seed_table(result: CellResults) -> pd.DataFrame:
    """One row per seed of one cell: test accuracies, best epoch, time and throughput."""
    return pd.DataFrame(
        {
            "test_acc_last": result.accuracies,
            "test_acc_best": result.best_accuracies,
            "best_epoch": [s.best_epoch for s in result.seeds],
            "seconds": [s.seconds for s in result.seeds],
            "segments_per_second": [s.segments_per_second for s in result.seeds],
        },
        index=pd.Index(result.seed_ids, name="seed"),
    ).round(3)

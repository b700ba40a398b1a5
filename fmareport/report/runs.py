"""Which runs a book shows: the cells a profile expects, and whether each result is that cell's run.

A number in the book must be the output of the run it names, of the config it names (docs/faults.md,
case 15). Every expected cell of a profile (fmareport.workflow.expected_cells) is current, other settings,
other store or not run (docs/running.md, "Building the book"); only current runs reach the tables, and a
current run whose training loss diverged stays there, flagged (`diverged`). A run is on the current
store only when its store's fingerprint is the one prepare would give the cell's config today, from
the data on disk (`store.current_fingerprint`): a run on a superseded store is "other store" however
many runs share it. Where the data set is not on this machine (results copied from a GPU node) the
store cannot be checked: such runs stay shown, flagged `unchecked` in the banner and the Runs table.

    statuses = run_statuses("smoke", results, workdir=Path("."))
    shown = {s.cell: results[s.cell] for s in statuses if s.shown}
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import NAME_PATTERN, PROFILE_KEY, Config, ConfigError, load_cell, load_profile, profiles, shown
from ..data.fma import GENRES
from ..data.store import current_fingerprint
from ..errors import BookError, one_line
from ..predict import CellNetwork, network_of
from ..results import CellResults, ResultsError, load_results, read_results, results_path
from ..workflow import differing_keys, expected_cells

# A run diverged when its last training loss is over DIVERGED_FACTOR times the smaller of its first
# epoch's and ln(K), the loss of a uniform guess over K = 8 genres (2.08). A network that learned
# nothing stays near ln(K); one at 10 x ln(K) = 20.8 gives the true genre a probability of about
# e^-20.8 = 1e-9 on average, far worse than guessing; and a loss 10 times where it started has
# blown up, whatever its level. With one epoch the first and last losses are one, and 20.8 is the bar.
DIVERGED_FACTOR = 10.0
CHANCE_LOSS = math.log(len(GENRES))

# Environment variables that choose a build's profile and results folder (docs/running.md).
PROFILE_ENV = "FMAREPORT_PROFILE"
RESULTS_ENV = "FMAREPORT_RESULTS_DIR"


def diverged(result: CellResults) -> list[int]:
    """The seeds of `result` whose last training loss is far above its start or chance (DIVERGED_FACTOR)."""
    out = []
    for s in result.seeds:
        losses = [e.train_loss for e in s.history]
        if losses[-1] > DIVERGED_FACTOR * min(losses[0], CHANCE_LOSS):
            out.append(s.seed)
    return out


@dataclass(frozen=True)
class RunStatus:
    """What the book makes of one expected cell."""

    cell: str
    state: str  # "current" | "other settings" | "other store" | "not run"
    detail: str = ""  # for humans: which keys differ, which seeds diverged
    diverged: tuple[int, ...] = ()  # seeds whose training loss diverged (a current run stays shown)
    unchecked: bool = False  # current by its settings, but its data set is not here to check its store

    @property
    def shown(self) -> bool:
        """Whether the run's numbers go into the tables and figures."""
        return self.state == "current"

    @property
    def flagged(self) -> bool:
        """Whether the banner names it: not shown, diverged, or its store unchecked."""
        return not self.shown or bool(self.diverged) or self.unchecked

    @property
    def label(self) -> str:
        """The state for a table: 'current', 'current, diverged (seed 0)', 'other settings: ...'."""
        text = self.state + (f": {self.detail}" if self.detail else "")
        if self.diverged:
            text += f"; diverged (seed {', '.join(map(str, self.diverged))})"
        return text


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def run_statuses(profile: str, results: dict[str, CellResults], workdir: str | Path) -> list[RunStatus]:
    """The status of every expected cell (and of any result of a cell that is no longer expected).

    `results`: {cell: CellResults}, as `load_results` reads them. `workdir`: the folder the runs
    worked in, whose params/ (else the repository's) says what each cell must be.
    """
    workdir = Path(workdir)
    params = workdir / "params" if (workdir / "params" / "profiles").is_dir() else None
    cells = expected_cells(params, profile)
    stores = [_store_folder(r.data.store, workdir) for r in results.values()]
    today: dict[str, tuple] = {}  # the store settings' key -> _store_today's answer
    out = []
    for cell in sorted(set(cells) | set(results)):
        result = results.get(cell)
        if result is None:
            out.append(RunStatus(cell, "not run"))
            continue
        if cell not in cells:
            why = "no params file for this cell any more"
            if cell in expected_cells(params):
                why = f"not among the cells profile {profile!r} runs (its key {PROFILE_KEY!r})"
            out.append(RunStatus(cell, "other settings", why))
            continue
        try:  # what the profile and the cell's params file give, looked up in the runs' params/
            with contextlib.chdir(workdir if params else Path.cwd()):
                expected = load_cell(profile, cell)
            differ = differing_keys(result.config, expected)
        except ConfigError as err:
            out.append(RunStatus(cell, "other settings", f"its params file does not load: {err}"))
            continue
        seeds = tuple(diverged(result))
        if differ:
            detail = ", ".join(f"{k} {_short(a)} (params: {_short(b)})" for k, (a, b) in differ.items())
            out.append(RunStatus(cell, "other settings", detail, seeds))
        elif (store := _store_today(expected, workdir, stores, today))[0] is None and store[2]:
            out.append(RunStatus(cell, "current", f"store not checked ({store[1]})", seeds, unchecked=True))
        elif store[0] != result.data.store_fingerprint:
            ran = f"ran on store {result.data.store_fingerprint[:12]}"
            why = f"the data and settings give store {store[0][:12]} today" if store[0] else store[1]
            out.append(RunStatus(cell, "other store", f"{ran}; {why}"))
        else:
            out.append(RunStatus(cell, "current", "", seeds))
    return out


def _store_folder(store: str, workdir: Path) -> Path:
    """A result's store folder: a relative one is relative to the folder the run worked in."""
    path = Path(store)
    return path if path.is_absolute() else workdir / path


def _store_today(cfg: Config, workdir: Path, stores: list[Path], memo: dict) -> tuple[str | None, str, bool]:
    """(the fingerprint prepare would give cfg's store today, "", False) or (None, why it cannot be
    told, whether only because the data set is not on this machine):
    cfg's data_dir and store_root are relative to `workdir` (the runs' working directory); the
    stores the results name, and those in store_root, save rereading unchanged files. Once per
    store settings (`memo`)."""

    def here(path: str) -> str:
        return str(Path(path) if Path(path).is_absolute() else workdir / path)

    cfg = cfg.replace(data_dir=here(cfg.run.data_dir), store_root=here(cfg.run.store_root))
    keys = {"data": cfg.data.model_dump(), "store": cfg.store.model_dump(), "synth": cfg.synth.model_dump(),
            "data_dir": cfg.run.data_dir, "store_root": cfg.run.store_root}  # fmt: skip
    key = json.dumps(keys, sort_keys=True, default=str)
    if key not in memo:
        try:
            memo[key] = (current_fingerprint(cfg, stores), "", False)
        except FileNotFoundError as err:  # results copied to a machine without the data set
            memo[key] = (None, one_line(err), True)
        except (OSError, ValueError) as err:  # the data set unreadable, or made with other settings
            memo[key] = (None, f"cannot tell which store the data give today: {one_line(err)}", False)
    return memo[key]


def newest_profile(results_root: str | Path) -> str | None:
    """The profile of the most recently written cell result under `results_root` (None: no result)."""
    newest, profile = -1, None
    root = Path(results_root)
    if not root.is_dir():
        return None
    for profile_dir in sorted(p for p in root.iterdir() if p.is_dir()):  # a profile's folder may be a link
        for path in profile_dir.rglob("*.json"):
            if "baselines" in path.relative_to(profile_dir).parts:
                continue
            mtime = path.stat().st_mtime_ns
            if mtime > newest:
                newest, profile = mtime, profile_dir.name
    return profile


def build_choice() -> tuple[str | None, Path]:
    """(profile, results folder) a plain `jupyter-book build book/` shows.

    The rule (docs/running.md): the results folder is $FMAREPORT_RESULTS_DIR, else `results` in
    the working directory; the profile is $FMAREPORT_PROFILE, else the profile whose cell
    result was written last (the runs you just made). None: no result at all.
    """
    root = Path(os.environ.get(RESULTS_ENV) or "results").resolve()
    if root.exists() and not root.is_dir():
        raise BookError(
            f"${RESULTS_ENV}: {root} is not a folder: set it to the folder holding <profile>/<cell>.json, or unset it"
        )
    profile = os.environ.get(PROFILE_ENV)
    if profile and not re.fullmatch(NAME_PATTERN, profile):
        raise BookError(f"${PROFILE_ENV}: {shown(profile)} is not a profile name (lower-case letters, digits, '_' and '-'): "
                        f"set it to one of {', '.join(profiles())}, or unset it")  # fmt: skip
    return profile or newest_profile(root), root


def statuses_of(profile: str, results_dir: Path, results: dict[str, CellResults]) -> dict[str, RunStatus]:
    """{cell: RunStatus} of `results`, read from `results_dir` (its parent: the runs' working folder)."""
    return {s.cell: s for s in run_statuses(profile, results, results_dir.resolve().parent) if s.cell in results}


def best_cell(profile: str, results_dir: str | Path) -> str:
    """The table cell (no ablation) of `profile` with the best mean test accuracy among its current runs
    that kept their weights, as the book ranks them (the first by name among equals)."""
    results_dir = Path(results_dir)
    results = load_results(results_dir, profile)
    shown = statuses_of(profile, results_dir, results)
    found = [r for c, r in results.items() if shown[c].shown and r.config.base is None and r.weights_sha1 is not None]
    if not found:
        raise ResultsError(
            f"no current run of profile {profile!r} with kept weights in {results_dir / profile}: run a cell "
            f"first (`fmareport run --profile {profile} --cell table1/spectrogram_segmented`)"
        )
    return min(found, key=lambda r: (-r.summary.test_acc_last_mean, r.cell)).cell


def current_network(profile: str, cell: str | None = None, results_dir: str | Path | None = None) -> CellNetwork:
    """The kept network (predict.CellNetwork) of `cell` (default: `best_cell`) of `profile`, from `results_dir` (default: the
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
    if not (status := statuses_of(profile, results_dir, {cell: result})[cell]).shown:
        raise ConfigError(f"{path}: the run of cell {cell} is not the profile's cell as its params give it today "
                          f"({status.label}): run the cell again")  # fmt: skip
    return network_of(path, result)

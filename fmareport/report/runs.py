"""Which runs a book shows: the cells a profile expects, and whether each result is that cell's run.

A number in the book must be the output of the run it names, of the config it names
(docs/faults.md, case 15). For every expected cell of a profile (`expected_cells`: the
YAML files under params/table1, params/table2 and params/ablations) a result is one of:

* **current**: its config is what the profile and the params file give today (keys that
  do not change a number, such as folders, aside), on the profile's clip store;
* **other settings**: it ran with other values of keys that change numbers (say
  `fmareport run --set epochs=3`, or a params file edited since): kept out of every
  table and figure, and named with the keys that differ;
* **other store**: it ran on another clip store than the profile's other cells;
* **not run**: there is no result.

A current run whose training loss diverged stays in the tables, flagged (`diverged`).

    statuses = run_statuses("smoke", results, workdir=Path("."))
    shown = {s.cell: results[s.cell] for s in statuses if s.shown}
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import (
    NUMBER_FREE_KEYS,
    PROFILE_KEY,
    Config,
    ConfigError,
    load_cell,
    load_config,
    params_dir,
    profile_path,
)
from ..data.fma import GENRES
from ..files import write_atomic
from ..results import CellResults

# The folders of params/ that hold cells: a table of the paper (table1, table2; Table 3 reuses the
# segmented cells of Tables 1 and 2, so it has none), or the ablations, beyond the paper.
CELL_FOLDER = r"table[0-9]+|ablations"

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


def expected_cells(params: str | Path | None = None, profile: str | None = None) -> list[str]:
    """The cells of the report: 'table1/raw_whole', ..., from the YAML files under params/; with a
    `profile`, those its `cells` patterns select (ConfigError names a pattern that selects none)."""
    root = Path(params) if params is not None else params_dir()
    cells = sorted(f"{f}/{p.stem}" for f in cell_folders(root) for p in (root / f).glob("*.yaml"))
    if profile is None:
        return cells
    path = profile_path(profile)  # checks the name
    path = path if params is None else root / "profiles" / path.name
    patterns = load_config(path).run.cells
    if empty := [p for p in patterns if not any(fnmatch.fnmatchcase(c, p) for c in cells)]:
        raise ConfigError(
            f"{path}: key {PROFILE_KEY!r}: {empty[0]!r} selects no cell under {root} (cells are named like "
            "'table1/raw_whole'; '*' selects them all)"
        )
    return [c for c in cells if any(fnmatch.fnmatchcase(c, p) for p in patterns)]


def cell_folders(root: Path) -> list[str]:
    """The folders of cells under params/ (`root`): every folder but profiles/ must be one (CELL_FOLDER),
    so that a new table's cells are run, never passed over; ConfigError names any other."""
    if not root.is_dir():
        return []
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "profiles" and p.name[0] != ".")
    if other := [f for f in folders if not re.fullmatch(CELL_FOLDER, f)]:
        raise ConfigError(
            f"{root / other[0]}: not a folder of cells; cells live in {root}/table<N>/ (a table of the paper) or "
            f"{root}/ablations/: move or rename it"
        )
    return folders


def differing_keys(ran: Config | dict, expected: Config | dict) -> dict[str, tuple]:
    """{key: (value the run used, value expected: what the params give today, or a reference's)} over
    the keys that change numbers."""
    ran = ran.to_dict() if isinstance(ran, Config) else ran
    now = expected.to_dict() if isinstance(expected, Config) else expected
    keys = (set(ran) | set(now)) - NUMBER_FREE_KEYS
    return {k: (ran.get(k), now.get(k)) for k in sorted(keys) if ran.get(k) != now.get(k)}


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

    @property
    def shown(self) -> bool:
        """Whether the run's numbers go into the tables and figures."""
        return self.state == "current"

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


def expected_config(profile: str, cell: str, workdir: str | Path) -> Config:
    """The config the profile and the cell's params file give, looked up in `workdir`'s params/."""
    with contextlib.chdir(workdir):
        return load_cell(profile, cell)


def run_statuses(profile: str, results: dict[str, CellResults], workdir: str | Path) -> list[RunStatus]:
    """The status of every expected cell (and of any result of a cell that is no longer expected).

    `results`: {cell: CellResults}, as `load_results` reads them. `workdir`: the folder the runs
    worked in, whose params/ (else the repository's) says what each cell must be.
    """
    workdir = Path(workdir)
    params = workdir / "params" if (workdir / "params" / "profiles").is_dir() else None
    cells = expected_cells(params, profile)
    stores = Counter(r.data.store_fingerprint for r in results.values())
    usual_store = stores.most_common(1)[0][0] if stores else None
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
        try:
            differ = differing_keys(result.config, expected_config(profile, cell, workdir if params else Path.cwd()))
        except ConfigError as err:
            out.append(RunStatus(cell, "other settings", f"its params file does not load: {err}"))
            continue
        seeds = tuple(diverged(result))
        if differ:
            detail = ", ".join(f"{k} {_short(a)} (params: {_short(b)})" for k, (a, b) in differ.items())
            out.append(RunStatus(cell, "other settings", detail, seeds))
        elif result.data.store_fingerprint != usual_store:
            out.append(
                RunStatus(cell, "other store", f"store {result.data.store_fingerprint[:12]}, not {usual_store[:12]}")
            )
        else:
            out.append(RunStatus(cell, "current", "", seeds))
    return out


RERUN_MARK = "# runs again to replace run "  # a stamp line: the result it was changed for
NOT_LOADED = "# does not load: "  # a stamp's first line when its params files do not (the cell job says why)


def settings_stamp(stamp: str | Path, profile: str, cell: str, result: str | Path) -> Path:
    """Keep `stamp` (an input of the cell's workflow job) saying what the cell must run with.

    It holds the resolved config of the cell (or the error its params files give), rewritten
    when that changes. When `result` ran with other settings (`differing_keys`), a line naming
    that run is added: the stamp's content changes (Snakemake compares small inputs by content,
    not only by time), so the cell runs again. Once the cell's own run replaces it, the line
    stays and nothing changes. Relative paths are relative to the working directory.
    """
    stamp, result = Path(stamp), Path(result)
    try:
        cfg = load_cell(profile, cell)
        text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    except ConfigError as err:  # the cell's job fails on it first thing, naming the file and key
        cfg, text = None, f"{NOT_LOADED}{err}\n"
    old = stamp.read_text(encoding="utf-8") if stamp.is_file() else None
    settings, _, mark = (old or "").partition(RERUN_MARK)
    if old is None or not _same_settings(settings, text):
        write_atomic(stamp, text)
    elif cfg is not None and result.is_file():
        try:
            ran = json.loads(result.read_text(encoding="utf-8"))
            run_id, differ = str(ran.get("run_id")), bool(differing_keys(ran["config"], cfg))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            run_id, differ = f"unreadable {result.stat().st_mtime_ns}", True  # the book refuses it, naming it
        if differ and mark.strip() != run_id:
            write_atomic(stamp, text + RERUN_MARK + run_id + "\n")
    return stamp


def _same_settings(old: str, new: str) -> bool:
    """Whether two stamps' settings are the same: the same text, or the same keys and values in
    another order (a stamp written before the config had sections lists its keys in another order,
    and must not make every cell run again)."""
    if old == new:
        return True
    try:
        a, b = yaml.safe_load(old), yaml.safe_load(new)
    except yaml.YAMLError:
        return False
    return isinstance(a, dict) and a == b


def newest_profile(results_root: str | Path) -> str | None:
    """The profile of the most recently written cell result under `results_root` (None: no result)."""
    newest, profile = -1, None
    root = Path(results_root)
    if not root.is_dir():
        return None
    for profile_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for path in profile_dir.rglob("*.json"):
            if "baselines" in path.relative_to(profile_dir).parts:
                continue
            mtime = path.stat().st_mtime_ns
            if mtime > newest:
                newest, profile = mtime, profile_dir.name
    return profile


def build_choice(results_root: str | Path | None = None) -> tuple[str | None, Path]:
    """(profile, results folder) a plain `jupyter-book build book/` shows.

    The rule (docs/running.md): the results folder is $FMAREPORT_RESULTS_DIR, else `results` in
    the working directory; the profile is $FMAREPORT_PROFILE, else the profile whose cell
    result was written last (the runs you just made). None: no result at all.
    """
    root = Path(os.environ.get(RESULTS_ENV) or results_root or "results").resolve()
    return os.environ.get(PROFILE_ENV) or newest_profile(root), root

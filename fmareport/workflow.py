"""What the workflow (the Snakefile) plans a profile with (docs/running.md, "The whole grid with Snakemake").

* the cells a profile runs (`expected_cells`: the params files its key `cells` selects), each
  cell's params files (`cell_inputs`) and priority (`cell_priority`, longest first);
* the GPUs each cell job takes (`gpus_per_cell`), refusing a profile that needs a GPU where none is;
* the stamps, inputs of jobs whose content changes when a job must run again (`keep_stamp`): each
  cell's settings (`settings_stamp`) and the synthetic set's (`synth_stamp`);
* how `make report` runs it (`run_locked`, `fmareport locked`): one at a time per checkout, and a
  SIGTERM to make reaching every process the run started.

`start(config)` does all of it at each start of the workflow and returns the `Plan`. The book
(fmareport.report) reads the cell list and `differing_keys` from here; this module never imports it.
"""

from __future__ import annotations

import ctypes
import fnmatch
import json
import os
import re
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .baseline import baseline_path, baselines_for
from .config import (
    NUMBER_FREE_KEYS,
    PROFILE_KEY,
    TABLE_FOLDER,
    Config,
    ConfigError,
    base_path,
    load_cell,
    load_config,
    name_mismatch,
    params_dir,
    profile_path,
    read_yaml,
)
from .data.store import check_synthetic_set, synth_arguments
from .errors import CommandNotFound
from .files import read_json, take_lock, write_atomic
from .gpus import GPU_FIX, gpu_count, torch_gpus

PARAMS = Path("params")  # the profiles and cells, in the workflow's working directory
# The folders of params/ that hold cells: a table of the paper (table1, table2; Table 3 reuses the
# segmented cells of Tables 1 and 2, so it has none), or the ablations, beyond the paper.
CELL_FOLDER = rf"{TABLE_FOLDER}|ablations"
RERUN_MARK = "# runs again to replace run "  # a settings stamp's last line: the result it replaces
STALE_MARK = "stale set, made with: "  # a synth stamp's last line: the settings of the set it replaces
NOT_LOADED = "# does not load: "  # a settings stamp's first line when its params files do not (the cell job says why)


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


def cell_inputs(cell: str) -> list[Path]:
    """A cell's params file, and its base cell's for an ablation (whose settings come first), read
    as the config layer reads them (fmareport.config.read_yaml, base_path). A file that does not load
    (broken YAML, a list, a base that names no table cell) is the cell's one input: its job fails on
    its settings stamp with the config layer's message, and the plan of the other cells goes on."""
    own = PARAMS / f"{cell}.yaml"
    try:
        base = read_yaml(own).get("base")
        return [own] + ([base_path(base, own)] if base is not None else [])
    except ConfigError:
        return [own]


def cell_priority(profile: str, cell: str) -> float:
    """Longest cell first, so that no core idles long at the end (longest-processing-time-first). A
    cell's relative cost: the audio samples its training reads, seeds x epochs x training share x the
    windows of a clip, in millions (docs/measurements.md). A params file that does not load gets 0:
    its job fails first thing."""
    try:
        c = load_cell(profile, cell)
    except ConfigError:
        return 0
    windows = c.windows_per_clip * c.window_samples
    return len(c.schedule.seeds) * c.schedule.epochs * c.train.train_fraction * windows / 1e6


def differing_keys(ran: Config | dict, expected: Config | dict) -> dict[str, tuple]:
    """{key: (value the run used, value expected: what the params give today, or a reference's)} over
    the keys that change numbers."""
    ran = ran.to_dict() if isinstance(ran, Config) else ran
    now = expected.to_dict() if isinstance(expected, Config) else expected
    keys = (set(ran) | set(now)) - NUMBER_FREE_KEYS
    return {k: (ran.get(k), now.get(k)) for k in sorted(keys) if ran.get(k) != now.get(k)}


def _whole(config: dict, key: str, default: int, least: int) -> int:
    """--config KEY=VALUE as a whole number >= least; ConfigError names the key otherwise."""
    value = config.get(key, default)
    if not re.fullmatch(r"\d+", str(value)) or int(value) < least:
        raise ConfigError(f"--config {key}={value!r}: must be a whole number >= {least}")
    return int(value)


def gpus_per_cell(cfg: Config, config: dict, profile_yaml: Path) -> int:
    """GPUs per cell job, the resource `gpu`: --config gpu=N as given (profiles/slurm: 1); 0 on
    device: cpu; else 1 while this machine has GPUs: --config gpus=N (make report's count), else
    counted here (torch in a subprocess, seconds of CPU: asked only where a cell could use one).
    ConfigError, naming torch's reason and the fixes, for a profile that needs a GPU (device cuda,
    or auto without cpu_fallback) with none to give: before fetch and prepare, not in every cell."""
    device, gpus, seen = cfg.compute.device, None, None
    if "gpu" in config or device == "cpu":  # on device: cpu, none unless given
        gpu = _whole(config, "gpu", 0, 0)
    else:
        if "gpus" in config:
            gpus = _whole(config, "gpus", 0, 0)
        else:
            seen = torch_gpus()
            gpus = gpu_count(seen=seen)
        gpu = 1 if gpus else 0
    if gpu or not (device == "cuda" or (device == "auto" and not cfg.run.cpu_fallback)):
        return gpu
    seen = torch_gpus() if seen is None else seen  # why none, in torch's words (asked when make gave the count)
    why = f" ({seen['problem']})" if seen and seen.get("problem") else ""
    raise ConfigError(
        f"profile {cfg.profile!r} needs a GPU (device: {device}, cpu_fallback: false) and this machine has none "
        f"torch can use{'' if gpus is None else f' (gpus={gpus})'}{why}. To run it here on the CPU (days), set "
        f"device: cpu in {profile_yaml}; {GPU_FIX}; on a cluster, give each cell a GPU with --config gpu=1 "
        "(profiles/slurm)"
    )


def keep_stamp(stamp: Path, text: str, mark: str, other: str | None = None, made: int | None = None) -> Path:
    """Keep `stamp`, an input of a workflow job, holding `text`, so that the job runs again when it must.

    Snakemake runs a job again when an input is newer than its output and differs in content from
    what the job last read (docs/running.md, "The whole grid with Snakemake"). So the stamp is
    rewritten only when `text` changes (YAML mappings compare with their keys in any order). `other`
    names what is on disk when it was made otherwise than `text` says: a line `mark` + `other` is
    added, once, so that the job replaces it. Given the output's time (`made`, ns), a new stamp
    judges the output at once: a fitting one gives the stamp its time (nothing runs again).
    """
    old = stamp.read_text(encoding="utf-8") if stamp.is_file() else None
    kept, _, named = (old or "").partition(mark)
    line = f"{mark}{other}\n" if other is not None else ""
    if old is None or not _same_text(kept, text):
        write_atomic(stamp, text + (line if made is not None else ""))
        if made is not None and other is None:
            os.utime(stamp, ns=(made, made))
    elif line and named.strip() != other:
        write_atomic(stamp, text + line)
    return stamp


def _same_text(old: str, new: str) -> bool:
    """The same text, or the same YAML mapping with its keys in another order."""
    if old == new:
        return True
    try:
        a, b = yaml.safe_load(old), yaml.safe_load(new)
    except yaml.YAMLError:
        return False
    return isinstance(a, dict) and a == b


def settings_stamp(stamp: str | Path, profile: str, cell: str, result: str | Path) -> Path:
    """Keep a cell's settings stamp (keep_stamp): the cell's resolved config, or NOT_LOADED and the
    error its params files give (the cell's job prints it and stops). A `result` that ran with
    other settings (`differing_keys`: `fmareport run --set epochs=3`) is named by its run id.
    Relative paths are relative to the working directory."""
    stamp, result = Path(stamp), Path(result)
    try:
        cfg = load_cell(profile, cell)
        text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    except ConfigError as err:  # the cell's job fails on it first thing, naming the file and key
        return keep_stamp(stamp, f"{NOT_LOADED}{err}\n", RERUN_MARK)
    other = None
    if result.is_file():
        try:
            ran = read_json(result)
            other = str(ran.get("run_id")) if differing_keys(ran["config"], cfg) else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            other = f"unreadable {result.stat().st_mtime_ns}"  # the book refuses it, naming it
    return keep_stamp(stamp, text, RERUN_MARK, other)


def synth_stamp(stamp: str | Path, cfg: Config) -> Path:
    """Keep the synth job's stamp (keep_stamp): the `fmareport synth` command of cfg's set and the
    artists synth cuts. A set in data_dir made with other settings (`check_synthetic_set`), by
    whoever made it, is named by its settings, and the job re-makes it; a new stamp beside a set
    that fits gets the time of its tracks.csv, which synth writes last."""
    from .data.synth import ARTIST_TRACKS, made_with

    data_dir = Path(cfg.run.data_dir)
    tracks_csv = data_dir / "fma_metadata" / "tracks.csv"
    command = shlex.join(["fmareport", "synth", str(data_dir), *synth_arguments(cfg)])
    other = made = None
    if tracks_csv.is_file():
        made = tracks_csv.stat().st_mtime_ns
        try:
            check_synthetic_set(data_dir, cfg)
        except ConfigError:
            other = json.dumps(made_with(data_dir), sort_keys=True)
    return keep_stamp(Path(stamp), f"{command}\nartists of {ARTIST_TRACKS} tracks\n", STALE_MARK, other, made)


@dataclass(frozen=True)
class Plan:
    """A profile as the workflow runs it (`start`); paths relative to the working directory."""

    profile: str
    cfg: Config
    profile_yaml: Path  # params/profiles/<profile>.yaml
    cells: list[str]  # those the profile's `cells` select (expected_cells)
    gpu: int  # GPUs per cell job (gpus_per_cell)
    cell_threads: int  # CPU threads per cell job (--config cell_threads, default 1: docs/running.md)
    build: Path  # build/<profile>: the stamps, the logs, the store's marker
    results: Path  # <results_dir>/<profile>: the cells' JSON, notebooks, weights and embeddings
    # What prepare waits for: a synthetic set's tracks.csv (synth writes it last), else a marker of fetch's
    # own (fetch resumes partial downloads: Snakemake may delete the marker, never the data).
    data: Path
    baselines: list[Path]  # fmareport.baseline.baselines_for: FMA's features.csv ones on FMA data


def start(config: dict) -> Plan:
    """What the workflow does as it starts, given its --config: load the profile
    (params/profiles/<profile>.yaml, default demo), its cells and GPUs, and keep the stamps (each
    cell's build/<profile>/settings/<cell>.yaml, a synthetic set's build/<profile>/synth.txt).
    ConfigError says what stops it."""
    profile = str(config.get("profile", "demo"))
    path = PARAMS / "profiles" / f"{profile}.yaml"
    try:
        cfg = load_config(path)
    except ConfigError as err:
        raise ConfigError(f"profile {profile!r}: {err}") from None
    if cfg.profile != profile:
        raise name_mismatch(path, "profile", profile, cfg.profile)
    gpu = gpus_per_cell(cfg, config, path)
    cells = expected_cells(PARAMS, profile)  # never none: a pattern that selects no cell is refused
    build, results, synth = Path("build") / profile, Path(cfg.run.results_dir) / profile, cfg.data.source == "synth"
    for cell in cells:
        settings_stamp(build / "settings" / f"{cell}.yaml", profile, cell, results / f"{cell}.json")
    if synth:
        synth_stamp(build / "synth.txt", cfg)
    data = Path(cfg.run.data_dir) / "fma_metadata" / "tracks.csv" if synth else build / "fetched"
    baselines = [baseline_path(cfg, name) for name in baselines_for(cfg)]
    return Plan(profile, cfg, path, cells, gpu, _whole(config, "cell_threads", 1, 1), build, results, data, baselines)


# --- make report: one run at a time, and nothing it starts outlives it -------------------------------

BUSY_STATUS = 75  # run_locked's exit status when another run holds the lock (EX_TEMPFAIL, flock(1)'s -E 75)
STOP_GRACE_S = 20.0  # after a SIGTERM, how long the run's processes get to end before SIGKILL (no hang)
_POLL_S = 0.2
_PR_SET_CHILD_SUBREAPER = 36  # prctl(2): orphans of the run are re-parented to this process, not to init


def run_locked(lock: str | Path, command: list[str], busy: str) -> int:
    """Run `command` holding an exclusive flock on `lock`, as `make report` runs its workflow; its exit
    status (128 + N for a signal N). Another run holding `lock`: `busy` on stderr and BUSY_STATUS at once.

    The lock is this process's alone (its descriptor is not inherited): it is released when this process
    ends, however (kill -9 too), never held by a process the run leaves behind. This process stays in
    its process group, so a signal to the group (Ctrl-C in a terminal, kill -9 -- -PGID) reaches every
    process of the run directly; a Ctrl-C (SIGINT) is left to them, and this process waits for them.
    A SIGTERM or SIGHUP to this process alone (GNU make passes a SIGTERM on to its recipe's process, and
    only to it) is passed on to every process under it: Snakemake's own SIGTERM handling waits for its
    running jobs, which no signal would reach otherwise (a cell for an hour, detached from make). Orphans
    are re-parented to this process (PR_SET_CHILD_SUBREAPER), so that a cell's papermill whose shell died
    first is reached too. After STOP_GRACE_S, SIGKILL. When `command` ends, whatever it left running is
    ended the same way: nothing it started outlives this process."""
    fd = take_lock(lock, wait=False)
    if fd is None:
        print(busy, file=sys.stderr)
        return BUSY_STATUS
    try:
        return _supervise(command)
    finally:
        os.close(fd)


def _supervise(command: list[str]) -> int:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: orphans go to init, as without this process
        pass
    stop: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, _: stop.append(signum)) for sig in (signal.SIGTERM, signal.SIGHUP)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, lambda *_: None)  # Ctrl-C reached the run's processes too
    try:
        try:
            child = os.posix_spawnp(command[0], command, os.environ)
        except FileNotFoundError:
            raise CommandNotFound(f"command not found: {command[0]}") from None
        status, since, signalled = None, None, set()
        while True:
            status = _reap(child, status)
            if not stop and status is None:  # running: only its end (or a signal) is waited for
                time.sleep(_POLL_S)
                continue
            under = descendants(os.getpid())  # stopped, or the command ended: what is left under it
            if not under:
                break
            since = time.monotonic() if since is None else since
            kill = time.monotonic() - since > STOP_GRACE_S
            for pid in under:
                if kill or pid not in signalled:
                    _signal(pid, signal.SIGKILL if kill else (stop or [signal.SIGTERM])[0])
                    signalled.add(pid)
            time.sleep(_POLL_S)
        status = _reap(child, status)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if stop:
        return 128 + stop[0]
    return 128 - status if status is not None and status < 0 else (status or 0)


def _reap(child: int, status: int | None) -> int | None:
    """Reap every child that has ended (the run's orphans are this process's children); the command's
    exit code (os.waitstatus_to_exitcode: -N for signal N) once it has ended, else `status`."""
    while True:
        try:
            pid, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == child:
            status = os.waitstatus_to_exitcode(raw)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:  # ended since it was listed
        pass


def descendants(root: int) -> list[int]:
    """The processes under `root` (children, theirs, ...), from /proc, parents before children; zombies
    (ended, not yet reaped) left out."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:  # ended while listed
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(0), [])
        found += kids
        todo += kids
    return found

"""The fault corpus, case 16: how a run is started and stopped (issue 32's probe of `make`, papermill
and the workflow's plan). Each test is one input: the exit status, the one line naming the variable,
key or file and the fix, and that nothing outside the run's own folders changed (docs/faults.md).

Lowest level first: make's parse (`make -n`: the settings are refused as the Makefile is read), the
config layer's functions, Snakemake's plan through its API (conftest.snakemake_plan); real processes
where a process is the point: a SIGTERM to a real `make report` on a one-rule Snakefile, a Ctrl-C to
a real papermill on a stand-in notebook (a second or two each, on an idle machine).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fmareport.cli import main
from fmareport.config import MAX_EPOCHS, ConfigError, load_config, profile_path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def make(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout
    )


def params_copy(tmp_path: Path, monkeypatch) -> Path:
    """A working directory with a copy of the repo's params/, made the current one."""
    shutil.copytree(REPO / "params", tmp_path / "params")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "params"


def alive(pids: list[int]) -> list[str]:
    """The command lines of those of `pids` still running (not ended, not a zombie)."""
    out = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            if stat.rsplit(b")", 1)[1].split()[0] != b"Z":
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return out


# --- epochs bounded -------------------------------------------------------------------------------------


def test_16_a_huge_epochs_is_refused_naming_the_key_not_blamed_on_the_disk(tmp_path, capsys):
    cell = tmp_path / "big.yaml"
    cell.write_text(f"cell: table1/big\nepochs: {2**70}\n")
    said = f"big.yaml: key 'epochs': must be at most {MAX_EPOCHS:,} (weeks of training at the demo profile's size"
    with pytest.raises(ConfigError, match=rf"{re.escape(said)}; the paper trains 15\), got {2**70}$"):
        load_config(profile_path("smoke"), cell)
    assert main(["config", "smoke", str(cell)]) == 2
    assert said in capsys.readouterr().err
    cell.write_text(f"cell: table1/big\nepochs: {MAX_EPOCHS}\n")
    assert load_config(profile_path("smoke"), cell).schedule.epochs == MAX_EPOCHS

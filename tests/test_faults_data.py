"""The fault corpus, issue 32: the data set, the clip store and the files a cell writes, as a careless
or hostile user meets them (docs/faults.md; the cases' numbers are the corpus's: 11 the clip store,
12 results files, 14 errors at the boundary; case 15's changed data set is in tests/test_runs.py).

Each test names the input, the exit status or exception, the message (one line naming the file or
folder and the fix), and that nothing outside the run's own folders changed. A full or read-only
disk is a real tmpfs where this user may mount one (else skipped, saying so), beside a test of the
same path with the error injected, which runs everywhere.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from fmareport import files
from fmareport.cli import main
from fmareport.config import Config
from fmareport.results import ResultsError, load_baselines, load_results, read_results


def state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and mtime: what 'nothing changed' compares."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def last_line(err: str) -> str:
    """What the boundary printed: the last line of stderr (progress bars come before it), no traceback."""
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Path:
    """A real tmpfs of `size` mounted on `folder` for the block (skipped where this user may not mount one)."""
    folder.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (a full or read-only disk needs one)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


def read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", folder], check=True)


def profile_yaml(cfg: Config, tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


# --- 12. results files are read bounded: regular files only, a size cap, no digit-limit traceback --------


def in_time(call, seconds: float = 20):
    """call() in a thread: its result or exception, or a failure if it is still blocked after `seconds`."""
    out = {}

    def run():
        try:
            out["value"] = call()
        except BaseException as err:  # noqa: BLE001 (handed to the test)
            out["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    return out


def results_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "smoke" / "table1"
    folder.mkdir(parents=True)
    return folder


def test_12_a_fifo_named_as_a_results_file_is_refused_not_waited_on(tmp_path, capsys):
    fifo = results_folder(tmp_path) / "x.json"
    os.mkfifo(fifo)
    before = state(tmp_path)
    out = in_time(lambda: load_results(tmp_path / "results", "smoke"))
    assert isinstance(out.get("error"), ResultsError)
    assert str(out["error"]) == f"{fifo}: not a regular file (a FIFO): move it away, or run again what wrote it"
    argv = ["book", "--profile", "smoke", "--results-dir", str(tmp_path / "results"), "--complete", "--no-build"]
    assert in_time(lambda: main(argv))["value"] == 1
    assert last_line(capsys.readouterr().err) == f"fmareport book: {out['error']}"
    assert state(tmp_path) == before


def test_12_a_link_to_dev_zero_is_refused_before_a_byte_is_read(tmp_path):
    link = results_folder(tmp_path) / "x.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(ResultsError) as err:
        read_results(link)
    assert (
        str(err.value) == f"{link}: not a regular file (a character device): move it away, or run again what wrote it"
    )
    baselines = tmp_path / "results" / "smoke" / "baselines"
    baselines.mkdir()
    (baselines / "mfcc.json").symlink_to("/dev/zero")
    with pytest.raises(ResultsError, match=r"mfcc\.json: not a regular file \(a character device\)"):
        load_baselines(tmp_path / "results", "smoke")


def test_12_a_results_file_over_the_cap_is_refused_unread(tmp_path):
    big = results_folder(tmp_path) / "x.json"
    with open(big, "wb") as f:
        f.truncate(files.MAX_JSON_BYTES + 1)  # sparse: nothing written
    with pytest.raises(ResultsError) as err:
        read_results(big)
    assert str(err.value) == (
        f"{big}: over {files.MAX_JSON_BYTES:,} bytes (files.MAX_JSON_BYTES), more than fmareport writes: move it "
        "away, or run again what wrote it"
    )


@pytest.mark.parametrize("where", ["table1/x.json", "baselines/mfcc.json"])
def test_12_an_integer_of_5_million_digits_names_its_file(tmp_path, where):
    """Python's own error ("Exceeds the limit (4300 digits) for integer string conversion ... use
    sys.set_int_max_str_digits()") named no file, and its fix is not ours to take."""
    path = tmp_path / "results" / "smoke" / where
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": ' + "9" * 5_000_000 + "}")
    read = load_baselines if where.startswith("baselines") else load_results
    with pytest.raises(ResultsError) as err:
        read(tmp_path / "results", "smoke")
    assert str(err.value) == (
        f"{path}: holds an integer of more than 4,300 digits (Python's limit), which no file fmareport writes "
        "holds: move it away, or run again what wrote it"
    )


def test_12_a_results_file_that_is_a_folder_or_not_utf8_names_its_file(tmp_path):
    folder = results_folder(tmp_path) / "x.json"
    folder.mkdir()
    with pytest.raises(ResultsError, match=rf"^{folder}: (not a regular file \(a folder\)|Is a directory)"):
        load_results(tmp_path / "results", "smoke")
    folder.rmdir()
    folder.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(ResultsError, match=rf"^{folder}: not UTF-8 text \(byte 7: 0xe9\): move it away"):
        load_results(tmp_path / "results", "smoke")

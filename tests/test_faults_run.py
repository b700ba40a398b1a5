"""The fault corpus, case 16: how a run is started and stopped (issue 32's probe of `make`, papermill
and the workflow's plan). Each test is one input: the exit status, the one line naming the variable,
key or file and the fix, and that nothing outside the run's own folders changed (docs/faults.md).

Lowest level first: make's parse (`make -n`: the settings are refused as the Makefile is read), the
config layer's functions, Snakemake's plan through its API (conftest.snakemake_plan); real processes
where a process is the point: a SIGTERM to a real `make report` on a one-rule Snakefile, a Ctrl-C to
a real papermill on a stand-in notebook (a second or two each, on an idle machine).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import snakemake_plan

from fmareport import notebook, workflow
from fmareport.cli import main
from fmareport.config import MAX_EPOCHS, ConfigError, load_cell, load_config, profile_path, read_yaml
from fmareport.files import take_lock
from fmareport.workflow import NOT_LOADED, cell_inputs, descendants, expected_cells

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


# --- make: every setting checked as the Makefile is read, before any recipe --------------------------

# (a setting as given, the start of the line make stops with). {x}: a file the value tries to create.
REFUSED = [
    ("PROFILE=smoke; touch {x}", "PROFILE='smoke; touch {x}': not a profile name (lower-case letters"),
    ("PROFILE=$(shell touch {x})", "PROFILE='$(shell touch {x})': not a profile name"),
    ("PROFILE=nope", "PROFILE='nope': no such profile (no params/profiles/nope.yaml); profiles: demo paper smoke"),
    ("PROFILE=", "PROFILE='': empty; profiles: demo"),
    ("PROFILE=" + "a" * 65, "PROFILE='" + "a" * 65 + "': a profile name has at most 64 characters"),
    ("CORES=0", "CORES='0': must be a whole number of CPU cores, 1 or more"),
    ("CORES=2;touch {x}", "CORES='2;touch {x}': must be a whole number of CPU cores"),
    ("CORES=02", "CORES='02': must be a whole number"),
    ("GPUS=-1", "GPUS='-1': must be a whole number of GPUs, 0 or more"),
    ("TORCH_INDEX=https://x.org/cu126;touch {x}", "TORCH_INDEX='https://x.org/cu126;touch {x}': must be an http:// or https:// URL"),
    ("TORCH_INDEX=ftp://x.org/cu126", "TORCH_INDEX='ftp://x.org/cu126': must be an http:// or https:// URL"),
    ("PYTHON=python3 -c 'open(\"{x}\", \"w\")'", "PYTHON='python3 -c 'open(\"{x}\", \"w\")'': must be a path of letters"),
    ("VENV=/tmp/a:b", "VENV='/tmp/a:b': must be a path of letters"),
    ("REPORT_LOCK=$(touch {x})", "REPORT_LOCK='$(touch {x})': must be a path of letters"),
    ("GPU_CHECK_REPORT=-x", "GPU_CHECK_REPORT='-x': must be a path of letters"),
    ("WORKFLOW_ARGS=results; touch {x}", "WORKFLOW_ARGS='results; touch {x}': must be words of letters"),
    ("WORKFLOW_ARGS=results\ntouch {x}", "WORKFLOW_ARGS='results"),
    ("DRY=yes", "DRY='yes': must be 1 (every check on the CPU at tiny sizes), or 0 or empty"),
    ("PY=/bin/true", "PY is this Makefile's own variable, not a setting: the settings are PROFILE, CORES"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "line"), REFUSED, ids=[s.split("=")[0] + str(i) for i, (s, _) in enumerate(REFUSED)]
)
def test_16_make_refuses_a_setting_that_is_not_one_as_it_reads_the_makefile(tmp_path, setting, line):
    """`make -n report` (make's parse; under -n the report recipe's sub-make line runs too): exit 2, one
    line naming the variable, before any recipe: nothing printed to run, the file the value names not made."""
    x = tmp_path / "X"
    done = make("-n", "report", "GPUS=0", f"REPORT_LOCK={tmp_path}/r.lock", setting.format(x=x))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"*** {line.format(x=x)}" in done.stderr
    assert done.stdout == "" and not x.exists()


def test_16_a_setting_from_the_environment_is_checked_too(tmp_path):
    x = tmp_path / "X"
    done = make("-n", "report", env={**os.environ, "PROFILE": f"smoke;touch {x}", "GPUS": "0"})
    assert done.returncode == 2 and f"*** PROFILE='smoke;touch {x}': not a profile name" in done.stderr
    assert not x.exists()


def test_16_make_takes_settings_that_are_ones(tmp_path):
    done = make(
        "-n", "report", "PROFILE=smoke", "CORES=3", "GPUS=0", "DRY=0", f"REPORT_LOCK={tmp_path}/r.lock",
        f"WORKFLOW_ARGS=results -s {REPO / 'Snakefile'} --directory {tmp_path} --config cell_threads=1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"--directory {tmp_path} --config cell_threads=1 --cores 3 --keep-going" in done.stdout
    assert "--resources gpu=0 --config profile=smoke gpus=0" in done.stdout


@pytest.mark.parametrize("setting", ["PROFILE=smoke; touch {x}", "CORES=0"])
def test_16_a_real_make_report_is_refused_the_same_way(tmp_path, setting):
    """Not only a dry run: `make report` itself stops as it reads the Makefile (CORES=0 hung at Snakemake's
    "Select jobs to execute"); no install, no lock, nothing run."""
    x = tmp_path / "X"
    done = make("report", "GPUS=0", f"REPORT_LOCK={tmp_path}/r.lock", setting.format(x=x), timeout=30)
    assert done.returncode == 2 and f"*** {setting.split('=')[0]}='" in done.stderr, done.stderr
    assert done.stdout == "" and not x.exists() and not (tmp_path / "r.lock").exists()


# --- make report: a SIGTERM to make alone reaches every process of the run ---------------------------

ONE_RULE = 'rule all:\n    output: "done.txt"\n    shell: "touch started; sleep 60; touch {output}"\n'


def test_16_a_sigterm_to_make_report_alone_leaves_no_process_of_the_run(tmp_path):
    """kill -TERM <make's pid> (not its group: `timeout make report`, a CI runner's cancel) while a job
    runs: before, make exited at once and flock, the sub-make, Snakemake and the job ran on detached (and
    the report lock was free for a second run beside them). Now make ends once they all have."""
    (tmp_path / "Snakefile").write_text(ONE_RULE)
    lock = tmp_path / "report.lock"
    command = ["make", "--no-print-directory", "report", "PROFILE=smoke", "GPUS=0", "CORES=1", f"REPORT_LOCK={lock}",
               f"WORKFLOW_ARGS=-s {tmp_path / 'Snakefile'} --directory {tmp_path}"]  # fmt: skip
    run = subprocess.Popen(
        command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.poll() is None and (tmp_path / "started").exists(), "the job did not start"
        under = descendants(run.pid)  # the lock's holder, the sub-make, Snakemake, the job's shell, sleep
        assert any("sleep 60" in c for c in alive(under)), alive(under)
        os.kill(run.pid, signal.SIGTERM)
        assert run.wait(timeout=60) == -signal.SIGTERM
        assert alive(under) == []
        fd = take_lock(lock, wait=False)
        assert fd is not None, "the report lock is still held"
        os.close(fd)
        assert not (tmp_path / "done.txt").exists()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)


def locked(lock: Path, *command: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "fmareport.cli", "locked", "--busy", "busy here", str(lock), "--", *command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


def test_16_run_locked_passes_a_sigterm_to_every_process_under_it_orphans_too(tmp_path):
    """`fmareport locked` (what the report recipe execs): a stand-in run whose shell leaves an orphan
    (a subshell's background sleep, re-parented to the lock's holder) and waits on another."""
    started = tmp_path / "started"
    script = f"(sleep 61 &); sleep 62 & touch {started}; wait"
    run = locked(tmp_path / "r.lock", "sh", "-c", script)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    under = descendants(run.pid)
    assert sorted(c.strip() for c in alive(under) if c.startswith("sleep")) == ["sleep 61", "sleep 62"]
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 128 + signal.SIGTERM
    assert alive(under) == []


def test_16_run_locked_leaves_nothing_behind_and_exits_with_the_commands_status(tmp_path):
    run = locked(tmp_path / "r.lock", "sh", "-c", "(sleep 63 &); exit 3")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 3, err
    everything = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    assert not any(c.startswith("sleep 63") for c in alive(everything))  # the orphan ended with its run


def test_16_run_locked_refuses_a_second_run_at_once(tmp_path):
    lock = tmp_path / "r.lock"
    fd = take_lock(lock)
    try:
        run = locked(lock, "sh", "-c", f"touch {tmp_path / 'ran'}")
        _, err = run.communicate(timeout=60)
    finally:
        os.close(fd)
    assert (run.returncode, err) == (workflow.BUSY_STATUS, "busy here\n")
    assert not (tmp_path / "ran").exists()


# --- papermill: Ctrl-C shows where a rerun resumes -----------------------------------------------------

INTERRUPTED = "interrupted at seed 0 epoch 2: rerun the same command to resume from epoch 2 (checkpoint c.pt)"


def test_16_a_ctrl_c_in_a_kernel_is_written_to_its_stderr_and_its_socket_tracebacks_dropped():
    """errors.short_tracebacks in a kernel's shell (the `kernel` a kernel's shell has: its log, here a
    logger of this test): the Ctrl-C's line goes to the process's stderr as well as to the notebook; the
    kernel's ZMQ tracebacks after it (papermill closed its sockets as it left) are dropped, others kept."""
    code = textwrap.dedent(
        f"""
        import logging, sys, types
        import zmq
        from IPython.core.interactiveshell import InteractiveShell
        from fmareport import errors
        log = logging.getLogger("kernel")
        log.addHandler(logging.StreamHandler(sys.stdout))
        shell = InteractiveShell.instance(colors="NoColor")
        shell.kernel = types.SimpleNamespace(log=log)
        errors.short_tracebacks(shell)

        def fail(err):
            try:
                raise err
            except Exception:
                log.error("Exception in message handler:", exc_info=True)

        fail(zmq.ZMQError(88))  # before any Ctrl-C: kept
        print("=== ctrl-c")
        shell.run_cell("from fmareport.errors import Interrupted\\nraise Interrupted({INTERRUPTED!r})")
        print("=== after")
        fail(zmq.ZMQError(88))  # dropped
        fail(ValueError("a bug"))  # kept
        """
    )
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120)
    before, rest = done.stdout.split("=== ctrl-c")
    shown, after = rest.split("=== after")
    assert "zmq.error.ZMQError" in before
    assert f"Interrupted: {INTERRUPTED}" in shown and "Traceback" not in shown
    assert "ZMQError" not in after and "ValueError: a bug" in after
    assert done.stderr == f"\nInterrupted: {INTERRUPTED}\n"


def test_16_a_ctrl_c_to_papermill_shows_where_a_rerun_resumes(tmp_path):
    """A Ctrl-C (SIGINT to papermill's process group, as a terminal sends it) during a cell: papermill
    interrupts the kernel as it shuts it down, no longer reading its output; the kernel's Interrupted
    line reaches papermill's stderr. (A stand-in for the experiment notebook: the same first cell, then a
    loop that raises what train.run_seed raises on a Ctrl-C, without torch's import.) What papermill
    itself prints and its exit status (1, click's "Aborted!") are papermill's."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from fmareport import errors\nerrors.short_tracebacks(get_ipython())"),
        nbformat.v4.new_code_cell(
            "import time\nfrom fmareport.errors import Interrupted\n"
            f"open({str(tmp_path / 'started')!r}, 'w').close()\n"
            f"try:\n    time.sleep(120)\nexcept KeyboardInterrupt:\n    raise Interrupted({INTERRUPTED!r}) from None"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    command = [PY, "-m", "papermill", str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), "--no-progress-bar"]
    # A shell's background job (`make test &`) ignores SIGINT, and a Python started so keeps ignoring it: undo that.
    run = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.poll() is None, run.communicate()[1][-3000:]
        time.sleep(0.3)  # into the sleep
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0
    assert f"\nInterrupted: {INTERRUPTED}\n" in err, err[-3000:]
    assert "ZMQError" not in err and "Exception in message handler" not in err, err[-3000:]


# --- papermill -y: YAML 1.1 numbers ------------------------------------------------------------------


def test_16_a_number_papermill_read_as_text_is_named_with_the_form_that_works():
    """papermill reads -y with PyYAML's YAML 1.1 loader: `-y "overrides: {lr: 1e-3}"` gives the text
    '1e-3'. The refusal says so and gives the -p form, which loads."""
    given = yaml.safe_load("overrides: {lr: 1e-3}")["overrides"]
    assert given == {"lr": "1e-3"}  # the premise: YAML 1.1
    with pytest.raises(ConfigError) as refused:
        notebook.config("smoke", "table1/raw_whole", given)
    assert str(refused.value) == (
        "overrides: key 'lr': got '1e-3' (str), expected a number. papermill reads -y as YAML 1.1, where 1e-3 "
        "is text, not a number (key 'lr'): pass the overrides as YAML text instead, which the config layer reads "
        "as YAML 1.2: -p overrides 'lr: 1e-3' (several as one mapping: -p overrides '{lr: 1e-3, epochs: 2}')"
    )
    assert notebook.config("smoke", "table1/raw_whole", "lr: 1e-3").train.lr == 1e-3
    assert notebook.config("smoke", "table1/raw_whole", "{lr: 1e-3, epochs: 2}").schedule.epochs == 2


@pytest.mark.parametrize("given", [{"lr": "fast"}, {"epochs": "1e1"}])
def test_16_the_yaml_1_1_hint_is_given_only_where_it_is_the_fix(given):
    """Text that is no number, or a number the key would refuse anyway (epochs 10.0): no hint."""
    with pytest.raises(ConfigError) as refused:
        notebook.config("smoke", "table1/raw_whole", given)
    assert "YAML 1.1" not in str(refused.value) and f"key {next(iter(given))!r}: got " in str(refused.value)


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


# --- a cell file's own mistakes, named with what to write ------------------------------------------------


def test_16_a_base_that_is_not_a_table_cell_is_named_with_what_to_write(tmp_path, monkeypatch):
    params = params_copy(tmp_path, monkeypatch)
    for base, said in [
        ("profiles/smoke", "'profiles/smoke' is not a cell of the paper's tables; an ablation's base is one"),
        ("ablations/log_both_segmented", "'ablations/log_both_segmented' is itself an ablation; name a table cell"),
        ("table1/nope", "no cell 'table1/nope' (params/table1/nope.yaml: no such params file); name one such as"),
        ("[table1, x]", "['table1', 'x'] is not a cell of the paper's tables"),
    ]:
        (params / "ablations" / "x.yaml").write_text(f"cell: ablations/x\nbase: {base}\n")
        with pytest.raises(ConfigError) as refused:
            load_cell("smoke", "ablations/x")
        assert str(refused.value).startswith(f"params/ablations/x.yaml: key 'base': {said}"), refused.value
        assert "'table1/both_segmented' (params/table1/both_segmented.yaml)" in str(refused.value)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "",
            "params/table1/x.yaml: is empty: a cell's file names its cell: write 'cell: table1/x' in it, then "
            "the keys the cell changes",
        ),
        (
            "input: raw\n",
            "params/table1/x.yaml: has no key 'cell': a cell's file names its cell: write 'cell: table1/x' in it",
        ),
        (
            "cell: table1/raw_whole\n",
            "params/table1/x.yaml says 'cell: table1/raw_whole': it must be 'table1/x' (its file name)",
        ),
    ],
)
def test_16_a_cell_file_that_does_not_name_its_cell_is_told_what_to_write(tmp_path, monkeypatch, text, said):
    """An empty file was told of a cell 'adhoc' (the default) nobody wrote."""
    params = params_copy(tmp_path, monkeypatch)
    (params / "table1" / "x.yaml").write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_cell("smoke", "table1/x")
    assert str(refused.value).startswith(said), refused.value
    assert "adhoc" not in str(refused.value)


def test_16_an_ablation_without_its_cell_key_is_not_blamed_for_its_bases(tmp_path, monkeypatch):
    params = params_copy(tmp_path, monkeypatch)
    (params / "ablations" / "x.yaml").write_text("base: table1/raw_whole\ndropout: 0.2\n")
    with pytest.raises(ConfigError, match=r"^params/ablations/x\.yaml: has no key 'cell': .* 'cell: ablations/x'"):
        load_cell("smoke", "ablations/x")


def test_16_an_empty_profile_is_told_to_name_itself(tmp_path, monkeypatch):
    params = params_copy(tmp_path, monkeypatch)
    (params / "profiles" / "mine.yaml").write_text("")
    expected = r"^params/profiles/mine\.yaml: is empty: a profile's file names its profile: write 'profile: mine'"
    with pytest.raises(ConfigError, match=expected):
        load_cell("mine", None)
    with pytest.raises(ConfigError, match=expected):
        workflow.start({"profile": "mine", "gpus": 0})


def test_16_a_params_path_that_is_a_folder_says_so(tmp_path, monkeypatch, capsys):
    params_copy(tmp_path, monkeypatch)
    with pytest.raises(ConfigError, match=r"^params/table1: a folder, not a params file: give one of the \.yaml files "
                       r"in it, such as params/table1/both_segmented\.yaml$"):  # fmt: skip
        read_yaml("params/table1")
    assert main(["config", "smoke", "params/table1"]) == 2
    assert "params/table1: a folder, not a params file" in capsys.readouterr().err


# --- the workflow's plan: one bad cell file fails its own job only --------------------------------------

BAD_CELLS = {
    "table1/raw_whole": ("- input: raw\n- dropout: 0.2\n", "params/table1/raw_whole.yaml: expected a mapping of keys to "
                         "values, got list"),  # fmt: skip
    "table1/both_whole": ("cell: table1/both_whole\ninput: [raw\n", "params/table1/both_whole.yaml: line 3: not valid "
                          "YAML: expected ',' or ']', but got '<stream end>'"),  # fmt: skip
    "ablations/mel_both_segmented": ("cell: ablations/mel_both_segmented\nbase: profiles/smoke\n",
                                     "params/ablations/mel_both_segmented.yaml: key 'base': 'profiles/smoke' is not"),
}  # fmt: skip


def test_16_a_cell_file_that_does_not_load_is_its_jobs_only_input(tmp_path, monkeypatch):
    params = params_copy(tmp_path, monkeypatch)
    for cell, (text, _) in BAD_CELLS.items():
        (params / f"{cell}.yaml").write_text(text)
        assert cell_inputs(cell) == [Path(f"params/{cell}.yaml")]
    assert cell_inputs("ablations/log_both_segmented") == [Path(p) for p in (
        "params/ablations/log_both_segmented.yaml", "params/table1/both_segmented.yaml")]  # fmt: skip


def test_16_the_plan_goes_on_past_cell_files_that_do_not_load(tmp_path):
    """A cell file that is a YAML list, broken YAML or names a profile as its base stopped the whole plan
    with a Snakemake traceback (an input function's ConfigError). Now every cell is planned; the bad
    ones' settings stamps hold the config layer's line, which their jobs print and fail on (exit 2)."""
    shutil.copytree(REPO / "params", tmp_path / "params")
    for cell, (text, _) in BAD_CELLS.items():
        (tmp_path / "params" / f"{cell}.yaml").write_text(text)
    cells = expected_cells(tmp_path / "params", "smoke")
    out = snakemake_plan(tmp_path, "results", config={"profile": "smoke", "gpus": 0})
    stats = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    assert dict(re.findall(r"^(\w+)\s+(\d+)$", stats, re.M))["cell"] == str(len(cells)), stats
    for cell, (_, said) in BAD_CELLS.items():
        stamp = (tmp_path / "build" / "smoke" / "settings" / f"{cell}.yaml").read_text()
        assert stamp.startswith(f"{NOT_LOADED}{said}"), stamp
    good = (tmp_path / "build" / "smoke" / "settings" / "table2" / "both_segmented_dropout.yaml").read_text()
    assert yaml.safe_load(good)["cell"] == "table2/both_segmented_dropout"  # the others' stamps are their configs

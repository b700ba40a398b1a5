"""The README states facts that these tests keep true.

* The demo's split sizes in the README are the ones its profile gives (`synth.split_sizes`).
* Every `fmareport ...` line of the README's fenced bash blocks is run, in the README's order, in
  a temporary working directory with a copy of `params/`, in this process (`fmareport.cli.main`):
  the data steps on the smoke profile run for real (synth, then prepare, which refuses a set made
  with other settings), so the documented commands work together. Three are checked less than
  fully, as each says: `summary` runs with `--no-memory` (the measured training step takes
  minutes at the paper's scale), `fetch` (7.6 GB from the network) by its argument parsing, and
  `predict` on the session's smoke grid's kept networks (`--results-dir`), on an mp3 made here.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from fmareport import cli
from fmareport.config import load_config, load_profile, profile_path
from fmareport.data.fma import SPLITS
from fmareport.data.store import synth_arguments
from fmareport.data.synth import split_sizes
from fmareport.results import load_baselines

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def bash_blocks(text: str) -> list[str]:
    """The contents of the text's fenced ```bash blocks."""
    return re.findall(r"^```bash\n(.*?)^```$", text, re.M | re.S)


def fmareport_commands(text: str) -> list[list[str]]:
    """Each line of a bash block whose command is `fmareport` (or `.venv/bin/fmareport`): its
    arguments, without the trailing comment, in the README's order."""
    out = []
    for block in bash_blocks(text):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and Path(words[0]).name == "fmareport":
                out.append(words[1:])
    return out


def parser() -> argparse.ArgumentParser:
    """The command line's parser, made as `cli.main` makes it."""
    p = argparse.ArgumentParser(prog="fmareport")
    sub = p.add_subparsers(dest="subcommand", required=True)
    for add in cli.COMMANDS:
        add(sub)
    return p


def test_the_readme_shows_fmareport_commands_in_bash_blocks():
    """The parser above finds the commands (so the test below cannot pass by finding none)."""
    found = fmareport_commands(README)
    assert found, "no `fmareport` line in the README's bash blocks"
    assert {"synth", "prepare"} <= {argv[0] for argv in found}
    assert fmareport_commands("```bash\n.venv/bin/fmareport schema   # a comment\nmake test\n```\n") == [["schema"]]


def test_the_demos_split_sizes_in_the_readme_are_its_profiles():
    synth = load_profile("demo").synth
    sizes = split_sizes(synth.tracks_per_genre, synth.validation_fraction, synth.test_fraction)
    totals = [sum(genre[split] for genre in sizes) for split in SPLITS]
    shares = [round(100 * (1 - synth.validation_fraction - synth.test_fraction))]
    shares += [round(100 * synth.validation_fraction), round(100 * synth.test_fraction)]
    said = re.findall(
        r"The demo's set is split (\d+)/(\d+)/(\d+) %.*?: (\d+) tracks a genre, (\d+) training, "
        r"(\d+) validation and (\d+) test tracks",
        " ".join(README.split()),
    )
    assert len(said) == 1, "the README should say the demo's split once, in the form this test reads"
    numbers = [int(n) for n in said[0]]
    assert numbers[:3] == shares, f"README: the demo's split is {numbers[:3]} %, its profile gives {shares}"
    assert numbers[3] == synth.tracks_per_genre
    assert numbers[4:] == totals, f"README: the demo's split sizes are {numbers[4:]}, its profile gives {totals}"


def test_every_fmareport_command_of_the_readme_runs(tmp_path, monkeypatch, capsys, smoke_grid):
    """Run in the README's order, each command sees what the ones before it made."""
    shutil.copytree(REPO / "params", tmp_path / "params")
    monkeypatch.chdir(tmp_path)
    for env in ("FMAREPORT_PROFILE", "FMAREPORT_RESULTS_DIR"):
        monkeypatch.delenv(env, raising=False)
    commands = fmareport_commands(README)
    for argv in commands:
        args = parser().parse_args(argv)  # a bad option or name fails here, with argparse's message
        name = args.subcommand
        if name == "fetch":
            # Argument parsing only: the download is 7.6 GB (tests/test_fetch.py runs fetch against
            # a local server). The folder it fetches into is the one the paper profile reads.
            assert Path(args.dir) == Path(load_profile("paper").run.data_dir), argv
            continue
        if name == "summary" and "--no-memory" not in argv:
            argv = [*argv, "--no-memory"]  # the FLOP counts and layer tables run; the timed step does not
        elif name == "predict":  # the grid's trained cells (training one here takes a minute), on a tone
            import numpy as np
            import soundfile as sf

            t = np.arange(3 * 22050) / 22050
            for audio in args.audio:
                sf.write(audio, 0.3 * np.sin(2 * np.pi * 440 * t), 22050, format="MP3")
            argv = [*argv, "--results-dir", str(smoke_grid / "results")]
        elif name not in {"synth", "prepare", "config", "schema", "baseline"}:
            pytest.fail(f"README command `fmareport {shlex.join(argv)}`: tests/test_readme.py has no check for it")
        capsys.readouterr()
        status = cli.main(argv)
        out, err = capsys.readouterr()
        assert status == 0, f"`fmareport {shlex.join(argv)}` exited {status}: {err[-2000:]}"
        check_output(argv, args, out)


def check_output(argv: list[str], args: argparse.Namespace, out: str) -> None:
    """What each command must have done, beyond exiting 0."""
    if args.subcommand == "synth":
        # The options are the ones the workflow derives from a profile's synth settings.
        profiles = [p for p in ("smoke", "demo", "paper") if load_profile(p).run.data_dir == str(args.dir)]
        assert profiles, f"README: `fmareport synth {args.dir}` writes no profile's data_dir"
        given = [w for w in argv[1:] if w != str(args.dir)]
        derived = synth_arguments(load_profile(profiles[0]))
        assert given == derived, f"README's synth options {given}; the {profiles[0]} profile's are {derived}"
    elif args.subcommand == "prepare":
        cfg = load_profile(args.profile)
        synth = cfg.synth
        sizes = split_sizes(synth.tracks_per_genre, synth.validation_fraction, synth.test_fraction)
        counts = ", ".join(f"{s} {sum(g[s] for g in sizes)}" for s in SPLITS)
        assert f"({counts})" in out, out
    elif args.subcommand == "config":
        assert yaml.safe_load(out) == load_config(profile_path(args.profile), *args.cells).to_dict()
    elif args.subcommand == "summary":
        assert "FLOPs" in out and "TFLOP/epoch" in out, out[-2000:]
    elif args.subcommand == "schema":
        assert "$defs" in json.loads(out)
    elif args.subcommand == "predict":
        lines = out.splitlines()
        assert len(lines) == 9 * len(args.audio) and lines[0].startswith(f"{args.audio[0]}: profile {args.profile}"), (
            out
        )
    elif args.subcommand == "baseline":
        cfg = load_profile(args.profile)
        assert load_baselines(cfg.run.results_dir, cfg.profile), "no baseline written"

"""`fmareport` command line: one subcommand per step of the pipeline.

Each subcommand (`COMMANDS`) is a small handler over a library call, importing its modules only
when it runs (`fmareport synth --help` does not import torch). `main` is the one place an error
a user can act on becomes a line on stderr, `fmareport CMD: what and the fix`, and an exit status
(fmareport/errors.py; docs/contracts.md, "Errors"; docs/faults.md, case 14); anything else is a
bug: a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from .config import SynthSettings, synth_settings
from .errors import CommandError, ConfigError, FmareportError, exit_status, one_line

URL_SCHEMES = ("http", "https", "file")  # what `fetch --base-url` can download from (urllib)


def positive(kind: type):
    """An argparse type: a number of `kind` above 0 (argparse names the option and exits 2)."""

    def parse(text: str):
        value = kind(text)  # a ValueError: argparse says "invalid parse value"
        if not value > 0:  # NaN too
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid int value: 'x'"
    return parse


def url(text: str) -> str:
    """An argparse type: an http(s):// or file:// URL."""
    if urlsplit(text).scheme not in URL_SCHEMES:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http://, https:// or file:// URL")
    return text


@contextlib.contextmanager
def failures(*kinds: type[BaseException]) -> Iterator[None]:
    """A library error of `kinds` becomes a CommandError (exit 1) with its message; the project's
    own errors (a ConfigError is a ValueError too) pass through with their own exit status."""
    try:
        yield
    except FmareportError:
        raise
    except kinds as err:
        raise CommandError(str(err)) from None


def _synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write a synthetic data set in FMA's exact on-disk format",
        description="Write a synthetic data set in FMA's exact on-disk format: DIR/fma_metadata/"
        "tracks.csv and genres.csv, DIR/fma_small/NNN/NNNNNN.mp3 and DIR/fma_small/"
        "checksums. Eight genres of synthetic music, split 80/10/10 per genre as FMA is (or as "
        "--validation-fraction and --test-fraction say), plus "
        "medium/large tracks listed in tracks.csv only (prepare leaves them out).",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="output folder (must not exist, or be empty)")
    for name, field in SynthSettings.model_fields.items():  # one option per setting, the config's defaults
        option = "--" + name.replace("_", "-")
        help = f"{field.description} (default: {field.default})"
        if field.annotation is bool:
            p.add_argument(option, action=argparse.BooleanOptionalAction, default=None, help=help)
        else:
            kind = float if field.annotation is float else int
            p.add_argument(option, type=kind, default=None, metavar="X" if kind is float else "N", help=help)
    p.add_argument("--workers", type=int, default=0, metavar="N", help="processes (default: 0 = one per CPU)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace DIR if it is a synthetic set written by this command (any other folder is refused)",
    )

    def run(args) -> int:
        from .data.synth import synthesize

        try:
            given = {k: v for k in SynthSettings.model_fields if (v := getattr(args, k)) is not None}
            out = synthesize(args.dir, synth_settings(given), True, args.workers, args.force)
        except (FileExistsError, ValueError) as err:
            raise ConfigError(str(err)) from None
        print(out)
        return 0

    p.set_defaults(run=run)


def _fetch(sub) -> None:
    from .data.fma import BASE_URL

    p = sub.add_parser(
        "fetch",
        help="download and verify FMA (fma_metadata.zip, fma_small.zip)",
        description="Download fma_metadata.zip (342 MiB) and fma_small.zip (7.2 GiB) into DIR, "
        "resuming interrupted downloads, check their published SHA1s, and extract them "
        "safely (bzip2 zips; every file of fma_small/checksums verified).",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="data folder, e.g. data/fma (the paper profile's data_dir)")
    p.add_argument(
        "--base-url", type=url, default=BASE_URL, metavar="URL", help=f"where the zips are (default: {BASE_URL})"
    )
    p.add_argument("--only", choices=["metadata", "small"], help="fetch one archive only")

    def run(args) -> int:
        from .data.fetch import FetchError, fetch

        logging.basicConfig(level=logging.INFO, format="fmareport fetch: %(message)s")
        with failures(FetchError):
            print(fetch(args.dir, args.base_url, args.only))
        return 0

    p.set_defaults(run=run)


def _prepare(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="decode every track once into a clip store (int16 .npy + index)",
        description="Decode every track of the profile's subset once into a clip store: audio.npy "
        "(int16, n_tracks x clip_samples), index.csv (track_id, genre, label, split) and "
        "manifest.json (settings, counts, skipped tracks with their reason). A complete "
        "store with the same data and settings is reused; a killed run resumes.",
    )
    p.add_argument(
        "data_dir",
        nargs="?",
        metavar="DATA_DIR",
        help="FMA-format root (holds fma_metadata/, fma_small/); default: the profile's data_dir",
    )
    p.add_argument("--profile", required=True, metavar="P", help="profile name (smoke, demo, paper) or a profile YAML")
    p.add_argument("--out", metavar="STORE_ROOT", help="folder that holds the stores (default: the profile's)")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="decode processes (default: the profile's prepare_workers; 0 = one per CPU)",
    )

    def run(args) -> int:
        from .config import load_profile
        from .data.store import prepare

        logging.basicConfig(level=logging.INFO, format="fmareport prepare: %(message)s")
        overrides = {
            k: v
            for k, v in (("data_dir", args.data_dir), ("store_root", args.out), ("prepare_workers", args.workers))
            if v is not None
        }
        cfg = load_profile(args.profile, overrides=overrides)
        with failures(FileNotFoundError, FileExistsError, ValueError):  # a data set prepare cannot use
            store = prepare(cfg)
        m = store.manifest
        counts = ", ".join(f"{s} {n}" for s, n in m["split_counts"].items())
        print(
            f"{store.path}\n{m['n_tracks']} tracks ({counts}), {m['sample_rate']} Hz x {m['clip_samples']} "
            f"samples; skipped {len(m['skipped'])}"
        )
        for s in m["skipped"]:
            print(f"  skipped {s['track_id']:6d}: {s['reason']} ({s['detail']})")
        return 0

    p.set_defaults(run=run)


def _config(sub) -> None:
    p = sub.add_parser(
        "config",
        help="check params files and print the resolved config",
        description="Resolve a profile and cell YAMLs (later wins), check every key, print the config.",
    )
    p.add_argument("profile", help="profile name (smoke, demo, paper) or path to a profile YAML")
    p.add_argument("cells", nargs="*", help="experiment cell YAMLs, applied in order (later wins)")

    def run(args) -> int:
        import yaml

        from .config import load_config, profile_path

        cfg = load_config(profile_path(args.profile), *args.cells)
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0

    p.set_defaults(run=run)


def _summary(sub) -> None:
    p = sub.add_parser(
        "summary",
        help="print the network's layer table for each input kind and what training it costs",
        description="Every layer's output shape and parameters for each input and window, "
        "traced from the model on the meta device (no data, no memory); then, per input and window, "
        "the FLOPs of one training epoch (FlopCounterMode, forward + backward) and the peak memory "
        "and time of one real training step on this CPU at the profile's batch.",
    )
    p.add_argument("--profile", default="paper", help="profile name (smoke, demo, paper) or a profile YAML")
    p.add_argument("cells", nargs="*", help="experiment cell YAMLs applied on top (later wins)")
    p.add_argument(
        "--tracks",
        type=positive(int),
        default=6400,
        metavar="N",
        help="training tracks of an epoch, for its cost (default: 6400, FMA-small's training split)",
    )
    p.add_argument(
        "--no-memory",
        action="store_true",
        help="skip the real training step per input and window that measures peak memory and time "
        "(a minute or two at the paper's scale on a CPU); the FLOP counts stay",
    )

    def run(args) -> int:
        from .config import load_config, profile_path
        from .summary import cost_text, summary_text

        cfg = load_config(profile_path(args.profile), *args.cells)
        print(summary_text(cfg), flush=True)
        print(cost_text(cfg, tracks=args.tracks, memory=not args.no_memory))
        return 0

    p.set_defaults(run=run)


def _run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run one experiment cell without Jupyter (what the notebook calls)",
        description="Train every seed of one cell and write results/<profile>/<cell>.json: "
        "fmareport.experiment.run_cell, the experiment notebook's one call.",
    )
    p.add_argument("--profile", required=True, help="profile name (smoke, demo, paper)")
    p.add_argument("--cell", required=True, help="cell name, e.g. table1/raw_whole (params/<cell>.yaml)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key (a YAML value), e.g. --set epochs=2 --set 'seeds=[0, 1]'",
    )

    def run(args) -> int:
        from .config import load_cell, parse_yaml, shown
        from .data.fma import TracksError

        overrides = {}
        for item in args.set:  # checked before torch is imported: a typo fails at once
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"--set {shown(item)}: expected KEY=VALUE")
            overrides[key.strip()] = parse_yaml(value, f"--set {shown(key.strip(), text=True)}")
        cfg = load_cell(args.profile, args.cell, overrides)
        from .experiment import run_cell

        with failures(FileNotFoundError, FileExistsError, TracksError):  # the store's data set; not any ValueError
            results = run_cell(cfg)
        s = results.summary
        print(
            f"{args.profile} {args.cell}: test accuracy {s.test_acc_last_mean:.3f} ± {s.test_acc_last_std:.3f} "
            f"over {s.n_seeds} seed(s); run {results.run_id}"
        )
        return 0

    p.set_defaults(run=run)


def _baseline(sub) -> None:
    from .results import BASELINES

    p = sub.add_parser(
        "baseline",
        help="fit the baselines (MFCC statistics, FMA's features.csv) on a profile's store",
        description="Features per track, standardised, then a logistic regression or an RBF SVM whose C is "
        "chosen on the validation split, fit on the training split, scored per track on the test split: "
        "results/<profile>/baselines/<name>.json each. Every profile: 'mfcc' (FMA's 7 statistics of 20 "
        "MFCCs of the store's clips). FMA profiles also: FMA's features.csv (its mfcc block, or all 518 "
        "columns) with each classifier.",
    )
    p.add_argument("--profile", required=True, help="profile name (smoke, demo, paper)")
    p.add_argument(
        "--only",
        nargs="+",
        choices=BASELINES,
        metavar="NAME",
        help=f"run these baselines only (default: those of the profile); of {', '.join(BASELINES)}",
    )

    def run(args) -> int:
        from .baseline import baseline_path, run_baselines
        from .config import load_cell
        from .data.fma import FeaturesError, TracksError

        cfg = load_cell(args.profile, None)
        with failures(FileNotFoundError, FileExistsError, TracksError, FeaturesError):  # the data set's files
            done = run_baselines(cfg, args.only)
        for r in done:
            print(
                f"{cfg.profile} baseline {r.variant}: C {r.tuning.chosen:g} (validation {r.val_acc:.3f}), "
                f"test accuracy {r.test_acc:.3f}; wrote {baseline_path(cfg, r.variant)}"
            )
        return 0

    p.set_defaults(run=run)


def _book(sub) -> None:
    p = sub.add_parser(
        "book",
        help="build the HTML report (Jupyter Book) of one profile's results",
        description="Run `jupyter-book build book/` in the repo root for one profile's results: the build "
        "stages the pages into book/generated/ and builds the HTML of exactly the runs on disk.",
    )
    p.add_argument("--profile", default="demo", help="whose results to show: results/<profile>/ (default demo)")
    p.add_argument(
        "--results-dir",
        default=None,
        help="folder holding <profile>/<cell>.json (default: the profile's results_dir, 'results')",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the book's root: holds _config.yml, _toc.yml and book/pages/ (default: this repo)",
    )
    p.add_argument("--no-build", action="store_true", help="only stage book/generated/, do not run jupyter-book")
    p.add_argument(
        "--complete",
        action="store_true",
        help="refuse to build unless every cell of the profile has a current run (what the workflow asks)",
    )

    def run(args) -> int:
        from .config import REPO_ROOT
        from .errors import BookError
        from .report.book import BUILD_COMMAND, GENERATED_DIR, build, require_complete, results_dir_for, stage
        from .results import ResultsError

        root = (args.root or REPO_ROOT).resolve()
        if not (root / "_config.yml").is_file():
            raise ConfigError(
                f"--root {args.root}: not a book root (no _config.yml in {root}): give the folder that holds "
                "_config.yml, _toc.yml and book/pages/, or leave --root out for this repo's"
            )
        with failures(BookError, ResultsError):
            results_dir = results_dir_for(args.profile, args.results_dir)
            if args.complete:
                require_complete(args.profile, results_dir, "Run them (make report reruns them), then build again")
            if args.no_build:
                stage(args.profile, results_dir, root)
                print(f"fmareport book: staged {root / GENERATED_DIR}; build with: cd {root} && {BUILD_COMMAND}")
                return 0
            page = build(args.profile, results_dir, root)
        print(f"fmareport book: results page {page}")
        return 0

    p.set_defaults(run=run)


def _reference(sub) -> None:
    p = sub.add_parser(
        "reference",
        help="write reference/<profile>.json, the published reference, from a finished run of a profile",
        description="From every cell's current results and the baselines of a profile: per cell and seed "
        "the test accuracy and a SHA-256 of the test predictions, with the versions and the machine. The "
        "book's Reproducibility page checks a rerun against it (docs/running.md). Refused unless every "
        "cell has a current run.",
    )
    p.add_argument("--profile", required=True, help="profile name (smoke, demo, paper)")
    p.add_argument("--results-dir", default=None, help="folder holding <profile>/<cell>.json (default: the profile's)")

    def run(args) -> int:
        from .config import REPO_ROOT
        from .errors import BookError
        from .report.book import require_complete, results_dir_for
        from .report.reference import make_reference, write_reference
        from .results import ResultsError, load_baselines

        with failures(BookError, ResultsError):
            results_dir = results_dir_for(args.profile, args.results_dir)
            results = require_complete(
                args.profile,
                results_dir,
                "A reference is a whole run: run them (make report reruns them), then write it",
            )
            ref = make_reference(args.profile, results, load_baselines(results_dir, args.profile))
            path = write_reference(ref, REPO_ROOT)
        print(f"fmareport reference: wrote {path} ({len(ref.cells)} cells, {len(ref.baselines)} baselines)")
        return 0

    p.set_defaults(run=run)


def _schema(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of a results file (generated from the model)")

    def run(args) -> int:
        from .results import schema

        print(json.dumps(schema(), indent=1))
        return 0

    p.set_defaults(run=run)


def _predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="the genres a cell's network gives audio files you bring",
        description="Decode each file (anything libsndfile or its mp3 decoder reads) by the clip store's rule "
        "for the cell (mono, its sample rate, its clip), cut it into the windows the cell trained on, and run "
        "the cell's kept network (its first seed's final weights): each genre's probability, the mean of the "
        "windows' softmax, as for a test track (fmareport.predict).",
    )
    p.add_argument("audio", nargs="+", type=Path, help="audio files")
    p.add_argument("--profile", default="demo", help="profile name (default: demo)")
    p.add_argument(
        "--cell", default=None, help="cell name (default: the profile's best table cell by mean test accuracy)"
    )
    p.add_argument("--results-dir", default=None, help="folder holding <profile>/<cell>.json (default: the profile's)")
    p.add_argument("--json", action="store_true", help="print JSON: a list of {file, probabilities}, with the cell")

    def run(args) -> int:
        from . import predict
        from .report.runs import current_network
        from .results import ResultsError

        with failures(ResultsError):
            network = current_network(args.profile, args.cell, args.results_dir)
            outputs = predict.predict_files(network, args.audio)
        if args.json:
            r = network.result
            head = {"profile": r.profile, "cell": r.cell, "run_id": r.run_id, "seed": r.seed_ids[0]}
            print(json.dumps([head | out for out in outputs], indent=1))
        else:
            print(predict.text(outputs, network))
        return 0

    p.set_defaults(run=run)


def _gpus(sub) -> None:
    p = sub.add_parser(
        "gpus",
        help="list the GPUs this process may use (CUDA_VISIBLE_DEVICES, else nvidia-smi, else torch)",
        description="The GPUs a job may use, as CUDA_VISIBLE_DEVICES entries: that variable's list "
        "when set, else every GPU `nvidia-smi -L` lists (each MIG slice by its UUID), else the devices "
        "torch counts. --count: how many cell jobs can have one, 0 when torch (asked in a subprocess) "
        "sees no usable CUDA device. The Makefile and the Snakefile count them to run one cell per GPU.",
    )
    p.add_argument("--count", action="store_true", help="print only how many")

    def run(args) -> int:
        from .gpus import gpu_count, machine_gpus, visible_gpus

        if args.count:
            print(gpu_count())
            return 0
        visible = visible_gpus()
        names = {g["index"]: f"{g['name']} ({g['uuid']}, driver {g['driver']})" for g in machine_gpus()}
        for entry in visible:
            print(f"{entry}\t{names.get(entry, '')}".rstrip())
        return 0

    p.set_defaults(run=run)


def _on_gpu(sub) -> None:
    p = sub.add_parser(
        "on-gpu",
        help="run a command on a GPU of its own (what the workflow runs each cell job through)",
        description="Claim the first GPU no other job claims or computes on (a claim per GPU UUID, held "
        "until the command exits; wait while there is none), set CUDA_VISIBLE_DEVICES to it, and run "
        "COMMAND in this process's place; the run computing on it holds the GPU's lock itself. Without "
        "a GPU, COMMAND runs as it is.",
    )
    p.add_argument(
        "--lock-dir", type=Path, default=None, help="where the GPU locks live (default: /tmp/fmareport-gpu-locks)"
    )
    p.add_argument(
        "--poll", type=positive(float), default=5.0, metavar="S", help="seconds between tries while all are held"
    )
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")

    def run(args) -> int:
        from .gpus import exec_on_gpu

        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise ConfigError("on-gpu: no command given (fmareport on-gpu -- CMD ...)")
        exec_on_gpu(command, args.lock_dir, args.poll)
        return 1  # not reached: exec replaces this process

    p.set_defaults(run=run)


def _locked(sub) -> None:
    p = sub.add_parser(
        "locked",
        help="run a command holding a lock file, passing a SIGTERM on to all it starts (what make report runs)",
        description="Run COMMAND holding an exclusive lock on LOCK (flock), as `make report` runs its workflow "
        "(build/report.lock): while another holds it, print --busy and exit 75 at once. A SIGTERM or SIGHUP to "
        "this process is passed on to every process under COMMAND (SIGKILL 20 s later); when COMMAND ends, "
        "nothing it started is left running. Exit status: COMMAND's (128 + N for a signal N).",
    )
    p.add_argument("lock", type=Path, help="the lock file (made, with its folder, if missing)")
    p.add_argument("--busy", default="another run holds the lock", metavar="TEXT", help="what to say when it is held")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")

    def run(args) -> int:
        from .workflow import run_locked

        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise ConfigError("locked: no command given (fmareport locked LOCK -- CMD ...)")
        return run_locked(args.lock, command, args.busy)

    p.set_defaults(run=run)


COMMANDS = (_synth, _fetch, _prepare, _config, _summary, _run, _baseline, _book, _reference, _schema, _predict,
            _gpus, _on_gpu, _locked)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fmareport", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")  # on-gpu has a `command`
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (FmareportError, KeyboardInterrupt) as err:  # the one boundary: a line and a status
        print(f"fmareport {args.subcommand}: {one_line(err)}", file=sys.stderr)
        return exit_status(err)


if __name__ == "__main__":
    sys.exit(main())

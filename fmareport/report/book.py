"""The HTML report of one profile's results (Jupyter Book 1): `jupyter-book build book/`.

The book's sources are `_config.yml` and `_toc.yml` at the repo root (`book/_toc.yml`
links to the root's) and the pages in `book/pages/` (MyST notebooks, jupytext). The toc
lists the *executed* pages, which every build stages into `book/generated/` (gitignored)
first: the book's Sphinx extension (`fmareport.report.sphinx_checks`) calls
`stage_for_build` when Sphinx starts, so the plain documented command, after papermill has
run any cells, builds the report of exactly those runs. Staging:

1. picks the profile and results folder (`runs.build_choice`: $FMAREPORT_PROFILE, else the
   profile whose cell result was written last) and reads and validates
   `results/<P>/**.json` (`fmareport.results.load_results`);
2. judges every expected cell (`runs.run_statuses`): current, not run, other settings;
   only current runs reach the tables, and every page names the others;
3. executes each page with papermill (`-p profile P -p results_dir ...`) into
   `book/generated/<page>.ipynb`, all pages in one kernel (`page_kernel`), each after a cell
   that clears what the page before left (`PAGE_RESET`); the pages save their figures under
   `book/generated/figures/` and include them as files;
4. copies each cell's executed notebook `results/<P>/<cell>.ipynb` to
   `book/generated/experiments/<cell>.ipynb`, titled with its cell, with the honesty banner
   and a red box when it is not the run behind the numbers.

Jupyter Book finds `_config.yml` in the root and writes `_build/html` there; it does not
execute the staged notebooks (`execute_notebooks: 'off'`), and any Sphinx warning fails the
build. `fmareport book --profile P` runs the same command with P named (`build`).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from ..config import REPO_ROOT, Config, load_profile
from ..files import mark_owned, remove_owned
from ..results import CellResults, hide_injected_cell, load_results
from .reference import REFERENCE_DIR
from .runs import PROFILE_ENV, RESULTS_ENV, RunStatus, build_choice, run_statuses
from .tables import index_runs, setting_label, setting_of

PAGES = ("intro", "data", "methods", "results", "beyond", "learned", "experiments", "reproducibility")
SOURCE_DIR = Path("book/pages")
GENERATED_DIR = Path("book/generated")
STAGED_MARKER = ".fmareport-staged"
HTML_DIR = Path("_build/html")
RESULTS_PAGE = HTML_DIR / "generated" / "results.html"  # book/ is the source folder


class BookError(RuntimeError):
    """The book cannot be made (no results, a page failed, a Sphinx warning)."""


# The documented command, run in the repo root. A warning fails it through the book's own
# Sphinx extension (sphinx_checks), so the plain command is as strict as `-W --keep-going`.
BUILD_ARGS = ("build", "book/")
BUILD_COMMAND = "jupyter-book " + " ".join(BUILD_ARGS)


def build_command() -> list[str]:
    """The Jupyter Book call: the jupyter-book beside this Python, else the one on PATH."""
    exe = Path(sys.executable).with_name("jupyter-book")
    return [str(exe) if exe.exists() else "jupyter-book", *BUILD_ARGS]


def banner(results: dict[str, CellResults]) -> str:
    """The honesty banner (MyST markdown): which profile and data set made a page's numbers.

    With synthetic data it says plainly that these are not FMA results and how to get them.
    """
    if not results:
        raise BookError("no results to describe")
    first = next(iter(results.values()))
    profile, data = first.profile, first.data
    sources = {r.data.source for r in results.values()}
    if len(sources) > 1:
        raise BookError(f"profile {profile!r} mixes data sources {sorted(sources)}")
    seeds = sorted({s.seed for r in results.values() for s in r.seeds})
    t = data.tracks
    size = f"{t.training:,} training / {t.validation:,} validation / {t.test:,} test tracks, {data.skipped} skipped"
    runs = f"{len(results)} cells, seeds {', '.join(map(str, seeds))}"
    how = (
        "To get FMA results, run the `paper` profile on a GPU machine: `fmareport fetch data/fma`, then "
        "`make report PROFILE=paper` (see {doc}`/generated/reproducibility`)."
    )
    if data.source == "synth":
        return (
            f":::{{admonition}} These are NOT FMA results\n:class: warning\n"
            f"Every number on this page comes from the **`{profile}`** profile run on a **synthetic data "
            f"set** in FMA's on-disk format (`{data.data_dir}`: {size}; {runs}). Its eight "
            f'"genres" are generated sounds named after FMA-small\'s, made to exercise the pipeline: these '
            f"numbers say nothing about the paper's claims on real music. {how}\n:::\n"
        )
    scale = (
        ""
        if profile == "paper"
        else (" This profile is not the paper's scale (see the profile table in {doc}`/generated/methods`).")
    )
    return (
        f":::{{admonition}} FMA-small, profile `{profile}`\n:class: note\n"
        f"Every number on this page comes from the **`{profile}`** profile on **FMA-small** "
        f"(`{data.data_dir}`: {size}; {runs}).{scale}\n:::\n"
    )


@dataclass
class Page:
    """What every page of the book starts from: one profile's results, validated, and the status
    of every cell the profile expects (fmareport.report.runs)."""

    profile: str
    results: dict[str, CellResults]  # cell -> results (as read from its JSON): the current runs only
    runs: dict  # setting -> CellResults (tables.index_runs)
    cfg: Config  # the config of the first cell: the profile's data and scale
    statuses: list[RunStatus]  # every expected cell: current, not run, other settings, other store

    @property
    def synthetic(self) -> bool:
        """Whether the profile ran on the synthetic data set (then no number is set against the paper's)."""
        return self.cfg.data.source == "synth"

    @property
    def task(self) -> str:
        """What the verdicts are about, for captions: 'on the synthetic task' or 'on FMA-small'."""
        return "on the synthetic task" if self.synthetic else "on FMA-small"

    def banner(self):
        """The honesty banner as a notebook output (Markdown): the data, and which cells are missing."""
        from IPython.display import Markdown

        return Markdown(banner(self.results) + runs_note(self.statuses))

    def status_table(self):
        """Every expected cell and what the book makes of it, as an HTML table (id `runs`)."""
        import pandas as pd
        from IPython.display import HTML

        rows = [
            dict(Cell=s.cell, Run=(self.results[s.cell].run_id[:12] if s.shown else "—"), Status=s.label)
            for s in self.statuses
        ]
        return HTML(
            html_table(
                pd.DataFrame(rows).set_index("Cell"),
                "runs",
                f"Every cell of profile {self.profile}: the run its numbers come from (the first 12 digits of "
                "its run id, printed by its notebook), or why it has none in the tables.",
            )
        )

    def reference_check(self, results_dir: str | Path, root: str | Path = REPO_ROOT):
        """These runs against the profile's published reference (fmareport.report.reference): a
        paragraph, the machine facts side by side, and a verdict per cell and baseline (HTML)."""
        import pandas as pd
        from IPython.display import HTML

        from ..results import load_baselines
        from . import reference as ref_mod

        ref = ref_mod.read_reference(self.profile, root)
        path = ref_mod.reference_path(self.profile)
        if ref is None:
            return HTML(
                f"<p>Profile {escape(self.profile)} has no published reference ({escape(str(path))} is not in the "
                "repository): these runs cannot be checked against one.</p>"
            )
        rows = ref_mod.compare(ref, self.results, load_baselines(results_dir, self.profile))
        counts = pd.Series([r["Verdict"] for r in rows]).value_counts()
        said = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
        facts = pd.DataFrame(ref_mod.fact_rows(ref, self.results)).set_index("Fact")
        verdicts = pd.DataFrame(rows).set_index("Run")
        intro = (
            f"<p>{escape(str(path))}: run {escape(str(ref.git_commit or 'outside git')[:12])} of "
            f"{ref.written:%Y-%m-%d}. Of {len(rows)} runs shown here: {escape(said)}.</p>"
        )
        return HTML(
            intro
            + html_table(facts, "reference-facts", "The reference's machine and versions beside these runs'.")
            + html_table(verdicts, "reference-check", "Each run against the reference's (the rule is above).")
        )

    def widths(self, rows: list[dict]):
        """`tables.widths_markdown` of these comparisons over this profile's test tracks and seeds
        (every cell of a profile is tested on the same tracks), as a notebook output."""
        from IPython.display import Markdown

        from .tables import widths_markdown

        seeds = sorted({s.seed for r in self.results.values() for s in r.seeds})
        n_test = next(iter(self.results.values())).data.tracks.test
        return Markdown(widths_markdown(rows, n_test, ", ".join(map(str, seeds))))


def runs_note(statuses: list[RunStatus]) -> str:
    """A warning (MyST) naming the expected cells the tables lack or flag; '' when all are current."""
    missing = [s for s in statuses if not s.shown]
    flagged = [s for s in statuses if s.shown and s.diverged]
    if not missing and not flagged:
        return ""
    lines = [f"* `{s.cell}`: {s.label}" for s in missing + flagged]
    shown = sum(s.shown for s in statuses)
    return (
        f"\n:::{{admonition}} {shown} of {len(statuses)} cells are in the tables\n:class: warning\n"
        "These cells are not in the tables, or are flagged beside their numbers (a diverged run: its last "
        "training loss is far above where it started, or above chance):\n\n"
        + "\n".join(lines)
        + "\n\nRun a missing cell with "
        "its papermill command (or `make report`), then build the book again.\n:::\n"
    )


def open_page(profile: str, results_dir: str | Path) -> Page:
    """The shared preamble of the book's pages: load one profile's results, keep the current runs
    (those whose config is what the profile and the params files give: fmareport.report.runs),
    and index them. The params files are those of the folder holding `results_dir` (the runs'
    working directory), else the repository's."""
    all_results = load_results(results_dir, profile)
    statuses = run_statuses(profile, all_results, Path(results_dir).resolve().parent)
    results = {s.cell: all_results[s.cell] for s in statuses if s.shown}
    if not results:
        raise BookError(
            f"no current results in {Path(results_dir) / profile}: "
            + ("; ".join(f"{s.cell}: {s.label}" for s in statuses if s.state != "not run") or "no cell was run")
        )
    cfg = next(iter(results.values())).config
    return Page(profile, results, index_runs(list(results.values())), cfg, statuses)


PLAYER_SECONDS = 5.0  # of each clip in the page: 5 s of 44.1 kHz int16 WAV is 430 kB, 590 kB as base64


def wav_uri(clip: np.ndarray, sample_rate: int, seconds: float = PLAYER_SECONDS) -> str:
    """A WAV data URI of an int16 clip's first `seconds` (16-bit PCM): sound embedded in the page,
    which plays offline. clip: (n_samples,) int16."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(clip[: int(seconds * sample_rate)]), sample_rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def player(clip: np.ndarray, sample_rate: int, seconds: float = PLAYER_SECONDS) -> str:
    """An HTML audio player of a clip's first `seconds`, its sound embedded (`wav_uri`)."""
    return f'<audio controls preload="none" src="{wav_uri(clip, sample_rate, seconds)}"></audio>'


def audio_players(clips: dict[str, tuple[int, np.ndarray]], sample_rate: int, seconds: float = PLAYER_SECONDS) -> str:
    """An HTML table, one row per genre: its name, the track and an audio player whose sound is
    embedded (a WAV data URI of the clip's first `seconds`), so the page plays offline.
    clips: {genre: (track_id, int16 clip)}."""
    rows = [
        f"<tr><th>{escape(genre)}</th><td>track {track_id:06d}</td><td>{player(clip, sample_rate, seconds)}</td></tr>"
        for genre, (track_id, clip) in clips.items()
    ]
    return '<table id="audio-players" class="fmareport-table"><tbody>' + "".join(rows) + "</tbody></table>"


def player_table(
    rows: list[dict[str, str]], clips: list[np.ndarray], sample_rate: int, table_id: str, caption: str
) -> str:
    """An HTML table of `rows` (each a {column: text} of the same columns, escaped here) with a last
    column "listen": the player of the matching int16 clip (`player`), with an id and a caption."""
    if len(rows) != len(clips):
        raise ValueError(f"{len(rows)} rows for {len(clips)} clips")
    columns = list(rows[0]) if rows else []
    head = "".join(f"<th>{escape(c)}</th>" for c in [*columns, "listen"])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(str(r[c]))}</td>" for c in columns)
        + f"<td>{player(clip, sample_rate)}</td></tr>"
        for r, clip in zip(rows, clips)
    )
    return (
        f'<table id="{escape(table_id)}" class="fmareport-table"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def html_table(df, table_id: str, caption: str) -> str:
    """A DataFrame as an HTML table with an id (tests and links find it) and a caption."""
    html = df.to_html(table_id=table_id, classes="fmareport-table", border=0)
    return html.replace(">", f"><caption>{escape(caption)}</caption>", 1)  # right after <table ...>


def store_path(result: CellResults, results_dir: str | Path) -> Path:
    """The clip store a result ran on.

    A relative path is relative to the folder the run worked in: the one holding the
    results folder (the workflow's working directory), else the repo root.
    """
    path = Path(result.data.store)
    if path.is_absolute():
        return path
    tried = [Path(results_dir).resolve().parent / path, REPO_ROOT / path]
    for candidate in tried:
        if (candidate / "manifest.json").is_file():
            return candidate
    raise BookError(
        f"the clip store {path} of cell {result.cell!r} is in none of "
        f"{', '.join(map(str, tried))}: run the workflow (or `fmareport prepare`) for "
        f"profile {result.profile!r} on this machine"
    )


def results_dir_for(profile: str, results_dir: str | None) -> Path:
    """The folder holding `<profile>/<cell>.json`: --results-dir, else the profile's `results_dir`;
    a relative path is relative to the working directory."""
    if results_dir is None:
        results_dir = load_profile(profile).run.results_dir
    return Path(results_dir).resolve()


# The pages run one after another in one kernel: a kernel's start and the imports every page makes
# (torch, pandas, scipy.stats, matplotlib, seaborn) cost 4-7 CPU-s a page, paid once instead of 7 times
# (docs/running.md, "The test suite's time"). Before each page this cell, which staging adds and then
# takes out of the executed notebook, clears what the page before left: its names (IPython's
# %reset: a page that forgot an import fails as in a kernel of its own; the modules stay imported),
# its open figures, and the record of warnings already shown (resetwarnings, then the same filters
# back: a warning the page before raised at the same line is shown again).
PAGE_RESET = """\
get_ipython().run_line_magic("reset", "-f")
import matplotlib.pyplot as _plt, warnings as _warnings
_plt.close("all")
_filters = _warnings.filters[:]
_warnings.resetwarnings()
_warnings.filters[:] = _filters
del _plt, _warnings, _filters"""
PAGE_RESET_TAG = "fmareport-page-reset"


@contextlib.contextmanager
def page_kernel():
    """A Python kernel manager for the pages: the first page starts its kernel (papermill, through
    nbclient, which leaves a kernel it does not own running), and it is shut down on the way out,
    however the staging ends. Its channels are CurveZMQ-encrypted where the kernel says it can be
    (ipykernel 7.4's does): over plain TCP the kernel warns at start, in the build's output."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name="python3", transport_encryption="auto")
    try:
        yield km
    finally:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)


def _execute_page(name: str, root: Path, profile: str, results_dir: Path, km) -> Path:
    """Run one page with papermill in `km`'s kernel (page_kernel), after PAGE_RESET, into
    book/generated/<name>.ipynb, without that cell, and hide its parameters."""
    import jupytext
    import nbformat
    import papermill

    source = root / SOURCE_DIR / f"{name}.md"
    if not source.is_file():
        raise BookError(f"page source {source} is missing")
    out = root / GENERATED_DIR / f"{name}.ipynb"
    nb = jupytext.read(source)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PAGE_RESET, metadata={"tags": [PAGE_RESET_TAG]}))
    try:
        papermill.execute_notebook(
            nb,
            str(out),
            kernel_name="python3",
            parameters=dict(profile=profile, results_dir=str(results_dir)),
            cwd=str(out.parent),
            progress_bar=False,
            # Written once, at the end (and on an error, with its traceback): papermill would also
            # write the whole notebook as each cell starts and ends, players and figures included
            # (276 writes in a smoke book's build).
            request_save_on_cell_execute=False,
            km=km,
        )
    except papermill.PapermillExecutionError as err:
        raise BookError(
            f"page {source} failed (its output with the traceback: {out}):\n{err.ename}: {err.evalue}"
        ) from None
    done = nbformat.read(out, as_version=4)
    done.cells = [c for c in done.cells if PAGE_RESET_TAG not in c.metadata.get("tags", [])]
    nbformat.write(done, out)
    hide_injected_cell(out)
    return out


def _danger(title: str, text: str) -> str:
    return f":::{{admonition}} {title}\n:class: danger\n{text}\n:::\n"


def _stage_experiment(
    cell: str, result: CellResults, status: RunStatus, results_dir: Path, dest_root: Path, top_banner: str
) -> Path:
    """Copy a cell's executed notebook into the book, titled with its cell, with the banner, and a
    red box when it is not the run behind the tables' numbers (or when it cannot be read)."""
    import nbformat

    source = results_dir / result.profile / f"{cell}.ipynb"
    title = nbformat.v4.new_markdown_cell(f"# {cell}: {setting_label(setting_of(result))}")
    boxes = [nbformat.v4.new_markdown_cell(top_banner)]
    if not status.shown:
        boxes.append(
            nbformat.v4.new_markdown_cell(
                _danger("This run is not in the tables", f"Its status: {status.label}. Rerun the cell to replace it.")
            )
        )
    try:
        nb = nbformat.read(source, as_version=4)
    except FileNotFoundError:
        nb, why = nbformat.v4.new_notebook(), f"Its executed notebook `{source}` is missing."
    except (OSError, ValueError) as err:  # nbformat's NotJSONError and validation errors are ValueErrors
        nb, why = nbformat.v4.new_notebook(), f"Its executed notebook `{source}` cannot be read ({type(err).__name__})."
    else:
        why = notebook_mismatch(nb, result)
    if why:
        boxes.append(
            nbformat.v4.new_markdown_cell(
                _danger(
                    "This notebook is not the run behind the numbers",
                    f"{why} The tables use `{cell}.json` (run `{result.run_id}`); rerun the cell to get its "
                    "notebook back.",
                )
            )
        )
    head = nb.cells[0] if nb.cells else None
    if head is not None and head.cell_type == "markdown" and head.source.startswith("# "):
        # The notebook's own title gives way to the cell's; the text under it stays.
        rest = head.source.partition("\n")[2].strip()
        nb.cells[:1] = [title, *boxes] + ([nbformat.v4.new_markdown_cell(rest)] if rest else [])
    else:
        nb.cells[:0] = [title, *boxes]
    dest = dest_root / f"{cell}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    hide_injected_cell(dest)
    return dest


def notebook_mismatch(nb, result: CellResults) -> str | None:
    """Why an executed cell notebook is not the run that wrote `result` (None: it is).

    The notebook of a run prints `run <run_id>`; a killed, failed or other run's notebook
    does not print this one's, or holds an error.
    """
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    if any(o.output_type == "error" for o in outputs):
        return "This notebook stopped with an error."
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if f"run {result.run_id}" not in text:
        return "This notebook comes from another (or an unfinished) run of the cell."
    return None


def staging_inputs(profile: str, results_dir: Path, root: Path) -> str:
    """A digest of everything staging reads: the profile's result files and the clip store's
    manifest (size and mtime), the page sources, the params files, the published references and
    fmareport's own code (content). Staged pages with the same digest are what staging would make again."""
    import hashlib

    h = hashlib.sha1(f"{profile}\0{results_dir.resolve()}".encode())
    for path in sorted((results_dir / profile).rglob("*")):
        if path.is_file():
            st = path.stat()
            h.update(f"{path.relative_to(results_dir)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    params = (
        results_dir.parent / "params" if (results_dir.parent / "params" / "profiles").is_dir() else REPO_ROOT / "params"
    )
    code = Path(__file__).resolve().parents[1]
    inputs = ((root / SOURCE_DIR, "*.md"), (params, "*.yaml"), (code, "*.py"), (REPO_ROOT / REFERENCE_DIR, "*.json"))
    for folder, pattern in inputs:
        for path in sorted(folder.rglob(pattern)):
            h.update(f"{path.relative_to(folder)}\0".encode() + path.read_bytes())
    for result_path in sorted((results_dir / profile).glob("**/*.json"))[:1]:  # every cell shares the store
        store = Path(json.loads(result_path.read_text(encoding="utf-8")).get("data", {}).get("store", ""))
        manifest = store / "manifest.json"
        if store.is_absolute() and manifest.is_file():
            h.update(f"{manifest.stat().st_size}\0{manifest.stat().st_mtime_ns}".encode())
    return h.hexdigest()


def stage(
    profile: str, results_dir: Path, root: Path = REPO_ROOT, progress: bool = True, digest: str | None = None
) -> dict[str, CellResults]:
    """Stage the book for `profile` into root/book/generated (wiped first); return the results staged.

    The staged folder's marker holds the digest of its inputs (`staging_inputs`, or `digest` when
    the caller has it), written last: a folder whose staging was cut short has none, and is staged
    again."""
    digest = digest or staging_inputs(profile, results_dir, root)
    results = load_results(results_dir, profile)
    if not results:
        raise BookError(
            f"no results in {results_dir / profile}: run a cell first (the README's papermill command), or "
            f"the whole workflow (`make report PROFILE={profile}`)"
        )
    statuses = {s.cell: s for s in run_statuses(profile, results, results_dir.parent)}
    generated = root / GENERATED_DIR
    if generated.exists() and not remove_owned(generated, STAGED_MARKER):  # only a folder staged here is deleted
        raise BookError(f"{generated} exists and was not staged by `fmareport book` (no {STAGED_MARKER}): move it away")
    mark_owned(generated, STAGED_MARKER)  # no digest yet: a staging cut short is staged again
    top_banner = banner({c: r for c, r in results.items() if statuses[c].shown} or results)
    for cell, result in results.items():
        _stage_experiment(cell, result, statuses[cell], results_dir, generated / "experiments", top_banner)
    with page_kernel() as km:
        for name in PAGES:
            if progress:
                print(f"fmareport book: executing page {name}", flush=True)
            _execute_page(name, root, profile, results_dir, km)
    mark_owned(generated, STAGED_MARKER, digest + "\n")
    return results


def stage_for_build(srcdir: str | Path) -> None:
    """What `jupyter-book build book/` does first (fmareport.report.sphinx_checks): stage the pages
    of the profile `runs.build_choice` names, from its results, into `<srcdir>/generated`."""
    profile, results_dir = build_choice()
    if profile is None:
        raise BookError(
            f"no results under {results_dir}: run a cell first, e.g. `papermill book/experiment.ipynb "
            "results/smoke/table1/raw_whole.ipynb -p profile smoke -p cell table1/raw_whole`"
        )
    others = sorted(
        p.name
        for p in results_dir.iterdir()
        if p.is_dir() and p.name != profile and any(j.parent.name != "baselines" for j in p.rglob("*.json"))
    )
    print(
        f"fmareport book: profile {profile!r} from {results_dir}"
        + (f" (results of {', '.join(others)} too: set FMAREPORT_PROFILE to choose)" if others else ""),
        flush=True,
    )
    root = Path(srcdir).resolve().parent
    digest = staging_inputs(profile, results_dir, root)
    marker = root / GENERATED_DIR / STAGED_MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        print("fmareport book: the staged pages are of these results, params and code: kept", flush=True)
        return
    stage(profile, results_dir, root, digest=digest)


def require_complete(profile: str, results_dir: Path, then: str) -> dict[str, CellResults]:
    """Every result of `profile` in `results_dir` (read once), when every expected cell has a current
    run (the workflow's book needs all of them, `fmareport book --complete`, and so does a reference);
    else BookError naming the others and ending with `then`, what to do once they have run."""
    results = load_results(results_dir, profile)
    missing = [s for s in run_statuses(profile, results, results_dir.parent) if not s.shown]
    if missing:
        raise BookError(
            f"profile {profile!r} lacks {len(missing)} current cell run(s) in {results_dir}: "
            + "; ".join(f"{s.cell} ({s.label})" for s in missing)
            + f". {then}"
        )
    return results


def build(profile: str, results_dir: Path, root: Path = REPO_ROOT) -> Path:
    """Run `jupyter-book build book/` in `root` for `profile`'s results (the environment variables of
    `runs.build_choice` name them; the build stages its pages itself); return the results page.
    Any warning fails (BookError)."""
    cmd = build_command()
    print(f"fmareport book: {BUILD_COMMAND}  (in {root})", flush=True)
    env = {**os.environ, PROFILE_ENV: profile, RESULTS_ENV: str(Path(results_dir).resolve())}
    done = subprocess.run(cmd, cwd=root, env=env)
    if done.returncode != 0:
        raise BookError(f"jupyter-book build failed (exit {done.returncode}); its warnings are above")
    page = root / RESULTS_PAGE
    if not page.is_file():
        raise BookError(f"the build finished but {page} is missing")
    return page

"""`fmareport book --profile P`: the HTML report of one profile's results (Jupyter Book 1).

The book's sources are `_config.yml` and `_toc.yml` at the repo root (`book/_toc.yml`
links to the root's) and the pages in `book/pages/` (MyST notebooks, jupytext). The toc
lists the *executed* pages, which this command stages into `book/generated/`
(gitignored) before building:

1. reads and validates `results/<P>/**.json` (`fmareport.report.results.load_results`);
2. executes each page with papermill (`-p profile P -p results_dir ...`) into
   `book/generated/<page>.ipynb`; the pages save their figures under
   `book/generated/figures/` and include them as files;
3. copies each cell's executed notebook `results/<P>/<cell>.ipynb` to
   `book/generated/experiments/<cell>.ipynb`, titled with its cell and given the
   honesty banner;
4. runs `jupyter-book build book/` in the repo root (BUILD_COMMAND): Jupyter Book finds
   `_config.yml` in the root and writes `_build/html` there; the book is not re-executed
   (`execute_notebooks: 'off'`), and any Sphinx warning fails it (`fmareport.report.sphinx_checks`).

It prints the path of the results page, `_build/html/generated/results.html`.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from ..config import REPO_ROOT, Config, from_dict, load_profile
from .results import hide_injected_cell, load_results
from .tables import index_runs, setting_label, setting_of

PAGES = ("intro", "data", "methods", "results", "beyond", "experiments", "reproducibility")
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


def banner(results: dict[str, dict]) -> str:
    """The honesty banner (MyST markdown): which profile and data set made a page's numbers.

    With synthetic data it says plainly that these are not FMA results and how to get them.
    """
    if not results:
        raise BookError("no results to describe")
    first = next(iter(results.values()))
    profile, data = first["profile"], first["data"]
    sources = {r["data"]["source"] for r in results.values()}
    if len(sources) > 1:
        raise BookError(f"profile {profile!r} mixes data sources {sorted(sources)}")
    seeds = sorted({s["seed"] for r in results.values() for s in r["seeds"]})
    t = data["tracks"]
    size = (
        f"{t['training']:,} training / {t['validation']:,} validation / {t['test']:,} test tracks, "
        f"{data['skipped']} skipped"
    )
    runs = f"{len(results)} cells, seeds {', '.join(map(str, seeds))}"
    how = (
        "To get FMA results, run the `paper` profile on a GPU machine: `fmareport fetch data/fma`, then "
        "`make report PROFILE=paper` (see {doc}`/generated/reproducibility`)."
    )
    if data["source"] == "synth":
        return (
            f":::{{admonition}} These are NOT FMA results\n:class: warning\n"
            f"Every number on this page comes from the **`{profile}`** profile run on a **synthetic data "
            f"set** in FMA's on-disk format (`{data['data_dir']}`: {size}; {runs}). Its eight "
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
        f"(`{data['data_dir']}`: {size}; {runs}).{scale}\n:::\n"
    )


@dataclass
class Page:
    """What every page of the book starts from: one profile's results, validated."""

    profile: str
    results: dict[str, dict]  # cell -> results (as read from its JSON)
    runs: dict  # setting -> results (tables.index_runs)
    cfg: Config  # the config of the first cell: the profile's data and scale

    def banner(self):
        """The honesty banner as a notebook output (Markdown)."""
        from IPython.display import Markdown

        return Markdown(banner(self.results))

    def widths(self, rows: list[dict]):
        """`tables.widths_markdown` of these comparisons over this profile's test tracks and seeds
        (every cell of a profile is tested on the same tracks), as a notebook output."""
        from IPython.display import Markdown

        from .tables import widths_markdown

        seeds = sorted({s["seed"] for r in self.results.values() for s in r["seeds"]})
        n_test = next(iter(self.results.values()))["data"]["tracks"]["test"]
        return Markdown(widths_markdown(rows, n_test, ", ".join(map(str, seeds))))


def open_page(profile: str, results_dir: str | Path) -> Page:
    """The shared preamble of the book's pages: load and index one profile's results."""
    results = load_results(results_dir, profile)
    if not results:
        raise BookError(f"no results in {Path(results_dir) / profile}")
    first = next(iter(results.values()))
    cfg = from_dict(first["config"], source=f"results of {first['cell']}")
    return Page(profile, results, index_runs(list(results.values())), cfg)


PLAYER_SECONDS = 5.0  # of each clip in the page: 5 s of 44.1 kHz int16 WAV is 430 kB, 590 kB as base64


def audio_players(clips: dict[str, tuple[int, np.ndarray]], sample_rate: int, seconds: float = PLAYER_SECONDS) -> str:
    """An HTML table, one row per genre: its name, the track and an audio player whose sound is
    embedded (a WAV data URI of the clip's first `seconds`), so the page plays offline.
    clips: {genre: (track_id, int16 clip)}."""
    import soundfile as sf

    rows = []
    for genre, (track_id, clip) in clips.items():
        buffer = io.BytesIO()
        sf.write(buffer, np.asarray(clip[: int(seconds * sample_rate)]), sample_rate, format="WAV", subtype="PCM_16")
        uri = "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        rows.append(
            f"<tr><th>{escape(genre)}</th><td>track {track_id:06d}</td>"
            f'<td><audio controls preload="none" src="{uri}"></audio></td></tr>'
        )
    return '<table id="audio-players" class="fmareport-table"><tbody>' + "".join(rows) + "</tbody></table>"


def html_table(df, table_id: str, caption: str) -> str:
    """A DataFrame as an HTML table with an id (tests and links find it) and a caption."""
    html = df.to_html(table_id=table_id, classes="fmareport-table", border=0)
    return html.replace(">", f"><caption>{escape(caption)}</caption>", 1)  # right after <table ...>


def store_path(result: dict, results_dir: str | Path) -> Path:
    """The clip store a result ran on.

    A relative path is relative to the folder the run worked in: the one holding the
    results folder (the workflow's working directory), else the repo root.
    """
    path = Path(result["data"]["store"])
    if path.is_absolute():
        return path
    tried = [Path(results_dir).resolve().parent / path, REPO_ROOT / path]
    for candidate in tried:
        if (candidate / "manifest.json").is_file():
            return candidate
    raise BookError(
        f"the clip store {path} of cell {result['cell']!r} is in none of "
        f"{', '.join(map(str, tried))}: run the workflow (or `fmareport prepare`) for "
        f"profile {result['profile']!r} on this machine"
    )


def results_dir_for(profile: str, results_dir: str | None) -> Path:
    """The folder holding `<profile>/<cell>.json`: --results-dir, else the profile's `results_dir`;
    a relative path is relative to the working directory."""
    if results_dir is None:
        results_dir = load_profile(profile).results_dir
    return Path(results_dir).resolve()


def _execute_page(name: str, root: Path, profile: str, results_dir: Path) -> Path:
    """Run one page with papermill into book/generated/<name>.ipynb and hide its parameters."""
    import jupytext
    import papermill

    source = root / SOURCE_DIR / f"{name}.md"
    if not source.is_file():
        raise BookError(f"page source {source} is missing")
    out = root / GENERATED_DIR / f"{name}.ipynb"
    try:
        papermill.execute_notebook(
            jupytext.read(source),
            str(out),
            kernel_name="python3",
            parameters=dict(profile=profile, results_dir=str(results_dir)),
            cwd=str(out.parent),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as err:
        raise BookError(
            f"page {source} failed (its output with the traceback: {out}):\n{err.ename}: {err.evalue}"
        ) from None
    hide_injected_cell(out)
    return out


def _stage_experiment(cell: str, result: dict, results_dir: Path, dest_root: Path, top_banner: str) -> Path:
    """Copy a cell's executed notebook into the book, titled with its cell, with the banner."""
    import nbformat

    source = results_dir / result["profile"] / f"{cell}.ipynb"
    if not source.is_file():
        raise BookError(
            f"{source} is missing: the workflow writes it beside {cell}.json (rerun the cell, or the whole workflow)"
        )
    nb = nbformat.read(source, as_version=4)
    new = [
        nbformat.v4.new_markdown_cell(f"# {cell}: {setting_label(setting_of(result))}"),
        nbformat.v4.new_markdown_cell(top_banner),
    ]
    mismatch = notebook_mismatch(nb, result)
    if mismatch:
        new.append(
            nbformat.v4.new_markdown_cell(
                f":::{{admonition}} This notebook is not the run behind the numbers\n:class: danger\n"
                f"{mismatch} The tables use `{cell}.json` (run `{result['run_id']}`); rerun the cell to "
                "get its notebook back.\n:::\n"
            )
        )
    head = nb.cells[0] if nb.cells else None
    if head is not None and head.cell_type == "markdown" and head.source.startswith("# "):
        # The notebook's own title gives way to the cell's; the text under it stays.
        rest = head.source.partition("\n")[2].strip()
        nb.cells[:1] = new + ([nbformat.v4.new_markdown_cell(rest)] if rest else [])
    else:
        nb.cells[:0] = new
    dest = dest_root / f"{cell}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    hide_injected_cell(dest)
    return dest


def notebook_mismatch(nb, result: dict) -> str | None:
    """Why an executed cell notebook is not the run that wrote `result` (None: it is).

    The notebook of a run prints `run <run_id>`; a killed, failed or other run's notebook
    does not print this one's, or holds an error.
    """
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    if any(o.output_type == "error" for o in outputs):
        return "This notebook stopped with an error."
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    if f"run {result['run_id']}" not in text:
        return "This notebook comes from another (or an unfinished) run of the cell."
    return None


def stage(profile: str, results_dir: Path, root: Path = REPO_ROOT, progress: bool = True) -> dict[str, dict]:
    """Stage the book for `profile` into root/book/generated (wiped first); return the results used."""
    results = load_results(results_dir, profile)
    if not results:
        raise BookError(
            f"no results in {results_dir / profile}: run the workflow first "
            f"(snakemake --cores 2 --config profile={profile}, or `make report PROFILE={profile}`)"
        )
    generated = root / GENERATED_DIR
    if generated.exists():  # only a folder this function staged is ever deleted
        if generated.is_symlink() or not (generated / STAGED_MARKER).is_file():
            raise BookError(
                f"{generated} exists and was not staged by `fmareport book` (no {STAGED_MARKER}): move it away"
            )
        shutil.rmtree(generated)
    generated.mkdir(parents=True)
    (generated / STAGED_MARKER).touch()
    top_banner = banner(results)
    for cell, result in results.items():
        _stage_experiment(cell, result, results_dir, generated / "experiments", top_banner)
    for name in PAGES:
        if progress:
            print(f"fmareport book: executing page {name}", flush=True)
        _execute_page(name, root, profile, results_dir)
    return results


def build(root: Path = REPO_ROOT) -> Path:
    """Run Jupyter Book in `root`; return the results page. Any warning fails (BookError)."""
    cmd = build_command()
    print(f"fmareport book: {BUILD_COMMAND}  (in {root})", flush=True)
    done = subprocess.run(cmd, cwd=root)
    if done.returncode != 0:
        raise BookError(f"jupyter-book build failed (exit {done.returncode}); its warnings are above")
    page = root / RESULTS_PAGE
    if not page.is_file():
        raise BookError(f"the build finished but {page} is missing")
    return page

"""`fmareport book --profile P`: the HTML report of one profile's results (Jupyter Book 1).

The book's sources are `_config.yml` and `_toc.yml` at the repo root and the pages in
`book/pages/` (MyST notebooks, jupytext). The toc lists the *executed* pages, which this
command stages into `book/generated/` (gitignored) before building:

1. reads and validates `results/<P>/**.json` (`fmareport.results.load_results`);
2. executes each page with papermill (`-p profile P -p results_dir ...`) into
   `book/generated/<page>.ipynb`; the pages save their figures under
   `book/generated/figures/` and include them as files;
3. copies each cell's executed notebook `results/<P>/<cell>.ipynb` to
   `book/generated/experiments/<cell>.ipynb`, titled with its cell and given the
   honesty banner;
4. runs `jupyter-book build . --all -W --keep-going` in the root (BUILD_COMMAND): the
   book is not re-executed (`execute_notebooks: 'off'`) and any Sphinx warning fails it.

It prints the path of the results page, `_build/html/book/generated/results.html`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path

from .config import REPO_ROOT, ConfigError, load_profile
from .results import ResultsError, hide_injected_cell, load_results
from .tables import setting_label, setting_of

PAGES = ("intro", "data", "methods", "results", "experiments", "reproducibility")
SOURCE_DIR = Path("book/pages")
GENERATED_DIR = Path("book/generated")
HTML_DIR = Path("_build/html")
RESULTS_PAGE = HTML_DIR / GENERATED_DIR / "results.html"


class BookError(RuntimeError):
    """The book cannot be made (no results, a page failed, a Sphinx warning)."""


# `jupyter-book build . --all -W --keep-going`, run in the book's root: every page anew,
# any Sphinx warning fails the build (after reporting them all).
BUILD_ARGS = ("build", ".", "--all", "-W", "--keep-going")
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
    size = (f"{t['training']:,} training / {t['validation']:,} validation / {t['test']:,} test tracks, "
            f"{data['skipped']} skipped")
    runs = f"{len(results)} cells, seeds {', '.join(map(str, seeds))}"
    how = ("To get FMA results, run the `paper` profile on a GPU machine: `fmareport fetch data/fma`, then "
           "`make report PROFILE=paper` (see {doc}`/book/generated/reproducibility`).")
    if data["source"] == "synth":
        return (f":::{{admonition}} These are NOT FMA results\n:class: warning\n"
                f"Every number on this page comes from the **`{profile}`** profile run on a **synthetic data "
                f"set** in FMA's on-disk format (`{data['data_dir']}`: {size}; {runs}). Its eight "
                f"\"genres\" are generated sounds named after FMA-small's, made to exercise the pipeline: these "
                f"numbers say nothing about the paper's claims on real music. {how}\n:::\n")
    scale = "" if profile == "paper" else (
        " This profile is not the paper's scale (see the profile table in {doc}`/book/generated/methods`).")
    return (f":::{{admonition}} FMA-small, profile `{profile}`\n:class: note\n"
            f"Every number on this page comes from the **`{profile}`** profile on **FMA-small** "
            f"(`{data['data_dir']}`: {size}; {runs}).{scale}\n:::\n")


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
    raise BookError(f"the clip store {path} of cell {result['cell']!r} is in none of "
                    f"{', '.join(map(str, tried))}: run the workflow (or `fmareport prepare`) for "
                    f"profile {result['profile']!r} on this machine")


def results_dir_for(profile: str, results_dir: str | None) -> Path:
    """The folder holding `<profile>/<cell>.json`: --results-dir, else the profile's `results_dir`."""
    if results_dir is None:
        results_dir = load_profile(profile).results_dir
    path = Path(results_dir)
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


def _execute_page(name: str, root: Path, profile: str, results_dir: Path) -> Path:
    """Run one page with papermill into book/generated/<name>.ipynb and hide its parameters."""
    import jupytext
    import papermill

    source = root / SOURCE_DIR / f"{name}.md"
    if not source.is_file():
        raise BookError(f"page source {source} is missing")
    out = root / GENERATED_DIR / f"{name}.ipynb"
    try:
        papermill.execute_notebook(jupytext.read(source), str(out), kernel_name="python3",
                                   parameters=dict(profile=profile, results_dir=str(results_dir)),
                                   cwd=str(out.parent), progress_bar=False)
    except papermill.PapermillExecutionError as err:
        raise BookError(f"page {source} failed (its output with the traceback: {out}):\n"
                        f"{err.ename}: {err.evalue}") from None
    hide_injected_cell(out)
    return out


def _stage_experiment(cell: str, result: dict, results_dir: Path, dest_root: Path, top_banner: str) -> Path:
    """Copy a cell's executed notebook into the book, titled with its cell, with the banner."""
    import nbformat

    source = results_dir / result["profile"] / f"{cell}.ipynb"
    if not source.is_file():
        raise BookError(f"{source} is missing: the workflow writes it beside {cell}.json "
                        "(rerun the cell, or the whole workflow)")
    nb = nbformat.read(source, as_version=4)
    new = [nbformat.v4.new_markdown_cell(f"# {cell}: {setting_label(setting_of(result))}"),
           nbformat.v4.new_markdown_cell(top_banner)]
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


def stage(profile: str, results_dir: Path, root: Path = REPO_ROOT, progress: bool = True) -> dict[str, dict]:
    """Stage the book for `profile` into root/book/generated (wiped first); return the results used."""
    results = load_results(results_dir, profile)
    if not results:
        raise BookError(f"no results in {results_dir / profile}: run the workflow first "
                        f"(snakemake --cores 2 --config profile={profile}, or `make report PROFILE={profile}`)")
    generated = root / GENERATED_DIR
    shutil.rmtree(generated, ignore_errors=True)
    generated.mkdir(parents=True)
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="demo", help="whose results to show: results/<profile>/ (default demo)")
    p.add_argument("--results-dir", default=None,
                   help="folder holding <profile>/<cell>.json (default: the profile's results_dir, 'results')")
    p.add_argument("--root", type=Path, default=REPO_ROOT,
                   help="the book's root: holds _config.yml, _toc.yml and book/pages/ (default: this repo)")
    p.add_argument("--no-build", action="store_true", help="only stage book/generated/, do not run jupyter-book")


def run(args: argparse.Namespace) -> int:
    try:
        results_dir = results_dir_for(args.profile, args.results_dir)
        root = args.root.resolve()
        stage(args.profile, results_dir, root)
        if args.no_build:
            print(f"fmareport book: staged {root / GENERATED_DIR}; build with: cd {root} && {BUILD_COMMAND}")
            return 0
        page = build(root)
    except (BookError, ConfigError, ResultsError) as err:
        print(f"fmareport book: {err}", file=sys.stderr)
        return 1
    print(f"fmareport book: results page {page}")
    return 0


if __name__ == "__main__":  # `python -m fmareport.book`, the same as `fmareport book`
    _parser = argparse.ArgumentParser(prog="python -m fmareport.book", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))

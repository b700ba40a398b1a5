"""The HTML report of one profile's results (Jupyter Book 1): `jupyter-book build book/`.

The book's sources are `_config.yml` and `_toc.yml` at the repo root (`book/_toc.yml`
links to the root's; the toc is the one list of the pages, `book_pages`) and the pages in
`book/pages/` (MyST notebooks, jupytext; what each computes: fmareport/report/pages/). The toc
lists the *executed* pages, which every build stages into `book/generated/` (gitignored)
first: the book's Sphinx extension (`fmareport.report.sphinx_checks`) calls
`stage_for_build` when Sphinx starts, so the plain documented command, after papermill has
run any cells, builds the report of exactly those runs. Staging:

1. picks the profile and results folder (`runs.build_choice`: $FMAREPORT_PROFILE, else the
   profile whose cell result was written last) and reads and validates
   `results/<P>/**.json` (`fmareport.results.load_results`);
2. judges every expected cell (`runs.run_statuses`): current, not run, other settings;
   only current runs reach the tables, and every page names the others; and sets the Sphinx
   tags the pages' `{only}` blocks read (`page.tags`, kept in the staged folder's marker);
3. executes each page with papermill (`-p profile P -p results_dir ...`) into
   `book/generated/<page>.ipynb`, all pages in one kernel (`page_kernel`), each after a cell
   that clears what the page before left (`PAGE_RESET`); the pages save their figures under
   `book/generated/figures/` and include them as files;
4. copies each cell's executed notebook `results/<P>/<cell>.ipynb` to
   `book/generated/experiments/<cell>.ipynb`, titled with its cell, with the banner every page
   includes (book/pages/_banner.md) and a red box when it is not the run behind the numbers.

Jupyter Book finds `_config.yml` in the root and writes `_build/html` there; it does not
execute the staged notebooks (`execute_notebooks: 'off'`), and any Sphinx warning fails the
build. `fmareport book --profile P` runs the same command with P named (`build`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import yaml

from ..config import REPO_ROOT, load_profile
from ..errors import BookError
from ..files import mark_owned, read_json, remove_owned
from ..results import CellResults, hide_injected_cell, load_results
from .compare import setting_label, setting_of
from .page import box, tags
from .reference import REFERENCE_DIR
from .runs import PROFILE_ENV, RESULTS_ENV, RunStatus, build_choice, run_statuses

SOURCE_DIR = Path("book/pages")
GENERATED_DIR = Path("book/generated")
STAGED_MARKER = ".fmareport-staged"
HTML_DIR = Path("_build/html")
RESULTS_PAGE = HTML_DIR / "generated" / "results.html"  # book/ is the source folder


# The documented command, run in the repo root. A warning fails it through the book's own
# Sphinx extension (sphinx_checks), so the plain command is as strict as `-W --keep-going`.
BUILD_ARGS = ("build", "book/")
BUILD_COMMAND = "jupyter-book " + " ".join(BUILD_ARGS)
# What a missing result asks for, in every message that says none is there.
RUN_A_CELL = (
    "run a cell first, e.g. `papermill book/experiment.ipynb results/smoke/table1/raw_whole.ipynb -p profile smoke "
    "-p cell table1/raw_whole`, or the whole workflow (`make report PROFILE=<profile>`)"
)
TOC = Path("_toc.yml")  # the book's pages, in order: the one list of them
BANNER = "```{include} /pages/_banner.md\n```"  # what every page shows first (book/pages/_banner.md)


def book_pages(root: Path = REPO_ROOT) -> list[str]:
    """The pages the toc lists (`generated/<name>` -> name), in its order; each has a source in book/pages/."""
    toc = yaml.safe_load((root / TOC).read_text(encoding="utf-8"))
    entries = [toc["root"], *(chapter["file"] for chapter in toc["chapters"])]
    return [Path(entry).name for entry in entries]


def build_command() -> list[str]:
    """The Jupyter Book call: the jupyter-book beside this Python, else the one on PATH."""
    exe = Path(sys.executable).with_name("jupyter-book")
    return [str(exe) if exe.exists() else "jupyter-book", *BUILD_ARGS]


def results_dir_for(profile: str, results_dir: str | None) -> Path:
    """The folder holding `<profile>/<cell>.json`: --results-dir, else the profile's `results_dir`;
    a relative path is relative to the working directory."""
    if results_dir is None:
        results_dir = load_profile(profile).run.results_dir
    return Path(results_dir).resolve()


# The pages run one after another in one kernel: a kernel's start and the imports every page makes
# (torch, pandas, scipy.stats, matplotlib, seaborn) cost 4-7 CPU-s a page, paid once instead of 7 times
# (docs/measurements.md, "The test suite's time"). Before each page this cell, which staging adds and then
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


def _stage_experiment(cell: str, result: CellResults, status: RunStatus, results_dir: Path, dest_root: Path) -> Path:
    """Copy a cell's executed notebook into the book, titled with its cell, with the banner, and a
    red box when it is not the run behind the tables' numbers (or when it cannot be read)."""
    import nbformat

    source = results_dir / result.profile / f"{cell}.ipynb"
    title = nbformat.v4.new_markdown_cell(f"# {cell}: {setting_label(setting_of(result))}")
    boxes = [nbformat.v4.new_markdown_cell(BANNER)]
    if not status.shown:
        boxes.append(
            nbformat.v4.new_markdown_cell(
                box(
                    "This run is not in the tables",
                    f"Its status: {status.label}. Rerun the cell to replace it.",
                    "danger",
                )
            )
        )
    try:
        nb = nbformat.read(source, as_version=4)
    except FileNotFoundError:
        nb, why = nbformat.v4.new_notebook(), f"Its executed notebook {source} is missing."
    except (OSError, ValueError) as err:  # nbformat's NotJSONError and validation errors are ValueErrors
        nb, why = nbformat.v4.new_notebook(), f"Its executed notebook {source} cannot be read ({type(err).__name__})."
    else:
        why = notebook_mismatch(nb, result)
    if why:
        boxes.append(
            nbformat.v4.new_markdown_cell(
                box(
                    "This notebook is not the run behind the numbers",
                    f"{why} The tables use {cell}.json (run {result.run_id}); rerun the cell to get its notebook back.",
                    "danger",
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
    """A digest of everything staging reads: the profile's result files, the clip store's manifest
    and the data set's files (size, mtime; the runs' status reads them), the page sources, the params files, the published references and
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
    for result_path in sorted(p for p in (results_dir / profile).glob("**/*.json") if p.is_file())[:1]:
        try:  # every cell shares the store and data set; a damaged file is named by the load that follows
            data = read_json(result_path)["data"]
            store, data_dir = Path(data["store"]), results_dir.parent / data["data_dir"]  # an absolute one stays
        except (OSError, ValueError, KeyError, TypeError):
            break
        manifest = store / "manifest.json"
        if store.is_absolute() and manifest.is_file():
            h.update(f"{manifest.stat().st_size}\0{manifest.stat().st_mtime_ns}".encode())
        for path in sorted(data_dir.rglob("*")) if data_dir.is_dir() else ():  # the runs' status reads the data
            st = path.lstat()
            h.update(f"{path.relative_to(data_dir)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0".encode())
    return h.hexdigest()


def stage(
    profile: str, results_dir: Path, root: Path = REPO_ROOT, progress: bool = True, digest: str | None = None
) -> set[str]:
    """Stage the book for `profile` into root/book/generated (wiped first); return its Sphinx tags
    (page.tags: what the pages' `{only}` blocks read).

    The staged folder's marker holds the digest of its inputs (`staging_inputs`, or `digest` when
    the caller has it) and the tags, written last: a folder whose staging was cut short has none,
    and is staged again."""
    digest = digest or staging_inputs(profile, results_dir, root)
    results = load_results(results_dir, profile)
    if not results:
        raise BookError(f"no results in {results_dir / profile}: {RUN_A_CELL}")
    statuses = {s.cell: s for s in run_statuses(profile, results, results_dir.parent)}
    generated = root / GENERATED_DIR
    if generated.exists() and not remove_owned(generated, STAGED_MARKER):  # only a folder staged here is deleted
        raise BookError(f"{generated} exists and was not staged by `fmareport book` (no {STAGED_MARKER}): move it away")
    mark_owned(generated, STAGED_MARKER)  # no digest yet: a staging cut short is staged again
    book_tags = tags(results, list(statuses.values()))
    for cell, result in results.items():
        _stage_experiment(cell, result, statuses[cell], results_dir, generated / "experiments")
    with page_kernel() as km:
        for name in book_pages(root):
            if progress:
                print(f"fmareport book: executing page {name}", flush=True)
            _execute_page(name, root, profile, results_dir, km)
    mark_owned(generated, STAGED_MARKER, f"{digest}\n{' '.join(sorted(book_tags))}\n")
    return book_tags


def stage_for_build(srcdir: str | Path) -> set[str]:
    """What `jupyter-book build book/` does first (fmareport.report.sphinx_checks): stage the pages
    of the profile `runs.build_choice` names, from its results, into `<srcdir>/generated`; return
    the build's Sphinx tags (`stage`)."""
    profile, results_dir = build_choice()
    if profile is None:
        where = (
            ""
            if os.environ.get(RESULTS_ENV)
            else f" (results/ in the working directory, {Path.cwd()}: build in the repo root, or set ${RESULTS_ENV})"
        )
        raise BookError(f"no results under {results_dir}{where}: {RUN_A_CELL}")
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
    staged, _, staged_tags = (marker.read_text() if marker.is_file() else "").partition("\n")
    if staged == digest:
        print("fmareport book: the staged pages are of these results, params and code: kept", flush=True)
        return set(staged_tags.split())
    return stage(profile, results_dir, root, digest=digest)


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
    Any warning fails (BookError). What Sphinx itself would fail on with a traceback is checked first:
    no result of the profile, an HTML folder that cannot be written."""
    from ..disk import check_writable

    if not any(p.parent.name != "baselines" for p in (Path(results_dir) / profile).rglob("*.json")):
        raise BookError(f"no results in {Path(results_dir) / profile}: {RUN_A_CELL}")
    check_writable(root / HTML_DIR, "the book's folder (--root)")
    cmd = build_command()
    print(f"fmareport book: {BUILD_COMMAND}  (in {root})", flush=True)
    env = {**os.environ, PROFILE_ENV: profile, RESULTS_ENV: str(Path(results_dir).resolve())}
    done = subprocess.run(cmd, cwd=root, env=env)
    if done.returncode != 0:
        raise BookError(f"jupyter-book build failed (exit {done.returncode}): the lines above say why")
    page = root / RESULTS_PAGE
    if not page.is_file():
        raise BookError(f"the build finished but {page} is missing")
    return page

"""The book's own Sphinx extension (listed in `_config.yml`): what `jupyter-book build book/`
does and must hold to, with no flags.

* Before Sphinx looks for the pages, it stages them from the results
  (`fmareport.report.book.stage_for_build`): the build shows exactly the runs on disk, and
  fails with a one-line message (no results, a results file that is not valid) otherwise.
  It sets the tags the pages' `{only}` blocks read (`page.tags`: synthetic or fma data, the
  paper's scale, cells missing).

* Any Sphinx warning fails the build, after all of them are reported (what `-W --keep-going`
  does on the command line): the plain documented command is as strict as our tests.
* Every failure ends in one line and exit status 1 (`stop`): a build that could not write its
  pages removes its half-written HTML; a good build drops the pages of runs since deleted.
* A page never loads the same inline script twice. sphinx-thebe adds its configuration
  (`const THEBE_JS_URL = ...`) once per read of the environment; declared twice, every
  page logs "Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared".
"""

from __future__ import annotations

import sys
from pathlib import Path

from sphinx.application import Sphinx

from ..files import mark_owned, remove_owned

BUILT_MARKER = ".fmareport-built"  # in the HTML folder a build of ours writes


def _stage(app: Sphinx, config) -> None:
    from ..errors import BookError
    from ..results import ResultsError
    from .book import stage_for_build

    try:
        for tag in stage_for_build(app.srcdir):
            app.tags.add(tag)
        mark_owned(Path(app.outdir), BUILT_MARKER)  # before Sphinx writes: a failed build's HTML can then go
    except (BookError, ResultsError) as err:
        stop(f"fmareport book: {err}")
    except OSError as err:  # a read-only or full disk under book/generated or the HTML folder
        stop(f"fmareport book: cannot write {err.filename} ({err.strerror or err}): free space there or make it "
             "writable, then build again")  # fmt: skip


def stop(line: str) -> None:
    """End the build with one line on stderr and exit status 1, no traceback: Jupyter Book prints the
    traceback of any exception an extension raises (its `build_sphinx` catches Exception), but lets a
    SystemExit through to its command line, which exits with it."""
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(1)


def _one_of_each_script(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts, seen = [], set()
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = attributes.get("body") or getattr(script, "filename", None) or str(script)
        if key not in seen:
            seen.add(key)
            scripts.append(script)
    context["script_files"] = scripts


def _finish(app: Sphinx, exception: Exception | None) -> None:
    """A build that could not write its pages (a read-only or full disk) leaves no half-written HTML that
    looks finished: the output folder is removed (it holds the marker the start put there) and the build
    ends with one line. A build with warnings fails. A good build drops the pages of documents it no
    longer has (a run deleted since the last build), which Sphinx would leave to be served."""
    out = Path(app.outdir)
    if isinstance(exception, OSError):
        remove_owned(out, BUILT_MARKER)
        where = exception.filename or out
        stop(f"fmareport book: cannot write {where} ({exception.strerror or exception}): free space there, or make "
             f"{out.parent} writable, then build again; the half-written {out} was removed")  # fmt: skip
    if exception is None and app._warncount:
        stop(f"fmareport book: {app._warncount} warning(s) above: the book is built with none")
    if exception is None:
        for page in (out / "generated").rglob("*.html"):
            docname = page.relative_to(out).with_suffix("").as_posix()
            if docname not in app.env.found_docs:
                page.unlink()
                (out / "_sources" / docname).with_suffix(".ipynb").unlink(missing_ok=True)


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _stage)
    app.connect("html-page-context", _one_of_each_script)
    app.connect("build-finished", _finish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

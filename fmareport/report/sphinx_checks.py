"""The book's own Sphinx extension (listed in `_config.yml`): what `jupyter-book build book/`
does and must hold to, with no flags.

* Before Sphinx looks for the pages, it stages them from the results
  (`fmareport.report.book.stage_for_build`): the build shows exactly the runs on disk, and
  fails with a one-line message (no results, a results file that is not valid) otherwise.
  It sets the tags the pages' `{only}` blocks read (`page.tags`: synthetic or fma data, the
  paper's scale, cells missing).

* Any Sphinx warning fails the build, after all of them are reported (what `-W --keep-going`
  does on the command line): the plain documented command is as strict as our tests.
* A page never loads the same inline script twice. sphinx-thebe adds its configuration
  (`const THEBE_JS_URL = ...`) once per read of the environment; declared twice, every
  page logs "Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared".
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.errors import SphinxError


class WarningsFailTheBuild(SphinxError):
    category = "fmareport book"


class StagingFailed(SphinxError):
    category = "fmareport book"


def _stage(app: Sphinx, config) -> None:
    from ..errors import BookError
    from ..results import ResultsError
    from .book import stage_for_build

    try:
        for tag in stage_for_build(app.srcdir):
            app.tags.add(tag)
    except (BookError, ResultsError) as err:
        raise StagingFailed(str(err)) from None


def _one_of_each_script(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts, seen = [], set()
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = attributes.get("body") or getattr(script, "filename", None) or str(script)
        if key not in seen:
            seen.add(key)
            scripts.append(script)
    context["script_files"] = scripts


def _fail_on_warnings(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app._warncount:
        raise WarningsFailTheBuild(f"{app._warncount} warning(s) above: the book is built with none")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _stage)
    app.connect("html-page-context", _one_of_each_script)
    app.connect("build-finished", _fail_on_warnings)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

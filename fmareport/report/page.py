"""What every page of the book starts from: one profile's results and the helpers a page shows them with.

A page (book/pages/<page>.md, a MyST notebook) opens its profile's results (`open_page`: the current
runs of every cell the profile expects, and the status of each), then calls its own module
(fmareport/report/pages/<page>.py) for its tables, figures and values. Its sentences are its own: a
value reaches them through MyST-NB's glue (`glue`, then `{glue:text}` in the text); a sentence that
holds only for synthetic or only for FMA data, or only where some cells are missing, sits in an
`{only}` block of a Sphinx tag (`tags`, set by the build: docs/contracts.md, "The book's pages").
The banner every page includes (book/pages/_banner.md) reads the values the Introduction glues
(`Page.glue_banner`).
"""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from ..config import REPO_ROOT, Config
from ..data.store import ClipStore, open_store
from ..errors import BookError
from ..results import CellResults, load_results
from .compare import index_runs
from .runs import RunStatus, run_statuses


@dataclass
class Page:
    """One profile's results, validated, and the status of every cell the profile expects
    (fmareport.report.runs)."""

    profile: str
    results: dict[str, CellResults]  # cell -> results: the current runs only
    runs: dict  # setting -> CellResults of the table cells (compare.index_runs)
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

    @property
    def n_test(self) -> int:
        """Test tracks: every cell of a profile is tested on the same ones."""
        return next(iter(self.results.values())).data.tracks.test

    @property
    def seeds(self) -> list[int]:
        """Every seed any current run trained."""
        return sorted({s for r in self.results.values() for s in r.seed_ids})

    def glue_banner(self) -> None:
        """Glue what the banner (book/pages/_banner.md) says of the data behind every number: the
        profile, the data folder, the tracks per split, the runs; and which cells are missing."""
        data = next(iter(self.results.values())).data
        missing = [s for s in self.statuses if s.flagged]
        glue(
            banner_profile=self.profile,
            banner_data_dir=data.data_dir,
            banner_training=data.tracks.training,
            banner_validation=data.tracks.validation,
            banner_test=data.tracks.test,
            banner_skipped=data.skipped,
            banner_cells=len(self.results),
            banner_expected=len(self.statuses),
            banner_seeds=", ".join(map(str, self.seeds)),
            banner_missing="; ".join(f"{s.cell}: {s.label}" for s in missing) or "none",
        )

    def status_table(self):
        """Every expected cell and what the book makes of it (id `runs`)."""
        import pandas as pd

        rows = [
            dict(Cell=s.cell, Run=(self.results[s.cell].run_id[:12] if s.shown else "—"), Status=s.label)
            for s in self.statuses
        ]
        caption = (
            f"Every cell of profile {self.profile}: the run its numbers come from (the first 12 digits of its run "
            "id, printed by its notebook), or why it has none in the tables."
        )
        return table(pd.DataFrame(rows).set_index("Cell"), "runs", caption)


def tags(results: dict[str, CellResults], statuses: list[RunStatus]) -> set[str]:
    """The Sphinx tags the pages' `{only}` blocks read, from a profile's results and statuses:
    `synthetic` or `fma` (the data the shown runs used), `paper_scale` (the paper profile), and
    `cells_missing` (an expected cell is not in the tables, or is flagged: RunStatus.flagged)."""
    shown = [results[s.cell] for s in statuses if s.shown] or list(results.values())
    sources = {r.data.source for r in shown}
    if len(sources) > 1:
        raise BookError(f"profile {shown[0].profile!r} mixes data sources {sorted(sources)}")
    out = {"synthetic" if sources == {"synth"} else "fma"}
    if shown and shown[0].profile == "paper":
        out.add("paper_scale")
    if any(s.flagged for s in statuses):
        out.add("cells_missing")
    return out


def open_page(profile: str, results_dir: str | Path) -> Page:
    """Load one profile's results, keep the current runs (those whose config is what the profile and
    the params files give: fmareport.report.runs), and index them. The params files are those of the
    folder holding `results_dir` (the runs' working directory), else the repository's."""
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


def glue(**values) -> None:
    """Glue each value into the page (MyST-NB's glue, not displayed): `{glue:text}`name`` in the
    page's text, with a format such as `{glue:text}`name:,d``. Values are text or Python numbers
    (a numpy number becomes one: its text would not read back as a number)."""
    from myst_nb import glue as myst_glue

    for name, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (str, int, float)):
            raise TypeError(f"glue {name!r}: {type(value).__name__} is not text or a number")
        myst_glue(name, value, display=False)


def table(frame, table_id: str, caption: str):
    """A DataFrame as the page's output (`html_table`)."""
    from IPython.display import HTML

    return HTML(html_table(frame, table_id, caption))


def html_table(frame, table_id: str, caption: str) -> str:
    """A DataFrame as an HTML table with an id (tests and links find it) and a caption: one header row
    (the index's names over the row headers, then the columns), the index as row headers, every
    text escaped."""
    names = [*frame.index.names, *frame.columns]
    head = "".join(f'<th scope="col">{escape(str(n or ""))}</th>' for n in names)
    body = []
    for keys, values in zip(frame.index, frame.itertuples(index=False)):
        keys = keys if isinstance(keys, tuple) else (keys,)
        cells = "".join(f'<th scope="row">{escape(str(k))}</th>' for k in keys)
        cells += "".join(f"<td>{escape(_text(v))}</td>" for v in values)
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table id="{escape(table_id)}" class="fmareport-table"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def box(title: str, text: str, kind: str = "warning") -> str:
    """A MyST admonition of `kind` (warning, danger) whose title and text are shown as they are: both
    HTML-escaped, the text in a raw HTML paragraph, so nothing in them (a backtick, markup, a colon fence)
    is read as Markdown or HTML."""
    return f":::{{admonition}} <span>{escape(title)}</span>\n:class: {kind}\n<p>{escape(text)}</p>\n:::\n"


def code_block(text: str, language: str = "text") -> str:
    """`text` as a fenced code block (Markdown) that no run of backticks in it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def interval_text(i, signed: bool = False) -> str:
    """An estimate and its interval (an object with estimate, low and high: stats.Interval, a table's row)
    as '0.412 [0.380, 0.444]' ('+0.050 [-0.020, +0.120]' signed); '[—]' without an interval (NaN bounds)."""
    f = "{:+.3f}" if signed else "{:.3f}"
    bounds = "[—]" if math.isnan(i.low) else f"[{f.format(i.low)}, {f.format(i.high)}]"
    return f"{f.format(i.estimate)} {bounds}"


def p_text(p: float) -> str:
    """A p-value as the tables show it: '0.042', '< 0.001', '—' without a test (NaN)."""
    return "—" if math.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _text(value) -> str:
    """A table cell's text: '—' for a missing number."""
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def store_path(result: CellResults, results_dir: str | Path) -> Path:
    """The clip store a result ran on. A relative path is relative to the folder the run worked in:
    the one holding the results folder (the workflow's working directory), else the repo root."""
    path = Path(result.data.store)
    if path.is_absolute():
        return path
    tried = [Path(results_dir).resolve().parent / path, REPO_ROOT / path]
    for candidate in tried:
        if (candidate / "manifest.json").is_file():
            return candidate
    raise BookError(
        f"the clip store {path} of cell {result.cell!r} is in none of {', '.join(map(str, tried))}: run the "
        f"workflow (or `fmareport prepare`) for profile {result.profile!r} on this machine"
    )


def clip_store(page: Page, results_dir: str | Path) -> ClipStore:
    """The one clip store every shown cell ran on, opened; BookError when the cells ran on
    different stores or the store on disk is not the one they ran on (another fingerprint)."""
    stores = {store_path(r, results_dir): r.data.store_fingerprint for r in page.results.values()}
    if len(stores) != 1:
        raise BookError(f"the cells of profile {page.profile!r} ran on different clip stores: {stores}")
    ((path, fingerprint),) = stores.items()
    store = open_store(path, page.profile)
    if store.fingerprint != fingerprint:
        raise BookError(f"clip store {path} has fingerprint {store.fingerprint}, but the results ran on {fingerprint}")
    return store


# --- sound -------------------------------------------------------------------------------------------

PLAYER_SECONDS = 5.0  # of each clip in the page: 5 s of 44.1 kHz int16 WAV is 430 kB, 590 kB as base64


def player(clip: np.ndarray, sample_rate: int, seconds: float = PLAYER_SECONDS) -> str:
    """An HTML audio player of an int16 clip's first `seconds`, its sound embedded as a WAV data URI
    (16-bit PCM), so the page plays offline. clip: (n_samples,) int16."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(clip[: int(seconds * sample_rate)]), sample_rate, format="WAV", subtype="PCM_16")
    uri = "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<audio controls preload="none" src="{uri}"></audio>'


def player_table(rows: list[dict[str, str]], clips: list[np.ndarray], sample_rate: int, table_id: str, caption: str):
    """An HTML table of `rows` (each a {column: text} of the same columns, the first the row's header)
    with a last column "listen": the player of the matching int16 clip (`player`)."""
    from IPython.display import HTML

    if len(rows) != len(clips):
        raise ValueError(f"{len(rows)} rows for {len(clips)} clips")
    columns = list(rows[0]) if rows else []
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in [*columns, "listen"])
    body = "".join(
        f'<tr><th scope="row">{escape(str(r[columns[0]]))}</th>'
        + "".join(f"<td>{escape(str(r[c]))}</td>" for c in columns[1:])
        + f"<td>{player(clip, sample_rate)}</td></tr>"
        for r, clip in zip(rows, clips)
    )
    return HTML(
        f'<table id="{escape(table_id)}" class="fmareport-table"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )

"""The book (fmareport.report.book): built from real smoke results, checked in its HTML and in a browser.

The session's smoke grid (conftest.smoke_grid) gives the results; the book is staged and
built with `fmareport book`, which runs the README's `jupyter-book build book/` as written,
in a scratch folder holding copies of _config.yml, _toc.yml, book/_toc.yml and book/pages/,
so a test run never touches the repo's own book/generated/ or _build/.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import numpy as np
import pytest
from bs4 import BeautifulSoup
from fakes import of_config

from fmareport.config import Config
from fmareport.report import book
from fmareport.report.paper import PAPER
from fmareport.report.stats import CONFIDENCE
from fmareport.workflow import expected_cells

REPO = Path(__file__).resolve().parents[1]
INPUT = {"raw": "1D", "spectrogram": "2D", "both": "1D+2D"}
PAGES = [f"generated/{p}.html" for p in book.book_pages()]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SPHINX_WARNING = re.compile(r"^(.*: )?(WARNING|ERROR|CRITICAL): ", re.M)


@pytest.fixture(scope="session")
def smoke_results(smoke_grid) -> Path:
    """The smoke profile's real results (the workflow's `results` target)."""
    return smoke_grid / "results"


def _book_root(tmp_path_factory, name: str) -> Path:
    root = tmp_path_factory.mktemp(name)
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / f, root / f)
    shutil.copytree(REPO / "book" / "pages", root / "book" / "pages")
    shutil.copytree(REPO / "book" / "_static", root / "book" / "_static")
    (root / "book" / "_toc.yml").symlink_to("../_toc.yml")  # as in the repo
    return root


@pytest.fixture(scope="session")
def built(smoke_results, tmp_path_factory) -> tuple[Path, str, dict[str, dict]]:
    """(book root, build output, results by cell): `python -m fmareport.book` on the smoke results."""
    root = _book_root(tmp_path_factory, "book")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmareport.cli",
            "book",
            "--profile",
            "smoke",
            "--results-dir",
            str(smoke_results),
            "--root",
            str(root),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"book build failed:\n{output[-6000:]}"
    results = {  # every cell's results file (the baseline, in baselines/, is not a cell)
        str(p.relative_to(smoke_results / "smoke").with_suffix("")): json.loads(p.read_text())
        for p in sorted((smoke_results / "smoke").rglob("*.json"))
        if "baselines" not in p.parts
    }
    return root, output, results


def html(root: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((root / "_build/html" / page).read_text(), "html.parser")


def accuracies(result: dict) -> np.ndarray:
    """Each seed's test accuracy, from a results JSON's predictions and labels (computed here, not by the package)."""
    labels = np.asarray(result["test"]["labels"])
    return np.array([np.mean(np.argmax(s["test_probs"], axis=1) == labels) for s in result["seeds"]])


def label(result: dict) -> str:
    """The row label a results JSON's setting must have in the tables (spelled out independently)."""
    c = result["config"]
    text = f"{INPUT[c['input']]} input, {'segmented' if c['segmented'] else 'not segmented'}"
    return text + (f", dropout {c['dropout']:g}" if c["dropout"] else "")


def test_the_book_is_built_by_the_documented_command(built):
    """`fmareport book` runs exactly the README's `jupyter-book build book/` (no flags)."""
    readme = (REPO / "README.md").read_text()
    assert book.BUILD_COMMAND == "jupyter-book build book/"
    assert f"\n{book.BUILD_COMMAND}\n" in readme or f"`{book.BUILD_COMMAND}`" in readme
    _, output, _ = built
    assert f"fmareport book: {book.BUILD_COMMAND}" in output
    # The build stages its own pages (the book's Sphinx extension): no step of fmareport's before it.
    assert "fmareport book: profile 'smoke' from " in output and "fmareport book: executing page results" in output


def test_build_has_zero_warnings_and_prints_the_results_page(built):
    root, output, _ = built
    assert "build succeeded" in output and "with problems" not in output
    assert not SPHINX_WARNING.search(output), SPHINX_WARNING.search(output).group(0)
    assert "[IPKernelApp] WARNING" not in output  # the pages' kernel on plain TCP would warn (book.page_kernel)
    assert f"results page {root / book.RESULTS_PAGE}" in output
    for page in PAGES:
        assert (root / "_build/html" / page).is_file(), page


@pytest.mark.parametrize("table_id, name", [("table-1", "Table 1"), ("table-2", "Table 2"), ("table-3", "Table 3")])
def test_tables_hold_the_papers_values_and_ours_from_the_results_json(built, table_id, name):
    root, _, results = built
    table = html(root, "generated/results.html").find("table", id=table_id)
    assert table is not None, f"{table_id} missing from the results page"
    rows = {
        tr.th.get_text(strip=True): [td.get_text(strip=True) for td in tr.find_all("td")]
        for tr in table.tbody.find_all("tr")
    }
    by_label = {label(r): r for r in results.values() if r["config"]["base"] is None}  # table cells
    expected = PAPER[name]
    assert len(rows) == len(expected)
    for setting, paper in expected.items():
        kind, segmented, dropout = setting
        row_label = label({"config": {"input": kind, "segmented": segmented, "dropout": dropout}})
        r, cells = by_label[row_label], rows[row_label]
        accs = accuracies(r)
        std = accs.std(ddof=1) if len(accs) > 1 else 0.0
        assert [cells[i] for i in (0, 1, 2)] == [f"{paper:.3f}", f"{accs.mean():.3f} ± {std:.3f}", str(len(accs))], (
            row_label
        )
        assert len(cells) == 4  # synthetic: no "Ours − paper" (another task's accuracy judges nothing of the paper)
        low, high = map(
            float, re.fullmatch(r"\[(\S+), (\S+)\]", cells[3]).groups()
        )  # the interval over tracks and seeds
        assert low <= round(accs.mean(), 3) <= high, (row_label, cells[3])


def test_claims_are_judged_by_intervals_paired_on_the_test_tracks(built):
    """One seed per smoke cell: the intervals are over the 4 test tracks' artists alone, paired by seed
    only between settings of the same input (the same initial weights)."""
    root, _, results = built
    page = html(root, "generated/results.html")
    summary = page.find("table", id="claims-summary")
    verdicts = {tr.th.get_text(strip=True): tr.find_all("td")[-1].get_text(strip=True) for tr in summary.tbody("tr")}
    assert set(verdicts) == {
        "2D beats 1D",
        "1D+2D adds nothing over 2D ('no advantages')",
        "1D+2D adds nothing over 2D ('similar')",
        "Segmenting helps",
        "Dropout hurts",
    }
    assert all(re.match(r"(holds|does not hold|inconclusive)", v) for v in verdicts.values()), verdicts
    assert "tested on the synthetic task" in summary.caption.get_text(" ", strip=True)
    first = next(iter(results.values()))
    n_test, n_artists = first["data"]["tracks"]["test"], len(set(first["test"]["artist_ids"]))
    claims = page.find("table", id="claims")
    headers = [th.get_text(strip=True) for th in claims.thead.tr("th")][2:]  # 2 index columns, then the data
    assert "Interval from" not in headers  # one method for every row: said once, in the caption
    assert {"Paper's word: test", "Ours a − b, interval", "Detectable", "p (Holm)", "Verdict"} <= set(headers)
    assert "Paper a − b" not in headers  # synthetic: the paper's differences are not set beside ours
    caption = claims.caption.get_text(" ", strip=True)
    unit = f"{n_artists} artists ({n_test} paired tracks)"  # the tracks resampled by artist, FMA's unit
    assert f"Interval from: t over {unit} and the seeds; 1 seed: no seed spread." in caption, caption
    assert "†: seeds paired (the same input and seeds" in caption
    column = headers.index("Ours a − b, interval")
    for tr in claims.tbody("tr"):
        comparison = tr("th")[-1].get_text(strip=True)
        a, b = (side.split(" input")[0] for side in comparison.split(" − "))
        # the same input: the same initial weights, and seeds paired
        assert ("†" in tr("td")[column].get_text(strip=True)) == (a == b), comparison


def _widths(table, headers) -> dict[str, tuple[float, float, float]]:
    """{comparison (the row's last header): (low, high, width)} of each row of a claims or ablations table
    that has a 95 % interval with some spread."""
    out = {}
    column = next(
        i for i, h in enumerate(headers) if h.endswith(f"{CONFIDENCE:.0%} interval") or h.endswith("interval")
    )
    test = headers.index("Paper's word: test") if "Paper's word: test" in headers else None
    for tr in table.tbody("tr"):
        cells = [td.get_text(strip=True) for td in tr("td")]
        if test is not None and cells[test].endswith("90 %"):  # a margin test: its 90 % interval
            continue
        interval = re.search(r"\[.*\]|—", cells[column])[0]
        if interval != "—":
            low, high = map(float, interval.strip("[]").split(","))
            width = float(cells[headers.index("Width")]) if "Width" in headers else round(high - low, 3)
            if high > low:  # a zero-width interval (no spread) is left out of the widths
                out[tr("th")[-1].get_text(strip=True)] = (low, high, width)
    return out


def test_the_book_states_the_widths_its_intervals_achieved(built):
    """Results and Beyond: a table of the widths of the claims' and the ablations' 95 % intervals, one per
    comparison, each the high - low of the 95 % interval the claims or ablations table shows for it (the
    margin tests show their 90 % one), and a caption counting those narrower than their effects, over
    the test tracks named."""
    root, _, results = built
    n_test = next(iter(results.values()))["data"]["tracks"]["test"]
    for page_name, table_id, widths_id, skip in (("results", "claims", "claim-widths", 2),
                                                  ("beyond", "ablations", "ablation-widths", 1)):  # fmt: skip
        page = html(root, f"generated/{page_name}.html")
        table = page.find("table", id=table_id)
        headers = [th.get_text(strip=True) for th in table.thead.tr("th")][skip:]  # after the index columns
        rows = _widths(table, headers)  # {comparison: (low, high, width)} of the 95 % rows
        assert rows, page_name
        widths = page.find("table", id=widths_id)
        listed = {tr.th.get_text(strip=True): float(tr("td")[0].get_text()) for tr in widths.tbody("tr")}
        for name, (_, _, width) in rows.items():  # an ablation's row is named "<ablation> − <its base>" there
            (listed_width,) = [w for k, w in listed.items() if k == name or k.startswith(f"{name} − ")]
            assert listed_width == pytest.approx(width, abs=0.0015), (page_name, name)
        if page_name == "results":  # comparisons of the claims that have an interval, each once
            shown = {tr("th")[-1].get_text(strip=True) for tr in table.tbody("tr") if "[" in tr.get_text()}
            assert set(rows) <= set(listed) <= shown and len(listed) == len(widths.tbody("tr"))
        caption = widths.caption.get_text(" ", strip=True)
        assert f"over {n_test:,} test tracks" in caption and re.search(rf": \d+ of {len(listed)} narrower", caption)


def test_architecture_figures_are_drawn_files_in_the_methods_page(built):
    root, _, _ = built
    page = root / "_build/html/generated"
    srcs = [img["src"] for img in html(root, "generated/methods.html").find_all("img")]
    for name in ("fig1_architecture.png", "fig2_first_layers.png"):
        src = next((s for s in srcs if s.endswith(name)), None)
        assert src is not None, f"{name} not referenced by methods.html ({srcs})"
        path = (page / src).resolve()
        assert path.is_file() and path.stat().st_size > 20_000, path


def test_every_page_has_the_honesty_banner(built):
    root, _, results = built
    cells = [f"generated/experiments/{cell}.html" for cell in results]
    for page in PAGES + cells:
        text = html(root, page).get_text(" ", strip=True)
        assert "These are NOT FMA results" in text and "smoke" in text, page
        assert "make report PROFILE=paper" in text, page


def test_experiment_pages_are_the_executed_cell_notebooks(built):
    root, _, results = built
    for cell in results:
        doc = html(root, f"generated/experiments/{cell}.html")
        assert doc.find("h1").get_text(strip=True).startswith(f"{cell}:"), cell
        assert "Parameters" not in [h.get_text(strip=True) for h in doc.find_all(["h1", "h2"])]
        assert doc.find("img") is not None, f"{cell}: the executed notebook's figures are missing"
        staged = nbformat.read(root / f"book/generated/experiments/{cell}.ipynb", as_version=4)
        injected = [c for c in staged.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and all("remove-cell" in c.metadata["tags"] for c in injected), cell


def test_no_page_shows_a_python_warning_or_error(built):
    """Stray stderr (a library's warning, a traceback) must not reach the reader."""
    root, _, _ = built
    for nb_path in sorted((root / "book/generated").rglob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        streams = [
            o.text
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if o.output_type == "stream" and o.name == "stderr"
        ]
        shown = [t for t in streams if re.search(r"Warning|Error|Traceback", t)]
        assert not shown, f"{nb_path.relative_to(root)} shows: {shown[0][:300]}"


def test_no_broken_image_or_link(built):
    root, _, _ = built
    site = root / "_build/html"
    pages = sorted(site.glob("generated/**/*.html")) + [site / "index.html"]
    assert len(pages) > len(PAGES)
    ids: dict[Path, set[str]] = {}  # each page's anchors, read once
    for page in pages:
        doc = BeautifulSoup(page.read_text(), "html.parser")
        for img in doc.find_all("img"):
            src = img["src"]
            assert not urlsplit(src).scheme, f"{page.name}: image from the network: {src}"
            assert (page.parent / unquote(src)).resolve().is_file(), f"{page.name}: broken image {src}"
        for a in doc.find_all("a", href=True):
            url = urlsplit(a["href"])
            if url.scheme or a["href"].startswith("mailto:"):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            assert target.is_file(), f"{page.relative_to(site)}: broken link {a['href']}"
            if url.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = {t["id"] for t in BeautifulSoup(target.read_text(), "html.parser").find_all(id=True)}
                assert unquote(url.fragment) in ids[target], f"{page.relative_to(site)}: broken anchor {a['href']}"


def test_a_warning_fails_the_build(built, smoke_results, tmp_path):
    root, _, _ = built
    copy = tmp_path / "book"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("_build"))
    page = copy / "book/generated/results.ipynb"
    nb = nbformat.read(page, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("```{figure} figures/no_such_figure.png\nmissing\n```"))
    nbformat.write(nb, page)
    # The build keeps the staged pages (same results, page sources and code) and so reads the edit.
    with pytest.raises(book.BookError, match="jupyter-book build failed"):
        book.build("smoke", smoke_results, copy)


def test_no_results_is_a_clear_error(tmp_path):
    with pytest.raises(book.BookError, match="no results in .*run a cell first"):
        book.stage("smoke", tmp_path, root=tmp_path)


def test_the_banner_on_fma_results_names_its_data_and_says_no_synthetic_words(monkeypatch):
    """The banner's FMA block names the profile and data; its words are the page source's, its values
    what the Introduction glues (Page.glue_banner), every one of them."""
    import myst_nb

    from fmareport.report.page import Page
    from fmareport.report.runs import RunStatus

    data = {
        "source": "fma",
        "data_dir": "data/fma",
        "skipped": 6,
        "tracks": {"training": 6394, "validation": 800, "test": 800},
    }
    cfg = Config(profile="paper", cell="table1/raw_whole", seeds=[0, 1], epochs=1)
    result = of_config(cfg, correct=np.ones((2, 800), bool), data=data)
    statuses = [RunStatus("table1/raw_whole", "current"), RunStatus("table1/raw_segmented", "not run")]
    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: glued.__setitem__(name, value))
    Page("paper", {"table1/raw_whole": result}, {}, cfg, statuses).glue_banner()
    assert (glued["banner_profile"], glued["banner_data_dir"], glued["banner_training"]) == ("paper", "data/fma", 6394)
    assert glued["banner_seeds"] == "0, 1" and glued["banner_missing"] == "table1/raw_segmented: not run"
    source = (REPO / "book/pages/_banner.md").read_text()
    assert set(re.findall(r"::(banner_\w+):", source)) == set(glued)  # every value the text names, and no other
    fma = source[source.index("{only} fma") : source.index("{only} cells_missing")]
    assert "FMA-small, profile" in fma and "NOT FMA" not in fma and "synthetic" not in fma


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        f"no headless browser found (looked for {', '.join(BROWSERS)} on PATH): "
        "the browser check did not run; install Debian's `chromium` (.ci/run does)"
    )


def _chromium(browser: str, profile_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile_dir}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _probe(browser: str, profile_dir: Path, page: Path, anchor: str, replacement: str, pre_id: str, *args: str):
    """Load a copy of `page` with a probe script put in place of `anchor` (and chromium's `args`);
    return the JSON the probe writes into `<pre id=pre_id>` once the page has loaded."""
    probe = page.with_name(page.stem + "-probe.html")
    probe.write_text(page.read_text().replace(anchor, replacement, 1))
    try:
        dom = _chromium(browser, profile_dir, *args, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()).stdout
    finally:
        probe.unlink()
    match = re.search(rf'<pre id="{pre_id}"[^>]*>(.*?)</pre>', dom, re.S)
    assert match, f"{page.name}: the probe did not run in the browser: {dom[-1000:]}"
    return json.loads(html_lib.unescape(match.group(1)))


# Appended to a copy of a page: after load, record each table's rendered box and style, and whether
# its box scrolls (some column is out of sight).
VISIBILITY_PROBE = """<script>
window.addEventListener("load", () => {
  const out = {};
  for (const t of document.querySelectorAll("table[id]")) {
    const r = t.getBoundingClientRect(), s = getComputedStyle(t), box = t.parentElement;
    out[t.id] = {width: r.width, height: r.height, display: s.display, visibility: s.visibility,
                 text: t.innerText.length, right: r.right, viewport: document.documentElement.clientWidth,
                 cut: box.scrollWidth > box.clientWidth + 1};
  }
  const pre = document.createElement("pre");
  pre.id = "fmareport-visibility";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def test_results_page_renders_in_headless_chromium(built, tmp_path):
    from PIL import Image, ImageStat

    browser = _browser()
    root, _, _ = built
    page = root / book.RESULTS_PAGE
    shot = tmp_path / "results.png"
    done = _chromium(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri())
    assert shot.is_file(), f"no screenshot: {done.stderr[-2000:]}"
    gray = Image.open(shot).convert("L")
    assert gray.size == (1280, 2400)
    assert ImageStat.Stat(gray).stddev[0] > 20, "the screenshot is (nearly) blank"

    boxes = _probe(browser, tmp_path / "profile", page, "</body>", VISIBILITY_PROBE + "</body>", "fmareport-visibility")
    for table_id in ("table-1", "table-2", "table-3", "claims"):
        box = boxes[table_id]
        assert box["display"] != "none" and box["visibility"] == "visible", (table_id, box)
        assert box["width"] > 300 and box["height"] > 50 and box["text"] > 50, (table_id, box)


def test_the_widest_tables_fit_a_1280_pixel_window(built, tmp_path):
    """The claims and the ablations tables show every column at 1280 px: no column cut off or
    scrolled out of sight."""
    browser = _browser()
    root, _, _ = built
    for name, table_id in (("results", "claims"), ("beyond", "ablations")):
        page = root / "_build/html/generated" / f"{name}.html"
        probe = VISIBILITY_PROBE + "</body>"
        boxes = _probe(browser, tmp_path / "profile", page, "</body>", probe, "fmareport-visibility",
                       "--window-size=1280,2400")  # fmt: skip
        box = boxes[table_id]
        assert box["viewport"] > 1200, box  # the window size took
        assert not box["cut"] and box["right"] <= box["viewport"], (name, box)


# Put first in <head> of a copy of a page: records every uncaught error and every console.error /
# console.warn from the first script on, and writes them into the page once it has loaded.
CONSOLE_PROBE = """<script>
window.__fmareport_console = [];
window.addEventListener("error", e => window.__fmareport_console.push("uncaught: " + e.message));
for (const level of ["error", "warn"]) {
  const original = console[level];
  console[level] = (...args) => { window.__fmareport_console.push(level + ": " + args.join(" ")); original(...args); };
}
window.addEventListener("load", () => {
  const pre = document.createElement("pre");
  pre.id = "fmareport-console";
  pre.textContent = JSON.stringify(window.__fmareport_console);
  document.body.appendChild(pre);
});
</script>"""


def test_no_page_logs_a_console_error_in_headless_chromium(built, tmp_path):
    """Every page loads with no uncaught JavaScript error and no console error or warning."""
    browser = _browser()
    root, _, results = built
    site = root / "_build/html"
    # (index.html only redirects to generated/intro.html, which is one of PAGES)
    pages = [*(site / p for p in PAGES), *(site / f"generated/experiments/{cell}.html" for cell in sorted(results)[:1])]
    for page in pages:
        logged = _probe(browser, tmp_path / "profile", page, "<head>", "<head>" + CONSOLE_PROBE, "fmareport-console")
        assert not logged, f"{page.relative_to(site)} logs: {logged[:3]}"


def test_beyond_the_paper_shows_each_ablation_and_the_results_page_the_baseline(built):
    root, _, results = built
    ablations = sorted(c for c in results if c.startswith("ablations/"))
    assert ablations == [c for c in expected_cells(REPO / "params", "smoke") if c.startswith("ablations/")]
    table = html(root, "generated/beyond.html").find("table", id="ablations")
    rows = {tr.th.get_text(strip=True): [td.get_text(strip=True) for td in tr("td")] for tr in table.tbody("tr")}
    assert sorted(rows) == ablations
    for cell in ablations:
        base = results[cell]["config"]["base"]
        assert rows[cell][0].endswith(f"(from {base})"), cell  # what it changes, from its base cell
        assert re.fullmatch(r"helps|hurts|no clear effect|no test \(1 seed\)", rows[cell][-1]), cell  # its effect


def test_the_results_page_shows_the_tuned_baseline_against_each_cell_and_fmas_figures_as_context(built, smoke_results):
    root, _, _ = built
    page = html(root, "generated/results.html")
    baseline = json.loads((smoke_results / "smoke" / "baselines" / "mfcc.json").read_text())
    summary = page.find("table", id="baselines")
    assert [tr.th.get_text(strip=True) for tr in summary.tbody("tr")] == ["Our clips: MFCC (140) + LR"]  # synthetic
    tuning = page.find("table", id="baseline-tuning")
    cs = [tr.th.get_text(strip=True) for tr in tuning.tbody("tr")]
    assert cs == ["0.001", "0.01", "0.1", "1", "10", "100"]
    marks = [td.get_text(strip=True) for tr in tuning.tbody("tr") for td in tr("td")]
    assert sum(m.endswith("●") for m in marks) == 1  # the C it kept
    val = baseline["tuning"]["val_acc"]
    chosen = baseline["tuning"]["grid"][val.index(max(val))]  # the first C with the best validation accuracy
    assert cs[[m.endswith("●") for m in marks].index(True)] == f"{chosen:g}"
    cells = [td.get_text(strip=True) for td in summary.tbody.tr("td")]
    assert cells[:3] == ["140", f"{chosen:g}", f"{max(val):.3f}"]
    test_acc = accuracies({"test": baseline["test"], "seeds": [baseline]})[0]
    assert cells[3].startswith(f"{test_acc:.3f} [")
    paired = page.find("table", id="baseline")
    models = [tr.th.get_text(strip=True) for tr in paired.tbody("tr")]
    assert len(models) == 8 and all(m.startswith("CNN, ") for m in models)  # the 8 table cells
    heads = [th.get_text(strip=True) for th in paired.thead("th")]
    assert "CNN − Our clips: MFCC (140) + LR" in heads
    assert all(re.fullmatch(r"[+-]\d\.\d{3} (\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]|\[—\])", tr("td")[1].get_text(strip=True))
               for tr in paired.tbody("tr"))  # fmt: skip
    published = page.find("table", id="fma-published").get_text(" ", strip=True)
    assert "57.83 % (58)" in published and "60.98 % (61)" in published  # MFCC + LR, + SVM on fma_medium
    text = page.get_text(" ", strip=True)
    assert "These baselines ran on the synthetic task" in text and "This is not the same task." in text
    assert "arXiv:1612.01840" in text and "16 top genres" in text


def test_the_data_page_plays_each_genre_offline(built):
    root, _, _ = built
    players = html(root, "generated/data.html").find("table", id="audio-players")
    sources = [a["src"] for a in players("audio")]
    assert len(sources) == 8 and all(s.startswith("data:audio/wav;base64,") for s in sources)


def test_the_learned_page_shows_filters_mistakes_to_hear_the_inputs_per_genre_and_maps(built):
    """What the networks learned (fmareport.report.pages.learned), from the smoke grid's kept files: the filter
    figures of the best 1D and 2D cells with their paragraphs, the mistakes with embedded players, the
    per-genre table of the three inputs, the t-SNE maps; no note of anything missing."""
    root, _, results = built
    page = html(root, "generated/learned.html")
    text = page.get_text(" ", strip=True)
    assert page.find("h1").get_text(strip=True).startswith("What the networks learned")
    assert len(page.find_all("img")) == 4  # 2 filter figures, the per-genre figure, the maps
    assert "nothing to draw" not in text and "has a current run" not in text
    peaks = [tr.th.get_text(strip=True) for tr in page.find("table", id="filter-peaks").tbody("tr")]
    assert len(peaks) == 2 and "1D input" in peaks[0] and "2D input" in peaks[1]  # the best 1D and 2D cells
    for which in ("best", "worst"):
        players = page.find("table", id=f"mistakes-{which}")
        sources = [a["src"] for a in players("audio")]
        assert sources and all(s.startswith("data:audio/wav;base64,") for s in sources), which
    ranked = sorted((-accuracies(r).mean(), c) for c, r in results.items() if c.startswith("table"))
    assert f"The best table cell: {ranked[0][1]} (" in text and f"The worst table cell: {ranked[-1][1]} (" in text
    rows = [tr.th.get_text(strip=True) for tr in page.find("table", id="per-genre").tbody("tr")]
    assert rows[-1] == "all genres" and len(rows) >= 2
    assert re.search(r"\d+ of the \d+ test tracks are wrong in every prediction of the 8 table cells", text)


def test_the_reproducibility_page_sets_each_run_beside_the_published_reference(built):
    """reference/smoke.json against the runs the book shows: a verdict per cell and baseline, and the
    reference's machine and versions beside the runs' (fmareport.report.reference)."""
    root, _, results = built
    page = html(root, "generated/reproducibility.html")
    rows = {
        tr.th.get_text(strip=True): [td.get_text(strip=True) for td in tr.find_all("td")]
        for tr in page.find("table", id="reference-check").tbody.find_all("tr")
    }
    assert sorted(r for r in rows if not r.startswith("baseline ")) == sorted(results)
    verdicts = {"identical", "within tolerance", "differs", "other settings", "not in the reference"}
    assert all(v[0] in verdicts for v in rows.values()), rows
    facts = {tr.th.get_text(strip=True) for tr in page.find("table", id="reference-facts").tbody.find_all("tr")}
    assert {"device", "cpu", "torch_threads", "torch", "numpy", "git commit"} <= facts


def layout_faults(page: Path) -> list[str]:
    """What in a page's code cells is more than layout: every statement must be an import, one call
    (`results.paper_table(page, ...)`), or a name bound to one call or a constant; no def, loop,
    branch, comprehension or arithmetic, so that tables, checks and numbers live in the library."""
    import ast

    import jupytext

    faults = []
    for cell in jupytext.read(page).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
            if isinstance(node, (ast.Import, ast.ImportFrom)) or isinstance(value, (ast.Call, ast.Constant, ast.Name)):
                if value is None or not any(isinstance(n, (ast.BinOp, ast.comprehension, ast.Lambda, ast.IfExp))
                                            for n in ast.walk(value)):  # fmt: skip
                    continue
            faults.append(f"{page.name} line {node.lineno} of a cell: {ast.unparse(node)[:60]}")
    return faults


def test_pages_only_lay_out_what_the_library_computes():
    """A page's code calls into fmareport and presents what it returns; its sentences are its own text."""
    pages = sorted((REPO / "book" / "pages").glob("[!_]*.md"))
    assert sorted(p.name for p in pages) == sorted(f"{p}.md" for p in book.book_pages())
    faults = [f for p in pages for f in layout_faults(p)]
    assert not faults, "\n".join(faults)

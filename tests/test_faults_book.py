"""The third fault corpus, on the book's side (docs/faults.md): results, references and configs as untrusted
input, and the build's own edges. Each case at the lowest level that shows it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from fmareport.cli import main
from fmareport.errors import BookError
from fmareport.report import book, reference, runs, sphinx_checks
from fmareport.results import ResultsError

REPO = Path(__file__).resolve().parents[1]


def test_the_banner_shows_every_value_as_text():
    """A data_dir with backticks and markup (from a profile, `--set` or a results file) reaches the banner
    through glue's text role alone: a text node, never read as Markdown or HTML."""
    source = (REPO / "book/pages/_banner.md").read_text()
    roles = re.findall(r"\{glue(:\w*)?\}", source)
    assert roles and set(roles) == {":text"}, roles


def test_a_reference_that_contradicts_its_own_hashes_is_refused():
    """An accuracy edited beside an untouched predictions hash read "identical" for the cell and
    "identical | test accuracy -0.99" for the baseline: now the reference is refused, naming what."""
    from test_reference import baseline_of, reference_of, run

    ours, base = run(), baseline_of()
    ref = reference_of(ours, baselines={"mfcc": base})
    edited = ref.model_copy(deep=True)
    edited.cells[ours.cell].seeds[1] = edited.cells[ours.cell].seeds[1].model_copy(update={"test_acc_last": 0.99})
    with pytest.raises(ResultsError, match=rf"cell {ours.cell} seed 1: the predictions hash as these runs', whose test "
                       r"accuracy is 0\.8333, but it states 0\.9900: it contradicts itself"):  # fmt: skip
        reference.compare(edited, {ours.cell: ours}, {})
    edited = ref.model_copy(deep=True)
    edited.baselines["mfcc"] = edited.baselines["mfcc"].model_copy(update={"test_acc": 0.01})
    with pytest.raises(ResultsError, match=r"baseline mfcc: .* but it states 0\.0100"):
        reference.compare(edited, {}, {"mfcc": base})
    assert [r["Verdict"] for r in reference.compare(ref, {ours.cell: ours}, {"mfcc": base})] == ["identical"] * 2


def test_a_truncated_reference_is_named_with_the_fix(tmp_path):
    path = tmp_path / "reference" / "smoke.json"
    path.parent.mkdir()
    path.write_text((REPO / "reference/smoke.json").read_text()[:500])
    with pytest.raises(ResultsError) as err:
        reference.read_reference("smoke", tmp_path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a reference file (") and "\n" not in message
    assert "git checkout" in message and "fmareport reference --profile smoke" in message
    assert "errors.pydantic.dev" not in message


def test_the_staging_digest_reads_no_damaged_file_fifo_or_device(tmp_path):
    """A truncated results file that sorts first (ablations/…) made the digest raise JSONDecodeError,
    three chained tracebacks naming no file; a FIFO would hang it. The load that follows names the file."""
    folder = tmp_path / "results" / "smoke" / "ablations"
    folder.mkdir(parents=True)
    (folder / "a.json").write_text('{"schema_version": 4, "data": {"st')
    os.mkfifo(folder / "b.json")
    (folder / "c.json").symlink_to("/dev/zero")
    assert len(book.staging_inputs("smoke", tmp_path / "results", REPO)) == 40  # no hang, no error


def test_the_build_choice_refuses_a_profile_that_is_no_name_and_results_that_are_no_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.PROFILE_ENV, "../..")
    monkeypatch.setenv(runs.RESULTS_ENV, str(tmp_path))
    with pytest.raises(
        BookError, match=r"^\$FMAREPORT_PROFILE: '\.\./\.\.' is not a profile name .*: set it to one of "
    ):
        runs.build_choice()
    monkeypatch.delenv(runs.PROFILE_ENV)
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(runs.RESULTS_ENV, str(tmp_path / "file"))
    with pytest.raises(BookError, match=rf"^\$FMAREPORT_RESULTS_DIR: {tmp_path / 'file'} is not a folder"):
        runs.build_choice()


def test_a_profile_folder_that_is_a_link_is_chosen_as_any_other(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "smoke" / "table1"
    elsewhere.mkdir(parents=True)
    (elsewhere / "raw_whole.json").write_text("{}")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "smoke").symlink_to(tmp_path / "elsewhere" / "smoke")
    assert runs.newest_profile(tmp_path / "results") == "smoke"


def test_a_build_elsewhere_names_the_working_directory_and_ends_in_one_line(tmp_path, monkeypatch, capsys):
    """`jupyter-book build` run outside the repo: one line naming where it looked and the fix, exit 1,
    no traceback (SystemExit passes through Jupyter Book, which prints any exception's traceback)."""
    monkeypatch.chdir(tmp_path)
    for env in (runs.PROFILE_ENV, runs.RESULTS_ENV):
        monkeypatch.delenv(env, raising=False)
    app = SimpleNamespace(srcdir=str(tmp_path / "book"), outdir=str(tmp_path / "_build/html"), tags=set())
    with pytest.raises(SystemExit) as stop:
        sphinx_checks._stage(app, None)
    assert stop.value.code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"fmareport book: no results under {tmp_path / 'results'} (results/ in the working directory"
    )
    assert "build in the repo root, or set $FMAREPORT_RESULTS_DIR" in line and "papermill book/experiment.ipynb" in line


def test_fmareport_book_without_results_or_a_writable_html_folder_says_so_in_one_line(tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    (root / "_config.yml").write_text("title: t\n")
    assert main(["book", "--profile", "smoke", "--results-dir", str(tmp_path / "none"), "--root", str(root)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"fmareport book: no results in {tmp_path / 'none' / 'smoke'}: run a cell first")
    results = tmp_path / "results" / "smoke" / "table1"
    results.mkdir(parents=True)
    (results / "raw_whole.json").write_text("{}")
    (root / "_build").write_text("a file where the HTML's folder should be")
    assert main(["book", "--profile", "smoke", "--results-dir", str(tmp_path / "results"), "--root", str(root)]) == 1
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("fmareport book:")]
    assert f"{root / '_build/html'}: cannot write there" in line


def built_app(tmp_path, docs: set[str], warnings: int = 0):
    """A finished Sphinx app as the build-finished event sees it: its output folder (ours, with the
    marker the start writes), the documents it read, its warning count."""
    out = tmp_path / "_build" / "html"
    for name in ("generated/intro", "generated/experiments/table1/raw_whole", "generated/experiments/table1/gone"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).with_suffix(".html").write_text("<html></html>")
        (out / "_sources" / name).parent.mkdir(parents=True, exist_ok=True)
        (out / "_sources" / name).with_suffix(".ipynb").write_text("{}")
    (out / sphinx_checks.BUILT_MARKER).write_text("")
    return SimpleNamespace(outdir=str(out), env=SimpleNamespace(found_docs=docs), _warncount=warnings), out


def test_a_good_build_drops_the_pages_of_runs_since_deleted(tmp_path):
    app, out = built_app(tmp_path, {"generated/intro", "generated/experiments/table1/raw_whole"})
    sphinx_checks._finish(app, None)
    assert (out / "generated/experiments/table1/raw_whole.html").is_file()
    assert not (out / "generated/experiments/table1/gone.html").exists()
    assert not (out / "_sources/generated/experiments/table1/gone.ipynb").exists()


def test_a_build_that_cannot_write_removes_its_half_written_html_in_one_line(tmp_path, capsys):
    app, out = built_app(tmp_path, set())
    full = OSError(28, "No space left on device", str(out / "generated/results.html"))
    with pytest.raises(SystemExit):
        sphinx_checks._finish(app, full)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"fmareport book: cannot write {out / 'generated/results.html'} (No space left on device)")
    assert not out.exists()  # ours (its marker): removed, so no half-written book looks finished
    app, out = built_app(tmp_path / "b", set(), warnings=2)
    with pytest.raises(SystemExit):
        sphinx_checks._finish(app, None)
    assert capsys.readouterr().err.strip() == "fmareport book: 2 warning(s) above: the book is built with none"


def test_the_staging_digest_changes_with_the_data_set_the_runs_status_reads(tmp_path):
    """An edited tracks.csv with no new results changes which runs are current (report.runs): the
    staged pages must be staged again."""
    folder = tmp_path / "results" / "smoke" / "table1"
    folder.mkdir(parents=True)
    (folder / "raw_whole.json").write_text('{"data": {"store": "store/x", "data_dir": "data/set"}}')
    tracks = tmp_path / "data" / "set" / "fma_metadata" / "tracks.csv"
    tracks.parent.mkdir(parents=True)
    tracks.write_text("track_id\n2\n")
    before = book.staging_inputs("smoke", tmp_path / "results", REPO)
    assert book.staging_inputs("smoke", tmp_path / "results", REPO) == before
    tracks.write_text("track_id\n3\n")
    os.utime(tracks, ns=(1, 1))
    assert book.staging_inputs("smoke", tmp_path / "results", REPO) != before

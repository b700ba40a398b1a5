"""The published reference (fmareport.report.reference): written from a run, a rerun judged against it.

The runs are the self-consistent results of tests/test_results.py and tests/fakes.py, validated
into the schema; the smoke profile's
committed reference is checked against the session's real smoke grid in tests/test_workflow.py.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from fakes import cell_result
from test_results import baseline, cell_results, probs

from fmareport.cli import main
from fmareport.config import REPO_ROOT as REPO
from fmareport.report.reference import (
    compare,
    compare_cell,
    make_reference,
    predictions_sha256,
    read_reference,
    tolerance,
    write_reference,
)
from fmareport.results import BaselineResults, CellResults, ResultsError, validate
from fmareport.workflow import expected_cells

MACHINE = {"cpu": "Xeon X", "torch_threads": 1}


def run_obj(seeds=(0, 1), cpu="Xeon X") -> dict:
    """A run of table1/raw_whole on a CPU named `cpu`, as the dict of its file (to change, then `validate`)."""
    obj = cell_results(seeds)
    obj["provenance"] = copy.deepcopy(obj["provenance"]) | {"hardware": {"cpu": cpu, "torch_threads": 1}}
    return obj


def run(seeds=(0, 1), cpu="Xeon X", accs=None) -> CellResults:
    """`run_obj`, validated; `accs`: each seed's test accuracy (what the tolerance reads), from
    predictions over 1000 test tracks (other accuracies, other predictions: another hash)."""
    if accs is None:
        return validate(run_obj(seeds, cpu))
    return cell_result("raw", False, 0.0, accs=accs, cell="table1/raw_whole", seeds=seeds,
                       hardware={"cpu": cpu, "torch_threads": 1})  # fmt: skip


def baseline_of(**changes) -> BaselineResults:
    return BaselineResults.model_validate_json(json.dumps(baseline() | changes))


def reference_of(*cells: CellResults, baselines=None):
    return make_reference("p", {c.cell: c for c in cells}, baselines or {})


def test_a_rerun_with_the_same_predictions_is_identical():
    ours = run()
    rows = compare(reference_of(ours), {ours.cell: ours}, {})
    assert rows == [
        {
            "Run": "table1/raw_whole",
            "Verdict": "identical",
            "Detail": "2 seed(s): the same test predictions, bit for bit",
        }
    ]


def test_one_moved_probability_on_the_same_machine_differs_and_names_the_seed():
    ref = reference_of(run())
    obj = run_obj()
    obj["seeds"][1]["test_probs"][0][0] += 1e-12  # the last bit of one number
    ours = validate(obj)
    verdict, detail = compare_cell(ref.cells["table1/raw_whole"], ours, exact=True)
    assert verdict == "differs"
    assert detail.startswith("seed(s) 1 predict otherwise; mean accuracy +0.0000") and "identical is expected" in detail


def test_on_another_machine_the_tolerance_decides():
    ref = reference_of(run(accs=[0.80, 0.90]))  # s = 0.0707: tolerance t(0.975, 1) * s * 1 = 0.898
    ours = run(cpu="EPYC Y", accs=[0.81, 0.91])
    [row] = compare(ref, {ours.cell: ours}, {})
    assert row["Verdict"] == "within tolerance" and row["Detail"].endswith("tolerance ±0.8985"), row
    assert tolerance([0.80, 0.90]) == pytest.approx(12.706 * 0.0707107, rel=1e-4)


def test_a_difference_beyond_the_tolerance_differs():
    ref = reference_of(run(seeds=(0, 1, 2, 3), accs=[0.80, 0.81, 0.80, 0.81]))
    ours = run(seeds=(0, 1, 2, 3), cpu="EPYC Y", accs=[0.90, 0.91, 0.90, 0.91])
    verdict, detail = compare_cell(ref.cells[ours.cell], ours, exact=False)
    assert verdict == "differs" and "mean accuracy +0.1000" in detail and "tolerance ±0.0130" in detail


def test_one_seed_on_another_machine_has_no_tolerance():
    ref = reference_of(run(seeds=(0,), accs=[0.5]))
    ours = run(seeds=(0,), cpu="EPYC Y", accs=[0.6])
    [row] = compare(ref, {ours.cell: ours}, {})
    assert row["Verdict"] == "differs" and "one seed: no spread" in row["Detail"]


def test_a_run_of_other_settings_is_not_compared():
    ref = reference_of(run())
    obj = run_obj()
    obj["config"]["lr"] = 0.01
    ours = validate(obj)
    assert compare_cell(ref.cells[ours.cell], ours, exact=True) == ("other settings", "lr 0.01 (reference: 0.0005)")
    obj = run_obj()
    obj["config"]["results_dir"] = "/elsewhere"  # changes no number
    ours = validate(obj)
    assert compare_cell(ref.cells[ours.cell], ours, exact=True)[0] == "identical"
    assert compare_cell(None, ours, exact=True)[0] == "not in the reference"


def test_the_tolerance_covers_95_percent_of_new_means_by_simulation():
    """Seeds scatter normally (SD 0.04); a rerun draws n new ones: its mean lies within the
    reference's tolerance 95 % of the time (4,000 simulated pairs per n; binomial SE 0.0034)."""
    rng = np.random.default_rng(0)
    for n in (2, 4, 5):
        ref, new = rng.normal(0.5, 0.04, (2, 4000, n))
        within = [abs(b.mean() - a.mean()) <= tolerance(list(a)) for a, b in zip(ref, new)]
        assert abs(np.mean(within) - 0.95) < 0.012, (n, np.mean(within))


def test_baselines_are_checked_by_their_predictions():
    base = baseline_of()  # 5 of 6 test tracks right
    ours = run()
    ref = reference_of(ours, baselines={"mfcc": base})
    moved = baseline_of(test_probs=probs([1, 2, 2, 3, 4, 0]))  # 2 of the 6
    assert moved.test_probs != base.test_probs
    rows = compare(ref, {ours.cell: ours}, {"mfcc": moved})
    assert rows[1] == {
        "Run": "baseline mfcc",
        "Verdict": "differs",
        "Detail": "test accuracy -0.5000 against the reference's",
    }
    assert compare(ref, {}, {"mfcc": base})[0]["Verdict"] == "identical"


def test_a_reference_is_one_machine():
    a, obj = run(), run_obj(cpu="EPYC Y")
    obj["cell"] = obj["config"]["cell"] = "table1/raw_segmented"
    b = validate(obj)
    with pytest.raises(ResultsError, match=r"table1/raw_segmented: ran on another machine"):
        make_reference("p", {a.cell: a, b.cell: b}, {})
    with pytest.raises(ResultsError, match="no results of profile 'p'"):
        make_reference("p", {}, {})


def test_written_and_read_back_or_refused_naming_the_file(tmp_path):
    ref = reference_of(run())
    path = write_reference(ref, tmp_path)
    assert path == tmp_path / "reference" / "p.json"
    assert read_reference("p", tmp_path) == ref
    assert read_reference("q", tmp_path) is None  # no reference: the page says so
    (tmp_path / "reference" / "q.json").write_text(path.read_text())
    with pytest.raises(ResultsError, match=r"q\.json: holds profile 'p', but its name says 'q'"):
        read_reference("q", tmp_path)
    obj = json.loads(path.read_text())
    obj["cells"]["table1/raw_whole"]["seeds"][0]["predictions_sha256"] = "not a hash"
    path.write_text(json.dumps(obj))
    with pytest.raises(ResultsError, match=r"p\.json: not a reference file"):
        read_reference("p", tmp_path)


def test_the_hash_is_of_the_numbers_as_stored():
    ids, rows = [1, 2], [[0.1] * 8, [0.2] * 8]
    assert predictions_sha256(ids, rows) == predictions_sha256(list(ids), [list(r) for r in rows])
    assert predictions_sha256(ids, rows) != predictions_sha256([2, 1], rows)


def test_the_command_refuses_a_profile_without_every_run(tmp_path, capsys):
    assert main(["reference", "--profile", "smoke", "--results-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    n = len(expected_cells(REPO / "params", "smoke"))
    assert err.startswith(f"fmareport reference: profile 'smoke' lacks {n} current cell run(s)")
    assert "A reference is a whole run" in err

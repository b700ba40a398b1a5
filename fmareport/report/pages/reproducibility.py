"""The Reproducibility page (book/pages/reproducibility.md): the commands that make the report, the code,
versions and machine of the runs, these runs against the profile's published reference
(report.reference), how each seed ran, and what the runs cost."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from ...config import REPO_ROOT
from ...provenance import lock_hashes, package_version
from ...results import load_baselines
from .. import reference
from ..page import Page, code_block, glue, table

# The packages that render the book (its tables, figures and HTML), in this environment.
BOOK_PACKAGES = (
    "jupyter-book",
    "sphinx",
    "myst-nb",
    "papermill",
    "jupytext",
    "matplotlib",
    "seaborn",
    "pandas",
    "scipy",
)


def commands(page: Page, which: str) -> Markdown:
    """The commands that make this profile's report (`which`): "pipeline", "cell" (the papermill run of
    the profile's first cell) or "book", as a shell block."""
    profile, cell = page.profile, next(iter(page.results))
    lines = {
        "pipeline": [f"make report PROFILE={profile}"],
        "cell": [f"papermill book/experiment.ipynb results/{profile}/{cell}.ipynb -p profile {profile} -p cell {cell}"],
        "book": [
            f"fmareport book --profile {profile}",
            "# which ends with, in the repo root:",
            "jupyter-book build book/",
        ],
    }[which]
    return Markdown(code_block("\n".join(lines), "bash"))


def distinct(values) -> str:
    """Each distinct value once, in order, comma-separated (dicts and lists as JSON)."""
    return ", ".join(dict.fromkeys(json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in values))


def run_facts(page: Page):
    """Where the results came from: commit, dirty tree, Python, device, schema (id run-facts)."""
    prov = [r.provenance for r in page.results.values()]
    facts = pd.Series(
        {
            "git commit": distinct(p.git_commit for p in prov),
            "uncommitted changes": distinct(p.git_dirty for p in prov),
            "python": distinct(p.python for p in prov),
            "device": distinct(p.device for p in prov),
            "results schema": distinct(r.schema_version for r in page.results.values()),
        },
        name="value",
    )
    caption = "Where the results came from (a value that differs between cells is listed once per value)."
    return table(facts.to_frame(), "run-facts", caption)


def run_versions(page: Page):
    """The package versions the runs recorded, each distinct version once (id versions)."""
    versions = pd.DataFrame({cell: r.provenance.versions for cell, r in page.results.items()})
    versions = versions.apply(lambda row: distinct(row.fillna("not installed")), axis=1).to_frame("version")
    versions.index.name = "package"
    return table(versions, "versions", "Package versions of the runs.")


def locks():
    """The SHA-256 of the lock files `make install` installs from, in this checkout (id locks)."""
    frame = pd.Series(lock_hashes(), name="SHA-256").fillna("missing").to_frame()
    frame.index.name = "lock file"
    return table(frame, "locks", "The lock files of this checkout and their SHA-256.")


def run_hardware(page: Page):
    """The machine the runs recorded, each distinct value once (id hardware)."""
    hardware = pd.DataFrame(
        {
            cell: {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.provenance.hardware.items()}
            for cell, r in page.results.items()
        }
    )
    hardware = hardware.apply(distinct, axis=1).to_frame("value")
    hardware.index.name = "hardware"
    return table(hardware, "hardware", "The machine the runs used.")


def reference_check(page: Page, results_dir: str | Path, root: str | Path = REPO_ROOT) -> None:
    """Display these runs against the profile's published reference (report.reference): the machine facts
    side by side (id reference-facts) and a verdict per cell and baseline (id reference-check, its caption
    the reference's run and date and the count of each verdict); a line when there is no reference."""
    ref = reference.read_reference(page.profile, root)
    path = reference.reference_path(page.profile)
    if ref is None:
        display(Markdown(f"Profile `{page.profile}` has no published reference (`{path}` is not in the repository): "
                         "these runs cannot be checked against one."))  # fmt: skip
        return
    rows = reference.compare(ref, page.results, load_baselines(results_dir, page.profile))
    verdicts = pd.DataFrame(rows).set_index("Run")
    counts = verdicts["Verdict"].value_counts()
    said = f"{path}: run {str(ref.git_commit or 'outside git')[:12]} of {ref.written:%Y-%m-%d}. Of {len(rows)} runs shown here: "
    caption = said + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()) + "."
    facts = pd.DataFrame(reference.fact_rows(ref, page.results)).set_index("Fact")
    display(table(facts, "reference-facts", "The reference's machine and versions beside these runs'."))
    display(table(verdicts, "reference-check", caption))


def device_policies(page: Page):
    """How each seed ran (id device-policy): device (type, name, index, UUID), autocast and where the clip
    store lived, with the policy's reasons (results.SeedResult.policy); seeds of files written before it
    was recorded are listed as such."""
    rows, unrecorded = [], []
    for cell, r in page.results.items():
        for s in r.seeds:
            p = s.policy
            if p is None:
                unrecorded.append(f"{cell} seed {s.seed}")
                continue
            rows.append(
                {
                    "cell": cell,
                    "seed": s.seed,
                    "device": f"{p.device_type}{'' if p.device_index is None else f' {p.device_index}'}: {p.device_name}",
                    "GPU UUID": p.device_uuid or "",
                    "autocast": p.amp_dtype or "off (fp32)",
                    "clip store": p.store,
                    "why": "; ".join((p.device_reason, p.amp_reason, p.store_reason)),
                }
            )
    note = f"Not recorded (results written before the policy was): {', '.join(unrecorded)}." if unrecorded else ""
    if not rows:
        return Markdown(note)
    caption = "How each seed ran: the device, bf16 autocast and the clip store's place, and why. " + note
    return table(pd.DataFrame(rows).set_index(["cell", "seed"]), "device-policy", caption.strip())


def run_times(page: Page):
    """Each cell's wall and training time and throughput (id run-times); glues their total wall time."""
    rows = []
    for cell, r in page.results.items():
        p = r.provenance
        rows.append(
            {
                "cell": cell,
                "device": p.device,
                "started (UTC)": p.started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
                "wall time (min)": (p.finished - p.started).total_seconds() / 60,
                "training, all seeds (min)": f"{sum(s.seconds for s in r.seeds) / 60:.1f}",
                "seeds": len(r.seeds),
                "windows per second": f"{sum(s.segments_per_second for s in r.seeds) / len(r.seeds):,.0f}",
            }
        )
    times = pd.DataFrame(rows).set_index("cell")
    glue(total_wall_minutes=float(times["wall time (min)"].round(1).sum()))
    times["wall time (min)"] = times["wall time (min)"].map("{:.1f}".format)
    return table(times, "run-times", f"Run time of each cell (profile {page.profile}).")


def epoch_cost(page: Page):
    """Per cell, the measured seconds of one training epoch and its FLOPs (summary.training_flops), and
    the rate they give (id epoch-cost)."""
    from ...summary import training_flops

    rows = []
    for cell, r in page.results.items():
        epochs = [h.seconds for s in r.seeds for h in s.history]
        seconds = sum(epochs) / len(epochs)
        n_train = round(r.data.tracks.training * r.config.train.train_fraction)
        flops = training_flops(r.config, n_train)
        rows.append(
            {
                "cell": cell,
                "training tracks": f"{n_train:,}",
                "seconds per epoch": f"{seconds:.1f}",
                "GFLOP per epoch": f"{flops / 1e9:,.1f}",
                "achieved GFLOP/s": f"{flops / 1e9 / seconds:,.1f}",
            }
        )
    caption = f"Time and work of one training epoch per cell (profile {page.profile})."
    return table(pd.DataFrame(rows).set_index("cell"), "epoch-cost", caption)


def book_versions():
    """The versions of the packages that render the book, in this environment (id book-versions)."""
    frame = pd.Series({name: package_version(name) or "not installed" for name in BOOK_PACKAGES}, name="version")
    frame.index.name = "package"
    return table(frame.to_frame(), "book-versions", "Packages that rendered this book (tables, figures, HTML).")

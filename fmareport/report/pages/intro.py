"""The Introduction (book/pages/intro.md): the verdict on each of the paper's claims, in one table."""

from __future__ import annotations

from ..compare import claim_summary, claims
from ..page import Page, table


def verdicts(page: Page):
    """The verdict on each of the paper's claims, without the tests (id claims-summary)."""
    summary = claim_summary(claims(page.runs)).set_index("claim")[["verdict"]]
    summary.index.name = "The paper's claim"
    summary.columns = [f"Verdict {page.task}"]
    caption = (
        f"The paper's claims tested {page.task} (profile {page.profile}); the tests, their margins and the "
        "multiplicity control are on the Results page."
    )
    return table(summary, "claims-summary", caption)

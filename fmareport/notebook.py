"""What the experiment notebook (book/experiment.ipynb) checks first, before it imports torch: its
papermill parameters and the cell's config (`config`). A bad name, key or value, or a
parameter the notebook does not take, stops the notebook in a second, naming what to fix. Light on
purpose: the config layer only (pydantic, PyYAML), no torch, pandas or matplotlib.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from .config import Config, ConfigError, load_cell

# The notebook's parameters: what a user passes to papermill with -p (or -y for overrides).
PARAMETERS = ("profile", "cell", "overrides")


def injected_names(history: Sequence[str]) -> list[str]:
    """The names papermill injected: the assignments of the last executed cell that starts with
    papermill's '# Parameters' comment, read from IPython's input history (`In`)."""
    for source in reversed(list(history)):
        if source.lstrip().startswith("# Parameters"):
            tree = ast.parse(source)
            return [
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name)
            ]
    return []


def config(
    profile: str, cell: str | None, overrides: dict[str, Any] | str | None, history: Sequence[str] = ()
) -> Config:
    """The experiment notebook's config: profile, then cell, then overrides, every layer checked.

    `history` is IPython's `In`: a papermill parameter that is not one of PARAMETERS (say
    `-p epochs 3`) is refused here rather than silently ignored.
    """
    stray = [n for n in injected_names(history) if n not in PARAMETERS]
    if stray:
        raise ConfigError(
            f"papermill parameters: {', '.join(map(repr, stray))} not a parameter of this notebook "
            f"(its parameters: {', '.join(PARAMETERS)}); pass config keys as overrides, e.g. "
            f"-y \"overrides: {{{stray[0]}: ...}}\" or -p overrides '{stray[0]}: ...'"
        )
    return load_cell(profile, cell, overrides)

"""What the experiment notebook (book/experiment.ipynb) checks first, before it imports torch: its
papermill parameters and the cell's config (`config`). A bad name, key or value, or a
parameter the notebook does not take, stops the notebook in a second, naming what to fix. Light on
purpose: the config layer only (pydantic, PyYAML), no torch, pandas or matplotlib.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from .config import Config, ConfigError, load_cell, parse_yaml, shown

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
    try:
        return load_cell(profile, cell, overrides)
    except ConfigError as err:
        # -y "overrides: {lr: 1e-3}": papermill's YAML 1.1 made a string of the number. Said so where the
        # numbers YAML 1.2 reads there would load (the message's form works), else the error as it is.
        if isinstance(overrides, dict) and (texts := yaml11_texts(overrides)):
            numbers = {k: parse_yaml(v, "overrides") for k, v in texts.items()}
            try:
                load_cell(profile, cell, {**overrides, **numbers})
            except ConfigError:
                raise err from None
            raise ConfigError(f"{err}. {yaml11_hint(texts)}") from None
        raise


def yaml11_texts(overrides: dict[str, Any]) -> dict[str, str]:
    """The overrides given as text that the config layer's YAML 1.2 reads as a number (`1e-3`): what
    papermill's `-y` makes of such a number (it reads YAML 1.1, where `1e-3`, with no '.', is a string).
    {key: the text}; {} when there is none."""
    return {str(k): v for k, v in overrides.items() if isinstance(v, str) and _number(v)}


def _number(text: str) -> bool:
    try:
        return type(parse_yaml(text, "overrides")) in (int, float)  # not a bool
    except ConfigError:
        return False


def yaml11_hint(texts: dict[str, str]) -> str:
    """What to write instead of `-y` overrides whose numbers papermill read as text."""
    key, text = (shown(t, text=True) for t in next(iter(texts.items())))
    other = "seeds: [0, 1]" if key == "epochs" else "epochs: 2"
    return (
        f"papermill reads -y as YAML 1.1, where {text} is text, not a number (key '{key}'): pass the overrides "
        f"as YAML text instead, which the config layer reads as YAML 1.2: -p overrides '{key}: {text}' (several "
        f"as one mapping: -p overrides '{{{key}: {text}, {other}}}')"
    )

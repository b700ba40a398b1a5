"""The input kinds a cell can train on (the paper's 1D, 2D and 1D+2D), defined once in `INPUTS`.

A kind is a name (the params value `input: raw`), the paper's label, and the first layer's
branches it feeds (model.FirstLayer: a conv on the waveform, "raw", or on the |STFT|,
"spectrogram"; two share the maps: "128 for 1D data + 128 for 2D data"). Readers: docs/contracts.md,
"Input kinds"; a new kind of these branches is one entry here and its params files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Branch = Literal["raw", "spectrogram"]  # the first-layer convolutions model.FirstLayer builds


@dataclass(frozen=True)
class InputKind:
    name: str  # the params value
    label: str  # the paper's name for it (Tables 1-3)
    branches: tuple[Branch, ...]  # first-layer convolutions, in order; their maps are concatenated

    @property
    def panel_width(self) -> float:
        """Fig. 2's panel width, relative: a branch is 1, each further branch side by side 0.6."""
        return 1 + 0.6 * (len(self.branches) - 1)


INPUTS: dict[str, InputKind] = {
    k.name: k
    for k in (
        InputKind("raw", "1D", ("raw",)),
        InputKind("spectrogram", "2D", ("spectrogram",)),
        InputKind("both", "1D+2D", ("raw", "spectrogram")),
    )
}
InputName = Literal[tuple(INPUTS)]  # the config key `input`: one of INPUTS

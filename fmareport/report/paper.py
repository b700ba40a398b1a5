"""The paper as data (Benito Calvino & Pacheco Garcia, §VI): its tables' numbers, its claims in its
own words, how each word is tested, and the margin its "similar" implies. Nothing here reads a run.

Table 3 repeats the segmented settings of Tables 1 and 2 with other numbers; the report reads it as a
replicate of them, reported over seeds (the Methods page says why).
"""

from __future__ import annotations

from dataclasses import dataclass

from .stats import CONFIDENCE, Interval, detectable

# A run's setting: (input kind, segmented, dropout), as in its config (compare.setting_of).
Setting = tuple[str, bool, float]

# The paper's test accuracies: Table 1 (no dropout), Table 2 (segmented, dropout 0.2), Table 3
# (segmented, without and with dropout 0.2; the paper prints 0.00 for 1D+2D and never explains it).
PAPER: dict[str, dict[Setting, float]] = {
    "Table 1": {
        ("raw", False, 0.0): 0.264,
        ("spectrogram", False, 0.0): 0.395,
        ("both", False, 0.0): 0.376,
        ("raw", True, 0.0): 0.314,
        ("spectrogram", True, 0.0): 0.429,
        ("both", True, 0.0): 0.428,
    },
    "Table 2": {("spectrogram", True, 0.2): 0.378, ("both", True, 0.2): 0.369},
    "Table 3": {
        ("spectrogram", True, 0.0): 0.469,
        ("both", True, 0.0): 0.00,
        ("spectrogram", True, 0.2): 0.423,
        ("both", True, 0.2): 0.00,
    },
}

# Table 3's 0.00 for 1D+2D is no accuracy (chance is 0.125): the paper never explains it, so the
# tables print it but compute no difference against it.
UNEXPLAINED = {("Table 3", ("both", True, 0.0)), ("Table 3", ("both", True, 0.2))}

# The margin of "no advantage" and "similar": the largest gap the paper itself calls similar, 2D 0.395
# against 1D+2D 0.376 on whole clips (Table 1, §VI: "The results gotten for the model trained with 2D
# input are similar to those obtained for the model fed with both"), 0.019 -> 0.02.
NO_GAIN_MARGIN = 0.02

# The claims' tests form one family (compare.claims): Holm's step-down keeps the chance of any wrong
# "holds" or "does not hold" among them at or under FAMILY_ALPHA.
FAMILY_ALPHA = 0.05
# The one-sided level of both margin tests, "no advantage" and "similar": one level, so that "similar"
# (both one-sided tests) implies "no advantage" (the upper one alone). It is 5 % a side, TOST's usual,
# read from the 90 % interval.
MARGIN_CONFIDENCE = 0.90
POWER = 0.8  # the power at which the smallest detectable difference or margin is stated


def paper_value(setting: Setting) -> float:
    """The paper's accuracy for a setting (Tables 1 and 2; Table 3 only repeats them)."""
    for name in ("Table 1", "Table 2"):
        if setting in PAPER[name]:
            return PAPER[name][setting]
    raise KeyError(setting)


@dataclass(frozen=True)
class Test:
    """How one of the paper's words is tested on a difference a - b of test accuracy.

    kind:
      "superiority": a beats b (or, with `sign` -1, a is worse than b): a two-sided test of
        a - b = 0 at 5 % (the 95 % interval); it holds when the difference is significant in the
        paper's direction and does not hold when it is significant the other way.
      "non-superiority": a gives no advantage over b: H0 a - b >= NO_GAIN_MARGIN, one-sided at 5 %
        (the 90 % interval's upper bound below the margin, MARGIN_CONFIDENCE); it does not hold when a
        gain of the margin or more is significant the same way (the lower bound above the margin).
      "equivalence": a and b are similar: TOST, H0 |a - b| >= NO_GAIN_MARGIN, two one-sided tests
        at 5 % (the 90 % interval inside the margins); it does not hold when the 90 % interval lies
        wholly outside them (a gap of at least the margin, either way).
    word: the paper's word the test reads.
    """

    kind: str
    word: str
    sign: int = 1

    @property
    def confidence(self) -> float:
        """The two-sided level of the interval the test reads."""
        return CONFIDENCE if self.kind == "superiority" else MARGIN_CONFIDENCE

    @property
    def margin(self) -> str:
        return {"superiority": "0", "non-superiority": f"+{NO_GAIN_MARGIN:g}"}.get(self.kind, f"±{NO_GAIN_MARGIN:g}")

    @property
    def label(self) -> str:
        """The test, its margin and the interval it reads, in a few words (the Results page explains)."""
        return {"superiority": "≠ 0", "non-superiority": f"gain < +{NO_GAIN_MARGIN:g}"}.get(
            self.kind, f"TOST ±{NO_GAIN_MARGIN:g}"
        ) + f", {self.confidence * 100:.0f} %"

    def p_values(self, i: Interval) -> tuple[float, float]:
        """(p of the test that would say "holds", p of the one that would say "does not hold"), each
        on the scale where FAMILY_ALPHA decides: the smaller one is the comparison's p-value."""
        d = NO_GAIN_MARGIN
        if self.kind == "superiority":
            up, down = i.p_value(0.0, "greater"), i.p_value(0.0, "less")
            holds, refutes = (up, down) if self.sign > 0 else (down, up)
            return 2 * holds, 2 * refutes  # two-sided: each side at 2.5 %
        if self.kind == "non-superiority":  # the upper one of TOST's two tests, at its level
            return i.p_value(d, "less"), i.p_value(d, "greater")
        if self.kind == "equivalence":
            inside = max(i.p_value(-d, "greater"), i.p_value(d, "less"))  # TOST: both one-sided tests
            outside = min(i.p_value(d, "greater"), i.p_value(-d, "less"))  # a gap beyond one margin
            return inside, outside
        raise ValueError(f"unknown test kind {self.kind!r}")

    def detectable(self, i: Interval) -> float:
        """For "superiority", the smallest true difference the test finds with POWER; for the others,
        the smallest margin it confirms with POWER when a and b are truly equal (`stats.detectable`).
        i: the interval at the test's own level."""
        return detectable(i, POWER, both_bounds=self.kind == "equivalence")


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: the differences a - b of test accuracy it is about, each judged by
    every one of `tests` (a claim worded twice, "no advantage" and "similar", gets both)."""

    name: str
    tests: tuple[Test, ...]
    comparisons: tuple[tuple[Setting, Setting], ...]
    source: str


def _pairs(a: str, b: str, dropout: bool = False) -> tuple[tuple[Setting, Setting], ...]:
    """a against b, whole and segmented (and, with `dropout`, segmented with dropout 0.2 too)."""
    settings = [(False, 0.0), (True, 0.0)] + ([(True, 0.2)] if dropout else [])
    return tuple(((a, seg, d), (b, seg, d)) for seg, d in settings)


CLAIMS = (
    Claim(
        "2D beats 1D",
        (Test("superiority", "better results"),),
        _pairs("spectrogram", "raw"),
        "Abstract and §VI: 'the spectrogram yields better results'; '1D input gives a lower accuracy in any case'.",
    ),
    Claim(
        "1D+2D adds nothing over 2D",
        (Test("non-superiority", "no advantages"), Test("equivalence", "similar")),
        _pairs("both", "spectrogram", dropout=True),
        "Abstract: 'the combination does not provide any advantages'; §VI: 'similar'.",
    ),
    Claim(
        "Segmenting helps",
        (Test("superiority", "performs better"),),
        tuple(((k, True, 0.0), (k, False, 0.0)) for k in ("raw", "spectrogram", "both")),
        "Abstract and §VI: 'segmenting data into smaller pieces makes the network perform better'.",
    ),
    Claim(
        "Dropout hurts",
        (Test("superiority", "deteriorates", sign=-1),),
        tuple(((k, True, 0.2), (k, True, 0.0)) for k in ("spectrogram", "both")),
        "§VI, Table 2: 'it deteriorates them. It should not be used in our case.'",
    ),
)

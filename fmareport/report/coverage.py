"""How often the report's 95 % intervals hold the true accuracy: a simulation with the package's
own interval functions (`stats.accuracy_interval`, `stats.paired_difference`).

The simulated runs have what real ones have: tracks of varied difficulty and seeds of varied
luck. Seed s is right on track n with probability

    expit(mu + u[n] + v[s]),   u ~ N(0, TRACK_SD), v ~ N(0, sigma_seed)   (logit scale)

and the true accuracy is the mean of that over new tracks and new seeds (2-D Gauss-Hermite
quadrature). sigma_seed is set so that the SD over seeds of a seed's accuracy takes the
values real cells show (0 to 0.06 on the demo). A difference a - b shares the tracks' u;
its seeds are either paired (v_b = RHO v_a + sqrt(1 - RHO^2) w: same initial weights, partly
the same luck) or independent (other inputs). docs/statistics.md has the table.

    coverage_table(reps=1000)   # one row per design x seed SD x kind, with its coverage
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from .stats import accuracy_interval, paired_difference

TRACK_SD = 1.5  # logit SD of track difficulty: from near-certain to near-hopeless tracks, as in the demo
MU_A, MU_B = 0.5, 0.2  # logits of the two cells compared: accuracies near 0.58 and 0.53
RHO = 0.5  # how much of a seed's luck two cells that share its initial weights share
SEED_SDS = (0.0, 0.02, 0.04, 0.06)  # SD over seeds of a cell's accuracy (demo cells: 0.007 to 0.08)
DESIGNS = {"demo": (640, 3), "paper": (800, 5)}  # test tracks, seeds
KINDS = ("cell", "difference, seeds paired", "difference, seeds independent")
SIM_SEED = 0  # the simulation's own generator: the same table every time

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(64)  # E f(Z), Z ~ N(0, 1) = sum(w f(x)) / sqrt(2 pi)
_WEIGHTS = _WEIGHTS / math.sqrt(2 * math.pi)


def true_accuracy(mu: float, sigma_seed: float) -> float:
    """E expit(mu + u + v) over tracks and seeds."""
    x = mu + TRACK_SD * _NODES[:, None] + sigma_seed * _NODES[None, :]
    return float(_WEIGHTS @ special.expit(x) @ _WEIGHTS)


def seed_sd(mu: float, sigma_seed: float) -> float:
    """SD over seeds of a seed's accuracy on every track (its expectation over tracks)."""
    g = _WEIGHTS @ special.expit(mu + TRACK_SD * _NODES[:, None] + sigma_seed * _NODES[None, :])  # (seeds,)
    mean = g @ _WEIGHTS
    return float(math.sqrt(max(((g - mean) ** 2) @ _WEIGHTS, 0.0)))


def sigma_for(target_sd: float, mu: float = MU_A) -> float:
    """The logit seed SD that gives a seed SD of accuracy `target_sd`."""
    if target_sd == 0:
        return 0.0
    return float(optimize.brentq(lambda s: seed_sd(mu, s) - target_sd, 1e-6, 10.0))


@dataclass(frozen=True)
class Row:
    design: str
    tracks: int
    seeds: int
    seed_sd: float
    kind: str
    coverage: float
    mean_width: float


def _correct(rng, mu, u, v) -> np.ndarray:
    """(R, S, N) 0/1: seed s right on track n, in each of R simulated runs."""
    p = special.expit(mu + u[:, None, :] + v[:, :, None])
    return rng.random(p.shape) < p


def simulate(tracks: int, seeds: int, target_sd: float, kind: str, reps: int, rng) -> tuple[float, float]:
    """(coverage, mean width) of the 95 % intervals of `kind` over `reps` simulated runs."""
    sigma = sigma_for(target_sd)
    u = rng.normal(0, TRACK_SD, (reps, tracks))
    v = rng.normal(0, sigma, (reps, seeds))
    a = _correct(rng, MU_A, u, v)
    if kind == "cell":
        truth = true_accuracy(MU_A, sigma)
        intervals = [accuracy_interval(c) for c in a]
    else:
        paired = kind == "difference, seeds paired"
        w = rng.normal(0, sigma, (reps, seeds))
        v_b = RHO * v + math.sqrt(1 - RHO**2) * w if paired else w
        b = _correct(rng, MU_B, u, v_b)
        truth = true_accuracy(MU_A, sigma) - true_accuracy(MU_B, sigma)
        intervals = [paired_difference(ca, cb, same_seeds=paired) for ca, cb in zip(a, b)]
    hit = np.mean([i.low <= truth <= i.high for i in intervals])
    return float(hit), float(np.mean([i.high - i.low for i in intervals]))


def coverage_table(reps: int = 1000, designs: dict[str, tuple[int, int]] = DESIGNS) -> pd.DataFrame:
    """Coverage of every design x seed SD x kind (one generator, SIM_SEED: the same table each time)."""
    rng = np.random.default_rng(SIM_SEED)
    rows = []
    for design, (tracks, seeds) in designs.items():
        for sd in SEED_SDS:
            for kind in KINDS:
                hit, width = simulate(tracks, seeds, sd, kind, reps, rng)
                rows.append(Row(design, tracks, seeds, sd, kind, hit, width))
    return pd.DataFrame([r.__dict__ for r in rows])

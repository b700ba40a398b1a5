"""How often the report's 95 % intervals hold the true accuracy: a simulation with the package's
own interval functions (`stats.accuracy_interval`, `stats.paired_difference`).

The simulated runs have what real ones have: artists whose tracks are alike, tracks of varied
difficulty and seeds of varied luck. Seed s is right on track n, of artist g(n), with probability

    expit(mu + w[g(n)] + e[n] + v[s]),   w ~ N(0, ARTIST_SD), e ~ N(0, TRACK_OWN_SD), v ~ N(0, sigma_seed)

(logit scale; w + e is the track's difficulty, SD TRACK_SD), and the true accuracy is the mean
of that over new artists, tracks and seeds (2-D Gauss-Hermite quadrature). sigma_seed is set so
that the SD over seeds of a seed's accuracy takes the values real cells show (0 to 0.06 on the
demo). A difference a - b shares each track's own e and part of its artist's w (b's is
RHO_ARTIST w + sqrt(1 - RHO_ARTIST^2) w'); its seeds are either paired (v_b = RHO v_a +
sqrt(1 - RHO^2) u: same initial weights, partly the same luck) or independent (other inputs).

Every simulated run gets two intervals: resampling artists (`clusters`, what the report uses
when the results record the test tracks' artists) and resampling single tracks (what it used
before, and still uses for results without artists). docs/statistics.md has the table.

    coverage_table(reps=1000)   # one row per design x seed SD x kind, with both coverages
    cached_table(reps=1000)     # the same, kept in build/cache/ under the digest of what makes it
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special

from ..config import REPO_ROOT, load_profile
from ..data.synth import ARTIST_TRACKS, split_sizes
from ..files import write_atomic
from .stats import accuracy_interval, paired_difference

TRACK_SD = 1.5  # logit SD of track difficulty: from near-certain to near-hopeless tracks, as in the demo
# An artist's share of it, assumed (no published figure for FMA): artists hold (1.0 / 1.5)^2 = 44 %
# of the variance of a track's difficulty, a strong effect, so that the table shows what it does.
ARTIST_SD = 1.0
TRACK_OWN_SD = math.sqrt(TRACK_SD**2 - ARTIST_SD**2)  # 1.12: the rest is the track's own
RHO_ARTIST = 0.5  # how much of an artist's difficulty two compared cells share (a sound one input suits)
MU_A, MU_B = 0.5, 0.2  # logits of the two cells compared: accuracies near 0.58 and 0.53
RHO = 0.5  # how much of a seed's luck two cells that share its initial weights share
SEED_SDS = (0.0, 0.02, 0.04, 0.06)  # SD over seeds of a cell's accuracy (demo cells: 0.007 to 0.08)
KINDS = ("cell", "difference, seeds paired", "difference, seeds independent")
SIM_SEED = 0  # the simulation's own generator: the same table every time

# FMA-small's test split: 800 tracks (fma.FMA_SMALL_SPLITS), 100 a genre, assigned artist by artist,
# largest first (FMA's creation notebook). FMA publishes no count of them; FMA as a whole has 6.5
# tracks an artist (106,574 / 16,341). We assume 4 on average in the test split, with skewed,
# geometric sizes 1, 2, 3, ... (192 artists, the largest 30 tracks); a run on FMA prints its own count.
FMA_ARTIST_TRACKS = 4.0
LAYOUT_SEED = 1  # the generator of that layout: one fixed layout, whatever the number of runs


def fma_like_sizes(tracks: int, mean: float = FMA_ARTIST_TRACKS, seed: int = LAYOUT_SEED) -> tuple[int, ...]:
    """Tracks of each artist in a test split of `tracks` tracks: geometric sizes (1, 2, ...) of
    mean `mean`, the last cut so they sum to `tracks`."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < tracks:
        sizes.append(int(rng.geometric(1 / mean)))
    sizes[-1] -= sum(sizes) - tracks
    return tuple(sizes)


@dataclass(frozen=True)
class Design:
    """A test split and seeds: `artist_sizes[g]` tracks of artist g, `seeds` seeds."""

    seeds: int
    artist_sizes: tuple[int, ...]

    @property
    def tracks(self) -> int:
        return sum(self.artist_sizes)

    @property
    def artists(self) -> np.ndarray:
        """(N,) int64: the artist of each test track, 0..G-1."""
        return np.repeat(np.arange(len(self.artist_sizes)), self.artist_sizes)


_DEMO = load_profile("demo")
# the demo's test split (data/synth.py: split_sizes), in whole artists of ARTIST_TRACKS
_DEMO_TEST = sum(
    s["test"]
    for s in split_sizes(_DEMO.synth.tracks_per_genre, _DEMO.synth.validation_fraction, _DEMO.synth.test_fraction)
)
DESIGNS = {
    # the seeds are the profiles' own (params/profiles/), so the table follows a change of them
    "demo": Design(len(_DEMO.schedule.seeds), (ARTIST_TRACKS,) * (_DEMO_TEST // ARTIST_TRACKS)),  # artists of 4
    "paper": Design(
        len(load_profile("paper").schedule.seeds), fma_like_sizes(800)
    ),  # FMA-small's test split, as assumed above
}

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(64)  # E f(Z), Z ~ N(0, 1) = sum(w f(x)) / sqrt(2 pi)
_WEIGHTS = _WEIGHTS / math.sqrt(2 * math.pi)


def true_accuracy(mu: float, sigma_seed: float) -> float:
    """E expit(mu + u + v) over tracks (u ~ N(0, TRACK_SD): artist's and own) and seeds."""
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
    artists: int
    seeds: int
    seed_sd: float
    kind: str
    coverage: float  # intervals over artists
    mean_width: float
    coverage_90: float  # the same intervals at 90 %, the level TOST reads (tables.Test)
    coverage_by_track: float  # the same runs, intervals over single tracks
    mean_width_by_track: float


def _correct(rng, mu, u, v) -> np.ndarray:
    """(R, S, N) 0/1: seed s right on track n, in each of R simulated runs; u (R, N), v (R, S) logits."""
    p = special.expit(mu + u[:, None, :] + v[:, :, None])
    return rng.random(p.shape) < p


def simulate(design: Design, target_sd: float, kind: str, reps: int, rng) -> dict[str, float]:
    """Coverage and mean width of the 95 % intervals of `kind` over `reps` simulated runs of
    `design`, over artists and over single tracks, and the coverage over artists at 90 %:
    {coverage, mean_width, coverage_90, coverage_by_track, mean_width_by_track}."""
    artists = design.artists  # (N,)
    sigma = sigma_for(target_sd)
    w = rng.normal(0, ARTIST_SD, (reps, len(design.artist_sizes)))  # (R, G)
    e = rng.normal(0, TRACK_OWN_SD, (reps, design.tracks))  # (R, N)
    v = rng.normal(0, sigma, (reps, design.seeds))  # (R, S)
    a = _correct(rng, MU_A, w[:, artists] + e, v)
    if kind == "cell":
        truth = true_accuracy(MU_A, sigma)
        pairs = [(accuracy_interval(c, clusters=artists), accuracy_interval(c)) for c in a]
    else:
        paired = kind == "difference, seeds paired"
        w_b = RHO_ARTIST * w + math.sqrt(1 - RHO_ARTIST**2) * rng.normal(0, ARTIST_SD, w.shape)
        u = rng.normal(0, sigma, v.shape)
        v_b = RHO * v + math.sqrt(1 - RHO**2) * u if paired else u
        b = _correct(rng, MU_B, w_b[:, artists] + e, v_b)
        truth = true_accuracy(MU_A, sigma) - true_accuracy(MU_B, sigma)
        pairs = [
            (
                paired_difference(ca, cb, same_seeds=paired, clusters=artists),
                paired_difference(ca, cb, same_seeds=paired),
            )
            for ca, cb in zip(a, b)
        ]
    out = {"coverage_90": float(np.mean([(i := p[0].at(0.90)).low <= truth <= i.high for p in pairs]))}
    for k, suffix in enumerate(("", "_by_track")):
        out["coverage" + suffix] = float(np.mean([p[k].low <= truth <= p[k].high for p in pairs]))
        out["mean_width" + suffix] = float(np.mean([p[k].high - p[k].low for p in pairs]))
    return out


def coverage_table(reps: int = 1000, designs: dict[str, Design] = DESIGNS) -> pd.DataFrame:
    """Coverage of every design x seed SD x kind (one generator, SIM_SEED: the same table each time)."""
    rng = np.random.default_rng(SIM_SEED)
    rows = []
    for name, design in designs.items():
        for sd in SEED_SDS:
            for kind in KINDS:
                found = simulate(design, sd, kind, reps, rng)
                rows.append(Row(name, design.tracks, len(design.artist_sizes), design.seeds, sd, kind, **found))
    return pd.DataFrame([r.__dict__ for r in rows])


CACHE_DIR = REPO_ROOT / "build" / "cache"  # gitignored; `cached_table` keeps its tables here


def table_digest(reps: int, designs: dict[str, Design] = DESIGNS) -> str:
    """SHA-256 of all that makes coverage_table(reps, designs): this module's and stats.py's code (its
    constants and the interval functions, SIM_SEED among them), the designs (from the profiles'
    seeds), `reps`, and the numpy and scipy versions (their generators and special functions)."""
    import scipy

    from . import stats

    h = hashlib.sha256()
    for module in (__file__, stats.__file__):
        h.update(Path(module).read_bytes())
    h.update(f"{reps}\0{designs!r}\0{np.__version__}\0{scipy.__version__}".encode())
    return h.hexdigest()


def cached_table(reps: int = 1000, designs: dict[str, Design] = DESIGNS, cache_dir: Path = CACHE_DIR) -> pd.DataFrame:
    """coverage_table(reps, designs), read from `cache_dir`/coverage-<table_digest>.csv when an earlier
    call wrote it (a book built again skips the 10 CPU-s simulation), else computed and written there
    (atomically: a file cut short is never read). The digest covers everything the table depends on,
    so a cached table is the one the code computes; a file that does not read as one is computed again,
    and one that cannot be written is not kept."""
    path = Path(cache_dir) / f"coverage-{table_digest(reps, designs)}.csv"
    if path.is_file():
        try:
            cached = pd.read_csv(path)
            if list(cached.columns) == list(Row.__dataclass_fields__) and len(cached) == len(designs) * len(
                SEED_SDS
            ) * len(KINDS):
                return cached
        except (ValueError, pd.errors.ParserError):
            pass
    table = coverage_table(reps, designs)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)  # floats as repr: read back bit for bit
    try:
        write_atomic(path, buffer.getvalue())
    except OSError:
        pass  # a read-only checkout or a full disk: computed each time, as before the cache
    return table

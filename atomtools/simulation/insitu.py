"""A simulated in-situ HRTEM series with known events: what the series workflow is scored on.

A CeO2 particle along [110] is imaged frame after frame (the first source work followed
its (110) surface at 7.5 frames/s with an SNR of about 1). On a schedule, the structure
changes the way the source work saw it change: a surface Ce column loses its top atom
(a **vacancy**) and later gets it back (**refill**), a thin surface column (the
thinnest there are, one to a few atoms) leaves (**column_vanishes**), one arrives on an
empty surface site (**column_appears**), and one moves from one surface site to another
(**migration**: a vanishing and an appearing column in the same frame). The specimen drifts by a random walk. Every
distinct structure is simulated once with abTEM (the exit wave), imaged with fixed
optics, shifted by the frame's drift (Fourier shift of the clean image) and given
Poisson noise at the dose.

Ground truth: the events (frame, position, kind, counts before and after), the column
table of every frame and the drift of every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..core.imaging import Optics, fft_friendly_size, poisson_noise, snr
from ..core.labels import column_table
from ..core.structures import ParticleSpec, build
from ..utils import Record, progress_bar
from .engine import exit_waves, images_from_exit_waves

__all__ = ["InsituConfig", "EVENT_KINDS", "make_insitu_series"]

EVENT_KINDS = ("vacancy", "refill", "column_vanishes", "column_appears", "migration")


@dataclass(frozen=True)
class InsituConfig(Record):
    """An in-situ series: the particle, the imaging, the drift and the events.

    Attributes
    ----------
    shape : (int, int)
        Frame size [px].
    sampling : float
        Pixel size [Å] (the shipped U-Net's 0.16 Å).
    n_frames : int
        Frames.
    frame_rate : float
        Frames per second [1/s] (7.5 in the source work).
    dose : float
        Dose per frame [e/Å²]; 4000 gives an SNR of about 1 over a 256 px frame of a
        26 Å particle at the default optics, the source work's regime.
    size : float
        Particle size [Å].
    profile : str
        Surface profile of the particle (:data:`atomtools.core.structures.SURFACE_PROFILES`).
    thickness : (int, int)
        Atoms per column, thinnest to thickest.
    drift : float
        Standard deviation of the drift per frame along x and y [Å].
    events : dict
        Event kind -> how many (spread evenly over the series, never in the first or
        last two frames).
    optics : dict
        :class:`~atomtools.core.imaging.Optics` fields.
    """

    shape: tuple[int, int] = (256, 256)
    sampling: float = 0.16
    n_frames: int = 24
    frame_rate: float = 7.5
    dose: float = 4000.0
    size: float = 26.0
    profile: str = "stepped"
    thickness: tuple[int, int] = (2, 8)
    drift: float = 0.15
    events: dict = field(
        default_factory=lambda: {"vacancy": 2, "refill": 1, "column_vanishes": 1, "column_appears": 1, "migration": 1}
    )
    optics: dict = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.events) - set(EVENT_KINDS)
        if unknown:
            raise ValueError(f"unknown event kinds {sorted(unknown)}; known: {list(EVENT_KINDS)}")
        if self.events.get("refill", 0) > self.events.get("vacancy", 0):
            raise ValueError("InsituConfig.events: every refill needs an earlier vacancy")
        n_events = sum(self.events.values())
        if self.n_frames < 2 * n_events + 4:
            raise ValueError(
                f"InsituConfig: {n_events} events need at least {2 * n_events + 4} frames (two apart, none in the "
                f"first or last two), got n_frames={self.n_frames}"
            )
        if not self.dose > 0 or not self.sampling > 0 or not self.frame_rate > 0:
            raise ValueError("InsituConfig: dose, sampling and frame_rate must be positive")


def _surface_columns(table: pd.DataFrame, element: str) -> pd.DataFrame:
    """Columns of ``element`` at the particle's outline (farthest from its centre per direction)."""
    sub = table[table.element == element]
    centre = sub[["x", "y"]].mean().to_numpy()
    d = np.hypot(sub.x - centre[0], sub.y - centre[1])
    return sub[d > np.percentile(d, 70)]


def _schedule(config: InsituConfig, rng: np.random.Generator) -> list[tuple[int, str]]:
    kinds = [k for k in EVENT_KINDS for _ in range(config.events.get(k, 0)) if k != "refill"]
    rng.shuffle(kinds)
    kinds += ["refill"] * config.events.get("refill", 0)  # refills come after the vacancies
    frames = np.linspace(2, config.n_frames - 3, len(kinds) + 2)[1:-1].round().astype(int)
    return list(zip(frames.tolist(), kinds))


def make_insitu_series(config: InsituConfig = InsituConfig(), *, seed: int = 0, progress: bool = True) -> dict:
    """Simulate the series: noisy frames, clean frames, drift, column tables and events.

    Parameters
    ----------
    config : InsituConfig
        What to simulate.
    seed : int
        Seed of the particle, the events' columns, the drift and the noise.
    progress : bool
        Show a progress bar over the distinct structures.

    Returns
    -------
    dict
        ``frames`` (n, H, W) float32 electron counts, ``clean`` (n, H, W) noise-free,
        ``times`` (n,) [s], ``drift`` (n, 2) true (dy, dx) shift of each frame [px],
        ``columns`` (per-frame truth table with ``frame``, positions in the drift-free
        frame of frame 0), ``events`` (``frame``, ``x``, ``y`` [Å], ``element``,
        ``kind``, ``before``, ``after``), ``snr`` (per frame), ``sampling``, ``config``.
    """
    rng = np.random.default_rng([seed, 77])
    extent = (config.shape[1] * config.sampling, config.shape[0] * config.sampling)
    spec = ParticleSpec(
        profile=config.profile,
        size=config.size,
        n_min=config.thickness[0],
        n_max=config.thickness[1],
        rotation=float(rng.uniform(0, 360)),
        seed=int(rng.integers(2**31)),
    )
    atoms = build(spec, extent=extent)
    table = column_table(atoms, sampling=config.sampling)
    cation = table.element.value_counts().idxmax() if "Ce" not in set(table.element) else "Ce"
    columns = np.asarray(atoms.arrays["column"])
    # the events, on columns chosen at the surface
    surface = _surface_columns(table, cation).sample(frac=1.0, random_state=int(rng.integers(2**31)))
    surface = surface.sort_values("count", kind="stable")  # thinnest first, random among equals
    n_thin = (
        2 * config.events.get("migration", 0)
        + config.events.get("column_appears", 0)
        + config.events.get("column_vanishes", 0)
    )
    n_thick = config.events.get("vacancy", 0)
    thin_cols = surface.column.tolist()[:n_thin]
    thick_cols = [c for c in surface[surface["count"] >= 2].column.tolist()[::-1] if c not in thin_cols][:n_thick]
    if len(thin_cols) < n_thin or len(thick_cols) < n_thick:
        raise ValueError(
            f"the particle has too few surface {cation} columns ({len(surface)}) for the events {config.events}: "
            "use a larger particle or fewer events"
        )
    removed: dict[int, list[int]] = {}  # column -> atom indices taken out (by a vacancy)
    schedule = _schedule(config, rng)
    present = np.ones(len(atoms), bool)
    # columns that appear later (alone or as a migration's target) are absent at first
    n_appear = config.events.get("column_appears", 0) + config.events.get("migration", 0)
    initially_absent = thin_cols[:n_appear]
    for col in initially_absent:
        present[columns == col] = False
    states = [present.copy()]
    changes: dict[int, np.ndarray] = {}
    events = []
    thick_pool = list(thick_cols)
    thin_pool = thin_cols[n_appear:]
    vacancies: list[int] = []

    def top_atom(col: int) -> int:
        idx = np.flatnonzero((columns == col) & present)
        return int(idx[np.argmax(atoms.positions[idx, 2])])

    def record(frame, col, kind, before, after):
        row = table[table.column == col].iloc[0]
        events.append(
            {
                "frame": frame,
                "x": row.x,
                "y": row.y,
                "element": row.element,
                "kind": kind,
                "before": before,
                "after": after,
            }
        )

    for frame, kind in schedule:
        if kind == "vacancy":
            col = thick_pool.pop()
            n = int(((columns == col) & present).sum())
            atom = top_atom(col)
            present[atom] = False
            removed.setdefault(col, []).append(atom)
            vacancies.append(col)
            record(frame, col, kind, n, n - 1)
        elif kind == "refill":
            col = vacancies.pop(0)
            n = int(((columns == col) & present).sum())
            present[removed[col].pop()] = True
            record(frame, col, kind, n, n + 1)
        elif kind == "column_vanishes":
            col = thin_pool.pop()
            n = int(((columns == col) & present).sum())
            present[columns == col] = False
            record(frame, col, kind, n, 0)
        elif kind == "column_appears":
            col = initially_absent.pop()
            present[columns == col] = True
            record(frame, col, kind, 0, int((columns == col).sum()))
        elif kind == "migration":
            source, target = thin_pool.pop(), initially_absent.pop()
            n = int(((columns == source) & present).sum())
            present[columns == source] = False
            present[columns == target] = True
            record(frame, source, kind, n, 0)
            record(frame, target, kind, 0, int((columns == target).sum()))
        changes[frame] = present.copy()
    # the frames' structures: each distinct state simulated once
    state_of_frame = np.zeros(config.n_frames, int)
    for f in range(config.n_frames):
        if f in changes:
            states.append(changes[f])
        state_of_frame[f] = len(states) - 1
    optics = Optics(**config.optics)
    gpts = fft_friendly_size(int(np.ceil(max(extent) / 0.05)))
    clean_states = []
    for state in progress_bar(states, desc="in-situ structures", disable=not progress):
        waves = exit_waves(atoms[state], gpts=(gpts, gpts), energy=optics.energy)
        clean_states.append(images_from_exit_waves(waves, extent=extent, optics=[optics], shape=config.shape)[0])
    # drift: a random walk [px], the first frame at zero
    steps = rng.normal(0.0, config.drift / config.sampling, (config.n_frames, 2))
    steps[0] = 0.0
    drift = np.cumsum(steps, axis=0)
    frames, cleans, snrs, truth = [], [], [], []
    noise = np.random.default_rng([seed, 78])
    for f in range(config.n_frames):
        clean = _fourier_shift(clean_states[state_of_frame[f]], drift[f])
        cleans.append(clean)
        frames.append(poisson_noise(clean, dose=config.dose, sampling=config.sampling, rng=noise))
        snrs.append(snr(clean, dose=config.dose, sampling=config.sampling))
        t = column_table(atoms[states[state_of_frame[f]]], sampling=config.sampling)
        truth.append(t.assign(frame=f))
    return {
        "frames": np.stack(frames).astype(np.float32),
        "clean": np.stack(cleans).astype(np.float32),
        "times": np.arange(config.n_frames) / config.frame_rate,
        "drift": drift,
        "columns": pd.concat(truth, ignore_index=True),
        "events": pd.DataFrame(events, columns=["frame", "x", "y", "element", "kind", "before", "after"]),
        "snr": np.array(snrs),
        "sampling": config.sampling,
        "config": config.to_dict(),
    }


def _fourier_shift(image: np.ndarray, shift) -> np.ndarray:
    from scipy.ndimage import fourier_shift

    # shift with the vacuum level (1) outside rather than a wrapped-around edge
    shifted = np.fft.ifftn(fourier_shift(np.fft.fftn(image - 1.0), shift)).real + 1.0
    return np.clip(shifted, 0, None).astype(np.float32)

"""The atom-segmentation library: simulated atomic-resolution images of many crystals, with truths.

After TEMImageNet (Lin et al., Sci. Rep. 11, 5386 (2021)): images of crystals of
several families along several zone axes, HAADF-STEM (the incoherent model of
:mod:`.stem`, through abTEM's probe) and HRTEM (abTEM multislice and
:mod:`.engine`'s image path), each with

- ``noisy``: electron counts at the image's dose (Poisson), with scan distortion and
  drift, background and probe tails;
- ``clean``: the expected counts, the same distortions (the denoising target);
- ``sharp``: the same scene under a 0.25 Å Gaussian probe and no tails or background
  (the deblurring target; for HRTEM images the incoherent view of the same atoms);
- ``gauss``: a Gaussian of peak 1 on every column (0.25 Å, at least 1.2 px wide),
  ``disk``: 1 within 0.45 Å (at least 1.5 px) of every column: the segmentation targets;
- the exact column positions as imaged (``positions`` [px], after the distortions),
  their atoms and heaviest element.

A column is every atom sharing a projected position; what the images show, and what
``atomtools.localize`` finds, are columns. One image per item; item ``i`` draws from
``default_rng([seed, i])`` whatever the order, so the store is the same on any number
of Dask workers and resumes where it stopped (``python -m atomtools library``).

:data:`TRAIN_CRYSTALS` are what the shipped network saw; :data:`HELD_OUT_CRYSTALS`
(wurtzite GaN along [2-1-10], rock-salt MgO along [100] and bcc W along [111]:
structures, materials and zone axes it never saw) are kept for the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from scipy import ndimage

from ..storage import datasets as _store
from ..utils import Record
from .scale import fill_store
from .stem import HAADF_CROSS_SECTION, incoherent_image, splat_gaussians

__all__ = [
    "CRYSTALS",
    "VISIBLE",
    "BASE_CRYSTALS",
    "SUPPLEMENT_CRYSTALS",
    "TRAIN_CRYSTALS",
    "HELD_OUT_CRYSTALS",
    "bulk_crystal",
    "crystal_patch",
    "LibraryConfig",
    "library_item",
    "make_library",
]


def _perovskite(a: float, symbols=("Sr", "Ti", "O")) -> Atoms:
    A, B, X = symbols
    frac = [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]
    return Atoms([A, B, X, X, X], scaled_positions=frac, cell=[a, a, a], pbc=True)


def _mos2(a: float = 3.16, layer: float = 3.17) -> Atoms:
    from ase.build import mx2

    atoms = mx2("MoS2", kind="2H", a=a, thickness=layer, vacuum=None)
    atoms.cell[2] = (0.0, 0.0, 60.0)  # one layer: the next lies far outside any patch
    atoms.pbc = True
    return atoms


def _rutile(a: float = 4.594, c: float = 2.959, u: float = 0.3053) -> Atoms:
    from ase.spacegroup import crystal

    return crystal(["Ti", "O"], basis=[(0, 0, 0), (u, u, 0)], spacegroup=136, cellpar=[a, a, c, 90, 90, 90])


def bulk_crystal(name: str) -> Atoms:
    """The unit cell of a crystal of :data:`CRYSTALS`.

    Parameters
    ----------
    name : str
        A key of :data:`CRYSTALS` (``"Au"``, ``"SrTiO3"``, ``"MoS2"``, ...).

    Returns
    -------
    ase.Atoms
        The periodic unit cell, positions [Å].

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> bulk_crystal("SrTiO3").get_chemical_formula()
    'O3SrTi'
    """
    from ase.build import bulk

    from ..core.structures import fluorite

    builders = {
        "Au": lambda: bulk("Au", "fcc", a=4.078, cubic=True),
        "Pt": lambda: bulk("Pt", "fcc", a=3.924, cubic=True),
        "Pd": lambda: bulk("Pd", "fcc", a=3.891, cubic=True),
        "CeO2": lambda: fluorite(("Ce", "O"), a=5.411),
        "SrTiO3": lambda: _perovskite(3.905),
        "Si": lambda: bulk("Si", "diamond", a=5.431, cubic=True),
        "MoS2": _mos2,
        "GaN": lambda: bulk("GaN", "wurtzite", a=3.189, c=5.185),
        "MgO": lambda: bulk("MgO", "rocksalt", a=4.212, cubic=True),
        "W": lambda: bulk("W", "bcc", a=3.165, cubic=True),
        "Al": lambda: bulk("Al", "fcc", a=4.05, cubic=True),
        "GaAs": lambda: bulk("GaAs", "zincblende", a=5.653, cubic=True),
        "TiO2": _rutile,
    }
    if name not in builders:
        raise ValueError(f"unknown crystal {name!r}; known: {sorted(builders)}")
    return builders[name]()


#: Crystal -> its family (what kind of lattice it stands for).
CRYSTALS = {
    "Au": "fcc metal",
    "Pt": "fcc metal",
    "Pd": "fcc metal",
    "CeO2": "fluorite oxide",
    "SrTiO3": "perovskite",
    "Si": "diamond (dumbbells along [110])",
    "MoS2": "2D transition-metal dichalcogenide",
    "GaN": "wurtzite",
    "MgO": "rock salt",
    "W": "bcc metal",
    "Al": "fcc metal (light)",
    "GaAs": "zinc blende (dumbbells of two elements along [110])",
    "TiO2": "rutile (light O columns beside Ti ones along [001])",
}

#: The first nine (crystal, zone axis) pairs of the training library: fcc metals, fluorite,
#: perovskite, diamond dumbbells and a 2D material.
BASE_CRYSTALS = (
    ("Au", (1, 1, 0)),
    ("Au", (1, 0, 0)),
    ("Pt", (1, 1, 0)),
    ("CeO2", (1, 1, 0)),
    ("CeO2", (1, 0, 0)),
    ("SrTiO3", (1, 0, 0)),
    ("SrTiO3", (1, 1, 0)),
    ("Si", (1, 1, 0)),
    ("MoS2", (0, 0, 1)),
)

#: Four more, added for the shipped network's second stage: light crystals
#: (Al, Si along [100]), columns of two elements (GaAs dumbbells) and light columns
#: beside heavier ones (O beside Ti in rutile), which the first nine lack.
SUPPLEMENT_CRYSTALS = (("Al", (1, 1, 0)), ("GaAs", (1, 1, 0)), ("TiO2", (0, 0, 1)), ("Si", (1, 0, 0)))

#: (crystal, zone axis) pairs of the training library.
TRAIN_CRYSTALS = BASE_CRYSTALS + SUPPLEMENT_CRYSTALS

#: (crystal, zone axis) pairs never shown to the network: the test of generalization.
#: GaN's (1, 0, 0) is [2-1-10] in four indices.
HELD_OUT_CRYSTALS = (("GaN", (1, 0, 0)), ("MgO", (1, 0, 0)), ("W", (1, 1, 1)))


def crystal_patch(
    name: str, zone_axis, *, extent: tuple[float, float], thickness: float, rotation: float = 0.0, offset=(0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected columns of a crystal slab filling a field of view.

    Parameters
    ----------
    name : str
        Crystal of :data:`CRYSTALS`.
    zone_axis : three int
        Direction [uvw] along the beam.
    extent : two float
        Field of view (x, y) [Å].
    thickness : float
        Slab thickness along the beam [Å] (a 2D material keeps its one layer).
    rotation : float
        In-plane rotation of the lattice [degrees].
    offset : two float
        Lattice origin relative to the field's centre [Å].

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Atom positions (n, 3) [Å] (x, y from the field's corner, z along the beam),
        their atomic numbers (n,), and their column index (n,).

    Examples
    --------
    >>> pos, z, col = crystal_patch("Au", (1, 0, 0), extent=(20.0, 20.0), thickness=8.0)
    >>> sorted(set(z.tolist())), bool(pos[:, :2].min() >= 0), col.max() + 1 == len(np.unique(col))
    ([79], True, np.True_)
    """
    from ..core.structures import lattice_sites

    bulk = bulk_crystal(name)
    half = 0.5 * np.hypot(*extent) + 2.0
    radius = float(np.hypot(half, 0.5 * thickness + 2.0))
    sites = lattice_sites(bulk, tuple(zone_axis), radius=radius)
    pos = sites.positions.copy()
    numbers = np.asarray(sites.numbers)
    if bulk.cell.lengths()[2] < 50:  # a bulk crystal: a slab of the thickness
        keep = np.abs(pos[:, 2]) <= 0.5 * thickness
        pos, numbers = pos[keep], numbers[keep]
    t = np.deg2rad(rotation)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    xy = pos[:, :2] @ rot.T + np.asarray(offset, float) + 0.5 * np.asarray(extent, float)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < extent[0]) & (xy[:, 1] >= 0) & (xy[:, 1] < extent[1])
    pos = np.column_stack([xy, pos[:, 2]])[inside]
    numbers = numbers[inside]
    key = np.round(pos[:, :2], 3) + 0.0
    _, column = np.unique(key, axis=0, return_inverse=True)
    return pos, numbers, column.reshape(-1)


@dataclass(frozen=True)
class LibraryConfig(Record):
    """What the atom-segmentation library draws from.

    Attributes
    ----------
    shape : two int
        Image (rows, cols) [px].
    sampling : two float
        Pixel size range [Å] (uniform).
    crystals : tuple of (str, three int)
        (crystal, zone axis) pairs drawn uniformly.
    thickness : two float
        Slab thickness range [Å] (uniform).
    stem_dose : two float
        HAADF-STEM dose range [e/Å²] (log-uniform).
    hrtem_dose : two float
        HRTEM dose range [e/Å²] (log-uniform).
    hrtem_fraction : float
        Share of HRTEM images (the rest HAADF-STEM).
    blank_fraction : float
        Share of images with no crystal (vacuum or amorphous carbon only, all-zero masks).
    region_fraction : float
        Share of crystal images where the crystal covers only part of the frame.
    support_fraction : float
        Share with an amorphous carbon support under the crystal.
    exponent : two float
        Range of the HAADF Z-exponent.
    semiangle : two float
        Probe convergence semi-angle range [mrad].
    probe_defocus : float
        Largest probe defocus [Å] (uniform in ±).
    blur : two float
        Source size and vibrations, standard deviation [Å].
    tail : two float
        Probe-tail fraction range.
    drift : float
        Largest linear drift [px per scan row] (x shear and y stretch).
    jitter : float
        Largest scan-line jitter [px] (standard deviation of a row's x offset).
    background : float
        Largest smooth background [fraction of the beam].
    energy : float
        Electron energy [eV].
    """

    shape: tuple[int, int] = (256, 256)
    sampling: tuple[float, float] = (0.06, 0.2)
    crystals: tuple = TRAIN_CRYSTALS
    thickness: tuple[float, float] = (4.0, 40.0)
    stem_dose: tuple[float, float] = (2e3, 2e6)
    hrtem_dose: tuple[float, float] = (300.0, 2e4)
    hrtem_fraction: float = 0.15
    blank_fraction: float = 0.05
    region_fraction: float = 0.4
    support_fraction: float = 0.4
    exponent: tuple[float, float] = (1.6, 2.0)
    semiangle: tuple[float, float] = (18.0, 30.0)
    probe_defocus: float = 30.0
    blur: tuple[float, float] = (0.2, 0.45)
    tail: tuple[float, float] = (0.0, 0.3)
    drift: float = 0.02
    jitter: float = 0.3
    background: float = 0.005
    energy: float = 200e3

    def __post_init__(self):
        for name in ("sampling", "thickness", "stem_dose", "hrtem_dose", "exponent", "semiangle", "blur", "tail"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"LibraryConfig.{name} must be a range (low <= high, >= 0), got {(lo, hi)}")
        if not self.crystals:
            raise ValueError("LibraryConfig.crystals is empty")
        for name, zone in self.crystals:
            if name not in CRYSTALS:
                raise ValueError(f"LibraryConfig.crystals: unknown crystal {name!r}; known: {sorted(CRYSTALS)}")
            if len(tuple(zone)) != 3:
                raise ValueError(f"LibraryConfig.crystals: zone axis of {name} must be three integers, got {zone}")
        if min(self.shape) < 32:
            raise ValueError(f"LibraryConfig.shape must be at least 32 x 32 px, got {self.shape}")


#: Least share of the brightest column's HAADF scattering for a column to count as an atom.
VISIBLE = 0.15

_MARGIN = 16  # px rendered around the frame, so distortions never sample outside


def _distortion(rng, rows: int, config: LibraryConfig) -> dict:
    jitter = ndimage.gaussian_filter1d(rng.normal(0, 1, rows + 2 * _MARGIN), 1.0)
    jitter *= rng.uniform(0, config.jitter) / max(1e-9, jitter.std())
    return {"vx": rng.uniform(-config.drift, config.drift), "vy": rng.uniform(-config.drift, config.drift), "j": jitter}


def _warp(image: np.ndarray, d: dict, shape: tuple[int, int], order: int = 3) -> np.ndarray:
    """Output pixel (r, c) sees the scene at (r (1 + vy), c + vx r + j(r)) (margin-padded scene)."""
    r = np.arange(shape[0], dtype=np.float64)[:, None]
    c = np.arange(shape[1], dtype=np.float64)[None, :]
    rs = r * (1 + d["vy"]) + _MARGIN + 0 * c
    cs = c + d["vx"] * r + np.interp(rs, np.arange(len(d["j"])), d["j"]) + _MARGIN
    return ndimage.map_coordinates(image, [rs, cs], order=order, mode="nearest").astype(np.float32)


def _apparent(rc: np.ndarray, d: dict) -> np.ndarray:
    """Where scene points (row, col) [px, frame coordinates] appear in the distorted frame."""
    r = rc[:, 0] / (1 + d["vy"])
    j = np.interp(r * (1 + d["vy"]) + _MARGIN, np.arange(len(d["j"])), d["j"])
    return np.column_stack([r, rc[:, 1] - d["vx"] * r - j])


def _region(rng, extent) -> callable:
    kind = rng.choice(["disk", "halfplane", "ellipse"])
    w, h = extent
    if kind == "halfplane":
        angle = rng.uniform(0, 2 * np.pi)
        n = np.array([np.cos(angle), np.sin(angle)])
        cut = rng.uniform(-0.3, 0.3) * min(w, h)
        return lambda xy: (xy - [w / 2, h / 2]) @ n > cut
    centre = np.array([rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h])
    a = rng.uniform(0.25, 0.5) * min(w, h)
    b = a if kind == "disk" else a * rng.uniform(0.5, 1.0)
    t = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    return lambda xy: (((xy - centre) @ rot.T) ** 2 / [a**2, b**2]).sum(axis=1) <= 1


def _carbon(rng, extent, thickness: float) -> np.ndarray:
    n = rng.poisson(0.1 * extent[0] * extent[1] * thickness)
    return np.column_stack([rng.uniform(0, extent[0], n), rng.uniform(0, extent[1], n), rng.uniform(0, thickness, n)])


def library_item(index: int, config: LibraryConfig, seed: int) -> dict:
    """Simulate library item ``index``: one image, its targets and its column table.

    Parameters
    ----------
    index : int
        Item number; it draws from ``numpy.random.default_rng([seed, index])``.
    config : LibraryConfig
        What to draw from.
    seed : int
        Master seed.

    Returns
    -------
    dict
        ``noisy``, ``clean``, ``sharp``, ``gauss`` (1, rows, cols) float32 and ``disk``
        (1, rows, cols) uint8, and the truth as :func:`atomtools.storage.write_structure`
        stores it: ``positions`` (m, 3): column (x, y) [px] as imaged and its atoms,
        ``numbers`` (m,): its heaviest atomic number, ``column`` (m,): its atoms,
        ``columns`` (m, 2): (x, y) [Å] before the distortions; ``images``: the drawn
        parameters.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    rows, cols = config.shape
    sampling = float(rng.uniform(*config.sampling))
    extent = (cols * sampling, rows * sampling)  # (x, y) [Å]
    big = (rows + 2 * _MARGIN, cols + 2 * _MARGIN)
    big_extent = (big[1] * sampling, big[0] * sampling)
    blank = rng.random() < config.blank_fraction
    name, zone = config.crystals[int(rng.integers(len(config.crystals)))]
    zone = tuple(int(v) for v in zone)
    mode = "hrtem" if rng.random() < config.hrtem_fraction else "haadf"
    thickness = float(rng.uniform(*config.thickness))
    pos, numbers, column = crystal_patch(
        name,
        zone,
        extent=big_extent,
        thickness=thickness,
        rotation=float(rng.uniform(0, 360)),
        offset=rng.uniform(-3, 3, 2),
    )
    if blank:
        pos, numbers, column = pos[:0], numbers[:0], column[:0]
    elif rng.random() < config.region_fraction:
        inside = _region(rng, big_extent)(pos[:, :2])
        pos, numbers, column = pos[inside], numbers[inside], column[inside]
    support = float(rng.uniform(20, 80)) if (blank or rng.random() < config.support_fraction) else 0.0
    carbon = _carbon(rng, big_extent, support) if support else np.zeros((0, 3))
    d = _distortion(rng, rows, config)
    params = {
        "crystal": "none" if blank else name,
        "zone": "none" if blank else "".join(str(v) for v in zone),
        "mode": mode,
        "sampling": sampling,
        "thickness": 0.0 if blank else thickness,
        "support": support,
        "drift_x": float(d["vx"]),
        "drift_y": float(d["vy"]),
        "jitter": float(d["j"].std()),
    }
    exponent = float(rng.uniform(*config.exponent))
    # the columns: one per distinct projected position, with their atoms and heaviest element;
    # only those carrying VISIBLE of the brightest column's scattering (HAADF does not show
    # O beside Ce or N beside Ga, so neither does the truth)
    if len(pos):
        _, first, inverse, counts = np.unique(column, return_index=True, return_inverse=True, return_counts=True)
        col_xy = np.zeros((len(first), 2))
        np.add.at(col_xy, inverse, pos[:, :2])
        col_xy /= counts[:, None]
        heaviest = np.zeros(len(first), int)
        np.maximum.at(heaviest, inverse, numbers)
        scattering = np.zeros(len(first))
        np.add.at(scattering, inverse, numbers.astype(float) ** exponent)
        visible = scattering >= VISIBLE * scattering.max()
        col_xy, counts, heaviest = col_xy[visible], counts[visible], heaviest[visible]
    else:
        col_xy, counts, heaviest = np.zeros((0, 2)), np.zeros(0, int), np.zeros(0, int)
    xy_all = np.vstack([pos[:, :2], carbon[:, :2]])
    z_all = np.concatenate([numbers, np.full(len(carbon), 6)])
    weights = HAADF_CROSS_SECTION * (z_all / 79.0) ** exponent
    sharp_scene = incoherent_image(xy_all, weights, shape=big, sampling=sampling, blur=0.25, semiangle=80.0)
    if mode == "haadf":
        probe = {
            "semiangle": float(rng.uniform(*config.semiangle)),
            "defocus": float(rng.uniform(-config.probe_defocus, config.probe_defocus)),
            "blur": float(rng.uniform(*config.blur)),
            "tail": float(rng.uniform(*config.tail)),
        }
        dose = float(np.exp(rng.uniform(*np.log(config.stem_dose))))
        scene = incoherent_image(
            xy_all,
            weights,
            shape=big,
            sampling=sampling,
            energy=config.energy,
            tail_width=float(rng.uniform(1.5, 4.0)),
            background=float(rng.uniform(0, config.background)),
            **probe,
        )
        # a smooth background (thickness or contamination gradients)
        yy, xx = np.mgrid[0 : big[0], 0 : big[1]] / max(big)
        slope = rng.uniform(-1, 1, 2) * rng.uniform(0, config.background)
        scene = scene + np.clip(slope[0] * (yy - 0.5) + slope[1] * (xx - 0.5) + abs(slope).sum() / 2, 0, None)
        params.update(probe, exponent=exponent)
    else:
        scene, optics = _hrtem_scene(pos, numbers, carbon, big, big_extent, sampling, rng, config)
        dose = float(np.exp(rng.uniform(*np.log(config.hrtem_dose))))
        params.update(optics)
    counts_per_unit = dose * sampling**2
    clean = _warp(scene, d, (rows, cols)) * counts_per_unit
    clean = np.clip(clean, 0, None)
    sharp = np.clip(_warp(sharp_scene, d, (rows, cols)), 0, None) * counts_per_unit
    if mode == "hrtem" and sharp.mean() > 0:  # the incoherent view, on the scale of the phase-contrast image
        sharp *= clean.mean() / sharp.mean()
    noisy = rng.poisson(clean).astype(np.float32)
    rc = np.column_stack([col_xy[:, 1], col_xy[:, 0]]) / sampling - 0.5 - _MARGIN  # frame px (row, col)
    app = _apparent(rc, d)
    inside = (app[:, 0] >= -0.5) & (app[:, 0] < rows - 0.5) & (app[:, 1] >= -0.5) & (app[:, 1] < cols - 0.5)
    app, col_xy, counts, heaviest = app[inside], col_xy[inside], counts[inside], heaviest[inside]
    sigma = max(1.2, 0.25 / sampling)
    gauss = splat_gaussians((rows, cols), app, sigma=sigma)
    radius = max(1.5, 0.45 / sampling)
    disk = splat_gaussians((rows, cols), app, sigma=radius) >= np.exp(-0.5)
    params.update(dose=dose, n_columns=int(len(app)))
    positions = np.column_stack([app[:, 1], app[:, 0], counts]).astype(np.float64)
    return {
        "index": int(index),
        "noisy": noisy[None],
        "clean": clean[None].astype(np.float32),
        "sharp": sharp[None].astype(np.float32),
        "gauss": gauss[None].astype(np.float16),
        "disk": disk[None].astype(np.uint8),
        "positions": positions,
        "numbers": heaviest.astype(np.int64),
        "column": counts.astype(np.int64),
        "columns": (col_xy - _MARGIN * sampling).astype(np.float64),
        "spec": {"crystal": params["crystal"], "zone_axis": list(zone)},
        "cell": [extent[0], extent[1], thickness],
        "images": [params],
    }


def _hrtem_scene(pos, numbers, carbon, big, big_extent, sampling, rng, config) -> tuple[np.ndarray, dict]:
    from ..core.imaging import Optics
    from .engine import exit_waves, images_from_exit_waves

    atoms = Atoms(
        numbers=np.concatenate([numbers, np.full(len(carbon), 6)]).astype(int),
        positions=np.vstack([pos, carbon]) if len(carbon) else pos,
        cell=[big_extent[0], big_extent[1], max(4.0, float(np.ptp(np.vstack([pos, carbon])[:, 2])) + 4.0)]
        if len(pos) + len(carbon)
        else [big_extent[0], big_extent[1], 4.0],
        pbc=True,
    )
    if len(atoms):
        atoms.positions[:, 2] -= atoms.positions[:, 2].min() - 2.0
    potential_sampling = 0.08
    gpts = (int(np.ceil(big_extent[0] / potential_sampling)), int(np.ceil(big_extent[1] / potential_sampling)))
    optics = Optics(
        energy=300e3,
        defocus=float(rng.uniform(-120, 120)),
        Cs=float(rng.uniform(-3e4, 3e4)),
        C5=0.0,
        focal_spread=float(rng.uniform(15, 40)),
        aperture=float("inf"),
    )
    waves = exit_waves(atoms, gpts=gpts, energy=optics.energy, slice_thickness=2.0)
    image = images_from_exit_waves(waves, extent=big_extent, optics=[optics], shape=big)[0]
    return image.astype(np.float64), {"defocus": optics.defocus, "Cs": optics.Cs, "focal_spread": optics.focal_spread}


def make_library(
    out: str | Path,
    config: LibraryConfig = LibraryConfig(),
    *,
    n_images: int,
    seed: int = 0,
    scheduler=None,
    progress=True,
) -> Path:
    """Simulate the library into a dataset store (:data:`atomtools.storage.ATOM_LIBRARY`).

    Parameters
    ----------
    out : str or Path
        Store path (``*.zarr``); an unfinished one made with the same settings resumes.
    config : LibraryConfig
        What to draw from.
    n_images : int
        Images in the store.
    seed : int
        Master seed.
    scheduler : str, optional
        As for :func:`atomtools.simulation.run_tasks` (``"synchronous"``, a Dask address,
        or ``None`` for a local cluster).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        ``out``, finished.
    """
    attrs = {"shape": list(config.shape), "n_channels": 1, "images_per_structure": 1, "energy": config.energy}
    store = dict(layout=_store.ATOM_LIBRARY, config=config.to_dict(), seed=int(seed), n_structures=int(n_images))
    return fill_store(
        out,
        **store,
        attrs=attrs,
        task=int,
        work=library_item,
        args=(config, int(seed)),
        scheduler=scheduler,
        progress=progress,
        unit="image",
    )

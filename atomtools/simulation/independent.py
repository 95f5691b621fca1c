"""A test set that shares nothing with the training simulator but abTEM itself.

Training images come from :mod:`atomtools.core.structures` (faceted particles with
column ids) and the band-cropped image path of :mod:`atomtools.simulation.engine`. A
model that only scores on images made that way has learned the simulator. The images
here are made by other code at every step:

- particles: plain cuts of ASE's bulk crystal (``ase.build.bulk``), centred on a
  cation or an anion site, as a truncated octahedron (Wulff-like), a Wulff shape of
  {111}, {100} and {110} facets, a sphere, or a slab whose thickness ramps across it
  (a wedge: thin to thick columns), rotated onto the zone axis with their own
  rotation; for fcc metals the Wulff shape is ASE's construction
  (``ase.cluster.wulff_construction``); anions kept where they have two cation
  neighbours (the training builder asks for three). :data:`COMPACT` draws whole
  compact particles 2-3 nm across at set mistilts (0, 0.5, 1, 2 degrees): the interior
  columns of a real particle;
- a carbon support of uniformly random atoms (no closest approach) on part of them;
- abTEM the plain way on the full grid: another potential sampling and slice
  thickness, the Kirkland or Lobato parametrization, frozen phonons on part of the
  images, ``apply_ctf -> intensity -> interpolate``, and another detector pixel size
  (0.125 Å by default: a user passes ``resample=True``);
- the ground truth counted independently: principal-species atoms grouped by their
  projected lattice position before the mistilt, whatever their depth.

The set is written to the dataset store with its own :data:`INDEPENDENT` layout, so
:func:`atomtools.columns.evaluation.evaluate` scores it like any test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from ..core import tables
from ..core.materials import Material, material
from ..storage import datasets as _store
from ..utils import Record
from .scale import fill_store

__all__ = [
    "IndependentConfig",
    "independent_structure",
    "make_independent_set",
    "SHAPES",
    "PARTICLES",
    "COMPACT",
    "MULTISLICE",
    "OPTICS",
]

#: Particle kinds of the independent builder.
SHAPES = ("octahedron", "sphere", "wedge", "wulff")

#: Default particle ranges of the independent set.
PARTICLES = {
    "shapes": ("octahedron", "sphere", "wedge"),
    "radius": (6.0, 12.0),
    "max_thickness": (4, 11),
    "tilt": 2.0,
    "tilt_values": (),
    "support_probability": 0.3,
}

#: Compact whole particles (truncated octahedra and Wulff shapes, cation- or anion-centred,
#: 2-3 nm across) at the mistilts a by-tilt table reports: ``IndependentConfig(**COMPACT)``.
COMPACT = {
    "shape": (512, 512),
    "sampling": 0.1,
    "particles": {
        "shapes": ("octahedron", "wulff"),
        "radius": (10.0, 16.0),
        "tilt_values": (0.0, 0.5, 1.0, 2.0),
        "support_probability": 0.3,
    },
}

#: Default multislice settings of the independent set.
MULTISLICE = {"sim_sampling": (0.035, 0.06), "slice_thickness": (1.0, 2.5), "phonon_probability": 0.3}

#: Default optics ranges of the independent set.
OPTICS = {
    "defocus": (-80.0, -20.0),
    "Cs": (-14e4, -6e4),
    "C5": (3.5e7, 6.5e7),
    "astigmatism": (0.0, 15.0),
    "focal_spread": (20.0, 45.0),
    "aperture": (20.0, 40.0),
}


@dataclass(frozen=True)
class IndependentConfig(Record):
    """What the independent test set draws from. Ranges are (low, high), drawn uniformly.

    Attributes
    ----------
    material : Material or str
        The crystal (its zone axis is the beam direction).
    shape : two int
        Image (rows, cols) [px].
    sampling : float
        Detector pixel size [Å] (not the training one: retrieval resamples).
    energy : float
        Electron energy [eV].
    particles : dict
        ``shapes`` (kinds of :data:`SHAPES`; ``wulff`` only for fcc metals),
        ``radius`` [Å], ``max_thickness`` (thickest column of the wedges [atoms]),
        ``tilt`` (largest mistilt [degrees], drawn uniformly), ``tilt_values`` (if
        given, the mistilt is one of these instead [degrees]), ``support_probability``
        (chance of a carbon support); defaults :data:`PARTICLES`, any key may be given
        alone.
    multislice : dict
        ``sim_sampling`` (potential sampling [Å]), ``slice_thickness`` [Å] and
        ``phonon_probability`` (chance of 4 frozen-phonon configurations, 0.08 Å);
        defaults :data:`MULTISLICE`.
    optics : dict
        Ranges of ``defocus``, ``Cs``, ``C5``, ``astigmatism``, ``focal_spread`` [Å]
        (defocus positive is underfocus; focal spread a standard deviation) and
        ``aperture`` [mrad]; inside the training ranges, drawn by other code; defaults
        :data:`OPTICS`.
    """

    material: Material = "CeO2"
    shape: tuple[int, int] = (256, 256)
    sampling: float = 0.125
    energy: float = 300e3
    particles: dict = field(default_factory=dict)
    multislice: dict = field(default_factory=dict)
    optics: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "material", material(self.material))
        for name, defaults in (("particles", PARTICLES), ("multislice", MULTISLICE), ("optics", OPTICS)):
            given = getattr(self, name)
            if set(given) - set(defaults):
                raise ValueError(
                    f"IndependentConfig.{name}: unknown {sorted(set(given) - set(defaults))}; known: {sorted(defaults)}"
                )
            object.__setattr__(self, name, {**defaults, **given})
        shapes = self.particles["shapes"]
        if set(shapes) - set(SHAPES) or not shapes:
            raise ValueError(f"IndependentConfig.particles['shapes']: {shapes}; expected some of {SHAPES}")

    @property
    def extent(self) -> tuple[float, float]:
        """Field of view (x, y) [Å]."""
        return (self.shape[1] * self.sampling, self.shape[0] * self.sampling)


def _beam_frame(zone) -> np.ndarray:
    """Rows x, y, z of an orthonormal frame with z along ``zone`` (cubic indices).

    The same few lines as :mod:`atomtools.core.chords`' (the counting prior) on purpose:
    this set shares no code with the pipeline it tests, so an error in one cannot hide
    in the other.
    """
    z = np.asarray(zone, float) / np.linalg.norm(zone)
    helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = helper - (helper @ z) * z
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def _cut(mat: Material, rng: np.random.Generator, kind: str, max_thickness: int, radius: float) -> Atoms:
    """A particle cut from ASE's bulk crystal, in the beam frame, centred on the origin."""
    from ase.build import bulk
    from ase.data import atomic_numbers

    if kind == "wulff" and mat.structure == "fcc":
        from ase.cluster import wulff_construction

        energies = [1.0, float(rng.uniform(1.05, 1.3)), float(rng.uniform(1.1, 1.4))]
        n_atoms = int(4 / 3 * np.pi * radius**3 / (mat.a**3 / 4))
        particle = wulff_construction(
            mat.principal, [(1, 1, 1), (1, 0, 0), (1, 1, 0)], energies, n_atoms, "fcc", latticeconstant=mat.a
        )
        pos = particle.positions - particle.positions.mean(axis=0)
        numbers = particle.numbers
    else:
        structure = {"fluorite": "fluorite", "rocksalt": "rocksalt"}.get(mat.structure, mat.structure)
        name = (
            "".join(mat.symbols) + ("2" if mat.structure == "fluorite" else "")
            if len(mat.symbols) > 1
            else mat.principal
        )
        cell = bulk(name, structure, a=mat.a, cubic=True)
        # the block reaches the particle's radius, and a wedge's thickest column (it rises from the centre)
        period = mat.a / np.sqrt(2) if tuple(sorted(np.abs(mat.zone_axis))) == (0, 1, 1) else mat.a
        reach = max(radius, max_thickness * period) if kind == "wedge" else radius
        reps = int(np.ceil(2 * (reach + 6) / mat.a)) + 1
        big = cell.repeat((reps, reps, reps))
        pos, numbers = big.positions, big.numbers
        principal = numbers == cell.numbers[0]
        anchor_pool = (
            np.flatnonzero(principal if rng.random() < 0.5 else ~principal)
            if (~principal).any()
            else np.flatnonzero(principal)
        )
        centre = np.full(3, reps * mat.a / 2)
        anchor = anchor_pool[np.argmin(np.linalg.norm(pos[anchor_pool] - centre, axis=1))]
        pos = pos - pos[anchor]
    frame = _beam_frame(mat.zone_axis)
    crystal_pos = pos.copy()
    pos = pos @ frame.T
    principal = numbers == atomic_numbers[mat.principal]
    if kind == "octahedron" or (kind == "wulff" and mat.structure != "fcc"):
        # facet distances in proportion to surface energies (Wulff): {111} lowest
        d111 = radius
        d100 = float(rng.uniform(1.0, 1.45)) * d111
        d110 = float(rng.uniform(1.1, 1.5)) * d111 if kind == "wulff" else np.inf
        keep = np.ones(len(pos), bool)
        for n in [(1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1)]:
            keep &= np.abs(crystal_pos @ (np.asarray(n) / np.sqrt(3))) <= d111
        for n in np.eye(3):
            keep &= np.abs(crystal_pos @ n) <= d100
        for n in [(1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1), (0, 1, 1), (0, 1, -1)]:
            keep &= np.abs(crystal_pos @ (np.asarray(n) / np.sqrt(2))) <= d110
    elif kind == "sphere":
        keep = np.linalg.norm(pos, axis=1) <= radius
    elif kind == "wedge":
        period = mat.a / np.sqrt(2) if tuple(sorted(np.abs(mat.zone_axis))) == (0, 1, 1) else mat.a
        direction = rng.uniform(0, 2 * np.pi)
        u = pos[:, 0] * np.cos(direction) + pos[:, 1] * np.sin(direction)
        top = (1 + (max_thickness - 1) * (u + radius) / (2 * radius)) * period  # a ramp from 1 atom to the thickest
        keep = (np.hypot(pos[:, 0], pos[:, 1]) <= radius) & (pos[:, 2] >= -0.1) & (pos[:, 2] < top - 0.1)
    else:  # wulff of an fcc metal: the whole construction
        keep = np.ones(len(pos), bool)
    if not (kind == "wulff" and mat.structure == "fcc") and (~principal).any():
        # anions (O) stay where they bond to at least two kept cations
        cations = pos[keep & principal]
        bond = mat.a * np.sqrt(3) / 4 * 1.05
        n_bonds = cKDTree(cations).query_ball_point(pos, r=bond, return_length=True)
        keep = np.where(principal, keep, n_bonds >= 2)
    atoms = Atoms(numbers=numbers[keep], positions=pos[keep])
    atoms.positions -= (atoms.positions.min(axis=0) + atoms.positions.max(axis=0)) / 2
    return atoms


def _truth(atoms: Atoms, mat: Material, sampling: float, lattice_xy: np.ndarray) -> tuple[np.ndarray, object]:
    """Columns counted from the atoms: group by projected lattice position (before tilt)."""
    channel_of = {s: c for c, group in enumerate(mat.channels) for s in group}
    symbols = np.array(atoms.get_chemical_symbols())
    rows = []
    for element in sorted(set(symbols) & set(channel_of)):
        sel = np.flatnonzero(symbols == element)
        key = np.round(lattice_xy[sel] / 0.05).astype(np.int64)
        _, group = np.unique(key, axis=0, return_inverse=True)
        for g in np.unique(group):
            members = sel[group.ravel() == g]
            p = atoms.positions[members]
            rows.append(
                {
                    "column": len(rows),
                    "x": p[:, 0].mean(),
                    "y": p[:, 1].mean(),
                    "element": element,
                    "channel": channel_of[element],
                    "count": len(members),
                    "z_min": p[:, 2].min(),
                    "z_max": p[:, 2].max(),
                }
            )
    table = tables.new_table(rows, kind="truth", sampling=sampling)
    return tables.to_array(table), table


def independent_structure(index: int, config: IndependentConfig, seed: int) -> dict:
    """Build and image test structure ``index``: deterministic in (config, seed, index).

    Parameters
    ----------
    index : int
        Structure index.
    config : IndependentConfig
        The ranges.
    seed : int
        Master seed.

    Returns
    -------
    dict
        As :func:`atomtools.storage.write_structure` takes (one image).
    """
    import abtem

    rng = np.random.default_rng([int(seed), int(index), 77])
    u = rng.uniform
    mat = config.material
    kind = str(rng.choice(config.particles["shapes"]))
    radius = float(u(*config.particles["radius"]))
    n_max = int(rng.integers(config.particles["max_thickness"][0], config.particles["max_thickness"][1] + 1))
    extent = config.extent
    for _ in range(20):  # shrink by 10 % steps until the particle fits the field with 3 Å to spare
        particle = _cut(mat, rng, kind, n_max, radius)
        if np.abs(particle.positions[:, :2]).max() * np.sqrt(2) < min(extent) / 2 - 3.0:
            break
        radius *= 0.9
    lattice_xy = particle.positions[:, :2].copy()
    tilt, tilt_axis, rotation = float(u(0, config.particles["tilt"])), float(u(0, 180)), float(u(0, 360))
    if config.particles["tilt_values"]:  # drawn after the others: sets without it are unchanged
        tilt = float(rng.choice(config.particles["tilt_values"]))
    axis = (np.cos(np.radians(tilt_axis)), np.sin(np.radians(tilt_axis)), 0.0)
    particle.rotate(tilt, axis, center=(0, 0, 0))
    particle.rotate(rotation, "z", center=(0, 0, 0))
    turn = np.radians(rotation)
    lattice_xy = lattice_xy @ np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]])
    shift = np.array(extent) / 2 + u(-1.5, 1.5, 2)
    particle.positions[:, :2] += shift
    lattice_xy += shift
    particle.positions[:, 2] += 4.0 - particle.positions[:, 2].min()
    top = particle.positions[:, 2].max()
    support = float(u(10, 25)) if u() < config.particles["support_probability"] else 0.0
    cell_atoms = particle.copy()
    if support:
        n_c = int(0.1 * extent[0] * extent[1] * support)
        carbon = Atoms("C" * n_c, positions=rng.random((n_c, 3)) * [extent[0], extent[1], support] + [0, 0, top + 2.0])
        cell_atoms += carbon
    cell_atoms.cell = [extent[0], extent[1], cell_atoms.positions[:, 2].max() + 4.0]
    cell_atoms.pbc = True
    columns, table = _truth(particle, mat, config.sampling, lattice_xy)

    sim_sampling, slice_thickness = (
        float(u(*config.multislice["sim_sampling"])),
        float(u(*config.multislice["slice_thickness"])),
    )
    parametrization = str(rng.choice(["kirkland", "lobato"]))
    phonons = u() < config.multislice["phonon_probability"]
    optics = {name: float(u(*config.optics[name])) for name in OPTICS}
    optics["astigmatism_angle"] = float(u(0, 180))
    model = (
        abtem.FrozenPhonons(cell_atoms, num_configs=4, sigmas=0.08, seed=int(rng.integers(2**31)))
        if phonons
        else cell_atoms
    )
    abtem.config.set({"dask.lazy": False, "diagnostics.progress_bar": False})
    potential = abtem.Potential(
        model, sampling=sim_sampling, slice_thickness=slice_thickness, parametrization=parametrization
    )
    waves = abtem.PlaneWave(energy=config.energy).multislice(potential)
    ctf = abtem.CTF(
        energy=config.energy,
        semiangle_cutoff=optics["aperture"],
        focal_spread=np.sqrt(2) * optics["focal_spread"],
        aberration_coefficients={
            "C10": -optics["defocus"],
            "C12": optics["astigmatism"],
            "phi12": np.radians(optics["astigmatism_angle"]),
            "C30": optics["Cs"],
            "C50": optics["C5"],
        },
    )
    intensity = waves.apply_ctf(ctf).intensity()
    array = np.asarray(intensity.array)
    if array.ndim == 3:  # frozen phonons: the mean over configurations
        array = array.mean(axis=0)
    image = abtem.Images(array, sampling=intensity.sampling).interpolate(
        gpts=(config.shape[1], config.shape[0]), method="fft"
    )
    clean = np.asarray(image.array, np.float32).T[None]
    principal = table[table.channel == 0]
    params = {
        "index": int(index),
        "structure": int(index),
        "profile": kind,
        "builder": "ase-wulff" if kind == "wulff" and mat.structure == "fcc" else "ase-cut",
        "radius": radius,
        "max_count": int(principal["count"].max()) if len(principal) else 0,
        "mean_count": float(principal["count"].mean()) if len(principal) else 0.0,
        "n_columns": int(len(principal)),
        "n_atoms": int(len(particle)),
        "tilt": tilt,
        "rotation": rotation,
        "support": support,
        "sim_sampling": sim_sampling,
        "slice_thickness": slice_thickness,
        "parametrization": parametrization,
        "frozen_phonons": int(phonons),
        **optics,
    }
    return {
        "index": int(index),
        "spec": {"builder": params["builder"], "kind": kind, "material": mat.to_dict()},
        "cell": np.asarray(cell_atoms.cell.lengths()).tolist(),
        "images": [params],
        "clean": clean,
        "positions": particle.positions.astype(np.float64),
        "numbers": particle.numbers.astype(np.uint8),
        "column": np.zeros(len(particle), np.int32),
        "columns": columns,
    }


def make_independent_set(
    out: str | Path, config: IndependentConfig, *, n_structures: int, seed=1000, scheduler=None, progress=True
) -> Path:
    """Simulate the independent test set into a dataset store (:data:`atomtools.storage.INDEPENDENT`).

    Parameters
    ----------
    config : IndependentConfig
        What to draw from.
    n_structures : int
        Images (one per structure).
    out, seed, scheduler, progress
        As for :func:`atomtools.simulation.make_dataset` (an unfinished store resumes).

    Returns
    -------
    Path
        ``out``, finished.
    """
    attrs = {
        "shape": list(config.shape),
        "n_channels": len(config.material.channels),
        "channels": [list(c) for c in config.material.channels],
        "images_per_structure": 1,
        "sampling": config.sampling,
        "energy": config.energy,
    }
    store = dict(layout=_store.INDEPENDENT, config=config.to_dict(), seed=seed, n_structures=n_structures, attrs=attrs)
    recipe = dict(task=int, work=independent_structure, args=(config, int(seed)))
    return fill_store(out, **store, **recipe, scheduler=scheduler, progress=progress, unit="image")

"""The HRTEM dataset recipe: nanoparticles imaged with abTEM, with their exact ground truth.

A dataset is ``n_structures`` structures, each drawn from :class:`SimulationConfig`'s
particle ranges (:class:`atomtools.core.structures.ParticleRanges`, the one source
of them) and imaged ``images_per_structure`` times under independently drawn optics
and doses by the abTEM engine (:mod:`atomtools.simulation.engine`). Each structure
draws from its own generator ``default_rng([seed, index])``, so a dataset is the same
in any order on any number of workers (:mod:`atomtools.simulation.scale`), and is
written to the dataset store (:data:`atomtools.storage.HRTEM` layout) as it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..core import labels as _labels
from ..core import tables
from ..core.imaging import Optics, fft_friendly_size, poisson_noise, snr, validate_sampling
from ..core.structures import DoesNotFitError, ParticleRanges, ParticleSpec, _pair, build
from ..storage import datasets as _store
from .engine import exit_waves, images_from_exit_waves
from .scale import fill_store

__all__ = [
    "SimulationConfig",
    "StructureTask",
    "sample_task",
    "fitted_build",
    "simulate_structure",
    "make_dataset",
    "versions",
]

#: What ``SimulationConfig.vary`` may randomize.
VARY = ("sim_sampling", "slice_thickness", "phonon_probability", "aperture")

#: Thermal vibration amplitude of the amorphous carbon support [Å].
SUPPORT_PHONON_SIGMAS = {"C": 0.1}


@dataclass(frozen=True)
class SimulationConfig(ParticleRanges):
    """What a dataset holds: the particle ranges (inherited from
    :class:`~atomtools.core.structures.ParticleRanges`), the optics and dose ranges each
    image draws from, and the grids.

    Ranges are ``(low, high)`` pairs drawn uniformly, the dose log-uniformly.

    Attributes
    ----------
    shape : two int
        Image size (rows, cols) [px].
    sampling : float
        Detector pixel size [Å].
    sim_sampling : float
        Largest multislice grid spacing [Å].
    slice_thickness : float
        Multislice slice thickness [Å].
    energy : float
        Electron energy [eV].
    images_per_structure : int
        Images drawn per exit wave (optics, dose and noise each).
    frozen_phonons : int
        Frozen-phonon configurations averaged per image; 0 for a static lattice.
    defocus, Cs, C5, astigmatism, focal_spread : (float, float)
        Optics ranges [Å]. Defocus follows abTEM (positive = underfocus): the default
        -90..-10 Å is 1-9 nm *overfocus*, which with the negative Cs (-15..-5 µm) and
        C5 (3-7 mm) of an aberration-corrected microscope is negative-Cs imaging
        (bright atoms), the conditions of the source work. The focal spread is a
        standard deviation (see :class:`atomtools.core.imaging.Optics`).
    aperture : float
        Objective aperture semi-angle [mrad].
    dose : (float, float)
        Electron dose [e/Å²], drawn log-uniformly.
    n_classes : int
        Label classes: 0 background, 1..n_classes-1 atoms per column (thicker clipped).
    label_radius : float
        Radius of a column in the hard label maps [Å].
    vary : dict
        Domain randomization of what a simulator or microscope changes and a network
        must not depend on, each drawn per structure (or per image) when given:
        ``sim_sampling`` (potential sampling [Å]), ``slice_thickness`` [Å] and
        ``phonon_probability`` (chance of frozen phonons when ``frozen_phonons`` > 0)
        per structure, ``aperture`` [mrad] per image; ranges as (low, high). Empty:
        the fixed values above (and the same dataset as before these existed).
    """

    # the grids and the beam
    shape: tuple[int, int] = (256, 256)
    sampling: float = 0.16
    sim_sampling: float = 0.05
    slice_thickness: float = 2.0
    energy: float = 300e3
    # what each image draws: optics and dose
    defocus: tuple[float, float] = (-90.0, -10.0)
    Cs: tuple[float, float] = (-15e4, -5e4)
    C5: tuple[float, float] = (3e7, 7e7)
    astigmatism: tuple[float, float] = (0.0, 20.0)
    focal_spread: tuple[float, float] = (20.0, 50.0)
    aperture: float = 30.0
    dose: tuple[float, float] = (100.0, 5000.0)
    # how many, and the labels
    images_per_structure: int = 8
    frozen_phonons: int = 0
    n_classes: int = 13
    label_radius: float = 0.6
    vary: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Raise a ValueError naming the parameter if any setting is unusable."""
        super().validate()
        owner = type(self).__name__
        if len(self.shape) != 2 or min(self.shape) < 16:
            raise ValueError(f"{owner}.shape must be two sizes >= 16 px, got {self.shape!r}")
        for name in ("sampling", "sim_sampling", "slice_thickness", "energy", "aperture", "label_radius"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{owner}.{name} must be positive, got {getattr(self, name)!r}")
        if self.images_per_structure < 1:
            raise ValueError(f"{owner}.images_per_structure must be >= 1, got {self.images_per_structure}")
        if self.frozen_phonons < 0:
            raise ValueError(f"{owner}.frozen_phonons must be >= 0, got {self.frozen_phonons}")
        for name in ("focal_spread", "astigmatism", "defocus", "Cs", "C5"):
            _pair(owner, name, getattr(self, name))
        _pair(owner, "dose", self.dose, positive=True)
        if self.n_classes < 2:
            raise ValueError(f"{owner}.n_classes must be >= 2, got {self.n_classes}")
        if self.focal_spread[0] < 0 or self.astigmatism[0] < 0:
            raise ValueError(f"{owner}.focal_spread and astigmatism must be >= 0 [Å]")
        unknown = set(self.vary) - set(VARY)
        if unknown:
            raise ValueError(f"{owner}.vary: unknown {sorted(unknown)}; known: {sorted(VARY)}")
        for name, value in self.vary.items():
            _pair(
                owner,
                f"vary[{name!r}]",
                (0, value) if name == "phonon_probability" else value,
                positive=name != "phonon_probability",
            )
        finest = max(self.vary.get("sim_sampling", (self.sim_sampling,) * 2))
        widest = max(self.vary.get("aperture", (self.aperture,) * 2))
        validate_sampling(
            max(finest, self.sim_sampling), Optics(energy=self.energy, aperture=max(widest, self.aperture))
        )

    @property
    def extent(self) -> tuple[float, float]:
        """Field of view (x, y) [Å]."""
        return (self.shape[1] * self.sampling, self.shape[0] * self.sampling)

    @property
    def sim_gpts(self) -> tuple[int, int]:
        """Multislice grid (x, y) [points]."""
        return tuple(fft_friendly_size(int(np.ceil(e / self.sim_sampling - 1e-9))) for e in self.extent)

    def replace(self, **changes) -> SimulationConfig:
        """A copy with some fields changed (validated again).

        Parameters
        ----------
        **changes
            Field values.
        """
        return replace(self, **changes)


@dataclass(frozen=True)
class StructureTask:
    """One unit of work: a structure and the optics, doses and noise seeds of its images."""

    index: int
    spec: ParticleSpec
    optics: tuple[Optics, ...]
    doses: tuple[float, ...]
    noise_seeds: tuple[int, ...]
    phonon_seed: int
    sim_sampling: float | None = None
    slice_thickness: float | None = None
    frozen_phonons: int | None = None


def sample_task(config: SimulationConfig, *, seed: int, index: int) -> StructureTask:
    """Draw structure ``index`` of a dataset: deterministic in (config, seed, index) alone.

    Each structure draws from its own generator ``default_rng([seed, index])``, so the
    result does not depend on the order in which workers take the tasks.

    Parameters
    ----------
    config : SimulationConfig
        The ranges.
    seed : int
        Master seed of the dataset.
    index : int
        Structure index.

    Returns
    -------
    StructureTask
        The particle spec, and per image its optics, dose [e/Å²] and noise seed; the phonon seed, and
        the domain-randomized settings where ``config.vary`` asks for them.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    u = rng.uniform
    spec = config.sample(rng)
    optics, doses, noise_seeds = [], [], []
    for _ in range(config.images_per_structure):
        optics.append(
            Optics(
                energy=config.energy,
                defocus=float(u(*config.defocus)),
                Cs=float(u(*config.Cs)),
                C5=float(u(*config.C5)),
                astigmatism=float(u(*config.astigmatism)),
                astigmatism_angle=float(u(0, 180)),
                focal_spread=float(u(*config.focal_spread)),
                aperture=config.aperture,
            )
        )
        doses.append(float(np.exp(u(np.log(config.dose[0]), np.log(config.dose[1])))))
        noise_seeds.append(int(rng.integers(2**31)))
    task = StructureTask(
        index=int(index),
        spec=spec,
        optics=tuple(optics),
        doses=tuple(doses),
        noise_seeds=tuple(noise_seeds),
        phonon_seed=int(rng.integers(2**31)),
    )
    return _vary(task, config.vary, rng, frozen_phonons=config.frozen_phonons) if config.vary else task


def _vary(task: StructureTask, vary: dict, rng: np.random.Generator, *, frozen_phonons: int) -> StructureTask:
    """Draw the domain-randomized settings of a structure (after all other draws)."""
    changes = {}
    if "sim_sampling" in vary:
        changes["sim_sampling"] = float(rng.uniform(*vary["sim_sampling"]))
    if "slice_thickness" in vary:
        changes["slice_thickness"] = float(rng.uniform(*vary["slice_thickness"]))
    if "phonon_probability" in vary:
        changes["frozen_phonons"] = frozen_phonons if rng.random() < vary["phonon_probability"] else 0
    if "aperture" in vary:
        changes["optics"] = tuple(replace(o, aperture=float(rng.uniform(*vary["aperture"]))) for o in task.optics)
    return replace(task, **changes)


def fitted_build(spec: ParticleSpec, extent):
    """Build, shrinking the particle by 10 % steps until it fits the field of view.

    Parameters
    ----------
    spec : ParticleSpec
        The model.
    extent : two float
        Field of view (x, y) [Å].

    Returns
    -------
    (ParticleSpec, ase.Atoms)
        The spec actually built (its size may be smaller) and the cell.
    """
    for _ in range(20):
        try:
            return spec, build(spec, extent=extent)
        except DoesNotFitError:
            spec = replace(spec, size=round(spec.size * 0.9, 6))
    raise ValueError(f"no particle of profile {spec.profile!r} fits a {extent} Å field")


def _phonon_sigmas(mat) -> dict:
    """Thermal vibration amplitudes of the material's species and of the carbon support [Å]."""
    return {**SUPPORT_PHONON_SIGMAS, **{s: mat.phonon_sigma(s) for s in mat.symbols}}


def simulate_structure(task: StructureTask, config: SimulationConfig) -> dict:
    """Simulate one structure: model, exit wave, its images, noise and ground truth.

    Parameters
    ----------
    task : StructureTask
        What to simulate (:func:`sample_task`).
    config : SimulationConfig
        The grids and the material.

    Returns
    -------
    dict
        Arrays and JSON-able metadata, as :func:`atomtools.storage.write_structure` takes.
    """
    c, mat = config, config.material
    spec, atoms = fitted_build(task.spec, c.extent)
    gt = _labels.ground_truth(atoms, shape=c.shape, sampling=c.sampling, n_classes=c.n_classes, radius=c.label_radius)
    n_phonons = c.frozen_phonons if task.frozen_phonons is None else task.frozen_phonons
    phonons = {"frozen_phonons": n_phonons, "seed": task.phonon_seed, "phonon_sigmas": _phonon_sigmas(mat)}
    grid = (
        c.sim_gpts
        if task.sim_sampling is None
        else tuple(fft_friendly_size(int(np.ceil(e / task.sim_sampling))) for e in c.extent)
    )
    thickness = c.slice_thickness if task.slice_thickness is None else task.slice_thickness
    waves = exit_waves(atoms, gpts=grid, energy=c.energy, slice_thickness=thickness, **phonons)
    clean = images_from_exit_waves(waves, extent=config.extent, optics=task.optics, shape=config.shape)
    support_mask = gt["distance"].min(axis=0) < 2.0
    k = len(task.optics)
    noisy = np.empty_like(clean)
    images = []
    table = gt["table"]
    cation = table[table.channel == 0]
    for j in range(k):
        noisy[j] = poisson_noise(
            clean[j], dose=task.doses[j], sampling=config.sampling, rng=np.random.default_rng(task.noise_seeds[j])
        )
        images.append(
            {
                "index": task.index * k + j,
                "structure": task.index,
                "profile": spec.profile,
                "size": spec.size,
                "truncation": spec.truncation,
                "n_min": spec.n_min,
                "n_max": spec.n_max,
                "max_count": int(cation["count"].max()) if len(cation) else 0,
                "mean_count": float(cation["count"].mean()) if len(cation) else 0.0,
                "n_columns": int(len(cation)),
                "n_atoms": int(len(atoms)),
                "tilt": spec.tilt,
                "tilt_axis": spec.tilt_axis,
                "rotation": spec.rotation,
                **{f"vacancy_{el}": spec.vacancies.get(el, 0.0) for el in mat.symbols},
                **{f"adatoms_{el}": spec.adatoms.get(el, 0) for el in mat.symbols},
                "support": spec.support,
                "anion_bonds": int(mat.min_bonds if spec.anion_bonds is None else spec.anion_bonds),
                **task.optics[j].to_dict(),
                **(
                    {"sim_sampling": c.extent[0] / grid[0], "slice_thickness": thickness, "frozen_phonons": n_phonons}
                    if c.vary
                    else {}
                ),
                "dose": task.doses[j],
                "snr": snr(clean[j], dose=task.doses[j], sampling=config.sampling, mask=support_mask),
                "seed": spec.seed,
                "noise_seed": task.noise_seeds[j],
            }
        )
    rep = lambda a: np.repeat(a[None], k, axis=0)  # noqa: E731 - labels are the same for every image of a structure
    return {
        "index": task.index,
        "spec": spec.to_dict(),
        "cell": np.asarray(atoms.cell.lengths()).tolist(),
        "images": images,
        "clean": clean,
        "noisy": noisy,
        "labels": rep(gt["labels"]),
        "distance": rep(gt["distance"].astype(np.float16)),
        "nearest": rep(gt["nearest"]),
        "weights": rep(gt["weights"]),
        "positions": atoms.positions.astype(np.float64),
        "numbers": atoms.numbers.astype(np.uint8),
        "column": atoms.arrays["column"].astype(np.int32),
        "columns": tables.to_array(table),
    }


def versions() -> dict:
    """Versions of the packages that decide a dataset's bytes.

    Returns
    -------
    dict
        Package name -> version.
    """
    from importlib.metadata import version

    return {name: version(name) for name in ("atomtools", "abtem", "ase", "numpy", "scipy", "zarr")}


def make_dataset(
    out: str | Path,
    config: SimulationConfig,
    *,
    n_structures: int,
    seed: int = 0,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Simulate a dataset into a Zarr store; resumes an unfinished one.

    Parameters
    ----------
    out : str or Path
        Store path (``*.zarr``).
    config : SimulationConfig
        What to simulate.
    n_structures : int
        Number of structures; the dataset holds ``n_structures * images_per_structure`` images.
    seed : int
        Master seed: the same (config, n_structures, seed) give byte-identical arrays.
    scheduler : str, optional
        ``None``: a Dask ``LocalCluster`` of ``n_workers`` single-threaded processes;
        ``"synchronous"``: run here, in this process (no cluster); any other string:
        the address of a running Dask scheduler (``tcp://host:8786``), e.g. of a
        cluster started with dask-jobqueue.
    n_workers : int, optional
        Workers of the local cluster (default: the number of CPU cores).
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The finished store.
    """

    config.validate()
    attrs = {
        "shape": list(config.shape),
        "n_channels": len(config.material.channels),
        "channels": [list(c) for c in config.material.channels],
        "images_per_structure": config.images_per_structure,
        "sampling": config.sampling,
        "energy": config.energy,
        "n_classes": config.n_classes,
        "label_radius": config.label_radius,
        "versions": versions(),
    }
    return fill_store(
        out,
        layout=_store.HRTEM,
        config=config.to_dict(),
        seed=seed,
        n_structures=n_structures,
        attrs=attrs,
        task=lambda i: sample_task(config, seed=seed, index=i),
        work=simulate_structure,
        args=(config,),
        scheduler=scheduler,
        n_workers=n_workers,
        progress=progress,
    )

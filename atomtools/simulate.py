"""HRTEM images of nanoparticles with abTEM, many per exit wave, scaled out on Dask.

The expensive step is the multislice exit wave; defocus, aberrations, focal spread,
the detector and the dose are cheap once it exists. So each structure gets one
multislice run (per frozen-phonon configuration) and ``images_per_structure`` images
under independently drawn optics and doses.

The image path, exactly equivalent to abTEM's ``apply_ctf -> intensity ->
interpolate(method="fft")`` on the full grid (``tests/test_simulate.py`` checks): the
exit wave's spectrum is cropped to the smallest grid that still holds every frequency
the objective aperture passes and twice that for the intensity; abTEM's ``CTF`` is
applied there; the intensity is Fourier-resampled to the detector grid. Images come
back indexed ``[row, col]`` = ``[y, x]`` (see :mod:`atomtools.labels`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from . import labels as _labels
from . import store as _store
from .imaging import (
    Optics,
    fft_friendly_size,
    fourier_crop,
    max_wave_frequency,
    poisson_noise,
    snr,
    validate_sampling,
)
from .structures import CEO2_LATTICE_CONSTANT, SURFACE_PROFILES, ParticleSpec, build

__all__ = [
    "SimulationConfig",
    "StructureTask",
    "configure_abtem",
    "sample_task",
    "exit_waves",
    "images_from_exit_waves",
    "reference_image",
    "fitted_build",
    "simulate_structure",
    "make_dataset",
    "profile_config",
    "versions",
]

#: Thermal vibration amplitudes for frozen phonons [Å] (CeO2 at room temperature).
PHONON_SIGMAS = {"Ce": 0.062, "O": 0.087, "C": 0.1}


def configure_abtem() -> None:
    """Eager abTEM with deterministic FFT plans (FFTW_ESTIMATE, one thread), no progress bars."""
    import abtem

    abtem.config.set(
        {
            "dask.lazy": False,
            "diagnostics.progress_bar": False,
            "fft": "fftw",
            "fftw.threads": 1,
            "fftw.planning_effort": "FFTW_ESTIMATE",
        }
    )


def _range(name: str, value, *, positive: bool = False, integer: bool = False) -> tuple:
    try:
        lo, hi = (int(v) if integer else float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"SimulationConfig.{name} must be a (low, high) pair, got {value!r}") from exc
    if lo > hi:
        raise ValueError(f"SimulationConfig.{name} must have low <= high, got {value!r}")
    if positive and lo <= 0:
        raise ValueError(f"SimulationConfig.{name} must be positive, got {value!r}")
    return (lo, hi)


@dataclass(frozen=True)
class SimulationConfig:
    """What a dataset holds: ranges each structure and image draws from, and the grids.

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
    elements : two str
        Cation and anion of the fluorite crystal.
    a : float
        Lattice constant [Å].
    profiles : tuple of str
        Particle kinds drawn from (see :class:`atomtools.structures.ParticleSpec`).
    size : (float, float)
        Particle size: distance between opposite {111} facets [Å].
    truncation : (float, float)
        {100}/{111} facet distance ratio.
    thickness : (int, int)
        Column thickness range of the profile kinds [atoms].
    profile_width : (float, float)
        Terrace width / saw-tooth half period [Å].
    tilt : float
        Largest mistilt [degrees], about a random in-plane axis.
    shift : float
        Largest lateral offset from the centre [Å].
    vacancies : dict
        Element -> (low, high) vacancy fraction.
    adatoms : dict
        Element -> largest number of adatoms.
    support_probability : float
        Chance of an amorphous carbon support.
    support : (float, float)
        Support thickness [Å].
    defocus, Cs, C5, astigmatism, focal_spread : (float, float)
        Optics ranges [Å]. Defocus follows abTEM (positive = underfocus): the default
        -90..-10 Å is 1-9 nm *overfocus*, which with the negative Cs (-15..-5 µm) and
        C5 (3-7 mm) of an aberration-corrected microscope is negative-Cs imaging
        (bright atoms), the conditions of the source work. The focal spread is a
        standard deviation (see :class:`atomtools.imaging.Optics`).
    aperture : float
        Objective aperture semi-angle [mrad].
    dose : (float, float)
        Electron dose [e/Å²], drawn log-uniformly.
    n_classes : int
        Label classes: 0 background, 1..n_classes-1 atoms per column (thicker clipped).
    label_radius : float
        Radius of a column in the hard label maps [Å].
    """

    shape: tuple[int, int] = (256, 256)
    sampling: float = 0.16
    sim_sampling: float = 0.05
    slice_thickness: float = 2.0
    energy: float = 300e3
    images_per_structure: int = 8
    frozen_phonons: int = 0
    elements: tuple[str, str] = ("Ce", "O")
    a: float = CEO2_LATTICE_CONSTANT
    profiles: tuple[str, ...] = SURFACE_PROFILES
    size: tuple[float, float] = (15.0, 34.0)
    truncation: tuple[float, float] = (1.0, 1.5)
    thickness: tuple[int, int] = (1, 12)
    profile_width: tuple[float, float] = (5.0, 12.0)
    tilt: float = 3.0
    shift: float = 2.0
    vacancies: dict = field(default_factory=lambda: {"O": (0.0, 0.08), "Ce": (0.0, 0.02)})
    adatoms: dict = field(default_factory=lambda: {"Ce": 6})
    support_probability: float = 0.3
    support: tuple[float, float] = (10.0, 30.0)
    defocus: tuple[float, float] = (-90.0, -10.0)
    Cs: tuple[float, float] = (-15e4, -5e4)
    C5: tuple[float, float] = (3e7, 7e7)
    astigmatism: tuple[float, float] = (0.0, 20.0)
    focal_spread: tuple[float, float] = (20.0, 50.0)
    aperture: float = 30.0
    dose: tuple[float, float] = (100.0, 5000.0)
    n_classes: int = 13
    label_radius: float = 0.6

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the parameter if any setting is unusable."""
        from ase.data import atomic_numbers

        if len(self.shape) != 2 or min(self.shape) < 16:
            raise ValueError(f"SimulationConfig.shape must be two sizes >= 16 px, got {self.shape!r}")
        for name in ("sampling", "sim_sampling", "slice_thickness", "energy", "a", "aperture", "label_radius"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"SimulationConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.images_per_structure < 1:
            raise ValueError(f"SimulationConfig.images_per_structure must be >= 1, got {self.images_per_structure}")
        if self.frozen_phonons < 0:
            raise ValueError(f"SimulationConfig.frozen_phonons must be >= 0, got {self.frozen_phonons}")
        for el in self.elements:
            if el not in atomic_numbers:
                raise ValueError(f"SimulationConfig.elements: unknown element {el!r}")
        for p in self.profiles:
            if p not in SURFACE_PROFILES:
                raise ValueError(f"SimulationConfig.profiles: unknown profile {p!r}; expected any of {SURFACE_PROFILES}")
        if not self.profiles:
            raise ValueError("SimulationConfig.profiles must name at least one profile")
        for name in ("size", "truncation", "profile_width", "support", "focal_spread", "astigmatism"):
            _range(name, getattr(self, name))
        for name in ("size", "profile_width", "dose"):
            _range(name, getattr(self, name), positive=True)
        for name in ("defocus", "Cs", "C5"):
            _range(name, getattr(self, name))
        lo, hi = _range("thickness", self.thickness, integer=True)
        if lo < 1:
            raise ValueError(f"SimulationConfig.thickness must start at >= 1 atom, got {self.thickness!r}")
        if self.n_classes < 2:
            raise ValueError(f"SimulationConfig.n_classes must be >= 2, got {self.n_classes}")
        for el, rng in self.vacancies.items():
            if el not in self.elements:
                raise ValueError(f"SimulationConfig.vacancies: {el!r} is not one of the elements {self.elements}")
            lo_v, hi_v = _range(f"vacancies[{el!r}]", rng)
            if lo_v < 0 or hi_v >= 1:
                raise ValueError(f"SimulationConfig.vacancies[{el!r}] must be fractions in [0, 1), got {rng!r}")
        for el, n in self.adatoms.items():
            if el not in self.elements or int(n) < 0:
                raise ValueError(f"SimulationConfig.adatoms[{el!r}]={n!r}: expected an element of {self.elements} and a count >= 0")
        if not 0 <= self.support_probability <= 1:
            raise ValueError(f"SimulationConfig.support_probability must lie in [0, 1], got {self.support_probability}")
        if not 0 <= self.tilt <= 15:
            raise ValueError(f"SimulationConfig.tilt must lie in [0, 15] degrees, got {self.tilt}")
        if self.focal_spread[0] < 0 or self.astigmatism[0] < 0:
            raise ValueError("SimulationConfig.focal_spread and astigmatism must be >= 0 [Å]")
        validate_sampling(self.sim_sampling, Optics(energy=self.energy, aperture=self.aperture))

    @property
    def extent(self) -> tuple[float, float]:
        """Field of view (x, y) [Å]."""
        return (self.shape[1] * self.sampling, self.shape[0] * self.sampling)

    @property
    def sim_gpts(self) -> tuple[int, int]:
        """Multislice grid (x, y) [points]."""
        return tuple(fft_friendly_size(int(np.ceil(e / self.sim_sampling - 1e-9))) for e in self.extent)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        d["vacancies"] = {k: list(v) for k, v in self.vacancies.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SimulationConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown SimulationConfig parameters: {sorted(unknown)}; known: {sorted(names)}")
        d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        if "vacancies" in d:
            d["vacancies"] = {k: tuple(v) for k, v in d["vacancies"].items()}
        return cls(**d)

    def replace(self, **changes) -> "SimulationConfig":
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


def sample_task(config: SimulationConfig, *, seed: int, index: int) -> StructureTask:
    """Draw structure ``index`` of a dataset: deterministic in (config, seed, index) alone.

    Each structure draws from its own generator ``default_rng([seed, index])``, so the
    result does not depend on the order in which workers take the tasks.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    u = rng.uniform
    profile = str(rng.choice(config.profiles))
    t_lo, t_hi = config.thickness
    n_max = int(rng.integers(t_lo, t_hi + 1))
    n_min = int(rng.integers(t_lo, n_max + 1))
    spec = ParticleSpec(
        profile=profile,
        size=float(u(*config.size)),
        truncation=float(u(*config.truncation)),
        n_min=n_min,
        n_max=n_max,
        profile_width=float(u(*config.profile_width)),
        profile_direction=float(u(0, 180)),
        tilt=float(u(0, config.tilt)),
        tilt_axis=float(u(0, 180)),
        rotation=float(u(0, 360)),
        shift=(float(u(-config.shift, config.shift)), float(u(-config.shift, config.shift))),
        vacancies={el: float(u(*r)) for el, r in sorted(config.vacancies.items())},
        adatoms={el: int(rng.integers(0, n + 1)) for el, n in sorted(config.adatoms.items())},
        support=float(u(*config.support)) if u() < config.support_probability else 0.0,
        seed=int(rng.integers(2**31)),
        elements=tuple(config.elements),
        a=config.a,
    )
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
    return StructureTask(index=int(index), spec=spec, optics=tuple(optics), doses=tuple(doses), noise_seeds=tuple(noise_seeds), phonon_seed=int(rng.integers(2**31)))


def exit_waves(atoms, *, gpts: tuple[int, int], energy: float, slice_thickness: float = 2.0, frozen_phonons: int = 0, seed: int = 0) -> np.ndarray:
    """Plane-wave multislice exit waves with abTEM.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic simulation cell.
    gpts : two int
        Grid (x, y) [points].
    energy : float
        Electron energy [eV].
    slice_thickness : float
        Slice thickness [Å].
    frozen_phonons : int
        Number of frozen-phonon configurations; 0 for the static lattice.
    seed : int
        Seed of the phonon displacements.

    Returns
    -------
    numpy.ndarray
        (configurations, nx, ny) complex64 exit waves in abTEM's (x, y) order,
        normalized to 1 per pixel in vacuum.
    """
    import abtem
    import dask

    configure_abtem()
    model = atoms
    if frozen_phonons:
        sigmas = {s: PHONON_SIGMAS.get(s, 0.08) for s in set(atoms.get_chemical_symbols())}
        model = abtem.FrozenPhonons(atoms, num_configs=frozen_phonons, sigmas=sigmas, seed=seed)
    with dask.config.set(scheduler="synchronous"):
        potential = abtem.Potential(model, gpts=gpts, slice_thickness=slice_thickness, projection="infinite", parametrization="lobato")
        waves = abtem.PlaneWave(energy=energy).multislice(potential)
        array = np.asarray(waves.array)
    return array.reshape((-1,) + array.shape[-2:]).astype(np.complex64)


def _intermediate_gpts(optics: Optics, extent, sim_gpts, out_gpts) -> tuple[int, int]:
    kmax = max_wave_frequency(optics, min(e / n for e, n in zip(extent, sim_gpts)))
    out = []
    for e, n_sim, n_out in zip(extent, sim_gpts, out_gpts):
        need = int(np.ceil(4 * kmax * e)) + 2  # intensity band 2 kmax below the grid's Nyquist
        need += need % 2
        out.append(int(min(n_sim, max(n_out, need))))
    return tuple(out)


def images_from_exit_waves(waves: np.ndarray, *, extent: tuple[float, float], optics: Sequence[Optics], shape: tuple[int, int]) -> np.ndarray:
    """Noise-free HRTEM images of one exit wave under several optics.

    Parameters
    ----------
    waves : numpy.ndarray
        (configurations, nx, ny) exit waves from :func:`exit_waves`; intensities are
        averaged over configurations.
    extent : two float
        Field of view (x, y) [Å].
    optics : sequence of Optics
        One image per entry.
    shape : two int
        Detector (rows, cols) [px].

    Returns
    -------
    numpy.ndarray
        (len(optics), rows, cols) float32 intensities, 1 in vacuum, indexed [y, x].
    """
    import abtem

    configure_abtem()
    waves = np.asarray(waves)
    if waves.ndim == 2:
        waves = waves[None]
    sim_gpts = waves.shape[-2:]
    out_gpts = (shape[1], shape[0])  # abTEM order (x, y)
    spectra = np.fft.fft2(waves)
    images = np.empty((len(optics),) + tuple(shape), np.float32)
    cache: dict = {}
    for j, opt in enumerate(optics):
        gpts = _intermediate_gpts(opt, extent, sim_gpts, out_gpts)
        if gpts not in cache:
            cropped = _crop_spectrum(spectra, gpts)
            cache[gpts] = np.fft.ifft2(cropped) * (gpts[0] * gpts[1]) / (sim_gpts[0] * sim_gpts[1])
        small = cache[gpts]
        ctf = abtem.CTF(
            energy=opt.energy,
            semiangle_cutoff=opt.aperture,
            focal_spread=opt.abtem_focal_spread,
            aberration_coefficients=opt.aberrations(),
        )
        intensity = np.zeros(gpts, np.float64)
        for psi in small:
            w = abtem.Waves(psi.astype(np.complex64), energy=opt.energy, extent=tuple(extent))
            intensity += np.asarray(w.apply_ctf(ctf).intensity().array, np.float64)
        intensity /= len(small)
        if gpts != out_gpts:
            intensity = fourier_crop(intensity, out_gpts)
        images[j] = intensity.T
    return images


def _crop_spectrum(spectra: np.ndarray, gpts: tuple[int, int]) -> np.ndarray:
    n, m = spectra.shape[-2:]
    shifted = np.fft.fftshift(spectra, axes=(-2, -1))
    cn, cm = n // 2, m // 2
    out = shifted[..., cn - gpts[0] // 2 : cn - gpts[0] // 2 + gpts[0], cm - gpts[1] // 2 : cm - gpts[1] // 2 + gpts[1]]
    return np.fft.ifftshift(out, axes=(-2, -1))


def reference_image(waves: np.ndarray, *, extent: tuple[float, float], optics: Optics, shape: tuple[int, int]) -> np.ndarray:
    """The same image as :func:`images_from_exit_waves`, the plain abTEM way on the full grid.

    ``Waves.apply_ctf(CTF) -> intensity() -> interpolate(gpts, method="fft")``; used by
    the tests and the benchmark as the reference.
    """
    import abtem

    configure_abtem()
    waves = np.asarray(waves)
    if waves.ndim == 2:
        waves = waves[None]
    ctf = abtem.CTF(energy=optics.energy, semiangle_cutoff=optics.aperture, focal_spread=optics.abtem_focal_spread, aberration_coefficients=optics.aberrations())
    total = None
    for psi in waves:
        img = abtem.Waves(psi, energy=optics.energy, extent=tuple(extent)).apply_ctf(ctf).intensity()
        img = img.interpolate(gpts=(shape[1], shape[0]), method="fft")
        total = img.array if total is None else total + img.array
    return (np.asarray(total) / len(waves)).T.astype(np.float32)


def fitted_build(spec: ParticleSpec, extent):
    """Build, shrinking the particle by 10 % steps until it fits the field of view."""
    for _ in range(20):
        try:
            return spec, build(spec, extent=extent)
        except ValueError as exc:
            if "does not fit" not in str(exc):
                raise
            spec = replace(spec, size=round(spec.size * 0.9, 6))
    raise ValueError(f"no particle of profile {spec.profile!r} fits a {extent} Å field")


def simulate_structure(task: StructureTask, config: SimulationConfig) -> dict:
    """Simulate one structure: model, exit wave, its images, noise and ground truth.

    Returns a dict of arrays and JSON-able metadata, as :func:`atomtools.store.write_structure` takes.
    """
    from ase.data import atomic_numbers

    spec, atoms = fitted_build(task.spec, config.extent)
    channels = tuple((el,) for el in config.elements)
    gt = _labels.ground_truth(atoms, shape=config.shape, sampling=config.sampling, n_classes=config.n_classes, radius=config.label_radius, channels=channels)
    waves = exit_waves(atoms, gpts=config.sim_gpts, energy=config.energy, slice_thickness=config.slice_thickness, frozen_phonons=config.frozen_phonons, seed=task.phonon_seed)
    clean = images_from_exit_waves(waves, extent=config.extent, optics=task.optics, shape=config.shape)
    support_mask = gt["distance"].min(axis=0) < 2.0
    k = len(task.optics)
    noisy = np.empty_like(clean)
    images = []
    table = gt["table"]
    cation = table[table.channel == 0]
    for j in range(k):
        noisy[j] = poisson_noise(clean[j], dose=task.doses[j], sampling=config.sampling, rng=np.random.default_rng(task.noise_seeds[j]))
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
                **{f"vacancy_{el}": spec.vacancies.get(el, 0.0) for el in config.elements},
                **{f"adatoms_{el}": spec.adatoms.get(el, 0) for el in config.elements},
                "support": spec.support,
                **task.optics[j].to_dict(),
                "dose": task.doses[j],
                "snr": snr(clean[j], dose=task.doses[j], sampling=config.sampling, mask=support_mask),
                "seed": spec.seed,
                "noise_seed": task.noise_seeds[j],
            }
        )
    rep = lambda a: np.repeat(a[None], k, axis=0)  # noqa: E731 - labels are the same for every image of a structure
    columns = np.column_stack(
        [
            table["column"].to_numpy(float),
            table["x"].to_numpy(float),
            table["y"].to_numpy(float),
            np.array([atomic_numbers[e] for e in table["element"]], float),
            table["channel"].to_numpy(float),
            table["count"].to_numpy(float),
            table["z_min"].to_numpy(float),
            table["z_max"].to_numpy(float),
        ]
    ) if len(table) else np.zeros((0, len(_store.TABLE_FIELDS)))
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
        "columns": columns,
    }


def profile_config(profile: str, *, n_structures: int | None = None, scheduler: str | None = None, **overrides) -> tuple[SimulationConfig, int, str | None]:
    """The simulation of notebook 01 at a profile: (config, n_structures, scheduler).

    Parameters
    ----------
    profile : {"smoke", "quick", "paper"}
        Run size (:mod:`atomtools.profiles`).
    n_structures, scheduler : optional
        Override the profile's.
    **overrides
        Any :class:`SimulationConfig` field; ``None`` values are ignored.

    Examples
    --------
    >>> config, n, scheduler = profile_config("smoke", sampling=0.2)
    >>> config.sampling, n, scheduler
    (0.2, 2, 'synchronous')
    """
    from .profiles import resolve

    sizes = resolve("01_simulate", profile, n_structures=n_structures, scheduler=scheduler, **overrides)
    n = int(sizes.pop("n_structures"))
    chosen = sizes.pop("scheduler")
    fields_ = {f.name for f in fields(SimulationConfig)}
    unknown = set(sizes) - fields_
    if unknown:
        raise ValueError(f"unknown simulation parameters {sorted(unknown)}")
    return SimulationConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in sizes.items()}), n, chosen


def versions() -> dict:
    """Versions of the packages that decide a dataset's bytes."""
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
    from tqdm.auto import tqdm

    if int(n_structures) < 1:
        raise ValueError(f"n_structures must be >= 1, got {n_structures}")
    config.validate()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    group = _store.create_or_resume(
        out,
        config=config.to_dict(),
        seed=int(seed),
        n_structures=int(n_structures),
        attrs={
            "shape": list(config.shape),
            "n_channels": len(config.elements),
            "channels": [[el] for el in config.elements],
            "images_per_structure": config.images_per_structure,
            "sampling": config.sampling,
            "energy": config.energy,
            "n_classes": config.n_classes,
            "label_radius": config.label_radius,
            "versions": versions(),
        },
    )
    todo = _store.missing_structures(group)
    tasks = [sample_task(config, seed=seed, index=i) for i in todo]
    bar = tqdm(total=int(n_structures), initial=int(n_structures) - len(todo), desc=f"simulating {out.name}", unit="structure", disable=not progress)
    try:
        if scheduler == "synchronous" or not tasks:
            for task in tasks:
                _store.write_structure(group, simulate_structure(task, config))
                bar.update()
        else:
            _run_distributed(group, tasks, config, scheduler=scheduler, n_workers=n_workers, bar=bar)
    finally:
        bar.close()
    _store.finalize(group)
    return out


def _run_distributed(group, tasks, config, *, scheduler, n_workers, bar) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        window = 2 * len(client.scheduler_info().get("workers", {})) + 2
        pending = iter(tasks)
        futures = as_completed()
        for task in pending:
            futures.add(client.submit(simulate_structure, task, config, pure=False))
            if futures.count() >= window:
                break
        for future in futures:
            _store.write_structure(group, future.result())
            future.release()
            bar.update()
            task = next(pending, None)
            if task is not None:
                futures.add(client.submit(simulate_structure, task, config, pure=False))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

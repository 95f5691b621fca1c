"""The abTEM engine: plane-wave multislice exit waves, and HRTEM images of them.

The expensive step is the multislice exit wave; defocus, aberrations, focal spread,
the detector and the dose are cheap once it exists. So a recipe computes one exit
wave per structure (per frozen-phonon configuration) and images it under many optics
(:func:`images_from_exit_waves`).

The image path, exactly equivalent to abTEM's ``apply_ctf -> intensity ->
interpolate(method="fft")`` on the full grid (:func:`reference_image`;
``tests/test_simulate.py`` checks): the exit wave's spectrum is cropped to the
smallest grid that still holds every frequency the objective aperture passes and
twice that for the intensity; abTEM's ``CTF`` is applied there; the intensity is
Fourier-resampled to the detector grid. Images come back indexed ``[row, col]`` =
``[y, x]`` (see :mod:`atomtools.core.labels`). Nothing here knows a material or a
dataset: atoms and optics in, arrays out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.imaging import Optics, fourier_crop, max_wave_frequency

__all__ = [
    "DEFAULT_PHONON_SIGMA",
    "configure_abtem",
    "ctf_parameters",
    "exit_waves",
    "images_from_exit_waves",
    "reference_image",
]

#: Thermal vibration amplitude of elements without one of their own [Å].
DEFAULT_PHONON_SIGMA = 0.08


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


def exit_waves(
    atoms,
    *,
    gpts: tuple[int, int],
    energy: float,
    slice_thickness: float = 2.0,
    frozen_phonons: int = 0,
    seed: int = 0,
    phonon_sigmas: dict | None = None,
) -> np.ndarray:
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
    phonon_sigmas : dict, optional
        Element -> thermal vibration amplitude [Å] (:meth:`Material.phonon_sigma`);
        elements not in it vibrate by :data:`DEFAULT_PHONON_SIGMA`.

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
        sigmas = {
            s: (phonon_sigmas or {}).get(s, DEFAULT_PHONON_SIGMA) for s in sorted(set(atoms.get_chemical_symbols()))
        }
        model = abtem.FrozenPhonons(atoms, num_configs=frozen_phonons, sigmas=sigmas, seed=seed)
    with dask.config.set(scheduler="synchronous"):
        potential = abtem.Potential(
            model, gpts=gpts, slice_thickness=slice_thickness, projection="infinite", parametrization="lobato"
        )
        waves = abtem.PlaneWave(energy=energy).multislice(potential)
        array = np.asarray(waves.array)
    return array.reshape((-1,) + array.shape[-2:]).astype(np.complex64)


def ctf_parameters(optics: Optics) -> dict:
    """The keyword arguments of abTEM's ``CTF`` for an :class:`Optics`, in abTEM's conventions.

    abTEM's ``C10`` is minus the defocus, its angles are radians and its
    ``focal_spread`` is the 1/e half-width of the defocus spread, ``sqrt(2)`` times
    the standard deviation :class:`Optics` keeps.

    Parameters
    ----------
    optics : Optics
        The objective lens.

    Returns
    -------
    dict
        ``energy`` [eV], ``semiangle_cutoff`` [mrad], ``focal_spread`` [Å] and
        ``aberration_coefficients`` (polar, [Å] and radians).

    Examples
    --------
    >>> p = ctf_parameters(Optics(defocus=-50.0, focal_spread=30.0))
    >>> p["aberration_coefficients"]["C10"], round(p["focal_spread"], 3)
    (50.0, 42.426)
    """
    return {
        "energy": optics.energy,
        "semiangle_cutoff": optics.aperture,
        "focal_spread": float(np.sqrt(2.0) * optics.focal_spread),
        "aberration_coefficients": {
            "C10": -optics.defocus,
            "C12": optics.astigmatism,
            "phi12": float(np.deg2rad(optics.astigmatism_angle)),
            "C30": optics.Cs,
            "C50": optics.C5,
        },
    }


def _ctf(optics: Optics):
    """abTEM's CTF of an :class:`Optics`."""
    import abtem

    return abtem.CTF(**ctf_parameters(optics))


def _intermediate_gpts(optics: Optics, extent, sim_gpts, out_gpts) -> tuple[int, int]:
    kmax = max_wave_frequency(optics, min(e / n for e, n in zip(extent, sim_gpts)))
    out = []
    for e, n_sim, n_out in zip(extent, sim_gpts, out_gpts):
        need = int(np.ceil(4 * kmax * e)) + 2  # intensity band 2 kmax below the grid's Nyquist
        need += need % 2
        out.append(int(min(n_sim, max(n_out, need))))
    return tuple(out)


def images_from_exit_waves(
    waves: np.ndarray, *, extent: tuple[float, float], optics: Sequence[Optics], shape: tuple[int, int]
) -> np.ndarray:
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
        ctf = _ctf(opt)
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


def reference_image(
    waves: np.ndarray, *, extent: tuple[float, float], optics: Optics, shape: tuple[int, int]
) -> np.ndarray:
    """The same image as :func:`images_from_exit_waves`, the plain abTEM way on the full grid.

    ``Waves.apply_ctf(CTF) -> intensity() -> interpolate(gpts, method="fft")``; used by
    the tests and the benchmark as the reference.

    Parameters
    ----------
    waves : numpy.ndarray
        (configurations, nx, ny) exit waves.
    extent : two float
        Field of view (x, y) [Å].
    optics : Optics
        The objective lens.
    shape : two int
        Detector (rows, cols) [px].

    Returns
    -------
    numpy.ndarray
        The image, mean over the configurations, float32, shape ``shape`` (rows, cols).
    """
    import abtem

    configure_abtem()
    waves = np.asarray(waves)
    if waves.ndim == 2:
        waves = waves[None]
    ctf = _ctf(optics)
    total = None
    for psi in waves:
        img = abtem.Waves(psi, energy=optics.energy, extent=tuple(extent)).apply_ctf(ctf).intensity()
        img = img.interpolate(gpts=(shape[1], shape[0]), method="fft")
        total = img.array if total is None else total + img.array
    return (np.asarray(total) / len(waves)).T.astype(np.float32)

"""HAADF-STEM images: abTEM's probe, and the incoherent model or full multislice.

Two ways to a HAADF-STEM image of ``ase.Atoms``:

- :func:`incoherent_image`, the fast model of the atom-segmentation library: the image
  is the probe's intensity (abTEM's :class:`abtem.Probe`: aperture, defocus, Cs),
  broadened by the source size and the thermal vibrations, convolved with the
  projected object, a sum of one point per atom weighted by a power law of its atomic
  number, ``Z**exponent`` (Rutherford-like scattering to high angles; 1.6-2 is the
  range reported for HAADF). It takes milliseconds, not minutes, and its atom
  positions are exact.
- :func:`multislice_haadf`, abTEM's full STEM multislice with an annular detector,
  used once to measure what the fast model leaves out (channelling along thick
  columns, cross-talk between neighbouring columns, the true detector response):
  ``runs/localize/stem_check.py`` writes the comparison and ``06_atom_segmentation``
  quotes it.

Both return counts per pixel at a dose: the fraction of the beam scattered onto the
detector times ``dose * sampling**2``. Images are indexed ``[row, col] = [y, x]``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "HAADF_CROSS_SECTION",
    "probe_intensity",
    "incoherent_image",
    "fourier_crop_spectrum",
    "splat_gaussians",
    "multislice_haadf",
]

#: HAADF cross-section of one Au atom [Å²]; other elements scale as ``(Z / 79) ** exponent``.
#: With a 25 mrad probe this puts about 2.5 % of the beam on the detector over one Au
#: atom, the order measured for single heavy atoms.
HAADF_CROSS_SECTION = 0.02


def probe_intensity(
    *,
    gpts: tuple[int, int],
    extent: tuple[float, float],
    energy: float = 200e3,
    semiangle: float = 25.0,
    defocus: float = 0.0,
    Cs: float = 0.0,
) -> np.ndarray:
    """The probe's intensity from abTEM, centred on pixel (0, 0), integrating to 1 [1/Å²].

    Parameters
    ----------
    gpts : two int
        Grid (rows, cols) [points].
    extent : two float
        Field of view (rows, cols) = (y, x) [Å].
    energy : float
        Electron energy [eV].
    semiangle : float
        Convergence semi-angle [mrad].
    defocus : float
        Defocus [Å] (positive underfocus, abTEM's).
    Cs : float
        Spherical aberration C3 [Å].

    Returns
    -------
    numpy.ndarray
        (rows, cols) float64, the probe at the origin (periodic), ``sum * pixel area = 1``.
    """
    import abtem

    from .engine import configure_abtem

    configure_abtem()
    probe = abtem.Probe(
        energy=energy,
        semiangle_cutoff=semiangle,
        defocus=defocus,
        Cs=Cs,
        extent=(float(extent[1]), float(extent[0])),
        gpts=(int(gpts[1]), int(gpts[0])),
    )
    intensity = np.asarray(probe.build().intensity().array, np.float64).T  # abTEM (x, y) -> [y, x]
    centre = np.unravel_index(np.argmax(intensity), intensity.shape)
    intensity = np.roll(intensity, (-int(centre[0]), -int(centre[1])), axis=(0, 1))
    pixel_area = (extent[0] / gpts[0]) * (extent[1] / gpts[1])
    return intensity / (intensity.sum() * pixel_area)


def _deposit(shape: tuple[int, int], rc: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cloud-in-cell deposit of weighted points at (row, col) [px] on a periodic grid."""
    out = np.zeros(shape, np.float64)
    r0 = np.floor(rc[:, 0]).astype(int)
    c0 = np.floor(rc[:, 1]).astype(int)
    fr, fc = rc[:, 0] - r0, rc[:, 1] - c0
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            np.add.at(out, ((r0 + dr) % shape[0], (c0 + dc) % shape[1]), weights * wr * wc)
    return out


def incoherent_image(
    xy: np.ndarray,
    weights: np.ndarray,
    *,
    shape: tuple[int, int],
    sampling: float,
    dose: float | None = None,
    energy: float = 200e3,
    semiangle: float = 25.0,
    defocus: float = 0.0,
    Cs: float = 0.0,
    blur: float = 0.3,
    tail: float = 0.0,
    tail_width: float = 3.0,
    background: float = 0.0,
    oversample: int = 4,
) -> np.ndarray:
    """A HAADF-STEM image in the incoherent model: probe intensity convolved with weighted points.

    Parameters
    ----------
    xy : numpy.ndarray
        (n, 2) projected positions (x, y) [Å] from the frame's corner (pixel centres at
        ``(i + 0.5) * sampling``); a column is one point with the sum of its atoms'
        weights, or one point per atom.
    weights : numpy.ndarray
        (n,) HAADF cross-sections [Å²] (e.g. ``HAADF_CROSS_SECTION * (Z / 79) ** 1.7``).
    shape : two int
        Image (rows, cols) [px].
    sampling : float
        Pixel size [Å].
    dose : float, optional
        Incident dose [e/Å²]: the image is then in expected counts per pixel; without
        it, the fraction of the beam on the detector.
    energy, semiangle, defocus, Cs
        The probe (:func:`probe_intensity`).
    blur : float
        Standard deviation of the Gaussian source size and thermal vibrations combined [Å].
    tail : float
        Fraction of the probe's current in a broad Gaussian tail (0-1).
    tail_width : float
        Standard deviation of that tail [Å].
    background : float
        Fraction of the beam on the detector everywhere (a thin support's scattering).
    oversample : int
        Rendering grid per image pixel (the points are deposited there, the probe
        band-limits them, and the result is Fourier-cropped to the image grid).

    Returns
    -------
    numpy.ndarray
        (rows, cols) float32, periodic at the frame's edges.

    Examples
    --------
    >>> img = incoherent_image(np.array([[3.1, 3.1]]), np.array([0.02]), shape=(32, 32), sampling=0.2)
    >>> np.unravel_index(int(np.argmax(img)), img.shape), round(float(img.sum() * 0.2**2), 4)
    ((np.int64(15), np.int64(15)), 0.02)
    """
    rows, cols = int(shape[0]), int(shape[1])
    s = int(oversample)
    fine = (rows * s, cols * s)
    fine_sampling = sampling / s
    extent = (rows * sampling, cols * sampling)
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    weights = np.asarray(weights, np.float64).reshape(-1)
    # the Fourier crop keeps the band-limited values at every s-th fine pixel, so image
    # pixel i (centre (i + 0.5) * sampling) is fine pixel s * i: a point at x [Å] goes to
    # fine pixel x / fine_sampling - s / 2
    rc = np.stack([xy[:, 1], xy[:, 0]], axis=1) / fine_sampling - s / 2
    density = _deposit(fine, rc, weights / fine_sampling**2)  # [1/Å²] per fine pixel
    probe = probe_intensity(gpts=fine, extent=extent, energy=energy, semiangle=semiangle, defocus=defocus, Cs=Cs)
    ky = np.fft.fftfreq(fine[0], fine_sampling)[:, None]
    kx = np.fft.fftfreq(fine[1], fine_sampling)[None, :]
    k2 = kx**2 + ky**2
    transfer = np.fft.fft2(probe) * fine_sampling**2  # 1 at k = 0
    transfer = (1 - tail) * transfer + tail * np.exp(-2 * np.pi**2 * tail_width**2 * k2)
    transfer = transfer * np.exp(-2 * np.pi**2 * blur**2 * k2)
    spectrum = np.fft.fft2(density) * transfer
    # fraction of the beam on the detector at each probe position (image pixel centre)
    image = np.real(np.fft.ifft2(fourier_crop_spectrum(spectrum, (rows, cols)))) + background
    if dose is not None:
        image = image * float(dose) * sampling**2
    return np.clip(image, 0, None).astype(np.float32)


def fourier_crop_spectrum(spectrum: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The low-frequency ``shape`` part of an unshifted 2D spectrum, rescaled for ``ifft2``.

    Parameters
    ----------
    spectrum : numpy.ndarray
        (N, M) output of ``numpy.fft.fft2``.
    shape : two int
        The smaller grid (n, m).

    Returns
    -------
    numpy.ndarray
        The cropped spectrum, complex, shape ``shape``, unshifted, scaled by ``n m / (N M)``.

    Examples
    --------
    >>> a = np.ones((8, 8)); small = np.real(np.fft.ifft2(fourier_crop_spectrum(np.fft.fft2(a), (4, 4))))
    >>> float(small.mean())
    1.0
    """
    n, m = spectrum.shape
    shifted = np.fft.fftshift(spectrum)
    cn, cm = n // 2, m // 2
    out = shifted[
        cn - shape[0] // 2 : cn - shape[0] // 2 + shape[0], cm - shape[1] // 2 : cm - shape[1] // 2 + shape[1]
    ]
    return np.fft.ifftshift(out) * (shape[0] * shape[1]) / (n * m)


def splat_gaussians(
    shape: tuple[int, int], rc: np.ndarray, *, sigma: float, amplitude=1.0, combine: str = "max"
) -> np.ndarray:
    """Gaussians of peak ``amplitude`` at sub-pixel points (row, col) [px], combined by max or sum.

    Parameters
    ----------
    shape : two int
        Map (rows, cols) [px].
    rc : numpy.ndarray
        (n, 2) centres (row, col) [px] (pixel centres at integers).
    sigma : float
        Standard deviation [px].
    amplitude : float or numpy.ndarray
        Peak value of each.
    combine : {"max", "sum"}
        How overlapping Gaussians add (``max`` keeps each peak at its amplitude).

    Returns
    -------
    numpy.ndarray
        The map, float32, shape ``shape``; zeros where ``rc`` is empty.

    Examples
    --------
    >>> m = splat_gaussians((9, 9), np.array([[4.0, 4.0]]), sigma=1.0)
    >>> float(m[4, 4]), round(float(m[4, 5]), 4)
    (1.0, 0.6065)
    """
    out = np.zeros(shape, np.float32)
    rc = np.asarray(rc, np.float64).reshape(-1, 2)
    if not len(rc):
        return out
    amp = np.broadcast_to(np.asarray(amplitude, np.float64), (len(rc),))
    half = int(np.ceil(3.5 * sigma))
    d = np.arange(-half, half + 1)
    for (r, c), a in zip(rc, amp):
        r0, c0 = int(round(r)), int(round(c))
        rr, cc = r0 + d, c0 + d
        okr, okc = (rr >= 0) & (rr < shape[0]), (cc >= 0) & (cc < shape[1])
        if not okr.any() or not okc.any():
            continue
        g = a * np.exp(-((rr[okr, None] - r) ** 2 + (cc[None, okc] - c) ** 2) / (2 * sigma**2))
        block = out[rr[okr][0] : rr[okr][-1] + 1, cc[okc][0] : cc[okc][-1] + 1]
        if combine == "max":
            np.maximum(block, g, out=block)
        else:
            block += g.astype(np.float32)
    return out


def multislice_haadf(
    atoms,
    *,
    sampling: float,
    energy: float = 200e3,
    semiangle: float = 25.0,
    detector: tuple[float, float] = (70.0, 200.0),
    potential_sampling: float = 0.05,
    slice_thickness: float = 2.0,
    frozen_phonons: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """abTEM's full STEM multislice with an annular detector over the whole cell.

    Parameters
    ----------
    atoms : ase.Atoms
        Periodic orthogonal cell, beam along z.
    sampling : float
        Scan step [Å] (one probe position per image pixel).
    energy, semiangle
        The probe.
    detector : two float
        Inner and outer angles of the annular detector [mrad].
    potential_sampling : float
        Sampling of the potential and the waves [Å].
    slice_thickness : float
        [Å].
    frozen_phonons : int
        Configurations (0: a static lattice).
    seed : int
        Seed of the phonon displacements.

    Returns
    -------
    numpy.ndarray
        (rows, cols) float32, the fraction of the beam on the detector, ``[y, x]``.
    """
    import abtem
    import dask

    from .engine import configure_abtem

    configure_abtem()
    model = atoms
    if frozen_phonons:
        model = abtem.FrozenPhonons(atoms, num_configs=frozen_phonons, sigmas=0.08, seed=seed)
    with dask.config.set(scheduler="synchronous"):
        potential = abtem.Potential(
            model, sampling=potential_sampling, slice_thickness=slice_thickness, parametrization="lobato"
        )
        probe = abtem.Probe(energy=energy, semiangle_cutoff=semiangle)
        probe.grid.match(potential)
        scan = abtem.GridScan(start=(0, 0), end=(1, 1), fractional=True, sampling=sampling, potential=potential)
        det = abtem.AnnularDetector(inner=detector[0], outer=detector[1])
        measurement = probe.scan(potential, scan=scan, detectors=det)
        array = np.asarray(measurement.compute().array if hasattr(measurement, "compute") else measurement.array)
    if array.ndim > 2:
        array = array.reshape((-1,) + array.shape[-2:]).mean(axis=0)
    return array.T.astype(np.float32)

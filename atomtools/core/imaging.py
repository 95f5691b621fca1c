"""Electron optics parameters, detector sampling, shot noise and image normalization.

Pure functions and a frozen dataclass; no simulator, no files. The simulator
(:mod:`atomtools.simulation.engine`, :func:`~atomtools.simulation.engine.ctf_parameters`)
turns :class:`Optics` into an abTEM ``CTF`` in abTEM's conventions.

Units: energies [eV], lengths [Å], angles [mrad] for apertures and [degrees] for
in-plane directions, dose [e/Å²].
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "Optics",
    "ANTIALIAS_CUTOFF",
    "wavelength",
    "scherzer_defocus",
    "max_wave_frequency",
    "validate_sampling",
    "fft_friendly_size",
    "fourier_crop",
    "dose_to_counts",
    "poisson_noise",
    "dose_series",
    "snr",
    "normalize",
    "check_frame",
    "check_sampling",
    "resample_frame",
    "structure_map",
    "spectrum_peaks",
    "repair_pixels",
]

#: abTEM band-limits waves to this fraction of the Nyquist frequency (its antialias aperture).
ANTIALIAS_CUTOFF = 2.0 / 3.0


def wavelength(energy: float) -> float:
    """Relativistic electron wavelength [Å] at ``energy`` [eV].

    Parameters
    ----------
    energy : float
        Electron energy [eV].

    Returns
    -------
    float
        The wavelength [Å].

    Examples
    --------
    >>> round(wavelength(300e3), 5)
    0.01969
    """
    if not energy > 0:
        raise ValueError(f"energy must be positive [eV], got {energy}")
    h, m0, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0  # SI (CODATA 2018)
    momentum = np.sqrt(2 * m0 * e * energy * (1 + e * energy / (2 * m0 * c**2)))
    return float(h / momentum * 1e10)


def scherzer_defocus(Cs: float, energy: float) -> float:
    """Scherzer defocus ``sqrt(1.5 |Cs| lambda)`` with the sign of Cs [Å].

    Positive is underfocus (abTEM's ``defocus``; abTEM's ``C10 = -defocus``).

    Parameters
    ----------
    Cs : float
        Spherical aberration C3 [Å].
    energy : float
        Electron energy [eV].

    Examples
    --------
    >>> round(scherzer_defocus(1.2e7, 300e3), 1)  # 1.2 mm at 300 kV
    595.3
    """
    return float(np.sign(Cs) * np.sqrt(1.5 * abs(Cs) * wavelength(energy)))


@dataclass(frozen=True)
class Optics:
    """Objective-lens settings of one HRTEM image.

    Attributes
    ----------
    energy : float
        Electron energy [eV].
    defocus : float
        Defocus [Å]; positive is underfocus (abTEM's convention, ``C10 = -defocus``).
        The default, 5 nm overfocus with negative Cs, images atoms bright.
    Cs : float
        Third-order spherical aberration C3 [Å] (-9e4 Å = -9 µm).
    C5 : float
        Fifth-order spherical aberration [Å] (5e7 Å = 5 mm).
    astigmatism : float
        Two-fold astigmatism C12 [Å].
    astigmatism_angle : float
        Azimuth of the astigmatism [degrees].
    focal_spread : float
        Standard deviation sigma of the defocus spread from chromatic aberration and
        instabilities [Å]. abTEM's ``focal_spread`` is the 1/e half-width instead,
        ``sqrt(2) * sigma``; :func:`atomtools.simulation.engine.ctf_parameters` converts.
    aperture : float
        Objective aperture semi-angle [mrad]; ``inf`` for none.
    """

    energy: float = 300e3
    defocus: float = -50.0
    Cs: float = -9e4
    C5: float = 5e7
    astigmatism: float = 0.0
    astigmatism_angle: float = 0.0
    focal_spread: float = 30.0
    aperture: float = 30.0

    def __post_init__(self):
        if not self.energy > 0:
            raise ValueError(f"Optics.energy must be positive [eV], got {self.energy}")
        if self.focal_spread < 0:
            raise ValueError(f"Optics.focal_spread must be >= 0 [Å] (a standard deviation), got {self.focal_spread}")
        if not self.aperture > 0:
            raise ValueError(f"Optics.aperture must be positive [mrad] (inf for none), got {self.aperture}")
        if self.astigmatism < 0:
            raise ValueError(f"Optics.astigmatism must be >= 0 [Å], got {self.astigmatism}")

    def to_dict(self) -> dict:
        return asdict(self)


def max_wave_frequency(optics: Optics, sim_sampling: float) -> float:
    """Highest spatial frequency the image wave carries [1/Å]: aperture or antialias limit.

    Parameters
    ----------
    optics : Optics
        The objective lens (its aperture [mrad] and energy [eV]).
    sim_sampling : float
        Simulation grid spacing [Å].
    """
    antialias = ANTIALIAS_CUTOFF / (2 * sim_sampling)
    return float(min(optics.aperture * 1e-3 / wavelength(optics.energy), antialias))


def validate_sampling(sim_sampling: float, optics: Optics) -> None:
    """Raise if the simulation grid cannot carry the waves the objective aperture passes.

    abTEM's antialias aperture cuts waves at 2/3 of the grid's Nyquist frequency;
    that angle must exceed the objective aperture.

    Parameters
    ----------
    sim_sampling : float
        Simulation grid spacing [Å].
    optics : Optics
        The optics whose aperture must fit.

    Examples
    --------
    >>> validate_sampling(0.05, Optics(aperture=30.0))
    >>> validate_sampling(0.5, Optics(aperture=30.0))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: simulation sampling 0.5 Å is too coarse ... limit is 13.1 mrad; use a sampling of at most 0.219 Å
    """
    if not sim_sampling > 0:
        raise ValueError(f"simulation sampling must be positive [Å], got {sim_sampling}")
    lam = wavelength(optics.energy)
    limit = ANTIALIAS_CUTOFF * lam / (2 * sim_sampling) * 1e3
    aperture = optics.aperture if np.isfinite(optics.aperture) else 0.0
    if aperture > limit:
        need = ANTIALIAS_CUTOFF * lam / (2 * aperture * 1e-3)
        raise ValueError(
            f"simulation sampling {sim_sampling} Å is too coarse for a {optics.aperture} mrad objective "
            f"aperture at {optics.energy / 1e3:.0f} keV: abTEM's antialias limit is {limit:.1f} mrad; "
            f"use a sampling of at most {need:.3f} Å"
        )


def _valuation2(n: int) -> int:
    return (n & -n).bit_length() - 1


def fft_friendly_size(n: int) -> int:
    """Smallest even, 7-smooth grid size >= n with at most 2^5 as its power-of-two factor.

    FFTW's ESTIMATE planner (deterministic, unlike MEASURE) is slow on sizes with a
    large power of two; see ``benchmarks/simulate.py``.

    Parameters
    ----------
    n : int
        Least size [points].

    Returns
    -------
    int
        The grid size [points].

    Examples
    --------
    >>> [fft_friendly_size(n) for n in (64, 768, 820)]
    [70, 784, 840]
    """
    m = max(int(np.ceil(n)), 2)
    while True:
        if m % 2 == 0 and _valuation2(m) <= 5:
            r = m
            for p in (2, 3, 5, 7):
                while r % p == 0:
                    r //= p
            if r == 1:
                return m
        m += 1


def fourier_crop(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Band-limited resampling of a periodic array by cropping or padding its spectrum.

    Keeps the sample positions ``x = i * extent / n`` of both grids and the mean value.

    Parameters
    ----------
    array : numpy.ndarray
        (..., N, M) real or complex array.
    shape : two int
        New (N', M').

    Returns
    -------
    numpy.ndarray
        (..., N', M') array of the input's dtype kind.

    Examples
    --------
    >>> x = np.cos(2 * np.pi * np.arange(8) / 8)[None, :] * np.ones((8, 1))
    >>> np.allclose(fourier_crop(x, (4, 4)), np.cos(2 * np.pi * np.arange(4) / 4)[None, :])
    True
    """
    array = np.asarray(array)
    n, m = array.shape[-2:]
    n2, m2 = shape
    if (n2, m2) == (n, m):
        return array.copy()
    spec = np.fft.fftshift(np.fft.fft2(array), axes=(-2, -1))
    out = np.zeros(array.shape[:-2] + (n2, m2), complex)
    cn, cm = n // 2, m // 2
    cn2, cm2 = n2 // 2, m2 // 2
    hn, hm = min(n, n2) // 2, min(m, m2) // 2
    out[..., cn2 - hn : cn2 - hn + min(n, n2), cm2 - hm : cm2 - hm + min(m, m2)] = spec[
        ..., cn - hn : cn - hn + min(n, n2), cm - hm : cm - hm + min(m, m2)
    ]
    result = np.fft.ifft2(np.fft.ifftshift(out, axes=(-2, -1))) * (n2 * m2) / (n * m)
    if np.isrealobj(array):
        return result.real.astype(array.dtype if array.dtype.kind == "f" else float)
    return result.astype(array.dtype)


def dose_to_counts(dose: float, sampling: float) -> float:
    """Mean electron count per pixel in vacuum.

    Parameters
    ----------
    dose : float
        Electron dose [e/Å²].
    sampling : float
        Pixel size [Å].

    Examples
    --------
    >>> dose_to_counts(1000.0, 0.16)
    25.6
    """
    if not dose > 0:
        raise ValueError(f"dose must be positive [e/Å²], got {dose}")
    if not sampling > 0:
        raise ValueError(f"sampling must be positive [Å/px], got {sampling}")
    return float(round(dose * sampling**2, 12))


def poisson_noise(clean: np.ndarray, *, dose: float, sampling: float, rng: np.random.Generator) -> np.ndarray:
    """Shot-noise image in electron counts.

    Parameters
    ----------
    clean : numpy.ndarray
        Noise-free intensity, normalized to 1 in vacuum.
    dose : float
        Electron dose [e/Å²].
    sampling : float
        Pixel size [Å].
    rng : numpy.random.Generator
        Source of the counts.

    Returns
    -------
    numpy.ndarray
        float32 counts, mean ``clean * dose * sampling**2``.
    """
    lam = np.clip(np.asarray(clean, np.float64), 0, None) * dose_to_counts(dose, sampling)
    return rng.poisson(lam).astype(np.float32)


def dose_series(clean: np.ndarray, doses, *, sampling: float, seed: int) -> np.ndarray:
    """The same clean image with shot noise at several doses.

    Parameters
    ----------
    clean : numpy.ndarray
        (H, W) noise-free intensity, 1 in vacuum.
    doses : sequence of float
        Electron doses [e/Å²].
    sampling : float
        Pixel size [Å].
    seed : int
        Seed of the noise; dose ``k`` draws from ``default_rng([seed, k])``.

    Returns
    -------
    numpy.ndarray
        (len(doses), H, W) float32 counts.
    """
    return np.stack(
        [
            poisson_noise(clean, dose=d, sampling=sampling, rng=np.random.default_rng([seed, k]))
            for k, d in enumerate(doses)
        ]
    )


def snr(clean: np.ndarray, *, dose: float, sampling: float, mask: np.ndarray | None = None) -> float:
    """Signal-to-noise ratio of a shot-noise image: image contrast over shot noise.

    ``SNR = std(lambda) / sqrt(mean(lambda))`` with ``lambda = clean * dose * sampling^2``
    the expected counts, over the pixels of ``mask`` (default: all). SNR about 1 is
    the regime of the in-situ work: contrast as large as the noise.

    Parameters
    ----------
    clean : numpy.ndarray
        Noise-free intensity, 1 in vacuum.
    dose : float
        Electron dose [e/Å²].
    sampling : float
        Pixel size [Å].
    mask : numpy.ndarray, optional
        Pixels the SNR is taken over (default all).

    Examples
    --------
    >>> clean = 1 + 0.5 * np.cos(np.linspace(0, 20, 1000))
    >>> round(snr(clean, dose=400.0, sampling=0.16), 2)
    1.13
    """
    lam = np.asarray(clean, np.float64) * dose_to_counts(dose, sampling)
    if mask is not None:
        lam = lam[np.asarray(mask, bool)]
    if lam.size == 0 or lam.mean() <= 0:
        return 0.0
    return float(lam.std() / np.sqrt(lam.mean()))


def normalize(image: np.ndarray) -> np.ndarray:
    """The network input: an image divided by its mean (counts or intensity alike).

    Parameters
    ----------
    image : numpy.ndarray
        Counts or intensity, mean > 0.

    Raises
    ------
    ValueError
        If the image is not finite or its mean is not positive.

    Examples
    --------
    >>> normalize(np.array([[2.0, 6.0]])).tolist()
    [[0.5, 1.5]]
    """
    image = np.asarray(image, np.float32)
    if not np.all(np.isfinite(image)):
        raise ValueError("image holds NaN or infinity")
    mean = float(image.mean()) if image.size else 0.0
    if not mean > 0:
        raise ValueError(f"image mean must be positive to normalize (counts or intensity), got {mean}")
    return image / mean


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def check_sampling(sampling, name: str = "sampling") -> float:
    """A pixel size as a positive float, or a ValueError that says what was expected.

    Parameters
    ----------
    sampling : float
        Pixel size [Å/px].
    name : str
        The parameter's name in the message.

    Examples
    --------
    >>> check_sampling("0.16")
    Traceback (most recent call last):
    ...
    ValueError: sampling must be a positive pixel size [Å/px] as a number, got the string '0.16' (pass sampling=0.16)
    """
    if isinstance(sampling, str | bytes):
        raise ValueError(
            f"{name} must be a positive pixel size [Å/px] as a number, got the string {sampling!r}"
            + (f" (pass {name}={float(sampling)!r})" if _is_number(sampling) else "")
        )
    try:
        value = float(sampling)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0 or isinstance(sampling, bool):
        raise ValueError(f"{name} must be a positive pixel size [Å/px] as a number, got {sampling!r}")
    return value


def check_frame(image) -> np.ndarray:
    """The frame as float32 2D array, or a ValueError saying what is wrong with it.

    Parameters
    ----------
    image : array-like
        One 2D frame of real numbers.

    Examples
    --------
    >>> check_frame([[1, 2], [3, 4]])
    Traceback (most recent call last):
    ...
    ValueError: the frame is empty or tiny ((2, 2)); need at least 8 x 8 pixels
    """
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(
            f"expected one 2D frame, got an array of shape {arr.shape}; pass frames of a series one at a time"
        )
    if arr.size == 0 or min(arr.shape) < 8:
        raise ValueError(f"the frame is empty or tiny ({arr.shape}); need at least 8 x 8 pixels")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"expected a real-valued image, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"the frame holds {int(np.sum(~np.isfinite(arr)))} NaN or infinite pixel(s)")
    if np.ptp(arr) == 0:
        raise ValueError("the frame is constant: there is nothing to retrieve")
    negative = int(np.sum(arr < 0))
    if negative > 0.001 * arr.size or arr.mean() <= 0:
        raise ValueError(
            f"{negative} of {arr.size} pixels are negative (min {arr.min():.3g}, mean {arr.mean():.3g}): expected "
            "electron counts or an intensity >= 0, as the detector recorded them; a background-subtracted or "
            "offset-corrected frame must get its offset back first"
        )
    return np.clip(arr, 0, None) if negative else arr


def resample_frame(
    image: np.ndarray, sampling: float, new_sampling: float, *, order: int = 1, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Resample a frame to another pixel size, keeping pixel (i, j) at (j, i) * sampling [Å].

    Shrinking (a coarser ``new_sampling``) averages over the area each new pixel covers
    before sampling it, so every electron counts: a frame taken at 0.05 Å/px and
    shrunk to 0.16 Å/px keeps its dose per Å² and its shot noise falls as binning would
    make it fall (bilinear sampling alone would keep about one electron in ten).
    Enlarging, and class maps (``order=0``), interpolate.

    Parameters
    ----------
    image : numpy.ndarray
        (..., H, W) array(s).
    sampling, new_sampling : float
        Old and new pixel size [Å].
    order : int
        Spline order: 0 for class maps, 1 for intensities and probabilities.
    shape : two int, optional
        Output (H, W); default covers the same field of view.

    Examples
    --------
    >>> counts = np.random.default_rng(0).poisson(2.0, (300, 300)).astype(float)
    >>> binned = resample_frame(counts, 0.05, 0.15)
    >>> round(float(binned.mean()), 1), bool(binned.std() < counts.std() / 2.5)  # same dose, less noise
    (2.0, True)
    """
    from scipy import ndimage

    image = np.asarray(image)
    h, w = image.shape[-2:]
    if shape is None:
        shape = (
            int(np.floor((h - 1) * sampling / new_sampling)) + 1,
            int(np.floor((w - 1) * sampling / new_sampling)) + 1,
        )
    ratio = new_sampling / sampling
    flat = image.reshape(-1, h, w)
    if order > 0 and ratio > 1.0 + 1e-6:
        # shrink: first average over each new pixel's area (a Gaussian of the variance a
        # box of `ratio` pixels adds to one pixel), then sample at the new pixel centres
        # (edges extended by odd reflection, which keeps a linear trend across them)
        sigma = np.sqrt((ratio**2 - 1.0) / 12.0)
        pad = int(np.ceil(4 * sigma)) + 1
        smooth = [
            ndimage.gaussian_filter(np.pad(a.astype(np.float64), pad, mode="reflect", reflect_type="odd"), sigma)
            for a in flat
        ]
        flat = np.stack([a[pad:-pad, pad:-pad] for a in smooth])
        if image.min() >= 0:
            flat = np.clip(flat, 0, None)
    coords = np.meshgrid(np.arange(shape[0]) * ratio, np.arange(shape[1]) * ratio, indexing="ij")
    out = np.stack([ndimage.map_coordinates(a, coords, order=order, mode="nearest") for a in flat])
    return out.reshape(image.shape[:-2] + tuple(shape)).astype(image.dtype)


def structure_map(
    image: np.ndarray,
    sampling: float,
    *,
    band: tuple[float, float] = (0.2, 1.0),
    noise_from: float = 1.6,
    window: float = 5.0,
) -> np.ndarray | None:
    """Where a frame holds structure rather than shot noise alone: the local power in the
    band of lattice frequencies over what white noise of the frame's own level would put there.

    Shot noise is white; an HRTEM image's signal lies below the information limit. The
    power above ``noise_from`` measures the noise level, the power in ``band`` measures
    signal plus noise, both locally (Gaussian window). The ratio of their densities is
    about 1 where there is only noise (vacuum, an empty or flat frame) and grows with the
    contrast of columns, fringes or amorphous support. Independent of the gain and of
    how much vacuum the frame holds.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) frame.
    sampling : float
        Pixel size [Å].
    band : (float, float)
        Spatial frequencies of lattice contrast [1/Å].
    noise_from : float
        Frequencies above this hold noise only [1/Å].
    window : float
        Standard deviation of the local window [Å].

    Returns
    -------
    numpy.ndarray or None
        (H, W) ratio (1: noise alone); None if the frame's Nyquist frequency leaves no
        noise band (sampling coarser than about ``1 / (2.4 noise_from)`` Å).

    Examples
    --------
    >>> noise = np.random.default_rng(0).poisson(25.6, (128, 128)).astype(float)
    >>> bool(structure_map(noise, 0.16).max() < 1.4)
    True
    """
    import scipy.fft
    from scipy import ndimage

    if 1.0 / (2.0 * sampling) < 1.2 * noise_from:
        return None
    x = np.asarray(image, np.float32)
    x = x - x.mean()
    h, w = x.shape
    spectrum = scipy.fft.rfft2(x, workers=-1)
    # local power on blocks of about 1 Å (the window is several Å wide), then back to pixels
    b = max(1, int(round(1.0 / sampling)))
    hb, wb = -(-h // b), -(-w // b)
    power = {}
    for name, (keep, weight) in _band_masks(h, w, float(sampling), tuple(band), float(noise_from)).items():
        part = scipy.fft.irfft2(spectrum * keep, s=x.shape, workers=-1)
        sq = np.pad(part * part, ((0, hb * b - h), (0, wb * b - w)), mode="edge")
        blocks = sq.reshape(hb, b, wb, b).mean(axis=(1, 3))
        power[name] = ndimage.gaussian_filter(blocks, window / sampling / b) / weight
    ratio = power["signal"] / np.maximum(power["noise"], 1e-30)
    return np.repeat(np.repeat(ratio, b, axis=0), b, axis=1)[:h, :w]


@functools.lru_cache(maxsize=16)
def _band_masks(h: int, w: int, sampling: float, band: tuple, noise_from: float) -> dict:
    """The rfft2 masks of :func:`structure_map`'s two bands and their weights (a series reuses them)."""
    k = np.hypot(np.fft.fftfreq(h, d=sampling)[:, None], np.fft.rfftfreq(w, d=sampling)[None, :]).astype(np.float32)
    weight = np.full(k.shape[1], 2.0)  # each rfft column stands for itself and its mirror
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    masks = {"signal": (k >= band[0]) & (k <= band[1]), "noise": k >= noise_from}
    for keep in masks.values():
        keep.setflags(write=False)
    return {name: (keep, float((keep * weight).sum())) for name, keep in masks.items()}


@functools.lru_cache(maxsize=16)
def _spectrum_grid(h: int, w: int, sampling: float) -> tuple:
    """Window, frequencies and rings of :func:`spectrum_peaks` for an (h, w) frame (a series reuses them)."""
    taper = np.hanning(h)[:, None].astype(np.float32) * np.hanning(w)[None, :].astype(np.float32)
    ky = np.fft.fftshift(np.fft.fftfreq(h, d=sampling))
    kx = np.fft.rfftfreq(w, d=sampling)
    k = np.hypot(ky[:, None], kx[None, :])
    rings = np.minimum((k / k.max() * 199).astype(int), 199).ravel()
    grid = (taper, ky, kx, k, rings, np.maximum(np.bincount(rings, minlength=200), 1))
    for a in grid:
        a.setflags(write=False)
    return grid


def spectrum_peaks(
    image: np.ndarray, sampling: float, *, band: tuple[float, float] = (0.2, 1.0), min_ratio: float = 8.0, n: int = 16
) -> np.ndarray:
    """The strongest peaks of a frame's power spectrum: its lattice fringes.

    Parameters
    ----------
    image, sampling
        The frame and its pixel size [Å], as for :func:`structure_map`.
    band : (float, float)
        Spatial frequencies searched [1/Å].
    min_ratio : float
        Least peak power over the (geometric) mean power at the same frequency.
    n : int
        Most peaks returned (one of each Friedel pair).

    Returns
    -------
    numpy.ndarray
        (peaks, 2): ``|k|`` [1/Å] and the peak's power over the background at that ``|k|``,
        strongest first; empty for a frame without fringes.

    Examples
    --------
    >>> y, x = np.mgrid[0:128, 0:128] * 0.16
    >>> fringes = 10 + np.cos(2 * np.pi * x / 3.12) + np.random.default_rng(0).normal(0, 0.3, x.shape)
    >>> round(1 / float(spectrum_peaks(fringes, 0.16)[0, 0]), 1)  # 3.12 Å fringes
    3.1
    """
    import scipy.fft
    from scipy import ndimage
    from skimage.feature import peak_local_max

    x = np.asarray(image, np.float32)
    x = x - x.mean()
    h, w = x.shape
    taper, ky, kx, k, rings, per_ring = _spectrum_grid(h, w, float(sampling))
    half = scipy.fft.rfft2(x * taper, workers=-1)
    power = np.fft.fftshift(np.abs(half) ** 2, axes=0)  # one of each Friedel pair
    log_power = np.log(np.maximum(power, 1e-30))
    background = np.exp(np.bincount(rings, log_power.ravel(), 200) / per_ring)
    ratio = ndimage.gaussian_filter(power / background[rings].reshape(power.shape), 1.0)
    ratio[(k < band[0]) | (k > band[1])] = 0.0
    found = peak_local_max(ratio, min_distance=3, threshold_abs=min_ratio, num_peaks=n)
    out = []
    for i, j in found:  # centroid of the power around the peak: sub-pixel |k|
        i0, i1, j0, j1 = max(i - 2, 0), min(i + 3, h), max(j - 2, 0), min(j + 3, power.shape[1])
        p = power[i0:i1, j0:j1]
        cy = float(np.sum(p * ky[i0:i1, None]) / p.sum())
        cx = float(np.sum(p * kx[None, j0:j1]) / p.sum())
        out.append([np.hypot(cy, cx), ratio[i, j]])
    return np.array(out).reshape(-1, 2)


def repair_pixels(frame: np.ndarray, *, threshold: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Find dead and hot pixels and replace them by the median of their neighbours.

    A pixel is bad when it differs from the median of its 3 x 3 neighbourhood (itself
    excluded) by more than ``threshold`` times the noise expected there: the Poisson
    noise ``sqrt(median)`` for counts, or the robust spread (MAD) of the frame's
    residuals if that is larger (scaled or filtered data). A zero among neighbours of
    15 counts or more is dead too (Poisson: a chance of 3e-7). Isolated defects only: a
    dead column or a cluster wider than one pixel is left alone.

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) frame (counts or any intensity).
    threshold : float
        Deviation that marks a pixel bad, in units of the expected noise.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The repaired float32 frame and the (H, W) bool mask of the pixels replaced.

    Examples
    --------
    >>> f = np.random.default_rng(0).poisson(100.0, (32, 32)).astype(float)
    >>> f[5, 7], f[20, 3] = 0.0, 1e5
    >>> fixed, bad = repair_pixels(f)
    >>> sorted(zip(*np.nonzero(bad)))
    [(np.int64(5), np.int64(7)), (np.int64(20), np.int64(3))]
    """
    from scipy import ndimage

    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim != 2:
        raise ValueError(f"repair_pixels expects one 2D frame, got shape {frame.shape}")
    footprint = np.ones((3, 3), bool)
    footprint[1, 1] = False
    median = ndimage.median_filter(frame, footprint=footprint, mode="reflect")
    residual = frame - median
    mad = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    noise = np.maximum(np.sqrt(np.clip(median, 0, None)), mad)
    bad = (np.abs(residual) > threshold * np.maximum(noise, 1e-12)) | ((frame <= 0) & (median >= 15))
    repaired = np.where(bad, median, frame).astype(np.float32)
    return repaired, bad

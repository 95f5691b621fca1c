"""Shot noise: electrons per pixel at a dose, Poisson frames, dose series and their SNR.

Units: dose [e/Å²], pixel size [Å].
"""

from __future__ import annotations

import numpy as np

__all__ = ["dose_to_counts", "poisson_noise", "dose_series", "snr"]


def dose_to_counts(dose: float, sampling: float) -> float:
    """Mean electron count per pixel in vacuum.

    Parameters
    ----------
    dose : float
        Electron dose [e/Å²].
    sampling : float
        Pixel size [Å].

    Returns
    -------
    float
        ``dose * sampling**2`` [electrons per pixel].

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

    Returns
    -------
    float
        The SNR; 0 where no pixel is selected or the mean intensity is not positive.

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

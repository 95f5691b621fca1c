"""A frame's spectrum: where it holds structure rather than shot noise (:func:`structure_map`),
and its strongest lattice fringes (:func:`spectrum_peaks`).

Units: pixel sizes [Å], spatial frequencies [1/Å].
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["structure_map", "spectrum_peaks"]


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

"""Imaging in one import: optics, shot noise, frame checks and resampling, spectra.

Each subject has its module; this one gathers their public names for the code and
notebooks that import them from here:

- :mod:`atomtools.core.optics`: :class:`Optics`, the wavelength, Scherzer defocus and
  the sampling a simulation needs;
- :mod:`atomtools.core.noise`: electrons per pixel at a dose, Poisson frames, SNR;
- :mod:`atomtools.core.frames`: the checks of a frame and its pixel size, normalization,
  the one resampler, Fourier cropping, dead and hot pixels;
- :mod:`atomtools.core.spectra`: where a frame holds structure, its lattice fringes.
"""

from __future__ import annotations

from .frames import (
    check_frame,
    check_sampling,
    fft_friendly_size,
    fourier_crop,
    normalize,
    repair_pixels,
    resample_frame,
)
from .noise import dose_series, dose_to_counts, poisson_noise, snr
from .optics import ANTIALIAS_CUTOFF, Optics, max_wave_frequency, scherzer_defocus, validate_sampling, wavelength
from .spectra import spectrum_peaks, structure_map

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

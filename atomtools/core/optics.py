"""Electron optics: the wavelength, the Scherzer defocus, the :class:`Optics` of an HRTEM image
and the sampling a simulation needs for them.

Pure functions and a frozen dataclass; no simulator. The simulator
(:mod:`atomtools.simulation.engine`, :func:`~atomtools.simulation.engine.ctf_parameters`)
turns :class:`Optics` into an abTEM ``CTF`` in abTEM's conventions.

Units: energies [eV], lengths [Å], angles [mrad] for apertures and [degrees] for
in-plane directions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Optics", "ANTIALIAS_CUTOFF", "wavelength", "scherzer_defocus", "max_wave_frequency", "validate_sampling"]


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

    Returns
    -------
    float
        The Scherzer defocus [Å], positive underfocus for positive Cs.

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

    Returns
    -------
    float
        The lower of the aperture's cutoff and the antialias limit [1/Å].
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

"""Optics, dose and detector kernels, checked against formulas and abTEM."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units

from atomtools.core import imaging


def _wavelength_from_constants(energy):
    """lambda = h / sqrt(2 m e E (1 + e E / (2 m c^2))) from CODATA via ase.units, in Å."""
    h, m, e, c = units._hplanck, units._me, units._e, units._c
    p = np.sqrt(2 * m * e * energy * (1 + e * energy / (2 * m * c**2)))
    return h / p * 1e10


@pytest.mark.parametrize("energy", [80e3, 200e3, 300e3])
def test_wavelength_matches_the_relativistic_formula(energy):
    assert imaging.wavelength(energy) == pytest.approx(_wavelength_from_constants(energy), rel=1e-4)


@pytest.mark.parametrize("Cs", [1.2e7, -9e4, 5e5])
def test_scherzer_defocus_matches_the_formula_and_abtem(Cs):
    from abtem.transfer import scherzer_defocus

    expected = np.sign(Cs) * np.sqrt(1.5 * abs(Cs) * _wavelength_from_constants(300e3))
    assert imaging.scherzer_defocus(Cs, 300e3) == pytest.approx(expected, rel=1e-4)
    assert imaging.scherzer_defocus(Cs, 300e3) == pytest.approx(scherzer_defocus(Cs, 300e3), rel=1e-6)


def test_scherzer_defocus_flattens_the_phase_contrast_transfer():
    """At Scherzer defocus, sin(chi) keeps one sign out to the point resolution (Cs only)."""
    Cs, E = 1.2e7, 300e3
    lam = imaging.wavelength(E)
    df = imaging.scherzer_defocus(Cs, E)
    k = np.linspace(1e-3, 1 / (0.67 * (Cs * lam**3) ** 0.25) * 0.99, 400)  # below 1 / point resolution
    chi = np.pi * lam * df * k**2 * -1 + 0.5 * np.pi * Cs * lam**3 * k**4
    assert np.all(np.sin(chi) < 0) or np.all(np.sin(chi) > 0)


def test_dose_calibration_within_one_percent():
    rng = np.random.default_rng(0)
    clean = np.ones((512, 512))
    for dose, sampling in [(100.0, 0.16), (1000.0, 0.1), (5000.0, 0.2)]:
        counts = imaging.poisson_noise(clean, dose=dose, sampling=sampling, rng=rng)
        assert counts.mean() == pytest.approx(dose * sampling**2, rel=0.01)
        assert counts.var() == pytest.approx(dose * sampling**2, rel=0.05)  # Poisson: variance = mean


def test_noise_is_seeded():
    clean = np.full((32, 32), 0.8)
    a = imaging.poisson_noise(clean, dose=500.0, sampling=0.16, rng=np.random.default_rng(7))
    b = imaging.poisson_noise(clean, dose=500.0, sampling=0.16, rng=np.random.default_rng(7))
    assert np.array_equal(a, b)


def test_snr_grows_as_the_square_root_of_dose():
    clean = 1 + 0.3 * np.sin(np.linspace(0, 30, 4096))
    s1 = imaging.snr(clean, dose=100.0, sampling=0.16)
    s4 = imaging.snr(clean, dose=400.0, sampling=0.16)
    assert s4 / s1 == pytest.approx(2.0, rel=1e-9)
    assert imaging.snr(np.ones(10), dose=100.0, sampling=0.1) == 0.0


def test_fourier_crop_resamples_band_limited_signals_exactly():
    n = 120
    x = np.arange(n) / n
    f = np.cos(2 * np.pi * 3 * x)[None, :] * np.sin(2 * np.pi * 5 * x)[:, None] + 1.0
    g = imaging.fourier_crop(f, (40, 40))
    x2 = np.arange(40) / 40
    expected = np.cos(2 * np.pi * 3 * x2)[None, :] * np.sin(2 * np.pi * 5 * x2)[:, None] + 1.0
    assert np.allclose(g, expected, atol=1e-10)
    assert np.allclose(imaging.fourier_crop(g, (n, n)), f, atol=1e-10)


def test_coarse_sampling_is_refused_before_any_work():
    with pytest.raises(ValueError, match="too coarse for a 40.0 mrad objective aperture"):
        imaging.validate_sampling(0.2, imaging.Optics(aperture=40.0))
    imaging.validate_sampling(0.05, imaging.Optics(aperture=40.0))


def test_focal_spread_is_converted_to_abtems_one_over_e_width():
    from atomtools.simulation.engine import ctf_parameters

    assert ctf_parameters(imaging.Optics(focal_spread=30.0))["focal_spread"] == pytest.approx(30.0 * np.sqrt(2))


def test_the_core_wavelength_is_abtems():
    from abtem.core.energy import energy2wavelength

    for energy in (60e3, 80e3, 200e3, 300e3):
        assert imaging.wavelength(energy) == pytest.approx(energy2wavelength(energy), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"focal_spread": -1.0}, "focal_spread"), ({"aperture": 0.0}, "aperture"), ({"energy": -5.0}, "energy")],
)
def test_bad_optics_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        imaging.Optics(**kwargs)


@pytest.mark.parametrize(
    "bad, message", [(np.array([[1.0, np.nan]]), "NaN"), (np.zeros((3, 3)), "mean must be positive")]
)
def test_normalize_refuses_bad_images(bad, message):
    with pytest.raises(ValueError, match=message):
        imaging.normalize(bad)


def test_dose_must_be_positive():
    with pytest.raises(ValueError, match="dose must be positive"):
        imaging.dose_to_counts(-10.0, 0.1)

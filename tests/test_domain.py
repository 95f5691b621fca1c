"""An answer that knows its limits: no columns where there is no crystal, bad input refused,
frames from outside the model's domain flagged, resampling that keeps the dose."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from atomtools.columns import retrieve
from atomtools.columns.domain import OutOfDomainWarning, lattice_check, structure_mask
from atomtools.core.imaging import Optics, poisson_noise, resample_frame, structure_map
from atomtools.core.materials import CEO2, material
from atomtools.core.structures import ParticleSpec, build
from atomtools.simulation import exit_waves, images_from_exit_waves

from .conftest import SHARED_MIRROR

EXTENT = (40.96, 40.96)


def _frame(mat, *, dose=1000.0, seed=0):
    atoms = build(
        ParticleSpec(profile="stepped", size=24.0, n_min=2, n_max=6, rotation=17.0, material=mat, seed=seed),
        extent=EXTENT,
    )
    clean = images_from_exit_waves(
        exit_waves(atoms, gpts=(840, 840), energy=300e3), extent=EXTENT, optics=[Optics()], shape=(256, 256)
    )[0]
    return poisson_noise(clean, dose=dose, sampling=0.16, rng=np.random.default_rng(seed))


@pytest.fixture(scope="module")
def ceo2_frame():
    return _frame(CEO2)


@pytest.mark.parametrize("size", [256, 2048])
def test_pure_shot_noise_gives_no_columns(size):
    noise = np.random.default_rng(size).poisson(1000 * 0.16**2, (size, size)).astype(np.float32)
    assert structure_map(noise, 0.16).max() < 1.3  # the threshold is 1.4
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)  # nothing there: nothing to judge either
        table, maps = retrieve(noise, sampling=0.16)
    assert len(table) == 0, f"{len(table)} columns in pure noise"
    assert not maps["structure"].any() and maps["domain"] is None


def test_a_near_constant_frame_gives_no_columns():
    flat = 1000.0 + np.random.default_rng(1).normal(0, 0.01, (256, 256))
    table, _ = retrieve(flat, sampling=0.16)
    assert len(table) == 0


def test_columns_of_a_particle_are_kept(ceo2_frame):
    mask = structure_mask(ceo2_frame, 0.16)
    table, maps = retrieve(ceo2_frame, sampling=0.16, structure_only=False)
    kept, _ = retrieve(ceo2_frame, sampling=0.16)
    ce = table[table.channel == 0]
    inside = mask[np.rint(ce.row).astype(int), np.rint(ce.col).astype(int)]
    assert inside.mean() > 0.95 and len(kept[kept.channel == 0]) >= 0.95 * len(ce)


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.random.default_rng(0).normal(0, 5, (128, 128)), "negative"),  # background-subtracted
        (np.random.default_rng(0).poisson(20, (128, 128)) - 25.0, "negative"),  # offset removed too far
    ],
)
def test_background_subtracted_or_negative_frames_are_refused(frame, message):
    with pytest.raises(ValueError, match=message):
        retrieve(frame, sampling=0.16)


def test_the_training_material_at_its_pixel_size_is_in_domain(ceo2_frame):
    report = lattice_check(ceo2_frame, 0.16, CEO2)
    assert report.in_domain and report.score > 0.7, report
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        _, maps = retrieve(ceo2_frame, sampling=0.16)
    assert maps["domain"]["score"] > 0.7


def test_a_wrong_pixel_size_is_flagged(ceo2_frame):
    report = lattice_check(ceo2_frame, 0.16 * 1.2, CEO2)
    assert not report.in_domain and "pixel size" in report.message
    with pytest.warns(OutOfDomainWarning, match="do not match CeO2"):
        retrieve(ceo2_frame, sampling=0.16 * 1.2, resample=True)


def test_another_material_is_flagged():
    gold = _frame(material("Au"), dose=2000.0, seed=2)
    with pytest.warns(OutOfDomainWarning, match="do not match CeO2"):
        _, maps = retrieve(gold, sampling=0.16)
    assert maps["domain"]["score"] < 0.7


def test_shrinking_a_finely_sampled_frame_keeps_its_dose():
    counts = np.random.default_rng(3).poisson(1000 * 0.05**2, (640, 640)).astype(float)  # 1000 e/Å² at 0.05 Å/px
    shrunk = resample_frame(counts, 0.05, 0.16)
    assert shrunk.mean() == pytest.approx(counts.mean(), rel=0.01)
    # shot noise as if counted in 0.16 Å pixels: relative std 1/sqrt(25.6), not the 0.05 Å pixels' 1/sqrt(2.5)
    assert shrunk.std() / shrunk.mean() == pytest.approx(1 / np.sqrt(1000 * 0.16**2), rel=0.15)


def test_a_wrong_pixel_size_is_named_by_the_scale_at_which_the_fringes_match(ceo2_frame):
    named = 0
    for factor in (0.8, 1.25):
        report = lattice_check(ceo2_frame, 0.16 * factor, CEO2)
        assert not report.in_domain, (factor, report)
        if "times the given pixel size" in report.message:  # the fringes match, at another scale
            scale = float(report.message.split("they match at ")[1].split(" times")[0])
            assert scale == pytest.approx(1 / factor, rel=0.03)
            named += 1
    assert named, "no wrong pixel size was named by its scale"
    # the given pixel size itself is never "rescaled": in-domain frames stay quiet
    assert lattice_check(ceo2_frame, 0.16, CEO2).message == ""


def test_a_real_mos2_frame_is_flagged_as_another_material():
    from atomtools.readers import read_frames

    path = SHARED_MIRROR / "temul" / "example_Se_implanted_MoS2.dm3"
    if not path.is_file():
        pytest.skip(f"the shared data mirror is absent ({path})")
    frames = read_frames(path)
    report = lattice_check(np.asarray(frames.frame(0), float), frames.sampling, CEO2)
    assert not report.in_domain and report.score < 0.6
    assert "another material or zone axis" in report.message and "unmatched:" in report.message

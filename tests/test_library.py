"""The atom-segmentation library: the fast HAADF model, crystals, truths, the store."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from atomtools.localize import peaks_to_table
from atomtools.simulation import library as lib
from atomtools.simulation.stem import incoherent_image, splat_gaussians
from atomtools.storage import ATOM_LIBRARY, open_dataset

STILL = lib.LibraryConfig(  # no distortion, no carbon support (its atoms shift the peaks of a thin column)
    shape=(96, 96), drift=0.0, jitter=0.0, hrtem_fraction=0.0, blank_fraction=0.0, support_fraction=0.0
)


@pytest.mark.parametrize("x, y", [(3.13, 4.71), (5.0, 2.55), (4.42, 4.42)])
def test_an_atom_images_where_its_truth_says(x, y):
    sampling = 0.1
    img = incoherent_image(np.array([[x, y]]), np.array([0.02]), shape=(96, 96), sampling=sampling, blur=0.2)
    # the image's own peak, refined like the segmenter's mask, sits at (x / s - 0.5, y / s - 0.5) px
    table = peaks_to_table(img / img.max(), threshold=0.5)
    assert len(table) == 1
    assert table.col[0] == pytest.approx(x / sampling - 0.5, abs=0.05)
    assert table.row[0] == pytest.approx(y / sampling - 0.5, abs=0.05)
    assert img.sum() * sampling**2 == pytest.approx(0.02, rel=1e-3)  # all the scattering lands in the frame


def test_probe_tails_and_dose_scale_the_image():
    xy, w = np.array([[4.8, 4.8]]), np.array([0.02])
    sharp = incoherent_image(xy, w, shape=(96, 96), sampling=0.1)
    tailed = incoherent_image(xy, w, shape=(96, 96), sampling=0.1, tail=0.3)
    counts = incoherent_image(xy, w, shape=(96, 96), sampling=0.1, dose=1e5)
    assert tailed.max() < 0.8 * sharp.max() and tailed.sum() == pytest.approx(sharp.sum(), rel=1e-3)
    assert counts.sum() == pytest.approx(sharp.sum() * 1e5 * 0.01, rel=1e-3)


@pytest.mark.parametrize("name, zone", [*lib.TRAIN_CRYSTALS, *lib.HELD_OUT_CRYSTALS])
def test_every_crystal_builds_a_patch(name, zone):
    pos, numbers, column = lib.crystal_patch(name, zone, extent=(20.0, 20.0), thickness=12.0)
    assert len(pos) > 10 and pos[:, :2].min() >= 0 and pos[:, 0].max() < 20 and pos[:, 1].max() < 20
    assert len(np.unique(column)) < len(pos) or name == "MoS2"  # atoms share columns along the beam
    if name == "MoS2":
        assert np.ptp(pos[:, 2]) < 4.0  # one layer, whatever the thickness


def test_unknown_crystal_and_bad_ranges_are_refused():
    with pytest.raises(ValueError, match="unknown crystal 'Cu2O'"):
        lib.bulk_crystal("Cu2O")
    with pytest.raises(ValueError, match="LibraryConfig.crystals: unknown crystal"):
        lib.LibraryConfig(crystals=(("Xx", (1, 1, 0)),))
    with pytest.raises(ValueError, match="LibraryConfig.sampling must be a range"):
        lib.LibraryConfig(sampling=(0.2, 0.1))


def test_items_are_deterministic_and_their_truth_sits_on_the_clean_peaks():
    a = lib.library_item(3, STILL, 5)
    b = lib.library_item(3, STILL, 5)
    for key in ("noisy", "clean", "sharp", "gauss", "positions"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["noisy"].dtype == np.float32 and a["disk"].dtype == np.uint8 and a["noisy"].shape == (1, 96, 96)
    # every true column is a peak of the deblurred image, to a tenth of a pixel
    sharp = a["sharp"][0]
    found = peaks_to_table(sharp / sharp.max(), threshold=0.05, min_distance=1)[["col", "row"]].to_numpy()
    xy = a["positions"][:, :2]
    inner = xy[(xy.min(axis=1) > 4) & (xy.max(axis=1) < 91)]
    d = np.min(np.linalg.norm(inner[:, None] - found[None], axis=-1), axis=1)
    assert np.median(d) < 0.1 and len(inner) > 5


def test_drift_and_jitter_move_the_truth_with_the_image():
    drifting = replace(STILL, drift=0.02, jitter=0.3)
    a = lib.library_item(0, drifting, 9)
    sharp = a["sharp"][0]
    found = peaks_to_table(sharp / sharp.max(), threshold=0.05, min_distance=1)[["col", "row"]].to_numpy()
    xy = a["positions"][:, :2]
    inner = xy[(xy.min(axis=1) > 4) & (xy.max(axis=1) < 91)]
    d = np.min(np.linalg.norm(inner[:, None] - found[None], axis=-1), axis=1)
    assert np.median(d) < 0.25
    assert abs(a["images"][0]["drift_x"]) > 0


def test_haadf_truth_leaves_out_columns_it_cannot_see():
    ceo2 = replace(STILL, crystals=(("CeO2", (1, 1, 0)),), region_fraction=0.0)
    item = lib.library_item(0, ceo2, 0)
    assert set(item["numbers"].tolist()) == {58}  # O columns carry < 15 % of a Ce column's scattering
    sto = replace(STILL, crystals=(("SrTiO3", (1, 0, 0)),), region_fraction=0.0, thickness=(20.0, 40.0))
    assert set(lib.library_item(0, sto, 0)["numbers"].tolist()) == {38, 22}  # Sr and Ti-O, not pure O


def test_blank_items_have_no_atoms():
    blank = replace(STILL, blank_fraction=1.0)
    item = lib.library_item(0, blank, 0)
    assert len(item["positions"]) == 0 and item["gauss"].max() == 0 and item["disk"].max() == 0
    assert item["noisy"].sum() > 0  # carbon support and background still scatter


def test_splat_gaussians_keeps_peaks_at_their_amplitude():
    m = splat_gaussians((20, 20), np.array([[5.0, 5.0], [5.0, 7.0]]), sigma=1.5)
    assert m.max() == pytest.approx(1.0, abs=1e-6)
    s = splat_gaussians((20, 20), np.array([[5.0, 5.0], [5.0, 7.0]]), sigma=1.5, combine="sum")
    assert s.max() > 1.2


def test_make_library_writes_resumes_and_refuses_other_settings(tmp_path):
    config = replace(STILL, shape=(48, 48))
    out = lib.make_library(tmp_path / "lib.zarr", config, n_images=3, seed=1, scheduler="synchronous", progress=False)
    ds = open_dataset(out)
    assert ds.attrs["format"] == ATOM_LIBRARY.format and len(ds) == 3
    first = np.asarray(ds.noisy[1])
    np.testing.assert_array_equal(first, lib.library_item(1, config, 1)["noisy"][0])
    assert set(ds.params.crystal) <= {c for c, _ in lib.TRAIN_CRYSTALS} | {"none"}
    lib.make_library(out, config, n_images=3, seed=1, scheduler="synchronous", progress=False)  # finished: a no-op
    with pytest.raises(ValueError, match="other parameters"):
        lib.make_library(out, config, n_images=3, seed=2, scheduler="synchronous", progress=False)

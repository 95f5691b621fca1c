"""Retrieval: input checks, sampling, tiling and blending, bounded memory, and the shipped model's accuracy."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from atomtools import columns
from atomtools.core.imaging import resample_frame
from atomtools.models import UNet, UNetConfig


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = UNet(UNetConfig(width=4, depth=2, stem=1)).eval()
    return columns.load_retriever((model, {"sampling": 0.16, "temperature": [1.0, 1.0], "channels": [["Ce"], ["O"]]}))


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.ones((2, 64, 64)), "one 2D frame"),
        (np.ones((0, 0)), "empty or tiny"),
        (np.where(np.eye(64) > 0, np.nan, 1.0), "NaN or infinite"),
        (np.where(np.eye(64) > 0, np.inf, 1.0), "NaN or infinite"),
        (np.full((64, 64), 3.0), "constant"),
        (np.ones((64, 64), complex), "real-valued"),
    ],
)
def test_bad_frames_get_a_clear_error(frame, message, tiny):
    with pytest.raises(ValueError, match=message):
        columns.retrieve(frame, sampling=0.16, model=tiny)


def test_sampling_mismatch_is_refused_or_resampled_explicitly(tiny):
    frame = np.random.default_rng(0).poisson(20.0, (100, 120)).astype(float)
    with pytest.raises(ValueError, match="differs from the model's 0.16 Å/px by 38%"):
        columns.retrieve(frame, sampling=0.1, model=tiny)
    table, maps = columns.retrieve(frame, sampling=0.1, model=tiny, resample=True)
    assert maps["classes"].shape == (2, 100, 120) and maps["sampling"] == 0.1
    if len(table):
        assert np.allclose(table.row, table.y / 0.1) and np.allclose(table.col, table.x / 0.1)
    columns.retrieve(frame, sampling=0.165, model=tiny)  # within 5 %: used as is
    with pytest.raises(ValueError, match="positive pixel size"):
        columns.retrieve(frame, sampling=0.0, model=tiny)


def test_resample_keeps_physical_positions():
    x = np.arange(50) * 0.1
    frame = np.sin(x)[None, :] * np.ones((40, 1))
    out = resample_frame(frame, 0.1, 0.16, order=1)
    assert np.allclose(out[0], np.interp(np.arange(out.shape[1]) * 0.16, x, np.sin(x)), atol=2e-3)


def test_tiles_blend_to_the_whole_frame_result(tiny):
    frame = np.random.default_rng(1).gamma(4.0, 0.25, (160, 200)).astype(np.float32)
    whole = columns.predict_maps(frame, tiny, tile=208)
    tiled = columns.predict_maps(frame, tiny, tile=64, overlap=24)
    assert whole["classes"].shape == tiled["classes"].shape == (2, 160, 200)
    assert np.mean(whole["classes"] == tiled["classes"]) > 0.97
    assert np.abs(whole["column_probability"] - tiled["column_probability"]).mean() < 0.02


@pytest.mark.slow
def test_memory_stays_bounded_for_a_4096_frame(tmp_path):
    script = textwrap.dedent(
        """
        import resource, numpy as np, torch
        from atomtools import columns
        from atomtools.models import UNet, UNetConfig
        torch.manual_seed(0)
        net = UNet(UNetConfig(width=4, depth=2, stem=2)).eval()
        ret = columns.load_retriever((net, {"sampling": 0.16, "temperature": [1.0, 1.0]}))
        frame = np.random.default_rng(0).gamma(4.0, 0.25, (4096, 4096)).astype(np.float32)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        maps = columns.predict_maps(frame, ret)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(maps["classes"].shape, (after - before) / 1024)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shape, grown_mb = proc.stdout.strip().rsplit(" ", 1)
    assert shape.startswith("(2, 4096, 4096)")
    # the output maps alone are 2 x 4096^2 x 9 bytes = 302 MB;
    # the full probability stack would be 26 x 4096^2 x 4 bytes = 1.7 GB
    assert float(grown_mb) < 900, f"peak memory grew by {grown_mb} MB"


def test_shipped_model_finds_and_counts_columns():
    """The pretrained network on a fresh simulation it never saw, at a comfortable dose."""
    from atomtools.core.imaging import Optics, poisson_noise
    from atomtools.core.labels import column_table
    from atomtools.core.metrics import column_scores
    from atomtools.core.structures import ParticleSpec, build
    from atomtools.simulation import exit_waves, images_from_exit_waves

    extent = (40.96, 40.96)
    atoms = build(
        ParticleSpec(profile="stepped", size=26.0, n_min=2, n_max=6, profile_width=7.0, rotation=17.0, seed=123),
        extent=extent,
    )
    waves = exit_waves(atoms, gpts=(840, 840), energy=300e3)
    clean = images_from_exit_waves(waves, extent=extent, optics=[Optics(defocus=-50.0)], shape=(256, 256))[0]
    noisy = poisson_noise(clean, dose=3000.0, sampling=0.16, rng=np.random.default_rng(0))
    table, maps = columns.retrieve(noisy, sampling=0.16)
    scores = column_scores(table, column_table(atoms, sampling=0.16))
    # measured for the shipped model on this image: F1 1.0, 72 % within one atom, MAE about 1.1
    assert scores["f1"] > 0.95, scores
    assert scores["within_one"] > 0.6 and scores["mae"] < 1.5, scores
    assert maps["confidence"].min() >= 0 and maps["confidence"].max() <= 1


def test_a_column_calibration_recalibrates_the_column_confidence(tiny):
    from dataclasses import replace

    from atomtools.core.metrics import apply_platt

    frame = np.random.default_rng(5).gamma(4.0, 0.25, (96, 96)).astype(np.float32) + 1.0
    plain, _ = columns.retrieve(frame, sampling=0.16, model=tiny, structure_only=False)
    calibrated, _ = columns.retrieve(
        frame, sampling=0.16, model=replace(tiny, column_calibration=(2.0, 0.5)), structure_only=False
    )
    assert len(plain) == len(calibrated)
    if len(plain):
        assert np.allclose(calibrated.confidence, apply_platt(plain.confidence, 2.0, 0.5))
        assert np.array_equal(calibrated["count"], plain["count"])


@pytest.mark.parametrize("size", [3, 7, 11])
@pytest.mark.parametrize("shape", [(64, 80), (5, 9)])
def test_maximum_filter_is_scipys(size, shape):
    """find_columns' fast local maximum gives scipy's values, edges included (frames narrower than the window too)."""
    from scipy import ndimage

    from atomtools.columns.retrieval import _maximum_filter

    x = np.random.default_rng(size).random(shape).astype(np.float32)
    x[2, 3] = 5.0  # a peak near the corner
    np.testing.assert_array_equal(_maximum_filter(x, size), ndimage.maximum_filter(x, size=size, mode="nearest"))

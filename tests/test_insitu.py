"""The simulated in-situ series: its events happen as scheduled and its truth says so."""

from __future__ import annotations

import numpy as np
import pytest

from atomtools.core.imaging import repair_pixels
from atomtools.simulation.insitu import InsituConfig, make_insitu_series

SMALL = InsituConfig(
    shape=(160, 160),
    size=18.0,
    n_frames=14,
    events={"vacancy": 1, "refill": 1, "column_vanishes": 1, "column_appears": 1, "migration": 1},
)


@pytest.fixture(scope="module")
def series():
    return make_insitu_series(SMALL, seed=3, progress=False)


def test_frames_drift_and_times(series):
    assert series["frames"].shape == (14, 160, 160) and series["frames"].dtype == np.float32
    assert np.array_equal(series["drift"][0], [0.0, 0.0]) and np.abs(series["drift"][1:]).max() > 0
    np.testing.assert_allclose(np.diff(series["times"]), 1 / 7.5)
    # the clean frames are the first one shifted by the drift, until the first event
    first = int(series["events"].frame.min())
    from scipy.ndimage import fourier_shift

    back = np.fft.ifftn(fourier_shift(np.fft.fftn(series["clean"][first - 1] - 1), -series["drift"][first - 1])).real
    inner = (slice(20, -20), slice(20, -20))
    np.testing.assert_allclose(back[inner] + 1, series["clean"][0][inner], atol=2e-3)


def test_events_change_the_truth_as_scheduled(series):
    events, columns = series["events"], series["columns"]
    assert sorted(events.kind.unique()) == sorted(
        ["vacancy", "refill", "column_vanishes", "column_appears", "migration"]
    )
    assert events.frame.min() >= 2 and events.frame.max() <= 14 - 3
    for e in events.itertuples():
        before = columns[(columns.frame == e.frame - 1) & np.isclose(columns.x, e.x) & np.isclose(columns.y, e.y)]
        after = columns[(columns.frame == e.frame) & np.isclose(columns.x, e.x) & np.isclose(columns.y, e.y)]
        assert (int(before["count"].sum()) if len(before) else 0) == e.before, e
        assert (int(after["count"].sum()) if len(after) else 0) == e.after, e
    refill = events[events.kind == "refill"].iloc[0]
    vacancy = events[events.kind == "vacancy"].iloc[0]
    assert (refill.x, refill.y) == (vacancy.x, vacancy.y) and refill.frame > vacancy.frame


def test_same_seed_same_series_and_bad_configs(series):
    again = make_insitu_series(SMALL, seed=3, progress=False)
    np.testing.assert_array_equal(again["frames"], series["frames"])
    with pytest.raises(ValueError, match="unknown event kinds"):
        InsituConfig(events={"explosion": 1})
    with pytest.raises(ValueError, match="need at least"):
        InsituConfig(n_frames=5)
    with pytest.raises(ValueError, match="every refill needs an earlier vacancy"):
        InsituConfig(events={"refill": 1})


def test_repair_pixels_finds_dead_and_hot_but_not_noise():
    rng = np.random.default_rng(0)
    frame = rng.poisson(25.0, (128, 128)).astype(float)
    _, bad = repair_pixels(frame)
    assert not bad.any()
    frame[10, 10], frame[50, 60], frame[100, 3] = 0.0, 400.0, 0.0
    fixed, bad = repair_pixels(frame)
    assert sorted(map(tuple, np.argwhere(bad).tolist())) == [(10, 10), (50, 60), (100, 3)]
    assert 10 < fixed[50, 60] < 45
    with pytest.raises(ValueError, match="one 2D frame"):
        repair_pixels(np.zeros((2, 4, 4)))

"""In-situ series: drift at SNR 1, pooling, linking, count timelines, events and the whole workflow (no network)."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from atomtools.columns import series
from atomtools.core import tables
from atomtools.readers import Frames

SAMPLING = 0.16  # [Å/px]


# --------------------------------------------------------------------------- synthetic frames


def _lattice(rng: np.random.Generator, size: float = 180.0) -> tuple[np.ndarray, np.ndarray]:
    """Atom positions [px] and brightness of a two-species lattice with vacancies and adatoms (not periodic)."""
    spacing = np.array([8.3, 11.7])
    ii, jj = np.mgrid[-3 : size / spacing[0] + 3, -3 : size / spacing[1] + 3]
    heavy = np.stack([ii.ravel(), jj.ravel()], 1) * spacing
    light = heavy + spacing / 2
    points = np.r_[heavy, light]
    amps = np.r_[np.ones(len(heavy)), np.full(len(light), 0.5)]
    keep = rng.random(len(points)) > 0.08  # vacancies
    extra = rng.random((12, 2)) * size  # adatoms
    return np.r_[points[keep], extra], np.r_[amps[keep], np.full(12, 0.8)]


def _render(atoms, amps, drift, *, shape=(96, 96), width: float = 1.6, origin: float = 20.0) -> np.ndarray:
    """The noise-free frame (1 in vacuum), the sample moved by ``drift`` [px]; rendered exactly, not interpolated."""
    p = np.asarray(atoms) + np.asarray(drift) - origin
    gy = np.exp(-((np.arange(shape[0])[:, None] - p[None, :, 0]) ** 2) / (2 * width**2))
    gx = np.exp(-((np.arange(shape[1])[:, None] - p[None, :, 1]) ** 2) / (2 * width**2))
    return 1.0 + 0.8 * (gy * amps) @ gx.T


@pytest.fixture(scope="module")
def noisy_movie():
    """25 lattice frames along a sub-pixel random walk, with shot noise at SNR 1."""
    rng = np.random.default_rng(7)
    atoms, amps = _lattice(rng)
    steps = rng.normal(0.3, 0.5, (25, 2))
    steps[0] = 0
    truth = np.cumsum(steps, axis=0)
    counts = 40.0  # electrons per pixel in vacuum
    clean = [_render(atoms, amps, d) for d in truth]
    snr = float(np.std(clean[0] * counts) / np.sqrt(np.mean(clean[0] * counts)))
    frames = np.stack([rng.poisson(c * counts).astype(np.float32) for c in clean])
    return frames, truth, snr


# --------------------------------------------------------------------------- drift


@pytest.mark.parametrize("reference", ["mean", "previous"])
def test_drift_is_found_to_a_fifth_of_a_pixel_at_snr_1(noisy_movie, reference):
    frames, truth, snr = noisy_movie
    assert 0.8 < snr < 1.2
    estimate = series.estimate_drift(frames, reference=reference)
    assert estimate.shape == truth.shape and np.all(estimate[0] == 0)
    rms = float(np.sqrt(np.mean(np.sum((estimate - truth) ** 2, axis=1))))
    assert rms < 0.2, f"{reference}: RMS error {rms:.3f} px"
    assert np.abs(truth[-1]).max() > 5  # it went somewhere: a zero estimate would fail


def test_drift_estimate_streams_frames_one_at_a_time(noisy_movie):
    frames, truth, _ = noisy_movie
    alive = []
    held = []

    def stream():
        for frame in frames[:8]:
            held.append(sum(r() is not None for r in alive))
            frame = frame.copy()
            alive.append(weakref.ref(frame))
            yield frame

    from_generator = series.estimate_drift(stream())
    assert max(held) <= 1, f"frames held at once: {held}"
    assert np.allclose(from_generator, series.estimate_drift(frames[:8]))
    dask = pytest.importorskip("dask.array")
    lazy = dask.from_array(frames[:8], chunks=(1, 96, 96))
    assert np.allclose(series.estimate_drift(lazy), from_generator)


def test_an_implausible_jump_is_replaced_and_warned():
    texture = ndimage.gaussian_filter(np.random.default_rng(1).random((120, 120)), 2)
    frames = [texture[20:84, 20:84], texture[19:83, 20:84], texture[12:76, 20:84]]  # steps 1 px, then 7 px
    assert series.estimate_drift(frames).round(2).tolist() == [[0, 0], [1, 0], [8, 0]]
    with pytest.warns(series.DriftWarning, match=r"max_shift=3.0 px at frame\(s\) \[2\]"):
        shifts = series.estimate_drift(frames, max_shift=3.0)
    assert shifts.round(2).tolist() == [[0, 0], [1, 0], [2, 0]]  # the last velocity goes on


def test_correct_drift_inverts_the_drift():
    rng = np.random.default_rng(3)
    atoms, amps = _lattice(rng)
    drift = np.array([2.3, -1.7])
    still, moved = _render(atoms, amps, (0, 0)), _render(atoms, amps, drift)
    back = series.correct_drift(moved, drift)
    inner = (slice(6, -6), slice(6, -6))
    assert back.shape == moved.shape and back.dtype == np.float32
    assert np.abs(back[inner] - still[inner]).max() < 0.02 * np.ptp(still)
    assert np.abs(moved[inner] - still[inner]).max() > 0.3 * np.ptp(still)  # the drift was visible
    assert np.all(back[-2:, :] == np.float32(np.median(moved)))  # shifted in from outside: the median
    round_trip = series.correct_drift(back, -drift)
    assert np.abs(round_trip[inner] - moved[inner]).max() < 0.03 * np.ptp(still)


# --------------------------------------------------------------------------- pooling


def test_pooling_sums_aligned_counts_and_drops_a_partial_pool():
    rng = np.random.default_rng(4)
    atoms, amps = _lattice(rng)
    drift = np.array([[0.0, 0.0], [1.2, 0.4], [2.6, 1.1], [3.9, 1.4], [5.1, 2.2], [6.0, 3.1], [7.2, 3.3]])
    frames = np.stack([rng.poisson(_render(atoms, amps, d) * 50).astype(np.float32) for d in drift])
    times = np.arange(7) / 7.5
    pooled = list(series.pool_frames(frames, 3, drift=drift, times=times))
    assert [p.indices for p in pooled] == [(0, 1, 2), (3, 4, 5)]
    first = pooled[0]
    assert first.time == pytest.approx(times[:3].mean())
    assert np.all(first.image == np.round(first.image))  # whole-pixel moves: still a sum of counts
    inner = (slice(8, -8), slice(8, -8))
    assert first.image[inner].mean() == pytest.approx(3 * frames[:3][(slice(None), *inner)].mean(), rel=0.02)
    # its content lies at the pooled drift: matches the clean frame rendered there
    expected = 3 * 50 * _render(atoms, amps, first.drift)
    assert np.all(np.abs(first.drift - drift[0]) <= 0.5)  # within half a pixel of the pool's first frame
    assert np.allclose(first.drift, (drift[:3] - np.rint(drift[:3] - drift[0])).mean(axis=0))
    unaligned = list(series.pool_frames(frames, 3))[0].image
    assert (
        np.corrcoef(first.image[inner].ravel(), expected[inner].ravel())[0, 1]
        > np.corrcoef(unaligned[inner].ravel(), expected[inner].ravel())[0, 1]
    )
    partial = list(series.pool_frames(frames, 3, drift=drift, keep_partial=True))
    assert partial[-1].indices == (6,) and partial[-1].time is None
    with pytest.raises(ValueError, match="6 drifts for 7 frames"):
        list(series.pool_frames(frames, 2, drift=drift[:6]))


# --------------------------------------------------------------------------- linking


def _site_tables(n_frames=8, *, jitter=0.05, missing=((4, "Ce", 2),), seed=0):
    """Per-frame tables of a Ce grid with an O column 0.35 Å from each Ce column (drift removed, jittered)."""
    rng = np.random.default_rng(seed)
    ce = np.array([[x, y] for x in (2.0, 5.8, 9.6) for y in (2.0, 5.8)])
    o = ce + [0.3, 0.2]
    out = []
    for f in range(n_frames):
        rows = []
        for element, sites in (("Ce", ce), ("O", o)):
            for s, (x, y) in enumerate(sites):
                if (f, element, s) in missing:
                    continue
                dx, dy = rng.normal(0, jitter, 2)
                rows.append(
                    {
                        "x": x + dx,
                        "y": y + dy,
                        "element": element,
                        "channel": int(element == "O"),
                        "count": 5,
                        "confidence": 0.9,
                        "p_column": 1.0,
                        "site": s,
                    }
                )
        out.append(pd.DataFrame(rows))
    return out


def test_linking_bridges_a_missed_frame_and_never_mixes_elements():
    linked = series.link_columns(_site_tables())
    assert {"frame", "track"} <= set(linked.columns) and linked["track"].dtype.kind == "i"
    per_track = linked.groupby("track")
    assert per_track["element"].nunique().max() == 1  # each track one element
    assert per_track["site"].nunique().max() == 1  # and one site
    assert linked["track"].nunique() == 12  # 6 Ce + 6 O sites, the missed Ce column kept its track
    gap = linked[(linked.element == "Ce") & (linked.site == 2)]
    assert gap["frame"].tolist() == [0, 1, 2, 3, 5, 6, 7] and gap["track"].nunique() == 1
    # without memory, the gap splits the track
    assert series.link_columns(_site_tables(), memory=0)["track"].nunique() == 13
    # one table with a frame column, or pixel positions with sampling=, link alike
    one = pd.concat([t.assign(frame=k) for k, t in enumerate(_site_tables())], ignore_index=True)
    assert series.link_columns(one)["track"].tolist() == linked["track"].tolist()
    pixels = one.assign(row=one.y / SAMPLING, col=one.x / SAMPLING).drop(columns=["x", "y"])
    assert series.link_columns(pixels, sampling=SAMPLING)["track"].tolist() == linked["track"].tolist()


def test_count_timelines_and_summary():
    linked = series.link_columns(_site_tables())
    lines = series.count_timelines(linked)
    track = int(linked[(linked.element == "Ce") & (linked.site == 2)]["track"].iloc[0])
    line = lines[lines.track == track]
    assert line["frame"].tolist() == list(range(8))
    assert line["observed"].tolist() == [True] * 4 + [False] + [True] * 3
    assert line["count"].isna().tolist() == [False] * 4 + [True] + [False] * 3
    assert len(lines) == 12 * 8
    summary = series.track_summary(linked)
    row = summary.set_index("track").loc[track]
    assert (row.first_frame, row.last_frame, row.n_observed, row.median_count, row.changes) == (0, 7, 7, 5.0, 0)


# --------------------------------------------------------------------------- events


def _scripted(n_frames=20):
    """Tracks with scripted counts, flicker and low-confidence excursions, and the true events."""
    rows = []

    def track(t, element, x, y, counts, first=0, confidence=None):
        for k, c in enumerate(counts):
            q = 0.9 if confidence is None else confidence[k]
            rows.append(
                {"frame": first + k, "track": t, "element": element, "x": x, "y": y, "count": c, "confidence": q}
            )

    a = [5] * 8 + [4] * 6 + [5] * 6
    a[3] = 6  # one-frame flicker
    track(0, "Ce", 0.0, 0.0, a)  # vacancy at 8, refill at 14
    b = [6] * 20
    b[5], b[11] = 5, 7  # flicker
    conf_b = [0.9] * 20
    for k in (15, 16, 17):
        b[k], conf_b[k] = 3, 0.3  # a persistent change nobody is sure of
    track(1, "Ce", 10.0, 0.0, b, confidence=conf_b)
    track(2, "Ce", 20.0, 0.0, [3] * 14, first=6)  # appears at 6
    track(3, "O", 0.0, 20.0, [2] * 15)  # vanishes: last seen at 14
    track(4, "O", 10.0, 20.0, [2] * 10 + [3] * 10)  # growth at 10
    track(5, "Ce", 30.0, 0.0, [4] * 19, first=1)  # missed in frame 0 only: no appearance
    track(6, "O", 30.0, 20.0, [2] * 19)  # missed in the last frame only: no vanishing
    track(7, "Ce", 40.0, 0.0, [2], first=9)  # one spurious detection
    truth = pd.DataFrame(
        [
            (6, 20.0, 0.0, "column_appears"),
            (8, 0.0, 0.0, "vacancy"),
            (10, 10.0, 20.0, "growth"),
            (14, 0.0, 0.0, "refill"),
            (15, 0.0, 20.0, "column_vanishes"),
        ],
        columns=["frame", "x", "y", "kind"],
    )
    return pd.DataFrame(rows), truth


def test_events_are_persistent_confident_changes_and_flicker_is_not():
    tracks, truth = _scripted()
    events = series.detect_events(tracks, n_frames=20)
    assert set(series.EVENT_COLUMNS) <= set(events.columns)
    got = events[["frame", "track", "kind", "before", "after"]].values.tolist()
    assert got == [
        [6, 2, "column_appears", 0, 3],
        [8, 0, "vacancy", 5, 4],
        [10, 4, "growth", 2, 3],
        [14, 0, "refill", 4, 5],
        [15, 3, "column_vanishes", 2, 0],
    ]
    assert (events["confidence"] >= 0.6).all()
    assert all(events[c].dtype.kind == "i" for c in ("frame", "track", "before", "after"))
    # flicker becomes events when one frame is enough, and the unsure change when any confidence is
    assert len(series.detect_events(tracks, n_frames=20, persistence=1)) > len(events)
    unsure = series.detect_events(tracks, n_frames=20, min_confidence=0.0)
    assert ((unsure.track == 1) & (unsure.kind == "vacancy") & (unsure.frame == 15)).any()


def test_match_events_scores_and_delays():
    tracks, truth = _scripted()
    found = series.detect_events(tracks, n_frames=20)
    exact = series.match_events(found, truth)
    assert (exact["precision"], exact["recall"], exact["f1"]) == (1.0, 1.0, 1.0)
    assert exact["delays"] == [0] * 5 and exact["median_delay"] == 0.0
    late = series.match_events(found, truth.assign(frame=truth.frame - 2))  # found 2 frames after the truth
    assert late["recall"] == 1.0 and late["median_delay"] == 2.0
    assert series.match_events(found, truth.assign(frame=truth.frame - 4))["recall"] == 0.0  # beyond max_delay
    shuffled = truth.assign(kind=truth.kind.sample(frac=1.0, random_state=2).to_numpy())
    assert (shuffled.kind != truth.kind).sum() >= 3
    scores = series.match_events(found, shuffled)
    assert scores["precision"] < 1.0 and scores["recall"] < 1.0
    moved = series.match_events(found, truth.assign(x=truth.x + 1.5))
    assert moved["n_matched"] == 0 and moved["f1"] == 0.0
    extra = pd.concat([truth, truth.iloc[[0]].assign(frame=18)], ignore_index=True)
    assert series.match_events(found, extra)["recall"] == pytest.approx(5 / 6)


def test_a_vanishing_and_a_nearby_appearing_column_pair_as_a_migration():
    rows = [
        {"frame": f, "track": 0, "element": "Ce", "x": 0.0, "y": 0.0, "count": 4, "confidence": 0.8} for f in range(10)
    ] + [
        {"frame": f, "track": 1, "element": "Ce", "x": 2.5, "y": 1.0, "count": 4, "confidence": 0.8}
        for f in range(11, 20)
    ]
    events = series.detect_events(pd.DataFrame(rows), n_frames=20)
    assert events["kind"].tolist() == ["column_vanishes", "column_appears", "migration"]
    hop = events[events.kind == "migration"].iloc[0]
    assert (hop.frame, hop.track, hop.source_track, hop.x_from, hop.x) == (11, 1, 0, 0.0, 2.5)
    assert "migration" not in series.detect_events(pd.DataFrame(rows), migration_frames=None)["kind"].tolist()
    far = pd.DataFrame(rows).assign(x=lambda t: np.where(t.track == 1, 9.0, t.x))
    assert "migration" not in series.detect_events(far, n_frames=20)["kind"].tolist()


# --------------------------------------------------------------------------- the workflow


SITES = np.array([[20.0, 20.0], [20.0, 34.0], [34.0, 20.0], [34.0, 34.0], [48.0, 27.0], [27.0, 48.0]])  # [px]
WIDTH = 1.5  # column width [px]
PER_ATOM = 60.0  # peak counts per atom
BACKGROUND = 20.0  # counts per pixel


def _column_movie(n=12, seed=5):
    """Frames of bright columns whose peak height counts the atoms; column 0 loses an atom at frame 6."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.4, 0.4, (n, 2))
    steps[0] = 0
    drift = np.cumsum(steps, axis=0)
    frames = []
    for k, d in enumerate(drift):
        counts = np.array([5, 4, 3, 5, 4, 3])
        if k >= 6:
            counts[0] = 4
        p = SITES + d
        gy = np.exp(-((np.arange(80)[:, None] - p[None, :, 0]) ** 2) / (2 * WIDTH**2))
        gx = np.exp(-((np.arange(80)[:, None] - p[None, :, 1]) ** 2) / (2 * WIDTH**2))
        clean = BACKGROUND + (gy * counts * PER_ATOM) @ gx.T
        frames.append(rng.poisson(clean).astype(np.float32))
    return np.stack(frames), drift


def _fake_retrieve(image, *, sampling, model=None, **options):
    """A stand-in for the network: peaks, their centroid, and the count from the integrated intensity."""
    from skimage.feature import peak_local_max

    image = np.asarray(image, float)
    background = float(np.median(image))
    dose = background / BACKGROUND  # frames pooled
    smooth = ndimage.gaussian_filter(image - background, 1.0)
    peaks = peak_local_max(smooth, min_distance=4, threshold_abs=0.3 * smooth.max(), exclude_border=5)
    rows = []
    for i, j in peaks:
        box = image[i - 5 : i + 6, j - 5 : j + 6] - background
        yy, xx = np.mgrid[i - 5 : i + 6, j - 5 : j + 6]
        weight = np.clip(box, 0, None)
        ci, cj = (weight * yy).sum() / weight.sum(), (weight * xx).sum() / weight.sum()
        count = int(round(box.sum() / (dose * PER_ATOM * 2 * np.pi * WIDTH**2)))
        rows.append(
            {"x": cj * sampling, "y": ci * sampling, "element": "Ce", "channel": 0, "count": count}
            | {"confidence": 0.9, "p_column": 1.0}
        )
    return tables.new_table(rows, kind="predicted", sampling=sampling), {}


@pytest.fixture
def fake_network(monkeypatch):
    """run_series with :func:`_fake_retrieve` in place of the network (and no weights to load)."""
    monkeypatch.setattr(series, "retrieve", _fake_retrieve)
    monkeypatch.setattr(series, "load_retriever", lambda model: model)


def test_run_series_lines_up_columns_tracks_them_and_finds_the_vacancy(fake_network):
    frames, drift = _column_movie()
    movie = Frames(frames, sampling=SAMPLING, times=np.arange(len(frames)) / 7.5)
    out = series.run_series(movie, model="stub", progress=False)
    assert np.sqrt(np.mean(np.sum((out["drift"] - drift) ** 2, axis=1))) < 0.2
    assert out["seconds_per_frame"] == pytest.approx(1 / 7.5) and len(out["times"]) == 12
    tracks = out["tracks"]
    assert tracks["track"].nunique() == len(SITES)
    assert (tracks.groupby("track")["frame"].nunique() == 12).all()  # every track spans the movie
    spread = tracks.groupby("track")[["x", "y"]].std().to_numpy().max()
    assert spread < 0.05, f"drift-corrected positions spread by {spread:.3f} Å"
    site = np.abs(tracks[["y", "x"]].to_numpy() / SAMPLING - SITES[0]).sum(axis=1) < 1.0  # frame-0 coordinates
    assert site.sum() == 12
    events = out["events"]
    assert events[["frame", "kind", "before", "after"]].values.tolist() == [[6, "vacancy", 5, 4]]
    assert events["time"].iloc[0] == pytest.approx(6 / 7.5)
    # without drift correction the same columns wander
    raw = series.run_series(frames, sampling=SAMPLING, model="stub", drift=False, progress=False)
    assert raw["tracks"].groupby("track")[["x", "y"]].std().to_numpy().max() > 0.2


def test_run_series_pools_frames(fake_network):
    frames, drift = _column_movie()
    out = series.run_series(frames, sampling=SAMPLING, model="stub", pool=2, frame_interval=1 / 7.5, progress=False)
    assert out["drift"].shape == (12, 2) and out["pool"] == 2
    assert np.allclose(out["times"], (np.arange(6) * 2 + 0.5) / 7.5)
    assert out["seconds_per_frame"] == pytest.approx(2 / 7.5)
    assert set(out["columns"]["frame"]) == set(range(6))
    assert (out["tracks"].groupby("track")["frame"].nunique() == 6).all()
    assert out["events"][["frame", "kind"]].values.tolist() == [[3, "vacancy"]]
    with pytest.raises(ValueError, match="pixel size"):
        series.run_series(frames, model="stub")


def test_reading_ahead_in_a_thread_changes_nothing_and_hands_errors_on(fake_network):
    frames, _ = _column_movie()
    ahead = series.run_series(frames, sampling=SAMPLING, model="stub", pool=2, progress=False, read_ahead=3)
    in_turn = series.run_series(frames, sampling=SAMPLING, model="stub", pool=2, progress=False, read_ahead=0)
    pd.testing.assert_frame_equal(ahead["columns"], in_turn["columns"])
    pd.testing.assert_frame_equal(ahead["events"], in_turn["events"])
    np.testing.assert_array_equal(ahead["drift"], in_turn["drift"])

    def broken():
        yield frames[0]
        yield frames[1]
        raise OSError("frame 2 unreadable")

    with pytest.raises(OSError, match="frame 2 unreadable"):
        series.run_series(broken(), sampling=SAMPLING, model="stub", progress=False, read_ahead=2)


def test_run_series_drives_the_real_retrieval_with_a_tiny_network():
    """The real :func:`retrieve` (an untrained network: any columns) takes the pooled frames and gives its table."""
    torch = pytest.importorskip("torch")
    from atomtools.models import UNet, UNetConfig

    torch.manual_seed(0)
    network = UNet(UNetConfig(width=4, depth=2, stem=1)).eval()
    meta = {"sampling": SAMPLING, "temperature": [1.0, 1.0], "channels": [["Ce"], ["O"]]}
    frames, _ = _column_movie(n=4)
    out = series.run_series(frames, sampling=SAMPLING, model=(network, meta), pool=2, progress=False, threshold=0.0)
    assert out["drift"].shape == (4, 2) and out["times"] is None and out["seconds_per_frame"] is None
    assert set(tables.PREDICTED) | {"frame"} <= set(out["columns"].columns)
    assert set(out["columns"]["frame"]) <= {0, 1} and {"track"} <= set(out["tracks"].columns)

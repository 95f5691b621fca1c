"""Counting with the imaging conditions, particle decoding, prediction sets and by-count scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from atomtools import columns
from atomtools.columns import counter_task, counting
from atomtools.columns.evaluation import by_count, headline
from atomtools.core.chords import chord_counts, decode_counts, index_columns, projected_lattice
from atomtools.core.imaging import Optics
from atomtools.core.materials import material
from atomtools.core.metrics import column_scores, conformal_level, count_breakdown, interval_sets, thick_summary
from atomtools.models import ColumnCounter, CounterConfig, UNet, UNetConfig, save_model
from atomtools.simulation.independent import COMPACT, IndependentConfig, _cut, _truth


def _particle(seed: int, kind: str = "octahedron", radius: float = 12.0):
    """The principal columns of a cut particle, rotated in the image plane: (xy [Å], true counts)."""
    mat = material("CeO2")
    rng = np.random.default_rng(seed)
    atoms = _cut(mat, rng, kind, 8, radius)
    atoms.rotate(float(rng.uniform(0, 360)), "z", center=(0, 0, 0))
    _, table = _truth(atoms, mat, 0.1, atoms.positions[:, :2])
    ce = table[table.channel == 0]
    return ce[["x", "y"]].to_numpy(), ce["count"].to_numpy()


def _gaussian_probabilities(centre, *, k: int = 16, width: float = 1.0) -> np.ndarray:
    counts = np.arange(1, k + 1)
    p = np.exp(-((counts[None, :] - np.asarray(centre, float)[:, None]) ** 2) / (2 * width**2))
    return p / p.sum(axis=1, keepdims=True)


def test_columns_of_a_rotated_particle_are_indexed_on_the_lattice():
    xy, _ = _particle(0)
    idx, residual, _ = index_columns(xy, projected_lattice("CeO2"))
    assert residual.max() < 0.01
    assert len(np.unique(idx, axis=0)) == len(xy)  # one lattice site per column


@pytest.mark.parametrize("kind", ["octahedron", "wulff"])
def test_decoding_exact_probabilities_gives_the_true_chords(kind):
    xy, true = _particle(1, kind)
    out = decode_counts(xy, _gaussian_probabilities(true, width=0.3), "CeO2")
    assert np.array_equal(out["model_count"], true)
    assert np.array_equal(out["probabilities"].argmax(axis=1) + 1, true)


def test_decoding_pools_the_columns_of_a_compact_particle():
    # per-column probabilities right about 40 % of the time, unbiased: the polyhedron recovers nearly all
    exact_raw, exact_decoded = [], []
    for seed in range(4):
        xy, true = _particle(10 + seed, radius=float(11 + seed))
        noisy = true + np.random.default_rng(seed).normal(0.0, 1.0, len(true))
        p = _gaussian_probabilities(noisy)
        out = decode_counts(xy, p, "CeO2")
        exact_raw.append(np.mean(p.argmax(axis=1) + 1 == true))
        exact_decoded.append(np.mean(out["probabilities"].argmax(axis=1) + 1 == true))
    assert np.mean(exact_raw) < 0.55 and np.mean(exact_decoded) > 0.9


def test_a_strong_departure_survives_the_prior():
    # an adatom column two atoms above the polyhedron, told confidently by its probabilities, is kept
    xy, true = _particle(2)
    counts = true.copy()
    inner = int(np.argmax(true))
    counts[inner] += 2
    p = _gaussian_probabilities(counts, width=0.3)
    out = decode_counts(xy, p, "CeO2")
    assert out["probabilities"].argmax(axis=1)[inner] + 1 == counts[inner]


def test_chords_of_a_symmetric_particle():
    lat = projected_lattice("CeO2")
    d = np.full(len(lat.normals), 6.0)
    assert chord_counts(np.zeros((1, 3)), d, lat).tolist() == [3]
    assert chord_counts(np.zeros((1, 3)), d + 2 * 3.826 * 0.5**0.5 * 2**0.5, lat).tolist()[0] >= 4
    assert projected_lattice("Si") is None  # diamond: dumbbell columns, not decoded


def test_conditions_vector_and_its_errors():
    v = counting.condition_vector(Optics(defocus=-50.0, Cs=-1e5), tilt=1.0)
    assert v.shape == (12,) and v[6:].tolist() == [1.0] * 6 and v[0] == -1.0 and v[5] == 1.0
    assert counting.condition_vector().tolist() == [0.0] * 12
    with pytest.raises(ValueError, match="unknown \\['Cc'\\]"):
        counting.condition_vector({"Cc": 1.0})
    with pytest.raises(ValueError, match="finite number"):
        counting.condition_vector({"defocus": float("nan")})


def test_prediction_sets_cover_as_calibrated():
    rng = np.random.default_rng(0)
    centre = rng.uniform(1, 12, 6000)
    p = _gaussian_probabilities(centre, width=1.2)
    true = np.array([rng.choice(16, p=q) for q in p])
    level = conformal_level(p[:3000], true[:3000], coverage=0.9)
    low, high = interval_sets(p[3000:], level=level)
    covered = np.mean((true[3000:] >= low) & (true[3000:] <= high))
    assert 0.9 <= covered < 0.97
    assert np.all(low <= p[3000:].argmax(axis=1)) and np.all(high >= p[3000:].argmax(axis=1))


def test_by_count_tables_and_the_headline():
    true = np.array([1, 1, 3, 3, 5, 5, 5, 9])
    pred = np.array([1, 2, 3, 4, 5, 5, 6, 9])
    table = count_breakdown(true, pred, low=pred - 1, high=pred + 1)
    assert table["count"].tolist() == [1, 3, 5, 9] and table.loc[2, "mean_error"] == pytest.approx(1 / 3)
    head = thick_summary(true, pred, low=pred - 1, high=pred + 1)
    assert head["n"] == 6 and head["exact"] == pytest.approx(4 / 6) and head["coverage"] == 1.0
    assert head["balanced_exact"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    # through evaluate's rows: by count and by mistilt class
    truth = pd.DataFrame({"x": np.arange(8) * 3.0, "y": 0.0, "channel": 0, "count": true})
    predicted = pd.DataFrame({"x": np.arange(8) * 3.0, "y": 0.0, "channel": 0, "count": pred, "confidence": 0.5})
    row = {"method": "network", "dose": 1000.0, "image": 0, "profile": "octahedron", "tilt": 0.9}
    rows = [{**row, **column_scores(predicted, truth)}]
    assert by_count(rows, ("method", "tilt"))["tilt"].unique().tolist() == [1.0]
    assert headline(rows)["exact"].iloc[0] == pytest.approx(4 / 6)


def test_compact_independent_particles_are_whole_and_thick():
    config = IndependentConfig(**COMPACT)
    assert config.particles["tilt_values"] == (0.0, 0.5, 1.0, 2.0)
    xy, true = _particle(3, "wulff", radius=14.0)
    assert true.max() >= 7 and len(true) > 60


@pytest.fixture(scope="module")
def tiny_counter(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("counter") / "counter.pt"
    save_model(
        path,
        ColumnCounter(CounterConfig(width=4, hidden=8)),
        metadata={"material": "CeO2", "zone_axis": [1, 1, 0], "temperature": [1.0]},
    )
    return path


def test_retrieve_with_a_counter_gives_sets_and_conditions(tiny_counter):
    torch.manual_seed(0)
    unet = UNet(UNetConfig(width=4, depth=2, stem=1)).eval()
    tiny = columns.load_retriever((unet, {"sampling": 0.16, "temperature": [1.0, 1.0], "channels": [["Ce"], ["O"]]}))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] * 0.16
    frame = rng.poisson(200 * (1 + 0.5 * np.cos(2 * np.pi * xx / 3.3) * np.cos(2 * np.pi * yy / 3.3))).astype(float)
    table, maps = columns.retrieve(
        frame, sampling=0.16, model=tiny, counter=tiny_counter, optics={"defocus": -40.0}, structure_only=False
    )
    assert {"count_low", "count_high", "beyond_range"} <= set(table.columns)
    if len(table):
        assert (table["count_low"] <= table["count"]).all() and (table["count"] <= table["count_high"]).all()
    assert maps["counts"] is None or maps["counts"]["probabilities"].shape[1] == 16
    with pytest.raises(ValueError, match="unknown"):
        columns.retrieve(frame, sampling=0.16, model=tiny, counter=tiny_counter, optics={"Cc": 1.0})


def test_columns_off_the_crystal_lattice_are_dropped():
    xy, true = _particle(4)
    rng = np.random.default_rng(0)
    amorphous = rng.uniform(-12, 12, (12, 2)) + np.array([40.0, 0.0])  # a patch of support beside the particle
    lone = np.array([[0.0, 40.0]])
    points = np.vstack([xy, amorphous, lone])
    table = pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "channel": 0})
    oxygen = pd.DataFrame({"x": [xy[0, 0] + 1.2, 60.0], "y": [xy[0, 1], 60.0], "channel": [1, 1]})
    keep = columns.crystal_columns(pd.concat([table, oxygen], ignore_index=True), material("CeO2"))
    assert keep[: len(xy)].all() and not keep[len(xy) : len(xy) + 13].any()
    assert keep[-2] and not keep[-1]  # O beside a kept Ce column stays; O far from any does not
    # a frame of amorphous columns alone: nothing to judge by, all kept
    only = pd.DataFrame({"x": amorphous[:, 0], "y": amorphous[:, 1], "channel": 0})
    assert columns.crystal_columns(only, material("CeO2")).all()


def test_a_particle_is_indexed_once_and_the_answer_handed_on(monkeypatch):
    """The crystal check indexes each particle; the decoding reuses that answer (no global cache)."""
    from atomtools.core import chords

    xy, true = _particle(1, "wulff")
    table = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "channel": 0})
    indexed: dict = {}
    assert columns.crystal_columns(table, material("CeO2"), indexed=indexed).all()
    # found again through pixels and back (as recount does): the same key
    again = (np.round(xy / 0.16, 9) * 0.16).astype(float)
    assert list(indexed) == [chords.indexing_key(again)]
    calls = []
    real = chords._index
    monkeypatch.setattr(chords, "_index", lambda *a: calls.append(1) or real(*a))
    p = _gaussian_probabilities(true + 0.4, width=0.8)
    handed = decode_counts(xy, p, "CeO2", indexed=indexed[chords.indexing_key(xy)])
    assert not calls  # nothing searched again
    fresh = decode_counts(xy, p, "CeO2")
    assert len(calls) == 1  # and nothing kept between calls: the core holds no state
    decode_counts(xy, p, "CeO2")
    assert len(calls) == 2
    np.testing.assert_array_equal(handed["probabilities"], fresh["probabilities"])
    with pytest.raises(ValueError, match="indices for"):
        decode_counts(
            xy, p, "CeO2", indexed=tuple(v[:3] if i < 2 else v for i, v in enumerate(indexed[chords.indexing_key(xy)]))
        )


def _defocus_patches(n_structures: int = 40, per: int = 3, columns: int = 12, seed: int = 0) -> dict:
    """Patches whose blob width reads the defocus (a toy of the physics: a column's contrast shape)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-6:7, -6:7]
    out = {k: [] for k in ("patch", "count", "conditions", "dose", "structure", "store")}
    for s in range(n_structures):
        for _ in range(per):
            df = rng.uniform(-110, 10)
            width = 1.2 + (df + 110) / 60  # 1.2 .. 3.2 px
            count = rng.integers(1, 9, columns)
            blob = np.exp(-(xx**2 + yy**2) / (2 * width**2))
            patch = 1 + 0.1 * count[:, None, None] * blob[None] + rng.normal(0, 0.05, (columns, 13, 13))
            out["patch"].append(patch.astype(np.float16))
            out["count"].append(count)
            out["conditions"].append(np.tile([df, -9e4, 5e7, 30.0, 30.0, 0.0], (columns, 1)).astype(np.float32))
            out["dose"].append(np.full(columns, np.inf, np.float32))
            out["structure"].append(np.full(columns, s))
            out["store"].append(np.zeros(columns, np.int16))
    return {k: np.concatenate(v) for k, v in out.items()}


def test_a_defocus_estimator_trains_pools_its_columns_and_weighs_the_counts(tmp_path, tiny_counter):
    data = _defocus_patches()
    path = tmp_path / "defocus.pt"
    cfg = counter_task.CounterTrainConfig(steps=150, batch_size=128, lr=1e-2, validate_every=150, checkpoint_every=1e9)
    with pytest.raises(ValueError, match="n_classes=13"):
        counter_task.train_counter(
            data, path, model_config=CounterConfig(width=4, hidden=8), config=cfg, target="defocus"
        )
    with pytest.raises(ValueError, match="target"):
        counter_task.train_counter(data, path, config=cfg, target="thickness")
    model = CounterConfig(width=6, hidden=16, n_classes=len(counting.DEFOCUS_BINS))
    trained = counter_task.train_counter(
        data,
        path,
        model_config=model,
        config=cfg,
        target="defocus",
        progress=False,
        held_out=0.25,
        metadata={"material": "CeO2", "zone_axis": [1, 1, 0]},
    )
    # fine-tuning starts from the trained weights (and refuses another architecture)
    tuned = counter_task.train_counter(
        data,
        tmp_path / "tuned.pt",
        replace(cfg, steps=1, lr=1e-6),
        model_config=model,
        target="defocus",
        init=path,
        progress=False,
        held_out=0.25,
    )
    assert len(tuned.history) == 1 and tuned.weights.exists()
    assert tuned.validation["val_exact"] >= trained.validation["val_exact"] - 0.1  # not a fresh start
    with pytest.raises(ValueError, match="architecture"):
        counter_task.train_counter(
            data,
            tmp_path / "bad.pt",
            cfg,
            model_config=CounterConfig(width=4, hidden=8, n_classes=13),
            target="defocus",
            init=path,
            progress=False,
        )
    result = counter_task.calibrate_pooling(data, path, seed=cfg.seed, held_out=0.25)
    assert result["rmse"] < 25.0, result  # the prior alone: 35 Å
    estimator = counting.load_counter(path)
    assert estimator.target == "defocus" and estimator.pooling == result["pooling"]
    # a frame of columns at one defocus: the pooled estimate is near it and says how sure it is
    frame = np.ones((64, 64), np.float32)
    yy, xx = np.mgrid[0:64, 0:64]
    rows, cols = np.meshgrid(np.arange(10, 60, 12.0), np.arange(10, 60, 12.0))
    for r, c in zip(rows.ravel(), cols.ravel()):
        frame += 0.5 * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * (1.2 + 80 / 60) ** 2 * 4))  # -30 Å, 0.32/0.16 px
    est = counting.estimate_defocus(frame, rows.ravel(), cols.ravel(), sampling=0.16, estimator=estimator)
    assert est["n"] == rows.size and est["std"] > 0 and abs(est["weights"].sum() - 1) < 1e-9
    with pytest.raises(ValueError, match="defocus estimator"):
        counting.estimate_defocus(frame, [32.0], [32.0], sampling=0.16, estimator=counting.load_counter(tiny_counter))
    counter = counting.load_counter(tiny_counter)
    one_bin = np.eye(len(counting.DEFOCUS_BINS))[3]
    p = counting.marginal_probabilities(frame, [32.0], [32.0], sampling=0.16, counter=counter, weights=one_bin)
    q = counting.count_probabilities(
        frame,
        [32.0],
        [32.0],
        sampling=0.16,
        counter=counter,
        conditions=counting.condition_vector({"defocus": counting.DEFOCUS_BINS[3]}),
    )
    np.testing.assert_allclose(p, q, atol=1e-6)


def test_pooled_defocus_sharpens_with_columns_and_refuses_the_wrong_shape():
    p = np.full((4, len(counting.DEFOCUS_BINS)), 0.05)
    p[:, 4] = 0.4
    few, many = counting.pool_defocus(p[:1]), counting.pool_defocus(np.repeat(p, 25, axis=0))
    assert many["std"] < few["std"] and round(many["defocus"]) == round(counting.DEFOCUS_BINS[4])
    assert counting.pool_defocus(p[:0])["std"] > 30  # no columns: the prior
    with pytest.raises(ValueError, match="13"):
        counting.pool_defocus(np.ones((3, 5)))


def test_recount_reads_the_defocus_from_the_frame_where_none_is_given():
    from atomtools.columns.retrieval import recount
    from atomtools.core import tables

    counter, estimator = counting.load_counter("pretrained"), counting.load_counter(counting.PRETRAINED_DEFOCUS)
    assert estimator.target == "defocus" and estimator.pooling is not None
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    rows, cols = np.meshgrid(np.arange(16, 120, 24.0), np.arange(16, 120, 21.0))
    frame = np.ones((128, 128))
    for r, c in zip(rows.ravel(), cols.ravel()):
        frame -= 0.3 * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 8.0)
    frame = rng.poisson(frame * 200) / 200.0
    xy = np.column_stack([cols.ravel(), rows.ravel()]) * 0.16
    n = len(xy)
    table = tables.new_table(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "element": ["Ce"] * n,
            "channel": np.zeros(n, int),
            "count": np.ones(n, int),
            "confidence": np.ones(n),
            "p_column": np.ones(n),
        },
        kind="predicted",
        sampling=0.16,
    )
    known = {"Cs": -9e4, "C5": 5e7, "focal_spread": 30.0, "aperture": 30.0}
    out, info = recount(
        table, frame, sampling=0.16, counter=counter, material=None, optics=known, defocus_estimator=estimator
    )
    est = info["defocus"]
    assert -110 <= est["defocus"] <= 10 and est["std"] > 0 and est["n"] == len(xy)
    assert np.allclose(info["probabilities"].sum(axis=1), 1, atol=1e-4)
    given, info_given = recount(
        table,
        frame,
        sampling=0.16,
        counter=counter,
        material=None,
        optics={**known, "defocus": -50.0},
        defocus_estimator=estimator,
    )
    assert info_given["defocus"] is None  # a given defocus is trusted, not estimated
    assert (out["count_low"] <= out["count"]).all() and (out["count"] <= out["count_high"]).all()


def test_a_counter_warns_at_another_high_tension():
    from atomtools.columns.domain import OutOfDomainWarning
    from atomtools.columns.retrieval import recount
    from atomtools.core import tables

    table = tables.new_table(
        {
            "x": [3.2],
            "y": [3.2],
            "element": ["Ce"],
            "channel": [0],
            "count": [1],
            "confidence": [1.0],
            "p_column": [1.0],
        },
        kind="predicted",
        sampling=0.16,
    )
    frame = np.ones((40, 40))
    with pytest.warns(OutOfDomainWarning, match="trained at 300 kV; at 200 kV"):
        recount(table, frame, sampling=0.16, counter=counting.load_counter(), material=None, optics={"energy": 200e3})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        recount(table, frame, sampling=0.16, counter=counting.load_counter(), material=None, optics={"energy": 300e3})


def _tilt_patches(n_structures: int = 40, per: int = 3, columns: int = 12, seed: int = 0) -> dict:
    """Patches whose blob elongation reads the mistilt (a toy of the physics: a tilted column smears along one axis)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-6:7, -6:7]
    out = {k: [] for k in ("patch", "count", "conditions", "dose", "structure", "store")}
    for s in range(n_structures):
        tilt = rng.uniform(0, 3)
        for _ in range(per):
            count = rng.integers(1, 9, columns)
            blob = np.exp(-(xx**2) / (2 * (1.0 + tilt) ** 2) - yy**2 / 2.0)
            patch = 1 + 0.1 * count[:, None, None] * blob[None] + rng.normal(0, 0.05, (columns, 13, 13))
            out["patch"].append(patch.astype(np.float16))
            out["count"].append(count)
            out["conditions"].append(
                np.tile([rng.uniform(-110, 10), -9e4, 5e7, 30.0, 30.0, tilt], (columns, 1)).astype(np.float32)
            )
            out["dose"].append(np.full(columns, np.inf, np.float32))
            out["structure"].append(np.full(columns, s))
            out["store"].append(np.zeros(columns, np.int16))
    return {k: np.concatenate(v) for k, v in out.items()}


def test_a_mistilt_estimator_trains_pools_its_columns_and_weighs_the_counts(tmp_path, tiny_counter):
    data = _tilt_patches()
    path = tmp_path / "tilt.pt"
    cfg = counter_task.CounterTrainConfig(steps=150, batch_size=128, lr=1e-2, validate_every=150, checkpoint_every=1e9)
    with pytest.raises(ValueError, match="n_classes=9"):
        counter_task.train_counter(data, path, model_config=CounterConfig(width=4, hidden=8), config=cfg, target="tilt")
    model = CounterConfig(width=6, hidden=16, n_classes=len(counting.TILT_BINS))
    counter_task.train_counter(
        data,
        path,
        model_config=model,
        config=cfg,
        target="tilt",
        progress=False,
        held_out=0.25,
        metadata={"material": "CeO2", "zone_axis": [1, 1, 0]},
    )
    result = counter_task.calibrate_pooling(data, path, seed=cfg.seed, held_out=0.25)
    assert result["rmse"] < 0.6, result  # the prior alone: 0.87 degrees
    estimator = counting.load_counter(path)
    assert estimator.target == "tilt" and estimator.pooling == result["pooling"]
    # columns smeared as at 2 degrees: the pooled estimate is high and says how sure it is
    frame = np.ones((64, 64), np.float32)
    yy, xx = np.mgrid[0:64, 0:64]
    rows, cols = np.meshgrid(np.arange(10, 60, 12.0), np.arange(10, 60, 12.0))
    for r, c in zip(rows.ravel(), cols.ravel()):  # widths in patch pixels (0.32 Å) x 2 at 0.16 Å
        frame += 0.5 * np.exp(-((xx - c) ** 2) / (2 * (2 * 3.0) ** 2) - (yy - r) ** 2 / (2 * 2.0**2))
    est = counting.estimate_condition(frame, rows.ravel(), cols.ravel(), sampling=0.16, estimator=estimator)
    assert est["name"] == "tilt" and est["n"] == rows.size and est["std"] > 0 and est["tilt"] > 1.0, est
    assert abs(est["weights"].sum() - 1) < 1e-9
    with pytest.raises(ValueError, match="defocus estimator"):
        counting.estimate_defocus(frame, [32.0], [32.0], sampling=0.16, estimator=estimator)
    with pytest.raises(ValueError, match="mistilt estimator"):
        counting.estimate_condition(frame, [32.0], [32.0], sampling=0.16, estimator=counting.load_counter(tiny_counter))
    # the counts averaged over a one-bin posterior are the counter's told that mistilt
    counter = counting.load_counter(tiny_counter)
    one_bin = np.eye(len(counting.TILT_BINS))[5]
    p = counting.marginal_probabilities(
        frame, [32.0], [32.0], sampling=0.16, counter=counter, weights=one_bin, name="tilt", tilt=0.0
    )
    q = counting.count_probabilities(
        frame,
        [32.0],
        [32.0],
        sampling=0.16,
        counter=counter,
        conditions=counting.condition_vector(tilt=counting.TILT_BINS[5]),
    )
    np.testing.assert_allclose(p, q, atol=1e-6)
    with pytest.raises(ValueError, match="no bins"):
        counting.marginal_probabilities(
            frame, [32.0], [32.0], sampling=0.16, counter=counter, weights=one_bin, name="Cs"
        )


def test_condition_bins_pool_and_refuse_what_they_do_not_know():
    assert counting.condition_classes("tilt", [0.0, 0.3, 1.2, 9.0]).tolist() == [0, 1, 4, 8]
    np.testing.assert_array_equal(counting.condition_classes("defocus", [-50.0]), counting.defocus_classes([-50.0]))
    p = np.full((30, len(counting.TILT_BINS)), 0.05)
    p[:, 6] = 0.6
    out = counting.pool_condition(p, name="tilt")
    assert abs(out["tilt"] - 2.0) < 0.05 and out["std"] < 0.1
    with pytest.raises(ValueError, match="no bins for 'Cs'"):
        counting.condition_classes("Cs", [1.0])
    with pytest.raises(ValueError, match="no bins"):
        counting.pool_condition(p, name="thickness")
    with pytest.raises(ValueError, match=r"\(N, 9\)"):
        counting.pool_condition(np.ones((3, 5)), name="tilt")


def test_recount_reads_each_particles_mistilt_where_none_is_given():
    from atomtools.columns.retrieval import recount
    from atomtools.core import tables

    counter, estimator = counting.load_counter("pretrained"), counting.load_counter(counting.PRETRAINED_TILT)
    assert estimator.target == "tilt" and estimator.pooling is not None
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:320]
    # two particles 25 Å apart: each of 20 columns on a 3.8 Å grid
    centres = [(16 + 24 * i, 16 + 24 * j + 160 * k) for k in range(2) for i in range(5) for j in range(4)]
    frame = np.ones((160, 320))
    for r, c in centres:
        frame -= 0.3 * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 8.0)
    frame = rng.poisson(frame * 200) / 200.0
    rows, cols = np.array(centres, float).T
    n = len(rows)
    table = tables.new_table(
        {
            "x": cols * 0.16,
            "y": rows * 0.16,
            "element": ["Ce"] * n,
            "channel": np.zeros(n, int),
            "count": np.ones(n, int),
            "confidence": np.ones(n),
            "p_column": np.ones(n),
        },
        kind="predicted",
        sampling=0.16,
    )
    optics = {"defocus": -50.0, "Cs": -9e4}
    out, info = recount(
        table, frame, sampling=0.16, counter=counter, material=material("CeO2"), optics=optics, tilt_estimator=estimator
    )
    tilt = info["tilt"]
    assert tilt["tilt"].shape == (n,) and (tilt["std"] > 0).all() and ((tilt["tilt"] >= 0) & (tilt["tilt"] <= 3)).all()
    # one estimate per particle: its own columns pooled
    per_column = counting.count_probabilities(
        frame, rows, cols, sampling=0.16, counter=estimator, conditions=counting.condition_vector(optics)
    )
    for half in (slice(0, 20), slice(20, 40)):
        own = counting.pool_condition(per_column[half], name="tilt", pooling=estimator.pooling)
        np.testing.assert_allclose(tilt["tilt"][half], own["tilt"], atol=1e-6)
    # and the counter is told it: the same probabilities as a counter given that mistilt
    told = counting.count_probabilities(
        frame[:, :],
        rows[:20],
        cols[:20],
        sampling=0.16,
        counter=counter,
        conditions=counting.condition_vector(optics, tilt=float(tilt["tilt"][0])),
    )
    _, info_told = recount(
        table.iloc[:20],
        frame,
        sampling=0.16,
        counter=counter,
        material=None,
        optics=optics,
        tilt=float(tilt["tilt"][0]),
        decode=False,
    )
    np.testing.assert_allclose(info_told["probabilities"], told, atol=1e-6)
    assert info_told["tilt"] is None  # a given mistilt is trusted, not estimated

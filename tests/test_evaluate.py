"""The evaluation engine: out-of-range test sets, and network and baseline scored alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from atomtools import simulation as simulate
from atomtools.columns import evaluation as evaluate
from atomtools.models import UNet, UNetConfig
from atomtools.storage import open_dataset

SMALL = dict(
    shape=(96, 96), sampling=0.16, size=(8.0, 12.0), images_per_structure=2, thickness=(1, 4), support_probability=0.0
)


def test_test_ranges_reach_beyond_the_training_ranges():
    train = simulate.SimulationConfig()
    test = evaluate.out_of_range(train)
    assert test.size[0] < train.size[0] and test.size[1] > train.size[1]
    assert test.defocus[0] < train.defocus[0] and test.defocus[1] > train.defocus[1]
    assert test.tilt > train.tilt and test.focal_spread[1] > train.focal_spread[1]
    assert test.Cs[0] < train.Cs[0] and test.Cs[1] > train.Cs[1]


def test_network_and_baseline_are_scored_on_the_same_frames(tmp_path):
    config = simulate.SimulationConfig(**SMALL)
    ref = open_dataset(
        simulate.make_dataset(
            tmp_path / "ref.zarr", config, n_structures=2, seed=0, scheduler="synchronous", progress=False
        )
    )
    test = open_dataset(
        simulate.make_dataset(
            tmp_path / "test.zarr",
            evaluate.out_of_range(config),
            n_structures=1,
            seed=1,
            scheduler="synchronous",
            progress=False,
        )
    )
    torch.manual_seed(0)
    model = (
        UNet(UNetConfig(width=4, depth=2)).eval(),
        {"sampling": 0.16, "temperature": [1.0, 1.0], "channels": [["Ce"], ["O"]]},
    )
    doses = [500.0, 5000.0]
    cals = evaluate.calibrate_baseline(ref, doses=doses, n_images=4, seed=0)
    result = evaluate.evaluate(test, model=model, doses=doses, calibrations=cals, seed=1, progress=False)
    rows = result["rows"]
    assert len(rows) == len(test) * len(doses) * 2
    assert {r["method"] for r in rows} == {"network", "baseline"}
    summary = evaluate.summary_by(rows)
    assert set(summary.dose) == set(doses) and np.all(summary.f1.between(0, 1))
    assert len(result["examples"]) == len(test) * len(doses)
    assert all(len(c) == len(t) for c, t in result["pixels"].values())
    columns = evaluate.column_level(rows)
    assert set(columns.columns) >= {"method", "dose", "true", "pred", "confidence"}


def test_a_counter_trains_on_patches_and_counts_in_the_evaluation(tmp_path):
    from atomtools.columns import counter_task, counting
    from atomtools.models import CounterConfig

    config = simulate.SimulationConfig(**SMALL)
    store = open_dataset(
        simulate.make_dataset(
            tmp_path / "s.zarr", config, n_structures=2, seed=0, scheduler="synchronous", progress=False
        )
    )
    data = counter_task.patch_dataset(store, seed=0, progress=False)
    assert data["patch"].shape[1:] == (13, 13) and len(data["count"]) == len(data["conditions"]) > 0
    assert set(np.isinf(data["dose"])) == {True, False}  # noise-free and noisy versions of each frame
    out = tmp_path / "counter.pt"
    result = counter_task.train_counter(
        data,
        out,
        model_config=CounterConfig(width=4, hidden=8),
        config=counter_task.CounterTrainConfig(steps=4, batch_size=16, validate_every=2),
        held_out=0.5,
        progress=False,
        metadata={"material": "CeO2", "zone_axis": [1, 1, 0]},
    )
    assert out.exists() and out.with_suffix(".ckpt").exists() and "val_exact" in result.validation
    counter = counting.load_counter(out)
    assert 0 < counter.level(0.9) <= 1 and counter.level(0.6) <= counter.level(0.95)
    torch.manual_seed(0)
    model = (
        UNet(UNetConfig(width=4, depth=2)).eval(),
        {"sampling": 0.16, "temperature": [1.0, 1.0], "channels": [["Ce"], ["O"]]},
    )
    rows = evaluate.evaluate(store, model=model, doses=[1000.0], counter=counter, known="optics", progress=False)[
        "rows"
    ]
    columns = evaluate.column_level(rows)
    assert {"low", "high", "tilt"} <= set(columns.columns)
    assert (columns.low <= columns.pred).all() and (columns.pred <= columns.high).all()


def test_count_metrics_record_the_scores_and_their_headline():
    """The counting section of 04's metrics: scores by method and dose, and the README's headline from them."""
    from atomtools.columns import report

    def summary(offset):
        rows = [
            {"method": m, "dose": d, **{k: 0.5 + offset + (0.1 if m == "network" else 0.0) for k in report.SCORES}}
            for m in ("network", "baseline")
            for d in (100.0, 1000.0)
        ]
        return pd.DataFrame(rows).assign(mean_error=0.2)

    compact = pd.DataFrame(
        [
            {"setting": s, "dose": "1000 e/Å²", **{k: 0.7 for k in report.COMPACT_SCORES}}
            for s in ("U-Net alone", "counter, optics given, decoded")
        ]
    )
    tilt = pd.DataFrame([{"setting": "U-Net alone", "tilt": 0.5, "exact": 0.6, "within_one": 0.9, "mean_error": 0.1}])
    thickness = pd.DataFrame({("network", "1000"): [0.9, 0.8], ("baseline", "1000"): [0.7, np.nan]}, index=[1, 2])
    curve = pd.DataFrame({"confidence": [0.5, 0.9], "accuracy": [0.4, 0.95]})
    ceiling = pd.DataFrame([{"method": "network", "dose": np.inf, "f1": 1.0, "exact": 0.9, "within_one": 1.0}])
    out = report.count_metrics(
        summary=summary(0.0),
        independent=summary(-0.2),
        compact=compact,
        compact_tilt=tilt,
        compact_counts=pd.DataFrame({"true": [3], "exact": [0.8]}),
        eces={"pixels": 0.01, "columns": 0.02},
        curves={"pixels": curve, "columns": curve},
        thickness=thickness,
        thickness_dose=1000.0,
        ceiling=ceiling,
        recovered_3d=0.95,
        n_test_images=4,
        reference_dose=1000.0,
    )
    assert out["network"]["1000"]["exact"] == pytest.approx(0.6) and out["baseline"]["100"]["f1"] == pytest.approx(0.5)
    assert out["network_exact_at_max_dose"] == pytest.approx(0.6)
    assert out["accuracy_vs_thickness"] == {"network 1000": {"1": 0.9, "2": 0.8}, "baseline 1000": {"1": 0.7}}
    assert out["headline"]["independent: network exact @1000 e/Å²"] == pytest.approx(0.4)
    assert out["headline"]["compact, columns of 3+ atoms: U-Net alone exact @1000 e/Å²"] == pytest.approx(0.7)
    assert out["compact_by_tilt"]["U-Net alone @0.5°"]["exact"] == pytest.approx(0.6)
    assert out["ceiling_noise_free"]["network exact"] == pytest.approx(0.9)
    import json

    json.dumps(out)  # JSON-able as metrics.json needs

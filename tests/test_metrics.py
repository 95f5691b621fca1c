"""Scores: matching, detection and counting, calibration, 3D recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomtools import metrics
from atomtools.labels import column_table
from atomtools.reconstruct import to_atoms
from atomtools.structures import ParticleSpec, build


def test_matching_is_one_to_one_and_prefers_the_closest():
    pred = np.array([[0.0, 0.0], [0.3, 0.0]])
    true = np.array([[0.25, 0.0]])
    ip, it = metrics.match_columns(pred, true, radius=0.5)
    assert ip.tolist() == [1] and it.tolist() == [0]
    assert [len(a) for a in metrics.match_columns(np.zeros((0, 2)), true, radius=0.5)] == [0, 0]


def test_scores_of_a_perfect_and_a_wrong_prediction():
    truth = pd.DataFrame({"x": [0.0, 4.0, 8.0], "y": [0.0, 0.0, 0.0], "channel": [0, 0, 0], "count": [3, 5, 7]})
    perfect = metrics.column_scores(truth, truth)
    assert (perfect["f1"], perfect["exact"], perfect["mae"], perfect["recovered_fraction"]) == (1.0, 1.0, 0.0, 1.0)
    off = truth.assign(count=[4, 5, 9], x=truth.x + 0.2)
    s = metrics.column_scores(off, truth)
    assert s["exact"] == pytest.approx(1 / 3) and s["within_one"] == pytest.approx(2 / 3) and s["mae"] == pytest.approx(1.0)
    assert s["recovered_fraction"] == pytest.approx((3 + 5 + 7) / 15)
    pooled = metrics.summarize([perfect, s])
    assert pooled["n_columns"] == 6 and pooled["exact"] == pytest.approx(4 / 6)


def test_ece_is_zero_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 200_000)
    calibrated = rng.uniform(0, 1, conf.size) < conf
    assert metrics.expected_calibration_error(conf, calibrated) < 0.01
    overconfident = rng.uniform(0, 1, conf.size) < conf * 0.5
    assert metrics.expected_calibration_error(conf, overconfident) > 0.2


def test_a_model_from_the_true_counts_recovers_every_atom():
    atoms = build(ParticleSpec(profile="stepped", size=22.0, n_min=2, n_max=6, rotation=25.0), extent=(40.0, 40.0))
    model = to_atoms(column_table(atoms, sampling=0.1), surface="bottom")
    score = metrics.atoms_recovered(model, atoms, tolerance=0.2)
    assert score["fraction"] == 1.0 and score["model"] == score["true"]
    # one atom too few per column loses exactly that many atoms
    table = column_table(atoms, sampling=0.1)
    short = to_atoms(table.assign(count=table["count"] - 1), surface="bottom")
    assert metrics.atoms_recovered(short, atoms, tolerance=0.2)["recovered"] == len(atoms) - len(table)

"""Scores: matching, detection and counting, calibration, 3D recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomtools.columns.reconstruct import to_atoms
from atomtools.core import metrics
from atomtools.core.labels import column_table
from atomtools.core.structures import ParticleSpec, build


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
    assert (
        s["exact"] == pytest.approx(1 / 3)
        and s["within_one"] == pytest.approx(2 / 3)
        and s["mae"] == pytest.approx(1.0)
    )
    assert s["recovered_fraction"] == pytest.approx((3 + 5 + 7) / 15)
    assert s["atom_precision"] == pytest.approx(15 / 18)  # 3 atoms too many
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
    table = column_table(atoms, sampling=0.1)
    ce = lambda a: a[a.numbers == 58]  # noqa: E731
    # which staggered column set starts on the flat base cannot be told from the projection: one choice is exact
    scores = [
        metrics.atoms_recovered(ce(to_atoms(table, surface="bottom", base_parity=p)), ce(atoms), tolerance=0.2)
        for p in (0, 1)
    ]
    score = max(scores, key=lambda s: s["fraction"])
    assert score["fraction"] == 1.0 and score["model"] == score["true"]
    assert min(s["fraction"] for s in scores) < 1.0
    # O columns at the surface may start off the cation base (O kept where bonded to 3 Ce): nearly all in place
    best = int(np.argmax([s["fraction"] for s in scores]))
    assert (
        metrics.atoms_recovered(to_atoms(table, surface="bottom", base_parity=best), atoms, tolerance=0.2)["fraction"]
        > 0.95
    )
    # one atom too few per column loses exactly that many atoms
    ce_table = table[table.channel == 0]
    short = to_atoms(ce_table.assign(count=ce_table["count"] - 1), surface="bottom", base_parity=best)
    assert metrics.atoms_recovered(short, ce(atoms), tolerance=0.2)["recovered"] == len(ce(atoms)) - len(ce_table)

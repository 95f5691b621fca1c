"""Ground truth: column table, label maps, smoothed targets, loss weights."""

from __future__ import annotations

import numpy as np
import pytest

from atomtools.core import labels
from atomtools.core.structures import ParticleSpec, build

SAMPLING = 0.1


@pytest.fixture(scope="module")
def model():
    return build(ParticleSpec(profile="stepped", size=20.0, n_min=2, n_max=6, support=8.0, seed=2), extent=(30.0, 30.0))


def test_table_counts_every_particle_atom_once(model):
    table = labels.column_table(model, sampling=SAMPLING)
    particle = model.arrays["column"] >= 0
    assert table["count"].sum() == particle.sum()
    assert set(table.element) == {"Ce", "O"}
    assert np.allclose(table.row, table.y / SAMPLING) and np.allclose(table.col, table.x / SAMPLING)
    assert np.all(table.z_max >= table.z_min)


def test_label_maps_put_each_count_on_its_column(model):
    shape = (300, 300)
    gt = labels.ground_truth(model, shape=shape, sampling=SAMPLING, n_classes=13)
    table = gt["table"]
    for _, c in table.sample(20, random_state=0).iterrows():
        i, j = int(round(c.row)), int(round(c.col))
        assert gt["labels"][c.channel, i, j] == min(c["count"], 12)
    disk = np.pi * (0.6 / SAMPLING) ** 2
    assert gt["labels"][0].astype(bool).sum() == pytest.approx(disk * (table.channel == 0).sum(), rel=0.15)
    assert gt["labels"][:, 0, 0].tolist() == [0, 0]


def test_soft_targets_are_probabilities_smoothed_toward_the_background(model):
    gt = labels.ground_truth(model, shape=(300, 300), sampling=SAMPLING, n_classes=13)
    t = labels.soft_targets(gt["distance"], gt["nearest"], radius=0.6, edge=0.1, n_classes=13)
    assert t.shape == (2, 13, 300, 300)
    assert np.allclose(t.sum(axis=1), 1.0, atol=1e-6)
    c = gt["table"].iloc[0]
    i, j = int(round(c.row)), int(round(c.col))
    d = gt["distance"][c.channel, i, j]
    assert t[c.channel, min(c["count"], 12), i, j] == pytest.approx(1 / (1 + np.exp((d - 0.6) / 0.1)), rel=1e-5)
    # the most probable target class is the hard label everywhere but on the rim itself (a tie)
    off_rim = np.abs(gt["distance"] - 0.6) > 1e-3
    assert np.array_equal(t.argmax(axis=1)[off_rim], gt["labels"][off_rim])
    far = gt["distance"][0] > 0.6 + 8 * 0.1
    assert np.all(t[0, 0][far] == 1.0)


def test_weights_favour_columns_and_the_gaps_between_neighbours(model):
    gt = labels.ground_truth(model, shape=(300, 300), sampling=SAMPLING, n_classes=13)
    w = gt["weights"]
    assert w.min() >= 1.0 and w[0, 0] == pytest.approx(1.0, abs=1e-6)
    table = gt["table"]
    ce = table[table.channel == 0].iloc[len(table) // 4]
    o = table[table.channel == 1]
    nearest_o = o.iloc[np.argmin(np.hypot(o.x - ce.x, o.y - ce.y))]
    mid = ((ce.row + nearest_o.row) / 2, (ce.col + nearest_o.col) / 2)
    w_mid = w[int(round(mid[0])), int(round(mid[1]))]
    w_far = w[int(round(ce.row)) + 25, int(round(ce.col)) + 25] if ce.row < 270 else 1.0
    assert w_mid > 2.0 > w_far - 1e-6


def test_loss_weights_of_an_empty_table_are_ones():
    import pandas as pd

    empty = pd.DataFrame({"x": [], "y": []})
    assert np.all(labels.loss_weights(empty, shape=(4, 4), sampling=0.1, radius=0.6) == 1)


def test_model_without_columns_is_refused():
    from ase import Atoms

    with pytest.raises(ValueError, match="no 'column' array"):
        labels.column_table(Atoms("C"), sampling=0.1)

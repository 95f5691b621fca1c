"""3D models from column tables: lattice stagger, surface assumptions, files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase.io import read

from atomtools.columns.reconstruct import column_parity, to_atoms, write_model
from atomtools.core.labels import column_table
from atomtools.core.structures import ParticleSpec, build


def test_stagger_puts_atoms_back_on_their_lattice_sites():
    """From the exact table of a flat slab, every Ce column comes back on its lattice sites (one z shift)."""
    atoms = build(
        ParticleSpec(profile="flat", size=20.0, n_min=4, n_max=4, rotation=40.0, shift=(0.7, -0.3)), extent=(36.0, 36.0)
    )
    table = column_table(atoms, sampling=0.1)
    model = to_atoms(table, surface="bottom")
    assert len(model) == len(atoms)
    period = 5.411 / np.sqrt(2)
    first_true = table.z_min.to_numpy()
    first_model = np.array([model.positions[model.arrays["column"] == i, 2].min() for i in range(len(table))])
    offset = (first_true - first_model) - (first_true - first_model)[0]
    ce = table.channel.to_numpy() == 0
    assert np.allclose(offset[ce], 0.0, atol=1e-6), "cation columns: same sublattice heights as the crystal"
    # anion columns sit half a repeat from their cation neighbour; at the surface some start a period off the base
    assert np.allclose(np.mod(offset[~ce] / period + 0.25, 1.0), 0.25, atol=1e-6)
    assert np.mean(np.isclose(offset[~ce], 0.0, atol=1e-6)) > 0.8
    flat = to_atoms(column_table(atoms, sampling=0.1), surface="bottom", stagger=False)
    assert len(np.unique(np.round(flat.positions[flat.numbers == 58, 2], 3))) == 4  # no stagger: 4 planes, not 8


def test_parity_alternates_between_projected_nearest_neighbours():
    a = 5.411
    xy = np.array(
        [[0, 0], [a / np.sqrt(8), a / 2], [a / np.sqrt(2), 0], [a / np.sqrt(8) + a / np.sqrt(2), a / 2], [0, a]]
    )
    assert column_parity(xy, nn_distance=a * np.sqrt(3 / 8)).tolist() == [0, 1, 0, 1, 0]


def test_centre_assumption_is_symmetric_about_the_mid_plane():
    t = pd.DataFrame({"x": [0.0, 10.0], "y": [0.0, 0.0], "channel": [0, 0], "count": [3, 7]})
    m = to_atoms(t, surface="center", stagger=False)
    z = [m.positions[m.arrays["column"] == c, 2] for c in (0, 1)]
    assert np.mean(z[0]) == pytest.approx(np.mean(z[1]))
    assert "mid-plane" in m.info["assumption"]


def test_models_are_written_and_read_back(tmp_path):
    t = pd.DataFrame({"x": [0.0, 3.3], "y": [0.0, 0.0], "channel": [0, 1], "count": [2, 2]})
    m = to_atoms(t)
    for name in ("m.xyz", "m.cif"):
        back = read(write_model(m, tmp_path / name))
        assert len(back) == len(m) and sorted(back.get_chemical_symbols()) == sorted(m.get_chemical_symbols())
    assert not list(tmp_path.glob("*partial*"))
    with pytest.raises(ValueError, match="empty"):
        to_atoms(t.iloc[:0])
    with pytest.raises(ValueError, match="surface"):
        to_atoms(t, surface="top")

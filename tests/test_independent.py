"""The independent test set: other builder, other image path, truth counted from the atoms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atomtools.columns import evaluation
from atomtools.models import UNet, UNetConfig
from atomtools.simulation import IndependentConfig, independent_structure, make_independent_set
from atomtools.storage import INDEPENDENT, open_dataset

SMALL = dict(shape=(128, 128), particles={"radius": (5.0, 6.0), "max_thickness": (3, 6)})


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_every_principal_atom_is_in_exactly_one_column(index):
    result = independent_structure(index, IndependentConfig(**SMALL), 5)
    n_ce = int(np.sum(result["numbers"] == 58))
    columns = result["columns"]  # (column, x, y, Z, channel, count, z_min, z_max)
    assert columns[columns[:, 3] == 58][:, 5].sum() == n_ce and n_ce > 0
    image = result["clean"][0]
    assert image.shape == (128, 128) and 0.85 < np.median(image) < 1.15  # about 1 in vacuum
    assert result["images"][0]["builder"] == "ase-cut"


def test_wulff_shapes_of_fcc_metals_by_ase_and_of_other_crystals_by_facets():
    wulff = {"shape": (128, 128), "particles": {"shapes": ("wulff",), "radius": (5.0, 6.0)}}
    result = independent_structure(0, IndependentConfig(material="Pt", **wulff), 0)
    assert result["images"][0]["builder"] == "ase-wulff" and set(np.unique(result["numbers"])) == {78}
    from atomtools.core.materials import material
    from atomtools.simulation.independent import _cut

    ceo2 = _cut(material("CeO2"), np.random.default_rng(0), "wulff", 8, 12.0)
    assert {"Ce", "O"} == set(ceo2.get_chemical_symbols())
    with pytest.raises(ValueError, match="expected some of"):
        IndependentConfig(particles={"shapes": ("cube",)})


def test_a_wedge_reaches_its_thickest_column():
    from atomtools.core.materials import material
    from atomtools.simulation.independent import _cut, _truth

    mat = material("CeO2")
    wedge = _cut(mat, np.random.default_rng(0), "wedge", 24, 9.0)
    _, table = _truth(wedge, mat, 0.1, wedge.positions[:, :2])
    assert table[table.channel == 0]["count"].max() >= 22  # the block is as thick as the wedge


def test_the_set_is_stored_resumable_and_scored_like_any_test_set(tmp_path):
    config = IndependentConfig(**SMALL)
    path = make_independent_set(
        tmp_path / "i.zarr", config, n_structures=2, seed=5, scheduler="synchronous", progress=False
    )
    again = make_independent_set(
        tmp_path / "i.zarr", config, n_structures=2, seed=5, scheduler="synchronous", progress=False
    )
    ds = open_dataset(again)
    assert path == again and ds.attrs["format"] == INDEPENDENT.format and len(ds) == 2
    assert set(ds.params.builder) == {"ase-cut"} and ds.sampling == 0.125
    torch.manual_seed(0)
    model = (
        UNet(UNetConfig(width=4, depth=2)).eval(),
        {"sampling": 0.16, "temperature": [1.0, 1.0], "channels": [["Ce"], ["O"]]},
    )
    result = evaluation.evaluate(ds, model=model, doses=[1000.0], seed=0, progress=False, keep_maps=0)
    assert len(result["rows"]) == 2 and all(0 <= r["f1"] <= 1 for r in result["rows"])

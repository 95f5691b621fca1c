"""Atomic models: lattice, facets, surface profiles, defects, tilt, placement."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from atomtools.core import structures as st
from atomtools.core.labels import column_table
from atomtools.core.materials import Material


def test_fluorite_cell_and_column_period():
    cell = st.ceo2()
    assert cell.get_chemical_formula() == "Ce4O8"
    assert st.column_period(cell, (1, 1, 0)) == pytest.approx(5.411 / np.sqrt(2), abs=1e-9)
    R = st.zone_axis_rotation(cell, (1, 1, 0))
    assert np.allclose(R @ R.T, np.eye(3))
    assert np.allclose(R @ np.array([1, 1, 0]) / np.sqrt(2), [0, 0, 1])


def test_columns_share_projected_positions_and_repeat_along_the_beam():
    sites = st.lattice_sites(st.ceo2(), (1, 1, 0), radius=12.0)
    col = sites.arrays["column"]
    for c in np.unique(col)[:40]:
        xy = sites.positions[col == c, :2]
        assert np.ptp(xy, axis=0).max() < 1e-6
        z = np.sort(sites.positions[col == c, 2])
        if len(z) > 1:
            assert np.allclose(np.diff(z), 5.411 / np.sqrt(2), atol=1e-6)
    # Ce and O never share a column in fluorite [110]
    for c in np.unique(col):
        assert len(set(sites.numbers[col == c])) == 1


def test_particle_is_faceted_and_nearly_stoichiometric():
    p = st.nanoparticle(st.ParticleSpec(size=25.0, truncation=1.155))
    ce = np.sum(p.numbers == 58)
    o = np.sum(p.numbers == 8)
    assert 1.7 < o / ce < 2.0  # O-terminated {111}, slightly reduced like real nanoceria
    # inside the {111} planes at size / 2 (+ the O shell)
    for n in ([1, 1, 1], [1, -1, 1], [-1, -1, -1]):
        normal = st.zone_axis_rotation(st.ceo2()) @ (np.array(n) / np.sqrt(3))
        assert (p.positions[p.numbers == 58] @ normal).max() <= 12.5 + 1e-6


def test_anion_bonds_set_the_surface_oxygen_and_leave_the_cations():
    base = st.ParticleSpec(size=25.0, truncation=1.155)
    poor, plain = st.nanoparticle(base), st.nanoparticle(st.ParticleSpec(size=25.0, truncation=1.155, anion_bonds=2))
    assert np.array_equal(poor.positions[poor.numbers == 58], plain.positions[plain.numbers == 58])
    ratio = np.sum(plain.numbers == 8) / np.sum(plain.numbers == 58)
    assert 2.0 <= ratio < 2.4 > np.sum(poor.numbers == 8) / np.sum(poor.numbers == 58)
    with pytest.raises(ValueError, match="anion_bonds"):
        st.ParticleSpec(anion_bonds=0)
    with pytest.raises(ValueError, match="anion_bonds"):
        st.ParticleRanges(anion_bonds=(3, 2))


def test_anion_bond_ranges_leave_sets_without_them_unchanged():
    draw = [st.ParticleRanges().sample(np.random.default_rng(k)) for k in range(3)]
    fixed = [st.ParticleRanges(anion_bonds=(2, 2)).sample(np.random.default_rng(k)) for k in range(3)]
    assert all(d.anion_bonds is None for d in draw)
    assert [f.anion_bonds for f in fixed] == [2, 2, 2]
    assert [f.seed for f in fixed] == [d.seed for d in draw]  # nothing else moved
    drawn = {st.ParticleRanges(anion_bonds=(2, 3)).sample(np.random.default_rng(k)).anion_bonds for k in range(20)}
    assert drawn == {2, 3}


@pytest.mark.parametrize("kind", ["flat", "stepped", "sawtooth", "wedge"])
def test_surface_profiles_set_the_atoms_per_column(kind):
    spec = st.ParticleSpec(profile=kind, size=28.0, n_min=2, n_max=7, profile_width=6.0)
    table = column_table(st.nanoparticle(spec), sampling=0.1)
    counts = table[table.element == "Ce"]["count"].to_numpy()
    assert counts.min() >= 1 and counts.max() <= 7
    if kind == "flat":
        assert np.all(counts == 7)
    else:
        assert len(np.unique(counts)) >= 3, f"{kind} should give several thicknesses, got {np.unique(counts)}"


def test_thickness_profile_shapes():
    xy = np.column_stack([np.arange(0, 40, 1.0), np.zeros(40)])
    stepped = st.thickness_profile(xy, kind="stepped", n_min=3, n_max=6, width=8.0)
    assert stepped[0] == 3 and stepped[8] == 4 and stepped[16] == 5 and stepped[24] == 6 and stepped[32] == 3
    saw = st.thickness_profile(xy, kind="sawtooth", n_min=1, n_max=5, width=10.0)
    assert saw[0] == 1 and saw[10] == 5 and saw[20] == 1
    wedge = st.thickness_profile(xy, kind="wedge", n_min=2, n_max=9)
    assert wedge[0] == 2 and wedge[-1] == 9 and np.all(np.diff(wedge) >= 0)
    with pytest.raises(ValueError, match="unknown profile kind"):
        st.thickness_profile(xy, kind="bumpy", n_min=1, n_max=2)


def test_vacancies_remove_the_requested_fraction_and_adatoms_add_atoms():
    base = st.nanoparticle(st.ParticleSpec(size=22.0))
    holes = st.nanoparticle(st.ParticleSpec(size=22.0, vacancies={"O": 0.1, "Ce": 0.05}, seed=3))
    n_o, n_ce = np.sum(base.numbers == 8), np.sum(base.numbers == 58)
    assert np.sum(holes.numbers == 8) == n_o - round(0.1 * n_o)
    assert np.sum(holes.numbers == 58) == n_ce - round(0.05 * n_ce)
    extra = st.nanoparticle(st.ParticleSpec(size=22.0, adatoms={"Ce": 5}, seed=3))
    assert np.sum(extra.numbers == 58) == n_ce + 5


def test_same_spec_same_model_and_seed_matters():
    spec = st.ParticleSpec(size=20.0, vacancies={"O": 0.1}, seed=1)
    a, b = st.build(spec, extent=(40.0, 40.0)), st.build(spec, extent=(40.0, 40.0))
    assert np.array_equal(a.positions, b.positions)
    c = st.build(st.ParticleSpec(size=20.0, vacancies={"O": 0.1}, seed=2), extent=(40.0, 40.0))
    assert not np.array_equal(np.sort(a.positions[:, 0]), np.sort(c.positions[:, 0]))


def test_mistilt_keeps_each_column_one_column():
    flat = st.ParticleSpec(profile="flat", size=24.0, n_min=6, n_max=6)
    straight = column_table(st.build(flat, extent=(40.0, 40.0)), sampling=0.1)
    tilted_atoms = st.build(
        st.ParticleSpec(profile="flat", size=24.0, n_min=6, n_max=6, tilt=4.0, tilt_axis=37.0), extent=(40.0, 40.0)
    )
    tilted = column_table(tilted_atoms, sampling=0.1)
    assert len(tilted) == len(straight)
    assert sorted(tilted["count"]) == sorted(straight["count"])
    # a tilted column really is inclined: its atoms spread laterally by ~ length * tan(tilt)
    col = tilted_atoms.arrays["column"]
    c = tilted.loc[tilted["count"].idxmax(), "column"]
    spread = np.ptp(tilted_atoms.positions[col == c, :2], axis=0)
    assert np.hypot(*spread) == pytest.approx(5 * 5.411 / np.sqrt(2) * np.tan(np.deg2rad(4.0)), rel=0.02)


def test_carbon_support_is_below_and_outside_the_columns():
    atoms = st.build(st.ParticleSpec(size=16.0, support=15.0, seed=4), extent=(30.0, 30.0))
    carbon = atoms.numbers == 6
    assert carbon.sum() > 500
    assert np.all(atoms.arrays["column"][carbon] == -1)
    assert atoms.positions[carbon, 2].min() > atoms.positions[~carbon, 2].max()
    # density of amorphous carbon, 2.0 g/cm3 -> 0.1 atoms/Å^3
    assert carbon.sum() / (30 * 30 * 15) == pytest.approx(0.1003, rel=0.03)


def test_model_that_does_not_fit_raises_with_the_numbers():
    with pytest.raises(st.DoesNotFitError, match="does not fit a 20.0 x 20.0 Å field"):
        st.build(st.ParticleSpec(size=30.0), extent=(20.0, 20.0))


def test_other_materials_through_parameters():
    gold = bulk("Au", "fcc", a=4.08, cubic=True)
    p = st.nanoparticle(
        st.ParticleSpec(
            size=16.0, material=Material(name="Au", structure="fcc", symbols=("Au",), a=4.08, zone_axis=(1, 0, 0))
        )
    )
    assert set(p.get_chemical_symbols()) == {"Au"}
    table = column_table(p, sampling=0.1, channels=(("Au",),))
    assert table["count"].max() >= 3
    assert st.column_period(gold, (1, 0, 0)) == pytest.approx(4.08)
    assert st.column_period(gold, (1, 1, 0)) == pytest.approx(4.08 / np.sqrt(2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"profile": "blob"}, "profile"),
        ({"size": -1.0}, "size"),
        ({"vacancies": {"O": 1.5}}, "vacancies"),
        ({"vacancies": {"Xe": 0.1}}, "vacancies"),
        ({"n_min": 5, "n_max": 2}, "n_min"),
    ],
)
def test_bad_specs_are_refused_with_the_parameter_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        st.ParticleSpec(**kwargs)


def test_unknown_element_is_refused():
    with pytest.raises(ValueError, match="unknown element 'Xx'"):
        st.fluorite(("Xx", "O"))

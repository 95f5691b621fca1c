"""The abTEM engine and the dataset: physics checks, determinism, resume, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from atomtools import simulation as simulate
from atomtools import storage as store
from atomtools.core.imaging import Optics
from atomtools.core.labels import column_table
from atomtools.core.structures import ParticleSpec, build
from atomtools.simulation import hrtem
from atomtools.storage import datasets

SMALL = dict(
    shape=(64, 64), sampling=0.2, size=(6.0, 9.0), images_per_structure=2, thickness=(1, 4), support=(5.0, 8.0)
)


def test_fast_image_path_equals_abtems_full_grid_path():
    atoms = build(ParticleSpec(size=14.0, tilt=1.0), extent=(25.6, 25.6))
    waves = simulate.exit_waves(atoms, gpts=(512, 512), energy=300e3)
    optics = [
        Optics(defocus=-40.0, astigmatism=15.0, astigmatism_angle=30.0, focal_spread=35.0),
        Optics(defocus=20.0, Cs=-1.2e5, aperture=25.0),
    ]
    fast = simulate.images_from_exit_waves(waves, extent=(25.6, 25.6), optics=optics, shape=(160, 160))
    for img, opt in zip(fast, optics):
        ref = simulate.reference_image(waves, extent=(25.6, 25.6), optics=opt, shape=(160, 160))
        assert np.abs(img - ref).max() < 1e-5  # float32 round-off; the image contrast is ~0.1


def test_vacuum_gives_a_flat_image_of_unit_intensity():
    vacuum = Atoms(cell=[20.0, 20.0, 10.0], pbc=True)
    waves = simulate.exit_waves(vacuum, gpts=(200, 200), energy=300e3)
    img = simulate.images_from_exit_waves(
        waves, extent=(20.0, 20.0), optics=[Optics(defocus=-80.0, astigmatism=20.0)], shape=(100, 100)
    )[0]
    assert img.mean() == pytest.approx(1.0, abs=1e-4)
    assert img.std() < 1e-5


@pytest.mark.parametrize(
    "transform",
    [{}, {"rotation": 30.0, "shift": (1.3, -0.7)}, {"rotation": -50.0, "tilt": 2.0, "tilt_axis": 20.0}],
    ids=["aligned", "rotated-shifted", "rotated-tilted"],
)
def test_columns_land_on_the_intensity_maxima(transform):
    """NCSI conditions (5 nm overfocus, Cs = -9 µm, C5 = 5 mm): Ce columns are bright maxima.

    Images and labels must stay aligned under every transform of the model: each Ce
    column's brightest pixel within 0.6 Å lies within one pixel of its table position.
    """
    s, shape = 0.08, (320, 320)
    extent = (shape[1] * s, shape[0] * s)
    atoms = build(ParticleSpec(profile="flat", size=16.0, n_min=3, n_max=3, **transform), extent=extent)
    waves = simulate.exit_waves(atoms, gpts=(420, 420), energy=300e3)
    img = simulate.images_from_exit_waves(
        waves, extent=extent, optics=[Optics(defocus=-50.0, focal_spread=20.0)], shape=shape
    )[0]
    table = column_table(atoms, sampling=s)
    ce = table[table.channel == 0]
    r = int(round(0.6 / s))
    for _, c in ce.iterrows():
        i0, j0 = int(round(c.row)), int(round(c.col))
        win = img[i0 - r : i0 + r + 1, j0 - r : j0 + r + 1]
        pi, pj = np.unravel_index(np.argmax(win), win.shape)
        assert np.hypot(pi - r + i0 - c.row, pj - r + j0 - c.col) * s < s, f"column {c.column} is off its maximum"
        assert win.max() > np.median(img) + 0.1


def test_simulate_structure_returns_consistent_ground_truth():
    config = simulate.SimulationConfig(**SMALL)
    task = simulate.sample_task(config, seed=5, index=0)
    out = simulate.simulate_structure(task, config)
    k, (h, w) = config.images_per_structure, config.shape
    assert out["clean"].shape == out["noisy"].shape == (k, h, w)
    assert out["labels"].shape == (k, 2, h, w) and out["labels"].dtype == np.uint8
    assert out["columns"][:, 5].sum() == np.sum(out["column"] >= 0)  # every particle atom in one column
    for j, params in enumerate(out["images"]):
        assert params["dose"] == task.doses[j] and params["noise_seed"] == task.noise_seeds[j]
        assert out["noisy"][j].mean() == pytest.approx((out["clean"][j] * task.doses[j] * 0.04).mean(), rel=0.1)


def _arrays(path):
    ds = store.open_dataset(path)
    return {name: ds.group[name][:] for name in ("clean", "noisy", "labels", "distance", "weights")}


def test_dataset_is_deterministic_and_resumes_after_a_kill(tmp_path, monkeypatch):
    config = simulate.SimulationConfig(**SMALL)
    full = simulate.make_dataset(
        tmp_path / "full.zarr", config, n_structures=3, seed=11, scheduler="synchronous", progress=False
    )
    again = simulate.make_dataset(
        tmp_path / "again.zarr", config, n_structures=3, seed=11, scheduler="synchronous", progress=False
    )
    a, b = _arrays(full), _arrays(again)
    assert all(np.array_equal(a[k], b[k]) for k in a)

    # a run killed after its first structure leaves no entry that looks whole
    real_write = datasets.write_structure
    calls = []

    def dying_write(group, result):
        if calls:
            raise KeyboardInterrupt
        calls.append(result["index"])
        real_write(group, result)

    monkeypatch.setattr(datasets, "write_structure", dying_write)
    with pytest.raises(KeyboardInterrupt):
        simulate.make_dataset(
            tmp_path / "killed.zarr", config, n_structures=3, seed=11, scheduler="synchronous", progress=False
        )
    with pytest.raises(datasets.UnfinishedDatasetError, match="unfinished dataset"):
        store.open_dataset(tmp_path / "killed.zarr")
    monkeypatch.setattr(datasets, "write_structure", real_write)

    simulated = []
    real_sim = simulate.simulate_structure
    monkeypatch.setattr(
        hrtem, "simulate_structure", lambda task, cfg: simulated.append(task.index) or real_sim(task, cfg)
    )
    simulate.make_dataset(
        tmp_path / "killed.zarr", config, n_structures=3, seed=11, scheduler="synchronous", progress=False
    )
    assert simulated == [1, 2], "resume must redo only the missing structures"
    c = _arrays(tmp_path / "killed.zarr")
    assert all(np.array_equal(a[k], c[k]) for k in a)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_bytes(tmp_path):
    config = simulate.SimulationConfig(**SMALL)
    here = simulate.make_dataset(
        tmp_path / "here.zarr", config, n_structures=2, seed=3, scheduler="synchronous", progress=False
    )
    there = simulate.make_dataset(tmp_path / "there.zarr", config, n_structures=2, seed=3, n_workers=2, progress=False)
    a, b = _arrays(here), _arrays(there)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_with_other_parameters_is_refused(tmp_path):
    config = simulate.SimulationConfig(**SMALL)
    simulate.make_dataset(tmp_path / "d.zarr", config, n_structures=1, seed=0, scheduler="synchronous", progress=False)
    with pytest.raises(ValueError, match=r"other parameters \(dose"):
        simulate.make_dataset(
            tmp_path / "d.zarr",
            config.replace(dose=(200.0, 300.0)),
            n_structures=1,
            seed=0,
            scheduler="synchronous",
            progress=False,
        )
    with pytest.raises(ValueError, match="seed"):
        simulate.make_dataset(
            tmp_path / "d.zarr", config, n_structures=1, seed=1, scheduler="synchronous", progress=False
        )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"dose": (-100.0, 500.0)}, "dose must be positive"),
        (
            {"material": {"name": "XxO2", "structure": "fluorite", "symbols": ("Xx", "O"), "a": 5.0}},
            "unknown element 'Xx'",
        ),
        ({"sim_sampling": 0.4}, "too coarse"),
        ({"thickness": (0, 5)}, "thickness"),
        ({"profiles": ("flat", "spiky")}, "unknown profile 'spiky'"),
        ({"shape": (8, 8)}, "shape"),
    ],
)
def test_bad_parameters_fail_before_any_work(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        simulate.SimulationConfig(**{**SMALL, **change})
    assert not (tmp_path / "never.zarr").exists()


def test_dataset_view_gives_params_columns_and_atoms(tmp_path):
    config = simulate.SimulationConfig(**SMALL)
    ds = store.open_dataset(
        simulate.make_dataset(
            tmp_path / "v.zarr", config, n_structures=2, seed=2, scheduler="synchronous", progress=False
        )
    )
    params = ds.params
    assert len(params) == len(ds) == 4
    assert list(params["index"]) == [0, 1, 2, 3] and params["structure"].tolist() == [0, 0, 1, 1]
    assert {"dose", "defocus", "Cs", "C5", "snr", "profile", "tilt", "seed"} <= set(params.columns)
    atoms = ds.atoms(3)
    table = ds.columns(3)
    assert table["count"].sum() == np.sum(atoms.arrays["column"] >= 0)
    assert set(ds.attrs["versions"]) >= {"abtem", "ase", "numpy"}
    with pytest.raises(IndexError):
        ds.columns(4)


def test_open_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset at"):
        store.open_dataset(tmp_path / "missing.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError):
        store.open_dataset(tmp_path / "plain")


def test_domain_randomization_draws_per_structure_and_keeps_the_rest():
    base = simulate.SimulationConfig(**SMALL)
    varied = base.replace(vary={"sim_sampling": (0.04, 0.06), "slice_thickness": (1.0, 2.5), "aperture": (20.0, 35.0)})
    plain, drawn = simulate.sample_task(base, seed=3, index=1), simulate.sample_task(varied, seed=3, index=1)
    assert plain.spec == drawn.spec and [o.defocus for o in plain.optics] == [o.defocus for o in drawn.optics]
    assert plain.sim_sampling is None and 0.04 <= drawn.sim_sampling <= 0.06
    assert all(20.0 <= o.aperture <= 35.0 for o in drawn.optics)
    result = simulate.simulate_structure(drawn, varied)
    assert result["images"][0]["slice_thickness"] == drawn.slice_thickness
    with pytest.raises(ValueError, match="vary: unknown"):
        base.replace(vary={"gain": (1.0, 2.0)})
    with pytest.raises(ValueError, match="too coarse"):
        base.replace(vary={"sim_sampling": (0.05, 0.4)})

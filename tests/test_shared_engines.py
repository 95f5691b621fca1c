"""The shared engines every work builds on: the loop with several networks, the tiled
inference with any output, materials by parameters, atomic writes, provenance."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from torch import nn

from atomtools import provenance, registry
from atomtools.core.labels import column_table
from atomtools.core.materials import Material, material
from atomtools.core.structures import ParticleSpec, build, column_geometry
from atomtools.inference import Regression, SoftmaxHeads, predict_tiled
from atomtools.training import OptimizerSpec, Task, fit
from atomtools.utils import atomic_path, write_json


def _gan_task(seed: int = 0) -> Task:
    """A toy GAN: a generator and a discriminator, each with its own optimizer and schedule."""
    torch.manual_seed(seed)
    g = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))
    d = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1)
    )

    def batch(step, rank, world):
        rng = np.random.default_rng([seed, step])
        real = rng.normal(1.0, 0.1, (4, 1, 16, 16)).astype(np.float32)
        noise = rng.normal(0.0, 1.0, (4, 1, 16, 16)).astype(np.float32)
        return {"real": torch.from_numpy(real), "noise": torch.from_numpy(noise)}

    def step(nets, b, optimize):
        bce = nn.functional.binary_cross_entropy_with_logits
        fake = nets["g"](b["noise"])
        d_real, d_fake = nets["d"](b["real"]), nets["d"](fake.detach())
        d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        optimize("d", d_loss)
        g_out = nets["d"](fake)
        g_loss = bce(g_out, torch.ones_like(g_out)) + (fake - b["real"]).abs().mean()
        optimize("g", g_loss)
        return {"loss_g": float(g_loss.detach()), "loss_d": float(d_loss.detach())}

    def validate(nets):
        return {"val_mean": float(nets["g"](torch.zeros(1, 1, 16, 16)).mean())}

    return Task(
        networks={"g": g, "d": d},
        optimizers={
            "g": OptimizerSpec(("g",), lr=2e-3, betas=(0.5, 0.99)),
            "d": OptimizerSpec(("d",), lr=1e-3, schedule="constant"),
        },
        batch=batch,
        train_step=step,
        validate=validate,
        signature={"toy": "gan", "seed": seed},
    )


def test_a_gan_trains_on_the_shared_loop_and_resumes_exactly(tmp_path, monkeypatch):
    straight_task = _gan_task()
    straight = fit(straight_task, steps=6, checkpoint=tmp_path / "a.ckpt", validate_every=3, progress=False)
    assert set(straight[0]) >= {"step", "loss_g", "loss_d", "lr_g", "lr_d"} and "val_mean" in straight[2]
    assert straight[-1]["lr_d"] == pytest.approx(1e-3) and straight[-1]["lr_g"] < 2e-3  # own schedules

    killed = _gan_task()
    real_batch = killed.batch

    def dying(step, rank, world):
        if step == 4:
            raise KeyboardInterrupt("killed")
        return real_batch(step, rank, world)

    killed.batch = dying
    with pytest.raises(KeyboardInterrupt):
        fit(
            killed,
            steps=6,
            checkpoint=tmp_path / "b.ckpt",
            checkpoint_every=0.0,
            log_csv=tmp_path / "b.csv",
            progress=False,
        )
    resumed_task = _gan_task()
    resumed = fit(resumed_task, steps=6, checkpoint=tmp_path / "b.ckpt", log_csv=tmp_path / "b.csv", progress=False)
    for name in ("g", "d"):
        for (k, x), (_, y) in zip(
            straight_task.networks[name].state_dict().items(), resumed_task.networks[name].state_dict().items()
        ):
            assert torch.equal(x, y), (name, k)
    assert [r["loss_g"] for r in straight] == [r["loss_g"] for r in resumed]
    assert (tmp_path / "b.csv").read_text().count("\n") == 7
    other = _gan_task(seed=1)
    with pytest.raises(ValueError, match="other settings"):
        fit(other, steps=6, checkpoint=tmp_path / "b.ckpt", progress=False)


def test_tiled_inference_takes_any_network_and_output():
    torch.manual_seed(0)
    net = nn.Conv2d(1, 3, 5, padding=2).eval()
    frame = np.random.default_rng(0).gamma(4.0, 0.25, (150, 170)).astype(np.float32)
    whole = predict_tiled(frame, net, Regression(3), tile=176)
    tiled = predict_tiled(frame, net, Regression(3), tile=48, overlap=16)
    assert whole["image"].shape == tiled["image"].shape == (3, 150, 170)
    # tiles see zero padding at their edges, which the blending window weighs down:
    # inside the frame most pixels agree exactly and the rest closely
    diff = np.abs(whole["image"] - tiled["image"])[:, 8:-8, 8:-8]
    assert np.mean(diff < 1e-5) > 0.75 and diff.mean() < 0.01 * np.abs(whole["image"]).mean(), diff.mean()
    heads = predict_tiled(frame, net, SoftmaxHeads((3,), temperature=[2.0]), tile=48, overlap=16)
    z = net(torch.from_numpy(frame)[None, None]).detach()[0] / 2.0
    inner = (slice(8, -8), slice(8, -8))
    assert np.mean(heads["classes"][0][inner] == z.argmax(0).numpy()[inner]) > 0.99
    assert np.abs(heads["foreground"][0] - (1 - torch.softmax(z, 0)[0].numpy()))[inner].mean() < 5e-3
    with pytest.raises(ValueError, match="one positive temperature per head"):
        SoftmaxHeads((3, 3), temperature=[1.0])


def test_one_tile_maps_straight_from_the_logits_match_the_blended_path():
    torch.manual_seed(0)
    net = nn.Conv2d(1, 7, 3, padding=1).eval()
    frame = np.random.default_rng(0).normal(size=(40, 40)).astype(np.float32)
    heads = SoftmaxHeads((3, 4), temperature=[2.0, 0.5])
    direct = predict_tiled(frame, net, heads, tile=64, overlap=8)  # one tile: store_output

    class Plain(SoftmaxHeads):  # the same transform without the shortcut
        store_output = None

    plain = predict_tiled(frame, net, Plain((3, 4), temperature=[2.0, 0.5]), tile=64, overlap=8)
    assert np.array_equal(direct["classes"], plain["classes"])
    for key in ("confidence", "foreground"):
        np.testing.assert_allclose(direct[key], plain[key], atol=1e-6)


@pytest.mark.parametrize("name, n_channels", [("Au", 1), ("Pt", 1), ("Pd", 1), ("ThO2", 2)])
def test_other_materials_go_through_the_same_code_by_parameters(name, n_channels):
    mat = material(name)
    assert len(mat.channels) == n_channels
    atoms = build(
        ParticleSpec(profile="stepped", size=14.0, n_min=2, n_max=5, material=mat, seed=3), extent=(30.0, 30.0)
    )
    table = column_table(atoms, sampling=0.1)  # channels from the material the model records
    assert set(table.element) == set(mat.symbols) and table["count"].max() >= 3
    period, stagger = column_geometry(mat)
    assert period == pytest.approx(mat.a / np.sqrt(2)) and stagger == pytest.approx(mat.a * np.sqrt(3 / 8))


def test_unknown_materials_are_refused_with_the_known_ones_named():
    with pytest.raises(ValueError, match="unknown material 'Unobtainium'.*CeO2"):
        material("Unobtainium")
    with pytest.raises(ValueError, match="not a cubic"):
        material("Zn")  # hcp
    with pytest.raises(ValueError, match="takes 2 species"):
        Material(name="X", structure="fluorite", symbols=("Ce",), a=5.0)
    assert Material.from_dict(material("Au").to_dict()) == material("Au")


def test_atomic_path_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_provenance_names_revision_profile_seed_and_hashes(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    prov = provenance.record(
        profile="smoke", seed=3, inputs={"weights": weights, "shipped": "pretrained", "absent": None}
    )
    assert prov["profile"] == "smoke" and prov["seed"] == 3 and prov["revision"]
    assert prov["sha256"]["weights"] == hashlib.sha256(b"weights").hexdigest()
    assert len(prov["sha256"]["shipped"]) == 64 and "absent" not in prov["sha256"]


def test_saved_figures_carry_their_provenance(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from atomtools import plotting

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    prov = {"revision": "abc123", "profile": "smoke", "seed": 7, "sha256": {"weights": "f" * 64}}
    path = plotting.save(fig, tmp_path, "x", provenance=prov)
    meta = Image.open(path).info
    assert json.loads(meta["Description"]) == prov
    assert len(fig.texts) == 0, "the footer is on the saved file only"


def test_registry_gives_every_notebook_its_paths_and_handoffs():
    for name in registry.names():
        nb = registry.notebook(name)
        paths = registry.paths(name, "smoke")
        assert set(paths) == {*nb.inputs, *nb.outputs, "figures_dir", "metrics_out"}
        assert all(p.startswith("../results/smoke/") for p in paths.values())
    assert registry.paths("02_train_unet", "quick", dataset="/data/mine.zarr")["dataset"] == "/data/mine.zarr"
    with pytest.raises(KeyError, match="known"):
        registry.notebook("99_nothing")
    with pytest.raises(ValueError, match="unknown artifact"):
        registry.Notebook("99_x", sizes={p: {} for p in registry.PROFILES}, outputs={"out": "nowhere"})


def test_an_fcc_metal_simulates_by_parameters(tmp_path):
    from atomtools.simulation import SimulationConfig, make_dataset
    from atomtools.storage import open_dataset

    config = SimulationConfig(
        material="Au", shape=(64, 64), sampling=0.2, size=(6.0, 9.0), images_per_structure=1, thickness=(1, 4)
    )
    assert config.vacancies == {"Au": (0.0, 0.02)} and config.adatoms == {"Au": 6}
    ds = open_dataset(
        make_dataset(tmp_path / "au.zarr", config, n_structures=1, seed=0, scheduler="synchronous", progress=False)
    )
    assert ds.attrs["channels"] == [["Au"]] and ds.labels.shape[1] == 1
    assert set(ds.columns(0).element) == {"Au"} and ds.labels[0].max() > 0
    assert ds.attrs["config"]["material"]["name"] == "Au"


def test_a_still_copy_of_an_explorer_shows_its_data():
    """Where JavaScript does not run, the notebooks' explorers have a matplotlib copy of the same points."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from atomtools import plotting

    table = pd.DataFrame({"dose": [10.0, 100.0, 1000.0, 10.0], "exact": [0.2, 0.5, 0.8, 0.1], "method": list("nnnb")})
    fig = plotting.static_scatter(table, x="dose", y="exact", by="method", logx=True, title="t")
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and sum(len(c.get_offsets()) for c in ax.collections) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["b", "n"]
    coloured = plotting.static_scatter(table, x="dose", y="exact", c="exact", clim=(0, 1), equal=True)
    assert len(coloured.axes) == 2 and coloured.axes[1].get_ylabel() == "exact"  # a colorbar says what colour means
    plt.close("all")

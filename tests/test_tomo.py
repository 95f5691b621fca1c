"""Missing-wedge tomography: conventions against scikit-image, baselines, inputs, networks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.transform import iradon, radon

from atomtools.tomo import classical, phantom, reconstruct, reconstruct_volume
from atomtools.tomo.evaluation import phantom_set, scores
from atomtools.tomo.operators import Projector, disc_mask, from_skimage, full_angles, to_skimage, wedge_angles
from atomtools.tomo.phantoms import HELD_OUT_KINDS, KINDS, TRAINING_KINDS, phantom_images
from atomtools.tomo.sinograms import add_shot_noise, from_network, grid_rows, random_mask, to_network


@pytest.fixture(scope="module")
def disc_image():
    rng = np.random.default_rng(0)
    image = rng.random((64, 64)).astype(np.float32)
    return image * disc_mask(64)


def test_projector_is_skimage_radon(disc_image):
    angles = np.array([-90.0, -63.7, -12.5, 0.0, 33.3, 45.0, 89.0])
    ours = Projector(64, angles).forward(disc_image)
    theirs = from_skimage(radon(disc_image, angles, circle=True))
    assert ours.shape == (7, 64)
    np.testing.assert_allclose(ours, theirs, atol=2e-4 * np.abs(theirs).max())


def test_angle_convention_point_source():
    image = np.zeros((64, 64), np.float32)
    image[20, 40] = 1.0  # row y = 20 (12 above centre), column x = 40 (8 right of it)
    sino = Projector(64, [0.0, 90.0, -90.0]).forward(image)
    assert sino[0].argmax() == 40  # 0 degrees projects along y onto x
    # t = (x - c) cos θ - (y - c) sin θ + c: with y up as displayed, t = x cos θ + y sin θ
    assert sino[1].argmax() == 32 + 12
    assert sino[2].argmax() == 32 - 12


def test_sinogram_symmetry_under_half_turn(disc_image):
    # exact for images inside radius n/2 - 1 (pixel row 0 has no mirror row n on an even grid)
    y, x = np.ogrid[:64, :64]
    s = Projector(64, [30.0, 210.0]).forward(disc_image * ((y - 32) ** 2 + (x - 32) ** 2 <= 31**2))
    np.testing.assert_allclose(s[1], np.roll(s[0][::-1], 1), atol=1e-4)


def test_adjoint_and_torch_gradient(disc_image):
    p = Projector(64, full_angles(32))
    y = np.random.default_rng(1).random(p.shape).astype(np.float32)
    assert np.isclose((p.forward(disc_image) * y).sum(), (disc_image * p.back(y)).sum(), rtol=1e-5)
    x = torch.tensor(np.stack([disc_image, disc_image[::-1].copy()]), requires_grad=True)
    out = p.forward(x)
    np.testing.assert_allclose(out.detach().numpy()[0], p.forward(disc_image), rtol=1e-5, atol=1e-5)
    g = torch.from_numpy(np.stack([y, y]))
    (out * g).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0], p.back(y), rtol=1e-4, atol=1e-4)


def test_projector_shape_error():
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 16, 16\)"):
        Projector(16, [0.0]).forward(np.zeros((8, 8)))


def test_torch_fbp_matches_iradon():
    image = phantom("ellipses", n=64, seed=4)
    angles = full_angles(64)
    sino = Projector(64, angles).forward(image)
    ours = Projector(64, angles).fbp(sino)
    theirs = iradon(to_skimage(sino), angles, circle=True)
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.999


def test_fbp_weighs_angles_by_their_step():
    # a wedge or sparse series must not brighten the slice as plain iradon does
    image = phantom("blobs", n=64, seed=2)
    full = classical.fbp(Projector(64, full_angles(64)).forward(image), full_angles(64))
    sparse_angles = full_angles(64)[::4]
    sparse = classical.fbp(Projector(64, sparse_angles).forward(image), sparse_angles)
    assert abs(sparse.sum() / full.sum() - 1) < 0.05


def test_classical_methods_order_on_a_wedge():
    angles, measured = wedge_angles(45.0, n=64)
    image = phantom("polygons", n=64, seed=5)
    sino = Projector(64, angles[measured]).forward(image)
    psnr = {m: scores(image, getattr(classical, m)(sino, angles[measured]))[0] for m in classical.CLASSICAL_METHODS}
    assert psnr["tv"] > psnr["fbp"] + 8
    assert psnr["sirt"] > psnr["fbp"] + 3 and psnr["sart"] > psnr["fbp"] + 3
    # batched SIRT and TV give each slice's own answer
    batch = np.stack([sino, sino[:, ::-1].copy()])
    np.testing.assert_allclose(
        classical.tv(batch, angles[measured])[0], classical.tv(sino, angles[measured]), atol=1e-4
    )


@pytest.mark.parametrize(
    "sino, angles, match",
    [
        (np.ones((3, 8)) + np.eye(3, 8), [0, 10], r"3 rows but 2 angles.*\(n_angles, n_detector\)"),
        (np.ones((8, 3)) + np.eye(8, 3), [0, 10, 20], r"looks transposed"),
        (np.full((2, 8), np.nan), [0, 10], r"2 \* 8|16 NaN"),
        (np.ones((2, 8)), [0, 10], r"constant"),
        (np.zeros((0, 8)), [], r"empty"),
        (np.eye(2, 8), [10, 0], r"ascending.*argsort"),
        (np.eye(2, 8), [0, 120], r"-90 \.\. 90"),
        (np.ones(8), [0], r"must be \(n_angles, n_detector\)"),
        (np.eye(2, 8).astype(str), [0, 10], r"real numbers"),
    ],
)
def test_bad_sinograms_are_refused(sino, angles, match):
    with pytest.raises(ValueError, match=match):
        reconstruct(sino, angles, method="fbp")


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'magic'"):
        reconstruct(np.eye(2, 8), [0, 10], method="magic")


def test_phantoms_deterministic_in_disc_and_normalized():
    for kind in KINDS:
        a, b = phantom(kind, n=64, seed=7), phantom(kind, n=64, seed=7)
        assert np.array_equal(a, b) and a.max() == pytest.approx(1.0) and a.min() >= 0
        assert not a[~disc_mask(64)].any()
        assert not np.array_equal(a, phantom(kind, n=64, seed=8))
    assert set(TRAINING_KINDS).isdisjoint(HELD_OUT_KINDS) and "nanoparticle" in HELD_OUT_KINDS
    images, names = phantom_images(TRAINING_KINDS, 5, n=32)
    assert images.shape == (5, 32, 32) and names[:3] == list(TRAINING_KINDS)
    with pytest.raises(ValueError, match="unknown phantom kind 'cat'"):
        phantom("cat")


def test_network_order_puts_the_wedge_in_the_middle():
    angles, measured = wedge_angles(45.0)
    order = to_network(np.broadcast_to(measured[:, None], (128, 4)).astype(int))[:, 0]
    missing = np.flatnonzero(order == 0)
    assert missing.min() > 0 and missing.max() < 127 and np.all(np.diff(missing) == 1)
    s = np.random.default_rng(0).random((2, 128, 16)).astype(np.float32)
    np.testing.assert_array_equal(from_network(to_network(s)), s)
    np.testing.assert_array_equal(from_network(to_network(torch.from_numpy(s))).numpy(), s)


def test_grid_rows_and_masks():
    rows = grid_rows(np.arange(-70, 71, 10.0))
    assert len(set(rows.tolist())) == 15 and rows[7] == 64
    with pytest.raises(ValueError, match="lies 0.50 deg.*allowed 0.2.*resample the series onto the grid"):
        grid_rows([0.5], tolerance=0.2)
    with pytest.raises(ValueError, match="two measured angles fall on one row"):
        grid_rows([0.1, 0.2])
    mask, wedge = random_mask(np.random.default_rng(3), wedge=(40, 40), sparse=0)
    assert wedge == 40 and mask.sum() == int(wedge_angles(40)[1].sum())


def test_shot_noise_calibrated():
    rng = np.random.default_rng(0)
    s = np.full((64, 64), 3.0)
    noisy = add_shot_noise(s, dose=100.0, rng=rng)
    assert noisy.mean() == pytest.approx(3.0, rel=0.01)
    assert (noisy / 3.0 * 100).var() == pytest.approx(100, rel=0.05)  # Poisson: variance = mean count
    with pytest.raises(ValueError, match="dose must be positive"):
        add_shot_noise(s, dose=0.0, rng=rng)


def test_test_set_shapes_and_seeds():
    s = phantom_set(["ellipses", "nanoparticle"], 2, wedge=60.0, dose=1e3, n=32)
    assert s["images"].shape == (4, 32, 32) and s["sinograms"].shape == (4, len(s["angles"]), 32)
    assert list(s["kinds"]) == ["ellipses", "ellipses", "nanoparticle", "nanoparticle"]
    again = phantom_set(["ellipses", "nanoparticle"], 2, wedge=60.0, dose=1e3, n=32)
    np.testing.assert_array_equal(s["sinograms"], again["sinograms"])


def test_reconstruct_volume_slices_and_writes(tmp_path):
    angles = full_angles(32)[4:-4]
    images = np.stack([phantom("ellipses", n=32, seed=i) for i in range(3)])
    series = Projector(32, angles).forward(images).transpose(1, 0, 2)  # (tilt, y, x)
    volume = reconstruct_volume(series, angles, method="sirt", batch=2, out=tmp_path / "v.npy", progress=False)
    assert volume.shape == (3, 32, 32)
    np.testing.assert_allclose(volume[1], classical.sirt(series[:, 1], angles), atol=1e-5)
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), volume)
    assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]
    with pytest.raises(ValueError, match=r"3 tilts on its first axis but 2 angles.*\(tilt, y, x\)"):
        reconstruct_volume(series[:3], angles[:2], method="fbp")


def test_gan_chain_trains_saves_and_reconstructs(tmp_path):
    """Both GANs on the shared loop at a toy size, their weights and cards, and reconstruct(method="gan")."""
    from atomtools.models import RRDBConfig, UNetConfig, load_model
    from atomtools.tomo.task import GanConfig, gan_card, train_inpainter, train_refiner

    config = GanConfig(steps=2, batch_size=2, n=32, validate_every=2, validation=2, checkpoint_every=1e9)
    inp = train_inpainter(
        TRAINING_KINDS,
        tmp_path / "inp.pt",
        config,
        model_config=RRDBConfig(features=8, growth=4, blocks=1, stem=2),
        progress=False,
    )
    ref = train_refiner(
        TRAINING_KINDS,
        tmp_path / "ref.pt",
        config,
        inpainter=inp.weights,
        model_config=UNetConfig(heads=(1,), width=4, depth=2),
        progress=False,
    )
    assert {"val_psnr_fbp_raw", "val_psnr_fbp_inpainted"} <= set(inp.validation)
    assert {"val_psnr_refined"} <= set(ref.validation)
    assert len(inp.history) == len(ref.history) == 2 and inp.seconds > 0
    _, meta = load_model(ref.weights, expected="atomtools.unet/1")
    assert meta["inpainter_sha256"] and meta["train_config"]["n"] == 32
    assert meta["train_config"]["kinds"] == list(TRAINING_KINDS)
    card = gan_card(inp.weights)
    assert "Nanoparticle sections were kept out of training" in card and "polygons, ellipses, blobs" in card
    with pytest.raises(ValueError, match="phantom kinds"):
        train_inpainter(("polygons", "stars"), tmp_path / "x.pt", config, progress=False)
    angles, measured = wedge_angles(45.0, n=32)
    sino = Projector(32, angles[measured]).forward(phantom("ellipses", n=32, seed=1))
    for method in ("gan", "inpaint", "refine"):
        image = reconstruct(sino, angles[measured], method=method, inpainter=inp.weights, refiner=ref.weights)
        assert image.shape == (32, 32) and np.isfinite(image).all()
    # a sinogram of another width is resampled onto the networks' grid and back
    wide = np.repeat(sino, 2, axis=1) / 2
    image = reconstruct(wide, angles[measured], method="gan", inpainter=inp.weights, refiner=ref.weights)
    assert image.shape == (64, 64)


def test_networks_take_a_series_denser_than_their_grid(tmp_path):
    """1-degree tilt steps (denser than the 128-angle grid): rows are shared, every projection is used."""
    from atomtools.models import RRDBConfig, UNetConfig
    from atomtools.tomo.task import GanConfig, train_inpainter, train_refiner

    config = GanConfig(steps=1, batch_size=2, n=32, validate_every=1, validation=2, checkpoint_every=1e9)
    small = RRDBConfig(features=8, growth=4, blocks=1, stem=2)
    inp = train_inpainter(TRAINING_KINDS, tmp_path / "inp.pt", config, model_config=small, progress=False)
    ref = train_refiner(
        TRAINING_KINDS,
        tmp_path / "ref.pt",
        config,
        inpainter=inp.weights,
        model_config=UNetConfig(heads=(1,), width=4, depth=2),
        progress=False,
    )
    angles = np.arange(-60.0, 61.0, 1.0)  # 121 projections, grid step 5.6 degrees at n = 32
    sino = Projector(32, angles).forward(phantom("ellipses", n=32, seed=2))
    image = reconstruct(sino, angles, method="gan", inpainter=inp.weights, refiner=ref.weights)
    assert image.shape == (32, 32) and np.isfinite(image).all()
    with pytest.raises(ValueError, match="two measured angles fall on one row"):
        grid_rows(angles, n_grid=32)


def test_tomography_metrics_name_the_best_classical_method_and_the_joint_gain():
    from atomtools.tomo.evaluation import tomography_metrics

    rows = [
        {
            "kind": k,
            "held_out": k == "nanoparticle",
            "wedge": w,
            "dose": 1e4,
            "method": m,
            "psnr": p + w / 100,
            "ssim": 0.9,
            "seconds": 0.01,
        }
        for k in ("ellipses", "nanoparticle")
        for w in (30.0, 45.0)
        for m, p in (("fbp", 20.0), ("sart", 28.0), ("sirt", 27.0), ("tv", 30.0), ("gan", 29.0))
    ]
    protocol = pd.DataFrame([{"kind": "ellipses", "method": "fbp", "gain_db": 3.0}])
    out = tomography_metrics(pd.DataFrame(rows), protocol)
    assert out["best_classical_at_45"] == "tv"
    assert out["headline"]["tomography @45°: joint minus best classical / minus FBP [dB]"] == [-1.0, 9.0]
    assert out["at_45"]["gan"]["psnr_held_out"] == pytest.approx(29.45)
    with pytest.raises(ValueError, match="wedge 60"):
        tomography_metrics(pd.DataFrame(rows), protocol, wedge=60.0)


def test_the_unrolled_network_starts_as_a_classical_method_and_trains(tmp_path):
    """Untrained it is Landweber iteration from FBP (better than FBP); it trains, saves and reconstructs."""
    from atomtools.models import UnrolledConfig, UnrolledNet, load_model
    from atomtools.tomo.phantoms import UNROLLED_KINDS
    from atomtools.tomo.unrolled import (
        Problem,
        UnrolledTrainConfig,
        train_unrolled,
        unrolled_batch,
        unrolled_reconstruct,
    )

    config = UnrolledTrainConfig(steps=2, batch_size=2, n=32, validate_every=2, validation=2, checkpoint_every=1e9)
    batch = unrolled_batch(config, 0, range(4))
    assert batch["noisy"].shape == (4, 32, 32) and set(batch["kind"]) <= set(UNROLLED_KINDS)
    problem = Problem(Projector(32, full_angles(32)), batch["noisy"], batch["mask"])
    with torch.no_grad():
        landweber = problem.solve(UnrolledNet(UnrolledConfig(iterations=8, width=4, layers=2, memory=1)))
    fbp_image = (problem.start * problem.scale)[:, 0]

    def err(x):
        return float(((x - batch["image"]) ** 2).mean())

    assert err(landweber) < err(fbp_image)  # the data steps help before any training
    result = train_unrolled(
        UNROLLED_KINDS,
        tmp_path / "unrolled.pt",
        config,
        model_config=UnrolledConfig(iterations=2, width=4, layers=2, memory=1),
        progress=False,
    )
    assert {"val_psnr", "val_psnr_fbp"} <= set(result.validation) and len(result.history) == 2
    net, meta = load_model(result.weights, expected="atomtools.unrolled/1")
    assert meta["train_config"]["kinds"] == list(UNROLLED_KINDS)
    angles, measured = wedge_angles(45.0, n=32)
    image = phantom("shepp-logan", n=32, seed=1)
    sino = Projector(32, angles[measured]).forward(image)
    out = unrolled_reconstruct(sino, angles[measured], model=result.weights)
    assert out.shape == (32, 32) and np.isfinite(out).all() and out.min() >= 0
    assert unrolled_reconstruct(np.stack([sino, sino]), angles[measured], model=net).shape == (2, 32, 32)


@pytest.mark.parametrize("kind", ["atoms", "hollow", "core-shell", "textured", "shepp-logan", "random-ellipses"])
def test_the_new_phantom_kinds_are_seeded_images_in_the_disc(kind):
    from atomtools.tomo.phantoms import HELD_OUT_KINDS, UNROLLED_KINDS

    a, b = phantom(kind, n=64, seed=3), phantom(kind, n=64, seed=3)
    np.testing.assert_array_equal(a, b)
    assert (
        a.shape == (64, 64) and a.max() == 1.0 and a.min() >= 0 and not np.array_equal(a, phantom(kind, n=64, seed=4))
    )
    assert (kind in UNROLLED_KINDS) != (kind in HELD_OUT_KINDS)


def test_row_weights_let_iterative_methods_trust_some_projections_less():
    """A corrupted row weighed 0 is ignored: SIRT, TV and SART then match the reconstruction without it."""
    n = 32
    angles = full_angles(n)
    image = phantom("ellipses", n=n, seed=5)
    sino = Projector(n, angles).forward(image)
    bad = sino.copy()
    bad[10] *= 3.0  # one projection that contradicts the others
    w = np.ones(n)
    w[10] = 0.0
    for method in (classical.sirt, classical.tv):
        clean = method(sino, angles, iterations=150)
        weighted = method(bad, angles, row_weights=w, iterations=150)
        plain = method(bad, angles, iterations=150)
        assert np.abs(weighted - clean).mean() < 0.5 * np.abs(plain - clean).mean(), method.__name__
    weighted = classical.sart(bad, angles, row_weights=w, iterations=5)
    plain = classical.sart(bad, angles, iterations=5)
    clean = classical.sart(sino, angles, iterations=5)
    assert np.abs(weighted - clean).mean() < 0.5 * np.abs(plain - clean).mean()
    with pytest.raises(ValueError, match="one per angle"):
        classical.tv(sino, angles, row_weights=np.ones(3))
    with pytest.raises(ValueError, match="0 .. 1"):
        classical.sirt(sino, angles, row_weights=np.full(n, 2.0))
    with pytest.raises(ValueError, match="inpaint=True"):
        reconstruct(sino, angles, method="tv", inpainted_weight=0.5)


def test_a_tv_start_network_is_tv_untrained_and_trains_on_a_cached_pool(tmp_path):
    """start="tv", step 0: the untrained network returns TV's reconstruction; the pool resumes from disk."""
    from atomtools.models import UnrolledConfig, UnrolledNet
    from atomtools.tomo.unrolled import UnrolledTrainConfig, train_unrolled, tv_pool, unrolled_reconstruct

    model_config = UnrolledConfig(iterations=2, width=4, layers=3, memory=1, step=0.0, start="tv", tv_iterations=40)
    angles = full_angles(32)[5:-5]
    sino = Projector(32, angles).forward(phantom("ellipses", n=32, seed=3))
    untrained = unrolled_reconstruct(sino, angles, model=UnrolledNet(model_config))
    np.testing.assert_allclose(untrained, classical.tv(sino, angles, iterations=40), atol=1e-5)

    config = UnrolledTrainConfig(steps=4, batch_size=2, n=32, validate_every=2, validation=3, pool=2, group=3)
    pool = tv_pool(config, ["ellipses", "polygons"], tmp_path / "pool", groups=2, tv_iterations=40, progress=False)
    assert pool["start"].shape == (6, 32, 32) and pool["mask"].shape == (6, 32)
    assert (pool["mask"][:3] == pool["mask"][0]).all()  # a group shares its tilt geometry
    first = sorted((tmp_path / "pool").iterdir())[0]
    stamp = first.stat().st_mtime_ns
    again = tv_pool(config, ["ellipses", "polygons"], tmp_path / "pool", groups=2, tv_iterations=40, progress=False)
    assert first.stat().st_mtime_ns == stamp and np.array_equal(again["start"], pool["start"])  # read, not redone

    result = train_unrolled(
        ["ellipses", "polygons"],
        tmp_path / "tv.pt",
        config,
        model_config=model_config,
        pool_dir=tmp_path / "pool",
        progress=False,
    )
    assert {"val_psnr", "val_psnr_tv"} <= set(result.validation)
    assert unrolled_reconstruct(sino, angles, model=result.weights).shape == (32, 32)
    with pytest.raises(ValueError, match="pool"):
        train_unrolled(["ellipses"], tmp_path / "x.pt", UnrolledTrainConfig(steps=1, n=32), model_config=model_config)
    with pytest.raises(ValueError, match="start"):
        UnrolledConfig(start="sirt")


def test_sparse_phantom_sets_keep_every_kth_tilt_and_zero():
    full = phantom_set(["ellipses"], 1, wedge=45.0, dose=np.inf, n=32)
    sparse = phantom_set(["ellipses"], 1, wedge=45.0, dose=np.inf, n=32, every=3)
    assert 0.0 in sparse["angles"] and len(sparse["angles"]) in (len(full["angles"]) // 3, len(full["angles"]) // 3 + 1)
    assert set(sparse["angles"]) <= set(full["angles"])
    np.testing.assert_allclose(np.diff(sparse["angles"]), 3 * 180 / 32)
    with pytest.raises(ValueError, match="every"):
        phantom_set(["ellipses"], 1, wedge=45.0, dose=np.inf, n=32, every=0)


def test_learned_gain_compares_with_the_best_classical_method_case_by_case():
    from atomtools.tomo.evaluation import learned_gain

    rows = [
        {"kind": "a", "wedge": 45.0, "dose": np.inf, "every": 1, "method": m, "psnr": p, "ssim": q, "seconds": t}
        for m, p, q, t in [("sirt", 30.0, 0.8, 0.1), ("tv", 33.0, 0.9, 1.0), ("unrolled", 34.5, 0.92, 0.9)]
    ]
    rows += [{**r, "kind": "b", "psnr": r["psnr"] - (5 if r["method"] == "unrolled" else 0)} for r in rows]
    gains = learned_gain(pd.DataFrame(rows)).set_index("kind")
    assert gains.loc["a", "best_classical"] == "tv" and gains.loc["a", "gain_db"] == pytest.approx(1.5)
    assert gains.loc["b", "best_classical"] == "tv" and gains.loc["b", "gain_db"] == pytest.approx(-3.5)
    assert gains.loc["a", "ssim_gain"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="no 'gan' rows"):
        learned_gain(pd.DataFrame(rows), "gan")


def test_withheld_projections_rank_a_consistent_reconstruction_above_a_blurred_one():
    from atomtools.tomo.evaluation import withheld_projection_error

    angles = np.arange(-60.0, 61.0, 10.0)
    volume = np.stack([phantom("ellipses", n=32, seed=s) for s in range(3)])  # (y, z, x) slices
    series = Projector(32, angles).forward(volume).transpose(1, 0, 2)  # (tilt, y, x)
    table = withheld_projection_error(
        series,
        angles,
        {"sirt": ("sirt", {"iterations": 300}), "fbp": ("fbp", {}), "sirt (5 its)": ("sirt", {"iterations": 5})},
        withheld=[3, 6],
        progress=False,
    )
    assert len(table) == 6 and set(table.angle) == {-30.0, 0.0}
    error = table.groupby("label").error.mean()
    assert error["sirt"] < error["sirt (5 its)"] and (table.error >= 0).all()
    with pytest.raises(ValueError, match="tilts"):
        withheld_projection_error(series[:-1], angles, {"fbp": ("fbp", {})})

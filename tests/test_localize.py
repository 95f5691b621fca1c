"""atomtools.localize: input handling, positions, blocks, the shipped segmenter, the baseline, training, the CLI."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from atomtools.cli import main
from atomtools.core.tables import POSITION
from atomtools.localize import (
    SegmenterConfig,
    as_grey,
    evaluation,
    find_atoms,
    gaussian_fit_atoms,
    load_library,
    load_segmenter,
    normalize_frame,
    peaks_to_table,
    segment,
    train_segmenter,
)
from atomtools.models import UNet, UNetConfig, load_model, save_model
from atomtools.simulation import library as lib

HELD_OUT = lib.LibraryConfig(
    shape=(192, 192), hrtem_fraction=0.0, blank_fraction=0.0, region_fraction=0.0, crystals=lib.HELD_OUT_CRYSTALS
)


@pytest.fixture(scope="module")
def shipped():
    return load_segmenter("pretrained")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    net = UNet(UNetConfig(heads=(1, 1, 1), width=4, depth=2))
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    save_model(path, net, metadata={"task": "atom-segmentation"})
    return load_segmenter(path)


def test_as_grey_converts_what_it_can_and_refuses_colour():
    grey = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)
    assert as_grey(np.dstack([grey] * 3 + [np.full_like(grey, 255)])).shape == (32, 32)
    assert as_grey(grey).dtype == np.float32 and as_grey(grey).max() == grey.max()
    with pytest.raises(ValueError, match="colour image"):
        as_grey(np.dstack([grey, grey // 2, grey]), name="x.png")
    with pytest.raises(ValueError, match="too small"):
        as_grey(np.ones((8, 8)))
    with pytest.raises(ValueError, match="2D frame"):
        as_grey(np.ones((3, 32, 32)))


def test_normalization_ignores_gain_offset_and_refuses_flat_frames():
    rng = np.random.default_rng(0)
    image = rng.poisson(20, (64, 64)).astype(np.float32)
    a, _ = normalize_frame(image)
    b, _ = normalize_frame(7.5 * image - 300)
    np.testing.assert_allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="constant"):
        normalize_frame(np.ones((64, 64)))
    with pytest.raises(ValueError, match="NaN"):
        normalize_frame(np.full((64, 64), np.nan))


def test_peaks_are_refined_below_a_pixel():
    from atomtools.simulation.stem import splat_gaussians

    rng = np.random.default_rng(1)
    rc = rng.uniform(8, 56, (12, 2))
    rc = rc[np.min(np.linalg.norm(rc[:, None] - rc[None], axis=-1) + 99 * np.eye(12), axis=1) > 6]
    table = peaks_to_table(splat_gaussians((64, 64), rc, sigma=1.3), sampling=0.1)
    found = table[["row", "col"]].to_numpy()
    d = np.min(np.linalg.norm(found[:, None] - rc[None], axis=-1), axis=0)
    assert len(table) == len(rc) and d.max() < 0.02
    assert np.allclose(table.x, table.col * 0.1) and list(table.columns[:4]) == ["x", "y", "row", "col"]


def test_blocks_give_the_same_atoms_as_the_whole_frame(tiny, tmp_path):
    item = lib.library_item(0, replace(HELD_OUT, shape=(320, 320)), 3)
    frame = item["noisy"][0]
    whole = find_atoms(frame, model=tiny, threshold=0.0)
    path = tmp_path / "frame.npy"
    np.save(path, frame)
    blocks = find_atoms(np.load(path, mmap_mode="r"), model=tiny, threshold=0.0, block=128)
    # tiles see other neighbourhoods at their borders: nearly every atom agrees to well below a pixel
    d = np.min(
        np.linalg.norm(blocks[["col", "row"]].to_numpy()[:, None] - whole[["col", "row"]].to_numpy()[None], axis=-1),
        axis=1,
    )
    assert abs(len(blocks) - len(whole)) <= 0.05 * len(whole) and np.mean(d < 0.5) > 0.9
    # one table convention however the frame was read: Å (NaN without a pixel size) and px
    assert list(blocks.columns) == list(whole.columns) and tuple(whole.columns[:4]) == POSITION
    assert whole.x.isna().all() and blocks.y.isna().all()
    known = find_atoms(np.load(path, mmap_mode="r"), sampling=0.1, model=tiny, threshold=0.0, block=128)
    np.testing.assert_allclose(known[["x", "y"]].to_numpy(), known[["col", "row"]].to_numpy() * 0.1)


def test_a_weights_file_for_another_task_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    save_model(path, UNet(UNetConfig(heads=(1,), width=4, depth=2)), metadata={"task": "tomogram refinement"})
    with pytest.raises(ValueError, match="not atom segmentation"):
        load_segmenter(path)


@pytest.mark.parametrize("dose", [2e4, 1e6])
def test_shipped_segmenter_finds_atoms_of_crystals_it_never_saw(shipped, dose):
    cfg = replace(HELD_OUT, stem_dose=(dose, dose))
    scores = []
    for i in range(3):  # GaN, MgO and W
        item = lib.library_item(i, replace(cfg, crystals=(lib.HELD_OUT_CRYSTALS[i],)), 11)
        s = item["images"][0]["sampling"]
        table = find_atoms(item["noisy"][0], sampling=s, model=shipped)
        scores.append(
            evaluation.score_atoms(
                table[["col", "row"]].to_numpy(), item["positions"][:, :2], shape=(192, 192), sampling=s
            )
        )
    tp, fp, fn = (sum(sc[k] for sc in scores) for k in ("tp", "fp", "fn"))
    assert 2 * tp / (2 * tp + fp + fn) > 0.9
    err = np.concatenate([sc["errors"] for sc in scores])
    assert np.sqrt(np.mean(np.var(err, axis=0))) * 100 < 15.0  # pm


def test_shipped_segmenter_denoises(shipped):
    item = lib.library_item(1, replace(HELD_OUT, stem_dose=(2e4, 2e4)), 12)
    noisy, clean = item["noisy"][0], item["clean"][0]
    maps = segment(noisy, sampling=item["images"][0]["sampling"], model=shipped)
    assert maps["mask"].min() >= 0 and maps["mask"].max() <= 1
    assert np.mean((maps["denoised"] - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)


def test_a_frame_without_crystal_gives_no_atoms_and_says_so(shipped):
    noise = np.random.default_rng(0).poisson(50.0, (256, 256)).astype(np.float32)
    with pytest.warns(UserWarning, match="no atom found"):
        table = find_atoms(noise, sampling=0.1, model=shipped)
    assert len(table) == 0


def test_resampling_keeps_positions_in_the_frames_pixels(shipped):
    item = lib.library_item(0, replace(HELD_OUT, sampling=(0.05, 0.05), stem_dose=(1e6, 1e6)), 13)
    table = find_atoms(item["noisy"][0], sampling=0.05, model=shipped)  # finer than trained: resampled and back
    sc = evaluation.score_atoms(
        table[["col", "row"]].to_numpy(), item["positions"][:, :2], shape=(192, 192), sampling=0.05
    )
    assert sc["tp"] > 0.85 * (sc["tp"] + sc["fn"])


def test_gaussian_fitting_baseline_locates_atoms():
    item = lib.library_item(1, replace(HELD_OUT, stem_dose=(1e6, 1e6)), 14)
    s = item["images"][0]["sampling"]
    table = gaussian_fit_atoms(item["noisy"][0], sampling=s)
    sc = evaluation.score_atoms(
        table[["col", "row"]].to_numpy(), item["positions"][:, :2], shape=(192, 192), sampling=s
    )
    assert sc["tp"] > 0.8 * (sc["tp"] + sc["fn"]) and {"x", "y", "row", "col", "intensity"} <= set(table)
    np.testing.assert_allclose(table.y, table.row * s)


def test_summarize_pools_errors_per_method_and_dose():
    rows = pd.DataFrame(
        [
            {
                "method": "a",
                "dose": 1.0,
                "tp": 2,
                "fp": 0,
                "fn": 0,
                "errors": np.array([[0.01, 0.0], [-0.01, 0.0]]),
                "seconds": 1.0,
            },
            {"method": "a", "dose": 1.0, "tp": 1, "fp": 1, "fn": 1, "errors": np.array([[0.0, 0.0]]), "seconds": 3.0},
        ]
    )
    s = evaluation.summarize(rows).iloc[0]
    assert s.f1 == pytest.approx(6 / 8) and s.seconds == 2.0
    assert s.precision_pm == pytest.approx(np.sqrt(np.mean(np.var([[1, 0], [-1, 0], [0, 0]], axis=0))))


def test_common_precision_compares_methods_on_the_same_atoms():
    true = np.array([[10.0, 10.0], [20.0, 10.0], [30.0, 10.0]])
    easy = np.array([[10.02, 10.0], [20.0, 9.98]])  # finds the two easy columns, well
    found_all = np.array([[10.04, 10.0], [20.0, 9.96], [30.5, 10.0]])  # and the hard one, badly
    rows = []
    for name, pred in (("easy", easy), ("all", found_all)):
        sc = evaluation.score_atoms(pred, true, shape=(40, 40), sampling=1.0, border=0)
        rows.append({"method": name, "crystal": "x", "dose": 1.0, "structure": 0, **sc, "seconds": 0.0})
    assert rows[0]["matched"].tolist() == [0, 1] and sorted(rows[1]["matched"].tolist()) == [0, 1, 2]
    s = evaluation.summarize(pd.DataFrame(rows)).set_index("method")
    assert s.precision_pm["all"] > 5 * s.precision_pm["easy"]  # its own atoms: the hard one dominates
    assert s.common_precision_pm["all"] == pytest.approx(2 * s.common_precision_pm["easy"])  # the same two atoms


def test_training_writes_weights_and_resumes_nothing_behind(tmp_path):
    store = lib.make_library(
        tmp_path / "lib.zarr",
        replace(HELD_OUT, shape=(64, 64)),
        n_images=4,
        seed=0,
        scheduler="synchronous",
        progress=False,
    )
    library = load_library(store)
    assert library["noisy"].shape == (4, 64, 64) and len(library["positions"]) == 4
    config = SegmenterConfig(
        steps=3, batch_size=2, crop=64, width=4, depth=2, validation=1, validate_every=3, flatten=True
    )
    result = train_segmenter(library, tmp_path / "seg.pt", config, progress=False)
    out, history = result.weights, result.history
    net, meta = load_model(out)
    assert meta["task"] == "atom-segmentation" and len(history) == 3 and "val_f1" in history[-1]
    assert result.validation == meta["validation"] and result.validation["val_f1"] == history[-1]["val_f1"]
    assert meta["train_config"]["flatten"]
    assert 0 < len(meta["library_crystals"]) and set(meta["library_crystals"]) <= {"GaN [100]", "MgO [100]", "W [111]"}
    assert not (tmp_path / "seg.ckpt").exists() and (tmp_path / "seg.csv").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        find_atoms(library["noisy"][0], model=out)  # a trained file is a model


def test_atoms_cli_writes_a_table_and_an_overlay(tmp_path, capsys, shipped):
    item = lib.library_item(2, replace(HELD_OUT, sampling=(0.1, 0.1), stem_dose=(1e6, 1e6)), 15)
    img = item["noisy"][0]
    png = tmp_path / "frame.png"
    Image.fromarray(np.round(img / img.max() * 255).astype(np.uint8)).save(png)
    assert main(["atoms", str(png), "--sampling", "0.1", "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "frame_atoms.csv")
    assert {"x", "y", "row", "col", "confidence", "intensity", "frame"} <= set(table) and len(table) > 20
    assert (tmp_path / "out" / "frame_atoms.png").exists()
    assert "atoms (0.1 Å/px)" in capsys.readouterr().out
    colour = np.dstack(
        [np.asarray(Image.open(png)), np.zeros_like(np.asarray(Image.open(png))), np.asarray(Image.open(png))]
    )
    Image.fromarray(colour.astype(np.uint8)).save(tmp_path / "colour.png")
    assert main(["atoms", str(tmp_path / "colour.png"), "--out", str(tmp_path / "out")]) == 2
    assert "colour" in capsys.readouterr().err


def test_library_cli_regenerates_a_library(tmp_path, capsys):
    out = tmp_path / "lib.zarr"
    args = ["library", str(out), "--n-images", "2", "--size", "48", "--seed", "3", "--scheduler", "synchronous"]
    assert main(args) == 0
    from atomtools.storage import open_dataset

    ds = open_dataset(out)
    assert len(ds) == 2 and ds.attrs["seed"] == 3
    np.testing.assert_array_equal(
        np.asarray(ds.noisy[0]), lib.library_item(0, lib.LibraryConfig(shape=(48, 48)), 3)["noisy"][0]
    )


def test_dark_contrast_is_the_inverted_frame(tiny):
    frame = np.random.default_rng(3).gamma(2.0, 10.0, (64, 64)).astype(np.float32)
    offset, scale = 5.0, 40.0
    dark = segment(frame, model=tiny, stats=(-offset - scale, scale), contrast="dark")  # the view is -frame
    bright = segment(100.0 - frame, model=tiny, stats=(100.0 - offset - scale, scale))
    np.testing.assert_allclose(dark["mask"], bright["mask"], atol=1e-6)
    np.testing.assert_allclose(dark["denoised"], 100.0 - bright["denoised"], atol=1e-3)
    with pytest.raises(ValueError, match="contrast must be"):
        segment(frame, model=tiny, contrast="abf")


def test_real_abf_with_dark_contrast_finds_the_adf_atoms(shipped):
    """atomap's ADF/ABF pair, acquired together (real data, 9.33 pm/px): the ADF atoms are dark in the ABF."""
    from atomtools import readers

    atomap = pytest.importorskip("atomap")
    from pathlib import Path

    folder = Path(atomap.__file__).parent / "tests" / "datasets"
    if not (folder / "test_ADF_cropped.hdf5").exists():
        pytest.skip("atomap's test datasets are not installed")
    adf = readers.read_frames(folder / "test_ADF_cropped.hdf5", units="nm")  # the file's scale has no unit: nm
    abf = readers.read_frames(folder / "test_ABF_cropped.hdf5", units="nm")
    s = adf.sampling
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        heavy = find_atoms(np.asarray(adf.frame(0), np.float32), sampling=s, model=shipped)
        dark = find_atoms(np.asarray(abf.frame(0), np.float32), sampling=s, model=shipped, contrast="dark")
    assert len(heavy) > 20
    sc = evaluation.score_atoms(
        dark[["col", "row"]].to_numpy(), heavy[["col", "row"]].to_numpy(), shape=adf.frame(0).shape, sampling=s
    )
    assert sc["tp"] >= 0.8 * (sc["tp"] + sc["fn"])  # the ADF atoms are found in the ABF frame


def test_a_flattening_segmenter_sees_no_offset_or_gradient_and_gives_it_back(tiny):
    """Weights trained on frames less their background level: the level leaves the input, returns to the maps."""
    from atomtools.localize.atoms import flattens

    net, meta = tiny
    flat = (net, {**meta, "train_config": {"flatten": True}})
    assert flattens(flat[1]) and not flattens(meta)
    frame = np.random.default_rng(5).gamma(2.0, 10.0, (96, 96)).astype(np.float32)
    a = segment(frame, model=flat, sampling=0.1)
    b = segment(frame + 500.0, model=flat, sampling=0.1)  # a detector offset
    np.testing.assert_allclose(a["mask"], b["mask"], atol=1e-5)
    np.testing.assert_allclose(b["denoised"] - a["denoised"], 500.0, atol=0.05)
    ramp = 0.8 * np.mgrid[0:96, 0:96][1].astype(np.float32)  # a gradient of 76 counts: the input hardly moves
    c = segment(frame + ramp, model=flat, sampling=0.1)
    assert np.abs(c["mask"] - a["mask"])[24:-24, 24:-24].max() < 0.05
    d = segment(frame + ramp, model=tiny, sampling=0.1)  # a network trained without: it sees the gradient
    assert np.abs(d["mask"] - a["mask"]).max() > np.abs(c["mask"] - a["mask"])[24:-24, 24:-24].max()


def test_training_on_two_stores_joins_them(tmp_path):
    out = [tmp_path / "a.zarr", tmp_path / "b.zarr"]
    cfg = lib.LibraryConfig(shape=(48, 48))
    lib.make_library(out[0], cfg, n_images=2, seed=1, scheduler="synchronous", progress=False)
    lib.make_library(out[1], cfg, n_images=3, seed=2, scheduler="synchronous", progress=False)
    joined = load_library(out)
    assert len(joined["noisy"]) == 5 and len(joined["positions"]) == 5 and len(joined["params"]) == 5
    np.testing.assert_array_equal(joined["noisy"][2], load_library(out[1])["noisy"][0])
    small = tmp_path / "c.zarr"
    lib.make_library(
        small, lib.LibraryConfig(shape=(32, 32)), n_images=1, seed=1, scheduler="synchronous", progress=False
    )
    with pytest.raises(ValueError, match="sizes"):
        load_library([out[0], small])


def test_held_out_frames_are_the_same_structures_at_every_dose_in_either_mode():
    haadf = evaluation.held_out_frames(doses=(1e4, 1e6), n_images=2, shape=(48, 48))
    assert [f["crystal"] for f in haadf] == ["GaN [100]", "GaN [100]", "MgO [100]", "MgO [100]"]
    np.testing.assert_array_equal(haadf[0]["xy"], haadf[1]["xy"])  # only the dose, and so the noise, changes
    assert haadf[1]["image"].mean() == pytest.approx(100 * haadf[0]["image"].mean(), rel=0.05)
    hrtem = evaluation.held_out_frames(doses=(1e3,), n_images=1, shape=(48, 48), mode="hrtem")
    assert hrtem[0]["mode"] == "hrtem" and haadf[0]["mode"] == "haadf"
    assert hrtem[0]["image"].mean() == pytest.approx(1e3 * hrtem[0]["sampling"] ** 2, rel=0.2)  # phase contrast: ~all
    with pytest.raises(ValueError, match="mode must be"):
        evaluation.held_out_frames(doses=(1e3,), n_images=1, mode="abf")


def test_refining_on_the_denoised_image_moves_atoms_to_their_centres_and_refuses_unknown_modes(tiny):
    from atomtools.localize import refine_positions
    from atomtools.simulation.stem import splat_gaussians

    rc = np.array([[10.3, 12.6], [30.7, 40.2], [50.1, 20.9]])
    image = splat_gaussians((64, 64), rc, sigma=2.0)
    start = rc[:, ::-1] + np.array([[0.4, -0.3], [-0.3, 0.4], [0.2, 0.2]])  # (x, y), off by up to half a pixel
    fine = refine_positions(image, start, radius=4)
    assert np.abs(fine - rc[:, ::-1]).max() < 0.05 < np.abs(start - rc[:, ::-1]).max()
    far = refine_positions(image, np.array([[5.0, 60.0]]), radius=2)  # nothing there: the start is kept
    np.testing.assert_allclose(far, [[5.0, 60.0]])
    with pytest.raises(ValueError, match="refine must be"):
        find_atoms(image, model=tiny, refine="gaussian")


def test_refining_a_dark_frame_keeps_the_intensities_of_its_denoised_map(shipped):
    item = lib.library_item(1, replace(HELD_OUT, sampling=(0.1, 0.1), stem_dose=(1e6, 1e6)), 15)
    dark = 1000.0 - item["noisy"][0]  # atoms dark, as in bright field
    by_mask = find_atoms(dark, sampling=0.1, model=shipped, contrast="dark")
    refined = find_atoms(dark, sampling=0.1, model=shipped, contrast="dark", refine="denoised")
    assert len(refined) == len(by_mask) > 20
    # positions move by a fraction of a pixel; intensities stay those of the map (dark atoms: below 1000)
    assert np.abs(refined[["col", "row"]].to_numpy() - by_mask[["col", "row"]].to_numpy()).max() < 1.5
    np.testing.assert_allclose(refined.intensity, by_mask.intensity, rtol=0.05)


def test_a_gaussian_fit_places_noisy_columns_better_than_its_start_and_states_its_noise():
    from atomtools.localize.fitting import fit_gaussians

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:96]
    true = np.array(
        [
            [20.0 + 16 * i + rng.uniform(-0.5, 0.5), 20.0 + 16 * j + rng.uniform(-0.5, 0.5)]
            for i in range(4)
            for j in range(4)
        ]
    )  # (x, y)
    clean = 2.0 + sum(40 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.6**2)) for x, y in true)
    start = true + rng.normal(0, 0.4, true.shape)
    errors, sigmas = [], []
    for _ in range(20):
        noisy = rng.poisson(clean).astype(float)
        out = fit_gaussians(noisy, start, radius=6)
        assert out["ok"].all()
        errors.append(out["xy"] - true)
        sigmas.append(out["sigma"])
    rms = np.sqrt(np.mean(np.square(errors)))
    assert rms < 0.15 < np.sqrt(np.mean((start - true) ** 2))
    assert 0.4 < np.mean(sigmas) / rms < 1.0  # a lower bound: the unweighted fit's covariance on Poisson counts
    # nothing to fit: the start stays and the fit says it failed
    flat = fit_gaussians(np.full((32, 32), 5.0), np.array([[16.0, 16.0]]), radius=4)
    assert not flat["ok"][0] and np.isinf(flat["sigma"][0])
    np.testing.assert_allclose(flat["xy"], [[16.0, 16.0]])
    with pytest.raises(ValueError, match="radius must be"):
        fit_gaussians(clean, start, radius=float("inf"))


def test_find_atoms_refined_by_a_fit_moves_atoms_by_a_fraction_of_a_pixel(shipped):
    item = lib.library_item(1, replace(HELD_OUT, sampling=(0.1, 0.1), stem_dose=(1e6, 1e6)), 15)
    by_mask = find_atoms(item["noisy"][0], sampling=0.1, model=shipped)
    fitted = find_atoms(item["noisy"][0], sampling=0.1, model=shipped, refine="fit")
    assert len(fitted) == len(by_mask) > 20
    moved = np.hypot(*(fitted[["col", "row"]].to_numpy() - by_mask[["col", "row"]].to_numpy()).T)
    assert 0 < moved.max() <= 0.3 / 0.1 + 1e-9  # never further than 0.3 Å from the detection
    assert np.median(moved) < 0.5
    np.testing.assert_allclose(fitted.x, fitted.col * 0.1)

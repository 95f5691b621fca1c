"""Training: the loss, deterministic batches, exact resume, weights files, DDP under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from atomtools import simulation as simulate
from atomtools.columns import task as train
from atomtools.models import MODEL_FORMAT, UNet, UNetConfig, load_model, save_model
from atomtools.registry import unet_setup
from atomtools.storage import open_dataset

SMALL = dict(shape=(64, 64), sampling=0.2, size=(6.0, 9.0), images_per_structure=2, thickness=(1, 4))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.zarr"
    return simulate.make_dataset(
        path, simulate.SimulationConfig(**SMALL), n_structures=3, seed=4, scheduler="synchronous", progress=False
    )


def test_weighted_cross_entropy_reduces_to_the_usual_one():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, 7)
    labels = torch.randint(0, 5, (2, 7, 7))
    onehot = torch.nn.functional.one_hot(labels, 5).permute(0, 3, 1, 2).float()
    ours = train.weighted_soft_cross_entropy(logits, onehot, torch.ones(2, 7, 7))
    assert float(ours) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, labels)), rel=1e-6)
    w = torch.zeros(2, 7, 7)
    w[0, 3, 3] = 1.0
    single = train.weighted_soft_cross_entropy(logits, onehot, w)
    assert float(single) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits[:1, :, 3:4, 3:4], labels[:1, 3:4, 3:4])), rel=1e-6
    )


def test_batches_depend_on_the_step_only_and_keep_labels_aligned(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    cfg = train.TrainConfig(crop=32, batch_size=3)
    a = train.SegmentationBatches(ds, np.arange(len(ds)), cfg, n_classes=13).batch(5)
    b = train.SegmentationBatches(ds, np.arange(len(ds)), cfg, n_classes=13).batch(5)
    c = train.SegmentationBatches(ds, np.arange(len(ds)), cfg, n_classes=13).batch(6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["x"], c["x"])
    assert a["x"].shape == (3, 1, 32, 32) and a["target"].shape == (3, 2, 13, 32, 32)
    assert torch.allclose(a["target"].sum(2), torch.ones(3, 2, 32, 32), atol=1e-5)
    assert torch.allclose(a["x"].mean(dim=(1, 2, 3)), torch.ones(3), atol=1e-4)
    column = a["labels"][:, 0] > 0
    assert torch.all(a["target"][:, 0].argmax(1)[column] == a["labels"][:, 0][column]) or column.sum() == 0


def test_killed_training_resumes_to_the_same_weights(tiny_dataset, tmp_path, monkeypatch):
    cfg = train.TrainConfig(
        steps=6, crop=32, batch_size=2, validate_every=3, validation_images=2, checkpoint_every=0.0, lr=1e-2
    )
    model_cfg = UNetConfig(width=4, depth=2, stem=1)
    straight = train.train_unet(tiny_dataset, tmp_path / "a.pt", model_config=model_cfg, config=cfg, progress=False)
    real = train.SegmentationBatches.batch

    def dying(self, step, **kw):
        if step == 4:
            raise KeyboardInterrupt("killed")
        return real(self, step, **kw)

    monkeypatch.setattr(train.SegmentationBatches, "batch", dying)
    with pytest.raises(KeyboardInterrupt):
        train.train_unet(tiny_dataset, tmp_path / "b.pt", model_config=model_cfg, config=cfg, progress=False)
    assert (tmp_path / "b.ckpt").exists() and not (tmp_path / "b.pt").exists()
    monkeypatch.setattr(train.SegmentationBatches, "batch", real)
    resumed = train.train_unet(tiny_dataset, tmp_path / "b.pt", model_config=model_cfg, config=cfg, progress=False)
    a, _ = load_model(tmp_path / "a.pt")
    b, _ = load_model(tmp_path / "b.pt")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]
    assert (tmp_path / "b.csv").read_text().count("\n") == 7


def test_checkpoint_of_other_settings_is_refused(tiny_dataset, tmp_path):
    cfg = train.TrainConfig(steps=2, crop=32, batch_size=2, validate_every=1, validation_images=1)
    model_cfg = UNetConfig(width=4, depth=2)
    train.train_unet(tiny_dataset, tmp_path / "m.pt", model_config=model_cfg, config=cfg, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train.train_unet(
            tiny_dataset,
            tmp_path / "m.pt",
            model_config=model_cfg,
            config=cfg.__class__(
                **{**cfg.to_dict(), "lr": 0.5, "dose": tuple(cfg.dose), "intensity_scale": tuple(cfg.intensity_scale)}
            ),
            progress=False,
        )


def test_weights_round_trip_without_unpickling(tmp_path):
    model = UNet(UNetConfig(width=4, depth=2, heads=(3, 2)))
    path = save_model(
        tmp_path / "w.pt", model, metadata={"sampling": 0.2, "temperature": [1.5, 0.9], "channels": [["Ce"], ["O"]]}
    )
    loaded, meta = load_model(path)
    assert meta["temperature"] == [1.5, 0.9] and loaded.config == model.config
    x = torch.randn(1, 1, 16, 16)
    model.eval()
    assert torch.allclose(loaded(x), model(x))
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an atomtools U-Net"):
        load_model(tmp_path / "other.pt", expected=MODEL_FORMAT)


def test_fused_inference_model_matches_the_trained_one():
    from atomtools.models import fuse_for_inference

    torch.manual_seed(0)
    model = UNet(UNetConfig(width=6, depth=2, stem=2))
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.randn(2, 1, 32, 32)
    fused = fuse_for_inference(model)
    assert torch.allclose(fused(x.contiguous(memory_format=torch.channels_last)), model(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())


def test_profiles_give_model_and_training_settings():
    model, cfg, init = unet_setup("quick")
    assert model.multiple == 16 and cfg.crop % model.multiple == 0 and init == "pretrained"
    model, cfg, init = unet_setup("paper", init="random")
    assert init is None
    with pytest.raises(ValueError):
        train.TrainConfig(steps=0)


@pytest.mark.slow
def test_ddp_under_torchrun_runs_unchanged(tiny_dataset, tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "atomtools",
        "train-unet",
        str(tiny_dataset),
        str(out),
        "--profile",
        "smoke",
        "--init",
        "random",
        "--steps",
        "3",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model, meta = load_model(out)
    assert meta["train_config"]["steps"] == 3
    assert out.with_suffix(".md").read_text().startswith("# Model card")


def test_microscope_effects_are_drawn_per_sample_and_keep_the_labels(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    index = np.arange(len(ds))
    plain = train.TrainConfig(crop=32, batch_size=2)
    rough = train.TrainConfig(
        crop=32, batch_size=2, microscope={"background": (0.1, 0.3), "blur": (0.1, 0.3), "mtf": (0.6, 1.0)}
    )
    a = train.SegmentationBatches(ds, index, plain, n_classes=13).batch(3)
    b = train.SegmentationBatches(ds, index, rough, n_classes=13).batch(3)
    again = train.SegmentationBatches(ds, index, rough, n_classes=13).batch(3)
    assert torch.equal(b["x"], again["x"]) and not torch.equal(a["x"], b["x"])
    assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["target"], b["target"])

    def high_frequency(x):  # the detector blur correlates neighbouring pixels
        return float((x[..., 1:, :] - x[..., :-1, :]).pow(2).mean())

    assert high_frequency(b["x"]) < 0.5 * high_frequency(a["x"])


TRAINERS = [
    ("atomtools.columns.task", "train_unet"),
    ("atomtools.columns.counter_task", "train_counter"),
    ("atomtools.localize.task", "train_segmenter"),
    ("atomtools.tomo.task", "train_inpainter"),
    ("atomtools.tomo.task", "train_refiner"),
    ("atomtools.tomo.unrolled", "train_unrolled"),
]


@pytest.mark.parametrize("module, name", TRAINERS)
def test_every_trainer_has_one_shape(module, name):
    """``train_*(data, out, config, *, init=None, ...) -> TrainResult``: data first, then the file, then settings."""
    import importlib
    import inspect

    from atomtools.training import TrainResult

    func = getattr(importlib.import_module(module), name)
    params = list(inspect.signature(func).parameters.values())
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert len(positional) == 3 and positional[1:] == ["out", "config"], positional
    assert all(p.kind is p.KEYWORD_ONLY for p in params[3:])
    assert "progress" in {p.name for p in params[3:]}
    assert inspect.signature(func).parameters["init"].default is None
    assert inspect.signature(func).return_annotation in (TrainResult, "TrainResult")


def test_every_trainer_is_listed():
    """A new ``train_*`` in the package is held to the shape above."""
    import importlib
    import pkgutil

    import atomtools

    found = set()
    for info in pkgutil.walk_packages(atomtools.__path__, "atomtools."):
        module = importlib.import_module(info.name)
        found |= {
            (obj.__module__, n)
            for n in getattr(module, "__all__", [])
            if n.startswith("train_") and callable(obj := getattr(module, n))
        }
    assert found == set(TRAINERS)

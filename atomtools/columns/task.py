"""The U-Net task: learn atoms per column from noisy HRTEM images of a simulated dataset.

A spatially weighted cross-entropy on smoothed targets (:mod:`atomtools.core.labels`),
with Poisson noise drawn afresh at a random dose for every sample of every step, so the
network never sees the same noise twice. :func:`train_unet` describes this as a
:class:`atomtools.training.Task` and runs it on the shared loop
(:func:`atomtools.training.fit`): exact resume, DDP under ``torchrun``, CSV log. Every
draw of step ``t`` (images, crops, flips, dose, shot noise) comes from
``default_rng([seed, t, slot])``. After training, one temperature per head is fitted on
held-out structures and the weights are written with their metadata and model card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..core import labels as _labels
from ..core.imaging import normalize, poisson_noise
from ..data import fetch
from ..models import MODEL_FORMAT, UNet, UNetConfig, load_model, save_model
from ..models import model_card as _model_card
from ..storage import Dataset, open_dataset
from ..training import OptimizerSpec, Task, TrainResult, distributed, fit_beside, fit_temperature, random_dihedral
from ..utils import Record
from .retrieval import PRETRAINED, load_retriever, retrieve

__all__ = [
    "TrainConfig",
    "SegmentationBatches",
    "weighted_soft_cross_entropy",
    "split_structures",
    "train_unet",
    "column_calibration",
    "unet_card",
]


@dataclass(frozen=True)
class TrainConfig(Record):
    """Settings of a U-Net training run.

    Attributes
    ----------
    steps : int
        Optimizer steps.
    batch_size : int
        Crops per step (over all DDP ranks).
    crop : int
        Crop size [px]; a multiple of the model's ``multiple``.
    lr : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW weight decay.
    warmup : float
        Fraction of the steps spent warming the learning rate up.
    seed : int
        Seed of the initial weights and of every draw of every step.
    target_edge : float
        Width of the smooth edge of the target masks toward the background [Å].
    o_weight : float
        Weight of the O head's loss relative to the Ce head's.
    dose : (float, float)
        Electron dose range of the on-the-fly noise [e/Å²], drawn log-uniformly.
    microscope : dict
        What a microscope adds to each sample, drawn per sample when given (empty: the
        same batches as before these existed): ``background``, the range of a uniform
        background added to the clean intensity (inelastic scattering, an amorphous
        film) in units of the vacuum intensity; ``blur``, the range of a drift or
        vibration blur [Å] (standard deviation along a random direction) of the clean
        intensity; ``mtf``, the range of a detector blur [px] (Gaussian standard
        deviation) of the counts, noise included, as a detector's modulation transfer
        function does.
    intensity_scale : (float, float)
        Range of a random scale of the clean intensity (label-preserving).
    column_crop_fraction : float
        Fraction of crops centred on a column (the rest anywhere).
    validation_images : int
        Held-out images scored at each validation.
    validate_every : int
        Steps between validations.
    checkpoint_every : float
        Seconds between checkpoints.
    """

    strict = False  # settings of other versions are ignored, not refused

    steps: int = 1000
    batch_size: int = 8
    crop: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05
    seed: int = 0
    target_edge: float = 0.1
    o_weight: float = 0.5
    dose: tuple[float, float] = (100.0, 5000.0)
    intensity_scale: tuple[float, float] = (0.9, 1.1)
    microscope: dict = field(default_factory=dict)
    column_crop_fraction: float = 0.8
    validation_images: int = 32
    validate_every: int = 100
    checkpoint_every: float = 180.0

    def __post_init__(self):
        for name in ("steps", "batch_size", "crop", "validation_images", "validate_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not self.target_edge > 0:
            raise ValueError("TrainConfig.lr and target_edge must be positive")
        unknown = set(self.microscope) - {"background", "blur", "mtf"}
        if unknown:
            raise ValueError(f"TrainConfig.microscope: unknown {sorted(unknown)}; known: background, blur, mtf")
        if not 0 < self.dose[0] <= self.dose[1]:
            raise ValueError(f"TrainConfig.dose must be a positive (low, high) range [e/Å²], got {self.dose}")


def split_structures(dataset: Dataset, *, validation_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Image indices for training and validation, split by structure (no structure in both).

    Parameters
    ----------
    dataset : Dataset
        The training set.
    validation_fraction : float
        Share of the structures held out (the last ones).

    Returns
    -------
    tuple of numpy.ndarray
        ``(train, validation)`` image indices; a one-structure dataset gives the same indices for both.
    """
    k = dataset.images_per_structure
    n_struct = len(dataset) // k
    n_val = max(1, int(math.ceil(validation_fraction * n_struct))) if n_struct > 1 else 0
    train_s = np.arange(n_struct - n_val)
    val_s = np.arange(n_struct - n_val, n_struct)
    expand = lambda s: (s[:, None] * k + np.arange(k)[None, :]).ravel()  # noqa: E731
    train, val = expand(train_s), expand(val_s)
    if not len(val):  # a one-structure dataset validates on itself
        val = train
    return train, val


def _directional_blur(image: np.ndarray, sigma: float, angle: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` [px] along the in-plane direction ``angle`` [degrees]."""
    from scipy import ndimage

    half = int(np.ceil(3 * sigma))
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
    along = xx * np.cos(np.radians(angle)) + yy * np.sin(np.radians(angle))
    across = -xx * np.sin(np.radians(angle)) + yy * np.cos(np.radians(angle))
    kernel = np.exp(-0.5 * (along / sigma) ** 2 - 0.5 * (across / 0.3) ** 2)
    return ndimage.convolve(image, kernel / kernel.sum(), mode="reflect")


def _degrade(clean: np.ndarray, cfg, rng: np.random.Generator, *, dose: float, sampling: float) -> np.ndarray:
    """Counts as a microscope records them: background, drift blur, shot noise, detector blur.

    Each effect draws from ``rng`` only when its range is not zero, so a configuration
    without them gives the same counts as before they existed.
    """
    from scipy import ndimage

    effects = cfg.microscope
    if "background" in effects:
        clean = clean + rng.uniform(*effects["background"])
    if "blur" in effects:
        sigma, angle = rng.uniform(*effects["blur"]) / sampling, rng.uniform(0, 180)
        clean = _directional_blur(clean, sigma, angle) if sigma > 0.05 else clean
    counts = poisson_noise(clean, dose=dose, sampling=sampling, rng=rng)
    if "mtf" in effects:
        counts = ndimage.gaussian_filter(counts, rng.uniform(*effects["mtf"]))
    return counts


class SegmentationBatches:
    """Deterministic batches of noisy crops and smoothed targets from a dataset store.

    ``batch(step)`` depends on ``(seed, step)`` only: the same step gives the same
    batch in a fresh process, which makes resumed training exact.

    Parameters
    ----------
    dataset : Dataset
        The training set.
    indices : numpy.ndarray
        Images drawn from.
    config : TrainConfig
        Crop size, doses, seed.
    n_classes : int
        Classes of the targets.
    multiple : int
        The network's stride: crops must be multiples of it [px].
    """

    def __init__(
        self, dataset: Dataset, indices: np.ndarray, config: TrainConfig, *, n_classes: int, multiple: int = 1
    ):
        self.ds = dataset
        self.indices = np.asarray(indices)
        self.config = config
        self.n_classes = n_classes
        self.sampling = dataset.sampling
        h, w = dataset.group["clean"].shape[-2:]
        if config.crop > min(h, w):
            raise ValueError(f"crop {config.crop} px is larger than the dataset's {h}x{w} px images")
        if config.crop % multiple:
            raise ValueError(f"crop {config.crop} px must be a multiple of {multiple} px for this model")
        self.radius = float(dataset.attrs.get("label_radius", 0.6))

    def sample(self, step: int, slot: int) -> dict[str, np.ndarray]:
        """Sample ``slot`` of step ``step``: ``x``, ``target``, ``weights``, ``labels``, ``dose``.

        Parameters
        ----------
        step, slot : int
            Step and position in its batch.
        """
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, step, slot])
        i = int(self.indices[rng.integers(len(self.indices))])
        clean = self.ds.clean[i]
        distance = self.ds.distance[i].astype(np.float32)
        nearest = self.ds.nearest[i]
        weights = self.ds.weights[i]
        h, w = clean.shape
        c = cfg.crop
        columns = np.argwhere(distance[0] <= self.radius)
        if len(columns) and rng.random() < cfg.column_crop_fraction:
            cy, cx = columns[rng.integers(len(columns))]
            r0 = int(np.clip(cy - c // 2 + rng.integers(-c // 4, c // 4 + 1), 0, h - c))
            c0 = int(np.clip(cx - c // 2 + rng.integers(-c // 4, c // 4 + 1), 0, w - c))
        else:
            r0, c0 = int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1))
        win = (slice(r0, r0 + c), slice(c0, c0 + c))
        clean, distance, nearest, weights = (
            clean[win],
            distance[(slice(None), *win)],
            nearest[(slice(None), *win)],
            weights[win],
        )
        clean, distance, nearest, weights = random_dihedral(rng, [clean, distance, nearest, weights])
        dose = float(np.exp(rng.uniform(np.log(cfg.dose[0]), np.log(cfg.dose[1]))))
        scale = float(rng.uniform(*cfg.intensity_scale))
        x = normalize(_degrade(clean * scale, cfg, rng, dose=dose, sampling=self.sampling))
        target = _labels.soft_targets(
            distance, nearest, radius=self.radius, edge=cfg.target_edge, n_classes=self.n_classes
        )
        hard = _labels.label_maps(distance, nearest, radius=self.radius)
        return {"x": x[None], "target": target, "weights": weights, "labels": hard, "dose": dose}

    def batch(self, step: int, *, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
        """This rank's share of step ``step``'s batch, as tensors.

        Parameters
        ----------
        step : int
            The step.
        rank, world : int
            This process's rank and the number of processes (DDP).
        """
        slots = [b for b in range(self.config.batch_size) if b % world == rank]
        items = [self.sample(step, b) for b in slots]
        return {
            "x": torch.from_numpy(np.stack([it["x"] for it in items])),
            "target": torch.from_numpy(np.stack([it["target"] for it in items])),
            "weights": torch.from_numpy(np.stack([it["weights"] for it in items])),
            "labels": torch.from_numpy(np.stack([it["labels"] for it in items]).astype(np.int64)),
        }


def weighted_soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Spatially weighted cross-entropy against soft targets.

    Parameters
    ----------
    logits : Tensor
        (B, C, H, W) class scores.
    target : Tensor
        (B, C, H, W) target probabilities.
    weights : Tensor
        (B, H, W) per-pixel weights.

    Returns
    -------
    Tensor
        ``sum(w * CE) / sum(w)``.

    Examples
    --------
    >>> logits = torch.zeros(1, 2, 1, 1); target = torch.tensor([[[[1.0]], [[0.0]]]])
    >>> round(float(weighted_soft_cross_entropy(logits, target, torch.ones(1, 1, 1))), 4)  # log 2
    0.6931
    """
    ce = -(target * torch.log_softmax(logits, dim=1)).sum(dim=1)
    return (weights * ce).sum() / weights.sum().clamp_min(1e-12)


def _unet_step(net, batch, optimize, *, heads, o_weight) -> dict:
    """One step: the weighted cross-entropy of every head (heads after the first weigh ``o_weight``)."""
    logits = net(batch["x"])
    parts = torch.split(logits, list(heads), dim=1)
    loss = weighted_soft_cross_entropy(parts[0], batch["target"][:, 0], batch["weights"])
    for h in range(1, len(parts)):
        loss = loss + o_weight * weighted_soft_cross_entropy(parts[h], batch["target"][:, h], batch["weights"])
    optimize("unet", loss)
    return {"loss": float(loss.detach())}


def _validation_set(ds: Dataset, indices: np.ndarray, config: TrainConfig):
    """Fixed noisy validation images: image k at a dose spread log-uniformly over the range."""
    n = min(config.validation_images, len(indices))
    pick = indices[np.linspace(0, len(indices) - 1, n).astype(int)]
    doses = np.geomspace(config.dose[0], config.dose[1], n)
    radius = float(ds.attrs.get("label_radius", 0.6))
    xs, hard = [], []
    for k, (i, dose) in enumerate(zip(pick, doses)):
        rng = np.random.default_rng([config.seed, 10**6, k])
        xs.append(normalize(poisson_noise(ds.clean[int(i)], dose=float(dose), sampling=ds.sampling, rng=rng)))
        hard.append(_labels.label_maps(ds.distance[int(i)].astype(np.float32), ds.nearest[int(i)], radius=radius))
    return torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(hard).astype(np.int64)), doses


def _predict(model, x: torch.Tensor, batch: int = 4) -> torch.Tensor:
    out = []
    device = next(model.parameters()).device
    for s in range(0, len(x), batch):
        out.append(model(x[s : s + batch].to(device).contiguous(memory_format=torch.channels_last)).float().cpu())
    return torch.cat(out)


def column_calibration(
    model, dataset: Dataset, indices, *, doses, seed: int = 0, radius: float = 0.7
) -> tuple[float, float]:
    """Platt scaling of the per-column confidence, fitted on held-out structures.

    The column confidence is the mean probability of the voted count over the column's
    disk, which runs below how often the count is right (it averages over the disk's
    edge). Each held-out image is retrieved at each dose, its columns matched to the
    truth, and ``(a, b)`` of :func:`atomtools.core.metrics.fit_platt` fitted to
    (confidence, count right).

    Parameters
    ----------
    model : "pretrained", path, Retriever or (UNet, metadata)
        The network (:func:`atomtools.columns.load_retriever`).
    dataset : Dataset
        Images with their truth.
    indices : sequence of int
        Held-out images.
    doses : sequence of float
        Electron doses [e/Å²].
    seed : int
        Seed of the noise.
    radius : float
        Matching radius of columns [Å].

    Returns
    -------
    (float, float) or None
        Slope and offset; None with fewer than 50 matched columns to fit them on.
    """
    from ..core.metrics import column_scores, fit_platt

    ret = load_retriever(model)
    conf, right = [], []
    for k, dose in enumerate(doses):
        for i in indices:
            frame = poisson_noise(
                dataset.clean[int(i)],
                dose=float(dose),
                sampling=dataset.sampling,
                rng=np.random.default_rng([seed, 55, k, int(i)]),
            )
            table, _ = retrieve(frame, sampling=dataset.sampling, model=ret, resample=True)
            matches = column_scores(table, dataset.columns(int(i)), radius=radius)["matches"]
            conf.append(matches["confidence"].to_numpy())
            right.append((matches["true"] == matches["pred"]).to_numpy())
    conf, right = np.concatenate(conf), np.concatenate(right)
    return fit_platt(conf, right) if len(conf) >= 50 else None


def train_unet(
    dataset: str | Path,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    model_config: UNetConfig,
    init: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train the column-counting U-Net on a simulated dataset; write weights, checkpoint, log.

    Parameters
    ----------
    dataset : path
        A finished dataset store (:func:`atomtools.make_dataset`).
    out : path
        Where the final weights go; beside it ``<name>.ckpt`` (resumable state) and
        ``<name>.csv`` (the history).
    config : TrainConfig
        Training settings.
    model_config : UNetConfig
        Architecture; its heads must match the dataset's channels and classes.
    init : path or "pretrained", optional
        Start from these weights (fine-tuning) instead of a random initialization;
        their architecture must be ``model_config``, except for the heads: weights of
        another material (other species) give their trunk, and the head starts from
        their first species' rows.

    Returns
    -------
    TrainResult
        The weights, history, final validation numbers and seconds; ``calibration``
        holds ``temperature`` (per head) and ``validation_doses`` [e/Å²].
    """
    ds = open_dataset(dataset)
    n_classes = int(ds.attrs["n_classes"])
    n_channels = int(ds.attrs["n_channels"])
    if tuple(model_config.heads) != (n_classes,) * n_channels:
        raise ValueError(
            f"model heads {model_config.heads} do not match the dataset's {n_channels} channels of {n_classes} classes"
        )
    out = Path(out)
    train_idx, val_idx = split_structures(ds)
    batches = SegmentationBatches(ds, train_idx, config, n_classes=n_classes, multiple=model_config.multiple)
    val_x, val_y, val_doses = _validation_set(ds, val_idx, config)
    if val_x.shape[-1] % model_config.multiple or val_x.shape[-2] % model_config.multiple:
        raise ValueError(
            f"dataset images {tuple(val_x.shape[-2:])} must be multiples of {model_config.multiple} px for this model"
        )

    def validate(model) -> dict:
        logits = _predict(model, val_x)
        pred = logits[:, : model_config.heads[0]].argmax(1)
        truth = val_y[:, 0]
        column = truth > 0
        return {
            "val_column_pixel_accuracy": float((pred[column] == truth[column]).float().mean()),
            "val_background_accuracy": float((pred[~column] == 0).float().mean()),
        }

    torch.manual_seed(config.seed)
    model = UNet(model_config)
    init_name = None
    if init is not None:
        if str(init) == "pretrained":
            init_name, init = "pretrained", fetch(PRETRAINED)
        start_model, _ = load_model(init, expected=MODEL_FORMAT)
        trunk_only = replace(start_model.config, heads=model_config.heads) == model_config
        if start_model.config != model_config and not trunk_only:
            raise ValueError(f"init weights {init} have architecture {start_model.config}, not {model_config}")
        state = start_model.state_dict()
        init_name = init_name or str(init)
        if tuple(start_model.config.heads) != tuple(model_config.heads):
            # another material: the trunk carries over; the head starts from the first species' rows
            own = model.state_dict()
            n = min(sum(model_config.heads), sum(start_model.config.heads))
            for key in ("head.weight", "head.bias"):
                value = own[key].clone()
                value[:n] = state[key][:n]
                state[key] = value
            init_name = f"{init_name} (trunk; heads {tuple(start_model.config.heads)} -> {tuple(model_config.heads)})"
        model.load_state_dict(state)
    task = Task(
        networks={"unet": model},
        optimizers={
            "unet": OptimizerSpec(("unet",), lr=config.lr, weight_decay=config.weight_decay, warmup=config.warmup)
        },
        batch=lambda step, rank, world: batches.batch(step, rank=rank, world=world),
        train_step=lambda nets, batch, optimize: _unet_step(
            nets["unet"], batch, optimize, heads=model_config.heads, o_weight=config.o_weight
        ),
        validate=lambda nets: validate(nets["unet"]),
        signature={
            "model": model_config.to_dict(),
            "train": config.to_dict(),
            "dataset": str(Path(dataset).resolve()),
            "n_images": len(ds),
            "init": init_name,
        },
    )
    history, _, seconds = fit_beside(
        task, out, config, progress=progress, desc=f"training U-Net ({config.steps} steps)"
    )
    model = model.cpu().eval()
    with torch.no_grad():
        logits = _predict(model, val_x)
    temperatures = []
    for h, part in enumerate(torch.split(logits, list(model_config.heads), dim=1)):
        z = part.permute(0, 2, 3, 1).reshape(-1, part.shape[1])
        y = val_y[:, h].reshape(-1)
        keep = torch.from_numpy(np.random.default_rng(config.seed).permutation(len(y))[:200_000])
        temperatures.append(fit_temperature(z[keep], y[keep]))
    final = {k: v for k, v in history[-1].items() if k.startswith("val_")}
    calibrated = {"sampling": ds.sampling, "temperature": temperatures, "channels": ds.attrs["channels"]}
    doses = np.geomspace(config.dose[0], config.dose[1], 3)
    platt = column_calibration(
        (model, calibrated), ds, val_idx[: config.validation_images], doses=doses, seed=config.seed
    )
    rank, _ = distributed()
    if rank == 0:
        save_model(
            out,
            model,
            metadata={
                "sampling": ds.sampling,
                "energy": float(ds.attrs["energy"]),
                "n_classes": n_classes,
                "channels": ds.attrs["channels"],
                "temperature": temperatures,
                "column_calibration": list(platt) if platt else None,
                "normalization": "divide by the frame mean",
                "train_config": config.to_dict(),
                "dataset": {
                    "path": str(dataset),
                    "n_images": len(ds),
                    "config": ds.attrs["config"],
                    "seed": ds.attrs["seed"],
                },
                "validation": final,
                "init": init_name,
                "training_seconds": seconds,
                "versions": {"torch": str(torch.__version__)},
            },
        )
    return TrainResult(
        weights=out,
        history=history,
        validation=final,
        seconds=seconds,
        calibration={"temperature": temperatures, "validation_doses": val_doses.tolist()},
    )


def unet_card(path: str | Path, *, extra: str = "") -> str:
    """The markdown model card of U-Net weights written by :func:`train_unet`.

    Parameters
    ----------
    path : str or Path
        The weights file.
    extra : str
        Further markdown appended at the end.

    Returns
    -------
    str
        The model card, markdown.
    """
    _, meta = load_model(path, expected=MODEL_FORMAT)
    tc = meta.get("train_config", {})
    ds = meta.get("dataset", {})
    dcfg = ds.get("config", {})
    mat = dcfg.get("material") or {}
    name, zone = mat.get("name", "the training material"), "".join(str(v) for v in mat.get("zone_axis", (1, 1, 0)))
    heads = meta["config"]["heads"]
    channels = ", ".join(c[0] for c in meta.get("channels", []))
    return _model_card(
        path,
        summary=(
            f"U-Net that classifies every pixel of a noisy HRTEM image of {name} seen along "
            f"[{zone}] as background or as an atomic column with its number of atoms (one head per "
            f"column species: {channels}; classes: background, 1..{heads[0] - 1} atoms, thicker clipped)."
        ),
        use=(
            "`atomtools.retrieve(frame, sampling=...)` (frames at other samplings are refused or, "
            "with `resample=True`, resampled). Input: one frame divided by its mean; sampling "
            f"{meta['sampling']} Å/px; energy {meta.get('energy', 0) / 1e3:.0f} keV."
        ),
        data=(
            f"{ds.get('n_images', '?')} simulated images (abTEM multislice, seed "
            f"{ds.get('seed', '?')}): profiles {dcfg.get('profiles')}, sizes {dcfg.get('size')} Å, "
            f"{dcfg.get('thickness')} atoms per column, tilt up to {dcfg.get('tilt')}°, defocus "
            f"{dcfg.get('defocus')} Å, Cs {dcfg.get('Cs')} Å, C5 {dcfg.get('C5')} Å, "
            f"focal spread σ {dcfg.get('focal_spread')} Å, aperture {dcfg.get('aperture')} mrad; "
            f"Poisson noise redrawn every step at doses {tc.get('dose')} e/Å²."
        ),
        limits=(
            f"Trained on simulations only: {name} [{zone}], the optics ranges above. Outside "
            "them (other materials, zone axes, samplings, strong drift or contamination) expect "
            "lower accuracy; 04_evaluate measures it out of range."
        ),
        extra=extra,
    )

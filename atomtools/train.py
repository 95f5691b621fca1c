"""Training: one loop for every network, and the U-Net task on the simulated datasets.

:func:`fit` is the loop every model in atomtools trains with: AdamW with a warm-up
and cosine schedule, channels_last, a tqdm bar with the loss and the validation
score, a CSV log, and a checkpoint every few minutes from which a killed run resumes
to the same result. Resumption is exact because every random draw of step ``t``
(images, crops, flips, dose, shot noise) comes from ``default_rng([seed, t, ...])``
and the model starts from ``torch.manual_seed(seed)``. Under ``torchrun`` the loop
runs data-parallel (DDP): each rank takes its share of every batch, rank 0 writes.

:func:`train_unet` is the U-Net task: a spatially weighted cross-entropy on smoothed
targets, with Poisson noise drawn afresh at a random dose for every sample of every
step, so the network never sees the same noise twice.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import labels as _labels
from .imaging import normalize, poisson_noise
from .models.unet import UNet, UNetConfig
from .store import Dataset, open_dataset

__all__ = [
    "TrainConfig",
    "SegmentationBatches",
    "weighted_soft_cross_entropy",
    "fit",
    "fit_temperature",
    "train_unet",
    "save_model",
    "load_model",
    "split_structures",
    "model_card",
    "unet_setup",
    "MODEL_FORMAT",
]

MODEL_FORMAT = "atomtools.unet/1"


@dataclass(frozen=True)
class TrainConfig:
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
        if not 0 < self.dose[0] <= self.dose[1]:
            raise ValueError(f"TrainConfig.dose must be a positive (low, high) range [e/Å²], got {self.dose}")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


def unet_setup(profile: str, *, init: str | None = None, **overrides) -> tuple[UNetConfig, TrainConfig, str | None]:
    """Notebook 02's model and training settings at a profile: (UNetConfig, TrainConfig, init).

    ``init`` is ``"pretrained"`` (fine-tune the shipped weights), ``"random"`` (train
    from scratch) or a weights path; ``None`` keeps the profile's choice. Other
    keywords override :class:`TrainConfig` or :class:`UNetConfig` fields; ``None``
    values are ignored.

    Examples
    --------
    >>> model, train, init = unet_setup("paper", steps=10)
    >>> model.width, train.steps, init
    (16, 10, None)
    """
    from .profiles import resolve

    sizes = resolve("02_train_unet", profile, init=init, **overrides)
    chosen = sizes.pop("init")
    model_fields = {f.name for f in fields(UNetConfig)}
    model = UNetConfig(**{k: sizes.pop(k) for k in list(sizes) if k in model_fields})
    unknown = set(sizes) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise ValueError(f"unknown training parameters {sorted(unknown)}")
    return model, TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in sizes.items()}), (None if chosen == "random" else chosen)


def split_structures(dataset: Dataset, *, validation_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Image indices for training and validation, split by structure (no structure in both)."""
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


def _augment(arrays: list[np.ndarray], k: int, flip: bool) -> list[np.ndarray]:
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(-2, -1))
        if flip:
            a = a[..., ::-1]
        out.append(np.ascontiguousarray(a))
    return out


class SegmentationBatches:
    """Deterministic batches of noisy crops and smoothed targets from a dataset store.

    ``batch(step)`` depends on ``(seed, step)`` only: the same step gives the same
    batch in a fresh process, which makes resumed training exact.
    """

    def __init__(self, dataset: Dataset, indices: np.ndarray, config: TrainConfig, *, n_classes: int, multiple: int = 1):
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
        clean, distance, nearest, weights = clean[win], distance[(slice(None), *win)], nearest[(slice(None), *win)], weights[win]
        clean, distance, nearest, weights = _augment([clean, distance, nearest, weights], int(rng.integers(4)), bool(rng.random() < 0.5))
        dose = float(np.exp(rng.uniform(np.log(cfg.dose[0]), np.log(cfg.dose[1]))))
        scale = float(rng.uniform(*cfg.intensity_scale))
        x = normalize(poisson_noise(clean * scale, dose=dose, sampling=self.sampling, rng=rng))
        target = _labels.soft_targets(distance, nearest, radius=self.radius, edge=cfg.target_edge, n_classes=self.n_classes)
        hard = _labels.label_maps(distance, nearest, radius=self.radius)
        return {"x": x[None], "target": target, "weights": weights, "labels": hard, "dose": dose}

    def batch(self, step: int, *, rank: int = 0, world: int = 1) -> dict[str, torch.Tensor]:
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


def _unet_loss(model, batch, *, heads, o_weight):
    logits = model(batch["x"])
    parts = torch.split(logits, list(heads), dim=1)
    loss = weighted_soft_cross_entropy(parts[0], batch["target"][:, 0], batch["weights"])
    for h in range(1, len(parts)):
        loss = loss + o_weight * weighted_soft_cross_entropy(parts[h], batch["target"][:, h], batch["weights"])
    return loss


def _distributed() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_csv(path: Path, history: list[dict]) -> None:
    if not history:
        return
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


def fit(
    model: nn.Module,
    *,
    loss_fn: Callable[[nn.Module, dict], torch.Tensor],
    batches: Callable[[int, int, int], dict],
    steps: int,
    lr: float,
    weight_decay: float = 1e-4,
    warmup: float = 0.05,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 180.0,
    validate: Callable[[nn.Module], dict] | None = None,
    validate_every: int = 100,
    log_csv: str | Path | None = None,
    signature: dict | None = None,
    progress: bool = True,
    desc: str = "training",
) -> list[dict]:
    """The training loop shared by every network.

    Parameters
    ----------
    model : torch.nn.Module
        Initialized (e.g. after ``torch.manual_seed(seed)``) model.
    loss_fn : callable
        ``loss_fn(model, batch) -> scalar tensor``.
    batches : callable
        ``batches(step, rank, world) -> dict of tensors``; must depend on the step only.
    steps : int
        Number of optimizer steps.
    lr, weight_decay, warmup : float
        AdamW, with a linear warm-up over ``warmup * steps`` and cosine decay.
    checkpoint : path, optional
        Where to keep the resumable state; an existing one made with the same
        ``signature`` is resumed.
    checkpoint_every : float
        Seconds between checkpoints.
    validate : callable, optional
        ``validate(model) -> dict`` of numbers, run every ``validate_every`` steps
        and at the end, in eval mode without gradients.
    log_csv : path, optional
        The history as CSV (rewritten atomically).
    signature : dict, optional
        What must match for a checkpoint to be resumed (model and training settings).

    Returns
    -------
    list of dict
        The history: one row per logged step (``step``, ``loss``, ``lr``, validation numbers).
    """
    from torch.nn.parallel import DistributedDataParallel
    from tqdm.auto import tqdm

    rank, world = _distributed()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n_warm = max(1, int(warmup * steps))

    def schedule(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        return 0.5 * (1 + math.cos(math.pi * (step - n_warm) / max(1, steps - n_warm)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history: list[dict] = []
    start = 0
    checkpoint = Path(checkpoint) if checkpoint else None
    signature = signature or {}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state.get("signature") != signature:
            raise ValueError(f"{checkpoint} was written by a run with other settings; remove it or use another output path")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        start = int(state["step"])
    net = DistributedDataParallel(model) if world > 1 else model

    def save(step: int) -> None:
        if checkpoint is not None and rank == 0:
            _atomic_save({"signature": signature, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "history": history, "step": step}, checkpoint)
        if log_csv is not None and rank == 0:
            _write_csv(Path(log_csv), history)

    last_save = time.monotonic()
    bar = tqdm(total=steps, initial=start, desc=desc, disable=not progress or rank != 0, unit="step")
    running = None
    try:
        for step in range(start, steps):
            net.train()
            batch = {k: (v.to(device).contiguous(memory_format=torch.channels_last) if v.ndim == 4 and k == "x" else v.to(device)) for k, v in batches(step, rank, world).items()}
            loss = loss_fn(net, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            value = float(loss.detach())
            running = value if running is None else 0.9 * running + 0.1 * value
            row = {"step": step + 1, "loss": value, "lr": scheduler.get_last_lr()[0]}
            if validate is not None and ((step + 1) % validate_every == 0 or step + 1 == steps):
                model.eval()
                with torch.no_grad():
                    row.update(validate(model))
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k.startswith("val_")} | {"loss": f"{running:.3f}"})
            else:
                bar.set_postfix(loss=f"{running:.3f}")
            history.append(row)
            bar.update()
            if time.monotonic() - last_save > checkpoint_every:
                save(step + 1)
                last_save = time.monotonic()
        save(steps)
    finally:
        bar.close()
    return history


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, max_iter: int = 100) -> float:
    """Temperature T minimizing the negative log-likelihood of ``softmax(logits / T)``.

    Parameters
    ----------
    logits : Tensor
        (N, C) validation logits.
    labels : Tensor
        (N,) true classes.

    Returns
    -------
    float
        The temperature, kept within [0.05, 20].

    Examples
    --------
    >>> _ = torch.manual_seed(0); z = torch.randn(20000, 3) * 4; y = torch.distributions.Categorical(logits=z / 4).sample()
    >>> round(fit_temperature(z, y))  # logits 4x too confident
    4
    """
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter)
    logits, labels = logits.detach().float(), labels.detach().long()

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(float(log_t.detach().exp()), 0.05, 20.0))


def save_model(path: str | Path, model: UNet, *, metadata: dict) -> Path:
    """Write weights and what it takes to use them; atomic. Loaded with ``weights_only=True``."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_save({"format": MODEL_FORMAT, "config": model.config.to_dict(), "state_dict": state, **metadata}, path)
    return path


def load_model(path: str | Path) -> tuple[UNet, dict]:
    """Load a U-Net written by :func:`save_model` (``torch.load(weights_only=True)``: no unpickling).

    Returns
    -------
    (UNet, dict)
        The model in eval mode, and the metadata (``sampling``, ``temperature``, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not an atomtools U-Net file (format {state.get('format') if isinstance(state, dict) else type(state).__name__!r}, expected {MODEL_FORMAT!r})")
    model = UNet(UNetConfig.from_dict(state["config"]))
    model.load_state_dict(state["state_dict"])
    meta = {k: v for k, v in state.items() if k not in ("state_dict",)}
    return model.eval(), meta


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


def train_unet(
    dataset: str | Path,
    weights_out: str | Path,
    *,
    model_config: UNetConfig,
    config: TrainConfig,
    init: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Train the column-counting U-Net on a simulated dataset; write weights, checkpoint, log.

    Parameters
    ----------
    dataset : path
        A finished dataset store (:func:`atomtools.simulate.make_dataset`).
    weights_out : path
        Where the final weights go; beside it ``<name>.ckpt`` (resumable state) and
        ``<name>.csv`` (the history).
    model_config : UNetConfig
        Architecture; its heads must match the dataset's channels and classes.
    config : TrainConfig
        Training settings.
    init : path or "pretrained", optional
        Start from these weights (fine-tuning) instead of a random initialization;
        their architecture must be ``model_config``.

    Returns
    -------
    dict
        ``history`` (list of rows), ``temperature`` (per head), ``validation``
        (final numbers), ``seconds``.
    """
    ds = open_dataset(dataset)
    n_classes = int(ds.attrs["n_classes"])
    n_channels = int(ds.attrs["n_channels"])
    if tuple(model_config.heads) != (n_classes,) * n_channels:
        raise ValueError(f"model heads {model_config.heads} do not match the dataset's {n_channels} channels of {n_classes} classes")
    weights_out = Path(weights_out)
    train_idx, val_idx = split_structures(ds)
    batches = SegmentationBatches(ds, train_idx, config, n_classes=n_classes, multiple=model_config.multiple)
    val_x, val_y, val_doses = _validation_set(ds, val_idx, config)
    if val_x.shape[-1] % model_config.multiple or val_x.shape[-2] % model_config.multiple:
        raise ValueError(f"dataset images {tuple(val_x.shape[-2:])} must be multiples of {model_config.multiple} px for this model")

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
            from .columns import PRETRAINED
            from .data import fetch

            init_name, init = "pretrained", fetch(PRETRAINED)
        start_model, _ = load_model(init)
        if start_model.config != model_config:
            raise ValueError(f"init weights {init} have architecture {start_model.config}, not {model_config}")
        model.load_state_dict(start_model.state_dict())
        init_name = init_name or str(init)
    start = time.perf_counter()
    signature = {"model": model_config.to_dict(), "train": config.to_dict(), "dataset": str(Path(dataset).resolve()), "n_images": len(ds), "init": init_name}
    history = fit(
        model,
        loss_fn=lambda net, b: _unet_loss(net, b, heads=model_config.heads, o_weight=config.o_weight),
        batches=lambda step, rank, world: batches.batch(step, rank=rank, world=world),
        steps=config.steps,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup=config.warmup,
        seed=config.seed,
        checkpoint=weights_out.with_suffix(".ckpt"),
        checkpoint_every=config.checkpoint_every,
        validate=validate,
        validate_every=config.validate_every,
        log_csv=weights_out.with_suffix(".csv"),
        signature=signature,
        progress=progress,
        desc=f"training U-Net ({config.steps} steps)",
    )
    seconds = time.perf_counter() - start
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
    rank, _ = _distributed()
    if rank == 0:
        save_model(
            weights_out,
            model,
            metadata={
                "sampling": ds.sampling,
                "energy": float(ds.attrs["energy"]),
                "n_classes": n_classes,
                "channels": ds.attrs["channels"],
                "temperature": temperatures,
                "normalization": "divide by the frame mean",
                "train_config": config.to_dict(),
                "dataset": {"path": str(dataset), "n_images": len(ds), "config": ds.attrs["config"], "seed": ds.attrs["seed"]},
                "validation": final,
                "init": init_name,
                "training_seconds": seconds,
                "versions": {"torch": str(torch.__version__)},
            },
        )
    return {"history": history, "temperature": temperatures, "validation": final, "seconds": seconds, "validation_doses": val_doses.tolist()}


def model_card(path: str | Path, *, extra: str = "") -> str:
    """A markdown model card for weights written by :func:`train_unet`."""
    model, meta = load_model(path)
    cfg = meta["config"]
    tc = meta.get("train_config", {})
    ds = meta.get("dataset", {})
    dcfg = ds.get("config", {})
    n_par = sum(p.numel() for p in model.parameters())
    lines = [
        f"# Model card: `{Path(path).name}`",
        "",
        "U-Net that classifies every pixel of a noisy HRTEM image of CeO2 seen along [110] as background or as an atomic column with its number of atoms (Ce head, O head).",
        "",
        "## Use",
        "`atomtools.columns.retrieve(frame, sampling=...)` (frames at other samplings are refused or, with `resample=True`, resampled).",
        f"Input: one frame divided by its mean; sampling {meta['sampling']} Å/px; energy {meta.get('energy', 0) / 1e3:.0f} keV.",
        "",
        "## Architecture",
        f"width {cfg['width']}, depth {cfg['depth']}, stem {cfg.get('stem', 1)}, heads {cfg['heads']} (classes: background, 1..{cfg['heads'][0] - 1} atoms; thicker clipped), {n_par:,} parameters.",
        "",
        "## Training data",
        f"{ds.get('n_images', '?')} simulated images (abTEM multislice, seed {ds.get('seed', '?')}): profiles {dcfg.get('profiles')}, sizes {dcfg.get('size')} Å, "
        f"{dcfg.get('thickness')} atoms per column, tilt up to {dcfg.get('tilt')}°, defocus {dcfg.get('defocus')} Å, Cs {dcfg.get('Cs')} Å, C5 {dcfg.get('C5')} Å, "
        f"focal spread σ {dcfg.get('focal_spread')} Å, aperture {dcfg.get('aperture')} mrad; Poisson noise redrawn every step at doses {tc.get('dose')} e/Å².",
        "",
        "## Training",
        f"{tc.get('steps')} steps of {tc.get('batch_size')} crops of {tc.get('crop')} px, AdamW lr {tc.get('lr')}, seed {tc.get('seed')}, "
        f"start: {meta.get('init') or 'random'}; {meta.get('training_seconds', 0) / 60:.0f} min on {meta.get('hardware', 'CPU')}.",
        f"Calibration: temperature scaling on held-out structures, T = {[round(t, 3) for t in meta.get('temperature', [])]}.",
        "",
        "## Validation (held-out structures, doses spread over the training range)",
        *[f"- {k}: {v:.3f}" for k, v in meta.get("validation", {}).items()],
        "",
        "## Limits",
        "Trained on simulations only: CeO2 [110], the optics ranges above. Outside them (other materials, zone axes, samplings, strong drift or contamination) expect lower accuracy; 04_evaluate measures it out of range.",
    ]
    if extra:
        lines += ["", extra]
    return "\n".join(lines) + "\n"

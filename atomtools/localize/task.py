"""Training the atom segmenter: one U-Net, three heads (mask, denoised, deblurred), on the shared loop.

Each step draws ``batch_size`` crops of library images (:mod:`atomtools.simulation.library`)
from ``default_rng([seed, step])``, with random flips and quarter turns, and with
probability ``quantize`` turns the input into what an 8-bit PNG export makes of it
(clipped at random percentiles, 256 grey levels). With ``flatten`` (the default) the
input and the targets are less the input's :func:`atomtools.localize.background_level`,
as :func:`atomtools.localize.segment` does in use. Input and targets go through the
same affine normalization of the input (:func:`atomtools.localize.normalize_frame`), so
the denoised and deblurred heads answer in the input's units.

Loss: binary cross-entropy of the mask head against the Gaussian masks (soft
targets), plus ``image_weight`` times the L1 error of the denoised and deblurred heads.
Validation: the same losses and the detection F1 and precision of
:func:`atomtools.localize.peaks_to_table` on fixed validation images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ..core.metrics import match_columns, position_spread
from ..models import UNet, UNetConfig, save_model
from ..training import OptimizerSpec, Task, TrainResult, fit_beside, random_dihedral
from ..utils import Record
from .atoms import background_level, normalize_frame, peaks_to_table

__all__ = ["SegmenterConfig", "load_library", "segmentation_task", "train_segmenter", "segmenter_card"]


@dataclass(frozen=True)
class SegmenterConfig(Record):
    """Training settings of the atom segmenter.

    Attributes
    ----------
    steps : int
        Optimizer steps.
    batch_size : int
        Crops per step.
    crop : int
        Crop size [px] (a multiple of the network's stride).
    lr : float
        Peak learning rate (AdamW, warm-up then cosine).
    width, depth : int
        U-Net width and depth.
    image_weight : float
        Weight of the denoising and deblurring L1 terms.
    quantize : float
        Share of inputs turned into an 8-bit export.
    validation : int
        Validation images (held out of training by index).
    validate_every : int
        Steps between validations.
    seed : int
        Seed of the network and the batches.
    flatten : bool
        Train on frames less their :func:`atomtools.localize.background_level` (the
        targets less the same level); the weights say so and :func:`segment` does the
        same to every frame.
    """

    steps: int = 3000
    batch_size: int = 8
    crop: int = 128
    lr: float = 2e-3
    width: int = 16
    depth: int = 4
    image_weight: float = 1.0
    quantize: float = 0.3
    validation: int = 16
    validate_every: int = 250
    seed: int = 0
    flatten: bool = True

    @classmethod
    def for_library(cls, *, size: int, n_images: int, steps: int, **fields) -> SegmenterConfig:
        """A config for a library of ``n_images`` frames of ``size`` px: the rules that follow from them.

        Crops of 128 px (the frame where smaller), a fifth of the library held out for
        validation (at most 32 frames), four validations along the run.

        Parameters
        ----------
        size : int
            Side of the library's frames [px].
        n_images : int
            Frames in the library.
        steps : int
            Optimizer steps.
        **fields
            Any other field.

        Examples
        --------
        >>> c = SegmenterConfig.for_library(size=64, n_images=240, steps=300)
        >>> c.crop, c.validation, c.validate_every
        (64, 32, 75)
        """
        return cls(
            steps=int(steps),
            crop=min(128, int(size)),
            validation=max(1, min(32, int(n_images) // 5)),
            validate_every=max(1, int(steps) // 4),
            **fields,
        )

    def __post_init__(self):
        if self.crop % 2**self.depth:
            raise ValueError(f"SegmenterConfig.crop {self.crop} must be a multiple of 2**depth = {2**self.depth}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("SegmenterConfig.steps and batch_size must be >= 1")


def load_library(path) -> dict:
    """A finished library store (or several, one after another) read into memory: arrays and per-image truth.

    Parameters
    ----------
    path : str, Path or list of them
        Store(s) written by :func:`atomtools.simulation.make_library`; several are
        joined in order (images of the same size).

    Returns
    -------
    dict
        ``noisy``, ``clean``, ``sharp``, ``gauss`` (N, H, W) float32 arrays, ``params``
        (the per-image table), ``positions`` (list of (m, 3) arrays: x, y [px], atoms),
        ``sampling`` (N,) [Å].
    """
    from ..storage import ATOM_LIBRARY, open_dataset

    if isinstance(path, (list, tuple)):
        if not path:
            raise ValueError("load_library: no library store given")
        parts = [load_library(p) for p in path]
        shapes = {part["noisy"].shape[1:] for part in parts}
        if len(shapes) > 1:
            raise ValueError(f"load_library: the stores {list(map(str, path))} hold images of sizes {sorted(shapes)}")
        out = {k: np.concatenate([part[k] for part in parts]) for k in ("noisy", "clean", "sharp", "gauss", "sampling")}
        out["params"] = pd.concat([part["params"] for part in parts], ignore_index=True)
        out["positions"] = [xy for part in parts for xy in part["positions"]]
        return out
    ds = open_dataset(path)
    if ds.attrs.get("format") != ATOM_LIBRARY.format:
        raise ValueError(f"{path} is not an atom-segmentation library (format {ds.attrs.get('format')!r})")
    params = ds.params
    out = {k: np.asarray(getattr(ds, k)[:], np.float32) for k in ("noisy", "clean", "sharp", "gauss")}
    out["params"] = params
    out["sampling"] = params["sampling"].to_numpy(float)
    out["positions"] = [np.asarray(ds._structure(i)["positions"][:]).reshape(-1, 3) for i in range(len(ds))]
    return out


def _quantize(rng, image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, [rng.uniform(0, 2), rng.uniform(98, 100)])
    return np.round(np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.float32)


def segmentation_task(
    library: dict, config: SegmenterConfig, *, train_index: np.ndarray, val_index: np.ndarray
) -> Task:
    """The :class:`atomtools.training.Task` of the segmenter on an in-memory library.

    Parameters
    ----------
    library : dict
        :func:`load_library`'s output.
    config : SegmenterConfig
        Settings.
    train_index, val_index : numpy.ndarray
        Images to train on and to validate on.

    Returns
    -------
    Task
        One network ``"segmenter"`` (a U-Net with three one-channel heads: column mask, denoised and
        deblurred image), its optimizer, batches of random crops, the training step and a validation
        that reports ``val_mask``, ``val_images``, ``val_f1`` and ``val_error_px`` [px].
    """
    torch.manual_seed(config.seed)
    net = UNet(UNetConfig(in_channels=1, heads=(1, 1, 1), width=config.width, depth=config.depth))
    n, h, w = library["noisy"].shape
    c = min(config.crop, h, w)
    if config.flatten:
        levels = np.stack(
            [background_level(library["noisy"][i], sampling=float(library["sampling"][i])) for i in range(n)]
        )
    else:
        levels = np.zeros((n, 1, 1), np.float32)

    def sample(rng, i: int, crop: int) -> tuple[np.ndarray, np.ndarray]:
        r0, c0 = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
        sl = (slice(r0, r0 + crop), slice(c0, c0 + crop))
        noisy, clean, sharp, gauss = (library[k][i][sl] for k in ("noisy", "clean", "sharp", "gauss"))
        level = np.broadcast_to(levels[i], (h, w))[sl]
        noisy, clean, sharp, gauss, level = random_dihedral(rng, [noisy, clean, sharp, gauss, level])
        if rng.random() < config.quantize:
            q = _quantize(rng, noisy)
            # the export's affine map, fitted on the pixels it did not clip, carries the targets along
            ok = (q > 0) & (q < 255)
            a, b = np.polyfit(noisy[ok], q[ok], 1) if ok.sum() > 10 and np.ptp(noisy[ok]) > 0 else (1.0, 0.0)
            noisy, clean, sharp, level = q, a * clean + b, a * sharp + b, a * level + (b if config.flatten else 0.0)
        noisy, clean, sharp = noisy - level, clean - level, sharp - level
        try:
            x, (offset, scale) = normalize_frame(noisy)
        except ValueError:  # a flat crop (vacuum at low dose): scale by its mean instead
            offset, scale = 0.0, max(1e-3, float(np.abs(noisy).mean()) or 1.0)
            x = (noisy - offset) / scale
        targets = np.stack([gauss, (clean - offset) / scale, (sharp - offset) / scale])
        return x, targets.astype(np.float32)

    def batch(step: int, rank: int, world: int) -> dict:
        rng = np.random.default_rng([config.seed, step, rank])
        picks = rng.choice(train_index, size=config.batch_size)
        xs, ts = zip(*(sample(rng, int(i), c) for i in picks))
        return {"x": torch.from_numpy(np.stack(xs)[:, None]), "t": torch.from_numpy(np.stack(ts))}

    def losses(out: torch.Tensor, t: torch.Tensor) -> dict:
        mask = F.binary_cross_entropy_with_logits(out[:, 0], t[:, 0])
        images = F.l1_loss(out[:, 1:], t[:, 1:])
        return {"mask": mask, "images": images, "loss": mask + config.image_weight * images}

    def train_step(nets, b, optimize) -> dict:
        numbers = losses(nets["segmenter"](b["x"]), b["t"])
        optimize("segmenter", numbers["loss"])
        return {k: float(v.detach()) for k, v in numbers.items()}

    side = (min(h, w) // 2**config.depth) * 2**config.depth
    val_items = []
    for i in val_index:
        x, (offset, scale) = normalize_frame((library["noisy"][i] - levels[i])[:side, :side])
        offset = offset + levels[i]
        t = np.stack(
            [library["gauss"][i], (library["clean"][i] - offset) / scale, (library["sharp"][i] - offset) / scale]
        )
        xy = library["positions"][i][:, :2]
        xy = xy[(xy[:, 0] < side - 0.5) & (xy[:, 1] < side - 0.5)]
        val_items.append((x, t[:, :side, :side].astype(np.float32), xy))

    def validate(nets) -> dict:
        tp = fp = fn = 0
        errors, totals = [], {"mask": 0.0, "images": 0.0}
        for x, t, xy in val_items:
            out = nets["segmenter"](torch.from_numpy(x)[None, None])
            for k, v in losses(out, torch.from_numpy(t)[None]).items():
                if k in totals:
                    totals[k] += float(v) / len(val_items)
            mask = torch.sigmoid(out[0, 0]).numpy()
            pred = peaks_to_table(mask, min_distance=2)
            p, q = match_columns(pred[["col", "row"]].to_numpy(), xy, radius=2.0)
            tp, fp, fn = tp + len(p), fp + len(pred) - len(p), fn + len(xy) - len(q)
            errors.append(pred[["col", "row"]].to_numpy()[p] - xy[q])
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        err = np.concatenate(errors) if errors else np.zeros((0, 2))
        return {
            "val_mask": totals["mask"],
            "val_images": totals["images"],
            "val_f1": f1,
            "val_error_px": position_spread(err),
        }

    spec = OptimizerSpec(("segmenter",), lr=config.lr, warmup=0.03)
    return Task(
        networks={"segmenter": net},
        optimizers={"segmenter": spec},
        batch=batch,
        train_step=train_step,
        validate=validate,
        signature={"config": config.to_dict(), "images": int(n), "task": "atom-segmentation"},
    )


def train_segmenter(
    library: str | Path | dict,
    out: str | Path,
    config: SegmenterConfig = SegmenterConfig(),
    *,
    checkpoint: str | Path | None = None,
    init: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train (or fine-tune) the atom segmenter on a library; write its weights.

    Parameters
    ----------
    library : str, Path, list of them, or dict
        A library store, several (joined; validation images come from the first), or
        :func:`load_library`'s output.
    out : str or Path
        Weights file to write (:func:`atomtools.models.save_model`).
    config : SegmenterConfig
        Settings.
    checkpoint : str or Path, optional
        Resumable state (default ``out`` + ``.ckpt``); removed once the weights are written.
    init : str or Path, optional
        Weights to start from (fine-tuning); default a random start.
    progress : bool
        Show a progress bar.

    Returns
    -------
    TrainResult
        The weights, history (one row per step), last validation numbers and seconds.
    """
    lib = library if isinstance(library, dict) else load_library(library)
    n = len(lib["noisy"])
    n_val = min(config.validation, max(1, n // 5))
    index = np.arange(n)
    train_index, val_index = index[n_val:], index[:n_val]
    task = segmentation_task(lib, config, train_index=train_index, val_index=val_index)
    if init is not None:
        from ..models import load_model

        start, meta = load_model(init, expected="atomtools.unet/1")
        task.networks["segmenter"].load_state_dict(start.state_dict())
        task.signature["init"] = str(meta.get("sha256", Path(init).name))
    out = Path(out)
    history, _, seconds = fit_beside(task, out, config, progress=progress, desc="atom segmenter", checkpoint=checkpoint)
    last = [row for row in history if "val_f1" in row]
    validation = {k: v for k, v in (last[-1] if last else {}).items() if k.startswith("val_")}
    save_model(
        out,
        task.networks["segmenter"],
        metadata={
            "task": "atom-segmentation",
            "heads": ["mask", "denoised", "deblurred"],
            "train_config": config.to_dict(),
            "init": task.signature.get("init"),
            "training_seconds": seconds,
            "hardware": f"{os.cpu_count()} CPU cores"
            if not torch.cuda.is_available()
            else torch.cuda.get_device_name(),
            "library_images": int(n),
            "library_crystals": _crystals_of(lib["params"]),
            "validation": validation,
        },
    )
    (Path(checkpoint) if checkpoint else out.with_suffix(".ckpt")).unlink(missing_ok=True)
    return TrainResult(weights=out, history=history, validation=validation, seconds=seconds)


def _crystals_of(params) -> list[str]:
    """The (crystal, zone) pairs of a library's images, as ``"Au [110]"``, in the order first met."""
    if params is None or "crystal" not in params:
        return []
    pairs = [f"{c} [{z}]" for c, z in zip(params["crystal"], params["zone"]) if c != "none"]
    return list(dict.fromkeys(pairs))


def segmenter_card(path: str | Path, *, measured: str = "") -> str:
    """The model card of a segmenter weights file (markdown).

    Parameters
    ----------
    path : str or Path
        Weights from :func:`train_segmenter`.
    measured : str
        Markdown with the numbers measured on held-out crystals and real images (``06``).

    Returns
    -------
    str
        The model card, markdown (:func:`atomtools.models.model_card`).
    """
    from ..models import load_model, model_card
    from ..simulation.library import HELD_OUT_CRYSTALS, TRAIN_CRYSTALS

    _, meta = load_model(path)

    def pairs(items):
        return ", ".join(f"{c} [{''.join(str(v) for v in z)}]" for c, z in items)

    data = (
        f"{meta.get('library_images')} images of the atom-segmentation library (atomtools.simulation.library, "
        f"256 px, 0.06-0.2 Å/px): {', '.join(meta.get('library_crystals') or [pairs(TRAIN_CRYSTALS)])}; "
        "85 % HAADF-STEM (incoherent model through abTEM's probe, "
        "18-30 mrad, Z^1.6-2.0, source size, probe tails, background, line jitter and drift, 2e3-2e6 e/Å²), 15 % "
        "HRTEM (abTEM multislice, 300 kV, random defocus, Cs and focal spread, 300-2e4 e/Å²); partial crystals, "
        "amorphous carbon, 5 % frames without any crystal. 30 % of the inputs exported as 8-bit images. "
        f"Held out entirely: {pairs(HELD_OUT_CRYSTALS)}."
        + (
            " Input: each frame less its smooth background level (`background_level`: a 4 Å grey opening, smoothed), "
            "in training and in use."
            if meta.get("train_config", {}).get("flatten")
            else ""
        )
    )
    limits = (
        "Simulated crystals only: no grain boundaries, dislocations, amorphous-crystal interfaces or beam damage in "
        "training. Columns carrying less than 15 % of the brightest column's HAADF scattering (O beside Ce, N beside "
        "Ga) are not atoms to it. ABF, bright-field and iDPC contrast were not trained (`contrast='dark'` "
        "inverts an ABF or bright-field frame for it; checked on one real ABF frame). Pixel sizes outside "
        "0.06-0.2 Å are resampled when the sampling is given; without it the frame is taken as it is. HRTEM "
        "positions are those of the projected columns, whatever the defocus makes of their contrast: trained on "
        "only 15 % of the library, they are less certain than HAADF ones."
    )
    return model_card(
        path,
        summary=(
            "Finds the atomic columns of atomic-resolution HAADF-STEM and HRTEM images of any crystal, and denoises "
            "and deblurs them: one U-Net with three heads (a Gaussian mask on every column, the denoised image, the "
            "deblurred image), after AtomSegNet (Lin et al., Sci. Rep. 11, 5386, 2021)."
        ),
        use="`atomtools.localize.find_atoms(image, sampling=...)` (a table of positions, confidence, intensity), "
        "`atomtools.localize.segment(image)` (the three maps); `python -m atomtools atoms FILE...`.",
        data=data,
        limits=limits,
        extra=measured,
    )

"""Training the two missing-wedge GANs on the shared loop (:func:`atomtools.training.fit`).

1. **Sinogram inpainting** (:func:`train_inpainter`): an :class:`~atomtools.models.RRDBNet`
   sees the measured rows of a sinogram on the 128-angle grid (in the order of
   :func:`~atomtools.tomo.sinograms.to_network`, the wedge in the middle) and their
   mask, and fills the rest. Measured rows are kept as measured (data consistency).
   Loss: L1 on the missing rows, a mass term (every parallel projection of a sample
   sums to the same total), and an adversarial term from a PatchGAN that compares the
   inpainted sinogram with the true one.
2. **Tomogram refinement** (:func:`train_refiner`): a U-Net takes the filtered
   back-projection of the inpainted sinogram and returns the slice (a residual
   correction). Loss: L1 to the phantom, the L1 of its projections against the
   measured rows (the differentiable projector of :mod:`.operators`), and an
   adversarial term.

Every sample is a function of ``(seed, step, index)``: phantoms of the training kinds
only (:data:`~atomtools.tomo.phantoms.TRAINING_KINDS`), a random wedge (20-70 degrees by
default) and sometimes sparse sampling, Poisson noise at a log-uniform dose or none.
Both runs resume exactly from their checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..models import PatchConfig, PatchDiscriminator, RRDBConfig, RRDBNet, UNet, UNetConfig, load_model, save_model
from ..training import OptimizerSpec, Task, TrainResult, fit_beside
from ..utils import Record
from .operators import Projector, full_angles
from .phantoms import TRAINING_KINDS, check_kinds, phantom
from .sinograms import add_shot_noise, from_network, random_mask, sinogram_scale, to_network

__all__ = [
    "GanConfig",
    "sample",
    "draw_dose",
    "inpaint_batch",
    "inpaint",
    "refine",
    "train_inpainter",
    "train_refiner",
    "refine_batch",
    "INPAINT_FORMAT",
    "REFINE_FORMAT",
    "gan_card",
]

INPAINT_FORMAT = "atomtools.rrdb/1"
REFINE_FORMAT = "atomtools.unet/1"


@dataclass(frozen=True)
class GanConfig(Record):
    """How one of the GANs trains, and on what.

    Attributes
    ----------
    steps : int
        Optimizer steps.
    batch_size : int
        Samples per step.
    n : int
        Phantom size and detector width [px]; the grid has ``n`` angles.
    lr : float
        Generator learning rate (AdamW, warm-up then cosine).
    lr_discriminator : float
        Discriminator learning rate.
    adversarial : float
        Weight of the adversarial term against the L1 terms.
    consistency : float
        Weight of the mass term (inpainting) or projection term (refinement).
    wedge : (float, float)
        Range of the missing wedges drawn [deg].
    sparse : float
        Fraction of samples with every k-th tilt only.
    dose : (float, float)
        Range of the log-uniform dose [counts per pixel at the mean].
    noise_free : float
        Fraction of samples without noise.
    seed : int
        Seed of the networks and of every sample.
    validate_every : int
        Steps between validations.
    validation : int
        Validation samples (a seed no training sample uses).
    checkpoint_every : float
        Seconds between checkpoints.
    """

    steps: int = 2000
    batch_size: int = 8
    n: int = 128
    lr: float = 5e-4
    lr_discriminator: float = 2e-4
    adversarial: float = 2e-3
    consistency: float = 0.1
    wedge: tuple[float, float] = (20.0, 70.0)
    sparse: float = 0.25
    dose: tuple[float, float] = (100.0, 1e5)
    noise_free: float = 0.1
    seed: int = 0
    validate_every: int = 200
    validation: int = 16
    checkpoint_every: float = 120.0

    @classmethod
    def for_steps(cls, steps: int, **fields) -> GanConfig:
        """A config for a run of ``steps`` steps, validated five times along it (every fifth of the steps).

        Parameters
        ----------
        steps : int
            Optimizer steps.
        **fields
            Any other field.

        Examples
        --------
        >>> GanConfig.for_steps(40, seed=3).validate_every
        8
        """
        return cls(steps=int(steps), validate_every=max(1, int(steps) // 5), **fields)


def draw_dose(config, rng: np.random.Generator) -> float:
    """A training sample's dose: none (``inf``) for a fraction ``noise_free``, else log-uniform in ``dose``.

    Parameters
    ----------
    config : GanConfig or UnrolledTrainConfig
        ``noise_free`` and ``dose`` (counts per pixel at the sinogram mean).
    rng : numpy.random.Generator
        Source of the draw.

    Returns
    -------
    float
        Counts per pixel at the sinogram mean, or ``inf``.
    """
    return np.inf if rng.random() < config.noise_free else float(np.exp(rng.uniform(*np.log(config.dose))))


def sample(config: GanConfig, step: int, index: int, *, kinds: Sequence[str] = TRAINING_KINDS) -> dict:
    """Sample ``index`` of step ``step``: phantom, clean and noisy sinograms, mask.

    Parameters
    ----------
    config : GanConfig
        Sizes and ranges (``n``, ``seed``, ``wedge``, ``sparse``, ``dose``, ``noise_free``;
        :class:`~atomtools.tomo.unrolled.UnrolledTrainConfig` has them too).
    step : int
        Training step (-1: the validation set).
    index : int
        Sample within the step.
    kinds : sequence of str
        Phantom kinds drawn from (:func:`~atomtools.tomo.phantoms.phantom`).

    Returns
    -------
    dict
        ``image`` (n, n), ``clean`` and ``noisy`` (n, n) sinograms on the full grid, ``mask``
        (n,) bool, ``wedge`` [deg], ``dose``, ``kind``.
    """
    rng = np.random.default_rng([config.seed, step + 1, index])
    kind = kinds[int(rng.integers(len(kinds)))]
    image = phantom(kind, n=config.n, seed=int(rng.integers(2**31)))
    projector = Projector(config.n, full_angles(config.n))
    clean = projector.forward(image)
    dose = draw_dose(config, rng)
    mask, wedge = random_mask(rng, n_grid=config.n, wedge=config.wedge, sparse=config.sparse)
    noisy = add_shot_noise(clean, dose=dose, rng=rng)
    return {"image": image, "clean": clean, "noisy": noisy, "mask": mask, "wedge": wedge, "dose": dose, "kind": kind}


def _network_input(noisy: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    scale = sinogram_scale(noisy, mask)
    rows = np.broadcast_to(mask[:, None], noisy.shape).astype(np.float32)
    return np.stack([to_network(noisy / scale * rows), to_network(rows)]), scale


def inpaint_batch(config: GanConfig, step: int, indices, *, kinds: Sequence[str] = TRAINING_KINDS) -> dict:
    """The inpainting batch: network input, target, mask (network order), scales.

    Parameters
    ----------
    config : GanConfig
        Sizes and ranges.
    step : int
        Training step (-1: validation).
    indices : iterable of int
        Samples.
    kinds : sequence of str
        Phantom kinds drawn from.

    Returns
    -------
    dict of torch.Tensor
        For B samples on the n-angle grid: ``input`` (B, 2, n, n) (the scaled measured sinogram and the
        measured-row mask, network order), ``target`` (B, 1, n, n) (the clean sinogram over its scale,
        network order), ``scale`` (B,) float32, ``image`` (B, n, n) (the phantoms) and ``mask``
        (B, n) bool (the measured rows, grid order).
    """
    xs, ts, scales, images, masks = [], [], [], [], []
    for i in indices:
        s = sample(config, step, i, kinds=kinds)
        x, scale = _network_input(s["noisy"], s["mask"])
        xs.append(x)
        ts.append(to_network(s["clean"] / scale)[None])
        scales.append(scale)
        images.append(s["image"])
        masks.append(s["mask"])
    return {
        "input": torch.from_numpy(np.stack(xs)),
        "target": torch.from_numpy(np.stack(ts).astype(np.float32)),
        "scale": torch.tensor(scales, dtype=torch.float32),
        "image": torch.from_numpy(np.stack(images)),
        "mask": torch.from_numpy(np.stack(masks)),
    }


def _complete(generator, x: torch.Tensor) -> torch.Tensor:
    measured, rows = x[:, :1], x[:, 1:2]
    return rows * measured + (1 - rows) * generator(x)


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


def _inpaint_step(config: GanConfig):
    def step(networks, batch, optimize):
        g, d = networks["generator"], networks["discriminator"]
        x, target = batch["input"], batch["target"]
        rows = x[:, 1:2]
        missing = 1 - rows
        out = _complete(g, x)
        real = rows * x[:, :1] + missing * target  # the measured rows, the true missing ones
        l1 = (missing * (out - target).abs()).sum() / missing.sum().clamp_min(1)
        # mass: every projection of a sample sums to the same total as the measured ones
        row_sums = out.sum(dim=-1)
        measured_mean = (rows[..., 0] * row_sums).sum(dim=-1, keepdim=True) / rows[..., 0].sum(-1, keepdim=True)
        mass = (
            (missing[..., 0] * (row_sums - measured_mean).abs()).sum() / missing[..., 0].sum().clamp_min(1)
        ) / x.shape[-1]
        adv = _bce(d(out), True)
        optimize("generator", l1 + config.consistency * mass + config.adversarial * adv)
        d_loss = 0.5 * (_bce(d(real), True) + _bce(d(out.detach()), False))
        optimize("discriminator", d_loss)
        return {"l1": l1.item(), "mass": mass.item(), "adv": adv.item(), "d": d_loss.item()}

    return step


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR [dB] per image with data range 1 (phantoms are 0 .. 1)."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return -10 * torch.log10(mse)


def inpaint(generator: torch.nn.Module, noisy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the missing rows of sinograms on the full grid with a trained inpainter.

    Parameters
    ----------
    generator : torch.nn.Module
        The inpainting network.
    noisy : numpy.ndarray
        ``(n_angles, n)`` or ``(B, n_angles, n)`` on the grid of ``full_angles(n_angles)``
        (missing rows: anything).
    mask : numpy.ndarray
        ``(n_angles,)`` or ``(B, n_angles)``: measured rows.

    Returns
    -------
    numpy.ndarray
        The completed sinograms (measured rows unchanged), shaped like ``noisy``.
    """
    single = noisy.ndim == 2
    noisy, mask = (noisy[None], mask[None]) if single else (noisy, mask)
    pairs = [_network_input(s, m) for s, m in zip(noisy, mask)]
    x = torch.from_numpy(np.stack([p[0] for p in pairs]))
    scale = np.array([p[1] for p in pairs], np.float32)[:, None, None]
    with torch.no_grad():
        out = from_network(_complete(generator.eval(), x)[:, 0]).numpy() * scale
    out = np.where(mask[:, :, None], noisy, out).astype(np.float32)
    return out[0] if single else out


def refine(refiner: torch.nn.Module, fbp_image, scale=None):
    """Apply the tomogram refiner to filtered back-projections (residual correction).

    Parameters
    ----------
    refiner : torch.nn.Module
        The refinement U-Net (one regression channel).
    fbp_image : numpy.ndarray or torch.Tensor
        ``(n, n)`` or ``(B, n, n)`` reconstructions.
    scale : float or array_like, optional
        What the sinograms were divided by (the refiner works on normalized slices);
        default: the images' 99.5th percentile.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The refined reconstructions, of the type and shape of ``fbp_image`` (float32 for NumPy input).
    """
    is_numpy = isinstance(fbp_image, np.ndarray)
    x = torch.from_numpy(np.asarray(fbp_image, np.float32)) if is_numpy else fbp_image
    single = x.ndim == 2
    x = x[None] if single else x
    if scale is None:
        scale = torch.quantile(x.flatten(1), 0.995, dim=1).clamp_min(1e-6)
    scale = torch.as_tensor(scale, dtype=torch.float32).reshape(-1, 1, 1, 1)
    with torch.no_grad():
        xn = x[:, None] / scale
        out = ((xn + refiner.eval()(xn)) * scale)[:, 0]
    out = out[0] if single else out
    return out.numpy() if is_numpy else out


def _fit_gan(
    out: Path,
    generator,
    discriminator,
    config: GanConfig,
    kinds: Sequence[str],
    batch,
    step_fn,
    validate,
    *,
    signature: dict,
    metadata: dict,
    init,
    progress: bool,
    desc: str,
) -> TrainResult:
    """Train a generator and its discriminator; save the generator with its metadata."""
    torch.manual_seed(config.seed)
    task = Task(
        networks={"generator": generator, "discriminator": discriminator},
        optimizers={
            "generator": OptimizerSpec(("generator",), lr=config.lr, betas=(0.9, 0.99)),
            "discriminator": OptimizerSpec(("discriminator",), lr=config.lr_discriminator, betas=(0.5, 0.99)),
        },
        batch=batch,
        train_step=step_fn,
        validate=validate,
        signature={"config": config.to_dict(), "kinds": list(kinds), "init": _hash(init), **signature},
    )
    history, validation, seconds = fit_beside(task, out, config, progress=progress, desc=desc)
    train_config = {**config.to_dict(), "kinds": list(kinds)}
    meta = {"train_config": train_config, "validation": validation, "training_seconds": seconds}
    save_model(out, generator, metadata={**meta, "init": _hash(init), **metadata})
    return TrainResult(weights=out, history=history, validation=validation, seconds=seconds)


def _batch_fn(config: GanConfig, make):
    def batch(step: int, rank: int, world: int) -> dict:
        per_rank = config.batch_size // world
        return make(config, step, range(rank * per_rank, (rank + 1) * per_rank))

    return batch


def train_inpainter(
    kinds: Sequence[str],
    out: str | Path,
    config: GanConfig = GanConfig(),
    *,
    model_config: RRDBConfig = RRDBConfig(stem=2),
    init: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train the sinogram-inpainting RRDB GAN; write its weights to ``out`` (resumes).

    Parameters
    ----------
    kinds : sequence of str
        The phantom kinds it learns from (:data:`~atomtools.tomo.phantoms.TRAINING_KINDS`:
        the project's), drawn afresh for every sample.
    out : str or Path
        Weights file (``.pt``); the checkpoint (``.ckpt``) and history (``.csv``) lie beside it.
    config : GanConfig
        Training.
    model_config : RRDBConfig
        Generator architecture (ignored with ``init``: the weights bring theirs).
    init : str or Path, optional
        Start from these generator weights (fine-tuning); default random.
    progress : bool
        Show a progress bar.

    Returns
    -------
    TrainResult
        The weights, history, last validation numbers and seconds.
    """
    out = Path(out)
    kinds = check_kinds(kinds)
    torch.manual_seed(config.seed)
    generator = RRDBNet(model_config)
    if init is not None:
        generator, _ = load_model(init, expected=INPAINT_FORMAT)
        model_config = generator.config
    discriminator = PatchDiscriminator(PatchConfig(in_channels=1))
    val = inpaint_batch(config, -1, range(config.validation), kinds=kinds)
    projector = Projector(config.n, full_angles(config.n))

    def make(cfg, step, indices):
        return inpaint_batch(cfg, step, indices, kinds=kinds)

    def validate(networks) -> dict:
        completed = from_network(_complete(networks["generator"], val["input"])[:, 0])
        raw = from_network(val["input"][:, 0])
        truth = val["image"]
        scale = val["scale"].view(-1, 1, 1)
        missing = 1 - val["input"][:, 1:2]
        l1 = float((missing * (to_network(completed)[:, None] - val["target"]).abs()).sum() / missing.sum())
        return {
            "val_l1_missing": l1,
            "val_psnr_fbp_raw": float(_psnr(projector.fbp(raw * _rows(val)) * scale, truth).mean()),
            "val_psnr_fbp_inpainted": float(_psnr(projector.fbp(completed) * scale, truth).mean()),
        }

    return _fit_gan(
        out,
        generator,
        discriminator,
        config,
        kinds,
        _batch_fn(config, make),
        _inpaint_step(config),
        validate,
        signature={"model": model_config.to_dict(), "task": "inpaint"},
        metadata={"task": "sinogram inpainting on the full grid of n angles over 180 degrees (network order)"},
        init=init,
        progress=progress,
        desc="inpainting GAN",
    )


def _hash(path) -> str | None:
    from ..data import sha256

    return None if path is None else sha256(path)


def _rows(val: dict) -> torch.Tensor:
    # measured rows, in the grid's order, as a (B, n_angles, 1) multiplier
    return val["mask"][:, :, None].float()


def refine_batch(config: GanConfig, step: int, indices, inpainter, *, kinds: Sequence[str] = TRAINING_KINDS) -> dict:
    """The refinement batch: FBP of the inpainted sinogram, phantom and measured rows, normalized.

    Each slice is divided by its 99.5th percentile (as :func:`refine` does), so the
    refiner sees the same numbers whatever the sinogram's units.

    Parameters
    ----------
    config : GanConfig
        Sizes and ranges.
    step : int
        Training step (-1: validation).
    indices : iterable of int
        Samples.
    inpainter : torch.nn.Module
        The trained inpainting generator.
    kinds : sequence of str
        Phantom kinds drawn from.

    Returns
    -------
    dict of torch.Tensor
        For B samples, each divided by its ``q``: ``input`` (B, 1, n, n) (the FBP of the completed
        sinogram), ``target`` (B, 1, n, n) (the phantom), ``measured`` (B, n, n) (the measured sinogram,
        grid order); with ``rows`` (B, n, 1) (measured-row multiplier, float), ``q`` (B,) (the 99.5th
        percentiles) and ``image`` (B, n, n) (the phantoms, unscaled).
    """
    b = inpaint_batch(config, step, indices, kinds=kinds)
    projector = Projector(config.n, full_angles(config.n))
    with torch.no_grad():
        completed = from_network(_complete(inpainter.eval(), b["input"])[:, 0])
    scale = b["scale"].view(-1, 1, 1)
    fbp = projector.fbp(completed) * scale  # in the phantom's units
    q = torch.quantile(fbp.flatten(1), 0.995, dim=1).clamp_min(1e-6).view(-1, 1, 1)
    return {
        "input": (fbp / q)[:, None],
        "target": (b["image"] / q)[:, None],
        "measured": from_network(b["input"][:, 0]) * scale / q,
        "rows": _rows(b),
        "q": q[:, 0, 0],
        "image": b["image"],
    }


def train_refiner(
    kinds: Sequence[str],
    out: str | Path,
    config: GanConfig = GanConfig(),
    *,
    inpainter: str | Path,
    model_config: UNetConfig = UNetConfig(heads=(1,), width=16, depth=4),
    init: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train the tomogram-refinement U-Net GAN on the trained inpainter's reconstructions.

    Parameters
    ----------
    kinds : sequence of str
        The phantom kinds it learns from, drawn afresh for every sample.
    out : str or Path
        Weights file (``.pt``); checkpoint and history beside it.
    config : GanConfig
        Training.
    inpainter : str or Path
        The inpainting generator's weights (:func:`train_inpainter`): its reconstructions
        are what the refiner learns to correct.
    model_config : UNetConfig
        Refiner architecture (one regression head; ignored with ``init``).
    init : str or Path, optional
        Start from these refiner weights (fine-tuning); default: random, with a zero
        last layer so that the refiner starts as the identity.
    progress : bool
        Show a progress bar.

    Returns
    -------
    TrainResult
        The weights, history, last validation numbers and seconds.
    """
    from ..data import sha256

    out = Path(out)
    kinds = check_kinds(kinds)
    inpainter_weights = inpainter
    inpainter, _ = load_model(inpainter_weights, expected=INPAINT_FORMAT)
    torch.manual_seed(config.seed)
    refiner = UNet(model_config)
    torch.nn.init.zeros_(refiner.head.weight)  # start as the identity: out = FBP
    torch.nn.init.zeros_(refiner.head.bias)
    if init is not None:
        refiner, _ = load_model(init, expected=REFINE_FORMAT)
        model_config = refiner.config
    discriminator = PatchDiscriminator(PatchConfig(in_channels=1))
    projector = Projector(config.n, full_angles(config.n))
    val = refine_batch(config, -1, range(config.validation), inpainter, kinds=kinds)

    def make(cfg, step, indices):
        return refine_batch(cfg, step, indices, inpainter, kinds=kinds)

    def step_fn(networks, batch, optimize):
        g, d = networks["generator"], networks["discriminator"]
        x, target = batch["input"], batch["target"]
        out_ = x + g(x)
        l1 = (out_ - target).abs().mean()
        proj = (batch["rows"] * (projector.forward(out_[:, 0]) - batch["measured"])).abs().mean() / x.shape[-1]
        adv = _bce(d(out_), True)
        optimize("generator", l1 + config.consistency * proj + config.adversarial * adv)
        d_loss = 0.5 * (_bce(d(target), True) + _bce(d(out_.detach()), False))
        optimize("discriminator", d_loss)
        return {"l1": l1.item(), "proj": proj.item(), "adv": adv.item(), "d": d_loss.item()}

    def validate(networks) -> dict:
        x, q = val["input"], val["q"].view(-1, 1, 1)
        refined = (x + networks["generator"](x))[:, 0] * q
        return {
            "val_psnr_fbp_inpainted": float(_psnr(x[:, 0] * q, val["image"]).mean()),
            "val_psnr_refined": float(_psnr(refined, val["image"]).mean()),
        }

    return _fit_gan(
        out,
        refiner,
        discriminator,
        config,
        kinds,
        _batch_fn(config, make),
        step_fn,
        validate,
        signature={"model": model_config.to_dict(), "task": "refine", "inpainter": sha256(inpainter_weights)},
        metadata={
            "inpainter_sha256": sha256(inpainter_weights),
            "task": "residual refinement of FBP slices of inpainted sinograms (normalized by the sinogram scale)",
        },
        init=init,
        progress=progress,
        desc="refinement GAN",
    )


def gan_card(path: str | Path, *, measured: str = "") -> str:
    """The model card of an inpainter or refiner weights file (markdown).

    Parameters
    ----------
    path : str or Path
        Weights from :func:`train_inpainter` or :func:`train_refiner`.
    measured : str
        Markdown with the numbers measured on test phantoms (``03`` and ``04``).

    Returns
    -------
    str
        The model card, markdown (:func:`atomtools.models.model_card`).
    """
    from ..models import load_model, model_card

    _, meta = load_model(path)
    tc = meta.get("train_config", {})
    inpainter = meta["format"] == INPAINT_FORMAT
    data = (
        f"Phantoms of the kinds {', '.join(tc.get('kinds', []))} ({tc.get('n')} px, values 0 .. 1), drawn afresh for "
        f"every sample from the seed; parallel-beam sinograms on {tc.get('n')} angles over 180 degrees (the exact "
        "matrix of scikit-image's radon); missing wedges drawn from "
        f"{tc.get('wedge')} degrees, every k-th tilt only (k = 2 .. 8) for a fraction {tc.get('sparse')}; Poisson "
        f"noise at {tc.get('dose')} counts per pixel at the sinogram mean (log-uniform), none for a fraction "
        f"{tc.get('noise_free')}. Nanoparticle sections were kept out of training entirely."
    )
    limits = (
        "Trained on simulated parallel-beam projections of 2D phantoms: no misalignment between tilts, no "
        "diffraction contrast, no beam damage, no background offset (subtract it first), one detector width "
        f"({tc.get('n')} px; other widths are resampled). Sparse series are inside its training only down to every "
        "8th grid row (11 degrees). It does not know the sample's material: what it fills in is what such phantoms "
        "look like."
    )
    return model_card(
        path,
        summary=(
            "Fills the missing wedge (and the gaps of a sparse series) of a sinogram: an RRDB generator trained as a "
            "GAN (after Ding et al., Sci. Rep. 9, 12803, 2019)."
            if inpainter
            else "Removes what artifacts remain in the filtered back-projection of an inpainted sinogram: a U-Net "
            "generator trained as a GAN with a projection-consistency term (after Ding et al., 2019)."
        ),
        use="`atomtools.tomo.reconstruct(sinogram, angles, method='gan')` (inpainting, FBP, refinement) or "
        "`method='inpaint'`; `python -m atomtools tomo reconstruct FILE --method gan`.",
        data=data,
        limits=limits,
        extra=measured,
    )

"""The project's own missing-wedge reconstruction: an unrolled network on the measured projections.

The source's design (:mod:`.task`: inpaint the sinogram, back-project, refine) lets the
networks make up projections and then forgets them; here the measured projections stay
in charge at every step. :class:`~atomtools.models.UnrolledNet` starts from the filtered
back-projection of the measured rows (each weighed by the angular interval it stands
for) and takes a few gradient steps on ``½‖M (A x − b)‖²`` (SIRT's normalization: row
and column sums of the measured part of ``A``), each corrected by a small CNN that
learns what the missing wedge hides. An untrained network is a classical method
(Landweber iteration from FBP); training only adds what the data cannot give.

- :func:`unrolled_batch` draws training samples (:func:`atomtools.tomo.task.sample`: the
  same phantoms, wedges, sparse series and doses as the GANs, from
  :data:`~atomtools.tomo.phantoms.UNROLLED_KINDS`);
- :func:`train_unrolled` trains it on the shared loop (resumable, bit-identical);
- :func:`unrolled_reconstruct` reconstructs measured sinograms at their own angles.

Everything is normalized per slice by the 99.5th percentile of the start, so the
network sees the same numbers whatever the sinogram's units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..models import UnrolledConfig, UnrolledNet, load_model, save_model
from ..training import OptimizerSpec, Task, TrainResult, fit_beside
from ..utils import Record
from .operators import Projector, angle_weights, disc_mask, full_angles
from .phantoms import UNROLLED_KINDS, check_kinds

__all__ = [
    "UNROLLED_FORMAT",
    "UnrolledTrainConfig",
    "Problem",
    "unrolled_batch",
    "train_unrolled",
    "unrolled_reconstruct",
]

UNROLLED_FORMAT = "atomtools.unrolled/1"


@dataclass(frozen=True)
class UnrolledTrainConfig(Record):
    """How the unrolled network trains, and on what.

    Attributes
    ----------
    steps : int
        Optimizer steps.
    batch_size : int
        Samples per step.
    n : int
        Phantom size and detector width [px]; the grid has ``n`` angles.
    lr : float
        Learning rate (AdamW, warm-up then cosine).
    wedge : (float, float)
        Range of the missing wedges drawn [deg].
    sparse : float
        Fraction of samples with every k-th tilt only.
    dose : (float, float)
        Range of the log-uniform dose [counts per pixel at the mean].
    noise_free : float
        Fraction of samples without noise.
    seed : int
        Seed of the network and of every sample.
    validate_every : int
        Steps between validations.
    validation : int
        Validation samples (a seed no training sample uses).
    checkpoint_every : float
        Seconds between checkpoints.
    """

    steps: int = 3000
    batch_size: int = 4
    n: int = 128
    lr: float = 1e-3
    wedge: tuple[float, float] = (20.0, 70.0)
    sparse: float = 0.25
    dose: tuple[float, float] = (100.0, 1e5)
    noise_free: float = 0.2
    seed: int = 0
    validate_every: int = 250
    validation: int = 16
    checkpoint_every: float = 120.0


class Problem:
    """The measured data of a batch of slices and what the network needs of them.

    Parameters
    ----------
    projector : Projector
        The projection geometry (the full grid in training, the measured angles otherwise).
    sinograms : torch.Tensor
        (B, n_angles, n) measured projections (anything in unmeasured rows).
    mask : torch.Tensor, optional
        (B, n_angles) measured rows; default all.

    Attributes
    ----------
    start : torch.Tensor
        (B, 1, n, n) the normalized filtered back-projection of the measured rows.
    scale : torch.Tensor
        (B, 1, 1, 1) what the slices and projections were divided by.
    """

    def __init__(self, projector: Projector, sinograms: torch.Tensor, mask: torch.Tensor | None = None):
        b, n_angles, n = sinograms.shape
        self.projector = projector
        self.mask = torch.ones(b, n_angles) if mask is None else mask.float()
        rows = self.mask[:, :, None]
        disc = torch.from_numpy(disc_mask(n).astype(np.float32))
        fbp = self._fbp(sinograms * rows)
        self.scale = torch.quantile(fbp.flatten(1), 0.995, dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
        self.start = torch.clamp_min(fbp[:, None] / self.scale, 0) * disc
        self.measured = sinograms * rows / self.scale[:, 0]
        ones = torch.ones(1, n, n)
        self.row_sums = projector.forward(ones).clamp_min(1e-6)  # (1, n_angles, n): each ray's length
        self.column_sums = projector.back(rows.expand(b, n_angles, n).contiguous()).clamp_min(1e-6)
        self.disc = disc

    def _fbp(self, sinograms: torch.Tensor) -> torch.Tensor:
        """FBP with each measured row weighed by the angular interval it stands for among the measured ones.

        Not masked to the disc (the normalization's percentile is taken over the whole square).
        """
        angles = self.projector.angles
        weights = torch.zeros(self.mask.shape)
        for i, m in enumerate(self.mask.bool()):
            idx = torch.nonzero(m).ravel()
            weights[i, idx] = torch.from_numpy(angle_weights(angles[idx.numpy()]))
        return self.projector.back((self.projector.ramp_filter(sinograms) * weights[:, :, None]).contiguous())

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """SIRT-normalized gradient of ``½‖M (A x − b)‖²`` at ``x`` (B, 1, n, n).

        Parameters
        ----------
        x : torch.Tensor
            (B, 1, n, n) normalized slices.

        Returns
        -------
        torch.Tensor
            (B, 1, n, n).
        """
        residual = (self.projector.forward(x[:, 0]) - self.measured) * self.mask[:, :, None] / self.row_sums
        return (self.projector.back(residual.contiguous()) / self.column_sums * self.disc)[:, None]

    def solve(self, net: UnrolledNet) -> torch.Tensor:
        """The network's reconstruction in the sinograms' units, non-negative, zero outside the disc.

        Parameters
        ----------
        net : UnrolledNet
            The network.

        Returns
        -------
        torch.Tensor
            (B, n, n).
        """
        out = net(self.start, self.gradient)
        return (torch.clamp_min(out, 0) * self.disc * self.scale)[:, 0]


def unrolled_batch(config: UnrolledTrainConfig, step: int, indices, *, kinds: Sequence[str] = UNROLLED_KINDS) -> dict:
    """Training samples on the full grid: phantoms, noisy sinograms, measured rows.

    Parameters
    ----------
    config : UnrolledTrainConfig
        Sizes and ranges.
    step : int
        Training step (-1: validation).
    indices : iterable of int
        Samples within the step.
    kinds : sequence of str
        Phantom kinds drawn from.

    Returns
    -------
    dict
        ``image`` (B, n, n) phantoms, ``noisy`` (B, n, n) sinograms on the grid (missing
        rows zero), ``mask`` (B, n) measured rows, ``kind`` (list of str).
    """
    from .task import sample

    drawn = [sample(config, step, i, kinds=kinds) for i in indices]
    mask = np.stack([s["mask"] for s in drawn])
    return {
        "image": torch.from_numpy(np.stack([s["image"] for s in drawn]).astype(np.float32)),
        "noisy": torch.from_numpy((np.stack([s["noisy"] for s in drawn]) * mask[:, :, None]).astype(np.float32)),
        "mask": torch.from_numpy(mask),
        "kind": [s["kind"] for s in drawn],
    }


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return -10 * torch.log10(mse)


def train_unrolled(
    kinds: Sequence[str],
    out: str | Path,
    config: UnrolledTrainConfig = UnrolledTrainConfig(),
    *,
    model_config: UnrolledConfig = UnrolledConfig(),
    init: str | Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train the unrolled network; write its weights to ``out`` (resumes from ``<out>.ckpt``).

    Loss: the mean squared error to the phantom (what PSNR scores) plus a tenth of the
    mean absolute error, on the normalized slices.

    Parameters
    ----------
    kinds : sequence of str
        The phantom kinds it learns from (:data:`~atomtools.tomo.phantoms.UNROLLED_KINDS`).
    out : str or Path
        Weights file (``.pt``); the checkpoint (``.ckpt``) and history (``.csv``) lie beside it.
    config : UnrolledTrainConfig
        Training.
    model_config : UnrolledConfig
        Architecture (ignored with ``init``: the weights bring theirs).
    init : str or Path, optional
        Start from these weights (fine-tuning); default: untrained (Landweber from FBP).
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
    torch.manual_seed(config.seed)
    net = UnrolledNet(model_config)
    if init is not None:
        net, _ = load_model(init, expected=UNROLLED_FORMAT)
        model_config = net.config
    projector = Projector(config.n, full_angles(config.n))
    val = unrolled_batch(config, -1, range(config.validation), kinds=kinds)
    val_problem = Problem(projector, val["noisy"], val["mask"])

    def batch(step: int, rank: int, world: int) -> dict:
        per_rank = config.batch_size // world
        b = unrolled_batch(config, step, range(rank * per_rank, (rank + 1) * per_rank), kinds=kinds)
        return {"image": b["image"], "noisy": b["noisy"], "mask": b["mask"]}

    def train_step(networks, b, optimize):
        problem = Problem(projector, b["noisy"], b["mask"])
        x = networks["unrolled"](problem.start, problem.gradient)
        target = b["image"][:, None] / problem.scale
        x = torch.clamp_min(x, 0) * problem.disc
        mse = ((x - target) ** 2).mean()
        l1 = (x - target).abs().mean()
        optimize("unrolled", mse + 0.1 * l1)
        return {"mse": float(mse.detach()), "l1": float(l1.detach())}

    def validate(networks) -> dict:
        image = val_problem.solve(networks["unrolled"])
        start = (val_problem.start * val_problem.scale)[:, 0]
        return {
            "val_psnr": float(_psnr(image, val["image"]).mean()),
            "val_psnr_fbp": float(_psnr(start, val["image"]).mean()),
        }

    task = Task(
        networks={"unrolled": net},
        optimizers={"unrolled": OptimizerSpec(("unrolled",), lr=config.lr)},
        batch=batch,
        train_step=train_step,
        validate=validate,
        signature={
            "model": model_config.to_dict(),
            "config": config.to_dict(),
            "kinds": list(kinds),
            "init": None if init is None else sha256(init),
        },
    )
    history, validation, seconds = fit_beside(task, out, config, progress=progress, desc="unrolled network")
    save_model(
        out,
        net,
        metadata={
            "task": "missing-wedge reconstruction: learned gradient steps on the measured projections",
            "train_config": {**config.to_dict(), "kinds": list(kinds)},
            "validation": validation,
            "training_seconds": seconds,
            "init": None if init is None else sha256(init),
        },
    )
    return TrainResult(weights=out, history=history, validation=validation, seconds=seconds)


def unrolled_reconstruct(sinogram, angles, *, model) -> np.ndarray:
    """Reconstruct slices from their measured projections at their own angles.

    Parameters
    ----------
    sinogram : array_like
        ``(n_angles, n)`` or ``(n_slices, n_angles, n)``, one row per angle.
    angles : array_like
        Tilt angles [deg], ascending.
    model : str, Path or UnrolledNet
        Weights file or network.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` or ``(n_slices, n, n)`` float32, non-negative, zero outside the disc.
    """
    from .classical import check_sinogram

    sino, angles = check_sinogram(sinogram, angles)
    net = model if isinstance(model, torch.nn.Module) else load_model(model, expected=UNROLLED_FORMAT)[0]
    single = sino.ndim == 2
    batch = torch.from_numpy(sino[None] if single else sino)
    problem = Problem(Projector(sino.shape[-1], angles), batch)
    with torch.no_grad():
        image = problem.solve(net.eval()).numpy()
    return image[0] if single else image

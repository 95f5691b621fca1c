"""The project's own missing-wedge reconstruction: an unrolled network on the measured projections.

The source's design (:mod:`.task`: inpaint the sinogram, back-project, refine) lets the
networks make up projections and then forgets them; here the measured projections stay
in charge at every step. :class:`~atomtools.models.UnrolledNet` starts from the filtered
back-projection of the measured rows (each weighed by the angular interval it stands
for) and takes a few gradient steps on ``½‖M (A x − b)‖²`` (SIRT's normalization: row
and column sums of the measured part of ``A``), each corrected by a small CNN that
learns what the missing wedge hides. An untrained network is a classical method
(Landweber iteration from FBP); training only adds what the data cannot give.

Started from TV instead (``UnrolledConfig(start="tv", step=0)``), the untrained network
*is* TV, and training learns only the residual TV leaves, keeping the data-consistency
steps: a model bounded below by the best classical method at the start of its training.
TV is too slow to recompute at every step on a CPU, so such a network trains on a fixed
pool of samples (:func:`tv_pool`: groups sharing one tilt geometry, TV-reconstructed in
a batch, cached on disk and resumable).

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
    "tv_pool",
    "train_unrolled",
    "unrolled_reconstruct",
    "unrolled_card",
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
    pool : int
        With a TV start: training groups in the pool of fixed samples (:func:`tv_pool`);
        0 draws fresh samples at every step (FBP start only).
    group : int
        Samples per pool group (they share one tilt geometry).
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
    pool: int = 0
    group: int = 16


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
    start : torch.Tensor, optional
        (B, n, n) where to start, in the sinograms' units (a TV reconstruction of the
        measured rows); default their filtered back-projection.

    Attributes
    ----------
    start : torch.Tensor
        (B, 1, n, n) the normalized start.
    scale : torch.Tensor
        (B, 1, 1, 1) what the slices and projections were divided by.
    """

    def __init__(
        self,
        projector: Projector,
        sinograms: torch.Tensor,
        mask: torch.Tensor | None = None,
        start: torch.Tensor | None = None,
    ):
        b, n_angles, n = sinograms.shape
        self.projector = projector
        self.mask = torch.ones(b, n_angles) if mask is None else mask.float()
        rows = self.mask[:, :, None]
        disc = torch.from_numpy(disc_mask(n).astype(np.float32))
        first = self._fbp(sinograms * rows) if start is None else start.float()
        self.scale = torch.quantile(first.flatten(1), 0.995, dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
        self.start = torch.clamp_min(first[:, None] / self.scale, 0) * disc
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


def _pool_group(config: UnrolledTrainConfig, group: int, kinds: Sequence[str], *, tv_iterations: int, split: int):
    from .classical import tv
    from .phantoms import phantom
    from .sinograms import add_shot_noise, random_mask
    from .task import draw_dose

    rng = np.random.default_rng([config.seed, 20, split, group])
    mask, _ = random_mask(rng, n_grid=config.n, wedge=config.wedge, sparse=config.sparse)
    grid = full_angles(config.n)
    projector = Projector(config.n, grid)
    images, noisy = [], []
    for _ in range(config.group):
        kind = kinds[int(rng.integers(len(kinds)))]
        image = phantom(kind, n=config.n, seed=int(rng.integers(2**31)))
        dose = draw_dose(config, rng)
        images.append(image)
        noisy.append(add_shot_noise(projector.forward(image), dose=dose, rng=rng) * mask[:, None])
    noisy = np.stack(noisy).astype(np.float32)
    return {
        "image": np.stack(images).astype(np.float32),
        "noisy": noisy,
        "mask": np.broadcast_to(mask, (config.group, config.n)).copy(),
        "start": tv(noisy[:, mask], grid[mask], iterations=tv_iterations).astype(np.float32),
    }


def tv_pool(
    config: UnrolledTrainConfig,
    kinds: Sequence[str],
    folder: str | Path,
    *,
    groups: int,
    tv_iterations: int,
    validation: bool = False,
    progress: bool = True,
) -> dict:
    """A fixed pool of training samples with their TV reconstructions, cached group by group.

    Each group holds ``config.group`` phantoms (kinds drawn from ``kinds``, doses from
    ``config``) measured with one tilt geometry (:func:`~atomtools.tomo.sinograms.random_mask`),
    so that TV reconstructs them in one batch. A group is written to ``folder`` as soon as
    it is done (through a temporary file); an interrupted pool resumes where it stopped.
    The same arguments give the same pool.

    Parameters
    ----------
    config : UnrolledTrainConfig
        Sizes, ranges, seed and ``group``.
    kinds : sequence of str
        Phantom kinds.
    folder : str or Path
        Where the groups are cached (regenerable: keep it out of version control).
    groups : int
        Number of groups.
    tv_iterations : int
        Iterations of the TV start (:func:`atomtools.tomo.classical.tv`, default weight).
    validation : bool
        Draw the validation pool (a seed no training group uses).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict of numpy.ndarray
        ``image`` (N, n, n), ``noisy`` (N, n_grid, n) measured rows (others zero), ``mask``
        (N, n_grid) bool, ``start`` (N, n, n) the TV reconstructions; N = groups x group.
    """
    from ..utils import atomic_path, progress_bar

    kinds = check_kinds(kinds)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    split = 1 if validation else 0
    tag = f"n{config.n}-s{config.seed}-tv{tv_iterations}-g{config.group}-{'-'.join(kinds)}"
    parts = []
    for g in progress_bar(range(groups), desc="TV pool", disable=not progress):
        path = folder / f"{'val' if validation else 'train'}-{tag}-{g:04d}.npz"
        if not path.is_file():
            part = _pool_group(config, g, kinds, tv_iterations=tv_iterations, split=split)
            with atomic_path(path, suffix=".npz") as tmp:
                np.savez(tmp, **part)
        with np.load(path) as f:
            parts.append({k: f[k] for k in ("image", "noisy", "mask", "start")})
    return {k: np.concatenate([p[k] for p in parts]) for k in ("image", "noisy", "mask", "start")}


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
    pool_dir: str | Path | None = None,
) -> TrainResult:
    """Train the unrolled network; write its weights to ``out`` (resumes from ``<out>.ckpt``).

    Loss: the mean over the slices of the logarithm of each slice's squared error to its
    phantom, in the phantom's units (0 .. 1): minus the mean PSNR (up to a factor), what
    the evaluation scores. A plain mean squared error over the batch is ruled by the
    hardest slices and let the network spoil the easy ones (tried: the validation PSNR fell
    below TV's, its start); in the network's normalized units a sparse object, whose start
    is smeared far below its peaks, gave outlier losses.

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
        Start from these weights (fine-tuning); default: untrained (Landweber from FBP,
        or TV itself with ``model_config.start="tv"`` and ``step=0``).
    progress : bool
        Show a progress bar.
    pool_dir : str or Path, optional
        With a TV start: where the pool of samples is cached (:func:`tv_pool`); default
        ``<out>.pool`` beside the weights.

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
    if model_config.start == "tv":
        if config.pool < 1:
            raise ValueError("a TV start trains on a pool of samples: set UnrolledTrainConfig.pool >= 1 (groups)")
        folder = Path(pool_dir) if pool_dir is not None else out.with_suffix(".pool")
        sizes = {"kinds": kinds, "folder": folder, "tv_iterations": model_config.tv_iterations, "progress": progress}
        pool = {k: torch.from_numpy(v) for k, v in tv_pool(config, groups=config.pool, **sizes).items()}
        val_groups = -(-config.validation // config.group)
        held = tv_pool(config, groups=val_groups, validation=True, **sizes)
        val = {k: torch.from_numpy(v[: config.validation]) for k, v in held.items()}
    else:
        pool = None
        val = unrolled_batch(config, -1, range(config.validation), kinds=kinds)
    val_problem = Problem(projector, val["noisy"], val["mask"], val.get("start"))

    def batch(step: int, rank: int, world: int) -> dict:
        per_rank = config.batch_size // world
        if pool is not None:
            pick = np.random.default_rng([config.seed, step]).permutation(len(pool["image"]))[: config.batch_size]
            pick = torch.from_numpy(pick[rank * per_rank : (rank + 1) * per_rank])
            return {k: pool[k][pick] for k in ("image", "noisy", "mask", "start")}
        b = unrolled_batch(config, step, range(rank * per_rank, (rank + 1) * per_rank), kinds=kinds)
        return {"image": b["image"], "noisy": b["noisy"], "mask": b["mask"]}

    def train_step(networks, b, optimize):
        problem = Problem(projector, b["noisy"], b["mask"], b.get("start"))
        x = networks["unrolled"](problem.start, problem.gradient)
        target = b["image"][:, None]
        x = torch.clamp_min(x, 0) * problem.disc * problem.scale
        per_slice = ((x - target) ** 2).flatten(1).mean(1)
        loss = torch.log10(per_slice + 1e-8).mean()
        optimize("unrolled", loss)
        return {"mse": float(per_slice.mean().detach()), "psnr": float(-10 * loss.detach())}

    def validate(networks) -> dict:
        image = val_problem.solve(networks["unrolled"])
        start = (val_problem.start * val_problem.scale)[:, 0]
        return {
            "val_psnr": float(_psnr(image, val["image"]).mean()),
            f"val_psnr_{model_config.start}": float(_psnr(start, val["image"]).mean()),
        }

    task = Task(
        networks={"unrolled": net},
        optimizers={"unrolled": OptimizerSpec(("unrolled",), lr=config.lr, clip=1.0)},
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
    from .classical import check_sinogram, tv

    sino, angles = check_sinogram(sinogram, angles)
    net = model if isinstance(model, torch.nn.Module) else load_model(model, expected=UNROLLED_FORMAT)[0]
    single = sino.ndim == 2
    batch = torch.from_numpy(sino[None] if single else sino)
    start = None
    if net.config.start == "tv":
        start = torch.from_numpy(tv(batch.numpy(), angles, iterations=net.config.tv_iterations))
    problem = Problem(Projector(sino.shape[-1], angles), batch, start=start)
    with torch.no_grad():
        image = problem.solve(net.eval()).numpy()
    return image[0] if single else image


def unrolled_card(path: str | Path, *, measured: str = "") -> str:
    """The model card of an unrolled network's weights file (markdown).

    Parameters
    ----------
    path : str or Path
        Weights from :func:`train_unrolled`.
    measured : str
        Markdown with the numbers measured on test phantoms.

    Returns
    -------
    str
        The model card, markdown (:func:`atomtools.models.model_card`).
    """
    from ..models import load_model, model_card

    net, meta = load_model(path, expected=UNROLLED_FORMAT)
    tc = meta.get("train_config", {})
    start = (
        f"the TV reconstruction of the measured projections ({net.config.tv_iterations} iterations, the default "
        "weight), so that the untrained network is TV itself"
        if net.config.start == "tv"
        else "the filtered back-projection of the measured projections"
    )
    pool = (
        f" A fixed pool of {tc.get('pool')} groups of {tc.get('group')} samples (one tilt geometry a group), their "
        "TV reconstructions cached."
        if net.config.start == "tv"
        else " Drawn afresh for every sample from the seed."
    )
    data = (
        f"Phantoms of the kinds {', '.join(tc.get('kinds', []))} ({tc.get('n')} px, values 0 .. 1); "
        f"parallel-beam sinograms on {tc.get('n')} angles over 180 degrees; missing wedges drawn from "
        f"{tc.get('wedge')} degrees, every k-th tilt only (k = 2 .. 8) for a fraction {tc.get('sparse')}; Poisson "
        f"noise at {tc.get('dose')} counts per pixel at the sinogram mean (log-uniform), none for a fraction "
        f"{tc.get('noise_free')}.{pool} Shepp-Logan, random ellipses and nanoparticle sections were kept out of "
        "training entirely."
    )
    limits = (
        "Trained on simulated parallel-beam projections of 2D phantoms: no misalignment between tilts, no "
        "diffraction contrast, no background offset (subtract it first). The data-consistency steps use the "
        "measured angles as they are, so any number of tilts and any detector width run, but the corrections were "
        f"learned at {tc.get('n')} px. It is as slow as its start (TV) plus 0.1 s a slice on 2 cores."
    )
    return model_card(
        path,
        summary=(
            f"The project's own missing-wedge reconstruction: starts from {start}, then takes "
            f"{net.config.iterations} gradient steps on the measured projections, each corrected by a small CNN "
            "(learned gradient descent)."
        ),
        use="`atomtools.tomo.reconstruct(sinogram, angles, method='unrolled')`; "
        "`python -m atomtools tomo reconstruct FILE --method unrolled`.",
        data=data,
        limits=limits,
        extra=measured,
    )

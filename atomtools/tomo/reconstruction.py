"""Reconstruct a slice or a volume from a tilt series: the classical methods and the GANs.

:func:`reconstruct` takes one sinogram ``(n_angles, n_detector)`` with its angles [deg]
and a method:

``"fbp"``, ``"sart"``, ``"sirt"``, ``"tv"``
    :mod:`.classical`, from the measured projections as they are.
``"inpaint"``
    The missing projections filled by the RRDB GAN, then filtered back-projection.
``"gan"``
    The joint model of Ding et al. (2019): inpainting, filtered back-projection and the
    U-Net refiner.
``"refine"``
    The refiner alone on the filtered back-projection of the raw sinogram.
``"unrolled"``
    The project's own model (:mod:`.unrolled`): TV of the measured projections, then
    learned gradient steps on them (the residual TV leaves, kept consistent with the data).

``inpaint=True`` runs a classical method on the inpainted sinogram instead (the source
work's WBP, SART and TV "from the inpainted sinogram"); the iterative methods keep every
measured row and trust an inpainted one by ``inpainted_weight`` times its mass consistency
with the measured rows (:func:`~atomtools.tomo.sinograms.inpainted_row_weights`), so an
inpainted row that contradicts the measured ones cannot pull the slice away from them.

The networks work on a grid of 128 angles over 180 degrees and 128 detector pixels: a
sinogram of another width is resampled along the detector (and the slice back), and
the inpainter sees each measured projection on the nearest grid row (at most 0.70
degrees away; projections denser than the grid, such as 1 degree steps, are averaged
per row). The back-projection then uses the measured projections at their true angles
and the inpainted ones at the grid angles no measurement occupies.
:func:`reconstruct_volume` runs slice by slice in batches with bounded memory and a
progress bar.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..utils import atomic_path, progress_bar
from . import classical
from .classical import check_sinogram
from .operators import Projector, full_angles
from .sinograms import grid_rows, inpainted_row_weights

__all__ = [
    "METHODS",
    "NETWORK_METHODS",
    "LEARNED_METHODS",
    "INPAINTED_WEIGHT",
    "reconstruct",
    "reconstruct_volume",
    "load_networks",
]

#: The source work's networks (inpainter and refiner).
NETWORK_METHODS = ("inpaint", "gan", "refine")
#: The project's own learned reconstruction (:mod:`.unrolled`).
LEARNED_METHODS = ("unrolled",)
METHODS = (*classical.CLASSICAL_METHODS, *NETWORK_METHODS, *LEARNED_METHODS)

#: Trust in an inpainted row that keeps the measured rows' mass, per iterative method
#: (FBP weighs every row alike: its filter assumes a full grid); 1 is the source's way.
#: Chosen on validation phantoms of the training kinds (3 each, 45 degree wedge, 10^4 and
#: 10^3 counts; ``tune(method, {"inpaint": [True], "inpainted_weight": [0, 0.25, 0.5, 1]})``)
#: with the shipped inpainter: every trust above 0 lowered the PSNR (SART 27.4 dB at 0,
#: 24.8 at 0.25, 23.5 at 1; SIRT 28.6, 25.2, 24.0; TV 33.8, 26.2, 24.9): its rows contradict
#: the measured ones, so the iterative methods keep to the measured rows.
INPAINTED_WEIGHT: dict[str, float] = {"sart": 0.0, "sirt": 0.0, "tv": 0.0}


@lru_cache(maxsize=4)
def _load(inpainter: str, refiner: str):
    import torch

    from ..models import load_model

    torch.set_grad_enabled(True)
    g, g_meta = load_model(inpainter, expected="atomtools.rrdb/1")
    r, r_meta = load_model(refiner, expected="atomtools.unet/1")
    return g, r, int(g_meta.get("train_config", {}).get("n", 128))


@lru_cache(maxsize=4)
def _load_unrolled(path: str):
    from ..models import load_model
    from .unrolled import UNROLLED_FORMAT

    return load_model(path, expected=UNROLLED_FORMAT)[0].eval()


def load_networks(inpainter: str | Path | None = None, refiner: str | Path | None = None):
    """The inpainting and refinement networks: given paths, else the shipped weights.

    Parameters
    ----------
    inpainter, refiner : str or Path, optional
        Weights files; default the shipped ``tomo-inpaint`` and ``tomo-refine``
        (``data_manifest.yml``).

    Returns
    -------
    (torch.nn.Module, torch.nn.Module, int)
        Inpainter, refiner, and the grid size ``n`` they were trained on.
    """
    from ..data import fetch

    inpainter = str(inpainter) if inpainter else str(fetch("tomo-inpaint"))
    refiner = str(refiner) if refiner else str(fetch("tomo-refine"))
    return _load(inpainter, refiner)


def _resample(sino: np.ndarray, n: int) -> np.ndarray:
    from scipy.ndimage import zoom

    return zoom(sino, (1,) * (sino.ndim - 1) + (n / sino.shape[-1],), order=1)


def _to_grid(sino: np.ndarray, angles: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    if sino.shape[-1] != n:
        sino = _resample(sino, n)
    # a series denser than the grid (1 or 2 degree steps) shares rows: their mean goes there
    rows = grid_rows(angles, n_grid=n, unique=False)
    grid = np.zeros((*sino.shape[:-2], n, n), np.float32)
    _accumulate(grid, rows, sino)
    hits = np.bincount(rows, minlength=n)
    mask = hits > 0
    grid[..., mask, :] /= hits[mask][:, None]
    return grid, mask


def _accumulate(grid: np.ndarray, rows: np.ndarray, sino: np.ndarray) -> None:
    for i, row in enumerate(rows):
        grid[..., row, :] += sino[..., i, :]


def _networks(sino: np.ndarray, angles: np.ndarray, method: str, nets) -> np.ndarray:
    from scipy.ndimage import zoom

    from .task import inpaint, refine

    inpainter, refiner, n = nets
    width = sino.shape[-1]
    batch = sino.reshape(-1, *sino.shape[-2:])
    # on n pixels instead of width, a ray crosses n / width as many pixels: scale the line
    # integrals so that the slice keeps its densities
    grid, mask = _to_grid(batch * (n / width), angles, n)
    scaled = batch * (n / width) if width == n else _resample(batch * (n / width), n)
    if method == "refine":
        image = Projector(n, angles).fbp(scaled)
    else:
        completed = inpaint(inpainter, grid, np.broadcast_to(mask, (len(grid), n)))
        # measured projections at their true angles, inpainted ones at the free grid angles
        free = ~mask
        all_angles = np.concatenate([angles, full_angles(n)[free]])
        order = np.argsort(all_angles)
        rows = np.concatenate([scaled, completed[:, free]], axis=1)[:, order]
        image = Projector(n, all_angles[order]).fbp(rows)
    if method in ("gan", "refine"):
        image = refine(refiner, image.astype(np.float32))
    if width != n:
        image = zoom(image, (1, width / n, width / n), order=1)
    return image.reshape(*sino.shape[:-2], width, width).astype(np.float32)


def reconstruct(
    sinogram,
    angles,
    *,
    method: str = "gan",
    inpaint: bool = False,
    inpainted_weight: float | None = None,
    inpainter: str | Path | None = None,
    refiner: str | Path | None = None,
    unrolled: str | Path | None = None,
    **options,
) -> np.ndarray:
    """Reconstruct one slice (or a batch of slices) from its sinogram.

    Parameters
    ----------
    sinogram : array_like
        ``(n_angles, n_detector)``, one row per angle in the order of ``angles`` (or a
        batch ``(n_slices, n_angles, n_detector)``).
    angles : array_like
        Tilt angles [deg], ascending, within -90 .. 90.
    method : {"gan", "inpaint", "refine", "unrolled", "fbp", "sart", "sirt", "tv"}
        How (see the module's description).
    inpaint : bool
        For a classical method: fill the missing wedge with the inpainting GAN first and
        reconstruct from the full grid.
    inpainted_weight : float, optional
        With ``inpaint`` and an iterative method: trust in an inpainted row that keeps the
        measured rows' mass (0 .. 1); default :data:`INPAINTED_WEIGHT`.
    inpainter, refiner : str or Path, optional
        Network weights; default the shipped ones.
    unrolled : str or Path, optional
        Weights of the unrolled network (``method="unrolled"``); default the shipped
        ``tomo-unrolled``.
    **options
        Parameters of the classical method (``iterations``, ``weight``, ...).

    Returns
    -------
    numpy.ndarray
        ``(n_detector, n_detector)`` slice(s), float32, zero outside the reconstruction disc.

    Raises
    ------
    ValueError
        For a sinogram whose layout does not match the angles, NaN, an empty or
        constant sinogram, angles outside -90 .. 90 or unsorted, or an unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(METHODS)}")
    sino, angles = check_sinogram(sinogram, angles)
    if method in LEARNED_METHODS:
        from ..data import fetch
        from .unrolled import unrolled_reconstruct

        if options or inpaint:
            raise ValueError(f"method {method!r} takes no options, got {sorted(options) or ['inpaint']}")
        return unrolled_reconstruct(sino, angles, model=_load_unrolled(str(unrolled or fetch("tomo-unrolled"))))
    if method in NETWORK_METHODS:
        if options:
            raise ValueError(f"method {method!r} takes no options, got {sorted(options)}")
        return _networks(sino, angles, method, load_networks(inpainter, refiner))
    if inpaint:
        from .task import inpaint as fill

        g, _, n = load_networks(inpainter, refiner)
        if sino.shape[-1] != n:
            raise ValueError(f"inpaint=True needs sinograms {n} px wide (the networks' grid), got {sino.shape[-1]}")
        grid, mask = _to_grid(sino.reshape(-1, *sino.shape[-2:]), angles, n)
        sino = fill(g, grid, np.broadcast_to(mask, (len(grid), n))).reshape(*sino.shape[:-2], n, n)
        angles = full_angles(n)
        if method != "fbp":
            base = INPAINTED_WEIGHT[method] if inpainted_weight is None else float(inpainted_weight)
            options = {"row_weights": inpainted_row_weights(sino, mask, base=base), **options}
    elif inpainted_weight is not None:
        raise ValueError("inpainted_weight applies with inpaint=True only")
    fn = getattr(classical, method)
    if method in ("sirt", "tv") or sino.ndim == 2:
        return fn(sino, angles, **options)
    return np.stack([fn(s, angles, **options) for s in sino])


def reconstruct_volume(
    tilt_series,
    angles,
    *,
    method: str = "gan",
    batch: int = 16,
    out: str | Path | None = None,
    progress: bool = True,
    **options,
) -> np.ndarray:
    """Reconstruct every slice of a tilt series, in batches, with a progress bar.

    Parameters
    ----------
    tilt_series : array_like
        ``(n_angles, n_slices, n_detector)`` (tilt, y, x): ``tilt_series[:, j, :]`` is the
        sinogram of slice ``j`` (:class:`atomtools.readers.TiltSeries` ``.data``). A
        memory-mapped array is read a batch at a time.
    angles : array_like
        [deg], one per tilt.
    method : str
        As for :func:`reconstruct`.
    batch : int
        Slices per batch (bounds the memory).
    out : str or Path, optional
        Write the volume there as ``.npy``, slice batch by slice batch into a memory map
        (so a volume larger than memory fits), renamed into place when complete; the
        returned array is then that memory map (read-only).
    progress : bool
        Show a progress bar.
    **options
        Passed to :func:`reconstruct`.

    Returns
    -------
    numpy.ndarray
        ``(n_slices, n_detector, n_detector)`` volume (y, z, x), float32.
    """
    series = tilt_series if hasattr(tilt_series, "shape") else np.asarray(tilt_series)
    if len(series.shape) != 3:
        raise ValueError(
            f"a tilt series must be 3-D (n_angles, n_slices, n_detector) = (tilt, y, x), got shape {series.shape}"
        )
    if series.shape[0] != len(np.ravel(angles)):
        raise ValueError(
            f"the tilt series has {series.shape[0]} tilts on its first axis but {len(np.ravel(angles))} angles were "
            "given: the expected layout is (n_angles, n_slices, n_detector) = (tilt, y, x)"
        )
    n_slices, width = series.shape[1], series.shape[2]

    def fill(volume) -> None:
        with progress_bar(total=n_slices, desc=f"reconstruct ({method})", disable=not progress, unit="slice") as bar:
            for start in range(0, n_slices, batch):
                chunk = np.asarray(series[:, start : start + batch, :], dtype=np.float32).transpose(1, 0, 2)
                volume[start : start + len(chunk)] = reconstruct(chunk, angles, method=method, **options)
                bar.update(len(chunk))

    if out is None:
        volume = np.zeros((n_slices, width, width), np.float32)
        fill(volume)
        return volume
    # straight into a memory-mapped .npy that appears under its name only when complete
    with atomic_path(Path(out), suffix=".npy") as tmp:
        volume = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_slices, width, width))
        fill(volume)
        volume.flush()
        del volume
    return np.load(out, mmap_mode="r")

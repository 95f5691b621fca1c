"""Atoms from one atomic-resolution frame: segmentation, denoising, sub-pixel positions.

:func:`segment` runs the network (a U-Net with three one-channel heads: a Gaussian
mask on every atomic column, the denoised image and the deblurred image) over a frame
of any size in blended tiles; :func:`find_atoms` turns the mask into a table of
positions: local maxima above a threshold, refined to sub-pixel by a parabola through
the logarithm of the mask (exact for the Gaussian the network was trained to draw),
with a per-atom confidence (the mask's peak) and intensity (the denoised image there).

Frames reach the network normalized by :func:`normalize_frame` (an affine map that
sends the 1st and 99.5th percentile of the lightly smoothed frame to 0 and 1), so
counts, 8-bit and 16-bit PNGs and background-subtracted frames all arrive alike; the
denoised and deblurred images go back to the frame's units. Frames too large to hold
in memory at once (a ``numpy.memmap`` or a dask array) are processed in blocks.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..core.tables import from_pixels
from .frames import _statistics, _strided_sample, as_grey, background_level, normalize_frame  # re-exported

__all__ = [
    "SEGMENTER_SAMPLING",
    "as_grey",
    "normalize_frame",
    "background_level",
    "flattens",
    "load_segmenter",
    "segment",
    "peaks_to_table",
    "refine_positions",
    "find_atoms",
]

#: The pixel sizes the shipped segmenter was trained on [Å]; frames of known sampling
#: outside it are resampled into it (area-averaged when shrinking).
SEGMENTER_SAMPLING = (0.06, 0.2)

#: Pixels per block when a frame is processed in pieces (memory-mapped or larger than this squared).
BLOCK = 2048


def load_segmenter(model="pretrained"):
    """The segmentation network and its metadata.

    Parameters
    ----------
    model : str, Path or (torch.nn.Module, dict)
        ``"pretrained"`` (the shipped weights, fetched through :mod:`atomtools.data`), a
        weights file written by :func:`atomtools.localize.train_segmenter`, or a loaded
        (network, metadata) pair.

    Returns
    -------
    (torch.nn.Module, dict)
        The network in eval mode (batch norm folded) and its metadata.
    """
    from ..models import fuse_for_inference, load_model

    if isinstance(model, tuple):
        net, meta = model
    else:
        if isinstance(model, str) and model == "pretrained":
            from ..data import fetch

            model = fetch("atomseg")
        net, meta = load_model(Path(model), expected="atomtools.unet/1")
        if meta.get("task") != "atom-segmentation":
            raise ValueError(f"{model} holds a network for {meta.get('task')!r}, not atom segmentation")
    net = fuse_for_inference(net) if hasattr(net, "config") else net
    return net.eval(), meta


def _resample_plan(sampling: float | None, shape) -> float:
    """Zoom factor that brings a known sampling into :data:`SEGMENTER_SAMPLING` (1 if unknown or inside)."""
    if sampling is None:
        return 1.0
    lo, hi = SEGMENTER_SAMPLING
    if sampling < lo:
        return sampling / lo
    if sampling > hi:
        return sampling / hi
    return 1.0


def segment(
    image,
    *,
    sampling: float | None = None,
    model="pretrained",
    tile: int | None = None,
    stats: tuple[float, float] | None = None,
    contrast: str = "bright",
) -> dict[str, np.ndarray]:
    """The network's maps of one frame: atom mask, denoised and deblurred images.

    Parameters
    ----------
    image : array-like
        (H, W) frame (grey, or RGB(A) with equal channels; see :func:`as_grey`).
    sampling : float, optional
        Pixel size [Å]; outside :data:`SEGMENTER_SAMPLING` the frame is resampled into
        it and the maps back to the frame's pixels. Unknown: used as it is.
    model : str, Path or (torch.nn.Module, dict)
        As for :func:`load_segmenter`.
    tile : int, optional
        Tile size [px] (default :func:`atomtools.inference.auto_tile`).
    stats : (float, float), optional
        Normalization (:func:`normalize_frame`) of the network's view of the frame
        (negated if dark, less its :func:`background_level` if the network was trained
        so); default from this frame.
    contrast : {"bright", "dark"}
        Atoms brighter than the background (HAADF, most HRTEM at negative Cs) or darker
        (annular or plain bright field, HRTEM at positive Cs): a dark frame is negated
        for the network and the denoised and deblurred maps negated back.

    Returns
    -------
    dict
        ``mask`` (H, W) float32 in [0, 1] (a Gaussian of peak 1 on every atom),
        ``denoised`` and ``deblurred`` (H, W) float32 in the frame's units.
    """
    from ..core.frames import check_sampling, resample_frame
    from ..inference import Regression, predict_tiled

    if contrast not in ("bright", "dark"):
        raise ValueError(f"contrast must be 'bright' (atoms brighter than the background) or 'dark', got {contrast!r}")
    frame = as_grey(image)
    if sampling is not None:
        sampling = check_sampling(sampling)
    net, meta = load_segmenter(model)
    view = _network_view(frame, sampling, meta, contrast)
    x, (offset, scale) = normalize_frame(view["frame"], stats=stats)
    factor = _resample_plan(sampling, frame.shape)
    # the one resampler (averaging where it shrinks, so no dose is lost), in pixels of the frame
    small = x if factor == 1.0 else resample_frame(x, 1.0, 1.0 / factor).astype(np.float32)
    multiple = int(meta.get("config", {}).get("stem", 1)) * 2 ** int(meta.get("config", {}).get("depth", 3))
    maps = predict_tiled(small, net, Regression(3), multiple=multiple, tile=tile)["image"]
    if factor != 1.0:
        maps = resample_frame(maps, 1.0 / factor, 1.0, shape=frame.shape)
    mask = 1.0 / (1.0 + np.exp(-np.clip(maps[0], -30, 30)))
    sign, level = view["sign"], view["level"]
    return {
        "mask": mask.astype(np.float32),
        "denoised": (sign * (maps[1] * scale + offset + level)).astype(np.float32),
        "deblurred": (sign * (maps[2] * scale + offset + level)).astype(np.float32),
    }


def flattens(meta: dict) -> bool:
    """Whether a segmenter was trained on frames less their :func:`background_level`.

    Parameters
    ----------
    meta : dict
        The weights' metadata (:func:`load_segmenter`'s second item); weights without
        ``train_config.flatten`` (trained before it existed) see frames as they are.

    Returns
    -------
    bool
        True where ``train_config.flatten`` is set.
    """
    return bool(meta.get("train_config", {}).get("flatten", False))


def _network_view(frame: np.ndarray, sampling: float | None, meta: dict, contrast: str) -> dict:
    """The frame as the network was trained to see it: atoms bright, less the background level if so trained."""
    sign = 1.0 if contrast == "bright" else -1.0  # a dark frame, negated: the darkest atoms brightest
    view = frame if sign > 0 else -frame
    level = background_level(view, sampling=sampling) if flattens(meta) else np.float32(0.0)
    return {"frame": (view - level).astype(np.float32), "sign": sign, "level": level}


def _subpixel(mask: np.ndarray, rc: np.ndarray) -> np.ndarray:
    """Log-parabola peak of ``mask`` around integer maxima (row, col): exact for a Gaussian."""
    r, c = rc[:, 0], rc[:, 1]
    h, w = mask.shape
    lg = np.log(np.clip(mask, 1e-6, None))

    def offset(m, p):
        denom = m[0] - 2 * m[1] + m[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(denom < 0, 0.5 * (m[0] - m[2]) / denom, 0.0)
        return np.clip(d, -0.5, 0.5) * p

    inside_r = (r > 0) & (r < h - 1)
    inside_c = (c > 0) & (c < w - 1)
    rm, rp = np.clip(r - 1, 0, h - 1), np.clip(r + 1, 0, h - 1)
    cm, cp = np.clip(c - 1, 0, w - 1), np.clip(c + 1, 0, w - 1)
    dr = offset((lg[rm, c], lg[r, c], lg[rp, c]), inside_r)
    dc = offset((lg[r, cm], lg[r, c], lg[r, cp]), inside_c)
    return np.column_stack([r + dr, c + dc])


def peaks_to_table(
    mask: np.ndarray,
    *,
    denoised: np.ndarray | None = None,
    sampling: float | None = None,
    threshold: float = 0.3,
    min_distance: int = 2,
) -> pd.DataFrame:
    """Atoms of a segmentation mask: local maxima above ``threshold``, refined to sub-pixel.

    Parameters
    ----------
    mask : numpy.ndarray
        (H, W) mask in [0, 1] (:func:`segment`'s ``mask``).
    denoised : numpy.ndarray, optional
        Image to read each atom's intensity from (bilinear at its position).
    sampling : float, optional
        Pixel size [Å]; None: unknown (``x``, ``y`` NaN).
    threshold : float
        Least peak value of an atom.
    min_distance : int
        Least distance between two atoms [px].

    Returns
    -------
    pandas.DataFrame
        The one table convention (:data:`atomtools.core.tables.POSITION`): ``x``, ``y``
        [Å] (NaN where the sampling is unknown), ``row``, ``col`` [px] (pixel centres at
        integers), then ``confidence`` (the mask's peak, 0-1) and ``intensity``.

    Examples
    --------
    >>> from atomtools.simulation.stem import splat_gaussians
    >>> m = splat_gaussians((32, 32), np.array([[10.3, 20.6]]), sigma=1.5)
    >>> t = peaks_to_table(m, sampling=0.1)
    >>> round(float(t.col[0]), 3), round(float(t.row[0]), 3), round(float(t.x[0]), 3)
    (20.6, 10.3, 2.06)
    """
    from skimage.feature import peak_local_max

    rc = peak_local_max(mask, min_distance=max(1, int(min_distance)), threshold_abs=threshold, exclude_border=False)
    rc = rc.reshape(-1, 2)
    fine = _subpixel(mask, rc) if len(rc) else np.zeros((0, 2))
    extra = {"confidence": mask[rc[:, 0], rc[:, 1]].astype(float) if len(rc) else np.zeros(0)}
    if denoised is not None:
        extra["intensity"] = (
            ndimage.map_coordinates(denoised, [fine[:, 0], fine[:, 1]], order=1) if len(rc) else np.zeros(0)
        )
    return from_pixels(fine[:, 1], fine[:, 0], sampling, **extra)


def _moved(table: pd.DataFrame, colrow: np.ndarray, sampling: float | None) -> pd.DataFrame:
    """``table`` with its atoms at ``colrow`` [px], ``x``, ``y`` [Å] following."""
    table = table.copy()
    table["col"], table["row"] = colrow[:, 0], colrow[:, 1]
    scale = np.nan if sampling is None else float(sampling)
    table["x"], table["y"] = table["col"] * scale, table["row"] * scale
    return table


def refine_positions(
    image: np.ndarray, xy: np.ndarray, *, radius: float, width: float | None = None, iterations: int = 4
) -> np.ndarray:
    """Atom positions refined to the Gaussian-weighted centre of mass of each atom on an image.

    Each atom's window (``radius`` around it) less its lowest pixel, weighted by a
    Gaussian of standard deviation ``width`` about the current position, gives the
    next position; ``iterations`` times, all atoms at once. An atom that would move
    further than ``radius`` keeps its start. On the segmenter's denoised image this
    is the model-based refinement of Gaussian fitting with less of its noise
    (:func:`find_atoms` with ``refine="denoised"``).

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) image, atoms bright.
    xy : numpy.ndarray
        (n, 2) start positions (x, y) [px].
    radius : float
        Window radius [px].
    width : float, optional
        Standard deviation of the weight [px]; default 0.8 ``radius``.
    iterations : int
        Refinement steps.

    Returns
    -------
    numpy.ndarray
        (n, 2) refined positions (x, y) [px].

    Examples
    --------
    >>> from atomtools.simulation.stem import splat_gaussians
    >>> image = splat_gaussians((32, 32), np.array([[12.3, 17.6]]), sigma=2.0)  # (row, col)
    >>> np.round(refine_positions(image, np.array([[17.0, 12.0]]), radius=4), 1).tolist()
    [[17.6, 12.3]]
    """
    xy = np.asarray(xy, float).reshape(-1, 2)
    if not len(xy):
        return xy.copy()
    img = np.asarray(image, np.float64)
    h, w = img.shape
    r = max(1, int(np.ceil(radius)))
    sigma = 0.8 * radius if width is None else float(width)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    pos = xy.copy()
    for _ in range(int(iterations)):
        cols = np.clip(np.round(pos[:, 0]).astype(int)[:, None, None] + dx, 0, w - 1)
        rows = np.clip(np.round(pos[:, 1]).astype(int)[:, None, None] + dy, 0, h - 1)
        patch = img[rows, cols]
        d2 = (cols - pos[:, 0, None, None]) ** 2 + (rows - pos[:, 1, None, None]) ** 2
        weight = (patch - patch.min(axis=(1, 2), keepdims=True)) * np.exp(-d2 / (2 * sigma**2)) * (d2 <= radius**2)
        total = weight.sum(axis=(1, 2))
        ok = total > 0
        safe = np.where(ok, total, 1.0)
        new = np.column_stack([(weight * cols).sum(axis=(1, 2)) / safe, (weight * rows).sum(axis=(1, 2)) / safe])
        new[~ok] = pos[~ok]
        far = np.hypot(*(new - xy).T) > radius
        new[far] = xy[far]
        pos = new
    return pos


def _refine_table(table: pd.DataFrame, denoised: np.ndarray, sampling: float | None, contrast: str) -> pd.DataFrame:
    """``table``'s positions refined on the denoised image (:func:`refine_positions`), intensities read again.

    The refinement sees the atoms bright (a dark frame's map negated); the intensities
    come from the map as it is, as :func:`peaks_to_table` reads them.
    """
    if len(table) < 1:
        return table
    xy = table[["col", "row"]].to_numpy()
    # 0.5 Å, but under half the distance to the nearest neighbour (the window holds one atom)
    if len(xy) > 1:
        from scipy.spatial import cKDTree

        nearest = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    else:
        nearest = np.inf
    radius = min(0.5 / sampling if sampling else 5.0, 0.4 * nearest)
    if not radius >= 1.0:
        return table
    fine = refine_positions(denoised if contrast == "bright" else -denoised, xy, radius=radius)
    table = _moved(table, fine, sampling)
    if "intensity" in table:
        table["intensity"] = ndimage.map_coordinates(denoised, [fine[:, 1], fine[:, 0]], order=1)
    return table


def _fit_table(table: pd.DataFrame, frame: np.ndarray, sampling: float | None, contrast: str) -> pd.DataFrame:
    """``table``'s positions refined by a 2D Gaussian fitted on the frame itself (:mod:`.fitting`).

    Each atom's window is half the median nearest-neighbour distance (measured on the
    held-out crystals: 0.3-0.4 of it fits worse, a fixed 0.5 Å far worse); a failed
    fit keeps the network's position.
    """
    if len(table) < 2:
        return table
    from scipy.spatial import cKDTree

    from .fitting import fit_gaussians

    xy = table[["col", "row"]].to_numpy()
    radius = 0.5 * float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    if not radius >= 1.0:
        return table
    shift = 0.3 / sampling if sampling else 3.0  # [px]: a column is not 0.3 Å from where the network saw it
    out = fit_gaussians(frame if contrast == "bright" else -frame, xy, radius=radius, max_shift=min(radius / 2, shift))
    return _moved(table, out["xy"], sampling)


def find_atoms(
    image,
    *,
    sampling: float | None = None,
    model="pretrained",
    threshold: float = 0.3,
    min_distance: float | None = None,
    block: int = BLOCK,
    return_maps: bool = False,
    contrast: str = "bright",
    min_structure: float = 1.2,
    refine: str = "mask",
):
    """Table of atom (column) positions in one frame, with confidence and intensity.

    Parameters
    ----------
    image : array-like
        (H, W) frame: counts, an 8- or 16-bit image, an RGB(A) image with equal
        channels, a ``numpy.memmap`` or a dask array (large frames are processed in
        overlapping blocks of ``block`` pixels and never held whole).
    sampling : float, optional
        Pixel size [Å]: positions also in Å, and frames outside the trained range
        resampled into it.
    model : str, Path or (torch.nn.Module, dict)
        ``"pretrained"`` or a weights file (:func:`load_segmenter`).
    threshold : float
        Least mask peak of an atom (0-1).
    min_distance : float, optional
        Least distance between atoms [Å if the sampling is known, else px]; default
        0.6 Å (or 2 px).
    block : int
        Block size for large frames [px].
    return_maps : bool
        Also return :func:`segment`'s maps (not for block-processed frames).
    contrast : {"bright", "dark"}
        Atoms brighter (HAADF) or darker (ABF, bright field) than the background
        (:func:`segment`).
    min_structure : float
        An atom is kept where the frame holds more than shot noise: the local power of
        atomic-scale contrast over what the frame's own white-noise level puts there
        (:func:`atomtools.core.imaging.structure_map`, 1 for noise alone; pure Poisson
        frames stay below 1.12) is at least this. 0 keeps every peak of the mask.
    refine : {"mask", "denoised", "fit"}
        Where the sub-pixel positions come from: the log-parabola peak of the mask
        (the default), the Gaussian-weighted centre of mass of each atom on the
        denoised image (:func:`refine_positions`; 0.5 Å, under 0.4 of the
        nearest-neighbour distance), or a 2D Gaussian on a flat background fitted to
        the frame's own pixels around each detection
        (:func:`~atomtools.localize.fitting.fit_gaussians`, within
        half the nearest-neighbour distance; a failed fit keeps the detection).
        Measured on the held-out crystals (6 frames per dose, precision over the atoms
        every method finds, against atomap's fit): "fit" is the most precise on W [111]
        from 5·10³ to 10⁵ e/Å² (3.3, 1.9, 1.1 pm against 4.1, 2.0, 1.1) and on GaN and
        MgO from 2·10⁴ up, but not on MgO at 5·10³ (21 against 18 pm; the mask 15)
        nor on W at 10⁶ (0.92 against 0.89); "denoised" lowers the pooled error by
        6-16 % from 2·10⁴ e/Å² up, but raises it on light MgO at 5·10³ and on W [111]
        at 10⁶ (1.18 against 0.99 pm).

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, dict)
        ``x``, ``y`` [Å] (NaN without a sampling), ``row``, ``col`` [px]
        (:data:`atomtools.core.tables.POSITION`), ``confidence``, ``intensity`` (the
        denoised frame there); the maps too with ``return_maps``.

    Warns
    -----
    UserWarning
        When no atom is found (a frame without a crystal, or outside what the network
        knows): the empty table is an answer, not a failure, and the warning says so.
    """
    from ..core.imaging import check_sampling

    if refine not in ("denoised", "mask", "fit"):
        raise ValueError(f"refine must be 'denoised', 'mask' or 'fit', got {refine!r}")
    if sampling is not None:
        sampling = check_sampling(sampling)
    if min_distance is None:
        min_px = max(1, int(round(0.6 / sampling))) if sampling else 2
    else:
        min_px = max(1, int(round(min_distance / sampling if sampling else min_distance)))
    loaded = load_segmenter(model)
    shape = tuple(getattr(image, "shape", np.shape(image)))
    lazy = isinstance(image, np.memmap) or not isinstance(image, np.ndarray) and hasattr(image, "dask")
    if len(shape) == 2 and (lazy or max(shape) > block) and not return_maps:
        table = _find_in_blocks(
            image,
            sampling=sampling,
            model=loaded,
            threshold=threshold,
            min_px=min_px,
            block=block,
            contrast=contrast,
            min_structure=min_structure,
            refine=refine,
        )
    else:
        frame = as_grey(image)  # once: segment takes a float32 frame as it is
        maps = segment(frame, sampling=sampling, model=loaded, contrast=contrast)
        table = peaks_to_table(
            maps["mask"], denoised=maps["denoised"], sampling=sampling, threshold=threshold, min_distance=min_px
        )
        table = _keep_structure(table, frame, sampling, min_structure)
        if refine == "denoised":
            table = _refine_table(table, maps["denoised"], sampling, contrast)
        elif refine == "fit":
            table = _fit_table(table, frame, sampling, contrast)
    if not len(table):
        warnings.warn(
            "find_atoms: no atom found (no crystal in the frame, or a frame unlike the simulated HAADF-STEM and "
            "HRTEM images the network knows: check the sampling and the contrast)",
            UserWarning,
            stacklevel=2,
        )
    return (table, maps) if return_maps else table


def _keep_structure(table: pd.DataFrame, frame: np.ndarray, sampling: float | None, least: float) -> pd.DataFrame:
    """The atoms of ``table`` where :func:`structure_map` of ``frame`` reaches ``least`` (noise alone: about 1)."""
    from ..core.imaging import structure_map

    if not len(table) or least <= 0:
        return table
    ratio = structure_map(frame, sampling or 0.1)  # unknown sampling: the library's middle
    if ratio is None:  # too coarse a sampling for a noise band: nothing to test against
        return table
    rows = np.clip(np.round(table.row.to_numpy()).astype(int), 0, frame.shape[0] - 1)
    cols = np.clip(np.round(table.col.to_numpy()).astype(int), 0, frame.shape[1] - 1)
    return table[ratio[rows, cols] >= least].reset_index(drop=True)


def _find_in_blocks(
    image, *, sampling, model, threshold, min_px, block, contrast="bright", min_structure=0.0, refine="mask"
) -> pd.DataFrame:
    from ..utils import progress_bar

    h, w = image.shape
    if len(np.shape(image)) != 2:
        raise ValueError(f"expected one 2D frame, got shape {np.shape(image)}")
    # one normalization for every block: that of the whole frame's view, from a strided sample
    sample, step = _strided_sample(image)
    view = _network_view(sample, sampling * step if sampling else None, model[1], contrast)["frame"]
    stats = _statistics(view, step=step)
    margin = 64
    starts = [(r, c) for r in range(0, h, block) for c in range(0, w, block)]
    parts = []
    for r, c in progress_bar(starts, desc="find_atoms blocks", unit="block", disable=len(starts) < 4):
        r0, c0 = max(0, r - margin), max(0, c - margin)
        r1, c1 = min(h, r + block + margin), min(w, c + block + margin)
        piece = np.asarray(image[r0:r1, c0:c1], np.float32)
        maps = segment(piece, sampling=sampling, model=model, stats=stats, contrast=contrast)
        t = peaks_to_table(maps["mask"], denoised=maps["denoised"], threshold=threshold, min_distance=min_px)
        t = _keep_structure(t, piece, sampling, min_structure)
        if refine == "denoised":
            t = _refine_table(t, maps["denoised"], sampling, contrast)
        elif refine == "fit":
            t = _fit_table(t, piece, sampling, contrast)
        t = _moved(t, t[["col", "row"]].to_numpy() + np.array([c0, r0]), sampling)
        own = (t.row >= r - 0.5) & (t.row < min(h, r + block) - 0.5)
        own &= (t.col >= c - 0.5) & (t.col < min(w, c + block) - 0.5)
        parts.append(t[own])
    empty = from_pixels([], [], sampling, confidence=[])
    return pd.concat(parts, ignore_index=True) if parts else empty

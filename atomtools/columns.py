"""Retrieval of atomic columns and their atom counts from HRTEM frames with a trained U-Net.

``retrieve(image, sampling=...)`` normalizes the frame, runs the network over it in
overlapping tiles whose class probabilities are blended with a smooth window, applies
the calibration temperature, and finds the columns: one table row per column with its
position [Å], element, atom count and the confidence of that count.

Memory stays bounded for large frames: tiles are processed one row band at a time and
only the final per-pixel maps (class, confidence, column probability) are kept, so a
4096 x 4096 frame needs the maps plus one band, never the full class-probability stack.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .imaging import normalize
from .models.unet import UNet, fuse_for_inference

__all__ = ["PRETRAINED", "Retriever", "load_retriever", "auto_tile", "predict_maps", "find_columns", "retrieve", "check_frame", "resample_frame"]

PRETRAINED = "unet-ceo2"
#: Relative difference between frame and model sampling tolerated without resampling.
SAMPLING_TOLERANCE = 0.05


@dataclass
class Retriever:
    """A trained U-Net ready for inference, with what it was trained on."""

    model: torch.nn.Module
    config: object
    sampling: float
    temperature: tuple[float, ...]
    channels: tuple[tuple[str, ...], ...]
    label_radius: float = 0.6

    @property
    def heads(self) -> tuple[int, ...]:
        return tuple(self.config.heads)


@functools.lru_cache(maxsize=4)
def _load_path(path: str, mtime_ns: int) -> Retriever:  # mtime: a retrained file is reloaded
    from .train import load_model

    model, meta = load_model(path)
    return _wrap(model, meta)


def _wrap(model: UNet, meta: dict) -> Retriever:
    heads = model.config.heads
    temperature = tuple(float(t) for t in meta.get("temperature", [1.0] * len(heads)))
    channels = tuple(tuple(c) for c in meta.get("channels", [["Ce"], ["O"]]))
    return Retriever(model=fuse_for_inference(model), config=model.config, sampling=float(meta["sampling"]), temperature=temperature, channels=channels, label_radius=float(meta.get("dataset", {}).get("config", {}).get("label_radius", 0.6)))


def load_retriever(model: str | Path | Retriever | tuple = "pretrained") -> Retriever:
    """A :class:`Retriever` from ``"pretrained"`` (the shipped weights), a weights path,
    an existing Retriever, or a ``(UNet, metadata)`` pair."""
    if isinstance(model, Retriever):
        return model
    if isinstance(model, tuple):
        return _wrap(*model)
    if isinstance(model, str) and model == "pretrained":
        from .data import fetch

        model = fetch(PRETRAINED)
    path = Path(model).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}; pass model='pretrained' for the shipped ones")
    return _load_path(str(path), path.stat().st_mtime_ns)


def check_frame(image) -> np.ndarray:
    """The frame as float32 2D array, or a ValueError saying what is wrong with it."""
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(f"expected one 2D frame, got an array of shape {arr.shape}; pass frames of a series one at a time")
    if arr.size == 0 or min(arr.shape) < 8:
        raise ValueError(f"the frame is empty or tiny ({arr.shape}); need at least 8 x 8 pixels")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"expected a real-valued image, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"the frame holds {int(np.sum(~np.isfinite(arr)))} NaN or infinite pixel(s)")
    if np.ptp(arr) == 0:
        raise ValueError("the frame is constant: there is nothing to retrieve")
    return arr


def _window(n: int, overlap: int) -> np.ndarray:
    """Blending window: linear ramps over ``overlap`` pixels at both ends, never zero."""
    i = np.arange(n, dtype=np.float32)
    if overlap <= 0:
        return np.ones(n, np.float32)
    return np.clip(np.minimum((i + 0.5) / overlap, (n - i - 0.5) / overlap), 1e-3, 1.0)


def _offsets(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    offs = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(offs))


def auto_tile(shape: tuple[int, int], multiple: int) -> int:
    """Tile size: the whole frame up to 1024 px (no overlap overhead), else 512 px."""
    side = max(shape)
    side = int(np.ceil(side / multiple)) * multiple
    return side if side <= 1024 else 512


def _store_head(outputs, h: int, rows: slice, probs: torch.Tensor) -> None:
    """Write one head's maps for some rows from its (rows, cols, classes) probabilities."""
    best, index = probs.max(dim=-1)
    outputs["classes"][h, rows] = index.numpy()
    outputs["confidence"][h, rows] = best.numpy()
    outputs["column_probability"][h, rows] = 1.0 - probs[..., 0].numpy()


def predict_maps(image: np.ndarray, retriever: Retriever, *, tile: int | None = None, overlap: int = 32, batch: int | None = None) -> dict:
    """Per-pixel maps of a normalized frame at the model's sampling.

    Parameters
    ----------
    image : numpy.ndarray
        Normalized frame (mean 1).
    retriever : Retriever
        The network.
    tile, overlap : int
        Tile size and overlap [px]; ``tile=None`` picks :func:`auto_tile`.
    batch : int, optional
        Tiles per forward pass; default about 256 x 256 x 4 pixels' worth.

    Returns
    -------
    dict
        ``classes`` (heads, H, W) uint8 most probable class (0 background, else atoms
        per column); ``confidence`` (heads, H, W) float32 its calibrated probability;
        ``column_probability`` (heads, H, W) float32, one minus the background
        probability.
    """
    m = retriever.config.multiple
    tile = auto_tile(image.shape, m) if tile is None else tile
    tile = max(m, (tile // m) * m)
    if overlap >= tile:
        raise ValueError(f"overlap {overlap} px must be smaller than the tile {tile} px")
    h0, w0 = image.shape
    # pad to at least one tile and to a multiple of the model's stride
    H = max(tile, int(np.ceil(h0 / m)) * m)
    W = max(tile, int(np.ceil(w0 / m)) * m)
    padded = np.pad(image, ((0, H - h0), (0, W - w0)), mode="reflect" if min(h0, w0) > 1 else "edge")
    th, tw = min(tile, H), min(tile, W)
    batch = batch or max(1, (4 * 256 * 256) // (th * tw))
    rows, cols = _offsets(H, th, th - overlap), _offsets(W, tw, tw - overlap)
    heads = retriever.heads
    c_tot = sum(heads)
    bounds = np.cumsum((0,) + tuple(heads))
    win = (_window(th, overlap)[:, None] * _window(tw, overlap)[None, :])[:, :, None]
    inv_t = torch.tensor(np.repeat(1.0 / np.asarray(retriever.temperature, np.float32), heads), dtype=torch.float32)
    outputs = {
        "classes": np.zeros((len(heads), H, W), np.uint8),
        "confidence": np.zeros((len(heads), H, W), np.float32),
        "column_probability": np.zeros((len(heads), H, W), np.float32),
    }
    crop = lambda: {k: v[:, :h0, :w0] for k, v in outputs.items()}  # noqa: E731
    model = retriever.model
    if len(rows) == 1 and len(cols) == 1:  # one tile: nothing to blend
        with torch.inference_mode():
            z = model(torch.from_numpy(padded[None, None].copy()).contiguous(memory_format=torch.channels_last)).float().permute(0, 2, 3, 1)[0] * inv_t
            for h, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
                _store_head(outputs, h, slice(0, H), torch.softmax(z[..., a:b], dim=-1))
        return crop()
    # the band accumulator is channels-last (rows, cols, classes), like the network's output
    acc = np.zeros((th, W, c_tot), np.float32)
    wsum = np.zeros((th, W, 1), np.float32)
    with torch.inference_mode():
        for bi, r in enumerate(rows):
            for s in range(0, len(cols), batch):
                chunk = cols[s : s + batch]
                x = torch.from_numpy(np.stack([padded[r : r + th, c : c + tw] for c in chunk])[:, None].copy())
                z = model(x.contiguous(memory_format=torch.channels_last)).float().permute(0, 2, 3, 1) * inv_t  # NHWC
                probs = torch.cat([torch.softmax(z[..., a:b], dim=-1) for a, b in zip(bounds[:-1], bounds[1:])], dim=-1).numpy()
                for k, c in enumerate(chunk):
                    acc[:, c : c + tw] += probs[k] * win
                    wsum[:, c : c + tw] += win
            end = rows[bi + 1] - r if bi + 1 < len(rows) else th
            acc[:end] /= wsum[:end]  # in place: no band-sized temporary
            for h, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
                _store_head(outputs, h, slice(r, r + end), torch.from_numpy(acc[:end, :, a:b]))
            acc[: th - end] = acc[end:]
            acc[th - end :] = 0
            wsum[: th - end] = wsum[end:]
            wsum[th - end :] = 0
    return crop()


def find_columns(maps: dict, *, sampling: float, channels=(("Ce",), ("O",)), radius: float = 0.6, min_distance: float = 1.0, threshold: float = 0.5) -> pd.DataFrame:
    """Columns from the per-pixel maps: peaks of the column probability, counted by vote.

    Parameters
    ----------
    maps : dict
        From :func:`predict_maps`.
    sampling : float
        Pixel size of the maps [Å].
    channels : sequence of tuple of str
        Element of each head.
    radius : float
        Column disk over which the count is voted [Å].
    min_distance : float
        Closest two columns of one channel may be [Å].
    threshold : float
        Least column probability at a peak.

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y`` [Å], ``row``, ``col`` [px], ``element``, ``channel``, ``count``,
        ``confidence`` (mean probability of the chosen count over the column disk) and
        ``p_column`` (column probability at the peak).
    """
    from skimage.feature import peak_local_max

    rows = []
    r_px = max(1, int(round(radius / sampling)))
    yy, xx = np.mgrid[-r_px : r_px + 1, -r_px : r_px + 1]
    disk = (yy**2 + xx**2) <= (radius / sampling) ** 2
    for ch in range(maps["classes"].shape[0]):
        pcol = maps["column_probability"][ch]
        cls = maps["classes"][ch]
        conf = maps["confidence"][ch]
        peaks = peak_local_max(pcol, min_distance=max(1, int(round(min_distance / sampling / 2))), threshold_abs=threshold, exclude_border=False)
        h, w = pcol.shape
        for i, j in peaks:
            i0, i1, j0, j1 = max(0, i - r_px), min(h, i + r_px + 1), max(0, j - r_px), min(w, j + r_px + 1)
            mask = disk[i0 - i + r_px : i1 - i + r_px, j0 - j + r_px : j1 - j + r_px]
            c_reg, f_reg, p_reg = cls[i0:i1, j0:j1][mask], conf[i0:i1, j0:j1][mask], pcol[i0:i1, j0:j1][mask]
            votes = np.bincount(c_reg, weights=f_reg, minlength=int(c_reg.max()) + 2)
            votes[0] = 0.0
            if votes.sum() <= 0:
                continue
            count = int(votes.argmax())
            wy, wx = np.nonzero(mask)
            weight = p_reg / p_reg.sum()
            ci, cj = float(np.sum((wy + i0) * weight)), float(np.sum((wx + j0) * weight))
            rows.append(
                {
                    "x": cj * sampling,
                    "y": ci * sampling,
                    "row": ci,
                    "col": cj,
                    "element": channels[ch][0] if ch < len(channels) else str(ch),
                    "channel": ch,
                    "count": count,
                    "confidence": float(votes[count] / mask.sum()),
                    "p_column": float(pcol[i, j]),
                }
            )
    columns = ["x", "y", "row", "col", "element", "channel", "count", "confidence", "p_column"]
    return pd.DataFrame(rows, columns=columns)


def resample_frame(image: np.ndarray, sampling: float, new_sampling: float, *, order: int = 1, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Resample a frame to another pixel size, keeping pixel (i, j) at (j, i) * sampling [Å].

    Parameters
    ----------
    image : numpy.ndarray
        (..., H, W) array(s).
    sampling, new_sampling : float
        Old and new pixel size [Å].
    order : int
        Spline order: 0 for class maps, 1 for intensities and probabilities.
    shape : two int, optional
        Output (H, W); default covers the same field of view.
    """
    from scipy import ndimage

    image = np.asarray(image)
    h, w = image.shape[-2:]
    if shape is None:
        shape = (int(np.floor((h - 1) * sampling / new_sampling)) + 1, int(np.floor((w - 1) * sampling / new_sampling)) + 1)
    ri = np.arange(shape[0]) * new_sampling / sampling
    ci = np.arange(shape[1]) * new_sampling / sampling
    coords = np.meshgrid(ri, ci, indexing="ij")
    flat = image.reshape(-1, h, w)
    out = np.stack([ndimage.map_coordinates(a, coords, order=order, mode="nearest") for a in flat])
    return out.reshape(image.shape[:-2] + tuple(shape)).astype(image.dtype)


def retrieve(
    image,
    *,
    sampling: float,
    model="pretrained",
    resample: bool = False,
    tile: int | None = None,
    overlap: int = 32,
    threshold: float = 0.5,
    min_distance: float = 1.0,
) -> tuple[pd.DataFrame, dict]:
    """Columns, atom counts and confidence of one HRTEM frame.

    Parameters
    ----------
    image : array-like
        One 2D frame: electron counts or any intensity proportional to them.
    sampling : float
        Its pixel size [Å].
    model : "pretrained", path, Retriever or (UNet, metadata)
        The network; ``"pretrained"`` is the shipped CeO2 model.
    resample : bool
        If the frame's sampling differs from the model's by more than 5 %, resample it
        to the model's (and the maps back) instead of refusing.
    tile, overlap : int
        Tile size and overlap [px] of the tiled inference; ``tile=None``: the whole
        frame up to 1024 px, else 512 px tiles.
    threshold : float
        Least column probability of a detected column.
    min_distance : float
        Closest two columns of one element may be [Å].

    Returns
    -------
    table : pandas.DataFrame
        One row per column: ``x``, ``y`` [Å], ``row``, ``col`` [px of the input frame],
        ``element``, ``count`` [atoms], ``confidence``, ``p_column``.
    maps : dict
        ``classes``, ``confidence``, ``column_probability`` ((heads, H, W), on the input
        frame's pixels) and ``sampling`` [Å].

    Raises
    ------
    ValueError
        For a frame that is not 2D, empty, constant, or holds NaN or infinity; or whose
        sampling is off the model's by more than 5 % without ``resample=True``.
    """
    frame = check_frame(image)
    if not sampling or not np.isfinite(sampling) or sampling <= 0:
        raise ValueError(f"sampling must be a positive pixel size [Å/px], got {sampling}")
    ret = load_retriever(model)
    ratio = sampling / ret.sampling
    resampled = abs(ratio - 1) > SAMPLING_TOLERANCE
    if resampled and not resample:
        raise ValueError(
            f"the frame's sampling {sampling} Å/px differs from the model's {ret.sampling} Å/px by {abs(ratio - 1):.0%} "
            f"(more than {SAMPLING_TOLERANCE:.0%}); pass resample=True to resample the frame, or use a model trained at this sampling"
        )
    work = resample_frame(frame, sampling, ret.sampling, order=1) if resampled else frame
    work_sampling = ret.sampling if resampled else sampling
    maps = predict_maps(normalize(work), ret, tile=tile, overlap=overlap)
    table = find_columns(maps, sampling=work_sampling, channels=ret.channels, radius=ret.label_radius, min_distance=min_distance, threshold=threshold)
    if resampled:
        maps = {k: resample_frame(v, ret.sampling, sampling, order=0 if k == "classes" else 1, shape=frame.shape) for k, v in maps.items()}
        table["row"] = table["y"] / sampling
        table["col"] = table["x"] / sampling
    maps["sampling"] = sampling
    return table, maps

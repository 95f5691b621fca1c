"""Retrieval of atomic columns and their atom counts from HRTEM frames with a trained U-Net.

``retrieve(image, sampling=...)`` checks and normalizes the frame, runs the network
over it with the shared tiled inference (:func:`atomtools.inference.predict_tiled`,
one calibrated softmax per head), and finds the columns: one table row per column
(:data:`atomtools.core.tables.PREDICTED`) with its position [Å], element, atom count
and the confidence of that count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core import tables
from ..core.imaging import check_frame, normalize, resample_frame
from ..data import fetch
from ..inference import SoftmaxHeads, predict_tiled
from ..models import MODEL_FORMAT, UNet, fuse_for_inference, load_model

__all__ = [
    "PRETRAINED",
    "SAMPLING_TOLERANCE",
    "Retriever",
    "load_retriever",
    "predict_maps",
    "find_columns",
    "retrieve",
]

#: Manifest name of the shipped weights.
PRETRAINED = "unet-ceo2"
#: Relative difference between frame and model sampling tolerated without resampling.
SAMPLING_TOLERANCE = 0.05


@dataclass
class Retriever:
    """A trained U-Net ready for inference, with what it was trained on.

    Attributes
    ----------
    model : torch.nn.Module
        The network, batch norm fused, channels_last.
    config : UNetConfig
        Its architecture.
    sampling : float
        Pixel size it was trained at [Å].
    temperature : tuple of float
        Calibration temperature of each head.
    channels : tuple of tuple of str
        Element group of each head.
    label_radius : float
        Radius of a column in its training labels [Å].
    """

    model: torch.nn.Module
    config: object
    sampling: float
    temperature: tuple[float, ...]
    channels: tuple[tuple[str, ...], ...]
    label_radius: float = 0.6

    @property
    def heads(self) -> tuple[int, ...]:
        """Classes of each head."""
        return tuple(self.config.heads)

    @functools.cached_property
    def transform(self) -> SoftmaxHeads:
        """The output transform of the tiled inference: calibrated softmax per head."""
        return SoftmaxHeads(self.heads, self.temperature)


@functools.lru_cache(maxsize=4)
def _load_path(path: str, mtime_ns: int) -> Retriever:  # mtime: a retrained file is reloaded
    model, meta = load_model(path, expected=MODEL_FORMAT)
    return _wrap(model, meta)


def _wrap(model: UNet, meta: dict) -> Retriever:
    heads = model.config.heads
    temperature = tuple(float(t) for t in meta.get("temperature", [1.0] * len(heads)))
    channels = tuple(tuple(c) for c in meta.get("channels", [[f"channel {h}"] for h in range(len(heads))]))
    return Retriever(
        model=fuse_for_inference(model),
        config=model.config,
        sampling=float(meta["sampling"]),
        temperature=temperature,
        channels=channels,
        label_radius=float(meta.get("dataset", {}).get("config", {}).get("label_radius", 0.6)),
    )


def load_retriever(model: str | Path | Retriever | tuple = "pretrained") -> Retriever:
    """A :class:`Retriever` from the shipped weights, a weights path, or a network.

    Parameters
    ----------
    model : "pretrained", str, Path, Retriever or (UNet, dict)
        ``"pretrained"`` (the shipped weights, fetched through the manifest), a
        weights file, an existing Retriever, or a ``(UNet, metadata)`` pair.

    Raises
    ------
    FileNotFoundError
        If a path names no file.
    """
    if isinstance(model, Retriever):
        return model
    if isinstance(model, tuple):
        return _wrap(*model)
    if isinstance(model, str) and model == "pretrained":
        model = fetch(PRETRAINED)
    path = Path(model).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}; pass model='pretrained' for the shipped ones")
    return _load_path(str(path), path.stat().st_mtime_ns)


def predict_maps(
    image: np.ndarray, retriever: Retriever, *, tile: int | None = None, overlap: int = 32, batch: int | None = None
) -> dict:
    """Per-pixel maps of a normalized frame at the model's sampling.

    Parameters
    ----------
    image : numpy.ndarray
        Normalized frame (mean 1).
    retriever : Retriever
        The network.
    tile, overlap : int
        Tile size and overlap [px]; ``tile=None`` picks
        :func:`atomtools.inference.auto_tile`.
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
    maps = predict_tiled(
        image,
        retriever.model,
        retriever.transform,
        multiple=retriever.config.multiple,
        tile=tile,
        overlap=overlap,
        batch=batch,
    )
    maps["column_probability"] = maps.pop("foreground")
    return maps


def find_columns(
    maps: dict, *, sampling: float, channels, radius: float = 0.6, min_distance: float = 1.0, threshold: float = 0.5
) -> pd.DataFrame:
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
        peaks = peak_local_max(
            pcol,
            min_distance=max(1, int(round(min_distance / sampling / 2))),
            threshold_abs=threshold,
            exclude_border=False,
        )
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
    return tables.new_table(rows, kind="predicted")


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
        ``element``, ``channel``, ``count`` [atoms], ``confidence``, ``p_column``
        (:data:`atomtools.core.tables.PREDICTED`).
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
            f"the frame's sampling {sampling} Å/px differs from the model's {ret.sampling} Å/px by "
            f"{abs(ratio - 1):.0%} "
            f"(more than {SAMPLING_TOLERANCE:.0%}); pass resample=True to resample the frame, or "
            "use a model trained at this sampling"
        )
    work = resample_frame(frame, sampling, ret.sampling, order=1) if resampled else frame
    work_sampling = ret.sampling if resampled else sampling
    maps = predict_maps(normalize(work), ret, tile=tile, overlap=overlap)
    table = find_columns(
        maps,
        sampling=work_sampling,
        channels=ret.channels,
        radius=ret.label_radius,
        min_distance=min_distance,
        threshold=threshold,
    )
    if resampled:
        maps = {
            k: resample_frame(v, ret.sampling, sampling, order=0 if k == "classes" else 1, shape=frame.shape)
            for k, v in maps.items()
        }
        table = tables.with_pixels(table, sampling)
    maps["sampling"] = sampling
    return table, maps

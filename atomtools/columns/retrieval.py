"""Retrieval of atomic columns and their atom counts from HRTEM frames with a trained U-Net.

``retrieve(image, sampling=...)`` checks and normalizes the frame, runs the network
over it with the shared tiled inference (:func:`atomtools.inference.predict_tiled`,
one calibrated softmax per head), and finds the columns: one table row per column
(:data:`atomtools.core.tables.PREDICTED`) with its position [Å], element, atom count
and the confidence of that count.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core import tables
from ..core.imaging import check_frame, check_sampling, normalize, resample_frame
from ..core.materials import Material, material
from ..core.metrics import apply_platt
from ..data import fetch
from ..inference import SoftmaxHeads, predict_tiled, resolve_device
from ..models import MODEL_FORMAT, UNet, fuse_for_inference, load_model
from . import counting as _counting
from .domain import lattice_check, structure_mask, warn_if_out_of_domain
from .recounting import COUNTER_ENERGY, crystal_columns, particle_groups, recount

__all__ = [
    "PRETRAINED",
    "SAMPLING_TOLERANCE",
    "MIN_FRAME",
    "COUNTER_ENERGY",
    "Retriever",
    "load_retriever",
    "predict_maps",
    "find_columns",
    "particle_groups",
    "crystal_columns",
    "recount",
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
    material : Material, optional
        What it was trained on (for the domain check).
    column_calibration : (float, float), optional
        Platt slope and offset that calibrate the column confidences
        (:func:`atomtools.core.metrics.fit_platt`); None: as voted.
    """

    model: torch.nn.Module
    config: object
    sampling: float
    temperature: tuple[float, ...]
    channels: tuple[tuple[str, ...], ...]
    label_radius: float = 0.6
    material: Material | None = None
    column_calibration: tuple[float, float] | None = None

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


def _material_of(meta: dict) -> Material | None:
    """The training material recorded in a weights file (older files: fluorite elements and a)."""
    config = meta.get("dataset", {}).get("config", {})
    if "material" in config:
        return material(config["material"])
    if "elements" in config and "a" in config:
        names = tuple(config["elements"])
        return Material(
            name="".join(names) + ("2" if len(names) == 2 else ""),
            structure="fluorite",
            symbols=names,
            a=float(config["a"]),
        )
    return None


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
        material=_material_of(meta),
        column_calibration=tuple(meta["column_calibration"]) if meta.get("column_calibration") else None,
    )


def load_retriever(model: str | Path | Retriever | tuple = "pretrained") -> Retriever:
    """A :class:`Retriever` from the shipped weights, a weights path, or a network.

    Parameters
    ----------
    model : "pretrained", str, Path, Retriever or (UNet, dict)
        ``"pretrained"`` (the shipped CeO2 weights), the manifest name of other
        shipped weights (``"unet-au"``), a weights file, an existing Retriever, or a
        ``(UNet, metadata)`` pair.

    Returns
    -------
    Retriever
        ``model`` itself when it is one, else the retriever around the loaded or given network.

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
    elif isinstance(model, str) and model.startswith("unet-") and not Path(model).exists():
        model = fetch(model)  # shipped weights of another material, by manifest name
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

    r_px = max(1, int(round(radius / sampling)))
    yy, xx = np.mgrid[-r_px : r_px + 1, -r_px : r_px + 1]
    inside = (yy**2 + xx**2) <= (radius / sampling) ** 2
    dy, dx = yy[inside], xx[inside]  # the disk's pixel offsets
    size = 2 * max(1, int(round(min_distance / sampling / 2))) + 1
    parts = []
    for ch in range(maps["classes"].shape[0]):
        pcol = maps["column_probability"][ch]
        h, w = pcol.shape
        # local maxima of the column probability above the threshold
        i, j = np.nonzero((pcol == _maximum_filter(pcol, size)) & (pcol >= threshold))
        if not len(i):
            continue
        r, c = i[:, None] + dy[None, :], j[:, None] + dx[None, :]
        valid = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        r, c = np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)
        cls = maps["classes"][ch][r, c].astype(np.int64)
        conf = np.where(valid, maps["confidence"][ch][r, c], 0.0)
        prob = np.where(valid, pcol[r, c], 0.0)
        # each column's count: the class with the most confidence over its disk
        n_cls = int(maps["classes"][ch].max()) + 1
        votes = np.bincount((np.arange(len(i))[:, None] * n_cls + cls).ravel(), conf.ravel(), len(i) * n_cls)
        votes = votes.reshape(len(i), n_cls)
        votes[:, 0] = 0.0
        keep = votes.sum(axis=1) > 0
        count = votes.argmax(axis=1)
        ci = (prob * r).sum(axis=1) / prob.sum(axis=1)
        cj = (prob * c).sum(axis=1) / prob.sum(axis=1)
        confidence = votes[np.arange(len(i)), count] / valid.sum(axis=1)
        parts.append(
            pd.DataFrame(
                {
                    "x": cj * sampling,
                    "y": ci * sampling,
                    "row": ci,
                    "col": cj,
                    "element": channels[ch][0] if ch < len(channels) else str(ch),
                    "channel": ch,
                    "count": count,
                    "confidence": confidence,
                    "p_column": pcol[i, j].astype(float),
                }
            )[keep]
        )
    return tables.new_table(pd.concat(parts, ignore_index=True) if parts else [], kind="predicted")


def _maximum_filter(x: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.maximum_filter(x, size=size, mode="nearest")`` for an odd ``size``, by shifted maxima.

    The same values, 7x faster at 512 x 512 and size 7 on this CPU (scipy's 1D filter
    dominated :func:`find_columns`).
    """
    r = size // 2
    out = x
    for axis in (0, 1):
        n = x.shape[axis]
        pad = np.pad(out, [(r, r) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        window = [slice(None), slice(None)]
        window[axis] = slice(0, n)
        out = pad[tuple(window)].copy()
        for s in range(1, size):
            window[axis] = slice(s, s + n)
            np.maximum(out, pad[tuple(window)], out=out)
    return out


def _auto_counter(ret: Retriever):
    """The shipped counter where it counts the retriever's material, else None."""
    if ret.material is None:
        return None
    return _shipped_counter(ret.material.name, tuple(ret.material.zone_axis))


@functools.lru_cache(maxsize=8)
def _shipped_counter(name: str, zone_axis: tuple[int, int, int], which: str = "pretrained"):
    try:
        counter = _counting.load_counter(which)
    except KeyError:  # not in the manifest
        return None
    return counter if counter.material == name and tuple(counter.zone_axis) == zone_axis else None


def _auto_estimator(ret: Retriever, which: str = _counting.PRETRAINED_DEFOCUS):
    """The shipped defocus (or mistilt) estimator where it reads the retriever's material, else None."""
    if ret.material is None:
        return None
    return _shipped_counter(ret.material.name, tuple(ret.material.zone_axis), which)


def _estimator(choice, ret: Retriever, which: str):
    """The estimator a ``defocus=`` or ``tilt=`` argument names: "estimate" (the shipped one), a path or Counter."""
    if choice is None:
        return None
    if isinstance(choice, str) and choice == "estimate":
        return _auto_estimator(ret, which)
    return _counting.load_counter(choice)


def _on(holder, device):
    """``holder`` (a Retriever or Counter) with its network moved to ``device`` (None: left where it is)."""
    if holder is not None and device is not None:
        holder.model.to(device)
    return holder


#: Smallest frame side retrieve reads [px at the model's sampling] (5 Å at 0.16 Å/px).
MIN_FRAME = 32


def retrieve(
    image,
    *,
    sampling: float,
    model="pretrained",
    optics=None,
    tilt="estimate",
    counter="auto",
    decode: bool = True,
    coverage: float | None = None,
    defocus="estimate",
    resample: bool = False,
    tile: int | None = None,
    overlap: int = 32,
    threshold: float = 0.5,
    min_distance: float = 1.0,
    structure_only: bool = True,
    crystal_only: bool = True,
    device: str | None = None,
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
    optics : Optics or dict, optional
        What is known of the imaging conditions: an
        :class:`~atomtools.core.imaging.Optics`, or a dict with some of ``defocus``,
        ``Cs``, ``C5``, ``focal_spread`` [Å] and ``aperture`` [mrad]. The counter
        answers for the whole trained range of what is not given.
    tilt : float, "estimate", path, Counter or None
        Mistilt of the particle from the zone axis, if known [degrees]. Otherwise
        ``"estimate"`` reads each particle's mistilt from its columns with the shipped
        mistilt estimator for the material (or this one, a path or Counter;
        :func:`atomtools.columns.counting.estimate_condition`) and tells the counter;
        None leaves it unknown (the counter answers for its whole trained range). The
        estimates are in ``maps["counts"]["tilt"]``.
    counter : "auto", "pretrained", path, Counter or None
        The column counter (:mod:`atomtools.columns.counting`) that counts the
        principal species' columns: ``"auto"`` the shipped one where it was trained
        for the network's material and sampling; None: the U-Net's own vote.
    decode : bool
        Decode the counts of each particle jointly under a convex-polyhedron prior
        (:func:`atomtools.core.chords.decode_counts`).
    coverage : float, optional
        Coverage of the prediction sets ``count_low``..``count_high`` (default 0.9, as
        calibrated on held-out structures).
    defocus : "estimate", path, Counter or None
        Where ``optics`` gives no defocus: ``"estimate"`` reads it from the frame's
        columns with the shipped defocus estimator for the material (or this one, a
        path or Counter; :func:`atomtools.columns.counting.estimate_defocus`) and
        weighs the counts by it; None leaves it unknown (the counter answers for its
        whole trained range). The estimate is in ``maps["counts"]["defocus"]``.
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
    structure_only : bool
        Keep only columns where the frame holds structure rather than shot noise alone
        (:func:`atomtools.columns.domain.structure_mask`): noise, vacuum and flat frames
        give no columns.
    crystal_only : bool
        Keep only columns of particles that sit on the material's lattice
        (:func:`crystal_columns`): columns seen in amorphous support are dropped.
    device : str, optional
        Where the networks run: ``"cuda"`` (a GPU), ``"cpu"``, ...
        (:func:`atomtools.inference.resolve_device`); the networks move there and stay
        for later calls. None: where they are (the CPU unless moved).

    Returns
    -------
    table : pandas.DataFrame
        One row per column: ``x``, ``y`` [Å], ``row``, ``col`` [px of the input frame],
        ``element``, ``channel``, ``count`` [atoms], ``count_low``, ``count_high`` (the
        prediction set [atoms]), ``beyond_range`` (the column may be thicker than the
        counter was trained for), ``confidence``, ``p_column``
        (:data:`atomtools.core.tables.PREDICTED`).
    maps : dict
        ``classes``, ``confidence``, ``column_probability`` ((heads, H, W), on the input
        frame's pixels), ``structure`` ((H, W) bool, where the frame holds structure;
        None if too coarsely sampled to tell), ``domain`` (the
        :class:`~atomtools.columns.domain.DomainReport` as a dict: does the frame look
        like the training material at this pixel size; None without a material to
        compare with or without any structure in the frame) and ``sampling`` [Å].

    Raises
    ------
    ValueError
        For a frame that is not 2D, empty, constant, negative (background-subtracted),
        or holds NaN or infinity, or smaller than :data:`MIN_FRAME` px of the model's
        sampling per side; for a sampling that is not a positive number; or one off the
        model's by more than 5 % without ``resample=True``.

    Warns
    -----
    OutOfDomainWarning
        When the frame's lattice fringes do not match the model's material at the
        given pixel size (another material, zone axis or a wrong pixel size).
    """
    frame = check_frame(image)
    sampling = check_sampling(sampling)
    dev = None if device is None else resolve_device(device)
    ret = _on(load_retriever(model), dev)
    ratio = sampling / ret.sampling
    side = min(frame.shape) * ratio  # [px at the model's sampling]
    if side < MIN_FRAME:
        h, w = frame.shape
        raise ValueError(
            f"the image is {h} x {w} px ({h * sampling:.1f} x {w * sampling:.1f} Å at {sampling:g} Å/px): retrieve "
            f"needs at least {MIN_FRAME * ret.sampling:.1f} Å per side ({MIN_FRAME} px at the model's "
            f"{ret.sampling:g} Å/px), a few columns' worth"
        )
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
    normalized = normalize(work)
    maps = predict_maps(normalized, ret, tile=tile, overlap=overlap)
    table = find_columns(
        maps,
        sampling=work_sampling,
        channels=ret.channels,
        radius=ret.label_radius,
        min_distance=min_distance,
        threshold=threshold,
    )
    if ret.column_calibration is not None and len(table):
        table = table.assign(confidence=apply_platt(table["confidence"].to_numpy(), *ret.column_calibration))
    if resampled:
        maps = {
            k: resample_frame(v, ret.sampling, sampling, order=0 if k == "classes" else 1, shape=frame.shape)
            for k, v in maps.items()
        }
        table = tables.with_pixels(table, sampling)
    maps["structure"] = structure_mask(frame, sampling) if structure_only else None
    if maps["structure"] is not None and len(table):
        rows = np.clip(np.rint(table["row"].to_numpy()).astype(int), 0, frame.shape[0] - 1)
        cols = np.clip(np.rint(table["col"].to_numpy()).astype(int), 0, frame.shape[1] - 1)
        table = table[maps["structure"][rows, cols]].reset_index(drop=True)
    indexed: dict = {}  # each particle's lattice indexing: found by the crystal check, reused by the decoding
    if crystal_only and ret.material is not None and len(table):
        table = table[crystal_columns(table, ret.material, indexed=indexed)].reset_index(drop=True)
    counter = _auto_counter(ret) if isinstance(counter, str) and counter == "auto" else counter
    known_tilt = float(tilt) if isinstance(tilt, (int, float, np.number)) and not isinstance(tilt, bool) else None
    maps["counts"] = None
    if counter is not None:
        # the counter reads the normalized frame the network saw (at the model's sampling)
        counted, maps["counts"] = recount(
            tables.with_pixels(table, work_sampling) if resampled else table,
            normalized,
            sampling=work_sampling,
            counter=_on(_counting.load_counter(counter), dev),
            material=ret.material,
            optics=optics,
            tilt=known_tilt,
            decode=decode,
            coverage=coverage,
            defocus_estimator=_on(_estimator(defocus, ret, _counting.PRETRAINED_DEFOCUS), dev),
            tilt_estimator=None
            if known_tilt is not None
            else _on(_estimator(tilt, ret, _counting.PRETRAINED_TILT), dev),
            indexed=indexed,
        )
        table = tables.with_pixels(counted, sampling) if resampled else counted
    has_structure = maps["structure"] is None or bool(maps["structure"].any())
    report = lattice_check(frame, sampling, ret.material) if ret.material is not None and has_structure else None
    if report is not None:
        warn_if_out_of_domain(report)
    maps["domain"] = asdict(report) if report is not None else None
    maps["sampling"] = sampling
    return table, maps

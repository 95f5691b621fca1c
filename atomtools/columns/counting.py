"""Counting the atoms of detected columns with what is known of the imaging conditions.

The U-Net finds columns; counting them is a different question, and one that the
patch alone cannot answer: the same contrast means different counts under different
optics and mistilt, and HRTEM contrast stops growing with thickness beyond a few
atoms. The counter (:class:`atomtools.models.ColumnCounter`) reads the patch around
each column together with the *conditions*: defocus, Cs, C5, focal spread, aperture and
mistilt, each given or not. What a user gives goes in; what is not given is marked
unknown and the counter answers for the whole training range of it.

Its probabilities over counts go on to the particle decoding
(:mod:`atomtools.core.chords`) and to prediction sets calibrated on held-out
structures (:func:`atomtools.core.metrics.interval_sets`).

A defocus that is not given can be read from the frame: a second network of the same
kind, trained on the defocus class (:func:`estimate_defocus`), pooled over the frame's
columns, weighs the counter's answers (:func:`marginal_probabilities`).

Training lives beside it, in :mod:`atomtools.columns.counter_task`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.imaging import Optics
from ..core.metrics import interval_sets
from ..data import fetch
from ..inference import device_of
from ..models import COUNTER_FORMAT, ColumnCounter, CounterConfig, fuse_counter, load_model
from .conditions import (  # the encoding of the conditions, re-exported: counters read them
    CONDITIONS,
    DEFOCUS_BINS,
    ESTIMATED,
    TILT_BINS,
    _given,
    column_conditions,
    condition_classes,
    condition_vector,
    defocus_classes,
)

__all__ = [
    "CONDITIONS",
    "PRETRAINED_COUNTER",
    "PRETRAINED_DEFOCUS",
    "PRETRAINED_TILT",
    "Counter",
    "condition_vector",
    "column_conditions",
    "column_patches",
    "load_counter",
    "count_probabilities",
    "prediction_table",
    "DEFOCUS_BINS",
    "TILT_BINS",
    "ESTIMATED",
    "condition_classes",
    "defocus_classes",
    "pool_condition",
    "pool_defocus",
    "estimate_condition",
    "condition_probabilities",
    "estimate_defocus",
    "marginal_probabilities",
]

#: Manifest name of the shipped counter.
PRETRAINED_COUNTER = "counter-ceo2"

#: Manifest name of the shipped defocus estimator (a counter trained with ``target="defocus"``).
PRETRAINED_DEFOCUS = "defocus-ceo2"

#: Manifest name of the shipped mistilt estimator (a counter trained with ``target="tilt"``).
PRETRAINED_TILT = "tilt-ceo2"


def column_patches(frame: np.ndarray, rows, cols, *, sampling: float, patch: int, patch_sampling: float) -> np.ndarray:
    """Patches centred on sub-pixel column positions, resampled to the counter's pixel size.

    Each output pixel is the mean of 2 x 2 bilinear samples (an area average: the noise of
    the frame is not aliased into the patch; a frame pixel's intensity spreads over the
    patch pixels it overlaps).

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) normalized frame.
    rows, cols : array-like
        Column centres [px].
    sampling : float
        Pixel size of the frame [Å].
    patch : int
        Side of the patches [px of ``patch_sampling``], odd.
    patch_sampling : float
        Their pixel size [Å].

    Returns
    -------
    numpy.ndarray
        (N, patch, patch) float32.

    Examples
    --------
    >>> frame = np.zeros((40, 40)); frame[20, 20] = 4.0
    >>> p = column_patches(frame, [20.0], [20.0], sampling=0.16, patch=5, patch_sampling=0.32)
    >>> p.shape, float(p[0].sum()), int(p[0].argmax())
    ((1, 5, 5), 1.0, 12)
    """
    from scipy.ndimage import map_coordinates

    rows, cols = np.asarray(rows, float).ravel(), np.asarray(cols, float).ravel()
    step = patch_sampling / 2 / sampling  # fine grid [px]
    offsets = (np.arange(2 * patch) - patch + 0.5) * step
    rr = rows[:, None, None] + offsets[None, :, None]
    cc = cols[:, None, None] + offsets[None, None, :]
    rr, cc = np.broadcast_arrays(rr, cc)
    fine = map_coordinates(np.asarray(frame, np.float32), [rr.ravel(), cc.ravel()], order=1, mode="nearest")
    fine = fine.reshape(len(rows), patch, 2, patch, 2)
    return fine.mean(axis=(2, 4)).astype(np.float32)


@dataclass
class Counter:
    """A trained column counter ready for inference.

    Attributes
    ----------
    model : ColumnCounter
        The network, in eval mode.
    temperature : float
        Its calibration temperature.
    conformal : dict
        Conformal levels by coverage, calibrated on held-out structures: ``independent``
        for the counter's own probabilities, ``decoded`` for those after the particle
        decoding (each ``{"coverage": [...], "level": [...]}``).
    material : str
        Name of the crystal it counts.
    zone_axis : tuple of int
        Its zone axis.
    target : str
        ``count`` (a counter), ``defocus`` or ``tilt`` (an estimator of the frame's
        defocus or mistilt, classes :data:`ESTIMATED`).
    pooling : float, optional
        An estimator's pooling exponent (:func:`pool_condition`), calibrated on
        held-out frames.
    """

    model: ColumnCounter
    temperature: float = 1.0
    conformal: dict | None = None
    material: str = "CeO2"
    zone_axis: tuple[int, int, int] = (1, 1, 0)
    target: str = "count"
    pooling: float | None = None

    @property
    def config(self) -> CounterConfig:
        """The architecture."""
        return self.model.config

    @property
    def max_count(self) -> int:
        """Largest count it tells apart; its top class means this many or more."""
        return int(self.config.n_classes)

    def level(self, coverage: float | None = None, *, decoded: bool = False) -> float:
        """Probability mass of prediction sets with the given coverage (default 0.9).

        Parameters
        ----------
        coverage : float, optional
            Wanted coverage, within the calibrated ones (0.5-0.99).
        decoded : bool
            Sets of decoded probabilities (their own calibration where there is one).

        Raises
        ------
        ValueError
            For a coverage outside (0, 1).
        """
        coverage = 0.9 if coverage is None else float(coverage)
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {coverage}")
        tables = self.conformal or {}
        table = tables.get("decoded" if decoded else "independent") or tables.get("independent")
        if not table:
            return coverage
        return float(np.interp(coverage, table["coverage"], table["level"]))


@functools.lru_cache(maxsize=4)
def _load_counter_path(path: str, mtime_ns: int) -> Counter:
    model, meta = load_model(path, expected=COUNTER_FORMAT)
    return Counter(
        model=fuse_counter(model),
        temperature=float(meta.get("temperature", [1.0])[0]),
        conformal=meta.get("conformal"),
        material=str(meta.get("material", "CeO2")),
        zone_axis=tuple(meta.get("zone_axis", (1, 1, 0))),
        target=str(meta.get("target", "count")),
        pooling=None if meta.get("pooling") is None else float(meta["pooling"]),
    )


def load_counter(model="pretrained") -> Counter:
    """A :class:`Counter` from the shipped weights, a weights file or a Counter.

    Parameters
    ----------
    model : "pretrained", str, Path or Counter
        ``"pretrained"`` (the shipped CeO2 counter), a manifest name, a weights file,
        or a Counter.

    Returns
    -------
    Counter
        ``model`` itself when it is one, else the counter loaded from the weights.

    Raises
    ------
    FileNotFoundError
        If a path names no file.
    """
    if isinstance(model, Counter):
        return model
    if isinstance(model, str) and model == "pretrained":
        model = fetch(PRETRAINED_COUNTER)
    elif isinstance(model, str) and model.startswith(("counter-", "defocus-", "tilt-")) and not Path(model).exists():
        model = fetch(model)
    path = Path(model).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no counter weights at {path}")
    return _load_counter_path(str(path), path.stat().st_mtime_ns)


def count_probabilities(
    frame: np.ndarray,
    rows,
    cols,
    *,
    sampling: float,
    counter: Counter,
    conditions: np.ndarray | None = None,
    batch: int = 4096,
) -> np.ndarray:
    """Calibrated probabilities of each count (1, 2, ..., and the top class: that many or more).

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) normalized frame (mean 1).
    rows, cols : array-like
        Column centres [px].
    sampling : float
        Pixel size of the frame [Å].
    counter : Counter
        The network.
    conditions : numpy.ndarray, optional
        From :func:`condition_vector`: one (C,) for every column, or (N, C), one per
        column; default nothing known.
    batch : int
        Patches per forward pass.

    Returns
    -------
    numpy.ndarray
        (N, n_classes) float32; column ``k`` is the probability of ``k + 1`` atoms.
    """
    cfg = counter.config
    n = len(np.atleast_1d(rows))
    if not n:
        return np.zeros((0, cfg.n_classes), np.float32)
    cond = condition_vector() if conditions is None else np.asarray(conditions, np.float32)
    patches = column_patches(frame, rows, cols, sampling=sampling, patch=cfg.patch, patch_sampling=cfg.sampling)
    if cond.ndim == 1:
        cond = np.repeat(cond[None], n, axis=0)
    if cond.shape[0] != n:
        raise ValueError(f"conditions: one vector, or one per column ({n}), got shape {cond.shape}")
    return _forward(counter, patches, cond, batch=batch)


def _forward(counter: Counter, patches: np.ndarray, conditions: np.ndarray, *, batch: int = 4096) -> np.ndarray:
    """The counter's calibrated probabilities of (N, P, P) patches under (N, C) conditions."""
    device = device_of(counter.model)  # where the counter was put
    x = torch.from_numpy(np.ascontiguousarray(patches, np.float32))[:, None].to(device)
    x = x.contiguous(memory_format=torch.channels_last)
    c = torch.from_numpy(np.ascontiguousarray(conditions, np.float32)).to(device)
    with torch.inference_mode():
        logits = torch.cat([counter.model(x[k : k + batch], c[k : k + batch]) for k in range(0, len(x), batch)])
        return torch.softmax(logits / counter.temperature, dim=1).cpu().numpy().astype(np.float32)


def prediction_table(probabilities: np.ndarray, *, level: float) -> dict:
    """Count, prediction set and confidence of each column from its count probabilities.

    Parameters
    ----------
    probabilities : numpy.ndarray
        (N, K) probabilities of 1..K atoms (the last: K or more).
    level : float or array-like
        Probability mass of the sets (a calibrated conformal level), one or one per column.

    Returns
    -------
    dict
        ``count`` (the most probable), ``count_low``, ``count_high`` (the set, contiguous),
        ``beyond_range`` (the set reaches the top class) and ``confidence`` (probability
        of the count), each (N,).

    Examples
    --------
    >>> t = prediction_table(np.array([[0.1, 0.6, 0.3, 0.0]]), level=0.85)
    >>> [int(t[k][0]) for k in ("count", "count_low", "count_high")], bool(t["beyond_range"][0])
    ([2, 2, 3], False)
    """
    p = np.asarray(probabilities, float)
    k = p.shape[1]
    low, high = interval_sets(p, level=level)
    count = p.argmax(axis=1)
    return {
        "count": count + 1,
        "count_low": low + 1,
        "count_high": high + 1,
        "beyond_range": high == k - 1,
        "confidence": p[np.arange(len(p)), count],
    }


def pool_condition(probabilities: np.ndarray, *, name: str, pooling: float | None = None) -> dict:
    """A frame's defocus or mistilt from its columns' probabilities over the condition's bins.

    The columns of one frame share one defocus (and, for one particle, one mistilt) but
    not independent evidence of it (neighbours overlap, thickness and the optics trade
    off alike), so their log probabilities are summed and scaled by
    ``pooling / sqrt(N)``, an exponent calibrated on held-out frames so that the stated
    uncertainty matches the errors.

    Parameters
    ----------
    probabilities : numpy.ndarray
        (N, bins) per-column probabilities of an estimator (:data:`ESTIMATED`).
    name : {"defocus", "tilt"}
        The condition.
    pooling : float, optional
        The calibrated exponent (default 1).

    Returns
    -------
    dict
        ``<name>`` (the posterior mean) [Å or degrees], ``std`` [same], ``weights``
        (over the bins), ``n`` (columns used).

    Examples
    --------
    >>> p = np.full((9, len(TILT_BINS)), 0.01); p[:, 2] = 0.9
    >>> out = pool_condition(p, name="tilt")
    >>> round(out["tilt"], 2), out["std"] < 0.1
    (0.5, True)
    """
    if name not in ESTIMATED:
        raise ValueError(f"no bins for {name!r}; estimated conditions: {sorted(ESTIMATED)}")
    p = np.asarray(probabilities, float)
    centres = np.asarray(ESTIMATED[name])
    if p.ndim != 2 or p.shape[1] != len(centres):
        raise ValueError(f"probabilities must be (N, {len(centres)}), got {p.shape}")
    n = len(p)
    if not n:
        w = np.full(len(centres), 1.0 / len(centres))
    else:
        log = np.log(np.clip(p, 1e-6, None)).sum(axis=0) * (1.0 if pooling is None else pooling) / np.sqrt(n)
        w = np.exp(log - log.max())
        w /= w.sum()
    mean = float(w @ centres)
    return {name: mean, "std": float(np.sqrt(w @ (centres - mean) ** 2)), "weights": w, "n": int(n)}


def pool_defocus(probabilities: np.ndarray, *, pooling: float | None = None) -> dict:
    """A frame's defocus from its columns' defocus probabilities (:func:`pool_condition`).

    Parameters
    ----------
    probabilities : numpy.ndarray
        (N, len(DEFOCUS_BINS)) per-column probabilities of a defocus estimator.
    pooling : float, optional
        The calibrated exponent (default 1).

    Returns
    -------
    dict
        ``defocus`` (posterior mean) [Å], ``std`` [Å], ``weights`` (over
        :data:`DEFOCUS_BINS`), ``n`` (columns used).

    Examples
    --------
    >>> p = np.full((9, len(DEFOCUS_BINS)), 0.01); p[:, 6] = 0.9
    >>> out = pool_defocus(p)
    >>> round(out["defocus"]), out["std"] < 5
    (-50, True)
    """
    return pool_condition(probabilities, name="defocus", pooling=pooling)


def estimate_condition(
    frame: np.ndarray,
    rows,
    cols,
    *,
    sampling: float,
    estimator: Counter,
    optics: Optics | dict | None = None,
    tilt: float | None = None,
) -> dict:
    """The defocus or mistilt of a frame (whichever ``estimator`` reads), from the patches of its columns.

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) normalized frame (mean 1).
    rows, cols : array-like
        Column centres [px].
    sampling : float
        Pixel size [Å].
    estimator : Counter
        A defocus or mistilt estimator (``target`` in :data:`ESTIMATED`).
    optics : Optics or dict, optional
        What else is known (a value of the estimated condition in it is ignored).
    tilt : float, optional
        Known mistilt [degrees] (ignored by a mistilt estimator).

    Returns
    -------
    dict
        As :func:`pool_condition`, with ``name``.
    """
    prob = condition_probabilities(frame, rows, cols, sampling=sampling, estimator=estimator, optics=optics, tilt=tilt)
    name = estimator.target
    return {**pool_condition(prob, name=name, pooling=estimator.pooling), "name": name}


def condition_probabilities(
    frame: np.ndarray,
    rows,
    cols,
    *,
    sampling: float,
    estimator: Counter,
    optics: Optics | dict | None = None,
    tilt: float | None = None,
) -> np.ndarray:
    """Each column's probabilities over the bins of the condition ``estimator`` reads (before pooling).

    Parameters
    ----------
    frame, rows, cols, sampling, estimator, optics, tilt
        As :func:`estimate_condition`.

    Returns
    -------
    numpy.ndarray
        (N, bins) float32, to pool over a frame or a particle (:func:`pool_condition`).
    """
    name = estimator.target
    if name not in ESTIMATED:
        raise ValueError(f"estimator: a defocus or mistilt estimator is needed, this network reads {name!r}")
    given = _given(optics)
    given.pop(name, None)
    return count_probabilities(
        frame,
        rows,
        cols,
        sampling=sampling,
        counter=estimator,
        conditions=condition_vector(given, tilt=None if name == "tilt" else tilt),
    )


def estimate_defocus(
    frame: np.ndarray,
    rows,
    cols,
    *,
    sampling: float,
    estimator: Counter,
    optics: Optics | dict | None = None,
    tilt: float | None = None,
) -> dict:
    """The defocus of a frame, read from the patches of its columns (:func:`estimate_condition`).

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) normalized frame (mean 1).
    rows, cols : array-like
        Column centres [px].
    sampling : float
        Pixel size [Å].
    estimator : Counter
        A defocus estimator (``target == "defocus"``).
    optics : Optics or dict, optional
        What else is known (any defocus in it is ignored).
    tilt : float, optional
        Known mistilt [degrees].

    Returns
    -------
    dict
        As :func:`pool_defocus`.
    """
    if estimator.target != "defocus":
        raise ValueError(f"estimator: a defocus estimator is needed, this network reads {estimator.target!r}")
    return estimate_condition(frame, rows, cols, sampling=sampling, estimator=estimator, optics=optics, tilt=tilt)


def marginal_probabilities(
    frame: np.ndarray,
    rows,
    cols,
    *,
    sampling: float,
    counter: Counter,
    weights: np.ndarray,
    optics: Optics | dict | None = None,
    tilt=None,
    min_weight: float = 1e-3,
    name: str = "defocus",
) -> np.ndarray:
    """Count probabilities averaged over the defocus (or mistilt), weighted by a frame's posterior of it.

    ``p(count) = sum_b w_b p(count | defocus_b)`` over the bins (:data:`ESTIMATED`)
    whose weight is at least ``min_weight`` (renormalized): what the counter says when
    the condition is known as well as the frame tells it. The patches are cut once and
    every bin goes through the network in one pass.

    Parameters
    ----------
    frame, rows, cols, sampling, counter
        As :func:`count_probabilities`.
    weights : numpy.ndarray
        Posterior over the bins (:func:`estimate_condition`).
    optics : Optics or dict, optional
        What else is known (a value of the condition in it is replaced).
    tilt : float or array-like, optional
        Known mistilt [degrees]: one for every column, or (N,) one per column (NaN:
        unknown); replaced where ``name="tilt"``.
    min_weight : float
        Bins below this weight are skipped.
    name : {"defocus", "tilt"}
        The condition ``weights`` are over.

    Returns
    -------
    numpy.ndarray
        Count probabilities, float32, shape (N, K): one row per column, one class per count.
    """
    if name not in ESTIMATED:
        raise ValueError(f"no bins for {name!r}; estimated conditions: {sorted(ESTIMATED)}")
    w = np.asarray(weights, float)
    keep = np.flatnonzero(w >= min(min_weight, w.max()))
    w = w[keep] / w[keep].sum()
    cfg = counter.config
    n = len(np.atleast_1d(rows))
    if not n:
        return np.zeros((0, cfg.n_classes), np.float32)
    given = _given(optics)
    tilts = np.broadcast_to(np.asarray(np.nan if tilt is None else tilt, float), (n,))
    conditions = [  # (bins, N, C): each column's own conditions with the bin's value of the condition
        column_conditions(given, np.full(n, ESTIMATED[name][b]))
        if name == "tilt"
        else column_conditions({**given, name: ESTIMATED[name][b]}, tilts)
        for b in keep
    ]
    patches = column_patches(frame, rows, cols, sampling=sampling, patch=cfg.patch, patch_sampling=cfg.sampling)
    prob = _forward(counter, np.tile(patches, (len(keep), 1, 1)), np.concatenate(conditions))
    return np.asarray(np.einsum("b,bnk->nk", w, prob.reshape(len(keep), n, -1)), np.float32)

"""The classical baseline: peak finding and integrated intensities, counted by calibration.

The established, learning-free way to count atoms in a column: find the columns as
intensity peaks, integrate each column's intensity over its Voronoi cell (atomap's
tools do both), and map the integrated intensity to a number of atoms with a
calibration made on simulated reference images of known counts. Here the calibration
keeps, for every count, the mean and spread of the integrated intensity of matched
reference columns, and a column gets the count of highest Gaussian likelihood.

It sees the same normalized, lightly smoothed frame as the network sees raw, and is
scored on the same test set with the same metrics (``04_evaluate``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from ..core.imaging import normalize
from ..core.metrics import match_columns

__all__ = ["IntensityCalibration", "column_features", "calibrate", "count_columns"]


def _atomap():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        from atomap.atom_finding_refining import get_atom_positions
        from atomap.tools import integrate
    return hs, get_atom_positions, integrate


def column_features(
    image: np.ndarray, *, sampling: float, smoothing: float = 0.25, separation: float = 2.0, radius: float = 0.5
) -> pd.DataFrame:
    """Peaks of a frame and their integrated intensities.

    Parameters
    ----------
    image : numpy.ndarray
        Frame (counts or intensity); normalized to its mean first.
    sampling : float
        Pixel size [Å].
    smoothing : float
        Gaussian smoothing before peak finding and integration [Å] (sigma).
    separation : float
        Least distance between two peaks [Å] (atomap's ``separation``).
    radius : float
        Largest Voronoi cell radius [Å]. Small, the column's bright core: in phase
        contrast the intensity over a whole cell averages to the vacuum level.

    Returns
    -------
    pandas.DataFrame
        ``row``, ``col`` [px], ``x``, ``y`` [Å], ``height`` (smoothed intensity at the
        peak, 1 = vacuum) and ``intensity`` (Voronoi-integrated intensity above vacuum
        [Å²]).
    """
    hs, get_atom_positions, integrate = _atomap()
    smooth = ndimage.gaussian_filter(normalize(image).astype(np.float64), smoothing / sampling)
    signal = hs.signals.Signal2D(smooth)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peaks = np.asarray(
            get_atom_positions(signal, separation=max(1, int(round(separation / sampling))), threshold_rel=0.0), float
        ).reshape(-1, 2)
    if not len(peaks):
        return pd.DataFrame(columns=["row", "col", "x", "y", "height", "intensity"])
    xs, ys = peaks[:, 0], peaks[:, 1]
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stderr(io.StringIO()),
    ):  # atomap's Voronoi step draws bars regardless
        warnings.simplefilter("ignore")
        integrated, _, _ = integrate(
            smooth - 1.0,
            xs,
            ys,
            method="Voronoi",
            max_radius=max(1, int(round(radius / sampling))),
            show_progressbar=False,
        )
    heights = smooth[
        np.clip(np.rint(ys).astype(int), 0, smooth.shape[0] - 1),
        np.clip(np.rint(xs).astype(int), 0, smooth.shape[1] - 1),
    ]
    return pd.DataFrame(
        {
            "row": ys,
            "col": xs,
            "x": xs * sampling,
            "y": ys * sampling,
            "height": heights,
            "intensity": np.asarray(integrated, float) * sampling**2,
        }
    )


@dataclass
class IntensityCalibration:
    """Integrated intensity of a column against its atom count, from simulated references.

    Attributes
    ----------
    counts : list of int
        Atom counts seen in the references.
    mean, std : list of float
        Mean and spread of the integrated intensity [Å²] for each count.
    threshold : float
        Least peak height (smoothed, vacuum = 1) of a column.
    smoothing, separation, radius : float
        The feature settings the calibration was made with [Å].
    """

    counts: list
    mean: list
    std: list
    threshold: float
    smoothing: float = 0.25
    separation: float = 2.0
    radius: float = 0.5

    def predict(self, intensity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Most likely count of each integrated intensity, and its posterior probability.

        Parameters
        ----------
        intensity : numpy.ndarray
            Integrated intensities [Å²].
        """
        x = np.asarray(intensity, float)[:, None]
        mu, sd = np.asarray(self.mean)[None], np.asarray(self.std)[None]
        loglik = -0.5 * ((x - mu) / sd) ** 2 - np.log(sd)
        post = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        best = post.argmax(axis=1)
        return np.asarray(self.counts)[best], post[np.arange(len(best)), best]

    def to_dict(self) -> dict:
        """JSON-able form."""
        return asdict(self)


def calibrate(images, tables, *, sampling: float, match_radius=0.7, channel=0, **features) -> IntensityCalibration:
    """Calibrate intensity against count on reference images with known columns.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        Reference frames (simulated, noisy at the doses to be counted).
    tables : sequence of pandas.DataFrame
        Their true column tables (``x``, ``y``, ``channel``, ``count``).
    sampling : float
        Pixel size [Å].
    match_radius : float
        Radius within which a peak is matched to a true column [Å].
    channel : int
        Label channel calibrated (0: the principal species).
    **features
        ``smoothing``, ``separation``, ``radius`` [Å] of :func:`column_features`;
        recorded in the calibration, which counts with the same ones.

    Returns
    -------
    IntensityCalibration
        Mean and spread of the integrated intensity [Å²] per count seen, the peak-height threshold
        that best separates true columns from noise peaks (best F1), and the feature settings used.
    """
    features = {"smoothing": 0.25, "separation": 2.0, "radius": 0.5, **features}
    feats, counts, heights_true, heights_false = [], [], [], []
    for image, table in zip(images, tables):
        f = column_features(image, sampling=sampling, **features)
        t = table[table.channel == channel]
        ip, it = match_columns(f[["x", "y"]].to_numpy(), t[["x", "y"]].to_numpy(), radius=match_radius)
        feats.extend(f.intensity.to_numpy()[ip])
        counts.extend(t["count"].to_numpy()[it])
        heights_true.extend(f.height.to_numpy()[ip])
        unmatched = np.setdiff1d(np.arange(len(f)), ip)
        heights_false.extend(f.height.to_numpy()[unmatched])
    if not counts:
        raise ValueError("no reference column was found: the calibration images hold no detectable columns")
    feats, counts = np.asarray(feats), np.asarray(counts)
    levels = np.unique(counts)
    mean = [float(feats[counts == n].mean()) for n in levels]
    pooled = float(np.std(feats - np.asarray(mean)[np.searchsorted(levels, counts)])) or 1e-3
    std = [float(max(feats[counts == n].std(), 0.25 * pooled)) if np.sum(counts == n) > 2 else pooled for n in levels]
    # the peak-height threshold that best separates true columns from noise peaks
    ht, hf = np.asarray(heights_true), np.asarray(heights_false)
    candidates = np.unique(np.concatenate([ht, hf]))
    best, best_f1 = float(ht.min()), -1.0
    for c in np.quantile(candidates, np.linspace(0, 1, 101)):
        tp = np.sum(ht >= c)
        fp = np.sum(hf >= c)
        fn = np.sum(ht < c)
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if f1 > best_f1:
            best, best_f1 = float(c), f1
    return IntensityCalibration(counts=[int(n) for n in levels], mean=mean, std=std, threshold=best, **features)


def count_columns(image: np.ndarray, *, sampling: float, calibration: IntensityCalibration) -> pd.DataFrame:
    """Columns and counts of one frame by the classical method.

    Parameters
    ----------
    image : numpy.ndarray
        Frame (counts or intensity).
    sampling : float
        Pixel size [Å].
    calibration : IntensityCalibration
        From :func:`calibrate`, at this frame's dose.

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y`` [Å], ``row``, ``col`` [px], ``element`` (``"cation"``), ``channel``
        (0), ``count``, ``confidence`` (posterior of the count under the calibration).
    """
    f = column_features(
        image,
        sampling=sampling,
        smoothing=calibration.smoothing,
        separation=calibration.separation,
        radius=calibration.radius,
    )
    f = f[f.height >= calibration.threshold].reset_index(drop=True)
    count, conf = calibration.predict(f.intensity.to_numpy()) if len(f) else (np.zeros(0, int), np.zeros(0))
    return pd.DataFrame(
        {
            "x": f.x,
            "y": f.y,
            "row": f.row,
            "col": f.col,
            "element": "cation",
            "channel": 0,
            "count": count,
            "confidence": conf,
        }
    )

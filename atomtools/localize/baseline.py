"""The baseline: peak finding and 2D Gaussian fitting of every atom, with atomap.

What a microscopist does without a network (atomap, Nord et al., Adv. Struct. Chem.
Imag. 3, 9 (2017)): find intensity maxima at least ``separation`` apart on a lightly
smoothed frame, then refine each position on the frame itself by centre of mass and a
2D Gaussian fit within a fraction of the distance to its nearest neighbours. It sees
the same frames as the network and gives the same table (:func:`gaussian_fit_atoms`).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
from scipy import ndimage

from ..core.tables import from_pixels
from .atoms import as_grey

__all__ = ["gaussian_fit_atoms"]


def gaussian_fit_atoms(
    image,
    *,
    sampling: float | None = None,
    separation: float | None = None,
    smoothing: float = 0.15,
    threshold: float = 0.3,
    refine: bool = True,
) -> pd.DataFrame:
    """Atoms of a frame by peak finding and atomap's 2D Gaussian refinement.

    Parameters
    ----------
    image : array-like
        (H, W) frame (as for :func:`atomtools.localize.find_atoms`).
    sampling : float, optional
        Pixel size [Å]; sets the defaults below in Å (None: unknown, ``x``, ``y`` NaN).
    separation : float, optional
        Least distance between two atoms [Å with a sampling, else px]; default 1.0 Å
        (or 5 px).
    smoothing : float
        Gaussian smoothing of the frame for the peak search [Å with a sampling, else
        px / 0.1] (standard deviation).
    threshold : float
        Least peak height on the smoothed frame, as a fraction of its range above the
        1st percentile.
    refine : bool
        Refine by centre of mass and a 2D Gaussian (else the maxima as found).

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y`` [Å] (NaN without a sampling), ``row``, ``col`` [px]
        (:data:`atomtools.core.tables.POSITION`), ``intensity`` (the smoothed frame at the peak).
    """
    import hyperspy.api as hs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import atomap.api as am

    frame = as_grey(image).astype(np.float64)
    per = sampling if sampling else 0.1
    sep_px = max(2, int(round((separation if separation is not None else (1.0 if sampling else 0.5)) / per)))
    smooth = ndimage.gaussian_filter(frame, max(0.5, smoothing / per))
    lo, hi = np.percentile(smooth, [1.0, 100.0])
    rel = float(np.clip(threshold, 0, 1))
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        peaks = np.asarray(
            am.get_atom_positions(hs.signals.Signal2D(smooth - lo), separation=sep_px, threshold_rel=rel), float
        ).reshape(-1, 2)
        if refine and len(peaks) >= 4:
            sub = am.Sublattice(peaks, frame)
            sub.find_nearest_neighbors()
            sub.refine_atom_positions_using_center_of_mass(show_progressbar=False)
            sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
            peaks = np.column_stack([sub.x_position, sub.y_position])
    xy = peaks[np.all(np.isfinite(peaks), axis=1)]
    xy = xy[
        (xy[:, 0] > -0.5) & (xy[:, 1] > -0.5) & (xy[:, 0] < frame.shape[1] - 0.5) & (xy[:, 1] < frame.shape[0] - 0.5)
    ]
    intensity = ndimage.map_coordinates(smooth, [xy[:, 1], xy[:, 0]], order=1) if len(xy) else np.zeros(0)
    del hi
    return from_pixels(xy[:, 0], xy[:, 1], sampling, intensity=intensity)

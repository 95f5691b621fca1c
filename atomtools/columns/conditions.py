"""The imaging conditions a column counter reads: their encoding, bins and classes.

A counter (:mod:`atomtools.columns.counting`) is told what is known of the optics and
the mistilt as a fixed vector (:func:`condition_vector`: each known value scaled, then a
known flag per value; unknown values are zero and flagged so). An estimator of a
condition (defocus, mistilt) is the same network trained on the condition's bins
(:data:`ESTIMATED`) instead of a count. Pure functions of numbers, no network.
"""

from __future__ import annotations

import numpy as np

from ..core.imaging import Optics

__all__ = [
    "CONDITIONS",
    "DEFOCUS_BINS",
    "TILT_BINS",
    "ESTIMATED",
    "condition_classes",
    "defocus_classes",
    "condition_vector",
    "column_conditions",
]

#: The imaging conditions a counter is conditioned on, and the scale each is divided by.
CONDITIONS = {
    "defocus": 50.0,  # [Å], positive underfocus (abTEM)
    "Cs": 1e5,  # [Å]
    "C5": 5e7,  # [Å]
    "focal_spread": 30.0,  # [Å], a standard deviation
    "aperture": 30.0,  # [mrad]
    "tilt": 1.0,  # mistilt from the zone axis [degrees]
}

#: Classes of a defocus estimator (a counter trained with ``target="defocus"``): bin
#: centres over the counter's training range [Å], 10 Å apart.
DEFOCUS_BINS = tuple(float(v) for v in np.arange(-110.0, 10.1, 10.0))


#: Classes of a mistilt estimator (a counter trained with ``target="tilt"``): bin centres
#: over the counter's training range [degrees], finest near the zone axis, where a
#: column's contrast changes fastest with the mistilt.
TILT_BINS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)

#: What a counter's network may read from a frame instead of a column's count: the
#: condition's name and its bins. The counter counts far better told both (compact
#: particles at 1000 e/Å², Ce columns of 3+ atoms: 0.72 exact with the optics given,
#: 0.87 with the mistilt too; ``runs/count_head``).
ESTIMATED = {"defocus": DEFOCUS_BINS, "tilt": TILT_BINS}


def condition_classes(name: str, values) -> np.ndarray:
    """Index of the nearest bin centre (:data:`ESTIMATED`) of each value of a condition (0-based).

    Parameters
    ----------
    name : {"defocus", "tilt"}
        The condition.
    values : float or array-like
        Its values [Å for the defocus, degrees for the mistilt].

    Returns
    -------
    numpy.ndarray
        Integer bin index of each value, shape (N,).

    Examples
    --------
    >>> condition_classes("tilt", [0.1, 0.4, 2.9]).tolist()
    [0, 2, 8]
    """
    if name not in ESTIMATED:
        raise ValueError(f"no bins for {name!r}; estimated conditions: {sorted(ESTIMATED)}")
    centres = np.asarray(ESTIMATED[name])
    d = np.asarray(values, float).reshape(-1)
    return np.abs(d[:, None] - centres[None, :]).argmin(axis=1)


def defocus_classes(defocus) -> np.ndarray:
    """Index of the nearest :data:`DEFOCUS_BINS` centre of each defocus [Å] (0-based).

    Parameters
    ----------
    defocus : float or array-like
        Defocus values [Å].

    Returns
    -------
    numpy.ndarray
        Integer bin index of each defocus, shape (N,).

    Examples
    --------
    >>> defocus_classes([-112.0, -54.0, 40.0]).tolist()
    [0, 6, 12]
    """
    return condition_classes("defocus", defocus)


def _given(optics: Optics | dict | None) -> dict:
    """What is known of the optics as a dict (an Optics knows everything but an infinite aperture)."""
    if isinstance(optics, Optics):
        given = {k: getattr(optics, k) for k in CONDITIONS if k != "tilt"}
        if not np.isfinite(given["aperture"]):
            given.pop("aperture")
        return given
    return dict(optics or {})


def condition_vector(optics: Optics | dict | None = None, *, tilt: float | None = None) -> np.ndarray:
    """The counter's conditions: each known value scaled, then a flag per value (1 known, 0 not).

    Parameters
    ----------
    optics : Optics or dict, optional
        What is known of the optics: an :class:`~atomtools.core.imaging.Optics` (every
        value known) or a dict with some of ``defocus``, ``Cs``, ``C5``,
        ``focal_spread`` [Å] and ``aperture`` [mrad] (the rest unknown); None: nothing.
    tilt : float, optional
        Mistilt of the particle from the zone axis [degrees], if known.

    Returns
    -------
    numpy.ndarray
        (12,) float32: six scaled values, then six known flags.

    Raises
    ------
    ValueError
        For an unknown name or a value that is not a finite number.

    Examples
    --------
    >>> condition_vector({"defocus": -50.0, "Cs": -1e5}).tolist()[:2], condition_vector({"Cs": -1e5})[6:].tolist()
    ([-1.0, -1.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    given = _given(optics)
    unknown = set(given) - set(CONDITIONS) - {"energy", "astigmatism", "astigmatism_angle"}
    if unknown:
        raise ValueError(f"optics: unknown {sorted(unknown)}; a counter takes {sorted(CONDITIONS)}")
    if tilt is not None:
        given["tilt"] = tilt
    values, known = np.zeros(len(CONDITIONS), np.float32), np.zeros(len(CONDITIONS), np.float32)
    for k, (name, scale) in enumerate(CONDITIONS.items()):
        if given.get(name) is None:
            continue
        value = float(given[name])
        if not np.isfinite(value):
            raise ValueError(f"optics[{name!r}] must be a finite number, got {given[name]!r}")
        values[k], known[k] = value / scale, 1.0
    return np.concatenate([values, known])


def column_conditions(optics: Optics | dict | None, tilts) -> np.ndarray:
    """One condition vector per column: the same optics, each column with its own mistilt.

    Parameters
    ----------
    optics : Optics or dict, optional
        What is known of the optics (:func:`condition_vector`).
    tilts : array-like
        (N,) each column's mistilt [degrees]; NaN where unknown.

    Returns
    -------
    numpy.ndarray
        (N, 12) float32, a :func:`condition_vector` per column (one per distinct mistilt, shared).

    Examples
    --------
    >>> c = column_conditions({"defocus": -50.0}, [1.0, np.nan, 1.0])
    >>> c[:, 5].tolist(), c[:, 11].tolist()  # the mistilt's scaled value and its known flag
    ([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    """
    tilts = np.asarray(tilts, float).reshape(-1)
    keys = np.where(np.isnan(tilts), -1.0, tilts)  # -1: unknown
    levels, which = np.unique(keys, return_inverse=True)
    table = np.stack([condition_vector(optics, tilt=None if k < 0 else float(k)) for k in levels])
    return table[which.reshape(-1)]

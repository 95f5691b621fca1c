"""Counting a frame's columns with the column counter: particles, the crystal check, the recount.

:func:`particle_groups` joins columns into particles, :func:`crystal_columns` keeps those
on the material's lattice, and :func:`recount` counts the principal species' columns with
the column counter (:mod:`atomtools.columns.counting`), the defocus and each particle's
mistilt read from the frame where not given, decoded particle by particle
(:func:`atomtools.core.chords.decode_counts`), with prediction sets.
:func:`atomtools.columns.retrieve` calls them after finding the columns.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..core.materials import Material
from . import counting as _counting
from .domain import OutOfDomainWarning

__all__ = ["COUNTER_ENERGY", "particle_groups", "crystal_columns", "recount"]


def particle_groups(xy: np.ndarray, *, link: float) -> np.ndarray:
    """Label of the particle each column belongs to: columns closer than ``link`` [Å] are joined.

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) positions [Å].
    link : float
        Largest distance of two neighbouring columns of one particle [Å].

    Returns
    -------
    numpy.ndarray
        Integer particle label of each column (0-based), shape (N,).

    Examples
    --------
    >>> particle_groups(np.array([[0.0, 0.0], [3.0, 0.0], [20.0, 0.0]]), link=4.0).tolist()
    [0, 0, 1]
    """
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, float).reshape(-1, 2)
    if not len(xy):
        return np.zeros(0, int)
    pairs = cKDTree(xy).sparse_distance_matrix(cKDTree(xy), link, output_type="coo_matrix")
    return connected_components(pairs, directed=False)[1]


def crystal_columns(
    table: pd.DataFrame,
    material: Material,
    *,
    min_group: int = 5,
    max_residual: float = 0.25,
    indexed: dict | None = None,
) -> np.ndarray:
    """Which columns belong to a crystal of ``material``: their particle sits on its projected lattice.

    Columns of the principal species are grouped into particles (neighbours closer than
    0.75 a); a group of ``min_group`` or more whose positions fit the projected lattice
    (median distance from the lattice sites at most ``max_residual``) is a crystal. What
    is kept: every column of a crystal, and the other species' columns next to one. Where
    the frame holds a crystal, groups that are not (columns the network saw in amorphous
    support or noise, which sit off any lattice) and small isolated groups are dropped;
    where it holds none, everything is kept (nothing to judge by).

    Parameters
    ----------
    table : pandas.DataFrame
        Detected columns (``x``, ``y`` [Å], ``channel``).
    material : Material
        The crystal and zone axis.
    min_group : int
        Fewest columns of a group judged on its own.
    max_residual : float
        Largest median distance of a crystal's columns from its lattice sites [Å].
    indexed : dict, optional
        Filled with each judged group's lattice indexing under
        :func:`~atomtools.core.chords.indexing_key`, for :func:`recount` to reuse.

    Returns
    -------
    numpy.ndarray
        (len(table),) bool: keep.
    """
    from scipy.spatial import cKDTree

    from ..core.chords import index_columns, indexing_key, projected_lattice

    keep = np.ones(len(table), bool)
    lattice = projected_lattice(material)
    principal = table["channel"].to_numpy() == 0 if len(table) else np.zeros(0, bool)
    if lattice is None or principal.sum() < min_group:
        return keep
    xy = table[["x", "y"]].to_numpy(float)
    rows = np.flatnonzero(principal)
    groups = particle_groups(xy[rows], link=0.75 * material.a)
    crystal = np.zeros(len(rows), bool)
    for g in np.unique(groups):
        members = groups == g
        if members.sum() >= min_group:
            answer = index_columns(xy[rows][members], lattice)
            crystal[members] = np.median(answer[1]) <= max_residual
            if indexed is not None:
                indexed[indexing_key(xy[rows][members])] = answer
    if not crystal.any():
        return keep
    keep[rows] = crystal
    others = np.flatnonzero(~principal)
    if len(others):
        near, _ = cKDTree(xy[rows][crystal]).query(xy[others], distance_upper_bound=0.75 * material.a)
        keep[others] = np.isfinite(near)
    return keep


def recount(
    table: pd.DataFrame,
    frame: np.ndarray,
    *,
    sampling: float,
    counter,
    material: Material | None,
    optics=None,
    tilt: float | None = None,
    decode: bool = True,
    coverage: float | None = None,
    defocus_estimator=None,
    tilt_estimator=None,
    indexed: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Counts of the principal species' columns from the counter, decoded particle by particle.

    Parameters
    ----------
    table : pandas.DataFrame
        Detected columns (``row``, ``col`` [px of ``frame``]).
    frame : numpy.ndarray
        The normalized frame they were found in.
    sampling : float
        Its pixel size [Å].
    counter : Counter
        The column counter (:func:`atomtools.columns.counting.load_counter`).
    material : Material, optional
        The crystal, for the particle decoding (None: no decoding).
    optics : Optics or dict, optional
        What is known of the optics (:func:`atomtools.columns.counting.condition_vector`).
    tilt : float, optional
        Known mistilt [degrees].
    decode : bool
        Decode each particle's counts jointly (:func:`atomtools.core.chords.decode_counts`).
    coverage : float, optional
        Coverage of the prediction sets (default the counter's calibrated one, 0.9).
    defocus_estimator : Counter, optional
        Where the optics give no defocus: a defocus estimator
        (:func:`atomtools.columns.counting.estimate_defocus`) whose posterior over the
        frame's defocus weighs the counter's answers
        (:func:`~atomtools.columns.counting.marginal_probabilities`); None: the counter
        answers for its whole trained range of defocus, column by column.
    tilt_estimator : Counter, optional
        Where the mistilt is not given: a mistilt estimator
        (:func:`atomtools.columns.counting.estimate_condition`) that reads each
        particle's mistilt from its columns (a particle of fewer than 8 columns: from
        the frame's), and the counter is told it; None: the counter answers for its
        whole trained range of mistilt.
    indexed : dict, optional
        Particles' lattice indexing from :func:`crystal_columns` (``indexed=``), reused
        by the decoding where the same columns make a particle.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table with ``count``, ``count_low``, ``count_high``, ``beyond_range`` and
        ``confidence`` of the principal columns replaced; and a dict with
        ``probabilities`` (N, K) of those rows, ``model_count`` (the decoded
        particle's chord, -1 where none), ``rows`` (their index in the table),
        ``defocus`` (the estimate, ``{"defocus": [Å], "std": [Å], ...}``, or None) and
        ``tilt`` (``{"tilt": [degrees], "std": [degrees]}``, each (N,), one estimate
        per particle, or None).
    """
    from ..core.chords import decode_counts, indexing_key

    _counting.condition_vector(optics, tilt=tilt)  # bad input fails here, columns or not
    energy = _counting._given(optics).get("energy")
    if energy is not None and abs(float(energy) - COUNTER_ENERGY) > 0.02 * COUNTER_ENERGY:
        warnings.warn(
            f"the column counter was trained at {COUNTER_ENERGY / 1e3:g} kV; at {float(energy) / 1e3:g} kV the same "
            "column gives other contrast: the counts are not to be trusted",
            OutOfDomainWarning,
            stacklevel=3,
        )
    principal = np.flatnonzero(table["channel"].to_numpy() == 0) if len(table) else np.zeros(0, int)
    empty = np.zeros((0, counter.config.n_classes))
    none = np.zeros(0)
    info = {
        "probabilities": empty,
        "model_count": np.zeros(0, int),
        "departure": none,
        "asymmetry": none,
        "applied": np.zeros(0, bool),
        "rows": principal,
        "decoded": False,
        "defocus": None,
        "tilt": None,
    }
    if not len(principal):
        return table, info
    rows = table["row"].to_numpy(float)[principal]
    cols = table["col"].to_numpy(float)[principal]
    xy = np.column_stack([cols, rows]) * sampling
    groups = particle_groups(xy, link=0.75 * material.a) if material is not None else np.zeros(len(xy), int)
    # the mistilt: given, or read per particle (a tilt is the particle's, the defocus the frame's)
    tilts = np.full(len(principal), np.nan if tilt is None else float(tilt))
    if tilt is None and tilt_estimator is not None:
        per_column = _counting.condition_probabilities(
            frame, rows, cols, sampling=sampling, estimator=tilt_estimator, optics=optics
        )
        whole = _counting.pool_condition(per_column, name="tilt", pooling=tilt_estimator.pooling)
        spread = np.full(len(principal), whole["std"])
        tilts[:] = whole["tilt"]
        for g in np.unique(groups):
            members = groups == g
            if 8 <= members.sum() < len(members):
                own = _counting.pool_condition(per_column[members], name="tilt", pooling=tilt_estimator.pooling)
                tilts[members], spread[members] = own["tilt"], own["std"]
        info["tilt"] = {"tilt": tilts.copy(), "std": spread}
    prob = np.zeros((len(principal), counter.config.n_classes), np.float32)
    if defocus_estimator is not None and "defocus" not in _counting._given(optics):
        info["defocus"] = _counting.estimate_defocus(
            frame, rows, cols, sampling=sampling, estimator=defocus_estimator, optics=optics, tilt=tilt
        )
    if info["defocus"] is not None:  # every mistilt and defocus bin in one pass of the counter
        prob[:] = _counting.marginal_probabilities(
            frame,
            rows,
            cols,
            sampling=sampling,
            counter=counter,
            weights=info["defocus"]["weights"],
            optics=optics,
            tilt=tilts,
        )
    else:
        prob[:] = _counting.count_probabilities(
            frame, rows, cols, sampling=sampling, counter=counter, conditions=_counting.column_conditions(optics, tilts)
        )
    model_count = np.full(len(principal), -1)
    departure = np.full(len(principal), np.nan)  # the prior's departure mass chosen per particle
    asymmetry = np.full(len(principal), np.nan)  # atom steps of the fitted facets from the symmetric shape
    decoded = False
    if decode and material is not None:
        for g in np.unique(groups):
            members = np.flatnonzero(groups == g)
            if len(members) < 8:
                continue
            known = (indexed or {}).get(indexing_key(xy[members]))
            out = decode_counts(xy[members], prob[members], material, indexed=known)
            if out is not None and out["applied"]:
                prob[members] = out["probabilities"]
                model_count[members] = out["model_count"]
                departure[members] = out["departure"]
                decoded = True
            if out is not None:
                asymmetry[members] = out["asymmetry"]
    applied = np.isfinite(departure)  # columns whose particle prior was applied
    level = np.where(applied, counter.level(coverage, decoded=True), counter.level(coverage, decoded=False))
    sets = _counting.prediction_table(prob, level=level)
    table = table.copy()
    for name in ("count", "count_low", "count_high", "beyond_range", "confidence"):
        column = table[name].to_numpy().copy()
        column[principal] = sets[name]
        table[name] = column
    info.update(
        probabilities=prob,
        model_count=model_count,
        departure=departure,
        asymmetry=asymmetry,
        applied=applied,
        decoded=decoded,
        level=level,
    )
    return table, info


#: Beam energy the column counters are trained at [eV].
COUNTER_ENERGY = 300e3

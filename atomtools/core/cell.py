"""The simulation cell around a particle: mistilt, an amorphous support, placement.

Pure, as the rest of the core: ``ase.Atoms`` and numbers in, ``Atoms`` out, every random
draw from an explicit generator. :func:`atomtools.core.structures.build` chains them:
particle, :func:`mistilt`, :func:`amorphous_carbon`, :func:`place_in_cell`. The column
ids an atom carries (``atoms.arrays["column"]``) ride along unchanged.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

__all__ = ["DoesNotFitError", "mistilt", "amorphous_carbon", "place_in_cell"]


class DoesNotFitError(ValueError):
    """A particle model larger than the field of view it was to be placed in."""


def mistilt(atoms: Atoms, *, tilt: float, axis_angle: float, rotation: float) -> Atoms:
    """Tilt a model away from the zone axis, then rotate it about the beam.

    Parameters
    ----------
    atoms : ase.Atoms
        Model centred on the origin.
    tilt : float
        Tilt angle [degrees] about an in-plane axis.
    axis_angle : float
        Direction of that axis [degrees from x].
    rotation : float
        Rotation about the beam (z) [degrees].

    Column ids travel with the atoms: a tilted column stays one column.

    Returns
    -------
    ase.Atoms
        A tilted and rotated copy of ``atoms``.
    """
    out = atoms.copy()
    t = np.deg2rad(axis_angle)
    if tilt:
        out.rotate(tilt, (np.cos(t), np.sin(t), 0.0), center=(0, 0, 0))
    if rotation:
        out.rotate(rotation, "z", center=(0, 0, 0))
    return out


def amorphous_carbon(
    extent: tuple[float, float], thickness: float, *, rng, density: float = 2.0, min_distance: float = 1.3
) -> Atoms:
    """Random carbon film.

    Parameters
    ----------
    extent : two float
        Lateral size [Å].
    thickness : float
        Film thickness [Å].
    rng : numpy.random.Generator
        Source of the positions.
    density : float
        Mass density [g/cm³].
    min_distance : float
        Closest approach kept between carbon atoms [Å].

    Returns
    -------
    ase.Atoms
        The carbon atoms, positions [Å] within ``extent`` x ``thickness`` from the origin, no cell;
        ``arrays["column"]`` is -1 (no column).
    """
    from ase.units import _amu

    n = int(round(density * 1e-24 / (12.011 * _amu * 1e3) * extent[0] * extent[1] * thickness))
    box = np.array([extent[0], extent[1], thickness])
    boxsize = [extent[0], extent[1], thickness * 10]  # periodic laterally, open along the beam
    # random sequential addition in batches: a candidate is kept if no kept atom (and no
    # earlier candidate of its batch) lies within min_distance
    pos = np.zeros((0, 3))
    for _ in range(200):
        if len(pos) >= n:
            break
        cand = rng.random((max(64, n - len(pos)), 3)) * box
        if len(pos):
            clash = cKDTree(pos, boxsize=boxsize).query_ball_point(cand, r=min_distance, return_length=True) > 0
            cand = cand[~clash]
        pairs = cKDTree(cand, boxsize=boxsize).query_pairs(min_distance, output_type="ndarray")
        drop = np.zeros(len(cand), bool)
        for i, j in pairs:
            if not (drop[i] or drop[j]):
                drop[j] = True
        pos = np.vstack([pos, cand[~drop]])
    pos = pos[:n]
    film = Atoms("C" * len(pos), positions=pos)
    film.arrays["column"] = np.full(len(film), -1, np.int64)
    return film


def place_in_cell(
    atoms: Atoms,
    *,
    extent: tuple[float, float],
    shift=(0.0, 0.0),
    vacuum: float = 5.0,
    margin: float = 2.0,
    support: Atoms | None = None,
) -> Atoms:
    """Put a centred model in a periodic cell of the given lateral extent.

    Parameters
    ----------
    atoms : ase.Atoms
        Model centred on the origin.
    extent : two float
        Lateral cell size [Å], equal to the image field of view.
    shift : two float
        Lateral offset from the cell centre [Å].
    vacuum : float
        Vacuum above and below along the beam [Å].
    margin : float
        Smallest lateral distance kept between an atom and the cell edge [Å].
    support : ase.Atoms, optional
        Film placed on the exit side of the model (positions from 0 along z).

    Returns
    -------
    ase.Atoms
        A copy of ``atoms`` (with the support film above it, where given) in a periodic cell
        ``extent`` wide [Å], ``vacuum`` above and below.

    Raises
    ------
    ValueError
        (:class:`DoesNotFitError`) If the model does not fit laterally.
    """
    out = atoms.copy()
    xy = out.positions[:, :2] + np.asarray(shift, float) + np.asarray(extent, float) / 2
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    if np.any(lo < margin) or np.any(hi > np.asarray(extent) - margin):
        raise DoesNotFitError(
            f"the model spans x {lo[0]:.1f}..{hi[0]:.1f} Å, y {lo[1]:.1f}..{hi[1]:.1f} Å and does not fit "
            f"a {extent[0]:.1f} x {extent[1]:.1f} Å field with a {margin} Å margin: use a smaller "
            "size or a larger field"
        )
    out.positions[:, :2] = xy
    out.positions[:, 2] += vacuum - out.positions[:, 2].min()
    top = out.positions[:, 2].max()
    if support is not None and len(support):
        film = support.copy()
        film.positions[:, 2] += top + 2.0
        out += film
        top = out.positions[:, 2].max()
    out.cell = [extent[0], extent[1], top + vacuum]
    out.pbc = True
    return out

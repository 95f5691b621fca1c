"""Crystal lattices seen along a zone axis: the bulk, its rotation onto the beam, the sites
within a radius, the column period and geometry, and the reflections a zone axis shows.

Pure: ASE ``Atoms`` and numbers in, ``Atoms`` and arrays out. Conventions: the beam
travels along +z; lengths in Å. The zone axis is rotated onto z and the shortest lattice
vector normal to it onto x.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
from ase import Atoms

from .materials import CEO2, Material

__all__ = ["fluorite", "ceo2", "zone_axis_rotation", "column_period", "column_geometry", "lattice_sites", "reflections"]

#: Projected positions equal to 1 mÅ belong to one column.
_POSITION_DECIMALS = 3


def fluorite(symbols: tuple[str, str] = CEO2.symbols, *, a: float = CEO2.a) -> Atoms:
    """Conventional cubic cell of a fluorite (CaF2-type) crystal.

    Parameters
    ----------
    symbols : tuple of str
        Cation and anion symbols.
    a : float
        Lattice constant [Å].

    Returns
    -------
    ase.Atoms
        The periodic conventional cell: 4 cations and 8 anions, cubic side ``a`` [Å].

    Examples
    --------
    >>> fluorite().get_chemical_formula()
    'Ce4O8'
    """
    return Material(name="".join(symbols), structure="fluorite", symbols=tuple(symbols), a=a).bulk()


def ceo2(*, a: float = CEO2.a) -> Atoms:
    """Conventional cell of fluorite CeO2 (a = 5.411 Å by default).

    Parameters
    ----------
    a : float
        Lattice constant [Å].

    Returns
    -------
    ase.Atoms
        Ce4O8 in a cubic cell.

    Examples
    --------
    >>> float(round(ceo2().cell.lengths()[0], 3))
    5.411
    """
    return fluorite(CEO2.symbols, a=a)


def _lattice_vector(cell: np.ndarray, uvw) -> np.ndarray:
    uvw = np.asarray(uvw, dtype=float)
    if uvw.shape != (3,) or not np.any(uvw):
        raise ValueError(f"zone axis must be three integers, not all zero; got {tuple(uvw)}")
    return uvw @ cell


def zone_axis_rotation(bulk: Atoms, zone_axis=(1, 1, 0)) -> np.ndarray:
    """Rotation matrix taking the crystal frame to the zone-axis frame.

    The zone axis ``[uvw]`` goes to +z; the shortest lattice vector normal to it
    goes to +x.

    Parameters
    ----------
    bulk : ase.Atoms
        Unit cell of the crystal.
    zone_axis : tuple of int
        Crystal direction [uvw] along the beam.

    Returns
    -------
    numpy.ndarray
        (3, 3) orthonormal matrix ``R`` with ``r_zone = R @ r_crystal``.

    Examples
    --------
    >>> R = zone_axis_rotation(ceo2(), (1, 1, 0))
    >>> np.round(R @ np.array([1.0, 1.0, 0.0]) / np.sqrt(2), 6).tolist()
    [0.0, 0.0, 1.0]
    """
    cell = np.asarray(bulk.cell)
    z = _lattice_vector(cell, zone_axis)
    z = z / np.linalg.norm(z)
    best = None
    for uvw in itertools.product(range(-3, 4), repeat=3):
        if not any(uvw):
            continue
        v = np.asarray(uvw, float) @ cell
        if abs(v @ z) > 1e-8 * np.linalg.norm(v):
            continue
        key = (round(float(np.linalg.norm(v)), 6), uvw)
        if best is None or key < best[0]:
            best = (key, v)
    if best is None:  # pragma: no cover - any lattice has such a vector within |uvw| <= 3
        raise ValueError(f"no lattice vector normal to zone axis {zone_axis}")
    x = best[1] / np.linalg.norm(best[1])
    y = np.cross(z, x)
    return np.stack([x, y, z])


def column_period(bulk: Atoms, zone_axis=(1, 1, 0)) -> float:
    """Repeat distance of atoms along a column [Å]: the shortest lattice vector along the zone axis.

    Parameters
    ----------
    bulk, zone_axis
        As for :func:`zone_axis_rotation`.

    Returns
    -------
    float
        The repeat distance [Å].

    Examples
    --------
    >>> round(column_period(ceo2(), (1, 1, 0)), 4)
    3.8262
    """
    cell = np.asarray(bulk.cell)
    z = _lattice_vector(cell, zone_axis)
    g = np.gcd.reduce(np.asarray(zone_axis, dtype=int))
    shortest = z / g
    # A centred lattice may repeat more often than the conventional indices say.
    best = np.linalg.norm(shortest)
    frac = np.linalg.solve(cell.T, shortest)
    sites = bulk.get_scaled_positions()
    same = sites[np.array(bulk.numbers) == bulk.numbers[0]]
    for n in (2, 3, 4, 6):
        shift = frac / n
        moved = (same + shift) % 1.0
        d = np.abs(moved[:, None, :] - same[None, :, :])
        d = np.minimum(d, 1 - d).max(axis=-1).min(axis=1)
        if np.all(d < 1e-6):
            best = min(best, np.linalg.norm(shortest) / n)
    return float(best)


def column_geometry(mat: Material) -> tuple[float, float | None]:
    """Repeat distance along a column, and the projected distance of staggered columns.

    Along a zone axis, columns of the principal species may sit at different heights:
    along [110] of fcc and fluorite crystals, projected nearest-neighbour columns are
    half a period apart in height (:mod:`atomtools.columns.reconstruct` uses this).

    Parameters
    ----------
    mat : Material
        The crystal and zone axis.

    Returns
    -------
    (float, float or None)
        The column period [Å], and the smallest projected distance between two
        columns whose heights differ by half a period [Å] (None where there is none).

    Examples
    --------
    >>> period, stagger = column_geometry(CEO2)
    >>> round(period, 4), round(stagger, 4)  # a / sqrt(2), a * sqrt(3 / 8)
    (3.8262, 3.3135)
    """
    return _column_geometry(mat.structure, tuple(mat.symbols), float(mat.a), tuple(mat.zone_axis))


@functools.lru_cache(maxsize=64)
def _column_geometry(structure: str, symbols: tuple, a: float, zone_axis: tuple) -> tuple[float, float | None]:
    """:func:`column_geometry` of the crystal these fields define (a pure function, cached)."""
    mat = Material(name="geometry", structure=structure, symbols=symbols, a=a, zone_axis=zone_axis)
    bulk = mat.bulk()
    period = column_period(bulk, mat.zone_axis)
    sites = lattice_sites(bulk, mat.zone_axis, radius=2.5 * max(mat.a, period))
    principal = sites.numbers == bulk.numbers[0]
    pos, col = sites.positions[principal], sites.arrays["column"][principal]
    phase = np.mod(pos[:, 2], period)
    origin = col[np.argmin(np.linalg.norm(pos[:, :2], axis=1))]
    here = phase[col == origin][0]
    half = np.abs(np.mod(phase - here, period) - period / 2) < 1e-3
    d = np.linalg.norm(pos[half, :2], axis=1)
    return float(period), float(d.min()) if len(d) else None


def lattice_sites(bulk: Atoms, zone_axis=(1, 1, 0), *, radius: float) -> Atoms:
    """All sites of ``bulk`` within ``radius`` of a cation site, in the zone-axis frame.

    The cation at the origin stays at the origin. Each site gets an integer column id
    in ``arrays["column"]``: sites with equal projected (x, y) share it.

    Parameters
    ----------
    bulk : ase.Atoms
        Periodic unit cell of the crystal.
    zone_axis : tuple of int
        Crystal direction [uvw] along the beam.
    radius : float
        Radius of the ball of sites kept [Å].

    Returns
    -------
    ase.Atoms
        The sites [Å] in the zone-axis frame, with ``arrays["column"]`` (column id) and ``info``
        ``zone_axis``, ``rotation`` (3, 3) and ``column_period`` [Å].
    """
    if not radius > 0:
        raise ValueError(f"radius must be positive [Å], got {radius}")
    cell = np.asarray(bulk.cell)
    reps = [int(np.ceil(radius / h)) + 1 for h in _cell_heights(cell)]
    shifts = np.array(list(itertools.product(*[range(-r, r + 1) for r in reps])), float) @ cell
    pos = (bulk.positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    numbers = np.tile(bulk.numbers, len(shifts))
    pos = pos - bulk.positions[0]
    keep = np.einsum("ij,ij->i", pos, pos) <= radius**2
    pos, numbers = pos[keep], numbers[keep]
    rot = zone_axis_rotation(bulk, zone_axis)
    pos = pos @ rot.T
    sites = Atoms(numbers=numbers, positions=pos)
    sites.arrays["column"] = _column_ids(pos[:, :2])
    sites.info["zone_axis"] = tuple(int(v) for v in zone_axis)
    sites.info["rotation"] = rot
    sites.info["column_period"] = column_period(bulk, zone_axis)
    return sites


def _cell_heights(cell: np.ndarray) -> np.ndarray:
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])


def _column_ids(xy: np.ndarray) -> np.ndarray:
    key = np.round(xy, _POSITION_DECIMALS) + 0.0  # + 0.0 folds -0.0 into 0.0
    _, ids = np.unique(key, axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64)


def _equivalent_normals(hkl, cubic: bool) -> np.ndarray:
    hkl = tuple(int(v) for v in hkl)
    if cubic:
        family = set()
        for perm in itertools.permutations(hkl):
            for signs in itertools.product((1, -1), repeat=3):
                family.add(tuple(s * p for s, p in zip(signs, perm)))
    else:
        family = {hkl, tuple(-v for v in hkl)}
    return np.array(sorted(family), float)


def _is_cubic(cell: np.ndarray) -> bool:
    lengths = np.linalg.norm(cell, axis=1)
    return bool(np.allclose(lengths, lengths[0]) and np.allclose(cell / lengths[0], np.eye(3), atol=1e-8))


def reflections(mat: Material, *, k_max: float = 1.2) -> np.ndarray:
    """Lengths of the reciprocal vectors a crystal shows when seen along its zone axis.

    The reflections ``g`` with ``g . [uvw] = 0`` (the zone law) whose kinematic structure
    factor, with atomic numbers as scattering strengths, does not vanish.

    Parameters
    ----------
    mat : Material
        The crystal and zone axis.
    k_max : float
        Largest ``|g|`` [1/Å].

    Returns
    -------
    numpy.ndarray
        Sorted distinct ``|g|`` [1/Å] (1/d of the lattice planes imaged).

    Examples
    --------
    >>> np.round(1 / reflections(CEO2)[:3], 2).tolist()  # {111}, {200}, {220} of CeO2 along [110]
    [3.12, 2.71, 1.91]
    """
    bulk = mat.bulk()
    cell = np.asarray(bulk.cell)
    recip = np.linalg.inv(cell).T
    zone = np.asarray(mat.zone_axis, float) @ cell
    zone /= np.linalg.norm(zone)
    frac, z = bulk.get_scaled_positions(), bulk.numbers
    n = int(np.ceil(k_max * max(bulk.cell.lengths()))) + 1
    out = []
    for hkl in itertools.product(range(-n, n + 1), repeat=3):
        g = np.asarray(hkl, float) @ recip
        norm = np.linalg.norm(g)
        if not any(hkl) or norm > k_max or abs(g @ zone) > 1e-6 * max(norm, 1.0):
            continue
        if abs(np.sum(z * np.exp(2j * np.pi * (frac @ np.asarray(hkl, float))))) > 1e-3 * z.sum():
            out.append(norm)
    return np.unique(np.round(out, 4))

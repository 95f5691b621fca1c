"""A 3D atomic model of a particle from its retrieved columns.

A column table says where each column is and how many atoms it holds, not where along
the beam they sit. :func:`to_atoms` places them on the crystal's lattice sites along
the zone axis, under one of two stated assumptions about the surfaces:

``surface="bottom"``
    a flat entrance (base) surface: every column starts on the same (110) lattice
    plane, as for particles on a support and for the simulated profile particles;
``surface="center"``
    columns symmetric about the particle's mid-plane, as for a free faceted particle.

In fluorite and fcc crystals seen along [110], columns sit at two heights, half a
repeat apart: projected nearest neighbours (3.31 Å apart in CeO2) alternate, the
3.83 Å and 5.41 Å neighbours do not. ``stagger=True`` recovers that two-colouring of
the cation columns from their positions; each O column sits half a repeat from the
cation column next to it. Which of the two column sets touches the base plane cannot be
told from one projection (both models project identically): ``base_parity`` chooses,
and :func:`atomtools.evaluate.evaluate` scores the better of the two.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from ..core.materials import Material
from ..core.materials import material as _material
from ..core.structures import column_geometry
from ..utils import atomic_path

__all__ = ["to_atoms", "column_parity", "write_model"]


def column_parity(xy: np.ndarray, *, nn_distance: float, tolerance: float = 0.12) -> np.ndarray:
    """Two-colouring of columns: neighbours ``nn_distance`` apart get opposite parity.

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) column positions [Å].
    nn_distance : float
        Projected distance between columns at different heights [Å].
    tolerance : float
        Relative tolerance on that distance.

    Returns
    -------
    numpy.ndarray
        (N,) 0 or 1; each connected group starts at 0 from its first column.

    Examples
    --------
    >>> column_parity(np.array([[0.0, 0.0], [1.9, 2.7], [3.8, 0.0]]), nn_distance=3.31).tolist()
    [0, 1, 0]
    """
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, float).reshape(-1, 2)
    parity = np.full(len(xy), -1)
    if not len(xy):
        return parity
    tree = cKDTree(xy)
    pairs = tree.query_pairs(nn_distance * (1 + tolerance), output_type="ndarray")
    d = np.linalg.norm(xy[pairs[:, 0]] - xy[pairs[:, 1]], axis=1) if len(pairs) else np.zeros(0)
    pairs = pairs[d >= nn_distance * (1 - tolerance)] if len(pairs) else pairs
    neighbours = [[] for _ in range(len(xy))]
    for i, j in pairs:
        neighbours[i].append(j)
        neighbours[j].append(i)
    for seed in range(len(xy)):
        if parity[seed] >= 0:
            continue
        parity[seed] = 0
        queue = deque([seed])
        while queue:
            i = queue.popleft()
            for j in neighbours[i]:
                if parity[j] < 0:
                    parity[j] = 1 - parity[i]
                    queue.append(j)
    return parity


def to_atoms(
    table: pd.DataFrame,
    *,
    material: Material | str = "CeO2",
    surface: str = "bottom",
    stagger: bool = True,
    base_parity: int = 0,
    vacuum: float = 5.0,
) -> Atoms:
    """3D model of a crystal's columns from a column table.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns with ``x``, ``y`` [Å], ``channel`` (0 the principal species, e.g. the
        cation; 1 the other) and ``count``.
    material : Material or str
        The crystal and zone axis: atoms in a column are one column period apart
        (``a / sqrt(2)`` along [110] of CeO2), and each channel's element.
    surface : {"bottom", "center"}
        Where columns start: a flat base plane, or symmetric about the mid-plane.
    stagger : bool
        Put projected nearest-neighbour cation columns half a repeat apart (and anion
        columns half a repeat from their cation neighbour), as on the lattice.
    base_parity : {0, 1}
        Which of the two cation column sets starts on the base plane (the other starts
        half a repeat higher); the set of the table's first cation column is 0.
    vacuum : float
        Vacuum around the model in the cell [Å].

    Returns
    -------
    ase.Atoms
        With ``arrays["column"]`` (row of ``table``) and the assumptions in ``info``.

    Examples
    --------
    >>> t = pd.DataFrame({"x": [0.0, 1.913], "y": [0.0, 2.706], "channel": [0, 0], "count": [3, 2]})
    >>> atoms = to_atoms(t)
    >>> len(atoms), sorted(set(np.round(atoms.positions[:, 2] - atoms.positions[:, 2].min(), 2).tolist()))
    (5, [0.0, 1.91, 3.83, 5.74, 7.65])
    """
    if surface not in ("bottom", "center"):
        raise ValueError(f"surface must be 'bottom' or 'center', got {surface!r}")
    if not len(table):
        raise ValueError("the column table is empty: no columns to build a model from")
    mat = _material(material)
    period, nn_distance = column_geometry(mat)
    elements = mat.channel_names
    offsets = np.zeros(len(table))
    table = table.reset_index(drop=True)
    cation = table.channel.to_numpy() == 0
    if stagger and cation.any() and nn_distance is not None:
        if base_parity not in (0, 1):
            raise ValueError(f"base_parity must be 0 or 1, got {base_parity}")
        parity = column_parity(table.loc[cation, ["x", "y"]].to_numpy(), nn_distance=nn_distance)
        offsets[np.flatnonzero(cation)] = (parity ^ base_parity) * period / 2
        anion = np.flatnonzero(~cation)
        if len(anion):
            from scipy.spatial import cKDTree

            _, nearest = cKDTree(table.loc[cation, ["x", "y"]].to_numpy()).query(
                table.loc[anion, ["x", "y"]].to_numpy()
            )
            offsets[anion] = (offsets[np.flatnonzero(cation)][nearest] + period / 2) % period
    positions, symbols, column = [], [], []
    for i, row in table.iterrows():
        n = int(row["count"])
        if n <= 0:
            continue
        start = 0 if surface == "bottom" else -(n // 2)
        z = (start + np.arange(n)) * period + offsets[i]
        positions.append(np.column_stack([np.full(n, row.x), np.full(n, row.y), z]))
        symbols += [elements[int(row.channel)]] * n
        column += [i] * n
    pos = np.vstack(positions)
    pos[:, 2] -= pos[:, 2].min() - vacuum  # x, y stay the frame's coordinates
    atoms = Atoms(symbols=symbols, positions=pos, cell=np.maximum(pos.max(axis=0) + vacuum, 1.0), pbc=False)
    atoms.arrays["column"] = np.asarray(column, np.int64)
    atoms.info["surface"] = surface
    atoms.info["stagger"] = bool(stagger)
    atoms.info["base_parity"] = int(base_parity)
    atoms.info["assumption"] = (
        "flat base: every column starts on one (110) plane"
        if surface == "bottom"
        else "columns symmetric about the mid-plane"
    ) + ", atoms on lattice sites a/sqrt(2) apart"
    return atoms


def write_model(atoms: Atoms, path: str | Path) -> Path:
    """Write a model as .xyz, .cif or any format ASE knows, through a temporary file.

    Parameters
    ----------
    atoms : ase.Atoms
        The model.
    path : str or Path
        The file; its ending picks the format.

    Returns
    -------
    Path
        ``path``, as a Path.
    """
    from ase.io import write

    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        write(tmp, atoms, format="extxyz" if path.suffix == ".xyz" else None)
    return path

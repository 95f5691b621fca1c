"""Ground truth for one image: the column table, label maps, smoothed targets, loss weights.

Pure functions of an atomic model (or of a column table) and a pixel grid.

Pixel convention (used everywhere in atomtools): images are arrays indexed
``[row, col]`` with ``row`` along y and ``col`` along x; pixel ``(i, j)`` samples the
point ``x = j * sampling``, ``y = i * sampling`` [Å], the grid abTEM samples waves on.
Display with ``imshow(image, origin="lower")`` to see y pointing up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols
from scipy.spatial import cKDTree

from . import tables
from .materials import material

__all__ = [
    "channels_of",
    "column_table",
    "label_maps",
    "nearest_column_maps",
    "soft_targets",
    "loss_weights",
    "ground_truth",
]


def channels_of(atoms: Atoms, channels=None) -> tuple[tuple[str, ...], ...]:
    """The label channels of a model: ``channels`` if given, else its material's.

    Parameters
    ----------
    atoms : ase.Atoms
        Model built by :mod:`atomtools.core.structures` (which records its material).
    channels : sequence of tuple of str, optional
        Element groups, one per channel.

    Returns
    -------
    tuple of tuple of str
        The element groups, one per channel.

    Raises
    ------
    ValueError
        If no channels are given and the model does not say its material.
    """
    if channels is not None:
        return tuple(tuple(c) for c in channels)
    spec = atoms.info.get("spec") or {}
    if "material" not in spec:
        raise ValueError(
            "the model does not record its material: pass channels=(('Ce',), ('O',)) or build it "
            "with atomtools.core.structures"
        )
    return material(spec["material"]).channels


def column_table(atoms: Atoms, *, sampling: float, channels=None) -> pd.DataFrame:
    """One row per atomic column of a model.

    Columns are the groups of ``atoms.arrays["column"]`` (set in the untilted frame by
    :mod:`atomtools.structures`), so a tilted column is still counted once; its
    position is the mean projected position of its atoms.

    Parameters
    ----------
    atoms : ase.Atoms
        Model with ``arrays["column"]`` (atoms with ``-1`` are ignored).
    sampling : float
        Pixel size [Å], for the ``row`` and ``col`` pixel coordinates.
    channels : sequence of tuple of str, optional
        Element groups; a column goes to the channel holding its element. Default:
        the channels of the model's material.

    Returns
    -------
    pandas.DataFrame
        ``column`` (id), ``x``, ``y`` [Å], ``row``, ``col`` [px], ``element``,
        ``channel`` (index into ``channels``), ``count`` [atoms], ``z_min``,
        ``z_max`` [Å] (extent along the beam).

    Examples
    --------
    >>> from atomtools.core.structures import ParticleSpec, build
    >>> table = column_table(build(ParticleSpec(size=12.0), extent=(30.0, 30.0)), sampling=0.1)
    >>> sorted(table.element.unique())
    ['Ce', 'O']
    """
    if not sampling > 0:
        raise ValueError(f"sampling must be positive [Å/px], got {sampling}")
    if "column" not in atoms.arrays:
        raise ValueError("atoms carry no 'column' array: build them with atomtools.core.structures")
    channels = channels_of(atoms, channels)
    col = np.asarray(atoms.arrays["column"])
    use = col >= 0
    col, pos, numbers = col[use], atoms.positions[use], atoms.numbers[use]
    if not len(col):
        return tables.new_table([], kind="truth")
    ids, inv, count = np.unique(col, return_inverse=True, return_counts=True)
    mean = np.zeros((len(ids), 3))
    np.add.at(mean, inv, pos)
    mean /= count[:, None]
    z_min = np.full(len(ids), np.inf)
    z_max = np.full(len(ids), -np.inf)
    np.minimum.at(z_min, inv, pos[:, 2])
    np.maximum.at(z_max, inv, pos[:, 2])
    # majority element of each column
    species, species_index = np.unique(numbers, return_inverse=True)
    tally = np.zeros((len(ids), len(species)), int)
    np.add.at(tally, (inv, species_index), 1)
    element = np.array([chemical_symbols[z] for z in species[tally.argmax(axis=1)]])
    channel = np.full(len(ids), -1)
    for c, group in enumerate(channels):
        channel[np.isin(element, group)] = c
    table = tables.new_table(
        {
            "column": ids,
            "x": mean[:, 0],
            "y": mean[:, 1],
            "element": element,
            "channel": channel,
            "count": count,
            "z_min": z_min,
            "z_max": z_max,
        },
        kind="truth",
        sampling=sampling,
    )
    return table[table.channel >= 0].reset_index(drop=True)


def nearest_column_maps(
    table: pd.DataFrame, *, shape: tuple[int, int], sampling: float, n_channels: int, n_classes: int
):
    """For every pixel and channel: distance to the nearest column [Å] and its class.

    Parameters
    ----------
    table : pandas.DataFrame
        Column table (``x``, ``y`` [Å], ``channel``, ``count``).
    shape : two int
        Image (rows, cols) [px].
    sampling : float
        Pixel size [Å].
    n_channels : int
        Label channels.
    n_classes : int
        Classes, background included (thicker columns are clipped).

    Returns
    -------
    distance : numpy.ndarray
        (n_channels, H, W) float32 distance to the nearest column centre [Å]
        (``inf`` where the channel has no column).
    nearest : numpy.ndarray
        (n_channels, H, W) uint8 class of that column: its atom count, clipped to
        ``n_classes - 1``.
    """
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float) * sampling
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    distance = np.full((n_channels, h, w), np.inf, np.float32)
    nearest = np.zeros((n_channels, h, w), np.uint8)
    for c in range(n_channels):
        sub = table[table.channel == c]
        if not len(sub):
            continue
        d, i = cKDTree(sub[["x", "y"]].to_numpy()).query(grid)
        distance[c] = d.reshape(h, w)
        nearest[c] = np.clip(sub["count"].to_numpy()[i], 0, n_classes - 1).reshape(h, w)
    return distance, nearest


def label_maps(distance: np.ndarray, nearest: np.ndarray, *, radius: float) -> np.ndarray:
    """Hard label maps: the column class within ``radius`` [Å] of a column centre, else 0.

    Parameters
    ----------
    distance : numpy.ndarray
        (..., H, W) distance to the nearest column [Å].
    nearest : numpy.ndarray
        (..., H, W) class of that column.
    radius : float
        Radius of a column's label disk [Å].

    Returns
    -------
    numpy.ndarray
        Class of each pixel (0: background), uint8, shape (..., H, W).

    Examples
    --------
    >>> d = np.array([[[0.0, 0.5, 0.9]]], np.float32); n = np.array([[[4, 4, 4]]], np.uint8)
    >>> label_maps(d, n, radius=0.6).tolist()
    [[[4, 4, 0]]]
    """
    if not radius > 0:
        raise ValueError(f"label radius must be positive [Å], got {radius}")
    return np.where(distance <= radius, nearest, 0).astype(np.uint8)


def soft_targets(
    distance: np.ndarray, nearest: np.ndarray, *, radius: float, edge: float, n_classes: int
) -> np.ndarray:
    """Class probabilities of the label masks, smoothed toward the background at their edge.

    At distance ``d`` from the nearest column the target puts
    ``q = 1 / (1 + exp((d - radius) / edge))`` on that column's class and ``1 - q`` on
    the background (class 0): 1 at the centre, 1/2 on the rim of the hard label disk
    (so the target's most probable class is the hard label everywhere), fading to 0
    over a few ``edge`` widths outside it.

    Parameters
    ----------
    distance, nearest : numpy.ndarray
        (..., H, W) maps from :func:`nearest_column_maps` (any leading axes).
    radius : float
        Radius of the hard label disk [Å].
    edge : float
        Width of the smooth edge [Å].
    n_classes : int
        Number of classes, background included.

    Returns
    -------
    numpy.ndarray
        (..., n_classes, H, W) float32 probabilities summing to 1 over the class axis.

    Examples
    --------
    >>> t = soft_targets(np.array([[0.0, 0.6, 3.0]]), np.array([[2, 2, 2]]), radius=0.6, edge=0.1, n_classes=3)
    >>> t[:, 0].astype(float).round(3).tolist()  # (class, pixel): centre on class 2, rim half-half, far on background
    [[0.002, 0.5, 1.0], [0.0, 0.0, 0.0], [0.998, 0.5, 0.0]]
    """
    if not edge > 0 or not radius > 0:
        raise ValueError(f"target radius and edge must be positive [Å], got radius={radius}, edge={edge}")
    distance = np.asarray(distance, np.float32)
    nearest = np.asarray(nearest)
    z = np.clip((np.minimum(distance, 1e3) - radius) / edge, -50.0, 50.0)
    q = (1.0 / (1.0 + np.exp(z))).astype(np.float32)
    q = np.where((distance <= radius + 8 * edge) & (nearest > 0), q, 0.0).astype(np.float32)
    classes = np.arange(n_classes).reshape(n_classes, 1, 1)
    lead = distance.shape[:-2]
    onehot = (nearest[..., None, :, :] == classes).astype(np.float32)
    target = onehot * q[..., None, :, :]
    bg = np.zeros((n_classes, 1, 1), np.float32)
    bg[0] = 1.0
    target = target + (1.0 - q)[..., None, :, :] * bg
    return target.reshape(*lead, n_classes, *distance.shape[-2:])


def loss_weights(
    table: pd.DataFrame,
    *,
    shape: tuple[int, int],
    sampling: float,
    radius: float,
    column_weight: float = 3.0,
    border_weight: float = 5.0,
    border_sigma: float = 1.0,
) -> np.ndarray:
    """Per-pixel weights of the spatially weighted cross-entropy.

    ``w = 1 + (column_weight - 1) [d1 <= radius] + border_weight exp(-(d1 + d2)^2 / (2 border_sigma^2))``
    with ``d1``, ``d2`` the distances to the nearest and second-nearest column of any
    channel (Ronneberger et al. 2015): columns outweigh the abundant background, and
    the narrow gaps between neighbouring columns (e.g. Ce and O 1.35 Å apart in
    CeO2 [110]) weigh most, so that the network keeps them apart.

    Parameters
    ----------
    table : pandas.DataFrame
        Column table.
    shape : two int
        Image shape [px].
    sampling : float
        Pixel size [Å].
    radius : float
        Radius of a column in the label maps [Å].
    column_weight : float
        Weight of column pixels relative to background.
    border_weight, border_sigma : float
        Height and width [Å] of the separation term.

    Returns
    -------
    numpy.ndarray
        (H, W) float32 weights, all >= 1.
    """
    h, w = shape
    weights = np.ones(shape, np.float32)
    if len(table) == 0:
        return weights
    yy, xx = np.mgrid[0:h, 0:w].astype(float) * sampling
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    k = min(2, len(table))
    d, _ = cKDTree(table[["x", "y"]].to_numpy()).query(grid, k=k)
    d = d.reshape(h * w, k)
    d1 = d[:, 0]
    d2 = d[:, 1] if k == 2 else np.full_like(d1, np.inf)
    extra = (column_weight - 1.0) * (d1 <= radius) + border_weight * np.exp(
        -np.square(np.minimum(d1 + d2, 1e3)) / (2 * border_sigma**2)
    )
    return (weights + extra.reshape(h, w)).astype(np.float32)


def ground_truth(
    atoms: Atoms, *, shape, sampling: float, n_classes: int, radius=0.6, channels=None, **weighting
) -> dict:
    """All ground truth of one model on one pixel grid.

    Parameters
    ----------
    atoms : ase.Atoms
        Model with ``arrays["column"]``.
    shape : two int
        Image (rows, cols) [px].
    sampling : float
        Pixel size [Å].
    n_classes : int
        Label classes, background included (thicker columns are clipped).
    radius : float
        Radius of a column in the label maps [Å].
    channels : sequence of tuple of str, optional
        Element groups; default the model's material's channels.
    **weighting
        ``column_weight``, ``border_weight``, ``border_sigma`` of :func:`loss_weights`.

    Returns
    -------
    dict
        ``table`` (column table), ``labels`` (C, H, W) uint8, ``distance`` (C, H, W)
        float32 [Å], ``nearest`` (C, H, W) uint8, ``weights`` (H, W) float32.
    """
    channels = channels_of(atoms, channels)
    table = column_table(atoms, sampling=sampling, channels=channels)
    distance, nearest = nearest_column_maps(
        table, shape=shape, sampling=sampling, n_channels=len(channels), n_classes=n_classes
    )
    return {
        "table": table,
        "labels": label_maps(distance, nearest, radius=radius),
        "distance": distance,
        "nearest": nearest,
        "weights": loss_weights(table, shape=shape, sampling=sampling, radius=radius, **weighting),
    }

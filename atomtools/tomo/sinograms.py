"""Sinograms with a missing wedge: shot noise, masks, and the layout the inpainting network sees.

The networks work on the regular grid of :func:`~atomtools.tomo.operators.full_angles`
(128 projections over 180 degrees by default). A measured series fills some rows of
that grid (a wedge: the rows within the tilt range; a sparse series: every k-th row);
the mask says which.

A tilt holder misses the angles around ±90 degrees, at both ends of the grid. Since a
parallel projection at ``θ + 180°`` is the one at ``θ`` mirrored, ``p(θ + 180°, t) =
p(θ, −t)``, :func:`to_network` re-orders the grid to cover 0 .. 180 degrees: the
missing wedge then lies in the middle, with measured rows on both sides of it, which is
what a convolutional network needs to fill it. :func:`from_network` undoes it.

Shot noise: ``dose`` is the expected count per detector pixel at the mean of the
measured sinogram, so the same dose gives the same signal-to-noise ratio whatever the
sample's size or density; the counts are Poisson and rescaled back to the sinogram's
units.
"""

from __future__ import annotations

import numpy as np

from .operators import full_angles

__all__ = [
    "add_shot_noise",
    "grid_rows",
    "to_network",
    "from_network",
    "random_mask",
    "every_kth",
    "sinogram_scale",
    "subtract_background",
    "inpainted_row_weights",
]


def add_shot_noise(sinogram: np.ndarray, *, dose: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise at ``dose`` counts per pixel at the sinogram's mean value.

    Parameters
    ----------
    sinogram : numpy.ndarray
        Non-negative noise-free sinogram (any shape).
    dose : float
        Expected counts per detector pixel at the mean value; ``inf``: no noise.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    numpy.ndarray
        The noisy sinogram in the units of ``sinogram`` (counts times ``mean / dose``), float32, same
        shape; a float32 copy where ``dose`` is infinite or the mean is not positive.

    Examples
    --------
    >>> s = np.full((4, 8), 2.0)
    >>> noisy = add_shot_noise(s, dose=1e6, rng=np.random.default_rng(0))
    >>> bool(np.allclose(noisy, s, rtol=0.01))
    True
    """
    if not dose > 0:
        raise ValueError(f"dose must be positive (counts per pixel at the mean), got {dose}")
    if np.isinf(dose):
        return sinogram.astype(np.float32)
    mean = float(sinogram.mean())
    if mean <= 0:
        return sinogram.astype(np.float32)
    counts = rng.poisson(np.clip(sinogram, 0, None) / mean * dose)
    return (counts * (mean / dose)).astype(np.float32)


def grid_rows(angles, *, n_grid: int = 128, tolerance: float | None = None, unique: bool = True) -> np.ndarray:
    """Row of the regular grid of ``n_grid`` angles that each measured angle falls on.

    Parameters
    ----------
    angles : array_like
        Measured angles [deg].
    n_grid : int
        Projections of the full grid over 180 degrees.
    tolerance : float, optional
        Largest distance to a grid angle [deg]; default half a grid step (0.70 degrees
        for 128 angles), which places any angle.
    unique : bool
        Refuse two angles on one row (else several may share one: a series denser
        than the grid).

    Returns
    -------
    numpy.ndarray
        The grid row of each angle, int, shape (n_angles,), in 0 .. ``n_grid`` - 1.

    Raises
    ------
    ValueError
        If an angle is off the grid by more than ``tolerance``, or (``unique``) two
        fall on one row.

    Examples
    --------
    >>> grid_rows([-90.0, 0.0, 45.0], n_grid=4)
    array([0, 2, 3])
    """
    grid = full_angles(n_grid)
    step = 180.0 / n_grid
    tolerance = step / 2 if tolerance is None else tolerance
    angles = np.asarray(angles, dtype=np.float64)
    rows = np.round((angles + 90.0) / step).astype(int) % n_grid
    off = np.abs((angles - grid[rows] + 90.0) % 180.0 - 90.0)
    if np.any(off > tolerance + 1e-9):
        worst = int(np.argmax(off))
        raise ValueError(
            f"angle {angles[worst]:g} deg lies {off[worst]:.2f} deg from the nearest of the {n_grid}-angle grid "
            f"(step {step:g} deg; allowed {tolerance:g}): resample the series onto the grid first"
        )
    if unique and len(set(rows.tolist())) != len(rows):
        raise ValueError(f"two measured angles fall on one row of the {n_grid}-angle grid; use a finer grid")
    return rows


def to_network(sinogram, n_half: int | None = None):
    """Re-order a full-grid sinogram to cover 0 .. 180 degrees (the wedge in the middle).

    Rows of angles -90 .. 0 move behind those of 0 .. 90, mirrored along the detector
    about the rotation centre (pixel ``n // 2``: ``t -> n - t``; pixel 0 has no mirror
    inside the detector and takes that of pixel 1's partner, a pixel outside the disc).
    Works on NumPy arrays and torch tensors of shape ``(..., n_angles, n_detector)``.

    Parameters
    ----------
    sinogram : numpy.ndarray or torch.Tensor
        On the grid of :func:`~atomtools.tomo.operators.full_angles` (rows in ascending angle).
    n_half : int, optional
        Rows below 0 degrees (default half the rows).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The re-ordered sinogram, of the type and shape of ``sinogram``.

    Examples
    --------
    >>> s = np.arange(8).reshape(2, 4)
    >>> to_network(s).tolist()
    [[4, 5, 6, 7], [0, 3, 2, 1]]
    >>> bool(np.array_equal(from_network(to_network(s)), s))
    True
    """
    h = sinogram.shape[-2] // 2 if n_half is None else n_half
    lower, upper = sinogram[..., :h, :], sinogram[..., h:, :]
    return _cat(upper, _mirror(lower))


def from_network(sinogram, n_half: int | None = None):
    """Inverse of :func:`to_network`.

    Parameters
    ----------
    sinogram : numpy.ndarray or torch.Tensor
        In the network's order.
    n_half : int, optional
        As for :func:`to_network`.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The sinogram on the full grid (rows in ascending angle), of the type and shape of ``sinogram``.
    """
    n = sinogram.shape[-2]
    h = n // 2 if n_half is None else n_half
    upper, mirrored = sinogram[..., : n - h, :], sinogram[..., n - h :, :]
    return _cat(_mirror(mirrored), upper)


def _mirror(x):
    # p(θ + 180°, t) = p(θ, 2c - t) with c = n // 2: reverse, then shift by one pixel; the
    # map is its own inverse
    if isinstance(x, np.ndarray):
        return np.roll(x[..., ::-1], 1, axis=-1)
    return x.flip(-1).roll(1, dims=-1)


def _cat(a, b):
    if isinstance(a, np.ndarray):
        return np.concatenate([a, b], axis=-2)
    import torch

    return torch.cat([a, b], dim=-2)


def random_mask(
    rng: np.random.Generator, *, n_grid: int = 128, wedge: tuple[float, float] = (20.0, 70.0), sparse: float = 0.25
) -> tuple[np.ndarray, float]:
    """A random measured-row mask on the grid: a wedge, and sometimes sparse sampling.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the draw.
    n_grid : int
        Projections of the full grid.
    wedge : (float, float)
        Range of the missing wedge [deg].
    sparse : float
        Probability of keeping only every k-th row (k = 2 .. 8) within the tilt range.

    Returns
    -------
    (numpy.ndarray, float)
        Boolean mask of measured rows, and the wedge drawn [deg].
    """
    w = float(rng.uniform(*wedge))
    grid = full_angles(n_grid)
    limit = 90.0 - w / 2
    mask = (grid >= -limit) & (grid <= limit)
    if rng.random() < sparse:
        mask = every_kth(mask, grid, int(rng.integers(2, 9)))
    return mask, w


def every_kth(mask: np.ndarray, angles: np.ndarray, k: int) -> np.ndarray:
    """Sparse tilts: of the measured rows, every ``k``-th, counted from 0 degrees (kept, as tilt series do).

    Parameters
    ----------
    mask : numpy.ndarray
        (n,) bool, the measured rows of the grid.
    angles : numpy.ndarray
        (n,) the grid's angles [deg], ascending.
    k : int
        Keep every k-th row (1: all).

    Returns
    -------
    numpy.ndarray
        (n,) bool, the rows kept.

    Examples
    --------
    >>> every_kth(np.ones(8, bool), np.linspace(-90, 67.5, 8), 3).nonzero()[0].tolist()
    [1, 4, 7]
    """
    rows = np.flatnonzero(mask)
    start = int(np.flatnonzero(np.asarray(angles) >= 0)[0]) % int(k)
    keep = np.zeros_like(mask)
    keep[rows[(rows - start) % int(k) == 0]] = True
    return keep


def sinogram_scale(sinogram, mask) -> float:
    """Mean value of the measured rows: what the networks divide by (and multiply back).

    Parameters
    ----------
    sinogram : numpy.ndarray
        ``(n_angles, n)`` on the grid.
    mask : numpy.ndarray
        Measured rows.

    Returns
    -------
    float
        The mean; 1.0 where it is not positive.
    """
    value = float(np.asarray(sinogram)[np.asarray(mask)].mean())
    return value if value > 0 else 1.0


def subtract_background(series: np.ndarray, *, percentile: float = 2.0) -> np.ndarray:
    """Remove each projection's background offset: its ``percentile``-th value, clipped at zero.

    Real ADF or HAADF projections sit on a detector offset; a reconstruction reads an
    offset as mass everywhere in the disc. The networks were trained on offset-free
    projections.

    Parameters
    ----------
    series : numpy.ndarray
        ``(n_angles, ...)`` projections or sinograms.
    percentile : float
        The percentile of each projection taken as its background [%].

    Returns
    -------
    numpy.ndarray
        The projections less their offsets, clipped at zero, float32, shape of ``series``.

    Examples
    --------
    >>> subtract_background(np.array([[5.0, 6.0, 9.0], [1.0, 1.0, 4.0]]), percentile=0).tolist()
    [[0.0, 1.0, 4.0], [0.0, 0.0, 3.0]]
    """
    data = np.asarray(series, dtype=np.float32)
    axes = tuple(range(1, data.ndim))
    return np.clip(data - np.percentile(data, percentile, axis=axes, keepdims=True), 0, None)


def inpainted_row_weights(completed: np.ndarray, mask, *, base: float, tolerance: float = 0.05) -> np.ndarray:
    """How far an iterative method should trust each row of an inpainted sinogram.

    Measured rows get 1. An inpainted row gets ``base`` times its consistency with the
    measured ones: every parallel projection of a slice carries the same mass, so a row
    whose sum departs from the measured rows' mean by ``tolerance`` or more gets 0, and
    one that keeps it exactly gets ``base``.

    Parameters
    ----------
    completed : numpy.ndarray
        ``(n_angles, n)`` or ``(n_slices, n_angles, n)`` inpainted sinogram(s) on the grid
        (a batch is judged on its sum over slices: the rows are shared).
    mask : array_like
        (n_angles,) measured rows.
    base : float
        Trust in an inpainted row that keeps the mass (0 .. 1).
    tolerance : float
        Relative mass departure that takes all trust away.

    Returns
    -------
    numpy.ndarray
        (n_angles,) weights in 0 .. 1.

    Examples
    --------
    >>> sino = np.ones((4, 8)); sino[3] *= 1.2  # the last row's mass is 20 % off
    >>> inpainted_row_weights(sino, [True, True, False, False], base=0.5).tolist()
    [1.0, 1.0, 0.5, 0.0]
    """
    if not 0 <= base <= 1:
        raise ValueError(f"base must lie in 0 .. 1, got {base}")
    mask = np.asarray(mask, bool).ravel()
    rows = np.asarray(completed, np.float64)
    mass = rows.sum(axis=-1)
    if mass.ndim == 2:
        mass = mass.sum(axis=0)
    reference = float(mass[mask].mean()) if mask.any() else float(mass.mean())
    departure = np.abs(mass - reference) / max(abs(reference), 1e-12)
    weights = base * np.clip(1.0 - departure / tolerance, 0.0, 1.0)
    weights[mask] = 1.0
    return weights

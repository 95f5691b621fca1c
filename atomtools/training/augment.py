"""Augmentation shared by every training task: the eight symmetries of the square (dihedral group).

Every task draws its symmetry from its own seeded generator, so resumed training stays
exact; the arrays of one sample (input, targets, weights) turn together.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["dihedral", "random_dihedral", "dihedral_tensor"]


def dihedral(arrays: list[np.ndarray], k: int, flip: bool) -> list[np.ndarray]:
    """The arrays turned by ``k`` quarter turns over their last two axes, then mirrored.

    Parameters
    ----------
    arrays : list of numpy.ndarray
        Arrays of one sample, each (..., H, W).
    k : int
        Quarter turns (``numpy.rot90`` over the last two axes).
    flip : bool
        Mirror the last axis after turning.

    Returns
    -------
    list of numpy.ndarray
        Contiguous copies.

    Examples
    --------
    >>> a = np.arange(4).reshape(2, 2)
    >>> dihedral([a], 1, False)[0].tolist(), dihedral([a], 0, True)[0].tolist()
    ([[1, 3], [0, 2]], [[1, 0], [3, 2]])
    """
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(-2, -1))
        out.append(np.ascontiguousarray(a[..., ::-1] if flip else a))
    return out


def random_dihedral(rng: np.random.Generator, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`dihedral` with the turn, then the mirror, drawn from ``rng``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The sample's generator (draws an integer below 4, then a uniform number).
    arrays : list of numpy.ndarray
        Arrays of one sample, each (..., H, W).

    Returns
    -------
    list of numpy.ndarray
        Contiguous copies.
    """
    k = int(rng.integers(4))
    return dihedral(arrays, k, bool(rng.random() < 0.5))


def dihedral_tensor(x: torch.Tensor, k: int) -> torch.Tensor:
    """A batch (..., H, W) turned by ``k % 4`` quarter turns, mirrored for ``k >= 4``.

    Parameters
    ----------
    x : torch.Tensor
        The batch.
    k : int
        Which of the eight symmetries, 0..7.

    Returns
    -------
    torch.Tensor
        The turned batch.

    Examples
    --------
    >>> dihedral_tensor(torch.arange(4).reshape(1, 2, 2), 5).tolist()
    [[[3, 1], [2, 0]]]
    """
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x

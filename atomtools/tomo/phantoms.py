"""Phantoms for missing-wedge tomography: what the networks learn from and are judged on.

Four kinds, each an (n, n) float32 image in 0 .. 1, zero outside the reconstruction
disc (:func:`~atomtools.tomo.operators.disc_mask`):

``polygons``
    Overlapping random polygons of constant densities, as the source group trained on.
``ellipses``
    Random ellipses with additive densities (Shepp-Logan-like).
``blobs``
    Smooth textured blobs: a thresholded Gaussian random field with graded density.
``nanoparticle``
    Cross-sections of faceted nanoparticles built with :mod:`atomtools.core.structures`
    (CeO2 and an fcc metal), at the scale of a real tilt series (a faceted, solid
    particle section on a thin support, ~1 nm per 3 px) or at atomic resolution (atoms
    of one slice as Gaussians). **Held out of training**: this is what a user's sample
    looks like to the networks (:data:`TRAINING_KINDS`).

Every phantom is a function of ``(kind, n, seed)`` alone.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse as draw_ellipse
from skimage.draw import polygon as draw_polygon

from .operators import disc_mask

__all__ = ["KINDS", "TRAINING_KINDS", "HELD_OUT_KINDS", "phantom", "phantoms"]

KINDS = ("polygons", "ellipses", "blobs", "nanoparticle")
#: Kinds the networks train on; the others are kept out of training entirely.
TRAINING_KINDS = ("polygons", "ellipses", "blobs")
HELD_OUT_KINDS = tuple(k for k in KINDS if k not in TRAINING_KINDS)


def _polygons(n: int, rng: np.random.Generator) -> np.ndarray:
    image = np.zeros((n, n), np.float32)
    r_max = 0.42 * n
    for _ in range(rng.integers(1, 5)):
        k = rng.integers(3, 9)
        centre = n / 2 + rng.uniform(-0.2, 0.2, 2) * n
        radius = rng.uniform(0.08, 0.3) * n
        theta = np.sort(rng.uniform(0, 2 * np.pi, k))
        rho = radius * rng.uniform(0.5, 1.0, k)
        rr = np.clip(centre[0] + rho * np.sin(theta), n / 2 - r_max, n / 2 + r_max)
        cc = np.clip(centre[1] + rho * np.cos(theta), n / 2 - r_max, n / 2 + r_max)
        yy, xx = draw_polygon(rr, cc, shape=image.shape)
        value = rng.uniform(0.2, 1.0)
        if rng.random() < 0.7:
            image[yy, xx] = value
        else:
            image[yy, xx] += value
    return image


def _ellipses(n: int, rng: np.random.Generator) -> np.ndarray:
    image = np.zeros((n, n), np.float32)
    for i in range(rng.integers(3, 9)):
        centre = n / 2 + rng.uniform(-0.25, 0.25, 2) * n
        axes = rng.uniform(0.04, 0.3, 2) * n if i else rng.uniform(0.25, 0.4, 2) * n
        yy, xx = draw_ellipse(*centre, *axes, shape=image.shape, rotation=rng.uniform(0, np.pi))
        image[yy, xx] += rng.uniform(-0.3, 0.6) if i else rng.uniform(0.3, 0.7)
    return np.clip(image, 0, None)


def _blobs(n: int, rng: np.random.Generator) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((n, n)), sigma=rng.uniform(3, 8) * n / 128)
    field /= field.std() + 1e-12
    y, x = np.ogrid[:n, :n]
    r = np.hypot(y - n / 2, x - n / 2) / (0.42 * n)
    envelope = np.clip(1.2 - r**2, 0, None)
    mask = field * envelope > rng.uniform(0.0, 0.6)
    texture = ndimage.gaussian_filter(rng.standard_normal((n, n)), sigma=rng.uniform(1, 3) * n / 128)
    texture = 0.5 + 0.5 * texture / (np.abs(texture).max() + 1e-12)
    return (mask * (0.4 + 0.6 * texture)).astype(np.float32)


def _nanoparticle(n: int, rng: np.random.Generator) -> np.ndarray:
    from ..core.materials import material
    from ..core.structures import ParticleSpec, nanoparticle

    mat = material(str(rng.choice(["CeO2", "Au"])))
    atomic = rng.random() < 0.5
    if atomic:
        # atoms of one slice across the tilt axis, as Gaussians: ~0.35 Å per pixel
        spec = ParticleSpec(
            material=mat,
            size=float(rng.uniform(18, 34)),
            truncation=float(rng.uniform(1.0, 1.5)),
            rotation=float(rng.uniform(0, 360)),
            seed=int(rng.integers(2**31)),
        )
        atoms = nanoparticle(spec)
        pos = atoms.positions - atoms.positions.mean(axis=0)
        numbers = atoms.numbers
        # the slice: atoms within half a column period of a random plane along y
        y0 = rng.uniform(-0.25, 0.25) * np.ptp(pos[:, 1])
        keep = np.abs(pos[:, 1] - y0) < 1.0
        sampling = float(rng.uniform(0.3, 0.4))
        image = np.zeros((n, n), np.float32)
        xs, zs = pos[keep, 0] / sampling + n / 2, pos[keep, 2] / sampling + n / 2
        weights = (numbers[keep] / numbers.max()) ** 1.5
        iy, ix = np.round(zs).astype(int), np.round(xs).astype(int)
        ok = (iy >= 0) & (iy < n) & (ix >= 0) & (ix < n)
        np.add.at(image, (iy[ok], ix[ok]), weights[ok])
        image = ndimage.gaussian_filter(image, 0.45 / sampling)
    else:
        # a faceted solid particle on a thin support: the scale of a real tilt series
        n_facets = int(rng.choice([6, 8]))
        radius = rng.uniform(0.18, 0.33) * n
        theta = rng.uniform(0, 2 * np.pi) + np.arange(n_facets) * 2 * np.pi / n_facets
        rho = radius * np.where(np.arange(n_facets) % 2, rng.uniform(0.8, 1.0), 1.0)
        centre = n / 2 + rng.uniform(-0.06, 0.06, 2) * n
        image = np.zeros((n, n), np.float32)
        yy, xx = draw_polygon(centre[0] + rho * np.sin(theta), centre[1] + rho * np.cos(theta), shape=image.shape)
        image[yy, xx] = rng.uniform(0.6, 1.0)
        for _ in range(rng.integers(0, 3)):  # pores or denser grains
            yy, xx = draw_ellipse(
                *(centre + rng.uniform(-0.5, 0.5, 2) * radius), *rng.uniform(0.05, 0.2, 2) * radius, shape=image.shape
            )
            image[yy, xx] *= rng.uniform(0.3, 1.3)
        bottom = int(np.ceil(centre[0] + radius)) + 1  # the support film under the particle
        image[bottom : bottom + max(2, int(0.04 * n))] += rng.uniform(0.1, 0.25)
        image = ndimage.gaussian_filter(image, 0.6)
    return image


_MAKERS = {"polygons": _polygons, "ellipses": _ellipses, "blobs": _blobs, "nanoparticle": _nanoparticle}


def phantom(kind: str, *, n: int = 128, seed: int = 0) -> np.ndarray:
    """One phantom: (n, n) float32 in 0 .. 1, zero outside the reconstruction disc.

    Parameters
    ----------
    kind : {"polygons", "ellipses", "blobs", "nanoparticle"}
        What it looks like (:data:`KINDS`).
    n : int
        Size [px].
    seed : int
        Its random seed: the same ``(kind, n, seed)`` gives the same phantom.

    Returns
    -------
    numpy.ndarray
        The phantom, float32, shape (n, n), maximum 1, zero outside the reconstruction disc.

    Examples
    --------
    >>> p = phantom("polygons", n=64, seed=3)
    >>> p.shape, p.dtype, float(p.max()) <= 1.0, float(p[~disc_mask(64)].max())
    ((64, 64), dtype('float32'), True, 0.0)
    """
    if kind not in _MAKERS:
        raise ValueError(f"unknown phantom kind {kind!r}; known: {list(KINDS)}")
    if n < 16:
        raise ValueError(f"phantom size n must be at least 16 px, got {n}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    for _ in range(20):  # redraw the rare empty one
        image = _MAKERS[kind](n, rng)
        image = image * disc_mask(n)
        if image.max() > 0:
            return (image / image.max()).astype(np.float32)
    raise RuntimeError(f"could not draw a non-empty {kind} phantom for seed {seed}")


def phantoms(kinds, count: int, *, n: int = 128, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``count`` phantoms cycling through ``kinds``, each with its own seed.

    Parameters
    ----------
    kinds : sequence of str
        Kinds to draw from, in turn.
    count : int
        How many.
    n : int
        Size [px].
    seed : int
        Master seed: phantom ``i`` uses seed ``seed * 1_000_003 + i``.

    Returns
    -------
    (numpy.ndarray, list of str)
        ``(count, n, n)`` float32, and the kind of each.
    """
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    names = [kinds[i % len(kinds)] for i in range(count)]
    images = np.stack([phantom(k, n=n, seed=seed * 1_000_003 + i) for i, k in enumerate(names)]) if count else None
    return (images if images is not None else np.zeros((0, n, n), np.float32)), names

"""Phantoms for missing-wedge tomography: what the networks learn from and are judged on.

Each kind is an (n, n) float32 image in 0 .. 1, zero outside the reconstruction disc
(:func:`~atomtools.tomo.operators.disc_mask`):

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
``atoms``
    An atomic-resolution section drawn by other code than ``nanoparticle``'s: a 2D
    lattice of one or two species (Gaussian atoms of random spacing and orientation)
    cut by a random convex polygon, with vacancies.
``hollow``
    A faceted shell: a solid particle with a hollow core, graded wall density.
``core-shell``
    A particle whose core and shell differ in density and shape.
``textured``
    A faceted particle whose density varies smoothly inside (a Gaussian random field):
    nothing piecewise constant.
``shepp-logan``
    scikit-image's Shepp-Logan phantom, scaled, rotated and shifted by the seed.
``random-ellipses``
    Ellipses drawn by scikit-image's ``random_shapes`` (other code than ``ellipses``),
    each of its own density, over a faint disc.

:data:`TRAINING_KINDS` are what the GAN pair learned from; :data:`UNROLLED_KINDS` what the
unrolled model learns from (those and the four kinds that are not piecewise constant);
:data:`HELD_OUT_KINDS` are never trained on by any model.

Every phantom is a function of ``(kind, n, seed)`` alone.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse as draw_ellipse
from skimage.draw import polygon as draw_polygon

from .operators import disc_mask

__all__ = ["KINDS", "TRAINING_KINDS", "UNROLLED_KINDS", "HELD_OUT_KINDS", "check_kinds", "phantom", "phantom_images"]

#: Every kind, in a fixed order (a kind's index seeds its phantoms: new kinds go last).
KINDS = (
    "polygons",
    "ellipses",
    "blobs",
    "nanoparticle",
    "atoms",
    "hollow",
    "core-shell",
    "textured",
    "shepp-logan",
    "random-ellipses",
)
#: Kinds the GAN pair (inpainter and refiner) trains on.
TRAINING_KINDS = ("polygons", "ellipses", "blobs")
#: Kinds the unrolled model trains on: the GANs' and four that are not piecewise constant.
UNROLLED_KINDS = (*TRAINING_KINDS, "atoms", "hollow", "core-shell", "textured")
#: Kinds no model trains on: what they are judged on.
HELD_OUT_KINDS = ("nanoparticle", "shepp-logan", "random-ellipses")


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


def _convex(n: int, rng: np.random.Generator, radius: float, centre, *, scales=(1.0,)) -> list[np.ndarray]:
    """Masks of one random convex polygon (5-10 facets), scaled about its centre by each of ``scales``."""
    k = int(rng.integers(5, 11))
    theta = rng.uniform(0, 2 * np.pi) + (np.arange(k) + rng.uniform(-0.3, 0.3, k)) * 2 * np.pi / k  # no slivers
    rho = radius * rng.uniform(0.8, 1.0, k)
    masks = []
    for scale in scales:
        mask = np.zeros((n, n), bool)
        yy, xx = draw_polygon(
            centre[0] + scale * rho * np.sin(theta), centre[1] + scale * rho * np.cos(theta), shape=mask.shape
        )
        mask[yy, xx] = True
        masks.append(mask)
    return masks


def _atoms(n: int, rng: np.random.Generator) -> np.ndarray:
    spacing = rng.uniform(3.5, 8.0) * n / 128  # [px] between neighbouring columns
    angle = rng.uniform(0, np.pi)
    ratio = rng.choice([1.0, np.sqrt(2.0), 1.5])  # square, [110]-like or rectangular cells
    centre = n / 2 + rng.uniform(-0.05, 0.05, 2) * n
    radius = rng.uniform(0.2, 0.38) * n
    (inside,) = _convex(n, rng, radius, centre)
    m = int(np.ceil(0.6 * n / spacing))
    i, j = np.meshgrid(np.arange(-m, m + 1), np.arange(-m, m + 1), indexing="ij")
    u = np.stack([np.cos(angle), np.sin(angle)]) * spacing
    v = np.stack([-np.sin(angle), np.cos(angle)]) * spacing * ratio
    pos = centre + i.ravel()[:, None] * u + j.ravel()[:, None] * v
    rows, cols = np.round(pos).astype(int).T
    ok = (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
    pos, rows, cols, i = pos[ok], rows[ok], cols[ok], i.ravel()[ok]
    keep = inside[rows, cols] & (rng.random(len(pos)) > rng.uniform(0, 0.08))  # vacancies
    weight = np.where((i % 2 == 0) | (rng.random() < 0.5), 1.0, rng.uniform(0.3, 0.7))  # one or two species
    image = np.zeros((n, n), np.float32)
    np.add.at(image, (rows[keep], cols[keep]), weight[keep])
    return ndimage.gaussian_filter(image, rng.uniform(0.18, 0.3) * spacing)


def _hollow(n: int, rng: np.random.Generator) -> np.ndarray:
    centre = n / 2 + rng.uniform(-0.06, 0.06, 2) * n
    radius = rng.uniform(0.2, 0.38) * n
    outer, inner = _convex(n, rng, radius, centre, scales=(1.0, rng.uniform(0.45, 0.75)))
    y, x = np.mgrid[:n, :n]
    r = np.hypot(y - centre[0], x - centre[1]) / radius
    wall = rng.uniform(0.5, 1.0) * (1 + rng.uniform(-0.4, 0.4) * r)  # graded
    return ndimage.gaussian_filter((outer & ~inner) * wall, 0.7).astype(np.float32)


def _core_shell(n: int, rng: np.random.Generator) -> np.ndarray:
    centre = n / 2 + rng.uniform(-0.06, 0.06, 2) * n
    radius = rng.uniform(0.2, 0.38) * n
    (shell,) = _convex(n, rng, radius, centre)
    (core,) = _convex(n, rng, radius * rng.uniform(0.4, 0.65), centre + rng.uniform(-0.1, 0.1, 2) * radius)
    rho_shell, rho_core = rng.uniform(0.2, 0.6), rng.uniform(0.5, 1.0)
    image = shell * rho_shell + (core & shell) * (rho_core - rho_shell)
    return ndimage.gaussian_filter(image, 0.7).astype(np.float32)


def _textured(n: int, rng: np.random.Generator) -> np.ndarray:
    centre = n / 2 + rng.uniform(-0.06, 0.06, 2) * n
    (shape,) = _convex(n, rng, rng.uniform(0.2, 0.38) * n, centre)
    field = ndimage.gaussian_filter(rng.standard_normal((n, n)), sigma=rng.uniform(2, 6) * n / 128)
    field = 0.6 + 0.4 * field / (np.abs(field).max() + 1e-12)
    return ndimage.gaussian_filter(shape * field, 0.6).astype(np.float32)


def _shepp_logan(n: int, rng: np.random.Generator) -> np.ndarray:
    from skimage.data import shepp_logan_phantom
    from skimage.transform import rotate

    size = int(round(n * rng.uniform(0.6, 0.8)))
    small = ndimage.zoom(shepp_logan_phantom(), size / 400.0, order=1)
    small = rotate(small, rng.uniform(0, 360), order=1)
    image = np.zeros((n, n), np.float32)
    top, left = (n - small.shape[0]) // 2, (n - small.shape[1]) // 2
    image[top : top + small.shape[0], left : left + small.shape[1]] = small
    return ndimage.shift(image, rng.uniform(-0.05, 0.05, 2) * n, order=1)


def _random_ellipses(n: int, rng: np.random.Generator) -> np.ndarray:
    from skimage.draw import random_shapes

    labels, _ = random_shapes(
        (n, n),
        max_shapes=int(rng.integers(4, 10)),
        min_shapes=3,
        shape="ellipse",
        min_size=max(4, n // 16),
        max_size=n // 3,
        channel_axis=None,
        intensity_range=(20, 235),
        allow_overlap=True,
        rng=int(rng.integers(2**31)),
    )
    image = (255 - labels.astype(np.float32)) / 255  # shapes on a white background: invert
    y, x = np.ogrid[:n, :n]
    faint = np.hypot(y - n / 2, x - n / 2) < 0.4 * n
    return image + 0.05 * faint


_MAKERS = {
    "polygons": _polygons,
    "ellipses": _ellipses,
    "blobs": _blobs,
    "nanoparticle": _nanoparticle,
    "atoms": _atoms,
    "hollow": _hollow,
    "core-shell": _core_shell,
    "textured": _textured,
    "shepp-logan": _shepp_logan,
    "random-ellipses": _random_ellipses,
}


def check_kinds(kinds) -> tuple[str, ...]:
    """Phantom kinds checked: one name or several, each in :data:`KINDS`.

    Parameters
    ----------
    kinds : str or sequence of str
        What a trainer learns from.

    Returns
    -------
    tuple of str
        The kinds.

    Raises
    ------
    ValueError
        For none, or a name not in :data:`KINDS` (listing them).
    """
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if not kinds or unknown:
        raise ValueError(f"kinds must be phantom kinds among {list(KINDS)}, got {list(kinds)}")
    return kinds


def phantom(kind: str, *, n: int = 128, seed: int = 0) -> np.ndarray:
    """One phantom: (n, n) float32 in 0 .. 1, zero outside the reconstruction disc.

    Parameters
    ----------
    kind : str
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


def phantom_images(kinds, count: int, *, n: int = 128, seed: int = 0) -> tuple[np.ndarray, list[str]]:
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

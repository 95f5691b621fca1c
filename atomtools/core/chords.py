"""Particle-consistent counts: the columns of a convex crystal are chords of one polyhedron.

Seen along a zone axis, the number of atoms in a column of a convex particle is the
number of lattice sites on the column's line inside the particle: a chord. For a
particle bounded by low-index facets ({111}, {100}, {110}) every count follows from
the distance of each facet from a centre, and the facets parallel to the beam are seen
edge-on in the outline. So the counts of all columns of a particle are decided
together by a handful of numbers, and for the symmetric shape of equilibrium (a Wulff
shape: every facet of a family at one distance) the outline already tells how deep the
particle is.

:func:`decode_counts` fits such a polyhedron to per-column count probabilities
(from :func:`atomtools.columns.counting.count_probabilities`): first the symmetric shape
whose edge-on facets match the outline, over the centres a particle can have
(cation- or anion-centred, any depth), then each facet on its own, each step kept only
where the probabilities support it. The prior is soft: a column may depart from the
polyhedron's chord (a step, an adatom, a vacancy) where its own probabilities say so
strongly enough. The posterior probabilities of each column replace the network's.

Pure NumPy; no files, no PyTorch.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from .materials import Material, material

__all__ = [
    "FAMILIES",
    "ProjectedLattice",
    "projected_lattice",
    "index_columns",
    "indexing_key",
    "chord_counts",
    "decode_counts",
]

#: Facet families of the polyhedron: {111}, {100}, {110}.
FAMILIES = ((1, 1, 1), (1, 0, 0), (1, 1, 0))

#: Sublattice of the principal species, by crystal structure (diamond: dumbbell columns, not decoded).
_LATTICES = {"fluorite": "fcc", "fcc": "fcc", "rocksalt": "fcc", "bcc": "bcc"}


def _lattice_vectors(kind: str, a: float, reach: int = 3) -> np.ndarray:
    hkl = np.array(list(itertools.product(range(-2 * reach, 2 * reach + 1), repeat=3)))
    hkl = hkl[np.any(hkl != 0, axis=1)]
    if kind == "fcc":
        keep = hkl.sum(axis=1) % 2 == 0
    else:  # bcc: all even or all odd
        keep = np.all(hkl % 2 == hkl[:, :1] % 2, axis=1)
    return hkl[keep] * a / 2


def _beam_frame(zone) -> np.ndarray:
    """Rows x, y, z of an orthonormal frame with z along ``zone`` (cubic indices)."""
    z = np.asarray(zone, float) / np.linalg.norm(zone)
    helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = helper - (helper @ z) * z
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


@dataclass(frozen=True)
class ProjectedLattice:
    """The principal sublattice seen along the zone axis.

    Attributes
    ----------
    frame : numpy.ndarray
        (3, 3) rows x, y, z of the beam frame in crystal coordinates.
    v : numpy.ndarray
        (3,) shortest lattice vector along the beam [Å], crystal coordinates.
    A : numpy.ndarray
        (2, 3) two lattice vectors that with ``v`` make a primitive cell [Å].
    B : numpy.ndarray
        (2, 2) their projections in the beam frame (rows) [Å]: a basis of the columns.
    normals : numpy.ndarray
        (F, 3) unit facet normals of :data:`FAMILIES`, crystal coordinates.
    family : numpy.ndarray
        (F,) family index of each normal.
    spacing : numpy.ndarray
        (3,) lattice-plane spacing of each family [Å].
    """

    frame: np.ndarray
    v: np.ndarray
    A: np.ndarray
    B: np.ndarray
    normals: np.ndarray
    family: np.ndarray
    spacing: np.ndarray


def projected_lattice(mat: Material | str) -> ProjectedLattice | None:
    """The principal sublattice of ``mat`` along its zone axis; None where it has no plain columns.

    Parameters
    ----------
    mat : Material or str
        The crystal (fcc, fluorite, rock salt: an fcc sublattice; bcc).

    Returns
    -------
    ProjectedLattice or None
        The beam frame, the shortest lattice vector along the beam ``v`` [Å], the projected column
        basis ``B`` [Å] and the facet families; None where the structure has no plain columns.

    Examples
    --------
    >>> lat = projected_lattice("CeO2")
    >>> round(float(np.linalg.norm(lat.v)), 3), sorted(np.round(np.linalg.norm(lat.B, axis=1), 3).tolist())
    (3.826, [3.314, 3.314])
    """
    mat = material(mat)
    return _projected_lattice(mat.structure, float(mat.a), tuple(mat.zone_axis))


@functools.lru_cache(maxsize=16)
def _projected_lattice(structure: str, a: float, zone_axis: tuple[int, int, int]) -> ProjectedLattice | None:
    kind = _LATTICES.get(structure)
    if kind is None:
        return None
    vectors = _lattice_vectors(kind, a)
    zone = np.asarray(zone_axis, float)
    along = np.abs(np.cross(vectors, zone)).sum(axis=1) < 1e-9
    v = vectors[along][np.argmin(np.linalg.norm(vectors[along], axis=1))]
    if v @ zone < 0:
        v = -v
    volume = a**3 / (4 if kind == "fcc" else 2)
    frame = _beam_frame(zone_axis)
    proj = vectors @ frame[:2].T
    order = np.argsort(np.linalg.norm(proj, axis=1) + 1e-6 * np.arange(len(proj)))
    best = None
    for i in order[:60]:
        for j in order[:60]:
            det = abs(np.linalg.det(np.stack([v, vectors[i], vectors[j]])))
            if abs(det - volume) > 1e-6 * volume:
                continue
            b1, b2 = proj[i], proj[j]
            cross = b1[0] * b2[1] - b1[1] * b2[0]
            if cross <= 0:
                continue
            score = np.linalg.norm(b1) + np.linalg.norm(b2)
            if best is None or score < best[0] - 1e-9:
                best = (score, i, j)
    _, i, j = best
    normals, family, spacing = [], [], []
    for f, hkl in enumerate(FAMILIES):
        members = {
            tuple(s * np.array(p))
            for p in set(itertools.permutations(hkl))
            for s in itertools.product((1, -1), repeat=3)
        }
        for n in sorted(members):
            normals.append(np.array(n, float) / np.linalg.norm(n))
            family.append(f)
        planes = vectors @ (np.array(hkl, float) / np.linalg.norm(hkl))
        spacing.append(float(np.min(planes[planes > 1e-9])))
    return ProjectedLattice(
        frame=frame,
        v=v,
        A=np.stack([vectors[i], vectors[j]]),
        B=np.stack([proj[i], proj[j]]),
        normals=np.array(normals),
        family=np.array(family),
        spacing=np.array(spacing),
    )


def index_columns(xy, lattice: ProjectedLattice, *, anchor: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Lattice indices of columns seen in an image: the in-plane rotation and origin that put them on the lattice.

    Parameters
    ----------
    xy : array-like
        (N, 2) column positions [Å].
    lattice : ProjectedLattice
        The projected sublattice.
    anchor : int, optional
        The column at the origin (default the one nearest the centroid).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, float)
        (N, 2) integer indices, (N,) distance of each column from its lattice site [Å],
        and the rotation [degrees].

    Examples
    --------
    >>> lat = projected_lattice("CeO2"); t = np.radians(30)
    >>> R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    >>> ij = np.array([[0, 0], [1, 0], [0, 1], [2, -1], [1, 1]]); xy = (ij @ lat.B) @ R.T + 7.0
    >>> idx, residual, angle = index_columns(xy, lat); bool(residual.max() < 1e-6)
    True
    """
    xy = np.asarray(xy, float).reshape(-1, 2)
    if anchor is None:
        anchor = int(np.argmin(np.linalg.norm(xy - xy.mean(axis=0), axis=1)))
    return _index(xy, lattice, anchor)


def indexing_key(xy) -> bytes:
    """The key under which a particle's :func:`index_columns` answer is handed on.

    A caller that indexes a particle's columns once (the crystal check) keeps the answer
    in a dict under this key and hands it to :func:`decode_counts` (``indexed=``), so
    the search is not run twice; positions are rounded to 0.01 Å, so the same columns
    found again through pixels and back give the same key.

    Parameters
    ----------
    xy : array-like
        (N, 2) column positions [Å].

    Returns
    -------
    bytes
        The key.
    """
    return np.round(np.asarray(xy, float).reshape(-1, 2), 2).tobytes()


def _index(xy: np.ndarray, lattice: ProjectedLattice, anchor: int) -> tuple[np.ndarray, np.ndarray, float]:
    rel = xy - xy[anchor]
    inv = np.linalg.inv(lattice.B)

    def residuals(angles) -> tuple[np.ndarray, np.ndarray]:
        t = np.radians(np.atleast_1d(angles))[:, None, None]
        # image -> beam frame, every angle at once: (A, N, 2)
        q = np.stack(
            [
                rel[None, :, 0] * np.cos(t[..., 0]) + rel[None, :, 1] * np.sin(t[..., 0]),
                -rel[None, :, 0] * np.sin(t[..., 0]) + rel[None, :, 1] * np.cos(t[..., 0]),
            ],
            axis=-1,
        )
        f = q @ inv
        idx = np.rint(f)
        return idx, np.linalg.norm((f - idx) @ lattice.B, axis=-1)

    def best_of(angles) -> float:
        cost = np.mean(np.minimum(residuals(angles)[1], 1.0) ** 2, axis=1)
        return float(np.atleast_1d(angles)[int(np.argmin(cost))])

    best = best_of(np.arange(0.0, 360.0, 0.5))
    angle = best_of(best + np.arange(-0.5, 0.5001, 0.02))
    idx, res = residuals(angle)
    idx, res = idx[0], res[0]
    return idx.astype(int), res, angle


def _bounds(sites: np.ndarray, lattice: ProjectedLattice) -> tuple[np.ndarray, np.ndarray]:
    """n·r of each site for each facet, and n·v of each facet."""
    return sites @ lattice.normals.T, lattice.normals @ lattice.v


def chord_counts(sites: np.ndarray, distances: np.ndarray, lattice: ProjectedLattice) -> np.ndarray:
    """Atoms on each column's line inside the polyhedron ``n_f · r <= d_f``.

    Parameters
    ----------
    sites : numpy.ndarray
        (N, 3) one lattice site of each column, crystal coordinates [Å].
    distances : numpy.ndarray
        (F,) facet distances from the origin [Å], or (M, F) for M polyhedra at once.
    lattice : ProjectedLattice
        Facet normals and the beam's lattice vector.

    Returns
    -------
    numpy.ndarray
        (N,) or (M, N) counts [atoms].

    Examples
    --------
    >>> lat = projected_lattice("CeO2"); d = np.full(len(lat.normals), 6.0)
    >>> int(chord_counts(np.zeros((1, 3)), d, lat)[0])  # a column through the centre of a 12 Å particle
    3
    """
    nr, nv = _bounds(sites, lattice)
    d = np.atleast_2d(distances)
    # sites r + k v inside: k <= (d - n.r) / n.v for top facets, k >= ... for bottom ones;
    # a column is there at all where every edge-on facet (n.v = 0) has it inside. One facet
    # at a time into (M, N) bounds: 2x faster than (M, N, F) arrays for the decoder's
    # thousand candidate polyhedra, and the same arithmetic.
    k_max = np.full((len(d), len(nr)), np.inf)
    k_min = np.full((len(d), len(nr)), -np.inf)
    inside = np.ones((len(d), len(nr)), bool)
    for f, along in enumerate(nv):
        if along > 1e-9:
            np.minimum(k_max, (d[:, f, None] - nr[None, :, f]) / along, out=k_max)
        elif along < -1e-9:
            np.maximum(k_min, (d[:, f, None] - nr[None, :, f]) / along, out=k_min)
        else:
            inside &= nr[None, :, f] <= d[:, f, None] + 1e-9
    count = np.where(inside, np.maximum(np.floor(k_max + 1e-9) - np.ceil(k_min - 1e-9) + 1, 0), 0.0)
    return count[0] if np.ndim(distances) == 1 else count


def _one_facet_counts(nr: np.ndarray, nv: np.ndarray, d: np.ndarray, f: int, values: np.ndarray) -> np.ndarray:
    """:func:`chord_counts` of polyhedra that differ from ``d`` in the inclined facet ``f`` alone.

    The same arithmetic, with the other facets' bound computed once: (len(values), N) counts.
    """
    top, bottom = nv > 1e-9, nv < -1e-9
    edge = ~(top | bottom)
    others_top, others_bottom = top.copy(), bottom.copy()
    others_top[f] = others_bottom[f] = False
    inf = np.full(len(nr), np.inf)
    u = ((d[None, others_top] - nr[:, others_top]) / nv[others_top]).min(axis=1) if others_top.any() else inf
    lo = (
        ((d[None, others_bottom] - nr[:, others_bottom]) / nv[others_bottom]).max(axis=1)
        if others_bottom.any()
        else -inf
    )
    mine = (np.asarray(values, float)[:, None] - nr[None, :, f]) / nv[f]  # (T, N)
    if top[f]:
        k_max, k_min = np.floor(np.minimum(mine, u[None]) + 1e-9), np.ceil(np.broadcast_to(lo, mine.shape) - 1e-9)
    else:
        k_max, k_min = np.floor(np.broadcast_to(u, mine.shape) + 1e-9), np.ceil(np.maximum(mine, lo[None]) - 1e-9)
    count = np.maximum(k_max - k_min + 1, 0)
    if edge.any():
        count = np.where(np.all(nr[:, edge] <= d[edge] + 1e-9, axis=1)[None], count, 0)
    return count


def _log_evidence(prior_like: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum over columns of log sum_c p_i(c) pi(c | model count); counts (M, N).

    ``prior_like`` is ``p @ kernel.T``: (N, K + 1), column ``m`` the likelihood of model count ``m``.
    """
    m = np.clip(counts.astype(int), 0, prior_like.shape[1] - 1)
    like = np.take_along_axis(prior_like.T, m, axis=0)
    return np.log(np.maximum(like, 1e-300)).sum(axis=1)


def _kernel(k: int, *, sharpness: float, departure: float) -> np.ndarray:
    """(k + 1, k) prior of each class given the model count (0..k): a peak with tails."""
    counts = np.arange(1, k + 1)
    model = np.arange(0, k + 1)
    peak = np.exp(-sharpness * np.abs(counts[None, :] - model[:, None]))
    peak /= peak.sum(axis=1, keepdims=True)
    return (1 - departure) * peak + departure / k


def decode_counts(
    xy,
    probabilities,
    mat: Material | str,
    *,
    sharpness: float = 2.0,
    departure: float = 0.05,
    facet_penalty: float = 2.0,
    max_residual: float = 0.6,
    adapt: bool = True,
    max_asymmetry: float = 2.0,
    indexed: tuple | None = None,
) -> dict | None:
    """Count probabilities of a particle's columns decoded jointly under a convex-polyhedron prior.

    Parameters
    ----------
    xy : array-like
        (N, 2) positions of the principal species' columns of one particle [Å].
    probabilities : array-like
        (N, K) probabilities of 1..K atoms (the last class: K or more).
    mat : Material or str
        The crystal and zone axis.
    sharpness : float
        How strongly a column's prior peaks at the polyhedron's chord (1/atoms).
    departure : float
        Prior mass a column may hold anywhere else (steps, adatoms, vacancies).
    facet_penalty : float
        Log-likelihood a facet must gain per atom step it moves away from the symmetric
        (Wulff) shape.
    max_residual : float
        Columns farther than this from a lattice site are left as they are [Å].
    adapt : bool
        Choose the departure mass by the particle's own evidence (from ``departure`` to
        1, no prior) once the polyhedron is fitted: a particle the polyhedron does not
        explain keeps its own probabilities.
    max_asymmetry : float
        The prior is applied only where the fitted facets lie within this many atom
        steps (summed) of the symmetric shape: a compact particle near its equilibrium
        shape. Slabs, terraces and saw-tooth tops, which a convex polyhedron fits only
        by leaving symmetry far behind, keep their own probabilities (measured on
        held-out frames of the training recipe: the prior gained 6-13 points of exact
        counts below 2 steps and lost 6-9 above).
    indexed : tuple, optional
        :func:`index_columns`' answer for ``xy`` where the caller has it already (see
        :func:`indexing_key`); default: indexed here.

    Returns
    -------
    dict or None
        ``probabilities`` (N, K) the posterior, ``model_count`` (N,) the polyhedron's
        chord of each column (-1 where not indexed), ``distances`` (F,) the facet
        distances [Å], ``centre`` (3,) [Å], ``symmetric`` (the facet distances of the
        symmetric fit), ``log_evidence`` (symmetric, final), ``departure`` (the one
        chosen), ``asymmetry`` [atom steps] and ``applied`` (whether the posterior
        replaced the probabilities); None where the material has
        no plain columns or fewer than 4 columns are given.
    """
    mat = material(mat)
    lattice = projected_lattice(mat)
    xy = np.asarray(xy, float).reshape(-1, 2)
    prob = np.asarray(probabilities, float)
    if lattice is None or len(xy) < 4:
        return None
    k = prob.shape[1]
    idx, residual, _ = index_columns(xy, lattice) if indexed is None else indexed
    if len(idx) != len(xy):
        raise ValueError(f"indexed holds {len(idx)} columns' indices for {len(xy)} columns")
    ok = residual <= max_residual
    if ok.sum() < 4:
        return None
    sites = idx[ok] @ lattice.A  # crystal coordinates, the anchor at the origin
    p = prob[ok] / prob[ok].sum(axis=1, keepdims=True)
    kernel = _kernel(k, sharpness=sharpness, departure=departure)
    nr, nv = _bounds(sites, lattice)
    edge = np.abs(nv) < 1e-9
    fam = lattice.family
    # the outline: every edge-on facet just beyond the outermost column (half a plane spacing)
    outline = nr[:, edge].max(axis=0) + lattice.spacing[fam[edge]] / 2
    n_edge = lattice.normals[edge]
    # the centre's in-plane part: n.c = (d_+n - d_-n) / 2 over edge-on pairs; the support h per family
    n = len(n_edge)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if np.allclose(n_edge[i], -n_edge[j])]
    rows = np.array([n_edge[i] for i, _ in pairs])
    rhs = np.array([(outline[i] - outline[j]) / 2 for i, j in pairs])
    c_plane = np.linalg.lstsq(rows, rhs, rcond=None)[0]
    c_plane -= (c_plane @ lattice.v) / (lattice.v @ lattice.v) * lattice.v  # keep the part across the beam
    h_edge = np.zeros(len(FAMILIES))
    for f in range(len(FAMILIES)):
        sel = [(i, j) for i, j in pairs if fam[edge][i] == f]
        h_edge[f] = np.mean([(outline[i] + outline[j]) / 2 for i, j in sel]) if sel else np.nan
    # families not seen edge-on: a distance no smaller than the largest seen (an inactive facet)
    h_edge = np.where(np.isfinite(h_edge), h_edge, np.nanmax(h_edge) * 1.5)
    # candidate centres: a quarter-cell grid near the outline's centre, one period deep
    a = mat.a
    grid = np.array(list(itertools.product(range(-2, 3), repeat=3))) * a / 4
    vhat = lattice.v / np.linalg.norm(lattice.v)
    base = np.round(c_plane / (a / 4)) * (a / 4)  # on the quarter-cell grid of the anchor site
    c = base + grid
    along = c @ vhat
    c = c + ((along % np.linalg.norm(lattice.v)) - along)[:, None] * vhat[None, :]  # one period deep
    across = c - (c @ vhat)[:, None] * vhat - (c_plane - (c_plane @ vhat) * vhat)
    centres = np.unique(np.round(c[np.linalg.norm(across, axis=1) <= a / 2], 6), axis=0)
    steps = np.array(list(itertools.product((-1, 0, 1), repeat=len(FAMILIES))))  # family distance steps
    h = h_edge[None, :] + steps * lattice.spacing[None, :]  # (S, families)
    candidates = (h[:, fam][None, :, :] + (centres @ lattice.normals.T)[:, None, :]).reshape(-1, len(fam))
    # edge-on facets stay at the outline (they decide which columns exist, not their counts)
    candidates[:, edge] = outline[None, :]
    prior_like = p @ kernel.T
    evidence = _log_evidence(prior_like, chord_counts(sites, candidates, lattice))
    best = int(np.argmax(evidence))
    symmetric = candidates[best].copy()
    # then each inclined facet alone, an atom step at a time, paying facet_penalty per step away
    inclined = np.flatnonzero(~edge)
    step = np.abs(nv)

    def objective(ds: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        away = (np.abs(ds - symmetric)[:, inclined] / step[inclined]).sum(axis=1)
        counts = chord_counts(sites, ds, lattice) if counts is None else counts
        return _log_evidence(prior_like, counts) - facet_penalty * away

    d = symmetric.copy()
    current = float(objective(d[None])[0])
    for _ in range(4):
        moved = False
        for f in inclined:
            trial = np.repeat(d[None], 13, axis=0)
            trial[:, f] = symmetric[f] + np.arange(-6, 7) * step[f] / 2
            score = objective(trial, _one_facet_counts(nr, nv, d, f, trial[:, f]))
            j = int(np.argmax(score))
            if score[j] > current + 1e-9 and not np.isclose(trial[j, f], d[f]):
                d, current, moved = trial[j], float(score[j]), True
        if not moved:
            break
    model = chord_counts(sites, d, lattice).astype(int)
    # how far to trust the polyhedron, by the particle's own evidence (empirical Bayes): a convex
    # particle keeps a small departure; a slab with steps or a saw-tooth top a large one
    if adapt:
        trust = np.array([departure, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0])
        scores = [_log_evidence(p @ _kernel(k, sharpness=sharpness, departure=b).T, model[None])[0] for b in trust]
        departure = float(trust[int(np.argmax(scores))])
        kernel = _kernel(k, sharpness=sharpness, departure=departure)
    asymmetry = float(np.sum(np.abs(d - symmetric)[inclined] / step[inclined]))
    applied = asymmetry <= max_asymmetry
    post = p * kernel[np.clip(model, 0, k)]
    post /= post.sum(axis=1, keepdims=True)
    out_prob = prob.copy()
    if applied:
        out_prob[ok] = post
    model_count = np.full(len(xy), -1)
    model_count[ok] = model
    return {
        "probabilities": out_prob,
        "model_count": model_count,
        "distances": d,
        "symmetric": symmetric,
        "log_evidence": (float(evidence[best]), current),
        "departure": departure,
        "asymmetry": asymmetry,
        "applied": applied,
    }

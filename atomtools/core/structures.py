"""Atomic models of nanoparticles seen along a zone axis, with exact column bookkeeping.

Everything here is pure: ASE ``Atoms`` and numbers in, ``Atoms`` out, every random
draw from an explicit :class:`numpy.random.Generator`. Each atom that belongs to a
lattice column carries the integer ``atoms.arrays["column"]`` (``-1`` for atoms that
belong to no column, such as amorphous carbon). The id is assigned in the perfectly
aligned zone-axis frame, *before* any mistilt, so a tilted column is still one column
and is counted once (:func:`atomtools.core.labels.column_table`).

Conventions: the beam travels along +z; positions and lengths are in Å; angles in
degrees. The zone axis is rotated onto z and the shortest lattice vector normal to it
onto x.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from scipy.spatial import cKDTree

from ..utils import Record
from .cell import DoesNotFitError, amorphous_carbon, mistilt, place_in_cell  # re-exported: build() chains them
from .lattice import (
    _equivalent_normals,
    _is_cubic,
    ceo2,
    column_geometry,
    column_period,
    fluorite,
    lattice_sites,
    reflections,
    zone_axis_rotation,
)
from .materials import CEO2, Material, material

__all__ = [
    "DoesNotFitError",
    "SURFACE_PROFILES",
    "ParticleSpec",
    "ParticleRanges",
    "fluorite",
    "ceo2",
    "zone_axis_rotation",
    "lattice_sites",
    "facet_mask",
    "thickness_profile",
    "nanoparticle",
    "mistilt",
    "amorphous_carbon",
    "place_in_cell",
    "build",
    "column_period",
    "column_geometry",
    "reflections",
]


SURFACE_PROFILES = ("particle", "flat", "stepped", "sawtooth", "wedge")


def facet_mask(sites: Atoms, bulk: Atoms, facets: dict, *, center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Sites inside the convex polyhedron bounded by crystal planes.

    Parameters
    ----------
    sites : ase.Atoms
        Sites in the zone-axis frame, from :func:`lattice_sites`.
    bulk : ase.Atoms
        The unit cell the sites came from (for plane normals).
    facets : dict
        ``{(h, k, l): distance}``: each Miller family [Å from the centre]. For cubic
        cells every permutation and sign of (h, k, l) is included; for other cells
        only (h, k, l) and its opposite.
    center : three float
        Centre of the polyhedron in the zone-axis frame [Å].

    Returns
    -------
    numpy.ndarray
        Boolean mask over ``sites``.
    """
    cell = np.asarray(bulk.cell)
    recip = np.linalg.inv(cell).T  # rows: reciprocal vectors (without 2 pi)
    rot = sites.info["rotation"]
    rel = sites.positions - np.asarray(center, float)
    inside = np.ones(len(sites), bool)
    cubic = _is_cubic(cell)
    for hkl, distance in facets.items():
        if not distance > 0:
            raise ValueError(f"facet distance for {hkl} must be positive [Å], got {distance}")
        for n in _equivalent_normals(hkl, cubic):
            normal = rot @ (n @ recip)
            normal /= np.linalg.norm(normal)
            inside &= rel @ normal <= distance + 1e-6
    return inside


def thickness_profile(
    xy: np.ndarray, *, kind: str, n_min: int, n_max: int, width: float = 8.0, direction: float = 0.0, origin=(0.0, 0.0)
) -> np.ndarray:
    """Number of atoms along the beam allowed at projected positions.

    Parameters
    ----------
    xy : numpy.ndarray
        (N, 2) projected positions [Å].
    kind : {"flat", "stepped", "sawtooth", "wedge"}
        ``flat``: ``n_max`` everywhere. ``stepped``: terraces ``width`` wide, each one
        atom thicker than the last, cycling between ``n_min`` and ``n_max``.
        ``sawtooth``: thickness ramps from ``n_min`` to ``n_max`` and back with period
        ``2 * width``. ``wedge``: one linear ramp from ``n_min`` at the edge to
        ``n_max`` across the particle.
    n_min, n_max : int
        Thinnest and thickest column [atoms].
    width : float
        Terrace width, or half period of the saw-tooth [Å].
    direction : float
        In-plane direction along which the profile varies [degrees from x].
    origin : two float
        Where the profile starts [Å].

    Returns
    -------
    numpy.ndarray
        Allowed thickness at each position [atoms], int, shape (N,).

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [9.0, 0.0], [17.0, 0.0]])
    >>> thickness_profile(xy, kind="stepped", n_min=3, n_max=6, width=8.0).tolist()
    [3, 4, 5]
    """
    if not 1 <= n_min <= n_max:
        raise ValueError(f"need 1 <= n_min <= n_max atoms, got n_min={n_min}, n_max={n_max}")
    if not width > 0:
        raise ValueError(f"profile width must be positive [Å], got {width}")
    t = np.deg2rad(direction)
    u = (np.asarray(xy, float) - np.asarray(origin, float)) @ np.array([np.cos(t), np.sin(t)])
    span = n_max - n_min
    if kind == "flat":
        n = np.full(len(u), n_max)
    elif kind == "stepped":
        n = n_min + np.mod(np.floor(u / width), span + 1)
    elif kind == "sawtooth":
        phase = np.mod(u / width, 2.0)
        n = n_min + np.rint(span * np.where(phase < 1.0, phase, 2.0 - phase))
    elif kind == "wedge":
        u0 = u.min() if len(u) else 0.0
        extent = max(np.ptp(u), 1e-9) if len(u) else 1.0
        n = n_min + np.rint(span * (u - u0) / extent)
    else:
        raise ValueError(f"unknown profile kind {kind!r}; expected one of {SURFACE_PROFILES[1:]}")
    return n.astype(int)


@dataclass(frozen=True)
class ParticleSpec(Record):
    """Everything that decides one atomic model. ``build(spec)`` is deterministic.

    Attributes
    ----------
    profile : str
        ``particle`` (faceted, natural thickness) or a (110) surface profile
        ``flat``, ``stepped``, ``sawtooth``, ``wedge`` (thickness set by the profile).
    size : float
        Distance between opposite {111} facets [Å].
    truncation : float
        Ratio of the {100} to the {111} facet distance (1.155: regular truncated
        octahedron; 1.732: octahedron).
    n_min, n_max : int
        Column thickness range of the profile [atoms].
    profile_width : float
        Terrace width / saw-tooth half period [Å].
    profile_direction : float
        In-plane direction of the profile [degrees].
    tilt : float
        Mistilt away from the zone axis [degrees].
    tilt_axis : float
        In-plane direction of the tilt axis [degrees from x].
    rotation : float
        In-plane rotation about the beam [degrees].
    shift : tuple of float
        Lateral offset of the particle from the cell centre [Å].
    vacancies : dict
        Fraction of each element's atoms removed, e.g. ``{"O": 0.05, "Ce": 0.01}``.
    adatoms : dict
        Number of adatoms of each element placed on empty surface lattice sites.
    support : float
        Thickness of an amorphous carbon support under the particle [Å]; 0 for none.
    anion_bonds : int, optional
        The other species' sites (the O of CeO2) are kept where they bond to at least
        this many kept principal sites: 3 (the material's default) leaves O-terminated
        {111} facets and oxygen-poor edges (O/Ce 1.6-1.9 for 2-3 nm particles), 2 a plain
        cut of the fluorite lattice (O/Ce 2.0-2.2); None: ``material.min_bonds``.
    seed : int
        Seed of every random draw in the model (vacancies, adatoms, support).
    material : Material or str
        The crystal, its zone axis and its column species
        (:func:`atomtools.core.materials.material`); CeO2 along [110] by default.
    """

    profile: str = "particle"
    size: float = 25.0
    truncation: float = 1.155
    n_min: int = 3
    n_max: int = 10
    profile_width: float = 8.0
    profile_direction: float = 0.0
    tilt: float = 0.0
    tilt_axis: float = 0.0
    rotation: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    vacancies: dict = field(default_factory=dict)
    adatoms: dict = field(default_factory=dict)
    support: float = 0.0
    seed: int = 0
    material: Material = CEO2
    anion_bonds: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "material", material(self.material))
        if self.anion_bonds is not None and not 1 <= int(self.anion_bonds) <= 8:
            raise ValueError(f"ParticleSpec.anion_bonds must be an integer in [1, 8], got {self.anion_bonds!r}")
        symbols = self.material.symbols
        if self.profile not in SURFACE_PROFILES:
            raise ValueError(f"ParticleSpec.profile must be one of {SURFACE_PROFILES}, got {self.profile!r}")
        if not self.size > 0:
            raise ValueError(f"ParticleSpec.size must be positive [Å], got {self.size}")
        if not 1.0 <= self.truncation <= np.sqrt(3) + 1e-9:
            raise ValueError(f"ParticleSpec.truncation must lie in [1, sqrt(3)], got {self.truncation}")
        for el, frac in self.vacancies.items():
            if el not in symbols or not 0 <= frac < 1:
                raise ValueError(
                    f"ParticleSpec.vacancies[{el!r}]={frac}: expected an element of {symbols} and a fraction in [0, 1)"
                )
        for el, n in self.adatoms.items():
            if el not in symbols or int(n) < 0:
                raise ValueError(f"ParticleSpec.adatoms[{el!r}]={n}: expected an element of {symbols} and a count >= 0")
        if self.support < 0:
            raise ValueError(f"ParticleSpec.support must be >= 0 [Å], got {self.support}")
        if not 1 <= self.n_min <= self.n_max:
            raise ValueError(f"ParticleSpec needs 1 <= n_min <= n_max, got {self.n_min}, {self.n_max}")


def _pair(owner: str, name: str, value, *, positive: bool = False, integer: bool = False) -> tuple:
    """``value`` as a checked (low, high) pair; the error names ``owner.name``."""
    try:
        lo, hi = (int(v) if integer else float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{owner}.{name} must be a (low, high) pair, got {value!r}") from exc
    if lo > hi:
        raise ValueError(f"{owner}.{name} must have low <= high, got {value!r}")
    if positive and lo <= 0:
        raise ValueError(f"{owner}.{name} must be positive, got {value!r}")
    return (lo, hi)


@dataclass(frozen=True)
class ParticleRanges(Record):
    """The ranges a dataset draws its particles from: the one source of the particle
    parameters a simulation varies (:meth:`sample` turns them into a :class:`ParticleSpec`).

    Ranges are ``(low, high)`` pairs drawn uniformly.

    Attributes
    ----------
    material : Material or str
        The crystal (:func:`atomtools.core.materials.material`).
    profiles : tuple of str
        Particle kinds drawn from (see :class:`ParticleSpec`).
    size : (float, float)
        Particle size: distance between opposite {111} facets [Å].
    truncation : (float, float)
        {100}/{111} facet distance ratio.
    thickness : (int, int)
        Column thickness range of the profile kinds [atoms].
    profile_width : (float, float)
        Terrace width / saw-tooth half period [Å].
    tilt : float
        Largest mistilt [degrees], about a random in-plane axis.
    shift : float
        Largest lateral offset from the centre [Å].
    vacancies : dict, optional
        Element -> (low, high) vacancy fraction; default up to 2 % of the principal
        species and up to 8 % of the others.
    adatoms : dict, optional
        Element -> largest number of adatoms; default up to 6 of the principal species.
    support_probability : float
        Chance of an amorphous carbon support.
    support : (float, float)
        Support thickness [Å].
    anion_bonds : (int, int), optional
        Range of :attr:`ParticleSpec.anion_bonds` (the surface's oxygen: 3 oxygen-poor,
        2 a plain stoichiometric-to-rich cut); None: the material's ``min_bonds``. Drawn
        last, and only for a range that is not one value, so that sets without it are
        unchanged.
    """

    material: Material = CEO2
    profiles: tuple[str, ...] = SURFACE_PROFILES
    size: tuple[float, float] = (15.0, 34.0)
    truncation: tuple[float, float] = (1.0, 1.5)
    thickness: tuple[int, int] = (1, 12)
    profile_width: tuple[float, float] = (5.0, 12.0)
    tilt: float = 3.0
    shift: float = 2.0
    vacancies: dict | None = None
    adatoms: dict | None = None
    support_probability: float = 0.3
    support: tuple[float, float] = (10.0, 30.0)
    anion_bonds: tuple[int, int] | None = None

    def __post_init__(self):
        mat = material(self.material)
        object.__setattr__(self, "material", mat)
        if self.vacancies is None:
            object.__setattr__(self, "vacancies", {s: (0.0, 0.02 if s == mat.principal else 0.08) for s in mat.symbols})
        if self.adatoms is None:
            object.__setattr__(self, "adatoms", {mat.principal: 6})
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the parameter if a particle range is unusable."""
        owner = type(self).__name__
        symbols = self.material.symbols
        if not self.profiles:
            raise ValueError(f"{owner}.profiles must name at least one profile")
        for p in self.profiles:
            if p not in SURFACE_PROFILES:
                raise ValueError(f"{owner}.profiles: unknown profile {p!r}; expected any of {SURFACE_PROFILES}")
        for name in ("truncation", "support"):
            _pair(owner, name, getattr(self, name))
        for name in ("size", "profile_width"):
            _pair(owner, name, getattr(self, name), positive=True)
        lo, _ = _pair(owner, "thickness", self.thickness, integer=True)
        if lo < 1:
            raise ValueError(f"{owner}.thickness must start at >= 1 atom, got {self.thickness!r}")
        for el, rng in self.vacancies.items():
            if el not in symbols:
                raise ValueError(f"{owner}.vacancies: {el!r} is not one of the elements {symbols}")
            lo_v, hi_v = _pair(owner, f"vacancies[{el!r}]", rng)
            if lo_v < 0 or hi_v >= 1:
                raise ValueError(f"{owner}.vacancies[{el!r}] must be fractions in [0, 1), got {rng!r}")
        for el, n in self.adatoms.items():
            if el not in symbols or int(n) < 0:
                raise ValueError(f"{owner}.adatoms[{el!r}]={n!r}: expected an element of {symbols} and a count >= 0")
        if not 0 <= self.support_probability <= 1:
            raise ValueError(f"{owner}.support_probability must lie in [0, 1], got {self.support_probability}")
        if not 0 <= self.tilt <= 15:
            raise ValueError(f"{owner}.tilt must lie in [0, 15] degrees, got {self.tilt}")
        if self.anion_bonds is not None:
            lo_b, hi_b = _pair(owner, "anion_bonds", self.anion_bonds, integer=True)
            if not 1 <= lo_b <= hi_b <= 8:
                raise ValueError(f"{owner}.anion_bonds must be integers in [1, 8], got {self.anion_bonds!r}")

    def sample(self, rng: np.random.Generator) -> ParticleSpec:
        """Draw one particle.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of every draw (in a fixed order: the same generator state gives the
            same particle).

        Examples
        --------
        >>> ParticleRanges(profiles=("flat",)).sample(np.random.default_rng(0)).profile
        'flat'
        """
        u = rng.uniform
        profile = str(rng.choice(self.profiles))
        t_lo, t_hi = self.thickness
        n_max = int(rng.integers(t_lo, t_hi + 1))
        n_min = int(rng.integers(t_lo, n_max + 1))
        spec = ParticleSpec(
            profile=profile,
            size=float(u(*self.size)),
            truncation=float(u(*self.truncation)),
            n_min=n_min,
            n_max=n_max,
            profile_width=float(u(*self.profile_width)),
            profile_direction=float(u(0, 180)),
            tilt=float(u(0, self.tilt)),
            tilt_axis=float(u(0, 180)),
            rotation=float(u(0, 360)),
            shift=(float(u(-self.shift, self.shift)), float(u(-self.shift, self.shift))),
            vacancies={el: float(u(*r)) for el, r in sorted(self.vacancies.items())},
            adatoms={el: int(rng.integers(0, n + 1)) for el, n in sorted(self.adatoms.items())},
            support=float(u(*self.support)) if u() < self.support_probability else 0.0,
            seed=int(rng.integers(2**31)),
            material=self.material,
        )
        if self.anion_bonds is None:
            return spec
        lo, hi = (int(v) for v in self.anion_bonds)
        return replace(spec, anion_bonds=lo if lo == hi else int(rng.integers(lo, hi + 1)))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the particle parameters."""
        return tuple(f.name for f in fields(ParticleRanges))


def nanoparticle(spec: ParticleSpec) -> Atoms:
    """Faceted nanoparticle of ``spec.material`` in the zone-axis frame, centred on the origin.

    Principal-species sites (the cations of CeO2, every atom of a metal) inside the
    {111}/{100} polyhedron are kept; for the profile kinds the particle also gets a
    flat base and a top surface set by :func:`thickness_profile`. Sites of the other
    species are kept where they bond to at least ``spec.anion_bonds`` (default
    ``material.min_bonds``) kept principal
    sites: O-terminated {111} facets, the stable CeO2 surface, and close to
    stoichiometric particles. Vacancies and adatoms follow.

    Parameters
    ----------
    spec : ParticleSpec
        The model to build.

    Returns
    -------
    ase.Atoms
        The particle [Å], the bounding box of its principal-species sites centred on the origin, with
        ``arrays["column"]`` (column id) and ``info`` of :func:`lattice_sites` plus ``spec``.
    """
    rng = np.random.default_rng(spec.seed)
    mat = spec.material
    bulk = mat.bulk()
    d111 = spec.size / 2
    d100 = spec.truncation * d111
    period = column_period(bulk, mat.zone_axis)
    radius = max(d100, np.sqrt(3) * d111, (spec.n_max / 2 + 1) * period) * 1.05 + 4.0
    sites = lattice_sites(bulk, mat.zone_axis, radius=radius)
    cation = bulk.numbers[0]
    is_cation = sites.numbers == cation
    keep = is_cation & facet_mask(sites, bulk, {(1, 1, 1): d111, (1, 0, 0): d100})
    if spec.profile != "particle":
        keep = is_cation & _profile_mask(sites, keep, spec, period)

    bonds = mat.min_bonds if spec.anion_bonds is None else int(spec.anion_bonds)
    keep |= (~is_cation) & _bonded(sites, keep, min_bonds=bonds, bond=_bond_length(bulk))
    candidates = (
        is_cation & ~keep & _bonded(sites, keep & is_cation, min_bonds=3, bond=_nn_distance(sites, is_cation) * 1.01)
    )
    keep = _remove_vacancies(sites, keep, spec.vacancies, rng)
    keep = _add_adatoms(sites, keep, candidates, spec.adatoms, rng)

    particle = sites[keep]
    particle.positions -= _center(particle, cation)
    particle.info.update(sites.info)
    particle.info["spec"] = spec.to_dict()
    return particle


def _profile_mask(sites: Atoms, inside: np.ndarray, spec: ParticleSpec, period: float) -> np.ndarray:
    """Columns under the faceted outline, with a flat base and a top surface from the profile.

    The facets decide which columns exist (the projected outline); the profile alone
    decides how many atoms each holds.
    """
    col = sites.arrays["column"]
    z = sites.positions[:, 2]
    kept_cols = np.unique(col[inside])
    xy_col = np.zeros((col.max() + 1, 2))
    np.add.at(xy_col, col, sites.positions[:, :2])
    xy_col /= np.maximum(np.bincount(col, minlength=col.max() + 1), 1)[:, None]
    n_allowed = np.zeros(col.max() + 1, int)
    xy = xy_col[kept_cols]
    origin = xy.min(axis=0) if len(xy) else (0.0, 0.0)
    s = spec
    n_allowed[kept_cols] = thickness_profile(
        xy,
        kind=s.profile,
        n_min=s.n_min,
        n_max=s.n_max,
        width=s.profile_width,
        direction=s.profile_direction,
        origin=origin,
    )
    z_base = -0.5 * spec.n_max * period  # the flat (110) base
    rank = np.floor((z - z_base) / period + 1e-6)
    return np.isin(col, kept_cols) & (rank >= 0) & (rank < n_allowed[col])


def _bond_length(bulk: Atoms) -> float:
    d = bulk.get_all_distances(mic=True)
    cation = bulk.numbers == bulk.numbers[0]
    cross = d[np.ix_(cation, ~cation)]
    return float(cross[cross > 1e-6].min()) if cross.size else 0.0


def _nn_distance(sites: Atoms, mask: np.ndarray) -> float:
    tree = cKDTree(sites.positions[mask])
    d, _ = tree.query(sites.positions[mask][:50], k=2)
    return float(d[:, 1].min())


def _bonded(sites: Atoms, partners: np.ndarray, *, min_bonds: int, bond: float) -> np.ndarray:
    """Sites with at least ``min_bonds`` of ``partners`` within ``bond`` (+2 %)."""
    if not partners.any() or bond <= 0:
        return np.zeros(len(sites), bool)
    tree = cKDTree(sites.positions[partners])
    counts = tree.query_ball_point(sites.positions, r=bond * 1.02, return_length=True)
    self_partner = partners.astype(int)  # a partner site finds itself at distance 0
    return (counts - self_partner) >= min_bonds


def _remove_vacancies(sites: Atoms, keep: np.ndarray, fractions: dict, rng) -> np.ndarray:
    keep = keep.copy()
    for symbol in sorted(fractions):
        idx = np.flatnonzero(keep & (sites.numbers == atomic_numbers[symbol]))
        n = int(round(fractions[symbol] * len(idx)))
        if n:
            keep[rng.choice(idx, size=n, replace=False)] = False
    return keep


def _add_adatoms(sites: Atoms, keep: np.ndarray, candidates: np.ndarray, counts: dict, rng) -> np.ndarray:
    keep = keep.copy()
    for symbol in sorted(counts):
        idx = np.flatnonzero(candidates & ~keep & (sites.numbers == atomic_numbers[symbol]))
        n = min(int(counts[symbol]), len(idx))
        if n:
            keep[rng.choice(idx, size=n, replace=False)] = True
    return keep


def _center(atoms: Atoms, cation: int) -> np.ndarray:
    pos = atoms.positions[atoms.numbers == cation]
    if not len(pos):
        raise ValueError("the particle holds no cations: the size is too small for the lattice")
    return (pos.min(axis=0) + pos.max(axis=0)) / 2


def build(spec: ParticleSpec, *, extent: tuple[float, float]) -> Atoms:
    """Build the full simulation cell for ``spec``: particle, mistilt, placement, support.

    Parameters
    ----------
    spec : ParticleSpec
        The model.
    extent : two float
        Lateral cell size [Å], equal to the image field of view.

    Returns
    -------
    ase.Atoms
        The periodic simulation cell [Å], ``info`` holding the particle's ``spec``, ``zone_axis`` and
        ``column_period``.

    Examples
    --------
    >>> atoms = build(ParticleSpec(size=12.0), extent=(30.0, 30.0))
    >>> sorted(set(atoms.get_chemical_symbols()))
    ['Ce', 'O']
    """
    particle = nanoparticle(spec)
    particle = mistilt(particle, tilt=spec.tilt, axis_angle=spec.tilt_axis, rotation=spec.rotation)
    support = None
    if spec.support > 0:
        support = amorphous_carbon(extent, spec.support, rng=np.random.default_rng([spec.seed, 1]))
    atoms = place_in_cell(particle, extent=extent, shift=spec.shift, support=support)
    atoms.info.update({k: v for k, v in particle.info.items() if k != "rotation"})
    return atoms

"""One description per material: what every step needs to know about a crystal.

A :class:`Material` names the crystal (its bulk cell from ASE), the zone axis it is
seen along, which atomic species make the columns the network counts (one label
channel, one network head each), the bonding rule that decides which non-principal
sites a particle keeps at its surface, and the thermal vibration amplitudes of the
frozen-phonon model. Structures, labels, the simulator, the retrieval heads and the
3D models all read it from here; nothing else in the package names an element.

:func:`material` turns a name into a description: ``"CeO2"`` (and the other entries
of :data:`KNOWN`), or any element with a cubic reference structure in ASE (``"Au"``,
``"Pt"``, ``"Pd"``, ``"Cu"``, ...), whose lattice constant ASE supplies.

Examples
--------
>>> m = material("CeO2")
>>> m.symbols, m.channels, m.a
(('Ce', 'O'), (('Ce',), ('O',)), 5.411)
>>> material("Pd").structure, round(material("Pd").a, 2), material("Pd").channels
('fcc', 3.89, (('Pd',),))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ase import Atoms
from ase.data import atomic_numbers

from ..utils import Record

__all__ = ["Material", "KNOWN", "CEO2", "STRUCTURES", "material"]

#: Crystal structures a Material can be built as.
STRUCTURES = ("fluorite", "fcc", "bcc", "diamond", "rocksalt")

#: Default thermal vibration amplitude (standard deviation) for frozen phonons [Å].
DEFAULT_PHONON_SIGMA = 0.08


@dataclass(frozen=True)
class Material(Record):
    """A crystal as the pipeline sees it.

    Attributes
    ----------
    name : str
        Display name, e.g. ``"CeO2"``.
    structure : str
        Crystal structure, one of :data:`STRUCTURES`.
    symbols : tuple of str
        Species of the basis: the principal one (cation; the counted one) first.
    a : float
        Cubic lattice constant [Å].
    zone_axis : tuple of int
        Crystal direction [uvw] along the beam.
    channels : tuple of tuple of str
        Element groups whose columns are labelled (one label map, one network head
        each); default: one channel per species.
    min_bonds : int
        Non-principal sites (the O of CeO2) are kept where they bond to at least this
        many kept principal sites: 3 gives O-terminated {111} facets.
    phonon_sigmas : dict
        Element -> thermal vibration amplitude [Å] for frozen phonons.
    """

    name: str
    structure: str
    symbols: tuple[str, ...]
    a: float
    zone_axis: tuple[int, int, int] = (1, 1, 0)
    channels: tuple[tuple[str, ...], ...] = ()
    min_bonds: int = 3
    phonon_sigmas: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.structure not in STRUCTURES:
            raise ValueError(f"Material {self.name!r}: structure must be one of {STRUCTURES}, got {self.structure!r}")
        for s in self.symbols:
            if s not in atomic_numbers:
                raise ValueError(f"Material {self.name!r}: unknown element {s!r} in symbols={tuple(self.symbols)!r}")
        expected = {"fluorite": 2, "rocksalt": 2}.get(self.structure, 1)
        if len(self.symbols) != expected:
            raise ValueError(
                f"Material {self.name!r}: a {self.structure} crystal takes {expected} species, got "
                f"{tuple(self.symbols)!r}"
            )
        if not self.a > 0:
            raise ValueError(f"Material {self.name!r}: lattice constant a must be positive [Å], got {self.a}")
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "zone_axis", tuple(int(v) for v in self.zone_axis))
        channels = tuple(tuple(c) for c in self.channels) or tuple((s,) for s in self.symbols)
        for group in channels:
            for s in group:
                if s not in self.symbols:
                    raise ValueError(f"Material {self.name!r}: channel element {s!r} is not one of {self.symbols}")
        object.__setattr__(self, "channels", channels)

    @property
    def principal(self) -> str:
        """The species whose columns are counted first (the cation)."""
        return self.symbols[0]

    @property
    def channel_names(self) -> tuple[str, ...]:
        """One element name per channel (its first element)."""
        return tuple(group[0] for group in self.channels)

    def phonon_sigma(self, symbol: str) -> float:
        """Thermal vibration amplitude of ``symbol`` [Å].

        Parameters
        ----------
        symbol : str
            Element.
        """
        return float(self.phonon_sigmas.get(symbol, DEFAULT_PHONON_SIGMA))

    def bulk(self) -> Atoms:
        """The conventional cubic cell of the crystal (ASE).

        Examples
        --------
        >>> CEO2.bulk().get_chemical_formula(), material("Au").bulk().get_chemical_formula()
        ('Ce4O8', 'Au4')
        """
        from ase.build import bulk
        from ase.spacegroup import crystal

        if self.structure == "fluorite":
            return crystal(
                list(self.symbols),
                basis=[(0, 0, 0), (0.25, 0.25, 0.25)],
                spacegroup=225,
                cellpar=[self.a, self.a, self.a, 90, 90, 90],
            )
        if self.structure == "rocksalt":
            return bulk("".join(self.symbols), "rocksalt", a=self.a, cubic=True)
        return bulk(self.symbols[0], self.structure, a=self.a, cubic=True)


#: CeO2, fluorite, a = 5.411 Å, seen along [110]: the material of the source works.
CEO2 = Material(
    name="CeO2", structure="fluorite", symbols=("Ce", "O"), a=5.411, phonon_sigmas={"Ce": 0.062, "O": 0.087}
)

#: Materials known by name beyond ASE's elemental reference states.
KNOWN: dict[str, Material] = {
    "CeO2": CEO2,
    "ThO2": Material(name="ThO2", structure="fluorite", symbols=("Th", "O"), a=5.597),
    "ZrO2": Material(name="ZrO2", structure="fluorite", symbols=("Zr", "O"), a=5.07),
    "Au": Material(name="Au", structure="fcc", symbols=("Au",), a=4.078, phonon_sigmas={"Au": 0.085}),
    "Pt": Material(name="Pt", structure="fcc", symbols=("Pt",), a=3.924, phonon_sigmas={"Pt": 0.075}),
}


def material(spec: str | Material | dict, *, zone_axis: tuple[int, int, int] | None = None) -> Material:
    """The :class:`Material` called ``spec``.

    Parameters
    ----------
    spec : str, Material or dict
        A name of :data:`KNOWN`, an element with a cubic reference state in ASE
        (fcc, bcc or diamond), a Material, or :meth:`Material.to_dict`'s form.
    zone_axis : three int, optional
        Another zone axis than the material's default [110].

    Returns
    -------
    Material
        The material, with ``zone_axis`` where given.

    Raises
    ------
    ValueError
        For a name that is neither known nor an element with a cubic ASE reference
        state; the message lists the known names.
    """
    from dataclasses import replace

    if isinstance(spec, Material):
        out = spec
    elif isinstance(spec, dict):
        out = Material.from_dict(spec)
    elif isinstance(spec, str) and spec in KNOWN:
        out = KNOWN[spec]
    elif isinstance(spec, str) and spec in atomic_numbers:
        from ase.data import reference_states

        ref = reference_states[atomic_numbers[spec]] or {}
        if ref.get("symmetry") not in ("fcc", "bcc", "diamond"):
            raise ValueError(
                f"material {spec!r}: ASE's reference state is {ref.get('symmetry')!r}, not a cubic "
                "fcc, bcc or diamond crystal; describe it with atomtools.Material(...)"
            )
        out = Material(name=spec, structure=ref["symmetry"], symbols=(spec,), a=float(ref["a"]))
    else:
        raise ValueError(
            f"unknown material {spec!r}: expected one of {sorted(KNOWN)}, an element with a cubic "
            "ASE reference state (e.g. 'Pd'), or an atomtools.Material"
        )
    return replace(out, zone_axis=tuple(zone_axis)) if zone_axis is not None else out

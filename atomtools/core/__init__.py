"""The pure core: crystals, structures, ground truth, imaging physics and scores.

No files, no network, no global state, no PyTorch: arrays, tables and ``ase.Atoms``
in, arrays, tables and ``ase.Atoms`` out. Every random draw comes from an explicit
generator. Modules: :mod:`materials`, :mod:`lattice`, :mod:`structures` (particles; :mod:`cell`,
the simulation cell around them), :mod:`tables`,
:mod:`labels`, :mod:`chords`, :mod:`metrics`; imaging by subject: :mod:`optics`,
:mod:`noise`, :mod:`frames` (the frame and pixel-size checks, resampling), :mod:`spectra`,
:mod:`dose` (the dose and gain a frame's shot noise implies), gathered in :mod:`imaging`.
"""

from . import (
    cell,
    chords,
    dose,
    frames,
    imaging,
    labels,
    lattice,
    materials,
    metrics,
    noise,
    optics,
    spectra,
    structures,
    tables,
)

__all__: list[str] = []  # a namespace: the modules are the interface

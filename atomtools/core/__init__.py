"""The pure core: crystals, structures, ground truth, imaging physics and scores.

No files, no network, no global state, no PyTorch: arrays, tables and ``ase.Atoms``
in, arrays, tables and ``ase.Atoms`` out. Every random draw comes from an explicit
generator. Modules: :mod:`materials`, :mod:`structures`, :mod:`tables`,
:mod:`labels`, :mod:`chords`, :mod:`metrics`; imaging by subject: :mod:`optics`,
:mod:`noise`, :mod:`frames` (the frame and pixel-size checks, resampling), :mod:`spectra`,
:mod:`dose` (the dose and gain a frame's shot noise implies), gathered in :mod:`imaging`.
"""

__all__: list[str] = []  # a namespace: import the modules themselves

"""The pure core: crystals, structures, ground truth, imaging physics and scores.

No files, no network, no global state, no PyTorch: arrays, tables and ``ase.Atoms``
in, arrays, tables and ``ase.Atoms`` out. Every random draw comes from an explicit
generator. Modules: :mod:`materials`, :mod:`structures`, :mod:`tables`,
:mod:`labels`, :mod:`imaging`, :mod:`metrics`.
"""

__all__: list[str] = []  # a namespace: import the modules themselves

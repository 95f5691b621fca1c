"""atomtools: reproducible HRTEM simulation, 3D column retrieval and tomography for nanoparticles.

The package is organized in layers (see ``../shared/DESIGN.md``): a pure core
(:mod:`structures`, :mod:`labels`, :mod:`imaging`, :mod:`metrics`, :mod:`models`),
engines (:mod:`simulate`, :mod:`train`, :mod:`columns`, :mod:`reconstruct`) and edges
(:mod:`data`, :mod:`store`, :mod:`pipeline`, :mod:`cli`, :mod:`plotting`).

Submodules load on first use, so ``import atomtools`` stays fast; the names users need
are re-exported here.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("atomtools")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

_SUBMODULES = (
    "baseline",
    "columns",
    "data",
    "evaluate",
    "imaging",
    "labels",
    "metrics",
    "models",
    "pipeline",
    "plotting",
    "profiles",
    "reconstruct",
    "simulate",
    "store",
    "structures",
    "train",
)

#: public name -> submodule that defines it
_NAMES = {
    "ParticleSpec": "structures",
    "build": "structures",
    "ceo2": "structures",
    "Optics": "imaging",
    "SimulationConfig": "simulate",
    "make_dataset": "simulate",
    "open_dataset": "store",
    "fetch": "data",
    "retrieve": "columns",
    "to_atoms": "reconstruct",
}

__all__ = ["__version__", *_SUBMODULES, *_NAMES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'atomtools' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

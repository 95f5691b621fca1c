"""atomtools: reproducible HRTEM simulation, 3D column retrieval and tomography for nanoparticles.

The package is organized in layers; imports only go downward (``ARCHITECTURE.md``,
checked by ``tests/test_architecture.py``):

1. :mod:`utils`: atomic writes, progress bars;
2. :mod:`core`: pure crystals, structures, ground truth, imaging physics, scores;
3. shared engines' foundations: :mod:`models` (networks and weights files),
   :mod:`storage` (the dataset store), :mod:`data` (manifest and pooch), :mod:`readers`
   (every reader of microscope files: frame series and tilt series);
4. shared engines: :mod:`simulation` (abTEM, Dask), :mod:`training` (the one loop),
   :mod:`inference` (the one tiled inference);
5. the works: :mod:`columns` (atoms per column from one HRTEM frame), :mod:`tomo`
   (missing-wedge tomography), :mod:`localize` (atoms of any crystal: segmentation,
   positions, denoising);
6. edges: :mod:`registry` (the notebooks), :mod:`pipeline`, :mod:`provenance`,
   :mod:`plotting`, :mod:`cli`.

Submodules load on first use, so ``import atomtools`` stays fast; the names users call
are re-exported here, flat.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("atomtools")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

_SUBMODULES = (
    "cli",
    "columns",
    "core",
    "data",
    "inference",
    "io",
    "localize",
    "models",
    "pipeline",
    "plotting",
    "provenance",
    "readers",
    "registry",
    "simulation",
    "storage",
    "tomo",
    "training",
    "utils",
)

#: public name -> module that defines it
_NAMES = {
    "Material": "core.materials",
    "material": "core.materials",
    "ParticleSpec": "core.structures",
    "ParticleRanges": "core.structures",
    "build": "core.structures",
    "ceo2": "core.structures",
    "column_table": "core.labels",
    "Optics": "core.imaging",
    "SimulationConfig": "simulation",
    "make_dataset": "simulation",
    "open_dataset": "storage",
    "fetch": "data",
    "predict_tiled": "inference",
    "fit": "training",
    "Task": "training",
    "load_model": "models",
    "retrieve": "columns",
    "load_retriever": "columns",
    "train_unet": "columns",
    "to_atoms": "columns.reconstruct",
    "run_series": "columns.series",
    "read_frames": "readers",
    "find_atoms": "localize",
    "make_library": "simulation",
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

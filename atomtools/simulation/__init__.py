"""Simulation: the abTEM engine, the HRTEM dataset recipe, and scale-out on Dask.

- :mod:`engine`: exit waves and HRTEM images of any ``ase.Atoms`` under any optics;
- :mod:`hrtem`: the HRTEM dataset recipe (particles of a material, optics and dose
  ranges, ground truth) written to the dataset store;
- :mod:`independent`: a test set built and imaged by other code than the training set;
- :mod:`scale`: runs tasks here or on a Dask cluster, writing results as they arrive;
- :mod:`stem`: HAADF-STEM images through abTEM's probe (incoherent model, full multislice);
- :mod:`library`: the atom-segmentation library of many crystals, STEM and HRTEM.
"""

from . import engine, hrtem, independent, insitu, library, scale, stem
from .engine import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .hrtem import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .independent import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .library import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .scale import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .stem import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*engine.__all__, *hrtem.__all__, *independent.__all__, *library.__all__, *scale.__all__, *stem.__all__]

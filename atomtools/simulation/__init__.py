"""Simulation: the abTEM engine, the HRTEM dataset recipe, and scale-out on Dask.

- :mod:`engine`: exit waves and HRTEM images of any ``ase.Atoms`` under any optics;
- :mod:`hrtem`: the HRTEM dataset recipe (particles of a material, optics and dose
  ranges, ground truth) written to the dataset store;
- :mod:`independent`: a test set built and imaged by other code than the training set;
- :mod:`scale`: runs tasks here or on a Dask cluster, writing results as they arrive.
"""

from . import engine, hrtem, independent, scale
from .engine import *  # noqa: F403 - each module's public names, as its __all__ lists them
from .hrtem import *  # noqa: F403 - each module's public names, as its __all__ lists them
from .independent import *  # noqa: F403 - each module's public names, as its __all__ lists them
from .scale import *  # noqa: F403 - each module's public names, as its __all__ lists them

__all__ = [*engine.__all__, *hrtem.__all__, *independent.__all__, *scale.__all__]

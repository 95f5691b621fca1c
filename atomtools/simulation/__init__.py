"""Simulation: the abTEM engine, the HRTEM dataset recipe, and scale-out on Dask.

- :mod:`engine`: exit waves and HRTEM images of any ``ase.Atoms`` under any optics;
- :mod:`hrtem`: the HRTEM dataset recipe (particles of a material, optics and dose
  ranges, ground truth) written to the dataset store;
- :mod:`scale`: runs tasks here or on a Dask cluster, writing results as they arrive.
"""

from .engine import configure_abtem, exit_waves, images_from_exit_waves, reference_image
from .hrtem import SimulationConfig, StructureTask, fitted_build, make_dataset, sample_task, simulate_structure, versions
from .scale import run_tasks

__all__ = [
    "configure_abtem",
    "exit_waves",
    "images_from_exit_waves",
    "reference_image",
    "SimulationConfig",
    "StructureTask",
    "sample_task",
    "fitted_build",
    "simulate_structure",
    "make_dataset",
    "versions",
    "run_tasks",
]

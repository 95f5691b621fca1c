"""Training: one loop for every network (:func:`fit` runs any :class:`Task`), and calibration."""

from .calibration import fit_temperature
from .loop import OptimizerSpec, Task, device, distributed, fit, write_history

__all__ = ["Task", "OptimizerSpec", "fit", "distributed", "device", "write_history", "fit_temperature"]

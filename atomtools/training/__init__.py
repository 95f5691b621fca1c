"""Training: one loop for every network (:func:`fit` runs any :class:`Task`), and calibration."""

from . import calibration, loop
from .calibration import *  # noqa: F403 - each module's public names, as its __all__ lists them
from .loop import *  # noqa: F403 - each module's public names, as its __all__ lists them

__all__ = [*loop.__all__, *calibration.__all__]

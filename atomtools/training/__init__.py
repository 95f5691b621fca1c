"""Training: one loop for every network (:func:`fit` runs any :class:`Task`), calibration, augmentation."""

from . import augment, calibration, loop
from .augment import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .calibration import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .loop import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*augment.__all__, *calibration.__all__, *loop.__all__]

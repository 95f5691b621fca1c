"""Neural networks (pure PyTorch modules) and their weights files.

Networks are built from a frozen config dataclass and know nothing of files or
training; :mod:`atomtools.models.io` saves and loads them (``weights_only=True``)
with their metadata and writes model cards.
"""

from . import counter, io, rrdb, unet, unrolled
from .counter import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .io import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .rrdb import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .unet import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .unrolled import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*counter.__all__, *io.__all__, *rrdb.__all__, *unet.__all__, *unrolled.__all__]

"""Figures of the notebooks (matplotlib), one function per figure, plus saving.

Every function returns the ``matplotlib.figure.Figure`` it drew; :func:`save` writes
it as PNG through a temporary file, with the run's provenance in a footer line and in
the PNG's metadata. Images are shown with ``origin="lower"`` so that y points up, in
the physical coordinates [Å] of :mod:`atomtools.core.labels`. :func:`notebook_style`
keeps the figures inside committed notebooks small (JPEG at screen resolution).

One module per subject, every public name importable from here:

- :mod:`.style`: :func:`save`, :func:`notebook_style`, :func:`class_cmap` and the shared
  helpers;
- :mod:`.columns`: work 1, atoms per column from one HRTEM frame;
- :mod:`.series`: work 1 applied to in-situ series;
- :mod:`.tomo`: work 2, missing-wedge tomography;
- :mod:`.localize`: work 3, atoms of any crystal.
"""

from . import columns, localize, series, style, tomo
from .columns import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .localize import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .series import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .style import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .tomo import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*columns.__all__, *localize.__all__, *series.__all__, *style.__all__, *tomo.__all__]

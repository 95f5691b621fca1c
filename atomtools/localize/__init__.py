"""Work 3: atom segmentation, localization and denoising on any crystal (TEMImageNet / AtomSegNet).

After Lin, Zhang, Wang, Yang, Xin, Sci. Rep. 11, 5386 (2021): a U-Net trained on the
simulated library of :mod:`atomtools.simulation.library` segments the atomic columns
of HAADF-STEM and HRTEM frames, denoises and deblurs them (:mod:`.atoms`:
:func:`segment`, :func:`find_atoms`; :mod:`.frames`: grey, normalized, flattened;
:mod:`.fitting`: Gaussian refinement); :mod:`.task` trains it on the shared loop;
:mod:`.baseline` is 2D Gaussian fitting with atomap; :mod:`.evaluation` scores both
on crystals the network never saw.
"""

from . import atoms, baseline, evaluation, fitting, frames, task
from .atoms import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .baseline import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .evaluation import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .task import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*atoms.__all__, *baseline.__all__, *evaluation.__all__, *task.__all__]

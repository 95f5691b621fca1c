"""Work 2: missing-wedge tomography (Ding, Liu, Zhang, Xin, Sci. Rep. 9, 12803 (2019)).

Parallel-beam 2D operators and their conventions (:mod:`.operators`), classical
reconstructions (:mod:`.classical`: FBP, SART, SIRT, TV), phantoms (:mod:`.phantoms`),
sinograms with a missing wedge (:mod:`.sinograms`), the two GANs' training
(:mod:`.task`), :func:`reconstruct` and :func:`reconstruct_volume`
(:mod:`.reconstruction`), tilt-series files (read by :mod:`atomtools.readers`; :mod:`.io`
re-exports them for older code) and the evaluation (:mod:`.evaluation`). The project's own reconstruction, an
unrolled network on the measured projections, is :mod:`.unrolled`.
"""

from . import classical, evaluation, io, operators, phantoms, reconstruction, sinograms, task, unrolled
from .classical import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .operators import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .phantoms import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .reconstruction import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*classical.__all__, *operators.__all__, *phantoms.__all__, *reconstruction.__all__]

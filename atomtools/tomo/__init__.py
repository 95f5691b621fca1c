"""Work 2: missing-wedge tomography (Ding, Liu, Zhang, Xin, Sci. Rep. 9, 12803 (2019)).

Parallel-beam 2D operators and their conventions (:mod:`.operators`), classical
reconstructions (:mod:`.classical`: FBP, SART, SIRT, TV), phantoms (:mod:`.phantoms`),
sinograms with a missing wedge (:mod:`.sinograms`), the two GANs' training
(:mod:`.task`), :func:`reconstruct` and :func:`reconstruct_volume`
(:mod:`.reconstruct`), tilt-series files (read by :mod:`atomtools.readers`, re-exported
here) and the evaluation (:mod:`.evaluation`). The project's own reconstruction, an
unrolled network on the measured projections, is :mod:`.unrolled`.
"""

from ..readers import TiltSeries, read_tilt_series, write_tilt_series
from .classical import check_sinogram, fbp, sart, sirt, tv
from .operators import Projector, full_angles, wedge_angles
from .phantoms import KINDS, TRAINING_KINDS, phantom
from .reconstruct import METHODS, reconstruct, reconstruct_volume

__all__ = [
    "check_sinogram",
    "fbp",
    "sart",
    "sirt",
    "tv",
    "TiltSeries",
    "read_tilt_series",
    "write_tilt_series",
    "Projector",
    "full_angles",
    "wedge_angles",
    "KINDS",
    "TRAINING_KINDS",
    "phantom",
    "METHODS",
    "reconstruct",
    "reconstruct_volume",
]

"""Compatibility: the readers of microscope files live in :mod:`atomtools.readers`.

This module only re-exports, for code and notebooks written against it:
:class:`~atomtools.readers.Frames`, :func:`~atomtools.readers.read_frames`,
:func:`~atomtools.readers.read_series`, :func:`~atomtools.readers.require_sampling`,
:func:`~atomtools.readers.recorded_optics`, :func:`~atomtools.readers.check_frames`,
:data:`~atomtools.readers.SUFFIXES` and :data:`~atomtools.readers.SAMPLING_RANGE` from
:mod:`atomtools.readers`, and the dose estimates (:func:`~atomtools.core.dose.estimate_dose`,
:func:`~atomtools.core.dose.estimate_counts_per_electron`,
:class:`~atomtools.core.dose.DoseEstimateWarning`) from :mod:`atomtools.core.dose`. New
code imports them from there.
"""

from __future__ import annotations

from .core.dose import DoseEstimateWarning, estimate_counts_per_electron, estimate_dose
from .readers import (
    SAMPLING_RANGE,
    SUFFIXES,
    Frames,
    check_frames,
    read_frames,
    read_series,
    recorded_optics,
    require_sampling,
)

__all__ = [
    "SUFFIXES",
    "SAMPLING_RANGE",
    "Frames",
    "DoseEstimateWarning",
    "read_frames",
    "read_series",
    "require_sampling",
    "recorded_optics",
    "check_frames",
    "estimate_counts_per_electron",
    "estimate_dose",
]

"""Compatibility: the tilt-series reader lives in :mod:`atomtools.readers` (:mod:`atomtools.readers.tilt`).

This module only re-exports, for code and notebooks written against it:
:class:`~atomtools.readers.TiltSeries`, :func:`~atomtools.readers.check_angles`,
:func:`~atomtools.readers.read_tilt_series`, :func:`~atomtools.readers.write_tilt_series`,
and ``SUFFIXES``, the file endings :func:`~atomtools.readers.read_tilt_series` reads
(:data:`atomtools.readers.TILT_SUFFIXES`). New code imports them from :mod:`atomtools.readers`.
"""

from __future__ import annotations

from ..readers import TILT_SUFFIXES as SUFFIXES
from ..readers import TiltSeries, check_angles, read_tilt_series, write_tilt_series

__all__ = ["SUFFIXES", "TiltSeries", "check_angles", "read_tilt_series", "write_tilt_series"]

"""Units of the files' axes: the one length and time table, unit strings made one, the pixel size a
file gives, and the plausibility check every pixel size passes.

Length units nm, µm/um, pm, Å/A (and m, mm) are converted to Å, time units to s; a unit
string is compared lower case with its Å and µ variants (the Ångström sign, the Greek mu,
an escaped ``\\u00B5``) made one (:func:`_norm_unit`). Both the frame readers
(:mod:`.frames`) and the tilt-series reader (:mod:`.tilt`) use them, as they do the MRC
cell check (:func:`_mrc_has_cell`: RosettaSciIO reports 1 nm per pixel when the header
has no cell) and the ImageJ TIFF pixel size (:func:`_imagej_pixel_size`).

Examples
--------
>>> _norm_unit("\u212b"), _norm_unit(" \u03bcm"), _LENGTH[_norm_unit("nm")]
('å', 'µm', 10.0)
>>> _imagej_pixel_size("micron", (2000, 1))  # 2000 pixels per µm
5.0
"""

from __future__ import annotations

import numpy as np

from ..core.frames import SAMPLING_RANGE, _check_plausible

__all__ = ["SAMPLING_RANGE"]

#: Length units, in Å (keys lower case, micro sign and Greek mu both accepted).
_LENGTH = {
    "m": 1e10,
    "mm": 1e7,
    "µm": 1e4,
    "um": 1e4,
    "micron": 1e4,
    "microns": 1e4,
    "micrometer": 1e4,
    "nm": 10.0,
    "nanometer": 10.0,
    "nanometers": 10.0,
    "pm": 0.01,
    "picometer": 0.01,
    "å": 1.0,
    "a": 1.0,
    "ang": 1.0,
    "angstrom": 1.0,
    "angstroms": 1.0,
}

#: Time units, in s.
_TIME = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "ms": 1e-3,
    "µs": 1e-6,
    "us": 1e-6,
    "ns": 1e-9,
    "min": 60.0,
}

#: Unit strings that mean "none given": the scale is a number without a unit.
_NO_UNITS = ("", "<undefined>", "undefined", "none")

#: Unit strings of uncalibrated axes: the scale counts pixels.
_PIXELS = ("px", "pixel", "pixels")


def _norm_unit(units) -> str:
    """A unit string, lower case, with the Å and µ variants made one."""
    if units is None:
        return ""
    text = str(units).strip().replace("\\u00B5", "µ").replace("\\u00b5", "µ")
    return text.replace("\u212b", "\u00c5").replace("\u03bc", "\u00b5").lower()


def _mrc_has_cell(original: dict) -> bool:
    """Whether an MRC file's header sets a cell size (an FEI header, or ``Xlen`` and ``MX`` above 0).

    RosettaSciIO's ``original_metadata`` of the file; without a cell, rsciio reports 1 nm per
    pixel, which is no pixel size.
    """
    if original.get("fei_header") is not None:
        return True
    header = original.get("std_header") or {}
    try:
        return float(header.get("Xlen", 0)) > 0 and float(header.get("MX", 0)) > 0
    except (TypeError, ValueError):
        return False


def _imagej_pixel_size(unit, resolution) -> float | None:
    """The pixel size [Å] along one axis of an ImageJ TIFF, or None.

    Parameters
    ----------
    unit : str or None
        ImageJ's ``unit`` entry (``"nm"``, ``"micron"``, ``"\\u00B5m"``, ...).
    resolution : tuple of int
        A TIFF resolution tag (``XResolution`` or ``YResolution``) as the rational
        ``(numerator, denominator)``: ``numerator / denominator`` pixels per ``unit``.

    Returns
    -------
    float or None
        ``denominator / numerator`` in Å; None when ``unit`` is not a length of
        :data:`_LENGTH` or a term of the tag is not positive.
    """
    factor = _LENGTH.get(_norm_unit(unit))
    if factor is None or resolution is None:
        return None
    num, den = resolution
    if not (num > 0 and den > 0):
        return None
    return den / num * factor


def _axis_times(axis: dict) -> np.ndarray | None:
    """Times [s] along a navigation axis in time units, else None."""
    factor = _TIME.get(_norm_unit(axis.get("units")))
    if factor is None:
        return None
    if axis.get("axis") is not None:
        values = np.asarray(axis["axis"], dtype=np.float64)
    else:
        values = float(axis.get("offset") or 0.0) + float(axis.get("scale") or 1.0) * np.arange(int(axis["size"]))
    return values * factor


def _file_sampling(raw: dict, name: str) -> float | None:
    """The pixel size [Å] a file gives (checked: square within 1 %, plausible), or None; notes why in metadata."""
    if raw.get("sampling") is not None:
        value, found = raw["sampling"], raw.get("sampling_found", f"{raw['sampling']:.6g} Å")
        return _check_plausible(value, found, name)
    if "axes_sampling" not in raw:
        return None
    y_axis, x_axis, assumed = raw["axes_sampling"]
    values, found = [], []
    for axis in (y_axis, x_axis):
        unit = axis.get("units")
        scale = float(axis.get("scale") or 0.0)
        key = _norm_unit(unit)
        if key in _NO_UNITS:
            if assumed is None:
                raw["metadata"]["unitless_scale"] = [float(y_axis.get("scale") or 0), float(x_axis.get("scale") or 0)]
                return None
            key, unit = _norm_unit(assumed), assumed
            if key not in _LENGTH:
                raise ValueError(f"units must be a length unit ({', '.join(sorted(_LENGTH))}), got {assumed!r}")
        if key not in _LENGTH:
            if key not in _PIXELS:
                raw["metadata"]["axis_units"] = str(unit)
            return None
        values.append(scale * _LENGTH[key])
        found.append(f"{scale:.6g} {unit}")
    sy, sx = values
    if abs(sy - sx) > 0.01 * max(abs(sy), abs(sx)):
        raise ValueError(
            f"{name}: the pixels are not square: y {sy:.6g} Å ({found[0]}), x {sx:.6g} Å ({found[1]}); "
            "pass sampling= (Å per pixel) to use one value"
        )
    return _check_plausible(sx, found[1], name)

"""TIFF files for :func:`~atomtools.readers.read_frames`: read a chunk at a time, with their
pixel size, frame times and beam energy.

tifffile reads the file through ``aszarr`` (one chunk at a time); a file of several series
(pages written one by one) is stacked lazily, a series per frame. What is read where:
ImageJ ``unit`` and the resolution tags (:func:`~.units._imagej_pixel_size`, shared with the
tilt-series reader), ImageJ ``finterval``/``fps``; FEI ``Scan: PixelWidth`` and
``Beam: HV``. A truncated file (page data beyond its end, fewer images than ImageJ
announces) and tifffile's logged warnings of invalid or corrupt pages are refused, naming
the file.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from .metadata import _get, _json_subset, _unreadable
from .units import _LENGTH, _PIXELS, _imagej_pixel_size, _norm_unit

__all__: list[str] = []


def _open_tiff(path: Path, fmt: str) -> dict:
    import tifffile

    messages: list[str] = []
    handler = _Collect(messages)
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shapes = {tuple(s.shape) for s in tif.series}
            axes, shape, dtype = series.axes, tuple(series.shape), series.dtype
            multi = len(tif.series) > 1
            n_series = len(tif.series)
            size = path.stat().st_size
            # a truncated file: data that would end beyond the file
            for page in [tif.pages[0], tif.pages[-1]] if len(tif.pages) else []:
                ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if o]
                if ends and max(ends) > size:
                    raise ValueError(f"page data end at byte {max(ends)}, beyond the file's {size} bytes (truncated?)")
            if series.dataoffset is not None and series.dataoffset + series.nbytes > size:
                raise ValueError(
                    f"the image data end at byte {series.dataoffset + series.nbytes}, beyond the file's {size} bytes "
                    "(truncated?)"
                )
            ij = dict(tif.imagej_metadata or {}) if tif.is_imagej else {}
            if ij.get("images") and int(ij["images"]) > int(
                np.prod([n for a, n in zip(axes, shape) if a not in "YXS"])
            ):
                raise ValueError(f"ImageJ metadata announce {ij['images']} images, the file holds fewer (truncated?)")
            resolution = None
            if "XResolution" in tif.pages[0].tags and "YResolution" in tif.pages[0].tags:
                resolution = (tif.pages[0].tags["YResolution"].value, tif.pages[0].tags["XResolution"].value)
            fei = tif.fei_metadata if tif.is_fei else None
        if multi and len(shapes) > 1:
            raise ValueError(f"its pages have different shapes {sorted(shapes)}; frames of a series share one shape")
        bad = [m for m in messages if "invalid" in m.lower() or "corrupt" in m.lower() or "truncat" in m.lower()]
        if bad:
            raise ValueError("; ".join(bad[:3]))
        if multi:
            parts = [
                da.from_delayed(dask.delayed(_tiff_series)(path, k), shape=shape, dtype=dtype) for k in range(n_series)
            ]
            data, axes, shape = da.stack(parts), "I" + axes, (n_series,) + shape
        else:
            import zarr

            store = tifffile.imread(path, aszarr=True, series=0, level=0)
            data = da.from_zarr(zarr.open(store, mode="r"))
    except Exception as err:
        raise _unreadable(path, fmt, err) from err
    finally:
        logger.removeHandler(handler)

    colour = None
    if "S" in axes:
        colour = axes.index("S")
    keep = [i for i, (a, n) in enumerate(zip(axes, shape)) if n != 1 or a in "YXS"]
    if len(keep) < len(shape):
        data = data.reshape(tuple(shape[i] for i in keep))
        colour = None if colour is None else keep.index(colour)
    metadata = {"tiff_axes": axes, "tiff_shape": list(shape)}
    out = {"data": data, "colour": colour, "metadata": metadata, "energy": None, "times": None}
    n_frames = int(np.prod([shape[i] for i in keep if axes[i] not in "YXS"])) if keep else 1
    if ij:
        metadata["imagej"] = _json_subset({k: v for k, v in ij.items() if k not in ("Ranges", "LUTs", "Labels")})
        unit = ij.get("unit")
        key = _norm_unit(unit)
        if key in _LENGTH and resolution is not None:
            sy, sx = (_imagej_pixel_size(unit, tag) for tag in resolution)
            if sy is not None and sx is not None:
                nx, dx = resolution[1]
                if abs(sy - sx) > 0.01 * max(sy, sx):
                    raise ValueError(
                        f"{path.name}: the pixels are not square: y {sy:.6g} Å, x {sx:.6g} Å (ImageJ unit {unit!r}); "
                        "pass sampling= (Å per pixel) to use one value"
                    )
                out["sampling"], out["sampling_found"] = sx, f"{dx / nx:.6g} {unit}"
                metadata["axis_units"] = str(unit)
        elif unit is not None and key not in _LENGTH and key not in _PIXELS:
            metadata["axis_units"] = str(unit)
        interval = ij.get("finterval") or (1.0 / float(ij["fps"]) if ij.get("fps") else None)
        if interval and float(interval) > 0 and n_frames > 1:
            out["times"] = np.arange(n_frames) * float(interval)
    if fei:
        metadata["fei"] = _json_subset(fei)
        width = _get(fei, "Scan.PixelWidth") or _get(fei, "EScan.PixelWidth")
        try:
            width = float(width)
        except (TypeError, ValueError):
            width = None
        if width and width > 0 and "sampling" not in out:
            out["sampling"], out["sampling_found"] = width * 1e10, f"{width:.6g} m (FEI PixelWidth)"
        hv = _get(fei, "Beam.HV") or _get(fei, "EBeam.HV")
        try:
            out["energy"] = float(hv) if hv and float(hv) > 0 else None  # volts -> eV
        except (TypeError, ValueError):
            pass
    return out


class _Collect(logging.Handler):
    """Keeps tifffile's warnings (an invalid page offset is only logged)."""

    def __init__(self, sink: list[str]):
        super().__init__(logging.WARNING)
        self.sink = sink
        self.thread = threading.get_ident()  # files opened at once by other threads log here too

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.sink.append(record.getMessage())


def _tiff_series(path: Path, k: int) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(path, series=k)
    except Exception as err:
        raise _unreadable(path, "TIFF", err) from err

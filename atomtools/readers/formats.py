"""The formats :func:`~atomtools.readers.read_frames` reads: the suffix -> reader dispatch table
and one ``_open_<format>`` per format, each returning the raw dict of an opened file.

:func:`_open` looks a file's suffix up in :data:`SUFFIXES` (its format's name) and opens it
with RosettaSciIO (:data:`_RSCIIO`) or the reader :data:`_OPENERS` names. A reader returns
``{"data": <Dask array, 2D or 3D>, "metadata": {...}, "energy": eV or None, "times": s or
None}`` and optionally ``colour`` (the axis of colour channels, when ``data`` has one),
``sampling`` [Å] with ``sampling_found`` (the value and unit in the file), or
``axes_sampling`` (the y and x axes, for :func:`~.units._file_sampling`). Nothing is read
whole: only the header, and data when asked for.

Where each format keeps what:

========================  ==============================  ====================================================
suffix                    read by                         pixel size; frame times; beam energy
========================  ==============================  ====================================================
``.dm3``, ``.dm4``        rsciio.digitalmicrograph        the dimension calibrations; a time axis;
                                                          ``Microscope Info: Voltage``
``.emd``                  rsciio.emd (Velox, Berkeley)    the signal axes (Velox: a signal per detector,
                                                          chosen by ``signal=``); a time axis; instrument
``.ser`` (+ ``.emi``)     rsciio.tia                      the signal axes; a time axis (rsciio reads a
                                                          ``.ser`` as one chunk: the first frame read
                                                          reads all)
``.mrc``                  rsciio.mrc                      the header cell (``Xlen/MX``), only when set
                                                          (rsciio reports 1 nm when it is not)
``.hspy``, ``.hdf5``      rsciio.hspy                     the signal axes; a navigation axis in s or ms
``.tif``, ``.tiff``       tifffile (``aszarr``, a chunk   ImageJ ``unit`` and resolution tags, ImageJ
                          at a time)                      ``finterval``/``fps``; FEI ``Scan: PixelWidth``,
                                                          FEI ``Beam: HV``
``.png``, ``.jpg``        imageio (grey, 8 or 16 bit)     none: pass ``sampling=``
``.npy``                  numpy (``mmap_mode="r"``,       none
                          ``allow_pickle=False``)
========================  ==============================  ====================================================
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ..core.frames import to_grey
from .metadata import FileFormatError, _get, _json_subset, _mapped_metadata, _unreadable
from .tiff import _open_tiff
from .units import _axis_times, _mrc_has_cell

__all__ = ["SUFFIXES"]

#: File endings :func:`~atomtools.readers.read_frames` reads, and the format each names (a new format: its suffix
#: here, its reader in ``_RSCIIO`` or ``_OPENERS``).
SUFFIXES = {
    ".dm3": "Gatan DigitalMicrograph",
    ".dm4": "Gatan DigitalMicrograph",
    ".emd": "EMD (Velox or Berkeley)",
    ".ser": "FEI TIA",
    ".mrc": "MRC",
    ".hspy": "HyperSpy HDF5",
    ".hdf5": "HyperSpy HDF5",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".npy": "NumPy .npy",
}

#: The RosettaSciIO reader of each suffix, and its options.
_RSCIIO = {
    ".dm3": ("rsciio.digitalmicrograph", {}),
    ".dm4": ("rsciio.digitalmicrograph", {}),
    ".emd": ("rsciio.emd", {"select_type": "image"}),
    ".ser": ("rsciio.tia", {}),
    ".mrc": ("rsciio.mrc", {}),
    ".hspy": ("rsciio.hspy", {}),
    ".hdf5": ("rsciio.hspy", {}),
}

#: ITU-R BT.601 luma weights (R, G, B).

#: Where the original metadata of a reader names the detector, first match wins.
_DETECTOR_PATHS = (
    "ImageList.TagGroup0.ImageTags.QuickSaved.Temp-Tags.Detector",
    "ImageList.TagGroup0.ImageTags.Acquisition.Device.Name",
    "ImageList.TagGroup0.ImageTags.DataBar.Device Name",
    "Camera Model",
)


def _check_path(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path.name}: unsupported file type {suffix!r}; supported: {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")


def _open(path: Path, *, signal, units, rgb) -> dict:
    """Open a file lazily: a dict with ``data`` (Dask, 2D or 3D), ``format``, ``axes_sampling`` (how to find the
    pixel size), ``times``, ``energy`` and ``metadata``."""
    if rgb not in (None, "luminance"):
        raise ValueError(f"rgb must be None (refuse colour images) or 'luminance', got {rgb!r}")
    suffix = path.suffix.lower()
    fmt = SUFFIXES[suffix]
    if suffix in _RSCIIO:
        raw = _open_rsciio(path, fmt, signal, units)
    else:
        if signal not in (None, 0):
            raise ValueError(f"{path.name}: signal= chooses among the signals of a file with several; {fmt} has one")
        raw = _OPENERS[suffix](path, fmt)
    raw["format"] = fmt
    raw["metadata"] = {"format": fmt, **raw["metadata"]}
    raw["data"] = _grey(raw.pop("data"), raw.pop("colour", None), rgb, path.name, raw["metadata"])
    return raw


def _grey(data: da.Array, colour: int | None, rgb: str | None, name: str, metadata: dict) -> da.Array:
    """Colour data converted to grey (:func:`atomtools.core.frames.to_grey`), or refused."""
    grey = to_grey(data, rgb=rgb, name=name, colour_axis=colour)
    if grey.ndim < data.ndim:
        n = data.shape[data.ndim - 1 if colour is None else colour]
        how = "rgb='luminance' (0.299 R + 0.587 G + 0.114 B)" if rgb and n >= 3 else "its first channel (grey)"
        metadata["converted"] = f"{how} from {n} channels"
    return grey


def _open_rsciio(path: Path, fmt: str, signal, units) -> dict:
    module, options = _RSCIIO[path.suffix.lower()]
    try:
        reader = importlib.import_module(module).file_reader
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records = reader(str(path), lazy=True, **options)
        if isinstance(records, dict):
            records = [records]
        records = [r for r in records if r.get("data") is not None]
        if not records:
            raise ValueError("the file holds no data")
        infos = [_record_info(r) for r in records]
    except Exception as err:
        raise _unreadable(path, fmt, err) from err

    listing = "; ".join(f"[{i}] {info['title']!r} {info['shape']}" for i, info in enumerate(infos))
    if signal is None:
        choice = next((i for i, info in enumerate(infos) if info["image"]), None)
        if choice is None:
            raise ValueError(f"{path.name} holds no image or image series; its signals: {listing}")
    elif isinstance(signal, (int, np.integer)) and not isinstance(signal, bool):
        if not -len(records) <= signal < len(records):
            raise ValueError(f"{path.name}: no signal {signal}; its signals: {listing}")
        choice = int(signal) % len(records)
    elif isinstance(signal, str):
        found = [i for i, info in enumerate(infos) if signal.lower() in info["title"].lower()]
        if not found:
            raise ValueError(f"{path.name}: no signal whose title contains {signal!r}; its signals: {listing}")
        choice = found[0]
    else:
        raise ValueError(f"signal must be an index or a title substring, got {signal!r}")
    record, info = records[choice], infos[choice]

    data, axes = info["data"], info["axes"]
    colour = None
    if data.dtype.names:  # rsciio's RGB(A) images: a structured dtype with fields R, G, B (, A)
        data = da.stack([data[n] for n in data.dtype.names], axis=-1)
        colour = data.ndim - 1
    grey_ndim = data.ndim - (colour is not None)
    if grey_ndim not in (2, 3):  # refused by the shape checks of Frames, naming the shape
        return {"data": data, "colour": colour, "metadata": {"title": info["title"]}, "energy": None, "times": None}
    file_md = _mapped_metadata(record)
    original = record.get("original_metadata") or {}
    y_axis, x_axis = axes[-2], axes[-1]
    if path.suffix.lower() == ".mrc" and not _mrc_has_cell(original):
        y_axis, x_axis = dict(y_axis, units="px"), dict(x_axis, units="px")  # rsciio's 1 nm placeholder
    metadata = {
        "title": info["title"],
        "signal_index": choice,
        "axes": [
            _json_subset({k: a.get(k) for k in ("name", "size", "scale", "offset", "units", "navigate")}) for a in axes
        ],
        "file_metadata": _json_subset(file_md),
    }
    others = [
        {"index": i, "title": other["title"], "shape": list(other["shape"])}
        for i, other in enumerate(infos)
        if i != choice
    ]
    if others:
        metadata["other_signals"] = others
    detector = _get(file_md, "Acquisition_instrument.TEM.detector") or next(
        (v for p in _DETECTOR_PATHS if isinstance(v := _get(original, p), str) and v), None
    )
    if path.suffix.lower() == ".emd" and info["title"]:
        detector = detector or info["title"]  # Velox titles a signal by its detector
    if detector:
        metadata["detector"] = str(detector)
    defocus = _get(original, "Optics.Defocus")  # Velox: metres, negative underfocus
    try:
        if defocus is not None and np.isfinite(float(defocus)):
            metadata["optics"] = {"defocus": -float(defocus) * 1e10}  # [Å], positive underfocus (abTEM)
    except (TypeError, ValueError):
        pass
    adu = _get(original, "ADUs Per Electron Bin1x")
    if adu is not None and float(adu) > 0 and float(adu) != 1.0:
        metadata["counts_per_electron"] = float(adu)
    energy = None
    for where in ("Acquisition_instrument.TEM.beam_energy", "Acquisition_instrument.SEM.beam_energy"):
        value = _get(file_md, where)
        if value is not None:
            try:
                energy = float(value) * 1e3  # keV -> eV
            except (TypeError, ValueError):
                continue
            if energy > 0:
                break
            energy = None
    times = _axis_times(axes[0]) if grey_ndim == 3 else None
    return {
        "data": data,
        "colour": colour,
        "metadata": metadata,
        "energy": energy,
        "times": times,
        "axes_sampling": (y_axis, x_axis, units),
    }


def _record_info(record: dict) -> dict:
    """A record's data with size-1 axes dropped, its axes in array order, title, shape, and whether it is an image."""
    data = record["data"]
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks="auto")
    axes = list(record.get("axes") or [])
    if len(axes) == data.ndim and all("index_in_array" in a for a in axes):
        axes = sorted(axes, key=lambda a: a["index_in_array"])
    if len(axes) != data.ndim:
        axes = [{"size": n, "navigate": i < data.ndim - 2} for i, n in enumerate(data.shape)]
    keep = [i for i, n in enumerate(data.shape) if n != 1]
    if len(keep) < data.ndim:
        data = data.reshape(tuple(data.shape[i] for i in keep))
        axes = [axes[i] for i in keep]
    signal_axes = [i for i, a in enumerate(axes) if not a.get("navigate", False)]
    image = data.ndim in (2, 3) and signal_axes[-2:] == [data.ndim - 2, data.ndim - 1] and len(signal_axes) >= 2
    title = str(_get(record.get("metadata") or {}, "General.title") or "")
    return {"data": data, "axes": axes, "title": title, "shape": tuple(int(n) for n in data.shape), "image": image}


def _open_npy(path: Path, fmt: str) -> dict:
    from rsciio.utils.file import memmap_distributed

    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if not isinstance(array, np.memmap):
            raise ValueError("not a single array that can be memory-mapped")
        shape, dtype, offset = array.shape, array.dtype, array.offset
        order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
        del array
        # each chunk maps the file itself (dask's from_array would copy a memory map whole)
        chunks = (1,) + shape[1:] if len(shape) == 3 else (shape if len(shape) == 2 else "auto")
        data = memmap_distributed(str(path), dtype=dtype, offset=offset, shape=shape, order=order, chunks=chunks)
    except Exception as err:
        raise _unreadable(path, fmt, err) from err
    return {"data": data, "metadata": {"dtype": str(dtype)}, "energy": None, "times": None}


def _open_image(path: Path, fmt: str) -> dict:
    import imageio.v3 as iio

    try:
        props = iio.improps(path)
        shape, dtype = tuple(props.shape), np.dtype(props.dtype)
    except Exception as err:
        raise _unreadable(path, fmt, err) from err
    data = da.from_delayed(dask.delayed(_read_image, pure=True)(path, fmt, shape, dtype), shape=shape, dtype=dtype)
    colour = len(shape) - 1 if len(shape) == 3 and shape[-1] in (2, 3, 4) else None
    return {"data": data, "colour": colour, "metadata": {"dtype": str(dtype)}, "energy": None, "times": None}


def _read_image(path: Path, fmt: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    import imageio.v3 as iio

    try:
        image = np.asarray(iio.imread(path))
    except Exception as err:
        raise _unreadable(path, fmt, err) from err
    if image.shape != shape:
        raise FileFormatError(f"{path.name}: decoded shape {image.shape} differs from the header's {shape}")
    return image.astype(dtype, copy=False)


#: The reader of each suffix RosettaSciIO does not read: ``reader(path, format name) -> raw dict``.
_OPENERS = {
    ".tif": _open_tiff,
    ".tiff": _open_tiff,
    ".png": _open_image,
    ".jpg": _open_image,
    ".jpeg": _open_image,
    ".npy": _open_npy,
}

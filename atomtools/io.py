"""Microscope files at the edge: one lazy frame series out of DM, EMD, SER, MRC, HyperSpy, TIFF, PNG and NumPy files.

:func:`read_frames` reads one file and :func:`read_series` a folder (or list) of files into
:class:`Frames`: a lazy ``(n_frames, y, x)`` Dask array with its pixel size [Å], frame times
[s], beam energy [eV] and a JSON-able subset of the file's metadata. Nothing is read whole
up front: a multi-GB movie is opened, its metadata parsed, one pixel of its last frame read
(a cheap check that it is not truncated), and frames are read when asked for
(:meth:`Frames.frame`, iteration, or Dask on :attr:`Frames.data`).

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

Length units nm, µm/um, pm, Å/A (and m, mm) are converted to Å; an axis with a scale but no
units (HyperSpy files written without them, e.g. atomap's test images) gives no pixel size
unless ``units=`` names the unit (``metadata["unitless_scale"]`` keeps the scale and
:func:`require_sampling`'s message shows it). A pixel size outside 0.001..1000 Å is refused
as implausible, naming the value and unit found. A colour image (RGB/RGBA, or grey + alpha)
is refused with a message to convert it to grey, or converted on request with
``rgb="luminance"`` (ITU-R BT.601 weights 0.299, 0.587, 0.114; alpha dropped).

:func:`check_frames` finds NaN or infinite frames in one chunked pass; :func:`estimate_dose`
gives the recorded dose [e/Å²] of a frame, estimating the detector's counts per electron from
shot noise when it is not known (:func:`estimate_counts_per_electron`).
"""

from __future__ import annotations

import importlib
import logging
import math
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

import dask
import dask.array as da
import numpy as np

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

#: File endings :func:`read_frames` reads, and the format each names.
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

#: Plausible pixel sizes [Å]: anything outside is refused as a unit mistake.
SAMPLING_RANGE = (0.001, 1000.0)

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

#: ITU-R BT.601 luma weights (R, G, B).
_LUMA = np.array([0.299, 0.587, 0.114])

#: Where the original metadata of a reader names the detector, first match wins.
_DETECTOR_PATHS = (
    "ImageList.TagGroup0.ImageTags.QuickSaved.Temp-Tags.Detector",
    "ImageList.TagGroup0.ImageTags.Acquisition.Device.Name",
    "ImageList.TagGroup0.ImageTags.DataBar.Device Name",
    "Camera Model",
)


class DoseEstimateWarning(UserWarning):
    """Why :func:`estimate_counts_per_electron` (or :func:`estimate_dose`) returned None."""


@dataclass(eq=False, repr=False)
class Frames:
    """A series of 2D frames, read lazily, with the pixel size and times the file gave.

    Parameters
    ----------
    data : dask.array.Array or array_like
        Frames ``(n_frames, y, x)`` of any real dtype; a single 2D image becomes one frame.
        A NumPy array is wrapped in a Dask array of one chunk per frame.
    sampling : float, optional
        Pixel size [Å], or None when unknown (:func:`require_sampling` then says so).
    times : array_like, optional
        Time of each frame [s], one per frame.
    energy : float, optional
        Beam energy [eV].
    source : str
        Where the frames came from (a file name), for messages.
    metadata : dict
        A JSON-able subset of the file's metadata: ``format``, ``axes`` (with their unit
        strings), ``title``, ``detector``, ``counts_per_electron`` where the file states it,
        ``file_metadata`` (the reader's metadata tree), ``other_signals``, ...

    Raises
    ------
    ValueError
        If ``data`` is not 2D or 3D (naming ``source`` and the shape), looks like a colour
        image (3 or 4 values in its last axis), is not real numbers, holds no frame; if
        ``sampling`` is not a number in :data:`SAMPLING_RANGE`; if ``times`` does not give
        one finite time per frame.

    Examples
    --------
    >>> frames = Frames(np.ones((2, 16, 16), np.uint16), sampling=0.5, times=[0.0, 0.1])
    >>> len(frames), frames.shape, frames.frame(1).dtype, round(frames.frame_rate, 6)
    (2, (2, 16, 16), dtype('float32'), 10.0)
    """

    data: da.Array
    _: KW_ONLY
    sampling: float | None = None
    times: np.ndarray | None = None
    energy: float | None = None
    source: str = "<memory>"
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.source = str(self.source)
        data = self.data
        if not isinstance(data, da.Array):
            array = np.asarray(data)
            chunks = (1,) + array.shape[1:] if array.ndim == 3 else array.shape
            data = da.from_array(array, chunks=chunks or None)
        if data.dtype.kind not in "iuf":
            raise ValueError(
                f"{self.source}: frames must be real numbers (integer or float), not {data.dtype}; "
                "convert complex or boolean data first"
            )
        if data.ndim >= 3 and data.shape[-1] in (3, 4) and data.shape[-2] > 4:
            raise ValueError(
                f"{self.source}: shape {data.shape} looks like a colour image (RGB/RGBA in the last axis); "
                "frames are grey: convert it to grey (e.g. its luminance), or read it with rgb='luminance'"
            )
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise ValueError(
                f"{self.source}: expected one 2D image or a series of them, got shape {data.shape}; "
                "a series is (frames, y, x)"
            )
        if data.shape[0] == 0 or data.shape[1] == 0 or data.shape[2] == 0:
            raise ValueError(f"{self.source}: no frames (shape {data.shape}); a series is (frames, y, x)")
        self.data = data
        if self.sampling is not None:
            self.sampling = _check_plausible(self.sampling, "Å", self.source, explicit=True)
        if self.times is not None:
            times = np.asarray(self.times, dtype=np.float64).ravel()
            if len(times) != data.shape[0]:
                raise ValueError(f"{self.source}: {len(times)} times for {data.shape[0]} frames; give one per frame")
            if not np.all(np.isfinite(times)):
                raise ValueError(f"{self.source}: the frame times hold NaN or infinite values")
            self.times = times
        if self.energy is not None:
            energy = float(self.energy)
            if not (np.isfinite(energy) and energy > 0):
                raise ValueError(f"{self.source}: the beam energy must be positive [eV], got {self.energy!r}")
            self.energy = energy
        if not isinstance(self.metadata, dict):
            raise ValueError(f"{self.source}: metadata must be a dict, got {type(self.metadata).__name__}")

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.data.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_frames, y, x)``."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def frame_rate(self) -> float | None:
        """Frames per second: 1 / the median time step [Hz], or None without times (or one frame)."""
        if self.times is None or len(self.times) < 2:
            return None
        step = float(np.median(np.diff(self.times)))
        return 1.0 / step if step > 0 else None

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i``, read now, as float32.

        Parameters
        ----------
        i : int
            Frame index (negative counts from the end).

        Returns
        -------
        numpy.ndarray
            ``(y, x)`` float32.
        """
        n = self.n_frames
        if not -n <= int(i) < n:
            raise IndexError(f"{self.source}: frame {i} out of range; it has {n} frame(s)")
        return np.asarray(self.data[int(i)].compute(), dtype=np.float32)

    def select(self, frames) -> Frames:
        """The chosen frames (lazily), with their times.

        Parameters
        ----------
        frames : slice, int, tuple or list of int
            A slice; one index; ``(start, stop)``; or a list (array) of indices.

        Returns
        -------
        Frames
            The selection; ``metadata["frame_indices"]`` lists the chosen indices of the
            original series.
        """
        index = _selection(frames, self.n_frames, self.source)
        metadata = dict(self.metadata)
        before = metadata.get("frame_indices")
        metadata["frame_indices"] = [int(before[k]) if before else int(k) for k in index]
        if len(metadata.get("frame_files") or ()) == self.n_frames:
            metadata["frame_files"] = [metadata["frame_files"][k] for k in index]
        return Frames(
            self.data[index],
            sampling=self.sampling,
            times=None if self.times is None else self.times[index],
            energy=self.energy,
            source=self.source,
            metadata=metadata,
        )

    def __len__(self) -> int:
        return self.n_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.n_frames):
            yield self.frame(i)

    def __repr__(self) -> str:
        rate = self.frame_rate
        return (
            f"Frames({self.source!r}, shape={self.shape}, dtype={self.data.dtype}, sampling={self.sampling} Å"
            + (f", frame_rate={rate:.4g} Hz" if rate else "")
            + (f", energy={self.energy:g} eV" if self.energy else "")
            + ")"
        )


def read_frames(
    path: str | Path,
    *,
    sampling: float | None = None,
    frames=None,
    times=None,
    frame_interval: float | None = None,
    signal: int | str | None = None,
    units: str | None = None,
    rgb: str | None = None,
) -> Frames:
    """Read the frames of a microscope file lazily, with their pixel size and times.

    Parameters
    ----------
    path : str or Path
        A file with a suffix of :data:`SUFFIXES` (see the module's table).
    sampling : float, optional
        Pixel size [Å]; overrides the file's. Without it and without one in the file,
        ``Frames.sampling`` is None (see :func:`require_sampling`).
    frames : slice, int, tuple or list of int, optional
        Frames to keep, chosen lazily: a slice, one index, ``(start, stop)``, or a list of
        indices. Default: all.
    times : array_like, optional
        Frame times [s]; one per frame of the file (chosen with ``frames``) or one per chosen
        frame. Override the file's.
    frame_interval : float, optional
        Time between frames [s]: frame ``k`` of the file is at ``k * frame_interval``.
        Overrides the file's times; not with ``times``.
    signal : int or str, optional
        For files with several signals (a Velox EMD with several detectors, a DM file with
        several images): the index of the signal, or a case-insensitive substring of its
        title. Default: the first image-like signal (2D, or a 2D series); the others are listed
        in ``metadata["other_signals"]``.
    units : str, optional
        Length unit (``"nm"``, ``"Å"``, ...) of the file's axis scale when the file names
        none (HyperSpy files written without units). Ignored for axes that have units.
    rgb : {None, "luminance"}, optional
        Colour images are refused by default; ``"luminance"`` converts them to grey with
        ITU-R BT.601 weights (0.299 R + 0.587 G + 0.114 B; alpha dropped).

    Returns
    -------
    Frames
        ``data`` a Dask array ``(n_frames, y, x)`` in the file's dtype.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        Naming the file: an unsupported suffix (listing the supported ones); a file that
        could not be read as its format (with the reader's error); no image-like signal; a
        shape other than (y, x) or (frames, y, x); a colour image without ``rgb=``;
        non-square pixels (y and x sampling differ by more than 1 %); an implausible pixel
        size (outside :data:`SAMPLING_RANGE`, naming the value and unit found); frame times
        that do not match the frames.
    """
    path = Path(path)
    _check_path(path)
    raw = _open(path, signal=signal, units=units, rgb=rgb)
    _probe(raw["data"], path, raw["format"])
    return _finish(raw, path.name, sampling=sampling, frames=frames, times=times, frame_interval=frame_interval)


def read_series(
    paths,
    *,
    sampling: float | None = None,
    frames=None,
    times=None,
    frame_interval: float | None = None,
    signal: int | str | None = None,
    units: str | None = None,
    rgb: str | None = None,
) -> Frames:
    """Read several files (one frame each, or more) as one lazy series, in natural name order.

    Each file is read only when its frames are computed, so a folder of thousands of frames
    holds no file open.

    Parameters
    ----------
    paths : str, Path or sequence of them
        A folder (every file in it with a suffix of :data:`SUFFIXES`), a glob pattern
        (``"run/frame_*.tif"``), or a list of files. Sorted naturally by name
        (``frame_2`` before ``frame_10``).
    sampling : float, optional
        Pixel size [Å]; overrides the files'. Otherwise the files' own, which must agree
        within 1 % (files without one are taken to share it).
    frames : slice, int, tuple or list of int, optional
        Frames of the stacked series to keep (as in :func:`read_frames`).
    times : array_like, optional
        Frame times [s] of the stacked series (as in :func:`read_frames`); times inside the
        files are not used.
    frame_interval : float, optional
        Time between frames [s] of the stacked series.
    signal : int or str, optional
        As in :func:`read_frames`, for every file.
    units : str, optional
        As in :func:`read_frames`, for every file.
    rgb : {None, "luminance"}, optional
        As in :func:`read_frames`.

    Returns
    -------
    Frames
        ``metadata["files"]`` lists the files in order, ``metadata["frame_files"]`` the file of
        each frame.

    Raises
    ------
    FileNotFoundError
        If a file is missing, or the folder/pattern matches no readable file.
    ValueError
        As :func:`read_frames`, and for frames of different shapes (naming the first
        offending file and both shapes) or files whose pixel sizes differ.
    """
    files = _series_paths(paths)
    parts, frame_files, samplings, opened = [], [], [], []
    for path in files:
        _check_path(path)
        raw = _open(path, signal=signal, units=units, rgb=rgb)
        stack = Frames(raw.pop("data"), source=path.name).data  # (frames, y, x), or refused naming the file
        if opened and stack.shape[1:] != parts[0].shape[1:]:
            first = opened[0][0]
            raise ValueError(
                f"{path.name}: frames of shape {tuple(stack.shape[1:])} differ from those of {first.name} "
                f"{tuple(parts[0].shape[1:])}; every frame of a series must have the same shape"
            )
        # read again at compute time rather than through the open handle: no file stays open
        loader = dask.delayed(_load_file, pure=True)(path, signal, units, rgb, stack.shape, stack.dtype)
        parts.append(da.from_delayed(loader, shape=stack.shape, dtype=stack.dtype))
        frame_files += [path.name] * stack.shape[0]
        del stack
        if sampling is None:
            value = _file_sampling(raw, path.name)
            if value is not None:
                samplings.append((path, value))
        opened.append((path, raw))
    for path, value in samplings[1:]:
        first, ref = samplings[0]
        if abs(value - ref) > 0.01 * ref:
            raise ValueError(
                f"{path.name}: pixel size {value:.6g} Å differs from that of {first.name} ({ref:.6g} Å); "
                "pass sampling= (Å per pixel) to use one value"
            )
    first_raw = opened[0][1]
    data = da.concatenate(parts, axis=0)
    raw = {
        "data": data,
        "format": first_raw["format"],
        "sampling": None,
        "times": None,
        "energy": next((r["energy"] for _, r in opened if r["energy"] is not None), None),
        "metadata": {
            **{k: v for k, v in first_raw["metadata"].items() if k not in ("other_signals",)},
            "files": [p.name for p, _ in opened],
            "frame_files": frame_files,
        },
    }
    if samplings:
        raw["sampling"] = samplings[0][1]
        raw["sampling_found"] = f"{samplings[0][1]:.6g} Å"
    name = files[0].name if len(files) == 1 else f"{files[0].name} .. {files[-1].name} ({len(files)} files)"
    return _finish(raw, name, sampling=sampling, frames=frames, times=times, frame_interval=frame_interval)


def recorded_optics(frames: Frames) -> dict:
    """What a microscope file records of the imaging conditions, as a column counter takes them.

    Velox EMD files record the defocus (``Optics.Defocus`` [m], negative underfocus); it
    comes back in Å with abTEM's sign (positive underfocus). The beam energy (high
    tension) comes back as ``energy`` [eV] where the file records it. Nothing else is
    read: the Cs a file states is that of the uncorrected objective, not what the
    corrector set.

    Parameters
    ----------
    frames : Frames
        Frames from :func:`read_frames`.

    Returns
    -------
    dict
        ``defocus`` [Å] and ``energy`` [eV] where recorded.

    Examples
    --------
    >>> recorded_optics(Frames(np.ones((8, 8)), source="a.emd", metadata={"optics": {"defocus": 52.0}}, energy=3e5))
    {'defocus': 52.0, 'energy': 300000.0}
    """
    optics = (frames.metadata or {}).get("optics", {})
    out = {k: float(v) for k, v in optics.items() if k == "defocus" and v is not None and np.isfinite(float(v))}
    if frames.energy is not None:
        out["energy"] = float(frames.energy)
    return out


def require_sampling(frames: Frames) -> float:
    """The pixel size of ``frames`` [Å], or a ValueError naming the file when it is unknown.

    Parameters
    ----------
    frames : Frames
        Frames from :func:`read_frames` or :func:`read_series`.

    Returns
    -------
    float
        ``frames.sampling`` [Å].

    Raises
    ------
    ValueError
        If ``frames.sampling`` is None; the message names the file, says to pass
        ``sampling=`` (Å per pixel), and shows a scale without units the file holds.

    Examples
    --------
    >>> require_sampling(Frames(np.ones((8, 8)), source="a.png"))
    Traceback (most recent call last):
    ...
    ValueError: a.png holds no pixel size: pass sampling= (Å per pixel) to read_frames
    """
    if frames.sampling is not None:
        return float(frames.sampling)
    hint = ""
    scale = frames.metadata.get("unitless_scale")
    if scale:
        hint = (
            f"; its axes have a scale of {scale[-1]:.6g} without units (if that is nm, pass units='nm' "
            f"or sampling={scale[-1] * 10:.6g})"
        )
    elif frames.metadata.get("axis_units"):
        hint = f"; its axes are in {frames.metadata['axis_units']!r}, not a length"
    raise ValueError(f"{frames.source} holds no pixel size: pass sampling= (Å per pixel) to read_frames{hint}")


def check_frames(frames: Frames) -> Frames:
    """Find NaN or infinite frames in one chunked pass; raise naming them.

    Integer data cannot hold NaN and are returned at once.

    Parameters
    ----------
    frames : Frames
        The series to check.

    Returns
    -------
    Frames
        ``frames``, unchanged, when every value is finite.

    Raises
    ------
    ValueError
        Naming the file and the indices of the bad frames (and their files, for a
        :func:`read_series` series, and their indices in the file after a selection).

    Examples
    --------
    >>> bad = np.ones((3, 8, 8)); bad[1, 2, 2] = np.nan
    >>> check_frames(Frames(bad, source="x.npy"))
    Traceback (most recent call last):
    ...
    ValueError: x.npy: frame(s) [1] (1 of 3) hold NaN or infinite values
    """
    data = frames.data
    if data.dtype.kind in "iu":
        return frames
    finite = np.asarray(da.isfinite(data).all(axis=(1, 2)).compute())
    bad = np.flatnonzero(~finite)
    if len(bad):
        shown = bad[:20].tolist()
        more = " ..." if len(bad) > 20 else ""
        where = ""
        if frames.metadata.get("frame_files"):
            names = [frames.metadata["frame_files"][i] for i in shown]
            where = f" (files {names}{more})"
        elif frames.metadata.get("frame_indices"):
            where = f" (frames {[frames.metadata['frame_indices'][i] for i in shown]}{more} of the file)"
        raise ValueError(
            f"{frames.source}: frame(s) {shown}{more} ({len(bad)} of {frames.n_frames}) hold NaN or infinite "
            f"values{where}"
        )
    return frames


def estimate_counts_per_electron(frame, *, patch: int = 32) -> float | None:
    """Estimate a detector's counts per electron from the shot noise of one frame.

    For counts ``c = g N`` with ``N`` Poisson, ``var(c) = g mean(c)``: the gain ``g`` is the
    ratio of noise variance to mean. The noise is isolated by the separable high-pass filter
    ``[1, -2, 1] x [1, -2, 1]`` (a mixed fourth difference: it removes anything linear along x
    or along y, so smooth atomic contrast leaks little into it); for independent Poisson noise
    the filtered value at a pixel has variance ``g * sum(w_k^2 c_k)`` with weights
    ``w^2 = [1, 4, 1] x [1, 4, 1]``. The ratio of the two sums is taken in ``patch x patch``
    blocks and the median over blocks is returned (robust to blocks with edges or sharp
    structure).

    It is an estimate, valid for pixel-independent shot noise with no offset: counting
    detectors and images recorded as counts. A camera whose point-spread function correlates
    neighbouring pixels (most integrating CCD/CMOS cameras) gives too low a gain (too high a
    dose), a dark offset or read noise biases it, and atomic columns narrower than about a
    pixel leak structure into the noise. Tested on simulated Poisson frames (square lattices
    of Gaussian columns 1 to 3 px wide, 30 % contrast, 2 and 200 electrons per pixel) with
    gains 1 and 7.3: within 4 % (``tests/test_io.py`` asks for 15 %).

    Parameters
    ----------
    frame : array_like
        One 2D frame in detector counts, at least ``patch + 2`` pixels on each side.
    patch : int
        Side of the blocks [px].

    Returns
    -------
    float or None
        Counts per electron; None (with a :class:`DoseEstimateWarning` giving the reason)
        when the values cannot be counts: full-scale 8/16-bit values (rescaled for display,
        or saturated), negative values (an offset was subtracted), no variation, or a
        variance-to-mean ratio below 0.05 or above 1e4 (data rescaled from counts).
    """
    x = np.asarray(frame, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected one 2D frame, got shape {x.shape}")
    if min(x.shape) < patch + 2:
        raise ValueError(f"the frame {x.shape} is smaller than one block of {patch} x {patch} pixels (+2)")
    if not np.all(np.isfinite(x)):
        raise ValueError("the frame holds NaN or infinite values")
    integer = bool(np.all(x == np.round(x)))
    if integer and x.max() in (255.0, 65535.0):
        return _no_estimate(
            f"full-scale {'8' if x.max() == 255 else '16'}-bit values (max {x.max():.0f}): the image was rescaled "
            "for display or is saturated, so its values are not counts"
        )
    negative = int(np.count_nonzero(x < 0))
    if negative > 0.001 * x.size:
        return _no_estimate(f"{negative} negative values: an offset was subtracted, so the values are not counts")
    if x.mean() <= 0 or np.ptp(x) == 0:
        return _no_estimate("the frame is constant or empty: there is no shot noise to measure")
    w = np.array([1.0, -2.0, 1.0])
    h = _separable(x, w)
    m = _separable(x, w**2)
    n_i, n_j = h.shape[0] // patch, h.shape[1] // patch
    h2 = (h[: n_i * patch, : n_j * patch] ** 2).reshape(n_i, patch, n_j, patch).sum(axis=(1, 3))
    mm = m[: n_i * patch, : n_j * patch].reshape(n_i, patch, n_j, patch).sum(axis=(1, 3))
    ok = mm > 0
    if not ok.any():
        return _no_estimate("no block has a positive mean")
    gain = float(np.median(h2[ok] / mm[ok]))
    if not 0.05 <= gain <= 1e4:
        return _no_estimate(
            f"variance/mean = {gain:.3g} is outside 0.05..1e4: the values look rescaled from counts (or the noise is "
            "not shot noise)"
        )
    return gain


def estimate_dose(frame, sampling: float, *, counts_per_electron: float | None = None) -> float | None:
    """The electron dose a frame recorded [e/Å²]: mean counts / counts per electron / sampling².

    For bright-field and HRTEM images (whose mean is the incident beam's) this is the
    incident dose; for annular dark field it is only the scattered part.

    Parameters
    ----------
    frame : array_like
        One 2D frame in detector counts.
    sampling : float
        Pixel size [Å].
    counts_per_electron : float, optional
        Detector counts per electron. Estimated from the shot noise when not given
        (:func:`estimate_counts_per_electron`: an estimate, see there for when it holds).

    Returns
    -------
    float or None
        Dose [e/Å²]; None, with a :class:`DoseEstimateWarning` giving the reason, when
        counts per electron are not given and cannot be estimated.

    Examples
    --------
    >>> estimate_dose(np.full((8, 8), 40.0), 0.5, counts_per_electron=2.0)
    80.0
    """
    sampling = _check_plausible(sampling, "Å", "estimate_dose", explicit=True)
    x = np.asarray(frame, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected one 2D frame, got shape {x.shape}")
    if counts_per_electron is None:
        counts_per_electron = estimate_counts_per_electron(x)
        if counts_per_electron is None:
            return None
    elif not (np.isfinite(counts_per_electron) and counts_per_electron > 0):
        raise ValueError(f"counts_per_electron must be positive, got {counts_per_electron!r}")
    return float(x.mean() / counts_per_electron / sampling**2)


# --- helpers ---------------------------------------------------------------------------------------------------------


def _no_estimate(reason: str) -> None:
    warnings.warn(f"counts per electron not estimated: {reason}; pass counts_per_electron=", DoseEstimateWarning, 3)
    return None


def _separable(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x`` filtered by ``w`` along both axes ('valid' region only)."""
    rows = w[0] * x[:-2] + w[1] * x[1:-1] + w[2] * x[2:]
    return w[0] * rows[:, :-2] + w[1] * rows[:, 1:-1] + w[2] * rows[:, 2:]


def _check_path(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path.name}: unsupported file type {suffix!r}; supported: {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")


def _unreadable(path: Path, fmt: str, err: BaseException) -> ValueError:
    return ValueError(f"{path.name} could not be read as {fmt}: {type(err).__name__}: {err}")


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
        if suffix in (".tif", ".tiff"):
            raw = _open_tiff(path, fmt)
        elif suffix == ".npy":
            raw = _open_npy(path, fmt)
        else:
            raw = _open_image(path, fmt)
    raw["format"] = fmt
    raw["metadata"] = {"format": fmt, **raw["metadata"]}
    raw["data"] = _grey(raw.pop("data"), raw.pop("colour", None), rgb, path.name, raw["metadata"])
    return raw


def _grey(data: da.Array, colour: int | None, rgb: str | None, name: str, metadata: dict) -> da.Array:
    """Colour data (channels last) converted to grey, or refused; grey data unchanged."""
    if colour is None:
        if data.ndim >= 3 and data.shape[-1] in (3, 4) and data.shape[-2] > 4:
            colour = data.ndim - 1
        else:
            return data
    if rgb is None:
        raise ValueError(
            f"{name}: a colour image (shape {data.shape}, {data.shape[colour]} channels); frames are grey: convert it "
            "to grey (e.g. its luminance), or read it with rgb='luminance'"
        )
    data = da.moveaxis(data, colour, -1)
    n = data.shape[-1]
    if n in (1, 2):  # grey (+ alpha)
        grey = data[..., 0].astype(np.float32)
    elif n in (3, 4):  # RGB (+ alpha)
        grey = (data[..., :3].astype(np.float32) * _LUMA.astype(np.float32)).sum(axis=-1)
    else:
        raise ValueError(f"{name}: {n} colour channels; rgb='luminance' converts 1 to 4 (grey, RGB, + alpha)")
    metadata["converted"] = f"rgb='luminance' from {n} channels (0.299 R + 0.587 G + 0.114 B)"
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


def _mrc_has_cell(original: dict) -> bool:
    if original.get("fei_header") is not None:
        return True
    header = original.get("std_header") or {}
    try:
        return float(header.get("Xlen", 0)) > 0 and float(header.get("MX", 0)) > 0
    except (TypeError, ValueError):
        return False


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


def _norm_unit(units) -> str:
    """A unit string, lower case, with the Å and µ variants made one."""
    if units is None:
        return ""
    text = str(units).strip().replace("\\u00B5", "µ").replace("\\u00b5", "µ")
    return text.replace("\u212b", "\u00c5").replace("\u03bc", "\u00b5").lower()


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


def _check_plausible(value, found: str, source: str, *, explicit: bool = False) -> float:
    """``value`` [Å] as a float, or a ValueError naming it (and the value/unit ``found`` in the file)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{source}: sampling must be a positive pixel size [Å per pixel] as a number, got {value!r}")
    lo, hi = SAMPLING_RANGE
    if not lo <= number <= hi:
        what = f"sampling={value!r} Å per pixel" if explicit else f"the file's pixel size {found} = {number:.6g} Å"
        raise ValueError(
            f"{source}: {what} is implausible (outside {lo:g}..{hi:g} Å); "
            + ("sampling is in Å per pixel (0.127 for 0.0127 nm)" if explicit else "pass sampling= (Å per pixel)")
        )
    return number


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
            (ny, dy), (nx, dx) = resolution
            if nx > 0 and ny > 0 and dx > 0 and dy > 0:
                sy, sx = dy / ny * _LENGTH[key], dx / nx * _LENGTH[key]
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
        raise ValueError(f"{path.name}: decoded shape {image.shape} differs from the header's {shape}")
    return image.astype(dtype, copy=False)


def _load_file(path: Path, signal, units, rgb, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """All frames of one file, read now (for :func:`read_series`)."""
    raw = _open(path, signal=signal, units=units, rgb=rgb)
    try:
        array = np.asarray(raw["data"].compute())
    except ValueError as err:
        if path.name in str(err):
            raise
        raise _unreadable(path, raw["format"], err) from err
    except Exception as err:
        raise _unreadable(path, raw["format"], err) from err
    array = array.reshape(shape) if array.size == int(np.prod(shape)) else array
    if array.shape != tuple(shape):
        raise ValueError(f"{path.name}: holds frames {array.shape} now, {tuple(shape)} when the series was opened")
    return array.astype(dtype, copy=False)


def _probe(data: da.Array, path: Path, fmt: str) -> None:
    """Read one pixel of the last frame: a truncated or corrupt file fails here, named, rather than later."""
    if data.ndim < 2:
        return  # not an image: Frames refuses it, naming the shape
    try:
        index = (-1,) * (data.ndim - 2) + (slice(-1, None), slice(-1, None))
        data[index].compute()
    except ValueError as err:
        if path.name in str(err):
            raise
        raise _unreadable(path, fmt, err) from err
    except Exception as err:
        raise _unreadable(path, fmt, err) from err


def _finish(raw: dict, name: str, *, sampling, frames, times, frame_interval) -> Frames:
    """Frames from an opened file: sampling (given, else the file's), frame selection, times."""
    if sampling is None:
        sampling = _file_sampling(raw, name)
        if sampling is not None:
            raw["metadata"]["sampling_from"] = "file"
    else:
        raw["metadata"]["sampling_from"] = "sampling="
    if times is not None and frame_interval is not None:
        raise ValueError(f"{name}: pass times= or frame_interval=, not both")
    data = raw["data"]
    n_file = 1 if data.ndim == 2 else int(data.shape[0])
    file_times, chosen_times = raw.get("times"), None
    if file_times is not None and len(file_times) != n_file:
        file_times = None
    if frame_interval is not None:
        step = float(frame_interval)
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"{name}: frame_interval must be a positive time [s], got {frame_interval!r}")
        file_times = np.arange(n_file) * step
    elif times is not None:
        given = np.asarray(times, dtype=np.float64).ravel()
        if len(given) == n_file:
            file_times = given
        else:
            chosen_times = given
    result = Frames(
        data, source=name, sampling=sampling, times=file_times, energy=raw.get("energy"), metadata=raw["metadata"]
    )
    if frames is not None:
        result = result.select(frames)
    if chosen_times is not None:
        if len(chosen_times) != result.n_frames:
            raise ValueError(
                f"{name}: {len(chosen_times)} times for {result.n_frames} chosen frame(s) ({n_file} in the file); "
                "give one per frame of the file or one per chosen frame"
            )
        result = Frames(
            result.data,
            sampling=result.sampling,
            times=chosen_times,
            energy=result.energy,
            source=name,
            metadata=result.metadata,
        )
    return result


def _selection(frames, n: int, source: str) -> np.ndarray:
    """Indices chosen by ``frames`` (slice, int, (start, stop), or list of indices) among ``n``."""
    if isinstance(frames, slice):
        index = np.arange(n)[frames]
    elif isinstance(frames, tuple):
        if len(frames) != 2:
            raise ValueError(f"{source}: frames=(start, stop) takes two numbers, got {frames!r}")
        index = np.arange(n)[slice(*frames)]
    elif isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
        if not -n <= frames < n:
            raise IndexError(f"{source}: frame {frames} out of range; it has {n} frame(s)")
        index = np.array([int(frames) % n])
    else:
        try:
            index = np.asarray(list(frames))
        except TypeError:
            raise ValueError(
                f"{source}: frames= takes a slice, an index, (start, stop) or a list of indices, got {frames!r}"
            ) from None
        if index.dtype.kind not in "iu" and index.size:
            raise ValueError(f"{source}: frame indices must be integers, got {frames!r}")
        index = index.astype(np.int64)
        out = index[(index < -n) | (index >= n)]
        if out.size:
            raise IndexError(f"{source}: frame(s) {out.tolist()} out of range; it has {n} frame(s)")
        index = index % n
    if index.size == 0:
        raise ValueError(f"{source}: frames={frames!r} chooses no frame of {n}")
    return index


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _series_paths(paths) -> list[Path]:
    if isinstance(paths, (str, Path)):
        text = str(paths)
        path = Path(paths)
        if path.is_dir():
            found = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES]
            found = [p for p in found if not p.name.startswith(".")]
            if not found:
                raise FileNotFoundError(f"no file of a supported type ({', '.join(SUFFIXES)}) in {path}")
        elif any(c in text for c in "*?["):
            parent = Path(text).parent
            found = [p for p in parent.glob(Path(text).name) if p.is_file()]
            if not found:
                raise FileNotFoundError(f"no file matches {text}")
        else:
            found = [path]
    elif isinstance(paths, Iterable):
        found = [Path(p) for p in paths]
        if not found:
            raise ValueError("read_series needs at least one file")
    else:
        raise ValueError(f"paths must be a folder, a glob pattern or a list of files, got {paths!r}")
    return sorted(found, key=_natural_key)


def _slug(key) -> str:
    text = unicodedata.normalize("NFKD", str(key)).encode("ascii", "ignore").decode()
    return re.sub(r"[^0-9A-Za-z_]", "", text.strip().replace(" ", "_"))


def _get(tree, dotted: str):
    """The value at a dotted path of nested dicts, matching keys as HyperSpy does (spaces as underscores)."""
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
            continue
        want = _slug(part)
        match = next((k for k in node if _slug(k) == want), None)
        if match is None:
            return None
        node = node[match]
    return node


def _set(tree: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[last] = value


def _mapped_metadata(record: dict) -> dict:
    """rsciio's ``metadata`` with its ``mapping`` from ``original_metadata`` applied (as HyperSpy does on load)."""
    import copy

    metadata = copy.deepcopy(record.get("metadata") or {})
    original = record.get("original_metadata") or {}
    for source, target in (record.get("mapping") or {}).items():
        try:
            where, function = target
            value = _get(original, source)
            if value is None:
                continue
            value = function(value) if function is not None else value
        except Exception:  # a mapping function that does not fit this file: skip it, as the value is optional
            continue
        if value is not None:
            _set(metadata, where, value)
    return metadata


def _json_subset(value, depth: int = 0):
    """``value`` reduced to what JSON holds: dicts, short lists, strings, numbers, booleans, None."""
    if depth > 12:
        return None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = _json_subset(v, depth + 1)
            if sub is not None or v is None:
                out[str(k)] = sub
        return out
    if isinstance(value, np.ndarray):
        return _json_subset(value.tolist(), depth + 1) if value.size <= 64 and value.dtype.kind in "biuf" else None
    if isinstance(value, (list, tuple)):
        if len(value) > 64:
            return None
        return [_json_subset(v, depth + 1) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= 4096 else None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return None

"""One lazy frame series out of DM, EMD, SER, MRC, HyperSpy, TIFF, PNG and NumPy files.

:func:`read_frames` reads one file and :func:`read_series` a folder (or list) of files into
:class:`Frames`: a lazy ``(n_frames, y, x)`` Dask array with its pixel size [Å], frame times
[s], beam energy [eV] and a JSON-able subset of the file's metadata. Nothing is read whole
up front: a multi-GB movie is opened, its metadata parsed, one pixel of its last frame read
(a cheap check that it is not truncated), and frames are read when asked for
(:meth:`Frames.frame`, iteration, or Dask on :attr:`Frames.data`).

Length units nm, µm/um, pm, Å/A (and m, mm) are converted to Å; an axis with a scale but no
units (HyperSpy files written without them, e.g. atomap's test images) gives no pixel size
unless ``units=`` names the unit (``metadata["unitless_scale"]`` keeps the scale and
:func:`require_sampling`'s message shows it). A pixel size outside 0.001..1000 Å is refused
as implausible, naming the value and unit found. A colour image (RGB/RGBA, or grey + alpha)
is refused with a message to convert it to grey, or converted on request with
``rgb="luminance"`` (ITU-R BT.601 weights 0.299, 0.587, 0.114; alpha dropped).

:func:`check_frames` finds NaN or infinite frames in one chunked pass. Where each format keeps
the pixel size, frame times and beam energy is tabled in :mod:`.formats`; the dose a frame
recorded is :func:`atomtools.core.dose.estimate_dose`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from ..core.frames import to_grey
from .formats import SUFFIXES, _check_path, _open
from .metadata import FileFormatError, _unreadable
from .units import _check_plausible, _file_sampling

__all__ = ["Frames", "read_frames", "read_series", "recorded_optics", "require_sampling", "check_frames"]


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
        If ``data`` is not 2D or 3D (naming ``source`` and the shape), is a colour image
        whose R, G and B differ (:func:`~atomtools.core.frames.to_grey`; a grey image
        saved as colour becomes its first channel), is not real numbers, holds no frame; if
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
        data = to_grey(data, name=self.source)  # a grey image saved as colour; true colour is refused
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


# --- helpers ---------------------------------------------------------------------------------------------------------


def _load_file(path: Path, signal, units, rgb, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """All frames of one file, read now (for :func:`read_series`)."""
    raw = _open(path, signal=signal, units=units, rgb=rgb)
    try:
        array = np.asarray(raw["data"].compute())
    except FileFormatError:
        raise  # already names the file
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
    except FileFormatError:
        raise  # already names the file
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

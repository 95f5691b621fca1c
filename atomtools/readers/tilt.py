"""Tilt-series files: one reader for MATLAB, MRC, TIFF and NumPy stacks, one layout out.

Every reader returns a :class:`TiltSeries` whose ``data`` is float32 in the layout
``(n_angles, n_slices, n_detector)`` = ``(tilt, y, x)``: ``y`` runs along the tilt axis
(one 2D slice per ``y``), ``x`` across it (the detector of a slice's sinogram), so
``data[:, j, :]`` is the sinogram of slice ``j`` as ``(n_angles, n_detector)``. Angles
are float64 degrees, one per tilt, ascending (:func:`check_angles`).

Where each format keeps what:

=============================  ======================  ==============================================
suffix                         stack layout            tilt angles; pixel size
=============================  ======================  ==============================================
``.mat`` (v5 and v7.3 HDF5)    ``(y, x, tilt)``        a variable ``angles``/``theta``/...; none
``.mrc``, ``.ali``, ``.st``    ``(tilt, y, x)``        ``.rawtlt``/``.tlt`` beside it, or an FEI
                                                       extended header; header (``Xlen/MX``) or FEI
``.tif``, ``.tiff``            ``(tilt, y, x)``        ``.rawtlt``/``.tlt`` beside it; ImageJ unit
``.npy``                       ``(tilt, y, x)``        ``.rawtlt``/``.tlt`` beside it; none
=============================  ======================  ==============================================

A ``.rawtlt``/``.tlt`` of the same stem beside any of them comes before angles inside the
file, and ``angles=`` before both. MATLAB stacks put the tilt last; when the last axis of a ``.mat`` stack does not have
one entry per angle but the first does, the first is taken as the tilt. ``axes=``
overrides any default. Nothing is ever unpickled: ``.npy`` is read with
``allow_pickle=False``, and MATLAB object arrays (cells, structs) are skipped.
:func:`write_tilt_series` writes the ``.npy`` + ``.rawtlt`` pair that reads back. The MRC
cell check and the ImageJ length units are those of the frame readers (:mod:`.units`).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import numpy as np

from ..utils import atomic_path
from .units import _LENGTH, _imagej_pixel_size, _mrc_has_cell, _norm_unit

__all__ = ["TILT_SUFFIXES", "TiltSeries", "check_angles", "read_tilt_series", "write_tilt_series"]

#: The file endings :func:`read_tilt_series` reads.
TILT_SUFFIXES = (".mat", ".mrc", ".ali", ".st", ".tif", ".tiff", ".npy")

#: MATLAB variable names (lower case) that hold tilt angles, most specific first.
_ANGLE_NAMES = ("tilt_angles", "tiltangles", "angles", "angle", "thetas", "theta")

#: Layout of a stack when ``axes`` is not given (``.mat`` decides by the angle count).
_DEFAULT_AXES = {".mrc": "tyx", ".ali": "tyx", ".st": "tyx", ".tif": "tyx", ".tiff": "tyx", ".npy": "tyx"}


@dataclass(eq=False)
class TiltSeries:
    """A tilt series: projections, their tilt angles and the pixel size.

    Parameters
    ----------
    data : numpy.ndarray
        Projections, ``(n_angles, n_slices, n_detector)`` = ``(tilt, y, x)``, with ``y``
        along the tilt axis; stored as float32.
    angles : numpy.ndarray
        Tilt angle of each projection [degrees], ascending; stored as float64.
    sampling : float, optional
        Pixel size [Å], or None when unknown.
    source : str
        Where the series came from (a file name), for messages.

    Raises
    ------
    ValueError
        If ``data`` is not 3D, the angles do not match its first axis or fail
        :func:`check_angles`, a value is NaN or infinite, or ``sampling`` is not positive.

    Examples
    --------
    >>> series = TiltSeries(np.ones((3, 2, 4)), [-60, 0, 60], sampling=0.5)
    >>> series.shape, series.sinogram(1).shape, series.angles
    ((3, 2, 4), (3, 4), array([-60.,   0.,  60.]))
    """

    data: np.ndarray
    angles: np.ndarray
    _: KW_ONLY
    sampling: float | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.dtype.kind not in "iuf":
            raise ValueError(f"{self.source}: projections must be real numbers, not {data.dtype}")
        data = np.ascontiguousarray(data, dtype=np.float32)
        if data.ndim != 3:
            raise ValueError(
                f"{self.source}: projections must be 3D (n_angles, n_slices, n_detector) = (tilt, y, x), "
                f"got shape {data.shape}"
            )
        angles = np.asarray(self.angles, dtype=np.float64).ravel()
        if len(angles) != data.shape[0]:
            raise ValueError(
                f"{self.source}: {len(angles)} angles for {data.shape[0]} projections; the projections must be laid "
                f"out (n_angles, n_slices, n_detector) = (tilt, y, x) with one angle per entry of the first axis "
                f"(shape {data.shape})"
            )
        try:
            angles = check_angles(angles, data.shape[0])
        except ValueError as err:
            raise ValueError(f"{self.source}: {err}") from err
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if bad:
            raise ValueError(f"{self.source}: {bad} of {data.size} values are NaN or infinite")
        if self.sampling is not None:
            sampling = float(self.sampling)
            if not (np.isfinite(sampling) and sampling > 0):
                raise ValueError(f"{self.source}: sampling must be a positive pixel size [Å], got {self.sampling}")
            self.sampling = sampling
        self.data, self.angles, self.source = data, angles, str(self.source)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_angles, n_slices, n_detector)``."""
        return tuple(self.data.shape)

    @property
    def n_angles(self) -> int:
        """Number of projections (tilts)."""
        return self.data.shape[0]

    @property
    def n_slices(self) -> int:
        """Number of slices along the tilt axis (``y``)."""
        return self.data.shape[1]

    @property
    def n_detector(self) -> int:
        """Number of detector pixels across the tilt axis (``x``)."""
        return self.data.shape[2]

    @property
    def sinograms(self) -> np.ndarray:
        """All sinograms, ``(n_slices, n_angles, n_detector)`` (a view of ``data``)."""
        return self.data.transpose(1, 0, 2)

    def sinogram(self, j: int) -> np.ndarray:
        """The sinogram of slice ``j``.

        Parameters
        ----------
        j : int
            Slice index along the tilt axis (``y``).

        Returns
        -------
        numpy.ndarray
            ``data[:, j, :]``, ``(n_angles, n_detector)`` (a view).
        """
        return self.data[:, j, :]


def check_angles(angles, n: int) -> np.ndarray:
    """Tilt angles as float64 degrees, checked: ``n`` of them, finite, in -90..90, distinct, ascending.

    Parameters
    ----------
    angles : array_like
        Tilt angles [degrees], one per projection.
    n : int
        Number of projections.

    Returns
    -------
    numpy.ndarray
        The angles, float64, in the order given.

    Raises
    ------
    ValueError
        For a wrong count, NaN, a value outside -90..90, a repeated angle, or angles out
        of ascending order (they are never reordered here: the projections would have to
        move with them).

    Examples
    --------
    >>> check_angles([-60, 0, 60], 3)
    array([-60.,   0.,  60.])
    >>> check_angles([0, -60, 60], 3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: angles are not in ascending order (0 then -60 at index 1); sort them together with the projections: ...
    """
    out = np.asarray(angles, dtype=np.float64)
    if out.ndim != 1:
        out = out.squeeze() if out.size > 1 else out.reshape(-1)
        if out.ndim != 1:
            raise ValueError(f"angles must be a vector (one per projection), got shape {np.shape(angles)}")
    if len(out) != n:
        raise ValueError(f"expected {n} angles (one per projection), got {len(out)}")
    if np.isnan(out).any():
        raise ValueError(f"angles hold {int(np.isnan(out).sum())} NaN value(s)")
    outside = np.abs(out) > 90
    if outside.any():
        raise ValueError(f"angles must lie in -90..90 degrees (tilt angles), got {out[outside].tolist()}")
    steps = np.diff(out)
    if (steps == 0).any():
        i = int(np.flatnonzero(steps == 0)[0])
        raise ValueError(f"angle {out[i]:g} appears more than once (at indices {i} and {i + 1})")
    if (steps < 0).any():
        i = int(np.flatnonzero(steps < 0)[0])
        raise ValueError(
            f"angles are not in ascending order ({out[i]:g} then {out[i + 1]:g} at index {i + 1}); sort them together "
            "with the projections: order = np.argsort(angles); data, angles = data[order], angles[order]"
        )
    return out


def read_tilt_series(
    path: str | Path,
    *,
    angles=None,
    axes: str | None = None,
    sampling: float | None = None,
    variable: str | None = None,
) -> TiltSeries:
    """Read a tilt series from a MATLAB, MRC, TIFF or NumPy file.

    Parameters
    ----------
    path : str or Path
        The file: ``.mat`` (v5, or v7.3 HDF5), ``.mrc``/``.ali``/``.st``, ``.tif``/``.tiff``
        (one page per tilt) or ``.npy``.
    angles : array_like, optional
        Tilt angles [degrees], ascending; override any the file or a sidecar holds.
        Otherwise they come from a ``.tlt``/``.rawtlt`` text file of the same stem beside
        the file (one angle per line; for ``.ali`` the refined ``.tlt`` is preferred), else
        from the file itself (a ``.mat`` variable named like ``angles``/``theta``/
        ``tilt_angles``, or an FEI extended MRC header).
    axes : str, optional
        Layout of the stored stack as a permutation of the letters ``t`` (tilt), ``y``
        (along the tilt axis) and ``x`` (across it), e.g. ``"yxt"`` or ``"tyx"``. Default:
        ``"tyx"``, and for ``.mat`` ``"yxt"`` (MATLAB's), unless only the first axis has one
        entry per angle.
    sampling : float, optional
        Pixel size [Å]; overrides the file's (MRC header, ImageJ TIFF unit).
    variable : str, optional
        The MATLAB variable holding the stack; needed when a ``.mat`` file holds more than
        one 3D array.

    Returns
    -------
    TiltSeries
        ``data`` float32 ``(tilt, y, x)``, angles [degrees], sampling [Å] or None.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For an unsupported suffix, a bad ``axes``, no or several candidate stacks in a
        ``.mat`` file, no tilt angles anywhere, angles that do not match the stack or fail
        :func:`check_angles`, and NaN or infinite values.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TILT_SUFFIXES:
        raise ValueError(f"{path.name}: unsupported tilt-series file {suffix!r}; supported: {', '.join(TILT_SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"no tilt-series file at {path}")
    if axes is not None:
        axes = _check_axes(axes)
    if variable is not None and suffix != ".mat":
        raise ValueError(f"{path.name}: variable= names a MATLAB variable; it does not apply to {suffix} files")

    if suffix == ".mat":
        stack, file_angles, file_sampling = _read_mat(path, variable)
    elif suffix in (".mrc", ".ali", ".st"):
        stack, file_angles, file_sampling = _read_mrc(path)
    elif suffix in (".tif", ".tiff"):
        stack, file_angles, file_sampling = _read_tiff(path)
    else:
        stack, file_angles, file_sampling = np.load(path, allow_pickle=False), None, None

    if stack.ndim != 3:
        raise ValueError(f"{path.name}: a tilt series is a 3D stack, this one has shape {stack.shape}")
    if angles is None:
        sidecar = _sidecar(path)
        if sidecar is not None:
            angles = _read_angles_file(sidecar)
        elif file_angles is not None:
            angles = file_angles
        else:
            raise ValueError(
                f"{path.name} holds no tilt angles: pass angles= (degrees, one per projection) or put a "
                f"{path.stem}.rawtlt file beside it (one angle per line)"
            )
    angles = np.asarray(angles, dtype=np.float64).ravel()
    if axes is None:
        axes = _DEFAULT_AXES.get(suffix) or ("tyx" if stack.shape[0] == len(angles) != stack.shape[-1] else "yxt")
    t = axes.index("t")
    if stack.shape[t] != len(angles):
        raise ValueError(
            f"{path.name}: {len(angles)} angles, but the stack {stack.shape} read as axes={axes!r} has "
            f"{stack.shape[t]} tilts; pass axes= (letters t, y, x) for its layout, or the right angles="
        )
    data = np.transpose(stack, [axes.index(c) for c in "tyx"])
    return TiltSeries(data, angles, sampling=sampling if sampling is not None else file_sampling, source=str(path.name))


def write_tilt_series(path: str | Path, series: TiltSeries) -> Path:
    """Write a tilt series as ``.npy`` (the data) plus a ``.rawtlt`` beside it (the angles).

    Both files are written atomically (:func:`atomtools.utils.atomic_path`), and together:
    on an error neither is replaced. :func:`read_tilt_series` reads the pair back. The
    pixel size is not stored (a ``.npy`` holds no metadata): pass ``sampling=`` when reading.

    Parameters
    ----------
    path : str or Path
        The ``.npy`` file; the angles go to the same stem with ``.rawtlt``.
    series : TiltSeries
        What to write: ``data`` as float32 ``(tilt, y, x)``, one angle [degrees] per line.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise ValueError(f"{path.name}: write_tilt_series writes a .npy file (and a .rawtlt beside it)")
    text = "".join(f"{float(a)!r}\n" for a in series.angles)
    with atomic_path(path) as tmp_data, atomic_path(path.with_suffix(".rawtlt")) as tmp_angles:
        with open(tmp_data, "wb") as fh:
            np.save(fh, np.ascontiguousarray(series.data, dtype=np.float32), allow_pickle=False)
        tmp_angles.write_text(text, encoding="utf-8")
    return path


def _check_axes(axes: str) -> str:
    """``axes`` lower-cased if it is a permutation of ``t``, ``y``, ``x``."""
    if not isinstance(axes, str) or sorted(axes.lower()) != ["t", "x", "y"]:
        raise ValueError(
            f"axes must name the stored stack's axes with the letters t (tilt), y (along the tilt axis) and x "
            f"(across it), each once, e.g. 'yxt' or 'tyx'; got {axes!r}"
        )
    return axes.lower()


def _sidecar(path: Path) -> Path | None:
    """The ``.tlt``/``.rawtlt`` angle file of the same stem beside ``path``, if any."""
    order = (".tlt", ".rawtlt") if path.suffix.lower() == ".ali" else (".rawtlt", ".tlt")
    for suffix in order:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _read_angles_file(path: Path) -> np.ndarray:
    """One angle [degrees] per line (blank lines and ``#`` comments skipped)."""
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1, comments="#")
    except ValueError as err:
        raise ValueError(f"{path.name}: expected one tilt angle (degrees) per line: {err}") from err
    if values.ndim != 1:
        raise ValueError(f"{path.name}: expected one tilt angle (degrees) per line, got {values.shape[1]} columns")
    return values


def _pick_mat(path: Path, arrays: dict[str, np.ndarray], variable: str | None):
    """The stack and the angles among a MATLAB file's numeric variables."""
    listing = ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in arrays.items()) or "none"
    found = [k for k in arrays if k.lower() in _ANGLE_NAMES and np.squeeze(arrays[k]).ndim <= 1]
    found.sort(key=lambda k: _ANGLE_NAMES.index(k.lower()))
    distinct = {tuple(np.ravel(arrays[k]).tolist()) for k in found}
    if len(distinct) > 1:
        raise ValueError(f"{path.name}: several different angle variables ({', '.join(found)}); pass angles=")
    file_angles = np.ravel(arrays[found[0]]) if found else None
    if variable is not None:
        if variable not in arrays:
            raise ValueError(f"{path.name} has no numeric variable {variable!r}; its variables: {listing}")
        return arrays[variable], file_angles
    stacks = [k for k, v in arrays.items() if v.ndim == 3]
    if len(stacks) != 1:
        what = "no 3D numeric variable" if not stacks else f"several 3D variables ({', '.join(stacks)})"
        raise ValueError(
            f"{path.name} holds {what}; pass variable= to choose the tilt series; its variables: {listing}"
        )
    return arrays[stacks[0]], file_angles


def _read_mat(path: Path, variable: str | None):
    import h5py

    if h5py.is_hdf5(path):  # MATLAB v7.3: HDF5, arrays stored with their axes reversed
        with h5py.File(path, "r") as f:
            arrays = {
                k: np.asarray(v).T
                for k, v in f.items()
                if isinstance(v, h5py.Dataset) and not k.startswith("#") and v.dtype.kind in "iuf"
            }
    else:
        from scipy.io import loadmat

        arrays = {
            k: v
            for k, v in loadmat(path).items()
            if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "iuf"
        }
    stack, file_angles = _pick_mat(path, arrays, variable)
    return stack, file_angles, None


def _read_mrc(path: Path):
    from rsciio.mrc import file_reader

    (record,) = file_reader(str(path), lazy=False)
    stack = np.asarray(record["data"])
    meta = record.get("original_metadata", {})
    fei = meta.get("fei_header")
    file_angles = None
    if fei is not None and stack.ndim == 3:
        tilts = np.asarray(fei.get("a_tilt", ()), dtype=np.float64).ravel()[: stack.shape[0]]
        if len(tilts) == stack.shape[0] and np.any(tilts != 0):
            file_angles = tilts
    x_axis = next((a for a in record["axes"] if a.get("name") == "x"), None)
    # rsciio reports a scale of 1 nm when the header has no cell size (MX = 0): trust only a real one
    factor = _LENGTH.get(_norm_unit(x_axis.get("units"))) if x_axis is not None else None
    file_sampling = None
    if _mrc_has_cell(meta) and factor is not None and float(x_axis["scale"]) > 0:
        file_sampling = float(x_axis["scale"]) * factor
    return stack, file_angles, file_sampling


def _read_tiff(path: Path):
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if tif.series[0].axes.endswith("S"):  # samples last: colour pixels, not a greyscale stack
            raise ValueError(f"{path.name}: a colour (RGB) TIFF; a tilt series is one greyscale page per tilt")
        if len(tif.series) == 1:
            stack = tif.series[0].asarray()
        else:  # pages written one by one: each its own series
            stack = np.stack([page.asarray() for page in tif.pages])
        file_sampling = None
        unit = (tif.imagej_metadata or {}).get("unit") if tif.is_imagej else None
        if "XResolution" in tif.pages[0].tags:
            file_sampling = _imagej_pixel_size(unit, tif.pages[0].tags["XResolution"].value)
    return stack, None, file_sampling

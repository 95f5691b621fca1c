"""Every reader of microscope files: lazy frame series and tilt series, with their pixel size.

Two containers come out, from one reading stack:

- :class:`Frames` (:mod:`.frames`): a lazy ``(n_frames, y, x)`` Dask array with its pixel
  size [Å], frame times [s], beam energy [eV] and metadata, from :func:`read_frames` (one
  file) or :func:`read_series` (a folder or list of files); :func:`require_sampling`,
  :func:`recorded_optics` and :func:`check_frames` read and check it.
- :class:`TiltSeries` (:mod:`.tilt`): an eager float32 ``(tilt, y, x)`` stack with its tilt
  angles [degrees], from :func:`read_tilt_series`; :func:`write_tilt_series` writes one back.

Both use one unit table, one pixel-size plausibility check (:data:`SAMPLING_RANGE`), one
MRC cell check and one ImageJ TIFF unit parser (:mod:`.units`). The modules:
:mod:`.frames` (the container and the public readers), :mod:`.formats` (the suffix ->
reader dispatch table :data:`SUFFIXES` and one ``_open_<format>`` per format, RosettaSciIO
among them), :mod:`.tiff` (TIFF files a chunk at a time), :mod:`.metadata` (look-ups in a
file's metadata tree and its JSON-able subset), :mod:`.units` and :mod:`.tilt`. The dose a
frame recorded is :mod:`atomtools.core.dose`'s.

A new reader goes here. A format of frames is one entry in :data:`SUFFIXES` (its suffix
and its name) and one ``_open_<format>(path, fmt)`` in :mod:`.formats`, listed in
``_OPENERS``, that returns the raw dict of the opened file: ``data`` (a Dask array, 2D or
3D), ``metadata`` (JSON-able, :func:`~.metadata._json_subset`), ``energy`` [eV] and
``times`` [s] or None, and ``sampling`` [Å] with ``sampling_found`` where the file states
it; :func:`read_frames` does the rest (the pixel-size checks, frame selection, times,
colour). For example, a raw 16-bit camera dump of known size::

    # in readers/formats.py
    SUFFIXES[".raw"] = "raw 16-bit (512 x 512 frames)"

    def _open_raw(path: Path, fmt: str) -> dict:
        from rsciio.utils.file import memmap_distributed  # each chunk maps the file: nothing read up front

        n = path.stat().st_size // (2 * 512 * 512)
        try:
            data = memmap_distributed(str(path), dtype="<u2", shape=(n, 512, 512), chunks=(1, 512, 512))
        except Exception as err:
            raise _unreadable(path, fmt, err) from err
        return {"data": data, "metadata": {"dtype": "uint16"}, "energy": None, "times": None}

    _OPENERS[".raw"] = _open_raw

A file RosettaSciIO reads needs only its ``rsciio`` module in ``_RSCIIO``. A tilt-series
format is one suffix in :data:`TILT_SUFFIXES` and one ``_read_<format>`` in :mod:`.tilt`
returning ``(stack, angles or None, sampling or None)``.

Examples
--------
>>> import numpy as np
>>> frames = Frames(np.zeros((2, 8, 8)), sampling=0.5, times=[0.0, 0.1], source="a.npy")
>>> frames.shape, require_sampling(frames), sorted(set(SUFFIXES) & set(TILT_SUFFIXES))
((2, 8, 8), 0.5, ['.mrc', '.npy', '.tif', '.tiff'])
"""

from . import formats, frames, metadata, tiff, tilt, units
from .formats import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .frames import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .metadata import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .tilt import *  # noqa: F403 - the module's public names, as its __all__ lists them
from .units import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*formats.__all__, *frames.__all__, *metadata.__all__, *tilt.__all__, *units.__all__]

"""What a frame goes through before a segmenter sees it: grey, normalized, flattened.

:func:`as_grey` takes any frame to float32 grey (one rule, :func:`atomtools.core.frames.to_grey`);
:func:`normalize_frame` is the affine map that sends the 1st and 99.5th percentile of the
lightly smoothed frame to 0 and 1, so counts, 8-bit and 16-bit PNGs and
background-subtracted frames all reach the network alike; :func:`background_level` is a
frame's smooth background (a grey opening wider than any gap between columns, smoothed).
The network's outputs go back to the frame's units with the same map.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.frames import to_grey

__all__ = ["BACKGROUND_WINDOW", "as_grey", "normalize_frame", "background_level"]

#: Width of the window of :func:`background_level` [Å]: wider than the gaps between
#: projected columns in any crystal the segmenter knows, so every window holds a gap.
BACKGROUND_WINDOW = 4.0


def as_grey(image, *, name: str = "image") -> np.ndarray:
    """A 2D float32 frame from a grey, RGB(A) or 16-bit image, or a clear error.

    RGB(A) images whose colour channels are equal (grey PNGs saved as colour) become
    their first channel; the alpha channel is dropped. Colour images are refused:
    which channel holds the signal is the user's call (the readers' one conversion,
    :func:`atomtools.core.frames.to_grey`). Integer images of any depth
    become float32 unchanged in value.

    Parameters
    ----------
    image : array-like
        (H, W), (H, W, 3) or (H, W, 4).
    name : str
        What to call it in messages (a file name).

    Returns
    -------
    numpy.ndarray
        The frame, float32, shape (H, W) (``image`` itself where it already is one).

    Examples
    --------
    >>> rgb = np.dstack([np.arange(256.0).reshape(16, 16)] * 3)
    >>> as_grey(rgb).shape
    (16, 16)
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = to_grey(arr, name=name, colour_axis=2)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected one 2D frame (H, W) or an RGB(A) image (H, W, 3|4), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected a real-valued image, got dtype {arr.dtype}")
    if min(arr.shape) < 16:
        raise ValueError(f"{name}: {arr.shape} is too small; need at least 16 x 16 pixels")
    return arr.astype(np.float32, copy=False)


def _strided_sample(image, *, max_pixels: int = 2**22) -> tuple[np.ndarray, int]:
    """The frame, or every ``step``-th pixel of a large one (at most ``max_pixels``), checked finite; and ``step``."""
    step = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / max_pixels))))
    sample = np.asarray(image[::step, ::step], np.float32)
    if not np.all(np.isfinite(sample)):
        raise ValueError(f"the frame holds {int(np.sum(~np.isfinite(sample)))} NaN or infinite pixel(s)")
    return sample, step


def _statistics(image, *, step: int | None = None) -> tuple[float, float]:
    """(offset, scale) of :func:`normalize_frame` from the frame, or a strided sample of a large one.

    ``step``: ``image`` is already a sample taking every ``step``-th pixel of the frame.
    """
    if step is None:
        image, step = _strided_sample(image)
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float32), 1.0 / step)
    lo, hi = np.percentile(smooth, [1.0, 99.5])
    if not hi > lo:
        raise ValueError("the frame is (nearly) constant: there are no atoms to find")
    return float(lo), float(hi - lo)


def normalize_frame(image, *, stats: tuple[float, float] | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """The network's input: ``(image - offset) / scale``, and ``(offset, scale)``.

    ``offset`` and ``scale`` put the 1st and 99.5th percentiles of the frame smoothed
    by one pixel at 0 and 1: indifferent to gain, offset, bit depth and dose.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) frame.
    stats : (float, float), optional
        Use these instead (the blocks of one large frame share its statistics).

    Returns
    -------
    tuple
        ``(x, (offset, scale))``: the network input, float32, shape of ``image``, and the two floats
        used.

    Examples
    --------
    >>> frame = np.linspace(0, 100, 64 * 64).reshape(64, 64)
    >>> a, _ = normalize_frame(frame)
    >>> b, _ = normalize_frame(7.3 * frame + 20.0)  # another gain and offset: the same input
    >>> bool(np.allclose(a, b, atol=1e-5))
    True
    >>> bool(abs(np.percentile(a, 1)) < 0.05 and abs(np.percentile(a, 99.5) - 1) < 0.05)
    True
    """
    offset, scale = stats if stats is not None else _statistics(image)
    return ((np.asarray(image, np.float32) - offset) / scale).astype(np.float32), (offset, scale)


def background_level(image, *, sampling: float | None = None, window: float = BACKGROUND_WINDOW) -> np.ndarray:
    """The smooth level under the atoms: the local minimum of the frame, smoothed.

    The frame is smoothed by 0.3 Å (noise), opened (the minimum over windows of
    ``window``, where a gap between columns falls in every one, then the maximum over
    as much, so a slope keeps its level) and smoothed by half a window: a thickness or
    contamination gradient, a detector offset or the diffuse level of a thick crystal,
    but not the atoms. All on a grid coarser by an eighth of the window (the level is
    smooth over a window), then interpolated back. The segmenter's input is the frame
    less this level (atoms on a dark floor, as everywhere in its library).

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) frame, atoms bright.
    sampling : float, optional
        Pixel size [Å]. Unknown: the window is an eighth of the frame's shorter side
        (at least 32 px), safe for any sampling at which a frame holds a few dozen
        columns.
    window : float
        Window [Å].

    Returns
    -------
    numpy.ndarray
        (H, W) float32 level, in the frame's units.

    Examples
    --------
    >>> from atomtools.simulation.stem import splat_gaussians
    >>> xx = np.mgrid[0:128, 0:128][1]
    >>> grid = np.array([[r, c] for r in range(8, 128, 16) for c in range(8, 128, 16)])
    >>> atoms = splat_gaussians((128, 128), grid, sigma=2)
    >>> ramp = 50.0 + 0.5 * xx  # a gradient under the atoms (64 counts across the frame)
    >>> level = background_level(100 * atoms + ramp, sampling=0.1)
    >>> bool(np.ptp((level - ramp)[32:-32, 32:-32]) < 5.0)  # the ramp (to a constant) away from the edges
    True
    >>> bool((100 * atoms + ramp - level).max() > 90)  # the atoms left above it
    True
    """
    frame = np.asarray(image, np.float32)
    if sampling is None:
        n = max(32, min(frame.shape) // 8)
        fine = 1.0
    else:
        n = max(3, int(round(window / sampling)))
        fine = max(0.5, 0.3 / sampling)
    # on a grid k times coarser (the level is smooth over n px): the same answer, k^2 times less work
    # (the block mean smooths as the 0.3 Å filter does at full resolution)
    k = max(1, n // 8)
    if k > 1:
        h, w = (frame.shape[0] // k) * k, (frame.shape[1] // k) * k
        small = np.pad(frame[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3)), ((0, 1), (0, 1)), mode="edge")
    else:
        small = ndimage.gaussian_filter(frame, fine)
    m = max(2, int(round(n / k)))
    low = ndimage.gaussian_filter(ndimage.grey_opening(small, size=(m, m), mode="reflect"), m / 2, mode="reflect")
    if k == 1:
        return low.astype(np.float32)
    rows = (np.arange(frame.shape[0]) + 0.5) / k - 0.5  # pixel centres on the coarse grid
    cols = (np.arange(frame.shape[1]) + 0.5) / k - 0.5
    return ndimage.map_coordinates(low, np.meshgrid(rows, cols, indexing="ij"), order=1, mode="nearest").astype(
        np.float32
    )

"""Frames as arrays: the checks every reader of an image applies (one pixel-size rule, one
shape rule, one grey conversion), normalization, resampling to another pixel size (the one resampler),
band-limited cropping, FFT-friendly sizes and the repair of dead and hot pixels.

Units: pixel sizes [Å].
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "fft_friendly_size",
    "fourier_crop",
    "normalize",
    "check_sampling",
    "check_frame",
    "resample_frame",
    "repair_pixels",
    "to_grey",
    "LUMINANCE",
    "SAMPLING_RANGE",
]

#: Weights of R, G and B in a grey image's luminance (ITU-R BT.601).
LUMINANCE = (0.299, 0.587, 0.114)


def to_grey(data, *, rgb: str | None = None, name: str = "image", colour_axis: int | None = None):
    """Grey data from grey, grey + alpha, RGB or RGBA data: the one conversion every reader uses.

    - grey data (no colour axis) is returned as it is;
    - a grey image saved as colour (R, G and B equal) becomes its first channel, alpha dropped;
    - true colour is converted only when asked (``rgb="luminance"``: 0.299 R + 0.587 G +
      0.114 B), and otherwise refused: which channel holds the signal is the user's call.

    Works on NumPy and Dask arrays alike (a Dask array stays lazy, except that the check
    for equal channels reads it).

    Parameters
    ----------
    data : array-like
        An image or a stack of them.
    rgb : {None, "luminance"}
        What to do with true colour.
    name : str
        What to call the data in messages (a file name).
    colour_axis : int, optional
        The axis that holds the channels (1 to 4 of them); default: the last, where it
        has 3 or 4 entries and the axis before it more than 4 (else the data are grey).

    Returns
    -------
    array
        The grey data, without the colour axis (float32 where converted, otherwise the
        input's dtype); ``data`` itself where it is grey already.

    Raises
    ------
    ValueError
        For true colour without ``rgb="luminance"`` (naming ``name``), an unknown ``rgb``,
        or more than 4 channels.

    Examples
    --------
    >>> grey = np.arange(64.0).reshape(8, 8)
    >>> to_grey(np.dstack([grey] * 3 + [np.ones_like(grey)])).shape  # grey saved as RGBA
    (8, 8)
    >>> round(float(to_grey(np.dstack([grey, 0 * grey, 0 * grey]), rgb="luminance")[1, 0]), 3)  # 0.299 x 8
    2.392
    """
    if rgb not in (None, "luminance"):
        raise ValueError(f"{name}: rgb must be None or 'luminance', got {rgb!r}")
    if colour_axis is None:
        if not (data.ndim >= 3 and data.shape[-1] in (3, 4) and data.shape[-2] > 4):
            return data
        colour_axis = data.ndim - 1
    data = np.moveaxis(data, colour_axis, -1)
    n = data.shape[-1]
    if n > 4:
        raise ValueError(f"{name}: {n} colour channels; 1 to 4 (grey, grey + alpha, RGB, RGBA) can be converted")
    if n in (1, 2):  # grey (+ alpha)
        return data[..., 0]
    r, g, b = data[..., 0], data[..., 1], data[..., 2]
    if rgb is None and bool((r == g).all()) and bool((r == b).all()):
        return r
    if rgb is None:
        raise ValueError(
            f"{name}: a colour image (shape {tuple(data.shape)}, its R, G and B differ); frames are grey: convert it "
            "to grey yourself (which channel holds the signal is yours to say), or read it with rgb='luminance'"
        )
    weights = np.asarray(LUMINANCE, np.float32)
    return (data[..., :3].astype(np.float32) * weights).sum(axis=-1)


def _valuation2(n: int) -> int:
    return (n & -n).bit_length() - 1


def fft_friendly_size(n: int) -> int:
    """Smallest even, 7-smooth grid size >= n with at most 2^5 as its power-of-two factor.

    FFTW's ESTIMATE planner (deterministic, unlike MEASURE) is slow on sizes with a
    large power of two; see ``benchmarks/simulate.py``.

    Parameters
    ----------
    n : int
        Least size [points].

    Returns
    -------
    int
        The grid size [points].

    Examples
    --------
    >>> [fft_friendly_size(n) for n in (64, 768, 820)]
    [70, 784, 840]
    """
    m = max(int(np.ceil(n)), 2)
    while True:
        if m % 2 == 0 and _valuation2(m) <= 5:
            r = m
            for p in (2, 3, 5, 7):
                while r % p == 0:
                    r //= p
            if r == 1:
                return m
        m += 1


def fourier_crop(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Band-limited resampling of a periodic array by cropping or padding its spectrum.

    Keeps the sample positions ``x = i * extent / n`` of both grids and the mean value.

    Parameters
    ----------
    array : numpy.ndarray
        (..., N, M) real or complex array.
    shape : two int
        New (N', M').

    Returns
    -------
    numpy.ndarray
        (..., N', M') array of the input's dtype kind.

    Examples
    --------
    >>> x = np.cos(2 * np.pi * np.arange(8) / 8)[None, :] * np.ones((8, 1))
    >>> np.allclose(fourier_crop(x, (4, 4)), np.cos(2 * np.pi * np.arange(4) / 4)[None, :])
    True
    """
    array = np.asarray(array)
    n, m = array.shape[-2:]
    n2, m2 = shape
    if (n2, m2) == (n, m):
        return array.copy()
    spec = np.fft.fftshift(np.fft.fft2(array), axes=(-2, -1))
    out = np.zeros(array.shape[:-2] + (n2, m2), complex)
    cn, cm = n // 2, m // 2
    cn2, cm2 = n2 // 2, m2 // 2
    hn, hm = min(n, n2) // 2, min(m, m2) // 2
    out[..., cn2 - hn : cn2 - hn + min(n, n2), cm2 - hm : cm2 - hm + min(m, m2)] = spec[
        ..., cn - hn : cn - hn + min(n, n2), cm - hm : cm - hm + min(m, m2)
    ]
    result = np.fft.ifft2(np.fft.ifftshift(out, axes=(-2, -1))) * (n2 * m2) / (n * m)
    if np.isrealobj(array):
        return result.real.astype(array.dtype if array.dtype.kind == "f" else float)
    return result.astype(array.dtype)


def normalize(image: np.ndarray) -> np.ndarray:
    """The network input: an image divided by its mean (counts or intensity alike).

    Parameters
    ----------
    image : numpy.ndarray
        Counts or intensity, mean > 0.

    Returns
    -------
    numpy.ndarray
        ``image / image.mean()``, float32, shape of ``image`` (mean 1).

    Raises
    ------
    ValueError
        If the image is not finite or its mean is not positive.

    Examples
    --------
    >>> normalize(np.array([[2.0, 6.0]])).tolist()
    [[0.5, 1.5]]
    """
    image = np.asarray(image, np.float32)
    if not np.all(np.isfinite(image)):
        raise ValueError("image holds NaN or infinity")
    mean = float(image.mean()) if image.size else 0.0
    if not mean > 0:
        raise ValueError(f"image mean must be positive to normalize (counts or intensity), got {mean}")
    return image / mean


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


#: Plausible pixel sizes [Å]: anything outside is refused as a unit mistake.
SAMPLING_RANGE = (0.001, 1000.0)


def _check_plausible(value, found: str, source: str, *, explicit: bool = False) -> float:
    """``value`` [Å] as a float, or a ValueError naming it (and the value/unit ``found`` in the file).

    Parameters
    ----------
    value : float
        Pixel size [Å].
    found : str
        The value and unit the file holds (``"0.5 nm"``), for the message.
    source : str
        The file or function the value came from, for the message.
    explicit : bool
        True when the value was passed as ``sampling=`` rather than read from a file.

    Returns
    -------
    float
        ``value`` [Å].

    Examples
    --------
    >>> _check_plausible(0.5, "0.05 nm", "a.tif")
    0.5
    >>> _check_plausible(5000.0, "500 nm", "a.tif")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: a.tif: the file's pixel size 500 nm = 5000 Å is implausible (outside 0.001..1000 Å); pass ...
    """
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


def check_sampling(sampling, name: str = "sampling") -> float:
    """A pixel size as a positive float within :data:`SAMPLING_RANGE`, or a ValueError that says what was expected.

    Parameters
    ----------
    sampling : float
        Pixel size [Å/px].
    name : str
        The parameter's name in the message.

    Returns
    -------
    float
        The pixel size [Å/px].

    Examples
    --------
    >>> check_sampling("0.16")
    Traceback (most recent call last):
    ...
    ValueError: sampling must be a positive pixel size [Å/px] as a number, got the string '0.16' (pass sampling=0.16)
    """
    if isinstance(sampling, str | bytes):
        raise ValueError(
            f"{name} must be a positive pixel size [Å/px] as a number, got the string {sampling!r}"
            + (f" (pass {name}={float(sampling)!r})" if _is_number(sampling) else "")
        )
    try:
        value = float(sampling)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0 or isinstance(sampling, bool):
        raise ValueError(f"{name} must be a positive pixel size [Å/px] as a number, got {sampling!r}")
    lo, hi = SAMPLING_RANGE  # the one plausible range: the readers' (:func:`_check_plausible`) too
    if not lo <= value <= hi:
        raise ValueError(
            f"{name}={sampling!r} Å per pixel is implausible (outside {lo:g}..{hi:g} Å): {name} is in Å per pixel "
            "(0.127 for 0.0127 nm)"
        )
    return value


def check_frame(image) -> np.ndarray:
    """The frame as float32 2D array, or a ValueError saying what is wrong with it.

    Parameters
    ----------
    image : array-like
        One 2D frame of real numbers.

    Returns
    -------
    numpy.ndarray
        The frame, float32, shape (H, W); a few negative pixels (at most 0.1 %) are clipped to 0.

    Examples
    --------
    >>> check_frame([[1, 2], [3, 4]])
    Traceback (most recent call last):
    ...
    ValueError: the frame is empty or tiny ((2, 2)); need at least 8 x 8 pixels
    """
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(
            f"expected one 2D frame, got an array of shape {arr.shape}; pass frames of a series one at a time"
        )
    if arr.size == 0 or min(arr.shape) < 8:
        raise ValueError(f"the frame is empty or tiny ({arr.shape}); need at least 8 x 8 pixels")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"expected a real-valued image, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"the frame holds {int(np.sum(~np.isfinite(arr)))} NaN or infinite pixel(s)")
    if np.ptp(arr) == 0:
        raise ValueError("the frame is constant: there is nothing to retrieve")
    negative = int(np.sum(arr < 0))
    if negative > 0.001 * arr.size or arr.mean() <= 0:
        raise ValueError(
            f"{negative} of {arr.size} pixels are negative (min {arr.min():.3g}, mean {arr.mean():.3g}): expected "
            "electron counts or an intensity >= 0, as the detector recorded them; a background-subtracted or "
            "offset-corrected frame must get its offset back first"
        )
    return np.clip(arr, 0, None) if negative else arr


def resample_frame(
    image: np.ndarray, sampling: float, new_sampling: float, *, order: int = 1, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Resample a frame to another pixel size, keeping pixel (i, j) at (j, i) * sampling [Å].

    Shrinking (a coarser ``new_sampling``) averages over the area each new pixel covers
    before sampling it, so every electron counts: a frame taken at 0.05 Å/px and
    shrunk to 0.16 Å/px keeps its dose per Å² and its shot noise falls as binning would
    make it fall (bilinear sampling alone would keep about one electron in ten).
    Enlarging, and class maps (``order=0``), interpolate.

    Parameters
    ----------
    image : numpy.ndarray
        (..., H, W) array(s).
    sampling, new_sampling : float
        Old and new pixel size [Å].
    order : int
        Spline order: 0 for class maps, 1 for intensities and probabilities.
    shape : two int, optional
        Output (H, W); default covers the same field of view.

    Returns
    -------
    numpy.ndarray
        The frame(s) resampled to ``new_sampling`` [Å/px], shape (..., H', W') (``shape`` where given),
        in the dtype of ``image``.

    Examples
    --------
    >>> counts = np.random.default_rng(0).poisson(2.0, (300, 300)).astype(float)
    >>> binned = resample_frame(counts, 0.05, 0.15)
    >>> round(float(binned.mean()), 1), bool(binned.std() < counts.std() / 2.5)  # same dose, less noise
    (2.0, True)
    """
    from scipy import ndimage

    image = np.asarray(image)
    h, w = image.shape[-2:]
    if shape is None:
        shape = (
            int(np.floor((h - 1) * sampling / new_sampling)) + 1,
            int(np.floor((w - 1) * sampling / new_sampling)) + 1,
        )
    ratio = new_sampling / sampling
    flat = image.reshape(-1, h, w)
    if order > 0 and ratio > 1.0 + 1e-6:
        # shrink: first average over each new pixel's area (a Gaussian of the variance a
        # box of `ratio` pixels adds to one pixel), then sample at the new pixel centres
        # (edges extended by odd reflection, which keeps a linear trend across them)
        sigma = np.sqrt((ratio**2 - 1.0) / 12.0)
        pad = int(np.ceil(4 * sigma)) + 1
        smooth = [
            ndimage.gaussian_filter(np.pad(a.astype(np.float64), pad, mode="reflect", reflect_type="odd"), sigma)
            for a in flat
        ]
        flat = np.stack([a[pad:-pad, pad:-pad] for a in smooth])
        if image.min() >= 0:
            flat = np.clip(flat, 0, None)
    coords = np.meshgrid(np.arange(shape[0]) * ratio, np.arange(shape[1]) * ratio, indexing="ij")
    out = np.stack([ndimage.map_coordinates(a, coords, order=order, mode="nearest") for a in flat])
    return out.reshape(image.shape[:-2] + tuple(shape)).astype(image.dtype)


def repair_pixels(frame: np.ndarray, *, threshold: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Find dead and hot pixels and replace them by the median of their neighbours.

    A pixel is bad when it differs from the median of its 3 x 3 neighbourhood (itself
    excluded) by more than ``threshold`` times the noise expected there: the Poisson
    noise ``sqrt(median)`` for counts, or the robust spread (MAD) of the frame's
    residuals if that is larger (scaled or filtered data). A zero among neighbours of
    15 counts or more is dead too (Poisson: a chance of 3e-7). Isolated defects only: a
    dead column or a cluster wider than one pixel is left alone.

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) frame (counts or any intensity).
    threshold : float
        Deviation that marks a pixel bad, in units of the expected noise.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The repaired float32 frame and the (H, W) bool mask of the pixels replaced.

    Examples
    --------
    >>> f = np.random.default_rng(0).poisson(100.0, (32, 32)).astype(float)
    >>> f[5, 7], f[20, 3] = 0.0, 1e5
    >>> fixed, bad = repair_pixels(f)
    >>> sorted(zip(*np.nonzero(bad)))
    [(np.int64(5), np.int64(7)), (np.int64(20), np.int64(3))]
    """
    from scipy import ndimage

    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim != 2:
        raise ValueError(f"repair_pixels expects one 2D frame, got shape {frame.shape}")
    footprint = np.ones((3, 3), bool)
    footprint[1, 1] = False
    median = ndimage.median_filter(frame, footprint=footprint, mode="reflect")
    residual = frame - median
    mad = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    noise = np.maximum(np.sqrt(np.clip(median, 0, None)), mad)
    bad = (np.abs(residual) > threshold * np.maximum(noise, 1e-12)) | ((frame <= 0) & (median >= 15))
    repaired = np.where(bad, median, frame).astype(np.float32)
    return repaired, bad

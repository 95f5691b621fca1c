"""Parallel-beam 2D projection: the conventions, and one operator for NumPy and PyTorch.

Conventions (stated once, tested against scikit-image):

- An image is (N, N), row ``y`` down, column ``x`` right, rotation centre at
  ``(N // 2, N // 2)``; everything outside the inscribed circle of radius ``N // 2`` is
  zero (a tomogram slice is a disc of the sample).
- A **sinogram** is ``(n_angles, n_detector)``: one row per tilt, in the order of
  ``angles``, ``n_detector = N``. A tilt series ``(n_angles, n_slices, n_detector)``
  holds one sinogram per slice along the tilt axis (``series[:, j, :]``).
- Angles are in degrees, -90 .. 90, and equal to scikit-image's ``theta``: the row of
  angle ``θ`` is ``skimage.transform.radon(image, [θ])[:, 0]``. A point at column ``x``,
  row ``y`` lands on detector pixel ``t = (x − c) cos θ − (y − c) sin θ + c`` (``c = N //
  2``): with ``y`` pointing up as displayed, ``t = x cos θ + y sin θ``, so 0° projects
  along ``y`` onto ``x`` and +90° sees the top of the image at the high end of the
  detector. Half a turn mirrors the detector about ``c``: ``p(θ + 180°, t) = p(θ, 2c − t)``.
  (scikit-image stores sinograms transposed, ``(n_detector, n_angles)``;
  :func:`to_skimage` and :func:`from_skimage` convert.)

:func:`system_matrix` builds the exact matrix of that transform (the same bilinear
interpolation of the rotated image that ``radon`` performs), as a SciPy CSR matrix.
:class:`Projector` wraps it for batched forward and back projection in NumPy and, being
a sparse matrix product, differentiably in PyTorch (about a millisecond per 128 x 128
image on one CPU core; ``benchmarks/tomo.py``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

__all__ = [
    "wedge_angles",
    "full_angles",
    "disc_mask",
    "angle_weights",
    "system_matrix",
    "Projector",
    "to_skimage",
    "from_skimage",
]


def full_angles(n: int = 128) -> np.ndarray:
    """``n`` angles evenly covering 180 degrees, -90 .. 90 (exclusive) [deg].

    Parameters
    ----------
    n : int
        Number of projections.

    Returns
    -------
    numpy.ndarray
        The angles [deg], float64, shape (n,).

    Examples
    --------
    >>> full_angles(4)
    array([-90., -45.,   0.,  45.])
    """
    return -90.0 + 180.0 * np.arange(n) / n


def wedge_angles(wedge: float, *, n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The regular grid of :func:`full_angles` with a missing wedge cut out around ±90 degrees.

    A tilt holder reaching ±α misses the angles beyond it: a wedge of ``180 - 2α``
    degrees. The source protocol keeps 96 of 128 projections for a 45 degree wedge.

    Parameters
    ----------
    wedge : float
        Missing wedge [deg], 0 .. 180.
    n : int
        Projections of the full grid.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The full grid [deg] and a boolean mask of the measured angles.

    Examples
    --------
    >>> angles, measured = wedge_angles(45.0)
    >>> int(measured.sum()), float(angles[measured].min()), float(angles[measured].max())
    (96, -67.5, 66.09375)
    """
    if not 0 <= wedge < 180:
        raise ValueError(f"wedge must lie in 0 .. 180 degrees, got {wedge}")
    angles = full_angles(n)
    limit = 90.0 - wedge / 2
    # half-open, like the grid itself: 128 - 32 = 96 kept for 45 degrees, as the source protocol
    return angles, (angles >= -limit - 1e-9) & (angles < limit - 1e-9)


def disc_mask(n: int) -> np.ndarray:
    """True inside the reconstruction disc of an (n, n) image (scikit-image's circle).

    Parameters
    ----------
    n : int
        Image size [px].

    Returns
    -------
    numpy.ndarray
        bool, shape (n, n).
    """
    y, x = np.ogrid[:n, :n]
    return (y - n // 2) ** 2 + (x - n // 2) ** 2 <= (n // 2) ** 2


@lru_cache(maxsize=8)
def _matrix(n: int, angles: tuple[float, ...]) -> sp.csr_matrix:
    c = n // 2
    r, col = np.mgrid[:n, :n].astype(np.float64)
    rows, cols, vals = [], [], []
    for i, theta in enumerate(np.deg2rad(np.asarray(angles))):
        cos, sin = np.cos(theta), np.sin(theta)
        # scikit-image's radon: output pixel (r, col) samples the input at (y', x')
        xs = cos * (col - c) + sin * (r - c) + c
        ys = -sin * (col - c) + cos * (r - c) + c
        x0, y0 = np.floor(xs), np.floor(ys)
        fx, fy = xs - x0, ys - y0
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            yy, xx = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
            ok = (yy >= 0) & (yy < n) & (xx >= 0) & (xx < n) & (w > 1e-12)
            rows.append(i * n + col.astype(np.int64)[ok])
            cols.append(yy[ok] * n + xx[ok])
            vals.append(w[ok])
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    matrix = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(len(angles) * n, n * n))
    matrix.sum_duplicates()
    return matrix


def system_matrix(n: int, angles) -> sp.csr_matrix:
    """The projection matrix: ``(A @ image.ravel()).reshape(n_angles, n)`` is the sinogram.

    Equal to scikit-image's ``radon(image, angles, circle=True)`` (transposed) to float32
    round-off for images that vanish outside the disc (``tests/test_tomo.py``). Cached
    per ``(n, angles)``.

    Parameters
    ----------
    n : int
        Image size and detector width [px].
    angles : array_like
        Projection angles [deg].

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_angles * n, n * n)``, float32.
    """
    angles = np.asarray(angles, dtype=np.float64).ravel()
    if n < 2:
        raise ValueError(f"image size must be at least 2 px, got {n}")
    return _matrix(int(n), tuple(float(a) for a in angles))


class Projector:
    """Forward and back projection for one image size and set of angles, NumPy or PyTorch.

    Parameters
    ----------
    n : int
        Image size [px] (square images, detector width ``n``).
    angles : array_like
        Projection angles [deg].

    Examples
    --------
    >>> p = Projector(32, [0.0, 90.0])
    >>> image = np.zeros((32, 32), np.float32); image[16, 10] = 1.0
    >>> sino = p.forward(image)
    >>> sino.shape, int(sino[0].argmax()), int(sino[1].argmax())
    ((2, 32), 10, 16)
    """

    def __init__(self, n: int, angles):
        self.n = int(n)
        self.angles = np.asarray(angles, dtype=np.float64).ravel()
        self.matrix = system_matrix(self.n, self.angles)
        self._torch: dict = {}

    @property
    def shape(self) -> tuple[int, int]:
        """Sinogram shape ``(n_angles, n)``."""
        return (len(self.angles), self.n)

    def forward(self, image):
        """Project images: (..., n, n) -> (..., n_angles, n); NumPy or torch (differentiable).

        Parameters
        ----------
        image : numpy.ndarray or torch.Tensor
            One image or a batch.
        """
        return self._apply(image, transpose=False)

    def back(self, sinogram):
        """Back-project (the adjoint, unfiltered): (..., n_angles, n) -> (..., n, n).

        Parameters
        ----------
        sinogram : numpy.ndarray or torch.Tensor
            One sinogram or a batch.
        """
        return self._apply(sinogram, transpose=True)

    def fbp(self, sinogram):
        """Filtered back-projection with scikit-image's ramp filter; NumPy or torch (differentiable).

        Each angle weighs the angular interval it stands for (half the gaps to its
        neighbours), so a wedge, a sparse series or an irregular set of angles is
        weighed right; for a regular grid this is scikit-image's ``iradon``
        (``tests/test_tomo.py``). Batched.

        Parameters
        ----------
        sinogram : numpy.ndarray or torch.Tensor
            ``(..., n_angles, n)``.
        """
        import torch

        is_numpy = isinstance(sinogram, np.ndarray)
        x = torch.from_numpy(np.ascontiguousarray(sinogram, dtype=np.float32)) if is_numpy else sinogram
        weights = torch.from_numpy(angle_weights(self.angles)).to(x.device)[:, None]
        image = self.back((self.ramp_filter(x) * weights).contiguous())
        image = image * torch.from_numpy(disc_mask(self.n).astype(np.float32)).to(x.device)
        return image.numpy() if is_numpy else image

    def ramp_filter(self, sinogram):
        """Each row filtered with scikit-image's ramp filter (the first half of :meth:`fbp`); torch, differentiable.

        Parameters
        ----------
        sinogram : torch.Tensor
            ``(..., n_angles, n)``.

        Returns
        -------
        torch.Tensor
            The filtered rows, same shape.
        """
        import torch

        size = max(64, int(2 ** np.ceil(np.log2(2 * self.n))))
        ramp = torch.from_numpy(_ramp(size)).to(sinogram.device)
        filtered = torch.fft.irfft(torch.fft.rfft(sinogram, n=size, dim=-1) * ramp[: size // 2 + 1], n=size, dim=-1)
        return filtered[..., : self.n]

    def _apply(self, x, *, transpose: bool):
        n_in = self.n * self.n if not transpose else len(self.angles) * self.n
        out_shape = self.shape if not transpose else (self.n, self.n)
        if tuple(x.shape[-2:]) != ((self.n, self.n) if not transpose else self.shape):
            expected = (self.n, self.n) if not transpose else self.shape
            raise ValueError(f"expected (..., {expected[0]}, {expected[1]}), got shape {tuple(x.shape)}")
        lead = tuple(x.shape[:-2])
        if isinstance(x, np.ndarray):
            if transpose and "T" not in self._torch:
                self._torch["T"] = self.matrix.T.tocsr()
            matrix = self._torch["T"] if transpose else self.matrix
            flat = x.reshape(-1, n_in).astype(np.float32, copy=False)
            return np.asarray(matrix @ flat.T).T.reshape(*lead, *out_shape)
        flat = x.reshape(-1, n_in).to(_float32())
        matrix, adjoint = self._csr(transpose, x.device), self._csr(not transpose, x.device)
        return _sparse_matmul().apply(matrix, adjoint, flat.T).T.reshape(*lead, *out_shape)

    def _csr(self, transpose: bool, device):
        key = (transpose, str(device))
        if key not in self._torch:
            import warnings

            import torch

            m = self.matrix.T.tocsr() if transpose else self.matrix
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                self._torch[key] = torch.sparse_csr_tensor(
                    torch.from_numpy(m.indptr.astype(np.int64)),
                    torch.from_numpy(m.indices.astype(np.int64)),
                    torch.from_numpy(m.data.astype(np.float32)),
                    size=m.shape,
                    device=device,
                    check_invariants=False,
                )
        return self._torch[key]


def angle_weights(angles) -> np.ndarray:
    """Back-projection weight of each angle: half the angular interval it stands for [rad].

    Half the gaps to its two neighbours (one neighbour at the ends of the range); a
    regular grid of ``N`` angles over 180 degrees gives ``π / (2N)`` each, as ``iradon``.

    Parameters
    ----------
    angles : array_like
        Angles [deg], ascending.

    Returns
    -------
    numpy.ndarray
        The weights [rad], float32, shape (n_angles,); π/2 for a single angle.

    Examples
    --------
    >>> np.round(angle_weights([0, 10, 20, 40]) / np.deg2rad(1) * 2, 3).tolist()
    [10.0, 10.0, 15.0, 20.0]
    """
    a = np.deg2rad(np.asarray(angles, dtype=np.float64))
    if len(a) < 2:
        return np.full(len(a), np.pi / 2, np.float32)
    gaps = np.diff(a)
    width = np.empty_like(a)
    width[1:-1] = (gaps[:-1] + gaps[1:]) / 2
    width[0], width[-1] = gaps[0], gaps[-1]
    return (width / 2).astype(np.float32)


@lru_cache(maxsize=4)
def _ramp(size: int) -> np.ndarray:
    # scikit-image's ramp filter, built from its spatial kernel (no DC offset)
    k = np.concatenate((np.arange(1, size / 2 + 1, 2, dtype=int), np.arange(size / 2 - 1, 0, -2, dtype=int)))
    f = np.zeros(size)
    f[0] = 0.25
    f[1::2] = -1 / (np.pi * k) ** 2
    return (2 * np.real(np.fft.fft(f))).astype(np.float32)


def _float32():
    """``torch.float32`` (imported on first use: the NumPy path needs no PyTorch)."""
    import torch

    return torch.float32


@lru_cache(maxsize=1)
def _sparse_matmul():
    import torch

    class SparseMatmul(torch.autograd.Function):
        """``A @ x`` with the gradient ``A.T @ g`` from a precomputed CSR transpose (fast on CPU)."""

        @staticmethod
        def forward(ctx, matrix, adjoint, x):
            ctx.adjoint = adjoint
            return matrix @ x.contiguous()

        @staticmethod
        def backward(ctx, grad):
            return None, None, ctx.adjoint @ grad.contiguous()

    return SparseMatmul


def to_skimage(sinogram: np.ndarray) -> np.ndarray:
    """Our (n_angles, n) sinogram as scikit-image's (n, n_angles).

    Parameters
    ----------
    sinogram : numpy.ndarray
        ``(n_angles, n)``.

    Returns
    -------
    numpy.ndarray
        The transposed sinogram, C-contiguous, shape (n, n_angles).
    """
    return np.ascontiguousarray(np.asarray(sinogram).T)


def from_skimage(sinogram: np.ndarray) -> np.ndarray:
    """scikit-image's (n, n_angles) sinogram in our (n_angles, n) layout.

    Parameters
    ----------
    sinogram : numpy.ndarray
        ``(n, n_angles)``.

    Returns
    -------
    numpy.ndarray
        The transposed sinogram, C-contiguous, shape (n_angles, n).
    """
    return np.ascontiguousarray(np.asarray(sinogram).T)

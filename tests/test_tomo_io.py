"""Tilt-series files (atomtools.readers.tilt): the real MATLAB series, MRC, TIFF, NumPy, errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile

from atomtools.readers import TILT_SUFFIXES, TiltSeries, check_angles, read_tilt_series, write_tilt_series

from .conftest import SHARED_MIRROR

REAL_MAT = SHARED_MIRROR / "tomodeepfusion" / "dataadf.mat"


def _stack(shape=(3, 4, 5), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def _write_mrc(path, data, *, cell=None, fei=None):
    """A minimal little-endian MRC2014 file (mode 2, float32): 1024-byte header, optional FEI extended header.

    ``cell`` is the pixel size [Å] written as Xlen/MX (None: both 0); ``fei`` is (tilt angles [degrees],
    pixel size [m]).
    """
    nz, ny, nx = data.shape
    words = np.zeros(256, np.int32)
    floats = words.view(np.float32)
    words[0:4] = nx, ny, nz, 2  # NX, NY, NZ, MODE
    if cell is not None:  # else MX = Xlen = 0: no cell, which rsciio reports as a scale of 1 nm
        words[7:10] = nx, ny, nz  # MX, MY, MZ
        floats[10:13] = cell * nx, cell * ny, cell * nz  # Xlen, Ylen, Zlen [Å]
    floats[13:16] = 90.0
    words[16:19] = 1, 2, 3  # MAPC, MAPR, MAPS
    extended = b""
    if fei is not None:
        records = np.zeros((1024, 32), np.float32)  # 1024 records of 128 bytes
        records[:nz, 0] = fei[0]  # a_tilt
        records[:nz, 11] = fei[1]  # pixel_size
        extended = records.tobytes()
        words[23] = len(extended)  # NEXT
    header = bytearray(words.tobytes())
    header[208:212] = b"MAP "
    header[212:214] = b"\x44\x44"  # little-endian machine stamp
    path.write_bytes(bytes(header) + extended + data.astype("<f4").tobytes())
    return path


# --- the real file -------------------------------------------------------------------------


def test_real_matlab_series_reads_as_tilt_y_x():
    if not REAL_MAT.is_file():
        pytest.skip(f"the shared data mirror is absent ({REAL_MAT})")
    series = read_tilt_series(REAL_MAT)
    assert series.shape == (15, 128, 128) and series.data.dtype == np.float32
    np.testing.assert_array_equal(series.angles, np.arange(-70, 71, 10))
    assert series.angles.dtype == np.float64 and series.sampling is None and series.source == "dataadf.mat"

    raw = scipy.io.loadmat(REAL_MAT)["adf"]  # (y, x, tilt)
    # the 0 degree tilt (index 7) is the projection image adf(:, :, 8) of MATLAB
    assert series.angles[7] == 0
    np.testing.assert_array_equal(series.data[7], raw[:, :, 7])
    # a slice's sinogram is what TomoDeepFusion hands skimage's iradon: adf[j, :, :] = (x, tilt)
    np.testing.assert_array_equal(series.sinogram(64), raw[64].T)
    np.testing.assert_array_equal(series.sinograms[64], raw[64].T)

    # ADF: every projection sees the whole particle, so the total intensity per tilt is about
    # constant (measured: max/min = 1.47); totals over the wrong axes vary by 5 to 7 times
    totals = series.data.astype(np.float64).sum(axis=(1, 2))
    assert totals.max() / totals.min() < 2
    per_slice = series.data.astype(np.float64).sum(axis=(0, 2))
    assert per_slice.max() / per_slice.min() > 2


# --- MATLAB --------------------------------------------------------------------------------


def test_matlab_v5_default_layout_and_variable_choice(tmp_path):
    yxt = _stack((4, 5, 3))
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"tilts": yxt, "other": yxt + 1, "Theta": np.array([[-30, 0, 30]], np.int16)})
    with pytest.raises(ValueError, match=r"several 3D variables \(tilts, other\).*variable="):
        read_tilt_series(path)
    with pytest.raises(ValueError, match=r"no numeric variable 'nope'.*tilts \(4, 5, 3\)"):
        read_tilt_series(path, variable="nope")
    series = read_tilt_series(path, variable="other")
    np.testing.assert_array_equal(series.data, np.transpose(yxt + 1, (2, 0, 1)))
    np.testing.assert_array_equal(series.angles, [-30, 0, 30])  # found as "Theta", any case

    # only the first axis matches the angle count: taken as the tilt
    tyx = _stack((3, 4, 5))
    scipy.io.savemat(tmp_path / "first.mat", {"stack": tyx, "angles": [-30.0, 0.0, 30.0]})
    np.testing.assert_array_equal(read_tilt_series(tmp_path / "first.mat").data, tyx)


def test_matlab_v73_hdf5_is_transposed_back(tmp_path):
    yxt = _stack((4, 5, 3))
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:  # MATLAB stores the axes reversed
        f["adf"] = yxt.T
        f["angles"] = np.array([[-40.0, 0.0, 40.0]]).T
    series = read_tilt_series(path)
    np.testing.assert_array_equal(series.data, np.transpose(yxt, (2, 0, 1)))
    np.testing.assert_array_equal(series.angles, [-40, 0, 40])


# --- NumPy and writing ---------------------------------------------------------------------


def test_npy_round_trip_with_rawtlt(tmp_path):
    series = TiltSeries(_stack(), [-60.0, 0.5, 60.0], sampling=0.8, source="made")
    path = write_tilt_series(tmp_path / "out" / "series.npy", series)
    assert sorted(p.name for p in path.parent.iterdir()) == ["series.npy", "series.rawtlt"]
    assert path.with_suffix(".rawtlt").read_text().split() == ["-60.0", "0.5", "60.0"]
    back = read_tilt_series(path, sampling=0.8)
    np.testing.assert_array_equal(back.data, series.data)
    np.testing.assert_array_equal(back.angles, series.angles)
    assert back.sampling == 0.8 and back.source == "series.npy"
    assert read_tilt_series(path).sampling is None  # a .npy holds no pixel size


def test_write_is_all_or_nothing(tmp_path, monkeypatch):
    path = write_tilt_series(tmp_path / "s.npy", TiltSeries(_stack(), [-1, 0, 1]))
    before = path.read_bytes(), path.with_suffix(".rawtlt").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        write_tilt_series(path, TiltSeries(_stack(seed=1), [-2, 0, 2]))
    assert (path.read_bytes(), path.with_suffix(".rawtlt").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy", "s.rawtlt"]
    with pytest.raises(ValueError, match=r"writes a \.npy"):
        write_tilt_series(tmp_path / "s.tif", TiltSeries(_stack(), [-1, 0, 1]))


def test_axes_override_and_explicit_angles(tmp_path):
    yxt = _stack((4, 5, 3))
    path = tmp_path / "yxt.npy"
    np.save(path, yxt)
    path.with_suffix(".rawtlt").write_text("-10\n0\n10\n")
    series = read_tilt_series(path, axes="YXT", angles=[-20, 0, 20], sampling=2.0)
    np.testing.assert_array_equal(series.data, np.transpose(yxt, (2, 0, 1)))
    np.testing.assert_array_equal(series.angles, [-20, 0, 20])  # explicit beats the sidecar
    assert series.sampling == 2.0
    np.testing.assert_array_equal(read_tilt_series(path, axes="xyt").data, np.transpose(yxt, (2, 1, 0)))
    for bad in ("tyy", "abc", "ty"):
        with pytest.raises(ValueError, match=r"letters t \(tilt\), y .* and x .*got"):
            read_tilt_series(path, axes=bad)
    with pytest.raises(ValueError, match=r"3 angles, but the stack \(4, 5, 3\) read as axes='tyx' has 4 tilts"):
        read_tilt_series(path)  # the .npy default layout is (tilt, y, x)


# --- TIFF and MRC --------------------------------------------------------------------------


def test_multipage_tiff(tmp_path):
    data = _stack((5, 4, 6))
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 5  # one page per tilt
    path.with_suffix(".rawtlt").write_text("-45\n# a comment\n-20\n0\n\n20\n45\n")
    series = read_tilt_series(path)
    np.testing.assert_array_equal(series.data, data)
    np.testing.assert_array_equal(series.angles, [-45, -20, 0, 20, 45])
    assert series.sampling is None

    pages = tmp_path / "pages.TIFF"  # pages appended one by one: one series each
    for k, page in enumerate(data):
        tifffile.imwrite(pages, page, append=k > 0, photometric="minisblack")
    np.testing.assert_array_equal(read_tilt_series(pages, angles=[-45, -20, 0, 20, 45]).data, data)

    imagej = tmp_path / "imagej.tif"  # ImageJ stack with its pixel size in nm
    tifffile.imwrite(imagej, data, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "nm", "axes": "ZYX"})
    series = read_tilt_series(imagej, angles=[-45, -20, 0, 20, 45])
    np.testing.assert_array_equal(series.data, data)
    assert series.sampling == pytest.approx(5.0)  # 0.5 nm
    micron = tmp_path / "micron.tif"  # ImageJ's escaped micro sign: the frame readers' unit table
    tifffile.imwrite(
        micron, data, imagej=True, resolution=(2000.0, 2000.0), metadata={"unit": "\\u00B5m", "axes": "ZYX"}
    )
    assert read_tilt_series(micron, angles=[-45, -20, 0, 20, 45]).sampling == pytest.approx(5.0)  # 0.5 nm

    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((4, 6, 3), np.uint8), photometric="rgb")
    with pytest.raises(ValueError, match=r"rgb\.tif: a colour \(RGB\) TIFF"):
        read_tilt_series(rgb, angles=[-1, 0, 1, 2])


def test_mrc_header_pixel_size_and_rawtlt(tmp_path):
    data = _stack()
    path = _write_mrc(tmp_path / "tilt.st", data, cell=2.5)
    with pytest.raises(ValueError, match=r"tilt\.st holds no tilt angles: pass angles= .*tilt\.rawtlt"):
        read_tilt_series(path)
    path.with_suffix(".rawtlt").write_text("-50\n0\n50\n")
    series = read_tilt_series(path)
    np.testing.assert_array_equal(series.data, data)  # sections are tilts: (tilt, y, x)
    np.testing.assert_array_equal(series.angles, [-50, 0, 50])
    assert series.sampling == pytest.approx(2.5)
    assert read_tilt_series(path, sampling=1.0).sampling == 1.0

    plain = _write_mrc(tmp_path / "plain.mrc", data)  # no cell size: the pixel size is unknown
    assert read_tilt_series(plain, angles=[-1, 0, 1]).sampling is None

    aligned = _write_mrc(tmp_path / "tilt.ali", data)  # IMOD: the refined .tlt goes with the .ali
    aligned.with_suffix(".rawtlt").write_text("-50\n0\n50\n")
    aligned.with_suffix(".tlt").write_text("-49.5\n0.2\n50.3\n")
    np.testing.assert_array_equal(read_tilt_series(aligned).angles, [-49.5, 0.2, 50.3])


def test_mrc_fei_extended_header(tmp_path):
    data = _stack()
    path = _write_mrc(tmp_path / "fei.mrc", data, fei=([-30.0, 0.0, 30.0], 3e-10))
    series = read_tilt_series(path)
    np.testing.assert_array_equal(series.data, data)
    np.testing.assert_allclose(series.angles, [-30, 0, 30])
    assert series.sampling == pytest.approx(3.0, rel=1e-5)


# --- checks and messages -------------------------------------------------------------------


def test_check_angles():
    out = check_angles(np.array([[-70, 0, 70]], np.int16), 3)
    assert out.dtype == np.float64 and out.tolist() == [-70, 0, 70]
    with pytest.raises(ValueError, match="expected 4 angles"):
        check_angles([-70, 0, 70], 4)
    with pytest.raises(ValueError, match=r"angles must lie in -90\.\.90 degrees \(tilt angles\)"):
        check_angles([-70, 0, 95], 3)
    with pytest.raises(ValueError, match="NaN"):
        check_angles([-70, np.nan, 70], 3)
    with pytest.raises(ValueError, match="appears more than once"):
        check_angles([-70, 0, 0], 3)
    with pytest.raises(ValueError, match=r"not in ascending order .*sort them together with the projections"):
        check_angles([70, 0, -70], 3)


def test_tilt_series_validation():
    with pytest.raises(ValueError, match=r"2 angles for 3 projections.*\(n_angles, n_slices, n_detector\)"):
        TiltSeries(_stack(), [-1, 1])
    with pytest.raises(ValueError, match=r"must be 3D .*got shape \(4, 5\)"):
        TiltSeries(_stack((4, 5)), [-1, 0, 1, 2])
    data = _stack()
    data[0, 0, :2] = np.nan
    data[2, 3, 4] = np.inf
    with pytest.raises(ValueError, match=r"scan\.npy: 3 of 60 values are NaN or infinite"):
        TiltSeries(data, [-1, 0, 1], source="scan.npy")
    with pytest.raises(ValueError, match="sampling must be a positive"):
        TiltSeries(_stack(), [-1, 0, 1], sampling=0.0)
    series = TiltSeries(_stack().astype(np.float64), [-1, 0, 1])
    assert series.data.dtype == np.float32 and (series.n_angles, series.n_slices, series.n_detector) == (3, 4, 5)


def test_reader_errors(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported tilt-series file '\.dm3'; supported: \.mat, \.mrc, .*\.npy"):
        read_tilt_series(tmp_path / "a.dm3")
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        read_tilt_series(tmp_path / "missing.npy")
    path = tmp_path / "s.npy"
    data = _stack()
    np.save(path, data)
    with pytest.raises(ValueError, match=r"s\.npy: angles are not in ascending order"):
        read_tilt_series(path, angles=[0, -1, 1])
    with pytest.raises(ValueError, match=r"s\.npy: angles must lie in -90\.\.90"):
        read_tilt_series(path, angles=[-100, 0, 1])
    with pytest.raises(ValueError, match=r"variable= names a MATLAB variable"):
        read_tilt_series(path, angles=[-1, 0, 1], variable="adf")
    data[1, 1, 1] = np.nan
    np.save(path, data)
    with pytest.raises(ValueError, match=r"s\.npy: 1 of 60 values are NaN"):
        read_tilt_series(path, angles=[-1, 0, 1])
    np.save(path, np.array([{"a": 1}] * 3, dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        read_tilt_series(path, angles=[-1, 0, 1])
    assert set(TILT_SUFFIXES) >= {".mat", ".mrc", ".ali", ".st", ".tif", ".tiff", ".npy"}

"""Microscope files (atomtools.readers): real DM3, HyperSpy, PNG and TIFF; written TIFF, NumPy, EMD; errors; dose."""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from pathlib import Path

import dask.array as da
import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from atomtools.core.dose import DoseEstimateWarning, estimate_counts_per_electron, estimate_dose
from atomtools.readers import SUFFIXES, Frames, check_frames, read_frames, read_series, require_sampling

from .conftest import SHARED_MIRROR

TEMUL_DM3 = SHARED_MIRROR / "temul" / "example_Se_implanted_MoS2.dm3"
ATOMSEGNET_PNG = SHARED_MIRROR / "atomsegnet" / "Si110_5nmX25us_03_none_none.png"


def _package_file(package: str, *parts: str) -> Path:
    """A file shipped inside an installed package; the test skips, saying why, when it is absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pytest.skip(f"{package} is not installed")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"{package} does not ship {'/'.join(parts)} here ({path})")
    return path


def _mirror(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"the shared data mirror is absent ({path})")
    return path


def _lattice(n: int = 256, *, sigma: float = 2.0, spacing: float = 12.0, contrast: float = 0.3) -> np.ndarray:
    """A clean image of Gaussian columns on a square lattice, mean 1."""
    y, x = np.mgrid[:n, :n].astype(np.float64)
    image = np.zeros((n, n))
    for cy in np.arange(spacing / 2, n, spacing):
        for cx in np.arange(spacing / 2, n, spacing):
            image += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    image = 1 + contrast * (2 * image / image.max() - 1)
    return image / image.mean()


def _emd_signal(data, title, axes):
    """A RosettaSciIO signal dict; axes as (name, scale, units) in array order."""
    return {
        "data": data,
        "axes": [
            {"name": n, "scale": s, "offset": 0.0, "units": u, "navigate": False, "size": k}
            for (n, s, u), k in zip(axes, data.shape)
        ],
        "metadata": {"General": {"title": title}, "Signal": {}},
        "original_metadata": {},
    }


def _write_emd(path: Path, signals: list[dict]) -> Path:
    """A Berkeley (NCEM) EMD file holding several signals: one written by RosettaSciIO, the others copied in."""
    from rsciio.emd import file_writer

    file_writer(str(path), signals[0])
    for k, signal in enumerate(signals[1:]):
        other = path.with_name(f"{path.stem}_{k}.emd")
        file_writer(str(other), signal)
        with h5py.File(path, "a") as target, h5py.File(other, "r") as source:
            for name in source["signals"]:
                source.copy(source["signals"][name], target["signals"], name)
    return path


# --- real files shipped by others ---------------------------------------------------------------------------------


def test_real_hyperspy_hdf5_from_atomap_has_a_scale_without_units():
    path = _package_file("atomap", "tests", "datasets", "test_ADF_cropped.hdf5")
    frames = read_frames(path)
    assert isinstance(frames.data, da.Array)
    assert frames.shape == (1, 400, 380) and frames.data.dtype == np.float16
    # the file's axes have scale 0.00932627 and no units at all: no pixel size is invented
    assert frames.sampling is None
    np.testing.assert_allclose(frames.metadata["unitless_scale"], [0.00932627, 0.00932627], rtol=1e-5)
    with pytest.raises(ValueError, match=r"test_ADF_cropped\.hdf5.*pass sampling= \(Å per pixel\).*0\.00932627"):
        require_sampling(frames)
    # 9.33 pm per pixel, as atomap documents: the scale is in nm
    assert read_frames(path, units="nm").sampling == pytest.approx(0.0933, abs=1e-4)
    assert require_sampling(read_frames(path, sampling=0.0933)) == 0.0933
    with h5py.File(path, "r") as f:
        raw = np.asarray(f["Experiments/__unnamed__/data"])
    np.testing.assert_array_equal(frames.frame(0), raw.astype(np.float32))
    json.dumps(frames.metadata)


def test_real_dm3_from_temul_gives_pixel_size_energy_and_detector():
    path = _mirror(TEMUL_DM3)
    frames = read_frames(path)
    assert isinstance(frames.data, da.Array)
    assert frames.shape == (1, 1024, 1024) and frames.data.dtype == np.uint32
    assert frames.sampling == pytest.approx(0.127, rel=1e-3)  # 0.0126953125 nm in the calibrations
    assert frames.energy == pytest.approx(60e3)  # Microscope Info: Voltage 60000
    assert frames.metadata["detector"] == "HAADF"
    assert frames.metadata["axes"][-1]["units"] == "nm"
    assert frames.times is None and frames.frame_rate is None
    json.dumps(frames.metadata)

    from rsciio.digitalmicrograph import file_reader

    (record,) = file_reader(str(path), lazy=False)
    image = frames.frame(0)
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, record["data"].astype(np.float32))


def test_real_png_from_atomsegnet_has_no_pixel_size():
    path = _mirror(ATOMSEGNET_PNG)
    frames = read_frames(path)
    assert frames.shape == (1, 512, 512) and frames.data.dtype == np.uint8
    assert frames.sampling is None
    with pytest.raises(ValueError, match=r"Si110_5nmX25us_03_none_none\.png.*pass sampling= \(Å per pixel\)"):
        require_sampling(frames)
    np.testing.assert_array_equal(frames.frame(0), iio.imread(path).astype(np.float32))
    # 5 nm across 512 pixels, from the file name
    assert read_frames(path, sampling=50 / 512).sampling == pytest.approx(0.09765625)
    # an 8-bit display image: no counts, so no dose
    with pytest.warns(DoseEstimateWarning, match="8-bit"):
        assert estimate_dose(frames.frame(0), 50 / 512) is None


def test_real_multipage_tiff_from_scikit_image():
    path = _package_file("skimage", "data", "multipage.tif")
    frames = read_frames(path)
    assert isinstance(frames.data, da.Array)
    assert frames.shape == (2, 15, 10) and frames.sampling is None
    np.testing.assert_array_equal(np.stack(list(frames)), tifffile.imread(path).astype(np.float32))
    assert not np.array_equal(frames.frame(0), frames.frame(1))


def test_real_rgb_tiff_from_scikit_image_is_refused_or_converted():
    path = _package_file("skimage", "data", "multipage_rgb.tif")
    with pytest.raises(ValueError, match=r"multipage_rgb\.tif: a colour image .*rgb='luminance'"):
        read_frames(path)
    frames = read_frames(path, rgb="luminance")
    raw = tifffile.imread(path)  # (2, 3, 10, 10): pages of planar RGB
    assert raw.shape == (2, 3, 10, 10) and frames.shape == (2, 10, 10)
    expected = 0.299 * raw[:, 0] + 0.587 * raw[:, 1] + 0.114 * raw[:, 2]
    np.testing.assert_allclose(np.stack(list(frames)), expected, rtol=1e-5, atol=1e-6)


# --- files written here ---------------------------------------------------------------------------------------------


def test_imagej_tiff_gives_pixel_size_and_frame_times(tmp_path):
    stack = np.arange(6 * 64 * 48, dtype=np.uint16).reshape(6, 64, 48)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(
        path,
        stack,
        imagej=True,
        resolution=(1 / 0.05, 1 / 0.05),  # pixels per nm
        metadata={"unit": "nm", "finterval": 0.25, "axes": "TYX", "spacing": 1.0},
    )
    frames = read_frames(path)
    assert isinstance(frames.data, da.Array)
    assert frames.shape == (6, 64, 48) and frames.data.dtype == np.uint16
    assert frames.sampling == pytest.approx(0.5)  # 0.05 nm
    np.testing.assert_allclose(frames.times, np.arange(6) * 0.25)
    assert frames.frame_rate == pytest.approx(4.0)
    assert frames.metadata["imagej"]["unit"] == "nm"

    chosen = read_frames(path, frames=slice(2, 4))
    assert chosen.shape == (2, 64, 48) and chosen.metadata["frame_indices"] == [2, 3]
    np.testing.assert_allclose(chosen.times, [0.5, 0.75])
    np.testing.assert_array_equal(chosen.frame(1), stack[3].astype(np.float32))
    # explicit values win over the file's
    other = read_frames(path, sampling=0.3, frame_interval=0.1, frames=(4, 6))
    assert other.sampling == 0.3
    np.testing.assert_allclose(other.times, [0.4, 0.5])


def test_tiff_frames_are_read_only_when_asked_for(tmp_path):
    """Frame 0's compressed data are broken: choosing other frames never touches them; reading frame 0 fails, named."""
    stack = np.random.default_rng(0).integers(0, 1000, (5, 32, 32)).astype(np.uint16)
    path = tmp_path / "lazy.tif"
    tifffile.imwrite(path, stack, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[0]
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 16] = bytes(16)
    path.write_bytes(bytes(raw))

    chosen = read_frames(path, frames=[2, 4])
    assert chosen.shape == (2, 32, 32)
    np.testing.assert_array_equal(np.stack(list(chosen)), stack[[2, 4]].astype(np.float32))
    everything = read_frames(path)  # opening reads metadata and one pixel of the last frame only
    assert everything.shape == (5, 32, 32)
    with pytest.raises(Exception, match="(?i)zlib|decompress|error"):
        everything.frame(0)


def test_npy_is_memory_mapped_and_selected_lazily(tmp_path):
    stack = np.random.default_rng(1).random((5, 32, 40)).astype(np.float32)
    path = tmp_path / "stack.npy"
    np.save(path, stack)
    frames = read_frames(path, frames=[0, 4], frame_interval=0.1)
    assert isinstance(frames.data, da.Array) and frames.shape == (2, 32, 40)
    np.testing.assert_array_equal(frames.frame(1), stack[4])
    np.testing.assert_allclose(frames.times, [0.0, 0.4])
    assert read_frames(path, frames=(1, 3)).shape == (2, 32, 40)
    assert read_frames(path, frames=-1).metadata["frame_indices"] == [4]
    # the frames come from a memory map of the file, not a copy read at open: a change to the file shows
    on_disk = np.load(path, mmap_mode="r+")
    on_disk[4] = 7.0
    on_disk.flush()
    del on_disk
    np.testing.assert_array_equal(frames.frame(1), np.full((32, 40), 7.0, np.float32))
    np.testing.assert_allclose(read_frames(path, times=[1, 2, 3, 4, 5], frames=[1, 2]).times, [2, 3])
    np.testing.assert_allclose(read_frames(path, times=[7, 8], frames=[1, 2]).times, [7, 8])
    with pytest.raises(ValueError, match=r"stack\.npy: 3 times for 2 chosen frame"):
        read_frames(path, times=[1, 2, 3], frames=[1, 2])
    with pytest.raises(IndexError, match=r"stack\.npy: frame\(s\) \[7\] out of range"):
        read_frames(path, frames=[1, 7])
    with pytest.raises(ValueError, match="not both"):
        read_frames(path, times=[1, 2, 3, 4, 5], frame_interval=0.1)


def test_emd_with_several_signals_chooses_and_lists_them(tmp_path):
    rng = np.random.default_rng(2)
    path = _write_emd(
        tmp_path / "velox_like.emd",
        [
            _emd_signal(rng.random(50).astype(np.float32), "EDS sum", [("E", 0.01, "keV")]),
            _emd_signal(
                rng.random((3, 32, 32)).astype(np.float32),
                "HAADF",
                [("t", 500.0, "ms"), ("y", 20.0, "pm"), ("x", 20.0, "pm")],
            ),
            _emd_signal(rng.random((32, 32)).astype(np.float32), "DF4", [("y", 0.02, "nm"), ("x", 0.02, "nm")]),
        ],
    )
    first = read_frames(path)  # the first image-like signal, the others listed
    assert first.metadata["title"] == "DF4" and first.shape == (1, 32, 32) and first.sampling == pytest.approx(0.2)
    assert {s["title"] for s in first.metadata["other_signals"]} == {"EDS sum", "HAADF"}
    series = read_frames(path, signal="haadf")
    assert series.shape == (3, 32, 32) and series.sampling == pytest.approx(0.2)  # 20 pm
    np.testing.assert_allclose(series.times, [0.0, 0.5, 1.0])  # a time axis in ms
    spectrum = next(s["index"] for s in first.metadata["other_signals"] if s["title"] == "EDS sum")
    with pytest.raises(ValueError, match=r"velox_like\.emd: expected one 2D image.*\(frames, y, x\)"):
        read_frames(path, signal=spectrum)
    with pytest.raises(ValueError, match=r"velox_like\.emd: no signal 9; its signals: .*HAADF"):
        read_frames(path, signal=9)
    with pytest.raises(ValueError, match=r"no signal whose title contains 'BF'"):
        read_frames(path, signal="BF")


def test_non_square_pixels_are_refused_naming_both(tmp_path):
    data = np.ones((16, 16), np.float32)
    path = _write_emd(tmp_path / "skew.emd", [_emd_signal(data, "HAADF", [("y", 0.02, "nm"), ("x", 0.03, "nm")])])
    with pytest.raises(ValueError, match=r"skew\.emd: the pixels are not square: y 0\.2 Å .*x 0\.3 Å"):
        read_frames(path)
    assert read_frames(path, sampling=0.25).sampling == 0.25


def test_implausible_pixel_sizes_are_refused(tmp_path):
    path = tmp_path / "huge.tif"  # 5000 nm per pixel: a unit mistake, not an atomic-resolution image
    tifffile.imwrite(
        path, np.ones((2, 16, 16), np.uint16), imagej=True, resolution=(1 / 5000, 1 / 5000), metadata={"unit": "nm"}
    )
    with pytest.raises(ValueError, match=r"huge\.tif: the file's pixel size 5000 nm = 50000 Å is implausible"):
        read_frames(path)
    assert read_frames(path, sampling=0.5).sampling == 0.5  # an explicit value overrides the file's
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones((16, 16)))
    with pytest.raises(ValueError, match=r"a\.npy: sampling=1e-05 Å per pixel is implausible"):
        read_frames(npy, sampling=1e-5)
    with pytest.raises(ValueError, match=r"sampling=2000 Å per pixel is implausible"):
        read_frames(npy, sampling=2000)
    with pytest.raises(ValueError, match="positive pixel size"):
        read_frames(npy, sampling=-1)


def test_truncated_tiffs_are_refused_naming_the_file(tmp_path):
    stack = np.arange(6 * 64 * 48, dtype=np.uint16).reshape(6, 64, 48)
    for name, options in [("imagej.tif", {"imagej": True}), ("pages.tif", {"contiguous": False})]:
        path = tmp_path / name
        tifffile.imwrite(path, stack, **options)
        whole = path.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
        with pytest.raises(ValueError, match=re.escape(name) + " could not be read as TIFF"):
            read_frames(path)


def test_bad_files_are_refused_naming_the_file(tmp_path):
    text = tmp_path / "notes.dm3"
    text.write_text("this is a text file, not a Gatan image\n" * 20)
    with pytest.raises(ValueError, match=r"notes\.dm3 could not be read as Gatan DigitalMicrograph"):
        read_frames(text)
    with pytest.raises(FileNotFoundError, match="missing.dm4"):
        read_frames(tmp_path / "missing.dm4")
    other = tmp_path / "image.xyz"
    other.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match=r"image\.xyz: unsupported file type '\.xyz'; supported: .*\.dm3.*\.npy"):
        read_frames(other)
    assert ".emd" in SUFFIXES and ".ser" in SUFFIXES and ".mrc" in SUFFIXES
    cut = tmp_path / "cut.npy"
    np.save(cut, np.ones((4, 32, 32)))
    cut.write_bytes(cut.read_bytes()[:2000])
    with pytest.raises(ValueError, match=r"cut\.npy could not be read as NumPy"):
        read_frames(cut)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"objects\.npy could not be read as NumPy \.npy: .*objects"):
        read_frames(objects)


def test_read_series_stacks_files_in_natural_order(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for k in (1, 2, 10):  # "frame_10" sorts after "frame_2" naturally, before it as text
        iio.imwrite(folder / f"frame_{k}.png", np.full((24, 20), k * 10, np.uint8))
    (folder / "notes.txt").write_text("not a frame")
    frames = read_series(folder, sampling=0.2, frame_interval=0.5)
    assert isinstance(frames.data, da.Array) and frames.shape == (3, 24, 20)
    assert [float(f.mean()) for f in frames] == [10.0, 20.0, 100.0]
    assert frames.metadata["files"] == ["frame_1.png", "frame_2.png", "frame_10.png"]
    np.testing.assert_allclose(frames.times, [0.0, 0.5, 1.0])
    assert read_series(str(folder / "frame_1*.png")).shape == (2, 24, 20)
    assert read_series([folder / "frame_2.png"], frames=[0]).frame(0).mean() == 20.0

    iio.imwrite(folder / "frame_3.png", np.zeros((24, 21), np.uint8))
    with pytest.raises(
        ValueError, match=r"frame_3\.png: frames of shape \(24, 21\) differ from those of frame_1\.png \(24, 20\)"
    ):
        read_series(folder)


def test_check_frames_names_the_nan_frames(tmp_path):
    stack = np.random.default_rng(3).random((6, 16, 16)).astype(np.float32)
    path = tmp_path / "series.npy"
    np.save(path, stack)
    assert check_frames(read_frames(path)).shape == (6, 16, 16)
    stack[3, 5, 5] = np.nan
    stack[5, 0, 0] = np.inf
    np.save(path, stack)
    frames = read_frames(path)  # reading is lazy: the NaN is found by check_frames, not at open
    with pytest.raises(ValueError, match=r"series\.npy: frame\(s\) \[3, 5\] \(2 of 6\) hold NaN or infinite"):
        check_frames(frames)
    with pytest.raises(ValueError, match=r"frame\(s\) \[1\] \(1 of 3\).*\(frames \[3\] .*of the file\)"):
        check_frames(read_frames(path, frames=slice(2, 5)))
    check_frames(read_frames(path, frames=[0, 1, 2]))  # the clean frames pass

    folder = tmp_path / "pngs"
    folder.mkdir()
    for k in range(2):
        np.save(folder / f"f{k}.npy", stack[k + 2])
    with pytest.raises(ValueError, match=r"files \['f1\.npy'\]"):
        check_frames(read_series(folder))


def test_frames_validate_shape_colour_and_times():
    with pytest.raises(
        ValueError, match=r"movie\.npy: expected one 2D image.*\(2, 3, 16, 16\); a series is \(frames, y, x\)"
    ):
        Frames(np.ones((2, 3, 16, 16)), source="movie.npy")
    with pytest.raises(ValueError, match=r"photo\.png: .*colour image.*convert it to grey"):
        Frames(np.dstack([np.ones((16, 16)), np.zeros((16, 16)), np.ones((16, 16))]), source="photo.png")
    saved_as_colour = Frames(np.dstack([np.arange(256.0).reshape(16, 16)] * 3), source="grey.png")
    assert saved_as_colour.shape == (1, 16, 16) and saved_as_colour.frame(0)[1, 0] == 16
    with pytest.raises(ValueError, match="3 times for 2 frames"):
        Frames(np.ones((2, 16, 16)), times=[0, 1, 2])
    with pytest.raises(ValueError, match="real numbers"):
        Frames(np.ones((16, 16), complex))
    single = Frames(np.arange(256.0).reshape(16, 16), sampling=0.1)
    assert single.shape == (1, 16, 16) and len(single) == 1 and single.frame_rate is None
    assert isinstance(single.data, da.Array) and single.frame(-1)[1, 0] == 16.0
    with pytest.raises(IndexError, match="frame 1 out of range"):
        single.frame(1)


# --- dose -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gain", [1.0, 7.3])
@pytest.mark.parametrize("dose", [50.0, 5000.0])
def test_estimate_dose_from_shot_noise_of_simulated_frames(gain, dose):
    sampling = 0.2  # 2 and 200 electrons per pixel
    clean = _lattice()
    frame = gain * np.random.default_rng(4).poisson(clean * dose * sampling**2).astype(np.float64)
    assert estimate_counts_per_electron(frame) == pytest.approx(gain, rel=0.15)
    assert estimate_dose(frame, sampling) == pytest.approx(dose, rel=0.15)
    # with the gain known the dose is exact: mean counts / gain / sampling²
    assert estimate_dose(frame, sampling, counts_per_electron=gain) == pytest.approx(
        frame.mean() / gain / sampling**2, rel=1e-12
    )


def test_estimate_dose_says_why_it_cannot():
    frame = 7.3 * np.random.default_rng(5).poisson(_lattice() * 200.0).astype(np.float64)
    with pytest.warns(DoseEstimateWarning, match="outside 0.05..1e4"):
        assert estimate_dose(frame / frame.mean(), 0.2) is None  # normalized: variance/mean ~ 0.005
    with pytest.warns(DoseEstimateWarning, match="outside 0.05..1e4"):
        assert estimate_counts_per_electron(frame * 1e4) is None
    with pytest.warns(DoseEstimateWarning, match="negative values"):
        assert estimate_counts_per_electron(frame - frame.mean()) is None
    stretched = np.round(255 * (frame - frame.min()) / np.ptp(frame))
    with pytest.warns(DoseEstimateWarning, match="8-bit"):
        assert estimate_counts_per_electron(stretched) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good frame gives no warning
        assert estimate_counts_per_electron(frame) is not None


def test_the_old_modules_re_export_the_readers():
    """atomtools.io and atomtools.tomo.io only re-export: one object behind each name, old and new."""
    from atomtools import io, readers
    from atomtools.core import dose
    from atomtools.tomo import io as tomo_io

    for name in io.__all__:
        assert getattr(io, name) is getattr(dose if hasattr(dose, name) else readers, name), name
    for name in ("TiltSeries", "check_angles", "read_tilt_series", "write_tilt_series"):
        assert getattr(tomo_io, name) is getattr(readers, name), name
    assert tomo_io.SUFFIXES is readers.TILT_SUFFIXES

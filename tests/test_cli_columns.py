"""``python -m atomtools columns`` and ``tomo reconstruct``: files in, tables and images out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atomtools.cli import main, parse_angles
from atomtools.simulation.insitu import InsituConfig, make_insitu_series
from atomtools.tomo import Projector, phantom
from atomtools.tomo.operators import full_angles


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    config = InsituConfig(shape=(128, 128), size=14.0, n_frames=8, events={"vacancy": 1, "column_appears": 1})
    series = make_insitu_series(config, seed=1, progress=False)
    path = tmp_path_factory.mktemp("movie") / "series.npy"
    np.save(path, series["frames"])
    return path


def test_columns_cli_on_a_series_and_a_single_frame(movie, tmp_path, capsys):
    assert main(["columns", str(movie), "--sampling", "0.16", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["series_columns.csv", "series_events.csv", "series_overlay.png", "series_tracks.csv"]
    columns = pd.read_csv(tmp_path / "series_columns.csv")
    assert set(columns.frame) == set(range(8)) and {"x", "y", "count", "confidence", "element"} <= set(columns)
    assert "8 frame(s)" in capsys.readouterr().out
    single = tmp_path / "one.npy"
    np.save(single, np.load(movie)[0])
    assert main(["columns", str(single), "--sampling", "0.16", "--out", str(tmp_path / "one")]) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["one_columns.csv", "one_overlay.png"]
    out = tmp_path / "optics"
    args = ["columns", str(single), "--sampling", "0.16", "--optics", "defocus=-50,Cs=-9e4", "--tilt", "0", "--out"]
    assert main([*args, str(out)]) == 0
    printed = capsys.readouterr().out
    assert "optics known: defocus=-50, Cs=-90000" in printed
    assert {"count_low", "count_high", "beyond_range"} <= set(pd.read_csv(out / "one_columns.csv"))


def test_columns_cli_says_what_is_missing(movie, tmp_path, capsys):
    assert main(["columns", str(movie), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "series.npy" in err and "sampling" in err
    assert main(["columns", str(movie), "--sampling", "0.16", "--frames", "two", "--out", str(tmp_path)]) == 2
    assert "START:STOP" in capsys.readouterr().err
    assert main(["columns", str(movie), "--sampling", "0.16", "--optics", "Cc=1.4", "--out", str(tmp_path)]) == 2
    assert "unknown 'Cc'" in capsys.readouterr().err
    assert main(["columns", str(movie), "--sampling", "0.16", "--device", "tpu9", "--out", str(tmp_path)]) == 2
    assert "device 'tpu9'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_networks_run_on_the_device_asked_for(movie):
    """device="cpu" gives the default path's counts; a GPU that is not there is refused by name."""
    import torch

    from atomtools.columns import retrieve

    frame = np.load(movie)[0]
    default, _ = retrieve(frame, sampling=0.16)
    on_cpu, _ = retrieve(frame, sampling=0.16, device="cpu")
    pd.testing.assert_frame_equal(default, on_cpu)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees 0 CUDA device"):
            retrieve(frame, sampling=0.16, device="cuda")


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA device here (the GPU path runs where one is)"
)
def test_counts_on_a_gpu_agree_with_the_cpu(movie):
    from atomtools.columns import retrieve

    frame = np.load(movie)[0]
    on_cpu, _ = retrieve(frame, sampling=0.16, device="cpu")
    on_gpu, _ = retrieve(frame, sampling=0.16, device="cuda")
    retrieve(frame, sampling=0.16, device="cpu")  # back where the other tests expect them
    assert len(on_gpu) == len(on_cpu) and np.mean(on_gpu["count"].to_numpy() == on_cpu["count"].to_numpy()) >= 0.995


def test_tomo_cli_reconstructs_a_tilt_series(tmp_path, capsys):
    angles = full_angles(32)[4:-4]
    images = np.stack([phantom("ellipses", n=32, seed=i) for i in range(3)])
    np.save(tmp_path / "tilts.npy", Projector(32, angles).forward(images).transpose(1, 0, 2))
    (tmp_path / "tilts.rawtlt").write_text("\n".join(f"{a:g}" for a in angles))
    assert main(["tomo", "reconstruct", str(tmp_path / "tilts.npy"), "--method", "sirt"]) == 0
    volume = np.load(tmp_path / "tilts_sirt.npy")
    assert volume.shape == (3, 32, 32) and "volume (3, 32, 32)" in capsys.readouterr().out
    out = tmp_path / "bg.npy"
    assert main(["tomo", "reconstruct", str(tmp_path / "tilts.npy"), "--subtract-background", "--out", str(out)]) == 0
    assert np.load(out).shape == (3, 32, 32)
    assert main(["tomo", "reconstruct", str(tmp_path / "tilts.npy"), "--angles", "0:10:1"]) == 2
    assert "angles" in capsys.readouterr().err
    with pytest.raises(ValueError, match="START:STOP:STEP"):
        parse_angles("-70:70")

"""Bad input fails loudly, from atomtools' own errors, naming the parameter or file and what was expected."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from atomtools import columns
from atomtools.core.imaging import check_sampling
from atomtools.models import ColumnCounter, CounterConfig, UNet, UNetConfig, load_model, save_model
from atomtools.tomo import reconstruct


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    unet = UNet(UNetConfig(width=4, depth=2, stem=1)).eval()
    return columns.load_retriever((unet, {"sampling": 0.16, "temperature": [1.0, 1.0], "channels": [["Ce"], ["O"]]}))


def _frame(n: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n] * 0.16
    clean = 200 * (1 + 0.5 * np.cos(2 * np.pi * xx / 3.3) * np.cos(2 * np.pi * yy / 3.3))
    return np.random.default_rng(0).poisson(clean).astype(float)


@pytest.mark.parametrize("bad", ["0.16", "0.16 A", "0.16 Å", b"0.16", -1.0, -0.16, 0.0, float("nan"), True, None])
def test_a_sampling_that_is_not_a_positive_number_is_refused(tiny, bad):
    with pytest.raises(ValueError, match="sampling must be a positive pixel size"):
        columns.retrieve(_frame(), sampling=bad, model=tiny, counter=None)
    assert check_sampling(np.float32(0.16)) == pytest.approx(0.16)


def test_a_frame_too_small_to_hold_columns_is_refused_by_its_size(tiny):
    with pytest.raises(ValueError, match=r"8 x 8 px .* needs at least 5.1 Å per side"):
        columns.retrieve(_frame()[:8, :8], sampling=0.16, model=tiny, counter=None)
    table, _ = columns.retrieve(_frame()[:40, :40], sampling=0.16, model=tiny, counter=None, structure_only=False)
    assert {"x", "y", "count"} <= set(table.columns)  # just above the limit: an answer, not an error


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_broken_weights_files_are_named_and_never_unpickled(tmp_path):
    good = tmp_path / "counter.pt"
    save_model(good, ColumnCounter(CounterConfig(width=4, hidden=8)), metadata={})
    data = good.read_bytes()
    empty, truncated, pickled = tmp_path / "empty.pt", tmp_path / "truncated.pt", tmp_path / "pickled.pt"
    empty.write_bytes(b"")
    truncated.write_bytes(data[: len(data) // 2])
    torch.save({"format": _Payload()}, pickled)
    with pytest.raises(ValueError, match=r"empty\.pt is empty \(0 bytes\)"):
        load_model(empty)
    with pytest.raises(ValueError, match=r"truncated\.pt is not a readable PyTorch weights file"):
        load_model(truncated)
    with pytest.raises(ValueError, match=r"pickled\.pt holds Python objects .* never unpickles") as err:
        load_model(pickled)
    assert "weights_only=False unless you wrote it yourself" in str(err.value)
    with pytest.raises(FileNotFoundError, match="no weights at"):
        load_model(tmp_path / "missing.pt")
    assert load_model(good)[1]["format"] == "atomtools.counter/1"


def test_a_single_projection_is_no_tilt_series():
    with pytest.raises(ValueError, match="2 or more tilt angles, got 1"):
        reconstruct(np.random.default_rng(0).random((1, 64)), [0.0], method="gan")
    with pytest.raises(ValueError, match="2 or more tilt angles"):
        reconstruct(np.random.default_rng(0).random((1, 64)), [10.0], method="fbp")

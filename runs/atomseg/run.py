"""The shipped atom segmenter (issue 11): simulate the library, then train the U-Net.

The library is regenerated from its seed (byte-identical, resumable: a killed run
redoes only the missing images); training resumes exactly from its checkpoint beside
the weights (``.ckpt``).

    python runs/atomseg/run.py              # writes results/library/train.zarr, atomtools/weights/atomseg.pt
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LIBRARY = ROOT / "results" / "library" / "train.zarr"
WEIGHTS = ROOT / "atomtools" / "weights" / "atomseg.pt"

#: The training library: the nine (crystal, zone axis) pairs of TRAIN_CRYSTALS, 256 px.
N_IMAGES, LIBRARY_SEED = 1200, 0
TRAIN_CONFIG = dict(
    steps=4000, batch_size=8, crop=128, lr=2e-3, width=16, depth=4, validate_every=500, validation=32, seed=11
)


def main() -> None:
    from atomtools.localize import SegmenterConfig, train_segmenter
    from atomtools.simulation import LibraryConfig, make_library

    make_library(LIBRARY, LibraryConfig(), n_images=N_IMAGES, seed=LIBRARY_SEED)
    if not WEIGHTS.exists():
        out, history = train_segmenter(LIBRARY, SegmenterConfig(**TRAIN_CONFIG), out=WEIGHTS)
        shutil.move(out.with_suffix(".csv"), Path(__file__).with_name("atomseg.csv"))
        print(out, history[-1])


if __name__ == "__main__":
    main()

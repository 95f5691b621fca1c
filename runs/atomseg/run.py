"""The shipped atom segmenter (issue 11): simulate the library, then train the U-Net in two stages.

Stage 1 (the first shipped weights, sha256 48b8b7a2…, commit 95a46c0): 1,200 images of the
nine base crystals, 4,000 steps from a random start, raw frames in.
Stage 2 (shipped): from stage 1, 6,000 steps on those and 1,800 more images of all
thirteen training crystals (light ones, two-element dumbbells, light columns beside
heavy ones), each frame less its background level (``SegmenterConfig.flatten``).

The libraries are regenerated from their seeds (byte-identical, resumable: a killed run
redoes only the missing images); training resumes exactly from its checkpoint beside
the weights (``.ckpt``).

    python runs/atomseg/run.py      # results/library/*.zarr, results/atomseg/stage1.pt, atomtools/weights/atomseg.pt
    python runs/atomseg/finalize.py # then: held-out numbers, model card, manifest entry
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
STAGE1 = ROOT / "results" / "atomseg" / "stage1.pt"
WEIGHTS = ROOT / "atomtools" / "weights" / "atomseg.pt"

#: (store, crystals, images, seed): the base nine at seed 0, all thirteen at seed 1.
LIBRARIES = (
    (ROOT / "results" / "library" / "train.zarr", "BASE_CRYSTALS", 1200, 0),
    (ROOT / "results" / "library" / "train_b.zarr", "TRAIN_CRYSTALS", 1800, 1),
)
STAGE1_CONFIG = dict(
    steps=4000,
    batch_size=8,
    crop=128,
    lr=2e-3,
    width=16,
    depth=4,
    validate_every=500,
    validation=32,
    seed=11,
    flatten=False,
)
#: Stage 2 differs in these only.
STAGE2_CONFIG = {**STAGE1_CONFIG, "steps": 6000, "lr": 1e-3, "seed": 12, "flatten": True}


def main() -> None:
    from atomtools.localize import SegmenterConfig, train_segmenter
    from atomtools.simulation import LibraryConfig, make_library
    from atomtools.simulation import library as lib

    stores = []
    for path, crystals, n, seed in LIBRARIES:
        stores.append(make_library(path, LibraryConfig(crystals=getattr(lib, crystals)), n_images=n, seed=seed))
    if not STAGE1.exists():
        STAGE1.parent.mkdir(parents=True, exist_ok=True)
        out = train_segmenter(stores[0], STAGE1, SegmenterConfig(**STAGE1_CONFIG)).weights
        shutil.move(out.with_suffix(".csv"), Path(__file__).with_name("atomseg_stage1.csv"))
    if not WEIGHTS.exists():
        result = train_segmenter(stores, WEIGHTS, SegmenterConfig(**STAGE2_CONFIG), init=STAGE1)
        shutil.move(result.weights.with_suffix(".csv"), Path(__file__).with_name("atomseg.csv"))
        print(result.weights, result.history[-1])


if __name__ == "__main__":
    main()

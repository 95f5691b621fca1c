"""The shipped missing-wedge GANs (issue 9): train the inpainter, then the refiner.

Each run resumes exactly from its checkpoint beside the weights (``.ckpt``), so an
interrupted run goes on where it stopped; the data are drawn from the seed as it goes.

    python runs/tomo_gans/run.py            # both, in order; writes atomtools/weights/tomo_*.pt
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
INPAINT = ROOT / "atomtools" / "weights" / "tomo_inpaint.pt"
REFINE = ROOT / "atomtools" / "weights" / "tomo_refine.pt"

#: Both trained on the training kinds (polygons, ellipses, blobs), 128 px, 128 angles.
INPAINT_CONFIG = dict(steps=2000, batch_size=8, lr=5e-4, seed=2019, validate_every=250, validation=16)
REFINE_CONFIG = dict(steps=1200, batch_size=8, lr=5e-4, seed=2020, validate_every=200, validation=16)


def main() -> None:
    from atomtools.tomo.phantoms import TRAINING_KINDS
    from atomtools.tomo.task import GanConfig, train_inpainter, train_refiner

    if not INPAINT.exists():
        print(train_inpainter(TRAINING_KINDS, INPAINT, GanConfig(**INPAINT_CONFIG)))
    if not REFINE.exists():
        print(train_refiner(TRAINING_KINDS, REFINE, GanConfig(**REFINE_CONFIG), inpainter=INPAINT))


if __name__ == "__main__":
    main()

"""The shipped Au U-Net (issue 12): Au nanoparticles along [110], by parameters alone.

The same recipe as the CeO2 network (``01_simulate``'s quick ranges: faceted fcc
particles, flat/stepped/saw-tooth/wedge profiles, 1-12 atoms per column, tilts,
vacancies and adatoms, HRTEM optics and doses), with ``material="Au"``: one column
species, so one head. It starts from the shipped CeO2 network's trunk (its head
from the Ce rows) and is fine-tuned on Au; temperature and per-column calibration
are fitted on held-out structures, as for CeO2.

    python runs/unet_au/run.py data       # simulate results/runs/au/train.zarr (deterministic, resumes)
    python runs/unet_au/run.py train      # train or resume; writes atomtools/weights/unet_au.pt and its card
    python runs/unet_au/run.py ship       # its sha256 and size in data_manifest.yml
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "results" / "runs" / "au" / "train.zarr"
WEIGHTS = ROOT / "atomtools" / "weights" / "unet_au.pt"
N_STRUCTURES, SEED = 320, 3000

#: Training: the CeO2 network's trunk, fine-tuned on Au with the microscope effects of the v2 recipe.
TRAIN_CONFIG = dict(
    steps=3000,
    batch_size=12,
    crop=128,
    lr=2e-3,
    seed=3000,
    validate_every=500,
    validation_images=64,
    checkpoint_every=120.0,
    microscope={"background": (0.0, 0.15), "blur": (0.0, 0.2), "mtf": (0.0, 0.7)},
)


def data() -> None:
    from atomtools.registry import simulation_setup
    from atomtools.simulation import make_dataset

    config, _, _ = simulation_setup("quick", material="Au")
    make_dataset(DATA, config, n_structures=N_STRUCTURES, seed=SEED)


def train() -> None:
    from atomtools.columns import TrainConfig, train_unet, unet_card
    from atomtools.models import UNetConfig
    from atomtools.utils import write_text

    result = train_unet(
        DATA,
        WEIGHTS,
        TrainConfig(**TRAIN_CONFIG),
        model_config=UNetConfig(width=16, depth=3, stem=2, heads=(13,)),
        init="pretrained",
    )
    made = (
        f"`python runs/unet_au/run.py data` ({N_STRUCTURES} structures of Au along [110], the quick recipe, "
        f"seed {SEED}), then `python runs/unet_au/run.py train` (TrainConfig({TRAIN_CONFIG}), from the "
        "shipped CeO2 network's trunk) on a 2-core CPU (torch 2.13.0)."
    )
    write_text(WEIGHTS.with_suffix(".md"), unet_card(WEIGHTS, extra=made))
    print(result.validation, result.calibration["temperature"])


CITATION = (
    "atomtools (this repository), model card atomtools/weights/unet_au.md; "
    "method after M. Leibovich et al., arXiv:2601.17046 (2026)"
)
DESCRIPTION = (
    "Pretrained U-Net that counts Au atoms per column in HRTEM images of Au nanoparticles seen along [110] "
    "(0.16 Å/px, 300 kV), fine-tuned from the CeO2 network on {n:,} abTEM simulations; ships with the code "
    "(model card beside it)."
)


def ship() -> None:
    """Write (or refresh) the weights' entry in data_manifest.yml, after unet-ceo2's."""
    from atomtools.data import ship_weights
    from atomtools.models import load_model

    _, meta = load_model(WEIGHTS)
    ship_weights(
        "unet-au",
        WEIGHTS,
        citation=CITATION,
        description=DESCRIPTION.format(n=meta["dataset"]["n_images"]),
        notebooks=["02_train_unet", "04_evaluate"],
        before="tomo-inpaint",
    )


if __name__ == "__main__":
    steps = sys.argv[1:] or ["data", "train", "ship"]
    for step in steps:
        {"data": data, "train": train, "ship": ship}[step]()

"""The v2 CeO2 U-Net run (issue 8): domain-randomized data, microscope effects, long training.

A run that spans sessions: the dataset is regenerated from its parameters (deterministic,
about 30 min on 2 cores), the training resumes exactly from ``unet_v2.ckpt`` beside this
file (committed while the run goes on, removed once the final weights ship).

    python runs/unet_ceo2_v2/run.py data        # simulate results/runs/v2/train.zarr (resumes)
    python runs/unet_ceo2_v2/run.py train       # train or resume; writes unet_v2.pt when done
    python runs/unet_ceo2_v2/run.py evaluate    # independent test set, as in 04_evaluate
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "results" / "runs" / "v2" / "train.zarr"
WEIGHTS = HERE / "unet_v2.pt"

#: Training data: the CeO2 recipe, with what a simulator changes drawn per structure.
DATA_CONFIG = dict(
    shape=(256, 256),
    size=(15.0, 34.0),
    thickness=(1, 12),
    images_per_structure=8,
    frozen_phonons=4,
    vary={
        "sim_sampling": (0.04, 0.06),
        "slice_thickness": (1.0, 2.5),
        "aperture": (20.0, 40.0),
        "phonon_probability": 0.25,
    },
)
N_STRUCTURES = 800
SEED = 2026

#: Training: fine-tune the shipped network with what a microscope adds.
TRAIN_CONFIG = dict(
    steps=20000,
    batch_size=12,
    crop=128,
    lr=1e-3,
    seed=2026,
    validate_every=1000,
    validation_images=64,
    checkpoint_every=120.0,
    microscope={"background": (0.0, 0.15), "blur": (0.0, 0.2), "mtf": (0.0, 0.7)},
)


def data() -> None:
    from atomtools.simulation import SimulationConfig, make_dataset

    make_dataset(DATA, SimulationConfig(**DATA_CONFIG), n_structures=N_STRUCTURES, seed=SEED)


def train() -> None:
    from atomtools.columns import TrainConfig, train_unet, unet_card
    from atomtools.models import UNetConfig
    from atomtools.utils import write_text

    result = train_unet(
        DATA,
        WEIGHTS,
        TrainConfig(**TRAIN_CONFIG),
        model_config=UNetConfig(width=16, depth=3, stem=2),
        init="pretrained",
    )
    write_text(WEIGHTS.with_suffix(".md"), unet_card(WEIGHTS))
    print(result.validation, result.calibration["temperature"])


def evaluate() -> None:
    from atomtools.columns import evaluation
    from atomtools.simulation import IndependentConfig, make_independent_set
    from atomtools.storage import open_dataset

    independent = open_dataset(
        make_independent_set(
            ROOT / "results" / "runs" / "v2" / "independent.zarr", IndependentConfig(), n_structures=64, seed=1001
        )
    )
    for model in ("pretrained", WEIGHTS):
        result = evaluation.evaluate(independent, model=str(model), doses=[250.0, 1000.0, 5000.0], seed=1, keep_maps=0)
        print(
            model,
            evaluation.summary_by(result["rows"])[["dose", "f1", "exact", "within_one", "mae"]].round(3).to_string(),
        )


if __name__ == "__main__":
    {"data": data, "train": train, "evaluate": evaluate}[sys.argv[1]]()

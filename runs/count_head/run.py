"""The optics-aware column counter (issue 18): data, training, calibration, shipping.

A run that may span sessions: the data are regenerated from these parameters
(deterministic; about 20 min on 2 cores), training resumes from ``count_head.ckpt``.

    python runs/count_head/run.py data        # simulate results/runs/count_head/{wide,aligned}.zarr (resumes)
    python runs/count_head/run.py train       # patches, training (resumes), conformal calibration
    python runs/count_head/run.py ship        # manifest entry and model card
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "results" / "runs" / "count_head"
WEIGHTS = HERE / "counter_ceo2.pt"
SHIPPED = ROOT / "atomtools" / "weights" / "counter_ceo2.pt"

#: Optics wider than the U-Net's training ranges: one counter for every corrected microscope.
COMMON = dict(
    shape=(256, 256),
    size=(15.0, 40.0),
    thickness=(1, 16),
    images_per_structure=12,
    frozen_phonons=4,
    defocus=(-110.0, 10.0),
    Cs=(-20e4, -2e4),
    C5=(0.0, 8e7),
    focal_spread=(15.0, 60.0),
    vary={
        "sim_sampling": (0.04, 0.06),
        "slice_thickness": (1.0, 2.5),
        "aperture": (15.0, 45.0),
        "phonon_probability": 0.25,
    },
)
#: Two stores: mistilt up to 3 degrees, and near zone axis (a microscopist aligns the particle).
STORES = {"wide": (dict(COMMON, tilt=3.0), 260, 4101), "aligned": (dict(COMMON, tilt=0.5), 140, 4102)}


#: Test sets by the independent builder: compact whole particles, and slabs thicker than the trained range.
TESTS = {
    "compact": (dict(), 48, 1801),
    "thick": (
        dict(particles={"shapes": ("wedge",), "radius": (12.0, 14.0), "max_thickness": (20, 28), "tilt": 0.5}),
        8,
        1802,
    ),
}


def data() -> None:
    from atomtools.simulation import SimulationConfig, make_dataset

    for name, (config, n, seed) in STORES.items():
        make_dataset(DATA / f"{name}.zarr", SimulationConfig(**config), n_structures=n, seed=seed)


#: Training of the counter.
TRAIN_CONFIG = dict(steps=5000, batch_size=512, lr=3e-3, seed=0, validate_every=500, checkpoint_every=120.0)


def patches() -> dict:
    """The patch set (cut once, kept beside the stores)."""
    import numpy as np

    from atomtools.columns.counting import patch_dataset
    from atomtools.storage import open_dataset
    from atomtools.utils import atomic_path

    path = DATA / "patches.npz"
    if not path.exists():
        cut = patch_dataset([open_dataset(DATA / f"{name}.zarr") for name in STORES], seed=7)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **cut)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def train() -> None:
    from atomtools.columns.counting import CounterTrainConfig, train_counter

    data = patches()
    result = train_counter(
        data,
        WEIGHTS,
        config=CounterTrainConfig(**TRAIN_CONFIG),
        metadata={
            "material": "CeO2",
            "zone_axis": [1, 1, 0],
            "sampling": 0.16,
            "dataset": {"stores": {k: {"config": v[0], "n_structures": v[1], "seed": v[2]} for k, v in STORES.items()}},
        },
    )
    print(result)


def tests() -> None:
    from atomtools.simulation import IndependentConfig, make_independent_set
    from atomtools.simulation.independent import COMPACT

    for name, (config, n, seed) in TESTS.items():
        config = IndependentConfig(**COMPACT) if name == "compact" else IndependentConfig(**config)
        make_independent_set(DATA / f"{name}.zarr", config, n_structures=n, seed=seed)


def evaluate(n: int | None = None) -> None:
    """Compact particles (by count, by mistilt; optics given, defocus unknown, none; decoded or not) and thick slabs."""
    import numpy as np
    import pandas as pd

    from atomtools.columns import evaluation as ev
    from atomtools.storage import open_dataset
    from atomtools.utils import write_text

    compact = open_dataset(DATA / "compact.zarr")
    weights = WEIGHTS if WEIGHTS.exists() else SHIPPED
    runs = [("U-Net alone", dict(counter=None, known="none", decode=False))]
    for known in ("optics", "no_defocus", "none"):
        for decode in (False, True):
            name = f"counter, {known}, {'decoded' if decode else 'per column'}"
            runs.append((name, dict(counter=str(weights), known=known, decode=decode)))
    heads, counts = [], []
    for name, options in runs:
        result = ev.evaluate(compact, doses=[1000.0, np.inf], seed=5, keep_maps=0, progress=False, **options)
        rows = result["rows"] if n is None else result["rows"][: 2 * n]
        head = ev.headline(rows, ("dose",)).assign(setting=name)
        tilt = ev.headline(rows, ("dose", "tilt")).assign(setting=name)
        heads += [head, tilt]
        counts.append(ev.by_count(rows, ("dose",)).assign(setting=name))
        shown = ["setting", "dose", "f1", "n", "exact", "within_one", "mean_error", "coverage", "set_size", "exact_all"]
        print(head[shown].round(3).to_string())
    write_text(HERE / "compact_headline.csv", pd.concat(heads, ignore_index=True).round(4).to_csv(index=False))
    write_text(HERE / "compact_by_count.csv", pd.concat(counts, ignore_index=True).round(4).to_csv(index=False))
    thick = open_dataset(DATA / "thick.zarr")
    from atomtools.columns import retrieve

    lines = []
    for i in range(len(thick)):
        truth = thick.columns(i)
        truth = truth[truth.channel == 0]
        table, _ = retrieve(thick.clean[i], sampling=thick.sampling, resample=True, counter=str(weights))
        from atomtools.core.metrics import match_columns

        ip, it = match_columns(table[["x", "y"]].to_numpy(), truth[["x", "y"]].to_numpy(), radius=0.7)
        t, p = truth["count"].to_numpy()[it], table.iloc[ip]
        beyond = t > 16
        ok = p["beyond_range"].to_numpy() | (np.abs(p["count"].to_numpy() - t) <= 1)
        lines.append(
            {
                "image": i,
                "columns": len(t),
                "beyond_trained": int(beyond.sum()),
                "flagged_or_within_one": float(ok[beyond].mean()) if beyond.any() else float("nan"),
                "confident_one_atom": int(((p["count"] == 1) & (p["count_high"] == 1)).to_numpy()[beyond].sum()),
            }
        )
    thick_table = pd.DataFrame(lines)
    print(thick_table.to_string())
    write_text(HERE / "thick.csv", thick_table.to_csv(index=False))


if __name__ == "__main__":
    {"data": data, "tests": tests, "train": train, "evaluate": evaluate}[sys.argv[1]]()

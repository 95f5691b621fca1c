"""After runs/atomseg/run.py: measure the shipped segmenter on held-out crystals, write its card and manifest entry.

python runs/atomseg/finalize.py     # atomtools/weights/atomseg.md, the atomseg entry of data_manifest.yml
"""

from __future__ import annotations

import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
WEIGHTS = ROOT / "atomtools" / "weights" / "atomseg.pt"
DOSES = (5e3, 2e4, 1e5, 1e6)
N_FRAMES = 12  # four structures of each held-out crystal
HRTEM_DOSES = (500.0, 2e3, 1e4)
STAGE1_NOTE = (
    "Start: stage 1 of `runs/atomseg/run.py` (4,000 steps on 1,200 images of the first nine crystals, frames as they "
    "are; the weights shipped before this, sha256 48b8b7a2…).\n\n"
)
NAMES = {"f1": "F1", "precision_pm": "precision [pm]", "common_precision_pm": "precision on common atoms [pm]"}

DESCRIPTION = (
    "Pretrained atom segmenter (U-Net: atom mask, denoised and deblurred heads) for HAADF-STEM and HRTEM images of "
    "any crystal, trained on {n} images of the simulated atom-segmentation library; ships with the code (model "
    "card beside it)."
)

CITATION = (
    "atomtools (this repository), model card atomtools/weights/atomseg.md; method after R. Lin, R. Zhang, C. Wang, "
    "X.-Q. Yang, H. L. Xin, Sci. Rep. 11, 5386 (2021)"
)


def main() -> None:
    import pandas as pd

    from atomtools.data import ship_weights
    from atomtools.localize import evaluation, find_atoms, gaussian_fit_atoms, load_segmenter, segmenter_card
    from atomtools.models import load_model
    from atomtools.utils import write_text

    model = load_segmenter(WEIGHTS)
    frames = evaluation.held_out_frames(doses=DOSES, n_images=N_FRAMES, shape=(256, 256), seed=7000)
    methods = {
        "network": lambda image, s: find_atoms(image, sampling=s, model=model),
        "Gaussian fit": lambda image, s: gaussian_fit_atoms(image, sampling=s),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = evaluation.evaluate(frames, methods)
    hrtem = evaluation.held_out_frames(doses=HRTEM_DOSES, n_images=N_FRAMES, shape=(256, 256), seed=7000, mode="hrtem")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        hrtem_results = evaluation.evaluate(hrtem, methods)

    def table(rows, by) -> str:
        summary = evaluation.summarize(rows, by=by)
        wide = summary.pivot_table(index=list(by[1:]), columns="method", values=list(NAMES)).round(3)
        wide.columns = [f"{NAMES[k]}, {m}" for k, m in wide.columns]
        wide = wide.rename_axis(index={"dose": "dose [e/Å²]"})
        print(wide)
        return pd.DataFrame(wide).to_markdown()

    tables = [
        table(results, ("method", "dose")),
        table(results, ("method", "crystal", "dose")),
        table(hrtem_results, ("method", "dose")),
    ]
    both = pd.concat([results, hrtem_results], ignore_index=True)  # evaluate's "mode" tells them apart
    evaluation.summarize(both, by=("mode", "method", "crystal", "dose")).to_csv(
        Path(__file__).with_name("held_out.csv"), index=False
    )
    _, meta = load_model(WEIGHTS)
    val = ", ".join(f"{k} {v:.3f}" for k, v in meta.get("validation", {}).items())
    measured = (
        "## Measured\n"
        f"Validation (library images held out by index): {val}.\n\n"
        + (STAGE1_NOTE if meta.get("init") == "stage1.pt" else "")
        + f"Held-out crystals (GaN [2-1-10], MgO [100], W [111]; {N_FRAMES} HAADF frames of 256 px, each at every "
        "dose; a match within 0.5 Å; precision = standard deviation of the position error per axis, pooled, in pm, "
        "over the atoms each method found; on common atoms: over those both found), against atomap's 2D Gaussian "
        "fitting on the same frames:\n\n"
        + tables[0]
        + "\n\nPer crystal (each method's precision is over the atoms it found: where the network finds more of "
        "a light crystal's atoms, its pooled error takes in more hard ones):\n\n"
        + tables[1]
        + f"\n\nHRTEM frames of the same crystals ({N_FRAMES} per dose; abTEM multislice at 300 kV with the library's "
        "random defocus, Cs and focal spread, so the columns are bright or dark as the optics make them; Gaussian "
        "fitting takes them bright):\n\n"
        + tables[2]
        + "\n\nMade with `python runs/atomseg/run.py` then `python runs/atomseg/finalize.py` on a 2-core CPU "
        "(torch 2.13.0)."
    )
    write_text(WEIGHTS.with_suffix(".md"), segmenter_card(WEIGHTS, measured=measured))
    ship_weights(
        "atomseg",
        WEIGHTS,
        citation=CITATION,
        description=DESCRIPTION.format(n=meta.get("library_images")),
        notebooks=["06_atom_segmentation"],
        before="atomsegnet-si110",
    )
    print("card and manifest written")


if __name__ == "__main__":
    main()

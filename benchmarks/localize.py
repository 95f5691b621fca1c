"""Frames per second of atom localization on a 1024 x 1024 frame: network beside Gaussian fitting.

The frames are simulated HAADF-STEM images of SrTiO3 [100] (0.1 Å/px, about 1,400
visible columns per frame, 10^5 e/Å²) from the library's recipe. Both methods run on
the same frames in one process, alternating, so the machine's load hits both alike:
:func:`atomtools.localize.find_atoms` (tiled U-Net, peaks, sub-pixel refinement) and
:func:`atomtools.localize.gaussian_fit_atoms` (peak finding and atomap's 2D Gaussian
fit of every atom). Their F1 and precision on these frames are printed too.

    python benchmarks/localize.py [--frames 3] [--size 1024]

The ratio (Gaussian fitting's seconds / the network's) is printed last.
"""

from __future__ import annotations

import argparse
import time
import warnings


def main() -> None:
    import numpy as np

    from atomtools.localize import evaluation, find_atoms, gaussian_fit_atoms, load_segmenter
    from atomtools.simulation.library import LibraryConfig, library_item

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    config = LibraryConfig(
        shape=(args.size, args.size),
        crystals=(("SrTiO3", (1, 0, 0)),),
        sampling=(0.1, 0.1),
        stem_dose=(1e5, 1e5),
        hrtem_fraction=0.0,
        blank_fraction=0.0,
        region_fraction=0.0,
    )
    frames = [library_item(i, config, 99) for i in range(args.frames)]
    model = load_segmenter("pretrained")
    find_atoms(frames[0]["noisy"][0][:256, :256], sampling=0.1, model=model)  # warm-up
    methods = {
        "network": lambda im: find_atoms(im, sampling=0.1, model=model),
        "Gaussian fit": lambda im: gaussian_fit_atoms(im, sampling=0.1),
    }
    seconds = {m: [] for m in methods}
    scores = {m: [] for m in methods}
    for item in frames:
        for name, fn in methods.items():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = fn(item["noisy"][0])
            seconds[name].append(time.perf_counter() - t0)
            scores[name].append(
                evaluation.score_atoms(
                    table[["x", "y"]].to_numpy(), item["positions"][:, :2], shape=(args.size,) * 2, sampling=0.1
                )
            )
    for name in methods:
        tp, fp, fn = (sum(s[k] for s in scores[name]) for k in ("tp", "fp", "fn"))
        err = np.concatenate([s["errors"] for s in scores[name]])
        sd = np.sqrt(np.mean(np.var(err, axis=0))) * 100
        t = float(np.median(seconds[name]))
        print(
            f"{name:>13}: {t:7.2f} s per {args.size}x{args.size} frame = {1 / t:6.3f} frames/s; "
            f"F1 {2 * tp / (2 * tp + fp + fn):.3f}, precision {sd:.1f} pm over {tp} atoms"
        )
    ratio = np.median(seconds["Gaussian fit"]) / np.median(seconds["network"])
    print(f"ratio (Gaussian fit / network seconds per frame): {ratio:.1f}x")


if __name__ == "__main__":
    main()

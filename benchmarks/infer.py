"""Frames per second of column retrieval on this CPU: atomtools against naive PyTorch inference.

Both run the same trained network on the same frames and produce the same per-pixel
classes. The naive path is how a PyTorch model is usually run: ``model.eval()`` in
the default contiguous memory format, batch norm as separate layers, the whole frame
at once, softmax and argmax. atomtools folds batch norm into the convolutions, runs in
channels_last and blends tiles (one tile up to 1024 px). The two are interleaved
frame by frame (four frames of the same particle, each its own noise, in turn), so load
on this shared machine hits both alike. ``retrieve`` (maps
plus the column table) is timed too, in three ways side by side: the U-Net's own
counts (as before the counter), the column counter with the optics given (the
mistilt read from the columns, as by default), and the counter with the particle
decoding (the default). The in-situ series of the source work ran at 7.5 frames/s.

    python benchmarks/infer.py [--weights PATH] [--counter PATH] [--seconds 10]

The ratio for 512 x 512 frames is printed last.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from atomtools.columns import load_retriever, predict_maps, retrieve
from atomtools.core.imaging import normalize


def naive(model, frame: np.ndarray, heads) -> np.ndarray:
    with torch.no_grad():
        logits = model(torch.from_numpy(frame)[None, None])
    return np.stack(
        [torch.softmax(p, dim=1).argmax(1)[0].numpy() for p in torch.split(logits, list(heads), dim=1)]
    ).astype(np.uint8)


def simulated_frames(size: int, *, sampling: float, dose: float = 1000.0, n: int = 4) -> list[np.ndarray]:
    """``n`` size x size HRTEM frames of a CeO2 particle (abTEM) at the model's sampling, each its own noise.

    Different noise moves every column a little, so nothing computed for one frame can
    serve the next (as in a real series).
    """
    from atomtools.core.imaging import Optics, fft_friendly_size, poisson_noise
    from atomtools.core.structures import ParticleSpec, build
    from atomtools.simulation import exit_waves, images_from_exit_waves

    extent = (size * sampling, size * sampling)
    atoms = build(
        ParticleSpec(
            profile="stepped", size=0.55 * extent[0], n_min=2, n_max=9, profile_width=8.0, rotation=20.0, seed=1
        ),
        extent=extent,
    )
    gpts = fft_friendly_size(int(extent[0] / 0.05))
    clean = images_from_exit_waves(
        exit_waves(atoms, gpts=(gpts, gpts), energy=300e3), extent=extent, optics=[Optics()], shape=(size, size)
    )[0]
    return [poisson_noise(clean, dose=dose, sampling=sampling, rng=np.random.default_rng(seed)) for seed in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="pretrained")
    parser.add_argument("--counter", default="pretrained", help="column counter weights (default: the shipped one)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time spent per size and method")
    args = parser.parse_args()

    from atomtools.data import fetch
    from atomtools.models import load_model

    path = fetch("unet-ceo2") if args.weights == "pretrained" else args.weights
    model, meta = load_model(path)
    ret = load_retriever(str(path))
    heads = model.config.heads
    print(f"model {model.config}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    ratios = {}
    for size in (512, 1024):
        frames = [normalize(f) for f in simulated_frames(size, sampling=meta["sampling"])]
        a, b = naive(model, frames[0], heads), predict_maps(frames[0], ret)["classes"]
        agree = float(np.mean(a == b))
        t_naive = t_ours = t_full = t_counter = t_decoded = 0.0
        optics = {"defocus": -50.0, "Cs": -9e4, "C5": 5e7, "focal_spread": 30.0, "aperture": 30.0}
        n = 0
        while t_naive < args.seconds:
            frame = frames[n % len(frames)]
            t = time.perf_counter()
            naive(model, frame, heads)
            t_naive += time.perf_counter() - t
            t = time.perf_counter()
            predict_maps(frame, ret)
            t_ours += time.perf_counter() - t
            t = time.perf_counter()
            retrieve(frame, sampling=meta["sampling"], model=ret, counter=None)
            t_full += time.perf_counter() - t
            t = time.perf_counter()
            retrieve(frame, sampling=meta["sampling"], model=ret, counter=args.counter, optics=optics, decode=False)
            t_counter += time.perf_counter() - t
            t = time.perf_counter()
            retrieve(frame, sampling=meta["sampling"], model=ret, counter=args.counter, optics=optics)
            t_decoded += time.perf_counter() - t
            n += 1
        ratios[size] = t_naive / t_ours
        print(
            f"{size} x {size}: naive {n / t_naive:5.2f} frames/s, atomtools maps {n / t_ours:5.2f} frames/s, "
            f"retrieve (maps + columns) {n / t_full:5.2f} frames/s; same classes on {agree:.4%} of pixels"
        )
        print(
            f"{size} x {size}: retrieve with the counter and optics {n / t_counter:5.2f} frames/s, "
            f"and particle decoding {n / t_decoded:5.2f} frames/s (U-Net counts alone: {n / t_full:5.2f})"
        )
    print(f"1024 x 1024 ratio: {ratios[1024]:.2f}x")
    print("(frames: simulated CeO2 particles at 1000 e/Å²)")
    print(f"512 x 512 ratio: {ratios[512]:.2f}x")


if __name__ == "__main__":
    main()

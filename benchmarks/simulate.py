"""Images per second of atomtools' simulator against a plain abTEM loop, side by side.

Both make the same images of the same structures under the same optics, doses and
noise seeds (the benchmark checks the clean images agree), for the quick profile's
settings. The plain loop is how abTEM is usually driven: one multislice per image,
then the CTF on the full grid, the intensity, and interpolation to the detector.
atomtools runs one multislice per structure and images it ``images_per_structure``
times on a cropped grid. The two are interleaved structure by structure, so load on
this shared machine hits both alike.

    python benchmarks/simulate.py [--structures 4]

The ratio is printed last.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from atomtools import registry
from atomtools.core.imaging import poisson_noise
from atomtools.simulation import (
    SimulationConfig,
    exit_waves,
    fitted_build,
    images_from_exit_waves,
    reference_image,
    sample_task,
)


def ours(task, config):
    _, atoms = fitted_build(task.spec, config.extent)
    waves = exit_waves(atoms, gpts=config.sim_gpts, energy=config.energy, slice_thickness=config.slice_thickness)
    clean = images_from_exit_waves(waves, extent=config.extent, optics=task.optics, shape=config.shape)
    noisy = [
        poisson_noise(c, dose=d, sampling=config.sampling, rng=np.random.default_rng(s))
        for c, d, s in zip(clean, task.doses, task.noise_seeds)
    ]
    return clean, noisy


def plain(task, config):
    clean, noisy = [], []
    for optics, dose, seed in zip(task.optics, task.doses, task.noise_seeds):
        _, atoms = fitted_build(task.spec, config.extent)
        waves = exit_waves(atoms, gpts=config.sim_gpts, energy=config.energy, slice_thickness=config.slice_thickness)
        image = reference_image(waves, extent=config.extent, optics=optics, shape=config.shape)
        clean.append(image)
        noisy.append(poisson_noise(image, dose=dose, sampling=config.sampling, rng=np.random.default_rng(seed)))
    return np.stack(clean), noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    sizes = registry.settings("01_simulate", "quick")
    config = SimulationConfig(
        shape=tuple(sizes["shape"]),
        images_per_structure=sizes["images_per_structure"],
        size=tuple(sizes["size"]),
        thickness=tuple(sizes["thickness"]),
    )
    tasks = [sample_task(config, seed=args.seed, index=i) for i in range(args.structures)]
    ours(tasks[0], config)  # warm-up: FFTW plans, imports
    t_ours = t_plain = 0.0
    n_images = 0
    worst = 0.0
    for task in tasks:
        t = time.perf_counter()
        a, _ = ours(task, config)
        t_ours += time.perf_counter() - t
        t = time.perf_counter()
        b, _ = plain(task, config)
        t_plain += time.perf_counter() - t
        worst = max(worst, float(np.abs(a - b).max()))
        n_images += len(task.optics)
    print(
        f"quick profile: {config.shape} px at {config.sampling} Å/px, multislice grid "
        f"{config.sim_gpts}, {config.images_per_structure} images per structure"
    )
    print(f"{args.structures} structures, {n_images} images; largest clean-image difference {worst:.1e} (same images)")
    print(f"plain abTEM loop (one multislice per image): {n_images / t_plain:6.2f} images/s")
    print(f"atomtools (one multislice per structure):    {n_images / t_ours:6.2f} images/s")
    print(f"ratio: {t_plain / t_ours:.1f}x")


if __name__ == "__main__":
    main()

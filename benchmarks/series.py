"""Frames per second and peak memory of the whole in-situ workflow on this CPU.

Read (a multi-frame TIFF on disk, lazily), drift, retrieval, linking and events
(:func:`atomtools.columns.series.run_series`), for two movie lengths in separate
processes, each with the frames read ahead in a thread (read_ahead=2) and read in turn (the default):
frames per second beside the source work's 7.5 frames/s, and the peak
resident memory of each, which should not grow with the movie's length (frames are read
and processed one at a time). The frames are a simulated 256 x 256 in-situ series
tiled 2 x 2 to 512 x 512 (four particles per frame).

    python benchmarks/series.py [--frames 16 64] [--device cuda]

``--device cuda`` is the GPU recipe: the networks (U-Net and counters) run on the GPU,
drift, linking and events on the CPU.

The ratio of the peak memories (long / short movie) is printed last.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_movie(path: Path, n_frames: int) -> None:
    import numpy as np
    import tifffile

    from atomtools.simulation.insitu import InsituConfig, make_insitu_series

    series = make_insitu_series(InsituConfig(n_frames=24), seed=0, progress=False)
    frames = np.tile(series["frames"], (1, 2, 2))
    with tifffile.TiffWriter(path, imagej=True) as tif:
        for i in range(n_frames):
            tif.write(frames[i % len(frames)][None].astype(np.float32), contiguous=True)


def measure(path: str, sampling: float, read_ahead: int = 2, device: str | None = None) -> dict:
    import resource

    from atomtools.columns.series import run_series
    from atomtools.readers import read_frames

    frames = read_frames(path, sampling=sampling, frame_interval=1 / 7.5)
    start = time.perf_counter()
    result = run_series(frames, progress=False, read_ahead=read_ahead, device=device)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    return {
        "frames": frames.n_frames,
        "fps": frames.n_frames / seconds,
        "peak_mib": peak,
        "tracks": int(result["tracks"].track.nunique()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs=2, default=(16, 64))
    parser.add_argument("--device", default=None, help="where the networks run (cpu, cuda, ...)")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], float(args.measure[1]), int(args.measure[2]), args.device)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.frames:
            path = Path(tmp) / f"movie_{n}.tif"
            make_movie(path, n)
            pair = {}
            for ahead in (0, 2):  # one after the other, so load on this shared machine hits both alike
                device = ["--device", args.device] if args.device else []
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", str(path), "0.16", str(ahead), *device],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                pair[ahead] = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(pair)
    for pair in results:
        r, s = pair[2], pair[0]
        print(
            f"{r['frames']:4d} frames of 512 x 512: {r['fps']:.2f} frames/s reading ahead, {s['fps']:.2f} in turn "
            f"({r['fps'] / s['fps']:.2f}x; source work: 7.5), peak memory {r['peak_mib']:.0f} MiB, {r['tracks']} tracks"
        )
    print(
        f"peak memory, {results[1][2]['frames']} against {results[0][2]['frames']} frames: "
        f"{results[1][2]['peak_mib'] / results[0][2]['peak_mib']:.2f}x"
    )


if __name__ == "__main__":
    main()

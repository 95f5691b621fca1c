"""Command line: ``python -m atomtools {data,reproduce,simulate,train-unet,columns,tomo,atoms,library} ...``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser", "parse_angles", "parse_optics"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m atomtools``.

    Returns
    -------
    argparse.ArgumentParser
        The parser, with one subcommand each for ``data``, ``reproduce``, ``simulate``, ``train-unet``,
        ``columns``, ``atoms``, ``library`` and ``tomo``.
    """
    from .registry import DEFAULT_PROFILE, PROFILES

    parser = argparse.ArgumentParser(
        prog="python -m atomtools",
        description="atomtools: HRTEM simulation, 3D column retrieval and the papers' figures.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="list, fetch and verify the files of data_manifest.yml")
    data_sub = data.add_subparsers(dest="action", required=True)
    data_sub.add_parser("list", help="every file with its kind, size and cache state")
    fetch = data_sub.add_parser("fetch", help="download (or find) a file and print its path")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    data_sub.add_parser("verify", help="re-hash every cached or shipped file")
    table = data_sub.add_parser("table", help="the README's data table, generated from the manifest")
    table.add_argument(
        "--update", metavar="README", help="rewrite the table between the data-table markers of this file"
    )

    rep = sub.add_parser("reproduce", help="run the notebooks in order with papermill")
    rep.add_argument(
        "--profile", choices=PROFILES, default=DEFAULT_PROFILE, help=f"run size (default {DEFAULT_PROFILE})"
    )
    rep.add_argument("--only", nargs="+", metavar="NAME", help="run just these notebooks, e.g. 04_evaluate")
    rep.add_argument("--out", default="results", help="results root; output goes to OUT/PROFILE/ (default results)")
    rep.add_argument(
        "--in-place",
        action="store_true",
        help="also refresh the committed notebooks in notebooks/ with the executed, scrubbed ones",
    )
    rep.add_argument("--no-progress", action="store_true", help="do not echo the notebooks' progress lines")
    rep.add_argument(
        "--material",
        default=None,
        help="run the column-counting chain (01, 02, 04) for another crystal: a known name (Au, Pt, ThO2, ...) or "
        "any element with a cubic ASE reference state (Pd, Ag, Cu, ...); results go to OUT/PROFILE/MATERIAL/",
    )
    rep.add_argument("--zone-axis", type=int, nargs=3, default=None, metavar=("U", "V", "W"), help="default 1 1 0")

    sim = sub.add_parser("simulate", help="simulate a dataset (the engine of notebook 01) into a Zarr store")
    sim.add_argument("out", help="store path, e.g. results/train.zarr")
    sim.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE)
    sim.add_argument("--n-structures", type=int, default=None, help="override the profile's number of structures")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--material", default=None, help="the crystal (default CeO2): a known name or a cubic element")
    sim.add_argument("--zone-axis", type=int, nargs=3, default=None, metavar=("U", "V", "W"), help="default 1 1 0")
    sim.add_argument(
        "--scheduler", default=None, help="'synchronous', or a Dask scheduler address (default: a local cluster)"
    )
    tr = sub.add_parser("train-unet", help="train the column-counting U-Net (runs under torchrun for DDP)")
    tr.add_argument("dataset", help="a dataset store from 'simulate'")
    tr.add_argument("weights_out", help="where the weights go (.pt); a .ckpt and .csv are kept beside it")
    tr.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE)
    tr.add_argument("--steps", type=int, default=None)
    tr.add_argument("--batch-size", type=int, default=None)
    tr.add_argument("--width", type=int, default=None)
    tr.add_argument("--lr", type=float, default=None)
    tr.add_argument(
        "--init", default=None, help="start from these weights ('pretrained' or a path); default: the profile's"
    )
    tr.add_argument("--seed", type=int, default=0)

    col = sub.add_parser(
        "columns",
        help="atoms per column in microscope files: a table per frame, an overlay, tracks and events for a series",
    )
    col.add_argument("files", nargs="+", metavar="FILE", help="dm3, dm4, emd, ser, mrc, tif, png or npy files")
    col.add_argument("--sampling", type=float, default=None, help="pixel size [Å] where a file does not say")
    col.add_argument("--frames", default=None, help="frames to read: START:STOP (STOP excluded), default all")
    col.add_argument("--model", default="pretrained", help="U-Net weights (default: the shipped CeO2 model)")
    col.add_argument("--pool", type=int, default=1, help="sum this many consecutive aligned frames (default 1)")
    col.add_argument(
        "--optics",
        default=None,
        help="what is known of the optics, NAME=VALUE pairs: defocus, Cs, C5, focal_spread [Å], aperture [mrad], "
        "e.g. 'defocus=-50,Cs=-1e5' (default: what the file records, else unknown)",
    )
    col.add_argument("--defocus", type=float, default=None, help="defocus [Å], positive underfocus (abTEM)")
    col.add_argument("--cs", type=float, default=None, help="spherical aberration C3 [Å] (-1e5 Å = -10 µm)")
    col.add_argument(
        "--tilt",
        type=float,
        default=None,
        help="mistilt from the zone axis [degrees], if known (default: read from the columns)",
    )
    col.add_argument(
        "--coverage", type=float, default=0.9, help="coverage of the count sets count_low..count_high (default 0.9)"
    )
    col.add_argument("--no-decode", action="store_true", help="count each column alone (no particle decoding)")
    col.add_argument(
        "--device", default=None, help="where the networks run: cpu (default), cuda, cuda:1, ... (a GPU build of torch)"
    )
    col.add_argument("--out", default=None, help="output folder (default: beside each file)")

    atoms = sub.add_parser(
        "atoms", help="atom positions in atomic-resolution images: a CSV table and an overlay per file (any crystal)"
    )
    atoms.add_argument("files", nargs="+", metavar="FILE", help="png, tif, dm3, dm4, emd, ser, mrc or npy files")
    atoms.add_argument("--sampling", type=float, default=None, help="pixel size [Å] where a file does not say")
    atoms.add_argument("--frames", default=None, help="frames of a series: START:STOP (STOP excluded), default all")
    atoms.add_argument("--model", default="pretrained", help="segmenter weights (default: the shipped one)")
    atoms.add_argument("--threshold", type=float, default=0.3, help="least segmentation peak of an atom (default 0.3)")
    atoms.add_argument(
        "--contrast",
        choices=["bright", "dark"],
        default="bright",
        help="atoms brighter than the background (HAADF, default) or darker (ABF, bright field)",
    )
    atoms.add_argument("--baseline", action="store_true", help="also fit 2D Gaussians (atomap) and write their table")
    atoms.add_argument("--denoised", action="store_true", help="also write the denoised frame (.npy)")
    atoms.add_argument(
        "--rgb", choices=["luminance"], default=None, help="convert colour images to grey (default: refuse them)"
    )
    atoms.add_argument("--out", default=None, help="output folder (default: beside each file)")

    lib = sub.add_parser(
        "library", help="simulate the atom-segmentation library (notebook 06's data) into a Zarr store"
    )
    lib.add_argument("out", help="store path, e.g. results/library/train.zarr (an unfinished one resumes)")
    lib.add_argument("--n-images", type=int, default=1200, help="images (default 1200, the shipped model's)")
    lib.add_argument("--seed", type=int, default=0)
    lib.add_argument("--size", type=int, default=256, help="image side [px] (default 256)")
    lib.add_argument(
        "--scheduler", default=None, help="'synchronous', or a Dask scheduler address (default: a local cluster)"
    )

    tomo = sub.add_parser("tomo", help="missing-wedge tomography: reconstruct tilt series")
    tomo_sub = tomo.add_subparsers(dest="action", required=True)
    rec = tomo_sub.add_parser(
        "reconstruct",
        help="reconstruct a tilt series (.mat, .mrc/.ali/.st, .tif, .npy) slice by slice into a .npy volume",
    )
    rec.add_argument("file", help="the tilt series")
    rec.add_argument(
        "--angles",
        default=None,
        help="tilt angles in degrees: START:STOP:STEP (STOP included) or a comma list; default: from the file "
        "or a .rawtlt/.tlt beside it",
    )
    rec.add_argument(
        "--method",
        default="gan",
        help="gan, inpaint, refine, unrolled, fbp, sart, sirt or tv (default gan: the source's joint model; "
        "unrolled: TV plus learned steps)",
    )
    rec.add_argument("--inpaint", action="store_true", help="with a classical method: inpaint the missing wedge first")
    rec.add_argument(
        "--subtract-background",
        action="store_true",
        help="subtract each projection's 2nd percentile first (ADF/HAADF detector offset)",
    )
    rec.add_argument("--axes", default=None, help="the file's axis order in letters t, y, x, e.g. yxt (MATLAB) or tyx")
    rec.add_argument("--variable", default=None, help=".mat files: the variable that holds the series")
    rec.add_argument("--out", default=None, help="output .npy (default FILE_METHOD.npy beside the input)")
    return parser


def parse_angles(text: str):
    """Angles from the command line: ``START:STOP:STEP`` (STOP included) or a comma list [deg].

    Parameters
    ----------
    text : str
        What the user typed.

    Returns
    -------
    numpy.ndarray
        The angles [degrees], float64, shape (n,).

    Examples
    --------
    >>> parse_angles("-70:70:35").tolist()
    [-70.0, -35.0, 0.0, 35.0, 70.0]
    >>> parse_angles("-10, 0,10").tolist()
    [-10.0, 0.0, 10.0]
    """
    import numpy as np

    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0:
                raise ValueError
            return np.arange(start, stop + step / 2, step)
        return np.array([float(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise ValueError(
            f"--angles {text!r}: expected START:STOP:STEP with a positive STEP, or a comma list of degrees"
        ) from None


def _frame_range(text: str | None):
    if text is None:
        return None
    try:
        start, stop = (int(v) if v.strip() else None for v in text.split(":"))
    except ValueError:
        raise ValueError(f"--frames {text!r}: expected START:STOP, e.g. 0:100") from None
    return slice(start, stop)


def parse_optics(text: str | None, **given) -> dict:
    """The optics a user gave on the command line: ``NAME=VALUE`` pairs, then single options.

    Parameters
    ----------
    text : str, optional
        ``"defocus=-50,Cs=-1e5"``.
    **given
        Single options (None: not given), which override the pairs.

    Returns
    -------
    dict
        Condition name (``defocus``, ``Cs``, ``C5``, ``focal_spread`` [Å], ``aperture`` [mrad]) to its
        value as a float; names not given are absent.

    Examples
    --------
    >>> parse_optics("defocus=-50, Cs=-1e5", Cs=-8e4, C5=None)
    {'defocus': -50.0, 'Cs': -80000.0}
    """
    from .columns.counting import CONDITIONS

    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in CONDITIONS or name == "tilt":
            raise ValueError(f"--optics {text!r}: unknown {name!r}; known: defocus, Cs, C5, focal_spread, aperture")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--optics {text!r}: {name} needs a number, got {value.strip()!r}") from None
    out.update({k: float(v) for k, v in given.items() if v is not None})
    return out


def _columns(args) -> int:
    from pathlib import Path

    import numpy as np

    from . import plotting, readers
    from .columns import retrieve
    from .columns.series import run_series
    from .core.imaging import repair_pixels
    from .utils import write_text

    typed = parse_optics(args.optics, defocus=args.defocus, Cs=args.cs)
    for name in args.files:
        frames = readers.read_frames(name, sampling=args.sampling, frames=_frame_range(args.frames))
        readers.require_sampling(frames)
        out = Path(args.out) if args.out else Path(name).parent
        stem = Path(name).stem
        first, _ = repair_pixels(frames.frame(0))
        optics = {**readers.recorded_optics(frames), **typed}
        counting = dict(
            optics=optics or None,
            tilt="estimate" if args.tilt is None else args.tilt,
            coverage=args.coverage,
            decode=not args.no_decode,
            device=args.device,
        )
        if frames.n_frames > 1:
            result = run_series(frames, model=args.model, pool=args.pool, resample=True, **counting)
            columns = result["columns"]
            write_text(out / f"{stem}_tracks.csv", result["tracks"].to_csv(index=False))
            write_text(out / f"{stem}_events.csv", result["events"].to_csv(index=False))
            summary = f"{result['tracks'].track.nunique()} tracks, {len(result['events'])} events"
        else:
            columns, maps = retrieve(first, sampling=frames.sampling, model=args.model, resample=True, **counting)
            columns = columns.assign(frame=0)
            read = maps.get("counts") or {}
            estimate, mistilt = read.get("defocus"), read.get("tilt")
            said = (
                [f"defocus read from the frame {estimate['defocus']:.0f} ± {estimate['std']:.0f} Å"] if estimate else []
            )
            if mistilt is not None and len(mistilt["tilt"]):
                typical, spread = np.median(mistilt["tilt"]), np.median(mistilt["std"])
                said.append(f"mistilt read from the columns {typical:.1f} ± {spread:.1f}°")
            summary = "; ".join(said)
        write_text(out / f"{stem}_columns.csv", columns.to_csv(index=False))
        fig = plotting.overlay_figure(
            first, columns[columns.frame == 0], sampling=frames.sampling, title=f"{stem}: frame 0"
        )
        plotting.save(fig, out, f"{stem}_overlay")
        principal = columns[columns.channel == 0] if len(columns) else columns
        sets = (
            f"; {args.coverage:.0%} count sets {np.mean(principal.count_high - principal.count_low + 1):.1f} counts "
            f"wide on average, {int(principal.beyond_range.sum())} column(s) beyond the trained thickness"
            if len(principal)
            else ""
        )
        known = ", ".join(f"{k}={v:g}" for k, v in optics.items()) or "none (counted over the trained ranges)"
        print(
            f"{name}: {frames.n_frames} frame(s), {len(columns)} columns -> {out / (stem + '_columns.csv')}"
            + (f"; {summary}" if summary else "")
            + sets
            + f"; optics known: {known}"
        )
    return 0


def _atoms(args) -> int:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from . import plotting, readers
    from .localize import find_atoms, gaussian_fit_atoms, load_segmenter, segment
    from .utils import atomic_path, write_text

    model = load_segmenter(args.model)
    for name in args.files:
        frames = readers.read_frames(name, sampling=args.sampling, frames=_frame_range(args.frames), rgb=args.rgb)
        out = Path(args.out) if args.out else Path(name).parent
        stem = Path(name).stem
        tables = []
        for k in range(frames.n_frames):
            frame = frames.data[k]
            small = frame.shape[0] * frame.shape[1] <= 2048**2
            if small:
                frame = np.asarray(frame, np.float32)
            table = find_atoms(
                frame, sampling=frames.sampling, model=model, threshold=args.threshold, contrast=args.contrast
            )
            tables.append(table.assign(frame=k))
            if args.baseline and small:
                base = gaussian_fit_atoms(frame, sampling=frames.sampling)
                write_text(out / f"{stem}_{k}_gaussian_fit.csv", base.assign(frame=k).to_csv(index=False))
            if k == 0 and small:
                maps = segment(frame, sampling=frames.sampling, model=model, contrast=args.contrast)
                fig = plotting.atoms_figure(frame, maps, table, title=f"{stem}: {len(table)} atoms")
                plotting.save(fig, out, f"{stem}_atoms")
                import matplotlib.pyplot as plt

                plt.close(fig)
                if args.denoised:
                    with atomic_path(out / f"{stem}_denoised.npy", suffix=".npy") as tmp:
                        np.save(tmp, maps["denoised"])
        table = pd.concat(tables, ignore_index=True)
        write_text(out / f"{stem}_atoms.csv", table.to_csv(index=False))
        where = f"{frames.sampling:g} Å/px" if frames.sampling else "pixel size unknown: positions in px only"
        print(f"{name}: {frames.n_frames} frame(s), {len(table)} atoms ({where}) -> {out / (stem + '_atoms.csv')}")
    return 0


def _library(args) -> int:
    from .simulation import LibraryConfig, make_library

    config = LibraryConfig(shape=(args.size, args.size))
    print(make_library(args.out, config, n_images=args.n_images, seed=args.seed, scheduler=args.scheduler))
    return 0


def _tomo(args) -> int:
    from pathlib import Path

    import numpy as np

    from .readers import read_tilt_series
    from .tomo import reconstruct_volume

    angles = parse_angles(args.angles) if args.angles else None
    series = read_tilt_series(args.file, angles=angles, axes=args.axes, variable=args.variable)
    out = Path(args.out) if args.out else Path(args.file).with_name(f"{Path(args.file).stem}_{args.method}.npy")
    options = {"inpaint": True} if args.inpaint else {}
    data = series.data
    if args.subtract_background:
        from .tomo.sinograms import subtract_background

        data = subtract_background(data)
    volume = reconstruct_volume(data, series.angles, method=args.method, out=out, **options)
    print(
        f"{out}: volume {volume.shape} (y, z, x) from {series.n_angles} tilts "
        f"{series.angles.min():g}..{series.angles.max():g} deg, method {args.method}"
        + (" on the inpainted sinograms" if args.inpaint else "")
        + f"; values {np.percentile(volume, 1):.3g}..{np.percentile(volume, 99):.3g} (1st..99th percentile)"
    )
    return 0


def _train(args) -> int:
    import os
    from pathlib import Path

    from .columns import train_unet, unet_card
    from .registry import unet_setup
    from .storage import open_dataset
    from .utils import write_text

    attrs = open_dataset(args.dataset).attrs  # the heads follow the dataset's material
    model_config, config, init = unet_setup(
        args.profile,
        steps=args.steps,
        batch_size=args.batch_size,
        width=args.width,
        lr=args.lr,
        init=args.init,
        seed=args.seed,
        material=attrs["config"].get("material", {}).get("name"),
        heads=(int(attrs["n_classes"]),) * int(attrs["n_channels"]),
    )
    result = train_unet(args.dataset, args.weights_out, config, model_config=model_config, init=init)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 writes
        out = Path(args.weights_out)
        write_text(out.with_suffix(".md"), unet_card(out))
        print(f"{out}: validation {result.validation}, temperature {result.calibration['temperature']}")
    return 0


def _data(args) -> int:
    from . import data

    if args.action == "list":
        entries = data.load_manifest()
        states = {row["name"]: row["status"] for row in data.verify()}
        width = max(len(n) for n in entries)
        for e in entries.values():
            print(f"{e.name:<{width}}  {e.kind:<10}  {e.size / 1e6:9.2f} MB  {states[e.name]:<8}  {e.licence}")
        print(f"cache: {data.cache_dir()}")
        return 0
    if args.action == "table":
        text = data.markdown_table()
        if args.update:
            from pathlib import Path

            from .utils import write_text

            path = Path(args.update)
            write_text(path, data.replace_readme_table(path.read_text(), text))
        else:
            print(text)
        return 0
    if args.action == "fetch":
        for name in args.names:
            print(data.fetch(name, progress=sys.stderr.isatty()))
        return 0
    report = data.verify()
    for row in report:
        print(
            f"{row['status']:<8} {row['name']}  {row['path']}"
            + (f"  (sha256 {row['actual']})" if "actual" in row else "")
        )
    return 1 if any(r["status"] == "corrupt" for r in report) else 0


def _simulate(args) -> int:
    from .registry import simulation_setup
    from .simulation import make_dataset

    config, n_structures, scheduler = simulation_setup(
        args.profile,
        n_structures=args.n_structures,
        scheduler=args.scheduler,
        material=args.material,
        zone_axis=args.zone_axis,
    )
    print(make_dataset(args.out, config, n_structures=n_structures, seed=args.seed, scheduler=scheduler))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 when ``reproduce`` fails or ``data verify`` finds a corrupt
        file, 2 on a bad argument (unknown name, bad value, missing file).
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "data":
            return _data(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "train-unet":
            return _train(args)
        if args.command == "tomo":
            return _tomo(args)
        if args.command == "columns":
            return _columns(args)
        if args.command == "atoms":
            return _atoms(args)
        if args.command == "library":
            return _library(args)
        from .pipeline import PipelineError, run
        from .registry import material_tag

        tag = material_tag(args.material, args.zone_axis)  # a clear error for an unknown material, before any work
        try:
            run(
                profile=args.profile,
                out=args.out,
                only=args.only,
                in_place=args.in_place,
                progress=not args.no_progress,
                material=args.material,
                zone_axis=args.zone_axis,
            )
        except PipelineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        where = f"{args.out}/{args.profile}/" + (f"{tag}/" if tag else "")
        print(f"results in {where} (summary.md, metrics.json, figures/)")
        return 0
    except (KeyError, ValueError, OSError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

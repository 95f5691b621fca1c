"""Command line: ``python -m atomtools {data,reproduce,simulate} ...``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    from .profiles import DEFAULT_PROFILE, PROFILES

    parser = argparse.ArgumentParser(prog="python -m atomtools", description="atomtools: HRTEM simulation, 3D column retrieval and the papers' figures.")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="list, fetch and verify the files of data_manifest.yml")
    data_sub = data.add_subparsers(dest="action", required=True)
    data_sub.add_parser("list", help="every file with its kind, size and cache state")
    fetch = data_sub.add_parser("fetch", help="download (or find) a file and print its path")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    data_sub.add_parser("verify", help="re-hash every cached or shipped file")

    rep = sub.add_parser("reproduce", help="run the notebooks in order with papermill")
    rep.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE, help=f"run size (default {DEFAULT_PROFILE})")
    rep.add_argument("--only", nargs="+", metavar="NAME", help="run just these notebooks, e.g. 04_evaluate")
    rep.add_argument("--out", default="results", help="results root; output goes to OUT/PROFILE/ (default results)")
    rep.add_argument("--in-place", action="store_true", help="also refresh the committed notebooks in notebooks/ with the executed, scrubbed ones")
    rep.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")

    sim = sub.add_parser("simulate", help="simulate a dataset (the engine of notebook 01) into a Zarr store")
    sim.add_argument("out", help="store path, e.g. results/train.zarr")
    sim.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE)
    sim.add_argument("--n-structures", type=int, default=None, help="override the profile's number of structures")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--scheduler", default=None, help="'synchronous', or a Dask scheduler address (default: a local cluster)")
    return parser


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
    if args.action == "fetch":
        for name in args.names:
            print(data.fetch(name, progress=sys.stderr.isatty()))
        return 0
    report = data.verify()
    for row in report:
        print(f"{row['status']:<8} {row['name']}  {row['path']}" + (f"  (sha256 {row['actual']})" if "actual" in row else ""))
    return 1 if any(r["status"] == "corrupt" for r in report) else 0


def _simulate(args) -> int:
    from .profiles import resolve
    from .simulate import SimulationConfig, make_dataset

    sizes = resolve("01_simulate", args.profile, n_structures=args.n_structures)
    config = SimulationConfig(**{k: v for k, v in sizes.items() if k != "n_structures"})
    print(make_dataset(args.out, config, n_structures=sizes["n_structures"], seed=args.seed, scheduler=args.scheduler))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "data":
            return _data(args)
        if args.command == "simulate":
            return _simulate(args)
        from .pipeline import PipelineError, run

        try:
            run(profile=args.profile, out=args.out, only=args.only, in_place=args.in_place, progress=not args.no_progress)
        except PipelineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"results in {args.out}/{args.profile}/ (summary.md, metrics.json, figures/)")
        return 0
    except (KeyError, ValueError, OSError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Run the notebooks in order with papermill, handing each one's outputs to the next.

``python -m atomtools reproduce --profile quick`` writes, under ``results/<profile>/``:

- ``notebooks/NN_name.ipynb``: the executed notebooks;
- ``data/``, ``weights/``: what the notebooks made (datasets, trained weights);
- ``figures/``: every figure as PNG;
- ``metrics.json``: every number the notebooks report, by notebook;
- ``summary.md``: what ran, how long it took, the headline numbers.

The handoff is a table (:data:`HANDOFF`): each notebook gets the paths it reads and
writes as papermill parameters. A notebook run on its own falls back to its defaults,
the same paths, so a reader's run and the pipeline's agree.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NOTEBOOK_ORDER",
    "HANDOFF",
    "PipelineError",
    "Step",
    "repository_root",
    "notebooks_dir",
    "available_notebooks",
    "plan",
    "scrub",
    "run",
    "write_json",
]

NOTEBOOK_ORDER = (
    "01_simulate",
    "02_train_unet",
    "03_train_missing_wedge_gans",
    "04_evaluate",
    "05_apply_to_experiment",
    "06_atom_segmentation",
)

#: Per notebook: parameter name -> (path under results/<profile>/, "in" or "out").
HANDOFF: dict[str, dict[str, tuple[str, str]]] = {
    "01_simulate": {"out": ("data/train.zarr", "out")},
    "02_train_unet": {"dataset": ("data/train.zarr", "in"), "weights_out": ("weights/unet.pt", "out")},
    "04_evaluate": {
        "weights": ("weights/unet.pt", "in"),
        "train_dataset": ("data/train.zarr", "in"),
        "test_out": ("data/test.zarr", "out"),
    },
}


class PipelineError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


@dataclass
class Step:
    name: str
    source: Path
    output: Path
    parameters: dict = field(default_factory=dict)


def repository_root() -> Path:
    return Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    return repository_root() / "notebooks"


def available_notebooks(notebooks: Path | None = None) -> list[str]:
    """Notebooks of :data:`NOTEBOOK_ORDER` present in ``notebooks`` (default ``notebooks/``), in order."""
    folder = Path(notebooks) if notebooks is not None else notebooks_dir()
    return [n for n in NOTEBOOK_ORDER if (folder / f"{n}.ipynb").is_file()]


def _rel(path: Path, start: Path) -> str:
    """Path as the notebooks see it: relative to their folder where possible."""
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive
        return str(path)


def plan(profile: str, out: Path, only: list[str] | None = None, *, notebooks: Path | None = None) -> list[Step]:
    """The steps of a run: which notebooks, with which parameters.

    A handoff input is passed when an earlier step of this run makes it or it exists
    already; otherwise the notebook's default applies (e.g. the pretrained weights).
    """
    folder = Path(notebooks) if notebooks is not None else notebooks_dir()
    names = available_notebooks(folder)
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; available: {names}")
        names = [n for n in names if n in only]
    root = Path(out) / profile
    made: set[str] = set()
    steps = []
    for name in names:
        params = {
            "profile": profile,
            "figures_dir": _rel(root / "figures", folder),
            "metrics_out": _rel(root / "metrics" / f"{name}.json", folder),
        }
        for param, (rel, direction) in HANDOFF.get(name, {}).items():
            path = root / rel
            if direction == "out" or rel in made or path.exists():
                params[param] = _rel(path, folder)
            if direction == "out":
                made.add(rel)
        steps.append(Step(name=name, source=folder / f"{name}.ipynb", output=root / "notebooks" / f"{name}.ipynb", parameters=params))
    return steps


def scrub(nb) -> None:
    """Make an executed notebook fit to commit, in place.

    Removes widget state and widget outputs (progress bars), papermill's timings and
    injected-parameters cell (the committed notebook must run with its own defaults),
    and normalizes the kernelspec to ``python3``.
    """
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("widgets", None)
    pm = nb.metadata.get("papermill")
    if pm is not None:
        for key in ("start_time", "end_time", "duration", "input_path", "output_path", "parameters", "environment_variables", "exception"):
            pm.pop(key, None)
    cells = []
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            outputs = []
            for output in cell.get("outputs", []):
                data = output.get("data")
                if data is not None:
                    if "application/vnd.jupyter.widget-view+json" in data:
                        continue
                    data.pop("application/vnd.jupyter.widget-state+json", None)
                if output.get("output_type") == "stream" and output.get("name") == "stderr" and "\r" in "".join(output.get("text", "")):
                    continue  # a text progress bar
                outputs.append(output)
            cell.outputs = outputs
        cells.append(cell)
    nb.cells = cells


def write_json(path: Path, obj) -> None:
    """Write JSON atomically: a temporary file beside the target, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _headline(metrics: dict) -> str:
    flat = []
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat.append(f"{key} = {value:.4g}")
    return "; ".join(flat[:6])


def run(*, profile: str = "quick", out: str | Path = "results", only: list[str] | None = None, in_place: bool = False, progress: bool = True, notebooks: str | Path | None = None) -> dict:
    """Execute the notebooks in order; return the merged metrics.

    Parameters
    ----------
    profile : {"smoke", "quick", "paper"}
        Size of the run.
    out : str or Path
        Results root; everything goes under ``out/<profile>/``.
    only : list of str, optional
        Run just these notebooks (by name, e.g. ``04_evaluate``).
    in_place : bool
        Also write the executed, scrubbed notebooks back over ``notebooks/`` (the
        committed outputs readers see).
    progress : bool
        Show papermill's per-cell progress bar.
    notebooks : str or Path, optional
        Folder of the notebooks (default: the repository's ``notebooks/``); they run
        with it as their working directory.

    Raises
    ------
    PipelineError
        When a cell fails: names the notebook, the cell and the error; later
        notebooks do not run.
    """
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .profiles import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    out = Path(out).resolve()
    folder = Path(notebooks).resolve() if notebooks is not None else notebooks_dir()
    steps = plan(profile, out, only, notebooks=folder)
    if not steps:
        raise ValueError(f"no notebooks to run in {folder}")
    root = out / profile
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    metrics_path = root / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    timings: dict[str, float] = {}
    env_profile = os.environ.get("ATOMTOOLS_PROFILE")
    os.environ["ATOMTOOLS_PROFILE"] = profile
    try:
        for i, step in enumerate(steps, 1):
            print(f"[{i}/{len(steps)}] {step.name} ({profile})", flush=True)
            start = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(step.source),
                    str(step.output),
                    parameters=step.parameters,
                    kernel_name="python3",
                    cwd=str(folder),
                    progress_bar=progress,
                    log_output=False,
                )
            except PapermillExecutionError as exc:
                raise PipelineError(
                    f"{step.name}: cell {exc.exec_count} (cell index {exc.cell_index}) raised {exc.ename}: {exc.evalue}. "
                    f"The executed notebook with the traceback is {step.output}"
                ) from exc
            timings[step.name] = time.perf_counter() - start
            step_metrics = root / "metrics" / f"{step.name}.json"
            if step_metrics.exists():
                metrics[step.name] = json.loads(step_metrics.read_text())
            metrics.setdefault(step.name, {})["runtime_s"] = round(timings[step.name], 1)
            if in_place:
                nb = nbformat.read(step.output, as_version=4)
                scrub(nb)
                tmp = step.source.with_name(step.source.name + ".partial")
                nbformat.write(nb, tmp)
                os.replace(tmp, step.source)
            print(f"      done in {timings[step.name]:.0f} s", flush=True)
    finally:
        if env_profile is None:
            os.environ.pop("ATOMTOOLS_PROFILE", None)
        else:
            os.environ["ATOMTOOLS_PROFILE"] = env_profile
        write_json(metrics_path, metrics)
        _write_summary(root, profile, metrics)
    return metrics


def _write_summary(root: Path, profile: str, metrics: dict) -> None:
    lines = [f"# atomtools results, profile `{profile}`", "", "| notebook | runtime | headline numbers |", "|---|---|---|"]
    for name in NOTEBOOK_ORDER:
        if name in metrics:
            m = metrics[name]
            lines.append(f"| {name} | {m.get('runtime_s', float('nan')) / 60:.1f} min | {_headline({k: v for k, v in m.items() if k != 'runtime_s'})} |")
    lines += ["", "Figures: `figures/`; every number: `metrics.json`; executed notebooks: `notebooks/`.", ""]
    tmp = root / "summary.md.partial"
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, root / "summary.md")

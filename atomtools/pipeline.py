"""Run the notebooks in order with papermill, handing each one's outputs to the next.

``python -m atomtools reproduce --profile quick`` writes, under ``results/<profile>/``
(``results/<profile>/<material>/`` with ``--material Au``, for notebooks 01, 02 and 04):

- ``notebooks/NN_name.ipynb``: the executed notebooks;
- ``data/``, ``weights/``: what the notebooks made (datasets, trained weights);
- ``figures/``: every figure as PNG;
- ``metrics.json``: every number the notebooks report, by notebook, each with its
  provenance (git revision, profile, seed, sha256 of the data and weights);
- ``summary.md``: what ran, how long it took, each notebook's headline results.

Which notebooks run, in which order, and which paths each hands the next come from
the notebook registry (:mod:`atomtools.registry`). A notebook run on its own falls
back to the same paths, so a reader's run and the pipeline's agree. While a notebook
runs, the progress lines of its long cells (simulation, training, evaluation) are
echoed to the terminal every few seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import registry
from .utils import atomic_path, write_json, write_text

__all__ = [
    "PipelineError",
    "Step",
    "repository_root",
    "notebooks_dir",
    "available_notebooks",
    "plan",
    "scrub",
    "source_hash",
    "stamp",
    "run",
    "headline_table",
    "README_MARKERS",
    "readme_numbers",
]


class PipelineError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


@dataclass
class Step:
    """One notebook run: source, executed copy, papermill parameters."""

    name: str
    source: Path
    output: Path
    parameters: dict = field(default_factory=dict)


def repository_root() -> Path:
    """The repository this package runs from.

    Returns
    -------
    Path
        The absolute folder above the ``atomtools`` package.
    """
    return Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    """The repository's ``notebooks/``.

    Returns
    -------
    Path
        ``repository_root() / "notebooks"``.
    """
    return repository_root() / "notebooks"


def available_notebooks(notebooks: Path | None = None) -> list[str]:
    """Registered notebooks present in ``notebooks`` (default ``notebooks/``), in order.

    Parameters
    ----------
    notebooks : Path, optional
        The folder.

    Returns
    -------
    list of str
        The notebook names (without ``.ipynb``), in the registry's order.
    """
    folder = Path(notebooks) if notebooks is not None else notebooks_dir()
    return [n for n in registry.names() if (folder / f"{n}.ipynb").is_file()]


def _rel(path: Path, start: Path) -> str:
    """Path as the notebooks see it: relative to their folder where possible."""
    try:
        return os.path.relpath(path, start)
    except ValueError:  # another drive
        return str(path)


def plan(
    profile: str,
    out: Path,
    only: list[str] | None = None,
    *,
    notebooks: Path | None = None,
    material: str | None = None,
    zone_axis=None,
) -> list[Step]:
    """The steps of a run: which notebooks, with which parameters.

    A handoff input is passed when an earlier step of this run makes it or it exists
    already; otherwise the notebook's default applies (e.g. the pretrained weights).
    For another material than the default, the run is the notebooks that follow the
    material (:data:`atomtools.registry.MATERIAL_NOTEBOOKS`), each given ``material``
    and ``zone_axis``, under ``out/<profile>/<material>/``.

    Parameters
    ----------
    profile : {"smoke", "quick", "paper"}
        Run size.
    out : Path
        Results root.
    only : list of str, optional
        Just these notebooks.
    notebooks : Path, optional
        Folder of the notebooks (default ``notebooks/``).
    material : str, optional
        The crystal (a name :func:`atomtools.core.materials.material` knows); None: CeO2.
    zone_axis : three int, optional
        Its zone axis; None: [110].

    Returns
    -------
    list of Step
        One per notebook to run, in order: ``name``, ``source`` (the notebook), ``output`` (its
        executed copy under ``out/<profile>/[<material>/]notebooks/``) and ``parameters``.
    """
    folder = Path(notebooks) if notebooks is not None else notebooks_dir()
    names = available_notebooks(folder)
    tag = registry.material_tag(material, zone_axis)
    if tag is not None:
        names = [n for n in names if n in registry.MATERIAL_NOTEBOOKS]
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; available: {names}")
        names = [n for n in names if n in only]
    root = Path(out) / profile / (tag or "")
    made: set[str] = set()
    steps = []
    for name in names:
        params = {
            "profile": profile,
            "figures_dir": _rel(root / "figures", folder),
            "metrics_out": _rel(root / "metrics" / f"{name}.json", folder),
        }
        if tag is not None:
            params["material"] = material or registry.DEFAULT_MATERIAL
            params["zone_axis"] = [int(v) for v in (zone_axis if zone_axis is not None else registry.DEFAULT_ZONE_AXIS)]
        entry = registry.notebook(name)
        for param, artifact in entry.inputs.items():
            path = root / registry.ARTIFACTS[artifact]
            if artifact in made or path.exists():
                params[param] = _rel(path, folder)
        for param, artifact in entry.outputs.items():
            params[param] = _rel(root / registry.ARTIFACTS[artifact], folder)
            made.add(artifact)
        steps.append(
            Step(
                name=name,
                source=folder / f"{name}.ipynb",
                output=root / "notebooks" / f"{name}.ipynb",
                parameters=params,
            )
        )
    return steps


def source_hash(nb) -> str:
    """sha256 of a notebook's code: every code cell's source in order (papermill's injected cell aside).

    Outputs are made by the code, so a notebook whose code has changed since its outputs
    were made has a hash other than the one :func:`stamp` recorded with them.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook.

    Returns
    -------
    str
        The hex digest.
    """
    import hashlib

    code = [
        "".join(cell.source) if isinstance(cell.source, list) else cell.source
        for cell in nb.cells
        if cell.cell_type == "code" and "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
    ]
    return hashlib.sha256(json.dumps(code, ensure_ascii=False).encode()).hexdigest()


def stamp(nb, *, revision: str) -> None:
    """Record with an executed notebook the revision it ran at and the hash of its code, in place.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The executed (scrubbed) notebook.
    revision : str
        The code's git revision when it ran (:func:`atomtools.provenance.revision`).
    """
    nb.metadata["atomtools"] = {"revision": revision, "source_sha256": source_hash(nb)}


def scrub(nb) -> None:
    """Make an executed notebook fit to commit, in place.

    Removes widget state and widget outputs (progress bars), papermill's timings and
    injected-parameters cell (the committed notebook must run with its own defaults),
    and normalizes the kernelspec to ``python3``.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The executed notebook.
    """
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("widgets", None)
    pm = nb.metadata.get("papermill")
    if pm is not None:
        for key in (
            "start_time",
            "end_time",
            "duration",
            "input_path",
            "output_path",
            "parameters",
            "environment_variables",
            "exception",
        ):
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
                if (
                    output.get("output_type") == "stream"
                    and output.get("name") == "stderr"
                    and "\r" in "".join(output.get("text", ""))
                ):
                    continue  # a text progress bar
                outputs.append(output)
            cell.outputs = outputs
        cells.append(cell)
    nb.cells = cells


class _Echo:
    """A file for papermill's ``stderr_file``: prints the notebook's progress lines.

    Text progress bars arrive as ``\r``-separated updates; each chunk's last update is
    printed on a line of its own, prefixed with the notebook's name.
    """

    def __init__(self, name: str, stream=None):
        self.name = name
        self.stream = stream or sys.stdout

    def write(self, text: str) -> int:
        for chunk in text.replace("\r", "\n").splitlines():
            chunk = chunk.strip()
            if chunk:
                print(f"      {self.name}: {chunk}", file=self.stream, flush=True)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def run(
    *,
    profile: str = "quick",
    out: str | Path = "results",
    only: list[str] | None = None,
    in_place: bool = False,
    progress: bool = True,
    notebooks: str | Path | None = None,
    material: str | None = None,
    zone_axis=None,
) -> dict:
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
        committed outputs readers see) and, after a whole quick run, the README's block
        of run numbers (:func:`readme_numbers`).
    progress : bool
        Echo the progress lines of the notebooks' long cells (simulation, training,
        evaluation) to the terminal while they run.
    notebooks : str or Path, optional
        Folder of the notebooks (default: the repository's ``notebooks/``); they run
        with it as their working directory.
    material, zone_axis : optional
        Another crystal than CeO2 along [110] (:func:`plan`): its results go under
        ``out/<profile>/<material>/``.

    Returns
    -------
    dict
        The merged metrics (also written to ``metrics.json``): notebook name to its metrics, with
        ``runtime_s`` [s] for each notebook run now; those of earlier runs not run again are kept.

    Raises
    ------
    PipelineError
        When a cell fails: names the notebook, the cell and the error; later
        notebooks do not run.
    """
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    if profile not in registry.PROFILES:
        raise ValueError(f"profile must be one of {registry.PROFILES}, got {profile!r}")
    out = Path(out).resolve()
    folder = Path(notebooks).resolve() if notebooks is not None else notebooks_dir()
    tag = registry.material_tag(material, zone_axis)
    if in_place and tag is not None:
        raise ValueError(
            f"--in-place refreshes the committed notebooks, which are the {registry.DEFAULT_MATERIAL} run; "
            f"a run for {tag} writes its notebooks under {out / profile / tag}/notebooks instead"
        )
    steps = plan(profile, out, only, notebooks=folder, material=material, zone_axis=zone_axis)
    if not steps:
        raise ValueError(f"no notebooks to run in {folder}")
    root = out / profile / (tag or "")
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    metrics_path = root / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    timings: dict[str, float] = {}
    from .provenance import revision

    started_at = revision()  # what the notebooks run: the code as it is now
    saved_env = {k: os.environ.get(k) for k in ("ATOMTOOLS_PROFILE", "ATOMTOOLS_PROGRESS")}
    os.environ["ATOMTOOLS_PROFILE"] = profile  # the kernels inherit both
    os.environ["ATOMTOOLS_PROGRESS"] = "text"
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
                    progress_bar=False,
                    log_output=False,
                    stderr_file=_Echo(step.name) if progress else None,
                    # the kernel process's own log (a TCP-transport notice at every start, a
                    # KeyboardInterrupt at shutdown) says nothing about the run: keep it quiet
                    extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                )
            except PapermillExecutionError as exc:
                raise PipelineError(
                    f"{step.name}: cell {exc.exec_count} (cell index {exc.cell_index}) raised "
                    f"{exc.ename}: {exc.evalue}. "
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
                stamp(nb, revision=started_at)
                with atomic_path(step.source) as tmp:
                    nbformat.write(nb, tmp)
            print(f"      done in {timings[step.name]:.0f} s", flush=True)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        write_json(metrics_path, metrics)
        _write_summary(root, profile, metrics)
    if in_place and profile == "quick" and only is None and all(step.name in metrics for step in steps):
        readme = repository_root() / "README.md"
        write_text(readme, readme_numbers(readme.read_text(encoding="utf-8"), metrics, profile=profile))
    return metrics


def _format(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def headline_table(metrics: dict, profile: str) -> str:
    """Markdown: per notebook its runtime and the results it names as its headline, and the revision.

    Parameters
    ----------
    metrics : dict
        ``metrics.json`` of a run (notebook name -> its metrics).
    profile : str
        The run's profile.

    Returns
    -------
    str
        The markdown table, followed by the revision line where a notebook's metrics record it.

    Examples
    --------
    >>> print(headline_table({"01_simulate": {"runtime_s": 60.0, "headline": {"images": 8}}}, "smoke"))
    | notebook | runtime | headline results |
    |---|---|---|
    | 01_simulate | 1.0 min | images: 8 |
    """
    lines = ["| notebook | runtime | headline results |", "|---|---|---|"]
    for name in registry.names():
        if name in metrics:
            m = metrics[name]
            headline = "; ".join(f"{k}: {_format(v)}" for k, v in m.get("headline", {}).items()) or "(no headline)"
            lines.append(f"| {name} | {m.get('runtime_s', float('nan')) / 60:.1f} min | {headline} |")
    prov = next((m["provenance"] for m in metrics.values() if isinstance(m, dict) and "provenance" in m), None)
    if prov:
        lines += [
            "",
            f"Revision `{prov.get('revision')}`, profile `{profile}`; seeds and the sha256 of every "
            "input are in `metrics.json`.",
        ]
    return "\n".join(lines)


#: The README's block of numbers from the last quick run, between these two lines.
README_MARKERS = (
    "<!-- quick-run numbers: generated from results/quick/metrics.json -->",
    "<!-- end of quick-run numbers -->",
)


def readme_numbers(readme: str, metrics: dict, *, profile: str = "quick") -> str:
    """``readme`` with its block of run numbers (between :data:`README_MARKERS`) made from ``metrics``.

    Parameters
    ----------
    readme : str
        The README's text; it must hold both markers.
    metrics : dict
        ``metrics.json`` of the run.
    profile : str
        The run's profile.

    Returns
    -------
    str
        The new README text.

    Raises
    ------
    ValueError
        If the README lacks a marker.
    """
    start, end = README_MARKERS
    if start not in readme or end not in readme:
        raise ValueError(f"the README has no block of run numbers: add the lines {start!r} and {end!r}")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{headline_table(metrics, profile)}\n{end}{tail}"


def _write_summary(root: Path, profile: str, metrics: dict) -> None:
    """``summary.md``: per notebook its runtime and the results it names as its headline."""
    lines = [f"# atomtools results, profile `{profile}`", "", headline_table(metrics, profile)]
    lines += ["", "Figures: `figures/`; every number: `metrics.json`; executed notebooks: `notebooks/`.", ""]
    write_text(root / "summary.md", "\n".join(lines))

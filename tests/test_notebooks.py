"""The notebooks: their shape, and the whole chain executed with papermill at the smoke profile."""

from __future__ import annotations

import ast
import json

import nbformat
import papermill
import pytest

from atomtools import pipeline, registry

from .conftest import REPO, SHARED_MIRROR

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
FIRST_LINE = 'profile: str = os.environ.get("ATOMTOOLS_PROFILE", "quick")  # smoke | quick | paper'


def test_there_are_notebooks_in_pipeline_order():
    names = [p.stem for p in NOTEBOOKS]
    assert names, "no notebooks"
    assert all(n in registry.names() for n in names), names
    assert set(registry.names()) <= set(names), "every registered notebook has a file"
    assert "01_simulate" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb.metadata, "widget state must be scrubbed"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    source = tagged[0].source
    assert source.splitlines()[0] == FIRST_LINE
    tree = ast.parse(source)
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign), f"line {node.lineno}: every parameter needs a type annotation"
        line = source.splitlines()[node.lineno - 1]
        assert "  # " in line and line.split("  # ", 1)[1].strip(), (
            f"line {node.lineno}: every parameter needs a # comment"
        )
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"stored error output in {path.name}"
            assert "application/vnd.jupyter.widget-view+json" not in output.get("data", {}), (
                "widget output must be scrubbed"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_stay_quick_to_open(path):
    """Under 1 MB each: figures inline as JPEG at screen resolution (plotting.notebook_style)."""
    assert path.stat().st_size < 1_000_000, f"{path.name} weighs {path.stat().st_size / 1e6:.2f} MB"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_documents_every_parameter(path):
    params = papermill.inspect_notebook(str(path))
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    declared = [node.target.id for node in ast.parse(cell.source).body]
    assert list(params) == declared, (
        f"papermill --help-notebook misses {sorted(set(declared) - set(params))} (use Optional[...], not X | None)"
    )
    for name, info in params.items():
        assert info["help"], f"{path.stem}: parameter {name} has no help text"
        assert info["inferred_type_name"] != "None", f"{path.stem}: parameter {name} has no type"


@pytest.mark.slow
@pytest.mark.notebook
def test_whole_pipeline_runs_at_smoke_profile(tmp_path, serve, monkeypatch):
    if SHARED_MIRROR.is_dir():  # the real files the notebooks fetch, on loopback (else they skip those parts)
        monkeypatch.setenv("ATOMTOOLS_DATA_URL", serve(SHARED_MIRROR))
    metrics = pipeline.run(profile="smoke", out=tmp_path, progress=False)
    root = tmp_path / "smoke"
    names = pipeline.available_notebooks()
    assert set(names) <= set(metrics)
    for name in names:
        executed = nbformat.read(root / "notebooks" / f"{name}.ipynb", as_version=4)
        assert not [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert json.loads((root / "metrics.json").read_text()) == metrics
    assert "01_simulate" in (root / "summary.md").read_text()
    assert (root / "data" / "train.zarr").is_dir()
    assert any((root / "figures").glob("01_*.png"))


def test_a_material_named_nowhere_in_the_package_runs_from_parameters_alone(tmp_path, monkeypatch):
    """Ag: not in the package's materials; ASE's bulk builder and the parameters are all it takes."""
    from atomtools.core.materials import KNOWN

    package = "\n".join(p.read_text() for p in (REPO / "atomtools").rglob("*.py"))
    assert "Ag" not in KNOWN and '"Ag"' not in package and "'Ag'" not in package
    metrics = pipeline.run(profile="smoke", out=tmp_path, progress=False, material="Ag")
    root = tmp_path / "smoke" / "Ag"
    assert {"01_simulate", "02_train_unet", "04_evaluate"} <= set(metrics)
    from atomtools.storage import open_dataset

    data = open_dataset(root / "data" / "train.zarr")
    assert data.attrs["config"]["material"]["name"] == "Ag" and data.attrs["channels"] == [["Ag"]]
    assert (root / "weights" / "unet.pt").exists() and any((root / "figures").glob("04_*.png"))
    assert metrics["04_evaluate"]["network"] and not (tmp_path / "smoke" / "data").exists()

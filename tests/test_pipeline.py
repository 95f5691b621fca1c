"""The papermill pipeline: handoff, failures, scrubbing, CLI."""

from __future__ import annotations

import nbformat
import pytest

from atomtools import pipeline
from atomtools.cli import main
from atomtools.utils import write_json


def test_plan_hands_each_notebooks_outputs_to_the_next(tmp_path):
    steps = {s.name: s for s in pipeline.plan("quick", tmp_path)}
    assert steps["01_simulate"].parameters["out"].endswith("quick/data/train.zarr")
    if "02_train_unet" in steps:
        assert steps["02_train_unet"].parameters["dataset"] == steps["01_simulate"].parameters["out"]
    if "04_evaluate" in steps and "02_train_unet" in steps:
        assert steps["04_evaluate"].parameters["weights"] == steps["02_train_unet"].parameters["weights_out"]
    for step in steps.values():
        assert step.parameters["profile"] == "quick"
        assert step.parameters["metrics_out"].endswith(f"{step.name}.json")


def test_a_notebook_run_alone_gets_no_input_that_does_not_exist(tmp_path):
    if "04_evaluate" not in pipeline.available_notebooks():
        pytest.skip("no 04_evaluate notebook")
    (step,) = pipeline.plan("quick", tmp_path, only=["04_evaluate"])
    assert "weights" not in step.parameters, "missing weights must fall back to the notebook's default (pretrained)"
    assert "test_out" in step.parameters


def test_unknown_notebook_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown notebook"):
        pipeline.plan("smoke", tmp_path, only=["99_nothing"])


def _notebook(path, *sources, tagged_first=True):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    if tagged_first:
        nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_a_failing_cell_stops_the_run_naming_notebook_cell_and_error(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(
        folder / "01_simulate.ipynb",
        'profile: str = "quick"  # run size\nfigures_dir: str = ""  # figs\n'
        'metrics_out: str = ""  # m\nout: str = ""  # o',
        "x = 1",
        "raise ZeroDivisionError('no atoms here')",
    )
    _notebook(folder / "02_train_unet.ipynb", 'profile: str = "quick"  # p', "print('should not run')")
    with pytest.raises(pipeline.PipelineError) as err:
        pipeline.run(profile="smoke", out=tmp_path / "out", notebooks=folder, progress=False)
    msg = str(err.value)
    assert msg.startswith("01_simulate: cell") and "ZeroDivisionError" in msg and "no atoms here" in msg
    assert not (tmp_path / "out" / "smoke" / "notebooks" / "02_train_unet.ipynb").exists()


def test_scrub_removes_widgets_timings_and_injected_parameters():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "venv-kernel", "display_name": "x", "language": "python"}
    nb.metadata["widgets"] = {"state": {}}
    injected = nbformat.v4.new_code_cell("profile = 'quick'")
    injected.metadata["tags"] = ["injected-parameters"]
    cell = nbformat.v4.new_code_cell("for i in tqdm(x): pass")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "a"}, "text/plain": "0%"}
        ),
        nbformat.v4.new_output("stream", name="stderr", text="\r 50%|#####\r100%|##########"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
    ]
    cell.metadata["papermill"] = {"duration": 1.0}
    nb.cells = [injected, cell]
    pipeline.scrub(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3" and "widgets" not in nb.metadata
    assert len(nb.cells) == 1 and "papermill" not in nb.cells[0].metadata
    assert [o["output_type"] for o in nb.cells[0].outputs] == ["execute_result"]


def test_write_json_is_atomic(tmp_path):
    target = tmp_path / "m" / "metrics.json"
    write_json(target, {"a": 1.5})
    assert target.read_text().strip().startswith("{") and not list(tmp_path.rglob("*.partial"))


def test_cli_help_and_bad_profile(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "--profile", "huge"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_simulate_writes_a_dataset(tmp_path, capsys):
    from atomtools.storage import open_dataset

    assert (
        main(
            [
                "simulate",
                str(tmp_path / "s.zarr"),
                "--profile",
                "smoke",
                "--n-structures",
                "1",
                "--scheduler",
                "synchronous",
            ]
        )
        == 0
    )
    ds = open_dataset(tmp_path / "s.zarr")
    assert len(ds) == 2 and ds.attrs["seed"] == 0


def test_the_pipeline_echoes_the_progress_of_long_cells(tmp_path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(
        folder / "01_simulate.ipynb",
        'profile: str = "quick"  # p\nfigures_dir: str = ""  # f\nmetrics_out: str = ""  # m\nout: str = ""  # o',
        "import os, sys\nfrom atomtools.utils import progress_bar\n"
        "for _ in progress_bar(range(3), desc='simulating', mininterval=0):\n    pass\n"
        "print('mode', os.environ['ATOMTOOLS_PROGRESS'], file=sys.stderr)",
    )
    pipeline.run(profile="smoke", out=tmp_path / "out", notebooks=folder)
    printed = capsys.readouterr().out
    assert "01_simulate: simulating: 100%" in printed and "01_simulate: mode text" in printed


def test_a_material_run_is_the_counting_chain_under_its_own_folder(tmp_path):
    steps = {s.name: s for s in pipeline.plan("quick", tmp_path, material="Au")}
    assert set(steps) <= {"01_simulate", "02_train_unet", "04_evaluate"} and "01_simulate" in steps
    for step in steps.values():
        assert step.parameters["material"] == "Au" and step.parameters["zone_axis"] == [1, 1, 0]
        assert "/quick/Au/" in step.parameters["metrics_out"] and "/quick/Au/" in str(step.output)
    assert steps["01_simulate"].parameters["out"].endswith("quick/Au/data/train.zarr")
    if "04_evaluate" in steps:
        assert steps["04_evaluate"].parameters["weights"].endswith("quick/Au/weights/unet.pt")
    (zone,) = [
        s for s in pipeline.plan("quick", tmp_path, material="Pd", zone_axis=(1, 0, 0)) if s.name == "01_simulate"
    ]
    assert "/quick/Pd-100/" in zone.parameters["out"] and zone.parameters["zone_axis"] == [1, 0, 0]
    default = {s.name: s for s in pipeline.plan("quick", tmp_path, material="CeO2")}
    assert "material" not in default["01_simulate"].parameters  # the default run is the committed one


def test_reproduce_refuses_an_unknown_material_and_in_place_for_another(tmp_path, capsys):
    assert main(["reproduce", "--profile", "smoke", "--material", "Unobtainium", "--out", str(tmp_path)]) == 2
    assert "unknown material 'Unobtainium'" in capsys.readouterr().err
    args = ["reproduce", "--profile", "smoke", "--material", "Au", "--in-place", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "committed notebooks" in capsys.readouterr().err
    assert not (tmp_path / "smoke").exists()


def test_unet_weights_takes_the_given_then_the_trained_then_the_materials_own(tmp_path):
    from atomtools import data
    from atomtools.registry import pretrained_unet, unet_weights

    trained = tmp_path / "unet.pt"
    assert unet_weights("my.pt", trained=trained, material="Cu") == "my.pt"
    with pytest.raises(
        ValueError, match="no weights for Cu"
    ):  # Cu has none of its own: CeO2's are a start, not an answer
        unet_weights(None, trained=trained, material="Cu")
    assert pretrained_unet("Cu") == "unet-ceo2" and pretrained_unet("Au") == "unet-au"
    assert unet_weights("pretrained", trained=trained, material="Au") == str(data.fetch("unet-au"))
    trained.write_bytes(b"")
    assert unet_weights(None, trained=trained, material="Cu") == str(trained)

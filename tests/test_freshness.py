"""Committed notebooks carry the outputs of their own code: a code edit cannot leave stale outputs unseen."""

from __future__ import annotations

import copy

import nbformat
import pytest

from atomtools.pipeline import source_hash, stamp

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_committed_notebooks_outputs_come_from_its_code(path):
    nb = nbformat.read(path, as_version=4)
    recorded = nb.metadata.get("atomtools")
    if recorded is None:
        pytest.skip(f"{path.name}: outputs made before notebooks were stamped; `make reproduce` refreshes them")
    assert recorded["source_sha256"] == source_hash(nb), (
        f"{path.name}: its code changed since its outputs were made at {recorded['revision']}; "
        "re-run it (python -m atomtools reproduce --only " + path.stem + " --in-place)"
    )


def test_the_stamp_sees_a_code_edit_and_ignores_prose():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# a"), nbformat.v4.new_code_cell("x = 1")])
    stamp(nb, revision="abc")
    assert nb.metadata["atomtools"] == {"revision": "abc", "source_sha256": source_hash(nb)}
    prose = copy.deepcopy(nb)
    prose.cells[0].source = "# b"
    assert source_hash(prose) == source_hash(nb)
    edited = copy.deepcopy(nb)
    edited.cells[1].source = "x = 2"
    assert source_hash(edited) != nb.metadata["atomtools"]["source_sha256"]
    injected = copy.deepcopy(nb)
    injected.cells.insert(1, nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["injected-parameters"]}))
    assert source_hash(injected) == source_hash(nb)

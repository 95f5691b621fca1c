"""The README: the two commands first, citations, and a data table in sync with the manifest."""

from __future__ import annotations

from atomtools import data

from .conftest import REPO

README = (REPO / "README.md").read_text()


def test_data_table_matches_the_manifest():
    expected = data.replace_readme_table(README, data.markdown_table())
    assert README == expected, "README data table is stale: run `python -m atomtools data table --update README.md`"


def test_the_two_commands_come_first_and_exist_in_the_makefile():
    makefile = (REPO / "Makefile").read_text()
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make reproduce" in first_block and "make test" in first_block
    assert "\nreproduce:" in makefile and "\ntest:" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_sources_are_cited_and_binder_is_linked():
    for needle in ("arXiv:2601.17046", "10.1038/s41598-019-49267-x", "10.1038/s41598-021-84499-w", "mybinder.org"):
        assert needle in README


def test_every_notebook_is_in_the_notebook_table():
    table = README.split("<!-- notebook-table:start -->", 1)[1].split("<!-- notebook-table:end -->", 1)[0]
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert f"`{path.stem}`" in table


def test_the_readme_numbers_are_those_of_the_committed_quick_run():
    import json

    import pytest

    from atomtools import pipeline

    path = REPO / "results" / "quick" / "metrics.json"
    if not path.exists():
        pytest.skip("results/quick/metrics.json is not committed here: `make reproduce` writes it")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    expected = pipeline.readme_numbers(README, metrics, profile="quick")
    assert README == expected, (
        "the README's run numbers differ from results/quick/metrics.json: `python -m atomtools reproduce --in-place` "
        "rewrites both"
    )


def test_the_readme_numbers_block_is_rewritten_between_its_markers_only():
    import pytest

    from atomtools import pipeline

    start, end = pipeline.README_MARKERS
    text = f"before\n{start}\nold\n{end}\nafter\n"
    metrics = {"01_simulate": {"runtime_s": 30.0, "headline": {"images": 4}}}
    out = pipeline.readme_numbers(text, metrics)
    assert out.startswith(f"before\n{start}\n| notebook |") and out.endswith(f"{end}\nafter\n")
    assert "| 01_simulate | 0.5 min | images: 4 |" in out and "old" not in out
    assert pipeline.readme_numbers(out, metrics) == out  # stable
    with pytest.raises(ValueError, match="no block of run numbers"):
        pipeline.readme_numbers("no markers", metrics)

"""pyproject.toml, requirements/lock.txt, environment.yml and binder/environment.yml agree."""

from __future__ import annotations

import re
import tomllib

import yaml

from .conftest import REPO

CONDA_TO_PIP = {"pytorch": "torch"}
NOT_PINNED = {"python", "pip"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_norm(name)] = version
    return pins


def _conda(path) -> dict[str, str]:
    doc = yaml.safe_load(path.read_text())
    assert doc["channels"] == ["conda-forge"], f"{path}: only conda-forge"
    pins = {}
    for dep in doc["dependencies"]:
        if not isinstance(dep, str):
            continue
        name, *rest = dep.split("=")
        if name in NOT_PINNED:
            continue
        assert rest, f"{path}: {dep} is not pinned"
        pins[_norm(CONDA_TO_PIP.get(name, name))] = rest[0]
    return pins


def _pyproject() -> dict[str, str]:
    doc = tomllib.loads((REPO / "pyproject.toml").read_text())
    deps = doc["project"]["dependencies"] + [
        d for extra in doc["project"]["optional-dependencies"].values() for d in extra
    ]
    pins = {}
    for dep in deps:
        name, version = dep.split("==")
        pins[_norm(name)] = version
    return pins


def test_pyproject_pins_match_the_lock():
    lock = _lock()
    for name, version in _pyproject().items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_torch_is_pinned_exactly_to_the_cpu_wheel_version():
    assert _pyproject()["torch"] == "2.13.0" and _lock()["torch"] == "2.13.0"


def test_conda_environments_match_the_lock_and_each_other():
    lock = _lock()
    main = _conda(REPO / "environment.yml")
    binder = _conda(REPO / "binder" / "environment.yml")
    assert main == binder, "environment.yml and binder/environment.yml differ"
    for name, version in main.items():
        assert lock.get(name) == version, f"{name}: environment.yml {version}, lock {lock.get(name)}"
    missing = set(_pyproject()) - set(main)
    assert not missing, f"in pyproject but not in environment.yml: {sorted(missing)}"


def test_binder_post_build_installs_the_package_and_fails_loudly():
    text = (REPO / "binder" / "postBuild").read_text()
    assert "set -e" in text and "pip install" in text and "atomtools data fetch" in text

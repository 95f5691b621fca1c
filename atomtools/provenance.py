"""Where a result came from: code revision, profile, seed, and the hash of every input.

:func:`record` makes the provenance of one notebook run; notebooks put it in their
``metrics.json`` and pass it to :func:`atomtools.plotting.save`, which writes it into
every saved figure (a footer line and the PNG's metadata). A weights file or any
other file is identified by its sha256; a dataset store (a folder) by the sha256 of
its ``zarr.json``, which holds the configuration, seed and package versions that
decide its bytes (:mod:`atomtools.simulation.hrtem` makes datasets deterministic).
"""

from __future__ import annotations

import hashlib
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .columns.retrieval import PRETRAINED
from .data import entry, sha256

__all__ = ["record", "fingerprint", "revision", "footer"]


def _version() -> str:
    try:
        return version("atomtools")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0"


def revision() -> str:
    """The git revision of the code (``+dirty`` with uncommitted changes), or the package version.

    Returns
    -------
    str
        The short (12-digit) commit, e.g. ``"0123456789ab+dirty"``; ``"atomtools <version>"`` where
        git or the repository is missing.
    """
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"atomtools {_version()}"


def fingerprint(path: str | Path) -> str | None:
    """sha256 of a file, or of a dataset store's ``zarr.json``; None if there is nothing.

    Parameters
    ----------
    path : str or Path
        File or Zarr store.

    Returns
    -------
    str or None
        64 hex digits; None where ``path`` is neither a file nor a store with a ``zarr.json``.
    """
    path = Path(path)
    if path.is_file():
        return sha256(path)
    meta = path / "zarr.json"
    if meta.is_file():
        return hashlib.sha256(meta.read_bytes()).hexdigest()
    return None


def record(*, profile: str, seed: int | None = None, inputs: dict | None = None) -> dict:
    """The provenance of a run.

    Parameters
    ----------
    profile : str
        Run size.
    seed : int, optional
        The run's master seed.
    inputs : dict, optional
        Name -> path of the data and weights it read or wrote (``"pretrained"`` for
        the shipped weights is resolved through the manifest).

    Returns
    -------
    dict
        ``revision``, ``version``, ``profile``, ``seed`` and ``sha256`` (name -> hash).
    """
    hashes = {}
    for name, path in (inputs or {}).items():
        if path is None:
            continue
        if str(path) == "pretrained":
            hashes[name] = entry(PRETRAINED).sha256
        else:
            hashes[name] = fingerprint(path)
    return {"revision": revision(), "version": _version(), "profile": profile, "seed": seed, "sha256": hashes}


def footer(prov: dict) -> str:
    """One line for a figure: revision, profile, seed and short hashes.

    Parameters
    ----------
    prov : dict
        From :func:`record`.

    Returns
    -------
    str
        The parts joined by `` · ``: revision, profile, the seed where set, then each hash's first
        8 digits by name.

    Examples
    --------
    >>> footer({"revision": "abc", "profile": "quick", "seed": 0, "sha256": {"weights": "0123456789abcdef"}})
    'atomtools abc · profile quick · seed 0 · weights 01234567'
    """
    parts = [f"atomtools {prov.get('revision')}", f"profile {prov.get('profile')}"]
    if prov.get("seed") is not None:
        parts.append(f"seed {prov['seed']}")
    parts += [f"{k} {v[:8]}" for k, v in prov.get("sha256", {}).items() if v]
    return " · ".join(parts)

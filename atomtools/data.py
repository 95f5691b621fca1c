"""Every external file, from one declarative manifest, fetched and verified by pooch.

``data_manifest.yml`` (at the repository root) lists each file with its canonical URL,
sha256, size, kind, licence, citation and the notebooks that use it. This module
builds a pooch registry from it; nothing touches the disk or the network until a file
is asked for.

Environment variables:

``ATOMTOOLS_DATA_DIR``
    Cache folder (default: ``pooch.os_cache("atomtools")``).
``ATOMTOOLS_DATA_URL``
    Base URL of a mirror that holds the files under their ``file`` paths (e.g.
    ``http://127.0.0.1:8000/``); used instead of the canonical URLs.
``ATOMTOOLS_MANIFEST``
    Another manifest file (default: ``data_manifest.yml`` beside the package).

Files shipped inside the repository (``shipped:``, the pretrained weights) are used in
place once their hash checks; downloads land in a temporary file that pooch moves into
place only after the hash matches.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = [
    "ManifestEntry",
    "DataUnavailableError",
    "manifest_path",
    "load_manifest",
    "entry",
    "cache_dir",
    "fetch",
    "verify",
    "sha256",
    "markdown_table",
    "replace_readme_table",
    "ship_weights",
]

_REQUIRED = ("name", "file", "url", "sha256", "size", "kind", "licence", "citation", "description", "notebooks")
_KINDS = ("weights", "dataset", "experiment")


class DataUnavailableError(OSError):
    """A file could not be had: not cached, not shipped and not downloadable."""


@dataclass(frozen=True)
class ManifestEntry:
    """One file of ``data_manifest.yml``.

    Attributes
    ----------
    name, file, url, sha256, size, kind, licence, citation, description, notebooks
        The required fields (``data_manifest.yml``'s header explains each).
    shipped : str, optional
        Repository path of a copy that ships with the code.
    redistribute : bool
        False: link to the file, never copy it.
    sampling : float, optional
        The image's pixel size [Å/px] where the file does not state it (checked like any
        pixel size: :data:`atomtools.core.frames.SAMPLING_RANGE`).
    extra : dict
        Any further field (e.g. ``region``).
    """

    name: str
    file: str
    url: str
    sha256: str
    size: int
    kind: str
    licence: str
    citation: str
    description: str
    notebooks: tuple[str, ...]
    shipped: str | None = None
    redistribute: bool = True
    sampling: float | None = None
    extra: dict = field(default_factory=dict)


def manifest_path() -> Path:
    """The manifest in use: ``ATOMTOOLS_MANIFEST`` or the repository's ``data_manifest.yml``.

    Returns
    -------
    Path
        The manifest file (it may not exist).
    """
    env = os.environ.get("ATOMTOOLS_MANIFEST")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "data_manifest.yml"


def load_manifest(path: str | Path | None = None) -> dict[str, ManifestEntry]:
    """Parse and check the manifest (``yaml.safe_load``).

    Parameters
    ----------
    path : str or Path, optional
        The manifest (default :func:`manifest_path`).

    Returns
    -------
    dict of str to ManifestEntry
        Each entry by its name, in the manifest's order.

    Raises
    ------
    ValueError
        Naming the file, the entry and the field, if an entry is incomplete or wrong.
    """
    path = Path(path) if path is not None else manifest_path()
    if not path.is_file():
        raise FileNotFoundError(f"data manifest not found at {path}; set ATOMTOOLS_MANIFEST to its location")
    # Parsing is cached on the file's bytes: `retrieve` looks weights up once per frame,
    # and YAML parsing cost a sixth of a 512 x 512 frame's time.
    return dict(_parse_manifest(str(path), path.read_bytes()))


@functools.lru_cache(maxsize=8)
def _parse_manifest(path: str, text: bytes) -> dict[str, ManifestEntry]:
    doc = yaml.safe_load(text.decode("utf-8")) or {}
    files = doc.get("files")
    if not isinstance(files, list):
        raise ValueError(f"{path}: expected a top-level 'files:' list")
    entries: dict[str, ManifestEntry] = {}
    for i, item in enumerate(files):
        where = f"{path}: files[{i}]" + (
            f" ({item.get('name')})" if isinstance(item, dict) and item.get("name") else ""
        )
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping")
        missing = [k for k in _REQUIRED if k not in item]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}")
        digest = str(item["sha256"]).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{where}: sha256 must be 64 hex digits, got {item['sha256']!r}")
        if item["kind"] not in _KINDS:
            raise ValueError(f"{where}: kind must be one of {_KINDS}, got {item['kind']!r}")
        if not isinstance(item["size"], int) or item["size"] <= 0:
            raise ValueError(f"{where}: size must be a positive number of bytes, got {item['size']!r}")
        if item["name"] in entries:
            raise ValueError(f"{where}: duplicate name {item['name']!r}")
        known = set(_REQUIRED) | {"shipped", "redistribute", "sampling"}
        sampling = item.get("sampling")
        if sampling is not None:
            from .core.frames import check_sampling

            try:
                sampling = check_sampling(sampling)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: sampling (the image's pixel size [Å/px]): {err}") from None
        entries[item["name"]] = ManifestEntry(
            name=str(item["name"]),
            file=str(item["file"]),
            url=str(item["url"]),
            sha256=digest,
            size=int(item["size"]),
            kind=str(item["kind"]),
            licence=str(item["licence"]),
            citation=str(item["citation"]),
            description=" ".join(str(item["description"]).split()),
            notebooks=tuple(item["notebooks"] or ()),
            shipped=item.get("shipped"),
            redistribute=bool(item.get("redistribute", True)),
            sampling=sampling,
            extra={k: v for k, v in item.items() if k not in known},
        )
    return entries


def entry(name: str) -> ManifestEntry:
    """The manifest entry called ``name``; a KeyError lists the known names.

    Parameters
    ----------
    name : str
        Manifest name of the file.

    Returns
    -------
    ManifestEntry
        The entry.
    """
    entries = load_manifest()
    if name not in entries:
        raise KeyError(f"no file called {name!r} in {manifest_path()}; known: {', '.join(sorted(entries))}")
    return entries[name]


def cache_dir() -> Path:
    """Where downloads are cached: ``ATOMTOOLS_DATA_DIR`` or pooch's OS cache for atomtools.

    Returns
    -------
    Path
        The cache folder (it may not exist yet).
    """
    import pooch

    env = os.environ.get("ATOMTOOLS_DATA_DIR")
    return Path(env) if env else Path(pooch.os_cache("atomtools"))


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        The 64 hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _shipped_path(e: ManifestEntry) -> Path | None:
    if not e.shipped:
        return None
    return manifest_path().parent / e.shipped


def _pooch(entries: dict[str, ManifestEntry]):
    import pooch

    mirror = os.environ.get("ATOMTOOLS_DATA_URL")
    base = (mirror.rstrip("/") + "/") if mirror else ""
    return pooch.create(
        path=cache_dir(),
        base_url=base,
        registry={e.file: f"sha256:{e.sha256}" for e in entries.values()},
        urls={} if mirror else {e.file: e.url for e in entries.values()},
        retry_if_failed=1,
    )


def fetch(name: str, *, progress: bool = False) -> Path:
    """Local path of the manifest file ``name``, downloading and verifying it if needed.

    Order: the copy shipped in the repository (hash-checked), the cache, then the
    mirror (``ATOMTOOLS_DATA_URL``) or the canonical URL.

    Parameters
    ----------
    name : str
        Manifest name of the file.
    progress : bool
        Show a download progress bar.

    Returns
    -------
    Path
        The verified local file: the shipped copy, or the one in :func:`cache_dir`.

    Raises
    ------
    KeyError
        Unknown name (the message lists the known ones).
    DataUnavailableError
        Offline and not cached: says which file, from where, and how to provide it.
    ValueError
        A shipped file or download whose sha256 differs; names both hashes. A failed
        download leaves nothing behind.
    """
    e = entry(name)
    shipped = _shipped_path(e)
    if shipped is not None and shipped.is_file():
        actual = sha256(shipped)
        if actual != e.sha256:
            raise ValueError(
                f"{name}: the shipped file {shipped} has sha256 {actual}, but the manifest expects {e.sha256}"
            )
        return shipped
    registry = _pooch(load_manifest())
    source = (
        (os.environ.get("ATOMTOOLS_DATA_URL", "").rstrip("/") + "/" + e.file)
        if os.environ.get("ATOMTOOLS_DATA_URL")
        else e.url
    )
    try:
        return Path(registry.fetch(e.file, progressbar=progress))
    except ValueError as exc:
        # For a file in the registry with a sha256, pooch raises ValueError only when the
        # download's hash differs (it removes the download first).
        raise ValueError(
            f"{name}: the file downloaded from {source} does not match the manifest (expected "
            f"sha256 {e.sha256}); nothing was kept. pooch says: {exc}"
        ) from exc
    except Exception as exc:
        target = cache_dir() / e.file
        raise DataUnavailableError(
            f"could not get {name!r} ({e.file}, {e.size:,} bytes) from {source}: {type(exc).__name__}: {exc}. "
            f"Either set ATOMTOOLS_DATA_URL to a mirror that holds {e.file}, or put the file at {target} "
            f"(ATOMTOOLS_DATA_DIR moves the cache)."
        ) from exc


def verify() -> list[dict]:
    """Re-hash every shipped or cached file.

    Returns
    -------
    list of dict
        ``name``, ``path``, ``status`` (``ok``, ``missing`` or ``corrupt``) and, for a
        corrupt file, ``actual`` sha256.
    """
    report = []
    for e in load_manifest().values():
        shipped = _shipped_path(e)
        path = shipped if shipped is not None and shipped.is_file() else cache_dir() / e.file
        row = {"name": e.name, "path": str(path)}
        if not path.is_file():
            row["status"] = "missing"
        else:
            actual = sha256(path)
            row["status"] = "ok" if actual == e.sha256 else "corrupt"
            if actual != e.sha256:
                row["actual"] = actual
        report.append(row)
    return report


def markdown_table(entries: dict[str, ManifestEntry] | None = None) -> str:
    """The README's data table, generated from the manifest.

    Parameters
    ----------
    entries : dict, optional
        Manifest entries (default: the manifest in use).

    Returns
    -------
    str
        A markdown table, one row per entry: name (linked to its URL), kind, size, licence, notebooks
        that use it and description.
    """
    entries = load_manifest() if entries is None else entries
    lines = ["| name | kind | size | licence | used by | what it is |", "|---|---|---|---|---|---|"]
    for e in entries.values():
        size = f"{e.size / 1e6:.1f} MB" if e.size >= 1e5 else f"{e.size / 1e3:.0f} kB"
        lines.append(
            f"| [`{e.name}`]({e.url}) | {e.kind} | {size} | {e.licence} | {', '.join(e.notebooks)} | {e.description} |"
        )
    return "\n".join(lines)


_START, _END = "<!-- data-table:start -->", "<!-- data-table:end -->"


def replace_readme_table(readme: str, table: str) -> str:
    """``readme`` with the text between the data-table markers replaced by ``table``.

    Parameters
    ----------
    readme : str
        The README's text.
    table : str
        The new table (:func:`markdown_table`).

    Returns
    -------
    str
        The new README text.
    """
    if _START not in readme or _END not in readme:
        raise ValueError(f"the README has no {_START} ... {_END} markers")
    head, rest = readme.split(_START, 1)
    _, tail = rest.split(_END, 1)
    return f"{head}{_START}\n{table}\n{_END}{tail}"


def ship_weights(
    name: str,
    weights: str | Path,
    *,
    citation: str,
    description: str,
    notebooks: list[str],
    before: str | None = None,
    manifest: str | Path | None = None,
) -> ManifestEntry:
    """Write (or refresh) the manifest entry of weights shipped inside the repository.

    The entry gets the file's sha256 and size, its path in the repository (``shipped``)
    and its canonical URL on the repository's main branch; an entry of that name is
    replaced where it stands, a new one goes before ``before`` (or at the end). The
    manifest is written atomically and read back, so a malformed entry fails here.

    Parameters
    ----------
    name : str
        Manifest name (``"atomseg"``, ``"unet-au"``).
    weights : str or Path
        The weights file, inside the repository.
    citation, description : str
        What to cite; what the file is (folded over lines of the manifest).
    notebooks : list of str
        Notebooks that use it.
    before : str, optional
        Name of the entry a new one is placed before.
    manifest : str or Path, optional
        The manifest (default :func:`manifest_path`).

    Returns
    -------
    ManifestEntry
        The entry as the manifest now reads.
    """
    import re
    import textwrap

    from .utils import write_text

    path = Path(manifest) if manifest is not None else manifest_path()
    weights = Path(weights).resolve()
    try:
        relative = weights.relative_to(path.resolve().parent).as_posix()
    except ValueError:
        where = path.resolve().parent
        raise ValueError(f"{weights} is not inside {where}: only weights shipped there get an entry") from None
    indent = " " * 6
    folded = textwrap.fill(" ".join(description.split()), width=110, initial_indent=indent, subsequent_indent=indent)
    text = (
        f"  - name: {name}\n"
        f"    file: weights/{weights.name}\n"
        f"    url: https://github.com/atomtools/atomtools/raw/main/{relative}\n"
        f"    shipped: {relative}\n"
        f"    sha256: {sha256(weights)}\n"
        f"    size: {weights.stat().st_size}\n"
        "    kind: weights\n"
        "    licence: GPL-3.0-or-later\n"
        f"    citation: {json.dumps(citation, ensure_ascii=False)}\n"
        "    description: >-\n"
        f"{folded}\n"
        f"    notebooks: [{', '.join(notebooks)}]\n"
    )
    current = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^  - name: {re.escape(name)}\n(?:(?:    |      ).*\n)*", re.MULTILINE)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current, count=1)
    elif before is not None and f"  - name: {before}\n" in current:
        updated = current.replace(f"  - name: {before}\n", text + f"  - name: {before}\n", 1)
    else:
        updated = current.rstrip("\n") + "\n" + text
    write_text(path, updated)
    return load_manifest(path)[name]

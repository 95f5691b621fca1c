"""The metadata of an opened file: dotted look-ups as HyperSpy makes them, RosettaSciIO's mapping
applied, a JSON-able subset of any tree, and the one message of a file that could not be read.

Every ``_open_<format>`` reader returns a raw dict whose ``metadata`` holds only what
:func:`_json_subset` keeps, so a :class:`~atomtools.readers.Frames`' metadata can be written
as JSON.

Examples
--------
>>> _get({"Acquisition instrument": {"TEM": {"beam_energy": 300}}}, "Acquisition_instrument.TEM.beam_energy")
300
>>> _json_subset({"a": np.float32(0.5), "b": None, "nan": float("nan"), "c": object()})
{'a': 0.5, 'b': None}
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path

import numpy as np

__all__ = ["FileFormatError"]


class FileFormatError(ValueError):
    """A file that cannot be read as what its name or header says (the message names the file).

    Raised at opening or later, when a lazy frame is computed: callers re-raise it as it
    is and wrap anything else (a decoder's own error) into one.
    """


def _unreadable(path: Path, fmt: str, err: BaseException) -> FileFormatError:
    return FileFormatError(f"{path.name} could not be read as {fmt}: {type(err).__name__}: {err}")


def _slug(key) -> str:
    text = unicodedata.normalize("NFKD", str(key)).encode("ascii", "ignore").decode()
    return re.sub(r"[^0-9A-Za-z_]", "", text.strip().replace(" ", "_"))


def _get(tree, dotted: str):
    """The value at a dotted path of nested dicts, matching keys as HyperSpy does (spaces as underscores)."""
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
            continue
        want = _slug(part)
        match = next((k for k in node if _slug(k) == want), None)
        if match is None:
            return None
        node = node[match]
    return node


def _set(tree: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[last] = value


def _mapped_metadata(record: dict) -> dict:
    """rsciio's ``metadata`` with its ``mapping`` from ``original_metadata`` applied (as HyperSpy does on load)."""
    import copy

    metadata = copy.deepcopy(record.get("metadata") or {})
    original = record.get("original_metadata") or {}
    for source, target in (record.get("mapping") or {}).items():
        try:
            where, function = target
            value = _get(original, source)
            if value is None:
                continue
            value = function(value) if function is not None else value
        except Exception:  # a mapping function that does not fit this file: skip it, as the value is optional
            continue
        if value is not None:
            _set(metadata, where, value)
    return metadata


def _json_subset(value, depth: int = 0):
    """``value`` reduced to what JSON holds: dicts, short lists, strings, numbers, booleans, None."""
    if depth > 12:
        return None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = _json_subset(v, depth + 1)
            if sub is not None or v is None:
                out[str(k)] = sub
        return out
    if isinstance(value, np.ndarray):
        return _json_subset(value.tolist(), depth + 1) if value.size <= 64 and value.dtype.kind in "biuf" else None
    if isinstance(value, (list, tuple)):
        if len(value) > 64:
            return None
        return [_json_subset(v, depth + 1) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= 4096 else None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return None

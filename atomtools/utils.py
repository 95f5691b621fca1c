"""Small helpers every layer uses: atomic writes and progress bars.

The one way atomtools writes a file is to a temporary file beside it, then a rename:
a reader never sees a half-written file, and a killed process leaves at most a
``*.partial`` file (ignored by git, replaced by the next write), never a truncated
result under the real name. Every writer of the package goes through
:func:`atomic_path` (:func:`write_text` and :func:`write_json` are conveniences on
top of it).

Long loops show a :func:`progress_bar`: a widget in Jupyter, text in a terminal, and
plain text lines every few seconds when ``ATOMTOOLS_PROGRESS=text`` (set by
``python -m atomtools reproduce``, which echoes them while a notebook runs).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

__all__ = ["atomic_path", "write_text", "write_json", "progress_bar", "jsonable", "Record"]


def progress_bar(*args, **kwargs):
    """A tqdm progress bar (``tqdm.auto``), or a plain text one under ``ATOMTOOLS_PROGRESS=text``.

    Parameters
    ----------
    *args, **kwargs
        As for ``tqdm.tqdm`` (``total``, ``desc``, ``unit``, ``disable``, ...).

    Returns
    -------
    tqdm.tqdm
        The bar (a ``tqdm.std.tqdm`` in text mode, else a ``tqdm.auto.tqdm``), also an iterator over
        its iterable where one is given.
    """
    if os.environ.get("ATOMTOOLS_PROGRESS") == "text":
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", float(os.environ.get("ATOMTOOLS_PROGRESS_INTERVAL", "10")))
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("file", sys.stderr)
        return tqdm(*args, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(*args, **kwargs)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path to write ``path`` through; renamed onto ``path`` on success.

    Parameters
    ----------
    path : str or Path
        The file to (re)write. Its folder is created.
    suffix : str, optional
        Ending of the temporary file, for writers that choose the format by it
        (matplotlib, ASE); default ``.partial``.

    Yields
    ------
    Path
        Where to write. On an exception it is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a" / "b.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("whole")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('whole', ['b.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.partial{suffix}" if suffix else f"{path.name}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically.

    Parameters
    ----------
    path : str or Path
        The file.
    text : str
        Its content.

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj) -> Path:
    """Write JSON atomically (indented, sorted keys; numpy scalars as floats).

    Parameters
    ----------
    path : str or Path
        The file.
    obj : object
        Anything :func:`json.dumps` takes.

    Returns
    -------
    Path
        ``path``.
    """
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def jsonable(value):
    """``value`` with dataclasses as dicts and tuples as lists, recursively (JSON's own shapes).

    Parameters
    ----------
    value : object
        A dataclass, dict, list, tuple or scalar.

    Returns
    -------
    object
        A new structure of dicts, lists and the scalars as they were.

    Examples
    --------
    >>> jsonable({"shape": (2, 3), "groups": ((1,), (2,))})
    {'shape': [2, 3], 'groups': [[1], [2]]}
    """
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _tuples(value):
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


class Record:
    """Mixin for the settings dataclasses that are stored as JSON (datasets, weights, checkpoints).

    :meth:`to_dict` gives JSON's shapes (lists for tuples, nested dataclasses as dicts)
    and :meth:`from_dict` inverts it (lists become tuples again). A subclass with
    ``strict = False`` ignores unknown keys (settings written by another version);
    otherwise they are refused, named.
    """

    strict = True

    def to_dict(self) -> dict:
        """JSON-able form; :meth:`from_dict` inverts it."""
        return jsonable(self)

    @classmethod
    def from_dict(cls, d: dict):
        """An instance from :meth:`to_dict`'s form (or a subset of the fields).

        Parameters
        ----------
        d : dict
            Field values; lists become tuples.

        Raises
        ------
        ValueError
            For unknown keys, naming them and the known ones (unless ``strict`` is False).
        """
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown and cls.strict:
            raise ValueError(f"unknown {cls.__name__} parameters: {sorted(unknown)}; known: {sorted(names)}")
        return cls(**{k: _tuples(v) for k, v in d.items() if k in names})

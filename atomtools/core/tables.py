"""The column table: one format that every module reads and writes.

Every table of every work starts with the same position columns (:data:`POSITION`):
``x``, ``y`` [Å] and ``row``, ``col`` [px]; the atom tables of :mod:`atomtools.localize`
too (:func:`from_pixels`, with ``x``, ``y`` NaN where a file states no pixel size).

A column table is a :class:`pandas.DataFrame` with one row per atomic column. Every
table has the position (``x``, ``y`` [Å]; ``row``, ``col`` [px], with pixel ``(i, j)``
at ``(x, y) = (j, i) * sampling``), the ``element`` and label ``channel`` of the column
and its atom ``count``. Ground truth adds the column id and its extent along the beam
(:data:`TRUTH`); a prediction adds the confidence of the count and the probability
that a column is there at all (:data:`PREDICTED`). Datasets store the truth as a
float array with the element as its atomic number (:data:`STORED`,
:func:`to_array`, :func:`from_array`).

Examples
--------
>>> one = {"x": [1.6], "y": [0.8], "element": ["Ce"], "channel": [0], "count": [5], "confidence": [0.9]}
>>> one["p_column"] = [1.0]
>>> t = new_table(one, kind="predicted", sampling=0.16)
>>> list(t.columns) == list(PREDICTED), float(t.row[0]), float(t.col[0])
(True, 5.0, 10.0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from ase.data import atomic_numbers, chemical_symbols

__all__ = [
    "COMMON",
    "TRUTH",
    "PREDICTED",
    "STORED",
    "POSITION",
    "new_table",
    "with_pixels",
    "from_pixels",
    "to_array",
    "from_array",
]

#: Columns every column table has.
COMMON = ("x", "y", "row", "col", "element", "channel", "count")
#: A ground-truth table: column id, common columns, extent along the beam [Å].
TRUTH = ("column", *COMMON, "z_min", "z_max")
#: A prediction: common columns, the prediction set of the count (``count_low`` to
#: ``count_high`` [atoms]; both ``count`` where no set was made), whether the column is
#: thicker than the counter was trained for, confidence of the count, probability of a column.
PREDICTED = (*COMMON, "count_low", "count_high", "beyond_range", "confidence", "p_column")
#: The position columns every table of every work starts with (column tables, and the
#: atom tables of :mod:`atomtools.localize`): ``x``, ``y`` [Å] and ``row``, ``col`` [px].
POSITION = ("x", "y", "row", "col")
#: The truth as a dataset stores it: numbers only, the element as its atomic number Z.
STORED = ("column", "x", "y", "Z", "channel", "count", "z_min", "z_max")

_KINDS = {"truth": TRUTH, "predicted": PREDICTED}
_INTEGER = ("column", "channel", "count")


def with_pixels(table: pd.DataFrame, sampling: float) -> pd.DataFrame:
    """``table`` with ``row`` and ``col`` [px] recomputed from ``y`` and ``x`` [Å].

    Parameters
    ----------
    table : pandas.DataFrame
        Column table with ``x`` and ``y``.
    sampling : float
        Pixel size [Å].

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``row`` = ``y / sampling`` and ``col`` = ``x / sampling`` [px].
    """
    if not sampling > 0:
        raise ValueError(f"sampling must be positive [Å/px], got {sampling}")
    table = table.copy()
    table["row"] = table["y"].to_numpy(float) / sampling
    table["col"] = table["x"].to_numpy(float) / sampling
    return table


def new_table(data, *, kind: str, sampling: float | None = None) -> pd.DataFrame:
    """A column table of ``kind`` from a dict of columns or a list of row dicts.

    Parameters
    ----------
    data : dict or list of dict
        The values; missing pixel columns are computed from ``sampling``.
    kind : {"truth", "predicted"}
        Which layout (:data:`TRUTH` or :data:`PREDICTED`).
    sampling : float, optional
        Pixel size [Å], to fill ``row`` and ``col`` from ``y`` and ``x``.

    Returns
    -------
    pandas.DataFrame
        Exactly the layout's columns, in its order (empty with them if no rows).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    names = _KINDS[kind]
    table = pd.DataFrame(data)
    if sampling is not None and len(table):
        table = with_pixels(table, sampling)
    if kind == "predicted" and len(table) and "count" in table.columns:
        # a prediction without a set: the set is the count itself
        table = table.assign(
            **{n: table["count"] for n in ("count_low", "count_high") if n not in table.columns},
            **({"beyond_range": False} if "beyond_range" not in table.columns else {}),
        )
    missing = [n for n in names if n not in table.columns]
    if missing and len(table):
        raise ValueError(f"a {kind} column table needs {missing}")
    if not len(table):
        dtypes = {"element": object, "beyond_range": bool}
        return pd.DataFrame({n: pd.Series(dtype=dtypes.get(n, float)) for n in names})
    return table[list(names)].reset_index(drop=True)


def from_pixels(col, row, sampling: float | None, **columns) -> pd.DataFrame:
    """A table whose position is given in pixels: :data:`POSITION` first, then ``columns``.

    The one convention of every work: ``x``, ``y`` [Å] and ``row``, ``col`` [px], pixel
    ``(i, j)`` at ``(x, y) = (j, i) * sampling``. Where the pixel size is unknown (a
    file that does not state it), ``x`` and ``y`` are NaN and the pixels carry the
    position.

    Parameters
    ----------
    col, row : array-like
        Position [px] (column, row; pixel centres at integers).
    sampling : float or None
        Pixel size [Å]; None: unknown.
    **columns
        Further columns, in order.

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y``, ``row``, ``col`` and ``columns``.

    Examples
    --------
    >>> t = from_pixels([10.0], [5.0], 0.1, confidence=[0.9])
    >>> list(t.columns), round(float(t.x[0]), 6), round(float(t.y[0]), 6)
    (['x', 'y', 'row', 'col', 'confidence'], 1.0, 0.5)
    >>> bool(from_pixels([10.0], [5.0], None).x.isna().all())
    True
    """
    col = np.asarray(col, float).ravel()
    row = np.asarray(row, float).ravel()
    if sampling is not None and not sampling > 0:
        raise ValueError(f"sampling must be positive [Å/px] or None (unknown), got {sampling}")
    scale = np.nan if sampling is None else float(sampling)
    table = pd.DataFrame({"x": col * scale, "y": row * scale, "row": row, "col": col})
    for name, values in columns.items():
        table[name] = np.asarray(values)
    return table


def to_array(table: pd.DataFrame) -> np.ndarray:
    """A truth table as the (m, 8) float array a dataset stores (:data:`STORED`).

    Parameters
    ----------
    table : pandas.DataFrame
        Ground-truth column table.

    Returns
    -------
    numpy.ndarray
        float64, shape (m, 8): the :data:`STORED` fields, the element as its atomic number ``Z``.
    """
    if not len(table):
        return np.zeros((0, len(STORED)))
    z = np.array([atomic_numbers[e] for e in table["element"]], float)
    return np.column_stack([z if name == "Z" else table[name].to_numpy(float) for name in STORED])


def from_array(values: np.ndarray, *, sampling: float, fields=STORED) -> pd.DataFrame:
    """The truth table of a stored array (inverse of :func:`to_array`).

    Parameters
    ----------
    values : numpy.ndarray
        (m, len(fields)) array.
    sampling : float
        Pixel size [Å], for ``row`` and ``col``.
    fields : sequence of str
        Names of the array's columns (as stored beside it).

    Returns
    -------
    pandas.DataFrame
        The truth table (:data:`TRUTH` layout), ``row`` and ``col`` [px] computed from ``sampling``.
    """
    values = np.asarray(values, float).reshape(-1, len(fields))
    raw = pd.DataFrame(values, columns=list(fields))
    raw["element"] = [chemical_symbols[int(z)] for z in raw.pop("Z")]
    for name in _INTEGER:
        raw[name] = raw[name].astype(int)
    return new_table(raw, kind="truth", sampling=sampling)

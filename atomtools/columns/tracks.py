"""Columns of an in-situ movie linked into tracks, and each track's counts over time.

- :func:`link_columns` links the columns of one element across frames into tracks
  (trackpy), positions in frame 0's coordinates (drift-corrected, see
  :mod:`atomtools.columns.drift`);
- :func:`count_timelines` tabulates each track's counts frame by frame, gaps included;
- :func:`track_summary` gives one row per track: where, when and how its count went.

The persistent changes of the tracks are :mod:`atomtools.columns.events`'s.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["link_columns", "count_timelines", "track_summary"]

# --------------------------------------------------------------------------- linking


def _frames_table(tables) -> pd.DataFrame:
    """One table with a ``frame`` column from a list of per-frame tables or a table with ``frame``."""
    if isinstance(tables, pd.DataFrame):
        if "frame" not in tables.columns:
            raise ValueError("a single table needs a 'frame' column; or pass a list with one table per frame")
        return tables.reset_index(drop=True)
    parts = []
    for k, table in enumerate(tables):
        table = pd.DataFrame(table)
        if len(table):
            parts.append(table.assign(frame=k) if "frame" not in table.columns else table)
    if not parts:
        return pd.DataFrame({"frame": pd.Series(dtype=int)})
    return pd.concat(parts, ignore_index=True)


def link_columns(tables, *, search_range: float = 0.8, memory: int = 2, sampling: float | None = None) -> pd.DataFrame:
    """Link the columns of consecutive frames into tracks, one element at a time.

    Linking is :func:`trackpy.link` (Crocker-Grier nearest-neighbour linking with subnet
    optimization): a maintained, tested implementation that bridges missed detections for
    up to ``memory`` frames and resolves competing candidates by the least total
    displacement, which a frame-to-frame nearest-neighbour match does not. Columns of
    different elements are never linked together (each element is linked on its own),
    and the track ids are unique across elements. A column missed for more than
    ``memory`` frames starts a new track when it comes back.

    Parameters
    ----------
    tables : list of pandas.DataFrame, or pandas.DataFrame
        One column table per frame (the list index is the frame), or one table with a
        ``frame`` column; positions drift-corrected (in frame 0's coordinates).
    search_range : float
        Farthest a column may move between two frames it is seen in [Å]: below half the
        closest spacing of two columns of one element (1.9 Å between neighbouring O
        columns in CeO2 [110], 3.3 Å between Ce columns).
    memory : int
        Frames a column may go unseen and keep its track.
    sampling : float, optional
        Pixel size [Å]: positions are then taken from ``row``, ``col`` [px] times
        ``sampling`` (tables that hold pixel positions only). Default: ``x``, ``y`` [Å].

    Returns
    -------
    pandas.DataFrame
        All rows, sorted by frame and track, with ``frame`` and ``track`` (int).

    Examples
    --------
    >>> t0 = pd.DataFrame({"x": [0.0, 5.0], "y": [0.0, 0.0], "element": ["Ce", "O"]})
    >>> t1 = pd.DataFrame({"x": [0.1, 5.1], "y": [0.0, 0.0], "element": ["Ce", "O"]})
    >>> link_columns([t0, t1])[["frame", "element", "track"]].values.tolist()
    [[0, 'Ce', 0], [0, 'O', 1], [1, 'Ce', 0], [1, 'O', 1]]
    """
    import trackpy

    trackpy.quiet()
    table = _frames_table(tables)
    if not search_range > 0:
        raise ValueError(f"search_range must be positive [Å], got {search_range}")
    if int(memory) < 0:
        raise ValueError(f"memory must be a number of frames >= 0, got {memory}")
    if not len(table):
        return table.assign(track=pd.Series(dtype=int))
    if sampling is not None:
        table = table.assign(x=table["col"].to_numpy(float) * sampling, y=table["row"].to_numpy(float) * sampling)
    missing = [c for c in ("x", "y") if c not in table.columns]
    if missing:
        raise ValueError(f"the tables need {missing} [Å] (or row, col [px] with sampling=)")
    if "element" not in table.columns:
        table = table.assign(element="?")
    table = table.assign(frame=table["frame"].astype(int))
    parts = []
    offset = 0
    for element in sorted(table["element"].astype(str).unique()):
        part = table[table["element"].astype(str) == element].reset_index(drop=True)
        with warnings.catch_warnings():  # trackpy 0.7 sorts in place, which pandas 3 deprecates
            warnings.filterwarnings("ignore", message=".*inplace keyword.*")
            linked = trackpy.link(
                part,
                float(search_range),
                pos_columns=["y", "x"],
                t_column="frame",
                memory=int(memory),
                adaptive_stop=float(search_range) / 10,  # dense subnets: shrink the range instead of failing
            )
        ids = linked["particle"].to_numpy()
        _, dense = np.unique(ids, return_inverse=True)
        linked = linked.drop(columns="particle").assign(track=dense.astype(int) + offset)
        offset += int(dense.max()) + 1
        parts.append(linked)
    out = pd.concat(parts, ignore_index=True)
    # number the tracks by first appearance (frame, then position), so that ids read in order
    first = out.sort_values(["frame", "y", "x"]).drop_duplicates("track")["track"].to_numpy()
    renumber = {int(t): i for i, t in enumerate(first)}
    out["track"] = out["track"].map(renumber).astype(int)
    return out.sort_values(["frame", "track"]).reset_index(drop=True)


# --------------------------------------------------------------------------- timelines


def count_timelines(tracks: pd.DataFrame) -> pd.DataFrame:
    """One row per track and frame, from its first to its last frame, gaps included.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Linked columns (:func:`link_columns`): ``frame``, ``track``, ``element``, ``x``,
        ``y``, ``count``, ``confidence``.

    Returns
    -------
    pandas.DataFrame
        ``track``, ``frame``, ``element``, ``x``, ``y`` [Å], ``count`` (nullable integer:
        missing where the column was not seen), ``confidence`` (NaN there) and
        ``observed``; ``time`` [s] too where the tracks have it. Sorted by track and frame.

    Examples
    --------
    >>> t = pd.DataFrame({"frame": [0, 2], "track": 0, "element": "Ce", "x": 1.0, "y": 2.0,
    ...                   "count": [5, 4], "confidence": 0.9})
    >>> count_timelines(t)[["frame", "count", "observed"]].values.tolist()
    [[0, 5, True], [1, <NA>, False], [2, 4, True]]
    """
    columns = ["track", "frame", "element", "x", "y", "count", "confidence"]
    extra = ["time"] if "time" in tracks.columns else []
    if not len(tracks):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in [*columns, *extra, "observed"]})
    seen = tracks[columns + extra].copy()
    seen["observed"] = True
    span = seen.groupby("track")["frame"].agg(["min", "max"])
    lengths = (span["max"] - span["min"] + 1).to_numpy()
    full = pd.DataFrame(
        {
            "track": np.repeat(span.index.to_numpy(), lengths),
            "frame": np.concatenate([np.arange(a, b + 1) for a, b in zip(span["min"], span["max"])]),
        }
    )
    out = full.merge(seen, on=["track", "frame"], how="left")
    out["observed"] = out["observed"].astype("boolean").fillna(False).astype(bool)
    out["element"] = out.groupby("track")["element"].transform("first")
    out["count"] = out["count"].astype("Int64")
    return out[[*columns, *extra, "observed"]].sort_values(["track", "frame"]).reset_index(drop=True)


def track_summary(tracks: pd.DataFrame) -> pd.DataFrame:
    """One row per track: where, when and how its count went.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Linked columns (:func:`link_columns`).

    Returns
    -------
    pandas.DataFrame
        ``track``, ``element``, ``first_frame``, ``last_frame``, ``n_observed``, ``x``,
        ``y`` (median position [Å]), ``median_count``, ``min_count``, ``max_count``,
        ``changes`` (frame-to-frame count changes among the observed frames, raw: flicker
        included; :func:`~atomtools.columns.events.detect_events` filters it) and ``mean_confidence``.

    Examples
    --------
    >>> t = pd.DataFrame({"frame": [0, 1, 2], "track": 3, "element": "O", "x": 1.0, "y": 2.0,
    ...                   "count": [2, 1, 2], "confidence": 0.8})
    >>> track_summary(t)[["track", "first_frame", "last_frame", "changes"]].values.tolist()
    [[3, 0, 2, 2]]
    """
    names = [
        "track",
        "element",
        "first_frame",
        "last_frame",
        "n_observed",
        "x",
        "y",
        "median_count",
        "min_count",
        "max_count",
        "changes",
        "mean_confidence",
    ]
    if not len(tracks):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in names})
    ordered = tracks.sort_values(["track", "frame"])
    changed = ordered.groupby("track")["count"].diff().fillna(0).ne(0)
    grouped = ordered.assign(changed=changed).groupby("track")
    out = pd.DataFrame(
        {
            "element": grouped["element"].first(),
            "first_frame": grouped["frame"].min(),
            "last_frame": grouped["frame"].max(),
            "n_observed": grouped["frame"].size(),
            "x": grouped["x"].median(),
            "y": grouped["y"].median(),
            "median_count": grouped["count"].median().astype(float),
            "min_count": grouped["count"].min(),
            "max_count": grouped["count"].max(),
            "changes": grouped["changed"].sum().astype(int),
            "mean_confidence": grouped["confidence"].mean() if "confidence" in ordered.columns else np.nan,
        }
    ).reset_index()
    return out[names]

"""Events of an in-situ movie: the persistent changes of its column tracks, and their scores.

- :func:`detect_events` finds, in linked tracks (:mod:`atomtools.columns.tracks`), the
  persistent changes: vacancies, refills, growth, columns that appear or vanish, and
  migrations pairing a source with a target (:data:`EVENT_KINDS`, in a table of
  :data:`EVENT_COLUMNS`);
- :func:`match_events` scores found events against a ground-truth list (precision,
  recall, F1 and delays).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["EVENT_KINDS", "EVENT_COLUMNS", "detect_events", "match_events"]

#: Kinds of event :func:`detect_events` reports.
EVENT_KINDS = ("vacancy", "refill", "growth", "column_appears", "column_vanishes", "migration")
#: Columns of an event table (a migration adds ``source_track``, ``x_from``, ``y_from``).
EVENT_COLUMNS = ("frame", "track", "element", "x", "y", "before", "after", "kind", "confidence")


# --------------------------------------------------------------------------- events


class _State(NamedTuple):
    count: int
    rows: np.ndarray  # positions (into the track's observations) of the observations in this state


def _stable_states(count: np.ndarray, reliable: np.ndarray, persistence: int) -> list[_State]:
    """Runs of equal count among reliable observations, at least ``persistence`` long, equal neighbours merged."""
    index = np.flatnonzero(reliable)
    runs: list[_State] = []
    start = 0
    for k in range(1, len(index) + 1):
        if k == len(index) or count[index[k]] != count[index[start]]:
            runs.append(_State(int(count[index[start]]), index[start:k]))
            start = k
    states: list[_State] = []
    for run in runs:
        if len(run.rows) < persistence:
            continue  # flicker: the count held before goes on
        if states and states[-1].count == run.count:
            states[-1] = _State(run.count, np.concatenate([states[-1].rows, run.rows]))
        else:
            states.append(run)
    return states


def _empty_events() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=float) for c in EVENT_COLUMNS})
    return out.astype({"frame": int, "track": int, "element": str, "before": int, "after": int, "kind": str})


def _nearby(table: pd.DataFrame, element, x: float, y: float, frames: range, radius: float, exclude: int) -> bool:
    """Whether another track of ``element`` was seen within ``radius`` of (x, y) in ``frames``."""
    near = table[
        (table["element"] == element)
        & (table["frame"] >= frames.start)
        & (table["frame"] < frames.stop)
        & (table["track"] != exclude)
    ]
    return bool(((near["x"] - x) ** 2 + (near["y"] - y) ** 2 <= radius**2).any())


def _track_events(
    track: int,
    obs: pd.DataFrame,
    table: pd.DataFrame,
    *,
    min_confidence: float,
    persistence: int,
    last_frame: int,
    radius: float,
) -> list[dict]:
    """The events of one track (see :func:`detect_events` for the definitions)."""
    frames = obs["frame"].to_numpy(int)
    count = obs["count"].to_numpy(int)
    conf = obs["confidence"].to_numpy(float)
    xs, ys = obs["x"].to_numpy(float), obs["y"].to_numpy(float)
    element = obs["element"].iloc[0]
    states = _stable_states(count, conf >= min_confidence, persistence)
    rows: list[dict] = []
    if not states:
        return rows

    def where(index):
        return float(np.median(xs[index])), float(np.median(ys[index]))

    def event(frame, index, before, after, kind, confidence):
        x, y = where(index)
        rows.append(
            {
                "frame": int(frame),
                "track": track,
                "element": element,
                "x": x,
                "y": y,
                "before": int(before),
                "after": int(after),
                "kind": kind,
                "confidence": float(confidence),
            }
        )

    first, last = states[0], states[-1]
    f0, f1 = int(frames[0]), int(frames[-1])
    head, tail = first.rows[:persistence], last.rows[-persistence:]
    if f0 >= persistence and not _nearby(table, element, *where(head), range(f0 - persistence, f0), radius, track):
        event(f0, head, 0, first.count, "column_appears", conf[head].mean())
    highest = first.count
    for old, new in zip(states[:-1], states[1:]):
        before_rows, after_rows = old.rows[-persistence:], new.rows[:persistence]
        confidence = min(conf[before_rows].mean(), conf[after_rows].mean())
        if new.count < old.count:
            kind = "vacancy"
        else:
            kind = "refill" if new.count <= highest else "growth"
        around = np.concatenate([before_rows, after_rows])
        event(frames[new.rows[0]], around, old.count, new.count, kind, confidence)
        highest = max(highest, new.count)
    after_end = range(f1 + 1, f1 + 1 + persistence)
    if f1 <= last_frame - persistence and not _nearby(table, element, *where(tail), after_end, radius, track):
        event(f1 + 1, tail, last.count, 0, "column_vanishes", conf[tail].mean())
    return rows


def detect_events(
    tracks: pd.DataFrame,
    *,
    min_confidence: float = 0.7,
    persistence: int = 2,
    n_frames: int | None = None,
    radius: float = 0.8,
    migration_frames: int | None = 3,
    migration_distance: float = 4.0,
) -> pd.DataFrame:
    """Persistent changes of the columns: vacancies, refills, growth, appearing and vanishing columns.

    Definitions, for each track (its observations in frame order):

    - An observation is *reliable* when its ``confidence >= min_confidence``; the others
      are ignored.
    - A *state* is a maximal run of consecutive reliable observations with one count,
      kept when it is at least ``persistence`` observations long. Shorter runs are
      flicker: the count held before them goes on (a hysteresis), so a single-frame
      change is never an event with ``persistence >= 2``. Kept states of equal count
      separated only by flicker merge.
    - A *count change* is a change of count between consecutive states, dated by the
      first frame of the new state. Its ``confidence`` is the smaller of the mean
      confidences of the last ``persistence`` observations before and the first
      ``persistence`` after (both sides are reliable by construction). Its ``kind`` is
      ``"vacancy"`` when the count falls (atoms leave a column that stays);
      ``"refill"`` when it rises to at most the highest count the track held before
      (a site filled again after a loss); ``"growth"`` when it rises above every earlier
      count.
    - ``"column_appears"``: a track whose first observation, at frame ``f``, is at least
      ``persistence`` frames into the series, that has a state, and with no other track of
      its element seen within ``radius`` in frames ``f - persistence .. f - 1`` (absence
      must persist too). ``before`` is 0, ``after`` the first state's count, ``frame`` is
      ``f``: an adatom arriving, or the target of a migration.
    - ``"column_vanishes"``: a track whose last observation, at frame ``l``, is at least
      ``persistence`` frames before the end of the series, that has a state, and with no
      other track of its element within ``radius`` in frames ``l + 1 .. l + persistence``
      (it does not come back at once). ``frame`` is ``l + 1`` (the first frame of the
      absence), ``before`` the last state's count, ``after`` 0: atoms leaving, or the
      source of a migration. A column missed for longer than the linking's ``memory``
      comes back as a new track, so its return is a ``"column_appears"``.
    - ``"migration"`` (with ``migration_frames``): a source (``"column_vanishes"`` or
      ``"vacancy"``) paired with a target (``"column_appears"``, ``"growth"`` or
      ``"refill"``) of the same element on another track, at most ``migration_frames``
      frames apart and ``migration_distance`` away; pairs are made one to one, closest
      in time, then in space, first. The row is added beside the pair's own rows: at the
      target (``frame`` the later of the two, ``track``, ``x``, ``y``, ``before``,
      ``after`` of the target) with the source in ``source_track``, ``x_from``,
      ``y_from``, and the smaller of the two confidences.

    Appearance and vanishing confidences are the mean confidence of the first (last)
    ``persistence`` observations of the first (last) state.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Linked columns (:func:`~atomtools.columns.tracks.link_columns`): ``frame``, ``track``,
        ``element``, ``x``, ``y`` [Å], ``count``, ``confidence``.
    min_confidence : float
        Least confidence of an observation that is used. The defaults (0.7, and a
        persistence of 2) were chosen on two validation series of
        :mod:`atomtools.simulation.insitu` (seeds 1 and 2, the quick profile of
        ``05_apply_to_experiment``; event F1 0.61, tied with 0.6 and 4 frames, which
        halves the time resolution); the notebook's series (seed 0) is the test.
    persistence : int
        Observations (frames) a new state (count, presence or absence) must last.
    n_frames : int, optional
        Frames of the series (frames ``0 .. n_frames - 1``); default the last frame seen + 1.
    radius : float
        Distance within which another track counts as the same site [Å].
    migration_frames : int, optional
        Largest time between a migration's source and target [frames]; None: no
        migration pairing.
    migration_distance : float
        Largest distance between a migration's source and target [Å] (about one
        cation-cation distance in CeO2, 3.8 Å, by default).

    Returns
    -------
    pandas.DataFrame
        :data:`EVENT_COLUMNS` (``before``, ``after`` [atoms]), plus ``source_track``,
        ``x_from``, ``y_from`` (NaN but for migrations), sorted by frame.

    Examples
    --------
    >>> t = pd.DataFrame({"frame": range(8), "track": 0, "element": "Ce", "x": 0.0, "y": 0.0,
    ...                   "count": [5, 5, 5, 4, 5, 4, 4, 4], "confidence": 0.9})
    >>> detect_events(t)[["frame", "before", "after", "kind"]].values.tolist()
    [[5, 5, 4, 'vacancy']]
    """
    if int(persistence) < 1:
        raise ValueError(f"persistence must be at least 1 frame, got {persistence}")
    persistence = int(persistence)
    empty = _empty_events().assign(source_track=np.nan, x_from=np.nan, y_from=np.nan)
    if not len(tracks):
        return empty
    missing = [c for c in ("frame", "track", "element", "x", "y", "count", "confidence") if c not in tracks.columns]
    if missing:
        raise ValueError(f"detect_events needs the columns {missing} (link_columns of retrieved tables)")
    table = tracks.sort_values(["track", "frame"]).reset_index(drop=True)
    last_frame = int(table["frame"].max()) if n_frames is None else int(n_frames) - 1
    rows = []
    for track, obs in table.groupby("track", sort=True):
        rows += _track_events(
            int(track),
            obs,
            table,
            min_confidence=min_confidence,
            persistence=persistence,
            last_frame=last_frame,
            radius=radius,
        )
    if not rows:
        return empty
    events = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    events = events.assign(source_track=np.nan, x_from=np.nan, y_from=np.nan)
    if migration_frames is not None:
        hops = _migrations(events, int(migration_frames), float(migration_distance))
        if len(hops):
            events = pd.concat([events, hops.astype(events.dtypes.to_dict())])
    return events.sort_values(["frame", "track", "kind"], kind="stable").reset_index(drop=True)


def _migrations(events: pd.DataFrame, max_frames: int, max_distance: float) -> pd.DataFrame:
    """Source and target events paired one to one, closest in time then in space."""
    sources = events[events["kind"].isin(["column_vanishes", "vacancy"])]
    targets = events[events["kind"].isin(["column_appears", "growth", "refill"])]
    pairs = []
    if len(sources) and len(targets):
        dt = np.abs(targets["frame"].to_numpy(int)[None, :] - sources["frame"].to_numpy(int)[:, None])
        dist = np.hypot(
            targets["x"].to_numpy(float)[None, :] - sources["x"].to_numpy(float)[:, None],
            targets["y"].to_numpy(float)[None, :] - sources["y"].to_numpy(float)[:, None],
        )
        ok = (dt <= max_frames) & (dist <= max_distance)
        ok &= sources["element"].to_numpy()[:, None] == targets["element"].to_numpy()[None, :]
        ok &= sources["track"].to_numpy()[:, None] != targets["track"].to_numpy()[None, :]
        a, b = np.nonzero(ok)
        pairs = [(dt[i, j], dist[i, j], sources.index[i], targets.index[j]) for i, j in zip(a, b)]
    used_s, used_t, rows = set(), set(), []
    for _, _, i, j in sorted(pairs):
        if i in used_s or j in used_t:
            continue
        used_s.add(i)
        used_t.add(j)
        s, t = events.loc[i], events.loc[j]
        row = t.to_dict()
        row.update(
            frame=int(max(s["frame"], t["frame"])),
            kind="migration",
            confidence=float(min(s["confidence"], t["confidence"])),
            source_track=float(s["track"]),
            x_from=float(s["x"]),
            y_from=float(s["y"]),
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=events.columns)


def match_events(
    found: pd.DataFrame,
    true: pd.DataFrame,
    *,
    max_delay: int = 3,
    max_distance: float = 1.0,
    same_kind: bool = True,
    kinds=None,
) -> dict:
    """Precision, recall and F1 of found events against true ones, and the delays of the matches.

    A found and a true event may match when their frames differ by at most ``max_delay``,
    their positions by at most ``max_distance`` and (with ``same_kind``) their kinds
    agree. Matching is one to one and greedy: the candidate pairs closest in frames are
    taken first, ties by distance.

    Parameters
    ----------
    found, true : pandas.DataFrame
        Event tables with ``frame``, ``x``, ``y`` [Å] and ``kind`` (:func:`detect_events`
        and the ground truth).
    max_delay : int
        Largest frame difference of a match [frames].
    max_distance : float
        Largest distance of a match [Å].
    same_kind : bool
        Match only events of the same kind.
    kinds : sequence of str, optional
        Score only these kinds (e.g. leave ``"migration"`` out when the truth has none);
        default: all events of both tables.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``n_found``, ``n_true``, ``n_matched``,
        ``delays`` (list of found minus true frame of each match [frames], in matching
        order), ``median_delay`` (NaN without matches) and ``pairs`` (list of
        ``(found index, true index)``). With nothing found the precision is 1, with
        nothing true the recall is 1.

    Examples
    --------
    >>> true = pd.DataFrame({"frame": [4, 9], "x": [0.0, 5.0], "y": [0.0, 0.0], "kind": ["vacancy", "refill"]})
    >>> found = true.assign(frame=[5, 9])
    >>> r = match_events(found, true)
    >>> r["precision"], r["recall"], r["delays"]
    (1.0, 1.0, [0, 1])
    """
    if kinds is not None:
        kinds = set(kinds)
        found = found[found["kind"].isin(kinds)]
        true = true[true["kind"].isin(kinds)]
    pairs = []
    if len(found) and len(true):
        ff, tf = found["frame"].to_numpy(int), true["frame"].to_numpy(int)
        fxy = found[["x", "y"]].to_numpy(float)
        txy = true[["x", "y"]].to_numpy(float)
        fk, tk = found["kind"].to_numpy(), true["kind"].to_numpy()
        dt = np.abs(ff[:, None] - tf[None, :])
        dist = np.hypot(*(fxy[:, None, :] - txy[None, :, :]).transpose(2, 0, 1))
        ok = (dt <= max_delay) & (dist <= max_distance)
        if same_kind:
            ok &= fk[:, None] == tk[None, :]
        i, j = np.nonzero(ok)
        order = np.lexsort((dist[i, j], dt[i, j]))
        used_f, used_t = set(), set()
        for a, b in zip(i[order], j[order]):
            if a in used_f or b in used_t:
                continue
            used_f.add(a)
            used_t.add(b)
            pairs.append((int(a), int(b)))
    n_found, n_true, n = len(found), len(true), len(pairs)
    precision = n / n_found if n_found else 1.0
    recall = n / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    delays = [int(found["frame"].iloc[a]) - int(true["frame"].iloc[b]) for a, b in pairs]
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "n_found": n_found,
        "n_true": n_true,
        "n_matched": n,
        "delays": delays,
        "median_delay": float(np.median(delays)) if delays else float("nan"),
        "pairs": [(int(found.index[a]), int(true.index[b])) for a, b in pairs],
    }

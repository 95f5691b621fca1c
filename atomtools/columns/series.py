"""The time axis of in-situ HRTEM: drift, column tracks, count timelines and events.

An in-situ movie (the first source work follows a CeO2 surface at 7.5 frames/s, with a
signal-to-noise ratio about 1 per frame) is read one frame at a time and never held
whole:

1. :func:`estimate_drift` measures the drift of every frame against frame 0 (phase
   correlation with sub-pixel upsampling on low-passed, windowed frames);
2. :func:`pool_frames` optionally sums ``n`` consecutive, aligned frames (``n`` times the
   dose per frame, ``1 / n`` the time resolution);
3. :func:`~atomtools.columns.retrieval.retrieve` finds the columns and counts of each
   (pooled) frame; their positions are moved into frame 0's coordinates;
4. :func:`link_columns` links the columns of one element across frames into tracks
   (trackpy);
5. :func:`count_timelines` and :func:`track_summary` tabulate each track's counts, and
   :func:`detect_events` finds the persistent changes: vacancies, refills, growth,
   columns that appear or vanish, and migrations pairing a source with a target;
6. :func:`match_events` scores found events against a ground-truth list.

:func:`run_series` runs it all in one streaming pass. The steps live in sibling modules,
and their public names are importable from here too: drift and pooling (1, 2) in
:mod:`~atomtools.columns.drift`, tracks and timelines (4, 5) in
:mod:`~atomtools.columns.tracks`, events and their scores (5, 6) in
:mod:`~atomtools.columns.events`.

Conventions
-----------
A drift ``(dy, dx)`` [px] is how far a frame's content has moved from where it was in
frame 0: a feature at pixel ``(i, j)`` of frame 0 is at ``(i + dy, j + dx)`` of the
frame. :func:`correct_drift` moves it back; a column found at ``(x, y)`` [Å] of a frame
is at ``(x - dx * sampling, y - dy * sampling)`` in frame 0's coordinates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core import tables as _tables
from ..readers import Frames
from ..utils import progress_bar
from .drift import (
    _DRIFT_DEFAULTS,
    DriftWarning,
    PooledFrame,
    _drift_stream,
    _length,
    _pool,
    correct_drift,
    estimate_drift,
    pool_frames,
)
from .events import EVENT_COLUMNS, EVENT_KINDS, detect_events, match_events
from .retrieval import load_retriever, retrieve
from .tracks import _frames_table, count_timelines, link_columns, track_summary

__all__ = [
    "EVENT_KINDS",
    "EVENT_COLUMNS",
    "DriftWarning",
    "PooledFrame",
    "estimate_drift",
    "correct_drift",
    "pool_frames",
    "link_columns",
    "count_timelines",
    "track_summary",
    "detect_events",
    "match_events",
    "run_series",
]


# --------------------------------------------------------------------------- the workflow


def _read_ahead(items, depth: int):
    """``items`` produced by a background thread, up to ``depth`` ahead of the consumer.

    Reading a frame and measuring its drift (file I/O, FFTs: the GIL is released in
    most of it) overlap the retrieval of the frame before. An exception in the thread
    is raised in the consumer; a consumer that stops early stops the thread.
    """
    import queue
    import threading

    done = object()
    box: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            box.put(exc)

    worker = threading.Thread(target=produce, name="atomtools-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def run_series(
    frames,
    *,
    sampling: float | None = None,
    model="pretrained",
    pool: int = 1,
    drift=True,
    progress: bool = True,
    frame_interval: float | None = None,
    drift_options: dict | None = None,
    link_options: dict | None = None,
    event_options: dict | None = None,
    read_ahead: int = 0,
    **retrieve_options,
) -> dict:
    """The in-situ workflow on a movie: drift, columns per frame, tracks and events, one frame at a time.

    Each frame is read once: its drift is measured (:func:`estimate_drift`'s streaming
    core), ``pool`` consecutive frames are summed (:func:`pool_frames`), the columns of
    each (pooled) frame are retrieved (:func:`~atomtools.columns.retrieval.retrieve`) on
    the frame as recorded (not interpolated, which would alter its shot noise) and their
    positions moved by the frame's drift into frame 0's coordinates; then the columns
    are linked (:func:`link_columns`) and the events found (:func:`detect_events`).
    Memory holds one pool of frames, the drift reference and the tables.

    Parameters
    ----------
    frames : Frames, array-like or iterable of 2D arrays
        The movie: a :class:`~atomtools.io.Frames` (its sampling and times are used), a
        NumPy or Dask ``(n, H, W)`` array, or frames in time order.
    sampling : float, optional
        Pixel size [Å]; default the Frames' own.
    model : "pretrained", path, Retriever or (UNet, metadata)
        The network (:func:`~atomtools.columns.retrieval.load_retriever`), loaded once.
    pool : int
        Frames summed per retrieval (the dose per retrieval adds up; times are the
        pools' mean times); a last incomplete pool is dropped.
    drift : bool or array-like
        True: measure it; False: none; or an (n, 2) drift [px] measured before.
    progress : bool
        Show a progress bar.
    frame_interval : float, optional
        Time between frames [s], for frames without times (a Frames' times win).
    drift_options : dict, optional
        Options of :func:`estimate_drift` (``reference``, ``sigma``, ``upsample``, ...).
    link_options : dict, optional
        Options of :func:`link_columns` (``search_range``, ``memory``).
    event_options : dict, optional
        Options of :func:`detect_events` (``min_confidence``, ``persistence``, ...).
    read_ahead : int
        Frames read, drift-measured and pooled ahead in a background thread while the
        frame before is retrieved (the same results as 0, which does it all in turn).
        Off by default: on 2 cores the thread competes with the network's own threads
        (``benchmarks/series.py``: 0.93x of in turn at 16 and 64 frames); for machines
        with cores to spare.
    **retrieve_options
        Passed to :func:`~atomtools.columns.retrieval.retrieve` (``resample``,
        ``threshold``, ``tile``, ...).

    Returns
    -------
    dict
        ``columns`` (every column of every (pooled) frame, positions ``x``, ``y`` [Å] and
        ``row``, ``col`` [px] in frame 0's coordinates, with ``frame``: the pooled frame's
        index, and ``time`` [s] where known), ``tracks`` (:func:`link_columns`), ``events`` (:func:`detect_events`,
        with ``time``), ``drift`` ((n_frames, 2) [px] of every recorded frame), ``times``
        (mean time of each pooled frame [s], or None), ``seconds_per_frame`` (time
        between pooled frames [s], or None), ``pool`` and ``sampling``.
    """
    if isinstance(frames, Frames):
        sampling = frames.sampling if sampling is None else sampling
        times = frames.times
    else:
        times = None
    if sampling is None:
        raise ValueError("run_series needs the pixel size: pass sampling= [Å] (the frames do not give one)")
    pool = int(pool)
    if pool < 1:
        raise ValueError(f"pool must be a positive number of frames, got {pool}")
    n_total = _length(frames)
    if times is None and frame_interval is not None:
        if n_total is None:
            raise ValueError("frame_interval needs frames whose number is known (an array or Frames)")
        times = np.arange(n_total) * float(frame_interval)
    model = load_retriever(model)  # once, before any frame is read: a missing weights file fails at once
    drifts: list[np.ndarray] = []
    if drift is True:
        options = {**_DRIFT_DEFAULTS, **(drift_options or {})}
        options.pop("progress", None)
        stream = _drift_stream(frames, **options)
    elif drift is False or drift is None:
        stream = ((frame, np.zeros(2)) for frame in frames)
    else:
        given = np.asarray(drift, float).reshape(-1, 2)
        if n_total is not None and n_total != len(given):
            raise ValueError(f"{len(given)} drifts for {n_total} frames; give one per frame")
        stream = zip(frames, given)

    def recorded(pairs):
        for frame, shift in pairs:
            drifts.append(shift)
            yield frame, shift

    bar = progress_bar(total=n_total, desc="series", unit="frame", disable=not progress)
    parts, pooled_times = [], []
    with bar:
        pooled_frames = _pool(recorded(stream), pool, times, False)
        if read_ahead > 0:
            pooled_frames = _read_ahead(pooled_frames, read_ahead)
        for k, pooled in enumerate(pooled_frames):
            table, _ = retrieve(pooled.image, sampling=sampling, model=model, **retrieve_options)
            table = pd.DataFrame(table)
            dy, dx = (float(v) for v in pooled.drift)
            table = table.assign(x=table["x"] - dx * sampling, y=table["y"] - dy * sampling)
            if len(table) and {"row", "col"} <= set(table.columns):
                table = _tables.with_pixels(table, sampling)
            table = table.assign(frame=k)
            if pooled.time is not None:
                table = table.assign(time=pooled.time)
            parts.append(table)
            pooled_times.append(pooled.time)
            bar.update(len(pooled.indices))
    non_empty = [p for p in parts if len(p)]
    columns = pd.concat(non_empty, ignore_index=True) if non_empty else _frames_table([])
    tracks = link_columns(columns, **(link_options or {})) if len(columns) else columns.assign(track=0).iloc[:0]
    events = detect_events(tracks, n_frames=len(parts), **(event_options or {}))
    have_times = bool(pooled_times) and all(t is not None for t in pooled_times)
    times_out = np.asarray(pooled_times, float) if have_times else None
    if times_out is not None and len(events):
        events = events.assign(time=times_out[events["frame"].to_numpy(int)])
    if times_out is not None and len(times_out) > 1:
        seconds = float(np.median(np.diff(times_out)))
    elif frame_interval is not None:
        seconds = float(frame_interval) * pool
    elif isinstance(frames, Frames) and frames.frame_rate:
        seconds = pool / frames.frame_rate
    else:
        seconds = None
    return {
        "columns": columns,
        "tracks": tracks,
        "events": events,
        "drift": np.asarray(drifts, float).reshape(-1, 2),
        "times": times_out,
        "seconds_per_frame": seconds,
        "pool": pool,
        "sampling": float(sampling),
    }

"""Figures of in-situ series (work 1 applied to experiment): columns on a frame, timelines, movies.

A frame with its retrieved columns (:func:`overlay_figure`), the count timelines of
chosen tracks with their events (:func:`timelines_figure`) and an animated GIF of a
series (:func:`series_movie`), from the tables of :mod:`atomtools.columns.series`.
"""

from __future__ import annotations

from pathlib import Path

from ..utils import atomic_path
from .style import _done, _extent, class_cmap

__all__ = ["overlay_figure", "timelines_figure", "series_movie"]


def overlay_figure(frame, table, *, sampling: float, title: str = "", n_max: int = 12):
    """A frame with its retrieved columns: marker colour the atom count, size the confidence.

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) frame.
    table : pandas.DataFrame
        Columns of the frame (``x``, ``y`` [Å], ``count``, ``confidence``, ``element``).
    sampling : float
        Pixel size [Å].
    title : str
        Figure title.
    n_max : int
        Top of the colour scale [atoms].

    Returns
    -------
    matplotlib.figure.Figure
        One panel, axes in Å.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    ax.imshow(frame, cmap="gray", origin="lower", extent=_extent(frame.shape, sampling))
    sc = None
    for element, marker in zip(sorted(table.element.unique()) if len(table) else [], "os^v"):
        sub = table[table.element == element]
        sc = ax.scatter(
            sub.x,
            sub.y,
            c=sub["count"],
            s=10 + 40 * sub.confidence,
            cmap=class_cmap(n_max + 1),
            vmin=-0.5,
            vmax=n_max + 0.5,
            marker=marker,
            edgecolors="w",
            linewidths=0.3,
            label=element,
        )
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="atoms in the column")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("x [Å]")
    ax.set_ylabel("y [Å]")
    return _done(fig, title)


def timelines_figure(timelines, *, tracks, events=None, frame_rate: float | None = None):
    """Atom count and confidence against time for chosen tracks, events marked.

    Parameters
    ----------
    timelines : pandas.DataFrame
        From :func:`atomtools.columns.tracks.count_timelines` (``track``, ``frame``,
        ``count``, ``confidence``).
    tracks : sequence of int
        The tracks to draw.
    events : pandas.DataFrame, optional
        Found events (``track``, ``frame``, ``kind``) to mark.
    frame_rate : float, optional
        Frames per second: the time axis in seconds instead of frames.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per track, sharing the time axis.
    """
    import matplotlib.pyplot as plt

    tracks = list(tracks)
    fig, axes = plt.subplots(len(tracks), 1, figsize=(8, 1.3 + 1.1 * len(tracks)), sharex=True, squeeze=False)
    scale = 1.0 / frame_rate if frame_rate else 1.0
    for ax, track in zip(axes[:, 0], tracks):
        t = timelines[timelines.track == track].sort_values("frame")
        ax.step(t.frame * scale, t["count"], where="mid", color="tab:blue")
        ax.scatter(t.frame * scale, t["count"], c=t.confidence, cmap="viridis", vmin=0, vmax=1, s=14, zorder=3)
        if events is not None and len(events):
            for e in events[events.track == track].itertuples():
                ax.axvline(e.frame * scale, color="tab:red", lw=1)
                ax.text(e.frame * scale, ax.get_ylim()[1], f" {e.kind}", color="tab:red", fontsize=7, va="top")
        element = t.element.iloc[0] if "element" in t and len(t) else ""
        ax.set_ylabel(f"{element} track {track}\natoms", fontsize=8)
    axes[-1, 0].set_xlabel("time [s]" if frame_rate else "frame")
    return _done(fig)


def series_movie(frames, tables, path, *, sampling: float, fps: float = 7.5, n_max: int = 12):
    """Write an animated GIF of the frames with their columns' counts overlaid, atomically.

    Parameters
    ----------
    frames : iterable of numpy.ndarray
        The (drift-corrected or raw) frames, one at a time.
    tables : sequence of pandas.DataFrame
        Columns per frame, in the frames' own coordinates.
    path : str or Path
        The ``.gif`` to write.
    sampling : float
        Pixel size [Å].
    fps : float
        Frames per second of the movie.
    n_max : int
        Top of the colour scale [atoms].

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import PillowWriter

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    writer = PillowWriter(fps=fps)
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        with writer.saving(fig, str(tmp), dpi=72):
            for i, (frame, table) in enumerate(zip(frames, tables)):
                ax.clear()
                ax.imshow(frame, cmap="gray", origin="lower", extent=_extent(frame.shape, sampling))
                if len(table):
                    ax.scatter(
                        table.x,
                        table.y,
                        c=table["count"],
                        cmap=class_cmap(n_max + 1),
                        vmin=-0.5,
                        vmax=n_max + 0.5,
                        s=12,
                        edgecolors="w",
                        linewidths=0.3,
                    )
                ax.set_title(f"frame {i}", fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
                writer.grab_frame()
    plt.close(fig)
    return path

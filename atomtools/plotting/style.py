"""The figures' shared style: saving with provenance, the notebooks' inline format, colours, helpers.

- :func:`save` writes a figure as PNG through a temporary file, with the run's
  provenance in a footer line and in the PNG's metadata;
- :func:`notebook_style` keeps the figures inside committed notebooks small (JPEG at
  screen resolution);
- :func:`class_cmap` is the colour map of atom counts (black background, then viridis);
- :func:`static_scatter` is the still copy of an interactive scatter explorer (hvplot),
  for readers whose viewer runs no JavaScript (GitHub, an untrusted notebook);
- the private helpers every figure module draws with: a grey image (``_gray``), a count
  map (``_classes``), a finished figure (``_done``, ``_bare``), a channel's name
  (``_name``) and an image's extent in Å with ``origin="lower"`` (``_extent``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..provenance import footer
from ..utils import atomic_path

__all__ = ["save", "notebook_style", "class_cmap", "static_scatter"]


def save(
    fig, figures_dir: str | Path | None, name: str, *, provenance: dict | None = None, dpi: int = 110
) -> Path | None:
    """Save ``fig`` as ``figures_dir/name.png`` atomically; nothing when ``figures_dir`` is None.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    figures_dir : str or Path, optional
        Folder of the figures.
    name : str
        File name without ``.png``.
    provenance : dict, optional
        From :func:`atomtools.provenance.record`: written as a footer line on the
        saved image (not on the one shown in the notebook) and as PNG metadata.
    dpi : int
        Resolution [dots per inch].

    Returns
    -------
    Path or None
        The written ``figures_dir/name.png``; None when ``figures_dir`` is None.
    """
    if figures_dir is None:
        return None
    path = Path(figures_dir) / f"{name}.png"
    note = (
        fig.text(0.005, 0.002, footer(provenance), fontsize=6, color="0.45", ha="left", va="bottom")
        if provenance
        else None
    )
    try:
        with atomic_path(path, suffix=".png") as tmp:
            metadata = (
                {"Software": "atomtools", "Description": json.dumps(provenance, sort_keys=True)}
                if provenance
                else {"Software": "atomtools"}
            )
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata=metadata)
    finally:
        if note is not None:
            note.remove()
    return path


def notebook_style(*, dpi: int = 72, quality: int = 80) -> None:
    """Show figures in this notebook as JPEG at screen resolution (small committed notebooks).

    Saved figures (:func:`save`) keep their own format and resolution.

    Parameters
    ----------
    dpi : int
        Inline resolution [dots per inch].
    quality : int
        JPEG quality (1-95).
    """
    import matplotlib.pyplot as plt

    plt.rcParams["figure.dpi"] = dpi
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - outside Jupyter
        return
    set_matplotlib_formats("jpeg", pil_kwargs={"quality": quality})


def class_cmap(n_classes: int):
    """Colour map of the count classes: black background, then viridis from 1 atom up.

    Parameters
    ----------
    n_classes : int
        Classes, background included.

    Returns
    -------
    matplotlib.colors.ListedColormap
        ``max(n_classes, 2)`` colours: black, then viridis.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colors = plt.get_cmap("viridis")(np.linspace(0, 1, max(n_classes - 1, 1)))
    return ListedColormap(np.vstack([[0, 0, 0, 1], colors]))


def _gray(ax, image, ext, title: str) -> None:
    ax.imshow(image, cmap="gray", origin="lower", extent=ext)
    ax.set_title(title)


def _classes(ax, classes, n_classes: int, ext, title: str):
    im = ax.imshow(
        classes,
        cmap=class_cmap(n_classes),
        vmin=-0.5,
        vmax=n_classes - 0.5,
        origin="lower",
        extent=ext,
        interpolation="nearest",
    )
    ax.set_title(title)
    return im


def _done(fig, title: str = "", *, bare=None):
    """Title, no ticks on the ``bare`` axes (images), tight layout; the figure back."""
    if bare is not None:
        _bare(bare)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _bare(axes) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def _name(names, channel: int) -> str:
    return names[channel] if names and channel < len(names) else f"channel {channel}"


def _extent(shape, sampling):
    return (-0.5 * sampling, (shape[1] - 0.5) * sampling, -0.5 * sampling, (shape[0] - 0.5) * sampling)


def static_scatter(
    table,
    *,
    x: str,
    y: str,
    c: str | None = None,
    by: str | None = None,
    logx: bool = False,
    cmap: str = "viridis",
    clim: tuple[float, float] | None = None,
    equal: bool = False,
    title: str = "",
):
    """A still copy of an interactive scatter (``table.hvplot.scatter(...)``) with the same data and encoding.

    Interactive outputs need JavaScript, which GitHub's notebook view and an untrusted
    notebook do not run: the notebooks show this figure beside each explorer, so a reader
    sees the data either way.

    Parameters
    ----------
    table : pandas.DataFrame
        The explorer's data.
    x, y : str
        Columns on the axes.
    c : str, optional
        Column that colours the points (with a colorbar).
    by : str, optional
        Column whose values get a colour and a legend entry each.
    logx : bool
        Logarithmic x axis.
    cmap : str
        Colour map of ``c``.
    clim : (float, float), optional
        Colour range of ``c``.
    equal : bool
        Equal scales on both axes (positions).
    title : str
        Title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    if by is not None:
        for value, group in table.groupby(by, sort=True):
            ax.scatter(group[x], group[y], s=14, label=str(value))
        ax.legend(title=by, fontsize=8)
    else:
        kw = {"vmin": clim[0], "vmax": clim[1]} if clim else {}
        points = ax.scatter(table[x], table[y], c=None if c is None else table[c], s=14, cmap=cmap, **kw)
        if c is not None:
            fig.colorbar(points, ax=ax, label=c)
    if logx:
        ax.set_xscale("log")
    if equal:
        ax.set_aspect("equal")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, fontsize=10)
    return fig

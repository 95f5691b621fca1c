"""Figures of work 3: atoms of any crystal (segmentation, localization, the image library).

A frame's segmentation, denoising and atom positions (:func:`atoms_figure`), the
scores against dose (:func:`localization_figure`) and simulated library images with
their truths (:func:`library_figure`).
"""

from __future__ import annotations

from .style import _done

__all__ = ["atoms_figure", "localization_figure", "library_figure"]


def atoms_figure(image, maps: dict, table, *, title: str = "", baseline=None):
    """AtomSegNet's four panels: input, segmentation, denoised, positions on the input.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) frame.
    maps : dict
        :func:`atomtools.localize.segment`'s ``mask`` and ``denoised``.
    table : pandas.DataFrame
        :func:`atomtools.localize.find_atoms`' atoms (``col``, ``row`` [px], ``confidence``).
    title : str
        Figure title.
    baseline : pandas.DataFrame, optional
        Gaussian-fitting atoms drawn beside the network's.

    Returns
    -------
    matplotlib.figure.Figure
        Four panels: input, segmentation, denoised, positions.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    panels = [(image, "input"), (maps["mask"], "segmentation"), (maps["denoised"], "denoised"), (image, "positions")]
    for ax, (img, name) in zip(axes, panels):
        ax.imshow(img, cmap="gray", interpolation="nearest")
        ax.set_title(name)
    sc = axes[3].scatter(table.col, table.row, c=table.confidence, s=6, cmap="viridis", vmin=0, vmax=1, label="network")
    if baseline is not None and len(baseline):
        axes[3].scatter(
            baseline.col, baseline.row, s=10, facecolors="none", edgecolors="r", linewidths=0.5, label="Gaussian fit"
        )
        axes[3].legend(loc="lower right", fontsize=7)
    axes[3].set_xlim(-0.5, image.shape[1] - 0.5)
    axes[3].set_ylim(image.shape[0] - 0.5, -0.5)
    fig.colorbar(sc, ax=axes[3], fraction=0.046, label="confidence")
    return _done(fig, title, bare=axes)


def localization_figure(summary):
    """Detection F1 and localization precision against dose, network beside Gaussian fitting.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`atomtools.localize.summarize` by method and dose.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: F1, precision [pm].
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for method, g in summary.groupby("method"):
        g = g.sort_values("dose")
        axes[0].semilogx(g.dose, g.f1, "o-", label=method)
        axes[1].loglog(g.dose, g.precision_pm, "o-", label=method)
    axes[0].set_ylabel("detection F1")
    axes[1].set_ylabel("precision: position error s.d. [pm]")
    for ax in axes:
        ax.set_xlabel("dose [e/Å²]")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    return _done(fig, "held-out crystals (GaN [2-1-10], MgO [100], W [111]), HAADF-STEM")


def library_figure(items: list[dict]):
    """Library images with their truths: noisy, clean, deblurred, Gaussian mask (one column each).

    Parameters
    ----------
    items : list of dict
        :func:`atomtools.simulation.library_item` outputs.

    Returns
    -------
    matplotlib.figure.Figure
        4 x n panels: one column per item.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, len(items), figsize=(2.6 * len(items), 10.4), squeeze=False)
    for j, item in enumerate(items):
        p = item["images"][0]
        for i, key in enumerate(("noisy", "clean", "sharp", "gauss")):
            axes[i, j].imshow(item[key][0], cmap="gray", interpolation="nearest")
        xy = item["positions"]
        axes[1, j].plot(xy[:, 0], xy[:, 1], "r.", ms=1.5)
        axes[0, j].set_title(
            f"{p['crystal']} [{p['zone']}] {p['mode']}\n{p['dose']:.3g} e/Å², {p['sampling']:.3f} Å/px", fontsize=8
        )
    for i, key in enumerate(("noisy", "clean + columns", "deblurred", "Gaussian mask")):
        axes[i, 0].set_ylabel(key)
    return _done(fig, bare=axes)

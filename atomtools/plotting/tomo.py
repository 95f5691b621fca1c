"""Figures of work 2: missing-wedge tomography.

The training phantoms and their sinograms (:func:`phantoms_figure`), the GANs' training
(:func:`gan_training_figure`), slices and volumes reconstructed every way
(:func:`reconstructions_figure`, :func:`volume_figure`, :func:`isosurface_figure`) and
the scores against the missing wedge (:func:`wedge_figure`).
"""

from __future__ import annotations

import numpy as np

from .style import _bare, _done

__all__ = [
    "phantoms_figure",
    "gan_training_figure",
    "reconstructions_figure",
    "wedge_figure",
    "volume_figure",
    "isosurface_figure",
]


def phantoms_figure(examples: dict):
    """One row per phantom kind: the phantom and its sinogram in the inpainter's order.

    Parameters
    ----------
    examples : dict
        Kind -> ``(image, sinogram in network order, measured-row mask in network order,
        held_out)``.

    Returns
    -------
    matplotlib.figure.Figure
        2 x n panels: one column per kind.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(examples), figsize=(2.6 * len(examples), 5.4), squeeze=False)
    for j, (kind, (image, sino, mask, held_out)) in enumerate(examples.items()):
        axes[0, j].imshow(image, cmap="gray")
        axes[0, j].set_title(f"{kind}" + (" (held out)" if held_out else ""))
        shown = np.where(mask[:, None], sino, np.nan)
        axes[1, j].imshow(shown, cmap="magma", aspect="auto", extent=(0, sino.shape[1], 180, 0))
        axes[1, j].set_xlabel("detector [px]")
        axes[1, j].set_xticks([])
    axes[1, 0].set_ylabel("angle [deg], 0 .. 180\n(wedge in the middle)")
    _bare(axes[0])
    return _done(fig)


def gan_training_figure(histories: dict):
    """Generator L1 and the validation PSNR of both GANs against step.

    Parameters
    ----------
    histories : dict
        Name -> history (list of dict from :func:`atomtools.training.fit`).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: generator L1, validation PSNR [dB].
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, history in histories.items():
        h = pd.DataFrame(history)
        if not len(h):
            continue
        axes[0].plot(
            h.step, h.l1.rolling(max(1, len(h) // 30), min_periods=1).mean(), label=f"{name}: L1 (running mean)"
        )
        for col in [c for c in h if c.startswith("val_psnr")]:
            val = h.dropna(subset=[col])
            axes[1].plot(val.step, val[col], "o-", ms=3, label=f"{name}: {col[9:].replace('_', ' ')}")
    axes[0].set_xlabel("step")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("generator L1")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("validation PSNR [dB] (data range 1)")
    axes[1].legend(fontsize=8)
    return _done(fig)


def reconstructions_figure(truth, images: dict, *, title: str = ""):
    """One slice reconstructed every way, with PSNR and SSIM against the truth.

    Parameters
    ----------
    truth : numpy.ndarray
        The phantom (or None for real data: no scores).
    images : dict
        Method -> reconstructed slice (or ``(slice, label)``).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per slice (truth first where given), up to five per row.
    """
    import matplotlib.pyplot as plt

    panels = ([("truth", truth)] if truth is not None else []) + list(images.items())
    cols = min(len(panels), 5)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.7 * rows), squeeze=False)
    hi = float(np.percentile(truth, 99.9)) if truth is not None else None
    for ax, (name, image) in zip(axes.ravel(), panels):
        vmax = hi if hi is not None else float(np.percentile(image, 99.8))
        ax.imshow(image, cmap="gray", vmin=0, vmax=vmax)
        label = name
        if truth is not None and name != "truth":
            from skimage.metrics import peak_signal_noise_ratio, structural_similarity

            p = peak_signal_noise_ratio(truth, image.astype(truth.dtype), data_range=1.0)
            s = structural_similarity(truth, image.astype(truth.dtype), data_range=1.0)
            label = f"{name}\n{p:.1f} dB, SSIM {s:.2f}"
        ax.set_title(label, fontsize=9)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    return _done(fig, title, bare=axes)


def wedge_figure(table):
    """Mean PSNR and SSIM against the missing wedge, per method; training kinds and held-out kind.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`atomtools.tomo.evaluation.evaluate`.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels: PSNR of the training kinds, PSNR of the held-out kind, SSIM.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    groups = [("training kinds", table[~table.held_out]), ("held-out kind", table[table.held_out])]
    for ax, (label, sub) in zip(axes[:2], groups):
        mean = sub.groupby(["method", "wedge"]).psnr.mean().unstack(0)
        for method in mean:
            ax.plot(mean.index, mean[method], "o-", label=method, lw=2.2 if method in ("gan", "unrolled") else 1.2)
        ax.set_title(f"{label}: PSNR (data range 1)")
        ax.set_xlabel("missing wedge [deg]")
        ax.set_ylabel("PSNR [dB]")
    axes[0].legend(fontsize=8, ncol=2)
    ssim = table.groupby(["method", "wedge"]).ssim.mean().unstack(0)
    for method in ssim:
        axes[2].plot(ssim.index, ssim[method], "o-", label=method, lw=2.2 if method in ("gan", "unrolled") else 1.2)
    axes[2].set_title("all kinds: SSIM")
    axes[2].set_xlabel("missing wedge [deg]")
    axes[2].set_ylabel("SSIM")
    return _done(fig)


def volume_figure(volumes: dict, *, title: str = ""):
    """Orthogonal central slices (y-z, x-z planes and the z-x slice across the tilt axis) per method.

    Parameters
    ----------
    volumes : dict
        Method -> ``(n_slices, n, n)`` volume (y, z, x) from
        :func:`atomtools.tomo.reconstruct_volume`.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        3 x n panels: one column per method.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(volumes), figsize=(2.6 * len(volumes), 7.6), squeeze=False)
    for j, (name, v) in enumerate(volumes.items()):
        vmax = float(np.percentile(v, 99.8)) or 1.0
        views = [
            (v[v.shape[0] // 2], "slice across the tilt axis (z, x)"),
            (v[:, v.shape[1] // 2, :], "plane z = 0 (y, x)"),
            (v[:, :, v.shape[2] // 2], "plane x = 0 (y, z)"),
        ]
        for i, (image, label) in enumerate(views):
            axes[i, j].imshow(image, cmap="gray", vmin=0, vmax=vmax)
            if j == 0:
                axes[i, j].set_ylabel(label, fontsize=8)
        axes[0, j].set_title(name)
    return _done(fig, title, bare=axes)


def isosurface_figure(volume, *, level: float | None = None, title: str = "", step: int = 2):
    """A static 3D view of a volume: the isosurface at ``level`` (marching cubes), shaded.

    Parameters
    ----------
    volume : numpy.ndarray
        ``(y, z, x)`` volume.
    level : float, optional
        Iso-value; default Otsu's threshold of the volume.
    title : str
        Figure title.
    step : int
        Marching-cubes step (coarser is faster).

    Returns
    -------
    matplotlib.figure.Figure
        One 3D panel, axes [px].
    """
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    from skimage.filters import threshold_otsu
    from skimage.measure import marching_cubes

    level = float(threshold_otsu(volume)) if level is None else level
    verts, faces, normals, _ = marching_cubes(volume, level=level, step_size=step)
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(projection="3d")
    light = np.clip(normals[faces].mean(axis=1) @ np.array([0.4, 0.4, 0.8]), 0.15, 1)
    mesh = Poly3DCollection(verts[faces][:, :, [2, 1, 0]], facecolors=plt.cm.copper(light), linewidths=0)
    ax.add_collection3d(mesh)
    for setter, n in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), (volume.shape[2], volume.shape[1], volume.shape[0])):
        setter(0, n)
    ax.set_xlabel("x [px]")
    ax.set_ylabel("z [px] (beam at 0 deg)")
    ax.set_zlabel("y [px] (tilt axis)")
    ax.set_title(title or f"isosurface at {level:.3g}")
    return fig

"""Figures of the notebooks (matplotlib), one function per figure, plus saving.

Every function returns the ``matplotlib.figure.Figure`` it drew; :func:`save` writes
it as PNG through a temporary file, with the run's provenance in a footer line and in
the PNG's metadata. Images are shown with ``origin="lower"`` so that y points up, in
the physical coordinates [Å] of :mod:`atomtools.core.labels`. :func:`notebook_style`
keeps the figures inside committed notebooks small (JPEG at screen resolution).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .provenance import footer
from .utils import atomic_path

__all__ = [
    "save",
    "notebook_style",
    "class_cmap",
    "show_model",
    "ground_truth_figure",
    "dose_figure",
    "parameter_figure",
    "samples_figure",
    "training_figure",
    "prediction_figure",
    "counts_figure",
    "dose_figure_scores",
    "thickness_figure",
    "by_count_figure",
    "reliability_figure",
    "batch_figure",
    "phantoms_figure",
    "gan_training_figure",
    "reconstructions_figure",
    "wedge_figure",
    "volume_figure",
    "isosurface_figure",
    "overlay_figure",
    "timelines_figure",
    "series_movie",
    "atoms_figure",
    "localization_figure",
    "library_figure",
]


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


def show_model(atoms, *, title: str = ""):
    """Top view (along the beam) and side view of an atomic model.

    Parameters
    ----------
    atoms : ase.Atoms
        The model (atoms with ``column < 0``, such as the support, are left out).
    title : str
        Figure title.
    """
    import matplotlib.pyplot as plt
    from ase.visualize.plot import plot_atoms

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    particle = atoms[atoms.arrays["column"] >= 0] if "column" in atoms.arrays else atoms
    plot_atoms(particle, axes[0], radii=0.5, rotation="0x,0y,0z")
    axes[0].set_title("along the beam [110]")
    plot_atoms(particle, axes[1], radii=0.5, rotation="-90x,0y,0z")
    axes[1].set_title("side view (beam upward)")
    for ax in axes:
        ax.set_xlabel("Å")
    return _done(fig, title)


def ground_truth_figure(clean, noisy, labels, table, *, sampling: float, n_classes: int, names=None, title: str = ""):
    """The source work's Figure 1 a-c: clean image, noisy image, target, with the columns marked.

    Parameters
    ----------
    clean, noisy : numpy.ndarray
        Clean and noisy image (H, W).
    labels : numpy.ndarray
        (channels, H, W) label maps.
    table : pandas.DataFrame
        Column table.
    sampling : float
        Pixel size [Å].
    n_classes : int
        Label classes, background included.
    names : sequence of str, optional
        Element of each label channel (``material.channel_names``).
    title : str
        Figure title.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    ext = _extent(clean.shape, sampling)
    _gray(axes[0], clean, ext, "clean image")
    _gray(axes[1], noisy, ext, "noisy input")
    for ch in range(min(2, labels.shape[0])):
        im = _classes(axes[2 + ch], labels[ch], n_classes, ext, f"target: {_name(names, ch)} atoms per column")
        fig.colorbar(im, ax=axes[2 + ch], fraction=0.046, label="atoms")
    for ch, marker in ((0, "o"), (1, ".")):
        sub = table[table.channel == ch]
        axes[0].scatter(
            sub.x,
            sub.y,
            s=14 if ch == 0 else 4,
            facecolors="none" if ch == 0 else "tab:red",
            edgecolors="tab:orange" if ch == 0 else None,
            linewidths=0.6,
            marker=marker,
        )
    for ax in axes:
        ax.set_xlabel("x [Å]")
    axes[0].set_ylabel("y [Å]")
    return _done(fig, title)


def dose_figure(noisy_stack, doses, snrs, *, sampling: float):
    """One clean image at several doses, each with its dose and SNR.

    Parameters
    ----------
    noisy_stack : numpy.ndarray
        (doses, H, W) images.
    doses : sequence of float
        Their doses [e/Å²].
    snrs : sequence of float
        Their SNRs.
    sampling : float
        Pixel size [Å].
    """
    import matplotlib.pyplot as plt

    n = len(doses)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8))
    axes = np.atleast_1d(axes)
    ext = _extent(noisy_stack[0].shape, sampling)
    for ax, img, d, s in zip(axes, noisy_stack, doses, snrs):
        ax.imshow(img, cmap="gray", origin="lower", extent=ext)
        ax.set_title(f"{d:g} e/Å², SNR {s:.2f}")
    return _done(fig, bare=axes)


def parameter_figure(params):
    """Histograms of the sampled parameters of a dataset.

    Parameters
    ----------
    params : pandas.DataFrame
        Per-image parameter table of a dataset.
    """
    import matplotlib.pyplot as plt

    panels = [
        ("dose", "dose [e/Å²]", True),
        ("snr", "SNR", False),
        ("defocus", "defocus [Å] (negative: overfocus)", False),
        ("Cs", "Cs [µm]", False),
        ("focal_spread", "focal spread σ [Å]", False),
        ("tilt", "mistilt [°]", False),
        ("mean_count", "mean atoms per principal column", False),
        ("max_count", "thickest principal column [atoms]", False),
        ("size", "particle size [Å]", False),
    ]
    fig, axes = plt.subplots(2, 5, figsize=(19, 7))
    axes = axes.ravel()
    for ax, (name, label, logx) in zip(axes, panels):
        values = params[name].to_numpy(float)
        if name == "Cs":
            values = values * 1e-4
        bins = np.geomspace(values.min(), values.max(), 20) if logx and values.min() > 0 else 20
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(label)
    counts = params["profile"].value_counts().sort_index()
    axes[-1].bar(counts.index.astype(str), counts.to_numpy(), color="tab:green")
    axes[-1].set_xlabel("surface profile")
    axes[-1].tick_params(axis="x", rotation=30)
    for ax in axes:
        ax.set_ylabel("images")
    return _done(fig)


def samples_figure(dataset, indices, *, n_classes: int):
    """Noisy images of a dataset (top) above their Ce count targets (bottom).

    Parameters
    ----------
    dataset : Dataset
        The dataset.
    indices : sequence of int
        Images shown.
    n_classes : int
        Label classes, background included.
    """
    import matplotlib.pyplot as plt

    n = len(indices)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.6))
    axes = np.asarray(axes).reshape(2, n)
    cmap = class_cmap(n_classes)
    for j, i in enumerate(indices):
        p = dataset.image_params(int(i))
        axes[0, j].imshow(dataset.noisy[int(i)], cmap="gray", origin="lower")
        axes[0, j].set_title(f"#{i} {p['profile']}, {p['dose']:.0f} e/Å²", fontsize=9)
        axes[1, j].imshow(
            dataset.labels[int(i)][0],
            cmap=cmap,
            vmin=-0.5,
            vmax=n_classes - 0.5,
            origin="lower",
            interpolation="nearest",
        )
        axes[1, j].set_title(f"max {p['max_count']} atoms, tilt {p['tilt']:.1f}°", fontsize=9)
    return _done(fig, bare=axes)


def training_figure(history):
    """Loss and validation accuracy against step.

    Parameters
    ----------
    history : list of dict
        Training history (``step``, ``loss``, validation numbers).
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    h = pd.DataFrame(history)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(h.step, h.loss, color="0.7", lw=0.8, label="batch")
    axes[0].plot(
        h.step, h.loss.rolling(max(1, len(h) // 30), min_periods=1).mean(), color="tab:blue", label="running mean"
    )
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("weighted cross-entropy")
    axes[0].set_yscale("log")
    axes[0].legend()
    val = h.dropna(subset=["val_column_pixel_accuracy"]) if "val_column_pixel_accuracy" in h else h.iloc[:0]
    if len(val):
        axes[1].plot(val.step, val.val_column_pixel_accuracy, "o-", label="column pixels: right count")
        axes[1].plot(val.step, val.val_background_accuracy, "s-", label="background pixels")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("validation accuracy")
    axes[1].set_ylim(0, 1.02)
    axes[1].legend()
    return _done(fig)


def prediction_figure(clean, noisy, labels, maps, *, sampling: float, n_classes: int, names=None, title: str = ""):
    """The source work's Figure 1: clean, noisy input, target, network output, confidence.

    Parameters
    ----------
    maps : dict
        Retrieval maps (``classes``, ``confidence``).
    clean, noisy, labels, sampling, n_classes, names, title
        As for :func:`ground_truth_figure`.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(20, 4.2))
    ext = _extent(clean.shape, sampling)
    _gray(axes[0], clean, ext, "clean")
    _gray(axes[1], noisy, ext, "noisy input")
    _classes(axes[2], labels[0], n_classes, ext, f"target ({_name(names, 0)} atoms per column)")
    im = _classes(axes[3], maps["classes"][0], n_classes, ext, "network output")
    fig.colorbar(im, ax=axes[3], fraction=0.046, label="atoms")
    im = axes[4].imshow(maps["confidence"][0], cmap="magma", vmin=0, vmax=1, origin="lower", extent=ext)
    axes[4].set_title("confidence")
    fig.colorbar(im, ax=axes[4], fraction=0.046)
    return _done(fig, title, bare=axes)


def counts_figure(examples, *, sampling: float, n_max: int = 12, names=None):
    """The source work's Figure 2: noisy input, network counts, ground truth; one row per example.

    Parameters
    ----------
    examples : list of dict
        Evaluation examples (``noisy``, ``table``, ``truth``, ``dose``).
    sampling : float
        Pixel size [Å].
    n_max : int
        Top of the colour scale [atoms].
    names : sequence of str, optional
        Element of each label channel (the first is shown).
    """
    import matplotlib.pyplot as plt

    n = len(examples)
    fig, axes = plt.subplots(n, 3, figsize=(12, 3.9 * n), squeeze=False)
    norm = plt.Normalize(1, n_max)
    for row, ex in zip(axes, examples):
        ext = _extent(ex["noisy"].shape, sampling)
        row[0].imshow(ex["noisy"], cmap="gray", origin="lower", extent=ext)
        row[0].set_title(f"noisy input, {ex['dose']:g} e/Å²")
        for ax, table, title in ((row[1], ex["table"], "network"), (row[2], ex["truth"], "ground truth")):
            ax.imshow(ex["noisy"], cmap="gray", origin="lower", extent=ext, alpha=0.35)
            ce = table[table.channel == 0]
            sc = ax.scatter(ce.x, ce.y, c=ce["count"], cmap="viridis", norm=norm, s=40, edgecolors="k", linewidths=0.3)
            ax.set_title(f"{title}: {len(ce)} {_name(names, 0)} columns, {int(ce['count'].sum())} atoms")
        fig.colorbar(sc, ax=row[2], fraction=0.046, label=f"{_name(names, 0)} atoms per column")
    return _done(fig, bare=axes)


def dose_figure_scores(summary):
    """Detection F1, exact count and within-one accuracy against dose, network and baseline.

    Parameters
    ----------
    summary : pandas.DataFrame
        Pooled scores by method and dose (:func:`atomtools.columns.evaluation.summary_by`).
    """
    import matplotlib.pyplot as plt

    panels = [
        ("f1", "column detection F1"),
        ("exact", "exact count accuracy"),
        ("within_one", "count within ±1"),
        ("recovered_fraction", "true atoms recovered"),
        ("atom_precision", "predicted atoms that are real"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(18, 3.9))
    for ax, (key, label) in zip(axes, panels):
        for method, style in (("network", "o-"), ("baseline", "s--")):
            sub = summary[summary.method == method]
            if len(sub) and sub[key].notna().any():
                ax.plot(sub.dose, sub[key], style, label=method)
        ax.set_xscale("log")
        ax.set_xlabel("dose [e/Å²]")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend()
    return _done(fig)


def thickness_figure(columns, *, doses):
    """Exact-count accuracy against the true number of atoms in the column, at some doses.

    Parameters
    ----------
    columns : pandas.DataFrame
        Matched columns (:func:`atomtools.columns.evaluation.column_level`).
    doses : sequence of float
        Doses shown [e/Å²]; ``inf`` is the noise-free image (the ceiling).
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.9))
    for color, dose in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), doses):
        sub = columns[columns.dose == dose]
        name = "noise-free" if np.isinf(dose) else f"{dose:g} e/Å²"
        for method, style in (("network", "o-"), ("baseline", "s--")):
            m = sub[sub.method == method]
            if len(m):
                acc = m.assign(ok=m.true == m.pred).groupby("true").ok.mean()
                ax.plot(acc.index, acc.values, style, color=color, label=f"{method}, {name}")
    ax.set_xlabel("true atoms in the (principal) column")
    ax.set_ylabel("exact count accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    return _done(fig)


def by_count_figure(table, *, title: str = ""):
    """Exact count, within one, and mean error against the true count, one line per setting.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`atomtools.columns.evaluation.by_count` rows with a ``setting`` column
        (one dose).
    title : str
        Above the panels.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    for setting, sub in table.groupby("setting", sort=False):
        for ax, key in zip(axes, ("exact", "within_one", "mean_error")):
            ax.plot(sub["count"], sub[key], "o-", label=setting)
    for ax, label in zip(axes, ("exact count", "within one atom", "mean error [atoms]")):
        ax.set_xlabel("true atoms in the column")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1.02)
    axes[1].set_ylim(0, 1.02)
    axes[2].axhline(0.0, color="0.4", lw=1)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _done(fig)


def reliability_figure(curves: dict, eces: dict):
    """Reliability diagrams: accuracy against confidence, one curve per label, with its ECE.

    Parameters
    ----------
    curves : dict
        Label -> reliability table (:func:`atomtools.core.metrics.reliability`).
    eces : dict
        Label -> expected calibration error.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":")
    for name, r in curves.items():
        ax.plot(r.confidence, r.accuracy, "o-", label=f"{name} (ECE {eces[name]:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return _done(fig)


def batch_figure(sample: dict):
    """One training crop: noisy input, Ce target probability of the column class, loss weights.

    Parameters
    ----------
    sample : dict
        One training sample (``x``, ``target``, ``weights``, ``dose``).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].imshow(sample["x"][0], cmap="gray", origin="lower")
    axes[0].set_title(f"noisy input, {sample['dose']:.0f} e/Å²")
    im = axes[1].imshow(1 - sample["target"][0, 0], cmap="viridis", vmin=0, vmax=1, origin="lower")
    axes[1].set_title("first head target: P(column of the true count)")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    im = axes[2].imshow(sample["weights"], cmap="magma", origin="lower")
    axes[2].set_title("loss weights")
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    return _done(fig, bare=axes)


# --- missing-wedge tomography (work 2) ---------------------------------------------


def phantoms_figure(examples: dict):
    """One row per phantom kind: the phantom and its sinogram in the inpainter's order.

    Parameters
    ----------
    examples : dict
        Kind -> ``(image, sinogram in network order, measured-row mask in network order,
        held_out)``.
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
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    groups = [("training kinds", table[~table.held_out]), ("held-out kind", table[table.held_out])]
    for ax, (label, sub) in zip(axes[:2], groups):
        mean = sub.groupby(["method", "wedge"]).psnr.mean().unstack(0)
        for method in mean:
            ax.plot(mean.index, mean[method], "o-", label=method, lw=2.2 if method == "gan" else 1.2)
        ax.set_title(f"{label}: PSNR (data range 1)")
        ax.set_xlabel("missing wedge [deg]")
        ax.set_ylabel("PSNR [dB]")
    axes[0].legend(fontsize=8, ncol=2)
    ssim = table.groupby(["method", "wedge"]).ssim.mean().unstack(0)
    for method in ssim:
        axes[2].plot(ssim.index, ssim[method], "o-", label=method, lw=2.2 if method == "gan" else 1.2)
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


# --- in-situ series (work 1 applied to experiment) ------------------------------------


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
        From :func:`atomtools.columns.series.count_timelines` (``track``, ``frame``,
        ``count``, ``confidence``).
    tracks : sequence of int
        The tracks to draw.
    events : pandas.DataFrame, optional
        Found events (``track``, ``frame``, ``kind``) to mark.
    frame_rate : float, optional
        Frames per second: the time axis in seconds instead of frames.
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


def atoms_figure(image, maps: dict, table, *, title: str = "", baseline=None):
    """AtomSegNet's four panels: input, segmentation, denoised, positions on the input.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) frame.
    maps : dict
        :func:`atomtools.localize.segment`'s ``mask`` and ``denoised``.
    table : pandas.DataFrame
        :func:`atomtools.localize.find_atoms`' atoms (``x``, ``y`` [px], ``confidence``).
    title : str
        Figure title.
    baseline : pandas.DataFrame, optional
        Gaussian-fitting atoms drawn beside the network's.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    panels = [(image, "input"), (maps["mask"], "segmentation"), (maps["denoised"], "denoised"), (image, "positions")]
    for ax, (img, name) in zip(axes, panels):
        ax.imshow(img, cmap="gray", interpolation="nearest")
        ax.set_title(name)
    sc = axes[3].scatter(table.x, table.y, c=table.confidence, s=6, cmap="viridis", vmin=0, vmax=1, label="network")
    if baseline is not None and len(baseline):
        axes[3].scatter(
            baseline.x, baseline.y, s=10, facecolors="none", edgecolors="r", linewidths=0.5, label="Gaussian fit"
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

"""Figures of work 1: atoms per column from one HRTEM frame (simulation, training, evaluation).

The particle's model (:func:`show_model`), a simulated frame and its targets
(:func:`ground_truth_figure`, :func:`dose_figure`, :func:`parameter_figure`,
:func:`samples_figure`, :func:`batch_figure`), the training (:func:`training_figure`),
the network's output (:func:`prediction_figure`, :func:`counts_figure`) and its scores
against dose, thickness and true count (:func:`dose_figure_scores`,
:func:`thickness_figure`, :func:`by_count_figure`, :func:`reliability_figure`). The
in-situ figures of the same work are in :mod:`atomtools.plotting.series`.
"""

from __future__ import annotations

import numpy as np

from .style import _classes, _done, _extent, _gray, _name, class_cmap

__all__ = [
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
]


def show_model(atoms, *, title: str = ""):
    """Top view (along the beam) and side view of an atomic model.

    Parameters
    ----------
    atoms : ase.Atoms
        The model (atoms with ``column < 0``, such as the support, are left out).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: the top view and the side view [Å].
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

    Returns
    -------
    matplotlib.figure.Figure
        Four panels: clean image, noisy image, the targets of up to two label channels.
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

    Returns
    -------
    matplotlib.figure.Figure
        One panel per dose.
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

    Returns
    -------
    matplotlib.figure.Figure
        2 x 5 panels: nine parameter histograms and the surface profiles' bar chart.
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

    Returns
    -------
    matplotlib.figure.Figure
        2 x n panels: one column per image.
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

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: loss, validation accuracy.
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

    Returns
    -------
    matplotlib.figure.Figure
        Five panels: clean, noisy input, target, network output, confidence.
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

    Returns
    -------
    matplotlib.figure.Figure
        n x 3 panels: one row per example.
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

    Returns
    -------
    matplotlib.figure.Figure
        Five panels, each a score against dose [e/Å²].
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

    Returns
    -------
    matplotlib.figure.Figure
        One panel.
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

    Returns
    -------
    matplotlib.figure.Figure
        Three panels: exact count, within one, mean error [atoms].
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

    Returns
    -------
    matplotlib.figure.Figure
        One panel.
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

    Returns
    -------
    matplotlib.figure.Figure
        Three panels: noisy input, target probability, loss weights.
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

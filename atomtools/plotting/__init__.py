"""Figures of the notebooks (matplotlib), one function per figure, plus saving.

Every function returns the ``matplotlib.figure.Figure`` it drew; :func:`save` writes
it as PNG through a temporary file, with the run's provenance in a footer line and in
the PNG's metadata. Images are shown with ``origin="lower"`` so that y points up, in
the physical coordinates [Å] of :mod:`atomtools.core.labels`. :func:`notebook_style`
keeps the figures inside committed notebooks small (JPEG at screen resolution).

One module per subject, every public name importable from here:

- :mod:`.style`: :func:`save`, :func:`notebook_style`, :func:`class_cmap` and the shared
  helpers;
- :mod:`.columns`: work 1, atoms per column from one HRTEM frame;
- :mod:`.series`: work 1 applied to in-situ series;
- :mod:`.tomo`: work 2, missing-wedge tomography;
- :mod:`.localize`: work 3, atoms of any crystal.
"""

from __future__ import annotations

from .columns import (
    batch_figure,
    by_count_figure,
    counts_figure,
    dose_figure,
    dose_figure_scores,
    ground_truth_figure,
    parameter_figure,
    prediction_figure,
    reliability_figure,
    samples_figure,
    show_model,
    thickness_figure,
    training_figure,
)
from .localize import atoms_figure, library_figure, localization_figure
from .series import overlay_figure, series_movie, timelines_figure
from .style import class_cmap, notebook_style, save, static_scatter
from .tomo import (
    gan_training_figure,
    isosurface_figure,
    phantoms_figure,
    reconstructions_figure,
    volume_figure,
    wedge_figure,
)

__all__ = [
    "save",
    "notebook_style",
    "class_cmap",
    "static_scatter",
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

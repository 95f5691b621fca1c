"""The numbers an evaluation run records: the counting sections of ``04_evaluate``'s metrics.

:func:`count_metrics` turns the tables of :mod:`.evaluation` (scores by method and dose,
the independent and compact test sets, calibration, accuracy by thickness) into the
JSON-able record that ``results/<profile>/metrics.json`` keeps and the README's numbers
are generated from (:func:`atomtools.pipeline.readme_numbers`). Pure: tables in, a dict out.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["SCORES", "COMPACT_SCORES", "method_scores", "count_metrics"]

#: The scores recorded per method and dose.
SCORES = (
    "precision",
    "recall",
    "f1",
    "exact",
    "within_one",
    "mae",
    "recovered_fraction",
    "atom_precision",
    "recovered_3d",
)

#: The scores recorded per setting and dose on the compact particles.
COMPACT_SCORES = ("f1", "n", "exact", "within_one", "mean_error", "balanced_exact", "coverage", "set_size", "exact_all")


def method_scores(summary: pd.DataFrame, method: str) -> dict:
    """One method's :data:`SCORES` by dose.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`~atomtools.columns.evaluation.summary_by` of an evaluation (``method``,
        ``dose`` and the scores).
    method : str
        ``"network"`` or ``"baseline"``.

    Returns
    -------
    dict
        ``{dose [e/Å², as an integer string]: {score: value}}``; scores the summary lacks
        are left out.
    """
    sub = summary[summary.method == method].set_index("dose")
    keys = [k for k in SCORES if k in sub.columns]
    return {str(int(d)): {k: float(sub.loc[d, k]) for k in keys} for d in sub.index}


def count_metrics(
    *,
    summary: pd.DataFrame,
    independent: pd.DataFrame,
    compact: pd.DataFrame,
    compact_tilt: pd.DataFrame,
    compact_counts: pd.DataFrame,
    eces: dict,
    curves: dict,
    thickness: pd.DataFrame,
    thickness_dose: float,
    ceiling: pd.DataFrame,
    recovered_3d: float,
    n_test_images: int,
    reference_dose: float,
) -> dict:
    """The counting part of an evaluation's metrics, with its headline.

    Parameters
    ----------
    summary : pandas.DataFrame
        Scores by method and dose on the test set made like the training set.
    independent : pandas.DataFrame
        The same on the independent test set (with ``mean_error``).
    compact : pandas.DataFrame
        :func:`~atomtools.columns.evaluation.headline` of the compact particles (``setting``,
        ``dose`` and the scores).
    compact_tilt : pandas.DataFrame
        The compact particles' scores by ``setting`` and ``tilt`` [degrees].
    compact_counts : pandas.DataFrame
        The compact particles' scores by true count.
    eces : dict
        Expected calibration errors, ``pixels`` and ``columns``.
    curves : dict
        Reliability curves (DataFrames), ``pixels`` and ``columns``.
    thickness : pandas.DataFrame
        Exact-count accuracy by true count (rows) and (method, dose label) columns.
    thickness_dose : float
        The dose of ``thickness``' noisy columns [e/Å²].
    ceiling : pandas.DataFrame
        Scores by method of the noise-free evaluation (:func:`~atomtools.columns.evaluation.summary_by`).
    recovered_3d : float
        Fraction of atoms recovered by the example 3D model.
    n_test_images : int
        Images in the test set.
    reference_dose : float
        The headline's dose [e/Å²] (one of the evaluated doses).

    Returns
    -------
    dict
        The JSON-able record: scores by method and dose (``network``, ``baseline``,
        ``independent``), ``compact``, ``compact_by_tilt``, ``compact_by_count``,
        calibration, accuracy by thickness, the noise-free ceiling, ``*_exact_at_max_dose``
        and ``headline`` (the README's numbers).
    """
    out = {
        "network": method_scores(summary, "network"),
        "baseline": method_scores(summary, "baseline"),
        "independent": {
            "network": method_scores(independent, "network"),
            "baseline": method_scores(independent, "baseline"),
            "mean_error": {f"{r.method} {int(r.dose)}": float(r.mean_error) for r in independent.itertuples()},
        },
        "compact": {
            f"{r.setting} @{r.dose}": {k: float(getattr(r, k)) for k in COMPACT_SCORES} for r in compact.itertuples()
        },
        "compact_by_tilt": {
            f"{r.setting} @{r.tilt:g}°": {k: float(getattr(r, k)) for k in ("exact", "within_one", "mean_error")}
            for r in compact_tilt.itertuples()
        },
        "compact_by_count": compact_counts.to_dict("records"),
        "ece_pixels": eces["pixels"],
        "ece_columns": eces["columns"],
        "reliability_pixels": curves["pixels"].to_dict("list"),
        "reliability_columns": curves["columns"].to_dict("list"),
        "accuracy_vs_thickness_dose": thickness_dose,
        "accuracy_vs_thickness": {
            f"{m} {d}": {str(int(k)): float(v) for k, v in thickness[(m, d)].dropna().items()}
            for m, d in thickness.columns
        },
        "ceiling_noise_free": {
            f"{r.method} {key}": float(getattr(r, key))
            for r in ceiling.itertuples()
            for key in ("exact", "within_one", "f1")
        },
        "example_3d_recovered": recovered_3d,
        "n_test_images": int(n_test_images),
    }
    top = str(int(max(float(d) for d in out["network"])))
    out["network_exact_at_max_dose"] = out["network"][top]["exact"]
    out["baseline_exact_at_max_dose"] = out["baseline"][top]["exact"]
    ref = str(int(reference_dose))
    out["headline"] = {
        f"{where}{method} {key} @{ref} e/Å²": round((out["independent"] if where else out)[method][ref][key], 3)
        for where in ("independent: ", "")
        for method in ("network", "baseline")
        for key in ("exact", "within_one", "f1")
    }
    for name in ("U-Net alone", "counter, optics given, decoded"):
        sub = compact[(compact.setting == name) & (compact.dose == "1000 e/Å²")]
        for key in ("exact", "within_one", "mean_error"):
            value = round(float(sub[key].iloc[0]), 3) if len(sub) else None
            out["headline"][f"compact, columns of 3+ atoms: {name} {key} @1000 e/Å²"] = value
    return out

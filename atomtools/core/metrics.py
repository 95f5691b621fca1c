"""Scores of column retrieval: detection, counting, calibration, 3D recovery. Pure functions.

Columns are matched one-to-one between prediction and truth (Hungarian assignment on
distance, within a radius [Å]); detection scores count the matches, counting scores
compare the counts of matched columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

__all__ = [
    "match_columns",
    "position_spread",
    "column_scores",
    "reliability",
    "expected_calibration_error",
    "pixel_calibration",
    "atoms_recovered",
    "summarize",
    "fit_platt",
    "apply_platt",
    "interval_sets",
    "conformal_level",
    "count_breakdown",
    "thick_summary",
]


def match_columns(pred_xy: np.ndarray, true_xy: np.ndarray, *, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of predicted to true points within ``radius`` [Å].

    Points are columns (x, y) or atoms (x, y, z); the assignment minimizes the total
    distance (Hungarian) among pairs closer than ``radius``.

    Parameters
    ----------
    pred_xy, true_xy : numpy.ndarray
        (N, 2) or (N, 3) predicted and true points [Å].
    radius : float
        Largest distance of a match [Å].

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Indices into ``pred_xy`` and ``true_xy`` of the matched pairs.

    Examples
    --------
    >>> p = np.array([[0.0, 0.0], [3.0, 0.0], [9.0, 9.0]]); t = np.array([[0.2, 0.0], [3.1, 0.1]])
    >>> [a.tolist() for a in match_columns(p, t, radius=0.5)]
    [[0, 1], [0, 1]]
    """
    pred_xy = np.asarray(pred_xy, float)
    true_xy = np.asarray(true_xy, float)
    dim = (
        pred_xy.shape[-1]
        if pred_xy.ndim == 2 and pred_xy.size
        else (true_xy.shape[-1] if true_xy.ndim == 2 and true_xy.size else 2)
    )
    pred_xy, true_xy = pred_xy.reshape(-1, dim), true_xy.reshape(-1, dim)
    if not len(pred_xy) or not len(true_xy):
        return np.zeros(0, int), np.zeros(0, int)
    pairs = cKDTree(pred_xy).sparse_distance_matrix(cKDTree(true_xy), radius, output_type="coo_matrix")
    if pairs.nnz == 0:
        return np.zeros(0, int), np.zeros(0, int)
    rows, cols = np.unique(pairs.row), np.unique(pairs.col)
    cost = np.full((len(rows), len(cols)), 1e6)
    ri = {r: i for i, r in enumerate(rows)}
    ci = {c: i for i, c in enumerate(cols)}
    for r, c, d in zip(pairs.row, pairs.col, pairs.data):
        cost[ri[r], ci[c]] = d
    a, b = linear_sum_assignment(cost)
    ok = cost[a, b] <= radius
    return rows[a[ok]], cols[b[ok]]


def position_spread(errors) -> float:
    """Localization precision: the standard deviation of the position error per axis, pooled over x and y.

    Parameters
    ----------
    errors : array-like
        (n, 2) position errors (any unit; the answer is in the same).

    Returns
    -------
    float
        ``sqrt(mean(var(ex), var(ey)))``: a constant offset does not count; NaN under
        two errors.

    Examples
    --------
    >>> round(position_spread([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]), 4)  # sqrt((2/3 + 0) / 2)
    0.5774
    >>> position_spread([[5.0, 5.0], [5.0, 5.0]])  # the same offset twice: no spread
    0.0
    """
    err = np.asarray(errors, float).reshape(-1, 2)
    return float(np.sqrt(np.mean(np.var(err, axis=0)))) if len(err) > 1 else float("nan")


def column_scores(pred: pd.DataFrame, truth: pd.DataFrame, *, radius: float = 0.7, channel: int = 0) -> dict:
    """Detection and counting scores of one image for one channel (0: cations).

    Parameters
    ----------
    pred, truth : pandas.DataFrame
        Column tables with ``x``, ``y`` [Å], ``channel`` and ``count``.
    radius : float
        Matching radius [Å].
    channel : int
        Label channel scored.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``; over matched columns
        ``exact`` (fraction with the right count), ``within_one``, ``mae`` [atoms];
        ``atoms_true``, ``atoms_recovered`` (sum over true columns of
        ``min(true, predicted)`` count, 0 for missed columns), ``recovered_fraction``
        (of the true atoms) and ``atom_precision`` (of the predicted atoms, false
        columns included: over-counting lowers it); ``matches``, a DataFrame of the
        matched columns (``true`` and ``pred`` counts, ``confidence`` of the
        prediction where it has one, NaN else; ``low`` and ``high``, its prediction
        set, the count itself where it has none), which :func:`summarize` pools.

    Examples
    --------
    >>> t = pd.DataFrame({"x": [0.0, 3.0], "y": [0.0, 0.0], "channel": [0, 0], "count": [4, 6]})
    >>> p = pd.DataFrame({"x": [0.1], "y": [0.0], "channel": [0], "count": [4]})
    >>> s = column_scores(p, t); (s["precision"], s["recall"], s["exact"], s["recovered_fraction"])
    (1.0, 0.5, 1.0, 0.4)
    """
    p = pred[pred.channel == channel] if len(pred) else pred
    t = truth[truth.channel == channel] if len(truth) else truth
    ip, it = match_columns(
        p[["x", "y"]].to_numpy() if len(p) else np.zeros((0, 2)),
        t[["x", "y"]].to_numpy() if len(t) else np.zeros((0, 2)),
        radius=radius,
    )
    tp, fp, fn = len(ip), len(p) - len(ip), len(t) - len(it)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    pc = p["count"].to_numpy()[ip] if tp else np.zeros(0)
    tc = t["count"].to_numpy()[it] if tp else np.zeros(0)
    err = pc - tc
    atoms_true = int(t["count"].sum()) if len(t) else 0
    atoms_pred = int(p["count"].sum()) if len(p) else 0
    recovered = int(np.minimum(pc, tc).sum())
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "exact": float(np.mean(err == 0)) if tp else float("nan"),
        "within_one": float(np.mean(np.abs(err) <= 1)) if tp else float("nan"),
        "mae": float(np.mean(np.abs(err))) if tp else float("nan"),
        "n_matched": tp,
        "atoms_true": atoms_true,
        "atoms_pred": atoms_pred,
        "atoms_recovered": recovered,
        "recovered_fraction": recovered / atoms_true if atoms_true else float("nan"),
        "atom_precision": recovered / atoms_pred if atoms_pred else float("nan"),
        "matches": pd.DataFrame(
            {
                "true": tc.astype(int),
                "pred": pc.astype(int),
                "confidence": p["confidence"].to_numpy(float)[ip] if tp and "confidence" in p else np.full(tp, np.nan),
                "low": p["count_low"].to_numpy(float)[ip] if tp and "count_low" in p else pc.astype(float),
                "high": p["count_high"].to_numpy(float)[ip] if tp and "count_high" in p else pc.astype(float),
            }
        ),
    }


def reliability(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 10) -> pd.DataFrame:
    """Reliability diagram data: per confidence bin, mean confidence, accuracy and size.

    Parameters
    ----------
    confidence : numpy.ndarray
        Predicted probabilities.
    correct : numpy.ndarray
        Whether each prediction was right.
    bins : int
        Equal-width confidence bins over [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``lower``, ``upper`` (bin edges), ``confidence`` (mean),
        ``accuracy`` and ``n`` (number of predictions).

    Examples
    --------
    >>> r = reliability(np.array([0.95, 0.95, 0.55, 0.55]), np.array([1, 1, 1, 0]), bins=4)
    >>> r[["confidence", "accuracy", "n"]].values.tolist()
    [[0.55, 0.5, 2.0], [0.95, 1.0, 2.0]]
    """
    confidence = np.asarray(confidence, float).ravel()
    correct = np.asarray(correct, float).ravel()
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = idx == b
        if m.any():
            rows.append(
                {
                    "lower": edges[b],
                    "upper": edges[b + 1],
                    "confidence": float(confidence[m].mean()),
                    "accuracy": float(correct[m].mean()),
                    "n": float(m.sum()),
                }
            )
    return pd.DataFrame(rows, columns=["lower", "upper", "confidence", "accuracy", "n"])


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 10) -> float:
    """ECE: the bin-size-weighted mean gap between confidence and accuracy.

    Parameters
    ----------
    confidence, correct, bins
        As for :func:`reliability`.

    Returns
    -------
    float
        The ECE in [0, 1]; NaN where there is no prediction.

    Examples
    --------
    >>> round(expected_calibration_error(np.array([0.9] * 10), np.array([1] * 9 + [0])), 6)
    0.0
    """
    r = reliability(confidence, correct, bins=bins)
    if r.empty:
        return float("nan")
    return float(np.sum(r.n * np.abs(r.accuracy - r.confidence)) / r.n.sum())


def pixel_calibration(
    maps: dict, labels: np.ndarray, *, channel: int = 0, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (confidence, correct) of a prediction against hard label maps.

    Parameters
    ----------
    maps : dict
        ``classes`` and ``confidence`` (channels, H, W) of a retrieval.
    labels : numpy.ndarray
        (channels, H, W) true classes.
    channel : int
        Channel scored.
    mask : numpy.ndarray, optional
        (H, W) pixels scored (default all).

    Returns
    -------
    tuple of numpy.ndarray
        ``(confidence, correct)``: flat arrays of the scored pixels' confidence and whether their
        class is right (bool).
    """
    conf = maps["confidence"][channel]
    correct = maps["classes"][channel] == labels[channel]
    if mask is not None:
        conf, correct = conf[mask], correct[mask]
    return np.asarray(conf).ravel(), np.asarray(correct).ravel()


def atoms_recovered(model, truth, *, tolerance: float = 1.0, z_step: float = 0.1) -> dict:
    """Atoms of the true 3D structure that a reconstructed model puts in the right place.

    Parameters
    ----------
    model, truth : ase.Atoms
        Reconstructed and true models.
    tolerance : float
        Largest distance of a recovered atom from its true place [Å].
    z_step : float
        Step of the fine search of the height offset [Å].

    The model's height along the beam is arbitrary, so it is shifted along z to the
    offset that matches most atoms; then each true atom (of a column: carbon and other
    atoms with ``column < 0`` are left out) counts as recovered if a model atom of its
    element lies within ``tolerance`` [Å], one-to-one.

    Returns
    -------
    dict
        ``fraction``, ``recovered``, ``true``, ``model`` (atom numbers) and ``z_shift`` [Å].
    """
    t_keep = truth.arrays["column"] >= 0 if "column" in truth.arrays else np.ones(len(truth), bool)
    tpos, tnum = truth.positions[t_keep], truth.numbers[t_keep]
    mpos, mnum = model.positions, model.numbers
    if not len(tpos) or not len(mpos):
        return {"fraction": 0.0, "recovered": 0, "true": int(len(tpos)), "model": int(len(mpos)), "z_shift": 0.0}
    trees = {z: cKDTree(mpos[mnum == z]) for z in np.unique(tnum) if np.any(mnum == z)}

    def found(shift: float) -> int:
        n = 0
        for z, tree in trees.items():
            d, _ = tree.query(tpos[tnum == z] - np.array([0.0, 0.0, shift]), distance_upper_bound=tolerance)
            n += int(np.sum(np.isfinite(d)))
        return n

    base = np.median(tpos[:, 2]) - np.median(mpos[:, 2])
    span = np.ptp(tpos[:, 2]) + np.ptp(mpos[:, 2]) + 2 * tolerance
    coarse = base + np.arange(-span / 2, span / 2 + 0.5, 0.5)
    best = coarse[int(np.argmax([found(s) for s in coarse]))]
    fine = best + np.arange(-0.5, 0.5 + z_step, z_step)
    shift = float(fine[int(np.argmax([found(s) for s in fine]))])
    moved = mpos + np.array([0.0, 0.0, shift])
    recovered = 0
    for z in np.unique(tnum):
        ip, _ = match_columns(moved[mnum == z], tpos[tnum == z], radius=tolerance)
        recovered += len(ip)
    return {
        "fraction": recovered / len(tpos),
        "recovered": int(recovered),
        "true": int(len(tpos)),
        "model": int(len(mpos)),
        "z_shift": shift,
    }


def summarize(rows: list[dict]) -> dict:
    """Pool per-image scores: detection from summed tp/fp/fn, counting over all matched columns.

    Parameters
    ----------
    rows : list of dict
        Results of :func:`column_scores` (with their ``matches``).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` (detection), ``exact``, ``within_one``, ``mae`` [atoms]
        (counting over matched columns; NaN where none), ``n_columns`` (true columns),
        ``recovered_fraction`` and ``atom_precision`` (atoms).
    """
    tp = sum(r["tp"] for r in rows)
    fp = sum(r["fp"] for r in rows)
    fn = sum(r["fn"] for r in rows)
    pc = np.concatenate([r["matches"]["pred"].to_numpy(float) for r in rows]) if rows else np.zeros(0)
    tc = np.concatenate([r["matches"]["true"].to_numpy(float) for r in rows]) if rows else np.zeros(0)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    atoms_true = sum(r["atoms_true"] for r in rows)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "exact": float(np.mean(pc == tc)) if len(pc) else float("nan"),
        "within_one": float(np.mean(np.abs(pc - tc) <= 1)) if len(pc) else float("nan"),
        "mae": float(np.mean(np.abs(pc - tc))) if len(pc) else float("nan"),
        "n_columns": int(tp + fn),
        "recovered_fraction": sum(r["atoms_recovered"] for r in rows) / atoms_true if atoms_true else float("nan"),
        "atom_precision": sum(r["atoms_recovered"] for r in rows) / max(sum(r["atoms_pred"] for r in rows), 1),
    }


def apply_platt(confidence, a: float, b: float) -> np.ndarray:
    """Recalibrated probabilities ``sigmoid(a logit(p) + b)``.

    Parameters
    ----------
    confidence : array-like
        Probabilities in (0, 1).
    a, b : float
        Slope and offset from :func:`fit_platt`.

    Returns
    -------
    numpy.ndarray
        The recalibrated probabilities, float64, shape of ``confidence``.

    Examples
    --------
    >>> apply_platt([0.5, 0.9], 1.0, 0.0).round(3).tolist()
    [0.5, 0.9]
    """
    p = np.clip(np.asarray(confidence, float), 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b)))


def fit_platt(confidence, correct) -> tuple[float, float]:
    """Slope and offset that calibrate confidences: the maximum-likelihood ``(a, b)`` of
    ``P(correct) = sigmoid(a logit(confidence) + b)`` (Platt scaling).

    Parameters
    ----------
    confidence : array-like
        Predicted probabilities of the predictions.
    correct : array-like
        Whether each prediction was right.

    Returns
    -------
    tuple of float
        ``(a, b)``: the slope and offset.

    Examples
    --------
    >>> rng = np.random.default_rng(0); p = rng.uniform(0.05, 0.95, 100_000)
    >>> truth = rng.uniform(size=p.size) < apply_platt(p, 2.0, 0.5)  # under-confident scores
    >>> [round(v, 1) for v in fit_platt(p, truth)]
    [2.0, 0.5]
    """
    from scipy.optimize import minimize

    p = np.clip(np.asarray(confidence, float), 1e-6, 1 - 1e-6)
    y = np.asarray(correct, float)
    z = np.log(p / (1 - p))

    def nll(ab):
        s = ab[0] * z + ab[1]
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    a, b = minimize(nll, x0=[1.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-9}).x
    return float(a), float(b)


def _grow_intervals(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classes in the order a contiguous interval grows from the mode (towards the larger
    neighbour), and the probability mass after each step: (N, K) each."""
    n, k = p.shape
    rows = np.arange(n)
    lo = hi = p.argmax(axis=1)
    order, mass = np.empty((n, k), int), np.empty((n, k))
    order[:, 0], mass[:, 0] = lo, p[rows, lo]
    for step in range(1, k):
        left, right = lo - 1, hi + 1
        p_left = np.where(left >= 0, p[rows, np.clip(left, 0, k - 1)], -1.0)
        p_right = np.where(right < k, p[rows, np.clip(right, 0, k - 1)], -1.0)
        to_right = p_right > p_left
        new = np.where(to_right, right, left)
        lo, hi = np.where(to_right, lo, left), np.where(to_right, right, hi)
        order[:, step], mass[:, step] = new, mass[:, step - 1] + p[rows, new]
    return order, mass


def interval_sets(probabilities, *, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Prediction sets of ordered classes (counts): the interval grown from the most probable
    class, towards the more probable neighbour, until it holds ``level`` of the probability.

    Parameters
    ----------
    probabilities : array-like
        (N, K) class probabilities, classes ordered (0, 1, ... K-1).
    level : float or array-like
        Probability mass each set must hold (a conformal level from
        :func:`conformal_level` gives calibrated coverage); one per row, or one for all.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lowest and highest class of each set (inclusive).

    Examples
    --------
    >>> low, high = interval_sets([[0.05, 0.5, 0.3, 0.15], [0.9, 0.1, 0.0, 0.0]], level=0.8)
    >>> low.tolist(), high.tolist()
    ([1, 0], [2, 0])
    """
    p = np.asarray(probabilities, float).reshape(len(probabilities), -1)
    if not len(p):
        return np.zeros(0, int), np.zeros(0, int)
    order, mass = _grow_intervals(p)
    level = np.minimum(np.asarray(level, float), 1.0).reshape(-1, 1)  # one level, or one per row
    steps = np.minimum((mass < level - 1e-12).sum(axis=1), p.shape[1] - 1)
    taken = np.arange(p.shape[1])[None, :] <= steps[:, None]
    low = np.where(taken, order, p.shape[1]).min(axis=1)
    high = np.where(taken, order, -1).max(axis=1)
    return low, high


def conformal_level(probabilities, labels, *, coverage: float = 0.9) -> float:
    """Split-conformal level of :func:`interval_sets`: the mass at which sets cover the true
    class of at least ``coverage`` of new samples exchangeable with these (calibration) ones.

    Each calibration sample scores the mass its interval holds when its true class joins;
    the level is the ``ceil((n + 1) coverage) / n`` quantile of the scores.

    Parameters
    ----------
    probabilities : array-like
        (N, K) probabilities of held-out samples.
    labels : array-like
        (N,) their true classes.
    coverage : float
        Wanted coverage in (0, 1).

    Returns
    -------
    float
        The level: a probability mass in [0, 1].

    Examples
    --------
    >>> rng = np.random.default_rng(0); mu = rng.uniform(0, 9, 4000); k = np.arange(10)
    >>> p = np.exp(-((k - mu[:, None]) ** 2) / 2); p /= p.sum(axis=1, keepdims=True)
    >>> y = np.array([rng.choice(10, p=q) for q in p])  # labels drawn from the probabilities
    >>> level = conformal_level(p[:2000], y[:2000], coverage=0.9)
    >>> low, high = interval_sets(p[2000:], level=level)
    >>> round(level, 3), float(np.mean((y[2000:] >= low) & (y[2000:] <= high)))  # whole counts: >= 0.9
    (0.962, 0.988)
    """
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    p = np.asarray(probabilities, float)
    y = np.asarray(labels, int).ravel()
    if len(p) != len(y) or not len(y):
        raise ValueError(f"conformal_level: {len(p)} probability rows for {len(y)} labels")
    order, mass = _grow_intervals(p)
    score = mass[np.arange(len(y)), (order == y[:, None]).argmax(axis=1)]
    rank = min(len(y), int(np.ceil((len(y) + 1) * coverage)))
    return float(np.sort(score)[rank - 1])


def count_breakdown(true, pred, *, low=None, high=None, max_count: int | None = None) -> pd.DataFrame:
    """Counting scores by true count: the table every count evaluation reports.

    Parameters
    ----------
    true, pred : array-like
        True and predicted counts of matched columns [atoms].
    low, high : array-like, optional
        Prediction sets (inclusive), for their coverage and mean size.
    max_count : int, optional
        Counts above it are pooled into one row labelled ``max_count`` ("or more").

    Returns
    -------
    pandas.DataFrame
        One row per true count: ``count``, ``n``, ``exact``, ``within_one``,
        ``mean_error`` (predicted minus true [atoms]), ``mae``; with sets ``coverage``
        and ``set_size`` [counts].

    Examples
    --------
    >>> count_breakdown([1, 1, 3, 3], [1, 2, 3, 5])[["count", "n", "exact", "mean_error"]].values.tolist()
    [[1.0, 2.0, 0.5, 0.5], [3.0, 2.0, 0.5, 1.0]]
    """
    t = np.asarray(true, float).ravel()
    p = np.asarray(pred, float).ravel()
    key = np.minimum(t, max_count) if max_count is not None else t
    rows = []
    for c in np.unique(key):
        m = key == c
        err = p[m] - t[m]
        row = {
            "count": int(c),
            "n": int(m.sum()),
            "exact": float(np.mean(err == 0)),
            "within_one": float(np.mean(np.abs(err) <= 1)),
            "mean_error": float(err.mean()),
            "mae": float(np.abs(err).mean()),
        }
        if low is not None and high is not None:
            lo, hi = np.asarray(low, float).ravel()[m], np.asarray(high, float).ravel()[m]
            row["coverage"] = float(np.mean((t[m] >= lo) & (t[m] <= hi)))
            row["set_size"] = float(np.mean(hi - lo + 1))
        rows.append(row)
    names = ["count", "n", "exact", "within_one", "mean_error", "mae"]
    return pd.DataFrame(rows, columns=names + (["coverage", "set_size"] if low is not None else []))


def thick_summary(true, pred, *, low=None, high=None, min_count: int = 3) -> dict:
    """The headline of a count evaluation: columns of ``min_count`` or more atoms, pooled and
    balanced over counts.

    Parameters
    ----------
    true, pred : array-like
        True and predicted counts of matched columns [atoms].
    low, high : array-like, optional
        Prediction sets, for ``coverage`` and ``set_size``.
    min_count : int
        Thinnest column counted in [atoms].

    Returns
    -------
    dict
        ``n``, ``exact``, ``within_one``, ``mean_error``, ``mae`` over those columns;
        ``balanced_exact`` and ``balanced_within_one``, the means over true counts (each
        count weighs the same); with sets ``coverage`` and ``set_size``.

    Examples
    --------
    >>> s = thick_summary([1, 3, 3, 3, 6], [1, 3, 3, 4, 6]); (s["n"], s["exact"], round(s["balanced_exact"], 3))
    (4, 0.75, 0.833)
    """
    t = np.asarray(true, float).ravel()
    p = np.asarray(pred, float).ravel()
    m = t >= min_count
    nan = float("nan")
    table = count_breakdown(
        t[m], p[m], low=None if low is None else np.asarray(low)[m], high=None if high is None else np.asarray(high)[m]
    )
    err = p[m] - t[m]
    out = {
        "n": int(m.sum()),
        "exact": float(np.mean(err == 0)) if m.any() else nan,
        "within_one": float(np.mean(np.abs(err) <= 1)) if m.any() else nan,
        "mean_error": float(err.mean()) if m.any() else nan,
        "mae": float(np.abs(err).mean()) if m.any() else nan,
        "balanced_exact": float(table["exact"].mean()) if m.any() else nan,
        "balanced_within_one": float(table["within_one"].mean()) if m.any() else nan,
    }
    if low is not None and high is not None:
        out["coverage"] = float(table.eval("coverage * n").sum() / table["n"].sum()) if m.any() else nan
        out["set_size"] = float(table.eval("set_size * n").sum() / table["n"].sum()) if m.any() else nan
    return out

"""Network against Gaussian fitting on crystals the network never saw, against dose.

:func:`held_out_frames` simulates HAADF-STEM (or HRTEM) frames of :data:`HELD_OUT_CRYSTALS`
(wurtzite GaN along [2-1-10], rock-salt MgO along [100], bcc W along [111]) with the
library's recipe: the same structures, distortions and optics at every dose, only
the dose (and so the noise) changes. :func:`score_atoms` matches a table to the truth
(one-to-one, within ``radius``) and gives the detection F1 and the localization
precision: the standard deviation of the position error, per axis, pooled over x and
y [pm]. :func:`evaluate` runs every method on every frame; :func:`summarize` gives
the table per method and dose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from ..core.metrics import match_columns, position_spread
from ..simulation.library import HELD_OUT_CRYSTALS, LibraryConfig, library_item
from ..utils import progress_bar

__all__ = ["held_out_frames", "score_atoms", "evaluate", "summarize", "neighbour_spacing"]


def held_out_frames(
    *,
    doses=(5e3, 2e4, 1e5, 1e6),
    n_images: int = 12,
    shape: tuple[int, int] = (256, 256),
    crystals=HELD_OUT_CRYSTALS,
    seed: int = 7000,
    config: LibraryConfig | None = None,
    mode: str = "haadf",
) -> list[dict]:
    """Test frames of held-out crystals, each structure at every dose.

    Parameters
    ----------
    doses : sequence of float
        Doses [e/Å²].
    n_images : int
        Structures (cycled over ``crystals``).
    shape : two int
        Frame size [px].
    crystals : sequence of (str, three int)
        (crystal, zone axis) pairs.
    seed : int
        Master seed (apart from the training library's).
    config : LibraryConfig, optional
        Further recipe settings (default the library's, no blanks, crystal over the
        whole frame).
    mode : {"haadf", "hrtem"}
        HAADF-STEM frames (the incoherent model) or HRTEM ones (abTEM multislice,
        the library's random optics).

    Returns
    -------
    list of dict
        ``image`` (H, W) counts, ``xy`` (m, 2) true columns [px], ``sampling`` [Å],
        ``dose``, ``crystal``, ``structure``.
    """
    if mode not in ("haadf", "hrtem"):
        raise ValueError(f"mode must be 'haadf' or 'hrtem', got {mode!r}")
    base = config or LibraryConfig()
    frames = []
    for s in range(int(n_images)):
        pair = crystals[s % len(crystals)]
        for dose in doses:
            cfg = replace(
                base,
                shape=tuple(shape),
                crystals=(pair,),
                stem_dose=(float(dose), float(dose)),
                hrtem_dose=(float(dose), float(dose)),
                hrtem_fraction=1.0 if mode == "hrtem" else 0.0,
                blank_fraction=0.0,
                region_fraction=0.0,
            )
            item = library_item(s, cfg, seed)
            p = item["images"][0]
            frames.append(
                {
                    "image": item["noisy"][0],
                    "xy": item["positions"][:, :2],
                    "sampling": float(p["sampling"]),
                    "dose": float(dose),
                    "mode": mode,
                    "crystal": f"{pair[0]} [{''.join(str(v) for v in pair[1])}]",
                    "structure": s,
                }
            )
    return frames


def score_atoms(
    pred_xy: np.ndarray, true_xy: np.ndarray, *, shape, sampling: float, radius: float = 0.5, border: float = 3.0
) -> dict:
    """Detection counts and position errors of one frame.

    Parameters
    ----------
    pred_xy, true_xy : numpy.ndarray
        (n, 2) found and true positions (x, y) [px].
    shape : two int
        Frame (rows, cols) [px].
    sampling : float
        Pixel size [Å].
    radius : float
        Largest distance of a match [Å].
    border : float
        Points closer than this to the frame's edge are left out of both [px].

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``errors`` (tp, 2) [Å] and ``matched`` (tp,): the
        indices into ``true_xy`` of the columns found, in the order of ``errors``.

    Examples
    --------
    >>> s = score_atoms(np.array([[10.1, 10.0], [30.0, 30.0]]), np.array([[10.0, 10.0]]), shape=(40, 40), sampling=0.1)
    >>> s["tp"], s["fp"], s["fn"], np.round(s["errors"], 3).tolist()
    (1, 1, 0, [[0.01, 0.0]])
    """

    def keep(xy):
        xy = np.asarray(xy, float).reshape(-1, 2)
        ok = (xy[:, 0] >= border) & (xy[:, 1] >= border) & (xy[:, 0] <= shape[1] - 1 - border)
        ok &= xy[:, 1] <= shape[0] - 1 - border
        return xy[ok], np.flatnonzero(ok)

    (pred, _), (true, index) = keep(pred_xy), keep(true_xy)
    p, t = match_columns(pred * sampling, true * sampling, radius=radius)
    return {
        "tp": len(p),
        "fp": len(pred) - len(p),
        "fn": len(true) - len(t),
        "errors": (pred[p] - true[t]) * sampling,
        "matched": index[t],
    }


def evaluate(frames: list[dict], methods: dict[str, Callable], *, progress: bool = True) -> pd.DataFrame:
    """Every method on every frame: detection, errors and seconds.

    Parameters
    ----------
    frames : list of dict
        :func:`held_out_frames`' output.
    methods : dict
        Name -> ``method(image, sampling) -> table`` with ``x``, ``y`` [px].
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per (method, frame): ``method``, ``crystal``, ``dose``, ``structure``,
        ``tp``, ``fp``, ``fn``, ``seconds``, and ``errors`` (an (n, 2) array [Å]).
    """
    rows = []
    jobs = [(name, f) for f in frames for name in methods]
    for name, frame in progress_bar(jobs, desc="localization", unit="frame", disable=not progress):
        t0 = time.perf_counter()
        table = methods[name](frame["image"], frame["sampling"])
        seconds = time.perf_counter() - t0
        s = score_atoms(
            table[["col", "row"]].to_numpy(), frame["xy"], shape=frame["image"].shape, sampling=frame["sampling"]
        )
        rows.append(
            {
                "method": name,
                "mode": frame.get("mode", "haadf"),
                "crystal": frame["crystal"],
                "dose": frame["dose"],
                "structure": frame["structure"],
                **s,
                "seconds": seconds,
            }
        )
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame, by=("method", "dose")) -> pd.DataFrame:
    """F1, precision [pm] and seconds per group of :func:`evaluate`'s rows.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`evaluate`'s output.
    by : sequence of str
        Grouping columns.

    Returns
    -------
    pandas.DataFrame
        ``f1``, ``precision_pm`` (standard deviation of the error per axis, pooled over
        x and y), ``rmse_pm`` (root-mean-square distance, bias included), ``found``,
        ``true`` and ``seconds`` (mean per frame), one row per group; with more than one
        method and the ``matched`` column of :func:`evaluate`, also
        ``common_precision_pm``: the precision over the columns every method found (the
        same atoms for all: a method that finds more of the hard ones is not the worse
        for it).
    """
    common = _common_errors(results)
    out = []
    for key, g in results.groupby(list(by), sort=True):
        tp, fp, fn = g.tp.sum(), g.fp.sum(), g.fn.sum()
        err = np.concatenate([np.asarray(e).reshape(-1, 2) for e in g.errors]) if len(g) else np.zeros((0, 2))
        sd = position_spread(err) * 100
        extra = {}
        if common is not None:
            shared = np.concatenate([common[i] for i in g.index]) if len(g) else np.zeros((0, 2))
            extra["common_precision_pm"] = position_spread(shared) * 100
        rmse = float(np.sqrt(np.mean(np.sum(err**2, axis=1)))) * 100 if len(err) else float("nan")
        out.append(
            dict(
                zip(by, key if isinstance(key, tuple) else (key,)),
                f1=2 * tp / max(1, 2 * tp + fp + fn),
                precision_pm=sd,
                rmse_pm=rmse,
                found=int(tp + fp),
                true=int(tp + fn),
                seconds=float(g.seconds.mean()),
                **extra,
            )
        )
    return pd.DataFrame(out)


def _common_errors(results: pd.DataFrame) -> dict | None:
    """Row -> its errors on the columns that every method found in that frame (None without ``matched``)."""
    if "matched" not in results or results["method"].nunique() < 2:
        return None
    frame_keys = [k for k in ("mode", "crystal", "dose", "structure") if k in results]
    out = {}
    for _, g in results.groupby(frame_keys, sort=False):
        shared = set.intersection(*(set(np.asarray(m).tolist()) for m in g.matched))
        for i, row in g.iterrows():
            keep = np.isin(np.asarray(row.matched), list(shared))
            out[i] = np.asarray(row.errors).reshape(-1, 2)[keep]
    return out


def neighbour_spacing(table: pd.DataFrame, *, region=None, tolerance: float = 0.25) -> dict:
    """Nearest-neighbour distances of atoms within a region: the lattice-spacing precision of a real frame.

    In one grain of a perfect crystal every atom has the same nearest-neighbour
    distance; the spread of the measured ones is what the positions' errors (and the
    crystal's own strain) make of it. Distances more than ``tolerance`` away from the
    median (a missed or a false atom) are left out and counted.

    Parameters
    ----------
    table : pandas.DataFrame
        Atoms (``col``, ``row`` [px]: a real frame's pixel size may be unknown).
    region : (x0, x1, y0, y1), optional
        Atoms inside it only [px]; default all.
    tolerance : float
        Largest relative deviation from the median that counts.

    Returns
    -------
    dict
        ``n`` atoms, ``median`` and ``spread`` (standard deviation) [px], ``relative``
        (spread / median) and ``outliers`` (atoms left out).

    Examples
    --------
    >>> g = np.mgrid[0:10, 0:10].reshape(2, -1).T * 20.0
    >>> s = neighbour_spacing(pd.DataFrame({"col": g[:, 0], "row": g[:, 1]}))
    >>> s["median"], s["spread"], s["outliers"]
    (20.0, 0.0, 0)
    """
    from scipy.spatial import cKDTree

    xy = table[["col", "row"]].to_numpy(float)
    if region is not None:
        x0, x1, y0, y1 = region
        xy = xy[(xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)]
    if len(xy) < 3:
        return {
            "n": int(len(xy)),
            "median": float("nan"),
            "spread": float("nan"),
            "relative": float("nan"),
            "outliers": 0,
        }
    d = cKDTree(xy).query(xy, k=2)[0][:, 1]
    med = float(np.median(d))
    ok = np.abs(d - med) <= tolerance * med
    spread = float(np.std(d[ok]))
    return {"n": int(len(xy)), "median": med, "spread": spread, "relative": spread / med, "outliers": int((~ok).sum())}

"""Every reconstruction method on the same phantoms: PSNR, SSIM and seconds per slice.

Phantoms are 0 .. 1, so PSNR and SSIM use a data range of 1 (stated in every table).
Test phantoms use seeds that neither the training (:mod:`.task`) nor the tuning of the
classical methods (:func:`tune`, validation seeds) draws; the held-out kind
(``nanoparticle``) is reported beside the training kinds.
"""

from __future__ import annotations

import time
from itertools import product

import numpy as np
import pandas as pd

from ..utils import progress_bar
from .operators import Projector, wedge_angles
from .phantoms import TRAINING_KINDS, phantom
from .reconstruction import reconstruct
from .sinograms import add_shot_noise

__all__ = [
    "DATA_RANGE",
    "EVALUATED_KINDS",
    "TEST_SEED",
    "VALIDATION_SEED",
    "CLASSICAL",
    "scores",
    "phantom_set",
    "tune",
    "evaluate",
    "source_protocol",
    "tomography_metrics",
]

#: The kinds the notebooks' tables score by default: the GANs' training kinds and the
#: held-out nanoparticle sections.
EVALUATED_KINDS = (*TRAINING_KINDS, "nanoparticle")

#: Phantoms lie in 0 .. 1.
DATA_RANGE = 1.0
TEST_SEED = 900_000
VALIDATION_SEED = 800_000


def scores(truth: np.ndarray, image: np.ndarray) -> tuple[float, float]:
    """PSNR [dB] and SSIM of ``image`` against ``truth``, data range 1.

    Parameters
    ----------
    truth, image : numpy.ndarray
        (n, n) slices.

    Returns
    -------
    tuple of float
        ``(psnr, ssim)``: PSNR [dB] and SSIM.
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    image = np.asarray(image, np.float64)
    truth = np.asarray(truth, np.float64)
    return (
        float(peak_signal_noise_ratio(truth, image, data_range=DATA_RANGE)),
        float(structural_similarity(truth, image, data_range=DATA_RANGE)),
    )


def phantom_set(kinds, count: int, *, wedge: float, dose: float, n: int = 128, seed: int = TEST_SEED) -> dict:
    """Phantoms and their measured sinograms with a missing wedge and shot noise.

    Parameters
    ----------
    kinds : sequence of str
        Phantom kinds.
    count : int
        Phantoms per kind.
    wedge : float
        Missing wedge [deg].
    dose : float
        Counts per pixel at the sinogram mean (``inf``: no noise).
    n : int
        Size [px]; the grid has ``n`` angles.
    seed : int
        Seed of the phantoms (:data:`TEST_SEED` or :data:`VALIDATION_SEED`); the noise seed
        follows from it, the wedge and the dose.

    Returns
    -------
    dict
        ``images`` (N, n, n), ``kinds`` (N,), ``sinograms`` (N, n_measured, n), ``angles``.
    """
    angles, measured = wedge_angles(wedge, n=n)
    projector = Projector(n, angles[measured])
    names = [k for k in kinds for _ in range(count)]
    images = np.stack([phantom(k, n=n, seed=seed + i) for i, k in enumerate(names)])
    rng = np.random.default_rng([seed, int(wedge * 10), int(min(dose, 1e12))])
    sinograms = np.stack([add_shot_noise(projector.forward(im), dose=dose, rng=rng) for im in images])
    return {"images": images, "kinds": np.array(names), "sinograms": sinograms, "angles": angles[measured]}


def tune(
    method: str, grid: dict, *, count: int = 4, wedge: float = 45.0, doses=(1e4, 1e3), n: int = 128
) -> tuple[dict, pd.DataFrame]:
    """Choose a classical method's parameters on validation phantoms of the training kinds.

    Parameters
    ----------
    method : {"fbp", "sart", "sirt", "tv"}
        The method.
    grid : dict
        Parameter -> values to try (every combination).
    count : int
        Phantoms per training kind.
    wedge : float
        Missing wedge [deg].
    doses : sequence of float
        Doses averaged over.
    n : int
        Size [px].

    Returns
    -------
    (dict, pandas.DataFrame)
        The best parameters (highest mean PSNR) and every trial.
    """
    sets = [phantom_set(TRAINING_KINDS, count, wedge=wedge, dose=d, n=n, seed=VALIDATION_SEED) for d in doses]
    rows = []
    keys = list(grid)
    for values in product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        psnrs = []
        for s in sets:
            images = reconstruct(s["sinograms"], s["angles"], method=method, **params)
            psnrs += [scores(t, im)[0] for t, im in zip(s["images"], images)]
        rows.append({**params, "psnr": float(np.mean(psnrs))})
    table = pd.DataFrame(rows)
    best = table.loc[table["psnr"].idxmax(), keys].to_dict()

    def typed(k, v):  # back to the grid's own type (the table holds numpy values)
        first = grid[k][0]
        return bool(v) if isinstance(first, bool) else int(v) if isinstance(first, int) else v

    return {k: typed(k, v) for k, v in best.items()}, table


def evaluate(
    methods=("fbp", "sart", "sirt", "tv", "inpaint", "refine", "gan"),
    *,
    kinds=EVALUATED_KINDS,
    wedges=(30.0, 45.0, 60.0),
    doses=(1e4, 1e3),
    count: int = 4,
    n: int = 128,
    inpainter=None,
    refiner=None,
    progress: bool = True,
) -> pd.DataFrame:
    """PSNR, SSIM and seconds per slice of every method, kind, wedge and dose.

    Parameters
    ----------
    methods : sequence of str
        Methods of :func:`~atomtools.tomo.reconstruction.reconstruct`.
    kinds : sequence of str
        Phantom kinds (the held-out ``nanoparticle`` included by default).
    wedges : sequence of float
        Missing wedges [deg].
    doses : sequence of float
        Counts per pixel at the sinogram mean.
    count : int
        Phantoms per kind.
    n : int
        Size [px].
    inpainter, refiner : str or Path, optional
        Network weights (default the shipped ones).
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per phantom and method: ``kind``, ``held_out``, ``wedge``, ``dose``,
        ``method``, ``psnr``, ``ssim``, ``seconds`` (per slice, batched where the method
        batches).
    """
    rows = []
    cases = list(product(wedges, doses))
    with progress_bar(total=len(cases) * len(methods), desc="tomography methods", disable=not progress) as bar:
        for wedge, dose in cases:
            s = phantom_set(kinds, count, wedge=wedge, dose=dose, n=n)
            for method in methods:
                nets = {"inpainter": inpainter, "refiner": refiner} if method in ("inpaint", "refine", "gan") else {}
                start = time.perf_counter()
                images = reconstruct(s["sinograms"], s["angles"], method=method, **nets)
                seconds = (time.perf_counter() - start) / len(images)
                for truth, image, kind in zip(s["images"], images, s["kinds"]):
                    psnr, ssim = scores(truth, image)
                    rows.append(
                        {
                            "kind": kind,
                            "held_out": kind not in TRAINING_KINDS,
                            "wedge": wedge,
                            "dose": dose,
                            "method": method,
                            "psnr": psnr,
                            "ssim": ssim,
                            "seconds": seconds,
                        }
                    )
                bar.update()
    return pd.DataFrame(rows)


def source_protocol(
    *, kinds=EVALUATED_KINDS, count: int = 4, dose: float = 1e4, n: int = 128, inpainter=None, refiner=None
) -> pd.DataFrame:
    """The source's comparison: 128 projections over 180 degrees, 96 kept (a 45 degree wedge).

    WBP (FBP), SART and TV from the raw sinogram and from the inpainted one, per kind.

    Parameters
    ----------
    kinds : sequence of str
        Phantom kinds.
    count : int
        Phantoms per kind.
    dose : float
        Counts per pixel at the sinogram mean.
    n : int
        Size [px] and angles of the full grid.
    inpainter, refiner : str or Path, optional
        Network weights.

    Returns
    -------
    pandas.DataFrame
        Per kind and method: mean PSNR raw, inpainted, and the gain [dB]; mean SSIM both ways.
    """
    s = phantom_set(kinds, count, wedge=45.0, dose=dose, n=n)
    if len(s["angles"]) != 96 and n == 128:
        raise RuntimeError(f"expected 96 kept projections, got {len(s['angles'])}")
    rows = []
    for method in ("fbp", "sart", "tv"):
        raw = reconstruct(s["sinograms"], s["angles"], method=method)
        filled = reconstruct(
            s["sinograms"], s["angles"], method=method, inpaint=True, inpainter=inpainter, refiner=refiner
        )
        for truth, a, b, kind in zip(s["images"], raw, filled, s["kinds"]):
            (p0, s0), (p1, s1) = scores(truth, a), scores(truth, b)
            rows.append(
                {
                    "kind": kind,
                    "method": method,
                    "psnr_raw": p0,
                    "psnr_inpainted": p1,
                    "ssim_raw": s0,
                    "ssim_inpainted": s1,
                }
            )
    table = pd.DataFrame(rows).groupby(["kind", "method"], sort=False).mean().reset_index()
    table["gain_db"] = table["psnr_inpainted"] - table["psnr_raw"]
    return table


#: The classical methods the learned ones are held against.
CLASSICAL = ("fbp", "sart", "sirt", "tv")


def tomography_metrics(table: pd.DataFrame, protocol: pd.DataFrame, *, wedge: float = 45.0) -> dict:
    """The tomography part of an evaluation's metrics, with its headline.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`evaluate`'s rows.
    protocol : pandas.DataFrame
        :func:`source_protocol`'s table.
    wedge : float
        The wedge [degrees] of the headline comparison (one of ``table``'s).

    Returns
    -------
    dict
        ``by_case`` (mean PSNR, SSIM and seconds per held-out flag, wedge, dose and
        method), ``at_<wedge>`` (per method, all kinds and doses, and on held-out kinds),
        ``best_classical_at_<wedge>`` (the classical method of highest mean PSNR there),
        ``source_protocol``, ``data_range`` and ``headline`` (the joint model's PSNR
        minus the best classical method's and minus FBP's [dB]).
    """
    at = table[table.wedge == wedge]
    if not len(at):
        raise ValueError(f"wedge {wedge} degrees is not among the table's wedges {sorted(set(table.wedge))}")
    means = at.groupby("method").psnr.mean()
    best = str(means[[m for m in CLASSICAL if m in means.index]].idxmax())
    label = f"{wedge:g}"
    by_case = (
        table.groupby(["held_out", "wedge", "dose", "method"])
        .agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"), seconds=("seconds", "mean"))
        .reset_index()
    )
    per_method = {
        m: {
            "psnr": float(at[at.method == m].psnr.mean()),
            "ssim": float(at[at.method == m].ssim.mean()),
            "seconds": float(at[at.method == m].seconds.mean()),
            "psnr_held_out": float(at[(at.method == m) & at.held_out].psnr.mean()),
        }
        for m in at.method.unique()
    }
    headline = {}
    if "gan" in means.index:
        headline[f"tomography @{label}°: joint minus best classical / minus FBP [dB]"] = [
            round(float(means["gan"] - means[best]), 2),
            round(float(means["gan"] - means["fbp"]), 2),
        ]
    return {
        "by_case": by_case.to_dict("records"),
        f"at_{label}": per_method,
        f"best_classical_at_{label}": best,
        "source_protocol": protocol.to_dict("records"),
        "data_range": DATA_RANGE,
        "headline": headline,
    }

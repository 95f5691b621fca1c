"""Every reconstruction method on the same phantoms: PSNR, SSIM and seconds per slice.

Phantoms are 0 .. 1, so PSNR and SSIM use a data range of 1 (stated in every table).
Test phantoms use seeds that neither the training (:mod:`.task`) nor the tuning of the
classical methods (:func:`tune`, validation seeds) draws; the held-out kinds
(:data:`~atomtools.tomo.phantoms.HELD_OUT_KINDS`: nanoparticle sections, Shepp-Logan,
random ellipses) are reported beside the training kinds. :func:`learned_gain` holds a
learned method against the best classical one, kind by kind; a real tilt series, whose
truth is unknown, is scored by the projections a reconstruction was not given
(:func:`withheld_projection_error`).
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
from .sinograms import add_shot_noise, every_kth

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
    "learned_gain",
    "withheld_projection_error",
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


def phantom_set(
    kinds, count: int, *, wedge: float, dose: float, n: int = 128, seed: int = TEST_SEED, every: int = 1
) -> dict:
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
    every : int
        Sparse tilts: keep every ``every``-th measured angle (0 degrees among them, as a
        tilt series does); 1 keeps them all.

    Returns
    -------
    dict
        ``images`` (N, n, n), ``kinds`` (N,), ``sinograms`` (N, n_measured, n), ``angles``.
    """
    if int(every) < 1:
        raise ValueError(f"every must be a whole number >= 1, got {every!r}")
    angles, measured = wedge_angles(wedge, n=n)
    if every > 1:
        measured = every_kth(measured, angles, int(every))
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
    methods=("fbp", "sart", "sirt", "tv", "inpaint", "refine", "gan", "unrolled"),
    *,
    kinds=EVALUATED_KINDS,
    wedges=(30.0, 45.0, 60.0),
    doses=(1e4, 1e3),
    sparse=(1,),
    count: int = 4,
    n: int = 128,
    inpainter=None,
    refiner=None,
    unrolled=None,
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
        Counts per pixel at the sinogram mean (``inf``: noise-free).
    sparse : sequence of int
        Sparse tilts: every k-th measured angle kept (1: all; :func:`phantom_set`).
    count : int
        Phantoms per kind.
    n : int
        Size [px].
    inpainter, refiner, unrolled : str or Path, optional
        Network weights (default the shipped ones).
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per phantom and method: ``kind``, ``held_out``, ``wedge``, ``dose``,
        ``every``, ``method``, ``psnr``, ``ssim``, ``seconds`` (per slice, batched where the
        method batches).
    """
    rows = []
    cases = list(product(wedges, doses, sparse))
    with progress_bar(total=len(cases) * len(methods), desc="tomography methods", disable=not progress) as bar:
        for wedge, dose, every in cases:
            s = phantom_set(kinds, count, wedge=wedge, dose=dose, n=n, every=every)
            for method in methods:
                nets = {"inpainter": inpainter, "refiner": refiner} if method in ("inpaint", "refine", "gan") else {}
                if method == "unrolled":
                    nets = {"unrolled": unrolled}
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
                            "every": int(every),
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


def learned_gain(table: pd.DataFrame, method: str = "unrolled") -> pd.DataFrame:
    """A learned method against the best classical method, case by case.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`evaluate`'s rows (one wedge, dose and sparsity per case).
    method : str
        The learned method.

    Returns
    -------
    pandas.DataFrame
        Per ``kind``, ``wedge``, ``dose`` and ``every``: ``best_classical`` (the classical
        method of highest mean PSNR there), its ``psnr_classical``, ``ssim_classical`` and
        ``seconds_classical``, the learned method's ``psnr``, ``ssim``, ``seconds``, and
        ``gain_db`` = psnr - psnr_classical, ``ssim_gain``.
    """
    keys = [k for k in ("kind", "wedge", "dose", "every") if k in table.columns]
    means = table.groupby([*keys, "method"], sort=False)[["psnr", "ssim", "seconds"]].mean().reset_index()
    if method not in set(means.method):
        raise ValueError(f"the table holds no {method!r} rows; its methods: {sorted(set(means.method))}")
    rows = []
    for case, part in means.groupby(keys, sort=False):
        part = part.set_index("method")
        classical = part.loc[[m for m in CLASSICAL if m in part.index]]
        if method not in part.index or not len(classical):
            continue
        best = classical.psnr.idxmax()
        ours = part.loc[method]
        rows.append(
            {
                **dict(zip(keys, case)),
                "best_classical": best,
                "psnr_classical": float(classical.psnr[best]),
                "ssim_classical": float(classical.ssim[best]),
                "seconds_classical": float(classical.seconds[best]),
                "psnr": float(ours.psnr),
                "ssim": float(ours.ssim),
                "seconds": float(ours.seconds),
                "gain_db": float(ours.psnr - classical.psnr[best]),
                "ssim_gain": float(ours.ssim - classical.ssim[best]),
            }
        )
    return pd.DataFrame(rows)


def withheld_projection_error(series, angles, methods: dict, *, withheld=None, progress: bool = True) -> pd.DataFrame:
    """Score reconstructions of a measured tilt series by the projections they were not given.

    A real series has no ground truth; what it has is more projections than any one
    reconstruction needs to be tested. Each projection in ``withheld`` is left out in
    turn, the slices are reconstructed from the others, projected at the left-out angle
    and compared with the measured projection: the relative squared error
    ``‖A_i x − b_i‖² / ‖b_i‖²`` (no scale fitted: a reconstruction must also get the
    densities right). Interior projections test filling the gaps between tilts; the
    outermost ones test extrapolation into the missing wedge.

    Parameters
    ----------
    series : array_like
        ``(n_angles, n_slices, n_detector)`` (tilt, y, x): ``series[:, j, :]`` is the
        sinogram of slice ``j`` (take a band of slices to keep it quick).
    angles : array_like
        [deg], one per tilt, ascending.
    methods : dict
        Label -> (method, options) for :func:`~atomtools.tomo.reconstruction.reconstruct`,
        e.g. ``{"tv (0.05)": ("tv", {"weight": 0.05})}``.
    withheld : sequence of int, optional
        Indices of the projections to leave out, one at a time; default every interior one.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per label and withheld projection: ``label``, ``method``, ``angle`` [deg],
        ``error`` (relative squared error) and ``seconds`` (per slice).
    """
    data = np.asarray(series, np.float32)
    angles = np.asarray(angles, float).ravel()
    if data.ndim != 3 or data.shape[0] != len(angles):
        raise ValueError(f"series must be (n_angles, n_slices, n_detector) with {len(angles)} tilts, got {data.shape}")
    sinograms = np.ascontiguousarray(data.transpose(1, 0, 2))  # (slice, tilt, x)
    withheld = list(range(1, len(angles) - 1)) if withheld is None else [int(i) for i in withheld]
    rows = []
    with progress_bar(total=len(methods) * len(withheld), desc="withheld projections", disable=not progress) as bar:
        for i in withheld:
            keep = np.arange(len(angles)) != i
            measured = sinograms[:, i]
            for label, (method, options) in methods.items():
                start = time.perf_counter()
                slices = reconstruct(sinograms[:, keep], angles[keep], method=method, **options)
                seconds = (time.perf_counter() - start) / len(slices)
                predicted = Projector(slices.shape[-1], [angles[i]]).forward(slices)[:, 0]
                error = float(((predicted - measured) ** 2).sum() / max((measured**2).sum(), 1e-12))
                rows.append(
                    {"label": label, "method": method, "angle": float(angles[i]), "error": error, "seconds": seconds}
                )
                bar.update()
    return pd.DataFrame(rows)


def _records(table: pd.DataFrame) -> list[dict]:
    """Rows as JSON-able dicts: a noise-free dose (``inf``) becomes None (JSON has no infinity)."""
    return [
        {k: (None if isinstance(v, float) and np.isinf(v) else v) for k, v in row.items()}
        for row in table.to_dict("records")
    ]


def tomography_metrics(
    table: pd.DataFrame,
    protocol: pd.DataFrame,
    *,
    wedge: float = 45.0,
    gains: pd.DataFrame | None = None,
    real: pd.DataFrame | None = None,
) -> dict:
    """The tomography part of an evaluation's metrics, with its headline.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`evaluate`'s rows.
    protocol : pandas.DataFrame
        :func:`source_protocol`'s table.
    wedge : float
        The wedge [degrees] of the headline comparison (one of ``table``'s).
    gains : pandas.DataFrame, optional
        :func:`learned_gain` of the project's own model on the held-out kinds.
    real : pandas.DataFrame, optional
        :func:`withheld_projection_error` of a real tilt series.

    Returns
    -------
    dict
        ``by_case`` (mean PSNR, SSIM and seconds per held-out flag, wedge, dose, sparsity
        and method), ``at_<wedge>`` (per method, all kinds and doses, and on held-out
        kinds), ``best_classical_at_<wedge>`` (the classical method of highest mean PSNR
        there), ``source_protocol``, ``data_range``, ``learned_gain`` and
        ``real_series`` (where given; a noise-free dose is written as null) and
        ``headline`` (the joint model's PSNR minus the best classical method's and minus
        FBP's [dB]; the unrolled model's gain over the best classical method per case of
        ``gains``).
    """
    at = table[table.wedge == wedge]
    if not len(at):
        raise ValueError(f"wedge {wedge} degrees is not among the table's wedges {sorted(set(table.wedge))}")
    means = at.groupby("method").psnr.mean()
    best = str(means[[m for m in CLASSICAL if m in means.index]].idxmax())
    label = f"{wedge:g}"
    by_case = (
        table.groupby([k for k in ("held_out", "wedge", "dose", "every", "method") if k in table.columns])
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
    extra = {}
    if gains is not None and len(gains):
        extra["learned_gain"] = _records(gains)
        for r in gains.itertuples():
            dose = "noise-free" if not np.isfinite(r.dose) else f"{r.dose:g} counts"
            key = f"tomography @{r.wedge:g}°, {r.kind}, {dose}: unrolled minus best classical ({r.best_classical}) [dB]"
            headline[key] = round(float(r.gain_db), 2)
    if real is not None and len(real):
        extra["real_series"] = (
            real.groupby("label", sort=False)[["error", "seconds"]].mean().reset_index().to_dict("records")
        )
    return {
        **extra,
        "by_case": _records(by_case),
        f"at_{label}": per_method,
        f"best_classical_at_{label}": best,
        "source_protocol": protocol.to_dict("records"),
        "data_range": DATA_RANGE,
        "headline": headline,
    }

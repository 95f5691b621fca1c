"""Evaluation of column retrieval on a held-out simulated test set, against dose.

Every test image is re-noised at each dose of a list (the same clean image at every
dose, so the curves compare like with like), then the network and the classical
baseline retrieve its columns, and both are scored against the exact ground truth
with the same metrics (:mod:`atomtools.core.metrics`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..core.imaging import poisson_noise
from ..core.materials import material as _material
from ..core.metrics import (
    atoms_recovered,
    column_scores,
    count_breakdown,
    interval_sets,
    match_columns,
    pixel_calibration,
    summarize,
    thick_summary,
)
from ..models import COUNTER_FORMAT, load_model, save_model
from ..simulation import SimulationConfig
from ..storage import Dataset
from ..utils import progress_bar
from . import baseline as _baseline
from . import counter_task, counting
from .domain import OutOfDomainWarning
from .reconstruct import to_atoms
from .retrieval import load_retriever, retrieve

#: Particle kinds whose columns all start on one base plane (the rest: symmetric about the mid-plane).
FLAT_BASE = ("flat", "stepped", "sawtooth", "wedge")

#: What a user may know of the optics, by name: the conditions handed to the counter.
#: ``estimated``: the same as ``no_defocus``, the defocus read from the frame
#: (:func:`atomtools.columns.counting.estimate_defocus`); in the others it stays unknown.
KNOWN = {
    "optics": ("defocus", "Cs", "C5", "focal_spread", "aperture"),
    "estimated": ("Cs", "C5", "focal_spread", "aperture"),
    "no_defocus": ("Cs", "C5", "focal_spread", "aperture"),
    "none": (),
}

#: Mistilt classes of the by-tilt tables [degrees]: the nearest of these.
TILT_CLASSES = (0.0, 0.5, 1.0, 2.0)

__all__ = [
    "FLAT_BASE",
    "at_dose",
    "out_of_range",
    "calibrate_baseline",
    "evaluate",
    "best_model",
    "summary_by",
    "column_level",
    "KNOWN",
    "TILT_CLASSES",
    "by_count",
    "headline",
    "describe_counts",
    "describe_thickness",
    "calibrate_sets",
]


def out_of_range(train: SimulationConfig, *, shape=None, images_per_structure: int | None = None) -> SimulationConfig:
    """A test-set configuration that reaches beyond the training ranges.

    Wider particle sizes, stronger mistilt, defocus and Cs on both sides of the training
    range, more focal spread, more vacancies and supports.

    Parameters
    ----------
    train : SimulationConfig
        The training set's configuration.
    shape : two int, optional
        Image size of the test set [px] (default the training one).
    images_per_structure : int, optional
        Images per test structure (default the training one).

    Returns
    -------
    SimulationConfig
        A copy of ``train`` with the wider ranges.
    """

    def widen(r, lo, hi):
        return (min(r[0], lo), max(r[1], hi))

    return train.replace(
        shape=tuple(shape) if shape is not None else train.shape,
        images_per_structure=images_per_structure or train.images_per_structure,
        size=widen(train.size, train.size[0] * 0.8, train.size[1] * 1.1),
        tilt=train.tilt * 1.5,
        defocus=widen(train.defocus, train.defocus[0] - 20.0, train.defocus[1] + 20.0),
        Cs=widen(train.Cs, train.Cs[0] * 1.3, train.Cs[1] * 0.4),
        C5=widen(train.C5, train.C5[0] * 0.5, train.C5[1] * 1.3),
        focal_spread=widen(train.focal_spread, train.focal_spread[0] * 0.75, train.focal_spread[1] * 1.2),
        vacancies={el: (lo, hi * 1.5) for el, (lo, hi) in train.vacancies.items()},
        support_probability=max(train.support_probability, 0.5),
    )


def at_dose(clean: np.ndarray, dose: float, sampling: float, seed) -> np.ndarray:
    """A clean image with shot noise at ``dose`` [e/Å²]; ``inf`` gives the noise-free image.

    Parameters
    ----------
    clean : numpy.ndarray
        Noise-free intensity, 1 in vacuum.
    dose : float
        Electron dose [e/Å²]; ``numpy.inf`` for none (the model's ceiling).
    sampling : float
        Pixel size [Å].
    seed : int or sequence of int
        Seed of the noise.

    Returns
    -------
    numpy.ndarray
        float32, shape of ``clean``: shot-noise counts (mean ``clean * dose * sampling**2``), or a
        copy of ``clean`` where ``dose`` is infinite.
    """
    if np.isinf(dose):
        return np.asarray(clean, np.float32).copy()
    return poisson_noise(clean, dose=float(dose), sampling=sampling, rng=np.random.default_rng(seed))


def calibrate_baseline(
    reference: Dataset, *, doses, n_images: int, seed: int
) -> dict[float, _baseline.IntensityCalibration]:
    """Intensity calibrations of the classical baseline, one per dose, on reference images.

    The references are simulated images of known counts (the training set), noised at
    the dose they will count at: the most favourable calibration the method can have.

    Parameters
    ----------
    reference : Dataset
        Simulated images with their truth.
    doses : sequence of float
        Electron doses [e/Å²].
    n_images : int
        Reference images used per dose.
    seed : int
        Seed of their noise.

    Returns
    -------
    dict of float to IntensityCalibration
        One calibration per dose [e/Å²], keyed by the dose as a float.
    """
    pick = np.linspace(0, len(reference) - 1, min(n_images, len(reference))).astype(int)
    tables = [reference.columns(int(i)) for i in pick]
    out = {}
    for k, dose in enumerate(doses):
        images = [at_dose(reference.clean[int(i)], dose, reference.sampling, [seed, 7, k, int(i)]) for i in pick]
        out[float(dose)] = _baseline.calibrate(images, tables, sampling=reference.sampling)
    return out


def evaluate(
    test: Dataset,
    *,
    model="pretrained",
    doses,
    calibrations: dict | None = None,
    seed: int = 0,
    match_radius: float = 0.7,
    progress: bool = True,
    keep_maps: int = 2,
    known: str = "optics",
    decode: bool = True,
    counter="auto",
    defocus_estimator="estimate",
    tilt="estimate",
) -> dict:
    """Score network and baseline on every test image at every dose.

    Parameters
    ----------
    test : Dataset
        The test set (its clean images and ground truth are used).
    model : "pretrained", path, ...
        The network (see :func:`atomtools.columns.retrieve`).
    doses : sequence of float
        Electron doses [e/Å²]; ``numpy.inf`` scores the noise-free images (the ceiling).
    calibrations : dict, optional
        Dose -> baseline calibration (:func:`calibrate_baseline`); no baseline without.
    seed : int
        Seed of the noise: image ``i`` at dose ``k`` draws from ``default_rng([seed, i, k])``.
    match_radius : float
        Matching radius of columns [Å].
    keep_maps : int
        Keep the noisy frames and maps of the first images for figures.
    progress : bool
        Show a progress bar.
    known : {"optics", "no_defocus", "none"}
        What the user is taken to know of each image's optics (:data:`KNOWN`), given to
        :func:`~atomtools.columns.retrieve` (the mistilt: see ``tilt``).
    decode : bool
        Particle decoding in the retrieval.
    counter : "auto", path, Counter or None
        The column counter (see :func:`~atomtools.columns.retrieve`).
    defocus_estimator : "estimate", path or Counter
        The defocus estimator of ``known="estimated"`` (``retrieve``'s ``defocus``);
        the other settings estimate no defocus.
    tilt : "estimate", "given", path, Counter or None
        The mistilt: read from the columns (``retrieve``'s ``tilt``: "estimate" the
        shipped estimator, or this one), ``"given"`` (each image's true mistilt, as if
        the user knew it) or None (unknown).

    Returns
    -------
    dict
        ``rows``: list of per-(image, dose, method) score dicts (with the image's
        parameters; the network's rows also carry the domain check's ``domain_score``
        and ``domain_alarm``: a test set's frames are scored, not warned about);
        ``pixels``: per dose, sampled per-pixel (confidence, correct) of the network
        near columns; ``examples``: frames, maps and tables for figures.
    """

    if known not in KNOWN:
        raise ValueError(f"known must be one of {sorted(KNOWN)}, got {known!r}")
    ret = load_retriever(model)
    mat = _material(test.attrs["config"]["material"])
    params = test.params
    rows, pixels, examples = [], {float(d): ([], []) for d in doses}, []
    bar = progress_bar(total=len(test) * len(doses), desc="evaluating", unit="frame", disable=not progress)
    for i in range(len(test)):
        truth = test.columns(i)
        clean = test.clean[i]
        labelled = "labels" in test.layout.names  # an independent test set has no label maps
        labels = test.labels[i] if labelled else None
        near = test.distance[i][0].astype(np.float32) < 1.0 if labelled else None
        p = params.iloc[i]
        true_atoms = test.atoms(i)
        surface = "bottom" if p["profile"] in FLAT_BASE else "center"
        info = {
            "image": i,
            "profile": p["profile"],
            "mean_count": float(p["mean_count"]),
            "max_count": int(p["max_count"]),
            "tilt": float(p["tilt"]),
            "defocus": float(p["defocus"]),
            "known": known,
        }
        optics = {name: float(p[name]) for name in KNOWN[known] if name in p}
        for k, dose in enumerate(doses):
            noisy = at_dose(clean, dose, test.sampling, [seed, i, k])
            with warnings.catch_warnings():  # a test set is scored, not warned about: the rows keep the verdict
                warnings.simplefilter("ignore", OutOfDomainWarning)
                table, maps = retrieve(
                    noisy,
                    sampling=test.sampling,
                    model=ret,
                    resample=True,
                    optics=optics,
                    decode=decode,
                    counter=counter,
                    defocus=defocus_estimator if known == "estimated" else None,
                    tilt=float(p["tilt"]) if isinstance(tilt, str) and tilt == "given" else tilt,
                )
            domain = maps.get("domain") or {}
            info_domain = {
                "domain_score": domain.get("score", float("nan")),
                "domain_alarm": bool(domain.get("message")),
            }
            if known == "estimated":
                estimate = (maps.get("counts") or {}).get("defocus")
                info_estimate = (
                    {"defocus_estimate": estimate["defocus"], "defocus_std": estimate["std"]} if estimate else {}
                )
            else:
                info_estimate = {}
            mistilt = (maps.get("counts") or {}).get("tilt")
            if mistilt is not None and len(mistilt["tilt"]):
                info_estimate = {**info_estimate, "tilt_estimate": float(np.median(mistilt["tilt"]))}
            s = column_scores(table, truth, radius=match_radius, channel=0)
            others = {}
            for ch, name in enumerate(mat.channel_names[1:], 1):
                s_ch = column_scores(table, truth, radius=match_radius, channel=ch)
                others.update({f"{name.lower()}_f1": s_ch["f1"], f"{name.lower()}_exact": s_ch["exact"]})
            model3d, rec = best_model(table, true_atoms, surface=surface, material=mat)
            rows.append(
                {
                    **info,
                    "dose": float(dose),
                    "method": "network",
                    **s,
                    **others,
                    "recovered_3d": rec,
                    **info_estimate,
                    **info_domain,
                }
            )
            if labelled:
                conf, correct = pixel_calibration(maps, labels, channel=0, mask=near)
                take = np.random.default_rng([seed, i, k, 1]).permutation(len(conf))[:2000]
                pixels[float(dose)][0].append(conf[take])
                pixels[float(dose)][1].append(correct[take])
            if calibrations is not None:
                cal = calibrations[float(dose)]
                b = _baseline.count_columns(noisy, sampling=test.sampling, calibration=cal)
                sb = column_scores(b, truth, radius=match_radius, channel=0)
                rows.append(
                    {
                        **info,
                        "dose": float(dose),
                        "method": "baseline",
                        **sb,
                        **{k: float("nan") for k in others},
                        "recovered_3d": float("nan"),
                    }
                )
            if i < keep_maps:
                examples.append(
                    {
                        "image": i,
                        "dose": float(dose),
                        "noisy": noisy,
                        "maps": maps,
                        "table": table,
                        "truth": truth,
                        "clean": clean,
                        "labels": labels,
                        "model3d": model3d,
                    }
                )
            bar.update()
    bar.close()
    pixels = {
        d: (np.concatenate(c) if c else np.zeros(0), np.concatenate(t) if t else np.zeros(0))
        for d, (c, t) in pixels.items()
    }
    return {"rows": rows, "pixels": pixels, "examples": examples}


def best_model(table, truth, *, surface: str, material="CeO2"):
    """The 3D model of a column table under the base-plane choice that matches ``truth`` best.

    One projection cannot tell which of the two staggered column sets starts on the
    base plane (:mod:`atomtools.columns.reconstruct`); both are built and the better
    is kept.

    Parameters
    ----------
    table : pandas.DataFrame
        Retrieved columns.
    truth : ase.Atoms
        The true model.
    surface : {"bottom", "center"}
        Where columns start (:func:`atomtools.columns.reconstruct.to_atoms`).
    material : Material or str
        The crystal.

    Returns
    -------
    (ase.Atoms or None, float)
        The model and its fraction of true atoms recovered.
    """
    if not len(table):
        return None, 0.0
    best = (None, -1.0)
    for parity in (0, 1):
        model = to_atoms(table, surface=surface, base_parity=parity, material=material)
        fraction = atoms_recovered(model, truth)["fraction"]
        if fraction > best[1]:
            best = (model, fraction)
    return best


def summary_by(rows: list[dict], keys=("method", "dose")) -> pd.DataFrame:
    """Pooled scores (:func:`atomtools.core.metrics.summarize`) for each group of ``keys``.

    Parameters
    ----------
    rows : list of dict
        Per-image scores from :func:`evaluate`.
    keys : sequence of str
        Grouping columns.

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``keys``, the pooled scores of :func:`atomtools.core.metrics.summarize`
        and ``recovered_3d`` (its mean over the group's images).
    """
    frame = pd.DataFrame(rows)
    out = []
    for key, group in frame.groupby(list(keys), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        pooled = summarize(group.to_dict("records"))
        pooled["recovered_3d"] = float(group["recovered_3d"].mean())
        out.append({**dict(zip(keys, key)), **pooled})
    return pd.DataFrame(out)


def column_level(rows: list[dict]) -> pd.DataFrame:
    """One row per matched column: method, dose, image, true and predicted count, confidence.

    Parameters
    ----------
    rows : list of dict
        Per-image scores from :func:`evaluate` (with their ``matches``).

    Returns
    -------
    pandas.DataFrame
        Columns ``method``, ``dose``, ``image``, ``true``, ``pred``, ``low``, ``high``, ``confidence``,
        ``profile`` and ``tilt``; empty (with these columns) where no column was matched.
    """
    names = ["method", "dose", "image", "true", "pred", "low", "high", "confidence", "profile", "tilt"]
    parts = [
        r["matches"].assign(method=r["method"], dose=r["dose"], image=r["image"], profile=r["profile"], tilt=r["tilt"])
        for r in rows
        if len(r["matches"])
    ]
    return pd.concat(parts, ignore_index=True)[names] if parts else pd.DataFrame(columns=names)


def _tilt_class(tilt) -> np.ndarray:
    tilt = np.asarray(tilt, float)
    classes = np.asarray(TILT_CLASSES)
    return classes[np.abs(tilt[:, None] - classes[None, :]).argmin(axis=1)]


def by_count(rows: list[dict], keys=("method", "dose"), *, max_count: int | None = 10) -> pd.DataFrame:
    """Counting scores by true count (and by group of ``keys``): the table every count evaluation reports.

    Parameters
    ----------
    rows : list of dict
        Per-image scores from :func:`evaluate`.
    keys : sequence of str
        Grouping columns of :func:`column_level`'s table; ``"tilt"`` groups by the nearest
        of :data:`TILT_CLASSES`.
    max_count : int, optional
        Thicker columns are pooled into one row ("or more").

    Returns
    -------
    pandas.DataFrame
        The keys, then :func:`atomtools.core.metrics.count_breakdown`'s columns (with the
        prediction sets' coverage and size).
    """
    cols = column_level(rows)
    if "tilt" in keys and len(cols):
        cols = cols.assign(tilt=_tilt_class(cols["tilt"]))
    parts = []
    for key, group in cols.groupby(list(keys), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        table = count_breakdown(group["true"], group["pred"], low=group["low"], high=group["high"], max_count=max_count)
        parts.append(table.assign(**dict(zip(keys, key)))[[*keys, *table.columns]])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def headline(rows: list[dict], keys=("method", "dose"), *, min_count: int = 3) -> pd.DataFrame:
    """The headline of a count evaluation: columns of ``min_count`` or more atoms, per group.

    Pooled and balanced-over-counts exactness, within-one, mean error [atoms], and the
    prediction sets' coverage and size (:func:`atomtools.core.metrics.thick_summary`),
    beside the detection F1 of the group.

    Parameters
    ----------
    rows : list of dict
        Per-image scores from :func:`evaluate`.
    keys : sequence of str
        Grouping columns (``"tilt"``: by the nearest of :data:`TILT_CLASSES`).
    min_count : int
        Thinnest column counted in [atoms].

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``keys``, the group's detection ``f1``, the scores of
        :func:`atomtools.core.metrics.thick_summary` and ``exact_all`` (exactness over all counts).
    """
    cols = column_level(rows)
    if "tilt" in keys and len(cols):
        cols = cols.assign(tilt=_tilt_class(cols["tilt"]))
    out = []
    for key, group in cols.groupby(list(keys), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        pooled = summarize([r for r in rows if all(_key_of(r, k) == v for k, v in zip(keys, key))])
        thick = thick_summary(group["true"], group["pred"], low=group["low"], high=group["high"], min_count=min_count)
        out.append({**dict(zip(keys, key)), "f1": pooled["f1"], **thick, "exact_all": pooled["exact"]})
    return pd.DataFrame(out)


def _key_of(row: dict, key: str):
    return float(_tilt_class([row["tilt"]])[0]) if key == "tilt" else row[key]


def calibrate_sets(
    counter_weights,
    frames: list[tuple],
    *,
    model="pretrained",
    doses=(100.0, 20000.0),
    seed: int = 0,
    match_radius: float = 0.7,
    progress: bool = True,
) -> dict:
    """Conformal levels of decoded counts, calibrated on held-out frames, written into the counter's weights.

    The counter's own levels come from its training (patches of held-out structures); the
    decoded probabilities of whole particles are sharper and need their own. Each frame is
    noised at a dose drawn log-uniformly, retrieved with its optics given and decoding on,
    and its Ce columns matched to the truth.

    Parameters
    ----------
    counter_weights : str or Path
        The counter's weights file; its ``conformal["decoded"]`` is (re)written.
    frames : list of (Dataset, int)
        Held-out images (structures the counter did not train on).
    model : "pretrained", path, ...
        The U-Net that finds the columns.
    doses : (float, float)
        Range of the doses [e/Å²].
    seed : int
        Seed of doses and noise.
    match_radius : float
        Matching radius [Å].
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The conformal table (``coverage``, ``level``, ``n``) and ``empirical`` coverage of
        the counter's own (independent) 90 % level on these columns.
    """
    counter = counting.load_counter(counter_weights)
    probs, classes = [], []
    bar = progress_bar(total=len(frames), desc="calibrating sets", unit="frame", disable=not progress)
    for k, (store, i) in enumerate(frames):
        rng = np.random.default_rng([seed, k])
        dose = float(np.exp(rng.uniform(*np.log(doses))))
        noisy = at_dose(store.clean[i], dose, store.sampling, [seed, k, 1])
        p = store.params.iloc[i]
        optics = {name: float(p[name]) for name in KNOWN["optics"]}
        table, maps = retrieve(
            noisy, sampling=store.sampling, model=model, resample=True, optics=optics, counter=counter
        )
        bar.update()
        info = maps["counts"]
        truth = store.columns(i)
        truth = truth[truth.channel == 0]
        if info is None or not info["applied"].any() or not len(truth):
            continue
        rows = info["rows"][info["applied"]]  # columns of particles the prior was applied to
        ip, it = match_columns(table[["x", "y"]].to_numpy()[rows], truth[["x", "y"]].to_numpy(), radius=match_radius)
        ip = np.flatnonzero(info["applied"])[ip]
        probs.append(info["probabilities"][ip])
        classes.append(np.clip(truth["count"].to_numpy()[it], 1, counter.max_count) - 1)
    bar.close()
    if not probs or not sum(len(c) for c in classes):
        raise ValueError(f"calibrate_sets: no decoded column matched the truth in {len(frames)} frames")
    probs, classes = np.concatenate(probs), np.concatenate(classes)
    table = counter_task.conformal_table(probs, classes)
    low, high = interval_sets(probs, level=counter.level(0.9))
    empirical = float(np.mean((classes >= low) & (classes <= high)))
    net, meta = load_model(counter_weights, expected=COUNTER_FORMAT)
    meta.pop("format", None)
    meta.pop("config", None)
    meta["conformal"] = {**(meta.get("conformal") or {}), "decoded": table}
    save_model(counter_weights, net, metadata=meta)
    return {**table, "empirical": empirical}


def describe_counts(
    counts: pd.DataFrame, tilts: pd.DataFrame, *, setting: str, min_exact: float = 0.6, max_bias: float = 0.3
) -> str:
    """What a setting resolves and what it does not, in a sentence from its by-count and by-mistilt tables.

    Parameters
    ----------
    counts : pandas.DataFrame
        :func:`by_count` rows (``count``, ``n``, ``exact``, ``within_one``) with a ``setting`` column.
    tilts : pandas.DataFrame
        :func:`headline` rows by ``tilt`` (``exact``, ``mean_error``) with a ``setting`` column.
    setting : str
        The setting described.
    min_exact : float
        Exact-count fraction from which a count is called resolved.
    max_bias : float
        Largest mean error [atoms] at a mistilt still called unbiased.

    Returns
    -------
    str
        Plain text: the counts resolved (exact at least ``min_exact``), those not, and the
        mistilts whose mean error is beyond ``max_bias``.

    Examples
    --------
    >>> c = pd.DataFrame({"setting": "s", "count": [3, 4, 5], "n": [10, 10, 10],
    ...                   "exact": [0.8, 0.7, 0.4], "within_one": [1.0, 1.0, 0.9]})
    >>> t = pd.DataFrame({"setting": "s", "tilt": [0.0, 1.0], "exact": [0.5, 0.8], "mean_error": [0.4, 0.0]})
    >>> describe_counts(c, t, setting="s")  # doctest: +NORMALIZE_WHITESPACE
    's: columns of 3-4 atoms are counted exactly 70-80 % of the time (within one atom 100 %); 5 atoms is not
    resolved (exact 40 %, within one 90 %). At 0 degrees of mistilt the counts are biased by +0.40 atoms (exact 50 %).'
    """
    rows = counts[(counts.setting == setting) & (counts.n > 0)].sort_values("count")
    good, bad = rows[rows.exact >= min_exact], rows[rows.exact < min_exact]

    def span(frame) -> str:
        values = frame["count"].astype(int).tolist()
        if values == [1]:
            return "1"
        return (
            f"{values[0]}-{values[-1]}"
            if len(values) > 1 and values == list(range(values[0], values[-1] + 1))
            else (", ".join(map(str, values)))
        )

    def pct(lo, hi) -> str:
        lo, hi = round(100 * lo), round(100 * hi)
        return f"{lo} %" if lo == hi else f"{lo}-{hi} %"

    parts = []
    if len(good):
        unit = "atom" if span(good) == "1" else "atoms"
        parts.append(
            f"columns of {span(good)} {unit} are counted exactly {pct(good.exact.min(), good.exact.max())} of the time "
            f"(within one atom {pct(good.within_one.min(), good.within_one.max())})"
        )
    if len(bad):
        verb, unit = ("is", "atom" if span(bad) == "1" else "atoms") if len(bad) == 1 else ("are", "atoms")
        parts.append(
            f"{span(bad)} {unit} {verb} not resolved (exact {pct(bad.exact.min(), bad.exact.max())}, "
            f"within one {pct(bad.within_one.min(), bad.within_one.max())})"
        )
    text = f"{setting}: " + "; ".join(parts) + "."
    biased = tilts[(tilts.setting == setting) & (tilts.mean_error.abs() > max_bias)].sort_values("tilt")
    for row in biased.itertuples():
        degrees = "degree" if row.tilt == 1 else "degrees"
        text += (
            f" At {row.tilt:g} {degrees} of mistilt the counts are biased by {row.mean_error:+.2f} atoms "
            f"(exact {100 * row.exact:.0f} %)."
        )
    if not len(biased):
        text += f" No mistilt biases the counts by more than {max_bias:g} atoms."
    return text


def describe_thickness(table: pd.DataFrame, *, dose: str) -> str:
    """Where the network and the baseline each count better, by true thickness, in a sentence.

    Parameters
    ----------
    table : pandas.DataFrame
        Exact-count fraction by true count (rows) and (method, dose) columns, as 04 builds it.
    dose : str
        The dose column compared (``"noise-free"`` or a dose as written in the table).

    Returns
    -------
    str
        The counts where the baseline is ahead (or that it is nowhere ahead).

    Examples
    --------
    >>> cols = pd.MultiIndex.from_tuples([("network", "1000"), ("baseline", "1000")], names=["method", "dose"])
    >>> t = pd.DataFrame([[0.9, 0.5], [0.2, 0.4]], index=pd.Index([2, 9], name="true"), columns=cols)
    >>> describe_thickness(t, dose="1000")
    'At 1000: the network counts better at 2 atoms; the baseline at 9 atoms.'
    """
    net, base = table[("network", dose)], table[("baseline", dose)]
    both = pd.DataFrame({"net": net, "base": base}).dropna()
    ahead = both.index[both.base > both.net].astype(int).tolist()
    behind = both.index[both.base <= both.net].astype(int).tolist()
    text = f"At {dose}: the network counts better at {', '.join(map(str, behind)) or 'no'} atoms"
    return text + (f"; the baseline at {', '.join(map(str, ahead))} atoms." if ahead else "; the baseline nowhere.")

"""Counting the atoms of detected columns with what is known of the imaging conditions.

The U-Net finds columns; counting them is a different question, and one that the
patch alone cannot answer: the same contrast means different counts under different
optics and mistilt, and HRTEM contrast stops growing with thickness beyond a few
atoms. The counter (:class:`atomtools.models.ColumnCounter`) reads the patch around
each column together with the *conditions*: defocus, Cs, C5, focal spread, aperture and
mistilt, each given or not. What a user gives goes in; what is not given is marked
unknown and the counter answers for the whole training range of it.

Its probabilities over counts go on to the particle decoding
(:mod:`atomtools.core.chords`) and to prediction sets calibrated on held-out
structures (:func:`atomtools.core.metrics.interval_sets`).

Training: :func:`patch_dataset` cuts the patches of exact columns out of simulated
frames (each at several doses and noise-free), :func:`train_counter` trains on them
with :func:`atomtools.training.fit` (resumable, bit-identical), calibrates a
temperature and the conformal level on held-out structures, and writes the weights.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.imaging import Optics, normalize
from ..core.metrics import conformal_level, interval_sets
from ..data import fetch
from ..models import COUNTER_FORMAT, ColumnCounter, CounterConfig, fuse_counter, load_model, save_model
from ..training import OptimizerSpec, Task, fit
from ..training.calibration import fit_temperature
from ..utils import Record, progress_bar

__all__ = [
    "CONDITIONS",
    "PRETRAINED_COUNTER",
    "PRETRAINED_DEFOCUS",
    "Counter",
    "CounterTrainConfig",
    "COVERAGES",
    "conformal_table",
    "held_out_structures",
    "condition_vector",
    "column_patches",
    "patch_dataset",
    "train_counter",
    "load_counter",
    "count_probabilities",
    "prediction_table",
    "DEFOCUS_BINS",
    "defocus_classes",
    "pool_defocus",
    "estimate_defocus",
    "marginal_probabilities",
    "calibrate_pooling",
]

#: Manifest name of the shipped counter.
PRETRAINED_COUNTER = "counter-ceo2"

#: Manifest name of the shipped defocus estimator (a counter trained with ``target="defocus"``).
PRETRAINED_DEFOCUS = "defocus-ceo2"

#: The imaging conditions a counter is conditioned on, and the scale each is divided by.
CONDITIONS = {
    "defocus": 50.0,  # [Å], positive underfocus (abTEM)
    "Cs": 1e5,  # [Å]
    "C5": 5e7,  # [Å]
    "focal_spread": 30.0,  # [Å], a standard deviation
    "aperture": 30.0,  # [mrad]
    "tilt": 1.0,  # mistilt from the zone axis [degrees]
}

#: Classes of a defocus estimator (a counter trained with ``target="defocus"``): bin
#: centres over the counter's training range [Å], 10 Å apart.
DEFOCUS_BINS = tuple(float(v) for v in np.arange(-110.0, 10.1, 10.0))


def defocus_classes(defocus) -> np.ndarray:
    """Index of the nearest :data:`DEFOCUS_BINS` centre of each defocus [Å] (0-based).

    Parameters
    ----------
    defocus : float or array-like
        Defocus values [Å].

    Examples
    --------
    >>> defocus_classes([-112.0, -54.0, 40.0]).tolist()
    [0, 6, 12]
    """
    centres = np.asarray(DEFOCUS_BINS)
    d = np.asarray(defocus, float).reshape(-1)
    return np.abs(d[:, None] - centres[None, :]).argmin(axis=1)


def _given(optics: Optics | dict | None) -> dict:
    """What is known of the optics as a dict (an Optics knows everything but an infinite aperture)."""
    if isinstance(optics, Optics):
        given = {k: getattr(optics, k) for k in CONDITIONS if k != "tilt"}
        if not np.isfinite(given["aperture"]):
            given.pop("aperture")
        return given
    return dict(optics or {})


def condition_vector(optics: Optics | dict | None = None, *, tilt: float | None = None) -> np.ndarray:
    """The counter's conditions: each known value scaled, then a flag per value (1 known, 0 not).

    Parameters
    ----------
    optics : Optics or dict, optional
        What is known of the optics: an :class:`~atomtools.core.imaging.Optics` (every
        value known) or a dict with some of ``defocus``, ``Cs``, ``C5``,
        ``focal_spread`` [Å] and ``aperture`` [mrad] (the rest unknown); None: nothing.
    tilt : float, optional
        Mistilt of the particle from the zone axis [degrees], if known.

    Returns
    -------
    numpy.ndarray
        (12,) float32: six scaled values, then six known flags.

    Raises
    ------
    ValueError
        For an unknown name or a value that is not a finite number.

    Examples
    --------
    >>> condition_vector({"defocus": -50.0, "Cs": -1e5}).tolist()[:2], condition_vector({"Cs": -1e5})[6:].tolist()
    ([-1.0, -1.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    given = _given(optics)
    unknown = set(given) - set(CONDITIONS) - {"energy", "astigmatism", "astigmatism_angle"}
    if unknown:
        raise ValueError(f"optics: unknown {sorted(unknown)}; a counter takes {sorted(CONDITIONS)}")
    if tilt is not None:
        given["tilt"] = tilt
    values, known = np.zeros(len(CONDITIONS), np.float32), np.zeros(len(CONDITIONS), np.float32)
    for k, (name, scale) in enumerate(CONDITIONS.items()):
        if given.get(name) is None:
            continue
        value = float(given[name])
        if not np.isfinite(value):
            raise ValueError(f"optics[{name!r}] must be a finite number, got {given[name]!r}")
        values[k], known[k] = value / scale, 1.0
    return np.concatenate([values, known])


def column_patches(frame: np.ndarray, rows, cols, *, sampling: float, patch: int, patch_sampling: float) -> np.ndarray:
    """Patches centred on sub-pixel column positions, resampled to the counter's pixel size.

    Each output pixel is the mean of 2 x 2 bilinear samples (an area average: the noise of
    the frame is not aliased into the patch; a frame pixel's intensity spreads over the
    patch pixels it overlaps).

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) normalized frame.
    rows, cols : array-like
        Column centres [px].
    sampling : float
        Pixel size of the frame [Å].
    patch : int
        Side of the patches [px of ``patch_sampling``], odd.
    patch_sampling : float
        Their pixel size [Å].

    Returns
    -------
    numpy.ndarray
        (N, patch, patch) float32.

    Examples
    --------
    >>> frame = np.zeros((40, 40)); frame[20, 20] = 4.0
    >>> p = column_patches(frame, [20.0], [20.0], sampling=0.16, patch=5, patch_sampling=0.32)
    >>> p.shape, float(p[0].sum()), int(p[0].argmax())
    ((1, 5, 5), 1.0, 12)
    """
    from scipy.ndimage import map_coordinates

    rows, cols = np.asarray(rows, float).ravel(), np.asarray(cols, float).ravel()
    step = patch_sampling / 2 / sampling  # fine grid [px]
    offsets = (np.arange(2 * patch) - patch + 0.5) * step
    rr = rows[:, None, None] + offsets[None, :, None]
    cc = cols[:, None, None] + offsets[None, None, :]
    rr, cc = np.broadcast_arrays(rr, cc)
    fine = map_coordinates(np.asarray(frame, np.float32), [rr.ravel(), cc.ravel()], order=1, mode="nearest")
    fine = fine.reshape(len(rows), patch, 2, patch, 2)
    return fine.mean(axis=(2, 4)).astype(np.float32)


def patch_dataset(
    stores,
    *,
    channel: int = 0,
    doses=((None,), (100.0, 3000.0), (300.0, 20000.0)),
    patch: int = 13,
    patch_sampling: float = 0.32,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Patches of the exact columns of simulated frames, each frame at several doses.

    Parameters
    ----------
    stores : Dataset or sequence of Dataset
        Simulated images with their truth.
    channel : int
        Label channel whose columns are cut (0: the principal species).
    doses : sequence of tuple
        One entry per version of each frame: ``(None,)`` noise-free, ``(low, high)`` a dose
        drawn log-uniformly [e/Å²].
    patch, patch_sampling
        As for :func:`column_patches`.
    seed : int
        Seed of the doses and the noise: frame ``i`` of store ``s`` draws from
        ``default_rng([seed, s, i])``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``patch`` (N, P, P) float16, ``count`` (N,) int, ``conditions`` (N, 6) float32
        raw values (:data:`CONDITIONS` order), ``dose`` (N,) [e/Å², inf noise-free],
        ``structure`` (N,) a global structure id (for held-out splits), ``store`` (N,).
    """
    from ..core.imaging import poisson_noise

    stores = list(stores) if isinstance(stores, list | tuple) else [stores]
    out = {k: [] for k in ("patch", "count", "conditions", "dose", "structure", "store")}
    bar = progress_bar(total=sum(len(s) for s in stores), desc="cutting patches", unit="image", disable=not progress)
    for s, store in enumerate(stores):
        params = store.params
        for i in range(len(store)):
            truth = store.columns(i)
            truth = truth[truth.channel == channel]
            bar.update()
            if not len(truth):
                continue
            p = params.iloc[i]
            cond = np.array([p[k] for k in CONDITIONS], np.float32)
            clean = np.asarray(store.clean[i], np.float32)
            rng = np.random.default_rng([seed, s, i])
            for low_high in doses:
                dose = np.inf if low_high[0] is None else float(np.exp(rng.uniform(*np.log(low_high))))
                frame = clean if np.isinf(dose) else poisson_noise(clean, dose=dose, sampling=store.sampling, rng=rng)
                patches = column_patches(
                    normalize(frame),
                    truth["row"].to_numpy(),
                    truth["col"].to_numpy(),
                    sampling=store.sampling,
                    patch=patch,
                    patch_sampling=patch_sampling,
                )
                n = len(truth)
                out["patch"].append(patches.astype(np.float16))
                out["count"].append(truth["count"].to_numpy(int))
                out["conditions"].append(np.repeat(cond[None], n, axis=0))
                out["dose"].append(np.full(n, dose, np.float32))
                out["structure"].append(np.full(n, s * 1_000_000 + int(p["structure"]), np.int64))
                out["store"].append(np.full(n, s, np.int16))
    bar.close()
    data = {k: np.concatenate(v) for k, v in out.items()}
    data["patch_sampling"] = patch_sampling
    return data


@dataclass(frozen=True)
class CounterTrainConfig(Record):
    """How a counter is trained.

    Attributes
    ----------
    steps : int
        Optimizer steps.
    batch_size : int
        Patches per step.
    lr : float
        Peak AdamW learning rate (cosine decay).
    seed : int
        Seed of the network and of every batch.
    p_known : float
        Chance that each condition is given to the network in a training sample;
        besides, a quarter of the samples get none and a quarter all of them.
    smoothing : float
        Target mass moved from the true count to its two neighbours (ordinal smoothing).
    validate_every : int
        Steps between validations.
    checkpoint_every : float
        Seconds between checkpoints.
    """

    steps: int = 6000
    batch_size: int = 512
    lr: float = 3e-3
    seed: int = 0
    p_known: float = 0.6
    smoothing: float = 0.1
    validate_every: int = 500
    checkpoint_every: float = 120.0


def held_out_structures(structure, *, seed: int, fraction: float) -> np.ndarray:
    """The structure ids a counter's training keeps out (for validation and calibration).

    Parameters
    ----------
    structure : array-like
        Global structure id of every patch (:func:`patch_dataset`).
    seed : int
        The training seed.
    fraction : float
        Fraction of the structures held out.

    Examples
    --------
    >>> held_out_structures(np.repeat(np.arange(10), 3), seed=0, fraction=0.2).size
    2
    """
    structures = np.unique(np.asarray(structure))
    rng = np.random.default_rng([seed, 99])
    return rng.choice(structures, max(1, int(round(fraction * len(structures)))), replace=False)


def _scaled_conditions(raw: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Scaled conditions where ``known`` (rows: samples), zero elsewhere, then the known flags."""
    scales = np.array(list(CONDITIONS.values()), np.float32)
    return np.concatenate([np.where(known, raw / scales, 0.0), known], axis=1).astype(np.float32)


def _masked_conditions(raw: np.ndarray, rng: np.random.Generator, p_known: float, hidden=()) -> np.ndarray:
    """Scaled conditions with random known flags (rows: samples); ``hidden`` names are never known."""
    n = len(raw)
    known = rng.random((n, len(CONDITIONS))) < p_known
    mode = rng.random(n)
    known[mode < 0.25] = False
    known[mode > 0.75] = True
    known[:, _hidden_columns(hidden)] = False
    return _scaled_conditions(raw, known)


def _hidden_columns(hidden) -> list[int]:
    names = list(CONDITIONS)
    return [names.index(h) for h in hidden]


def _targets(counts: torch.Tensor, n_classes: int, smoothing: float) -> torch.Tensor:
    cls = counts.clamp(1, n_classes) - 1
    t = torch.zeros(len(cls), n_classes)
    t.scatter_(1, cls[:, None], 1.0 - smoothing)
    lower, upper = (cls - 1).clamp(min=0), (cls + 1).clamp(max=n_classes - 1)
    t.scatter_add_(1, lower[:, None], torch.full((len(cls), 1), smoothing / 2))
    t.scatter_add_(1, upper[:, None], torch.full((len(cls), 1), smoothing / 2))
    return t


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def train_counter(
    data: dict,
    out: str | Path,
    *,
    model_config: CounterConfig = CounterConfig(),
    config: CounterTrainConfig = CounterTrainConfig(),
    held_out: float = 0.1,
    coverage: float = 0.9,
    progress: bool = True,
    metadata: dict | None = None,
    target: str = "count",
) -> dict:
    """Train a column counter on patches, calibrate it on held-out structures, write the weights.

    The same network and training read the defocus instead (``target="defocus"``): a
    defocus estimator, whose classes are :data:`DEFOCUS_BINS` and which is never told
    the defocus; :func:`estimate_defocus` pools its answers over a frame's columns.

    Parameters
    ----------
    data : dict
        From :func:`patch_dataset`.
    out : str or Path
        The weights file; ``<out>.ckpt`` keeps the resumable state, ``<out>.csv`` the history.
    model_config : CounterConfig
        The network.
    config : CounterTrainConfig
        The training.
    held_out : float
        Fraction of the structures kept out of training, for validation and calibration.
    coverage : float
        Coverage of the prediction sets calibrated on them (0.9: 90 %).
    progress : bool
        Show a progress bar.
    metadata : dict, optional
        Further metadata stored with the weights (training data, ...).
    target : {"count", "defocus"}
        What the network learns: the column's atom count, or the frame's defocus class.

    Returns
    -------
    dict
        ``validation`` numbers, ``temperature`` and ``conformal_level``.
    """
    out = Path(out)
    n_cls = model_config.n_classes
    if target not in ("count", "defocus"):
        raise ValueError(f"target must be 'count' or 'defocus', got {target!r}")
    hidden = ("defocus",) if target == "defocus" else ()
    if target == "defocus":
        if n_cls != len(DEFOCUS_BINS):
            raise ValueError(f"a defocus estimator needs n_classes={len(DEFOCUS_BINS)} (DEFOCUS_BINS), got {n_cls}")
        data = {**data, "count": defocus_classes(data["conditions"][:, 0]) + 1}
    val_structures = held_out_structures(data["structure"], seed=config.seed, fraction=held_out)
    is_val = np.isin(data["structure"], val_structures)
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    patches = torch.from_numpy(data["patch"].astype(np.float32))[:, None]
    counts = torch.from_numpy(data["count"].astype(np.int64))
    raw = data["conditions"].astype(np.float32)
    # weights: the inverse square root of each count's frequency (thick columns are rarer)
    freq = np.bincount(np.clip(data["count"][train_idx], 1, n_cls) - 1, minlength=n_cls).astype(float)
    class_weight = torch.tensor(np.where(freq > 0, (freq.sum() / np.maximum(freq, 1)) ** 0.5, 0.0), dtype=torch.float32)
    class_weight = class_weight / (class_weight[counts[train_idx].clamp(1, n_cls) - 1].mean())
    if target == "defocus":  # every defocus is drawn alike: no class is rare
        class_weight = torch.ones_like(class_weight)
    val_pick = np.random.default_rng([config.seed, 98]).permutation(val_idx)[:20000]
    # validation with every condition given, and with none (not the training's random masks)
    every = np.ones((len(val_pick), len(CONDITIONS)), bool)
    every[:, _hidden_columns(hidden)] = False
    val_cond_all = torch.from_numpy(_scaled_conditions(raw[val_pick], every))
    val_cond_none = torch.from_numpy(_scaled_conditions(raw[val_pick], ~every))

    torch.manual_seed(config.seed)
    net = ColumnCounter(model_config)

    def batch(step: int, rank: int, world: int) -> dict:
        r = np.random.default_rng([config.seed, step, rank])
        idx = train_idx[r.integers(0, len(train_idx), config.batch_size // world)]
        x = _dihedral(patches[idx], int(r.integers(8)))
        return {
            "patch": x,
            "conditions": torch.from_numpy(_masked_conditions(raw[idx], r, config.p_known, hidden)),
            "target": _targets(counts[idx], n_cls, config.smoothing),
            "weight": class_weight[counts[idx].clamp(1, n_cls) - 1],
        }

    def train_step(networks, b, optimize):
        logits = networks["counter"](b["patch"], b["conditions"])
        loss = (-(b["target"] * torch.log_softmax(logits, dim=1)).sum(dim=1) * b["weight"]).mean()
        optimize("counter", loss)
        return {"loss": float(loss.detach())}

    def scores(networks, cond) -> dict:
        chunks = range(0, len(val_pick), 4096)
        logits = torch.cat([networks["counter"](patches[val_pick[k : k + 4096]], cond[k : k + 4096]) for k in chunks])
        pred = logits.argmax(1).numpy() + 1
        true = np.clip(data["count"][val_pick], 1, n_cls)
        thick = true >= 3
        return {
            "exact": float(np.mean(pred == true)),
            "exact_3plus": float(np.mean(pred[thick] == true[thick])) if thick.any() else float("nan"),
            "within_one": float(np.mean(np.abs(pred - true) <= 1)),
        }, logits

    def validate(networks) -> dict:
        known, _ = scores(networks, val_cond_all)
        blind, _ = scores(networks, val_cond_none)
        return {**{f"val_{k}": v for k, v in known.items()}, **{f"val_blind_{k}": v for k, v in blind.items()}}

    task = Task(
        networks={"counter": net},
        optimizers={"counter": OptimizerSpec(("counter",), lr=config.lr)},
        batch=batch,
        train_step=train_step,
        validate=validate,
        signature={
            "model": model_config.to_dict(),
            "train": config.to_dict(),
            "n": int(len(counts)),
            **({"target": target} if target != "count" else {}),
        },
    )
    started = time.monotonic()
    history = fit(
        task,
        steps=config.steps,
        checkpoint=out.with_suffix(".ckpt"),
        checkpoint_every=config.checkpoint_every,
        validate_every=config.validate_every,
        log_csv=out.with_suffix(".csv"),
        progress=progress,
        desc="training counter",
    )
    net.eval()
    with torch.no_grad():
        # temperature and conformal level on the held-out structures, half with and half without conditions
        half = len(val_pick) // 2
        cond = torch.cat([val_cond_all[:half], val_cond_none[half:]])
        _, logits = scores({"counter": net}, cond)
    true_cls = torch.from_numpy(np.clip(data["count"][val_pick], 1, n_cls) - 1)
    temperature = fit_temperature(logits, true_cls)
    probs = torch.softmax(logits / temperature, dim=1).numpy()
    conformal = {"independent": conformal_table(probs, true_cls.numpy())}
    level = conformal_level(probs, true_cls.numpy(), coverage=coverage)
    validation = {k: v for k, v in history[-1].items() if k.startswith("val_")}
    save_model(
        out,
        net,
        metadata={
            "patch_sampling": float(model_config.sampling),
            "conditions": list(CONDITIONS),
            "temperature": [temperature],
            "conformal": conformal,
            "train_config": config.to_dict(),
            "validation": validation,
            "training_seconds": float(time.monotonic() - started),
            "hardware": "CPU" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
            "torch": str(torch.__version__),
            "target": target,
            **({"defocus_bins": list(DEFOCUS_BINS)} if target == "defocus" else {}),
            **(metadata or {}),
        },
    )
    return {"validation": validation, "temperature": temperature, "conformal_level": level}


#: Coverages at which conformal levels are calibrated and stored with the weights.
COVERAGES = tuple(round(float(c), 2) for c in np.arange(0.5, 0.995, 0.01))


def conformal_table(probabilities: np.ndarray, classes: np.ndarray) -> dict:
    """Conformal levels of :func:`atomtools.core.metrics.interval_sets` at every :data:`COVERAGES`.

    Parameters
    ----------
    probabilities : numpy.ndarray
        (N, K) probabilities of held-out columns.
    classes : numpy.ndarray
        (N,) their true classes (count - 1, clipped to K - 1).
    """
    return {
        "coverage": list(COVERAGES),
        "level": [conformal_level(probabilities, classes, coverage=c) for c in COVERAGES],
        "n": int(len(classes)),
    }


@dataclass
class Counter:
    """A trained column counter ready for inference.

    Attributes
    ----------
    model : ColumnCounter
        The network, in eval mode.
    temperature : float
        Its calibration temperature.
    conformal : dict
        Conformal levels by coverage, calibrated on held-out structures: ``independent``
        for the counter's own probabilities, ``decoded`` for those after the particle
        decoding (each ``{"coverage": [...], "level": [...]}``).
    material : str
        Name of the crystal it counts.
    zone_axis : tuple of int
        Its zone axis.
    target : str
        ``count`` (a counter) or ``defocus`` (a defocus estimator, classes
        :data:`DEFOCUS_BINS`).
    pooling : float, optional
        A defocus estimator's pooling exponent (:func:`pool_defocus`), calibrated on
        held-out frames.
    """

    model: ColumnCounter
    temperature: float = 1.0
    conformal: dict | None = None
    material: str = "CeO2"
    zone_axis: tuple[int, int, int] = (1, 1, 0)
    target: str = "count"
    pooling: float | None = None

    @property
    def config(self) -> CounterConfig:
        """The architecture."""
        return self.model.config

    @property
    def max_count(self) -> int:
        """Largest count it tells apart; its top class means this many or more."""
        return int(self.config.n_classes)

    def level(self, coverage: float | None = None, *, decoded: bool = False) -> float:
        """Probability mass of prediction sets with the given coverage (default 0.9).

        Parameters
        ----------
        coverage : float, optional
            Wanted coverage, within the calibrated ones (0.5-0.99).
        decoded : bool
            Sets of decoded probabilities (their own calibration where there is one).

        Raises
        ------
        ValueError
            For a coverage outside (0, 1).
        """
        coverage = 0.9 if coverage is None else float(coverage)
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {coverage}")
        tables = self.conformal or {}
        table = tables.get("decoded" if decoded else "independent") or tables.get("independent")
        if not table:
            return coverage
        return float(np.interp(coverage, table["coverage"], table["level"]))


@functools.lru_cache(maxsize=4)
def _load_counter_path(path: str, mtime_ns: int) -> Counter:
    model, meta = load_model(path, expected=COUNTER_FORMAT)
    return Counter(
        model=fuse_counter(model),
        temperature=float(meta.get("temperature", [1.0])[0]),
        conformal=meta.get("conformal"),
        material=str(meta.get("material", "CeO2")),
        zone_axis=tuple(meta.get("zone_axis", (1, 1, 0))),
        target=str(meta.get("target", "count")),
        pooling=None if meta.get("pooling") is None else float(meta["pooling"]),
    )


def load_counter(model="pretrained") -> Counter:
    """A :class:`Counter` from the shipped weights, a weights file or a Counter.

    Parameters
    ----------
    model : "pretrained", str, Path or Counter
        ``"pretrained"`` (the shipped CeO2 counter), a manifest name, a weights file,
        or a Counter.

    Raises
    ------
    FileNotFoundError
        If a path names no file.
    """
    if isinstance(model, Counter):
        return model
    if isinstance(model, str) and model == "pretrained":
        model = fetch(PRETRAINED_COUNTER)
    elif isinstance(model, str) and model.startswith(("counter-", "defocus-")) and not Path(model).exists():
        model = fetch(model)
    path = Path(model).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no counter weights at {path}")
    return _load_counter_path(str(path), path.stat().st_mtime_ns)


def count_probabilities(
    frame: np.ndarray,
    rows,
    cols,
    *,
    sampling: float,
    counter: Counter,
    conditions: np.ndarray | None = None,
    batch: int = 4096,
) -> np.ndarray:
    """Calibrated probabilities of each count (1, 2, ..., and the top class: that many or more).

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) normalized frame (mean 1).
    rows, cols : array-like
        Column centres [px].
    sampling : float
        Pixel size of the frame [Å].
    counter : Counter
        The network.
    conditions : numpy.ndarray, optional
        From :func:`condition_vector`; default nothing known.
    batch : int
        Patches per forward pass.

    Returns
    -------
    numpy.ndarray
        (N, n_classes) float32; column ``k`` is the probability of ``k + 1`` atoms.
    """
    cfg = counter.config
    n = len(np.atleast_1d(rows))
    if not n:
        return np.zeros((0, cfg.n_classes), np.float32)
    cond = condition_vector() if conditions is None else np.asarray(conditions, np.float32)
    patches = column_patches(frame, rows, cols, sampling=sampling, patch=cfg.patch, patch_sampling=cfg.sampling)
    x = torch.from_numpy(patches)[:, None]
    c = torch.from_numpy(np.repeat(cond[None], n, axis=0))
    with torch.inference_mode():
        logits = torch.cat([counter.model(x[k : k + batch], c[k : k + batch]) for k in range(0, n, batch)])
        return torch.softmax(logits / counter.temperature, dim=1).numpy().astype(np.float32)


def prediction_table(probabilities: np.ndarray, *, level: float) -> dict:
    """Count, prediction set and confidence of each column from its count probabilities.

    Parameters
    ----------
    probabilities : numpy.ndarray
        (N, K) probabilities of 1..K atoms (the last: K or more).
    level : float or array-like
        Probability mass of the sets (a calibrated conformal level), one or one per column.

    Returns
    -------
    dict
        ``count`` (the most probable), ``count_low``, ``count_high`` (the set, contiguous),
        ``beyond_range`` (the set reaches the top class) and ``confidence`` (probability
        of the count), each (N,).

    Examples
    --------
    >>> t = prediction_table(np.array([[0.1, 0.6, 0.3, 0.0]]), level=0.85)
    >>> [int(t[k][0]) for k in ("count", "count_low", "count_high")], bool(t["beyond_range"][0])
    ([2, 2, 3], False)
    """
    p = np.asarray(probabilities, float)
    k = p.shape[1]
    low, high = interval_sets(p, level=level)
    count = p.argmax(axis=1)
    return {
        "count": count + 1,
        "count_low": low + 1,
        "count_high": high + 1,
        "beyond_range": high == k - 1,
        "confidence": p[np.arange(len(p)), count],
    }


def pool_defocus(probabilities: np.ndarray, *, pooling: float | None = None) -> dict:
    """A frame's defocus from its columns' defocus probabilities.

    The columns of one frame share one defocus but not independent evidence of it
    (neighbours overlap, thickness and defocus trade off alike), so their log
    probabilities are summed and scaled by ``pooling / sqrt(N)``, an exponent
    calibrated on held-out frames so that the stated uncertainty matches the errors.

    Parameters
    ----------
    probabilities : numpy.ndarray
        (N, len(DEFOCUS_BINS)) per-column probabilities of a defocus estimator.
    pooling : float, optional
        The calibrated exponent (default 1).

    Returns
    -------
    dict
        ``defocus`` (posterior mean) [Å], ``std`` [Å], ``weights`` (over
        :data:`DEFOCUS_BINS`), ``n`` (columns used).

    Examples
    --------
    >>> p = np.full((9, len(DEFOCUS_BINS)), 0.01); p[:, 6] = 0.9
    >>> out = pool_defocus(p)
    >>> round(out["defocus"]), out["std"] < 5
    (-50, True)
    """
    p = np.asarray(probabilities, float)
    centres = np.asarray(DEFOCUS_BINS)
    if p.ndim != 2 or p.shape[1] != len(centres):
        raise ValueError(f"probabilities must be (N, {len(centres)}), got {p.shape}")
    n = len(p)
    if not n:
        w = np.full(len(centres), 1.0 / len(centres))
    else:
        log = np.log(np.clip(p, 1e-6, None)).sum(axis=0) * (1.0 if pooling is None else pooling) / np.sqrt(n)
        w = np.exp(log - log.max())
        w /= w.sum()
    mean = float(w @ centres)
    return {"defocus": mean, "std": float(np.sqrt(w @ (centres - mean) ** 2)), "weights": w, "n": int(n)}


def estimate_defocus(
    frame: np.ndarray,
    rows,
    cols,
    *,
    sampling: float,
    estimator: Counter,
    optics: Optics | dict | None = None,
    tilt: float | None = None,
) -> dict:
    """The defocus of a frame, read from the patches of its columns (:func:`pool_defocus`).

    Parameters
    ----------
    frame : numpy.ndarray
        (H, W) normalized frame (mean 1).
    rows, cols : array-like
        Column centres [px].
    sampling : float
        Pixel size [Å].
    estimator : Counter
        A defocus estimator (``target == "defocus"``).
    optics : Optics or dict, optional
        What else is known (any defocus in it is ignored).
    tilt : float, optional
        Known mistilt [degrees].

    Returns
    -------
    dict
        As :func:`pool_defocus`.
    """
    if estimator.target != "defocus":
        raise ValueError(f"estimator: a defocus estimator is needed, this network reads {estimator.target!r}")
    given = _given(optics)
    given.pop("defocus", None)
    prob = count_probabilities(
        frame, rows, cols, sampling=sampling, counter=estimator, conditions=condition_vector(given, tilt=tilt)
    )
    return pool_defocus(prob, pooling=estimator.pooling)


def marginal_probabilities(
    frame: np.ndarray,
    rows,
    cols,
    *,
    sampling: float,
    counter: Counter,
    weights: np.ndarray,
    optics: Optics | dict | None = None,
    tilt: float | None = None,
    min_weight: float = 1e-3,
) -> np.ndarray:
    """Count probabilities averaged over the defocus, weighted by a frame's defocus posterior.

    ``p(count) = sum_b w_b p(count | defocus_b)`` over the :data:`DEFOCUS_BINS` whose
    weight is at least ``min_weight`` (renormalized): what the counter says when the
    defocus is known as well as the frame tells it.

    Parameters
    ----------
    frame, rows, cols, sampling, counter
        As :func:`count_probabilities`.
    weights : numpy.ndarray
        Posterior over :data:`DEFOCUS_BINS` (:func:`estimate_defocus`).
    optics : Optics or dict, optional
        What else is known (any defocus in it is replaced).
    tilt : float, optional
        Known mistilt [degrees].
    min_weight : float
        Bins below this weight are skipped.
    """
    w = np.asarray(weights, float)
    keep = np.flatnonzero(w >= min(min_weight, w.max()))
    w = w[keep] / w[keep].sum()
    given = _given(optics)
    out = 0.0
    for b, wb in zip(keep, w):
        cond = condition_vector({**given, "defocus": DEFOCUS_BINS[b]}, tilt=tilt)
        out = out + wb * count_probabilities(frame, rows, cols, sampling=sampling, counter=counter, conditions=cond)
    return np.asarray(out, np.float32)


def calibrate_pooling(
    data: dict,
    weights: str | Path,
    *,
    seed: int = 0,
    held_out: float = 0.1,
    grid=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
    max_frames: int = 3000,
) -> dict:
    """Calibrate a defocus estimator's pooling exponent on held-out frames and write it into its weights.

    The frames are the patch set's held-out structures (the split of
    :func:`train_counter` with the same ``seed`` and ``held_out``), one per
    (structure, optics, dose); half are read with the other optics given, half with
    nothing given. The exponent kept is the one of ``grid`` with the lowest mean
    negative log probability of the true defocus bin (a proper score: sharp where the
    frames allow, never overconfident).

    Parameters
    ----------
    data : dict
        From :func:`patch_dataset`.
    weights : str or Path
        The estimator's weights file (its metadata gains ``pooling``).
    seed, held_out
        As given to :func:`train_counter`.
    grid : sequence of float
        Exponents tried.
    max_frames : int
        Frames used at most.

    Returns
    -------
    dict
        ``pooling``, ``rmse`` [Å] of the posterior mean, ``within_std`` (fraction of
        frames whose error is at most the stated std), ``n`` frames, and the score of
        each exponent.
    """
    estimator = load_counter(weights)
    held = held_out_structures(data["structure"], seed=seed, fraction=held_out)
    idx = np.flatnonzero(np.isin(data["structure"], held))
    raw = data["conditions"][idx]
    keys = np.column_stack([data["structure"][idx], raw[:, 0], data["dose"][idx]])
    _, frame_of = np.unique(keys, axis=0, return_inverse=True)
    frame_of = frame_of.ravel()
    frames = np.random.default_rng([seed, 7]).permutation(frame_of.max() + 1)[:max_frames]
    known = np.ones((len(idx), len(CONDITIONS)), bool)
    known[:, _hidden_columns(("defocus",))] = False
    known[np.isin(frame_of, frames[1::2])] = False  # half the frames: nothing given
    cond = torch.from_numpy(_scaled_conditions(raw, known))
    x = torch.from_numpy(data["patch"][idx].astype(np.float32))[:, None]
    with torch.inference_mode():
        logits = torch.cat([estimator.model(x[k : k + 4096], cond[k : k + 4096]) for k in range(0, len(idx), 4096)])
        prob = torch.softmax(logits / estimator.temperature, dim=1).numpy()
    truth = defocus_classes(raw[:, 0])
    scores, results = {}, {}
    for pooling in grid:
        nll, err, inside = [], [], []
        for f in frames:
            rows = np.flatnonzero(frame_of == f)
            out = pool_defocus(prob[rows], pooling=pooling)
            nll.append(-np.log(max(out["weights"][truth[rows[0]]], 1e-12)))
            e = out["defocus"] - raw[rows[0], 0]
            err.append(e)
            inside.append(abs(e) <= max(out["std"], 1e-9))
        scores[float(pooling)] = float(np.mean(nll))
        results[float(pooling)] = (float(np.sqrt(np.mean(np.square(err)))), float(np.mean(inside)))
    best = min(scores, key=scores.get)
    net, meta = load_model(weights, expected=COUNTER_FORMAT)
    save_model(weights, net, metadata={**meta, "pooling": best})
    return {
        "pooling": best,
        "rmse": results[best][0],
        "within_std": results[best][1],
        "n": int(len(frames)),
        "scores": scores,
        "rmse_by_pooling": {k: v[0] for k, v in results.items()},
    }

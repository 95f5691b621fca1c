"""Training the column counter (and the defocus and mistilt estimators) on patches of simulated frames.

:func:`patch_dataset` cuts the patches of exact columns out of simulated frames (each at
several doses and noise-free); :func:`train_counter` trains on them with
:func:`atomtools.training.fit` (resumable, bit-identical), calibrates a temperature and
conformal levels on held-out structures, and writes the weights that
:func:`atomtools.columns.counting.load_counter` reads. The same network and training read
the defocus or mistilt class instead (``target="defocus"`` or ``"tilt"``), and
:func:`calibrate_pooling` sets how a frame's columns are pooled into one estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.imaging import normalize
from ..core.metrics import conformal_level
from ..models import COUNTER_FORMAT, ColumnCounter, CounterConfig, load_model, save_model
from ..training import OptimizerSpec, Task, TrainResult, dihedral_tensor, fit_beside
from ..training.calibration import fit_temperature
from ..utils import Record, progress_bar
from .counting import CONDITIONS, ESTIMATED, column_patches, condition_classes, load_counter, pool_condition

__all__ = [
    "COVERAGES",
    "CounterTrainConfig",
    "patch_dataset",
    "held_out_structures",
    "train_counter",
    "conformal_table",
    "calibrate_pooling",
]


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

    Returns
    -------
    numpy.ndarray
        The held-out structure ids (at least one), drawn without replacement, shape (n,).

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


def train_counter(
    data: dict,
    out: str | Path,
    config: CounterTrainConfig = CounterTrainConfig(),
    *,
    model_config: CounterConfig = CounterConfig(),
    held_out: float = 0.1,
    coverage: float = 0.9,
    progress: bool = True,
    metadata: dict | None = None,
    target: str = "count",
    init: str | Path | None = None,
) -> TrainResult:
    """Train a column counter on patches, calibrate it on held-out structures, write the weights.

    The same network and training read the defocus or the mistilt instead
    (``target="defocus"`` or ``"tilt"``): an estimator whose classes are that condition's
    bins (:data:`~atomtools.columns.counting.ESTIMATED`) and which is never told it;
    :func:`~atomtools.columns.counting.estimate_condition` pools its answers over a
    frame's columns.

    Parameters
    ----------
    data : dict
        From :func:`patch_dataset`.
    out : str or Path
        The weights file; ``<out>.ckpt`` keeps the resumable state, ``<out>.csv`` the history.
    config : CounterTrainConfig
        The training.
    model_config : CounterConfig
        The network.
    held_out : float
        Fraction of the structures kept out of training, for validation and calibration.
    coverage : float
        Coverage of the prediction sets calibrated on them (0.9: 90 %).
    progress : bool
        Show a progress bar.
    metadata : dict, optional
        Further metadata stored with the weights (training data, ...).
    target : {"count", "defocus", "tilt"}
        What the network learns: the column's atom count, or the frame's defocus or
        mistilt class.
    init : str or Path, optional
        Start from these counter weights (fine-tuning; same architecture as
        ``model_config``); default a random start.

    Returns
    -------
    TrainResult
        The weights, history, last validation numbers and seconds; ``calibration``
        holds the ``temperature`` and the ``conformal_level`` at ``coverage``.
    """
    out = Path(out)
    n_cls = model_config.n_classes
    if target != "count" and target not in ESTIMATED:
        raise ValueError(f"target must be 'count' or one of {sorted(ESTIMATED)}, got {target!r}")
    hidden = (target,) if target in ESTIMATED else ()
    if hidden:
        bins = ESTIMATED[target]
        if n_cls != len(bins):
            raise ValueError(f"a {target} estimator needs n_classes={len(bins)} (its bins {bins}), got {n_cls}")
        column = list(CONDITIONS).index(target)
        data = {**data, "count": condition_classes(target, data["conditions"][:, column]) + 1}
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
    if hidden:  # the conditions are drawn per frame, not rare per column: every class alike
        class_weight = torch.ones_like(class_weight)
    val_pick = np.random.default_rng([config.seed, 98]).permutation(val_idx)[:20000]
    # validation with every condition given, and with none (not the training's random masks)
    every = np.ones((len(val_pick), len(CONDITIONS)), bool)
    every[:, _hidden_columns(hidden)] = False
    val_cond_all = torch.from_numpy(_scaled_conditions(raw[val_pick], every))
    val_cond_none = torch.from_numpy(_scaled_conditions(raw[val_pick], ~every))

    torch.manual_seed(config.seed)
    net = ColumnCounter(model_config)
    if init is not None:
        start, start_meta = load_model(init, expected=COUNTER_FORMAT)
        if start.config != model_config:
            raise ValueError(f"init weights {init} have architecture {start.config}, not {model_config}")
        net.load_state_dict(start.state_dict())

    def batch(step: int, rank: int, world: int) -> dict:
        r = np.random.default_rng([config.seed, step, rank])
        idx = train_idx[r.integers(0, len(train_idx), config.batch_size // world)]
        x = dihedral_tensor(patches[idx], int(r.integers(8)))
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
            **({"init": start_meta.get("sha256", str(init))} if init is not None else {}),
        },
    )
    history, _, seconds = fit_beside(task, out, config, progress=progress, desc="training counter")
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
            "training_seconds": seconds,
            "hardware": "CPU" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
            "torch": str(torch.__version__),
            "target": target,
            "init": None if init is None else start_meta.get("sha256", str(init)),
            **({f"{target}_bins": list(ESTIMATED[target])} if hidden else {}),
            **(metadata or {}),
        },
    )
    return TrainResult(
        weights=out,
        history=history,
        validation=validation,
        seconds=seconds,
        calibration={"temperature": temperature, "conformal_level": level},
    )


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

    Returns
    -------
    dict
        ``coverage`` (the :data:`COVERAGES`), ``level`` (the conformal level at each) and ``n``
        (the number of held-out columns).
    """
    return {
        "coverage": list(COVERAGES),
        "level": [conformal_level(probabilities, classes, coverage=c) for c in COVERAGES],
        "n": int(len(classes)),
    }


def calibrate_pooling(
    data: dict,
    weights: str | Path,
    *,
    seed: int = 0,
    held_out: float = 0.1,
    grid=(0.03, 0.06, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
    max_frames: int = 3000,
) -> dict:
    """Calibrate a defocus or mistilt estimator's pooling exponent on held-out frames and write it into its weights.

    The frames are the patch set's held-out structures (the split of
    :func:`train_counter` with the same ``seed`` and ``held_out``), one per
    (structure, optics, dose); half are read with the other optics given, half with
    nothing given. The exponent kept is the one of ``grid`` with the lowest mean
    negative log probability of the true bin (a proper score: sharp where the frames
    allow, never overconfident).

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
        ``pooling``, ``rmse`` [Å or degrees] of the posterior mean, ``within_std`` (fraction of
        frames whose error is at most the stated std), ``n`` frames, and the score of
        each exponent.
    """
    estimator = load_counter(weights)
    name = estimator.target
    if name not in ESTIMATED:
        raise ValueError(f"{weights}: a defocus or mistilt estimator is needed, this network reads {name!r}")
    column = list(CONDITIONS).index(name)
    held = held_out_structures(data["structure"], seed=seed, fraction=held_out)
    idx = np.flatnonzero(np.isin(data["structure"], held))
    raw = data["conditions"][idx]
    keys = np.column_stack([data["structure"][idx], raw[:, 0], data["dose"][idx]])
    _, frame_of = np.unique(keys, axis=0, return_inverse=True)
    frame_of = frame_of.ravel()
    frames = np.random.default_rng([seed, 7]).permutation(frame_of.max() + 1)[:max_frames]
    known = np.ones((len(idx), len(CONDITIONS)), bool)
    known[:, _hidden_columns((name,))] = False
    known[np.isin(frame_of, frames[1::2])] = False  # half the frames: nothing given
    cond = torch.from_numpy(_scaled_conditions(raw, known))
    x = torch.from_numpy(data["patch"][idx].astype(np.float32))[:, None]
    with torch.inference_mode():
        logits = torch.cat([estimator.model(x[k : k + 4096], cond[k : k + 4096]) for k in range(0, len(idx), 4096)])
        prob = torch.softmax(logits / estimator.temperature, dim=1).numpy()
    truth = condition_classes(name, raw[:, column])
    members = [np.flatnonzero(frame_of == f) for f in frames]  # each frame's columns, found once
    scores, results = {}, {}
    for pooling in grid:
        nll, err, inside = [], [], []
        for rows in members:
            out = pool_condition(prob[rows], name=name, pooling=pooling)
            nll.append(-np.log(max(out["weights"][truth[rows[0]]], 1e-12)))
            e = out[name] - raw[rows[0], column]
            err.append(e)
            inside.append(abs(e) <= max(out["std"], 1e-9))
        scores[float(pooling)] = float(np.mean(nll))
        results[float(pooling)] = (float(np.sqrt(np.mean(np.square(err)))), float(np.mean(inside)))
    best = min(scores, key=scores.get)
    net, meta = load_model(weights, expected=COUNTER_FORMAT)
    held = {"rmse": results[best][0], "within_std": results[best][1], "frames": int(len(frames))}
    save_model(weights, net, metadata={**meta, "pooling": best, "pooling_validation": held})
    return {
        "pooling": best,
        "rmse": results[best][0],
        "within_std": results[best][1],
        "n": int(len(frames)),
        "scores": scores,
        "rmse_by_pooling": {k: v[0] for k, v in results.items()},
    }

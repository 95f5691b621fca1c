"""The training loop every network of atomtools trains with.

A :class:`Task` describes what to train: its networks, its optimizers (each over some
of the networks, with its own learning rate and schedule), how to draw the batch of a
step, and a step function that computes the losses and steps the optimizers through
the ``optimize`` callback it is handed. One U-Net with one loss is a task; so is a GAN
whose generator and discriminator take turns with their own optimizers and loss terms.
:func:`fit` runs any task with the same guarantees:

- every random draw of step ``t`` comes from the task's ``batch(t, ...)``, a function
  of ``(seed, t)`` alone, and the networks start from ``torch.manual_seed(seed)`` in
  the task, so a run killed at any point resumes from its checkpoint to bit-identical
  weights (``tests/test_train.py``);
- checkpoints are written atomically every ``checkpoint_every`` seconds and at the
  end, with a signature of the settings: a checkpoint from other settings is refused;
- under ``torchrun`` (``WORLD_SIZE > 1``) every network with parameters is wrapped in
  ``DistributedDataParallel`` and each rank draws its share of the batch; rank 0 writes;
- a tqdm bar shows the running losses and the validation numbers; the history is a CSV.

Why our own loop rather than PyTorch Ignite or Lightning (both compared): neither is
in the environment, each adds a dependency to four pinned files, and the guarantees
above are about 150 lines here; Lightning's fault-tolerant resume does not promise
bit-identical weights with step-indexed data, and Ignite's ``Engine`` would still need
our batch-by-step sampler and signature check. ``ARCHITECTURE.md`` records this.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..utils import atomic_path, progress_bar

__all__ = ["OptimizerSpec", "Task", "TrainResult", "fit", "fit_beside", "distributed", "device", "write_history"]


@dataclass(frozen=True)
class TrainResult:
    """What every trainer of atomtools returns.

    Every trainer has one shape, ``train_*(data, out, config, *, init=None, ...) ->
    TrainResult``: what it learns from, the weights file it writes (its resumable
    ``.ckpt`` and ``.csv`` history beside it), its settings, and keyword options.

    Attributes
    ----------
    weights : Path
        The weights file written (:func:`atomtools.models.save_model`).
    history : list of dict
        One row per step (:func:`fit`).
    validation : dict
        The last validation numbers (``val_*``).
    seconds : float
        Wall time of the training [s].
    calibration : dict
        What was calibrated after training (temperatures, conformal levels), by name;
        empty where nothing is.
    """

    weights: Path
    history: list[dict]
    validation: dict
    seconds: float
    calibration: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OptimizerSpec:
    """One AdamW optimizer over some of a task's networks, with its schedule.

    Attributes
    ----------
    networks : tuple of str
        Names of the networks (keys of :attr:`Task.networks`) it updates.
    lr : float
        Peak learning rate.
    weight_decay : float
        AdamW weight decay.
    betas : (float, float)
        AdamW betas.
    warmup : float
        Fraction of the steps over which the learning rate rises linearly.
    schedule : {"cosine", "constant"}
        Decay after the warm-up.
    clip : float, optional
        Clip the gradient's norm to this before each step (a rare outlier batch cannot
        undo the training); default no clipping.
    """

    networks: tuple[str, ...]
    lr: float
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    warmup: float = 0.05
    schedule: str = "cosine"
    clip: float | None = None

    def __post_init__(self):
        if not self.lr > 0:
            raise ValueError(f"OptimizerSpec.lr must be positive, got {self.lr}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"OptimizerSpec.schedule must be 'cosine' or 'constant', got {self.schedule!r}")

    def factor(self, step: int, steps: int) -> float:
        """Learning-rate multiplier at ``step`` of ``steps``.

        Parameters
        ----------
        step, steps : int
            The step (from 0) and the run's length.

        Examples
        --------
        >>> spec = OptimizerSpec(("net",), lr=1.0, warmup=0.1)
        >>> [round(spec.factor(s, 100), 3) for s in (0, 9, 10, 55, 99)]
        [0.1, 1.0, 1.0, 0.5, 0.0]
        """
        n_warm = max(1, int(self.warmup * steps))
        if step < n_warm:
            return (step + 1) / n_warm
        if self.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - n_warm) / max(1, steps - n_warm)))


@dataclass
class Task:
    """What :func:`fit` trains. Subclass it, or fill it with functions.

    Attributes
    ----------
    networks : dict
        Name -> ``torch.nn.Module``, initialized (seeded) by the task.
    optimizers : dict
        Name -> :class:`OptimizerSpec`.
    batch : callable
        ``batch(step, rank, world) -> dict of tensors``: the part of step ``step``'s
        batch for this rank; a function of the step only.
    train_step : callable
        ``train_step(networks, batch, optimize) -> dict of floats``: computes the
        losses and calls ``optimize(name, loss)`` for each optimizer (zero_grad,
        backward, step); returns the numbers to log (e.g. ``{"loss": ...}``).
    validate : callable, optional
        ``validate(networks) -> dict of floats`` (keys ``val_*``), run in eval mode
        without gradients.
    signature : dict
        What must match for a checkpoint to be resumed (settings, data, start).
    """

    networks: dict[str, nn.Module]
    optimizers: dict[str, OptimizerSpec]
    batch: Callable[[int, int, int], dict]
    train_step: Callable[[dict, dict, Callable], dict]
    validate: Callable[[dict], dict] | None = None
    signature: dict = field(default_factory=dict)


def distributed() -> tuple[int, int]:
    """(rank, world size): a process group is started under ``torchrun``, else (0, 1).

    Returns
    -------
    tuple of int
        ``(rank, world_size)``; ``(0, 1)`` outside ``torchrun``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device() -> torch.device:
    """This rank's device: its GPU where there is one, else the CPU.

    Returns
    -------
    torch.device
        ``cuda:<LOCAL_RANK>`` where CUDA is available, else ``cpu``.
    """
    return (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")
    )


def write_history(path: str | Path, history: list[dict]) -> None:
    """Write the history as CSV (``step`` first), atomically; nothing for an empty one.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    history : list of dict
        One row per step.
    """
    if not history:
        return
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def fit_beside(
    task: Task, out: str | Path, config, *, progress: bool = True, desc: str = "training", checkpoint=None
) -> tuple[list[dict], dict, float]:
    """:func:`fit` as every trainer runs it: its checkpoint and history beside the weights file.

    Parameters
    ----------
    task : Task
        The task to train.
    out : str or Path
        The weights file the trainer will write; the resumable state goes to
        ``out.with_suffix(".ckpt")`` and the history to ``out.with_suffix(".csv")``.
    config : object
        The trainer's settings: ``steps``, ``validate_every`` and, where it has one,
        ``checkpoint_every`` [s] (default 180).
    progress : bool
        Show a progress bar.
    desc : str
        Its label.
    checkpoint : str or Path, optional
        Another place for the resumable state.

    Returns
    -------
    history : list of dict
        One row per step (:func:`fit`).
    validation : dict
        The last value of every ``val_*`` number.
    seconds : float
        Wall time of the loop [s].
    """
    out = Path(out)
    started = time.monotonic()
    history = fit(
        task,
        steps=config.steps,
        checkpoint=Path(checkpoint) if checkpoint else out.with_suffix(".ckpt"),
        checkpoint_every=getattr(config, "checkpoint_every", 180.0),
        validate_every=config.validate_every,
        log_csv=out.with_suffix(".csv"),
        progress=progress,
        desc=desc,
    )
    validation = {k: v for row in history for k, v in row.items() if k.startswith("val_")}
    return history, validation, time.monotonic() - started


def _to_device(batch: dict, dev: torch.device) -> dict:
    # images (4-D) go channels-last, like the networks
    return {
        k: (v.to(dev).contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v.to(dev))
        for k, v in batch.items()
    }


def fit(
    task: Task,
    *,
    steps: int,
    checkpoint: str | Path | None = None,
    checkpoint_every: float = 180.0,
    validate_every: int = 100,
    log_csv: str | Path | None = None,
    progress: bool = True,
    desc: str = "training",
) -> list[dict]:
    """Train ``task`` for ``steps`` steps, resuming from ``checkpoint`` if it exists.

    Parameters
    ----------
    task : Task
        Networks, optimizers, batches, step and validation.
    steps : int
        Number of steps.
    checkpoint : str or Path, optional
        Where to keep the resumable state; an existing one written with the same
        ``task.signature`` is resumed, one with another is refused.
    checkpoint_every : float
        Seconds between checkpoints.
    validate_every : int
        Steps between validations (and at the last step).
    log_csv : str or Path, optional
        The history as CSV (rewritten atomically with each checkpoint).
    progress : bool
        Show a progress bar.
    desc : str
        Its label.

    Returns
    -------
    list of dict
        The history: one row per step (``step``, the step's numbers, ``lr`` or
        ``lr_<optimizer>``, validation numbers where validated).

    Raises
    ------
    ValueError
        If the checkpoint was written with other settings.
    """
    from torch.nn.parallel import DistributedDataParallel

    rank, world = distributed()
    dev = device()
    networks = {name: net.to(dev).to(memory_format=torch.channels_last) for name, net in task.networks.items()}
    optimizers, schedulers = {}, {}
    for name, spec in task.optimizers.items():
        params = [p for n in spec.networks for p in networks[n].parameters()]
        optimizers[name] = torch.optim.AdamW(
            params, lr=spec.lr, weight_decay=spec.weight_decay, betas=tuple(spec.betas)
        )
        schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
            optimizers[name], lambda s, spec=spec: spec.factor(s, steps)
        )
    history: list[dict] = []
    start = 0
    checkpoint = Path(checkpoint) if checkpoint else None
    signature = task.signature or {}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=dev, weights_only=True)
        if state.get("signature") != signature:
            raise ValueError(
                f"{checkpoint} was written by a run with other settings; remove it or use another output path"
            )
        for name, net in networks.items():
            net.load_state_dict(state["networks"][name])
        for name in optimizers:
            optimizers[name].load_state_dict(state["optimizers"][name])
            schedulers[name].load_state_dict(state["schedulers"][name])
        history = list(state["history"])
        start = int(state["step"])
    wrapped = {
        n: (DistributedDataParallel(m) if world > 1 and any(p.requires_grad for p in m.parameters()) else m)
        for n, m in networks.items()
    }

    def optimize(name: str, loss: torch.Tensor) -> None:
        optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        if task.optimizers[name].clip is not None:
            params = [p for group in optimizers[name].param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, task.optimizers[name].clip)
        optimizers[name].step()

    def save(step: int) -> None:
        if rank != 0:
            return
        if checkpoint is not None:
            state = {
                "signature": signature,
                "networks": {n: m.state_dict() for n, m in networks.items()},
                "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                "schedulers": {n: s.state_dict() for n, s in schedulers.items()},
                "history": history,
                "step": step,
            }
            with atomic_path(checkpoint) as tmp:
                torch.save(state, tmp)
        if log_csv is not None:
            write_history(log_csv, history)

    last_save = time.monotonic()
    bar = progress_bar(total=steps, initial=start, desc=desc, disable=not progress or rank != 0, unit="step")
    running: dict[str, float] = {}
    try:
        for step in range(start, steps):
            for m in wrapped.values():
                m.train()
            numbers = task.train_step(wrapped, _to_device(task.batch(step, rank, world), dev), optimize)
            for s in schedulers.values():
                s.step()
            row = {"step": step + 1, **numbers}
            if len(schedulers) == 1:
                row["lr"] = next(iter(schedulers.values())).get_last_lr()[0]
            else:
                row.update({f"lr_{n}": s.get_last_lr()[0] for n, s in schedulers.items()})
            running = {k: v if k not in running else 0.9 * running[k] + 0.1 * v for k, v in numbers.items()}
            postfix = {k: f"{v:.3f}" for k, v in running.items()}
            if task.validate is not None and ((step + 1) % validate_every == 0 or step + 1 == steps):
                for m in networks.values():
                    m.eval()
                with torch.no_grad():
                    row.update(task.validate(networks))
                postfix = {k: f"{v:.3f}" for k, v in row.items() if k.startswith("val_")} | postfix
            bar.set_postfix(postfix, refresh=False)  # drawn at the bar's own pace, not every step
            history.append(row)
            bar.update()
            if time.monotonic() - last_save > checkpoint_every:
                save(step + 1)
                last_save = time.monotonic()
        save(steps)
    finally:
        bar.close()
    return history

"""Weights files: one format for every network, loaded without unpickling.

A weights file is a ``torch.save`` of a plain dict: ``format`` (the network's format
name, e.g. ``"atomtools.unet/1"``), ``config`` (its architecture as JSON-able
numbers), ``state_dict`` (tensors) and free metadata (sampling, calibration, training
data, measured numbers). :func:`load_model` reads it with ``weights_only=True`` and
rebuilds the network from :data:`NETWORKS`; a new network registers one line there.
The model card is written from the same metadata (:func:`model_card`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..utils import atomic_path
from .counter import ColumnCounter, CounterConfig
from .rrdb import PatchConfig, PatchDiscriminator, RRDBConfig, RRDBNet
from .unet import UNet, UNetConfig
from .unrolled import UnrolledConfig, UnrolledNet

__all__ = [
    "NETWORKS",
    "MODEL_FORMAT",
    "COUNTER_FORMAT",
    "save_model",
    "load_model",
    "read_weights",
    "model_card",
    "n_parameters",
]

#: format name -> (network class, its config class with to_dict/from_dict).
NETWORKS: dict[str, tuple[type[nn.Module], type]] = {
    "atomtools.unet/1": (UNet, UNetConfig),
    "atomtools.rrdb/1": (RRDBNet, RRDBConfig),
    "atomtools.patchgan/1": (PatchDiscriminator, PatchConfig),
    "atomtools.counter/1": (ColumnCounter, CounterConfig),
    "atomtools.unrolled/1": (UnrolledNet, UnrolledConfig),
}

#: Format of the column-counter weights.
COUNTER_FORMAT = "atomtools.counter/1"

#: Format of the U-Net weights.
MODEL_FORMAT = "atomtools.unet/1"


def _format_of(model: nn.Module) -> str:
    for name, (cls, _) in NETWORKS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a network of atomtools.models.io.NETWORKS; register it there")


def save_model(path: str | Path, model: nn.Module, *, metadata: dict) -> Path:
    """Write weights and what it takes to use them; atomic.

    Parameters
    ----------
    path : str or Path
        The weights file (``.pt``).
    model : torch.nn.Module
        A network of :data:`NETWORKS` (with a ``config``).
    metadata : dict
        JSON-like metadata stored beside the weights (no objects: the file must load
        with ``weights_only=True``).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(
            {"format": _format_of(model), "config": model.config.to_dict(), "state_dict": state, **metadata}, tmp
        )
    return path


def read_weights(path: str | Path):
    """What ``torch.load(path, weights_only=True)`` reads, with errors that name the file.

    Parameters
    ----------
    path : str or Path
        A file written by ``torch.save`` (weights, a training checkpoint).

    Returns
    -------
    object
        What the file holds: a state dict, or a dict of plain data and tensors (a checkpoint),
        loaded to the CPU.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is empty, truncated or not a PyTorch file, or holds Python objects
        beyond tensors and plain data (which are never unpickled here: a file written by
        :func:`save_model` holds none, so such a file was written by something else).
    """
    import pickle
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): an interrupted download or copy; fetch or write it again")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if "Unsupported" in ln or "GLOBAL" in ln]
        first = lines[0] if lines else type(err).__name__
        raise ValueError(
            f"{path} holds Python objects beyond tensors and plain data, which atomtools never unpickles "
            f"(an atomtools weights file holds none; do not load this file with weights_only=False unless you "
            f"wrote it yourself): {first}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, KeyError) as err:
        raise ValueError(
            f"{path} is not a readable PyTorch weights file (truncated, or not written by torch.save; "
            f"{path.stat().st_size} bytes): {type(err).__name__}: {err}"
        ) from None


def load_model(path: str | Path, *, expected: str | None = None) -> tuple[nn.Module, dict]:
    """Load a network written by :func:`save_model` (``torch.load(weights_only=True)``: no unpickling).

    Parameters
    ----------
    path : str or Path
        The weights file.
    expected : str, optional
        Format the caller needs (e.g. ``"atomtools.unet/1"``); default any of
        :data:`NETWORKS`.

    Returns
    -------
    (torch.nn.Module, dict)
        The network in eval mode, and the metadata (``sampling``, ``temperature``, ...).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is no atomtools weights file (of the expected format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}")
    state = read_weights(path)
    fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
    wanted = (expected,) if expected else tuple(NETWORKS)
    if fmt not in wanted:
        kind = "U-Net" if expected == MODEL_FORMAT else "weights"
        raise ValueError(
            f"{path} is not an atomtools {kind} file (format {fmt!r}, expected {' or '.join(map(repr, wanted))})"
        )
    cls, config_cls = NETWORKS[fmt]
    model = cls(config_cls.from_dict(state["config"]))
    model.load_state_dict(state["state_dict"])
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    return model.eval(), meta


def n_parameters(model: nn.Module) -> int:
    """Number of parameters (every parameter element, trainable or frozen).

    Parameters
    ----------
    model : torch.nn.Module
        The network.

    Returns
    -------
    int
        The number of parameter elements, summed over all of ``model.parameters()``.
    """
    return sum(p.numel() for p in model.parameters())


def model_card(path: str | Path, *, summary: str, use: str, data: str, limits: str, extra: str = "") -> str:
    """A markdown model card for a weights file.

    The architecture, training run, calibration and validation numbers come from the
    file's metadata; the task describes what the network does, how to use it, what it
    was trained on and where it stops.

    Parameters
    ----------
    path : str or Path
        The weights file.
    summary : str
        What the network does, in a sentence.
    use : str
        How to call it.
    data : str
        What it was trained on.
    limits : str
        What it was not trained for.
    extra : str
        Further markdown appended at the end.

    Returns
    -------
    str
        The model card, markdown, ending in a newline.
    """
    model, meta = load_model(path)
    cfg = meta["config"]
    tc = meta.get("train_config", {})
    arch = ", ".join(f"{k} {v}" for k, v in cfg.items())
    lines = [
        f"# Model card: `{Path(path).name}`",
        "",
        summary,
        "",
        "## Use",
        use,
        "",
        "## Architecture",
        f"{type(model).__name__}: {arch}; {n_parameters(model):,} parameters.",
        "",
        "## Training data",
        data,
        "",
        "## Training",
        f"{tc.get('steps')} steps of {tc.get('batch_size')} "
        + (
            f"crops of {tc.get('crop')} px"
            if "crop" in tc
            else f"samples of {tc.get('n')} px"
            if "n" in tc
            else "samples"
        )
        + f", AdamW lr "
        f"{tc.get('lr')}, seed {tc.get('seed')}, "
        f"start: {meta.get('init') or 'random'}; {meta.get('training_seconds', 0) / 60:.0f} min on "
        f"{meta.get('hardware', 'CPU')}.",
    ]
    if meta.get("temperature"):
        lines.append(
            "Calibration: temperature scaling on held-out structures, T = "
            f"{[round(t, 3) for t in meta['temperature']]}."
        )
    lines += [
        "",
        "## Validation (held-out samples, doses spread over the training range)",
        *[f"- {k}: {v:.3f}" for k, v in meta.get("validation", {}).items()],
        "",
        "## Limits",
        limits,
    ]
    if extra:
        lines += ["", extra]
    return "\n".join(lines) + "\n"

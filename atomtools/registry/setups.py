"""A profile's sizes turned into each work's configuration objects, and the training set every notebook shares.

:mod:`atomtools.registry.table` holds the table (which notebook, which sizes at which profile);
the functions here build the configs from it: :func:`simulation_setup` (01),
:func:`unet_setup` (02), :func:`gan_setup` (03), :func:`segmenter_setup` (06), and
:func:`training_set`, the dataset a notebook run alone simulates first. Where a setting
follows from others (a validation every fifth of the steps), the rule lives with the
config class (:meth:`atomtools.tomo.task.GanConfig.for_steps`,
:meth:`atomtools.localize.task.SegmenterConfig.for_library`).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from .table import DEFAULT_MATERIAL, DEFAULT_ZONE_AXIS, pretrained_unet, resolve

__all__ = ["split", "simulation_setup", "unet_setup", "gan_setup", "segmenter_setup", "training_set"]


def split(sizes: dict, cls) -> tuple[object, dict]:
    """Build dataclass ``cls`` from the entries of ``sizes`` that are its fields.

    Parameters
    ----------
    sizes : dict
        Settings (lists become tuples).
    cls : type
        A dataclass (``SimulationConfig``, ``UNetConfig``, ``TrainConfig``, ...).

    Returns
    -------
    (cls instance, dict)
        The instance, and the entries that were not its fields.
    """
    names_ = {f.name for f in fields(cls)}
    mine = {k: (tuple(v) if isinstance(v, list) else v) for k, v in sizes.items() if k in names_}
    return cls(**mine), {k: v for k, v in sizes.items() if k not in names_}


def simulation_setup(
    profile: str,
    *,
    n_structures: int | None = None,
    scheduler: str | None = None,
    material: str | None = None,
    zone_axis=None,
    **overrides,
) -> tuple[object, int, str | None]:
    """The training-set simulation at a profile: (SimulationConfig, n_structures, scheduler).

    Parameters
    ----------
    profile : {"smoke", "quick", "paper"}
        Run size.
    n_structures, scheduler : optional
        Override the profile's.
    material : str, optional
        The crystal (:func:`atomtools.core.materials.material`: a known name or any
        element with a cubic ASE reference state); None: CeO2.
    zone_axis : three int, optional
        Its zone axis; None: [110].
    **overrides
        Any :class:`~atomtools.simulation.SimulationConfig` field; ``None`` values
        are ignored.

    Returns
    -------
    tuple
        ``(config, n_structures, scheduler)``: the :class:`~atomtools.simulation.SimulationConfig`,
        the number of structures (int) and the scheduler (str or None).

    Examples
    --------
    >>> config, n, scheduler = simulation_setup("smoke", sampling=0.2)
    >>> config.sampling, n, scheduler
    (0.2, 2, 'synchronous')
    >>> simulation_setup("smoke", material="Pd")[0].material.channel_names
    ('Pd',)
    """
    from ..core.materials import material as _material
    from ..simulation import SimulationConfig

    if material is not None or zone_axis is not None:
        zone = tuple(int(v) for v in zone_axis) if zone_axis is not None else None
        overrides["material"] = _material(material or DEFAULT_MATERIAL, zone_axis=zone)

    config, rest = split(
        resolve("01_simulate", profile, n_structures=n_structures, scheduler=scheduler, **overrides), SimulationConfig
    )
    n, chosen = int(rest.pop("n_structures")), rest.pop("scheduler")
    if rest:
        raise ValueError(f"unknown simulation parameters {sorted(rest)}")
    return config, n, chosen


def unet_setup(
    profile: str, *, init: str | None = None, material: str | None = None, **overrides
) -> tuple[object, object, str | None]:
    """The U-Net and its training at a profile: (UNetConfig, TrainConfig, init).

    Parameters
    ----------
    profile : {"smoke", "quick", "paper"}
        Run size.
    init : str, optional
        ``"pretrained"`` (fine-tune the shipped weights), ``"random"`` (train from
        scratch) or a weights path; ``None`` keeps the profile's choice. For another
        material, ``"pretrained"`` is its shipped U-Net where there is one, else the
        CeO2 one's trunk (:func:`pretrained_unet`).
    material : str, optional
        The material the network is for; None: CeO2.
    **overrides
        :class:`~atomtools.columns.TrainConfig` or
        :class:`~atomtools.models.UNetConfig` fields; ``None`` values are ignored.

    Returns
    -------
    tuple
        ``(model, train, init)``: the :class:`~atomtools.models.UNetConfig`, the
        :class:`~atomtools.columns.TrainConfig`, and the starting weights (``"pretrained"``, a path as
        a str, or None for a random start).

    Examples
    --------
    >>> model, train, init = unet_setup("paper", steps=10)
    >>> model.width, train.steps, init
    (16, 10, None)
    """
    from ..columns import TrainConfig
    from ..models import UNetConfig

    model, rest = split(resolve("02_train_unet", profile, init=init, **overrides), UNetConfig)
    chosen = rest.pop("init")
    train, rest = split(rest, TrainConfig)
    if rest:
        raise ValueError(f"unknown training parameters {sorted(rest)}")
    if chosen == "pretrained" and (material or DEFAULT_MATERIAL) != DEFAULT_MATERIAL:
        from ..data import fetch

        chosen = str(fetch(pretrained_unet(material)))
    return model, train, (None if chosen == "random" else chosen)


def gan_setup(profile: str, *, init: str | None = None, seed: int = 0, **overrides) -> tuple[object, object, dict]:
    """The missing-wedge GANs' training at a profile: (inpainter config, refiner config, starts).

    Parameters
    ----------
    profile : {"smoke", "quick", "paper"}
        Run size.
    init : str, optional
        ``"pretrained"`` (fine-tune the shipped GANs) or ``"random"``; ``None`` keeps the
        profile's choice.
    seed : int
        Seed of the networks and samples (the refiner's is ``seed + 1``).
    **overrides
        ``inpaint_steps``, ``refine_steps``, ``batch_size``, ``lr``, ``validation``;
        ``None`` values are ignored.

    Returns
    -------
    (GanConfig, GanConfig, dict)
        The two training configs and ``{"inpainter": path or None, "refiner": path or None}``
        (None: random start).

    Examples
    --------
    >>> inpaint, refine, start = gan_setup("paper", inpaint_steps=10)
    >>> inpaint.steps, refine.steps, start
    (10, 20000, {'inpainter': None, 'refiner': None})
    """
    from ..tomo.task import GanConfig

    sizes = resolve("03_train_missing_wedge_gans", profile, init=init, **overrides)
    chosen = sizes.pop("init")
    if chosen not in ("pretrained", "random"):
        raise ValueError(f"init must be 'pretrained' or 'random', got {chosen!r}")
    common = dict(batch_size=sizes["batch_size"], lr=sizes["lr"], validation=sizes["validation"])
    inpaint = GanConfig.for_steps(sizes["inpaint_steps"], seed=seed, **common)
    refine = GanConfig.for_steps(sizes["refine_steps"], seed=seed + 1, **common)
    if chosen == "random":
        return inpaint, refine, {"inpainter": None, "refiner": None}
    from ..data import fetch

    return inpaint, refine, {"inpainter": str(fetch("tomo-inpaint")), "refiner": str(fetch("tomo-refine"))}


def segmenter_setup(
    profile: str, *, init: str | None = None, seed: int = 0, **overrides
) -> tuple[object, int, object, str | None]:
    """The atom segmenter's library and training at a profile: (LibraryConfig, n_images, SegmenterConfig, start).

    Parameters
    ----------
    profile : {"smoke", "quick", "paper"}
        Run size.
    init : str, optional
        ``"pretrained"`` (fine-tune the shipped segmenter), ``"random"`` or a weights
        path; ``None`` keeps the profile's choice.
    seed : int
        Seed of the network and batches.
    **overrides
        ``n_images``, ``size``, ``steps``, ``batch_size``, ``lr``; ``None`` values are ignored.

    Returns
    -------
    (LibraryConfig, int, SegmenterConfig, str or None)
        The library recipe, its size, the training settings and the start (a weights
        path, or None for a random start).

    Examples
    --------
    >>> library, n, train, start = segmenter_setup("paper", steps=10)
    >>> library.shape, n, train.steps, start
    ((256, 256), 20000, 10, None)
    """
    from ..localize.task import SegmenterConfig
    from ..simulation.library import LibraryConfig

    sizes = resolve("06_atom_segmentation", profile, init=init, **overrides)
    size = int(sizes["size"])
    train = SegmenterConfig.for_library(
        size=size,
        n_images=int(sizes["n_images"]),
        steps=int(sizes["steps"]),
        batch_size=int(sizes["batch_size"]),
        lr=float(sizes["lr"]),
        seed=seed,
    )
    chosen = sizes["init"]
    if chosen == "random":
        start = None
    elif chosen == "pretrained":
        from ..data import fetch

        start = str(fetch("atomseg"))
    else:
        start = str(chosen)
    return LibraryConfig(shape=(size, size)), int(sizes["n_images"]), train, start


def training_set(
    path: str | Path, profile: str, *, seed: int = 0, progress: bool = True, material: str | None = None, zone_axis=None
):
    """The training set of ``01_simulate`` at ``path``, simulated there first if missing.

    The shared first step of every notebook that runs alone: the same dataset the
    pipeline's ``01_simulate`` would have made at this profile (resumed if a run was
    interrupted).

    Parameters
    ----------
    path : str or Path
        The dataset store.
    profile : {"smoke", "quick", "paper"}
        Run size.
    seed : int
        Master seed (``01_simulate``'s default is 0).
    progress : bool
        Show a progress bar while simulating.
    material, zone_axis : optional
        The crystal (None: CeO2 along [110]); an existing store of another one is refused.

    Returns
    -------
    atomtools.storage.Dataset
        The finished dataset.
    """
    from ..simulation import make_dataset
    from ..storage import UnfinishedDatasetError, open_dataset

    config, n_structures, scheduler = simulation_setup(profile, material=material, zone_axis=zone_axis)
    try:
        ds = open_dataset(path)
        held = ds.attrs["config"].get("material", {})
        if held.get("name", DEFAULT_MATERIAL) != config.material.name or tuple(
            held.get("zone_axis", DEFAULT_ZONE_AXIS)
        ) != tuple(config.material.zone_axis):
            raise ValueError(
                f"{path} holds a training set of {held.get('name')} {held.get('zone_axis')}, not "
                f"{config.material.name} {list(config.material.zone_axis)}: pass its own path, or another material"
            )
        return ds
    except FileNotFoundError:
        pass  # not made yet
    except UnfinishedDatasetError:
        pass  # interrupted: make_dataset resumes it (anything else that lies there raises: never overwritten)
    make_dataset(path, config, n_structures=n_structures, seed=seed, scheduler=scheduler, progress=progress)
    return open_dataset(path)

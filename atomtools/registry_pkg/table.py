"""The notebook registry: the pipeline's order, sizes, handoffs and default paths in one table.

Each notebook is one :class:`Notebook` entry of :data:`NOTEBOOKS`: its sizes at each
profile (``smoke`` runs every notebook in seconds for tests and CI; ``quick``, the
default, reproduces every figure on a 2-core CPU; ``paper`` is the source works'
scale, for a GPU or a cluster), which of its parameters read an artifact of an
earlier notebook and which write one (:data:`ARTIFACTS`: where each lives under
``results/<profile>/``). The pipeline (:mod:`atomtools.pipeline`) hands the paths on
from this table; a notebook run alone gets the same paths from :func:`paths`, so a
reader's run and the pipeline's agree. Engines know no notebook names: a notebook
turns its sizes into engine settings with :func:`split`, and the steps several
notebooks share are one call each here (:func:`training_set`).

Adding a notebook is one entry in :data:`NOTEBOOKS` (and its artifacts in
:data:`ARTIFACTS`); see ``ARCHITECTURE.md``.
"""

from __future__ import annotations

import os
from copy import deepcopy
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = [
    "PROFILES",
    "DEFAULT_PROFILE",
    "DEFAULT_MATERIAL",
    "DEFAULT_ZONE_AXIS",
    "MATERIAL_NOTEBOOKS",
    "material_tag",
    "results_dir",
    "pretrained_unet",
    "unet_weights",
    "ARTIFACTS",
    "Notebook",
    "NOTEBOOKS",
    "per_profile",
    "names",
    "notebook",
    "current_profile",
    "settings",
    "resolve",
    "paths",
    "split",
    "simulation_setup",
    "unet_setup",
    "gan_setup",
    "segmenter_setup",
    "training_set",
]

PROFILES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "quick"

#: The material of the committed notebooks and of ``results/<profile>/``.
DEFAULT_MATERIAL = "CeO2"
DEFAULT_ZONE_AXIS = (1, 1, 0)

#: The notebooks that follow the ``material`` parameter (the column-counting chain);
#: a run for another material runs these and writes under ``results/<profile>/<material>/``.
MATERIAL_NOTEBOOKS = ("01_simulate", "02_train_unet", "04_evaluate")

#: What notebooks hand each other: artifact -> path under ``results/<profile>/``.
ARTIFACTS: dict[str, str] = {
    "train_dataset": "data/train.zarr",
    "unet_weights": "weights/unet.pt",
    "test_dataset": "data/test.zarr",
    "independent_dataset": "data/independent.zarr",
    "compact_dataset": "data/compact.zarr",
    "tomo_inpainter": "weights/tomo_inpaint.pt",
    "tomo_refiner": "weights/tomo_refine.pt",
    "series": "series",
    "atom_library": "data/library.zarr",
    "atomseg_weights": "weights/atomseg.pt",
}


@dataclass(frozen=True)
class Notebook:
    """One notebook of the pipeline.

    Attributes
    ----------
    name : str
        File name without ``.ipynb``; the number gives the order.
    sizes : dict
        Profile -> its sizes (the parameters a profile decides).
    inputs : dict
        Parameter -> artifact it reads (passed when an earlier notebook of the run
        makes it or it exists; else the notebook's own default applies).
    outputs : dict
        Parameter -> artifact it writes.
    """

    name: str
    sizes: dict[str, dict]
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if set(self.sizes) != set(PROFILES):
            raise ValueError(
                f"notebook {self.name}: sizes must be given for every profile {PROFILES}, got {sorted(self.sizes)}"
            )
        for param, artifact in {**self.inputs, **self.outputs}.items():
            if artifact not in ARTIFACTS:
                raise ValueError(
                    f"notebook {self.name}: parameter {param} names an unknown artifact "
                    f"{artifact!r}; known: {sorted(ARTIFACTS)}"
                )


def per_profile(**values: tuple) -> dict[str, dict]:
    """Sizes per profile, one named parameter per line: its values at smoke, quick and paper.

    Parameters
    ----------
    **values : tuple
        ``name=(smoke, quick, paper)`` for every parameter the profile decides.

    Returns
    -------
    dict
        ``{profile: {name: value}}`` for every profile of :data:`PROFILES`.

    Examples
    --------
    >>> per_profile(steps=(4, 600, 60000), crop=(64, 128, 256))["quick"]
    {'steps': 600, 'crop': 128}
    """
    for name, row in values.items():
        if not isinstance(row, tuple) or len(row) != len(PROFILES):
            raise ValueError(f"{name}: expected one value per profile {PROFILES}, got {row!r}")
    return {profile: {name: row[k] for name, row in values.items()} for k, profile in enumerate(PROFILES)}


NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook(
        "01_simulate",
        outputs={"out": "train_dataset"},
        sizes=per_profile(
            n_structures=(2, 160, 3000),
            images_per_structure=(2, 8, 16),
            shape=((128, 128), (256, 256), (320, 320)),
            size=((8.0, 12.0), (15.0, 34.0), (15.0, 40.0)),
            thickness=((1, 6), (1, 12), (1, 12)),
            frozen_phonons=(0, 0, 8),
            scheduler=("synchronous", None, None),
        ),
    ),
    Notebook(
        "02_train_unet",
        inputs={"dataset": "train_dataset"},
        outputs={"weights_out": "unet_weights"},
        sizes=per_profile(
            steps=(4, 600, 60000),
            batch_size=(2, 8, 32),
            crop=(64, 128, 256),
            width=(16, 16, 16),
            depth=(3, 3, 3),
            stem=(2, 2, 2),
            lr=(1e-3, 1e-3, 5e-3),
            init=("pretrained", "pretrained", "random"),
            validate_every=(2, 100, 1000),
            validation_images=(2, 32, 512),
        ),
    ),
    Notebook(
        "03_train_missing_wedge_gans",
        outputs={"inpainter_out": "tomo_inpainter", "refiner_out": "tomo_refiner"},
        sizes=per_profile(
            inpaint_steps=(2, 150, 40000),
            refine_steps=(2, 100, 20000),
            batch_size=(2, 8, 16),
            lr=(1e-4, 1e-4, 5e-4),
            init=("pretrained", "pretrained", "random"),
            validation=(2, 16, 64),
            tune_count=(1, 2, 8),
        ),
    ),
    Notebook(
        "04_evaluate",
        inputs={
            "weights": "unet_weights",
            "train_dataset": "train_dataset",
            "inpainter": "tomo_inpainter",
            "refiner": "tomo_refiner",
        },
        outputs={
            "test_out": "test_dataset",
            "independent_out": "independent_dataset",
            "compact_out": "compact_dataset",
        },
        sizes=per_profile(
            n_structures=(2, 16, 300),
            images_per_structure=(2, 4, 8),
            shape=((128, 128), (256, 256), (320, 320)),
            doses=(
                (300.0, 3000.0),
                (100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0),
                (100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0),
            ),
            calibration_images=(4, 32, 512),
            independent=(2, 32, 400),
            independent_shape=((160, 160), (256, 256), (320, 320)),
            tomo_count=(1, 3, 25),
            tomo_wedges=((45.0,), (30.0, 45.0, 60.0), (30.0, 45.0, 60.0)),
            compact=(1, 24, 200),
            compact_shape=((192, 192), (512, 512), (512, 512)),
        ),
    ),
    Notebook(
        "05_apply_to_experiment",
        inputs={"weights": "unet_weights"},
        outputs={"series_out": "series"},
        sizes=per_profile(
            n_frames=(8, 24, 120),
            shape=((128, 128), (256, 256), (320, 320)),
            size=(14.0, 26.0, 34.0),
            events=(
                {"vacancy": 1, "column_appears": 1},
                {"vacancy": 2, "refill": 1, "column_vanishes": 1, "column_appears": 1, "migration": 1},
                {"vacancy": 8, "refill": 4, "column_vanishes": 4, "column_appears": 4, "migration": 4},
            ),
            real_frames=((0, 4), (0, 30), (0, 600)),
        ),
    ),
    Notebook(
        "06_atom_segmentation",
        outputs={"library_out": "atom_library", "weights_out": "atomseg_weights"},
        sizes=per_profile(
            n_images=(6, 240, 20000),
            size=(64, 256, 256),
            steps=(2, 300, 60000),
            batch_size=(2, 8, 16),
            lr=(2e-4, 2e-4, 2e-3),
            init=("pretrained", "pretrained", "random"),
            eval_images=(3, 12, 60),
            eval_doses=((2e4, 1e6), (5e3, 2e4, 1e5, 1e6), (2e3, 5e3, 2e4, 1e5, 1e6)),
            eval_size=(96, 256, 256),
            bench_size=(256, 1024, 1024),
            real_crop=(192, None, None),
            hrtem_doses=((2e3,), (500, 2e3, 1e4), (300, 1e3, 3e3, 1e4)),
        ),
    ),
)

_BY_NAME = {nb.name: nb for nb in NOTEBOOKS}


def names() -> tuple[str, ...]:
    """The registered notebooks, in pipeline order."""
    return tuple(sorted(_BY_NAME))


def notebook(name: str) -> Notebook:
    """The registry entry of ``name``.

    Parameters
    ----------
    name : str
        Notebook name, e.g. ``"02_train_unet"``.

    Raises
    ------
    KeyError
        For an unregistered name; the message lists the known ones.
    """
    if name not in _BY_NAME:
        raise KeyError(f"no notebook {name!r} in the registry; known: {list(names())}")
    return _BY_NAME[name]


def current_profile(default: str = DEFAULT_PROFILE) -> str:
    """The profile named by ``ATOMTOOLS_PROFILE``, else ``default``.

    Parameters
    ----------
    default : str
        Profile when the variable is unset.
    """
    profile = os.environ.get("ATOMTOOLS_PROFILE", default) or default
    if profile not in PROFILES:
        raise ValueError(f"ATOMTOOLS_PROFILE={profile!r} is not a profile; expected one of {PROFILES}")
    return profile


def settings(name: str, profile: str) -> dict:
    """Sizes of notebook ``name`` at ``profile``.

    Parameters
    ----------
    name : str
        Notebook name.
    profile : {"smoke", "quick", "paper"}
        Run size.

    Examples
    --------
    >>> settings("02_train_unet", "smoke")["steps"]
    4
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return deepcopy(notebook(name).sizes[profile])


def resolve(name: str, profile: str, **overrides) -> dict:
    """Profile sizes with every override that is not ``None`` applied.

    Parameters
    ----------
    name, profile : str
        As for :func:`settings`.
    **overrides
        Sizes set explicitly (``None``: keep the profile's).

    Examples
    --------
    >>> resolve("02_train_unet", "smoke", steps=10, crop=None)["steps"]
    10
    >>> resolve("02_train_unet", "smoke", crop=None)["crop"]
    64
    """
    out = settings(name, profile)
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out


def material_tag(material: str | None = None, zone_axis=None) -> str | None:
    """The folder name of a material's results: None for the default (CeO2 along [110]).

    Parameters
    ----------
    material : str, optional
        A material name (:func:`atomtools.core.materials.material`); None: the default.
    zone_axis : three int, optional
        Its zone axis; None: [110].

    Raises
    ------
    ValueError
        For a name that is no material (the message lists the known ones).

    Examples
    --------
    >>> material_tag("CeO2"), material_tag("Au"), material_tag("Pd", (1, 0, 0))
    (None, 'Au', 'Pd-100')
    """
    from .core.materials import material as _material

    name = material or DEFAULT_MATERIAL
    _material(name)  # a clear error for an unknown one
    zone = tuple(int(v) for v in (zone_axis if zone_axis is not None else DEFAULT_ZONE_AXIS))
    if name == DEFAULT_MATERIAL and zone == DEFAULT_ZONE_AXIS:
        return None
    return name if zone == DEFAULT_ZONE_AXIS else f"{name}-{''.join(str(v) for v in zone)}"


def results_dir(profile: str, *, root: str = "..", material: str | None = None, zone_axis=None) -> str:
    """Where a profile's results go: ``<root>/results/<profile>[/<material>]``.

    Parameters
    ----------
    profile : str
        Run size.
    root : str
        The repository root as the caller sees it.
    material, zone_axis : optional
        Another material than the default: its results go in a folder of their own.

    Examples
    --------
    >>> results_dir("quick"), results_dir("quick", material="Au")
    ('../results/quick', '../results/quick/Au')
    """
    tag = material_tag(material, zone_axis)
    return f"{root}/results/{profile}" + (f"/{tag}" if tag else "")


def paths(
    name: str, profile: str, *, root: str = "..", material: str | None = None, zone_axis=None, **given
) -> dict[str, str]:
    """Every path parameter of a notebook: the given ones, else the pipeline's defaults.

    Parameters
    ----------
    name : str
        Notebook name.
    profile : {"smoke", "quick", "paper"}
        Run size: paths lie under ``<root>/results/<profile>/``.
    root : str
        The repository root as the notebook sees it (notebooks run in ``notebooks/``).
    material, zone_axis : optional
        Another material than CeO2 [110]: its paths lie under ``results/<profile>/<material>/``.
    **given
        Paths set by the reader or the pipeline (``None``: the default).

    Returns
    -------
    dict
        Each input and output parameter of the notebook, ``figures_dir`` and
        ``metrics_out``.

    Examples
    --------
    >>> paths("02_train_unet", "quick", weights_out=None)["weights_out"]
    '../results/quick/weights/unet.pt'
    >>> paths("02_train_unet", "quick", material="Au")["weights_out"]
    '../results/quick/Au/weights/unet.pt'
    """
    nb = notebook(name)
    base = results_dir(profile, root=root, material=material, zone_axis=zone_axis)
    out = {param: f"{base}/{ARTIFACTS[artifact]}" for param, artifact in {**nb.inputs, **nb.outputs}.items()}
    out["figures_dir"] = f"{base}/figures"
    out["metrics_out"] = f"{base}/metrics/{name}.json"
    out.update({k: str(v) for k, v in given.items() if v is not None})
    return out


def pretrained_unet(material: str | None = None) -> str:
    """The manifest name of the shipped U-Net for a material, else the CeO2 one (a trunk to start from).

    Parameters
    ----------
    material : str, optional
        Material name; None: CeO2.

    Examples
    --------
    >>> pretrained_unet("CeO2"), pretrained_unet("Cu")
    ('unet-ceo2', 'unet-ceo2')
    """
    return _own_unet(material) or "unet-ceo2"


def _own_unet(material: str | None) -> str | None:
    """The manifest name of the U-Net shipped for this very material, or None."""
    from .data import load_manifest

    name = f"unet-{(material or DEFAULT_MATERIAL).lower()}"
    return name if name in load_manifest() else None


def unet_weights(weights: str | None, *, trained: str | Path, material: str | None = None) -> str:
    """The column-counting weights a notebook uses: given, trained by this run, or shipped.

    Parameters
    ----------
    weights : str, optional
        A path, ``"pretrained"`` (the shipped weights of ``material``), or None.
    trained : str or Path
        Where ``02_train_unet`` writes them for this profile and material.
    material : str, optional
        Material name; None: CeO2.

    Raises
    ------
    ValueError
        When nothing fits: no weights given, none trained, none shipped for the material.
    """
    from .data import fetch

    if weights is not None and weights != "pretrained":
        return str(weights)
    if weights is None and Path(trained).exists():
        return str(trained)
    own = _own_unet(material)
    if own:
        return str(fetch(own))
    raise ValueError(
        f"no weights for {material}: none were trained at {trained} and none ship with atomtools; run "
        "02_train_unet for it first (python -m atomtools reproduce --material ...), or pass weights=PATH"
    )


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

    Examples
    --------
    >>> config, n, scheduler = simulation_setup("smoke", sampling=0.2)
    >>> config.sampling, n, scheduler
    (0.2, 2, 'synchronous')
    >>> simulation_setup("smoke", material="Pd")[0].material.channel_names
    ('Pd',)
    """
    from .core.materials import material as _material
    from .simulation import SimulationConfig

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

    Examples
    --------
    >>> model, train, init = unet_setup("paper", steps=10)
    >>> model.width, train.steps, init
    (16, 10, None)
    """
    from .columns import TrainConfig
    from .models import UNetConfig

    model, rest = split(resolve("02_train_unet", profile, init=init, **overrides), UNetConfig)
    chosen = rest.pop("init")
    train, rest = split(rest, TrainConfig)
    if rest:
        raise ValueError(f"unknown training parameters {sorted(rest)}")
    if chosen == "pretrained" and (material or DEFAULT_MATERIAL) != DEFAULT_MATERIAL:
        from .data import fetch

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
    from .tomo.task import GanConfig

    sizes = resolve("03_train_missing_wedge_gans", profile, init=init, **overrides)
    chosen = sizes.pop("init")
    if chosen not in ("pretrained", "random"):
        raise ValueError(f"init must be 'pretrained' or 'random', got {chosen!r}")
    common = dict(batch_size=sizes["batch_size"], lr=sizes["lr"], validation=sizes["validation"])
    inpaint = GanConfig(
        steps=sizes["inpaint_steps"], seed=seed, validate_every=max(1, sizes["inpaint_steps"] // 5), **common
    )
    refine = GanConfig(
        steps=sizes["refine_steps"], seed=seed + 1, validate_every=max(1, sizes["refine_steps"] // 5), **common
    )
    if chosen == "random":
        return inpaint, refine, {"inpainter": None, "refiner": None}
    from .data import fetch

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
    from .localize.task import SegmenterConfig
    from .simulation.library import LibraryConfig

    sizes = resolve("06_atom_segmentation", profile, init=init, **overrides)
    size = int(sizes["size"])
    crop = min(128, size)
    train = SegmenterConfig(
        steps=int(sizes["steps"]),
        batch_size=int(sizes["batch_size"]),
        crop=crop,
        lr=float(sizes["lr"]),
        validation=max(1, min(32, int(sizes["n_images"]) // 5)),
        validate_every=max(1, int(sizes["steps"]) // 4),
        seed=seed,
    )
    chosen = sizes["init"]
    if chosen == "random":
        start = None
    elif chosen == "pretrained":
        from .data import fetch

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
    from .simulation import make_dataset
    from .storage import open_dataset

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
    except ValueError as exc:
        if "unfinished" not in str(exc):
            raise  # something else lies there: say so, never overwrite it
    make_dataset(path, config, n_structures=n_structures, seed=seed, scheduler=scheduler, progress=progress)
    return open_dataset(path)

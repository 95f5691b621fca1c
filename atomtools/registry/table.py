"""The registry's table: each notebook's :class:`Notebook` entry in :data:`NOTEBOOKS`, its sizes
at each profile (:func:`per_profile`), its artifacts (:data:`ARTIFACTS`), and the paths and
weights a notebook run alone or in the pipeline resolves from them (see
:mod:`atomtools.registry`).
"""

from __future__ import annotations

import os
from copy import deepcopy
from dataclasses import dataclass, field
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
            tomo_sparse=((3,), (2, 3), (2, 3)),  # every k-th tilt of a 45 degree wedge
            tomo_held_doses=((float("inf"),), (float("inf"), 1e4), (float("inf"), 1e4)),
            tomo_withheld=(1, 13, 13),  # projections of the real series left out in turn
            tomo_band=(4, 32, 128),  # its slices reconstructed for that score
            tomo_tv_weights=((0.2,), (0.02, 0.05, 0.1, 0.2), (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)),
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
    """The registered notebooks, in pipeline order.

    Returns
    -------
    tuple of str
        The notebook names, sorted (their number prefixes give the pipeline order).
    """
    return tuple(sorted(_BY_NAME))


def notebook(name: str) -> Notebook:
    """The registry entry of ``name``.

    Parameters
    ----------
    name : str
        Notebook name, e.g. ``"02_train_unet"``.

    Returns
    -------
    Notebook
        The entry (its sizes per profile, handoff inputs and outputs).

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

    Returns
    -------
    str
        One of :data:`PROFILES`.
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

    Returns
    -------
    dict
        A deep copy of the sizes (name to value), safe to change.

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

    Returns
    -------
    dict
        The sizes of :func:`settings` updated with the overrides.

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

    Returns
    -------
    str or None
        ``"<material>"`` along [110], ``"<material>-<uvw>"`` along another zone axis; None for CeO2
        along [110].

    Raises
    ------
    ValueError
        For a name that is no material (the message lists the known ones).

    Examples
    --------
    >>> material_tag("CeO2"), material_tag("Au"), material_tag("Pd", (1, 0, 0))
    (None, 'Au', 'Pd-100')
    """
    from ..core.materials import material as _material

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

    Returns
    -------
    str
        The folder, relative to ``root``; not created.

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

    Returns
    -------
    str
        A manifest name (``"unet-ceo2"`` where the material has no U-Net of its own).

    Examples
    --------
    >>> pretrained_unet("CeO2"), pretrained_unet("Cu")
    ('unet-ceo2', 'unet-ceo2')
    """
    return _own_unet(material) or "unet-ceo2"


def _own_unet(material: str | None) -> str | None:
    """The manifest name of the U-Net shipped for this very material, or None."""
    from ..data import load_manifest

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

    Returns
    -------
    str
        The weights path: ``weights`` where it is a path, else ``trained`` where it exists (and
        ``weights`` is None), else the material's shipped weights (fetched).

    Raises
    ------
    ValueError
        When nothing fits: no weights given, none trained, none shipped for the material.
    """
    from ..data import fetch

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

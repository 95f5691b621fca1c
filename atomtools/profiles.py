"""Run profiles: the one place that turns ``smoke | quick | paper`` into sizes.

``smoke`` runs every notebook in seconds (tests and CI); ``quick`` is the default and
reproduces every figure on a 2-core CPU; ``paper`` is the source works' scale, for a
GPU or a cluster. Each notebook's parameters cell reads the profile from
``ATOMTOOLS_PROFILE`` and asks :func:`settings` for its sizes; a parameter the reader
sets explicitly (not ``None``) wins over the profile.
"""

from __future__ import annotations

import os
from copy import deepcopy

__all__ = ["PROFILES", "DEFAULT_PROFILE", "current_profile", "settings", "resolve"]

PROFILES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "quick"

_SETTINGS: dict[str, dict[str, dict]] = {
    "01_simulate": {
        "smoke": {"n_structures": 2, "images_per_structure": 2, "shape": (128, 128), "size": (8.0, 12.0), "thickness": (1, 6), "frozen_phonons": 0, "scheduler": "synchronous"},
        "quick": {"n_structures": 160, "images_per_structure": 8, "shape": (256, 256), "size": (15.0, 34.0), "thickness": (1, 12), "frozen_phonons": 0, "scheduler": None},
        "paper": {"n_structures": 3000, "images_per_structure": 16, "shape": (320, 320), "size": (15.0, 40.0), "thickness": (1, 12), "frozen_phonons": 8, "scheduler": None},
    },
    "02_train_unet": {
        "smoke": {"steps": 4, "batch_size": 2, "crop": 64, "width": 16, "depth": 3, "stem": 2, "lr": 1e-3, "init": "pretrained", "validate_every": 2, "validation_images": 2},
        "quick": {"steps": 600, "batch_size": 8, "crop": 128, "width": 16, "depth": 3, "stem": 2, "lr": 1e-3, "init": "pretrained", "validate_every": 100, "validation_images": 32},
        "paper": {"steps": 60000, "batch_size": 32, "crop": 256, "width": 16, "depth": 3, "stem": 2, "lr": 5e-3, "init": "random", "validate_every": 1000, "validation_images": 512},
    },
    "04_evaluate": {
        "smoke": {"n_structures": 2, "images_per_structure": 2, "shape": (128, 128), "doses": (300.0, 3000.0), "calibration_images": 4},
        "quick": {"n_structures": 16, "images_per_structure": 4, "shape": (256, 256), "doses": (100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0), "calibration_images": 32},
        "paper": {"n_structures": 300, "images_per_structure": 8, "shape": (320, 320), "doses": (100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0), "calibration_images": 512},
    },
}


def current_profile(default: str = DEFAULT_PROFILE) -> str:
    """The profile named by ``ATOMTOOLS_PROFILE``, else ``default``."""
    profile = os.environ.get("ATOMTOOLS_PROFILE", default) or default
    if profile not in PROFILES:
        raise ValueError(f"ATOMTOOLS_PROFILE={profile!r} is not a profile; expected one of {PROFILES}")
    return profile


def settings(notebook: str, profile: str) -> dict:
    """Sizes of ``notebook`` at ``profile``.

    Examples
    --------
    >>> settings("02_train_unet", "smoke")["steps"]
    4
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if notebook not in _SETTINGS:
        raise KeyError(f"no profile settings for notebook {notebook!r}; known: {sorted(_SETTINGS)}")
    return deepcopy(_SETTINGS[notebook][profile])


def resolve(notebook: str, profile: str, **overrides) -> dict:
    """Profile sizes with every override that is not ``None`` applied.

    Examples
    --------
    >>> resolve("02_train_unet", "smoke", steps=10, crop=None)["steps"], resolve("02_train_unet", "smoke", crop=None)["crop"]
    (10, 64)
    """
    out = settings(notebook, profile)
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out

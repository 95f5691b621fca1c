"""Inference: one tiled, batched, bounded-memory routine for any network (:func:`predict_tiled`)."""

from . import tiling
from .tiling import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*tiling.__all__]

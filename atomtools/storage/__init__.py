"""Storage: the dataset store, one format per kind of dataset (:class:`Layout`)."""

from . import datasets
from .datasets import *  # noqa: F403 - the module's public names, as its __all__ lists them

__all__ = [*datasets.__all__]

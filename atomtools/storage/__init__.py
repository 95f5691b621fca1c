"""Storage: the dataset store, one format per kind of dataset (:class:`Layout`)."""

from .datasets import HRTEM, LAYOUTS, Dataset, Layout, create_or_resume, finalize, missing_structures, open_dataset, write_structure

__all__ = ["Layout", "HRTEM", "LAYOUTS", "Dataset", "open_dataset", "create_or_resume", "write_structure", "missing_structures", "finalize"]

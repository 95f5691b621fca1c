"""Work 1: atoms per column from one noisy HRTEM frame, and the 3D model they give.

- :mod:`retrieval`: :func:`retrieve` a frame's columns, counts and confidence with a
  trained U-Net (on the shared tiled inference);
- :mod:`task`: the U-Net's training task on simulated datasets (on the shared loop);
- :mod:`baseline`: the classical method, peaks and calibrated integrated intensities;
- :mod:`reconstruct`: a 3D atomic model from a column table;
- :mod:`evaluation`: network and baseline scored alike against dose.
"""

from . import baseline, evaluation, reconstruct
from .retrieval import PRETRAINED, SAMPLING_TOLERANCE, Retriever, find_columns, load_retriever, predict_maps, retrieve
from .task import SegmentationBatches, TrainConfig, split_structures, train_unet, unet_card, weighted_soft_cross_entropy

__all__ = [
    "retrieve",
    "load_retriever",
    "predict_maps",
    "find_columns",
    "Retriever",
    "PRETRAINED",
    "SAMPLING_TOLERANCE",
    "TrainConfig",
    "SegmentationBatches",
    "weighted_soft_cross_entropy",
    "split_structures",
    "train_unet",
    "unet_card",
    "baseline",
    "reconstruct",
    "evaluation",
]

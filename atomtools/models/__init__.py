"""Neural networks (pure PyTorch modules) and their weights files.

Networks are built from a frozen config dataclass and know nothing of files or
training; :mod:`atomtools.models.io` saves and loads them (``weights_only=True``)
with their metadata and writes model cards.
"""

from .io import MODEL_FORMAT, NETWORKS, load_model, model_card, n_parameters, save_model
from .unet import UNet, UNetConfig, fuse_for_inference

__all__ = ["UNet", "UNetConfig", "fuse_for_inference", "NETWORKS", "MODEL_FORMAT", "save_model", "load_model", "model_card", "n_parameters"]

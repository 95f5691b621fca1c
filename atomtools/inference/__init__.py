"""Inference: one tiled, batched, bounded-memory routine for any network (:func:`predict_tiled`)."""

from .tiling import OutputTransform, Regression, SoftmaxHeads, auto_tile, predict_tiled, tile_offsets, window

__all__ = ["predict_tiled", "OutputTransform", "SoftmaxHeads", "Regression", "auto_tile", "window", "tile_offsets"]

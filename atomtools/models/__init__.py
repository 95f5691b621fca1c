"""Neural networks (pure PyTorch modules, no I/O)."""

from .unet import UNet, UNetConfig, fuse_for_inference

__all__ = ["UNet", "UNetConfig", "fuse_for_inference"]

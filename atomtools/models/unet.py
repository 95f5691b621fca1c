"""U-Net for per-pixel column classification: background or atoms per column, per element.

The network maps one normalized HRTEM image to one logit map per class of each head
(e.g. Ce: 13 classes, O: 13 classes). Pure PyTorch; no files, no training here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..utils import Record

__all__ = ["UNetConfig", "UNet", "fuse_for_inference"]


@dataclass(frozen=True)
class UNetConfig(Record):
    """Architecture of a :class:`UNet`.

    Attributes
    ----------
    in_channels : int
        Input images per sample (1: one HRTEM frame).
    heads : tuple of int
        Classes of each output head, background included (Ce, O); a head of 1 is one
        regression channel (an image out, as the tomogram refiner's).
    width : int
        Channels at full resolution; doubled at each level down.
    depth : int
        Number of 2x down-samplings.
    stem : int
        Pixel-unshuffle factor at the input: 2 runs the U-Net at half resolution on
        2x2 blocks of pixels (4 channels) and upsamples the logits bilinearly, about
        4x faster, for images sampled much finer than their resolution (0.16 Å/px
        against a ~0.8 Å information limit). 1 is the classic U-Net.
    """

    in_channels: int = 1
    heads: tuple[int, ...] = (13, 13)
    width: int = 16
    depth: int = 3
    stem: int = 1

    def __post_init__(self):
        if self.width < 1 or self.depth < 1 or not self.heads or min(self.heads) < 1 or self.stem not in (1, 2, 4):
            raise ValueError(f"invalid UNetConfig {self}: width, depth >= 1, every head >= 1 channel, stem 1, 2 or 4")

    @property
    def multiple(self) -> int:
        """Input sizes must be multiples of this [px]."""
        return self.stem * 2**self.depth


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Ronneberger et al. (2015) U-Net with batch norm, same-size padding and several heads.

    Examples
    --------
    >>> net = UNet(UNetConfig(width=4, depth=2, heads=(3, 2)))
    >>> net(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 5, 32, 32])
    """

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        w = config.width
        widths = [w * 2**i for i in range(config.depth + 1)]
        self.unshuffle = nn.PixelUnshuffle(config.stem) if config.stem > 1 else nn.Identity()
        self.down = nn.ModuleList(
            [_block(config.in_channels * config.stem**2, widths[0])]
            + [_block(widths[i - 1], widths[i]) for i in range(1, config.depth + 1)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            [nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2) for i in range(config.depth, 0, -1)]
        )
        self.merge = nn.ModuleList([_block(2 * widths[i - 1], widths[i - 1]) for i in range(config.depth, 0, -1)])
        self.head = nn.Conv2d(widths[0], sum(config.heads), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.config.multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"input size {tuple(x.shape[-2:])} must be a multiple of {m} px (pad or tile the image)")
        size = x.shape[-2:]
        x = self.unshuffle(x)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        x = self.head(x)
        if self.config.stem > 1:
            x = nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def split(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """Per-head logits from the stacked output."""
        return list(torch.split(logits, list(self.config.heads), dim=1))


def fuse_for_inference(model: UNet) -> nn.Module:
    """An inference copy with every batch norm folded into its convolution, in channels_last.

    Same outputs as ``model.eval()`` (to float32 round-off), fewer memory passes.

    Parameters
    ----------
    model : UNet
        The trained network.

    Returns
    -------
    torch.nn.Module
        A fused copy of ``model`` in eval mode, channels_last; ``model`` is left unchanged.
    """
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            out, i = [], 0
            while i < len(layers):
                if (
                    i + 1 < len(layers)
                    and isinstance(layers[i], nn.Conv2d)
                    and isinstance(layers[i + 1], nn.BatchNorm2d)
                ):
                    out.append(fuse_conv_bn_eval(layers[i], layers[i + 1]))
                    i += 2
                else:
                    out.append(layers[i])
                    i += 1
            for name in list(module._modules):
                del module._modules[name]
            for j, layer in enumerate(out):
                module.add_module(str(j), layer)
    return fused.to(memory_format=torch.channels_last)

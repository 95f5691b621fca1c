"""An unrolled reconstruction network: gradient steps on the measured data, each corrected by a small CNN.

:class:`UnrolledNet` is a learned gradient scheme (after Adler and Öktem, Inverse
Problems 33, 124007, 2017): from a start ``x0`` it takes ``iterations`` steps, each

    g = gradient(x)                               (the data term's gradient: the physics)
    dx, s = block_k([x, g, s])                    (a small CNN with a memory s)
    x = x - step_k * g + dx

so the measured projections enter every step and the network learns only what the
gradient does not give (what the missing wedge hides). The last convolution of every
block starts at zero: an untrained network is plain gradient descent (Landweber
iteration) from ``x0``, a classical method. Pure PyTorch: the gradient is a callable the
caller builds from its projector (:mod:`atomtools.tomo.unrolled`); no files here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..utils import Record

__all__ = ["UnrolledConfig", "UnrolledNet"]


@dataclass(frozen=True)
class UnrolledConfig(Record):
    """Architecture of an :class:`UnrolledNet`.

    Attributes
    ----------
    iterations : int
        Unrolled steps (each with its own block and step size).
    width : int
        Channels of each block's hidden convolutions.
    layers : int
        Convolutions per block (3x3, PReLU between them).
    memory : int
        Channels carried from step to step.
    step : float
        Initial step size of the gradient (of a gradient normalized as SIRT's); 0 makes
        the untrained network the identity on its start.
    start : {"fbp", "tv"}
        What the network starts from: the filtered back-projection of the measured rows,
        or their total-variation reconstruction (:func:`atomtools.tomo.classical.tv`),
        so that it learns only what TV misses.
    tv_iterations : int
        Iterations of that TV reconstruction (``start="tv"``).
    dilated : bool
        Dilate a block's k-th convolution by 2^k (a wider view at the same cost: missing-wedge
        artifacts reach far along the missing directions).
    """

    iterations: int = 8
    width: int = 24
    layers: int = 3
    memory: int = 4
    step: float = 1.0
    start: str = "fbp"
    tv_iterations: int = 800
    dilated: bool = False

    def __post_init__(self):
        if min(self.iterations, self.width, self.layers, self.tv_iterations) < 1 or self.memory < 0 or self.step < 0:
            raise ValueError(
                f"invalid UnrolledConfig {self}: iterations, width, layers, tv_iterations >= 1, memory >= 0, step >= 0"
            )
        if self.start not in ("fbp", "tv"):
            raise ValueError(f"UnrolledConfig.start must be 'fbp' or 'tv', got {self.start!r}")


def _block(channels_in: int, width: int, channels_out: int, layers: int, dilated: bool = False) -> nn.Sequential:
    modules: list[nn.Module] = []
    c = channels_in
    for k in range(layers - 1):
        d = 2**k if dilated else 1
        modules += [nn.Conv2d(c, width, 3, padding=d, dilation=d), nn.PReLU(width)]
        c = width
    last = nn.Conv2d(c, channels_out, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*modules, last)


class UnrolledNet(nn.Module):
    """Learned gradient descent (see the module's description).

    Parameters
    ----------
    config : UnrolledConfig
        Architecture.

    Examples
    --------
    >>> net = UnrolledNet(UnrolledConfig(iterations=2, width=4, layers=2, memory=1))
    >>> target = torch.ones(1, 1, 8, 8)
    >>> x = net(torch.zeros(1, 1, 8, 8), lambda x: x - target)  # untrained: gradient descent
    >>> float(x.detach().mean())
    1.0
    """

    def __init__(self, config: UnrolledConfig = UnrolledConfig()):
        super().__init__()
        self.config = config
        c = config
        blocks = (_block(2 + c.memory, c.width, 1 + c.memory, c.layers, c.dilated) for _ in range(c.iterations))
        self.blocks = nn.ModuleList(blocks)
        self.steps = nn.Parameter(torch.full((c.iterations,), float(c.step)))

    def forward(self, x0: torch.Tensor, gradient: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Unroll from ``x0``.

        Parameters
        ----------
        x0 : torch.Tensor
            (B, 1, n, n) start (a classical reconstruction).
        gradient : callable
            ``gradient(x) -> (B, 1, n, n)``: the data term's gradient at ``x``.

        Returns
        -------
        torch.Tensor
            (B, 1, n, n) the reconstruction.
        """
        x = x0
        memory = x0.new_zeros((x0.shape[0], self.config.memory, *x0.shape[-2:]))
        for k, block in enumerate(self.blocks):
            g = gradient(x)
            out = block(torch.cat([x, g, memory], dim=1))
            x = x - self.steps[k] * g + out[:, :1]
            memory = torch.relu(out[:, 1:])
        return x

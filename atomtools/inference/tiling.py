"""Tiled, batched, bounded-memory inference of any image-to-image network.

:func:`predict_tiled` runs a network over a 2D array in overlapping tiles, blends the
tiles' outputs with a linear-ramp window, and hands the blended values of each band of
rows to an output transform, which turns them into the maps it keeps. Only one band
of blended values (tile rows x frame width x values) is held at a time, so a
4096 x 4096 frame needs its output maps plus one band, never the whole stack. A frame
up to the tile size is one tile: no padding beyond the network's stride, no blending,
and a transform that can (``store_output``) reads its maps straight from the network's
output without materializing the values it would have blended.

The transform decides what the network's output means:

- :class:`SoftmaxHeads`: one softmax per head (classes), calibrated by a temperature;
  keeps the most probable class, its probability and one minus the background's;
- :class:`Regression`: the output channels as they are (a denoised image, a
  sinogram, a refined reconstruction).

A new kind of network brings its own transform (three methods), not its own tiling.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

__all__ = [
    "OutputTransform",
    "SoftmaxHeads",
    "Regression",
    "auto_tile",
    "window",
    "tile_offsets",
    "predict_tiled",
    "resolve_device",
    "device_of",
]


class OutputTransform(Protocol):
    """What :func:`predict_tiled` needs to know about a network's output.

    Optionally also ``store_output(outputs, rows, z)``: the maps of a frame that is one
    tile straight from the (rows, W, C_net) network output, skipping ``values``.
    """

    channels: int  # values blended per pixel

    def values(self, z: torch.Tensor) -> torch.Tensor:
        """(B, h, w, C_net) network output, channels last -> (B, h, w, channels) float32 values to blend."""

    def allocate(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """The output maps for a (H, W) frame."""

    def store(self, outputs: dict, rows: slice, values: torch.Tensor) -> None:
        """Write the maps of some rows from their blended (rows, W, channels) values."""


class SoftmaxHeads:
    """Classification heads: per head, a softmax over its classes at a temperature.

    Parameters
    ----------
    heads : sequence of int
        Classes of each head (class 0 is the background).
    temperature : sequence of float, optional
        Calibration temperature of each head (default 1).

    Maps kept, each (heads, H, W): ``classes`` (uint8, most probable class),
    ``confidence`` (float32, its probability) and ``foreground`` (float32, one minus
    the background probability).
    """

    def __init__(self, heads, temperature=None):
        self.heads = tuple(int(h) for h in heads)
        self.channels = sum(self.heads)
        t = np.ones(len(self.heads), np.float32) if temperature is None else np.asarray(temperature, np.float32)
        if t.shape != (len(self.heads),) or not np.all(t > 0):
            raise ValueError(f"need one positive temperature per head ({len(self.heads)}), got {temperature}")
        self._inv_t = torch.from_numpy(np.repeat(1.0 / t, self.heads).astype(np.float32))
        self._bounds = np.cumsum((0,) + self.heads)

    def values(self, z: torch.Tensor) -> torch.Tensor:
        # The softmax runs over the channel axis of the NCHW view of these channels-last
        # logits: the same memory, but PyTorch's channels-last kernel, 4x faster on this
        # CPU than a softmax over the last axis of the NHWC view (benchmarks/infer.py).
        nchw = (z.float() * self._inv_t).permute(0, 3, 1, 2)
        out = torch.empty(z.shape, dtype=torch.float32)
        out_nchw = out.permute(0, 3, 1, 2)
        for a, b in zip(self._bounds[:-1], self._bounds[1:]):
            out_nchw[:, a:b] = torch.softmax(nchw[:, a:b], dim=1)
        return out

    def allocate(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        n = len(self.heads)
        return {
            "classes": np.zeros((n, *shape), np.uint8),
            "confidence": np.zeros((n, *shape), np.float32),
            "foreground": np.zeros((n, *shape), np.float32),
        }

    def store_output(self, outputs: dict, rows: slice, z: torch.Tensor) -> None:
        """Maps of some rows straight from the (rows, W, C_net) network output (one tile, nothing to blend).

        The same maps as ``store(values(z))`` (to float32 round-off) without writing
        every class's probability: per head the largest logit, the sum of exponentials
        relative to it, and the background's share (2x faster on a 2-core CPU at
        512 x 512, ``benchmarks/infer.py``).
        """
        z = z.float()
        for h, (a, b) in enumerate(zip(self._bounds[:-1], self._bounds[1:])):
            logits = z[..., a:b] * self._inv_t[a:b]
            top, index = logits.max(dim=-1)
            e = torch.exp(logits - top[..., None])
            total = e.sum(dim=-1)
            outputs["classes"][h, rows] = index.numpy()
            outputs["confidence"][h, rows] = (1.0 / total).numpy()
            outputs["foreground"][h, rows] = (1.0 - e[..., 0] / total).numpy()

    def store(self, outputs: dict, rows: slice, values: torch.Tensor) -> None:
        for h, (a, b) in enumerate(zip(self._bounds[:-1], self._bounds[1:])):
            probs = values[..., a:b]
            best, index = probs.max(dim=-1)
            outputs["classes"][h, rows] = index.numpy()
            outputs["confidence"][h, rows] = best.numpy()
            outputs["foreground"][h, rows] = 1.0 - probs[..., 0].numpy()


class Regression:
    """The network's output channels as they are: ``image`` (channels, H, W) float32.

    Parameters
    ----------
    channels : int
        Output channels of the network.
    """

    def __init__(self, channels: int = 1):
        self.channels = int(channels)

    def values(self, z: torch.Tensor) -> torch.Tensor:
        return z.float()

    def allocate(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        return {"image": np.zeros((self.channels, *shape), np.float32)}

    def store(self, outputs: dict, rows: slice, values: torch.Tensor) -> None:
        outputs["image"][:, rows] = np.moveaxis(values.numpy(), -1, 0)


def window(n: int, overlap: int) -> np.ndarray:
    """Blending window: linear ramps over ``overlap`` pixels at both ends, never zero.

    Parameters
    ----------
    n : int
        Tile length [px].
    overlap : int
        Overlap of neighbouring tiles [px].

    Returns
    -------
    numpy.ndarray
        The weights in [0.001, 1], float32, shape (n,); all ones where ``overlap <= 0``.

    Examples
    --------
    >>> window(6, 2).tolist()
    [0.25, 0.75, 1.0, 1.0, 0.75, 0.25]
    """
    i = np.arange(n, dtype=np.float32)
    if overlap <= 0:
        return np.ones(n, np.float32)
    return np.clip(np.minimum((i + 0.5) / overlap, (n - i - 0.5) / overlap), 1e-3, 1.0)


def tile_offsets(size: int, tile: int, stride: int) -> list[int]:
    """Start of each tile along one axis: every ``stride`` pixels, the last flush with the end.

    Parameters
    ----------
    size, tile, stride : int
        Axis length, tile length and step [px].

    Returns
    -------
    list of int
        The sorted start offsets [px]; ``[0]`` where the tile covers the axis.

    Examples
    --------
    >>> tile_offsets(100, 40, 30)
    [0, 30, 60]
    """
    if size <= tile:
        return [0]
    return sorted(set(list(range(0, size - tile, stride)) + [size - tile]))


def auto_tile(shape: tuple[int, int], multiple: int) -> int:
    """Tile size: the whole frame up to 1024 px (no overlap overhead), else 512 px.

    Parameters
    ----------
    shape : two int
        Frame (rows, cols) [px].
    multiple : int
        The network's stride: tiles are multiples of it [px].

    Returns
    -------
    int
        The tile side [px], a multiple of ``multiple``: the longer frame side rounded up to one when
        that is at most 1024, else 512.

    Examples
    --------
    >>> auto_tile((500, 300), 16), auto_tile((4096, 4096), 16)
    (512, 512)
    """
    side = int(np.ceil(max(shape) / multiple)) * multiple
    return side if side <= 1024 else 512


def resolve_device(device) -> torch.device:
    """A device to run networks on, checked: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``.

    Parameters
    ----------
    device : str or torch.device
        Where to run.

    Returns
    -------
    torch.device
        The device.

    Raises
    ------
    ValueError
        For a name PyTorch does not know, or a GPU this PyTorch cannot see (a CPU build,
        or no such card), naming what is available.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a device PyTorch knows (cpu, cuda, cuda:N, mps): {err}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index or 0) >= count:
            build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            raise ValueError(
                f"device {device!r}: this PyTorch ({torch.__version__}, {build}) sees {count} CUDA device(s); "
                "use device='cpu', or install a CUDA build of PyTorch on a machine with a GPU"
            )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r}: no Apple GPU (MPS) is available here; use device='cpu'")
    return dev


def device_of(network: nn.Module) -> torch.device:
    """Where a network's parameters are: where it runs.

    Parameters
    ----------
    network : torch.nn.Module
        The network.

    Returns
    -------
    torch.device
        Its parameters' device (the CPU for a network without any).
    """
    first = next(network.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def predict_tiled(
    image: np.ndarray,
    network: nn.Module,
    transform: OutputTransform,
    *,
    multiple: int = 1,
    tile: int | None = None,
    overlap: int = 32,
    batch: int | None = None,
) -> dict[str, np.ndarray]:
    """Run ``network`` over a 2D array in blended tiles; return the transform's maps.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) float32 network input (normalized as the network expects).
    network : torch.nn.Module
        Maps (B, 1, h, w) to (B, C_net, h, w), in eval mode (ideally channels_last); it
        runs where its parameters are (``network.to("cuda")``: on the GPU), the maps
        come back to the CPU.
    transform : OutputTransform
        What to keep of the output (:class:`SoftmaxHeads`, :class:`Regression`, ...).
    multiple : int
        The network's stride: inputs must be multiples of it [px].
    tile, overlap : int
        Tile size and overlap [px]; ``tile=None`` picks :func:`auto_tile`.
    batch : int, optional
        Tiles per forward pass; default about 256 x 256 x 4 pixels' worth.

    Returns
    -------
    dict
        The transform's maps, each (..., H, W), on the input's pixels.

    Examples
    --------
    >>> net = nn.Conv2d(1, 1, 3, padding=1, bias=False); _ = nn.init.constant_(net.weight, 0.0)
    >>> with torch.no_grad():
    ...     net.weight[0, 0, 1, 1] = 2.0
    >>> out = predict_tiled(np.ones((70, 90), np.float32), net, Regression(1), tile=32, overlap=8)
    >>> out["image"].shape, float(out["image"].min()), float(out["image"].max())
    ((1, 70, 90), 2.0, 2.0)
    """
    m = int(multiple)
    tile = auto_tile(image.shape, m) if tile is None else tile
    tile = max(m, (tile // m) * m)
    h0, w0 = image.shape
    # pad to at least one tile and to a multiple of the network's stride
    H = max(tile, int(np.ceil(h0 / m)) * m)
    W = max(tile, int(np.ceil(w0 / m)) * m)
    if overlap >= tile and (H > tile or W > tile):  # one tile blends nothing
        raise ValueError(f"overlap {overlap} px must be smaller than the tile {tile} px")
    padded = np.pad(image, ((0, H - h0), (0, W - w0)), mode="reflect" if min(h0, w0) > 1 else "edge")
    th, tw = min(tile, H), min(tile, W)
    batch = batch or max(1, (4 * 256 * 256) // (th * tw))
    rows, cols = tile_offsets(H, th, th - overlap), tile_offsets(W, tw, tw - overlap)
    outputs = transform.allocate((H, W))

    def crop() -> dict:
        return {k: v[..., :h0, :w0] for k, v in outputs.items()}

    device = device_of(network)

    def run(x: np.ndarray) -> torch.Tensor:  # (B, h, w) -> NHWC values, on the CPU
        z = network(torch.from_numpy(x[:, None]).to(device).contiguous(memory_format=torch.channels_last))
        return transform.values(z.permute(0, 2, 3, 1)).cpu()

    if len(rows) == 1 and len(cols) == 1:  # one tile: nothing to blend
        with torch.inference_mode():
            direct = getattr(transform, "store_output", None)
            if direct is None:
                transform.store(outputs, slice(0, H), run(padded[None].copy())[0])
            else:
                x = torch.from_numpy(padded[None, None].copy()).to(device)
                z = network(x.contiguous(memory_format=torch.channels_last))
                direct(outputs, slice(0, H), z.permute(0, 2, 3, 1)[0].cpu())
        return crop()
    # the band accumulator is channels-last (rows, cols, values), like the network's output
    acc = np.zeros((th, W, transform.channels), np.float32)
    wsum = np.zeros((th, W, 1), np.float32)
    win = (window(th, overlap)[:, None] * window(tw, overlap)[None, :])[:, :, None]
    with torch.inference_mode():
        for bi, r in enumerate(rows):
            for s in range(0, len(cols), batch):
                chunk = cols[s : s + batch]
                values = run(np.stack([padded[r : r + th, c : c + tw] for c in chunk])).numpy()
                for k, c in enumerate(chunk):
                    acc[:, c : c + tw] += values[k] * win
                    wsum[:, c : c + tw] += win
            end = rows[bi + 1] - r if bi + 1 < len(rows) else th
            acc[:end] /= wsum[:end]  # in place: no band-sized temporary
            transform.store(outputs, slice(r, r + end), torch.from_numpy(acc[:end]))
            acc[: th - end] = acc[end:]
            acc[th - end :] = 0
            wsum[: th - end] = wsum[end:]
            wsum[th - end :] = 0
    return crop()

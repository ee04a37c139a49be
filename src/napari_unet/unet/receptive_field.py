"""The exact receptive field of one output pixel of :func:`~.tiling.predict_tiled`.

The input pixels that a_k(x) depends on are found by interval arithmetic, following
``UNet.forward`` layer by layer backwards (rows and columns are separable): a 3x3 conv
widens an interval by one pixel on each side of its own scale, a 2x2 max-pool maps output
rows [a, b] to input rows [2a, 2b + 1], a 2x2 stride-2 up-convolution maps [a, b] to
[a // 2, b // 2], the skip branch is shifted by its centre-crop offset and the two
branches of a concatenation are joined.

The field is *not* a centred square of side 2 * margin + 1. Pooling and up-convolution
round to the 2**depth grid, so how far the field reaches on each side depends on the
pixel's phase. Tiles start on the grid, so the field is the same for all pixels of one
phase. For ``padding="valid"`` and depth d (2**d = m, margin = 6m - 4), with
p = (x - margin) mod m, the deepest path (through the bottleneck) gives

- first row: the start of the pooling cell of x - margin, x - margin - p;
- last row: x + 7m - 5 - ((p - 4) mod m), from the nested floors of the up-convolutions;
- width: 13m - 4 if p >= 4, else 12m - 4 (depth >= 2; the skip branches lie inside).

For the paper's net (depth 4, valid) the field is 188 rows wide for 4 of the 16 phases
and 204 for the other 12, never the commonly quoted 2 * margin + 1 = 185 (input tile -
output tile + 1, 572 - 388 + 1). Every field contains the centred window
[x - 92, x + 93) and lies in [x - 107, x + 108), asymmetrically (:func:`phase_extents`).
``padding="same"`` gives the same widths for other phases (:func:`~.tiling.context` reads
enough context that zero padding at the tile borders never reaches a field). The bundled
nuclei model (depth 3, same) sees 92 or 100 pixels per axis.

Indices may lie outside the image: those are mirrored copies (:func:`~.tiling.mirror_index`).
The field is that of a plain prediction; with test-time augmentation a_k(x) is the mean
over flipped views, whose fields are the mirror images of other phases' fields.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .arguments import whole_number
from .errors import InputError
from .model import UNet
from .tiling import context, mirror_indices, tile_crop

Interval = tuple[int, int]  # inclusive [a, b] in the indices of one tensor


# ------------------------------------------------------------------ the public results
@dataclass(frozen=True)
class ReceptiveField:
    """A rectangle of input pixels, half-open ``[start, stop)`` image rows and columns.

    Rows or columns outside [0, H) are mirrored copies of image pixels.
    """

    rows: tuple[int, int]
    cols: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows[1] - self.rows[0], self.cols[1] - self.cols[0]

    @property
    def start(self) -> tuple[int, int]:
        return self.rows[0], self.cols[0]

    def clipped(self, shape: tuple[int, int]) -> ReceptiveField:
        """The part of the field inside an image of spatial ``shape`` (H, W)."""
        return ReceptiveField(_clip(self.rows, shape[0]), _clip(self.cols, shape[1]))

    def corners(self) -> np.ndarray:
        """The 4 (row, col) corners on the pixel edges, for a napari Shapes rectangle."""
        (r0, r1), (c0, c1) = self.rows, self.cols
        return np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]], float) - 0.5


def _clip(interval: tuple[int, int], n: int) -> tuple[int, int]:
    start = min(max(interval[0], 0), n)
    return start, max(start, min(interval[1], n))


def receptive_field_1d(model: UNet, index: int) -> tuple[int, int]:
    """Half-open [start, stop) of the image rows that output row ``index`` depends on."""
    start, size = _virtual_tile(model, index)
    walk = _Walk(model, size)
    a, b = walk.input_interval(_output_row(model, index, start))
    if walk.clipped:
        raise RuntimeError("zero padding reaches the field: the tiling context is too small")
    return start + a, start + b + 1


def receptive_field(model: UNet, position: tuple[int, int]) -> ReceptiveField:
    """The field of output pixel ``position`` = (row, col): rows from row, cols from col."""
    row, col = position
    return ReceptiveField(receptive_field_1d(model, row), receptive_field_1d(model, col))


def phase_extents(model: UNet) -> list[tuple[int, int]]:
    """(start - x, stop - x) of the field of a pixel x of each phase 0 .. 2**depth - 1."""
    extents = []
    for phase in range(model.size_multiple):
        start, stop = receptive_field_1d(model, phase)
        extents.append((start - phase, stop - phase))
    return extents


# ------------------------------------------------------------------ tile geometry
def _virtual_tile(model: UNet, index: int) -> tuple[int, int]:
    """(start, size): the grid-aligned input tile predict_tiled reads for row ``index``."""
    mult = model.size_multiple
    halo = context(model)
    start = mult * (index // mult) - halo
    if model.padding == "valid":
        return start, model.input_size_for_output(tile_crop(model, halo) + mult)
    return start, mult + 2 * halo


def _output_row(model: UNet, index: int, start: int) -> int:
    """The network output row of image row ``index`` for a tile starting at ``start``."""
    halo = context(model)
    return index - (start + halo) + tile_crop(model, halo)


# ------------------------------------------------------------------ interval arithmetic
def _attr(value: Any) -> int:
    """Axis-0 value of a kernel size / stride / padding (square kernels)."""
    value = value[0] if isinstance(value, tuple) else value
    if not isinstance(value, int):
        raise TypeError(f"unsupported layer setting {value!r}")
    return value


@dataclass
class _Walk:
    """Tensor sizes of one forward pass of a tile of ``size`` rows, and the walk back."""

    model: UNet
    size: int
    clipped: bool = False
    enc: list[list[tuple[nn.Conv2d, int]]] = field(default_factory=list)
    skips: list[int] = field(default_factory=list)
    bottom: list[tuple[nn.Conv2d, int]] = field(default_factory=list)
    ups: list[tuple[nn.ConvTranspose2d, int, int, list[tuple[nn.Conv2d, int]]]] = field(
        default_factory=list
    )
    head: list[tuple[nn.Conv2d, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.size
        for level in self.model.encoder:
            convs, n = _conv_sizes(level, n)
            self.enc.append(convs)
            self.skips.append(n)
            n = _pool_size(self.model.pool, n)
        self.bottom, n = _conv_sizes(self.model.bottleneck, n)
        for up, skip in zip(self.model.decoder, reversed(self.skips), strict=True):
            n_in, n = n, _upconv_size(up.upconv, n)
            top = (skip - n) // 2  # center_crop's offset
            convs, n_out = _conv_sizes(up.conv, n)
            self.ups.append((up.upconv, n_in, top, convs))
            n = n_out
        self.head, _ = _conv_sizes(self.model.head, n)

    def input_interval(self, row: int) -> Interval:
        """Rows of the input tile on which network output row ``row`` depends."""
        iv = self._convs_back(self.head, (row, row))
        # the rows of each skip wanted by the decoder
        need: list[Interval | None] = [None] * len(self.skips)
        for level, (upconv, n_in, top, convs) in enumerate(reversed(self.ups)):
            iv = self._convs_back(convs, iv)
            need[level] = (iv[0] + top, iv[1] + top)
            iv = self._upconv_back(upconv, iv, n_in)
        iv = self._convs_back(self.bottom, iv)
        for level in reversed(range(len(self.skips))):
            iv = _union(self._pool_back(iv, self.skips[level]), need[level])
            iv = self._convs_back(self.enc[level], iv)
        return iv

    def _clip(self, lo: int, hi: int, n: int | None) -> Interval:
        if n is None:
            return lo, hi
        if lo < 0 or hi > n - 1:
            self.clipped = True
        return max(lo, 0), min(hi, n - 1)

    def _convs_back(self, convs: list[tuple[nn.Conv2d, int]], iv: Interval) -> Interval:
        for conv, n_in in reversed(convs):
            k, s, p = _attr(conv.kernel_size), _attr(conv.stride), _attr(conv.padding)
            d = _attr(conv.dilation)
            iv = self._clip(iv[0] * s - p, iv[1] * s - p + d * (k - 1), n_in)
        return iv

    def _pool_back(self, iv: Interval, n_in: int) -> Interval:
        k, s = _attr(self.model.pool.kernel_size), _attr(self.model.pool.stride)
        return self._clip(iv[0] * s, iv[1] * s + k - 1, n_in)

    def _upconv_back(self, up: nn.ConvTranspose2d, iv: Interval, n_in: int) -> Interval:
        k, s = _attr(up.kernel_size), _attr(up.stride)
        if _attr(up.padding) != 0:
            raise TypeError("padded up-convolutions are not supported")
        return self._clip(-((k - 1 - iv[0]) // s), iv[1] // s, n_in)


def _union(a: Interval, b: Interval | None) -> Interval:
    """The union of two overlapping (or touching) intervals."""
    if b is None:
        return a
    if a[0] > b[1] + 1 or b[0] > a[1] + 1:
        raise RuntimeError(f"the receptive field is not contiguous: {a} and {b}")
    return min(a[0], b[0]), max(a[1], b[1])


def _conv_sizes(block: nn.Module, n: int) -> tuple[list[tuple[nn.Conv2d, int]], int]:
    """The convolutions of ``block`` in order with their input sizes, and the output size."""
    convs = []
    for conv in block.modules():
        if isinstance(conv, nn.Conv2d):
            convs.append((conv, n))
            k, s, p = _attr(conv.kernel_size), _attr(conv.stride), _attr(conv.padding)
            n = (n + 2 * p - _attr(conv.dilation) * (k - 1) - 1) // s + 1
    return convs, n


def _pool_size(pool: nn.MaxPool2d, n: int) -> int:
    return (n - _attr(pool.kernel_size)) // _attr(pool.stride) + 1


def _upconv_size(up: nn.ConvTranspose2d, n: int) -> int:
    return (n - 1) * _attr(up.stride) + _attr(up.kernel_size)


# ------------------------------------------------------------------ input gradient
def input_gradient(
    model: UNet,
    plane: np.ndarray,
    position: tuple[int, int],
    k: int,
    *,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, ReceptiveField]:
    """|d a_k(x) / d input| summed over channels on the field of x = ``position``.

    ``plane`` is a normalised (C, H, W) plane. The gradient is taken w.r.t. the mirrored
    input tile predict_tiled reads for x (pixels outside the image are not folded back),
    returned as float32 of the field's shape, with the field.
    """
    plane = _checked_plane(model, plane)
    row, col = _checked_position(position, plane.shape[1:])
    k = whole_number(k, "class index k", minimum=0, maximum=model.n_classes - 1)
    rf = receptive_field(model, (row, col))
    (r0, size), (c0, _) = _virtual_tile(model, row), _virtual_tile(model, col)
    tile = plane[:, mirror_indices(r0, r0 + size, plane.shape[1])]
    tile = tile[:, :, mirror_indices(c0, c0 + size, plane.shape[2])]
    out_pixel = (_output_row(model, row, r0), _output_row(model, col, c0))
    grad = _tile_gradient(model, np.ascontiguousarray(tile), out_pixel, k, device)
    (a, b), (c, d) = rf.rows, rf.cols
    return grad[a - r0 : b - r0, c - c0 : d - c0], rf


def _checked_plane(model: UNet, plane: Any) -> np.ndarray:
    plane = np.asarray(plane)
    if plane.ndim != 3 or plane.shape[0] != model.in_channels or 0 in plane.shape:
        raise InputError(
            f"plane must be a (C, H, W) array with C = {model.in_channels} channels, "
            f"got shape {plane.shape}"
        )
    if not np.issubdtype(plane.dtype, np.number) or np.iscomplexobj(plane):
        raise InputError(f"plane must hold real numbers, got dtype {plane.dtype}")
    return plane.astype(np.float32, copy=False)


def _checked_position(position: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    if not isinstance(position, tuple | list) or len(position) != 2:
        raise InputError(f"position must be (row, col), got {position!r}")
    row = whole_number(position[0], "position row", minimum=0)
    col = whole_number(position[1], "position column", minimum=0)
    if row >= shape[0] or col >= shape[1]:
        raise InputError(f"position {(row, col)} lies outside the plane of shape {shape}")
    return row, col


def _tile_gradient(
    model: UNet, tile: np.ndarray, pixel: tuple[int, int], k: int, device: str | torch.device
) -> np.ndarray:
    """|d a_k(pixel) / d tile| summed over channels, one float32 forward/backward."""
    dev = torch.device(device)
    param = next(model.parameters())
    same = param.device == dev and param.dtype == torch.float32
    net = model if same else copy.deepcopy(model).to(dev, torch.float32)
    was_training, flags = model.training, [p.requires_grad for p in net.parameters()]
    try:
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        x = torch.from_numpy(tile)[None].to(dev).requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(net(x)[0, k, pixel[0], pixel[1]], x)
    finally:
        for p, flag in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)
    return grad[0].abs().sum(0).float().cpu().numpy()

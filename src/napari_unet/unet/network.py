"""The U-Net of Ronneberger, Fischer & Brox (2015), figure 1, and its size arithmetic.

The network alone, in one file that imports nothing but torch: bioimage.io packages ship
it as ``unet.py`` so that consumers need only PyTorch. napari-unet uses
:class:`napari_unet.unet.model.UNet`, this network with its record (classes,
normalisation, training history).

Contracting path: per level two (3x3 conv, ReLU), then 2x2 max-pool with stride 2, channels
doubling. Expansive path: 2x2 up-convolution halving the channels, concatenation with the
(centre-cropped) skip connection, two (3x3 conv, ReLU). A final 1x1 convolution maps to the
K output feature channels a_k(x). With ``padding="valid"`` (the paper) every convolution is
unpadded: a 572x572 input tile gives a 388x388 output tile.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

PADDINGS = ("valid", "same")


class DoubleConv(nn.Sequential):
    """(3x3 conv [-> batch norm], ReLU) x 2, the unit of every level."""

    def __init__(self, in_ch: int, out_ch: int, padding: str, batch_norm: bool) -> None:
        pad = 1 if padding == "same" else 0
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers.append(nn.Conv2d(c_in, out_ch, 3, padding=pad, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Up(nn.Module):
    """2x2 up-convolution, crop-and-concatenate with the skip, DoubleConv."""

    def __init__(self, in_ch: int, out_ch: int, padding: str, batch_norm: bool) -> None:
        super().__init__()
        self.upconv = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * out_ch, out_ch, padding, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.upconv(x)
        return self.conv(torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1))


def center_crop(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Crop the last two axes of ``x`` to ``size`` around the centre ('copy and crop')."""
    h, w = x.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return x[..., top : top + size[0], left : left + size[1]]


class UNet(nn.Module):
    """The paper's U-Net.

    Parameters
    ----------
    in_channels: image channels (1 for grey, 3 for RGB).
    n_classes: K, the number of output feature channels a_k(x), one per class.
    depth: number of 2x2 max-pool steps (4 in the paper).
    base_channels: channels at the top level (64 in the paper), doubled per level.
    padding: ``"valid"`` (paper, exact overlap-tile) or ``"same"`` (output size = input size).
    batch_norm: batch normalisation after each convolution (not in the paper; helps short runs).
    dropout: dropout probability at the end of the contracting path (the paper uses dropout
        there; 0 disables it).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        depth: int = 4,
        base_channels: int = 64,
        padding: str = "valid",
        batch_norm: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if depth < 1 or base_channels < 1 or in_channels < 1 or n_classes < 1:
            raise ValueError("depth, base_channels, in_channels and n_classes must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.depth = depth
        self.base_channels = base_channels
        self.padding = padding
        self.batch_norm = batch_norm
        self.dropout_p = dropout

        chans = [base_channels * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList()
        c_prev = in_channels
        for c in chans[:-1]:
            self.encoder.append(DoubleConv(c_prev, c, padding, batch_norm))
            c_prev = c
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = DoubleConv(chans[-2], chans[-1], padding, batch_norm)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.decoder = nn.ModuleList(
            Up(chans[i + 1], chans[i], padding, batch_norm) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(chans[0], n_classes, kernel_size=1)
        self.reset_parameters()

    # ------------------------------------------------------------------ construction
    def config(self) -> dict[str, Any]:
        """Architecture arguments; ``UNet(**model.config())`` rebuilds the same network."""
        return {
            "in_channels": self.in_channels,
            "n_classes": self.n_classes,
            "depth": self.depth,
            "base_channels": self.base_channels,
            "padding": self.padding,
            "batch_norm": self.batch_norm,
            "dropout": self.dropout_p,
        }

    def reset_parameters(self) -> None:
        """He initialisation as in the paper: Gaussian with std sqrt(2 / N), N = fan-in."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                fan_in = m.weight.shape[1] * m.weight[0, 0].numel()
                if isinstance(m, nn.ConvTranspose2d):
                    # each output pixel of a stride-2, 2x2 up-convolution sees in_channels inputs
                    fan_in = m.weight.shape[0]
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def replace_head(self, n_classes: int) -> None:
        """Give the network a new, freshly initialised 1x1 head with ``n_classes`` outputs.

        Used to fine-tune a pretrained model on a task with a different number of classes.
        """
        head = nn.Conv2d(self.head.in_channels, n_classes, kernel_size=1)
        nn.init.normal_(head.weight, 0.0, math.sqrt(2.0 / self.head.in_channels))
        nn.init.zeros_(head.bias)
        self.head = head.to(self.head.weight.device)
        self.n_classes = n_classes

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output feature channels a_k(x), shape (N, K, H_out, W_out), pre-softmax."""
        for side in x.shape[-2:]:
            if self._output_size(side) is None:
                raise ValueError(
                    f"input of spatial shape {tuple(x.shape[-2:])} is not valid for this U-Net "
                    f"(next valid side: {self.valid_input_size(side)}); use predict_tiled "
                    "for images of any size"
                )
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottleneck(x))
        for up, skip in zip(self.decoder, reversed(skips), strict=True):
            x = up(x, skip)
        return self.head(x)

    def level_names(self) -> list[str]:
        """Names of the levels whose activations can be inspected, top to bottom to top."""
        enc = [f"encoder.{i}" for i in range(self.depth)]
        dec = [f"decoder.{i}" for i in range(self.depth)]
        return enc + ["bottleneck"] + dec + ["head"]

    # ------------------------------------------------------------------ size arithmetic
    @property
    def size_multiple(self) -> int:
        """2**depth: tiles must be placed on this grid for max-pooling to line up."""
        return 2**self.depth

    @property
    def margin(self) -> int:
        """Context consumed per side (pixels): output = input - 2 * margin (0 for 'same')."""
        if self.padding == "same":
            return 0
        # 2 pixels lost per 3x3-conv pair side at each scale, counted in input pixels:
        # down levels 0..d-1, the bottleneck at scale 2**d, up levels d-1..0.
        down = sum(2 * 2**i for i in range(self.depth))
        return 2 * down + 2 * 2**self.depth

    def _output_size(self, input_size: int) -> int | None:
        """Output side for an input side, or None if the size is not valid."""
        s = int(input_size)
        if self.padding == "same":
            return s if s > 0 and s % self.size_multiple == 0 else None
        for _ in range(self.depth):
            s -= 4
            if s <= 0 or s % 2:
                return None
            s //= 2
        s -= 4
        if s <= 0:
            return None
        for _ in range(self.depth):
            s = 2 * s - 4
        return s if s > 0 else None

    def output_size(self, input_size: int) -> int:
        """Output side length for an input side length; raises ValueError if not valid."""
        out = self._output_size(input_size)
        if out is None:
            raise ValueError(
                f"input size {input_size} is not valid for this U-Net "
                f"(next valid size: {self.valid_input_size(max(int(input_size), 1))})"
            )
        return out

    def is_valid_input_size(self, input_size: int) -> bool:
        return self._output_size(input_size) is not None

    def valid_input_size(self, at_least: int) -> int:
        """The smallest valid input side length >= ``at_least``."""
        s = max(int(at_least), 1)
        while self._output_size(s) is None:
            s += 1
        return s

    def input_size_for_output(self, output_size: int) -> int:
        """The smallest valid input side whose output side is >= ``output_size``."""
        return self.valid_input_size(max(output_size, 1) + 2 * self.margin)

    @property
    def min_input_size(self) -> int:
        return self.valid_input_size(1)


def crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Centre-crop ``x`` spatially to the spatial size of ``like`` (targets vs valid outputs)."""
    return center_crop(x, like.shape[-2:])

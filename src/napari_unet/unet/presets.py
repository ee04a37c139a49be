"""Named U-Net sizes shared by the widget and the command line.

``tiny`` and ``small`` are for interactive training on a laptop CPU (batch normalisation:
short runs converge much faster, DESIGN.md "measured hints"); ``paper`` is the network of
Ronneberger et al. (2015), figure 1: 4 poolings, 64 channels at the top, no normalisation,
dropout 0.5 at the end of the contracting path. All use valid (unpadded) convolutions, so
overlap-tile prediction is exact.

This module imports no torch until :func:`build_model` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import UNet

#: UNet keyword arguments of each preset (besides in_channels and n_classes).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"depth": 3, "base_channels": 8, "batch_norm": True, "dropout": 0.0},
    "small": {"depth": 4, "base_channels": 16, "batch_norm": True, "dropout": 0.0},
    "paper": {"depth": 4, "base_channels": 64, "batch_norm": False, "dropout": 0.5},
}

#: One line per preset, for help texts and combo boxes.
PRESET_DESCRIPTIONS: dict[str, str] = {
    "tiny": "depth 3, 8 channels at the top, batch norm (fast; CPU-friendly)",
    "small": "depth 4, 16 channels at the top, batch norm",
    "paper": "depth 4, 64 channels at the top, no batch norm, dropout 0.5 (the paper's)",
}

DEFAULT_PRESET = "tiny"


def preset_config(
    name: str, in_channels: int = 1, n_classes: int = 2, padding: str = "valid"
) -> dict[str, Any]:
    """The full ``UNet(**config)`` keyword arguments of preset ``name``."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return {
        "in_channels": int(in_channels),
        "n_classes": int(n_classes),
        "padding": padding,
        **PRESETS[name],
    }


def build_model(
    name: str, in_channels: int = 1, n_classes: int = 2, padding: str = "valid"
) -> UNet:
    """A freshly initialised :class:`~napari_unet.unet.model.UNet` of preset ``name``."""
    from .model import UNet

    model = UNet(**preset_config(name, in_channels, n_classes, padding))
    model.record.preset = name
    return model

"""The choices the widget offers: model presets, model sources, and how a model is
described. (The label modes and every rule about models and labels are the workflow's:
:mod:`napari_unet.workflow`.)

Pure Python (no Qt, no torch), so it is cheap to import and easy to test.
"""

from __future__ import annotations

from typing import Any

from ..unet.presets import PRESETS


def preset_label(name: str) -> str:
    """'tiny (depth 3, base 8, batch norm)': a preset of :mod:`napari_unet.unet.presets`."""
    cfg = PRESETS[name]
    bn = ", batch norm" if cfg.get("batch_norm") else ""
    return f"{name} (depth {cfg['depth']}, base {cfg['base_channels']}{bn})"


def preset_choices() -> list[tuple[str, str]]:
    """(label, preset name) for the preset combo box. All presets use the paper's valid
    convolutions (exact overlap-tile); the small ones add batch normalisation, which makes
    the short runs of interactive training converge much faster (DESIGN.md)."""
    return [(preset_label(name), name) for name in PRESETS]


NEW_MODEL = "New U-Net"
FROM_FILE = "From file..."
PRETRAINED_PREFIX = "Pretrained: "

PREDICT_SCOPES = ("current plane", "whole stack")


#: the bundled model offered first: fine-tuning it on scribbles is the quick path for nuclei
DEFAULT_PRETRAINED = "nuclei"


def model_sources(pretrained: list[str]) -> list[str]:
    """The model source choices: a new U-Net, each bundled model, a model file."""
    return [NEW_MODEL, *(PRETRAINED_PREFIX + name for name in pretrained), FROM_FILE]


def default_source(pretrained: list[str]) -> str:
    """The source the widget starts on: the bundled nuclei model if there is one (else the
    first bundled model), a new U-Net if nothing is bundled."""
    if not pretrained:
        return NEW_MODEL
    name = DEFAULT_PRETRAINED if DEFAULT_PRETRAINED in pretrained else pretrained[0]
    return PRETRAINED_PREFIX + name


def describe_model(model: Any) -> str:
    """Two or three lines about a model: architecture, classes, source, training so far
    (:func:`napari_unet.unet.record.summary`)."""
    if model is None:
        return "No model yet: Train creates one from the source above."
    from ..unet.record import summary

    return summary(model)


def describe_pending(source: str, summary: str = "") -> str:
    """What Train will start from while there is no current model (``summary``: what the
    chosen bundled model is and what it was trained on)."""
    if source == NEW_MODEL:
        return "No model yet: Train creates a new U-Net with the preset above."
    if source == FROM_FILE:
        return "No model yet: Train loads the file above and trains it further."
    return "Not loaded yet: Train fine-tunes this model (Load pretrained: use it as is)." + (
        f"\n{summary}" if summary else ""
    )

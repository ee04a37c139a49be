"""The choices the widget offers: model presets, label modes, and how a model is described.

Pure Python (no Qt, no torch), so it is cheap to import and easy to test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

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

LABEL_MODES = ("auto", "scribbles", "instances")
#: auto mode: a Labels layer with more distinct non-zero values than this, or any value
#: above it, holds instance ids (one per cell); otherwise it holds class values (scribbles).
INSTANCE_ID_THRESHOLD = 10
#: scribble class values above this are almost certainly instance ids picked in the wrong mode
MAX_SCRIBBLE_CLASSES = 50

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


def classes_for_training(model_classes: int, mode: str, label_classes: int) -> int:
    """The number of classes K a model must have to train on these annotations.

    A model keeps its K when it fits: instances need background/cell (K = 2), scribbles
    need at least the largest class value. Otherwise the annotations decide (and the model
    gets a new head).
    """
    if mode == "instances":
        return 2
    return max(model_classes, label_classes)


def _classes_and_runs(record: Any) -> tuple[str | None, list[str], list[Any]]:
    """(label mode, class names, training runs as dicts or TrainingRuns) of a
    :class:`~napari_unet.unet.record.ModelRecord` or of a format 1 metadata mapping."""
    if isinstance(record, Mapping):  # a metadata dict (or the transitional model.metadata)
        return (
            record.get("label_mode"),
            list(record.get("class_names") or []),
            list(record.get("training") or []),
        )
    return record.classes.label_mode, list(record.classes.names or []), list(record.training)


def predicts_instances(record: Any, n_classes: int) -> bool:
    """Whether predictions also give instances (connected components of channel 1): for
    models trained on instances, and for background/object models fine-tuned on scribbles
    (the bundled nuclei model keeps its class names "background", "nucleus").

    ``record``: ``model.record``, or a format 1 metadata mapping."""
    mode, names, _ = _classes_and_runs(record)
    if mode == "instances":
        return True
    return n_classes == 2 and len(names) == 2 and names[0] == "background"


def steps_trained(record: Any) -> int:
    """Optimiser steps a model has been trained for, over all its recorded runs
    (``model.record``, or a format 1 metadata mapping)."""
    _, _, runs = _classes_and_runs(record)
    return sum(
        int((r.get("steps_done") if isinstance(r, Mapping) else r.steps_done) or 0) for r in runs
    )


def detect_label_mode(values: np.ndarray) -> str:
    """'instances' if the layer holds more than :data:`INSTANCE_ID_THRESHOLD` distinct
    non-zero values or a value above it (cell ids), else 'scribbles' (class values).

    ``values`` are the distinct values of the layer (``np.unique`` of its data). A few
    cells numbered 1..n are indistinguishable from n classes: pick the mode by hand then.
    """
    values = np.asarray(values)
    nonzero = values[values != 0]
    if nonzero.size > INSTANCE_ID_THRESHOLD or (
        nonzero.size and nonzero.max() > INSTANCE_ID_THRESHOLD
    ):
        return "instances"
    return "scribbles"


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

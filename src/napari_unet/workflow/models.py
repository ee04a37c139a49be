"""Where the model comes from, and fitting it to the annotations: its head, its classes.

The same rules for the CLI (``--preset`` / ``--pretrained`` / ``--from``), the widget's
"source" choice and the scripts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..unet.data import InputError
from .labels import LabelPlan


@dataclass(frozen=True)
class ModelChoice:
    """A new U-Net of a preset, a bundled model by name, or a model file."""

    kind: str  # "new", "bundled" or "file"
    preset: str = ""
    padding: str = "valid"
    name: str = ""  # bundled model
    path: str | os.PathLike | None = None  # model file

    @classmethod
    def new(cls, preset: str | None = None, padding: str = "valid") -> ModelChoice:
        from ..unet.presets import DEFAULT_PRESET

        return cls("new", preset=preset or DEFAULT_PRESET, padding=padding)

    @classmethod
    def bundled(cls, name: str) -> ModelChoice:
        return cls("bundled", name=name)

    @classmethod
    def file(cls, path: str | os.PathLike | None) -> ModelChoice:
        return cls("file", path=path)


def open_model(
    choice: ModelChoice, in_channels: int = 1, n_classes: int = 2, device: str = "cpu"
) -> Any:
    """The model of ``choice``: a new one gets ``in_channels`` and ``n_classes``; a bundled
    model or a file is loaded as it is. Its record says where it came from ("new tiny
    U-Net", "bundled:nuclei", "file x.pt"); training adds runs, never changes that."""
    if choice.kind == "new":
        from ..unet.presets import build_model

        model = build_model(choice.preset, in_channels, n_classes, padding=choice.padding)
        model.record.source = f"new {choice.preset} U-Net"
        return model.to(device)
    if choice.kind == "bundled":
        from ..pretrained import load_pretrained

        return load_pretrained(choice.name, device=device)
    if choice.kind == "file":
        from ..io.checkpoint import load_model

        if not choice.path:
            raise InputError("choose a model file (*.pt) first")
        path = Path(choice.path)
        if not path.is_file():
            raise InputError(f"{path}: no such model file")
        model = load_model(path, device=device)
        if model.record.source is None:
            model.record.source = f"file {path.name}"
        return model
    raise InputError(f"unknown model source {choice.kind!r}")


def classes_for_training(model_classes: int, plan: LabelPlan) -> int:
    """The number of classes K a model must have to train on annotations of ``plan``.

    Instances need background / cell (K = 2) and dense labels exactly their K values; for
    scribbles a model keeps its K when it has at least the largest class value.
    """
    if plan.mode == "scribbles":
        return max(model_classes, plan.n_classes)
    return plan.n_classes


def check_class_names(names: list[str]) -> None:
    """Class names are distinct, non-empty text (they name layers and export channels)."""
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise InputError(f"class names must be non-empty text, got {names!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"class names must differ; given twice: {', '.join(duplicates)}")


def parse_class_names(text: str) -> list[str] | None:
    """Class names as a user types them: "background, nucleus" (None when empty)."""
    names = [n.strip() for n in str(text).split(",")]
    return None if names == [""] else names


def rename_classes(model: Any, names: list[str]) -> None:
    """Name the model's K classes (its record: saved files, layers, bioimage.io exports);
    the weights are untouched. Refuses a wrong count or bad names, changing nothing."""
    if len(names) != model.n_classes:
        raise InputError(
            f"{len(names)} class names for the model's {model.n_classes} classes: "
            + ", ".join(names)
        )
    check_class_names(names)
    model.record.classes = replace(model.record.classes, names=list(names))


def fit_model(model: Any, plan: LabelPlan, class_names: list[str] | None = None) -> list[str]:
    """Give ``model`` the head and the class record the annotations need; returns notices.

    A new, untrained output layer replaces the head when K must change (the rest of the
    network is kept). Dense labels record their values (predictions are written back with
    them) and name the classes "value v" unless ``class_names`` are given.
    """
    notices = []
    n_classes = classes_for_training(model.n_classes, plan)
    if class_names is not None and len(class_names) != n_classes:  # before any change
        raise InputError(
            f"{len(class_names)} class names for {n_classes} classes: " + ", ".join(class_names)
        )
    if class_names is not None:
        check_class_names(class_names)
    if model.n_classes != n_classes:
        notices.append(
            f"the model had {model.n_classes} classes, the annotations need {n_classes}: it "
            "got a new, untrained output layer (the rest of the network is kept)"
        )
        model.replace_head(n_classes)  # drops the old head's names, values and colours
    classes = model.record.classes
    values = None if plan.label_values is None else list(plan.label_values)
    if values is not None:
        class_names = class_names or [f"value {v}" for v in values]
    names = classes.names if class_names is None else list(class_names)
    model.record.classes = replace(classes, names=names, label_values=values)
    return notices


def object_channel(model: Any, requested: int | None = None) -> int | None:
    """The class channel that holds the objects to split into instances, or None.

    ``requested`` is a 1-based class (the CLI's ``--object-class``). Without it: the cell
    channel of a model trained on instances, or the object of a background / object model
    (the bundled nuclei model fine-tuned on scribbles keeps its names "background",
    "nucleus"); other models have no obvious object class.
    """
    if requested is not None:
        if not 1 <= requested <= model.n_classes:
            raise InputError(f"the object class must be between 1 and {model.n_classes}")
        return requested - 1
    if model.n_classes < 2:
        return None
    classes = model.record.classes
    if classes.label_mode == "instances":
        return 1
    names = classes.names or []
    if model.n_classes == 2 and len(names) == 2 and names[0] == "background":
        return 1
    return None


def label_values_table(model: Any) -> np.ndarray | None:
    """Class channel k -> the annotation value written (a dense model's ``label_values``),
    or None where channel k is simply value k + 1."""
    values = model.record.classes.label_values
    if values is None or len(values) != model.n_classes:
        return None
    values = np.asarray(values, dtype=np.int64)
    dtype = np.uint8 if values.max() < 256 else np.uint16 if values.max() < 65536 else np.int64
    return values.astype(dtype)


def steps_trained(model: Any) -> int:
    """Optimiser steps a model has been trained for, over all its recorded runs."""
    return model.record.steps_trained()

"""Getting a model ready to train on annotated planes, and what to tell the user first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..unet.data import TrainingSample
from .labels import LabelPlan
from .models import fit_model
from .samples import AnnotatedPlane, WeightRecipe, training_samples

#: the label offset worth a note (px), and how much of how many planes is measured
OFFSET_NOTE_PX = 0.25
OFFSET_PLANES, OFFSET_CROP = 8, 512


@dataclass
class PreparedTraining:
    """A model fitted to the annotations, its samples, and notes for the user."""

    model: Any
    samples: list[TrainingSample]
    plan: LabelPlan
    notices: list[str] = field(default_factory=list)

    @property
    def annotated_pixels(self) -> int:
        return sum(s.n_annotated for s in self.samples)

    def describe(self) -> str:
        m = self.model
        return (
            f"training a {m.depth}-level U-Net ({m.base_channels} channels at the top, "
            f"{m.n_classes} classes, {self.plan.describe()}) on {len(self.samples)} image "
            f"plane(s), {self.annotated_pixels} annotated pixels"
        )


def prepare_training(
    model: Any,
    planes: Sequence[AnnotatedPlane],
    plan: LabelPlan,
    recipe: WeightRecipe,
    *,
    class_names: list[str] | None = None,
    flips: bool = True,
    cancelled: Callable[[], bool] = lambda: False,
) -> PreparedTraining:
    """Fit the head and the class record to ``plan``, build the samples (recording the
    w(x) recipe), and note a label offset that flips cannot follow."""
    notices = fit_model(model, plan, class_names)
    samples = training_samples(model, planes, plan, recipe, cancelled)
    note = label_offset_note(planes, plan) if flips else None
    return PreparedTraining(model, samples, plan, notices + ([note] if note else []))


def label_offset_note(planes: Sequence[AnnotatedPlane], plan: LabelPlan) -> str | None:
    """A note when dense annotations seem to sit a fraction of a pixel off the structures
    of their images (:mod:`napari_unet.label_alignment`): training with flips cannot follow
    a fixed offset. Measured on the centre of a few planes; None for scribbles."""
    if plan.mode == "scribbles":
        return None
    from ..label_alignment import estimate_label_offset

    images, masks = [], []
    for plane in planes[:OFFSET_PLANES]:
        h, w = plane.labels.shape
        y0, x0 = max((h - OFFSET_CROP) // 2, 0), max((w - OFFSET_CROP) // 2, 0)
        crop = (slice(y0, y0 + OFFSET_CROP), slice(x0, x0 + OFFSET_CROP))
        grey = np.asarray(plane.image[(slice(None), *crop)], np.float64).mean(axis=0)
        # in the core's convention class 1 (the lowest dense value) is the background
        foreground = plan.to_core(plane.labels[crop]) > (1 if plan.mode == "dense" else 0)
        if foreground.any() and not foreground.all():
            images.append(grey)
            masks.append(foreground)
    try:
        dy, dx = estimate_label_offset(images, masks)
    except ValueError:
        return None  # flat images or no usable plane: nothing to say
    if max(abs(dy), abs(dx)) < OFFSET_NOTE_PX:
        return None
    return (
        f"note: the annotations may sit {dy:+.2f} px (y) and {dx:+.2f} px (x) off the "
        f"structures in the images (measured on {len(images)} plane(s)). Training with "
        "flips cannot follow a fixed offset; if the labels were made on another grid, "
        "see napari_unet.label_alignment and docs/accuracy.md"
    )

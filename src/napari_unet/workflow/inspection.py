"""One pixel of an image explained, for every front-end: the numbers behind x from one
prediction (:mod:`napari_unet.unet.pixel_report`), its receptive field, and the gradient
of its a_k(x) over that field. The widget reads the same numbers from its layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..unet.data import InputError
from .labels import LabelPlan
from .prediction import PredictOptions, segment
from .samples import AnnotatedPlane, WeightRecipe, pixel_terms, sample_of


@dataclass
class PixelExplanation:
    """What :func:`explain_pixel` finds: the report and the receptive field."""

    report: Any  # unet.pixel_report.PixelReport
    field: Any  # unet.receptive_field.ReceptiveField

    def lines(self, plane_axes: tuple[str, ...] = ()) -> list[str]:
        (r0, r1), (c0, c1) = self.field.rows, self.field.cols
        h, w = self.field.shape
        return [
            *self.report.lines(plane_axes),
            f"receptive field: rows {r0}..{r1 - 1}, columns {c0}..{c1 - 1} ({h} x {w} px)",
        ]


def class_names(model: Any) -> list[str]:
    """The model's class names, else "class k" (k = 1..K)."""
    return model.record.classes.names_of(model.n_classes)


def explain_pixel(
    model: Any,
    plane: np.ndarray,
    position: tuple[int, int],
    *,
    labels: np.ndarray | None = None,
    plan: LabelPlan | None = None,
    recipe: WeightRecipe | None = None,
    index: tuple[int, ...] = (),
    options: PredictOptions | None = None,
) -> PixelExplanation:
    """Predict one (C, H, W) ``plane`` and explain pixel ``position``: a_k(x), p_k(x) and,
    where ``labels`` (as drawn, read by ``plan``) annotate x, l(x), w(x) by ``recipe``
    (default: the model's recorded recipe) and the loss."""
    from ..unet.pixel_report import pixel_report
    from ..unet.receptive_field import receptive_field

    h, w = plane.shape[-2:]
    if not (0 <= position[0] < h and 0 <= position[1] < w):
        raise InputError(f"pixel {tuple(position)} lies outside the {h} x {w} plane")
    seg = segment(model, plane, 0, options or PredictOptions(), logits=True)
    terms = None
    if labels is not None and np.any(labels):
        if plan is None:
            raise InputError("labels need a label plan (how to read their values)")
        recipe = recipe or WeightRecipe.recorded(model) or WeightRecipe()
        sample = sample_of(model, AnnotatedPlane(plane, labels), plan, recipe)
        terms = pixel_terms(sample, labels, plan, recipe)
    report = pixel_report(
        seg.logits, position, plane=index, terms=terms, class_names=class_names(model)
    )
    return PixelExplanation(report, receptive_field(model, position))

"""Held-out annotations for validation during training, prepared like the training planes.

Every front-end marks its validation data as annotated planes (a second Labels layer on
the training image, or a held-out image / label pair; files in the CLI) and gets from
:func:`validation_set` the core's :class:`~napari_unet.unet.validation.Validation`: the
same normalisation, label plan and w(x) as training, and, for instance models, the drawn
cells and the instance split of prediction for the object F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..unet.arguments import choice, whole_number
from ..unet.data import InputError
from ..unet.validation import KEEP, Validation
from .labels import LabelPlan, detect_label_mode, distinct_values
from .prediction import InstanceOptions, split_instances
from .samples import AnnotatedPlane, WeightRecipe, sample_of


@dataclass(frozen=True)
class ValidationOptions:
    """How often to validate, when to stop, and which weights the model keeps."""

    every: int = 25  # steps between validations (and after the last step)
    patience: int = 0  # stop after this many validations without improvement; 0: never
    keep: str = "best"  # the weights at the end: "best" (validation score) or "last"

    def validate(self) -> None:
        whole_number(self.every, "validate every (steps)")
        whole_number(self.patience, "patience (validations)", minimum=0)
        choice(self.keep, "keep", KEEP)


def validation_set(
    model: Any,
    planes: Sequence[AnnotatedPlane],
    plan: LabelPlan,
    recipe: WeightRecipe,
    options: ValidationOptions = ValidationOptions(),
    *,
    training: Sequence[AnnotatedPlane] = (),
    instances: InstanceOptions | None = None,
    mode: str = "auto",
) -> tuple[Validation, list[str]]:
    """The validation of ``planes`` read by the training ``plan`` and ``recipe`` (call it
    after :func:`~napari_unet.workflow.prepare_training`: the model's head and
    normalisation are then those of the run), and notices for the user.

    Refuses validation labels that repeat the training labels, hold values the training
    labels do not, or (label ``mode`` "auto") read as another kind of labels; notes
    annotated pixels shared with a training plane (they make the scores optimistic).
    """
    options.validate()
    notices = check_validation_labels(planes, plan, training, mode)
    samples = [sample_of(model, plane, plan, recipe) for plane in planes]
    drawn, split = None, None
    if plan.mode == "instances":
        options_ = instances or InstanceOptions()
        options_.validate()
        channel = 1 if options_.object_class is None else options_.object_class - 1
        drawn = [np.asarray(plane.labels) for plane in planes]

        def split(probabilities: np.ndarray) -> np.ndarray:
            return split_instances(probabilities[channel], options_)

    validation = Validation(
        samples,
        every=options.every,
        patience=options.patience,
        keep=options.keep,
        instances=drawn,
        split=split,
    )
    validation.validate()
    validation.check_model(model)
    return validation, notices


def check_validation_labels(
    planes: Sequence[AnnotatedPlane],
    plan: LabelPlan,
    training: Sequence[AnnotatedPlane] = (),
    mode: str = "auto",
) -> list[str]:
    """The checks of :func:`validation_set` that need no model (run them before the model
    is fitted to the training labels, so that a refusal changes nothing); notices."""
    if not planes:
        raise InputError("the validation labels hold no annotated pixels")
    check_values(planes, plan, mode)
    return shared_pixels_notes(planes, training, plan)


def check_values(planes: Sequence[AnnotatedPlane], plan: LabelPlan, mode: str = "auto") -> None:
    """The validation labels hold only values the training labels give a meaning, and
    (label mode "auto") read as the same kind of labels."""
    values = distinct_values(plane.labels for plane in planes)
    if mode == "auto" and plan.mode != "dense":
        kind = detect_label_mode(values)
        if kind != plan.mode:
            raise InputError(
                f"the validation labels read as {kind}, the training labels as {plan.mode}: "
                "validate on labels of the same kind, or choose the label mode"
            )
    if plan.label_values is not None:
        unknown = sorted(set(values.tolist()) - set(plan.label_values))
        if unknown:
            raise InputError(
                f"the validation labels hold value(s) {unknown[:6]} that the training "
                f"labels do not ({', '.join(map(str, plan.label_values))})"
            )
    elif plan.mode == "scribbles" and values.size and int(values.max()) > plan.n_classes:
        raise InputError(
            f"the validation labels use class {int(values.max())}, the training labels "
            f"only classes 1 to {plan.n_classes}"
        )


def shared_pixels_notes(
    planes: Sequence[AnnotatedPlane], training: Sequence[AnnotatedPlane], plan: LabelPlan
) -> list[str]:
    """Refuse validation planes identical to training planes (same name, same image, same
    labels); note those that share annotated pixels with them (every pixel of dense labels
    is annotated)."""

    def annotated(labels: Any) -> np.ndarray:
        labels = np.asarray(labels)
        return np.ones(labels.shape, bool) if plan.mode == "dense" else labels != 0

    by_name = {plane.name: plane for plane in training if plane.name}
    notes = []
    for plane in planes:
        other = by_name.get(plane.name)
        if other is None or np.shape(other.labels) != np.shape(plane.labels):
            continue
        if not np.array_equal(other.image, plane.image):  # another image of that name
            continue
        if np.array_equal(other.labels, plane.labels):
            raise InputError(
                f"{plane.name}: the validation labels are the training labels; validate "
                "on annotations the model does not train on (another Labels layer or image)"
            )
        shared = int(np.count_nonzero(annotated(other.labels) & annotated(plane.labels)))
        if shared:
            notes.append(
                f"note: {shared} pixel(s) of {plane.name} are annotated for both training "
                "and validation; the validation scores will be optimistic there"
            )
    return notes

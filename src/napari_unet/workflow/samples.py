"""Annotated images -> training samples, with the weight map's recipe recorded in the model.

An :class:`AnnotatedPlane` is one 2-D plane, channels first, with its labels as the user
made them; :func:`training_samples` applies the :class:`LabelPlan` and the
:class:`WeightRecipe` the same way for every front-end, and records the recipe in the
model so that fine-tuning and the loss map use the same w(x).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..unet.data import IGNORE_INDEX, InputError, TrainingSample, prepare_sample
from ..unet.pixel_report import PixelTerms
from ..unet.record import WeightMapRecipe
from .labels import LabelPlan


@dataclass(frozen=True)
class WeightRecipe:
    """w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2) (eq. 2): the border term needs
    instance labels; w_c (class balance) applies in every mode."""

    border: bool = False
    w0: float = 10.0
    sigma: float = 5.0
    class_balance: bool = False

    def validate(self) -> None:
        if not (np.isfinite(self.w0) and self.w0 >= 0):
            raise InputError(f"w0 must be a number >= 0, got {self.w0}")
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise InputError(f"sigma must be > 0, got {self.sigma}")

    def record(self) -> WeightMapRecipe:
        """What the model's record keeps of the recipe (as the bundled models do)."""
        return WeightMapRecipe(float(self.w0), float(self.sigma), bool(self.class_balance))

    @classmethod
    def recorded(cls, model: Any) -> WeightRecipe | None:
        """The recipe a model was trained with, if it recorded one."""
        recipe = model.record.weight_map
        if recipe is None:
            return None
        return cls(True, recipe.w0, recipe.sigma, recipe.class_balance)


@dataclass
class AnnotatedPlane:
    """One plane to learn from: ``image`` (C, H, W) as read, ``labels`` (H, W) as drawn."""

    image: np.ndarray
    labels: np.ndarray
    name: str = ""


def annotated_planes(
    image: np.ndarray, labels: np.ndarray, channel_axis: int | None, name: str = ""
) -> Iterator[AnnotatedPlane]:
    """The annotated 2-D planes of an image or stack (``labels`` has its spatial shape);
    planes without a single annotated pixel are left out (they teach nothing)."""
    image = np.asarray(image)
    if channel_axis is None:
        channels_first = image[..., None, :, :]
    else:
        channels_first = np.moveaxis(image, channel_axis % image.ndim, -3)
    spatial = channels_first.shape[:-3] + channels_first.shape[-2:]
    if tuple(np.shape(labels)) != spatial:
        raise InputError(
            f"{name or 'the image'}: labels shape {tuple(np.shape(labels))} does not match "
            f"the image's spatial shape {spatial}"
        )
    for index in np.ndindex(*spatial[:-2]):
        plane_labels = np.asarray(labels[index])
        if not plane_labels.any():
            continue
        suffix = f"[{','.join(map(str, index))}]" if index else ""
        yield AnnotatedPlane(channels_first[index], plane_labels, name + suffix)


def training_samples(
    model: Any,
    planes: Sequence[AnnotatedPlane],
    plan: LabelPlan,
    recipe: WeightRecipe,
    cancelled: Callable[[], bool] = lambda: False,
) -> list[TrainingSample]:
    """One :class:`TrainingSample` per plane (normalised by the model's recipe, targets by
    ``plan``, w(x) by ``recipe``); records the w(x) recipe in the model when the border
    term is used. Stops early (returning what it has) when ``cancelled()``."""
    recipe.validate()
    samples = []
    for plane in planes:
        samples.append(sample_of(model, plane, plan, recipe))
        if cancelled():
            break
    if not samples:
        raise InputError("no annotated pixels in any label image")
    if plan.mode == "instances" and recipe.border:
        model.record.weight_map = recipe.record()
    return samples


def sample_of(
    model: Any, plane: AnnotatedPlane, plan: LabelPlan, recipe: WeightRecipe
) -> TrainingSample:
    """The training sample of one plane (also what the loss map of a prediction uses)."""
    try:
        return prepare_sample(
            plane.image,
            plan.to_core(plane.labels),
            mode=plan.core_mode,
            in_channels=model.in_channels,
            channel_axis=0,
            normalization=model.record.normalization_dict(),
            use_weight_map=recipe.border and plan.mode == "instances",
            w0=recipe.w0,
            sigma=recipe.sigma,
            class_balance=recipe.class_balance,
            name=plane.name,
        )
    except InputError as err:
        raise InputError(f"{plane.name}: {err}" if plane.name else str(err)) from err


def shown_weight(sample: TrainingSample) -> np.ndarray:
    """w(x) as a layer shows it: 0 where not annotated."""
    return np.where(sample.target != IGNORE_INDEX, sample.weight, 0.0).astype(np.float32)


def pixel_terms(
    sample: TrainingSample, labels: np.ndarray, plan: LabelPlan, recipe: WeightRecipe
) -> PixelTerms:
    """l(x), w(x) and w(x)'s border term of one plane, as the loss map uses them (the
    pixel inspector shows them term by term)."""
    from ..unet.weight_maps import border_term

    border = None
    if recipe.border and plan.mode == "instances":
        border = border_term(plan.to_core(labels), recipe.w0, recipe.sigma)
    return PixelTerms(sample.target, shown_weight(sample), border)


__all__ = [
    "AnnotatedPlane",
    "WeightRecipe",
    "annotated_planes",
    "pixel_terms",
    "sample_of",
    "shown_weight",
    "training_samples",
]

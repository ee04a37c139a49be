"""Turn the layers the user picked into arrays, checking everything a user can get wrong.

Every check raises :class:`napari_unet.unet.data.InputError` with a message meant for the user;
the widget shows it as a napari notification and changes nothing. No Qt, no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Layer

from ..unet.data import InputError
from ..workflow.labels import LabelPlan, distinct_values, interpret_labels


@dataclass
class ImageInput:
    """The image layer as the core sees it: spatial axes (..., H, W) plus a channel axis."""

    layer: Image
    channel_axis: int | None  # axis of ``data`` holding channels (-1 for RGB), None = grey
    in_channels: int
    spatial_shape: tuple[int, ...]  # (..., H, W), the shape of a matching Labels layer
    scale: tuple[float, ...]  # of the spatial axes
    translate: tuple[float, ...]

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def data(self) -> Any:
        return self.layer.data

    @property
    def axis_labels(self) -> tuple[str, ...]:
        """Names of the spatial axes for napari's sliders: the image layer's own names when
        it has some, else "z" (or "t", "z") and "y", "x" (napari's default is "-3", "-2"...)."""
        labels = [str(label) for label in self.layer.axis_labels]
        if self.channel_axis is not None and self.channel_axis >= 0:
            labels.pop(self.channel_axis)
        n = len(self.spatial_shape)
        if len(labels) == n and not all(re.fullmatch(r"-\d+", label) for label in labels):
            return tuple(labels)
        lead = {1: ("z",), 2: ("t", "z")}.get(n - 2, tuple(f"axis {i}" for i in range(n - 2)))
        return (*lead, "y", "x")

    @property
    def lead_shape(self) -> tuple[int, ...]:
        """Shape of the non-spatial leading axes (Z, T, ...): () for a 2D image."""
        return self.spatial_shape[:-2]


@dataclass
class LabelsInput:
    """The annotation layer: its data, what its values mean (the workflow's
    :class:`~napari_unet.workflow.LabelPlan`), and which planes are annotated."""

    layer: Labels
    plan: LabelPlan
    planes: list[tuple[int, ...]] = field(default_factory=list)  # annotated leading indices

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def mode(self) -> str:
        """ "scribbles", "instances" or "dense"."""
        return self.plan.mode

    @property
    def n_classes(self) -> int:
        """K the annotation asks for."""
        return self.plan.n_classes

    @property
    def data(self) -> Any:
        return self.layer.data


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions whose message is meant for the user (shown without a traceback):
    bad input, an unreadable model file, a training run that diverged. Imports torch."""
    from ..io.checkpoint import CheckpointError
    from ..unet.training import TrainingDiverged

    return (InputError, CheckpointError, TrainingDiverged)


def read_image(layer: Layer | None, channel_axis: int | None) -> ImageInput:
    """Check the image layer and work out its channel axis and spatial shape.

    napari RGB(A) layers always use their last axis as channels (``channel_axis`` is then
    ignored); otherwise ``channel_axis`` (an axis index, or None for grey) is used.
    """
    if layer is None:
        raise InputError(
            "pick an image layer (File > Open Sample > napari-unet-explorer > nuclei "
            "gives one to try)"
        )
    if not isinstance(layer, Image):
        raise InputError(
            f"'{layer.name}' is a {type(layer).__name__} layer: the image must be an Image layer"
        )
    if layer.multiscale:
        raise InputError(
            f"'{layer.name}' is a multiscale (pyramid) image: predict it headless with "
            "`napari-unet predict`, or add one resolution level as its own layer"
        )
    shape = tuple(int(s) for s in layer.data.shape)
    scale = tuple(float(s) for s in layer.scale)
    translate = tuple(float(t) for t in layer.translate)
    if layer.rgb:
        # napari's scale/translate of an RGB layer leave out the colour axis
        return ImageInput(layer, -1, shape[-1], shape[:-1], scale, translate)
    if channel_axis is None:
        if len(shape) < 2:
            raise InputError(f"'{layer.name}' must be at least 2D, got shape {shape}")
        return ImageInput(layer, None, 1, shape, scale, translate)
    if not 0 <= channel_axis < len(shape) - 2:
        raise InputError(
            f"channel axis {channel_axis} is not a leading axis of '{layer.name}' "
            f"(shape {shape}); pick 'none' for a grey image or stack"
        )
    keep = [i for i in range(len(shape)) if i != channel_axis]
    return ImageInput(
        layer,
        channel_axis,
        shape[channel_axis],
        tuple(shape[i] for i in keep),
        tuple(scale[i] for i in keep),
        tuple(translate[i] for i in keep),
    )


def read_labels(layer: Layer | None, image: ImageInput, mode: str = "auto") -> LabelsInput:
    """Check the annotation layer against the image and interpret its values
    (:func:`napari_unet.workflow.interpret_labels`: the rules and messages of every
    front-end); find the annotated planes. Raises :class:`InputError`."""
    if layer is None:
        raise InputError(
            "pick an annotation Labels layer: paint a few strokes per class in a Labels "
            "layer (1 = background, 2 = object, 0 = not annotated), or use instance labels"
        )
    if not isinstance(layer, Labels):
        raise InputError(
            f"'{layer.name}' is a {type(layer).__name__} layer: annotations must be a Labels layer"
        )
    shape = tuple(int(s) for s in layer.data.shape)
    if shape != image.spatial_shape:
        raise InputError(
            f"the annotation layer '{layer.name}' has shape {shape} but the image "
            f"'{image.name}' has spatial shape {image.spatial_shape}: they must match pixel "
            "for pixel"
        )
    data = np.asarray(layer.data)
    plan = interpret_labels(distinct_values([data]), mode, what=f"'{layer.name}'")
    lead = shape[:-2]
    if lead:
        planes = [idx for idx in np.ndindex(*lead) if np.any(data[idx])]
    else:
        planes = [()]
    return LabelsInput(layer, plan, planes)


def check_channels(model: Any, image: ImageInput) -> None:
    """The model takes as many channels as the image has."""
    if model.in_channels != image.in_channels:
        raise InputError(
            f"the model takes {model.in_channels} channel(s) but '{image.name}' has "
            f"{image.in_channels}: fix the channel axis, or make a model for this image: "
            "choose source 'New U-Net' and press 'Create new model', then Train"
        )


def check_trainable_size(model: Any, image: ImageInput) -> None:
    """The planes are at least the model's smallest input (training tiles cannot be padded
    with context that is not there; prediction pads)."""
    h, w = image.spatial_shape[-2:]
    if min(h, w) < model.min_input_size:
        raise InputError(
            f"'{image.name}' is {h}x{w} pixels, smaller than this model's smallest input "
            f"({model.min_input_size} px per side): use a larger image or a shallower model"
        )


def image_plane(image: ImageInput, index: tuple[int, ...]) -> np.ndarray:
    """One 2D plane (C, H, W) of the image at the leading index ``index`` (a copy)."""
    data = image.data
    if image.channel_axis is None:
        return np.array(data[index], dtype=None)[None]
    if image.channel_axis == -1:
        plane = np.array(data[index])
        return np.moveaxis(plane, -1, 0)
    # insert a full slice at the channel axis into the leading index
    full = list(index)
    full.insert(image.channel_axis, slice(None))
    return np.array(data[tuple(full)])

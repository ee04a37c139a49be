"""Validation data (section 1): a Labels layer the model does not train on, and the image
it annotates: a second Labels layer on the training image, or a held-out image with its
own annotations. Train scores the model on it every few steps (unet/validation.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui.widgets import ComboBox

from ..unet.data import InputError
from . import layers as L
from .inputs import ImageInput, read_image


class ValidationPick:
    """The validation labels and their image (both None: no validation)."""

    def __init__(self, viewer: Any, training_image: ComboBox) -> None:
        self.viewer = viewer
        self.training_image = training_image
        self.labels_layer = ComboBox(
            choices=self._labels_choices,
            nullable=True,
            value=None,
            tooltip="Annotations to validate on, not trained on: a second Labels layer on "
            "the training image, or the labels of a held-out image. Train then plots their "
            "loss and IoU (object F1 for instance labels) and keeps the best step's weights",
        )
        self.image_layer = ComboBox(
            choices=self._image_choices,
            nullable=True,
            tooltip="The image the validation labels annotate (same channels as training)",
        )
        self.labels_layer.changed.connect(self._pick_image)

    def _labels_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return L.input_labels(self.viewer)

    def _image_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return L.input_images(self.viewer)

    def reset_choices(self) -> None:
        self.labels_layer.reset_choices()
        self.image_layer.reset_choices()

    def _pick_image(self, *_: Any) -> None:
        """The image of the picked labels: the one picked if it fits, else the training
        image, else the first image of the labels' shape."""
        labels = self.labels_layer.value
        if labels is None:
            return
        shape = tuple(labels.data.shape)

        def fits(layer: Any) -> bool:
            if layer is None:
                return False
            spatial = tuple(layer.data.shape[:-1] if layer.rgb else layer.data.shape)
            return spatial == shape or spatial[-len(shape) :] == shape

        for candidate in (self.image_layer.value, self.training_image.value):
            if fits(candidate):
                self.image_layer.value = candidate
                return
        fitting = [c for c in self.image_layer.choices if fits(c)]
        if fitting:
            self.image_layer.value = fitting[0]

    def read(
        self, channel_axis: int | None
    ) -> tuple[ImageInput, Any, list[tuple[int, ...]]] | None:
        """(image, labels layer, annotated planes) of the validation pair, checked; None
        when no validation labels are picked. The values are read by the training
        labels' plan when training starts (workflow.validation_set). The image takes
        the training image's channel axis when it is that image or has its layout (as
        many axes): a held-out multi-channel image has its channels where training's has."""
        labels = self.labels_layer.value
        if labels is None:
            return None
        layer = self.image_layer.value
        if layer is None:
            raise InputError(f"pick the image that the validation labels '{labels.name}' annotate")
        training = self.training_image.value
        same_layout = training is not None and layer.ndim == training.ndim and not layer.rgb
        axis = channel_axis if layer is training or same_layout else None
        image = read_image(layer, axis)
        shape = tuple(int(s) for s in labels.data.shape)
        if shape != image.spatial_shape:
            raise InputError(
                f"the validation labels '{labels.name}' have shape {shape} but the image "
                f"'{image.name}' has spatial shape {image.spatial_shape}"
            )
        data = np.asarray(labels.data)
        planes = [idx for idx in np.ndindex(*shape[:-2]) if np.any(data[idx])]
        if not planes:
            raise InputError(f"the validation labels '{labels.name}' hold no annotations")
        return image, labels, planes

"""1. Data: the image to segment, its channel axis, the annotations and how to read them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Labels

from ..unet.data import InputError
from ..workflow.labels import LABEL_MODES, interpret_labels
from . import layers as L
from .form import Section, TextLabel, row
from .inputs import ImageInput, LabelsInput, read_image, read_labels, user_errors
from .training_pairs import TrainingPairs
from .validation_pick import ValidationPick

#: larger annotation layers are only summarised when training starts (np.unique is slow)
INFO_MAX_PIXELS = 50_000_000


class DataSection(Section):
    """Pick the image and the annotations; says what the annotations hold."""

    def __init__(self, viewer: Any) -> None:
        super().__init__("1. Data")
        self.viewer = viewer
        self.image_layer = ComboBox(choices=self._image_choices, tooltip="The image to segment")
        self.channel_axis = ComboBox(
            choices=self._channel_choices,
            tooltip="Axis holding the channels of a multi-channel image (RGB layers: automatic)",
        )
        self.labels_layer = ComboBox(
            choices=self._labels_choices,
            nullable=True,
            tooltip="Annotations: scribbles (0 = not annotated, c = class c), instance ids, "
            "or a dense mask (every pixel a class value, e.g. 0/255)",
        )
        self.label_mode = ComboBox(
            choices=LABEL_MODES,
            value="auto",
            tooltip="auto: one value above 10 (0/255) is a dense mask; more than 10 distinct "
            "values, or a value above 10 among others, are instance ids; otherwise class values",
        )
        self.data_info = TextLabel()
        self.training_pairs = TrainingPairs()
        self.validation = ValidationPick(viewer, self.image_layer)
        self.validation_labels = self.validation.labels_layer
        self.validation_image = self.validation.image_layer
        self.add_rows(
            [
                ("image", self.image_layer),
                ("channel axis", self.channel_axis),
                ("annotations", self.labels_layer),
                ("label mode", self.label_mode),
                ("", self.data_info),
                ("", row(self.training_pairs.add_button, self.training_pairs.remove_button)),
                ("", self.training_pairs.list),
                ("validation", self.validation_labels),
                ("its image", self.validation_image),
            ]
        )
        self.training_pairs.add_button.clicked.connect(self.add_pair)
        self.image_layer.changed.connect(self._on_image_changed)
        self.channel_axis.changed.connect(self._on_image_changed)
        self.labels_layer.changed.connect(self.update_info)
        self.label_mode.changed.connect(self.update_info)

    # ------------------------------------------------------------------ reading the picks
    def image(self) -> ImageInput:
        """The picked image, checked (raises InputError)."""
        return read_image(self.image_layer.value, self.channel_axis.value)

    def labels(self, image: ImageInput) -> LabelsInput:
        """The picked annotations, checked against the image (raises InputError)."""
        return read_labels(self.labels_layer.value, image, self.label_mode.value)

    def labels_for_loss(self, image: ImageInput) -> LabelsInput | None:
        """The annotations to show w(x) and loss(x) with when predicting, if any: a wrong
        pick (shape, layer type) is an error, an empty or one-class layer only means no
        loss map."""
        if self.labels_layer.value is None:
            return None
        try:
            return self.labels(image)
        except user_errors() as err:
            if "shape" in str(err) or "Labels layer" in str(err):
                raise
            return None

    def n_classes(self, image: ImageInput | None, default: int = 2) -> int:
        """The classes the annotations ask for, or ``default`` if they cannot tell yet."""
        if image is None or self.labels_layer.value is None:
            return default
        try:
            return self.labels(image).n_classes
        except user_errors():
            return default  # checked again when training starts

    # ------------------------------------------------------------------ choices
    def _image_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return L.input_images(self.viewer)

    def _labels_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return L.input_labels(self.viewer)

    def _channel_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        combo = getattr(self, "image_layer", None)  # not there yet while it is being made
        layer = combo.value if combo is not None else None
        if layer is None:
            return [("none (grey)", None)]
        if layer.rgb:
            return [("RGB (last axis)", -1)]
        shape = layer.data.shape
        return [("none (grey)", None)] + [
            (f"axis {i} (size {shape[i]})", i) for i in range(max(len(shape) - 2, 0))
        ]

    def reset_choices(self) -> None:
        """Refresh the layer lists after layers were added, removed or reordered."""
        for combo in (self.image_layer, self.labels_layer, self.channel_axis):
            combo.reset_choices()
        self.validation.reset_choices()
        self._auto_pick_labels()
        self.training_pairs.prune(self.viewer.layers)

    def add_pair(self, *_: Any) -> None:
        """Add the picked image and annotations to the training pairs."""
        from napari.utils.notifications import show_error

        try:
            image = self.image()
            self.data_info.value = self.training_pairs.add(image, self.labels(image))
        except user_errors() as err:
            show_error(f"U-Net: {err}")

    def training_inputs(self) -> list[tuple[ImageInput, LabelsInput]]:
        """What Train learns from: every training pair, or else the picked pair."""
        if self.training_pairs.pairs:
            return self.training_pairs.read(self.label_mode.value)
        image = self.image()
        return [(image, self.labels(image))]

    def validation_input(self) -> tuple[ImageInput, Any, list[tuple[int, ...]]] | None:
        """The validation pair (image, labels layer, annotated planes), or None."""
        return self.validation.read(self.channel_axis.value)

    def _on_image_changed(self, *_: Any) -> None:
        self.channel_axis.reset_choices()
        self._auto_pick_labels()
        self.update_info()

    def _auto_pick_labels(self) -> None:
        """Keep the picked annotations if they fit the image, else pick the first Labels
        layer that does (or none: predicting needs no annotations)."""
        try:
            shape = self.image().spatial_shape
        except Exception:  # noqa: BLE001 - no usable image picked yet
            shape = None

        def fits(layer: Any) -> bool:
            return layer is not None and (shape is None or tuple(layer.data.shape) == shape)

        if fits(self.labels_layer.value):
            return
        fitting = [c for c in self.labels_layer.choices if fits(c)]
        self.labels_layer.value = fitting[0] if fitting else None

    # ------------------------------------------------------------------ summary
    def update_info(self, *_: Any) -> None:
        """Say what the annotation layer holds: mode, classes and annotated pixels."""
        layer = self.labels_layer.value
        if layer is None or not isinstance(layer, Labels):
            self.data_info.value = "no annotations picked (needed for training)"
            return
        data = np.asarray(layer.data)
        if data.size > INFO_MAX_PIXELS:
            self.data_info.value = f"'{layer.name}': large layer, checked when training starts"
            return
        values, counts = np.unique(data, return_counts=True)
        try:
            plan = interpret_labels(values, self.label_mode.value, what=f"'{layer.name}'")
        except InputError as err:
            self.data_info.value = str(err)
            return
        annotated = int(counts.sum() if plan.mode == "dense" else counts[values != 0].sum())
        what = plan.describe()  # dense: the classes and their values
        if plan.mode == "instances":
            what = f"instances: {int(np.count_nonzero(values))} objects"
        elif plan.mode == "scribbles":
            what = f"scribbles: classes {', '.join(str(int(v)) for v in values if v != 0)}"
        self.data_info.value = (
            f"{what}; {annotated:,} annotated pixels ({percent(annotated, data.size)})"
        )


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` in percent, two significant digits: "0.15 %", "1.8 %", "42 %"."""
    if part <= 0:
        return "0 %"
    value = float(f"{100 * part / max(whole, 1):.2g}")  # 9.96 -> 10, not 10.0
    digits = max(0, 1 - math.floor(math.log10(value)))
    return f"{value:.{digits}f} %"

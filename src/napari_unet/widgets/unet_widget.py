"""The "U-Net" dock widget: data -> model -> training -> prediction -> inspection.

A thin GUI over the core: it checks the layers the user picked (:mod:`.inputs`), runs the
long work in napari thread workers (:mod:`.workers`), and writes the results to layers with
stable names (:mod:`.layers`). Importing this module does not import torch; creating the
widget does (to list devices and bundled models).
"""

from __future__ import annotations

import inspect
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ..presets import DEFAULT_PRESET
from . import layers as L
from .inputs import (
    ImageInput,
    InputError,
    LabelsInput,
    image_plane,
    read_image,
    read_labels,
)
from .loss_plot import LossPlot
from .options import (
    FROM_FILE,
    LABEL_MODES,
    NEW_MODEL,
    PREDICT_SCOPES,
    PRETRAINED_PREFIX,
    describe_model,
    detect_label_mode,
    model_sources,
    preset_choices,
)
from .results import write_prediction, write_weights
from .workers import (
    ActivationResult,
    AnnotationSettings,
    JobDone,
    JobFailed,
    LiveView,
    Notice,
    PlaneResult,
    TrainingPlane,
    WeightsReady,
    activations_job,
    guarded,
    predict_job,
    train_job,
    view_region,
)

if TYPE_CHECKING:
    import napari

LIVE_MAX_SIDE = 512  # live refreshes and activations use at most this crop of a plane


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that carry a message for the user (no traceback needed)."""
    from ..checkpoint import CheckpointError
    from ..data import InputError
    from ..training import TrainingDiverged

    return (InputError, CheckpointError, TrainingDiverged)


class TextLabel(QLabel):
    """A word-wrapping label with magicgui's ``value`` (so code and tests read it alike)."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setWordWrap(True)

    @property
    def value(self) -> str:
        return self.text()

    @value.setter
    def value(self, text: str) -> None:
        self.setText(text)


class UNetWidget(QWidget):
    """Train, fine-tune, predict and look inside a U-Net on the layers of a napari viewer."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from ..devices import available_devices
        from ..pretrained import list_pretrained

        self.viewer = napari_viewer
        #: the current model (a :class:`napari_unet.UNet`), or None until one is made/loaded
        self.model: Any = None
        self._worker: Any = None
        self._cancel = threading.Event()
        self._pbar: Any = None
        self._live: LiveView | None = None
        self._job: dict[str, Any] = {}

        # ---- data
        self.image_layer = ComboBox(choices=self._image_choices, tooltip="The image to segment")
        self.channel_axis = ComboBox(
            choices=self._channel_choices,
            tooltip="Axis holding the channels of a multi-channel image (RGB layers: automatic)",
        )
        self.labels_layer = ComboBox(
            choices=self._labels_choices,
            nullable=True,
            tooltip="Annotations: scribbles (0 = not annotated, c = class c) or instance ids",
        )
        self.label_mode = ComboBox(
            choices=LABEL_MODES,
            value="auto",
            tooltip="auto: more than 10 distinct values, or one above 10, means instance ids; "
            "otherwise class values (scribbles)",
        )
        self.data_info = TextLabel()
        # ---- model
        self.model_source = ComboBox(choices=model_sources(list_pretrained()), value=NEW_MODEL)
        self.preset = ComboBox(choices=preset_choices(), value=DEFAULT_PRESET)
        self.model_file = FileEdit(mode="r", filter="napari-unet model (*.pt)")
        self.make_model_button = PushButton(text="Create new model")
        self.save_button = PushButton(text="Save model...")
        self.model_info = TextLabel(describe_model(None))
        # ---- training
        self.steps = SpinBox(value=200, min=1, max=1_000_000, step=50)
        self.learning_rate = FloatSpinBox(value=1e-3, min=1e-5, max=1.0, step=1e-4)
        self.learning_rate.native.setDecimals(5)
        self.learning_rate.native.setMinimumWidth(95)
        self.learning_rate.value = 1e-3
        self.tile_size = SpinBox(value=128, min=16, max=2048, step=16)
        self.batch_size = SpinBox(value=2, min=1, max=64)
        self.optimizer = ComboBox(
            choices=[("adam (quick fine-tuning)", "adam"), ("sgd, momentum 0.99 (paper)", "sgd")],
            value="adam",
        )
        devices = available_devices()
        self.device = ComboBox(
            choices=[(f"auto ({devices[0]})", "auto"), *((d.upper(), d) for d in devices)],
            value="auto",
        )
        self.augment = CheckBox(value=True, text="augmentation (elastic, flips, rotations)")
        self.use_weight_map = CheckBox(value=True)
        self.use_weight_map.native.setText("weight map w(x)")
        self.w0 = FloatSpinBox(value=10.0, min=0.0, max=100.0, step=1.0)
        self.sigma = FloatSpinBox(value=5.0, min=0.5, max=50.0, step=0.5)
        self.class_balance = CheckBox(value=False)
        self.class_balance.native.setText("class balance w_c")
        self.train_button = PushButton(text="Train")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress_bar = ProgressBar(value=0, min=0, max=1)
        self.status = TextLabel()
        self.loss_plot = LossPlot()
        # ---- predict / inspect
        self.scope = ComboBox(choices=PREDICT_SCOPES, value=PREDICT_SCOPES[0])
        self.predict_button = PushButton(text="Predict")
        self.level = ComboBox(choices=self._level_choices, tooltip="Encoder/decoder level")
        self.inspect_button = PushButton(text="Show activations")

        tips = {  # widget -> tooltip
            self.steps: "Optimiser steps (one batch of tiles each)",
            self.learning_rate: "Learning rate; decays along a cosine to 5 % at the last step",
            self.tile_size: "Output tile side in pixels; the input tile adds the model's context",
            self.batch_size: "Tiles per step",
            self.device: "auto: CUDA, else Apple MPS, else CPU",
            self.augment: "Elastic deformation (the paper's), flips, 90-degree rotations, "
            "intensity jitter",
            self.use_weight_map: "Instance mode: w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / "
            "2 sigma^2), high weight on the gaps between touching cells",
            self.class_balance: "w_c: every annotated class weighs the same in the loss",
            self.w0: "w0: height of the border term of w(x)",
            self.sigma: "sigma: width of the border term of w(x), in pixels",
            self.scope: "Predict the plane in view, or every plane of a Z/T stack",
            self.make_model_button: "Make the model chosen under 'source' the current model",
            self.save_button: "Save the current model to a .pt file",
            self.train_button: "Train the current model (a new one from 'source' if none yet)",
            self.cancel_button: "Stop after the current step; the model stays usable",
            self.inspect_button: "Show the channels of this level over the plane in view",
        }
        for widget, tip in tips.items():
            widget.tooltip = tip

        self._build_layout()
        self._connect()
        self.reset_choices()
        self._on_source_changed()

    # ============================================================== layout
    def _build_layout(self) -> None:
        def row(*widgets: Any) -> QWidget:
            box = QWidget()
            lay = QHBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            for w in widgets:
                lay.addWidget(w if isinstance(w, QWidget) else w.native)
            return box

        def group(title: str, rows: list[tuple[str, Any]]) -> QGroupBox:
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setContentsMargins(6, 4, 6, 4)
            form.setVerticalSpacing(3)
            for label, w in rows:
                native = w if isinstance(w, QWidget) else w.native
                if label:
                    form.addRow(label, native)
                else:
                    form.addRow(native)
            return box

        self._preset_row = row(self.preset)
        self._file_row = row(self.model_file)
        self._data_box = group(
            "1. Data",
            [
                ("image", self.image_layer),
                ("channel axis", self.channel_axis),
                ("annotations", self.labels_layer),
                ("label mode", self.label_mode),
                ("", self.data_info),
            ],
        )
        self._model_box = group(
            "2. Model",
            [
                ("source", self.model_source),
                ("preset", self._preset_row),
                ("file", self._file_row),
                ("", row(self.make_model_button, self.save_button)),
                ("", self.model_info),
            ],
        )
        self._train_box = group(
            "3. Training",
            [
                ("steps", row(self.steps, Label(value="learning rate"), self.learning_rate)),
                ("tile size", row(self.tile_size, Label(value="batch"), self.batch_size)),
                ("optimizer", self.optimizer),
                ("device", self.device),
                ("", self.augment),
                ("", row(self.use_weight_map, self.class_balance)),
                ("w0, sigma", row(self.w0, self.sigma)),
                ("", row(self.train_button, self.cancel_button)),
                ("", self.progress_bar),
                ("", self.status),
                ("", self.loss_plot),
            ],
        )
        self._predict_box = group(
            "4. Predict and inspect",
            [
                ("", row(self.scope, self.predict_button)),
                ("level", row(self.level, self.inspect_button)),
            ],
        )
        self._model_form = self._model_box.layout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        for box in (self._data_box, self._model_box, self._train_box, self._predict_box):
            layout.addWidget(box)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.image_layer.changed.connect(self._on_image_changed)
        self.labels_layer.changed.connect(self._update_data_info)
        self.label_mode.changed.connect(self._update_data_info)
        self.channel_axis.changed.connect(self._on_image_changed)
        self.model_source.changed.connect(self._on_source_changed)
        self.make_model_button.clicked.connect(self.make_model)
        self.save_button.clicked.connect(lambda: self.save_model())
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        self.predict_button.clicked.connect(self.predict)
        self.inspect_button.clicked.connect(self.show_activations)
        self.use_weight_map.changed.connect(self._on_weight_map_toggled)
        events = self.viewer.layers.events
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self._on_layers_changed)
        self.viewer.dims.events.current_step.connect(self._on_view_changed)
        self._camera().events.center.connect(self._on_view_changed)

    def _camera(self) -> Any:
        """napari >= 0.9 keeps the camera on ``viewer.scene``; older versions on the viewer."""
        scene = getattr(self.viewer, "scene", None)
        return scene.camera if scene is not None else self.viewer.camera

    # ============================================================== choices
    def _image_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Image)
            and not L.is_output(layer)
            and not layer.name.startswith(L.ACTIVATIONS)
        ]

    def _labels_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Labels) and not L.is_output(layer)
        ]

    def _channel_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        layer = getattr(self, "image_layer", None)
        layer = layer.value if layer is not None else None
        if layer is None:
            return [("none (grey)", None)]
        if layer.rgb:
            return [("RGB (last axis)", -1)]
        shape = layer.data.shape
        return [("none (grey)", None)] + [
            (f"axis {i} (size {shape[i]})", i) for i in range(max(len(shape) - 2, 0))
        ]

    def _level_choices(self, _w: Any = None) -> list[str]:
        return self.model.level_names() if self.model is not None else []

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists (napari calls this when layers are added or removed)."""
        for combo in (self.image_layer, self.labels_layer, self.channel_axis, self.level):
            combo.reset_choices()
        self._auto_pick_labels()

    def _spatial_shape(self) -> tuple[int, ...] | None:
        try:
            return read_image(self.image_layer.value, self.channel_axis.value).spatial_shape
        except Exception:  # noqa: BLE001 - no usable image picked yet
            return None

    def _auto_pick_labels(self) -> None:
        """Keep the picked annotations if they fit the image, else pick the first Labels
        layer that does (or none: predicting needs no annotations)."""
        shape = self._spatial_shape()
        current = self.labels_layer.value
        if current is not None and (shape is None or tuple(current.data.shape) == shape):
            return
        fitting = [
            c
            for c in self.labels_layer.choices
            if c is not None and (shape is None or tuple(c.data.shape) == shape)
        ]
        self.labels_layer.value = fitting[0] if fitting else None

    def _on_layers_changed(self, *_: Any) -> None:
        try:
            self.reset_choices()
        except RuntimeError:  # the widget was deleted while the viewer lives on
            pass

    def _on_image_changed(self, *_: Any) -> None:
        self.channel_axis.reset_choices()
        self._auto_pick_labels()
        self._update_data_info()

    def _on_weight_map_toggled(self, *_: Any) -> None:
        self.w0.enabled = self.sigma.enabled = self.use_weight_map.value

    def _on_source_changed(self, *_: Any) -> None:
        source = self.model_source.value
        for row, visible in (
            (self._preset_row, source == NEW_MODEL),
            (self._file_row, source == FROM_FILE),
        ):
            row.setVisible(visible)
            label = self._model_form.labelForField(row)
            if label is not None:
                label.setVisible(visible)
        self.make_model_button.text = {NEW_MODEL: "Create new model", FROM_FILE: "Load file"}.get(
            source, "Load pretrained"
        )

    def _update_data_info(self, *_: Any) -> None:
        """Say what the annotation layer holds: mode, classes and annotated pixels."""
        layer = self.labels_layer.value
        if layer is None or not isinstance(layer, Labels):
            self.data_info.value = "no annotations picked (needed for training)"
            return
        data = np.asarray(layer.data)
        if data.size > 50_000_000:
            self.data_info.value = f"'{layer.name}': large layer, checked when training starts"
            return
        values, counts = np.unique(data, return_counts=True)
        mode = self.label_mode.value
        mode = detect_label_mode(values) if mode == "auto" else mode
        annotated = int(counts[values != 0].sum())
        if mode == "instances":
            what = f"instances: {int(np.count_nonzero(values))} objects"
        else:
            what = f"scribbles: classes {', '.join(str(int(v)) for v in values if v != 0)}"
        self.data_info.value = (
            f"{what}; {annotated:,} annotated pixels ({100 * annotated / max(data.size, 1):.1f} %)"
        )

    # ============================================================== messages & state
    def _error(self, message: str) -> None:
        show_error(f"U-Net: {message}")

    def _info(self, message: str) -> None:
        show_info(f"U-Net: {message}")

    @property
    def busy(self) -> bool:
        """True while a training, prediction or inspection runs."""
        return self._worker is not None

    def _set_busy(self, busy: bool) -> None:
        for w in (
            self.train_button,
            self.predict_button,
            self.inspect_button,
            self.make_model_button,
            self.save_button,
            self.model_source,
            self.preset,
            self.model_file,
        ):
            w.enabled = not busy
        self.cancel_button.enabled = busy

    def _set_model(self, model: Any) -> None:
        self.model = model
        self.model_info.value = describe_model(model)
        source = (model.metadata or {}).get("source", "") if model is not None else ""
        card = ""
        if source.startswith("bundled:"):
            from ..pretrained import model_card

            card = model_card(source.split(":", 1)[1])
        self.model_info.setToolTip(card)
        self.level.reset_choices()

    # ============================================================== model
    def _build_from_source(self, image: ImageInput | None, n_classes: int) -> Any:
        """A new model from the source choice (not yet the widget's model)."""
        source = self.model_source.value
        if source == NEW_MODEL:
            from ..presets import build_model

            in_channels = image.in_channels if image is not None else 1
            model = build_model(self.preset.value, in_channels, n_classes)
            model.metadata["source"] = f"new {self.preset.value} U-Net"
            return model
        if source == FROM_FILE:
            from ..checkpoint import load_model

            path = self.model_file.value
            if not path or not Path(path).is_file():
                raise InputError("choose a model file (*.pt) first")
            model = load_model(path)
            model.metadata.setdefault("source", f"file {Path(path).name}")
            return model
        from ..pretrained import load_pretrained

        return load_pretrained(source[len(PRETRAINED_PREFIX) :])

    def make_model(self) -> None:
        """Create (New U-Net) or load (pretrained, file) the model chosen under "source"."""
        if self.busy:
            return
        try:
            image = None
            if self.image_layer.value is not None:
                image = read_image(self.image_layer.value, self.channel_axis.value)
            n_classes = 2
            if image is not None and self.labels_layer.value is not None:
                try:
                    n_classes = read_labels(
                        self.labels_layer.value, image, self.label_mode.value
                    ).n_classes
                except _user_errors():
                    pass  # the classes are fitted when training starts
            model = self._build_from_source(image, n_classes)
        except _user_errors() as err:
            self._error(str(err))
            return
        self._set_model(model)
        self._adopt_weight_map_settings(model)
        self._info(f"model ready: {describe_model(model).splitlines()[0]}")

    def _adopt_weight_map_settings(self, model: Any) -> None:
        """Fine-tune with the weight map recipe the model was trained with, if it says."""
        recipe = (model.metadata or {}).get("weight_map")
        if not isinstance(recipe, dict):
            return
        if "w0" in recipe:
            self.w0.value = float(recipe["w0"])
        if "sigma" in recipe:
            self.sigma.value = float(recipe["sigma"])
        if "class_balance" in recipe:
            self.class_balance.value = bool(recipe["class_balance"])

    def save_model(self, path: str | Path | None = None) -> Path | None:
        """Save the current model (asks for a file name when ``path`` is None)."""
        if self.busy:
            return None
        if self.model is None:
            self._error("there is no model to save yet: train or load one first")
            return None
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            chosen, _ = QFileDialog.getSaveFileName(
                self, "Save U-Net model", "unet.pt", "napari-unet model (*.pt)"
            )
            if not chosen:
                return None
            path = chosen
        from ..checkpoint import CheckpointError, read_checkpoint, save_model

        path = Path(path)
        if path.suffix != ".pt":
            path = path.with_name(path.name + ".pt")
        if path.exists():
            # never replace something that is not one of our model files (an image, labels...)
            try:
                read_checkpoint(path)
            except CheckpointError:
                self._error(f"{path.name} exists and is not a napari-unet model: not replaced")
                return None
        try:
            save_model(path, self.model)
        except (OSError, ValueError) as err:
            self._error(f"could not save the model: {err}")
            return None
        self._info(f"model saved to {path}")
        return path

    def _training_model(self, image: ImageInput, labels: LabelsInput) -> tuple[Any, int]:
        """The model to train (the current one, or a new one from the source) and the K it
        must have for these annotations."""
        model = self.model
        if model is None:
            model = self._build_from_source(image, labels.n_classes)
            self._adopt_weight_map_settings(model)
        if model.in_channels != image.in_channels:
            raise InputError(
                f"the model takes {model.in_channels} channel(s) but '{image.name}' has "
                f"{image.in_channels}: create a new model for this image (or fix the channel "
                "axis)"
            )
        k = model.n_classes
        if (
            labels.mode == "instances"
            and k != 2
            or labels.mode == "scribbles"
            and labels.n_classes > k
        ):
            k = labels.n_classes
        h, w = image.spatial_shape[-2:]
        if min(h, w) < model.min_input_size:
            raise InputError(
                f"'{image.name}' is {h}x{w} pixels, smaller than this model's smallest input "
                f"({model.min_input_size} px per side): use a larger image or a shallower model"
            )
        return model, k

    # ============================================================== training
    def _train_config(self) -> Any:
        from ..training import TrainConfig

        return TrainConfig(
            steps=int(self.steps.value),
            learning_rate=float(self.learning_rate.value),
            optimizer=self.optimizer.value,
            batch_size=int(self.batch_size.value),
            tile_size=int(self.tile_size.value),
            augment=bool(self.augment.value),
            elastic=bool(self.augment.value),
            device=self.device.value,
        )

    def _annotation_settings(self, mode: str) -> AnnotationSettings:
        return AnnotationSettings(
            mode=mode,
            use_weight_map=bool(self.use_weight_map.value),
            w0=float(self.w0.value),
            sigma=float(self.sigma.value),
            class_balance=bool(self.class_balance.value),
        )

    def train(self) -> None:
        """Check the inputs, then train in a thread worker (live loss, progress, refreshes)."""
        if self.busy:
            return
        try:
            image = read_image(self.image_layer.value, self.channel_axis.value)
            labels = read_labels(self.labels_layer.value, image, self.label_mode.value)
            model, n_classes = self._training_model(image, labels)
            config = self._train_config()
            config.validate()
            from ..devices import resolve_device

            resolve_device(config.device)
            planes = [
                TrainingPlane(idx, image_plane(image, idx), np.array(labels.data[idx]))
                for idx in labels.planes
            ]
        except (*_user_errors(), ValueError) as err:
            self._error(str(err))
            return
        self._set_model(model)
        self._update_data_info()
        self._job = {"kind": "train", "image": image, "labels": labels, "done": 0}
        self._update_live_view(image)
        self.loss_plot.clear(config.steps)
        self.progress_bar.max = config.steps
        self.progress_bar.value = 0
        done = sum(int(h.get("steps_done") or 0) for h in model.metadata.get("training", []))
        self.status.value = f"preparing {len(planes)} plane(s)" + (
            f"; continuing the current model ({done} steps so far)..." if done else "..."
        )
        self._start(
            train_job,
            model,
            planes,
            n_classes,
            self._annotation_settings(labels.mode),
            config,
            self._cancel,
            self._get_live_view,
            lambda idx: image_plane(image, idx),
            total=config.steps,
            desc="U-Net training",
            image_name=image.name,
        )

    def _get_live_view(self) -> LiveView | None:
        return self._live

    def _current_index(self, image: ImageInput) -> tuple[int, ...]:
        """The leading (Z, T, ...) index of the plane the viewer shows, in image pixels."""
        lead = image.lead_shape
        if not lead:
            return ()
        point = image.layer.world_to_data(self.viewer.dims.point)
        coords = list(np.asarray(point, dtype=float))
        if image.channel_axis is not None and image.channel_axis >= 0:
            del coords[image.channel_axis]
        return tuple(
            int(np.clip(round(c), 0, n - 1))
            for c, n in zip(coords[: len(lead)], lead, strict=True)
        )

    def _view_center(self, image: ImageInput) -> tuple[float, float]:
        h, w = image.spatial_shape[-2:]
        try:
            point = list(self.viewer.dims.point)
            center = self._camera().center
            for axis, c in zip(
                self.viewer.dims.displayed, center[-len(self.viewer.dims.displayed) :], strict=True
            ):
                point[axis] = c
            data = np.asarray(image.layer.world_to_data(point), dtype=float)
            if image.channel_axis is not None and image.channel_axis >= 0:
                data = np.delete(data, image.channel_axis)
            return float(data[-2]), float(data[-1])
        except Exception:  # noqa: BLE001 - any odd view: fall back to the plane's centre
            return h / 2, w / 2

    def _update_live_view(self, image: ImageInput | None = None) -> None:
        image = image or self._job.get("image")
        if image is None:
            return
        h, w = image.spatial_shape[-2:]
        region = view_region((h, w), self._view_center(image), LIVE_MAX_SIDE)
        self._live = LiveView(self._current_index(image), region)

    def _on_view_changed(self, *_: Any) -> None:
        if self._job.get("kind") == "train":
            self._update_live_view()
        try:
            L.recolour_probabilities(self.viewer)
        except Exception:  # noqa: BLE001 - colours are cosmetic
            pass

    # ============================================================== prediction
    def predict(self) -> None:
        """Predict the current plane or the whole stack with the current model."""
        if self.busy:
            return
        try:
            if self.model is None:
                raise InputError(
                    "there is no model yet: train one, or create/load one under Model"
                )
            image = read_image(self.image_layer.value, self.channel_axis.value)
            if self.model.in_channels != image.in_channels:
                raise InputError(
                    f"the model takes {self.model.in_channels} channel(s) but '{image.name}' "
                    f"has {image.in_channels} (check the channel axis)"
                )
            labels = self._labels_for_loss(image)
            from ..devices import resolve_device

            resolve_device(self.device.value)
        except (*_user_errors(), ValueError) as err:
            self._error(str(err))
            return
        lead = image.lead_shape
        if self.scope.value == "whole stack" and lead:
            indices = list(np.ndindex(*lead))
        else:
            indices = [self._current_index(image)]
        mode = labels.mode if labels is not None else "scribbles"
        self._job = {
            "kind": "predict",
            "image": image,
            "labels": labels,
            "with_instances": self.model.metadata.get("label_mode") == "instances",
            "done": 0,
        }
        self.progress_bar.max = len(indices)
        self.progress_bar.value = 0
        self.status.value = f"predicting {len(indices)} plane(s)..."
        read_lab = (lambda idx: np.array(labels.data[idx])) if labels is not None else None
        self._start(
            predict_job,
            self.model,
            indices,
            lambda idx: image_plane(image, idx),
            read_lab,
            self._annotation_settings(mode) if labels is not None else None,
            self.device.value,
            self._cancel,
            total=len(indices),
            desc="U-Net prediction",
            with_instances=self._job["with_instances"],
        )

    def _labels_for_loss(self, image: ImageInput) -> LabelsInput | None:
        """The annotations to compute w(x) and loss(x) with, if any (optional for predict)."""
        layer = self.labels_layer.value
        if layer is None:
            return None
        try:
            return read_labels(layer, image, self.label_mode.value)
        except _user_errors() as err:
            # a shape mismatch is a wrong pick; an empty/one-class layer only means no loss map
            if "shape" in str(err) or "Labels layer" in str(err):
                raise
            return None

    # ============================================================== activations
    def show_activations(self) -> None:
        """Show the channels of the chosen level for (a crop of) the current plane."""
        if self.busy:
            return
        try:
            if self.model is None:
                raise InputError(
                    "there is no model yet: train one, or create/load one under Model"
                )
            level = self.level.value
            if not level:
                raise InputError("pick a level to inspect")
            image = read_image(self.image_layer.value, self.channel_axis.value)
            if self.model.in_channels != image.in_channels:
                raise InputError(
                    f"the model takes {self.model.in_channels} channel(s) but '{image.name}' "
                    f"has {image.in_channels}"
                )
            index = self._current_index(image)
            h, w = image.spatial_shape[-2:]
            region = view_region((h, w), self._view_center(image), LIVE_MAX_SIDE)
            plane = image_plane(image, index)
        except (*_user_errors(), ValueError) as err:
            self._error(str(err))
            return
        self._job = {"kind": "activations", "image": image, "done": 0}
        self.status.value = f"capturing {level}..."
        self._start(
            activations_job,
            self.model,
            plane,
            index,
            region,
            level,
            self.device.value,
            total=0,
            desc="U-Net activations",
        )

    # ============================================================== workers
    def _start(self, func: Any, *args: Any, total: int, desc: str, **kwargs: Any) -> None:
        from napari.qt.threading import create_worker

        self._cancel.clear()
        if inspect.isgeneratorfunction(func):
            func = guarded(func)
        worker = create_worker(func, *args, _ignore_errors=True, **kwargs)
        try:  # we report errors ourselves (with a message meant for the user)
            worker.errored.disconnect(worker._relay_error)
        except (AttributeError, TypeError, RuntimeError):
            pass
        if hasattr(worker, "yielded"):
            worker.yielded.connect(self._on_yielded)
        if hasattr(worker, "aborted"):  # quit from napari's activity dock
            worker.aborted.connect(lambda: setattr(self.status, "value", "stopped; model kept"))
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._pbar = progress(total=total, desc=desc)
        self._worker = worker
        self._set_busy(True)
        worker.start()

    def cancel(self) -> None:
        """Stop the running job after the current step (training) or plane (prediction)."""
        if self._worker is None:
            return
        self._cancel.set()
        self.status.value = "cancelling..."

    def _advance(self, done: int) -> None:
        if self._pbar is not None and done > self._pbar.n:
            self._pbar.update(done - self._pbar.n)
        self.progress_bar.value = min(done, self.progress_bar.max)

    def _on_yielded(self, event: Any) -> None:
        from ..training import Progress

        if isinstance(event, Progress):
            self.loss_plot.add(event.step, event.loss)
            self._advance(event.step)
            eta = event.eta
            left = f", ~{eta:.0f} s left" if np.isfinite(eta) else ""
            self.status.value = (
                f"step {event.step}/{event.steps}: loss {event.loss:.4f}, "
                f"{event.steps_per_second:.1f} steps/s{left}"
            )
        elif isinstance(event, PlaneResult):
            write_prediction(self.viewer, event, self._job["image"], self._job.get("labels"))
            if not event.live:
                self._job["done"] += 1
                self._advance(self._job["done"])
        elif isinstance(event, WeightsReady):
            write_weights(self.viewer, self._job["image"], event.planes, event.weights)
        elif isinstance(event, Notice):
            self._info(event.message)
            self._set_model(self.model)

    def _on_returned(self, result: Any) -> None:
        if isinstance(result, ActivationResult):
            image: ImageInput = self._job["image"]
            L.set_activations(
                self.viewer,
                result.level,
                result.channels,
                image,
                level_scale=result.scale,
                level_translate=result.translate,
                plane_index=result.index,
                offset=result.offset,
            )
            c, h, w = result.channels.shape
            self.status.value = f"{result.level}: {c} channels of {h}x{w} (scale {result.scale:g})"
        elif isinstance(result, JobDone):
            verb = {"train": "training", "predict": "prediction"}.get(result.kind, result.kind)
            if result.cancelled:
                self.status.value = f"{verb} cancelled after {result.steps} step(s); model kept"
            elif result.kind == "train":
                rate = result.steps / result.seconds if result.seconds > 0 else 0.0
                self.status.value = (
                    f"trained {result.steps} steps in {result.seconds:.1f} s ({rate:.1f} steps/s)"
                )
            else:
                self.status.value = f"predicted {result.steps} plane(s) in {result.seconds:.1f} s"

    def _on_errored(self, exc: BaseException) -> None:
        kind = self._job.get("kind", "job")
        if isinstance(exc, JobFailed) and exc.__cause__ is not None:
            exc = exc.__cause__
        if isinstance(exc, _user_errors()):
            self._error(str(exc))
        else:
            traceback.print_exception(type(exc), exc, exc.__traceback__)
            self._error(f"{kind} failed: {type(exc).__name__}: {exc}")
        self.status.value = f"{kind} failed: {exc}"

    def _on_finished(self) -> None:
        worker, self._worker = self._worker, None
        gen = getattr(worker, "_gen", None)
        if gen is not None:
            gen.close()  # after an abort (napari's activity dock): run the job's cleanup
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self._job["kind"] = None
        self._set_busy(False)
        if self.model is not None:
            self._set_model(self.model)

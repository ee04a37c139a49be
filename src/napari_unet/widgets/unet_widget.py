"""The "U-Net" dock widget: 1. Data -> 2. Model -> 3. Training -> 4. Predict and inspect
-> 5. Look at a pixel.

Each step of the workflow is a section (:mod:`.data_section`, :mod:`.model_section`,
:mod:`.training_section`, :mod:`.inspect_section`, :mod:`.pixel_section`, the mouse and
view side in :mod:`.look_inside`); this module composes them and runs the
user's actions: it checks the inputs (:mod:`.inputs`), runs the long work in a napari
thread worker (:mod:`.runner`, :mod:`.workers`) and writes the results to layers with
stable names (:mod:`.results`, :mod:`.layers`). Importing this module does not import
torch; creating the widget does (to list devices and bundled models).
"""

from __future__ import annotations

import re
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from ..unet.data import InputError
from ..workflow import class_names, classes_for_training, rename_classes
from . import layers as L
from .data_section import DataSection
from .gallery import class_plane, write_gallery
from .inputs import (
    ImageInput,
    LabelsInput,
    check_channels,
    check_trainable_size,
    image_plane,
    user_errors,
)
from .inspect_section import InspectSection
from .look_inside import LookInside
from .model_section import ModelSection, ask_save_path, write_model_file
from .options import describe_model
from .pixel_inspector import predicted_logits, write_gradient
from .pixel_section import PixelSection
from .results import prediction_steps, write_activations, write_weights
from .runner import JobRunner
from .training_section import TrainingSection
from .view import camera, current_index, region_in_view
from .workers import (
    ActivationResult,
    Exported,
    GalleryResult,
    GradientResult,
    JobDone,
    LiveView,
    Notice,
    PlaneResult,
    StepsDone,
    TrainingPlane,
    WeightsReady,
    activations_job,
    export_job,
    gallery_job,
    gradient_job,
    predict_job,
    train_job,
)

if TYPE_CHECKING:
    import napari

#: the sections' controls, also attributes of the widget (scripts and tests use them)
CONTROLS = {
    "data_section": (
        *("image_layer", "channel_axis", "labels_layer", "label_mode", "data_info"),
        *("validation_labels", "validation_image"),
    ),
    "model_section": (
        *("model_source", "preset", "model_file"),
        *("make_model_button", "save_button", "export_button", "class_names", "model_info"),
    ),
    "training_section": (
        *("steps", "learning_rate", "tile_size", "batch_size", "optimizer", "device", "precision"),
        *("augment", "precise_batch_norm", "use_weight_map", "w0", "sigma", "class_balance"),
        *("validate_every", "patience", "keep_best", "switch_weights_button"),
        *("train_button", "cancel_button", "progress_bar", "status", "loss_plot"),
    ),
    "inspect_section": (
        *("scope", "predict_button", "files_button", "tta", "annotate_hint", "level"),
        *("inspect_button", "gallery_button", "channel_table"),
    ),
    "pixel_section": ("follow_cursor", "gradient_button", "pixel_text", "field_info"),
}


@dataclass
class Job:
    """The running job and what its results belong to."""

    kind: str  # "train", "predict", "activations", "gallery", "gradient" or "export"
    image: ImageInput | None
    labels: LabelsInput | None = None
    done: int = 0  # planes written (prediction)


def refused() -> tuple[type[BaseException], ...]:
    """Errors that refuse an action with a message (user errors, bad settings)."""
    return (*user_errors(), ValueError)


class UNetWidget(QWidget):
    """Train, fine-tune, predict and look inside a U-Net on the layers of a napari viewer."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        from ..pretrained import list_pretrained
        from ..runtime.devices import available_devices
        from ..runtime.threads import keep_main_thread_single

        # the jobs run torch in a worker thread; a second OpenMP team in the main thread
        # would halve their speed (runtime/threads.py)
        keep_main_thread_single()
        self.viewer = napari_viewer
        #: the current model (a :class:`napari_unet.UNet`), or None until one is made/loaded
        self.model: Any = None
        self.data_section = DataSection(napari_viewer)
        self.model_section = ModelSection(list_pretrained())
        self.training_section = TrainingSection(available_devices())
        self.inspect_section = InspectSection()
        self.pixel_section = PixelSection()
        self._lay_out_sections()
        self.look_inside = LookInside(
            napari_viewer, self.pixel_section, self.inspect_section, lambda: self.model
        )
        self._fitted = False

        self.jobs = JobRunner(
            on_event=self._on_event,
            on_result=self._on_result,
            on_error=self._on_error,
            on_aborted=lambda: setattr(self.status, "value", "stopped; model kept"),
            on_finished=self._on_finished,
        )
        self._job: Job | None = None
        # layer writes of the job's results, one per event-loop turn (_write_in_turns)
        self._writes: deque[tuple[deque[Any], threading.Event]] = deque()
        self._write_timer = QTimer(self)
        self._write_timer.setSingleShot(True)
        self._write_timer.setInterval(0)
        self._write_timer.timeout.connect(self._write_next)
        self._live: LiveView | None = None  # the plane/region the training refreshes
        # closing the viewer deletes this widget: its running job must not call back into it
        self.destroyed.connect(self.jobs.detach)
        self.destroyed.connect(self.look_inside.detach)

        self.make_model_button.clicked.connect(self.make_model)
        self.save_button.clicked.connect(lambda: self.save_model())
        self.class_names.native.returnPressed.connect(self.rename_classes)  # not on focus loss
        self.export_button.clicked.connect(lambda: self.export_model())
        self.export_dialog: Any = None  # the open Export dialog
        self.train_button.clicked.connect(self.train)
        self.switch_weights_button.clicked.connect(self.switch_weights)
        self._validation: Any = None  # the last training run's Validation, if it had one
        self.cancel_button.clicked.connect(self.cancel)
        self.predict_button.clicked.connect(self.predict)
        self.files_button.clicked.connect(lambda: self.predict_files())
        self.files_dialog: Any = None  # the open Predict files dialog
        self.inspect_button.clicked.connect(lambda: self.show_activations())
        self.gallery_button.clicked.connect(self.show_gallery)
        self.gradient_button.clicked.connect(self.show_gradient)
        events = self.viewer.layers.events
        for event in (events.inserted, events.removed, events.reordered):
            event.connect(self._on_layers_changed)
        self.viewer.dims.events.current_step.connect(self._on_view_changed)
        camera(self.viewer).events.center.connect(self._on_view_changed)
        camera(self.viewer).events.zoom.connect(self._on_view_changed)
        self.reset_choices()
        self._set_model(None)

    def _lay_out_sections(self) -> None:
        """The sections one below the other in a scroll area: on a short screen the dock
        scrolls instead of squeezing the sections (and the loss curve) below their size."""
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(4, 4, 4, 4)
        for section in CONTROLS:
            column.addWidget(getattr(self, section))
            for name in CONTROLS[section]:
                setattr(self, name, getattr(getattr(self, section), name))
        column.addStretch(1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidget(content)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll_area)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """As narrow as the controls allow (long texts wrap), as tall as the sections."""
        content = self.scroll_area.widget()
        bar = self.scroll_area.verticalScrollBar().sizeHint().width()
        width = content.minimumSizeHint().width() + bar + 8  # 8: the dock's own margins
        return QSize(width, content.sizeHint().height())

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        """When first docked: give the canvas room beside the dock (widgets/window_fit.py)."""
        super().showEvent(event)
        window = self.window()
        if not self._fitted and window is not self and window.isVisible():
            from .window_fit import fit_window

            self._fitted = True
            fit_window(self.viewer, window)

    # ============================================================== 2. model
    def make_model(self) -> None:
        """Create (New U-Net) or load (pretrained, file) the model chosen under "source"."""
        if self.busy:
            return
        try:
            image = self.data_section.image() if self.image_layer.value is not None else None
            in_channels = image.in_channels if image is not None else 1
            model = self.model_section.build(in_channels, self.data_section.n_classes(image))
        except refused() as err:
            self._error(str(err))
            return
        self._set_model(model)
        adopted = self.training_section.adopt_weight_map_recipe(model)
        self._info(f"model ready: {describe_model(model).splitlines()[0]}")
        if adopted:
            self._info(adopted)

    def export_model(self, request: Any = None) -> None:
        """Export the current model (bioimage.io or TorchScript) in a thread worker; without
        ``request``, ask for it in the Export dialog first."""
        if self.busy:
            return
        if self.model is None:
            self._error("there is no model to export yet: train or load one first")
            return
        if request is None:
            from .export_dialog import ExportDialog

            if self.export_dialog is not None:  # one dialog at a time, the old one freed
                self.export_dialog.close()
                self.export_dialog.deleteLater()
            self.export_dialog = ExportDialog(self, model_name=self._package_name())
            self.export_dialog.accepted.connect(
                lambda: self.export_model(self.export_dialog.request())
            )
            self.export_dialog.open()
            return
        try:
            request.validate()
        except refused() as err:
            self._error(str(err))
            return
        self._job = Job("export", None)
        self.status.value = f"exporting to {request.path}..."
        self._run(export_job, self.model, request)

    def _package_name(self) -> str:
        """A bioimage.io name from the model's source: 'napari-unet nuclei', and for a
        file 'napari-unet my_model' (the name's characters the spec does not take left out)."""
        source = Path((self.model.record.source or "").split(":")[-1]).stem
        source = re.sub(r"[^A-Za-z0-9_+\- ()]+", " ", source).strip()
        return f"napari-unet {source}"[:128].strip() if source else "napari-unet model"

    def rename_classes(self) -> None:
        """Give the current model the class names typed under Model (Enter)."""
        names = self.model_section.names()
        if self.busy or self.model is None or names is None:
            return
        if names == self.model.record.classes.names:
            return
        try:
            rename_classes(self.model, names)
        except InputError as err:
            self._error(str(err))
            self.model_section.show_class_names(self.model, force=True)  # the model's names
            return
        L.rename_class_features(self.viewer, names)
        self._set_model(self.model)
        self._info(f"classes named {', '.join(names)}")

    def _typed_class_names(self, model: Any, labels: LabelsInput) -> list[str] | None:
        """Class names typed for training (None: the model's own); refuses a wrong count
        before anything starts."""
        names = self.model_section.names()
        if names is None or (model is self.model and names == model.record.classes.names):
            return None
        k = classes_for_training(model.n_classes, labels.plan)
        if len(names) != k:
            raise InputError(
                f"{len(names)} class names under Model for the {k} classes of "
                f"'{labels.name}': " + ", ".join(names)
            )
        return names

    def save_model(self, path: str | Path | None = None) -> Path | None:
        """Save the current model (asks for a file name when ``path`` is None)."""
        if self.busy:
            return None
        if self.model is None:
            self._error("there is no model to save yet: train or load one first")
            return None
        path = path if path is not None else ask_save_path(self)
        if path is None:
            return None
        try:
            saved = write_model_file(path, self.model)
        except InputError as err:
            self._error(str(err))
            return None
        self._info(f"model saved to {saved}")
        return saved

    # ============================================================== 3. training
    def train(self) -> None:
        """Check the inputs, then train in a thread worker (live loss, progress, refreshes).
        Without a current model, Train starts from the chosen source; with one, it goes on
        training it (fine-tuning)."""
        if self.busy:
            return
        try:
            inputs = self.data_section.training_inputs()
            image, labels = self._shown_pair(inputs)
            model = self.model
            if model is None:
                model = self.model_section.build(image.in_channels, labels.n_classes)
            for each_image, _ in inputs:
                check_channels(model, each_image)
                check_trainable_size(model, each_image)
            names = self._typed_class_names(model, labels)
            config = self.training_section.config()
            config.validate()
            from ..runtime.devices import resolve_device

            resolve_device(config.device)
            planes = [
                TrainingPlane(idx, image_plane(im, idx), np.array(lab.data[idx]), im.name)
                for im, lab in inputs
                for idx in lab.planes
            ]
            validation_planes = self._validation_planes(model)
            validation_options = self.training_section.validation_options()
            validation_options.validate()
        except refused() as err:
            self._error(str(err))
            return
        if model is not self.model:
            adopted = self.training_section.adopt_weight_map_recipe(model)
            if adopted:
                self._info(adopted)
        self._set_model(model)
        if self.look_inside.image is not None:  # the model changes from the first step on
            self.look_inside.forget("training changes the model: Predict again afterwards")
        self._job = Job("train", image, labels)
        self._follow_view()
        self.loss_plot.clear(config.steps)
        self._validation = None
        self.training_section.offer_weights(None)
        done = model.record.steps_trained()
        self.training_section.begin(
            config.steps,
            f"preparing {len(planes)} plane(s)"
            + (f"; continuing the current model ({done} steps so far)..." if done else "..."),
        )
        self._run(
            train_job,
            model,
            planes,
            labels.plan,
            self.training_section.weight_recipe(),
            config,
            self.jobs.cancel_event,
            lambda: self._live,
            lambda idx: image_plane(image, idx),
            image_name=image.name,
            class_names=names,
            validation_planes=validation_planes,
            validation_options=validation_options,
            label_mode=self.label_mode.value,
            wait_for_gui=True,
        )

    def _validation_planes(self, model: Any) -> list[TrainingPlane]:
        """The planes of the validation pair picked in section 1 (none: no validation)."""
        picked = self.data_section.validation_input()
        if picked is None:
            return []
        image, labels, indices = picked
        check_channels(model, image)
        return [
            TrainingPlane(idx, image_plane(image, idx), np.array(labels.data[idx]), image.name)
            for idx in indices
        ]

    def switch_weights(self) -> None:
        """Swap the model between the best validation step's weights and the last step's."""
        if self.busy or self._validation is None:
            return
        step = self._validation.switch(self.model)
        if self.look_inside.image is not None:
            self.look_inside.forget("the model's weights changed: Predict again")
        self.training_section.offer_weights(self._validation)
        self.status.value = f"the model now holds the weights of step {step}"
        self._set_model(self.model)

    def _shown_pair(self, inputs: list[Any]) -> tuple[ImageInput, LabelsInput]:
        """The pair whose image the live refresh shows: the image picked under Data when
        it is one of the training pairs, else the first pair."""
        picked = self.image_layer.value
        for image, labels in inputs:
            if image.layer is picked:
                return image, labels
        return inputs[0]

    def cancel(self) -> None:
        """Stop the running job after the current step (training) or plane (prediction)."""
        if self.jobs.cancel():
            self.status.value = "cancelling..."

    def _follow_view(self) -> None:
        """Point the live refresh of a training run at the plane and region in view."""
        image, viewer = self._job.image, self.viewer
        self._live = LiveView(current_index(viewer, image), region_in_view(viewer, image))

    # ============================================================== 4. predict and inspect
    def predict(self) -> None:
        """Predict the current plane or the whole stack with the current model."""
        if self.busy:
            return
        try:
            image = self._image_for_model()
            labels = self.data_section.labels_for_loss(image)
            from ..runtime.devices import resolve_device

            resolve_device(self.device.value)
        except refused() as err:
            self._error(str(err))
            return
        indices = self.inspect_section.planes(image, current_index(self.viewer, image))
        self._job = Job("predict", image, labels)
        self.training_section.begin(len(indices), f"predicting {len(indices)} plane(s)...")
        self._run(
            predict_job,
            self.model,
            indices,
            lambda idx: image_plane(image, idx),
            (lambda idx: np.array(labels.data[idx])) if labels is not None else None,
            (labels.plan, self.training_section.weight_recipe()) if labels is not None else None,
            self.device.value,
            self.jobs.cancel_event,
            tta=bool(self.inspect_section.tta.value),
            wait_for_gui=True,
        )

    def predict_files(self, plan: Any = None, open_results: bool = True) -> None:
        """Predict files or a folder into an output folder in a thread worker (the
        workflow's batch prediction); without ``plan``, ask for it in a dialog first."""
        if self.busy:
            return
        if self.model is None:
            self._error("there is no model yet: load or train one, then predict files")
            return
        if plan is None:
            from .predict_files import PredictFilesDialog

            if self.files_dialog is not None:
                self.files_dialog.close()
                self.files_dialog.deleteLater()
            dialog = PredictFilesDialog(self, self.model, self.training_section.device.value)
            self.files_dialog = dialog
            dialog.accepted.connect(
                lambda: self.predict_files(dialog.plan, bool(dialog.open_results.value))
            )
            dialog.open()
            return
        from .predict_files import predict_files_job

        self._job = Job("files", None)
        self._open_results = open_results
        n = len(plan.files)
        self.training_section.begin(n * 1000, f"predicting {n} file(s) into {plan.request.out}...")
        self._run(predict_files_job, self.model, plan, self.jobs.cancel_event)

    def show_activations(self, gallery: bool = False) -> None:
        """Show the channels of the chosen level for (a crop of) the plane in view; with
        ``gallery`` also side by side beside the image, with their statistics."""
        if self.busy:
            return
        try:
            image = self._image_for_model()
            level = self.level.value
            if not level:
                raise InputError("pick a level to inspect")
            index = current_index(self.viewer, image)
            region = region_in_view(self.viewer, image)
            plane = image_plane(image, index)
            labels = self.data_section.labels_for_loss(image) if gallery else None
            classes = class_plane(labels, index)
        except refused() as err:
            self._error(str(err))
            return
        self._job = Job("gallery" if gallery else "activations", image)
        self.status.value = f"capturing {level}..."
        job, extra = (gallery_job, (classes,)) if gallery else (activations_job, ())
        self._run(job, self.model, plane, index, region, level, self.device.value, *extra)

    def show_gallery(self) -> None:
        """All channels of the chosen level side by side, with their statistics."""
        self.show_activations(gallery=True)

    def show_gradient(self) -> None:
        """|d a_k(x) / d input| over the receptive field of the pinned pixel x."""
        if self.busy:
            return
        try:
            image = self._image_for_model()
            pinned = self.pixel_section.pinned
            if pinned is None or pinned[0] != image.name:
                raise InputError("click a pixel of the predicted image first (pan/zoom mode)")
            _, index, position = pinned
            logits = predicted_logits(self.viewer, image, index)
            if logits is None:
                raise InputError("predict the plane first: the gradient is taken for its class")
            k = int(np.argmax(logits[:, position[0], position[1]]))
            plane = image_plane(image, index)
        except refused() as err:
            self._error(str(err))
            return
        self._job = Job("gradient", image)
        self.status.value = f"gradient of a_{k + 1}(x) at {position}..."
        self._run(gradient_job, self.model, plane, index, position, k, self.device.value)

    # ============================================================== checks
    def _image_for_model(self) -> ImageInput:
        """The picked image, checked against the current model (Predict, Show activations)."""
        if self.model is None:
            raise InputError("there is no model yet: train one, or create/load one under Model")
        image = self.data_section.image()
        check_channels(self.model, image)
        return image

    # ============================================================== state and messages
    @property
    def busy(self) -> bool:
        """True while a training, prediction or inspection runs, or its results are still
        being written into the layers."""
        return self.jobs.busy or bool(self._writes)

    def _run(self, job: Any, *args: Any, **kwargs: Any) -> None:
        self._set_busy(True)
        self.jobs.start(job, *args, **kwargs)

    def _set_busy(self, busy: bool) -> None:
        sections = (self.model_section, self.training_section, self.inspect_section)
        for section in (*sections, self.pixel_section, self.data_section.training_pairs):
            section.set_busy(busy)

    def _set_model(self, model: Any) -> None:
        if model is not self.model and self.look_inside.image is not None:
            self.look_inside.forget("another model: Predict again to inspect pixels")
        if model is not self.model and getattr(self, "_validation", None) is not None:
            self._validation = None  # its weights belong to the model that was replaced
            self.training_section.offer_weights(None)
        self.model = model
        self.model_section.show(model)
        self.inspect_section.show_levels(model)

    def _error(self, message: str) -> None:
        show_error(f"U-Net: {message}")

    def _info(self, message: str) -> None:
        show_info(f"U-Net: {message}")

    def reset_choices(self, *_: Any) -> None:
        """Refresh the layer lists (napari calls this when layers are added or removed)."""
        self.data_section.reset_choices()

    def _on_layers_changed(self, *_: Any) -> None:
        try:
            self.reset_choices()
        except RuntimeError:  # the widget was deleted while the viewer lives on
            pass

    def _on_view_changed(self, *_: Any) -> None:
        if self._job is not None and self._job.kind == "train":
            self._follow_view()
        self.look_inside.schedule_hint()
        try:
            L.recolour_probabilities(self.viewer)
        except Exception:  # noqa: BLE001 - colours are cosmetic
            pass

    # ============================================================== what the jobs report
    def _on_event(self, event: Any) -> None:
        from .predict_files import FilesProgress

        job = self._job
        if isinstance(event, StepsDone):
            self.training_section.show_steps(event.steps)
        elif isinstance(event, FilesProgress):
            share = event.done / event.total if event.total else 1.0
            self.training_section.advance(int(1000 * (event.number - 1 + share)))
            self.status.value = (
                f"[{event.number}/{event.inputs}] {event.name}: {event.done}/{event.total} tiles"
            )
        elif isinstance(event, PlaneResult):
            if not event.live:
                job.done += 1
                self.training_section.advance(job.done)
                self.look_inside.predicted(job.image)
                self.pixel_section.remember_terms(job.image.name, event.index, event.terms)
            steps = prediction_steps(self.viewer, event, job.image, job.labels)
            if event.entropy is not None:
                self.look_inside.hint_image = job.image
                steps.append(self.look_inside.redraw_hint)
            self._write_in_turns(steps, event.applied)
        elif isinstance(event, WeightsReady):
            self._write_in_turns(
                [lambda: write_weights(self.viewer, job.image, event.planes, event.weights)],
                event.applied,
            )
        elif isinstance(event, Notice):
            self._info(event.message)
            self._set_model(self.model)  # e.g. a new head: other classes

    def _write_in_turns(self, writes: list[Any], applied: threading.Event) -> None:
        """Write a result's layers one per turn of the event loop, then let the job, which
        waits for ``applied`` (workers.hand_over), go on. Each new layer costs napari
        ~150 ms; one turn per layer keeps the window responsive in between."""
        self._writes.append((deque(writes), applied))
        if not self._write_timer.isActive():
            self._write_next()

    def _write_next(self) -> None:
        if not self._writes:
            return
        writes, applied = self._writes[0]
        try:
            if writes:
                writes.popleft()()
        except Exception:
            writes.clear()  # the rest of this result is dropped, the job goes on
            raise
        finally:
            if not writes:
                self._writes.popleft()
                applied.set()
            if self._writes:
                self._write_timer.start()
            elif self._job is None:  # the job ended before its last result was written
                self._set_busy(False)

    def _on_result(self, result: Any) -> None:
        from .predict_files import FilesWritten, open_results

        image = self._job.image if self._job is not None else None
        if isinstance(result, ActivationResult):
            self.status.value = write_activations(self.viewer, result, image)
        elif isinstance(result, GalleryResult):
            self.status.value = write_activations(self.viewer, result.activations, image)
            write_gallery(
                self.viewer,
                result.activations.level,
                result.mosaic,
                image,
                result.activations.index,
            )
            names = {k + 1: name for k, name in enumerate(class_names(self.model))}
            self.inspect_section.show_statistics(*result.statistics.rows(names))
        elif isinstance(result, GradientResult):
            self.status.value = write_gradient(
                self.viewer, image, result.index, result.gradient, result.field, result.k
            )
        elif isinstance(result, FilesWritten):
            self.status.value = (
                f"predicted {result.inputs} file(s) in {result.seconds:.1f} s: wrote "
                f"{len(result.paths)} file(s)"
                + (f" into {result.paths[0].parent}" if result.paths else "")
            )
            if self._open_results:
                open_results(self.viewer, result.paths)
        elif isinstance(result, Exported):
            what = "bioimage.io package" if result.kind == "bioimageio" else "TorchScript file"
            self.status.value = f"exported the model as a {what}: {result.path}"
            self._info(self.status.value)
        elif isinstance(result, JobDone):
            self.status.value = result.summary()
            if result.kind == "train":
                self._validation = result.extra.get("validation")
                self.training_section.offer_weights(self._validation)

    def _on_error(self, exc: BaseException) -> None:
        from ..workflow.batch import BatchCancelled

        kind = self._job.kind if self._job is not None else "job"
        if isinstance(exc, BatchCancelled):
            self.status.value = "file prediction cancelled: nothing was written"
            self._info(self.status.value)
            return
        if isinstance(exc, user_errors()):
            self._error(str(exc))
        else:
            traceback.print_exception(type(exc), exc, exc.__traceback__)
            self._error(f"{kind} failed: {type(exc).__name__}: {exc}")
        self.status.value = f"{kind} failed: {exc}"

    def _on_finished(self) -> None:
        self._job = None
        if not self._writes:  # else the last write re-enables the controls
            self._set_busy(False)
        self._set_model(self.model)  # the training so far, the classes

"""2. Model: where the model comes from (a new U-Net, a bundled model, a file), what the
current one is, and saving it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, FileEdit, LineEdit, PushButton
from qtpy.QtWidgets import QFileDialog, QWidget

from ..unet.data import InputError
from ..unet.presets import DEFAULT_PRESET
from ..workflow import ModelChoice, open_model, parse_class_names
from .form import Section, TextLabel, row
from .options import (
    FROM_FILE,
    NEW_MODEL,
    PRETRAINED_PREFIX,
    default_source,
    describe_model,
    describe_pending,
    model_sources,
    preset_choices,
)

MODEL_FILTER = "napari-unet model (*.pt)"


@lru_cache(maxsize=8)
def bundled_summary(name: str) -> str:
    """What a bundled model is and what it was trained on (loads it once per session)."""
    from ..pretrained import load_pretrained, model_summary

    try:
        return model_summary(load_pretrained(name))
    except Exception as err:  # noqa: BLE001 - the error shows when the user loads it
        return f"({name} could not be read: {err})"


def bundled_card(model: Any) -> str:
    """The model card of a bundled model (a fine-tuned one too), else ''."""
    source = (model.record.source or "") if model is not None else ""
    if not source.startswith("bundled:"):
        return ""
    from ..pretrained import model_card

    return model_card(source.split(":", 1)[1])


class ModelSection(Section):
    """Choose the source; Create/Load and Save; the description of the current model."""

    def __init__(self, pretrained: list[str]) -> None:
        super().__init__("2. Model")
        self.model_source = ComboBox(
            choices=model_sources(pretrained), value=default_source(pretrained)
        )
        self.preset = ComboBox(choices=preset_choices(), value=DEFAULT_PRESET)
        self.model_file = FileEdit(mode="r", filter=MODEL_FILTER)
        self.make_model_button = PushButton(text="Create new model")
        self.save_button = PushButton(text="Save model...")
        self.export_button = PushButton(text="Export...")
        self.export_button.tooltip = (
            "Write the current model as a bioimage.io package (for bioimage.io, deepImageJ, "
            "ilastik, ...) or a TorchScript file, validated as the Python API does"
        )
        self.class_names = LineEdit(value="")
        self.class_names.native.setPlaceholderText("class 1, class 2, ...")
        self.class_names.tooltip = (
            "Names of the classes, in order, separated by commas (class k = label value k). "
            "Enter renames the current model's classes; they go into saved files, the "
            "segmentation layer's features and bioimage.io exports"
        )
        self.model_info = TextLabel()
        self.make_model_button.tooltip = "Make the model chosen under 'source' the current model"
        self.save_button.tooltip = "Save the current model to a .pt file"
        self._preset_row = row(self.preset)
        self._file_row = row(self.model_file)
        self.add_rows(
            [
                ("source", self.model_source),
                ("preset", self._preset_row),
                ("file", self._file_row),
                ("", row(self.make_model_button, self.save_button, self.export_button)),
                ("classes", self.class_names),
                ("", self.model_info),
            ]
        )
        self._current: Any = None
        self.model_source.changed.connect(self._on_source_changed)
        self._on_source_changed()

    def _on_source_changed(self, *_: Any) -> None:
        source = self.model_source.value
        self.show_row(self._preset_row, source == NEW_MODEL)
        self.show_row(self._file_row, source == FROM_FILE)
        self.make_model_button.text = {NEW_MODEL: "Create new model", FROM_FILE: "Load file"}.get(
            source, "Load pretrained"
        )
        if self._current is None:
            self.show(None)

    def build(self, in_channels: int, n_classes: int) -> Any:
        """A model from the chosen source (not yet the current one): a new U-Net with this
        many input channels and classes, a bundled model, or the chosen file."""
        return open_model(self.choice(), in_channels, n_classes)

    def choice(self) -> ModelChoice:
        """The workflow's :class:`~napari_unet.workflow.ModelChoice` of the source picked."""
        source = self.model_source.value
        if source == NEW_MODEL:
            return ModelChoice.new(self.preset.value)
        if source == FROM_FILE:
            path = self.model_file.value  # Path(".") while nothing is chosen
            return ModelChoice.file(None if not path or Path(path).is_dir() else path)
        return ModelChoice.bundled(source[len(PRETRAINED_PREFIX) :])

    def show(self, model: Any) -> None:
        """Describe the current model (or, without one, what Train will start from); a
        bundled model's card is the tooltip."""
        self._current = model
        if model is not None:
            self.show_class_names(model)
            self.model_info.value = describe_model(model)
            self.model_info.setToolTip(bundled_card(model))
            return
        source = self.model_source.value
        name = source[len(PRETRAINED_PREFIX) :] if source.startswith(PRETRAINED_PREFIX) else ""
        self.model_info.value = describe_pending(source, bundled_summary(name) if name else "")
        if name:
            from ..pretrained import model_card

            self.model_info.setToolTip(model_card(name))
        else:
            self.model_info.setToolTip("")

    def names(self) -> list[str] | None:
        """The class names typed in (None: the model's own, or "class k")."""
        return parse_class_names(self.class_names.value)

    def show_class_names(self, model: Any, force: bool = False) -> None:
        """The model's names in the field; a model without names keeps what was typed
        (unless ``force``: a refused rename shows the model's names again)."""
        names = model.record.classes.names
        if names or force:
            self.class_names.value = ", ".join(names or [])

    def set_busy(self, busy: bool) -> None:
        for widget in (
            self.class_names,
            self.make_model_button,
            self.save_button,
            self.export_button,
            self.model_source,
            self.preset,
            self.model_file,
        ):
            widget.enabled = not busy


def ask_save_path(parent: QWidget) -> str | None:
    """Ask where to save the model (None: the user cancelled)."""
    chosen, _ = QFileDialog.getSaveFileName(parent, "Save U-Net model", "unet.pt", MODEL_FILTER)
    return chosen or None


def write_model_file(path: str | Path, model: Any) -> Path:
    """Save ``model`` to ``path`` (".pt" added if missing). Never replaces a file that is not
    one of our model files (an image, labels...): raises InputError instead, as it does when
    the file cannot be written."""
    from ..io.checkpoint import save_model

    path = Path(path)
    if path.suffix != ".pt":
        path = path.with_name(path.name + ".pt")
    try:
        save_model(path, model)
    except (OSError, ValueError) as err:
        raise InputError(f"could not save the model: {err}") from err
    return path

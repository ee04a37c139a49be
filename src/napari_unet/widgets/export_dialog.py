"""The Export dialog of section 2: a bioimage.io package or a TorchScript file of the
current model (what :func:`napari_unet.workflow.export_model` writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FileEdit, LineEdit
from qtpy.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QWidget

from ..unet.errors import InputError
from ..workflow import ExportRequest
from .form import TextLabel

KINDS = {"bioimage.io package (.zip)": "bioimageio", "TorchScript (.pt)": "torchscript"}
SUFFIX = {"bioimageio": ".zip", "torchscript": ".pt"}


class ExportDialog(QDialog):
    """Format, file, and (for bioimage.io) the package's name, description and authors."""

    def __init__(self, parent: QWidget | None, model_name: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Export the U-Net")
        self.kind = ComboBox(choices=list(KINDS), value=next(iter(KINDS)))
        self.path = FileEdit(mode="w", filter="bioimage.io package (*.zip);;TorchScript (*.pt)")
        self.package_name = LineEdit(value=model_name)
        self.description = LineEdit(value="")
        self.authors = LineEdit(value="")
        self.authors.native.setPlaceholderText("Ada Lovelace, Alan Turing")
        self.replace = CheckBox(value=False, text="replace an earlier export of this name")
        form = QFormLayout(self)
        for label, widget in (
            ("format", self.kind),
            ("file", self.path),
            ("name", self.package_name),
            ("description", self.description),
            ("authors", self.authors),
            ("", self.replace),
        ):
            form.addRow(label, widget.native)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.problem = TextLabel()  # why OK did not close the dialog
        self.problem.setStyleSheet("color: #e57373")
        form.addRow(self.problem)
        form.addRow(self.buttons)
        self.kind.changed.connect(self._on_kind)
        self._on_kind()

    def accept(self) -> None:
        """Close only on a request the export can take; else say why and stay open."""
        try:
            self.request().validate()
        except InputError as err:
            self.problem.value = str(err)
            return
        self.problem.value = ""
        super().accept()

    def _on_kind(self, *_: Any) -> None:
        bioimageio = KINDS[self.kind.value] == "bioimageio"
        for widget in (self.package_name, self.description, self.authors):
            widget.enabled = bioimageio

    def request(self) -> ExportRequest:
        """What the user asked for (checked by :meth:`ExportRequest.validate` later)."""
        kind = KINDS[self.kind.value]
        path = Path(self.path.value) if str(self.path.value).strip() else Path(".")
        if path != Path(".") and not path.suffix and kind == "torchscript":
            path = path.with_suffix(SUFFIX[kind])
        authors = tuple(a.strip() for a in self.authors.value.split(",") if a.strip())
        return ExportRequest(
            kind,
            path,
            name=self.package_name.value.strip(),
            description=self.description.value.strip(),
            authors=authors,
            overwrite=bool(self.replace.value),
        )

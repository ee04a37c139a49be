"""4. Predict and inspect: predict the plane in view or the whole stack; show the channels
of one encoder/decoder level, one at a time or as a gallery with their statistics; hint
where to annotate next (the window in view with the highest uncertainty H(x))."""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, PushButton
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem

from .form import Section, row
from .inputs import ImageInput
from .options import PREDICT_SCOPES
from .workers import Index


class InspectSection(Section):
    """Predict / Show activations, and which planes and level they apply to."""

    def __init__(self) -> None:
        super().__init__("4. Predict and inspect")
        self._levels: list[str] = []
        self.scope = ComboBox(
            choices=PREDICT_SCOPES,
            value=PREDICT_SCOPES[0],
            tooltip="Predict the plane in view, or every plane of a Z/T stack",
        )
        self.predict_button = PushButton(text="Predict")
        self.files_button = PushButton(text="Predict files...")
        self.files_button.tooltip = (
            "Predict image files or a folder with the current model into an output folder "
            "(as napari-unet predict): in the background, with progress and Cancel; the "
            "inputs are never overwritten and a cancelled or failed run writes nothing"
        )
        self.tta = CheckBox(value=False, text="average 8 flips/rotations")
        self.tta.tooltip = (
            "Test-time augmentation, as the paper: predict the 8 flipped/rotated views and "
            "average a_k(x); 8x slower, fewer one-pixel errors"
        )
        self.level = ComboBox(choices=self._level_choices, tooltip="Encoder/decoder level")
        self.annotate_hint = CheckBox(value=True, text="hint where to annotate next")
        self.annotate_hint.tooltip = (
            "Draw the window in view where the model is least sure (highest mean H(x), the "
            "entropy of p_k(x)): strokes there teach it most"
        )
        self.inspect_button = PushButton(text="Show activations")
        self.inspect_button.tooltip = "Show the channels of this level over the plane in view"
        self.gallery_button = PushButton(text="Channel gallery")
        self.gallery_button.tooltip = (
            "All channels of this level side by side, each with its own contrast, beside the "
            "image, with their mean activation (overall and per annotated class); click a "
            "channel to show it over the image"
        )
        self.channel_table = QTableWidget(0, 0)
        self.channel_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.channel_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.channel_table.setMaximumHeight(180)
        self.channel_table.verticalHeader().setVisible(False)
        self.channel_table.setVisible(False)
        self.add_rows(
            [
                ("", row(self.scope, self.predict_button)),
                ("", self.files_button),
                ("", self.tta),
                ("", self.annotate_hint),
                ("level", self.level),
                ("", row(self.inspect_button, self.gallery_button)),
                ("", self.channel_table),
            ]
        )

    def _level_choices(self, _w: Any = None) -> list[str]:
        return self._levels

    def show_levels(self, model: Any) -> None:
        """Offer the levels of ``model`` (none without a model)."""
        self._levels = model.level_names() if model is not None else []
        self.level.reset_choices()

    def planes(self, image: ImageInput, current: Index) -> list[Index]:
        """The planes to predict: the one in view (``current``), or all of a stack."""
        if self.scope.value == "whole stack" and image.lead_shape:
            return list(np.ndindex(*image.lead_shape))
        return [current]

    def show_statistics(self, headers: list[str], rows: list[list[str]]) -> None:
        """Fill the channel table (one row per channel; sortable by any column)."""
        table = self.channel_table
        table.setSortingEnabled(False)
        table.clear()
        table.setColumnCount(len(headers))
        table.setRowCount(len(rows))
        table.setHorizontalHeaderLabels(headers)
        for i, values in enumerate(rows):
            for j, text in enumerate(values):
                item = QTableWidgetItem()
                try:  # numbers sort as numbers
                    item.setData(0, float(text))
                except ValueError:
                    item.setText(text)
                table.setItem(i, j, item)
        table.resizeColumnsToContents()
        table.setSortingEnabled(True)
        table.setVisible(True)

    def channel_of_row(self, row_index: int) -> int | None:
        """The channel number in a (possibly sorted) row of the table."""
        item = self.channel_table.item(row_index, 0)
        return None if item is None else int(float(item.data(0)))

    def set_busy(self, busy: bool) -> None:
        buttons = (
            self.predict_button,
            self.files_button,
            self.inspect_button,
            self.gallery_button,
        )
        for button in buttons:
            button.enabled = not busy

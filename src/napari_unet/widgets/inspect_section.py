"""4. Predict and inspect: predict the plane in view or the whole stack; show the channels
of one encoder/decoder level."""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, PushButton

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
        self.tta = CheckBox(value=False, text="average 8 flips/rotations")
        self.tta.tooltip = (
            "Test-time augmentation, as the paper: predict the 8 flipped/rotated views and "
            "average a_k(x); 8x slower, fewer one-pixel errors"
        )
        self.level = ComboBox(choices=self._level_choices, tooltip="Encoder/decoder level")
        self.inspect_button = PushButton(text="Show activations")
        self.inspect_button.tooltip = "Show the channels of this level over the plane in view"
        self.add_rows(
            [
                ("", row(self.scope, self.predict_button)),
                ("", self.tta),
                ("level", row(self.level, self.inspect_button)),
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

    def set_busy(self, busy: bool) -> None:
        self.predict_button.enabled = self.inspect_button.enabled = not busy

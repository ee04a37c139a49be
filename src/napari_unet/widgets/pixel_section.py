"""5. Look at a pixel: the numbers behind one x in Omega, from the last prediction.

Hovering shows a_k(x), the softmax written out, l(x), w(x) term by term and the loss
(:mod:`napari_unet.unet.pixel_report`); clicking pins the pixel and draws its receptive
field (:mod:`napari_unet.unet.receptive_field`). The values are read from the arrays of
the last Predict (the ``a_k(x)`` layer and the annotation terms kept here), never from a
new forward pass, so following the cursor costs no computation.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, PushButton
from qtpy.QtGui import QFontDatabase
from qtpy.QtWidgets import QLabel

from .form import Section, TextLabel, row
from .workers import Index

HINT = "Predict, then hover over the image: the numbers behind the pixel under the cursor."


class PixelSection(Section):
    """The pixel inspector's text, its switches and the gradient map button."""

    def __init__(self) -> None:
        super().__init__("5. Look at a pixel")
        self.follow_cursor = CheckBox(value=True, text="follow the cursor")
        self.follow_cursor.tooltip = (
            "Show the numbers of the pixel under the mouse; a click pins a pixel and draws "
            "its receptive field"
        )
        self.gradient_button = PushButton(text="Gradient map")
        self.gradient_button.tooltip = (
            "|d a_k(x) / d input| over the receptive field of the pinned pixel x (k = its "
            "predicted class): which input pixels drove the decision"
        )
        self.pixel_text = QLabel(HINT)
        self.pixel_text.setWordWrap(True)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
        self.pixel_text.setFont(font)
        self.pixel_text.setTextInteractionFlags(
            self.pixel_text.textInteractionFlags() | _selectable()
        )
        self.field_info = TextLabel("")
        self.add_rows(
            [
                ("", row(self.follow_cursor, self.gradient_button)),
                ("", self.pixel_text),
                ("", self.field_info),
            ]
        )
        #: the predicted planes of the inspected image, each with the annotation terms of
        #: its prediction (None where it was not annotated)
        self.terms: dict[Index, Any] = {}
        self.terms_source: str | None = None
        #: the pinned pixel: (image name, plane index, (row, column)), or None
        self.pinned: tuple[str, Index, tuple[int, int]] | None = None

    def remember_terms(self, image_name: str, index: Index, terms: Any) -> None:
        """Note a predicted plane and its l(x), w(x) and border term (None: not
        annotated); a prediction of another image starts over."""
        if self.terms_source != image_name:
            self.terms, self.terms_source = {}, image_name
        self.terms[index] = terms

    def predicted(self, image_name: str, index: Index) -> bool:
        return self.terms_source == image_name and index in self.terms

    def terms_of(self, image_name: str, index: Index) -> Any:
        return self.terms.get(index) if self.terms_source == image_name else None

    def show(self, lines: list[str]) -> None:
        self.pixel_text.setText("\n".join(lines))

    def set_busy(self, busy: bool) -> None:
        self.gradient_button.enabled = not busy


def _selectable() -> Any:
    from qtpy.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse

"""Small Qt building blocks shared by the widget's sections: a titled form, a row of
controls, a word-wrapping text line."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QWidget


def native(widget: Any) -> QWidget:
    """The Qt widget of a magicgui widget (or the Qt widget itself)."""
    return widget if isinstance(widget, QWidget) else widget.native


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


def row(*widgets: Any) -> QWidget:
    """Controls side by side on one line of a form."""
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(native(widget))
    return box


class Section(QGroupBox):
    """One numbered step of the workflow: a titled box holding a form of (label, control)
    rows; an empty label gives the control the full width."""

    def __init__(self, title: str) -> None:
        super().__init__(title)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(6, 4, 6, 4)
        self.form.setVerticalSpacing(3)

    def add_rows(self, rows: list[tuple[str, Any]]) -> None:
        for label, widget in rows:
            if label:
                self.form.addRow(label, native(widget))
            else:
                self.form.addRow(native(widget))

    def show_row(self, field: QWidget, visible: bool) -> None:
        """Show or hide a row (its control and its label)."""
        field.setVisible(visible)
        label = self.form.labelForField(field)
        if label is not None:
            label.setVisible(visible)

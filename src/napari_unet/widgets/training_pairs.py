"""Several image / annotation pairs for one training run (section 1): a list the user
fills with "Add pair"; Train then learns from every pair, tiles drawn in proportion to
each pair's annotated pixels (:class:`napari_unet.unet.training.TileSampler`)."""

from __future__ import annotations

from typing import Any

from magicgui.widgets import PushButton
from qtpy.QtWidgets import QListWidget

from ..unet.data import InputError
from ..workflow import distinct_values, interpret_labels
from .inputs import ImageInput, LabelsInput, read_image, read_labels


class TrainingPairs:
    """The pairs (image layer, labels layer) and their list widget."""

    def __init__(self) -> None:
        self.pairs: list[tuple[Any, Any, Any]] = []  # (image layer, channel axis, labels)
        self.list = QListWidget()
        self.list.setMaximumHeight(90)
        self.list.setVisible(False)
        self.add_button = PushButton(text="Add pair")
        self.add_button.tooltip = (
            "Add the image and annotations above to the training pairs: Train then learns "
            "from every pair in the list at once"
        )
        self.remove_button = PushButton(text="Remove pair")
        self.remove_button.tooltip = "Remove the selected pair from the list"
        self.remove_button.clicked.connect(self.remove_selected)

    def add(self, image: ImageInput, labels: LabelsInput) -> str:
        """Add a checked pair; returns a line saying what the list holds."""
        for layer, _, lab in self.pairs:
            if layer is image.layer and lab is labels.layer:
                raise InputError(f"'{image.name}' with '{labels.name}' is in the list already")
        self.pairs.append((image.layer, image.channel_axis, labels.layer))
        self._show()
        return f"{len(self.pairs)} training pair(s)"

    def remove_selected(self, *_: Any) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.pairs):
            del self.pairs[row]
            self._show()

    def prune(self, layers: Any) -> None:
        """Drop pairs whose layers left the viewer."""
        kept = [p for p in self.pairs if p[0] in layers and p[2] in layers]
        if len(kept) != len(self.pairs):
            self.pairs = kept
            self._show()

    def read(self, mode: str) -> list[tuple[ImageInput, LabelsInput]]:
        """Every pair checked, their labels read by one plan (the values of all the pairs
        together, as the command line reads several label files)."""
        pairs = []
        for layer, axis, labels_layer in self.pairs:
            image = read_image(layer, axis)
            pairs.append((image, read_labels(labels_layer, image, mode)))
        kinds = {lab.plan.mode for _, lab in pairs}
        if len(kinds) > 1:  # read together, scribbles and a 0/255 mask would become ids
            read_as = ", ".join(f"'{lab.name}' as {lab.plan.mode}" for _, lab in pairs)
            raise InputError(
                f"the training pairs hold different kinds of labels ({read_as}): train on "
                "pairs of one kind, or choose the label mode that fits them all"
            )
        what = "the training pairs (" + ", ".join(f"'{lab.name}'" for _, lab in pairs) + ")"
        plan = interpret_labels(
            distinct_values([lab.layer.data for _, lab in pairs]), mode, what=what
        )
        for _, lab in pairs:
            lab.plan = plan
        return pairs

    def _show(self) -> None:
        self.list.clear()
        for layer, _, labels in self.pairs:
            self.list.addItem(f"{layer.name}  <-  {labels.name}")
        self.list.setVisible(bool(self.pairs))

    def set_busy(self, busy: bool) -> None:
        self.add_button.enabled = self.remove_button.enabled = not busy

"""The mouse and view side of looking inside: hover reports the pixel under the cursor, a
click pins it (and draws its receptive field) or, on the gallery, brings a channel up;
moving the view redraws the "annotate next" hint. Qt and napari only; the numbers come
from :mod:`.pixel_inspector` and :mod:`.gallery`."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from qtpy.QtCore import QTimer

from . import layers as L
from .gallery import bring_up_channel, channel_under
from .inputs import ImageInput
from .inspect_section import InspectSection
from .pixel_inspector import draw_annotation_hint, draw_receptive_field, report_lines
from .pixel_section import PixelSection
from .view import current_index, pixel_at, visible_region
from .workers import Index

#: a hint redraw waits this long after the last view change (ms)
HINT_DELAY_MS = 150


class LookInside:
    """Connects the viewer's mouse and camera to the pixel inspector, the receptive field,
    the gallery and the hint. ``model()`` gives the widget's current model."""

    def __init__(
        self,
        viewer: Any,
        pixels: PixelSection,
        inspect: InspectSection,
        model: Callable[[], Any],
    ) -> None:
        self.viewer, self.pixels, self.inspect, self.model = viewer, pixels, inspect, model
        #: the image of the last prediction (what the inspector reads), or None
        self.image: ImageInput | None = None
        #: the image of the last H(x) (a prediction or a live refresh during training)
        self.hint_image: ImageInput | None = None
        self._shown: tuple[Index, tuple[int, int]] | None = None
        self._hint_timer = QTimer()
        self._hint_timer.setSingleShot(True)
        self._hint_timer.setInterval(HINT_DELAY_MS)
        self._hint_timer.timeout.connect(self.redraw_hint)
        viewer.mouse_move_callbacks.append(self.on_mouse_move)
        viewer.mouse_drag_callbacks.append(self.on_mouse_press)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        inspect.channel_table.cellClicked.connect(self._on_table_click)
        inspect.annotate_hint.changed.connect(lambda *_: self.redraw_hint())

    def detach(self) -> None:
        """Stop listening to the viewer (the widget is gone)."""
        self._hint_timer.stop()
        for callbacks, fn in (
            (self.viewer.mouse_move_callbacks, self.on_mouse_move),
            (self.viewer.mouse_drag_callbacks, self.on_mouse_press),
        ):
            if fn in callbacks:
                callbacks.remove(fn)
        self.viewer.layers.events.removed.disconnect(self._on_layer_removed)

    def predicted(self, image: ImageInput) -> None:
        """A prediction of ``image`` came: the inspector reads it from now on."""
        if self.image is None or self._shown is None:
            self.pixels.show(
                [
                    f"hover over '{image.name}' to see the numbers behind a pixel;"
                    " click (pan/zoom mode) to pin it and draw its receptive field"
                ]
            )
        self.image = image

    def forget(self, why: str) -> None:
        """Drop what the inspector reads (another model, a removed a_k(x) layer): its
        numbers would no longer belong to the current model's prediction."""
        self.image, self._shown = None, None
        self.pixels.terms, self.pixels.terms_source, self.pixels.pinned = {}, None, None
        self.pixels.show([why])
        self.pixels.field_info.value = ""

    def _on_layer_removed(self, event: Any) -> None:
        layer = event.value
        if layer.metadata.get(L.MARKER) == L.LOGITS and self.image is not None:
            self.forget("the a_k(x) layer was removed: Predict again to inspect pixels")

    # ------------------------------------------------------------------ the pixel
    def on_mouse_move(self, _viewer: Any, event: Any) -> None:
        if self.pixels.follow_cursor.value and self.image is not None:
            hit = pixel_at(self.image, event.position)
            if hit is not None and hit != self._shown:
                self.show_pixel(*hit)

    def on_mouse_press(self, _viewer: Any, event: Any) -> Generator[None, None, None]:
        """A click (press and release without moving) pins the pixel or picks a channel;
        a drag (panning, painting) does nothing here."""
        yield
        dragged = False
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            self.click(event.position)

    def click(self, world_position: Any) -> None:
        """What a click at ``world_position`` does: a gallery cell brings its channel up,
        a pixel of the predicted image is pinned."""
        for layer in self.viewer.layers:
            if layer.visible and layer.name.startswith(L.GALLERY) and L.is_output(layer):
                channel = channel_under(layer, world_position)
                if channel is not None:
                    bring_up_channel(self.viewer, layer.metadata["level"], channel)
                    return
        if self.image is None or not _pan_zoom_mode(self.viewer):
            return
        hit = pixel_at(self.image, world_position)
        if hit is not None:
            self.pin(*hit)

    def show_pixel(self, index: Index, position: tuple[int, int]) -> bool:
        """Show the numbers of pixel ``position`` of plane ``index``; False when that
        plane has no prediction."""
        if self.image is None:
            return False
        if not self.pixels.predicted(self.image.name, index):
            where = ", ".join(map(str, index))
            self.pixels.show([f"plane ({where}) has no prediction yet: press Predict"])
            self._shown = (index, position)
            return False
        lines = report_lines(
            self.viewer,
            self.model(),
            self.image,
            index,
            position,
            self.pixels.terms_of(self.image.name, index),
        )
        self._shown = (index, position)
        if lines is None:
            self.pixels.show(["no a_k(x) layer of this image: Predict again to inspect pixels"])
            return False
        self.pixels.show(lines)
        return True

    def pin(self, index: Index, position: tuple[int, int]) -> None:
        """Pin pixel x: its numbers stay (until the cursor shows another one) and its
        receptive field is drawn."""
        if self.image is None or not self.show_pixel(index, position):
            return
        self.pixels.pinned = (self.image.name, index, position)
        gradient = L.find_output(self.viewer, L.GRADIENT)
        if gradient is not None:
            gradient.visible = False  # it belongs to the pixel pinned before
        self.pixels.field_info.value = draw_receptive_field(
            self.viewer, self.model(), self.image, index, position
        )

    # ------------------------------------------------------------------ the hint
    def schedule_hint(self) -> None:
        """Redraw the hint once the view has settled."""
        if self.hint_image is not None and L.find_output(self.viewer, L.ENTROPY) is not None:
            self._hint_timer.start()

    def redraw_hint(self) -> None:
        """Draw (or hide) "annotate next" for the part of the plane in view."""
        hint = L.find_output(self.viewer, L.HINT)
        image = self.hint_image
        if not self.inspect.annotate_hint.value or image is None:
            if hint is not None:
                hint.visible = False
            return
        if image.layer not in self.viewer.layers:
            return
        index = current_index(self.viewer, image)
        box = draw_annotation_hint(self.viewer, image, index, visible_region(self.viewer, image))
        hint = L.find_output(self.viewer, L.HINT)
        if hint is not None:
            hint.visible = box is not None

    # ------------------------------------------------------------------ the gallery
    def _on_table_click(self, row_index: int, _column: int) -> None:
        channel = self.inspect.channel_of_row(row_index)
        galleries = [
            layer
            for layer in self.viewer.layers
            if layer.name.startswith(L.GALLERY) and L.is_output(layer)
        ]
        if channel is not None and galleries:
            bring_up_channel(self.viewer, galleries[0].metadata["level"], channel)


def _pan_zoom_mode(viewer: Any) -> bool:
    """True unless the selected layer is in a drawing mode (painting, drawing shapes...):
    there a click belongs to the layer."""
    active = viewer.layers.selection.active
    return str(getattr(active, "mode", "pan_zoom")) in ("pan_zoom", "transform")

"""Several image / annotation pairs in one training run from the widget: "Add pair" fills
the list, Train learns from every pair (the run records every image and all their
annotated pixels), the live refresh and w(x) belong to the image picked under Data."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import bundled_nuclei

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def press(qtbot, button) -> None:
    from qtpy.QtCore import Qt

    qtbot.mouseClick(button.native, Qt.LeftButton)


@pytest.fixture
def two_pairs(make_napari_viewer):
    nuclei = bundled_nuclei()
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    crops = {"top": (slice(0, 128), slice(0, 160)), "bottom": (slice(300, 428), slice(200, 328))}
    for name, crop in crops.items():
        viewer.add_image(nuclei["image"][crop], name=name)
        viewer.add_labels(nuclei["scribbles"][crop], name=f"{name} strokes")
    widget.model_source.value = "New U-Net"
    widget.steps.value = 3
    widget.tile_size.value = 32
    widget.augment.value = False
    return viewer, widget, nuclei, crops


def add(qtbot, widget, viewer, name: str) -> None:
    widget.image_layer.value = viewer.layers[name]
    widget.labels_layer.value = viewer.layers[f"{name} strokes"]
    press(qtbot, widget.data_section.training_pairs.add_button)


def test_train_learns_from_every_pair(two_pairs, qtbot, errors) -> None:
    viewer, widget, nuclei, crops = two_pairs
    pairs = widget.data_section.training_pairs
    add(qtbot, widget, viewer, "top")
    add(qtbot, widget, viewer, "bottom")
    assert [pairs.list.item(i).text() for i in range(pairs.list.count())] == [
        "top  <-  top strokes",
        "bottom  <-  bottom strokes",
    ]
    add(qtbot, widget, viewer, "bottom")  # twice: refused
    assert any("is in the list already" in m for m in errors())
    assert len(pairs.pairs) == 2

    press(qtbot, widget.train_button)  # "bottom" is picked: its plane is the live view
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    run = widget.model.record.training[-1]
    assert run.steps_done == 3
    assert sorted(run.images) == ["bottom", "top"]
    annotated = sum(int(np.count_nonzero(nuclei["scribbles"][c])) for c in crops.values())
    assert run.annotated_pixels == annotated
    w = viewer.layers["w(x)"]
    assert w.metadata["source"] == "bottom" and w.data.shape == (128, 128)

    viewer.layers.remove(viewer.layers["top strokes"])  # a layer gone: its pair too
    assert [p[0].name for p in pairs.pairs] == ["bottom"]


def test_pairs_of_other_label_kinds_are_read_together(two_pairs, qtbot, errors) -> None:
    """The pairs' values are read by one plan, as the CLI reads several label files: a
    pair with a third class value gives every pair K = 3."""
    viewer, widget, _, _ = two_pairs
    strokes = viewer.layers["bottom strokes"].data
    strokes[strokes == 2] = 3  # class 3 instead of 2 in one pair
    viewer.layers["bottom strokes"].refresh()
    add(qtbot, widget, viewer, "top")
    add(qtbot, widget, viewer, "bottom")
    press(qtbot, widget.train_button)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert widget.model.n_classes == 3
    assert not errors()


def test_pairs_of_different_label_kinds_are_refused(two_pairs, qtbot, errors) -> None:
    """Scribbles and a 0/255 mask read together would look like instance ids: refused,
    naming how each pair reads, and nothing is trained."""
    from .conftest import snapshot

    viewer, widget, _, _ = two_pairs
    strokes = viewer.layers["bottom strokes"]
    strokes.data = np.where(strokes.data == 2, 255, 0).astype(np.uint8)  # a mask
    add(qtbot, widget, viewer, "top")
    add(qtbot, widget, viewer, "bottom")
    before = snapshot(viewer)
    press(qtbot, widget.train_button)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert any(
        "different kinds of labels ('top strokes' as scribbles, 'bottom strokes' as dense)" in m
        for m in errors()
    ), errors()
    assert [n for n, _, _ in snapshot(viewer)] == [n for n, _, _ in before]
    assert widget.model is None or not widget.model.record.training

"""A new user's first session in the widget: the dock leaves the canvas room, the sliders
are named, results stay with their image, and the widget says what it changes."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from .conftest import bundled_nuclei

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

CROP = (slice(40, 168), slice(200, 328))


def wait_idle(qtbot, widget, timeout: float = 120) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


def click(qtbot, button) -> None:
    qtbot.mouseClick(button.native, Qt.MouseButton.LeftButton)


def new_unet(widget) -> None:
    """A tiny new U-Net, made by pressing 'Create new model'."""
    widget.model_source.value = "New U-Net"
    widget.make_model_button.native.click()
    assert widget.model is not None


def test_docking_from_the_menu_leaves_the_canvas_room(make_napari_viewer, qtbot, monkeypatch):
    from napari.settings import get_settings

    from napari_unet.widgets.window_fit import MIN_CANVAS_WIDTH

    monkeypatch.setattr(get_settings().application, "window_size", None)  # a first run
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(853, 700)  # napari's first-run width
    viewer.open_sample("napari-unet-explorer", "nuclei")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    room = window.screen().availableGeometry()
    assert room.width() == 1280  # the laptop screen of the GUI tests (pyproject.toml)
    canvas = window.centralWidget()
    qtbot.waitUntil(lambda: window.width() > 853, timeout=5000)  # fitted when it docked
    qtbot.wait(100)  # the layout follows
    assert canvas.width() >= MIN_CANVAS_WIDTH
    assert window.frameGeometry().width() <= room.width()
    assert dock.width() <= 0.4 * window.width()  # the dock is narrower than the canvas
    # the sections scroll rather than squeeze: the loss curve keeps its height
    qtbot.waitUntil(lambda: widget.loss_plot.height() >= widget.loss_plot.minimumHeight())
    assert (
        widget.scroll_area.widget().height()
        >= widget.scroll_area.widget().minimumSizeHint().height()
    )


def test_sliders_are_named_class_k_and_z(make_napari_viewer, qtbot) -> None:
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    image = bundled_nuclei()["image"][CROP]
    viewer.add_image(np.stack([image, image[::-1]]), name="stack")
    widget.image_layer.value = viewer.layers["stack"]
    assert viewer.dims.axis_labels == ("-3", "-2", "-1")  # napari's own names
    new_unet(widget)
    click(qtbot, widget.predict_button)
    wait_idle(qtbot, widget)
    for name in ("a_k(x)", "p_k(x)"):
        assert viewer.layers[name].axis_labels == ("class k", "z", "y", "x")
    assert viewer.layers["segmentation"].axis_labels == ("z", "y", "x")
    assert viewer.dims.axis_labels == ("class k", "z", "y", "x")
    # an image whose axes have names keeps them
    viewer.layers.clear()
    viewer.add_image(np.stack([image] * 2), name="timelapse", axis_labels=("time", "row", "col"))
    widget.image_layer.value = viewer.layers["timelapse"]
    click(qtbot, widget.predict_button)
    wait_idle(qtbot, widget)
    assert viewer.layers["p_k(x)"].axis_labels == ("class k", "time", "row", "col")


def test_results_sit_above_their_image_and_stale_ones_hide(make_napari_viewer, qtbot) -> None:
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    image = bundled_nuclei()["image"][CROP]
    viewer.add_image(image, name="first")
    viewer.add_image(image[::-1].copy(), name="second")
    viewer.add_labels(np.zeros(image.shape, np.uint8), name="my notes")
    widget.image_layer.value = viewer.layers["first"]
    new_unet(widget)
    click(qtbot, widget.predict_button)
    wait_idle(qtbot, widget)
    widget.level.value = widget.level.choices[0]
    click(qtbot, widget.inspect_button)
    wait_idle(qtbot, widget)
    activations = next(layer for layer in viewer.layers if layer.name.startswith("activations"))
    names = [layer.name for layer in viewer.layers]
    results = {"a_k(x)", "p_k(x)", "segmentation", "H(x)", "annotate next", activations.name}
    assert names[0] == "first" and set(names[1:7]) == results
    assert names[7:] == ["second", "my notes"]  # the user's layers are not moved
    viewer.add_points(name="added later")  # on top, as napari adds layers

    widget.image_layer.value = viewer.layers["second"]
    click(qtbot, widget.predict_button)
    wait_idle(qtbot, widget)
    names = [layer.name for layer in viewer.layers]
    second = names.index("second")
    results = {"a_k(x)", "p_k(x)", "segmentation", "H(x)", "annotate next"}
    assert set(names[second + 1 : second + 6]) == results
    assert names[second + 6 :] == ["my notes", "added later"]
    for name in ("p_k(x)", "segmentation"):
        assert viewer.layers[name].metadata["source"] == "second"
        assert viewer.layers[name].visible
    # the first image's activations are hidden, not shown over the second image's results
    assert activations.metadata["source"] == "first" and not activations.visible


def test_loading_the_bundled_model_says_how_it_changes_the_weight_map(
    make_napari_viewer, qtbot, infos
) -> None:
    from napari_unet.pretrained import load_pretrained

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    recorded = load_pretrained("nuclei").record.weight_map  # what the model was trained with
    assert widget.model_source.value == "Pretrained: nuclei"
    assert (widget.w0.value, widget.sigma.value) == (10.0, 5.0)
    click(qtbot, widget.make_model_button)
    assert widget.model is not None
    w0, sigma = widget.w0.value, widget.sigma.value
    assert (w0, sigma) != (10.0, 5.0)
    assert (w0, sigma) == (recorded.w0, recorded.sigma)
    notices = [m for m in infos() if "weight map" in m]
    assert notices == [
        f"U-Net: weight map w(x) set to the model's own recipe: w0 10 -> {w0:g}, "
        f"sigma 5 -> {sigma:g}"
    ]
    click(qtbot, widget.make_model_button)  # nothing changes the second time: no notice
    assert len([m for m in infos() if "weight map" in m]) == 1


def test_annotated_share_has_two_significant_digits(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    labels = np.zeros((512, 512), np.uint8)
    labels[:1, :200], labels[1, :197] = 1, 2  # 397 of 262,144 pixels: 0.1514 %
    viewer.add_image(np.zeros((512, 512), np.float32), name="image")
    viewer.add_labels(labels, name="strokes")
    widget.image_layer.value = viewer.layers["image"]
    widget.labels_layer.value = viewer.layers["strokes"]
    assert widget.data_info.value.endswith("397 annotated pixels (0.15 %)")

"""Looking inside in a real viewer: the pixel inspector follows the real mouse, a real
click pins a pixel and draws its receptive field, the gradient map, H(x) and the
"annotate next" hint, and the channel gallery whose cells bring a channel up. Every number
is checked against an independent computation (torch.nn.functional, eq. 1 and 2 by hand)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from .conftest import bundled_nuclei, snapshot

camera = pytest.importorskip("napari_unet.widgets.view").camera

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CROP = (slice(40, 168), slice(200, 328))  # 128 x 128 of the sample, with touching nuclei


def click(qtbot, button) -> None:
    from qtpy.QtCore import Qt

    assert button.enabled, f"{button.text!r} is greyed out"
    qtbot.mouseClick(button.native, Qt.LeftButton)


def wait_done(qtbot, widget, timeout: float = 120) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


def canvas(viewer):
    return viewer.window._qt_viewer.canvas.native


def look_at(qtbot, viewer, pixel: tuple[int, int]) -> None:
    """Put ``pixel`` at the canvas centre, zoomed in, and move the real mouse there."""
    from qtpy.QtCore import QPoint

    camera(viewer).center = (float(pixel[0]), float(pixel[1]))
    camera(viewer).zoom = 6.0
    native = canvas(viewer)
    centre = QPoint(native.width() // 2, native.height() // 2)
    qtbot.mouseMove(native, centre + QPoint(3, 3))
    qtbot.mouseMove(native, centre)
    qtbot.wait(50)


def press_at_centre(qtbot, viewer) -> None:
    from qtpy.QtCore import QPoint, Qt

    native = canvas(viewer)
    centre = QPoint(native.width() // 2, native.height() // 2)
    qtbot.mouseClick(native, Qt.LeftButton, pos=centre)
    qtbot.wait(50)


def pixel_under_centre(viewer, layer) -> tuple[int, int]:
    """The pixel the canvas centre shows, as napari maps it (the test's own reading)."""
    return tuple(int(round(v)) for v in layer.world_to_data(camera(viewer).center)[-2:])


def border_term_by_hand(cells: np.ndarray, pixel, w0: float, sigma: float) -> float:
    """w0 exp(-(d1 + d2)^2 / 2 sigma^2) at one background pixel, d1 <= d2 the distances
    to the nearest pixel of the two nearest cells (paper, eq. 2)."""
    rows, cols = np.indices(cells.shape)
    dist = np.hypot(rows - pixel[0], cols - pixel[1])
    d = sorted(dist[cells == i].min() for i in np.unique(cells) if i)
    return w0 * math.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2))


@pytest.fixture
def predicted(make_napari_viewer, qtbot):
    """The bundled model predicted on a crop of the sample with its instance labels."""
    data = {name: array[CROP] for name, array in bundled_nuclei().items()}
    viewer = make_napari_viewer(show=True)  # the canvas gets mouse events when shown
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(data["image"], name="crop")
    viewer.add_labels(data["instances"], name="cells")
    widget.image_layer.value = viewer.layers["crop"]
    widget.labels_layer.value = viewer.layers["cells"]
    click(qtbot, widget.make_model_button)  # the bundled model (the default source)
    click(qtbot, widget.predict_button)
    wait_done(qtbot, widget)
    viewer.layers.selection.active = viewer.layers["crop"]  # pan/zoom mode
    return viewer, widget, data


def test_hovering_shows_the_numbers_of_the_pixel_under_the_cursor(predicted, qtbot) -> None:
    from napari_unet import predict_tiled

    viewer, widget, data = predicted
    model = widget.model
    cells = data["instances"]
    # a background pixel in a gap between two nuclei: the border term is large there
    w0, sigma = model.record.weight_map.w0, model.record.weight_map.sigma
    dist = np.where(cells == 0)
    candidates = [(r, c) for r, c in zip(*dist, strict=True) if 20 < r < 108 and 20 < c < 108][
        ::37
    ]
    target = max(candidates, key=lambda px: border_term_by_hand(cells, px, w0, sigma))
    look_at(qtbot, viewer, target)
    pixel = pixel_under_centre(viewer, viewer.layers["crop"])
    qtbot.waitUntil(lambda: f"(row {pixel[0]}, column {pixel[1]})" in widget.pixel_text.text())
    text = widget.pixel_text.text()

    a = predict_tiled(model, data["image"]).logits[:, pixel[0], pixel[1]].astype(np.float64)
    p = F.softmax(torch.from_numpy(a), dim=0).numpy()
    for k in range(2):
        assert f"a_{k + 1} = {a[k]:.4g}" in text
        assert f"p_{k + 1} = exp({a[k]:.4g}) / {np.exp(a).sum():.5g} = {p[k]:.4f}" in text
    assert "l(x) = 1 (background)" in text  # instances: background is class 1
    border = border_term_by_hand(cells, pixel, w0, sigma)
    w = float(viewer.layers["w(x)"].data[pixel])
    match = re.search(r"= ([-\d.e+]+) \+ ([-\d.e+]+) = ([-\d.e+]+)\n", text)
    assert match, text
    w_c, shown_border, shown_w = (float(v) for v in match.groups())
    assert shown_border == pytest.approx(border, rel=1e-3)
    assert shown_w == pytest.approx(w, rel=1e-3) and w_c + shown_border == pytest.approx(w, 1e-3)
    loss = -w * math.log(p[0])
    assert f"= {loss:.4g}" in text
    assert float(viewer.layers["loss(x)"].data[pixel]) == pytest.approx(loss, rel=1e-3)

    # following the cursor can be switched off
    widget.follow_cursor.value = False
    look_at(qtbot, viewer, (30, 30))
    assert widget.pixel_text.text() == text


def test_a_click_pins_the_pixel_and_draws_its_receptive_field(predicted, qtbot) -> None:
    from napari_unet.unet.receptive_field import receptive_field

    viewer, widget, data = predicted
    look_at(qtbot, viewer, (64, 70))
    press_at_centre(qtbot, viewer)
    pixel = pixel_under_centre(viewer, viewer.layers["crop"])
    assert widget.pixel_section.pinned == ("crop", (), pixel)
    field = receptive_field(widget.model, pixel)
    rect, mark = viewer.layers["receptive field"].data
    (r0, r1), (c0, c1) = field.rows, field.cols
    np.testing.assert_allclose(rect.min(axis=0), (r0 - 0.5, c0 - 0.5))
    np.testing.assert_allclose(rect.max(axis=0), (r1 - 0.5, c1 - 0.5))
    np.testing.assert_allclose(mark.min(axis=0), np.subtract(pixel, 0.5))  # x itself
    np.testing.assert_allclose(mark.max(axis=0), np.add(pixel, 0.5))
    assert f"({r1 - r0} x {c1 - c0} input pixels)" in widget.field_info.value

    # the gradient map over that field: |d a_k(x) / d input|, k the predicted class
    click(qtbot, widget.gradient_button)
    wait_done(qtbot, widget)
    grad = viewer.layers["|da_k(x)/dinput|"]
    assert grad.data.shape == field.shape
    np.testing.assert_allclose(grad.translate, (r0, c0))
    assert grad.data.max() > 0 and np.isfinite(grad.data).all()
    assert grad.visible
    # the pixel itself and its neighbours drive the decision more than the field's edge
    centre = grad.data[
        pixel[0] - r0 - 2 : pixel[0] - r0 + 3, pixel[1] - c0 - 2 : pixel[1] - c0 + 3
    ]
    assert centre.mean() > grad.data[:3].mean()
    look_at(qtbot, viewer, (30, 90))  # another pixel: the old gradient map is hidden
    press_at_centre(qtbot, viewer)
    assert widget.pixel_section.pinned[2] != pixel and not grad.visible


def test_another_model_or_a_removed_a_k_layer_resets_the_inspector(predicted, qtbot) -> None:
    viewer, widget, _ = predicted
    look_at(qtbot, viewer, (64, 70))
    qtbot.waitUntil(lambda: "in Omega" in widget.pixel_text.text())
    click(qtbot, widget.make_model_button)  # a fresh copy of the bundled model
    assert "another model: Predict again" in widget.pixel_text.text()
    look_at(qtbot, viewer, (40, 50))
    assert "in Omega" not in widget.pixel_text.text()  # the old a_k(x) is not shown
    click(qtbot, widget.predict_button)
    wait_done(qtbot, widget)
    look_at(qtbot, viewer, (64, 70))
    qtbot.waitUntil(lambda: "in Omega" in widget.pixel_text.text())
    viewer.layers.remove(viewer.layers["a_k(x)"])
    assert "a_k(x) layer was removed" in widget.pixel_text.text()


def test_a_click_while_painting_does_not_pin(predicted, qtbot) -> None:
    viewer, widget, _ = predicted
    labels = viewer.layers["cells"]
    viewer.layers.selection.active = labels
    labels.mode = "paint"
    labels.selected_label = 0  # painting 0 changes nothing we check
    look_at(qtbot, viewer, (64, 70))
    press_at_centre(qtbot, viewer)
    assert widget.pixel_section.pinned is None
    assert "receptive field" not in [layer.name for layer in viewer.layers]


def test_entropy_and_the_hint_follow_p(predicted, qtbot) -> None:
    viewer, widget, _ = predicted
    p = viewer.layers["p_k(x)"].data.astype(np.float64)
    expected = -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=0) / math.log(2)
    h = viewer.layers["H(x)"].data
    np.testing.assert_allclose(h, expected, atol=1e-5)
    hint = viewer.layers["annotate next"]
    assert hint.visible
    corners = hint.data[0]
    y0, x0 = (int(v + 0.5) for v in corners.min(axis=0))
    y1, x1 = (int(v + 0.5) for v in corners.max(axis=0))
    side = y1 - y0
    assert side == x1 - x0 >= 16
    windows = np.lib.stride_tricks.sliding_window_view(h.astype(np.float64), (side, side))
    assert h[y0:y1, x0:x1].mean() == pytest.approx(windows.mean(axis=(-1, -2)).max(), abs=1e-6)

    widget.annotate_hint.value = False
    assert not hint.visible


def test_the_gallery_shows_every_channel_and_a_click_brings_one_up(predicted, qtbot) -> None:
    from napari_unet.unet.activations import capture_activations

    viewer, widget, data = predicted
    widget.level.value = "encoder.1"
    click(qtbot, widget.gallery_button)
    wait_done(qtbot, widget)
    acts = viewer.layers["activations: encoder.1"].data
    channels = acts.shape[0]
    ref = capture_activations(widget.model, data["image"], ["encoder.1"])["encoder.1"]
    np.testing.assert_allclose(acts, ref.channels, atol=1e-4)
    gallery = viewer.layers["gallery: encoder.1"]
    mosaic = gallery.metadata["mosaic"]
    assert mosaic.channels == channels
    table = widget.channel_table
    assert table.isVisible() and table.rowCount() == channels
    headers = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert headers == ["channel", "mean", "mean on background", "mean on nucleus"]
    for row in (0, channels - 1):
        c = widget.inspect_section.channel_of_row(row)
        mean = float(table.item(row, 1).data(0))
        assert mean == pytest.approx(float(acts[c].mean()), rel=2e-3, abs=1e-4)
    numbers = viewer.layers["channel numbers"]
    assert list(numbers.features["channel"]) == list(range(channels))

    # a real click on the middle of cell 5 shows channel 5 over the image
    oy, ox = mosaic.origin(5)
    middle = (oy + mosaic.cell[0] / 2, ox + mosaic.cell[1] / 2)
    world = gallery.data_to_world(middle)
    camera(viewer).center = tuple(world[-2:])
    camera(viewer).zoom = 4.0
    press_at_centre(qtbot, viewer)
    axis = viewer.dims.ndim - viewer.layers["activations: encoder.1"].ndim
    assert viewer.dims.current_step[axis] == 5
    # and a row of the table brings its channel up
    table.cellClicked.emit(2, 0)
    assert viewer.dims.current_step[axis] == widget.inspect_section.channel_of_row(2)


def test_a_gradient_without_a_pinned_pixel_is_refused(predicted, qtbot, errors) -> None:
    viewer, widget, _ = predicted
    before = snapshot(viewer)
    click(qtbot, widget.gradient_button)
    assert any("click a pixel of the predicted image first" in m for m in errors())
    after = snapshot(viewer)
    assert [(n, t) for n, t, _ in after] == [(n, t) for n, t, _ in before]


def test_a_stack_is_inspected_plane_by_plane(make_napari_viewer, qtbot) -> None:
    """In a Z-stack the inspector names the plane, reads that plane's a_k(x), says when a
    plane has no prediction yet, and the rectangles lie on the plane in view."""
    from napari_unet import predict_tiled

    image = bundled_nuclei()["image"][CROP]
    stack = np.stack([image, image[::-1], image[:, ::-1]])
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(stack, name="stack")
    widget.image_layer.value = viewer.layers["stack"]
    click(qtbot, widget.make_model_button)
    viewer.dims.set_current_step(0, 1)
    click(qtbot, widget.predict_button)  # the plane in view only: z = 1
    wait_done(qtbot, widget)
    viewer.layers.selection.active = viewer.layers["stack"]
    hint = viewer.layers["annotate next"].data[0]
    assert (hint[:, 0] == 1).all()  # on plane z = 1

    look_at(qtbot, viewer, (50, 60))
    pixel = pixel_under_centre(viewer, viewer.layers["stack"])
    qtbot.waitUntil(lambda: "z = 1" in widget.pixel_text.text())
    a = predict_tiled(widget.model, stack[1]).logits[:, pixel[0], pixel[1]]
    assert f"a_1 = {a[0]:.4g}, a_2 = {a[1]:.4g}" in widget.pixel_text.text()
    press_at_centre(qtbot, viewer)
    rect = viewer.layers["receptive field"].data[0]
    assert rect.shape == (4, 3) and (rect[:, 0] == 1).all()

    # the gallery and its channel numbers lie on the plane in view
    widget.level.value = "encoder.0"
    click(qtbot, widget.gallery_button)
    wait_done(qtbot, widget)
    gallery = viewer.layers["gallery: encoder.0"]
    numbers = viewer.layers["channel numbers"]
    assert gallery.data_to_world((0, 0, 0))[0] == 1
    assert numbers.data_to_world(numbers.data[0])[0] == 1

    viewer.dims.set_current_step(viewer.dims.ndim - 3, 2)  # z = 2: not predicted yet
    look_at(qtbot, viewer, (40, 40))
    qtbot.waitUntil(lambda: "has no prediction yet" in widget.pixel_text.text())

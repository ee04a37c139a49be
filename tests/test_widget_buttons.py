"""The U-Net widget driven as a user drives it: mouse clicks on its buttons, in a real viewer.

On the nuclei sample bundled with the package (no ../shared needed): Train, Cancel and
Predict are pressed with ``qtbot.mouseClick`` on the Qt buttons, the test waits on what
the user would wait on (the status line, the buttons coming back), and checks what the
user sees: the status text, the layers written, and their values against an independent
computation from the current model (``torch.nn.functional``, the paper's formulas).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from .conftest import bundled_nuclei

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

RESULTS = ("a_k(x)", "p_k(x)", "segmentation", "loss(x)")
CROP = (slice(40, 168), slice(200, 328))  # 128 x 128 of the sample, with 5 nuclei


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def click(qtbot, button) -> None:
    from qtpy.QtCore import Qt

    assert button.enabled, f"{button.text!r} is greyed out"
    qtbot.mouseClick(button.native, Qt.LeftButton)


def wait_done(qtbot, widget, timeout: float = 120) -> None:
    """Until the job has ended as the user sees it: Train is clickable again."""
    qtbot.waitUntil(
        lambda: widget.train_button.native.isEnabled() and not widget.busy,
        timeout=int(timeout * 1000),
    )


def quick(widget, steps: int) -> None:
    widget.model_source.value = "New U-Net"  # a tiny one: the default is the bundled model
    widget.steps.value = steps
    widget.tile_size.value = 32
    widget.batch_size.value = 1
    widget.augment.value = False


def expected_from_logits(a: np.ndarray, target: np.ndarray, w: np.ndarray):
    """p_k(x), segmentation and loss(x) from a_k(x) by the paper's formulas (section 3):
    p = softmax over k, segmentation = argmax + 1, loss = -w(x) log p_l(x) where annotated
    (``target`` >= 0), 0 elsewhere."""
    logits = torch.from_numpy(a.astype(np.float64))
    p = F.softmax(logits, dim=0).numpy()
    seg = a.argmax(axis=0) + 1
    log_p = F.log_softmax(logits, dim=0).numpy()
    annotated = target >= 0
    loss = np.zeros(target.shape)
    rows, cols = np.nonzero(annotated)
    loss[rows, cols] = -w[rows, cols] * log_p[target[rows, cols], rows, cols]
    return p, seg, loss


def test_train_cancel_predict_by_mouse_on_the_bundled_sample(make_napari_viewer, qtbot) -> None:
    from napari_unet import predict_tiled

    viewer = make_napari_viewer()
    viewer.open_sample("napari-unet-explorer", "nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    assert widget.image_layer.value is viewer.layers["nuclei"]
    assert widget.labels_layer.value is viewer.layers["scribbles"]
    quick(widget, steps=100_000)
    user = {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}

    click(qtbot, widget.train_button)
    qtbot.waitUntil(lambda: len(widget.loss_plot.steps) >= 2, timeout=60_000)
    status = re.compile(r"step (\d+)/100000: loss (\d+\.\d+)")
    qtbot.waitUntil(lambda: status.match(widget.status.value) is not None, timeout=30_000)
    # while training: Cancel is the only way on, Train and Predict are greyed out
    assert widget.cancel_button.native.isEnabled()
    assert not widget.train_button.native.isEnabled()
    assert not widget.predict_button.native.isEnabled()
    model = widget.model

    click(qtbot, widget.cancel_button)
    wait_done(qtbot, widget, timeout=10)
    cancelled = r"training cancelled after (\d+) step\(s\); model kept"
    done = re.fullmatch(cancelled, widget.status.value)
    assert done, widget.status.value
    steps = int(done.group(1))
    assert 2 <= steps < 100_000
    assert not widget.cancel_button.native.isEnabled()
    # the model is kept: the same object, with the steps it made, ready to predict
    assert widget.model is model and not model.training
    assert model.record.training[-1].steps_done == steps
    weights = [v for v in model.state_dict().values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)

    click(qtbot, widget.predict_button)
    wait_done(qtbot, widget)
    assert re.fullmatch(r"predicted 1 plane\(s\) in \d+\.\d s", widget.status.value), (
        widget.status.value
    )
    names = [layer.name for layer in viewer.layers]
    # results right above their image, below the user's layers
    assert names[0] == "nuclei" and names[-2:] == ["scribbles", "nuclei instances"]
    assert set(RESULTS) | {"w(x)"} <= set(names)
    image = user["nuclei"]
    a = viewer.layers["a_k(x)"].data
    assert a.shape == (2, 512, 512)
    ref = predict_tiled(model, image)  # the kept model, predicted here independently
    np.testing.assert_allclose(a, ref.logits, atol=1e-4)
    scribbles = user["scribbles"].astype(np.int64) - 1  # 1 = background -> class 0
    p, seg, loss = expected_from_logits(a, scribbles, viewer.layers["w(x)"].data)
    np.testing.assert_allclose(viewer.layers["p_k(x)"].data, p, atol=1e-5)
    np.testing.assert_array_equal(viewer.layers["segmentation"].data, seg)
    np.testing.assert_allclose(viewer.layers["loss(x)"].data, loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(viewer.layers["w(x)"].data, (scribbles >= 0).astype(np.float32))
    for name, data in user.items():  # the sample's own layers are untouched
        np.testing.assert_array_equal(viewer.layers[name].data, data)


def test_predicting_again_after_a_weight_change_replaces_every_result(
    make_napari_viewer, qtbot
) -> None:
    """Train (instances: a non-constant w(x) with the border term and w_c), predict, change
    the head's weights, predict again: a_k(x), p_k(x), the segmentation and loss(x) all
    change, in the same layers, to the values of the changed model."""
    from napari_unet import predict_tiled, weight_map

    data = {name: array[CROP] for name, array in bundled_nuclei().items()}
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(data["image"], name="crop")
    viewer.add_labels(data["instances"], name="nuclei")
    widget.image_layer.value = viewer.layers["crop"]
    widget.labels_layer.value = viewer.layers["nuclei"]
    quick(widget, steps=2)
    widget.class_balance.value = True
    click(qtbot, widget.train_button)
    wait_done(qtbot, widget)
    assert widget.status.value.startswith("trained 2 steps"), widget.status.value

    target = (data["instances"] > 0).astype(np.int64)  # instances: 0 background, 1 cell
    w = weight_map(
        data["instances"], w0=widget.w0.value, sigma=widget.sigma.value, class_balance=True
    )
    assert np.unique(w).size > 100  # w(x) is far from constant here

    def check_results_of_the_current_model() -> dict[str, np.ndarray]:
        layers = {name: viewer.layers[name] for name in (*RESULTS, "w(x)")}
        a = layers["a_k(x)"].data
        ref = predict_tiled(widget.model, data["image"]).logits
        np.testing.assert_allclose(a, ref, atol=1e-4)
        np.testing.assert_allclose(layers["w(x)"].data, w, rtol=1e-5)
        p, seg, loss = expected_from_logits(a, target, w)
        np.testing.assert_allclose(layers["p_k(x)"].data, p, atol=1e-5)
        np.testing.assert_array_equal(layers["segmentation"].data, seg)
        np.testing.assert_allclose(layers["loss(x)"].data, loss, rtol=1e-4, atol=1e-5)
        return {name: np.array(layer.data, copy=True) for name, layer in layers.items()}

    click(qtbot, widget.predict_button)
    wait_done(qtbot, widget)
    first = check_results_of_the_current_model()
    layers = {layer.name: layer for layer in viewer.layers}
    events = {name: {"data": 0, "set_data": 0} for name in RESULTS}
    for name in RESULTS:
        for kind in ("data", "set_data"):
            getattr(layers[name].events, kind).connect(
                lambda _e, n=name, k=kind: events[n].__setitem__(k, events[n][k] + 1)
            )

    # a change that moves p_k(x), not only a_k(x): adding one constant to every class
    # would leave the softmax as it was
    with torch.no_grad():
        head = widget.model.head
        gen = torch.Generator().manual_seed(0)
        head.weight.add_(0.5 * torch.randn(head.weight.shape, generator=gen))
        head.bias[1] += 1.0
    click(qtbot, widget.predict_button)
    wait_done(qtbot, widget)
    assert widget.status.value.startswith("predicted 1 plane(s)"), widget.status.value

    # the same layer objects, updated in place, no layer added or removed
    assert [layer.name for layer in viewer.layers] == list(layers)
    for layer in viewer.layers:
        assert layer is layers[layer.name]
    second = check_results_of_the_current_model()
    for name in RESULTS:
        assert not np.allclose(second[name], first[name], atol=1e-3), name
    changed = np.count_nonzero(second["segmentation"] != first["segmentation"])
    assert changed > 100, changed
    np.testing.assert_array_equal(second["w(x)"], first["w(x)"])  # w(x) depends on labels only
    # the arrays are written in place (layer.data stays the same object, so napari's
    # ``data`` event does not fire); what is shown is re-read: every visible result layer
    # was re-sliced (``set_data``), hidden ones are when the user shows them
    for name in RESULTS:
        if layers[name].visible:
            assert events[name]["set_data"] >= 1, (name, events)
    assert layers["p_k(x)"].visible and layers["segmentation"].visible

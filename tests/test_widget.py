"""The U-Net dock widget in a real napari viewer (pytest-qt; pytest-xvfb gives a display).

The widget is created through the plugin manifest, trains on a crop of the bundled nuclei
sample (the real stardist image) through its thread worker, and writes layers that are
checked against values computed here independently (softmax, argmax, the per-pixel loss).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from .conftest import bundled_nuclei

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

CROP = (slice(40, 168), slice(200, 328))  # 128 x 128, with both scribble classes


@pytest.fixture(scope="module")
def nuclei() -> dict[str, np.ndarray]:
    """A crop of the bundled nuclei sample (the stardist image: no ../shared needed)."""
    return {name: data[CROP] for name, data in bundled_nuclei().items()}


def fast_settings(widget, steps: int = 3) -> None:
    """Small, quick training settings (2 shared CPU cores): a new tiny U-Net (the widget
    starts on the bundled model), a few steps on small tiles."""
    widget.model_source.value = "New U-Net"
    widget.steps.value = steps
    widget.tile_size.value = 32
    widget.batch_size.value = 1
    widget.augment.value = False


@pytest.fixture
def setup(make_napari_viewer, nuclei):
    """A viewer with the crop as 'crop' (scaled and shifted) + 'crop scribbles', and the
    widget docked through the manifest."""
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(nuclei["image"], name="crop", scale=(0.5, 0.5), translate=(3.0, -2.0))
    viewer.add_labels(
        nuclei["scribbles"], name="crop scribbles", scale=(0.5, 0.5), translate=(3.0, -2.0)
    )
    widget.image_layer.value = viewer.layers["crop"]
    widget.labels_layer.value = viewer.layers["crop scribbles"]
    fast_settings(widget)
    return viewer, widget


def wait_idle(qtbot, widget, timeout: float = 120) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


def softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def test_created_through_manifest_with_the_sample(make_napari_viewer) -> None:
    from napari_unet.widgets.unet_widget import UNetWidget

    viewer = make_napari_viewer()
    viewer.open_sample("napari-unet-explorer", "nuclei")
    assert [layer.name for layer in viewer.layers] == ["nuclei", "scribbles", "nuclei instances"]
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    assert isinstance(widget, UNetWidget)
    assert widget.image_layer.value is viewer.layers["nuclei"]
    assert widget.labels_layer.value is viewer.layers["scribbles"]
    # only images are offered as the image, only Labels as annotations
    assert [c.name for c in widget.image_layer.choices] == ["nuclei"]
    assert {c.name for c in widget.labels_layer.choices if c is not None} == {
        "scribbles",
        "nuclei instances",
    }
    assert "classes 1, 2" in widget.data_info.value
    widget.labels_layer.value = viewer.layers["nuclei instances"]
    assert widget.data_info.value.startswith("instances: 125 objects")


def test_train_then_predict_writes_the_layers(setup, qtbot, nuclei) -> None:
    viewer, widget = setup
    user = {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}
    widget.train()
    assert widget.busy
    wait_idle(qtbot, widget)
    assert widget.status.value.startswith("trained 3 steps"), widget.status.value
    assert widget.loss_plot.steps == [1, 2, 3]
    assert widget.model.record.training[-1].steps_done == 3
    assert widget.progress_bar.value == 3
    run = widget.model.record.training[-1]
    assert run.config["precision"] == widget.precision.value == "auto"

    # training wrote w(x) and a live refresh of p_k(x), the segmentation, H(x) and its
    # hint (right above their image: the user's layers above it stay on top)
    names = [layer.name for layer in viewer.layers]
    assert names[0] == "crop" and names[-1] == "crop scribbles"
    assert set(names[1:-1]) == {"w(x)", "p_k(x)", "segmentation", "H(x)", "annotate next"}
    w = viewer.layers["w(x)"].data
    annotated = nuclei["scribbles"] > 0
    assert w.shape == (128, 128) and w.dtype == np.float32
    np.testing.assert_array_equal(w, annotated.astype(np.float32))  # no class balance, no w0

    widget.predict()
    wait_idle(qtbot, widget)
    assert set(layer.name for layer in viewer.layers) == {
        "crop",
        "crop scribbles",
        "w(x)",
        "p_k(x)",
        "segmentation",
        "a_k(x)",
        "loss(x)",
        "H(x)",
        "annotate next",
    }
    a = viewer.layers["a_k(x)"].data.copy()
    p = viewer.layers["p_k(x)"].data
    seg = viewer.layers["segmentation"].data
    loss = viewer.layers["loss(x)"].data
    assert a.shape == p.shape == (2, 128, 128) and a.dtype == p.dtype == np.float32
    assert seg.shape == (128, 128) and seg.dtype == np.uint8
    assert loss.shape == (128, 128) and loss.dtype == np.float32
    np.testing.assert_allclose(p, softmax(a.astype(np.float64)), atol=1e-5)
    np.testing.assert_array_equal(seg, a.argmax(axis=0) + 1)
    target = nuclei["scribbles"].astype(int) - 1
    rows, cols = np.nonzero(annotated)
    expected = -np.log(softmax(a.astype(np.float64))[target[rows, cols], rows, cols])
    np.testing.assert_allclose(loss[rows, cols], expected, rtol=1e-4, atol=1e-5)
    assert np.all(loss[~annotated] == 0)
    # results overlay the image: its scale and translate, the class axis first
    assert tuple(viewer.layers["p_k(x)"].scale) == (1.0, 0.5, 0.5)
    assert tuple(viewer.layers["p_k(x)"].translate) == (0.0, 3.0, -2.0)
    assert tuple(viewer.layers["segmentation"].translate) == (3.0, -2.0)
    # the user's layers are untouched
    for name, data in user.items():
        np.testing.assert_array_equal(viewer.layers[name].data, data)

    # predicting again updates the same layers in place
    before = {layer.name: layer for layer in viewer.layers}
    widget.model.head.bias.data += 5.0  # change the model so the results must change
    widget.predict()
    wait_idle(qtbot, widget)
    assert len(viewer.layers) == len(before)
    for layer in viewer.layers:
        assert layer is before[layer.name]
    a2 = viewer.layers["a_k(x)"].data.copy()
    np.testing.assert_allclose(a2, a + 5.0, atol=1e-4)

    # test-time augmentation: a_k(x) becomes the mean over the 8 flips / quarter turns
    widget.tta.value = True
    widget.predict()
    wait_idle(qtbot, widget)
    from napari_unet import predict_tiled

    ref = predict_tiled(widget.model, nuclei["image"], test_time_augmentation=True)
    np.testing.assert_allclose(viewer.layers["a_k(x)"].data, ref.logits, atol=1e-4)
    assert not np.allclose(ref.logits, a2, atol=1e-3)


def test_precise_batch_norm_switch_recomputes_the_statistics(setup, qtbot, monkeypatch) -> None:
    viewer, widget = setup
    assert widget.precise_batch_norm.value is False  # off by default (docs/accuracy.md)
    widget.precise_batch_norm.value = True
    widget.train()
    wait_idle(qtbot, widget)
    assert widget.status.value.startswith("trained 3 steps"), widget.status.value
    run = widget.model.record.training[-1]
    assert run.config["recompute_batch_norm"] is True and run.batch_norm_recomputed
    counts = {
        int(m.num_batches_tracked) for m in widget.model.modules() if hasattr(m, "running_var")
    }
    assert counts == {32}  # reset, then 32 un-augmented tiles in batches of 1 (not 3 steps)
    assert "not recomputed" not in widget.status.value

    # a pass that fails keeps the trained model and says so in the status line
    def fail(*_args, **_kwargs):
        raise RuntimeError("no float64 on this device")

    monkeypatch.setattr("napari_unet.unet.training.recompute_batch_norm_statistics", fail)
    widget.train()
    wait_idle(qtbot, widget)
    assert widget.status.value.startswith("trained 3 steps"), widget.status.value
    assert "batch-norm statistics not recomputed" in widget.status.value
    assert widget.model.record.training[-1].batch_norm_recomputed == 0


def test_training_reports_twice_a_second_with_every_loss(setup, qtbot) -> None:
    """Every step's loss reaches the curve, in a few reports a second rather than one a
    step (each report repaints the window); torch runs one thread in the main thread."""
    import torch

    from napari_unet.widgets.workers import StepsDone

    viewer, widget = setup
    assert torch.get_num_threads() == 1  # the widget keeps the main thread's torch single
    widget.steps.value = 40
    reports: list = []
    on_event = widget.jobs.on_event

    def count(event) -> None:
        if isinstance(event, StepsDone):
            reports.append(event)
        on_event(event)

    widget.jobs.on_event = count
    t0 = time.perf_counter()
    widget.train()
    wait_idle(qtbot, widget)
    seconds = time.perf_counter() - t0
    assert widget.status.value.startswith("trained 40 steps"), widget.status.value
    assert [p.step for r in reports for p in r.steps] == list(range(1, 41))
    assert widget.loss_plot.steps == list(range(1, 41))
    assert 1 <= len(reports) <= seconds / 0.5 + 2, (len(reports), seconds)


def test_cancel_is_quick_and_the_event_loop_keeps_running(setup, qtbot) -> None:
    from qtpy.QtCore import QTimer

    viewer, widget = setup
    widget.steps.value = 100_000
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    widget.train()
    started = time.perf_counter()
    qtbot.waitUntil(lambda: len(widget.loss_plot.steps) >= 3, timeout=60_000)
    qtbot.wait(500)
    running = time.perf_counter() - started
    t0 = time.perf_counter()
    widget.cancel()
    wait_idle(qtbot, widget, timeout=5)
    stop_time = time.perf_counter() - t0
    timer.stop()
    assert stop_time < 5.0
    # the Qt event loop ran the timer all along: no freeze while training
    during = np.array([t for t in ticks if started <= t <= t0])
    assert len(during) >= 0.25 * running / 0.02, (len(during), running)
    assert np.diff(during).max() < 1.0
    # the model is usable and records the steps it made
    steps = widget.model.record.training[-1].steps_done
    assert 3 <= steps < 100_000
    assert not widget.model.training
    assert "cancelled" in widget.status.value
    assert widget.train_button.enabled and not widget.cancel_button.enabled
    widget.predict()
    wait_idle(qtbot, widget)
    assert viewer.layers["a_k(x)"].data.shape == (2, 128, 128)


def test_cancel_stops_a_long_prediction_between_tiles(setup, qtbot) -> None:
    """One big plane with test-time augmentation: many tiles, and Cancel stops them."""
    viewer, widget = setup
    big = np.tile(viewer.layers["crop"].data, (12, 12))  # 1536^2: 9 tiles x 8 views
    viewer.add_image(big, name="big")
    widget.image_layer.value = viewer.layers["big"]
    widget.labels_layer.value = None
    widget.model_source.value = "Pretrained: nuclei"
    widget.make_model()  # load it
    wait_idle(qtbot, widget)
    widget.tta.value = True
    names = {layer.name for layer in viewer.layers}
    widget.predict()
    assert widget.busy
    qtbot.wait(300)
    t0 = time.perf_counter()
    widget.cancel()
    wait_idle(qtbot, widget, timeout=10)
    assert time.perf_counter() - t0 < 5.0  # a whole TTA plane takes far longer here
    assert "cancelled" in widget.status.value
    assert {layer.name for layer in viewer.layers} == names  # nothing half-written


def test_instances_mode_weight_map_and_instances_layer(make_napari_viewer, qtbot, nuclei) -> None:
    from napari_unet.unet.weight_maps import weight_map

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(nuclei["image"], name="crop")
    viewer.add_labels(nuclei["instances"], name="cells")
    widget.labels_layer.value = viewer.layers["cells"]
    fast_settings(widget, steps=2)
    widget.train()
    wait_idle(qtbot, widget)
    assert widget.model.record.classes.label_mode == "instances"
    expected = weight_map(nuclei["instances"], w0=10.0, sigma=5.0, class_balance=False)
    np.testing.assert_allclose(viewer.layers["w(x)"].data, expected, rtol=1e-5)
    assert viewer.layers["w(x)"].data.max() > 1.0  # the border term between nuclei
    widget.predict()
    wait_idle(qtbot, widget)
    inst = viewer.layers["instances"].data
    assert inst.shape == (128, 128) and inst.dtype == np.uint32
    # every object lies inside the predicted cell class (value 2) of the segmentation
    seg = viewer.layers["segmentation"].data
    assert np.all(seg[inst > 0] == 2)


def test_stack_rgb_and_multichannel_prediction(make_napari_viewer, qtbot, nuclei) -> None:
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    img = nuclei["image"][:100, :100]
    stack = np.stack([img, img[::-1]])
    scribbles = np.zeros(stack.shape, np.uint8)
    scribbles[1] = nuclei["scribbles"][:100, :100][::-1]
    viewer.add_image(stack, name="stack")
    viewer.add_labels(scribbles, name="stack scribbles")
    widget.image_layer.value = viewer.layers["stack"]
    widget.labels_layer.value = viewer.layers["stack scribbles"]
    fast_settings(widget, steps=2)
    viewer.dims.set_current_step(0, 1)  # the live refresh predicts the plane in view
    widget.train()
    wait_idle(qtbot, widget)
    w = viewer.layers["w(x)"].data
    assert w.shape == (2, 100, 100) and not w[0].any() and w[1].any()

    # current plane: plane 1 is predicted, plane 0 left empty; then the whole stack
    assert viewer.dims.ndim == 4  # (k, z, y, x): the class axis of p_k(x) came first
    assert viewer.dims.current_step[1] == 1
    widget.predict()
    wait_idle(qtbot, widget)
    p_layer = viewer.layers["p_k(x)"]
    assert p_layer.data.shape == (2, 2, 100, 100)
    assert not p_layer.data[:, 0].any()
    np.testing.assert_allclose(p_layer.data[:, 1].sum(axis=0), 1.0, atol=1e-5)
    widget.scope.value = "whole stack"
    widget.predict()
    wait_idle(qtbot, widget)
    assert viewer.layers["p_k(x)"] is p_layer
    np.testing.assert_allclose(p_layer.data.sum(axis=0), 1.0, atol=1e-5)

    # RGB: a new 3-channel model from the RGB layer; predicted without training
    rgb = np.stack([img, img // 2, img[::-1]], axis=-1).astype(np.uint16)
    viewer.add_image(rgb, name="rgb", rgb=True)
    widget.image_layer.value = viewer.layers["rgb"]
    assert widget.labels_layer.value is None  # no annotation layer fits a 100x100 image
    widget.make_model()
    assert widget.model.in_channels == 3
    widget.predict()
    wait_idle(qtbot, widget)
    assert viewer.layers["a_k(x)"].data.shape == (2, 100, 100)
    assert viewer.layers["a_k(x)"].metadata["source"] == "rgb"

    # multi-channel (C, H, W) with the channel axis picked by the user
    viewer.add_image(np.moveaxis(rgb, -1, 0), name="channels")
    widget.image_layer.value = viewer.layers["channels"]
    widget.channel_axis.value = 0
    widget.predict()
    wait_idle(qtbot, widget)
    assert viewer.layers["segmentation"].data.shape == (100, 100)
    assert viewer.layers["segmentation"].metadata["source"] == "channels"


def test_activation_inspector_overlays_the_input(setup, qtbot, nuclei) -> None:
    from napari_unet.unet.activations import capture_activations
    from napari_unet.unet.data import normalize

    viewer, widget = setup
    widget.make_model()
    assert "encoder.1" in widget.level.choices and "bottleneck" in widget.level.choices
    widget.level.value = "encoder.1"
    widget.show_activations()
    wait_idle(qtbot, widget)
    layer = viewer.layers["activations: encoder.1"]
    expected = capture_activations(
        widget.model,
        normalize(nuclei["image"][None].astype(np.float32)),
        ["encoder.1"],
        channel_axis=0,
        normalize_input=False,
    )["encoder.1"]
    np.testing.assert_allclose(layer.data, expected.channels, rtol=1e-4, atol=1e-5)
    assert tuple(layer.scale) == (1.0, 0.5 * 2, 0.5 * 2)
    ty, tx = expected.translate
    np.testing.assert_allclose(layer.translate, (0.0, 3.0 + 0.5 * ty, -2.0 + 0.5 * tx))
    # running it again updates the layer in place
    n = len(viewer.layers)
    widget.show_activations()
    wait_idle(qtbot, widget)
    assert len(viewer.layers) == n and viewer.layers["activations: encoder.1"] is layer


def test_save_and_load_model(setup, qtbot, tmp_path) -> None:
    viewer, widget = setup
    widget.make_model()
    path = widget.save_model(tmp_path / "mine")
    assert path == tmp_path / "mine.pt" and path.is_file()
    saved = widget.model
    widget.model_source.value = "From file..."
    widget.model_file.value = path
    widget.make_model()
    assert widget.model is not saved
    for (k, v), (k2, v2) in zip(
        saved.state_dict().items(), widget.model.state_dict().items(), strict=True
    ):
        assert k == k2 and np.array_equal(v.numpy(), v2.numpy())
    assert "file mine.pt" in widget.model_info.value or "new tiny" in widget.model_info.value


def test_more_classes_than_the_model_replace_its_head(setup, qtbot, nuclei) -> None:
    from napari.utils.notifications import notification_manager

    viewer, widget = setup
    widget.make_model()
    assert widget.model.n_classes == 2
    three = nuclei["scribbles"].copy()
    three[:4, :40] = 3  # a third class
    viewer.add_labels(three, name="three classes")
    widget.labels_layer.value = viewer.layers["three classes"]
    start = len(notification_manager.records)
    widget.train()
    wait_idle(qtbot, widget)
    assert widget.model.n_classes == 3
    messages = [str(n.message) for n in notification_manager.records[start:]]
    assert any("new, untrained output layer" in m for m in messages), messages
    assert viewer.layers["p_k(x)"].data.shape == (3, 128, 128)


def test_bundled_model_predicts_and_fine_tunes(setup, qtbot) -> None:
    from napari_unet.pretrained import list_pretrained

    if not list_pretrained():
        pytest.skip("no bundled pretrained model in this checkout")
    viewer, widget = setup
    name = list_pretrained()[0]
    widget.model_source.value = f"Pretrained: {name}"
    widget.make_model()
    assert widget.model.record.source == f"bundled:{name}"
    history = len(widget.model.record.training)
    widget.predict()
    wait_idle(qtbot, widget)
    if widget.model.record.classes.label_mode == "instances":
        assert viewer.layers["instances"].data.shape == (128, 128)
    widget.train()  # fine-tune on the scribbles
    wait_idle(qtbot, widget)
    assert len(widget.model.record.training) == history + 1
    assert widget.model.record.classes.label_mode == "scribbles"


def test_the_bundled_nuclei_model_is_the_default_source(make_napari_viewer, monkeypatch) -> None:
    import napari_unet.pretrained as pretrained
    from napari_unet.widgets.unet_widget import UNetWidget

    if "nuclei" not in pretrained.list_pretrained():
        pytest.skip("no bundled nuclei model in this checkout")
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    assert widget.model_source.value == "Pretrained: nuclei"
    assert widget.make_model_button.text == "Load pretrained"
    assert widget.model is None  # loaded when the user trains (fine-tunes) or loads it
    # before it is loaded, the description says what Train starts from and its training data
    trained_on = pretrained.load_pretrained("nuclei").record.trained_on
    assert widget.model_info.value.startswith("Not loaded yet: Train fine-tunes")
    assert trained_on in widget.model_info.value
    assert "nuclei" in widget.model_info.toolTip()  # the model card

    # nothing bundled: a new U-Net is the default, and no pretrained model is offered
    monkeypatch.setattr(pretrained, "list_pretrained", lambda: [])
    bare = UNetWidget(viewer)
    assert bare.model_source.value == "New U-Net"
    assert not any(c.startswith("Pretrained") for c in bare.model_source.choices)
    assert bare.model_info.value.startswith("No model yet")


def test_default_path_fine_tunes_the_bundled_model_on_scribbles(
    make_napari_viewer, qtbot, nuclei
) -> None:
    """Scribbles 1 = background, 2 = nucleus fine-tune the bundled background/nucleus model
    as it is: same head (slightly moved), its weight-map recipe, still a nucleus model."""
    from napari.utils.notifications import notification_manager

    from napari_unet.pretrained import list_pretrained, load_pretrained

    if "nuclei" not in list_pretrained():
        pytest.skip("no bundled nuclei model in this checkout")
    bundled = load_pretrained("nuclei")
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(nuclei["image"], name="crop")
    viewer.add_labels(nuclei["scribbles"], name="crop scribbles")
    assert widget.labels_layer.value is viewer.layers["crop scribbles"]
    widget.steps.value = 3
    widget.tile_size.value = 32
    widget.batch_size.value = 1
    widget.augment.value = False
    start = len(notification_manager.records)
    widget.train()  # no source chosen, no model created: the default path
    wait_idle(qtbot, widget)
    model = widget.model
    assert model.record.source == "bundled:nuclei"
    assert model.record.training[-1].steps_done == 3
    assert len(model.record.training) == len(bundled.record.training) + 1
    assert model.n_classes == 2
    assert model.record.classes.names == ["background", "nucleus"]
    messages = [str(n.message) for n in notification_manager.records[start:]]
    assert not any("output layer" in m for m in messages), messages
    # the head was fine-tuned, not replaced: 3 Adam steps of lr <= 1e-3 move each weight by
    # at most ~3e-3, a new head would be freshly drawn (std sqrt(2 / 16) = 0.35)
    old, new = (m.head.weight.detach().cpu().numpy() for m in (bundled, model))
    assert new.shape == old.shape == (2, 16, 1, 1)
    assert 0 < np.abs(new - old).max() < 0.01
    # the bundled model's weight-map recipe is adopted for fine-tuning
    recipe = bundled.record.weight_map
    assert (widget.w0.value, widget.sigma.value) == (recipe.w0, recipe.sigma)
    # the description says what the model was originally trained on
    assert bundled.record.trained_on in widget.model_info.value
    assert "source: bundled:nuclei" in widget.model_info.value

    # still a nucleus model: class 2 overlaps the true nuclei of the crop, and the
    # prediction gives instances although the last run was on scribbles
    widget.predict()
    wait_idle(qtbot, widget)
    seg = viewer.layers["segmentation"].data
    truth = nuclei["instances"] > 0
    iou = np.count_nonzero((seg == 2) & truth) / np.count_nonzero((seg == 2) | truth)
    assert iou > 0.5, iou
    inst = viewer.layers["instances"].data
    assert np.all(seg[inst > 0] == 2)
    assert len(np.unique(inst[inst > 0])) >= len(np.unique(nuclei["instances"][truth])) // 2


def test_model_rules_of_the_widget() -> None:
    """The pure rules behind the model section (no Qt needed); the rules about models and
    labels are the workflow's (tests/test_workflow_*.py)."""
    from napari_unet.widgets.options import NEW_MODEL, default_source

    assert default_source([]) == NEW_MODEL
    assert default_source(["cells", "nuclei"]) == "Pretrained: nuclei"
    assert default_source(["cells"]) == "Pretrained: cells"


def test_gui_command_gives_the_canvas_room_beside_the_dock(
    make_napari_viewer, qtbot, monkeypatch
) -> None:
    from napari.settings import get_settings

    from napari_unet.widgets.window_fit import MIN_CANVAS_WIDTH, MIN_WINDOW, fit_window

    viewer = make_napari_viewer()
    window = viewer.window._qt_window
    viewer.add_image(np.zeros((512, 512), np.float32))
    camera = viewer.scene.camera
    camera.zoom = 37.0
    monkeypatch.setattr(get_settings().application, "window_size", None)  # a first run
    window.resize(600, 400)
    room = (window.screen() or window.windowHandle().screen()).availableGeometry()
    fit_window(viewer)
    frame = window.frameGeometry()
    expected = (
        max(600, min(MIN_WINDOW[0], room.width() - (frame.width() - window.width()))),
        max(400, min(MIN_WINDOW[1], room.height() - (frame.height() - window.height()))),
    )
    assert (window.width(), window.height()) == expected != (600, 400)
    assert room.contains(window.frameGeometry())  # the whole window stays on the screen
    qtbot.waitUntil(lambda: camera.zoom != 37.0, timeout=5000)  # images fitted
    # a window larger than that is kept, and so is a size napari restored from its settings
    window.resize(MIN_WINDOW[0] + 100, MIN_WINDOW[1] + 100)
    fit_window(viewer)
    assert (window.width(), window.height()) == (MIN_WINDOW[0] + 100, MIN_WINDOW[1] + 100)
    # a saved size grows only by what the canvas lacks
    monkeypatch.setattr(get_settings().application, "window_size", (600, 400))
    window.resize(600, 400)
    qtbot.wait(50)
    lacking = max(0, MIN_CANVAS_WIDTH - window.centralWidget().width())
    fit_window(viewer)
    assert (window.width(), window.height()) == (min(600 + lacking, expected[0]), 400)

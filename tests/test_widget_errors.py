"""Bad input in the U-Net widget: a clear napari notification, and nothing changes.

Also: a failure inside the worker is reported and leaves the widget usable, and the
widget never writes into a layer it does not own.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import assert_unchanged, bundled_nuclei, snapshot

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


@pytest.fixture(scope="module")
def crop() -> dict[str, np.ndarray]:
    """A crop of the bundled nuclei sample (no ../shared needed)."""
    data = bundled_nuclei()
    sl = (slice(40, 168), slice(200, 328))
    return {"image": data["image"][sl], "scribbles": data["scribbles"][sl]}


@pytest.fixture
def setup(make_napari_viewer, crop):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(crop["image"], name="crop")
    viewer.add_labels(crop["scribbles"], name="crop scribbles")
    widget.image_layer.value = viewer.layers["crop"]
    widget.labels_layer.value = viewer.layers["crop scribbles"]
    widget.model_source.value = "New U-Net"  # a tiny one (the default is the bundled model)
    widget.steps.value = 2
    widget.tile_size.value = 32
    widget.batch_size.value = 1
    widget.augment.value = False
    return viewer, widget


def wait_idle(qtbot, widget, timeout: float = 120) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros((128, 128), np.uint8), "no annotated pixels"),
        (np.pad(np.ones((10, 10), np.uint8), ((0, 118), (0, 118))), "only one class"),
        (np.ones((64, 64), np.uint8), "must match"),
    ],
    ids=["no annotations", "single class", "shape mismatch"],
)
def test_bad_annotations_are_refused(setup, errors, labels, message) -> None:
    viewer, widget = setup
    layer = viewer.add_labels(labels, name="bad")
    widget.labels_layer.value = layer
    before = snapshot(viewer)
    widget.train()
    assert not widget.busy
    assert len(errors()) == 1 and message in errors()[0], errors()
    assert widget.model is None
    assert_unchanged(viewer, before)


def test_only_images_offered_as_image_and_labels_layer_refused(setup) -> None:
    from napari_unet.unet.data import InputError
    from napari_unet.widgets.inputs import read_image, read_labels

    viewer, widget = setup
    assert all(c.name != "crop scribbles" for c in widget.image_layer.choices)
    with pytest.raises(InputError, match="Labels layer: the image must be an Image layer"):
        read_image(viewer.layers["crop scribbles"], None)
    image = read_image(viewer.layers["crop"], None)
    with pytest.raises(InputError, match="annotations must be a Labels layer"):
        read_labels(viewer.layers["crop"], image)


def test_image_smaller_than_the_model(setup, errors, crop) -> None:
    viewer, widget = setup
    small = np.zeros((64, 64), np.uint8)
    small[5:8, 5:40] = 1
    small[30:33, 20:50] = 2
    viewer.add_image(crop["image"][:64, :64], name="small")
    viewer.add_labels(small, name="small scribbles")
    widget.image_layer.value = viewer.layers["small"]
    widget.labels_layer.value = viewer.layers["small scribbles"]
    before = snapshot(viewer)
    widget.train()
    assert len(errors()) == 1 and "smaller than this model's smallest input" in errors()[0]
    assert widget.model is None
    assert_unchanged(viewer, before)


def test_predict_needs_a_fitting_model(setup, errors, crop) -> None:
    viewer, widget = setup
    before = snapshot(viewer)
    widget.predict()
    assert "no model yet" in errors()[-1]
    widget.show_activations()
    assert "no model yet" in errors()[-1]
    widget.make_model()  # a grey model
    rgb = np.stack([crop["image"]] * 3, axis=-1)
    viewer.add_image(rgb, name="rgb", rgb=True)
    before = snapshot(viewer)
    widget.image_layer.value = viewer.layers["rgb"]
    widget.predict()
    assert "takes 1 channel(s) but 'rgb' has 3" in errors()[-1]
    # Train with the grey model kept says how to get a model for this image
    widget.labels_layer.value = None
    viewer.add_labels(crop["scribbles"].copy(), name="rgb scribbles")
    before = snapshot(viewer)
    widget.image_layer.value = viewer.layers["rgb"]
    widget.labels_layer.value = viewer.layers["rgb scribbles"]
    widget.train()
    assert "choose source 'New U-Net' and press 'Create new model'" in errors()[-1]
    assert len(errors()) == 4
    assert_unchanged(viewer, before)


def test_bad_model_file_and_protected_save(setup, errors, tmp_path) -> None:
    viewer, widget = setup
    bad = tmp_path / "not_a_model.pt"
    bad.write_bytes(b"this is not a model")
    widget.model_source.value = "From file..."
    widget.model_file.value = bad
    widget.make_model()
    assert widget.model is None
    assert "not a readable model file" in errors()[-1] or "model file" in errors()[-1]
    widget.save_model(tmp_path / "x.pt")
    assert "no model to save" in errors()[-1]
    # saving never replaces a file that is not a napari-unet model
    widget.model_source.value = "New U-Net"
    widget.make_model()
    precious = tmp_path / "annotation.pt"
    precious.write_bytes(b"precious")
    assert widget.save_model(precious) is None
    assert precious.read_bytes() == b"precious"
    assert "not a napari-unet model file: not replaced" in errors()[-1]
    assert len(errors()) == 3


def test_failure_in_the_worker_is_reported_and_the_widget_stays_usable(
    setup, errors, qtbot, monkeypatch
) -> None:
    import napari_unet.unet.training as training

    viewer, widget = setup
    real_train = training.train

    def broken(*args, **kwargs):
        raise RuntimeError("boom in the worker")
        yield  # a generator, like the real one

    monkeypatch.setattr(training, "train", broken)
    widget.train()
    wait_idle(qtbot, widget)
    assert len(errors()) == 1 and "boom in the worker" in errors()[0]
    assert widget.train_button.enabled and widget.predict_button.enabled
    assert not widget.cancel_button.enabled
    # it works again once the cause is gone
    monkeypatch.setattr(training, "train", real_train)
    widget.train()
    wait_idle(qtbot, widget)
    assert widget.status.value.startswith("trained 2 steps"), widget.status.value
    assert len(errors()) == 1


def test_outputs_never_overwrite_a_users_layer(setup, qtbot) -> None:
    viewer, widget = setup
    mine = viewer.add_labels(np.full((128, 128), 7, np.uint8), name="segmentation")
    widget.make_model()
    widget.predict()
    wait_idle(qtbot, widget)
    assert np.all(mine.data == 7) and mine.name == "segmentation"
    ours = [layer for layer in viewer.layers if layer.name.startswith("segmentation [")]
    assert len(ours) == 1
    # outputs are not offered as inputs
    assert all(c.name in ("crop",) for c in widget.image_layer.choices)
    assert ours[0] not in widget.labels_layer.choices
    n = len(viewer.layers)
    widget.predict()
    wait_idle(qtbot, widget)
    assert len(viewer.layers) == n
    assert [layer for layer in viewer.layers if layer.name.startswith("segmentation [")] == ours
    assert np.all(mine.data == 7)


def test_training_and_prediction_too_large_for_the_memory(setup, errors, qtbot, monkeypatch):
    """Train and Predict in the widget go through the core's memory check: a clear
    message, no layer changed, and the widget works again once memory allows."""
    from napari_unet.unet import memory_estimate

    viewer, widget = setup
    widget.train_button.clicked()
    wait_idle(qtbot, widget)
    model = widget.model
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    before = snapshot(viewer)
    monkeypatch.setattr(memory_estimate, "available_bytes", lambda device: 2**20)
    widget.train_button.clicked()
    wait_idle(qtbot, widget)
    assert len(errors()) == 1 and "needs about" in errors()[0], errors()
    assert "lower the batch size or the tile size" in errors()[0]
    assert all(v.equal(weights[k]) for k, v in widget.model.state_dict().items())
    widget.predict_button.clicked()
    wait_idle(qtbot, widget)
    assert len(errors()) == 2 and "lower the tile size or the batch size" in errors()[1]
    assert_unchanged(viewer, before)
    monkeypatch.undo()
    widget.predict_button.clicked()
    wait_idle(qtbot, widget)
    assert len(errors()) == 2 and widget.status.value.startswith("predicted"), widget.status.value

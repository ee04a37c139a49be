"""Class names typed in the widget: they rename the current model's classes (its record:
saved files, bioimage.io exports) and the segmentation layer's features, or name the
classes of a training run; a wrong count is refused and changes nothing."""

from __future__ import annotations

import zipfile

import pytest
import yaml

from .conftest import bundled_nuclei

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CROP = (slice(40, 168), slice(200, 328))


def type_names(qtbot, widget, text: str) -> None:
    from qtpy.QtCore import Qt

    field = widget.class_names.native
    field.clear()
    qtbot.keyClicks(field, text)
    qtbot.keyClick(field, Qt.Key_Return)


def press(qtbot, button) -> None:
    from qtpy.QtCore import Qt

    qtbot.mouseClick(button.native, Qt.LeftButton)


@pytest.fixture
def session(make_napari_viewer):
    data = {name: array[CROP] for name, array in bundled_nuclei().items()}
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(data["image"], name="crop")
    viewer.add_labels(data["scribbles"], name="strokes")
    widget.image_layer.value = viewer.layers["crop"]
    widget.labels_layer.value = viewer.layers["strokes"]
    widget.model_source.value = "New U-Net"
    widget.steps.value = 3
    widget.tile_size.value = 32
    widget.augment.value = False
    return viewer, widget


def test_names_typed_before_training_name_the_new_model(session, qtbot, tmp_path) -> None:
    from napari_unet import load_model

    viewer, widget = session
    type_names(qtbot, widget, "background, nucleus")
    press(qtbot, widget.train_button)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert widget.model.record.classes.names == ["background", "nucleus"]
    press(qtbot, widget.predict_button)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    features = viewer.layers["segmentation"].features
    assert list(features["index"]) == [1, 2]
    assert list(features["class"]) == ["background", "nucleus"]
    saved = widget.save_model(tmp_path / "named.pt")
    assert load_model(saved).record.classes.names == ["background", "nucleus"]


def test_enter_renames_the_current_model_and_its_segmentation(session, qtbot, infos) -> None:
    viewer, widget = session
    press(qtbot, widget.make_model_button)
    press(qtbot, widget.predict_button)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert list(viewer.layers["segmentation"].features["class"]) == ["class 1", "class 2"]
    weights = {k: v.clone() for k, v in widget.model.state_dict().items()}
    type_names(qtbot, widget, "gap, cell")
    assert widget.model.record.classes.names == ["gap", "cell"]
    assert list(viewer.layers["segmentation"].features["class"]) == ["gap", "cell"]
    assert any("classes named gap, cell" in m for m in infos())
    for k, v in widget.model.state_dict().items():  # only the record changed
        assert (v == weights[k]).all()


def test_a_wrong_number_of_names_is_refused(session, qtbot, errors) -> None:
    viewer, widget = session
    press(qtbot, widget.make_model_button)
    type_names(qtbot, widget, "one, two, three")
    assert any("3 class names for the model's 2 classes" in m for m in errors())
    assert (
        widget.model.record.classes.names in (None, [])
        or len(widget.model.record.classes.names) == 2
    )
    assert widget.class_names.value != "one, two, three"  # back to the model's names
    type_names(qtbot, widget, "same, same")
    assert any("given twice: same" in m for m in errors())

    # before training: refused before anything starts, the model and layers unchanged
    layers = [layer.name for layer in viewer.layers]
    model = widget.model
    steps = model.record.steps_trained()
    widget.class_names.value = "a, b, c"
    press(qtbot, widget.train_button)
    assert any("3 class names under Model for the 2 classes of 'strokes'" in m for m in errors())
    assert not widget.busy and widget.model is model
    assert model.record.steps_trained() == steps
    assert [layer.name for layer in viewer.layers] == layers


def test_the_names_go_into_a_bioimageio_export(session, qtbot, tmp_path) -> None:
    pytest.importorskip("bioimageio.spec")
    from napari_unet import export_bioimageio

    _, widget = session
    press(qtbot, widget.make_model_button)
    type_names(qtbot, widget, "background, nucleus")
    out = export_bioimageio(
        widget.model, tmp_path / "m.zip", name="named classes", description="a test",
        torchscript=False,
    )  # fmt: skip
    with zipfile.ZipFile(out) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
    axes = rdf["outputs"][0]["axes"]
    channel = next(a for a in axes if a.get("type") == "channel")
    assert channel["channel_names"] == ["background", "nucleus"]

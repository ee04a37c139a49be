"""Predict files or a folder from the widget: the dialog filled in and confirmed as a user
does; the outputs are what the workflow's segment() gives for each file, written as the
CLI writes them and opened lazily; refusals keep the dialog open and change no file;
Cancel writes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from .conftest import bundled_nuclei

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def press(qtbot, button) -> None:
    from qtpy.QtCore import Qt

    qtbot.mouseClick(button.native if hasattr(button, "native") else button, Qt.LeftButton)


@pytest.fixture
def folder(tmp_path):
    """Three crops of the bundled nuclei sample as a user's folder of TIFFs."""
    image = bundled_nuclei()["image"]
    inputs = tmp_path / "images"
    inputs.mkdir()
    for i in range(3):
        tifffile.imwrite(inputs / f"n{i}.tif", image[i * 96 : i * 96 + 160, 40:240])
    return inputs


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    press(qtbot, widget.make_model_button)  # the bundled nuclei model
    qtbot.waitUntil(lambda: widget.model is not None and not widget.busy, timeout=30_000)
    return viewer, widget


def open_dialog(qtbot, widget, **fields):
    press(qtbot, widget.files_button)
    dialog = widget.files_dialog
    assert dialog.isVisible()
    for name, value in fields.items():
        getattr(dialog, name).value = value
    return dialog


def confirm(qtbot, dialog) -> None:
    from qtpy.QtWidgets import QDialogButtonBox

    press(qtbot, dialog.buttons.button(QDialogButtonBox.StandardButton.Ok))


def test_a_folder_is_predicted_into_files_and_opened_lazily(widget, folder, tmp_path, qtbot):
    import dask.array as da

    from napari_unet.workflow import segment

    viewer, widget = widget
    out = tmp_path / "results"
    dialog = open_dialog(qtbot, widget, folder=str(folder), out=str(out), instances=True)
    confirm(qtbot, dialog)
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"n{i}_{kind}.tif" for i in range(3) for kind in ("instances", "labels")]
    for i in range(3):
        expected = segment(widget.model, tifffile.imread(folder / f"n{i}.tif")).labels
        np.testing.assert_array_equal(tifffile.imread(out / f"n{i}_labels.tif"), expected)
        layer = viewer.layers[f"n{i}_labels"]
        assert isinstance(layer.data, da.Array)  # read when drawn, not when opened
        np.testing.assert_array_equal(np.asarray(layer.data), expected)
    assert [viewer.layers[f"n{i}_labels"].visible for i in range(3)] == [True, False, False]
    assert "predicted 3 file(s)" in widget.status.value
    assert sorted(p.name for p in folder.iterdir()) == ["n0.tif", "n1.tif", "n2.tif"]


def test_refusals_keep_the_dialog_open_and_change_no_file(widget, folder, tmp_path, qtbot):
    viewer, widget = widget
    out = tmp_path / "results"
    out.mkdir()
    mine = out / "n0_labels.tif"
    tifffile.imwrite(mine, np.zeros((4, 4), np.uint8))  # the user's own file of that name
    before = mine.read_bytes()
    layers = len(viewer.layers)
    dialog = open_dialog(qtbot, widget, out=str(out))
    confirm(qtbot, dialog)
    assert dialog.isVisible() and "choose the files to predict" in dialog.problem.value
    dialog.folder.value = str(folder)
    dialog.overwrite.value = True  # still not replaced: napari-unet did not write it
    confirm(qtbot, dialog)
    assert dialog.isVisible() and "n0_labels.tif" in dialog.problem.value
    assert not widget.busy
    assert mine.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [mine.name]
    assert len(viewer.layers) == layers


def test_cancel_writes_nothing(widget, folder, tmp_path, qtbot, infos):
    from napari_unet.workflow.batch import BatchRequest, plan_batch

    viewer, widget = widget
    out = tmp_path / "results"
    plan = plan_batch(widget.model, BatchRequest([folder], out))
    widget.predict_files(plan)
    press(qtbot, widget.cancel_button)  # before the first tile is done
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)
    assert widget.status.value == "file prediction cancelled: nothing was written"
    assert not out.exists()  # the folder it created is gone too
    assert not any(layer.name.endswith("_labels") for layer in viewer.layers)

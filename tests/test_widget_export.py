"""The Export button: the dialog filled in and confirmed as a user does, the package or
file written in a thread worker and read back by its own consumer (bioimageio.spec's
loader through import_bioimageio, torch.jit.load); refusals change no file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .conftest import bundled_nuclei

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CROP = (slice(40, 168), slice(200, 328))


def press(qtbot, button) -> None:
    from qtpy.QtCore import Qt

    qtbot.mouseClick(button.native if hasattr(button, "native") else button, Qt.LeftButton)


def fill_and_confirm(qtbot, widget, kind: str, path, **fields) -> None:
    """Press Export, fill the dialog's fields and press its OK button."""
    from qtpy.QtWidgets import QDialogButtonBox

    press(qtbot, widget.export_button)
    dialog = widget.export_dialog
    assert dialog.isVisible()
    dialog.kind.value = kind
    dialog.path.value = str(path)
    for name, value in fields.items():
        getattr(dialog, name).value = value
    press(qtbot, dialog.buttons.button(QDialogButtonBox.StandardButton.Ok))
    qtbot.waitUntil(lambda: not widget.busy, timeout=120_000)


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(bundled_nuclei()["image"][CROP], name="crop")
    widget.image_layer.value = viewer.layers["crop"]
    return widget


def test_torchscript_export_runs_like_the_model(widget, qtbot, tmp_path, infos) -> None:
    press(qtbot, widget.make_model_button)  # the bundled model
    out = tmp_path / "nuclei.pt"
    fill_and_confirm(qtbot, widget, "TorchScript (.pt)", out)
    assert out.is_file()
    assert any(f"TorchScript file: {out}" in m for m in infos())
    scripted = torch.jit.load(str(out))
    x = torch.rand(1, 1, 96, 96)
    with torch.no_grad():
        np.testing.assert_allclose(scripted(x), widget.model.eval()(x), atol=1e-4)


def test_bioimageio_export_validates_and_imports_back(widget, qtbot, tmp_path) -> None:
    pytest.importorskip("bioimageio.spec")
    from napari_unet import import_bioimageio

    press(qtbot, widget.make_model_button)
    out = tmp_path / "nuclei.zip"
    fill_and_confirm(
        qtbot, widget, "bioimage.io package (.zip)", out, package_name="napari-unet nuclei",
        description="Nuclei in fluorescence images", authors="Ada Lovelace",
    )  # fmt: skip
    assert out.is_file(), widget.status.value
    back = import_bioimageio(out)
    for (k, a), b in zip(
        widget.model.state_dict().items(), back.state_dict().values(), strict=True
    ):
        assert torch.equal(a.cpu(), b.cpu()), k


def test_refusals_write_nothing(widget, qtbot, tmp_path, errors) -> None:
    pytest.importorskip("bioimageio.spec")
    press(qtbot, widget.export_button)  # no model yet
    assert any("there is no model to export yet" in m for m in errors())
    assert widget.export_dialog is None

    press(qtbot, widget.make_model_button)
    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"my own file")
    # an existing file, even with 'replace' ticked, is not replaced unless it is an export
    fill_and_confirm(qtbot, widget, "TorchScript (.pt)", mine, replace=True)
    assert mine.read_bytes() == b"my own file"
    assert any("mine.pt" in m for m in errors())
    fill_and_confirm(qtbot, widget, "TorchScript (.pt)", mine)
    assert any("exists: choose another name" in m for m in errors())
    # what the request itself gets wrong keeps the dialog open, saying why, to be fixed
    from qtpy.QtWidgets import QDialogButtonBox

    fill_and_confirm(
        qtbot, widget, "bioimage.io package (.zip)", tmp_path / "x.zip", package_name="ab",
        description="d",
    )  # fmt: skip
    dialog = widget.export_dialog
    assert dialog.isVisible()
    assert "the package name needs 5-128 characters" in dialog.problem.value
    dialog.package_name.value = "napari-unet nuclei"
    dialog.description.value = ""
    press(qtbot, dialog.buttons.button(QDialogButtonBox.StandardButton.Ok))
    assert dialog.isVisible() and "needs a description" in dialog.problem.value
    press(qtbot, dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel))
    assert not dialog.isVisible()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.pt"]


def test_a_file_models_default_package_name_is_accepted(widget, qtbot, tmp_path) -> None:
    """'napari-unet my.model' would break the name rule: the dot is left out."""
    from napari_unet.workflow import ExportRequest

    press(qtbot, widget.make_model_button)
    widget.model.record.source = f"file:{tmp_path / 'my.model.pt'}"
    press(qtbot, widget.export_button)
    name = widget.export_dialog.package_name.value
    assert name == "napari-unet my model"
    ExportRequest("bioimageio", tmp_path / "p.zip", name=name, description="d").validate()

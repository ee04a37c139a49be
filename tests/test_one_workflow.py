"""The CLI and the widget take the same way through the workflow: the same label rules,
the same record of classes and of the w(x) recipe, and the annotation's values written
back by both (the disagreements of issue 16, each checked on both front-ends).

On a crop of the nuclei sample bundled with the package (no ../shared needed).
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from .conftest import bundled_nuclei

CROP = (slice(40, 168), slice(200, 328))  # 128 x 128 of the sample, with 5 nuclei
QUICK = ["--steps", "2", "--batch-size", "1", "--tile-size", "32", "--no-augment", "-q"]


@pytest.fixture(scope="module")
def crop() -> dict[str, np.ndarray]:
    nuclei = bundled_nuclei()
    return {k: np.ascontiguousarray(v[CROP]) for k, v in nuclei.items()}


@pytest.fixture
def files(tmp_path, crop):
    tifffile.imwrite(tmp_path / "img.tif", crop["image"])
    mask = np.where(crop["instances"] > 0, 255, 0).astype(np.uint8)
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    tifffile.imwrite(tmp_path / "cells.tif", crop["instances"])
    return tmp_path


def cli(*argv) -> int:
    from napari_unet.cli import main

    return main([str(a) for a in argv])


def test_cli_records_the_weight_map_recipe(files) -> None:
    """train --weight-map keeps w0, sigma and class balancing in the model, as the widget
    and the bundled models do (fine-tuning then reuses the same w(x))."""
    from napari_unet import load_model
    from napari_unet.unet.record import WeightMapRecipe

    out = files / "m.pt"
    assert cli("train", "--images", files / "img.tif", "--labels", files / "cells.tif",
               "--mode", "instances", "--weight-map", "--w0", "7", "--sigma", "3",
               "--preset", "tiny", "--out", out, *QUICK) == 0  # fmt: skip
    record = load_model(out).record
    assert record.weight_map == WeightMapRecipe(w0=7.0, sigma=3.0, class_balance=False)
    assert record.classes.label_mode == "instances"


def test_cli_auto_reads_a_mask_as_dense_and_writes_its_values_back(files) -> None:
    from napari_unet import load_model

    out = files / "m.pt"
    assert cli("train", "--images", files / "img.tif", "--labels", files / "mask.tif",
               "--mode", "auto", "--preset", "tiny", "--out", out, *QUICK) == 0  # fmt: skip
    model = load_model(out)
    assert model.record.classes.label_values == [0, 255]
    assert model.record.classes.names == ["value 0", "value 255"]
    assert cli("predict", files / "img.tif", "--model", out, "--out", files / "pred",
               "--probabilities", "-q") == 0  # fmt: skip
    labels = tifffile.imread(files / "pred" / "img_labels.tif")
    p = tifffile.imread(files / "pred" / "img_probabilities.tif")
    np.testing.assert_array_equal(labels, np.where(p.argmax(axis=0) == 1, 255, 0))


pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def _wait(qtbot, widget, timeout: float = 120) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


def _widget_on(viewer, crop, labels, name: str):
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    viewer.add_image(crop["image"], name="img")
    viewer.add_labels(labels, name=name)
    widget.image_layer.value = viewer.layers["img"]
    widget.labels_layer.value = viewer.layers[name]
    widget.model_source.value = "New U-Net"
    widget.preset.value = "tiny"
    widget.steps.value = 2
    widget.tile_size.value = 32
    widget.batch_size.value = 1
    widget.augment.value = False
    return widget


def test_widget_trains_on_a_dense_mask_and_writes_its_values_back(
    make_napari_viewer, qtbot, crop
) -> None:
    """The widget offers 'dense' (and its 'auto' finds a 0/255 mask); the segmentation
    holds 0 / 255 where p_k(x) says background / object, as the CLI writes it."""
    torch.manual_seed(0)
    viewer = make_napari_viewer()
    mask = np.where(crop["instances"] > 0, 255, 0).astype(np.uint8)
    widget = _widget_on(viewer, crop, mask, "mask")
    assert "dense" in widget.label_mode.choices
    assert widget.label_mode.value == "auto"
    assert widget.data_info.value.startswith("dense: 2 classes (values 0, 255)")
    widget.train()
    _wait(qtbot, widget)
    assert widget.model.record.classes.label_values == [0, 255]
    live = np.asarray(viewer.layers["segmentation"].data)  # the refresh after the last step
    assert set(np.unique(live)) <= {0, 255} and live.any()
    widget.predict()
    _wait(qtbot, widget)
    seg = np.asarray(viewer.layers["segmentation"].data)
    p = np.asarray(viewer.layers["p_k(x)"].data)
    np.testing.assert_array_equal(seg, np.where(p.argmax(axis=0) == 1, 255, 0))


def test_widget_and_cli_record_the_same_classes_and_recipe(
    make_napari_viewer, qtbot, crop, files
) -> None:
    """Instances with w(x): the widget's model records what the CLI's records."""
    from napari_unet import load_model

    viewer = make_napari_viewer()
    widget = _widget_on(viewer, crop, crop["instances"], "cells")
    widget.use_weight_map.value = True
    widget.w0.value, widget.sigma.value = 7.0, 3.0
    widget.train()
    _wait(qtbot, widget)
    out = files / "m.pt"
    assert cli("train", "--images", files / "img.tif", "--labels", files / "cells.tif",
               "--mode", "instances", "--weight-map", "--w0", "7", "--sigma", "3",
               "--preset", "tiny", "--out", out, *QUICK) == 0  # fmt: skip
    from_cli, from_widget = load_model(out).record, widget.model.record
    assert from_widget.classes == from_cli.classes
    assert from_widget.weight_map == from_cli.weight_map
    assert from_widget.normalization == from_cli.normalization
    assert from_widget.source == from_cli.source == "new tiny U-Net"

"""Validation during training in the widget: a second Labels layer (or a held-out image
with its labels) picked under Data; Train plots its loss and IoU beside the training loss,
keeps the best step's weights and offers the last step's; bad picks change nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .conftest import bundled_nuclei, snapshot

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAIN, HELD_OUT = (slice(0, 128), slice(0, 128)), (slice(0, 128), slice(128, 256))


def press(qtbot, button) -> None:
    from qtpy.QtCore import Qt

    qtbot.mouseClick(button.native, Qt.LeftButton)


@pytest.fixture
def viewer_widget(make_napari_viewer):
    """The nuclei sample's top-left 128 x 256: scribbles on the left half for training,
    the drawn nuclei of the right half (1 = background, 2 = nucleus) for validation."""
    nuclei = bundled_nuclei()
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    crop = (slice(0, 128), slice(0, 256))
    viewer.add_image(nuclei["image"][crop], name="nuclei")
    training = nuclei["scribbles"][crop].copy()
    training[:, 128:] = 0
    held_out = np.zeros_like(training)
    held_out[:, 128:] = np.where(nuclei["instances"][crop][:, 128:] > 0, 2, 1)
    viewer.add_labels(training, name="scribbles")
    viewer.add_labels(held_out, name="held out")
    widget.labels_layer.value = viewer.layers["scribbles"]
    widget.model_source.value = "New U-Net"
    widget.steps.value = 6
    widget.tile_size.value = 32
    widget.augment.value = False
    widget.validate_every.value = 2
    return viewer, widget


def weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_picking_validation_labels_picks_their_image(viewer_widget):
    viewer, widget = viewer_widget
    assert widget.validation_labels.value is None  # no validation unless asked
    assert widget.switch_weights_button.native.isHidden()
    viewer.add_image(np.zeros((40, 50), np.float32), name="other")
    viewer.add_labels(np.zeros((40, 50), np.uint8), name="other labels")
    widget.validation_labels.value = viewer.layers["held out"]
    assert widget.validation_image.value is viewer.layers["nuclei"]
    widget.validation_labels.value = viewer.layers["other labels"]  # only "other" fits
    assert widget.validation_image.value is viewer.layers["other"]


def test_train_plots_validation_and_keeps_the_best_weights(viewer_widget, qtbot, monkeypatch):
    """Scores are forced to peak at step 2; the model must end with step 2's weights and
    the button must swap in the last step's, and back."""
    from napari_unet.unet import validation as core

    viewer, widget = viewer_widget
    widget.validation_labels.value = viewer.layers["held out"]
    real_evaluate = core.Validation.evaluate
    snapshots: dict[int, list[torch.Tensor]] = {}

    def peak_at_two(self, model, step):
        score = real_evaluate(self, model, step)  # the real scoring runs
        snapshots[step] = weights(model)
        score.iou = {2: 0.9}.get(step, 0.5)
        return score

    monkeypatch.setattr(core.Validation, "evaluate", peak_at_two)
    press(qtbot, widget.train_button)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    plot = widget.loss_plot
    assert [v.step for v in plot.validation] == [2, 4, 6] and plot.best_step == 2
    assert len(plot.steps) == 6
    assert same(weights(widget.model), snapshots[2])
    record = widget.model.record.training[-1].extra["validation"]
    assert record["images"] == ["nuclei"] and record["weights_from_step"] == 2
    assert "best IoU 0.900 at step 2" in widget.status.value
    button = widget.switch_weights_button
    assert not button.native.isHidden() and button.text == "Use the last step's weights"

    press(qtbot, button)
    assert same(weights(widget.model), snapshots[6])
    assert widget.model.record.training[-1].extra["validation"]["weights_from_step"] == 6
    assert button.text == "Use the best step's (step 2) weights"
    assert "step 6" in widget.status.value
    press(qtbot, button)
    assert same(weights(widget.model), snapshots[2])


def test_real_scores_are_those_of_the_weights_kept(viewer_widget, qtbot):
    from napari_unet.workflow import LabelPlan, WeightRecipe, validation_set
    from napari_unet.workflow.samples import AnnotatedPlane

    viewer, widget = viewer_widget
    widget.validation_labels.value = viewer.layers["held out"]
    widget.patience.value = 0
    press(qtbot, widget.train_button)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    scored = widget.loss_plot.validation
    best = max(scored, key=lambda s: (s.score, -s.loss))
    assert widget.loss_plot.best_step == best.step
    # scoring the model the widget holds again, from the layers, gives the best score
    image = viewer.layers["nuclei"].data[None]
    labels = viewer.layers["held out"].data
    validation, _ = validation_set(
        widget.model,
        [AnnotatedPlane(image, labels, "nuclei")],
        LabelPlan("scribbles", 2),
        WeightRecipe(border=False),
    )
    assert validation.evaluate(widget.model, 0).iou == pytest.approx(best.iou, abs=1e-6)


@pytest.mark.parametrize("case", ["same layer", "wrong shape", "third class"])
def test_bad_validation_picks_are_refused_and_change_nothing(viewer_widget, qtbot, errors, case):
    viewer, widget = viewer_widget
    if case == "same layer":
        widget.validation_labels.value = viewer.layers["scribbles"]
        expected = "the validation labels are the training labels"
    elif case == "wrong shape":
        viewer.add_labels(np.ones((50, 50), np.uint8), name="small")
        viewer.add_image(np.zeros((60, 60), np.float32), name="other")
        widget.validation_labels.value = viewer.layers["small"]
        widget.validation_image.value = viewer.layers["other"]
        expected = "have shape (50, 50) but the image 'other'"
    else:
        held_out = viewer.layers["held out"]
        held_out.data = np.where(held_out.data == 2, 3, held_out.data)
        widget.validation_labels.value = held_out
        expected = "class 3, the training labels only classes 1 to 2"
    widget.model_source.value = "Pretrained: nuclei"  # a loaded model must stay as it is
    press(qtbot, widget.make_model_button)
    model = widget.model
    before_weights, runs = weights(model), len(model.record.training)
    before = snapshot(viewer)
    press(qtbot, widget.train_button)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert any(expected in m for m in errors()), errors()
    after = snapshot(viewer)
    assert [(n, t) for n, t, _ in after] == [(n, t) for n, t, _ in before]
    assert all(np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(before, after, strict=True))
    assert widget.model is model and same(weights(model), before_weights)
    assert model.n_classes == 2 and model.record.classes.names == ["background", "nucleus"]
    assert len(model.record.training) == runs

"""Validation during training (unet/validation.py, workflow/validation.py): the scores
against independently computed values, the best weights kept and swapped, early stopping,
and the held-out labels read by the training labels' rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_unet.unet.data import IGNORE_INDEX, InputError, prepare_sample
from napari_unet.unet.model import UNet
from napari_unet.unet.tiling import predict_single_tile
from napari_unet.unet.training import TrainConfig, train
from napari_unet.unet.validation import Validation, ValidationScore, add_overlaps, object_counts
from napari_unet.workflow import (
    AnnotatedPlane,
    LabelPlan,
    ValidationOptions,
    WeightRecipe,
    validation_set,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blobs(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image with bright discs, and scribbles: 2 on the discs, 1 on some background."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0, 1, (size, size)).astype(np.float32)
    labels = np.zeros((size, size), np.int64)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(4):
        cy, cx = rng.integers(8, size - 8, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 36
        image[disc] += 3
        labels[disc] = 2
    labels[(labels == 0) & (rng.random((size, size)) < 0.3)] = 1
    return image, labels


def tiny_model(seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(in_channels=1, n_classes=2, depth=2, base_channels=4)


def scores(step: int, iou: float, loss: float = 1.0) -> ValidationScore:
    return ValidationScore(step=step, loss=loss, iou=iou)


# ----------------------------------------------------------------------- the scores
def test_validation_loss_is_the_weighted_energy_of_eq_1():
    image, labels = blobs(1)
    sample = prepare_sample(image, labels, class_balance=True)  # w(x) is not 1
    model = tiny_model().eval()
    logits = torch.from_numpy(predict_single_tile(model, sample.image))[None]
    target = torch.from_numpy(sample.target)[None]
    nll = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")
    annotated = target != IGNORE_INDEX
    expected = float((nll * torch.from_numpy(sample.weight))[annotated].sum() / annotated.sum())
    score = Validation([sample]).evaluate(model, step=7)
    assert score.step == 7
    assert score.loss == pytest.approx(expected, rel=1e-4)
    assert score.object_f1 is None and score.metric == "IoU"


def test_iou_counts_annotated_pixels_of_the_object_classes_only():
    target = np.array([[0, 0, 1, 1], [IGNORE_INDEX, IGNORE_INDEX, 1, 1]])
    predicted = np.array([[0, 1, 1, 0], [1, 1, 1, 1]])  # the unannotated 1s do not count
    overlap: dict[int, list[int]] = {}
    add_overlaps(overlap, predicted, target)
    # class 0 (background): predicted at (0,0) and (0,3), drawn at (0,0), (0,1)
    # class 1 (objects): predicted at (0,1), (0,2), (1,2), (1,3);
    #                    drawn at (0,2), (0,3), (1,2), (1,3)
    assert overlap == {0: [1, 3], 1: [3, 5]}


def test_iou_pools_the_samples_and_leaves_the_background_out():
    model = tiny_model()
    samples = [prepare_sample(*blobs(seed)) for seed in (2, 3)]
    score = Validation(samples).evaluate(model, 1)
    inter = union = 0
    for s in samples:
        predicted = predict_single_tile(model.eval(), s.image).argmax(0)
        annotated = s.target != IGNORE_INDEX
        p, t = predicted[annotated] == 1, s.target[annotated] == 1
        inter, union = inter + np.count_nonzero(p & t), union + np.count_nonzero(p | t)
    assert score.iou == pytest.approx(inter / union, abs=2e-3)  # tiling vs one tile


def test_object_counts_match_cells_at_iou_one_half():
    drawn = np.zeros((10, 10), np.int32)
    drawn[0:4, 0:4] = 1  # found below with IoU 12/16
    drawn[6:10, 6:10] = 2  # missed
    predicted = np.zeros_like(drawn)
    predicted[0:4, 0:3] = 5
    predicted[6:8, 0:2] = 9  # a false positive
    assert object_counts(predicted, drawn) == (1, 1, 1)


# ----------------------------------------------------------------------- best weights
def set_weights(model: UNet, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def first_weight(model: UNet) -> float:
    return float(next(model.parameters()).detach().flatten()[0])


def test_the_best_weights_are_kept_and_can_be_swapped_with_the_last():
    model = tiny_model()
    validation = Validation([prepare_sample(*blobs(4))])
    set_weights(model, 0.5)
    assert validation.observe(model, scores(10, 0.8))
    set_weights(model, 0.25)
    assert not validation.observe(model, scores(20, 0.6))
    set_weights(model, 0.125)
    assert not validation.observe(model, scores(30, 0.8, loss=2.0))  # a tie, higher loss
    validation.finish(model, 30)
    assert first_weight(model) == 0.5 and validation.holds_step == 10
    assert validation.switch(model) == 30 and first_weight(model) == 0.125
    assert validation.switch(model) == 10 and first_weight(model) == 0.5
    assert "best IoU 0.800 at step 10 (last step 30: 0.800)" in validation.summary()


def test_keep_last_leaves_the_last_weights_but_offers_the_best():
    model = tiny_model()
    validation = Validation([prepare_sample(*blobs(4))], keep="last")
    set_weights(model, 0.5)
    validation.observe(model, scores(10, 0.9))
    set_weights(model, 0.25)
    validation.observe(model, scores(20, 0.1))
    validation.finish(model, 20)
    assert first_weight(model) == 0.25 and validation.holds_step == 20
    assert validation.can_switch and validation.switch(model) == 10
    assert first_weight(model) == 0.5


def test_no_switch_when_the_best_step_is_the_last():
    model = tiny_model()
    validation = Validation([prepare_sample(*blobs(4))])
    validation.observe(model, scores(10, 0.5))
    validation.finish(model, 10)
    assert not validation.can_switch
    with pytest.raises(InputError, match="no other set of weights"):
        validation.switch(model)


def test_training_scores_every_n_steps_and_ends_with_the_best_weights():
    model = tiny_model()
    train_samples = [prepare_sample(*blobs(seed)) for seed in (5, 6)]
    validation = Validation([prepare_sample(*blobs(7))], every=4)
    config = TrainConfig(steps=10, tile_size=32, batch_size=1, precision="fp32", augment=False)
    events = list(train(model, train_samples, config, validation=validation))
    assert [e.step for e in events if e.validation is not None] == [4, 8, 10]
    assert [s.step for s in validation.history] == [4, 8, 10]
    best = max(validation.history, key=lambda s: (s.score, -s.loss))
    assert validation.best is best and validation.holds_step == best.step
    # the model holds exactly the weights that scored best: scoring them again agrees
    again = validation.evaluate(model, 0)
    assert again.loss == pytest.approx(best.loss, rel=1e-5)
    record = model.record.last_run.extra["validation"]
    assert [s["step"] for s in record["scores"]] == [4, 8, 10]
    assert record["best_step"] == best.step == record["weights_from_step"]
    assert record["every"] == 4 and record["keep"] == "best"


def test_patience_stops_training_after_validations_without_improvement(monkeypatch):
    model = tiny_model()
    validation = Validation([prepare_sample(*blobs(7))], every=2, patience=2)
    falling = iter([0.9, 0.8, 0.7, 0.6, 0.5])
    monkeypatch.setattr(Validation, "evaluate", lambda self, m, step: scores(step, next(falling)))
    config = TrainConfig(steps=20, tile_size=32, batch_size=1, precision="fp32", augment=False)
    events = list(train(model, [prepare_sample(*blobs(5))], config, validation=validation))
    assert events[-1].step == 6 and events[-1].steps == 6  # best at 2, no gain at 4 and 6
    assert validation.stopped_early and validation.holds_step == 2
    assert model.record.last_run.steps_done == 6
    assert "stopped early" in validation.summary()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"every": 0}, "validate every"),
        ({"patience": -1}, "patience"),
        ({"keep": "first"}, "keep"),
    ],
)
def test_bad_settings_are_refused_before_training(settings, message):
    model = tiny_model()
    before = first_weight(model)
    validation = Validation([prepare_sample(*blobs(7))], **settings)
    with pytest.raises(InputError, match=message):
        next(
            train(model, [prepare_sample(*blobs(5))], TrainConfig(steps=2), validation=validation)
        )
    assert first_weight(model) == before and not model.record.training


def test_validation_classes_the_model_lacks_are_refused():
    labels = blobs(7)[1].copy()
    labels[labels == 2] = 3
    validation = Validation([prepare_sample(blobs(7)[0], labels)])
    with pytest.raises(InputError, match="class 3, the model has 2 classes"):
        validation.check_model(tiny_model())


# ----------------------------------------------------------------------- the workflow
def plane(seed: int, name: str = "a") -> AnnotatedPlane:
    image, labels = blobs(seed)
    return AnnotatedPlane(image[None], labels, name)


def test_validation_labels_equal_to_the_training_labels_are_refused():
    same = plane(1)
    with pytest.raises(InputError, match="validation labels are the training labels"):
        validation_set(
            tiny_model(), [same], LabelPlan("scribbles", 2), WeightRecipe(), training=[same]
        )


def test_shared_annotated_pixels_get_a_note():
    training = plane(1)
    held_out = AnnotatedPlane(training.image, np.where(training.labels == 2, 2, 0), "a")
    _, notes = validation_set(
        tiny_model(), [held_out], LabelPlan("scribbles", 2), WeightRecipe(), training=[training]
    )
    shared = int(np.count_nonzero(training.labels == 2))
    assert notes == [
        f"note: {shared} pixel(s) of a are annotated for both training and validation; "
        "the validation scores will be optimistic there"
    ]


def test_validation_values_the_training_labels_lack_are_refused():
    image, labels = blobs(1)
    dense = np.where(labels == 2, 255, 0)
    dense[0, 0] = 7
    with pytest.raises(InputError, match=r"value\(s\) \[7\] that the training labels do not"):
        validation_set(
            tiny_model(),
            [AnnotatedPlane(image[None], dense, "b")],
            LabelPlan("dense", 2, (0, 255)),
            WeightRecipe(),
        )
    with pytest.raises(InputError, match="class 3, the training labels only classes 1 to 2"):
        validation_set(
            tiny_model(),
            [AnnotatedPlane(image[None], np.where(labels == 2, 3, labels), "b")],
            LabelPlan("scribbles", 2),
            WeightRecipe(),
        )


def test_instance_labels_are_scored_by_object_f1():
    image = np.zeros((48, 48), np.float32)
    cells = np.zeros((48, 48), np.int32)
    cells[4:14, 4:14], cells[30:42, 26:40] = 1, 2
    image[cells > 0] = 1.0
    validation, _ = validation_set(
        tiny_model(),
        [AnnotatedPlane(image[None], cells, "cells")],
        LabelPlan("instances", 2),
        WeightRecipe(border=True),
        ValidationOptions(every=5, patience=1, keep="last"),
        mode="instances",
    )
    assert (validation.every, validation.patience, validation.keep) == (5, 1, "last")
    perfect = np.zeros((2, 48, 48), np.float32)
    perfect[1] = cells > 0
    perfect[0] = 1 - perfect[1]
    assert validation.split is not None
    found = validation.split(perfect)
    assert object_counts(found, cells) == (2, 0, 0)
    score = validation.evaluate(tiny_model(), 5)
    assert score.metric == "object F1" and 0.0 <= score.object_f1 <= 1.0
    # pooled over samples: one cell found, one missed, one false object -> 2 / (2 + 1 + 1)
    found = np.zeros_like(cells)
    found[4:14, 4:14], found[0:3, 40:46] = 7, 8
    fixed = Validation(validation.samples, instances=[cells], split=lambda p: found)
    assert fixed.evaluate(tiny_model(), 5).object_f1 == pytest.approx(0.5)


def test_validation_options_refuse_bad_values():
    with pytest.raises(InputError, match="keep"):
        ValidationOptions(keep="worst").validate()
    with pytest.raises(InputError, match="patience"):
        ValidationOptions(patience=-2).validate()


# ----------------------------------------------------------------------- review cases
def quick_config(steps: int, **kw) -> TrainConfig:
    return TrainConfig(
        steps=steps, tile_size=32, batch_size=1, precision="fp32", augment=False, **kw
    )


def test_after_a_divergence_the_model_keeps_the_weights_the_message_names(monkeypatch):
    from napari_unet.unet import training

    model = tiny_model()
    validation = Validation([prepare_sample(*blobs(7))], every=5)
    rising = iter([0.1, 0.9, 0.95])  # best at step 15, after the last snapshot (step 10)
    monkeypatch.setattr(Validation, "evaluate", lambda self, m, step: scores(step, next(rising)))
    real, calls = training.energy, {"n": 0}

    def diverging(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 17 else loss

    monkeypatch.setattr(training, "energy", diverging)
    with pytest.raises(training.TrainingDiverged, match="weights of step 10 were restored"):
        for _ in train(
            model, [prepare_sample(*blobs(5))], quick_config(30), validation=validation
        ):
            pass
    assert validation.holds_step == 10 and not validation.can_switch
    record = model.record.last_run
    assert record.steps_done == 10 and record.extra["validation"]["weights_from_step"] == 10


def weights_of(model: UNet) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_a_cancelled_run_scores_its_last_weights_before_choosing():
    model = tiny_model()
    validation = Validation([prepare_sample(*blobs(7))], every=5)
    run = train(model, [prepare_sample(*blobs(5))], quick_config(30), validation=validation)
    for progress in run:
        if progress.step == 7:
            break
    run.close()  # Cancel after step 7
    assert [s.step for s in validation.history] == [5, 7]
    assert validation.holds_step == validation.best.step
    assert model.record.last_run.extra["validation"]["scores"][-1]["step"] == 7


def test_early_stopping_then_batch_norm_statistics_for_the_weights_held(monkeypatch):
    from napari_unet.unet import training

    model = tiny_model()
    validation = Validation([prepare_sample(*blobs(7))], every=2, patience=1)
    falling = iter([0.9, 0.5])
    monkeypatch.setattr(Validation, "evaluate", lambda self, m, step: scores(step, next(falling)))
    held = {}

    def spy(model_, *args):
        held["weights"] = weights_of(model_)  # the weights the statistics are computed for
        return 16

    monkeypatch.setattr(training, "_recompute_batch_norm", spy)
    config = quick_config(20, recompute_batch_norm=True)
    list(train(model, [prepare_sample(*blobs(5))], config, validation=validation))
    assert validation.stopped_early and validation.holds_step == 2
    assert model.record.last_run.batch_norm_recomputed == 16
    assert all(torch.equal(a, b) for a, b in zip(held["weights"], weights_of(model), strict=True))


def test_a_validation_object_starts_afresh_on_each_run():
    model = tiny_model()
    validation = Validation([prepare_sample(*blobs(7))], every=2, patience=1)
    list(train(model, [prepare_sample(*blobs(5))], quick_config(4), validation=validation))
    validation.stopped_early = True  # as a finished run may leave it
    events = list(
        train(model, [prepare_sample(*blobs(5))], quick_config(4), validation=validation)
    )
    assert events[-1].step == 4 and [s.step for s in validation.history] == [2, 4]


def test_validation_labels_of_another_kind_are_refused_in_auto_mode():
    from napari_unet.workflow import check_validation_labels

    cells = np.zeros((32, 32), np.int32)
    for i in range(12):
        cells[2 * i : 2 * i + 2, 0:4] = i + 1  # 12 ids: instances
    strokes = AnnotatedPlane(np.zeros((1, 32, 32), np.float32), np.where(cells > 0, 2, 1), "v")
    with pytest.raises(InputError, match="read as scribbles, the training labels as instances"):
        check_validation_labels([strokes], LabelPlan("instances", 2), mode="auto")
    check_validation_labels([strokes], LabelPlan("instances", 2), mode="instances")  # asked

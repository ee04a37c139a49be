"""The workflow layer (napari_unet.workflow): the one set of rules every front-end uses,
checked on hand-made values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_unet import UNet, load_model, save_model
from napari_unet.unet.data import IGNORE_INDEX, InputError
from napari_unet.unet.record import Classes, WeightMapRecipe
from napari_unet.workflow import (
    AnnotatedPlane,
    InstanceOptions,
    LabelPlan,
    ModelChoice,
    PredictOptions,
    WeightRecipe,
    annotated_planes,
    annotation_labels,
    classes_for_training,
    detect_label_mode,
    distinct_values,
    fit_model,
    instance_channel,
    interpret_labels,
    label_values_table,
    object_channel,
    open_model,
    sample_of,
    segment,
    shown_weight,
    training_samples,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(n_classes: int = 2) -> UNet:
    torch.manual_seed(0)
    return UNet(1, n_classes, depth=1, base_channels=4, padding="same", dropout=0).eval()


# ---------------------------------------------------------------------------- labels
@pytest.mark.parametrize(
    ("values", "mode"),
    [
        ([0, 255], "dense"),  # a binary mask
        ([0, 11], "dense"),
        ([0, 1, 2, 3], "scribbles"),
        ([0, 1, 8], "scribbles"),
        (list(range(21)), "instances"),  # cell ids 1..20
        ([0, 3, 40], "instances"),  # few ids, one above 10
    ],
)
def test_auto_reads_the_values_the_way_the_docs_say(values, mode) -> None:
    assert detect_label_mode(np.array(values)) == mode
    assert interpret_labels(np.array(values), "auto").mode == mode


def test_plans_of_each_mode() -> None:
    assert interpret_labels(np.array([0, 1, 3]), "scribbles") == LabelPlan("scribbles", 3)
    assert interpret_labels(np.array([0, 5, 9]), "instances") == LabelPlan("instances", 2)
    plan = interpret_labels(np.array([0, 128, 255]), "dense")
    assert plan == LabelPlan("dense", 3, (0, 128, 255))
    np.testing.assert_array_equal(plan.to_core(np.array([[255, 0], [128, 0]])), [[3, 1], [2, 1]])
    assert plan.core_mode == "scribbles" and LabelPlan("instances", 2).core_mode == "instances"


@pytest.mark.parametrize(
    ("values", "mode", "phrase"),
    [
        ([-1, 0, 2], "auto", "negative values"),
        ([0], "scribbles", "no annotated pixels"),
        ([0, 1], "scribbles", "only one class (value 1)"),
        ([0, 2_000_000_000, 4_000_000_000], "scribbles", "'instances'"),
        ([0, 9, 30], "scribbles", "'dense'"),  # K = 30 from three values: a mask?
        ([1, 2, 3], "instances", "no background"),
        (list(range(60)), "dense", "60 distinct values"),
        ([7], "dense", "at least two values"),
        ([0, 1], "watershed", "unknown label mode"),
    ],
)
def test_refusals_name_the_annotations_and_what_to_do(values, mode, phrase) -> None:
    with pytest.raises(InputError) as err:
        interpret_labels(np.array(values), mode, what="'my layer'")
    assert phrase in str(err.value)
    if "mode" not in phrase:
        assert str(err.value).startswith("'my layer': ")


def test_distinct_values_of_several_arrays() -> None:
    found = distinct_values([np.array([[0, 3]]), np.array([True, False]), np.array([2.0, 3.0])])
    np.testing.assert_array_equal(found, [0, 1, 2, 3])
    with pytest.raises(InputError, match="whole numbers"):
        distinct_values([np.array([0.5])])


# ---------------------------------------------------------------------------- models
def test_open_model_says_where_it_came_from(tmp_path) -> None:
    new = open_model(ModelChoice.new("tiny"), in_channels=3, n_classes=4)
    assert (new.in_channels, new.n_classes) == (3, 4) and new.record.source == "new tiny U-Net"
    path = save_model(tmp_path / "x.pt", tiny())
    assert open_model(ModelChoice.file(path)).record.source == "file x.pt"
    kept = tiny()
    kept.record.source = "bundled:nuclei"
    assert open_model(ModelChoice.file(save_model(tmp_path / "y.pt", kept))).record.source == (
        "bundled:nuclei"
    )
    assert open_model(ModelChoice.bundled("nuclei")).record.source == "bundled:nuclei"
    with pytest.raises(InputError, match="no such model file"):
        open_model(ModelChoice.file(tmp_path / "missing.pt"))
    with pytest.raises(InputError, match="choose a model file"):
        open_model(ModelChoice.file(None))


def test_classes_for_training() -> None:
    assert classes_for_training(4, LabelPlan("scribbles", 2)) == 4  # keeps a larger K
    assert classes_for_training(2, LabelPlan("scribbles", 3)) == 3
    assert classes_for_training(3, LabelPlan("instances", 2)) == 2
    assert classes_for_training(3, LabelPlan("dense", 2, (0, 255))) == 2


def test_fit_model_replaces_only_the_head_and_records_dense_values() -> None:
    model = tiny(3)
    model.record.classes = Classes(names=["a", "b", "c"])
    encoder = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head")}
    notices = fit_model(model, LabelPlan("dense", 2, (0, 255)))
    assert model.n_classes == 2 and "new, untrained output layer" in notices[0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in encoder.items())
    assert model.record.classes.label_values == [0, 255]
    assert model.record.classes.names == ["value 0", "value 255"]
    assert fit_model(model, LabelPlan("dense", 2, (0, 255)), ["bg", "fg"]) == []
    assert model.record.classes.names == ["bg", "fg"]
    with pytest.raises(InputError, match="3 class names for 2 classes"):
        fit_model(model, LabelPlan("instances", 2), ["a", "b", "c"])


def test_object_channel_and_label_values_table() -> None:
    model = tiny(3)
    assert object_channel(model) is None
    assert object_channel(model, 3) == 2
    with pytest.raises(InputError, match="between 1 and 3"):
        object_channel(model, 4)
    two = tiny(2)
    two.record.classes = Classes(label_mode="instances")
    assert object_channel(two) == 1
    two.record.classes = Classes(names=["background", "nucleus"], label_mode="scribbles")
    assert object_channel(two) == 1
    assert label_values_table(two) is None
    two.record.classes = Classes(label_values=[0, 255])
    table = label_values_table(two)
    assert table.dtype == np.uint8 and table.tolist() == [0, 255]
    two.record.classes = Classes(label_values=[0, 1000])
    assert label_values_table(two).dtype == np.uint16


# ---------------------------------------------------------------------------- samples
def test_annotated_planes_leave_out_empty_planes() -> None:
    image = np.arange(3 * 2 * 8 * 8, dtype=np.float32).reshape(3, 2, 8, 8)  # Z, C, H, W
    labels = np.zeros((3, 8, 8), np.uint8)
    labels[0, 1, 1], labels[2, 2, 2] = 1, 2
    planes = list(annotated_planes(image, labels, channel_axis=1, name="s"))
    assert [p.name for p in planes] == ["s[0]", "s[2]"]
    np.testing.assert_array_equal(planes[1].image, image[2])
    with pytest.raises(InputError, match="does not match"):
        list(annotated_planes(image, labels[:, :4], channel_axis=1))


def test_samples_record_the_border_recipe_of_instances_only() -> None:
    rng = np.random.default_rng(0)
    cells = np.zeros((32, 32), np.uint16)
    cells[4:12, 4:12], cells[4:12, 13:20] = 1, 2  # two cells one pixel apart
    plane = AnnotatedPlane(rng.random((1, 32, 32)).astype(np.float32), cells)
    model = tiny()
    recipe = WeightRecipe(border=True, w0=7.0, sigma=3.0)
    (sample,) = training_samples(model, [plane], LabelPlan("instances", 2), recipe)
    assert model.record.weight_map == WeightMapRecipe(7.0, 3.0, False)
    assert sample.weight[8, 12] > 5  # the gap between the cells: w0 exp(-(1+1)^2/18) ~ 5.6
    other = tiny()
    training_samples(other, [plane], LabelPlan("scribbles", 2), recipe)
    assert other.record.weight_map is None
    with pytest.raises(InputError, match="no annotated pixels"):
        training_samples(tiny(), [], LabelPlan("scribbles", 2), WeightRecipe())
    with pytest.raises(InputError, match="sigma must be > 0"):
        WeightRecipe(sigma=0).validate()


def test_dense_sample_targets_and_shown_weight() -> None:
    labels = np.zeros((16, 16), np.uint8)
    labels[4:8, 4:8] = 255
    plane = AnnotatedPlane(np.random.default_rng(1).random((1, 16, 16)), labels)
    sample = sample_of(tiny(), plane, LabelPlan("dense", 2, (0, 255)), WeightRecipe())
    np.testing.assert_array_equal(sample.target, (labels == 255).astype(np.int64))
    scribbles = np.zeros((16, 16), np.uint8)
    scribbles[0, :4], scribbles[10, :4] = 1, 2
    plane = AnnotatedPlane(plane.image, scribbles)
    sample = sample_of(tiny(), plane, LabelPlan("scribbles", 2), WeightRecipe())
    assert (sample.target == IGNORE_INDEX).sum() == 256 - 8
    np.testing.assert_array_equal(shown_weight(sample) > 0, scribbles > 0)


# ---------------------------------------------------------------------------- prediction
def test_segment_labels_instances_and_annotation_values() -> None:
    from napari_unet.instances import instances_from_prediction

    model = tiny()
    model.record.classes = Classes(label_values=[0, 255])
    image = np.random.default_rng(2).random((40, 40)).astype(np.float32)
    options = InstanceOptions(object_class=2, threshold=0.4, min_size=2)
    result = segment(model, image, instances=options, probabilities=True)
    p = result.probabilities
    np.testing.assert_array_equal(result.classes, p.argmax(axis=0) + 1)
    np.testing.assert_array_equal(result.labels, np.where(result.classes == 2, 255, 0))
    expected = instances_from_prediction(p[1], threshold=0.4, min_size=2)
    np.testing.assert_array_equal(result.instances, expected)
    np.testing.assert_array_equal(annotation_labels(tiny(), result.classes), result.classes)


def test_prediction_options_are_checked() -> None:
    with pytest.raises(InputError, match="tile size"):
        PredictOptions(tile_size=0).validate()
    with pytest.raises(InputError, match="batch size"):
        PredictOptions(batch_size=0).validate()
    with pytest.raises(InputError, match="threshold"):
        InstanceOptions(threshold=1.5).validate()
    with pytest.raises(InputError, match="needs splitting"):
        InstanceOptions(split=False, seed_threshold=0.8).validate()
    with pytest.raises(InputError, match="at least two classes"):
        instance_channel(tiny(1), InstanceOptions(), asked=True)
    assert instance_channel(tiny(3), InstanceOptions(), asked=False) is None
    assert instance_channel(tiny(3), InstanceOptions(), asked=True) == 1
    assert instance_channel(tiny(3), None, asked=True) is None


def test_a_saved_dense_model_still_writes_its_values(tmp_path) -> None:
    model = tiny()
    fit_model(model, LabelPlan("dense", 2, (0, 255)))
    loaded = load_model(save_model(tmp_path / "d.pt", model))
    np.testing.assert_array_equal(annotation_labels(loaded, np.array([1, 2, 2])), [0, 255, 255])

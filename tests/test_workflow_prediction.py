"""napari_unet.workflow.prediction: p_k(x) -> classes, annotation values, instances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_unet.instances import instances_from_prediction
from napari_unet.unet.data import InputError
from napari_unet.unet.presets import build_model
from napari_unet.unet.record import Classes
from napari_unet.workflow import (
    InstanceOptions,
    PredictOptions,
    Segmentation,
    annotation_labels,
    instance_channel,
    segment,
    split_instances,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIDE = 48


def tiny(n_classes: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    return build_model("tiny", 1, n_classes)


def random_image(shape=(SIDE, SIDE), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.fixture(scope="module")
def two():
    """A K = 2 model, an image and its segmentation with p_k(x) and a_k(x)."""
    model = tiny(2)
    image = random_image()
    result = segment(model, image, probabilities=True, logits=True)
    return model, image, result


# ---------------------------------------------------------------------------- segment
def test_model_is_smaller_than_the_image_it_predicts(two) -> None:
    model, image, _ = two
    assert model.min_input_size > SIDE  # the tiles are padded: any image size works


def test_classes_are_the_argmax_of_p_plus_one(two) -> None:
    _, image, result = two
    assert isinstance(result, Segmentation)
    p = result.probabilities
    assert p.shape == (2, *image.shape) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-5)
    assert p.min() >= 0 and p.max() <= 1
    assert result.classes.shape == image.shape
    np.testing.assert_array_equal(result.classes, np.argmax(p, axis=0) + 1)
    assert set(np.unique(result.classes)) == {1, 2}  # both classes occur: a real check


def test_probabilities_are_the_softmax_of_the_logits(two) -> None:
    _, _, result = two
    expected = torch.softmax(torch.from_numpy(result.logits), dim=0).numpy()
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)


def test_labels_of_a_model_without_values_are_the_classes(two) -> None:
    _, _, result = two
    np.testing.assert_array_equal(result.labels, result.classes)
    assert result.instances is None


def test_nothing_is_returned_that_was_not_asked_for() -> None:
    result = segment(tiny(2), random_image(seed=1))
    assert result.probabilities is None and result.logits is None and result.instances is None
    assert result.classes.shape == (SIDE, SIDE)


def test_three_classes_and_a_stack() -> None:
    model = tiny(3, seed=1)
    image = random_image((2, SIDE, SIDE), seed=2)
    result = segment(model, image, probabilities=True)
    p = result.probabilities
    assert p.shape == (3, 2, SIDE, SIDE)
    np.testing.assert_array_equal(result.classes, np.argmax(p, axis=0) + 1)
    assert result.classes.shape == (2, SIDE, SIDE)


def test_annotation_labels_write_the_dense_values(two) -> None:
    model, image, result = two
    model.record.classes = Classes(label_values=[0, 255])
    try:
        dense = segment(model, image, probabilities=True)
    finally:
        model.record.classes = Classes()
    np.testing.assert_array_equal(dense.classes, result.classes)  # same network
    expected = np.where(dense.classes == 1, 0, 255)
    np.testing.assert_array_equal(dense.labels, expected)
    assert dense.labels.dtype == np.uint8
    assert (dense.labels == 0).sum() == (dense.classes == 1).sum()
    assert (dense.labels == 255).sum() == (dense.classes == 2).sum()
    assert set(np.unique(dense.labels)) == {0, 255}


def test_annotation_labels_by_hand() -> None:
    model = tiny(3)
    classes = np.array([[1, 2, 3], [3, 3, 1]], np.uint8)
    np.testing.assert_array_equal(annotation_labels(model, classes), classes)
    model.record.classes = Classes(label_values=[0, 128, 255])
    labels = annotation_labels(model, classes)
    np.testing.assert_array_equal(labels, [[0, 128, 255], [255, 255, 0]])
    assert labels.dtype == np.uint8
    model.record.classes = Classes(label_values=[5, 300, 70000])
    labels = annotation_labels(model, classes)
    np.testing.assert_array_equal(labels, [[5, 300, 70000], [70000, 70000, 5]])


# ---------------------------------------------------------------------------- instances
@pytest.mark.parametrize(
    "options",
    [
        InstanceOptions(object_class=2, threshold=0.5, min_size=3),
        InstanceOptions(object_class=2, threshold=0.4, min_size=1, split=False),
        InstanceOptions(object_class=1, threshold=0.4, min_size=3),
        InstanceOptions(object_class=2, threshold=0.3, min_size=2, seed_threshold=0.7),
    ],
)
def test_instances_are_those_of_the_chosen_channel(two, options) -> None:
    model, image, reference = two
    result = segment(model, image, instances=options, probabilities=True)
    p = result.probabilities
    np.testing.assert_array_equal(p, reference.probabilities)
    expected = instances_from_prediction(
        p[options.object_class - 1],
        threshold=options.threshold,
        split_touching=options.split,
        min_size=options.min_size,
        seed_threshold=options.seed_threshold,
    )
    assert expected.max() > 0  # some objects: the comparison means something
    np.testing.assert_array_equal(result.instances, expected)
    np.testing.assert_array_equal(split_instances(p[options.object_class - 1], options), expected)


def test_instances_of_an_instance_trained_model_use_its_cell_channel(two) -> None:
    model, image, reference = two
    model.record.classes = Classes(names=["background", "cell"], label_mode="instances")
    try:
        result = segment(model, image, instances=InstanceOptions(min_size=2))
    finally:
        model.record.classes = Classes()
    assert result.probabilities is None  # used for the instances, not returned
    expected = instances_from_prediction(reference.probabilities[1], threshold=0.5, min_size=2)
    np.testing.assert_array_equal(result.instances, expected)


def test_instances_of_a_stack_of_three_classes() -> None:
    model = tiny(3, seed=3)
    image = random_image((2, SIDE, SIDE), seed=4)
    options = InstanceOptions(object_class=3, threshold=0.3, min_size=1)
    result = segment(model, image, instances=options, probabilities=True)
    expected = instances_from_prediction(result.probabilities[2], threshold=0.3, min_size=1)
    assert result.instances.shape == (2, SIDE, SIDE)
    np.testing.assert_array_equal(result.instances, expected)


def test_instances_not_asked_and_no_object_class_gives_none() -> None:
    model = tiny(3)
    result = segment(model, random_image(), instances=InstanceOptions(), instances_asked=False)
    assert result.instances is None


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    "options",
    [
        PredictOptions(tile_size=0),
        PredictOptions(tile_size=-64),
        PredictOptions(tile_size=64.0),
        PredictOptions(tile_size=True),
        PredictOptions(tile_size="64"),
        PredictOptions(batch_size=0),
        PredictOptions(batch_size=2.0),
        PredictOptions(batch_size=True),
        PredictOptions(batch_size=None),
    ],
)
def test_predict_options_refusals(options) -> None:
    with pytest.raises(InputError, match="tile size|batch size"):
        options.validate()


def test_predict_options_accepted() -> None:
    PredictOptions().validate()
    PredictOptions(tile_size=1, batch_size=1).validate()
    PredictOptions(tile_size=256, batch_size=8).validate()


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        (InstanceOptions(threshold=0.0), "threshold must lie in \\(0, 1\\)"),
        (InstanceOptions(threshold=1.0), "threshold must lie in \\(0, 1\\)"),
        (InstanceOptions(threshold=1.5), "threshold must lie in \\(0, 1\\)"),
        (InstanceOptions(threshold=-0.2), "threshold must lie in \\(0, 1\\)"),
        (InstanceOptions(split=False, seed_threshold=0.8), "needs splitting on"),
        (InstanceOptions(seed_threshold=1.0), "seed threshold must lie above the threshold"),
        (InstanceOptions(seed_threshold=0.0), "seed threshold must lie above the threshold"),
    ],
)
def test_instance_options_refusals(options, phrase) -> None:
    with pytest.raises(InputError, match=phrase):
        options.validate()


def test_instance_options_accepted() -> None:
    InstanceOptions().validate()
    InstanceOptions(threshold=0.5, seed_threshold=0.9).validate()
    InstanceOptions(split=False, threshold=0.01).validate()


@pytest.mark.parametrize("seed", [0.3, 0.5])
def test_a_seed_threshold_not_above_the_threshold_is_refused(seed) -> None:
    with pytest.raises(InputError, match="seed threshold"):
        InstanceOptions(threshold=0.5, seed_threshold=seed).validate()


def test_segment_refuses_a_seed_threshold_below_the_threshold_as_input_error() -> None:
    options = InstanceOptions(object_class=2, threshold=0.6, seed_threshold=0.5)
    with pytest.raises(InputError, match="seed threshold"):
        segment(tiny(2), random_image(), instances=options)


def test_segment_checks_its_options_first() -> None:
    model = tiny(2)
    calls = []
    with pytest.raises(InputError, match="tile size"):
        segment(
            model,
            random_image(),
            options=PredictOptions(tile_size=0),
            progress=lambda *a: calls.append(a),
        )
    with pytest.raises(InputError, match="threshold"):
        segment(
            model,
            random_image(),
            instances=InstanceOptions(object_class=2, threshold=2.0),
            progress=lambda *a: calls.append(a),
        )
    assert calls == []  # refused before any tile was predicted


# ---------------------------------------------------------------------------- instance_channel
def test_instance_channel_rules() -> None:
    one, three = tiny(1), tiny(3)
    assert instance_channel(three, None, asked=True) is None  # no options: no instances
    assert instance_channel(three, InstanceOptions(), asked=False) is None
    assert instance_channel(three, InstanceOptions(), asked=True) == 1  # documented default
    assert instance_channel(three, InstanceOptions(object_class=3), asked=False) == 2
    assert instance_channel(three, InstanceOptions(object_class=1), asked=True) == 0
    with pytest.raises(InputError, match="between 1 and 3"):
        instance_channel(three, InstanceOptions(object_class=4), asked=True)
    with pytest.raises(InputError, match="at least two classes"):
        instance_channel(one, InstanceOptions(), asked=True)
    assert instance_channel(one, InstanceOptions(), asked=False) is None
    assert instance_channel(one, InstanceOptions(object_class=1), asked=True) == 0


def test_instance_channel_of_models_with_an_object_class() -> None:
    cells = tiny(2)
    cells.record.classes = Classes(label_mode="instances")
    assert instance_channel(cells, InstanceOptions(), asked=False) == 1
    nuclei = tiny(2)
    nuclei.record.classes = Classes(names=["background", "nucleus"])
    assert instance_channel(nuclei, InstanceOptions(), asked=False) == 1
    assert instance_channel(nuclei, InstanceOptions(object_class=1), asked=False) == 0

"""napari_unet.workflow.samples: annotated planes -> training samples and w(x)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_unet.unet.data import IGNORE_INDEX, InputError
from napari_unet.unet.presets import build_model
from napari_unet.unet.record import Normalization, WeightMapRecipe
from napari_unet.workflow import (
    AnnotatedPlane,
    LabelPlan,
    WeightRecipe,
    annotated_planes,
    sample_of,
    shown_weight,
    training_samples,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(n_classes: int = 2, in_channels: int = 1):
    torch.manual_seed(0)
    return build_model("tiny", in_channels, n_classes)


def raw_model(n_classes: int = 2, in_channels: int = 1):
    """A tiny model that takes raw values (normalisation 'none'): sample images = input."""
    model = tiny(n_classes, in_channels)
    model.record.normalization = Normalization("none", None, None)
    return model


def two_cells() -> np.ndarray:
    """Two 8x8 cells one background pixel apart (column 12) in a 32x32 image."""
    cells = np.zeros((32, 32), np.uint16)
    cells[4:12, 4:12] = 1
    cells[4:12, 13:21] = 7  # ids need not be consecutive
    return cells


def image_like(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, *labels.shape)).astype(np.float32)


# ---------------------------------------------------------------------------- planes
def test_a_2d_image_is_one_plane() -> None:
    image = np.arange(6 * 5, dtype=np.uint16).reshape(6, 5)
    labels = np.zeros((6, 5), np.uint8)
    labels[2, 3] = 1
    (plane,) = annotated_planes(image, labels, None, name="img.tif")
    assert plane.name == "img.tif"  # no index suffix for a single plane
    assert plane.image.shape == (1, 6, 5)
    np.testing.assert_array_equal(plane.image[0], image)
    np.testing.assert_array_equal(plane.labels, labels)


def test_a_2d_image_without_annotations_has_no_plane() -> None:
    assert list(annotated_planes(np.ones((6, 5)), np.zeros((6, 5), np.uint8), None)) == []


def test_a_stack_leaves_out_the_empty_plane() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((3, 10, 12)).astype(np.float32)  # Z, H, W
    labels = np.zeros((3, 10, 12), np.uint8)
    labels[0, 1, 1] = 2
    labels[2, 5:7, 3] = 1  # plane 1 has no annotated pixel
    planes = list(annotated_planes(image, labels, None, name="stack"))
    assert [p.name for p in planes] == ["stack[0]", "stack[2]"]
    for plane, z in zip(planes, (0, 2), strict=True):
        assert plane.image.shape == (1, 10, 12)
        np.testing.assert_array_equal(plane.image[0], image[z])
        np.testing.assert_array_equal(plane.labels, labels[z])


def test_a_4d_stack_names_every_index() -> None:
    image = np.zeros((2, 3, 8, 8), np.float32)  # T, Z, H, W
    labels = np.zeros((2, 3, 8, 8), np.uint8)
    labels[0, 2, 0, 0] = labels[1, 0, 4, 4] = labels[1, 1, 7, 7] = 1
    names = [p.name for p in annotated_planes(image, labels, None, name="t")]
    assert names == ["t[0,2]", "t[1,0]", "t[1,1]"]


def test_channel_axis_of_an_rgb_image() -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (9, 11, 3), dtype=np.uint8)
    labels = np.zeros((9, 11), np.uint8)
    labels[4, 4] = 1
    (plane,) = annotated_planes(rgb, labels, channel_axis=-1)
    assert plane.image.shape == (3, 9, 11)
    np.testing.assert_array_equal(plane.image, np.transpose(rgb, (2, 0, 1)))
    (same,) = annotated_planes(rgb, labels, channel_axis=2)
    np.testing.assert_array_equal(same.image, plane.image)


def test_channel_axis_of_a_stack() -> None:
    image = np.random.default_rng(2).random((2, 4, 6, 7))  # C, Z, H, W
    labels = np.zeros((4, 6, 7), np.uint8)
    labels[1, 0, 0] = labels[3, 5, 6] = 1
    planes = list(annotated_planes(image, labels, channel_axis=0, name="s"))
    assert [p.name for p in planes] == ["s[1]", "s[3]"]
    np.testing.assert_array_equal(planes[0].image, image[:, 1])
    np.testing.assert_array_equal(planes[1].image, image[:, 3])
    assert planes[1].image.shape == (2, 6, 7)


@pytest.mark.parametrize(
    ("image_shape", "labels_shape", "axis"),
    [
        ((10, 12), (10, 11), None),
        ((10, 12), (12, 10), None),
        ((3, 10, 12), (10, 12), None),  # a stack needs labels for every plane
        ((10, 12, 3), (10, 12, 3), -1),
        ((2, 10, 12), (2, 10, 12), 0),  # the channel axis is not spatial
    ],
)
def test_labels_of_another_shape_are_refused(image_shape, labels_shape, axis) -> None:
    labels = np.ones(labels_shape, np.uint8)
    with pytest.raises(InputError) as err:
        list(annotated_planes(np.zeros(image_shape), labels, axis, name="a.tif"))
    message = str(err.value)
    assert message.startswith("a.tif: ")
    assert f"labels shape {labels_shape}" in message and "does not match" in message


# ---------------------------------------------------------------------------- recipe
@pytest.mark.parametrize(
    ("recipe", "phrase"),
    [
        (WeightRecipe(w0=-1.0), "w0 must be a number >= 0"),
        (WeightRecipe(w0=math.nan), "w0 must be a number >= 0"),
        (WeightRecipe(w0=math.inf), "w0 must be a number >= 0"),
        (WeightRecipe(sigma=0.0), "sigma must be > 0"),
        (WeightRecipe(sigma=-2.0), "sigma must be > 0"),
        (WeightRecipe(sigma=math.nan), "sigma must be > 0"),
        (WeightRecipe(sigma=math.inf), "sigma must be > 0"),
    ],
)
def test_weight_recipe_refusals(recipe, phrase) -> None:
    with pytest.raises(InputError, match=phrase):
        recipe.validate()


def test_weight_recipe_accepts_w0_zero_and_records_what_it_was() -> None:
    WeightRecipe(border=True, w0=0.0, sigma=0.5).validate()
    recipe = WeightRecipe(border=True, w0=3, sigma=2, class_balance=True)
    assert recipe.record() == WeightMapRecipe(3.0, 2.0, True)
    model = tiny()
    assert WeightRecipe.recorded(model) is None
    model.record.weight_map = WeightMapRecipe(4.0, 6.0, False)
    assert WeightRecipe.recorded(model) == WeightRecipe(True, 4.0, 6.0, False)


def test_training_samples_validates_the_recipe_first() -> None:
    plane = AnnotatedPlane(image_like(two_cells()), two_cells())
    model = tiny()
    with pytest.raises(InputError, match="sigma"):
        training_samples(model, [plane], LabelPlan("instances", 2), WeightRecipe(True, sigma=0))
    assert model.record.weight_map is None


# ---------------------------------------------------------------------------- training_samples
@pytest.mark.parametrize(
    ("plan", "border", "recorded"),
    [
        (LabelPlan("instances", 2), True, WeightMapRecipe(7.0, 3.0, True)),
        (LabelPlan("instances", 2), False, None),
        (LabelPlan("scribbles", 7), True, None),
        (LabelPlan("dense", 2, (0, 1)), True, None),
    ],
)
def test_the_weight_map_is_recorded_for_instances_with_the_border_term(
    plan, border, recorded
) -> None:
    cells = two_cells()
    labels = (cells > 0).astype(np.uint8) if plan.mode == "dense" else cells
    plane = AnnotatedPlane(image_like(cells), labels, "p")
    model = tiny(plan.n_classes if plan.mode == "scribbles" else 2)
    recipe = WeightRecipe(border=border, w0=7.0, sigma=3.0, class_balance=True)
    samples = training_samples(model, [plane], plan, recipe)
    assert len(samples) == 1 and samples[0].name == "p"
    assert model.record.weight_map == recorded
    if recorded is not None:
        assert (model.record.weight_map.w0, model.record.weight_map.sigma) == (7.0, 3.0)


def expected_weight_map(cells: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """Eq. 2 with w_c = 1, computed directly: d1 <= d2 are the distances from a
    background pixel to the nearest and second-nearest cell; cells get w = 1."""
    ids = [i for i in np.unique(cells) if i != 0]
    dist = np.stack([ndimage.distance_transform_edt(cells != i) for i in ids])
    dist.sort(axis=0)
    d1, d2 = dist[0], dist[1]
    w = 1.0 + w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return np.where(cells > 0, 1.0, w)


def test_instance_samples_carry_the_papers_weight_map() -> None:
    cells = two_cells()
    plane = AnnotatedPlane(image_like(cells), cells)
    model = tiny()
    recipe = WeightRecipe(border=True, w0=7.0, sigma=3.0)
    (sample,) = training_samples(model, [plane], LabelPlan("instances", 2), recipe)
    assert model.record.weight_map == WeightMapRecipe(7.0, 3.0, False)
    np.testing.assert_array_equal(sample.target, (cells > 0).astype(np.int64))
    expected = expected_weight_map(cells, 7.0, 3.0)
    np.testing.assert_allclose(sample.weight, expected, rtol=1e-5, atol=2e-4)
    # the gap pixel between the cells: d1 = d2 = 1
    assert sample.weight[8, 12] == pytest.approx(1 + 7 * math.exp(-4 / 18), rel=1e-5)
    assert sample.weight.dtype == np.float32


def test_instances_without_the_border_term_weigh_one() -> None:
    cells = two_cells()
    plane = AnnotatedPlane(image_like(cells), cells)
    (sample,) = training_samples(tiny(), [plane], LabelPlan("instances", 2), WeightRecipe())
    np.testing.assert_array_equal(sample.weight, np.ones(cells.shape, np.float32))


def test_training_samples_of_several_planes_and_cancel() -> None:
    labels = np.zeros((3, 16, 16), np.uint8)
    labels[:, 0, :4], labels[:, 8, :4] = 1, 2
    image = np.random.default_rng(3).random((3, 16, 16))
    planes = list(annotated_planes(image, labels, None, name="z"))
    plan, recipe = LabelPlan("scribbles", 2), WeightRecipe()
    samples = training_samples(tiny(), planes, plan, recipe)
    assert [s.name for s in samples] == ["z[0]", "z[1]", "z[2]"]
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) >= 2

    stopped = training_samples(tiny(), planes, plan, recipe, cancelled)
    assert [s.name for s in stopped] == ["z[0]", "z[1]"]


def test_training_samples_without_a_plane_is_refused() -> None:
    model = tiny()
    with pytest.raises(InputError, match="no annotated pixels"):
        training_samples(model, [], LabelPlan("instances", 2), WeightRecipe(border=True))
    assert model.record.weight_map is None


# ---------------------------------------------------------------------------- sample_of
def test_dense_targets_are_the_class_index_of_each_value() -> None:
    plan = LabelPlan("dense", 3, (0, 128, 255))
    labels = np.zeros((12, 12), np.uint8)
    labels[2:5, 2:9] = 128
    labels[7:10, 1:4] = 255
    labels[11, 11] = 255
    image = image_like(labels, seed=4)
    sample = sample_of(raw_model(3), AnnotatedPlane(image, labels), plan, WeightRecipe())
    expected = np.zeros((12, 12), np.int64)  # value 0 -> class index 0
    expected[labels == 128] = 1
    expected[labels == 255] = 2
    np.testing.assert_array_equal(sample.target, expected)
    np.testing.assert_array_equal(
        sample.target, np.searchsorted(np.array(plan.label_values), labels)
    )
    assert sample.target.dtype == np.int64
    assert sample.n_annotated == 144  # every pixel of a dense mask is annotated
    np.testing.assert_array_equal(sample.image, image)  # normalisation "none"
    np.testing.assert_array_equal(shown_weight(sample), np.ones((12, 12), np.float32))


def test_scribble_targets_and_ignored_pixels() -> None:
    labels = np.zeros((10, 10), np.uint8)
    labels[1, 1:5] = 1
    labels[6:8, 6] = 3
    sample = sample_of(
        raw_model(3),
        AnnotatedPlane(image_like(labels), labels),
        LabelPlan("scribbles", 3),
        WeightRecipe(),
    )
    expected = np.full((10, 10), IGNORE_INDEX, np.int64)
    expected[1, 1:5] = 0
    expected[6:8, 6] = 2
    np.testing.assert_array_equal(sample.target, expected)
    assert sample.n_annotated == 6


def test_sample_images_use_the_models_normalisation() -> None:
    labels = np.zeros((20, 20), np.uint8)
    labels[0, 0], labels[1, 1] = 1, 2
    image = np.arange(400, dtype=np.float64).reshape(1, 20, 20)
    model = tiny()
    model.record.normalization = Normalization("percentile", 0.0, 100.0)
    sample = sample_of(
        model, AnnotatedPlane(image, labels), LabelPlan("scribbles", 2), WeightRecipe()
    )
    np.testing.assert_allclose(sample.image, image / 399.0, atol=1e-6)
    assert sample.image.dtype == np.float32


def test_sample_of_a_plane_without_annotations_names_the_plane() -> None:
    labels = np.zeros((8, 8), np.uint8)
    plane = AnnotatedPlane(np.zeros((1, 8, 8)), labels, "stack[3]")
    with pytest.raises(InputError, match=r"^stack\[3\]: .*no annotations"):
        sample_of(tiny(), plane, LabelPlan("scribbles", 2), WeightRecipe())


def test_sample_of_refuses_the_wrong_number_of_channels() -> None:
    labels = np.ones((8, 8), np.uint8)
    plane = AnnotatedPlane(np.zeros((2, 8, 8)), labels, "rgb?")
    with pytest.raises(InputError, match=r"^rgb\?: .*1 channel"):
        sample_of(tiny(in_channels=1), plane, LabelPlan("scribbles", 2), WeightRecipe())


# ---------------------------------------------------------------------------- shown_weight
def test_shown_weight_is_zero_where_not_annotated() -> None:
    labels = np.zeros((10, 10), np.uint8)
    labels[0, :6] = 1  # 6 pixels of class 1
    labels[5, :2] = 2  # 2 pixels of class 2
    plane = AnnotatedPlane(image_like(labels), labels)
    sample = sample_of(tiny(), plane, LabelPlan("scribbles", 2), WeightRecipe())
    shown = shown_weight(sample)
    np.testing.assert_array_equal(shown, np.where(labels > 0, 1.0, 0.0))
    assert shown.dtype == np.float32
    assert (sample.target == IGNORE_INDEX).sum() == 100 - 8

    balanced = sample_of(
        tiny(), plane, LabelPlan("scribbles", 2), WeightRecipe(class_balance=True)
    )
    # w_c = N / (K N_c): 8 / (2 * 6) for class 1, 8 / (2 * 2) for class 2
    expected = np.zeros((10, 10))
    expected[labels == 1] = 8 / 12
    expected[labels == 2] = 8 / 4
    np.testing.assert_allclose(shown_weight(balanced), expected, rtol=1e-6)


def test_shown_weight_hides_a_weight_the_sample_has_at_ignored_pixels() -> None:
    labels = np.zeros((6, 6), np.uint8)
    labels[0, 0], labels[5, 5] = 1, 2
    sample = sample_of(
        tiny(),
        AnnotatedPlane(image_like(labels), labels),
        LabelPlan("scribbles", 2),
        WeightRecipe(),
    )
    sample.weight = np.full((6, 6), 3.0, np.float32)
    shown = shown_weight(sample)
    assert shown[0, 0] == 3.0 and shown[5, 5] == 3.0
    assert shown.sum() == 6.0

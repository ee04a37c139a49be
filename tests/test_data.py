import numpy as np
import pytest

from napari_unet.unet.data import (
    InputError,
    as_channels_first,
    class_to_label,
    labels_to_target,
    normalize,
    prepare_sample,
)


def test_scribble_labels_to_target():
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    assert labels_to_target(labels).tolist() == [[-1, 0], [1, 2]]
    # predicted class index k comes back as the same label value k + 1
    assert class_to_label(np.array([[0, 1], [2, 0]])).tolist() == [[1, 2], [3, 1]]


def test_instance_labels_to_target():
    labels = np.array([[0, 5], [70000, 0]], np.uint32)
    assert labels_to_target(labels, "instances").tolist() == [[0, 1], [1, 0]]


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([[0.5, 1.0]]), "whole numbers"),
        (np.array([[-1, 1]]), "negative"),
        (np.array([[np.nan, 1.0]]), "whole numbers"),
    ],
)
def test_bad_labels(labels, message):
    with pytest.raises(InputError, match=message):
        labels_to_target(labels)


def test_float_whole_labels_accepted_and_shape_checked():
    assert labels_to_target(np.array([[1.0, 2.0]])).tolist() == [[0, 1]]
    with pytest.raises(InputError, match="does not match"):
        labels_to_target(np.zeros((3, 3), np.uint8), image_shape=(3, 4))


def test_percentile_normalisation_by_hand():
    x = np.arange(101, dtype=np.float32).reshape(1, 1, 101)
    out = normalize(x, {"method": "percentile", "low": 10, "high": 90})
    # the 10th percentile (10) maps to 0, the 90th (90) to 1
    assert out[0, 0, 10] == pytest.approx(0) and out[0, 0, 90] == pytest.approx(1)
    assert out.dtype == np.float32


def test_constant_and_nan_images():
    out = normalize(np.full((1, 4, 4), 7.0))
    assert np.isfinite(out).all() and np.all(out == 0)
    bad = np.zeros((1, 4, 4))
    bad[0, 0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        normalize(bad)


def test_uint16_and_float64_ranges_give_same_normalised_image():
    rng = np.random.default_rng(0)
    base = rng.random((1, 20, 20))
    a = normalize((base * 60000).astype(np.uint16).astype(np.float64))
    b = normalize(base * 60000)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_channels_first_layouts():
    assert as_channels_first(np.zeros((5, 6)), None, 1).shape == (1, 5, 6)
    assert as_channels_first(np.zeros((2, 5, 6)), None, 1).shape == (2, 1, 5, 6)
    assert as_channels_first(np.zeros((5, 6, 3)), -1, 3).shape == (3, 5, 6)
    assert as_channels_first(np.zeros((2, 5, 6)), 0, 2).shape == (2, 5, 6)
    with pytest.raises(InputError, match="expects 1 channel"):
        as_channels_first(np.zeros((5, 6, 3)), -1, 1)
    with pytest.raises(InputError, match="at least 2D"):
        as_channels_first(np.zeros(5), None, 1)
    with pytest.raises(InputError, match="numeric"):
        as_channels_first(np.array([["a"]]), None, 1)


def test_prepare_sample_weights():
    labels = np.zeros((10, 10), np.uint8)
    labels[0, :8] = 1
    labels[9, :2] = 2
    s = prepare_sample(np.random.default_rng(0).random((10, 10)), labels, class_balance=True)
    # w_c = N / (K * N_c): 10 annotated pixels, 8 of class 1, 2 of class 2
    assert s.weight[0, 0] == pytest.approx(10 / (2 * 8))
    assert s.weight[9, 0] == pytest.approx(10 / (2 * 2))
    assert s.n_annotated == 10
    with pytest.raises(InputError, match="2D"):
        prepare_sample(np.zeros((2, 10, 10)), np.ones((2, 10, 10), np.uint8))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_labels_from_logits_is_argmax_plus_one_first_channel_winning_ties(k):
    from napari_unet.unet.data import labels_from_logits

    rng = np.random.default_rng(k)
    logits = rng.integers(-2, 3, size=(k, 7, 9)).astype(np.float32)  # many ties
    labels = labels_from_logits(logits)
    assert labels.dtype == np.uint8 and labels.shape == (7, 9)
    np.testing.assert_array_equal(labels, np.argmax(logits, axis=0) + 1)
    if k > 1:
        tie = np.zeros((k, 2, 2), np.float32)  # all equal: channel 0, label 1
        np.testing.assert_array_equal(labels_from_logits(tie), 1)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32])
def test_percentile_normalisation_of_far_apart_integer_values_matches_float64(dtype):
    # two levels at the ends of the type's range: interpolating percentiles in a signed
    # integer dtype would wrap around
    info = np.iinfo(dtype)
    hi, lo = min(int(info.max), 30000), max(int(info.min), -30000) if info.min < 0 else 0
    img = np.full((1, 3, 17), hi, dtype)
    img[0, 0, 0] = lo  # the 1st percentile interpolates between lo and hi
    x = img.astype(np.float64)
    p_lo, p_hi = np.percentile(x, [1, 99.8])
    expected = (x - p_lo) / (p_hi - p_lo) if p_hi > p_lo else x - p_lo
    np.testing.assert_allclose(normalize(img), expected, rtol=1e-6, atol=1e-6)

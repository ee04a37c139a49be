"""Tests of the augmentation of the paper (section 3.1): elastic, flips, rotations."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from napari_unet.unet.augment import (
    augment_tile,
    elastic_deform,
    flip_rotate,
    intensity_jitter,
    random_displacement_field,
    sample_bicubic,
    sample_nearest,
)
from napari_unet.unet.tiling import mirror_indices


def make_tile(h: int = 40, w: int = 40, c: int | None = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (h, w) if c is None else (c, h, w)
    image = rng.normal(size=shape).astype(np.float32)
    labels = rng.integers(-1, 3, size=(h, w)).astype(np.int64)
    weight = rng.uniform(0.5, 10.0, size=(h, w)).astype(np.float32)
    return image, labels, weight


# --- displacement field --------------------------------------------------------------


def test_field_shape_dtype_and_std_at_control_points():
    rng = np.random.default_rng(0)
    fields = np.stack([random_displacement_field((21, 21), rng) for _ in range(1000)])
    assert fields.shape == (1000, 2, 21, 21) and fields.dtype == np.float32
    control = fields[:, :, ::10, ::10]  # 3x3 grid: corners, edge midpoints, centre
    assert control.std() == pytest.approx(10.0, abs=0.3)
    assert abs(control.mean()) < 0.3
    # each control point on its own: std 10 (36000 samples in all, 2000 per point)
    np.testing.assert_allclose(control.std(axis=0), 10.0, atol=0.8)
    # smooth: neighbouring pixels move almost together
    assert np.abs(np.diff(fields, axis=-1)).mean() < 2.0


def test_field_is_bicubic_interpolation_of_control_points():
    field = random_displacement_field((21, 31), np.random.default_rng(5), sigma=4.0)
    control = field[:, ::10, ::15].astype(np.float64)  # the 3x3 drawn vectors
    yy, xx = np.mgrid[:21, :31]
    coords = np.stack([yy * 2 / 20, xx * 2 / 30])
    for c in range(2):
        ref = ndimage.map_coordinates(control[c], coords, order=3, mode="mirror")
        np.testing.assert_allclose(field[c], ref, atol=1e-4)


def test_field_sigma_and_grid_arguments():
    rng = np.random.default_rng(1)
    small = np.stack(
        [random_displacement_field((9, 9), rng, grid=5, sigma=2.0) for _ in range(500)]
    )
    assert small[:, :, ::2, ::2].std() == pytest.approx(2.0, abs=0.1)


# --- elastic deformation -------------------------------------------------------------


def keys_reference(image: np.ndarray, y: float, x: float, a: float = -0.75) -> float:
    """Bicubic convolution (Keys 1981) at one point, taps mirrored: written out by hand."""

    def kernel(t: float) -> float:
        t = abs(t)
        if t <= 1:
            return (a + 2) * t**3 - (a + 3) * t**2 + 1
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0.0

    fy, fx = int(np.floor(y)), int(np.floor(x))
    h, w = image.shape
    total = 0.0
    for i in range(fy - 1, fy + 3):
        for j in range(fx - 1, fx + 3):
            r = mirror_indices(i, i + 1, h)[0]
            c = mirror_indices(j, j + 1, w)[0]
            total += kernel(y - i) * kernel(x - j) * image[r, c]
    return total


def test_sample_bicubic_matches_hand_written_keys_convolution():
    rng = np.random.default_rng(5)
    image = rng.normal(size=(2, 9, 13)).astype(np.float32)
    # inside, near the border and far outside (mirrored more than once)
    coords = np.stack(
        [rng.uniform(-20, 30, size=(6, 7)), rng.uniform(-25, 40, size=(6, 7))]
    ).astype(np.float32)
    got = sample_bicubic(image, coords)
    assert got.shape == (2, 6, 7) and got.dtype == np.float32
    for c in range(2):
        for y in range(6):
            for x in range(7):
                ref = keys_reference(image[c], coords[0, y, x], coords[1, y, x])
                assert got[c, y, x] == pytest.approx(ref, abs=1e-4)
    # integer positions reproduce the pixels (an interpolating kernel), 1-pixel axes too
    grid = np.indices((9, 13), dtype=np.float32)
    np.testing.assert_allclose(sample_bicubic(image, grid), image, atol=1e-5)
    line = image[:, :1, :]
    coords = np.stack([np.full((1, 13), 3.7), np.arange(13.0)[None]]).astype(np.float32)
    np.testing.assert_allclose(sample_bicubic(line, coords), line, atol=1e-5)


def test_sample_nearest_mirrors_or_fills_and_keeps_values():
    labels = np.arange(12).reshape(3, 4)
    coords = np.array([[[0.4, -1.0, 3.2]], [[2.6, 0.0, 5.0]]])  # rows, cols
    # (0, 3) | row -1 -> 1, col 0 | row 3 -> 1, col 5 -> 1
    np.testing.assert_array_equal(sample_nearest(labels, coords), [[3, 4, 5]])
    np.testing.assert_array_equal(sample_nearest(labels, coords, fill=-1), [[3, -1, -1]])
    assert sample_nearest(labels.astype(np.int16), coords, fill=-1).dtype == np.int16
    # a fill that does not fit the dtype promotes it instead of wrapping around (255)
    got = sample_nearest(labels.astype(np.uint8), coords, fill=-1)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, [[3, -1, -1]])


def test_zero_field_is_identity():
    image, labels, weight = make_tile()
    out = elastic_deform(image, labels, weight, field=np.zeros((2, 40, 40)))
    for got, ref in zip(out, (image, labels, weight), strict=True):
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)
        assert got is not ref


def test_constant_field_shifts_by_two_pixels():
    image, labels, weight = make_tile(30, 36)
    field = np.zeros((2, 30, 36), dtype=np.float32)
    field[1] = 2.0  # out[y, x] = in[y, x + 2]
    out_image, out_labels, out_weight = elastic_deform(image, labels, weight, field=field)
    np.testing.assert_allclose(out_image[:, :, :-2], image[:, :, 2:], atol=1e-5)
    np.testing.assert_array_equal(out_labels[:, :-2], labels[:, 2:])
    np.testing.assert_array_equal(out_weight[:, :-2], weight[:, 2:])
    # and -3 px in y
    field = np.zeros((2, 30, 36))
    field[0] = -3.0
    out_image, out_labels, _ = elastic_deform(image, labels, field=field)
    np.testing.assert_allclose(out_image[:, 3:], image[:, :-3], atol=1e-5)
    np.testing.assert_array_equal(out_labels[3:], labels[:-3])


def test_elastic_preserves_label_values_shapes_and_dtypes():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(50, 60)).astype(np.uint8)  # 2D, integer
    labels = rng.choice(np.array([-1, 0, 3, 7], dtype=np.int32), size=(50, 60))
    weight = rng.uniform(size=(50, 60))  # float64
    out_image, out_labels, out_weight = elastic_deform(image, labels, weight, rng=rng)
    assert out_image.shape == (50, 60) and out_image.dtype == np.uint8
    assert out_labels.dtype == np.int32 and out_weight.dtype == np.float64
    assert set(np.unique(out_labels)) <= {-1, 0, 3, 7}
    assert set(np.unique(out_weight)) <= set(np.unique(weight))
    assert not np.array_equal(out_labels, labels)  # it did deform

    image3, labels3, _ = make_tile(c=3)
    out3, lab3, none = elastic_deform(image3, labels3, rng=np.random.default_rng(0))
    assert out3.shape == image3.shape and out3.dtype == np.float32 and none is None
    assert set(np.unique(lab3)) <= set(np.unique(labels3))


def test_elastic_labels_and_weight_follow_the_same_field():
    image, labels, weight = make_tile()
    same_as_labels = labels.astype(np.float32)  # the weight channel carries the labels
    _, out_labels, out_weight = elastic_deform(
        image, labels, same_as_labels, rng=np.random.default_rng(9)
    )
    np.testing.assert_array_equal(out_weight, out_labels.astype(np.float32))


def test_elastic_rejects_mismatched_shapes():
    image, labels, _ = make_tile()
    with pytest.raises(ValueError, match="labels"):
        elastic_deform(image, labels[:-1])
    with pytest.raises(ValueError, match="field"):
        elastic_deform(image, field=np.zeros((2, 10, 10)))


def test_elastic_speed():
    image, labels, weight = make_tile(284, 284, c=1)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        elastic_deform(image, labels, weight, rng=rng)
        times.append(time.perf_counter() - t)
    assert min(times) < 0.06  # goal < 30 ms (about 11 ms measured on 2 cores)


# --- flips, rotations, intensity -----------------------------------------------------


def test_flip_rotate_same_transform_for_all_arrays():
    labels = np.arange(5 * 5).reshape(5, 5)  # no symmetry: all 8 transforms differ
    image = labels.astype(np.float32)[None]  # (1, H, W) with a channel axis
    seen = set()
    for seed in range(64):
        out_image, out_labels, none = flip_rotate(
            [image, labels, None], np.random.default_rng(seed)
        )
        assert none is None
        assert out_image.shape == (1, 5, 5) and out_image.dtype == np.float32
        assert out_labels.shape == (5, 5) and out_labels.dtype == labels.dtype
        assert out_image.flags.c_contiguous and out_labels.flags.c_contiguous
        np.testing.assert_array_equal(out_image[0], out_labels)
        seen.add(out_labels.tobytes())
    assert len(seen) == 8


def test_flip_rotate_returns_copies():
    a = np.arange(16.0).reshape(4, 4)
    for seed in range(16):
        (out,) = flip_rotate([a], np.random.default_rng(seed))
        out[0, 0] = -1
    np.testing.assert_array_equal(a, np.arange(16.0).reshape(4, 4))


def test_intensity_jitter_bounds():
    image = np.ones((2, 8, 8), dtype=np.float64)
    for seed in range(20):
        out = intensity_jitter(image, np.random.default_rng(seed), scale=0.1, shift=0.05)
        assert out.dtype == np.float32 and out.shape == image.shape
        assert np.all(out == out.flat[0])  # one scale and shift per call
        assert 1 - 0.15 <= out.flat[0] <= 1 + 0.15
    np.testing.assert_array_equal(
        intensity_jitter(image, np.random.default_rng(0), scale=0.0, shift=0.0), image
    )


# --- the whole pipeline --------------------------------------------------------------


def test_augment_tile_reproducible_with_seed():
    image, labels, weight = make_tile(32, 32)
    a = augment_tile(image, labels, weight, np.random.default_rng(42))
    b = augment_tile(image, labels, weight, np.random.default_rng(42))
    c = augment_tile(image, labels, weight, np.random.default_rng(43))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == image.shape and a[0].dtype == np.float32
    assert a[1].dtype == labels.dtype and a[2].dtype == weight.dtype
    assert set(np.unique(a[1])) <= set(np.unique(labels))


def test_augment_tile_switches_and_none():
    image, labels, weight = make_tile(20, 26, c=None)
    out = augment_tile(image, labels, weight, np.random.default_rng(0), False, False, False)
    for got, ref in zip(out, (image, labels, weight), strict=True):
        np.testing.assert_array_equal(got, ref)
    out_image, out_labels, out_weight = augment_tile(image, None, None, np.random.default_rng(0))
    assert out_labels is None and out_weight is None
    assert out_image.shape in {(20, 26), (26, 20)}
    # non-square: image and labels stay aligned through the rotation
    out_image, out_labels, _ = augment_tile(
        labels.astype(np.float32), labels, None, np.random.default_rng(3), intensity=False
    )
    assert out_image.shape == out_labels.shape

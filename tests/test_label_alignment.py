"""Sub-pixel registration of annotations to their image (label_alignment.py)."""

import numpy as np
import pytest

from napari_unet.label_alignment import align_image, estimate_label_offset

CENTRES = [(20.3, 30.1), (45.7, 70.2), (80.0, 25.5), (64.4, 50.9), (30.2, 90.6)]


def _blobs(shape=(112, 120), offset=(0.0, 0.0), radius=6.0):
    """Image of soft bright disks at CENTRES; mask of the same disks drawn at centre + offset."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    image = np.zeros(shape)
    mask = np.zeros(shape, bool)
    for cy, cx in CENTRES:
        r_image = np.hypot(yy - cy, xx - cx)
        image += 1.0 / (1.0 + np.exp(2.0 * (r_image - radius)))
        mask |= np.hypot(yy - cy - offset[0], xx - cx - offset[1]) < radius
    return image, mask


@pytest.mark.parametrize(
    "offset", [(0.0, 0.0), (0.5, -0.25), (-0.75, 0.375), (0.3, -0.45), (-0.17, 0.61)]
)
def test_recovers_a_known_offset(offset):
    pairs = [_blobs(offset=offset), _blobs(shape=(101, 130), offset=offset)]
    found = estimate_label_offset([p[0] for p in pairs], [p[1] for p in pairs])
    # off the 1/16 search grid too: within a grid step and the error of a binary disk
    assert found == pytest.approx(offset, abs=0.07)


def test_polarity_does_not_matter():
    image, mask = _blobs(offset=(-0.5, 0.5))
    found = estimate_label_offset([-image + 3.0], [mask])  # dark objects on bright
    assert found == pytest.approx((-0.5, 0.5), abs=0.07)
    # one bright-object image and one dark-object image together
    other, other_mask = _blobs(shape=(101, 130), offset=(-0.5, 0.5))
    found = estimate_label_offset([image, -other], [mask, other_mask])
    assert found == pytest.approx((-0.5, 0.5), abs=0.07)


def test_align_image_moves_structures_by_the_offset():
    image, _ = _blobs()
    moved = align_image(image, (0.5, -0.25))
    # intensity-weighted centre of the first blob, before and after
    window = (slice(8, 33), slice(18, 43))
    yy, xx = np.mgrid[window]

    def centre(img):
        w = img[window]
        return (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()

    (y0, x0), (y1, x1) = centre(image), centre(moved)
    assert (y1 - y0, x1 - x0) == pytest.approx((0.5, -0.25), abs=0.02)
    assert moved.dtype == np.float32
    assert moved.shape == image.shape


def test_aligned_training_data_agrees_with_the_annotations():
    """After align_image, the annotations sit on the image: the estimated offset is ~0."""
    image, mask = _blobs(offset=(0.5, 0.375))
    offset = estimate_label_offset([image], [mask])
    residual = estimate_label_offset([align_image(image, offset)], [mask])
    assert residual == pytest.approx((0.0, 0.0), abs=0.07)


def test_channels_shift_alike_first_or_last():
    image, _ = _blobs()
    alone = align_image(image, (0.25, 0.5))
    first = align_image(np.stack([image, 2 * image]), (0.25, 0.5), channel_axis=0)
    last = align_image(np.stack([image, 2 * image], axis=-1), (0.25, 0.5), channel_axis=-1)
    np.testing.assert_allclose(first[0], alone, atol=1e-6)
    np.testing.assert_allclose(first[1], 2 * alone, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.moveaxis(last, -1, 0), first, atol=1e-6)
    with pytest.raises(ValueError, match="channel_axis"):
        align_image(np.stack([image, image], axis=-1), (0.25, 0.5))


@pytest.mark.parametrize(
    "images, masks, message",
    [
        ([], [], "at least one image"),
        ([np.zeros((8, 8))], [np.zeros((8, 9), bool)], "mask of its shape"),
        ([np.full((8, 8), np.nan)], [np.zeros((8, 8), bool)], "NaN"),
        ([np.zeros((2, 8, 8))], [np.zeros((2, 8, 8), bool)], "2-D"),
        ([np.zeros((8, 8))], [np.zeros((8, 8), bool)], "flat"),
    ],
)
def test_bad_input_is_refused(images, masks, message):
    with pytest.raises(ValueError, match=message):
        estimate_label_offset(images, masks)
    image, mask = _blobs()
    with pytest.raises(ValueError, match="positive"):
        estimate_label_offset([image], [mask], max_shift=-1.0)

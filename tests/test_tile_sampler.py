"""The training tile sampler: where tiles come from, what the target crop holds."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from napari_unet import UNet, prepare_sample
from napari_unet.unet.data import IGNORE_INDEX
from napari_unet.unet.training import TileSampler, training_tile_sizes


def _blocks(h: int, w: int, size: int = 3) -> np.ndarray:
    """Labels 1/2 in a checkerboard of size x size blocks: a one-pixel shift shows."""
    yy, xx = np.indices((h, w))
    return (((yy // size) + (xx // size)) % 2 + 1).astype(np.uint8)


def _sampler(labels: np.ndarray, augment: bool, elastic: bool = True, seed: int = 0):
    model = UNet(depth=2, base_channels=4)
    tile_in, tile_out = training_tile_sizes(model, 24)
    # the image *is* the class index, so the input tile can be read back as labels
    image = labels.astype(np.float32) - 1
    sample = prepare_sample(image, labels, normalization={"method": "none"})
    return TileSampler([sample], tile_in, tile_out, np.random.default_rng(seed), augment, elastic)


def _centre(sampler: TileSampler, image: np.ndarray) -> np.ndarray:
    off = (sampler.tile_in - sampler.tile_out) // 2
    return image[0, off : off + sampler.tile_out, off : off + sampler.tile_out]


@pytest.mark.parametrize("augment,elastic", [(False, False), (True, False), (True, True)])
def test_target_crop_lies_under_the_centre_of_the_input_tile(augment, elastic):
    sampler = _sampler(_blocks(60, 70), augment, elastic)
    assert (sampler.tile_in - sampler.tile_out) % 2 == 0
    for _ in range(10):
        x, t, w = (a.numpy() for a in sampler.batch(1))
        assert x.shape == (1, 1, sampler.tile_in, sampler.tile_in)
        assert t.shape == w.shape == (1, sampler.tile_out, sampler.tile_out)
        annotated = t[0] != IGNORE_INDEX
        centre = _centre(sampler, x[0])
        if augment:  # intensity jitter: undo the scale and shift with the two levels
            lo, hi = np.percentile(centre[annotated], [5, 95])
            centre = (centre - lo) / max(hi - lo, 1e-6)
        if not elastic:
            np.testing.assert_allclose(centre[annotated], t[0][annotated], atol=1e-5)
        else:  # bicubic between blocks differs at their edges, not inside them
            agree = np.abs(centre[annotated] - t[0][annotated]) < 0.25
            assert agree.mean() > 0.6
        assert np.all(w[0][annotated] == 1) and np.all(w[0][~annotated] == 0)


def test_target_outside_the_image_is_not_annotated():
    labels = _blocks(12, 12)
    sampler = _sampler(labels, augment=False)
    x, t, _ = sampler.batch(8)
    # a 12 x 12 image cannot fill a larger output tile: the rest is ignored, never mirrored
    n_real = (t != IGNORE_INDEX).sum(axis=(1, 2))
    assert sampler.tile_out > 12 and np.all(n_real.numpy() <= 144)
    assert set(np.unique(t.numpy())) <= {IGNORE_INDEX, 0, 1}


def _full_rows(target: np.ndarray) -> list[tuple]:
    """The rows of a target tile that lie wholly inside the image."""
    return [tuple(r) for r in target if np.all(r != IGNORE_INDEX)]


def test_elastic_tiles_are_deformed_and_seeded():
    labels = _blocks(300, 300)
    a = [t.numpy() for t in _sampler(labels, True, seed=1).batch(8)]
    b = [t.numpy() for t in _sampler(labels, True, seed=1).batch(8)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    # rows of a straight checkerboard (even rotated or flipped) take 2 patterns; deformed
    # block edges bend, so the rows of an elastic tile take many
    straight = _sampler(labels, True, elastic=False, seed=1).batch(8)[1].numpy()
    assert all(len(set(_full_rows(t))) <= 2 for t in straight)
    inside = [rows for rows in map(_full_rows, a[1]) if len(rows) >= 12]
    assert len(inside) >= 4
    assert all(len(set(rows)) > 4 for rows in inside)
    assert set(np.unique(a[1])) <= {IGNORE_INDEX, 0, 1}


def test_flips_can_be_switched_off_to_keep_the_orientation():
    model = UNet(depth=2, base_channels=4)
    tile_in, tile_out = training_tile_sizes(model, 24)
    ramp = np.tile(np.arange(300, dtype=np.float32), (300, 1))  # grows along x
    labels = np.zeros((300, 300), np.uint8)  # annotated in the middle: no mirrored tiles
    labels[120:180, 120:180] = 1
    labels[120:180:7, 120:180] = 2
    sample = prepare_sample(ramp, labels, normalization={"method": "none"})

    def grows_along_x(flips: bool) -> list[bool]:
        sampler = TileSampler([sample], tile_in, tile_out, np.random.default_rng(0),
                              augment=True, elastic=False, flips=flips)  # fmt: skip
        x = sampler.batch(16)[0].numpy()[:, 0]
        return [bool(np.all(np.diff(t, axis=1) > 0)) for t in x]

    assert all(grows_along_x(False))
    assert not all(grows_along_x(True))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority: Linux")
def test_the_batch_producer_runs_at_the_lowest_priority_and_the_caller_does_not():
    import os
    import threading

    from napari_unet.unet.training import BatchPrefetcher

    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if caller >= 19:
        pytest.skip("the tests already run at the lowest priority: nothing to observe")
    prefetcher = BatchPrefetcher(_sampler(_blocks(60, 70), augment=True), batch_size=2)
    try:
        x, t, w = prefetcher.get()  # the producer has started and made a batch
        assert x.shape[0] == t.shape[0] == w.shape[0] == 2
        assert os.getpriority(os.PRIO_PROCESS, prefetcher.native_id) == 19
    finally:
        prefetcher.close()
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller


# ---------------------------------------------------------------------------- w(x) with l(x)
def _position_coded(h: int, w: int):
    """A sample whose class is the pixel's own index, l(x) = y * w + x, and whose weight is
    w(x) = 1 + l(x): a non-constant weight map that names, at every pixel, the target pixel
    it belongs to. Any weight sampled at another pixel than its target shows as a mismatch,
    and the target tile tells where in the image each output pixel came from."""
    from napari_unet import TrainingSample

    target = np.arange(h * w, dtype=np.int64).reshape(h, w)
    image = np.random.default_rng(0).random((1, h, w), dtype=np.float32)
    weight = (1 + target).astype(np.float32)  # exact: far below 2**24
    return TrainingSample(image=image, target=target, weight=weight, name="coded")


def _affine_residual(t: np.ndarray, width: int) -> float:
    """Largest distance (px) between the source positions of a tile's pixels and the best
    affine map of the tile's grid: 0 for crops, flips and quarter turns, > 0 if deformed."""
    inside = t != IGNORE_INDEX
    rows, cols = np.nonzero(inside)
    sy, sx = np.divmod(t[inside], width)
    design = np.stack([rows, cols, np.ones_like(rows)], axis=1).astype(float)
    src = np.stack([sy, sx], axis=1).astype(float)
    fit, *_ = np.linalg.lstsq(design, src, rcond=None)
    return float(np.abs(design @ fit - src).max())


def test_a_position_coded_weight_stays_with_its_target_through_elastic_flips_and_crop():
    h, w = 160, 170
    model = UNet(depth=2, base_channels=4)
    tile_in, tile_out = training_tile_sizes(model, 24)
    sampler = TileSampler([_position_coded(h, w)], tile_in, tile_out,
                          np.random.default_rng(3), augment=True, elastic=True,
                          flips=True)  # fmt: skip
    _, t, wt = (a.numpy() for a in sampler.batch(24))
    deformed = full = 0
    for target, weight in zip(t, wt, strict=True):
        inside = target != IGNORE_INDEX
        # at every pixel: the weight is the one of the target's own pixel, 0 outside
        np.testing.assert_array_equal(weight[inside], 1 + target[inside].astype(np.float32))
        assert np.all(weight[~inside] == 0)
        if inside.sum() > tile_out * tile_out // 2:  # tiles mostly inside the image
            full += 1
            assert len(np.unique(weight[inside])) > 50  # really a non-constant w(x)
            deformed += _affine_residual(target, w) > 1.0
    assert full >= 12
    assert deformed >= full - 1  # elastic deformation was on for (nearly) every tile


def test_without_elastic_deformation_the_tile_is_a_rigid_crop():
    """The contrast for the test above: flips and crops alone keep the grid affine."""
    h, w = 160, 170
    model = UNet(depth=2, base_channels=4)
    tile_in, tile_out = training_tile_sizes(model, 24)
    sampler = TileSampler([_position_coded(h, w)], tile_in, tile_out,
                          np.random.default_rng(3), augment=True, elastic=False,
                          flips=True)  # fmt: skip
    _, t, wt = (a.numpy() for a in sampler.batch(8))
    for target, weight in zip(t, wt, strict=True):
        inside = target != IGNORE_INDEX
        np.testing.assert_array_equal(weight[inside], 1 + target[inside].astype(np.float32))
        assert _affine_residual(target, w) < 1e-6


def test_augment_tile_deforms_labels_and_weight_with_one_field():
    """The public augmentation of a cut tile: the same property on every pixel."""
    from napari_unet import augment_tile

    h, w = 64, 72
    labels = np.arange(h * w, dtype=np.int32).reshape(h, w)
    weight = (1 + labels).astype(np.float32)
    image = np.random.default_rng(1).random((h, w), dtype=np.float32)
    rng = np.random.default_rng(5)
    for _ in range(6):
        _, lab, wt = augment_tile(image, labels, weight, rng, elastic=True, flips=True)
        np.testing.assert_array_equal(wt, 1 + lab.astype(np.float32))
        assert _affine_residual(lab.astype(np.int64), w) > 1.0


def test_images_are_drawn_in_proportion_to_their_annotated_pixels():
    """Two images, 100 and 300 annotated pixels: tiles come from them about 1:3, not 1:1
    (each tile's source is recognised by the image's constant value)."""
    from napari_unet.unet.data import IGNORE_INDEX, TrainingSample

    samples = []
    for value, n in ((1.0, 100), (2.0, 300)):
        target = np.full((64, 64), IGNORE_INDEX, np.int64)
        target.ravel()[:n] = np.arange(n) % 2
        image = np.full((1, 64, 64), value, np.float32)
        samples.append(TrainingSample(image, target, np.ones((64, 64), np.float32)))
    tile_in, tile_out = 44, 4
    sampler = TileSampler(samples, tile_in, tile_out, np.random.default_rng(0), augment=False)
    sources = [float(sampler.tile()[0][0, 0, 0]) for _ in range(2000)]
    share = sources.count(2.0) / len(sources)
    # binomial(2000, 0.75): standard deviation ~0.0097; 1:1 would give 0.5
    assert abs(share - 0.75) < 0.04, share

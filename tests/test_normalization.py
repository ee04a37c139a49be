"""Percentile normalisation, written once (unet/normalization.py), against np.percentile
by hand; the in-memory, dask and bioimage.io paths take the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet.unet.data import InputError, normalize
from napari_unet.unet.normalization import scale_range


def by_hand(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    out = np.empty(image.shape, np.float64)
    for c, channel in enumerate(np.asarray(image, np.float64)):
        lo, hi = np.percentile(channel, [low, high])
        out[c] = (channel - lo) / (hi - lo)
    return out


def test_each_channel_maps_its_percentiles_to_0_and_1() -> None:
    rng = np.random.default_rng(0)
    image = np.stack([rng.integers(0, 4000, (40, 50)), rng.normal(3, 0.01, (40, 50))])
    out = normalize(image.astype(np.float32), {"method": "percentile", "low": 2, "high": 98})
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, by_hand(image.astype(np.float32), 2, 98), atol=2e-4)


def test_unsigned_integers_give_the_exact_percentiles() -> None:
    image = np.arange(101, dtype=np.uint16).reshape(1, 1, 101) * 10  # 0, 10, ..., 1000
    out = normalize(image)
    lo, hi = 1.0 * 10, 99.8 * 10  # linear percentiles of 0..1000 in steps of 10
    np.testing.assert_allclose(out[0, 0], (image[0, 0] - lo) / (hi - lo), rtol=1e-6)


def test_a_constant_channel_is_only_shifted() -> None:
    image = np.stack([np.full((8, 8), 7.0), np.arange(64.0).reshape(8, 8)]).astype(np.float32)
    out = normalize(image)
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_allclose(out[1], by_hand(image)[1], atol=1e-5)


def test_none_casts_and_bad_recipes_are_refused() -> None:
    image = np.arange(12, dtype=np.int16).reshape(1, 3, 4)
    np.testing.assert_array_equal(normalize(image, {"method": "none"}), image.astype(np.float32))
    with pytest.raises(InputError, match="method must be one of 'percentile', 'none'"):
        normalize(image, {"method": "zscore"})
    with pytest.raises(InputError, match="NaN or infinite"):
        normalize(np.array([[[np.nan, 1.0]]]))


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"low": "1"}, "low must be a number from 0 to 100"),
        ({"low": -5}, "low must be a number from 0 to 100"),
        ({"high": 101}, "high must be a number from 0 to 100"),
        ({"low": float("nan")}, "low must be a number"),
        ({"low": 60, "high": 40}, "0 <= low < high <= 100"),
        ({"low": 50, "high": 50}, "0 <= low < high <= 100"),
        ({"low": 1, "high": 99, "clip": True}, "unknown field"),
        ("percentile", "must be an object"),
    ],
)
def test_a_normalisation_recipe_is_checked_like_a_model_files(recipe, message) -> None:
    """prepare_sample / normalize take the API's recipe through the model record's checks:
    numpy would raise on a text bound and silently accept low > high (a negated image)."""
    from napari_unet import prepare_sample

    image = np.arange(64, dtype=np.float32).reshape(1, 8, 8)
    with pytest.raises(InputError, match=message):
        normalize(image, recipe)
    labels = np.ones((8, 8), np.uint8)
    with pytest.raises(InputError, match=message):
        prepare_sample(image[0], labels, normalization=recipe)


def test_dask_statistics_agree_with_the_in_memory_path() -> None:
    pytest.importorskip("dask")
    from napari_unet.io.distributed import _apply_stats, normalization_stats

    rng = np.random.default_rng(1)
    image = np.stack([rng.integers(0, 255, (2, 30, 40)), np.full((2, 30, 40), 5)], axis=1).astype(
        np.float32
    )  # (Z, C, H, W); channel 1 constant
    stats = normalization_stats(image, None, per_plane=True)
    assert stats.shape == (2, 2, 2)
    for z in range(2):
        np.testing.assert_allclose(
            _apply_stats(image[z], stats[z]), normalize(image[z]), atol=1e-6
        )
    np.testing.assert_array_equal(_apply_stats(image[0], stats[0])[1], 0.0)


def test_scale_range_is_the_bioimageio_formula() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(10, 3, (2, 3, 16, 16))
    lo = np.percentile(x, 1, axis=(-2, -1), keepdims=True)
    hi = np.percentile(x, 99.8, axis=(-2, -1), keepdims=True)
    np.testing.assert_allclose(scale_range(x, 1, 99.8), (x - lo) / (hi - lo + 1e-6), rtol=1e-6)


def test_a_channel_flat_up_to_rounding_is_constant_on_every_path() -> None:
    """1000 plus or minus one float32 step: noise, not signal. In memory and through dask
    it is shifted only (values stay within a few steps of 0), not stretched to 0..1."""
    pytest.importorskip("dask")
    from napari_unet.io.distributed import _apply_stats, normalization_stats

    step = np.spacing(np.float32(1000))
    rng = np.random.default_rng(3)
    plane = (np.float32(1000) + step * rng.integers(-1, 2, (1, 32, 32))).astype(np.float32)
    in_memory = normalize(plane)
    through_dask = _apply_stats(plane, normalization_stats(plane[None], None)[0])
    assert np.abs(in_memory).max() <= 2 * step
    np.testing.assert_allclose(through_dask, in_memory, atol=1e-6)


def test_a_plane_without_its_channel_axis_is_refused() -> None:
    """A 2-D (H, W) array would be read as H channels of width W (a (512, 512) image
    broadcast to 512 x 512 x 512 floats); it is refused with what to do."""
    image = np.arange(12.0).reshape(3, 4)
    with pytest.raises(InputError, match=r"\(C, H, W\).*image\[None\]"):
        normalize(image, {"method": "percentile", "low": 1.0, "high": 99.8})
    assert normalize(image[None]).shape == (1, 3, 4)

"""Percentile normalisation of the network's input, written once.

A model records how its training images were normalised (``model.record.normalization``):
``{"method": "percentile", "low": 1, "high": 99.8}`` maps the low / high percentiles of
each channel to 0 / 1, not clipped (as stardist and cellpose do); ``{"method": "none"}``
only casts to float32. In-memory prediction and training (:func:`normalize`), the dask
statistics of large images (:mod:`napari_unet.io.distributed`) and bioimage.io packages
(:func:`scale_range`) all take their numbers from here.

A constant channel (a range at the rounding level of its values) is only shifted, so it
becomes 0 rather than noise divided by almost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InputError
from .record import Normalization, RecordError

#: Percentile normalisation as in stardist / cellpose: (x - p_low) / (p_high - p_low).
DEFAULT_NORMALIZATION: dict[str, Any] = {"method": "percentile", "low": 1.0, "high": 99.8}
#: a range below this many float32 / float64 epsilons of the values is "constant"
CONSTANT_EPS = 8
#: the ``eps`` of bioimage.io's ``scale_range`` (the spec's default)
SCALE_RANGE_EPS = 1e-6


def checked_recipe(normalization: Mapping[str, Any] | None) -> Normalization:
    """The recipe (None: the default) checked as a model file's is (0 <= low < high <=
    100, numbers, known keys and methods): :class:`InputError` names the bad field."""
    try:
        return Normalization.from_dict(normalization or DEFAULT_NORMALIZATION)
    except RecordError as err:
        raise InputError(str(err)) from None


def percentiles_of(normalization: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """(low, high) percentiles of a recipe, or None for ``{"method": "none"}``."""
    recipe = checked_recipe(normalization)
    if recipe.method == "none":
        return None
    return float(recipe.low), float(recipe.high)


def percentile_bounds(flat: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """p_low and p_high (float64) over the last axis of ``flat`` (numpy's 'linear')."""
    lo, hi = np.percentile(flat, [low, high], axis=-1)
    return np.asarray(lo, np.float64), np.asarray(hi, np.float64)


def range_scale(lo: np.ndarray, hi: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """p_high - p_low, with 1 for constant channels (computed in ``dtype``'s precision)."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    scale = np.array(hi - lo, dtype=np.float64)
    rounding = CONSTANT_EPS * np.finfo(dtype).eps * np.maximum(np.abs(lo), np.abs(hi))
    scale[(scale <= rounding) | (scale <= 0)] = 1.0
    return scale


def apply_bounds(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(x - p_low) / (p_high - p_low) per channel of ``x`` (..., C, H, W), in x's float
    precision; ``lo`` / ``hi`` have the shape (..., C). Returns float32."""
    scale = range_scale(lo, hi, x.dtype).astype(x.dtype)
    lo = np.asarray(lo, np.float64).astype(x.dtype)
    out = (x - lo[..., None, None]) / scale[..., None, None]
    return out.astype(np.float32, copy=False)


def normalize(image: np.ndarray, normalization: Mapping[str, Any] | None = None) -> np.ndarray:
    """Normalise one image (C, H, W) per channel to float32 by the model's recorded recipe.

    NaN or infinite pixels raise :class:`InputError`.
    """
    percentiles = percentiles_of(normalization)
    raw = np.asarray(image)
    if raw.ndim != 3:  # a 2-D (H, W) would be read as H channels of width W, silently
        raise InputError(
            f"normalize takes one image (C, H, W) with its channels first, got shape "
            f"{raw.shape}; add the channel axis (image[None] for a grey image)"
        )
    if raw.dtype == bool:
        raw = raw.astype(np.uint8)
    # float32 holds every 8/16-bit value exactly; wider types (float64, 32/64-bit integers)
    # are normalised in float64, so large values, offsets and ranges keep their grey levels
    wide = raw.dtype.itemsize > 4 or (raw.dtype.kind in "iu" and raw.dtype.itemsize == 4)
    x = raw.astype(np.float64 if wide else np.float32, copy=False)
    if not np.isfinite(x).all():
        raise InputError("the image contains NaN or infinite pixels")
    if percentiles is None:
        out = x.astype(np.float32)
        if not np.isfinite(out).all():
            raise InputError(
                "the image has values beyond the float32 range (about 3.4e38): use "
                "percentile normalisation"
            )
        return out
    # percentiles (float64) of unsigned images straight from the integers: exact, and
    # partitioning 1-2 byte values is ~5x faster than partitioning a float64 copy (not
    # signed ones: numpy interpolates with b - a in the input dtype, which can wrap)
    src = raw if raw.dtype.kind == "u" else x.astype(np.float64, copy=False)
    lo, hi = percentile_bounds(src.reshape(src.shape[0], -1), *percentiles)
    return apply_bounds(x, lo, hi)


def scale_range(
    x: np.ndarray, low: float, high: float, eps: float = SCALE_RANGE_EPS
) -> np.ndarray:
    """bioimage.io's ``scale_range`` over (y, x), per sample and channel of (N, C, H, W):
    (x - p_low) / (p_high - p_low + eps), as the spec defines it and consumers
    (bioimageio.core, ilastik, deepImageJ) apply it. The percentiles are
    :func:`percentile_bounds`'; only the spec's ``eps`` differs from :func:`normalize`."""
    x = np.asarray(x, np.float64)
    lo, hi = percentile_bounds(x.reshape(*x.shape[:-2], -1), low, high)
    return ((x - lo[..., None, None]) / (hi - lo + eps)[..., None, None]).astype(np.float32)

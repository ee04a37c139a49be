"""How unsure the model is at each pixel, and where annotating would teach it most.

The entropy of p_k(x) over the K classes, divided by its largest value log K:

    H(x) = - sum_k p_k(x) log p_k(x) / log K,   0 <= H(x) <= 1

H(x) = 0 where one class has all the probability (p_k(x) = 1 for one k), and H(x) = 1
where every class is equally likely (p_k(x) = 1/K): it is p_k(x) read for doubt instead of
for class. With two classes it depends on p_2(x) alone and peaks at p_2(x) = 0.5: the
border of the segmentation. Regions of high entropy are where a few strokes change the
model most (ilastik's "uncertainty" overlay); :func:`where_to_annotate` finds the window
of a region with the highest mean H(x).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError

__all__ = ["hint_window_size", "normalized_entropy", "where_to_annotate"]


def normalized_entropy(probabilities: np.ndarray) -> np.ndarray:
    """H(x) of p_k(x), shape (K, ...), class axis first: float32 of shape (...), in [0, 1].

    0 log 0 counts as 0 (the limit); with K = 1 there is no doubt and H(x) = 0. Summed one
    class at a time in float32: memory is two (...) arrays besides p, for a whole stack too.
    """
    p = np.asarray(probabilities)
    if p.ndim < 1 or p.shape[0] < 1:
        raise InputError(f"p_k(x) needs a class axis first, got shape {p.shape}")
    k = p.shape[0]
    h = np.zeros(p.shape[1:], np.float32)
    if k == 1:
        return h
    for p_k in p:
        p_k = np.asarray(p_k, dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            h -= np.where(p_k > 0, p_k * np.log(p_k), np.float32(0))
    h /= np.float32(math.log(k))
    return np.clip(h, 0.0, 1.0, out=h)


def hint_window_size(region_shape: tuple[int, int]) -> int:
    """The side of the hinted window: a quarter of the shorter side in view, 16 px at
    least (a few brush strokes), never larger than the region."""
    short = max(1, min(region_shape))
    return min(short, max(16, short // 4))


def where_to_annotate(
    entropy: np.ndarray,
    region: tuple[int, int, int, int] | None = None,
    window: int | None = None,
) -> tuple[int, int, int, int]:
    """The ``window`` x ``window`` square of ``region`` (y0, y1, x0, x1; default: the whole
    plane) with the highest mean H(x); returns its (y0, y1, x0, x1) in plane coordinates.

    A summed-area table gives every window's mean in O(pixels). Ties go to the first
    window in row-major order; non-finite H(x) counts as 0.
    """
    h = np.asarray(entropy, dtype=np.float64)
    if h.ndim != 2:
        raise InputError(f"H(x) of one plane is 2-D, got shape {h.shape}")
    y0, y1, x0, x1 = region if region is not None else (0, h.shape[0], 0, h.shape[1])
    y0, x0 = max(0, int(y0)), max(0, int(x0))
    y1, x1 = min(h.shape[0], int(y1)), min(h.shape[1], int(x1))
    if y1 <= y0 or x1 <= x0:
        raise InputError(f"the region {region} holds no pixel of the {h.shape} plane")
    crop = np.nan_to_num(h[y0:y1, x0:x1], nan=0.0, posinf=0.0, neginf=0.0)
    side = window if window is not None else hint_window_size(crop.shape)
    wy, wx = min(int(side), crop.shape[0]), min(int(side), crop.shape[1])
    if wy < 1 or wx < 1:
        raise InputError(f"the window must be at least 1 pixel, got {window}")
    table = np.zeros((crop.shape[0] + 1, crop.shape[1] + 1))
    table[1:, 1:] = crop.cumsum(axis=0).cumsum(axis=1)
    sums = table[wy:, wx:] - table[:-wy, wx:] - table[wy:, :-wx] + table[:-wy, :-wx]
    iy, ix = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return (y0 + int(iy), y0 + int(iy) + wy, x0 + int(ix), x0 + int(ix) + wx)

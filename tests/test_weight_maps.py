"""Tests of the weight map w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / (2 sigma^2)) (eq. 2)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import ndimage

from napari_unet.unet.weight_maps import border_distances, class_balance_weights, weight_map

from .conftest import bundled_nuclei


def two_squares() -> np.ndarray:
    """9 x 15 image: two 3x3 cells (rows 3..5; cols 3..5 and 9..11), a 3-px gap between."""
    img = np.zeros((9, 15), dtype=np.int32)
    img[3:6, 3:6] = 1
    img[3:6, 9:12] = 2
    return img


def border(d1: float, d2: float, w0: float = 10.0, sigma: float = 5.0) -> float:
    return w0 * math.exp(-((d1 + d2) ** 2) / (2 * sigma**2))


def random_discs(shape: tuple[int, int], n: int, seed: int, rmin=6.0, rmax=14.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lab = np.zeros(shape, dtype=np.int32)
    centres = rng.uniform(0, shape, size=(n, 2))
    radii = rng.uniform(rmin, rmax, size=n)
    for i, ((cy, cx), r) in enumerate(zip(centres, radii, strict=True), start=1):
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = i
    return lab


# --- class balance -------------------------------------------------------------------


def test_class_balance_hand_computed():
    target = np.array([[0, 0, 0, 1], [1, 2, -1, -1]])
    # N = 6 annotated, K = 3 classes, N_0 = 3, N_1 = 2, N_2 = 1
    expected = np.array([[6 / 9, 6 / 9, 6 / 9, 6 / 6], [6 / 6, 6 / 3, 0, 0]], dtype=np.float32)
    w = class_balance_weights(target, ignore_index=-1)
    assert w.dtype == np.float32 and w.shape == target.shape
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert w[target != -1].mean() == pytest.approx(1.0, abs=1e-6)


def test_class_balance_only_present_classes_and_empty():
    target = np.array([[5, 5, 5, 7]])  # classes 5 and 7: K_present = 2, N = 4
    np.testing.assert_allclose(class_balance_weights(target), [[4 / 6, 4 / 6, 4 / 6, 4 / 2]])
    assert not class_balance_weights(np.full((3, 3), -1)).any()
    np.testing.assert_allclose(class_balance_weights(np.zeros((2, 2), int)), 1.0)


def test_weight_map_class_balance_values():
    img = two_squares()
    n, n_cell = img.size, 18
    w = weight_map(img, w0=0.0)  # border term off: only w_c
    np.testing.assert_allclose(w[img > 0], n / (2 * n_cell), rtol=1e-6)
    np.testing.assert_allclose(w[img == 0], n / (2 * (n - n_cell)), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0, abs=1e-6)
    assert np.all(weight_map(img, w0=0.0, class_balance=False) == 1.0)


# --- border term ---------------------------------------------------------------------


def test_two_squares_hand_computed():
    img = two_squares()
    n, n_cell = img.size, 18
    wc_bg, wc_cell = n / (2 * (n - n_cell)), n / (2 * n_cell)
    w = weight_map(img, w0=10.0, sigma=5.0)
    # (4, 7): gap centre, 2 px to column 5 of cell 1 and 2 px to column 9 of cell 2
    assert w[4, 7] == pytest.approx(wc_bg + border(2, 2), rel=1e-5)
    # (4, 6): 1 px to cell 1, 3 px to cell 2
    assert w[4, 6] == pytest.approx(wc_bg + border(1, 3), rel=1e-5)
    # (0, 7): to corners (3, 5) and (3, 9): sqrt(3^2 + 2^2) each
    assert w[0, 7] == pytest.approx(wc_bg + border(math.sqrt(13), math.sqrt(13)), rel=1e-5)
    # (4, 0): 3 px to (4, 3), 9 px to (4, 9)
    assert w[4, 0] == pytest.approx(wc_bg + border(3, 9), rel=1e-5)
    # (0, 0): to (3, 3): sqrt(18); to (3, 9): sqrt(9 + 81)
    assert w[0, 0] == pytest.approx(wc_bg + border(math.sqrt(18), math.sqrt(90)), rel=1e-5)
    # cell pixels: no border term
    np.testing.assert_allclose(w[img > 0], wc_cell, rtol=1e-6)

    d1, d2 = border_distances(img, max_distance=100.0)
    assert (d1[4, 6], d2[4, 6]) == (1.0, 3.0)
    assert d1[4, 4] == 0.0 and d2[4, 4] == 5.0  # own cell at 0, other cell 5 px away


def test_one_row_strip_no_class_balance():
    strip = np.zeros((1, 15), dtype=np.uint8)
    strip[0, 3:6] = 4
    strip[0, 9:12] = 9
    w = weight_map(strip, w0=5.0, sigma=3.0, class_balance=False)
    for x, (a, b) in {7: (2, 2), 6: (1, 3), 8: (3, 1), 0: (3, 9), 14: (3, 9)}.items():
        assert w[0, x] == pytest.approx(1.0 + border(a, b, 5.0, 3.0), rel=1e-5)
    assert np.all(w[0, strip[0] > 0] == 1.0)


@pytest.mark.parametrize("n_cells", [0, 1])
def test_no_border_term_with_fewer_than_two_cells(n_cells):
    img = np.zeros((12, 10), dtype=np.int64)
    if n_cells:
        img[2:5, 3:8] = 17
    w = weight_map(img)
    np.testing.assert_array_equal(w, class_balance_weights((img > 0).astype(int)))
    np.testing.assert_array_equal(weight_map(img, class_balance=False), 1.0)


def test_w_at_least_wc_and_symmetric_under_id_swap():
    img = random_discs((60, 70), 6, seed=3, rmin=3, rmax=8)
    wc = class_balance_weights((img > 0).astype(int))
    w = weight_map(img)
    assert np.all(w >= wc)
    assert np.any(w > wc + 1.0)
    ids = np.unique(img)[1:]
    permuted = np.zeros_like(img)
    for old, new in zip(ids, ids[::-1], strict=True):
        permuted[img == old] = new
    np.testing.assert_array_equal(weight_map(permuted), w)


def test_border_distances_match_brute_force():
    rng = np.random.default_rng(0)
    img = random_discs((40, 45), 5, seed=1, rmin=2, rmax=6)
    img[rng.integers(0, 40, 3), rng.integers(0, 45, 3)] = 99  # one scattered instance
    ids = np.unique(img)[1:]
    full = np.sort(np.stack([ndimage.distance_transform_edt(img != i) for i in ids]), axis=0)
    for max_distance in (7.5, 1000.0):
        d1, d2 = border_distances(img, max_distance)
        assert d1.dtype == np.float32 and d1.shape == img.shape
        for got, ref in ((d1, full[0]), (d2, full[1])):
            inside = ref <= max_distance
            np.testing.assert_allclose(got[inside], ref[inside], rtol=1e-6)
            assert np.all(np.isinf(got[~inside]))


def test_border_distances_no_instances():
    d1, d2 = border_distances(np.zeros((4, 5), dtype=int), 10.0)
    assert np.all(np.isinf(d1)) and np.all(np.isinf(d2))


@pytest.mark.parametrize(
    "dtype, ids", [(np.int64, (2**31, 2**40)), (np.uint64, (2**63 + 5, 2**64 - 1))]
)
def test_huge_ids(dtype, ids):
    small = two_squares()
    big = np.zeros(small.shape, dtype=dtype)
    big[small == 1] = ids[0]
    big[small == 2] = ids[1]
    np.testing.assert_array_equal(weight_map(big), weight_map(small))


def test_accepted_dtypes():
    small = two_squares()
    ref = weight_map(small)
    np.testing.assert_array_equal(weight_map(small.astype(np.float64)), ref)
    np.testing.assert_array_equal(weight_map(small.astype(np.uint16)), ref)
    mask = small > 0  # bool: a single instance, no border term
    np.testing.assert_array_equal(weight_map(mask), class_balance_weights(mask.astype(int)))


@pytest.mark.parametrize(
    "instances, kwargs, match",
    [
        (np.zeros((3, 4, 5), int), {}, "2D"),
        (np.zeros(5, int), {}, "2D"),
        (np.full((3, 3), 1.5), {}, "whole numbers"),
        (np.full((3, 3), np.nan), {}, "whole numbers"),
        (-np.ones((3, 3), int), {}, ">= 0"),
        (-np.ones((3, 3)), {}, ">= 0"),
        (np.zeros((3, 3), int), {"sigma": 0.0}, "sigma"),
        (np.zeros((3, 3), int), {"sigma": -1.0}, "sigma"),
        (np.zeros((3, 3), int), {"w0": -1.0}, "w0"),
        (np.zeros((3, 3), complex), {}, "integer"),
    ],
)
def test_bad_inputs_raise(instances, kwargs, match):
    with pytest.raises(ValueError, match=match):
        weight_map(instances, **kwargs)


def _best_time(img: np.ndarray, repeats: int = 3) -> float:
    weight_map(img)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        weight_map(img)
        times.append(time.perf_counter() - t)
    return min(times)


def test_speed_512_synthetic_200_cells():
    img = random_discs((512, 512), 200, seed=0)
    assert len(np.unique(img)) - 1 >= 190
    assert _best_time(img) < 1.5  # goal: < 1 s (measured ~0.05 s on 2 cores)


def test_speed_512_stardist_nuclei():
    img = bundled_nuclei()["instances"]  # the stardist labels, bundled with the sample
    assert img.shape == (512, 512)
    w = weight_map(img)
    assert w.shape == img.shape and np.all(np.isfinite(w))
    assert _best_time(img) < 1.5

"""Metrics against hand-worked examples and independent brute-force references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from napari_unet.metrics import (
    adapted_rand_error,
    binary_pixel_error,
    challenge_pixel_error,
    connected_components,
    evaluate_segmentation,
    iou_per_class,
    isbi_scores,
    object_scores,
    pixel_error,
)
from napari_unet.unet.errors import InputError

# ----------------------------------------------------------------- pixel error / IoU


def test_challenge_pixel_error_hand_worked():
    gt = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])  # 5 interior pixels
    p = np.array([[0.9, 0.6, 0.3, 0.2], [0.8, 0.4, 0.7, 0.1]])
    res = challenge_pixel_error(p, gt)
    # t = 0.5: TP 3, FP 1 (0.7 on membrane), FN 2 (0.3, 0.4): 1 - F = 3 / (6 + 3)
    assert res["error_at_0.5"] == pytest.approx(3 / 9)
    # best t = 0.2 (p > t strictly): TP 5, FP 1 (the 0.7), FN 0 -> 1 / 11; t = 0.3 gives
    # 2 / 10, t = 0.1 gives 2 / 12, t = 0 gives 3 / 13
    assert res["threshold"] == 0.2
    assert res["error"] == pytest.approx(1 / 11)
    # not the fraction of misclassified pixels (1 / 8 at t = 0.2)
    assert res["error"] != pytest.approx(1 / 8)


def test_challenge_pixel_error_pools_counts_over_the_stack():
    perfect = np.ones((2, 2))
    missed_one = np.array([[1, 0], [0, 0]])
    res = challenge_pixel_error([perfect, np.zeros((2, 2))], [perfect, missed_one])
    # pooled: TP 4, FN 1 -> 1 / 9 at every threshold below 1; the mean of per-image
    # errors would be (0 + 1) / 2
    assert res["error"] == pytest.approx(1 / 9)
    with pytest.raises(ValueError):
        challenge_pixel_error([perfect], [perfect, perfect])
    with pytest.raises(ValueError):
        challenge_pixel_error(perfect, perfect, thresholds=())
    # no interior anywhere: F is undefined
    assert math.isnan(challenge_pixel_error(np.zeros((2, 2)), np.zeros((2, 2)))["error"])


def test_challenge_pixel_error_matches_sklearn_f1():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    gt = rng.random((40, 50)) < 0.7
    p = gt * 0.3 + rng.random((40, 50)) * 0.7  # the classes overlap: no threshold is perfect
    res = challenge_pixel_error(p, gt)
    f1 = {t: metrics.f1_score(gt.ravel(), (p > t).ravel()) for t in np.arange(11) / 10}
    assert res["error"] == pytest.approx(1 - max(f1.values()))
    assert res["error"] > 0.05 and res["threshold"] == pytest.approx(max(f1, key=f1.get))
    assert res["error_at_0.5"] == pytest.approx(1 - f1[0.5])
    # the counts at the best threshold give the error again
    assert (res["fp"] + res["fn"]) / (2 * res["tp"] + res["fp"] + res["fn"]) == res["error"]


def test_pixel_error_hand_worked():
    gt = np.array([[0, 0, 1, 1]] * 4)
    pred = gt.copy()
    pred[0, 0] = 1  # 1 wrong
    pred[3, 3] = 0  # 2 wrong
    assert pixel_error(pred, gt) == pytest.approx(2 / 16)
    # class values are compared, not just foreground
    assert pixel_error(np.array([[1, 2]]), np.array([[1, 1]])) == 0.5
    assert binary_pixel_error(np.array([[1, 2]]), np.array([[1, 1]])) == 0.0


def test_iou_per_class_hand_worked():
    gt = np.array([[0, 0, 1, 1]] * 4)
    pred = gt.copy()
    pred[0, 0] = 1
    # class 1: gt 8 px, pred 9 px, intersection 8 -> 8/9; class 0: 7/8
    iou = iou_per_class(pred, gt)
    assert iou == pytest.approx({0: 7 / 8, 1: 8 / 9})
    assert math.isnan(iou_per_class(pred, gt, [5])[5])


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        pixel_error(np.zeros((2, 2)), np.zeros((2, 3)))


# ----------------------------------------------------------------- adapted Rand error
def brute_force_rand(seg, gt, singletons=True, self_pairs=True):
    """Pair counting over all ordered pixel pairs of the gt foreground (independent ref)."""
    seg = np.asarray(seg).ravel().astype(int).tolist()
    gt = np.asarray(gt).ravel().astype(int).tolist()
    pix = [i for i in range(len(gt)) if gt[i] > 0]
    sid = {}
    for i in pix:
        sid[i] = ("single", i) if (singletons and seg[i] == 0) else seg[i]
    both = same_s = same_g = 0
    for i, j in itertools.product(pix, pix):
        if i == j and not self_pairs:
            continue
        ss, sg = sid[i] == sid[j], gt[i] == gt[j]
        same_s += ss
        same_g += sg
        both += ss and sg
    p, r = both / same_s, both / same_g
    return 1 - 2 * p * r / (p + r), p, r


def test_rand_perfect_up_to_relabelling():
    gt = np.array([[1, 1, 0, 2], [1, 1, 0, 2], [0, 0, 0, 2], [3, 3, 0, 2]])
    seg = np.where(gt > 0, gt * 7 + 1, 0)
    assert adapted_rand_error(seg, gt) == pytest.approx(0.0)


def test_rand_hand_worked_merge():
    # two true segments of 4 px each merged into one predicted segment:
    # sum n_ij^2 = 16 + 16 = 32, sum a_i^2 = 32, sum b_j^2 = 64 -> P = 0.5, R = 1
    gt = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    seg = np.ones_like(gt)
    res = adapted_rand_error(seg, gt, return_all=True)
    assert res["precision"] == pytest.approx(0.5)
    assert res["recall"] == pytest.approx(1.0)
    assert res["error"] == pytest.approx(1 - 2 * 0.5 / 1.5)


def test_rand_hand_worked_split():
    # one true segment of 8 px split 4 + 4: P = 1, R = 32/64
    gt = np.ones((2, 4), int)
    seg = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    res = adapted_rand_error(seg, gt, return_all=True)
    assert (res["precision"], res["recall"]) == pytest.approx((1.0, 0.5))


@pytest.mark.parametrize("seed", range(6))
def test_rand_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 4, (5, 6))
    seg = rng.integers(0, 4, (5, 6))
    if not (gt > 0).any():
        gt[0, 0] = 1
    for singletons in (True, False):
        mode = "singletons" if singletons else "segment"
        res = adapted_rand_error(seg, gt, seg_background=mode, return_all=True)
        ref = brute_force_rand(seg, gt, singletons=singletons)
        assert (res["error"], res["precision"], res["recall"]) == pytest.approx(ref)


def test_rand_close_to_skimage():
    """skimage counts pairs without self-pairs and keeps seg 0 as one segment: compare
    with our 'segment' mode on a large image, where self-pairs barely matter."""
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    gt = np.kron(rng.integers(1, 30, (8, 8)), np.ones((16, 16), int))
    seg = gt.copy()
    seg[rng.random(gt.shape) < 0.1] = 0
    seg[:40, :40] = 99
    ours = adapted_rand_error(seg, gt, seg_background="segment")
    ref = metrics.adapted_rand_error(gt, seg)[0]
    assert ours == pytest.approx(ref, abs=2e-3)
    # and exactly equal to brute force without self pairs on a tiny one
    small_gt, small_seg = gt[::16, ::16], seg[::16, ::16]
    assert metrics.adapted_rand_error(small_gt, small_seg)[0] == pytest.approx(
        brute_force_rand(small_seg, small_gt, singletons=False, self_pairs=False)[0]
    )


def test_rand_predicted_boundary_is_not_a_merge():
    gt = np.array([[1, 1, 1, 1]])
    seg = np.array([[1, 0, 0, 1]])  # boundary pixels predicted inside one cell
    # singletons: segments {0,3},{1},{2}: sum n^2 = 4+1+1 = 6, sum b^2 = 6, sum a^2 = 16
    res = adapted_rand_error(seg, gt, return_all=True)
    assert (res["precision"], res["recall"]) == pytest.approx((1.0, 6 / 16))


def test_rand_no_ground_truth_raises():
    with pytest.raises(ValueError, match="no labelled"):
        adapted_rand_error(np.ones((2, 2), int), np.zeros((2, 2), int))


# ----------------------------------------------------------------- object scores
def test_object_scores_hand_worked():
    gt = np.zeros((8, 8), int)
    gt[0:4, 0:4] = 1  # 16 px
    gt[0:4, 4:8] = 2  # 16 px
    gt[6:8, 6:8] = 3  # 4 px
    pred = np.zeros_like(gt)
    pred[0:4, 0:3] = 5  # IoU with 1: 12/16 -> match
    pred[0:2, 4:8] = 6  # IoU with 2: 8/16 = 0.5 -> match at >= 0.5
    pred[5:6, 0:2] = 7  # nothing -> FP
    res = object_scores(pred, gt, 0.5)
    assert (res["tp"], res["fp"], res["fn"]) == (2, 1, 1)
    assert res["precision"] == pytest.approx(2 / 3)
    assert res["recall"] == pytest.approx(2 / 3)
    assert res["f1"] == pytest.approx(2 * 2 / (4 + 1 + 1))
    assert res["mean_matched_iou"] == pytest.approx((0.75 + 0.5) / 2)
    strict = object_scores(pred, gt, 0.51)
    assert (strict["tp"], strict["fp"], strict["fn"]) == (1, 2, 2)


def test_object_scores_one_to_one_at_low_threshold():
    # one big prediction covering two true objects: only one match allowed
    gt = np.zeros((4, 8), int)
    gt[:, :4], gt[:, 4:] = 1, 2
    pred = np.ones_like(gt)
    res = object_scores(pred, gt, 0.3)
    assert (res["tp"], res["fp"], res["fn"]) == (1, 0, 1)


def test_object_scores_empty():
    z = np.zeros((3, 3), int)
    assert object_scores(z, z)["f1"] == 1.0
    one = z.copy()
    one[1, 1] = 1
    assert object_scores(z, one)["f1"] == 0.0
    assert object_scores(one, z)["precision"] == 0.0


# ----------------------------------------------------------------- ISBI / combined
def test_isbi_scores_membrane_gap_merges_cells():
    gt = np.ones((6, 7), int)
    gt[:, 3] = 0  # a membrane column splits two cells (0 = membrane)
    assert connected_components(gt).max() == 2
    perfect = isbi_scores(gt, gt)
    assert perfect["pixel_error"] == 0.0 and perfect["rand_error"] == pytest.approx(0.0)
    leaky = gt.copy()
    leaky[2, 3] = 1  # one-pixel gap merges the two cells
    res = isbi_scores(leaky, gt)
    assert res["pixel_error"] == pytest.approx(1 / 42)
    # 18 + 18 px merged: P = (18^2 * 2) / 36^2 = 0.5, R = 1
    assert res["rand_precision"] == pytest.approx(0.5)
    assert res["rand_error"] == pytest.approx(1 / 3)
    # the same leaky mask with its cells given (a watershed that kept them apart): the
    # gap pixel is a true membrane pixel, which is not scored, so the cells match exactly
    cells = np.where(gt > 0, np.where(np.arange(7) < 3, 1, 2), 0)
    cells[2, 3] = 1
    res = isbi_scores(leaky, gt, pred_cells=cells)
    assert res["pixel_error"] == pytest.approx(1 / 42)  # from the mask, as before
    assert res["rand_precision"] == pytest.approx(1.0) and res["rand_error"] == pytest.approx(0)


def test_evaluate_segmentation_keys():
    gt = np.zeros((8, 8), int)
    gt[1:4, 1:4] = 1
    gt[5:7, 5:7] = 2
    res = evaluate_segmentation(
        (gt > 0).astype(int) + 1, (gt > 0).astype(int) + 1, pred_instances=gt, gt_instances=gt
    )
    assert res["pixel_error"] == 0.0
    assert res["iou_per_class"] == {1: 1.0, 2: 1.0}
    assert res["adapted_rand_error"] == pytest.approx(0.0)
    assert res["objects"]["f1"] == 1.0


# ----------------------------------------------------------------- what is not a label image
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([[0.0, np.nan], [1.0, 1.0]]), "NaN, inf or fractions"),
        (np.array([[0.0, 0.5], [1.0, 1.0]]), "NaN, inf or fractions"),
        (np.array([[0, -1], [1, 1]]), "negative values"),
        (np.array([["a", "b"], ["c", "d"]]), "must be a label image"),
    ],
)
@pytest.mark.parametrize("side", ["prediction", "ground truth"])
def test_scores_refuse_what_is_not_a_label_image(bad, message, side) -> None:
    """A NaN would count as a wrong pixel everywhere and -1 as a class of its own: every
    score refuses them, naming the side, instead of returning a number."""
    good = np.array([[0, 1], [1, 1]])
    pred, gt = (bad, good) if side == "prediction" else (good, bad)
    for score in (pixel_error, binary_pixel_error, iou_per_class, evaluate_segmentation):
        with pytest.raises(InputError, match=f"{side}.*{message}|{message}"):
            score(pred, gt)
    with pytest.raises(InputError, match=side):
        evaluate_segmentation(good, good, pred_instances=pred, gt_instances=gt)


def test_whole_float_labels_score_as_their_integers() -> None:
    pred = np.array([[0, 1], [2, 2]])
    gt = np.array([[0, 1], [1, 2]])
    expected = evaluate_segmentation(pred, gt)
    assert evaluate_segmentation(pred.astype(np.float32), gt.astype(np.float64)) == expected
    assert pixel_error(pred.astype(bool), gt.astype(bool)) == 0.0


def test_challenge_error_refuses_a_nan_probability_map() -> None:
    with pytest.raises(InputError, match="finite"):
        challenge_pixel_error(np.array([[np.nan, 0.2]]), np.array([[1, 0]]))

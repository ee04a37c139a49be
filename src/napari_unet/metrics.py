"""Accuracy metrics: pixel error, IoU per class, adapted Rand error, object F1.

All functions take numpy label images of equal shape (any number of dimensions) and return
plain Python numbers, so results can go straight into JSON reports.

Definitions (exactly what is computed):

- **pixel error** (ISBI 2012): the fraction of pixels whose class value differs between
  prediction and ground truth, ``mean(pred != gt)``. For a binary task pass binary masks
  (or use :func:`binary_pixel_error`, which compares ``pred > 0`` with ``gt > 0``).
- **ISBI 2012 challenge pixel error** (:func:`challenge_pixel_error`, the challenge's
  scoring script, Fiji ``trainableSegmentation.metrics.PixelError``): ``1 - F`` with F the
  best F-score of the cell-interior class over the thresholds 0, 0.1, ..., 1 applied to a
  map of p_interior, true/false positives and negatives summed over all images first.
  Not the fraction above: 1 - F = (FP + FN) / (2 TP + FP + FN); with about four fifths
  of the pixels inside cells (ISBI) it is about 0.63 times the fraction.
- **IoU of class c**: |{pred = c} ∩ {gt = c}| / |{pred = c} ∪ {gt = c}| (NaN when c occurs
  in neither image).
- **adapted Rand error** (SNEMI3D / CREMI / ISBI 2012 "foreground-restricted Rand"):
  ``1 - F``, F the harmonic mean of Rand split precision and Rand merge recall,

      P = sum_ij n_ij^2 / sum_j b_j^2,   R = sum_ij n_ij^2 / sum_i a_i^2,

  where n_ij is the number of pixels in ground-truth segment i and predicted segment j,
  a_i = sum_j n_ij and b_j = sum_i n_ij (pair counts including each pixel with itself, as
  in the SNEMI3D/CREMI scripts). Only pixels with ground-truth label > 0 count (the ground
  truth's boundary/background 0 is excluded). Predicted pixels with label 0 (a predicted
  boundary inside a true segment) are each treated as a segment of their own
  (``seg_background="singletons"``, the SNEMI3D/CREMI convention), so predicting
  boundaries is never rewarded as a merge; ``"segment"`` treats them as one ordinary
  segment (as ``skimage.metrics.adapted_rand_error`` does).
- **object scores**: predicted and true instances (ids > 0) are matched one-to-one so that
  the number of pairs with IoU >= ``iou_threshold`` is maximal (Hungarian assignment on the
  IoU matrix; for thresholds > 0.5 every such pair is unique anyway). TP = matched pairs,
  FP = unmatched predictions, FN = unmatched true objects; precision = TP/(TP+FP),
  recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN) (defined as 1 when both images are empty).

For the ISBI 2012 membrane task (:func:`isbi_scores`) the segments are the 4-connected
components of the cell-interior class in both images.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from .unet.errors import InputError

__all__ = [
    "pixel_error",
    "binary_pixel_error",
    "iou_per_class",
    "contingency",
    "adapted_rand_error",
    "object_scores",
    "connected_components",
    "isbi_scores",
    "evaluate_segmentation",
]


def _pair(
    pred: np.ndarray, gt: np.ndarray, *, pred_is_map: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Both images as arrays of one shape, each a label image (whole numbers >= 0, or
    booleans); ``pred_is_map``: the prediction is a probability map of finite floats."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise InputError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    if pred.size == 0:
        raise InputError("empty images")
    if pred_is_map:
        if not np.issubdtype(pred.dtype, np.number) or not np.isfinite(pred).all():
            raise InputError("the probability map must hold finite numbers (no NaN or inf)")
    else:
        _check_label_image(pred, "prediction")
    _check_label_image(gt, "ground truth")
    return pred, gt


def _check_label_image(image: np.ndarray, name: str) -> None:
    """Refuse a label image that is not whole numbers >= 0: NaN, 0.5 and -1 are not labels
    (a NaN would count as an error everywhere, a -1 as a class of its own)."""
    if image.dtype == bool:
        return
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise InputError(f"the {name} must be a label image (whole numbers), got {image.dtype}")
    if image.dtype.kind == "f" and not (
        np.isfinite(image).all() and (image == np.round(image)).all()
    ):
        raise InputError(
            f"the {name} must be a label image of whole numbers: it holds NaN, inf or fractions"
        )
    if image.dtype.kind in "if" and image.min() < 0:
        raise InputError(f"the {name} holds negative values: labels are 0 (background) or more")


def pixel_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Fraction of pixels whose class value differs: mean(pred != gt)."""
    pred, gt = _pair(pred, gt)
    return float(np.mean(pred != gt))


def binary_pixel_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Fraction of pixels where foreground (value > 0) differs: mean((pred>0) != (gt>0))."""
    pred, gt = _pair(pred, gt)
    return float(np.mean((pred > 0) != (gt > 0)))


def _challenge_thresholds() -> tuple[float, ...]:
    """0, 0.1, ..., 1 built as the challenge's script builds them (0.1 added repeatedly:
    0.30000000000000004, ..., 0.9999999999999999), so ties fall as they did there."""
    out, t = [], 0.0
    while t <= 1.0:
        out.append(t)
        t += 0.1
    return tuple(out)


CHALLENGE_THRESHOLDS = _challenge_thresholds()


def challenge_pixel_error(
    p_interior: np.ndarray | list[np.ndarray],
    gt_interior: np.ndarray | list[np.ndarray],
    thresholds: tuple[float, ...] = CHALLENGE_THRESHOLDS,
) -> dict[str, float]:
    """ISBI 2012 challenge pixel error: ``1 - max_t F(p_interior > t, gt_interior)``.

    ``p_interior``: one map or a list of maps (an image stack) in [0, 1], 1 = cell interior,
    compared in float64 as the challenge's script did; ``gt_interior``: the matching true
    masks (> 0 = interior). The counts TP (interior in both), FP and FN are summed over the
    stack before F = 2 TP / (2 TP + FP + FN) is taken, as the challenge's script does.
    Returns the error, the threshold that gave it (rounded for display), the error at 0.5
    and the counts ``tp``, ``fp``, ``fn`` at the best threshold (to pool further stacks).
    The challenge picks the best threshold on the images it scores. Where neither the
    prediction nor the truth holds any interior, F is undefined: NaN here (the script
    counted such a stack as error 1).
    """
    maps = [p_interior] if isinstance(p_interior, np.ndarray) else list(p_interior)
    truths = [gt_interior] if isinstance(gt_interior, np.ndarray) else list(gt_interior)
    if len(maps) != len(truths) or not maps:
        raise ValueError(
            f"{len(maps)} probability map(s) and {len(truths)} true mask(s): give one mask "
            "per map (or one stacked array for each)"
        )
    if not thresholds:
        raise ValueError("no thresholds")
    pairs = [
        _pair(np.asarray(p, dtype=np.float64), g, pred_is_map=True)
        for p, g in zip(maps, truths, strict=True)
    ]

    def counts_at(t: float) -> tuple[int, int, int]:
        tp = fp = fn = 0
        for p, g in pairs:
            pred, true = p > t, g > 0
            tp += int(np.count_nonzero(pred & true))
            fp += int(np.count_nonzero(pred & ~true))
            fn += int(np.count_nonzero(~pred & true))
        return tp, fp, fn

    def error(tp: int, fp: int, fn: int) -> float:
        total = 2 * tp + fp + fn
        return (fp + fn) / total if total else float("nan")

    counts = {t: counts_at(t) for t in thresholds}
    errors = {t: error(*c) for t, c in counts.items()}
    best = min(errors, key=lambda t: (math.isnan(errors[t]), errors[t]))
    tp, fp, fn = counts[best]
    return {
        "error": errors[best],
        "threshold": round(best, 6),
        "error_at_0.5": error(*counts_at(0.5)),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def iou_per_class(
    pred: np.ndarray, gt: np.ndarray, classes: list[int] | None = None
) -> dict[int, float]:
    """IoU of each class value; classes default to all values in either image.

    A class present in neither image gets NaN (it cannot be right or wrong).
    """
    pred, gt = _pair(pred, gt)
    if classes is None:
        classes = sorted(int(c) for c in np.union1d(np.unique(pred), np.unique(gt)))
    out: dict[int, float] = {}
    for c in classes:
        p, g = pred == c, gt == c
        union = int(np.count_nonzero(p | g))
        out[int(c)] = float(np.count_nonzero(p & g) / union) if union else float("nan")
    return out


def contingency(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse contingency table of two label images (non-negative integers).

    Returns ``(a_ids, b_ids, counts)``: one entry per pair of labels that overlap, counts =
    number of pixels with label a_id in ``a`` and b_id in ``b``.
    """
    a = np.asarray(a).ravel().astype(np.int64)
    b = np.asarray(b).ravel().astype(np.int64)
    if (a.size and a.min() < 0) or (b.size and b.min() < 0):
        raise ValueError("label images must not hold negative values")
    # relabel b densely so that the pair key fits in int64
    b_ids, b_dense = np.unique(b, return_inverse=True)
    key = a * len(b_ids) + b_dense
    keys, counts = np.unique(key, return_counts=True)
    return keys // len(b_ids), b_ids[keys % len(b_ids)], counts


def adapted_rand_error(
    seg: np.ndarray,
    gt: np.ndarray,
    *,
    seg_background: Literal["singletons", "segment"] = "singletons",
    return_all: bool = False,
) -> float | dict[str, float]:
    """Adapted Rand error 1 - F of a segmentation ``seg`` against ``gt`` (module docstring).

    Only pixels with gt > 0 count. ``seg == 0`` pixels are singletons by default. With
    ``return_all`` a dict with ``error``, ``precision`` (split score) and ``recall`` (merge
    score) is returned. Perfect agreement up to relabelling gives 0.
    """
    seg, gt = _pair(seg, gt)
    mask = gt > 0
    if not mask.any():
        raise ValueError("the ground truth has no labelled pixels (all 0)")
    s = np.asarray(seg)[mask].astype(np.int64)
    g = np.asarray(gt)[mask].astype(np.int64)
    if s.size and s.min() < 0:
        raise ValueError("label images must not hold negative values")
    sum_a = float(np.sum(np.unique(g, return_counts=True)[1].astype(np.float64) ** 2))
    n_singletons = 0
    if seg_background == "singletons":
        single = s == 0
        n_singletons = int(np.count_nonzero(single))
        s, g = s[~single], g[~single]
    elif seg_background != "segment":
        raise ValueError("seg_background must be 'singletons' or 'segment'")
    # a singleton adds 1 to sum n_ij^2 and to sum b_j^2 (its a_i is counted above)
    n_ij = contingency(g, s)[2] if s.size else np.zeros(0, np.int64)
    b_j = np.unique(s, return_counts=True)[1]
    sum_ab = float(np.sum(n_ij.astype(np.float64) ** 2)) + n_singletons
    sum_b = float(np.sum(b_j.astype(np.float64) ** 2)) + n_singletons
    precision = sum_ab / sum_b
    recall = sum_ab / sum_a
    f = 2.0 * precision * recall / (precision + recall)
    error = 1.0 - f
    if return_all:
        return {"error": error, "precision": precision, "recall": recall}
    return error


def _iou_pairs(
    pred: np.ndarray, gt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every overlapping (gt id, pred id) pair with both ids > 0, and all ids > 0."""
    g_ids, p_ids, inter = contingency(gt, pred)
    g_all, g_count = np.unique(gt, return_counts=True)
    p_all, p_count = np.unique(pred, return_counts=True)
    keep = (g_ids > 0) & (p_ids > 0)
    g_ids, p_ids, inter = g_ids[keep], p_ids[keep], inter[keep]
    union = g_count[np.searchsorted(g_all, g_ids)] + p_count[np.searchsorted(p_all, p_ids)] - inter
    iou = inter / np.maximum(union, 1)
    return g_ids, p_ids, iou.astype(np.float64), g_all[g_all > 0], p_all[p_all > 0]


def object_scores(
    pred_instances: np.ndarray, gt_instances: np.ndarray, iou_threshold: float = 0.5
) -> dict[str, Any]:
    """Object-level precision, recall and F1 at an IoU threshold (one-to-one matching).

    Returns ``precision, recall, f1, tp, fp, fn, n_pred, n_true, mean_matched_iou``.
    """
    from scipy.optimize import linear_sum_assignment

    pred, gt = _pair(pred_instances, gt_instances)
    if not 0 < iou_threshold <= 1:
        raise ValueError("iou_threshold must be in (0, 1]")
    g_ids, p_ids, iou, all_g, all_p = _iou_pairs(pred, gt)
    ok = iou >= iou_threshold
    g_ids, p_ids, iou = g_ids[ok], p_ids[ok], iou[ok]
    matched_iou: list[float] = []
    if len(iou):
        gu, gi = np.unique(g_ids, return_inverse=True)
        pu, pi = np.unique(p_ids, return_inverse=True)
        if len(gu) == len(iou) and len(pu) == len(iou):  # already one-to-one
            matched_iou = list(iou)
        else:
            # maximise the number of matches first, then the summed IoU among them
            score = np.zeros((len(gu), len(pu)))
            score[gi, pi] = 1.0 + iou
            rows, cols = linear_sum_assignment(score, maximize=True)
            good = score[rows, cols] > 0
            matched_iou = list(score[rows, cols][good] - 1.0)
    tp = len(matched_iou)
    n_true, n_pred = len(all_g), len(all_p)
    fp, fn = n_pred - tp, n_true - tp
    precision = tp / n_pred if n_pred else (1.0 if n_true == 0 else 0.0)
    recall = tp / n_true if n_true else (1.0 if n_pred == 0 else 0.0)
    denom = 2 * tp + fp + fn
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * tp / denom) if denom else 1.0,
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "n_pred": int(n_pred),
        "n_true": int(n_true),
        "mean_matched_iou": float(np.mean(matched_iou)) if matched_iou else float("nan"),
    }


def connected_components(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """Label the connected components of a boolean mask (connectivity 1 = 4-neighbours in
    2D, ``mask.ndim`` = 8-neighbours); 0 stays background."""
    mask = np.asarray(mask, dtype=bool)
    structure = ndi.generate_binary_structure(mask.ndim, connectivity)
    labels, _ = ndi.label(mask, structure=structure)
    return labels


def isbi_scores(
    pred_interior: np.ndarray, gt_interior: np.ndarray, pred_cells: np.ndarray | None = None
) -> dict[str, float]:
    """ISBI 2012 scores of a binary cell-interior prediction (True/1 = interior, 0 = membrane).

    pixel error = mean(pred != gt) on the binary masks; adapted Rand error of the predicted
    cells against the 4-connected components of the true interior, gt membrane pixels
    excluded, predicted membrane pixels inside true cells counted as singletons (see module
    docstring). The predicted cells are ``pred_cells`` (ids, 0 = membrane; e.g. a seeded
    watershed) or, by default, the 4-connected components of ``pred_interior``.
    """
    p = np.asarray(pred_interior) > 0
    g = np.asarray(gt_interior) > 0
    cells = connected_components(p) if pred_cells is None else np.asarray(pred_cells)
    rand = adapted_rand_error(cells, connected_components(g), return_all=True)
    assert isinstance(rand, dict)
    return {
        "pixel_error": pixel_error(p, g),
        "rand_error": rand["error"],
        "rand_precision": rand["precision"],
        "rand_recall": rand["recall"],
        "iou_membrane": iou_per_class(p, g, [0])[0],
        "iou_interior": iou_per_class(p, g, [1])[1],
    }


def evaluate_segmentation(
    pred_labels: np.ndarray,
    gt_labels: np.ndarray,
    *,
    pred_instances: np.ndarray | None = None,
    gt_instances: np.ndarray | None = None,
    classes: list[int] | None = None,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """All metrics at once, as a JSON-able dict.

    ``pred_labels``/``gt_labels`` are class-value images (pixel error, IoU per class).
    With instance images, the adapted Rand error (on the instances) and object scores are
    added; without them the adapted Rand error is computed on the class images.
    """
    out: dict[str, Any] = {
        "pixel_error": pixel_error(pred_labels, gt_labels),
        "iou_per_class": iou_per_class(pred_labels, gt_labels, classes),
    }
    if pred_instances is not None and gt_instances is not None:
        pred_instances, gt_instances = _pair(pred_instances, gt_instances)
        if np.any(gt_instances > 0):
            out["adapted_rand_error"] = adapted_rand_error(pred_instances, gt_instances)
        out["objects"] = object_scores(pred_instances, gt_instances, iou_threshold)
    elif np.any(np.asarray(gt_labels) > 0):
        out["adapted_rand_error"] = adapted_rand_error(pred_labels, gt_labels)
    return out

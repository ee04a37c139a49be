"""Property-based tests (Hypothesis): tiling, label conversions, weight-map invariants."""

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_unet import UNet, predict_tiled, weight_map
from napari_unet.unet.data import class_to_label, labels_to_target
from napari_unet.unet.record import Normalization
from napari_unet.unet.tiling import mirror_indices, predict_single_tile
from napari_unet.unet.weight_maps import class_balance_weights

torch.manual_seed(0)
_MODEL = UNet(depth=2, base_channels=2, n_classes=2).eval()
_MODEL.record.normalization = Normalization("none", None, None)

SHAPES = st.tuples(st.integers(1, 12), st.integers(1, 12))
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    h=st.integers(1, 70),
    w=st.integers(1, 70),
    tile=st.integers(1, 64),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_tiled_equals_untiled_for_any_shape_and_tile(h, w, tile, batch, seed):
    image = np.random.default_rng(seed).normal(size=(h, w)).astype(np.float32)
    tiled = predict_tiled(_MODEL, image, tile_size=tile, batch_size=batch)
    ref = predict_single_tile(_MODEL, image[None])
    np.testing.assert_allclose(tiled.logits, ref, atol=1e-4)


@FAST
@given(n=st.integers(1, 40), start=st.integers(-200, 200), length=st.integers(0, 100))
def test_mirror_indices_stay_inside_and_mirror(n, start, length):
    idx = mirror_indices(start, start + length, n)
    assert idx.shape == (length,)
    if length:
        assert idx.min() >= 0 and idx.max() < n
    # mirror symmetry about pixel 0: index -i maps to the same pixel as +i
    i = np.arange(0, 50)
    assert np.array_equal(mirror_indices(-49, 1, n)[::-1], mirror_indices(0, 50, n)[i])


@FAST
@given(
    arrays(
        np.uint16, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 40)
    )
)
def test_scribble_round_trip(labels):
    target = labels_to_target(labels)
    annotated = labels > 0
    assert np.all((target == -1) == ~annotated)
    # predicting exactly the annotated class gives back the user's label values
    assert np.array_equal(class_to_label(target[annotated]), labels[annotated])


@FAST
@given(
    arrays(
        np.int64, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(-1, 4)
    )
)
def test_class_balance_mean_is_one(target):
    w = class_balance_weights(target)
    annotated = target != -1
    if annotated.any():
        assert abs(w[annotated].mean() - 1) < 1e-5
        # every present class carries the same total weight
        totals = [w[target == c].sum() for c in np.unique(target[annotated])]
        np.testing.assert_allclose(totals, totals[0], rtol=1e-4)
    assert np.all(w[~annotated] == 0)


def _instances(draw_boxes, shape=(32, 32)):
    img = np.zeros(shape, np.int32)
    for i, (y, x, hh, ww) in enumerate(draw_boxes, start=1):
        img[y : y + hh, x : x + ww] = i
    return img


boxes = st.lists(
    st.tuples(st.integers(0, 28), st.integers(0, 28), st.integers(1, 6), st.integers(1, 6)),
    max_size=5,
)


@FAST
@given(boxes, st.floats(0, 20), st.floats(1, 8))
def test_weight_map_invariants(box_list, w0, sigma):
    inst = _instances(box_list)
    w = weight_map(inst, w0=w0, sigma=sigma, class_balance=True)
    wc = weight_map(inst, w0=0, sigma=sigma, class_balance=True)
    assert np.all(w >= wc - 1e-6)  # the border term is never negative
    assert np.all(w[inst > 0] == wc[inst > 0])  # and only on background pixels
    n_cells = len(np.unique(inst[inst > 0]))
    if n_cells < 2:
        np.testing.assert_array_equal(w, wc)
    # swapping / renumbering cell ids changes nothing
    ids = np.unique(inst[inst > 0])
    perm = dict(zip(ids, np.random.default_rng(0).permutation(ids) + 100, strict=True))
    renamed = np.vectorize(lambda v: perm.get(v, 0))(inst) if len(ids) else inst
    np.testing.assert_allclose(weight_map(renamed, w0=w0, sigma=sigma), w, atol=1e-6)


@FAST
@given(
    labels=arrays(np.int32, SHAPES, elements=st.integers(0, 5)),
    spot=st.tuples(st.integers(0, 11), st.integers(0, 11)),
    bad=st.sampled_from([-1, -7, np.nan, 0.5, np.inf]),
    side=st.sampled_from(["prediction", "ground truth"]),
)
def test_scores_refuse_one_bad_pixel_anywhere(labels, spot, bad, side):
    """One NaN, fraction or negative value anywhere in either image is refused, never
    scored; the same images without it score (checked against mean(pred != gt))."""
    import pytest

    from napari_unet import evaluate_segmentation
    from napari_unet.unet.errors import InputError

    good = labels.astype(np.float64)
    spoiled = good.copy()
    spoiled[spot[0] % good.shape[0], spot[1] % good.shape[1]] = bad
    pred, gt = (spoiled, good) if side == "prediction" else (good, spoiled)
    with pytest.raises(InputError, match=side):
        evaluate_segmentation(pred, gt)
    reference = float(np.mean(good != labels[::-1, ::-1]))
    assert evaluate_segmentation(good, labels[::-1, ::-1])["pixel_error"] == reference

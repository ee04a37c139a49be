"""napari_unet.workflow.labels: what an annotation means, worked out by hand.

The rules (module docstring and DESIGN.md, label conventions): ``auto`` reads more than
10 distinct non-zero values, or a value above 10, as instance ids; a single non-zero value
above 10 (0/255) as a dense mask; anything else as scribble classes. Scribbles: K = the
largest value; instances: K = 2; dense: the K distinct values, in increasing order.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet.unet.data import InputError
from napari_unet.workflow import (
    LABEL_MODES,
    LabelPlan,
    detect_label_mode,
    distinct_values,
    interpret_labels,
)


# ---------------------------------------------------------------------------- auto
@pytest.mark.parametrize(
    ("values", "mode"),
    [
        ([0, 255], "dense"),  # a 0/255 binary mask
        ([0, 12], "dense"),  # one non-zero value above 10
        ([11], "dense"),  # a single value above 10 (no zero at all)
        ([0, 11], "dense"),  # just above the threshold
        ([0, 10], "scribbles"),  # 10 is not above the threshold
        ([10], "scribbles"),
        ([0, 1, 2, 3], "scribbles"),
        ([1, 2], "scribbles"),
        ([0], "scribbles"),  # nothing annotated: scribbles (refused by interpret_labels)
        ([], "scribbles"),
        (list(range(0, 11)), "scribbles"),  # ten non-zero values 1..10
        (list(range(0, 12)), "instances"),  # eleven non-zero values 1..11
        (list(range(0, 21)), "instances"),  # background + ids 1..20
        (list(range(1, 21)), "instances"),  # ids 1..20 without background
        ([0, 3, 40], "instances"),  # two values, one above 10
        ([0, 255, 1000], "instances"),  # two values above 10: not a mask
    ],
)
def test_detect_label_mode_of_hand_made_value_sets(values, mode) -> None:
    assert detect_label_mode(np.array(values, dtype=np.int64)) == mode


def test_detect_label_mode_ignores_the_dtype() -> None:
    for dtype in (np.uint8, np.uint16, np.int32, np.int64):
        assert detect_label_mode(np.array([0, 255], dtype=dtype)) == "dense"
        assert detect_label_mode(np.array([0, 1, 2], dtype=dtype)) == "scribbles"


@pytest.mark.parametrize(
    ("values", "plan"),
    [
        ([0, 255], LabelPlan("dense", 2, (0, 255))),
        ([0, 12], LabelPlan("dense", 2, (0, 12))),
        ([0, 1, 2, 3], LabelPlan("scribbles", 3)),
        ([0, 1, 3], LabelPlan("scribbles", 3)),  # K = the largest value, 2 unused
        (list(range(0, 21)), LabelPlan("instances", 2)),
        ([0, 3, 40], LabelPlan("instances", 2)),
    ],
)
def test_auto_gives_the_plan_of_the_detected_mode(values, plan) -> None:
    assert interpret_labels(np.array(values), "auto") == plan
    assert interpret_labels(np.array(values)) == plan  # "auto" is the default


def test_auto_single_value_above_ten_is_a_mask_with_one_value_refused() -> None:
    # [11] reads as dense, and dense labels need two values
    with pytest.raises(InputError, match=r"at least two values, found only \[11\]"):
        interpret_labels(np.array([11]), "auto", what="'mask'")


# ---------------------------------------------------------------------------- modes
@pytest.mark.parametrize(
    ("values", "k"),
    [
        ([0, 1, 2], 2),
        ([1, 2], 2),  # no unannotated pixel: fine
        ([0, 2, 5], 5),  # K = largest value
        ([0, 1, 8], 8),  # 8 is not above SPARSE_VALUES_FROM: two values, K = 8 accepted
        ([0, 1, 2, 3, 4, 9], 9),  # K = 9 from 5 values: 5 > 9 // 2, not sparse
        (list(range(0, 51)), 50),  # exactly MAX_CLASSES
    ],
)
def test_scribbles_plan(values, k) -> None:
    plan = interpret_labels(np.array(values), "scribbles")
    assert plan == LabelPlan("scribbles", k, None)
    assert plan.core_mode == "scribbles"
    assert plan.describe() == f"scribbles: {k} classes"


@pytest.mark.parametrize("values", [[0, 1], [0, 5, 9], [0, 1, 2, 3], list(range(0, 300))])
def test_instances_plan_is_background_and_cell(values) -> None:
    plan = interpret_labels(np.array(values), "instances")
    assert plan == LabelPlan("instances", 2, None)
    assert plan.core_mode == "instances"
    assert plan.describe() == "instances: background / cell"


@pytest.mark.parametrize(
    "values", [[0, 255], [0, 128, 255], [3, 7], [0, 1], list(range(0, 100, 2))]
)
def test_dense_plan_keeps_the_values_in_increasing_order(values) -> None:
    plan = interpret_labels(np.array(values), "dense")
    assert plan.mode == "dense"
    assert plan.n_classes == len(values)
    assert plan.label_values == tuple(sorted(values))
    assert all(type(v) is int for v in plan.label_values)  # plain ints, JSON-able
    assert plan.core_mode == "scribbles"  # dense labels train as classes 1..K


def test_dense_describe() -> None:
    plan = interpret_labels(np.array([0, 128, 255]), "dense")
    assert plan.describe() == "dense: 3 classes (values 0, 128, 255)"


def test_label_modes() -> None:
    assert set(LABEL_MODES) == {"auto", "scribbles", "instances", "dense"}


# ---------------------------------------------------------------------------- refusals
WHAT = "'my scribbles'"


@pytest.mark.parametrize(
    ("values", "mode", "phrases"),
    [
        # negative values, in every mode
        ([-1, 0, 2], "auto", ["negative"]),
        ([-5, 0, 1], "scribbles", ["negative"]),
        ([-2, 0, 1], "instances", ["negative"]),
        ([-1, 0, 255], "dense", ["negative"]),
        # nothing annotated
        ([0], "scribbles", ["no annotated pixels"]),
        ([0], "auto", ["no annotated pixels"]),
        ([0], "instances", ["no annotated pixels"]),
        ([], "scribbles", ["no annotated pixels"]),
        # one class
        ([0, 1], "scribbles", ["only one class", "value 1"]),
        ([0, 2], "auto", ["only one class", "value 2"]),
        ([0, 8], "scribbles", ["only one class", "'dense'"]),
        # sparse large values read as scribbles
        ([0, 12], "scribbles", ["'instances'", "'dense'", "12 classes"]),
        ([0, 9], "scribbles", ["'instances'", "'dense'", "9 classes"]),
        ([0, 255], "scribbles", ["'instances'", "'dense'", "255 classes"]),
        ([0, 1, 30], "scribbles", ["'instances'", "'dense'", "30 classes"]),
        (list(range(0, 52)), "scribbles", ["'instances'", "51 classes"]),  # K > 50
        # instances without background
        ([1, 2, 3], "instances", ["no background"]),
        (list(range(1, 21)), "auto", ["no background"]),  # auto -> instances
        # dense: one value, too many values
        ([7], "dense", ["at least two values"]),
        ([0], "dense", ["at least two values"]),
        (list(range(0, 51)), "dense", ["51 distinct values", "'instances'"]),
        (list(range(0, 60)), "dense", ["60 distinct values"]),
    ],
)
def test_refusals_are_one_input_error_naming_the_annotations(values, mode, phrases) -> None:
    with pytest.raises(InputError) as err:
        interpret_labels(np.array(values, dtype=np.int64), mode, what=WHAT)
    assert type(err.value) is InputError
    message = str(err.value)
    assert message.startswith(WHAT + ": ")
    assert message.count(WHAT) == 1
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message


def test_sparse_values_message_shows_the_values() -> None:
    with pytest.raises(InputError) as err:
        interpret_labels(np.array([0, 9, 30]), "scribbles", what="the label files")
    message = str(err.value)
    assert message.startswith("the label files: values 9, 30;")
    assert "30 classes" in message


def test_refusal_uses_the_default_what() -> None:
    with pytest.raises(InputError, match="^the labels: no annotated pixels"):
        interpret_labels(np.array([0]), "scribbles")


def test_unknown_mode_refused() -> None:
    with pytest.raises(InputError, match="unknown label mode 'watershed'"):
        interpret_labels(np.array([0, 1, 2]), "watershed")


def test_fifty_dense_values_are_accepted() -> None:
    plan = interpret_labels(np.arange(50) * 3, "dense")
    assert plan.n_classes == 50 and plan.label_values[-1] == 147


# ---------------------------------------------------------------------------- to_core
def test_to_core_maps_dense_values_to_one_based_classes() -> None:
    plan = interpret_labels(np.array([0, 128, 255]), "dense")
    labels = np.array([[0, 128, 255], [255, 255, 0], [128, 0, 128]], dtype=np.uint8)
    expected = np.array([[1, 2, 3], [3, 3, 1], [2, 1, 2]])
    core = plan.to_core(labels)
    np.testing.assert_array_equal(core, expected)
    assert core.shape == labels.shape
    assert core.dtype == np.int64  # no uint8 wrap-around for K + 1


def test_to_core_of_a_mask_with_uneven_values() -> None:
    plan = LabelPlan("dense", 3, (3, 7, 1000))
    labels = np.array([[1000, 3], [7, 1000]], dtype=np.uint16)
    np.testing.assert_array_equal(plan.to_core(labels), [[3, 1], [2, 3]])


@pytest.mark.parametrize("plan", [LabelPlan("scribbles", 3), LabelPlan("instances", 2)])
def test_to_core_leaves_scribbles_and_instances_as_they_are(plan) -> None:
    labels = np.array([[0, 1, 3], [3, 2, 0]], dtype=np.uint16)
    core = plan.to_core(labels)
    np.testing.assert_array_equal(core, labels)
    assert core.dtype == labels.dtype


# ---------------------------------------------------------------------------- distinct_values
def test_distinct_values_of_several_arrays() -> None:
    a = np.array([[0, 3], [3, 9]], dtype=np.uint8)
    b = np.array([[True, False]])
    c = np.array([2.0, 3.0, -0.0])  # whole floats
    d = np.array([[[40000]]], dtype=np.uint16)
    e = np.zeros((0, 4), dtype=np.int32)  # empty: adds nothing
    found = distinct_values([a, b, c, d, e])
    expected = np.union1d(np.union1d(np.unique(a), [0, 1]), np.union1d([0, 2, 3], [40000]))
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(found, [0, 1, 2, 3, 9, 40000])
    assert found.dtype == np.int64


def test_distinct_values_takes_a_generator_and_nothing() -> None:
    arrays = (np.full((2, 2), v, np.int16) for v in (5, 1, 5))
    np.testing.assert_array_equal(distinct_values(arrays), [1, 5])
    empty = distinct_values([])
    assert empty.size == 0 and empty.dtype == np.int64


def test_distinct_values_keeps_signs_for_interpret_labels_to_refuse() -> None:
    found = distinct_values([np.array([-3, 0, 2], dtype=np.int8)])
    np.testing.assert_array_equal(found, [-3, 0, 2])
    with pytest.raises(InputError, match="negative"):
        interpret_labels(found)


def test_distinct_values_of_a_bool_mask() -> None:
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    np.testing.assert_array_equal(distinct_values([mask]), [0, 1])


@pytest.mark.parametrize(
    ("array", "phrase"),
    [
        (np.array([0.0, 1.5]), "fractions"),
        (np.array([[0.0], [2.25]], dtype=np.float32), "fractions"),
        (np.array([0.0, np.nan]), "whole numbers"),
        (np.array([1.0, np.inf]), "whole numbers"),
        (np.array([1 + 0j, 2 + 0j]), "whole numbers"),
    ],
)
def test_distinct_values_refuses_what_is_not_a_whole_number(array, phrase) -> None:
    with pytest.raises(InputError, match=phrase):
        distinct_values([np.array([0, 1]), array])

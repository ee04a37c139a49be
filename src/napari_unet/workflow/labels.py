"""What an annotation means: one set of rules for the label modes, shared by every front-end.

Modes (DESIGN.md, label conventions):

- ``scribbles``: 0 = not annotated, value c >= 1 = class c (K = the largest value).
- ``instances``: 0 = background, ids > 0 = cells; trained as background / cell (K = 2).
- ``dense``: every pixel holds a class value (a 0/255 mask, say); the distinct values, in
  increasing order, are the K classes and predictions are written back with those values.
- ``auto``: instance ids if there are more than :data:`INSTANCE_ID_THRESHOLD` distinct
  non-zero values or a value above it; a mask if there is one non-zero value above it
  (0/255); otherwise class values (scribbles).

Every refusal is an :class:`~napari_unet.unet.data.InputError` meant for the user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..unet.data import InputError

LABEL_MODES = ("auto", "scribbles", "instances", "dense")
#: auto: more distinct non-zero values than this, or a value above it, are instance ids
INSTANCE_ID_THRESHOLD = 10
#: more classes than this are almost certainly object ids read in the wrong mode
MAX_CLASSES = 50
#: scribble values above this that leave most values in between unused look like a mask
SPARSE_VALUES_FROM = 8


@dataclass(frozen=True)
class LabelPlan:
    """How the annotations become training targets, and predictions become labels again.

    ``label_values[k]`` is the annotation value of class channel k (dense labels only;
    otherwise channel k is value k + 1).
    """

    mode: str  # "scribbles", "instances" or "dense"
    n_classes: int
    label_values: tuple[int, ...] | None = None

    @property
    def core_mode(self) -> str:
        """The core's target convention: dense labels are mapped to scribble classes 1..K."""
        return "instances" if self.mode == "instances" else "scribbles"

    def to_core(self, labels: np.ndarray) -> np.ndarray:
        """Labels in the core's convention: dense values mapped to 1..K, others as they are."""
        if self.label_values is None:
            return np.asarray(labels)
        keys = np.asarray(self.label_values, dtype=np.int64)
        index = np.searchsorted(keys, np.asarray(labels, dtype=np.int64))
        return (index + 1).astype(np.int64)

    def describe(self) -> str:
        """'dense: 2 classes (values 0, 255)', for status lines."""
        if self.mode == "instances":
            return "instances: background / cell"
        if self.label_values is not None:
            shown = ", ".join(map(str, self.label_values))
            return f"dense: {self.n_classes} classes (values {shown})"
        return f"scribbles: {self.n_classes} classes"


def detect_label_mode(values: np.ndarray) -> str:
    """The mode ``auto`` resolves to for the distinct ``values`` of the annotations.

    A few cells numbered 1..n cannot be told from n classes: pick the mode by hand then.
    """
    values = np.asarray(values)
    nonzero = values[values != 0]
    if nonzero.size == 1 and nonzero[0] > INSTANCE_ID_THRESHOLD:
        return "dense"  # a binary mask such as 0/255
    if nonzero.size > INSTANCE_ID_THRESHOLD or (
        nonzero.size and nonzero.max() > INSTANCE_ID_THRESHOLD
    ):
        return "instances"
    return "scribbles"


def distinct_values(labels: Iterable[np.ndarray]) -> np.ndarray:
    """The sorted distinct values of several label arrays (whole numbers, checked)."""
    found: set[int] = set()
    for lab in labels:
        lab = np.asarray(lab)
        if lab.dtype == bool:
            lab = lab.astype(np.uint8)
        if not np.issubdtype(lab.dtype, np.integer):
            if not (np.issubdtype(lab.dtype, np.floating) and np.isfinite(lab).all()):
                raise InputError(f"labels must hold whole numbers, got dtype {lab.dtype}")
            if not np.all(lab == np.round(lab)):
                raise InputError("labels must hold whole numbers, got fractions")
        found.update(int(v) for v in np.unique(lab))
    return np.asarray(sorted(found), dtype=np.int64)


def interpret_labels(
    values: np.ndarray, mode: str = "auto", what: str = "the labels"
) -> LabelPlan:
    """The :class:`LabelPlan` of annotations holding the distinct ``values`` (all files or
    planes together), or an :class:`InputError` saying what to change. ``what`` names the
    annotations in messages ("'scribbles'", "the label files")."""
    values = np.asarray(values, dtype=np.int64)
    if mode not in LABEL_MODES:
        raise InputError(f"unknown label mode {mode!r}: one of {', '.join(LABEL_MODES)}")
    if values.size and values[0] < 0:
        raise InputError(f"{what}: negative values (labels must be >= 0)")
    if mode == "auto":
        mode = detect_label_mode(values)
    if mode == "dense":
        return _dense(values, what)
    nonzero = values[values != 0]
    if nonzero.size == 0:
        raise InputError(
            f"{what}: no annotated pixels (every pixel is 0); paint at least two classes, "
            "e.g. 1 = background and 2 = nucleus"
        )
    if mode == "instances":
        if values[0] != 0:
            raise InputError(
                f"{what}: no background (no pixel is 0); instance labels need "
                "0 = background around the cells"
            )
        return LabelPlan("instances", 2)
    return _scribbles(nonzero, what)


def _scribbles(nonzero: np.ndarray, what: str) -> LabelPlan:
    n_classes = int(nonzero.max())
    if n_classes > MAX_CLASSES or (
        n_classes > SPARSE_VALUES_FROM and nonzero.size <= n_classes // 2
    ):
        shown = ", ".join(map(str, nonzero[:6])) + (", ..." if nonzero.size > 6 else "")
        raise InputError(
            f"{what}: values {shown}; as scribbles, value c is class c, which would make "
            f"{n_classes} classes. Is it an instance layer? Choose label mode 'instances' "
            "for cell ids, or 'dense' for a mask such as 0/255"
        )
    if nonzero.size < 2:
        raise InputError(
            f"{what}: only one class (value {int(nonzero[0])}); paint at least two "
            "classes, e.g. 1 = background and 2 = nucleus (a binary mask: label mode 'dense')"
        )
    return LabelPlan("scribbles", n_classes)


def _dense(values: np.ndarray, what: str) -> LabelPlan:
    if values.size < 2:
        raise InputError(
            f"{what}: dense labels need at least two values, found only {values.tolist()}"
        )
    if values.size > MAX_CLASSES:
        raise InputError(
            f"{what}: {values.size} distinct values, too many classes for dense labels "
            "(object ids? choose label mode 'instances')"
        )
    return LabelPlan("dense", int(values.size), tuple(int(v) for v in values))
